//! The sled store against a naive model (proptest), and durability across reopen.
//!
//! The model is a `BTreeMap` of applied movements; expected outcomes, high-water marks and stock are derived
//! from it. Conservation (DESIGN §3.6): stock always equals the sum of the effects of applied movements.

use std::collections::BTreeMap;
use std::path::Path;

use dockhand_protocol::sync::{Movement, MovementKind, MovementSource};
use dockhand_server::{PushOutcome, SledStore, StockFilter, Store};
use proptest::prelude::*;

const SITE: &str = "WH1";
const DEVICES: [&str; 2] = ["hh-01", "hh-02"];
const LOCATIONS: [&str; 3] = ["A-01", "B-02", "DOCK"];

/// A movement whose content is a function of `(device, seq, variant)`: the same variant replays equal,
/// another variant usually conflicts.
fn movement(device: &str, seq: u64, variant: u8) -> Movement {
    let v = u64::from(variant);
    let pick = (seq + v) % LOCATIONS.len() as u64;
    let loc = |i: u64| Some(LOCATIONS[(i % LOCATIONS.len() as u64) as usize].to_string());
    let (kind, from, to) = match (seq + 2 * v) % 5 {
        0 => (MovementKind::Receive, None, loc(pick)),
        1 => (MovementKind::Move, loc(pick), loc(pick + 1)),
        2 => (MovementKind::Pick, loc(pick), None),
        3 => (MovementKind::Count, None, None),
        _ => (MovementKind::Adjust, None, loc(pick + 2)),
    };
    Movement {
        device_id: device.into(),
        seq,
        at: time::macros::datetime!(2026-11-26 10:00:00 UTC),
        kind,
        gtin: if matches!(v % 2, 0) {
            "09506000134352".into()
        } else {
            "05901234123457".into()
        },
        lot: matches!(seq % 3, 0).then(|| "L1".to_string()),
        expiry: None,
        serials: vec![],
        qty: 1 + (seq * 7 + v) % 5,
        from_location: from,
        to_location: to,
        sscc: None,
        reference: None,
        operator: None,
        source: MovementSource::Manual,
    }
}

#[derive(Default)]
struct Model {
    applied: BTreeMap<(String, u64), Movement>,
}

impl Model {
    fn hw(&self, device: &str) -> u64 {
        self.applied
            .keys()
            .filter(|(d, _)| d == device)
            .map(|(_, s)| *s)
            .max()
            .unwrap_or(0)
    }

    fn push(&mut self, device: &str, batch: &[Movement]) -> PushOutcome {
        let hw = self.hw(device);
        if let Some(first) = batch.first() {
            if first.seq > hw + 1 {
                return PushOutcome::Gap {
                    expected_seq: hw + 1,
                };
            }
        }
        for m in batch.iter().filter(|m| m.seq <= hw) {
            if self.applied[&(device.to_string(), m.seq)] != *m {
                return PushOutcome::Conflict { seq: m.seq };
            }
        }
        for m in batch.iter().filter(|m| m.seq > hw) {
            self.applied.insert((device.to_string(), m.seq), m.clone());
        }
        PushOutcome::Acked {
            acked_through: self.hw(device),
        }
    }

    /// Sum of effects per (location, gtin, lot), zero rows dropped.
    fn stock(&self) -> BTreeMap<(String, String, Option<String>), i64> {
        let mut out = BTreeMap::new();
        for m in self.applied.values() {
            for e in m.effects() {
                *out.entry((e.location.to_string(), m.gtin.clone(), m.lot.clone()))
                    .or_insert(0) += e.delta;
            }
        }
        out.retain(|_, q| *q != 0);
        out
    }
}

fn store_stock(store: &dyn Store) -> BTreeMap<(String, String, Option<String>), i64> {
    let rows = store.stock(&StockFilter::default()).unwrap();
    let mut sorted = rows.clone();
    sorted.sort_by(|a, b| {
        (&a.site, &a.location, &a.gtin, &a.lot).cmp(&(&b.site, &b.location, &b.gtin, &b.lot))
    });
    assert_eq!(rows, sorted, "rows come sorted");
    rows.into_iter()
        .map(|r| ((r.location, r.gtin, r.lot), r.qty))
        .collect()
}

/// One push: device index, start relative to the model's high-water (-3..=+2), length, content variant.
fn op() -> impl Strategy<Value = (usize, i64, u64, u8)> {
    (
        0..DEVICES.len(),
        -3i64..=2,
        0u64..5,
        prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..25)) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("sled"), 4 << 20).unwrap();
        let mut model = Model::default();
        for (d, offset, len, variant) in ops {
            let device = DEVICES[d];
            let start = (model.hw(device) as i64 + 1 + offset).max(1) as u64;
            let batch: Vec<Movement> = (start..start + len).map(|s| movement(device, s, variant)).collect();
            let want = model.push(device, &batch);
            let got = store.push(SITE, device, &batch).unwrap();
            prop_assert_eq!(got, want);
            for device in DEVICES {
                prop_assert_eq!(store.high_water(device).unwrap(), model.hw(device));
            }
            prop_assert_eq!(store_stock(&store), model.stock());
            prop_assert_eq!(store.movement_count().unwrap(), model.applied.len() as u64);
        }
    }
}

fn open(dir: &Path) -> SledStore {
    SledStore::open(&dir.join("sled"), 4 << 20).unwrap()
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let batch: Vec<Movement> = (1..=4).map(|s| movement("hh-01", s, 0)).collect();
    let mut model = Model::default();
    model.push("hh-01", &batch);
    {
        let store = open(dir.path());
        assert_eq!(
            store.push(SITE, "hh-01", &batch).unwrap(),
            PushOutcome::Acked { acked_through: 4 }
        );
    }
    let store = open(dir.path());
    assert_eq!(store.high_water("hh-01").unwrap(), 4);
    assert_eq!(
        store.movement("hh-01", 3).unwrap(),
        Some(movement("hh-01", 3, 0))
    );
    assert_eq!(store_stock(&store), model.stock());
    // A replay after reopen is still recognised.
    assert_eq!(
        store.push(SITE, "hh-01", &batch).unwrap(),
        PushOutcome::Acked { acked_through: 4 }
    );
}

#[test]
fn store_rejects_batches_it_cannot_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut gap = vec![movement("hh-01", 1, 0), movement("hh-01", 3, 0)];
    assert!(store.push(SITE, "hh-01", &gap).is_err(), "non-contiguous");
    gap[1].seq = 2;
    assert!(store.push(SITE, "hh-02", &gap).is_err(), "wrong device");
    let mut nul = movement("hh-01", 1, 0);
    nul.lot = Some("a\0b".into());
    assert!(
        store.push(SITE, "hh-01", &[nul]).is_err(),
        "NUL in a key segment"
    );
    assert_eq!(store.movement_count().unwrap(), 0);
}
