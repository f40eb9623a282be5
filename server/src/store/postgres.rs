//! [`Store`] on PostgreSQL: several stateless server nodes share one database (issue 6, DESIGN §1).
//!
//! # Schema (`server/migrations/*.sql`, applied by [`PgStore::open`])
//!
//! ```text
//! schema_migrations (version pk, name, applied_at)             which migration files ran
//! device_hw      (device_id pk, hw)                             per-device high-water mark; THE push lock
//! movements      ((device_id, seq) pk, site, at, kind, gtin, lot, from_location, to_location, reference, qty,
//!                 body text)                                     index (site, gtin, at)
//! pushes         (server_seq pk, device_id, seq, n, site, received_at)   one row per push: its server_seq range
//! stock          ((site, location, gtin, lot_key) pk, lot, qty, expiry) lot_key = '' (no lot) | '+' || lot;
//!                 fillfactor 30
//! asn_received   ((asn_id, gtin, lot_key) pk, qty)             units received against an ASN
//! sites          (code pk, body jsonb)
//! items          (gtin pk, body jsonb)
//! locations      ((site, code) pk, body jsonb)
//! asns           (id pk, site, status, body jsonb)
//! pick_lists     (id pk, site, status, body jsonb)
//! changes        (change_seq unique, (entity_kind, entity_id) pk, site NULL = global, body jsonb)
//! discrepancies  (id bigserial pk, site, kind, status, body jsonb)
//! reorder_rules  ((site, gtin) pk, body jsonb)                 replenishment rules (issue 9)
//! devices        (device_id pk, site, token_sha256 unique, enrolled_at, revoked_at, last_seen, backlog,
//!                 backlog_at, user_agent)                       the device registry (devices/postgres.rs)
//! ```
//!
//! Why it looks like this:
//! - `(device_id, seq)` is a movement's identity (DESIGN §2), so it is the primary key: a second insert of the
//!   same movement cannot happen even if the locking below were wrong. The columns hold the movement's fields
//!   that queries use (history filters, stock as of a time, book quantity at a count); `body` is a JSON object
//!   with the rest (expiry, serials, sscc, operator, source) and `at` only when the column cannot hold it exactly
//!   (an offset other than UTC, or digits below the microsecond). A movement is read back from both, so a replay
//!   is compared by value with the pushed movement, exactly as the sled backend does. Rows stored before this
//!   format have the whole movement as `body`; its other fields equal their columns, so the same reader serves
//!   both. (Not repeating the columns in `body` takes a bench receipt's row from about 380 to 235 bytes.)
//! - `stock.expiry` (migration 4) is the first expiry date a movement touching the row carried: set when the row
//!   is created or while it is still NULL, never overwritten.
//! - Key texts are `COLLATE "C"` so `ORDER BY` is byte order: both backends list stock in the same order.
//! - "No lot" must stay distinct from an empty lot. `lot_key` ('' or '+' followed by the lot) keeps the primary key
//!   free of NULLs and sorts "no lot" first; a CHECK ties it to the nullable `lot` column that is returned.
//! - Stock rows that sum to zero stay (qty 0) so every key a push touches has a row to lock; readers skip them.
//! - `changes` holds one row per entity: writing the entity again gives its row a new `change_seq`, so a device
//!   pulling from cursor 0 gets a compact snapshot. Writers take [`FEED_LOCK`] (a transaction advisory lock)
//!   before drawing a `change_seq`, so sequence order is commit order and a cursor never jumps over a change that
//!   commits late.
//! - `discrepancies.body` is the whole record as JSON; the `id` and `status` columns are the truth.
//! - The history's numbering (`server_seq`) is kept per push (migration 7): a push reserves one contiguous range
//!   for its new movements (`reserve_server_seq`: a sequence, advanced under a lock held for microseconds) and
//!   records it as one `pushes` row; movement `pushes.seq + i` has `server_seq` `pushes.server_seq + i`. A page
//!   of the history reads `pushes` in order and each push's movements by the movements primary key. A number
//!   per movement with a unique index cost every movement an index entry, a `nextval` and 16 bytes, for an
//!   order nothing but these pages reads. Numbers are drawn when a push writes, not when it commits: two pushes
//!   of different devices may commit in the other order. The history is exact for any page read after the
//!   pushes it covers have committed; serialising every push on one lock to make the numbering follow commits
//!   exactly would cost all ingest concurrency, so only the change feed (which devices resume from) pays for
//!   that.
//! - `movements_reference` (migrations 6 and 7) indexes the movements that name a document, by reference then
//!   `(device_id, seq)`: an ASN's or pick list's own movements without a walk through the history; their
//!   `server_seq` comes from `pushes_device` (one entry per push). Partial, so movements naming no document cost
//!   ingest nothing more.
//!
//! # Ingest (one transaction per batch, set-based)
//!
//! 1. `INSERT INTO device_hw ... ON CONFLICT DO UPDATE SET hw = hw RETURNING hw`: creates the device's row if
//!    needed and locks it (the no-op update takes the row lock and returns the latest committed mark). Every push
//!    of one device, on any node, waits here for the previous one to commit. Of two nodes receiving the same
//!    batch at the same moment, one applies it and the other then finds it below the high-water mark: a replay.
//! 2. Gap check; replayed movements (seq <= hw) are fetched with one `seq = ANY($1)` query and compared.
//! 3. Only when the batch needs them: the documents it names (ASNs locked `FOR UPDATE` in id order, so two docks
//!    receiving one ASN count it in turn; pick lists read `FOR SHARE`, their status must not change under us),
//!    the ASN counters, and the book quantity at each count's time over stored movements.
//! 4. The new movements go in with one binary `COPY` (PostgreSQL inserts a COPY's rows in groups, a WAL record
//!    per page instead of per row, and parses no arrays); while PostgreSQL stores them, the server builds the
//!    next statement's parameters.
//! 5. One statement (data-modifying CTEs) does the rest of the writing and returns the remaining facts: the new
//!    high-water mark, the push's `pushes` row (its server_seq range), the stock deltas aggregated per key as one upsert in key order (creating missing keys, so
//!    every key is locked; setting `expiry` where it is NULL) `RETURNING` the quantity after the batch of the
//!    keys it takes stock out of (the only ones reconciliation judges), and the known items and known locations
//!    among those the batch names. Since the stock rows stay locked until COMMIT, a key's quantity before the
//!    batch is the returned one minus the batch's own delta.
//! 6. The batch's running effects are replayed in Rust, movement by movement, so every movement is judged on the
//!    state just before it, as sled does; then the ASN counters are upserted and the discrepancies inserted (each
//!    only when there are any), and COMMIT.
//!
//! A batch of receipts without references therefore costs BEGIN, the lock, the COPY (two round trips: its start,
//! then the data), one statement and COMMIT: six round trips, of about 20 µs each on a local socket. The
//! statements of this path (the COPY included, and the device token lookup) are prepared once per pooled
//! connection ([`Statements`]), not parsed and planned again for every batch.
//!
//! Deadlocks are avoided by lock order (device row, then ASNs by id, then stock keys in key order); a deadlock or
//! serialization failure reported anyway is retried, as is a push whose connection broke (a push is idempotent).
//!
//! `stock` has `fillfactor = 30` (migration 3): every push updates each key it touches, and with free room on the
//! page those updates are HOT (no new `stock_pkey` entry). With full pages, concurrent pushes of one site made
//! almost every update a non-HOT one and the table and its index grew eightfold during the ingest benchmark.
//!
//! # Durability and recovery
//!
//! Every connection runs with `synchronous_commit` at least `on` (it is raised if the server default is `off`),
//! so COMMIT returns only when the WAL is flushed, and `push` answers `Acked` only after COMMIT. A node that dies
//! mid-batch leaves an open transaction that PostgreSQL rolls back; the device pushes again. Nodes keep no state
//! apart from their connection pool.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use dockhand_protocol::sync::{
    Asn, Change, DocStatus, Item, Location, Movement, MovementKind, MovementSource, PickList,
    PullResponse, ScanStat,
};
use postgres::error::SqlState;
use postgres::{Client, GenericClient, NoTls, Transaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::reconcile::{self, Document, Draft, Facts};
use crate::store::{
    check_batch, check_push, Comment, Discrepancy, DiscrepancyCount, DiscrepancyFilter,
    DiscrepancyStatus, MovementFilter, MovementPage, MovementRef, PushOutcome, Pushed, Resolution,
    Site, StockFilter, StockRow, Store, StoreError, StoredMovement, OFFICE_DEVICE,
};
use crate::store::{HourCounter, HourlyCounts, ReceivedLot, SiteScanStat};
use crate::store::{ReorderRule, StockPage, StockPageQuery, StockPageStart, StockSort};
use crate::webhooks::OfficeEvent;

#[path = "postgres_webhooks.rs"]
mod webhooks;

/// Migration files, in order. A database that has a version this binary does not know is refused.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (
        2,
        "devices",
        include_str!("../../migrations/0002_devices.sql"),
    ),
    (
        3,
        "stock_fillfactor",
        include_str!("../../migrations/0003_stock_fillfactor.sql"),
    ),
    (
        4,
        "stock_expiry",
        include_str!("../../migrations/0004_stock_expiry.sql"),
    ),
    (
        5,
        "device_version",
        include_str!("../../migrations/0005_device_version.sql"),
    ),
    (
        6,
        "movements_reference",
        include_str!("../../migrations/0006_movements_reference.sql"),
    ),
    (
        7,
        "pushes",
        include_str!("../../migrations/0007_pushes.sql"),
    ),
    (
        8,
        "scan_stats",
        include_str!("../../migrations/0008_scan_stats.sql"),
    ),
    (
        9,
        "webhooks",
        include_str!("../../migrations/0009_webhooks.sql"),
    ),
    (
        10,
        "reorder_rules",
        include_str!("../../migrations/0010_reorder_rules.sql"),
    ),
];

/// Advisory lock held while migrating, so nodes starting together do not race (ASCII "dockmigr").
const MIGRATION_LOCK: i64 = 0x646f_636b_6d69_6772;
/// Advisory lock held by every change-feed writer until it commits (ASCII "dockfeed").
const FEED_LOCK: i64 = 0x646f_636b_6665_6564;

/// Default number of connections one node keeps to the database.
pub const DEFAULT_MAX_CONNECTIONS: usize = 8;

/// How often an operation is tried when PostgreSQL reports a transient failure.
const MAX_ATTEMPTS: u32 = 5;

/// The PostgreSQL-backed store. Cheap to share behind an `Arc`.
pub struct PgStore {
    pool: Pool,
    /// The webhook dispatch lock's connection (postgres_webhooks.rs).
    leader: Mutex<webhooks::Leader>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("max_connections", &self.pool.max)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (libpq key=value form such as `host=db user=dockhand dbname=dockhand`, or a
    /// `postgresql://` URL), applies pending migrations and keeps up to `max_connections` connections.
    pub fn open(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Postgres(format!("postgres_url: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("dockhand-server");
        }
        let pool = Pool {
            config,
            max: max_connections.max(1),
            state: Mutex::new(PoolState::default()),
            freed: Condvar::new(),
        };
        let store = PgStore {
            pool,
            leader: Mutex::default(),
        };
        store.with_conn(true, migrate)?;
        Ok(store)
    }

    /// Runs `op` on a pooled connection, retrying transient failures (and broken connections when the
    /// operation may safely run twice).
    fn with_conn<T>(
        &self,
        idempotent: bool,
        mut op: impl FnMut(&mut Client) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        self.with_conn_cached(idempotent, |client, _| op(client))
    }

    /// [`with_conn`](Self::with_conn), also handing `op` the connection's prepared statements.
    fn with_conn_cached<T>(
        &self,
        idempotent: bool,
        mut op: impl FnMut(&mut Client, &mut Statements) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.pool.get()?;
            let (client, statements) = conn.parts();
            let err = match op(client, statements) {
                Ok(v) => return Ok(v),
                Err(Fail::Store(e)) => return Err(e),
                Err(Fail::Pg(e)) => e,
            };
            let transient = matches!(
                err.code(),
                Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
            );
            // A session PostgreSQL ends (restart, pg_terminate_backend) may report a FATAL before the socket is
            // seen closed: that connection is gone too, and must not go back to the pool.
            let broken = err.is_closed()
                || conn.client().is_closed()
                || matches!(
                    err.code(),
                    Some(c) if *c == SqlState::ADMIN_SHUTDOWN || *c == SqlState::CRASH_SHUTDOWN
                );
            if broken {
                conn.discard();
            }
            if attempt >= MAX_ATTEMPTS || !(transient || (broken && idempotent)) {
                return Err(pg_error(&err));
            }
            tracing::warn!(attempt, error = %pg_error(&err), "PostgreSQL operation failed; retrying");
            drop(conn);
            std::thread::sleep(Duration::from_millis(10 * u64::from(attempt)));
        }
    }

    /// Runs `op` on a pooled connection for another part of the server that keeps its data in this database (the
    /// device registry), with the same retries as the store's own operations: transient failures always, broken
    /// connections only when `idempotent`.
    pub(crate) fn with_client<T>(
        &self,
        idempotent: bool,
        mut op: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        self.with_conn(idempotent, |client| op(client).map_err(Fail::Pg))
    }

    /// Runs `sql`, prepared once per pooled connection, through `op`, with the retries of
    /// [`with_client`](Self::with_client). For the statements every request runs (the device token lookup).
    pub(crate) fn with_prepared<T>(
        &self,
        idempotent: bool,
        sql: &'static str,
        mut op: impl FnMut(&mut Client, &postgres::Statement) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        self.with_conn_cached(idempotent, |client, statements| {
            let statement = statements.get(client, sql)?;
            op(client, &statement).map_err(Fail::Pg)
        })
    }

    /// Runs `op` in a transaction and commits it.
    fn in_tx<T>(
        &self,
        idempotent: bool,
        mut op: impl FnMut(&mut Transaction<'_>) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        self.in_tx_cached(idempotent, |tx, _| op(tx))
    }

    /// [`in_tx`](Self::in_tx), also handing `op` the connection's prepared statements.
    fn in_tx_cached<T>(
        &self,
        idempotent: bool,
        mut op: impl FnMut(&mut Transaction<'_>, &mut Statements) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        self.with_conn_cached(idempotent, |client, statements| {
            let mut tx = client.transaction()?;
            let out = op(&mut tx, statements)?;
            tx.commit()?;
            Ok(out)
        })
    }
}

/// Applies the migrations this database lacks, under [`MIGRATION_LOCK`].
fn migrate(client: &mut Client) -> Result<(), Fail> {
    let mut tx = client.transaction()?;
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))?;
    let done: HashSet<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let known = MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0);
    if let Some(newer) = done.iter().find(|v| **v > known) {
        return Err(StoreError::Postgres(format!(
            "the database has schema version {newer}, newer than this dockhand-server knows ({known}); upgrade the server"
        ))
        .into());
    }
    for (version, name, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )?;
        tracing::info!(version, name, "applied PostgreSQL migration");
    }
    tx.commit()?;
    Ok(())
}

impl Store for PgStore {
    fn push(
        &self,
        site: &str,
        device_id: &str,
        movements: &[Movement],
    ) -> Result<PushOutcome, StoreError> {
        Ok(self
            .push_reporting_mark(site, device_id, movements)?
            .outcome)
    }

    fn high_water(&self, device_id: &str) -> Result<u64, StoreError> {
        self.with_conn(true, |c| {
            let row = c.query_opt(
                "SELECT hw FROM device_hw WHERE device_id = $1",
                &[&device_id],
            )?;
            Ok(row.map_or(0, |r| to_u64(r.get(0))))
        })
    }

    fn stock(&self, filter: &StockFilter) -> Result<Vec<StockRow>, StoreError> {
        self.with_conn(true, |c| {
            let rows = c.query(
                "SELECT site, location, gtin, lot, qty, expiry FROM stock
                 WHERE qty <> 0
                   AND ($1::text IS NULL OR site = $1) AND ($2::text IS NULL OR location = $2)
                   AND ($3::text IS NULL OR gtin = $3) AND ($4::text IS NULL OR lot = $4)
                 ORDER BY site, location, gtin, lot_key",
                &[&filter.site, &filter.location, &filter.gtin, &filter.lot],
            )?;
            Ok(rows.iter().map(stock_row).collect())
        })
    }

    fn movement(&self, device_id: &str, seq: u64) -> Result<Option<Movement>, StoreError> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(None);
        };
        self.with_conn(true, |c| {
            let row = c.query_opt(
                &format!(
                    "SELECT {MOVEMENT_COLUMNS} FROM movements m WHERE device_id = $1 AND seq = $2"
                ),
                &[&device_id, &seq],
            )?;
            match row {
                Some(r) => Ok(Some(movement_row(&r, 0)?)),
                None => Ok(None),
            }
        })
    }

    fn movement_count(&self) -> Result<u64, StoreError> {
        self.with_conn(true, |c| {
            let row = c.query_one("SELECT count(*) FROM movements", &[])?;
            Ok(to_u64(row.get(0)))
        })
    }

    fn stock_as_of(
        &self,
        filter: &StockFilter,
        at: OffsetDateTime,
    ) -> Result<Vec<StockRow>, StoreError> {
        self.with_conn(true, |c| {
            let rows = c.query(
                // As-of rows show the expiry known now: it is set once per row and never changes.
                "SELECT e.site, e.location, e.gtin, e.lot, e.qty, s.expiry FROM (
                     SELECT site, location, gtin, lot, sum(d)::bigint AS qty FROM (
                         SELECT site, from_location AS location, gtin, lot, -qty AS d FROM movements
                         WHERE kind <> 'count' AND from_location IS NOT NULL AND at <= $1
                         UNION ALL
                         SELECT site, to_location, gtin, lot, qty FROM movements
                         WHERE kind <> 'count' AND to_location IS NOT NULL AND at <= $1
                     ) d
                     WHERE ($2::text IS NULL OR site = $2) AND ($3::text IS NULL OR location = $3)
                       AND ($4::text IS NULL OR gtin = $4) AND ($5::text IS NULL OR lot = $5)
                     GROUP BY site, location, gtin, lot
                     HAVING sum(d) <> 0
                 ) e
                 LEFT JOIN stock s ON s.site = e.site AND s.location = e.location AND s.gtin = e.gtin
                     AND s.lot_key = CASE WHEN e.lot IS NULL THEN '' ELSE '+' || e.lot END
                 ORDER BY e.site, e.location, e.gtin, e.lot NULLS FIRST",
                &[
                    &at,
                    &filter.site,
                    &filter.location,
                    &filter.gtin,
                    &filter.lot,
                ],
            )?;
            Ok(rows.iter().map(stock_row).collect())
        })
    }

    fn movements(
        &self,
        filter: &MovementFilter,
        after: u64,
        limit: usize,
    ) -> Result<MovementPage, StoreError> {
        let after = to_i64(after);
        let fetch = to_i64(limit as u64).saturating_add(1);
        let kind = filter.kind.map(|k| k.as_str());
        self.with_conn(true, |c| {
            let rows = c.query(
                &format!(
                    // The push holding `after` (or the last one before it), then every later push in order, each
                    // push's movements in seq order; see migration 7.
                    "SELECT p.server_seq + (m.seq - p.seq), m.site, p.received_at, {MOVEMENT_COLUMNS}
                 FROM pushes p
                 JOIN movements m ON m.device_id = p.device_id AND m.seq >= p.seq AND m.seq < p.seq + p.n
                 WHERE p.server_seq >= COALESCE((SELECT max(server_seq) FROM pushes WHERE server_seq <= $1), 0)
                   AND m.seq - p.seq > $1 - p.server_seq
                   AND ($2::text IS NULL OR p.site = $2) AND ($3::text IS NULL OR p.device_id = $3)
                   AND ($4::text IS NULL OR m.gtin = $4)
                   AND ($5::text IS NULL OR m.from_location = $5 OR m.to_location = $5)
                   AND ($6::text IS NULL OR m.kind = $6)
                   AND ($7::timestamptz IS NULL OR m.at >= $7) AND ($8::timestamptz IS NULL OR m.at < $8)
                 ORDER BY p.server_seq, m.seq LIMIT $9"
                ),
                &[
                    &after,
                    &filter.site,
                    &filter.device_id,
                    &filter.gtin,
                    &filter.location,
                    &kind,
                    &filter.since,
                    &filter.until,
                    &fetch,
                ],
            )?;
            let more = rows.len() > limit;
            let mut movements = Vec::with_capacity(rows.len().min(limit));
            for r in rows.iter().take(limit) {
                movements.push(StoredMovement {
                    server_seq: to_u64(r.get(0)),
                    site: r.get(1),
                    received_at: r.get(2),
                    movement: movement_row(r, 3)?,
                });
            }
            let next = more.then(|| {
                movements
                    .last()
                    .map_or(to_u64(after), |m: &StoredMovement| m.server_seq)
            });
            Ok(MovementPage { movements, next })
        })
    }

    fn put_site(&self, site: &Site) -> Result<(), StoreError> {
        let body = encode(site)?;
        self.in_tx(true, |tx| {
            tx.execute(
                "INSERT INTO sites (code, body) VALUES ($1, $2::text::jsonb)
                 ON CONFLICT (code) DO UPDATE SET body = EXCLUDED.body",
                &[&site.code, &body],
            )?;
            Ok(())
        })
    }

    fn sites(&self) -> Result<Vec<Site>, StoreError> {
        self.with_conn(true, |c| {
            c.query("SELECT body::text FROM sites ORDER BY code", &[])?
                .iter()
                .map(|r| decode("sites", r.get(0)).map_err(Fail::from))
                .collect()
        })
    }

    fn put_items(&self, items: &[Item]) -> Result<(), StoreError> {
        // One row per GTIN (the last one wins, as if written in order): an upsert may not touch a row twice.
        let mut latest: BTreeMap<&str, &Item> = BTreeMap::new();
        for item in items {
            latest.insert(&item.gtin, item);
        }
        let gtins: Vec<&str> = latest.keys().copied().collect();
        let bodies = latest.values().map(encode).collect::<Result<Vec<_>, _>>()?;
        let changes = latest
            .values()
            .map(|i| encode(&Change::Item((*i).clone())))
            .collect::<Result<Vec<_>, _>>()?;
        self.in_tx(true, |tx| {
            lock_feed(tx)?;
            tx.execute(
                "INSERT INTO items (gtin, body)
                 SELECT g, b::jsonb FROM unnest($1::text[], $2::text[]) AS u(g, b)
                 ON CONFLICT (gtin) DO UPDATE SET body = EXCLUDED.body",
                &[&gtins, &bodies],
            )?;
            let sites: Vec<Option<&str>> = vec![None; gtins.len()];
            append_changes(tx, "item", &gtins, &sites, &changes)
        })
    }

    fn item(&self, gtin: &str) -> Result<Option<Item>, StoreError> {
        self.with_conn(true, |c| {
            match c.query_opt("SELECT body::text FROM items WHERE gtin = $1", &[&gtin])? {
                Some(r) => Ok(Some(decode("items", r.get(0))?)),
                None => Ok(None),
            }
        })
    }

    fn items(&self, after: Option<&str>, limit: usize) -> Result<Vec<Item>, StoreError> {
        let limit = to_i64(limit as u64);
        self.with_conn(true, |c| {
            c.query(
                "SELECT body::text FROM items WHERE ($1::text IS NULL OR gtin > $1)
                 ORDER BY gtin LIMIT $2",
                &[&after, &limit],
            )?
            .iter()
            .map(|r| decode("items", r.get(0)).map_err(Fail::from))
            .collect()
        })
    }

    fn put_locations(&self, site: &str, locations: &[Location]) -> Result<(), StoreError> {
        let mut latest: BTreeMap<&str, &Location> = BTreeMap::new();
        for l in locations {
            latest.insert(&l.code, l);
        }
        let codes: Vec<&str> = latest.keys().copied().collect();
        let bodies = latest.values().map(encode).collect::<Result<Vec<_>, _>>()?;
        let changes = latest
            .values()
            .map(|l| encode(&Change::Location((*l).clone())))
            .collect::<Result<Vec<_>, _>>()?;
        // A location's identity is (site, code); JSON makes the pair one unambiguous text.
        let ids = codes
            .iter()
            .map(|c| encode(&(site, c)))
            .collect::<Result<Vec<_>, _>>()?;
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.in_tx(true, |tx| {
            lock_feed(tx)?;
            tx.execute(
                "INSERT INTO locations (site, code, body)
                 SELECT $1, c, b::jsonb FROM unnest($2::text[], $3::text[]) AS u(c, b)
                 ON CONFLICT (site, code) DO UPDATE SET body = EXCLUDED.body",
                &[&site, &codes, &bodies],
            )?;
            let sites: Vec<Option<&str>> = vec![Some(site); codes.len()];
            append_changes(tx, "location", &id_refs, &sites, &changes)
        })
    }

    fn locations(&self, site: &str) -> Result<Vec<Location>, StoreError> {
        self.with_conn(true, |c| {
            c.query(
                "SELECT body::text FROM locations WHERE site = $1 ORDER BY code",
                &[&site],
            )?
            .iter()
            .map(|r| decode("locations", r.get(0)).map_err(Fail::from))
            .collect()
        })
    }

    fn put_asn(&self, asn: &Asn) -> Result<(), StoreError> {
        let body = encode(asn)?;
        let change = encode(&doc_change(&asn.id, asn.status, || {
            Change::Asn(asn.clone())
        }))?;
        self.in_tx(true, |tx| {
            lock_feed(tx)?;
            put_document(tx, Doc::Asn, &asn.id, &asn.site, asn.status, &body)?;
            append_changes(
                tx,
                "asn",
                &[asn.id.as_str()],
                &[Some(asn.site.as_str())],
                std::slice::from_ref(&change),
            )
        })
    }

    fn asn(&self, id: &str) -> Result<Option<Asn>, StoreError> {
        self.with_conn(true, |c| get_document(c, Doc::Asn, id))
    }

    fn asns(&self, site: &str, status: Option<DocStatus>) -> Result<Vec<Asn>, StoreError> {
        self.with_conn(true, |c| list_documents(c, Doc::Asn, site, status))
    }

    fn set_asn_status(&self, id: &str, status: DocStatus) -> Result<Option<Asn>, StoreError> {
        self.in_tx(false, |tx| {
            lock_feed(tx)?;
            let Some(mut asn) = lock_document::<Asn>(tx, Doc::Asn, id)? else {
                return Ok(None);
            };
            check_transition(id, asn.status, status)?;
            asn.status = status;
            if status == DocStatus::Closed {
                let rows = tx.query(
                    "SELECT gtin, lot_key, qty FROM asn_received WHERE asn_id = $1",
                    &[&id],
                )?;
                let received: Vec<(String, String, u64)> = rows
                    .iter()
                    .map(|r| (r.get(0), r.get(1), to_u64(r.get(2))))
                    .collect();
                let drafts = reconcile::asn_shorts(&asn, |gtin, lot| {
                    received
                        .iter()
                        .filter(|(g, k, _)| g == gtin && lot.is_none_or(|l| *k == lot_key(Some(l))))
                        .map(|(_, _, q)| *q)
                        .sum()
                });
                let records: Vec<(Draft, Vec<MovementRef>)> =
                    drafts.into_iter().map(|d| (d, Vec::new())).collect();
                insert_discrepancies(tx, &asn.site, &records)?;
            }
            update_document(tx, Doc::Asn, id, status, &encode(&asn)?)?;
            let change = encode(&doc_change(id, status, || Change::Asn(asn.clone())))?;
            append_changes(tx, "asn", &[id], &[Some(asn.site.as_str())], &[change])?;
            if status == DocStatus::Closed {
                let event = OfficeEvent::ReceiptClosed {
                    id: id.to_string(),
                    asn: serde_json::to_value(&asn)
                        .map_err(|e| StoreError::Postgres(format!("encoding an event: {e}")))?,
                };
                webhooks::outbox(tx, &event.into_event(OffsetDateTime::now_utc()))?;
            }
            Ok(Some(asn))
        })
    }

    fn put_pick_list(&self, list: &PickList) -> Result<(), StoreError> {
        let body = encode(list)?;
        let change = encode(&doc_change(&list.id, list.status, || {
            Change::PickList(list.clone())
        }))?;
        self.in_tx(true, |tx| {
            lock_feed(tx)?;
            put_document(tx, Doc::PickList, &list.id, &list.site, list.status, &body)?;
            append_changes(
                tx,
                "pick_list",
                &[list.id.as_str()],
                &[Some(list.site.as_str())],
                std::slice::from_ref(&change),
            )
        })
    }

    fn pick_list(&self, id: &str) -> Result<Option<PickList>, StoreError> {
        self.with_conn(true, |c| get_document(c, Doc::PickList, id))
    }

    fn pick_lists(
        &self,
        site: &str,
        status: Option<DocStatus>,
    ) -> Result<Vec<PickList>, StoreError> {
        self.with_conn(true, |c| list_documents(c, Doc::PickList, site, status))
    }

    fn set_pick_list_status(
        &self,
        id: &str,
        status: DocStatus,
    ) -> Result<Option<PickList>, StoreError> {
        self.in_tx(false, |tx| {
            lock_feed(tx)?;
            let Some(mut list) = lock_document::<PickList>(tx, Doc::PickList, id)? else {
                return Ok(None);
            };
            check_transition(id, list.status, status)?;
            list.status = status;
            update_document(tx, Doc::PickList, id, status, &encode(&list)?)?;
            let change = encode(&doc_change(id, status, || Change::PickList(list.clone())))?;
            append_changes(
                tx,
                "pick_list",
                &[id],
                &[Some(list.site.as_str())],
                &[change],
            )?;
            Ok(Some(list))
        })
    }

    fn pull(&self, site: &str, cursor: u64, limit: usize) -> Result<PullResponse, StoreError> {
        let after = to_i64(cursor);
        let fetch = to_i64(limit as u64).saturating_add(1);
        self.with_conn(true, |c| {
            let rows = c.query(
                "SELECT change_seq, body::text FROM changes
                 WHERE change_seq > $1 AND (site IS NULL OR site = $2)
                 ORDER BY change_seq LIMIT $3",
                &[&after, &site, &fetch],
            )?;
            let more = rows.len() > limit;
            let mut out = PullResponse {
                cursor,
                more,
                changes: Vec::with_capacity(rows.len().min(limit)),
            };
            for r in rows.iter().take(limit) {
                out.cursor = to_u64(r.get(0));
                out.changes.push(decode("changes", r.get(1))?);
            }
            Ok(out)
        })
    }

    fn discrepancies(&self, filter: &DiscrepancyFilter) -> Result<Vec<Discrepancy>, StoreError> {
        let status = filter.status.map(enum_text).transpose()?;
        let kind = filter.kind.map(enum_text).transpose()?;
        self.with_conn(true, |c| {
            let rows = c.query(
                "SELECT id, status, body::text FROM discrepancies
                 WHERE ($1::text IS NULL OR site = $1) AND ($2::text IS NULL OR status = $2)
                   AND ($3::text IS NULL OR kind = $3)
                 ORDER BY id",
                &[&filter.site, &status, &kind],
            )?;
            rows.iter()
                .map(|r| discrepancy_row(r).map_err(Fail::from))
                .collect()
        })
    }

    fn discrepancy(&self, id: u64) -> Result<Option<Discrepancy>, StoreError> {
        let id = to_i64(id);
        self.with_conn(true, |c| {
            match c.query_opt(
                "SELECT id, status, body::text FROM discrepancies WHERE id = $1",
                &[&id],
            )? {
                Some(r) => Ok(Some(discrepancy_row(&r)?)),
                None => Ok(None),
            }
        })
    }

    fn comment_discrepancy(
        &self,
        id: u64,
        comment: &Comment,
    ) -> Result<Option<Discrepancy>, StoreError> {
        let id = to_i64(id);
        self.in_tx(false, |tx| {
            let Some(mut d) = lock_discrepancy(tx, id)? else {
                return Ok(None);
            };
            d.comments.push(comment.clone());
            save_discrepancy(tx, &d)?;
            Ok(Some(d))
        })
    }

    fn resolve_discrepancy(
        &self,
        id: u64,
        resolution: &Resolution,
        at: OffsetDateTime,
    ) -> Result<Option<Discrepancy>, StoreError> {
        let id = to_i64(id);
        self.in_tx_cached(false, |tx, statements| {
            let Some(mut d) = lock_discrepancy(tx, id)? else {
                return Ok(None);
            };
            if d.status == DiscrepancyStatus::Resolved {
                return Err(
                    StoreError::Refused(format!("discrepancy {id} is already resolved")).into(),
                );
            }
            let mut resolution = resolution.clone();
            if let Resolution::Adjust {
                location,
                gtin,
                lot,
                delta,
                movement,
                ..
            } = &mut resolution
            {
                *movement = Some(record_adjustment(
                    tx, statements, &d.site, location, gtin, lot, *delta, at,
                )?);
            }
            d.status = DiscrepancyStatus::Resolved;
            d.resolution = Some(resolution);
            save_discrepancy(tx, &d)?;
            let event = OfficeEvent::DiscrepancyResolved {
                id: to_u64(id),
                discrepancy: serde_json::to_value(&d)
                    .map_err(|e| StoreError::Postgres(format!("encoding an event: {e}")))?,
            };
            webhooks::outbox(tx, &event.into_event(OffsetDateTime::now_utc()))?;
            Ok(Some(d))
        })
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.with_conn(true, |c| {
            let bytes: i64 = c
                .query_one("SELECT pg_database_size(current_database())", &[])?
                .get(0);
            Ok(to_u64(bytes))
        })
    }

    fn open_discrepancy_counts(&self) -> Result<Vec<DiscrepancyCount>, StoreError> {
        self.with_conn(true, |c| {
            let rows = c.query(
                "SELECT site, kind, count(*) FROM discrepancies WHERE status = 'open' GROUP BY site, kind",
                &[],
            )?;
            rows.iter()
                .map(|r| -> Result<DiscrepancyCount, Fail> {
                    let kind: &str = r.get(1);
                    let kind = serde_json::from_value(serde_json::Value::from(kind)).map_err(|e| {
                        StoreError::Corrupt {
                            tree: "discrepancies",
                            message: format!("kind {kind:?}: {e}"),
                        }
                    })?;
                    Ok(DiscrepancyCount {
                        site: r.get(0),
                        kind,
                        open: to_u64(r.get(2)),
                    })
                })
                .collect()
        })
    }

    fn asn_received(&self, id: &str) -> Result<Vec<ReceivedLot>, StoreError> {
        self.with_conn(true, |c| {
            let rows = c.query(
                "SELECT gtin, lot_key, qty FROM asn_received WHERE asn_id = $1 ORDER BY gtin, lot_key",
                &[&id],
            )?;
            Ok(rows
                .iter()
                .map(|r| {
                    let key: &str = r.get(1);
                    ReceivedLot {
                        gtin: r.get(0),
                        lot: key.strip_prefix('+').map(str::to_string),
                        qty: to_u64(r.get(2)),
                    }
                })
                .collect())
        })
    }

    fn movements_by_reference(
        &self,
        reference: &str,
        after: u64,
        limit: usize,
    ) -> Result<MovementPage, StoreError> {
        let after = to_i64(after);
        let fetch = to_i64(limit as u64).saturating_add(1);
        self.with_conn(true, |c| {
            // The document's movements from the partial index movements_reference, each one's push (its
            // server_seq range) from pushes_device: the last push of the device starting at or before its seq
            // (migration 7). A document's movements are few; they are sorted, not read in index order.
            let rows = c.query(
                &format!(
                    "SELECT p.server_seq + (m.seq - p.seq) AS ss, m.site, p.received_at, {MOVEMENT_COLUMNS}
                 FROM movements m
                 CROSS JOIN LATERAL (
                     SELECT server_seq, seq, received_at FROM pushes
                     WHERE device_id = m.device_id AND seq <= m.seq ORDER BY seq DESC LIMIT 1
                 ) p
                 WHERE m.reference = $1 AND p.server_seq + (m.seq - p.seq) > $2
                 ORDER BY ss LIMIT $3"
                ),
                &[&reference, &after, &fetch],
            )?;
            let more = rows.len() > limit;
            let mut movements = Vec::with_capacity(rows.len().min(limit));
            for r in rows.iter().take(limit) {
                movements.push(StoredMovement {
                    server_seq: to_u64(r.get(0)),
                    site: r.get(1),
                    received_at: r.get(2),
                    movement: movement_row(r, 3)?,
                });
            }
            let next = more
                .then(|| movements.last().map(|m| m.server_seq))
                .flatten();
            Ok(MovementPage { movements, next })
        })
    }

    fn movements_per_hour(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        max_scan: usize,
    ) -> Result<HourlyCounts, StoreError> {
        // Walks back along `pushes` (newest first, a batch of pushes at a time), reading each push's movements'
        // `at` by the movements primary key, until a push received before the window (less the slack) or
        // `max_scan` movements.
        const PUSHES: i64 = 64;
        self.with_conn(true, |c| {
            let mut counter = HourCounter::new(since, until);
            let stop = counter.stop_before();
            let mut before = i64::MAX;
            loop {
                let rows = c.query(
                    "WITH p AS (
                         SELECT server_seq, device_id, seq, n, site, received_at FROM pushes
                         WHERE server_seq < $1 ORDER BY server_seq DESC LIMIT $2
                     )
                     SELECT p.server_seq, p.site, m.at, p.received_at
                     FROM p JOIN movements m ON m.device_id = p.device_id AND m.seq >= p.seq AND m.seq < p.seq + p.n
                     ORDER BY p.server_seq DESC, m.seq DESC",
                    &[&before, &PUSHES],
                )?;
                if rows.is_empty() {
                    return Ok(counter.finish(true));
                }
                for r in &rows {
                    if counter.scanned() >= max_scan as u64 {
                        return Ok(counter.finish(false));
                    }
                    let received_at: OffsetDateTime = r.get(3);
                    if received_at < stop {
                        return Ok(counter.finish(true));
                    }
                    counter.add(r.get(1), r.get(2));
                    before = r.get(0);
                }
            }
        })
    }

    fn discrepancies_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Discrepancy>, StoreError> {
        let (after, limit) = (to_i64(after), to_i64(limit as u64));
        self.with_conn(true, |c| {
            c.query(
                "SELECT id, status, body::text FROM discrepancies WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &limit],
            )?
            .iter()
            .map(|r| discrepancy_row(r).map_err(Fail::from))
            .collect()
        })
    }

    /// One statement. [`StockSort::Location`] is the primary key's order: with a site filter PostgreSQL reads
    /// `stock_pkey` from the cursor (a row comparison on the key) and stops after `limit + 1` rows, so a page
    /// costs its own rows. The other sorts have no index: PostgreSQL reads every row of the filter's scope once
    /// and keeps the best `limit + 1` (a top-N heapsort, O(limit) memory), O(rows in scope) per page.
    fn stock_page(&self, query: &StockPageQuery) -> Result<StockPage, StoreError> {
        let limit = query.limit();
        let columns = page_columns(query.sort);
        let cursor = match &query.start {
            StockPageStart::First => None,
            StockPageStart::After(r) | StockPageStart::Before(r) => Some(r),
        };
        let reverse = query.reads_descending();
        let mut sql = String::from(
            "SELECT site, location, gtin, lot, qty, expiry FROM stock
             WHERE qty <> 0
               AND ($1::text IS NULL OR site = $1) AND ($2::text IS NULL OR location = $2)
               AND ($3::text IS NULL OR gtin = $3) AND ($4::text IS NULL OR lot = $4)",
        );
        let fetch = to_i64(limit as u64 + 1);
        let mut params: Vec<Box<dyn postgres::types::ToSql + Sync>> = vec![
            Box::new(query.filter.site.clone()),
            Box::new(query.filter.location.clone()),
            Box::new(query.filter.gtin.clone()),
            Box::new(query.filter.lot.clone()),
            Box::new(fetch),
        ];
        let list = |f: &dyn Fn(usize, &PageColumn) -> String| {
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| f(i, c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(row) = cursor {
            let placeholders = list(&|i, c| format!("${}::{}", params.len() + 1 + i, c.cast()));
            let op = if reverse { "<" } else { ">" };
            sql.push_str(&format!(
                " AND ({}) {op} ({placeholders})",
                list(&|_, c| c.sql().to_string())
            ));
            params.extend(columns.iter().map(|c| c.value(row)));
        }
        let dir = if reverse { "DESC" } else { "ASC" };
        sql.push_str(&format!(
            " ORDER BY {} LIMIT $5",
            list(&|_, c| format!("{} {dir}", c.sql()))
        ));
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            params.iter().map(|p| p.as_ref()).collect();
        let mut rows = self.with_conn(true, |c| {
            Ok(c.query(sql.as_str(), &refs)?
                .iter()
                .map(stock_row)
                .collect::<Vec<_>>())
        })?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        if query.backward() {
            rows.reverse();
        }
        Ok(StockPage { rows, more })
    }

    fn push_reporting_mark(
        &self,
        site: &str,
        device_id: &str,
        movements: &[Movement],
    ) -> Result<Pushed, StoreError> {
        check_push(site, device_id, movements)?;
        let extras = movements
            .iter()
            .map(encode_extra)
            .collect::<Result<Vec<_>, _>>()?;
        let (pushed, negative) = self.in_tx_cached(true, |tx, statements| {
            push_tx(tx, statements, site, device_id, movements, &extras)
        })?;
        for (location, gtin, lot, qty) in &negative {
            tracing::warn!(device = device_id, site, location = %location, gtin = %gtin, lot = ?lot, qty, "stock went negative; a discrepancy for the office");
        }
        Ok(pushed)
    }

    fn put_scan_stats(
        &self,
        site: &str,
        device_id: &str,
        stats: &[ScanStat],
    ) -> Result<(), StoreError> {
        // One row per key (the largest count wins): an upsert may not touch a row twice.
        let mut latest: BTreeMap<(OffsetDateTime, &str, &str), u64> = BTreeMap::new();
        for s in stats {
            let key = (
                s.hour,
                s.operator.as_deref().unwrap_or(""),
                s.reason.as_str(),
            );
            let c = latest.entry(key).or_default();
            *c = (*c).max(s.count);
        }
        let hours: Vec<OffsetDateTime> = latest.keys().map(|k| k.0).collect();
        let operators: Vec<&str> = latest.keys().map(|k| k.1).collect();
        let reasons: Vec<&str> = latest.keys().map(|k| k.2).collect();
        let counts: Vec<i64> = latest.values().map(|&c| to_i64(c)).collect();
        self.with_conn(true, |c| {
            c.execute(
                "INSERT INTO scan_stats (site, hour, device_id, operator, reason, count)
                 SELECT $1, h, $2, o, r, n
                 FROM unnest($3::timestamptz[], $4::text[], $5::text[], $6::bigint[]) AS u(h, o, r, n)
                 ON CONFLICT (site, hour, device_id, operator, reason)
                 DO UPDATE SET count = GREATEST(scan_stats.count, EXCLUDED.count)",
                &[&site, &device_id, &hours, &operators, &reasons, &counts],
            )?;
            Ok(())
        })
    }

    fn scan_stats(
        &self,
        site: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<SiteScanStat>, StoreError> {
        self.with_conn(true, |c| {
            let rows = c.query(
                "SELECT hour, device_id, operator, reason, count FROM scan_stats
                 WHERE site = $1 AND hour >= $2 AND hour < $3
                 ORDER BY hour, device_id, operator, reason",
                &[&site, &since, &until],
            )?;
            Ok(rows
                .iter()
                .map(|r| {
                    let operator: String = r.get(2);
                    SiteScanStat {
                        device_id: r.get(1),
                        stat: ScanStat {
                            hour: r
                                .get::<_, OffsetDateTime>(0)
                                .to_offset(time::UtcOffset::UTC),
                            operator: (!operator.is_empty()).then_some(operator),
                            reason: r.get(3),
                            count: to_u64(r.get(4)),
                        },
                    }
                })
                .collect())
        })
    }

    fn create_asns(&self, asns: &[Asn]) -> Result<usize, StoreError> {
        let ids: Vec<&str> = asns.iter().map(|a| a.id.as_str()).collect();
        self.in_tx(true, |tx| {
            // The feed lock serialises every document write, so no other transaction can create one of these ids
            // between the read below and the insert.
            lock_feed(tx)?;
            let rows = tx.query(
                "SELECT id, body::text FROM asns WHERE id = ANY($1)",
                &[&ids],
            )?;
            let mut known: HashMap<String, Asn> = HashMap::with_capacity(rows.len());
            for r in &rows {
                known.insert(r.get(0), decode("asns", r.get(1))?);
            }
            let mut new: Vec<&Asn> = Vec::with_capacity(asns.len());
            for asn in asns {
                match known.get(&asn.id) {
                    Some(old) if old == asn => continue,
                    Some(_) => {
                        return Err(StoreError::Refused(format!(
                            "ASN {} already exists with different content",
                            asn.id
                        ))
                        .into())
                    }
                    None if asn.status != DocStatus::Open => {
                        return Err(StoreError::Refused(format!(
                            "ASN {} must be written with status open; close or cancel it through its status",
                            asn.id
                        ))
                        .into())
                    }
                    None => {
                        known.insert(asn.id.clone(), asn.clone());
                        new.push(asn);
                    }
                }
            }
            if new.is_empty() {
                return Ok(0);
            }
            let ids: Vec<&str> = new.iter().map(|a| a.id.as_str()).collect();
            let sites: Vec<Option<&str>> = new.iter().map(|a| Some(a.site.as_str())).collect();
            let bodies = new.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
            let changes = new
                .iter()
                .map(|a| encode(&Change::Asn((*a).clone())))
                .collect::<Result<Vec<_>, _>>()?;
            tx.execute(
                "INSERT INTO asns (id, site, status, body)
                 SELECT i, s, 'open', b::jsonb FROM unnest($1::text[], $2::text[], $3::text[]) AS u(i, s, b)",
                &[&ids, &sites, &bodies],
            )?;
            append_changes(tx, "asn", &ids, &sites, &changes)?;
            Ok(new.len())
        })
    }

    fn webhooks(&self) -> Option<&dyn crate::webhooks::WebhookStore> {
        Some(self)
    }

    fn put_reorder_rule(&self, rule: &ReorderRule) -> Result<(), StoreError> {
        let body = encode(rule)?;
        self.in_tx(true, |tx| {
            tx.execute(
                "INSERT INTO reorder_rules (site, gtin, body) VALUES ($1, $2, $3::text::jsonb)
                 ON CONFLICT (site, gtin) DO UPDATE SET body = EXCLUDED.body",
                &[&rule.site, &rule.gtin, &body],
            )?;
            Ok(())
        })
    }

    fn reorder_rules(&self, site: Option<&str>) -> Result<Vec<ReorderRule>, StoreError> {
        self.with_conn(true, |c| {
            c.query(
                "SELECT body::text FROM reorder_rules WHERE ($1::text IS NULL OR site = $1)
                 ORDER BY site, gtin",
                &[&site],
            )?
            .iter()
            .map(|r| decode("reorder_rules", r.get(0)).map_err(Fail::from))
            .collect()
        })
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Ingest

/// Stock rows a push left negative: (location, gtin, lot, qty), logged after commit.
type Negatives = Vec<(String, String, Option<String>, i64)>;

/// The push's transaction: locks the device's high-water row, then [`push_locked`].
fn push_tx(
    tx: &mut Transaction<'_>,
    statements: &mut Statements,
    site: &str,
    device_id: &str,
    movements: &[Movement],
    extras: &[String],
) -> Result<(Pushed, Negatives), Fail> {
    let hw = lock_high_water(tx, statements, device_id)?;
    let (outcome, negative) = push_locked(tx, statements, hw, site, device_id, movements, extras)?;
    Ok((
        Pushed {
            outcome,
            high_water_before: hw,
        },
        negative,
    ))
}

/// Decides replay, gap or conflict against the locked mark `hw` and applies the new movements.
fn push_locked(
    tx: &mut Transaction<'_>,
    statements: &mut Statements,
    hw: u64,
    site: &str,
    device_id: &str,
    movements: &[Movement],
    extras: &[String],
) -> Result<(PushOutcome, Negatives), Fail> {
    let Some(first) = movements.first() else {
        return Ok((PushOutcome::Acked { acked_through: hw }, Vec::new()));
    };
    if first.seq > hw + 1 {
        return Ok((
            PushOutcome::Gap {
                expected_seq: hw + 1,
            },
            Vec::new(),
        ));
    }
    // Replayed prefix: every seq <= hw must match what is stored, else nothing is applied.
    let replayed: Vec<i64> = movements
        .iter()
        .take_while(|m| m.seq <= hw)
        .map(|m| to_i64(m.seq))
        .collect();
    if !replayed.is_empty() {
        let rows = tx.query(
            &format!(
                "SELECT {MOVEMENT_COLUMNS} FROM movements m WHERE device_id = $1 AND seq = ANY($2)"
            ),
            &[&device_id, &replayed],
        )?;
        let mut stored: HashMap<u64, Movement> = HashMap::with_capacity(rows.len());
        for r in &rows {
            let m = movement_row(r, 0)?;
            stored.insert(m.seq, m);
        }
        for m in movements.iter().take_while(|m| m.seq <= hw) {
            let Some(s) = stored.get(&m.seq) else {
                return Err(StoreError::Corrupt {
                    tree: "movements",
                    message: format!("{device_id} seq {} missing below high-water {hw}", m.seq),
                }
                .into());
            };
            if s != m {
                return Ok((PushOutcome::Conflict { seq: m.seq }, Vec::new()));
            }
        }
    }
    let skip = replayed.len();
    let Some(last) = movements[skip..].last() else {
        return Ok((PushOutcome::Acked { acked_through: hw }, Vec::new()));
    };
    let new_hw = last.seq;
    let negative = apply_new(
        tx,
        statements,
        site,
        device_id,
        &movements[skip..],
        &extras[skip..],
    )?;
    Ok((
        PushOutcome::Acked {
            acked_through: new_hw,
        },
        negative,
    ))
}

/// Creates the device's high-water row if needed and locks it until the transaction ends (one statement: the
/// no-op update of an existing row takes its row lock and returns the latest committed mark).
fn lock_high_water(
    tx: &mut Transaction<'_>,
    statements: &mut Statements,
    device_id: &str,
) -> Result<u64, Fail> {
    let lock = statements.get(
        tx,
        "INSERT INTO device_hw AS d (device_id, hw) VALUES ($1, 0)
         ON CONFLICT (device_id) DO UPDATE SET hw = d.hw
         RETURNING hw",
    )?;
    let row = tx.query_one(&lock, &[&device_id])?;
    Ok(to_u64(row.get(0)))
}

/// The new movements of a batch, as one binary COPY (the rows come from [`copy_rows`]).
const COPY_MOVEMENTS: &str = "COPY movements
     (device_id, seq, site, at, kind, gtin, lot, from_location, to_location, reference, qty, body)
     FROM STDIN (FORMAT binary)";

/// The rest of the batch's writes and the facts reconciliation needs, in one statement (one round trip):
/// - `hw`: the device's new high-water mark;
/// - `p`: the push's row in `pushes`: `$11` movements from seq `$12` on, numbered from a fresh server_seq range;
/// - `s`: the stock deltas, aggregated per key and applied in key order (the lock order), creating the keys no one
///   has stocked yet, so every key is locked; sets `expiry` where the row has none yet; returns the quantity
///   after the batch (rows of kind 0) of the keys at the locations the batch takes stock out of (`$13`): only a
///   movement that takes stock out can take it below zero, so the other keys' quantities judge nothing (a batch
///   of receipts fetches none; each row sent back cost ~1 µs on either side);
/// - the known items (kind 1) and known locations (kind 2) among those the batch names.
///
/// All parts see the snapshot taken before the statement (which includes the batch's movements, copied before).
const APPLY_BATCH: &str = "WITH hw AS (UPDATE device_hw SET hw = $3 WHERE device_id = $1),
     p AS (
         INSERT INTO pushes (server_seq, device_id, seq, n, site)
         VALUES (reserve_server_seq($11), $1, $12, $11, $2)
     ),
     s AS (
         INSERT INTO stock AS s (site, location, gtin, lot_key, lot, qty, expiry)
         SELECT $2, l, g, COALESCE('+' || t, ''), t, d, e
         FROM unnest($4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[])
              WITH ORDINALITY AS u(l, g, t, d, e, n)
         ORDER BY n
         ON CONFLICT (site, location, gtin, lot_key)
         DO UPDATE SET qty = s.qty + EXCLUDED.qty, expiry = COALESCE(s.expiry, EXCLUDED.expiry)
         RETURNING location, gtin, lot, qty
     )
     SELECT 0::int4 AS what, location, gtin, lot, qty FROM s WHERE location = ANY($13)
     UNION ALL SELECT 1, NULL, gtin, NULL, NULL FROM items WHERE gtin = ANY($9)
     UNION ALL SELECT 2, code, NULL, NULL, NULL FROM locations WHERE site = $2 AND code = ANY($10)";

/// A stock key within one site, borrowed from the batch: (location, gtin, lot). Tuples of these order exactly as
/// stock's primary key (location, gtin, lot_key) does under `COLLATE "C"`: strings by bytes, and "no lot" (`''`)
/// before every lot (`'+' || lot`), as `None` sorts before `Some`.
type KeyRef<'a> = (&'a str, &'a str, Option<&'a str>);

/// A stock key's part in a batch.
struct KeyState<'a> {
    /// The batch's net delta.
    delta: i64,
    /// The expiry of the first movement touching the key that carries one.
    expiry: Option<&'a str>,
    /// Running quantity while the batch is replayed: from the quantity before the batch when it was fetched (keys
    /// at a location the batch takes stock out of), else from 0 (the batch only adds to the key, nothing about it
    /// is judged).
    qty: i64,
    /// Whether `qty` started from the stored quantity.
    fetched: bool,
}

/// The stock keys a batch touches, in key order (the lock order), and every movement's effects on them.
struct BatchKeys<'a> {
    /// Distinct keys, sorted.
    keys: Vec<KeyRef<'a>>,
    /// Per key (same index): the batch's net delta, first expiry, running quantity.
    states: Vec<KeyState<'a>>,
    /// Every effect of the batch in movement order, in [`Movement::effects`] order: (index into `keys`, delta).
    effects: Vec<(usize, i64)>,
    /// Movement `i`'s effects are `effects[starts[i]..starts[i + 1]]`.
    starts: Vec<usize>,
}

impl<'a> BatchKeys<'a> {
    fn new(site: &str, new: &'a [Movement]) -> Result<Self, StoreError> {
        let mut all: Vec<(KeyRef<'a>, i64, Option<&'a str>)> = Vec::with_capacity(new.len() * 2);
        let mut starts = Vec::with_capacity(new.len() + 1);
        for m in new {
            starts.push(all.len());
            for e in m.effects() {
                all.push((
                    (e.location, m.gtin.as_str(), m.lot.as_deref()),
                    e.delta,
                    m.expiry.as_deref(),
                ));
            }
        }
        starts.push(all.len());
        // Effects sorted by key give the distinct keys in order and each effect's key index.
        let mut order: Vec<usize> = (0..all.len()).collect();
        order.sort_unstable_by(|a, b| all[*a].0.cmp(&all[*b].0));
        let mut keys: Vec<KeyRef<'a>> = Vec::with_capacity(all.len());
        let mut key_of = vec![0; all.len()];
        for i in order {
            if keys.last() != Some(&all[i].0) {
                keys.push(all[i].0);
            }
            key_of[i] = keys.len() - 1;
        }
        let mut states: Vec<KeyState<'a>> = keys
            .iter()
            .map(|_| KeyState {
                delta: 0,
                expiry: None,
                qty: 0,
                fetched: false,
            })
            .collect();
        // Deltas and the first expiry in movement order.
        let mut effects = Vec::with_capacity(all.len());
        for ((key, delta, expiry), k) in all.into_iter().zip(key_of) {
            let state = &mut states[k];
            state.delta = state.delta.checked_add(delta).ok_or_else(|| {
                StoreError::Overflow(format!("{site}/{}/{}/{}", key.0, key.1, lot_key(key.2)))
            })?;
            if state.expiry.is_none() {
                state.expiry = expiry;
            }
            effects.push((k, delta));
        }
        Ok(BatchKeys {
            keys,
            states,
            effects,
            starts,
        })
    }
}

/// Stores movements that follow the device's high-water mark, moves the mark to the last of them, applies their
/// stock effects and records what reconciliation finds, all in the caller's transaction (whose first statement
/// locked the device's high-water row). `extras` are the movements' [`encode_extra`] texts.
///
/// Statements, in this order (which is also the lock order: device row, ASNs by id, stock keys in key order):
/// documents and ASN counters (only when a movement names a reference), book quantities (only for counts; over
/// the movements stored before this batch, so before the copy), the movements' COPY, then [`APPLY_BATCH`]: the
/// new mark, the stock deltas and the facts. Stock is written before it is judged: the upsert returns each key's
/// quantity after the batch, and since the rows stay locked until COMMIT, the quantity before the batch is that
/// minus the batch's own delta. The batch's running effects are then replayed in Rust, movement by movement, so
/// every movement is judged on the state just before it.
fn apply_new(
    tx: &mut Transaction<'_>,
    statements: &mut Statements,
    site: &str,
    device_id: &str,
    new: &[Movement],
    extras: &[String],
) -> Result<Negatives, Fail> {
    let Some(last) = new.last() else {
        return Ok(Vec::new());
    };
    let mut keys = BatchKeys::new(site, new)?;

    let refs: Vec<&str> = new
        .iter()
        .filter_map(|m| m.reference.as_deref())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut asns: HashMap<String, Asn> = HashMap::new();
    let mut lists: HashMap<String, PickList> = HashMap::new();
    if !refs.is_empty() {
        // ASNs are locked for update: receipts against one ASN are counted one push at a time.
        for r in tx.query(
            "SELECT id, body::text FROM asns WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            &[&refs],
        )? {
            asns.insert(r.get(0), decode("asns", r.get(1))?);
        }
        for r in tx.query(
            "SELECT id, body::text FROM pick_lists WHERE id = ANY($1) ORDER BY id FOR SHARE",
            &[&refs],
        )? {
            lists.insert(r.get(0), decode("pick_lists", r.get(1))?);
        }
    }
    // ASN counters: (asn, gtin) -> lot_key -> units received so far.
    let mut received: HashMap<(String, String), BTreeMap<String, u64>> = HashMap::new();
    let receipt_keys: BTreeSet<(&str, &str)> = new
        .iter()
        .filter(|m| m.kind == MovementKind::Receive)
        .filter_map(|m| {
            let r = m.reference.as_deref()?;
            asns.contains_key(r).then_some((r, m.gtin.as_str()))
        })
        .collect();
    if !receipt_keys.is_empty() {
        let a: Vec<&str> = receipt_keys.iter().map(|k| k.0).collect();
        let g: Vec<&str> = receipt_keys.iter().map(|k| k.1).collect();
        for r in tx.query(
            "SELECT r.asn_id, r.gtin, r.lot_key, r.qty
             FROM asn_received r JOIN unnest($1::text[], $2::text[]) AS u(a, g)
               ON r.asn_id = u.a AND r.gtin = u.g",
            &[&a, &g],
        )? {
            received
                .entry((r.get(0), r.get(1)))
                .or_default()
                .insert(r.get(2), to_u64(r.get(3)));
        }
    }
    let received_before = received.clone();
    // Book quantity at each count's time over what was stored before this batch (so before the copy below); the
    // batch adds its own below.
    let counts: Vec<usize> = (0..new.len())
        .filter(|i| new[*i].kind == MovementKind::Count && new[*i].to_location.is_some())
        .collect();
    let mut book_base: HashMap<usize, i64> = HashMap::new();
    if !counts.is_empty() {
        let c_loc: Vec<&str> = counts
            .iter()
            .map(|i| new[*i].to_location.as_deref().unwrap_or_default())
            .collect();
        let c_gtin: Vec<&str> = counts.iter().map(|i| new[*i].gtin.as_str()).collect();
        let c_lot: Vec<Option<&str>> = counts.iter().map(|i| new[*i].lot.as_deref()).collect();
        let c_at: Vec<OffsetDateTime> = counts.iter().map(|i| new[*i].at).collect();
        let rows = tx.query(
            "SELECT c.n, COALESCE((
                 SELECT sum(CASE WHEN m.to_location = c.loc THEN m.qty ELSE 0 END
                          - CASE WHEN m.from_location = c.loc THEN m.qty ELSE 0 END)
                 FROM movements m
                 WHERE m.site = $1 AND m.gtin = c.gtin AND m.lot IS NOT DISTINCT FROM c.lot
                   AND m.kind <> 'count' AND m.at <= c.at
                   AND (m.to_location = c.loc OR m.from_location = c.loc)
             ), 0)::bigint
             FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[])
                  WITH ORDINALITY AS c(loc, gtin, lot, at, n)",
            &[&site, &c_loc, &c_gtin, &c_lot, &c_at],
        )?;
        for r in &rows {
            let n: i64 = r.get(0);
            let idx = usize::try_from(n - 1).unwrap_or(usize::MAX);
            if let Some(i) = counts.get(idx) {
                book_base.insert(*i, r.get(1));
            }
        }
    }

    // The movements: one binary COPY. While PostgreSQL stores them, the rest of the batch's parameters are built.
    let copy = statements.get(tx, COPY_MOVEMENTS)?;
    let rows = copy_rows(site, device_id, new, extras)?;
    let mut writer = tx.copy_in(&copy)?;
    writer
        .write_all(&rows)
        .map_err(|e| StoreError::Postgres(format!("COPY movements: {e}")))?;

    let new_hw = to_i64(last.seq);
    let first_seq = to_i64(new[0].seq);
    let count = to_i64(new.len() as u64);
    let k_loc: Vec<&str> = keys.keys.iter().map(|k| k.0).collect();
    let k_gtin: Vec<&str> = keys.keys.iter().map(|k| k.1).collect();
    let k_lot: Vec<Option<&str>> = keys.keys.iter().map(|k| k.2).collect();
    let k_delta: Vec<i64> = keys.states.iter().map(|s| s.delta).collect();
    let k_expiry: Vec<Option<&str>> = keys.states.iter().map(|s| s.expiry).collect();
    // Locations the batch takes stock out of: the quantities of the keys there are fetched back.
    let outs: Vec<&str> = keys
        .effects
        .iter()
        .filter(|(_, delta)| *delta < 0)
        .map(|(k, _)| keys.keys[*k].0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let gtins: Vec<&str> = new
        .iter()
        .map(|m| m.gtin.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let locs: Vec<&str> = new
        .iter()
        .flat_map(|m| [m.from_location.as_deref(), m.to_location.as_deref()])
        .flatten()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    writer.finish()?;

    let apply = statements.get(tx, APPLY_BATCH)?;
    let rows = match tx.query(
        &apply,
        &[
            &device_id, &site, &new_hw, &k_loc, &k_gtin, &k_lot, &k_delta, &k_expiry, &gtins,
            &locs, &count, &first_seq, &outs,
        ],
    ) {
        Ok(rows) => rows,
        Err(e) if e.code() == Some(&SqlState::NUMERIC_VALUE_OUT_OF_RANGE) => {
            return Err(StoreError::Overflow(format!("{site}: {}", pg_error(&e))).into());
        }
        Err(e) => return Err(e.into()),
    };
    // Quantity before the batch per key (the running quantity starts there), known items and locations.
    let mut known_items: HashSet<&str> = HashSet::new();
    let mut known_locs: HashSet<&str> = HashSet::new();
    // The upsert returns the keys in the order it wrote them, the order of `keys`: check, look up otherwise.
    let mut next = 0;
    for r in &rows {
        match r.get::<_, i32>(0) {
            0 => {
                let key: KeyRef<'_> = (r.get(1), r.get(2), r.get(3));
                let after: i64 = r.get(4);
                let index = match keys.keys.get(next) {
                    Some(k) if *k == key => Some(next),
                    _ => keys.keys.binary_search(&key).ok(),
                };
                if let Some(i) = index {
                    keys.states[i].qty = after - keys.states[i].delta;
                    keys.states[i].fetched = true;
                    next = i + 1;
                }
            }
            1 => {
                known_items.insert(r.get(2));
            }
            _ => {
                known_locs.insert(r.get(1));
            }
        }
    }

    // Judge each movement on the state just before it.
    let mut records: Vec<(Draft, Vec<MovementRef>)> = Vec::new();
    let mut negative = Vec::new();
    for (i, m) in new.iter().enumerate() {
        let effects = &keys.effects[keys.starts[i]..keys.starts[i + 1]];
        let mut stock_after = Vec::with_capacity(effects.len());
        for &(k, delta) in effects {
            let state = &mut keys.states[k];
            if delta < 0 && !state.fetched {
                return Err(StoreError::Corrupt {
                    tree: "stock",
                    message: format!("no quantity came back for {:?}", keys.keys[k]),
                }
                .into());
            }
            state.qty = state.qty.checked_add(delta).ok_or_else(|| {
                let (location, gtin, lot) = keys.keys[k];
                StoreError::Overflow(format!("{site}/{location}/{gtin}/{}", lot_key(lot)))
            })?;
            stock_after.push(state.qty);
            if state.qty < 0 && delta < 0 {
                negative.push((
                    keys.keys[k].0.to_string(),
                    m.gtin.clone(),
                    m.lot.clone(),
                    state.qty,
                ));
            }
        }
        let document = match m.reference.as_deref() {
            None => Document::None,
            Some(r) => match (asns.get(r), lists.get(r)) {
                (Some(a), _) => Document::Asn(a),
                (None, Some(l)) => Document::PickList(l),
                (None, None) => Document::Unknown,
            },
        };
        let (mut asn_received_gtin, mut asn_received_lot) = (0, 0);
        if let (Document::Asn(a), MovementKind::Receive) = (document, m.kind) {
            let lk = lot_key(m.lot.as_deref());
            let lots = received.entry((a.id.clone(), m.gtin.clone())).or_default();
            *lots.entry(lk.clone()).or_insert(0) += m.qty;
            asn_received_lot = lots[&lk];
            asn_received_gtin = lots.values().sum();
        }
        let book_at_count = (m.kind == MovementKind::Count)
            .then(|| {
                let loc = m.to_location.as_deref()?;
                let mut book = *book_base.get(&i)?;
                for earlier in &new[..i] {
                    if earlier.gtin == m.gtin
                        && earlier.lot == m.lot
                        && earlier.at <= m.at
                        && earlier.kind != MovementKind::Count
                    {
                        book += earlier
                            .effects()
                            .iter()
                            .filter(|e| e.location == loc)
                            .map(|e| e.delta)
                            .sum::<i64>();
                    }
                }
                Some(book)
            })
            .flatten();
        let facts = Facts {
            item_known: known_items.contains(m.gtin.as_str()),
            from_known: m
                .from_location
                .as_deref()
                .is_none_or(|l| known_locs.contains(l)),
            to_known: m
                .to_location
                .as_deref()
                .is_none_or(|l| known_locs.contains(l)),
            stock_after,
            document,
            book_at_count,
            asn_received_gtin,
            asn_received_lot,
        };
        for d in reconcile::evaluate(m, &facts) {
            records.push((
                d,
                vec![MovementRef {
                    device_id: device_id.to_string(),
                    seq: m.seq,
                }],
            ));
        }
    }

    // ASN counters and discrepancies (only when there are any).
    let mut r_asn = Vec::new();
    let mut r_gtin = Vec::new();
    let mut r_lot_key = Vec::new();
    let mut r_delta = Vec::new();
    for ((asn, gtin), lots) in &received {
        for (lk, qty) in lots {
            let old = received_before
                .get(&(asn.clone(), gtin.clone()))
                .and_then(|l| l.get(lk))
                .copied()
                .unwrap_or(0);
            if *qty != old {
                r_asn.push(asn.as_str());
                r_gtin.push(gtin.as_str());
                r_lot_key.push(lk.as_str());
                r_delta.push(to_i64(qty - old));
            }
        }
    }
    if !r_asn.is_empty() {
        tx.execute(
            "INSERT INTO asn_received AS r (asn_id, gtin, lot_key, qty)
             SELECT a, g, k, d FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(a, g, k, d)
             ON CONFLICT (asn_id, gtin, lot_key) DO UPDATE SET qty = r.qty + EXCLUDED.qty",
            &[&r_asn, &r_gtin, &r_lot_key, &r_delta],
        )?;
    }
    insert_discrepancies(tx, site, &records)?;
    Ok(negative)
}

/// The rows of [`COPY_MOVEMENTS`] in PostgreSQL's binary COPY format: the header, one tuple per movement (12
/// fields, each a big-endian length and the value in the type's binary form, -1 for NULL), the trailer.
fn copy_rows(
    site: &str,
    device_id: &str,
    new: &[Movement],
    extras: &[String],
) -> Result<Vec<u8>, StoreError> {
    fn text(out: &mut Vec<u8>, value: Option<&str>) -> Result<(), StoreError> {
        match value {
            Some(v) => {
                let len = i32::try_from(v.len()).map_err(|_| {
                    StoreError::InvalidBatch(format!("a text of {} bytes", v.len()))
                })?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(v.as_bytes());
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        Ok(())
    }
    fn int8(out: &mut Vec<u8>, value: i64) {
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
    let size: usize = extras.iter().map(|e| e.len() + 160).sum();
    let mut out = Vec::with_capacity(size + 32);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes()); // flags
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for (m, extra) in new.iter().zip(extras) {
        out.extend_from_slice(&12i16.to_be_bytes());
        text(&mut out, Some(device_id))?;
        int8(&mut out, to_i64(m.seq));
        text(&mut out, Some(site))?;
        int8(&mut out, pg_timestamp(m.at)?);
        text(&mut out, Some(m.kind.as_str()))?;
        text(&mut out, Some(&m.gtin))?;
        text(&mut out, m.lot.as_deref())?;
        text(&mut out, m.from_location.as_deref())?;
        text(&mut out, m.to_location.as_deref())?;
        text(&mut out, m.reference.as_deref())?;
        int8(&mut out, to_i64(m.qty));
        text(&mut out, Some(extra))?;
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    Ok(out)
}

/// A `timestamptz` in PostgreSQL's binary form: microseconds since 2000-01-01 00:00 UTC (sub-microsecond digits
/// dropped, as the `postgres` crate does when it sends a timestamp).
fn pg_timestamp(at: OffsetDateTime) -> Result<i64, StoreError> {
    let epoch = time::macros::datetime!(2000-01-01 0:00 UTC);
    i64::try_from((at - epoch).whole_microseconds())
        .map_err(|_| StoreError::InvalidBatch(format!("time {at} is out of range")))
}

/// The columns [`movement_row`] reads, in order.
const MOVEMENT_COLUMNS: &str = "m.device_id, m.seq, m.at, m.kind, m.gtin, m.lot, m.from_location,
     m.to_location, m.reference, m.qty, m.body";

/// What `movements.body` holds for a movement stored by this version: the fields no column holds, and `at` only
/// when its column cannot hold it exactly (an offset other than UTC, or digits below the microsecond).
#[derive(Serialize)]
struct ExtraOut<'a> {
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiry: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    serials: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    sscc: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operator: Option<&'a str>,
    source: &'a MovementSource,
}

/// `movements.body` read back. Bodies stored before this version hold the whole movement; its other fields equal
/// their columns (they were written from the same movement) and are ignored, and its `at` is the exact one.
#[derive(Deserialize)]
struct ExtraIn {
    #[serde(default, with = "time::serde::rfc3339::option")]
    at: Option<OffsetDateTime>,
    #[serde(default)]
    expiry: Option<String>,
    #[serde(default)]
    serials: Vec<String>,
    #[serde(default)]
    sscc: Option<String>,
    #[serde(default)]
    operator: Option<String>,
    source: MovementSource,
}

/// The `body` text for `m` (see [`ExtraOut`]).
fn encode_extra(m: &Movement) -> Result<String, StoreError> {
    let exact = m.at.offset().is_utc() && m.at.nanosecond().is_multiple_of(1_000);
    encode(&ExtraOut {
        at: (!exact).then_some(m.at),
        expiry: m.expiry.as_deref(),
        serials: &m.serials,
        sscc: m.sscc.as_deref(),
        operator: m.operator.as_deref(),
        source: &m.source,
    })
}

/// A movement from the [`MOVEMENT_COLUMNS`] of `r`, starting at column `first`.
fn movement_row(r: &postgres::Row, first: usize) -> Result<Movement, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        tree: "movements",
        message,
    };
    let extra: ExtraIn = decode("movements", r.get(first + 10))?;
    let kind: &str = r.get(first + 3);
    let kind = MOVEMENT_KINDS
        .into_iter()
        .find(|k| k.as_str() == kind)
        .ok_or_else(|| corrupt(format!("unknown movement kind {kind:?}")))?;
    let seq: i64 = r.get(first + 1);
    let qty: i64 = r.get(first + 9);
    Ok(Movement {
        device_id: r.get(first),
        seq: u64::try_from(seq).map_err(|_| corrupt(format!("seq {seq}")))?,
        at: extra.at.unwrap_or_else(|| r.get(first + 2)),
        kind,
        gtin: r.get(first + 4),
        lot: r.get(first + 5),
        expiry: extra.expiry,
        serials: extra.serials,
        qty: u64::try_from(qty).map_err(|_| corrupt(format!("qty {qty}")))?,
        from_location: r.get(first + 6),
        to_location: r.get(first + 7),
        sscc: extra.sscc,
        reference: r.get(first + 8),
        operator: extra.operator,
        source: extra.source,
    })
}

/// Every movement kind, to read the `kind` column back.
const MOVEMENT_KINDS: [MovementKind; 7] = [
    MovementKind::Receive,
    MovementKind::Putaway,
    MovementKind::Move,
    MovementKind::Pick,
    MovementKind::Ship,
    MovementKind::Adjust,
    MovementKind::Count,
];

/// Records the office's `adjust` movement for a resolution, in the caller's transaction.
fn record_adjustment(
    tx: &mut Transaction<'_>,
    statements: &mut Statements,
    site: &str,
    location: &str,
    gtin: &str,
    lot: &Option<String>,
    delta: i64,
    at: OffsetDateTime,
) -> Result<MovementRef, Fail> {
    if delta == 0 {
        return Err(StoreError::Refused("an adjustment needs a non-zero delta".into()).into());
    }
    let seq = lock_high_water(tx, statements, OFFICE_DEVICE)? + 1;
    let (from, to) = if delta > 0 {
        (None, Some(location.to_string()))
    } else {
        (Some(location.to_string()), None)
    };
    let m = Movement {
        device_id: OFFICE_DEVICE.to_string(),
        seq,
        at,
        kind: MovementKind::Adjust,
        gtin: gtin.to_string(),
        lot: lot.clone(),
        expiry: None,
        serials: Vec::new(),
        qty: delta.unsigned_abs(),
        from_location: from,
        to_location: to,
        sscc: None,
        reference: None,
        operator: None,
        source: MovementSource::Manual,
    };
    m.validate()
        .map_err(|e| StoreError::Refused(format!("adjustment: {e}")))?;
    check_batch(site, OFFICE_DEVICE, std::slice::from_ref(&m))?;
    let extra = encode_extra(&m)?;
    // Also moves the office's high-water mark to `seq`.
    apply_new(
        tx,
        statements,
        site,
        OFFICE_DEVICE,
        std::slice::from_ref(&m),
        std::slice::from_ref(&extra),
    )?;
    Ok(MovementRef {
        device_id: OFFICE_DEVICE.to_string(),
        seq,
    })
}

fn insert_discrepancies(
    tx: &mut Transaction<'_>,
    site: &str,
    records: &[(Draft, Vec<MovementRef>)],
) -> Result<(), Fail> {
    if records.is_empty() {
        return Ok(());
    }
    let now = OffsetDateTime::now_utc();
    let mut kinds = Vec::with_capacity(records.len());
    let mut bodies = Vec::with_capacity(records.len());
    for (d, movements) in records {
        let record = Discrepancy {
            // Assigned by the database; the column is the truth.
            id: 0,
            site: site.to_string(),
            kind: d.kind,
            status: DiscrepancyStatus::Open,
            created_at: now,
            movements: movements.clone(),
            reference: d.reference.clone(),
            location: d.location.clone(),
            gtin: d.gtin.clone(),
            lot: d.lot.clone(),
            expected: d.expected,
            actual: d.actual,
            message: d.message.clone(),
            comments: Vec::new(),
            resolution: None,
        };
        kinds.push(enum_text(d.kind)?);
        bodies.push(encode(&record)?);
    }
    tx.execute(
        "INSERT INTO discrepancies (site, kind, status, body)
         SELECT $1, k, 'open', b::jsonb FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u(k, b, n)
         ORDER BY n",
        &[&site, &kinds, &bodies],
    )?;
    Ok(())
}

fn lock_discrepancy(tx: &mut Transaction<'_>, id: i64) -> Result<Option<Discrepancy>, Fail> {
    match tx.query_opt(
        "SELECT id, status, body::text FROM discrepancies WHERE id = $1 FOR UPDATE",
        &[&id],
    )? {
        Some(r) => Ok(Some(discrepancy_row(&r)?)),
        None => Ok(None),
    }
}

fn save_discrepancy(tx: &mut Transaction<'_>, d: &Discrepancy) -> Result<(), Fail> {
    tx.execute(
        "UPDATE discrepancies SET status = $2, body = $3::text::jsonb WHERE id = $1",
        &[&to_i64(d.id), &enum_text(d.status)?, &encode(d)?],
    )?;
    Ok(())
}

fn discrepancy_row(r: &postgres::Row) -> Result<Discrepancy, StoreError> {
    let mut d: Discrepancy = decode("discrepancies", r.get(2))?;
    d.id = to_u64(r.get(0));
    let status: &str = r.get(1);
    d.status = serde_json::from_value(serde_json::Value::from(status)).map_err(|e| {
        StoreError::Corrupt {
            tree: "discrepancies",
            message: format!("status {status:?}: {e}"),
        }
    })?;
    Ok(d)
}

// ---------------------------------------------------------------------------------------------------------------
// Documents and the change feed

#[derive(Debug, Clone, Copy)]
enum Doc {
    Asn,
    PickList,
}

impl Doc {
    fn table(self) -> &'static str {
        match self {
            Doc::Asn => "asns",
            Doc::PickList => "pick_lists",
        }
    }
}

fn put_document(
    tx: &mut Transaction<'_>,
    doc: Doc,
    id: &str,
    site: &str,
    status: DocStatus,
    body: &str,
) -> Result<(), Fail> {
    let table = doc.table();
    let current = tx.query_opt(
        &format!("SELECT status FROM {table} WHERE id = $1 FOR UPDATE"),
        &[&id],
    )?;
    if let Some(r) = current {
        let status: &str = r.get(0);
        if status != "open" {
            return Err(
                StoreError::Refused(format!("{id} is {status} and can no longer change")).into(),
            );
        }
    }
    tx.execute(
        &format!(
            "INSERT INTO {table} (id, site, status, body) VALUES ($1, $2, $3, $4::text::jsonb)
             ON CONFLICT (id) DO UPDATE SET site = EXCLUDED.site, status = EXCLUDED.status, body = EXCLUDED.body"
        ),
        &[&id, &site, &enum_text(status)?, &body],
    )?;
    Ok(())
}

fn update_document(
    tx: &mut Transaction<'_>,
    doc: Doc,
    id: &str,
    status: DocStatus,
    body: &str,
) -> Result<(), Fail> {
    tx.execute(
        &format!(
            "UPDATE {} SET status = $2, body = $3::text::jsonb WHERE id = $1",
            doc.table()
        ),
        &[&id, &enum_text(status)?, &body],
    )?;
    Ok(())
}

fn get_document<T: DeserializeOwned>(
    c: &mut impl GenericClient,
    doc: Doc,
    id: &str,
) -> Result<Option<T>, Fail> {
    let table = doc.table();
    match c.query_opt(
        &format!("SELECT body::text FROM {table} WHERE id = $1"),
        &[&id],
    )? {
        Some(r) => Ok(Some(decode(table, r.get(0))?)),
        None => Ok(None),
    }
}

fn lock_document<T: DeserializeOwned>(
    tx: &mut Transaction<'_>,
    doc: Doc,
    id: &str,
) -> Result<Option<T>, Fail> {
    let table = doc.table();
    match tx.query_opt(
        &format!("SELECT body::text FROM {table} WHERE id = $1 FOR UPDATE"),
        &[&id],
    )? {
        Some(r) => Ok(Some(decode(table, r.get(0))?)),
        None => Ok(None),
    }
}

fn list_documents<T: DeserializeOwned>(
    c: &mut Client,
    doc: Doc,
    site: &str,
    status: Option<DocStatus>,
) -> Result<Vec<T>, Fail> {
    let table = doc.table();
    let status = status.map(enum_text).transpose()?;
    c.query(
        &format!(
            "SELECT body::text FROM {table} WHERE site = $1 AND ($2::text IS NULL OR status = $2) ORDER BY id"
        ),
        &[&site, &status],
    )?
    .iter()
    .map(|r| decode(table, r.get(0)).map_err(Fail::from))
    .collect()
}

/// Only an open document may be closed or cancelled.
fn check_transition(id: &str, from: DocStatus, to: DocStatus) -> Result<(), StoreError> {
    if from != DocStatus::Open {
        return Err(StoreError::Refused(format!(
            "{id} is {} and can no longer change",
            enum_text(from)?
        )));
    }
    if to == DocStatus::Open {
        return Err(StoreError::Refused(format!(
            "{id} is open already; it can be closed or cancelled"
        )));
    }
    Ok(())
}

/// What devices are told about a document: its content, or that it was cancelled.
fn doc_change(id: &str, status: DocStatus, content: impl FnOnce() -> Change) -> Change {
    match status {
        DocStatus::Cancelled => Change::Cancel {
            reference: id.to_string(),
        },
        DocStatus::Open | DocStatus::Closed => content(),
    }
}

/// Takes the change-feed lock (see the module docs); held until the transaction ends.
fn lock_feed(tx: &mut Transaction<'_>) -> Result<(), Fail> {
    tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({FEED_LOCK})"))?;
    Ok(())
}

/// Moves each entity's feed row to the end of the feed. Ids must be distinct; call [`lock_feed`] first.
fn append_changes(
    tx: &mut Transaction<'_>,
    kind: &str,
    ids: &[&str],
    sites: &[Option<&str>],
    bodies: &[String],
) -> Result<(), Fail> {
    tx.execute(
        "INSERT INTO changes AS c (change_seq, entity_kind, entity_id, site, body)
         SELECT nextval('change_seq_seq'), $1, i, s, b::jsonb
         FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(i, s, b, n)
         ORDER BY n
         ON CONFLICT (entity_kind, entity_id)
         DO UPDATE SET change_seq = EXCLUDED.change_seq, site = EXCLUDED.site, body = EXCLUDED.body",
        &[&kind, &ids, &sites, &bodies],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/// The stock and ASN-counter key for a lot: "no lot" sorts first and differs from an empty lot.
fn lot_key(lot: Option<&str>) -> String {
    match lot {
        None => String::new(),
        Some(l) => format!("+{l}"),
    }
}

/// A column of a stock page's sort tuple ([`Store::stock_page`]), in the terms of [`StockSort::compare`].
#[derive(Debug, Clone, Copy)]
enum PageColumn {
    Site,
    Location,
    Gtin,
    /// "No lot" first, as `Option` orders.
    LotKey,
    Qty,
    /// Unknown expiry last: `false` (known) sorts first.
    ExpiryUnknown,
    Expiry,
}

/// The sort tuple of each [`StockSort`]; it must order rows exactly as [`StockSort::compare`] does.
fn page_columns(sort: StockSort) -> &'static [PageColumn] {
    use PageColumn::*;
    match sort {
        StockSort::Location => &[Site, Location, Gtin, LotKey],
        StockSort::Gtin => &[Gtin, LotKey, Site, Location],
        StockSort::Lot => &[LotKey, Gtin, Site, Location],
        StockSort::Qty => &[Qty, Site, Location, Gtin, LotKey],
        StockSort::Expiry => &[ExpiryUnknown, Expiry, Gtin, LotKey, Site, Location],
    }
}

impl PageColumn {
    fn sql(self) -> &'static str {
        match self {
            PageColumn::Site => "site",
            PageColumn::Location => "location",
            PageColumn::Gtin => "gtin",
            PageColumn::LotKey => "lot_key",
            PageColumn::Qty => "qty",
            PageColumn::ExpiryUnknown => "(expiry IS NULL)",
            PageColumn::Expiry => "coalesce(expiry, '')",
        }
    }

    /// The parameter type; texts compare as bytes like the `COLLATE "C"` columns.
    fn cast(self) -> &'static str {
        match self {
            PageColumn::Qty => "bigint",
            PageColumn::ExpiryUnknown => "boolean",
            _ => "text COLLATE \"C\"",
        }
    }

    fn value(self, r: &StockRow) -> Box<dyn postgres::types::ToSql + Sync> {
        match self {
            PageColumn::Site => Box::new(r.site.clone()),
            PageColumn::Location => Box::new(r.location.clone()),
            PageColumn::Gtin => Box::new(r.gtin.clone()),
            PageColumn::LotKey => Box::new(lot_key(r.lot.as_deref())),
            PageColumn::Qty => Box::new(r.qty),
            PageColumn::ExpiryUnknown => Box::new(r.expiry.is_none()),
            PageColumn::Expiry => Box::new(r.expiry.clone().unwrap_or_default()),
        }
    }
}

/// A stock row from `site, location, gtin, lot, qty, expiry`.
fn stock_row(r: &postgres::Row) -> StockRow {
    StockRow {
        site: r.get(0),
        location: r.get(1),
        gtin: r.get(2),
        lot: r.get(3),
        qty: r.get(4),
        expiry: r.get(5),
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::InvalidBatch(e.to_string()))
}

fn decode<T: DeserializeOwned>(table: &'static str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        tree: table,
        message: e.to_string(),
    })
}

/// The wire name of a unit enum variant (`"open"`, `"negative_stock"`), as stored in status and kind columns.
fn enum_text<T: Serialize>(value: T) -> Result<String, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        other => Err(StoreError::InvalidBatch(format!(
            "not a unit variant: {other:?}"
        ))),
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Keeps the SQLSTATE and the server's message, which `postgres::Error`'s own `Display` leaves out.
fn pg_error(e: &postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Postgres(format!(
            "{} ({}){}",
            db.message(),
            db.code().code(),
            db.detail().map(|d| format!(": {d}")).unwrap_or_default()
        )),
        None => StoreError::Postgres(e.to_string()),
    }
}

/// An operation's failure: PostgreSQL's (maybe worth a retry) or the store's own (never retried).
enum Fail {
    Pg(postgres::Error),
    Store(StoreError),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Fail::Pg(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Connection pool

/// A small blocking pool: at most `max` connections, idle ones reused, broken ones dropped and replaced.
struct Pool {
    config: postgres::Config,
    max: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<PooledClient>,
    open: usize,
}

/// A connection and the statements prepared on it.
struct PooledClient {
    client: Client,
    statements: Statements,
}

/// Statements prepared on one connection, by their SQL text: the hot paths (push, token lookup) parse and plan
/// their SQL once per connection instead of once per call (which also costs a round trip each time).
/// Prepared statements belong to the session, not to a transaction, so they survive rollbacks; a broken
/// connection is dropped with its cache.
#[derive(Default)]
pub(crate) struct Statements {
    prepared: HashMap<&'static str, postgres::Statement>,
}

impl Statements {
    /// The prepared statement for `sql`, preparing it on this connection the first time.
    fn get(
        &mut self,
        client: &mut impl GenericClient,
        sql: &'static str,
    ) -> Result<postgres::Statement, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = client.prepare(sql)?;
        self.prepared.insert(sql, s.clone());
        Ok(s)
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self) -> Result<Conn<'_>, StoreError> {
        let mut state = self.lock();
        loop {
            if let Some(client) = state.idle.pop() {
                if client.client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(Conn {
                    pool: self,
                    client: Some(client),
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(client) => Ok(Conn {
                        pool: self,
                        client: Some(PooledClient {
                            client,
                            statements: Statements::default(),
                        }),
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn connect(&self) -> Result<Client, StoreError> {
        let mut client = self.config.connect(NoTls).map_err(|e| pg_error(&e))?;
        // `off` would let COMMIT return before the WAL is flushed; `local`, `on` and the replica modes are durable.
        let mode: String = client
            .query_one("SHOW synchronous_commit", &[])
            .map_err(|e| pg_error(&e))?
            .get(0);
        if mode == "off" {
            client
                .batch_execute("SET synchronous_commit = on")
                .map_err(|e| pg_error(&e))?;
        }
        Ok(client)
    }
}

/// A connection checked out of the [`Pool`]; returned (or dropped if broken) when it goes out of scope.
struct Conn<'a> {
    pool: &'a Pool,
    client: Option<PooledClient>,
}

impl Conn<'_> {
    fn client(&mut self) -> &mut Client {
        self.parts().0
    }

    fn parts(&mut self) -> (&mut Client, &mut Statements) {
        let c = self
            .client
            .as_mut()
            .expect("a checked-out connection holds a client until dropped");
        (&mut c.client, &mut c.statements)
    }
}

impl Conn<'_> {
    /// Closes this connection instead of returning it to the pool.
    fn discard(&mut self) {
        self.client = None;
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        let mut state = self.pool.lock();
        match self.client.take() {
            Some(c) if !c.client.is_closed() => state.idle.push(c),
            _ => state.open -= 1,
        }
        drop(state);
        self.pool.freed.notify_one();
    }
}
