//! Expected receipts (ASNs): `GET /receipts` lists them per site with their status and how much has arrived;
//! `GET /receipts/{id}` shows one ASN line by line, expected against received, over and short marked in words,
//! the lots nobody announced, and its pallets (SSCCs) announced and received.
//!
//! Progress comes from [`Store::asn_progress`](crate::store::Store::asn_progress) (see
//! [`crate::store::progress`] for the rules, which are reconciliation's: a line marked short is the line the close
//! raises `asn_short` for). The list reads each ASN's received counters ([`Store::asn_received`]), not its
//! movements.
//!
//! List parameters: `site` (default: every site), `status` (`open`, the default; `closed`; `cancelled`; `all`),
//! `format=csv`. Detail: `format=csv` with `table=lines` (default), `pallets` or `unexpected`.
//!
//! # Selectors
//!
//! ```text
//! list     #receipt-filters with #filter-site #filter-status #filter-apply; #receipts-table with rows
//!          tr#receipt-<id> [data-test=receipt-row] data-id data-site data-status; a[data-test=receipt-link];
//!          td[data-field=expected|received]; #empty; #csv-link
//! detail   #receipt (dl) with #r-site #r-status #r-supplier #r-expected-on; #r-summary;
//!          #lines-table rows tr[data-test=line-row] data-gtin data-lot data-fill (outstanding|complete|over|
//!          short), td[data-field=expected|received|difference|fill], span[data-test=fill-marker];
//!          #unexpected-table rows tr[data-test=unexpected-row]; #pallets-table rows tr[data-test=pallet-row]
//!          data-sscc data-announced data-received; #csv-link (lines), #csv-pallets, #csv-unexpected
//! ```

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use dockhand_protocol::sync::{Asn, DocStatus};
use maud::{html, Markup};

use super::csv::{self, Cell};
use super::layout::{self, Nav};
use super::{blocking, Fields, Format, PageError, PageResult, Session};
use crate::state::AppState;
use crate::store::progress::Fill;
use crate::store::{AsnProgress, Store};

/// The status filter of a document list: one status, or all.
pub(crate) fn doc_status(q: &mut Fields) -> Result<Option<DocStatus>, PageError> {
    Ok(
        match q.one_of("status", &["open", "closed", "cancelled", "all"])? {
            None | Some("open") => Some(DocStatus::Open),
            Some("closed") => Some(DocStatus::Closed),
            Some("cancelled") => Some(DocStatus::Cancelled),
            Some(_) => None,
        },
    )
}

/// A document status as on the wire.
pub(crate) fn status_name(status: DocStatus) -> &'static str {
    match status {
        DocStatus::Open => "open",
        DocStatus::Closed => "closed",
        DocStatus::Cancelled => "cancelled",
    }
}

/// The sites to list documents of: the one asked for, or every site the store knows.
pub(crate) fn sites(store: &dyn Store, site: &Option<String>) -> Result<Vec<String>, PageError> {
    Ok(match site {
        Some(s) => vec![s.clone()],
        None => store.sites()?.into_iter().map(|s| s.code).collect(),
    })
}

/// The filter form of a document list.
pub(crate) fn doc_filters(
    id: &str,
    action: &str,
    site: Option<&str>,
    status: Option<DocStatus>,
) -> Markup {
    let current = status.map_or("all", status_name);
    html! {
        form.filters id=(id) method="get" action=(action) {
            label for="filter-site" { "Site"
                input #filter-site name="site" value=(site.unwrap_or("")) maxlength="64" size="8";
            }
            label for="filter-status" { "Status"
                select #filter-status name="status" {
                    @for s in ["open", "closed", "cancelled", "all"] {
                        option value=(s) selected[s == current] { (s) }
                    }
                }
            }
            button #filter-apply type="submit" { "Show" }
        }
    }
}

/// Units an ASN announces, loose and on pallets.
fn announced(asn: &Asn) -> u64 {
    asn.lines
        .iter()
        .chain(asn.pallets.iter().flat_map(|p| p.lines.iter()))
        .fold(0, |sum, l| sum.saturating_add(l.qty))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn detail_href(id: &str) -> String {
    format!("/receipts/{}", layout::path_segment(id))
}

/// One ASN in the list: the document, units announced, units received against it (all lots, announced or not).
type Summary = (Asn, u64, u64);

const LIST_CSV: &[&str] = &[
    "id",
    "site",
    "status",
    "supplier",
    "expected_on",
    "lines",
    "pallets",
    "expected_units",
    "received_units",
];

/// `GET /receipts`.
pub(super) async fn list(
    session: Session,
    State(state): State<AppState>,
    mut q: Fields,
) -> PageResult {
    let site = q.name("site")?;
    let status = doc_status(&mut q)?;
    let format = q.format()?;
    q.finish()?;
    let store = state.store.clone();
    let wanted = site.clone();
    let rows: Vec<Summary> = blocking(move || {
        let mut rows = Vec::new();
        for site in sites(store.as_ref(), &wanted)? {
            for asn in store.asns(&site, status)? {
                let received = store
                    .asn_received(&asn.id)?
                    .iter()
                    .fold(0u64, |sum, r| sum.saturating_add(r.qty));
                let expected = announced(&asn);
                rows.push((asn, expected, received));
            }
        }
        Ok(rows)
    })
    .await?;
    if format == Format::Csv {
        return Ok(csv::download("receipts.csv", LIST_CSV, move |out| {
            for (asn, expected, received) in &rows {
                out.row(&[
                    Cell::Text(&asn.id),
                    Cell::Text(&asn.site),
                    Cell::Text(status_name(asn.status)),
                    asn.supplier.as_deref().into(),
                    asn.expected_on.as_deref().into(),
                    Cell::Int(to_i64(asn.lines.len() as u64)),
                    Cell::Int(to_i64(asn.pallets.len() as u64)),
                    Cell::Int(to_i64(*expected)),
                    Cell::Int(to_i64(*received)),
                ])?;
            }
            Ok(())
        }));
    }
    let status_param = status.map_or("all", status_name);
    let csv_href = layout::href(
        "/receipts",
        &[
            ("site", site.as_deref().unwrap_or("")),
            ("status", status_param),
            ("format", "csv"),
        ],
    );
    let content = html! {
        (doc_filters("receipt-filters", "/receipts", site.as_deref(), status))
        @if rows.is_empty() {
            p #empty { "No expected receipt matches." }
        } @else {
            div.table-wrap {
                table #receipts-table {
                    thead {
                        tr {
                            th scope="col" { "ASN" } th scope="col" { "Site" } th scope="col" { "Supplier" }
                            th scope="col" { "Expected on" } th scope="col" { "Status" } th scope="col" { "Pallets" }
                            th scope="col" { "Units expected" } th scope="col" { "Units received" }
                        }
                    }
                    tbody {
                        @for (asn, expected, received) in &rows {
                            tr id=(format!("receipt-{}", asn.id)) data-test="receipt-row" data-id=(asn.id)
                                data-site=(asn.site) data-status=(status_name(asn.status)) {
                                td { a data-test="receipt-link" href=(detail_href(&asn.id)) { (asn.id) } }
                                td { (asn.site) }
                                td { (asn.supplier.as_deref().unwrap_or("")) }
                                td { (asn.expected_on.as_deref().unwrap_or("")) }
                                td { span class=(format!("badge {}", status_name(asn.status))) { (status_name(asn.status)) } }
                                td.num { (asn.pallets.len()) }
                                td.num data-field="expected" { (expected) }
                                td.num data-field="received" { (received) }
                            }
                        }
                    }
                }
            }
        }
        (layout::csv_link(&csv_href))
    };
    Ok(layout::page(&session, Nav::Receipts, "Receipts", content).into_response())
}

/// The visible marker of a fill: a word and a symbol, not only a colour.
pub(crate) fn fill_marker(fill: Fill) -> Markup {
    let symbol = match fill {
        Fill::Outstanding => "…",
        Fill::Complete => "✓",
        Fill::Over => "▲",
        Fill::Short => "▼",
    };
    html! {
        span data-test="fill-marker" class=(format!("badge {}", fill.label())) { (symbol) " " (fill.label()) }
    }
}

/// The path's document id: 1 to 64 characters of `A-Z a-z 0-9 . _ -` (the API's rule), else a 400 page.
pub(crate) fn path_doc_id(id: Result<Path<String>, PathRejection>) -> Result<String, PageError> {
    let Path(id) = id.map_err(|e| PageError::BadRequest(e.body_text()))?;
    Ok(crate::routes::input::name("id", &id)?)
}

const LINES_CSV: &[&str] = &["gtin", "lot", "expected", "received", "difference", "state"];
const PALLETS_CSV: &[&str] = &["sscc", "announced", "receipts", "units"];
const UNEXPECTED_CSV: &[&str] = &["gtin", "lot", "received"];

/// `GET /receipts/{id}[?format=csv&table=lines|pallets|unexpected]`.
pub(super) async fn detail(
    session: Session,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    mut q: Fields,
) -> PageResult {
    let format = q.format()?;
    let table = q.one_of("table", &["lines", "pallets", "unexpected"])?;
    q.finish()?;
    let id = path_doc_id(id)?;
    let store = state.store.clone();
    let lookup = id.clone();
    let progress = blocking(move || Ok(store.asn_progress(&lookup)?))
        .await?
        .ok_or_else(|| PageError::NotFound(format!("there is no ASN {id:?}")))?;
    if format == Format::Csv {
        return Ok(detail_csv(progress, table.unwrap_or("lines")));
    }
    let title = format!("Receipt {}", progress.asn.id);
    Ok(layout::page(&session, Nav::Receipts, &title, detail_markup(&progress)).into_response())
}

fn detail_csv(p: AsnProgress, table: &str) -> axum::response::Response {
    let name = |what: &str| format!("receipt-{}-{what}.csv", p.asn.id);
    match table {
        "pallets" => csv::download(&name("pallets"), PALLETS_CSV, move |out| {
            for pallet in &p.pallets {
                out.row(&[
                    Cell::Text(&pallet.sscc),
                    Cell::Text(if pallet.announced { "yes" } else { "no" }),
                    Cell::Int(to_i64(pallet.receipts)),
                    Cell::Int(to_i64(pallet.units)),
                ])?;
            }
            Ok(())
        }),
        "unexpected" => csv::download(&name("unexpected"), UNEXPECTED_CSV, move |out| {
            for r in &p.unexpected {
                out.row(&[
                    Cell::Text(&r.gtin),
                    r.lot.as_deref().into(),
                    Cell::Int(to_i64(r.qty)),
                ])?;
            }
            Ok(())
        }),
        _ => csv::download(&name("lines"), LINES_CSV, move |out| {
            for l in &p.lines {
                out.row(&[
                    Cell::Text(&l.gtin),
                    l.lot.as_deref().into(),
                    Cell::Int(to_i64(l.expected)),
                    Cell::Int(to_i64(l.received)),
                    Cell::Int(to_i64(l.received).saturating_sub(to_i64(l.expected))),
                    Cell::Text(l.fill.label()),
                ])?;
            }
            Ok(())
        }),
    }
}

fn detail_markup(p: &AsnProgress) -> Markup {
    let asn = &p.asn;
    let expected: u64 = p.lines.iter().map(|l| l.expected).sum();
    let received: u64 = p.lines.iter().map(|l| l.received).sum();
    let csv = |table: &str| {
        layout::href(
            &detail_href(&asn.id),
            &[("format", "csv"), ("table", table)],
        )
    };
    html! {
        dl #receipt .master {
            dt { "Site" } dd #r-site { (asn.site) }
            dt { "Status" } dd #r-status data-status=(status_name(asn.status)) { (status_name(asn.status)) }
            dt { "Supplier" } dd #r-supplier { (asn.supplier.as_deref().unwrap_or("–")) }
            dt { "Expected on" } dd #r-expected-on { (asn.expected_on.as_deref().unwrap_or("–")) }
        }
        p #r-summary {
            (received) " of " (expected) " announced units received; "
            (p.lines.iter().filter(|l| l.fill == Fill::Over).count()) " lines over, "
            (p.lines.iter().filter(|l| l.fill == Fill::Short).count()) " short; "
            (p.pallets.iter().filter(|x| x.announced && x.received()).count()) " of "
            (asn.pallets.len()) " pallets in."
        }
        h2 { "Lines" }
        div.table-wrap {
            table #lines-table {
                thead {
                    tr {
                        th scope="col" { "Item" } th scope="col" { "Lot" } th scope="col" { "Expected" }
                        th scope="col" { "Received" } th scope="col" { "Difference" } th scope="col" { "State" }
                    }
                }
                tbody {
                    @for l in &p.lines {
                        tr data-test="line-row" data-gtin=(l.gtin) data-lot=(l.lot.as_deref().unwrap_or(""))
                            data-fill=(l.fill.label()) {
                            td { a data-test="item-link" href=(layout::item_href(&l.gtin)) { (l.gtin) } }
                            td { (l.lot.as_deref().unwrap_or("any")) }
                            td.num data-field="expected" { (l.expected) }
                            td.num data-field="received" { (l.received) }
                            td.num data-field="difference" {
                                (format!("{:+}", to_i64(l.received).saturating_sub(to_i64(l.expected))))
                            }
                            td data-field="fill" { (fill_marker(l.fill)) }
                        }
                    }
                }
            }
        }
        (layout::csv_link(&csv("lines")))
        h2 { "Received but not announced" }
        @if p.unexpected.is_empty() {
            p #no-unexpected { "Nothing." }
        } @else {
            div.table-wrap {
                table #unexpected-table {
                    thead { tr { th scope="col" { "Item" } th scope="col" { "Lot" } th scope="col" { "Received" } } }
                    tbody {
                        @for r in &p.unexpected {
                            tr data-test="unexpected-row" data-gtin=(r.gtin) data-lot=(r.lot.as_deref().unwrap_or("")) {
                                td { a data-test="item-link" href=(layout::item_href(&r.gtin)) { (r.gtin) } }
                                td { (r.lot.as_deref().unwrap_or("none")) }
                                td.num { (r.qty) }
                            }
                        }
                    }
                }
            }
        }
        a #csv-unexpected .button href=(csv("unexpected")) download { "Download CSV" }
        h2 { "Pallets" }
        @if p.pallets.is_empty() {
            p #no-pallets { "No pallet announced or received." }
        } @else {
            div.table-wrap {
                table #pallets-table {
                    thead {
                        tr {
                            th scope="col" { "SSCC" } th scope="col" { "Announced" } th scope="col" { "Received" }
                            th scope="col" { "Units" }
                        }
                    }
                    tbody {
                        @for x in &p.pallets {
                            tr data-test="pallet-row" data-sscc=(x.sscc) data-announced=(x.announced)
                                data-received=(x.received()) {
                                td { (x.sscc) }
                                td { @if x.announced { "yes" } @else { "no — not on the ASN" } }
                                td { @if x.received() { "✓ received" } @else { "… not yet" } }
                                td.num { (x.units) }
                            }
                        }
                    }
                }
            }
        }
        a #csv-pallets .button href=(csv("pallets")) download { "Download CSV" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_status_table() {
        let cases: &[(&str, Result<Option<DocStatus>, ()>)] = &[
            ("", Ok(Some(DocStatus::Open))),
            ("status=open", Ok(Some(DocStatus::Open))),
            ("status=closed", Ok(Some(DocStatus::Closed))),
            ("status=cancelled", Ok(Some(DocStatus::Cancelled))),
            ("status=all", Ok(None)),
            ("status=done", Err(())),
        ];
        for (query, want) in cases {
            let mut q = Fields::parse(query.as_bytes()).unwrap();
            match (doc_status(&mut q), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{query}"),
                (Err(e), Err(())) => assert!(matches!(e, PageError::BadRequest(_)), "{query}"),
                (got, want) => panic!("{query}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn fill_markers_say_it_in_words() {
        for (fill, word) in [
            (Fill::Outstanding, "outstanding"),
            (Fill::Complete, "complete"),
            (Fill::Over, "over"),
            (Fill::Short, "short"),
        ] {
            let html = fill_marker(fill).into_string();
            assert!(html.contains(word), "{html}");
            assert!(html.contains(r#"data-test="fill-marker""#), "{html}");
        }
    }
}
