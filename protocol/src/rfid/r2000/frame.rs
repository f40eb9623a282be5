//! Framing: bytes ⇄ frames.
//!
//! Two steps, like mini-redis: [`check`] looks at the start of a buffer and reports a whole valid frame's length,
//! [`CheckError::Incomplete`] (normal: read more) or [`CheckError::Invalid`]; [`FrameRef`] is then a view of the
//! checked bytes, so its accessors cannot fail.
//!
//! [`Decoder`] owns the receive buffer and finds frames in a stream that may also carry garbage (a reader booting,
//! line noise, a frame cut by a reconnect). Its rules:
//!
//! - bytes before the next 0xA0 are discarded;
//! - at a 0xA0 whose Len is below 3, or whose frame fails its checksum, only that 0xA0 is discarded and the search
//!   goes on from the next byte, so a real frame that follows a stray 0xA0, or hides in a corrupted frame's bytes,
//!   is still found;
//! - a candidate whose Len points past the bytes received so far waits for more. A stray 0xA0 with a large Len can
//!   hold back the frames behind it until enough bytes arrive to disprove it; when the line goes quiet instead,
//!   the caller calls [`Decoder::skip_partial`] (the session does so after `frame_timeout`).
//!
//! The decisions depend only on the bytes, never on how they were split into reads. Every byte pushed is counted
//! exactly once: `bytes_in == frame_bytes + discarded_bytes + buffered()`.

/// First byte of every frame, in both directions.
pub const HEAD: u8 = 0xA0;
/// The address every reader answers to.
pub const BROADCAST: u8 = 0xFF;
/// The shortest frame: Head, Len, Addr, Cmd, Check.
pub const MIN_FRAME_LEN: usize = 5;
/// The longest frame: Len is one byte, so 255 bytes after Head and Len.
pub const MAX_FRAME_LEN: usize = 257;
/// The most data bytes a frame carries.
pub const MAX_DATA_LEN: usize = MAX_FRAME_LEN - MIN_FRAME_LEN;

/// The Check byte for a frame whose bytes before Check are `bytes`: the two's complement of their 8-bit sum.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, &b| sum.wrapping_add(b))
        .wrapping_neg()
}

/// Appends the frame `addr`, `cmd`, `data` to `out`.
pub fn encode(addr: u8, cmd: u8, data: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    let len = u8::try_from(data.len() + 3).map_err(|_| FrameError::DataTooLong(data.len()))?;
    let start = out.len();
    out.reserve(data.len() + MIN_FRAME_LEN);
    out.extend_from_slice(&[HEAD, len, addr, cmd]);
    out.extend_from_slice(data);
    let check = checksum(&out[start..]);
    out.push(check);
    Ok(())
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The buffer does not start with 0xA0.
    #[error("no 0xA0 header (found {0:#04x})")]
    NoHeader(u8),
    /// Len is below 3, the size of Addr + Cmd + Check.
    #[error("length byte {0} is below 3 (address, command and check)")]
    BadLength(u8),
    /// The bytes do not sum to zero.
    #[error(
        "bad checksum in a {len}-byte frame for command {cmd:#04x}: carries {found:#04x}, expected {expected:#04x}"
    )]
    BadChecksum {
        /// The Check byte the other bytes call for.
        expected: u8,
        /// The Check byte received.
        found: u8,
        /// The frame's length according to its Len byte.
        len: usize,
        /// Its Cmd byte, as received.
        cmd: u8,
    },
    /// More data than a frame can carry ([`MAX_DATA_LEN`]).
    #[error("{0} data bytes do not fit in a frame (at most 252)")]
    DataTooLong(usize),
}

/// What [`check`] reports when the buffer does not start with a whole valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckError {
    /// The frame may be valid but has not fully arrived: read more.
    Incomplete,
    /// The buffer does not start with a frame.
    Invalid(FrameError),
}

/// The length of the valid frame at the start of `buf`. Cheap: reads Len, then sums at most 256 bytes.
pub fn check(buf: &[u8]) -> Result<usize, CheckError> {
    let Some(&head) = buf.first() else {
        return Err(CheckError::Incomplete);
    };
    if head != HEAD {
        return Err(CheckError::Invalid(FrameError::NoHeader(head)));
    }
    let Some(&len) = buf.get(1) else {
        return Err(CheckError::Incomplete);
    };
    if len < 3 {
        return Err(CheckError::Invalid(FrameError::BadLength(len)));
    }
    let total = usize::from(len) + 2;
    let Some(frame) = buf.get(..total) else {
        return Err(CheckError::Incomplete);
    };
    let (body, found) = (&frame[..total - 1], frame[total - 1]);
    let expected = checksum(body);
    if expected != found {
        return Err(CheckError::Invalid(FrameError::BadChecksum {
            expected,
            found,
            len: total,
            cmd: frame[3],
        }));
    }
    Ok(total)
}

/// A checked frame, borrowed from the buffer it was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    /// The whole frame, Head to Check; at least [`MIN_FRAME_LEN`] bytes and summing to zero.
    raw: &'a [u8],
}

impl<'a> FrameRef<'a> {
    /// The frame at the start of `buf` (which may continue past it).
    pub fn parse(buf: &'a [u8]) -> Result<FrameRef<'a>, CheckError> {
        let len = check(buf)?;
        Ok(FrameRef { raw: &buf[..len] })
    }

    /// The reader address.
    pub fn addr(&self) -> u8 {
        self.raw[2]
    }

    /// The command code.
    pub fn cmd(&self) -> u8 {
        self.raw[3]
    }

    /// The bytes between Cmd and Check.
    pub fn data(&self) -> &'a [u8] {
        &self.raw[4..self.raw.len() - 1]
    }

    /// The frame as received, Head to Check.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// An owned copy.
    pub fn to_frame(&self) -> Frame {
        Frame {
            addr: self.addr(),
            cmd: self.cmd(),
            data: self.data().to_vec(),
        }
    }
}

/// An owned frame, for building arbitrary ones (tests, tools); the session sends [`super::Command`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The reader address.
    pub addr: u8,
    /// The command code.
    pub cmd: u8,
    /// At most [`MAX_DATA_LEN`] bytes.
    pub data: Vec<u8>,
}

impl Frame {
    /// The frame's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::new();
        encode(self.addr, self.cmd, &self.data, &mut out)?;
        Ok(out)
    }
}

/// Counters kept by a [`Decoder`]. `bytes_in == frame_bytes + discarded_bytes + buffered()` at all times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Bytes pushed.
    pub bytes_in: u64,
    /// Valid frames returned.
    pub frames: u64,
    /// Bytes of those frames.
    pub frame_bytes: u64,
    /// Bytes thrown away: garbage between frames and the headers of rejected candidates.
    pub discarded_bytes: u64,
    /// Candidates rejected for a bad checksum.
    pub bad_checksums: u64,
    /// Candidates rejected for a Len below 3.
    pub bad_lengths: u64,
    /// Incomplete candidates given up by [`Decoder::skip_partial`].
    pub partials_skipped: u64,
}

/// Finds frames in a byte stream. Call [`Decoder::push`] with each read, then [`Decoder::next_frame`] until it
/// returns `None`. See the module documentation for the resynchronisation rules.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Start of the bytes not yet consumed; everything before it is a returned frame or discarded.
    pos: usize,
    stats: DecoderStats,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Takes bytes as read from the transport.
    pub fn push(&mut self, bytes: &[u8]) {
        // Consumed bytes go first, so the buffer holds at most one partial frame plus the latest read.
        self.buf.drain(..self.pos);
        self.pos = 0;
        self.buf.extend_from_slice(bytes);
        self.stats.bytes_in += bytes.len() as u64;
    }

    /// The next frame, a rejected candidate (the search goes on at the next call), or `None` when the buffered
    /// bytes hold no complete frame.
    pub fn next_frame(&mut self) -> Option<Result<FrameRef<'_>, FrameError>> {
        let pending = &self.buf[self.pos..];
        let garbage = pending
            .iter()
            .position(|&b| b == HEAD)
            .unwrap_or(pending.len());
        self.discard(garbage);
        match check(&self.buf[self.pos..]) {
            Ok(len) => {
                let start = self.pos;
                self.pos += len;
                self.stats.frames += 1;
                self.stats.frame_bytes += len as u64;
                Some(Ok(FrameRef {
                    raw: &self.buf[start..start + len],
                }))
            }
            Err(CheckError::Incomplete) => None,
            Err(CheckError::Invalid(error)) => {
                match error {
                    FrameError::BadChecksum { .. } => self.stats.bad_checksums += 1,
                    FrameError::BadLength(_) => self.stats.bad_lengths += 1,
                    FrameError::NoHeader(_) | FrameError::DataTooLong(_) => {}
                }
                self.discard(1);
                Some(Err(error))
            }
        }
    }

    /// Gives up the incomplete candidate at the front, when the line has gone quiet and it cannot be a real frame
    /// still arriving: drops its header byte so that [`Decoder::next_frame`] searches on. Returns whether there was
    /// anything to drop. Loop `skip_partial` and `next_frame` until [`Decoder::buffered`] is 0 to flush.
    pub fn skip_partial(&mut self) -> bool {
        if self.buffered() == 0 {
            return false;
        }
        self.stats.partials_skipped += 1;
        self.discard(1);
        true
    }

    /// Bytes pushed but neither returned in a frame nor discarded yet.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The counters.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    fn discard(&mut self, n: usize) {
        self.pos += n;
        self.stats.discarded_bytes += n as u64;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// Published captures, all of which sum to zero.
    const ACK: &str = "A0 04 01 74 10 D7";
    const VERSION: &str = "A0 05 01 72 01 09 DE";
    const TAG: &str = "A0 13 01 89 04 30 00 E2 00 30 16 66 13 01 21 15 50 74 EF 45 BF";
    const ROUND_END: &str = "A0 0A 01 89 00 00 11 00 00 00 05 B6";
    const ANTENNA_MISSING: &str = "A0 04 01 89 22 B0";

    /// Pushes `chunks` one by one, draining after each, and returns every frame's bytes and every error.
    fn decode(chunks: &[&[u8]]) -> (Vec<Result<Vec<u8>, FrameError>>, Decoder) {
        let mut decoder = Decoder::new();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.push(chunk);
            while let Some(r) = decoder.next_frame() {
                out.push(r.map(|f| f.as_bytes().to_vec()));
            }
        }
        (out, decoder)
    }

    fn frames(results: &[Result<Vec<u8>, FrameError>]) -> Vec<Vec<u8>> {
        results.iter().filter_map(|r| r.clone().ok()).collect()
    }

    fn assert_accounted(d: &Decoder) {
        let s = d.stats();
        assert_eq!(
            s.bytes_in,
            s.frame_bytes + s.discarded_bytes + d.buffered() as u64,
            "{s:?}"
        );
    }

    #[test]
    fn check_table() {
        let tag = hex(TAG);
        let cases: &[(&str, Vec<u8>, Result<usize, CheckError>)] = &[
            ("empty", vec![], Err(CheckError::Incomplete)),
            ("head only", vec![0xA0], Err(CheckError::Incomplete)),
            (
                "one short",
                tag[..tag.len() - 1].to_vec(),
                Err(CheckError::Incomplete),
            ),
            ("tag", tag.clone(), Ok(21)),
            ("tag and more", [&tag[..], &[0xA0, 0x04]].concat(), Ok(21)),
            ("no data", hex("A0 03 01 72 EA"), Ok(5)),
            (
                "not a head",
                hex("30 00"),
                Err(CheckError::Invalid(FrameError::NoHeader(0x30))),
            ),
            (
                "len 2",
                hex("A0 02 01 74"),
                Err(CheckError::Invalid(FrameError::BadLength(2))),
            ),
            (
                "len 0",
                hex("A0 00"),
                Err(CheckError::Invalid(FrameError::BadLength(0))),
            ),
            (
                "bad checksum",
                hex("A0 04 01 74 10 D8"),
                Err(CheckError::Invalid(FrameError::BadChecksum {
                    expected: 0xD7,
                    found: 0xD8,
                    len: 6,
                    cmd: 0x74,
                })),
            ),
            (
                "max len incomplete",
                [vec![0xA0, 0xFF], vec![0; 254]].concat(),
                Err(CheckError::Incomplete),
            ),
        ];
        for (name, bytes, expected) in cases {
            assert_eq!(check(bytes), *expected, "{name}");
        }
    }

    #[test]
    fn frame_accessors() {
        let bytes = hex(VERSION);
        let f = FrameRef::parse(&bytes).unwrap();
        assert_eq!(
            (f.addr(), f.cmd(), f.data()),
            (0x01, 0x72, &[0x01, 0x09][..])
        );
        assert_eq!(f.as_bytes(), &bytes[..]);
        assert_eq!(f.to_frame().encode().unwrap(), bytes);
    }

    #[test]
    fn encode_bounds() {
        let mut out = Vec::new();
        encode(0xFF, 0x01, &[0x55; MAX_DATA_LEN], &mut out).unwrap();
        assert_eq!(out.len(), MAX_FRAME_LEN);
        assert_eq!(check(&out), Ok(MAX_FRAME_LEN));
        assert_eq!(
            encode(0xFF, 0x01, &[0x55; MAX_DATA_LEN + 1], &mut Vec::new()),
            Err(FrameError::DataTooLong(253))
        );
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let stream = [hex(ACK), hex(TAG), hex(ROUND_END)].concat();
        let expected = vec![hex(ACK), hex(TAG), hex(ROUND_END)];
        for i in 0..=stream.len() {
            let (head, tail) = stream.split_at(i);
            let (out, d) = decode(&[head, tail]);
            assert_eq!(
                out,
                expected.iter().cloned().map(Ok).collect::<Vec<_>>(),
                "split at {i}"
            );
            assert_eq!(d.buffered(), 0);
            assert_accounted(&d);
        }
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(frames(&decode(&bytewise).0), expected, "byte by byte");
    }

    #[test]
    fn two_frames_in_one_push() {
        let stream = [hex(TAG), hex(TAG)].concat();
        let (out, d) = decode(&[&stream]);
        assert_eq!(frames(&out), vec![hex(TAG), hex(TAG)]);
        assert_eq!(d.stats().frames, 2);
        assert_accounted(&d);
    }

    #[test]
    fn bad_checksum_is_dropped_counted_and_decoding_continues() {
        let mut bad = hex(TAG);
        bad[10] ^= 0x01;
        let stream = [bad.clone(), hex(ROUND_END)].concat();
        let (out, d) = decode(&[&stream]);
        assert_eq!(
            out,
            vec![
                Err(FrameError::BadChecksum {
                    expected: 0xBE,
                    found: 0xBF,
                    len: 21,
                    cmd: 0x89
                }),
                Ok(hex(ROUND_END)),
            ]
        );
        let s = d.stats();
        assert_eq!((s.bad_checksums, s.frames, s.discarded_bytes), (1, 1, 21));
        assert_accounted(&d);
    }

    /// [`decode`], then flushes as the session does once the line goes quiet.
    fn decode_flushed(chunks: &[&[u8]]) -> (Vec<Result<Vec<u8>, FrameError>>, Decoder) {
        let (mut out, mut d) = decode(chunks);
        while d.skip_partial() {
            while let Some(r) = d.next_frame() {
                out.push(r.map(|f| f.as_bytes().to_vec()));
            }
        }
        (out, d)
    }

    #[test]
    fn garbage_between_frames_resynchronises() {
        // The same garbage before each of four frames. A stray A0 followed by a frame's A0 claims 162 bytes and
        // holds the frames behind it until the flush; a candidate with enough bytes behind it fails its checksum.
        // (name, garbage, then totals over the four: bad checksums, bad lengths, partials skipped, discarded bytes)
        let cases: &[(&str, &str, [u64; 4])] = &[
            ("random bytes", "13 37 C0 FF EE 00", [0, 0, 0, 24]),
            ("tail of a frame", "45 BF", [0, 0, 0, 8]),
            ("a stray A0", "A0", [0, 0, 4, 4]),
            ("stray A0 A0", "A0 A0", [0, 0, 8, 8]),
            ("A0 with len 0", "A0 00", [0, 4, 0, 8]),
            ("A0 with len 2", "A0 02 01", [0, 4, 0, 12]),
            ("A0 with a short len", "00 A0 05 01", [4, 0, 0, 16]),
            ("half a frame", "A0 13 01 89 04 30 00 E2", [3, 0, 1, 32]),
        ];
        let good = [hex(ACK), hex(TAG), hex(ROUND_END), hex(ANTENNA_MISSING)];
        for &(name, garbage, counts) in cases {
            let garbage = hex(garbage);
            let stream: Vec<u8> = good
                .iter()
                .flat_map(|f| [garbage.clone(), f.clone()].concat())
                .collect();
            for chunking in [stream.len(), 7, 1] {
                let chunks: Vec<&[u8]> = stream.chunks(chunking).collect();
                let (out, d) = decode_flushed(&chunks);
                assert_eq!(frames(&out), good.to_vec(), "{name}, chunks of {chunking}");
                let s = d.stats();
                assert_eq!(
                    [
                        s.bad_checksums,
                        s.bad_lengths,
                        s.partials_skipped,
                        s.discarded_bytes
                    ],
                    counts,
                    "{name}, chunks of {chunking}"
                );
                assert_eq!(d.buffered(), 0);
                assert_accounted(&d);
            }
        }
    }

    #[test]
    fn a_len_past_the_end_waits_then_resynchronises() {
        // A stray A0 FF claims 257 bytes: the frames behind it wait until those bytes have arrived...
        let stray = hex("A0 FF");
        let burst: Vec<u8> = std::iter::repeat_n(hex(TAG), 13).flatten().collect();
        let (out, d) = decode(&[&stray, &hex(ROUND_END)]);
        assert!(out.is_empty());
        assert_eq!(d.buffered(), 14);
        // ...and are found once the candidate is disproved by its checksum.
        let (out, d) = decode(&[&stray, &hex(ROUND_END), &burst]);
        assert_eq!(
            frames(&out),
            [vec![hex(ROUND_END)], vec![hex(TAG); 13]].concat()
        );
        assert_eq!(d.stats().bad_checksums, 1);
        assert_accounted(&d);
    }

    #[test]
    fn skip_partial_flushes_a_quiet_line() {
        let stream = [hex("A0 FF"), hex(ROUND_END), hex("A0 13 01")].concat();
        let (out, d) = decode(&[&stream]);
        assert!(out.is_empty());
        let (out, d2) = decode_flushed(&[&stream]);
        assert_eq!(frames(&out), vec![hex(ROUND_END)]);
        assert_eq!((d.buffered(), d2.buffered()), (17, 0));
        assert_eq!(d2.stats().partials_skipped, 2);
        assert_accounted(&d2);
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..=MAX_DATA_LEN),
        )
            .prop_map(|(addr, cmd, data)| Frame { addr, cmd, data })
    }

    /// Garbage without a header byte, so that the frames around it are decoded exactly.
    fn arb_garbage() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            any::<u8>().prop_filter("not a header", |b| *b != HEAD),
            0..20,
        )
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(frame in arb_frame()) {
            let bytes = frame.encode().unwrap();
            prop_assert_eq!(bytes.len(), frame.data.len() + MIN_FRAME_LEN);
            prop_assert_eq!(check(&bytes), Ok(bytes.len()));
            let parsed = FrameRef::parse(&bytes).unwrap();
            prop_assert_eq!(parsed.to_frame(), frame);
        }

        #[test]
        fn frames_among_garbage_survive_any_chunking(
            parts in prop::collection::vec((arb_garbage(), arb_frame()), 0..8),
            cuts in prop::collection::vec(1usize..40, 1..20),
        ) {
            let mut stream = Vec::new();
            let mut expected = Vec::new();
            for (garbage, frame) in &parts {
                stream.extend_from_slice(garbage);
                let bytes = frame.encode().unwrap();
                stream.extend_from_slice(&bytes);
                expected.push(bytes);
            }
            let mut chunks = Vec::new();
            let mut rest = &stream[..];
            for &cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (head, tail) = rest.split_at(cut.min(rest.len()));
                chunks.push(head);
                rest = tail;
            }
            let (out, d) = decode(&chunks);
            prop_assert_eq!(frames(&out), expected);
            prop_assert_eq!(d.buffered(), 0);
            assert_accounted(&d);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_chunking_does_not_matter(
            stream in prop::collection::vec(any::<u8>(), 0..600),
            cut in 1usize..64,
        ) {
            let (whole, d) = decode(&[&stream]);
            assert_accounted(&d);
            let chunks: Vec<&[u8]> = stream.chunks(cut).collect();
            let (chunked, d2) = decode(&chunks);
            prop_assert_eq!(&whole, &chunked);
            prop_assert_eq!(d.stats(), d2.stats());
            for frame in frames(&whole) {
                let f = FrameRef::parse(&frame).unwrap();
                let mut again = Vec::new();
                encode(f.addr(), f.cmd(), f.data(), &mut again).unwrap();
                prop_assert_eq!(again, frame);
            }
        }
    }
}
