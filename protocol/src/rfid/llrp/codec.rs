//! LLRP messages: the 10-byte header, typed bodies, encoding, and a [`Decoder`] that frames a TCP byte stream.
//!
//! Framing is two steps, as in mini-redis: [`check`] looks only at the header and says whether a whole message is
//! buffered (`Ok(None)` means "read more"), or whether the stream is broken; then the body is parsed. A broken
//! header (wrong version, impossible or oversized length) is fatal: the stream cannot be resynchronised, so the
//! decoder stops. A malformed body inside a well-framed message only costs that message.

use super::params::{param_type as pt, KeepaliveSpec, Timestamp};
use super::params::{
    LlrpStatus, ParamError, ParamErrorKind, RawParam, Reader, ReaderEventNotificationData,
    RoAccessReport, RoSpec, SetReaderConfig, TagReportData, Writer,
};

/// Bytes in a message header: type (with version), length, id.
pub const HEADER_LEN: usize = 10;

/// The protocol version this codec speaks: 1 is LLRP 1.0.1 (2 would be LLRP 1.1).
pub const VERSION: u8 = 1;

/// The default limit on one message's length, header included.
pub const DEFAULT_MAX_MESSAGE_LEN: u32 = 1 << 20;

/// Message type numbers (LLRP 1.0.1 §16.1). A response's number is its request's plus 10, except
/// CLOSE_CONNECTION (14) whose response is 4.
pub mod msg_type {
    /// GET_READER_CAPABILITIES.
    pub const GET_READER_CAPABILITIES: u16 = 1;
    /// GET_READER_CONFIG.
    pub const GET_READER_CONFIG: u16 = 2;
    /// SET_READER_CONFIG.
    pub const SET_READER_CONFIG: u16 = 3;
    /// CLOSE_CONNECTION_RESPONSE.
    pub const CLOSE_CONNECTION_RESPONSE: u16 = 4;
    /// GET_READER_CAPABILITIES_RESPONSE.
    pub const GET_READER_CAPABILITIES_RESPONSE: u16 = 11;
    /// GET_READER_CONFIG_RESPONSE.
    pub const GET_READER_CONFIG_RESPONSE: u16 = 12;
    /// SET_READER_CONFIG_RESPONSE.
    pub const SET_READER_CONFIG_RESPONSE: u16 = 13;
    /// CLOSE_CONNECTION.
    pub const CLOSE_CONNECTION: u16 = 14;
    /// ADD_ROSPEC.
    pub const ADD_ROSPEC: u16 = 20;
    /// DELETE_ROSPEC.
    pub const DELETE_ROSPEC: u16 = 21;
    /// START_ROSPEC.
    pub const START_ROSPEC: u16 = 22;
    /// STOP_ROSPEC.
    pub const STOP_ROSPEC: u16 = 23;
    /// ENABLE_ROSPEC.
    pub const ENABLE_ROSPEC: u16 = 24;
    /// DISABLE_ROSPEC.
    pub const DISABLE_ROSPEC: u16 = 25;
    /// GET_ROSPECS.
    pub const GET_ROSPECS: u16 = 26;
    /// ADD_ROSPEC_RESPONSE.
    pub const ADD_ROSPEC_RESPONSE: u16 = 30;
    /// DELETE_ROSPEC_RESPONSE.
    pub const DELETE_ROSPEC_RESPONSE: u16 = 31;
    /// START_ROSPEC_RESPONSE.
    pub const START_ROSPEC_RESPONSE: u16 = 32;
    /// STOP_ROSPEC_RESPONSE.
    pub const STOP_ROSPEC_RESPONSE: u16 = 33;
    /// ENABLE_ROSPEC_RESPONSE.
    pub const ENABLE_ROSPEC_RESPONSE: u16 = 34;
    /// DISABLE_ROSPEC_RESPONSE.
    pub const DISABLE_ROSPEC_RESPONSE: u16 = 35;
    /// GET_ROSPECS_RESPONSE.
    pub const GET_ROSPECS_RESPONSE: u16 = 36;
    /// GET_REPORT.
    pub const GET_REPORT: u16 = 60;
    /// RO_ACCESS_REPORT.
    pub const RO_ACCESS_REPORT: u16 = 61;
    /// KEEPALIVE.
    pub const KEEPALIVE: u16 = 62;
    /// READER_EVENT_NOTIFICATION.
    pub const READER_EVENT_NOTIFICATION: u16 = 63;
    /// ENABLE_EVENTS_AND_REPORTS.
    pub const ENABLE_EVENTS_AND_REPORTS: u16 = 64;
    /// KEEPALIVE_ACK.
    pub const KEEPALIVE_ACK: u16 = 72;
    /// ERROR_MESSAGE.
    pub const ERROR_MESSAGE: u16 = 100;
    /// CUSTOM_MESSAGE.
    pub const CUSTOM_MESSAGE: u16 = 1023;
}

use msg_type as mt;

/// The name of a message type, for logs and errors.
pub fn msg_type_name(ty: u16) -> &'static str {
    match ty {
        mt::GET_READER_CAPABILITIES => "GET_READER_CAPABILITIES",
        mt::GET_READER_CONFIG => "GET_READER_CONFIG",
        mt::SET_READER_CONFIG => "SET_READER_CONFIG",
        mt::CLOSE_CONNECTION_RESPONSE => "CLOSE_CONNECTION_RESPONSE",
        mt::GET_READER_CAPABILITIES_RESPONSE => "GET_READER_CAPABILITIES_RESPONSE",
        mt::GET_READER_CONFIG_RESPONSE => "GET_READER_CONFIG_RESPONSE",
        mt::SET_READER_CONFIG_RESPONSE => "SET_READER_CONFIG_RESPONSE",
        mt::CLOSE_CONNECTION => "CLOSE_CONNECTION",
        mt::ADD_ROSPEC => "ADD_ROSPEC",
        mt::DELETE_ROSPEC => "DELETE_ROSPEC",
        mt::START_ROSPEC => "START_ROSPEC",
        mt::STOP_ROSPEC => "STOP_ROSPEC",
        mt::ENABLE_ROSPEC => "ENABLE_ROSPEC",
        mt::DISABLE_ROSPEC => "DISABLE_ROSPEC",
        mt::GET_ROSPECS => "GET_ROSPECS",
        mt::ADD_ROSPEC_RESPONSE => "ADD_ROSPEC_RESPONSE",
        mt::DELETE_ROSPEC_RESPONSE => "DELETE_ROSPEC_RESPONSE",
        mt::START_ROSPEC_RESPONSE => "START_ROSPEC_RESPONSE",
        mt::STOP_ROSPEC_RESPONSE => "STOP_ROSPEC_RESPONSE",
        mt::ENABLE_ROSPEC_RESPONSE => "ENABLE_ROSPEC_RESPONSE",
        mt::DISABLE_ROSPEC_RESPONSE => "DISABLE_ROSPEC_RESPONSE",
        mt::GET_ROSPECS_RESPONSE => "GET_ROSPECS_RESPONSE",
        mt::GET_REPORT => "GET_REPORT",
        mt::RO_ACCESS_REPORT => "RO_ACCESS_REPORT",
        mt::KEEPALIVE => "KEEPALIVE",
        mt::READER_EVENT_NOTIFICATION => "READER_EVENT_NOTIFICATION",
        mt::ENABLE_EVENTS_AND_REPORTS => "ENABLE_EVENTS_AND_REPORTS",
        mt::KEEPALIVE_ACK => "KEEPALIVE_ACK",
        mt::ERROR_MESSAGE => "ERROR_MESSAGE",
        mt::CUSTOM_MESSAGE => "CUSTOM_MESSAGE",
        _ => "unknown message",
    }
}

/// Why bytes could not be decoded as LLRP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LlrpError {
    /// The header's version is not 1 (LLRP 1.0.1).
    #[error(
        "LLRP version {version} in the message header (only version 1, LLRP 1.0.1, is spoken)"
    )]
    Version {
        /// The version found.
        version: u8,
    },
    /// The header's length is below the header's own 10 bytes.
    #[error("message length {len} is shorter than the 10-byte header")]
    ShortLength {
        /// The length found.
        len: u32,
    },
    /// The header's length is over the configured limit.
    #[error("message length {len} exceeds the {max}-byte limit")]
    TooLong {
        /// The length found.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// [`Message::decode`] was given more or fewer bytes than the header's length.
    #[error("message length {len} but {have} bytes given")]
    LengthMismatch {
        /// The length in the header.
        len: u32,
        /// The bytes given.
        have: usize,
    },
    /// A well-framed message whose body is malformed.
    #[error("malformed {} (type {msg_type}, id {id}): {error}", msg_type_name(*msg_type))]
    Malformed {
        /// The message type.
        msg_type: u16,
        /// The message id.
        id: u32,
        /// What is wrong, and where.
        error: ParamError,
    },
}

impl LlrpError {
    /// Whether the stream is broken past this error. Only a malformed body leaves the framing intact.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, LlrpError::Malformed { .. })
    }
}

/// One LLRP message. `msg_type` decides the shape of `body` (see [`Body`]); the constructors keep them in step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The message type (see [`msg_type`]).
    pub msg_type: u16,
    /// The message id; a response carries its request's id.
    pub id: u32,
    /// The typed body.
    pub body: Body,
}

/// A message body, typed for the messages Dockhand uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// No fields: KEEPALIVE, KEEPALIVE_ACK, CLOSE_CONNECTION, GET_ROSPECS, GET_REPORT, ENABLE_EVENTS_AND_REPORTS.
    Empty,
    /// One ROSpecID (0 = all): DELETE_, START_, STOP_, ENABLE_, DISABLE_ROSPEC.
    RoSpecId(u32),
    /// ADD_ROSPEC.
    AddRoSpec(RoSpec),
    /// SET_READER_CONFIG.
    SetReaderConfig(SetReaderConfig),
    /// An LLRPStatus: the *_RESPONSE messages of the requests above, CLOSE_CONNECTION_RESPONSE, ERROR_MESSAGE.
    Status(LlrpStatus),
    /// RO_ACCESS_REPORT.
    RoAccessReport(RoAccessReport),
    /// READER_EVENT_NOTIFICATION.
    ReaderEvent(ReaderEventNotificationData),
    /// Any other message type: the body bytes as received.
    Unknown(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Empty,
    RoSpecId,
    AddRoSpec,
    SetReaderConfig,
    Status,
    RoAccessReport,
    ReaderEvent,
    Unknown,
}

fn shape(ty: u16) -> Shape {
    match ty {
        mt::KEEPALIVE
        | mt::KEEPALIVE_ACK
        | mt::CLOSE_CONNECTION
        | mt::GET_ROSPECS
        | mt::GET_REPORT
        | mt::ENABLE_EVENTS_AND_REPORTS => Shape::Empty,
        mt::DELETE_ROSPEC
        | mt::START_ROSPEC
        | mt::STOP_ROSPEC
        | mt::ENABLE_ROSPEC
        | mt::DISABLE_ROSPEC => Shape::RoSpecId,
        mt::ADD_ROSPEC => Shape::AddRoSpec,
        mt::SET_READER_CONFIG => Shape::SetReaderConfig,
        mt::SET_READER_CONFIG_RESPONSE
        | mt::CLOSE_CONNECTION_RESPONSE
        | mt::ADD_ROSPEC_RESPONSE
        | mt::DELETE_ROSPEC_RESPONSE
        | mt::START_ROSPEC_RESPONSE
        | mt::STOP_ROSPEC_RESPONSE
        | mt::ENABLE_ROSPEC_RESPONSE
        | mt::DISABLE_ROSPEC_RESPONSE
        | mt::ERROR_MESSAGE => Shape::Status,
        mt::RO_ACCESS_REPORT => Shape::RoAccessReport,
        mt::READER_EVENT_NOTIFICATION => Shape::ReaderEvent,
        _ => Shape::Unknown,
    }
}

/// The header of a complete message, as [`check`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The message type.
    pub msg_type: u16,
    /// The whole message's length, header included.
    pub len: u32,
    /// The message id.
    pub id: u32,
}

/// Looks at the start of `buf`: `Ok(Some(header))` when a whole message is there, `Ok(None)` when more bytes are
/// needed, an error when the stream is broken. The version and length are checked as soon as their bytes are
/// there, so an oversized message is refused before it is buffered.
pub fn check(buf: &[u8], max_len: u32) -> Result<Option<Header>, LlrpError> {
    let Some(&[b0, b1]) = buf.get(..2) else {
        return Ok(None);
    };
    // 3 reserved bits (ignored), 3 version bits, 10 type bits.
    let version = (b0 >> 2) & 0b111;
    if version != VERSION {
        return Err(LlrpError::Version { version });
    }
    let msg_type = u16::from_be_bytes([b0, b1]) & 0x03ff;
    let Some(&[l0, l1, l2, l3]) = buf.get(2..6) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([l0, l1, l2, l3]);
    if (len as usize) < HEADER_LEN {
        return Err(LlrpError::ShortLength { len });
    }
    if len > max_len {
        return Err(LlrpError::TooLong { len, max: max_len });
    }
    if buf.len() < len as usize {
        return Ok(None);
    }
    let id = u32::from_be_bytes([buf[6], buf[7], buf[8], buf[9]]);
    Ok(Some(Header { msg_type, len, id }))
}

impl Message {
    /// Decodes exactly one whole message (no length limit).
    pub fn decode(bytes: &[u8]) -> Result<Message, LlrpError> {
        match check(bytes, u32::MAX)? {
            Some(h) if h.len as usize == bytes.len() => Message::parse(h, bytes),
            Some(h) => Err(LlrpError::LengthMismatch {
                len: h.len,
                have: bytes.len(),
            }),
            None => Err(LlrpError::LengthMismatch {
                len: bytes
                    .get(2..6)
                    .map_or(0, |l| u32::from_be_bytes([l[0], l[1], l[2], l[3]])),
                have: bytes.len(),
            }),
        }
    }

    /// Parses the message `check` framed: `frame` is exactly `h.len` bytes.
    fn parse(h: Header, frame: &[u8]) -> Result<Message, LlrpError> {
        let body = decode_body(h.msg_type, &frame[HEADER_LEN..]).map_err(|error| {
            LlrpError::Malformed {
                msg_type: h.msg_type,
                id: h.id,
                error,
            }
        })?;
        Ok(Message {
            msg_type: h.msg_type,
            id: h.id,
            body,
        })
    }

    /// The message on the wire. The body is written as its variant says; pairing a body with a `msg_type` of
    /// another shape gives bytes that decode to something else.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u16(u16::from(VERSION) << 10 | (self.msg_type & 0x03ff));
        w.u32(0);
        w.u32(self.id);
        match &self.body {
            Body::Empty => {}
            Body::RoSpecId(id) => w.u32(*id),
            Body::AddRoSpec(spec) => spec.encode(&mut w),
            Body::SetReaderConfig(cfg) => cfg.encode(&mut w),
            Body::Status(status) => status.encode(&mut w),
            Body::RoAccessReport(report) => report.encode(&mut w),
            Body::ReaderEvent(data) => data.encode(&mut w),
            Body::Unknown(bytes) => w.buf.extend_from_slice(bytes),
        }
        let len = u32::try_from(w.buf.len()).unwrap_or(u32::MAX);
        w.buf[2..6].copy_from_slice(&len.to_be_bytes());
        w.buf
    }

    /// The LLRPStatus of a response or ERROR_MESSAGE.
    pub fn status(&self) -> Option<&LlrpStatus> {
        match &self.body {
            Body::Status(s) => Some(s),
            _ => None,
        }
    }

    // Client → reader.

    /// ADD_ROSPEC.
    pub fn add_rospec(id: u32, spec: RoSpec) -> Message {
        Message::with(mt::ADD_ROSPEC, id, Body::AddRoSpec(spec))
    }

    /// DELETE_ROSPEC, ENABLE_ROSPEC, START_ROSPEC, STOP_ROSPEC or DISABLE_ROSPEC (`msg_type`) of ROSpec `rospec`
    /// (0 = all).
    pub fn rospec_op(msg_type: u16, id: u32, rospec: u32) -> Message {
        Message::with(msg_type, id, Body::RoSpecId(rospec))
    }

    /// SET_READER_CONFIG setting only the keepalive: periodic every `period_ms`, or off when 0.
    pub fn set_keepalive(id: u32, period_ms: u32) -> Message {
        let keepalive = KeepaliveSpec {
            trigger: u8::from(period_ms > 0) * KeepaliveSpec::PERIODIC,
            period_ms,
        };
        let cfg = SetReaderConfig {
            keepalive: Some(keepalive),
            ..SetReaderConfig::default()
        };
        Message::with(mt::SET_READER_CONFIG, id, Body::SetReaderConfig(cfg))
    }

    /// KEEPALIVE_ACK, with the id of the KEEPALIVE it answers.
    pub fn keepalive_ack(id: u32) -> Message {
        Message::with(mt::KEEPALIVE_ACK, id, Body::Empty)
    }

    /// CLOSE_CONNECTION.
    pub fn close_connection(id: u32) -> Message {
        Message::with(mt::CLOSE_CONNECTION, id, Body::Empty)
    }

    // Reader → client, for simulators.

    /// KEEPALIVE.
    pub fn keepalive(id: u32) -> Message {
        Message::with(mt::KEEPALIVE, id, Body::Empty)
    }

    /// A response (`msg_type` is one of the *_RESPONSE types, or ERROR_MESSAGE) carrying `status`.
    pub fn response(msg_type: u16, id: u32, status: LlrpStatus) -> Message {
        Message::with(msg_type, id, Body::Status(status))
    }

    /// READER_EVENT_NOTIFICATION with a ConnectionAttemptEvent of `status` (0 = success) at `utc_us`.
    pub fn connection_attempt(id: u32, status: u16, utc_us: u64) -> Message {
        let data = ReaderEventNotificationData {
            timestamp: Some(Timestamp::Utc(utc_us)),
            connection_attempt: Some(status),
            ..ReaderEventNotificationData::default()
        };
        Message::with(mt::READER_EVENT_NOTIFICATION, id, Body::ReaderEvent(data))
    }

    /// READER_EVENT_NOTIFICATION with a ConnectionCloseEvent at `utc_us`.
    pub fn connection_close(id: u32, utc_us: u64) -> Message {
        let data = ReaderEventNotificationData {
            timestamp: Some(Timestamp::Utc(utc_us)),
            connection_close: true,
            ..ReaderEventNotificationData::default()
        };
        Message::with(mt::READER_EVENT_NOTIFICATION, id, Body::ReaderEvent(data))
    }

    /// RO_ACCESS_REPORT of `tags`.
    pub fn ro_access_report(id: u32, tags: Vec<TagReportData>) -> Message {
        let report = RoAccessReport {
            tags,
            extra: Vec::new(),
        };
        Message::with(mt::RO_ACCESS_REPORT, id, Body::RoAccessReport(report))
    }

    fn with(msg_type: u16, id: u32, body: Body) -> Message {
        Message { msg_type, id, body }
    }
}

/// Decodes a body of the shape `msg_type` calls for. Parameters not interpreted at the message level are
/// skipped; the required one is the first of its type.
fn decode_body<'a>(msg_type: u16, body: &'a [u8]) -> Result<Body, ParamError> {
    let mut r = Reader::new(body, HEADER_LEN);
    let find = |r: &mut Reader<'a>, ty: u16| required(r, msg_type, ty);
    Ok(match shape(msg_type) {
        Shape::Empty => Body::Empty,
        Shape::RoSpecId => Body::RoSpecId(r.u32()?),
        Shape::AddRoSpec => Body::AddRoSpec(RoSpec::decode(find(&mut r, pt::RO_SPEC)?, 1)?),
        Shape::SetReaderConfig => Body::SetReaderConfig(SetReaderConfig::decode(&mut r)?),
        Shape::Status => Body::Status(LlrpStatus::decode(find(&mut r, pt::LLRP_STATUS)?, 1)?),
        Shape::RoAccessReport => Body::RoAccessReport(RoAccessReport::decode(&mut r)?),
        Shape::ReaderEvent => {
            let p = find(&mut r, pt::READER_EVENT_NOTIFICATION_DATA)?;
            Body::ReaderEvent(ReaderEventNotificationData::decode(p, 1)?)
        }
        Shape::Unknown => Body::Unknown(body.to_vec()),
    })
}

/// The first parameter of type `ty` in the rest of `r`, after checking the whole list is well formed.
fn required<'a>(r: &mut Reader<'a>, parent: u16, ty: u16) -> Result<RawParam<'a>, ParamError> {
    let mut found = None;
    while let Some(p) = r.param()? {
        if p.ty == ty && found.is_none() {
            found = Some(p);
        }
    }
    found.ok_or(ParamError {
        offset: HEADER_LEN,
        kind: ParamErrorKind::Missing {
            parent,
            missing: ty,
        },
    })
}

/// Frames and decodes a byte stream from one TCP connection. Push bytes as they arrive, then call
/// [`Decoder::next`] until it returns `None`. After a fatal error ([`LlrpError::is_fatal`]) it returns `None`
/// for good and ignores further bytes: use a new decoder for the next connection.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes before `start` are consumed; compacted lazily so each message is not a memmove of the buffer.
    start: usize,
    max_len: u32,
    failed: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with the default 1 MiB message limit.
    pub fn new() -> Self {
        Decoder::with_max_len(DEFAULT_MAX_MESSAGE_LEN)
    }

    /// A decoder refusing messages longer than `max_len` bytes (header included).
    pub fn with_max_len(max_len: u32) -> Self {
        Decoder {
            buf: Vec::new(),
            start: 0,
            max_len,
            failed: false,
        }
    }

    /// Takes bytes from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next message, an error, or `None` when more bytes are needed (or the stream is broken).
    #[allow(clippy::should_implement_trait)] // Not an Iterator: `None` means "not yet", not "never".
    pub fn next(&mut self) -> Option<Result<Message, LlrpError>> {
        if self.failed {
            return None;
        }
        let pending = &self.buf[self.start..];
        match check(pending, self.max_len) {
            Ok(None) => None,
            Ok(Some(h)) => {
                let end = h.len as usize;
                let out = Message::parse(h, &pending[..end]);
                self.start += end;
                Some(out)
            }
            Err(e) => {
                self.failed = true;
                self.buf = Vec::new();
                self.start = 0;
                Some(Err(e))
            }
        }
    }

    /// Whether a fatal error stopped the decoder.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Bytes buffered but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, bytes};
    use super::super::params::{
        AiSpec, AiSpecStopTrigger, C1g2EpcMemorySelector, Epc, FieldError, InventoryParameterSpec,
        Param, ParameterError, RoBoundarySpec, RoReportSpec, RoSpecStartTrigger, RoSpecStopTrigger,
        TagReportContentSelector, MAX_DEPTH,
    };
    use super::super::session::LlrpConfig;
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    const T0: u64 = 1_773_561_600_000_000;

    fn report() -> Message {
        let mut first = TagReportData::new(Epc::Epc96([
            0x30, 0x14, 0x25, 0x1a, 0x3c, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x01,
        ]));
        first.antenna_id = Some(1);
        first.peak_rssi = Some(-55);
        first.first_seen_utc = Some(T0 + 250_000);
        first.tag_seen_count = Some(3);
        first.pc = Some(0x3000);
        let mut second = TagReportData::new(Epc::Data {
            bits: 128,
            bytes: vec![
                0xe2, 0x00, 0x68, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78,
            ],
        });
        second.antenna_id = Some(2);
        second.peak_rssi = Some(-60);
        second.first_seen_utc = Some(T0 + 300_000);
        second.tag_seen_count = Some(1);
        second.extra = vec![Param::Custom {
            vendor: 25882,
            subtype: 56,
            data: vec![0xff, 0xc4],
        }];
        Message::ro_access_report(42, vec![first, second])
    }

    fn refused_add_rospec() -> Message {
        let status = LlrpStatus {
            parameter_error: Some(ParameterError {
                parameter_type: 177,
                code: 201,
                field_error: Some(FieldError {
                    field_num: 2,
                    code: 301,
                }),
                parameter_error: None,
                extra: vec![],
            }),
            ..LlrpStatus::error(100, "bad ROSpec")
        };
        Message::response(msg_type::ADD_ROSPEC_RESPONSE, 3, status)
    }

    /// Every fixture, with the message it is: decoding the bytes gives the message, encoding it gives the bytes.
    fn table() -> Vec<(&'static str, Message)> {
        use fixtures as f;
        let ok = LlrpStatus::success();
        vec![
            (
                f::CONNECTION_ATTEMPT_SUCCESS,
                Message::connection_attempt(0, 0, T0),
            ),
            (
                f::CONNECTION_ATTEMPT_REFUSED,
                Message::connection_attempt(0, 2, T0),
            ),
            (
                f::ADD_ROSPEC_RESPONSE_OK,
                Message::response(msg_type::ADD_ROSPEC_RESPONSE, 3, ok),
            ),
            (f::ADD_ROSPEC_RESPONSE_ERROR, refused_add_rospec()),
            (f::RO_ACCESS_REPORT, report()),
            (f::KEEPALIVE, Message::keepalive(7)),
            (f::CONNECTION_CLOSE, Message::connection_close(0, T0)),
            (f::KEEPALIVE_ACK, Message::keepalive_ack(7)),
            (f::SET_READER_CONFIG, Message::set_keepalive(1, 5000)),
            (
                f::DELETE_ROSPEC_ALL,
                Message::rospec_op(msg_type::DELETE_ROSPEC, 2, 0),
            ),
            (
                f::ADD_ROSPEC,
                Message::add_rospec(3, LlrpConfig::default().rospec()),
            ),
            (f::CLOSE_CONNECTION, Message::close_connection(9)),
        ]
    }

    #[test]
    fn fixtures_decode_and_encode() {
        assert_eq!(table().len(), fixtures::ALL.len());
        for (fixture, message) in table() {
            let wire = bytes(fixture);
            assert_eq!(Message::decode(&wire).as_ref(), Ok(&message), "{fixture}");
            assert_eq!(message.encode(), wire, "{fixture}");
        }
    }

    #[test]
    fn add_rospec_fields() {
        let Body::AddRoSpec(spec) = Message::decode(&bytes(fixtures::ADD_ROSPEC)).unwrap().body
        else {
            panic!("not an ADD_ROSPEC");
        };
        let expected = RoSpec {
            id: 1,
            priority: 0,
            current_state: 0,
            boundary: RoBoundarySpec {
                start: RoSpecStartTrigger {
                    trigger: 0,
                    extra: vec![],
                },
                stop: RoSpecStopTrigger {
                    trigger: 0,
                    duration_ms: 0,
                    extra: vec![],
                },
                extra: vec![],
            },
            ai_specs: vec![AiSpec {
                antenna_ids: vec![0],
                stop: AiSpecStopTrigger {
                    trigger: 0,
                    duration_ms: 0,
                    extra: vec![],
                },
                inventory: vec![InventoryParameterSpec {
                    id: 1,
                    protocol: 1,
                    extra: vec![],
                }],
                extra: vec![],
            }],
            report: Some(RoReportSpec {
                trigger: 1,
                n: 1,
                content: TagReportContentSelector {
                    antenna_id: true,
                    peak_rssi: true,
                    first_seen: true,
                    tag_seen_count: true,
                    memory: Some(C1g2EpcMemorySelector {
                        crc: false,
                        pc: true,
                    }),
                    ..TagReportContentSelector::default()
                },
                extra: vec![],
            }),
            extra: vec![],
        };
        assert_eq!(spec, expected);
    }

    /// Decodes `stream` pushed in `chunks`, polling after every push.
    fn decode_chunks<'a>(
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Vec<Result<Message, LlrpError>> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c);
            out.extend(std::iter::from_fn(|| d.next()));
        }
        out
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let all: Vec<u8> = fixtures::ALL.iter().flat_map(|(_, f)| bytes(f)).collect();
        let expected: Vec<_> = table().into_iter().map(|(_, m)| Ok(m)).collect();
        assert_eq!(decode_chunks([all.as_slice()]), expected);
        assert_eq!(decode_chunks(all.chunks(1)), expected, "byte by byte");
        for cut in 0..=all.len() {
            let (a, b) = all.split_at(cut);
            assert_eq!(decode_chunks([a, b]), expected, "split at {cut}");
        }
        for (name, fixture) in fixtures::ALL {
            let wire = bytes(fixture);
            let one = decode_chunks([wire.as_slice()]);
            for cut in 0..=wire.len() {
                let (a, b) = wire.split_at(cut);
                assert_eq!(decode_chunks([a, b]), one, "{name} split at {cut}");
            }
        }
    }

    /// A message of type `ty` around `body`.
    fn framed(ty: u16, body: &[u8]) -> Vec<u8> {
        Message {
            msg_type: ty,
            id: 5,
            body: Body::Unknown(body.to_vec()),
        }
        .encode()
    }

    fn kind(result: Result<Message, LlrpError>) -> ParamErrorKind {
        match result {
            Err(LlrpError::Malformed { error, .. }) => error.kind,
            other => panic!("expected a malformed body, got {other:?}"),
        }
    }

    #[test]
    fn malformed_bodies() {
        use ParamErrorKind as K;
        let report = msg_type::RO_ACCESS_REPORT;
        let status = msg_type::ADD_ROSPEC_RESPONSE;
        #[rustfmt::skip]
        let cases: &[(u16, &[u8], ParamErrorKind)] = &[
            // LLRPStatus claims 8 bytes, the message holds 6.
            (status, &[0x01, 0x1f, 0x00, 0x08, 0x00, 0x00], K::Overflow { ty: 287, len: 8, room: 6 }),
            // EPCData (length 32) inside a TagReportData of length 16.
            (report, &[0x00, 0xf0, 0x00, 0x10, 0x00, 0xf1, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0],
                K::Overflow { ty: 241, len: 32, room: 12 }),
            // EPCData claims 128 bits but holds 2 bytes.
            (report, &[0x00, 0xf0, 0x00, 0x0c, 0x00, 0xf1, 0x00, 0x08, 0x00, 0x80, 0xaa, 0xbb],
                K::Truncated { need: 16, have: 2 }),
            // A TLV length below its header.
            (report, &[0x00, 0xf0, 0x00, 0x03], K::TlvTooShort { ty: 240, len: 3 }),
            // A TLV header cut short.
            (report, &[0x00, 0xf0], K::Truncated { need: 4, have: 2 }),
            // A TLV carrying a TV type number.
            (report, &[0x00, 0x0d, 0x00, 0x04], K::TlvTypeReserved(13)),
            // An unknown TV type cannot be skipped.
            (report, &[0x00, 0xf0, 0x00, 0x06, 0xff, 0x00], K::UnknownTv(0x7f)),
            // A TV cut short.
            (report, &[0x00, 0xf0, 0x00, 0x06, 0x81, 0x00], K::Overflow { ty: 1, len: 3, room: 2 }),
            // TagReportData without an EPC.
            (report, &[0x00, 0xf0, 0x00, 0x07, 0x81, 0x00, 0x01],
                K::Missing { parent: 240, missing: 241 }),
            // A response without LLRPStatus.
            (status, &[], K::Missing { parent: 30, missing: 287 }),
            // ROSpecID cut short.
            (msg_type::START_ROSPEC, &[0x00, 0x01], K::Truncated { need: 4, have: 2 }),
        ];
        for (ty, body, expected) in cases {
            let wire = framed(*ty, body);
            let result = Message::decode(&wire);
            if let Err(LlrpError::Malformed { error, .. }) = &result {
                assert!(
                    error.offset <= wire.len(),
                    "{body:02x?}: offset {}",
                    error.offset
                );
            }
            assert_eq!(&kind(result), expected, "{body:02x?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        // ParameterErrors nested MAX_DEPTH + 4 deep: refused, not a stack overflow.
        let mut inner = LlrpStatus::success().parameter_error;
        for _ in 0..MAX_DEPTH + 4 {
            inner = Some(ParameterError {
                parameter_type: 177,
                code: 200,
                field_error: None,
                parameter_error: inner.map(Box::new),
                extra: vec![],
            });
        }
        let status = LlrpStatus {
            parameter_error: inner,
            ..LlrpStatus::error(100, "")
        };
        let wire = Message::response(msg_type::ADD_ROSPEC_RESPONSE, 1, status).encode();
        assert_eq!(kind(Message::decode(&wire)), ParamErrorKind::TooDeep);
    }

    #[test]
    fn framing_errors_are_fatal() {
        #[rustfmt::skip]
        let cases: &[(&[u8], LlrpError)] = &[
            (&[0x08, 0x3e, 0, 0, 0, 10, 0, 0, 0, 7], LlrpError::Version { version: 2 }),
            (&[0x00, 0x3e], LlrpError::Version { version: 0 }),
            (&[0x04, 0x3e, 0, 0, 0, 9, 0, 0, 0, 7], LlrpError::ShortLength { len: 9 }),
            // Refused from the first six bytes, before the body is buffered.
            (&[0x04, 0x3d, 0, 0, 0x10, 0], LlrpError::TooLong { len: 4096, max: 1024 }),
        ];
        for (wire, expected) in cases {
            let mut d = Decoder::with_max_len(1024);
            d.push(wire);
            assert_eq!(d.next(), Some(Err(expected.clone())), "{wire:02x?}");
            assert!(expected.is_fatal());
            assert!(d.is_failed());
            d.push(&bytes(fixtures::KEEPALIVE));
            assert_eq!(d.next(), None, "a failed decoder stays failed");
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn reserved_bits_are_ignored() {
        let mut wire = bytes(fixtures::KEEPALIVE);
        wire[0] |= 0xe0;
        assert_eq!(Message::decode(&wire), Ok(Message::keepalive(7)));
    }

    #[test]
    fn decoder_skips_a_malformed_body() {
        let mut stream = framed(msg_type::ADD_ROSPEC_RESPONSE, &[]);
        stream.extend(bytes(fixtures::KEEPALIVE));
        let out = decode_chunks([stream.as_slice()]);
        assert!(matches!(&out[0], Err(e) if !e.is_fatal()), "{out:?}");
        assert_eq!(out[1], Ok(Message::keepalive(7)));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn unknown_parameters_and_messages_are_kept() {
        // An RO_ACCESS_REPORT with an unknown TLV (type 500) next to its TagReportData, which carries a TV the
        // codec does not interpret (OpSpecID, 17) and a Custom.
        let body = [
            0x01, 0xf4, 0x00, 0x06, 0xde, 0xad, // unknown TLV 500
            0x00, 0xf0, 0x00, 0x1c, // TagReportData, 28
            0x8d, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, // EPC-96
            0x91, 0x00, 0x05, // OpSpecID (TV 17)
            0x03, 0xff, 0x00, 0x08, 0x00, 0x00, 0x65,
            0x1a, // Custom without a subtype: kept as unknown
        ];
        let message = Message::decode(&framed(msg_type::RO_ACCESS_REPORT, &body)).unwrap();
        let Body::RoAccessReport(report) = &message.body else {
            panic!("{message:?}");
        };
        assert_eq!(
            report.extra,
            vec![Param::Unknown {
                ty: 500,
                bytes: vec![0xde, 0xad]
            }]
        );
        assert_eq!(
            report.tags[0].epc.bytes(),
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        );
        assert_eq!(
            report.tags[0].extra,
            vec![
                Param::Unknown {
                    ty: 17,
                    bytes: vec![0, 5]
                },
                Param::Unknown {
                    ty: 1023,
                    bytes: vec![0, 0, 0x65, 0x1a]
                },
            ]
        );
        assert_eq!(Message::decode(&message.encode()), Ok(message));

        let custom = framed(msg_type::CUSTOM_MESSAGE, &[0, 0, 0x65, 0x1a, 21, 1, 2]);
        let message = Message::decode(&custom).unwrap();
        assert_eq!(
            message.body,
            Body::Unknown(vec![0, 0, 0x65, 0x1a, 21, 1, 2])
        );
        assert_eq!(message.encode(), custom);
    }

    #[test]
    fn invalid_utf8_never_grows() {
        // A description of 3 invalid bytes: replaced, and cut to fit its original 3 bytes.
        let body = [
            0x01, 0x1f, 0x00, 0x0b, 0x00, 0x64, 0x00, 0x03, 0xff, 0xfe, 0x41,
        ];
        let message = Message::decode(&framed(msg_type::ERROR_MESSAGE, &body)).unwrap();
        let description = &message.status().unwrap().description;
        assert!(description.len() <= 3, "{description:?}");
        assert_eq!(Message::decode(&message.encode()), Ok(message));
    }

    // Generators. Uninterpreted parameters use types no parent interprets, or they would land in a typed slot.

    fn param() -> impl Strategy<Value = Param> {
        prop_oneof![
            (any::<u32>(), any::<u32>(), vec(any::<u8>(), 0..6)).prop_map(
                |(vendor, subtype, data)| Param::Custom {
                    vendor,
                    subtype,
                    data
                }
            ),
            (400u16..1000, vec(any::<u8>(), 0..6))
                .prop_map(|(ty, bytes)| Param::Unknown { ty, bytes }),
            prop_oneof![Just((15u16, 2usize)), Just((17, 2)), Just((18, 4))]
                .prop_flat_map(|(ty, n)| vec(any::<u8>(), n)
                    .prop_map(move |bytes| Param::Unknown { ty, bytes })),
        ]
    }

    fn extra() -> impl Strategy<Value = Vec<Param>> {
        vec(param(), 0..2)
    }

    fn status() -> impl Strategy<Value = LlrpStatus> {
        let field = (any::<u16>(), any::<u16>())
            .prop_map(|(field_num, code)| FieldError { field_num, code });
        let leaf = (
            any::<u16>(),
            any::<u16>(),
            proptest::option::of(field.clone()),
            extra(),
        )
            .prop_map(
                |(parameter_type, code, field_error, extra)| ParameterError {
                    parameter_type,
                    code,
                    field_error,
                    parameter_error: None,
                    extra,
                },
            );
        let nested = leaf.prop_recursive(3, 6, 1, |inner| {
            (any::<u16>(), any::<u16>(), inner).prop_map(|(parameter_type, code, inner)| {
                ParameterError {
                    parameter_type,
                    code,
                    field_error: None,
                    parameter_error: Some(Box::new(inner)),
                    extra: vec![],
                }
            })
        });
        (
            any::<u16>(),
            "\\PC{0,12}",
            proptest::option::of(field),
            proptest::option::of(nested),
            extra(),
        )
            .prop_map(|(code, description, field_error, parameter_error, extra)| {
                LlrpStatus {
                    code,
                    description,
                    field_error,
                    parameter_error,
                    extra,
                }
            })
    }

    fn epc() -> impl Strategy<Value = Epc> {
        prop_oneof![
            any::<[u8; 12]>().prop_map(Epc::Epc96),
            (0u16..200).prop_flat_map(|bits| {
                vec(any::<u8>(), usize::from(bits).div_ceil(8))
                    .prop_map(move |bytes| Epc::Data { bits, bytes })
            }),
        ]
    }

    fn tag() -> impl Strategy<Value = TagReportData> {
        use proptest::option::of;
        (
            epc(),
            (
                of(any::<u32>()),
                of(any::<u16>()),
                of(any::<u16>()),
                of(any::<u16>()),
                of(any::<i8>()),
            ),
            (
                of(any::<u16>()),
                of(any::<u64>()),
                of(any::<u64>()),
                of(any::<u64>()),
                of(any::<u64>()),
            ),
            (
                of(any::<u16>()),
                of(any::<u16>()),
                of(any::<u16>()),
                of(any::<u32>()),
            ),
            extra(),
        )
            .prop_map(|(epc, a, b, c, extra)| TagReportData {
                epc,
                ro_spec_id: a.0,
                spec_index: a.1,
                inventory_parameter_spec_id: a.2,
                antenna_id: a.3,
                peak_rssi: a.4,
                channel_index: b.0,
                first_seen_utc: b.1,
                first_seen_uptime: b.2,
                last_seen_utc: b.3,
                last_seen_uptime: b.4,
                tag_seen_count: c.0,
                pc: c.1,
                crc: c.2,
                access_spec_id: c.3,
                extra,
            })
    }

    fn rospec() -> impl Strategy<Value = RoSpec> {
        let ai = (
            vec(any::<u16>(), 0..3),
            any::<u8>(),
            any::<u32>(),
            vec((any::<u16>(), any::<u8>()), 0..2),
            extra(),
        )
            .prop_map(|(antenna_ids, trigger, duration_ms, inv, extra)| AiSpec {
                antenna_ids,
                stop: AiSpecStopTrigger {
                    trigger,
                    duration_ms,
                    extra: vec![],
                },
                inventory: inv
                    .into_iter()
                    .map(|(id, protocol)| InventoryParameterSpec {
                        id,
                        protocol,
                        extra: vec![],
                    })
                    .collect(),
                extra,
            });
        let content = (
            any::<[bool; 10]>(),
            proptest::option::of(any::<(bool, bool)>()),
            extra(),
        )
            .prop_map(|(f, memory, extra)| TagReportContentSelector {
                ro_spec_id: f[0],
                spec_index: f[1],
                inventory_parameter_spec_id: f[2],
                antenna_id: f[3],
                channel_index: f[4],
                peak_rssi: f[5],
                first_seen: f[6],
                last_seen: f[7],
                tag_seen_count: f[8],
                access_spec_id: f[9],
                memory: memory.map(|(crc, pc)| C1g2EpcMemorySelector { crc, pc }),
                extra,
            });
        let report = (any::<u8>(), any::<u16>(), content, extra()).prop_map(
            |(trigger, n, content, extra)| RoReportSpec {
                trigger,
                n,
                content,
                extra,
            },
        );
        (
            (any::<u32>(), any::<u8>(), any::<u8>()),
            (any::<u8>(), extra(), any::<u8>(), any::<u32>(), extra()),
            vec(ai, 0..3),
            proptest::option::of(report),
            extra(),
        )
            .prop_map(
                |((id, priority, current_state), b, ai_specs, report, extra)| RoSpec {
                    id,
                    priority,
                    current_state,
                    boundary: RoBoundarySpec {
                        start: RoSpecStartTrigger {
                            trigger: b.0,
                            extra: b.1,
                        },
                        stop: RoSpecStopTrigger {
                            trigger: b.2,
                            duration_ms: b.3,
                            extra: vec![],
                        },
                        extra: b.4,
                    },
                    ai_specs,
                    report,
                    extra,
                },
            )
    }

    fn message() -> impl Strategy<Value = Message> {
        use msg_type as mt;
        use proptest::sample::select;
        let id = any::<u32>();
        let timestamp = prop_oneof![
            any::<u64>().prop_map(Timestamp::Utc),
            any::<u64>().prop_map(Timestamp::Uptime)
        ];
        prop_oneof![
            (
                select(vec![
                    mt::KEEPALIVE,
                    mt::KEEPALIVE_ACK,
                    mt::CLOSE_CONNECTION,
                    mt::GET_ROSPECS
                ]),
                id
            )
                .prop_map(|(ty, id)| Message {
                    msg_type: ty,
                    id,
                    body: Body::Empty
                }),
            (
                select(vec![mt::DELETE_ROSPEC, mt::START_ROSPEC, mt::ENABLE_ROSPEC]),
                id,
                any::<u32>()
            )
                .prop_map(|(ty, id, r)| Message::rospec_op(ty, id, r)),
            (id, rospec()).prop_map(|(id, spec)| Message::add_rospec(id, spec)),
            (
                id,
                any::<bool>(),
                proptest::option::of((any::<u8>(), any::<u32>())),
                extra()
            )
                .prop_map(|(id, reset, keepalive, extra)| Message {
                    msg_type: mt::SET_READER_CONFIG,
                    id,
                    body: Body::SetReaderConfig(SetReaderConfig {
                        reset_to_factory_default: reset,
                        keepalive: keepalive
                            .map(|(trigger, period_ms)| KeepaliveSpec { trigger, period_ms }),
                        extra,
                    }),
                }),
            (
                select(vec![
                    mt::ADD_ROSPEC_RESPONSE,
                    mt::CLOSE_CONNECTION_RESPONSE,
                    mt::ERROR_MESSAGE
                ]),
                id,
                status()
            )
                .prop_map(|(ty, id, s)| Message::response(ty, id, s)),
            (id, vec(tag(), 0..4), extra()).prop_map(|(id, tags, extra)| Message {
                msg_type: mt::RO_ACCESS_REPORT,
                id,
                body: Body::RoAccessReport(RoAccessReport { tags, extra }),
            }),
            (
                id,
                proptest::option::of(timestamp),
                proptest::option::of(any::<u16>()),
                any::<bool>(),
                extra()
            )
                .prop_map(
                    |(id, timestamp, connection_attempt, connection_close, extra)| Message {
                        msg_type: mt::READER_EVENT_NOTIFICATION,
                        id,
                        body: Body::ReaderEvent(ReaderEventNotificationData {
                            timestamp,
                            connection_attempt,
                            connection_close,
                            extra,
                        }),
                    }
                ),
            (
                select(vec![
                    mt::GET_READER_CAPABILITIES,
                    11,
                    40,
                    mt::CUSTOM_MESSAGE,
                    500
                ]),
                id,
                vec(any::<u8>(), 0..20)
            )
                .prop_map(|(ty, id, bytes)| Message {
                    msg_type: ty,
                    id,
                    body: Body::Unknown(bytes)
                }),
        ]
    }

    /// `data` cut at `cuts` (taken modulo its length).
    fn chunked(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([data.len()]) {
            out.push(data[prev..c].to_vec());
            prev = c;
        }
        out
    }

    /// Whatever decodes re-encodes to an equal message.
    fn assert_round_trip(result: &Result<Message, LlrpError>) -> Result<(), TestCaseError> {
        if let Ok(m) = result {
            prop_assert_eq!(&Message::decode(&m.encode()), &Ok(m.clone()));
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn round_trip(messages in vec(message(), 1..4), cuts in vec(any::<usize>(), 0..8)) {
            let stream: Vec<u8> = messages.iter().flat_map(Message::encode).collect();
            for m in &messages {
                prop_assert_eq!(&Message::decode(&m.encode()), &Ok(m.clone()));
            }
            let chunks = chunked(&stream, &cuts);
            let out = decode_chunks(chunks.iter().map(Vec::as_slice));
            let expected: Vec<_> = messages.into_iter().map(Ok).collect();
            prop_assert_eq!(out, expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..300), cuts in vec(any::<usize>(), 0..8)) {
            let chunks = chunked(&data, &cuts);
            let out = decode_chunks(chunks.iter().map(Vec::as_slice));
            prop_assert_eq!(&out, &decode_chunks([data.as_slice()]));
            for r in &out {
                assert_round_trip(r)?;
            }
        }

        #[test]
        fn arbitrary_bodies_never_panic(
            ty in prop_oneof![Just(30u16), Just(61), Just(63), Just(20), Just(3), Just(100), any::<u16>()],
            body in vec(prop_oneof![Just(0u8), Just(0x80), Just(0xf0), Just(0xf1), Just(0x01), any::<u8>()], 0..200),
        ) {
            let r = Message::decode(&framed(ty & 0x3ff, &body));
            if let Err(LlrpError::Malformed { error, .. }) = &r {
                prop_assert!(error.offset <= HEADER_LEN + body.len());
            }
            assert_round_trip(&r)?;
        }

        #[test]
        fn mutated_fixtures_never_panic(
            which in 0..fixtures::ALL.len(),
            flips in vec((any::<usize>(), any::<u8>()), 1..4),
        ) {
            let mut wire = bytes(fixtures::ALL[which].1);
            // Keep the header's version and length so the body parser is exercised.
            for (at, x) in flips {
                let at = 6 + at % (wire.len() - 6);
                wire[at] ^= x;
            }
            let mut d = Decoder::new();
            d.push(&wire);
            let r = d.next().expect("a whole message");
            assert_round_trip(&r)?;
        }
    }
}
