//! Office API and downstream sync, through `app(state)` with `tower::ServiceExt::oneshot` (no socket).
//!
//! Each test gets a fresh tempdir with a sled store and devices `hh-01`, `hh-02` at WH1 and `rf-01` at WH2.
//! - happy paths, one test per resource;
//! - `bad_input_table`: every office endpoint refuses malformed, out-of-range, unknown and conflicting input with
//!   the right 4xx, names the field, and changes nothing (the whole store and the device files are compared);
//! - auth: every office route needs the admin token; a revoked device gets 401 on push and pull;
//! - the OpenAPI document covers every route the router serves.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use dockhand_protocol::sync::{
    Change, Movement, MovementKind, MovementSource, PullResponse, PushRequest,
};
use dockhand_server::store::{DiscrepancyFilter, MovementFilter};
use dockhand_server::{app, enroll, routes, AdminToken, AppState, Devices, SledStore, Store};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "admin-secret";
/// EAN-13 of the GS1 example item; stored as the GTIN-14 [`GTIN`].
const EAN: &str = "9506000134352";
const GTIN: &str = "09506000134352";
const GTIN2: &str = "05901234123457";
/// The same with a wrong check digit.
const BAD_GTIN: &str = "9506000134353";
const SSCC: &str = "106141411234567897";
const BAD_SSCC: &str = "106141411234567890";
const LIMIT: usize = 64 * 1024;

struct Fixture {
    dir: tempfile::TempDir,
    app: Router,
    store: Arc<dyn Store>,
    devices: Arc<Devices>,
    hh01: String,
    rf01: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let devices_dir = dir.path().join("devices");
    let hh01 = enroll(&devices_dir, "hh-01", "WH1", false).unwrap();
    enroll(&devices_dir, "hh-02", "WH1", false).unwrap();
    let rf01 = enroll(&devices_dir, "rf-01", "WH2", false).unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(&dir.path().join("sled"), 8 << 20).unwrap());
    let devices = Arc::new(Devices::open(&devices_dir).unwrap());
    let state = AppState::new(
        store.clone(),
        devices.clone(),
        AdminToken::from_secret(ADMIN),
    )
    .with_body_limit(LIMIT);
    Fixture {
        dir,
        app: app(state),
        store,
        devices,
        hh01,
        rf01,
    }
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type);
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
    /// An admin request with a JSON body (`Value::Null` sends none).
    async fn admin(&self, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        send(
            &self.app,
            method,
            uri,
            Some(ADMIN),
            "application/json",
            bytes,
        )
        .await
    }

    /// An admin request that must succeed with `want`.
    async fn ok(&self, method: &str, uri: &str, body: Value, want: StatusCode) -> Value {
        let (status, value) = self.admin(method, uri, body).await;
        assert_eq!(status, want, "{method} {uri}: {value}");
        value
    }

    async fn csv(&self, uri: &str, text: &str) -> (StatusCode, Value) {
        send(&self.app, "POST", uri, Some(ADMIN), "text/csv", text.into()).await
    }

    async fn push(
        &self,
        token: &str,
        device: &str,
        movements: Vec<Movement>,
        backlog: Option<u64>,
    ) -> (StatusCode, Value) {
        let body = serde_json::to_vec(&PushRequest {
            device_id: device.into(),
            movements,
            backlog,
        })
        .unwrap();
        send(
            &self.app,
            "POST",
            "/v1/sync/push",
            Some(token),
            "application/json",
            body,
        )
        .await
    }

    async fn pull(&self, token: &str, query: &str) -> (StatusCode, Value) {
        send(
            &self.app,
            "GET",
            &format!("/v1/sync/pull{query}"),
            Some(token),
            "application/json",
            vec![],
        )
        .await
    }

    /// Everything the office API can change: the store's contents and the device files.
    fn snapshot(&self) -> Value {
        let s = &self.store;
        let sites = ["WH1", "WH2", "WH9"];
        json!({
            "sites": s.sites().unwrap(),
            "items": serde_json::to_value(s.items(None, 100_000).unwrap()).unwrap(),
            "locations": sites.iter().map(|x| serde_json::to_value(s.locations(x).unwrap()).unwrap()).collect::<Vec<_>>(),
            "asns": sites.iter().map(|x| serde_json::to_value(s.asns(x, None).unwrap()).unwrap()).collect::<Vec<_>>(),
            "picks": sites.iter().map(|x| serde_json::to_value(s.pick_lists(x, None).unwrap()).unwrap()).collect::<Vec<_>>(),
            "discrepancies": s.discrepancies(&DiscrepancyFilter::default()).unwrap(),
            "movements": s.movements(&MovementFilter::default(), 0, 100_000).unwrap(),
            "stock": s.stock(&Default::default()).unwrap(),
            "pull": sites.iter().map(|x| serde_json::to_value(s.pull(x, 0, 100_000).unwrap()).unwrap()).collect::<Vec<_>>(),
            "devices": std::fs::read_dir(self.dir.path().join("devices")).unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .map(|p| std::fs::read_to_string(p).unwrap())
                .collect::<std::collections::BTreeSet<_>>(),
        })
    }
}

fn movement(
    device: &str,
    seq: u64,
    kind: MovementKind,
    from: Option<&str>,
    to: Option<&str>,
    qty: u64,
    at: &str,
) -> Movement {
    Movement {
        device_id: device.into(),
        seq,
        at: time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .unwrap(),
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

fn receive(device: &str, seq: u64, to: &str, qty: u64, at: &str) -> Movement {
    movement(device, seq, MovementKind::Receive, None, Some(to), qty, at)
}

fn asn(id: &str) -> Value {
    json!({
        "id": id, "site": "WH1", "supplier": "ACME", "expected_on": "2026-12-01",
        "lines": [{"gtin": EAN, "qty": 10}],
        "pallets": [{"sscc": SSCC, "lines": [{"gtin": GTIN2, "lot": "L1", "qty": 4}]}],
    })
}

fn pick_list(id: &str) -> Value {
    json!({"id": id, "site": "WH1", "lines": [{"line": 1, "location": "A-01", "gtin": EAN, "qty": 2}]})
}

const ITEM_CSV: &str = "gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked,active\n\
    9506000134352,Widget,EA,true,false,false,\n\
    05901234123457,\"Gadget, large\",CS,0,1,0,yes\n\
    04006381333931,Doohickey,,no,no,no,false\n";

#[tokio::test]
async fn sites_create_update_list() {
    let f = fixture();
    let site = f
        .ok(
            "PUT",
            "/v1/sites/WH1",
            json!({"name": "Main"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(site, json!({"code": "WH1", "name": "Main", "active": true}));
    let all = f
        .ok("PUT", "/v1/sites", json!({"sites": [{"code": "WH2", "name": "North"}, {"code": "WH1", "name": "Main", "active": false}]}), StatusCode::OK)
        .await;
    assert_eq!(all["sites"].as_array().unwrap().len(), 2);
    let list = f.ok("GET", "/v1/sites", Value::Null, StatusCode::OK).await;
    assert_eq!(
        list["sites"][0],
        json!({"code": "WH1", "name": "Main", "active": false})
    );
    assert_eq!(list["sites"][1]["code"], "WH2");
    // A deactivated site takes no new documents.
    let (status, body) = f.admin("POST", "/v1/asns", asn("ASN-1")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("refused")),
        "{body}"
    );
}

#[tokio::test]
async fn items_put_get_page_deactivate_import() {
    let f = fixture();
    let item = f
        .ok(
            "PUT",
            &format!("/v1/items/{EAN}"),
            json!({"description": "Widget", "lot_tracked": true}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(item["gtin"], GTIN, "EAN-13 normalised to GTIN-14");
    assert_eq!(item["unit"], "EA");
    let again = f
        .ok(
            "PUT",
            &format!("/v1/items/{GTIN}"),
            json!({"gtin": EAN, "description": "Widget v2", "active": false}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(again["active"], false);
    let got = f
        .ok(
            "GET",
            &format!("/v1/items/{EAN}"),
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(got["description"], "Widget v2");
    assert_eq!(got["active"], false);

    let (status, body) = f.csv("/v1/items/import", ITEM_CSV).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["imported"], 3);
    let gadget = f.store.item(GTIN2).unwrap().unwrap();
    assert_eq!(
        (
            gadget.description.as_str(),
            gadget.unit.as_str(),
            gadget.expiry_tracked
        ),
        ("Gadget, large", "CS", true)
    );
    assert!(!f.store.item("04006381333931").unwrap().unwrap().active);
    assert!(
        f.store.item(GTIN).unwrap().unwrap().active,
        "the import re-activated it"
    );

    // Paging: 3 items, 2 per page.
    let p1 = f
        .ok("GET", "/v1/items?limit=2", Value::Null, StatusCode::OK)
        .await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    let next = p1["next"].as_str().unwrap().to_string();
    let p2 = f
        .ok(
            "GET",
            &format!("/v1/items?limit=2&after={next}"),
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert_eq!(p2["next"], Value::Null);
    let gtins: Vec<&str> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["items"].as_array().unwrap())
        .map(|i| i["gtin"].as_str().unwrap())
        .collect();
    assert_eq!(gtins, ["04006381333931", GTIN2, GTIN]);
}

#[tokio::test]
async fn locations_put_list_import() {
    let f = fixture();
    let loc = f
        .ok(
            "PUT",
            "/v1/sites/WH1/locations/A-01",
            json!({"zone": "Z1", "gln": "0614141000005"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        loc,
        json!({"code": "A-01", "gln": "0614141000005", "zone": "Z1", "active": true})
    );
    f.ok(
        "PUT",
        "/v1/sites/WH1/locations/A-01",
        json!({"active": false}),
        StatusCode::OK,
    )
    .await;
    let (status, body) = f
        .csv(
            "/v1/sites/WH1/locations/import",
            "code,gln,zone\nA-02,,Z1\nB-01,,Z2\n",
        )
        .await;
    assert_eq!(
        (status, body["imported"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{body}"
    );
    let list = f
        .ok(
            "GET",
            "/v1/sites/WH1/locations",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    let codes: Vec<(&str, bool)> = list["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["code"].as_str().unwrap(), l["active"].as_bool().unwrap()))
        .collect();
    assert_eq!(codes, [("A-01", false), ("A-02", true), ("B-01", true)]);
    let other = f
        .ok(
            "GET",
            "/v1/sites/WH2/locations",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(other["locations"], json!([]));
}

#[tokio::test]
async fn asns_create_list_close_cancel() {
    let f = fixture();
    let created = f
        .ok("POST", "/v1/asns", asn("ASN-1"), StatusCode::CREATED)
        .await;
    assert_eq!(created["lines"][0]["gtin"], GTIN);
    assert_eq!(created["status"], "open");
    f.ok("POST", "/v1/asns", asn("ASN-2"), StatusCode::CREATED)
        .await;
    assert_eq!(
        f.ok("GET", "/v1/asns/ASN-1", Value::Null, StatusCode::OK)
            .await,
        created
    );

    let closed = f
        .ok("POST", "/v1/asns/ASN-1/close", Value::Null, StatusCode::OK)
        .await;
    assert_eq!(closed["status"], "closed");
    // Nothing was received: both lines are short.
    let shorts = f
        .store
        .discrepancies(&DiscrepancyFilter::default())
        .unwrap();
    assert_eq!(shorts.len(), 2, "{shorts:?}");
    let cancelled = f
        .ok("POST", "/v1/asns/ASN-2/cancel", Value::Null, StatusCode::OK)
        .await;
    assert_eq!(cancelled["status"], "cancelled");

    let open = f
        .ok(
            "GET",
            "/v1/asns?site=WH1&status=open",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(open["asns"], json!([]));
    let all = f
        .ok("GET", "/v1/asns?site=WH1", Value::Null, StatusCode::OK)
        .await;
    assert_eq!(all["asns"].as_array().unwrap().len(), 2);
    let wh2 = f
        .ok("GET", "/v1/asns?site=WH2", Value::Null, StatusCode::OK)
        .await;
    assert_eq!(wh2["asns"], json!([]));

    let (_, pull) = f.pull(&f.hh01, "").await;
    let pull: PullResponse = serde_json::from_value(pull).unwrap();
    assert!(
        pull.changes.contains(&Change::Cancel {
            reference: "ASN-2".into()
        }),
        "{pull:?}"
    );
}

#[tokio::test]
async fn pick_lists_create_assign_cancel() {
    let f = fixture();
    let created = f
        .ok(
            "POST",
            "/v1/pick-lists",
            pick_list("PL-1"),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(created["lines"][0]["gtin"], GTIN);
    let assigned = f
        .ok(
            "POST",
            "/v1/pick-lists/PL-1/assign",
            json!({"device": "hh-01"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        (assigned["device"].as_str(), assigned.get("zone")),
        (Some("hh-01"), None)
    );
    let zoned = f
        .ok(
            "POST",
            "/v1/pick-lists/PL-1/assign",
            json!({"zone": "Z1"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        (zoned.get("device"), zoned["zone"].as_str()),
        (None, Some("Z1"))
    );
    assert_eq!(
        f.ok("GET", "/v1/pick-lists/PL-1", Value::Null, StatusCode::OK)
            .await,
        zoned
    );
    let listed = f
        .ok(
            "GET",
            "/v1/pick-lists?site=WH1&status=open",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed["pick_lists"], json!([zoned]));
    let cancelled = f
        .ok(
            "POST",
            "/v1/pick-lists/PL-1/cancel",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    let listed = f
        .ok(
            "GET",
            "/v1/pick-lists?site=WH1&status=cancelled",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed["pick_lists"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn devices_enroll_list_revoke() {
    let f = fixture();
    let enrolled = f
        .ok(
            "POST",
            "/v1/devices",
            json!({"device_id": "hh-09", "site": "WH1"}),
            StatusCode::CREATED,
        )
        .await;
    let token = enrolled["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);

    let (status, _) = f.pull(&token, "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = f
        .push(
            &token,
            "hh-09",
            vec![receive("hh-09", 1, "A-01", 5, "2026-11-26T10:00:00Z")],
            Some(7),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let list = f
        .ok("GET", "/v1/devices", Value::Null, StatusCode::OK)
        .await;
    let ids: Vec<&str> = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["hh-01", "hh-02", "hh-09", "rf-01"]);
    let hh09 = &list["devices"][2];
    assert_eq!(
        (
            hh09["site"].as_str(),
            hh09["revoked"].as_bool(),
            hh09["backlog"].as_u64()
        ),
        (Some("WH1"), Some(false), Some(6)),
        "the device reported 7 with the batch of 1 it pushed: 6 are left once it is acknowledged; {hh09}"
    );
    let seen = time::OffsetDateTime::parse(
        hh09["last_seen"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!((time::OffsetDateTime::now_utc() - seen).whole_seconds() < 60);
    assert!(hh09.get("token_sha256").is_none(), "the hash is not shown");
    assert_eq!(list["devices"][0]["last_seen"], Value::Null, "never seen");
    // The first sighting (the pull) was persisted at once; the push's backlog only after the interval or at
    // shutdown.
    let file = || -> Value {
        let text = std::fs::read_to_string(f.dir.path().join("devices/hh-09.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    assert!(file()["last_seen"].is_string(), "{}", file());
    f.devices.flush_seen().unwrap();
    assert_eq!(file()["backlog"], 6);

    let revoked = f
        .ok(
            "POST",
            "/v1/devices/hh-09/revoke",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(revoked["revoked"], true);
    assert!(revoked["revoked_at"].is_string());
    let again = f
        .ok(
            "POST",
            "/v1/devices/hh-09/revoke",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        again["revoked_at"], revoked["revoked_at"],
        "revoking twice changes nothing"
    );

    let (status, body) = f
        .push(
            &token,
            "hh-09",
            vec![receive("hh-09", 2, "A-01", 1, "2026-11-26T10:01:00Z")],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("revoked")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{body}"
    );
    let (status, body) = f.pull(&token, "").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("revoked")),
        "{body}"
    );
    // Its movements stay, in history and in stock.
    let history = f
        .ok(
            "GET",
            "/v1/movements?device=hh-09",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        history["movements"].as_array().unwrap().len(),
        1,
        "{history}"
    );
    let stock = f
        .ok("GET", "/v1/stock?site=WH1", Value::Null, StatusCode::OK)
        .await;
    assert_eq!(stock["stock"][0]["qty"], 5);
    let hw = f
        .ok(
            "GET",
            "/v1/devices/hh-09/high-water",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(hw["acked_through"], 1);

    // `enroll --rotate` (the CLI's function) still works and brings the device back under a new token.
    let rotated = enroll(&f.dir.path().join("devices"), "hh-09", "WH1", true).unwrap();
    let (status, _) = f.pull(&token, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = f.pull(&rotated, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(f.dir.path().join("devices/hh-09.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (file.get("revoked_at"), file["backlog"].as_u64()),
        (None, Some(6)),
        "{file}"
    );
    // And through the API with rotate.
    let rerolled = f
        .ok(
            "POST",
            "/v1/devices",
            json!({"device_id": "hh-09", "site": "WH1", "rotate": true}),
            StatusCode::CREATED,
        )
        .await;
    assert_ne!(rerolled["token"], rotated);
}

#[tokio::test]
async fn stock_now_and_as_of() {
    let f = fixture();
    let batch = vec![
        receive("hh-01", 1, "DOCK", 10, "2026-11-26T08:00:00Z"),
        movement(
            "hh-01",
            2,
            MovementKind::Putaway,
            Some("DOCK"),
            Some("A-01"),
            4,
            "2026-11-26T09:00:00Z",
        ),
    ];
    assert_eq!(
        f.push(&f.hh01, "hh-01", batch, Some(0)).await.0,
        StatusCode::OK
    );
    let rows = |v: &Value| -> Vec<(String, i64)> {
        v["stock"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["location"].as_str().unwrap().to_string(),
                    r["qty"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let now = f
        .ok("GET", "/v1/stock?site=WH1", Value::Null, StatusCode::OK)
        .await;
    assert_eq!(
        rows(&now),
        [("A-01".to_string(), 4), ("DOCK".to_string(), 6)]
    );
    let then = f
        .ok(
            "GET",
            "/v1/stock?site=WH1&as_of=2026-11-26T08:30:00%2B00:00",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(rows(&then), [("DOCK".to_string(), 10)]);
    let before = f
        .ok(
            "GET",
            "/v1/stock?as_of=2026-11-26T07:00:00Z",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(before["stock"], json!([]));
    let by_item = f
        .ok(
            "GET",
            &format!("/v1/stock?gtin={EAN}&location=A-01"),
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        by_item["stock"],
        json!([{"site": "WH1", "location": "A-01", "gtin": GTIN, "lot": null, "qty": 4, "expiry": null}])
    );
}

#[tokio::test]
async fn movement_history_filters_and_pages() {
    let f = fixture();
    let batch = vec![
        receive("hh-01", 1, "DOCK", 10, "2026-11-26T08:00:00Z"),
        movement(
            "hh-01",
            2,
            MovementKind::Putaway,
            Some("DOCK"),
            Some("A-01"),
            4,
            "2026-11-26T09:00:00Z",
        ),
        movement(
            "hh-01",
            3,
            MovementKind::Pick,
            Some("A-01"),
            None,
            1,
            "2026-11-26T10:00:00Z",
        ),
    ];
    assert_eq!(
        f.push(&f.hh01, "hh-01", batch, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        f.push(
            &f.rf01,
            "rf-01",
            vec![receive("rf-01", 1, "G", 1, "2026-11-26T08:30:00Z")],
            None
        )
        .await
        .0,
        StatusCode::OK
    );

    let seqs = |v: &Value| -> Vec<(String, u64)> {
        v["movements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["movement"]["device_id"].as_str().unwrap().to_string(),
                    m["movement"]["seq"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let all = f
        .ok("GET", "/v1/movements", Value::Null, StatusCode::OK)
        .await;
    assert_eq!(all["movements"].as_array().unwrap().len(), 4);
    assert_eq!(all["next"], Value::Null);
    let first = &all["movements"][0];
    assert!(
        first["server_seq"].is_u64() && first["received_at"].is_string() && first["site"] == "WH1",
        "{first}"
    );

    let page = f
        .ok(
            "GET",
            "/v1/movements?site=WH1&limit=2",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(seqs(&page), [("hh-01".into(), 1), ("hh-01".into(), 2)]);
    let next = page["next"].as_u64().unwrap();
    let rest = f
        .ok(
            "GET",
            &format!("/v1/movements?site=WH1&limit=2&after={next}"),
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(seqs(&rest), [("hh-01".into(), 3)]);
    assert_eq!(rest["next"], Value::Null);

    let cases: &[(&str, &[(&str, u64)])] = &[
        ("device=rf-01", &[("rf-01", 1)]),
        ("kind=pick", &[("hh-01", 3)]),
        ("location=A-01", &[("hh-01", 2), ("hh-01", 3)]),
        (
            "since=2026-11-26T08:30:00Z&until=2026-11-26T10:00:00Z",
            &[("rf-01", 1), ("hh-01", 2)],
        ),
        ("gtin=9506000134352&site=WH2", &[("rf-01", 1)]),
    ];
    for (query, want) in cases {
        let got = f
            .ok(
                "GET",
                &format!("/v1/movements?{query}"),
                Value::Null,
                StatusCode::OK,
            )
            .await;
        let mut got = seqs(&got);
        got.sort_by_key(|(d, s)| (d.clone(), *s));
        let mut want: Vec<(String, u64)> = want.iter().map(|(d, s)| (d.to_string(), *s)).collect();
        want.sort();
        assert_eq!(got, want, "{query}");
    }
}

#[tokio::test]
async fn discrepancies_list_comment_resolve() {
    let f = fixture();
    f.ok(
        "PUT",
        &format!("/v1/items/{EAN}"),
        json!({"description": "Widget"}),
        StatusCode::CREATED,
    )
    .await;
    f.ok(
        "PUT",
        "/v1/sites/WH1/locations/A-01",
        json!({}),
        StatusCode::CREATED,
    )
    .await;
    // A pick from an empty location drives stock negative.
    let pick = movement(
        "hh-01",
        1,
        MovementKind::Pick,
        Some("A-01"),
        None,
        3,
        "2026-11-26T08:00:00Z",
    );
    assert_eq!(
        f.push(&f.hh01, "hh-01", vec![pick], None).await.0,
        StatusCode::OK
    );
    let list = f
        .ok(
            "GET",
            "/v1/discrepancies?site=WH1&status=open&kind=negative_stock",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    let d = list["discrepancies"]
        .as_array()
        .unwrap()
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("{list}"));
    let id = d["id"].as_u64().unwrap();
    assert_eq!(d["movements"], json!([{"device_id": "hh-01", "seq": 1}]));
    assert_eq!(
        f.ok(
            "GET",
            &format!("/v1/discrepancies/{id}"),
            Value::Null,
            StatusCode::OK
        )
        .await,
        d
    );

    let commented = f
        .ok(
            "POST",
            &format!("/v1/discrepancies/{id}/comments"),
            json!({"author": "ann", "text": "recount A-01"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(commented["comments"][0]["author"], "ann");

    let resolved = f
        .ok("POST", &format!("/v1/discrepancies/{id}/resolve"), json!({"type": "adjust", "location": "A-01", "gtin": EAN, "delta": 3, "reason": "found in the back"}), StatusCode::OK)
        .await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolution"]["type"], "adjust");
    assert_eq!(resolved["resolution"]["movement"]["device_id"], "office");
    let stock = f
        .ok("GET", "/v1/stock?site=WH1", Value::Null, StatusCode::OK)
        .await;
    assert_eq!(
        stock["stock"],
        json!([]),
        "the adjustment brought A-01 back to zero"
    );
    let office = f
        .ok(
            "GET",
            "/v1/movements?device=office",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(office["movements"][0]["movement"]["kind"], "adjust");
    let open = f
        .ok(
            "GET",
            "/v1/discrepancies?status=open",
            Value::Null,
            StatusCode::OK,
        )
        .await;
    assert_eq!(open["discrepancies"], json!([]));
}

#[tokio::test]
async fn pull_over_http_matches_the_store_and_pages() {
    let f = fixture();
    f.ok(
        "PUT",
        &format!("/v1/items/{EAN}"),
        json!({"description": "Widget"}),
        StatusCode::CREATED,
    )
    .await;
    for code in ["A-01", "A-02", "A-03"] {
        f.ok(
            "PUT",
            &format!("/v1/sites/WH1/locations/{code}"),
            json!({}),
            StatusCode::CREATED,
        )
        .await;
    }
    f.ok(
        "PUT",
        "/v1/sites/WH2/locations/G-01",
        json!({}),
        StatusCode::CREATED,
    )
    .await;
    f.ok("POST", "/v1/asns", asn("ASN-1"), StatusCode::CREATED)
        .await;
    f.ok(
        "POST",
        "/v1/pick-lists",
        pick_list("PL-1"),
        StatusCode::CREATED,
    )
    .await;
    f.ok(
        "POST",
        "/v1/pick-lists/PL-1/cancel",
        Value::Null,
        StatusCode::OK,
    )
    .await;

    let (status, full) = f.pull(&f.hh01, "").await;
    assert_eq!(status, StatusCode::OK, "{full}");
    let full: PullResponse = serde_json::from_value(full).unwrap();
    assert_eq!(full, f.store.pull("WH1", 0, 1000).unwrap());
    assert!(!full.more);
    // item + 3 locations + ASN + the pick list's cancellation (its creation was superseded).
    assert_eq!(full.changes.len(), 6, "{full:?}");
    assert_eq!(
        full.changes.last(),
        Some(&Change::Cancel {
            reference: "PL-1".into()
        })
    );

    // Page through two at a time: the same changes, `more` until the last page.
    let (mut cursor, mut got) = (0, Vec::new());
    loop {
        let (status, page) = f.pull(&f.hh01, &format!("?cursor={cursor}&limit=2")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let page: PullResponse = serde_json::from_value(page).unwrap();
        assert_eq!(page, f.store.pull("WH1", cursor, 2).unwrap());
        got.extend(page.changes);
        cursor = page.cursor;
        if !page.more {
            break;
        }
    }
    assert_eq!(got, full.changes);
    assert_eq!(cursor, full.cursor);
    let (_, tail) = f.pull(&f.hh01, &format!("?cursor={cursor}")).await;
    assert_eq!(
        tail,
        json!({"cursor": cursor, "more": false, "changes": []})
    );

    // WH2's device sees the item and its own location only.
    let (_, wh2) = f.pull(&f.rf01, "?cursor=0&limit=5000").await;
    let wh2: PullResponse = serde_json::from_value(wh2).unwrap();
    assert_eq!(wh2.changes.len(), 2, "{wh2:?}");
    assert!(matches!(&wh2.changes[1], Change::Location(l) if l.code == "G-01"));
}

#[tokio::test]
async fn openapi_describes_every_route_the_router_serves() {
    let f = fixture();
    let (status, doc) = send(
        &f.app,
        "GET",
        "/v1/openapi.json",
        None,
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let required = [
        ("get", "/v1/sites"),
        ("put", "/v1/sites"),
        ("put", "/v1/sites/{code}"),
        ("get", "/v1/items"),
        ("get", "/v1/items/{gtin}"),
        ("put", "/v1/items/{gtin}"),
        ("post", "/v1/items/import"),
        ("get", "/v1/sites/{site}/locations"),
        ("put", "/v1/sites/{site}/locations/{code}"),
        ("post", "/v1/sites/{site}/locations/import"),
        ("post", "/v1/asns"),
        ("get", "/v1/asns"),
        ("get", "/v1/asns/{id}"),
        ("post", "/v1/asns/{id}/close"),
        ("post", "/v1/asns/{id}/cancel"),
        ("post", "/v1/pick-lists"),
        ("get", "/v1/pick-lists"),
        ("get", "/v1/pick-lists/{id}"),
        ("post", "/v1/pick-lists/{id}/assign"),
        ("post", "/v1/pick-lists/{id}/cancel"),
        ("get", "/v1/devices"),
        ("post", "/v1/devices"),
        ("post", "/v1/devices/{id}/revoke"),
        ("get", "/v1/devices/{id}/high-water"),
        ("get", "/v1/stock"),
        ("get", "/v1/movements"),
        ("get", "/v1/discrepancies"),
        ("get", "/v1/discrepancies/{id}"),
        ("post", "/v1/discrepancies/{id}/comments"),
        ("post", "/v1/discrepancies/{id}/resolve"),
        ("get", "/v1/sync/pull"),
        ("get", "/v1/sync/stock"),
        ("post", "/v1/sync/push"),
        ("get", "/v1/health"),
        ("get", "/v1/openapi.json"),
    ];
    let served = routes();
    for r in required {
        assert!(served.contains(&r), "{r:?} is not served");
    }
    for (method, path) in served {
        let op = &doc["paths"][path][method];
        assert!(
            op["summary"].is_string() && op["responses"].is_object(),
            "{method} {path} undocumented"
        );
        for param in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        {
            let declared = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == param && p["in"] == "path");
            assert!(
                declared,
                "{method} {path}: path parameter {param} undeclared"
            );
        }
        if method != "get"
            && method != "delete"
            && path != "/v1/asns/{id}/close"
            && !path.ends_with("/cancel")
            && !path.ends_with("/revoke")
            && !path.ends_with("/retry")
        {
            assert!(
                op["requestBody"].is_object(),
                "{method} {path}: no request body described"
            );
        }
        // The router really serves it: never the fallback's 404 "no such route" nor 405.
        let uri = path
            .replace("{code}", "X")
            .replace("{gtin}", GTIN)
            .replace("{site}", "WH1")
            .replace("{id}", "1");
        let (status, body) = send(
            &f.app,
            &method.to_uppercase(),
            &uri,
            None,
            "application/json",
            vec![],
        )
        .await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_ne!(body["error"]["message"], "no such route", "{method} {uri}");
    }
    let error = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"];
    assert!(
        error["code"].is_object() && error["message"].is_object() && error["field"].is_object()
    );
}

#[tokio::test]
async fn every_office_route_needs_the_admin_token() {
    let f = fixture();
    for (method, path) in routes() {
        if matches!(
            path,
            "/v1/health"
                | "/v1/openapi.json"
                | "/v1/sync/push"
                | "/v1/sync/pull"
                | "/v1/sync/stock"
                | "/v1/sync/scan-stats"
        ) {
            continue;
        }
        let uri = path
            .replace("{code}", "X")
            .replace("{gtin}", GTIN)
            .replace("{site}", "WH1")
            .replace("{id}", "1");
        for token in [None, Some("wrong"), Some(f.hh01.as_str())] {
            let (status, body) = send(
                &f.app,
                &method.to_uppercase(),
                &uri,
                token,
                "application/json",
                b"{}".to_vec(),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with {token:?}: {body}"
            );
        }
    }
    // Device routes refuse the admin token.
    assert_eq!(f.pull(ADMIN, "").await.0, StatusCode::UNAUTHORIZED);
}

/// One bad request: what to send and the 4xx (and field) it must get.
struct Bad {
    method: &'static str,
    uri: String,
    content_type: &'static str,
    body: Vec<u8>,
    status: StatusCode,
    field: Option<&'static str>,
}

fn bad(
    method: &'static str,
    uri: &str,
    body: Value,
    status: u16,
    field: Option<&'static str>,
) -> Bad {
    Bad {
        method,
        uri: uri.to_string(),
        content_type: "application/json",
        body: if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        },
        status: StatusCode::from_u16(status).unwrap(),
        field,
    }
}

fn raw(
    method: &'static str,
    uri: &str,
    content_type: &'static str,
    body: &[u8],
    status: u16,
    field: Option<&'static str>,
) -> Bad {
    Bad {
        body: body.to_vec(),
        content_type,
        ..bad(method, uri, Value::Null, status, field)
    }
}

fn with(base: &Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = base.clone();
    edit(&mut v);
    v
}

#[tokio::test]
async fn bad_input_table() {
    let f = fixture();
    // Something to conflict with: an open and a closed ASN, an open and a cancelled pick list, a resolved
    // discrepancy (id `resolved`), an item and a location.
    f.ok(
        "PUT",
        "/v1/sites/WH1",
        json!({"name": "Main"}),
        StatusCode::OK,
    )
    .await;
    f.ok(
        "PUT",
        &format!("/v1/items/{EAN}"),
        json!({"description": "Widget"}),
        StatusCode::CREATED,
    )
    .await;
    f.ok(
        "PUT",
        "/v1/sites/WH1/locations/A-01",
        json!({}),
        StatusCode::CREATED,
    )
    .await;
    f.ok("POST", "/v1/asns", asn("ASN-1"), StatusCode::CREATED)
        .await;
    f.ok("POST", "/v1/asns", asn("ASN-C"), StatusCode::CREATED)
        .await;
    f.ok("POST", "/v1/asns/ASN-C/close", Value::Null, StatusCode::OK)
        .await;
    f.ok(
        "POST",
        "/v1/pick-lists",
        pick_list("PL-1"),
        StatusCode::CREATED,
    )
    .await;
    f.ok(
        "POST",
        "/v1/pick-lists",
        pick_list("PL-X"),
        StatusCode::CREATED,
    )
    .await;
    f.ok(
        "POST",
        "/v1/pick-lists/PL-X/cancel",
        Value::Null,
        StatusCode::OK,
    )
    .await;
    let resolved = f
        .store
        .discrepancies(&DiscrepancyFilter::default())
        .unwrap()[0]
        .id;
    f.ok(
        "POST",
        &format!("/v1/discrepancies/{resolved}/resolve"),
        json!({"type": "accepted", "reason": "supplier credit"}),
        StatusCode::OK,
    )
    .await;
    let r = format!("/v1/discrepancies/{resolved}");

    let asn1 = asn("ASN-9");
    let pl = pick_list("PL-9");
    let huge = vec![b' '; LIMIT + 1];
    let huge_json = format!("{{\"description\":\"{}\"}}", "x".repeat(LIMIT)).into_bytes();
    let item_head = "gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked\n";
    #[rustfmt::skip]
    let cases: Vec<Bad> = vec![
        // Sites.
        raw("PUT", "/v1/sites", "application/json", b"{\"sites\":[", 400, None),
        raw("PUT", "/v1/sites", "application/json", b"{\"sites\":[]", 400, None),
        bad("PUT", "/v1/sites", json!({"sites": "WH1"}), 400, Some("sites")),
        bad("PUT", "/v1/sites", json!({"sites": [{"code": "W H"}]}), 400, Some("sites[0].code")),
        bad("PUT", "/v1/sites", json!({"sites": [{"name": "x"}]}), 400, Some("sites[0].code")),
        bad("PUT", "/v1/sites", json!({"sites": [{"code": "A", "colour": 1}]}), 400, Some("sites[0].colour")),
        bad("PUT", "/v1/sites", json!({"sites": [{"code": "A"}, {"code": "A"}]}), 400, Some("sites[1].code")),
        bad("PUT", "/v1/sites/W%20H", json!({}), 400, Some("code")),
        bad("PUT", "/v1/sites/WH9", json!({"active": "no"}), 400, Some("active")),
        bad("PUT", "/v1/sites/WH9", json!({"code": "WH8"}), 400, Some("code")),
        bad("PUT", "/v1/sites/WH9", json!({"name": "a\u{7}b"}), 400, Some("name")),
        raw("PUT", "/v1/sites/WH9", "application/json", &huge, 413, None),
        bad("GET", "/v1/sites?colour=red", Value::Null, 400, Some("colour")),
        // Items.
        bad("GET", "/v1/items?limit=0", Value::Null, 400, Some("limit")),
        bad("GET", "/v1/items?limit=1001", Value::Null, 400, Some("limit")),
        bad("GET", "/v1/items?limit=-1", Value::Null, 400, Some("limit")),
        bad("GET", "/v1/items?limit=ten", Value::Null, 400, Some("limit")),
        bad("GET", "/v1/items?after=123", Value::Null, 400, Some("after")),
        bad("GET", "/v1/items?limit=1&limit=2", Value::Null, 400, Some("limit")),
        bad("GET", "/v1/items?colour=red", Value::Null, 400, Some("colour")),
        bad("GET", &format!("/v1/items/{BAD_GTIN}"), Value::Null, 400, Some("gtin")),
        bad("GET", &format!("/v1/items/{GTIN2}"), Value::Null, 404, None),
        bad("PUT", &format!("/v1/items/{BAD_GTIN}"), json!({"description": "x"}), 400, Some("gtin")),
        bad("PUT", &format!("/v1/items/{GTIN2}"), json!({}), 400, Some("description")),
        bad("PUT", &format!("/v1/items/{GTIN2}"), json!({"description": ""}), 400, Some("description")),
        bad("PUT", &format!("/v1/items/{GTIN2}"), json!({"description": "x", "lot_tracked": "yes"}), 400, Some("lot_tracked")),
        bad("PUT", &format!("/v1/items/{GTIN2}"), json!({"description": "x", "unit": "E A"}), 400, Some("unit")),
        bad("PUT", &format!("/v1/items/{GTIN2}"), json!({"description": "x", "gtin": EAN}), 400, Some("gtin")),
        bad("PUT", &format!("/v1/items/{GTIN2}"), json!({"description": "x", "colour": "red"}), 400, Some("colour")),
        bad("PUT", &format!("/v1/items/{GTIN2}"), json!([]), 400, None),
        raw("PUT", &format!("/v1/items/{GTIN2}"), "application/json", &huge_json, 413, None),
        raw("POST", "/v1/items/import", "text/csv", format!("{item_head}{EAN},A,EA,1,0,0\n{BAD_GTIN},B,EA,0,0,0\n").as_bytes(), 400, Some("gtin")),
        raw("POST", "/v1/items/import", "text/csv", format!("{item_head}{GTIN2},A,EA,maybe,0,0\n").as_bytes(), 400, Some("lot_tracked")),
        raw("POST", "/v1/items/import", "text/csv", format!("{item_head}{GTIN2},,EA,1,0,0\n").as_bytes(), 400, Some("description")),
        raw("POST", "/v1/items/import", "text/csv", b"gtin,description\n9506000134352,x\n", 400, Some("unit")),
        raw("POST", "/v1/items/import", "text/csv", b"", 400, Some("body")),
        raw("POST", "/v1/items/import", "text/csv", b"\xff\xfe", 400, Some("body")),
        raw("POST", "/v1/items/import", "application/json", b"{}", 400, Some("body")),
        raw("POST", "/v1/items/import", "application/json", b"[{\"gtin\":\"9506000134352\"", 400, Some("body")),
        raw("POST", "/v1/items/import", "application/json", format!("[{{\"gtin\":\"{GTIN2}\",\"description\":\"A\"}},{{\"gtin\":\"{BAD_GTIN}\",\"description\":\"B\"}}]").as_bytes(), 400, Some("[1].gtin")),
        raw("POST", "/v1/items/import", "application/xml", b"<items/>", 400, Some("content-type")),
        raw("POST", "/v1/items/import?dry_run=maybe", "text/csv", format!("{item_head}{GTIN2},A,EA,1,0,0\n").as_bytes(), 400, Some("dry_run")),
        raw("POST", "/v1/items/import?dryrun=true", "text/csv", format!("{item_head}{GTIN2},A,EA,1,0,0\n").as_bytes(), 400, Some("dryrun")),
        raw("POST", "/v1/items/import?dry_run=true", "text/csv", format!("{item_head}{GTIN2},A,EA,1,0,0\n{BAD_GTIN},B,EA,0,0,0\n").as_bytes(), 400, Some("gtin")),
        raw("POST", "/v1/items/import", "application/json", &huge, 413, None),
        raw("POST", "/v1/items/import", "text/csv", &huge, 413, None),
        // Locations.
        bad("GET", "/v1/sites/W%20H/locations", Value::Null, 400, Some("site")),
        bad("GET", "/v1/sites/WH1/locations?zone=Z1", Value::Null, 400, Some("zone")),
        bad("PUT", "/v1/sites/WH1/locations/%20A", json!({}), 400, Some("code")),
        bad("PUT", "/v1/sites/W%20H/locations/A-09", json!({}), 400, Some("site")),
        bad("PUT", "/v1/sites/WH1/locations/A-09", json!({"gln": "0614141000000"}), 400, Some("gln")),
        bad("PUT", "/v1/sites/WH1/locations/A-09", json!({"zone": "Z 1"}), 400, Some("zone")),
        bad("PUT", "/v1/sites/WH1/locations/A-09", json!({"active": 1}), 400, Some("active")),
        bad("PUT", "/v1/sites/WH1/locations/A-09", json!({"code": "A-08"}), 400, Some("code")),
        raw("PUT", "/v1/sites/WH1/locations/A-09", "application/json", b"nope", 400, None),
        raw("PUT", "/v1/sites/WH1/locations/A-09", "application/json", &huge, 413, None),
        raw("POST", "/v1/sites/WH1/locations/import", "text/csv", b"code,gln,zone\nA-08,,Z1\nA-09,0614141000000,Z1\n", 400, Some("gln")),
        raw("POST", "/v1/sites/WH1/locations/import", "text/csv", b"code,gln\nA-08,\n", 400, Some("zone")),
        raw("POST", "/v1/sites/W%20H/locations/import", "text/csv", b"code,gln,zone\nA-08,,\n", 400, Some("site")),
        raw("POST", "/v1/sites/WH1/locations/import", "text/csv", &huge, 413, None),
        raw("POST", "/v1/sites/WH1/locations/import", "application/json", b"[{\"code\":\"A-08\"},{\"code\":\"A-09\",\"zone\":\"Z 1\"}]", 400, Some("[1].zone")),
        raw("POST", "/v1/sites/WH1/locations/import?dry_run=1", "application/json", b"[{\"code\":\"A-08\"},{}]", 400, Some("[1].code")),
        // ASNs.
        raw("POST", "/v1/asns", "application/json", b"{\"id\":", 400, None),
        bad("POST", "/v1/asns", with(&asn1, |v| v["lines"][0]["qty"] = json!(0)), 400, Some("lines[0].qty")),
        bad("POST", "/v1/asns", with(&asn1, |v| v["lines"][0]["qty"] = json!(1_000_000_001u64)), 400, Some("lines[0].qty")),
        bad("POST", "/v1/asns", with(&asn1, |v| v["lines"][0]["qty"] = json!("1")), 400, Some("lines[0].qty")),
        bad("POST", "/v1/asns", with(&asn1, |v| v["lines"][0]["qty"] = json!(-1)), 400, Some("lines[0].qty")),
        bad("POST", "/v1/asns", with(&asn1, |v| v["lines"][0]["gtin"] = json!(BAD_GTIN)), 400, Some("lines[0].gtin")),
        bad("POST", "/v1/asns", with(&asn1, |v| v["lines"][0]["lot"] = json!("L".repeat(21))), 400, Some("lines[0].lot")),
        bad("POST", "/v1/asns", with(&asn1, |v| v["pallets"][0]["sscc"] = json!(BAD_SSCC)), 400, Some("pallets[0].sscc")),
        bad("POST", "/v1/asns", with(&asn1, |v| v["pallets"][0]["sscc"] = json!("12345")), 400, Some("pallets[0].sscc")),
        bad("POST", "/v1/asns", with(&asn1, |v| { v["pallets"][0]["lines"][0]["gtin"] = json!(BAD_GTIN) }), 400, Some("pallets[0].lines[0].gtin")),
        bad("POST", "/v1/asns", with(&asn1, |v| v["pallets"][0]["lines"] = json!([])), 400, Some("pallets[0].lines")),
        bad("POST", "/v1/asns", with(&asn1, |v| { v["lines"] = json!([]); v["pallets"] = json!([]); }), 400, Some("lines")),
        bad("POST", "/v1/asns", with(&asn1, |v| { v.as_object_mut().unwrap().remove("site"); }), 400, Some("site")),
        bad("POST", "/v1/asns", with(&asn1, |v| v["site"] = json!("W/H")), 400, Some("site")),
        bad("POST", "/v1/asns", with(&asn1, |v| v["id"] = json!("")), 400, Some("id")),
        bad("POST", "/v1/asns", with(&asn1, |v| v["expected_on"] = json!("2026-13-01")), 400, Some("expected_on")),
        bad("POST", "/v1/asns", with(&asn1, |v| v["status"] = json!("closed")), 400, Some("status")),
        bad("POST", "/v1/asns", with(&asn1, |v| v["status"] = json!("done")), 400, Some("status")),
        bad("POST", "/v1/asns", with(&asn1, |v| v["colour"] = json!("red")), 400, Some("colour")),
        bad("POST", "/v1/asns", asn("ASN-1"), 409, None),
        raw("POST", "/v1/asns", "application/json", &huge, 413, None),
        // ASN imports.
        raw("POST", "/v1/asns/import", "text/csv", format!("asn_id,site,gtin,qty\nASN-N,WH1,{EAN},5\nASN-1,WH1,{EAN},5\n").as_bytes(), 400, Some("asn_id")),
        raw("POST", "/v1/asns/import", "text/csv", format!("asn_id,site,gtin,qty\nASN-C,WH1,{EAN},5\n").as_bytes(), 400, Some("asn_id")),
        raw("POST", "/v1/asns/import", "text/csv", format!("asn_id,site,gtin,qty\nASN-N,WH1,{EAN},0\n").as_bytes(), 400, Some("qty")),
        raw("POST", "/v1/asns/import", "text/csv", format!("asn_id,site,gtin,qty,sscc\nASN-N,WH1,{EAN},1,{BAD_SSCC}\n").as_bytes(), 400, Some("sscc")),
        raw("POST", "/v1/asns/import", "text/csv", format!("asn_id,site,gtin,qty\nASN-N,WH1,{EAN},1\nASN-N,WH2,{EAN},1\n").as_bytes(), 400, Some("site")),
        raw("POST", "/v1/asns/import", "text/csv", b"asn_id,site,gtin\n", 400, Some("qty")),
        raw("POST", "/v1/asns/import", "text/csv", b"", 400, Some("body")),
        raw("POST", "/v1/asns/import", "text/csv", b"\xff\xfe", 400, Some("body")),
        raw("POST", "/v1/asns/import", "application/json", with(&json!([asn("ASN-N")]), |v| v[0]["lines"][0]["qty"] = json!(0)).to_string().as_bytes(), 400, Some("[0].lines[0].qty")),
        raw("POST", "/v1/asns/import", "application/json", json!([asn("ASN-N"), asn("ASN-N")]).to_string().as_bytes(), 400, Some("[1].id")),
        raw("POST", "/v1/asns/import", "application/json", json!([asn("ASN-N"), with(&asn("ASN-1"), |v| v["supplier"] = json!("Other"))]).to_string().as_bytes(), 400, Some("[1].id")),
        raw("POST", "/v1/asns/import", "application/json", asn("ASN-N").to_string().as_bytes(), 400, Some("body")),
        raw("POST", "/v1/asns/import?dry_run=true", "application/json", b"[7]", 400, Some("[0]")),
        raw("POST", "/v1/asns/import", "application/json", &huge, 413, None),
        bad("GET", "/v1/asns", Value::Null, 400, Some("site")),
        bad("GET", "/v1/asns?site=WH1&status=done", Value::Null, 400, Some("status")),
        bad("GET", "/v1/asns/NOPE", Value::Null, 404, None),
        bad("GET", "/v1/asns/a%20b", Value::Null, 400, Some("id")),
        bad("POST", "/v1/asns/NOPE/close", Value::Null, 404, None),
        bad("POST", "/v1/asns/ASN-C/close", Value::Null, 409, None),
        bad("POST", "/v1/asns/ASN-C/cancel", Value::Null, 409, None),
        bad("POST", "/v1/asns/NOPE/cancel", Value::Null, 404, None),
        // Pick lists.
        raw("POST", "/v1/pick-lists", "application/json", b"{\"id\":\"PL", 400, None),
        bad("POST", "/v1/pick-lists", with(&pl, |v| v["lines"][0]["qty"] = json!(0)), 400, Some("lines[0].qty")),
        bad("POST", "/v1/pick-lists", with(&pl, |v| v["lines"][0]["gtin"] = json!(BAD_GTIN)), 400, Some("lines[0].gtin")),
        bad("POST", "/v1/pick-lists", with(&pl, |v| v["lines"][0]["location"] = json!("")), 400, Some("lines[0].location")),
        bad("POST", "/v1/pick-lists", with(&pl, |v| v["lines"][0]["line"] = json!(-2)), 400, Some("lines[0].line")),
        bad("POST", "/v1/pick-lists", with(&pl, |v| { let l = v["lines"][0].clone(); v["lines"].as_array_mut().unwrap().push(l); }), 400, Some("lines[1].line")),
        bad("POST", "/v1/pick-lists", with(&pl, |v| v["lines"] = json!([])), 400, Some("lines")),
        bad("POST", "/v1/pick-lists", with(&pl, |v| { v.as_object_mut().unwrap().remove("lines"); }), 400, Some("lines")),
        bad("POST", "/v1/pick-lists", with(&pl, |v| v["device"] = json!("hh-99")), 400, Some("device")),
        bad("POST", "/v1/pick-lists", with(&pl, |v| v["device"] = json!("rf-01")), 409, None),
        bad("POST", "/v1/pick-lists", with(&pl, |v| v["zone"] = json!("Z 1")), 400, Some("zone")),
        bad("POST", "/v1/pick-lists", pick_list("PL-1"), 409, None),
        raw("POST", "/v1/pick-lists", "application/json", &huge, 413, None),
        bad("GET", "/v1/pick-lists", Value::Null, 400, Some("site")),
        bad("GET", "/v1/pick-lists?site=WH1&status=1", Value::Null, 400, Some("status")),
        bad("GET", "/v1/pick-lists/NOPE", Value::Null, 404, None),
        bad("POST", "/v1/pick-lists/PL-1/assign", json!({}), 400, Some("device")),
        bad("POST", "/v1/pick-lists/PL-1/assign", json!({"device": "hh-01", "zone": "Z1"}), 400, Some("zone")),
        bad("POST", "/v1/pick-lists/PL-1/assign", json!({"device": 5}), 400, Some("device")),
        bad("POST", "/v1/pick-lists/PL-1/assign", json!({"device": "hh-99"}), 400, Some("device")),
        bad("POST", "/v1/pick-lists/PL-1/assign", json!({"device": "rf-01"}), 409, None),
        bad("POST", "/v1/pick-lists/PL-1/assign", json!({"team": "x"}), 400, Some("team")),
        bad("POST", "/v1/pick-lists/PL-X/assign", json!({"zone": "Z1"}), 409, None),
        bad("POST", "/v1/pick-lists/NOPE/assign", json!({"zone": "Z1"}), 404, None),
        raw("POST", "/v1/pick-lists/PL-1/assign", "application/json", &huge, 413, None),
        bad("POST", "/v1/pick-lists/NOPE/cancel", Value::Null, 404, None),
        bad("POST", "/v1/pick-lists/PL-X/cancel", Value::Null, 409, None),
        // Devices.
        bad("GET", "/v1/devices?site=WH1", Value::Null, 400, Some("site")),
        bad("POST", "/v1/devices", json!({"device_id": "office", "site": "WH1"}), 400, Some("device_id")),
        bad("POST", "/v1/devices", json!({"device_id": "a/b", "site": "WH1"}), 400, Some("device_id")),
        bad("POST", "/v1/devices", json!({"device_id": "hh-03", "site": "W H"}), 400, Some("site")),
        bad("POST", "/v1/devices", json!({"device_id": "hh-03"}), 400, Some("site")),
        bad("POST", "/v1/devices", json!({"device_id": 3, "site": "WH1"}), 400, Some("device_id")),
        bad("POST", "/v1/devices", json!({"device_id": "hh-03", "site": "WH1", "admin": true}), 400, Some("admin")),
        bad("POST", "/v1/devices", json!({"device_id": "hh-01", "site": "WH1"}), 409, None),
        raw("POST", "/v1/devices", "application/json", b"", 400, None),
        raw("POST", "/v1/devices", "application/json", &huge, 413, None),
        bad("POST", "/v1/devices/NOPE/revoke", Value::Null, 404, None),
        bad("GET", "/v1/devices/NOPE/high-water", Value::Null, 404, None),
        // Stock.
        bad("GET", "/v1/stock?as_of=yesterday", Value::Null, 400, Some("as_of")),
        bad("GET", "/v1/stock?as_of=2026-11-26", Value::Null, 400, Some("as_of")),
        bad("GET", &format!("/v1/stock?gtin={BAD_GTIN}"), Value::Null, 400, Some("gtin")),
        bad("GET", "/v1/stock?site=W%20H", Value::Null, 400, Some("site")),
        bad("GET", "/v1/stock?colour=red", Value::Null, 400, Some("colour")),
        // Movements.
        bad("GET", "/v1/movements?limit=0", Value::Null, 400, Some("limit")),
        bad("GET", "/v1/movements?limit=1001", Value::Null, 400, Some("limit")),
        bad("GET", "/v1/movements?after=-1", Value::Null, 400, Some("after")),
        bad("GET", "/v1/movements?after=x", Value::Null, 400, Some("after")),
        bad("GET", "/v1/movements?kind=teleport", Value::Null, 400, Some("kind")),
        bad("GET", "/v1/movements?since=2026", Value::Null, 400, Some("since")),
        bad("GET", "/v1/movements?since=2026-11-27T00:00:00Z&until=2026-11-26T00:00:00Z", Value::Null, 400, Some("until")),
        bad("GET", &format!("/v1/movements?gtin={BAD_GTIN}"), Value::Null, 400, Some("gtin")),
        bad("GET", "/v1/movements?device=a%2Fb", Value::Null, 400, Some("device")),
        bad("GET", "/v1/movements?colour=red", Value::Null, 400, Some("colour")),
        // Discrepancies.
        bad("GET", "/v1/discrepancies?status=closed", Value::Null, 400, Some("status")),
        bad("GET", "/v1/discrepancies?kind=theft", Value::Null, 400, Some("kind")),
        bad("GET", "/v1/discrepancies/abc", Value::Null, 400, Some("id")),
        bad("GET", "/v1/discrepancies/-1", Value::Null, 400, Some("id")),
        bad("GET", "/v1/discrepancies/999", Value::Null, 404, None),
        bad("POST", &format!("{r}/comments"), json!({"author": "", "text": "x"}), 400, Some("author")),
        bad("POST", &format!("{r}/comments"), json!({"author": "ann"}), 400, Some("text")),
        bad("POST", &format!("{r}/comments"), json!({"author": "ann", "text": 5}), 400, Some("text")),
        bad("POST", &format!("{r}/comments"), json!({"author": "ann", "text": "x".repeat(4001)}), 400, Some("text")),
        bad("POST", "/v1/discrepancies/999/comments", json!({"author": "ann", "text": "x"}), 404, None),
        raw("POST", &format!("{r}/comments"), "application/json", &huge, 413, None),
        bad("POST", "/v1/discrepancies/999/resolve", json!({"type": "accepted", "reason": "x"}), 404, None),
        bad("POST", &format!("{r}/resolve"), json!({"type": "accepted", "reason": "again"}), 409, None),
        bad("POST", &format!("{r}/resolve"), json!({"type": "refund", "reason": "x"}), 400, Some("type")),
        bad("POST", &format!("{r}/resolve"), json!({"reason": "x"}), 400, Some("type")),
        bad("POST", &format!("{r}/resolve"), json!({"type": "accepted", "reason": ""}), 400, Some("reason")),
        bad("POST", &format!("{r}/resolve"), json!({"type": "accepted", "reason": "x", "delta": 1}), 400, Some("delta")),
        bad("POST", &format!("{r}/resolve"), json!({"type": "adjust", "location": "A-01", "gtin": EAN, "delta": 0, "reason": "x"}), 400, Some("delta")),
        bad("POST", &format!("{r}/resolve"), json!({"type": "adjust", "location": "A-01", "gtin": EAN, "delta": "1", "reason": "x"}), 400, Some("delta")),
        bad("POST", &format!("{r}/resolve"), json!({"type": "adjust", "location": "A-01", "gtin": BAD_GTIN, "delta": 1, "reason": "x"}), 400, Some("gtin")),
        bad("POST", &format!("{r}/resolve"), json!({"type": "adjust", "gtin": EAN, "delta": 1, "reason": "x"}), 400, Some("location")),
        raw("POST", &format!("{r}/resolve"), "application/json", &huge, 413, None),
        // Downstream sync parameters (device token below).
    ];
    for case in cases {
        let before = f.snapshot();
        let (status, body) = send(
            &f.app,
            case.method,
            &case.uri,
            Some(ADMIN),
            case.content_type,
            case.body,
        )
        .await;
        let name = format!("{} {}", case.method, case.uri);
        assert_eq!(status, case.status, "{name}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}: {body}"
        );
        if status == StatusCode::BAD_REQUEST {
            assert_eq!(
                body["error"]["field"].as_str(),
                case.field,
                "{name}: {body}"
            );
            if let Some(field) = case.field {
                assert!(
                    body["error"]["message"].as_str().unwrap().contains(field),
                    "{name}: the message names {field}: {body}"
                );
            }
        }
        assert_eq!(f.snapshot(), before, "{name} changed the store");
    }

    for (query, field) in [
        ("?cursor=-1", "cursor"),
        ("?cursor=abc", "cursor"),
        ("?cursor=1.5", "cursor"),
        ("?limit=0", "limit"),
        ("?limit=5001", "limit"),
        ("?limit=-5", "limit"),
        ("?since=0", "since"),
    ] {
        let (status, body) = f.pull(&f.hh01, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}

#[tokio::test]
async fn csv_import_errors_name_row_and_column_and_import_nothing() {
    let f = fixture();
    let cases: &[(&str, &str, &str)] = &[
        ("/v1/items/import", "gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked\n9506000134352,A,EA,1,0,0\n9506000134353,B,EA,0,0,0\n", "row 3, column gtin: "),
        ("/v1/items/import", "description,gtin,unit,lot_tracked,expiry_tracked,serial_tracked,active\nA,9506000134352,EA,1,0,0,perhaps\n", "row 2, column active: "),
        ("/v1/items/import", "gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked\n9506000134352,A,EA,1,0,0\n\n09506000134352,A,EA,1,0,0\n", "row 4, column gtin: "),
        ("/v1/items/import", "gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked,colour\n", "row 1, column colour: "),
        ("/v1/sites/WH1/locations/import", "code,gln,zone\nA-01,,Z1\nA-02,0614141000000,Z1\n", "row 3, column gln: "),
        ("/v1/sites/WH1/locations/import", "code,gln,zone\n\"A,1\",,Z1\n", "row 2, column code: "),
    ];
    for (uri, csv, want) in cases {
        let (status, body) = f.csv(uri, csv).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{csv:?}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(want), "{csv:?}: {message}");
    }
    let check = f.csv("/v1/items/import", cases[0].1).await.1;
    assert!(
        check["error"]["message"]
            .as_str()
            .unwrap()
            .contains("check digit"),
        "{check}"
    );
    assert_eq!(
        f.store.items(None, 100).unwrap(),
        vec![],
        "a bad file imports nothing"
    );
    assert_eq!(f.store.locations("WH1").unwrap(), vec![]);
}

#[tokio::test]
async fn device_list_keeps_the_latest_backlog() {
    let f = fixture();
    for (seq, backlog) in [(1, Some(9)), (2, Some(3)), (3, None)] {
        let m = receive("hh-01", seq, "D", 1, "2026-11-26T10:00:00Z");
        assert_eq!(
            f.push(&f.hh01, "hh-01", vec![m], backlog).await.0,
            StatusCode::OK
        );
    }
    let list = f
        .ok("GET", "/v1/devices", Value::Null, StatusCode::OK)
        .await;
    assert_eq!(
        list["devices"][0]["backlog"], 2,
        "3 reported with a batch of 1 leaves 2; a push without backlog keeps the last one"
    );
    // Within the persistence interval the file lags; flushing (as at shutdown) writes the latest.
    f.devices.flush_seen().unwrap();
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(f.dir.path().join("devices/hh-01.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(file["backlog"], 2);
}
