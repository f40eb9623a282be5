//! The "0xA0" serial protocol of Impinj-R2000-based reader modules, sans-IO.
//!
//! Vendors call it the "UHF RFID Reader Serial Interface Protocol" (Chafon, Yanzeo, IND903, YR8900 and many
//! unbranded modules speak it over RS-232, RS-485, USB serial or a TCP bridge). Three layers, each usable alone:
//!
//! - [`frame`]: bytes ⇄ frames. A cheap [`check`] says whether a whole valid frame starts a buffer
//!   ([`CheckError::Incomplete`] is normal: read more); [`FrameRef`] is a view of the checked bytes. [`Decoder`] owns
//!   the receive buffer, resynchronises on the next 0xA0 after garbage and drops bad checksums, counting both in
//!   [`DecoderStats`]. Decoding copies nothing: a [`FrameRef`] borrows the decoder's buffer.
//! - [`response`]: a frame typed ([`Response`]): a tag read, the end of an inventory round, a status byte.
//! - [`session`]: [`R2000Session`], the state machine that drives one reader: it cycles antennas, re-issues
//!   inventory rounds, skips missing antennas, notices a silent reader and resets it. Its module documentation
//!   gives the call order.
//!
//! # Wire format
//!
//! ```text
//! Head  Len  Addr  Cmd  Data      Check
//! A0    1    1     1    0..=252   1
//! ```
//!
//! - Len counts the bytes after itself (Addr + Cmd + Data + Check), so a frame is Len + 2 bytes long, 5..=257.
//! - Check is the two's complement of the 8-bit sum of every byte before it, Head included: a good frame sums to
//!   zero. Nothing escapes 0xA0, so a header byte inside data is normal and only the checksum tells frames apart.
//! - Addr is the reader's address, 0x00..=0xFE; 0xFF is broadcast. The reader answers with its own address and
//!   echoes Cmd.
//! - Multi-byte numbers are big-endian.
//!
//! # The commands the session uses
//!
//! ```text
//! 0x74 set work antenna   host: A0 04 Addr 74 Port Check       Port 0..=3 (0..=7 on 8-port readers)
//!                         reader: A0 04 Addr 74 Code Check     Code 0x10 = success, else an error code
//! 0x89 real-time inventory host: A0 04 Addr 89 Repeat Check    Repeat = inventory rounds; 0xFF = the fast,
//!                                                              few-tags algorithm (not "forever")
//!   per tag read:  Data = FreqAnt PC(2) EPC(n) RSSI            FreqAnt: frequency index << 2 | port & 3
//!   end of round:  Data = AntId ReadRate(2) TotalRead(4)       ReadRate in reads/s; 7 data bytes
//!   error:         Data = Code                                 e.g. 0x22 antenna missing; ends the round
//! 0x70 reset              host: A0 03 Addr 70 Check            no answer on success: the reader reboots
//! ```
//!
//! A tag report's data length is even (EPCs are whole 16-bit words), so it never collides with the 7-byte end of
//! round or the 1-byte error. RSSI maps to dBm as `raw - 129` (see [`rssi_dbm`]). On 8-port readers bit 7 of the
//! RSSI byte is the high bit of the port (ports 5..=8); it is never set by a 4-port reader, whose raw values stay
//! below 0x80, so the decoder always reads it that way.
//!
//! # Sources
//!
//! No primary vendor document was available; these agree with each other:
//!
//! - the vendor's Java SDK (`com.reader.base`, `ReaderBase.java` and the helper's `processRealTimeInventory`, copied
//!   into many GitHub projects): frame building (`Len = data + 3`), the checksum over the whole frame, data length 1
//!   = error code, 7 = end of round (AntId, ReadRate u16 BE, TotalRead u32 BE), otherwise FreqAnt (port = low 2
//!   bits, frequency index = high 6), PC, EPC, RSSI; the Repeat = 255 note;
//! - hex-in/pyImpinj `pyImpinj/enums.py`: command codes and the error code table (the same table appears in the
//!   SDKs as `ERROR.java` / `ResultCode`);
//! - the vendor's C# demo, which displays RSSI as `rssi - 129` dBm;
//! - captures published with an IND903-based race checkpoint (`A0 04 01 74 00 E7` / `A0 04 01 74 10 D7`,
//!   `A0 04 01 89 01 D1`, a 12-byte-EPC tag report) and a four-antenna race-timing log in which the reader acks
//!   0x74 for every port but answers 0x89 with `A0 04 01 89 22 B0` (antenna missing) on unconnected ones. The
//!   verified ones are test fixtures below;
//! - the 8-port RSSI bit comes from one third-party transcription of the YR8900 specification; nothing else
//!   confirmed it.
//!
//! Not handled: 16-port readers' antenna groups (command 0x6C), phase reporting (two extra bytes after the RSSI),
//! FastTID (TID appended to the EPC: it is reported as part of the EPC), the buffered inventory commands (0x80,
//! 0x90..=0x93). Their frames still decode; the typed layer reports them as [`Response::Other`].

pub mod command;
pub mod frame;
pub mod response;
pub mod session;

pub use command::{cmd, Command};
pub use frame::{
    check, checksum, encode, CheckError, Decoder, DecoderStats, Frame, FrameError, FrameRef,
    BROADCAST, HEAD, MAX_DATA_LEN, MAX_FRAME_LEN, MIN_FRAME_LEN,
};
pub use response::{rssi_dbm, ErrorCode, Response};
pub use session::{ConfigError, Event, R2000Session, SessionConfig, SessionStats};
