//! Serial barcode-scanner framing, sans-IO.
//!
//! A serial scanner sends each scan as bytes followed by a suffix (usually CR LF), optionally wrapped in STX/ETX,
//! often prefixed with an AIM symbology identifier such as `]C1`. [`Framer`] turns that byte stream back into scans.
//!
//! Call order: [`Framer::push`] the bytes as they arrive with the time they arrived, then call [`Framer::poll`]
//! until it returns `None`. With [`Terminator::None`] a scan ends when the line goes quiet, so also call
//! [`Framer::poll`] again at [`Framer::poll_timeout`]. The framer never reads a clock itself.
//!
//! Terminator rules, chosen because scanners in the field are misconfigured all the time:
//!
//! - [`Terminator::CrLf`]: CR, LF or CR LF each end a scan; the LF right after a CR is part of the same terminator.
//! - [`Terminator::Cr`] / [`Terminator::Lf`]: the other character (LF / CR) is ignored when it sits next to a
//!   terminator (at the start of a scan or just before its terminator); elsewhere it is data.
//! - [`Terminator::None`]: a scan ends after `idle_timeout` without bytes; trailing CR/LF bytes are dropped.
//! - Empty lines are skipped silently. A scan longer than `max_len` yields one [`FrameError::TooLong`]; the rest of it,
//!   up to the next terminator (or quiet period), is discarded and framing resumes after it.
//! - With `stx_etx`, a scan must be exactly STX, data, ETX before its terminator; with [`Terminator::None`] the ETX
//!   itself ends the scan.
//!
//! Data bytes are passed through untouched (a GS, 0x1D, inside GS1 data must survive).

use std::collections::VecDeque;
use std::str::FromStr;
use std::time::{Duration, Instant};

const STX: u8 = 0x02;
const ETX: u8 = 0x03;
const CR: u8 = b'\r';
const LF: u8 = b'\n';

/// What ends a scan on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Terminator {
    /// Carriage return, 0x0D.
    Cr,
    /// Line feed, 0x0A.
    Lf,
    /// CR LF (also accepts a lone CR or LF).
    CrLf,
    /// No suffix: a scan ends when the line goes quiet.
    None,
}

/// A terminator name that is not `cr`, `lf`, `crlf` or `none`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown terminator {0:?} (expected \"cr\", \"lf\", \"crlf\" or \"none\")")]
pub struct ParseTerminatorError(pub String);

impl FromStr for Terminator {
    type Err = ParseTerminatorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cr" => Ok(Terminator::Cr),
            "lf" => Ok(Terminator::Lf),
            "crlf" => Ok(Terminator::CrLf),
            "none" => Ok(Terminator::None),
            _ => Err(ParseTerminatorError(s.to_owned())),
        }
    }
}

/// How a scanner frames its scans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramerConfig {
    /// What ends a scan.
    pub terminator: Terminator,
    /// Scans are wrapped in STX (0x02) .. ETX (0x03).
    pub stx_etx: bool,
    /// The longest scan accepted, in bytes between terminators (AIM id and STX/ETX included).
    pub max_len: usize,
    /// With [`Terminator::None`], how long the line must be quiet for a scan to end.
    pub idle_timeout: Duration,
}

impl Default for FramerConfig {
    fn default() -> Self {
        FramerConfig {
            terminator: Terminator::CrLf,
            stx_etx: false,
            max_len: 4096,
            idle_timeout: Duration::from_millis(50),
        }
    }
}

/// One scan as framed: the AIM symbology identifier (if the scanner sent one) and the data after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawScan {
    /// The AIM symbology identifier, e.g. `]C1`.
    pub symbology: Option<String>,
    /// The scan's data, without AIM id, STX/ETX or terminator.
    pub data: Vec<u8>,
}

/// Why bytes from the scanner could not be framed into a scan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// More than `max_len` bytes arrived without a terminator; they are discarded up to the next terminator.
    #[error("scan longer than {max_len} bytes without a terminator")]
    TooLong {
        /// The configured limit.
        max_len: usize,
    },
    /// A scan started with STX but its terminator came before the ETX.
    #[error("STX without ETX before terminator")]
    StxWithoutEtx,
    /// An ETX without a preceding STX.
    #[error("ETX without STX")]
    EtxWithoutStx,
    /// A second STX inside a scan, usually a lost ETX and terminator.
    #[error("STX inside a scan (ETX or terminator lost?)")]
    NestedStx,
    /// Bytes before the STX or after the ETX of a scan.
    #[error("bytes outside STX..ETX")]
    OutsideStxEtx,
    /// STX ETX with nothing between, or only an AIM identifier.
    #[error("empty scan")]
    EmptyScan,
}

/// What [`Framer::poll`] produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEvent {
    /// A complete scan.
    Frame(RawScan),
    /// Bytes that did not form a valid scan.
    Error(FrameError),
}

/// The scanner framing state machine. See the module documentation for the rules.
#[derive(Debug)]
pub struct Framer {
    cfg: FramerConfig,
    /// Bytes of the scan in progress, at most `max_len`.
    frame: Vec<u8>,
    /// Overlong scan: drop bytes until the next terminator.
    discarding: bool,
    /// The previous byte was a CR terminator (CrLf mode), so an LF now belongs to it.
    after_cr: bool,
    /// When the last byte arrived, for the idle timeout.
    last_rx: Option<Instant>,
    events: VecDeque<FrameEvent>,
}

impl Framer {
    /// A framer with an empty buffer.
    pub fn new(cfg: FramerConfig) -> Self {
        Framer {
            cfg,
            frame: Vec::new(),
            discarding: false,
            after_cr: false,
            last_rx: None,
            events: VecDeque::new(),
        }
    }

    /// Takes bytes received at `now`.
    pub fn push(&mut self, bytes: &[u8], now: Instant) {
        if bytes.is_empty() {
            return;
        }
        // A quiet period before these bytes ends the previous scan even if nobody polled in between.
        self.check_idle(now);
        self.last_rx = Some(now);
        for &b in bytes {
            self.byte(b);
        }
    }

    /// The next event, if any. Call until `None` after every [`Framer::push`] and at [`Framer::poll_timeout`].
    pub fn poll(&mut self, now: Instant) -> Option<FrameEvent> {
        if self.events.is_empty() {
            self.check_idle(now);
        }
        self.events.pop_front()
    }

    /// When [`Framer::poll`] must be called again even without new bytes, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.cfg.terminator != Terminator::None || (self.frame.is_empty() && !self.discarding) {
            return None;
        }
        self.last_rx
            .and_then(|t| t.checked_add(self.cfg.idle_timeout))
    }

    fn check_idle(&mut self, now: Instant) {
        if self.cfg.terminator != Terminator::None {
            return;
        }
        let quiet = self
            .last_rx
            .and_then(|t| t.checked_add(self.cfg.idle_timeout))
            .is_some_and(|deadline| now >= deadline);
        if quiet {
            self.end_frame();
        }
    }

    fn byte(&mut self, b: u8) {
        let after_cr = std::mem::take(&mut self.after_cr);
        let is_terminator = match self.cfg.terminator {
            Terminator::CrLf => {
                if b == LF && after_cr {
                    return;
                }
                self.after_cr = b == CR;
                b == CR || b == LF
            }
            Terminator::Cr => {
                if b == LF && self.frame.is_empty() {
                    return;
                }
                b == CR
            }
            Terminator::Lf => {
                if b == CR && self.frame.is_empty() {
                    return;
                }
                b == LF
            }
            Terminator::None => false,
        };
        if is_terminator {
            self.end_frame();
            return;
        }
        if self.discarding {
            return;
        }
        if self.frame.len() >= self.cfg.max_len {
            self.frame.clear();
            self.discarding = true;
            self.events
                .push_back(FrameEvent::Error(FrameError::TooLong {
                    max_len: self.cfg.max_len,
                }));
            return;
        }
        self.frame.push(b);
        if b == ETX && self.cfg.stx_etx && self.cfg.terminator == Terminator::None {
            self.end_frame();
        }
    }

    fn end_frame(&mut self) {
        let mut frame = std::mem::take(&mut self.frame);
        if std::mem::take(&mut self.discarding) {
            return;
        }
        // Strip the stray character adjacent to the terminator (see module docs).
        let stray: &[u8] = match self.cfg.terminator {
            Terminator::Cr => &[LF],
            Terminator::Lf => &[CR],
            Terminator::None => &[CR, LF],
            Terminator::CrLf => &[],
        };
        while frame.last().is_some_and(|b| stray.contains(b)) {
            frame.pop();
        }
        if frame.is_empty() {
            return;
        }
        let event = match self.unwrap_stx_etx(&frame) {
            Err(e) => FrameEvent::Error(e),
            Ok(data) => {
                let (symbology, data) = split_aim(data);
                if data.is_empty() {
                    FrameEvent::Error(FrameError::EmptyScan)
                } else {
                    FrameEvent::Frame(RawScan {
                        symbology,
                        data: data.to_vec(),
                    })
                }
            }
        };
        self.events.push_back(event);
    }

    fn unwrap_stx_etx<'a>(&self, frame: &'a [u8]) -> Result<&'a [u8], FrameError> {
        if !self.cfg.stx_etx {
            return Ok(frame);
        }
        let Some(start) = frame.iter().position(|&b| b == STX) else {
            return Err(if frame.contains(&ETX) {
                FrameError::EtxWithoutStx
            } else {
                FrameError::OutsideStxEtx
            });
        };
        let Some(end) = frame.iter().position(|&b| b == ETX) else {
            return Err(FrameError::StxWithoutEtx);
        };
        if end < start {
            return Err(FrameError::EtxWithoutStx);
        }
        if start != 0 || end != frame.len() - 1 {
            return Err(FrameError::OutsideStxEtx);
        }
        let data = &frame[1..end];
        if data.contains(&STX) {
            return Err(FrameError::NestedStx);
        }
        Ok(data)
    }
}

/// Splits an ISO/IEC 15424 AIM symbology identifier (`]`, a symbology letter, a modifier letter or digit) off the
/// front of `data`. Data that does not start with a well-formed identifier is returned whole.
pub fn split_aim(data: &[u8]) -> (Option<String>, &[u8]) {
    match data {
        [b']', code, modifier, rest @ ..]
            if code.is_ascii_alphabetic() && modifier.is_ascii_alphanumeric() =>
        {
            let id = [b']', *code, *modifier]
                .iter()
                .map(|&b| char::from(b))
                .collect();
            (Some(id), rest)
        }
        _ => (None, data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(terminator: Terminator, stx_etx: bool, max_len: usize) -> FramerConfig {
        FramerConfig {
            terminator,
            stx_etx,
            max_len,
            ..FramerConfig::default()
        }
    }

    fn run(cfg: FramerConfig, chunks: &[&[u8]]) -> Vec<FrameEvent> {
        let now = Instant::now();
        let mut f = Framer::new(cfg);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, now);
            while let Some(e) = f.poll(now) {
                out.push(e);
            }
        }
        out
    }

    fn frame(sym: Option<&str>, data: &[u8]) -> FrameEvent {
        FrameEvent::Frame(RawScan {
            symbology: sym.map(str::to_owned),
            data: data.to_vec(),
        })
    }

    fn err(e: FrameError) -> FrameEvent {
        FrameEvent::Error(e)
    }

    #[test]
    fn framing_table() {
        use FrameError::*;
        use Terminator::{Cr, CrLf, Lf};
        // (terminator, stx_etx, max_len, input, expected events)
        type Case = (Terminator, bool, usize, &'static [u8], Vec<FrameEvent>);
        let cases: &[Case] = &[
            (CrLf, false, 64, b"ABC\r\n", vec![frame(None, b"ABC")]),
            (
                CrLf,
                false,
                64,
                b"ABC\rDEF\nGHI\r\n",
                vec![
                    frame(None, b"ABC"),
                    frame(None, b"DEF"),
                    frame(None, b"GHI"),
                ],
            ),
            (
                CrLf,
                false,
                64,
                b"\r\n\r\n\n\rA\r\n",
                vec![frame(None, b"A")],
            ),
            (
                CrLf,
                false,
                64,
                b"]C10109506000134352\x1d10X\r\n",
                vec![frame(Some("]C1"), b"0109506000134352\x1d10X")],
            ),
            (CrLf, false, 64, b"]C1\r\n", vec![err(EmptyScan)]),
            (CrLf, false, 64, b"]\r\n", vec![frame(None, b"]")]),
            (CrLf, false, 64, b"ABC", vec![]),
            (CrLf, false, 4, b"ABCD\r\n", vec![frame(None, b"ABCD")]),
            (
                CrLf,
                false,
                4,
                b"ABCDEFGHIJ\r\nXY\r\n",
                vec![err(TooLong { max_len: 4 }), frame(None, b"XY")],
            ),
            (
                Cr,
                false,
                64,
                b"AB\r\nCD\r",
                vec![frame(None, b"AB"), frame(None, b"CD")],
            ),
            (
                Cr,
                false,
                64,
                b"AB\n\rC\nD\r",
                vec![frame(None, b"AB"), frame(None, b"C\nD")],
            ),
            (
                Lf,
                false,
                64,
                b"AB\r\nCD\n\r\n",
                vec![frame(None, b"AB"), frame(None, b"CD")],
            ),
            (Lf, false, 64, b"A\rB\n", vec![frame(None, b"A\rB")]),
            (
                CrLf,
                true,
                64,
                b"\x02ABC\x03\r\n",
                vec![frame(None, b"ABC")],
            ),
            (
                CrLf,
                true,
                64,
                b"\x02]d2010\x03\r\n",
                vec![frame(Some("]d2"), b"010")],
            ),
            (CrLf, true, 64, b"\x02ABC\r\n", vec![err(StxWithoutEtx)]),
            (CrLf, true, 64, b"ABC\x03\r\n", vec![err(EtxWithoutStx)]),
            (CrLf, true, 64, b"ABC\r\n", vec![err(OutsideStxEtx)]),
            (
                CrLf,
                true,
                64,
                b"x\x02ABC\x03\r\n",
                vec![err(OutsideStxEtx)],
            ),
            (
                CrLf,
                true,
                64,
                b"\x02ABC\x03x\r\n",
                vec![err(OutsideStxEtx)],
            ),
            (CrLf, true, 64, b"\x02A\x02B\x03\r\n", vec![err(NestedStx)]),
            (CrLf, true, 64, b"\x02\x03\r\n", vec![err(EmptyScan)]),
            (
                CrLf,
                false,
                64,
                &[0xff, 0x00, 0x1d, b'\r'],
                vec![frame(None, &[0xff, 0x00, 0x1d])],
            ),
        ];
        for (term, stx, max, input, want) in cases {
            let got = run(cfg(*term, *stx, *max), &[input]);
            assert_eq!(
                &got,
                want,
                "{term:?} stx={stx} {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn idle_timeout() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut f = Framer::new(cfg(Terminator::None, false, 64));
        assert_eq!(f.poll_timeout(), None);
        f.push(b"AB", t0);
        f.push(b"C\r\n", t0 + ms(10));
        assert_eq!(f.poll(t0 + ms(20)), None);
        assert_eq!(f.poll_timeout(), Some(t0 + ms(60)));
        assert_eq!(f.poll(t0 + ms(60)), Some(frame(None, b"ABC")));
        assert_eq!(f.poll_timeout(), None);
        // A quiet gap between two pushes separates scans even without a poll in between.
        f.push(b"X", t0 + ms(100));
        f.push(b"Y", t0 + ms(200));
        assert_eq!(f.poll(t0 + ms(200)), Some(frame(None, b"X")));
        assert_eq!(f.poll(t0 + ms(200)), None);
        assert_eq!(f.poll(t0 + ms(250)), Some(frame(None, b"Y")));
        // STX/ETX without a terminator: the ETX ends the scan at once.
        let mut f = Framer::new(cfg(Terminator::None, true, 64));
        f.push(b"\x02AB\x03\x02CD\x03", t0);
        assert_eq!(f.poll(t0), Some(frame(None, b"AB")));
        assert_eq!(f.poll(t0), Some(frame(None, b"CD")));
        assert_eq!(f.poll(t0), None);
    }

    #[test]
    fn terminator_names() {
        let cases: &[(&str, Option<Terminator>)] = &[
            ("cr", Some(Terminator::Cr)),
            ("lf", Some(Terminator::Lf)),
            ("crlf", Some(Terminator::CrLf)),
            ("none", Some(Terminator::None)),
            ("CRLF", None),
            ("", None),
        ];
        for &(s, want) in cases {
            assert_eq!(s.parse::<Terminator>().ok(), want, "{s}");
        }
    }

    #[test]
    fn aim_ids() {
        let cases: &[(&[u8], Option<&str>, &[u8])] = &[
            (b"]C1010", Some("]C1"), b"010"),
            (b"]e0", Some("]e0"), b""),
            (b"]d2X", Some("]d2"), b"X"),
            (b"]1C0", None, b"]1C0"),
            (b"]C-0", None, b"]C-0"),
            (b"]C", None, b"]C"),
            (b"C10", None, b"C10"),
            (b"", None, b""),
        ];
        for &(data, sym, rest) in cases {
            let (s, r) = split_aim(data);
            assert_eq!((s.as_deref(), r), (sym, rest), "{data:?}");
        }
    }

    fn any_cfg() -> impl Strategy<Value = FramerConfig> {
        (
            prop_oneof![
                Just(Terminator::Cr),
                Just(Terminator::Lf),
                Just(Terminator::CrLf)
            ],
            any::<bool>(),
            1usize..40,
        )
            .prop_map(|(t, s, m)| cfg(t, s, m))
    }

    /// Splits `data` at the given cut points.
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

    proptest! {
        #[test]
        fn never_panics_or_overflows(
            cfg in any_cfg(),
            data in proptest::collection::vec(
                prop_oneof![Just(b'\r'), Just(b'\n'), Just(STX), Just(ETX), Just(b']'), any::<u8>()], 0..300),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let max = cfg.max_len;
            let chunks = chunked(&data, &cuts);
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            for e in run(cfg, &refs) {
                if let FrameEvent::Frame(f) = e {
                    prop_assert!(f.data.len() <= max);
                    prop_assert!(!f.data.is_empty());
                }
            }
        }

        #[test]
        fn chunking_invariance(
            cfg in any_cfg(),
            data in proptest::collection::vec(
                prop_oneof![Just(b'\r'), Just(b'\n'), Just(STX), Just(ETX), any::<u8>()], 0..300),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let chunks = chunked(&data, &cuts);
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(run(cfg.clone(), &refs), run(cfg, &[&data]));
        }

        #[test]
        fn frames_round_trip(
            cfg in any_cfg(),
            scans in proptest::collection::vec((
                proptest::option::of(prop_oneof![Just("]C1"), Just("]d2"), Just("]E0"), Just("]Q3")]),
                // No CR, LF, STX or ETX inside data, and no leading `]` that could look like an AIM id.
                proptest::collection::vec(any::<u8>().prop_filter("framing byte", |b| {
                    !matches!(*b, b'\r' | b'\n' | STX | ETX | b']')
                }), 1..30),
            ), 0..8),
        ) {
            let overhead = 3 + if cfg.stx_etx { 2 } else { 0 };
            let cfg = FramerConfig { max_len: 30 + overhead, ..cfg };
            let term: &[u8] = match cfg.terminator {
                Terminator::Cr => b"\r",
                Terminator::Lf => b"\n",
                _ => b"\r\n",
            };
            let mut wire = Vec::new();
            for (sym, data) in &scans {
                if cfg.stx_etx { wire.push(STX); }
                if let Some(s) = sym { wire.extend_from_slice(s.as_bytes()); }
                wire.extend_from_slice(data);
                if cfg.stx_etx { wire.push(ETX); }
                wire.extend_from_slice(term);
            }
            let want: Vec<FrameEvent> = scans
                .iter()
                .map(|(sym, data)| frame(*sym, data))
                .collect();
            prop_assert_eq!(run(cfg, &[&wire]), want);
        }
    }
}
