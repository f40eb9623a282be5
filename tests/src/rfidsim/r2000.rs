//! A simulated Impinj R2000 module on a pseudo-terminal, speaking the "UHF RFID Reader Serial Interface
//! Protocol" (the `0xA0` framing).
//!
//! Built from the published layouts, not from `protocol::rfid::r2000`: a simulator sharing the codec would only
//! test it against itself. Sources: the vendor's "UHF RFID Reader Serial Interface Protocol" V3.x (scribd copy of
//! V3.7: command table and per-command host/response packets), the vendor Java SDK's `processRealTimeInventory`
//! (data of 1 byte = error code, 7 bytes = end of round, else a tag), and hex-in/pyImpinj (`enums.py` command and
//! error codes, `__init__.py` frame parser: `rssi = raw - 129`, antenna = `FreqAnt & 3`).
//!
//! ```text
//! frame      A0 | Len | Addr | Cmd | Data… | Check
//!            Len   = bytes after Len (Addr + Cmd + Data + Check) = 3 + data length
//!            Check = two's complement of the sum of every byte before it, from A0 (all bytes sum to 0 mod 256)
//! 0x74 set work antenna   host: A0 04 addr 74 ant(0–3)   reply: A0 04 addr 74 status
//! 0x75 get work antenna   host: A0 03 addr 75            reply: A0 04 addr 75 ant
//! 0x70 reset              host: A0 03 addr 70            no reply on success: the module restarts (~500 ms deaf)
//! 0x72 firmware version   host: A0 03 addr 72            reply: A0 05 addr 72 major minor
//! 0x89 real-time inventory host: A0 04 addr 89 repeat
//!      per tag read       A0 len addr 89 FreqAnt PC(2) EPC(n) RSSI      FreqAnt = freq index << 2 | antenna
//!      end of round       A0 0A addr 89 ant ReadRate(2) TotalRead(4)
//!      failure            A0 04 addr 89 error            (0x22 antenna missing)
//! status/error codes      0x10 success, 0x11 fail, 0x22 antenna missing, 0x36 no tag,
//!                         0x41 parameter invalid, 0x47 antenna id out of range
//! ```
//!
//! PC is the Gen2 protocol-control word: EPC length in 16-bit words in bits 15–11. RSSI is `dBm + 129`, 7 bits.
//! `0x8B` (customised session/target inventory) answers like `0x89`, as the vendor SDK parses both alike.
//!
//! Choices where the documents are silent or unclear, made explicit:
//! - a round with no tag ends with the normal end-of-round frame and TotalRead 0 ([`EmptyRound::EndFrame`]; the
//!   vendor demos treat that frame as "this antenna's round finished"); [`EmptyRound::NoTagError`] sends
//!   `A0 04 addr 89 36` instead, for hosts that must cope with both;
//! - an unknown command gets `A0 04 addr cmd 11` (fail);
//! - commands to another reader address (not ours, not the public 0xFF) are ignored, like on an RS-485 bus;
//! - a frame with a bad checksum is dropped without an answer.
//!
//! Timing: a read is due at its scheduled time (from the clock start: [`R2000Sim::start_clock`] or the first
//! inventory command). The module reads only the selected work antenna: a due read waits for its antenna to be
//! selected and inventoried for at most `hold_ms` (the tag is still in that antenna's field), after which it is
//! lost, as on a real reader whose host never asked. Reads for antennas above 4 are always lost (4 ports).

use std::collections::VecDeque;
use std::io::{ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serialport::{SerialPort, TTYPort};

use super::script::{GroundTruth, Read, Script};

/// Frame head.
pub const HEAD: u8 = 0xA0;
/// The public address every module answers.
pub const PUBLIC_ADDRESS: u8 = 0xFF;

/// Command codes the simulator knows.
pub mod cmd {
    /// Restart the module.
    pub const RESET: u8 = 0x70;
    /// Firmware version.
    pub const GET_FIRMWARE_VERSION: u8 = 0x72;
    /// Select the work antenna.
    pub const SET_WORK_ANTENNA: u8 = 0x74;
    /// Which antenna is selected.
    pub const GET_WORK_ANTENNA: u8 = 0x75;
    /// Output power (accepted, ignored).
    pub const SET_OUTPUT_POWER: u8 = 0x76;
    /// Beeper mode (accepted, ignored).
    pub const SET_BEEPER_MODE: u8 = 0x7A;
    /// Real-time inventory on the work antenna.
    pub const REAL_TIME_INVENTORY: u8 = 0x89;
    /// Inventory with a chosen session and target; answered like 0x89.
    pub const CUSTOMIZED_SESSION_TARGET_INVENTORY: u8 = 0x8B;
}

/// Status and error codes.
pub mod status {
    /// Command succeeded.
    pub const SUCCESS: u8 = 0x10;
    /// Command failed.
    pub const FAIL: u8 = 0x11;
    /// The selected antenna is not connected.
    pub const ANTENNA_MISSING: u8 = 0x22;
    /// No tag answered.
    pub const NO_TAG: u8 = 0x36;
    /// A parameter is invalid.
    pub const PARAMETER_INVALID: u8 = 0x41;
    /// Antenna id out of range.
    pub const ANTENNA_OUT_OF_RANGE: u8 = 0x47;
}

/// The check byte for `bytes` (head to last data byte): two's complement of their sum.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, b| sum.wrapping_add(*b))
        .wrapping_neg()
}

/// Builds a frame `A0 len addr cmd data… check`.
pub fn frame(addr: u8, cmd: u8, data: &[u8]) -> Vec<u8> {
    assert!(
        data.len() <= 252,
        "an R2000 frame carries at most 252 data bytes"
    );
    let mut f = Vec::with_capacity(data.len() + 5);
    f.extend_from_slice(&[HEAD, (data.len() + 3) as u8, addr, cmd]);
    f.extend_from_slice(data);
    f.push(checksum(&f));
    f
}

/// A frame split into its fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Reader address.
    pub addr: u8,
    /// Command code.
    pub cmd: u8,
    /// Data between the command and the check byte.
    pub data: Vec<u8>,
}

/// What [`take_frame`] found at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// A whole frame with a valid check byte.
    Frame(Frame),
    /// A frame-shaped run of bytes whose check byte is wrong (consumed).
    BadChecksum,
    /// Bytes before the next head, or an impossible length (consumed).
    Garbage,
    /// Not enough bytes yet: read more.
    Incomplete,
}

/// Takes the first frame (or junk) off the front of `buf`.
pub fn take_frame(buf: &mut Vec<u8>) -> Taken {
    match buf.iter().position(|b| *b == HEAD) {
        None if buf.is_empty() => return Taken::Incomplete,
        None => {
            buf.clear();
            return Taken::Garbage;
        }
        Some(0) => {}
        Some(i) => {
            buf.drain(..i);
            return Taken::Garbage;
        }
    }
    if buf.len() < 2 {
        return Taken::Incomplete;
    }
    let len = usize::from(buf[1]);
    if len < 3 {
        buf.drain(..1);
        return Taken::Garbage;
    }
    if buf.len() < len + 2 {
        return Taken::Incomplete;
    }
    let raw: Vec<u8> = buf.drain(..len + 2).collect();
    if checksum(&raw[..len + 1]) != raw[len + 1] {
        return Taken::BadChecksum;
    }
    Taken::Frame(Frame {
        addr: raw[2],
        cmd: raw[3],
        data: raw[4..len + 1].to_vec(),
    })
}

/// The data of a tag frame: `FreqAnt PC(2) EPC RSSI`. `antenna` is 0-based; `rssi_dbm` becomes `dBm + 129`.
pub fn tag_data(freq_index: u8, antenna: u8, epc: &[u8], rssi_dbm: i8) -> Vec<u8> {
    let words = epc.len().div_ceil(2) as u16;
    let pc = words << 11;
    let mut d = Vec::with_capacity(epc.len() + 5);
    d.push(((freq_index & 0x3F) << 2) | (antenna & 3));
    d.extend_from_slice(&pc.to_be_bytes());
    d.extend_from_slice(epc);
    if epc.len() % 2 == 1 {
        // Gen2 backscatters whole words.
        d.push(0);
    }
    d.push((i16::from(rssi_dbm) + 129).clamp(0, 127) as u8);
    d
}

/// The data of an end-of-round frame: `ant ReadRate(2) TotalRead(4)`.
pub fn end_of_round_data(antenna: u8, read_rate: u16, total_read: u32) -> Vec<u8> {
    let mut d = vec![antenna];
    d.extend_from_slice(&read_rate.to_be_bytes());
    d.extend_from_slice(&total_read.to_be_bytes());
    d
}

/// How a round that found no tag ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptyRound {
    /// The end-of-round frame with TotalRead 0.
    EndFrame,
    /// `A0 04 addr 89 36` (no tag).
    NoTagError,
}

/// Knobs of the simulated module.
#[derive(Clone, Debug)]
pub struct R2000Options {
    /// The module's address (it also answers 0xFF).
    pub address: u8,
    /// Which of the 4 ports have an antenna (index 0 = antenna id 0 = LLRP antenna 1).
    pub connected: [bool; 4],
    /// How long one inventory round lasts per repeat (the repeat count is clamped to 1..=10).
    pub round_ms: u64,
    /// How long a due read waits for its antenna to be inventoried before it is lost.
    pub hold_ms: u64,
    /// How long the module is deaf after a reset.
    pub reset_ms: u64,
    /// How a round without a tag ends.
    pub empty_round: EmptyRound,
    /// Firmware version reported by 0x72 (major, minor).
    pub firmware: (u8, u8),
    /// The script waits for [`R2000Sim::start_clock`] instead of starting at the first inventory command (a test
    /// that must know when the first pass can happen, e.g. not before the gate has pulled its ASN).
    pub manual_clock: bool,
}

impl Default for R2000Options {
    fn default() -> R2000Options {
        R2000Options {
            address: 0x01,
            connected: [true; 4],
            round_ms: 10,
            hold_ms: 500,
            reset_ms: 500,
            empty_round: EmptyRound::EndFrame,
            firmware: (8, 1),
            manual_clock: false,
        }
    }
}

/// Counters of a simulated module.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct R2000Stats {
    /// Well-formed frames addressed to this module.
    pub commands_seen: u64,
    /// Inventory commands (0x89, 0x8B).
    pub inventories: u64,
    /// Antenna selections that succeeded.
    pub antenna_switches: u64,
    /// Frames written to the host.
    pub frames_sent: u64,
    /// Frames dropped for a bad check byte.
    pub bad_checksums: u64,
    /// Commands dropped while silent or restarting.
    pub ignored_while_silent: u64,
    /// Tag reads sent.
    pub reads_delivered: u64,
    /// Reads nobody asked for in time (antenna not inventoried within `hold_ms`, or no such port).
    pub reads_lost: u64,
    /// Resets performed.
    pub resets: u64,
    /// The selected antenna (0-based).
    pub work_antenna: u8,
}

struct Shared {
    stop: AtomicBool,
    clock: Mutex<Option<Instant>>,
    silent_until: Mutex<Option<Instant>>,
    stats: Mutex<R2000Stats>,
}

/// A running simulated R2000 module. Dropping it stops the simulation.
pub struct R2000Sim {
    path: PathBuf,
    shared: Arc<Shared>,
    truth: GroundTruth,
}

impl R2000Sim {
    /// Opens a pty pair and plays `script` on it with default options.
    pub fn start(script: &Script) -> Result<R2000Sim> {
        R2000Sim::start_with(script, R2000Options::default())
    }

    /// Opens a pty pair and plays `script` on it.
    pub fn start_with(script: &Script, options: R2000Options) -> Result<R2000Sim> {
        let (mut master, slave) = TTYPort::pair().context("pty pair")?;
        let path = PathBuf::from(slave.name().context("slave name")?);
        // Only the host may hold the slave, or two readers race for the module's bytes.
        drop(slave);
        // serialport polls before each read and write, so a short timeout lets the threads see `stop`; when the
        // sim is dropped both handles close and the host sees the module vanish (EIO), like an unplugged reader.
        master.set_timeout(Duration::from_millis(20))?;
        let mut reader = master.try_clone_native().context("clone pty master")?;
        // A host slow to read gets a second before the module gives up on a frame.
        master.set_timeout(Duration::from_secs(1))?;
        let schedule = script.schedule();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            clock: Mutex::new(None),
            silent_until: Mutex::new(None),
            stats: Mutex::new(R2000Stats::default()),
        });
        let (tx, rx) = mpsc::channel();
        let stop = shared.clone();
        // The master's read side has its own thread so the module thread can wait on a channel with a timeout.
        // Reads fail at once (POLLHUP) while no host holds the slave: that only means "wait".
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop.stop.load(Ordering::Relaxed) {
                match reader.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::TimedOut => {}
                    _ => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        let module = Module {
            options,
            shared: shared.clone(),
            writer: master,
            rx,
            buf: Vec::new(),
            reads: schedule.reads.into(),
            waiting: Default::default(),
            antenna: 0,
            freq: 7,
        };
        thread::spawn(move || module.run());
        Ok(R2000Sim {
            path,
            shared,
            truth: schedule.truth,
        })
    }

    /// The slave path to give the agent.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the script really contains.
    pub fn truth(&self) -> &GroundTruth {
        &self.truth
    }

    /// Starts the script's clock now (else the first inventory command starts it).
    pub fn start_clock(&self) {
        self.shared
            .clock
            .lock()
            .expect("clock")
            .get_or_insert_with(Instant::now);
    }

    /// When the script's clock started ([`R2000Sim::start_clock`] or the first inventory command), if it has.
    pub fn clock_started(&self) -> Option<Instant> {
        *self.shared.clock.lock().expect("clock")
    }

    /// Stops answering for `duration`: commands are read and dropped, due reads wait (and may be lost).
    pub fn go_silent(&self, duration: Duration) {
        *self.shared.silent_until.lock().expect("silent") = Some(Instant::now() + duration);
    }

    /// The counters so far.
    pub fn stats(&self) -> R2000Stats {
        self.shared.stats.lock().expect("stats").clone()
    }

    /// True once every scheduled read was delivered or lost.
    pub fn done(&self) -> bool {
        let s = self.stats();
        (s.reads_delivered + s.reads_lost) as usize >= self.truth.total_reads
    }
}

impl Drop for R2000Sim {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// The module's thread: owns the schedule and the master's write side.
struct Module {
    options: R2000Options,
    shared: Arc<Shared>,
    writer: TTYPort,
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    /// Reads not yet due, in time order.
    reads: VecDeque<Read>,
    /// Due reads waiting for their antenna (index = 0-based antenna id), in time order.
    waiting: [VecDeque<Read>; 4],
    antenna: u8,
    freq: u8,
}

impl Module {
    fn run(mut self) {
        while !self.shared.stop.load(Ordering::Relaxed) {
            match self.rx.recv_timeout(Duration::from_millis(10)) {
                Ok(bytes) => self.buf.extend(bytes),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.advance();
            let silent = self
                .shared
                .silent_until
                .lock()
                .expect("silent")
                .is_some_and(|until| Instant::now() < until);
            loop {
                match take_frame(&mut self.buf) {
                    Taken::Incomplete => break,
                    Taken::Garbage => {}
                    Taken::BadChecksum => self.stats(|s| s.bad_checksums += 1),
                    Taken::Frame(f) => {
                        if f.addr != self.options.address && f.addr != PUBLIC_ADDRESS {
                            continue;
                        }
                        if silent {
                            self.stats(|s| s.ignored_while_silent += 1);
                            continue;
                        }
                        self.stats(|s| s.commands_seen += 1);
                        self.handle(f);
                    }
                }
            }
        }
    }

    fn stats(&self, f: impl FnOnce(&mut R2000Stats)) {
        f(&mut self.shared.stats.lock().expect("stats"));
    }

    fn clock(&self) -> Option<Instant> {
        *self.shared.clock.lock().expect("clock")
    }

    /// Moves due reads to their antenna's queue and drops the ones that waited too long.
    fn advance(&mut self) {
        let Some(start) = self.clock() else { return };
        let now_us = start.elapsed().as_micros() as u64;
        let mut lost = 0;
        while self.reads.front().is_some_and(|r| r.at_us <= now_us) {
            let read = self.reads.pop_front().expect("front");
            match read.antenna {
                1..=4 => self.waiting[usize::from(read.antenna - 1)].push_back(read),
                _ => lost += 1,
            }
        }
        let oldest = now_us.saturating_sub(self.options.hold_ms * 1000);
        for q in &mut self.waiting {
            while q.front().is_some_and(|r| r.at_us < oldest) {
                q.pop_front();
                lost += 1;
            }
        }
        if lost > 0 {
            self.stats(|s| s.reads_lost += lost);
        }
    }

    /// Writes a frame; false when it could not be written (no host holds the slave, or it stopped reading).
    fn send(&mut self, cmd: u8, data: &[u8]) -> bool {
        let f = frame(self.options.address, cmd, data);
        let ok = self.writer.write_all(&f).is_ok();
        if ok {
            self.stats(|s| s.frames_sent += 1);
        }
        ok
    }

    fn handle(&mut self, f: Frame) {
        match f.cmd {
            cmd::RESET => self.reset(),
            cmd::GET_FIRMWARE_VERSION => {
                let (major, minor) = self.options.firmware;
                self.send(f.cmd, &[major, minor]);
            }
            cmd::SET_WORK_ANTENNA => {
                let code = match f.data.first() {
                    Some(&a) if f.data.len() == 1 && a < 4 => {
                        self.antenna = a;
                        self.stats(|s| {
                            s.antenna_switches += 1;
                            s.work_antenna = a;
                        });
                        status::SUCCESS
                    }
                    Some(_) if f.data.len() == 1 => status::ANTENNA_OUT_OF_RANGE,
                    _ => status::PARAMETER_INVALID,
                };
                self.send(f.cmd, &[code]);
            }
            cmd::GET_WORK_ANTENNA => {
                self.send(f.cmd, &[self.antenna]);
            }
            cmd::SET_OUTPUT_POWER | cmd::SET_BEEPER_MODE => {
                self.send(f.cmd, &[status::SUCCESS]);
            }
            cmd::REAL_TIME_INVENTORY | cmd::CUSTOMIZED_SESSION_TARGET_INVENTORY => {
                // 0x89 carries Repeat; 0x8B carries Session, Target, Repeat.
                let repeat = f.data.last().copied().unwrap_or(1);
                self.inventory(f.cmd, repeat);
            }
            other => {
                self.send(other, &[status::FAIL]);
            }
        }
    }

    fn reset(&mut self) {
        self.stats(|s| {
            s.resets += 1;
            s.work_antenna = 0;
        });
        // A restarting MCU answers nothing and loses what arrives meanwhile.
        thread::sleep(Duration::from_millis(self.options.reset_ms));
        while self.rx.try_recv().is_ok() {}
        self.buf.clear();
        self.antenna = 0;
    }

    fn inventory(&mut self, cmd: u8, repeat: u8) {
        if !self.options.manual_clock {
            self.shared
                .clock
                .lock()
                .expect("clock")
                .get_or_insert_with(Instant::now);
        }
        self.stats(|s| s.inventories += 1);
        let ant = self.antenna;
        if !self.options.connected[usize::from(ant)] {
            self.send(cmd, &[status::ANTENNA_MISSING]);
            return;
        }
        let round = Duration::from_millis(self.options.round_ms * u64::from(repeat.clamp(1, 10)));
        thread::sleep(round);
        self.advance();
        let reads: Vec<Read> = self.waiting[usize::from(ant)].drain(..).collect();
        let mut n = 0u64;
        for read in &reads {
            // The module hops over the FCC channel indices 7..=59 (the SDK maps 7 to 902 MHz).
            self.freq = if self.freq >= 59 { 7 } else { self.freq + 1 };
            let data = tag_data(self.freq, ant, &read.epc, read.rssi_dbm);
            if self.send(cmd, &data) {
                n += 1;
            }
        }
        let lost = reads.len() as u64 - n;
        self.stats(|s| {
            s.reads_delivered += n;
            s.reads_lost += lost;
        });
        if n == 0 && self.options.empty_round == EmptyRound::NoTagError {
            self.send(cmd, &[status::NO_TAG]);
            return;
        }
        let rate = (n * 1000 / (round.as_millis() as u64).max(1)).min(u64::from(u16::MAX)) as u16;
        self.send(cmd, &end_of_round_data(ant, rate, n as u32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_match_hand_computed_bytes() {
        // (addr, cmd, data, bytes with the check byte computed by hand)
        let cases: [(u8, u8, &[u8], &[u8]); 4] = [
            // A0+04+01+74+00 = 0x119 → 0x19 → check 0xE7
            (0x01, 0x74, &[0x00], &[0xA0, 0x04, 0x01, 0x74, 0x00, 0xE7]),
            // A0+04+01+74+10 = 0x129 → 0x29 → check 0xD7
            (0x01, 0x74, &[0x10], &[0xA0, 0x04, 0x01, 0x74, 0x10, 0xD7]),
            // A0+03+FF+70 = 0x212 → 0x12 → check 0xEE
            (0xFF, 0x70, &[], &[0xA0, 0x03, 0xFF, 0x70, 0xEE]),
            // A0+04+01+89+FF = 0x22D → 0x2D → check 0xD3
            (0x01, 0x89, &[0xFF], &[0xA0, 0x04, 0x01, 0x89, 0xFF, 0xD3]),
        ];
        for (addr, cmd, data, bytes) in cases {
            assert_eq!(frame(addr, cmd, data), bytes, "cmd {cmd:#04x}");
        }
    }

    #[test]
    fn take_frame_table() {
        // (input, expected, bytes left)
        let good = frame(1, 0x75, &[]);
        let mut bad = good.clone();
        *bad.last_mut().expect("check") ^= 1;
        let cases: Vec<(Vec<u8>, Taken, usize)> = vec![
            (vec![], Taken::Incomplete, 0),
            (vec![0xA0], Taken::Incomplete, 1),
            (vec![0xA0, 0x04, 0x01], Taken::Incomplete, 3),
            (vec![0x00, 0x13, 0xA0], Taken::Garbage, 1),
            (vec![0xA0, 0x02, 0x01], Taken::Garbage, 2),
            (bad, Taken::BadChecksum, 0),
            (
                [good.clone(), vec![0xA0]].concat(),
                Taken::Frame(Frame {
                    addr: 1,
                    cmd: 0x75,
                    data: vec![],
                }),
                1,
            ),
        ];
        for (mut input, want, left) in cases {
            let shown = format!("{input:02X?}");
            assert_eq!(take_frame(&mut input), want, "{shown}");
            assert_eq!(input.len(), left, "{shown}");
        }
    }

    #[test]
    fn tag_data_layout() {
        let epc = [0x30, 0x14, 0x25, 0x7B, 0xF4, 0, 0, 0, 0, 0, 0, 0x01];
        let d = tag_data(9, 1, &epc, -60);
        assert_eq!(d[0], (9 << 2) | 1);
        assert_eq!(&d[1..3], &[0x30, 0x00], "PC: 6 words << 11");
        assert_eq!(&d[3..15], &epc);
        assert_eq!(d[15], 69, "-60 dBm + 129");
        assert_eq!(
            end_of_round_data(1, 300, 70000),
            [1, 0x01, 0x2C, 0x00, 0x01, 0x11, 0x70]
        );
    }
}
