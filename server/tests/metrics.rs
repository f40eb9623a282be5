//! `GET /metrics` through `app(state)` with `tower::ServiceExt::oneshot` (no socket), and the two store methods it
//! reads on both backends.
//!
//! - auth: only the admin token opens it; the answer is the Prometheus text format 0.0.4;
//! - `push_outcomes_table`: one push per line (applied, resent, gap, conflict, invalid, another device's batch,
//!   no credential, bad JSON), each followed by the counters it must have moved, read both from `AppState` and from
//!   the exposition;
//! - the scrape-time gauges: devices enrolled/online/backlog, open discrepancies by kind, store size;
//! - the exposition is well-formed text format: every sample under a declared family, values numbers;
//! - `postgres_store_counts_and_size`: the same two store methods on a throw-away PostgreSQL cluster.

mod pg;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use dockhand_protocol::sync::{Movement, MovementKind, MovementSource, PushRequest};
use dockhand_server::metrics::Ingest;
use dockhand_server::store::DiscrepancyKind;
use dockhand_server::{app, enroll, AdminToken, AppState, Devices, PgStore, SledStore, Store};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const ADMIN: &str = "admin-secret";
const GTIN: &str = "09506000134352";

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
    app: Router,
    hh01: String,
    hh02: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let devices_dir = dir.path().join("devices");
    let hh01 = enroll(&devices_dir, "hh-01", "WH1", false).unwrap();
    let hh02 = enroll(&devices_dir, "hh-02", "WH1", false).unwrap();
    enroll(&devices_dir, "rf-01", "WH2", false).unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(&dir.path().join("sled"), 8 << 20).unwrap());
    let devices = Arc::new(Devices::open(&devices_dir).unwrap());
    let state = AppState::new(store, devices, AdminToken::from_secret(ADMIN));
    Fixture {
        _dir: dir,
        app: app(state.clone()),
        state,
        hh01,
        hh02,
    }
}

/// Sends a request; returns the status, the `Content-Type` and the body as text.
async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, String, String) {
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
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

impl Fixture {
    async fn scrape(&self) -> String {
        let (status, content_type, text) =
            send(&self.app, "GET", "/metrics", Some(ADMIN), vec![]).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        check_exposition(&text);
        text
    }

    async fn push(&self, token: Option<&str>, body: Vec<u8>) -> StatusCode {
        send(&self.app, "POST", "/v1/sync/push", token, body)
            .await
            .0
    }
}

fn mv(device: &str, seq: u64, kind: MovementKind, qty: u64) -> Movement {
    let (from, to) = match kind {
        MovementKind::Receive | MovementKind::Count => (None, Some("A-01")),
        MovementKind::Pick | MovementKind::Ship => (Some("A-01"), None),
        _ => (Some("A-01"), Some("B-01")),
    };
    Movement {
        device_id: device.into(),
        seq,
        at: time::macros::datetime!(2026-11-26 10:00 UTC) + time::Duration::seconds(seq as i64),
        kind,
        gtin: GTIN.into(),
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

fn batch(device: &str, movements: Vec<Movement>, backlog: Option<u64>) -> Vec<u8> {
    serde_json::to_vec(&PushRequest {
        device_id: device.into(),
        movements,
        backlog,
    })
    .unwrap()
}

/// Checks the text format 0.0.4 line by line: HELP and TYPE before their samples, each family declared once,
/// every sample `name{label="value",...} number` with a declared name (histograms: `_bucket`, `_sum`, `_count`).
fn check_exposition(text: &str) {
    let mut families: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(
                families.iter().all(|(n, _)| n != name),
                "{name} described twice"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            families.push((name.into(), kind.into()));
            continue;
        }
        assert!(!line.starts_with('#'), "stray comment {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("a value");
        assert!(value.parse::<f64>().is_ok(), "{line}: value");
        let name = series.split('{').next().unwrap();
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
            "{line}: name"
        );
        let (family, kind) = families.last().expect("a sample before any TYPE");
        let ok = match kind.as_str() {
            "histogram" => ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name.strip_suffix(s) == Some(family)),
            _ => name == family,
        };
        assert!(ok, "{line}: outside its family {family}");
        if let Some(labels) = series.strip_prefix(name).and_then(|l| l.strip_prefix('{')) {
            let labels = labels.strip_suffix('}').expect("closing brace");
            assert!(labels.contains("=\""), "{line}: labels");
        }
    }
    assert!(!families.is_empty());
}

/// The value of the sample `series` (name with labels, exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn only_the_admin_token_opens_metrics() {
    let f = fixture();
    for token in [None, Some("wrong"), Some(f.hh01.as_str())] {
        let (status, content_type, body) = send(&f.app, "GET", "/metrics", token, vec![]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let text = f.scrape().await;
    let version = format!(
        "dockhand_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &version), Some(1.0), "{text}");
}

/// One push and the counters it moves. `movements`: `(kind, result, count)` added by this line.
struct Case {
    what: &'static str,
    token: fn(&Fixture) -> Option<String>,
    body: fn() -> Vec<u8>,
    status: StatusCode,
    movements: &'static [(MovementKind, Ingest, u64)],
}

#[tokio::test]
async fn push_outcomes_table() {
    use MovementKind::{Count, Pick, Receive};
    let hh01 = |f: &Fixture| Some(f.hh01.clone());
    let cases = [
        Case {
            what: "a first batch is applied",
            token: hh01,
            body: || {
                batch(
                    "hh-01",
                    vec![mv("hh-01", 1, Receive, 5), mv("hh-01", 2, Pick, 1)],
                    Some(2),
                )
            },
            status: StatusCode::OK,
            movements: &[(Receive, Ingest::Applied, 1), (Pick, Ingest::Applied, 1)],
        },
        Case {
            what: "a resend after a lost answer: 2 again (duplicate) and 3 (new)",
            token: hh01,
            body: || {
                batch(
                    "hh-01",
                    vec![mv("hh-01", 2, Pick, 1), mv("hh-01", 3, Count, 4)],
                    Some(0),
                )
            },
            status: StatusCode::OK,
            movements: &[(Pick, Ingest::Duplicate, 1), (Count, Ingest::Applied, 1)],
        },
        Case {
            what: "a batch past high-water + 1",
            token: hh01,
            body: || batch("hh-01", vec![mv("hh-01", 9, Receive, 1)], None),
            status: StatusCode::CONFLICT,
            movements: &[(Receive, Ingest::Gap, 1)],
        },
        Case {
            what: "seq 1 again with other content",
            token: hh01,
            body: || batch("hh-01", vec![mv("hh-01", 1, Receive, 6)], None),
            status: StatusCode::CONFLICT,
            movements: &[(Receive, Ingest::Conflict, 1)],
        },
        Case {
            what: "an invalid movement refuses the batch",
            token: hh01,
            body: || {
                batch(
                    "hh-01",
                    vec![mv("hh-01", 4, Receive, 1), mv("hh-01", 5, Pick, 0)],
                    None,
                )
            },
            status: StatusCode::BAD_REQUEST,
            movements: &[(Receive, Ingest::Rejected, 1), (Pick, Ingest::Rejected, 1)],
        },
        Case {
            what: "another device's batch",
            token: |f| Some(f.hh02.clone()),
            body: || batch("hh-01", vec![mv("hh-01", 4, Receive, 1)], None),
            status: StatusCode::FORBIDDEN,
            movements: &[(Receive, Ingest::Rejected, 1)],
        },
        Case {
            what: "no credential: counted as a request, no movement (no site to count it for)",
            token: |_| None,
            body: || batch("hh-01", vec![mv("hh-01", 4, Receive, 1)], None),
            status: StatusCode::UNAUTHORIZED,
            movements: &[],
        },
        Case {
            what: "not JSON",
            token: hh01,
            body: || b"{\"device_id\": ".to_vec(),
            status: StatusCode::BAD_REQUEST,
            movements: &[],
        },
    ];
    let f = fixture();
    let metrics = f.state.metrics();
    let results = [
        Ingest::Applied,
        Ingest::Duplicate,
        Ingest::Conflict,
        Ingest::Gap,
        Ingest::Rejected,
        Ingest::Failed,
    ];
    let kinds = [Receive, Pick, Count];
    let mut want_movements = std::collections::HashMap::new();
    let mut want_status = std::collections::HashMap::new();
    for (i, case) in cases.iter().enumerate() {
        let token = (case.token)(&f);
        let status = f.push(token.as_deref(), (case.body)()).await;
        assert_eq!(status, case.status, "{}", case.what);
        *want_status.entry(status.as_u16()).or_insert(0u64) += 1;
        for (kind, result, n) in case.movements {
            *want_movements.entry((*kind, *result)).or_insert(0u64) += n;
        }
        for kind in kinds {
            for result in results {
                let want = want_movements.get(&(kind, result)).copied().unwrap_or(0);
                assert_eq!(
                    metrics.movements("WH1", kind, result),
                    want,
                    "after {:?}: {kind:?} {result:?}",
                    case.what
                );
            }
        }
        for (status, n) in &want_status {
            assert_eq!(
                metrics.push_requests(*status),
                *n,
                "after {:?}: {status}",
                case.what
            );
        }
        // The exposition says the same, and the histogram saw every request.
        let text = f.scrape().await;
        for ((kind, result), n) in &want_movements {
            let series = format!(
                "dockhand_movements_ingested_total{{site=\"WH1\",kind=\"{}\",result=\"{}\"}}",
                kind.as_str(),
                result.as_str()
            );
            assert_eq!(
                sample(&text, &series),
                Some(*n as f64),
                "{series} in\n{text}"
            );
        }
        for (status, n) in &want_status {
            let series = format!("dockhand_push_requests_total{{status=\"{status}\"}}");
            assert_eq!(sample(&text, &series), Some(*n as f64), "{series}");
        }
        assert_eq!(
            sample(&text, "dockhand_push_duration_seconds_count"),
            Some((i + 1) as f64)
        );
        assert_eq!(
            sample(&text, "dockhand_push_duration_seconds_bucket{le=\"+Inf\"}"),
            Some((i + 1) as f64)
        );
    }
    // Nothing was counted for another site.
    assert_eq!(metrics.movements("WH2", Receive, Ingest::Applied), 0);
}

#[tokio::test]
async fn scrape_reads_devices_discrepancies_and_the_store() {
    let f = fixture();
    let before = f.scrape().await;
    // Nobody has synced: every device enrolled, none online, no backlog known.
    assert_eq!(
        sample(&before, "dockhand_devices_enrolled{site=\"WH1\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(&before, "dockhand_devices_enrolled{site=\"WH2\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&before, "dockhand_devices_online{site=\"WH1\"}"),
        Some(0.0)
    );
    assert!(
        !before.contains("dockhand_device_backlog_movements{"),
        "{before}"
    );
    assert!(!before.contains("dockhand_discrepancies_open{"), "{before}");
    let size_before = sample(&before, "dockhand_store_size_bytes").unwrap();
    assert!(size_before > 0.0);
    assert_eq!(
        sample(&before, "dockhand_metrics_source_up{source=\"store\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&before, "dockhand_metrics_source_up{source=\"devices\"}"),
        Some(1.0)
    );

    // hh-01 receives an item the server does not know (an unknown_item discrepancy per movement) and reports a
    // backlog of 7 (this batch of 3 included, so 4 are left once it is acknowledged).
    let movements = (1..=3)
        .map(|s| mv("hh-01", s, MovementKind::Receive, 2))
        .collect();
    assert_eq!(
        f.push(Some(&f.hh01), batch("hh-01", movements, Some(7)))
            .await,
        StatusCode::OK
    );
    let after = f.scrape().await;
    assert_eq!(
        sample(&after, "dockhand_devices_online{site=\"WH1\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, "dockhand_devices_online{site=\"WH2\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &after,
            "dockhand_device_backlog_movements{device=\"hh-01\",site=\"WH1\"}"
        ),
        Some(4.0)
    );
    assert!(after
        .contains("dockhand_device_last_seen_timestamp_seconds{device=\"hh-01\",site=\"WH1\"} "));
    let store = f.state.store();
    let open = store.open_discrepancy_counts().unwrap();
    let unknown_items = open
        .iter()
        .find(|c| c.site == "WH1" && c.kind == DiscrepancyKind::UnknownItem)
        .map_or(0, |c| c.open);
    assert!(unknown_items > 0, "{open:?}");
    assert_eq!(
        sample(
            &after,
            "dockhand_discrepancies_open{site=\"WH1\",kind=\"unknown_item\"}"
        ),
        Some(unknown_items as f64)
    );
    assert!(sample(&after, "dockhand_store_size_bytes").unwrap() >= size_before);

    // With a zero window, nobody is online any more.
    let strict = app(f.state.clone().with_offline_after(Duration::ZERO));
    let (_, _, text) = send(&strict, "GET", "/metrics", Some(ADMIN), vec![]).await;
    assert_eq!(
        sample(&text, "dockhand_devices_online{site=\"WH1\"}"),
        Some(0.0)
    );
}

#[test]
fn postgres_store_counts_and_size() {
    let db = pg::database();
    let store = PgStore::open(&db.url(), 2).expect("open the PostgreSQL store");
    assert!(store.size_on_disk().unwrap() > 0);
    assert_eq!(store.open_discrepancy_counts().unwrap(), vec![]);
    let movements: Vec<Movement> = (1..=3)
        .map(|s| mv("hh-01", s, MovementKind::Receive, 2))
        .collect();
    store.push("WH1", "hh-01", &movements).unwrap();
    store
        .push("WH2", "rf-01", &[mv("rf-01", 1, MovementKind::Receive, 2)])
        .unwrap();
    let mut counts = store.open_discrepancy_counts().unwrap();
    counts.sort_by(|a, b| a.site.cmp(&b.site));
    // The counts are what the records say, per site and kind.
    let all = store.discrepancies(&Default::default()).unwrap();
    assert!(!all.is_empty());
    for c in &counts {
        let want = all
            .iter()
            .filter(|d| d.site == c.site && d.kind == c.kind)
            .count() as u64;
        assert_eq!(c.open, want, "{c:?}");
    }
    assert_eq!(counts.iter().map(|c| c.open).sum::<u64>(), all.len() as u64);
    // A resolved one is no longer counted.
    let first = &all[0];
    store
        .resolve_discrepancy(
            first.id,
            &dockhand_server::store::Resolution::Accepted {
                reason: "checked".into(),
            },
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
    let total: u64 = store
        .open_discrepancy_counts()
        .unwrap()
        .iter()
        .map(|c| c.open)
        .sum();
    assert_eq!(total, all.len() as u64 - 1);
}
