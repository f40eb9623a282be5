//! RFID reader sources: own the transport, drive the protocol's sans-IO session, send tag reads to the gate.
//!
//! One OS thread per `[[sources]]` reader, because serialport and `std::net::TcpStream` are blocking I/O. The
//! thread is the only place that touches the device: it moves bytes between the transport and the session
//! ([`R2000Session`], [`LlrpSession`]), follows the session's call order (see their module docs) with the agent's
//! monotonic [`Clock`], and sends each tag read to the gate task ([`crate::gate`]) with `at` on that clock. It
//! tells the reader nothing about tags, so nothing reaches the reader before the gate's movements are durable.
//!
//! - `serial-rfid` (`protocol = "r2000"`): the serial port is opened with a 20 ms read timeout and a fresh
//!   session, which cycles the configured antennas. A port that fails (unplugged: EIO) is reopened every second,
//!   like a barcode scanner; a silent reader is reset by the session itself.
//! - `llrp`: the session decides when to connect and when to close (handshake failures, silence, backoff from 1 s
//!   doubling to 60 s); the thread opens a TCP connection to the reader's address (3 s connect timeout, 20 ms read
//!   timeout) when asked and drops it when told. At shutdown it closes the session gracefully for up to a second.
//!
//! Status (`sources[i]` in the status file): `connected` (the reader answers), `reads`, `reader_errors`,
//! `reconnects` and `last_error`.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dockhand_protocol::rfid::llrp::{self, status_code_name, Action, LlrpConfig, LlrpSession};
use dockhand_protocol::rfid::r2000::{self, R2000Session, SessionConfig};
use dockhand_protocol::rfid::TagRead;
use tokio::sync::mpsc;

use crate::config::SourceConfig;
use crate::gate::Clock;
use crate::source::SourceStatus;

/// How long a blocking read waits: the loop's tick, and the resolution of the sessions' timers.
const READ_TICK: Duration = Duration::from_millis(20);
/// How long a TCP connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a graceful LLRP close may take at shutdown.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What a reader thread needs besides its configuration.
pub struct ReaderLink {
    /// Tag reads to the gate task.
    pub reads: mpsc::Sender<TagRead>,
    /// Its `sources[i]` status.
    pub status: Arc<Mutex<SourceStatus>>,
    /// Set at shutdown.
    pub stop: Arc<AtomicBool>,
    /// The agent's monotonic clock.
    pub clock: Clock,
}

impl ReaderLink {
    fn set(&self, f: impl FnOnce(&mut SourceStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sends one read to the gate; false when the gate has stopped.
    fn send(&self, read: TagRead) -> bool {
        // An LLRP report can fold many sightings of a tag (TagSeenCount): count sightings, not reports.
        self.set(|s| s.reads += u64::from(read.count.max(1)));
        self.reads.blocking_send(read).is_ok()
    }
}

/// Starts the thread of an RFID source (`serial-rfid` or `llrp`; validated at load).
pub fn spawn(cfg: SourceConfig, link: ReaderLink) -> thread::JoinHandle<()> {
    let name = match cfg.address.as_deref() {
        Some(a) => format!("llrp {a}"),
        None => format!("rfid {}", cfg.path.display()),
    };
    thread::Builder::new()
        .name(name)
        .spawn(move || {
            if cfg.kind == crate::config::KIND_LLRP {
                llrp_loop(&cfg, &link);
            } else {
                r2000_loop(&cfg, &link);
            }
            link.set(|s| s.connected = false);
        })
        .expect("spawn RFID source thread")
}

fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let end = Instant::now() + total;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// serial-rfid, protocol r2000

fn r2000_loop(cfg: &SourceConfig, link: &ReaderLink) {
    let path = cfg.path.display().to_string();
    link.set(|s| s.path = path.clone());
    let session_cfg = SessionConfig {
        antennas: cfg
            .antennas
            .iter()
            .flatten()
            .filter_map(|&a| u8::try_from(a).ok())
            .collect(),
        ..SessionConfig::default()
    };
    let mut logged_down = false;
    let mut opened_before = false;
    while !link.stopped() {
        let port = serialport::new(path.as_str(), cfg.baud())
            .timeout(READ_TICK)
            .exclusive(false)
            .open();
        let port = match port {
            Ok(p) => p,
            Err(e) => {
                if !logged_down {
                    tracing::warn!(source = %path, error = %e, "RFID reader not available; retrying every second");
                    logged_down = true;
                }
                link.set(|s| {
                    s.connected = false;
                    s.last_error = Some(e.to_string());
                });
                sleep_unless(&link.stop, Duration::from_secs(1));
                continue;
            }
        };
        logged_down = false;
        if opened_before {
            link.set(|s| s.reconnects += 1);
        }
        opened_before = true;
        tracing::info!(source = %path, baud = cfg.baud(), "RFID reader port open");
        let session = match R2000Session::new(session_cfg.clone()) {
            Ok(s) => s,
            Err(e) => {
                // The config check makes this unreachable; say so rather than spin.
                tracing::error!(source = %path, error = %e, "RFID reader session not started");
                link.set(|s| s.last_error = Some(e.to_string()));
                return;
            }
        };
        match drive_r2000(port, session, link, &path) {
            Ok(()) => return, // shutdown, or the gate has stopped
            Err(e) => {
                tracing::warn!(source = %path, error = %e, "RFID reader port lost; reopening");
                link.set(|s| {
                    s.connected = false;
                    s.last_error = Some(e);
                });
                sleep_unless(&link.stop, Duration::from_millis(500));
            }
        }
    }
}

/// Runs one session on an open port: `Ok` at shutdown, `Err` when the port fails.
fn drive_r2000(
    mut port: Box<dyn serialport::SerialPort>,
    mut session: R2000Session,
    link: &ReaderLink,
    path: &str,
) -> Result<(), String> {
    let mut buf = [0u8; 4096];
    while !link.stopped() {
        let now = link.clock.now();
        if session.poll_timeout().is_some_and(|t| now >= t) {
            session.handle_timeout(now);
        }
        while let Some(bytes) = session.poll_transmit() {
            port.write_all(&bytes)
                .and_then(|()| port.flush())
                .map_err(|e| e.to_string())?;
        }
        while let Some(ev) = session.poll_event() {
            if !on_r2000_event(ev, link, path) {
                return Ok(());
            }
        }
        match port.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => session.handle_input(link.clock.now(), &buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Acts on one session event; false when the gate has stopped.
fn on_r2000_event(ev: r2000::Event, link: &ReaderLink, path: &str) -> bool {
    match ev {
        r2000::Event::Tag(read) => return link.send(read),
        r2000::Event::Connected => {
            tracing::info!(source = %path, "RFID reader answering");
            link.set(|s| {
                s.connected = true;
                s.last_error = None;
            });
        }
        r2000::Event::ReaderError { cmd, code, antenna } => {
            let at = antenna
                .map(|a| format!(" on antenna {a}"))
                .unwrap_or_default();
            let msg = format!("reader error {code} answering command {cmd:#04x}{at}");
            tracing::warn!(source = %path, "{msg}");
            link.set(|s| {
                s.reader_errors += 1;
                s.last_error = Some(msg);
            });
        }
        r2000::Event::AntennaSkipped { antenna, .. } => {
            let msg = format!("antenna {antenna} missing or refused; retried later");
            tracing::warn!(source = %path, "{msg}");
            link.set(|s| s.last_error = Some(msg));
        }
        r2000::Event::ReaderSilent { consecutive } => {
            if consecutive == 1 {
                tracing::warn!(source = %path, "RFID reader silent; asking again");
            }
            link.set(|s| {
                s.connected = false;
                s.last_error = Some(format!("reader silent ({consecutive} in a row)"));
            });
        }
        r2000::Event::ResetSent => {
            tracing::warn!(source = %path, "RFID reader reset after repeated silence");
            link.set(|s| s.reconnects += 1);
        }
        r2000::Event::RoundTimeout { antenna } => {
            tracing::debug!(source = %path, antenna, "inventory round timed out");
        }
        r2000::Event::RoundEnd { .. } => {}
    }
    true
}

// ---------------------------------------------------------------------------------------------------------------
// llrp

fn llrp_loop(cfg: &SourceConfig, link: &ReaderLink) {
    let address = cfg
        .address
        .as_deref()
        .and_then(crate::config::llrp_address)
        .unwrap_or_default();
    link.set(|s| s.path = address.clone());
    let mut session = LlrpSession::new(LlrpConfig {
        antennas: cfg.antennas.clone().unwrap_or_default(),
        ..LlrpConfig::default()
    });
    let mut conn: Option<TcpStream> = None;
    let mut connects = 0u64;
    let mut close_by: Option<Instant> = None;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let now = link.clock.now();
        if link.stopped() && close_by.is_none() {
            session.close(now);
            close_by = Some(Instant::now() + CLOSE_GRACE);
        }
        if session.is_shut_down() || close_by.is_some_and(|t| Instant::now() >= t) {
            break;
        }
        if session.poll_timeout().is_some_and(|t| now >= t) {
            session.handle_timeout(now);
        }
        while let Some(action) = session.poll_action() {
            match action {
                Action::Connect => {
                    connects += 1;
                    if connects > 1 {
                        link.set(|s| s.reconnects += 1);
                    }
                    match connect(&address) {
                        Ok(stream) => {
                            tracing::info!(reader = %address, "LLRP reader connected (TCP)");
                            conn = Some(stream);
                            session.connected(link.clock.now());
                        }
                        Err(e) => {
                            tracing::debug!(reader = %address, error = %e, "LLRP connect failed");
                            link.set(|s| s.last_error = Some(format!("connect: {e}")));
                            session.disconnected(link.clock.now());
                        }
                    }
                }
                Action::Close => conn = None,
            }
        }
        while let Some(bytes) = session.poll_transmit() {
            let Some(stream) = conn.as_mut() else { break };
            if let Err(e) = stream.write_all(&bytes) {
                link.set(|s| s.last_error = Some(format!("write: {e}")));
                conn = None;
                session.disconnected(link.clock.now());
            }
        }
        while let Some(ev) = session.poll_event() {
            if !on_llrp_event(ev, link, &address) {
                return;
            }
        }
        match conn.as_mut() {
            Some(stream) => match stream.read(&mut buf) {
                Ok(0) => {
                    link.set(|s| s.last_error = Some("reader closed the connection".into()));
                    conn = None;
                    session.disconnected(link.clock.now());
                }
                Ok(n) => session.handle_input(link.clock.now(), &buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    link.set(|s| s.last_error = Some(format!("read: {e}")));
                    conn = None;
                    session.disconnected(link.clock.now());
                }
            },
            None => thread::sleep(READ_TICK),
        }
    }
}

fn connect(address: &str) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                s.set_read_timeout(Some(READ_TICK))?;
                s.set_write_timeout(Some(CONNECT_TIMEOUT))?;
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("address resolves to nothing")))
}

/// Acts on one session event; false when the gate has stopped.
fn on_llrp_event(ev: llrp::Event, link: &ReaderLink, address: &str) -> bool {
    match ev {
        llrp::Event::Tag { read, .. } => return link.send(read),
        llrp::Event::Connected => {
            tracing::info!(reader = %address, "LLRP reader accepted the connection");
            link.set(|s| {
                s.connected = true;
                s.last_error = None;
            });
        }
        llrp::Event::Running => tracing::info!(reader = %address, "LLRP reader inventorying"),
        llrp::Event::ReaderError {
            msg_type,
            code,
            description,
        } => {
            let msg = format!(
                "reader refused {}: {} {description}",
                llrp::msg_type_name(msg_type),
                status_code_name(code)
            );
            tracing::warn!(reader = %address, "{msg}");
            link.set(|s| {
                s.reader_errors += 1;
                s.last_error = Some(msg);
            });
        }
        llrp::Event::BadMessage(e) => {
            tracing::warn!(reader = %address, error = %e, "malformed LLRP message skipped");
            link.set(|s| s.last_error = Some(format!("malformed message: {e}")));
        }
        llrp::Event::Disconnected { reason } => {
            if reason != llrp::DisconnectReason::ConnectFailed {
                tracing::warn!(reader = %address, ?reason, "LLRP reader disconnected; reconnecting");
            }
            link.set(|s| {
                s.connected = false;
                if reason != llrp::DisconnectReason::ConnectFailed {
                    s.last_error = Some(format!("disconnected: {reason:?}"));
                }
            });
        }
    }
    true
}
