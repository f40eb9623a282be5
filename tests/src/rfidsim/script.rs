//! Scripted pallet passes and the deterministic read schedule they turn into.
//!
//! A [`Script`] lists passes (tags carried through a dock gate past an outside and an inside antenna) and the
//! background noise of a real dock: stray reads of tags at neighbouring doors and RSSI jitter. [`Script::schedule`]
//! turns it into a time-ordered list of single tag reads, the same list for the same seed, and the ground truth a
//! test compares the system's decisions with.
//!
//! The read model of one tag in a pass of duration `D`:
//!
//! ```text
//!  antenna seen first   |==========#==========|            (0 .. D·(1+overlap)/2, peak RSSI at its middle)
//!  antenna seen second           |==========#==========|   (D·(1-overlap)/2 .. D)
//!                       0        ^overlap^             D
//! ```
//!
//! An inbound pass is seen by the outside antenna first, an outbound pass by the inside antenna first. Within its
//! window an antenna reads the tag at times drawn from a triangular distribution (most reads near the middle, where
//! the tag is closest), and each read's RSSI is `peak - slope·|t - middle| ± noise`, so RSSI rises as the tag
//! approaches an antenna and falls after. Each tag of a pass is shifted by a small random offset (tags on one
//! pallet pass the gate at almost the same moment).
//!
//! Strays are reads of tags in no pass: a few reads each (1–5), RSSI -75..-70 dBm, mostly on one antenna, at a
//! random moment of the script. `stray_fraction` is their share of all reads.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which way a pass goes through the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Outside antenna first, then inside: a receipt.
    Inbound,
    /// Inside antenna first, then outside: a shipment.
    Outbound,
}

/// One movement of tags through the gate.
#[derive(Clone, Debug)]
pub struct Pass {
    /// The EPCs carried (bytes as on the tag; a whole number of 16-bit words for the R2000 simulator).
    pub tags: Vec<Vec<u8>>,
    /// Which way they go.
    pub direction: Direction,
    /// The antenna on the yard side (1-based, as LLRP numbers antennas).
    pub outside_antenna: u16,
    /// The antenna on the warehouse side (1-based).
    pub inside_antenna: u16,
    /// How long the tags are in the gate's field.
    pub duration_ms: u64,
    /// Reads of each tag over both antennas, drawn uniformly from `min..=max`.
    pub reads_per_tag: (u32, u32),
    /// RSSI when a tag is right in front of an antenna.
    pub peak_rssi_dbm: f64,
    /// How fast RSSI falls with the distance in time from the peak, in dB per second.
    pub rssi_slope_db_per_s: f64,
    /// The fraction of the pass (0..1) during which both antennas see the tags.
    pub overlap: f64,
}

impl Pass {
    /// A pass with typical dock values: antennas 1 (outside) and 2 (inside), 1.5 s, 50–500 reads per tag, peak
    /// -45 dBm falling 20 dB/s, a third of the pass seen by both antennas.
    pub fn new(tags: Vec<Vec<u8>>, direction: Direction) -> Pass {
        Pass {
            tags,
            direction,
            outside_antenna: 1,
            inside_antenna: 2,
            duration_ms: 1500,
            reads_per_tag: (50, 500),
            peak_rssi_dbm: -45.0,
            rssi_slope_db_per_s: 20.0,
            overlap: 0.3,
        }
    }

    /// The antennas in the order they see the tags.
    pub fn antenna_order(&self) -> (u16, u16) {
        match self.direction {
            Direction::Inbound => (self.outside_antenna, self.inside_antenna),
            Direction::Outbound => (self.inside_antenna, self.outside_antenna),
        }
    }
}

/// A scripted session at the gate.
#[derive(Clone, Debug)]
pub struct Script {
    /// Passes with their start, in ms from the simulator's clock start.
    pub passes: Vec<(u64, Pass)>,
    /// Share of all reads (0..1) that are strays: tags in no pass, read a few times at low RSSI.
    pub stray_fraction: f64,
    /// RSSI jitter: each read's RSSI moves by up to ± this many dB.
    pub noise_db: f64,
    /// Seed of everything random in the schedule.
    pub seed: u64,
}

/// What produced a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadSource {
    /// The pass at this index of [`Script::passes`].
    Pass(usize),
    /// A tag at a neighbouring door.
    Stray,
}

/// One scheduled tag read.
#[derive(Clone, Debug, PartialEq)]
pub struct Read {
    /// When, in µs from the simulator's clock start.
    pub at_us: u64,
    /// The tag.
    pub epc: Vec<u8>,
    /// The antenna that read it (1-based).
    pub antenna: u16,
    /// Its signal strength.
    pub rssi_dbm: i8,
    /// What produced it.
    pub source: ReadSource,
}

/// What really happened in one pass.
#[derive(Clone, Debug)]
pub struct PassTruth {
    /// Start, ms from clock start.
    pub start_ms: u64,
    /// End, ms from clock start.
    pub end_ms: u64,
    /// Which way the tags went.
    pub direction: Direction,
    /// Outside antenna (1-based).
    pub outside_antenna: u16,
    /// Inside antenna (1-based).
    pub inside_antenna: u16,
    /// The EPCs that passed.
    pub tags: Vec<Vec<u8>>,
    /// How many reads the pass produced.
    pub reads: usize,
}

/// The ground truth of a script: what a perfect gate would decide.
#[derive(Clone, Debug)]
pub struct GroundTruth {
    /// Every pass, in script order.
    pub passes: Vec<PassTruth>,
    /// EPCs of the stray tags (in no pass).
    pub strays: Vec<Vec<u8>>,
    /// All scheduled reads.
    pub total_reads: usize,
    /// Reads produced by passes.
    pub pass_reads: usize,
    /// Stray reads.
    pub stray_reads: usize,
    /// When the last read is due, ms from clock start.
    pub end_ms: u64,
}

/// The reads of a script in time order, with its ground truth.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Every read, sorted by `at_us`.
    pub reads: Vec<Read>,
    /// What happened.
    pub truth: GroundTruth,
}

/// GS1 company prefix of the generated pallets (GS1's example prefix).
pub const PALLET_COMPANY_PREFIX: &str = "0614141";
/// Company prefix of generated strays: a neighbour's pallets, never expected here.
pub const STRAY_COMPANY_PREFIX: &str = "0614999";

impl Script {
    /// An empty script: no passes, no strays, 2 dB of noise.
    pub fn new(seed: u64) -> Script {
        Script {
            passes: Vec::new(),
            stray_fraction: 0.0,
            noise_db: 2.0,
            seed,
        }
    }

    /// Adds a pass starting at `start_ms`.
    pub fn pass(mut self, start_ms: u64, pass: Pass) -> Script {
        self.passes.push((start_ms, pass));
        self
    }

    /// The gate scenario of the e2e tests and the demo: `pallets` pallets, each with one SSCC-96 tag (see
    /// [`pallet_sscc`]), driven inbound one every `spacing_ms` past antennas 1 (outside) and 2 (inside), 10% stray
    /// reads. Pass durations are 80% of the spacing so passes do not overlap.
    pub fn pallet_gate(pallets: usize, spacing_ms: u64, seed: u64) -> Script {
        let mut script = Script::new(seed);
        script.stray_fraction = 0.10;
        for i in 0..pallets {
            let sscc = pallet_sscc(seed, i);
            let mut pass = Pass::new(vec![sscc96(&sscc, 7, 0)], Direction::Inbound);
            pass.duration_ms = spacing_ms * 4 / 5;
            script
                .passes
                .push((spacing_ms / 10 + i as u64 * spacing_ms, pass));
        }
        script
    }

    /// Turns the script into its read schedule, deterministically from `seed`.
    pub fn schedule(&self) -> Schedule {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut reads = Vec::new();
        let mut passes = Vec::with_capacity(self.passes.len());
        let mut antennas = Vec::new();
        for (index, (start_ms, pass)) in self.passes.iter().enumerate() {
            let before = reads.len();
            pass_reads(&mut rng, index, *start_ms, pass, self.noise_db, &mut reads);
            for a in [pass.outside_antenna, pass.inside_antenna] {
                if !antennas.contains(&a) {
                    antennas.push(a);
                }
            }
            passes.push(PassTruth {
                start_ms: *start_ms,
                end_ms: start_ms + pass.duration_ms,
                direction: pass.direction,
                outside_antenna: pass.outside_antenna,
                inside_antenna: pass.inside_antenna,
                tags: pass.tags.clone(),
                reads: reads.len() - before,
            });
        }
        let pass_reads = reads.len();
        let horizon_ms = passes.iter().map(|p| p.end_ms).max().unwrap_or(1000);
        if antennas.is_empty() {
            antennas = vec![1, 2];
        }
        let strays = stray_reads(
            &mut rng, self, pass_reads, horizon_ms, &antennas, &mut reads,
        );
        // A stable sort keeps the generation order of reads due at the same µs: deterministic.
        reads.sort_by_key(|r| r.at_us);
        let end_ms = reads.last().map(|r| r.at_us.div_ceil(1000)).unwrap_or(0);
        Schedule {
            truth: GroundTruth {
                passes,
                strays,
                total_reads: reads.len(),
                pass_reads,
                stray_reads: reads.len() - pass_reads,
                end_ms,
            },
            reads,
        }
    }
}

/// A uniform value in -1..1 weighted to the middle (the mean of two uniforms): jitter that is mostly small.
fn centred(rng: &mut StdRng) -> f64 {
    rng.random::<f64>() + rng.random::<f64>() - 1.0
}

fn rssi(value: f64) -> i8 {
    value.round().clamp(-128.0, 0.0) as i8
}

fn pass_reads(
    rng: &mut StdRng,
    index: usize,
    start_ms: u64,
    pass: &Pass,
    noise_db: f64,
    out: &mut Vec<Read>,
) {
    let d = pass.duration_ms as f64 * 1000.0;
    let overlap = pass.overlap.clamp(0.0, 1.0);
    let (first, second) = pass.antenna_order();
    // Each antenna's window as fractions of the pass: the first from the start, the second to the end.
    let windows = [
        (first, 0.0, (1.0 + overlap) / 2.0),
        (second, (1.0 - overlap) / 2.0, 1.0),
    ];
    let (lo, hi) = (
        pass.reads_per_tag.0.min(pass.reads_per_tag.1),
        pass.reads_per_tag.0.max(pass.reads_per_tag.1),
    );
    for epc in &pass.tags {
        // Tags of one pallet cross the gate almost together; the shift stays inside the pass.
        let shift = rng.random_range(0.0..0.05) * d;
        let span = d * 0.95;
        let total = rng.random_range(lo..=hi).max(2);
        let on_first =
            ((total as f64 * rng.random_range(0.35..0.65)).round() as u32).clamp(1, total - 1);
        for (antenna, from, to, count) in [
            (windows[0].0, windows[0].1, windows[0].2, on_first),
            (windows[1].0, windows[1].1, windows[1].2, total - on_first),
        ] {
            let w0 = shift + from * span;
            let w1 = shift + to * span;
            let middle = (w0 + w1) / 2.0;
            for _ in 0..count {
                // Triangular over the window: reads cluster where the tag is closest.
                let u = (rng.random::<f64>() + rng.random::<f64>()) / 2.0;
                let t = w0 + (w1 - w0) * u;
                let level = pass.peak_rssi_dbm
                    - pass.rssi_slope_db_per_s * (t - middle).abs() / 1e6
                    + noise_db * centred(rng);
                out.push(Read {
                    at_us: start_ms * 1000 + t as u64,
                    epc: epc.clone(),
                    antenna,
                    rssi_dbm: rssi(level),
                    source: ReadSource::Pass(index),
                });
            }
        }
    }
}

fn stray_reads(
    rng: &mut StdRng,
    script: &Script,
    pass_reads: usize,
    horizon_ms: u64,
    antennas: &[u16],
    out: &mut Vec<Read>,
) -> Vec<Vec<u8>> {
    let f = script.stray_fraction.clamp(0.0, 0.9);
    // Strays are `f` of all reads: s / (p + s) = f.
    let target = (pass_reads as f64 * f / (1.0 - f)).round() as usize;
    let known: HashSet<&Vec<u8>> = script.passes.iter().flat_map(|(_, p)| &p.tags).collect();
    let mut strays = Vec::new();
    let mut made = 0;
    while made < target {
        let epc = loop {
            let serial = rng.random_range(0..1_000_000_000u64);
            let sscc = sscc18(STRAY_COMPANY_PREFIX, (serial % 10) as u8, serial / 10);
            let epc = sscc96(&sscc, STRAY_COMPANY_PREFIX.len(), 0);
            if !known.contains(&epc) && !strays.contains(&epc) {
                break epc;
            }
        };
        let count = rng.random_range(1..=5usize).min(target - made);
        let main = antennas[rng.random_range(0..antennas.len())];
        let at_ms = rng.random_range(0..horizon_ms.max(1));
        for _ in 0..count {
            // Mostly the one antenna facing the neighbouring door; now and then another.
            let antenna = if rng.random_bool(0.8) {
                main
            } else {
                antennas[rng.random_range(0..antennas.len())]
            };
            let at_us = (at_ms * 1000 + rng.random_range(0..300_000)).min(horizon_ms * 1000);
            out.push(Read {
                at_us,
                epc: epc.clone(),
                antenna,
                rssi_dbm: rng.random_range(-75..=-70),
                source: ReadSource::Stray,
            });
        }
        made += count;
        strays.push(epc);
    }
    strays
}

/// GS1 mod-10 check digit of a digit string.
fn check_digit(body: &str) -> u8 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// An SSCC-18 (with its check digit) from an extension digit, a company prefix and a serial reference.
pub fn sscc18(company_prefix: &str, extension: u8, serial: u64) -> String {
    let width = 16 - company_prefix.len();
    let serial = serial % 10u64.pow(width as u32);
    let body = format!("{extension}{company_prefix}{serial:0width$}");
    format!("{body}{}", check_digit(&body))
}

/// The SSCC of generated pallet `i` for a seed (company prefix [`PALLET_COMPANY_PREFIX`]).
pub fn pallet_sscc(seed: u64, i: usize) -> String {
    let serial = seed.wrapping_mul(1_000_003).wrapping_add(i as u64) % 1_000_000_000;
    sscc18(PALLET_COMPANY_PREFIX, 3, serial)
}

/// Encodes an SSCC-18 as an SSCC-96 EPC (GS1 EPC Tag Data Standard, SSCC-96 coding table): header 0x31, filter
/// (3 bits), partition (3 bits), company prefix and serial reference (58 bits together, split by the partition table),
/// 24 reserved zero bits. The serial reference is the extension digit followed by the serial digits.
///
/// Written apart from `protocol::epc` on purpose: the simulator must not share the decoder's mistakes.
pub fn sscc96(sscc: &str, company_prefix_digits: usize, filter: u8) -> Vec<u8> {
    assert!(
        sscc.len() == 18 && sscc.bytes().all(|b| b.is_ascii_digit()),
        "an SSCC has 18 digits"
    );
    // SSCC partition table (TDS): (company prefix digits, company prefix bits, serial reference bits).
    const TABLE: [(usize, u32, u32); 7] = [
        (12, 40, 18),
        (11, 37, 21),
        (10, 34, 24),
        (9, 30, 28),
        (8, 27, 31),
        (7, 24, 34),
        (6, 20, 38),
    ];
    let partition = TABLE
        .iter()
        .position(|(digits, _, _)| *digits == company_prefix_digits)
        .expect("company prefix of 6 to 12 digits");
    let (l, m, n) = TABLE[partition];
    let company: u128 = sscc[1..1 + l].parse().expect("digits");
    let serial_ref: u128 = format!("{}{}", &sscc[..1], &sscc[1 + l..17])
        .parse()
        .expect("digits");
    let mut bits: u128 = 0x31;
    bits = (bits << 3) | u128::from(filter & 7);
    bits = (bits << 3) | partition as u128;
    bits = (bits << m) | company;
    bits = (bits << n) | serial_ref;
    bits <<= 24;
    bits.to_be_bytes()[4..].to_vec()
}

/// Upper-case hex of an EPC, as readers and logs print it.
pub fn epc_hex(epc: &[u8]) -> String {
    epc.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn first_seen(reads: &[Read], epc: &[u8], antenna: u16) -> Option<u64> {
        reads
            .iter()
            .find(|r| r.epc == epc && r.antenna == antenna)
            .map(|r| r.at_us)
    }

    /// µs of the strongest read of a tag on an antenna (first one on ties).
    fn peak_at(reads: &[Read], epc: &[u8], antenna: u16) -> u64 {
        let mut best: Option<&Read> = None;
        for r in reads
            .iter()
            .filter(|r| r.epc == epc && r.antenna == antenna)
        {
            if best.is_none_or(|b| r.rssi_dbm > b.rssi_dbm) {
                best = Some(r);
            }
        }
        best.expect("read").at_us
    }

    #[test]
    fn sscc96_known_vectors() {
        // (sscc, company prefix digits, filter, EPC hex). The first is the TDS example
        // urn:epc:tag:sscc-96:3.0614141.1234567890 = 3174257BF4499602D2000000.
        let cases = [
            ("106141412345678908", 7, 3, "3174257BF4499602D2000000"),
            ("006141410000000001", 7, 0, "3114257BF400000000000000"),
        ];
        for (sscc, digits, filter, hex) in cases {
            assert_eq!(epc_hex(&sscc96(sscc, digits, filter)), hex, "{sscc}");
        }
    }

    #[test]
    fn sscc18_has_a_valid_check_digit() {
        let s = sscc18("0614141", 1, 234567890);
        assert_eq!(s, "106141412345678908");
        assert_eq!(pallet_sscc(7, 3).len(), 18);
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let a = Script::pallet_gate(5, 1000, 42).schedule();
        let b = Script::pallet_gate(5, 1000, 42).schedule();
        let c = Script::pallet_gate(5, 1000, 43).schedule();
        assert_eq!(a.reads, b.reads);
        assert_ne!(a.reads, c.reads);
    }

    #[test]
    fn reads_are_in_time_order_and_counts_add_up() {
        let s = Script::pallet_gate(20, 1000, 1).schedule();
        assert!(s.reads.windows(2).all(|w| w[0].at_us <= w[1].at_us));
        let t = &s.truth;
        assert_eq!(t.total_reads, s.reads.len());
        assert_eq!(t.pass_reads + t.stray_reads, t.total_reads);
        assert_eq!(
            t.passes.iter().map(|p| p.reads).sum::<usize>(),
            t.pass_reads
        );
        assert_eq!(t.passes.len(), 20);
    }

    #[test]
    fn reads_per_tag_stay_within_bounds_and_use_both_antennas() {
        let s = Script::pallet_gate(30, 1000, 9).schedule();
        let mut per_tag: HashMap<&[u8], (usize, HashSet<u16>)> = HashMap::new();
        for r in s.reads.iter().filter(|r| r.source != ReadSource::Stray) {
            let e = per_tag.entry(&r.epc).or_default();
            e.0 += 1;
            e.1.insert(r.antenna);
        }
        assert_eq!(per_tag.len(), 30);
        for (epc, (n, antennas)) in per_tag {
            assert!((50..=500).contains(&n), "{} read {n} times", epc_hex(epc));
            assert_eq!(antennas.len(), 2);
        }
    }

    #[test]
    fn the_first_antenna_sees_and_peaks_first() {
        let tag = vec![0x30, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let other = vec![0x30, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let s = Script::new(5)
            .pass(0, Pass::new(vec![tag.clone()], Direction::Inbound))
            .pass(2000, Pass::new(vec![other.clone()], Direction::Outbound))
            .schedule();
        // (tag, antenna seen first, antenna seen second)
        for (epc, first, second) in [(&tag, 1, 2), (&other, 2, 1)] {
            assert!(first_seen(&s.reads, epc, first) < first_seen(&s.reads, epc, second));
            assert!(peak_at(&s.reads, epc, first) < peak_at(&s.reads, epc, second));
        }
    }

    #[test]
    fn direction_holds_for_every_generated_pass() {
        let s = Script::pallet_gate(50, 1000, 77).schedule();
        for p in &s.truth.passes {
            let epc = &p.tags[0];
            let outside = first_seen(&s.reads, epc, p.outside_antenna).expect("outside read");
            let inside = first_seen(&s.reads, epc, p.inside_antenna).expect("inside read");
            assert!(outside < inside, "{}", epc_hex(epc));
        }
    }

    #[test]
    fn strays_are_about_their_fraction_weak_and_unknown() {
        let s = Script::pallet_gate(50, 1000, 3).schedule();
        let t = &s.truth;
        let share = t.stray_reads as f64 / t.total_reads as f64;
        assert!((share - 0.10).abs() < 0.01, "stray share {share}");
        let passed: HashSet<&Vec<u8>> = t.passes.iter().flat_map(|p| &p.tags).collect();
        let mut per_stray: HashMap<&[u8], usize> = HashMap::new();
        for r in s.reads.iter().filter(|r| r.source == ReadSource::Stray) {
            assert!((-75..=-70).contains(&r.rssi_dbm));
            assert!(!passed.contains(&r.epc));
            *per_stray.entry(&r.epc).or_default() += 1;
        }
        assert_eq!(per_stray.len(), t.strays.len());
        assert!(per_stray.values().all(|n| (1..=5).contains(n)));
    }

    #[test]
    fn pass_rssi_peaks_near_the_configured_peak() {
        let s = Script::pallet_gate(10, 1000, 11).schedule();
        let max = s
            .reads
            .iter()
            .filter(|r| r.source != ReadSource::Stray)
            .map(|r| r.rssi_dbm)
            .max()
            .expect("reads");
        assert!((-47..=-41).contains(&max), "peak {max}");
    }
}
