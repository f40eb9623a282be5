//! [`R2000Session`]: drives one reader over a byte stream, sans-IO.
//!
//! # Call order
//!
//! No clock, no I/O, no threads: the caller owns the serial port and a monotonic clock in milliseconds.
//!
//! 1. [`R2000Session::new`] with a [`SessionConfig`].
//! 2. When bytes arrive from the port: [`R2000Session::handle_input`]`(now, bytes)`.
//! 3. When the clock reaches [`R2000Session::poll_timeout`]: [`R2000Session::handle_timeout`]`(now)`. Calling it
//!    early, or late, is harmless.
//! 4. After every `handle_*` call: write each [`R2000Session::poll_transmit`] to the port in order, drain
//!    [`R2000Session::poll_event`], then read `poll_timeout` again (any call may move it).
//!
//! The session starts on its first `handle_*` call; `poll_timeout` is `Some(0)` until then, so a driver following
//! the loop above starts it at once.
//!
//! # What it does
//!
//! ```text
//!            ┌──────────────────────────── next antenna ◄───────────────────────────┐
//!            ▼                                                                      │
//!   0x74 set work antenna ──ack 0x10──► 0x89 real-time inventory ──end of round──────┤
//!            │ error: skip antenna               │ error 0x22: skip antenna         │
//!            │                                   │ other error, round timeout ──────┤
//!            └───────────────────────────────────┴──────────────────────────────────┘
//! ```
//!
//! - Antennas are cycled in the configured order, one inventory round each. 0x74 is skipped when the reader
//!   already works on the next antenna (one antenna configured).
//! - Every tag report becomes an [`Event::Tag`], whatever the state, with the antenna the reader reports.
//! - An antenna the reader refuses (an error answering 0x74) or reports missing (0x22 answering 0x89; readers
//!   ack 0x74 for unconnected ports) is skipped for `antenna_retry`, with an [`Event::AntennaSkipped`]. When all
//!   are skipped the session waits for the first to come back.
//! - Silence: no valid frame for `silence_timeout` while a command is outstanding. The session reports
//!   [`Event::ReaderSilent`] and sends 0x74 and 0x89 again; after `silences_before_reset` silences in a row it sends
//!   0x70 (reset; a reader does not answer it), reports [`Event::ResetSent`], waits `reset_wait` and starts over.
//!   The next valid frame reports [`Event::Connected`], as the first one does.
//! - A round that has not ended `round_timeout` after its 0x89 (tags still flowing, the end frame lost) is given
//!   up: [`Event::RoundTimeout`], next antenna.
//! - When the line has been quiet for `frame_timeout` with an incomplete frame pending (a stray 0xA0 with a long
//!   Len holds back the frames behind it), the decoder gives the candidate up and decodes what follows.

use std::collections::VecDeque;

use super::command::{cmd, Command};
use super::frame::{Decoder, DecoderStats, FrameRef, BROADCAST};
use super::response::{rssi_dbm, ErrorCode, Response};
use crate::rfid::{Millis, TagRead};

/// Antenna ports an R2000 reader can have.
const MAX_PORTS: usize = 8;

/// How to drive a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The reader's address; 0xFF (broadcast) reaches any single reader on the line.
    pub address: u8,
    /// Antennas to cycle, 1-based, in order; repeats are allowed (`[1, 2, 1, 3]`).
    pub antennas: Vec<u8>,
    /// 0x89's Repeat: inventory rounds per command. 255 selects the reader's algorithm for few tags (30-50 ms with
    /// one or two tags in the field, per the vendor SDK), not an endless inventory.
    pub repeat: u8,
    /// Without any valid frame for this long while a command is outstanding, the reader is silent.
    pub silence_timeout: Millis,
    /// An inventory round that has not ended after this long is given up.
    pub round_timeout: Millis,
    /// Silences in a row before the reader is reset (at least 1).
    pub silences_before_reset: u32,
    /// How long a reset reader gets to reboot before the next command.
    pub reset_wait: Millis,
    /// How long a missing or refused antenna is skipped.
    pub antenna_retry: Millis,
    /// How long the line must be quiet before an incomplete frame is given up.
    pub frame_timeout: Millis,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            address: BROADCAST,
            antennas: vec![1],
            repeat: 1,
            silence_timeout: 2_000,
            round_timeout: 10_000,
            silences_before_reset: 3,
            reset_wait: 3_000,
            antenna_retry: 30_000,
            frame_timeout: 200,
        }
    }
}

/// A [`SessionConfig`] the session cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `antennas` is empty.
    #[error("no antennas to cycle")]
    NoAntennas,
    /// An antenna number outside 1..=8.
    #[error("antenna {0} does not exist on an R2000 reader (1..=8)")]
    BadAntenna(u8),
    /// A timeout of zero would fire on every call.
    #[error("{0} must be longer than 0 ms")]
    ZeroTimeout(&'static str),
    /// `silences_before_reset` is 0.
    #[error("silences_before_reset must be at least 1")]
    NoSilences,
}

/// What the session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The first valid frame, and the first after the reader went silent.
    Connected,
    /// A tag read: antenna 1-based, RSSI in dBm, `at` the time its frame was handled, `count` 1.
    Tag(TagRead),
    /// The reader ended an inventory round.
    RoundEnd {
        /// 1-based antenna the reader reports.
        antenna: u16,
        /// Reads per second during the round.
        read_rate: u16,
        /// Tag reads in the round.
        total_reads: u32,
    },
    /// The reader answered with an error code.
    ReaderError {
        /// The command that failed.
        cmd: u8,
        /// Why.
        code: ErrorCode,
        /// The antenna the failed command was for, when it was the session's outstanding command.
        antenna: Option<u16>,
    },
    /// An antenna will not be used until `until`.
    AntennaSkipped {
        /// 1-based antenna.
        antenna: u16,
        /// When it will be tried again.
        until: Millis,
    },
    /// A round did not end within `round_timeout`.
    RoundTimeout {
        /// 1-based antenna.
        antenna: u16,
    },
    /// No valid frame for `silence_timeout` while a command was outstanding; the command was sent again, or a
    /// reset follows.
    ReaderSilent {
        /// Silences in a row since the last valid frame or reset.
        consecutive: u32,
    },
    /// A reset (0x70) was sent after too many silences in a row.
    ResetSent,
}

/// Counters kept by a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// [`Event::Tag`]s reported.
    pub tags: u64,
    /// Rounds ended by the reader.
    pub rounds: u64,
    /// Commands queued for transmission.
    pub commands_sent: u64,
    /// Error codes received.
    pub reader_errors: u64,
    /// [`Event::ReaderSilent`]s.
    pub silences: u64,
    /// Resets sent.
    pub resets: u64,
    /// [`Event::RoundTimeout`]s.
    pub round_timeouts: u64,
    /// [`Event::AntennaSkipped`]s.
    pub antennas_skipped: u64,
    /// The decoder's counters (bad checksums, garbage, ...).
    pub decoder: DecoderStats,
}

/// Where the session is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first `handle_*` call.
    Start,
    /// 0x74 sent for `antenna`, waiting for its ack.
    SettingAntenna { antenna: u8, sent: Millis },
    /// 0x89 sent on `antenna`, waiting for the end of the round.
    Inventory { antenna: u8, sent: Millis },
    /// 0x70 sent; the reader reboots until `until`.
    Resetting { until: Millis },
    /// Every configured antenna is skipped until `until` at least.
    AllSkipped { until: Millis },
}

/// Drives one R2000 reader: see the module documentation.
#[derive(Debug)]
pub struct R2000Session {
    decoder: Decoder,
    core: Core,
}

/// Everything but the decoder, so that a frame borrowed from the decoder can be handled by `&mut Core`.
#[derive(Debug)]
struct Core {
    cfg: SessionConfig,
    state: State,
    /// Index in `cfg.antennas` of the current (or last) antenna.
    idx: usize,
    /// The antenna the reader acked with 0x74 and has not been unsettled since (silence, reset, skip, timeout).
    work_antenna: Option<u8>,
    /// Per port (0-based): skipped until then.
    skipped_until: [Option<Millis>; MAX_PORTS],
    /// When the last valid frame was handled.
    last_rx: Option<Millis>,
    /// When the last bytes arrived.
    last_bytes: Millis,
    connected: bool,
    consecutive_silences: u32,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    stats: SessionStats,
}

impl R2000Session {
    /// A session that starts on the first `handle_*` call.
    pub fn new(cfg: SessionConfig) -> Result<Self, ConfigError> {
        if cfg.antennas.is_empty() {
            return Err(ConfigError::NoAntennas);
        }
        if let Some(&bad) = cfg
            .antennas
            .iter()
            .find(|&&a| a == 0 || usize::from(a) > MAX_PORTS)
        {
            return Err(ConfigError::BadAntenna(bad));
        }
        let timeouts = [
            ("silence_timeout", cfg.silence_timeout),
            ("round_timeout", cfg.round_timeout),
            ("reset_wait", cfg.reset_wait),
            ("antenna_retry", cfg.antenna_retry),
            ("frame_timeout", cfg.frame_timeout),
        ];
        if let Some((name, _)) = timeouts.iter().find(|(_, t)| *t == 0) {
            return Err(ConfigError::ZeroTimeout(name));
        }
        if cfg.silences_before_reset == 0 {
            return Err(ConfigError::NoSilences);
        }
        Ok(R2000Session {
            decoder: Decoder::new(),
            core: Core {
                cfg,
                state: State::Start,
                idx: 0,
                work_antenna: None,
                skipped_until: [None; MAX_PORTS],
                last_rx: None,
                last_bytes: 0,
                connected: false,
                consecutive_silences: 0,
                transmit: VecDeque::new(),
                events: VecDeque::new(),
                stats: SessionStats::default(),
            },
        })
    }

    /// Takes bytes read from the port at `now`.
    pub fn handle_input(&mut self, now: Millis, bytes: &[u8]) {
        self.core.start(now);
        if bytes.is_empty() {
            return;
        }
        self.core.last_bytes = now;
        self.decoder.push(bytes);
        self.drain_frames(now);
    }

    /// Acts on the deadlines that have passed at `now`.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.core.start(now);
        if self.decoder.buffered() > 0 && now >= self.frame_deadline() {
            // The line is quiet: what is buffered is not a frame still arriving.
            while self.decoder.skip_partial() {
                self.drain_frames(now);
            }
        }
        self.core.on_timeout(now);
    }

    /// The next bytes to write to the port.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.core.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.events.pop_front()
    }

    /// When [`R2000Session::handle_timeout`] must be called next. Always `Some`: a session always waits for
    /// something.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let partial = (self.decoder.buffered() > 0).then(|| self.frame_deadline());
        [Some(self.core.deadline()), partial]
            .into_iter()
            .flatten()
            .min()
    }

    /// The antenna being inventoried or selected, 1-based.
    pub fn current_antenna(&self) -> Option<u16> {
        match self.core.state {
            State::SettingAntenna { antenna, .. } | State::Inventory { antenna, .. } => {
                Some(u16::from(antenna))
            }
            State::Start | State::Resetting { .. } | State::AllSkipped { .. } => None,
        }
    }

    /// The counters.
    pub fn stats(&self) -> SessionStats {
        SessionStats {
            decoder: self.decoder.stats(),
            ..self.core.stats
        }
    }

    fn frame_deadline(&self) -> Millis {
        self.core
            .last_bytes
            .saturating_add(self.core.cfg.frame_timeout)
    }

    fn drain_frames(&mut self, now: Millis) {
        // Bad frames are already counted by the decoder; the session carries on with the next one.
        while let Some(result) = self.decoder.next_frame() {
            if let Ok(frame) = result {
                self.core.on_frame(now, frame);
            }
        }
    }
}

impl Core {
    fn start(&mut self, now: Millis) {
        if self.state == State::Start {
            self.next_round(now, false);
        }
    }

    fn deadline(&self) -> Millis {
        match self.state {
            State::Start => 0,
            State::SettingAntenna { sent, .. } => self.silence_deadline(sent),
            State::Inventory { sent, .. } => self
                .silence_deadline(sent)
                .min(sent.saturating_add(self.cfg.round_timeout)),
            State::Resetting { until } | State::AllSkipped { until } => until,
        }
    }

    /// Silence is counted from the command or the last valid frame, whichever is later.
    fn silence_deadline(&self, sent: Millis) -> Millis {
        sent.max(self.last_rx.unwrap_or(0))
            .saturating_add(self.cfg.silence_timeout)
    }

    fn on_timeout(&mut self, now: Millis) {
        if now < self.deadline() {
            return;
        }
        match self.state {
            State::Start => {}
            State::SettingAntenna { antenna, sent } | State::Inventory { antenna, sent }
                if now >= self.silence_deadline(sent) =>
            {
                self.on_silence(now, antenna);
            }
            State::SettingAntenna { .. } => {}
            State::Inventory { antenna, .. } => {
                self.stats.round_timeouts += 1;
                self.events.push_back(Event::RoundTimeout {
                    antenna: u16::from(antenna),
                });
                // The reader may still be busy with the lost round: select the antenna again.
                self.work_antenna = None;
                self.next_round(now, true);
            }
            State::Resetting { .. } | State::AllSkipped { .. } => self.next_round(now, false),
        }
    }

    fn on_silence(&mut self, now: Millis, antenna: u8) {
        self.stats.silences += 1;
        self.consecutive_silences += 1;
        self.connected = false;
        self.work_antenna = None;
        self.events.push_back(Event::ReaderSilent {
            consecutive: self.consecutive_silences,
        });
        if self.consecutive_silences >= self.cfg.silences_before_reset {
            self.consecutive_silences = 0;
            self.stats.resets += 1;
            self.send(Command::Reset);
            self.events.push_back(Event::ResetSent);
            self.state = State::Resetting {
                until: now.saturating_add(self.cfg.reset_wait),
            };
        } else {
            self.set_antenna(now, antenna);
        }
    }

    fn on_frame(&mut self, now: Millis, frame: FrameRef<'_>) {
        self.last_rx = Some(now);
        self.consecutive_silences = 0;
        if !self.connected {
            self.connected = true;
            self.events.push_back(Event::Connected);
        }
        match frame.response() {
            Response::TagRead {
                ant,
                pc,
                epc,
                rssi_raw,
                ..
            } => {
                self.stats.tags += 1;
                self.events.push_back(Event::Tag(TagRead {
                    epc: epc.to_vec(),
                    pc: Some(pc),
                    antenna: u16::from(ant) + 1,
                    rssi: Some(rssi_dbm(rssi_raw)),
                    at: now,
                    count: 1,
                }));
            }
            Response::RoundEnd {
                ant,
                read_rate,
                total_reads,
            } => {
                self.stats.rounds += 1;
                self.events.push_back(Event::RoundEnd {
                    antenna: u16::from(ant) + 1,
                    read_rate,
                    total_reads,
                });
                if frame.cmd() == cmd::REAL_TIME_INVENTORY
                    && matches!(self.state, State::Inventory { .. })
                {
                    self.next_round(now, true);
                }
            }
            Response::Ack {
                cmd: cmd::SET_WORK_ANTENNA,
            } => {
                if let State::SettingAntenna { antenna, .. } = self.state {
                    self.work_antenna = Some(antenna);
                    self.inventory(now, antenna);
                }
            }
            Response::Error { cmd, code } => self.on_error(now, cmd, code),
            Response::Ack { .. } | Response::Other { .. } => {}
        }
    }

    fn on_error(&mut self, now: Millis, cmd: u8, code: ErrorCode) {
        self.stats.reader_errors += 1;
        let outstanding = match self.state {
            State::SettingAntenna { antenna, .. } if cmd == cmd::SET_WORK_ANTENNA => Some(antenna),
            State::Inventory { antenna, .. } if cmd == cmd::REAL_TIME_INVENTORY => Some(antenna),
            _ => None,
        };
        self.events.push_back(Event::ReaderError {
            cmd,
            code,
            antenna: outstanding.map(u16::from),
        });
        // An error for anything but the outstanding command (a late answer) changes nothing.
        let Some(antenna) = outstanding else {
            return;
        };
        if cmd == cmd::SET_WORK_ANTENNA || code == ErrorCode::ANTENNA_MISSING {
            self.skip(now, antenna);
        }
        // Either way this antenna's turn is over.
        self.next_round(now, true);
    }

    fn skip(&mut self, now: Millis, antenna: u8) {
        let until = now.saturating_add(self.cfg.antenna_retry);
        self.skipped_until[usize::from(antenna - 1)] = Some(until);
        if self.work_antenna == Some(antenna) {
            self.work_antenna = None;
        }
        self.stats.antennas_skipped += 1;
        self.events.push_back(Event::AntennaSkipped {
            antenna: u16::from(antenna),
            until,
        });
    }

    /// Starts a round on the next usable antenna: the one after the current if `advance`, else the current.
    fn next_round(&mut self, now: Millis, advance: bool) {
        let n = self.cfg.antennas.len();
        let first = if advance { self.idx + 1 } else { self.idx };
        let usable =
            |a: u8| self.skipped_until[usize::from(a - 1)].is_none_or(|until| now >= until);
        let Some(idx) = (first..first + n)
            .map(|i| i % n)
            .find(|&i| usable(self.cfg.antennas[i]))
        else {
            let until = self
                .cfg
                .antennas
                .iter()
                .filter_map(|&a| self.skipped_until[usize::from(a - 1)])
                .min()
                .unwrap_or(now);
            self.state = State::AllSkipped { until };
            return;
        };
        self.idx = idx;
        let antenna = self.cfg.antennas[idx];
        if self.work_antenna == Some(antenna) {
            self.inventory(now, antenna);
        } else {
            self.set_antenna(now, antenna);
        }
    }

    fn set_antenna(&mut self, now: Millis, antenna: u8) {
        self.send(Command::SetWorkAntenna { port: antenna - 1 });
        self.state = State::SettingAntenna { antenna, sent: now };
    }

    fn inventory(&mut self, now: Millis, antenna: u8) {
        self.send(Command::RealTimeInventory {
            repeat: self.cfg.repeat,
        });
        self.state = State::Inventory { antenna, sent: now };
    }

    fn send(&mut self, command: Command) {
        self.transmit.push_back(command.encode(self.cfg.address));
        self.stats.commands_sent += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rfid::r2000::frame::encode;
    use proptest::prelude::*;

    const EPC1: [u8; 12] = [
        0x30, 0x74, 0x25, 0x7B, 0xF7, 0x19, 0x4E, 0x40, 0x00, 0x00, 0x1A, 0x85,
    ];
    const EPC2: [u8; 12] = [
        0xE2, 0x00, 0x30, 0x16, 0x66, 0x13, 0x01, 0x21, 0x15, 0x50, 0x74, 0xEF,
    ];

    /// A reader that answers the commands it receives, as the captures show real ones do.
    struct FakeReader {
        addr: u8,
        /// Ports (0-based) with an antenna; inventory on another answers 0x22.
        connected: [bool; MAX_PORTS],
        /// Ports it has; 0x74 beyond them answers 0x47.
        ports: u8,
        /// (port, EPC, raw RSSI) of the tags in the field.
        tags: Vec<(u8, Vec<u8>, u8)>,
        /// Answers nothing.
        mute: bool,
        /// Reports tags but never ends a round.
        no_round_end: bool,
        /// Puts a stray "A0 FF" before each end of round.
        stray_before_end: bool,
        work: u8,
        decoder: Decoder,
        received: Vec<Command>,
    }

    impl FakeReader {
        fn new(ports: u8) -> Self {
            FakeReader {
                addr: 0x01,
                connected: [true; MAX_PORTS],
                ports,
                tags: Vec::new(),
                mute: false,
                no_round_end: false,
                stray_before_end: false,
                work: 0,
                decoder: Decoder::new(),
                received: Vec::new(),
            }
        }

        fn frame(&self, cmd: u8, data: &[u8], out: &mut Vec<u8>) {
            encode(self.addr, cmd, data, out).unwrap();
        }

        fn receive(&mut self, bytes: &[u8]) -> Vec<u8> {
            self.decoder.push(bytes);
            let mut commands = Vec::new();
            while let Some(r) = self.decoder.next_frame() {
                commands.extend(Command::parse(r.unwrap()));
            }
            let mut out = Vec::new();
            for command in commands {
                self.received.push(command);
                if self.mute {
                    continue;
                }
                match command {
                    Command::SetWorkAntenna { port } if port < self.ports => {
                        self.work = port;
                        self.frame(cmd::SET_WORK_ANTENNA, &[0x10], &mut out);
                    }
                    Command::SetWorkAntenna { .. } => {
                        self.frame(cmd::SET_WORK_ANTENNA, &[0x47], &mut out)
                    }
                    Command::RealTimeInventory { .. }
                        if !self.connected[usize::from(self.work)] =>
                    {
                        self.frame(cmd::REAL_TIME_INVENTORY, &[0x22], &mut out)
                    }
                    Command::RealTimeInventory { .. } => {
                        let mut reads = 0u32;
                        for (port, epc, rssi) in self.tags.iter().filter(|t| t.0 == self.work) {
                            let freq_ant = (7 << 2) | (port & 0x03);
                            let rssi = rssi | if *port >= 4 { 0x80 } else { 0 };
                            let data = [&[freq_ant, 0x30, 0x00][..], epc, &[rssi]].concat();
                            self.frame(cmd::REAL_TIME_INVENTORY, &data, &mut out);
                            reads += 1;
                        }
                        if self.no_round_end {
                            continue;
                        }
                        if self.stray_before_end {
                            out.extend_from_slice(&[0xA0, 0xFF]);
                        }
                        let [t0, t1, t2, t3] = reads.to_be_bytes();
                        let end = [self.work, 0x00, 0x20, t0, t1, t2, t3];
                        self.frame(cmd::REAL_TIME_INVENTORY, &end, &mut out);
                    }
                    Command::Reset => self.work = 0,
                    _ => {}
                }
            }
            out
        }
    }

    /// A session and a fake reader on an in-memory line with latency, stepped by a virtual clock.
    struct Harness {
        session: R2000Session,
        reader: FakeReader,
        now: Millis,
        latency: Millis,
        /// Bytes from the reader and when they arrive.
        line: VecDeque<(Millis, Vec<u8>)>,
        events: Vec<(Millis, Event)>,
    }

    impl Harness {
        fn new(cfg: SessionConfig, reader: FakeReader) -> Self {
            Harness {
                session: R2000Session::new(cfg).unwrap(),
                reader,
                now: 0,
                latency: 10,
                line: VecDeque::new(),
                events: Vec::new(),
            }
        }

        fn run_until(&mut self, end: Millis) {
            for _ in 0..1_000_000 {
                while let Some(bytes) = self.session.poll_transmit() {
                    let answer = self.reader.receive(&bytes);
                    if !answer.is_empty() {
                        self.line.push_back((self.now + self.latency, answer));
                    }
                }
                while let Some(e) = self.session.poll_event() {
                    self.events.push((self.now, e));
                }
                let timeout = self.session.poll_timeout().expect("a session always waits");
                let arrival = self.line.front().map(|(t, _)| *t);
                let next = arrival.map_or(timeout, |a| a.min(timeout));
                if next > end {
                    self.now = end;
                    return;
                }
                self.now = self.now.max(next);
                match arrival {
                    Some(a) if a <= timeout => {
                        let (_, bytes) = self.line.pop_front().unwrap();
                        self.session.handle_input(self.now, &bytes);
                    }
                    _ => self.session.handle_timeout(self.now),
                }
            }
            panic!("no progress by {end}: {:?}", self.session);
        }

        fn events_since(&self, t: Millis) -> Vec<Event> {
            self.events
                .iter()
                .filter(|(at, _)| *at >= t)
                .map(|(_, e)| e.clone())
                .collect()
        }

        fn tag_antennas(&self) -> Vec<u16> {
            self.events
                .iter()
                .filter_map(|(_, e)| match e {
                    Event::Tag(t) => Some(t.antenna),
                    _ => None,
                })
                .collect()
        }
    }

    fn two_antennas() -> (SessionConfig, FakeReader) {
        let cfg = SessionConfig {
            address: 0x01,
            antennas: vec![1, 2],
            ..SessionConfig::default()
        };
        let mut reader = FakeReader::new(4);
        reader.tags = vec![(0, EPC1.to_vec(), 0x45), (1, EPC2.to_vec(), 0x6E)];
        (cfg, reader)
    }

    #[test]
    fn cycles_antennas_in_order() {
        let (cfg, reader) = two_antennas();
        let mut h = Harness::new(cfg, reader);
        h.run_until(200);
        let expected: Vec<Command> = [0, 1]
            .into_iter()
            .cycle()
            .take(h.reader.received.len() / 2)
            .flat_map(|port| {
                [
                    Command::SetWorkAntenna { port },
                    Command::RealTimeInventory { repeat: 1 },
                ]
            })
            .collect();
        assert!(expected.len() >= 8, "{:?}", h.reader.received);
        assert_eq!(h.reader.received[..expected.len()], expected[..]);
        assert_eq!(h.events[0], (10, Event::Connected));
        assert_eq!(
            h.events[1..4]
                .iter()
                .map(|(_, e)| e.clone())
                .collect::<Vec<_>>(),
            vec![
                Event::Tag(TagRead {
                    epc: EPC1.to_vec(),
                    pc: Some(0x3000),
                    antenna: 1,
                    rssi: Some(-60),
                    at: 20,
                    count: 1,
                }),
                Event::RoundEnd {
                    antenna: 1,
                    read_rate: 32,
                    total_reads: 1
                },
                Event::Tag(TagRead {
                    epc: EPC2.to_vec(),
                    pc: Some(0x3000),
                    antenna: 2,
                    rssi: Some(-19),
                    at: 40,
                    count: 1,
                }),
            ]
        );
        let antennas = h.tag_antennas();
        assert!(
            antennas.chunks(2).all(|c| c == [1, 2] || c == [1]),
            "{antennas:?}"
        );
        let s = h.session.stats();
        assert_eq!(s.tags as usize, antennas.len());
        assert_eq!((s.silences, s.resets, s.reader_errors), (0, 0, 0));
    }

    #[test]
    fn one_antenna_is_selected_once() {
        let cfg = SessionConfig {
            antennas: vec![3],
            ..SessionConfig::default()
        };
        let mut reader = FakeReader::new(4);
        reader.tags = vec![(2, EPC1.to_vec(), 0x50)];
        let mut h = Harness::new(cfg, reader);
        h.run_until(100);
        let r = &h.reader.received;
        assert_eq!(r[0], Command::SetWorkAntenna { port: 2 });
        assert!(
            r[1..]
                .iter()
                .all(|c| *c == Command::RealTimeInventory { repeat: 1 }),
            "{r:?}"
        );
        assert!(h.session.stats().rounds >= 4);
    }

    #[test]
    fn a_missing_antenna_is_skipped_then_retried() {
        let (mut cfg, mut reader) = two_antennas();
        cfg.antenna_retry = 1_000;
        reader.connected[1] = false;
        let mut h = Harness::new(cfg, reader);
        h.run_until(500);
        assert!(h.events_since(0).contains(&Event::ReaderError {
            cmd: cmd::REAL_TIME_INVENTORY,
            code: ErrorCode::ANTENNA_MISSING,
            antenna: Some(2),
        }));
        assert!(h.events_since(0).contains(&Event::AntennaSkipped {
            antenna: 2,
            until: 1_040
        }));
        assert!(h.tag_antennas().iter().all(|&a| a == 1));
        // 74(0) 89 74(1) 89, then 74(0) again; while antenna 2 is skipped, antenna 1 stays selected and is inventoried round after round.
        let after_skip = h.reader.received.iter().skip(5);
        assert!(after_skip.clone().count() > 10);
        assert!(after_skip
            .into_iter()
            .all(|c| *c == Command::RealTimeInventory { repeat: 1 }));
        // Once the skip expires antenna 2 is tried again, and skipped again.
        h.run_until(1_200);
        assert!(h
            .reader
            .received
            .contains(&Command::SetWorkAntenna { port: 1 }));
        assert_eq!(h.session.stats().antennas_skipped, 2);
    }

    #[test]
    fn a_refused_antenna_is_skipped() {
        let (mut cfg, reader) = two_antennas();
        cfg.antennas = vec![1, 6];
        let mut h = Harness::new(cfg, reader);
        h.run_until(300);
        let events = h.events_since(0);
        assert!(events.contains(&Event::ReaderError {
            cmd: cmd::SET_WORK_ANTENNA,
            code: ErrorCode::ANTENNA_ID_OUT_OF_RANGE,
            antenna: Some(6),
        }));
        assert!(events.contains(&Event::AntennaSkipped {
            antenna: 6,
            until: 30_030
        }));
        assert_eq!(h.session.stats().antennas_skipped, 1);
    }

    #[test]
    fn all_antennas_missing_waits_for_the_retry() {
        let cfg = SessionConfig {
            antennas: vec![1, 2],
            antenna_retry: 5_000,
            ..SessionConfig::default()
        };
        let mut reader = FakeReader::new(4);
        reader.connected = [false; MAX_PORTS];
        let mut h = Harness::new(cfg, reader);
        h.run_until(4_000);
        assert_eq!(h.reader.received.len(), 4, "{:?}", h.reader.received);
        assert_eq!(h.session.poll_timeout(), Some(5_020));
        assert_eq!(h.session.current_antenna(), None);
        h.run_until(5_100);
        assert_eq!(h.reader.received.len(), 8);
    }

    #[test]
    fn silence_reissues_then_resets() {
        let (cfg, reader) = two_antennas();
        let mut h = Harness::new(cfg, reader);
        h.run_until(1_000);
        h.reader.mute = true;
        h.run_until(8_000);
        let silent_at: Vec<(Millis, Event)> = h
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::ReaderSilent { .. } | Event::ResetSent))
            .cloned()
            .collect();
        // The last answer arrived just after t=1000; each silence is silence_timeout after the last command.
        let t0 = silent_at[0].0;
        assert!((3_000..=3_020).contains(&t0), "{silent_at:?}");
        assert_eq!(
            silent_at,
            vec![
                (t0, Event::ReaderSilent { consecutive: 1 }),
                (t0 + 2_000, Event::ReaderSilent { consecutive: 2 }),
                (t0 + 4_000, Event::ReaderSilent { consecutive: 3 }),
                (t0 + 4_000, Event::ResetSent),
            ]
        );
        // Two silences re-send the same 0x74, the third resets.
        let r = &h.reader.received;
        let tail = &r[r.len() - 3..];
        assert!(
            matches!(tail[0], Command::SetWorkAntenna { .. }),
            "{tail:?}"
        );
        assert_eq!((tail[0], tail[2]), (tail[1], Command::Reset));
        // The reader comes back during the reset wait: the cycle starts over and reports it connected.
        h.reader.mute = false;
        h.run_until(t0 + 4_000 + 3_500);
        let after = h.events_since(t0 + 4_001);
        assert_eq!(after.first(), Some(&Event::Connected));
        assert!(after.iter().any(|e| matches!(e, Event::Tag(_))));
        let s = h.session.stats();
        assert_eq!((s.silences, s.resets), (3, 1));
    }

    #[test]
    fn a_round_without_end_times_out() {
        let (mut cfg, mut reader) = two_antennas();
        cfg.round_timeout = 1_000;
        reader.no_round_end = true;
        let mut h = Harness::new(cfg, reader);
        h.run_until(2_500);
        let timeouts: Vec<(Millis, Event)> = h
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::RoundTimeout { .. }))
            .cloned()
            .collect();
        assert_eq!(
            timeouts,
            vec![
                (1_010, Event::RoundTimeout { antenna: 1 }),
                (2_020, Event::RoundTimeout { antenna: 2 }),
            ]
        );
        assert_eq!(h.session.stats().silences, 0);
    }

    #[test]
    fn a_stray_header_before_the_round_end_costs_frame_timeout_not_silence() {
        let (cfg, mut reader) = two_antennas();
        reader.stray_before_end = true;
        let mut h = Harness::new(cfg, reader);
        h.run_until(1_000);
        let ends: Vec<Millis> = h
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::RoundEnd { .. }))
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(ends[..2], [220, 440]);
        let s = h.session.stats();
        assert_eq!(s.silences, 0);
        assert_eq!(s.decoder.partials_skipped, s.rounds);
    }

    #[test]
    fn config_is_checked() {
        let ok = SessionConfig::default();
        let cases = [
            (
                SessionConfig {
                    antennas: vec![],
                    ..ok.clone()
                },
                ConfigError::NoAntennas,
            ),
            (
                SessionConfig {
                    antennas: vec![1, 0],
                    ..ok.clone()
                },
                ConfigError::BadAntenna(0),
            ),
            (
                SessionConfig {
                    antennas: vec![9],
                    ..ok.clone()
                },
                ConfigError::BadAntenna(9),
            ),
            (
                SessionConfig {
                    silence_timeout: 0,
                    ..ok.clone()
                },
                ConfigError::ZeroTimeout("silence_timeout"),
            ),
            (
                SessionConfig {
                    silences_before_reset: 0,
                    ..ok.clone()
                },
                ConfigError::NoSilences,
            ),
        ];
        for (cfg, error) in cases {
            assert_eq!(R2000Session::new(cfg).unwrap_err(), error);
        }
        let mut s = R2000Session::new(ok).unwrap();
        assert_eq!(s.poll_timeout(), Some(0));
        assert_eq!(s.poll_transmit(), None);
        s.handle_timeout(0);
        assert_eq!(
            s.poll_transmit(),
            Some(vec![0xA0, 0x04, 0xFF, 0x74, 0x00, 0xE9])
        );
        assert_eq!(s.current_antenna(), Some(1));
    }

    proptest! {
        #[test]
        fn any_input_is_survived_and_accounted(
            steps in prop::collection::vec(
                (0u64..3_000, prop::collection::vec(any::<u8>(), 0..80), any::<bool>()),
                0..40,
            ),
            antennas in prop::collection::vec(1u8..=8, 1..4),
        ) {
            let cfg = SessionConfig { antennas, ..SessionConfig::default() };
            let mut s = R2000Session::new(cfg).unwrap();
            let mut now = 0;
            let mut tags = 0;
            for (dt, bytes, timeout) in steps {
                now += dt;
                if timeout {
                    s.handle_timeout(now);
                } else {
                    s.handle_input(now, &bytes);
                }
                while let Some(tx) = s.poll_transmit() {
                    prop_assert!(FrameRef::parse(&tx).is_ok());
                }
                while let Some(e) = s.poll_event() {
                    tags += u64::from(matches!(e, Event::Tag(_)));
                }
                prop_assert!(s.poll_timeout().is_some());
            }
            let st = s.stats();
            prop_assert_eq!(st.tags, tags);
            let d = st.decoder;
            prop_assert!(d.bytes_in >= d.frame_bytes + d.discarded_bytes);
            prop_assert!(d.bytes_in - d.frame_bytes - d.discarded_bytes <= 256);
        }
    }
}
