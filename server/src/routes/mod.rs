//! The HTTP API: one router built in [`app`] from one route table ([`table`]), one file per resource.
//!
//! The table is the single list of routes: [`app`] registers exactly its entries and [`openapi`] describes exactly
//! its entries, so the OpenAPI document cannot forget a route.

pub(crate) mod accuracy;
mod asn_import;
mod asns;
mod devices;
pub(crate) mod discrepancies;
mod epcis;
#[doc(hidden)]
pub mod fuzzing;
mod health;
mod import;
pub(crate) mod input;
mod items;
mod locations;
mod metrics;
mod movements;
mod openapi;
mod pick_lists;
mod reports;
mod sites;
mod stock;
mod sync;
mod sync_stock;
pub(crate) mod webhooks;

use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::handler::Handler;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// The whole API, and the office dashboard ([`crate::web`]), over `state`; no socket involved, so tests drive it with `tower::ServiceExt::oneshot`.
pub fn app(state: AppState) -> Router {
    let limit = state.body_limit;
    let mut router = Router::new();
    for route in table() {
        let handler = if route.observed {
            route.handler.layer(axum::middleware::from_fn_with_state(
                state.metrics.clone(),
                metrics::observe_push,
            ))
        } else {
            route.handler
        };
        // Routes sharing a path merge into one method router.
        router = router.route(route.path, handler);
    }
    router
        .merge(crate::web::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Every `(method, path)` that [`app`] serves, methods lowercase as in OpenAPI (`get`, `put`, `post`).
pub fn routes() -> Vec<(&'static str, &'static str)> {
    table().iter().map(|r| (r.method, r.path)).collect()
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Anyone.
    Public,
    /// The office (`admin.token`).
    Admin,
    /// An enrolled, not revoked device.
    Device,
}

/// What a route's request body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// None (anything sent is ignored).
    None,
    /// JSON of this component schema.
    Json(&'static str),
    /// An import (see [`import`]): `text/csv` with this header (optional columns in brackets), or
    /// `application/json`, an array of the `json` component schema.
    Import {
        csv: &'static str,
        json: &'static str,
    },
}

/// One entry of the route table: how to serve it and how to document it.
pub(crate) struct Route {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) summary: &'static str,
    pub(crate) auth: Auth,
    /// `(name, OpenAPI type, description)` of each query parameter.
    pub(crate) query: &'static [(&'static str, &'static str, &'static str)],
    pub(crate) body: Body,
    /// Success status and the component schema of its body.
    pub(crate) ok: (u16, &'static str),
    /// A second success status with the same body (201 when a `PUT` created the resource).
    pub(crate) also_ok: Option<u16>,
    /// The media type of the success body.
    pub(crate) media: &'static str,
    /// The error statuses the handler can answer besides 401 (implied by `auth`) and 413 (implied by `body`).
    pub(crate) errors: &'static [u16],
    /// Counted and timed in `/metrics` (push requests by status, push latency).
    pub(crate) observed: bool,
    handler: MethodRouter<AppState>,
}

fn route<H, T>(method: &'static str, path: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = match method {
        "get" => MethodFilter::GET,
        "put" => MethodFilter::PUT,
        "post" => MethodFilter::POST,
        "delete" => MethodFilter::DELETE,
        other => unreachable!("method {other} is not used by the API"),
    };
    Route {
        method,
        path,
        summary: "",
        auth: Auth::Admin,
        query: &[],
        body: Body::None,
        ok: (200, ""),
        also_ok: None,
        media: "application/json",
        errors: &[],
        observed: false,
        handler: on(filter, handler),
    }
}

impl Route {
    fn doc(mut self, summary: &'static str, ok: (u16, &'static str)) -> Self {
        self.summary = summary;
        self.ok = ok;
        self
    }
    fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }
    fn query(mut self, query: &'static [(&'static str, &'static str, &'static str)]) -> Self {
        self.query = query;
        self
    }
    fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
    fn also_ok(mut self, status: u16) -> Self {
        self.also_ok = Some(status);
        self
    }
    fn media(mut self, media: &'static str) -> Self {
        self.media = media;
        self
    }
    fn errors(mut self, errors: &'static [u16]) -> Self {
        self.errors = errors;
        self
    }
    fn observed(mut self) -> Self {
        self.observed = true;
        self
    }
}

const SITE: (&str, &str, &str) = ("site", "string", "only this site");
const DOC_STATUS: (&str, &str, &str) = ("status", "string", "open | closed | cancelled");
const DRY_RUN: (&str, &str, &str) = (
    "dry_run",
    "boolean",
    "true: check every row and answer what would be imported, write nothing",
);

/// The route table (see the module docs).
pub(crate) fn table() -> Vec<Route> {
    use Body::Json;
    vec![
        route("get", "/v1/health", health::health)
            .doc("Liveness, without credentials", (200, "Health"))
            .auth(Auth::Public),
        route("get", "/v1/openapi.json", openapi::openapi)
            .doc("This document", (200, "OpenApi"))
            .auth(Auth::Public),
        route("get", "/metrics", metrics::metrics)
            .doc("This node's counters and gauges in the Prometheus text format 0.0.4 (see README, Metrics)", (200, "Metrics"))
            .media(crate::metrics::CONTENT_TYPE),
        // Devices' sync.
        route("post", "/v1/sync/push", sync::push)
            .doc("Push a batch of the device's movements (exactly once)", (200, "PushResponse"))
            .errors(&[400, 403, 409, 503])
            .observed()
            .auth(Auth::Device)
            .body(Json("PushRequest")),
        route("post", "/v1/sync/scan-stats", accuracy::report)
            .doc("Report the device's refused-scan counters (running totals per hour, operator, reason)", (200, "ScanStatsResponse"))
            .errors(&[400, 403, 503])
            .auth(Auth::Device)
            .body(Json("ScanStatsRequest")),
        route("get", "/v1/sync/pull", sync::pull)
            .doc("Master data changes for the device's site, in server commit order", (200, "PullResponse"))
            .errors(&[400, 503])
            .auth(Auth::Device)
            .query(&[
                ("cursor", "integer", "the cursor of the previous answer; 0 (default) for a full snapshot"),
                ("limit", "integer", "changes per page, 1..=5000, default 1000"),
            ]),
        route("get", "/v1/sync/stock", sync_stock::stock)
            .doc("Stock of the device's site with the device's high-water mark, for offline lookups", (200, "StockSnapshot"))
            .errors(&[400, 403, 503])
            .auth(Auth::Device)
            .query(&[
                ("location", "string", "only this location"),
                ("site", "string", "must be the device's own site (403 otherwise); default: it"),
            ]),
        // Office: master data.
        route("get", "/v1/sites", sites::list).doc("All sites", (200, "Sites"))
            .errors(&[400, 503]),
        route("put", "/v1/sites", sites::put_many)
            .doc("Create or update several sites", (200, "Sites"))
            .errors(&[400, 503])
            .body(Json("Sites")),
        route("put", "/v1/sites/{code}", sites::put_one)
            .doc("Create or update a site (active:false deactivates)", (200, "Site"))
            .errors(&[400, 503])
            .body(Json("SiteBody")),
        route("get", "/v1/items", items::list)
            .doc("Items by GTIN, paged", (200, "ItemPage"))
            .errors(&[400, 503])
            .query(&[
                ("after", "string", "the GTIN-14 of the previous page's `next`"),
                ("limit", "integer", "page size, 1..=1000, default 100"),
            ]),
        route("post", "/v1/items/import", items::import)
            .doc("Create or update items from CSV or JSON: all rows or none; a 400 lists every bad row", (200, "ImportResult"))
            .errors(&[400, 503])
            .query(&[DRY_RUN])
            .body(Body::Import {
                csv: "gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked[,active]",
                json: "ItemImport",
            }),
        route("get", "/v1/items/{gtin}", items::get).doc("One item", (200, "Item"))
            .errors(&[400, 404, 503]),
        route("put", "/v1/items/{gtin}", items::put)
            .doc("Create (201) or update (200) an item; active:false deactivates", (200, "Item"))
            .also_ok(201)
            .errors(&[400, 503])
            .body(Json("ItemBody")),
        route("get", "/v1/sites/{site}/locations", locations::list)
            .doc("The locations of a site", (200, "Locations"))
            .errors(&[400, 503]),
        route("put", "/v1/sites/{site}/locations/{code}", locations::put)
            .doc("Create (201) or update (200) a location; active:false deactivates", (200, "Location"))
            .also_ok(201)
            .errors(&[400, 503])
            .body(Json("LocationBody")),
        route("post", "/v1/sites/{site}/locations/import", locations::import)
            .doc("Create or update locations from CSV or JSON: all rows or none; a 400 lists every bad row", (200, "ImportResult"))
            .errors(&[400, 503])
            .query(&[DRY_RUN])
            .body(Body::Import { csv: "code,gln,zone[,active]", json: "LocationImport" }),
        // Office: documents.
        route("post", "/v1/asns", asns::create)
            .doc("Create an expected receipt", (201, "Asn"))
            .errors(&[400, 409, 503])
            .body(Json("NewAsn")),
        route("post", "/v1/asns/import", asn_import::import)
            .doc("Create expected receipts from CSV (one row per line) or JSON: all or none; a 400 lists every bad row", (200, "ImportResult"))
            .errors(&[400, 503])
            .query(&[DRY_RUN])
            .body(Body::Import {
                csv: "asn_id,site,[supplier],[expected_on],[sscc],gtin,[lot],qty",
                json: "NewAsn",
            }),
        route("get", "/v1/asns", asns::list)
            .doc("The ASNs of a site", (200, "Asns"))
            .errors(&[400, 503])
            .query(&[("site", "string", "the site (required)"), DOC_STATUS]),
        route("get", "/v1/asns/{id}", asns::get).doc("One ASN", (200, "Asn"))
            .errors(&[400, 404, 503]),
        route("post", "/v1/asns/{id}/close", asns::close)
            .doc("Close an open ASN; short lines become discrepancies", (200, "Asn"))
            .errors(&[400, 404, 409, 503]),
        route("post", "/v1/asns/{id}/cancel", asns::cancel)
            .doc("Cancel an open ASN; devices stop working it", (200, "Asn"))
            .errors(&[400, 404, 409, 503]),
        route("post", "/v1/pick-lists", pick_lists::create)
            .doc("Create a pick list", (201, "PickList"))
            .errors(&[400, 409, 503])
            .body(Json("NewPickList")),
        route("get", "/v1/pick-lists", pick_lists::list)
            .doc("The pick lists of a site", (200, "PickLists"))
            .errors(&[400, 503])
            .query(&[("site", "string", "the site (required)"), DOC_STATUS]),
        route("get", "/v1/pick-lists/{id}", pick_lists::get).doc("One pick list", (200, "PickList"))
            .errors(&[400, 404, 503]),
        route("post", "/v1/pick-lists/{id}/assign", pick_lists::assign)
            .doc("Assign an open pick list to a device or a zone", (200, "PickList"))
            .errors(&[400, 404, 409, 503])
            .body(Json("Assign")),
        route("post", "/v1/pick-lists/{id}/cancel", pick_lists::cancel)
            .doc("Cancel an open pick list; devices stop working it", (200, "PickList"))
            .errors(&[400, 404, 409, 503]),
        // Office: devices.
        route("get", "/v1/devices", devices::list)
            .doc("Enrolled devices with last-seen time and backlog", (200, "Devices"))
            .errors(&[400, 503]),
        route("post", "/v1/devices", devices::enroll)
            .doc("Enroll a device; the token is shown once", (201, "Enrolled"))
            .errors(&[400, 409, 503])
            .body(Json("Enroll")),
        route("post", "/v1/devices/{id}/revoke", devices::revoke)
            .doc("Revoke a device: its pushes and pulls get 401, its movements stay", (200, "Device"))
            .errors(&[404, 503]),
        route("get", "/v1/devices/{id}/high-water", devices::high_water)
            .doc("How far the device's movements are applied", (200, "HighWater"))
            .errors(&[404, 503]),
        // Office: stock, history, reconciliation.
        route("get", "/v1/stock", stock::stock)
            .doc("Non-zero stock rows, now or as of a past time", (200, "Stock"))
            .errors(&[400, 503])
            .query(&[
                SITE,
                ("location", "string", "only this location"),
                ("gtin", "string", "only this item (GTIN-8/12/13/14)"),
                ("lot", "string", "only this lot"),
                ("as_of", "string", "RFC 3339: stock from movements with device time <= as_of"),
            ]),
        route("get", "/v1/movements", movements::list)
            .doc("Movement history in server commit order, paged", (200, "MovementPage"))
            .errors(&[400, 503])
            .query(&[
                SITE,
                ("device", "string", "only this device"),
                ("gtin", "string", "only this item (GTIN-8/12/13/14)"),
                ("location", "string", "only movements leaving or entering this location"),
                ("kind", "string", "receive | putaway | move | pick | ship | adjust | count"),
                ("since", "string", "RFC 3339: device time >= since"),
                ("until", "string", "RFC 3339: device time < until"),
                ("after", "integer", "the previous page's `next` (a server_seq)"),
                ("limit", "integer", "page size, 1..=1000, default 100"),
            ]),
        route("get", "/v1/reports/pick-accuracy", accuracy::pick_accuracy)
            .doc("Picks, short picks and refused scans per operator over whole UTC hours", (200, "PickAccuracy"))
            .errors(&[400, 503])
            .query(&[
                ("site", "string", "the site (required)"),
                ("since", "string", "RFC 3339, required: rounded down to the hour"),
                ("until", "string", "RFC 3339, required: rounded up to the hour; at most 366 days after since"),
            ]),
        route("get", "/v1/discrepancies", discrepancies::list)
            .doc("Discrepancies by id", (200, "Discrepancies"))
            .errors(&[400, 503])
            .query(&[
                SITE,
                ("status", "string", "open | resolved"),
                ("kind", "string", "negative_stock | count_mismatch | asn_over | asn_short | asn_unexpected_line | asn_unexpected_pallet | unknown_reference | pick_on_cancelled_list | unknown_item | unknown_location"),
            ]),
        route("get", "/v1/discrepancies/{id}", discrepancies::get)
            .doc("One discrepancy", (200, "Discrepancy"))
            .errors(&[400, 404, 503]),
        route("post", "/v1/discrepancies/{id}/comments", discrepancies::comment)
            .doc("Add a comment", (200, "Discrepancy"))
            .errors(&[400, 404, 503])
            .body(Json("CommentBody")),
        route("post", "/v1/discrepancies/{id}/resolve", discrepancies::resolve)
            .doc("Resolve with an adjust movement or accept as is", (200, "Discrepancy"))
            .errors(&[400, 404, 409, 503])
            .body(Json("ResolveBody")),
        // Office: trading partners and ERPs.
        route("get", epcis::PATH, epcis::events)
            .doc("Movements as GS1 EPCIS 2.0 ObjectEvents in one JSON-LD EPCISDocument per page (application/ld+json); a `Link: <...>; rel=\"next\"` header names the next page", (200, "EpcisDocument"))
            .media("application/ld+json")
            .errors(&[400, 503])
            .query(&[
                ("site", "string", "only movements recorded at this site; default: every site"),
                ("since", "string", "RFC 3339: eventTime (device time) >= since"),
                ("until", "string", "RFC 3339: eventTime < until"),
                ("after", "integer", "cursor: the `after` of the previous page's Link header (a server_seq); default 0"),
                ("limit", "integer", "events per page, 1..=1000, default 100"),
            ]),
        // Office: webhooks to the ERP (README, Webhooks).
        route("post", "/v1/webhooks", webhooks::create)
            .doc("Register an endpoint for event kinds; the signing secret is shown once", (201, "WebhookCreated"))
            .errors(&[400, 503])
            .body(Json("NewWebhook")),
        route("get", "/v1/webhooks", webhooks::list)
            .doc("Registered endpoints with pending and failed deliveries, last success and last error", (200, "Webhooks"))
            .errors(&[400, 503]),
        route("delete", "/v1/webhooks/{id}", webhooks::delete)
            .doc("Delete an endpoint and its deliveries", (200, "WebhookDeleted"))
            .errors(&[400, 404, 503]),
        route("get", "/v1/webhooks/{id}/deliveries", webhooks::deliveries)
            .doc("An endpoint's deliveries, newest first", (200, "WebhookDeliveries"))
            .errors(&[400, 404, 503])
            .query(&[
                ("status", "string", "pending | delivered | failed"),
                ("limit", "integer", "at most this many, 1..=1000, default 100"),
            ]),
        route("post", "/v1/webhooks/{id}/deliveries/{delivery}/retry", webhooks::retry)
            .doc("Make a failed or pending delivery due now with its attempts reset", (200, "WebhookDelivery"))
            .errors(&[400, 404, 409, 503]),
        // Office: reports and replenishment (issue 9; definitions in README, Reports).
        route("get", "/v1/reports/productivity", reports::productivity)
            .doc("Movements, scans and picked units per operator and per device per hour, gate passes per hour (JSON, or CSV with format=csv)", (200, "ProductivityReport"))
            .errors(&[400, 503])
            .query(&[REPORT_SITE, SINCE, UNTIL, FORMAT]),
        route("get", "/v1/reports/dock-to-stock", reports::dock_to_stock)
            .doc("Receipt-to-put-away times (median, p90) per day of receipt, per pallet and per unit", (200, "DockToStockReport"))
            .errors(&[400, 503])
            .query(&[REPORT_SITE, SINCE, UNTIL, FORMAT]),
        route("get", "/v1/reports/inventory", reports::inventory)
            .doc("Stock levels and value (unit_cost) by location and item, as of a time", (200, "InventoryReport"))
            .errors(&[400, 503])
            .query(&[
                REPORT_SITE,
                ("location", "string", "only this location"),
                ("gtin", "string", "only this item (GTIN-8/12/13/14)"),
                ("as_of", "string", "RFC 3339: stock from movements with device time <= as_of; default now"),
                FORMAT,
            ]),
        route("get", "/v1/reports/turnover", reports::turnover)
            .doc("Stock turnover and days of supply per item over the period", (200, "TurnoverReport"))
            .errors(&[400, 503])
            .query(&[REPORT_SITE, SINCE, UNTIL, FORMAT]),
        route("get", "/v1/reports/expiry", reports::expiry)
            .doc("Stock expiring within N days, by location", (200, "ExpiryReport"))
            .errors(&[400, 503])
            .query(&[
                REPORT_SITE,
                ("as_of", "string", "RFC 3339: stock as of this time, its UTC day the report date; default now"),
                ("days", "integer", "the horizon in days, 0..=3650, default 30"),
                FORMAT,
            ]),
        route("put", "/v1/sites/{site}/replenishment/{gtin}", reports::put_rule)
            .doc("Create (201) or replace (200) an item's reorder rule at a site", (200, "ReorderRule"))
            .also_ok(201)
            .errors(&[400, 503])
            .body(Json("ReorderRuleBody")),
        route("get", "/v1/replenishment", reports::suggestions)
            .doc("Items below their reorder point and what to order (JSON, or CSV for purchasing with format=csv)", (200, "Suggestions"))
            .errors(&[400, 503])
            .query(&[SITE, FORMAT]),
    ]
}

const REPORT_SITE: (&str, &str, &str) = ("site", "string", "the site (required)");
const SINCE: (&str, &str, &str) = (
    "since",
    "string",
    "RFC 3339: device time >= since (required)",
);
const UNTIL: (&str, &str, &str) = (
    "until",
    "string",
    "RFC 3339: device time < until, at most 366 days after since (required)",
);
const FORMAT: (&str, &str, &str) = ("format", "string", "json | csv");

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Runs blocking store or file work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}

/// A JSON body extractor whose every rejection is an [`ApiError`] naming the offending field.
///
/// Unlike `axum::Json` it does not insist on a `Content-Type` (agents are ours; a missing header is no reason to
/// refuse movements) and it reports the path of the bad value (`movements[0].qty`).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = input::read_body(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Deserializes `bytes`, naming the path of the first bad value.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest {
            field: None,
            message: "empty body: expected a JSON object".into(),
        });
    }
    // Every body is an object. serde would also read a struct from an array, by position (`[null, null]` as a
    // location), which no client means.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::BadRequest {
            field: None,
            message: "expected a JSON object".into(),
        });
    }
    // Fast path: plain serde_json. Tracking the path costs about half again as much (a push of 500 movements
    // spends ~0.35 ms on it), so it is done only to explain a body that failed; both accept the same inputs.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // A syntax error or a cut-off body is about the text, not a field (its path may be a bare `?`).
        let field = if inner.is_syntax() || inner.is_eof() {
            None
        } else {
            field_of(&path, &inner.to_string())
        };
        let message = match &field {
            Some(f) => format!("{f}: {inner}"),
            None => format!("invalid JSON: {inner}"),
        };
        ApiError::BadRequest { field, message }
    })?;
    de.end().map_err(|e| ApiError::BadRequest {
        field: None,
        message: format!("invalid JSON: {e}"),
    })?;
    Ok(value)
}

/// The field a serde error is about: the path, extended by the name in "missing field `x`" (for an unknown
/// field the path already ends with its name). An unknown key that is empty (`{"": 1}`) leaves a path ending in
/// `.` or nothing at all: that names the object holding it, or no field at the top.
fn field_of(path: &str, message: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let path = match path.strip_suffix('.') {
        Some(object) if !object.is_empty() => object,
        _ => path,
    };
    let named = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        (".", Some(name)) => Some(name.to_string()),
        (".", None) => None,
        (path, Some(name)) => Some(format!("{path}.{name}")),
        (path, None) => Some(path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_of_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            (".", "expected value at line 1 column 1", None),
            (
                ".",
                "missing field `device_id` at line 1",
                Some("device_id"),
            ),
            (
                "movements[0]",
                "missing field `gtin` at line 1",
                Some("movements[0].gtin"),
            ),
            (
                "movements[0].colour",
                "unknown field `colour`, expected",
                Some("movements[0].colour"),
            ),
            // Regression (fuzz/regressions/push_request/empty-unknown-key): an empty key named the field "".
            ("", "unknown field ``, expected one of", None),
            (
                "movements[0].",
                "unknown field ``, expected one of",
                Some("movements[0]"),
            ),
            (
                "movements[0].qty",
                "invalid type: string \"x\", expected u64",
                Some("movements[0].qty"),
            ),
        ];
        for (path, message, want) in cases {
            assert_eq!(
                field_of(path, message).as_deref(),
                *want,
                "{path} {message}"
            );
        }
    }
}
