//! The dashboard's devices, discrepancies, receipts, pick-list and overview pages and their live streams (issue 7,
//! part 2), through `app(state)` with `tower::ServiceExt::oneshot`, logged in with a session minted by the
//! framework's own [`SessionKey`].
//!
//! Every test gets a fresh sled store seeded by [`seed`] (sites WH1 and WH2; an ASN received over, with its pallet;
//! a pick list picked on one line and shorted on the other; negative stock; a reference with markup) and three
//! devices: hh-01 (WH1, seen now, agent 0.1.0, backlog 4), hh-02 (WH1, never seen) and rf-01 (WH2, seen an hour
//! ago by a client whose `User-Agent` carries markup).
//!
//! - `pages_show_the_seeded_data`: one line per (page, row, attribute or cell) expected;
//! - revoke and resolve through the pages, with and without a CSRF token; comments; escaping of stored text;
//! - the live streams: a device turning offline, a new discrepancy;
//! - CSV of every table; garbage in paths and parameters is a 4xx page, never a panic;
//! - the agent version from `User-Agent` in `GET /v1/devices`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use dockhand_protocol::sync::{
    Asn, AsnLine, AsnPallet, DocStatus, Item, Location, Movement, MovementKind, MovementSource,
    PickLine, PickList,
};
use dockhand_server::store::{DiscrepancyFilter, DiscrepancyKind, DiscrepancyStatus, Site};
use dockhand_server::web::{SessionKey, SESSION_COOKIE};
use dockhand_server::{app, enroll, AdminToken, AppState, Devices, SledStore, StockFilter, Store};
use http_body_util::BodyExt;
use time::OffsetDateTime;
use tower::ServiceExt;

const ADMIN: &str = "admin-secret";
const G1: &str = "09506000134352";
const G2: &str = "05901234123457";
const SSCC: &str = "106141411234567897";
const EVIL: &str = "<script>alert(1)</script>";
const EVIL_ATTR: &str = "\"><img src=x onerror=alert(1)>";

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
    app: Router,
    store: Arc<dyn Store>,
    devices: Arc<Devices>,
    cookie: String,
    csrf: String,
    hh01: String,
}

fn fixture_with(offline_after: Duration) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let devices_dir = dir.path().join("devices");
    let hh01 = enroll(&devices_dir, "hh-01", "WH1", false).unwrap();
    enroll(&devices_dir, "hh-02", "WH1", false).unwrap();
    enroll(&devices_dir, "rf-01", "WH2", false).unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(&dir.path().join("sled"), 8 << 20).unwrap());
    let devices = Arc::new(Devices::open(&devices_dir).unwrap());
    let state = AppState::new(
        store.clone(),
        devices.clone(),
        AdminToken::from_secret(ADMIN),
    )
    .with_offline_after(offline_after);
    let key = SessionKey::new(&AdminToken::from_secret(ADMIN));
    let now = OffsetDateTime::now_utc();
    let value = key.issue(now);
    let csrf = key.verify(&value, now).unwrap().csrf_token().to_string();
    Fixture {
        _dir: dir,
        app: app(state.clone()),
        state,
        store,
        devices,
        cookie: format!("{SESSION_COOKIE}={value}"),
        csrf,
        hh01,
    }
}

fn fixture() -> Fixture {
    let f = fixture_with(Duration::from_secs(120));
    seed(&f);
    f
}

fn movement(seq: u64, kind: MovementKind, edit: impl FnOnce(&mut Movement)) -> Movement {
    let mut m = Movement {
        device_id: "hh-01".into(),
        seq,
        at: OffsetDateTime::now_utc() - time::Duration::minutes(30 - seq as i64),
        kind,
        gtin: G1.into(),
        lot: None,
        expiry: None,
        serials: vec![],
        qty: 1,
        from_location: None,
        to_location: None,
        sscc: None,
        reference: None,
        operator: None,
        source: MovementSource::Manual,
    };
    edit(&mut m);
    m
}

/// See the module docs.
fn seed(f: &Fixture) {
    let s = &f.store;
    for code in ["WH1", "WH2"] {
        s.put_site(&Site {
            code: code.into(),
            name: String::new(),
            active: true,
        })
        .unwrap();
    }
    let item = |gtin: &str| Item {
        gtin: gtin.into(),
        description: format!("item {EVIL}"),
        unit: "EA".into(),
        lot_tracked: false,
        expiry_tracked: false,
        serial_tracked: false,
        active: true,
        unit_cost: None,
    };
    s.put_items(&[item(G1), item(G2)]).unwrap();
    let loc = |code: &str| Location {
        code: code.into(),
        gln: None,
        zone: None,
        active: true,
    };
    s.put_locations("WH1", &[loc("DOCK"), loc("A-01"), loc("B-01")])
        .unwrap();
    let line = |gtin: &str, lot: Option<&str>, qty| AsnLine {
        gtin: gtin.into(),
        lot: lot.map(Into::into),
        qty,
    };
    s.put_asn(&Asn {
        id: "ASN-1".into(),
        site: "WH1".into(),
        supplier: Some(format!("Acme {EVIL}")),
        expected_on: Some("2026-11-27".into()),
        lines: vec![line(G1, None, 10)],
        pallets: vec![AsnPallet {
            sscc: SSCC.into(),
            lines: vec![line(G2, Some("P1"), 5)],
        }],
        status: DocStatus::Open,
    })
    .unwrap();
    s.put_asn(&Asn {
        id: "ASN-2".into(),
        site: "WH1".into(),
        supplier: None,
        expected_on: None,
        lines: vec![line(G1, None, 3)],
        pallets: vec![],
        status: DocStatus::Open,
    })
    .unwrap();
    s.set_asn_status("ASN-2", DocStatus::Closed).unwrap();
    let pick_line = |line, location: &str, gtin: &str, lot: Option<&str>, qty| PickLine {
        line,
        location: location.into(),
        gtin: gtin.into(),
        lot: lot.map(Into::into),
        qty,
    };
    s.put_pick_list(&PickList {
        id: "PL-1".into(),
        site: "WH1".into(),
        device: Some("hh-01".into()),
        zone: None,
        lines: vec![
            pick_line(1, "A-01", G1, None, 2),
            pick_line(2, "B-01", G2, Some("P1"), 3),
        ],
        status: DocStatus::Open,
    })
    .unwrap();
    use MovementKind::*;
    let batch = vec![
        movement(1, Receive, |m| {
            m.to_location = Some("DOCK".into());
            m.qty = 12;
            m.reference = Some("ASN-1".into());
        }),
        movement(2, Receive, |m| {
            m.to_location = Some("DOCK".into());
            m.gtin = G2.into();
            m.lot = Some("P1".into());
            m.qty = 5;
            m.sscc = Some(SSCC.into());
            m.reference = Some("ASN-1".into());
        }),
        movement(3, Move, |m| {
            m.from_location = Some("DOCK".into());
            m.to_location = Some("A-01".into());
            m.qty = 4;
        }),
        movement(4, Pick, |m| {
            m.from_location = Some("A-01".into());
            m.qty = 2;
            m.reference = Some("PL-1".into());
        }),
        movement(5, Pick, |m| {
            m.from_location = Some("B-01".into());
            m.gtin = G2.into();
            m.lot = Some("P1".into());
            m.reference = Some("PL-1".into());
        }),
        movement(6, Count, |m| {
            m.to_location = Some("B-01".into());
            m.gtin = G2.into();
            m.lot = Some("P1".into());
            m.qty = 0;
            m.reference = Some("PL-1".into());
        }),
        movement(7, Pick, |m| {
            m.from_location = Some("A-01".into());
            m.qty = 5;
        }),
    ];
    s.push("WH1", "hh-01", &batch).unwrap();
    let evil = movement(1, Receive, |m| {
        m.device_id = "rf-01".into();
        m.to_location = Some("GATE".into());
        m.reference = Some(EVIL.into());
    });
    s.push("WH2", "rf-01", &[evil]).unwrap();
    let now = OffsetDateTime::now_utc();
    f.devices
        .touch_agent("hh-01", now, Some(4), Some("dockhand-agent/0.1.0"))
        .unwrap();
    f.devices
        .touch_agent(
            "rf-01",
            now - time::Duration::hours(1),
            Some(0),
            Some(&format!("dockhand-agent/{EVIL_ATTR}")),
        )
        .unwrap();
}

/// An answer: status, `Location`, `Content-Type` and the body as text.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    location: Option<String>,
    content_type: String,
    body: String,
}

/// What a form post carries as its CSRF token.
#[derive(Debug, Clone, Copy)]
enum Csrf {
    Valid,
    Missing,
    Wrong,
}

impl Fixture {
    async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let header = |name| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let (location, content_type) = (
            header(header::LOCATION),
            header(header::CONTENT_TYPE).unwrap_or_default(),
        );
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            location,
            content_type,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        let req = Request::get(uri)
            .header(header::COOKIE, &self.cookie)
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    /// A page that must render: 200 HTML.
    async fn page(&self, uri: &str) -> String {
        let a = self.get(uri).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.body);
        assert!(a.content_type.starts_with("text/html"), "{uri}");
        a.body
    }

    async fn post(&self, uri: &str, fields: &[(&str, &str)], csrf: Csrf) -> Answer {
        let mut form = form_urlencoded::Serializer::new(String::new());
        match csrf {
            Csrf::Valid => {
                form.append_pair("csrf", &self.csrf);
            }
            Csrf::Wrong => {
                form.append_pair("csrf", &"0".repeat(self.csrf.len()));
            }
            Csrf::Missing => {}
        }
        for (name, value) in fields {
            form.append_pair(name, value);
        }
        let req = Request::post(uri)
            .header(header::COOKIE, &self.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.finish()))
            .unwrap();
        self.send(req).await
    }

    fn discrepancy_id(&self, kind: DiscrepancyKind, location: &str) -> u64 {
        self.store
            .discrepancies(&DiscrepancyFilter {
                kind: Some(kind),
                ..DiscrepancyFilter::default()
            })
            .unwrap()
            .iter()
            .find(|d| d.location.as_deref() == Some(location))
            .unwrap_or_else(|| panic!("no {kind:?} at {location}"))
            .id
    }
}

/// The `<tr ...>...</tr>` elements of `html` marked `data-test="<test>"`.
fn rows<'a>(html: &'a str, test: &str) -> Vec<&'a str> {
    let marker = format!("data-test=\"{test}\"");
    html.split("<tr")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap_or(""))
        .filter(|r| {
            r.split('>')
                .next()
                .is_some_and(|open| open.contains(&marker))
        })
        .collect()
}

/// The value of attribute `name` on the first tag of `fragment`.
fn attr(fragment: &str, name: &str) -> Option<String> {
    let open = fragment.split('>').next()?;
    let start = open.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(open[start..].split('"').next()?.to_string())
}

/// The text of the cell `data-field="<field>"` of `row`, tags stripped.
fn cell(row: &str, field: &str) -> Option<String> {
    let start = row.find(&format!("data-field=\"{field}\""))?;
    let inner = row[start..].split_once('>')?.1;
    let inner = inner.split("</td>").next()?;
    let mut text = String::new();
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    Some(text.trim().to_string())
}

/// The row of `html` marked `test` whose attribute `key` is `value`.
fn row_by<'a>(html: &'a str, test: &str, key: &str, value: &str) -> &'a str {
    rows(html, test)
        .into_iter()
        .find(|r| attr(&format!("<tr{r}"), key).as_deref() == Some(value))
        .unwrap_or_else(|| panic!("no {test} with {key}={value:?} in {html}"))
}

/// What to find on a page: a row (marked `test`, keyed by an attribute) and, on it, an attribute or a cell.
enum Want {
    Attr(&'static str),
    Cell(&'static str),
}

#[tokio::test]
async fn pages_show_the_seeded_data() {
    let f = fixture();
    use Want::{Attr, Cell};
    // (page, row marker, key attribute, key, what, expected)
    let cases: &[(&str, &str, &str, &str, Want, &str)] = &[
        (
            "/devices",
            "device-row",
            "data-device",
            "hh-01",
            Attr("data-status"),
            "online",
        ),
        (
            "/devices",
            "device-row",
            "data-device",
            "hh-01",
            Cell("version"),
            "0.1.0",
        ),
        (
            "/devices",
            "device-row",
            "data-device",
            "hh-01",
            Cell("backlog"),
            "4",
        ),
        (
            "/devices",
            "device-row",
            "data-device",
            "hh-01",
            Cell("ago"),
            "just now",
        ),
        (
            "/devices",
            "device-row",
            "data-device",
            "hh-02",
            Attr("data-status"),
            "never",
        ),
        (
            "/devices",
            "device-row",
            "data-device",
            "hh-02",
            Cell("version"),
            "unknown",
        ),
        (
            "/devices",
            "device-row",
            "data-device",
            "rf-01",
            Attr("data-status"),
            "offline",
        ),
        (
            "/devices",
            "device-row",
            "data-device",
            "rf-01",
            Cell("ago"),
            "1 h ago",
        ),
        (
            "/devices",
            "device-row",
            "data-device",
            "rf-01",
            Cell("site"),
            "WH2",
        ),
        (
            "/devices?site=WH2",
            "device-row",
            "data-device",
            "rf-01",
            Cell("revoked"),
            "no",
        ),
        (
            "/discrepancies",
            "discrepancy-row",
            "data-kind",
            "asn_over",
            Attr("data-site"),
            "WH1",
        ),
        (
            "/discrepancies",
            "discrepancy-row",
            "data-kind",
            "negative_stock",
            Attr("data-status"),
            "open",
        ),
        (
            "/discrepancies?site=WH2",
            "discrepancy-row",
            "data-kind",
            "unknown_reference",
            Attr("data-site"),
            "WH2",
        ),
        (
            "/discrepancies?kind=asn_short&status=all",
            "discrepancy-row",
            "data-kind",
            "asn_short",
            Attr("data-status"),
            "open",
        ),
        (
            "/receipts",
            "receipt-row",
            "data-id",
            "ASN-1",
            Cell("expected"),
            "15",
        ),
        (
            "/receipts",
            "receipt-row",
            "data-id",
            "ASN-1",
            Cell("received"),
            "17",
        ),
        (
            "/receipts?status=closed",
            "receipt-row",
            "data-id",
            "ASN-2",
            Attr("data-status"),
            "closed",
        ),
        (
            "/receipts/ASN-1",
            "line-row",
            "data-gtin",
            G1,
            Attr("data-fill"),
            "over",
        ),
        (
            "/receipts/ASN-1",
            "line-row",
            "data-gtin",
            G1,
            Cell("difference"),
            "+2",
        ),
        (
            "/receipts/ASN-1",
            "line-row",
            "data-gtin",
            G2,
            Attr("data-fill"),
            "complete",
        ),
        (
            "/receipts/ASN-1",
            "pallet-row",
            "data-sscc",
            SSCC,
            Attr("data-received"),
            "true",
        ),
        (
            "/receipts/ASN-2",
            "line-row",
            "data-gtin",
            G1,
            Cell("fill"),
            "▼ short",
        ),
        (
            "/pick-lists",
            "pick-list-row",
            "data-id",
            "PL-1",
            Cell("assigned"),
            "device hh-01",
        ),
        (
            "/pick-lists",
            "pick-list-row",
            "data-id",
            "PL-1",
            Cell("requested"),
            "5",
        ),
        (
            "/pick-lists",
            "pick-list-row",
            "data-id",
            "PL-1",
            Cell("picked"),
            "3",
        ),
        (
            "/pick-lists",
            "pick-list-row",
            "data-id",
            "PL-1",
            Cell("shorts"),
            "1",
        ),
        (
            "/pick-lists/PL-1",
            "pick-line-row",
            "data-line",
            "1",
            Attr("data-fill"),
            "complete",
        ),
        (
            "/pick-lists/PL-1",
            "pick-line-row",
            "data-line",
            "2",
            Attr("data-fill"),
            "short",
        ),
        (
            "/pick-lists/PL-1",
            "pick-line-row",
            "data-line",
            "2",
            Cell("picked"),
            "1",
        ),
        (
            "/pick-lists/PL-1",
            "pick-line-row",
            "data-line",
            "2",
            Cell("devices"),
            "hh-01",
        ),
        (
            "/overview",
            "hour-row",
            "data-site",
            "WH2",
            Attr("data-count"),
            "1",
        ),
    ];
    for (page, test, key, value, want, expected) in cases {
        let html = f.page(page).await;
        let row = row_by(&html, test, key, value);
        let got = match want {
            Attr(name) => attr(&format!("<tr{row}"), name),
            Cell(field) => cell(row, field),
        };
        assert_eq!(
            got.as_deref(),
            Some(*expected),
            "{page} {test} {key}={value}"
        );
    }
    // Rows a filter leaves out, and counts shown in words.
    let wh2 = f.page("/devices?site=WH2").await;
    assert_eq!(rows(&wh2, "device-row").len(), 1);
    assert!(
        wh2.contains(r#"data-live="/live/devices?site=WH2""#),
        "the stream has the page's filter"
    );
    let devices = f.page("/devices").await;
    assert!(
        devices.contains(r#"<span id="online-count">1</span>"#),
        "{devices}"
    );
    assert!(devices.contains(r#"id="backlog-chart""#));
    assert!(devices.contains(r#"data-live="/live/devices""#));
    let open = f.page("/discrepancies").await;
    let open_rows = rows(&open, "discrepancy-row");
    let all_open = f
        .store
        .discrepancies(&DiscrepancyFilter {
            status: Some(DiscrepancyStatus::Open),
            ..DiscrepancyFilter::default()
        })
        .unwrap();
    assert_eq!(open_rows.len(), all_open.len());
    let overview = f.page("/overview").await;
    let wh1 = rows(&overview, "hour-row")
        .into_iter()
        .filter(|r| attr(&format!("<tr{r}"), "data-site").as_deref() == Some("WH1"))
        .map(|r| {
            attr(&format!("<tr{r}"), "data-count")
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum::<u64>();
    assert_eq!(wh1, 7, "hh-01's seven movements, all in the last half hour");
    assert!(overview.contains(r#"id="movements-WH1""#));
}

#[tokio::test]
async fn detail_pages_show_facts_movements_and_links() {
    let f = fixture();
    let id = f.discrepancy_id(DiscrepancyKind::NegativeStock, "A-01");
    let html = f.page(&format!("/discrepancies/{id}")).await;
    let checks: &[&str] = &[
        r#"id="d-kind" data-kind="negative_stock""#,
        r#"id="d-status" data-status="open""#,
        r#"<dd id="d-expected">0</dd>"#,
        r#"<dd id="d-actual">-3</dd>"#,
        r#"href="/sites/WH1/locations/A-01""#,
        r#"href="/items/09506000134352""#,
        r#"id="resolve-adjust-form""#,
        r#"id="resolve-delta" name="delta" type="number" required step="1" value="3""#,
    ];
    for check in checks {
        assert!(html.contains(check), "{check} in {html}");
    }
    let movements = rows(&html, "movement-row");
    assert_eq!(movements.len(), 1);
    assert_eq!(
        attr(&format!("<tr{}", movements[0]), "data-seq").as_deref(),
        Some("7")
    );
    // An over-receipt links to its receipt page.
    let over = f.store.discrepancies(&DiscrepancyFilter {
        kind: Some(DiscrepancyKind::AsnOver),
        ..DiscrepancyFilter::default()
    });
    let over = over.unwrap()[0].id;
    let html = f.page(&format!("/discrepancies/{over}")).await;
    assert!(html.contains(r#"href="/receipts/ASN-1""#), "{html}");
    let receipt = f.page("/receipts/ASN-1").await;
    assert!(receipt.contains(r#"<dd id="r-status" data-status="open">open</dd>"#));
    assert!(receipt
        .contains("17 of 15 announced units received; 1 lines over, 0 short; 1 of 1 pallets in."));
}

#[tokio::test]
async fn revoke_through_the_page_needs_a_confirmation_and_the_csrf_token() {
    let f = fixture();
    let revoked = |id: &str| f.devices.get(id).unwrap().unwrap().revoked_at.is_some();
    // (CSRF, confirm, status, revoked afterwards)
    let cases: &[(Csrf, bool, StatusCode, bool)] = &[
        (Csrf::Missing, true, StatusCode::FORBIDDEN, false),
        (Csrf::Wrong, true, StatusCode::FORBIDDEN, false),
        (Csrf::Missing, false, StatusCode::FORBIDDEN, false),
        (Csrf::Valid, false, StatusCode::OK, false),
        (Csrf::Valid, true, StatusCode::SEE_OTHER, true),
    ];
    for (csrf, confirm, status, after) in cases {
        let fields: &[(&str, &str)] = if *confirm { &[("confirm", "yes")] } else { &[] };
        let a = f.post("/devices/hh-02/revoke", fields, *csrf).await;
        assert_eq!(a.status, *status, "{csrf:?} confirm={confirm}: {}", a.body);
        assert_eq!(revoked("hh-02"), *after, "{csrf:?} confirm={confirm}");
        match a.status {
            StatusCode::OK => assert!(a.body.contains(r#"id="revoke-confirm""#), "{}", a.body),
            StatusCode::SEE_OTHER => {
                assert_eq!(a.location.as_deref(), Some("/devices?revoked=hh-02"))
            }
            _ => assert!(a.body.contains(r#"id="error""#), "{}", a.body),
        }
    }
    assert!(!revoked("hh-01"));
    let page = f.page("/devices?revoked=hh-02").await;
    assert!(page.contains(r#"id="revoked-notice""#));
    let row = row_by(&page, "device-row", "data-device", "hh-02");
    assert_eq!(cell(row, "revoked").as_deref(), Some("revoked"));
    assert!(!row.contains("revoke-hh-02"), "no second revoke button");
    // The same registry revocation as the API: the device's token is refused from now on.
    let pull = Request::get("/v1/sync/pull")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.hh01))
        .body(Body::empty())
        .unwrap();
    assert_eq!(f.send(pull).await.status, StatusCode::OK, "hh-01 untouched");
    for (uri, status) in [
        ("/devices/nobody/revoke", StatusCode::NOT_FOUND),
        ("/devices/a%20b/revoke", StatusCode::NOT_FOUND),
        ("/devices/%FF/revoke", StatusCode::BAD_REQUEST),
    ] {
        let a = f.post(uri, &[("confirm", "yes")], Csrf::Valid).await;
        assert_eq!(a.status, status, "{uri}: {}", a.body);
        assert!(a.body.contains(r#"id="error""#), "{uri}");
    }
}

#[tokio::test]
async fn resolve_through_the_page_adjusts_stock_like_the_api() {
    let f = fixture();
    let a01 = || {
        f.store
            .stock(&StockFilter {
                site: Some("WH1".into()),
                location: Some("A-01".into()),
                ..StockFilter::default()
            })
            .unwrap()
            .iter()
            .map(|r| r.qty)
            .sum::<i64>()
    };
    assert_eq!(a01(), -3);
    let id = f.discrepancy_id(DiscrepancyKind::NegativeStock, "A-01");
    let uri = format!("/discrepancies/{id}/resolve");
    let adjust = [
        ("type", "adjust"),
        ("location", "A-01"),
        ("gtin", "9506000134352"),
        ("lot", ""),
        ("delta", "3"),
        ("reason", "found 3 behind the rack"),
    ];
    for csrf in [Csrf::Missing, Csrf::Wrong] {
        let a = f.post(&uri, &adjust, csrf).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{csrf:?}");
    }
    // Bad input: a 400 page naming the field, nothing changed.
    let bad: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("type", "adjust"),
                ("location", "A-01"),
                ("gtin", G1),
                ("delta", "abc"),
                ("reason", "x"),
            ],
            "delta",
        ),
        (
            &[
                ("type", "adjust"),
                ("location", "A-01"),
                ("gtin", G1),
                ("delta", "0"),
                ("reason", "x"),
            ],
            "delta",
        ),
        (
            &[
                ("type", "adjust"),
                ("location", "A-01"),
                ("gtin", "123"),
                ("delta", "1"),
                ("reason", "x"),
            ],
            "gtin",
        ),
        (
            &[
                ("type", "adjust"),
                ("gtin", G1),
                ("delta", "1"),
                ("reason", "x"),
            ],
            "location",
        ),
        (
            &[
                ("type", "adjust"),
                ("location", "A-01"),
                ("gtin", G1),
                ("delta", "1"),
            ],
            "reason",
        ),
        (
            &[("type", "accepted"), ("delta", "1"), ("reason", "x")],
            "delta",
        ),
        (&[("type", "undo"), ("reason", "x")], "type"),
        (&[("reason", "x")], "type"),
        (
            &[("type", "accepted"), ("reason", "x"), ("colour", "red")],
            "colour",
        ),
    ];
    for (fields, field) in bad {
        let a = f.post(&uri, fields, Csrf::Valid).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{fields:?}: {}", a.body);
        assert!(
            a.body.contains(field),
            "{fields:?} names {field}: {}",
            a.body
        );
    }
    assert_eq!(a01(), -3, "nothing changed");
    assert_eq!(f.store.high_water("office").unwrap(), 0);

    let a = f.post(&uri, &adjust, Csrf::Valid).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(a.location, Some(format!("/discrepancies/{id}")));
    assert_eq!(a01(), 0, "the adjust movement brought A-01 back to zero");
    let adjustment = f.store.movement("office", 1).unwrap().expect("office #1");
    assert_eq!(
        (
            adjustment.kind,
            adjustment.qty,
            adjustment.to_location.as_deref()
        ),
        (MovementKind::Adjust, 3, Some("A-01"))
    );
    let d = f.store.discrepancy(id).unwrap().unwrap();
    assert_eq!(d.status, DiscrepancyStatus::Resolved);
    let html = f.page(&format!("/discrepancies/{id}")).await;
    assert!(
        html.contains(r#"id="d-resolution" data-type="adjust""#),
        "{html}"
    );
    assert!(
        !html.contains("resolve-adjust-form"),
        "no resolve form once resolved"
    );
    assert_eq!(
        rows(&html, "movement-row").len(),
        2,
        "the cause and the adjustment"
    );
    // Twice: refused by the store, a 409 page, no second movement.
    let again = f.post(&uri, &adjust, Csrf::Valid).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(f.store.high_water("office").unwrap(), 1);

    // Accepting as is changes no stock.
    let over = f.store.discrepancies(&DiscrepancyFilter {
        kind: Some(DiscrepancyKind::AsnOver),
        ..DiscrepancyFilter::default()
    });
    let over = over.unwrap()[0].id;
    let before = f.store.stock(&StockFilter::default()).unwrap();
    let a = f
        .post(
            &format!("/discrepancies/{over}/resolve"),
            &[("type", "accepted"), ("reason", "supplier sent 2 extra")],
            Csrf::Valid,
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(f.store.stock(&StockFilter::default()).unwrap(), before);
    assert_eq!(
        f.store.discrepancy(over).unwrap().unwrap().status,
        DiscrepancyStatus::Resolved
    );
    for (uri, status) in [
        ("/discrepancies/999999/resolve", StatusCode::NOT_FOUND),
        ("/discrepancies/abc/resolve", StatusCode::BAD_REQUEST),
    ] {
        let a = f
            .post(uri, &[("type", "accepted"), ("reason", "x")], Csrf::Valid)
            .await;
        assert_eq!(a.status, status, "{uri}");
    }
}

#[tokio::test]
async fn comments_and_stored_text_are_escaped() {
    let f = fixture();
    let id = f.discrepancy_id(DiscrepancyKind::NegativeStock, "A-01");
    let uri = format!("/discrepancies/{id}/comments");
    let comment = [("author", EVIL_ATTR), ("text", EVIL)];
    assert_eq!(
        f.post(&uri, &comment, Csrf::Wrong).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(f
        .store
        .discrepancy(id)
        .unwrap()
        .unwrap()
        .comments
        .is_empty());
    let a = f.post(&uri, &comment, Csrf::Valid).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.location, Some(format!("/discrepancies/{id}#comments")));
    let stored = f.store.discrepancy(id).unwrap().unwrap().comments;
    assert_eq!(
        (stored[0].author.as_str(), stored[0].text.as_str()),
        (EVIL_ATTR, EVIL)
    );
    for (fields, status) in [
        (
            &[("author", ""), ("text", "x")][..],
            StatusCode::BAD_REQUEST,
        ),
        (
            &[("author", "me"), ("text", "")][..],
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(
            f.post(&uri, fields, Csrf::Valid).await.status,
            status,
            "{fields:?}"
        );
    }
    // Comments, supplier, a device's User-Agent, a reference a device sent, item descriptions: all text.
    let unknown_ref = f.store.discrepancies(&DiscrepancyFilter {
        kind: Some(DiscrepancyKind::UnknownReference),
        ..DiscrepancyFilter::default()
    });
    let unknown_ref = unknown_ref.unwrap()[0].id;
    let pages = [
        format!("/discrepancies/{id}"),
        format!("/discrepancies/{unknown_ref}"),
        "/discrepancies?site=WH2".to_string(),
        "/receipts".to_string(),
        "/receipts/ASN-1".to_string(),
        "/devices".to_string(),
    ];
    for page in &pages {
        let html = f.page(page).await;
        for evil in [EVIL, EVIL_ATTR, "<img"] {
            assert!(!html.contains(evil), "{page} holds {evil:?} unescaped");
        }
        // The only script element is the page's own live-update script.
        assert_eq!(
            html.matches("<script").count(),
            html.matches(r#"<script src="/assets/live.js" defer>"#)
                .count(),
            "{page}"
        );
    }
    let html = f.page(&format!("/discrepancies/{id}")).await;
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
}

/// Reads server-sent events from `body` until `done` accepts one or `within` passes; returns the events seen as
/// `(event name, data)`.
async fn events_until(
    body: &mut Body,
    within: Duration,
    mut done: impl FnMut(&str, &str) -> bool,
) -> (bool, Vec<(String, String)>) {
    let mut seen = Vec::new();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(_) | Err(_) => return (false, seen),
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.push_str(std::str::from_utf8(&data).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut name, mut data) = (String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if name.is_empty() {
                continue;
            }
            let hit = done(&name, &data);
            seen.push((name, data));
            if hit {
                return (true, seen);
            }
        }
    }
}

#[tokio::test]
async fn the_device_stream_reports_a_device_going_offline() {
    let f = fixture_with(Duration::from_secs(1));
    f.devices
        .touch_agent("hh-01", OffsetDateTime::now_utc(), Some(2), None)
        .unwrap();
    let anonymous = Request::get("/live/devices").body(Body::empty()).unwrap();
    let a = f.send(anonymous).await;
    assert_eq!(
        a.status,
        StatusCode::SEE_OTHER,
        "the stream needs a session"
    );
    let req = Request::get("/live/devices")
        .header(header::COOKIE, &f.cookie)
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE].to_str().unwrap(),
        "text/event-stream"
    );
    let mut body = resp.into_body();
    let status_of = |data: &str| -> (String, String) {
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        (
            v["id"].as_str().unwrap().into(),
            v["status"].as_str().unwrap().into(),
        )
    };
    // First every device as it stands, then hh-01 again once a second of silence made it offline.
    let (found, seen) = events_until(&mut body, Duration::from_secs(10), |name, data| {
        name == "device" && status_of(data) == ("hh-01".into(), "offline".into())
    })
    .await;
    assert!(found, "no offline event for hh-01 in {seen:?}");
    let first: Vec<(String, String)> = seen.iter().take(3).map(|(_, d)| status_of(d)).collect();
    assert_eq!(
        first,
        vec![
            ("hh-01".into(), "online".into()),
            ("hh-02".into(), "never".into()),
            ("rf-01".into(), "never".into())
        ]
    );
    let offline: serde_json::Value = serde_json::from_str(&seen.last().unwrap().1).unwrap();
    assert_eq!(offline["backlog"], 2);
    assert_eq!(offline["label"], "offline");

    // A page filtered by site hears of that site's devices only.
    let req = Request::get("/live/devices?site=WH2")
        .header(header::COOKIE, &f.cookie)
        .body(Body::empty())
        .unwrap();
    let mut body = f.app.clone().oneshot(req).await.unwrap().into_body();
    let (_, seen) = events_until(&mut body, Duration::from_millis(2500), |_, _| false).await;
    let ids: Vec<String> = seen.iter().map(|(_, d)| status_of(d).0).collect();
    assert_eq!(ids, vec!["rf-01".to_string()], "{seen:?}");
}

#[tokio::test]
async fn the_discrepancy_stream_reports_new_ones_matching_the_filters() {
    let f = fixture();
    let latest = f
        .store
        .discrepancies(&DiscrepancyFilter::default())
        .unwrap()
        .last()
        .unwrap()
        .id;
    let list = f.page("/discrepancies").await;
    let subscription = format!("data-live=\"/live/discrepancies?status=open&amp;after={latest}\"");
    assert!(list.contains(&subscription), "{subscription} in {list}");
    assert!(list.contains(r#"id="live-banner""#));
    let req = Request::get(format!("/live/discrepancies?site=WH1&after={latest}"))
        .header(header::COOKIE, &f.cookie)
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    // One at WH2 (filtered out), then negative stock at WH1.
    f.store
        .push(
            "WH2",
            "rf-01",
            &[movement(2, MovementKind::Pick, |m| {
                m.device_id = "rf-01".into();
                m.from_location = Some("GATE".into());
                m.qty = 9;
            })],
        )
        .unwrap();
    f.store
        .push(
            "WH1",
            "hh-01",
            &[movement(8, MovementKind::Pick, |m| {
                m.from_location = Some("B-01".into())
            })],
        )
        .unwrap();
    let (found, seen) = events_until(&mut body, Duration::from_secs(10), |name, data| {
        name == "discrepancy" && data.contains("\"kind\":\"negative_stock\"")
    })
    .await;
    assert!(found, "{seen:?}");
    let sites: Vec<String> = seen
        .iter()
        .filter(|(name, _)| name == "discrepancy")
        .map(|(_, d)| {
            serde_json::from_str::<serde_json::Value>(d).unwrap()["site"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(sites.iter().all(|s| s == "WH1"), "{sites:?}");
}

#[tokio::test]
async fn every_table_downloads_as_csv() {
    let f = fixture();
    // (page, header line, rows, a line that must be there)
    let cases: &[(&str, &str, usize, &str)] = &[
        (
            "/devices?format=csv",
            "device_id,site,status,last_seen,backlog,version,revoked",
            3,
            "hh-02,WH1,never seen,,,,no",
        ),
        (
            "/devices?site=WH1&format=csv",
            "device_id,site,status,last_seen,backlog,version,revoked",
            2,
            "hh-02,WH1,never seen,,,,no",
        ),
        (
            "/discrepancies?status=all&kind=asn_over&format=csv",
            "id,created_at,site,kind,status,reference,location,gtin,lot,expected,actual,message",
            1,
            ",WH1,asn_over,open,ASN-1,DOCK,09506000134352,,10,12,",
        ),
        (
            "/receipts?status=all&format=csv",
            "id,site,status,supplier,expected_on,lines,pallets,expected_units,received_units",
            2,
            "ASN-2,WH1,closed,,,1,0,3,0",
        ),
        (
            "/receipts/ASN-1?format=csv",
            "gtin,lot,expected,received,difference,state",
            2,
            "09506000134352,,10,12,2,over",
        ),
        (
            "/receipts/ASN-1?format=csv&table=pallets",
            "sscc,announced,receipts,units",
            1,
            "106141411234567897,yes,1,5",
        ),
        (
            "/receipts/ASN-1?format=csv&table=unexpected",
            "gtin,lot,received",
            0,
            "",
        ),
        (
            "/pick-lists?format=csv",
            "id,site,status,device,zone,lines,requested,picked,short_lines",
            1,
            "PL-1,WH1,open,hh-01,,2,5,3,1",
        ),
        (
            "/pick-lists/PL-1?format=csv",
            "line,location,gtin,lot,requested,picked,short,state,devices",
            2,
            "2,B-01,05901234123457,P1,3,1,yes,short,hh-01",
        ),
        ("/overview?format=csv", "site,hour_utc,movements", 48, ""),
    ];
    for (uri, header_line, count, line) in cases {
        let a = f.get(uri).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.body);
        assert_eq!(a.content_type, "text/csv; charset=utf-8", "{uri}");
        let text = a.body.strip_prefix('\u{feff}').expect("a byte-order mark");
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines[0], *header_line, "{uri}");
        assert_eq!(lines.len() - 1, *count, "{uri}: {lines:?}");
        if !line.is_empty() {
            assert!(
                lines.iter().any(|l| l.contains(line)),
                "{uri}: {line} in {lines:?}"
            );
        }
    }
    // rf-01's version is the first word of its User-Agent after "dockhand-agent/": a quoted, doubled quote in CSV.
    let a = f.get("/devices?site=WH2&format=csv").await;
    let row = a.body.lines().find(|l| l.starts_with("rf-01,")).unwrap();
    assert!(row.starts_with("rf-01,WH2,offline,"), "{row}");
    assert!(row.ends_with(r#",0,"""><img",no"#), "{row}");
}

#[tokio::test]
async fn garbage_is_a_4xx_page_never_a_panic() {
    let f = fixture();
    let long = "x".repeat(65);
    let cases: Vec<(String, StatusCode)> = vec![
        ("/discrepancies/abc".into(), StatusCode::BAD_REQUEST),
        ("/discrepancies/-1".into(), StatusCode::BAD_REQUEST),
        (
            "/discrepancies/18446744073709551616".into(),
            StatusCode::BAD_REQUEST,
        ),
        ("/discrepancies/999999".into(), StatusCode::NOT_FOUND),
        ("/discrepancies/1?x=1".into(), StatusCode::BAD_REQUEST),
        (
            "/discrepancies?status=closed".into(),
            StatusCode::BAD_REQUEST,
        ),
        ("/discrepancies?kind=bogus".into(), StatusCode::BAD_REQUEST),
        ("/discrepancies?site=%00".into(), StatusCode::BAD_REQUEST),
        ("/discrepancies?format=pdf".into(), StatusCode::BAD_REQUEST),
        ("/devices?site=W%20H".into(), StatusCode::BAD_REQUEST),
        ("/devices?colour=red".into(), StatusCode::BAD_REQUEST),
        ("/devices?site=a&site=b".into(), StatusCode::BAD_REQUEST),
        ("/receipts/NOPE".into(), StatusCode::NOT_FOUND),
        ("/receipts/%FF%FE".into(), StatusCode::BAD_REQUEST),
        (format!("/receipts/{long}"), StatusCode::BAD_REQUEST),
        (
            "/receipts/ASN-1?table=lines&format=csv&x=1".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/receipts/ASN-1?table=everything".into(),
            StatusCode::BAD_REQUEST,
        ),
        ("/receipts?status=done".into(), StatusCode::BAD_REQUEST),
        ("/pick-lists/PL-404".into(), StatusCode::NOT_FOUND),
        ("/pick-lists/a%2Fb".into(), StatusCode::BAD_REQUEST),
        ("/pick-lists?site=".into(), StatusCode::OK),
        ("/overview?hours=48".into(), StatusCode::BAD_REQUEST),
        ("/live/devices?site=%FF".into(), StatusCode::BAD_REQUEST),
        (
            "/live/discrepancies?after=-1".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/live/discrepancies?after=1&kind=nope".into(),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (uri, status) in &cases {
        let a = f.get(uri).await;
        assert_eq!(a.status, *status, "{uri}: {}", a.body);
        assert!(
            a.content_type.starts_with("text/html"),
            "{uri}: {}",
            a.content_type
        );
        if !status.is_success() {
            assert!(a.body.contains(r#"id="error""#), "{uri}: {}", a.body);
        }
    }
}

#[tokio::test]
async fn pages_and_streams_need_a_session() {
    let f = fixture();
    for uri in [
        "/devices",
        "/discrepancies",
        "/discrepancies/1",
        "/receipts",
        "/receipts/ASN-1",
        "/pick-lists",
        "/pick-lists/PL-1",
        "/overview",
        "/live/devices",
        "/live/discrepancies?after=0",
    ] {
        let a = f.send(Request::get(uri).body(Body::empty()).unwrap()).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{uri}");
        assert!(
            a.location.as_deref().unwrap_or("").starts_with("/login"),
            "{uri}"
        );
    }
    let script = f
        .send(Request::get("/assets/live.js").body(Body::empty()).unwrap())
        .await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.content_type.starts_with("text/javascript"));
    assert!(
        !script.body.contains("innerHTML"),
        "the script sets text only"
    );
}

#[tokio::test]
async fn the_device_list_api_names_each_agent_version() {
    let f = fixture_with(Duration::from_secs(120));
    let push = |agent: Option<&str>| {
        let mut req = Request::post("/v1/sync/push")
            .header(header::AUTHORIZATION, format!("Bearer {}", f.hh01))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(agent) = agent {
            req = req.header(header::USER_AGENT, agent);
        }
        req.body(Body::from(
            r#"{"device_id":"hh-01","movements":[],"backlog":0}"#,
        ))
        .unwrap()
    };
    assert_eq!(
        f.send(push(Some("dockhand-agent/9.8.7"))).await.status,
        StatusCode::OK
    );
    // A request without the header keeps the version known.
    assert_eq!(f.send(push(None)).await.status, StatusCode::OK);
    let list = Request::get("/v1/devices")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let a = f.send(list).await;
    assert_eq!(a.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    let versions: Vec<(String, serde_json::Value, serde_json::Value)> = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["device_id"].as_str().unwrap().to_string(),
                d["version"].clone(),
                d["user_agent"].clone(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        vec![
            (
                "hh-01".into(),
                "9.8.7".into(),
                "dockhand-agent/9.8.7".into()
            ),
            (
                "hh-02".into(),
                serde_json::Value::Null,
                serde_json::Value::Null
            ),
            (
                "rf-01".into(),
                serde_json::Value::Null,
                serde_json::Value::Null
            ),
        ]
    );
    let page = f.page("/devices").await;
    let row = row_by(&page, "device-row", "data-device", "hh-01");
    assert_eq!(cell(row, "version").as_deref(), Some("9.8.7"));
}

#[tokio::test]
async fn live_streams_end_when_the_server_shuts_down() {
    let f = fixture();
    let req = Request::get("/live/devices")
        .header(header::COOKIE, &f.cookie)
        .body(Body::empty())
        .unwrap();
    let mut body = f.app.clone().oneshot(req).await.unwrap().into_body();
    let (found, _) = events_until(&mut body, Duration::from_secs(10), |name, _| {
        name == "device"
    })
    .await;
    assert!(found, "the stream was open");
    f.state.begin_shutdown();
    // Whatever was queued drains, then the body ends (instead of holding the graceful shutdown).
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(frame) = body.frame().await {
            frame.unwrap();
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream kept going after begin_shutdown");
    // A stream opened while shutting down ends at once.
    let req = Request::get("/live/discrepancies?after=0")
        .header(header::COOKIE, &f.cookie)
        .body(Body::empty())
        .unwrap();
    let late = tokio::time::timeout(
        Duration::from_secs(5),
        f.app
            .clone()
            .oneshot(req)
            .await
            .unwrap()
            .into_body()
            .collect(),
    )
    .await;
    assert!(late.is_ok(), "a stream opened during shutdown stayed open");
}
