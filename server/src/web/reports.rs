//! Reports: `GET /reports` shows, for a site and a period of whole UTC days, the office's reports (figures defined
//! in [`crate::reports`]) and the replenishment notice: the items of the site below their reorder point.
//!
//! Parameters: `site` (default: the first registered site), `from` and `to` (`YYYY-MM-DD`, both included; default
//! the last 7 days up to today), `days` (expiry horizon, default 30). Inventory and expiry are as of the end of
//! the period (or now, if earlier). The CSV of every report is the API's (`GET /v1/reports/...?format=csv`).
//!
//! # Selectors
//!
//! ```text
//! #report-form with #filter-site #filter-from #filter-to #filter-days #filter-apply; #no-site when no site
//! #replenishment-notice (only when an item is below its point) with li[data-test=suggestion] data-gtin
//!   data-available data-suggested
//! #productivity-table  tr[data-test=operator-row] data-who data-movements data-scans data-picked (period totals)
//! #gate-passes         data-passes (period total)
//! #dock-to-stock-table tr[data-test=dock-day] data-day data-pallets data-units, td[data-field=...]
//! #turnover-table      tr[data-test=turnover-row] data-gtin data-out
//! #inventory-table     tr[data-test=inventory-item] data-gtin data-qty data-value; #inventory-total data-value
//! #expiry-table        tr[data-test=expiry-row] data-location data-gtin data-qty
//! #accuracy-table      tr[data-test=accuracy-row] data-who data-picks data-shorts data-mistakes data-refused
//! ```

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::IntoResponse;
use maud::{html, Markup};
use time::{Date, Duration, OffsetDateTime, Time};

use super::layout::{self, Nav};
use super::{blocking, Fields, PageError, PageResult, Session};
use crate::reports::replenishment::{self, Suggestion};
use crate::reports::{self, DockToStock, Expiry, Inventory, Period, Productivity, TurnoverRow};
use crate::state::AppState;
use crate::store::StockFilter;

/// Everything one page shows.
struct Reports {
    productivity: Productivity,
    dock: DockToStock,
    turnover: Vec<TurnoverRow>,
    inventory: Inventory,
    expiry: Expiry,
    suggestions: Vec<Suggestion>,
    accuracy: crate::routes::accuracy::PickAccuracy,
}

fn date(q: &mut Fields, name: &str) -> Result<Option<Date>, PageError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    q.text(name)
        .map(|v| {
            Date::parse(&v, format).map_err(|_| {
                PageError::BadRequest(format!("{name}: {v:?} is not a date YYYY-MM-DD"))
            })
        })
        .transpose()
}

fn midnight(d: Date) -> OffsetDateTime {
    d.with_time(Time::MIDNIGHT).assume_utc()
}

fn seconds(s: Option<i64>) -> String {
    match s {
        None => "–".into(),
        Some(s) if s < 3600 => format!("{} min", s / 60),
        Some(s) => format!("{:.1} h", s as f64 / 3600.0),
    }
}

fn ratio(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{x:.2}"))
}

/// `GET /reports`.
pub(super) async fn page(
    session: Session,
    State(state): State<AppState>,
    mut q: Fields,
) -> PageResult {
    let site = q.name("site")?;
    let today = super::today();
    let to = date(&mut q, "to")?.unwrap_or(today);
    let from = date(&mut q, "from")?.unwrap_or(to - Duration::days(6));
    let days = q.u64("days")?.unwrap_or(30);
    q.finish()?;
    if days > 3650 {
        return Err(PageError::BadRequest("days: at most 3650".into()));
    }
    let period = Period::new(midnight(from), midnight(to) + Duration::days(1))
        .map_err(|e| PageError::BadRequest(format!("to: {e}")))?;
    let store = state.store.clone();
    let wanted = site.clone();
    let (site, reports) = blocking(move || {
        let site = match wanted {
            Some(s) => Some(s),
            None => store.sites()?.into_iter().next().map(|s| s.code),
        };
        let Some(site) = site else {
            return Ok((None, None));
        };
        let s = store.as_ref();
        let as_of = period.until().min(OffsetDateTime::now_utc());
        let filter = StockFilter {
            site: Some(site.clone()),
            ..StockFilter::default()
        };
        let reports = Reports {
            productivity: reports::load_productivity(s, &site, period)?,
            dock: reports::load_dock_to_stock(s, &site, period)?,
            turnover: reports::load_turnover(s, &site, period)?,
            inventory: reports::load_inventory(s, &filter, as_of)?,
            expiry: reports::load_expiry(s, &site, as_of, u32::try_from(days).unwrap_or(u32::MAX))?,
            suggestions: replenishment::suggestions(s, Some(&site))?,
            accuracy: crate::routes::accuracy::compute(s, &site, period.since(), period.until())?,
        };
        Ok((Some(site), Some(reports)))
    })
    .await?;
    let content = html! {
        form.filters #report-form method="get" action="/reports" {
            label for="filter-site" { "Site"
                input #filter-site name="site" value=(site.as_deref().unwrap_or("")) maxlength="64" size="8";
            }
            label for="filter-from" { "From" input #filter-from type="date" name="from" value=(from.to_string()); }
            label for="filter-to" { "To (included)" input #filter-to type="date" name="to" value=(to.to_string()); }
            label for="filter-days" { "Expiring within (days)"
                input #filter-days type="number" min="0" max="3650" name="days" value=(days);
            }
            button #filter-apply type="submit" { "Show" }
        }
        @match (&site, &reports) {
            (Some(site), Some(r)) => (sections(site, r)),
            _ => p #no-site { "No site is registered yet." },
        }
    };
    Ok(layout::page(&session, Nav::Reports, "Reports", content).into_response())
}

fn sections(site: &str, r: &Reports) -> Markup {
    // Period totals per operator (the API has them per hour).
    let mut ops: BTreeMap<Option<&str>, (u64, u64, u64)> = BTreeMap::new();
    for w in &r.productivity.by_operator {
        let e = ops.entry(w.who.as_deref()).or_default();
        *e = (e.0 + w.movements, e.1 + w.scans, e.2 + w.picked_units);
    }
    let passes: u64 = r.productivity.gate_passes.iter().map(|g| g.passes).sum();
    let api = |name: &str| format!("/v1/reports/{name}?site={}", layout::path_segment(site));
    html! {
        @if !r.suggestions.is_empty() {
            section #replenishment-notice .notice role="status" {
                h2 { "Below reorder point" }
                ul {
                    @for s in &r.suggestions {
                        li data-test="suggestion" data-gtin=(s.gtin) data-available=(s.available) data-suggested=(s.suggested_qty) {
                            a href=(layout::item_href(&s.gtin)) { (s.gtin) } ": " (s.available) " available, point "
                            (s.reorder_point) "; order " (s.suggested_qty)
                        }
                    }
                }
            }
        }
        h2 { "Productivity" }
        table #productivity-table {
            thead { tr { th { "Operator" } th { "Movements" } th { "Scans" } th { "Picked units" } } }
            tbody {
                @for (who, (m, s, p)) in &ops {
                    tr data-test="operator-row" data-who=(who.unwrap_or("")) data-movements=(m) data-scans=(s) data-picked=(p) {
                        td { (who.unwrap_or("(none)")) } td { (m) } td { (s) } td { (p) }
                    }
                }
            }
        }
        p #gate-passes data-passes=(passes) { "Gate passes: " (passes) }
        h2 { "Pick accuracy" }
        table #accuracy-table {
            thead { tr {
                th { "Operator" } th { "Picks" } th { "Picked units" } th { "Short lines" }
                th { "Mistakes caught" } th { "Refused scans" }
            } }
            tbody {
                @for o in &r.accuracy.operators {
                    @let refused: u64 = o.refused.values().sum();
                    @let who = o.operator.as_deref();
                    tr data-test="accuracy-row" data-who=(who.unwrap_or("")) data-picks=(o.picks)
                        data-shorts=(o.short_picks) data-mistakes=(o.mistakes) data-refused=(refused) {
                        td { (who.unwrap_or("(none)")) } td { (o.picks) } td { (o.picked_units) }
                        td { (o.short_picks) } td { (o.mistakes) }
                        td {
                            (refused)
                            @for (reason, n) in o.refused.iter().filter(|(_, n)| **n > 0) {
                                " · " (reason) " " (n)
                            }
                        }
                    }
                }
            }
        }
        h2 { "Dock to stock" }
        table #dock-to-stock-table {
            thead { tr {
                th { "Day" } th { "Pallets" } th { "Median" } th { "p90" } th { "Units" } th { "Median" } th { "p90" }
                th { "Pending pallets" } th { "Pending units" }
            } }
            tbody {
                @for d in r.dock.days.iter().chain(std::iter::once(&r.dock.total)) {
                    tr data-test="dock-day" data-day=(d.day) data-pallets=(d.pallets) data-units=(d.units) {
                        td { (d.day) } td { (d.pallets) }
                        td data-field="pallet-median" { (seconds(d.pallet_median_seconds)) }
                        td data-field="pallet-p90" { (seconds(d.pallet_p90_seconds)) }
                        td { (d.units) }
                        td data-field="unit-median" { (seconds(d.unit_median_seconds)) }
                        td data-field="unit-p90" { (seconds(d.unit_p90_seconds)) }
                        td { (d.pending_pallets) } td { (d.pending_units) }
                    }
                }
            }
        }
        h2 { "Turnover" }
        table #turnover-table {
            thead { tr {
                th { "Item" } th { "Opening" } th { "Closing" } th { "Out" } th { "Average stock" } th { "Turnover" }
                th { "Days of supply" }
            } }
            tbody {
                @for t in &r.turnover {
                    tr data-test="turnover-row" data-gtin=(t.gtin) data-out=(t.out_units) {
                        td { a href=(layout::item_href(&t.gtin)) { (t.gtin) } }
                        td { (t.opening) } td { (t.closing) } td { (t.out_units) }
                        td { (format!("{:.2}", t.average_stock)) } td { (ratio(t.turnover)) } td { (ratio(t.days_of_supply)) }
                    }
                }
            }
        }
        h2 { "Inventory" }
        p { "As of " (r.inventory.as_of.date()) ". Values in minor units (cents) of the items' unit cost." }
        table #inventory-table {
            thead { tr { th { "Item" } th { "Units" } th { "Value" } } }
            tbody {
                @for i in &r.inventory.items {
                    tr data-test="inventory-item" data-gtin=(i.gtin) data-qty=(i.qty) data-value=(i.value.map_or(String::new(), |v| v.to_string())) {
                        td { a href=(layout::item_href(&i.gtin)) { (i.gtin) } } td { (i.qty) }
                        td { (i.value.map_or("–".to_string(), |v| v.to_string())) }
                    }
                }
            }
        }
        p #inventory-total data-value=(r.inventory.total_value) { "Total value: " (r.inventory.total_value) }
        h2 { "Expiring within " (r.expiry.days) " days of " (r.expiry.date) }
        table #expiry-table {
            thead { tr { th { "Expiry" } th { "Location" } th { "Item" } th { "Lot" } th { "Units" } th { "Days left" } } }
            tbody {
                @for e in &r.expiry.rows {
                    tr data-test="expiry-row" data-location=(e.location) data-gtin=(e.gtin) data-qty=(e.qty) {
                        td { (e.expiry) } td { (e.location) } td { (e.gtin) } td { (e.lot.as_deref().unwrap_or("")) }
                        td { (e.qty) } td { (e.days_left.map_or("–".to_string(), |d| d.to_string())) }
                    }
                }
            }
        }
        p.muted {
            "CSV for each report: the API's "
            code { (api("productivity")) "&format=csv" } " (and dock-to-stock, turnover, inventory, expiry), with the admin token."
        }
    }
}
