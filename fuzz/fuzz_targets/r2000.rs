//! Fuzzes the R2000 "0xA0" serial protocol: `rfid::r2000::Decoder` and `R2000Session`.
//!
//! Input layout (so that seeds are reader captures with one byte in front):
//!
//! ```text
//! byte 0   seed for the chunk boundaries and the clock steps
//! rest     the byte stream from the reader
//! ```
//!
//! Properties:
//! - every frame the decoder returns re-encodes to exactly the bytes it was found in, and those bytes appear in the
//!   stream, in order, after the previous frame's;
//! - chunking invariance: the frames, the errors and the counters are the same whether the stream is pushed at
//!   once, byte by byte, or in chunks cut at pseudo-random points;
//! - accounting: `bytes_in == frame_bytes + discarded_bytes + buffered()`, and flushing with `skip_partial`
//!   empties the buffer;
//! - typing a frame never panics, and a tag report's EPC is its data less FreqAnt, PC and RSSI;
//! - the session, fed the same chunks with a clock that moves in pseudo-random steps and timeouts handled at its
//!   deadlines, never panics, only transmits valid frames, reports as many tags as it counts, and always has a
//!   deadline.

#![no_main]

use dockhand_protocol::rfid::r2000::{
    check, encode, Decoder, Event, FrameError, FrameRef, R2000Session, Response, SessionConfig,
};
use libfuzzer_sys::fuzz_target;

type Decoded = Vec<Result<Vec<u8>, FrameError>>;

/// Pushes `chunks`, draining after each, then flushes; returns what came out and the decoder.
fn decode<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (Decoded, Decoder) {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    let drain = |d: &mut Decoder, out: &mut Decoded| {
        while let Some(r) = d.next_frame() {
            out.push(r.map(|f| f.as_bytes().to_vec()));
        }
    };
    for chunk in chunks {
        d.push(chunk);
        drain(&mut d, &mut out);
        let s = d.stats();
        assert_eq!(
            s.bytes_in,
            s.frame_bytes + s.discarded_bytes + d.buffered() as u64
        );
    }
    while d.skip_partial() {
        drain(&mut d, &mut out);
    }
    assert_eq!(d.buffered(), 0, "flush left bytes behind");
    let s = d.stats();
    assert_eq!(s.bytes_in, s.frame_bytes + s.discarded_bytes);
    (out, d)
}

/// Chunk lengths from a tiny LCG: deterministic in `seed`, between 1 and 32 bytes.
fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((state >> 16) as usize % 32 + 1).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

fn check_frames(stream: &[u8], decoded: &Decoded) {
    let mut cursor = 0;
    for bytes in decoded.iter().filter_map(|r| r.as_ref().ok()) {
        assert_eq!(check(bytes), Ok(bytes.len()));
        let frame = FrameRef::parse(bytes).expect("a decoded frame parses");
        let mut again = Vec::new();
        encode(frame.addr(), frame.cmd(), frame.data(), &mut again)
            .expect("a decoded frame re-encodes");
        assert_eq!(&again, bytes, "re-encoding changed the frame");
        let at = stream[cursor..]
            .windows(bytes.len())
            .position(|w| w == &bytes[..])
            .expect("a frame's bytes come from the stream, in order");
        cursor += at + bytes.len();
        if let Response::TagRead { epc, .. } = frame.response() {
            assert_eq!(epc.len() + 4, frame.data().len());
        }
    }
}

fn run_session(parts: &[&[u8]], seed: u8) {
    let cfg = SessionConfig {
        antennas: vec![1, 2, 4],
        ..SessionConfig::default()
    };
    let mut s = R2000Session::new(cfg).expect("valid config");
    let mut state = u32::from(seed) | 1;
    let mut now = 0;
    let mut tags = 0;
    let mut step = |s: &mut R2000Session, now: u64| {
        while let Some(tx) = s.poll_transmit() {
            assert!(FrameRef::parse(&tx).is_ok(), "transmitted {tx:02x?}");
        }
        while let Some(e) = s.poll_event() {
            tags += u64::from(matches!(e, Event::Tag(_)));
        }
        let deadline = s
            .poll_timeout()
            .expect("a session always waits for something");
        // Handle every deadline that has passed, as a driver would before reading again.
        let mut guard = 0;
        let mut deadline = deadline;
        while deadline <= now && guard < 64 {
            s.handle_timeout(now);
            while s.poll_transmit().is_some() {}
            while let Some(e) = s.poll_event() {
                tags += u64::from(matches!(e, Event::Tag(_)));
            }
            deadline = s
                .poll_timeout()
                .expect("a session always waits for something");
            guard += 1;
        }
    };
    for part in parts {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        now += u64::from((state >> 16) % 700);
        step(&mut s, now);
        s.handle_input(now, part);
        step(&mut s, now);
    }
    for _ in 0..8 {
        now += 5_000;
        step(&mut s, now);
    }
    assert_eq!(s.stats().tags, tags);
}

fuzz_target!(|input: &[u8]| {
    let [seed, stream @ ..] = input else {
        return;
    };

    let (whole, d) = decode(std::iter::once(stream));
    check_frames(stream, &whole);
    let (bytewise, d1) = decode(stream.chunks(1));
    assert_eq!(whole, bytewise, "byte by byte");
    assert_eq!(d.stats(), d1.stats(), "byte by byte");
    let parts = chunks(stream, *seed);
    let (chunked, d2) = decode(parts.iter().copied());
    assert_eq!(whole, chunked, "chunked");
    assert_eq!(d.stats(), d2.stats(), "chunked");

    run_session(&parts, *seed);
});
