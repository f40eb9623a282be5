//! `dockhand-bench`: the spine's performance figures, each next to a baseline measured in the same run.
//!
//! Run: `cargo run --release -p dockhand-tests --bin dockhand-bench` (about a minute). Prints a Markdown table for
//! BENCHMARKS.md. Every figure is the median of several runs; the machine is shared and noisy, so compare ratios.
//!
//! 1. Agent burst: 10,000 scans written to a pty as fast as it takes them; confirmed scans/s = scans / time until
//!    the 10,000th good-read byte. Baseline: the same number of journal-sized records appended with one
//!    `fdatasync` each (what the journal would cost without group commit).
//! 2. Agent single-scan latency: one scan at a time, write to good-read byte; p50 and p99. Baseline: one
//!    append + `fdatasync` of a record of the same size (the floor of any durable confirm).
//! 3. Server ingest: movements/s pushed over real HTTPS in batches of 500 to an in-process server on its sled
//!    store. Baseline: raw sled inserts of the same records with one flush per 500.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dockhand_protocol::sync::{Movement, PushRequest};
use dockhand_tests::{item_scan, wait_until, AgentSpec, Scanner, ACK, GTINS};

const BURST: usize = 10_000;
const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

struct Agent {
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), dockhand_agent::AgentError>>>,
    scanner: Scanner,
    _tmp: tempfile::TempDir,
}

impl Agent {
    /// An offline agent (no server) on a fresh data directory with a pty scanner, in receiving mode.
    fn start() -> Result<Agent> {
        let tmp = tempfile::tempdir()?;
        let data = tmp.path().join("agent");
        let mut scanner = Scanner::new()?;
        let config = AgentSpec {
            device: "bench",
            site: "WH1",
            data: &data,
            server: None,
            scanner: &scanner.path,
            max_backoff_ms: 1000,
        }
        .write_config()?;
        let cfg = dockhand_agent::config::Config::load(&config)?;
        let rt = tokio::runtime::Runtime::new()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = rt.spawn(dockhand_agent::run(cfg, async move {
            let _ = stopped.await;
        }));
        wait_until(Duration::from_secs(20), || {
            Ok(dockhand_agent::read_status(&data)
                .map(|s| s["sources"][0]["connected"] == true)
                .unwrap_or(false))
        })?;
        if scanner.scan_and_wait("DH:RECEIVE", Duration::from_secs(5))? != Some(ACK) {
            bail!("DH:RECEIVE not confirmed");
        }
        Ok(Agent {
            rt,
            stop: Some(stop),
            task: Some(task),
            scanner,
            _tmp: tmp,
        })
    }

    fn stop(mut self) -> Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            self.rt.block_on(t)??;
        }
        Ok(())
    }
}

fn scans(n: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..n {
        bytes.extend_from_slice(item_scan(GTINS[i % GTINS.len()], &format!("B{i:06}")).as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes
}

fn agent_burst() -> Result<f64> {
    let mut agent = Agent::start()?;
    let bytes = scans(BURST);
    let start = Instant::now();
    // The pty buffer is small: write from a second handle while this thread counts feedback.
    let mut writer = agent.scanner.try_clone_master()?;
    let w = std::thread::spawn(move || writer.write_all(&bytes));
    let fb = agent.scanner.feedback_n(BURST, Duration::from_secs(120));
    let elapsed = start.elapsed();
    w.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
    if fb.len() != BURST || fb.iter().any(|&b| b != ACK) {
        bail!("burst: {} feedback bytes, not all ACK", fb.len());
    }
    agent.stop()?;
    Ok(BURST as f64 / elapsed.as_secs_f64())
}

fn agent_latency(n: usize) -> Result<Vec<f64>> {
    let mut agent = Agent::start()?;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let scan = item_scan(GTINS[0], &format!("S{i:06}"));
        let t = Instant::now();
        if agent.scanner.scan_and_wait(&scan, Duration::from_secs(5))? != Some(ACK) {
            bail!("scan {i} not confirmed");
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    agent.stop()?;
    Ok(lat)
}

fn record_bytes() -> Vec<u8> {
    // The size of one journal record for a typical scan.
    let m = movement(1);
    let mut v = serde_json::to_vec(&m).expect("json");
    v.splice(0..0, [0u8; 9]);
    v
}

/// Appends `n` records with one fdatasync each; returns records/s.
fn fsync_each(dir: &Path, n: usize) -> Result<f64> {
    let rec = record_bytes();
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("naive.log"))?;
    let start = Instant::now();
    for _ in 0..n {
        f.write_all(&rec)?;
        f.sync_data()?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn fsync_latency(dir: &Path, n: usize) -> Result<Vec<f64>> {
    let rec = record_bytes();
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("lat.log"))?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&rec)?;
        f.sync_data()?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(out)
}

fn movement(seq: u64) -> Movement {
    Movement {
        at: time::OffsetDateTime::UNIX_EPOCH,
        ..dockhand_tests::bench_receipt("bench", seq)
    }
}

const BATCH: usize = 500;
const BATCHES: usize = 20;

/// Pushes BATCHES × BATCH movements over HTTPS to an in-process server; returns movements/s.
fn server_ingest() -> Result<f64> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("server");
    let port = dockhand_tests::free_port();
    let rt = tokio::runtime::Runtime::new()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(dockhand_server::run(
        dockhand_server::RunOptions {
            data_dir: data.clone(),
            listen: format!("127.0.0.1:{port}"),
            config: None,
            cert: None,
            key: None,
            sans: vec![],
        },
        async move {
            let _ = stopped.await;
        },
    ));
    wait_until(Duration::from_secs(20), || {
        Ok(data.join("admin.token").exists()
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
    })?;
    let token =
        dockhand_server::enroll(&dockhand_server::devices_dir(&data), "bench", "WH1", false)?;
    let client = dockhand_tests::client_for(&data)?;
    // Known items and location, as in a real deployment: otherwise every movement is also an unknown-item and an
    // unknown-location discrepancy, and the figure measures discrepancy writes.
    let admin = std::fs::read_to_string(data.join("admin.token"))?
        .trim()
        .to_string();
    for gtin in GTINS {
        let body = serde_json::json!({"gtin": gtin, "description": "bench item"});
        client
            .put(format!("https://127.0.0.1:{port}/v1/items/{gtin}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()?
            .error_for_status()?;
    }
    client
        .put(format!(
            "https://127.0.0.1:{port}/v1/sites/WH1/locations/DOCK-1"
        ))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"code": "DOCK-1"}))
        .send()?
        .error_for_status()?;
    let bodies: Vec<Vec<u8>> = (0..BATCHES)
        .map(|b| {
            let movements = (0..BATCH)
                .map(|i| movement((b * BATCH + i + 1) as u64))
                .collect();
            serde_json::to_vec(&PushRequest {
                device_id: "bench".into(),
                movements,
                backlog: None,
            })
            .expect("json")
        })
        .collect();
    let url = format!("https://127.0.0.1:{port}/v1/sync/push");
    // Warm the connection (TLS handshake) outside the timing.
    client
        .get(format!("https://127.0.0.1:{port}/v1/health"))
        .send()?;
    let start = Instant::now();
    for body in bodies {
        let resp = client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()?;
        if !resp.status().is_success() {
            bail!("push failed: {} {}", resp.status(), resp.text()?);
        }
    }
    let rate = (BATCHES * BATCH) as f64 / start.elapsed().as_secs_f64();
    let _ = stop.send(());
    rt.block_on(server)??;
    Ok(rate)
}

/// Raw sled inserts of the same records (key device\0seq, value JSON), one flush per batch; returns records/s.
fn sled_baseline() -> Result<f64> {
    let tmp = tempfile::tempdir()?;
    let db = sled::Config::new()
        .path(tmp.path().join("sled"))
        .cache_capacity(64 << 20)
        .open()?;
    let tree = db.open_tree("movements")?;
    let records: Vec<(Vec<u8>, Vec<u8>)> = (0..BATCHES * BATCH)
        .map(|i| {
            let m = movement(i as u64 + 1);
            let mut k = b"bench\0".to_vec();
            k.extend_from_slice(&m.seq.to_be_bytes());
            (k, serde_json::to_vec(&m).expect("json"))
        })
        .collect();
    let start = Instant::now();
    for chunk in records.chunks(BATCH) {
        for (k, v) in chunk {
            tree.insert(k.as_slice(), v.as_slice())?;
        }
        db.flush()?;
    }
    Ok((BATCHES * BATCH) as f64 / start.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir()?;
    let mut burst = Vec::new();
    let mut naive = Vec::new();
    for run in 0..RUNS {
        burst.push(agent_burst().with_context(|| format!("burst run {run}"))?);
        naive.push(fsync_each(tmp.path(), 2000)?);
        eprintln!(
            "burst run {run}: {:.0} scans/s, naive fsync-each {:.0}/s",
            burst[run], naive[run]
        );
    }
    let mut lat = Vec::new();
    let mut floor = Vec::new();
    for run in 0..3 {
        lat.extend(agent_latency(300).with_context(|| format!("latency run {run}"))?);
        floor.extend(fsync_latency(tmp.path(), 300)?);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    floor.sort_by(|a, b| a.total_cmp(b));
    let mut ingest = Vec::new();
    let mut raw = Vec::new();
    for run in 0..RUNS {
        ingest.push(server_ingest().with_context(|| format!("ingest run {run}"))?);
        raw.push(sled_baseline()?);
        eprintln!(
            "ingest run {run}: {:.0} movements/s, raw sled {:.0}/s",
            ingest[run], raw[run]
        );
    }
    let (b, n) = (median(burst), median(naive));
    let (i, r) = (median(ingest), median(raw));
    println!("| measurement | Dockhand | baseline (same run) | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| agent burst, {BURST} scans from a pty, confirmed scans/s (median of {RUNS}) | {b:.0} | {n:.0} records/s with one fdatasync each | {:.2}× |",
        b / n
    );
    println!(
        "| agent single-scan confirm latency p50 / p99 ({} scans) | {:.2} ms / {:.2} ms | append+fdatasync p50 {:.2} ms / p99 {:.2} ms | {:.2}× at p50 |",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&floor, 0.5),
        percentile(&floor, 0.99),
        percentile(&lat, 0.5) / percentile(&floor, 0.5)
    );
    println!(
        "| server ingest over HTTPS, batches of {BATCH}, movements/s (median of {RUNS}) | {i:.0} | {r:.0} raw sled inserts/s, flush per {BATCH} | {:.0}% |",
        100.0 * i / r
    );
    Ok(())
}
