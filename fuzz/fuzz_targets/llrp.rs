//! Fuzzes the LLRP codec (`rfid::llrp::Decoder`, `Message`) and the client session (`rfid::llrp::LlrpSession`)
//! with a byte stream as a reader would send it.
//!
//! Input layout (so that seeds are real captures with two bytes in front):
//!
//! ```text
//! byte 0   seed for the chunk boundaries
//! byte 1   milliseconds between chunks, × 256 (0..65 s: long gaps reach the silence timeout and the backoff)
//! rest     the byte stream from the reader
//! ```
//!
//! Properties:
//! - chunking invariance: the decoder gives the same messages and errors whether the stream is pushed at once,
//!   byte by byte, or in chunks cut at pseudo-random points; a fatal error is the last thing it gives;
//! - round trip: every decoded message re-encodes and decodes to an equal message;
//! - the session (one connection, then failing reconnects) never panics; every message it sends decodes as a client message; every KEEPALIVE_ACK carries
//!   the id of a KEEPALIVE in the stream; it never reports more tags than the stream holds; its timer is never in
//!   the past after `handle_timeout`.

#![no_main]

use dockhand_protocol::rfid::llrp::{
    msg_type, Action, Body, Decoder, Event, LlrpConfig, LlrpError, LlrpSession, Message,
};
use libfuzzer_sys::fuzz_target;

/// Chunk lengths from a tiny LCG: deterministic in `seed`, between 1 and 64 bytes.
fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((state >> 16) as usize % 64 + 1).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

fn decode<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Result<Message, LlrpError>> {
    let mut d = Decoder::with_max_len(MAX_LEN);
    let mut out = Vec::new();
    for c in chunks {
        d.push(c);
        out.extend(std::iter::from_fn(|| d.next()));
    }
    out
}

const MAX_LEN: u32 = 4096;

const CLIENT_TYPES: &[u16] = &[
    msg_type::SET_READER_CONFIG,
    msg_type::DELETE_ROSPEC,
    msg_type::ADD_ROSPEC,
    msg_type::ENABLE_ROSPEC,
    msg_type::START_ROSPEC,
    msg_type::KEEPALIVE_ACK,
    msg_type::CLOSE_CONNECTION,
];

fuzz_target!(|input: &[u8]| {
    let [seed, gap, stream @ ..] = input else {
        return;
    };
    let cut = chunks(stream, *seed);

    let whole = decode([stream]);
    assert_eq!(whole, decode(stream.chunks(1)), "byte by byte");
    assert_eq!(whole, decode(cut.iter().copied()), "chunked");
    if let Some(i) = whole
        .iter()
        .position(|r| matches!(r, Err(e) if e.is_fatal()))
    {
        assert_eq!(i + 1, whole.len(), "output after a fatal error");
    }
    let mut keepalive_ids = Vec::new();
    let mut tags = 0;
    for m in whole.iter().flatten() {
        let again = Message::decode(&m.encode());
        assert_eq!(again.as_ref(), Ok(m), "round trip");
        match &m.body {
            Body::Empty if m.msg_type == msg_type::KEEPALIVE => keepalive_ids.push(m.id),
            Body::RoAccessReport(r) => tags += r.tags.len(),
            _ => {}
        }
    }

    // The session, fed the same stream over one connection; later attempts fail, exercising the backoff. (A
    // second connection would start decoding mid-stream, where the properties below do not hold.)
    let cfg = LlrpConfig {
        max_message_len: MAX_LEN,
        ..LlrpConfig::default()
    };
    let mut session = LlrpSession::new(cfg);
    let mut now = 0u64;
    let mut reported = 0;
    let mut attempts = 0;
    let mut drain = |session: &mut LlrpSession, now: u64| {
        while let Some(a) = session.poll_action() {
            if a == Action::Connect {
                attempts += 1;
                if attempts == 1 {
                    session.connected(now);
                } else {
                    session.disconnected(now);
                }
            }
        }
        while let Some(t) = session.poll_transmit() {
            let m = Message::decode(&t).expect("the session sends valid LLRP");
            assert!(CLIENT_TYPES.contains(&m.msg_type), "sent {m:?}");
            if m.msg_type == msg_type::KEEPALIVE_ACK {
                assert!(
                    keepalive_ids.contains(&m.id),
                    "KEEPALIVE_ACK {} answers nothing",
                    m.id
                );
            }
        }
        while let Some(e) = session.poll_event() {
            if let Event::Tag { .. } = e {
                reported += 1;
            }
        }
    };
    drain(&mut session, now);
    for c in &cut {
        now += u64::from(*gap) * 256;
        session.handle_timeout(now);
        assert!(
            session.poll_timeout().is_none_or(|t| t > now),
            "timer in the past"
        );
        drain(&mut session, now);
        session.handle_input(now, c);
        drain(&mut session, now);
    }
    session.close(now);
    drain(&mut session, now);
    assert!(
        reported <= tags,
        "{reported} tags reported, {tags} in the stream"
    );
});
