//! Items per second through the tag-side decoders that `decode` and `rfid` do not cover on their own: SGTIN-96
//! EPCs to their pure-identity URI, R2000 0x89 tag frames through an `R2000Session`, and LLRP RO_ACCESS_REPORTs
//! through the stream `Decoder`. Each sits next to a floor measured over the same input in the same run, so
//! BENCHMARKS.md (written by `dockhand-bench-suite`, which reads criterion's estimates) can state a ratio.
//!
//! The floors, and why they are fair:
//! - EPC: writing the same 12 bytes as 24 hex digits into a new `String`. That is what an EPC costs a system that
//!   does not decode it (logs and stores the raw hex); the decoder produces a longer string from the same bytes.
//! - R2000 and LLRP: one pass over the same bytes counting a marker byte (R2000's 0xA0 head, LLRP's TV type of
//!   EPC-96). A decoder must read every byte at least once; this is that pass without any parsing, which the
//!   compiler vectorises, so the ratio says how far the decoder is from memory speed.
//!
//! Run: `cargo bench -p dockhand-protocol --bench frames` (under a minute).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dockhand_protocol::epc::{self, Epc};
use dockhand_protocol::rfid::llrp::{Body, Decoder, Message, TagReportData};
use dockhand_protocol::rfid::r2000::{self, cmd, R2000Session, SessionConfig};
use dockhand_protocol::rfid::Millis;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Distinct tags: a dock door's worth of pallets (20 pallets of 50 cases).
const TAGS: u32 = 1_000;
/// Tag reports per LLRP RO_ACCESS_REPORT: readers batch by report trigger; 50 is a typical N-tags trigger.
const TAGS_PER_REPORT: usize = 50;
/// R2000 tag frames per replay: each of the tags read ten times, alternating two antennas.
const R2000_READS: u32 = TAGS * 10;

/// The 12 EPC-96 bytes of SGTIN-96 tag `i`: one GTIN per 50 tags, serial `i`.
fn sgtin(i: u32) -> Vec<u8> {
    let gtin = format!("0950600{:06}", 13_000 + i / 50);
    let check = gtin
        .bytes()
        .rev()
        .enumerate()
        .map(|(k, b)| u32::from(b - b'0') * if k % 2 == 0 { 3 } else { 1 })
        .sum::<u32>();
    let gtin = format!("{gtin}{}", (10 - check % 10) % 10);
    Epc::sgtin96_from_gtin(&gtin, 7, u64::from(i) + 1, 1)
        .expect("valid SGTIN-96")
        .as_bytes()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// The R2000 stream: one 0x89 tag frame per read, grouped into one chunk per read time as a serial port delivers
/// them.
fn r2000_stream(epcs: &[Vec<u8>]) -> Vec<(Millis, Vec<u8>)> {
    let mut chunks = Vec::new();
    for k in 0..R2000_READS {
        let epc = &epcs[(k % TAGS) as usize];
        let antenna = (k % 2) as u8;
        let data = [&[(7 << 2) | antenna, 0x30, 0x00][..], epc, &[90]].concat();
        let mut out = Vec::new();
        r2000::encode(0x01, cmd::REAL_TIME_INVENTORY, &data, &mut out).expect("short frame");
        chunks.push((Millis::from(k), out));
    }
    chunks
}

/// The LLRP stream: RO_ACCESS_REPORTs of [`TAGS_PER_REPORT`] tags each, every tag with the fields a reader is
/// usually configured to send (antenna, peak RSSI, first-seen time, seen count).
fn llrp_stream(epcs: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (id, chunk) in epcs.chunks(TAGS_PER_REPORT).enumerate() {
        let tags = chunk
            .iter()
            .enumerate()
            .map(|(k, e)| {
                let mut t = TagReportData::new(dockhand_protocol::rfid::llrp::Epc::from_bytes(e));
                t.antenna_id = Some(1 + (k % 2) as u16);
                t.peak_rssi = Some(-52);
                t.first_seen_utc = Some(1_764_000_000_000_000 + k as u64 * 1_000);
                t.tag_seen_count = Some(3);
                t
            })
            .collect();
        bytes.extend(Message::ro_access_report(id as u32 + 1, tags).encode());
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let epcs: Vec<Vec<u8>> = (0..TAGS).map(sgtin).collect();

    let mut group = c.benchmark_group("epc");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(u64::from(TAGS)));
    group.bench_function("sgtin96_decode_uri", |b| {
        b.iter(|| {
            epcs.iter()
                .map(|e| epc::decode(black_box(e)).map(|d| d.pure_identity_uri().len()))
                .sum::<Result<usize, _>>()
                .expect("every EPC decodes")
        })
    });
    group.bench_function("baseline_hex", |b| {
        b.iter(|| epcs.iter().map(|e| hex(black_box(e)).len()).sum::<usize>())
    });
    group.finish();

    let chunks = r2000_stream(&epcs);
    let r2000_bytes: Vec<u8> = chunks.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    let mut group = c.benchmark_group("r2000");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(u64::from(R2000_READS)));
    let mut session = R2000Session::new(SessionConfig {
        antennas: vec![1, 2],
        ..SessionConfig::default()
    })
    .expect("session config");
    // A warm session for the whole run, as a gate agent has; each replay is later on its clock.
    let mut offset: Millis = 0;
    group.bench_function("session_tag_frames", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                offset += Millis::from(R2000_READS) + 1;
                let mut tags = 0u32;
                for (at, bytes) in &chunks {
                    session.handle_input(at + offset, black_box(bytes));
                    while session.poll_transmit().is_some() {}
                    while let Some(event) = session.poll_event() {
                        tags += u32::from(matches!(event, r2000::Event::Tag(_)));
                    }
                }
                assert_eq!(tags, R2000_READS, "every frame is a tag read");
            }
            start.elapsed()
        })
    });
    group.bench_function("baseline_byte_scan", |b| {
        b.iter(|| {
            black_box(&r2000_bytes[..])
                .iter()
                .filter(|&&x| x == 0xA0)
                .count()
        })
    });
    group.finish();

    let stream = llrp_stream(&epcs);
    let mut group = c.benchmark_group("llrp");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(u64::from(TAGS)));
    group.bench_function("decoder_ro_access_report", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new();
            decoder.push(black_box(&stream));
            let mut tags = 0;
            while let Some(message) = decoder.next() {
                if let Body::RoAccessReport(r) = message.expect("valid report").body {
                    tags += r.tags.len();
                }
            }
            assert_eq!(tags, TAGS as usize);
            tags
        })
    });
    group.bench_function("baseline_byte_scan", |b| {
        // 0x8D: the TV type byte of EPC-96 (13 | 0x80).
        b.iter(|| {
            black_box(&stream[..])
                .iter()
                .filter(|&&x| x == 0x8D)
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
