//! The `dockhand-server` binary end to end: `run` on a real socket with real TLS, and `enroll`.
//!
//! The server runs as a child process; tests read its stdout contract lines, connect with a rustls client
//! that trusts only the generated `ca.pem`, and stop it with SIGTERM.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_dockhand-server");

struct Server {
    child: Child,
    addr: String,
    ca: PathBuf,
    admin: PathBuf,
}

impl Server {
    fn start(data: &Path) -> Server {
        let mut child = Command::new(BIN)
            .args([
                "run",
                "--listen",
                "127.0.0.1:0",
                "--san",
                "dock.example",
                "--data",
            ])
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
                .expect("server prints its contract lines")
        };
        let listening = next();
        let addr = listening
            .strip_prefix("dockhand-server listening on https://")
            .unwrap_or_else(|| panic!("{listening}"))
            .to_string();
        let ca = PathBuf::from(next().strip_prefix("ca: ").unwrap());
        let admin = PathBuf::from(next().strip_prefix("admin token: ").unwrap());
        assert!(!addr.ends_with(":0"), "the real port is printed: {addr}");
        assert!(ca.is_absolute() && admin.is_absolute());
        Server {
            child,
            addr,
            ca,
            admin,
        }
    }

    /// SIGTERM, then wait for a clean exit.
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
        let _ = self.child.kill();
        panic!("server did not stop within 10 s of SIGTERM");
    }
}

/// A raw HTTP/1.1 request over TLS, trusting only `ca`; returns the whole response text.
async fn https(
    ca: &Path,
    addr: &str,
    server_name: &str,
    path: &str,
    token: Option<&str>,
) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the generated CA");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    // Servers may close without close_notify after `Connection: close`; what was read is what counts.
    let _ = tls.read_to_string(&mut response).await;
    response
}

#[tokio::test]
async fn run_serves_https_with_its_own_ca() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    assert_eq!(
        server.ca,
        std::fs::canonicalize(&data).unwrap().join("ca.pem")
    );
    for name in ["localhost", "127.0.0.1", "dock.example"] {
        let resp = https(&server.ca, &server.addr, name, "/v1/health", None).await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{name}: {resp}");
        assert!(resp.ends_with(r#"{"status":"ok"}"#), "{name}: {resp}");
    }
    let admin = std::fs::read_to_string(&server.admin).unwrap();
    assert_eq!(admin.trim().len(), 64);
    let resp = https(
        &server.ca,
        &server.addr,
        "localhost",
        "/v1/stock",
        Some(admin.trim()),
    )
    .await;
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.ends_with(r#"{"stock":[]}"#),
        "{resp}"
    );
    let resp = https(&server.ca, &server.addr, "localhost", "/v1/stock", None).await;
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");

    // Enrolling works while the server holds the sled lock.
    let token = enroll(&data, "hh-01", &[]).unwrap();
    assert_eq!(token.len(), 64);
    server.stop();

    for (file, mode) in [
        ("admin.token", 0o600),
        ("ca.key", 0o600),
        ("server.key", 0o600),
    ] {
        let got = std::fs::metadata(data.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(got, mode, "{file}");
    }
    // A restart reuses the CA and the admin token.
    let ca_before = std::fs::read(data.join("ca.pem")).unwrap();
    let server = Server::start(&data);
    assert_eq!(std::fs::read(&server.ca).unwrap(), ca_before);
    assert_eq!(std::fs::read_to_string(&server.admin).unwrap(), admin);
    let resp = https(&server.ca, &server.addr, "localhost", "/v1/health", None).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    server.stop();
}

/// Runs `enroll`; Ok(stdout) on success, Err(stderr) on failure (exit code 1).
fn enroll(data: &Path, device: &str, extra: &[&str]) -> Result<String, String> {
    let out = Command::new(BIN)
        .args(["enroll", "--device", device, "--site", "WH1", "--data"])
        .arg(data)
        .args(extra)
        .output()
        .unwrap();
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

#[test]
fn enroll_prints_the_token_once_and_stores_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let token = enroll(dir.path(), "hh-01", &[]).unwrap();
    assert!(
        token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{token}"
    );
    let file = std::fs::read_to_string(dir.path().join("devices/hh-01.json")).unwrap();
    assert!(!file.contains(&token), "only the hash is stored: {file}");
    let record: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(record["device_id"], "hh-01");
    assert_eq!(record["site"], "WH1");
    assert_eq!(
        record["token_sha256"],
        dockhand_server::devices::token_digest_hex(&token)
    );
    assert!(record["enrolled_at"].is_string());

    let err = enroll(dir.path(), "hh-01", &[]).unwrap_err();
    assert!(err.contains("already enrolled"), "{err}");
    let rotated = enroll(dir.path(), "hh-01", &["--rotate"]).unwrap();
    assert_ne!(rotated, token);
    let devices = dockhand_server::Devices::open(&dir.path().join("devices")).unwrap();
    assert!(
        devices.authenticate(&token).unwrap().is_none(),
        "--rotate revokes the old token"
    );
    assert_eq!(devices.authenticate(&rotated).unwrap().unwrap().id, "hh-01");

    let err = enroll(dir.path(), "bad/id", &[]).unwrap_err();
    assert!(err.contains("invalid device id"), "{err}");
}
