//! The webhook storage ([`WebhookStore`]) on both backends, with the same checks (issue 9 scope 3).
//!
//! - `sled_conformance`, `postgres_conformance`: registration starts the cursors at the heads; enqueue is
//!   compare-and-set; due, attempts, give-up, retry and delete keep the counts; office events land in the
//!   outbox with the change (an ASN close, a resolution) and only then.
//! - `postgres_late_commit_is_not_settled`: a writer that drew a number and has not committed holds the settled
//!   horizon back until it ends (the case a naive cursor skips).
//! - `postgres_one_leader`: of two stores on one database only one holds the dispatch lock, and the other takes
//!   it when the first goes away.

mod pg;

use std::sync::Arc;
use std::time::Duration;

use dockhand_protocol::sync::{Asn, DocStatus};
use dockhand_server::store::{Resolution, Store, StoreError};
use dockhand_server::webhooks::{
    Attempt, Cursors, DeliveryStatus, Endpoint, Event, EventKind, NewDelivery, WebhookStore,
};
use dockhand_server::{PgStore, SledStore};
use time::OffsetDateTime;

fn endpoint(id: &str, events: &[EventKind]) -> Endpoint {
    Endpoint {
        id: id.into(),
        url: format!("http://127.0.0.1:9/{id}"),
        events: events.to_vec(),
        description: String::new(),
        secret: "a".repeat(64),
        created_at: OffsetDateTime::UNIX_EPOCH,
    }
}

fn delivery(endpoint: &str, key: &str) -> NewDelivery {
    NewDelivery {
        endpoint: endpoint.into(),
        key: key.into(),
        kind: EventKind::MovementApplied,
        events: 1,
        body: format!(r#"{{"delivery":"{key}"}}"#),
    }
}

fn asn(id: &str) -> Asn {
    serde_json::from_value(serde_json::json!({
        "id": id, "site": "WH1",
        "lines": [{"gtin": "09506000134352", "lot": "L1", "qty": 5}],
    }))
    .expect("an ASN")
}

fn conformance(store: &dyn Store) {
    let hooks = store.webhooks().expect("webhooks");
    let t0 = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let at = |secs: i64| t0 + time::Duration::seconds(secs);

    // Before any registration there are no cursors; the first registration starts them at the heads.
    assert_eq!(hooks.cursors().unwrap(), None);
    hooks
        .put_endpoint(&endpoint("wh_a", &[EventKind::MovementApplied]))
        .unwrap();
    hooks
        .put_endpoint(&endpoint("wh_b", &[EventKind::ReceiptClosed]))
        .unwrap();
    let start = hooks
        .cursors()
        .unwrap()
        .expect("cursors after a registration");
    assert_eq!(start, hooks.heads().unwrap());
    assert_eq!(
        hooks
            .endpoints()
            .unwrap()
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["wh_a", "wh_b"]
    );

    // Enqueue is compare-and-set on the cursors.
    let next = Cursors {
        movements: start.movements + 5,
        ..start
    };
    hooks
        .enqueue(
            start,
            next,
            &[
                delivery("wh_a", "k1"),
                delivery("wh_a", "k2"),
                delivery("wh_b", "k3"),
            ],
            at(0),
        )
        .unwrap();
    assert_eq!(hooks.cursors().unwrap(), Some(next));
    match hooks.enqueue(start, next, &[delivery("wh_a", "dup")], at(0)) {
        Err(StoreError::Refused(_)) => {}
        other => panic!("a stale enqueue must be refused, got {other:?}"),
    }
    assert_eq!(
        hooks.deliveries("wh_a", None, 10).unwrap().len(),
        2,
        "nothing of the refused enqueue"
    );

    // Due, oldest first; attempts move them on.
    let due = hooks.due(at(0), 10).unwrap();
    assert_eq!(
        due.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(),
        ["k1", "k2", "k3"]
    );
    let (k1, k2, k3) = (due[0].id, due[1].id, due[2].id);
    let table: &[(u64, Attempt)] = &[
        (k1, Attempt::Delivered),
        (
            k2,
            Attempt::Retry {
                error: "HTTP 500 Internal Server Error".into(),
                next: at(30),
            },
        ),
        (
            k3,
            Attempt::GiveUp {
                error: "timed out after 10 s".into(),
            },
        ),
    ];
    for (id, attempt) in table {
        hooks.record_attempt(*id, attempt, at(1)).unwrap();
    }
    assert!(
        hooks.due(at(1), 10).unwrap().is_empty(),
        "k2 waits, k1 and k3 are done"
    );
    assert_eq!(hooks.next_due().unwrap(), Some(at(30)));
    assert_eq!(
        hooks
            .due(at(30), 10)
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        [k2]
    );
    let stats: std::collections::HashMap<_, _> =
        hooks.endpoint_stats().unwrap().into_iter().collect();
    let (a, b) = (&stats["wh_a"], &stats["wh_b"]);
    assert_eq!((a.pending, a.failed, a.delivered), (1, 0, 1));
    assert_eq!(a.last_success_at, Some(at(1)));
    assert_eq!((b.pending, b.failed, b.delivered), (0, 1, 0));
    assert_eq!(b.last_error.as_deref(), Some("timed out after 10 s"));
    let failed = hooks
        .deliveries("wh_b", Some(DeliveryStatus::Failed), 10)
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].attempts, failed[0].status),
        (1, DeliveryStatus::Failed)
    );

    // Retry: a failed one is due again with its attempts reset; a delivered one is refused; another
    // endpoint's id is unknown.
    let retried = hooks.retry("wh_b", k3, at(2)).unwrap().expect("k3");
    assert_eq!(
        (retried.status, retried.attempts),
        (DeliveryStatus::Pending, 0)
    );
    assert!(matches!(
        hooks.retry("wh_a", k1, at(2)),
        Err(StoreError::Refused(_))
    ));
    assert_eq!(hooks.retry("wh_a", k3, at(2)).unwrap(), None);
    assert_eq!(
        hooks
            .due(at(2), 10)
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        [k3]
    );

    // Office events: the outbox gets one entry per change, in the change's transaction.
    let outbox_before = hooks.cursors().unwrap().unwrap().outbox;
    store.put_asn(&asn("ASN-1")).unwrap();
    store.set_asn_status("ASN-1", DocStatus::Closed).unwrap();
    assert!(
        store.set_asn_status("ASN-1", DocStatus::Closed).is_err(),
        "closing twice"
    );
    let events = hooks.outbox_after(outbox_before, 10).unwrap();
    assert_eq!(events.len(), 1, "one close, one event: {events:?}");
    assert_eq!(events[0].1.id, "receipt:ASN-1:closed");
    assert_eq!(events[0].1.kind, EventKind::ReceiptClosed);
    assert_eq!(events[0].1.data["status"], "closed");
    let short = store
        .discrepancies_after(0, 10)
        .unwrap()
        .into_iter()
        .find(|d| d.reference.as_deref() == Some("ASN-1"))
        .expect("the short receipt");
    store
        .resolve_discrepancy(
            short.id,
            &Resolution::Accepted {
                reason: "supplier credit".into(),
            },
            t0,
        )
        .unwrap();
    let events = hooks.outbox_after(events[0].0, 10).unwrap();
    assert_eq!(
        events.iter().map(|(_, e)| e.id.clone()).collect::<Vec<_>>(),
        [format!("discrepancy:{}:resolved", short.id)]
    );
    assert_eq!(events[0].1.data["status"], "resolved");
    let seq = hooks
        .enqueue_event(&Event {
            id: "replenishment:WH1:A-01:1".into(),
            kind: EventKind::ReplenishmentSuggested,
            occurred_at: t0,
            data: serde_json::json!({"location": "A-01"}),
        })
        .unwrap();
    assert_eq!(seq, events[0].0 + 1);
    assert_eq!(hooks.heads().unwrap().outbox, seq);

    // Deleting an endpoint takes its deliveries and counts along.
    assert!(hooks.delete_endpoint("wh_b").unwrap());
    assert!(!hooks.delete_endpoint("wh_b").unwrap());
    assert!(hooks.deliveries("wh_b", None, 10).unwrap().is_empty());
    assert_eq!(
        hooks
            .due(at(60), 10)
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        [k2]
    );
    assert!(!hooks
        .endpoint_stats()
        .unwrap()
        .iter()
        .any(|(id, _)| id == "wh_b"));
}

#[test]
fn sled_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("sled"), 8 << 20).unwrap();
    conformance(&store);
}

#[test]
fn postgres_conformance() {
    let db = pg::database();
    let store = PgStore::open(&db.url(), 2).unwrap();
    conformance(&store);
}

#[test]
fn postgres_late_commit_is_not_settled() {
    let db = pg::database();
    let store = Arc::new(PgStore::open(&db.url(), 2).unwrap());
    let hooks: &dyn WebhookStore = store.webhooks().unwrap();
    let before = hooks.settled().unwrap().expect("nothing in flight");

    // A writer as a push is one: it has its transaction id, draws a number (and writes), and has not committed
    // yet. It runs on a thread of its own until told to commit.
    let url = db.url();
    let (drawn_tx, drawn_rx) = std::sync::mpsc::channel::<i64>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let mut tx = client.transaction().unwrap();
        tx.query_one("SELECT pg_current_xact_id()", &[]).unwrap();
        let drawn: i64 = tx
            .query_one("SELECT nextval('discrepancies_id_seq')", &[])
            .unwrap()
            .get(0);
        drawn_tx.send(drawn).unwrap();
        go_rx.recv().unwrap();
        tx.commit().unwrap();
    });
    let drawn = drawn_rx.recv().unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        hooks.settled().unwrap(),
        None,
        "number {drawn} is not settled while its writer runs"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it waited for the writer"
    );

    // Committed while settled() waits: the horizon then covers the number.
    let committer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        go_tx.send(()).unwrap();
    });
    let settled = hooks
        .settled()
        .unwrap()
        .expect("settled once the writer committed");
    committer.join().unwrap();
    writer.join().unwrap();
    assert!(
        settled.discrepancies >= drawn as u64,
        "{settled:?} covers {drawn}"
    );
    assert!(settled.discrepancies > before.discrepancies);
}

#[test]
fn postgres_one_leader() {
    let db = pg::database();
    let a = PgStore::open(&db.url(), 1).unwrap();
    let b = PgStore::open(&db.url(), 1).unwrap();
    let (ha, hb) = (a.webhooks().unwrap(), b.webhooks().unwrap());
    assert!(ha.try_lead().unwrap());
    assert!(ha.try_lead().unwrap(), "keeps it");
    assert!(!hb.try_lead().unwrap(), "one leader at a time");
    drop(a); // its session ends, and the lock with it
    let mut took = false;
    for _ in 0..100 {
        if hb.try_lead().unwrap() {
            took = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        took,
        "the other store takes the lock once the first is gone"
    );
}
