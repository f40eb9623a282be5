//! Raw reads per second through RFID read smoothing alone, and through R2000 decoding + smoothing (the same reads
//! as 0x89 tag frames fed to an `R2000Session`), next to two baselines over the same reads: hashing each EPC alone
//! (the smoother's hasher), and a plain `HashMap<Vec<u8>, u64>` read counter (std's SipHash), the least any
//! per-EPC bookkeeping costs. Target: ≥ 1,000,000 reads/s on one core.
//!
//! The mix: 20 pallets of 10 tags (200 tags) driven through a door 2.5 s apart, each tag read ~500 times across
//! an outside and an inside antenna, plus 10% stray reads (1–2 weak reads of tags at a neighbouring door).
//!
//! Run: `cargo bench -p dockhand-protocol --bench rfid -- --warm-up-time 1 --measurement-time 3`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dockhand_protocol::rfid::r2000::{self, cmd, R2000Session, SessionConfig};
use dockhand_protocol::rfid::smooth::{FoldBuild, PassEvent, SmoothConfig, Smoother};
use dockhand_protocol::rfid::{Millis, TagRead};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::hint::black_box;
use std::time::{Duration, Instant};

const OUT: u16 = 1;
const IN: u16 = 2;
/// The mix spans about a minute; each iteration replays it this much later, so its passes are new.
const PERIOD: Millis = 120_000;

fn epc(id: u32) -> Vec<u8> {
    let mut e = vec![0x31, 0x14, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0, 0, 0];
    e[8..].copy_from_slice(&id.to_be_bytes());
    e
}

/// One tag moving from x = -1.2 (yard) to 1.2 (warehouse) in 3 s; antennas look at ∓0.5 and read within 0.9.
fn pass(id: u32, t0: Millis, reads: &mut Vec<TagRead>) {
    for (k, dt) in (0..=3000).step_by(4).enumerate() {
        let x = -1.2 + 2.4 * dt as f32 / 3000.0;
        let (antenna, spot) = if k.is_multiple_of(2) {
            (OUT, -0.5)
        } else {
            (IN, 0.5)
        };
        let d = (x - spot).abs();
        if d <= 0.9 {
            reads.push(TagRead {
                epc: epc(id),
                pc: Some(0x3000),
                antenna,
                rssi: Some(-35 - (d * 40.0) as i16),
                at: t0 + dt,
                count: 1,
            });
        }
    }
}

fn mix() -> Vec<TagRead> {
    let mut reads = Vec::new();
    for pallet in 0..20u32 {
        for tag in 0..10 {
            pass(
                pallet * 10 + tag,
                Millis::from(pallet) * 2_500 + Millis::from(tag) * 7,
                &mut reads,
            );
        }
    }
    let real = reads.len();
    let mut k = 0u32;
    while reads.len() < real * 11 / 10 {
        for n in 0..=(k % 2) {
            reads.push(TagRead {
                epc: epc(100_000 + k),
                pc: Some(0x3000),
                antenna: if k.is_multiple_of(5) { IN } else { OUT },
                rssi: Some(-70 - (k % 6) as i16),
                at: Millis::from(k) * 53 % 52_000 + Millis::from(n) * 20,
                count: 1,
            });
        }
        k += 1;
    }
    reads.sort_by_key(|r| r.at);
    reads
}

/// The reads as a reader would send them: 0x89 tag reports, one chunk of bytes per read time.
fn frames(reads: &[TagRead]) -> Vec<(Millis, Vec<u8>)> {
    let mut chunks: Vec<(Millis, Vec<u8>)> = Vec::new();
    for r in reads {
        if chunks.last().is_none_or(|c| c.0 != r.at) {
            chunks.push((r.at, Vec::new()));
        }
        let freq_ant = (7 << 2) | (r.antenna - 1) as u8;
        let pc = r.pc.unwrap_or(0x3000).to_be_bytes();
        let rssi_raw = (r.rssi.unwrap_or(-70) + 129) as u8;
        let data = [&[freq_ant, pc[0], pc[1]][..], &r.epc, &[rssi_raw]].concat();
        let out = &mut chunks.last_mut().expect("pushed").1;
        r2000::encode(0x01, cmd::REAL_TIME_INVENTORY, &data, out).expect("short frame");
    }
    chunks
}

/// Drains the smoother's events; returns how many were departures.
fn drain(smoother: &mut Smoother) -> usize {
    let mut departures = 0;
    while let Some(e) = smoother.poll_event() {
        departures += usize::from(matches!(e, PassEvent::Departure(_)));
    }
    departures
}

fn bench(c: &mut Criterion) {
    let mut reads = mix();
    let chunks = frames(&reads);
    let mut group = c.benchmark_group("rfid");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(reads.len() as u64));

    // One smoother for the whole run, as a gate agent has: its tables and audit ring are warm.
    let mut smoother = Smoother::new(SmoothConfig::gate(&[OUT], &[IN])).expect("config");
    let mut offset = 0;
    group.bench_function("smooth", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                for r in reads.iter_mut() {
                    r.at += PERIOD;
                }
                offset += PERIOD;
                let start = Instant::now();
                let mut departures = 0;
                for r in &reads {
                    smoother.observe(black_box(r));
                    departures += drain(&mut smoother);
                }
                smoother.handle_timeout(offset + PERIOD - 1);
                departures += drain(&mut smoother);
                spent += start.elapsed();
                assert_eq!(departures, 200, "one departure per tag");
            }
            spent
        })
    });

    // The whole path of a serial gate: bytes → frames → TagReads → smoothing, with a warm session and smoother.
    let mut smoother = Smoother::new(SmoothConfig::gate(&[OUT], &[IN])).expect("config");
    let session_cfg = SessionConfig {
        antennas: vec![1, 2],
        ..SessionConfig::default()
    };
    let mut session = R2000Session::new(session_cfg).expect("session config");
    let mut offset = 0;
    group.bench_function("decode_and_smooth", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                offset += PERIOD;
                let mut departures = 0;
                for (at, bytes) in &chunks {
                    session.handle_input(at + offset, black_box(bytes));
                    while session.poll_transmit().is_some() {}
                    while let Some(event) = session.poll_event() {
                        if let r2000::Event::Tag(read) = event {
                            smoother.observe(&read);
                            departures += drain(&mut smoother);
                        }
                    }
                }
                smoother.handle_timeout(offset + PERIOD - 1);
                departures += drain(&mut smoother);
                assert_eq!(departures, 200, "one departure per tag");
            }
            start.elapsed()
        })
    });

    group.bench_function("baseline_hash_epc", |b| {
        let build = FoldBuild;
        b.iter(|| {
            reads
                .iter()
                .fold(0u64, |acc, r| acc ^ build.hash_one(black_box(&r.epc[..])))
        })
    });

    group.bench_function("baseline_std_hashmap_counter", |b| {
        b.iter(|| {
            let mut counts: HashMap<Vec<u8>, u64> = HashMap::new();
            for r in &reads {
                match counts.get_mut(black_box(&r.epc[..])) {
                    Some(n) => *n += 1,
                    None => {
                        counts.insert(r.epc.clone(), 1);
                    }
                }
            }
            counts.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
