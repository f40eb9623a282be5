//! LLRP parameters: the TLV/TV wire layer and the typed parameters Dockhand reads and writes.
//!
//! Every typed parameter keeps the parameters it does not interpret in an `extra` list ([`Param`]), so that a
//! vendor's Custom parameters are skipped, never fatal, and a decoded value re-encodes to an equal value. A typed
//! slot takes the first parameter of its type; a duplicate goes to `extra`. Bytes left over after a parameter's
//! fields and children are ignored. Encoding writes the typed slots in the specification's order, then `extra`.

use crate::rfid::{Millis, TagRead};

/// How deep parameters may nest inside a message. The deepest legitimate nesting Dockhand reads is four levels
/// (ADD_ROSPEC → ROSpec → ROReportSpec → TagReportContentSelector → C1G2EPCMemorySelector); recursive
/// ParameterErrors could otherwise nest until the stack overflows.
pub const MAX_DEPTH: usize = 16;

/// Parameter type numbers (LLRP 1.0.1 §16.2; TV types are below 128, TLV types 128 and above).
pub mod param_type {
    /// TV: AntennaID, u16.
    pub const ANTENNA_ID: u16 = 1;
    /// TV: FirstSeenTimestampUTC, u64 microseconds since the Unix epoch.
    pub const FIRST_SEEN_UTC: u16 = 2;
    /// TV: FirstSeenTimestampUptime, u64 microseconds since the reader booted.
    pub const FIRST_SEEN_UPTIME: u16 = 3;
    /// TV: LastSeenTimestampUTC.
    pub const LAST_SEEN_UTC: u16 = 4;
    /// TV: LastSeenTimestampUptime.
    pub const LAST_SEEN_UPTIME: u16 = 5;
    /// TV: PeakRSSI, s8 dBm.
    pub const PEAK_RSSI: u16 = 6;
    /// TV: ChannelIndex, u16.
    pub const CHANNEL_INDEX: u16 = 7;
    /// TV: TagSeenCount, u16.
    pub const TAG_SEEN_COUNT: u16 = 8;
    /// TV: ROSpecID, u32.
    pub const RO_SPEC_ID: u16 = 9;
    /// TV: InventoryParameterSpecID, u16.
    pub const INVENTORY_PARAMETER_SPEC_ID: u16 = 10;
    /// TV: C1G2_CRC, u16.
    pub const C1G2_CRC: u16 = 11;
    /// TV: C1G2_PC, u16.
    pub const C1G2_PC: u16 = 12;
    /// TV: EPC-96, 12 bytes.
    pub const EPC_96: u16 = 13;
    /// TV: SpecIndex, u16.
    pub const SPEC_INDEX: u16 = 14;
    /// TV: AccessSpecID, u32.
    pub const ACCESS_SPEC_ID: u16 = 16;
    /// UTCTimestamp, u64 microseconds since the Unix epoch.
    pub const UTC_TIMESTAMP: u16 = 128;
    /// Uptime, u64 microseconds since the reader booted.
    pub const UPTIME: u16 = 129;
    /// ROSpec.
    pub const RO_SPEC: u16 = 177;
    /// ROBoundarySpec.
    pub const RO_BOUNDARY_SPEC: u16 = 178;
    /// ROSpecStartTrigger.
    pub const RO_SPEC_START_TRIGGER: u16 = 179;
    /// ROSpecStopTrigger.
    pub const RO_SPEC_STOP_TRIGGER: u16 = 182;
    /// AISpec.
    pub const AI_SPEC: u16 = 183;
    /// AISpecStopTrigger.
    pub const AI_SPEC_STOP_TRIGGER: u16 = 184;
    /// InventoryParameterSpec.
    pub const INVENTORY_PARAMETER_SPEC: u16 = 186;
    /// KeepaliveSpec.
    pub const KEEPALIVE_SPEC: u16 = 220;
    /// ROReportSpec.
    pub const RO_REPORT_SPEC: u16 = 237;
    /// TagReportContentSelector.
    pub const TAG_REPORT_CONTENT_SELECTOR: u16 = 238;
    /// TagReportData.
    pub const TAG_REPORT_DATA: u16 = 240;
    /// EPCData: a bit count and the EPC, for EPCs that are not 96 bits long.
    pub const EPC_DATA: u16 = 241;
    /// ReaderEventNotificationData.
    pub const READER_EVENT_NOTIFICATION_DATA: u16 = 246;
    /// ConnectionAttemptEvent.
    pub const CONNECTION_ATTEMPT_EVENT: u16 = 256;
    /// ConnectionCloseEvent.
    pub const CONNECTION_CLOSE_EVENT: u16 = 257;
    /// LLRPStatus.
    pub const LLRP_STATUS: u16 = 287;
    /// FieldError.
    pub const FIELD_ERROR: u16 = 288;
    /// ParameterError.
    pub const PARAMETER_ERROR: u16 = 289;
    /// C1G2EPCMemorySelector.
    pub const C1G2_EPC_MEMORY_SELECTOR: u16 = 348;
    /// Custom: a vendor's parameter (vendor id, subtype, data).
    pub const CUSTOM: u16 = 1023;
}

use param_type as pt;

/// The value length of a TV parameter. A TV parameter carries no length, so an unknown TV type cannot be skipped.
/// Types 1..=18 are LLRP 1.0.1 (§16.2, Wireshark's `packet-llrp.c` table); 19 and 20 (C1G2 XPC words) are LLRP 1.1.
pub fn tv_len(ty: u8) -> Option<usize> {
    Some(match ty {
        1 | 7 | 8 | 10 | 11 | 12 | 14 | 15 | 17 | 19 | 20 => 2,
        2..=5 => 8,
        6 => 1,
        9 | 16 | 18 => 4,
        13 => 12,
        _ => return None,
    })
}

/// What is wrong with a message body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamErrorKind {
    /// A field runs past the end of its parameter or message.
    #[error("a field needs {need} bytes, {have} left")]
    Truncated {
        /// Bytes the field needs.
        need: usize,
        /// Bytes left in the enclosing parameter.
        have: usize,
    },
    /// A TLV parameter claims a length below its own 4-byte header.
    #[error("parameter {ty} claims length {len}, below its 4-byte header")]
    TlvTooShort {
        /// The parameter type.
        ty: u16,
        /// The length it claims.
        len: u16,
    },
    /// A parameter is longer than what is left of its parent.
    #[error("parameter {ty} of {len} bytes overflows its parent ({room} bytes left)")]
    Overflow {
        /// The parameter type.
        ty: u16,
        /// Its length, header included.
        len: usize,
        /// Bytes left in the parent.
        room: usize,
    },
    /// A TV parameter of a type whose length is unknown: the rest of the list cannot be read.
    #[error("unknown TV parameter type {0}")]
    UnknownTv(u8),
    /// A TLV parameter with a type number reserved for TV parameters (below 128).
    #[error("TLV parameter with TV type number {0}")]
    TlvTypeReserved(u16),
    /// A parameter the specification requires is absent.
    #[error("parameter {parent} lacks its required parameter {missing}")]
    Missing {
        /// The enclosing parameter (or message) type.
        parent: u16,
        /// The missing parameter type.
        missing: u16,
    },
    /// Parameters nest deeper than [`MAX_DEPTH`].
    #[error("parameters nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// A body decoding error, with the byte offset (from the start of the message) where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct ParamError {
    /// Offset from the start of the message.
    pub offset: usize,
    /// What is wrong.
    pub kind: ParamErrorKind,
}

/// A parameter Dockhand does not interpret, kept so that it survives re-encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// A vendor parameter (type 1023), such as Impinj's: skipped by the session.
    Custom {
        /// IANA private enterprise number of the vendor (Impinj: 25882).
        vendor: u32,
        /// The vendor's parameter subtype.
        subtype: u32,
        /// The rest of the parameter.
        data: Vec<u8>,
    },
    /// Any other parameter: its type and value bytes (after the TLV or TV header). A TV type's bytes must have the
    /// length [`tv_len`] gives.
    Unknown {
        /// The parameter type.
        ty: u16,
        /// The value bytes.
        bytes: Vec<u8>,
    },
}

/// A bounds-checked big-endian reader over part of a message. `base` is the offset of `buf[0]` in the message.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

/// One parameter as read from the wire: its type and a reader over its value.
#[derive(Debug, Clone)]
pub(crate) struct RawParam<'a> {
    pub ty: u16,
    /// Where the parameter's header starts, for error messages.
    pub offset: usize,
    pub value: Reader<'a>,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn error(&self, kind: ParamErrorKind) -> ParamError {
        ParamError {
            offset: self.offset(),
            kind,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ParamError> {
        if n > self.remaining() {
            return Err(self.error(ParamErrorKind::Truncated {
                need: n,
                have: self.remaining(),
            }));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ParamError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, ParamError> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, ParamError> {
        self.array().map(u16::from_be_bytes)
    }

    pub fn u32(&mut self) -> Result<u32, ParamError> {
        self.array().map(u32::from_be_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, ParamError> {
        self.array().map(u64::from_be_bytes)
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// `u16v`: a u16 count, then that many u16s.
    fn u16v(&mut self) -> Result<Vec<u16>, ParamError> {
        let n = usize::from(self.u16()?);
        let bytes = self.take(n * 2)?;
        Ok(bytes
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect())
    }

    /// `utf8v`: a u16 byte count, then UTF-8. Invalid UTF-8 is replaced lossily but never grows past the original
    /// byte count, so the string always re-encodes into the room it came from.
    fn utf8v(&mut self) -> Result<String, ParamError> {
        let n = usize::from(self.u16()?);
        let bytes = self.take(n)?;
        Ok(match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => {
                let mut s = String::from_utf8_lossy(bytes).into_owned();
                let mut end = n.min(s.len());
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
                s
            }
        })
    }

    /// `u1v`: a u16 bit count, then the bits in whole bytes.
    fn bits(&mut self) -> Result<(u16, Vec<u8>), ParamError> {
        let bits = self.u16()?;
        let bytes = self.take(usize::from(bits).div_ceil(8))?;
        Ok((bits, bytes.to_vec()))
    }

    /// The next parameter of a parameter list, or `None` at its end.
    pub fn param(&mut self) -> Result<Option<RawParam<'a>>, ParamError> {
        if self.remaining() == 0 {
            return Ok(None);
        }
        let offset = self.offset();
        let first = self.buf[self.pos];
        let (ty, header, len) = if first & 0x80 != 0 {
            let ty = first & 0x7f;
            let len = tv_len(ty).ok_or_else(|| self.error(ParamErrorKind::UnknownTv(ty)))?;
            (u16::from(ty), 1, 1 + len)
        } else {
            if self.remaining() < 4 {
                return Err(self.error(ParamErrorKind::Truncated {
                    need: 4,
                    have: self.remaining(),
                }));
            }
            let b = &self.buf[self.pos..];
            // 6 reserved bits, ignored as the specification asks of receivers.
            let ty = u16::from_be_bytes([b[0], b[1]]) & 0x03ff;
            let len = u16::from_be_bytes([b[2], b[3]]);
            if ty < 128 {
                return Err(self.error(ParamErrorKind::TlvTypeReserved(ty)));
            }
            if len < 4 {
                return Err(self.error(ParamErrorKind::TlvTooShort { ty, len }));
            }
            (ty, 4, usize::from(len))
        };
        if len > self.remaining() {
            return Err(self.error(ParamErrorKind::Overflow {
                ty,
                len,
                room: self.remaining(),
            }));
        }
        let bytes = &self.buf[self.pos + header..self.pos + len];
        let value = Reader::new(bytes, offset + header);
        self.pos += len;
        Ok(Some(RawParam { ty, offset, value }))
    }
}

impl RawParam<'_> {
    /// The parameter as an uninterpreted [`Param`].
    pub fn into_param(mut self) -> Param {
        let bytes = self.value.rest();
        if self.ty == pt::CUSTOM && bytes.len() >= 8 {
            let mut r = Reader::new(bytes, 0);
            if let (Ok(vendor), Ok(subtype)) = (r.u32(), r.u32()) {
                return Param::Custom {
                    vendor,
                    subtype,
                    data: r.rest().to_vec(),
                };
            }
        }
        Param::Unknown {
            ty: self.ty,
            bytes: bytes.to_vec(),
        }
    }

    fn error(&self, kind: ParamErrorKind) -> ParamError {
        ParamError {
            offset: self.offset,
            kind,
        }
    }
}

/// Reads the parameter list left in `r`, offering each parameter to `slot`: it returns `Ok(None)` when it took the
/// parameter, or gives it back to be kept in the returned `extra` list.
pub(crate) fn children<'a>(
    r: &mut Reader<'a>,
    depth: usize,
    mut slot: impl FnMut(RawParam<'a>) -> Result<Option<RawParam<'a>>, ParamError>,
) -> Result<Vec<Param>, ParamError> {
    if depth > MAX_DEPTH {
        return Err(r.error(ParamErrorKind::TooDeep));
    }
    let mut extra = Vec::new();
    while let Some(p) = r.param()? {
        if let Some(p) = slot(p)? {
            extra.push(p.into_param());
        }
    }
    Ok(extra)
}

/// Fills an empty `Option` slot with `decode(p)`, or gives the parameter back when the slot is already full.
fn fill<'a, T>(
    slot: &mut Option<T>,
    p: RawParam<'a>,
    decode: impl FnOnce(RawParam<'a>) -> Result<T, ParamError>,
) -> Result<Option<RawParam<'a>>, ParamError> {
    if slot.is_some() {
        return Ok(Some(p));
    }
    *slot = Some(decode(p)?);
    Ok(None)
}

/// A big-endian writer of LLRP fields and parameters.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn u16v(&mut self, v: &[u16]) {
        self.u16(saturate(v.len()));
        for &x in v.iter().take(usize::from(u16::MAX)) {
            self.u16(x);
        }
    }

    fn utf8v(&mut self, s: &str) {
        let mut end = s.len().min(usize::from(u16::MAX));
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u16(saturate(end));
        self.buf.extend_from_slice(&s.as_bytes()[..end]);
    }

    fn bits(&mut self, bits: u16, bytes: &[u8]) {
        self.u16(bits);
        let n = usize::from(bits).div_ceil(8);
        self.buf
            .extend(bytes.iter().copied().chain(std::iter::repeat(0)).take(n));
    }

    /// A TLV parameter: header, then whatever `body` writes, then the length patched in.
    pub fn tlv(&mut self, ty: u16, body: impl FnOnce(&mut Writer)) {
        let start = self.buf.len();
        self.u16(ty & 0x03ff);
        self.u16(0);
        body(self);
        let len = saturate(self.buf.len() - start);
        self.buf[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// A TV parameter's one-byte header; the caller writes the value.
    fn tv(&mut self, ty: u16) {
        // TV types are 7 bits; callers pass only the constants above.
        self.u8(0x80 | (ty & 0x7f) as u8);
    }

    fn tv_u16(&mut self, ty: u16, v: Option<u16>) {
        if let Some(v) = v {
            self.tv(ty);
            self.u16(v);
        }
    }

    fn tv_u32(&mut self, ty: u16, v: Option<u32>) {
        if let Some(v) = v {
            self.tv(ty);
            self.u32(v);
        }
    }

    fn tv_u64(&mut self, ty: u16, v: Option<u64>) {
        if let Some(v) = v {
            self.tv(ty);
            self.u64(v);
        }
    }

    pub fn params(&mut self, extra: &[Param]) {
        for p in extra {
            match p {
                Param::Custom {
                    vendor,
                    subtype,
                    data,
                } => self.tlv(pt::CUSTOM, |w| {
                    w.u32(*vendor);
                    w.u32(*subtype);
                    w.buf.extend_from_slice(data);
                }),
                Param::Unknown { ty, bytes } if *ty < 128 => {
                    self.tv(*ty);
                    self.buf.extend_from_slice(bytes);
                }
                Param::Unknown { ty, bytes } => self.tlv(*ty, |w| w.buf.extend_from_slice(bytes)),
            }
        }
    }
}

/// Lengths are 16 bits on the wire. Values built by decoding always fit; a hand-built parameter over 65 535 bytes
/// is written with a saturated (wrong) length, which the receiver rejects.
fn saturate(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// LLRPStatus (287): the outcome of a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LlrpStatus {
    /// 0 is success; see [`status_code_name`].
    pub code: u16,
    /// The reader's explanation, often empty on success.
    pub description: String,
    /// The field at fault, if the reader says.
    pub field_error: Option<FieldError>,
    /// The parameter at fault, if the reader says.
    pub parameter_error: Option<ParameterError>,
    /// Parameters not interpreted here.
    pub extra: Vec<Param>,
}

/// FieldError (288): which field of the message was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldError {
    /// The field's index, from 0.
    pub field_num: u16,
    /// A status code.
    pub code: u16,
}

/// ParameterError (289): which parameter was wrong, possibly down a chain of nested parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterError {
    /// The type of the parameter at fault.
    pub parameter_type: u16,
    /// A status code.
    pub code: u16,
    /// The field of that parameter at fault.
    pub field_error: Option<FieldError>,
    /// A parameter inside it at fault.
    pub parameter_error: Option<Box<ParameterError>>,
    /// Parameters not interpreted here.
    pub extra: Vec<Param>,
}

/// The name LLRP 1.0.1 gives a status code (§16.2.8.1), for logs.
pub fn status_code_name(code: u16) -> &'static str {
    match code {
        0 => "M_Success",
        100 => "M_ParameterError",
        101 => "M_FieldError",
        102 => "M_UnexpectedParameter",
        103 => "M_MissingParameter",
        104 => "M_DuplicateParameter",
        105 => "M_OverflowParameter",
        106 => "M_OverflowField",
        107 => "M_UnknownParameter",
        108 => "M_UnknownField",
        109 => "M_UnsupportedMessage",
        110 => "M_UnsupportedVersion",
        111 => "M_UnsupportedParameter",
        200 => "P_ParameterError",
        201 => "P_FieldError",
        202 => "P_UnexpectedParameter",
        203 => "P_MissingParameter",
        204 => "P_DuplicateParameter",
        205 => "P_OverflowParameter",
        206 => "P_OverflowField",
        207 => "P_UnknownParameter",
        208 => "P_UnknownField",
        209 => "P_UnsupportedParameter",
        300 => "A_Invalid",
        301 => "A_OutOfRange",
        401 => "R_DeviceError",
        _ => "unknown status",
    }
}

impl LlrpStatus {
    /// M_Success.
    pub const SUCCESS: u16 = 0;

    /// A success status with no description.
    pub fn success() -> Self {
        LlrpStatus::default()
    }

    /// A failure status with a description.
    pub fn error(code: u16, description: impl Into<String>) -> Self {
        LlrpStatus {
            code,
            description: description.into(),
            ..LlrpStatus::default()
        }
    }

    /// Whether the request succeeded.
    pub fn is_success(&self) -> bool {
        self.code == Self::SUCCESS
    }

    pub(crate) fn decode(p: RawParam<'_>, depth: usize) -> Result<Self, ParamError> {
        let mut r = p.value;
        let code = r.u16()?;
        let description = r.utf8v()?;
        let (mut field_error, mut parameter_error) = (None, None);
        let extra = children(&mut r, depth, |c| match c.ty {
            pt::FIELD_ERROR => fill(&mut field_error, c, FieldError::decode),
            pt::PARAMETER_ERROR => fill(&mut parameter_error, c, |c| {
                ParameterError::decode(c, depth + 1)
            }),
            _ => Ok(Some(c)),
        })?;
        Ok(LlrpStatus {
            code,
            description,
            field_error,
            parameter_error,
            extra,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.tlv(pt::LLRP_STATUS, |w| {
            w.u16(self.code);
            w.utf8v(&self.description);
            if let Some(f) = &self.field_error {
                f.encode(w);
            }
            if let Some(p) = &self.parameter_error {
                p.encode(w);
            }
            w.params(&self.extra);
        });
    }
}

impl FieldError {
    fn decode(p: RawParam<'_>) -> Result<Self, ParamError> {
        let mut r = p.value;
        Ok(FieldError {
            field_num: r.u16()?,
            code: r.u16()?,
        })
    }

    fn encode(&self, w: &mut Writer) {
        w.tlv(pt::FIELD_ERROR, |w| {
            w.u16(self.field_num);
            w.u16(self.code);
        });
    }
}

impl ParameterError {
    fn decode(p: RawParam<'_>, depth: usize) -> Result<Self, ParamError> {
        let mut r = p.value;
        let parameter_type = r.u16()?;
        let code = r.u16()?;
        let (mut field_error, mut parameter_error) = (None, None);
        let extra = children(&mut r, depth, |c| match c.ty {
            pt::FIELD_ERROR => fill(&mut field_error, c, FieldError::decode),
            pt::PARAMETER_ERROR => fill(&mut parameter_error, c, |c| {
                ParameterError::decode(c, depth + 1).map(Box::new)
            }),
            _ => Ok(Some(c)),
        })?;
        Ok(ParameterError {
            parameter_type,
            code,
            field_error,
            parameter_error,
            extra,
        })
    }

    fn encode(&self, w: &mut Writer) {
        w.tlv(pt::PARAMETER_ERROR, |w| {
            w.u16(self.parameter_type);
            w.u16(self.code);
            if let Some(f) = &self.field_error {
                f.encode(w);
            }
            if let Some(p) = &self.parameter_error {
                p.encode(w);
            }
            w.params(&self.extra);
        });
    }
}

/// A reader's timestamp (UTCTimestamp 128 or Uptime 129), in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    /// Microseconds since the Unix epoch, from a reader with a UTC clock.
    Utc(u64),
    /// Microseconds since the reader booted, from a reader without one.
    Uptime(u64),
}

/// ReaderEventNotificationData (246), the body of READER_EVENT_NOTIFICATION.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReaderEventNotificationData {
    /// When the event happened (required by the specification; tolerated when absent).
    pub timestamp: Option<Timestamp>,
    /// ConnectionAttemptEvent (256) status: 0 success, 1 a reader-initiated connection already exists, 2 a
    /// client-initiated one does, 3 another failure, 4 another connection was attempted.
    pub connection_attempt: Option<u16>,
    /// ConnectionCloseEvent (257): the reader is closing the connection.
    pub connection_close: bool,
    /// The other events (ROSpecEvent, AntennaEvent, ...) and vendor parameters, not interpreted here.
    pub extra: Vec<Param>,
}

impl ReaderEventNotificationData {
    /// ConnectionAttemptEvent status: the connection is accepted.
    pub const CONNECTION_SUCCESS: u16 = 0;

    pub(crate) fn decode(p: RawParam<'_>, depth: usize) -> Result<Self, ParamError> {
        let mut r = p.value;
        let mut out = ReaderEventNotificationData::default();
        let (mut timestamp, mut attempt, mut close) = (None, None, None);
        out.extra = children(&mut r, depth, |c| match c.ty {
            pt::UTC_TIMESTAMP => fill(&mut timestamp, c, |c| {
                Ok(Timestamp::Utc(c.value.clone().u64()?))
            }),
            pt::UPTIME => fill(&mut timestamp, c, |c| {
                Ok(Timestamp::Uptime(c.value.clone().u64()?))
            }),
            pt::CONNECTION_ATTEMPT_EVENT => fill(&mut attempt, c, |c| c.value.clone().u16()),
            pt::CONNECTION_CLOSE_EVENT => fill(&mut close, c, |_| Ok(())),
            _ => Ok(Some(c)),
        })?;
        out.timestamp = timestamp;
        out.connection_attempt = attempt;
        out.connection_close = close.is_some();
        Ok(out)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.tlv(pt::READER_EVENT_NOTIFICATION_DATA, |w| {
            match self.timestamp {
                Some(Timestamp::Utc(us)) => w.tlv(pt::UTC_TIMESTAMP, |w| w.u64(us)),
                Some(Timestamp::Uptime(us)) => w.tlv(pt::UPTIME, |w| w.u64(us)),
                None => {}
            }
            if let Some(status) = self.connection_attempt {
                w.tlv(pt::CONNECTION_ATTEMPT_EVENT, |w| w.u16(status));
            }
            if self.connection_close {
                w.tlv(pt::CONNECTION_CLOSE_EVENT, |_| {});
            }
            w.params(&self.extra);
        });
    }
}

/// A tag's EPC as a report carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Epc {
    /// EPC-96 (TV 13): the common 96-bit EPC.
    Epc96([u8; 12]),
    /// EPCData (241): any length, given in bits; `bytes` holds `bits.div_ceil(8)` bytes (the encoder pads or cuts
    /// to that).
    Data {
        /// The EPC length in bits.
        bits: u16,
        /// The EPC, most significant bit first.
        bytes: Vec<u8>,
    },
}

impl Epc {
    /// The EPC bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Epc::Epc96(b) => b,
            Epc::Data { bytes, .. } => bytes,
        }
    }

    /// The EPC of these bytes: EPC-96 for 12 bytes, EPCData otherwise (lengths beyond 8 191 bytes are cut).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match <[u8; 12]>::try_from(bytes) {
            Ok(b) => Epc::Epc96(b),
            Err(_) => {
                let bytes = &bytes[..bytes.len().min(8191)];
                Epc::Data {
                    bits: saturate(bytes.len() * 8),
                    bytes: bytes.to_vec(),
                }
            }
        }
    }
}

/// TagReportData (240): one tag in an RO_ACCESS_REPORT. The optional fields are present when the ROSpec's
/// TagReportContentSelector enabled them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagReportData {
    /// The EPC (required).
    pub epc: Epc,
    /// ROSpecID (TV 9).
    pub ro_spec_id: Option<u32>,
    /// SpecIndex (TV 14).
    pub spec_index: Option<u16>,
    /// InventoryParameterSpecID (TV 10).
    pub inventory_parameter_spec_id: Option<u16>,
    /// AntennaID (TV 1), 1-based.
    pub antenna_id: Option<u16>,
    /// PeakRSSI (TV 6), dBm.
    pub peak_rssi: Option<i8>,
    /// ChannelIndex (TV 7).
    pub channel_index: Option<u16>,
    /// FirstSeenTimestampUTC (TV 2), microseconds since the Unix epoch.
    pub first_seen_utc: Option<u64>,
    /// FirstSeenTimestampUptime (TV 3).
    pub first_seen_uptime: Option<u64>,
    /// LastSeenTimestampUTC (TV 4).
    pub last_seen_utc: Option<u64>,
    /// LastSeenTimestampUptime (TV 5).
    pub last_seen_uptime: Option<u64>,
    /// TagSeenCount (TV 8).
    pub tag_seen_count: Option<u16>,
    /// C1G2_PC (TV 12): the tag's protocol-control word.
    pub pc: Option<u16>,
    /// C1G2_CRC (TV 11).
    pub crc: Option<u16>,
    /// AccessSpecID (TV 16).
    pub access_spec_id: Option<u32>,
    /// OpSpec results, vendor parameters and the like, not interpreted here.
    pub extra: Vec<Param>,
}

impl TagReportData {
    /// A report of `epc` with nothing else.
    pub fn new(epc: Epc) -> Self {
        TagReportData {
            epc,
            ro_spec_id: None,
            spec_index: None,
            inventory_parameter_spec_id: None,
            antenna_id: None,
            peak_rssi: None,
            channel_index: None,
            first_seen_utc: None,
            first_seen_uptime: None,
            last_seen_utc: None,
            last_seen_uptime: None,
            tag_seen_count: None,
            pc: None,
            crc: None,
            access_spec_id: None,
            extra: Vec::new(),
        }
    }

    /// The [`TagRead`] for this report, received at `at`: antenna 0 when the reader did not say which, count 1
    /// when it did not count.
    pub fn to_tag_read(&self, at: Millis) -> TagRead {
        TagRead {
            epc: self.epc.bytes().to_vec(),
            pc: self.pc,
            antenna: self.antenna_id.unwrap_or(0),
            rssi: self.peak_rssi.map(i16::from),
            at,
            count: self.tag_seen_count.map_or(1, u32::from),
        }
    }

    pub(crate) fn decode(p: RawParam<'_>, depth: usize) -> Result<Self, ParamError> {
        let at = p.offset;
        let mut r = p.value;
        let mut epc = None;
        let mut t = TagReportData::new(Epc::Epc96([0; 12]));
        let u16_of = |c: RawParam<'_>| c.value.clone().u16();
        let u32_of = |c: RawParam<'_>| c.value.clone().u32();
        let u64_of = |c: RawParam<'_>| c.value.clone().u64();
        let extra = children(&mut r, depth, |c| match c.ty {
            pt::EPC_96 => fill(&mut epc, c, |mut c| {
                let b = c.value.array::<12>()?;
                Ok(Epc::Epc96(b))
            }),
            pt::EPC_DATA => fill(&mut epc, c, |mut c| {
                let (bits, bytes) = c.value.bits()?;
                Ok(Epc::Data { bits, bytes })
            }),
            pt::RO_SPEC_ID => fill(&mut t.ro_spec_id, c, u32_of),
            pt::SPEC_INDEX => fill(&mut t.spec_index, c, u16_of),
            pt::INVENTORY_PARAMETER_SPEC_ID => fill(&mut t.inventory_parameter_spec_id, c, u16_of),
            pt::ANTENNA_ID => fill(&mut t.antenna_id, c, u16_of),
            pt::PEAK_RSSI => fill(&mut t.peak_rssi, c, |mut c| {
                Ok(i8::from_be_bytes([c.value.u8()?]))
            }),
            pt::CHANNEL_INDEX => fill(&mut t.channel_index, c, u16_of),
            pt::FIRST_SEEN_UTC => fill(&mut t.first_seen_utc, c, u64_of),
            pt::FIRST_SEEN_UPTIME => fill(&mut t.first_seen_uptime, c, u64_of),
            pt::LAST_SEEN_UTC => fill(&mut t.last_seen_utc, c, u64_of),
            pt::LAST_SEEN_UPTIME => fill(&mut t.last_seen_uptime, c, u64_of),
            pt::TAG_SEEN_COUNT => fill(&mut t.tag_seen_count, c, u16_of),
            pt::C1G2_PC => fill(&mut t.pc, c, u16_of),
            pt::C1G2_CRC => fill(&mut t.crc, c, u16_of),
            pt::ACCESS_SPEC_ID => fill(&mut t.access_spec_id, c, u32_of),
            _ => Ok(Some(c)),
        })?;
        t.extra = extra;
        t.epc = epc.ok_or(ParamError {
            offset: at,
            kind: ParamErrorKind::Missing {
                parent: pt::TAG_REPORT_DATA,
                missing: pt::EPC_DATA,
            },
        })?;
        Ok(t)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.tlv(pt::TAG_REPORT_DATA, |w| {
            match &self.epc {
                Epc::Epc96(b) => {
                    w.tv(pt::EPC_96);
                    w.buf.extend_from_slice(b);
                }
                Epc::Data { bits, bytes } => w.tlv(pt::EPC_DATA, |w| w.bits(*bits, bytes)),
            }
            w.tv_u32(pt::RO_SPEC_ID, self.ro_spec_id);
            w.tv_u16(pt::SPEC_INDEX, self.spec_index);
            w.tv_u16(
                pt::INVENTORY_PARAMETER_SPEC_ID,
                self.inventory_parameter_spec_id,
            );
            w.tv_u16(pt::ANTENNA_ID, self.antenna_id);
            if let Some(rssi) = self.peak_rssi {
                w.tv(pt::PEAK_RSSI);
                w.buf.extend_from_slice(&rssi.to_be_bytes());
            }
            w.tv_u16(pt::CHANNEL_INDEX, self.channel_index);
            w.tv_u64(pt::FIRST_SEEN_UTC, self.first_seen_utc);
            w.tv_u64(pt::FIRST_SEEN_UPTIME, self.first_seen_uptime);
            w.tv_u64(pt::LAST_SEEN_UTC, self.last_seen_utc);
            w.tv_u64(pt::LAST_SEEN_UPTIME, self.last_seen_uptime);
            w.tv_u16(pt::TAG_SEEN_COUNT, self.tag_seen_count);
            w.tv_u16(pt::C1G2_PC, self.pc);
            w.tv_u16(pt::C1G2_CRC, self.crc);
            w.tv_u32(pt::ACCESS_SPEC_ID, self.access_spec_id);
            w.params(&self.extra);
        });
    }
}

/// ROSpec (177): what to inventory, when, and how to report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoSpec {
    /// The ROSpec's id; 0 is reserved ("all ROSpecs").
    pub id: u32,
    /// 0 (highest) to 7.
    pub priority: u8,
    /// 0 disabled, 1 inactive, 2 active; ADD_ROSPEC requires disabled.
    pub current_state: u8,
    /// When it starts and stops.
    pub boundary: RoBoundarySpec,
    /// Its antenna inventories.
    pub ai_specs: Vec<AiSpec>,
    /// How it reports (the reader's default when absent).
    pub report: Option<RoReportSpec>,
    /// RFSurveySpecs, vendor parameters: not interpreted here.
    pub extra: Vec<Param>,
}

/// ROBoundarySpec (178).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoBoundarySpec {
    /// ROSpecStartTrigger.
    pub start: RoSpecStartTrigger,
    /// ROSpecStopTrigger.
    pub stop: RoSpecStopTrigger,
    /// Parameters not interpreted here.
    pub extra: Vec<Param>,
}

/// ROSpecStartTrigger (179).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoSpecStartTrigger {
    /// 0 null (START_ROSPEC starts it), 1 immediate, 2 periodic, 3 GPI.
    pub trigger: u8,
    /// The PeriodicTriggerValue or GPITriggerValue, not interpreted here.
    pub extra: Vec<Param>,
}

/// ROSpecStopTrigger (182).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoSpecStopTrigger {
    /// 0 null (runs until STOP_ROSPEC), 1 duration, 2 GPI with timeout.
    pub trigger: u8,
    /// Duration in milliseconds, for trigger 1.
    pub duration_ms: u32,
    /// The GPITriggerValue, not interpreted here.
    pub extra: Vec<Param>,
}

/// AISpec (183): an inventory over a set of antennas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiSpec {
    /// The antennas; `[0]` means all of them.
    pub antenna_ids: Vec<u16>,
    /// When the inventory stops.
    pub stop: AiSpecStopTrigger,
    /// The air protocol settings.
    pub inventory: Vec<InventoryParameterSpec>,
    /// Parameters not interpreted here.
    pub extra: Vec<Param>,
}

/// AISpecStopTrigger (184).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiSpecStopTrigger {
    /// 0 null (runs as long as the ROSpec), 1 duration, 2 GPI with timeout, 3 tag observation.
    pub trigger: u8,
    /// Duration in milliseconds, for trigger 1.
    pub duration_ms: u32,
    /// GPITriggerValue or TagObservationTrigger, not interpreted here.
    pub extra: Vec<Param>,
}

/// InventoryParameterSpec (186).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryParameterSpec {
    /// Its id, non-zero.
    pub id: u16,
    /// The air protocol: 1 is EPCglobal Class 1 Gen 2.
    pub protocol: u8,
    /// AntennaConfigurations and vendor parameters, not interpreted here.
    pub extra: Vec<Param>,
}

/// ROReportSpec (237).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoReportSpec {
    /// 0 none, 1 upon N tags or end of AISpec, 2 upon N tags or end of ROSpec.
    pub trigger: u8,
    /// N; 0 means no limit (report only at the end).
    pub n: u16,
    /// What each TagReportData carries.
    pub content: TagReportContentSelector,
    /// Parameters not interpreted here.
    pub extra: Vec<Param>,
}

/// TagReportContentSelector (238): which optional fields the reader puts in each TagReportData.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagReportContentSelector {
    /// ROSpecID.
    pub ro_spec_id: bool,
    /// SpecIndex.
    pub spec_index: bool,
    /// InventoryParameterSpecID.
    pub inventory_parameter_spec_id: bool,
    /// AntennaID.
    pub antenna_id: bool,
    /// ChannelIndex.
    pub channel_index: bool,
    /// PeakRSSI.
    pub peak_rssi: bool,
    /// FirstSeenTimestamp.
    pub first_seen: bool,
    /// LastSeenTimestamp.
    pub last_seen: bool,
    /// TagSeenCount.
    pub tag_seen_count: bool,
    /// AccessSpecID.
    pub access_spec_id: bool,
    /// C1G2EPCMemorySelector (348): report the tag's CRC and PC words too.
    pub memory: Option<C1g2EpcMemorySelector>,
    /// Parameters not interpreted here.
    pub extra: Vec<Param>,
}

/// C1G2EPCMemorySelector (348).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct C1g2EpcMemorySelector {
    /// Report C1G2_CRC.
    pub crc: bool,
    /// Report C1G2_PC.
    pub pc: bool,
}

impl RoSpec {
    /// ROSpec state: disabled.
    pub const DISABLED: u8 = 0;

    pub(crate) fn decode(p: RawParam<'_>, depth: usize) -> Result<Self, ParamError> {
        let mut r = p.value.clone();
        let id = r.u32()?;
        let priority = r.u8()?;
        let current_state = r.u8()?;
        let (mut boundary, mut report, mut ai_specs) = (None, None, Vec::new());
        let extra = children(&mut r, depth, |c| match c.ty {
            pt::RO_BOUNDARY_SPEC => {
                fill(&mut boundary, c, |c| RoBoundarySpec::decode(c, depth + 1))
            }
            pt::AI_SPEC => {
                ai_specs.push(AiSpec::decode(c, depth + 1)?);
                Ok(None)
            }
            pt::RO_REPORT_SPEC => fill(&mut report, c, |c| RoReportSpec::decode(c, depth + 1)),
            _ => Ok(Some(c)),
        })?;
        Ok(RoSpec {
            id,
            priority,
            current_state,
            boundary: boundary
                .ok_or_else(|| p.error(missing(pt::RO_SPEC, pt::RO_BOUNDARY_SPEC)))?,
            ai_specs,
            report,
            extra,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.tlv(pt::RO_SPEC, |w| {
            w.u32(self.id);
            w.u8(self.priority);
            w.u8(self.current_state);
            self.boundary.encode(w);
            for ai in &self.ai_specs {
                ai.encode(w);
            }
            if let Some(report) = &self.report {
                report.encode(w);
            }
            w.params(&self.extra);
        });
    }
}

fn missing(parent: u16, missing: u16) -> ParamErrorKind {
    ParamErrorKind::Missing { parent, missing }
}

impl RoBoundarySpec {
    fn decode(p: RawParam<'_>, depth: usize) -> Result<Self, ParamError> {
        let mut r = p.value.clone();
        let (mut start, mut stop) = (None, None);
        let extra = children(&mut r, depth, |c| match c.ty {
            pt::RO_SPEC_START_TRIGGER => fill(&mut start, c, |c| {
                let mut r = c.value;
                let trigger = r.u8()?;
                let extra = children(&mut r, depth + 1, |c| Ok(Some(c)))?;
                Ok(RoSpecStartTrigger { trigger, extra })
            }),
            pt::RO_SPEC_STOP_TRIGGER => fill(&mut stop, c, |c| {
                let mut r = c.value;
                let trigger = r.u8()?;
                let duration_ms = r.u32()?;
                let extra = children(&mut r, depth + 1, |c| Ok(Some(c)))?;
                Ok(RoSpecStopTrigger {
                    trigger,
                    duration_ms,
                    extra,
                })
            }),
            _ => Ok(Some(c)),
        })?;
        let parent = pt::RO_BOUNDARY_SPEC;
        Ok(RoBoundarySpec {
            start: start.ok_or_else(|| p.error(missing(parent, pt::RO_SPEC_START_TRIGGER)))?,
            stop: stop.ok_or_else(|| p.error(missing(parent, pt::RO_SPEC_STOP_TRIGGER)))?,
            extra,
        })
    }

    fn encode(&self, w: &mut Writer) {
        w.tlv(pt::RO_BOUNDARY_SPEC, |w| {
            w.tlv(pt::RO_SPEC_START_TRIGGER, |w| {
                w.u8(self.start.trigger);
                w.params(&self.start.extra);
            });
            w.tlv(pt::RO_SPEC_STOP_TRIGGER, |w| {
                w.u8(self.stop.trigger);
                w.u32(self.stop.duration_ms);
                w.params(&self.stop.extra);
            });
            w.params(&self.extra);
        });
    }
}

impl AiSpec {
    fn decode(p: RawParam<'_>, depth: usize) -> Result<Self, ParamError> {
        let mut r = p.value.clone();
        let antenna_ids = r.u16v()?;
        let (mut stop, mut inventory) = (None, Vec::new());
        let extra = children(&mut r, depth, |c| match c.ty {
            pt::AI_SPEC_STOP_TRIGGER => fill(&mut stop, c, |c| {
                let mut r = c.value;
                let trigger = r.u8()?;
                let duration_ms = r.u32()?;
                let extra = children(&mut r, depth + 1, |c| Ok(Some(c)))?;
                Ok(AiSpecStopTrigger {
                    trigger,
                    duration_ms,
                    extra,
                })
            }),
            pt::INVENTORY_PARAMETER_SPEC => {
                let mut r = c.value;
                let id = r.u16()?;
                let protocol = r.u8()?;
                let extra = children(&mut r, depth + 1, |c| Ok(Some(c)))?;
                inventory.push(InventoryParameterSpec {
                    id,
                    protocol,
                    extra,
                });
                Ok(None)
            }
            _ => Ok(Some(c)),
        })?;
        Ok(AiSpec {
            antenna_ids,
            stop: stop.ok_or_else(|| p.error(missing(pt::AI_SPEC, pt::AI_SPEC_STOP_TRIGGER)))?,
            inventory,
            extra,
        })
    }

    fn encode(&self, w: &mut Writer) {
        w.tlv(pt::AI_SPEC, |w| {
            w.u16v(&self.antenna_ids);
            w.tlv(pt::AI_SPEC_STOP_TRIGGER, |w| {
                w.u8(self.stop.trigger);
                w.u32(self.stop.duration_ms);
                w.params(&self.stop.extra);
            });
            for inv in &self.inventory {
                w.tlv(pt::INVENTORY_PARAMETER_SPEC, |w| {
                    w.u16(inv.id);
                    w.u8(inv.protocol);
                    w.params(&inv.extra);
                });
            }
            w.params(&self.extra);
        });
    }
}

/// The ten enable bits of TagReportContentSelector, most significant first, then 6 reserved bits.
const CONTENT_BITS: u32 = 10;

impl RoReportSpec {
    fn decode(p: RawParam<'_>, depth: usize) -> Result<Self, ParamError> {
        let mut r = p.value.clone();
        let trigger = r.u8()?;
        let n = r.u16()?;
        let mut content = None;
        let extra = children(&mut r, depth, |c| match c.ty {
            pt::TAG_REPORT_CONTENT_SELECTOR => fill(&mut content, c, |c| {
                TagReportContentSelector::decode(c, depth + 1)
            }),
            _ => Ok(Some(c)),
        })?;
        let parent = pt::RO_REPORT_SPEC;
        Ok(RoReportSpec {
            trigger,
            n,
            content: content
                .ok_or_else(|| p.error(missing(parent, pt::TAG_REPORT_CONTENT_SELECTOR)))?,
            extra,
        })
    }

    fn encode(&self, w: &mut Writer) {
        w.tlv(pt::RO_REPORT_SPEC, |w| {
            w.u8(self.trigger);
            w.u16(self.n);
            self.content.encode(w);
            w.params(&self.extra);
        });
    }
}

impl TagReportContentSelector {
    fn flags(&self) -> [bool; CONTENT_BITS as usize] {
        [
            self.ro_spec_id,
            self.spec_index,
            self.inventory_parameter_spec_id,
            self.antenna_id,
            self.channel_index,
            self.peak_rssi,
            self.first_seen,
            self.last_seen,
            self.tag_seen_count,
            self.access_spec_id,
        ]
    }

    fn decode(p: RawParam<'_>, depth: usize) -> Result<Self, ParamError> {
        let mut r = p.value;
        let bits = r.u16()?;
        let on = |i: u32| bits & (0x8000 >> i) != 0;
        let mut memory = None;
        let extra = children(&mut r, depth, |c| match c.ty {
            pt::C1G2_EPC_MEMORY_SELECTOR => fill(&mut memory, c, |mut c| {
                let b = c.value.u8()?;
                Ok(C1g2EpcMemorySelector {
                    crc: b & 0x80 != 0,
                    pc: b & 0x40 != 0,
                })
            }),
            _ => Ok(Some(c)),
        })?;
        Ok(TagReportContentSelector {
            ro_spec_id: on(0),
            spec_index: on(1),
            inventory_parameter_spec_id: on(2),
            antenna_id: on(3),
            channel_index: on(4),
            peak_rssi: on(5),
            first_seen: on(6),
            last_seen: on(7),
            tag_seen_count: on(8),
            access_spec_id: on(9),
            memory,
            extra,
        })
    }

    fn encode(&self, w: &mut Writer) {
        w.tlv(pt::TAG_REPORT_CONTENT_SELECTOR, |w| {
            let bits = self
                .flags()
                .iter()
                .zip(0..CONTENT_BITS)
                .filter(|(on, _)| **on)
                .fold(0u16, |acc, (_, i)| acc | (0x8000 >> i));
            w.u16(bits);
            if let Some(m) = self.memory {
                w.tlv(pt::C1G2_EPC_MEMORY_SELECTOR, |w| {
                    w.u8(u8::from(m.crc) << 7 | u8::from(m.pc) << 6);
                });
            }
            w.params(&self.extra);
        });
    }
}

/// KeepaliveSpec (220): how often the reader sends KEEPALIVE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveSpec {
    /// 0 null (no keepalives), 1 periodic.
    pub trigger: u8,
    /// The period in milliseconds, for trigger 1.
    pub period_ms: u32,
}

impl KeepaliveSpec {
    /// Trigger: periodic.
    pub const PERIODIC: u8 = 1;

    fn decode(p: RawParam<'_>) -> Result<Self, ParamError> {
        let mut r = p.value;
        Ok(KeepaliveSpec {
            trigger: r.u8()?,
            period_ms: r.u32()?,
        })
    }

    fn encode(&self, w: &mut Writer) {
        w.tlv(pt::KEEPALIVE_SPEC, |w| {
            w.u8(self.trigger);
            w.u32(self.period_ms);
        });
    }
}

/// The body of SET_READER_CONFIG: Dockhand only sets the keepalive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetReaderConfig {
    /// Restore factory settings before applying the rest.
    pub reset_to_factory_default: bool,
    /// KeepaliveSpec.
    pub keepalive: Option<KeepaliveSpec>,
    /// Antenna, event and report configuration, vendor parameters: not interpreted here.
    pub extra: Vec<Param>,
}

impl SetReaderConfig {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, ParamError> {
        // ResetToFactoryDefault is the top bit; 7 reserved bits follow.
        let reset_to_factory_default = r.u8()? & 0x80 != 0;
        let mut keepalive = None;
        let extra = children(r, 1, |c| match c.ty {
            pt::KEEPALIVE_SPEC => fill(&mut keepalive, c, KeepaliveSpec::decode),
            _ => Ok(Some(c)),
        })?;
        Ok(SetReaderConfig {
            reset_to_factory_default,
            keepalive,
            extra,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(u8::from(self.reset_to_factory_default) << 7);
        if let Some(k) = &self.keepalive {
            k.encode(w);
        }
        w.params(&self.extra);
    }
}

/// The body of RO_ACCESS_REPORT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoAccessReport {
    /// The tags, in the reader's order.
    pub tags: Vec<TagReportData>,
    /// RFSurveyReportData and vendor parameters, not interpreted here.
    pub extra: Vec<Param>,
}

impl RoAccessReport {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, ParamError> {
        let mut tags = Vec::new();
        let extra = children(r, 1, |c| match c.ty {
            pt::TAG_REPORT_DATA => {
                tags.push(TagReportData::decode(c, 2)?);
                Ok(None)
            }
            _ => Ok(Some(c)),
        })?;
        Ok(RoAccessReport { tags, extra })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        for t in &self.tags {
            t.encode(w);
        }
        w.params(&self.extra);
    }
}
