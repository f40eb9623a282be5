//! The fleet simulation (issue 8, scope 1): our promise, "no confirmed scan is ever lost or counted twice, whatever
//! the network, the crashes or the devices' clocks do", checked the way TigerBeetle's simulator and Jepsen's set
//! checker check theirs, sized for a 2-core machine.
//!
//! # One run
//!
//! A seed drives a whole run. Every random choice (who scans what and when, which pallets cross the gate and when,
//! which process dies, which device is cut off, how far each device's clock is off, what each proxy does to each
//! connection and which server node it goes to) comes from [`SplitMix64`] streams forked from it; only the OS's
//! timing is not the seed's, so a replay repeats the schedule, not every byte.
//!
//! 1. **Fleet.** The server, [`HANDHELDS`] handheld agents and [`GATES`] dock-gate agent(s) at one site, every
//!    device behind its own [`FaultProxy`] (delays, resets at a random byte, resets at the start of a server answer,
//!    truncations, stalls, partitions).
//!    - *Server*: one `dockhand-server` on sled, or [`PG_NODES`] nodes sharing one throw-away PostgreSQL database
//!      and one data directory (TLS material, admin token), as behind a load balancer; every proxied connection
//!      goes to the node the seed picks. The backend is the seed's ([`BackendChoice`]).
//!    - *Handhelds*: each on its own pty scanner, receiving its own GTIN with a lot unique in the run, so a stored
//!      movement names the one scan that caused it.
//!    - *Gates*: each reads a simulated R2000 module on a pty (`dockhand_tests::rfidsim`) that plays a seeded script
//!      of tagged pallets carried inbound past antennas 1 (outside) and 2 (inside), one pallet every 1.2–2.2 s; each
//!      pallet is announced on the gate's ASN with 1–2 lines whose lots are unique in the run, and one in three
//!      whose second pass still fits in the phase is carried through again later (the gate must call it a
//!      duplicate, across a restart too).
//!    - *Clocks*: each device's clock is off by a seeded 30 s to 10 min, some ahead and some behind
//!      (`DOCKHAND_CLOCK_OFFSET_SECS`, the agent's simulation knob, `agent/src/clock.rs`), and a restarted agent
//!      comes back with a new offset one time in four (a clock that jumped, backwards as often as forwards).
//! 2. **Safety phase** (`DOCKHAND_FLEET_SECS`, default [`DEFAULT_SECS`] s). The gates' scripts run; steps of: bursts
//!    of scans on some handhelds, a random pause, then at most one of: SIGKILL and restart of a handheld agent (its
//!    unread pty input flushed, as a real scanner would not resend), SIGKILL and restart of a gate agent (the reader
//!    goes on playing: reads while no agent asks are lost, as at a real dock), SIGKILL and restart of a server node,
//!    a partition of one device. A live handheld must answer every scan, and only with 0x06.
//! 3. **Liveness phase.** All proxies healed; once the gates' scripts have played out, every agent's backlog must
//!    reach 0 within [`DRAIN_BOUND`].
//! 4. **Checkers.**
//!    - *Exactly once*: the movements at the server (`GET /v1/movements`), by (device, lot), each appear once; every
//!      confirmed movement is among them; each is the receipt that was scanned or announced (kind, GTIN, lot, qty,
//!      locations, SSCC, ASN); anything else stored must be a scan that was in flight when its agent was killed
//!      (durable, but the 0x06 died with the process), and these are counted. Per device the seqs are exactly
//!      1..=n, and n is the agent's durable seq and the server's high-water mark.
//!    - *What confirms*: a handheld scan is confirmed when its good-read byte (0x06) comes back on the pty. A gate
//!      has no operator to beep at; it confirms a pallet line when the line shows in its own stock view in its
//!      status file (`stock`, rows at the gate's location), which the test reads at every step and before every
//!      kill. The journal writer applies a movement to that view only after its `fdatasync`, so a line seen there
//!      is durable, exactly like an accepted gate decision on `/events` (DESIGN §3.1). The view outlives the
//!      process, so a line made durable just before a kill shows in the next life's status file: a gate has no
//!      "in flight at a kill" allowance, and every gate movement stored must have been seen. The quantity seen
//!      must be the line's: twice the line would be a pallet received twice.
//!    - *Device time*: each stored movement's `at` is the skewed device time it was stamped with, unchanged: it lies
//!      within the real-time window in which the device could have stamped it (scan written → 0x06 read, or gate
//!      script clock at the pass's start → the line first seen), shifted by the clock offset of the agent's life
//!      then, ± [`STAMP_SLACK`]; and it keeps its nanoseconds (PostgreSQL's `timestamptz` holds microseconds, so
//!      the store must keep the exact value beside it).
//!    - *Conservation*: the server's stock equals the sum of the stored movements' effects, computed here; and the
//!      stock *as of* device times (`GET /v1/stock?as_of=`) at seeded points of the run, and at the latest `at`
//!      stored, equals the sum over the movements stamped at or before that time. Skewed clocks put movements in
//!      the server's future or far in its past; nothing may be lost or counted twice for it.
//!    - *Convergence*: each agent's own stock view (status file) equals the effect of its own stored movements, and
//!      its site stock view (`dockhand-agent stock --json`) equals the server's stock once it has refreshed. With
//!      several nodes, each node reports the same movements and stock.
//!
//!    No checker orders anything by device time: the run counts, and prints, how often a device's seq order and
//!    its `at` order disagree (a clock that jumped back) and how often the server's commit order does (devices
//!    skewed apart), to show that the case occurred.
//!
//! Duplicate deliveries: a TCP proxy cannot replay a request (the bytes are one TLS session's records; a copy fails
//! the record MACs), so duplicates come from the agent's own retries: [`FaultProxy`] resets the connection at the
//! start of the server's answer, half the time before the first byte of it, after the server committed the push.
//! The agent pushes the same seqs again and the server must acknowledge without applying them twice; the figure is
//! `dockhand_movements_ingested_total{result="duplicate"}` summed over every node's lives (pushes between a node's
//! last scrape and its kill are not counted).
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
//! `DOCKHAND_FLEET_BACKEND=sled|postgres|mixed` chooses the server: `mixed` (the default) runs even seeds on
//! PostgreSQL with [`PG_NODES`] nodes and odd seeds on sled, so the CI seeds cover both. Every failure prints its
//! seed and the one-line replay command, backend included.

#[path = "../../server/tests/pg/mod.rs"]
mod pg;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, ensure, Context, Result};
use dockhand_tests::faultproxy::{FaultProxy, FaultStats, SplitMix64};
use dockhand_tests::rfidsim::{sscc18, sscc96, Direction, Pass, R2000Options, R2000Sim, Script};
use dockhand_tests::*;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The CI seed set: odd seeds on sled, even seeds on PostgreSQL with two nodes (under `mixed`).
const DEFAULT_SEEDS: [u64; 4] = [1, 2, 3, 4];
/// Safety-phase length per seed in CI.
const DEFAULT_SECS: u64 = 15;
/// Handhelds in the fleet.
const HANDHELDS: usize = 3;
/// Dock gates in the fleet.
const GATES: usize = 1;
/// Server nodes on PostgreSQL.
const PG_NODES: usize = 2;
const SITE: &str = "WH1";
const RECEIVING: &str = "DOCK-1";
/// Where the gates receive.
const GATE_LOCATION: &str = "DOCK-3";
/// How long the healed fleet may take to push every backlog.
///
/// 60 s, not 30: in a soak of 200 seeds with four fleets at once on 2 cores (load averages near 40), seeds
/// 2110-2112 (running at the same moment) left 1-16 movements per device after 30 s while their pushes were
/// succeeding: slow, not stuck. A run on a quiet machine drains in about 3 s.
const DRAIN_BOUND: Duration = Duration::from_secs(60);
/// How long a live agent may take to confirm a burst (durability is local: the network has no say).
const CONFIRM_BOUND: Duration = Duration::from_secs(10);
/// How long a good read may come after [`CONFIRM_BOUND`] and count as a slow confirm rather than a lost answer.
/// A soak runs several fleets at once on 2 cores (load averages of 25 seen), where a debug agent's fdatasync can
/// wait past 10 s; a late 0x06 is a latency figure (printed), not a lost scan. No answer at all fails the run.
const SLOW_CONFIRM_BOUND: Duration = Duration::from_secs(60);
/// A device clock is off by this many seconds or more, either way...
const MIN_SKEW_SECS: u64 = 30;
/// ...and by at most this many (10 minutes).
const MAX_SKEW_SECS: u64 = 600;
/// Tolerance of the device-time check: the window's ends are read on the same OS clock as the agent's, so this
/// only covers the reads' own granularity.
const STAMP_SLACK: time::Duration = time::Duration::seconds(1);
/// A pallet's time in the gate's field.
const PASS_MS: u64 = 1000;
/// The gates' `quiet_ms`: a pass departs (and is decided) this long after its last read.
const QUIET_MS: u64 = 2000;
/// Time between the gate script's clock start and the first pass.
const GATE_LEAD_MS: u64 = 1000;

/// (location, gtin, lot) → qty, zero rows left out.
type Stock = BTreeMap<(String, String, Option<String>), i64>;

#[test]
fn no_confirmed_scan_is_lost_or_doubled_under_faults_crashes_and_skewed_clocks() -> Result<()> {
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
    let choice = BackendChoice::parse(std::env::var("DOCKHAND_FLEET_BACKEND").ok().as_deref())?;
    let mut failed = Vec::new();
    for &seed in &seeds {
        let backend = choice.for_seed(seed);
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(|| run(seed, backend, Duration::from_secs(secs)));
        let error = match outcome {
            Ok(Ok(figures)) => {
                eprintln!(
                    "fleet seed {seed} ({}): ok in {:.0?}: {figures}",
                    backend.describe(),
                    started.elapsed()
                );
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
            "fleet seed {seed} ({}): FAILED: {error}\n  replay: DOCKHAND_FLEET_SEEDS={seed} DOCKHAND_FLEET_SECS={secs} \
             DOCKHAND_FLEET_BACKEND={} cargo test -p dockhand-tests --test fleet -- --nocapture",
            backend.describe(),
            backend.name()
        );
        failed.push(seed);
    }
    ensure!(failed.is_empty(), "fleet seeds failed: {failed:?}");
    Ok(())
}

/// Which server a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Backend {
    /// One node on its sled store.
    Sled,
    /// [`PG_NODES`] nodes on one PostgreSQL database.
    Postgres,
}

impl Backend {
    /// The value of `DOCKHAND_FLEET_BACKEND` that replays it.
    fn name(self) -> &'static str {
        match self {
            Backend::Sled => "sled",
            Backend::Postgres => "postgres",
        }
    }

    fn nodes(self) -> usize {
        match self {
            Backend::Sled => 1,
            Backend::Postgres => PG_NODES,
        }
    }

    fn describe(self) -> String {
        match self {
            Backend::Sled => "sled, 1 node".into(),
            Backend::Postgres => format!("postgres, {PG_NODES} nodes"),
        }
    }
}

/// `DOCKHAND_FLEET_BACKEND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BackendChoice {
    Only(Backend),
    /// Even seeds on PostgreSQL, odd seeds on sled.
    Mixed,
}

impl BackendChoice {
    fn parse(value: Option<&str>) -> Result<BackendChoice> {
        match value.map(str::trim) {
            None | Some("") | Some("mixed") => Ok(BackendChoice::Mixed),
            Some("sled") => Ok(BackendChoice::Only(Backend::Sled)),
            Some("postgres") => Ok(BackendChoice::Only(Backend::Postgres)),
            Some(other) => bail!("DOCKHAND_FLEET_BACKEND={other:?}: want sled, postgres or mixed"),
        }
    }

    fn for_seed(self, seed: u64) -> Backend {
        match self {
            BackendChoice::Only(b) => b,
            BackendChoice::Mixed if seed.is_multiple_of(2) => Backend::Postgres,
            BackendChoice::Mixed => Backend::Sled,
        }
    }
}

/// What one run did, printed as one line.
#[derive(Debug, Default)]
struct Figures {
    sent: usize,
    confirmed: usize,
    /// Bursts whose good reads came after [`CONFIRM_BOUND`] (within [`SLOW_CONFIRM_BOUND`]), and the slowest.
    slow_confirms: u64,
    slowest_confirm: Duration,
    /// Stored without a 0x06 seen: in flight when the agent was killed.
    stored_unconfirmed: usize,
    stored: usize,
    /// Pallets in the gates' scripts, and of them carried through twice.
    pallets: usize,
    repeat_passes: usize,
    /// Gate movements stored (one per pallet line received).
    gate_lines: usize,
    /// The gates' pass counters, as last seen in each life's status file: received, duplicate, unresolved.
    gate_passes: GateCounters,
    /// Schedule steps taken: a replay takes the same steps in the same order, as many as fit in the time.
    steps: u64,
    agent_kills: u64,
    gate_kills: u64,
    node_kills: u64,
    /// Clock offsets of the devices at the start, in seconds.
    skews: Vec<i64>,
    /// Restarts that came back with another clock offset.
    clock_jumps: u64,
    /// Consecutive seqs of one device whose `at` goes backwards.
    seq_time_inversions: usize,
    /// Consecutive movements in server commit order whose `at` goes backwards.
    commit_time_inversions: usize,
    /// As-of stock probes compared.
    as_of_probes: usize,
    /// Movements the server acknowledged again (`dockhand_movements_ingested_total{result="duplicate"}`), summed
    /// over the nodes' lives; pushes between the last scrape and a kill are not counted.
    duplicates: u64,
    faults: FaultStats,
    drain: Duration,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let x = &self.faults;
        let skews: Vec<String> = self.skews.iter().map(|s| format!("{s:+}")).collect();
        write!(
            f,
            "steps {}; scans sent {} confirmed {} (bursts confirmed late {}, slowest {:.1?}) stored {} (stored unconfirmed at a kill {}); gate pallets {} \
             (repeated {}) lines stored {}, passes received {} duplicate {} unresolved {}; kills agent {} gate {} node {}; clocks [{}] s, jumps {}, \
             time inversions seq {} commit {}; as-of probes {}; connections {} resets {} (request {} response {}) \
             truncations {} stalls {} delayed {} partitions {} refused {}; duplicates delivered {}; drain {:.1?}",
            self.steps,
            self.sent,
            self.confirmed,
            self.slow_confirms,
            self.slowest_confirm,
            self.stored,
            self.stored_unconfirmed,
            self.pallets,
            self.repeat_passes,
            self.gate_lines,
            self.gate_passes.receipts,
            self.gate_passes.duplicates,
            self.gate_passes.unresolved,
            self.agent_kills,
            self.gate_kills,
            self.node_kills,
            skews.join(" "),
            self.clock_jumps,
            self.seq_time_inversions,
            self.commit_time_inversions,
            self.as_of_probes,
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

/// The real time now, on the OS clock the agents' own clocks are offsets of.
fn real_now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A seeded clock offset: [`MIN_SKEW_SECS`]..=[`MAX_SKEW_SECS`] seconds, ahead or behind as `ahead` says.
fn draw_skew(rng: &mut SplitMix64, ahead: bool) -> i64 {
    let secs = rng.between(MIN_SKEW_SECS, MAX_SKEW_SECS) as i64;
    if ahead {
        secs
    } else {
        -secs
    }
}

/// One life of an agent process and its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Life {
    /// Real time it was started (before the spawn).
    from: OffsetDateTime,
    /// Real time it was killed (after the kill); none while it lives.
    to: Option<OffsetDateTime>,
    /// Its clock offset.
    offset_secs: i64,
}

/// A movement a device may store, as the checkers expect it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Receipt {
    gtin: String,
    qty: u64,
    to: String,
    sscc: Option<String>,
    reference: Option<String>,
}

impl Receipt {
    /// A handheld's blind receipt of one unit at the receiving location.
    fn scanned(gtin: &str) -> Receipt {
        Receipt {
            gtin: gtin.into(),
            qty: 1,
            to: RECEIVING.into(),
            sscc: None,
            reference: None,
        }
    }
}

/// What the test knows of one device's movements: the ground truth the checkers judge the server by.
#[derive(Debug, Clone)]
struct Ledger {
    device: String,
    /// Every lot the device was given (scanned, or carried past the gate), and the receipt it must make.
    expected: BTreeMap<String, Receipt>,
    /// Lots confirmed (module doc: what confirms).
    confirmed: BTreeSet<String>,
    /// Lots in flight when the agent died: each may be durable, hence stored, with its confirmation lost.
    in_flight_at_kill: BTreeSet<String>,
    /// Real time within which each lot was stamped, if it was: (earliest, latest).
    windows: BTreeMap<String, (OffsetDateTime, OffsetDateTime)>,
    /// The agent's lives, oldest first.
    lives: Vec<Life>,
}

impl Ledger {
    fn new(device: &str, offset_secs: i64) -> Ledger {
        Ledger {
            device: device.into(),
            expected: BTreeMap::new(),
            confirmed: BTreeSet::new(),
            in_flight_at_kill: BTreeSet::new(),
            windows: BTreeMap::new(),
            lives: vec![Life {
                from: real_now(),
                to: None,
                offset_secs,
            }],
        }
    }

    fn offset_secs(&self) -> i64 {
        self.lives.last().map_or(0, |l| l.offset_secs)
    }

    /// Ends the current life now and starts the next with `offset_secs`.
    fn next_life(&mut self, killed: OffsetDateTime, offset_secs: i64) {
        if let Some(l) = self.lives.last_mut() {
            l.to = Some(killed);
        }
        self.lives.push(Life {
            from: real_now(),
            to: None,
            offset_secs,
        });
    }
}

/// The environment that gives an agent its clock offset.
fn clock_env(offset_secs: i64) -> [(&'static str, String); 1] {
    [(dockhand_agent::clock::OFFSET_ENV, offset_secs.to_string())]
}

/// Restarts an agent after a kill, with a new clock one time in four; returns whether the clock jumped.
fn restart_agent(
    agent: &mut Option<AgentProc>,
    ledger: &mut Ledger,
    clocks: &mut SplitMix64,
    config: &Path,
    data: &Path,
) -> Result<bool> {
    if let Some(mut a) = agent.take() {
        a.kill();
    }
    let killed = real_now();
    let jump = clocks.chance(25);
    let offset = if jump {
        let ahead = clocks.chance(50);
        draw_skew(clocks, ahead)
    } else {
        ledger.offset_secs()
    };
    ledger.next_life(killed, offset);
    *agent = Some(AgentProc::start_with_env(config, data, &clock_env(offset))?);
    Ok(jump)
}

/// One simulated handheld: its scanner, its link and its agent, and what the test knows of its scans.
struct Device {
    name: String,
    scanner: Scanner,
    proxy: FaultProxy,
    agent: Option<AgentProc>,
    config: PathBuf,
    data: PathBuf,
    gtin: &'static str,
    /// Lots written to the scanner whose feedback is still due, in scan order, with when they were written.
    pending: Vec<(String, OffsetDateTime)>,
    sent: usize,
    ledger: Ledger,
    /// Bursts answered only after [`CONFIRM_BOUND`], and the slowest answer.
    slow_confirms: u64,
    slowest_confirm: Duration,
}

impl Device {
    fn agent(&self) -> Result<&AgentProc> {
        self.agent.as_ref().context("agent not running")
    }

    /// Writes a burst of `n` scans with fresh lots.
    fn scan_burst(&mut self, index: usize, n: u64) -> Result<()> {
        let mut bytes = Vec::new();
        let written = real_now();
        for _ in 0..n {
            self.sent += 1;
            let lot = format!("H{index}N{:05}", self.sent);
            bytes.extend_from_slice(item_scan(self.gtin, &lot).as_bytes());
            bytes.extend_from_slice(b"\r\n");
            self.ledger
                .expected
                .insert(lot.clone(), Receipt::scanned(self.gtin));
            self.pending.push((lot, written));
        }
        self.scanner.write(&bytes)
    }

    /// Books `n` pending scans as answered by `until`, the rest (if `rest_in_flight`) as in flight at a kill.
    fn settle(&mut self, n: usize, until: OffsetDateTime, rest_in_flight: bool) {
        let rest = self.pending.split_off(n.min(self.pending.len()));
        for (lot, written) in self.pending.drain(..) {
            self.ledger.windows.insert(lot.clone(), (written, until));
            self.ledger.confirmed.insert(lot);
        }
        if rest_in_flight {
            for (lot, written) in rest {
                self.ledger.windows.insert(lot.clone(), (written, until));
                self.ledger.in_flight_at_kill.insert(lot);
            }
        } else {
            self.pending = rest;
        }
    }

    /// Takes the feedback of every pending scan from a live agent: all of it, and only good reads.
    fn collect(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let n = self.pending.len();
        let started = std::time::Instant::now();
        let mut fb = self.scanner.feedback_n(n, CONFIRM_BOUND);
        if fb.len() < n && fb.iter().all(|&b| b == ACK) {
            fb.extend(self.scanner.feedback_n(n - fb.len(), SLOW_CONFIRM_BOUND));
            if fb.len() == n {
                self.slow_confirms += 1;
                self.slowest_confirm = self.slowest_confirm.max(started.elapsed());
            }
        }
        let answered = real_now();
        ensure!(
            fb.len() == self.pending.len() && fb.iter().all(|&b| b == ACK),
            "{}: a live agent answered {} scans with {fb:02x?}",
            self.name,
            self.pending.len()
        );
        self.settle(fb.len(), answered, false);
        Ok(())
    }

    /// SIGKILLs the agent, books what it confirmed before dying, and starts a new one.
    fn crash_and_restart(&mut self, clocks: &mut SplitMix64) -> Result<bool> {
        if let Some(agent) = self.agent.as_mut() {
            agent.kill();
        }
        let killed = real_now();
        // Feedback written before the kill is still in the pty, in scan order.
        let fb = self
            .scanner
            .feedback_n(self.pending.len(), Duration::from_millis(300));
        ensure!(
            fb.iter().all(|&b| b == ACK),
            "{}: bad feedback before the kill: {fb:02x?}",
            self.name
        );
        self.settle(fb.len(), killed, true);
        // The dead agent may have left part of a scan unread; a real scanner would not resend it either.
        self.scanner.flush_unread()?;
        restart_agent(
            &mut self.agent,
            &mut self.ledger,
            clocks,
            &self.config,
            &self.data,
        )
    }
}

/// One pallet of a gate's script and what its ASN announces.
#[derive(Debug, Clone)]
struct Pallet {
    sscc: String,
    epc: Vec<u8>,
    /// (gtin, lot, qty).
    lines: Vec<(String, String, u64)>,
    /// Starts of its passes, in ms of the script's clock: one, or two for a pallet carried through again.
    passes: Vec<u64>,
}

/// A gate's script: pallets one every 1.2–2.2 s from [`GATE_LEAD_MS`] until the safety phase ends, each with 1–2
/// lines of two GTINs no handheld scans, one in three carried through a second time once the first pass is long
/// decided (more than [`QUIET_MS`] after its end, so it is a pass of its own) if that still fits in `len`.
fn gate_plan(rng: &mut SplitMix64, gate: usize, len: Duration) -> (Vec<Pallet>, Script) {
    let len_ms = len.as_millis() as u64;
    let mut pallets: Vec<Pallet> = Vec::new();
    let mut t = GATE_LEAD_MS;
    while t + PASS_MS + 500 <= len_ms {
        let i = pallets.len();
        let sscc = sscc18(
            dockhand_tests::rfidsim::script::PALLET_COMPANY_PREFIX,
            3,
            (gate * 10_000 + i) as u64,
        );
        let lines = (0..rng.between(1, 2))
            .map(|k| {
                (
                    GTINS[3 + (i + k as usize) % 2].to_string(),
                    format!("G{gate}P{i:03}L{k}"),
                    rng.between(1, 24),
                )
            })
            .collect();
        let mut passes = vec![t];
        let again = t + PASS_MS + QUIET_MS + rng.between(1500, 4000);
        if rng.chance(33) && again + PASS_MS + 500 <= len_ms {
            passes.push(again);
        }
        pallets.push(Pallet {
            epc: sscc96(&sscc, 7, 0),
            sscc,
            lines,
            passes,
        });
        t += rng.between(1200, 2200);
    }
    let mut script = Script::new(rng.next_u64());
    for p in &pallets {
        for &start in &p.passes {
            let mut pass = Pass::new(vec![p.epc.clone()], Direction::Inbound);
            pass.duration_ms = PASS_MS;
            // As in the gate e2e: a tenth of the pass seen by both antennas gives a confidence of about 0.85.
            pass.overlap = 0.1;
            pass.reads_per_tag = (40, 150);
            script.passes.push((start, pass));
        }
    }
    script.passes.sort_by_key(|p| p.0);
    (pallets, script)
}

/// One simulated dock gate: its reader, its link and its agent, and what the test saw of its stock view.
struct Gate {
    name: String,
    sim: R2000Sim,
    proxy: FaultProxy,
    agent: Option<AgentProc>,
    config: PathBuf,
    data: PathBuf,
    pallets: Vec<Pallet>,
    /// Real time the reader's script clock started.
    clock_start: Option<OffsetDateTime>,
    /// Largest quantity of each lot seen at the gate's location in its own stock view.
    seen_qty: BTreeMap<String, i64>,
    /// Pass counters of the lives that ended, and of the current one, as last seen.
    counters_past: GateCounters,
    counters_now: GateCounters,
    ledger: Ledger,
}

/// A gate agent's pass counters (status file `gate`; each life starts at zero).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct GateCounters {
    receipts: u64,
    duplicates: u64,
    unresolved: u64,
}

impl std::ops::Add for GateCounters {
    type Output = GateCounters;

    fn add(self, o: GateCounters) -> GateCounters {
        GateCounters {
            receipts: self.receipts + o.receipts,
            duplicates: self.duplicates + o.duplicates,
            unresolved: self.unresolved + o.unresolved,
        }
    }
}

impl Gate {
    fn agent(&self) -> Result<&AgentProc> {
        self.agent.as_ref().context("gate agent not running")
    }

    /// Starts the script's clock: the first pass is [`GATE_LEAD_MS`] away.
    fn start_clock(&mut self) {
        self.sim.start_clock();
        // The reader starts its script at the gate's first inventory command if that came first (while the rest
        // of the fleet was starting, seconds earlier on a loaded machine): the windows count from when it did.
        let started = self
            .sim
            .clock_started()
            .expect("the clock was just started");
        let start = real_now() - started.elapsed();
        self.clock_start = Some(start);
        for p in &self.pallets {
            let first = start + time::Duration::milliseconds(p.passes[0] as i64);
            for (_, lot, _) in &p.lines {
                self.ledger
                    .windows
                    .insert(lot.clone(), (first, OffsetDateTime::UNIX_EPOCH));
            }
        }
    }

    /// Reads the status file: every line in the gate's stock view is confirmed (module doc: what confirms).
    fn observe(&mut self) -> Result<()> {
        let Some(agent) = self.agent.as_ref() else {
            return Ok(());
        };
        // Between the agent's start and its first status write there is no file: nothing to see yet.
        let Ok(status) = agent.status() else {
            return Ok(());
        };
        let seen = real_now();
        let counter = |k: &str| status["gate"][k].as_u64().unwrap_or(0);
        self.counters_now = GateCounters {
            receipts: counter("receipts"),
            duplicates: counter("duplicates"),
            unresolved: counter("unresolved"),
        };
        for (loc, _, lot, qty) in parse_stock(&status)? {
            let Some(lot) = lot.filter(|_| loc == GATE_LOCATION) else {
                continue;
            };
            ensure!(
                self.ledger.expected.contains_key(&lot),
                "{}: its stock view shows lot {lot}, which no pallet carries",
                self.name
            );
            let max = self.seen_qty.entry(lot.clone()).or_default();
            *max = (*max).max(qty);
            if self.ledger.confirmed.insert(lot.clone()) {
                if let Some(w) = self.ledger.windows.get_mut(&lot) {
                    w.1 = seen;
                }
            }
        }
        Ok(())
    }

    /// Looks at the stock view one last time, SIGKILLs the agent and starts a new one; the reader plays on.
    fn crash_and_restart(&mut self, clocks: &mut SplitMix64) -> Result<bool> {
        self.observe()?;
        self.counters_past = self.counters_past + std::mem::take(&mut self.counters_now);
        restart_agent(
            &mut self.agent,
            &mut self.ledger,
            clocks,
            &self.config,
            &self.data,
        )
    }

    /// Each line the view showed must have shown its own quantity: more is a pallet received twice.
    fn check_seen_quantities(&self) -> Result<()> {
        for (lot, &qty) in &self.seen_qty {
            let want = self.ledger.expected.get(lot).map_or(0, |r| r.qty as i64);
            ensure!(
                qty == want,
                "{}: its stock view showed lot {lot} at {qty}, the pallet line holds {want}",
                self.name
            );
        }
        Ok(())
    }
}

/// The server: one sled node, or several nodes on one PostgreSQL database.
struct Servers {
    nodes: Vec<ServerProc>,
    ports: Vec<u16>,
    data: PathBuf,
    config: Option<PathBuf>,
}

impl Servers {
    fn start(backend: Backend, data: &Path) -> Result<(Servers, Option<pg::TestDb>)> {
        std::fs::create_dir_all(data)?;
        let (config, db) = match backend {
            Backend::Sled => (None, None),
            Backend::Postgres => {
                let db = pg::database();
                // In the data directory, so `dockhand-server enroll --data` enrolls into PostgreSQL too.
                let config = data.join("server.toml");
                std::fs::write(
                    &config,
                    format!(
                        "store = \"postgres\"\npostgres_url = \"{}\"\npostgres_max_connections = 4\n",
                        db.cluster.tcp_url(&db.name)
                    ),
                )?;
                (Some(config), Some(db))
            }
        };
        let ports: Vec<u16> = (0..backend.nodes()).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        // One at a time: the first creates the TLS material and admin token the others reuse.
        for &port in &ports {
            nodes.push(ServerProc::start_with_config(
                data,
                port,
                config.as_deref(),
            )?);
        }
        Ok((
            Servers {
                nodes,
                ports,
                data: data.to_path_buf(),
                config,
            },
            db,
        ))
    }

    /// SIGKILLs node `i`, waits `pause`, and starts it again on its port.
    fn kill_and_restart(&mut self, i: usize, pause: Duration) -> Result<()> {
        self.nodes[i].kill();
        std::thread::sleep(pause);
        self.nodes[i] =
            ServerProc::start_with_config(&self.data, self.ports[i], self.config.as_deref())?;
        Ok(())
    }

    /// `dockhand_movements_ingested_total{result="duplicate"}` of node `i`.
    fn duplicates_of(&self, i: usize) -> Result<u64> {
        let node = &self.nodes[i];
        let text = node
            .client()?
            .get(format!("{}/metrics", node.url()))
            .bearer_auth(node.admin_token()?)
            .send()?
            .error_for_status()?
            .text()?;
        Ok(duplicate_count(&text))
    }

    fn duplicates(&self) -> Result<u64> {
        (0..self.nodes.len()).map(|i| self.duplicates_of(i)).sum()
    }
}

/// A server, its devices and the run's figures.
struct Fleet {
    devices: Vec<Device>,
    gates: Vec<Gate>,
    servers: Servers,
    figures: Figures,
    /// After the servers (fields drop in order): the database outlives the nodes using it.
    _db: Option<pg::TestDb>,
    /// Last, so it is deleted after the processes writing into it are killed.
    _tmp: tempfile::TempDir,
}

/// Lets an agent's site stock view refresh every second, so convergence is seen quickly.
fn with_fast_stock_refresh(config: &Path) -> Result<()> {
    let toml = std::fs::read_to_string(config)?;
    let toml = toml.replacen(
        "max_backoff_ms = 500\n",
        "max_backoff_ms = 500\nstock_refresh_ms = 1000\n",
        1,
    );
    ensure!(
        toml.contains("stock_refresh_ms"),
        "agent config layout changed"
    );
    std::fs::write(config, toml)?;
    Ok(())
}

impl Fleet {
    fn start(
        seed: u64,
        backend: Backend,
        safety: Duration,
        links: &mut SplitMix64,
        clocks: &mut SplitMix64,
        scripts: &mut SplitMix64,
    ) -> Result<Fleet> {
        let tmp = tempfile::tempdir()?;
        let server_data = tmp.path().join("server");
        let (servers, db) = Servers::start(backend, &server_data)?;
        let ca = server_data.join("ca.pem");
        let mut figures = Figures::default();
        // Alternating signs from a seeded first one: some devices ahead, some behind, in every run.
        let first_ahead = clocks.chance(50);
        let mut next_skew = |i: usize| draw_skew(clocks, first_ahead == i.is_multiple_of(2));

        let mut devices = Vec::new();
        for (i, gtin) in GTINS.iter().take(HANDHELDS).enumerate() {
            let name = format!("hh-{i}");
            let token = enroll(&server_data, &name, SITE)?;
            let scanner = Scanner::new()?;
            let proxy = FaultProxy::start_to(&servers.ports, links.next_u64())?;
            let data = tmp.path().join(&name);
            let config = AgentSpec {
                device: &name,
                site: SITE,
                data: &data,
                server: Some((proxy.url(), ca.clone(), token)),
                scanner: &scanner.path,
                max_backoff_ms: 500,
            }
            .write_config()?;
            with_fast_stock_refresh(&config)?;
            let offset = next_skew(i);
            figures.skews.push(offset);
            let ledger = Ledger::new(&name, offset);
            let agent = AgentProc::start_with_env(&config, &data, &clock_env(offset))?;
            let mut device = Device {
                name,
                scanner,
                proxy,
                agent: Some(agent),
                config,
                data,
                gtin,
                pending: Vec::new(),
                sent: 0,
                ledger,
                slow_confirms: 0,
                slowest_confirm: Duration::ZERO,
            };
            let fb = device.scanner.scan_and_wait("DH:RECEIVE", CONFIRM_BOUND)?;
            ensure!(
                fb == Some(ACK),
                "{}: DH:RECEIVE answered {fb:?}",
                device.name
            );
            devices.push(device);
        }

        let office = Office::new(&servers.nodes[0])?;
        let mut gates = Vec::new();
        for g in 0..GATES {
            let name = format!("gate-{g}");
            let (pallets, script) = gate_plan(scripts, g, safety);
            let asn = format!("ASN-{name}");
            let body: Vec<Value> = pallets
                .iter()
                .map(|p| {
                    json!({"sscc": p.sscc, "lines": p.lines.iter()
                        .map(|(gtin, lot, qty)| json!({"gtin": gtin, "lot": lot, "qty": qty}))
                        .collect::<Vec<_>>()})
                })
                .collect();
            office.post(
                "/v1/asns",
                Some(json!({"id": asn, "site": SITE, "supplier": "ACME", "pallets": body})),
            )?;
            let token = enroll(&server_data, &name, SITE)?;
            // The script starts with the safety phase, after the gate has pulled its ASN (below): a pallet
            // passing before that would be received as an unannounced unit, not against its ASN lines.
            let sim = R2000Sim::start_with(
                &script,
                R2000Options {
                    manual_clock: true,
                    ..R2000Options::default()
                },
            )?;
            let proxy = FaultProxy::start_to(&servers.ports, links.next_u64())?;
            let data = tmp.path().join(&name);
            let config = GateSpec {
                device: &name,
                site: SITE,
                data: &data,
                server: (proxy.url(), ca.clone(), token),
                location: GATE_LOCATION,
                reader: GateReader::R2000(sim.path().to_path_buf()),
                quiet_ms: QUIET_MS,
                min_reads: 3,
                min_confidence: 0.5,
            }
            .write_config()?;
            with_fast_stock_refresh(&config)?;
            let offset = next_skew(HANDHELDS + g);
            figures.skews.push(offset);
            let mut ledger = Ledger::new(&name, offset);
            for p in &pallets {
                for (gtin, lot, qty) in &p.lines {
                    ledger.expected.insert(
                        lot.clone(),
                        Receipt {
                            gtin: gtin.clone(),
                            qty: *qty,
                            to: GATE_LOCATION.into(),
                            sscc: Some(p.sscc.clone()),
                            reference: Some(asn.clone()),
                        },
                    );
                }
            }
            figures.pallets += pallets.len();
            figures.repeat_passes += pallets.iter().filter(|p| p.passes.len() > 1).count();
            let agent = AgentProc::start_with_env(&config, &data, &clock_env(offset))?;
            gates.push(Gate {
                name,
                sim,
                proxy,
                agent: Some(agent),
                config,
                data,
                pallets,
                clock_start: None,
                seen_qty: BTreeMap::new(),
                counters_past: GateCounters::default(),
                counters_now: GateCounters::default(),
                ledger,
            });
        }
        // A gate receives against the ASN only once it has pulled it.
        for gate in &gates {
            wait_until(Duration::from_secs(30), || {
                Ok(gate.agent()?.status()?["sync"]["master"]["asns"].as_u64() >= Some(1))
            })
            .with_context(|| format!("{} never pulled its ASN", gate.name))?;
        }
        eprintln!(
            "fleet seed {seed}: {HANDHELDS} handhelds and {GATES} gate(s) up on {}",
            backend.describe()
        );
        Ok(Fleet {
            devices,
            gates,
            servers,
            figures,
            _db: db,
            _tmp: tmp,
        })
    }

    /// The safety phase: scans, pallets, crashes and partitions until `len` has passed.
    fn safety(
        &mut self,
        schedule: &mut SplitMix64,
        clocks: &mut SplitMix64,
        len: Duration,
    ) -> Result<()> {
        for gate in &mut self.gates {
            gate.start_clock();
        }
        let end = Instant::now() + len;
        let links = self.devices.len() + self.gates.len();
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
                    let d = schedule.below(self.devices.len() as u64) as usize;
                    if self.devices[d].crash_and_restart(clocks)? {
                        self.figures.clock_jumps += 1;
                    }
                    self.figures.agent_kills += 1;
                }
                10..13 => {
                    let node = schedule.below(self.servers.nodes.len() as u64) as usize;
                    self.figures.duplicates += self.servers.duplicates_of(node)?;
                    let pause = Duration::from_millis(schedule.between(0, 800));
                    self.servers.kill_and_restart(node, pause)?;
                    self.figures.node_kills += 1;
                }
                13..18 => {
                    let link = schedule.below(links as u64) as usize;
                    let len = Duration::from_millis(schedule.between(300, 3000));
                    match link.checked_sub(self.devices.len()) {
                        None => self.devices[link].proxy.partition(len),
                        Some(g) => self.gates[g].proxy.partition(len),
                    }
                }
                18..19 if !self.gates.is_empty() => {
                    let g = schedule.below(self.gates.len() as u64) as usize;
                    if self.gates[g].crash_and_restart(clocks)? {
                        self.figures.clock_jumps += 1;
                    }
                    self.figures.gate_kills += 1;
                }
                _ => {}
            }
            for d in &mut self.devices {
                d.collect()?;
            }
            for g in &mut self.gates {
                g.observe()?;
            }
        }
        Ok(())
    }

    /// The liveness phase: heals every link, lets the gates' scripts play out and waits for every backlog to drain.
    fn drain(&mut self) -> Result<()> {
        for d in &self.devices {
            d.proxy.heal();
        }
        for g in &self.gates {
            g.proxy.heal();
        }
        let t0 = Instant::now();
        for g in &mut self.gates {
            wait_until(Duration::from_secs(30), || Ok(g.sim.done()))
                .with_context(|| format!("{}: the reader's script never played out", g.name))?;
        }
        // The last pass departs QUIET_MS after its last read.
        std::thread::sleep(Duration::from_millis(QUIET_MS + 500));
        let healed = SystemTime::now();
        let statuses = || {
            self.devices
                .iter()
                .map(|d| (d.name.as_str(), d.data.as_path(), d.agent()))
                .chain(
                    self.gates
                        .iter()
                        .map(|g| (g.name.as_str(), g.data.as_path(), g.agent())),
                )
        };
        let drained = wait_until(DRAIN_BOUND, || {
            for (_, data, agent) in statuses() {
                // A status file written before the heal could show a backlog that has grown since.
                let fresh = std::fs::metadata(data.join("status.json"))
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t > healed);
                let s = agent?.status()?;
                if !fresh || s["backlog"] != 0 || s["durable_seq"] != s["sync"]["acked_through"] {
                    return Ok(false);
                }
            }
            Ok(true)
        });
        if let Err(e) = drained {
            let mut why = String::new();
            for (name, _, agent) in statuses() {
                let s = agent?.status()?;
                why.push_str(&format!(
                    "\n  {name}: backlog {} durable {} acked {} last sync {}",
                    s["backlog"],
                    s["durable_seq"],
                    s["sync"]["acked_through"],
                    s["sync"]["last_result"]
                ));
            }
            bail!("liveness: backlogs not drained within {DRAIN_BOUND:?}: {e:#}{why}");
        }
        self.figures.drain = t0.elapsed();
        self.figures.duplicates += self.servers.duplicates()?;
        for g in &mut self.gates {
            g.observe()?;
        }
        Ok(())
    }

    /// Exactly once, device time, conservation (now and as of device times) and convergence.
    fn check(&mut self, probes: &mut SplitMix64) -> Result<()> {
        let office = Office::new(&self.servers.nodes[0])?;
        let listed = office.movements(SITE)?;
        let stored: Vec<Stored> = listed.iter().map(Stored::parse).collect::<Result<_>>()?;
        self.figures.stored = stored.len();
        let server_stock = to_stock(self.servers.nodes[0].stock(SITE)?);
        // Every node tells the same story.
        for node in &self.servers.nodes[1..] {
            let other = Office::new(node)?.movements(SITE)?;
            ensure!(
                other == listed,
                "nodes disagree: {} lists {} movements, {} lists {}",
                self.servers.nodes[0].addr,
                listed.len(),
                node.addr,
                other.len()
            );
            ensure!(
                to_stock(node.stock(SITE)?) == server_stock,
                "nodes disagree on stock: {} and {}",
                self.servers.nodes[0].addr,
                node.addr
            );
        }

        // Exactly once, then the seqs against the agents' and the server's counts.
        for g in &self.gates {
            g.check_seen_quantities()?;
        }
        let ledgers: Vec<Ledger> = self
            .devices
            .iter()
            .map(|d| d.ledger.clone())
            .chain(self.gates.iter().map(|g| g.ledger.clone()))
            .collect();
        let verdict = exactly_once(&stored, &ledgers)?;
        self.figures.stored_unconfirmed = verdict.stored_unconfirmed;
        let agents = self
            .devices
            .iter()
            .map(|d| (d.name.as_str(), d.agent()))
            .chain(self.gates.iter().map(|g| (g.name.as_str(), g.agent())));
        for (name, agent) in agents {
            let n = verdict.movements.get(name).copied().unwrap_or(0);
            let durable = agent?.status()?["durable_seq"].as_u64();
            let high_water =
                office.get(&format!("/v1/devices/{name}/high-water"))?["acked_through"].as_u64();
            ensure!(
                (durable, high_water) == (Some(n), Some(n)),
                "{name}: {n} movements stored, agent durable seq {durable:?}, server high-water {high_water:?}"
            );
        }

        // Device time: as stamped, skew and all.
        let times = device_times(&stored, &ledgers)?;
        self.figures.seq_time_inversions = times.seq_inversions;
        self.figures.commit_time_inversions = times.commit_inversions;

        // Conservation: the server's stock is the sum of what it stored, now and as of device times.
        let expected = fold(stored.iter());
        ensure!(
            server_stock == expected,
            "conservation: server stock {server_stock:?} != sum of its movements {expected:?}"
        );
        for as_of in as_of_probes(&stored, probes) {
            let text = as_of.format(&Rfc3339)?;
            let got = to_stock(parse_stock(
                &office.get(&format!("/v1/stock?site={SITE}&as_of={text}"))?,
            )?);
            let want = fold(stored.iter().filter(|m| m.at <= as_of));
            ensure!(
                got == want,
                "conservation as of {text}: server stock {got:?} != sum of the movements stamped by then {want:?}"
            );
            self.figures.as_of_probes += 1;
        }

        // Convergence: each device's own view, then its site view after a refresh.
        let views = self
            .devices
            .iter()
            .map(|d| (d.name.as_str(), d.agent(), d.config.as_path()))
            .chain(
                self.gates
                    .iter()
                    .map(|g| (g.name.as_str(), g.agent(), g.config.as_path())),
            );
        for (name, agent, config) in views {
            let agent = agent?;
            let own = fold(stored.iter().filter(|m| m.device == name));
            wait_until(Duration::from_secs(10), || {
                Ok(to_stock(parse_stock(&agent.status()?)?) == own)
            })
            .with_context(|| {
                format!("convergence: {name}'s own stock view never matched its movements")
            })?;
            wait_until(Duration::from_secs(15), || {
                Ok(site_stock(config)? == server_stock)
            })
            .with_context(|| {
                format!("convergence: {name}'s site stock never matched the server's")
            })?;
        }

        self.figures.sent = self.devices.iter().map(|d| d.sent).sum();
        self.figures.confirmed = self.devices.iter().map(|d| d.ledger.confirmed.len()).sum();
        self.figures.slow_confirms = self.devices.iter().map(|d| d.slow_confirms).sum();
        self.figures.slowest_confirm = self
            .devices
            .iter()
            .map(|d| d.slowest_confirm)
            .max()
            .unwrap_or_default();
        self.figures.gate_lines = stored
            .iter()
            .filter(|m| self.gates.iter().any(|g| g.name == m.device))
            .count();
        for g in &self.gates {
            self.figures.gate_passes = self.figures.gate_passes + g.counters_past + g.counters_now;
        }
        for proxy in self
            .devices
            .iter()
            .map(|d| &d.proxy)
            .chain(self.gates.iter().map(|g| &g.proxy))
        {
            self.figures.faults += proxy.stats();
        }
        Ok(())
    }
}

/// What the exactly-once checker found, when it found nothing wrong.
#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    /// Movements stored per device (its seqs are exactly 1..=n).
    movements: BTreeMap<String, u64>,
    /// Stored without a confirmation seen, each in flight when its agent was killed.
    stored_unconfirmed: usize,
}

/// The set checker: the stored movements are exactly the confirmed ones, each once, plus possibly ones that were
/// in flight at a kill; each is the receipt that was scanned or announced; each device's seqs are 1..=n.
fn exactly_once(stored: &[Stored], ledgers: &[Ledger]) -> Result<Verdict> {
    let mut by_lot: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut seqs: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for m in stored {
        *by_lot.entry((&m.device, &m.lot)).or_default() += 1;
        seqs.entry(&m.device).or_default().push(m.seq);
    }
    let doubled: Vec<_> = by_lot.iter().filter(|(_, &n)| n > 1).collect();
    ensure!(
        doubled.is_empty(),
        "exactly once: movements stored more than once: {doubled:?}"
    );
    for l in ledgers {
        let lost: Vec<_> = l
            .confirmed
            .iter()
            .filter(|lot| !by_lot.contains_key(&(l.device.as_str(), lot.as_str())))
            .collect();
        ensure!(
            lost.is_empty(),
            "exactly once: {} lost confirmed movements {lost:?}",
            l.device
        );
    }
    let mut stored_unconfirmed = 0;
    for m in stored {
        let l = ledgers
            .iter()
            .find(|l| l.device == m.device)
            .with_context(|| format!("exactly once: a movement of unknown device {}", m.device))?;
        let want = l.expected.get(&m.lot);
        let got = Receipt {
            gtin: m.gtin.clone(),
            qty: m.qty,
            to: m.to.clone().unwrap_or_default(),
            sscc: m.sscc.clone(),
            reference: m.reference.clone(),
        };
        ensure!(
            m.kind == "receive" && m.from.is_none() && m.to.is_some() && want == Some(&got),
            "exactly once: {}/{} is not the receipt that was scanned or announced ({want:?}): {m:?}",
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

/// What the device-time checker counted.
#[derive(Debug, Default, PartialEq, Eq)]
struct TimeFigures {
    /// Consecutive seqs of one device whose `at` goes backwards.
    seq_inversions: usize,
    /// Consecutive movements in server commit order (the order of `stored`) whose `at` goes backwards.
    commit_inversions: usize,
}

/// Each stored `at` is the device time it was stamped with: inside its lot's real-time window, shifted by the
/// offset of the agent life that overlaps it, ± [`STAMP_SLACK`]; and with its nanoseconds kept.
fn device_times(stored: &[Stored], ledgers: &[Ledger]) -> Result<TimeFigures> {
    for m in stored {
        let l = ledgers
            .iter()
            .find(|l| l.device == m.device)
            .with_context(|| format!("device time: a movement of unknown device {}", m.device))?;
        let &(earliest, latest) = l
            .windows
            .get(&m.lot)
            .with_context(|| format!("device time: {}/{} has no window", m.device, m.lot))?;
        let fits = l.lives.iter().any(|life| {
            let lo = earliest.max(life.from);
            let hi = life.to.map_or(latest, |to| latest.min(to));
            let off = time::Duration::seconds(life.offset_secs);
            lo <= hi && lo + off - STAMP_SLACK <= m.at && m.at <= hi + off + STAMP_SLACK
        });
        let lives: Vec<String> = l
            .lives
            .iter()
            .map(|x| format!("{:+} s from {}", x.offset_secs, x.from))
            .collect();
        ensure!(
            fits,
            "device time: {}/{} stored with at {}, not its device's time in [{earliest}, {latest}] (lives: {})",
            m.device,
            m.lot,
            m.at,
            lives.join(", ")
        );
    }
    // A clock reading is a multiple of 1 µs once in a thousand: all of them being so means nanoseconds were cut.
    if stored.len() >= 10 {
        ensure!(
            stored.iter().any(|m| m.at.nanosecond() % 1000 != 0),
            "device time: no stored `at` has digits below the microsecond: the store rounded device times"
        );
    }
    let mut by_device: BTreeMap<&str, Vec<&Stored>> = BTreeMap::new();
    for m in stored {
        by_device.entry(&m.device).or_default().push(m);
    }
    let mut figures = TimeFigures::default();
    for ms in by_device.values_mut() {
        ms.sort_by_key(|m| m.seq);
        figures.seq_inversions += ms.windows(2).filter(|w| w[1].at < w[0].at).count();
    }
    figures.commit_inversions = stored.windows(2).filter(|w| w[1].at < w[0].at).count();
    Ok(figures)
}

/// Device times to ask the stock as of: three stored `at`s picked by the seed, and the latest.
fn as_of_probes(stored: &[Stored], rng: &mut SplitMix64) -> Vec<OffsetDateTime> {
    let mut ats: Vec<OffsetDateTime> = stored.iter().map(|m| m.at).collect();
    ats.sort_unstable();
    let Some(&last) = ats.last() else {
        return Vec::new();
    };
    let mut probes: Vec<OffsetDateTime> = (0..3)
        .map(|_| ats[rng.below(ats.len() as u64) as usize])
        .collect();
    probes.push(last);
    probes
}

/// One simulation run.
fn run(seed: u64, backend: Backend, safety: Duration) -> Result<Figures> {
    let mut root = SplitMix64::new(seed);
    let mut links = root.fork();
    let mut schedule = root.fork();
    let mut clocks = root.fork();
    let mut scripts = root.fork();
    let mut probes = root.fork();
    let mut fleet = Fleet::start(seed, backend, safety, &mut links, &mut clocks, &mut scripts)?;
    fleet.safety(&mut schedule, &mut clocks, safety)?;
    fleet.drain()?;
    fleet.check(&mut probes)?;
    ensure!(
        fleet.figures.confirmed > 0,
        "the run confirmed no scan: nothing was tested"
    );
    ensure!(
        GATES == 0 || fleet.figures.gate_lines > 0,
        "no gate received a pallet: the gates were not tested"
    );
    let agents = fleet
        .devices
        .iter_mut()
        .filter_map(|d| d.agent.as_mut())
        .chain(fleet.gates.iter_mut().filter_map(|g| g.agent.as_mut()));
    for agent in agents {
        agent.stop()?;
    }
    Ok(std::mem::take(&mut fleet.figures))
}

/// A stored movement, as far as the checkers look.
#[derive(Debug)]
struct Stored {
    device: String,
    seq: u64,
    at: OffsetDateTime,
    kind: String,
    gtin: String,
    lot: String,
    qty: u64,
    from: Option<String>,
    to: Option<String>,
    sscc: Option<String>,
    reference: Option<String>,
}

impl Stored {
    /// Reads one entry of `GET /v1/movements`.
    fn parse(v: &Value) -> Result<Stored> {
        let m = &v["movement"];
        let text = |k: &str| m[k].as_str().map(str::to_string);
        let at = text("at").with_context(|| format!("at in {v}"))?;
        Ok(Stored {
            device: text("device_id").with_context(|| format!("device_id in {v}"))?,
            seq: m["seq"].as_u64().with_context(|| format!("seq in {v}"))?,
            at: OffsetDateTime::parse(&at, &Rfc3339).with_context(|| format!("at in {v}"))?,
            kind: text("kind").with_context(|| format!("kind in {v}"))?,
            gtin: text("gtin").with_context(|| format!("gtin in {v}"))?,
            lot: text("lot").with_context(|| format!("lot in {v}"))?,
            qty: m["qty"].as_u64().with_context(|| format!("qty in {v}"))?,
            from: text("from_location"),
            to: text("to_location"),
            sscc: text("sscc"),
            reference: text("reference"),
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
    fn the_backend_follows_the_variable_and_mixed_covers_both() {
        use Backend::{Postgres, Sled};
        // (DOCKHAND_FLEET_BACKEND, backends of seeds 1, 2, 3, 4, or None when refused)
        let cases: [(Option<&str>, Option<[Backend; 4]>); 6] = [
            (None, Some([Sled, Postgres, Sled, Postgres])),
            (Some("mixed"), Some([Sled, Postgres, Sled, Postgres])),
            (Some(" sled "), Some([Sled; 4])),
            (Some("postgres"), Some([Postgres; 4])),
            (Some(""), Some([Sled, Postgres, Sled, Postgres])),
            (Some("mysql"), None),
        ];
        for (value, want) in cases {
            let got = BackendChoice::parse(value)
                .ok()
                .map(|c| [1, 2, 3, 4].map(|s| c.for_seed(s)));
            assert_eq!(got, want, "{value:?}");
        }
        let ci: BTreeSet<Backend> = DEFAULT_SEEDS
            .iter()
            .map(|&s| BackendChoice::Mixed.for_seed(s))
            .collect();
        assert_eq!(ci.len(), 2, "the CI seeds cover both backends");
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

    #[test]
    fn gate_plans_replay_and_repeat_passes_stand_apart() {
        let len = Duration::from_secs(15);
        let plan = |seed| gate_plan(&mut SplitMix64::new(seed), 0, len);
        for seed in [1, 2, 3, 4] {
            let (pallets, script) = plan(seed);
            let (again, _) = plan(seed);
            assert_eq!(
                pallets.iter().map(|p| &p.lines).collect::<Vec<_>>(),
                again.iter().map(|p| &p.lines).collect::<Vec<_>>(),
                "seed {seed} replays"
            );
            assert!(pallets.len() >= 5, "seed {seed}: {} pallets", pallets.len());
            let lots: BTreeSet<&String> = pallets
                .iter()
                .flat_map(|p| p.lines.iter().map(|l| &l.1))
                .collect();
            let lines: usize = pallets.iter().map(|p| p.lines.len()).sum();
            assert_eq!(lots.len(), lines, "seed {seed}: lots unique");
            for p in &pallets {
                assert!(p
                    .passes
                    .iter()
                    .all(|&s| s + PASS_MS < len.as_millis() as u64));
                if let [first, second] = p.passes[..] {
                    assert!(second > first + PASS_MS + QUIET_MS, "seed {seed}: {p:?}");
                }
            }
            let passes: usize = pallets.iter().map(|p| p.passes.len()).sum();
            assert_eq!(script.passes.len(), passes, "seed {seed}");
        }
    }

    /// A receipt of `GTINS[0]` at the receiving location by hh-0, stamped at 10:00 plus `secs`.
    fn receipt(seq: u64, lot: &str) -> Stored {
        Stored {
            device: "hh-0".into(),
            seq,
            at: t0(),
            kind: "receive".into(),
            gtin: GTINS[0].into(),
            lot: lot.into(),
            qty: 1,
            from: None,
            to: Some(RECEIVING.into()),
            sscc: None,
            reference: None,
        }
    }

    fn t0() -> OffsetDateTime {
        time::macros::datetime!(2026-11-26 10:00:00.123456789 UTC)
    }

    fn secs(s: i64) -> time::Duration {
        time::Duration::seconds(s)
    }

    /// hh-0's ledger: every lot of "ABCD" expected as a scanned receipt.
    fn ledger(confirmed: &[&str], in_flight: &[&str]) -> Ledger {
        let mut l = Ledger::new("hh-0", 0);
        for lot in ["A", "B", "C", "D"] {
            l.expected.insert(lot.into(), Receipt::scanned(GTINS[0]));
        }
        l.confirmed = confirmed.iter().map(|s| s.to_string()).collect();
        l.in_flight_at_kill = in_flight.iter().map(|s| s.to_string()).collect();
        l
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
    fn the_set_checker_accepts_exactly_the_confirmed_movements() {
        let twice = Stored {
            qty: 2,
            ..receipt(2, "B")
        };
        let elsewhere = Stored {
            to: Some("A-01-01".into()),
            ..receipt(2, "B")
        };
        let with_pallet = Stored {
            sscc: Some(sscc18("0614141", 3, 1)),
            ..receipt(2, "B")
        };
        let unknown_lot = receipt(2, "Z");
        let cases: [Case; 12] = [
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
            (
                "an SSCC nobody scanned",
                vec![receipt(1, "A"), with_pallet],
                &["A", "B"],
                &[],
                Err("not the receipt"),
            ),
            (
                "a lot never given to the device",
                vec![receipt(1, "A"), unknown_lot],
                &["A", "Z"],
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
    fn device_times_must_be_the_skewed_stamp_of_the_life_that_made_them() {
        // Two lives: 10:00:00–10:01:00 at +300 s, then from 10:01:05 at -120 s (a clock that jumped back).
        let lives = vec![
            Life {
                from: t0(),
                to: Some(t0() + secs(60)),
                offset_secs: 300,
            },
            Life {
                from: t0() + secs(65),
                to: None,
                offset_secs: -120,
            },
        ];
        let mut l = ledger(&["A", "B"], &[]);
        l.lives = lives;
        // A: scanned 10:00:10, answered 10:00:11 (first life). B: scanned 10:01:10, answered 10:01:12 (second).
        l.windows
            .insert("A".into(), (t0() + secs(10), t0() + secs(11)));
        l.windows
            .insert("B".into(), (t0() + secs(70), t0() + secs(72)));
        let at = |lot: &str, seq, at| Stored {
            at,
            ..receipt(seq, lot)
        };
        // (case, stored, Ok(seq inversions) or words of the error)
        let cases: [(&str, Vec<Stored>, Result<usize, &str>); 6] = [
            (
                "each stamp shifted by its life's offset",
                vec![
                    at("A", 1, t0() + secs(310)),
                    at("B", 2, t0() + secs(70 - 120)),
                ],
                Ok(1),
            ),
            (
                "within the slack of the window's ends",
                vec![at(
                    "A",
                    1,
                    t0() + secs(311) + time::Duration::milliseconds(900),
                )],
                Ok(0),
            ),
            (
                "re-stamped with real time",
                vec![at("A", 1, t0() + secs(10))],
                Err("not its device's time"),
            ),
            (
                "stamped with the other life's offset",
                vec![at("B", 1, t0() + secs(70 + 300))],
                Err("not its device's time"),
            ),
            (
                "a lot without a window",
                vec![at("C", 1, t0())],
                Err("no window"),
            ),
            (
                "nanoseconds cut to microseconds",
                (1..=10)
                    .map(|s| {
                        at(
                            "A",
                            s,
                            (t0() + secs(310)).replace_nanosecond(123_456_000).unwrap(),
                        )
                    })
                    .collect(),
                Err("below the microsecond"),
            ),
        ];
        for (name, stored, want) in cases {
            match (device_times(&stored, std::slice::from_ref(&l)), want) {
                (Ok(f), Ok(n)) => assert_eq!(f.seq_inversions, n, "{name}"),
                (Err(e), Err(gist)) => assert!(format!("{e:#}").contains(gist), "{name}: {e:#}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn fold_moves_quantities_between_locations() {
        let m = |from: Option<&str>, to: Option<&str>, lot: &str, qty| Stored {
            from: from.map(Into::into),
            to: to.map(Into::into),
            qty,
            ..receipt(1, lot)
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
