//! Resident memory of the real processes: the server under an 8-device ingest, and a handheld agent after a day
//! of scans.
//!
//! - Server: a `dockhand-server` process (sled store) with 5 items and a dock location per site; 8 enrolled
//!   devices, each its own thread and HTTPS connection, push `batches` batches of 500 receipts one after the other.
//!   `VmRSS` is sampled every 20 ms during the load; `VmHWM` (the kernel's peak) is read at the end. Baseline: the
//!   same process's `VmRSS` idle, after start-up and the master data, before the load.
//! - Agent: a `dockhand-agent` process in receiving mode, synced to a `dockhand-server`, 100 items in master data.
//!   A day of scans for one handheld: 8 h × one scan every 2 s = 14,400 scans (`dockhand-workflow-bench` reports
//!   100,000, about a week), streamed to its pty as fast as it confirms them; `VmRSS` once the server has
//!   acknowledged the whole backlog, and `VmHWM`. Baseline: its `VmRSS` after start-up and the pull.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use dockhand_protocol::sync::{Movement, MovementSource, PushRequest};
use dockhand_tests::{
    client_for, enroll, free_port, gs1_check_digit, wait_until, AgentProc, AgentSpec, Scanner,
    ServerProc, ACK, GTINS,
};

use super::machine::process_memory;
use super::markdown::{median, mib, rate, Table};

/// A handheld's day: 8 hours at one scan every 2 seconds.
pub const DAY_SCANS: usize = 8 * 3600 / 2;
/// The agent's memory budget (issue 5, for 100,000 scans; a day must fit in it too).
pub const AGENT_BUDGET_BYTES: u64 = 64 << 20;
const DEVICES: usize = 8;
const BATCH: usize = 500;
const AGENT_ITEMS: usize = 100;

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Runs of each measurement (a fresh process each).
    pub runs: usize,
    /// Batches of 500 per device in the server load.
    pub batches: usize,
    /// Scans in the agent's day.
    pub scans: usize,
}

impl Config {
    /// The full run.
    pub fn full() -> Config {
        Config {
            runs: 3,
            batches: 25,
            scans: DAY_SCANS,
        }
    }

    /// A smoke run.
    pub fn quick() -> Config {
        Config {
            runs: 1,
            batches: 4,
            scans: 1_500,
        }
    }
}

/// The figures of one server run, bytes.
struct ServerRun {
    idle: u64,
    max_sampled: u64,
    hwm: u64,
    movements_per_s: f64,
}

/// The figures of one agent run, bytes.
struct AgentRun {
    idle: u64,
    after: u64,
    hwm: u64,
    scans_per_s: f64,
}

/// Both measurements; the table and per-run figures for the log. Also returns the agent's median `VmRSS` after
/// the day, for the targets summary.
pub fn run(cfg: &Config) -> Result<(Table, Vec<String>, u64)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut log = Vec::new();
    let mut servers = Vec::new();
    for n in 0..cfg.runs {
        let r = server_run(cfg).with_context(|| format!("server run {n}"))?;
        log.push(format!(
            "server run {n}: idle {} KiB, max sampled {} KiB, VmHWM {} KiB, {:.0} movements/s",
            r.idle / 1024,
            r.max_sampled / 1024,
            r.hwm / 1024,
            r.movements_per_s
        ));
        servers.push(r);
    }
    let mut agents = Vec::new();
    for n in 0..cfg.runs {
        let r = agent_run(cfg).with_context(|| format!("agent run {n}"))?;
        log.push(format!(
            "agent run {n}: idle {} KiB, after {} scans {} KiB, VmHWM {} KiB, {:.0} scans/s",
            r.idle / 1024,
            cfg.scans,
            r.after / 1024,
            r.hwm / 1024,
            r.scans_per_s
        ));
        agents.push(r);
    }
    let m = |v: Vec<u64>| median(&v.into_iter().map(|b| b as f64).collect::<Vec<_>>()) as u64;
    let s_idle = m(servers.iter().map(|r| r.idle).collect());
    let s_max = m(servers.iter().map(|r| r.max_sampled).collect());
    let s_hwm = m(servers.iter().map(|r| r.hwm).collect());
    let s_rate = median(
        &servers
            .iter()
            .map(|r| r.movements_per_s)
            .collect::<Vec<_>>(),
    );
    let a_idle = m(agents.iter().map(|r| r.idle).collect());
    let a_after = m(agents.iter().map(|r| r.after).collect());
    let a_hwm = m(agents.iter().map(|r| r.hwm).collect());
    let a_rate = median(&agents.iter().map(|r| r.scans_per_s).collect::<Vec<_>>());
    let ratio = |a: u64, b: u64| format!("{:.2}×", a as f64 / b as f64);
    let runs = cfg.runs;
    let total = DEVICES * cfg.batches * BATCH;
    let rows = vec![
        vec![
            format!("server VmRSS under load, highest sample (8 devices, {total} movements at {}; median of {runs})", rate(s_rate)),
            mib(s_max),
            format!("idle after start-up {}", mib(s_idle)),
            ratio(s_max, s_idle),
        ],
        vec![
            "server peak VmRSS (VmHWM) over the run".into(),
            mib(s_hwm),
            "same".into(),
            ratio(s_hwm, s_idle),
        ],
        vec![
            format!("agent VmRSS after a day ({} scans at {} scans/s), synced (median of {runs})", cfg.scans, rate(a_rate).trim_end_matches("/s")),
            mib(a_after),
            format!("after start-up + pull {}", mib(a_idle)),
            ratio(a_after, a_idle),
        ],
        vec![
            "agent peak VmRSS (VmHWM) during the day".into(),
            mib(a_hwm),
            "same".into(),
            ratio(a_hwm, a_idle),
        ],
    ];
    let header = ["figure", "value", "baseline (same run)", "ratio"]
        .map(String::from)
        .to_vec();
    Ok((Table { header, rows }, log, a_after))
}

/// A `dockhand-server run` child whose pid the suite can read memory of.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data: &Path) -> Result<Server> {
        let port = free_port();
        let mut child = Command::new(dockhand_tests::bin("dockhand-server"))
            .args(["run", "--data"])
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn dockhand-server")?;
        let url = format!("https://127.0.0.1:{port}");
        let ready = wait_until(Duration::from_secs(30), || {
            Ok(data.join("admin.token").exists()
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        });
        if let Err(e) = ready {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e.context("dockhand-server did not start"));
        }
        Ok(Server { child, url })
    }

    fn memory(&self, key: &str) -> Result<u64> {
        process_memory(self.child.id(), key).with_context(|| format!("{key} of the server"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn receipt(device: &str, seq: u64) -> Movement {
    Movement {
        expiry: None,
        source: MovementSource::Manual,
        ..dockhand_tests::bench_receipt(device, seq)
    }
}

fn server_run(cfg: &Config) -> Result<ServerRun> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("server");
    let server = Server::start(&data)?;
    let client = client_for(&data)?;
    let admin = std::fs::read_to_string(data.join("admin.token"))?
        .trim()
        .to_string();
    // Known items and locations: otherwise every movement is also a discrepancy, and the load measures those.
    for gtin in GTINS {
        client
            .put(format!("{}/v1/items/{gtin}", server.url))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"gtin": gtin, "description": "bench item"}))
            .send()?
            .error_for_status()?;
    }
    let mut tokens = Vec::new();
    for d in 0..DEVICES {
        let site = format!("WH{d}");
        client
            .put(format!("{}/v1/sites/{site}/locations/DOCK-1", server.url))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"code": "DOCK-1"}))
            .send()?
            .error_for_status()?;
        let name = format!("dev-{d}");
        let token =
            dockhand_server::enroll(&dockhand_server::devices_dir(&data), &name, &site, false)?;
        tokens.push((name, token));
    }
    std::thread::sleep(Duration::from_secs(1));
    let idle = server.memory("VmRSS:")?;

    let pid = server.child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut max = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                max = max.max(process_memory(pid, "VmRSS:").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(20));
            }
            max
        })
    };
    let start = Instant::now();
    let pushers: Vec<_> = tokens
        .into_iter()
        .map(|(name, token)| {
            let (url, data, batches) = (server.url.clone(), data.clone(), cfg.batches);
            std::thread::spawn(move || -> Result<()> {
                let client = client_for(&data)?;
                for b in 0..batches {
                    let movements = (0..BATCH as u64)
                        .map(|i| receipt(&name, (b * BATCH) as u64 + i + 1))
                        .collect();
                    let body = serde_json::to_vec(&PushRequest {
                        device_id: name.clone(),
                        movements,
                        backlog: None,
                    })?;
                    let resp = client
                        .post(format!("{url}/v1/sync/push"))
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()?;
                    ensure!(resp.status().is_success(), "push: {}", resp.status());
                }
                Ok(())
            })
        })
        .collect();
    let mut failed = None;
    for p in pushers {
        match p.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = Some(e),
            Err(_) => failed = Some(anyhow::anyhow!("a pusher panicked")),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let max_sampled = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("sampler panicked"))?;
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(ServerRun {
        idle,
        max_sampled,
        hwm: server.memory("VmHWM:")?,
        movements_per_s: (DEVICES * cfg.batches * BATCH) as f64 / secs,
    })
}

fn agent_gtin(i: usize) -> String {
    let body = format!("0950622{i:06}");
    format!("{body}{}", gs1_check_digit(&body))
}

fn agent_run(cfg: &Config) -> Result<AgentRun> {
    let tmp = tempfile::tempdir()?;
    let server_data = tmp.path().join("server");
    let server = ServerProc::start(&server_data, free_port())?;
    let client = server.client()?;
    let admin = server.admin_token()?;
    let mut csv = String::from("gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked\n");
    for i in 0..AGENT_ITEMS {
        csv.push_str(&format!("{},item {i},EA,true,false,false\n", agent_gtin(i)));
    }
    client
        .post(format!("{}/v1/items/import", server.url()))
        .bearer_auth(&admin)
        .header("content-type", "text/csv")
        .body(csv)
        .send()?
        .error_for_status()?;
    client
        .put(format!("{}/v1/sites/WH1/locations/DOCK-1", server.url()))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"code": "DOCK-1"}))
        .send()?
        .error_for_status()?;
    let token = enroll(&server_data, "hh-day", "WH1")?;
    let mut scanner = Scanner::new()?;
    let data = tmp.path().join("agent");
    let config = AgentSpec {
        device: "hh-day",
        site: "WH1",
        data: &data,
        server: Some((server.url(), server_data.join("ca.pem"), token)),
        scanner: &scanner.path,
        max_backoff_ms: 500,
    }
    .write_config()?;
    let agent = AgentProc::start(&config, &data)?;
    wait_until(Duration::from_secs(60), || {
        Ok(agent.status()?["sync"]["master"]["items"].as_u64() == Some(AGENT_ITEMS as u64))
    })?;
    if scanner.scan_and_wait("DH:RECEIVE", Duration::from_secs(10))? != Some(ACK) {
        bail!("DH:RECEIVE refused");
    }
    std::thread::sleep(Duration::from_secs(1));
    let memory =
        |key| process_memory(agent.pid(), key).with_context(|| format!("{key} of the agent"));
    let idle = memory("VmRSS:")?;

    let scans = cfg.scans;
    let mut writer = scanner.try_clone_master()?;
    let feeder = std::thread::spawn(move || -> Result<()> {
        let mut buf = Vec::new();
        for i in 0..scans {
            // A new lot every 50 scans, items in turn: a receiving dock's day.
            let n = i % AGENT_ITEMS;
            buf.extend_from_slice(format!("]C101{}10D{}\r\n", agent_gtin(n), i / 50).as_bytes());
            if buf.len() > 8000 {
                writer.write_all(&buf)?;
                buf.clear();
            }
        }
        writer.write_all(&buf)?;
        Ok(())
    });
    let t = Instant::now();
    let mut acks = 0;
    while acks < scans {
        let got = scanner.feedback_n(scans - acks, Duration::from_secs(30));
        ensure!(!got.is_empty(), "no feedback after {acks} of {scans} scans");
        if let Some(b) = got.iter().find(|b| **b != ACK) {
            bail!("scan refused (feedback {b:#x}) after {acks}");
        }
        acks += got.len();
    }
    let secs = t.elapsed().as_secs_f64();
    feeder
        .join()
        .map_err(|_| anyhow::anyhow!("feeder panicked"))??;
    wait_until(Duration::from_secs(300), || {
        Ok(agent.status()?["backlog"].as_u64() == Some(0))
    })?;
    Ok(AgentRun {
        idle,
        after: memory("VmRSS:")?,
        hwm: memory("VmHWM:")?,
        scans_per_s: scans as f64 / secs,
    })
}
