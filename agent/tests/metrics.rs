//! `GET /metrics` on the real `dockhand-agent` binary's loopback status endpoint: a serial scanner played on a
//! pseudo-terminal sends a prompt, a refused scan, an undecodable scan and receipts until a tiny journal quota
//! refuses them; the exposition must count each by its class and show the journal, backlog and storage-full
//! gauges the status file shows.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};

mod common;
use common::{Agent, WAIT};

const ACK: u8 = 0x06;
const NAK: u8 = 0x15;
const GTIN: &str = "09506000134352";

/// The scanner: the master side of a pty; the agent opens the slave.
struct Scanner {
    master: TTYPort,
    path: PathBuf,
}

impl Scanner {
    fn new() -> Scanner {
        let (mut master, slave) = TTYPort::pair().expect("pty pair");
        let path = PathBuf::from(slave.name().expect("slave name"));
        // Only the agent may hold the slave: two readers race for bytes.
        drop(slave);
        master
            .set_timeout(Duration::from_millis(50))
            .expect("timeout");
        Scanner { master, path }
    }

    /// Sends a scan and returns its feedback byte.
    fn scan(&mut self, data: &str) -> Option<u8> {
        self.master
            .write_all(format!("{data}\r\n").as_bytes())
            .expect("write scan");
        self.master.flush().expect("flush");
        let end = Instant::now() + WAIT;
        let mut byte = [0u8; 1];
        while Instant::now() < end {
            match self.master.read(&mut byte) {
                Ok(1) => return Some(byte[0]),
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        None
    }
}

fn start(data: &Path, scanner: &Path) -> Agent {
    let config = data.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "device_id = \"hh-metrics\"\nsite = \"WH1\"\ndata_dir = \"{}\"\n\n\
             [storage]\nmax_journal_bytes = 4096\nmin_free_bytes = 0\n\n\
             [[sources]]\nkind = \"serial-barcode\"\npath = \"{}\"\nterminator = \"crlf\"\n\
             good_read = \"\\u0006\"\nbad_read = \"\\u0015\"\n",
            data.display(),
            scanner.display()
        ),
    )
    .unwrap();
    let mut agent = Agent::spawn(&config, data, "error", None);
    agent.wait_status("the scanner connected", |s| {
        s["sources"][0]["connected"] == true
    });
    agent
}

/// `GET /metrics` over loopback: the status line's code, the `Content-Type` and the body.
fn scrape(data: &Path) -> (u16, String, String) {
    let addr = dockhand_agent::status::read_addr(data).expect("status.addr");
    let mut stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    (code, content_type, body.to_string())
}

/// The value of the sample `series` (name with labels, exactly as exposed).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn metrics_count_scans_by_class_and_show_storage() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut scanner = Scanner::new();
    let mut agent = start(&data, &scanner.path);

    // (scan, feedback): a workflow refusal, an undecodable barcode (wrong check digit), then the receiving prompt.
    let cases = [
        ("DH:PICK:NOPE", NAK),
        ("]C1019506000134353", NAK),
        ("DH:RECEIVE", ACK),
    ];
    for (scan, want) in cases {
        assert_eq!(scanner.scan(scan), Some(want), "{scan}");
    }
    // Receipts until the quota refuses one.
    let mut stored = 0u64;
    loop {
        match scanner.scan(&format!("]C101{GTIN}10A{}", stored + 1)) {
            Some(ACK) => stored += 1,
            Some(NAK) => break,
            other => panic!("feedback {other:?} after {stored} scans"),
        }
        assert!(stored < 60, "quota never reached");
    }
    let st = agent.wait_status("storage full", |s| s["storage_full"] == true);

    let (code, content_type, text) = scrape(&data);
    assert_eq!(code, 200, "{text}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let cases = [
        (
            "dockhand_agent_scans_total{result=\"accepted\"}",
            stored as f64,
        ),
        ("dockhand_agent_scans_total{result=\"prompt\"}", 1.0),
        (
            "dockhand_agent_scans_total{result=\"rejected\",reason=\"refused\"}",
            1.0,
        ),
        (
            "dockhand_agent_scans_total{result=\"rejected\",reason=\"undecodable\"}",
            1.0,
        ),
        (
            "dockhand_agent_scans_total{result=\"rejected\",reason=\"storage_full\"}",
            1.0,
        ),
        (
            "dockhand_agent_scans_total{result=\"rejected\",reason=\"not_stored\"}",
            0.0,
        ),
        ("dockhand_agent_storage_full", 1.0),
        ("dockhand_agent_journal_quota_bytes", 4096.0),
        // No server configured: everything recorded is backlog, and no exchange failed.
        (
            "dockhand_agent_sync_backlog_movements",
            st["backlog"].as_f64().unwrap(),
        ),
        (
            "dockhand_agent_sync_errors_total{op=\"push\",class=\"unavailable\"}",
            0.0,
        ),
    ];
    for (series, want) in cases {
        assert_eq!(sample(&text, series), want, "{series}");
    }
    let journal = sample(&text, "dockhand_agent_journal_size_bytes");
    assert!(journal > 0.0 && journal <= 4096.0, "{journal}");
    assert_eq!(journal, st["storage"]["journal_bytes"].as_f64().unwrap());
    assert!(text.contains("dockhand_agent_info{device=\"hh-metrics\",site=\"WH1\",version=\""));
    agent.stop();
}
