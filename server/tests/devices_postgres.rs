//! The device registry on PostgreSQL (`PgDevices`), on a real throw-away cluster (`pg/mod.rs`; PostgreSQL missing
//! is a failure that says how to install it).
//!
//! - registry: two `PgDevices` on one database stand for two server nodes: enrollment, revocation and rotation
//!   made through one apply at once on the other; concurrent enrollment of one id; last-seen state written by
//!   several nodes only moves forward;
//! - the `dockhand-server` binary: `enroll --config` (and `DATA/server.toml`) with `store = "postgres"` writes to
//!   the database, not to files; two `run` nodes on one database share device credentials over HTTPS.

mod pg;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use dockhand_server::devices::{token_digest_hex, Device, DeviceError, TokenCheck};
use dockhand_server::{DeviceRegistry, PgDevices};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_dockhand-server");

/// Two registries ("nodes") with their own connections on one fresh database.
struct Nodes {
    a: PgDevices,
    b: PgDevices,
    db: pg::TestDb,
}

fn two_nodes() -> Nodes {
    let db = pg::database();
    let a = PgDevices::open(&db.url(), 2).expect("open registry A");
    let b = PgDevices::open(&db.url(), 2).expect("open registry B");
    Nodes { a, b, db }
}

fn device(id: &str, site: &str) -> Device {
    Device {
        id: id.into(),
        site: site.into(),
    }
}

fn sql(db: &pg::TestDb) -> postgres::Client {
    postgres::Client::connect(&db.url(), postgres::NoTls).expect("connect to the test database")
}

#[test]
fn enrolled_on_one_node_authenticates_on_another() {
    let n = two_nodes();
    let token = n.a.enroll("hh-01", "WH1", false).unwrap();
    assert_eq!(token.len(), 64);
    assert_eq!(
        n.b.check_token(&token).unwrap(),
        TokenCheck::Valid(device("hh-01", "WH1"))
    );
    assert_eq!(
        n.b.authenticate(&token).unwrap(),
        Some(device("hh-01", "WH1"))
    );
    assert_eq!(
        n.b.check_token(&"0".repeat(64)).unwrap(),
        TokenCheck::Unknown
    );
    let record = n.b.get("hh-01").unwrap().unwrap();
    assert_eq!(record.token_sha256, token_digest_hex(&token));
    assert_eq!(
        (record.revoked_at, record.last_seen, record.backlog),
        (None, None, None)
    );
    assert_eq!(n.b.list().unwrap(), vec![record]);
    assert!(n.b.get("nobody").unwrap().is_none());
    assert!(n.b.get("../x").unwrap().is_none());

    // Only the hash is stored.
    let row = sql(&n.db)
        .query_one("SELECT row_to_json(devices)::text FROM devices", &[])
        .unwrap();
    let text: String = row.get(0);
    assert!(!text.contains(&token), "{text}");

    // Enrolling again fails on either node, and changes nothing.
    for node in [&n.a, &n.b] {
        assert!(matches!(
            node.enroll("hh-01", "WH1", false),
            Err(DeviceError::AlreadyEnrolled(id)) if id == "hh-01"
        ));
    }
    assert!(n.a.authenticate(&token).unwrap().is_some());

    // The same rules as the file registry, one line per case.
    let refused: &[(&str, &str, &str)] = &[
        ("office", "WH1", "reserved"),
        ("../x", "WH1", "invalid device id"),
        ("", "WH1", "invalid device id"),
        ("hh-02", "W H", "invalid site"),
        ("hh-02", "..", "invalid site"),
    ];
    for (id, site, want) in refused {
        let err = n.a.enroll(id, site, false).unwrap_err();
        assert!(err.to_string().contains(want), "{id:?} {site:?}: {err}");
    }
    assert_eq!(n.a.list().unwrap().len(), 1);
}

#[test]
fn revoked_on_one_node_is_refused_on_the_other() {
    let n = two_nodes();
    let token = n.a.enroll("hh-01", "WH1", false).unwrap();
    let keep = n.a.enroll("hh-02", "WH1", false).unwrap();
    assert!(n.a.authenticate(&token).unwrap().is_some());

    let revoked = n.b.revoke("hh-01").unwrap().unwrap();
    let at = revoked.revoked_at.expect("revoked_at set");
    assert_eq!(
        n.a.check_token(&token).unwrap(),
        TokenCheck::Revoked(device("hh-01", "WH1"))
    );
    assert_eq!(n.a.authenticate(&token).unwrap(), None);
    assert!(
        n.a.authenticate(&keep).unwrap().is_some(),
        "other devices unaffected"
    );
    // Revoking again changes nothing; unknown ids are None.
    let again = n.a.revoke("hh-01").unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(at));
    assert!(n.a.revoke("nobody").unwrap().is_none());
    assert!(n.a.revoke("bad/id").unwrap().is_none());
    assert!(n.a.get("hh-01").unwrap().unwrap().revoked_at.is_some());
}

#[test]
fn rotation_replaces_the_token_on_every_node() {
    let n = two_nodes();
    let old = n.a.enroll("hh-01", "WH1", false).unwrap();
    let seen = datetime!(2026-12-01 07:59:58 UTC);
    n.a.touch("hh-01", seen, Some(3)).unwrap();
    n.a.revoke("hh-01").unwrap();

    let new = n.b.enroll("hh-01", "WH2", true).unwrap();
    assert_ne!(new, old);
    for node in [&n.a, &n.b] {
        assert_eq!(node.check_token(&old).unwrap(), TokenCheck::Unknown);
        assert_eq!(
            node.check_token(&new).unwrap(),
            TokenCheck::Valid(device("hh-01", "WH2")),
            "rotation re-activates, at the new site"
        );
    }
    let record = n.a.get("hh-01").unwrap().unwrap();
    assert_eq!(
        (record.revoked_at, record.last_seen, record.backlog),
        (None, Some(seen), Some(3)),
        "rotation keeps the last-seen state"
    );
    // Rotating an id that was never enrolled enrolls it, as with files.
    let fresh = n.a.enroll("hh-07", "WH1", true).unwrap();
    assert!(n.b.authenticate(&fresh).unwrap().is_some());
}

#[test]
fn concurrent_enrollment_of_one_id_lets_exactly_one_win() {
    let n = Arc::new(two_nodes());
    for round in 0..5 {
        let id = format!("hh-{round}");
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (n, barrier, id) = (n.clone(), barrier.clone(), id.clone());
                std::thread::spawn(move || {
                    let node = if i % 2 == 0 { &n.a } else { &n.b };
                    barrier.wait();
                    node.enroll(&id, "WH1", false)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let winners: Vec<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "{id}: {results:?}");
        for r in &results {
            assert!(
                matches!(r, Ok(_) | Err(DeviceError::AlreadyEnrolled(_))),
                "{id}: {r:?}"
            );
        }
        assert_eq!(
            n.b.authenticate(winners[0]).unwrap(),
            Some(device(&id, "WH1")),
            "the stored token is the winner's"
        );
    }
}

#[test]
fn last_seen_is_throttled_and_only_moves_forward_across_nodes() {
    let n = two_nodes();
    n.a.enroll("hh-01", "WH1", false).unwrap();
    let stored = |db: &pg::TestDb| {
        let row = sql(db)
            .query_one(
                "SELECT last_seen, backlog FROM devices WHERE device_id = 'hh-01'",
                &[],
            )
            .unwrap();
        let seen: Option<time::OffsetDateTime> = row.get(0);
        let backlog: Option<i64> = row.get(1);
        (seen, backlog)
    };
    let t0 = datetime!(2026-12-01 08:00:00 UTC);
    let s = time::Duration::seconds;

    n.a.touch("hh-01", t0, Some(5)).unwrap();
    assert_eq!(
        stored(&n.db),
        (Some(t0), Some(5)),
        "first sighting written at once"
    );
    n.a.touch("hh-01", t0 + s(1), Some(7)).unwrap();
    assert_eq!(
        stored(&n.db),
        (Some(t0), Some(5)),
        "throttled: no write per request"
    );
    let on_a = n.a.get("hh-01").unwrap().unwrap();
    assert_eq!(
        (on_a.last_seen, on_a.backlog),
        (Some(t0 + s(1)), Some(7)),
        "A's memory is newer"
    );
    let on_b = n.b.get("hh-01").unwrap().unwrap();
    assert_eq!(
        (on_b.last_seen, on_b.backlog),
        (Some(t0), Some(5)),
        "B sees what was written"
    );

    // The device moves to node B and reports a smaller backlog; then A flushes its older view at shutdown.
    n.b.touch("hh-01", t0 + s(2), Some(0)).unwrap();
    assert_eq!(stored(&n.db), (Some(t0 + s(2)), Some(0)));
    n.a.flush_seen().unwrap();
    assert_eq!(
        stored(&n.db),
        (Some(t0 + s(2)), Some(0)),
        "a late write of an older sighting changes nothing"
    );
    let listed = &n.a.list().unwrap()[0];
    assert_eq!(
        (listed.last_seen, listed.backlog),
        (Some(t0 + s(2)), Some(0)),
        "A's older memory does not hide the newer row"
    );

    // A pull (no backlog) seen later by A moves last_seen but keeps the backlog.
    n.a.touch("hh-01", t0 + s(3), None).unwrap();
    n.a.flush_seen().unwrap();
    assert_eq!(stored(&n.db), (Some(t0 + s(3)), Some(0)));
    // Touching a device that is not enrolled is harmless.
    n.b.touch("ghost", t0, Some(1)).unwrap();
    n.b.flush_seen().unwrap();
}

/// Runs `dockhand-server enroll`; Ok(stdout's one line) on success, Err(stderr) on failure (exit code 1).
fn cli_enroll(
    data: &Path,
    config: Option<&Path>,
    device: &str,
    extra: &[&str],
) -> Result<String, String> {
    let mut cmd = Command::new(BIN);
    cmd.args(["enroll", "--device", device, "--site", "WH1", "--data"])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "info");
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    if out.status.success() {
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 1, "the token alone on stdout: {stdout:?}");
        Ok(lines[0].to_string())
    } else {
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stdout.is_empty(),
            "nothing on stdout on failure: {stdout:?}"
        );
        Err(String::from_utf8(out.stderr).unwrap())
    }
}

fn postgres_config(path: &Path, db: &pg::TestDb) {
    std::fs::write(
        path,
        format!(
            "store = \"postgres\"\npostgres_url = \"{}\"\npostgres_max_connections = 2\n",
            db.url()
        ),
    )
    .unwrap();
}

#[test]
fn cli_enrolls_into_the_database_with_a_postgres_config() {
    let db = pg::database();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("node.toml");
    postgres_config(&config, &db);

    // --config names the database; the migrations run if the database is new.
    let token = cli_enroll(&data, Some(&config), "hh-01", &[]).unwrap();
    let registry = PgDevices::open(&db.url(), 1).unwrap();
    assert_eq!(
        registry.authenticate(&token).unwrap(),
        Some(device("hh-01", "WH1"))
    );
    assert!(
        !data.join("devices/hh-01.json").exists(),
        "no device file with PostgreSQL"
    );

    let err = cli_enroll(&data, Some(&config), "hh-01", &[]).unwrap_err();
    assert!(err.contains("already enrolled"), "{err}");
    let rotated = cli_enroll(&data, Some(&config), "hh-01", &["--rotate"]).unwrap();
    assert_eq!(registry.check_token(&token).unwrap(), TokenCheck::Unknown);
    assert!(registry.authenticate(&rotated).unwrap().is_some());

    // Without --config, DATA/server.toml decides.
    std::fs::create_dir_all(&data).unwrap();
    postgres_config(&data.join("server.toml"), &db);
    let second = cli_enroll(&data, None, "hh-02", &[]).unwrap();
    assert!(registry.authenticate(&second).unwrap().is_some());
    assert!(!data.join("devices").exists());

    // A bad database URL is an error on stderr, nothing on stdout.
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        "store = \"postgres\"\npostgres_url = \"host=/nonexistent port=1\"\n",
    )
    .unwrap();
    let err = cli_enroll(&data, Some(&broken), "hh-03", &[]).unwrap_err();
    assert!(err.contains("enrolling device \"hh-03\""), "{err}");

    // Without either, the file registry, as before.
    let sled_data = dir.path().join("sled-data");
    let token = cli_enroll(&sled_data, None, "hh-01", &[]).unwrap();
    assert!(sled_data.join("devices/hh-01.json").exists());
    assert_eq!(registry.check_token(&token).unwrap(), TokenCheck::Unknown);
}

/// A `dockhand-server run` child process, config from `DATA/server.toml`.
struct Node {
    child: Child,
    addr: String,
    ca: PathBuf,
    admin: String,
}

impl Node {
    fn start(data: &Path) -> Node {
        let mut child = Command::new(BIN)
            .args(["run", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        let next = || {
            rx.recv_timeout(Duration::from_secs(60))
                .expect("the node prints its contract lines")
        };
        let listening = next();
        let addr = listening
            .strip_prefix("dockhand-server listening on https://")
            .unwrap_or_else(|| panic!("{listening}"))
            .to_string();
        let ca = PathBuf::from(next().strip_prefix("ca: ").unwrap());
        let admin = PathBuf::from(next().strip_prefix("admin token: ").unwrap());
        let admin = std::fs::read_to_string(admin).unwrap().trim().to_string();
        Node {
            child,
            addr,
            ca,
            admin,
        }
    }

    /// SIGTERM, then wait for a clean exit (the registry flushes last-seen state on the way out).
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "graceful exit: {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node did not stop within 10 s of SIGTERM");
    }

    /// One request over TLS trusting only this node's CA; returns (status, body). Blocking: the test itself
    /// uses the blocking PostgreSQL client, which must not run on an async worker.
    fn request(&self, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(self.request_async(method, path, token, body))
    }

    async fn request_async(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: &str,
    ) -> (u16, String) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let name = ServerName::try_from("localhost".to_string()).unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        let _ = tls.read_to_string(&mut response).await;
        let status = response
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for Node {
    /// A failed test must not leave its server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_nodes_share_device_credentials() {
    let db = pg::database();
    let dir = tempfile::tempdir().unwrap();
    let (data1, data2) = (dir.path().join("node1"), dir.path().join("node2"));
    for data in [&data1, &data2] {
        std::fs::create_dir_all(data).unwrap();
        postgres_config(&data.join("server.toml"), &db);
    }
    let node1 = Node::start(&data1);
    let node2 = Node::start(&data2);

    // Enrolled with the CLI (any data dir, the nodes' config): both nodes accept the token at once.
    let config = data1.join("server.toml");
    let token = cli_enroll(&dir.path().join("cli"), Some(&config), "hh-01", &[]).unwrap();
    for node in [&node1, &node2] {
        let (status, body) = node.request("GET", "/v1/sync/pull?limit=1", &token, "");
        assert_eq!(status, 200, "{body}");
    }
    // Enrolled through node 2's office API: node 1 accepts it and lists both.
    let (status, body) = node2.request(
        "POST",
        "/v1/devices",
        &node2.admin,
        r#"{"device_id":"hh-02","site":"WH1"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let enrolled: serde_json::Value = serde_json::from_str(&body).unwrap();
    let hh02 = enrolled["token"].as_str().unwrap();
    assert_eq!(node1.request("GET", "/v1/sync/pull", hh02, "").0, 200);
    let (status, body) = node1.request("GET", "/v1/devices", &node1.admin, "");
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["devices"][0]["device_id"], "hh-01");
    assert_eq!(list["devices"][1]["device_id"], "hh-02");
    assert!(
        list["devices"][1]["last_seen"].is_string(),
        "seen by node 1 itself: {body}"
    );
    let (status, body) = node1.request(
        "POST",
        "/v1/devices",
        &node1.admin,
        r#"{"device_id":"hh-02","site":"WH1"}"#,
    );
    assert_eq!(status, 409, "enrolled through the other node: {body}");

    // Revoked on node 1: node 2 refuses it with `revoked`.
    let (status, body) = node1.request("POST", "/v1/devices/hh-01/revoke", &node1.admin, "");
    assert_eq!(status, 200, "{body}");
    let (status, body) = node2.request("GET", "/v1/sync/pull", &token, "");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("revoked"), "{body}");

    // Rotated with the CLI: the new token works on node 2, the old one is unknown on node 1.
    let new = cli_enroll(
        &dir.path().join("cli"),
        Some(&config),
        "hh-01",
        &["--rotate"],
    )
    .unwrap();
    assert_eq!(node2.request("GET", "/v1/sync/pull", &new, "").0, 200);
    let (status, body) = node1.request("GET", "/v1/sync/pull", &token, "");
    assert_eq!(status, 401);
    assert!(body.contains("unauthorized"), "{body}");

    node1.stop();
    node2.stop();
    assert!(!data1.join("devices").join("hh-01.json").exists());
}
