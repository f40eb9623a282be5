//! Pick accuracy: devices report their refused-scan counters (`POST /v1/sync/scan-stats`), the office reads them
//! with the picks and short picks of the movement history (`GET /v1/reports/pick-accuracy`).
//!
//! # What the report counts, per operator (`null`: scans made while nobody was signed in)
//!
//! - `picks`, `picked_units`: `pick` movements and their units, by device time in the period.
//! - `short_picks`: lines reported short: the `count` movements a short line records (`DH:SHORT`), recognised by
//!   their `reference` naming a pick list.
//! - `refused`: refused scans by reason class ([`RejectClass`] names: `over_pick`, `wrong_item`, `wrong_lot`,
//!   `wrong_location`, `undecodable`, `refused` for any other refusal), from the devices' counters.
//! - `mistakes`: the refusals an operator's slip causes (`wrong_location`, `wrong_item`, `wrong_lot`,
//!   `over_pick`): each is a mistake the device caught before it became a wrong pick.
//!
//! The period is whole UTC hours (the counters' granularity): `since` is rounded down and `until` up to the hour,
//! and the answer says which hours it covers. Both sources are by device time, so a device that syncs late simply
//! fills in its hours when its movements and counters arrive.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::Json;
use dockhand_protocol::sync::{
    MovementKind, RejectClass, ScanStatsRequest, ScanStatsResponse, MAX_SCAN_STATS_ROWS,
};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::input::Params;
use super::{blocking, JsonBody};
use crate::auth::{AdminAuth, DeviceAuth};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{MovementFilter, SiteScanStat, Store, StoreError, StoredMovement};

/// The longest period one report covers.
const MAX_PERIOD: Duration = Duration::days(366);

/// Stores a device's refused-scan counters; answers `{"stored": n}`.
pub(crate) async fn report(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    JsonBody(req): JsonBody<ScanStatsRequest>,
) -> Result<Json<ScanStatsResponse>, ApiError> {
    if req.device_id != device.id {
        return Err(ApiError::Forbidden(format!(
            "this credential belongs to device {:?}, not {:?}",
            device.id, req.device_id
        )));
    }
    if req.stats.len() > MAX_SCAN_STATS_ROWS {
        return Err(ApiError::bad_field(
            "stats",
            format!(
                "{} rows; at most {MAX_SCAN_STATS_ROWS} per request",
                req.stats.len()
            ),
        ));
    }
    for (i, s) in req.stats.iter().enumerate() {
        s.validate()
            .map_err(|e| ApiError::bad_field(format!("stats[{i}].{}", e.field), e.message))?;
    }
    let stored = req.stats.len();
    let store = state.store.clone();
    blocking(move || Ok(store.put_scan_stats(&device.site, &device.id, &req.stats)?)).await?;
    Ok(Json(ScanStatsResponse { stored }))
}

/// `GET /v1/reports/pick-accuracy` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PickAccuracy {
    /// The site.
    pub site: String,
    /// The first hour covered.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// The end of the last hour covered (exclusive).
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// One row per operator, `null` (nobody signed in) first, then by name.
    pub operators: Vec<OperatorAccuracy>,
}

/// One operator's figures (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OperatorAccuracy {
    /// The operator, `null` for scans made while nobody was signed in.
    pub operator: Option<String>,
    /// `pick` movements.
    pub picks: u64,
    /// Units those moved.
    pub picked_units: u64,
    /// Pick lines reported short.
    pub short_picks: u64,
    /// Refused scans by reason; every [`RejectClass`] name is present.
    pub refused: BTreeMap<String, u64>,
    /// `wrong_location` + `wrong_item` + `wrong_lot` + `over_pick`.
    pub mistakes: u64,
}

/// The reasons [`OperatorAccuracy::mistakes`] adds up.
const MISTAKES: [RejectClass; 4] = [
    RejectClass::WrongLocation,
    RejectClass::WrongItem,
    RejectClass::WrongLot,
    RejectClass::OverPick,
];

pub(crate) async fn pick_accuracy(
    _admin: AdminAuth,
    State(state): State<AppState>,
    mut q: Params,
) -> Result<Json<PickAccuracy>, ApiError> {
    let site = q
        .name("site")?
        .ok_or_else(|| ApiError::bad_field("site", "is required"))?;
    let since = q
        .time("since")?
        .ok_or_else(|| ApiError::bad_field("since", "is required"))?;
    let until = q
        .time("until")?
        .ok_or_else(|| ApiError::bad_field("until", "is required"))?;
    q.finish()?;
    let (since, until) = whole_hours(since, until)?;
    let store = state.store.clone();
    let report = blocking(move || Ok(compute(store.as_ref(), &site, since, until)?)).await?;
    Ok(Json(report))
}

/// `[since, until)` widened to whole UTC hours; refused when empty, reversed or longer than [`MAX_PERIOD`].
fn whole_hours(
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), ApiError> {
    if until <= since {
        return Err(ApiError::bad_field("until", "must be after since"));
    }
    if until - since > MAX_PERIOD {
        return Err(ApiError::bad_field(
            "until",
            "the period is longer than 366 days",
        ));
    }
    let down = crate::store::hour_of(since);
    let mut up = crate::store::hour_of(until);
    if up < until {
        up += Duration::HOUR;
    }
    Ok((down, up))
}

/// Movements read per page while folding the history.
const PAGE: usize = 1000;

/// The report from the store's history and counters.
pub fn compute(
    store: &dyn Store,
    site: &str,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<PickAccuracy, StoreError> {
    let mut movements = Vec::new();
    for kind in [MovementKind::Pick, MovementKind::Count] {
        let filter = MovementFilter {
            site: Some(site.to_string()),
            kind: Some(kind),
            since: Some(since),
            until: Some(until),
            ..MovementFilter::default()
        };
        let mut after = 0;
        loop {
            let page = store.movements(&filter, after, PAGE)?;
            movements.extend(page.movements);
            match page.next {
                Some(n) => after = n,
                None => break,
            }
        }
    }
    // A count names a pick list only when it records a short line.
    let mut is_pick_list: HashMap<String, bool> = HashMap::new();
    for m in &movements {
        if let (MovementKind::Count, Some(r)) = (m.movement.kind, &m.movement.reference) {
            if !is_pick_list.contains_key(r) {
                let known = store.pick_list(r)?.is_some();
                is_pick_list.insert(r.clone(), known);
            }
        }
    }
    let stats = store.scan_stats(site, since, until)?;
    Ok(PickAccuracy {
        site: site.to_string(),
        since,
        until,
        operators: fold(&movements, &stats, |r| {
            is_pick_list.get(r).copied().unwrap_or(false)
        }),
    })
}

/// The per-operator figures of `movements` (picks and counts) and `stats`.
fn fold(
    movements: &[StoredMovement],
    stats: &[SiteScanStat],
    is_pick_list: impl Fn(&str) -> bool,
) -> Vec<OperatorAccuracy> {
    let mut by_op: BTreeMap<Option<String>, OperatorAccuracy> = BTreeMap::new();
    fn row<'a>(
        by_op: &'a mut BTreeMap<Option<String>, OperatorAccuracy>,
        op: &Option<String>,
    ) -> &'a mut OperatorAccuracy {
        by_op.entry(op.clone()).or_insert_with(|| OperatorAccuracy {
            operator: op.clone(),
            refused: RejectClass::ALL
                .iter()
                .map(|c| (c.as_str().to_string(), 0))
                .collect(),
            ..OperatorAccuracy::default()
        })
    }
    for m in movements.iter().map(|m| &m.movement) {
        match m.kind {
            MovementKind::Pick => {
                let r = row(&mut by_op, &m.operator);
                r.picks += 1;
                r.picked_units += m.qty;
            }
            MovementKind::Count if m.reference.as_deref().is_some_and(&is_pick_list) => {
                row(&mut by_op, &m.operator).short_picks += 1;
            }
            _ => {}
        }
    }
    for s in stats {
        let r = row(&mut by_op, &s.stat.operator);
        *r.refused.entry(s.stat.reason.clone()).or_default() += s.stat.count;
        if MISTAKES.iter().any(|c| c.as_str() == s.stat.reason) {
            r.mistakes += s.stat.count;
        }
    }
    by_op.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockhand_protocol::sync::{Movement, MovementSource, ScanStat};
    use time::macros::datetime;

    fn stored(
        kind: MovementKind,
        op: Option<&str>,
        qty: u64,
        reference: Option<&str>,
    ) -> StoredMovement {
        StoredMovement {
            server_seq: 1,
            site: "WH1".into(),
            received_at: datetime!(2026-11-27 06:00:00 UTC),
            movement: Movement {
                device_id: "hh-01".into(),
                seq: 1,
                at: datetime!(2026-11-27 06:00:00 UTC),
                kind,
                gtin: "09506000134352".into(),
                lot: None,
                expiry: None,
                serials: vec![],
                qty,
                from_location: Some("A-01".into()),
                to_location: None,
                sscc: None,
                reference: reference.map(str::to_string),
                operator: op.map(str::to_string),
                source: MovementSource::Barcode {
                    raw: "x".into(),
                    symbology: None,
                },
            },
        }
    }

    fn stat(op: Option<&str>, reason: &str, count: u64) -> SiteScanStat {
        SiteScanStat {
            device_id: "hh-01".into(),
            stat: ScanStat {
                hour: datetime!(2026-11-27 06:00:00 UTC),
                operator: op.map(str::to_string),
                reason: reason.into(),
                count,
            },
        }
    }

    #[test]
    fn folds_picks_shorts_and_refusals_per_operator() {
        use MovementKind::{Count, Pick};
        let movements = [
            stored(Pick, Some("anna"), 3, Some("PL-1")),
            stored(Pick, Some("anna"), 2, Some("PL-1")),
            stored(Pick, Some("bo"), 1, Some("PL-2")),
            stored(Count, Some("anna"), 0, Some("PL-1")),
            // A cycle count, not a short line.
            stored(Count, Some("anna"), 4, Some("CC-9")),
            stored(Count, Some("bo"), 0, None),
        ];
        let stats = [
            stat(Some("anna"), "over_pick", 2),
            stat(Some("anna"), "wrong_item", 1),
            stat(Some("anna"), "undecodable", 5),
            stat(None, "refused", 1),
            stat(Some("bo"), "a_future_reason", 7),
        ];
        let got = fold(&movements, &stats, |r| r.starts_with("PL-"));
        let by: HashMap<_, _> = got.iter().map(|r| (r.operator.as_deref(), r)).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].operator, None, "nobody signed in comes first");
        let anna = by[&Some("anna")];
        assert_eq!((anna.picks, anna.picked_units, anna.short_picks), (2, 5, 1));
        assert_eq!(anna.refused["over_pick"], 2);
        assert_eq!(anna.refused["undecodable"], 5);
        assert_eq!(anna.refused["wrong_lot"], 0);
        assert_eq!(anna.mistakes, 3, "over_pick + wrong_item, not undecodable");
        let bo = by[&Some("bo")];
        assert_eq!((bo.picks, bo.picked_units, bo.short_picks), (1, 1, 0));
        assert_eq!(bo.refused["a_future_reason"], 7);
        assert_eq!(bo.mistakes, 0);
        assert_eq!(by[&None].refused["refused"], 1);
    }

    #[test]
    fn periods_are_whole_hours_and_bounded() {
        let ok = |a, b| whole_hours(a, b).unwrap();
        assert_eq!(
            ok(
                datetime!(2026-11-27 06:30:00 UTC),
                datetime!(2026-11-27 07:00:01 UTC)
            ),
            (
                datetime!(2026-11-27 06:00:00 UTC),
                datetime!(2026-11-27 08:00:00 UTC)
            )
        );
        assert_eq!(
            ok(
                datetime!(2026-11-27 08:30:00 +02:00),
                datetime!(2026-11-28 00:00:00 UTC)
            ),
            (
                datetime!(2026-11-27 06:00:00 UTC),
                datetime!(2026-11-28 00:00:00 UTC)
            )
        );
        for (a, b) in [
            (
                datetime!(2026-11-27 06:00:00 UTC),
                datetime!(2026-11-27 06:00:00 UTC),
            ),
            (
                datetime!(2026-11-27 07:00:00 UTC),
                datetime!(2026-11-27 06:00:00 UTC),
            ),
            (
                datetime!(2025-01-01 00:00:00 UTC),
                datetime!(2026-11-27 06:00:00 UTC),
            ),
        ] {
            assert!(whole_hours(a, b).is_err(), "{a} {b}");
        }
    }
}
