//! Webhooks end to end (issue 9 scope 3): the real `dockhand-server` posting to a real HTTP receiver on loopback
//! that first fails with 500, then times out (answers nothing past the server's timeout), while the server is
//! killed with SIGKILL mid-delivery and restarted, then recovers. Every event (movements, the discrepancies they
//! raise, an ASN close and its short-receipt discrepancy, a resolution) must arrive with a signature the test
//! recomputes itself, and every delivery id must be seen at least once.
//!
//! - `receiver`: the loopback HTTP receiver with its three modes.
//! - `sled_survives_failures_timeouts_and_a_kill`: the scenario above on one sled node.
//! - `postgres_two_nodes_survive_failures_timeouts_and_a_kill`: the same with two nodes on one PostgreSQL (a
//!   throw-away cluster); pushes go to both, one node is the one killed, and every event is still queued exactly
//!   once (one dispatcher at a time) and delivered.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use dockhand_tests::*;
use serde_json::{json, Value};

mod receiver {
    use super::*;

    /// How the receiver answers.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[repr(u8)]
    pub enum Mode {
        /// 500 to everything.
        Fail = 0,
        /// Reads the request, then says nothing for `HANG` (past the server's timeout) and closes.
        Hang = 1,
        /// 204 to everything.
        Ok = 2,
    }

    /// How long a hanging answer hangs: well past the server's 1 s webhook timeout.
    pub const HANG: Duration = Duration::from_secs(4);

    /// One request as received.
    #[derive(Debug, Clone)]
    pub struct Request {
        pub headers: HashMap<String, String>,
        pub body: Vec<u8>,
        /// The mode it was answered in.
        pub mode: Mode,
    }

    /// A tiny HTTP/1.1 server: one thread per connection, `Connection: close` on every answer.
    pub struct Receiver {
        pub port: u16,
        mode: Arc<AtomicU8>,
        pub requests: Arc<Mutex<Vec<Request>>>,
        pub hanging: Arc<AtomicUsize>,
    }

    impl Receiver {
        pub fn start() -> Result<Receiver> {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let port = listener.local_addr()?.port();
            let mode = Arc::new(AtomicU8::new(Mode::Fail as u8));
            let requests = Arc::new(Mutex::new(Vec::new()));
            let hanging = Arc::new(AtomicUsize::new(0));
            let (m, r, h) = (mode.clone(), requests.clone(), hanging.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming().map_while(Result::ok) {
                    let (m, r, h) = (m.clone(), r.clone(), h.clone());
                    std::thread::spawn(move || {
                        let _ = serve(stream, &m, &r, &h);
                    });
                }
            });
            Ok(Receiver {
                port,
                mode,
                requests,
                hanging,
            })
        }

        pub fn set(&self, mode: Mode) {
            self.mode.store(mode as u8, Ordering::SeqCst);
        }

        pub fn count(&self, mode: Mode) -> usize {
            let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            requests.iter().filter(|r| r.mode == mode).count()
        }
    }

    fn serve(
        stream: TcpStream,
        mode: &AtomicU8,
        requests: &Mutex<Vec<Request>>,
        hanging: &AtomicUsize,
    ) -> Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if !line.starts_with("POST ") {
            bail!("unexpected request line {line:?}");
        }
        let mut headers = HashMap::new();
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .context("content-length")?
            .parse()?;
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        let now = match mode.load(Ordering::SeqCst) {
            0 => Mode::Fail,
            1 => Mode::Hang,
            _ => Mode::Ok,
        };
        requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Request {
                headers,
                body,
                mode: now,
            });
        let mut stream = stream;
        match now {
            Mode::Fail => stream.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\nboom",
            )?,
            Mode::Hang => {
                hanging.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(HANG);
                hanging.fetch_sub(1, Ordering::SeqCst);
            }
            Mode::Ok => stream.write_all(
                b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n",
            )?,
        }
        Ok(())
    }
}

use receiver::{Mode, Receiver};

#[path = "../../server/tests/pg/mod.rs"]
mod pg;

/// HMAC-SHA256 computed here, independently of the server's code: `v1=hex(HMAC(secret, ts "." body))`.
fn expected_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex_of(&mac.finalize().into_bytes()))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn push(
    server: &ServerProc,
    token: &str,
    device: &str,
    seqs: std::ops::RangeInclusive<u64>,
) -> Result<()> {
    let movements: Vec<_> = seqs.map(|s| bench_receipt(device, s)).collect();
    let resp = server
        .client()?
        .post(format!("{}/v1/sync/push", server.url()))
        .bearer_auth(token)
        .json(&json!({"device_id": device, "movements": movements}))
        .send()?;
    if !resp.status().is_success() {
        bail!("push answered {}: {}", resp.status(), resp.text()?);
    }
    Ok(())
}

/// The ids of every event the server should have delivered: its movements, its discrepancies (opened, and
/// resolved where they are), and the closed ASNs given.
fn expected_events(office: &Office, closed: &[&str]) -> Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    for m in office.movements("WH1")? {
        ids.insert(format!(
            "movement:{}:{}",
            m["movement"]["device_id"].as_str().context("device_id")?,
            m["movement"]["seq"]
        ));
    }
    let all = office.get("/v1/discrepancies")?;
    for d in all["discrepancies"].as_array().context("discrepancies")? {
        ids.insert(format!("discrepancy:{}:opened", d["id"]));
        if d["status"] == "resolved" {
            ids.insert(format!("discrepancy:{}:resolved", d["id"]));
        }
    }
    for asn in closed {
        ids.insert(format!("receipt:{asn}:closed"));
    }
    Ok(ids)
}

/// The event ids carried by requests answered 2xx whose signature verifies; fails on any bad signature.
fn delivered(receiver: &Receiver, secret: &str) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    let requests = receiver
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut events = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for r in &requests {
        let ts = r
            .headers
            .get("dockhand-webhook-timestamp")
            .context("timestamp header")?;
        let sig = r
            .headers
            .get("dockhand-webhook-signature")
            .context("signature header")?;
        let key = r.headers.get("dockhand-webhook-id").context("id header")?;
        if *sig != expected_signature(secret, ts, &r.body) {
            bail!("signature of delivery {key} does not verify");
        }
        let body: Value = serde_json::from_slice(&r.body)?;
        if body["delivery"].as_str() != Some(key.as_str()) {
            bail!(
                "body names delivery {} but the header {key}",
                body["delivery"]
            );
        }
        if r.mode == Mode::Ok {
            keys.insert(key.clone());
            for e in body["events"].as_array().context("events")? {
                events.insert(e["id"].as_str().context("event id")?.to_string());
            }
        }
    }
    Ok((events, keys))
}

fn webhook(office: &Office) -> Result<Value> {
    let list = office.get("/v1/webhooks")?;
    Ok(list["webhooks"][0].clone())
}

/// Which store the servers run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// One node on sled.
    Sled,
    /// Two nodes on one PostgreSQL database; one of them is the one killed.
    Postgres,
}

#[test]
fn sled_survives_failures_timeouts_and_a_kill() -> Result<()> {
    scenario(Backend::Sled)
}

#[test]
fn postgres_two_nodes_survive_failures_timeouts_and_a_kill() -> Result<()> {
    scenario(Backend::Postgres)
}

fn scenario(backend: Backend) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("server");
    std::fs::create_dir_all(&data)?;
    let config = data.join("server.toml");
    let db = (backend == Backend::Postgres).then(pg::database);
    let mut toml = String::from("webhook_timeout_ms = 1000\n");
    if let Some(db) = &db {
        toml.push_str(&format!(
            "store = \"postgres\"\npostgres_url = \"{}\"\npostgres_max_connections = 4\n",
            db.cluster.tcp_url(&db.name)
        ));
    }
    std::fs::write(&config, toml)?;
    let port = free_port();
    let mut server = ServerProc::start_with_config(&data, port, Some(&config))?;
    // The second node (PostgreSQL only) shares the data directory's TLS material and admin token.
    let other = match backend {
        Backend::Postgres => Some(ServerProc::start_with_config(
            &data,
            free_port(),
            Some(&config),
        )?),
        Backend::Sled => None,
    };
    let token = enroll(&data, "hh-01", "WH1")?;
    let office = Office::new(&server)?;
    let receiver = Receiver::start()?;

    let created = office.post(
        "/v1/webhooks",
        Some(json!({
            "url": format!("http://127.0.0.1:{}/erp/hooks", receiver.port),
            "events": ["movement.applied", "receipt.closed", "discrepancy.opened", "discrepancy.resolved"],
            "description": "ERP test receiver",
        })),
    )?;
    let secret = created["secret"].as_str().context("secret")?.to_string();
    assert_eq!(secret.len(), 64);
    assert!(
        webhook(&office)?.get("secret").is_none(),
        "the list never shows the secret"
    );

    // Phase 1: the receiver fails with 500. Movements (150 in two pushes, so more than one page), an ASN closed
    // short, and one resolution.
    receiver.set(Mode::Fail);
    push(&server, &token, "hh-01", 1..=70)?;
    push(other.as_ref().unwrap_or(&server), &token, "hh-01", 71..=150)?;
    office.post(
        "/v1/asns",
        Some(json!({"id": "ASN-9", "site": "WH1", "lines": [{"gtin": GTINS[0], "lot": "LOT-A", "qty": 5}]})),
    )?;
    office.post("/v1/asns/ASN-9/close", None)?;
    let open = office.discrepancies("WH1")?;
    let first = open.first().context("the pushes raised discrepancies")?["id"].clone();
    office.post(
        &format!("/v1/discrepancies/{first}/resolve"),
        Some(json!({"type": "accepted", "reason": "known, test"})),
    )?;
    wait_until(Duration::from_secs(60), || {
        Ok(receiver.count(Mode::Fail) >= 6)
    })?;
    let hook = webhook(&office)?;
    assert!(hook["pending"].as_u64() > Some(0), "{hook}");
    assert!(
        hook["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "the last error names the status: {hook}"
    );

    // Phase 2: the receiver takes requests and never answers; the server times out, then is killed while
    // requests hang, and restarted.
    receiver.set(Mode::Hang);
    wait_until(Duration::from_secs(60), || {
        Ok(receiver.hanging.load(Ordering::SeqCst) > 0 && receiver.count(Mode::Hang) >= 2)
    })?;
    wait_until(Duration::from_secs(30), || {
        Ok(webhook(&office)?["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("timed out")))
    })?;
    wait_until(Duration::from_secs(30), || {
        Ok(receiver.hanging.load(Ordering::SeqCst) > 0)
    })?;
    server.kill();
    server = ServerProc::start_with_config(&data, port, Some(&config))?;
    let office = Office::new(&server)?;
    push(&server, &token, "hh-01", 151..=260)?;

    // Phase 3: the receiver recovers; everything arrives.
    receiver.set(Mode::Ok);
    let want = expected_events(&office, &["ASN-9"])?;
    assert!(want.len() > 260 + 2, "{} events expected", want.len());
    wait_until(Duration::from_secs(120), || {
        let (got, _) = delivered(&receiver, &secret)?;
        Ok(want.is_subset(&got))
    })?;
    let (got, keys) = delivered(&receiver, &secret)?;
    let missing: Vec<_> = want.difference(&got).collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");

    // Every delivery the server queued was acknowledged, and its id was seen by the receiver.
    wait_until(Duration::from_secs(30), || {
        Ok(webhook(&office)?["pending"] == 0)
    })?;
    let id = webhook(&office)?["id"].as_str().context("id")?.to_string();
    let all = office.get(&format!("/v1/webhooks/{id}/deliveries?limit=1000"))?;
    let all = all["deliveries"].as_array().context("deliveries")?;
    assert!(!all.is_empty());
    for d in all {
        assert_eq!(d["status"], "delivered", "{d}");
        let key = d["key"].as_str().context("key")?;
        assert!(
            keys.contains(key),
            "delivery {key} never reached the receiver"
        );
    }
    // Each event was queued exactly once (one dispatcher at a time, compare-and-set cursors), even across the
    // kill and, with PostgreSQL, two nodes.
    // Delivered bodies are not kept, so count: the deliveries' events add up to exactly the expected events (all
    // of which arrived, checked above), under distinct delivery ids.
    let queued: u64 = all.iter().map(|d| d["events"].as_u64().unwrap_or(0)).sum();
    assert_eq!(queued, want.len() as u64, "every event queued exactly once");
    let distinct: BTreeSet<&str> = all.iter().filter_map(|d| d["key"].as_str()).collect();
    assert_eq!(distinct.len(), all.len(), "delivery ids are unique");
    assert!(
        all.iter().all(|d| d["body"] == ""),
        "delivered bodies are not kept"
    );
    let failed_then_ok = all
        .iter()
        .filter(|d| d["attempts"].as_u64() > Some(1))
        .count();
    eprintln!(
        "webhooks e2e ({backend:?}): {} events in {} deliveries ({} needed retries); receiver saw {} requests answered 500, {} left hanging, {} answered 204",
        want.len(),
        all.len(),
        failed_then_ok,
        receiver.count(Mode::Fail),
        receiver.count(Mode::Hang),
        receiver.count(Mode::Ok)
    );
    assert!(failed_then_ok > 0, "some deliveries needed retries");
    // A graceful stop ends the dispatcher and lets go of the store cleanly (with PostgreSQL, its connections must
    // close off the async workers): exit status 0.
    let status = server.terminate()?;
    assert!(status.success(), "graceful shutdown: {status}");
    if let Some(mut other) = other {
        let status = other.terminate()?;
        assert!(
            status.success(),
            "graceful shutdown of the other node: {status}"
        );
    }
    Ok(())
}
