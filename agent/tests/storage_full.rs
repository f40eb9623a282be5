//! Storage full, end to end: the real `dockhand-agent` binary with a tiny journal quota and a serial scanner played
//! on a pseudo-terminal. Refused scans get NAK and `storage_full` in the status file, a SIGKILL during the episode
//! loses no confirmed scan, and after the quota is raised scans are stored again with contiguous seqs.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dockhand_agent::journal::{Journal, DEFAULT_SEGMENT_BYTES};
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
                // Timeouts, and hang-ups while the agent (re)opens the port.
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        None
    }
}

fn item(lot: &str) -> String {
    format!("]C101{GTIN}10{lot}")
}

/// Writes the config (a serial scanner, a journal quota of `quota` bytes) and starts the agent.
fn start(data: &Path, scanner: &Path, quota: u64) -> Agent {
    let config = data.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "device_id = \"hh-full\"\nsite = \"WH1\"\ndata_dir = \"{}\"\n\n\
             [storage]\nmax_journal_bytes = {quota}\nmin_free_bytes = 0\n\n\
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

/// Movement (seq, lot) pairs in the journal.
fn journal(data: &Path) -> Vec<(u64, String)> {
    let (_, rec) = Journal::open(&data.join("journal"), DEFAULT_SEGMENT_BYTES).unwrap();
    rec.movements
        .into_iter()
        .map(|m| (m.seq, m.lot.unwrap_or_default()))
        .collect()
}

#[test]
fn full_journal_refuses_scans_survives_sigkill_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut scanner = Scanner::new();
    let agent = start(&data, &scanner.path, 4096);
    assert_eq!(scanner.scan("DH:RECEIVE"), Some(ACK));

    // Fill the quota: every scan confirmed until the first refusal.
    let mut stored = 0u64;
    loop {
        match scanner.scan(&item(&format!("A{}", stored + 1))) {
            Some(ACK) => stored += 1,
            Some(NAK) => break,
            other => panic!("feedback {other:?} after {stored} scans"),
        }
        assert!(stored < 60, "quota never reached");
    }
    assert!(stored >= 3, "{stored}");
    for lot in ["R1", "R2"] {
        assert_eq!(scanner.scan(&item(lot)), Some(NAK), "{lot}");
    }
    let mut agent = agent;
    let st = agent.wait_status("storage full", |s| s["storage_full"] == true);
    assert_eq!(st["durable_seq"], stored);
    let full = &st["storage"]["full"];
    assert_eq!(full["limit"], "quota");
    assert!(full["free_bytes"].as_u64().unwrap() < full["needed_bytes"].as_u64().unwrap());
    assert!(full["refused_scans"].as_u64().unwrap() >= 3, "{full}");
    assert!(
        full["message"]
            .as_str()
            .unwrap()
            .starts_with("storage full: scan not stored ("),
        "{full}"
    );

    // SIGKILL in the middle of the episode: every confirmed scan is there, nothing refused is.
    agent.kill9();
    let want: Vec<(u64, String)> = (1..=stored).map(|i| (i, format!("A{i}"))).collect();
    assert_eq!(journal(&data), want);

    // Restarted with the same quota: still full, still refusing, no panic.
    let mut agent = start(&data, &scanner.path, 4096);
    assert_eq!(agent.status().unwrap()["durable_seq"], stored);
    assert_eq!(scanner.scan(&item("R3")), Some(NAK));
    agent.wait_status("storage full", |s| s["storage_full"] == true);
    agent.stop();

    // Space returns (a larger quota): scans are stored again, right after the last confirmed seq.
    let mut agent = start(&data, &scanner.path, 1 << 20);
    for i in 1..=3 {
        assert_eq!(scanner.scan(&item(&format!("B{i}"))), Some(ACK), "B{i}");
    }
    let st = agent.wait_status("three more stored", |s| s["durable_seq"] == stored + 3);
    assert_eq!(st["storage_full"], false);
    agent.stop();
    let mut want = want;
    want.extend((1..=3).map(|i| (stored + i, format!("B{i}"))));
    assert_eq!(
        journal(&data),
        want,
        "contiguous seqs, no refused scan stored"
    );
}
