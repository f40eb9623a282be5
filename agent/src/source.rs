//! Scanner sources: move bytes between a device and the protocol decoders, nothing else.
//!
//! A serial source runs two OS threads, because serialport is blocking I/O:
//!
//! - the *reader* reads bytes, frames and decodes them (`dockhand_protocol`), and sends one [`ScanEvent`] per scan
//!   to the workflow, without waiting for the decision, so a burst of scans is pipelined into one group commit;
//! - the *feedback writer* receives the decisions in scan order and writes `good_read` only once the scan's records
//!   are durable, or `bad_read` for a rejection.
//!
//! A device that disappears (unplugged, read error) is reopened every second until shutdown.

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dockhand_protocol::decode::{decode_scan, DecodeOptions};
use dockhand_protocol::scan::{FrameEvent, Framer, FramerConfig, RawScan};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::config::SourceConfig;
use crate::workflow::{Decision, ScanInput};

/// Resolves once the scan's records are durable (`Ok`) or could not be stored (`Err`).
pub type Durable = oneshot::Receiver<Result<(), String>>;

/// A decision on its way back to the device.
#[derive(Debug)]
pub struct Feedback {
    /// The decision.
    pub decision: Decision,
    /// Present when the decision made records that must be durable before confirming.
    pub durable: Option<Durable>,
}

/// One scan from a source to the workflow.
#[derive(Debug)]
pub struct ScanEvent {
    /// The decoded scan, or why it could not be decoded.
    pub input: ScanInput,
    /// Where to send the decision.
    pub feedback: std_mpsc::Sender<Feedback>,
}

/// What the status file shows about a source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceStatus {
    /// Device path (an RFID reader's address for LLRP).
    pub path: String,
    /// Open right now (an RFID reader: answering).
    pub connected: bool,
    /// RFID readers: tag reads received.
    pub reads: u64,
    /// RFID readers: error answers from the reader.
    pub reader_errors: u64,
    /// RFID readers: connections (re)opened after a loss, and reader resets.
    pub reconnects: u64,
    /// The last device error.
    pub last_error: Option<String>,
    /// Scans confirmed with good-read feedback.
    pub confirmed: u64,
    /// Scans rejected.
    pub rejected: u64,
    /// The most recent decisions, newest last.
    pub recent: Vec<String>,
}

const RECENT: usize = 20;

/// Starts a serial barcode source. The threads end when `shutdown` is set.
pub fn spawn_serial(
    cfg: SourceConfig,
    events: mpsc::Sender<ScanEvent>,
    status: Arc<Mutex<SourceStatus>>,
    shutdown: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name(format!("serial {}", cfg.path.display()))
        .spawn(move || serial_loop(cfg, events, status, shutdown))
        .expect("spawn serial source thread")
}

fn set_status(status: &Mutex<SourceStatus>, f: impl FnOnce(&mut SourceStatus)) {
    if let Ok(mut s) = status.lock() {
        f(&mut s);
    }
}

fn serial_loop(
    cfg: SourceConfig,
    events: mpsc::Sender<ScanEvent>,
    status: Arc<Mutex<SourceStatus>>,
    shutdown: Arc<AtomicBool>,
) {
    let path = cfg.path.display().to_string();
    set_status(&status, |s| s.path = path.clone());
    let mut logged_down = false;
    while !shutdown.load(Ordering::Relaxed) {
        // Not exclusive (TIOCEXCL): that flag outlives a holder killed with SIGKILL and would lock the restarted
        // agent out of its own scanner. sled's lock on the data directory already keeps a second agent away.
        let port = serialport::new(path.as_str(), cfg.baud())
            .timeout(Duration::from_millis(20))
            .exclusive(false)
            .open();
        let port = match port {
            Ok(p) => p,
            Err(e) => {
                if !logged_down {
                    tracing::warn!(source = %path, error = %e, "scanner not available; retrying every second");
                    logged_down = true;
                }
                set_status(&status, |s| {
                    s.connected = false;
                    s.last_error = Some(e.to_string());
                });
                sleep_unless(&shutdown, Duration::from_secs(1));
                continue;
            }
        };
        logged_down = false;
        tracing::info!(source = %path, baud = cfg.baud(), "scanner connected");
        set_status(&status, |s| {
            s.connected = true;
            s.last_error = None;
        });
        let writer = match port.try_clone() {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(source = %path, error = %e, "cannot clone serial port for feedback");
                sleep_unless(&shutdown, Duration::from_secs(1));
                continue;
            }
        };
        let (fb_tx, fb_rx) = std_mpsc::channel::<Feedback>();
        let fb_thread = {
            let status = status.clone();
            let (good, bad) = feedback_bytes(&cfg);
            thread::spawn(move || feedback_loop(Some(writer), fb_rx, good, bad, status))
        };
        let err = read_port(&cfg, port, &events, &fb_tx, &shutdown);
        drop(fb_tx);
        // The writer ends after it has answered every scan already sent; wait so feedback stays in order
        // across a reconnect.
        let _ = fb_thread.join();
        if let Some(e) = err {
            tracing::warn!(source = %path, error = %e, "scanner disconnected; reopening");
            set_status(&status, |s| {
                s.connected = false;
                s.last_error = Some(e);
            });
            sleep_unless(&shutdown, Duration::from_millis(500));
        }
    }
    set_status(&status, |s| s.connected = false);
}

fn sleep_unless(shutdown: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(50);
    let end = Instant::now() + total;
    while !shutdown.load(Ordering::Relaxed) && Instant::now() < end {
        thread::sleep(step);
    }
}

/// Reads until shutdown (returns `None`) or a device error (returns it).
fn read_port(
    cfg: &SourceConfig,
    mut port: Box<dyn serialport::SerialPort>,
    events: &mpsc::Sender<ScanEvent>,
    feedback: &std_mpsc::Sender<Feedback>,
    shutdown: &AtomicBool,
) -> Option<String> {
    let mut framer = Framer::new(FramerConfig {
        terminator: cfg.terminator(),
        stx_etx: cfg.stx_etx,
        idle_timeout: Duration::from_millis(cfg.idle_timeout_ms),
        ..FramerConfig::default()
    });
    let mut buf = [0u8; 4096];
    while !shutdown.load(Ordering::Relaxed) {
        match port.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => framer.push(&buf[..n], Instant::now()),
            Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Some(e.to_string()),
        }
        while let Some(ev) = framer.poll(Instant::now()) {
            let input = match ev {
                FrameEvent::Frame(raw) => decode_input(raw, cfg),
                FrameEvent::Error(e) => ScanInput::Invalid {
                    reason: e.to_string(),
                },
            };
            let ev = ScanEvent {
                input,
                feedback: feedback.clone(),
            };
            if events.blocking_send(ev).is_err() {
                return None; // the workflow has stopped: shutting down
            }
        }
    }
    None
}

/// Decodes one framed scan into what the workflow receives; shared by the serial and USB sources.
pub fn decode_input(raw: RawScan, cfg: &SourceConfig) -> ScanInput {
    let opts = DecodeOptions {
        today: crate::clock::now().date(),
        fnc1_substitute: cfg.fnc1_byte(),
        assume_gs1: cfg.gs1,
        fnc1_text: cfg.fnc1_text(),
    };
    let text = String::from_utf8_lossy(&raw.data).into_owned();
    match decode_scan(raw.symbology.as_deref(), &raw.data, &opts) {
        Ok(scan) => ScanInput::Decoded {
            scan,
            raw: text,
            symbology: raw.symbology,
        },
        Err(e) => ScanInput::Invalid {
            reason: e.to_string(),
        },
    }
}

/// Scanner families whose serial host commands give good-read/bad-read feedback: `[[sources]] model`.
///
/// Each preset assumes the scanner is configured as described on its variant; without that setting the bytes are
/// ignored (or, for ACK/NAK, passed through) and the operator hears only the scanner's own decode beep. Explicit
/// `good_read`/`bad_read` keys win over the preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScannerModel {
    /// ACK (0x06) for good, NAK (0x15) for bad: the common convention, as in DESIGN §8's example.
    Generic,
    /// Honeywell Xenon/Granit/1900 family in *Host ACK* mode (Host ACK On). The scanner then waits, up to its
    /// timeout (10 s by default), for `ESC 7 ,` ("successful decode and communication to host") or `ESC 8 ,`
    /// (error tone) after every read; the comma is the command terminator the user guide requires. Scans are
    /// therefore serialized on the agent's durability, which is the point.
    Honeywell,
    /// Zebra (Symbol) scanners in standard RS-232 mode, which beep (one high beep) on a BEL (0x07) when *Beep on
    /// <BEL>* is enabled. There is no documented host byte for an error tone in this mode, so `bad_read` stays
    /// empty: a rejection is the absence of the confirming beep. The SSI protocol's BEEP command (opcode 0xE6) does
    /// have error tones, but SSI also packs scan data into packets that this serial source does not read.
    Zebra,
    /// Datalogic (PSC) RS-232 host commands: `B` sounds the good-read tone. `F` is the "not on file" indication,
    /// which on several models also disables the scanner until `E`, so the preset sends `F` then `E`. Whether a
    /// given model still sounds the full not-on-file tone when `E` follows at once is not documented; if it does
    /// not, set `bad_read` explicitly.
    Datalogic,
}

impl ScannerModel {
    /// The names accepted in the config, in the order of the variants.
    pub const NAMES: [&'static str; 4] = ["generic", "honeywell", "zebra", "datalogic"];

    /// The model named `name` in the config.
    pub fn by_name(name: &str) -> Option<ScannerModel> {
        match name {
            "generic" => Some(ScannerModel::Generic),
            "honeywell" => Some(ScannerModel::Honeywell),
            "zebra" => Some(ScannerModel::Zebra),
            "datalogic" => Some(ScannerModel::Datalogic),
            _ => None,
        }
    }

    /// Bytes that confirm a scan.
    pub fn good_read(self) -> &'static [u8] {
        match self {
            ScannerModel::Generic => b"\x06",
            ScannerModel::Honeywell => b"\x1b7,",
            ScannerModel::Zebra => b"\x07",
            ScannerModel::Datalogic => b"B",
        }
    }

    /// Bytes that announce a rejection.
    pub fn bad_read(self) -> &'static [u8] {
        match self {
            ScannerModel::Generic => b"\x15",
            ScannerModel::Honeywell => b"\x1b8,",
            ScannerModel::Zebra => b"",
            ScannerModel::Datalogic => b"FE",
        }
    }
}

/// The (good, bad) feedback bytes of a source: explicit `good_read`/`bad_read`, else the `model` preset, else none.
pub fn feedback_bytes(cfg: &SourceConfig) -> (Vec<u8>, Vec<u8>) {
    let model = cfg.model.as_deref().and_then(ScannerModel::by_name);
    let pick = |explicit: &Option<String>, preset: fn(ScannerModel) -> &'static [u8]| match explicit
    {
        Some(s) => s.clone().into_bytes(),
        None => model.map(preset).unwrap_or_default().to_vec(),
    };
    (
        pick(&cfg.good_read, ScannerModel::good_read),
        pick(&cfg.bad_read, ScannerModel::bad_read),
    )
}

/// Answers decisions in scan order: waits until each confirmed scan is durable, writes `good`/`bad` to `port`
/// when there is one (USB sources have none), and keeps the status counters. Ends when every sender is gone.
pub(crate) fn feedback_loop<W: Write>(
    mut port: Option<W>,
    rx: std_mpsc::Receiver<Feedback>,
    good: Vec<u8>,
    bad: Vec<u8>,
    status: Arc<Mutex<SourceStatus>>,
) {
    for fb in rx {
        let ok = match fb.durable {
            Some(durable) => match durable.blocking_recv() {
                Ok(Ok(())) => true,
                Ok(Err(e)) => {
                    // Storage-full refusals are logged once per episode by the writer, not once per scan.
                    if crate::writer::is_storage_refusal(&e) {
                        tracing::debug!(error = %e, "scan NOT stored; not confirming it");
                    } else {
                        tracing::error!(error = %e, "scan NOT stored; not confirming it");
                    }
                    false
                }
                Err(_) => false,
            },
            None => fb.decision.is_ok(),
        };
        let bytes = if ok { &good } else { &bad };
        if let Some(port) = port.as_mut().filter(|_| !bytes.is_empty()) {
            if let Err(e) = port.write_all(bytes).and_then(|()| port.flush()) {
                tracing::warn!(error = %e, "could not send feedback to the scanner");
            }
        }
        set_status(&status, |s| {
            if ok {
                s.confirmed += 1;
            } else {
                s.rejected += 1;
            }
            if s.recent.len() >= RECENT {
                s.recent.remove(0);
            }
            s.recent.push(fb.decision.text().to_string());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn source(extra: &str) -> SourceConfig {
        let text = format!(
            "device_id='hh-01'\nsite='WH1'\ndata_dir='/d'\n[[sources]]\nkind='serial-barcode'\npath='/dev/ttyACM0'\n{extra}"
        );
        let cfg =
            Config::parse(&text, Path::new("/etc/dh/agent.toml"), Path::new("/etc/dh")).unwrap();
        cfg.sources.into_iter().next().unwrap()
    }

    #[test]
    fn model_presets_and_explicit_overrides() {
        let cases: &[(&str, &[u8], &[u8])] = &[
            ("", b"", b""),
            ("model='generic'", b"\x06", b"\x15"),
            ("model='honeywell'", b"\x1b7,", b"\x1b8,"),
            ("model='zebra'", b"\x07", b""),
            ("model='datalogic'", b"B", b"FE"),
            ("good_read=\"\\u0006\"", b"\x06", b""),
            ("model='honeywell'\ngood_read='G'", b"G", b"\x1b8,"),
            ("model='datalogic'\nbad_read=\"34\\r\"", b"B", b"34\r"),
            (
                "model='zebra'\ngood_read=''\nbad_read=\"\\u0007\\u0007\"",
                b"",
                b"\x07\x07",
            ),
        ];
        for (extra, good, bad) in cases {
            let (g, b) = feedback_bytes(&source(extra));
            assert_eq!((g.as_slice(), b.as_slice()), (*good, *bad), "{extra}");
        }
        for name in ScannerModel::NAMES {
            assert!(ScannerModel::by_name(name).is_some(), "{name}");
        }
    }
}
