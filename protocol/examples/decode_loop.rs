//! Decodes one GS1-128 scan in a loop; for profilers (`perf record`, `valgrind --tool=callgrind`).
use dockhand_protocol::decode::{decode_scan, DecodeOptions};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let opts = DecodeOptions {
        today: time::macros::date!(2026 - 03 - 15),
        fnc1_substitute: None,
        assume_gs1: false,
        fnc1_text: false,
    };
    let data = b"01095060001343521727123110ABC123\x1d21S0001";
    let mut ok = 0usize;
    for _ in 0..n {
        ok += usize::from(decode_scan(Some("]C1"), std::hint::black_box(data), &opts).is_ok());
    }
    println!("{ok}");
}
