//! Fuzzes `scan::Framer`, the serial scanner framing state machine.
//!
//! Input layout (so that seeds are real serial captures with three bytes in front):
//!
//! ```text
//! byte 0   bits 0-1  terminator: Cr, Lf, CrLf, None
//!          bit  2    stx_etx
//! byte 1   max_len: 1..=255 as is, 0 = the default 4096
//! byte 2   seed for the chunk boundaries
//! rest     the byte stream, as it arrives on the wire (all at the same instant)
//! ```
//!
//! Properties:
//! - chunking invariance: the events are the same whether the stream is pushed at once, byte by byte, or in
//!   chunks cut at pseudo-random points, and whether the framer is polled after every push or only at the end;
//! - no frame is longer than `max_len` (AIM id and STX/ETX counted), and none has empty data;
//! - a frame's data never holds a byte that ends a scan (CR/LF per terminator, ETX in STX/ETX mode), nor an STX;
//! - with `Terminator::None` (and no STX/ETX) no scan ends before the line goes quiet, and nothing is pending once
//!   it has.

#![no_main]

use dockhand_protocol::scan::{FrameEvent, Framer, FramerConfig, Terminator};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

const TERMINATORS: [Terminator; 4] = [
    Terminator::Cr,
    Terminator::Lf,
    Terminator::CrLf,
    Terminator::None,
];

/// Pushes `chunks` at `now`, polling after each push if `poll_each`, and drains the events once the line has been
/// quiet for the idle timeout.
fn run<'a>(
    cfg: &FramerConfig,
    chunks: impl Iterator<Item = &'a [u8]>,
    poll_each: bool,
    now: Instant,
) -> Vec<FrameEvent> {
    let mut f = Framer::new(cfg.clone());
    let mut out = Vec::new();
    for c in chunks {
        f.push(c, now);
        if poll_each {
            out.extend(std::iter::from_fn(|| f.poll(now)));
        }
    }
    out.extend(std::iter::from_fn(|| f.poll(now)));
    if cfg.terminator == Terminator::None {
        // Without ETX to end it, no scan may end while the line is still busy...
        if !cfg.stx_etx {
            assert!(
                !out.iter().any(|e| matches!(e, FrameEvent::Frame(_))),
                "Terminator::None framed before the idle timeout: {out:?}"
            );
        }
        let quiet = now + cfg.idle_timeout;
        assert!(f.poll_timeout().is_none_or(|t| t <= quiet));
        out.extend(std::iter::from_fn(|| f.poll(quiet)));
        // ...and once it is quiet, nothing is left pending.
        assert_eq!(
            f.poll_timeout(),
            None,
            "still pending after the idle timeout"
        );
    }
    out
}

/// Chunk lengths from a tiny LCG: deterministic in `seed`, between 1 and 16 bytes.
fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((state >> 16) as usize % 16 + 1).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let [mode, max_len, seed, stream @ ..] = input else {
        return;
    };
    let cfg = FramerConfig {
        terminator: TERMINATORS[usize::from(mode & 0b11)],
        stx_etx: mode & 0b100 != 0,
        max_len: if *max_len == 0 {
            4096
        } else {
            usize::from(*max_len)
        },
        idle_timeout: Duration::from_millis(50),
    };
    let now = Instant::now();

    let whole = run(&cfg, std::iter::once(stream), true, now);
    assert_eq!(
        whole,
        run(&cfg, stream.chunks(1), true, now),
        "byte by byte"
    );
    assert_eq!(
        whole,
        run(&cfg, stream.chunks(1), false, now),
        "byte by byte, polled at the end"
    );
    assert_eq!(
        whole,
        run(&cfg, chunks(stream, *seed).into_iter(), true, now),
        "chunked"
    );

    let forbidden: &[u8] = match (cfg.terminator, cfg.stx_etx) {
        (Terminator::Cr, false) => b"\r",
        (Terminator::Lf, false) => b"\n",
        (Terminator::CrLf, false) => b"\r\n",
        (Terminator::None, false) => b"",
        (Terminator::Cr, true) => b"\r\x02\x03",
        (Terminator::Lf, true) => b"\n\x02\x03",
        (Terminator::CrLf, true) => b"\r\n\x02\x03",
        (Terminator::None, true) => b"\x02\x03",
    };
    for event in &whole {
        let FrameEvent::Frame(scan) = event else {
            continue;
        };
        assert!(!scan.data.is_empty(), "empty frame");
        let aim = scan.symbology.as_ref().map_or(0, String::len);
        let wrap = if cfg.stx_etx { 2 } else { 0 };
        assert!(
            aim + scan.data.len() + wrap <= cfg.max_len,
            "frame of {} bytes with max_len {}",
            aim + scan.data.len() + wrap,
            cfg.max_len
        );
        assert!(
            !scan.data.iter().any(|b| forbidden.contains(b)),
            "frame data {:?} holds a framing byte",
            scan.data
        );
    }
});
