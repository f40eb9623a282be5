//! Charts as inline SVG, drawn on the server: no chart library, no script, nothing for the Content Security
//! Policy to allow (SVG presentation attributes are not styles).
//!
//! Every chart is a `figure` holding an `svg` with `role="img"`, a `title` and a `desc` that state what it shows
//! and its largest value in words, and one `title` per bar (shown as a tooltip, read by screen readers) with the
//! exact figure. The numbers behind a chart are also on the page as a table and as CSV (the page decides where),
//! so nobody has to read values off bars.
//!
//! Two shapes: [`columns`] (vertical bars along a time axis, e.g. movements per hour) and [`bars`] (horizontal
//! bars with a label each, e.g. backlog per device, whose ids are too long for a column's foot).
//!
//! `GET /overview[?format=csv]` is the activity page: movements per hour of device time for each site over the
//! last [`OVERVIEW_HOURS`] hours (the current hour included), from
//! [`Store::movements_per_hour`](crate::store::Store::movements_per_hour), whose work is bounded by the movements
//! received in that window (at most [`OVERVIEW_MAX_SCAN`]), never the history. The backlog chart is on the
//! devices page.
//!
//! # Selectors
//!
//! ```text
//! figure#<id> .chart        svg[role=img] with title#<id>-title and desc#<id>-desc
//! g[data-test=bar]          one per bar, with data-label and data-value; its rect's title is the tooltip
//! overview                  #overview-window, #partial (only when the walk was cut short), one
//!                           section[data-test=site-activity] per site (data-site, data-total) holding
//!                           figure#movements-<site>; #hourly-table (rows tr[data-test=hour-row] with data-site
//!                           data-hour data-count, non-zero hours); #csv-link (every hour of every site)
//! ```

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::IntoResponse;
use maud::{html, Markup};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::csv::{self, Cell};
use super::devices::human_time;
use super::layout::{self, Nav};
use super::{blocking, Fields, Format, PageResult, Session};
use crate::state::AppState;
use crate::store::{hour_of, HourlyCounts};

/// Hours the overview charts.
pub const OVERVIEW_HOURS: i64 = 24;
/// The most movements the overview walks through ([`crate::store::Store::movements_per_hour`]); past it, the
/// charts show the newest ones and say so.
pub const OVERVIEW_MAX_SCAN: usize = 500_000;

/// One bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// What the bar is (an hour, a device id); drawn as its label where there is room.
    pub label: String,
    /// Its value.
    pub value: u64,
    /// The tooltip, e.g. "WH1 14:00–15:00: 12 movements".
    pub tooltip: String,
}

/// The fill of bars and the colour of text: blue and dark grey, legible on the dashboard's white.
const BAR_FILL: &str = "#2b6cb0";
const TEXT_FILL: &str = "#333";
const AXIS_STROKE: &str = "#999";

/// The smallest "round" number (1, 2 or 5 times a power of ten) at or above `max`, so the scale reads well; at
/// least 1, so an all-zero chart still has a scale.
pub fn nice_ceiling(max: u64) -> u64 {
    let mut step: u64 = 1;
    loop {
        for m in [1, 2, 5] {
            let candidate = step.saturating_mul(m);
            if candidate >= max {
                return candidate;
            }
        }
        if step > u64::MAX / 10 {
            return u64::MAX;
        }
        step *= 10;
    }
}

/// `value / top` of `length`, to one decimal (SVG coordinates).
fn scaled(value: u64, top: u64, length: f64) -> f64 {
    if top == 0 {
        return 0.0;
    }
    let ratio = value.min(top) as f64 / top as f64;
    (ratio * length * 10.0).round() / 10.0
}

/// A description for screen readers: how many bars, the largest and the total.
fn summary(what: &str, bars: &[Bar]) -> String {
    let total: u64 = bars.iter().map(|b| b.value).sum();
    match bars.iter().max_by_key(|b| b.value) {
        Some(max) if max.value > 0 => format!(
            "{} {what}; largest: {} ({}); total {total}.",
            bars.len(),
            max.label,
            max.value
        ),
        _ => format!("{} {what}, all zero.", bars.len()),
    }
}

/// Vertical bars in order (a time axis): every `label_every`-th bar is labelled under the axis.
pub fn columns(id: &str, title: &str, what: &str, bars: &[Bar], label_every: usize) -> Markup {
    const W: f64 = 600.0;
    const H: f64 = 200.0;
    const LEFT: f64 = 40.0;
    const BOTTOM: f64 = 20.0;
    const TOP: f64 = 10.0;
    let top = nice_ceiling(bars.iter().map(|b| b.value).max().unwrap_or(0));
    let plot_h = H - BOTTOM - TOP;
    let slot = if bars.is_empty() {
        W - LEFT
    } else {
        (W - LEFT) / bars.len() as f64
    };
    let width = (slot * 0.8 * 10.0).round() / 10.0;
    let label_every = label_every.max(1);
    html! {
        figure.chart id=(id) {
            svg role="img" viewBox=(format!("0 0 {W} {H}")) width="100%" preserveAspectRatio="xMidYMid meet"
                aria-labelledby=(format!("{id}-title {id}-desc")) {
                title id=(format!("{id}-title")) { (title) }
                desc id=(format!("{id}-desc")) { (summary(what, bars)) }
                // Closed explicitly: maud writes `;` elements HTML-style (`<line ...>`), and inside SVG an
                // unclosed element would swallow everything after it.
                line x1=(LEFT) y1=(H - BOTTOM) x2=(W) y2=(H - BOTTOM) stroke=(AXIS_STROKE) {}
                line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(H - BOTTOM) stroke=(AXIS_STROKE) {}
                text x=(LEFT - 4.0) y=(TOP + 4.0) text-anchor="end" font-size="10" fill=(TEXT_FILL) { (top) }
                text x=(LEFT - 4.0) y=(H - BOTTOM) text-anchor="end" font-size="10" fill=(TEXT_FILL) { "0" }
                @for (i, bar) in bars.iter().enumerate() {
                    @let x = LEFT + slot * i as f64 + (slot - width) / 2.0;
                    @let h = scaled(bar.value, top, plot_h);
                    g data-test="bar" data-label=(bar.label) data-value=(bar.value) {
                        rect x=(format!("{x:.1}")) y=(format!("{:.1}", H - BOTTOM - h)) width=(width)
                            height=(h) fill=(BAR_FILL) {
                            title { (bar.tooltip) }
                        }
                        @if i % label_every == 0 {
                            text x=(format!("{:.1}", x + width / 2.0)) y=(H - 6.0) text-anchor="middle"
                                font-size="10" fill=(TEXT_FILL) { (bar.label) }
                        }
                    }
                }
            }
        }
    }
}

/// Horizontal bars, one labelled row each (e.g. devices), scaled to the largest.
pub fn bars(id: &str, title: &str, what: &str, bars: &[Bar]) -> Markup {
    const W: f64 = 600.0;
    const ROW: f64 = 22.0;
    const LABEL: f64 = 150.0;
    const VALUE: f64 = 60.0;
    let h = ROW * bars.len().max(1) as f64 + 4.0;
    let top = nice_ceiling(bars.iter().map(|b| b.value).max().unwrap_or(0));
    let plot_w = W - LABEL - VALUE;
    html! {
        figure.chart id=(id) {
            svg role="img" viewBox=(format!("0 0 {W} {h}")) width="100%" preserveAspectRatio="xMidYMid meet"
                aria-labelledby=(format!("{id}-title {id}-desc")) {
                title id=(format!("{id}-title")) { (title) }
                desc id=(format!("{id}-desc")) { (summary(what, bars)) }
                @for (i, bar) in bars.iter().enumerate() {
                    @let y = ROW * i as f64 + 2.0;
                    @let w = scaled(bar.value, top, plot_w);
                    g data-test="bar" data-label=(bar.label) data-value=(bar.value) {
                        text x=(LABEL - 6.0) y=(y + 15.0) text-anchor="end" font-size="12" fill=(TEXT_FILL) {
                            (bar.label)
                        }
                        rect x=(LABEL) y=(y + 3.0) width=(w) height=(ROW - 6.0) fill=(BAR_FILL) {
                            title { (bar.tooltip) }
                        }
                        text x=(LABEL + w + 4.0) y=(y + 15.0) font-size="12" fill=(TEXT_FILL) { (bar.value) }
                    }
                }
            }
        }
    }
}

/// Hour-by-hour movements of each site: the sites the store knows plus any with movements, each with every hour
/// of the window (zeros included), oldest first.
pub(crate) fn per_site(
    counts: &HourlyCounts,
    sites: &[String],
    first: OffsetDateTime,
    hours: i64,
) -> BTreeMap<String, Vec<(OffsetDateTime, u64)>> {
    let empty: Vec<(OffsetDateTime, u64)> = (0..hours)
        .map(|i| (first + Duration::hours(i), 0))
        .collect();
    let mut out: BTreeMap<String, Vec<(OffsetDateTime, u64)>> =
        sites.iter().map(|s| (s.clone(), empty.clone())).collect();
    for h in &counts.hours {
        let slots = out.entry(h.site.clone()).or_insert_with(|| empty.clone());
        let i = (h.hour - first).whole_hours();
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| slots.get_mut(i)) {
            slot.1 += h.count;
        }
    }
    out
}

fn hour_label(hour: OffsetDateTime) -> String {
    format!("{:02}", hour.hour())
}

/// One column per hour of `site`.
fn hour_bars(site: &str, hours: &[(OffsetDateTime, u64)]) -> Vec<Bar> {
    hours
        .iter()
        .map(|(hour, n)| Bar {
            label: hour_label(*hour),
            value: *n,
            tooltip: format!(
                "{site} {}:00–{}:00 UTC: {n} movements",
                hour_label(*hour),
                hour_label(*hour + Duration::hours(1))
            ),
        })
        .collect()
}

const OVERVIEW_CSV: &[&str] = &["site", "hour_utc", "movements"];

/// `GET /overview[?format=csv]`.
pub(super) async fn overview(
    session: Session,
    State(state): State<AppState>,
    mut q: Fields,
) -> PageResult {
    let format = q.format()?;
    q.finish()?;
    let now = OffsetDateTime::now_utc();
    let first = hour_of(now) - Duration::hours(OVERVIEW_HOURS - 1);
    let until = hour_of(now) + Duration::hours(1);
    let store = state.store.clone();
    let (counts, known) = blocking(move || {
        let counts = store.movements_per_hour(first, until, OVERVIEW_MAX_SCAN)?;
        let known: Vec<String> = store.sites()?.into_iter().map(|s| s.code).collect();
        Ok((counts, known))
    })
    .await?;
    let sites = per_site(&counts, &known, first, OVERVIEW_HOURS);
    if format == Format::Csv {
        return Ok(csv::download(
            "movements-per-hour.csv",
            OVERVIEW_CSV,
            move |out| {
                for (site, hours) in &sites {
                    for (hour, n) in hours {
                        let hour = hour.format(&Rfc3339).unwrap_or_default();
                        out.row(&[
                            Cell::Text(site),
                            Cell::Text(&hour),
                            Cell::Int(i64::try_from(*n).unwrap_or(i64::MAX)),
                        ])?;
                    }
                }
                Ok(())
            },
        ));
    }
    let window = format!(
        "the {OVERVIEW_HOURS} hours since {} (device time; the last one is the current hour)",
        human_time(first)
    );
    let content = html! {
        p #overview-window { "Movements per hour, " (window) ". " a href="/devices" { "Devices and their backlog" } }
        @if !counts.complete {
            p #partial .notice {
                "Busy day: these are the newest " (counts.scanned) " movements only; older hours may be missing some."
            }
        }
        @if sites.is_empty() {
            p #empty { "No site and no movement yet." }
        }
        @for (site, hours) in &sites {
            @let total: u64 = hours.iter().map(|h| h.1).sum();
            @let bars = hour_bars(site, hours);
            section data-test="site-activity" data-site=(site) data-total=(total) {
                h2 { (site) ": " (total) " movements" }
                (columns(&format!("movements-{site}"), &format!("Movements per hour at {site}"), "hours", &bars, 3))
            }
        }
        details #hourly-details {
            summary { "The numbers" }
            div.table-wrap {
                table #hourly-table {
                    thead { tr { th scope="col" { "Site" } th scope="col" { "Hour (UTC)" } th scope="col" { "Movements" } } }
                    tbody {
                        @for (site, hours) in &sites {
                            @for (hour, n) in hours.iter().filter(|h| h.1 > 0) {
                                tr data-test="hour-row" data-site=(site) data-hour=(hour.format(&Rfc3339).unwrap_or_default())
                                    data-count=(n) {
                                    td { (site) }
                                    td { (hour_label(*hour)) ":00" }
                                    td.num { (n) }
                                }
                            }
                        }
                    }
                }
            }
        }
        (layout::csv_link("/overview?format=csv"))
    };
    Ok(layout::page(&session, Nav::Overview, "Overview", content).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, value: u64) -> Bar {
        Bar {
            label: label.into(),
            value,
            tooltip: format!("{label}: {value}"),
        }
    }

    #[test]
    fn nice_ceiling_table() {
        let cases: &[(u64, u64)] = &[
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 5),
            (6, 10),
            (11, 20),
            (99, 100),
            (101, 200),
            (4_999, 5_000),
            (5_001, 10_000),
            (u64::MAX, u64::MAX),
        ];
        for (max, want) in cases {
            assert_eq!(nice_ceiling(*max), *want, "{max}");
        }
    }

    #[test]
    fn scaled_table() {
        // (value, top, length, want)
        let cases: &[(u64, u64, f64, f64)] = &[
            (0, 10, 100.0, 0.0),
            (5, 10, 100.0, 50.0),
            (10, 10, 100.0, 100.0),
            (20, 10, 100.0, 100.0),
            (1, 3, 100.0, 33.3),
            (1, 0, 100.0, 0.0),
        ];
        for (value, top, length, want) in cases {
            assert_eq!(scaled(*value, *top, *length), *want, "{value}/{top}");
        }
    }

    #[test]
    fn per_site_fills_every_hour() {
        use crate::store::HourlyMovements;
        let first = time::macros::datetime!(2026-11-26 09:00 UTC);
        let h = |site: &str, hours: i64, count| HourlyMovements {
            site: site.into(),
            hour: first + Duration::hours(hours),
            count,
        };
        let counts = HourlyCounts {
            hours: vec![
                h("WH1", 0, 4),
                h("WH1", 2, 1),
                h("WH9", 3, 7),
                h("WH1", 9, 5),
            ],
            scanned: 17,
            complete: true,
        };
        let sites = per_site(&counts, &["WH1".into(), "WH2".into()], first, 4);
        let got: Vec<(&str, Vec<u64>)> = sites
            .iter()
            .map(|(s, hours)| (s.as_str(), hours.iter().map(|h| h.1).collect()))
            .collect();
        // WH2 has no movement but is a site; WH9 has movements but is no site; hour 9 is outside the window.
        assert_eq!(
            got,
            vec![
                ("WH1", vec![4, 0, 1, 0]),
                ("WH2", vec![0, 0, 0, 0]),
                ("WH9", vec![0, 0, 0, 7])
            ]
        );
        assert_eq!(sites["WH1"][3].0, first + Duration::hours(3));
    }

    #[test]
    fn charts_are_accessible_and_escaped() {
        let evil = "<script>alert(1)</script>";
        let data = [bar("08", 3), bar(evil, 12), bar("10", 0)];
        let charts = [
            columns("per-hour", "Movements per hour", "hours", &data, 2).into_string(),
            bars("backlog", "Backlog per device", "devices", &data).into_string(),
        ];
        for svg in &charts {
            assert!(!svg.contains(evil), "{svg}");
            assert!(svg.contains("&lt;script&gt;"), "{svg}");
            assert!(svg.contains(r#"role="img""#));
            assert_eq!(svg.matches(r#"data-test="bar""#).count(), 3);
            assert!(
                svg.contains("largest: &lt;script&gt;alert(1)&lt;/script&gt; (12); total 15."),
                "{svg}"
            );
            assert!(svg.contains(r#"data-value="12""#));
        }
        assert!(charts[0].contains(r#"aria-labelledby="per-hour-title per-hour-desc""#));
        // Inside SVG every element must be closed, or the HTML parser nests the rest of the chart in it.
        for svg in &charts {
            for tag in ["line", "rect", "text", "title", "desc", "g"] {
                let opened = svg.matches(&format!("<{tag} ")).count()
                    + svg.matches(&format!("<{tag}>")).count();
                assert_eq!(
                    opened,
                    svg.matches(&format!("</{tag}>")).count(),
                    "<{tag}> in {svg}"
                );
            }
        }
        // Every second column is labelled: "08" and the third; the evil one has no foot label, only a tooltip.
        assert_eq!(charts[0].matches(r#"text-anchor="middle""#).count(), 2);
        let empty = columns("e", "Nothing", "hours", &[], 1).into_string();
        assert!(empty.contains("0 hours, all zero."), "{empty}");
    }
}
