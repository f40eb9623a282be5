//! The PostgreSQL store on a real, throw-away PostgreSQL cluster (started by `pg/mod.rs`; PostgreSQL missing is a
//! failure that says how to install it).
//!
//! - the shared conformance suite (`conformance/mod.rs`), one test per case, each on a fresh database;
//! - several server nodes on one database: the same batch pushed by two nodes at the same moment, many devices
//!   on one stock key, two nodes migrating a fresh database together;
//! - reopening a database, and recovering from connections PostgreSQL closed under the pool.

mod conformance;
mod pg;

use std::sync::{Arc, Barrier};

use dockhand_protocol::sync::{Movement, MovementKind, MovementSource};
use dockhand_server::store::{DiscrepancyFilter, DiscrepancyKind};
use dockhand_server::{PgStore, PushOutcome, StockFilter, Store};
use time::macros::datetime;

/// A store on a fresh database; the database's cluster lives as long as it.
struct PgFixture {
    store: PgStore,
    _db: pg::TestDb,
}

impl conformance::Fixture for PgFixture {
    fn store(&self) -> &dyn Store {
        &self.store
    }
}

fn fresh_store() -> PgFixture {
    let db = pg::database();
    let store = PgStore::open(&db.url(), 4).expect("open the PostgreSQL store");
    PgFixture { store, _db: db }
}

conformance::conformance_tests!(fresh_store);

fn mv(
    device: &str,
    seq: u64,
    kind: MovementKind,
    from: Option<&str>,
    to: Option<&str>,
) -> Movement {
    Movement {
        device_id: device.into(),
        seq,
        at: datetime!(2026-11-26 10:00:00 UTC) + time::Duration::seconds(seq as i64),
        kind,
        gtin: "09506000134352".into(),
        lot: Some("L1".into()),
        expiry: None,
        serials: vec![],
        qty: 2,
        from_location: from.map(Into::into),
        to_location: to.map(Into::into),
        sscc: None,
        reference: None,
        operator: None,
        source: MovementSource::Manual,
    }
}

/// `n` receipts into DOCK-1 followed by a pick from A-01 that takes it negative, seqs `first..`.
fn batch(device: &str, first: u64, n: u64) -> Vec<Movement> {
    (first..first + n)
        .map(|seq| {
            if seq % 10 == 0 {
                mv(device, seq, MovementKind::Pick, Some("A-01"), None)
            } else {
                mv(device, seq, MovementKind::Receive, None, Some("DOCK-1"))
            }
        })
        .collect()
}

fn total(store: &dyn Store) -> i64 {
    store
        .stock(&StockFilter::default())
        .unwrap()
        .iter()
        .map(|r| r.qty)
        .sum()
}

/// Issue 6 scope 5: two nodes receive the same batch at the same moment. The device's high-water row lock lets
/// one apply it; the other waits, then finds it already stored and acknowledges it as a replay.
#[test]
fn two_nodes_pushing_the_same_batch_at_once_apply_it_once() {
    let db = pg::database();
    let node_a = Arc::new(PgStore::open(&db.url(), 2).unwrap());
    let node_b = Arc::new(PgStore::open(&db.cluster.tcp_url(&db.name), 2).unwrap());
    let mut next = 1;
    for round in 0..20 {
        let movements = batch("hh-01", next, 50);
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = [node_a.clone(), node_b.clone()]
            .into_iter()
            .map(|node| {
                let (movements, barrier) = (movements.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    node.push("WH1", "hh-01", &movements).unwrap()
                })
            })
            .collect();
        let outcomes: Vec<PushOutcome> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        next += 50;
        let acked = PushOutcome::Acked {
            acked_through: next - 1,
        };
        assert_eq!(outcomes, vec![acked, acked], "round {round}");
        assert_eq!(node_a.movement_count().unwrap(), next - 1, "round {round}");
    }
    // 20 rounds × (45 receipts into DOCK-1 − 5 picks out of A-01), 2 units each, applied once.
    let stock = node_b.stock(&StockFilter::default()).unwrap();
    assert_eq!(total(&*node_b), 20 * (45 - 5) * 2, "{stock:?}");
    assert_eq!(node_a.high_water("hh-01").unwrap(), 1000);
    // Each pick took A-01 further below zero: one discrepancy per pick, not one per node.
    let negative = node_a
        .discrepancies(&DiscrepancyFilter {
            kind: Some(DiscrepancyKind::NegativeStock),
            ..DiscrepancyFilter::default()
        })
        .unwrap();
    assert_eq!(negative.len(), 100);
}

/// Many devices moving the same item at the same location through two nodes: stock stays the sum of movements,
/// and every device's movements are stored exactly once.
#[test]
fn concurrent_devices_on_one_stock_key_conserve_stock() {
    let db = pg::database();
    let nodes = [
        Arc::new(PgStore::open(&db.url(), 4).unwrap()),
        Arc::new(PgStore::open(&db.url(), 4).unwrap()),
    ];
    let handles: Vec<_> = (0..8)
        .map(|d| {
            let node = nodes[d % 2].clone();
            std::thread::spawn(move || {
                let device = format!("hh-{d}");
                let mut seq = 1;
                for _ in 0..10 {
                    let movements: Vec<Movement> = (seq..seq + 20)
                        .map(|s| {
                            if s % 2 == 0 {
                                mv(&device, s, MovementKind::Move, Some("DOCK-1"), Some("A-01"))
                            } else {
                                mv(&device, s, MovementKind::Receive, None, Some("DOCK-1"))
                            }
                        })
                        .collect();
                    let out = node.push("WH1", &device, &movements).unwrap();
                    assert_eq!(
                        out,
                        PushOutcome::Acked {
                            acked_through: seq + 19
                        }
                    );
                    seq += 20;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let store = &nodes[0];
    assert_eq!(store.movement_count().unwrap(), 8 * 200);
    let rows = store.stock(&StockFilter::default()).unwrap();
    let qty = |loc: &str| rows.iter().find(|r| r.location == loc).map(|r| r.qty);
    // Per device: 100 receipts of 2 into DOCK-1, 100 moves of 2 from DOCK-1 to A-01.
    assert_eq!(qty("A-01"), Some(8 * 100 * 2), "{rows:?}");
    assert_eq!(qty("DOCK-1"), None, "DOCK-1 nets to zero: {rows:?}");
}

/// Two nodes starting on a fresh database at once: the migration lock lets one create the schema.
#[test]
fn two_nodes_migrating_a_fresh_database_at_once() {
    let db = pg::database();
    let url = db.url();
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                PgStore::open(&url, 1).map(|_| ())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().expect("every node opens");
    }
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let applied: Vec<i32> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Every file of server/migrations, each once.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("sql".as_ref()))
        .count();
    let want: Vec<i32> = (1..=i32::try_from(files).unwrap()).collect();
    assert_eq!(applied, want);
}

/// Data survives closing and reopening (a node restart); reopening applies no migration twice.
#[test]
fn reopen_keeps_everything() {
    let db = pg::database();
    {
        let store = PgStore::open(&db.url(), 2).unwrap();
        let out = store.push("WH1", "hh-01", &batch("hh-01", 1, 12)).unwrap();
        assert_eq!(out, PushOutcome::Acked { acked_through: 12 });
    }
    let store = PgStore::open(&db.url(), 2).unwrap();
    assert_eq!(store.high_water("hh-01").unwrap(), 12);
    assert_eq!(store.movement_count().unwrap(), 12);
    assert_eq!(total(&store), (11 - 1) * 2);
    // A replay after the restart is still recognised, a gap still refused.
    assert_eq!(
        store.push("WH1", "hh-01", &batch("hh-01", 5, 8)).unwrap(),
        PushOutcome::Acked { acked_through: 12 }
    );
    assert_eq!(
        store.push("WH1", "hh-01", &batch("hh-01", 14, 1)).unwrap(),
        PushOutcome::Gap { expected_seq: 13 }
    );
}

/// PostgreSQL restarting or an administrator killing sessions closes pooled connections; the next operation
/// reconnects instead of failing.
#[test]
fn pool_replaces_connections_the_server_closed() {
    let db = pg::database();
    let store = PgStore::open(&db.url(), 2).unwrap();
    store.push("WH1", "hh-01", &batch("hh-01", 1, 5)).unwrap();
    let mut admin =
        postgres::Client::connect(&db.cluster.url("postgres"), postgres::NoTls).unwrap();
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            &[&db.name],
        )
        .unwrap()
        .get(0);
    assert!(killed >= 1);
    let out = store.push("WH1", "hh-01", &batch("hh-01", 6, 5)).unwrap();
    assert_eq!(out, PushOutcome::Acked { acked_through: 10 });
    assert_eq!(store.movement_count().unwrap(), 10);
}

/// Migration 4: a push writes `stock.expiry` from its movements' expiry dates: when a stock row is created, or when
/// the row has none yet; the first date wins (in movement order within a batch) and is never overwritten.
#[test]
fn push_sets_stock_expiry_once() {
    let db = pg::database();
    let store = PgStore::open(&db.url(), 2).unwrap();
    let with_expiry = |m: Movement, lot: &str, expiry: Option<&str>| Movement {
        lot: Some(lot.into()),
        expiry: expiry.map(Into::into),
        ..m
    };
    let receive = |seq, lot, expiry| {
        with_expiry(
            mv("hh-01", seq, MovementKind::Receive, None, Some("DOCK-1")),
            lot,
            expiry,
        )
    };
    // L1 is created with a date; L2 without one, then gets one within the same batch: the first of two.
    let first = vec![
        receive(1, "L1", Some("2027-01-31")),
        receive(2, "L2", None),
        receive(3, "L2", Some("2027-02-28")),
        receive(4, "L2", Some("2027-03-31")),
    ];
    assert_eq!(
        store.push("WH1", "hh-01", &first).unwrap(),
        PushOutcome::Acked { acked_through: 4 }
    );
    // A later batch with other dates changes neither; L3 stays without one; the move carries L1's date to A-01.
    let second = vec![
        receive(5, "L1", Some("2028-01-31")),
        receive(6, "L2", Some("2028-02-29")),
        receive(7, "L3", None),
        with_expiry(
            mv("hh-01", 8, MovementKind::Move, Some("DOCK-1"), Some("A-01")),
            "L1",
            Some("2027-01-31"),
        ),
    ];
    assert_eq!(
        store.push("WH1", "hh-01", &second).unwrap(),
        PushOutcome::Acked { acked_through: 8 }
    );
    // Replaying the first batch (a lost acknowledgement) changes nothing either.
    assert_eq!(
        store.push("WH1", "hh-01", &first).unwrap(),
        PushOutcome::Acked { acked_through: 8 }
    );
    let mut client = postgres::Client::connect(&db.url(), postgres::NoTls).unwrap();
    let rows: Vec<(String, String, Option<String>, i64)> = client
        .query(
            "SELECT location, lot, expiry, qty FROM stock WHERE site = 'WH1' ORDER BY location, lot_key",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let row = |loc: &str, lot: &str, expiry: Option<&str>, qty| {
        (
            loc.to_string(),
            lot.to_string(),
            expiry.map(String::from),
            qty,
        )
    };
    assert_eq!(
        rows,
        vec![
            row("A-01", "L1", Some("2027-01-31"), 2),
            row("DOCK-1", "L1", Some("2027-01-31"), 2),
            row("DOCK-1", "L2", Some("2027-02-28"), 8),
            row("DOCK-1", "L3", None, 2),
        ]
    );
}

/// `movements.body` holds only what no column holds; a movement comes back exactly as pushed, also when its time
/// has an offset or digits below the microsecond (which `timestamptz` cannot keep), and a movement stored by an
/// earlier version (whose body is the whole movement) still reads back and compares as a replay.
#[test]
fn movements_read_back_exactly_in_both_body_formats() {
    let db = pg::database();
    let store = PgStore::open(&db.url(), 2).unwrap();
    let exact = Movement {
        at: datetime!(2026-11-26 10:00:00.123456789 +02:00),
        expiry: Some("2027-12-31".into()),
        serials: vec!["S1".into(), "S2".into()],
        sscc: Some("003456789012345675".into()),
        reference: Some("ASN-1".into()),
        operator: Some("op1".into()),
        source: MovementSource::Barcode {
            raw: "0109506000134352\u{1d}10L1".into(),
            symbology: Some("]C1".into()),
        },
        ..mv("hh-01", 1, MovementKind::Receive, None, Some("DOCK-1"))
    };
    let plain = mv("hh-01", 2, MovementKind::Pick, Some("DOCK-1"), None);
    store
        .push("WH1", "hh-01", &[exact.clone(), plain.clone()])
        .unwrap();
    let json = |m: &Movement| serde_json::to_string(m).unwrap();
    let back = store.movement("hh-01", 1).unwrap().unwrap();
    assert_eq!(json(&back), json(&exact), "offset and nanoseconds kept");
    assert_eq!(
        json(&store.movement("hh-01", 2).unwrap().unwrap()),
        json(&plain)
    );
    let page = store
        .movements(&dockhand_server::store::MovementFilter::default(), 0, 10)
        .unwrap();
    let history: Vec<String> = page.movements.iter().map(|s| json(&s.movement)).collect();
    assert_eq!(history, vec![json(&exact), json(&plain)]);

    // A row as the previous version wrote it: the columns and the whole movement as the body.
    let legacy = Movement {
        at: datetime!(2026-11-26 11:00:00.5 -05:00),
        ..mv("hh-02", 1, MovementKind::Receive, None, Some("DOCK-1"))
    };
    let mut client = postgres::Client::connect(&db.url(), postgres::NoTls).unwrap();
    client
        .execute(
            "INSERT INTO movements (device_id, seq, site, at, kind, gtin, lot, from_location, to_location,
                                    reference, qty, body)
             VALUES ('hh-02', 1, 'WH1', $1, 'receive', $2, $3, NULL, 'DOCK-1', NULL, 2, $4)",
            &[&legacy.at, &legacy.gtin, &legacy.lot, &json(&legacy)],
        )
        .unwrap();
    client
        .execute("INSERT INTO device_hw VALUES ('hh-02', 1)", &[])
        .unwrap();
    assert_eq!(
        json(&store.movement("hh-02", 1).unwrap().unwrap()),
        json(&legacy)
    );
    assert_eq!(
        store
            .push("WH1", "hh-02", std::slice::from_ref(&legacy))
            .unwrap(),
        PushOutcome::Acked { acked_through: 1 },
        "a replay of a movement stored by the previous version"
    );
    let changed = Movement {
        operator: Some("someone else".into()),
        ..legacy
    };
    assert_eq!(
        store.push("WH1", "hh-02", &[changed]).unwrap(),
        PushOutcome::Conflict { seq: 1 }
    );
}

/// Migration 7 on a database the previous version wrote (a server_seq and received_at per movement): every
/// movement keeps its number, its received_at and its place in the history, and new pushes number on after them.
#[test]
fn migration_7_keeps_the_history_of_a_previous_version() {
    let db = pg::database();
    let mut client = postgres::Client::connect(&db.url(), postgres::NoTls).unwrap();
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (
                 version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .unwrap();
    for (version, name) in [
        (1, "init"),
        (2, "devices"),
        (3, "stock_fillfactor"),
        (4, "stock_expiry"),
        (5, "device_version"),
        (6, "movements_reference"),
    ] {
        let path = format!(
            "{}/migrations/{version:04}_{name}.sql",
            env!("CARGO_MANIFEST_DIR")
        );
        client
            .batch_execute(&std::fs::read_to_string(path).unwrap())
            .unwrap();
        client
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&version, &name],
            )
            .unwrap();
    }
    // Batches as the previous version stored them, one transaction each: hh-01 1-3, hh-02 1-2, hh-01 4-5; then
    // hh-03 and hh-04 in one transaction with their numbers interleaved (as two concurrent inserts could draw
    // them).
    let json = |m: &Movement| serde_json::to_string(m).unwrap();
    let mut store_old = |movements: &[Movement]| {
        let mut tx = client.transaction().unwrap();
        for m in movements {
            tx.execute(
                "INSERT INTO movements (device_id, seq, site, at, kind, gtin, lot, from_location, to_location,
                                        reference, qty, body)
                 VALUES ($1, $2, 'WH1', $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    &m.device_id,
                    &(m.seq as i64),
                    &m.at,
                    &m.kind.as_str(),
                    &m.gtin,
                    &m.lot,
                    &m.from_location,
                    &m.to_location,
                    &m.reference,
                    &(m.qty as i64),
                    &json(m),
                ],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    };
    let receive = |device: &str, seq| mv(device, seq, MovementKind::Receive, None, Some("DOCK-1"));
    store_old(&[
        receive("hh-01", 1),
        receive("hh-01", 2),
        receive("hh-01", 3),
    ]);
    let on_asn = |device: &str, seq| Movement {
        reference: Some("ASN-9".into()),
        ..receive(device, seq)
    };
    store_old(&[on_asn("hh-02", 1), on_asn("hh-02", 2)]);
    store_old(&[receive("hh-01", 4), receive("hh-01", 5)]);
    store_old(&[
        receive("hh-03", 1),
        receive("hh-04", 1),
        receive("hh-03", 2),
        receive("hh-04", 2),
    ]);
    client
        .batch_execute(
            "INSERT INTO device_hw VALUES ('hh-01', 5), ('hh-02', 2), ('hh-03', 2), ('hh-04', 2)",
        )
        .unwrap();
    let before: Vec<(i64, String, i64, time::OffsetDateTime)> = client
        .query(
            "SELECT server_seq, device_id, seq, received_at FROM movements ORDER BY server_seq",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(before.len(), 11);

    let store = PgStore::open(&db.url(), 2).unwrap();
    let history = |after| {
        store
            .movements(&Default::default(), after, 100)
            .unwrap()
            .movements
            .iter()
            .map(|s| {
                (
                    s.server_seq as i64,
                    s.movement.device_id.clone(),
                    s.movement.seq as i64,
                    s.received_at,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(history(0), before);
    // A page from inside a batch stored before.
    assert_eq!(history(before[1].0 as u64), before[2..].to_vec());
    assert_eq!(
        store.movement("hh-01", 2).unwrap().unwrap(),
        receive("hh-01", 2)
    );
    assert_eq!(
        store.push("WH1", "hh-01", &[receive("hh-01", 5)]).unwrap(),
        PushOutcome::Acked { acked_through: 5 },
        "a replay of a movement stored before"
    );
    // New pushes number on after the last number drawn before.
    store
        .push("WH1", "hh-01", &[receive("hh-01", 6), receive("hh-01", 7)])
        .unwrap();
    store.push("WH1", "hh-02", &[receive("hh-02", 3)]).unwrap();
    let last = before.last().unwrap().0;
    let all = history(0);
    let new: Vec<(i64, &str, i64)> = all[before.len()..]
        .iter()
        .map(|(s, d, q, _)| (*s, d.as_str(), *q))
        .collect();
    assert_eq!(
        new,
        vec![
            (last + 1, "hh-01", 6),
            (last + 2, "hh-01", 7),
            (last + 3, "hh-02", 3)
        ]
    );
    assert_eq!(history(last as u64 + 1).len(), 2);

    // A document's movements (index movements_reference, rebuilt by migration 7) keep their numbers, and one
    // pushed after the migration joins them.
    store.push("WH1", "hh-03", &[on_asn("hh-03", 3)]).unwrap();
    let by_ref = |after| {
        store
            .movements_by_reference("ASN-9", after, 100)
            .unwrap()
            .movements
            .iter()
            .map(|s| {
                (
                    s.server_seq as i64,
                    s.movement.device_id.clone(),
                    s.movement.seq as i64,
                )
            })
            .collect::<Vec<_>>()
    };
    let old_refs: Vec<_> = before
        .iter()
        .filter(|b| b.1 == "hh-02")
        .map(|b| (b.0, b.1.clone(), b.2))
        .collect();
    let mut want = old_refs.clone();
    want.push((last + 4, "hh-03".into(), 3));
    assert_eq!(by_ref(0), want);
    assert_eq!(by_ref(old_refs[0].0 as u64), want[1..].to_vec());
}
