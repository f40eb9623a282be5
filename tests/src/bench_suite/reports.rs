//! Reports over a year of a busy site on PostgreSQL (issue 9): the time each report takes to answer.
//!
//! A throw-away cluster (server/tests/pg) gets one year of history for one site written straight into the tables
//! in the shape `PgStore` writes them (movements with their `body` extras, one `pushes` row per 100 movements of a
//! device, and the stock those movements sum to), by `INSERT ... SELECT generate_series`: pushing 10 million
//! movements through the store would take longer than the measurement. Then each report is computed through the
//! store, as the API does, over the whole year.
//!
//! The history: 20 devices, 50 operators, 2,000 items, 500 locations; movements in groups of five (receive 12
//! units at the dock, put them away, pick 4, pick 4, ship 3: one unit stays), every tenth receipt read by the gate (an EPC
//! source), evenly spread over 365 days.

use std::time::Instant;

use anyhow::{Context, Result};
use dockhand_server::reports::{self, Period};
use dockhand_server::{PgStore, StockFilter, Store};
use time::macros::datetime;
use time::Duration;

use super::markdown::{duration_ns, Table};

#[path = "../../../server/tests/pg/mod.rs"]
mod pg;

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Movements in the year.
    pub movements: u64,
    /// Timed runs per report (the median is reported); a report slower than [`ONE_RUN_ABOVE_SECS`] runs once.
    pub runs: usize,
}

/// The target per report.
pub const TARGET_SECS: f64 = 2.0;
/// A report that misses the target by this much is not run again: its median would say nothing new.
const ONE_RUN_ABOVE_SECS: f64 = 10.0;

impl Config {
    /// The load: 10 million movements.
    pub fn full() -> Config {
        Config {
            movements: 10_000_000,
            runs: 3,
        }
    }

    /// A smoke run.
    pub fn quick() -> Config {
        Config {
            movements: 100_000,
            runs: 1,
        }
    }
}

const DEVICES: u64 = 20;
const SITE: &str = "WH1";

/// Fills the history (see the module docs) into the database behind `url`.
fn fill(url: &str, n: u64) -> Result<()> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).context("connect")?;
    let n = i64::try_from(n - n % (DEVICES * 5))?;
    c.batch_execute("SET synchronous_commit = off")?;
    c.execute(
        "INSERT INTO movements (device_id, seq, site, at, kind, gtin, lot, from_location, to_location, reference, qty, body)
         SELECT 'hh-' || lpad((i % 20)::text, 2, '0'), i / 20 + 1, $2,
                timestamptz '2025-01-01 00:00:00+00' + (i * (365 * 86400000000 / $1::bigint)) * interval '1 microsecond',
                (ARRAY['receive','putaway','pick','pick','ship'])[i % 5 + 1],
                lpad(((i / 5) % 2000)::text, 14, '0'), NULL,
                CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN 'DOCK' ELSE 'L-' || ((i / 5) % 500) END,
                CASE i % 5 WHEN 0 THEN 'DOCK' WHEN 1 THEN 'L-' || ((i / 5) % 500) ELSE NULL END,
                NULL,
                CASE i % 5 WHEN 0 THEN 12 WHEN 1 THEN 12 WHEN 4 THEN 3 ELSE 4 END,
                CASE WHEN i % 5 = 0 AND (i / 5) % 10 = 0
                     THEN '{\"source\":{\"type\":\"epc\",\"epc\":\"3074257BF7194E4000001A85\"}}'
                     ELSE '{\"operator\":\"op-' || (i % 50) || '\",\"source\":{\"type\":\"barcode\",\"raw\":\"x\"}}'
                END
         FROM generate_series(0::bigint, $1::bigint - 1) AS i",
        &[&n, &SITE],
    )?;
    let per_device = n / DEVICES as i64;
    c.execute(
        "INSERT INTO pushes (server_seq, device_id, seq, n, site)
         SELECT (b * 20 + d) * 100 + 1, 'hh-' || lpad(d::text, 2, '0'), b * 100 + 1, least(100, $1::bigint - b * 100), $2::text
         FROM generate_series(0::bigint, ($1::bigint - 1) / 100) AS b, generate_series(0::bigint, 19) AS d",
        &[&per_device, &SITE],
    )?;
    c.execute(
        "INSERT INTO device_hw (device_id, hw) SELECT 'hh-' || lpad(d::text, 2, '0'), $1::bigint FROM generate_series(0, 19) AS d",
        &[&per_device],
    )?;
    c.execute(
        "INSERT INTO stock (site, location, gtin, lot_key, lot, qty)
         SELECT site, loc, gtin, '', NULL, sum(delta) FROM (
             SELECT site, from_location AS loc, gtin, -qty AS delta FROM movements WHERE from_location IS NOT NULL
             UNION ALL
             SELECT site, to_location, gtin, qty FROM movements WHERE to_location IS NOT NULL
         ) e GROUP BY site, loc, gtin",
        &[],
    )?;
    // Expiry dates spread over the three months around the year's end, so the expiry report has rows to find.
    c.execute(
        "UPDATE stock SET expiry = to_char(date '2025-12-01' + abs(hashtext(gtin || location)) % 90, 'YYYY-MM-DD')",
        &[],
    )?;
    c.batch_execute("ANALYZE")?;
    Ok(())
}

/// Runs the section: one row per report with its median time.
pub fn run(cfg: &Config) -> Result<(Table, Vec<String>)> {
    let db = pg::database();
    let mut log = Vec::new();
    let store = PgStore::open(&db.url(), 4).context("open the PostgreSQL store")?;
    let t = Instant::now();
    fill(&db.url(), cfg.movements)?;
    log.push(format!(
        "filled {} movements in {:.1} s",
        cfg.movements,
        t.elapsed().as_secs_f64()
    ));
    let since = datetime!(2025-01-01 00:00 UTC);
    let period = Period::new(since, since + Duration::days(365))?;
    let end = period.until();
    let filter = StockFilter {
        site: Some(SITE.into()),
        ..StockFilter::default()
    };
    type Job<'a> = Box<dyn Fn() -> Result<usize> + 'a>;
    let s: &dyn Store = &store;
    let jobs: Vec<(&str, Job<'_>)> = vec![
        (
            "productivity (year)",
            Box::new(|| Ok(reports::load_productivity(s, SITE, period)?.by_device.len())),
        ),
        (
            "dock-to-stock (year)",
            Box::new(|| Ok(reports::load_dock_to_stock(s, SITE, period)?.days.len())),
        ),
        (
            "inventory (as of year end)",
            Box::new(|| Ok(reports::load_inventory(s, &filter, end)?.rows.len())),
        ),
        (
            "turnover (year)",
            Box::new(|| Ok(reports::load_turnover(s, SITE, period)?.len())),
        ),
        (
            "expiry (as of year end, 30 days)",
            Box::new(|| Ok(reports::load_expiry(s, SITE, end, 30)?.rows.len())),
        ),
    ];
    let mut table = Table {
        header: vec![
            "report".into(),
            "median".into(),
            "runs".into(),
            "rows".into(),
            format!("≤ {TARGET_SECS} s"),
        ],
        rows: Vec::new(),
    };
    for (name, job) in &jobs {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..cfg.runs.max(1) {
            let t = Instant::now();
            rows = job()?;
            let secs = t.elapsed().as_secs_f64();
            log.push(format!("{name}: {secs:.3} s, {rows} rows"));
            eprintln!("{name}: {secs:.3} s, {rows} rows");
            times.push(secs);
            if secs > ONE_RUN_ABOVE_SECS {
                break;
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        table.rows.push(vec![
            (*name).into(),
            duration_ns(median * 1e9),
            times.len().to_string(),
            rows.to_string(),
            if median <= TARGET_SECS {
                "yes"
            } else {
                "**no**"
            }
            .into(),
        ]);
    }
    drop(jobs);
    drop(store);
    Ok((table, log))
}
