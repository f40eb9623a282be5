//! The item page (`/items/{gtin}`) and the location page (`/sites/{site}/locations/{code}`): master data, the
//! current stock there, and the movement trail, paged in server commit order through [`Store::movements`]
//! (`?after=<server seq>`, the `next` of the previous page). `?format=csv` downloads the whole trail.
//!
//! The stock table shows the first [`STOCK_ROWS`] rows and links to `/stock` with the same filter for the rest.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use dockhand_protocol::sync::{Item, Location};
use maud::{html, Markup};
use time::format_description::well_known::Rfc3339;

use super::csv::{self, Cell};
use super::layout::{self, Nav};
use super::stock::{describe, stock_row};
use super::{blocking, today, Fields, Format, PageError, PageResult, Session};
use crate::routes::input;
use crate::state::AppState;
use crate::store::{
    MovementFilter, MovementPage, StockFilter, StockPageQuery, StockRow, Store, StoredMovement,
};

/// Movements per page of the trail.
pub const TRAIL_ROWS: usize = 50;
/// Stock rows shown on an item or location page.
pub const STOCK_ROWS: usize = 50;
/// Movements per store query while exporting CSV.
const CSV_PAGE_ROWS: usize = 1000;

/// What an item or location page shows below its master data.
struct Shown {
    stock: Vec<StockRow>,
    more_stock: bool,
    descriptions: std::collections::HashMap<String, String>,
    trail: MovementPage,
}

/// The trail's paging parameters: `after` and `format`.
fn trail_params(q: &mut Fields) -> Result<(u64, Format), PageError> {
    Ok((q.u64("after")?.unwrap_or(0), q.format()?))
}

fn load(
    store: &dyn Store,
    stock: StockFilter,
    trail: &MovementFilter,
    after: u64,
) -> Result<Shown, PageError> {
    let page = store.stock_page(&StockPageQuery {
        filter: stock,
        limit: STOCK_ROWS,
        ..StockPageQuery::default()
    })?;
    Ok(Shown {
        descriptions: describe(store, &page.rows)?,
        stock: page.rows,
        more_stock: page.more,
        trail: store.movements(trail, after, TRAIL_ROWS)?,
    })
}

pub(super) async fn item_page(
    session: Session,
    State(state): State<AppState>,
    Path(gtin): Path<String>,
    mut q: Fields,
) -> PageResult {
    let gtin = input::gtin("gtin", &gtin)?;
    let (after, format) = trail_params(&mut q)?;
    q.finish()?;
    let store = state.store.clone();
    let filter = MovementFilter {
        gtin: Some(gtin.clone()),
        ..MovementFilter::default()
    };
    if format == Format::Csv {
        return Ok(export(store, format!("movements-{gtin}.csv"), filter));
    }
    let g = gtin.clone();
    let (item, shown) = blocking(move || {
        let item = store.item(&g)?;
        let stock = StockFilter {
            gtin: Some(g.clone()),
            ..StockFilter::default()
        };
        Ok((item, load(&*store, stock, &filter, after)?))
    })
    .await?;
    let here = layout::item_href(&gtin);
    let all_stock = layout::href("/stock", &[("gtin", &gtin)]);
    let title = match &item {
        Some(item) => format!("{} · {gtin}", item.description),
        None => gtin.clone(),
    };
    let body = html! {
        (item_master(&gtin, item.as_ref()))
        (stock_section("item-stock", "item-stock-all", &all_stock, &shown))
        (trail_section(&here, &shown.trail))
    };
    Ok(layout::page(&session, Nav::None, &title, body).into_response())
}

pub(super) async fn location_page(
    session: Session,
    State(state): State<AppState>,
    Path((site, code)): Path<(String, String)>,
    mut q: Fields,
) -> PageResult {
    let site = input::name("site", &site)?;
    let code = super::location_code("location", &code)?;
    let (after, format) = trail_params(&mut q)?;
    q.finish()?;
    let store = state.store.clone();
    let filter = MovementFilter {
        site: Some(site.clone()),
        location: Some(code.clone()),
        ..MovementFilter::default()
    };
    if format == Format::Csv {
        return Ok(export(
            store,
            format!("movements-{site}-{code}.csv"),
            filter,
        ));
    }
    let (s, c) = (site.clone(), code.clone());
    let (location, shown) = blocking(move || {
        let location = store.locations(&s)?.into_iter().find(|l| l.code == c);
        let stock = StockFilter {
            site: Some(s.clone()),
            location: Some(c.clone()),
            ..StockFilter::default()
        };
        Ok((location, load(&*store, stock, &filter, after)?))
    })
    .await?;
    let here = layout::location_href(&site, &code);
    let all_stock = layout::href("/stock", &[("site", &site), ("location", &code)]);
    let body = html! {
        (location_master(&site, location.as_ref()))
        (stock_section("location-stock", "location-stock-all", &all_stock, &shown))
        (trail_section(&here, &shown.trail))
    };
    Ok(layout::page(&session, Nav::None, &format!("{code} · {site}"), body).into_response())
}

fn item_master(gtin: &str, item: Option<&Item>) -> Markup {
    html! {
        @match item {
            Some(item) => dl #item-master .master {
                dt { "GTIN" } dd { (gtin) }
                dt { "Description" } dd #item-description { (item.description) }
                dt { "Unit" } dd #item-unit { (item.unit) }
                dt { "Tracked" } dd {
                    @let tracked: Vec<&str> = [(item.lot_tracked, "lot"), (item.expiry_tracked, "expiry"), (item.serial_tracked, "serial")]
                        .into_iter().filter(|(on, _)| *on).map(|(_, name)| name).collect();
                    @if tracked.is_empty() { "—" } @else { (tracked.join(", ")) }
                }
                dt { "Status" } dd { @if item.active { "active" } @else { "deactivated" } }
            },
            None => p #item-unknown .error { "This GTIN is not in the master data. Its stock and movements are kept; add the item to name it." },
        }
    }
}

fn location_master(site: &str, location: Option<&Location>) -> Markup {
    html! {
        @match location {
            Some(l) => dl #location-master .master {
                dt { "Site" } dd { (site) }
                dt { "Zone" } dd #location-zone { (l.zone.as_deref().unwrap_or("—")) }
                dt { "GLN" } dd #location-gln { (l.gln.as_deref().unwrap_or("—")) }
                dt { "Status" } dd { @if l.active { "active" } @else { "deactivated" } }
            },
            None => p #location-unknown .error { "This location is not in the master data of site " (site) ". Its stock and movements are kept." },
        }
    }
}

fn stock_section(id: &str, all_id: &str, all_stock: &str, shown: &Shown) -> Markup {
    let today = today();
    html! {
        h2 { "Stock" }
        @if shown.stock.is_empty() {
            p.muted { "No stock here." }
        } @else {
            div.table-wrap {
                table id=(id) {
                    thead { tr {
                        th { "Site" } th { "Location" } th { "Item" } th { "Description" } th { "Lot" }
                        th { "Expiry" } th.num { "Qty" }
                    } }
                    tbody {
                        @for row in &shown.stock {
                            (stock_row(row, shown.descriptions.get(&row.gtin).map(String::as_str), today))
                        }
                    }
                }
            }
        }
        p { a id=(all_id) href=(all_stock) {
            @if shown.more_stock { "All " (STOCK_ROWS) "+ rows in the stock table" } @else { "Open in the stock table" }
        } }
    }
}

fn trail_section(here: &str, trail: &MovementPage) -> Markup {
    let next = trail
        .next
        .map(|n| layout::href(here, &[("after", &n.to_string())]));
    html! {
        h2 { "Movements" }
        div.toolbar {
            span.muted { "In the order the server received them." }
            (layout::csv_link(&layout::href(here, &[("format", "csv")])))
        }
        @if trail.movements.is_empty() {
            p.muted { "No movements." }
        } @else {
            div.table-wrap {
                table #trail {
                    thead { tr {
                        th.num { "#" } th { "Device" } th.num { "Seq" } th { "Time" } th { "Kind" }
                        th { "From → to" } th.num { "Qty" } th { "Lot" } th { "Reference" } th { "Operator" }
                    } }
                    tbody { @for m in &trail.movements { (movement_row(m)) } }
                }
            }
        }
        (layout::pager(None, None, next.as_deref()))
    }
}

fn movement_row(s: &StoredMovement) -> Markup {
    let m = &s.movement;
    let at = m.at.format(&Rfc3339).unwrap_or_default();
    html! {
        tr data-test="movement-row" data-server-seq=(s.server_seq) data-device=(m.device_id) data-seq=(m.seq)
            data-kind=(m.kind.as_str()) {
            td.num { (s.server_seq) }
            td { (m.device_id) }
            td.num { (m.seq) }
            td { time datetime=(at) { (at) } }
            td { (m.kind.as_str()) }
            td {
                @match &m.from_location { Some(l) => a href=(layout::location_href(&s.site, l)) { (l) }, None => "—" }
                " → "
                @match &m.to_location { Some(l) => a href=(layout::location_href(&s.site, l)) { (l) }, None => "—" }
            }
            td.num { (m.qty) }
            td { (m.lot.as_deref().unwrap_or("—")) }
            td { (m.reference.as_deref().unwrap_or("")) }
            td { (m.operator.as_deref().unwrap_or("")) }
        }
    }
}

/// The CSV columns of a movement trail.
const CSV_HEADER: &[&str] = &[
    "server_seq",
    "site",
    "device",
    "seq",
    "at",
    "kind",
    "gtin",
    "lot",
    "expiry",
    "qty",
    "from",
    "to",
    "reference",
    "operator",
    "received_at",
];

fn export(store: Arc<dyn Store>, name: String, filter: MovementFilter) -> axum::response::Response {
    csv::download(&name, CSV_HEADER, move |out| {
        let mut after = 0;
        loop {
            let page = store.movements(&filter, after, CSV_PAGE_ROWS)?;
            for s in &page.movements {
                let m = &s.movement;
                let at = m.at.format(&Rfc3339).unwrap_or_default();
                let received = s.received_at.format(&Rfc3339).unwrap_or_default();
                let int = |n: u64| Cell::Int(i64::try_from(n).unwrap_or(i64::MAX));
                out.row(&[
                    int(s.server_seq),
                    Cell::Text(&s.site),
                    Cell::Text(&m.device_id),
                    int(m.seq),
                    Cell::Text(&at),
                    Cell::Text(m.kind.as_str()),
                    Cell::Text(&m.gtin),
                    m.lot.as_deref().into(),
                    m.expiry.as_deref().into(),
                    int(m.qty),
                    m.from_location.as_deref().into(),
                    m.to_location.as_deref().into(),
                    m.reference.as_deref().into(),
                    m.operator.as_deref().into(),
                    Cell::Text(&received),
                ])?;
            }
            match page.next {
                Some(next) => after = next,
                None => return Ok(()),
            }
        }
    })
}
