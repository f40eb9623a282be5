//! Dockhand's sans-IO protocol code, shared by the agent and the server.
//!
//! Nothing here touches a socket, a file or a clock: bytes and `now` go in, typed values or typed errors come out.
//!
//! - [`sync`]: the versioned sync wire types (DESIGN §5).
//! - [`scan`]: serial scanner framing and AIM symbology identifiers.
//! - [`gs1`]: GS1 element strings: raw elements first, a typed item second.
//! - [`command`]: `DH:` command barcodes and `LOC:` locations (DESIGN §6).
//! - [`hid`]: USB HID POS and keyboard-wedge report decoding.
//! - [`decode`]: one scan in, a typed [`decode::Scan`] out; what `dockhand-agent decode` prints.
//! - [`epc`]: the EPC Tag Data Standard: binary EPCs to and from URIs and GS1 element strings.
//! - [`rfid`]: UHF reader protocols (R2000 serial, LLRP) and read smoothing.

pub mod command;
pub mod decode;
pub mod epc;
pub mod gs1;
pub mod hid;
pub mod rfid;
pub mod scan;
pub mod sync;
