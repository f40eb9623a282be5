//! The fleet simulation (issue 8, scope 1): our promise, "no confirmed scan is ever lost or counted twice, whatever
//! the network or crashes do", checked the way TigerBeetle's simulator and Jepsen's set checker check theirs, sized
//! for a 2-core machine.
//!
//! # One run
//!
//! A seed drives a whole run. Every random choice (who scans what and when, which process dies, which device is cut
//! off, what each proxy does to each connection) comes from [`SplitMix64`] streams forked from it; only the OS's
//! timing is not the seed's, so a replay repeats the schedule, not every byte.
//!
//! 1. **Fleet.** One `dockhand-server` (sled store) and [`DEVICES`] handheld agents at one site, each on its own pty
//!    scanner and behind its own [`FaultProxy`] (delays, resets at a random byte, resets at the start of a server
//!    answer, truncations, stalls, partitions). Each device receives its own GTIN with a lot unique in the run, so a
//!    stored movement names the one scan that caused it.
//! 2. **Safety phase** (`DOCKHAND_FLEET_SECS`, default [`DEFAULT_SECS`] s). Steps of: bursts of scans on some
//!    devices, a random pause, then at most one of: SIGKILL and restart of an agent (its unread pty input flushed,
//!    as a real scanner would not resend), SIGKILL and restart of the server, a partition of one device. A scan is
//!    *confirmed* when its good-read byte (0x06) comes back on the pty. A live agent must answer every scan, and
//!    only with 0x06.
//! 3. **Liveness phase.** All proxies healed; every agent's backlog must reach 0 within [`DRAIN_BOUND`].
//! 4. **Checkers.**
//!    - *Exactly once*: the movements at the server (`GET /v1/movements`), by (device, lot), each appear once; every
//!      confirmed scan is among them; anything else stored must be a scan that was in flight when its agent was
//!      killed (durable, but the 0x06 died with the process), and these are counted. Per device the seqs are
//!      exactly 1..=n, and n is the agent's durable seq and the server's high-water mark.
//!    - *Conservation*: the server's stock equals the sum of the stored movements' effects, computed here.
//!    - *Convergence*: each agent's own stock view (status file) equals the effect of its own stored movements, and
//!      its site stock view (`dockhand-agent stock --json`) equals the server's stock once it has refreshed.
//!
//! Device clock skew is not simulated: the agent has no clock knob (it stamps movements with the OS clock), and this
//! test does not invent one.
//!
//! # Commands
//!
//! ```text
//! cargo test -p dockhand-tests --test fleet -- --nocapture                           # CI: the default seeds
//! DOCKHAND_FLEET_SEEDS=7 cargo test -p dockhand-tests --test fleet -- --nocapture    # replay one seed
//! DOCKHAND_FLEET_SEEDS=$(seq -s, 1000 1199) DOCKHAND_FLEET_SECS=60 \
//!     cargo test -p dockhand-tests --test fleet -- --nocapture                       # soak: 200 seeds x 60 s
//! ```
//!
//! Every failure prints its seed and the one-line replay command.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, ensure, Context, Result};
use dockhand_tests::faultproxy::{FaultProxy, FaultStats, SplitMix64};
use dockhand_tests::*;
use serde_json::Value;

/// The CI seed set.
const DEFAULT_SEEDS: [u64; 3] = [1, 2, 3];
/// Safety-phase length per seed in CI.
const DEFAULT_SECS: u64 = 15;
/// Handhelds in the fleet.
const DEVICES: usize = 3;
const SITE: &str = "WH1";
const RECEIVING: &str = "DOCK-1";
/// How long the healed fleet may take to push every backlog.
const DRAIN_BOUND: Duration = Duration::from_secs(30);
/// How long a live agent may take to confirm a burst (durability is local: the network has no say).
const CONFIRM_BOUND: Duration = Duration::from_secs(10);

/// (location, gtin, lot) → qty, zero rows left out.
type Stock = BTreeMap<(String, String, Option<String>), i64>;

#[test]
fn no_confirmed_scan_is_lost_or_doubled_under_faults_and_crashes() -> Result<()> {
    let seeds = match std::env::var("DOCKHAND_FLEET_SEEDS") {
        Ok(s) => parse_seeds(&s)?,
        Err(_) => DEFAULT_SEEDS.to_vec(),
    };
    let secs = match std::env::var("DOCKHAND_FLEET_SECS") {
        Ok(s) => s
            .trim()
            .parse()
            .with_context(|| format!("DOCKHAND_FLEET_SECS={s:?} is not a number of seconds"))?,
        Err(_) => DEFAULT_SECS,
    };
    let mut failed = Vec::new();
    for &seed in &seeds {
        let outcome = std::panic::catch_unwind(|| run(seed, Duration::from_secs(secs)));
        let error = match outcome {
            Ok(Ok(figures)) => {
                eprintln!("fleet seed {seed}: ok: {figures}");
                continue;
            }
            Ok(Err(e)) => format!("{e:#}"),
            Err(panic) => panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into()),
        };
        eprintln!(
            "fleet seed {seed}: FAILED: {error}\n  replay: DOCKHAND_FLEET_SEEDS={seed} DOCKHAND_FLEET_SECS={secs} \
             cargo test -p dockhand-tests --test fleet -- --nocapture"
        );
        failed.push(seed);
    }
    ensure!(failed.is_empty(), "fleet seeds failed: {failed:?}");
    Ok(())
}

/// What one run did, printed as one line.
#[derive(Debug, Default)]
struct Figures {
    sent: usize,
    confirmed: usize,
    /// Stored without a 0x06 seen: in flight when the agent was killed.
    stored_unconfirmed: usize,
    stored: usize,
    /// Schedule steps taken: a replay takes the same steps in the same order, as many as fit in the time.
    steps: u64,
    agent_kills: u64,
    server_kills: u64,
    /// Movements the server acknowledged again (`dockhand_movements_ingested_total{result="duplicate"}`), summed
    /// over the server's lives; pushes between the last scrape and a kill are not counted.
    duplicates: u64,
    faults: FaultStats,
    drain: Duration,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let x = &self.faults;
        write!(
            f,
            "steps {}; scans sent {} confirmed {} stored {} (stored unconfirmed at a kill {}); kills agent {} server {}; \
             connections {} resets {} (request {} response {}) truncations {} stalls {} delayed {} partitions {} \
             refused {}; duplicates delivered {}; drain {:.1?}",
            self.steps,
            self.sent,
            self.confirmed,
            self.stored,
            self.stored_unconfirmed,
            self.agent_kills,
            self.server_kills,
            x.connections,
            x.resets(),
            x.request_resets,
            x.response_resets,
            x.truncations,
            x.stalls,
            x.delayed,
            x.partitions,
            x.refused,
            self.duplicates,
            self.drain,
        )
    }
}

/// One simulated handheld: its scanner, its link and its agent, and what the test knows of its scans.
struct Device {
    name: String,
    scanner: Scanner,
    proxy: FaultProxy,
    agent: Option<AgentProc>,
    config: PathBuf,
    data: PathBuf,
    /// Lots written to the scanner whose feedback is still due, in scan order.
    pending: Vec<String>,
    sent: usize,
    ledger: Ledger,
}

/// What the test saw of one device's scans: the ground truth the checkers judge the server by.
#[derive(Debug, Clone)]
struct Ledger {
    device: String,
    gtin: &'static str,
    /// Lots whose 0x06 came back.
    confirmed: BTreeSet<String>,
    /// Lots in flight when the agent died: each may be durable, hence stored, with its 0x06 lost.
    in_flight_at_kill: BTreeSet<String>,
}

impl Device {
    fn agent(&self) -> Result<&AgentProc> {
        self.agent.as_ref().context("agent not running")
    }

    /// Writes a burst of `n` scans with fresh lots.
    fn scan_burst(&mut self, index: usize, n: u64) -> Result<()> {
        let mut bytes = Vec::new();
        for _ in 0..n {
            self.sent += 1;
            let lot = format!("H{index}N{:05}", self.sent);
            bytes.extend_from_slice(item_scan(self.ledger.gtin, &lot).as_bytes());
            bytes.extend_from_slice(b"\r\n");
            self.pending.push(lot);
        }
        self.scanner.write(&bytes)
    }

    /// Takes the feedback of every pending scan from a live agent: all of it, and only good reads.
    fn collect(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let fb = self.scanner.feedback_n(self.pending.len(), CONFIRM_BOUND);
        ensure!(
            fb.len() == self.pending.len() && fb.iter().all(|&b| b == ACK),
            "{}: a live agent answered {} scans with {fb:02x?}",
            self.name,
            self.pending.len()
        );
        self.ledger.confirmed.extend(self.pending.drain(..));
        Ok(())
    }

    /// SIGKILLs the agent, books what it confirmed before dying, and starts a new one.
    fn crash_and_restart(&mut self) -> Result<()> {
        if let Some(mut agent) = self.agent.take() {
            agent.kill();
        }
        // Feedback written before the kill is still in the pty, in scan order.
        let fb = self
            .scanner
            .feedback_n(self.pending.len(), Duration::from_millis(300));
        ensure!(
            fb.iter().all(|&b| b == ACK),
            "{}: bad feedback before the kill: {fb:02x?}",
            self.name
        );
        let rest = self.pending.split_off(fb.len());
        self.ledger.confirmed.extend(self.pending.drain(..));
        self.ledger.in_flight_at_kill.extend(rest);
        // The dead agent may have left part of a scan unread; a real scanner would not resend it either.
        self.scanner.flush_unread()?;
        self.agent = Some(AgentProc::start(&self.config, &self.data)?);
        Ok(())
    }
}

/// A server, its handhelds and the run's figures.
struct Fleet {
    server: ServerProc,
    port: u16,
    devices: Vec<Device>,
    figures: Figures,
    /// Last, so it is deleted after the processes writing into it are killed (fields drop in order).
    _tmp: tempfile::TempDir,
}

impl Fleet {
    fn start(seed: u64, schedule: &mut SplitMix64) -> Result<Fleet> {
        let tmp = tempfile::tempdir()?;
        let server_data = tmp.path().join("server");
        let port = free_port();
        let server = ServerProc::start(&server_data, port)?;
        let mut devices = Vec::new();
        for (i, gtin) in GTINS.iter().take(DEVICES).enumerate() {
            let name = format!("hh-{i}");
            let token = enroll(&server_data, &name, SITE)?;
            let scanner = Scanner::new()?;
            let proxy = FaultProxy::start(port, schedule.next_u64())?;
            let data = tmp.path().join(&name);
            let config = AgentSpec {
                device: &name,
                site: SITE,
                data: &data,
                server: Some((proxy.url(), server_data.join("ca.pem"), token)),
                scanner: &scanner.path,
                max_backoff_ms: 500,
            }
            .write_config()?;
            // A short stock refresh lets the convergence check see the final snapshot quickly.
            let toml = std::fs::read_to_string(&config)?;
            let toml = toml.replacen(
                "max_backoff_ms = 500\n",
                "max_backoff_ms = 500\nstock_refresh_ms = 1000\n",
                1,
            );
            ensure!(
                toml.contains("stock_refresh_ms"),
                "agent config layout changed"
            );
            std::fs::write(&config, toml)?;
            let agent = AgentProc::start(&config, &data)?;
            let mut device = Device {
                ledger: Ledger {
                    device: name.clone(),
                    gtin,
                    confirmed: BTreeSet::new(),
                    in_flight_at_kill: BTreeSet::new(),
                },
                name,
                scanner,
                proxy,
                agent: Some(agent),
                config,
                data,
                pending: Vec::new(),
                sent: 0,
            };
            let fb = device.scanner.scan_and_wait("DH:RECEIVE", CONFIRM_BOUND)?;
            ensure!(
                fb == Some(ACK),
                "{}: DH:RECEIVE answered {fb:?}",
                device.name
            );
            devices.push(device);
        }
        eprintln!("fleet seed {seed}: {DEVICES} handhelds up");
        Ok(Fleet {
            server,
            port,
            devices,
            figures: Figures::default(),
            _tmp: tmp,
        })
    }

    /// The safety phase: scans, crashes and partitions until `len` has passed.
    fn safety(&mut self, schedule: &mut SplitMix64, len: Duration) -> Result<()> {
        let end = Instant::now() + len;
        while Instant::now() < end {
            self.figures.steps += 1;
            for (i, d) in self.devices.iter_mut().enumerate() {
                if schedule.chance(70) {
                    d.scan_burst(i, schedule.between(1, 5))?;
                }
            }
            // Lets the kill below land anywhere from "not read yet" to "confirmed and pushing".
            std::thread::sleep(Duration::from_millis(schedule.between(0, 40)));
            match schedule.below(100) {
                0..10 => {
                    let d = schedule.below(DEVICES as u64) as usize;
                    self.devices[d].crash_and_restart()?;
                    self.figures.agent_kills += 1;
                }
                10..13 => {
                    self.figures.duplicates += self.duplicates_so_far()?;
                    self.server.kill();
                    std::thread::sleep(Duration::from_millis(schedule.between(0, 800)));
                    self.server = ServerProc::start(&self.server.data.clone(), self.port)?;
                    self.figures.server_kills += 1;
                }
                13..18 => {
                    let d = schedule.below(DEVICES as u64) as usize;
                    let len = Duration::from_millis(schedule.between(300, 3000));
                    self.devices[d].proxy.partition(len);
                }
                _ => {}
            }
            for d in &mut self.devices {
                d.collect()?;
            }
        }
        Ok(())
    }

    /// `dockhand_movements_ingested_total{result="duplicate"}` of the running server.
    fn duplicates_so_far(&self) -> Result<u64> {
        let text = self
            .server
            .client()?
            .get(format!("{}/metrics", self.server.url()))
            .bearer_auth(self.server.admin_token()?)
            .send()?
            .error_for_status()?
            .text()?;
        Ok(duplicate_count(&text))
    }

    /// The liveness phase: heals every link and waits for every backlog to drain.
    fn drain(&mut self) -> Result<()> {
        for d in &self.devices {
            d.proxy.heal();
        }
        let healed = SystemTime::now();
        let t0 = Instant::now();
        let drained = wait_until(DRAIN_BOUND, || {
            for d in &self.devices {
                // A status file written before the heal could show a backlog that has grown since.
                let fresh = std::fs::metadata(d.data.join("status.json"))
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t > healed);
                let s = d.agent()?.status()?;
                if !fresh || s["backlog"] != 0 || s["durable_seq"] != s["sync"]["acked_through"] {
                    return Ok(false);
                }
            }
            Ok(true)
        });
        if let Err(e) = drained {
            let mut why = String::new();
            for d in &self.devices {
                let s = d.agent()?.status()?;
                why.push_str(&format!(
                    "\n  {}: backlog {} durable {} acked {} last sync {}",
                    d.name,
                    s["backlog"],
                    s["durable_seq"],
                    s["sync"]["acked_through"],
                    s["sync"]["last_result"]
                ));
            }
            bail!("liveness: backlogs not drained within {DRAIN_BOUND:?}: {e:#}{why}");
        }
        self.figures.drain = t0.elapsed();
        self.figures.duplicates += self.duplicates_so_far()?;
        Ok(())
    }

    /// Exactly once, conservation and convergence.
    fn check(&mut self) -> Result<()> {
        let office = Office::new(&self.server)?;
        let stored: Vec<Stored> = office
            .movements(SITE)?
            .iter()
            .map(Stored::parse)
            .collect::<Result<_>>()?;
        self.figures.stored = stored.len();

        // Exactly once, then the seqs against the agent's and the server's counts.
        let ledgers: Vec<Ledger> = self.devices.iter().map(|d| d.ledger.clone()).collect();
        let verdict = exactly_once(&stored, &ledgers)?;
        self.figures.stored_unconfirmed = verdict.stored_unconfirmed;
        for d in &self.devices {
            let n = verdict.movements.get(&d.name).copied().unwrap_or(0);
            let durable = d.agent()?.status()?["durable_seq"].as_u64();
            let high_water = office.get(&format!("/v1/devices/{}/high-water", d.name))?
                ["acked_through"]
                .as_u64();
            ensure!(
                (durable, high_water) == (Some(n), Some(n)),
                "{}: {n} movements stored, agent durable seq {durable:?}, server high-water {high_water:?}",
                d.name
            );
        }

        // Conservation: the server's stock is the sum of what it stored.
        let server_stock = to_stock(self.server.stock(SITE)?);
        let expected = fold(stored.iter());
        ensure!(
            server_stock == expected,
            "conservation: server stock {server_stock:?} != sum of its movements {expected:?}"
        );

        // Convergence: each device's own view, then its site view after a refresh.
        for d in &self.devices {
            let own = fold(stored.iter().filter(|m| m.device == d.name));
            wait_until(Duration::from_secs(10), || {
                Ok(to_stock(parse_stock(&d.agent()?.status()?)?) == own)
            })
            .with_context(|| {
                format!(
                    "convergence: {}'s own stock view never matched its movements",
                    d.name
                )
            })?;
            wait_until(Duration::from_secs(15), || {
                Ok(site_stock(&d.config)? == server_stock)
            })
            .with_context(|| {
                format!(
                    "convergence: {}'s site stock never matched the server's",
                    d.name
                )
            })?;
        }
        self.figures.sent = self.devices.iter().map(|d| d.sent).sum();
        self.figures.confirmed = self.devices.iter().map(|d| d.ledger.confirmed.len()).sum();
        for d in &self.devices {
            self.figures.faults += d.proxy.stats();
        }
        Ok(())
    }
}

/// What the exactly-once checker found, when it found nothing wrong.
#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    /// Movements stored per device (its seqs are exactly 1..=n).
    movements: BTreeMap<String, u64>,
    /// Stored without a 0x06 seen, each in flight when its agent was killed.
    stored_unconfirmed: usize,
}

/// The set checker: the stored movements are exactly the confirmed scans, each once, plus possibly scans that were
/// in flight at a kill; each is the receipt that was scanned; each device's seqs are 1..=n.
fn exactly_once(stored: &[Stored], ledgers: &[Ledger]) -> Result<Verdict> {
    let mut by_scan: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut seqs: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for m in stored {
        *by_scan.entry((&m.device, &m.lot)).or_default() += 1;
        seqs.entry(&m.device).or_default().push(m.seq);
    }
    let doubled: Vec<_> = by_scan.iter().filter(|(_, &n)| n > 1).collect();
    ensure!(
        doubled.is_empty(),
        "exactly once: scans stored more than once: {doubled:?}"
    );
    for l in ledgers {
        let lost: Vec<_> = l
            .confirmed
            .iter()
            .filter(|lot| !by_scan.contains_key(&(l.device.as_str(), lot.as_str())))
            .collect();
        ensure!(
            lost.is_empty(),
            "exactly once: {} lost confirmed scans {lost:?}",
            l.device
        );
    }
    let mut stored_unconfirmed = 0;
    for m in stored {
        let l = ledgers
            .iter()
            .find(|l| l.device == m.device)
            .with_context(|| format!("exactly once: a movement of unknown device {}", m.device))?;
        ensure!(
            (
                m.kind.as_str(),
                m.gtin.as_str(),
                m.qty,
                m.from.as_deref(),
                m.to.as_deref()
            ) == ("receive", l.gtin, 1, None, Some(RECEIVING)),
            "exactly once: {}/{} is not the receipt that was scanned: {m:?}",
            m.device,
            m.lot
        );
        if !l.confirmed.contains(&m.lot) {
            ensure!(
                l.in_flight_at_kill.contains(&m.lot),
                "exactly once: {}/{} stored but never confirmed, and its agent was not killed with it in flight",
                m.device,
                m.lot
            );
            stored_unconfirmed += 1;
        }
    }
    let mut movements = BTreeMap::new();
    for l in ledgers {
        let mut got = seqs.remove(l.device.as_str()).unwrap_or_default();
        got.sort_unstable();
        let n = got.len() as u64;
        ensure!(
            got.iter().copied().eq(1..=n),
            "{}: seqs at the server are not 1..={n}: {got:?}",
            l.device
        );
        movements.insert(l.device.clone(), n);
    }
    Ok(Verdict {
        movements,
        stored_unconfirmed,
    })
}

/// One simulation run.
fn run(seed: u64, safety: Duration) -> Result<Figures> {
    let mut root = SplitMix64::new(seed);
    let mut links = root.fork();
    let mut schedule = root.fork();
    let mut fleet = Fleet::start(seed, &mut links)?;
    fleet.safety(&mut schedule, safety)?;
    fleet.drain()?;
    fleet.check()?;
    ensure!(
        fleet.figures.confirmed > 0,
        "the run confirmed no scan: nothing was tested"
    );
    for d in &mut fleet.devices {
        if let Some(agent) = d.agent.as_mut() {
            agent.stop()?;
        }
    }
    Ok(std::mem::take(&mut fleet.figures))
}

/// A stored movement, as far as the checkers look.
#[derive(Debug)]
struct Stored {
    device: String,
    seq: u64,
    kind: String,
    gtin: String,
    lot: String,
    qty: u64,
    from: Option<String>,
    to: Option<String>,
}

impl Stored {
    /// Reads one entry of `GET /v1/movements`.
    fn parse(v: &Value) -> Result<Stored> {
        let m = &v["movement"];
        let text = |k: &str| m[k].as_str().map(str::to_string);
        Ok(Stored {
            device: text("device_id").with_context(|| format!("device_id in {v}"))?,
            seq: m["seq"].as_u64().with_context(|| format!("seq in {v}"))?,
            kind: text("kind").with_context(|| format!("kind in {v}"))?,
            gtin: text("gtin").with_context(|| format!("gtin in {v}"))?,
            lot: text("lot").with_context(|| format!("lot in {v}"))?,
            qty: m["qty"].as_u64().with_context(|| format!("qty in {v}"))?,
            from: text("from_location"),
            to: text("to_location"),
        })
    }
}

/// The stock the movements make, computed independently of the server.
fn fold<'a>(movements: impl Iterator<Item = &'a Stored>) -> Stock {
    let mut stock = Stock::new();
    for m in movements {
        let key = |loc: &String| (loc.clone(), m.gtin.clone(), Some(m.lot.clone()));
        let qty = m.qty as i64;
        if let Some(from) = &m.from {
            *stock.entry(key(from)).or_default() -= qty;
        }
        if let Some(to) = &m.to {
            *stock.entry(key(to)).or_default() += qty;
        }
    }
    stock.retain(|_, q| *q != 0);
    stock
}

fn to_stock(rows: Vec<StockLine>) -> Stock {
    rows.into_iter()
        .filter(|r| r.3 != 0)
        .map(|(l, g, lot, q)| ((l, g, lot), q))
        .collect()
}

/// The device's site stock view: `dockhand-agent stock --json --config CONFIG`.
fn site_stock(config: &Path) -> Result<Stock> {
    let out = Command::new(bin("dockhand-agent"))
        .args(["stock", "--json", "--config"])
        .arg(config)
        .output()?;
    ensure!(
        out.status.success(),
        "dockhand-agent stock failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(to_stock(parse_stock(&serde_json::from_slice(
        &out.stdout,
    )?)?))
}

/// Sums `dockhand_movements_ingested_total` over the series with `result="duplicate"`.
fn duplicate_count(exposition: &str) -> u64 {
    exposition
        .lines()
        .filter(|l| {
            l.starts_with("dockhand_movements_ingested_total{")
                && l.contains("result=\"duplicate\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Parses `DOCKHAND_FLEET_SEEDS`: a comma-separated list of u64.
fn parse_seeds(s: &str) -> Result<Vec<u64>> {
    let seeds: Vec<u64> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse()
                .with_context(|| format!("DOCKHAND_FLEET_SEEDS: {p:?} is not a u64"))
        })
        .collect::<Result<_>>()?;
    ensure!(!seeds.is_empty(), "DOCKHAND_FLEET_SEEDS names no seed");
    Ok(seeds)
}

mod helpers {
    use super::*;

    #[test]
    fn seed_lists_parse() {
        let cases: [(&str, Option<&[u64]>); 5] = [
            ("7", Some(&[7])),
            ("1, 2,3,", Some(&[1, 2, 3])),
            ("18446744073709551615", Some(&[u64::MAX])),
            ("", None),
            ("1,x", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_seeds(input).ok().as_deref(), want, "{input:?}");
        }
    }

    #[test]
    fn duplicates_are_summed_over_sites_and_kinds_only() {
        let cases = [
            ("", 0),
            ("dockhand_movements_ingested_total{site=\"WH1\",kind=\"receive\",result=\"duplicate\"} 4\n", 4),
            (
                "dockhand_movements_ingested_total{site=\"WH1\",kind=\"receive\",result=\"duplicate\"} 4\n\
                 dockhand_movements_ingested_total{site=\"WH2\",kind=\"pick\",result=\"duplicate\"} 3\n\
                 dockhand_movements_ingested_total{site=\"WH1\",kind=\"receive\",result=\"applied\"} 90\n\
                 # HELP dockhand_movements_ingested_total result=\"duplicate\" 5\n",
                7,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(duplicate_count(text), want, "{text}");
        }
    }

    /// A receipt of `GTINS[0]` at the receiving location by hh-0.
    fn receipt(seq: u64, lot: &str) -> Stored {
        Stored {
            device: "hh-0".into(),
            seq,
            kind: "receive".into(),
            gtin: GTINS[0].into(),
            lot: lot.into(),
            qty: 1,
            from: None,
            to: Some(RECEIVING.into()),
        }
    }

    /// (case, stored, confirmed, in flight at a kill, `Ok(stored unconfirmed)` or words of the error).
    type Case = (
        &'static str,
        Vec<Stored>,
        &'static [&'static str],
        &'static [&'static str],
        Result<usize, &'static str>,
    );

    #[test]
    fn the_set_checker_accepts_exactly_the_confirmed_scans() {
        let ledger = |confirmed: &[&str], in_flight: &[&str]| Ledger {
            device: "hh-0".into(),
            gtin: GTINS[0],
            confirmed: confirmed.iter().map(|s| s.to_string()).collect(),
            in_flight_at_kill: in_flight.iter().map(|s| s.to_string()).collect(),
        };
        let twice = Stored {
            qty: 2,
            ..receipt(2, "B")
        };
        let elsewhere = Stored {
            to: Some("A-01-01".into()),
            ..receipt(2, "B")
        };
        let cases: [Case; 10] = [
            (
                "all confirmed, once",
                vec![receipt(1, "A"), receipt(2, "B")],
                &["A", "B"],
                &[],
                Ok(0),
            ),
            ("nothing at all", vec![], &[], &["A"], Ok(0)),
            (
                "durable, 0x06 lost at a kill",
                vec![receipt(1, "A"), receipt(2, "B")],
                &["A"],
                &["B"],
                Ok(1),
            ),
            (
                "in flight, never durable",
                vec![receipt(1, "A")],
                &["A"],
                &["B"],
                Ok(0),
            ),
            (
                "confirmed but lost",
                vec![receipt(1, "A")],
                &["A", "B"],
                &[],
                Err("lost confirmed"),
            ),
            (
                "stored twice",
                vec![receipt(1, "A"), receipt(2, "A")],
                &["A"],
                &[],
                Err("more than once"),
            ),
            (
                "stored, never confirmed, no kill",
                vec![receipt(1, "A"), receipt(2, "B")],
                &["A"],
                &[],
                Err("never confirmed"),
            ),
            (
                "seq gap",
                vec![receipt(1, "A"), receipt(3, "B")],
                &["A", "B"],
                &[],
                Err("not 1..=2"),
            ),
            (
                "qty doubled inside one movement",
                vec![receipt(1, "A"), twice],
                &["A", "B"],
                &[],
                Err("not the receipt"),
            ),
            (
                "received elsewhere",
                vec![receipt(1, "A"), elsewhere],
                &["A", "B"],
                &[],
                Err("not the receipt"),
            ),
        ];
        for (name, stored, confirmed, in_flight, want) in cases {
            let got = exactly_once(&stored, &[ledger(confirmed, in_flight)]);
            match (got, want) {
                (Ok(v), Ok(n)) => {
                    assert_eq!(v.stored_unconfirmed, n, "{name}");
                    assert_eq!(v.movements["hh-0"], stored.len() as u64, "{name}");
                }
                (Err(e), Err(gist)) => assert!(format!("{e:#}").contains(gist), "{name}: {e:#}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn fold_moves_quantities_between_locations() {
        let m = |from: Option<&str>, to: Option<&str>, lot: &str, qty| Stored {
            device: "hh-0".into(),
            seq: 1,
            kind: "receive".into(),
            gtin: GTINS[0].into(),
            lot: lot.into(),
            qty,
            from: from.map(Into::into),
            to: to.map(Into::into),
        };
        let key =
            |loc: &str, lot: &str| (loc.to_string(), GTINS[0].to_string(), Some(lot.to_string()));
        // (movements, expected non-zero rows)
        let cases = [
            (
                vec![m(None, Some("DOCK-1"), "A", 2)],
                vec![(key("DOCK-1", "A"), 2)],
            ),
            (
                vec![
                    m(None, Some("DOCK-1"), "A", 2),
                    m(Some("DOCK-1"), Some("B-1"), "A", 2),
                ],
                vec![(key("B-1", "A"), 2)],
            ),
            (
                vec![m(Some("B-1"), None, "A", 1)],
                vec![(key("B-1", "A"), -1)],
            ),
            (
                vec![
                    m(None, Some("DOCK-1"), "A", 1),
                    m(None, Some("DOCK-1"), "B", 1),
                ],
                vec![(key("DOCK-1", "A"), 1), (key("DOCK-1", "B"), 1)],
            ),
        ];
        for (movements, want) in cases {
            assert_eq!(
                fold(movements.iter()),
                want.into_iter().collect::<Stock>(),
                "{movements:?}"
            );
        }
    }
}
