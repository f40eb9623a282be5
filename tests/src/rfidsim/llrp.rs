//! A simulated LLRP 1.0.1 reader on a TCP port (the reader side of the protocol).
//!
//! Built from the published layouts, not from `protocol::rfid::llrp`: a simulator sharing the codec would only test
//! it against itself. Sources: the EPCglobal LLRP 1.0.1 standard (section numbers as sllurp cites them),
//! cross-checked with sllurp (`llrp_proto.py`, `llrp_decoder.py`: header `!HII`, TLV header `!HH`, TV formats)
//! and the message and parameter tables of bluefootedtiming/Runway (`messageConstants.js`, `parameterConstants.js`).
//!
//! ```text
//! message   Rsvd(3)=0 Ver(3)=1 Type(10) | Length u32 (whole message) | ID u32 | body
//! TLV param Rsvd(6)=0 Type(10) | Length u16 (with this header) | fields | sub-parameters
//! TV param  1 Type(7) | fixed-size value (types 1..127 only)
//!
//! reader → client on accept   READER_EVENT_NOTIFICATION (63)
//!                               ReaderEventNotificationData (246)
//!                                 UTCTimestamp (128): Microseconds u64
//!                                 ConnectionAttemptEvent (256): Status u16 (0 success, 2 a client connection exists)
//! client → reader → response  type + 10 (CLOSE_CONNECTION 14 → 4), same message ID, body LLRPStatus (287):
//!                               StatusCode u16, ErrorDescription (u16 byte count + UTF-8)
//!   GET_READER_CAPABILITIES 1, GET_READER_CONFIG 2, SET_READER_CONFIG 3, CLOSE_CONNECTION 14,
//!   ADD_ROSPEC 20, DELETE_ROSPEC 21, START_ROSPEC 22, STOP_ROSPEC 23, ENABLE_ROSPEC 24, DISABLE_ROSPEC 25
//!   ENABLE_EVENTS_AND_REPORTS 64: no response; KEEPALIVE_ACK 72 answers our KEEPALIVE 62
//!   anything else: ERROR_MESSAGE (100) with status 109 (M_UnsupportedMessage)
//! reports                     RO_ACCESS_REPORT (61): TagReportData (240) ×n
//!                               EPC-96 (TV 13, 12 bytes) or EPCData (241: bit count u16 + bytes)
//!                               ROSpecID (TV 9, u32), AntennaID (TV 1, u16), PeakRSSI (TV 6, i8),
//!                               FirstSeenTimestampUTC (TV 2, u64 µs), LastSeenTimestampUTC (TV 4, u64 µs),
//!                               TagSeenCount (TV 8, u16)
//! keepalive                   KeepaliveSpec (220) in SET_READER_CONFIG: TriggerType u8 (1 periodic), Interval u32 ms
//! ```
//!
//! Behaviour:
//! - ROSpecs are reader state: ADD leaves one disabled, ENABLE makes it inactive (active at once when its
//!   ROSpecStartTrigger is Immediate), START makes it active, STOP inactive, DISABLE disabled, DELETE (0 = all)
//!   removes. They outlive a connection, as on a real reader.
//! - The script's clock starts with the first active ROSpec (or [`LlrpSim::start_clock`]). Reads fall due on that
//!   clock and are reported every `report_every_ms` while a client is connected and an ROSpec is active;
//!   otherwise they are lost: a real reader with nobody to report to (HoldEventsAndReportsUponReconnect off, the
//!   default) does not keep them. Repeated reads of one tag on one antenna within a report become one
//!   TagReportData with TagSeenCount = n, PeakRSSI = the maximum, first/last seen timestamps.
//! - One client at a time: a second connection gets ConnectionAttemptEvent status 2 and is closed, unless
//!   the first one is already dead.
//! - Choices where the standard leaves room: an unknown ROSpecID gets status 101 (M_FieldError);
//!   GET_READER_CAPABILITIES answers only GeneralDeviceCapabilities (137, with its required sub-parameters).

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::script::{GroundTruth, Read, Script};

/// Message types (Runway messageConstants.js, sllurp Message_struct).
pub mod msg {
    /// Client asks for capabilities.
    pub const GET_READER_CAPABILITIES: u16 = 1;
    /// Client asks for configuration.
    pub const GET_READER_CONFIG: u16 = 2;
    /// Client sets configuration.
    pub const SET_READER_CONFIG: u16 = 3;
    /// Reader's answer to CLOSE_CONNECTION.
    pub const CLOSE_CONNECTION_RESPONSE: u16 = 4;
    /// Reader's answer to GET_READER_CAPABILITIES.
    pub const GET_READER_CAPABILITIES_RESPONSE: u16 = 11;
    /// Reader's answer to GET_READER_CONFIG.
    pub const GET_READER_CONFIG_RESPONSE: u16 = 12;
    /// Reader's answer to SET_READER_CONFIG.
    pub const SET_READER_CONFIG_RESPONSE: u16 = 13;
    /// Client closes the connection.
    pub const CLOSE_CONNECTION: u16 = 14;
    /// Add an ROSpec.
    pub const ADD_ROSPEC: u16 = 20;
    /// Delete an ROSpec (0 = all).
    pub const DELETE_ROSPEC: u16 = 21;
    /// Start an ROSpec.
    pub const START_ROSPEC: u16 = 22;
    /// Stop an ROSpec.
    pub const STOP_ROSPEC: u16 = 23;
    /// Enable an ROSpec.
    pub const ENABLE_ROSPEC: u16 = 24;
    /// Disable an ROSpec.
    pub const DISABLE_ROSPEC: u16 = 25;
    /// Tag reports.
    pub const RO_ACCESS_REPORT: u16 = 61;
    /// Reader's keepalive.
    pub const KEEPALIVE: u16 = 62;
    /// Reader events (connection attempt, …).
    pub const READER_EVENT_NOTIFICATION: u16 = 63;
    /// Client releases held events and reports (no response).
    pub const ENABLE_EVENTS_AND_REPORTS: u16 = 64;
    /// Client's answer to KEEPALIVE.
    pub const KEEPALIVE_ACK: u16 = 72;
    /// Reader's answer to a message it does not support.
    pub const ERROR_MESSAGE: u16 = 100;
}

/// Parameter types (Runway parameterConstants.js, sllurp llrp_decoder.py TVE_PARAM_FORMATS).
pub mod param {
    /// TV: antenna id, u16.
    pub const ANTENNA_ID: u8 = 1;
    /// TV: first seen, µs since the Unix epoch, u64.
    pub const FIRST_SEEN_TIMESTAMP_UTC: u8 = 2;
    /// TV: last seen, µs since the Unix epoch, u64.
    pub const LAST_SEEN_TIMESTAMP_UTC: u8 = 4;
    /// TV: peak RSSI in dBm, i8.
    pub const PEAK_RSSI: u8 = 6;
    /// TV: times seen, u16.
    pub const TAG_SEEN_COUNT: u8 = 8;
    /// TV: ROSpec id, u32.
    pub const ROSPEC_ID: u8 = 9;
    /// TV: a 96-bit EPC.
    pub const EPC_96: u8 = 13;
    /// TLV: µs since the Unix epoch.
    pub const UTC_TIMESTAMP: u16 = 128;
    /// TLV: general device capabilities.
    pub const GENERAL_DEVICE_CAPABILITIES: u16 = 137;
    /// TLV: receive sensitivity table entry.
    pub const RECEIVE_SENSITIVITY_TABLE_ENTRY: u16 = 139;
    /// TLV: air protocols of one antenna.
    pub const PER_ANTENNA_AIR_PROTOCOL: u16 = 140;
    /// TLV: GPIO capabilities.
    pub const GPIO_CAPABILITIES: u16 = 141;
    /// TLV: an ROSpec.
    pub const ROSPEC: u16 = 177;
    /// TLV: ROSpec boundary.
    pub const RO_BOUNDARY_SPEC: u16 = 178;
    /// TLV: ROSpec start trigger.
    pub const ROSPEC_START_TRIGGER: u16 = 179;
    /// TLV: keepalive configuration.
    pub const KEEPALIVE_SPEC: u16 = 220;
    /// TLV: one tag report.
    pub const TAG_REPORT_DATA: u16 = 240;
    /// TLV: an EPC of any length.
    pub const EPC_DATA: u16 = 241;
    /// TLV: reader event data.
    pub const READER_EVENT_NOTIFICATION_DATA: u16 = 246;
    /// TLV: connection attempt event.
    pub const CONNECTION_ATTEMPT_EVENT: u16 = 256;
    /// TLV: status of a response.
    pub const LLRP_STATUS: u16 = 287;
}

/// LLRPStatus codes used (§16.2.8.1 / sllurp Error_Name2Type).
pub mod code {
    /// Success.
    pub const SUCCESS: u16 = 0;
    /// M_FieldError.
    pub const FIELD_ERROR: u16 = 101;
    /// M_UnsupportedMessage.
    pub const UNSUPPORTED_MESSAGE: u16 = 109;
}

/// Protocol version 1 (LLRP 1.0.1).
pub const VERSION: u8 = 1;
/// Size of a message header.
pub const HEADER_LEN: usize = 10;

/// Builds a message: header (version 1) + body.
pub fn message(kind: u16, id: u32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER_LEN + body.len());
    m.extend_from_slice(&((u16::from(VERSION) << 10) | (kind & 0x3FF)).to_be_bytes());
    m.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_be_bytes());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// Builds a TLV parameter.
pub fn tlv(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(4 + body.len());
    p.extend_from_slice(&(kind & 0x3FF).to_be_bytes());
    p.extend_from_slice(&((4 + body.len()) as u16).to_be_bytes());
    p.extend_from_slice(body);
    p
}

/// Builds a TV parameter.
pub fn tv(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(1 + value.len());
    p.push(0x80 | (kind & 0x7F));
    p.extend_from_slice(value);
    p
}

/// LLRPStatus with a status code and description.
pub fn llrp_status(status: u16, description: &str) -> Vec<u8> {
    let mut b = status.to_be_bytes().to_vec();
    b.extend_from_slice(&(description.len() as u16).to_be_bytes());
    b.extend_from_slice(description.as_bytes());
    tlv(param::LLRP_STATUS, &b)
}

/// A message split into its header fields and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Version from the header.
    pub version: u8,
    /// Message type.
    pub kind: u16,
    /// Message ID.
    pub id: u32,
    /// Bytes after the header.
    pub body: Vec<u8>,
}

/// Biggest message accepted (a guard against a garbage length).
const MAX_MESSAGE: usize = 1 << 20;

/// Takes one message off the front of `buf`: `Ok(None)` = incomplete, `Err` = impossible length.
pub fn take_message(buf: &mut Vec<u8>) -> Result<Option<Message>, String> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let word = u16::from_be_bytes([buf[0], buf[1]]);
    let len = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize;
    if !(HEADER_LEN..=MAX_MESSAGE).contains(&len) {
        return Err(format!("message length {len}"));
    }
    if buf.len() < len {
        return Ok(None);
    }
    let raw: Vec<u8> = buf.drain(..len).collect();
    Ok(Some(Message {
        version: ((word >> 10) & 7) as u8,
        kind: word & 0x3FF,
        id: u32::from_be_bytes([raw[6], raw[7], raw[8], raw[9]]),
        body: raw[HEADER_LEN..].to_vec(),
    }))
}

/// The TLV parameters in `bytes` as (type, body); stops at the first TV parameter or a malformed one.
pub fn tlvs(mut bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while bytes.len() >= 4 && bytes[0] & 0x80 == 0 {
        let kind = u16::from_be_bytes([bytes[0], bytes[1]]) & 0x3FF;
        let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if len < 4 || len > bytes.len() {
            break;
        }
        out.push((kind, &bytes[4..len]));
        bytes = &bytes[len..];
    }
    out
}

/// Microseconds since the Unix epoch.
fn utc_us(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// READER_EVENT_NOTIFICATION with a ConnectionAttemptEvent.
pub fn connection_attempt(id: u32, status: u16, now: SystemTime) -> Vec<u8> {
    let data = [
        tlv(param::UTC_TIMESTAMP, &utc_us(now).to_be_bytes()),
        tlv(param::CONNECTION_ATTEMPT_EVENT, &status.to_be_bytes()),
    ]
    .concat();
    message(
        msg::READER_EVENT_NOTIFICATION,
        id,
        &tlv(param::READER_EVENT_NOTIFICATION_DATA, &data),
    )
}

/// One tag's entry in a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagReport {
    /// The EPC.
    pub epc: Vec<u8>,
    /// Antenna (1-based).
    pub antenna: u16,
    /// Strongest read.
    pub peak_rssi: i8,
    /// First read, µs since the Unix epoch.
    pub first_seen_us: u64,
    /// Last read, µs since the Unix epoch.
    pub last_seen_us: u64,
    /// Reads merged into this entry.
    pub seen_count: u16,
}

/// A TagReportData parameter.
pub fn tag_report_data(t: &TagReport, rospec_id: u32) -> Vec<u8> {
    let epc = if t.epc.len() == 12 {
        tv(param::EPC_96, &t.epc)
    } else {
        let mut b = ((t.epc.len() * 8) as u16).to_be_bytes().to_vec();
        b.extend_from_slice(&t.epc);
        tlv(param::EPC_DATA, &b)
    };
    let body = [
        epc,
        tv(param::ROSPEC_ID, &rospec_id.to_be_bytes()),
        tv(param::ANTENNA_ID, &t.antenna.to_be_bytes()),
        tv(param::PEAK_RSSI, &t.peak_rssi.to_be_bytes()),
        tv(
            param::FIRST_SEEN_TIMESTAMP_UTC,
            &t.first_seen_us.to_be_bytes(),
        ),
        tv(
            param::LAST_SEEN_TIMESTAMP_UTC,
            &t.last_seen_us.to_be_bytes(),
        ),
        tv(param::TAG_SEEN_COUNT, &t.seen_count.to_be_bytes()),
    ]
    .concat();
    tlv(param::TAG_REPORT_DATA, &body)
}

/// Knobs of the simulated reader.
#[derive(Clone, Debug)]
pub struct LlrpOptions {
    /// KEEPALIVE period until a SET_READER_CONFIG sets one (0 = none).
    pub keepalive_ms: u64,
    /// How often due reads are reported.
    pub report_every_ms: u64,
    /// TagReportData per RO_ACCESS_REPORT at most.
    pub max_tags_per_report: usize,
    /// Antennas reported by GET_READER_CAPABILITIES.
    pub antennas: u16,
}

impl Default for LlrpOptions {
    fn default() -> LlrpOptions {
        LlrpOptions {
            keepalive_ms: 0,
            report_every_ms: 20,
            max_tags_per_report: 16,
            antennas: 4,
        }
    }
}

/// Counters of a simulated reader.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LlrpStats {
    /// Connections taken as the client.
    pub connections_accepted: u64,
    /// Connections refused because a client was connected.
    pub connections_rejected: u64,
    /// Connections the simulator dropped ([`LlrpSim::disconnect_now`]).
    pub disconnects: u64,
    /// Messages received, by type.
    pub received: BTreeMap<u16, u64>,
    /// RO_ACCESS_REPORT messages sent.
    pub reports_sent: u64,
    /// TagReportData parameters sent.
    pub tag_reports_sent: u64,
    /// Reads reported (the sum of TagSeenCount).
    pub reads_delivered: u64,
    /// Reads due while nobody could receive them.
    pub reads_lost: u64,
    /// KEEPALIVE messages sent.
    pub keepalives_sent: u64,
    /// KEEPALIVE_ACKs carrying the ID of a KEEPALIVE we sent.
    pub keepalive_acks: u64,
    /// KEEPALIVE_ACKs with an ID we never sent.
    pub keepalive_acks_unmatched: u64,
    /// Messages dropped while silent.
    pub ignored_while_silent: u64,
    /// The keepalive period in force (ms, 0 = none).
    pub keepalive_ms: u64,
    /// Whether an ROSpec is active.
    pub rospec_active: bool,
}

impl LlrpStats {
    /// How many messages of `kind` were received.
    pub fn count(&self, kind: u16) -> u64 {
        self.received.get(&kind).copied().unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RoState {
    Disabled,
    Inactive,
    Active,
}

struct RoSpec {
    state: RoState,
    immediate: bool,
}

struct Conn {
    serial: u64,
    stream: TcpStream,
    next_keepalive: Instant,
}

struct State {
    options: LlrpOptions,
    conn: Option<Conn>,
    next_serial: u64,
    rospecs: BTreeMap<u32, RoSpec>,
    clock: Option<(Instant, SystemTime)>,
    silent_until: Option<Instant>,
    reads: std::collections::VecDeque<Read>,
    next_id: u32,
    keepalive_ids: Vec<u32>,
    stats: LlrpStats,
}

impl State {
    fn next_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }

    fn silent(&self) -> bool {
        self.silent_until.is_some_and(|t| Instant::now() < t)
    }

    fn active_rospec(&self) -> Option<u32> {
        self.rospecs
            .iter()
            .find(|(_, r)| r.state == RoState::Active)
            .map(|(id, _)| *id)
    }

    /// Writes to the client; a failed write ends the connection.
    fn write(&mut self, bytes: &[u8]) {
        let Some(conn) = &mut self.conn else { return };
        if conn.stream.write_all(bytes).is_err() {
            let _ = conn.stream.shutdown(Shutdown::Both);
            self.conn = None;
        }
    }

    fn set_state(&mut self, id: u32, to: RoState) -> bool {
        let Some(r) = self.rospecs.get_mut(&id) else {
            return false;
        };
        r.state = to;
        if to == RoState::Active && self.clock.is_none() {
            self.clock = Some((Instant::now(), SystemTime::now()));
        }
        true
    }
}

struct Shared {
    stop: AtomicBool,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("llrp sim state")
    }
}

/// A running simulated LLRP reader. Dropping it stops the simulation.
pub struct LlrpSim {
    port: u16,
    shared: Arc<Shared>,
    truth: GroundTruth,
}

impl LlrpSim {
    /// Listens on 127.0.0.1 (a free port) and plays `script`; `keepalive_ms` until the client configures one.
    pub fn start(script: &Script, keepalive_ms: u64) -> Result<LlrpSim> {
        LlrpSim::start_with(
            script,
            LlrpOptions {
                keepalive_ms,
                ..LlrpOptions::default()
            },
        )
    }

    /// Like [`LlrpSim::start`] with every option.
    pub fn start_with(script: &Script, options: LlrpOptions) -> Result<LlrpSim> {
        let listener = TcpListener::bind("127.0.0.1:0").context("bind LLRP sim")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let schedule = script.schedule();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            state: Mutex::new(State {
                stats: LlrpStats {
                    keepalive_ms: options.keepalive_ms,
                    ..LlrpStats::default()
                },
                options,
                conn: None,
                next_serial: 0,
                rospecs: BTreeMap::new(),
                clock: None,
                silent_until: None,
                reads: schedule.reads.into(),
                next_id: 0,
                keepalive_ids: Vec::new(),
            }),
        });
        let s = shared.clone();
        thread::spawn(move || accept_loop(&s, &listener));
        let s = shared.clone();
        thread::spawn(move || pump_loop(&s));
        Ok(LlrpSim {
            port,
            shared,
            truth: schedule.truth,
        })
    }

    /// The port the reader listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the script really contains.
    pub fn truth(&self) -> &GroundTruth {
        &self.truth
    }

    /// Starts the script's clock now (else the first active ROSpec starts it).
    pub fn start_clock(&self) {
        let mut st = self.shared.lock();
        if st.clock.is_none() {
            st.clock = Some((Instant::now(), SystemTime::now()));
        }
    }

    /// Drops the client's TCP connection now, mid-stream. Reads due until a client is back are lost.
    pub fn disconnect_now(&self) {
        let mut st = self.shared.lock();
        if let Some(conn) = st.conn.take() {
            let _ = conn.stream.shutdown(Shutdown::Both);
            st.stats.disconnects += 1;
        }
    }

    /// Stops answering for `duration` while keeping the connection: no responses, keepalives or reports; reads due
    /// meanwhile are lost.
    pub fn go_silent(&self, duration: Duration) {
        self.shared.lock().silent_until = Some(Instant::now() + duration);
    }

    /// Whether a client is connected.
    pub fn connected(&self) -> bool {
        self.shared.lock().conn.is_some()
    }

    /// The counters so far.
    pub fn stats(&self) -> LlrpStats {
        let st = self.shared.lock();
        let mut s = st.stats.clone();
        s.rospec_active = st.active_rospec().is_some();
        s
    }

    /// True once every scheduled read was delivered or lost.
    pub fn done(&self) -> bool {
        self.shared.lock().reads.is_empty()
    }
}

impl Drop for LlrpSim {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.disconnect_now();
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    while !shared.stop.load(Ordering::Relaxed) {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(_) => {
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let mut st = shared.lock();
        if st.conn.as_ref().is_some_and(|c| alive(&c.stream)) {
            st.stats.connections_rejected += 1;
            let id = st.next_id();
            // Status 2 = a client-initiated connection already exists (sllurp ConnEvent_Name2Type).
            let _ = stream.write_all(&connection_attempt(id, 2, SystemTime::now()));
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(reader) = stream.try_clone() else {
            continue;
        };
        st.next_serial += 1;
        let serial = st.next_serial;
        let period = st.stats.keepalive_ms;
        st.conn = Some(Conn {
            serial,
            stream,
            next_keepalive: Instant::now() + Duration::from_millis(period),
        });
        st.stats.connections_accepted += 1;
        let id = st.next_id();
        st.write(&connection_attempt(id, 0, SystemTime::now()));
        drop(st);
        let s = shared.clone();
        thread::spawn(move || connection_loop(&s, reader, serial));
    }
}

/// Whether the peer of `stream` is still there (a closed peer reads as EOF).
fn alive(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut b = [0u8; 1];
    let ok = match stream.peek(&mut b) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    ok
}

fn connection_loop(shared: &Arc<Shared>, mut stream: TcpStream, serial: u64) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let current = |st: &State| st.conn.as_ref().is_some_and(|c| c.serial == serial);
    while !shared.stop.load(Ordering::Relaxed) {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        let mut st = shared.lock();
        if !current(&st) {
            return;
        }
        loop {
            match take_message(&mut buf) {
                Ok(Some(m)) => {
                    *st.stats.received.entry(m.kind).or_default() += 1;
                    if st.silent() {
                        st.stats.ignored_while_silent += 1;
                        continue;
                    }
                    if !handle(&mut st, &m) {
                        let _ = stream.shutdown(Shutdown::Both);
                        st.conn = None;
                        return;
                    }
                }
                Ok(None) => break,
                // A garbage length: the stream cannot be resynchronised.
                Err(_) => {
                    let _ = stream.shutdown(Shutdown::Both);
                    st.conn = None;
                    return;
                }
            }
        }
    }
    let mut st = shared.lock();
    if current(&st) {
        st.conn = None;
    }
}

fn respond(st: &mut State, kind: u16, id: u32, status: u16, description: &str, extra: &[u8]) {
    let body = [llrp_status(status, description), extra.to_vec()].concat();
    st.write(&message(kind, id, &body));
}

fn rospec_id(body: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(body.get(..4)?.try_into().ok()?))
}

/// Handles one client message; false when the connection must end.
fn handle(st: &mut State, m: &Message) -> bool {
    match m.kind {
        msg::KEEPALIVE_ACK => {
            if let Some(i) = st.keepalive_ids.iter().position(|id| *id == m.id) {
                st.keepalive_ids.drain(..=i);
                st.stats.keepalive_acks += 1;
            } else {
                st.stats.keepalive_acks_unmatched += 1;
            }
        }
        msg::ENABLE_EVENTS_AND_REPORTS => {}
        msg::CLOSE_CONNECTION => {
            respond(
                st,
                msg::CLOSE_CONNECTION_RESPONSE,
                m.id,
                code::SUCCESS,
                "",
                &[],
            );
            return false;
        }
        msg::GET_READER_CAPABILITIES => {
            let requested = m.body.first().copied().unwrap_or(0);
            let extra = if requested <= 1 {
                general_device_capabilities(st.options.antennas)
            } else {
                Vec::new()
            };
            respond(
                st,
                msg::GET_READER_CAPABILITIES_RESPONSE,
                m.id,
                code::SUCCESS,
                "",
                &extra,
            );
        }
        msg::GET_READER_CONFIG => {
            respond(
                st,
                msg::GET_READER_CONFIG_RESPONSE,
                m.id,
                code::SUCCESS,
                "",
                &[],
            );
        }
        msg::SET_READER_CONFIG => {
            // Byte 0: ResetToFactoryDefault (1 bit) + 7 reserved bits; then parameters.
            if m.body.first().is_some_and(|b| b & 0x80 != 0) {
                st.rospecs.clear();
                st.stats.keepalive_ms = 0;
            }
            for (kind, body) in tlvs(m.body.get(1..).unwrap_or(&[])) {
                if kind == param::KEEPALIVE_SPEC && body.len() >= 5 {
                    let period = u32::from_be_bytes([body[1], body[2], body[3], body[4]]);
                    st.stats.keepalive_ms = if body[0] == 1 { u64::from(period) } else { 0 };
                    let next = Instant::now() + Duration::from_millis(st.stats.keepalive_ms);
                    if let Some(c) = &mut st.conn {
                        c.next_keepalive = next;
                    }
                }
            }
            respond(
                st,
                msg::SET_READER_CONFIG_RESPONSE,
                m.id,
                code::SUCCESS,
                "",
                &[],
            );
        }
        msg::ADD_ROSPEC => {
            let spec = tlvs(&m.body)
                .into_iter()
                .find(|(k, b)| *k == param::ROSPEC && b.len() >= 6);
            match spec {
                Some((_, body)) => {
                    let id = rospec_id(body).unwrap_or(0);
                    let immediate = tlvs(&body[6..])
                        .into_iter()
                        .filter(|(k, _)| *k == param::RO_BOUNDARY_SPEC)
                        .flat_map(|(_, b)| tlvs(b))
                        .any(|(k, b)| k == param::ROSPEC_START_TRIGGER && b.first() == Some(&1));
                    st.rospecs.insert(
                        id,
                        RoSpec {
                            state: RoState::Disabled,
                            immediate,
                        },
                    );
                    respond(st, msg::ADD_ROSPEC + 10, m.id, code::SUCCESS, "", &[]);
                }
                None => respond(
                    st,
                    msg::ADD_ROSPEC + 10,
                    m.id,
                    code::FIELD_ERROR,
                    "no ROSpec parameter",
                    &[],
                ),
            }
        }
        msg::DELETE_ROSPEC => {
            let ok = match rospec_id(&m.body) {
                Some(0) => {
                    st.rospecs.clear();
                    true
                }
                Some(id) => st.rospecs.remove(&id).is_some(),
                None => false,
            };
            rospec_response(st, m, ok);
        }
        msg::ENABLE_ROSPEC => {
            let ids = targets(st, &m.body);
            for id in &ids {
                let immediate = st.rospecs.get(id).is_some_and(|r| r.immediate);
                let to = if immediate {
                    RoState::Active
                } else {
                    RoState::Inactive
                };
                st.set_state(*id, to);
            }
            rospec_response(st, m, !ids.is_empty() || rospec_id(&m.body) == Some(0));
        }
        msg::START_ROSPEC => {
            let ok = rospec_id(&m.body).is_some_and(|id| {
                st.rospecs
                    .get(&id)
                    .is_some_and(|r| r.state != RoState::Disabled)
                    && st.set_state(id, RoState::Active)
            });
            rospec_response(st, m, ok);
        }
        msg::STOP_ROSPEC => {
            let ok = rospec_id(&m.body).is_some_and(|id| {
                st.rospecs
                    .get(&id)
                    .is_some_and(|r| r.state != RoState::Disabled)
                    && st.set_state(id, RoState::Inactive)
            });
            rospec_response(st, m, ok);
        }
        msg::DISABLE_ROSPEC => {
            let ids = targets(st, &m.body);
            for id in &ids {
                st.set_state(*id, RoState::Disabled);
            }
            rospec_response(st, m, !ids.is_empty() || rospec_id(&m.body) == Some(0));
        }
        _ => respond(
            st,
            msg::ERROR_MESSAGE,
            m.id,
            code::UNSUPPORTED_MESSAGE,
            "unsupported message",
            &[],
        ),
    }
    true
}

/// The ROSpecs a message names: its ROSpecID, or all of them for 0 (ENABLE, DISABLE and DELETE accept 0).
fn targets(st: &State, body: &[u8]) -> Vec<u32> {
    match rospec_id(body) {
        Some(0) => st.rospecs.keys().copied().collect(),
        Some(id) if st.rospecs.contains_key(&id) => vec![id],
        _ => Vec::new(),
    }
}

fn rospec_response(st: &mut State, m: &Message, ok: bool) {
    if ok {
        respond(st, m.kind + 10, m.id, code::SUCCESS, "", &[]);
    } else {
        respond(
            st,
            m.kind + 10,
            m.id,
            code::FIELD_ERROR,
            "no such ROSpec in that state",
            &[],
        );
    }
}

/// GeneralDeviceCapabilities (§16.2.3.2): MaxNumberOfAntennaSupported u16, flags u16 (bit 14: has a UTC clock),
/// DeviceManufacturerName u32, ModelName u32, ReaderFirmwareVersion (u16 count + UTF-8), then
/// ReceiveSensitivityTableEntry (index u16, value i16), PerAntennaAirProtocol per antenna (antenna u16, count u16,
/// protocol ids u8: 1 = EPCglobal Class 1 Gen 2) and GPIOCapabilities (GPIs u16, GPOs u16).
fn general_device_capabilities(antennas: u16) -> Vec<u8> {
    let firmware = b"dockhand-sim 1";
    let mut b = Vec::new();
    b.extend_from_slice(&antennas.to_be_bytes());
    b.extend_from_slice(&(1u16 << 14).to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&(firmware.len() as u16).to_be_bytes());
    b.extend_from_slice(firmware);
    b.extend(tlv(param::RECEIVE_SENSITIVITY_TABLE_ENTRY, &[0, 1, 0, 0]));
    for a in 1..=antennas {
        let mut p = a.to_be_bytes().to_vec();
        p.extend_from_slice(&[0, 1, 1]);
        b.extend(tlv(param::PER_ANTENNA_AIR_PROTOCOL, &p));
    }
    b.extend(tlv(param::GPIO_CAPABILITIES, &[0, 0, 0, 0]));
    tlv(param::GENERAL_DEVICE_CAPABILITIES, &b)
}

/// Every `report_every_ms`: keepalives, then the reads that fell due, reported or lost.
fn pump_loop(shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::Relaxed) {
        let every = shared.lock().options.report_every_ms.max(1);
        thread::sleep(Duration::from_millis(every));
        let mut st = shared.lock();
        let silent = st.silent();
        let now = Instant::now();
        if !silent && st.stats.keepalive_ms > 0 {
            if let Some(due) = st.conn.as_ref().map(|c| c.next_keepalive <= now) {
                if due {
                    let id = st.next_id();
                    st.keepalive_ids.push(id);
                    st.stats.keepalives_sent += 1;
                    let period = Duration::from_millis(st.stats.keepalive_ms);
                    if let Some(c) = &mut st.conn {
                        c.next_keepalive = now + period;
                    }
                    st.write(&message(msg::KEEPALIVE, id, &[]));
                }
            }
        }
        let Some((start, start_utc)) = st.clock else {
            continue;
        };
        let now_us = start.elapsed().as_micros() as u64;
        let mut due = Vec::new();
        while st.reads.front().is_some_and(|r| r.at_us <= now_us) {
            due.push(st.reads.pop_front().expect("front"));
        }
        if due.is_empty() {
            continue;
        }
        let rospec = st.active_rospec();
        let Some(rospec) = rospec.filter(|_| st.conn.is_some() && !silent) else {
            st.stats.reads_lost += due.len() as u64;
            continue;
        };
        let entries = merge(&due, utc_us(start_utc));
        for chunk in entries.chunks(st.options.max_tags_per_report.max(1)) {
            let body: Vec<u8> = chunk
                .iter()
                .flat_map(|t| tag_report_data(t, rospec))
                .collect();
            let id = st.next_id();
            st.write(&message(msg::RO_ACCESS_REPORT, id, &body));
            if st.conn.is_none() {
                // The write failed: these reads never arrived.
                let n: u64 = chunk.iter().map(|t| u64::from(t.seen_count)).sum();
                st.stats.reads_lost += n;
                continue;
            }
            st.stats.reports_sent += 1;
            st.stats.tag_reports_sent += chunk.len() as u64;
            st.stats.reads_delivered += chunk.iter().map(|t| u64::from(t.seen_count)).sum::<u64>();
        }
    }
}

/// Merges reads of one tag on one antenna into one entry, in order of first sight.
fn merge(reads: &[Read], base_utc_us: u64) -> Vec<TagReport> {
    let mut out: Vec<TagReport> = Vec::new();
    for r in reads {
        let at = base_utc_us + r.at_us;
        match out
            .iter_mut()
            .find(|t| t.epc == r.epc && t.antenna == r.antenna)
        {
            Some(t) if t.seen_count < u16::MAX => {
                t.seen_count += 1;
                t.peak_rssi = t.peak_rssi.max(r.rssi_dbm);
                t.last_seen_us = at;
            }
            _ => out.push(TagReport {
                epc: r.epc.clone(),
                antenna: r.antenna,
                peak_rssi: r.rssi_dbm,
                first_seen_us: at,
                last_seen_us: at,
                seen_count: 1,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_params_match_hand_written_bytes() {
        // (built, expected)
        let cases: [(Vec<u8>, Vec<u8>); 5] = [
            // KEEPALIVE id 5: 0x0400 | 62 = 0x043E, length 10.
            (
                message(62, 5, &[]),
                vec![0x04, 0x3E, 0, 0, 0, 10, 0, 0, 0, 5],
            ),
            // CLOSE_CONNECTION_RESPONSE id 7 with LLRPStatus 0 "": 0x0404, length 18.
            (
                message(4, 7, &llrp_status(0, "")),
                vec![
                    0x04, 0x04, 0, 0, 0, 18, 0, 0, 0, 7, 0x01, 0x1F, 0, 8, 0, 0, 0, 0,
                ],
            ),
            // ConnectionAttemptEvent status 0: type 256, length 6.
            (tlv(256, &[0, 0]), vec![0x01, 0x00, 0, 6, 0, 0]),
            // AntennaID 2 (TV 1): 0x81 00 02.
            (tv(1, &[0, 2]), vec![0x81, 0, 2]),
            // PeakRSSI -60 (TV 6): 0x86 C4.
            (tv(6, &(-60i8).to_be_bytes()), vec![0x86, 0xC4]),
        ];
        for (built, want) in cases {
            assert_eq!(built, want);
        }
    }

    #[test]
    fn take_message_splits_a_stream() {
        let a = message(msg::KEEPALIVE_ACK, 9, &[]);
        let b = message(msg::START_ROSPEC, 10, &1u32.to_be_bytes());
        let mut buf = [a, b[..7].to_vec()].concat();
        let m = take_message(&mut buf).expect("valid").expect("whole");
        assert_eq!((m.version, m.kind, m.id), (1, msg::KEEPALIVE_ACK, 9));
        assert_eq!(take_message(&mut buf), Ok(None));
        buf.extend_from_slice(&b[7..]);
        let m = take_message(&mut buf).expect("valid").expect("whole");
        assert_eq!(
            (m.kind, m.body.as_slice()),
            (msg::START_ROSPEC, &[0, 0, 0, 1][..])
        );
        let mut junk = vec![0x04, 0x3E, 0, 0, 0, 3, 0, 0, 0, 1];
        assert!(take_message(&mut junk).is_err());
    }

    #[test]
    fn tag_report_data_layout() {
        let t = TagReport {
            epc: (1..=12).collect(),
            antenna: 2,
            peak_rssi: -50,
            first_seen_us: 1,
            last_seen_us: 2,
            seen_count: 3,
        };
        let p = tag_report_data(&t, 7);
        // header 4 + EPC-96 13 + ROSpecID 5 + AntennaID 3 + PeakRSSI 2 + 2 timestamps 18 + TagSeenCount 3
        assert_eq!(p.len(), 48);
        assert_eq!(&p[..4], &[0x00, 0xF0, 0, 48]);
        assert_eq!(p[4], 0x8D);
        assert_eq!(&p[p.len() - 3..], &[0x88, 0, 3]);
        let short = TagReport {
            epc: vec![0xAB; 8],
            ..t
        };
        let p = tag_report_data(&short, 7);
        // EPCData: type 241, length 4 + 2 + 8, bit count 64.
        assert_eq!(&p[4..10], &[0x00, 0xF1, 0, 14, 0, 64]);
    }

    #[test]
    fn merge_counts_repeats_per_tag_and_antenna() {
        let read = |at_us, epc: u8, antenna, rssi_dbm| Read {
            at_us,
            epc: vec![epc; 12],
            antenna,
            rssi_dbm,
            source: crate::rfidsim::ReadSource::Stray,
        };
        let reads = [
            read(10, 1, 1, -60),
            read(20, 1, 1, -50),
            read(30, 1, 2, -70),
            read(40, 2, 1, -65),
            read(50, 1, 1, -55),
        ];
        let m = merge(&reads, 1000);
        // (epc byte, antenna, count, peak, first, last)
        let got: Vec<_> = m
            .iter()
            .map(|t| {
                (
                    t.epc[0],
                    t.antenna,
                    t.seen_count,
                    t.peak_rssi,
                    t.first_seen_us,
                    t.last_seen_us,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (1, 1, 3, -50, 1010, 1050),
                (1, 2, 1, -70, 1030, 1030),
                (2, 1, 1, -65, 1040, 1040)
            ]
        );
    }
}
