//! Scenario tests on a virtual clock (a simulated gate: tags moving past an outside and an inside antenna), the
//! property test against the naive model, and the memory bound under a flood of unique EPCs.

use super::*;
use proptest::prelude::*;

const OUT: u16 = 1;
const IN: u16 = 2;
/// Wired to the reader but given no role.
const SPARE: u16 = 3;

fn epc(id: u32) -> Vec<u8> {
    let mut e = vec![0x31, 0x14, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0, 0, 0];
    e[8..].copy_from_slice(&id.to_be_bytes());
    e
}

fn id_of(epc: &[u8]) -> u32 {
    u32::from_be_bytes(epc[8..12].try_into().unwrap())
}

fn read(id: u32, antenna: u16, rssi: i16, at: Millis) -> TagRead {
    TagRead {
        epc: epc(id),
        pc: None,
        antenna,
        rssi: Some(rssi),
        at,
        count: 1,
    }
}

fn cfg(quiet_ms: Millis) -> SmoothConfig {
    SmoothConfig {
        quiet_ms,
        min_rssi: Some(-75),
        audit_capacity: 1_000,
        ..SmoothConfig::gate(&[OUT], &[IN])
    }
}

/// A tag moving along the gate's axis through `waypoints` (time, position): the outside antenna looks at
/// x = -0.5 and the inside one at x = +0.5, each reading within 0.9 of its spot, RSSI falling with distance. The
/// reader alternates antennas every `step_ms`, as multiplexed readers do.
fn pass(id: u32, waypoints: &[(Millis, f32)], step_ms: Millis) -> Vec<TagRead> {
    let (start, end) = (waypoints[0].0, waypoints[waypoints.len() - 1].0);
    let pos = |t: Millis| {
        let w = waypoints.windows(2).find(|w| t <= w[1].0).unwrap();
        let f = (t - w[0].0) as f32 / (w[1].0 - w[0].0).max(1) as f32;
        w[0].1 + (w[1].1 - w[0].1) * f
    };
    let mut reads = Vec::new();
    for (k, t) in (start..=end).step_by(step_ms as usize).enumerate() {
        let (antenna, spot) = if k.is_multiple_of(2) {
            (OUT, -0.5)
        } else {
            (IN, 0.5)
        };
        let d = (pos(t) - spot).abs();
        if d <= 0.9 {
            reads.push(read(id, antenna, -35 - (d * 40.0).round() as i16, t));
        }
    }
    reads
}

fn inbound(id: u32, t0: Millis) -> Vec<TagRead> {
    pass(id, &[(t0, -1.2), (t0 + 3000, 1.2)], 5)
}

fn outbound(id: u32, t0: Millis) -> Vec<TagRead> {
    pass(id, &[(t0, 1.2), (t0 + 3000, -1.2)], 5)
}

/// Driven in from the yard to just past the inside antenna, then straight back out.
fn bounce(id: u32, t0: Millis) -> Vec<TagRead> {
    pass(id, &[(t0, -1.2), (t0 + 1500, 0.6), (t0 + 3000, -1.2)], 5)
}

/// `n` reads of one tag on one antenna, `every_ms` apart.
fn burst(id: u32, antenna: u16, rssi: i16, t0: Millis, n: u64, every_ms: Millis) -> Vec<TagRead> {
    (0..n)
        .map(|k| read(id, antenna, rssi, t0 + k * every_ms))
        .collect()
}

/// Drives a smoother as the gate agent would: timeouts when due, events drained after every call. Returns one
/// line per event ("+7" arrival of tag 7, "-7 inbound" its departure) and the departures.
fn run(smoother: &mut Smoother, mut reads: Vec<TagRead>) -> (Vec<String>, Vec<Departure>) {
    reads.sort_by_key(|r| r.at);
    let mut lines = Vec::new();
    let mut departures = Vec::new();
    let mut drain = |s: &mut Smoother| {
        while let Some(e) = s.poll_event() {
            match e {
                PassEvent::Arrival(a) => lines.push(format!("+{}", id_of(&a.epc))),
                PassEvent::Departure(d) => {
                    let dir = serde_json::to_value(d.direction).unwrap();
                    lines.push(format!("-{} {}", id_of(&d.epc), dir.as_str().unwrap()));
                    departures.push(d);
                }
            }
        }
    };
    let end = reads.last().map_or(0, |r| r.at) + 60_000;
    for r in &reads {
        while let Some(t) = smoother.poll_timeout().filter(|&t| t <= r.at) {
            smoother.handle_timeout(t);
            drain(smoother);
        }
        smoother.observe(r);
        drain(smoother);
    }
    smoother.handle_timeout(end);
    drain(smoother);
    assert_eq!(smoother.stats().tracked, 0);
    (lines, departures)
}

#[test]
fn scenarios() {
    let cat = |parts: Vec<Vec<TagRead>>| parts.concat();
    let mut disconnected = pass(1, &[(0, -1.2), (4000, 1.2)], 5);
    disconnected.retain(|r| !(1200..3200).contains(&r.at));
    // (name, quiet_ms, reads, events, least confidence of every departure)
    #[rustfmt::skip]
    type Case = (&'static str, Millis, Vec<TagRead>, &'static [&'static str], f32);
    let cases: Vec<Case> = vec![
        (
            "inbound pass",
            1500,
            inbound(1, 0),
            &["+1", "-1 inbound"],
            0.9,
        ),
        (
            "outbound pass",
            1500,
            outbound(1, 0),
            &["+1", "-1 outbound"],
            0.9,
        ),
        (
            "in and straight back out",
            1500,
            bounce(1, 0),
            &["+1", "-1 bounced"],
            0.9,
        ),
        (
            "stray: two reads",
            1500,
            burst(9, OUT, -60, 0, 2, 30),
            &[],
            0.0,
        ),
        (
            "stray: weak reads",
            1500,
            burst(9, OUT, -80, 0, 20, 30),
            &[],
            0.0,
        ),
        (
            "stray: spare antenna",
            1500,
            burst(9, SPARE, -40, 0, 20, 30),
            &[],
            0.0,
        ),
        (
            "strays around a pass",
            1500,
            cat(vec![
                inbound(1, 0),
                burst(8, IN, -70, 500, 2, 40),
                burst(9, OUT, -80, 900, 9, 10),
            ]),
            &["+1", "-1 inbound"],
            0.9,
        ),
        (
            "two pallets overlapping",
            1500,
            cat(vec![inbound(1, 0), inbound(2, 1500)]),
            &["+1", "+2", "-1 inbound", "-2 inbound"],
            0.9,
        ),
        (
            "crossing in opposite directions",
            1500,
            cat(vec![inbound(1, 0), outbound(2, 1000)]),
            &["+1", "+2", "-1 inbound", "-2 outbound"],
            0.9,
        ),
        (
            "pause shorter than quiet: one pass",
            1500,
            cat(vec![
                burst(1, OUT, -50, 0, 11, 50),
                burst(1, IN, -50, 1500, 11, 50),
            ]),
            &["+1", "-1 inbound"],
            0.9,
        ),
        (
            "pause longer than quiet: two passes",
            1500,
            cat(vec![
                burst(1, OUT, -50, 0, 11, 50),
                burst(1, IN, -50, 2500, 11, 50),
            ]),
            &["+1", "-1 unknown", "+1", "-1 unknown"],
            0.0,
        ),
        (
            "the same pallet back in later",
            1500,
            cat(vec![outbound(1, 0), inbound(1, 10_000)]),
            &["+1", "-1 outbound", "+1", "-1 inbound"],
            0.9,
        ),
        // A 2 s reader disconnect mid-pass: quiet_ms under the gap splits the pass into two one-sided halves
        // (no receipt, the gate flags two unknowns); quiet_ms over it (the default 3 s) sees one inbound pass.
        (
            "2 s disconnect, quiet 1.5 s",
            1500,
            disconnected.clone(),
            &["+1", "-1 unknown", "+1", "-1 unknown"],
            0.0,
        ),
        (
            "2 s disconnect, quiet 3 s",
            3000,
            disconnected,
            &["+1", "-1 inbound"],
            0.9,
        ),
    ];
    for (name, quiet, reads, want, least) in cases {
        let mut s = Smoother::new(cfg(quiet)).unwrap();
        let (lines, departures) = run(&mut s, reads);
        assert_eq!(lines, want, "{name}");
        for d in &departures {
            assert!(
                d.direction == Direction::Unknown || d.confidence >= least,
                "{name}: confidence {} < {least}",
                d.confidence
            );
            assert_eq!(d.end, PassEnd::Quiet, "{name}");
            assert_eq!(
                d.reads,
                d.per_antenna.iter().map(|a| a.reads).sum::<u32>(),
                "{name}"
            );
        }
    }
}

#[test]
fn departure_carries_per_antenna_statistics() {
    let reads = cat2(
        burst(1, OUT, -60, 1000, 4, 100),
        vec![
            read(1, IN, -45, 1250),
            read(1, IN, -40, 1400),
            read(1, IN, -40, 1600),
            read(1, IN, -55, 1700),
        ],
    );
    let mut s = Smoother::new(cfg(1500)).unwrap();
    let (lines, deps) = run(&mut s, reads);
    assert_eq!(lines, ["+1", "-1 inbound"]);
    let d = &deps[0];
    assert_eq!((d.first_seen, d.last_seen, d.reads), (1000, 1700, 8));
    #[rustfmt::skip]
    assert_eq!(d.per_antenna, [
        AntennaStats { antenna: OUT, role: Role::Outside, first_seen: 1000, last_seen: 1300, reads: 4,
            peak_rssi: Some(-60), peak_at: Some(1150) },
        AntennaStats { antenna: IN, role: Role::Inside, first_seen: 1250, last_seen: 1700, reads: 4,
            peak_rssi: Some(-40), peak_at: Some(1500) },
    ]);
    let json = serde_json::to_value(PassEvent::Departure(d.clone())).unwrap();
    assert_eq!(json["event"], "departure");
    assert_eq!(json["epc"], "311412345600000000000001");
    assert_eq!(json["direction"], "inbound");
}

fn cat2(mut a: Vec<TagRead>, b: Vec<TagRead>) -> Vec<TagRead> {
    a.extend(b);
    a
}

#[test]
fn arrival_comes_with_the_min_reads_th_read_and_counts_add_up() {
    let mut s = Smoother::new(cfg(1500)).unwrap();
    s.observe(&read(1, IN, -50, 100));
    s.observe(&read(1, OUT, -50, 200));
    assert_eq!(s.poll_event(), None);
    // One LLRP report folding 4 sightings.
    s.observe(&TagRead {
        count: 4,
        ..read(1, OUT, -50, 300)
    });
    let Some(PassEvent::Arrival(a)) = s.poll_event() else {
        panic!("no arrival")
    };
    assert_eq!(
        (a.first_seen, a.at, a.antenna, a.role, a.reads),
        (100, 300, IN, Role::Inside, 6)
    );
    assert_eq!(s.poll_timeout(), Some(1800));
    s.handle_timeout(1799);
    assert_eq!(s.poll_event(), None);
    s.handle_timeout(1800);
    let Some(PassEvent::Departure(d)) = s.poll_event() else {
        panic!("no departure")
    };
    assert_eq!(d.reads, 6);
    assert_eq!(s.poll_timeout(), None);
}

/// A read stamped before the clock (report latency, a second reader) is taken as happening at the clock.
#[test]
fn time_never_goes_back() {
    let mut s = Smoother::new(cfg(1500)).unwrap();
    s.handle_timeout(5_000);
    for r in burst(1, OUT, -50, 1_000, 3, 10) {
        s.observe(&r);
    }
    let Some(PassEvent::Arrival(a)) = s.poll_event() else {
        panic!("no arrival")
    };
    assert_eq!((a.first_seen, a.at), (5_000, 5_000));
    assert_eq!(s.audit_dump()[0].at, 1_000, "the audit keeps the raw time");
}

/// 20 pallets through one door over a minute, some overlapping, each tag read 500 times across both antennas,
/// with 10% extra reads from a neighbouring door (a few weak reads per stray tag, one antenna): one arrival and
/// one inbound departure per tag, no stray becomes a pass, and a reversed pallet goes out.
#[test]
fn read_flood_with_strays() {
    let mut reads = Vec::new();
    for p in 0..20u32 {
        // ~500 reads: 3 s pass, antennas alternating every 4 ms, about 2/3 of the time in each field.
        let t0 = Millis::from(p) * 2_500;
        let dir: &[(Millis, f32)] = if p == 7 {
            &[(t0, 1.2), (t0 + 3000, -1.2)]
        } else {
            &[(t0, -1.2), (t0 + 3000, 1.2)]
        };
        let r = pass(p, dir, 4);
        assert!((450..=550).contains(&r.len()), "{} reads", r.len());
        reads.extend(r);
    }
    let real = reads.len();
    let (mut k, mut counted_strays) = (0u32, 0);
    while reads.len() < real * 11 / 10 {
        let t = Millis::from(k) * 53 % 52_000;
        let antenna = if k.is_multiple_of(5) { IN } else { OUT };
        let rssi = -72 - (k % 8) as i16;
        // Under min_rssi (-75) a stray's reads do not count at all; over it, they make a pass too short to arrive.
        counted_strays += u64::from(rssi >= -75);
        reads.extend(burst(1_000 + k, antenna, rssi, t, u64::from(1 + k % 2), 20));
        k += 1;
    }
    let mut s = Smoother::new(cfg(1500)).unwrap();
    let (lines, deps) = run(&mut s, reads);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with('+')).count(),
        20,
        "{lines:?}"
    );
    assert_eq!(deps.len(), 20);
    for d in &deps {
        let want = if id_of(&d.epc) == 7 {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        assert_eq!(d.direction, want, "tag {}", id_of(&d.epc));
        assert!(
            d.confidence >= 0.9,
            "tag {}: {}",
            id_of(&d.epc),
            d.confidence
        );
    }
    let st = s.stats();
    assert_eq!(st.strays, counted_strays, "every stray tag is counted");
    assert!(st.weak > 0);
    assert_eq!((st.arrivals, st.departures, st.evicted), (20, 20, 0));
}

#[test]
fn eviction_takes_the_least_recently_read_and_says_so() {
    let mut s = Smoother::new(SmoothConfig {
        max_tags: 3,
        ..cfg(1500)
    })
    .unwrap();
    // Tag 1 arrives and keeps being read; tags 2..=5 show up once each.
    for r in burst(1, OUT, -50, 0, 3, 10) {
        s.observe(&r);
    }
    for (k, id) in (2..=5).enumerate() {
        s.observe(&read(id, OUT, -50, 100 + k as Millis * 10));
        s.observe(&read(1, IN, -50, 105 + k as Millis * 10));
        assert!(s.stats().tracked <= 3);
    }
    // 2 and 3 were evicted as strays; tag 1 survives because it is read.
    assert_eq!(s.stats().evicted, 2);
    assert_eq!(
        s.stats().strays,
        0,
        "an evicted pending pass is counted as evicted, not stray"
    );
    let mut s2 = Smoother::new(SmoothConfig {
        max_tags: 1,
        ..cfg(1500)
    })
    .unwrap();
    for r in burst(1, OUT, -50, 0, 3, 10) {
        s2.observe(&r);
    }
    s2.observe(&read(2, OUT, -50, 50));
    let events: Vec<_> = std::iter::from_fn(|| s2.poll_event()).collect();
    assert!(
        matches!(&events[..], [PassEvent::Arrival(_), PassEvent::Departure(d)] if d.end == PassEnd::Evicted)
    );
    s.finish();
    let ids: Vec<u32> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            PassEvent::Departure(d) => Some(id_of(&d.epc)),
            _ => None,
        })
        .collect();
    assert_eq!(ids, [1]);
}

#[test]
fn config_is_checked() {
    let ok = SmoothConfig::gate(&[1], &[2]);
    let many: BTreeMap<u16, Role> = (1..=33).map(|a| (a, Role::Inside)).collect();
    #[rustfmt::skip]
    let cases: Vec<(SmoothConfig, Option<ConfigError>)> = vec![
        (ok.clone(), None),
        (SmoothConfig { quiet_ms: 0, ..ok.clone() }, Some(ConfigError::Zero("quiet_ms"))),
        (SmoothConfig { min_reads: 0, ..ok.clone() }, Some(ConfigError::Zero("min_reads"))),
        (SmoothConfig { direction_scale_ms: 0, ..ok.clone() }, Some(ConfigError::Zero("direction_scale_ms"))),
        (SmoothConfig { max_tags: 0, ..ok.clone() }, Some(ConfigError::MaxTags(0))),
        (SmoothConfig { roles: many.clone(), ..ok.clone() }, Some(ConfigError::TooManyAntennas(33))),
        (SmoothConfig { roles: many.into_keys().map(|a| (a, Role::Ignore)).collect(), ..ok.clone() }, None),
        (SmoothConfig { audit_capacity: 0, ..ok }, None),
    ];
    for (i, (c, want)) in cases.into_iter().enumerate() {
        assert_eq!(Smoother::new(c).err(), want, "case {i}");
    }
}

#[test]
fn audit_dump_as_json_lines() {
    let mut s = Smoother::new(SmoothConfig {
        audit_capacity: 3,
        audit_max_age_ms: 1_000,
        ..cfg(1500)
    })
    .unwrap();
    for r in [
        read(1, OUT, -50, 0),
        read(2, SPARE, -80, 100),
        read(3, IN, -60, 200),
        read(4, IN, -61, 300),
    ] {
        s.observe(&r);
    }
    let lines = s.audit_json_lines();
    assert_eq!(lines.lines().count(), 3);
    assert_eq!(
        lines.lines().next().unwrap(),
        r#"{"epc":"311412345600000000000002","antenna":3,"rssi":-80,"at":100,"count":1}"#
    );
    s.handle_timeout(1_250);
    let at: Vec<Millis> = s.audit_dump().iter().map(|r| r.at).collect();
    assert_eq!(at, [300]);
    assert_eq!(
        (s.stats().audit_overwritten, s.stats().audit_aged_out),
        (1, 2)
    );
}

/// The naive model: per EPC, the times of its counted reads; passes are the maximal runs separated by gaps of at
/// least `quiet`; a pass with at least `min_reads` reads (counts summed) arrives with the read that reaches it.
fn model(reads: &[TagRead], quiet: Millis, min_reads: u32) -> Passes {
    let mut out = Passes::new();
    for r in reads.iter().filter(|r| r.antenna == OUT || r.antenna == IN) {
        let passes = out.entry(id_of(&r.epc)).or_default();
        match passes.last_mut() {
            Some(p) if r.at - p.1 < quiet => {
                p.1 = r.at;
                p.2 += r.count.max(1);
            }
            _ => passes.push((r.at, r.at, r.count.max(1), None)),
        }
        let p = passes.last_mut().unwrap();
        if p.3.is_none() && p.2 >= min_reads {
            p.3 = Some(r.at);
        }
    }
    out
}

/// Per EPC (by id), its passes as (first seen, last seen, reads, arrival time if it arrived).
type Passes = BTreeMap<u32, Vec<(Millis, Millis, u32, Option<Millis>)>>;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// With room for every tag, the smoother's arrivals and departures are exactly the model's passes, however
    /// often `handle_timeout` is called.
    #[test]
    fn passes_match_the_naive_model(
        quiet in 1u64..400,
        min_reads in 1u32..5,
        steps in proptest::collection::vec(
            (0u32..5, prop_oneof![Just(OUT), Just(IN), Just(SPARE)], 0u64..300, 1u32..3, any::<bool>()),
            0..300,
        ),
    ) {
        let c = SmoothConfig { quiet_ms: quiet, min_reads, min_rssi: None, max_tags: 100, ..cfg(1) };
        let mut s = Smoother::new(c).unwrap();
        let mut t = 0;
        let mut reads = Vec::new();
        let mut got = Passes::new();
        let mut pending: BTreeMap<u32, Millis> = BTreeMap::new();
        let mut collect = |s: &mut Smoother| {
            while let Some(e) = s.poll_event() {
                match e {
                    PassEvent::Arrival(a) => {
                        prop_assert!(pending.insert(id_of(&a.epc), a.at).is_none(), "two arrivals");
                    }
                    PassEvent::Departure(d) => {
                        let at = pending.remove(&id_of(&d.epc));
                        prop_assert!(at.is_some(), "departure without arrival");
                        got.entry(id_of(&d.epc)).or_default().push((d.first_seen, d.last_seen, d.reads, at));
                    }
                }
            }
            Ok(())
        };
        for (id, antenna, dt, count, tick) in steps {
            t += dt;
            if tick {
                s.handle_timeout(t);
                collect(&mut s)?;
            }
            let r = TagRead { count, ..read(id, antenna, -50, t) };
            s.observe(&r);
            collect(&mut s)?;
            reads.push(r);
        }
        s.handle_timeout(t + quiet);
        collect(&mut s)?;
        prop_assert_eq!(s.stats().tracked, 0);
        prop_assert!(pending.is_empty());

        let want = model(&reads, quiet, min_reads);
        let want_passes: BTreeMap<u32, Vec<_>> = want
            .iter()
            .map(|(&id, ps)| (id, ps.iter().filter(|p| p.3.is_some()).copied().collect::<Vec<_>>()))
            .filter(|(_, ps)| !ps.is_empty())
            .collect();
        prop_assert_eq!(&got, &want_passes);
        let strays = want.values().flatten().filter(|p| p.3.is_none()).count() as u64;
        let st = s.stats();
        prop_assert_eq!(st.strays, strays);
        prop_assert_eq!(st.arrivals, st.departures);
        prop_assert_eq!(st.reads, reads.iter().map(|r| u64::from(r.count.max(1))).sum::<u64>());
        prop_assert_eq!(st.ignored, reads.iter().filter(|r| r.antenna == SPARE).count() as u64);
    }

    /// With too little room, the bound holds after every call and every arrival still departs exactly once.
    #[test]
    fn bounded_under_churn(
        max_tags in 1usize..8,
        steps in proptest::collection::vec((0u32..40, prop_oneof![Just(OUT), Just(IN)], 0u64..50), 0..400),
    ) {
        let c = SmoothConfig { max_tags, min_reads: 2, min_rssi: None, audit_capacity: 16, ..cfg(500) };
        let bound = c.memory_bound();
        let mut s = Smoother::new(c).unwrap();
        let mut open: BTreeMap<u32, ()> = BTreeMap::new();
        let mut t = 0;
        for (id, antenna, dt) in steps {
            t += dt;
            s.observe(&read(id, antenna, -50, t));
            while let Some(e) = s.poll_event() {
                match e {
                    PassEvent::Arrival(a) => prop_assert!(open.insert(id_of(&a.epc), ()).is_none()),
                    PassEvent::Departure(d) => prop_assert!(open.remove(&id_of(&d.epc)).is_some()),
                }
            }
            prop_assert!(s.stats().tracked <= max_tags);
            prop_assert!(s.approx_bytes() <= bound, "{} > {}", s.approx_bytes(), bound);
        }
        s.finish();
        while let Some(e) = s.poll_event() {
            prop_assert!(matches!(e, PassEvent::Departure(_)));
        }
        let st = s.stats();
        prop_assert_eq!(st.arrivals, st.departures);
        prop_assert_eq!(st.tracked, 0);
    }
}

/// Acceptance: 1,000,000 distinct EPCs streamed through (the clock advancing 1 ms per 100 reads, so few tags
/// depart by quiet time and eviction does the work) keep the smoother within its bound, while 20 tags being read
/// throughout are never evicted by the flood. Runs the full million in debug (a few seconds).
#[test]
fn a_million_distinct_epcs_stay_within_the_bound() {
    let c = SmoothConfig {
        min_rssi: None,
        ..SmoothConfig::gate(&[OUT], &[IN])
    };
    let bound = c.memory_bound();
    let max_tags = c.max_tags;
    let mut s = Smoother::new(c).unwrap();
    let mut r = read(0, OUT, -60, 0);
    let mut peak = 0;
    let mut arrivals = 0;
    for k in 0..1_000_000u32 {
        r.at = Millis::from(k / 100);
        if k.is_multiple_of(50) {
            r.epc[4] = 0x99;
            r.epc[8..].copy_from_slice(&(k / 50 % 20).to_be_bytes());
            r.antenna = if k.is_multiple_of(100) { OUT } else { IN };
        } else {
            r.epc[4] = 0x56;
            r.epc[8..].copy_from_slice(&k.to_be_bytes());
            r.antenna = OUT;
        }
        s.observe(&r);
        while let Some(e) = s.poll_event() {
            assert!(matches!(e, PassEvent::Arrival(_)), "{e:?}");
            arrivals += 1;
        }
        if k.is_multiple_of(1024) {
            peak = peak.max(s.approx_bytes());
            assert!(s.stats().tracked <= max_tags);
        }
    }
    peak = peak.max(s.approx_bytes());
    let st = s.stats();
    assert_eq!(arrivals, 20, "the 20 real tags arrive once each");
    assert_eq!(st.tracked, max_tags);
    assert!(st.evicted >= 1_000_000 - 20_000 - max_tags as u64, "{st:?}");
    assert!(peak <= bound, "{peak} > {bound}");
    s.finish();
    let deps = std::iter::from_fn(|| s.poll_event())
        .filter(|e| matches!(e, PassEvent::Departure(d) if d.end == PassEnd::Quiet))
        .count();
    assert_eq!(deps, 20, "the real tags were not evicted");
    println!(
        "1M distinct EPCs: peak approx_bytes {peak}, bound {bound}, evicted {}",
        st.evicted
    );
}

/// The figures the module documentation points at, for the default gate configuration.
#[test]
fn memory_bound_figures() {
    let c = SmoothConfig::gate(&[OUT], &[IN]);
    let bound = c.memory_bound();
    let empty = Smoother::new(c).unwrap().approx_bytes();
    println!(
        "default gate: bound {bound} bytes, empty {empty} bytes; Tag {} B, AntSlot {} B, table entry {} B, \
         audit entry {} B, event {} B",
        size_of::<Tag>(),
        size_of::<AntSlot>(),
        size_of::<(EpcKey, u32)>() + 1,
        AuditRing::bound(1) - MAX_EPC_BYTES,
        size_of::<PassEvent>()
    );
    assert!(bound < 20 << 20, "{bound}");
}
