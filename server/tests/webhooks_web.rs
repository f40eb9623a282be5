//! The dashboard's Webhooks page (`GET /webhooks`) through `app(state)`, logged in with a session minted by
//! [`SessionKey`]: endpoints with their counts and last error, the failing deliveries, everything escaped.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use dockhand_server::web::{SessionKey, SESSION_COOKIE};
use dockhand_server::webhooks::{Attempt, Endpoint, EventKind, NewDelivery};
use dockhand_server::{app, AdminToken, AppState, Devices, SledStore, Store};
use http_body_util::BodyExt;
use time::OffsetDateTime;
use tower::ServiceExt;

const ADMIN: &str = "admin-secret";
const EVIL: &str = "<script>alert(1)</script>";

async fn get(app: &axum::Router, uri: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::get(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn webhooks_page_lists_endpoints_and_failing_deliveries_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(&dir.path().join("sled"), 8 << 20).unwrap());
    let devices = Arc::new(Devices::open(&dir.path().join("devices")).unwrap());
    let now = OffsetDateTime::now_utc();
    let hooks = store.webhooks().unwrap();
    hooks
        .put_endpoint(&Endpoint {
            id: "wh_erp".into(),
            url: format!("https://erp.example.com/in?x={EVIL}"),
            events: vec![EventKind::MovementApplied, EventKind::ReceiptClosed],
            description: EVIL.into(),
            secret: "c".repeat(64),
            created_at: now,
        })
        .unwrap();
    let from = hooks.cursors().unwrap().unwrap();
    let new = |key: &str| NewDelivery {
        endpoint: "wh_erp".into(),
        key: key.into(),
        kind: EventKind::MovementApplied,
        events: 3,
        body: "{}".into(),
    };
    hooks
        .enqueue(
            from,
            from,
            &[
                new("movements:1-3"),
                new("movements:4-6"),
                new("movements:7-9"),
            ],
            now,
        )
        .unwrap();
    hooks.record_attempt(1, &Attempt::Delivered, now).unwrap();
    let error = format!("HTTP 500 {EVIL}");
    hooks
        .record_attempt(
            2,
            &Attempt::Retry {
                error: error.clone(),
                next: now,
            },
            now,
        )
        .unwrap();
    hooks
        .record_attempt(
            3,
            &Attempt::GiveUp {
                error: "timed out after 10 s".into(),
            },
            now,
        )
        .unwrap();

    let state = AppState::new(store.clone(), devices, AdminToken::from_secret(ADMIN));
    let app = app(state);
    let key = SessionKey::new(&AdminToken::from_secret(ADMIN));
    let cookie = format!("{SESSION_COOKIE}={}", key.issue(now));

    let (status, page) = get(&app, "/webhooks", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let expected: &[&str] = &[
        r#"id="nav-webhooks""#,
        r#"data-test="webhook-row" data-id="wh_erp""#,
        r#"<td data-test="pending">1</td>"#,
        r#"<td data-test="failed">1</td>"#,
        r#"<td data-test="delivered">1</td>"#,
        "movement.applied, receipt.closed",
        r#"data-test="failing-row" data-id="3" data-endpoint="wh_erp" data-status="failed""#,
        r#"data-test="failing-row" data-id="2" data-endpoint="wh_erp" data-status="retrying""#,
        "<code>movements:4-6</code>",
        "timed out after 10 s",
        "HTTP 500 &lt;script&gt;alert(1)&lt;/script&gt;",
    ];
    for want in expected {
        assert!(page.contains(want), "missing {want:?} in the page");
    }
    assert!(!page.contains(EVIL), "stored text is escaped");
    assert!(!page.contains(&"c".repeat(64)), "the secret is never shown");

    let cases: &[(&str, Option<&str>, StatusCode)] = &[
        ("/webhooks?x=1", Some(&cookie), StatusCode::BAD_REQUEST),
        ("/webhooks", None, StatusCode::SEE_OTHER),
    ];
    for (uri, cookie, want) in cases {
        assert_eq!(
            get(&app, uri, *cookie).await.0,
            *want,
            "{uri} cookie {}",
            cookie.is_some()
        );
    }

    // Without endpoints the page says so.
    assert!(hooks.delete_endpoint("wh_erp").unwrap());
    let (_, page) = get(&app, "/webhooks", Some(&cookie)).await;
    assert!(page.contains(r#"id="webhooks-empty""#) && page.contains(r#"id="failing-empty""#));
}
