//! Handler tests: the router from `app(state)` driven with `tower::ServiceExt::oneshot`, no socket.
//! Each test gets a fresh tempdir with a sled store, devices `hh-01` and `hh-02` at site WH1, `rf-01` at WH2.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use dockhand_protocol::sync::{Movement, MovementKind, MovementSource, PushRequest};
use dockhand_server::{app, enroll, AdminToken, AppState, Devices, SledStore, Store};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "admin-secret";
const GTIN: &str = "09506000134352";

/// (site, location, lot, qty) of a stock row.
type Row = (String, String, Value, i64);

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    store: Arc<dyn Store>,
    hh01: String,
    hh02: String,
    rf01: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let devices_dir = dir.path().join("devices");
    let hh01 = enroll(&devices_dir, "hh-01", "WH1", false).unwrap();
    let hh02 = enroll(&devices_dir, "hh-02", "WH1", false).unwrap();
    let rf01 = enroll(&devices_dir, "rf-01", "WH2", false).unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(&dir.path().join("sled"), 8 << 20).unwrap());
    let devices = Arc::new(Devices::open(&devices_dir).unwrap());
    let state = AppState::new(store.clone(), devices, AdminToken::from_secret(ADMIN));
    Fixture {
        _dir: dir,
        app: app(state),
        store,
        hh01,
        hh02,
        rf01,
    }
}

/// A receive of `qty` into `to` (seq decides nothing else, so replays are equal by construction).
fn receive(device: &str, seq: u64, to: &str, qty: u64) -> Movement {
    Movement {
        device_id: device.into(),
        seq,
        at: time::macros::datetime!(2026-11-26 10:15:00 +01:00),
        kind: MovementKind::Receive,
        gtin: GTIN.into(),
        lot: Some("L1".into()),
        expiry: None,
        serials: vec![],
        qty,
        from_location: None,
        to_location: Some(to.into()),
        sscc: None,
        reference: None,
        operator: None,
        source: MovementSource::Manual,
    }
}

fn moves(device: &str, seq: u64, from: &str, to: &str, qty: u64) -> Movement {
    Movement {
        kind: MovementKind::Move,
        from_location: Some(from.into()),
        to_location: Some(to.into()),
        ..receive(device, seq, to, qty)
    }
}

fn batch(device: &str, movements: Vec<Movement>) -> Vec<u8> {
    serde_json::to_vec(&PushRequest {
        device_id: device.into(),
        movements,
        backlog: None,
    })
    .unwrap()
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{method} {uri}: body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, value)
}

async fn push(f: &Fixture, token: &str, body: Vec<u8>) -> (StatusCode, Value) {
    call(&f.app, "POST", "/v1/sync/push", Some(token), body).await
}

async fn stock(f: &Fixture, query: &str) -> Value {
    let (status, body) = call(
        &f.app,
        "GET",
        &format!("/v1/stock{query}"),
        Some(ADMIN),
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["stock"].clone()
}

fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn health_needs_no_token() {
    let f = fixture();
    let (status, body) = call(&f.app, "GET", "/v1/health", None, vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
}

#[tokio::test]
async fn unknown_route_and_method_are_json_errors() {
    let f = fixture();
    let (status, body) = call(&f.app, "GET", "/v1/nope", None, vec![]).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = call(&f.app, "GET", "/v1/sync/push", Some(&f.hh01), vec![]).await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn push_then_stock() {
    let f = fixture();
    let body = batch(
        "hh-01",
        vec![
            receive("hh-01", 1, "DOCK-1", 10),
            moves("hh-01", 2, "DOCK-1", "A-01", 4),
        ],
    );
    let (status, resp) = push(&f, &f.hh01, body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp, json!({"acked_through": 2}));
    assert_eq!(
        stock(&f, "?site=WH1").await,
        json!([
            {"site": "WH1", "location": "A-01", "gtin": GTIN, "lot": "L1", "qty": 4, "expiry": null},
            {"site": "WH1", "location": "DOCK-1", "gtin": GTIN, "lot": "L1", "qty": 6, "expiry": null},
        ])
    );
    let (status, hw) = call(
        &f.app,
        "GET",
        "/v1/devices/hh-01/high-water",
        Some(ADMIN),
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hw, json!({"device_id": "hh-01", "acked_through": 2}));
    let (status, body) = call(
        &f.app,
        "GET",
        "/v1/devices/ghost/high-water",
        Some(ADMIN),
        vec![],
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn replayed_batch_is_acked_and_changes_nothing() {
    let f = fixture();
    let body = batch(
        "hh-01",
        vec![
            receive("hh-01", 1, "DOCK-1", 10),
            receive("hh-01", 2, "DOCK-1", 5),
        ],
    );
    assert_eq!(push(&f, &f.hh01, body.clone()).await.0, StatusCode::OK);
    let before = stock(&f, "").await;
    let (status, resp) = push(&f, &f.hh01, body).await;
    assert_eq!(
        (status, resp),
        (StatusCode::OK, json!({"acked_through": 2}))
    );
    assert_eq!(stock(&f, "").await, before);
    assert_eq!(f.store.movement_count().unwrap(), 2);
}

#[tokio::test]
async fn partial_overlap_applies_only_the_new_suffix() {
    let f = fixture();
    let first = batch(
        "hh-01",
        vec![
            receive("hh-01", 1, "DOCK-1", 10),
            receive("hh-01", 2, "DOCK-1", 5),
        ],
    );
    assert_eq!(push(&f, &f.hh01, first).await.0, StatusCode::OK);
    let overlap = batch(
        "hh-01",
        vec![
            receive("hh-01", 2, "DOCK-1", 5),
            receive("hh-01", 3, "DOCK-1", 1),
            receive("hh-01", 4, "DOCK-1", 2),
        ],
    );
    let (status, resp) = push(&f, &f.hh01, overlap).await;
    assert_eq!(
        (status, resp),
        (StatusCode::OK, json!({"acked_through": 4}))
    );
    assert_eq!(stock(&f, "").await[0]["qty"], 18);
    assert_eq!(f.store.movement_count().unwrap(), 4);
}

#[tokio::test]
async fn gap_is_409_with_expected_seq() {
    let f = fixture();
    assert_eq!(
        push(
            &f,
            &f.hh01,
            batch("hh-01", vec![receive("hh-01", 1, "D", 1)])
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, body) = push(
        &f,
        &f.hh01,
        batch("hh-01", vec![receive("hh-01", 5, "D", 1)]),
    )
    .await;
    assert_error(status, &body, StatusCode::CONFLICT, "seq_gap");
    assert_eq!(body["expected_seq"], 2);
    assert_eq!(body["error"]["expected_seq"], 2);
    assert_eq!(f.store.high_water("hh-01").unwrap(), 1);
    assert_eq!(f.store.movement_count().unwrap(), 1);
}

#[tokio::test]
async fn conflicting_content_is_409_and_nothing_applies() {
    let f = fixture();
    assert_eq!(
        push(
            &f,
            &f.hh01,
            batch("hh-01", vec![receive("hh-01", 1, "D", 3)])
        )
        .await
        .0,
        StatusCode::OK
    );
    let before = stock(&f, "").await;
    // seq 1 changed (qty 4), seq 2 is new: the whole batch is refused.
    let body = batch(
        "hh-01",
        vec![receive("hh-01", 1, "D", 4), receive("hh-01", 2, "D", 1)],
    );
    let (status, resp) = push(&f, &f.hh01, body).await;
    assert_error(status, &resp, StatusCode::CONFLICT, "conflict");
    assert_eq!(stock(&f, "").await, before);
    assert_eq!(f.store.high_water("hh-01").unwrap(), 1);
    assert_eq!(f.store.movement("hh-01", 1).unwrap().unwrap().qty, 3);
}

#[tokio::test]
async fn credentials_table() {
    let f = fixture();
    let body = || batch("hh-01", vec![receive("hh-01", 1, "D", 1)]);
    let cases: &[(&str, Option<&str>, StatusCode, &str)] = &[
        (
            "missing token",
            None,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "wrong token",
            Some("deadbeef"),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "admin token is not a device",
            Some(ADMIN),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "another device's token",
            Some(&f.hh02),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ];
    for (name, token, status, code) in cases {
        let (got, resp) = call(&f.app, "POST", "/v1/sync/push", *token, body()).await;
        assert_eq!(got, *status, "{name}: {resp}");
        assert_eq!(resp["error"]["code"], *code, "{name}");
    }
    // Bad credentials are rejected before the body is even looked at.
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/sync/push",
        Some("nope"),
        b"garbage".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(f.store.movement_count().unwrap(), 0);
}

#[tokio::test]
async fn oversized_body_is_413_json() {
    let f = fixture();
    let big = vec![b' '; 5 * 1024 * 1024];
    let (status, body) = push(&f, &f.hh01, big).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
}

#[tokio::test]
async fn malformed_bodies_are_400_naming_the_field() {
    let f = fixture();
    let good = serde_json::to_value(PushRequest {
        device_id: "hh-01".into(),
        movements: vec![receive("hh-01", 1, "D", 1)],
        backlog: None,
    })
    .unwrap();
    let edit = |f: fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    let full = serde_json::to_vec(&good).unwrap();
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        (
            "qty is a string",
            edit(|v| v["movements"][0]["qty"] = json!("x")),
            Some("movements[0].qty"),
        ),
        (
            "gtin missing",
            edit(|v| drop(v["movements"][0].as_object_mut().unwrap().remove("gtin"))),
            Some("movements[0].gtin"),
        ),
        (
            "unknown field",
            edit(|v| v["movements"][0]["colour"] = json!("red")),
            Some("movements[0].colour"),
        ),
        (
            "bad kind",
            edit(|v| v["movements"][0]["kind"] = json!("teleport")),
            Some("movements[0].kind"),
        ),
        (
            "device_id missing",
            edit(|v| drop(v.as_object_mut().unwrap().remove("device_id"))),
            Some("device_id"),
        ),
        ("truncated", full[..full.len() - 7].to_vec(), None),
        ("garbage", b"\xff\xfe not json".to_vec(), None),
        ("empty", vec![], None),
        (
            "trailing data",
            [full.clone(), b" {}".to_vec()].concat(),
            None,
        ),
        // Valid JSON, invalid movement: Movement::validate names the field.
        (
            "short gtin",
            edit(|v| v["movements"][0]["gtin"] = json!("123")),
            Some("movements[0].gtin"),
        ),
        (
            "zero qty",
            edit(|v| v["movements"][0]["qty"] = json!(0)),
            Some("movements[0].qty"),
        ),
        (
            "other device's movement",
            edit(|v| v["movements"][0]["device_id"] = json!("hh-02")),
            Some("movements[0].device_id"),
        ),
        (
            "NUL in location",
            edit(|v| v["movements"][0]["to_location"] = json!("A\u{0}B")),
            Some("movements[0].to_location"),
        ),
    ];
    for (name, body, field) in cases {
        let (status, resp) = push(&f, &f.hh01, body).await;
        assert_error(status, &resp, StatusCode::BAD_REQUEST, "bad_request");
        if let Some(field) = field {
            assert_eq!(resp["error"]["field"], field, "{name}: {resp}");
            assert!(
                resp["error"]["message"].as_str().unwrap().contains(field),
                "{name}: {resp}"
            );
        }
    }
    assert_eq!(
        f.store.movement_count().unwrap(),
        0,
        "no error case stores anything"
    );
}

#[tokio::test]
async fn non_contiguous_batch_is_400() {
    let f = fixture();
    let body = batch(
        "hh-01",
        vec![
            receive("hh-01", 1, "D", 1),
            receive("hh-01", 2, "D", 1),
            receive("hh-01", 4, "D", 1),
        ],
    );
    let (status, resp) = push(&f, &f.hh01, body).await;
    assert_error(status, &resp, StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(resp["error"]["field"], "movements[2].seq");
    assert_eq!(f.store.movement_count().unwrap(), 0);
}

#[tokio::test]
async fn empty_batch_reports_high_water() {
    let f = fixture();
    assert_eq!(
        push(
            &f,
            &f.hh01,
            batch("hh-01", vec![receive("hh-01", 1, "D", 1)])
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, resp) = push(&f, &f.hh01, batch("hh-01", vec![])).await;
    assert_eq!(
        (status, resp),
        (StatusCode::OK, json!({"acked_through": 1}))
    );
}

#[tokio::test]
async fn stock_filters_and_admin_auth() {
    let f = fixture();
    let mut lotless = receive("hh-01", 3, "A-01", 2);
    lotless.lot = None;
    let wh1 = batch(
        "hh-01",
        vec![
            receive("hh-01", 1, "A-01", 5),
            receive("hh-01", 2, "B-01", 7),
            lotless,
        ],
    );
    assert_eq!(push(&f, &f.hh01, wh1).await.0, StatusCode::OK);
    let mut other_lot = receive("rf-01", 1, "A-01", 9);
    other_lot.lot = Some("L2".into());
    assert_eq!(
        push(&f, &f.rf01, batch("rf-01", vec![other_lot])).await.0,
        StatusCode::OK
    );
    // A pick that empties B-01: zero rows are omitted.
    let mut pick = receive("hh-02", 1, "B-01", 7);
    pick.kind = MovementKind::Pick;
    pick.from_location = Some("B-01".into());
    pick.to_location = None;
    assert_eq!(
        push(&f, &f.hh02, batch("hh-02", vec![pick])).await.0,
        StatusCode::OK
    );

    let qtys = |v: Value| -> Vec<Row> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["site"].as_str().unwrap().to_string(),
                    r["location"].as_str().unwrap().to_string(),
                    r["lot"].clone(),
                    r["qty"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let row = |s: &str, l: &str, lot: Value, q| (s.to_string(), l.to_string(), lot, q);
    let all = vec![
        row("WH1", "A-01", Value::Null, 2),
        row("WH1", "A-01", json!("L1"), 5),
        row("WH2", "A-01", json!("L2"), 9),
    ];
    let cases: Vec<(&str, Vec<Row>)> = vec![
        ("", all.clone()),
        ("?site=WH1", all[..2].to_vec()),
        ("?site=WH2", all[2..].to_vec()),
        ("?site=WH1&location=A-01&lot=L1", all[1..2].to_vec()),
        ("?location=A-01&gtin=09506000134352", all.clone()),
        ("?gtin=00000000000000", vec![]),
        ("?site=WH1&location=B-01", vec![]),
        ("?site=WH", vec![]),
    ];
    for (query, want) in cases {
        assert_eq!(qtys(stock(&f, query).await), want, "{query}");
    }

    let (status, body) = call(&f.app, "GET", "/v1/stock?sitee=WH1", Some(ADMIN), vec![]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    for token in [None, Some("wrong"), Some(f.hh01.as_str())] {
        let (status, body) = call(&f.app, "GET", "/v1/stock", token, vec![]).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let (status, _) = call(&f.app, "GET", "/v1/devices/hh-01/high-water", None, vec![]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rotated_token_is_revoked_and_new_device_works_without_restart() {
    let f = fixture();
    let devices_dir = f._dir.path().join("devices");
    let new = enroll(&devices_dir, "hh-01", "WH1", true).unwrap();
    let body = || batch("hh-01", vec![receive("hh-01", 1, "D", 1)]);
    assert_eq!(push(&f, &f.hh01, body()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(push(&f, &new, body()).await.0, StatusCode::OK);
    let late = enroll(&devices_dir, "hh-09", "WH1", false).unwrap();
    assert_eq!(
        push(&f, &late, batch("hh-09", vec![receive("hh-09", 1, "D", 1)]))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn negative_stock_is_kept() {
    let f = fixture();
    let mut pick = receive("hh-01", 1, "A-01", 3);
    pick.kind = MovementKind::Pick;
    pick.from_location = Some("A-01".into());
    pick.to_location = None;
    assert_eq!(
        push(&f, &f.hh01, batch("hh-01", vec![pick])).await.0,
        StatusCode::OK
    );
    assert_eq!(stock(&f, "").await[0]["qty"], -3);
}

#[tokio::test]
async fn scan_stats_are_checked_stored_and_reported() {
    let f = fixture();
    let good = json!({"device_id": "hh-01", "stats": [
        {"hour": "2026-11-27T06:00:00Z", "operator": "anna", "reason": "over_pick", "count": 2},
        {"hour": "2026-11-27T06:00:00Z", "reason": "undecodable", "count": 1}]});
    let post = |token: &str, body: Vec<u8>| {
        let (app, token) = (f.app.clone(), token.to_string());
        async move { call(&app, "POST", "/v1/sync/scan-stats", Some(&token), body).await }
    };
    let edit = |e: fn(&mut Value)| {
        let mut v = good.clone();
        e(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"hour": "2026-11-27T06:00:00Z", "operator": format!("op{i}"), "reason": "refused", "count": 1}))
        .collect();
    let cases: Vec<(&str, Vec<u8>, StatusCode, Option<&str>)> = vec![
        (
            "garbage",
            b"\x00\xff{".to_vec(),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "truncated",
            serde_json::to_vec(&good).unwrap()[..40].to_vec(),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "half past",
            edit(|v| v["stats"][0]["hour"] = json!("2026-11-27T06:30:00Z")),
            StatusCode::BAD_REQUEST,
            Some("stats[0].hour"),
        ),
        (
            "reason",
            edit(|v| v["stats"][1]["reason"] = json!("Over Pick")),
            StatusCode::BAD_REQUEST,
            Some("stats[1].reason"),
        ),
        (
            "negative",
            edit(|v| v["stats"][0]["count"] = json!(-1)),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "too many",
            serde_json::to_vec(&json!({"device_id": "hh-01", "stats": many})).unwrap(),
            StatusCode::BAD_REQUEST,
            Some("stats"),
        ),
        (
            "another device",
            edit(|v| v["device_id"] = json!("hh-02")),
            StatusCode::FORBIDDEN,
            None,
        ),
    ];
    for (name, body, want, field) in cases {
        let (status, resp) = post(&f.hh01, body).await;
        assert_eq!(status, want, "{name}: {resp}");
        if let Some(field) = field {
            assert_eq!(resp["error"]["field"], field, "{name}: {resp}");
        }
    }
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/sync/scan-stats",
        Some(ADMIN),
        serde_json::to_vec(&good).unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the office token is not a device's"
    );
    // Nothing of the refused requests was stored; the good one is, and a stale resend changes nothing.
    let report = |query: &'static str| {
        let app = f.app.clone();
        async move {
            call(
                &app,
                "GET",
                &format!("/v1/reports/pick-accuracy?{query}"),
                Some(ADMIN),
                vec![],
            )
            .await
        }
    };
    let day = "site=WH1&since=2026-11-27T00:00:00Z&until=2026-11-28T00:00:00Z";
    let (status, body) = report(day).await;
    assert_eq!(
        (status, body["operators"].clone()),
        (StatusCode::OK, json!([]))
    );
    let (status, resp) = post(&f.hh01, edit(|v| v["stats"][0]["count"] = json!(5))).await;
    assert_eq!((status, resp), (StatusCode::OK, json!({"stored": 2})));
    // The earlier total (2) arriving late.
    let (status, resp) = post(&f.hh01, serde_json::to_vec(&good).unwrap()).await;
    assert_eq!((status, resp), (StatusCode::OK, json!({"stored": 2})));
    let (status, body) = report(day).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ops = body["operators"].as_array().unwrap();
    assert_eq!(ops.len(), 2, "{body}");
    assert_eq!(ops[0]["operator"], Value::Null);
    assert_eq!(ops[0]["refused"]["undecodable"], 1);
    assert_eq!(ops[1]["operator"], "anna");
    assert_eq!(ops[1]["refused"]["over_pick"], 5, "the largest total wins");
    assert_eq!(ops[1]["mistakes"], 5);
    // The report's parameters.
    for (query, field) in [
        (
            "since=2026-11-27T00:00:00Z&until=2026-11-28T00:00:00Z",
            "site",
        ),
        ("site=WH1&until=2026-11-28T00:00:00Z", "since"),
        ("site=WH1&since=2026-11-27T00:00:00Z", "until"),
        (
            "site=WH1&since=2026-11-28T00:00:00Z&until=2026-11-27T00:00:00Z",
            "until",
        ),
        (
            "site=WH1&since=2024-11-27T00:00:00Z&until=2026-11-27T00:00:00Z",
            "until",
        ),
        (
            "site=WH1&since=yesterday&until=2026-11-27T00:00:00Z",
            "since",
        ),
        (
            "site=WH1&since=2026-11-27T00:00:00Z&until=2026-11-28T00:00:00Z&colour=red",
            "colour",
        ),
    ] {
        let (status, body) = report(query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}
