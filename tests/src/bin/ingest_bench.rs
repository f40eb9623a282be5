//! `dockhand-ingest-bench`: the central server's ingest and pull figures (issue 6), each next to a raw baseline
//! measured in the same run.
//!
//! Run: `cargo run --release -p dockhand-tests --bin dockhand-ingest-bench` (a few minutes; needs the PostgreSQL
//! server binaries, see server/tests/pg). Prints a Markdown table for BENCHMARKS.md and per-run figures on stderr.
//!
//! 1. Ingest: 128,000 movements in batches of 500 pushed over real HTTPS to an in-process `dockhand-server` by 1,
//!    8 or 64 concurrent devices (each device its own thread, connection and batches, pushing one batch after the
//!    other). Devices are spread over 8 sites (device i at `WH{i % 8}`), as a central server sees them; within a
//!    site they share items, lots and the dock location. Items, sites and locations exist, so no movement is
//!    flagged as unknown. A fresh store per run, on sled (the data directory) and on PostgreSQL (a new database
//!    of one throw-away cluster with `fsync=on`).
//!    Baselines, same records, same concurrency, fresh each run: raw sled, one `Batch` of 500 (key, JSON) records
//!    applied and flushed per batch; raw PostgreSQL, one `COPY ... FROM STDIN (FORMAT csv)` of the same 500 rows
//!    (the columns of the store's movements table) per transaction into a plain table without indexes.
//! 2. Pull: a new device pulls 100,000 item changes from cursor 0 in pages of 5,000 over HTTPS
//!    (`GET /v1/sync/pull`) until `more` is false. Items are inserted through `Store::put_items` beforehand.
//!
//! # Measuring on a shared machine
//!
//! The machine this runs on is shared, and other work on its two cores moves both Dockhand's rate and the
//! baseline's by a factor of two from one run to the next. So each case is measured in `DOCKHAND_BENCH_RUNS`
//! runs (default 5), and each run measures Dockhand and its baseline back to back (Dockhand first in even runs,
//! the baseline first in odd ones, so neither always gets the machine a moment later). A pair shares the
//! machine's state of that moment, so its ratio `ours_i / raw_i` is what the target is judged on: the table
//! shows the median of the per-run ratios, next to the median of Dockhand's rates and of the baseline's (the
//! ratio of those two medians pairs figures from different moments, and used to swing by ten points between
//! runs of the same binary). Medians of an even count are the mean of the two middle values.
//!
//! A run is 128,000 movements rather than 64,000: at 60,000-100,000 movements/s the latter was under a second
//! for Dockhand and under half a second for the raw baselines, so a single stall (another engineer's compile
//! job taking both cores for a moment, sled's background flusher, a PostgreSQL checkpoint) was a large part of
//! a run; with 64 devices each pushed only two batches, so the run was mostly start-up and tail. Twice as long
//! halves the weight of such a stall and gives 64 devices four batches each.
//!
//! The table (one Markdown table, for BENCHMARKS.md) goes to stdout; every run's figures go to stderr.
//!
//! `--backend sled` or `--backend postgres` measures only that backend (ingest and pull); the default is both.

#[path = "../../../server/tests/pg/mod.rs"]
mod pg;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dockhand_protocol::sync::{Item, Movement, PushRequest};
use dockhand_server::{PgStore, SledStore, Store};
use dockhand_tests::{bench_master_data, bench_median, bench_runs, client_for, wait_until};

/// Runs per case unless `DOCKHAND_BENCH_RUNS` says otherwise.
const DEFAULT_RUNS: usize = 5;
const BATCH: usize = 500;
/// Movements per ingest run, divisible by `BATCH` times every entry of `CONCURRENCY` (see the module docs).
const TOTAL: usize = 128_000;
const CONCURRENCY: [usize; 3] = [1, 8, 64];
const SITES: usize = 8;
const PULL_ITEMS: usize = 100_000;
const PULL_PAGE: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sled,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sled => "sled",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

fn device_id(i: usize) -> String {
    format!("hh-{i:02}")
}

fn site_of(i: usize) -> String {
    format!("WH{}", i % SITES)
}

/// The same record shape as `dockhand-bench`: a GS1 receipt of one unit at the dock.
fn movement(device: &str, seq: u64) -> Movement {
    dockhand_tests::bench_receipt(device, seq)
}

/// Each device's batches: `TOTAL / devices` movements, seqs from 1.
fn batches(devices: usize) -> Vec<Vec<Vec<Movement>>> {
    let per_device = TOTAL / devices;
    (0..devices)
        .map(|d| {
            let id = device_id(d);
            (0..per_device / BATCH)
                .map(|b| {
                    (0..BATCH)
                        .map(|i| movement(&id, (b * BATCH + i + 1) as u64))
                        .collect()
                })
                .collect()
        })
        .collect()
}

fn item(gtin: &str) -> Item {
    Item {
        gtin: gtin.into(),
        description: format!("item {gtin}"),
        unit: "EA".into(),
        lot_tracked: true,
        expiry_tracked: false,
        serial_tracked: false,
        active: true,
        unit_cost: None,
    }
}

/// An in-process server on a fresh data directory; stops when dropped.
struct Server {
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), dockhand_server::Error>>>,
    data: PathBuf,
    config: Option<PathBuf>,
    url: String,
}

impl Server {
    fn start(data: &Path, config: Option<PathBuf>) -> Result<Server> {
        let port = dockhand_tests::free_port();
        let rt = tokio::runtime::Runtime::new()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = rt.spawn(dockhand_server::run(
            dockhand_server::RunOptions {
                data_dir: data.to_path_buf(),
                listen: format!("127.0.0.1:{port}"),
                config: config.clone(),
                cert: None,
                key: None,
                sans: vec![],
            },
            async move {
                let _ = stopped.await;
            },
        ));
        let mut server = Server {
            rt,
            stop: Some(stop),
            task: Some(task),
            data: data.to_path_buf(),
            config,
            url: format!("https://127.0.0.1:{port}"),
        };
        wait_until(Duration::from_secs(30), || {
            if server.task.as_ref().is_some_and(|t| t.is_finished()) {
                bail!("the server stopped while starting");
            }
            Ok(data.join("admin.token").exists()
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        })
        .map_err(|e| match server.finish() {
            Err(stop) => stop.context(e),
            Ok(()) => e,
        })?;
        Ok(server)
    }

    fn enroll(&self, device: &str, site: &str) -> Result<String> {
        Ok(dockhand_server::enroll_device(
            &self.data,
            self.config.as_deref(),
            device,
            site,
            false,
        )?)
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            self.rt.block_on(t)??;
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// A fresh store directory (sled) or database (PostgreSQL) with master data, and the server config for it.
struct Fresh {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    config: Option<PathBuf>,
    _db: Option<pg::TestDb>,
}

fn fresh(backend: Backend, setup: impl FnOnce(&dyn Store) -> Result<()>) -> Result<Fresh> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("server");
    std::fs::create_dir_all(&data)?;
    match backend {
        Backend::Sled => {
            // Opened and closed before the server opens it: sled locks its directory.
            let store = SledStore::open(&data.join("sled"), 64 << 20)?;
            setup(&store)?;
            Ok(Fresh {
                _tmp: tmp,
                data,
                config: None,
                _db: None,
            })
        }
        Backend::Postgres => {
            let db = pg::database();
            setup(&PgStore::open(&db.url(), 2)?)?;
            let config = data.join("server.toml");
            std::fs::write(
                &config,
                format!(
                    "store = \"postgres\"\npostgres_url = \"{}\"\npostgres_max_connections = 8\n",
                    db.url()
                ),
            )?;
            Ok(Fresh {
                _tmp: tmp,
                data,
                config: Some(config),
                _db: Some(db),
            })
        }
    }
}

/// Runs `work(device)` on one thread per device after a common start; returns the wall time of the slowest.
fn concurrently<S: Send + 'static>(
    states: Vec<S>,
    work: impl Fn(S) -> Result<()> + Send + Sync + 'static,
) -> Result<Duration> {
    let barrier = Arc::new(Barrier::new(states.len() + 1));
    let work = Arc::new(work);
    let threads: Vec<_> = states
        .into_iter()
        .map(|s| {
            let (barrier, work) = (barrier.clone(), work.clone());
            std::thread::spawn(move || {
                barrier.wait();
                work(s)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("a worker panicked"))??;
    }
    Ok(start.elapsed())
}

/// Server ingest over HTTPS; returns movements/s.
fn ingest(backend: Backend, devices: usize) -> Result<f64> {
    let fresh = fresh(backend, |s| bench_master_data(s, SITES))?;
    let mut server = Server::start(&fresh.data, fresh.config.clone())?;
    let mut states = Vec::new();
    for (d, batches) in batches(devices).into_iter().enumerate() {
        let id = device_id(d);
        let token = server.enroll(&id, &site_of(d))?;
        let client = client_for(&fresh.data)?;
        // Warm the connection (TLS handshake) outside the timing.
        client.get(format!("{}/v1/health", server.url)).send()?;
        let bodies: Vec<Vec<u8>> = batches
            .into_iter()
            .map(|movements| {
                serde_json::to_vec(&PushRequest {
                    device_id: id.clone(),
                    movements,
                    backlog: None,
                })
            })
            .collect::<Result<_, _>>()?;
        states.push((
            client,
            token,
            bodies,
            format!("{}/v1/sync/push", server.url),
        ));
    }
    let elapsed = concurrently(states, |(client, token, bodies, url)| {
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
        Ok(())
    })?;
    server.finish()?;
    Ok(TOTAL as f64 / elapsed.as_secs_f64())
}

/// Raw sled: per batch one `Batch` of the same (device\0seq, JSON) records, applied and flushed.
fn raw_sled(devices: usize) -> Result<f64> {
    let tmp = tempfile::tempdir()?;
    let db = sled::Config::new()
        .path(tmp.path().join("sled"))
        .cache_capacity(64 << 20)
        .open()?;
    let tree = db.open_tree("movements")?;
    let states: Vec<_> = batches(devices)
        .into_iter()
        .map(|batches| {
            let records: Vec<Vec<(Vec<u8>, Vec<u8>)>> = batches
                .iter()
                .map(|batch| {
                    batch
                        .iter()
                        .map(|m| {
                            let mut k = m.device_id.as_bytes().to_vec();
                            k.push(0);
                            k.extend_from_slice(&m.seq.to_be_bytes());
                            (k, serde_json::to_vec(m).expect("json"))
                        })
                        .collect()
                })
                .collect();
            (db.clone(), tree.clone(), records)
        })
        .collect();
    let elapsed = concurrently(states, |(db, tree, records)| {
        for batch in records {
            let mut b = sled::Batch::default();
            for (k, v) in batch {
                b.insert(k, v);
            }
            tree.apply_batch(b)?;
            db.flush()?;
        }
        Ok(())
    })?;
    Ok(TOTAL as f64 / elapsed.as_secs_f64())
}

/// The movement as a CSV row of the store's movements table columns.
fn csv_row(out: &mut Vec<u8>, site: &str, m: &Movement) -> Result<()> {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let opt = |s: &Option<String>| s.as_deref().map(quote).unwrap_or_default();
    let at =
        m.at.format(&time::format_description::well_known::Rfc3339)?;
    writeln!(
        out,
        "{},{},{},{},{},{},{},{},{},{},{},{}",
        quote(&m.device_id),
        m.seq,
        quote(site),
        at,
        m.kind.as_str(),
        m.gtin,
        opt(&m.lot),
        opt(&m.from_location),
        opt(&m.to_location),
        opt(&m.reference),
        m.qty,
        quote(&serde_json::to_string(m)?),
    )?;
    Ok(())
}

const RAW_TABLE: &str = "CREATE TABLE raw_movements (device_id text, seq bigint, site text, at timestamptz, \
     kind text, gtin text, lot text, from_location text, to_location text, reference text, qty bigint, body text)";

/// Raw PostgreSQL: per batch one transaction with one COPY of the same rows into a plain table.
fn raw_copy(devices: usize) -> Result<f64> {
    let db = pg::database();
    let mut admin = postgres::Client::connect(&db.url(), postgres::NoTls)?;
    admin.batch_execute(RAW_TABLE)?;
    let mut states = Vec::new();
    for (d, batches) in batches(devices).into_iter().enumerate() {
        let site = site_of(d);
        let csv: Vec<Vec<u8>> = batches
            .iter()
            .map(|batch| {
                let mut out = Vec::new();
                for m in batch {
                    csv_row(&mut out, &site, m)?;
                }
                Ok(out)
            })
            .collect::<Result<_>>()?;
        let client = postgres::Client::connect(&db.url(), postgres::NoTls)?;
        states.push((client, csv));
    }
    let elapsed = concurrently(states, |(mut client, csv)| {
        for rows in csv {
            let mut tx = client.transaction()?;
            let mut w = tx.copy_in("COPY raw_movements FROM STDIN (FORMAT csv)")?;
            w.write_all(&rows)?;
            w.finish()?;
            tx.commit()?;
        }
        Ok(())
    })?;
    let n: i64 = admin
        .query_one("SELECT count(*) FROM raw_movements", &[])?
        .get(0);
    if n != TOTAL as i64 {
        bail!("COPY stored {n} rows, not {TOTAL}");
    }
    Ok(TOTAL as f64 / elapsed.as_secs_f64())
}

/// Seconds for a new device to pull 100,000 item changes over HTTPS; one value per run on the same store.
fn pull(backend: Backend, runs: usize) -> Result<Vec<f64>> {
    let fresh = fresh(backend, |store| {
        let items: Vec<Item> = (0..PULL_ITEMS)
            .map(|i| item(&format!("{:014}", 10_000_000 + i)))
            .collect();
        for chunk in items.chunks(5_000) {
            store.put_items(chunk)?;
        }
        Ok(())
    })?;
    let mut server = Server::start(&fresh.data, fresh.config.clone())?;
    let token = server.enroll("new-device", "WH0")?;
    let client = client_for(&fresh.data)?;
    client.get(format!("{}/v1/health", server.url)).send()?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let (mut cursor, mut changes) = (0u64, 0usize);
        loop {
            let page: serde_json::Value = client
                .get(format!(
                    "{}/v1/sync/pull?cursor={cursor}&limit={PULL_PAGE}",
                    server.url
                ))
                .bearer_auth(&token)
                .send()?
                .error_for_status()?
                .json()?;
            changes += page["changes"].as_array().context("changes")?.len();
            cursor = page["cursor"].as_u64().context("cursor")?;
            if page["more"] != true {
                break;
            }
        }
        times.push(start.elapsed().as_secs_f64());
        if changes < PULL_ITEMS {
            bail!("pulled {changes} changes, expected at least {PULL_ITEMS}");
        }
    }
    server.finish()?;
    Ok(times)
}

/// The backends named by `--backend sled|postgres`, else both.
fn backends() -> Result<Vec<Backend>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(vec![Backend::Sled, Backend::Postgres]),
        [flag, b] if flag == "--backend" => match b.as_str() {
            "sled" => Ok(vec![Backend::Sled]),
            "postgres" | "postgresql" => Ok(vec![Backend::Postgres]),
            other => bail!("--backend {other:?}: expected sled or postgres"),
        },
        _ => bail!("usage: dockhand-ingest-bench [--backend sled|postgres]"),
    }
}

/// One ingest case's runs: Dockhand's rate, the baseline's, movements/s, index by run.
struct Case {
    backend: Backend,
    devices: usize,
    ours: Vec<f64>,
    raw: Vec<f64>,
}

impl Case {
    /// `ours_i / raw_i` in percent, per run.
    fn ratios(&self) -> Vec<f64> {
        self.ours
            .iter()
            .zip(&self.raw)
            .map(|(o, r)| 100.0 * o / r)
            .collect()
    }
}

/// Measures one run of a case: Dockhand and the baseline back to back, in the order the run's parity says.
fn ingest_run(backend: Backend, devices: usize, run: usize) -> Result<(f64, f64)> {
    let ours = || {
        ingest(backend, devices)
            .with_context(|| format!("{} ingest, {devices} devices", backend.name()))
    };
    let raw = || match backend {
        Backend::Sled => raw_sled(devices),
        Backend::Postgres => raw_copy(devices),
    };
    if run.is_multiple_of(2) {
        let o = ours()?;
        Ok((o, raw()?))
    } else {
        let r = raw()?;
        Ok((ours()?, r))
    }
}

fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let backends = backends()?;
    let runs = bench_runs(DEFAULT_RUNS)?;
    let mut cases = Vec::new();
    for &backend in &backends {
        for devices in CONCURRENCY {
            let mut case = Case {
                backend,
                devices,
                ours: Vec::new(),
                raw: Vec::new(),
            };
            for run in 0..runs {
                let (ours, raw) = ingest_run(backend, devices, run)?;
                case.ours.push(ours);
                case.raw.push(raw);
                eprintln!(
                    "{} ingest, {devices} devices, run {run}: {ours:.0} movements/s, raw {raw:.0}/s, ratio {:.1}%",
                    backend.name(),
                    100.0 * ours / raw
                );
            }
            cases.push(case);
        }
    }
    let mut pulls = Vec::new();
    for &backend in &backends {
        let times = pull(backend, runs).with_context(|| format!("{} pull", backend.name()))?;
        eprintln!(
            "{} pull of {PULL_ITEMS} changes, runs: {times:.3?} s",
            backend.name()
        );
        pulls.push((backend, times));
    }

    println!(
        "| measurement (median of {runs} runs) | Dockhand | raw baseline (same runs) | ratio: median of per-run ratios (min–max) | target (on the median ratio) |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for case in &cases {
        let (o, r) = (bench_median(&case.ours), bench_median(&case.raw));
        let ratios = case.ratios();
        let ratio = bench_median(&ratios);
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        let (what, target) = match case.backend {
            Backend::Sled => ("sled Batch + flush per 500", 50.0),
            Backend::Postgres => ("PostgreSQL COPY, one transaction per 500", 30.0),
        };
        println!(
            "| {} ingest, batches of {BATCH}, {} device(s), movements/s | {o:.0} | {r:.0} ({what}) | {ratio:.0}% ({lo:.0}–{hi:.0}%) | ≥ {target:.0}%: {} |",
            case.backend.name(),
            case.devices,
            if ratio >= target { "met" } else { "missed" }
        );
    }
    for (backend, times) in pulls {
        let t = bench_median(&times);
        println!(
            "| {} pull of {PULL_ITEMS} changes by a new device, pages of {PULL_PAGE} over HTTPS | {t:.2} s | | | ≤ 2 s: {} |",
            backend.name(),
            if t <= 2.0 { "met" } else { "missed" }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_or_the_mean_of_the_two_middles() {
        let cases: [(&[f64], f64); 4] = [
            (&[3.0], 3.0),
            (&[5.0, 1.0, 3.0], 3.0),
            (&[4.0, 1.0, 3.0, 2.0], 2.5),
            (&[9.0, 1.0, 1.0, 1.0, 9.0], 1.0),
        ];
        for (values, want) in cases {
            assert_eq!(bench_median(values), want, "{values:?}");
        }
    }

    #[test]
    fn ratios_pair_each_run_with_its_own_baseline() {
        let case = Case {
            backend: Backend::Sled,
            devices: 1,
            ours: vec![90.0, 60.0, 30.0],
            raw: vec![100.0, 200.0, 40.0],
        };
        assert_eq!(case.ratios(), vec![90.0, 30.0, 75.0]);
        // The medians' ratio would be 60 / 100; the verdict uses the median of the pairs' own ratios.
        assert_eq!(bench_median(&case.ratios()), 75.0);
    }

    #[test]
    fn total_splits_into_whole_batches_for_every_concurrency() {
        for devices in CONCURRENCY {
            assert!(TOTAL.is_multiple_of(devices * BATCH), "{devices} devices");
        }
    }
}
