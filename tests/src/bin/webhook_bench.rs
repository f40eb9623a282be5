//! `dockhand-webhook-bench`: server ingest while a webhook endpoint is down, against ingest without webhooks, in
//! the same run (issue 9 scope 3: "a failing endpoint never slows ingest", measured).
//!
//! Run: `cargo run --release -p dockhand-tests --bin dockhand-webhook-bench`. Prints a Markdown table for
//! BENCHMARKS.md on stdout and every run's figures on stderr.
//!
//! Each run pushes 64,000 movements (batches of 500, 8 concurrent devices over HTTPS, 8 sites with known
//! master data, as `dockhand-ingest-bench` does) to a fresh in-process sled server, three times:
//!
//! - `none`: no webhook registered (the dispatcher idles);
//! - `refused`: an endpoint for every event kind whose URL is a loopback port nobody listens on (connection
//!   refused at once, so the dispatcher fails fast and retries as often as the backoff allows);
//! - `blackhole`: an endpoint whose receiver accepts connections, reads the request and never answers (each
//!   attempt holds one of the endpoint's request slots until the 10 s timeout).
//!
//! In both failing cases the dispatcher follows the movement log during the run and queues one delivery per 100
//! movements, which is the work a down endpoint costs; the table shows how many it queued. The three cases run
//! back to back in an order that rotates per run, and the verdict is the median of the per-run ratios
//! `case / none` (see `dockhand-ingest-bench` for why per-run ratios on a shared machine).

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dockhand_protocol::sync::PushRequest;
use dockhand_server::webhooks::{Endpoint, EventKind};
use dockhand_server::{SledStore, Store};
use dockhand_tests::{
    bench_master_data, bench_median, bench_receipt, bench_runs, client_for, wait_until,
};

const DEFAULT_RUNS: usize = 5;
const BATCH: usize = 500;
const TOTAL: usize = 64_000;
const DEVICES: usize = 8;
const SITES: usize = 8;

/// What the endpoint is during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    None,
    Refused,
    Blackhole,
}

impl Case {
    const ALL: [Case; 3] = [Case::None, Case::Refused, Case::Blackhole];

    fn name(self) -> &'static str {
        match self {
            Case::None => "no webhook",
            Case::Refused => "endpoint down: connection refused",
            Case::Blackhole => "endpoint down: accepts, never answers (10 s timeout)",
        }
    }
}

/// A receiver that accepts, reads and never answers; counts the connections it took.
fn blackhole() -> Result<(u16, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            seen.fetch_add(1, Ordering::Relaxed);
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 8192];
                // Read until the client gives up (its timeout), answering nothing.
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    Ok((port, accepted))
}

/// A loopback port with nobody listening.
fn refused_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// An in-process server; stops when finished.
struct Server {
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), dockhand_server::Error>>>,
    url: String,
}

impl Server {
    fn start(data: &Path) -> Result<Server> {
        let port = dockhand_tests::free_port();
        let rt = tokio::runtime::Runtime::new()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = rt.spawn(dockhand_server::run(
            dockhand_server::RunOptions {
                data_dir: data.to_path_buf(),
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
        let server = Server {
            rt,
            stop: Some(stop),
            task: Some(task),
            url: format!("https://127.0.0.1:{port}"),
        };
        wait_until(Duration::from_secs(30), || {
            Ok(data.join("admin.token").exists()
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        })?;
        Ok(server)
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

/// One measured ingest: movements/s, and the deliveries queued by the end of it.
fn ingest(case: Case) -> Result<(f64, u64)> {
    let tmp = tempfile::tempdir()?;
    let data: PathBuf = tmp.path().join("server");
    std::fs::create_dir_all(&data)?;
    let url = match case {
        Case::None => None,
        Case::Refused => Some(format!("http://127.0.0.1:{}/erp", refused_port()?)),
        Case::Blackhole => Some(format!("http://127.0.0.1:{}/erp", blackhole()?.0)),
    };
    {
        // Opened and closed before the server opens it: sled locks its directory.
        let store = SledStore::open(&data.join("sled"), 64 << 20)?;
        bench_master_data(&store, SITES)?;
        if let Some(url) = &url {
            store
                .webhooks()
                .context("sled has webhooks")?
                .put_endpoint(&Endpoint {
                    id: "wh_bench".into(),
                    url: url.clone(),
                    events: EventKind::ALL.to_vec(),
                    description: "down".into(),
                    secret: "b".repeat(64),
                    created_at: time::OffsetDateTime::now_utc(),
                })?;
        }
    }
    let mut server = Server::start(&data)?;
    let push_url = format!("{}/v1/sync/push", server.url);
    let mut states = Vec::new();
    for d in 0..DEVICES {
        let id = format!("hh-{d:02}");
        let token =
            dockhand_server::enroll_device(&data, None, &id, &format!("WH{}", d % SITES), false)?;
        let client = client_for(&data)?;
        client.get(format!("{}/v1/health", server.url)).send()?;
        let per_device = TOTAL / DEVICES;
        let bodies: Vec<Vec<u8>> = (0..per_device / BATCH)
            .map(|b| {
                serde_json::to_vec(&PushRequest {
                    device_id: id.clone(),
                    movements: (0..BATCH)
                        .map(|i| bench_receipt(&id, (b * BATCH + i + 1) as u64))
                        .collect(),
                    backlog: None,
                })
            })
            .collect::<Result<_, _>>()?;
        states.push((client, token, bodies));
    }
    let barrier = Arc::new(Barrier::new(DEVICES + 1));
    let threads: Vec<_> = states
        .into_iter()
        .map(|(client, token, bodies)| {
            let (barrier, url) = (barrier.clone(), push_url.clone());
            std::thread::spawn(move || -> Result<()> {
                barrier.wait();
                for body in bodies {
                    let resp = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()?;
                    if !resp.status().is_success() {
                        bail!("push failed: {}", resp.status());
                    }
                }
                Ok(())
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("a device panicked"))??;
    }
    let elapsed = start.elapsed();
    server.finish()?;
    let queued = if url.is_some() {
        let store = SledStore::open(&data.join("sled"), 8 << 20)?;
        let stats = store.webhooks().context("webhooks")?.endpoint_stats()?;
        stats
            .iter()
            .map(|(_, s)| s.pending + s.failed + s.delivered)
            .sum()
    } else {
        0
    };
    Ok((TOTAL as f64 / elapsed.as_secs_f64(), queued))
}

fn main() -> Result<()> {
    let runs = bench_runs(DEFAULT_RUNS)?;
    let mut rates: Vec<[f64; 3]> = Vec::new();
    let mut queued = [0u64; 3];
    for run in 0..runs {
        let mut rate = [0f64; 3];
        // Rotate the order so no case always gets the machine a moment later.
        for k in 0..3 {
            let i = (run + k) % 3;
            let (r, q) = ingest(Case::ALL[i])?;
            rate[i] = r;
            queued[i] = q;
            eprintln!(
                "run {run}: {}: {r:.0} movements/s, {q} deliveries queued",
                Case::ALL[i].name()
            );
        }
        rates.push(rate);
    }
    println!(
        "| sled, {DEVICES} devices, {TOTAL} movements per run, {runs} runs | movements/s (median) | ratio to no webhook (median of per-run ratios) | deliveries queued during the last run |"
    );
    println!("| --- | --- | --- | --- |");
    for (i, case) in Case::ALL.iter().enumerate() {
        let mine: Vec<f64> = rates.iter().map(|r| r[i]).collect();
        let ratios: Vec<f64> = rates.iter().map(|r| r[i] / r[0]).collect();
        println!(
            "| {} | {:.0} | {:.0}% | {} |",
            case.name(),
            bench_median(&mine),
            100.0 * bench_median(&ratios),
            if *case == Case::None {
                "–".to_string()
            } else {
                queued[i].to_string()
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_table() {
        let cases: &[(&[f64], f64)] = &[(&[3.0], 3.0), (&[1.0, 3.0], 2.0), (&[5.0, 1.0, 3.0], 3.0)];
        for (v, want) in cases {
            assert_eq!(bench_median(v), *want, "{v:?}");
        }
    }

    #[test]
    fn runs_divide_into_whole_batches() {
        assert_eq!(TOTAL % (DEVICES * BATCH), 0);
    }
}
