//! The OpenAPI 3.1 document (`GET /v1/openapi.json`) against the router it describes (issue 7, scope 4).
//!
//! - `every_route_is_documented`: the router's own route table ([`routes`]) and the document's operations are the
//!   same set, each really served (never the fallback); the dashboard's HTML routes ([`pages`]) are the only other
//!   routes of the router, and they sit outside `/v1/` and `/metrics` (the rule the document's docs state); the
//!   document is 3.1 through and through (no 3.0 `nullable` or `example`) and every component schema compiles as
//!   JSON Schema 2020-12.
//! - `every_documented_response_is_produced_and_valid`: for every (route, status) the document lists, at least one
//!   real request in this test produces it, and EVERY response this test receives (a) has a status the document
//!   lists for its route, (b) has the documented media type and (c) has a body that validates, with format checks,
//!   against the documented schema with every object closed (`additionalProperties: false` added wherever the
//!   document leaves an object open), so a field a handler emits and the schema does not name fails here. The JSON
//!   request bodies of successful requests validate against the documented request schemas too.
//!
//! Which request produces each (route, status):
//! - 200/201, 400, 403, 404 and 409: the lines of [`probes`], in order, on a sled store seeded by the earlier lines;
//!   each line says what it does.
//! - 401: every operation with a security requirement, without a credential (generated); and a revoked device's
//!   push, for the `revoked` code.
//! - 413: every operation with a request body, with a body one byte over the limit (generated).
//! - 503: every operation that documents it, replaying its first successful line of [`probes`] against a server
//!   whose store and device registry are PostgreSQL on a throw-away cluster that was stopped after the server
//!   opened it: a real storage outage, answered by the real error mapping.
//!
//! No documented status is left unproduced; the test fails naming any that is.

mod pg;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use dockhand_protocol::sync::{Movement, MovementKind, MovementSource, PushRequest};
use dockhand_server::web::pages;
use dockhand_server::{
    app, enroll, routes, AdminToken, AppState, DeviceRegistry, Devices, PgDevices, PgStore,
    SledStore, Store,
};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "admin-secret";
const LIMIT: usize = 64 * 1024;
const EAN: &str = "9506000134352";
const GTIN: &str = "09506000134352";
/// A valid GTIN the server has no item for.
const UNKNOWN_GTIN: &str = "05901234123457";
const SSCC: &str = "106141411234567897";

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Admin,
    /// hh-01 at WH1.
    Hh01,
    /// hh-02 at WH1.
    Hh02,
    /// A device the office revoked.
    Revoked,
}

/// A request body.
#[derive(Debug, Clone)]
enum Req {
    None,
    Json(Value),
    Csv(String),
    Raw(String),
}

/// One request and the status it must get.
#[derive(Debug, Clone)]
struct Probe {
    method: String,
    uri: String,
    who: Who,
    body: Req,
    status: u16,
    /// What it does, for the reader and the failure message.
    why: &'static str,
}

fn p(method: &str, uri: &str, who: Who, body: Req, status: u16, why: &'static str) -> Probe {
    Probe {
        method: method.to_string(),
        uri: uri.to_string(),
        who,
        body,
        status,
        why,
    }
}

fn movement(seq: u64, gtin: &str, qty: u64) -> Movement {
    Movement {
        device_id: "hh-01".into(),
        seq,
        at: time::macros::datetime!(2026-11-26 10:00 UTC) + time::Duration::seconds(seq as i64),
        kind: MovementKind::Receive,
        gtin: gtin.into(),
        lot: Some("L1".into()),
        expiry: Some("2027-03-31".into()),
        serials: vec![],
        qty,
        from_location: None,
        to_location: Some("A-01".into()),
        sscc: None,
        reference: Some("ASN-1".into()),
        operator: Some("amy".into()),
        source: MovementSource::Barcode {
            raw: format!("]C101{gtin}10L1"),
            symbology: Some("]C1".into()),
        },
    }
}

fn push(device: &str, movements: Vec<Movement>) -> Req {
    Req::Json(
        serde_json::to_value(PushRequest {
            device_id: device.into(),
            movements,
            backlog: Some(0),
        })
        .unwrap(),
    )
}

fn asn(id: &str, site: &str) -> Req {
    Req::Json(json!({
        "id": id, "site": site, "supplier": "ACME", "expected_on": "2026-12-01",
        "lines": [{"gtin": EAN, "lot": "L1", "qty": 10}],
        "pallets": [{"sscc": SSCC, "lines": [{"gtin": UNKNOWN_GTIN, "qty": 4}]}],
    }))
}

fn pick_list(id: &str) -> Req {
    Req::Json(json!({"id": id, "site": "WH1", "lines": [
        {"line": 1, "location": "A-01", "gtin": EAN, "lot": "L1", "qty": 2},
    ]}))
}

/// The hand-written requests, in order (later lines rely on what earlier ones created).
fn probes() -> Vec<Probe> {
    use Who::{Admin, Hh01, Hh02, Nobody};
    let j = Req::Json;
    vec![
        p("GET", "/v1/health", Nobody, Req::None, 200, "liveness"),
        p("GET", "/v1/openapi.json", Nobody, Req::None, 200, "this document"),
        p("GET", "/metrics", Admin, Req::None, 200, "the exposition"),
        // Sites.
        p("PUT", "/v1/sites", Admin, j(json!({"sites": [{"code": "WH1", "name": "Main"}, {"code": "WH2"}]})), 200, "two sites"),
        p("PUT", "/v1/sites", Admin, j(json!({"sites": [{"code": "bad code"}]})), 400, "a space in a site code"),
        p("PUT", "/v1/sites/WH9", Admin, j(json!({"name": "Old", "active": false})), 200, "a deactivated site"),
        p("PUT", "/v1/sites/WH9", Admin, j(json!({"code": "WH8"})), 400, "body code differs from the path's"),
        p("GET", "/v1/sites", Admin, Req::None, 200, "all sites"),
        p("GET", "/v1/sites?colour=red", Admin, Req::None, 400, "an unknown query parameter"),
        // Items.
        p("PUT", &format!("/v1/items/{EAN}"), Admin, j(json!({"description": "Widget"})), 201, "a new item"),
        p("PUT", &format!("/v1/items/{EAN}"), Admin, j(json!({"description": "Widget, blue", "lot_tracked": true})), 200, "the same item updated"),
        p("PUT", "/v1/items/9506000134353", Admin, j(json!({"description": "x"})), 400, "a wrong check digit"),
        p("GET", &format!("/v1/items/{GTIN}"), Admin, Req::None, 200, "one item"),
        p("GET", "/v1/items/9506000134353", Admin, Req::None, 400, "a wrong check digit"),
        p("GET", &format!("/v1/items/{UNKNOWN_GTIN}"), Admin, Req::None, 404, "a valid GTIN without an item"),
        p("GET", "/v1/items?limit=1", Admin, Req::None, 200, "a page of one"),
        p("GET", "/v1/items?limit=0", Admin, Req::None, 400, "a page size out of range"),
        p("POST", "/v1/items/import", Admin, Req::Csv("gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked\n04006381333931,Doohickey,CS,0,1,0\n".into()), 200, "a CSV import"),
        p("POST", "/v1/items/import", Admin, Req::Csv("gtin,description\n".into()), 400, "missing columns"),
        p("POST", "/v1/items/import?dry_run=true", Admin, Req::Csv("gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked\n04006381333931,Doohickey,CS,0,1,0\n".into()), 200, "a dry run"),
        p("POST", "/v1/items/import", Admin, j(json!([{"gtin": "04006381333931", "description": "Doohickey", "unit": "CS", "expiry_tracked": true}])), 200, "a JSON import"),
        p("POST", "/v1/items/import", Admin, Req::Csv("gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked\n1,,CS,0,1,0\n04006381333931,X,CS,0,1\n".into()), 400, "bad rows, each listed"),
        p("POST", "/v1/items/import", Admin, j(json!([{"gtin": "1", "description": "x"}])), 400, "a bad JSON element, listed"),
        // Locations.
        p("PUT", "/v1/sites/WH1/locations/A-01", Admin, j(json!({"zone": "Z1"})), 201, "a new location"),
        p("PUT", "/v1/sites/WH1/locations/A-01", Admin, j(json!({"zone": "Z1", "gln": "0614141000005"})), 200, "the same location with a GLN"),
        p("PUT", "/v1/sites/WH1/locations/A-02", Admin, j(json!({"gln": "0614141000000"})), 400, "a GLN with a wrong check digit"),
        p(
            "PUT",
            "/v1/sites/WH1/locations/A-09",
            Admin,
            Req::Raw("[null, null]".into()),
            400,
            "an array where an object belongs (schemathesis found serde reading it by position)",
        ),
        p("GET", "/v1/sites/WH1/locations", Admin, Req::None, 200, "the site's locations"),
        p("GET", "/v1/sites/WH%201/locations", Admin, Req::None, 400, "a space in the site"),
        p("POST", "/v1/sites/WH1/locations/import", Admin, Req::Csv("code,gln,zone\nB-01,,Z1\n".into()), 200, "a CSV import"),
        p("POST", "/v1/sites/WH1/locations/import", Admin, Req::Csv("code,gln,zone,colour\n".into()), 400, "an unknown column"),
        p("POST", "/v1/sites/WH1/locations/import?dry_run=1", Admin, j(json!([{"code": "B-02", "zone": "Z1"}])), 200, "a JSON dry run"),
        // Devices.
        p("POST", "/v1/devices", Admin, j(json!({"device_id": "hh-09", "site": "WH1"})), 201, "enrollment"),
        p("POST", "/v1/devices", Admin, j(json!({"device_id": "hh-09", "site": "WH1"})), 409, "already enrolled, no rotate"),
        p("POST", "/v1/devices", Admin, j(json!({"device_id": "office", "site": "WH1"})), 400, "the reserved id"),
        p("GET", "/v1/devices", Admin, Req::None, 200, "the registry"),
        p("GET", "/v1/devices?x=1", Admin, Req::None, 400, "an unknown query parameter"),
        p("POST", "/v1/devices/hh-09/revoke", Admin, Req::None, 200, "a revocation"),
        p("POST", "/v1/devices/nobody/revoke", Admin, Req::None, 404, "no such device"),
        // Device sync: a receipt of the known item and one of an unknown item (discrepancy 1).
        p("POST", "/v1/sync/push", Hh01, push("hh-01", vec![movement(1, GTIN, 4), movement(2, UNKNOWN_GTIN, 1)]), 200, "a batch"),
        p("POST", "/v1/sync/push", Hh01, push("hh-01", vec![movement(9, GTIN, 1)]), 409, "a sequence gap"),
        p("POST", "/v1/sync/push", Hh01, Req::Raw("{\"device_id\":".into()), 400, "cut-off JSON"),
        p("POST", "/v1/sync/push", Hh02, push("hh-01", vec![movement(3, GTIN, 1)]), 403, "another device's movements"),
        p("POST", "/v1/sync/scan-stats", Hh01, j(json!({"device_id": "hh-01", "stats": [
            {"hour": "2026-11-27T06:00:00Z", "operator": "anna", "reason": "over_pick", "count": 2}]})), 200, "refused-scan counters"),
        p("POST", "/v1/sync/scan-stats", Hh01, j(json!({"device_id": "hh-01", "stats": [
            {"hour": "2026-11-27T06:30:00Z", "reason": "over_pick", "count": 2}]})), 400, "not the start of an hour"),
        p("POST", "/v1/sync/scan-stats", Hh02, j(json!({"device_id": "hh-01", "stats": []})), 403, "another device's counters"),
        p("POST", "/v1/sync/push", Who::Revoked, push("old", vec![]), 401, "a revoked device (code revoked)"),
        p("GET", "/v1/sync/pull", Hh01, Req::None, 200, "the feed from 0"),
        p("GET", "/v1/sync/pull?limit=0", Hh01, Req::None, 400, "a page size out of range"),
        p("GET", "/v1/sync/stock", Hh01, Req::None, 200, "the site's stock"),
        p("GET", "/v1/sync/stock?site=WH2", Hh01, Req::None, 403, "another site's stock"),
        p("GET", "/v1/sync/stock?bogus=1", Hh01, Req::None, 400, "an unknown query parameter"),
        p("GET", "/v1/devices/hh-01/high-water", Admin, Req::None, 200, "hh-01 is at 2"),
        p("GET", "/v1/devices/nobody/high-water", Admin, Req::None, 404, "no such device"),
        // ASNs.
        p("POST", "/v1/asns", Admin, asn("ASN-1", "WH1"), 201, "an ASN"),
        p("POST", "/v1/asns", Admin, asn("ASN-1", "WH1"), 409, "the id exists"),
        p("POST", "/v1/asns", Admin, asn("ASN-9", "WH9"), 409, "a deactivated site"),
        p("POST", "/v1/asns", Admin, j(json!({"id": "ASN-3", "site": "WH1"})), 400, "no lines"),
        p("POST", "/v1/asns", Admin, asn("ASN-2", "WH1"), 201, "a second ASN"),
        p("POST", "/v1/asns/import", Admin, Req::Csv(format!("asn_id,site,supplier,expected_on,sscc,gtin,lot,qty\nASN-I1,WH1,ACME,2026-12-01,,{EAN},L1,10\nASN-I1,WH1,ACME,2026-12-01,{SSCC},{UNKNOWN_GTIN},,4\n")), 200, "an ASN import"),
        p("POST", "/v1/asns/import?dry_run=true", Admin, Req::Csv(format!("asn_id,site,gtin,qty\nASN-I1,WH1,{EAN},10\n")), 400, "the id exists with other content"),
        p("POST", "/v1/asns/import", Admin, j(json!([{"id": "ASN-I2", "site": "WH1", "lines": [{"gtin": EAN, "qty": 1}]}])), 200, "a JSON ASN import"),
        p("GET", "/v1/asns?site=WH1&status=open", Admin, Req::None, 200, "the open ASNs"),
        p("GET", "/v1/asns", Admin, Req::None, 400, "site is required"),
        p("GET", "/v1/asns/ASN-1", Admin, Req::None, 200, "one ASN"),
        p("GET", "/v1/asns/a%20b", Admin, Req::None, 400, "a space in the id"),
        p("GET", "/v1/asns/NOPE", Admin, Req::None, 404, "no such ASN"),
        p("POST", "/v1/asns/ASN-1/close", Admin, Req::None, 200, "closing (short lines become discrepancies)"),
        p("POST", "/v1/asns/ASN-1/close", Admin, Req::None, 409, "closing twice"),
        p("POST", "/v1/asns/a%20b/close", Admin, Req::None, 400, "a space in the id"),
        p("POST", "/v1/asns/NOPE/close", Admin, Req::None, 404, "no such ASN"),
        p("POST", "/v1/asns/ASN-2/cancel", Admin, Req::None, 200, "cancelling"),
        p("POST", "/v1/asns/ASN-2/cancel", Admin, Req::None, 409, "cancelling a cancelled ASN"),
        p("POST", "/v1/asns/a%20b/cancel", Admin, Req::None, 400, "a space in the id"),
        p("POST", "/v1/asns/NOPE/cancel", Admin, Req::None, 404, "no such ASN"),
        // Pick lists.
        p("POST", "/v1/pick-lists", Admin, pick_list("PL-1"), 201, "a pick list"),
        p("POST", "/v1/pick-lists", Admin, pick_list("PL-1"), 409, "the id exists"),
        p("POST", "/v1/pick-lists", Admin, j(json!({"id": "PL-3", "site": "WH1", "lines": []})), 400, "no lines"),
        p("POST", "/v1/pick-lists", Admin, pick_list("PL-2"), 201, "a second pick list"),
        p("GET", "/v1/pick-lists?site=WH1", Admin, Req::None, 200, "the site's pick lists"),
        p("GET", "/v1/pick-lists", Admin, Req::None, 400, "site is required"),
        p("GET", "/v1/pick-lists/PL-1", Admin, Req::None, 200, "one pick list"),
        p("GET", "/v1/pick-lists/a%20b", Admin, Req::None, 400, "a space in the id"),
        p("GET", "/v1/pick-lists/NOPE", Admin, Req::None, 404, "no such pick list"),
        p("POST", "/v1/pick-lists/PL-1/assign", Admin, j(json!({"device": "hh-01"})), 200, "assigned to hh-01"),
        p("POST", "/v1/pick-lists/PL-1/assign", Admin, j(json!({})), 400, "neither device nor zone"),
        p("POST", "/v1/pick-lists/NOPE/assign", Admin, j(json!({"zone": "Z1"})), 404, "no such pick list"),
        p("POST", "/v1/pick-lists/PL-2/cancel", Admin, Req::None, 200, "cancelling"),
        p("POST", "/v1/pick-lists/PL-2/cancel", Admin, Req::None, 409, "cancelling twice"),
        p("POST", "/v1/pick-lists/PL-2/assign", Admin, j(json!({"zone": "Z1"})), 409, "assigning a cancelled list"),
        p("POST", "/v1/pick-lists/a%20b/cancel", Admin, Req::None, 400, "a space in the id"),
        p("POST", "/v1/pick-lists/NOPE/cancel", Admin, Req::None, 404, "no such pick list"),
        // Stock and history.
        p("GET", "/v1/stock?site=WH1", Admin, Req::None, 200, "the stock of WH1"),
        p("GET", "/v1/stock?as_of=yesterday", Admin, Req::None, 400, "not an RFC 3339 time"),
        p("GET", "/v1/movements?site=WH1&limit=1", Admin, Req::None, 200, "a page of history"),
        p("GET", "/v1/movements?kind=teleport", Admin, Req::None, 400, "not a movement kind"),
        p("GET", "/v1/epcis/events?site=WH1", Admin, Req::None, 200, "the EPCIS export"),
        p("GET", "/v1/epcis/events?limit=0", Admin, Req::None, 400, "a page size out of range"),
        p("GET", "/v1/reports/pick-accuracy?site=WH1&since=2026-11-27T00:00:00Z&until=2026-11-28T00:00:00Z", Admin, Req::None, 200, "a day's pick accuracy"),
        p("GET", "/v1/reports/pick-accuracy?site=WH1&since=2026-11-28T00:00:00Z&until=2026-11-27T00:00:00Z", Admin, Req::None, 400, "a reversed period"),
        // Reports and replenishment.
        p("GET", "/v1/reports/productivity?site=WH1&since=2020-01-01T00:00:00Z&until=2020-12-31T00:00:00Z", Admin, Req::None, 200, "productivity"),
        p("GET", "/v1/reports/productivity?site=WH1&since=2026-01-01T00:00:00Z&until=2025-01-01T00:00:00Z", Admin, Req::None, 400, "until before since"),
        p("GET", "/v1/reports/dock-to-stock?site=WH1&since=2020-01-01T00:00:00Z&until=2020-12-31T00:00:00Z", Admin, Req::None, 200, "dock-to-stock"),
        p("GET", "/v1/reports/dock-to-stock?site=WH1&since=2020-01-01T00:00:00Z&until=2022-01-01T00:00:00Z", Admin, Req::None, 400, "more than a year"),
        p("GET", "/v1/reports/inventory?site=WH1", Admin, Req::None, 200, "inventory now"),
        p("GET", "/v1/reports/inventory?site=NOWHERE", Admin, Req::None, 400, "an unknown site"),
        p("GET", "/v1/reports/turnover?site=WH1&since=2020-01-01T00:00:00Z&until=2020-12-31T00:00:00Z", Admin, Req::None, 200, "turnover"),
        p("GET", "/v1/reports/turnover?site=WH1&since=yesterday&until=2020-12-31T00:00:00Z", Admin, Req::None, 400, "not an RFC 3339 time"),
        p("GET", "/v1/reports/expiry?site=WH1&days=10", Admin, Req::None, 200, "expiry"),
        p("GET", "/v1/reports/expiry?site=WH1&days=99999", Admin, Req::None, 400, "a horizon out of range"),
        p("PUT", &format!("/v1/sites/WH1/replenishment/{GTIN}"), Admin, j(json!({"reorder_point": 5, "reorder_qty": 20})), 201, "a new rule"),
        p("PUT", &format!("/v1/sites/WH1/replenishment/{GTIN}"), Admin, j(json!({"reorder_point": 1000, "max": 2000})), 200, "the rule replaced"),
        p("PUT", &format!("/v1/sites/WH1/replenishment/{GTIN}"), Admin, j(json!({"reorder_point": 5})), 400, "neither reorder_qty nor max"),
        p("GET", "/v1/replenishment?site=WH1", Admin, Req::None, 200, "the suggestions"),
        p("GET", "/v1/replenishment?format=xml", Admin, Req::None, 400, "an unknown format"),
        // Discrepancies (1 is the unknown item received above).
        p("GET", "/v1/discrepancies?status=open", Admin, Req::None, 200, "the open ones"),
        p("GET", "/v1/discrepancies?status=maybe", Admin, Req::None, 400, "not a status"),
        p("GET", "/v1/discrepancies/1", Admin, Req::None, 200, "one discrepancy"),
        p("GET", "/v1/discrepancies/x", Admin, Req::None, 400, "not a number"),
        p("GET", "/v1/discrepancies/999", Admin, Req::None, 404, "no such discrepancy"),
        p("POST", "/v1/discrepancies/1/comments", Admin, j(json!({"author": "amy", "text": "checking"})), 200, "a comment"),
        p("POST", "/v1/discrepancies/1/comments", Admin, j(json!({"author": "", "text": "x"})), 400, "an empty author"),
        p("POST", "/v1/discrepancies/999/comments", Admin, j(json!({"author": "amy", "text": "x"})), 404, "no such discrepancy"),
        p("POST", "/v1/discrepancies/1/resolve", Admin, j(json!({"type": "adjust", "location": "A-01", "gtin": UNKNOWN_GTIN, "delta": -1, "reason": "not ours"})), 200, "an adjustment"),
        p("POST", "/v1/discrepancies/1/resolve", Admin, j(json!({"type": "accepted", "reason": "again"})), 409, "resolving twice"),
        p("POST", "/v1/discrepancies/2/resolve", Admin, j(json!({"type": "adjust", "reason": "x"})), 400, "adjust without a location"),
        p("POST", "/v1/discrepancies/999/resolve", Admin, j(json!({"type": "accepted", "reason": "x"})), 404, "no such discrepancy"),
        p("GET", "/v1/discrepancies/1", Admin, Req::None, 200, "a resolved discrepancy"),
        // Webhooks (wh_fixed and its deliveries 1, delivered, and 2, pending, are seeded by seed_webhook).
        p("POST", "/v1/webhooks", Admin, j(json!({"url": "https://erp.example.com/in", "events": ["movement.applied", "receipt.closed"], "description": "ERP"})), 201, "a registration"),
        p("POST", "/v1/webhooks", Admin, j(json!({"url": "ftp://erp/", "events": ["movement.applied"]})), 400, "not http(s)"),
        p("POST", "/v1/webhooks", Admin, j(json!({"url": "https://erp/", "events": ["stock.changed"]})), 400, "an unknown event kind"),
        p("GET", "/v1/webhooks", Admin, Req::None, 200, "the endpoints with their counts"),
        p("GET", "/v1/webhooks?all=1", Admin, Req::None, 400, "an unknown query parameter"),
        p("GET", "/v1/webhooks/wh_fixed/deliveries?status=delivered", Admin, Req::None, 200, "the delivered ones"),
        p("GET", "/v1/webhooks/wh_fixed/deliveries?status=lost", Admin, Req::None, 400, "not a delivery status"),
        p("GET", "/v1/webhooks/wh_nope/deliveries", Admin, Req::None, 404, "no such endpoint"),
        p("POST", "/v1/webhooks/wh_fixed/deliveries/2/retry", Admin, Req::None, 200, "a pending delivery made due now"),
        p("POST", "/v1/webhooks/wh_fixed/deliveries/1/retry", Admin, Req::None, 409, "a delivered one"),
        p("POST", "/v1/webhooks/wh_fixed/deliveries/x/retry", Admin, Req::None, 400, "not a delivery id"),
        p("POST", "/v1/webhooks/wh_fixed/deliveries/99/retry", Admin, Req::None, 404, "no such delivery"),
        p("DELETE", "/v1/webhooks/a%20b", Admin, Req::None, 400, "a space in the id"),
        p("DELETE", "/v1/webhooks/wh_nope", Admin, Req::None, 404, "no such endpoint"),
        p("DELETE", "/v1/webhooks/wh_fixed", Admin, Req::None, 200, "deleting an endpoint and its deliveries"),
    ]
}

/// Tokens by [`Who`], per server.
struct Tokens {
    hh01: String,
    hh02: String,
    revoked: String,
}

impl Tokens {
    fn of(&self, who: Who) -> Option<&str> {
        match who {
            Who::Nobody => None,
            Who::Admin => Some(ADMIN),
            Who::Hh01 => Some(&self.hh01),
            Who::Hh02 => Some(&self.hh02),
            Who::Revoked => Some(&self.revoked),
        }
    }
}

/// What came back.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

async fn send(app: &Router, tokens: &Tokens, probe: &Probe) -> Answer {
    let mut req = Request::builder()
        .method(probe.method.as_str())
        .uri(&probe.uri);
    if let Some(t) = tokens.of(probe.who) {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let (content_type, body) = match &probe.body {
        Req::None => ("application/json", Vec::new()),
        Req::Json(v) => ("application/json", serde_json::to_vec(v).unwrap()),
        Req::Csv(t) => ("text/csv", t.clone().into_bytes()),
        Req::Raw(t) => ("application/json", t.clone().into_bytes()),
    };
    let req = req.header("content-type", content_type);
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

/// The document, with every object schema closed: what responses are checked against.
struct Spec {
    doc: Value,
    strict: Value,
}

impl Spec {
    fn new(doc: Value) -> Spec {
        let mut strict = doc.clone();
        close_objects(&mut strict);
        Spec { doc, strict }
    }

    /// The documented path template `uri` is an instance of, for `method` (literal segments beat parameters).
    fn template(&self, method: &str, uri: &str) -> Option<String> {
        let path = uri.split('?').next().unwrap();
        let segments: Vec<&str> = path.split('/').collect();
        let method = method.to_ascii_lowercase();
        self.doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, ops)| ops.get(&method).is_some())
            .filter_map(|(template, _)| {
                let parts: Vec<&str> = template.split('/').collect();
                let fits = parts.len() == segments.len()
                    && parts
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| t.starts_with('{') || t == s);
                fits.then(|| {
                    (
                        parts.iter().filter(|t| !t.starts_with('{')).count(),
                        template,
                    )
                })
            })
            .max()
            .map(|(_, t)| t.clone())
    }

    fn operation(&self, method: &str, template: &str) -> &Value {
        &self.doc["paths"][template][method.to_ascii_lowercase()]
    }

    /// Every documented `(method, template, status)`.
    fn documented(&self) -> BTreeSet<(String, String, u16)> {
        let mut out = BTreeSet::new();
        for (template, ops) in self.doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                for status in op["responses"].as_object().unwrap().keys() {
                    out.insert((
                        method.to_uppercase(),
                        template.clone(),
                        status.parse().unwrap(),
                    ));
                }
            }
        }
        out
    }

    /// The JSON pointer of the documented body schema of (method, template, status), and its media type.
    fn response_schema(
        &self,
        method: &str,
        template: &str,
        status: u16,
    ) -> Option<(String, String)> {
        let op = self.operation(method, template);
        let mut response = &op["responses"][status.to_string()];
        let mut pointer = format!(
            "#/paths/{}/{}/responses/{status}",
            escape(template),
            method.to_ascii_lowercase()
        );
        if let Some(r) = response["$ref"].as_str() {
            pointer = r.to_string();
            let name = r.rsplit('/').next().unwrap();
            response = &self.doc["components"]["responses"][name];
        }
        let (media, _) = response["content"].as_object()?.iter().next()?;
        Some((
            format!("{pointer}/content/{}/schema", escape(media)),
            media.clone(),
        ))
    }

    /// The schema at `pointer`, compiled as JSON Schema 2020-12 with format checks, its references resolved in the
    /// closed document.
    fn validator(&self, pointer: &str) -> jsonschema::Validator {
        let target = self
            .strict
            .pointer(&unescape_fragment(pointer))
            .unwrap_or_else(|| panic!("nothing at {pointer}"))
            .clone();
        // The target goes under a plain key (a media type such as `text/plain; version=0.0.4` is no valid URI
        // fragment); its own references resolve against the document around it.
        let mut root = self.strict.clone();
        root["x-target"] = target;
        root["$ref"] = "#/x-target".into();
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("schema at {pointer} does not compile: {e}"))
    }

    /// Validation errors of `instance` against the schema at `pointer`.
    fn errors(&self, pointer: &str, instance: &Value) -> Vec<String> {
        self.validator(pointer)
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }
}

/// A `#/a/b` reference as a JSON pointer (`/a/b`) for [`Value::pointer`]; tokens keep their `~0`/`~1` escapes.
fn unescape_fragment(reference: &str) -> String {
    reference.trim_start_matches('#').to_string()
}

/// JSON pointer escaping of one token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Adds `additionalProperties: false` to every object schema (`"type": "object"` with `properties`) that says nothing
/// about other properties. Parts of an `allOf`/`anyOf` that only constrain listed fields carry no `type` and stay
/// open, as they must.
fn close_objects(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("type").is_some_and(|t| t == "object")
                && map.get("properties").is_some_and(Value::is_object)
                && !map.contains_key("additionalProperties")
            {
                map.insert("additionalProperties".into(), false.into());
            }
            // A `properties` map's keys are field names, not schemas: descend into its values only.
            for (key, child) in map.iter_mut() {
                if key == "properties" {
                    if let Value::Object(fields) = child {
                        fields.values_mut().for_each(close_objects);
                    }
                } else {
                    close_objects(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// Checks one answer against the document; returns the (method, template, status) it covers.
fn check(spec: &Spec, probe: &Probe, answer: &Answer, server: &str) -> (String, String, u16) {
    let what = format!(
        "{server}: {} {} ({}) -> {}: {}",
        probe.method,
        probe.uri,
        probe.why,
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.status, probe.status, "{what}");
    let template = spec
        .template(&probe.method, &probe.uri)
        .unwrap_or_else(|| panic!("{what}: no documented route"));
    let (pointer, media) = spec
        .response_schema(&probe.method, &template, answer.status)
        .unwrap_or_else(|| panic!("{what}: status not documented for {template}"));
    let essence = |m: &str| m.split(';').next().unwrap().trim().to_string();
    assert_eq!(
        essence(&answer.content_type),
        essence(&media),
        "{what}: media type"
    );
    let instance = if media.contains("json") {
        serde_json::from_slice(&answer.body).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"))
    } else {
        Value::String(String::from_utf8(answer.body.clone()).unwrap())
    };
    let errors = spec.errors(&pointer, &instance);
    assert!(
        errors.is_empty(),
        "{what}\nagainst {pointer}:\n{}",
        errors.join("\n")
    );
    // A request the server accepted must fit the documented request schema.
    if let (Req::Json(body), true) = (&probe.body, answer.status < 300) {
        let op = spec.operation(&probe.method, &template);
        assert!(
            op["requestBody"].is_object(),
            "{what}: a body on a route documenting none"
        );
        let pointer = format!(
            "#/paths/{}/{}/requestBody/content/application~1json/schema",
            escape(&template),
            probe.method.to_ascii_lowercase()
        );
        let errors = spec.errors(&pointer, body);
        assert!(
            errors.is_empty(),
            "{what}\nrequest body against {pointer}:\n{}",
            errors.join("\n")
        );
    }
    (probe.method.clone(), template, answer.status)
}

/// The sled server the probes run against: devices hh-01 and hh-02 at WH1, `old` revoked.
/// Endpoint `wh_fixed` with delivery 1 delivered and delivery 2 pending: what the retry lines act on (the
/// dispatcher does not run in this test, so the API alone could not make a delivery).
fn seed_webhook(store: &dyn Store) {
    use dockhand_server::webhooks::{Attempt, Endpoint, EventKind, NewDelivery};
    let hooks = store.webhooks().expect("sled has webhooks");
    let now = time::OffsetDateTime::now_utc();
    hooks
        .put_endpoint(&Endpoint {
            id: "wh_fixed".into(),
            url: "http://127.0.0.1:9/erp".into(),
            events: vec![EventKind::ReceiptClosed],
            description: String::new(),
            secret: "0".repeat(64),
            created_at: now,
        })
        .unwrap();
    let from = hooks.cursors().unwrap().expect("set by the registration");
    let new = |key: &str| NewDelivery {
        endpoint: "wh_fixed".into(),
        key: key.into(),
        kind: EventKind::ReceiptClosed,
        events: 1,
        body: r#"{"events":[]}"#.into(),
    };
    hooks
        .enqueue(
            from,
            from,
            &[new("receipt:A:closed"), new("receipt:B:closed")],
            now,
        )
        .unwrap();
    hooks.record_attempt(1, &Attempt::Delivered, now).unwrap();
}

fn sled_server(dir: &std::path::Path) -> (Router, Tokens) {
    let devices_dir = dir.join("devices");
    let hh01 = enroll(&devices_dir, "hh-01", "WH1", false).unwrap();
    let hh02 = enroll(&devices_dir, "hh-02", "WH1", false).unwrap();
    let revoked = enroll(&devices_dir, "old", "WH1", false).unwrap();
    let devices = Arc::new(Devices::open(&devices_dir).unwrap());
    devices.revoke("old").unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.join("sled"), 8 << 20).unwrap());
    seed_webhook(store.as_ref());
    let state =
        AppState::new(store, devices, AdminToken::from_secret(ADMIN)).with_body_limit(LIMIT);
    (
        app(state),
        Tokens {
            hh01,
            hh02,
            revoked,
        },
    )
}

#[test]
fn every_documented_response_is_produced_and_valid() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (sled_app, tokens) = sled_server(dir.path());
    let doc: Value = rt.block_on(async {
        let answer = send(
            &sled_app,
            &tokens,
            &p("GET", "/v1/openapi.json", Who::Nobody, Req::None, 200, ""),
        )
        .await;
        serde_json::from_slice(&answer.body).unwrap()
    });
    let spec = Spec::new(doc);
    let mut produced: BTreeMap<(String, String, u16), String> = BTreeMap::new();
    let mut note = |key: (String, String, u16), why: String| {
        produced.entry(key).or_insert(why);
    };

    // The hand-written lines, then 401 and 413 for every operation that documents them.
    let probes = probes();
    let big = "x".repeat(LIMIT + 1);
    let mut generated = Vec::new();
    for (method, template, status) in spec.documented() {
        let uri = template
            .replace("{code}", "X-1")
            .replace("{gtin}", GTIN)
            .replace("{site}", "WH1")
            .replace("{id}", "1")
            .replace("{delivery}", "1");
        let op = spec.operation(&method, &template);
        match status {
            401 => generated.push(p(
                &method,
                &uri,
                Who::Nobody,
                Req::None,
                401,
                "no credential",
            )),
            413 => {
                let csv = op["requestBody"]["content"].get("text/csv").is_some();
                let who = if template.starts_with("/v1/sync/") {
                    Who::Hh01
                } else {
                    Who::Admin
                };
                let body = if csv {
                    Req::Csv(big.clone())
                } else {
                    Req::Raw(big.clone())
                };
                generated.push(p(
                    &method,
                    &uri,
                    who,
                    body,
                    413,
                    "a body one byte over the limit",
                ));
            }
            _ => {}
        }
    }
    rt.block_on(async {
        for probe in probes.iter().chain(&generated) {
            let answer = send(&sled_app, &tokens, probe).await;
            note(check(&spec, probe, &answer, "sled"), probe.why.to_string());
        }
    });

    // 503: the first successful line of every operation that documents 503, against a store that went away.
    let cluster = Arc::new(pg::Cluster::start());
    let db = pg::database_on(cluster.clone());
    let url = db.url();
    drop(db);
    let pg = Arc::new(PgStore::open(&url, 2).expect("open the PostgreSQL store"));
    let registry = PgDevices::new(pg.clone());
    let down_tokens = Tokens {
        hh01: registry.enroll("hh-01", "WH1", false).unwrap(),
        hh02: registry.enroll("hh-02", "WH1", false).unwrap(),
        revoked: String::new(),
    };
    let state = AppState::new(pg, Arc::new(registry), AdminToken::from_secret(ADMIN));
    let down_app = app(state);
    drop(
        Arc::try_unwrap(cluster)
            .ok()
            .expect("the cluster is ours alone"),
    );
    let outage: Vec<Probe> = spec
        .documented()
        .into_iter()
        .filter(|(_, _, status)| *status == 503)
        .map(|(method, template, _)| {
            let first_ok = probes
                .iter()
                .find(|p| {
                    p.status < 300
                        && p.method == method
                        && spec.template(&p.method, &p.uri).as_deref() == Some(&template)
                })
                .unwrap_or_else(|| panic!("no successful line for {method} {template} to replay"));
            Probe {
                status: 503,
                why: "the same request while the database is down",
                ..first_ok.clone()
            }
        })
        .collect();
    rt.block_on(async {
        for probe in &outage {
            let answer = send(&down_app, &down_tokens, probe).await;
            note(
                check(&spec, probe, &answer, "postgres, stopped"),
                probe.why.to_string(),
            );
        }
    });
    // The PostgreSQL client must not be dropped on a runtime thread.
    drop(down_app);
    drop(rt);

    let missing: Vec<String> = spec
        .documented()
        .into_iter()
        .filter(|key| !produced.contains_key(key))
        .map(|(m, t, s)| format!("{m} {t} {s}"))
        .collect();
    assert!(
        missing.is_empty(),
        "documented but produced by no request of this test:\n{}",
        missing.join("\n")
    );
}

#[tokio::test]
async fn every_route_is_documented() {
    let dir = tempfile::tempdir().unwrap();
    let (app, tokens) = sled_server(dir.path());
    let answer = send(
        &app,
        &tokens,
        &p("GET", "/v1/openapi.json", Who::Nobody, Req::None, 200, ""),
    )
    .await;
    let doc: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["jsonSchemaDialect"],
        "https://spec.openapis.org/oas/3.1/dialect/base"
    );

    // The router's route table and the document's operations are one set.
    let table: BTreeSet<(String, String)> = routes()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    assert_eq!(table, documented);

    // The router's other routes are the dashboard's, outside the API's namespace (the document's rule).
    for (method, path, _) in pages() {
        assert!(
            !table.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is both a page and an API route"
        );
        assert!(
            !path.starts_with("/v1/") && path != "/metrics",
            "dashboard route {path} inside the API's namespace"
        );
    }

    // Each is really served: never the fallback's 404 "no such route", nor 405.
    for (method, path) in &table {
        let uri = path
            .replace("{code}", "X")
            .replace("{gtin}", GTIN)
            .replace("{site}", "WH1")
            .replace("{id}", "1")
            .replace("{delivery}", "1");
        let probe = p(&method.to_uppercase(), &uri, Who::Nobody, Req::None, 0, "");
        let answer = send(&app, &tokens, &probe).await;
        assert_ne!(answer.status, 405, "{method} {uri}");
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        assert_ne!(body["error"]["message"], "no such route", "{method} {uri}");
    }

    // 3.1 only: JSON Schema 2020-12 keywords, no 3.0 leftovers.
    let text = doc.to_string();
    for word in ["\"nullable\"", "\"example\""] {
        assert!(!text.contains(word), "3.0 keyword {word} in the document");
    }
    // Every component schema compiles as 2020-12, with its references resolved.
    let spec = Spec::new(doc.clone());
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        spec.validator(&format!("#/components/schemas/{name}"));
    }
}
