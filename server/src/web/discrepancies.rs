//! The office's reconciliation work: `GET /discrepancies` (filtered list, live "new discrepancies" banner, CSV) and
//! `GET /discrepancies/{id}` (what happened, the movements that caused it, comments, and the forms that comment on
//! and resolve it).
//!
//! Resolving goes through exactly what `POST /v1/discrepancies/{id}/resolve` does: the same checks
//! ([`resolution_of`]) and the same store call ([`Store::resolve_discrepancy`]), which records an `adjust` movement of
//! the pseudo-device `office` in the same transaction, so stock stays the sum of movements. Comments likewise go
//! through [`comment_of`] and [`Store::comment_discrepancy`]. Both forms carry the session's CSRF token and answer
//! 303 back to the discrepancy.
//!
//! List parameters: `site`, `status` (`open`, the default; `resolved`; `all`), `kind` (a discrepancy kind), and
//! `format=csv` (every matching row; the page shows the newest [`MAX_ROWS`]).
//!
//! # Selectors
//!
//! ```text
//! list     #discrepancy-filters (GET form) with #filter-site #filter-status #filter-kind #filter-apply;
//!          #discrepancy-count; #discrepancies-table; rows tr#discrepancy-<id> [data-test=discrepancy-row] with
//!          data-id data-site data-kind data-status; a[data-test=discrepancy-link]; td[data-test=message];
//!          #empty; #truncated (when more match than shown); #csv-link;
//!          #live-banner (hidden until new ones arrive) with #live-count and a#live-reload; #live-state
//! detail   #discrepancy (dl) with #d-kind #d-status #d-site #d-created #d-message #d-reference #d-location
//!          #d-item #d-lot #d-expected #d-actual; #d-movements (table, tr[data-test=movement-row] with
//!          data-device data-seq; links a[data-test=item-link], a[data-test=location-link]); #d-resolution;
//!          #d-comments with li[data-test=comment] (.author, .text); #comment-form with #comment-author
//!          #comment-text #comment-submit; when open: #resolve-adjust-form with #resolve-location #resolve-gtin
//!          #resolve-lot #resolve-delta #resolve-reason #resolve-adjust-submit, and #resolve-accept-form with
//!          #accept-reason #resolve-accept-submit
//! ```

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use dockhand_protocol::sync::Movement;
use maud::{html, Markup};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::csv::{self, Cell};
use super::devices::human_time;
use super::layout::{self, Nav};
use super::live;
use super::{blocking, see_other, CsrfForm, Fields, Format, PageError, PageResult, Session};
use crate::routes::discrepancies::{comment_of, resolution_of, ResolveKind};
use crate::state::AppState;
use crate::store::{
    Discrepancy, DiscrepancyFilter, DiscrepancyKind, DiscrepancyStatus, MovementRef, Resolution,
};

/// The most rows the list page shows (newest first); the CSV has them all.
pub const MAX_ROWS: usize = 500;

/// Every kind, as on the wire, with what the office calls it.
const KINDS: &[(&str, DiscrepancyKind, &str)] = &[
    (
        "negative_stock",
        DiscrepancyKind::NegativeStock,
        "Negative stock",
    ),
    (
        "count_mismatch",
        DiscrepancyKind::CountMismatch,
        "Count mismatch",
    ),
    ("asn_over", DiscrepancyKind::AsnOver, "Over-receipt"),
    ("asn_short", DiscrepancyKind::AsnShort, "Short receipt"),
    (
        "asn_unexpected_line",
        DiscrepancyKind::AsnUnexpectedLine,
        "Unexpected item on ASN",
    ),
    (
        "asn_unexpected_pallet",
        DiscrepancyKind::AsnUnexpectedPallet,
        "Unexpected pallet",
    ),
    (
        "unknown_reference",
        DiscrepancyKind::UnknownReference,
        "Unknown document",
    ),
    (
        "pick_on_cancelled_list",
        DiscrepancyKind::PickOnCancelledList,
        "Pick on cancelled list",
    ),
    ("unknown_item", DiscrepancyKind::UnknownItem, "Unknown item"),
    (
        "unknown_location",
        DiscrepancyKind::UnknownLocation,
        "Unknown location",
    ),
];

fn kind_name(kind: DiscrepancyKind) -> &'static str {
    KINDS.iter().find(|k| k.1 == kind).map_or("?", |k| k.0)
}

fn kind_label(kind: DiscrepancyKind) -> &'static str {
    KINDS.iter().find(|k| k.1 == kind).map_or("?", |k| k.2)
}

fn status_name(status: DiscrepancyStatus) -> &'static str {
    match status {
        DiscrepancyStatus::Open => "open",
        DiscrepancyStatus::Resolved => "resolved",
    }
}

/// The list's filters, shared with the live stream ([`live`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiscrepancyQuery {
    site: Option<String>,
    /// `None`: all.
    status: Option<DiscrepancyStatus>,
    kind: Option<DiscrepancyKind>,
}

impl DiscrepancyQuery {
    /// Reads `site`, `status` (default `open`) and `kind`.
    pub(crate) fn parse(q: &mut Fields) -> Result<Self, PageError> {
        let site = q.name("site")?;
        let status = match q.one_of("status", &["open", "resolved", "all"])? {
            None | Some("open") => Some(DiscrepancyStatus::Open),
            Some("resolved") => Some(DiscrepancyStatus::Resolved),
            Some(_) => None,
        };
        let names: Vec<&'static str> = KINDS.iter().map(|k| k.0).collect();
        let kind = q
            .one_of("kind", &names)?
            .and_then(|name| KINDS.iter().find(|k| k.0 == name).map(|k| k.1));
        Ok(DiscrepancyQuery { site, status, kind })
    }

    /// The store filter.
    pub(crate) fn filter(&self) -> DiscrepancyFilter {
        DiscrepancyFilter {
            site: self.site.clone(),
            status: self.status,
            kind: self.kind,
        }
    }

    fn status_param(&self) -> &'static str {
        self.status.map_or("all", status_name)
    }

    /// The query string parameters that reproduce these filters.
    fn params(&self) -> Vec<(&'static str, String)> {
        vec![
            ("site", self.site.clone().unwrap_or_default()),
            ("status", self.status_param().to_string()),
            ("kind", self.kind.map(kind_name).unwrap_or("").to_string()),
        ]
    }
}

const CSV_HEADER: &[&str] = &[
    "id",
    "created_at",
    "site",
    "kind",
    "status",
    "reference",
    "location",
    "gtin",
    "lot",
    "expected",
    "actual",
    "message",
];

/// `GET /discrepancies`.
pub(super) async fn list(
    session: Session,
    State(state): State<AppState>,
    mut q: Fields,
) -> PageResult {
    let query = DiscrepancyQuery::parse(&mut q)?;
    let format = q.format()?;
    q.finish()?;
    let store = state.store.clone();
    let filter = query.filter();
    let (found, latest) = blocking(move || {
        let found = store.discrepancies(&filter)?;
        // The live banner counts what is raised after everything the store holds now, matching or not.
        let mut latest = found.last().map_or(0, |d| d.id);
        loop {
            let newer = store.discrepancies_after(latest, 1000)?;
            match newer.last() {
                Some(d) => latest = d.id,
                None => break,
            }
        }
        Ok((found, latest))
    })
    .await?;
    if format == Format::Csv {
        return Ok(csv::download("discrepancies.csv", CSV_HEADER, move |out| {
            for d in &found {
                let created = d.created_at.format(&Rfc3339).unwrap_or_default();
                out.row(&[
                    Cell::Int(to_i64(d.id)),
                    Cell::Text(&created),
                    Cell::Text(&d.site),
                    Cell::Text(kind_name(d.kind)),
                    Cell::Text(status_name(d.status)),
                    d.reference.as_deref().into(),
                    d.location.as_deref().into(),
                    d.gtin.as_deref().into(),
                    d.lot.as_deref().into(),
                    d.expected.map_or(Cell::Empty, Cell::Int),
                    d.actual.map_or(Cell::Empty, Cell::Int),
                    Cell::Text(&d.message),
                ])?;
            }
            Ok(())
        }));
    }
    let params = query.params();
    let pairs: Vec<(&str, &str)> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let this_page = layout::href("/discrepancies", &pairs);
    let mut csv_params = pairs.clone();
    csv_params.push(("format", "csv"));
    let mut live_params = pairs.clone();
    let latest_text = latest.to_string();
    live_params.push(("after", &latest_text));
    let shown: Vec<&Discrepancy> = found.iter().rev().take(MAX_ROWS).collect();
    let content = html! {
        (filters(&query))
        p #live-banner .notice role="status" hidden {
            span #live-count { "0" } " new discrepancies since this page was loaded — "
            a #live-reload href=(this_page) { "reload" }
        }
        p {
            span #discrepancy-count { (found.len()) } " matching. "
            span #live-state .muted data-state="connecting" { "Live updates: connecting…" }
        }
        @if found.is_empty() {
            p #empty { "No discrepancy matches." }
        } @else {
            @if found.len() > shown.len() {
                p #truncated { "Showing the newest " (shown.len()) "; the CSV has all " (found.len()) "." }
            }
            div.table-wrap {
                table #discrepancies-table {
                    thead {
                        tr {
                            th scope="col" { "#" }
                            th scope="col" { "Raised" }
                            th scope="col" { "Site" }
                            th scope="col" { "Kind" }
                            th scope="col" { "What" }
                            th scope="col" { "Location" }
                            th scope="col" { "Item" }
                            th scope="col" { "Expected" }
                            th scope="col" { "Actual" }
                            th scope="col" { "Status" }
                        }
                    }
                    tbody {
                        @for d in &shown {
                            tr id=(format!("discrepancy-{}", d.id)) data-test="discrepancy-row" data-id=(d.id)
                                data-site=(d.site) data-kind=(kind_name(d.kind)) data-status=(status_name(d.status)) {
                                td { a data-test="discrepancy-link" href=(detail_href(d.id)) { (d.id) } }
                                td { (human_time(d.created_at)) }
                                td { (d.site) }
                                td { (kind_label(d.kind)) }
                                td.wrap data-test="message" { (d.message) }
                                td {
                                    @if let Some(l) = &d.location {
                                        a data-test="location-link" href=(layout::location_href(&d.site, l)) { (l) }
                                    }
                                }
                                td {
                                    @if let Some(g) = &d.gtin {
                                        a data-test="item-link" href=(layout::item_href(g)) { (g) }
                                        @if let Some(lot) = &d.lot { " lot " (lot) }
                                    }
                                }
                                td.num { @if let Some(e) = d.expected { (e) } }
                                td.num { @if let Some(a) = d.actual { (a) } }
                                td { span class=(format!("badge {}", status_name(d.status))) { (status_name(d.status)) } }
                            }
                        }
                    }
                }
            }
        }
        (layout::csv_link(&layout::href("/discrepancies", &csv_params)))
        (live::subscribe(&layout::href("/live/discrepancies", &live_params)))
    };
    Ok(layout::page(&session, Nav::Discrepancies, "Discrepancies", content).into_response())
}

fn filters(query: &DiscrepancyQuery) -> Markup {
    let status = query.status_param();
    let kind = query.kind.map(kind_name).unwrap_or("");
    html! {
        form #discrepancy-filters .filters method="get" action="/discrepancies" {
            label for="filter-site" { "Site"
                input #filter-site name="site" value=(query.site.as_deref().unwrap_or("")) maxlength="64" size="8";
            }
            label for="filter-status" { "Status"
                select #filter-status name="status" {
                    @for s in ["open", "resolved", "all"] {
                        option value=(s) selected[s == status] { (s) }
                    }
                }
            }
            label for="filter-kind" { "Kind"
                select #filter-kind name="kind" {
                    option value="" selected[kind.is_empty()] { "any" }
                    @for (name, _, label) in KINDS {
                        option value=(name) selected[*name == kind] { (label) }
                    }
                }
            }
            button #filter-apply type="submit" { "Show" }
        }
    }
}

fn detail_href(id: u64) -> String {
    format!("/discrepancies/{id}")
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn path_id(id: Result<Path<String>, PathRejection>) -> Result<u64, PageError> {
    let Path(id) = id.map_err(|e| PageError::BadRequest(e.body_text()))?;
    id.parse().map_err(|_| {
        PageError::BadRequest(format!(
            "{:?} is not a discrepancy number",
            id.chars().take(40).collect::<String>()
        ))
    })
}

fn not_found(id: u64) -> PageError {
    PageError::NotFound(format!("there is no discrepancy {id}"))
}

/// Where a discrepancy's document lives on the dashboard.
enum DocLink {
    Receipt,
    PickList,
    None,
}

/// `GET /discrepancies/{id}`.
pub(super) async fn detail(
    session: Session,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    q: Fields,
) -> PageResult {
    q.finish()?;
    let id = path_id(id)?;
    let store = state.store.clone();
    let (d, movements, doc) = blocking(move || {
        let d = store.discrepancy(id)?.ok_or_else(|| not_found(id))?;
        let mut movements = Vec::with_capacity(d.movements.len());
        for r in &d.movements {
            movements.push((r.clone(), store.movement(&r.device_id, r.seq)?));
        }
        if let Some(Resolution::Adjust {
            movement: Some(r), ..
        }) = &d.resolution
        {
            movements.push((r.clone(), store.movement(&r.device_id, r.seq)?));
        }
        let doc = match &d.reference {
            Some(r) if store.asn(r)?.is_some() => DocLink::Receipt,
            Some(r) if store.pick_list(r)?.is_some() => DocLink::PickList,
            _ => DocLink::None,
        };
        Ok((d, movements, doc))
    })
    .await?;
    let title = format!("Discrepancy {}: {}", d.id, kind_label(d.kind));
    let content = html! {
        (facts(&d, &doc))
        h2 { "Movements" }
        (movement_table(&d.site, &movements))
        (resolution(&d))
        h2 #comments { "Comments" }
        @if d.comments.is_empty() {
            p #d-no-comments { "No comments yet." }
        }
        ul #d-comments {
            @for c in &d.comments {
                li data-test="comment" {
                    span.author { (c.author) } ", " (human_time(c.at)) ": "
                    span.text { (c.text) }
                }
            }
        }
        form #comment-form .stacked method="post" action=(format!("/discrepancies/{}/comments", d.id)) {
            (layout::csrf_field(&session))
            label for="comment-author" { "Your name" }
            input #comment-author name="author" required maxlength="64";
            label for="comment-text" { "Comment" }
            textarea #comment-text name="text" required maxlength="4000" rows="3" {}
            button #comment-submit type="submit" { "Add comment" }
        }
        @if d.status == DiscrepancyStatus::Open {
            (resolve_forms(&session, &d))
        }
    };
    Ok(layout::page(&session, Nav::Discrepancies, &title, content).into_response())
}

fn facts(d: &Discrepancy, doc: &DocLink) -> Markup {
    html! {
        dl #discrepancy .master {
            dt { "Kind" } dd #d-kind data-kind=(kind_name(d.kind)) { (kind_label(d.kind)) }
            dt { "Status" } dd #d-status data-status=(status_name(d.status)) { (status_name(d.status)) }
            dt { "Site" } dd #d-site { (d.site) }
            dt { "Raised" } dd #d-created { (human_time(d.created_at)) }
            dt { "What" } dd #d-message { (d.message) }
            @if let Some(r) = &d.reference {
                dt { "Document" }
                dd #d-reference {
                    @match doc {
                        DocLink::Receipt => {
                            a href=(format!("/receipts/{}", layout::path_segment(r))) { (r) }
                        }
                        DocLink::PickList => {
                            a href=(format!("/pick-lists/{}", layout::path_segment(r))) { (r) }
                        }
                        DocLink::None => { (r) " (unknown to the server)" }
                    }
                }
            }
            @if let Some(l) = &d.location {
                dt { "Location" }
                dd #d-location { a data-test="location-link" href=(layout::location_href(&d.site, l)) { (l) } }
            }
            @if let Some(g) = &d.gtin {
                dt { "Item" }
                dd #d-item { a data-test="item-link" href=(layout::item_href(g)) { (g) } }
            }
            @if let Some(lot) = &d.lot {
                dt { "Lot" } dd #d-lot { (lot) }
            }
            @if let Some(e) = d.expected {
                dt { "Expected" } dd #d-expected { (e) }
            }
            @if let Some(a) = d.actual {
                dt { "Actual" } dd #d-actual { (a) }
            }
        }
    }
}

fn movement_table(site: &str, movements: &[(MovementRef, Option<Movement>)]) -> Markup {
    let place = |l: &Option<String>| -> Markup {
        html! {
            @if let Some(l) = l {
                a data-test="location-link" href=(layout::location_href(site, l)) { (l) }
            } @else { "–" }
        }
    };
    html! {
        @if movements.is_empty() {
            p #d-no-movements { "No movement caused it (it was raised when its document closed)." }
        } @else {
            div.table-wrap {
                table #d-movements {
                    thead {
                        tr {
                            th scope="col" { "Device" } th scope="col" { "Seq" } th scope="col" { "Device time" }
                            th scope="col" { "Kind" } th scope="col" { "From" } th scope="col" { "To" }
                            th scope="col" { "Item" } th scope="col" { "Lot" } th scope="col" { "Qty" }
                            th scope="col" { "Document" } th scope="col" { "Operator" }
                        }
                    }
                    tbody {
                        @for (r, m) in movements {
                            tr data-test="movement-row" data-device=(r.device_id) data-seq=(r.seq) {
                                td { (r.device_id) }
                                td.num { (r.seq) }
                                @if let Some(m) = m {
                                    td { (human_time(m.at)) }
                                    td { (m.kind.as_str()) }
                                    td { (place(&m.from_location)) }
                                    td { (place(&m.to_location)) }
                                    td { a data-test="item-link" href=(layout::item_href(&m.gtin)) { (m.gtin) } }
                                    td { (m.lot.as_deref().unwrap_or("")) }
                                    td.num { (m.qty) }
                                    td { (m.reference.as_deref().unwrap_or("")) }
                                    td { (m.operator.as_deref().unwrap_or("")) }
                                } @else {
                                    td colspan="9" { "not stored (the store lost it: tell whoever runs the server)" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn resolution(d: &Discrepancy) -> Markup {
    html! {
        @match &d.resolution {
            Some(Resolution::Adjust { location, gtin, lot, delta, reason, movement }) => {
                h2 { "Resolution" }
                p #d-resolution data-type="adjust" {
                    "Adjusted " (format!("{delta:+}")) " × " (gtin)
                    @if let Some(lot) = lot { " lot " (lot) }
                    " at " (location) ": " (reason)
                    @if let Some(m) = movement { " (movement " (m.device_id) " #" (m.seq) ")" }
                }
            }
            Some(Resolution::Accepted { reason }) => {
                h2 { "Resolution" }
                p #d-resolution data-type="accepted" { "Accepted as is: " (reason) }
            }
            None => {}
        }
    }
}

/// The adjustment that would settle `d`, as a starting point for the form: what makes the book say `expected`
/// (negative stock: back to 0) or what was counted (a count mismatch). `None` where no figure says.
fn suggested_delta(d: &Discrepancy) -> Option<i64> {
    match (d.kind, d.expected, d.actual) {
        (DiscrepancyKind::NegativeStock, Some(expected), Some(actual)) => {
            expected.checked_sub(actual)
        }
        (DiscrepancyKind::CountMismatch, Some(book), Some(counted)) => counted.checked_sub(book),
        _ => None,
    }
    .filter(|delta| *delta != 0)
}

fn resolve_forms(session: &Session, d: &Discrepancy) -> Markup {
    let action = format!("/discrepancies/{}/resolve", d.id);
    let delta = suggested_delta(d)
        .map(|v| v.to_string())
        .unwrap_or_default();
    html! {
        h2 { "Resolve" }
        form #resolve-adjust-form .stacked method="post" action=(action) {
            (layout::csrf_field(session))
            input type="hidden" name="type" value="adjust";
            p.hint { "Correct the book with an adjust movement (recorded as device “office”)." }
            label for="resolve-location" { "Location" }
            input #resolve-location name="location" required maxlength="64" value=(d.location.as_deref().unwrap_or(""));
            label for="resolve-gtin" { "Item (GTIN)" }
            input #resolve-gtin name="gtin" required maxlength="14" inputmode="numeric" value=(d.gtin.as_deref().unwrap_or(""));
            label for="resolve-lot" { "Lot (optional)" }
            input #resolve-lot name="lot" maxlength="20" value=(d.lot.as_deref().unwrap_or(""));
            label for="resolve-delta" { "Units to add (negative to remove)" }
            input #resolve-delta name="delta" type="number" required step="1" value=(delta);
            label for="resolve-reason" { "Reason" }
            input #resolve-reason name="reason" required maxlength="500";
            button #resolve-adjust-submit type="submit" { "Adjust stock and resolve" }
        }
        form #resolve-accept-form .stacked method="post" action=(action) {
            (layout::csrf_field(session))
            input type="hidden" name="type" value="accepted";
            p.hint { "Or accept the difference as it is: no stock changes." }
            label for="accept-reason" { "Reason" }
            input #accept-reason name="reason" required maxlength="500";
            button #resolve-accept-submit type="submit" { "Accept as is" }
        }
    }
}

/// `POST /discrepancies/{id}/comments` (CSRF form: `author`, `text`).
pub(super) async fn comment(
    id: Result<Path<String>, PathRejection>,
    State(state): State<AppState>,
    form: CsrfForm,
) -> PageResult {
    let mut fields = form.fields;
    let author = fields.text("author").unwrap_or_default();
    let text = fields.text("text").unwrap_or_default();
    fields.finish()?;
    let id = path_id(id)?;
    let comment = comment_of(author, text)?;
    let store = state.store.clone();
    blocking(move || {
        store
            .comment_discrepancy(id, &comment)?
            .ok_or_else(|| not_found(id))
    })
    .await?;
    Ok(see_other(&format!("{}#comments", detail_href(id))))
}

/// `POST /discrepancies/{id}/resolve` (CSRF form: `type` = `adjust` with `location`, `gtin`, `lot`, `delta`,
/// `reason`; or `accepted` with `reason`).
pub(super) async fn resolve(
    id: Result<Path<String>, PathRejection>,
    State(state): State<AppState>,
    form: CsrfForm,
) -> PageResult {
    let mut fields = form.fields;
    let kind = match fields.one_of("type", &["adjust", "accepted"])? {
        Some("adjust") => ResolveKind::Adjust,
        Some(_) => ResolveKind::Accepted,
        None => {
            return Err(PageError::BadRequest(
                "type: choose adjust or accepted".into(),
            ))
        }
    };
    let location = fields.text("location");
    let gtin = fields.text("gtin");
    let lot = fields.text("lot");
    let delta = fields
        .text("delta")
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                PageError::BadRequest(format!(
                    "delta: {:?} is not a whole number of units",
                    v.chars().take(40).collect::<String>()
                ))
            })
        })
        .transpose()?;
    let reason = fields.text("reason").unwrap_or_default();
    fields.finish()?;
    let id = path_id(id)?;
    let resolution = resolution_of(kind, location, gtin, lot, delta, reason)?;
    let store = state.store.clone();
    let resolved = blocking(move || {
        store
            .resolve_discrepancy(id, &resolution, OffsetDateTime::now_utc())?
            .ok_or_else(|| not_found(id))
    })
    .await?;
    tracing::info!(discrepancy = id, kind = ?resolved.kind, "discrepancy resolved from the dashboard");
    Ok(see_other(&detail_href(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_the_wire_names() {
        for (name, kind, label) in KINDS {
            assert_eq!(serde_json::to_value(kind).unwrap(), *name);
            assert_eq!((kind_name(*kind), kind_label(*kind)), (*name, *label));
        }
    }

    #[test]
    fn query_table() {
        // (query string, Ok((status param, kind param)) or Err)
        type Case = (&'static str, Result<(&'static str, &'static str), ()>);
        let cases: &[Case] = &[
            ("", Ok(("open", ""))),
            ("status=all", Ok(("all", ""))),
            (
                "status=resolved&kind=asn_over",
                Ok(("resolved", "asn_over")),
            ),
            (
                "kind=negative_stock&site=WH1",
                Ok(("open", "negative_stock")),
            ),
            ("status=closed", Err(())),
            ("kind=bogus", Err(())),
            ("site=W%20H", Err(())),
        ];
        for (query, want) in cases {
            let mut fields = Fields::parse(query.as_bytes()).unwrap();
            match (DiscrepancyQuery::parse(&mut fields), want) {
                (Ok(q), Ok((status, kind))) => {
                    let params = q.params();
                    assert_eq!(params[1].1, *status, "{query}");
                    assert_eq!(params[2].1, *kind, "{query}");
                }
                (Err(e), Err(())) => assert!(matches!(e, PageError::BadRequest(_)), "{query}"),
                (got, want) => panic!("{query}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn suggested_delta_table() {
        let d = |kind, expected, actual| Discrepancy {
            id: 1,
            site: "WH1".into(),
            kind,
            status: DiscrepancyStatus::Open,
            created_at: OffsetDateTime::UNIX_EPOCH,
            movements: vec![],
            reference: None,
            location: None,
            gtin: None,
            lot: None,
            expected,
            actual,
            message: String::new(),
            comments: vec![],
            resolution: None,
        };
        use DiscrepancyKind::*;
        // (kind, expected, actual, suggested delta)
        type Case = (DiscrepancyKind, Option<i64>, Option<i64>, Option<i64>);
        let cases: &[Case] = &[
            (NegativeStock, Some(0), Some(-3), Some(3)),
            (CountMismatch, Some(5), Some(3), Some(-2)),
            (CountMismatch, Some(3), Some(3), None),
            (AsnOver, Some(10), Some(12), None),
            (NegativeStock, None, Some(-1), None),
            (NegativeStock, Some(0), Some(i64::MIN), None),
        ];
        for (kind, expected, actual, want) in cases {
            assert_eq!(
                suggested_delta(&d(*kind, *expected, *actual)),
                *want,
                "{kind:?}"
            );
        }
    }
}
