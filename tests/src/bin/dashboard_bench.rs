//! `dockhand-dashboard-bench`: how long the office dashboard's stock page takes on a big store (issue 7), next to
//! baselines measured in the same run.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-bench cargo run --release -p dockhand-tests --bin dockhand-dashboard-bench`
//! (`-- --backend sled`, `-- --backend postgres` or both by default; PostgreSQL needs the server binaries, see
//! server/tests/pg). Prints a Markdown table for BENCHMARKS.md and the per-run figures on stderr.
//!
//! The store: 4 sites × 250 locations × 20 items × 5 lots = 100,000 non-zero stock rows, filled the way devices
//! fill it: one device per site pushes one receipt per row (lot, expiry, varied quantity) in batches of 500
//! through `Store::push`; items and locations exist in master data. Then each request below goes through the
//! whole router (`app(state)`, session cookie, handler, store, template) with `tower::ServiceExt::oneshot`, in
//! process: server time, no TLS or network. Each figure is the median of [`RUNS`] runs after [`WARMUP`] unmeasured
//! ones. Baselines: the store's own page query for the same request (`Store::stock_page`, no HTML), and the JSON
//! API's whole site (`GET /v1/stock?site=WH2`, 25,000 rows), the only way to see a site's stock before the
//! dashboard.

#[path = "../../../server/tests/pg/mod.rs"]
mod pg;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use dockhand_protocol::sync::{Item, Location, Movement, MovementKind, MovementSource};
use dockhand_server::store::{StockPageQuery, StockPageStart, StockSort};
use dockhand_server::web::{SessionKey, SESSION_COOKIE};
use dockhand_server::{app, AdminToken, AppState, Devices, PgStore, SledStore, StockFilter, Store};
use http_body_util::BodyExt;
use tower::ServiceExt;

const RUNS: usize = 21;
const WARMUP: usize = 2;
const SITES: usize = 4;
const LOCATIONS: usize = 250;
const ITEMS: usize = 20;
const LOTS: usize = 5;
const BATCH: usize = 500;
/// The page size of the dashboard (web::stock::PAGE_ROWS).
const PAGE: usize = 50;
const TARGET_MS: f64 = 200.0;
const ADMIN: &str = "bench-admin-token";

/// A GTIN-14 with a correct check digit for item `i`.
fn gtin(i: usize) -> String {
    let body = format!("0950600{:06}", 100 + i);
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(k, b)| u32::from(b - b'0') * if k % 2 == 0 { 3 } else { 1 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

fn receipt(
    device: &str,
    seq: u64,
    location: String,
    gtin: String,
    lot: usize,
    qty: u64,
) -> Movement {
    let today = time::OffsetDateTime::now_utc().date();
    // Most lots far out, some within the warning window, some expired: all three kinds of row render.
    let days = [400i64, 200, 20, 90, -5][lot % LOTS] + (seq % 7) as i64;
    Movement {
        device_id: device.into(),
        seq,
        at: time::macros::datetime!(2026-11-26 06:00:00 UTC)
            + time::Duration::milliseconds(seq as i64 * 300),
        kind: MovementKind::Receive,
        gtin,
        lot: Some(format!("LOT-{lot:02}")),
        expiry: Some((today + time::Duration::days(days)).to_string()),
        serials: vec![],
        qty,
        from_location: None,
        to_location: Some(location),
        sscc: None,
        reference: None,
        operator: Some("op1".into()),
        source: MovementSource::Manual,
    }
}

/// Fills `store` with the 100,000 rows (see the module docs); returns the number of rows.
fn fill(store: &dyn Store) -> Result<usize> {
    let items: Vec<Item> = (0..ITEMS)
        .map(|i| Item {
            gtin: gtin(i),
            description: format!("Article {i}, carton of {} <12 × 0.5 l>", 6 + i),
            unit: "EA".into(),
            lot_tracked: true,
            expiry_tracked: true,
            serial_tracked: false,
            active: true,
            unit_cost: None,
        })
        .collect();
    store.put_items(&items)?;
    let mut rows = 0;
    for s in 0..SITES {
        let site = format!("WH{}", s + 1);
        let device = format!("hh-{}", s + 1);
        let codes: Vec<String> = (0..LOCATIONS)
            .map(|l| {
                format!(
                    "{}-{:02}-{:02}",
                    (b'A' + (l / 50) as u8) as char,
                    l % 50,
                    l % 7
                )
            })
            .collect();
        let locations: Vec<Location> = codes
            .iter()
            .map(|c| Location {
                code: c.clone(),
                gln: None,
                zone: Some(c[..1].to_string()),
                active: true,
            })
            .collect();
        store.put_locations(&site, &locations)?;
        let mut batch = Vec::with_capacity(BATCH);
        let mut seq = 0;
        for (l, code) in codes.iter().enumerate() {
            for i in 0..ITEMS {
                for lot in 0..LOTS {
                    seq += 1;
                    let qty = ((l * 31 + i * 17 + lot * 7) % 240 + 1) as u64;
                    batch.push(receipt(&device, seq, code.clone(), gtin(i), lot, qty));
                    if batch.len() == BATCH {
                        store.push(&site, &device, &batch)?;
                        batch.clear();
                    }
                }
            }
        }
        if !batch.is_empty() {
            store.push(&site, &device, &batch)?;
        }
        rows += seq as usize;
    }
    Ok(rows)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `f` [`RUNS`] times after [`WARMUP`] runs; milliseconds.
async fn time_async<F, Fut>(mut f: F) -> Result<Vec<f64>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut out = Vec::with_capacity(RUNS);
    for run in 0..WARMUP + RUNS {
        let start = Instant::now();
        f().await?;
        if run >= WARMUP {
            out.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(out)
}

/// One GET through the router; the body is read to the end. Returns it.
async fn get(
    router: &axum::Router,
    uri: &str,
    cookie: &str,
    bearer: Option<&str>,
) -> Result<String> {
    let mut req = Request::builder().uri(uri).header("cookie", cookie);
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = router.clone().oneshot(req.body(Body::empty())?).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    ensure!(status == StatusCode::OK, "{uri}: {status}");
    Ok(String::from_utf8(bytes.to_vec())?)
}

/// The dashboard requests measured: label, URI, and the store query the page makes.
fn requests(next_cursor: &str) -> Vec<(String, String, StockPageQuery)> {
    let query = |site: Option<&str>, sort, descending| StockPageQuery {
        filter: StockFilter {
            site: site.map(Into::into),
            ..StockFilter::default()
        },
        sort,
        descending,
        start: StockPageStart::First,
        limit: PAGE,
    };
    vec![
        (
            "first page, default sort (location)".into(),
            "/stock".into(),
            query(None, StockSort::Location, false),
        ),
        (
            "sorted by qty, descending".into(),
            "/stock?sort=qty&dir=desc".into(),
            query(None, StockSort::Qty, true),
        ),
        (
            "filtered by site (WH2)".into(),
            "/stock?site=WH2".into(),
            query(Some("WH2"), StockSort::Location, false),
        ),
        (
            "site WH2 sorted by expiry".into(),
            "/stock?site=WH2&sort=expiry".into(),
            query(Some("WH2"), StockSort::Expiry, false),
        ),
        (
            "second page (next link of the first)".into(),
            next_cursor.to_string(),
            query(None, StockSort::Location, false),
        ),
    ]
}

async fn bench(backend: &str, store: Arc<dyn Store>, out: &mut Vec<String>) -> Result<()> {
    let started = Instant::now();
    let rows = tokio::task::block_in_place(|| fill(&*store))?;
    let filled = started.elapsed();
    let all = tokio::task::block_in_place(|| store.stock(&StockFilter::default()))?;
    ensure!(
        all.len() == rows,
        "{} rows in stock, {rows} pushed",
        all.len()
    );
    eprintln!(
        "{backend}: {rows} stock rows filled in {:.1} s",
        filled.as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let devices = Arc::new(Devices::open(&dir.path().join("devices"))?);
    let admin = AdminToken::from_secret(ADMIN);
    let cookie = format!(
        "{SESSION_COOKIE}={}",
        SessionKey::new(&admin).issue(time::OffsetDateTime::now_utc())
    );
    let router = app(AppState::new(store.clone(), devices, admin));
    let first = get(&router, "/stock", &cookie, None).await?;
    let next = first
        .split("id=\"next-page\" rel=\"next\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .context("the first page has a next link")?
        .replace("&amp;", "&")
        .replace("&quot;", "\"");
    for (label, uri, query) in requests(&next) {
        let html = get(&router, &uri, &cookie, None).await?;
        let shown = html.matches("data-test=\"stock-row\"").count();
        ensure!(shown == PAGE, "{uri}: {shown} rows on the page");
        let page_ms =
            time_async(|| async { get(&router, &uri, &cookie, None).await.map(drop) }).await?;
        // The same query straight on the store (the "after" cursor of the second page is the page's own).
        let mut query = query;
        if uri.contains("after=") {
            // The PostgreSQL client blocks: never on an async worker.
            let page = tokio::task::block_in_place(|| store.stock_page(&query))?;
            query.start = StockPageStart::After(page.rows.last().context("rows")?.clone());
        }
        let store_ms = time_async(|| {
            let (store, query) = (store.clone(), query.clone());
            async move {
                tokio::task::spawn_blocking(move || store.stock_page(&query)).await??;
                Ok(())
            }
        })
        .await?;
        eprintln!("{backend} {label}: page {page_ms:.2?} ms; store {store_ms:.2?} ms");
        let (page, raw) = (median(page_ms), median(store_ms));
        out.push(format!(
            "| {backend} | {label} | {page:.2} | {raw:.2} | {:.1}× | {} |",
            page / raw,
            if page <= TARGET_MS {
                "≤ 200 ms: met"
            } else {
                "≤ 200 ms: MISSED"
            }
        ));
    }
    let json_ms = time_async(|| async {
        get(&router, "/v1/stock?site=WH2", "", Some(ADMIN))
            .await
            .map(drop)
    })
    .await?;
    eprintln!("{backend} JSON /v1/stock?site=WH2: {json_ms:.2?} ms");
    out.push(format!(
        "| {backend} | baseline: `GET /v1/stock?site=WH2` (JSON, all {} rows of the site) | {:.2} | | | |",
        rows / SITES,
        median(json_ms)
    ));
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut backends = vec!["sled", "postgres"];
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {}
        [flag, b] if flag == "--backend" && (b == "sled" || b == "postgres") => {
            backends.retain(|x| x == b)
        }
        _ => bail!("usage: dockhand-dashboard-bench [--backend sled|postgres]"),
    }
    let mut out = vec![
        "| backend | request (100,000 stock rows) | page, median ms | store query alone, median ms | page / store | target |".to_string(),
        "| --- | --- | --- | --- | --- | --- |".to_string(),
    ];
    for backend in backends {
        match backend {
            "sled" => {
                let dir = tempfile::tempdir()?;
                let store: Arc<dyn Store> = Arc::new(SledStore::open(
                    &dir.path().join("sled"),
                    dockhand_server::store::sled::DEFAULT_CACHE_BYTES,
                )?);
                bench("sled", store, &mut out).await?;
            }
            _ => {
                let db = tokio::task::block_in_place(pg::database);
                let url = db.url();
                let store: Arc<dyn Store> =
                    Arc::new(tokio::task::block_in_place(|| PgStore::open(&url, 4))?);
                bench("PostgreSQL", store.clone(), &mut out).await?;
                // The synchronous client's connections must close off the async workers.
                tokio::task::block_in_place(move || drop(store));
                drop(db);
            }
        }
    }
    for line in out {
        println!("{line}");
    }
    Ok(())
}
