//! The office's reports (issue 9): figures folded from a site's movement history over a period.
//!
//! Every report is by device time `at` (when the goods moved), never by arrival at the server: a device that was
//! offline for a day and syncs late lands its movements in the hours and days they happened, and a report read
//! again after the late push shows them there.
//!
//! Two layers, so the arithmetic is testable without a store:
//! - pure folds over movements and stock rows ([`productivity`], [`dock_to_stock`], [`turnover`], [`expiry`],
//!   [`inventory`]), each documenting exactly what it counts;
//! - loaders ([`load_productivity`], ...) that read what a fold needs through the [`Store`] trait (the period's
//!   movements, page by page, and stock as of a time), so both backends answer the same figures.
//!
//! # Definitions
//!
//! - hour / day: the UTC hour or date holding `at`.
//! - scan: a movement whose source is a barcode ([`MovementSource::Barcode`]).
//! - gate pass: a movement whose source is an RFID read ([`MovementSource::Epc`]): the gate smooths reads into one
//!   movement per pallet pass, so one such movement is one pass.
//! - picked units: the sum of `qty` of `pick` movements.
//! - dock-to-stock: see [`dock_to_stock`]; percentiles are nearest-rank (see [`percentile`]).
//! - turnover and days of supply: see [`turnover`].
//!
//! # Cost
//!
//! The loaders fold the period's movements in memory, read page by page through [`Store::movements`]: fine for
//! the sled backend (single node) and for PostgreSQL over weeks. A year of a busy site on PostgreSQL (10 million
//! movements) misses the 2 s by far (76 to 120 s for the period reports, 3.5 to 6 s for inventory and expiry;
//! BENCHMARKS.md, "Reports"): meeting it needs SQL aggregates or daily rollups per report, which are not built yet.

pub mod replenishment;

use std::collections::{BTreeMap, HashMap, VecDeque};

use dockhand_protocol::sync::{Movement, MovementKind, MovementSource};
use serde::Serialize;
use time::{Date, Duration, OffsetDateTime, UtcOffset};

use crate::store::{hour_of, MovementFilter, StockFilter, StockRow, Store, StoreError};

/// The longest period a report covers.
pub const MAX_PERIOD: Duration = Duration::days(366);

/// Why report parameters are refused (answered as 400 naming the parameter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeriodError {
    /// `until` is not after `since`.
    #[error("until must be after since")]
    Empty,
    /// The period is longer than [`MAX_PERIOD`].
    #[error("the period may cover at most 366 days")]
    TooLong,
}

/// A half-open interval of device time, `since <= at < until`, at most [`MAX_PERIOD`] long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    since: OffsetDateTime,
    until: OffsetDateTime,
}

impl Period {
    /// Checks the interval: non-empty and at most [`MAX_PERIOD`].
    pub fn new(since: OffsetDateTime, until: OffsetDateTime) -> Result<Period, PeriodError> {
        if until <= since {
            return Err(PeriodError::Empty);
        }
        if until - since > MAX_PERIOD {
            return Err(PeriodError::TooLong);
        }
        Ok(Period { since, until })
    }

    /// The first instant in the period.
    pub fn since(&self) -> OffsetDateTime {
        self.since
    }

    /// The first instant after the period.
    pub fn until(&self) -> OffsetDateTime {
        self.until
    }

    fn contains(&self, at: OffsetDateTime) -> bool {
        self.since <= at && at < self.until
    }
}

/// The movements of `site` with `since <= at < until`, sorted by `at` (then device and seq, so the order is total).
pub fn period_movements(
    store: &dyn Store,
    site: &str,
    period: Period,
) -> Result<Vec<Movement>, StoreError> {
    const PAGE: usize = 1000;
    let filter = MovementFilter {
        site: Some(site.to_string()),
        since: Some(period.since),
        until: Some(period.until),
        ..MovementFilter::default()
    };
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.movements(&filter, after, PAGE)?;
        out.extend(page.movements.into_iter().map(|m| m.movement));
        match page.next {
            Some(next) => after = next,
            None => break,
        }
    }
    out.sort_by(|a, b| (a.at, &a.device_id, a.seq).cmp(&(b.at, &b.device_id, b.seq)));
    Ok(out)
}

fn utc_day(at: OffsetDateTime) -> Date {
    at.to_offset(UtcOffset::UTC).date()
}

// ---------------------------------------------------------------------------------------------------------------
// Productivity

/// Work of one operator (or one device) in one hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkRow {
    /// The hour's start (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub hour: OffsetDateTime,
    /// The operator or the device id; `null` for movements signed by no operator.
    pub who: Option<String>,
    /// Movements of every kind.
    pub movements: u64,
    /// Movements caused by a barcode scan.
    pub scans: u64,
    /// Units of `pick` movements.
    pub picked_units: u64,
}

/// Gate passes (RFID-sourced movements) in one hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateRow {
    /// The hour's start (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub hour: OffsetDateTime,
    /// Movements recorded from an RFID read.
    pub passes: u64,
}

/// The productivity report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Productivity {
    /// Per hour and operator, by hour then operator (no operator first).
    pub by_operator: Vec<WorkRow>,
    /// Per hour and device, by hour then device.
    pub by_device: Vec<WorkRow>,
    /// Per hour with at least one pass.
    pub gate_passes: Vec<GateRow>,
}

/// Scans, movements and picked units per operator and per device per hour, and gate passes per hour, over the
/// movements of `period` (others are skipped).
pub fn productivity<'a>(
    movements: impl IntoIterator<Item = &'a Movement>,
    period: Period,
) -> Productivity {
    #[derive(Default)]
    struct Counts {
        movements: u64,
        scans: u64,
        picked_units: u64,
    }
    let mut ops: BTreeMap<(OffsetDateTime, Option<&str>), Counts> = BTreeMap::new();
    let mut devices: BTreeMap<(OffsetDateTime, &str), Counts> = BTreeMap::new();
    let mut gate: BTreeMap<OffsetDateTime, u64> = BTreeMap::new();
    for m in movements {
        if !period.contains(m.at) {
            continue;
        }
        let hour = hour_of(m.at);
        let scan = u64::from(matches!(m.source, MovementSource::Barcode { .. }));
        let picked = if m.kind == MovementKind::Pick {
            m.qty
        } else {
            0
        };
        for row in [
            ops.entry((hour, m.operator.as_deref())).or_default(),
            devices.entry((hour, &m.device_id)).or_default(),
        ] {
            row.movements += 1;
            row.scans += scan;
            row.picked_units += picked;
        }
        if matches!(m.source, MovementSource::Epc { .. }) {
            *gate.entry(hour).or_default() += 1;
        }
    }
    let finish = |hour, who: Option<&str>, c: Counts| WorkRow {
        hour,
        who: who.map(str::to_string),
        movements: c.movements,
        scans: c.scans,
        picked_units: c.picked_units,
    };
    Productivity {
        by_operator: ops
            .into_iter()
            .map(|((hour, who), row)| finish(hour, who, row))
            .collect(),
        by_device: devices
            .into_iter()
            .map(|((hour, who), row)| finish(hour, Some(who), row))
            .collect(),
        gate_passes: gate
            .into_iter()
            .map(|(hour, passes)| GateRow { hour, passes })
            .collect(),
    }
}

/// [`productivity`] of `site` over `period`.
pub fn load_productivity(
    store: &dyn Store,
    site: &str,
    period: Period,
) -> Result<Productivity, StoreError> {
    Ok(productivity(
        &period_movements(store, site, period)?,
        period,
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// Dock-to-stock

/// Dock-to-stock times of the goods received on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockToStockDay {
    /// The UTC day of the receipt, `YYYY-MM-DD`.
    pub day: String,
    /// Pallets (SSCCs) received that day and put away within the period.
    pub pallets: u64,
    /// Median seconds from a pallet's receipt to its put-away; `null` without pallets.
    pub pallet_median_seconds: Option<i64>,
    /// 90th percentile of the same.
    pub pallet_p90_seconds: Option<i64>,
    /// Units received without an SSCC that day and put away within the period.
    pub units: u64,
    /// Median seconds from a unit's receipt to its put-away (each unit one sample); `null` without units.
    pub unit_median_seconds: Option<i64>,
    /// 90th percentile of the same.
    pub unit_p90_seconds: Option<i64>,
    /// Pallets received that day not put away within the period.
    pub pending_pallets: u64,
    /// Units received without an SSCC that day not put away within the period.
    pub pending_units: u64,
}

/// The dock-to-stock report: per day, and over the whole period (`total.day` is `"total"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockToStock {
    /// Per day of receipt with at least one receipt.
    pub days: Vec<DockToStockDay>,
    /// Every receipt of the period.
    pub total: DockToStockDay,
}

/// The nearest-rank percentile `p` (0 < p <= 100) of weighted samples: the smallest value whose cumulative weight
/// reaches `ceil(p / 100 × total weight)`. The median is `p = 50` (the lower median for an even count). `None`
/// without samples.
pub fn percentile(samples: &mut [(i64, u64)], p: u64) -> Option<i64> {
    samples.sort_unstable();
    let total: u64 = samples.iter().map(|s| s.1).sum();
    if total == 0 {
        return None;
    }
    let rank = (total * p).div_ceil(100).max(1);
    let mut seen = 0;
    for &(value, weight) in samples.iter() {
        seen += weight;
        if seen >= rank {
            return Some(value);
        }
    }
    samples.last().map(|s| s.0)
}

#[derive(Default)]
struct DaySamples {
    pallets: Vec<(i64, u64)>,
    units: Vec<(i64, u64)>,
    pending_pallets: u64,
    pending_units: u64,
}

impl DaySamples {
    fn absorb(&mut self, other: &DaySamples) {
        self.pallets.extend_from_slice(&other.pallets);
        self.units.extend_from_slice(&other.units);
        self.pending_pallets += other.pending_pallets;
        self.pending_units += other.pending_units;
    }

    fn row(mut self, day: String) -> DockToStockDay {
        DockToStockDay {
            day,
            pallets: self.pallets.len() as u64,
            pallet_median_seconds: percentile(&mut self.pallets, 50),
            pallet_p90_seconds: percentile(&mut self.pallets, 90),
            units: self.units.iter().map(|s| s.1).sum(),
            unit_median_seconds: percentile(&mut self.units, 50),
            unit_p90_seconds: percentile(&mut self.units, 90),
            pending_pallets: self.pending_pallets,
            pending_units: self.pending_units,
        }
    }
}

/// Time from receipt at the dock to put-away, over the receipts of `period`.
///
/// - A *receipt* is a `receive` movement; the dock is its `to_location`.
/// - A pallet (a receipt carrying an SSCC) is stocked by the first `putaway` of the same SSCC out of that dock
///   location at or after the receipt: one sample per SSCC, taken from its first receipt (further receipts of the
///   same SSCC are more of the same pallet).
/// - Goods received without an SSCC are paired unit by unit, first in first out, per `(dock location, gtin, lot)`:
///   a `putaway` without an SSCC out of the dock takes the oldest units received there before it. Each unit is a
///   sample, so a receipt of 10 units weighs ten times one of 1.
/// - Put-aways of the period only: goods still on the dock at `until` are pending (counted, no time). A put-away
///   of units received before the period takes units the fold never saw; it is skipped.
/// - Samples count on the UTC day of their receipt.
pub fn dock_to_stock<'a>(
    movements: impl IntoIterator<Item = &'a Movement>,
    period: Period,
) -> DockToStock {
    let mut ordered: Vec<&Movement> = movements
        .into_iter()
        .filter(|m| period.contains(m.at))
        .collect();
    ordered.sort_by(|a, b| (a.at, &a.device_id, a.seq).cmp(&(b.at, &b.device_id, b.seq)));
    // SSCC -> (dock, received at), until put away.
    let mut pallets: HashMap<&str, (&str, OffsetDateTime)> = HashMap::new();
    let mut seen_pallets: std::collections::HashSet<&str> = std::collections::HashSet::new();
    // (dock, gtin, lot) -> queue of (received at, units left).
    type Lane<'m> = (&'m str, &'m str, Option<&'m str>);
    let mut queues: HashMap<Lane<'_>, VecDeque<(OffsetDateTime, u64)>> = HashMap::new();
    let mut days: BTreeMap<Date, DaySamples> = BTreeMap::new();
    for m in ordered {
        match (m.kind, m.sscc.as_deref()) {
            (MovementKind::Receive, Some(sscc)) if seen_pallets.insert(sscc) => {
                let dock = m.to_location.as_deref().unwrap_or_default();
                pallets.insert(sscc, (dock, m.at));
            }
            (MovementKind::Receive, None) => {
                let dock = m.to_location.as_deref().unwrap_or_default();
                queues
                    .entry((dock, &m.gtin, m.lot.as_deref()))
                    .or_default()
                    .push_back((m.at, m.qty));
            }
            (MovementKind::Putaway, Some(sscc)) => {
                let from = m.from_location.as_deref().unwrap_or_default();
                let from_dock = pallets.get(sscc).is_some_and(|(dock, _)| *dock == from);
                if let Some((_, received)) = from_dock.then(|| pallets.remove(sscc)).flatten() {
                    let seconds = (m.at - received).whole_seconds();
                    days.entry(utc_day(received))
                        .or_default()
                        .pallets
                        .push((seconds, 1));
                }
            }
            (MovementKind::Putaway, None) => {
                let from = m.from_location.as_deref().unwrap_or_default();
                let Some(queue) = queues.get_mut(&(from, m.gtin.as_str(), m.lot.as_deref())) else {
                    continue;
                };
                let mut wanted = m.qty;
                while wanted > 0 {
                    let Some(front) = queue.front_mut() else {
                        break;
                    };
                    let take = front.1.min(wanted);
                    let seconds = (m.at - front.0).whole_seconds();
                    days.entry(utc_day(front.0))
                        .or_default()
                        .units
                        .push((seconds, take));
                    wanted -= take;
                    front.1 -= take;
                    if front.1 == 0 {
                        queue.pop_front();
                    }
                }
            }
            _ => {}
        }
    }
    for (_, received) in pallets.values() {
        days.entry(utc_day(*received)).or_default().pending_pallets += 1;
    }
    for queue in queues.values() {
        for (received, units) in queue {
            days.entry(utc_day(*received)).or_default().pending_units += units;
        }
    }
    let mut total = DaySamples::default();
    let days = days
        .into_iter()
        .map(|(day, samples)| {
            total.absorb(&samples);
            samples.row(day.to_string())
        })
        .collect();
    DockToStock {
        days,
        total: total.row("total".into()),
    }
}

/// [`dock_to_stock`] of `site` over `period`.
pub fn load_dock_to_stock(
    store: &dyn Store,
    site: &str,
    period: Period,
) -> Result<DockToStock, StoreError> {
    Ok(dock_to_stock(
        &period_movements(store, site, period)?,
        period,
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// Inventory levels and value

/// One stock row with its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InventoryRow {
    /// The location.
    pub location: String,
    /// The item.
    pub gtin: String,
    /// The lot.
    pub lot: Option<String>,
    /// Units on hand (negative: a discrepancy, valued as it is).
    pub qty: i64,
    /// The item's unit cost in minor units; `null` when the item has none (or is unknown).
    pub unit_cost: Option<u64>,
    /// `qty × unit_cost`; `null` without a unit cost.
    pub value: Option<i64>,
}

/// One item's total over the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InventoryItem {
    /// The item.
    pub gtin: String,
    /// Units over every location and lot.
    pub qty: i64,
    /// Their value; `null` without a unit cost.
    pub value: Option<i64>,
}

/// The inventory report: levels and value by location and item, as of a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inventory {
    /// The instant the levels are for (movements with `at <= as_of`).
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    /// Non-zero rows by location, item, lot.
    pub rows: Vec<InventoryRow>,
    /// Per item, by GTIN.
    pub items: Vec<InventoryItem>,
    /// The value of every row with a unit cost.
    pub total_value: i64,
}

/// Values `rows` with each item's unit cost (`costs`, minor units). Refuses a value outside `i64` rather than
/// clamping it.
pub fn inventory(
    rows: Vec<StockRow>,
    costs: &HashMap<String, u64>,
    as_of: OffsetDateTime,
) -> Result<Inventory, StoreError> {
    let value_of = |qty: i64, cost: Option<u64>| -> Result<Option<i64>, StoreError> {
        cost.map(|c| {
            i64::try_from(c)
                .ok()
                .and_then(|c| qty.checked_mul(c))
                .ok_or_else(|| StoreError::Overflow(format!("value of {qty} units at {c}")))
        })
        .transpose()
    };
    let mut items: BTreeMap<String, i64> = BTreeMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let cost = costs.get(&r.gtin).copied();
        *items.entry(r.gtin.clone()).or_default() += r.qty;
        out.push(InventoryRow {
            value: value_of(r.qty, cost)?,
            unit_cost: cost,
            location: r.location,
            gtin: r.gtin,
            lot: r.lot,
            qty: r.qty,
        });
    }
    let items = items
        .into_iter()
        .map(|(gtin, qty)| {
            Ok(InventoryItem {
                value: value_of(qty, costs.get(&gtin).copied())?,
                gtin,
                qty,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let total_value = out
        .iter()
        .filter_map(|r| r.value)
        .try_fold(0i64, i64::checked_add)
        .ok_or_else(|| StoreError::Overflow("total inventory value".into()))?;
    Ok(Inventory {
        as_of,
        rows: out,
        items,
        total_value,
    })
}

/// The unit costs of the items named by `rows`.
fn unit_costs(store: &dyn Store, rows: &[StockRow]) -> Result<HashMap<String, u64>, StoreError> {
    let mut costs = HashMap::new();
    let mut gtins: Vec<&str> = rows.iter().map(|r| r.gtin.as_str()).collect();
    gtins.sort_unstable();
    gtins.dedup();
    for gtin in gtins {
        if let Some(cost) = store.item(gtin)?.and_then(|i| i.unit_cost) {
            costs.insert(gtin.to_string(), cost);
        }
    }
    Ok(costs)
}

/// [`inventory`] of `site` (optionally one location or item) as of `as_of`.
pub fn load_inventory(
    store: &dyn Store,
    filter: &StockFilter,
    as_of: OffsetDateTime,
) -> Result<Inventory, StoreError> {
    let rows = store.stock_as_of(filter, as_of)?;
    let costs = unit_costs(store, &rows)?;
    inventory(rows, &costs, as_of)
}

// ---------------------------------------------------------------------------------------------------------------
// Turnover and days of supply

/// One item's turnover over the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnoverRow {
    /// The item.
    pub gtin: String,
    /// Units at the site just before `since`.
    pub opening: i64,
    /// Units at the site at the end of the period.
    pub closing: i64,
    /// Units picked or shipped in the period.
    pub out_units: u64,
    /// Time-weighted average units at the site over the period.
    pub average_stock: f64,
    /// `out_units / average_stock`; `null` when the average is not positive.
    pub turnover: Option<f64>,
    /// `average_stock / (out_units per day)`; `null` when nothing went out.
    pub days_of_supply: Option<f64>,
}

/// Stock turnover and days of supply per item over `period`.
///
/// - Site stock of an item is the sum of its rows over every location and lot; `opening` is it just before
///   `since` (from movements with `at < since`), and it changes at each movement of the period by the sum of the
///   movement's stock effects (receipts and adjustments change it, put-aways and moves do not).
/// - `out_units`: units leaving through `pick` and `ship` movements. A pick takes goods out of stock and a ship
///   takes out what is still on a location, so a unit is never counted twice.
/// - `average_stock`: the integral of site stock over the period divided by its length (each level weighted by how
///   long it held).
/// - Items with neither opening stock nor movements in the period are not listed.
pub fn turnover<'a>(
    opening: &BTreeMap<String, i64>,
    movements: impl IntoIterator<Item = &'a Movement>,
    period: Period,
) -> Vec<TurnoverRow> {
    struct Acc {
        opening: i64,
        level: i64,
        last: OffsetDateTime,
        // Unit-seconds, in i128: a year of a million units is 3e13, far inside.
        area: i128,
        out: u64,
    }
    let mut acc: BTreeMap<&str, Acc> = opening
        .iter()
        .map(|(g, &q)| {
            (
                g.as_str(),
                Acc {
                    opening: q,
                    level: q,
                    last: period.since,
                    area: 0,
                    out: 0,
                },
            )
        })
        .collect();
    let mut ordered: Vec<&Movement> = movements
        .into_iter()
        .filter(|m| period.contains(m.at))
        .collect();
    ordered.sort_by(|a, b| (a.at, &a.device_id, a.seq).cmp(&(b.at, &b.device_id, b.seq)));
    for m in ordered {
        let a = acc.entry(&m.gtin).or_insert(Acc {
            opening: 0,
            level: 0,
            last: period.since,
            area: 0,
            out: 0,
        });
        a.area += i128::from(a.level) * (m.at - a.last).whole_nanoseconds();
        a.last = m.at;
        a.level += m.effects().iter().map(|e| e.delta).sum::<i64>();
        if matches!(m.kind, MovementKind::Pick | MovementKind::Ship) {
            a.out += m.qty;
        }
    }
    let length = (period.until - period.since).whole_nanoseconds();
    let days = length as f64 / 86_400e9;
    acc.into_iter()
        .map(|(gtin, a)| {
            let area = a.area + i128::from(a.level) * (period.until - a.last).whole_nanoseconds();
            let average = area as f64 / length as f64;
            TurnoverRow {
                gtin: gtin.to_string(),
                opening: a.opening,
                closing: a.level,
                out_units: a.out,
                average_stock: average,
                turnover: (average > 0.0).then(|| a.out as f64 / average),
                days_of_supply: (a.out > 0).then(|| average / (a.out as f64 / days)),
            }
        })
        .collect()
}

/// [`turnover`] of `site` over `period`.
pub fn load_turnover(
    store: &dyn Store,
    site: &str,
    period: Period,
) -> Result<Vec<TurnoverRow>, StoreError> {
    let filter = StockFilter {
        site: Some(site.to_string()),
        ..StockFilter::default()
    };
    // Stock as of is "at <= t": the last nanosecond before the period is "at < since".
    let before = store.stock_as_of(&filter, period.since - Duration::nanoseconds(1))?;
    let mut opening: BTreeMap<String, i64> = BTreeMap::new();
    for r in before {
        *opening.entry(r.gtin).or_default() += r.qty;
    }
    Ok(turnover(
        &opening,
        &period_movements(store, site, period)?,
        period,
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// Expiry exposure

/// Goods at one location expiring within the horizon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiryRow {
    /// The location.
    pub location: String,
    /// The item.
    pub gtin: String,
    /// The lot.
    pub lot: Option<String>,
    /// The expiry date `YYYY-MM-DD`.
    pub expiry: String,
    /// Units there (positive rows only: negative stock is a discrepancy, not exposure).
    pub qty: i64,
    /// Days from the report date to the expiry; negative when already expired, `null` when the date is not a
    /// calendar date (GS1 allows day `00`, "end of month").
    pub days_left: Option<i64>,
}

/// Units per location expiring within the horizon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiryLocation {
    /// The location.
    pub location: String,
    /// Units expiring by the horizon.
    pub qty: i64,
}

/// The expiry exposure report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiry {
    /// The report date (UTC day of `as_of`).
    pub date: String,
    /// The horizon in days.
    pub days: u32,
    /// Rows by expiry, then location, item, lot.
    pub rows: Vec<ExpiryRow>,
    /// Per location, by location.
    pub locations: Vec<ExpiryLocation>,
}

/// Stock rows with positive quantity whose expiry is on or before `date + days` (already expired included). A
/// row's expiry is the first one a movement into it carried (see [`StockRow::expiry`]); rows without one are
/// not exposure.
pub fn expiry(rows: Vec<StockRow>, date: Date, days: u32) -> Expiry {
    let horizon = (date + Duration::days(i64::from(days))).to_string();
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let mut out: Vec<ExpiryRow> = rows
        .into_iter()
        .filter(|r| r.qty > 0)
        .filter_map(|r| {
            let e = r.expiry?;
            (e.as_str() <= horizon.as_str()).then(|| ExpiryRow {
                days_left: Date::parse(&e, format)
                    .ok()
                    .map(|d| (d - date).whole_days()),
                location: r.location,
                gtin: r.gtin,
                lot: r.lot,
                expiry: e,
                qty: r.qty,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.expiry, &a.location, &a.gtin, &a.lot).cmp(&(&b.expiry, &b.location, &b.gtin, &b.lot))
    });
    let mut locations: BTreeMap<&str, i64> = BTreeMap::new();
    for r in &out {
        *locations.entry(&r.location).or_default() += r.qty;
    }
    let locations = locations
        .into_iter()
        .map(|(l, qty)| ExpiryLocation {
            location: l.to_string(),
            qty,
        })
        .collect();
    Expiry {
        date: date.to_string(),
        days,
        rows: out,
        locations,
    }
}

/// [`expiry`] of the stock of `site` as of `as_of`.
pub fn load_expiry(
    store: &dyn Store,
    site: &str,
    as_of: OffsetDateTime,
    days: u32,
) -> Result<Expiry, StoreError> {
    let filter = StockFilter {
        site: Some(site.to_string()),
        ..StockFilter::default()
    };
    Ok(expiry(
        store.stock_as_of(&filter, as_of)?,
        utc_day(as_of),
        days,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn mv(
        seq: u64,
        at: OffsetDateTime,
        kind: MovementKind,
        qty: u64,
        from: Option<&str>,
        to: Option<&str>,
        sscc: Option<&str>,
    ) -> Movement {
        Movement {
            device_id: "hh-01".into(),
            seq,
            at,
            kind,
            gtin: "09506000134352".into(),
            lot: None,
            expiry: None,
            serials: vec![],
            qty,
            from_location: from.map(str::to_string),
            to_location: to.map(str::to_string),
            sscc: sscc.map(str::to_string),
            reference: None,
            operator: Some("ann".into()),
            source: MovementSource::Manual,
        }
    }

    #[test]
    fn percentile_table() {
        type Samples = &'static [(i64, u64)];
        let cases: &[(Samples, u64, Option<i64>)] = &[
            (&[], 50, None),
            (&[(7, 1)], 50, Some(7)),
            (&[(7, 1)], 90, Some(7)),
            (&[(1, 1), (2, 1)], 50, Some(1)),
            (&[(3, 1), (1, 1), (2, 1)], 50, Some(2)),
            (&[(1, 9), (100, 1)], 90, Some(1)),
            (&[(1, 8), (100, 2)], 90, Some(100)),
            (&[(5, 1), (1, 1), (4, 1), (2, 1), (3, 1)], 90, Some(5)),
            (&[(10, 3), (20, 0)], 50, Some(10)),
        ];
        for (samples, p, want) in cases {
            let mut s = samples.to_vec();
            assert_eq!(percentile(&mut s, *p), *want, "{samples:?} p{p}");
        }
    }

    #[test]
    fn period_table() {
        let t = datetime!(2026-11-01 00:00 UTC);
        let cases = [
            (t, t + Duration::hours(1), None),
            (t, t, Some(PeriodError::Empty)),
            (t, t - Duration::hours(1), Some(PeriodError::Empty)),
            (t, t + Duration::days(366), None),
            (t, t + Duration::days(367), Some(PeriodError::TooLong)),
        ];
        for (since, until, want) in cases {
            assert_eq!(Period::new(since, until).err(), want, "{since} {until}");
        }
    }

    #[test]
    fn dock_to_stock_pairs_pallets_and_units_fifo() {
        let d = datetime!(2026-11-02 08:00 UTC);
        let h = Duration::hours(1);
        use MovementKind::{Putaway, Receive};
        let ms = [
            mv(1, d, Receive, 5, None, Some("DOCK"), Some("P1")),
            mv(2, d, Receive, 3, None, Some("DOCK"), None),
            mv(3, d + h, Receive, 2, None, Some("DOCK"), None),
            // Pallet P1 put away after 2 h; a put-away of P1 from elsewhere first does not count.
            mv(4, d + h, Putaway, 5, Some("A-1"), Some("B-1"), Some("P1")),
            mv(
                5,
                d + 2 * h,
                Putaway,
                5,
                Some("DOCK"),
                Some("A-1"),
                Some("P1"),
            ),
            // 4 units at +3 h: 3 from the first receipt (3 h), 1 from the second (2 h); 1 unit pending.
            mv(6, d + 3 * h, Putaway, 4, Some("DOCK"), Some("A-2"), None),
            mv(7, d + 4 * h, Receive, 1, None, Some("DOCK"), Some("P2")),
        ];
        let period = Period::new(d, d + Duration::days(1)).unwrap();
        let r = dock_to_stock(&ms, period);
        assert_eq!(r.days.len(), 1);
        let day = &r.days[0];
        assert_eq!(day.day, "2026-11-02");
        assert_eq!((day.pallets, day.pallet_median_seconds), (1, Some(7200)));
        assert_eq!(day.units, 4);
        assert_eq!(day.unit_median_seconds, Some(10800));
        assert_eq!(day.unit_p90_seconds, Some(10800));
        assert_eq!((day.pending_pallets, day.pending_units), (1, 1));
        assert_eq!(r.total.units, 4);
    }

    #[test]
    fn turnover_weighs_levels_by_time() {
        let d = datetime!(2026-11-02 00:00 UTC);
        let period = Period::new(d, d + Duration::days(2)).unwrap();
        let opening = BTreeMap::from([("09506000134352".to_string(), 10)]);
        // 10 units for a day, then 4 picked: 6 for a day. Average 8, out 4: turnover 0.5, 4 days of supply.
        let ms = [mv(
            1,
            d + Duration::days(1),
            MovementKind::Pick,
            4,
            Some("A-1"),
            None,
            None,
        )];
        let r = turnover(&opening, &ms, period);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].opening, r[0].closing, r[0].out_units), (10, 6, 4));
        assert!((r[0].average_stock - 8.0).abs() < 1e-9);
        assert!((r[0].turnover.unwrap() - 0.5).abs() < 1e-9);
        assert!((r[0].days_of_supply.unwrap() - 4.0).abs() < 1e-9);
    }

    #[test]
    fn expiry_table() {
        let row = |loc: &str, qty: i64, expiry: Option<&str>| StockRow {
            site: "WH1".into(),
            location: loc.into(),
            gtin: "09506000134352".into(),
            lot: None,
            qty,
            expiry: expiry.map(str::to_string),
        };
        let date = time::macros::date!(2026 - 11 - 10);
        let r = expiry(
            vec![
                row("A", 5, Some("2026-11-20")),
                row("A", 2, Some("2026-11-01")),
                row("B", 7, Some("2026-11-21")),
                row("C", -3, Some("2026-11-12")),
                row("D", 4, None),
                row("E", 1, Some("2026-11-00")),
            ],
            date,
            10,
        );
        let got: Vec<(&str, i64, Option<i64>)> = r
            .rows
            .iter()
            .map(|r| (r.location.as_str(), r.qty, r.days_left))
            .collect();
        assert_eq!(
            got,
            [("E", 1, None), ("A", 2, Some(-9)), ("A", 5, Some(10))]
        );
        assert_eq!(
            r.locations,
            [
                ExpiryLocation {
                    location: "A".into(),
                    qty: 7
                },
                ExpiryLocation {
                    location: "E".into(),
                    qty: 1
                }
            ]
        );
    }
}
