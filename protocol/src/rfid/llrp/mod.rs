//! EPCglobal LLRP 1.0.1 (Low Level Reader Protocol) over TCP, sans-IO: a message codec and a client session for
//! fixed readers (Impinj, Zebra, ...).
//!
//! - [`codec`]: the message header, typed bodies, [`Message::encode`], and a [`Decoder`] that frames a stream.
//! - [`params`]: TLV/TV parameters; the typed ones Dockhand reads and writes; the rest kept as [`Param`].
//! - [`session`]: [`LlrpSession`], one reader's handshake, report stream, keepalives and reconnects.
//!
//! The encoder writes both sides' messages, so a reader simulator can reuse it: READER_EVENT_NOTIFICATION,
//! RO_ACCESS_REPORT, KEEPALIVE and the *_RESPONSE messages as well as what the client sends.
//!
//! # Call order
//!
//! Nothing here opens a socket or reads a clock. The transport (the agent's `sources/llrp.rs`, or a test) owns the
//! TCP connection and a monotonic clock in milliseconds, and loops:
//!
//! 1. Drain [`LlrpSession::poll_action`]: on [`Action::Connect`] open a TCP connection to port 5084 and call
//!    [`LlrpSession::connected`] (or [`LlrpSession::disconnected`] if it fails); on [`Action::Close`] drop it.
//! 2. Drain [`LlrpSession::poll_transmit`] and write every buffer, whole, to the connection.
//! 3. Drain [`LlrpSession::poll_event`] (tags, state changes, reader errors).
//! 4. Sleep until bytes arrive ([`LlrpSession::handle_input`]), the connection drops
//!    ([`LlrpSession::disconnected`]), or [`LlrpSession::poll_timeout`] passes ([`LlrpSession::handle_timeout`]);
//!    then go back to 1. Every `handle_*` call can produce actions, transmits and events.
//!
//! [`LlrpSession::close`] shuts down gracefully; keep looping until [`LlrpSession::is_shut_down`].
//!
//! # Session flow
//!
//! ```text
//! Connect ─▶ TCP up ─▶ READER_EVENT_NOTIFICATION(ConnectionAttemptEvent)
//!              status ≠ Success ─▶ Close, back off
//!              Success ─▶ Event::Connected
//!   SET_READER_CONFIG(KeepaliveSpec periodic) ─▶ DELETE_ROSPEC(0 = all) ─▶ ADD_ROSPEC ─▶ ENABLE_ROSPEC ─▶ START_ROSPEC
//!              each waits for its *_RESPONSE with LLRPStatus success; a failure (or ERROR_MESSAGE) gives
//!              Event::ReaderError, then Close and back off; no response within the silence timeout: Close
//!   Event::Running (backoff reset) ─▶ RO_ACCESS_REPORT: one Event::Tag per TagReportData
//!                                     KEEPALIVE: KEEPALIVE_ACK with the same message id
//!                                     nothing for the silence timeout, ConnectionCloseEvent, a broken stream:
//!                                     Close, back off
//! back off: reconnect after backoff_min, doubling up to backoff_max, reset once an ROSpec runs
//! ```
//!
//! Tag reports and keepalives are handled in every connected state (a reader may still run an old ROSpec when we
//! connect). A malformed message is skipped with [`Event::BadMessage`] unless it is the one being waited for.
//!
//! # Wire format (LLRP 1.0.1 §15–16; all integers big-endian, bit fields most significant bit first)
//!
//! ```text
//! message    | rsvd:3 | ver:3 (=1) | type:10 | length:32 (whole message) | id:32 | body ...
//! TLV param  | rsvd:6 | type:10 (128..1023) | length:16 (whole parameter) | fields | sub-parameters ...
//! TV param   | 1 | type:7 (1..127) | value (fixed length per type, see params::tv_len)
//! u16v       | count:16 | count × u16          utf8v | byte count:16 | UTF-8
//! u1v        | bit count:16 | ⌈bits/8⌉ bytes  (EPCData's EPC)
//! ```
//!
//! A response's message id is its request's. Reserved bits are written as 0 and ignored when read.
//!
//! # Robustness
//!
//! - A message longer than the limit (1 MiB by default) is refused from its header, before it is buffered; it is
//!   fatal to the connection, as are a version other than 1 and a length below 10 bytes.
//! - Every parameter length is checked against its parent's: a child overflowing its parent, a TLV shorter than
//!   its header, a TLV with a TV type number, an unknown TV type (whose length cannot be known), a missing
//!   required parameter or nesting beyond [`params::MAX_DEPTH`] are errors for that message, never panics.
//! - Unknown TLV parameters and vendor Custom parameters (Impinj adds many) are skipped and kept verbatim.
//!
//! # Sources
//!
//! Facts were checked against the EPCglobal LLRP 1.0.1 standard (2007-08-13) as transcribed by the LLRP Toolkit's
//! binary definitions (`llrp-1x0-def.xml`, via llrpjs' `definitions/core/llrp-1x0-def.json`: message and
//! parameter numbers, field layouts, enumerations, status codes), Wireshark's `epan/dissectors/packet-llrp.c`
//! (header masks, TV lengths, u1v and utf8v encodings) and sllurp (framing by the header's length). No code
//! was copied.

pub mod codec;
pub mod params;
pub mod session;

#[cfg(test)]
mod fixtures;

pub use codec::{check, msg_type, msg_type_name, Body, Decoder, Header, LlrpError, Message};
pub use params::{
    param_type, status_code_name, Epc, LlrpStatus, Param, ParamError, ParamErrorKind,
    ReaderEventNotificationData, RoAccessReport, RoSpec, SetReaderConfig, TagReportData, Timestamp,
};
pub use session::{Action, DisconnectReason, Event, LlrpConfig, LlrpSession};
