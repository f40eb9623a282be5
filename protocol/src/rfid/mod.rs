//! UHF RFID: reader wire protocols and read smoothing (DESIGN §7), sans-IO.
//!
//! Every reader protocol turns bytes from its transport into [`TagRead`]s; smoothing turns a flood of reads into
//! one arrival and one departure per tag pass, with a direction. Time is the caller's monotonic clock in
//! milliseconds ([`Millis`]), passed in: nothing here reads a clock.
//!
//! - [`r2000`]: the widespread Impinj-R2000-module "0xA0" serial protocol (frame, session).
//! - [`llrp`]: EPCglobal LLRP 1.0.1 over TCP (message codec, client session).
//! - [`smooth`]: per-EPC pass detection, per-antenna statistics, direction, the audit ring.

pub mod llrp;
pub mod r2000;
pub mod smooth;

/// Milliseconds on the caller's monotonic clock (e.g. since the agent started).
pub type Millis = u64;

/// One tag observation reported by a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRead {
    /// The EPC bank contents after the PC word (usually 12 bytes for a 96-bit EPC).
    pub epc: Vec<u8>,
    /// The tag's protocol-control word, when the reader reports it.
    pub pc: Option<u16>,
    /// The antenna port that saw it, 1-based as readers number them.
    pub antenna: u16,
    /// Received signal strength in dBm, when reported.
    pub rssi: Option<i16>,
    /// When the read happened on the caller's clock (the time the report was received, unless the protocol gives
    /// a better one the session can map).
    pub at: Millis,
    /// How many times the reader saw the tag for this report (LLRP TagSeenCount; 1 for per-read protocols).
    pub count: u32,
}

/// Lowercase hex of bytes, as EPCs are written in logs, movements and the audit dump.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
