//! Pick lists: `GET /pick-lists` lists them per site with status, assignment (device or zone) and progress;
//! `GET /pick-lists/{id}` shows each line requested against picked, short picks, and who picked.
//!
//! Progress comes from [`Store::pick_list_progress`](crate::store::Store::pick_list_progress), built from the
//! list's own movements, read through the store's index by reference (see [`crate::store::progress`] for how picks
//! and `DH:SHORT` counts map to lines). The list page builds it for every list it shows, so its cost is the shown
//! lists' movements; it shows open lists unless asked otherwise.
//!
//! List parameters: `site`, `status` (`open`, the default; `closed`; `cancelled`; `all`), `format=csv`. Detail:
//! `format=csv` (the lines).
//!
//! # Selectors
//!
//! ```text
//! list     #pick-list-filters with #filter-site #filter-status #filter-apply; #pick-lists-table with rows
//!          tr#pick-list-<id> [data-test=pick-list-row] data-id data-site data-status; a[data-test=pick-list-link];
//!          td[data-field=assigned|requested|picked|shorts]; #empty; #csv-link
//! detail   #pick-list (dl) with #p-site #p-status #p-device #p-zone; #p-summary; #pick-lines-table rows
//!          tr[data-test=pick-line-row] data-line data-fill, td[data-field=location|item|lot|requested|picked|
//!          short|fill|devices], span[data-test=fill-marker]; #p-other (movements matching no line) when any;
//!          #csv-link
//! ```

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use maud::{html, Markup};

use super::csv::{self, Cell};
use super::devices::human_time;
use super::layout::{self, Nav};
use super::receipts::{doc_filters, doc_status, fill_marker, path_doc_id, sites, status_name};
use super::{blocking, Fields, Format, PageError, PageResult, Session};
use crate::state::AppState;
use crate::store::PickProgress;

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn detail_href(id: &str) -> String {
    format!("/pick-lists/{}", layout::path_segment(id))
}

/// Who the list is for, in words.
fn assigned(p: &PickProgress) -> String {
    match (&p.list.device, &p.list.zone) {
        (Some(d), _) => format!("device {d}"),
        (None, Some(z)) => format!("zone {z}"),
        (None, None) => "anyone".into(),
    }
}

const LIST_CSV: &[&str] = &[
    "id",
    "site",
    "status",
    "device",
    "zone",
    "lines",
    "requested",
    "picked",
    "short_lines",
];

/// `GET /pick-lists`.
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
    let rows: Vec<PickProgress> = blocking(move || {
        let mut rows = Vec::new();
        for site in sites(store.as_ref(), &wanted)? {
            for list in store.pick_lists(&site, status)? {
                if let Some(p) = store.pick_list_progress(&list.id)? {
                    rows.push(p);
                }
            }
        }
        Ok(rows)
    })
    .await?;
    if format == Format::Csv {
        return Ok(csv::download("pick-lists.csv", LIST_CSV, move |out| {
            for p in &rows {
                out.row(&[
                    Cell::Text(&p.list.id),
                    Cell::Text(&p.list.site),
                    Cell::Text(status_name(p.list.status)),
                    p.list.device.as_deref().into(),
                    p.list.zone.as_deref().into(),
                    Cell::Int(to_i64(p.lines.len() as u64)),
                    Cell::Int(to_i64(p.requested())),
                    Cell::Int(to_i64(p.picked())),
                    Cell::Int(to_i64(p.shorts() as u64)),
                ])?;
            }
            Ok(())
        }));
    }
    let status_param = status.map_or("all", status_name);
    let csv_href = layout::href(
        "/pick-lists",
        &[
            ("site", site.as_deref().unwrap_or("")),
            ("status", status_param),
            ("format", "csv"),
        ],
    );
    let content = html! {
        (doc_filters("pick-list-filters", "/pick-lists", site.as_deref(), status))
        @if rows.is_empty() {
            p #empty { "No pick list matches." }
        } @else {
            div.table-wrap {
                table #pick-lists-table {
                    thead {
                        tr {
                            th scope="col" { "Pick list" } th scope="col" { "Site" } th scope="col" { "Status" }
                            th scope="col" { "Assigned to" } th scope="col" { "Lines" } th scope="col" { "Requested" }
                            th scope="col" { "Picked" } th scope="col" { "Short lines" }
                        }
                    }
                    tbody {
                        @for p in &rows {
                            tr id=(format!("pick-list-{}", p.list.id)) data-test="pick-list-row" data-id=(p.list.id)
                                data-site=(p.list.site) data-status=(status_name(p.list.status)) {
                                td { a data-test="pick-list-link" href=(detail_href(&p.list.id)) { (p.list.id) } }
                                td { (p.list.site) }
                                td { span class=(format!("badge {}", status_name(p.list.status))) { (status_name(p.list.status)) } }
                                td data-field="assigned" { (assigned(p)) }
                                td.num { (p.lines.len()) }
                                td.num data-field="requested" { (p.requested()) }
                                td.num data-field="picked" { (p.picked()) }
                                td.num data-field="shorts" { (p.shorts()) }
                            }
                        }
                    }
                }
            }
        }
        (layout::csv_link(&csv_href))
    };
    Ok(layout::page(&session, Nav::PickLists, "Pick lists", content).into_response())
}

const LINES_CSV: &[&str] = &[
    "line",
    "location",
    "gtin",
    "lot",
    "requested",
    "picked",
    "short",
    "state",
    "devices",
];

/// `GET /pick-lists/{id}[?format=csv]`.
pub(super) async fn detail(
    session: Session,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    mut q: Fields,
) -> PageResult {
    let format = q.format()?;
    q.finish()?;
    let id = path_doc_id(id)?;
    let store = state.store.clone();
    let lookup = id.clone();
    let p = blocking(move || Ok(store.pick_list_progress(&lookup)?))
        .await?
        .ok_or_else(|| PageError::NotFound(format!("there is no pick list {id:?}")))?;
    if format == Format::Csv {
        let name = format!("pick-list-{}.csv", p.list.id);
        return Ok(csv::download(&name, LINES_CSV, move |out| {
            for l in &p.lines {
                let devices = l.devices.join(" ");
                out.row(&[
                    Cell::Int(i64::from(l.line.line)),
                    Cell::Text(&l.line.location),
                    Cell::Text(&l.line.gtin),
                    l.line.lot.as_deref().into(),
                    Cell::Int(to_i64(l.line.qty)),
                    Cell::Int(to_i64(l.picked)),
                    Cell::Text(if l.shorted { "yes" } else { "no" }),
                    Cell::Text(l.fill.label()),
                    Cell::Text(&devices),
                ])?;
            }
            Ok(())
        }));
    }
    let title = format!("Pick list {}", p.list.id);
    Ok(layout::page(&session, Nav::PickLists, &title, detail_markup(&p)).into_response())
}

fn detail_markup(p: &PickProgress) -> Markup {
    let site = &p.list.site;
    html! {
        dl #pick-list .master {
            dt { "Site" } dd #p-site { (site) }
            dt { "Status" } dd #p-status data-status=(status_name(p.list.status)) { (status_name(p.list.status)) }
            dt { "Device" } dd #p-device { (p.list.device.as_deref().unwrap_or("–")) }
            dt { "Zone" } dd #p-zone { (p.list.zone.as_deref().unwrap_or("–")) }
        }
        p #p-summary {
            (p.picked()) " of " (p.requested()) " units picked; "
            (p.lines.iter().filter(|l| l.picked >= l.line.qty).count()) " of " (p.lines.len()) " lines complete; "
            (p.shorts()) " short."
        }
        div.table-wrap {
            table #pick-lines-table {
                thead {
                    tr {
                        th scope="col" { "Line" } th scope="col" { "Location" } th scope="col" { "Item" }
                        th scope="col" { "Lot" } th scope="col" { "Requested" } th scope="col" { "Picked" }
                        th scope="col" { "Short" } th scope="col" { "State" } th scope="col" { "Picked by" }
                        th scope="col" { "Last" }
                    }
                }
                tbody {
                    @for l in &p.lines {
                        tr data-test="pick-line-row" data-line=(l.line.line) data-fill=(l.fill.label()) {
                            td.num { (l.line.line) }
                            td data-field="location" {
                                a data-test="location-link" href=(layout::location_href(site, &l.line.location)) { (l.line.location) }
                            }
                            td data-field="item" {
                                a data-test="item-link" href=(layout::item_href(&l.line.gtin)) { (l.line.gtin) }
                            }
                            td data-field="lot" { (l.line.lot.as_deref().unwrap_or("any")) }
                            td.num data-field="requested" { (l.line.qty) }
                            td.num data-field="picked" { (l.picked) }
                            td data-field="short" { @if l.shorted { "short (DH:SHORT)" } @else { "–" } }
                            td data-field="fill" { (fill_marker(l.fill)) }
                            td data-field="devices" { (l.devices.join(", ")) }
                            td { @if let Some(at) = l.last_at { (human_time(at)) } }
                        }
                    }
                }
            }
        }
        (layout::csv_link(&layout::href(&detail_href(&p.list.id), &[("format", "csv")])))
        @if !p.other.is_empty() {
            h2 { "Movements naming this list that match no line" }
            div.table-wrap {
                table #p-other {
                    thead {
                        tr {
                            th scope="col" { "Device" } th scope="col" { "Seq" } th scope="col" { "Kind" }
                            th scope="col" { "Item" } th scope="col" { "Lot" } th scope="col" { "From" }
                            th scope="col" { "To" } th scope="col" { "Qty" }
                        }
                    }
                    tbody {
                        @for s in &p.other {
                            @let m = &s.movement;
                            tr data-test="other-row" data-device=(m.device_id) data-seq=(m.seq) {
                                td { (m.device_id) } td.num { (m.seq) } td { (m.kind.as_str()) }
                                td { a data-test="item-link" href=(layout::item_href(&m.gtin)) { (m.gtin) } }
                                td { (m.lot.as_deref().unwrap_or("")) }
                                td { (m.from_location.as_deref().unwrap_or("")) }
                                td { (m.to_location.as_deref().unwrap_or("")) }
                                td.num { (m.qty) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockhand_protocol::sync::{DocStatus, PickList};

    #[test]
    fn assigned_table() {
        // (device, zone, shown): a device assignment wins over a zone.
        let cases = [
            (Some("hh-01"), Some("Z1"), "device hh-01"),
            (Some("hh-01"), None, "device hh-01"),
            (None, Some("Z1"), "zone Z1"),
            (None, None, "anyone"),
        ];
        for (device, zone, want) in cases {
            let list = PickList {
                id: "PL-1".into(),
                site: "WH1".into(),
                device: device.map(Into::into),
                zone: zone.map(Into::into),
                lines: vec![],
                status: DocStatus::Open,
            };
            assert_eq!(
                assigned(&PickProgress::new(list, &[])),
                want,
                "{device:?} {zone:?}"
            );
        }
    }
}
