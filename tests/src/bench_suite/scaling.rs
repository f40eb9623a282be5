//! How the server's ingest, pull and stock queries hold up as the data grows 1×, 10× and 100×.
//!
//! One sled store per scale `s`, filled through `Store::push` the way devices fill it:
//!
//! ```text
//! stock rows   base.rows × s       over base.sites sites (8 in a full run), one row per location (item k % items)
//! movements    base.movements × s  receipts, every row receiving the same number of them
//! devices      base.devices × s    enrolled (one device file each), device d at site WH{d % sites}
//! items        base.items × s      master data; the pull feed of a site is its items + locations
//! ```
//!
//! Then, through the whole router in process (`app(state)` with `tower::ServiceExt::oneshot`: JSON, the device
//! token check among all enrolled devices, the store; no TLS), so the figure is server work without the network:
//!
//! - ingest: single batches of 500 receipts into existing rows, each from one of the first devices (one per site)
//!   in turn;
//!   movements/s of the median batch;
//! - pull: a newly enrolled device pulls its site's whole feed from cursor 0 in pages of 5,000; the feed grows
//!   with the scale, so the comparable figure is changes/s;
//! - stock query: `Store::stock_page` for the dashboard's first page (50 rows in key order, keyset: should not
//!   grow) and for 50 rows sorted by quantity (no index: reads every row, so it grows with the rows).
//!
//! The ratio columns are the rate at N× over the rate at 1× (for a time t, the rate is 1/t): 1.00× means no
//! slowdown. The measured pushes add `batches × 500` movements to each store, which is half the 1× base in a full
//! run; the table says so.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use dockhand_protocol::sync::{
    Item, Location, Movement, MovementKind, MovementSource, PushRequest,
};
use dockhand_server::store::{StockPageQuery, StockPageStart, StockSort};
use dockhand_server::{app, AdminToken, AppState, Devices, SledStore, StockFilter, Store};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::markdown::{duration_ns, mib, rate, ratio, Table};

const BATCH: usize = 500;
const PULL_PAGE: usize = 5_000;
const PAGE_ROWS: usize = 50;

/// The sizes at 1×.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base {
    /// Non-zero stock rows.
    pub rows: usize,
    /// Stored movements.
    pub movements: usize,
    /// Enrolled devices.
    pub devices: usize,
    /// Items in master data.
    pub items: usize,
    /// Sites the rows and devices are spread over (not scaled).
    pub sites: usize,
}

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The sizes at 1×.
    pub base: Base,
    /// The scale factors; the first is the reference for the ratios.
    pub scales: Vec<usize>,
    /// Timed ingest batches per scale.
    pub batches: usize,
    /// Repetitions of the pull and of each stock query.
    pub runs: usize,
}

impl Config {
    /// The full run: 1,000 → 100,000 stock rows, 10,000 → 1,000,000 movements, 8 → 800 devices.
    pub fn full() -> Config {
        Config {
            base: Base {
                rows: 1_000,
                movements: 10_000,
                devices: 8,
                items: 100,
                sites: 8,
            },
            scales: vec![1, 10, 100],
            batches: 10,
            runs: 5,
        }
    }

    /// A smoke run on one site, a hundredth of the size (enrolling a device costs three fsyncs, so the devices are
    /// what makes a small run slow).
    pub fn quick() -> Config {
        Config {
            base: Base {
                rows: 10,
                movements: 100,
                devices: 1,
                items: 10,
                sites: 1,
            },
            scales: vec![1, 10, 100],
            batches: 3,
            runs: 3,
        }
    }
}

/// The figures at one scale.
#[derive(Debug, Clone)]
struct Point {
    scale: usize,
    rows: usize,
    movements: usize,
    devices: usize,
    fill_secs: f64,
    disk_bytes: u64,
    /// Movements/s of each timed batch.
    ingest: Vec<f64>,
    /// Seconds of each whole pull.
    pull: Vec<f64>,
    pull_changes: usize,
    /// Seconds per stock query, key order and by quantity.
    page_key: Vec<f64>,
    page_qty: Vec<f64>,
}

/// Runs every scale of `cfg`; returns the section's table and the per-run figures for the log.
pub fn run(cfg: &Config) -> Result<(Table, Vec<String>)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut points = Vec::new();
    let mut log = Vec::new();
    for &scale in &cfg.scales {
        let p = measure(&rt, cfg, scale).with_context(|| format!("scale {scale}×"))?;
        eprintln!(
            "  [scaling] {scale}×: {} rows, {} movements, {} devices, filled in {:.1} s",
            p.rows, p.movements, p.devices, p.fill_secs
        );
        log.push(format!(
            "{scale}×: filled {} movements in {:.1} s; ingest movements/s per batch {:.0?}; pull s {:.4?}; \
             key page s {:.5?}; qty page s {:.5?}",
            p.movements, p.fill_secs, p.ingest, p.pull, p.page_key, p.page_qty
        ));
        points.push(p);
    }
    Ok((table(cfg, &points), log))
}

fn gtin(i: usize) -> String {
    let body = format!("0950611{i:06}");
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(k, b)| u32::from(b - b'0') * if k % 2 == 0 { 3 } else { 1 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

fn location(k: usize) -> String {
    format!("L{k:06}")
}

fn receipt(device: &str, seq: u64, k: usize, items: usize) -> Movement {
    Movement {
        device_id: device.into(),
        seq,
        at: time::macros::datetime!(2026-11-26 06:00:00 UTC) + time::Duration::seconds(seq as i64),
        kind: MovementKind::Receive,
        gtin: gtin(k % items),
        lot: Some("L1".into()),
        expiry: None,
        serials: vec![],
        qty: 1 + (k % 17) as u64,
        from_location: None,
        to_location: Some(location(k)),
        sscc: None,
        reference: None,
        operator: Some("op1".into()),
        source: MovementSource::Manual,
    }
}

fn device_name(d: usize) -> String {
    format!("dev-{d:05}")
}

fn measure(rt: &tokio::runtime::Runtime, cfg: &Config, scale: usize) -> Result<Point> {
    let base = cfg.base;
    let sites = base.sites;
    let (rows, movements, devices, items) = (
        base.rows * scale,
        base.movements * scale,
        base.devices * scale,
        base.items * scale,
    );
    let per_site = rows / sites;
    let per_device = movements / devices;
    ensure!(
        per_site > 0 && per_device > 0,
        "sizes too small for {sites} sites"
    );

    let tmp = tempfile::tempdir()?;
    let store = Arc::new(SledStore::open(
        &tmp.path().join("sled"),
        dockhand_server::store::sled::DEFAULT_CACHE_BYTES,
    )?);
    let devices_dir = tmp.path().join("devices");
    let started = Instant::now();
    let all_items: Vec<Item> = (0..items)
        .map(|i| Item {
            gtin: gtin(i),
            description: format!("item {i}"),
            unit: "EA".into(),
            lot_tracked: true,
            expiry_tracked: false,
            serial_tracked: false,
            active: true,
            unit_cost: None,
        })
        .collect();
    for chunk in all_items.chunks(5_000) {
        store.put_items(chunk)?;
    }
    let locations: Vec<Location> = (0..per_site)
        .map(|k| Location {
            code: location(k),
            gln: None,
            zone: None,
            active: true,
        })
        .collect();
    for site in 0..sites {
        store.put_locations(&format!("WH{site}"), &locations)?;
    }
    let mut tokens = Vec::with_capacity(sites);
    let mut batch = Vec::with_capacity(BATCH);
    for d in 0..devices {
        let (name, site) = (device_name(d), format!("WH{}", d % sites));
        let token = dockhand_server::enroll(&devices_dir, &name, &site, false)?;
        if d < sites {
            tokens.push(token);
        }
        // Device d is the (d / 8)-th device of its site; together a site's devices give each row the same number
        // of receipts.
        let first = (d / sites) * per_device;
        for j in 0..per_device {
            batch.push(receipt(&name, j as u64 + 1, (first + j) % per_site, items));
            if batch.len() == BATCH || j + 1 == per_device {
                store.push(&site, &name, &batch)?;
                batch.clear();
            }
        }
    }
    let fill_secs = started.elapsed().as_secs_f64();
    let stored = store.movement_count()?;
    ensure!(
        stored == (devices * per_device) as u64,
        "{stored} movements stored"
    );

    let admin = AdminToken::from_secret("scaling-admin");
    let registry = Arc::new(Devices::open(&devices_dir)?);
    let router = app(AppState::new(store.clone(), registry, admin));
    let puller = dockhand_server::enroll(&devices_dir, "puller", "WH0", false)?;

    let mut ingest = Vec::with_capacity(cfg.batches);
    for b in 0..cfg.batches {
        let d = b % sites;
        let (name, site) = (device_name(d), format!("WH{d}"));
        let next = store.high_water(&name)? + 1;
        let movements = (0..BATCH as u64)
            .map(|i| receipt(&name, next + i, (b * BATCH + i as usize) % per_site, items))
            .collect();
        let body = serde_json::to_vec(&PushRequest {
            device_id: name,
            movements,
            backlog: None,
        })?;
        let req = Request::post("/v1/sync/push")
            .header("authorization", format!("Bearer {}", tokens[d]))
            .header("content-type", "application/json")
            .body(Body::from(body))?;
        let t = Instant::now();
        rt.block_on(call(&router, req))
            .with_context(|| format!("push to {site}"))?;
        ingest.push(BATCH as f64 / t.elapsed().as_secs_f64());
    }

    let mut pull = Vec::with_capacity(cfg.runs);
    let mut pull_changes = 0;
    for _ in 0..cfg.runs {
        let t = Instant::now();
        let (mut cursor, mut changes) = (0u64, 0usize);
        loop {
            let req = Request::get(format!("/v1/sync/pull?cursor={cursor}&limit={PULL_PAGE}"))
                .header("authorization", format!("Bearer {puller}"))
                .body(Body::empty())?;
            let page: serde_json::Value =
                serde_json::from_slice(&rt.block_on(call(&router, req))?)?;
            changes += page["changes"].as_array().context("changes")?.len();
            cursor = page["cursor"].as_u64().context("cursor")?;
            if page["more"] != true {
                break;
            }
        }
        pull.push(t.elapsed().as_secs_f64());
        pull_changes = changes;
    }
    ensure!(
        pull_changes >= items + per_site,
        "pulled {pull_changes} changes, expected at least {}",
        items + per_site
    );

    let query = |sort, descending| StockPageQuery {
        filter: StockFilter::default(),
        sort,
        descending,
        start: StockPageStart::First,
        limit: PAGE_ROWS,
    };
    let time_page = |q: &StockPageQuery| -> Result<Vec<f64>> {
        (0..cfg.runs)
            .map(|_| {
                let t = Instant::now();
                let page = store.stock_page(q)?;
                ensure!(
                    page.rows.len() == PAGE_ROWS.min(rows),
                    "{} rows",
                    page.rows.len()
                );
                Ok(t.elapsed().as_secs_f64())
            })
            .collect()
    };
    let page_key = time_page(&query(StockSort::Location, false))?;
    let page_qty = time_page(&query(StockSort::Qty, true))?;
    let in_stock = store.stock(&StockFilter::default())?.len();
    ensure!(in_stock == rows, "{in_stock} stock rows, expected {rows}");

    Ok(Point {
        scale,
        rows,
        movements: devices * per_device,
        devices,
        fill_secs,
        disk_bytes: store.size_on_disk()?,
        ingest,
        pull,
        pull_changes,
        page_key,
        page_qty,
    })
}

/// One request through the router; the body when the answer is 200.
async fn call(router: &axum::Router, req: Request<Body>) -> Result<Vec<u8>> {
    let uri = req.uri().to_string();
    let resp = router.clone().oneshot(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes().to_vec();
    ensure!(
        status == StatusCode::OK,
        "{uri}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    Ok(body)
}

fn table(cfg: &Config, points: &[Point]) -> Table {
    use super::markdown::median;
    let mut header = vec!["figure".to_string()];
    header.extend(points.iter().map(|p| format!("{}×", p.scale)));
    header.extend(
        points
            .iter()
            .skip(1)
            .map(|p| format!("{}× / {}×", p.scale, points[0].scale)),
    );
    let mut rows = Vec::new();
    // A row of values and, when `rate` is given, the ratio of rates at each scale to the first.
    let mut add = |label: String, values: Vec<String>, rates: Option<Vec<f64>>| {
        let mut row = vec![label];
        row.extend(values);
        match rates {
            Some(r) => row.extend(r.iter().skip(1).map(|x| ratio(x / r[0]))),
            None => row.extend(points.iter().skip(1).map(|_| String::new())),
        }
        rows.push(row);
    };
    add(
        "data: stock rows / movements / enrolled devices".into(),
        points
            .iter()
            .map(|p| format!("{} / {} / {}", p.rows, p.movements, p.devices))
            .collect(),
        None,
    );
    add(
        "filling it through `Store::push` (context), store size on disk".into(),
        points
            .iter()
            .map(|p| format!("{:.1} s, {}", p.fill_secs, mib(p.disk_bytes)))
            .collect(),
        None,
    );
    let ingest: Vec<f64> = points.iter().map(|p| median(&p.ingest)).collect();
    add(
        format!(
            "ingest through the router, batches of {BATCH}, movements/s (median of {} batches)",
            cfg.batches
        ),
        ingest.iter().map(|&r| rate(r)).collect(),
        Some(ingest.clone()),
    );
    let pull_rate: Vec<f64> = points
        .iter()
        .map(|p| p.pull_changes as f64 / median(&p.pull))
        .collect();
    add(
        format!(
            "pull of a site's whole feed by a new device, pages of {PULL_PAGE} (median of {}): time (changes), ratio of changes/s",
            cfg.runs
        ),
        points
            .iter()
            .map(|p| format!("{} ({})", duration_ns(median(&p.pull) * 1e9), p.pull_changes))
            .collect(),
        Some(pull_rate),
    );
    for (label, pick) in [
        ("stock page, first 50 rows in key order (keyset)", 0),
        (
            "stock page, 50 rows sorted by qty descending (reads every row)",
            1,
        ),
    ] {
        let times: Vec<f64> = points
            .iter()
            .map(|p| median(if pick == 0 { &p.page_key } else { &p.page_qty }))
            .collect();
        add(
            format!("{label} (median of {})", cfg.runs),
            times.iter().map(|t| duration_ns(t * 1e9)).collect(),
            Some(times.iter().map(|t| 1.0 / t).collect()),
        );
    }
    Table { header, rows }
}
