//! Two `dockhand-server` nodes on one PostgreSQL (issue 6): devices switch node at random, connections are reset
//! under them, a node is SIGKILLed mid-run, and afterwards every movement is stored exactly once.
//!
//! The setup is what a site with a load balancer runs: one throw-away PostgreSQL cluster (server/tests/pg), two
//! server processes with `store = "postgres"` sharing one data directory (TLS material, admin token and the config;
//! with PostgreSQL a node opens no sled database there and devices are enrolled into the database, see
//! `dockhand_server::run`), and in front of each
//! node a TCP proxy that injects faults into about one connection in eight:
//!
//! - `cut`: forward only the first few hundred to few thousand bytes the client sends, then reset both sides (a
//!   request cut anywhere, TLS handshake included, so the server sees a truncated body or nothing);
//! - `lose`: forward the whole request, then reset both sides when the server's answer arrives (the batch is
//!   applied and the device never hears of it: the next attempt must be a replay, not a second application).
//!
//! Devices speak TLS 1.2 to the proxies. Only for this test: in 1.2 the server's first application-data record
//! after the handshake is the HTTP response, so the proxy can drop exactly the answer; in 1.3 session tickets
//! travel the same way and cannot be told apart.
//!
//! Each simulated device behaves like an agent's sync loop: it resends the same batch until acknowledged and, on
//! 409 `seq_gap`, resumes from `expected_seq`. The test keeps the model: the stock effects of what it pushed.

#[path = "../../server/tests/pg/mod.rs"]
mod pg;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dockhand_protocol::sync::{Movement, MovementKind, MovementSource, PushRequest};
use dockhand_tests::{enroll, free_port, parse_stock, ServerProc, GTINS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const DEVICES: usize = 20;
const MOVEMENTS_PER_DEVICE: u64 = 300;
const SITE: &str = "WH1";
const LOCATIONS: [&str; 5] = ["DOCK-1", "A-01", "A-02", "A-03", "A-04"];
const LOTS: [&str; 3] = ["L1", "L2", "L3"];
/// The per-connection fault odds of the proxies, in percent.
const CUT_PERCENT: u32 = 6;
const LOSE_PERCENT: u32 = 6;

type Key = (String, String, Option<String>);
type Stock = BTreeMap<Key, i64>;

#[test]
fn twenty_devices_two_nodes_one_killed_exactly_once() -> Result<()> {
    let started = Instant::now();
    let seed: u64 = std::env::var("DOCKHAND_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("multinode seed {seed} (rerun with DOCKHAND_SEED={seed})");

    let db = pg::database();
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("server");
    std::fs::create_dir_all(&data)?;
    // In the data directory, so `dockhand-server enroll --data` finds it too and enrolls into PostgreSQL.
    let config = data.join("server.toml");
    std::fs::write(
        &config,
        format!(
            "store = \"postgres\"\npostgres_url = \"{}\"\npostgres_max_connections = 8\n",
            db.cluster.tcp_url(&db.name)
        ),
    )?;

    // Node A first: it creates the shared TLS material and admin token that node B then reuses.
    let (port_a, port_b) = (free_port(), free_port());
    let mut node_a = ServerProc::start_with_config(&data, port_a, Some(&config))?;
    let node_b = ServerProc::start_with_config(&data, port_b, Some(&config))?;
    let admin = node_a.admin_token()?;
    master_data(&node_a, &admin)?;
    let tokens = (0..DEVICES)
        .map(|i| enroll(&data, &device_id(i), SITE))
        .collect::<Result<Vec<_>>>()?;

    let proxies = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let faults = Arc::new(FaultStats::default());
    // Node A keeps its address across the restart, so its proxy needs no update.
    let mut nodes = Vec::new();
    for (i, node) in [&node_a, &node_b].into_iter().enumerate() {
        let proxy = proxies.block_on(FaultyProxy::start(
            node.addr,
            seed ^ i as u64,
            faults.clone(),
        ))?;
        nodes.push(proxy.addr);
        proxies.spawn(proxy.serve());
    }
    let nodes = [nodes[0], nodes[1]];

    let acked_total = Arc::new(AtomicU64::new(0));
    let devices: Vec<_> = (0..DEVICES)
        .map(|i| {
            let (token, acked_total) = (tokens[i].clone(), acked_total.clone());
            let data = data.clone();
            std::thread::spawn(move || {
                run_device(i, seed, &token, &data, nodes, &acked_total)
                    .with_context(|| format!("device {}", device_id(i)))
            })
        })
        .collect();

    // SIGKILL node A once a third of all movements are in, and bring it back a second later on the same port.
    let total = DEVICES as u64 * MOVEMENTS_PER_DEVICE;
    let deadline = Instant::now() + Duration::from_secs(45);
    while acked_total.load(Ordering::Relaxed) < total / 3 {
        if Instant::now() > deadline || devices.iter().all(|d| d.is_finished()) {
            bail!(
                "devices stalled before the kill: {} of {total} acked",
                acked_total.load(Ordering::Relaxed)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    node_a.kill();
    let killed_at = acked_total.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(1));
    node_a = ServerProc::start_with_config(&data, port_a, Some(&config))?;
    eprintln!("node A killed at {killed_at} of {total} acked movements, restarted");

    let mut sent = Stock::new();
    let mut stats = DeviceStats::default();
    for d in devices {
        let (model, s) = d.join().expect("device thread panicked")?;
        for (k, q) in model {
            *sent.entry(k).or_default() += q;
        }
        stats.add(&s);
    }
    sent.retain(|_, q| *q != 0);
    drop(proxies);
    eprintln!(
        "pushed {total} movements in {} requests: {} failed and retried ({} upstream refused, {} cut, {} lost \
         answers injected), {} gaps",
        stats.requests,
        stats.errors,
        faults.refused.load(Ordering::Relaxed),
        faults.cut.load(Ordering::Relaxed),
        faults.lost.load(Ordering::Relaxed),
        stats.gaps,
    );
    assert!(killed_at < total, "node A must die mid-run");
    assert!(
        faults.cut.load(Ordering::Relaxed) > 0 && faults.lost.load(Ordering::Relaxed) > 0,
        "the proxies injected no faults of some kind: {faults:?}"
    );

    // Both nodes, straight (no proxy), must tell the same exact story.
    for node in [&node_a, &node_b] {
        let client = node.client()?;
        for i in 0..DEVICES {
            let id = device_id(i);
            let hw: serde_json::Value = client
                .get(format!("{}/v1/devices/{id}/high-water", node.url()))
                .bearer_auth(&admin)
                .send()?
                .error_for_status()?
                .json()?;
            assert_eq!(
                hw["acked_through"].as_u64(),
                Some(MOVEMENTS_PER_DEVICE),
                "{id} via {}",
                node.addr
            );
            let page: serde_json::Value = client
                .get(format!(
                    "{}/v1/movements?device={id}&limit=1000",
                    node.url()
                ))
                .bearer_auth(&admin)
                .send()?
                .error_for_status()?
                .json()?;
            let seqs: Vec<u64> = page["movements"]
                .as_array()
                .context("movements array")?
                .iter()
                .map(|m| m["movement"]["seq"].as_u64().context("seq"))
                .collect::<Result<_>>()?;
            let mut sorted = seqs.clone();
            sorted.sort_unstable();
            let want: Vec<u64> = (1..=MOVEMENTS_PER_DEVICE).collect();
            assert_eq!(sorted, want, "{id}: every seq stored exactly once");
            assert!(page["next"].is_null(), "{id}: one page holds them all");
        }
        let got = stock_of(node, &admin)?;
        assert_eq!(
            got, sent,
            "stock via {} = sum of the pushed movements",
            node.addr
        );
    }
    // Conservation: putaways move units, receipts add them, picks remove them.
    let on_hand: i64 = sent.values().sum();
    assert_eq!(on_hand, stats.received - stats.picked, "conservation");

    eprintln!(
        "multinode: {DEVICES} devices x {MOVEMENTS_PER_DEVICE} movements verified in {:?}",
        started.elapsed()
    );
    Ok(())
}

fn device_id(i: usize) -> String {
    format!("hh-{i:02}")
}

/// The site, its locations and the items the devices use, so no movement is an "unknown item/location".
fn master_data(node: &ServerProc, admin: &str) -> Result<()> {
    let client = node.client()?;
    let put = |path: String, body: serde_json::Value| -> Result<()> {
        let resp = client
            .put(format!("{}{path}", node.url()))
            .bearer_auth(admin)
            .json(&body)
            .send()?;
        if !resp.status().is_success() {
            bail!("PUT {path}: {} {}", resp.status(), resp.text()?);
        }
        Ok(())
    };
    put(
        format!("/v1/sites/{SITE}"),
        serde_json::json!({"name": "Main"}),
    )?;
    for gtin in &GTINS[..3] {
        put(
            format!("/v1/items/{gtin}"),
            serde_json::json!({"description": "test item", "lot_tracked": true}),
        )?;
    }
    for loc in LOCATIONS {
        put(
            format!("/v1/sites/{SITE}/locations/{loc}"),
            serde_json::json!({}),
        )?;
    }
    Ok(())
}

fn stock_of(node: &ServerProc, admin: &str) -> Result<Stock> {
    let v: serde_json::Value = node
        .client()?
        .get(format!("{}/v1/stock?site={SITE}", node.url()))
        .bearer_auth(admin)
        .send()?
        .error_for_status()?
        .json()?;
    Ok(parse_stock(&v)?
        .into_iter()
        .filter(|r| r.3 != 0)
        .map(|(l, g, lot, q)| ((l, g, lot), q))
        .collect())
}

#[derive(Debug, Default)]
struct DeviceStats {
    requests: u64,
    errors: u64,
    gaps: u64,
    received: i64,
    picked: i64,
}

impl DeviceStats {
    fn add(&mut self, o: &DeviceStats) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.gaps += o.gaps;
        self.received += o.received;
        self.picked += o.picked;
    }
}

/// One device: plans its movements, pushes them through random nodes until all are acknowledged, and returns the
/// stock effects of what it pushed.
fn run_device(
    i: usize,
    seed: u64,
    token: &str,
    server_data: &Path,
    nodes: [SocketAddr; 2],
    acked_total: &AtomicU64,
) -> Result<(Stock, DeviceStats)> {
    let id = device_id(i);
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(1000 + i as u64));
    let (movements, model, mut stats) = plan(&id, &mut rng);
    let client = device_client(server_data)?;
    let end = Instant::now() + Duration::from_secs(50);
    let mut acked = 0u64;
    while acked < MOVEMENTS_PER_DEVICE {
        let size = rng
            .random_range(1..=50u64)
            .min(MOVEMENTS_PER_DEVICE - acked);
        let batch = &movements[acked as usize..(acked + size) as usize];
        let body = serde_json::to_vec(&PushRequest {
            device_id: id.clone(),
            movements: batch.to_vec(),
            backlog: Some(MOVEMENTS_PER_DEVICE - acked),
        })?;
        // Resend this same batch until it is answered, like the agent's sync loop.
        loop {
            if Instant::now() > end {
                bail!("not done after 50 s: acked through {acked}");
            }
            let node = nodes[rng.random_range(0..2)];
            stats.requests += 1;
            let resp = client
                .post(format!("https://{node}/v1/sync/push"))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send();
            let resp = match resp {
                Ok(r) => r,
                Err(_) => {
                    stats.errors += 1;
                    std::thread::sleep(Duration::from_millis(rng.random_range(5..40)));
                    continue;
                }
            };
            let status = resp.status();
            let v: serde_json::Value = match resp.json() {
                Ok(v) => v,
                Err(_) => {
                    // The answer was cut mid-body: as good as no answer.
                    stats.errors += 1;
                    continue;
                }
            };
            if status.is_success() {
                let through = v["acked_through"].as_u64().context("acked_through")?;
                let last = batch.last().map(|m| m.seq).unwrap_or(acked);
                assert!(
                    through >= last,
                    "{id}: ack {through} does not cover the batch ending at {last}"
                );
                acked_total.fetch_add(through - acked, Ordering::Relaxed);
                acked = through;
                break;
            }
            if status == reqwest::StatusCode::CONFLICT && v["expected_seq"].is_u64() {
                stats.gaps += 1;
                let expected = v["expected_seq"].as_u64().context("expected_seq")?;
                assert!(
                    expected > acked,
                    "{id}: the server lost acknowledged movements (expects {expected}, acked {acked})"
                );
                acked_total.fetch_add(expected - 1 - acked, Ordering::Relaxed);
                acked = expected - 1;
                break;
            }
            if status.is_server_error() {
                // A node whose database connection broke under it: retry like any transient failure.
                stats.errors += 1;
                std::thread::sleep(Duration::from_millis(rng.random_range(5..40)));
                continue;
            }
            bail!("{id}: push refused with {status}: {v}");
        }
    }
    Ok((model, stats))
}

/// HTTPS trusting the server's CA, TLS 1.2 (see the module docs), a fresh connection per request so every
/// request draws its own fault.
fn device_client(server_data: &Path) -> Result<reqwest::blocking::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(server_data.join("ca.pem")).context("read ca.pem")?;
    Ok(reqwest::blocking::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem)?)
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// A device's movements: receipts at the dock, put-aways to bins, picks from bins, never taking more than the
/// device itself brought (so stock stays non-negative and every discrepancy would be a bug). Returns the
/// movements, their summed stock effects, and the units received and picked.
fn plan(id: &str, rng: &mut StdRng) -> (Vec<Movement>, Stock, DeviceStats) {
    let mut own = Stock::new();
    let mut stats = DeviceStats::default();
    let mut out = Vec::new();
    let base = time::OffsetDateTime::now_utc();
    for seq in 1..=MOVEMENTS_PER_DEVICE {
        let gtin = GTINS[rng.random_range(0..3)];
        let lot = LOTS[rng.random_range(0..LOTS.len())];
        let key = |loc: &str| (loc.to_string(), gtin.to_string(), Some(lot.to_string()));
        let at_dock = own.get(&key("DOCK-1")).copied().unwrap_or(0);
        let bin = LOCATIONS[rng.random_range(1..LOCATIONS.len())];
        let in_bin = own.get(&key(bin)).copied().unwrap_or(0);
        let roll = rng.random_range(0..100);
        let (kind, from, to, qty) = if roll < 35 && in_bin > 0 {
            (
                MovementKind::Pick,
                Some(bin),
                None,
                rng.random_range(1..=in_bin),
            )
        } else if roll < 70 && at_dock > 0 {
            (
                MovementKind::Putaway,
                Some("DOCK-1"),
                Some(bin),
                rng.random_range(1..=at_dock),
            )
        } else {
            (
                MovementKind::Receive,
                None,
                Some("DOCK-1"),
                rng.random_range(1..=20),
            )
        };
        if let Some(f) = from {
            *own.entry(key(f)).or_default() -= qty;
        }
        if let Some(t) = to {
            *own.entry(key(t)).or_default() += qty;
        }
        match kind {
            MovementKind::Receive => stats.received += qty,
            MovementKind::Pick => stats.picked += qty,
            _ => {}
        }
        out.push(Movement {
            device_id: id.to_string(),
            seq,
            at: base + time::Duration::milliseconds(seq as i64),
            kind,
            gtin: gtin.to_string(),
            lot: Some(lot.to_string()),
            expiry: None,
            serials: vec![],
            qty: qty as u64,
            from_location: from.map(str::to_string),
            to_location: to.map(str::to_string),
            sscc: None,
            reference: None,
            operator: Some("op1".into()),
            source: MovementSource::Barcode {
                raw: format!("]C101{gtin}10{lot}"),
                symbology: Some("]C1".into()),
            },
        });
    }
    own.retain(|_, q| *q != 0);
    (out, own, stats)
}

/// What the proxies did, over both nodes.
#[derive(Debug, Default)]
struct FaultStats {
    connections: AtomicU64,
    refused: AtomicU64,
    cut: AtomicU64,
    lost: AtomicU64,
}

/// What the proxy does to one connection.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Clean,
    /// Reset after forwarding this many client bytes.
    Cut(usize),
    /// Reset when the server's first application-data record arrives (TLS 1.2: the HTTP response).
    Lose,
}

/// A TCP proxy in front of one node that resets some connections (see the module docs).
struct FaultyProxy {
    listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    rng: StdRng,
    stats: Arc<FaultStats>,
}

impl FaultyProxy {
    async fn start(upstream: SocketAddr, seed: u64, stats: Arc<FaultStats>) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok(FaultyProxy {
            listener,
            addr,
            upstream,
            rng: StdRng::seed_from_u64(seed),
            stats,
        })
    }

    async fn serve(mut self) {
        loop {
            let Ok((client, _)) = self.listener.accept().await else {
                continue;
            };
            let roll = self.rng.random_range(0..100);
            let fate = if roll < CUT_PERCENT {
                Fate::Cut(self.rng.random_range(0..4000))
            } else if roll < CUT_PERCENT + LOSE_PERCENT {
                Fate::Lose
            } else {
                Fate::Clean
            };
            self.stats.connections.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(relay(client, self.upstream, fate, self.stats.clone()));
        }
    }
}

/// Copies bytes both ways until both sides close, or injects the connection's fault: an early return drops both
/// sockets with SO_LINGER 0, which the kernel turns into a reset (RST), not an orderly close.
async fn relay(client: TcpStream, upstream: SocketAddr, fate: Fate, stats: Arc<FaultStats>) {
    let server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(_) => {
            // The node is down: the device sees a reset, as behind a load balancer with no healthy backend.
            stats.refused.fetch_add(1, Ordering::Relaxed);
            let _ = client.set_zero_linger();
            return;
        }
    };
    if !matches!(fate, Fate::Clean) {
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let to_server = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut forwarded = 0usize;
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                sw.shutdown().await?;
                return Ok(());
            }
            if let Fate::Cut(limit) = fate {
                if forwarded + n > limit {
                    sw.write_all(&buf[..limit - forwarded]).await?;
                    stats.cut.fetch_add(1, Ordering::Relaxed);
                    return Err(std::io::Error::other("cut"));
                }
            }
            sw.write_all(&buf[..n]).await?;
            forwarded += n;
        }
    };
    let to_client = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut records = RecordScanner::default();
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                cw.shutdown().await?;
                return Ok(());
            }
            if matches!(fate, Fate::Lose) {
                if let Some(at) = records.first_application_data(&buf[..n]) {
                    // Everything before the response (the rest of the handshake) still goes through.
                    cw.write_all(&buf[..at]).await?;
                    stats.lost.fetch_add(1, Ordering::Relaxed);
                    return Err(std::io::Error::other("lost"));
                }
            }
            cw.write_all(&buf[..n]).await?;
        }
    };
    let _: std::io::Result<((), ())> = tokio::try_join!(to_server, to_client);
}

/// Walks TLS record headers (type, version, 16-bit length) across reads.
#[derive(Default)]
struct RecordScanner {
    /// Bytes of the current record still to skip.
    skip: usize,
    /// A partial header carried over from the last read.
    header: Vec<u8>,
}

impl RecordScanner {
    /// The offset in `bytes` where the first application-data record (type 23) starts, if it does.
    fn first_application_data(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            if self.skip > 0 {
                let k = self.skip.min(bytes.len() - i);
                self.skip -= k;
                i += k;
                continue;
            }
            let start = i - self.header.len().min(i);
            self.header.push(bytes[i]);
            i += 1;
            if self.header.len() == 5 {
                if self.header[0] == 23 {
                    return Some(start);
                }
                self.skip = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.header.clear();
            }
        }
        None
    }
}
