//! The reader simulators seen from the host side: a hand-written R2000 host on the pty and a hand-written LLRP
//! client on TCP. Both build and check bytes themselves (literal frames, their own checksum and header code), so
//! they test the simulators against the published layouts, not against the simulators' own builders.

use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use dockhand_tests::rfidsim::{Direction, LlrpSim, Pass, R2000Options, R2000Sim, Script};
use serialport::TTYPort;

// ---------------------------------------------------------------------------------------------------------------
// R2000

/// The host side of the pty.
struct Host {
    port: TTYPort,
    buf: Vec<u8>,
}

impl Host {
    fn open(path: &std::path::Path) -> Host {
        let port = serialport::new(path.to_string_lossy(), 115_200)
            .timeout(Duration::from_millis(20))
            .open_native()
            .expect("open the simulated module");
        Host {
            port,
            buf: Vec::new(),
        }
    }

    /// Sends a command frame, computing its check byte: the two's complement of the byte sum.
    fn send(&mut self, addr: u8, cmd: u8, data: &[u8]) {
        let mut f = vec![0xA0, (data.len() + 3) as u8, addr, cmd];
        f.extend_from_slice(data);
        let sum = f.iter().fold(0u8, |a, b| a.wrapping_add(*b));
        f.push(0u8.wrapping_sub(sum));
        self.port.write_all(&f).expect("write");
    }

    /// The next frame as (cmd, data), asserting its framing and check byte; None after `timeout`.
    fn frame(&mut self, timeout: Duration) -> Option<(u8, Vec<u8>)> {
        let end = Instant::now() + timeout;
        loop {
            if self.buf.len() >= 2 && self.buf.len() >= usize::from(self.buf[1]) + 2 {
                let n = usize::from(self.buf[1]) + 2;
                let f: Vec<u8> = self.buf.drain(..n).collect();
                assert_eq!(f[0], 0xA0, "head");
                assert_eq!(f[2], 0x01, "the module's address");
                let sum = f.iter().fold(0u8, |a, b| a.wrapping_add(*b));
                assert_eq!(sum, 0, "check byte of {f:02X?}");
                return Some((f[3], f[4..n - 1].to_vec()));
            }
            if Instant::now() > end {
                return None;
            }
            let mut chunk = [0u8; 1024];
            match self.port.read(&mut chunk) {
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::TimedOut => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    fn expect(&mut self, cmd: u8) -> Vec<u8> {
        let (c, data) = self.frame(Duration::from_secs(2)).expect("an answer");
        assert_eq!(c, cmd, "answer to {cmd:#04x}");
        data
    }

    fn silent_for(&mut self, d: Duration) {
        assert_eq!(self.frame(d), None, "expected no answer");
    }

    /// Selects an antenna, runs one inventory round, returns (epc, antenna, rssi dBm) per tag frame.
    fn round(&mut self, antenna: u8) -> Vec<(Vec<u8>, u8, i16)> {
        self.send(0x01, 0x74, &[antenna]);
        assert_eq!(self.expect(0x74), [0x10]);
        self.send(0x01, 0x89, &[0x01]);
        let mut tags = Vec::new();
        loop {
            let data = self.expect(0x89);
            match data.len() {
                1 => panic!("inventory failed with {:#04x}", data[0]),
                7 => {
                    assert_eq!(data[0], antenna, "end-of-round antenna");
                    let total = u32::from_be_bytes([data[3], data[4], data[5], data[6]]);
                    assert_eq!(total as usize, tags.len(), "TotalRead");
                    return tags;
                }
                _ => {
                    assert_eq!(data[0] & 3, antenna, "FreqAnt antenna bits");
                    let pc = u16::from_be_bytes([data[1], data[2]]);
                    let words = usize::from(pc >> 11);
                    assert_eq!(data.len(), 3 + words * 2 + 1, "PC length vs frame");
                    let epc = data[3..3 + words * 2].to_vec();
                    tags.push((epc, data[0] & 3, i16::from(data[data.len() - 1]) - 129));
                }
            }
        }
    }
}

fn epc(n: u8) -> Vec<u8> {
    vec![0x31, 0x14, 0x25, 0x7B, 0xF4, 0, 0, 0, 0, 0, 0, n]
}

fn two_pass_script() -> Script {
    let mut inbound = Pass::new(vec![epc(1), epc(2)], Direction::Inbound);
    inbound.duration_ms = 400;
    inbound.reads_per_tag = (20, 40);
    let mut outbound = Pass::new(vec![epc(3)], Direction::Outbound);
    outbound.duration_ms = 400;
    outbound.reads_per_tag = (20, 40);
    let mut script = Script::new(3).pass(0, inbound).pass(300, outbound);
    script.stray_fraction = 0.1;
    script
}

#[test]
fn r2000_answers_commands_and_plays_the_script() {
    let script = two_pass_script();
    let options = R2000Options {
        connected: [true, true, false, true],
        ..R2000Options::default()
    };
    let sim = R2000Sim::start_with(&script, options).expect("start");
    let mut host = Host::open(sim.path());

    // Firmware version: A0 03 01 72 EA.
    host.send(0x01, 0x72, &[]);
    assert_eq!(host.expect(0x72).len(), 2);
    // The public address is answered too; get work antenna → antenna 0 after power-up.
    host.send(0xFF, 0x75, &[]);
    assert_eq!(host.expect(0x75), [0x00]);
    // Antenna id 4 does not exist on a 4-port module.
    host.send(0x01, 0x74, &[0x04]);
    assert_eq!(host.expect(0x74), [0x47]);
    // Port 3 (id 2) has no antenna: selecting works, inventory reports 0x22 antenna missing.
    host.send(0x01, 0x74, &[0x02]);
    assert_eq!(host.expect(0x74), [0x10]);
    host.send(0x01, 0x89, &[0x01]);
    assert_eq!(host.expect(0x89), [0x22]);
    // Unknown command → fail frame with the command's code.
    host.send(0x01, 0x99, &[]);
    assert_eq!(host.expect(0x99), [0x11]);
    // Another reader's address and a corrupted frame: no answer.
    host.send(0x05, 0x75, &[]);
    host.port
        .write_all(&[0xA0, 0x03, 0x01, 0x75, 0x00])
        .expect("write");
    host.silent_for(Duration::from_millis(100));
    assert_eq!(sim.stats().bad_checksums, 1);

    // The inventory loop of a gate host: alternate antennas 0 and 1 (LLRP antennas 1 and 2).
    let mut seen: Vec<(Vec<u8>, u8, i16)> = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    while !sim.done() && Instant::now() < end {
        for antenna in [0, 1] {
            seen.extend(host.round(antenna));
        }
    }
    assert!(sim.done(), "every read delivered or lost within 5 s");
    let stats = sim.stats();
    let truth = sim.truth();
    assert_eq!(stats.reads_lost, 0, "the host polled every antenna in time");
    assert_eq!(stats.reads_delivered as usize, seen.len());
    assert_eq!(seen.len(), truth.total_reads);
    assert!(seen.iter().all(|(_, _, rssi)| (-90..=-20).contains(rssi)));

    // Direction shows in the order the antennas first saw each pass tag.
    let first =
        |tag: &[u8], antenna: u8| seen.iter().position(|(e, a, _)| e == tag && *a == antenna);
    for (tag, earlier, later) in [(epc(1), 0, 1), (epc(2), 0, 1), (epc(3), 1, 0)] {
        assert!(first(&tag, earlier) < first(&tag, later), "{tag:02X?}");
    }
    let strays: HashSet<&Vec<u8>> = truth.strays.iter().collect();
    assert!(!strays.is_empty());
    assert!(seen
        .iter()
        .filter(|(e, _, _)| strays.contains(e))
        .all(|(_, _, rssi)| (-75..=-70).contains(rssi)));

    // A module that stops answering, then answers again.
    sim.go_silent(Duration::from_millis(300));
    host.send(0x01, 0x75, &[]);
    host.silent_for(Duration::from_millis(200));
    std::thread::sleep(Duration::from_millis(150));
    host.send(0x01, 0x75, &[]);
    assert_eq!(host.expect(0x75), [0x01], "the last selected antenna");

    // Reset: no answer, deaf for ~500 ms, then back on antenna 0.
    host.send(0x01, 0x70, &[]);
    host.send(0x01, 0x75, &[]);
    host.silent_for(Duration::from_millis(300));
    std::thread::sleep(Duration::from_millis(300));
    host.send(0x01, 0x75, &[]);
    assert_eq!(host.expect(0x75), [0x00]);
    assert_eq!(sim.stats().resets, 1);
}

#[test]
fn r2000_loses_reads_on_an_antenna_nobody_inventories() {
    let script = two_pass_script();
    let sim = R2000Sim::start(&script).expect("start");
    let mut host = Host::open(sim.path());
    let end = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while !sim.done() && Instant::now() < end {
        seen.extend(host.round(0));
    }
    let stats = sim.stats();
    assert!(sim.done());
    assert!(seen.iter().all(|(_, a, _)| *a == 0));
    assert!(stats.reads_lost > 0);
    assert_eq!(
        (stats.reads_delivered + stats.reads_lost) as usize,
        sim.truth().total_reads
    );

    // Dropping the simulator closes the pty master: the host sees the module vanish, as if unplugged.
    drop(sim);
    let end = Instant::now() + Duration::from_secs(2);
    let gone = loop {
        let mut b = [0u8; 16];
        match host.port.read(&mut b) {
            Err(e) if e.kind() != ErrorKind::TimedOut => break true,
            _ if Instant::now() > end => break false,
            _ => {}
        }
    };
    assert!(gone, "the host's reads fail once the module is gone");
}

// ---------------------------------------------------------------------------------------------------------------
// LLRP

/// The client's own message code: header = rsvd(3) ver(3)=1 type(10), length u32, id u32.
fn llrp(kind: u16, id: u32, body: &[u8]) -> Vec<u8> {
    let mut m = ((1u16 << 10) | kind).to_be_bytes().to_vec();
    m.extend_from_slice(&(10 + body.len() as u32).to_be_bytes());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn param(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut p = kind.to_be_bytes().to_vec();
    p.extend_from_slice(&(4 + body.len() as u16).to_be_bytes());
    p.extend_from_slice(body);
    p
}

struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A received message: (type, id, body).
type Msg = (u16, u32, Vec<u8>);

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, kind: u16, id: u32, body: &[u8]) {
        self.stream.write_all(&llrp(kind, id, body)).expect("send");
    }

    /// The next message; Err(()) on EOF; Ok(None) after `timeout`.
    fn next(&mut self, timeout: Duration) -> Result<Option<Msg>, ()> {
        let end = Instant::now() + timeout;
        loop {
            if self.buf.len() >= 10 {
                let word = u16::from_be_bytes([self.buf[0], self.buf[1]]);
                assert_eq!(word >> 10, 1, "reserved bits 0, version 1");
                let len = u32::from_be_bytes(self.buf[2..6].try_into().expect("4")) as usize;
                assert!(len >= 10);
                if self.buf.len() >= len {
                    let m: Vec<u8> = self.buf.drain(..len).collect();
                    let id = u32::from_be_bytes(m[6..10].try_into().expect("4"));
                    return Ok(Some((word & 0x3FF, id, m[10..].to_vec())));
                }
            }
            if Instant::now() > end {
                return Ok(None);
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return Err(()),
            }
        }
    }

    fn expect(&mut self, kind: u16) -> Msg {
        let m = self
            .next(Duration::from_secs(2))
            .expect("connection open")
            .expect("a message");
        assert_eq!(m.0, kind, "message type");
        m
    }

    /// Sends a request and checks the response type, ID and LLRPStatus code; returns the body after the status.
    fn call(&mut self, kind: u16, id: u32, body: &[u8], status: u16) -> Vec<u8> {
        self.send(kind, id, body);
        let want = if kind == 14 { 4 } else { kind + 10 };
        let (_, rid, body) = self.expect(want);
        assert_eq!(rid, id, "response carries the request's ID");
        let (ptype, plen) = tl(&body);
        assert_eq!(ptype, 287, "LLRPStatus first");
        assert_eq!(
            u16::from_be_bytes([body[4], body[5]]),
            status,
            "status of {kind}"
        );
        body[plen..].to_vec()
    }
}

/// Type and length of the TLV parameter at the start of `b`.
fn tl(b: &[u8]) -> (u16, usize) {
    (
        u16::from_be_bytes([b[0], b[1]]) & 0x3FF,
        usize::from(u16::from_be_bytes([b[2], b[3]])),
    )
}

/// The ConnectionAttemptEvent status of a READER_EVENT_NOTIFICATION body.
fn connection_status(body: &[u8]) -> u16 {
    let (t, len) = tl(body);
    assert_eq!((t, len), (246, body.len()));
    let (t, l) = tl(&body[4..]);
    assert_eq!((t, l), (128, 12), "UTCTimestamp first");
    let ev = &body[16..];
    assert_eq!(tl(ev), (256, 6));
    u16::from_be_bytes([ev[4], ev[5]])
}

/// One TagReportData: (epc, antenna, peak rssi, seen count, first seen µs).
type Tag = (Vec<u8>, u16, i8, u16, u64);

fn tag_reports(mut body: &[u8]) -> Vec<Tag> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let (t, len) = tl(body);
        assert_eq!(t, 240, "TagReportData");
        let mut p = &body[4..len];
        let (mut epc, mut antenna, mut rssi, mut count, mut first) = (Vec::new(), 0, 0, 0, 0);
        while !p.is_empty() {
            if p[0] & 0x80 == 0 {
                let (t, l) = tl(p);
                assert_eq!(t, 241, "EPCData");
                let bits = usize::from(u16::from_be_bytes([p[4], p[5]]));
                epc = p[6..6 + bits.div_ceil(8)].to_vec();
                p = &p[l..];
                continue;
            }
            // TV sizes from the standard: the value length follows from the type.
            let (kind, size) = match p[0] & 0x7F {
                13 => (13, 12),
                k @ (1 | 8) => (k, 2),
                6 => (6, 1),
                k @ (2 | 4) => (k, 8),
                9 => (9, 4),
                other => panic!("unexpected TV type {other}"),
            };
            let v = &p[1..1 + size];
            match kind {
                13 => epc = v.to_vec(),
                1 => antenna = u16::from_be_bytes([v[0], v[1]]),
                6 => rssi = v[0] as i8,
                8 => count = u16::from_be_bytes([v[0], v[1]]),
                2 => first = u64::from_be_bytes(v.try_into().expect("8")),
                _ => {}
            }
            p = &p[1 + size..];
        }
        out.push((epc, antenna, rssi, count, first));
        body = &body[len..];
    }
    out
}

fn add_rospec_body(id: u32) -> Vec<u8> {
    let start = param(179, &[0]); // ROSpecStartTrigger: Null (started by START_ROSPEC)
    let stop = param(182, &[0, 0, 0, 0, 0]); // ROSpecStopTrigger: Null, duration 0
    let boundary = param(178, &[start, stop].concat());
    let aispec = param(183, &[0, 1, 0, 0]); // one antenna id: 0 = all
    let mut spec = id.to_be_bytes().to_vec();
    spec.extend_from_slice(&[0, 0]); // priority, current state (disabled)
    spec.extend(boundary);
    spec.extend(aispec);
    param(177, &spec)
}

#[test]
fn llrp_handshake_reports_keepalives_and_a_dropped_connection() {
    let script = Script::pallet_gate(6, 300, 21);
    let sim = LlrpSim::start(&script, 0).expect("start");
    let mut c = Client::connect(sim.port());
    let (_, _, body) = c.expect(63);
    assert_eq!(connection_status(&body), 0, "connection accepted");

    // A second client while the first is connected: refused with status 2 and closed.
    let mut other = Client::connect(sim.port());
    let (_, _, body) = other.expect(63);
    assert_eq!(connection_status(&body), 2);
    assert_eq!(other.next(Duration::from_secs(1)), Err(()), "closed");

    // SET_READER_CONFIG: ResetToFactoryDefault 0, KeepaliveSpec periodic 100 ms.
    let keepalive = param(220, &[1, 0, 0, 0, 100]);
    c.call(3, 1, &[[0].as_slice(), &keepalive].concat(), 0);
    let caps = c.call(1, 2, &[0], 0);
    assert_eq!(tl(&caps).0, 137, "GeneralDeviceCapabilities");
    assert_eq!(u16::from_be_bytes([caps[4], caps[5]]), 4, "antennas");
    c.call(21, 3, &0u32.to_be_bytes(), 0);
    c.call(20, 4, &add_rospec_body(1), 0);
    c.call(24, 5, &1u32.to_be_bytes(), 0);
    c.call(22, 6, &99u32.to_be_bytes(), 101);
    c.send(999, 7, &[]);
    let (_, id, body) = c.expect(100);
    assert_eq!((id, u16::from_be_bytes([body[4], body[5]])), (7, 109));
    c.call(22, 8, &1u32.to_be_bytes(), 0);

    let mut tags: Vec<Tag> = Vec::new();
    let mut acks = 0;
    let mut dropped = false;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(8);
    while Instant::now() < deadline {
        if !dropped && started.elapsed() > Duration::from_millis(700) {
            sim.disconnect_now();
        }
        match c.next(Duration::from_millis(50)) {
            Ok(Some((62, id, _))) => {
                c.send(72, id, &[]);
                acks += 1;
            }
            Ok(Some((61, _, body))) => tags.extend(tag_reports(&body)),
            Ok(Some((kind, _, _))) => panic!("unexpected message {kind}"),
            Ok(None) if sim.done() => break,
            Ok(None) => {}
            Err(()) => {
                assert!(!dropped, "dropped once only");
                dropped = true;
                // Stay away long enough for reads to fall due with nobody connected.
                std::thread::sleep(Duration::from_millis(200));
                c = Client::connect(sim.port());
                let (_, _, body) = c.expect(63);
                assert_eq!(connection_status(&body), 0, "reconnected");
            }
        }
    }
    assert!(dropped, "the connection was dropped");
    assert!(sim.done(), "script finished within 8 s");
    // Close; reports and keepalives sent before the response still arrive first.
    c.send(14, 9, &[]);
    loop {
        match c
            .next(Duration::from_secs(2))
            .expect("open")
            .expect("a message")
        {
            (61, _, body) => tags.extend(tag_reports(&body)),
            // The reader stops reading after CLOSE_CONNECTION: an ACK now would never count.
            (62, _, _) => {}
            (4, 9, body) => {
                assert_eq!(
                    (tl(&body).0, u16::from_be_bytes([body[4], body[5]])),
                    (287, 0)
                );
                break;
            }
            (kind, _, _) => panic!("unexpected message {kind}"),
        }
    }
    assert_eq!(
        c.next(Duration::from_secs(1)),
        Err(()),
        "closed after CLOSE_CONNECTION_RESPONSE"
    );

    let stats = sim.stats();
    let truth = sim.truth();
    let delivered: u64 = tags.iter().map(|t| u64::from(t.3)).sum();
    assert_eq!(delivered, stats.reads_delivered);
    assert!(
        stats.reads_lost > 0,
        "reads due while disconnected are lost"
    );
    assert_eq!(
        (stats.reads_delivered + stats.reads_lost) as usize,
        truth.total_reads
    );
    assert!(
        tags.iter().any(|t| t.3 > 1),
        "repeated reads merged with TagSeenCount"
    );
    assert!(tags
        .iter()
        .all(|t| t.0.len() == 12 && (1..=2).contains(&t.1)));
    assert!(acks >= 5, "keepalives every 100 ms: {acks}");
    // Each ACK matched a KEEPALIVE id; one may have been written into the connection the reader had just dropped.
    assert!(
        (acks - 1..=acks).contains(&stats.keepalive_acks),
        "{acks} sent, {stats:?}"
    );
    assert_eq!(stats.keepalive_acks_unmatched, 0);
    assert_eq!(
        (
            stats.connections_accepted,
            stats.connections_rejected,
            stats.disconnects
        ),
        (2, 1, 1)
    );

    // Reported timestamps follow the script: per tag, first sight on the outside antenna before the inside one.
    let mut first: HashMap<(&[u8], u16), u64> = HashMap::new();
    for (epc, antenna, _, _, at) in &tags {
        let e = first.entry((epc.as_slice(), *antenna)).or_insert(*at);
        *e = (*e).min(*at);
    }
    for p in truth
        .passes
        .iter()
        .filter(|p| p.direction == Direction::Inbound)
    {
        let tag = p.tags[0].as_slice();
        if let (Some(o), Some(i)) = (first.get(&(tag, 1)), first.get(&(tag, 2))) {
            assert!(o < i, "outside before inside");
        }
    }
    let stray_reads = sim
        .truth()
        .strays
        .iter()
        .map(|s| tags.iter().filter(|t| &t.0 == s).count())
        .sum::<usize>();
    assert!(stray_reads > 0, "strays reported too");
}

/// Soak seed 2089 of the fleet simulation: the gate's first inventory command started the reader's script while
/// the gate had not yet pulled its ASN, so pallet 0 passed "unannounced". With `manual_clock` no read is due
/// before `start_clock`, however often the host inventories; after it, the script plays from then.
#[test]
fn soak_seed_2089_a_manual_clock_waits_for_start_clock() {
    let script = two_pass_script();
    let options = R2000Options {
        manual_clock: true,
        ..R2000Options::default()
    };
    let sim = R2000Sim::start_with(&script, options).expect("start");
    let mut host = Host::open(sim.path());
    let idle_until = Instant::now() + Duration::from_millis(700);
    while Instant::now() < idle_until {
        for antenna in [0, 1] {
            assert_eq!(host.round(antenna), vec![], "a read before start_clock");
        }
    }
    assert_eq!(sim.clock_started(), None);
    assert_eq!(sim.stats().reads_delivered, 0);

    sim.start_clock();
    let started = sim.clock_started().expect("started");
    let mut seen = 0;
    let end = Instant::now() + Duration::from_secs(5);
    while !sim.done() && Instant::now() < end {
        for antenna in [0, 1] {
            seen += host.round(antenna).len();
        }
    }
    assert!(sim.done(), "the script played out after start_clock");
    assert_eq!(seen, sim.truth().total_reads);
    assert_eq!(
        sim.clock_started(),
        Some(started),
        "start_clock starts it once"
    );
}
