//! Reports and replenishment (issue 9) through `app(state)`, on both backends (sled, and PostgreSQL on a
//! throw-away cluster from `pg/mod.rs`).
//!
//! - `scripted_week_*`: a week of receipts, put-aways, picks, ships and gate passes by three devices at WH1, pushed
//!   through `POST /v1/sync/push`; hh-02 is offline on Tuesday and Wednesday and syncs those two days late. Every
//!   expected figure is computed here from the script itself (sampling stock minute by minute, expanding samples
//!   unit by unit), not by the server's folds.
//! - `bad_parameters_*`: every report refuses malformed, inconsistent and unknown parameters with a 400 naming
//!   the parameter.

mod pg;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use dockhand_protocol::sync::{Movement, MovementKind, MovementSource, PushRequest};
use dockhand_server::{app, enroll, AdminToken, AppState, Devices, PgStore, SledStore, Store};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

const ADMIN: &str = "admin-secret";
/// Lot- and expiry-tracked, received loose (no SSCC), picked.
const G1: &str = "09506000134352";
/// Received on pallets (SSCC), shipped; also what the gate sees.
const G2: &str = "05901234123457";
/// Known, never moved.
const G3: &str = "04012345123456";
const COST1: i64 = 250;
const COST2: i64 = 1000;
/// Monday 2 November 2026, 00:00 UTC: the week is `MONDAY..MONDAY + 7 days`.
const MONDAY: OffsetDateTime = datetime!(2026-11-02 00:00 UTC);

struct Fixture {
    app: Router,
    tokens: BTreeMap<&'static str, String>,
    _dir: tempfile::TempDir,
    _db: Option<pg::TestDb>,
}

fn fixture(
    store: impl FnOnce(&std::path::Path) -> (Arc<dyn Store>, Option<pg::TestDb>),
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let devices_dir = dir.path().join("devices");
    let mut tokens = BTreeMap::new();
    for device in ["hh-01", "hh-02", "gate-01"] {
        tokens.insert(device, enroll(&devices_dir, device, "WH1", false).unwrap());
    }
    enroll(&devices_dir, "hh-09", "WH2", false).unwrap();
    let (store, db) = store(dir.path());
    let devices = Arc::new(Devices::open(&devices_dir).unwrap());
    let state = AppState::new(store, devices, AdminToken::from_secret(ADMIN));
    Fixture {
        app: app(state),
        tokens,
        _dir: dir,
        _db: db,
    }
}

fn sled_fixture() -> Fixture {
    fixture(|dir| {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.join("sled"), 8 << 20).unwrap());
        (store, None)
    })
}

fn pg_fixture() -> Fixture {
    fixture(|_| {
        let db = pg::database();
        let store: Arc<dyn Store> = Arc::new(PgStore::open(&db.url(), 2).unwrap());
        (store, Some(db))
    })
}

impl Fixture {
    async fn send(
        &self,
        method: &str,
        uri: &str,
        token: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(body))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        (
            status,
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
    }

    async fn admin(&self, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let (status, bytes) = self.send(method, uri, ADMIN, bytes).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, uri: &str) -> Value {
        let (status, body) = self.admin("GET", uri, Value::Null).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        body
    }

    async fn push(&self, device: &'static str, movements: Vec<Movement>) {
        let body = serde_json::to_vec(&PushRequest {
            device_id: device.into(),
            movements,
            backlog: None,
        })
        .unwrap();
        let (status, answer) = self
            .send("POST", "/v1/sync/push", &self.tokens[device], body)
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "push {device}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
}

/// The script's movements, per device in seq order, and what the test expects of them.
#[derive(Default)]
struct Script {
    devices: BTreeMap<&'static str, Vec<Movement>>,
    /// (UTC day index, seconds, units) of every loose receipt's put-away.
    unit_samples: Vec<(i64, i64, u64)>,
    /// (UTC day index, seconds) of every pallet's put-away.
    pallet_samples: Vec<(i64, i64)>,
}

impl Script {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        device: &'static str,
        at: OffsetDateTime,
        kind: MovementKind,
        gtin: &str,
        qty: u64,
        from: Option<&str>,
        to: Option<&str>,
        lot: Option<String>,
        expiry: Option<String>,
        sscc: Option<String>,
    ) {
        let list = self.devices.entry(device).or_default();
        let (operator, source) = match device {
            "hh-01" => (Some("ann".to_string()), barcode(gtin)),
            "hh-02" => (Some("bob".to_string()), barcode(gtin)),
            _ => (
                None,
                MovementSource::Epc {
                    epc: "3074257BF7194E4000001A85".into(),
                    antenna: Some(1),
                    rssi: Some(-52),
                },
            ),
        };
        list.push(Movement {
            device_id: device.into(),
            seq: list.len() as u64 + 1,
            at,
            kind,
            gtin: gtin.into(),
            lot,
            expiry,
            serials: vec![],
            qty,
            from_location: from.map(str::to_string),
            to_location: to.map(str::to_string),
            sscc,
            reference: None,
            operator,
            source,
        });
    }

    /// Every movement, all devices.
    fn all(&self) -> impl Iterator<Item = &Movement> {
        self.devices.values().flatten()
    }
}

fn barcode(gtin: &str) -> MovementSource {
    MovementSource::Barcode {
        raw: format!("01{gtin}"),
        symbology: Some("]C1".into()),
    }
}

/// The week: working hours 8..=16 every day.
/// - hh-01 (ann), each hour at :05, receives a lot of G1 loose at DOCK and puts it all away to A-01 10..59 minutes
///   later (before the next receipt), both carrying the lot's expiry (2026-11-10 + day).
/// - hh-02 (bob), from 9:00, picks 1 unit of the day's lot from A-01 at :30; at :40 receives a pallet of 10 G2 at
///   DOCK and puts it away to A-02 15..60 minutes later; from Friday ships 5 G2 from A-02 at :50.
/// - gate-01 reads one inbound G2 unit (no SSCC) at 12:00 each day: a gate pass, never put away (pending).
fn script() -> Script {
    let mut s = Script::default();
    use MovementKind::{Pick, Putaway, Receive, Ship};
    for day in 0..7i64 {
        let lot = Some(format!("L{day}"));
        let expiry = Some(format!("2026-11-{:02}", 10 + day));
        for hour in 8..=16i64 {
            let base = MONDAY + Duration::days(day) + Duration::hours(hour);
            let qty = ((day + hour) % 5 + 1) as u64;
            let delay = (day * 7 + hour * 3) % 50 + 10;
            let received = base + Duration::minutes(5);
            s.add(
                "hh-01",
                received,
                Receive,
                G1,
                qty,
                None,
                Some("DOCK"),
                lot.clone(),
                expiry.clone(),
                None,
            );
            s.add(
                "hh-01",
                received + Duration::minutes(delay),
                Putaway,
                G1,
                qty,
                Some("DOCK"),
                Some("A-01"),
                lot.clone(),
                expiry.clone(),
                None,
            );
            s.unit_samples.push((day, delay * 60, qty));
            if hour >= 9 {
                s.add(
                    "hh-02",
                    base + Duration::minutes(30),
                    Pick,
                    G1,
                    1,
                    Some("A-01"),
                    None,
                    lot.clone(),
                    None,
                    None,
                );
            }
            let sscc = Some(format!("1061414100{day:02}{hour:05}0"));
            let pallet_delay = ((day + hour) % 4 + 1) * 15;
            let pallet_at = base + Duration::minutes(40);
            s.add(
                "hh-02",
                pallet_at,
                Receive,
                G2,
                10,
                None,
                Some("DOCK"),
                None,
                None,
                sscc.clone(),
            );
            s.add(
                "hh-02",
                pallet_at + Duration::minutes(pallet_delay),
                Putaway,
                G2,
                10,
                Some("DOCK"),
                Some("A-02"),
                None,
                None,
                sscc,
            );
            s.pallet_samples.push((day, pallet_delay * 60));
            if day >= 4 {
                s.add(
                    "hh-02",
                    base + Duration::minutes(50),
                    Ship,
                    G2,
                    5,
                    Some("A-02"),
                    None,
                    None,
                    None,
                    None,
                );
            }
            if hour == 12 {
                s.add(
                    "gate-01",
                    base,
                    Receive,
                    G2,
                    1,
                    None,
                    Some("DOCK"),
                    None,
                    None,
                    None,
                );
            }
        }
    }
    s
}

fn day_of(at: OffsetDateTime) -> i64 {
    (at - MONDAY).whole_days()
}

/// Nearest rank: the value at position ceil(p × n / 100) (1-based) of the sorted samples.
fn nearest_rank(mut values: Vec<i64>, p: usize) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = (p * values.len()).div_ceil(100).max(1);
    Some(values[rank - 1])
}

/// The site's units of `gtin` at `t` (movements with `at <= t`), from the script.
fn level(script: &Script, gtin: &str, t: OffsetDateTime) -> i64 {
    script
        .all()
        .filter(|m| m.gtin == gtin && m.at <= t)
        .map(|m| match m.kind {
            MovementKind::Receive => m.qty as i64,
            MovementKind::Pick | MovementKind::Ship => -(m.qty as i64),
            _ => 0,
        })
        .sum()
}

async fn scripted_week(f: &Fixture) {
    let s = script();
    for (gtin, cost) in [(G1, Some(COST1)), (G2, Some(COST2)), (G3, None)] {
        let mut body = json!({"description": format!("item {gtin}")});
        if let Some(c) = cost {
            body["unit_cost"] = json!(c);
        }
        let (status, _) = f.admin("PUT", &format!("/v1/items/{gtin}"), body).await;
        assert_eq!(status, StatusCode::CREATED);
    }

    // Push day by day; hh-02 is offline on Tuesday and Wednesday (days 1 and 2) and pushes them on Thursday.
    let week = format!(
        "site=WH1&since={}&until={}",
        "2026-11-02T00:00:00Z", "2026-11-09T00:00:00Z"
    );
    let mut held: Vec<Movement> = Vec::new();
    for day in 0..7 {
        for (&device, list) in &s.devices {
            let today: Vec<Movement> = list
                .iter()
                .filter(|m| day_of(m.at) == day)
                .cloned()
                .collect();
            if device == "hh-02" && (day == 1 || day == 2) {
                held.extend(today);
                continue;
            }
            if device == "hh-02" && day == 3 {
                // Before the late batch lands, Tuesday has no work by bob.
                let before = f.get(&format!("/v1/reports/productivity?{week}")).await;
                let tuesday_bob = before["by_operator"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| {
                        r["who"] == "bob" && r["hour"].as_str().unwrap().starts_with("2026-11-03")
                    })
                    .count();
                assert_eq!(tuesday_bob, 0, "bob's Tuesday is not synced yet");
                f.push(device, std::mem::take(&mut held)).await;
            }
            if !today.is_empty() {
                f.push(device, today).await;
            }
        }
    }

    // Productivity: per (hour, operator) and (hour, device), from the script.
    let report = f.get(&format!("/v1/reports/productivity?{week}")).await;
    let mut want_ops: BTreeMap<(String, Option<String>), (u64, u64, u64)> = BTreeMap::new();
    let mut want_devices: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
    let mut want_gate: BTreeMap<String, u64> = BTreeMap::new();
    for m in s.all() {
        let hour = format!("{}T{:02}:00:00Z", m.at.date(), m.at.hour());
        let scan = u64::from(matches!(m.source, MovementSource::Barcode { .. }));
        let picked = if m.kind == MovementKind::Pick {
            m.qty
        } else {
            0
        };
        for e in [
            want_ops
                .entry((hour.clone(), m.operator.clone()))
                .or_default(),
            want_devices
                .entry((hour.clone(), m.device_id.clone()))
                .or_default(),
        ] {
            *e = (e.0 + 1, e.1 + scan, e.2 + picked);
        }
        if m.device_id == "gate-01" {
            *want_gate.entry(hour).or_default() += 1;
        }
    }
    let got_rows = |list: &Value| -> BTreeMap<(String, Option<String>), (u64, u64, u64)> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    (
                        r["hour"].as_str().unwrap().to_string(),
                        r["who"].as_str().map(str::to_string),
                    ),
                    (
                        r["movements"].as_u64().unwrap(),
                        r["scans"].as_u64().unwrap(),
                        r["picked_units"].as_u64().unwrap(),
                    ),
                )
            })
            .collect()
    };
    assert_eq!(got_rows(&report["by_operator"]), want_ops);
    let want_devices: BTreeMap<_, _> = want_devices
        .into_iter()
        .map(|((h, d), v)| ((h, Some(d)), v))
        .collect();
    assert_eq!(got_rows(&report["by_device"]), want_devices);
    let got_gate: BTreeMap<String, u64> = report["gate_passes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["hour"].as_str().unwrap().to_string(),
                r["passes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got_gate, want_gate);
    assert_eq!(want_gate.len(), 7);
    // bob's late Tuesday landed in Tuesday's hours: 8 picks of 1 unit.
    let tuesday_bob_picked: u64 = report["by_operator"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["who"] == "bob" && r["hour"].as_str().unwrap().starts_with("2026-11-03"))
        .map(|r| r["picked_units"].as_u64().unwrap())
        .sum();
    assert_eq!(tuesday_bob_picked, 8);

    // Dock-to-stock per day of receipt, from the scripted delays.
    let report = f.get(&format!("/v1/reports/dock-to-stock?{week}")).await;
    let days = report["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    for (day, got) in days.iter().enumerate() {
        let day = day as i64;
        let units: Vec<i64> = s
            .unit_samples
            .iter()
            .filter(|x| x.0 == day)
            .flat_map(|&(_, secs, qty)| std::iter::repeat_n(secs, qty as usize))
            .collect();
        let pallets: Vec<i64> = s
            .pallet_samples
            .iter()
            .filter(|x| x.0 == day)
            .map(|x| x.1)
            .collect();
        assert_eq!(
            got["day"],
            (MONDAY + Duration::days(day)).date().to_string()
        );
        assert_eq!(got["units"], units.len() as u64, "day {day}");
        assert_eq!(
            got["unit_median_seconds"],
            json!(nearest_rank(units.clone(), 50)),
            "day {day}"
        );
        assert_eq!(
            got["unit_p90_seconds"],
            json!(nearest_rank(units, 90)),
            "day {day}"
        );
        assert_eq!(got["pallets"], pallets.len() as u64);
        assert_eq!(
            got["pallet_median_seconds"],
            json!(nearest_rank(pallets.clone(), 50))
        );
        assert_eq!(got["pallet_p90_seconds"], json!(nearest_rank(pallets, 90)));
        // The gate's unit is never put away.
        assert_eq!(
            (
                got["pending_units"].as_u64(),
                got["pending_pallets"].as_u64()
            ),
            (Some(1), Some(0))
        );
    }
    assert_eq!(report["total"]["pallets"], 63);

    // Inventory as of Friday noon and its value, from a tally of the script's effects.
    let noon = datetime!(2026-11-06 12:00 UTC);
    let report = f
        .get("/v1/reports/inventory?site=WH1&as_of=2026-11-06T12:00:00Z")
        .await;
    let mut tally: BTreeMap<(String, String, Option<String>), i64> = BTreeMap::new();
    for m in s.all().filter(|m| m.at <= noon) {
        for e in m.effects() {
            *tally
                .entry((e.location.to_string(), m.gtin.clone(), m.lot.clone()))
                .or_default() += e.delta;
        }
    }
    tally.retain(|_, q| *q != 0);
    let cost = |g: &str| if g == G1 { COST1 } else { COST2 };
    let want_value: i64 = tally.iter().map(|((_, g, _), q)| q * cost(g)).sum();
    assert_eq!(report["total_value"], want_value);
    assert_eq!(report["rows"].as_array().unwrap().len(), tally.len());
    for r in report["rows"].as_array().unwrap() {
        let key = (
            r["location"].as_str().unwrap().to_string(),
            r["gtin"].as_str().unwrap().to_string(),
            r["lot"].as_str().map(str::to_string),
        );
        assert_eq!(r["qty"], tally[&key], "{key:?}");
        assert_eq!(r["value"], tally[&key] * cost(&key.1), "{key:?}");
    }

    // Turnover: the average sampled every minute (every movement is on a whole minute).
    let report = f.get(&format!("/v1/reports/turnover?{week}")).await;
    let items = report["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{report}");
    for (i, gtin) in [G2, G1].into_iter().enumerate() {
        let minutes = 7 * 24 * 60;
        let sum: i64 = (0..minutes)
            .map(|k| level(&s, gtin, MONDAY + Duration::minutes(k)))
            .sum();
        let average = sum as f64 / minutes as f64;
        let out: u64 = s
            .all()
            .filter(|m| m.gtin == gtin && matches!(m.kind, MovementKind::Pick | MovementKind::Ship))
            .map(|m| m.qty)
            .sum();
        let got = &items[i];
        assert_eq!(got["gtin"], gtin);
        assert_eq!(got["opening"], 0);
        assert_eq!(got["out_units"], out);
        assert_eq!(got["closing"], level(&s, gtin, MONDAY + Duration::days(7)));
        let close = |field: &str, want: f64| {
            let v = got[field].as_f64().unwrap();
            assert!(
                (v - want).abs() < 1e-6 * want.max(1.0),
                "{gtin} {field}: {v} vs {want}"
            );
        };
        close("average_stock", average);
        close("turnover", out as f64 / average);
        close("days_of_supply", average / (out as f64 / 7.0));
    }

    // Expiry exposure on Friday noon, 7 days: the lots expiring by 2026-11-13 still at a location.
    let report = f
        .get("/v1/reports/expiry?site=WH1&as_of=2026-11-06T12:00:00Z&days=7")
        .await;
    let mut want: BTreeMap<(String, String), i64> = BTreeMap::new();
    for ((loc, gtin, lot), q) in &tally {
        let Some(lot) = lot else { continue };
        let day: i64 = lot[1..].parse().unwrap();
        if gtin == G1 && *q > 0 && 10 + day <= 13 {
            want.insert((loc.clone(), lot.clone()), *q);
        }
    }
    let got: BTreeMap<(String, String), i64> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["location"].as_str().unwrap().to_string(),
                    r["lot"].as_str().unwrap().to_string(),
                ),
                r["qty"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);

    // Replenishment: G2 below its point (min/max), G1 above its point.
    let (status, _) = f
        .admin(
            "PUT",
            &format!("/v1/sites/WH1/replenishment/{G2}"),
            json!({"reorder_point": 1000, "max": 2000}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = f
        .admin(
            "PUT",
            &format!("/v1/sites/WH1/replenishment/{G1}"),
            json!({"reorder_point": 1, "reorder_qty": 50}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let end = MONDAY + Duration::days(7);
    let g2_now = level(&s, G2, end);
    let report = f.get("/v1/replenishment?site=WH1").await;
    assert_eq!(
        report["suggestions"],
        json!([{"site": "WH1", "gtin": G2, "available": g2_now, "reorder_point": 1000, "suggested_qty": 2000 - g2_now}])
    );
    let (status, csv) = f
        .send(
            "GET",
            "/v1/replenishment?site=WH1&format=csv",
            ADMIN,
            Vec::new(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(
        csv.trim_start_matches('\u{feff}'),
        format!(
            "site,gtin,available,reorder_point,suggested_qty\r\nWH1,{G2},{g2_now},1000,{}\r\n",
            2000 - g2_now
        )
    );
    // The report CSVs carry the same figures as the JSON.
    let (status, csv) = f
        .send(
            "GET",
            "/v1/reports/inventory?site=WH1&as_of=2026-11-06T12:00:00Z&format=csv",
            ADMIN,
            Vec::new(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(csv.lines().count(), 1 + tally.len());
    assert!(csv.contains(&format!("A-02,{G2},,")), "{csv}");
}

#[tokio::test]
async fn scripted_week_sled() {
    scripted_week(&sled_fixture()).await;
}

/// The store is opened outside the runtime: the synchronous PostgreSQL client runs its own.
#[test]
fn scripted_week_postgres() {
    let f = pg_fixture();
    runtime().block_on(scripted_week(&f));
    // Dropped here, outside the runtime: the client's connections close synchronously.
    drop(f);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn bad_parameters(f: &Fixture) {
    let w = "since=2026-11-02T00:00:00Z&until=2026-11-09T00:00:00Z";
    // (uri, the parameter the 400 names)
    let cases: &[(String, &str)] = &[
        (format!("/v1/reports/productivity?{w}"), "site"),
        (format!("/v1/reports/productivity?site=NOWHERE&{w}"), "site"),
        (format!("/v1/reports/productivity?site=bad%20site&{w}"), "site"),
        ("/v1/reports/productivity?site=WH1&since=2026-11-02&until=2026-11-09T00:00:00Z".into(), "since"),
        ("/v1/reports/productivity?site=WH1&since=2026-11-02T00:00:00Z".into(), "until"),
        ("/v1/reports/dock-to-stock?site=WH1&since=2026-11-09T00:00:00Z&until=2026-11-02T00:00:00Z".into(), "until"),
        ("/v1/reports/turnover?site=WH1&since=2025-01-01T00:00:00Z&until=2026-11-02T00:00:00Z".into(), "until"),
        (format!("/v1/reports/turnover?site=WH1&{w}&format=xml"), "format"),
        (format!("/v1/reports/turnover?site=WH1&{w}&colour=red"), "colour"),
        ("/v1/reports/inventory?site=WH1&as_of=yesterday".into(), "as_of"),
        ("/v1/reports/inventory?site=WH1&gtin=9506000134353".into(), "gtin"),
        ("/v1/reports/expiry?site=WH1&days=-1".into(), "days"),
        ("/v1/reports/expiry?site=WH1&days=3651".into(), "days"),
        ("/v1/replenishment?site=NOWHERE".into(), "site"),
    ];
    for (uri, field) in cases {
        let (status, body) = f.admin("GET", uri, Value::Null).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"]["field"], *field, "{uri}: {body}");
    }
    let rules: &[(&str, Value, &str)] = &[
        (
            "/v1/sites/WH1/replenishment/09506000134352",
            json!({"reorder_point": 5}),
            "reorder_qty",
        ),
        (
            "/v1/sites/WH1/replenishment/09506000134352",
            json!({"reorder_point": 5, "max": 4}),
            "max",
        ),
        (
            "/v1/sites/WH1/replenishment/09506000134352",
            json!({"reorder_point": 5, "reorder_qty": 0}),
            "reorder_qty",
        ),
        (
            "/v1/sites/WH1/replenishment/09506000134353",
            json!({"reorder_point": 5, "reorder_qty": 1}),
            "gtin",
        ),
        (
            "/v1/sites/NOWHERE/replenishment/09506000134352",
            json!({"reorder_point": 5, "reorder_qty": 1}),
            "site",
        ),
        (
            "/v1/sites/WH1/replenishment/09506000134352",
            json!({"reorder_point": 5, "reorder_qty": 1, "min": 1}),
            "min",
        ),
    ];
    for (uri, body, field) in rules {
        let (status, answer) = f.admin("PUT", uri, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {body}: {answer}");
        assert_eq!(answer["error"]["field"], *field, "{uri} {body}: {answer}");
    }
    // Nothing was stored by the refused rules.
    assert_eq!(f.get("/v1/replenishment").await["suggestions"], json!([]));
}

#[tokio::test]
async fn bad_parameters_sled() {
    bad_parameters(&sled_fixture()).await;
}

/// The store is opened outside the runtime: the synchronous PostgreSQL client runs its own.
#[test]
fn bad_parameters_postgres() {
    let f = pg_fixture();
    runtime().block_on(bad_parameters(&f));
    drop(f);
}
