//! The store conformance suite: what every [`Store`] backend must answer, run by `store_sled.rs` and
//! `store_postgres.rs` (issue 6 acceptance: "one conformance test suite runs against both").
//!
//! Use it from a test binary with
//!
//! ```text
//! mod conformance;
//! conformance::conformance_tests!(fresh_store);   // fresh_store: fn() -> impl conformance::Fixture
//! ```
//!
//! which stamps out one `#[test]` per case in [`CASES`], each on a fresh, empty store. [`run_all`] runs every case
//! in one call instead and panics listing all that failed. A case never skips: a backend that cannot run it fails.
//! Cases use fixed device times and only their own data, so they hold on any backend and in any order.

#![allow(dead_code)] // each test binary uses a different part of the suite

use dockhand_protocol::sync::{
    Asn, AsnLine, AsnPallet, Change, DocStatus, Item, Location, Movement, MovementKind,
    MovementSource, PickLine, PickList,
};
use dockhand_server::store::{
    Comment, DiscrepancyFilter, DiscrepancyKind, DiscrepancyStatus, MovementFilter, MovementRef,
    Resolution, Site, StockRow, OFFICE_DEVICE,
};
use dockhand_server::store::{Pushed, StockPageQuery, StockPageStart, StockSort};
use dockhand_server::{PushOutcome, StockFilter, Store, StoreError};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// What a factory returns: a fresh, empty store, plus whatever must live as long as it (a temporary directory,
/// a throw-away database).
pub trait Fixture {
    /// The store under test.
    fn store(&self) -> &dyn Store;
}

impl Fixture for Box<dyn Store> {
    fn store(&self) -> &dyn Store {
        &**self
    }
}

/// One case: gets a fresh, empty store and panics on failure.
pub type Case = fn(&dyn Store);

/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("ingest_idempotency", ingest_idempotency),
    ("conflicts", conflicts),
    ("gaps", gaps),
    ("stock_conservation", stock_conservation),
    ("stock_filters", stock_filters),
    ("stock_as_of", stock_as_of),
    ("history_filters_and_paging", history_filters_and_paging),
    ("master_data", master_data),
    ("pull_order_and_compaction", pull_order_and_compaction),
    ("pull_paging_and_sites", pull_paging_and_sites),
    ("negative_stock", negative_stock),
    ("count_mismatch", count_mismatch),
    ("late_count", late_count),
    ("asn_receipts", asn_receipts),
    ("asn_short_on_close", asn_short_on_close),
    (
        "unknown_reference_and_cancelled_pick",
        unknown_reference_and_cancelled_pick,
    ),
    ("unknown_item_and_location", unknown_item_and_location),
    ("comment_and_resolve", comment_and_resolve),
    ("refused_document_updates", refused_document_updates),
    ("asn_progress", asn_progress),
    ("pick_list_progress", pick_list_progress),
    ("movements_per_hour", movements_per_hour),
    ("discrepancies_after", discrepancies_after),
    ("stock_expiry", stock_expiry),
    ("stock_pages", stock_pages),
    ("push_reports_the_mark_it_met", push_reports_the_mark_it_met),
    (
        "scan_stats_keep_the_largest_total",
        scan_stats_keep_the_largest_total,
    ),
    ("create_asns_all_or_none", create_asns_all_or_none),
    ("reorder_rules", reorder_rules),
];

/// Runs every case, each on a store from `make`; panics naming every case that failed.
pub fn run_all<F: Fixture>(make: &dyn Fn() -> F) {
    let mut failed = Vec::new();
    for (name, case) in CASES {
        let fixture = make();
        let store = fixture.store();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(store))).is_err() {
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "conformance cases failed: {failed:?}");
}

/// Stamps out one `#[test]` per case, each on a fresh store from `$make` (a `fn() -> impl Fixture`).
macro_rules! conformance_tests {
    (@cases $make:path; $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                use $crate::conformance::Fixture as _;
                let fixture = $make();
                $crate::conformance::$case(fixture.store());
            }
        )*
        #[test]
        fn conformance_case_list_is_complete() {
            let stamped: &[&str] = &[$(stringify!($case)),*];
            let listed: Vec<&str> = $crate::conformance::CASES.iter().map(|(name, _)| *name).collect();
            assert_eq!(stamped, listed.as_slice(), "CASES and the macro's list differ");
        }
    };
    ($make:path) => {
        $crate::conformance::conformance_tests!(@cases $make;
            ingest_idempotency conflicts gaps stock_conservation stock_filters stock_as_of
            history_filters_and_paging master_data pull_order_and_compaction pull_paging_and_sites
            negative_stock count_mismatch late_count asn_receipts asn_short_on_close
            unknown_reference_and_cancelled_pick unknown_item_and_location comment_and_resolve
            refused_document_updates asn_progress pick_list_progress movements_per_hour
            discrepancies_after stock_expiry stock_pages push_reports_the_mark_it_met
            scan_stats_keep_the_largest_total create_asns_all_or_none
            reorder_rules);
    };
}
pub(crate) use conformance_tests;

// ---------------------------------------------------------------------------------------------------------------
// Test data

const SITE: &str = "WH1";
const OTHER_SITE: &str = "WH2";
const G1: &str = "09506000134352";
const G2: &str = "05901234123457";
const G3: &str = "04006381333931";
const UNKNOWN_GTIN: &str = "00000000000017";
const SSCC: &str = "106141411234567897";
const T0: OffsetDateTime = datetime!(2026-11-26 08:00:00 UTC);

fn minutes(n: i64) -> OffsetDateTime {
    T0 + Duration::minutes(n)
}

/// A movement of `device` at `T0 + seq` minutes, of item G1 without a lot.
fn mv(
    device: &str,
    seq: u64,
    kind: MovementKind,
    from: Option<&str>,
    to: Option<&str>,
    qty: u64,
) -> Movement {
    Movement {
        device_id: device.into(),
        seq,
        at: minutes(seq as i64),
        kind,
        gtin: G1.into(),
        lot: None,
        expiry: None,
        serials: vec![],
        qty,
        from_location: from.map(Into::into),
        to_location: to.map(Into::into),
        sscc: None,
        reference: None,
        operator: None,
        source: MovementSource::Manual,
    }
}

fn receive(device: &str, seq: u64, to: &str, qty: u64) -> Movement {
    mv(device, seq, MovementKind::Receive, None, Some(to), qty)
}

fn pick(device: &str, seq: u64, from: &str, qty: u64) -> Movement {
    mv(device, seq, MovementKind::Pick, Some(from), None, qty)
}

fn moved(device: &str, seq: u64, from: &str, to: &str, qty: u64) -> Movement {
    mv(device, seq, MovementKind::Move, Some(from), Some(to), qty)
}

fn count(device: &str, seq: u64, at: &str, qty: u64) -> Movement {
    mv(device, seq, MovementKind::Count, None, Some(at), qty)
}

fn with(mut m: Movement, edit: impl FnOnce(&mut Movement)) -> Movement {
    edit(&mut m);
    m
}

fn item(gtin: &str, description: &str) -> Item {
    Item {
        gtin: gtin.into(),
        description: description.into(),
        unit: "EA".into(),
        lot_tracked: false,
        expiry_tracked: false,
        serial_tracked: false,
        active: true,
        unit_cost: None,
    }
}

fn location(code: &str) -> Location {
    Location {
        code: code.into(),
        gln: None,
        zone: None,
        active: true,
    }
}

fn line(gtin: &str, lot: Option<&str>, qty: u64) -> AsnLine {
    AsnLine {
        gtin: gtin.into(),
        lot: lot.map(Into::into),
        qty,
    }
}

fn asn(id: &str, site: &str, lines: Vec<AsnLine>, pallets: Vec<AsnPallet>) -> Asn {
    Asn {
        id: id.into(),
        site: site.into(),
        supplier: None,
        expected_on: None,
        lines,
        pallets,
        status: DocStatus::Open,
    }
}

fn pick_list(id: &str, site: &str) -> PickList {
    PickList {
        id: id.into(),
        site: site.into(),
        device: None,
        zone: None,
        lines: vec![PickLine {
            line: 1,
            location: "A-01".into(),
            gtin: G1.into(),
            lot: None,
            qty: 2,
        }],
        status: DocStatus::Open,
    }
}

/// Items G1..G3 and locations DOCK, A-01, B-01 of [`SITE`]: movements on them raise no "unknown" discrepancies.
fn master(store: &dyn Store) {
    store
        .put_items(&[item(G1, "Widget"), item(G2, "Gadget"), item(G3, "Gizmo")])
        .unwrap();
    store
        .put_locations(
            SITE,
            &[location("DOCK"), location("A-01"), location("B-01")],
        )
        .unwrap();
}

fn acked(n: u64) -> PushOutcome {
    PushOutcome::Acked { acked_through: n }
}

fn push(store: &dyn Store, batch: &[Movement]) -> PushOutcome {
    store.push(SITE, &batch[0].device_id, batch).unwrap()
}

fn row(location: &str, gtin: &str, lot: Option<&str>, qty: i64) -> StockRow {
    StockRow {
        site: SITE.into(),
        location: location.into(),
        gtin: gtin.into(),
        lot: lot.map(Into::into),
        qty,
        expiry: None,
    }
}

fn all_stock(store: &dyn Store) -> Vec<StockRow> {
    store.stock(&StockFilter::default()).unwrap()
}

fn site_filter() -> StockFilter {
    StockFilter {
        site: Some(SITE.into()),
        ..StockFilter::default()
    }
}

/// Kinds of the discrepancies that name movement `(device, seq)`, by id.
fn raised(store: &dyn Store, device: &str, seq: u64) -> Vec<DiscrepancyKind> {
    let r = MovementRef {
        device_id: device.into(),
        seq,
    };
    store
        .discrepancies(&DiscrepancyFilter::default())
        .unwrap()
        .into_iter()
        .filter(|d| d.movements.contains(&r))
        .map(|d| d.kind)
        .collect()
}

fn refused<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::Refused(message)) => assert!(!message.is_empty(), "{what}"),
        other => panic!("{what}: want Refused, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Ingest

/// Replays are acknowledged and not applied again, also when a batch overlaps what is stored.
pub fn ingest_idempotency(store: &dyn Store) {
    let batch: Vec<Movement> = (1..=5).map(|s| receive("hh-01", s, "DOCK", s)).collect();
    // (batch range, outcome, stored count, stock at DOCK)
    let steps: &[(std::ops::Range<usize>, u64, u64, i64)] = &[
        (0..3, 3, 3, 6),  // first delivery
        (0..3, 3, 3, 6),  // exact replay
        (1..2, 3, 3, 6),  // replay of one old movement
        (1..5, 5, 5, 15), // partial overlap: 2, 3 replayed, 4, 5 new
        (0..5, 5, 5, 15), // everything again
        (4..5, 5, 5, 15), // the tail again
    ];
    for (i, (range, hw, stored, qty)) in steps.iter().enumerate() {
        assert_eq!(push(store, &batch[range.clone()]), acked(*hw), "step {i}");
        assert_eq!(store.high_water("hh-01").unwrap(), *hw, "step {i}");
        assert_eq!(store.movement_count().unwrap(), *stored, "step {i}");
        assert_eq!(
            all_stock(store),
            vec![row("DOCK", G1, None, *qty)],
            "step {i}"
        );
    }
    assert_eq!(
        store.push(SITE, "hh-01", &[]).unwrap(),
        acked(5),
        "empty batch"
    );
    assert_eq!(store.high_water("nobody").unwrap(), 0);
    assert_eq!(store.movement("hh-01", 4).unwrap(), Some(batch[3].clone()));
    assert_eq!(store.movement("hh-01", 6).unwrap(), None);
    let page = store.movements(&MovementFilter::default(), 0, 100).unwrap();
    let seqs: Vec<(u64, u64)> = page
        .movements
        .iter()
        .map(|s| (s.server_seq, s.movement.seq))
        .collect();
    assert_eq!(
        seqs,
        vec![(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)],
        "applied once each"
    );
}

/// The same `(device, seq)` with different content is a conflict and nothing of the batch is applied.
pub fn conflicts(store: &dyn Store) {
    let batch: Vec<Movement> = (1..=3).map(|s| receive("hh-01", s, "DOCK", 1)).collect();
    assert_eq!(push(store, &batch), acked(3));
    let changed = |s: u64| with(batch[s as usize - 1].clone(), |m| m.qty = 9);
    let cases: Vec<(&str, Vec<Movement>, u64)> = vec![
        ("different qty", vec![changed(2)], 2),
        ("later seq differs", vec![batch[1].clone(), changed(3)], 3),
        (
            "conflict before new movements",
            vec![changed(3), receive("hh-01", 4, "DOCK", 1)],
            3,
        ),
        (
            "different time",
            vec![with(batch[0].clone(), |m| m.at += Duration::seconds(1))],
            1,
        ),
        (
            "different location",
            vec![with(batch[0].clone(), |m| {
                m.to_location = Some("A-01".into())
            })],
            1,
        ),
    ];
    for (name, b, seq) in cases {
        assert_eq!(push(store, &b), PushOutcome::Conflict { seq }, "{name}");
        assert_eq!(store.high_water("hh-01").unwrap(), 3, "{name}");
        assert_eq!(store.movement_count().unwrap(), 3, "{name}");
        assert_eq!(all_stock(store), vec![row("DOCK", G1, None, 3)], "{name}");
    }
}

/// A batch that starts past high-water + 1 changes nothing and names the expected seq.
pub fn gaps(store: &dyn Store) {
    let cases: Vec<(&str, Vec<Movement>, u64)> = vec![
        (
            "new device starting at 2",
            vec![receive("hh-02", 2, "DOCK", 1)],
            1,
        ),
        (
            "past the mark",
            vec![
                receive("hh-01", 5, "DOCK", 1),
                receive("hh-01", 6, "DOCK", 1),
            ],
            4,
        ),
    ];
    assert_eq!(
        push(
            store,
            &(1..=3)
                .map(|s| receive("hh-01", s, "DOCK", 1))
                .collect::<Vec<_>>()
        ),
        acked(3)
    );
    for (name, b, expected_seq) in cases {
        assert_eq!(push(store, &b), PushOutcome::Gap { expected_seq }, "{name}");
    }
    assert_eq!(store.high_water("hh-01").unwrap(), 3);
    assert_eq!(store.high_water("hh-02").unwrap(), 0);
    assert_eq!(store.movement_count().unwrap(), 3);
    // Filling the gap works.
    assert_eq!(push(store, &[receive("hh-01", 4, "DOCK", 1)]), acked(4));
}

/// Stock is the sum of effects of the applied movements: a naive sum over the history must agree.
pub fn stock_conservation(store: &dyn Store) {
    master(store);
    let lot = |m: Movement, l: &str| with(m, |m| m.lot = Some(l.into()));
    let g2 = |m: Movement| with(m, |m| m.gtin = G2.into());
    let hh1 = [
        receive("hh-01", 1, "DOCK", 20),
        lot(receive("hh-01", 2, "DOCK", 5), "L1"),
        moved("hh-01", 3, "DOCK", "A-01", 8),
        pick("hh-01", 4, "A-01", 3),
        lot(moved("hh-01", 5, "DOCK", "B-01", 5), "L1"),
        count("hh-01", 6, "A-01", 5),
        mv("hh-01", 7, MovementKind::Adjust, Some("DOCK"), None, 2),
        mv("hh-01", 8, MovementKind::Ship, Some("A-01"), None, 5),
    ];
    let hh2 = [
        g2(receive("hh-02", 1, "DOCK", 4)),
        g2(mv(
            "hh-02",
            2,
            MovementKind::Putaway,
            Some("DOCK"),
            Some("B-01"),
            4,
        )),
        pick("hh-02", 3, "B-01", 1),
    ];
    assert_eq!(push(store, &hh1[..4]), acked(4));
    assert_eq!(push(store, &hh2), acked(3));
    assert_eq!(push(store, &hh1[2..]), acked(8));
    assert_eq!(
        store
            .push(OTHER_SITE, "gate-9", &[receive("gate-9", 1, "DOCK", 7)])
            .unwrap(),
        acked(1)
    );

    let mut sums: std::collections::BTreeMap<(String, String, String, Option<String>), i64> =
        Default::default();
    let history = store
        .movements(&MovementFilter::default(), 0, 1000)
        .unwrap();
    assert_eq!(history.movements.len(), 12);
    for s in &history.movements {
        for e in s.movement.effects() {
            *sums
                .entry((
                    s.site.clone(),
                    e.location.to_string(),
                    s.movement.gtin.clone(),
                    s.movement.lot.clone(),
                ))
                .or_default() += e.delta;
        }
    }
    sums.retain(|_, q| *q != 0);
    let want: Vec<StockRow> = sums
        .into_iter()
        .map(|((site, location, gtin, lot), qty)| StockRow {
            site,
            location,
            gtin,
            lot,
            qty,
            expiry: None,
        })
        .collect();
    assert_eq!(
        all_stock(store),
        want,
        "stock = sum of effects, sorted, zeros omitted"
    );
    assert_eq!(
        store.stock(&site_filter()).unwrap(),
        vec![
            // A-01: +8 -3 -5 = 0 is omitted; G2 (0590...) sorts before G1 (0950...).
            row("B-01", G2, None, 4),
            row("B-01", G1, None, -1),
            row("B-01", G1, Some("L1"), 5),
            row("DOCK", G1, None, 10),
        ]
    );
}

/// Filters on stock: table-driven.
pub fn stock_filters(store: &dyn Store) {
    let lot = |m: Movement, l: &str| with(m, |m| m.lot = Some(l.into()));
    push(
        store,
        &[
            receive("hh-01", 1, "A-01", 1),
            lot(receive("hh-01", 2, "A-01", 2), "L1"),
            lot(receive("hh-01", 3, "A-01", 3), "L2"),
            with(receive("hh-01", 4, "B-01", 4), |m| m.gtin = G2.into()),
        ],
    );
    store
        .push(OTHER_SITE, "hh-09", &[receive("hh-09", 1, "A-01", 5)])
        .unwrap();
    let f = |site: Option<&str>, loc: Option<&str>, gtin: Option<&str>, lot: Option<&str>| {
        StockFilter {
            site: site.map(Into::into),
            location: loc.map(Into::into),
            gtin: gtin.map(Into::into),
            lot: lot.map(Into::into),
        }
    };
    let qtys = |rows: Vec<StockRow>| rows.into_iter().map(|r| r.qty).collect::<Vec<_>>();
    let cases: Vec<(&str, StockFilter, Vec<i64>)> = vec![
        ("everything", f(None, None, None, None), vec![1, 2, 3, 4, 5]),
        ("site", f(Some(SITE), None, None, None), vec![1, 2, 3, 4]),
        ("other site", f(Some(OTHER_SITE), None, None, None), vec![5]),
        (
            "location over sites",
            f(None, Some("A-01"), None, None),
            vec![1, 2, 3, 5],
        ),
        (
            "site and location",
            f(Some(SITE), Some("A-01"), None, None),
            vec![1, 2, 3],
        ),
        ("gtin", f(Some(SITE), None, Some(G2), None), vec![4]),
        ("lot", f(Some(SITE), None, Some(G1), Some("L2")), vec![3]),
        (
            "lot matches no lot-less row",
            f(None, Some("B-01"), None, Some("L1")),
            vec![],
        ),
        ("unknown site", f(Some("WH"), None, None, None), vec![]),
    ];
    for (name, filter, want) in cases {
        assert_eq!(qtys(store.stock(&filter).unwrap()), want, "{name}");
    }
}

/// Stock as of a device time sums the effects of movements with `at <= t`, whenever they arrived.
pub fn stock_as_of(store: &dyn Store) {
    master(store);
    // hh-01: receive 10 at t1, move 4 to A-01 at t3, pick 3 from A-01 at t5.
    let at = |m: Movement, t: i64| with(m, |m| m.at = minutes(t));
    push(
        store,
        &[
            at(receive("hh-01", 1, "DOCK", 10), 1),
            at(moved("hh-01", 2, "DOCK", "A-01", 4), 3),
            at(pick("hh-01", 3, "A-01", 3), 5),
        ],
    );
    // hh-02 was offline: a receipt at t2 arrives last, stamped in another offset.
    let late = with(receive("hh-02", 1, "DOCK", 5), |m| {
        m.at = minutes(2).to_offset(time::macros::offset!(+02:00));
    });
    push(store, &[late]);
    let cases: Vec<(&str, OffsetDateTime, Vec<StockRow>)> = vec![
        ("before anything", minutes(0), vec![]),
        (
            "exactly t1 is included",
            minutes(1),
            vec![row("DOCK", G1, None, 10)],
        ),
        (
            "t2: the late receipt counts at its own time",
            minutes(2),
            vec![row("DOCK", G1, None, 15)],
        ),
        (
            "between t3 and t5",
            minutes(4),
            vec![row("A-01", G1, None, 4), row("DOCK", G1, None, 11)],
        ),
        (
            "t5",
            minutes(5),
            vec![row("A-01", G1, None, 1), row("DOCK", G1, None, 11)],
        ),
    ];
    for (name, t, want) in cases {
        assert_eq!(
            store.stock_as_of(&site_filter(), t).unwrap(),
            want,
            "{name}"
        );
    }
    assert_eq!(
        store.stock_as_of(&site_filter(), minutes(60)).unwrap(),
        store.stock(&site_filter()).unwrap(),
        "as of the future = now"
    );
    let a01 = StockFilter {
        location: Some("A-01".into()),
        ..site_filter()
    };
    assert_eq!(
        store.stock_as_of(&a01, minutes(4)).unwrap(),
        vec![row("A-01", G1, None, 4)]
    );
}

/// History: every filter, commit order, paging by server seq.
pub fn history_filters_and_paging(store: &dyn Store) {
    let before = OffsetDateTime::now_utc() - Duration::seconds(5);
    push(
        store,
        &[
            receive("hh-01", 1, "DOCK", 3),
            moved("hh-01", 2, "DOCK", "A-01", 2),
        ],
    );
    push(
        store,
        &[
            with(receive("hh-02", 1, "DOCK", 1), |m| m.gtin = G2.into()),
            pick("hh-02", 2, "A-01", 1),
        ],
    );
    store
        .push(OTHER_SITE, "hh-09", &[receive("hh-09", 1, "DOCK", 1)])
        .unwrap();
    push(store, &[count("hh-01", 3, "A-01", 1)]);

    let all = store.movements(&MovementFilter::default(), 0, 100).unwrap();
    assert_eq!(all.next, None);
    let order: Vec<(String, u64)> = all
        .movements
        .iter()
        .map(|s| (s.movement.device_id.clone(), s.movement.seq))
        .collect();
    let want_order: Vec<(String, u64)> = [
        ("hh-01", 1),
        ("hh-01", 2),
        ("hh-02", 1),
        ("hh-02", 2),
        ("hh-09", 1),
        ("hh-01", 3),
    ]
    .iter()
    .map(|(d, s)| (d.to_string(), *s))
    .collect();
    assert_eq!(order, want_order, "server commit order");
    let server_seqs: Vec<u64> = all.movements.iter().map(|s| s.server_seq).collect();
    assert!(
        server_seqs.windows(2).all(|w| w[0] < w[1]),
        "{server_seqs:?}"
    );
    for s in &all.movements {
        assert!(s.received_at >= before, "received_at is the server's time");
        let want_site = if s.movement.device_id == "hh-09" {
            OTHER_SITE
        } else {
            SITE
        };
        assert_eq!(s.site, want_site);
    }

    let f = MovementFilter::default;
    type Expect<'a> = Vec<(&'a str, u64)>;
    let cases: Vec<(&str, MovementFilter, Expect<'_>)> = vec![
        (
            "device",
            MovementFilter {
                device_id: Some("hh-02".into()),
                ..f()
            },
            vec![("hh-02", 1), ("hh-02", 2)],
        ),
        (
            "device that is a prefix of none",
            MovementFilter {
                device_id: Some("hh-0".into()),
                ..f()
            },
            vec![],
        ),
        (
            "site",
            MovementFilter {
                site: Some(OTHER_SITE.into()),
                ..f()
            },
            vec![("hh-09", 1)],
        ),
        (
            "gtin",
            MovementFilter {
                gtin: Some(G2.into()),
                ..f()
            },
            vec![("hh-02", 1)],
        ),
        (
            "location, either side",
            MovementFilter {
                location: Some("A-01".into()),
                ..f()
            },
            vec![("hh-01", 2), ("hh-02", 2), ("hh-01", 3)],
        ),
        (
            "kind",
            MovementFilter {
                kind: Some(MovementKind::Receive),
                ..f()
            },
            vec![("hh-01", 1), ("hh-02", 1), ("hh-09", 1)],
        ),
        (
            "since is inclusive",
            MovementFilter {
                since: Some(minutes(2)),
                ..f()
            },
            vec![("hh-01", 2), ("hh-02", 2), ("hh-01", 3)],
        ),
        (
            "until is exclusive",
            MovementFilter {
                until: Some(minutes(2)),
                ..f()
            },
            vec![("hh-01", 1), ("hh-02", 1), ("hh-09", 1)],
        ),
        (
            "combined",
            MovementFilter {
                site: Some(SITE.into()),
                kind: Some(MovementKind::Pick),
                since: Some(minutes(1)),
                until: Some(minutes(3)),
                ..f()
            },
            vec![("hh-02", 2)],
        ),
    ];
    for (name, filter, want) in cases {
        let got: Vec<(String, u64)> = store
            .movements(&filter, 0, 100)
            .unwrap()
            .movements
            .into_iter()
            .map(|s| (s.movement.device_id, s.movement.seq))
            .collect();
        let want: Vec<(String, u64)> = want.iter().map(|(d, s)| (d.to_string(), *s)).collect();
        assert_eq!(got, want, "{name}");
    }

    // Paging: pages of 4 then 2 for all six; pages of at most `limit`, cursor = last server seq.
    for limit in [1, 2, 4, 5, 6, 7] {
        let mut after = 0;
        let mut got = Vec::new();
        let mut pages = 0;
        loop {
            let page = store
                .movements(&MovementFilter::default(), after, limit)
                .unwrap();
            assert!(page.movements.len() <= limit, "limit {limit}");
            got.extend(page.movements.iter().map(|s| s.server_seq));
            pages += 1;
            assert!(pages <= 10, "paging does not end");
            match page.next {
                Some(next) => {
                    assert_eq!(Some(next), page.movements.last().map(|s| s.server_seq));
                    after = next;
                }
                None => break,
            }
        }
        assert_eq!(got, server_seqs, "limit {limit}");
        if limit < 6 {
            assert!(pages > 1, "limit {limit}");
        }
    }
    let filtered = MovementFilter {
        device_id: Some("hh-01".into()),
        ..f()
    };
    let first = store.movements(&filtered, 0, 2).unwrap();
    assert_eq!(first.movements.len(), 2);
    let next = first.next.expect("a third hh-01 movement follows");
    let second = store.movements(&filtered, next, 2).unwrap();
    assert_eq!(second.movements.len(), 1);
    assert_eq!(second.movements[0].movement.seq, 3);
    assert_eq!(second.next, None);
    assert!(store
        .movements(&MovementFilter::default(), *server_seqs.last().unwrap(), 10)
        .unwrap()
        .movements
        .is_empty());
}

/// Sites, items, locations, ASNs and pick lists read back as written.
pub fn master_data(store: &dyn Store) {
    let site = |code: &str, name: &str| Site {
        code: code.into(),
        name: name.into(),
        active: true,
    };
    store.put_site(&site(OTHER_SITE, "North")).unwrap();
    store.put_site(&site(SITE, "Main")).unwrap();
    store
        .put_site(&Site {
            active: false,
            ..site(SITE, "Main (old)")
        })
        .unwrap();
    assert_eq!(
        store.sites().unwrap(),
        vec![
            Site {
                active: false,
                ..site(SITE, "Main (old)")
            },
            site(OTHER_SITE, "North"),
        ]
    );

    store
        .put_items(&[item(G2, "Gadget"), item(G1, "Widget"), item(G3, "Gizmo")])
        .unwrap();
    store.put_items(&[item(G1, "Widget v2")]).unwrap();
    assert_eq!(store.item(G1).unwrap(), Some(item(G1, "Widget v2")));
    assert_eq!(store.item(UNKNOWN_GTIN).unwrap(), None);
    let gtins = |items: Vec<Item>| items.into_iter().map(|i| i.gtin).collect::<Vec<_>>();
    assert_eq!(gtins(store.items(None, 10).unwrap()), vec![G3, G2, G1]);
    assert_eq!(gtins(store.items(None, 2).unwrap()), vec![G3, G2]);
    assert_eq!(gtins(store.items(Some(G2), 10).unwrap()), vec![G1]);
    assert_eq!(
        gtins(store.items(Some(G1), 10).unwrap()),
        Vec::<String>::new()
    );

    store
        .put_locations(SITE, &[location("B-01"), location("A-01")])
        .unwrap();
    store
        .put_locations(OTHER_SITE, &[location("Z-09")])
        .unwrap();
    let zoned = Location {
        zone: Some("cold".into()),
        ..location("A-01")
    };
    store
        .put_locations(SITE, std::slice::from_ref(&zoned))
        .unwrap();
    assert_eq!(
        store.locations(SITE).unwrap(),
        vec![zoned, location("B-01")]
    );
    assert_eq!(store.locations(OTHER_SITE).unwrap(), vec![location("Z-09")]);
    assert_eq!(store.locations("WH").unwrap(), vec![]);

    let a1 = asn("ASN-1", SITE, vec![line(G1, None, 5)], vec![]);
    let a2 = asn("ASN-2", SITE, vec![line(G2, None, 5)], vec![]);
    let a3 = asn("ASN-3", OTHER_SITE, vec![line(G2, None, 5)], vec![]);
    for a in [&a1, &a2, &a3] {
        store.put_asn(a).unwrap();
    }
    let replaced = Asn {
        supplier: Some("ACME".into()),
        ..a1.clone()
    };
    store.put_asn(&replaced).unwrap();
    assert_eq!(store.asn("ASN-1").unwrap(), Some(replaced.clone()));
    assert_eq!(store.asn("ASN-9").unwrap(), None);
    store.set_asn_status("ASN-2", DocStatus::Closed).unwrap();
    let ids = |v: Vec<Asn>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(ids(store.asns(SITE, None).unwrap()), vec!["ASN-1", "ASN-2"]);
    assert_eq!(
        ids(store.asns(SITE, Some(DocStatus::Open)).unwrap()),
        vec!["ASN-1"]
    );
    assert_eq!(
        ids(store.asns(SITE, Some(DocStatus::Closed)).unwrap()),
        vec!["ASN-2"]
    );
    assert_eq!(ids(store.asns(OTHER_SITE, None).unwrap()), vec!["ASN-3"]);

    let assigned = PickList {
        device: Some("hh-01".into()),
        ..pick_list("PL-1", SITE)
    };
    store.put_pick_list(&pick_list("PL-1", SITE)).unwrap();
    store.put_pick_list(&assigned).unwrap();
    store.put_pick_list(&pick_list("PL-2", SITE)).unwrap();
    store.put_pick_list(&pick_list("PL-3", OTHER_SITE)).unwrap();
    assert_eq!(store.pick_list("PL-1").unwrap(), Some(assigned));
    assert_eq!(store.pick_list("PL-9").unwrap(), None);
    let cancelled = store
        .set_pick_list_status("PL-2", DocStatus::Cancelled)
        .unwrap()
        .unwrap();
    assert_eq!(cancelled.status, DocStatus::Cancelled);
    assert_eq!(store.pick_list("PL-2").unwrap(), Some(cancelled));
    let ids = |v: Vec<PickList>| v.into_iter().map(|l| l.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.pick_lists(SITE, None).unwrap()),
        vec!["PL-1", "PL-2"]
    );
    assert_eq!(
        ids(store.pick_lists(SITE, Some(DocStatus::Cancelled)).unwrap()),
        vec!["PL-2"]
    );
    assert_eq!(
        ids(store.pick_lists(OTHER_SITE, None).unwrap()),
        vec!["PL-3"]
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Pull

fn pull_all(store: &dyn Store, site: &str, cursor: u64) -> (u64, Vec<Change>) {
    let page = store.pull(site, cursor, 10_000).unwrap();
    assert!(!page.more);
    (page.cursor, page.changes)
}

/// The feed is in commit order and keeps one entry per entity; a cancellation replaces its document's entry.
pub fn pull_order_and_compaction(store: &dyn Store) {
    let (c0, empty) = pull_all(store, SITE, 0);
    assert_eq!((c0, empty), (0, vec![]), "empty feed, cursor unchanged");

    store.put_items(&[item(G1, "Widget")]).unwrap();
    store.put_locations(SITE, &[location("A-01")]).unwrap();
    let a1 = asn("ASN-1", SITE, vec![line(G1, None, 5)], vec![]);
    store.put_asn(&a1).unwrap();
    store.put_pick_list(&pick_list("PL-1", SITE)).unwrap();
    let (c1, first) = pull_all(store, SITE, 0);
    assert_eq!(
        first,
        vec![
            Change::Item(item(G1, "Widget")),
            Change::Location(location("A-01")),
            Change::Asn(a1.clone()),
            Change::PickList(pick_list("PL-1", SITE)),
        ]
    );
    assert!(c1 >= 4);

    // An item updated twice appears once, after everything else.
    store.put_items(&[item(G1, "Widget v2")]).unwrap();
    store.put_items(&[item(G1, "Widget v3")]).unwrap();
    store.set_asn_status("ASN-1", DocStatus::Cancelled).unwrap();
    let closed = store
        .set_pick_list_status("PL-1", DocStatus::Closed)
        .unwrap()
        .unwrap();
    let (c2, since) = pull_all(store, SITE, c1);
    assert_eq!(
        since,
        vec![
            Change::Item(item(G1, "Widget v3")),
            Change::Cancel {
                reference: "ASN-1".into()
            },
            Change::PickList(closed.clone()),
        ],
        "a device at c1 gets exactly what changed"
    );
    assert!(c2 > c1);
    assert_eq!(pull_all(store, SITE, c2), (c2, vec![]), "nothing new");

    // A new device gets one entry per entity: the latest.
    let (c3, snapshot) = pull_all(store, SITE, 0);
    assert_eq!(c3, c2);
    assert_eq!(
        snapshot,
        vec![
            Change::Location(location("A-01")),
            Change::Item(item(G1, "Widget v3")),
            Change::Cancel {
                reference: "ASN-1".into()
            },
            Change::PickList(closed),
        ]
    );
}

/// Site filtering, paging with `more` and `cursor`, and a new device's compact snapshot.
pub fn pull_paging_and_sites(store: &dyn Store) {
    for i in 0..10u64 {
        let gtin = format!("{:014}", 1000 + i);
        store.put_items(&[item(&gtin, "thing")]).unwrap();
        let code = format!("L-{i:02}");
        store.put_locations(SITE, &[location(&code)]).unwrap();
        store.put_locations(OTHER_SITE, &[location(&code)]).unwrap();
    }
    store
        .put_asn(&asn("ASN-N", OTHER_SITE, vec![line(G1, None, 1)], vec![]))
        .unwrap();
    store.set_asn_status("ASN-N", DocStatus::Cancelled).unwrap();
    store.put_pick_list(&pick_list("PL-N", OTHER_SITE)).unwrap();
    // The same entities again: every entry moves to the end, nothing is duplicated.
    for i in 0..10u64 {
        let gtin = format!("{:014}", 1000 + i);
        store.put_items(&[item(&gtin, "thing v2")]).unwrap();
    }

    let (_, wh1) = pull_all(store, SITE, 0);
    assert_eq!(wh1.len(), 20, "10 locations of WH1 + 10 items");
    assert!(wh1[..10].iter().all(|c| matches!(c, Change::Location(_))));
    assert!(wh1[10..]
        .iter()
        .all(|c| matches!(c, Change::Item(i) if i.description == "thing v2")));
    let (_, wh2) = pull_all(store, OTHER_SITE, 0);
    assert_eq!(
        wh2.len(),
        22,
        "WH2 also sees its ASN cancellation and pick list"
    );
    assert!(wh2.contains(&Change::Cancel {
        reference: "ASN-N".into()
    }));
    assert!(!wh2.iter().any(|c| matches!(c, Change::Asn(_))));
    let (_, nowhere) = pull_all(store, "WH9", 0);
    assert_eq!(
        nowhere.len(),
        10,
        "a site with no data still gets the items"
    );

    for limit in [1, 3, 7, 20, 21] {
        let mut cursor = 0;
        let mut got = Vec::new();
        loop {
            let page = store.pull(SITE, cursor, limit).unwrap();
            assert!(page.changes.len() <= limit);
            if page.changes.is_empty() {
                assert_eq!(
                    page.cursor, cursor,
                    "cursor unchanged when nothing returned"
                );
            } else {
                assert!(page.cursor > cursor);
            }
            cursor = page.cursor;
            got.extend(page.changes);
            if !page.more {
                break;
            }
            assert!(got.len() <= 20, "more = true past the end");
        }
        assert_eq!(got, wh1, "limit {limit}");
    }
    let page = store.pull(SITE, 0, 20).unwrap();
    assert!(!page.more, "exactly the last visible change: no more");
    let page = store.pull(SITE, 0, 19).unwrap();
    assert!(page.more);
    let page = store.pull(SITE, u64::MAX, 5).unwrap();
    assert_eq!(
        (page.cursor, page.more, page.changes.len()),
        (u64::MAX, false, 0)
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Reconciliation

/// A movement that takes stock below zero raises NegativeStock; the movement is stored all the same.
pub fn negative_stock(store: &dyn Store) {
    master(store);
    assert_eq!(
        push(
            store,
            &[
                receive("hh-01", 1, "A-01", 2),
                pick("hh-01", 2, "A-01", 5),
                receive("hh-01", 3, "A-01", 1),
                pick("hh-01", 4, "A-01", 1),
            ]
        ),
        acked(4)
    );
    assert_eq!(raised(store, "hh-01", 1), vec![]);
    assert_eq!(
        raised(store, "hh-01", 2),
        vec![DiscrepancyKind::NegativeStock]
    );
    assert_eq!(
        raised(store, "hh-01", 3),
        vec![],
        "a receipt into negative stock"
    );
    assert_eq!(
        raised(store, "hh-01", 4),
        vec![DiscrepancyKind::NegativeStock]
    );
    let d = &store
        .discrepancies(&DiscrepancyFilter {
            kind: Some(DiscrepancyKind::NegativeStock),
            ..DiscrepancyFilter::default()
        })
        .unwrap()[0];
    assert_eq!(d.site, SITE);
    assert_eq!(d.status, DiscrepancyStatus::Open);
    assert_eq!(d.location.as_deref(), Some("A-01"));
    assert_eq!(d.gtin.as_deref(), Some(G1));
    assert_eq!((d.expected, d.actual), (Some(0), Some(-3)));
    assert!(!d.message.is_empty());
    assert_eq!(
        d.movements,
        vec![MovementRef {
            device_id: "hh-01".into(),
            seq: 2
        }]
    );
    assert_eq!(all_stock(store), vec![row("A-01", G1, None, -3)]);
    // Replaying raises nothing new.
    let before = store.discrepancies(&DiscrepancyFilter::default()).unwrap();
    push(store, &[pick("hh-01", 2, "A-01", 5)]);
    assert_eq!(
        store.discrepancies(&DiscrepancyFilter::default()).unwrap(),
        before
    );
    // A move that leaves its source negative is flagged at the source.
    push(store, &[moved("hh-01", 5, "B-01", "A-01", 1)]);
    assert_eq!(
        raised(store, "hh-01", 5),
        vec![DiscrepancyKind::NegativeStock]
    );
}

/// A count is judged against the book at its own time, per location, item and lot.
pub fn count_mismatch(store: &dyn Store) {
    master(store);
    let lot = |m: Movement| with(m, |m| m.lot = Some("L1".into()));
    push(
        store,
        &[
            receive("hh-01", 1, "A-01", 10),
            lot(receive("hh-01", 2, "A-01", 4)),
            count("hh-01", 3, "A-01", 10),
            count("hh-01", 4, "A-01", 8),
            lot(count("hh-01", 5, "A-01", 4)),
            count("hh-01", 6, "B-01", 0),
            count("hh-01", 7, "B-01", 2),
            // In one batch: the receipt before the count is part of the book.
            receive("hh-01", 8, "B-01", 3),
            count("hh-01", 9, "B-01", 3),
        ],
    );
    let cases: &[(u64, &[DiscrepancyKind])] = &[
        (3, &[]),
        (4, &[DiscrepancyKind::CountMismatch]),
        (5, &[]),
        (6, &[]),
        (7, &[DiscrepancyKind::CountMismatch]),
        (9, &[]),
    ];
    for (seq, want) in cases {
        assert_eq!(
            raised(store, "hh-01", *seq),
            want.to_vec(),
            "count seq {seq}"
        );
    }
    let d = store
        .discrepancies(&DiscrepancyFilter {
            kind: Some(DiscrepancyKind::CountMismatch),
            ..DiscrepancyFilter::default()
        })
        .unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!((d[0].expected, d[0].actual), (Some(10), Some(8)));
    assert_eq!(d[0].location.as_deref(), Some("A-01"));
    assert_eq!((d[1].expected, d[1].actual), (Some(0), Some(2)));
    assert_eq!(all_stock(store).len(), 3, "counts move no stock");
}

/// A count from a device that was offline is judged against the stock at the count's time, not at arrival.
pub fn late_count(store: &dyn Store) {
    master(store);
    let at = |m: Movement, t: i64| with(m, |m| m.at = minutes(t));
    // Online device: receive 10 at t1, pick 4 at t3 (book is 6 now).
    push(
        store,
        &[
            at(receive("hh-01", 1, "A-01", 10), 1),
            at(pick("hh-01", 2, "A-01", 4), 3),
        ],
    );
    // Offline device, back now: counted 10 at t2 (right then), and 6 at t2 as well (wrong then).
    push(
        store,
        &[
            at(count("hh-02", 1, "A-01", 10), 2),
            at(count("hh-02", 2, "A-01", 6), 2),
        ],
    );
    assert_eq!(raised(store, "hh-02", 1), vec![], "10 was right at t2");
    assert_eq!(
        raised(store, "hh-02", 2),
        vec![DiscrepancyKind::CountMismatch]
    );
    let d = store
        .discrepancies(&DiscrepancyFilter {
            kind: Some(DiscrepancyKind::CountMismatch),
            ..DiscrepancyFilter::default()
        })
        .unwrap();
    assert_eq!((d[0].expected, d[0].actual), (Some(10), Some(6)));
    // A count at exactly t3 includes the pick stamped t3; one at t0 sees nothing.
    push(
        store,
        &[
            at(count("hh-02", 3, "A-01", 6), 3),
            at(count("hh-02", 4, "A-01", 0), 0),
        ],
    );
    assert_eq!(raised(store, "hh-02", 3), vec![]);
    assert_eq!(raised(store, "hh-02", 4), vec![]);
    // Within one late batch, a later-stamped movement before the count does not count at the count's time.
    push(
        store,
        &[
            at(receive("hh-03", 1, "A-01", 5), 10),
            at(count("hh-03", 2, "A-01", 6), 4),
        ],
    );
    assert_eq!(raised(store, "hh-03", 2), vec![]);
}

/// Receipts against an ASN: over (once), unexpected line, unexpected pallet, lots.
pub fn asn_receipts(store: &dyn Store) {
    master(store);
    store
        .put_asn(&asn(
            "ASN-1",
            SITE,
            vec![line(G1, None, 10)],
            vec![AsnPallet {
                sscc: SSCC.into(),
                lines: vec![line(G2, Some("P1"), 5)],
            }],
        ))
        .unwrap();
    let r = |seq: u64, gtin: &str, lot: Option<&str>, sscc: Option<&str>, qty: u64| {
        with(receive("hh-01", seq, "DOCK", qty), |m| {
            m.gtin = gtin.into();
            m.lot = lot.map(Into::into);
            m.sscc = sscc.map(Into::into);
            m.reference = Some("ASN-1".into());
        })
    };
    use DiscrepancyKind::*;
    let cases: Vec<(&str, Movement, Vec<DiscrepancyKind>)> = vec![
        ("within the line", r(1, G1, None, None, 6), vec![]),
        ("crosses the line", r(2, G1, None, None, 6), vec![AsnOver]),
        ("already over: raised once", r(3, G1, None, None, 1), vec![]),
        (
            "announced pallet",
            r(4, G2, Some("P1"), Some(SSCC), 5),
            vec![],
        ),
        (
            "announced lot, over",
            r(5, G2, Some("P1"), None, 1),
            vec![AsnOver],
        ),
        (
            "other lot",
            r(6, G2, Some("P9"), None, 1),
            vec![AsnUnexpectedLine],
        ),
        (
            "item not on the ASN",
            r(7, G3, None, None, 2),
            vec![AsnUnexpectedLine],
        ),
        (
            "pallet not announced",
            r(8, G1, None, Some("000000000000000000"), 1),
            vec![AsnUnexpectedPallet],
        ),
    ];
    for (name, m, want) in cases {
        let seq = m.seq;
        assert_eq!(push(store, &[m]), acked(seq), "{name}");
        assert_eq!(raised(store, "hh-01", seq), want, "{name}");
    }
    let over = store
        .discrepancies(&DiscrepancyFilter {
            kind: Some(AsnOver),
            ..DiscrepancyFilter::default()
        })
        .unwrap();
    assert_eq!((over[0].expected, over[0].actual), (Some(10), Some(12)));
    assert_eq!(over[0].reference.as_deref(), Some("ASN-1"));
    // A pick naming the ASN is not a receipt: no ASN rule applies.
    push(
        store,
        &[with(pick("hh-01", 9, "DOCK", 1), |m| {
            m.reference = Some("ASN-1".into())
        })],
    );
    assert_eq!(raised(store, "hh-01", 9), vec![]);
}

/// Closing an ASN raises AsnShort per line group received short; a full line raises nothing.
pub fn asn_short_on_close(store: &dyn Store) {
    master(store);
    store
        .put_asn(&asn(
            "ASN-2",
            SITE,
            vec![line(G1, None, 10), line(G3, None, 3)],
            vec![AsnPallet {
                sscc: SSCC.into(),
                lines: vec![line(G2, Some("P1"), 5)],
            }],
        ))
        .unwrap();
    let r = |seq: u64, gtin: &str, lot: Option<&str>, qty: u64| {
        with(receive("hh-01", seq, "DOCK", qty), |m| {
            m.gtin = gtin.into();
            m.lot = lot.map(Into::into);
            m.reference = Some("ASN-2".into());
        })
    };
    push(
        store,
        &[
            r(1, G1, None, 4),
            r(2, G1, Some("X"), 3), // lots of a lot-less line add up
            r(3, G3, None, 3),
            r(4, G2, Some("P1"), 2),
            r(5, G2, Some("P2"), 3), // another lot does not fill P1
        ],
    );
    assert_eq!(
        raised(store, "hh-01", 5),
        vec![DiscrepancyKind::AsnUnexpectedLine]
    );
    let closed = store
        .set_asn_status("ASN-2", DocStatus::Closed)
        .unwrap()
        .unwrap();
    assert_eq!(closed.status, DocStatus::Closed);
    type Short = (Option<String>, Option<String>, Option<i64>, Option<i64>);
    let mut shorts: Vec<Short> = store
        .discrepancies(&DiscrepancyFilter {
            kind: Some(DiscrepancyKind::AsnShort),
            ..DiscrepancyFilter::default()
        })
        .unwrap()
        .into_iter()
        .map(|d| {
            assert_eq!(d.reference.as_deref(), Some("ASN-2"));
            assert_eq!(d.site, SITE);
            assert!(d.movements.is_empty());
            (d.gtin, d.lot, d.expected, d.actual)
        })
        .collect();
    shorts.sort();
    assert_eq!(
        shorts,
        vec![
            (Some(G2.into()), Some("P1".into()), Some(5), Some(2)),
            (Some(G1.into()), None, Some(10), Some(7)),
        ]
    );
    // Cancelling instead of closing raises no shorts.
    store
        .put_asn(&asn("ASN-3", SITE, vec![line(G1, None, 10)], vec![]))
        .unwrap();
    store.set_asn_status("ASN-3", DocStatus::Cancelled).unwrap();
    assert_eq!(
        store
            .discrepancies(&DiscrepancyFilter {
                kind: Some(DiscrepancyKind::AsnShort),
                ..DiscrepancyFilter::default()
            })
            .unwrap()
            .len(),
        2
    );
}

/// References to no known document, and picks against a cancelled pick list.
pub fn unknown_reference_and_cancelled_pick(store: &dyn Store) {
    master(store);
    store.put_pick_list(&pick_list("PL-1", SITE)).unwrap();
    store.put_pick_list(&pick_list("PL-2", SITE)).unwrap();
    push(store, &[receive("hh-01", 1, "A-01", 10)]);
    let p = |seq: u64, reference: &str| {
        with(pick("hh-01", seq, "A-01", 1), |m| {
            m.reference = Some(reference.into())
        })
    };
    use DiscrepancyKind::*;
    type SetStatus<'a> = Option<(&'a str, DocStatus)>;
    let cases: Vec<(&str, SetStatus<'_>, Movement, Vec<DiscrepancyKind>)> = vec![
        ("open list", None, p(2, "PL-1"), vec![]),
        (
            "unknown reference",
            None,
            p(3, "PL-404"),
            vec![UnknownReference],
        ),
        (
            "receipt against an unknown ASN",
            None,
            with(receive("hh-01", 4, "DOCK", 1), |m| {
                m.reference = Some("ASN-404".into())
            }),
            vec![UnknownReference],
        ),
        (
            "closed list",
            Some(("PL-2", DocStatus::Closed)),
            p(5, "PL-2"),
            vec![],
        ),
        (
            "cancelled list",
            Some(("PL-1", DocStatus::Cancelled)),
            p(6, "PL-1"),
            vec![PickOnCancelledList],
        ),
    ];
    for (name, status, m, want) in cases {
        if let Some((id, status)) = status {
            store.set_pick_list_status(id, status).unwrap().unwrap();
        }
        let seq = m.seq;
        assert_eq!(push(store, &[m]), acked(seq), "{name}");
        assert_eq!(raised(store, "hh-01", seq), want, "{name}");
    }
    let d = store
        .discrepancies(&DiscrepancyFilter {
            kind: Some(UnknownReference),
            ..DiscrepancyFilter::default()
        })
        .unwrap();
    assert_eq!(d[0].reference.as_deref(), Some("PL-404"));
}

/// Movements for unknown items and locations are stored and flagged, never rejected.
pub fn unknown_item_and_location(store: &dyn Store) {
    master(store);
    store
        .put_locations(OTHER_SITE, &[location("Z-09")])
        .unwrap();
    use DiscrepancyKind::*;
    let cases: Vec<(&str, Movement, Vec<DiscrepancyKind>)> = vec![
        ("all known", receive("hh-01", 1, "A-01", 5), vec![]),
        (
            "unknown item",
            with(receive("hh-01", 2, "A-01", 1), |m| {
                m.gtin = UNKNOWN_GTIN.into()
            }),
            vec![UnknownItem],
        ),
        (
            "unknown location",
            receive("hh-01", 3, "X-99", 1),
            vec![UnknownLocation],
        ),
        (
            "another site's location",
            receive("hh-01", 4, "Z-09", 1),
            vec![UnknownLocation],
        ),
        (
            "both ends unknown",
            moved("hh-01", 5, "X-98", "X-99", 1),
            vec![UnknownLocation, UnknownLocation, NegativeStock],
        ),
        (
            "item and location unknown",
            with(receive("hh-01", 6, "X-97", 1), |m| {
                m.gtin = UNKNOWN_GTIN.into()
            }),
            vec![UnknownItem, UnknownLocation],
        ),
    ];
    for (name, m, want) in cases {
        let seq = m.seq;
        assert_eq!(push(store, &[m]), acked(seq), "{name}");
        let mut got = raised(store, "hh-01", seq);
        let mut want = want;
        got.sort_by_key(|k| format!("{k:?}"));
        want.sort_by_key(|k| format!("{k:?}"));
        assert_eq!(got, want, "{name}");
        assert!(
            store.movement("hh-01", seq).unwrap().is_some(),
            "{name}: stored"
        );
    }
    let locs: Vec<Option<String>> = store
        .discrepancies(&DiscrepancyFilter {
            kind: Some(UnknownLocation),
            ..DiscrepancyFilter::default()
        })
        .unwrap()
        .into_iter()
        .map(|d| d.location)
        .collect();
    assert!(locs.contains(&Some("X-98".into())) && locs.contains(&Some("X-99".into())));
}

/// Comments append; an adjustment moves stock through an office movement; resolving twice is refused.
pub fn comment_and_resolve(store: &dyn Store) {
    master(store);
    push(
        store,
        &[pick("hh-01", 1, "A-01", 3), receive("hh-01", 2, "DOCK", 5)],
    );
    store
        .push(OTHER_SITE, "hh-09", &[pick("hh-09", 1, "A-01", 1)])
        .unwrap();
    let open = DiscrepancyFilter {
        status: Some(DiscrepancyStatus::Open),
        ..DiscrepancyFilter::default()
    };
    let negative = store
        .discrepancies(&DiscrepancyFilter {
            site: Some(SITE.into()),
            kind: Some(DiscrepancyKind::NegativeStock),
            ..open.clone()
        })
        .unwrap();
    assert_eq!(negative.len(), 1);
    let id = negative[0].id;
    let other = store
        .discrepancies(&DiscrepancyFilter {
            site: Some(OTHER_SITE.into()),
            ..DiscrepancyFilter::default()
        })
        .unwrap();
    let other_ids: Vec<u64> = other.iter().map(|d| d.id).collect();
    assert!(!other_ids.is_empty() && !other_ids.contains(&id));
    assert_eq!(store.discrepancy(id).unwrap().as_ref(), Some(&negative[0]));

    let note = |text: &str| Comment {
        at: minutes(30),
        author: "office".into(),
        text: text.into(),
    };
    store
        .comment_discrepancy(id, &note("checking"))
        .unwrap()
        .unwrap();
    let d = store
        .comment_discrepancy(id, &note("found 3 in B-01"))
        .unwrap()
        .unwrap();
    assert_eq!(d.comments, vec![note("checking"), note("found 3 in B-01")]);
    assert_eq!(d.status, DiscrepancyStatus::Open);

    let adjust = Resolution::Adjust {
        location: "A-01".into(),
        gtin: G1.into(),
        lot: None,
        delta: 3,
        reason: "found the missing units".into(),
        movement: None,
    };
    let resolved = store
        .resolve_discrepancy(id, &adjust, minutes(31))
        .unwrap()
        .unwrap();
    assert_eq!(resolved.status, DiscrepancyStatus::Resolved);
    assert_eq!(resolved.comments.len(), 2, "comments stay");
    let office_ref = MovementRef {
        device_id: OFFICE_DEVICE.into(),
        seq: 1,
    };
    match &resolved.resolution {
        Some(Resolution::Adjust {
            movement, delta, ..
        }) => {
            assert_eq!(movement.as_ref(), Some(&office_ref));
            assert_eq!(*delta, 3);
        }
        other => panic!("resolution {other:?}"),
    }
    assert_eq!(store.discrepancy(id).unwrap(), Some(resolved.clone()));
    assert_eq!(
        store.stock(&site_filter()).unwrap(),
        vec![row("DOCK", G1, None, 5)],
        "A-01 back to zero"
    );
    assert_eq!(store.high_water(OFFICE_DEVICE).unwrap(), 1);
    let m = store.movement(OFFICE_DEVICE, 1).unwrap().unwrap();
    assert_eq!(m.kind, MovementKind::Adjust);
    assert_eq!(
        (m.to_location.as_deref(), m.from_location.as_deref(), m.qty),
        (Some("A-01"), None, 3)
    );
    assert_eq!(m.at, minutes(31));
    let history = store
        .movements(
            &MovementFilter {
                device_id: Some(OFFICE_DEVICE.into()),
                ..MovementFilter::default()
            },
            0,
            10,
        )
        .unwrap();
    assert_eq!(history.movements.len(), 1);
    assert_eq!(history.movements[0].site, SITE);
    assert_eq!(history.movements[0].movement, m);
    let last = store.movements(&MovementFilter::default(), 0, 100).unwrap();
    assert_eq!(
        last.movements.last().map(|s| s.movement.device_id.as_str()),
        Some(OFFICE_DEVICE),
        "the adjustment is the newest movement in commit order"
    );
    assert_eq!(
        store.stock_as_of(&site_filter(), minutes(30)).unwrap(),
        vec![row("A-01", G1, None, -3), row("DOCK", G1, None, 5)],
        "the adjustment counts from its own time"
    );

    refused(
        store.resolve_discrepancy(id, &adjust, minutes(32)),
        "resolving twice",
    );
    refused(
        store.resolve_discrepancy(
            id,
            &Resolution::Accepted {
                reason: "again".into(),
            },
            minutes(32),
        ),
        "accepting a resolved one",
    );
    assert_eq!(
        store.high_water(OFFICE_DEVICE).unwrap(),
        1,
        "no second adjustment"
    );

    // Accepted as is: no stock change. An adjustment removing units from another site.
    let accepted = Resolution::Accepted {
        reason: "known theft".into(),
    };
    let d = store
        .resolve_discrepancy(other_ids[0], &accepted, minutes(33))
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.status, d.resolution),
        (DiscrepancyStatus::Resolved, Some(accepted))
    );
    assert_eq!(store.high_water(OFFICE_DEVICE).unwrap(), 1);
    assert_eq!(
        store
            .discrepancies(&DiscrepancyFilter {
                status: Some(DiscrepancyStatus::Resolved),
                ..DiscrepancyFilter::default()
            })
            .unwrap()
            .len(),
        2
    );
    // Zero is not an adjustment.
    push(store, &[pick("hh-01", 3, "B-01", 1)]);
    let b01 = store.discrepancies(&open).unwrap();
    let b01 = b01
        .iter()
        .find(|d| d.location.as_deref() == Some("B-01"))
        .unwrap();
    let zero = Resolution::Adjust {
        location: "B-01".into(),
        gtin: G1.into(),
        lot: None,
        delta: 0,
        reason: "nothing".into(),
        movement: None,
    };
    assert!(store
        .resolve_discrepancy(b01.id, &zero, minutes(34))
        .is_err());
    assert_eq!(
        store.discrepancy(b01.id).unwrap().unwrap().status,
        DiscrepancyStatus::Open
    );
    let remove = Resolution::Adjust {
        location: "B-01".into(),
        gtin: G1.into(),
        lot: None,
        delta: -2,
        reason: "two were never there".into(),
        movement: None,
    };
    store
        .resolve_discrepancy(b01.id, &remove, minutes(34))
        .unwrap()
        .unwrap();
    let m = store.movement(OFFICE_DEVICE, 2).unwrap().unwrap();
    assert_eq!(
        (m.from_location.as_deref(), m.to_location.as_deref(), m.qty),
        (Some("B-01"), None, 2)
    );

    // Unknown ids.
    assert_eq!(store.discrepancy(9999).unwrap(), None);
    assert_eq!(store.comment_discrepancy(9999, &note("?")).unwrap(), None);
    assert_eq!(
        store
            .resolve_discrepancy(
                9999,
                &Resolution::Accepted { reason: "?".into() },
                minutes(35)
            )
            .unwrap(),
        None
    );
}

/// Closed and cancelled documents cannot be changed; unknown documents answer `None`.
pub fn refused_document_updates(store: &dyn Store) {
    let a = asn("ASN-1", SITE, vec![line(G1, None, 1)], vec![]);
    store.put_asn(&a).unwrap();
    store
        .set_asn_status("ASN-1", DocStatus::Closed)
        .unwrap()
        .unwrap();
    store.put_asn(&asn("ASN-2", SITE, vec![], vec![])).unwrap();
    store
        .set_asn_status("ASN-2", DocStatus::Cancelled)
        .unwrap()
        .unwrap();
    for id in ["ASN-1", "ASN-2"] {
        let before = store.asn(id).unwrap();
        refused(
            store.put_asn(&asn(id, SITE, vec![line(G2, None, 9)], vec![])),
            "replacing a finished ASN",
        );
        for status in [DocStatus::Closed, DocStatus::Cancelled, DocStatus::Open] {
            refused(store.set_asn_status(id, status), "changing a finished ASN");
        }
        assert_eq!(store.asn(id).unwrap(), before, "{id} unchanged");
    }
    let cursor = store.pull(SITE, 0, 100).unwrap().cursor;

    store.put_pick_list(&pick_list("PL-1", SITE)).unwrap();
    store
        .set_pick_list_status("PL-1", DocStatus::Cancelled)
        .unwrap()
        .unwrap();
    store.put_pick_list(&pick_list("PL-2", SITE)).unwrap();
    store
        .set_pick_list_status("PL-2", DocStatus::Closed)
        .unwrap()
        .unwrap();
    for id in ["PL-1", "PL-2"] {
        let before = store.pick_list(id).unwrap();
        refused(
            store.put_pick_list(&PickList {
                device: Some("hh-01".into()),
                ..pick_list(id, SITE)
            }),
            "reassigning a finished pick list",
        );
        for status in [DocStatus::Closed, DocStatus::Cancelled] {
            refused(
                store.set_pick_list_status(id, status),
                "changing a finished pick list",
            );
        }
        assert_eq!(store.pick_list(id).unwrap(), before, "{id} unchanged");
    }
    // Refused writes leave no trace in the feed.
    let after: Vec<Change> = store.pull(SITE, cursor, 100).unwrap().changes;
    assert_eq!(
        after.len(),
        2,
        "only the two pick lists' final states: {after:?}"
    );

    assert_eq!(
        store.set_asn_status("ASN-404", DocStatus::Closed).unwrap(),
        None
    );
    assert_eq!(
        store
            .set_pick_list_status("PL-404", DocStatus::Cancelled)
            .unwrap(),
        None
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Dashboard reads (issue 7): document progress, movements per hour, new discrepancies

/// Every movement naming `reference`, read in pages of `page`, checking each page's cursor.
fn by_reference(store: &dyn Store, reference: &str, page: usize) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let p = store
            .movements_by_reference(reference, after, page)
            .unwrap();
        assert!(p.movements.len() <= page);
        assert!(
            p.movements
                .windows(2)
                .all(|w| w[0].server_seq < w[1].server_seq),
            "commit order"
        );
        out.extend(
            p.movements
                .iter()
                .map(|m| (m.movement.device_id.clone(), m.movement.seq)),
        );
        match p.next {
            Some(next) => {
                assert_eq!(Some(next), p.movements.last().map(|m| m.server_seq));
                after = next;
            }
            None => return out,
        }
    }
}

/// What was received against an ASN: the counters per GTIN and lot, its own movements by reference (paged, in
/// commit order, nothing of other documents), and the progress built from them: lines, unexpected lots, pallets.
pub fn asn_progress(store: &dyn Store) {
    use dockhand_server::store::progress::Fill;
    use dockhand_server::store::ReceivedLot;
    master(store);
    store
        .put_asn(&asn(
            "ASN-P",
            SITE,
            vec![line(G1, None, 10)],
            vec![AsnPallet {
                sscc: SSCC.into(),
                lines: vec![line(G2, Some("P1"), 5)],
            }],
        ))
        .unwrap();
    store
        .put_asn(&asn("ASN-Q", SITE, vec![line(G1, None, 1)], vec![]))
        .unwrap();
    assert_eq!(store.asn_received("ASN-P").unwrap(), vec![]);
    assert_eq!(store.asn_progress("ASN-404").unwrap(), None);
    let r = |seq: u64, reference: &str, gtin: &str, lot: Option<&str>, sscc: Option<&str>, qty| {
        with(receive("hh-01", seq, "DOCK", qty), |m| {
            m.gtin = gtin.into();
            m.lot = lot.map(Into::into);
            m.sscc = sscc.map(Into::into);
            m.reference = Some(reference.into());
        })
    };
    let batch = vec![
        r(1, "ASN-P", G1, Some("B"), None, 4),
        r(2, "ASN-Q", G1, None, None, 1),
        r(3, "ASN-P", G1, None, None, 3),
        r(4, "ASN-P", G2, Some("P1"), Some(SSCC), 5),
        r(5, "ASN-P", G1, Some("A"), None, 2),
        r(6, "ASN-P", G3, None, Some("000000000000000017"), 2),
        // Not a receipt: indexed by its reference, counted by no counter.
        with(pick("hh-01", 7, "DOCK", 1), |m| {
            m.reference = Some("ASN-P".into())
        }),
    ];
    assert_eq!(push(store, &batch), acked(7));
    // A second device's receipt lands later in commit order.
    store
        .push(
            SITE,
            "hh-02",
            &[with(r(1, "ASN-P", G1, None, None, 1), |m| {
                m.device_id = "hh-02".into()
            })],
        )
        .unwrap();
    let lot = |gtin: &str, lot: Option<&str>, qty| ReceivedLot {
        gtin: gtin.into(),
        lot: lot.map(Into::into),
        qty,
    };
    // By GTIN (G3 < G2 < G1 as text), then lot with "no lot" first.
    assert_eq!(
        store.asn_received("ASN-P").unwrap(),
        vec![
            lot(G3, None, 2),
            lot(G2, Some("P1"), 5),
            lot(G1, None, 4),
            lot(G1, Some("A"), 2),
            lot(G1, Some("B"), 4),
        ]
    );
    assert_eq!(store.asn_received("ASN-Q").unwrap(), vec![lot(G1, None, 1)]);

    let own: Vec<(String, u64)> = [1, 3, 4, 5, 6, 7]
        .into_iter()
        .map(|seq| ("hh-01".to_string(), seq))
        .chain([("hh-02".to_string(), 1)])
        .collect();
    for page in [1, 2, 3, 100] {
        assert_eq!(by_reference(store, "ASN-P", page), own, "page size {page}");
    }
    assert_eq!(by_reference(store, "ASN-Q", 10), vec![("hh-01".into(), 2)]);
    assert_eq!(
        by_reference(store, "ASN", 10),
        vec![],
        "a prefix of an id is another id"
    );
    let last = store.movements_by_reference("ASN-P", 0, 100).unwrap();
    let tail = store
        .movements_by_reference("ASN-P", last.movements[4].server_seq, 100)
        .unwrap();
    assert_eq!(tail.movements, last.movements[5..].to_vec());
    assert_eq!(tail.next, None);

    let p = store.asn_progress("ASN-P").unwrap().unwrap();
    let lines: Vec<(&str, Option<&str>, u64, u64, Fill)> = p
        .lines
        .iter()
        .map(|l| {
            (
                l.gtin.as_str(),
                l.lot.as_deref(),
                l.expected,
                l.received,
                l.fill,
            )
        })
        .collect();
    // G1 without a lot on the ASN counts every lot of G1.
    assert_eq!(
        lines,
        vec![
            (G1, None, 10, 10, Fill::Complete),
            (G2, Some("P1"), 5, 5, Fill::Complete),
        ]
    );
    assert_eq!(p.unexpected, vec![lot(G3, None, 2)]);
    let pallets: Vec<(&str, bool, u64, u64)> = p
        .pallets
        .iter()
        .map(|p| (p.sscc.as_str(), p.announced, p.receipts, p.units))
        .collect();
    assert_eq!(
        pallets,
        vec![(SSCC, true, 1, 5), ("000000000000000017", false, 1, 2)]
    );
    // Closing marks what is missing short, as the close's discrepancies say.
    let q = store.asn_progress("ASN-Q").unwrap().unwrap();
    assert_eq!(q.lines[0].fill, Fill::Complete);
    store
        .put_asn(&asn("ASN-R", SITE, vec![line(G2, None, 3)], vec![]))
        .unwrap();
    store.set_asn_status("ASN-R", DocStatus::Closed).unwrap();
    let closed = store.asn_progress("ASN-R").unwrap().unwrap();
    assert_eq!(
        (closed.lines[0].received, closed.lines[0].fill),
        (0, Fill::Short)
    );
}

/// A pick list's lines against the picks and shorts naming it, from two devices, with another list's picks and
/// a movement of the same item without a reference left out.
pub fn pick_list_progress(store: &dyn Store) {
    use dockhand_server::store::progress::Fill;
    master(store);
    let mut list = pick_list("PL-P", SITE);
    list.lines.push(PickLine {
        line: 2,
        location: "B-01".into(),
        gtin: G2.into(),
        lot: Some("L7".into()),
        qty: 3,
    });
    store.put_pick_list(&list).unwrap();
    store.put_pick_list(&pick_list("PL-Q", SITE)).unwrap();
    assert_eq!(store.pick_list_progress("PL-404").unwrap(), None);
    let fresh = store.pick_list_progress("PL-P").unwrap().unwrap();
    assert_eq!(
        (fresh.requested(), fresh.picked(), fresh.shorts()),
        (5, 0, 0)
    );

    let naming = |m: Movement, list: &str| with(m, |m| m.reference = Some(list.into()));
    let g2 = |m: Movement| {
        with(m, |m| {
            m.gtin = G2.into();
            m.lot = Some("L7".into());
        })
    };
    push(
        store,
        &[
            receive("hh-01", 1, "A-01", 10),
            naming(pick("hh-01", 2, "A-01", 1), "PL-P"),
            naming(pick("hh-01", 3, "A-01", 1), "PL-Q"),
            pick("hh-01", 4, "A-01", 1),
        ],
    );
    store
        .push(
            SITE,
            "hh-02",
            &[
                naming(pick("hh-02", 1, "A-01", 1), "PL-P"),
                naming(g2(pick("hh-02", 2, "B-01", 1)), "PL-P"),
                // DH:SHORT on line 2: a count of 0 at its location naming the list.
                naming(g2(count("hh-02", 3, "B-01", 0)), "PL-P"),
            ],
        )
        .unwrap();
    let p = store.pick_list_progress("PL-P").unwrap().unwrap();
    let lines: Vec<(u32, u64, u64, bool, Fill, Vec<String>)> = p
        .lines
        .iter()
        .map(|l| {
            (
                l.line.line,
                l.line.qty,
                l.picked,
                l.shorted,
                l.fill,
                l.devices.clone(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (
                1,
                2,
                2,
                false,
                Fill::Complete,
                vec!["hh-01".into(), "hh-02".into()]
            ),
            (2, 3, 1, true, Fill::Short, vec!["hh-02".into()]),
        ]
    );
    assert_eq!((p.requested(), p.picked(), p.shorts()), (5, 3, 1));
    assert!(p.other.is_empty(), "{:?}", p.other);
    assert_eq!(p.lines[1].last_at, Some(minutes(3)));
    let q = store.pick_list_progress("PL-Q").unwrap().unwrap();
    assert_eq!((q.picked(), q.lines[0].fill), (1, Fill::Outstanding));
}

/// Movements per site and hour of device time within a window, the walk bounded by `max_scan` and by the time
/// movements were received. Uses device times around the real clock: the walk stops at movements received before
/// the window, and every movement here is received now.
pub fn movements_per_hour(store: &dyn Store) {
    use dockhand_server::store::hour_of;
    master(store);
    let now = OffsetDateTime::now_utc();
    let this_hour = hour_of(now);
    let since = this_hour - Duration::hours(3);
    let until = this_hour + Duration::hours(1);
    let at = |m: Movement, t: OffsetDateTime| with(m, |m| m.at = t);
    push(
        store,
        &[
            at(receive("hh-01", 1, "DOCK", 5), since - Duration::minutes(1)),
            at(receive("hh-01", 2, "DOCK", 5), since),
            at(pick("hh-01", 3, "DOCK", 1), since + Duration::minutes(59)),
            at(count("hh-01", 4, "DOCK", 9), since + Duration::hours(2)),
            at(receive("hh-01", 5, "DOCK", 5), this_hour),
            at(receive("hh-01", 6, "DOCK", 5), until),
        ],
    );
    store
        .push(
            OTHER_SITE,
            "hh-09",
            &[at(
                receive("hh-09", 1, "DOCK", 1),
                since + Duration::minutes(5),
            )],
        )
        .unwrap();
    let counts = store.movements_per_hour(since, until, 1000).unwrap();
    let got: Vec<(&str, OffsetDateTime, u64)> = counts
        .hours
        .iter()
        .map(|h| (h.site.as_str(), h.hour, h.count))
        .collect();
    assert_eq!(
        got,
        vec![
            (SITE, since, 2),
            (SITE, since + Duration::hours(2), 1),
            (SITE, this_hour, 1),
            (OTHER_SITE, since, 1),
        ]
    );
    assert!(counts.complete);
    assert_eq!(
        counts.scanned, 7,
        "everything was received inside the window"
    );

    // Bounded by max_scan: the newest movements only, and said so.
    let few = store.movements_per_hour(since, until, 2).unwrap();
    assert_eq!((few.scanned, few.complete), (2, false));
    assert_eq!(
        few.hours.iter().map(|h| h.count).sum::<u64>(),
        1,
        "the newest two: hh-09's receipt in the window, hh-01's seq 6 after it"
    );
    // Bounded by arrival: a window that starts after every movement arrived stops at the first one it reads.
    let later = now + Duration::days(1);
    let none = store
        .movements_per_hour(later, later + Duration::hours(1), 1000)
        .unwrap();
    assert_eq!(
        (none.hours.len(), none.scanned, none.complete),
        (0, 0, true)
    );
    let empty = store.movements_per_hour(since, since, 1000).unwrap();
    assert!(empty.hours.is_empty() && empty.complete);
}

/// New discrepancies after an id, by id, limited: what the dashboard's live feed polls.
pub fn discrepancies_after(store: &dyn Store) {
    master(store);
    assert_eq!(store.discrepancies_after(0, 10).unwrap(), vec![]);
    push(
        store,
        &[
            pick("hh-01", 1, "A-01", 1),
            pick("hh-01", 2, "B-01", 1),
            receive("hh-01", 3, "NOWHERE", 1),
        ],
    );
    store
        .push(OTHER_SITE, "hh-09", &[pick("hh-09", 1, "A-01", 1)])
        .unwrap();
    let all = store.discrepancies(&DiscrepancyFilter::default()).unwrap();
    assert!(all.len() >= 4, "{all:?}");
    let ids: Vec<u64> = all.iter().map(|d| d.id).collect();
    assert_eq!(store.discrepancies_after(0, 100).unwrap(), all);
    for (i, id) in ids.iter().enumerate() {
        let after = store.discrepancies_after(*id, 100).unwrap();
        assert_eq!(after, all[i + 1..].to_vec(), "after {id}");
        let limited = store.discrepancies_after(*id, 1).unwrap();
        assert_eq!(
            limited,
            all[i + 1..].iter().take(1).cloned().collect::<Vec<_>>()
        );
    }
    assert_eq!(store.discrepancies_after(u64::MAX, 10).unwrap(), vec![]);
    // A resolution changes the record, not its place.
    let first = ids[0];
    store
        .comment_discrepancy(
            first,
            &Comment {
                at: minutes(9),
                author: "office".into(),
                text: "seen".into(),
            },
        )
        .unwrap();
    assert_eq!(
        store.discrepancies_after(0, 1).unwrap()[0].comments.len(),
        1
    );
}

/// Stock rows carry the expiry (GS1 AI 17) of the goods: the first one a movement into the row named, never
/// overwritten by a later different date or cleared by a movement without one, kept when the row empties and
/// fills again, and shown by the history view (`stock_as_of`) too. Rows nobody named an expiry for have none.
/// (PostgreSQL fills `stock.expiry` at ingest from the change that follows migration 4.)
pub fn stock_expiry(store: &dyn Store) {
    let exp = |m: Movement, e: &str| with(m, |m| m.expiry = Some(e.into()));
    let lot = |m: Movement, l: &str| with(m, |m| m.lot = Some(l.into()));
    push(
        store,
        &[
            exp(lot(receive("hh-01", 1, "DOCK", 5), "L1"), "2027-01-31"),
            // A later different date into the same row does not overwrite it.
            exp(lot(receive("hh-01", 2, "DOCK", 1), "L1"), "2028-06-30"),
            // Put away: the expiry follows into the new row with the movement.
            exp(
                lot(moved("hh-01", 3, "DOCK", "A-01", 2), "L1"),
                "2027-01-31",
            ),
            // No expiry: the row has none.
            lot(receive("hh-01", 4, "DOCK", 3), "L2"),
            // Emptied (the pick carries no expiry) and refilled with another date: the first stays.
            lot(pick("hh-01", 5, "A-01", 2), "L1"),
            exp(lot(receive("hh-01", 6, "A-01", 4), "L1"), "2029-12-31"),
            // A row first filled without an expiry takes the first one named later.
            exp(lot(receive("hh-01", 7, "DOCK", 1), "L2"), "2027-03-01"),
        ],
    );
    let with_expiry = |mut r: StockRow, e: Option<&str>| {
        r.expiry = e.map(Into::into);
        r
    };
    let want = vec![
        with_expiry(row("A-01", G1, Some("L1"), 4), Some("2027-01-31")),
        with_expiry(row("DOCK", G1, Some("L1"), 4), Some("2027-01-31")),
        with_expiry(row("DOCK", G1, Some("L2"), 4), Some("2027-03-01")),
    ];
    assert_eq!(store.stock(&site_filter()).unwrap(), want, "stock");
    let page = store
        .stock_page(&StockPageQuery {
            filter: site_filter(),
            limit: 10,
            ..StockPageQuery::default()
        })
        .unwrap();
    assert_eq!(page.rows, want, "stock_page");
    // As of before the refill and the late expiry: the rows as they were, with the expiry known now.
    let before = store.stock_as_of(&site_filter(), minutes(4)).unwrap();
    assert_eq!(
        before,
        vec![
            with_expiry(row("A-01", G1, Some("L1"), 2), Some("2027-01-31")),
            with_expiry(row("DOCK", G1, Some("L1"), 4), Some("2027-01-31")),
            with_expiry(row("DOCK", G1, Some("L2"), 3), Some("2027-03-01")),
        ],
        "stock_as_of"
    );
    let json = serde_json::to_value(&want[0]).unwrap();
    assert_eq!(json["expiry"], "2027-01-31");
    let none = serde_json::to_value(row("X", G1, None, 1)).unwrap();
    assert!(
        none["expiry"].is_null(),
        "unknown expiry is null on the wire: {none}"
    );
}

/// Paged stock ([`Store::stock_page`]): every sort in both directions, with and without filters, paged forward
/// to the end and back again, equals the full, sorted [`Store::stock`] answer; zero rows never appear.
pub fn stock_pages(store: &dyn Store) {
    // 3 locations × 2 items × lots (none, L1, L2) with varied quantities and expiries, two sites, one zero row.
    let mut batch = Vec::new();
    let mut seq = 0;
    for (l, location) in ["A-01", "A-02", "B-01"].into_iter().enumerate() {
        for (g, gtin) in [G1, G2].into_iter().enumerate() {
            for (k, lot) in [None, Some("L1"), Some("L2")].into_iter().enumerate() {
                seq += 1;
                let qty = ((l * 7 + g * 5 + k * 3) % 6 + 1) as u64;
                let expiry = match (l + g + k) % 3 {
                    0 => None,
                    1 => Some("2027-01-31"),
                    _ => Some(if k == 2 { "2026-12-01" } else { "2028-02-29" }),
                };
                batch.push(with(receive("hh-01", seq, location, qty), |m| {
                    m.gtin = gtin.into();
                    m.lot = lot.map(Into::into);
                    m.expiry = expiry.map(Into::into);
                }));
            }
        }
    }
    seq += 1;
    // A lot with an expiry: sled keeps the emptied row for its expiry, which must not show.
    let emptied = batch[1].clone();
    batch.push(with(pick("hh-01", seq, "A-01", emptied.qty), |m| {
        m.lot = emptied.lot.clone();
        m.gtin = emptied.gtin.clone();
    }));
    push(store, &batch);
    store
        .push(OTHER_SITE, "hh-09", &[receive("hh-09", 1, "A-01", 3)])
        .unwrap();

    let filters = [
        StockFilter::default(),
        site_filter(),
        StockFilter {
            site: Some(SITE.into()),
            location: Some("A-02".into()),
            ..StockFilter::default()
        },
        StockFilter {
            gtin: Some(G2.into()),
            ..StockFilter::default()
        },
        StockFilter {
            location: Some("A-01".into()),
            lot: Some("L1".into()),
            ..StockFilter::default()
        },
        StockFilter {
            site: Some("NOPE".into()),
            ..StockFilter::default()
        },
    ];
    let sorts = [
        StockSort::Location,
        StockSort::Gtin,
        StockSort::Lot,
        StockSort::Qty,
        StockSort::Expiry,
    ];
    for filter in &filters {
        let all = store.stock(filter).unwrap();
        assert!(all.iter().all(|r| r.qty != 0));
        for sort in sorts {
            for descending in [false, true] {
                let what = format!("{filter:?} {sort:?} desc={descending}");
                let mut want = all.clone();
                want.sort_by(|a, b| sort.compare(a, b));
                if descending {
                    want.reverse();
                }
                for limit in [1, 4, 100] {
                    let mut query = StockPageQuery {
                        filter: filter.clone(),
                        sort,
                        descending,
                        start: StockPageStart::First,
                        limit,
                    };
                    // Forward to the end.
                    let mut pages: Vec<Vec<StockRow>> = Vec::new();
                    loop {
                        let page = store.stock_page(&query).unwrap();
                        assert!(page.rows.len() <= limit, "{what}: page too long");
                        let Some(last) = page.rows.last().cloned() else {
                            assert!(!page.more, "{what}: empty page with more");
                            break;
                        };
                        pages.push(page.rows);
                        if !page.more {
                            break;
                        }
                        query.start = StockPageStart::After(last);
                    }
                    let forward: Vec<StockRow> = pages.concat();
                    assert_eq!(forward, want, "{what} limit {limit}: forward");
                    // Back from the last page: each `Before` page is the previous forward page.
                    for i in (1..pages.len()).rev() {
                        query.start = StockPageStart::Before(pages[i][0].clone());
                        let page = store.stock_page(&query).unwrap();
                        assert_eq!(
                            page.rows,
                            pages[i - 1],
                            "{what} limit {limit}: back to page {i}"
                        );
                        assert_eq!(
                            page.more,
                            i > 1,
                            "{what} limit {limit}: more before page {i}"
                        );
                    }
                }
            }
        }
    }
}

/// `push_reporting_mark` answers the outcome `push` would and the device's mark as the batch found it, which
/// the push handler's metrics count resends by. Cases run in order on one store.
pub fn push_reports_the_mark_it_met(store: &dyn Store) {
    let batch = |seqs: std::ops::RangeInclusive<u64>| -> Vec<Movement> {
        seqs.map(|s| receive("hh-01", s, "DOCK", 1)).collect()
    };
    let cases: Vec<(&str, Vec<Movement>, PushOutcome, u64)> = vec![
        ("first batch", batch(1..=3), acked(3), 0),
        ("replayed prefix and new suffix", batch(2..=5), acked(5), 3),
        ("pure replay", batch(4..=5), acked(5), 5),
        ("gap", batch(7..=8), PushOutcome::Gap { expected_seq: 6 }, 5),
        (
            "conflict",
            vec![with(receive("hh-01", 5, "DOCK", 1), |m| m.qty = 2)],
            PushOutcome::Conflict { seq: 5 },
            5,
        ),
        ("after the refusals", batch(6..=6), acked(6), 5),
    ];
    for (name, b, outcome, high_water_before) in cases {
        assert_eq!(
            store.push_reporting_mark(SITE, "hh-01", &b).unwrap(),
            Pushed {
                outcome,
                high_water_before
            },
            "{name}"
        );
    }
    assert_eq!(store.movement_count().unwrap(), 6);
    assert_eq!(all_stock(store), vec![row("DOCK", G1, None, 6)]);
}

/// Refused-scan counters: per (site, hour, device, operator, reason) the largest running total sent wins, so
/// resent and late reports change nothing; reads are per site and hour range, in key order.
pub fn scan_stats_keep_the_largest_total(store: &dyn Store) {
    use dockhand_protocol::sync::ScanStat;
    use dockhand_server::store::SiteScanStat;
    let h6 = datetime!(2026-11-27 06:00:00 UTC);
    let stat = |hour: OffsetDateTime, op: Option<&str>, reason: &str, count| ScanStat {
        hour,
        operator: op.map(str::to_string),
        reason: reason.to_string(),
        count,
    };
    let h7 = h6 + Duration::HOUR;
    let h8 = h7 + Duration::HOUR;
    store
        .put_scan_stats(
            SITE,
            "hh-02",
            &[
                stat(h6, Some("bo"), "over_pick", 2),
                stat(h7, None, "undecodable", 1),
            ],
        )
        .unwrap();
    store
        .put_scan_stats(
            SITE,
            "hh-01",
            &[
                stat(h6, Some("anna"), "wrong_item", 3),
                stat(h6, Some("anna"), "over_pick", 1),
                stat(h6, None, "refused", 4),
                stat(h8, Some("anna"), "wrong_item", 9),
            ],
        )
        .unwrap();
    // A stale resend (smaller totals), a later total, and the same key twice in one request.
    store
        .put_scan_stats(
            SITE,
            "hh-01",
            &[
                stat(h6, Some("anna"), "wrong_item", 1),
                stat(h6, Some("anna"), "over_pick", 5),
                stat(h6, None, "refused", 6),
                stat(h6, None, "refused", 5),
            ],
        )
        .unwrap();
    // Another site's counters never show.
    store
        .put_scan_stats("WH2", "hh-09", &[stat(h6, Some("anna"), "wrong_item", 50)])
        .unwrap();
    let got = |since, until| -> Vec<(String, OffsetDateTime, Option<String>, String, u64)> {
        store
            .scan_stats(SITE, since, until)
            .unwrap()
            .into_iter()
            .map(|SiteScanStat { device_id, stat: s }| {
                (device_id, s.hour, s.operator, s.reason, s.count)
            })
            .collect()
    };
    let r = |d: &str, h, op: Option<&str>, reason: &str, n| {
        (
            d.to_string(),
            h,
            op.map(str::to_string),
            reason.to_string(),
            n,
        )
    };
    assert_eq!(
        got(h6, h8),
        vec![
            r("hh-01", h6, None, "refused", 6),
            r("hh-01", h6, Some("anna"), "over_pick", 5),
            r("hh-01", h6, Some("anna"), "wrong_item", 3),
            r("hh-02", h6, Some("bo"), "over_pick", 2),
            r("hh-02", h7, None, "undecodable", 1),
        ]
    );
    assert_eq!(
        got(h8, h8 + Duration::HOUR),
        vec![r("hh-01", h8, Some("anna"), "wrong_item", 9)]
    );
    assert_eq!(got(h7, h7), vec![], "an empty range");
    assert_eq!(got(h8, h6), vec![], "a reversed range");
    assert_eq!(store.scan_stats("WH3", h6, h8).unwrap(), vec![]);
}

// ---------------------------------------------------------------------------------------------------------------
// ASN imports

/// `create_asns` stores a batch in one transaction: new ASNs are created and fed to devices in batch order, an
/// identical stored one is left alone, and one conflict (other content, a closed ASN, a status other than open,
/// an id twice with different content) refuses the whole batch with nothing of it stored.
pub fn create_asns_all_or_none(store: &dyn Store) {
    let a1 = asn("IMP-1", SITE, vec![line(G1, Some("L1"), 5)], vec![]);
    let a2 = asn(
        "IMP-2",
        SITE,
        vec![],
        vec![AsnPallet {
            sscc: SSCC.into(),
            lines: vec![line(G2, None, 4), line(G1, None, 1)],
        }],
    );
    let a3 = asn("IMP-3", OTHER_SITE, vec![line(G3, None, 9)], vec![]);
    assert_eq!(store.create_asns(&[]).unwrap(), 0);
    assert_eq!(store.create_asns(&[a1.clone(), a2.clone()]).unwrap(), 2);
    assert_eq!(store.asn("IMP-1").unwrap(), Some(a1.clone()));
    assert_eq!(store.asn("IMP-2").unwrap(), Some(a2.clone()));
    let (cursor, feed) = pull_all(store, SITE, 0);
    assert_eq!(feed, vec![Change::Asn(a1.clone()), Change::Asn(a2.clone())]);

    // Sent again with one more: only the new one is created, and only it is fed again.
    assert_eq!(
        store
            .create_asns(&[a1.clone(), a2.clone(), a3.clone()])
            .unwrap(),
        1
    );
    assert_eq!(pull_all(store, SITE, cursor).1, vec![]);
    assert_eq!(
        pull_all(store, OTHER_SITE, 0).1,
        vec![Change::Asn(a3.clone())]
    );

    let before: Vec<Vec<Asn>> = [SITE, OTHER_SITE]
        .iter()
        .map(|s| store.asns(s, None).unwrap())
        .collect();
    let new = asn("IMP-4", SITE, vec![line(G1, None, 1)], vec![]);
    let changed = Asn {
        supplier: Some("Other".into()),
        ..a2.clone()
    };
    store.set_asn_status("IMP-3", DocStatus::Closed).unwrap();
    let closed_again = a3.clone();
    let not_open = Asn {
        status: DocStatus::Cancelled,
        ..asn("IMP-5", SITE, vec![line(G1, None, 1)], vec![])
    };
    let twice = Asn {
        supplier: Some("Twice".into()),
        ..new.clone()
    };
    let refused: [(&str, Vec<Asn>); 4] = [
        ("other content", vec![new.clone(), changed]),
        ("a closed ASN", vec![new.clone(), closed_again]),
        ("not open", vec![new.clone(), not_open]),
        ("an id twice", vec![new.clone(), twice]),
    ];
    for (what, batch) in refused {
        match store.create_asns(&batch) {
            Err(StoreError::Refused(message)) => assert!(!message.is_empty(), "{what}"),
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(store.asn("IMP-4").unwrap(), None, "{what}: half a batch");
    }
    let mut after: Vec<Vec<Asn>> = [SITE, OTHER_SITE]
        .iter()
        .map(|s| store.asns(s, None).unwrap())
        .collect();
    after[1][0].status = DocStatus::Open;
    assert_eq!(after, before, "nothing of a refused batch is stored");
    assert_eq!(pull_all(store, SITE, cursor).1, vec![]);
}

/// Reorder rules (issue 9): stored per (site, item), replaced by a second put, listed per site or all, by site then
/// GTIN.
pub fn reorder_rules(store: &dyn Store) {
    use dockhand_server::store::ReorderRule;
    let rule =
        |site: &str, gtin: &str, point: u64, qty: Option<u64>, max: Option<u64>| ReorderRule {
            site: site.into(),
            gtin: gtin.into(),
            reorder_point: point,
            reorder_qty: qty,
            max,
        };
    assert!(store.reorder_rules(None).unwrap().is_empty());
    let rules = [
        rule("WH2", "09506000134352", 5, Some(10), None),
        rule("WH1", "09506000134352", 7, None, Some(40)),
        rule("WH1", "05901234123457", 1, Some(3), None),
    ];
    for r in &rules {
        store.put_reorder_rule(r).unwrap();
    }
    let replaced = rule("WH1", "09506000134352", 9, Some(12), None);
    store.put_reorder_rule(&replaced).unwrap();
    let want_wh1 = vec![rules[2].clone(), replaced.clone()];
    assert_eq!(store.reorder_rules(Some("WH1")).unwrap(), want_wh1);
    let mut want_all = want_wh1;
    want_all.push(rules[0].clone());
    assert_eq!(store.reorder_rules(None).unwrap(), want_all);
    assert!(store.reorder_rules(Some("WH")).unwrap().is_empty());
}
