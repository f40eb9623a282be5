//! A dock gate end to end on one machine: the real `dockhand-agent` binary, offline, reading a minimal R2000 reader
//! played by this test on a pseudo-terminal. One pallet tag (SSCC-96) passes outside → inside: with no ASN on the
//! device it is received as an unknown unit into the gate's location. After a restart the same pass is a duplicate
//! (the gate's memory survived), and a pass inside → outside ships it. The audit ring comes out through
//! `dockhand-agent audit`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dockhand_agent::journal::{Journal, DEFAULT_SEGMENT_BYTES};
use dockhand_protocol::epc::Epc;
use dockhand_protocol::sync::{MovementKind, MovementSource};
use serialport::{SerialPort, TTYPort};

mod common;
use common::Agent;

const SSCC: &str = "106141411234567897";
/// How long the tag is in each antenna's field.
const PHASE: Duration = Duration::from_millis(700);

/// The reader side of the 0xA0 protocol: `A0 Len Addr Cmd Data.. Check`, Len = bytes after Len, Check = two's
/// complement of the sum of the bytes before it.
fn frame(cmd: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0xA0, (data.len() + 3) as u8, 0x01, cmd];
    f.extend_from_slice(data);
    let sum = f.iter().fold(0u8, |s, b| s.wrapping_add(*b));
    f.push(sum.wrapping_neg());
    f
}

/// A tag report: FreqAnt (low 2 bits: 0-based antenna), PC, EPC, RSSI raw = dBm + 129.
fn tag_frame(port: u8, epc: &[u8], dbm: i16) -> Vec<u8> {
    let mut data = vec![(7 << 2) | port];
    data.extend_from_slice(&(((epc.len() / 2) as u16) << 11).to_be_bytes());
    data.extend_from_slice(epc);
    data.push((dbm + 129) as u8);
    frame(0x89, &data)
}

/// End of an inventory round: Ant, ReadRate(2), TotalRead(4).
fn end_of_round(port: u8, total: u32) -> Vec<u8> {
    let mut data = vec![port, 0, 50];
    data.extend_from_slice(&total.to_be_bytes());
    frame(0x89, &data)
}

/// A pass being played: when it started and the 0-based antenna that sees the tag first.
#[derive(Clone, Copy)]
struct Pass {
    start: Instant,
    first_port: u8,
}

/// The reader: answers 0x74 with success and each 0x89 with the reads of the pass in progress (two frames on the
/// antenna whose field the tag is in, strongest in the middle of its phase) and an end-of-round frame.
struct Reader {
    path: PathBuf,
    pass: Arc<Mutex<Option<Pass>>>,
    tags_sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Reader {
    fn start(epc: Vec<u8>) -> Reader {
        let (mut master, slave) = TTYPort::pair().expect("pty pair");
        let path = PathBuf::from(slave.name().expect("pty name"));
        // Only the agent may hold the slave.
        drop(slave);
        master
            .set_timeout(Duration::from_millis(20))
            .expect("timeout");
        let pass: Arc<Mutex<Option<Pass>>> = Arc::default();
        let tags_sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (pass, tags_sent, stop) = (pass.clone(), tags_sent.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 256];
                let mut port = 0u8;
                while !stop.load(Ordering::Relaxed) {
                    match master.read(&mut chunk) {
                        Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                        // Timeouts, and EIO while no agent holds the slave.
                        _ => {
                            thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                    }
                    while let Some(start) = buf.iter().position(|&b| b == 0xA0) {
                        buf.drain(..start);
                        let Some(&len) = buf.get(1) else { break };
                        let total = usize::from(len) + 2;
                        if buf.len() < total {
                            break;
                        }
                        let f: Vec<u8> = buf.drain(..total).collect();
                        if f.iter().fold(0u8, |s, b| s.wrapping_add(*b)) != 0 {
                            continue;
                        }
                        let reply = match f[3] {
                            0x74 => {
                                port = f[4];
                                frame(0x74, &[0x10])
                            }
                            0x89 => {
                                let mut out = Vec::new();
                                let mut n = 0;
                                let playing = *pass.lock().unwrap();
                                if let Some(p) = playing {
                                    let t = p.start.elapsed();
                                    let (ant, into) = if t < PHASE {
                                        (Some(p.first_port), t)
                                    } else if t < 2 * PHASE {
                                        (Some(1 - p.first_port), t - PHASE)
                                    } else {
                                        (None, t)
                                    };
                                    if let Some(ant) = ant {
                                        // RSSI peaks mid-phase: -70 dBm at the edges, -50 in the middle.
                                        let mid = PHASE.as_millis() as i64 / 2;
                                        let off = (into.as_millis() as i64 - mid).abs();
                                        let dbm = (-50 - 20 * off / mid) as i16;
                                        for _ in 0..2 {
                                            out.extend(tag_frame(ant, &epc, dbm));
                                            n += 1;
                                        }
                                    }
                                }
                                tags_sent.fetch_add(n, Ordering::Relaxed);
                                out.extend(end_of_round(port, n as u32));
                                out
                            }
                            cmd => frame(cmd, &[0x11]),
                        };
                        if master
                            .write_all(&reply)
                            .and_then(|()| master.flush())
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            })
        };
        Reader {
            path,
            pass,
            tags_sent,
            stop,
            thread: Some(thread),
        }
    }

    /// Plays one pass from `first_port`'s field to the other's; returns once the tag has left both.
    fn play(&self, first_port: u8) {
        *self.pass.lock().unwrap() = Some(Pass {
            start: Instant::now(),
            first_port,
        });
        thread::sleep(2 * PHASE + Duration::from_millis(50));
        *self.pass.lock().unwrap() = None;
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes a gate config (the R2000 reader on `reader`, antennas 1 outside and 2 inside) and starts the agent.
fn start(dir: &Path, reader: &Path) -> Agent {
    let data = dir.join("data");
    let config = dir.join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "device_id = \"gate-3\"\nsite = \"WH1\"\ndata_dir = \"{}\"\n\n\
             [workflow]\nmode = \"gate\"\nreceiving_location = \"DOCK-3\"\n\n\
             [gate]\noutside_antennas = [1]\ninside_antennas = [2]\nquiet_ms = 1000\nmin_reads = 3\n\
             min_confidence = 0.5\n\n\
             [[sources]]\nkind = \"serial-rfid\"\nprotocol = \"r2000\"\npath = \"{}\"\nbaud = 115200\n\
             antennas = [1, 2]\n",
            data.display(),
            reader.display()
        ),
    )
    .unwrap();
    let mut agent = Agent::spawn(&config, &data, "warn", None);
    agent.wait_status("the reader answering", |s| {
        s["sources"][0]["connected"] == true
    });
    agent
}

fn gate(s: &serde_json::Value, counter: &str) -> u64 {
    s["gate"][counter].as_u64().unwrap_or(0)
}

#[test]
fn pallet_tag_through_an_r2000_gate_is_received_remembered_and_shipped() {
    let dir = tempfile::tempdir().unwrap();
    let epc = Epc::sscc96_from_sscc(SSCC, 7, 2).unwrap();
    let reader = Reader::start(epc.as_bytes().to_vec());

    // Inbound: outside antenna 1 (port 0) first, then inside antenna 2 (port 1).
    let mut agent = start(dir.path(), &reader.path);
    reader.play(0);
    let s = agent.wait_status("the pass judged", |s| {
        gate(s, "receipts") + gate(s, "unresolved") + gate(s, "not_stored") >= 1
    });
    assert_eq!(
        (gate(&s, "receipts"), gate(&s, "unknown_units")),
        (1, 1),
        "an unannounced pallet is received as an unknown unit: {:#}",
        s["gate"]
    );
    assert_eq!(s["durable_seq"], 1);
    assert_eq!(
        s["stock"],
        serde_json::json!([{"location": "DOCK-3", "gtin": "00000000000000", "lot": null, "qty": 1}])
    );
    assert!(gate(&s, "reads") >= 6, "{:#}", s["gate"]);
    assert!(
        s["sources"][0]["reads"].as_u64().unwrap() >= 6,
        "{:#}",
        s["sources"][0]
    );

    // The audit ring: every raw read, as JSON lines.
    let out = dir.path().join("audit.jsonl");
    let ok = Command::new(env!("CARGO_BIN_EXE_dockhand-agent"))
        .args(["audit", "--config"])
        .arg(&agent.config)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap()
        .success();
    assert!(ok, "dockhand-agent audit failed");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.len() as u64 >= gate(&s, "reads") && !lines.is_empty(),
        "{} audit lines for {} reads",
        lines.len(),
        gate(&s, "reads")
    );
    assert!(
        lines.iter().all(|l| l["epc"] == epc.hex()),
        "{:?}",
        lines[0]
    );
    assert!(lines.iter().any(|l| l["antenna"] == 1) && lines.iter().any(|l| l["antenna"] == 2));
    agent.stop();

    // The movement, durable in the journal.
    let (_, rec) = Journal::open(&dir.path().join("data/journal"), DEFAULT_SEGMENT_BYTES).unwrap();
    assert_eq!(rec.movements.len(), 1);
    let m = &rec.movements[0];
    assert_eq!(
        (
            m.seq,
            m.kind,
            m.gtin.as_str(),
            m.qty,
            m.to_location.as_deref(),
            m.sscc.as_deref(),
            m.reference.as_deref()
        ),
        (
            1,
            MovementKind::Receive,
            "00000000000000",
            1,
            Some("DOCK-3"),
            Some(SSCC),
            None
        )
    );
    let MovementSource::Epc {
        epc: hex,
        antenna,
        rssi,
    } = &m.source
    else {
        panic!("source {:?}", m.source);
    };
    assert_eq!(hex, &epc.hex());
    assert!(
        antenna.is_some() && rssi.is_some_and(|r| r >= -60),
        "{:?}",
        m.source
    );

    // After a restart the gate still knows the pallet: the same pass in is a duplicate; out, it ships.
    let mut agent = start(dir.path(), &reader.path);
    reader.play(0);
    let s = agent.wait_status("the duplicate", |s| gate(s, "passes") >= 1);
    assert_eq!(
        (gate(&s, "duplicates"), gate(&s, "receipts")),
        (1, 0),
        "{:#}",
        s["gate"]
    );
    reader.play(1);
    let s = agent.wait_status("the shipment", |s| {
        gate(s, "ships") + gate(s, "unresolved") + gate(s, "not_stored") >= 1
    });
    assert_eq!(gate(&s, "ships"), 1, "{:#}", s["gate"]);
    assert_eq!(s["durable_seq"], 2);
    assert_eq!(s["stock"], serde_json::json!([]));
    agent.stop();
    assert!(reader.tags_sent.load(Ordering::Relaxed) >= 18);
}
