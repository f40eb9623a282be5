//! `GET /v1/sync/stock`, the device's site stock snapshot, through `app(state)` with `tower::ServiceExt::oneshot`,
//! on both store backends: every case runs once on sled and once on PostgreSQL (a throw-away cluster from
//! `pg/mod.rs`; PostgreSQL missing is a failure that says how to install it).
//!
//! Devices `hh-01` and `hh-02` are enrolled at site WH1, `rf-01` at WH2.
//! - credentials: the same 401s as pull, 401 `revoked`, 403 for another site;
//! - a device sees only its own site (and the location it asks for), zero rows omitted;
//! - `acked_through` is the asking device's own high-water mark;
//! - malformed queries are 400 naming the parameter.

mod pg;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use dockhand_protocol::sync::{Movement, MovementKind, MovementSource, PushRequest, StockSnapshot};
use dockhand_server::{app, enroll, AdminToken, AppState, Devices, PgStore, SledStore, Store};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const ADMIN: &str = "admin-secret";
const GTIN: &str = "09506000134352";

struct Fixture {
    backend: Backend,
    _dir: tempfile::TempDir,
    _db: Option<pg::TestDb>,
    app: Router,
    hh01: String,
    hh02: String,
    rf01: String,
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sled,
    Postgres,
}

fn fixture(backend: Backend) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let devices_dir = dir.path().join("devices");
    let hh01 = enroll(&devices_dir, "hh-01", "WH1", false).unwrap();
    let hh02 = enroll(&devices_dir, "hh-02", "WH1", false).unwrap();
    let rf01 = enroll(&devices_dir, "rf-01", "WH2", false).unwrap();
    let (store, db): (Arc<dyn Store>, _) = match backend {
        Backend::Sled => (
            Arc::new(SledStore::open(&dir.path().join("sled"), 8 << 20).unwrap()),
            None,
        ),
        Backend::Postgres => {
            let db = pg::database();
            let store = PgStore::open(&db.url(), 4).expect("open the PostgreSQL store");
            (Arc::new(store), Some(db))
        }
    };
    let devices = Arc::new(Devices::open(&devices_dir).unwrap());
    let state = AppState::new(store, devices, AdminToken::from_secret(ADMIN));
    Fixture {
        backend,
        _dir: dir,
        _db: db,
        app: app(state),
        hh01,
        hh02,
        rf01,
    }
}

fn movement(device: &str, seq: u64, from: Option<&str>, to: Option<&str>, qty: u64) -> Movement {
    let kind = match (from, to) {
        (None, _) => MovementKind::Receive,
        (_, None) => MovementKind::Ship,
        _ => MovementKind::Move,
    };
    Movement {
        device_id: device.into(),
        seq,
        at: time::macros::datetime!(2026-11-26 10:15:00 UTC),
        kind,
        gtin: GTIN.into(),
        lot: Some("L1".into()),
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

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
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

impl Fixture {
    async fn push(&self, token: &str, device: &str, movements: Vec<Movement>) {
        let body = serde_json::to_vec(&PushRequest {
            device_id: device.into(),
            movements,
            backlog: None,
        })
        .unwrap();
        let (status, resp) = call(&self.app, "POST", "/v1/sync/push", Some(token), body).await;
        assert_eq!(status, StatusCode::OK, "push of {device}: {resp}");
    }

    async fn snapshot(&self, token: &str, query: &str) -> StockSnapshot {
        let uri = format!("/v1/sync/stock{query}");
        let (status, body) = call(&self.app, "GET", &uri, Some(token), vec![]).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        serde_json::from_value(body).unwrap()
    }
}

/// `(location, qty)` of each row.
fn rows(s: &StockSnapshot) -> Vec<(&str, i64)> {
    s.stock
        .iter()
        .map(|r| (r.location.as_str(), r.qty))
        .collect()
}

async fn credentials(f: &Fixture) {
    let b = f.backend;
    let cases: &[(&str, Option<&str>, &str, StatusCode, &str)] = &[
        (
            "missing token",
            None,
            "",
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "wrong token",
            Some("deadbeef"),
            "",
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "admin token is not a device",
            Some(ADMIN),
            "",
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "another site",
            Some(&f.hh01),
            "?site=WH2",
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "WH2 device asks for WH1",
            Some(&f.rf01),
            "?site=WH1",
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "its own site, named",
            Some(&f.hh01),
            "?site=WH1",
            StatusCode::OK,
            "",
        ),
        (
            "its own site, implied",
            Some(&f.hh01),
            "",
            StatusCode::OK,
            "",
        ),
    ];
    for (name, token, query, want, code) in cases {
        let (got, body) = call(
            &f.app,
            "GET",
            &format!("/v1/sync/stock{query}"),
            *token,
            vec![],
        )
        .await;
        assert_eq!(got, *want, "{b:?} {name}: {body}");
        if !code.is_empty() {
            assert_eq!(body["error"]["code"], *code, "{b:?} {name}");
        }
    }
    // A revoked device learns why, as on push and pull.
    let (status, body) = call(
        &f.app,
        "POST",
        "/v1/devices/hh-02/revoke",
        Some(ADMIN),
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(&f.app, "GET", "/v1/sync/stock", Some(&f.hh02), vec![]).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::UNAUTHORIZED, &Value::from("revoked")),
        "{body}"
    );
}

async fn only_its_site(f: &Fixture) {
    let b = f.backend;
    let (a01, a02) = (Some("A-01"), Some("A-02"));
    f.push(
        &f.hh01,
        "hh-01",
        vec![
            movement("hh-01", 1, None, a01, 5),
            movement("hh-01", 2, None, Some("EMPTY"), 2),
            movement("hh-01", 3, Some("EMPTY"), a02, 2),
        ],
    )
    .await;
    f.push(&f.hh02, "hh-02", vec![movement("hh-02", 1, None, a01, 1)])
        .await;
    f.push(&f.rf01, "rf-01", vec![movement("rf-01", 1, None, a01, 100)])
        .await;

    let wh1 = f.snapshot(&f.hh01, "").await;
    assert_eq!(wh1.site, "WH1");
    // hh-02's movement is in (same site), rf-01's is not, and the emptied location is omitted.
    assert_eq!(rows(&wh1), vec![("A-01", 6), ("A-02", 2)], "{b:?}");
    assert_eq!(wh1.stock[0].gtin, GTIN);
    assert_eq!(wh1.stock[0].lot.as_deref(), Some("L1"));
    assert_eq!(f.snapshot(&f.hh02, "").await.stock, wh1.stock);

    let wh2 = f.snapshot(&f.rf01, "").await;
    assert_eq!(
        (wh2.site.as_str(), rows(&wh2)),
        ("WH2", vec![("A-01", 100)]),
        "{b:?}"
    );

    let one = f.snapshot(&f.hh01, "?location=A-02").await;
    assert_eq!(rows(&one), vec![("A-02", 2)], "{b:?}");
    assert!(f
        .snapshot(&f.hh01, "?location=EMPTY")
        .await
        .stock
        .is_empty());
    assert!(f
        .snapshot(&f.hh01, "?location=NOWHERE")
        .await
        .stock
        .is_empty());
}

async fn acked_through_is_the_devices_own(f: &Fixture) {
    let b = f.backend;
    assert_eq!(
        f.snapshot(&f.hh01, "").await.acked_through,
        0,
        "{b:?}: nothing pushed yet"
    );
    f.push(
        &f.hh01,
        "hh-01",
        (1..=3)
            .map(|s| movement("hh-01", s, None, Some("A-01"), 1))
            .collect(),
    )
    .await;
    f.push(
        &f.hh02,
        "hh-02",
        (1..=5)
            .map(|s| movement("hh-02", s, None, Some("A-01"), 1))
            .collect(),
    )
    .await;
    let hh01 = f.snapshot(&f.hh01, "").await;
    assert_eq!(
        (hh01.acked_through, rows(&hh01)),
        (3, vec![("A-01", 8)]),
        "{b:?}"
    );
    assert_eq!(f.snapshot(&f.hh02, "").await.acked_through, 5, "{b:?}");
    assert_eq!(f.snapshot(&f.rf01, "").await.acked_through, 0, "{b:?}");
    // A location filter does not change the figure.
    assert_eq!(
        f.snapshot(&f.hh01, "?location=ZZ").await.acked_through,
        3,
        "{b:?}"
    );
}

async fn garbage_query_is_400(f: &Fixture) {
    let b = f.backend;
    let cases: &[(&str, &str)] = &[
        ("?colour=red", "colour"),
        ("?location=A/01", "location"),
        ("?location=%20A-01", "location"),
        ("?location=A&location=B", "location"),
        ("?site=not%20a%20site", "site"),
        ("?cursor=1", "cursor"),
    ];
    for (query, field) in cases {
        let (status, body) = call(
            &f.app,
            "GET",
            &format!("/v1/sync/stock{query}"),
            Some(&f.hh01),
            vec![],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{b:?} {query}: {body}");
        assert_eq!(body["error"]["field"], *field, "{b:?} {query}: {body}");
    }
}

/// One test per case and backend. The PostgreSQL client is blocking, so the fixture is built and dropped outside
/// the runtime that drives the router.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sled_store {
            $(#[test] fn $case() { super::run(super::Backend::Sled, |f| Box::pin(super::$case(f))) })*
        }
        mod postgres_store {
            $(#[test] fn $case() { super::run(super::Backend::Postgres, |f| Box::pin(super::$case(f))) })*
        }
    };
}

fn run(
    b: Backend,
    case: impl for<'a> FnOnce(
        &'a Fixture,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>,
) {
    let f = fixture(b);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(case(&f));
    drop(f);
}

on_both_backends!(
    credentials,
    only_its_site,
    acked_through_is_the_devices_own,
    garbage_query_is_400
);
