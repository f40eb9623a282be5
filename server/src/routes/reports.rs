//! `GET /v1/reports/*` and replenishment (admin): the office's reports over a site and a period, as JSON or as
//! CSV (`?format=csv` or `Accept: text/csv`). The figures are defined in [`crate::reports`].
//!
//! Parameters are checked in two steps like every office route: each value alone (RFC 3339 times, names, ranges),
//! then together ([`Period::new`]: `until` after `since`, at most 366 days) and against the store (the site must be
//! registered or have an enrolled device: a typo is a 400, not an empty report).

use axum::extract::{Path, State};
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::input::{self, Params};
use super::{blocking, JsonBody};
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::reports::replenishment::{self, ReorderRule, Suggestion};
use crate::reports::{self, Period, PeriodError};
use crate::state::AppState;
use crate::store::{StockFilter, Store, StoreError};
use crate::web::csv::{self, Cell};

/// Default horizon of the expiry report, in days.
const DEFAULT_EXPIRY_DAYS: u64 = 30;
/// Longest expiry horizon, in days (ten years).
const MAX_EXPIRY_DAYS: u64 = 3650;

/// What every report's query shares: the site (required), the answer's format.
struct Common {
    site: String,
    csv: bool,
}

fn common(q: &mut Params, headers: &HeaderMap) -> Result<Common, ApiError> {
    let site = q
        .name("site")?
        .ok_or_else(|| ApiError::bad_field("site", "required"))?;
    let csv = match q.text("format").as_deref() {
        None => headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv")),
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::bad_field(
                "format",
                format!("{other:?} is not one of json | csv"),
            ))
        }
    };
    Ok(Common { site, csv })
}

/// `since` and `until`, both required, as a checked [`Period`].
fn period(q: &mut Params) -> Result<Period, ApiError> {
    let since = q
        .time("since")?
        .ok_or_else(|| ApiError::bad_field("since", "required (RFC 3339)"))?;
    let until = q
        .time("until")?
        .ok_or_else(|| ApiError::bad_field("until", "required (RFC 3339)"))?;
    Period::new(since, until).map_err(|e: PeriodError| ApiError::bad_field("until", e))
}

/// Refuses a site the server has never heard of (neither registered nor the site of an enrolled device).
fn known_site(state: &AppState, site: &str) -> Result<(), ApiError> {
    if state.store.sites()?.iter().any(|s| s.code == site)
        || state.devices.list()?.iter().any(|d| d.site == site)
    {
        Ok(())
    } else {
        Err(ApiError::bad_field(
            "site",
            format!("unknown site {site:?}"),
        ))
    }
}

/// Runs `load` on the blocking pool for `site`, once the site is known (a 400 naming `site` otherwise): the
/// common body of every report handler.
async fn at_known_site<T: Send + 'static>(
    state: AppState,
    site: &str,
    load: impl FnOnce(&dyn Store, &str) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let site = site.to_string();
    blocking(move || {
        known_site(&state, &site)?;
        Ok(load(&*state.store, &site)?)
    })
    .await
}

fn hour_text(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn int(n: u64) -> Cell<'static> {
    Cell::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn opt_int(n: Option<i64>) -> Cell<'static> {
    n.map_or(Cell::Empty, Cell::Int)
}

fn today() -> String {
    OffsetDateTime::now_utc().date().to_string()
}

/// A cell that owns its text, so a finished table can move to [`csv::download`]'s blocking producer.
#[derive(Debug, Clone)]
enum Owned {
    Text(String),
    Int(i64),
    Empty,
}

/// A finished table as a CSV download (the reports are computed whole, so the rows are already in memory).
fn csv_table(name: String, header: &'static [&'static str], rows: Vec<Vec<Owned>>) -> Response {
    csv::download(&name, header, move |out| {
        for row in &rows {
            let cells: Vec<Cell<'_>> = row
                .iter()
                .map(|c| match c {
                    Owned::Text(t) => Cell::Text(t),
                    Owned::Int(n) => Cell::Int(*n),
                    Owned::Empty => Cell::Empty,
                })
                .collect();
            out.row(&cells)?;
        }
        Ok(())
    })
}

/// Copies borrowed cells into a row [`csv_table`] can carry.
fn cells(cells: &[Cell<'_>]) -> Vec<Owned> {
    cells
        .iter()
        .map(|c| match c {
            Cell::Text(t) => Owned::Text((*t).to_string()),
            Cell::Int(n) => Owned::Int(*n),
            Cell::Empty => Owned::Empty,
        })
        .collect()
}

/// `GET /v1/reports/productivity`.
pub(crate) async fn productivity(
    _admin: AdminAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    mut q: Params,
) -> Result<Response, ApiError> {
    let c = common(&mut q, &headers)?;
    let period = period(&mut q)?;
    q.finish()?;
    let report = at_known_site(state, &c.site, move |store, site| {
        reports::load_productivity(store, site, period)
    })
    .await?;
    if !c.csv {
        return Ok(Json(report).into_response());
    }
    let mut rows = Vec::new();
    for (by, list) in [
        ("operator", &report.by_operator),
        ("device", &report.by_device),
    ] {
        for r in list {
            rows.push(cells(&[
                Cell::Text(&hour_text(r.hour)),
                Cell::Text(by),
                r.who.as_deref().into(),
                int(r.movements),
                int(r.scans),
                int(r.picked_units),
                Cell::Empty,
            ]));
        }
    }
    for g in &report.gate_passes {
        rows.push(cells(&[
            Cell::Text(&hour_text(g.hour)),
            Cell::Text("gate"),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            int(g.passes),
        ]));
    }
    Ok(csv_table(
        format!("productivity-{}-{}.csv", c.site, today()),
        &[
            "hour",
            "by",
            "who",
            "movements",
            "scans",
            "picked_units",
            "gate_passes",
        ],
        rows,
    ))
}

/// `GET /v1/reports/dock-to-stock`.
pub(crate) async fn dock_to_stock(
    _admin: AdminAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    mut q: Params,
) -> Result<Response, ApiError> {
    let c = common(&mut q, &headers)?;
    let period = period(&mut q)?;
    q.finish()?;
    let report = at_known_site(state, &c.site, move |store, site| {
        reports::load_dock_to_stock(store, site, period)
    })
    .await?;
    if !c.csv {
        return Ok(Json(report).into_response());
    }
    let rows = report
        .days
        .iter()
        .chain(std::iter::once(&report.total))
        .map(|d| {
            cells(&[
                Cell::Text(&d.day),
                int(d.pallets),
                opt_int(d.pallet_median_seconds),
                opt_int(d.pallet_p90_seconds),
                int(d.units),
                opt_int(d.unit_median_seconds),
                opt_int(d.unit_p90_seconds),
                int(d.pending_pallets),
                int(d.pending_units),
            ])
        })
        .collect();
    Ok(csv_table(
        format!("dock-to-stock-{}-{}.csv", c.site, today()),
        &[
            "day",
            "pallets",
            "pallet_median_seconds",
            "pallet_p90_seconds",
            "units",
            "unit_median_seconds",
            "unit_p90_seconds",
            "pending_pallets",
            "pending_units",
        ],
        rows,
    ))
}

/// `GET /v1/reports/inventory`.
pub(crate) async fn inventory(
    _admin: AdminAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    mut q: Params,
) -> Result<Response, ApiError> {
    let c = common(&mut q, &headers)?;
    let filter = StockFilter {
        site: Some(c.site.clone()),
        location: q.location("location")?,
        gtin: q.gtin("gtin")?,
        lot: None,
    };
    let as_of = q.time("as_of")?.unwrap_or_else(OffsetDateTime::now_utc);
    q.finish()?;
    let report = at_known_site(state, &c.site, move |store, _| {
        reports::load_inventory(store, &filter, as_of)
    })
    .await?;
    if !c.csv {
        return Ok(Json(report).into_response());
    }
    let rows = report
        .rows
        .iter()
        .map(|r| {
            cells(&[
                Cell::Text(&r.location),
                Cell::Text(&r.gtin),
                r.lot.as_deref().into(),
                Cell::Int(r.qty),
                r.unit_cost.map_or(Cell::Empty, int),
                opt_int(r.value),
            ])
        })
        .collect();
    Ok(csv_table(
        format!("inventory-{}-{}.csv", c.site, today()),
        &["location", "gtin", "lot", "qty", "unit_cost", "value"],
        rows,
    ))
}

/// `GET /v1/reports/turnover`.
pub(crate) async fn turnover(
    _admin: AdminAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    mut q: Params,
) -> Result<Response, ApiError> {
    let c = common(&mut q, &headers)?;
    let period = period(&mut q)?;
    q.finish()?;
    let items = at_known_site(state, &c.site, move |store, site| {
        reports::load_turnover(store, site, period)
    })
    .await?;
    if !c.csv {
        return Ok(Json(TurnoverBody { items }).into_response());
    }
    // Two decimals in the file: the spreadsheet's reader wants figures, not float noise.
    let two = |x: f64| format!("{x:.2}");
    let rows = items
        .iter()
        .map(|r| {
            vec![
                Owned::Text(r.gtin.clone()),
                Owned::Int(r.opening),
                Owned::Int(r.closing),
                Owned::Int(i64::try_from(r.out_units).unwrap_or(i64::MAX)),
                Owned::Text(two(r.average_stock)),
                r.turnover.map_or(Owned::Empty, |t| Owned::Text(two(t))),
                r.days_of_supply
                    .map_or(Owned::Empty, |d| Owned::Text(two(d))),
            ]
        })
        .collect();
    Ok(csv_table(
        format!("turnover-{}-{}.csv", c.site, today()),
        &[
            "gtin",
            "opening",
            "closing",
            "out_units",
            "average_stock",
            "turnover",
            "days_of_supply",
        ],
        rows,
    ))
}

#[derive(Debug, Serialize)]
struct TurnoverBody {
    items: Vec<reports::TurnoverRow>,
}

/// `GET /v1/reports/expiry`.
pub(crate) async fn expiry(
    _admin: AdminAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    mut q: Params,
) -> Result<Response, ApiError> {
    let c = common(&mut q, &headers)?;
    let as_of = q.time("as_of")?.unwrap_or_else(OffsetDateTime::now_utc);
    let days = match q.u64("days")? {
        None => DEFAULT_EXPIRY_DAYS,
        Some(d) if d <= MAX_EXPIRY_DAYS => d,
        Some(d) => {
            return Err(ApiError::bad_field(
                "days",
                format!("{d} is out of range 0..={MAX_EXPIRY_DAYS}"),
            ))
        }
    };
    q.finish()?;
    let days = u32::try_from(days).unwrap_or(u32::MAX);
    let report = at_known_site(state, &c.site, move |store, site| {
        reports::load_expiry(store, site, as_of, days)
    })
    .await?;
    if !c.csv {
        return Ok(Json(report).into_response());
    }
    let rows = report
        .rows
        .iter()
        .map(|r| {
            cells(&[
                Cell::Text(&r.location),
                Cell::Text(&r.gtin),
                r.lot.as_deref().into(),
                Cell::Text(&r.expiry),
                Cell::Int(r.qty),
                opt_int(r.days_left),
            ])
        })
        .collect();
    Ok(csv_table(
        format!("expiry-{}-{}.csv", c.site, today()),
        &["location", "gtin", "lot", "expiry", "qty", "days_left"],
        rows,
    ))
}

/// `PUT /v1/sites/{site}/replenishment/{gtin}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleBody {
    reorder_point: u64,
    #[serde(default)]
    reorder_qty: Option<u64>,
    #[serde(default)]
    max: Option<u64>,
}

/// `PUT /v1/sites/{site}/replenishment/{gtin}`: creates (201) or replaces (200) the item's reorder rule.
pub(crate) async fn put_rule(
    _admin: AdminAuth,
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    JsonBody(body): JsonBody<RuleBody>,
) -> Result<(StatusCode, Json<ReorderRule>), ApiError> {
    let Path((site, gtin)) = path?;
    let site = input::name("site", &site)?;
    let gtin = input::gtin("gtin", &gtin)?;
    let rule = ReorderRule {
        site,
        gtin,
        reorder_point: body.reorder_point,
        reorder_qty: body.reorder_qty,
        max: body.max,
    };
    rule.validate()
        .map_err(|e| ApiError::bad_field(e.field, e.message))?;
    blocking(move || {
        known_site(&state, &rule.site)?;
        let existed = state
            .store
            .reorder_rules(Some(&rule.site))?
            .iter()
            .any(|r| r.gtin == rule.gtin);
        state.store.put_reorder_rule(&rule)?;
        let status = if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok((status, Json(rule)))
    })
    .await
}

#[derive(Debug, Serialize)]
struct SuggestionsBody {
    suggestions: Vec<Suggestion>,
}

/// `GET /v1/replenishment`: the current suggestions, every site or one.
pub(crate) async fn suggestions(
    _admin: AdminAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    mut q: Params,
) -> Result<Response, ApiError> {
    let site = q.name("site")?;
    let as_csv = match q.text("format").as_deref() {
        None => headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv")),
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::bad_field(
                "format",
                format!("{other:?} is not one of json | csv"),
            ))
        }
    };
    q.finish()?;
    let name = format!(
        "replenishment-{}-{}.csv",
        site.as_deref().unwrap_or("all"),
        today()
    );
    let suggestions = blocking(move || {
        if let Some(site) = &site {
            known_site(&state, site)?;
        }
        Ok(replenishment::suggestions(&*state.store, site.as_deref())?)
    })
    .await?;
    if !as_csv {
        return Ok(Json(SuggestionsBody { suggestions }).into_response());
    }
    let rows = suggestions
        .iter()
        .map(|s| {
            cells(&[
                Cell::Text(&s.site),
                Cell::Text(&s.gtin),
                Cell::Int(s.available),
                int(s.reorder_point),
                int(s.suggested_qty),
            ])
        })
        .collect();
    Ok(csv_table(
        name,
        &[
            "site",
            "gtin",
            "available",
            "reorder_point",
            "suggested_qty",
        ],
        rows,
    ))
}
