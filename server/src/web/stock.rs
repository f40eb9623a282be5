//! `GET /stock`: stock rows, filtered, sorted, paged by keyset ([`Store::stock_page`]), with expiry warnings, and
//! the same table as CSV (`?format=csv`).
//!
//! Parameters: `site`, `location`, `gtin` (any GTIN-8/12/13/14), `lot` (filters); `sort` = `location` (default),
//! `gtin`, `lot`, `qty` or `expiry` and `dir` = `asc` (default) or `desc`; `after` or `before` = a cursor (the
//! boundary row, as the page's links write it); `format=csv`. The page never reads more than [`PAGE_ROWS`] + 1 rows
//! of the store (the sorts without an index scan their scope on the store's side; see each backend).

use std::collections::HashMap;

use axum::extract::State;
use axum::response::IntoResponse;
use maud::{html, Markup};
use time::Date;

use super::csv::{self, Cell, CsvError};
use super::layout::{self, Nav};
use super::{blocking, today, Fields, Format, PageError, PageResult, Session};
use crate::state::AppState;
use crate::store::{StockFilter, StockPageQuery, StockPageStart, StockRow, StockSort, Store};

/// Rows per page.
pub const PAGE_ROWS: usize = 50;
/// Rows per store query while exporting CSV.
const CSV_PAGE_ROWS: usize = 1000;
/// Rows whose goods expire within this many days are marked "expires soon".
pub const EXPIRY_WARNING_DAYS: i64 = 30;
/// The longest cursor accepted (a row's texts are bounded, so a real one is far shorter).
const MAX_CURSOR_CHARS: usize = 600;

/// The `sort` values and what they sort by.
const SORTS: &[(&str, StockSort)] = &[
    ("location", StockSort::Location),
    ("gtin", StockSort::Gtin),
    ("lot", StockSort::Lot),
    ("qty", StockSort::Qty),
    ("expiry", StockSort::Expiry),
];

fn sort_name(sort: StockSort) -> &'static str {
    SORTS
        .iter()
        .find(|(_, s)| *s == sort)
        .map_or("location", |(n, _)| n)
}

/// A checked request for the stock page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StockRequest {
    pub(crate) query: StockPageQuery,
    pub(crate) format: Format,
}

/// Reads the page's parameters; every bad one is a 400 naming it.
pub(crate) fn parse(q: &mut Fields) -> Result<StockRequest, PageError> {
    let filter = StockFilter {
        site: q.name("site")?,
        location: q.location("location")?,
        gtin: q.gtin("gtin")?,
        lot: q.lot("lot")?,
    };
    let names: Vec<&'static str> = SORTS.iter().map(|(n, _)| *n).collect();
    let sort = match q.one_of("sort", &names)? {
        Some(name) => SORTS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s),
        None => None,
    }
    .unwrap_or_default();
    let descending = q.one_of("dir", &["asc", "desc"])? == Some("desc");
    let start = match (q.text("after"), q.text("before")) {
        (None, None) => StockPageStart::First,
        (Some(c), None) => StockPageStart::After(decode_cursor("after", &c)?),
        (None, Some(c)) => StockPageStart::Before(decode_cursor("before", &c)?),
        (Some(_), Some(_)) => {
            return Err(PageError::BadRequest(
                "after and before: give one of them".into(),
            ))
        }
    };
    let format = q.format()?;
    Ok(StockRequest {
        query: StockPageQuery {
            filter,
            sort,
            descending,
            start,
            limit: PAGE_ROWS,
        },
        format,
    })
}

/// The wire form of a page boundary: the row as a JSON array `[site, location, gtin, lot, qty, expiry]`.
type CursorRow = (String, String, String, Option<String>, i64, Option<String>);

fn encode_cursor(row: &StockRow) -> String {
    let tuple: CursorRow = (
        row.site.clone(),
        row.location.clone(),
        row.gtin.clone(),
        row.lot.clone(),
        row.qty,
        row.expiry.clone(),
    );
    serde_json::to_string(&tuple).unwrap_or_default()
}

/// A cursor from a URL: bounded, well-formed, and free of control characters (PostgreSQL text takes no NUL).
fn decode_cursor(field: &str, text: &str) -> Result<StockRow, PageError> {
    let bad = || PageError::BadRequest(format!("{field}: not a page cursor of this dashboard"));
    if text.chars().count() > MAX_CURSOR_CHARS {
        return Err(bad());
    }
    let (site, location, gtin, lot, qty, expiry): CursorRow =
        serde_json::from_str(text).map_err(|_| bad())?;
    let texts = [
        Some(&site),
        Some(&location),
        Some(&gtin),
        lot.as_ref(),
        expiry.as_ref(),
    ];
    if texts
        .into_iter()
        .flatten()
        .any(|t| t.chars().any(char::is_control))
    {
        return Err(bad());
    }
    Ok(StockRow {
        site,
        location,
        gtin,
        lot,
        qty,
        expiry,
    })
}

/// How close a row's goods are to their expiry date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpiryState {
    /// Past its date (the date itself still counts as good).
    Expired,
    /// Expires within [`EXPIRY_WARNING_DAYS`] days: in this many.
    Soon(i64),
}

/// The warning for `expiry` (`YYYY-MM-DD`) on `today`, if any; an unreadable date gives none.
pub(crate) fn expiry_state(expiry: Option<&str>, today: Date) -> Option<ExpiryState> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(expiry?, &format).ok()?;
    let days = (date - today).whole_days();
    if days < 0 {
        Some(ExpiryState::Expired)
    } else if days <= EXPIRY_WARNING_DAYS {
        Some(ExpiryState::Soon(days))
    } else {
        None
    }
}

/// What the page shows: a page of rows, the item descriptions on it, and the known sites (for the filter).
struct Shown {
    rows: Vec<StockRow>,
    more: bool,
    descriptions: HashMap<String, String>,
    sites: Vec<String>,
}

/// The descriptions of the items on a page, from master data (one lookup per distinct GTIN).
pub(crate) fn describe(
    store: &dyn Store,
    rows: &[StockRow],
) -> Result<HashMap<String, String>, PageError> {
    let mut out = HashMap::new();
    for row in rows {
        if !out.contains_key(&row.gtin) {
            let description = store
                .item(&row.gtin)?
                .map(|i| i.description)
                .unwrap_or_default();
            out.insert(row.gtin.clone(), description);
        }
    }
    Ok(out)
}

pub(super) async fn page(
    session: Session,
    State(state): State<AppState>,
    mut q: Fields,
) -> PageResult {
    let request = parse(&mut q)?;
    q.finish()?;
    let store = state.store.clone();
    if request.format == Format::Csv {
        return Ok(export(store, request.query));
    }
    let query = request.query.clone();
    let shown = blocking(move || {
        let page = store.stock_page(&query)?;
        let descriptions = describe(&*store, &page.rows)?;
        let sites = store.sites()?.into_iter().map(|s| s.code).collect();
        Ok(Shown {
            rows: page.rows,
            more: page.more,
            descriptions,
            sites,
        })
    })
    .await?;
    Ok(layout::page(
        &session,
        Nav::Stock,
        "Stock",
        render(&request.query, &shown),
    )
    .into_response())
}

/// The links of the page: its filters and sort, plus a cursor or a format.
struct Links<'a> {
    query: &'a StockPageQuery,
}

impl Links<'_> {
    fn filters(&self) -> [(&'static str, &str); 4] {
        let f = &self.query.filter;
        [
            ("site", f.site.as_deref().unwrap_or("")),
            ("location", f.location.as_deref().unwrap_or("")),
            ("gtin", f.gtin.as_deref().unwrap_or("")),
            ("lot", f.lot.as_deref().unwrap_or("")),
        ]
    }

    fn to(&self, sort: &str, descending: bool, extra: &[(&str, &str)]) -> String {
        let mut params: Vec<(&str, &str)> = self.filters().to_vec();
        if sort != "location" {
            params.push(("sort", sort));
        }
        if descending {
            params.push(("dir", "desc"));
        }
        params.extend_from_slice(extra);
        layout::href("/stock", &params)
    }

    fn same_order(&self, extra: &[(&str, &str)]) -> String {
        self.to(sort_name(self.query.sort), self.query.descending, extra)
    }
}

fn render(query: &StockPageQuery, shown: &Shown) -> Markup {
    let links = Links { query };
    let today = today();
    let f = &query.filter;
    let current = (sort_name(query.sort), query.descending);
    let (first, last) = (shown.rows.first(), shown.rows.last());
    let backward = query.backward();
    let started = query.start != StockPageStart::First;
    // Going forward there is a previous page whenever this one did not start at the top; going backward, when
    // the store found more before it. Next is the mirror image.
    let prev = first
        .filter(|_| if backward { shown.more } else { started })
        .map(|r| links.same_order(&[("before", &encode_cursor(r))]));
    let next = last
        .filter(|_| if backward { true } else { shown.more })
        .map(|r| links.same_order(&[("after", &encode_cursor(r))]));
    let first_page = started.then(|| links.same_order(&[]));
    html! {
        form #filters .filters method="get" action="/stock" {
            label for="filter-site" { "Site"
                input #filter-site name="site" list="site-list" value=(f.site.as_deref().unwrap_or("")) size="8";
            }
            datalist #site-list {
                @for site in &shown.sites { option value=(site) {} }
            }
            label for="filter-location" { "Location"
                input #filter-location name="location" value=(f.location.as_deref().unwrap_or("")) size="10";
            }
            label for="filter-gtin" { "Item (GTIN)"
                input #filter-gtin name="gtin" inputmode="numeric" value=(f.gtin.as_deref().unwrap_or("")) size="14";
            }
            label for="filter-lot" { "Lot"
                input #filter-lot name="lot" value=(f.lot.as_deref().unwrap_or("")) size="10";
            }
            @if query.sort != StockSort::Location { input type="hidden" name="sort" value=(current.0); }
            @if query.descending { input type="hidden" name="dir" value="desc"; }
            button #filter-apply type="submit" { "Filter" }
            a #filter-clear .button href="/stock" { "Clear" }
        }
        div.toolbar {
            span #row-count .muted { (shown.rows.len()) " rows shown" }
            (layout::csv_link(&links.same_order(&[("format", "csv")])))
        }
        @if shown.rows.is_empty() {
            p #empty .muted {
                @if started { "No more rows this way." } @else { "No stock matches these filters." }
            }
        } @else {
            div.table-wrap {
                table #stock-table {
                    thead { tr {
                        th { "Site" }
                        (layout::sort_header("Location", "location", current, |s, d| links.to(s, d, &[])))
                        (layout::sort_header("Item", "gtin", current, |s, d| links.to(s, d, &[])))
                        th { "Description" }
                        (layout::sort_header("Lot", "lot", current, |s, d| links.to(s, d, &[])))
                        (layout::sort_header("Expiry", "expiry", current, |s, d| links.to(s, d, &[])))
                        (layout::sort_header("Qty", "qty", current, |s, d| links.to(s, d, &[])))
                    } }
                    tbody {
                        @for row in &shown.rows {
                            (stock_row(row, shown.descriptions.get(&row.gtin).map(String::as_str), today))
                        }
                    }
                }
            }
        }
        (layout::pager(first_page.as_deref(), prev.as_deref(), next.as_deref()))
    }
}

/// One stock row of a table (also used by the item and location pages).
pub(crate) fn stock_row(row: &StockRow, description: Option<&str>, today: Date) -> Markup {
    let state = expiry_state(row.expiry.as_deref(), today);
    let (class, state_name) = match state {
        Some(ExpiryState::Expired) => ("expired", "expired"),
        Some(ExpiryState::Soon(_)) => ("soon", "soon"),
        None => ("", ""),
    };
    html! {
        tr data-test="stock-row" class=[(!class.is_empty()).then_some(class)]
            data-site=(row.site) data-location=(row.location) data-gtin=(row.gtin)
            data-lot=(row.lot.as_deref().unwrap_or("")) data-qty=(row.qty)
            data-expiry=(row.expiry.as_deref().unwrap_or(""))
            data-expiry-state=[(!state_name.is_empty()).then_some(state_name)] {
            td { (row.site) }
            td { a data-test="location-link" href=(layout::location_href(&row.site, &row.location)) { (row.location) } }
            td { a data-test="item-link" href=(layout::item_href(&row.gtin)) { (row.gtin) } }
            td.desc data-test="description" { (description.unwrap_or("")) }
            td { (row.lot.as_deref().unwrap_or("—")) }
            td {
                (row.expiry.as_deref().unwrap_or("—"))
                @match state {
                    Some(ExpiryState::Expired) => span.marker data-test="expiry-marker" { "EXPIRED" },
                    Some(ExpiryState::Soon(0)) => span.marker data-test="expiry-marker" { "expires today" },
                    Some(ExpiryState::Soon(1)) => span.marker data-test="expiry-marker" { "expires in 1 day" },
                    Some(ExpiryState::Soon(days)) => span.marker data-test="expiry-marker" { "expires in " (days) " days" },
                    None => {},
                }
            }
            td.num.negative[row.qty < 0] { (row.qty) }
        }
    }
}

/// The CSV columns of a stock table.
pub(crate) const CSV_HEADER: &[&str] = &[
    "site",
    "location",
    "gtin",
    "description",
    "lot",
    "expiry",
    "qty",
];

/// The whole filtered table as CSV in the page's order, read from the store [`CSV_PAGE_ROWS`] rows at a time.
fn export(store: std::sync::Arc<dyn Store>, query: StockPageQuery) -> axum::response::Response {
    let name = match &query.filter.site {
        Some(site) => format!("stock-{site}-{}.csv", today()),
        None => format!("stock-{}.csv", today()),
    };
    csv::download(&name, CSV_HEADER, move |out| {
        let mut query = StockPageQuery {
            start: StockPageStart::First,
            limit: CSV_PAGE_ROWS,
            ..query
        };
        let mut descriptions: HashMap<String, String> = HashMap::new();
        loop {
            let page = store.stock_page(&query)?;
            for row in &page.rows {
                if !descriptions.contains_key(&row.gtin) {
                    // Bounded: a catalogue of any size costs at most this many remembered descriptions.
                    if descriptions.len() >= 10_000 {
                        descriptions.clear();
                    }
                    let d = store
                        .item(&row.gtin)
                        .map_err(CsvError::from)?
                        .map(|i| i.description)
                        .unwrap_or_default();
                    descriptions.insert(row.gtin.clone(), d);
                }
                out.row(&[
                    Cell::Text(&row.site),
                    Cell::Text(&row.location),
                    Cell::Text(&row.gtin),
                    Cell::Text(descriptions.get(&row.gtin).map_or("", String::as_str)),
                    row.lot.as_deref().into(),
                    row.expiry.as_deref().into(),
                    Cell::Int(row.qty),
                ])?;
            }
            match page.rows.last() {
                Some(last) if page.more => query.start = StockPageStart::After(last.clone()),
                _ => return Ok(()),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(qty: i64, lot: Option<&str>, expiry: Option<&str>) -> StockRow {
        StockRow {
            site: "WH1".into(),
            location: "A-01".into(),
            gtin: "09506000134352".into(),
            lot: lot.map(Into::into),
            qty,
            expiry: expiry.map(Into::into),
        }
    }

    #[test]
    fn cursor_round_trips_and_refuses_garbage() {
        for r in [
            row(5, None, None),
            row(-3, Some("L\"1,"), Some("2027-01-31")),
        ] {
            assert_eq!(decode_cursor("after", &encode_cursor(&r)).unwrap(), r);
        }
        let long = format!(
            "[\"{}\",\"a\",\"g\",null,1,null]",
            "x".repeat(MAX_CURSOR_CHARS)
        );
        for bad in [
            "",
            "[]",
            "{\"site\":1}",
            "[\"WH1\",\"A\",\"G\",null,\"x\",null]",
            "[\"WH\\u0000\",\"A\",\"G\",null,1,null]",
            long.as_str(),
        ] {
            assert!(decode_cursor("after", bad).is_err(), "{bad:.40}");
        }
    }

    #[test]
    fn expiry_state_table() {
        let today = time::macros::date!(2026 - 11 - 26);
        let cases: &[(Option<&str>, Option<ExpiryState>)] = &[
            (None, None),
            (Some("2026-11-25"), Some(ExpiryState::Expired)),
            (Some("2020-01-01"), Some(ExpiryState::Expired)),
            (Some("2026-11-26"), Some(ExpiryState::Soon(0))),
            (Some("2026-12-26"), Some(ExpiryState::Soon(30))),
            (Some("2026-12-27"), None),
            (Some("not a date"), None),
            (Some("2026-02-30"), None),
        ];
        for (expiry, want) in cases {
            assert_eq!(expiry_state(*expiry, today), *want, "{expiry:?}");
        }
    }

    #[test]
    fn parse_table() {
        // (query, Ok((sort, descending, backward)) or the start of the error)
        let cursor = encode_cursor(&row(1, None, None));
        let after = layout::href("/", &[("after", &cursor)]);
        let after = after.trim_start_matches("/?");
        let both = format!("{after}&before=x");
        type Want = Result<(StockSort, bool, bool), &'static str>;
        let cases: &[(&str, Want)] = &[
            ("", Ok((StockSort::Location, false, false))),
            ("sort=qty&dir=desc", Ok((StockSort::Qty, true, false))),
            ("sort=expiry&dir=asc", Ok((StockSort::Expiry, false, false))),
            ("sort=gtin", Ok((StockSort::Gtin, false, false))),
            (after, Ok((StockSort::Location, false, false))),
            ("sort=price", Err("sort: ")),
            ("dir=sideways", Err("dir: ")),
            ("after=%5B1%5D", Err("after: ")),
            (&both, Err("after and before")),
            ("gtin=123", Err("gtin: ")),
            ("site=%3Cscript%3E", Err("site: ")),
            ("format=xls", Err("format: ")),
        ];
        for (query, want) in cases {
            let mut fields = Fields::parse(query.as_bytes()).unwrap();
            match (parse(&mut fields), want) {
                (Ok(r), Ok((sort, desc, backward))) => {
                    assert_eq!(
                        (r.query.sort, r.query.descending, r.query.backward()),
                        (*sort, *desc, *backward),
                        "{query}"
                    );
                }
                (Err(e), Err(start)) => assert!(e.to_string().starts_with(start), "{query}: {e}"),
                (got, want) => panic!("{query}: got {got:?}, want {want:?}"),
            }
        }
    }
}
