//! Test harness: real `dockhand-server` and `dockhand-agent` processes, and simulated scanners on pseudo-terminals.
//!
//! Used by the end-to-end tests in `tests/tests/` and by the bench binary. Processes are started from the binaries
//! cargo built next to the test executable (`target/<profile>/`); if they are missing they are built first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::os::fd::{FromRawFd, IntoRawFd};

use serialport::{SerialPort, TTYPort};

pub mod browser;
pub mod faultproxy;
pub mod rfidsim;

/// One stock row: (location, gtin, lot, qty).
pub type StockLine = (String, String, Option<String>, i64);

/// Good-read byte the simulated scanners expect (ACK).
pub const ACK: u8 = 0x06;
/// Bad-read byte (NAK).
pub const NAK: u8 = 0x15;

/// The directory holding the workspace's binaries for this build profile.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of a workspace binary, building the binaries once if they are missing.
pub fn bin(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    let path = bin_dir().join(name);
    if !path.exists() {
        BUILD.call_once(|| {
            let release = bin_dir().ends_with("release");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args([
                "build",
                "-p",
                "dockhand-server",
                "-p",
                "dockhand-agent",
                "--bins",
            ]);
            if release {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build");
            assert!(status.success(), "building the binaries failed");
        });
    }
    path
}

/// A free TCP port on loopback (racy by nature, fine for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind port 0")
}

/// A running `dockhand-server` process.
pub struct ServerProc {
    child: Child,
    /// Its data directory.
    pub data: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProc {
    /// Starts `dockhand-server run` on `127.0.0.1:port` and waits until it listens.
    pub fn start(data: &Path, port: u16) -> Result<ServerProc> {
        ServerProc::start_with_config(data, port, None)
    }

    /// Like [`ServerProc::start`], with `--config FILE` when `config` is given (e.g. the PostgreSQL store).
    pub fn start_with_config(data: &Path, port: u16, config: Option<&Path>) -> Result<ServerProc> {
        let mut cmd = Command::new(bin("dockhand-server"));
        cmd.args(["run", "--data"])
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{port}")]);
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        let mut child = cmd
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn dockhand-server")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("dockhand-server listening on https://") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        // Generous: a soak runs several fleets at once on a 2-core machine, and a debug build's start (TLS
        // material, store open, PostgreSQL pool and migration check) has been seen to take over 30 s there.
        let addr = match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(a) => a.parse().context("listen address")?,
            Err(_) => {
                let _ = child.kill();
                bail!("dockhand-server did not start listening within 90 s");
            }
        };
        Ok(ServerProc {
            child,
            data: data.to_path_buf(),
            addr,
        })
    }

    /// Kills the server with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the server to stop (SIGTERM, a graceful shutdown) and waits for it; answers its exit status.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("run kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM failed: {status}");
        }
        Ok(self.child.wait()?)
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// An HTTPS client trusting this server's CA.
    pub fn client(&self) -> Result<reqwest::blocking::Client> {
        client_for(&self.data)
    }

    /// The admin token.
    pub fn admin_token(&self) -> Result<String> {
        Ok(std::fs::read_to_string(self.data.join("admin.token"))?
            .trim()
            .to_string())
    }

    /// `GET /v1/stock?site=SITE` as (location, gtin, lot, qty) rows.
    pub fn stock(&self, site: &str) -> Result<Vec<StockLine>> {
        let v: serde_json::Value = self
            .client()?
            .get(format!("{}/v1/stock?site={site}", self.url()))
            .bearer_auth(self.admin_token()?)
            .send()?
            .error_for_status()?
            .json()?;
        parse_stock(&v)
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Parses a `{"stock":[...]}` body.
pub fn parse_stock(v: &serde_json::Value) -> Result<Vec<StockLine>> {
    let rows = v["stock"]
        .as_array()
        .or_else(|| v.as_array())
        .context("stock array")?;
    rows.iter()
        .map(|r| {
            Ok((
                r["location"].as_str().context("location")?.to_string(),
                r["gtin"].as_str().context("gtin")?.to_string(),
                r["lot"].as_str().map(str::to_string),
                r["qty"].as_i64().context("qty")?,
            ))
        })
        .collect()
}

/// An HTTPS client trusting the CA in a server data directory.
pub fn client_for(server_data: &Path) -> Result<reqwest::blocking::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(server_data.join("ca.pem")).context("read ca.pem")?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)?;
    Ok(reqwest::blocking::Client::builder()
        .tls_certs_only(certs)
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// Runs `dockhand-server enroll` and returns the token it printed.
pub fn enroll(server_data: &Path, device: &str, site: &str) -> Result<String> {
    let out = Command::new(bin("dockhand-server"))
        .args(["enroll", "--data"])
        .arg(server_data)
        .args(["--device", device, "--site", site])
        .output()
        .context("run enroll")?;
    if !out.status.success() {
        bail!("enroll failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let token = String::from_utf8(out.stdout)?.trim().to_string();
    if token.is_empty() || token.contains('\n') {
        bail!("enroll printed {token:?}");
    }
    Ok(token)
}

/// A simulated serial barcode scanner: the master side of a pseudo-terminal.
///
/// The master is read by a background thread through a plain `File`, not through serialport: serialport's read
/// reports `POLLIN|POLLHUP` as an error, which would lose feedback the agent wrote just before it was killed.
pub struct Scanner {
    writer: File,
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    pending: std::collections::VecDeque<u8>,
    /// The slave path to give the agent.
    pub path: PathBuf,
}

impl Scanner {
    /// Makes a pty pair and keeps the master.
    pub fn new() -> Result<Scanner> {
        let (master, slave) = TTYPort::pair().context("pty pair")?;
        let path = PathBuf::from(slave.name().context("slave name")?);
        // Only the agent may hold the slave: two readers race for bytes.
        drop(slave);
        let fd = master.into_raw_fd();
        // SAFETY: `fd` was just released by `into_raw_fd`, so this File is its only owner.
        #[allow(unsafe_code)]
        let file = unsafe { File::from_raw_fd(fd) };
        let mut reader = file.try_clone()?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => std::thread::sleep(Duration::from_millis(5)),
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                    // EIO while no agent holds the slave: wait for the next one.
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        if tx.send(Vec::new()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(Scanner {
            writer: file,
            rx,
            pending: Default::default(),
            path,
        })
    }

    /// A second handle on the master, for writing from another thread while this one reads feedback.
    pub fn try_clone_master(&self) -> Result<File> {
        Ok(self.writer.try_clone()?)
    }

    /// Writes raw bytes to the agent.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()?;
        Ok(())
    }

    /// Sends one scan followed by CR LF.
    pub fn scan(&mut self, data: &str) -> Result<()> {
        let mut b = data.as_bytes().to_vec();
        b.extend_from_slice(b"\r\n");
        self.write(&b)
    }

    /// Reads one feedback byte, waiting at most `timeout`.
    pub fn feedback(&mut self, timeout: Duration) -> Option<u8> {
        self.feedback_n(1, timeout).first().copied()
    }

    /// Reads up to `n` feedback bytes, waiting at most `timeout` in total.
    pub fn feedback_n(&mut self, n: usize, timeout: Duration) -> Vec<u8> {
        let end = Instant::now() + timeout;
        while self.pending.len() < n {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.rx.recv_timeout(left) {
                Ok(bytes) => self.pending.extend(bytes),
                Err(_) => break,
            }
        }
        let k = n.min(self.pending.len());
        self.pending.drain(..k).collect()
    }

    /// Sends a scan and waits for its feedback byte.
    pub fn scan_and_wait(&mut self, data: &str, timeout: Duration) -> Result<Option<u8>> {
        self.scan(data)?;
        Ok(self.feedback(timeout))
    }

    /// Discards whatever the agent has not read yet (only while no agent holds the port).
    pub fn flush_unread(&self) -> Result<()> {
        let port = serialport::new(self.path.to_string_lossy(), 9600)
            .exclusive(false)
            .open()?;
        port.clear(serialport::ClearBuffer::Input)?;
        Ok(())
    }
}

/// Agent settings for a test.
pub struct AgentSpec<'a> {
    /// Device id.
    pub device: &'a str,
    /// Site.
    pub site: &'a str,
    /// Data directory.
    pub data: &'a Path,
    /// Server URL, CA file and token (None: offline).
    pub server: Option<(String, PathBuf, String)>,
    /// Scanner pty path.
    pub scanner: &'a Path,
    /// Backoff cap in ms.
    pub max_backoff_ms: u64,
}

impl AgentSpec<'_> {
    /// Writes the agent's TOML config into its data directory; returns its path.
    pub fn write_config(&self) -> Result<PathBuf> {
        self.write_config_with("")
    }

    /// Like [`AgentSpec::write_config`], with `extra` TOML (whole tables) appended.
    pub fn write_config_with(&self, extra: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(self.data)?;
        let mut toml = format!(
            "device_id = \"{}\"\nsite = \"{}\"\ndata_dir = \"{}\"\n\n",
            self.device,
            self.site,
            self.data.display()
        );
        if let Some((url, ca, token)) = &self.server {
            let token_file = self.data.join("device.token");
            std::fs::write(&token_file, token)?;
            toml.push_str(&format!(
                "[server]\nurl = \"{url}\"\nca_file = \"{}\"\ntoken_file = \"{}\"\nsync_interval_ms = 200\nmax_backoff_ms = {}\n\n",
                ca.display(),
                token_file.display(),
                self.max_backoff_ms
            ));
        }
        toml.push_str(&format!(
            "[workflow]\nmode = \"handheld\"\nreceiving_location = \"DOCK-1\"\n\n[[sources]]\nkind = \"serial-barcode\"\npath = \"{}\"\nbaud = 9600\nterminator = \"crlf\"\ngood_read = \"\\u0006\"\nbad_read = \"\\u0015\"\n",
            self.scanner.display()
        ));
        if !extra.is_empty() {
            toml.push('\n');
            toml.push_str(extra);
        }
        let path = self.data.join("agent.toml");
        std::fs::write(&path, toml)?;
        Ok(path)
    }
}

/// The RFID reader a gate agent reads.
pub enum GateReader {
    /// An R2000 module on a serial port (a simulator's pty).
    R2000(PathBuf),
    /// An LLRP reader at `host:port`.
    Llrp(String),
}

/// Settings of a dock-gate agent for a test: one RFID reader with antennas 1 (outside) and 2 (inside), no
/// barcode source.
pub struct GateSpec<'a> {
    /// Device id.
    pub device: &'a str,
    /// Site.
    pub site: &'a str,
    /// Data directory.
    pub data: &'a Path,
    /// Server URL, CA file and token.
    pub server: (String, PathBuf, String),
    /// The gate's location (`workflow.receiving_location`).
    pub location: &'a str,
    /// The reader.
    pub reader: GateReader,
    /// `gate.quiet_ms`: a pass departs after this long without a read.
    pub quiet_ms: u64,
    /// `gate.min_reads`.
    pub min_reads: u32,
    /// `gate.min_confidence`.
    pub min_confidence: f64,
}

impl GateSpec<'_> {
    /// Writes the agent's TOML config into its data directory; returns its path.
    pub fn write_config(&self) -> Result<PathBuf> {
        std::fs::create_dir_all(self.data)?;
        let (url, ca, token) = &self.server;
        let token_file = self.data.join("device.token");
        std::fs::write(&token_file, token)?;
        let source = match &self.reader {
            GateReader::R2000(path) => format!(
                "kind = \"serial-rfid\"\nprotocol = \"r2000\"\npath = \"{}\"\nbaud = 115200\n",
                path.display()
            ),
            GateReader::Llrp(address) => format!("kind = \"llrp\"\naddress = \"{address}\"\n"),
        };
        let toml = format!(
            "device_id = \"{}\"\nsite = \"{}\"\ndata_dir = \"{}\"\n\n\
             [server]\nurl = \"{url}\"\nca_file = \"{}\"\ntoken_file = \"{}\"\nsync_interval_ms = 200\nmax_backoff_ms = 500\n\n\
             [workflow]\nmode = \"gate\"\nreceiving_location = \"{}\"\n\n\
             [gate]\noutside_antennas = [1]\ninside_antennas = [2]\nquiet_ms = {}\nmin_reads = {}\nmin_confidence = {:?}\n\n\
             [[sources]]\n{source}antennas = [1, 2]\n",
            self.device,
            self.site,
            self.data.display(),
            ca.display(),
            token_file.display(),
            self.location,
            self.quiet_ms,
            self.min_reads,
            self.min_confidence,
        );
        let path = self.data.join("agent.toml");
        std::fs::write(&path, toml)?;
        Ok(path)
    }
}

/// A running `dockhand-agent` process.
pub struct AgentProc {
    child: Child,
    /// Its data directory.
    pub data: PathBuf,
}

impl AgentProc {
    /// Starts `dockhand-agent run --config CONFIG` and waits until its scanner is connected.
    pub fn start(config: &Path, data: &Path) -> Result<AgentProc> {
        AgentProc::start_with_env(config, data, &[])
    }

    /// Like [`AgentProc::start`], with extra environment variables (e.g. the simulated clock offset).
    pub fn start_with_env(config: &Path, data: &Path, env: &[(&str, String)]) -> Result<AgentProc> {
        // A status file from an earlier run would say "connected" too early.
        let _ = std::fs::remove_file(data.join("status.json"));
        let child = Command::new(bin("dockhand-agent"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn dockhand-agent")?;
        let mut agent = AgentProc {
            child,
            data: data.to_path_buf(),
        };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = agent.child.try_wait()? {
                bail!("dockhand-agent exited early: {st}");
            }
            if let Ok(s) = agent.status() {
                if s["sources"][0]["connected"] == true {
                    return Ok(agent);
                }
            }
            if Instant::now() > end {
                bail!("dockhand-agent did not connect its scanner within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The agent's status file.
    pub fn status(&self) -> Result<serde_json::Value> {
        Ok(dockhand_agent::read_status(&self.data)?)
    }

    /// Kills the agent with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the agent with SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) -> Result<()> {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?
            .success();
        if !ok {
            bail!("could not send SIGTERM to the agent");
        }
        let status = self.child.wait()?;
        if !status.success() {
            bail!("agent exited with {status}");
        }
        Ok(())
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `f` returns `Ok(true)`, polling every 100 ms, for at most `timeout`.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> Result<bool>) -> Result<()> {
    let end = Instant::now() + timeout;
    let mut last_err = None;
    while Instant::now() < end {
        match f() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    match last_err {
        Some(e) => Err(e.context("condition not met in time")),
        None => bail!("condition not met within {timeout:?}"),
    }
}

/// Builds a GS1-128 scan (AIM `]C1`) for a GTIN with lot: `01 gtin 10 lot`.
pub fn item_scan(gtin: &str, lot: &str) -> String {
    format!("]C101{gtin}10{lot}")
}

/// Valid GTIN-14s for tests (check digits verified by the decoder).
pub const GTINS: [&str; 5] = [
    "09506000134352",
    "05901234123457",
    "04006381333931",
    "00012345678905",
    "09501101530003",
];

/// GS1 mod-10 check digit for the digits of `body` (the number without its check digit).
pub fn gs1_check_digit(body: &str) -> char {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    char::from(b'0' + ((10 - sum % 10) % 10) as u8)
}

/// A valid SSCC-18 from a 17-digit body.
pub fn sscc(body17: &str) -> String {
    assert_eq!(body17.len(), 17, "an SSCC body has 17 digits");
    format!("{body17}{}", gs1_check_digit(body17))
}

/// Builds a GS1-128 pallet scan (AIM `]C1`): `00 sscc`.
pub fn pallet_scan(sscc: &str) -> String {
    format!("]C100{sscc}")
}

/// The office side of the server API (admin token), blocking.
pub struct Office {
    client: reqwest::blocking::Client,
    url: String,
    token: String,
}

impl Office {
    /// An office client for a running server.
    pub fn new(server: &ServerProc) -> Result<Office> {
        Ok(Office {
            client: server.client()?,
            url: server.url(),
            token: server.admin_token()?,
        })
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder) -> Result<serde_json::Value> {
        let resp = req.bearer_auth(&self.token).send()?;
        let status = resp.status();
        let text = resp.text()?;
        if !status.is_success() {
            bail!("office API answered {status}: {text}");
        }
        Ok(if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    /// `PUT` a JSON body to `path`.
    pub fn put(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        self.send(self.client.put(format!("{}{path}", self.url)).json(&body))
    }

    /// `POST` a JSON body (or none) to `path`.
    pub fn post(&self, path: &str, body: Option<serde_json::Value>) -> Result<serde_json::Value> {
        let req = self.client.post(format!("{}{path}", self.url));
        self.send(match body {
            Some(b) => req.json(&b),
            None => req,
        })
    }

    /// `GET` `path`.
    pub fn get(&self, path: &str) -> Result<serde_json::Value> {
        self.send(self.client.get(format!("{}{path}", self.url)))
    }

    /// Every movement of `site` in server commit order (follows the pages).
    pub fn movements(&self, site: &str) -> Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        let mut after = 0u64;
        loop {
            let page = self.get(&format!(
                "/v1/movements?site={site}&after={after}&limit=1000"
            ))?;
            out.extend(
                page["movements"]
                    .as_array()
                    .context("movements array")?
                    .iter()
                    .cloned(),
            );
            match page["next"].as_u64() {
                Some(n) => after = n,
                None => return Ok(out),
            }
        }
    }

    /// Open discrepancies of `site`.
    pub fn discrepancies(&self, site: &str) -> Result<Vec<serde_json::Value>> {
        let v = self.get(&format!("/v1/discrepancies?site={site}&status=open"))?;
        Ok(v["discrepancies"]
            .as_array()
            .context("discrepancies array")?
            .clone())
    }
}

/// A TCP forwarder between agents and the server that a test can cut and restore: the device's link.
///
/// While down, open connections are shut and new ones are accepted and closed at once (what a dead Wi-Fi
/// access point looks like from the device: connection errors). TLS passes through untouched.
pub struct LinkProxy {
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The port agents connect to.
    pub port: u16,
}

impl LinkProxy {
    /// Forwards `127.0.0.1:<new port>` to `127.0.0.1:target`.
    pub fn start(target: u16) -> Result<LinkProxy> {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let up = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(AtomicU64::new(0));
        let (up2, gen2) = (up.clone(), generation.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let my_gen = gen2.load(Ordering::SeqCst);
                for (mut from, mut to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ]
                .into_iter()
                .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
                {
                    let (up3, gen3) = (up2.clone(), gen2.clone());
                    let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        loop {
                            if !up3.load(Ordering::SeqCst) || gen3.load(Ordering::SeqCst) != my_gen
                            {
                                break;
                            }
                            match from.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => break,
                            }
                        }
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Ok(LinkProxy {
            up,
            generation,
            port,
        })
    }

    /// Cuts (`false`) or restores (`true`) the link.
    pub fn set_up(&self, up: bool) {
        use std::sync::atomic::Ordering;
        self.up.store(up, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The URL agents should use.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

/// The median of a bench's repeated runs; the mean of the two middle values for an even count. `v` must not be
/// empty.
pub fn bench_median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// How many runs a bench repeats: `DOCKHAND_BENCH_RUNS`, else `default`; a value that is not a whole number of at
/// least 1 is an error, not a silent default.
pub fn bench_runs(default: usize) -> Result<usize> {
    match std::env::var("DOCKHAND_BENCH_RUNS") {
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(e) => bail!("DOCKHAND_BENCH_RUNS: {e}"),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => bail!("DOCKHAND_BENCH_RUNS={v:?}: expected a whole number of runs, at least 1"),
        },
    }
}

/// The ingest benches' master data: sites `WH0..WH{sites-1}`, each with the location DOCK-1, and the five
/// [`GTINS`] as lot-tracked items, so every [`bench_receipt`] references known data.
pub fn bench_master_data(store: &dyn dockhand_server::Store, sites: usize) -> Result<()> {
    use dockhand_protocol::sync::{Item, Location};
    for s in 0..sites {
        let code = format!("WH{s}");
        store.put_site(&dockhand_server::store::Site {
            code: code.clone(),
            name: code.clone(),
            active: true,
        })?;
        store.put_locations(
            &code,
            &[Location {
                code: "DOCK-1".into(),
                gln: None,
                zone: None,
                active: true,
            }],
        )?;
    }
    let items: Vec<Item> = GTINS
        .iter()
        .map(|g| Item {
            gtin: (*g).into(),
            description: format!("item {g}"),
            unit: "EA".into(),
            lot_tracked: true,
            expiry_tracked: false,
            serial_tracked: false,
            active: true,
            unit_cost: None,
        })
        .collect();
    store.put_items(&items)?;
    Ok(())
}

/// The benches' standard receipt: device `device`'s movement `seq`, one unit of `GTINS[seq % 5]` with lot
/// `L{seq % 97}` (expiring 2027-12-31) into DOCK-1, scanned as GS1-128 by op1 at the Unix epoch plus `seq` seconds.
/// A bench that needs another shape changes fields with struct update syntax.
pub fn bench_receipt(device: &str, seq: u64) -> dockhand_protocol::sync::Movement {
    use dockhand_protocol::sync::{Movement, MovementKind, MovementSource};
    let gtin = GTINS[(seq % 5) as usize];
    Movement {
        device_id: device.into(),
        seq,
        at: time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(seq as i64),
        kind: MovementKind::Receive,
        gtin: gtin.into(),
        lot: Some(format!("L{}", seq % 97)),
        expiry: Some("2027-12-31".into()),
        serials: vec![],
        qty: 1,
        from_location: None,
        to_location: Some("DOCK-1".into()),
        sscc: None,
        reference: None,
        operator: Some("op1".into()),
        source: MovementSource::Barcode {
            raw: format!("01{gtin}\u{1d}10L{}", seq % 97),
            symbology: Some("]C1".into()),
        },
    }
}
