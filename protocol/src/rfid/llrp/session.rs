//! The LLRP client session for one reader: a connection's handshake and report stream, plus the reconnect policy.
//! Sans-IO: see the module documentation of [`super`] for the call order.

use std::collections::VecDeque;

use super::codec::{
    msg_type as mt, Body, Decoder, LlrpError, Message, DEFAULT_MAX_MESSAGE_LEN, HEADER_LEN,
};
use super::params::{
    AiSpec, AiSpecStopTrigger, C1g2EpcMemorySelector, InventoryParameterSpec, LlrpStatus,
    ReaderEventNotificationData, RoBoundarySpec, RoReportSpec, RoSpec, RoSpecStartTrigger,
    RoSpecStopTrigger, TagReportContentSelector,
};
use crate::rfid::{Millis, TagRead};

/// How to talk to one reader. [`LlrpSession::new`] normalises out-of-range values (noted per field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlrpConfig {
    /// Antenna ports to inventory, 1-based; empty means all of them.
    pub antennas: Vec<u16>,
    /// The id of the ROSpec the session installs (0 is reserved and becomes 1).
    pub rospec_id: u32,
    /// How often the reader sends KEEPALIVE, in milliseconds; 0 turns keepalives off (then a quiet reader looks
    /// dead after `silence_timeout`).
    pub keepalive_ms: u32,
    /// The reader reports after this many tags (ROReportSpec N; 0 becomes 1).
    pub report_every: u16,
    /// Ask for each tag's PC word (C1G2EPCMemorySelector), filling [`TagRead::pc`].
    pub report_pc: bool,
    /// The first reconnect delay; it doubles after each failure up to `backoff_max` and resets once an ROSpec
    /// runs.
    pub backoff_min: Millis,
    /// The longest reconnect delay.
    pub backoff_max: Millis,
    /// Close and reconnect after this long without a byte from the reader, or without the response to a
    /// request. Three keepalive periods is a good value.
    pub silence_timeout: Millis,
    /// Longest message accepted, header included; a longer one is a protocol error.
    pub max_message_len: u32,
}

impl Default for LlrpConfig {
    fn default() -> Self {
        LlrpConfig {
            antennas: Vec::new(),
            rospec_id: 1,
            keepalive_ms: 5_000,
            report_every: 1,
            report_pc: true,
            backoff_min: 1_000,
            backoff_max: 60_000,
            silence_timeout: 15_000,
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
        }
    }
}

impl LlrpConfig {
    fn normalised(mut self) -> Self {
        self.rospec_id = self.rospec_id.max(1);
        self.report_every = self.report_every.max(1);
        self.backoff_min = self.backoff_min.max(1);
        self.backoff_max = self.backoff_max.max(self.backoff_min);
        self.silence_timeout = self.silence_timeout.max(1);
        self.max_message_len = self.max_message_len.max(HEADER_LEN as u32);
        self
    }

    /// The ROSpec the session adds: disabled, priority 0, started by START_ROSPEC and never stopped, one
    /// AISpec over the antennas inventorying Gen2 tags until the ROSpec stops, reporting every `report_every`
    /// tags with antenna, peak RSSI, first-seen time, seen count (and the PC word if `report_pc`).
    pub fn rospec(&self) -> RoSpec {
        let antenna_ids = if self.antennas.is_empty() {
            vec![0]
        } else {
            self.antennas.clone()
        };
        RoSpec {
            id: self.rospec_id,
            priority: 0,
            current_state: RoSpec::DISABLED,
            boundary: RoBoundarySpec {
                // Null start trigger: START_ROSPEC starts it. Null stop trigger: it runs until stopped.
                start: RoSpecStartTrigger {
                    trigger: 0,
                    extra: Vec::new(),
                },
                stop: RoSpecStopTrigger {
                    trigger: 0,
                    duration_ms: 0,
                    extra: Vec::new(),
                },
                extra: Vec::new(),
            },
            ai_specs: vec![AiSpec {
                antenna_ids,
                stop: AiSpecStopTrigger {
                    trigger: 0,
                    duration_ms: 0,
                    extra: Vec::new(),
                },
                inventory: vec![InventoryParameterSpec {
                    id: 1,
                    // EPCGlobalClass1Gen2.
                    protocol: 1,
                    extra: Vec::new(),
                }],
                extra: Vec::new(),
            }],
            report: Some(RoReportSpec {
                // Upon N tags or end of AISpec; the AISpec never ends, so every N tags.
                trigger: 1,
                n: self.report_every.max(1),
                content: TagReportContentSelector {
                    antenna_id: true,
                    peak_rssi: true,
                    first_seen: true,
                    tag_seen_count: true,
                    memory: self.report_pc.then_some(C1g2EpcMemorySelector {
                        crc: false,
                        pc: true,
                    }),
                    ..TagReportContentSelector::default()
                },
                extra: Vec::new(),
            }),
            extra: Vec::new(),
        }
    }
}

/// What the transport must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the reader (port 5084), then call [`LlrpSession::connected`] or, if it fails,
    /// [`LlrpSession::disconnected`]. The transport applies its own connect timeout.
    Connect,
    /// Close the connection, or abandon the attempt in progress. Do not call [`LlrpSession::disconnected`].
    Close,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The transport could not connect.
    ConnectFailed,
    /// The transport lost the connection.
    TransportClosed,
    /// Nothing came from the reader for the silence timeout.
    Silence,
    /// The reader did not answer a request (of this response type) in time.
    ResponseTimeout {
        /// The response type awaited.
        awaiting: u16,
    },
    /// The reader's ConnectionAttemptEvent refused the connection (1 or 2: another client is connected).
    ConnectionRefused {
        /// The ConnectionAttemptEvent status.
        status: u16,
    },
    /// The reader refused a request; [`Event::ReaderError`] came just before with the details.
    ReaderError {
        /// The response (or ERROR_MESSAGE) type.
        msg_type: u16,
        /// The status code.
        code: u16,
    },
    /// The reader announced it is closing the connection (ConnectionCloseEvent).
    ReaderClosed,
    /// The byte stream is not LLRP any more (or the awaited message was malformed).
    Protocol(LlrpError),
    /// [`LlrpSession::close`] was called.
    Shutdown,
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The reader accepted the connection (ConnectionAttemptEvent success); configuration starts.
    Connected,
    /// The ROSpec is started: tags will flow.
    Running,
    /// A tag report.
    Tag {
        /// The read, timed at its arrival.
        read: TagRead,
        /// The reader's FirstSeenTimestampUTC, microseconds since the Unix epoch, if it sent one.
        first_seen_utc_us: Option<u64>,
    },
    /// The reader answered with a failure status (a response or ERROR_MESSAGE).
    ReaderError {
        /// The response (or ERROR_MESSAGE) type.
        msg_type: u16,
        /// The status code ([`super::status_code_name`] names it).
        code: u16,
        /// The reader's description.
        description: String,
    },
    /// A well-framed but malformed message was skipped.
    BadMessage(LlrpError),
    /// The connection (or the attempt) ended.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
}

/// The configuration requests, in order; each waits for its response with a success status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    SetReaderConfig,
    DeleteRoSpec,
    AddRoSpec,
    EnableRoSpec,
    StartRoSpec,
}

impl Step {
    fn response(self) -> u16 {
        match self {
            Step::SetReaderConfig => mt::SET_READER_CONFIG_RESPONSE,
            Step::DeleteRoSpec => mt::DELETE_ROSPEC_RESPONSE,
            Step::AddRoSpec => mt::ADD_ROSPEC_RESPONSE,
            Step::EnableRoSpec => mt::ENABLE_ROSPEC_RESPONSE,
            Step::StartRoSpec => mt::START_ROSPEC_RESPONSE,
        }
    }

    fn next(self) -> Option<Step> {
        match self {
            Step::SetReaderConfig => Some(Step::DeleteRoSpec),
            Step::DeleteRoSpec => Some(Step::AddRoSpec),
            Step::AddRoSpec => Some(Step::EnableRoSpec),
            Step::EnableRoSpec => Some(Step::StartRoSpec),
            Step::StartRoSpec => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// [`Action::Connect`] issued; the transport has not reported back.
    Connecting,
    /// TCP is up; waiting for the reader's ConnectionAttemptEvent.
    AwaitConnectionEvent,
    /// A configuration request is out.
    Configuring { step: Step, deadline: Millis },
    /// The ROSpec runs.
    Running,
    /// CLOSE_CONNECTION is out (shutdown).
    Closing { deadline: Millis },
    /// Disconnected; reconnect at `until`.
    Backoff { until: Millis },
    /// Shut down for good.
    Shutdown,
}

/// The client side of LLRP for one reader. See the module documentation of [`super`] for the call order.
#[derive(Debug)]
pub struct LlrpSession {
    cfg: LlrpConfig,
    state: State,
    decoder: Decoder,
    next_id: u32,
    /// The next reconnect delay.
    backoff: Millis,
    last_rx: Millis,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    actions: VecDeque<Action>,
}

impl LlrpSession {
    /// A session that wants to connect right away: the first [`LlrpSession::poll_action`] is
    /// [`Action::Connect`].
    pub fn new(config: LlrpConfig) -> Self {
        let cfg = config.normalised();
        LlrpSession {
            decoder: Decoder::with_max_len(cfg.max_message_len),
            backoff: cfg.backoff_min,
            cfg,
            state: State::Connecting,
            next_id: 1,
            last_rx: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            actions: VecDeque::from([Action::Connect]),
        }
    }

    /// The configuration in use (normalised).
    pub fn config(&self) -> &LlrpConfig {
        &self.cfg
    }

    /// Whether the ROSpec is running.
    pub fn is_running(&self) -> bool {
        self.state == State::Running
    }

    /// Whether [`LlrpSession::close`] has finished: nothing more will happen.
    pub fn is_shut_down(&self) -> bool {
        self.state == State::Shutdown
    }

    /// The transport opened a TCP connection to the reader.
    pub fn connected(&mut self, now: Millis) {
        if self.state == State::Shutdown {
            self.actions.push_back(Action::Close);
            return;
        }
        self.decoder = Decoder::with_max_len(self.cfg.max_message_len);
        self.transmit.clear();
        self.last_rx = now;
        self.state = State::AwaitConnectionEvent;
    }

    /// The transport's connection closed, or its connection attempt failed. Not needed after [`Action::Close`].
    pub fn disconnected(&mut self, now: Millis) {
        match self.state {
            State::Connecting => self.lost(now, DisconnectReason::ConnectFailed, false),
            State::AwaitConnectionEvent | State::Configuring { .. } | State::Running => {
                self.lost(now, DisconnectReason::TransportClosed, false)
            }
            State::Closing { .. } => self.shut_down(false),
            State::Backoff { .. } | State::Shutdown => {}
        }
    }

    /// Bytes received from the reader at `now`.
    pub fn handle_input(&mut self, now: Millis, bytes: &[u8]) {
        if !self.is_connected() {
            return;
        }
        self.last_rx = now;
        self.decoder.push(bytes);
        // A message may end the connection; the bytes after it belong to nobody.
        while self.is_connected() {
            match self.decoder.next() {
                None => break,
                Some(Ok(message)) => self.on_message(now, message),
                Some(Err(error)) => self.on_decode_error(now, error),
            }
        }
    }

    /// Time passed: call at (or after) [`LlrpSession::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Millis) {
        let silent = now >= self.last_rx.saturating_add(self.cfg.silence_timeout);
        match self.state {
            State::Backoff { until } if now >= until => {
                self.state = State::Connecting;
                self.actions.push_back(Action::Connect);
            }
            State::AwaitConnectionEvent | State::Running if silent => {
                self.lost(now, DisconnectReason::Silence, true)
            }
            State::Configuring { .. } if silent => self.lost(now, DisconnectReason::Silence, true),
            State::Configuring { step, deadline } if now >= deadline => {
                let reason = DisconnectReason::ResponseTimeout {
                    awaiting: step.response(),
                };
                self.lost(now, reason, true)
            }
            State::Closing { deadline } if now >= deadline => self.shut_down(true),
            _ => {}
        }
    }

    /// Ends the session: closes the connection gracefully (CLOSE_CONNECTION, then its response or the silence
    /// timeout) and never reconnects.
    pub fn close(&mut self, now: Millis) {
        match self.state {
            State::AwaitConnectionEvent | State::Configuring { .. } | State::Running => {
                let id = self.next_id();
                self.send(Message::close_connection(id));
                self.state = State::Closing {
                    deadline: now.saturating_add(self.cfg.silence_timeout),
                };
            }
            State::Connecting => self.shut_down(true),
            State::Backoff { .. } => self.state = State::Shutdown,
            State::Closing { .. } | State::Shutdown => {}
        }
    }

    /// The next message to write to the connection, whole.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next thing the transport must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call [`LlrpSession::handle_timeout`], if ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let silence = self.last_rx.saturating_add(self.cfg.silence_timeout);
        match self.state {
            State::Backoff { until } => Some(until),
            State::AwaitConnectionEvent | State::Running => Some(silence),
            State::Configuring { deadline, .. } => Some(deadline.min(silence)),
            State::Closing { deadline } => Some(deadline),
            State::Connecting | State::Shutdown => None,
        }
    }

    fn is_connected(&self) -> bool {
        matches!(
            self.state,
            State::AwaitConnectionEvent
                | State::Configuring { .. }
                | State::Running
                | State::Closing { .. }
        )
    }

    fn next_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn send(&mut self, message: Message) {
        self.transmit.push_back(message.encode());
    }

    fn on_message(&mut self, now: Millis, message: Message) {
        match message.body {
            Body::Empty if message.msg_type == mt::KEEPALIVE => {
                self.send(Message::keepalive_ack(message.id));
            }
            Body::RoAccessReport(report) => {
                for tag in &report.tags {
                    self.events.push_back(Event::Tag {
                        read: tag.to_tag_read(now),
                        first_seen_utc_us: tag.first_seen_utc,
                    });
                }
            }
            Body::ReaderEvent(data) => self.on_reader_event(now, &data),
            Body::Status(status) if message.msg_type == mt::ERROR_MESSAGE => {
                self.reader_error(mt::ERROR_MESSAGE, &status);
                match self.state {
                    State::AwaitConnectionEvent | State::Configuring { .. } => {
                        let reason = DisconnectReason::ReaderError {
                            msg_type: mt::ERROR_MESSAGE,
                            code: status.code,
                        };
                        self.lost(now, reason, true);
                    }
                    State::Closing { .. } => self.shut_down(true),
                    _ => {}
                }
            }
            Body::Status(status) => self.on_response(now, message.msg_type, &status),
            _ => {}
        }
    }

    fn on_reader_event(&mut self, now: Millis, data: &ReaderEventNotificationData) {
        if data.connection_close {
            return self.lost(now, DisconnectReason::ReaderClosed, true);
        }
        match (self.state, data.connection_attempt) {
            (
                State::AwaitConnectionEvent,
                Some(ReaderEventNotificationData::CONNECTION_SUCCESS),
            ) => {
                self.events.push_back(Event::Connected);
                self.request(now, Step::SetReaderConfig);
            }
            (State::AwaitConnectionEvent, Some(status)) => {
                self.lost(now, DisconnectReason::ConnectionRefused { status }, true)
            }
            _ => {}
        }
    }

    fn on_response(&mut self, now: Millis, msg_type: u16, status: &LlrpStatus) {
        match self.state {
            State::Configuring { step, .. } if msg_type == step.response() => {
                if !status.is_success() {
                    self.reader_error(msg_type, status);
                    let reason = DisconnectReason::ReaderError {
                        msg_type,
                        code: status.code,
                    };
                    return self.lost(now, reason, true);
                }
                match step.next() {
                    Some(next) => self.request(now, next),
                    None => {
                        self.state = State::Running;
                        self.backoff = self.cfg.backoff_min;
                        self.events.push_back(Event::Running);
                    }
                }
            }
            State::Closing { .. } if msg_type == mt::CLOSE_CONNECTION_RESPONSE => {
                self.shut_down(true)
            }
            // A response nobody waits for: harmless.
            _ => {}
        }
    }

    fn on_decode_error(&mut self, now: Millis, error: LlrpError) {
        let awaited = match (&error, self.state) {
            (_, _) if error.is_fatal() => true,
            (LlrpError::Malformed { msg_type, .. }, State::Configuring { step, .. }) => {
                *msg_type == step.response() || *msg_type == mt::ERROR_MESSAGE
            }
            (LlrpError::Malformed { msg_type, .. }, State::AwaitConnectionEvent) => {
                *msg_type == mt::READER_EVENT_NOTIFICATION
            }
            _ => false,
        };
        if awaited {
            self.lost(now, DisconnectReason::Protocol(error), true);
        } else {
            self.events.push_back(Event::BadMessage(error));
        }
    }

    fn request(&mut self, now: Millis, step: Step) {
        let id = self.next_id();
        let rospec = self.cfg.rospec_id;
        let message = match step {
            Step::SetReaderConfig => Message::set_keepalive(id, self.cfg.keepalive_ms),
            // 0: every ROSpec, including those a previous client (or session) left behind.
            Step::DeleteRoSpec => Message::rospec_op(mt::DELETE_ROSPEC, id, 0),
            Step::AddRoSpec => Message::add_rospec(id, self.cfg.rospec()),
            Step::EnableRoSpec => Message::rospec_op(mt::ENABLE_ROSPEC, id, rospec),
            Step::StartRoSpec => Message::rospec_op(mt::START_ROSPEC, id, rospec),
        };
        self.send(message);
        self.state = State::Configuring {
            step,
            deadline: now.saturating_add(self.cfg.silence_timeout),
        };
    }

    fn reader_error(&mut self, msg_type: u16, status: &LlrpStatus) {
        self.events.push_back(Event::ReaderError {
            msg_type,
            code: status.code,
            description: status.description.clone(),
        });
    }

    /// The connection (or attempt) is over: report it, drop what was queued for it, and schedule a reconnect.
    fn lost(&mut self, now: Millis, reason: DisconnectReason, close: bool) {
        self.events.push_back(Event::Disconnected { reason });
        if close {
            self.actions.push_back(Action::Close);
        }
        self.transmit.clear();
        self.decoder = Decoder::with_max_len(self.cfg.max_message_len);
        self.state = State::Backoff {
            until: now.saturating_add(self.backoff),
        };
        self.backoff = self.backoff.saturating_mul(2).min(self.cfg.backoff_max);
    }

    fn shut_down(&mut self, close: bool) {
        self.events.push_back(Event::Disconnected {
            reason: DisconnectReason::Shutdown,
        });
        if close {
            self.actions.push_back(Action::Close);
        }
        self.transmit.clear();
        self.state = State::Shutdown;
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::Body;
    use super::super::fixtures::{self, bytes};
    use super::super::params::{Epc, LlrpStatus, TagReportData};
    use super::*;

    const T0: u64 = 1_773_561_600_000_000;

    /// A tiny reader: answers every request with success unless told to refuse it, and records what it got.
    #[derive(Default)]
    struct FakeReader {
        decoder: Decoder,
        /// Requests answered with this failure status, by request type.
        refuse: Vec<(u16, LlrpStatus)>,
        /// Request types left unanswered.
        ignore: Vec<u16>,
        received: Vec<Message>,
    }

    impl FakeReader {
        /// The reader's answers to `bytes` from the client.
        fn receive(&mut self, bytes: &[u8]) -> Vec<Message> {
            self.decoder.push(bytes);
            let mut out = Vec::new();
            while let Some(m) = self.decoder.next() {
                let m = m.expect("the client sends valid LLRP");
                self.received.push(m.clone());
                if self.ignore.contains(&m.msg_type) || m.msg_type == mt::KEEPALIVE_ACK {
                    continue;
                }
                let response = if m.msg_type == mt::CLOSE_CONNECTION {
                    mt::CLOSE_CONNECTION_RESPONSE
                } else {
                    m.msg_type + 10
                };
                let status = self
                    .refuse
                    .iter()
                    .find(|(ty, _)| *ty == m.msg_type)
                    .map_or_else(LlrpStatus::success, |(_, s)| s.clone());
                out.push(Message::response(response, m.id, status));
            }
            out
        }
    }

    /// The session and the fake reader on a virtual clock, with everything the session produced.
    struct Harness {
        session: LlrpSession,
        reader: FakeReader,
        now: Millis,
        connected: bool,
        events: Vec<Event>,
        actions: Vec<Action>,
    }

    impl Harness {
        /// A harness whose session asked for its first connection (in `actions`).
        fn new(cfg: LlrpConfig) -> Self {
            let mut h = Harness {
                session: LlrpSession::new(cfg),
                reader: FakeReader::default(),
                now: 1_000,
                connected: false,
                events: Vec::new(),
                actions: Vec::new(),
            };
            h.pump();
            h
        }

        /// Runs until nothing moves: actions, transmits to the reader, its answers back.
        fn pump(&mut self) {
            loop {
                let mut moved = false;
                while let Some(a) = self.session.poll_action() {
                    moved = true;
                    self.actions.push(a);
                    if a == Action::Close {
                        self.connected = false;
                        self.reader.decoder = Decoder::new();
                    }
                }
                while let Some(t) = self.session.poll_transmit() {
                    moved = true;
                    assert!(self.connected, "transmit while disconnected");
                    for answer in self.reader.receive(&t) {
                        self.session.handle_input(self.now, &answer.encode());
                    }
                }
                while let Some(e) = self.session.poll_event() {
                    moved = true;
                    self.events.push(e);
                }
                if !moved {
                    return;
                }
            }
        }

        fn connect(&mut self) {
            self.connected = true;
            self.session.connected(self.now);
            self.pump();
        }

        /// Bytes from the reader, one at a time.
        fn feed(&mut self, wire: &[u8]) {
            for b in wire {
                self.session.handle_input(self.now, std::slice::from_ref(b));
            }
            self.pump();
        }

        fn advance(&mut self, ms: Millis) {
            self.now += ms;
            self.session.handle_timeout(self.now);
            self.pump();
        }

        /// Connects and lets the reader accept: the handshake runs to the end (unless the reader refuses).
        fn handshake(&mut self) {
            self.connect();
            self.feed(&bytes(fixtures::CONNECTION_ATTEMPT_SUCCESS));
        }

        fn take_events(&mut self) -> Vec<Event> {
            std::mem::take(&mut self.events)
        }

        fn take_actions(&mut self) -> Vec<Action> {
            std::mem::take(&mut self.actions)
        }

        fn disconnected(reason: DisconnectReason) -> Event {
            Event::Disconnected { reason }
        }
    }

    #[test]
    fn handshake_tags_and_keepalive() {
        let mut h = Harness::new(LlrpConfig::default());
        assert_eq!(h.take_actions(), [Action::Connect]);
        assert_eq!(
            h.session.poll_timeout(),
            None,
            "the transport reports the attempt"
        );
        h.handshake();
        assert_eq!(h.take_events(), [Event::Connected, Event::Running]);
        assert!(h.session.is_running());

        let sent: Vec<(u16, u32)> = h
            .reader
            .received
            .iter()
            .map(|m| (m.msg_type, m.id))
            .collect();
        #[rustfmt::skip]
        assert_eq!(sent, [
            (mt::SET_READER_CONFIG, 1), (mt::DELETE_ROSPEC, 2), (mt::ADD_ROSPEC, 3),
            (mt::ENABLE_ROSPEC, 4), (mt::START_ROSPEC, 5),
        ]);
        // The requests are the hand-built fixtures, byte for byte.
        let wire = |i: usize| h.reader.received[i].encode();
        assert_eq!(wire(0), bytes(fixtures::SET_READER_CONFIG));
        assert_eq!(wire(1), bytes(fixtures::DELETE_ROSPEC_ALL));
        assert_eq!(wire(2), bytes(fixtures::ADD_ROSPEC));
        assert_eq!(h.reader.received[3].body, Body::RoSpecId(1));
        assert_eq!(h.reader.received[4].body, Body::RoSpecId(1));

        h.now = 7_000;
        h.feed(&bytes(fixtures::RO_ACCESS_REPORT));
        let tag = |epc: &[u8], pc, antenna, rssi, count, first_seen| Event::Tag {
            read: TagRead {
                epc: epc.to_vec(),
                pc,
                antenna,
                rssi: Some(rssi),
                at: 7_000,
                count,
            },
            first_seen_utc_us: Some(first_seen),
        };
        #[rustfmt::skip]
        assert_eq!(h.take_events(), [
            tag(&[0x30, 0x14, 0x25, 0x1a, 0x3c, 0, 0, 0x40, 0, 0, 0, 1], Some(0x3000), 1, -55, 3, T0 + 250_000),
            tag(&[0xe2, 0, 0x68, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78], None, 2, -60, 1, T0 + 300_000),
        ]);

        // KEEPALIVE id 7 is answered by KEEPALIVE_ACK id 7, exactly the fixture.
        h.feed(&bytes(fixtures::KEEPALIVE));
        let ack = h.reader.received.last().unwrap();
        assert_eq!(ack.encode(), bytes(fixtures::KEEPALIVE_ACK));
        assert!(h.take_events().is_empty());
        assert!(h.take_actions().is_empty());
    }

    #[test]
    fn report_without_optional_fields_defaults() {
        let mut h = Harness::new(LlrpConfig::default());
        h.handshake();
        h.take_events();
        let report =
            Message::ro_access_report(1, vec![TagReportData::new(Epc::from_bytes(&[1, 2, 3, 4]))]);
        h.feed(&report.encode());
        let expected = TagRead {
            epc: vec![1, 2, 3, 4],
            pc: None,
            antenna: 0,
            rssi: None,
            at: h.now,
            count: 1,
        };
        assert_eq!(
            h.take_events(),
            [Event::Tag {
                read: expected,
                first_seen_utc_us: None
            }]
        );
    }

    #[test]
    fn keepalives_keep_it_alive_and_silence_reconnects_with_backoff() {
        let cfg = LlrpConfig {
            backoff_min: 1_000,
            backoff_max: 8_000,
            ..LlrpConfig::default()
        };
        let mut h = Harness::new(cfg);
        h.take_actions();
        h.handshake();
        h.take_events();
        for _ in 0..12 {
            h.advance(5_000);
            h.feed(&bytes(fixtures::KEEPALIVE));
        }
        assert!(h.session.is_running());
        assert!(h.take_events().is_empty());

        // Silence: nothing happens until the timeout, then close and back off.
        assert_eq!(h.session.poll_timeout(), Some(h.now + 15_000));
        h.advance(14_999);
        assert!(h.take_events().is_empty());
        h.advance(1);
        assert_eq!(
            h.take_events(),
            [Harness::disconnected(DisconnectReason::Silence)]
        );
        assert_eq!(h.take_actions(), [Action::Close]);

        // Each failed attempt doubles the delay, up to the maximum.
        for delay in [1_000, 2_000, 4_000, 8_000, 8_000] {
            assert_eq!(h.session.poll_timeout(), Some(h.now + delay));
            h.advance(delay - 1);
            assert!(
                h.take_actions().is_empty(),
                "no reconnect before {delay} ms"
            );
            h.advance(1);
            assert_eq!(h.take_actions(), [Action::Connect]);
            h.session.disconnected(h.now);
            h.pump();
            assert_eq!(
                h.take_events(),
                [Harness::disconnected(DisconnectReason::ConnectFailed)]
            );
        }

        // A running ROSpec resets the backoff.
        h.advance(8_000);
        assert_eq!(h.take_actions(), [Action::Connect]);
        h.handshake();
        assert_eq!(h.take_events(), [Event::Connected, Event::Running]);
        h.session.disconnected(h.now);
        h.pump();
        assert_eq!(
            h.take_events(),
            [Harness::disconnected(DisconnectReason::TransportClosed)]
        );
        assert!(h.take_actions().is_empty(), "the transport already closed");
        assert_eq!(h.session.poll_timeout(), Some(h.now + 1_000));
    }

    #[test]
    fn error_status_reports_and_backs_off() {
        let mut h = Harness::new(LlrpConfig::default());
        let refusal = Message::decode(&bytes(fixtures::ADD_ROSPEC_RESPONSE_ERROR)).unwrap();
        h.reader
            .refuse
            .push((mt::ADD_ROSPEC, refusal.status().unwrap().clone()));
        h.take_actions();
        h.handshake();
        assert_eq!(
            h.take_events(),
            [
                Event::Connected,
                Event::ReaderError {
                    msg_type: mt::ADD_ROSPEC_RESPONSE,
                    code: 100,
                    description: "bad ROSpec".into()
                },
                Harness::disconnected(DisconnectReason::ReaderError {
                    msg_type: mt::ADD_ROSPEC_RESPONSE,
                    code: 100
                }),
            ]
        );
        assert_eq!(h.take_actions(), [Action::Close]);
        assert!(!h.session.is_running());
        assert_eq!(h.session.poll_timeout(), Some(h.now + 1_000));
        h.advance(1_000);
        assert_eq!(h.take_actions(), [Action::Connect]);
    }

    #[test]
    fn connection_endings() {
        let cfg = LlrpConfig {
            max_message_len: 64,
            ..LlrpConfig::default()
        };
        #[rustfmt::skip]
        let cases: Vec<(&str, bool, Vec<u8>, DisconnectReason)> = vec![
            ("another client holds the reader", false, bytes(fixtures::CONNECTION_ATTEMPT_REFUSED),
                DisconnectReason::ConnectionRefused { status: 2 }),
            ("the reader closes", true, bytes(fixtures::CONNECTION_CLOSE), DisconnectReason::ReaderClosed),
            ("an oversized message", true, vec![0x04, 0x3d, 0, 0, 0x10, 0],
                DisconnectReason::Protocol(LlrpError::TooLong { len: 4096, max: 64 })),
            ("a newer LLRP version", true, vec![0x08, 0x3e, 0, 0, 0, 10, 0, 0, 0, 1],
                DisconnectReason::Protocol(LlrpError::Version { version: 2 })),
            ("an ERROR_MESSAGE before running", false,
                Message::response(mt::ERROR_MESSAGE, 0, LlrpStatus::error(110, "version")).encode(),
                DisconnectReason::ReaderError { msg_type: mt::ERROR_MESSAGE, code: 110 }),
        ];
        for (name, running, wire, reason) in cases {
            let mut h = Harness::new(cfg.clone());
            h.take_actions();
            if running {
                h.handshake();
            } else {
                h.connect();
            }
            h.take_events();
            h.feed(&wire);
            let events = h.take_events();
            assert_eq!(
                events.last(),
                Some(&Harness::disconnected(reason)),
                "{name}: {events:?}"
            );
            assert_eq!(h.take_actions(), [Action::Close], "{name}");
            assert!(
                h.session.poll_timeout().is_some(),
                "{name}: a reconnect is scheduled"
            );
        }
    }

    #[test]
    fn unanswered_request_times_out() {
        let mut h = Harness::new(LlrpConfig::default());
        h.reader.ignore.push(mt::ENABLE_ROSPEC);
        h.handshake();
        assert_eq!(h.take_events(), [Event::Connected]);
        // Keepalives do not stand in for the response.
        for _ in 0..2 {
            h.advance(5_000);
            h.feed(&bytes(fixtures::KEEPALIVE));
        }
        h.advance(5_000);
        #[rustfmt::skip]
        assert_eq!(h.take_events(), [Harness::disconnected(DisconnectReason::ResponseTimeout {
            awaiting: mt::ENABLE_ROSPEC_RESPONSE,
        })]);
    }

    #[test]
    fn malformed_report_is_skipped() {
        let mut h = Harness::new(LlrpConfig::default());
        h.handshake();
        h.take_events();
        // A TagReportData without an EPC.
        let bad = Message {
            msg_type: mt::RO_ACCESS_REPORT,
            id: 3,
            body: Body::Unknown(vec![0, 0xf0, 0, 7, 0x81, 0, 1]),
        };
        h.feed(&bad.encode());
        h.feed(&bytes(fixtures::RO_ACCESS_REPORT));
        let events = h.take_events();
        assert!(
            matches!(
                events[0],
                Event::BadMessage(LlrpError::Malformed {
                    msg_type: 61,
                    id: 3,
                    ..
                })
            ),
            "{events:?}"
        );
        assert!(
            matches!(events[1..], [Event::Tag { .. }, Event::Tag { .. }]),
            "{events:?}"
        );
        assert!(h.session.is_running());
    }

    #[test]
    fn loss_drops_queued_bytes() {
        let mut h = Harness::new(LlrpConfig::default());
        h.handshake();
        // A KEEPALIVE_ACK queued but never written, then the connection drops: it must not reach the next one.
        h.session.handle_input(h.now, &bytes(fixtures::KEEPALIVE));
        h.session.disconnected(h.now);
        assert_eq!(h.session.poll_transmit(), None);
        // Bytes after the loss are ignored.
        h.session
            .handle_input(h.now, &bytes(fixtures::RO_ACCESS_REPORT));
        assert!(!h
            .session
            .events
            .iter()
            .any(|e| matches!(e, Event::Tag { .. })));
    }

    #[test]
    fn graceful_close() {
        let mut h = Harness::new(LlrpConfig::default());
        h.take_actions();
        h.handshake();
        h.take_events();
        h.session.close(h.now);
        h.pump();
        assert_eq!(
            h.reader.received.last().map(|m| m.msg_type),
            Some(mt::CLOSE_CONNECTION)
        );
        assert_eq!(
            h.take_events(),
            [Harness::disconnected(DisconnectReason::Shutdown)]
        );
        assert_eq!(h.take_actions(), [Action::Close]);
        assert!(h.session.is_shut_down());
        assert_eq!(h.session.poll_timeout(), None);
        h.advance(3_600_000);
        assert!(h.take_actions().is_empty(), "never reconnects");

        // A reader that never answers CLOSE_CONNECTION: closed at the silence timeout.
        let mut h = Harness::new(LlrpConfig::default());
        h.reader.ignore.push(mt::CLOSE_CONNECTION);
        h.take_actions();
        h.handshake();
        h.session.close(h.now);
        h.pump();
        assert!(h.take_actions().is_empty());
        h.advance(15_000);
        assert_eq!(h.take_actions(), [Action::Close]);
        assert!(h.session.is_shut_down());

        // Closing while backing off or connecting.
        let mut h = Harness::new(LlrpConfig::default());
        h.session.close(h.now);
        assert_eq!(
            h.session.poll_action(),
            Some(Action::Close),
            "the attempt is abandoned"
        );
        assert!(h.session.is_shut_down());
        h.session.connected(h.now);
        assert_eq!(
            h.session.poll_action(),
            Some(Action::Close),
            "a late connection is closed"
        );
    }
}
