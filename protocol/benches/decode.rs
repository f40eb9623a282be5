//! Decodes per second for typical scans, next to the cheapest pass any decoder must make over the same bytes
//! (UTF-8 validation and splitting on GS), so BENCHMARKS.md can state the ratio.
//!
//! Run: `cargo bench -p dockhand-protocol --bench decode` (under a minute).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dockhand_protocol::decode::{decode_scan, DecodeOptions, Scan};
use std::hint::black_box;
use std::time::Duration;
use time::macros::date;

/// (name, AIM id as the framer splits it off, data after it).
fn payloads() -> [(&'static str, &'static str, Vec<u8>); 3] {
    [
        // 40 bytes: GTIN (16), expiry (8), lot (8), GS (1), serial (7).
        (
            "gs1_128_40",
            "]C1",
            [
                &b"0109506000134352"[..],
                b"17271231",
                b"10ABC123",
                b"\x1d",
                b"21S0001",
            ]
            .concat(),
        ),
        // A pharma DataMatrix: GTIN, expiry, lot, GS, serial (44 bytes).
        (
            "gs1_datamatrix",
            "]d2",
            b"01095060001343521727123110LOT-42\x1d21SN0000001".to_vec(),
        ),
        ("ean_13", "]E0", b"9506000134352".to_vec()),
    ]
}

fn bench(c: &mut Criterion) {
    let opts = DecodeOptions {
        today: date!(2026 - 03 - 15),
        fnc1_substitute: None,
        assume_gs1: false,
        fnc1_text: false,
    };
    let mut group = c.benchmark_group("decode");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for (name, aim, data) in payloads() {
        assert!(name != "gs1_128_40" || data.len() == 40);
        // A benchmark of an error path would measure the wrong thing.
        assert!(
            matches!(decode_scan(Some(aim), &data, &opts), Ok(Scan::Gs1(_))),
            "{name} does not decode"
        );
        group.bench_with_input(BenchmarkId::new("decode_scan", name), &data, |b, data| {
            b.iter(|| decode_scan(black_box(Some(aim)), black_box(data), &opts))
        });
        group.bench_with_input(
            BenchmarkId::new("baseline_utf8_split", name),
            &data,
            |b, data| {
                b.iter(|| std::str::from_utf8(black_box(data)).map(|s| s.split('\x1d').count()))
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
