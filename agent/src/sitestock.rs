//! The device's view of its site's stock, for offline lookups (`dockhand-agent stock --location A-01-02`): the
//! stock the server last sent for the site plus this device's movements the server had not applied yet.
//!
//! # Design
//!
//! - The sync task fetches a snapshot (`GET /v1/sync/stock`, [`StockSnapshot`]) after a push round, so no push of
//!   this device is in flight: the snapshot's `acked_through` is exactly the last of this device's movements it
//!   holds. [`SiteStock::install`] replaces the previous snapshot in one sled transaction.
//! - Every durable movement leaves a record of its stock effects keyed by seq, written by [`LocalView::apply`] in the
//!   same transaction as the view's own stock (see [`record_unsynced`]). Installing a snapshot makes the records
//!   it covers (`seq <= acked_through`) dead at once (readers start after `acked_through`) and then deletes them
//!   in batches of [`DROP_BATCH`], outside the transaction: one transaction removing 100,000 records (a shift
//!   scanned faster than it synced) made sled hold them all and left the agent 280 MiB larger.
//! - So [`SiteStock::local_stock`] = snapshot rows + effects of records with `seq > acked_through`, read from sled
//!   alone: the CLI can answer from the store when the agent is not running. Records are kept per movement rather
//!   than recomputed from the sync backlog because the backlog forgets a movement as soon as the server acknowledges
//!   it, which is usually before the next snapshot includes it.
//!
//! ```text
//! tree "site_stock":    key = location 0x00 gtin 0x00 lot (lot empty when none)   value = i64 big-endian
//! tree "site_unsynced": key = seq, u64 big-endian                                   value = JSON [[location, gtin, lot|null, delta], ...]
//! tree "meta":          key = "site_stock_acked"                                     value = u64 big-endian
//!                       key = "site_stock_at"   (when the snapshot was fetched)      value = i64 big-endian, unix ms
//!                       key = "site_stock_site"                                      value = UTF-8 site code
//! ```
//!
//! # Recovery
//!
//! Everything here is rebuildable. A quarantined store ([`LocalView::open`]) comes back empty: the journal's
//! unacknowledged movements are applied again (re-creating their records) and the sync task fetches a snapshot at
//! start. Until then the answer says `as_of: null` and holds only the unsynced movements. Records of movements the
//! server had already acknowledged are ignored (`seq <= acked_through`) and deleted by the next snapshot. A device
//! without a server keeps one record per movement, as its journal keeps the movement itself.

use std::collections::BTreeMap;
use std::path::Path;

use dockhand_protocol::sync::{Movement, StockSnapshot};
use serde::{Deserialize, Serialize};
use sled::transaction::{TransactionError, TransactionalTree, UnabortableTransactionError};
use sled::Transactional;
use time::OffsetDateTime;

use crate::view::{StockRow, ViewError};

/// The snapshot's stock rows.
pub const STOCK_TREE: &str = "site_stock";
/// The stock effects of each durable movement, by seq, until a snapshot covers it.
pub const UNSYNCED_TREE: &str = "site_unsynced";
const META_TREE: &str = "meta";
const ACKED_KEY: &str = "site_stock_acked";
const AT_KEY: &str = "site_stock_at";
const SITE_KEY: &str = "site_stock_site";

/// Cache when the CLI opens the store itself.
const CLI_CACHE_BYTES: u64 = 4 << 20;

/// Covered records dropped per sled batch after a snapshot install.
const DROP_BATCH: usize = 1024;

/// One stock effect as recorded: `(location, gtin, lot, delta)`.
type Effect = (String, String, Option<String>, i64);

/// The site stock trees of the local store; cheap to clone.
#[derive(Clone, Debug)]
pub struct SiteStock {
    stock: sled::Tree,
    unsynced: sled::Tree,
    meta: sled::Tree,
}

/// What `dockhand-agent stock` shows: the rows, and how old the server's part of them is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalStock {
    /// Non-zero rows, sorted by location, GTIN, lot (no lot first).
    pub stock: Vec<StockRow>,
    /// RFC 3339 time the snapshot was fetched; `null` when the device never got one.
    pub as_of: Option<String>,
    /// Seconds since then, at the time of answering.
    pub age_seconds: Option<i64>,
    /// The site the snapshot is for.
    pub site: Option<String>,
    /// This device's movements up to here are in the snapshot.
    pub acked_through: u64,
    /// This device's movements added on top of the snapshot.
    pub unsynced: usize,
}

/// Why the CLI could not read the local stock.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// No store in the data directory.
    #[error("no local store at {0} (has the agent run on this device?)")]
    NoStore(String),
    /// The store is locked by a running agent whose status endpoint did not answer.
    #[error("the agent is running (its store at {0} is locked) but its status endpoint did not answer: {1}")]
    AgentUnreachable(String, String),
    /// The running agent answered with an error.
    #[error("the running agent answered: {0}")]
    Agent(String),
    /// Reading the store failed.
    #[error(transparent)]
    View(#[from] ViewError),
}

fn key(location: &str, gtin: &str, lot: Option<&str>) -> Vec<u8> {
    let mut k = Vec::with_capacity(location.len() + gtin.len() + 24);
    k.extend_from_slice(location.as_bytes());
    k.push(0);
    k.extend_from_slice(gtin.as_bytes());
    k.push(0);
    k.extend_from_slice(lot.unwrap_or("").as_bytes());
    k
}

fn split_key(k: &[u8]) -> Option<(String, String, Option<String>)> {
    let mut parts = k.splitn(3, |&b| b == 0);
    let text = |p: &[u8]| String::from_utf8(p.to_vec()).ok();
    let location = text(parts.next()?)?;
    let gtin = text(parts.next()?)?;
    let lot = text(parts.next()?)?;
    Some((location, gtin, (!lot.is_empty()).then_some(lot)))
}

fn be_u64(v: &[u8]) -> Option<u64> {
    v.try_into().ok().map(u64::from_be_bytes)
}

fn be_i64(v: &[u8]) -> Option<i64> {
    v.try_into().ok().map(i64::from_be_bytes)
}

fn effects(m: &Movement) -> Vec<Effect> {
    m.effects()
        .into_iter()
        .map(|e| {
            (
                e.location.to_string(),
                m.gtin.clone(),
                m.lot.clone(),
                e.delta,
            )
        })
        .collect()
}

/// Records `m`'s stock effects inside the caller's transaction ([`LocalView::apply`](crate::view::LocalView::apply)).
pub(crate) fn record_unsynced(
    tree: &TransactionalTree,
    m: &Movement,
) -> Result<(), UnabortableTransactionError> {
    // Tuples of strings and an integer always serialise.
    let value = serde_json::to_vec(&effects(m)).unwrap_or_default();
    tree.insert(&m.seq.to_be_bytes(), value)?;
    Ok(())
}

/// Checks one entry of a tree this module writes (`meta` keys of other modules and other trees pass).
pub(crate) fn verify_entry(tree: &str, k: &[u8], v: &[u8]) -> Result<(), String> {
    let ok = match tree {
        STOCK_TREE => split_key(k).is_some() && v.len() == 8,
        UNSYNCED_TREE => k.len() == 8 && serde_json::from_slice::<Vec<Effect>>(v).is_ok(),
        META_TREE if k == ACKED_KEY.as_bytes() || k == AT_KEY.as_bytes() => v.len() == 8,
        META_TREE if k == SITE_KEY.as_bytes() => std::str::from_utf8(v).is_ok(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err("value does not decode".into())
    }
}

fn storage(e: TransactionError<()>) -> ViewError {
    match e {
        TransactionError::Storage(e) => e.into(),
        // Nothing aborts these transactions.
        TransactionError::Abort(()) => ViewError::Corrupt {
            tree: STOCK_TREE,
            key: String::new(),
            message: "transaction aborted".into(),
        },
    }
}

impl SiteStock {
    /// The site stock trees of `db` (the local view's database, [`LocalView::db`](crate::view::LocalView::db)).
    pub fn new(db: &sled::Db) -> Result<SiteStock, ViewError> {
        Ok(SiteStock {
            stock: db.open_tree(STOCK_TREE)?,
            unsynced: db.open_tree(UNSYNCED_TREE)?,
            meta: db.open_tree(META_TREE)?,
        })
    }

    /// Replaces the snapshot with `snap`, fetched at `fetched_at`, in one transaction, then deletes the movement
    /// records it covers (already ignored by readers) in small batches. Returns the number of rows.
    pub fn install(
        &self,
        snap: &StockSnapshot,
        fetched_at: OffsetDateTime,
    ) -> Result<usize, ViewError> {
        let mut rows: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        for r in &snap.stock {
            let k = key(&r.location, &r.gtin, r.lot.as_deref());
            *rows.entry(k).or_default() += r.qty;
        }
        rows.retain(|_, q| *q != 0);
        // Only this task writes the snapshot, so the keys to drop can be listed before the transaction.
        let old: Vec<sled::IVec> = self.stock.iter().keys().collect::<Result<_, _>>()?;
        let previous = self.meta.get(ACKED_KEY)?.and_then(|v| be_u64(&v));
        if previous.is_some_and(|p| p > snap.acked_through) {
            tracing::warn!(previous = previous.unwrap_or(0), now = snap.acked_through,
                "the server's high-water mark for this device went back (server restored?); local stock follows the server");
        }
        let at_ms = (fetched_at.unix_timestamp_nanos() / 1_000_000) as i64;
        (&self.stock, &self.meta)
            .transaction(|(stock, meta)| {
                for k in &old {
                    if !rows.contains_key(k.as_ref()) {
                        stock.remove(k)?;
                    }
                }
                for (k, q) in &rows {
                    stock.insert(k.as_slice(), &q.to_be_bytes())?;
                }
                meta.insert(ACKED_KEY, &snap.acked_through.to_be_bytes())?;
                meta.insert(AT_KEY, &at_ms.to_be_bytes())?;
                meta.insert(SITE_KEY, snap.site.as_bytes())?;
                Ok(())
            })
            .map_err(storage)?;
        // The records the snapshot covers are dead from the moment `acked_through` is committed (readers start
        // after it), so they are dropped after the transaction, in small batches: in the transaction, a device
        // that had 100,000 movements waiting made sled hold every removal at once (the agent's RSS went from 90 to
        // 370 MiB and stayed there). A crash in between leaves dead records the next install drops.
        loop {
            let dead: Vec<sled::IVec> = self
                .unsynced
                .range(..=snap.acked_through.to_be_bytes())
                .keys()
                .take(DROP_BATCH)
                .collect::<Result<_, _>>()?;
            if dead.is_empty() {
                break;
            }
            let mut batch = sled::Batch::default();
            for k in dead {
                batch.remove(k);
            }
            self.unsynced.apply_batch(batch)?;
        }
        Ok(rows.len())
    }

    /// The acked-through figure of the installed snapshot (0 before the first).
    pub fn acked_through(&self) -> Result<u64, ViewError> {
        Ok(self
            .meta
            .get(ACKED_KEY)?
            .and_then(|v| be_u64(&v))
            .unwrap_or(0))
    }

    /// When the installed snapshot was fetched, if ever.
    pub fn fetched_at(&self) -> Result<Option<OffsetDateTime>, ViewError> {
        Ok(self
            .meta
            .get(AT_KEY)?
            .and_then(|v| be_i64(&v))
            .and_then(|ms| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
            }))
    }

    /// Snapshot rows plus the effects of this device's movements after it, for one location or all; non-zero rows
    /// sorted by location, GTIN, lot. Also returns how many movements were added.
    fn rows(&self, location: Option<&str>) -> Result<(Vec<StockRow>, usize), ViewError> {
        let acked = self.acked_through()?;
        let mut sum: BTreeMap<(String, String, Option<String>), i64> = BTreeMap::new();
        let prefix = location.map(|l| [l.as_bytes(), &[0]].concat());
        let snapshot = match &prefix {
            Some(p) => self.stock.scan_prefix(p),
            None => self.stock.iter(),
        };
        for kv in snapshot {
            let (k, v) = kv?;
            let corrupt = || ViewError::Corrupt {
                tree: STOCK_TREE,
                key: String::from_utf8_lossy(&k).into_owned(),
                message: "not a stock entry".into(),
            };
            let id = split_key(&k).ok_or_else(corrupt)?;
            let qty = be_i64(&v).ok_or_else(corrupt)?;
            *sum.entry(id).or_default() += qty;
        }
        let mut added = 0;
        for kv in self
            .unsynced
            .range((acked.saturating_add(1)).to_be_bytes()..)
        {
            let (k, v) = kv?;
            let effects: Vec<Effect> =
                serde_json::from_slice(&v).map_err(|e| ViewError::Corrupt {
                    tree: UNSYNCED_TREE,
                    key: format!("{:?}", be_u64(&k)),
                    message: e.to_string(),
                })?;
            added += 1;
            for (loc, gtin, lot, delta) in effects {
                if location.is_none_or(|l| l == loc) {
                    let q = sum.entry((loc, gtin, lot)).or_default();
                    *q = q.saturating_add(delta);
                }
            }
        }
        let rows = sum
            .into_iter()
            .filter(|(_, q)| *q != 0)
            .map(|((location, gtin, lot), qty)| StockRow {
                location,
                gtin,
                lot,
                qty,
            })
            .collect();
        Ok((rows, added))
    }

    /// Local stock (see the module doc) for one location or all.
    pub fn local_stock(&self, location: Option<&str>) -> Result<Vec<StockRow>, ViewError> {
        self.rows(location).map(|(rows, _)| rows)
    }

    /// The full answer of `dockhand-agent stock` at time `now`.
    pub fn answer(
        &self,
        location: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<LocalStock, ViewError> {
        let (stock, unsynced) = self.rows(location)?;
        let at = self.fetched_at()?;
        Ok(LocalStock {
            stock,
            as_of: at.and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            }),
            age_seconds: at.map(|t| (now - t).whole_seconds()),
            site: self
                .meta
                .get(SITE_KEY)?
                .map(|v| String::from_utf8_lossy(&v).into_owned()),
            acked_through: self.acked_through()?,
            unsynced,
        })
    }
}

/// `GET /stock?location=L` on the agent's loopback status endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockQuery {
    /// Only this location.
    pub location: Option<String>,
}

/// The handler: the [`LocalStock`] answer as JSON, or 500 `{"error":{"message"}}`.
pub async fn stock_route(
    axum::extract::State(stock): axum::extract::State<SiteStock>,
    axum::extract::Query(q): axum::extract::Query<StockQuery>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let answer = tokio::task::spawn_blocking(move || {
        stock.answer(q.location.as_deref(), crate::clock::now())
    })
    .await;
    match answer {
        Ok(Ok(a)) => axum::Json(a).into_response(),
        Ok(Err(e)) => error_response(e.to_string()),
        Err(e) => error_response(e.to_string()),
    }
}

fn error_response(message: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({"error": {"code": "internal", "message": message}});
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(body),
    )
        .into_response()
}

/// `GET /stock`, ready to merge into the status endpoint's router (whatever its state type).
pub fn routes<S: Clone + Send + Sync + 'static>(stock: SiteStock) -> axum::Router<S> {
    axum::Router::new()
        .route("/stock", axum::routing::get(stock_route))
        .with_state(stock)
}

/// File in `data_dir` where the running agent writes its status endpoint's address.
const STATUS_ADDR_FILE: &str = "status.addr";

/// Answers `dockhand-agent stock`: from the running agent when its status endpoint answers, else from the store in
/// `data_dir/sled` (opened here, so only when no agent holds it). The flag says whether the agent answered.
pub async fn query(
    data_dir: &Path,
    location: Option<&str>,
) -> Result<(LocalStock, bool), QueryError> {
    let asked = match std::fs::read_to_string(data_dir.join(STATUS_ADDR_FILE)) {
        Ok(addr) => ask_agent(addr.trim(), location).await,
        Err(e) => Err(format!("{STATUS_ADDR_FILE}: {e}")),
    };
    let unreachable = match asked {
        Ok(Ok(answer)) => return Ok((answer, true)),
        Ok(Err(message)) => return Err(QueryError::Agent(message)),
        Err(e) => e,
    };
    let dir = data_dir.join("sled");
    let loc = location.map(str::to_string);
    let read = tokio::task::spawn_blocking(move || read_store(&dir, loc.as_deref(), &unreachable))
        .await
        .map_err(|e| QueryError::Agent(e.to_string()))??;
    Ok((read, false))
}

/// `Err` when the agent cannot be reached; `Ok(Err)` when it answered with an error.
async fn ask_agent(
    addr: &str,
    location: Option<&str>,
) -> Result<Result<LocalStock, String>, String> {
    let base = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let mut url = reqwest::Url::parse(&format!("{}/stock", base.trim_end_matches('/')))
        .map_err(|e| format!("{STATUS_ADDR_FILE} holds {addr:?}: {e}"))?;
    if let Some(l) = location {
        url.query_pairs_mut().append_pair("location", l);
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        return Ok(serde_json::from_slice(&body).map_err(|e| format!("unreadable answer: {e}")));
    }
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
    Ok(Err(format!("HTTP {status}: {message}")))
}

/// Opens the store without the agent (never quarantining it: that is the agent's job) and answers from it.
fn read_store(
    dir: &Path,
    location: Option<&str>,
    unreachable: &str,
) -> Result<LocalStock, QueryError> {
    if !dir.join("conf").exists() {
        return Err(QueryError::NoStore(dir.display().to_string()));
    }
    let opened = std::panic::catch_unwind(|| {
        sled::Config::new()
            .path(dir)
            .cache_capacity(CLI_CACHE_BYTES)
            .open()
    });
    let db =
        match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) if crate::storecheck::is_lock_error(&e) => {
                return Err(QueryError::AgentUnreachable(
                    dir.display().to_string(),
                    unreachable.to_string(),
                ))
            }
            Ok(Err(e)) => return Err(ViewError::from(e).into()),
            Err(_) => return Err(QueryError::View(ViewError::Corrupt {
                tree: "(store)",
                key: dir.display().to_string(),
                message:
                    "sled panicked while opening it; the agent quarantines and rebuilds it at start"
                        .into(),
            })),
        };
    Ok(SiteStock::new(&db)?.answer(location, crate::clock::now())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::LocalView;
    use dockhand_protocol::sync::{MovementKind, MovementSource, SnapshotRow};
    use proptest::prelude::*;

    const GTIN: &str = "09506000134352";

    fn mv(seq: u64, from: Option<&str>, to: Option<&str>, qty: u64) -> Movement {
        Movement {
            device_id: "hh".into(),
            seq,
            at: OffsetDateTime::UNIX_EPOCH,
            kind: match (from, to) {
                (None, _) => MovementKind::Receive,
                (_, None) => MovementKind::Pick,
                _ => MovementKind::Move,
            },
            gtin: GTIN.into(),
            lot: Some("L1".into()),
            expiry: None,
            serials: vec![],
            qty,
            from_location: from.map(Into::into),
            to_location: to.map(Into::into),
            sscc: None,
            reference: None,
            operator: None,
            source: MovementSource::Manual,
        }
    }

    fn row(location: &str, lot: Option<&str>, qty: i64) -> SnapshotRow {
        SnapshotRow {
            location: location.into(),
            gtin: GTIN.into(),
            lot: lot.map(Into::into),
            qty,
        }
    }

    fn snap(acked_through: u64, stock: Vec<SnapshotRow>) -> StockSnapshot {
        StockSnapshot {
            site: "WH1".into(),
            acked_through,
            stock,
        }
    }

    fn got(rows: &[StockRow]) -> Vec<(&str, Option<&str>, i64)> {
        rows.iter()
            .map(|r| (r.location.as_str(), r.lot.as_deref(), r.qty))
            .collect()
    }

    #[test]
    fn a_snapshot_covering_a_long_burst_drops_every_covered_record() {
        let tmp = tempfile::tempdir().unwrap();
        let (view, _) = LocalView::open(&tmp.path().join("sled")).unwrap();
        let s = SiteStock::new(view.db()).unwrap();
        let n = 3 * DROP_BATCH as u64 + 7;
        let burst: Vec<Movement> = (1..=n).map(|i| mv(i, None, Some("A-01"), 1)).collect();
        view.apply(&burst).unwrap();
        assert_eq!(s.unsynced.len() as u64, n);
        // The server has all but the last 5; the snapshot holds what it applied.
        let acked = n - 5;
        let rows = vec![row("A-01", Some("L1"), acked as i64)];
        s.install(&snap(acked, rows), OffsetDateTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(
            s.unsynced.len(),
            5,
            "every covered record is dropped, in batches"
        );
        assert_eq!(
            got(&s.local_stock(None).unwrap()),
            vec![("A-01", Some("L1"), n as i64)]
        );
    }

    #[test]
    fn snapshot_plus_unsynced_movements() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sled");
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        {
            let (view, _) = LocalView::open(&dir).unwrap();
            let s = SiteStock::new(view.db()).unwrap();
            // Before any snapshot: only this device's movements, and no age.
            view.apply(&[
                mv(1, None, Some("A-01"), 5),
                mv(2, Some("A-01"), Some("B-01"), 2),
            ])
            .unwrap();
            let a = s.answer(None, t0).unwrap();
            assert_eq!(
                got(&a.stock),
                vec![("A-01", Some("L1"), 3), ("B-01", Some("L1"), 2)]
            );
            assert_eq!((a.as_of, a.age_seconds, a.unsynced), (None, None, 2));

            // The server holds seq 1 (and other devices' stock); seq 2 and 3 are added on top.
            view.apply(&[mv(3, Some("A-01"), None, 1)]).unwrap();
            let other = row("A-01", None, 7);
            s.install(
                &snap(1, vec![other.clone(), row("A-01", Some("L1"), 5)]),
                t0,
            )
            .unwrap();
            let a = s.answer(None, t0 + time::Duration::seconds(90)).unwrap();
            assert_eq!(
                got(&a.stock),
                vec![
                    ("A-01", None, 7),
                    ("A-01", Some("L1"), 2),
                    ("B-01", Some("L1"), 2)
                ]
            );
            assert_eq!(
                (a.acked_through, a.unsynced, a.age_seconds),
                (1, 2, Some(90))
            );
            assert_eq!(a.site.as_deref(), Some("WH1"));
            assert!(a.as_of.is_some());
            assert_eq!(s.unsynced.len(), 2, "record 1 is covered and deleted");
            assert_eq!(
                got(&s.local_stock(Some("B-01")).unwrap()),
                vec![("B-01", Some("L1"), 2)]
            );
            assert!(
                s.local_stock(Some("A-0")).unwrap().is_empty(),
                "a prefix is not a location"
            );

            // A newer snapshot replaces the old one entirely; a zero row is not kept.
            s.install(
                &snap(3, vec![row("B-01", Some("L1"), 2), row("C-01", None, 0)]),
                t0,
            )
            .unwrap();
            assert_eq!(
                got(&s.local_stock(None).unwrap()),
                vec![("B-01", Some("L1"), 2)]
            );
            assert!(s.unsynced.is_empty());
        }
        // It all survives a reopen.
        let opened = LocalView::open(&dir);
        let (view, moved) = opened.unwrap();
        assert!(moved.is_none());
        let s = SiteStock::new(view.db()).unwrap();
        assert_eq!(
            got(&s.local_stock(None).unwrap()),
            vec![("B-01", Some("L1"), 2)]
        );
        assert_eq!(s.acked_through().unwrap(), 3);
    }

    #[test]
    fn records_of_acked_movements_are_ignored() {
        // A record for a seq the snapshot already covers (applied after the snapshot's keys were listed) must not
        // count twice.
        let tmp = tempfile::tempdir().unwrap();
        let (view, _) = LocalView::open(&tmp.path().join("sled")).unwrap();
        let s = SiteStock::new(view.db()).unwrap();
        s.install(
            &snap(4, vec![row("A-01", Some("L1"), 10)]),
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        view.apply(&[mv(4, None, Some("A-01"), 10), mv(5, None, Some("A-01"), 1)])
            .unwrap();
        let a = s.answer(Some("A-01"), OffsetDateTime::UNIX_EPOCH).unwrap();
        assert_eq!(
            (got(&a.stock), a.unsynced),
            (vec![("A-01", Some("L1"), 11)], 1)
        );
    }

    #[tokio::test]
    async fn cli_reads_the_store_when_no_agent_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let err = query(tmp.path(), None).await.unwrap_err();
        assert!(matches!(err, QueryError::NoStore(_)), "{err}");
        {
            let (view, _) = LocalView::open(&tmp.path().join("sled")).unwrap();
            view.apply(&[mv(1, None, Some("A-01"), 4)]).unwrap();
            view.db().flush().unwrap();
            // Held open, the store is locked; a stale address file does not help.
            std::fs::write(tmp.path().join(STATUS_ADDR_FILE), "127.0.0.1:1\n").unwrap();
            let err = query(tmp.path(), None).await.unwrap_err();
            assert!(matches!(err, QueryError::AgentUnreachable(..)), "{err}");
        }
        // sled releases its lock from a background thread a moment after the drop.
        let mut answer = query(tmp.path(), Some("A-01")).await;
        for _ in 0..200 {
            if !matches!(answer, Err(QueryError::AgentUnreachable(..))) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            answer = query(tmp.path(), Some("A-01")).await;
        }
        let (a, from_agent) = answer.unwrap();
        assert!(!from_agent);
        assert_eq!(
            (got(&a.stock), a.unsynced, a.as_of),
            (vec![("A-01", Some("L1"), 4)], 1, None)
        );
    }

    #[tokio::test]
    async fn cli_asks_the_running_agent() {
        let tmp = tempfile::tempdir().unwrap();
        let (view, _) = LocalView::open(&tmp.path().join("sled")).unwrap();
        view.apply(&[mv(1, None, Some("A-01"), 4), mv(2, None, Some("B-01"), 1)])
            .unwrap();
        let app: axum::Router = routes(SiteStock::new(view.db()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        std::fs::write(tmp.path().join(STATUS_ADDR_FILE), format!("{addr}\n")).unwrap();
        let (a, from_agent) = query(tmp.path(), Some("B-01")).await.unwrap();
        assert!(from_agent);
        assert_eq!(got(&a.stock), vec![("B-01", Some("L1"), 1)]);
        let all = ask_agent(&addr.to_string(), None).await.unwrap().unwrap();
        assert_eq!((all.stock.len(), all.unsynced), (2, 2));
        // A typo in the query is refused, not answered with everything.
        let typo = reqwest::get(format!("http://{addr}/stock?loc=B-01"))
            .await
            .unwrap();
        assert_eq!(typo.status(), 400);
        server.abort();
    }

    /// A naive model: the server's stock is every movement of other devices plus this device's up to `acked`;
    /// local stock must equal the sum of everything, whatever the order of snapshots and movements.
    #[derive(Debug, Clone)]
    enum Step {
        Move(u8, u8, u8),
        Snapshot,
        Ack(u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..4, 0u8..4, 1u8..5).prop_map(|(f, t, q)| Step::Move(f, t, q)),
            Just(Step::Snapshot),
            (0u8..4).prop_map(Step::Ack),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn local_stock_matches_model(steps in proptest::collection::vec(step(), 1..30)) {
            let tmp = tempfile::tempdir().unwrap();
            let (view, _) = LocalView::open(&tmp.path().join("sled")).unwrap();
            let s = SiteStock::new(view.db()).unwrap();
            let locs = ["A", "B", "C"];
            let loc = |i: u8| (i as usize) < locs.len();
            let mut all: Vec<Movement> = Vec::new();
            let mut acked = 0u64;
            let others = vec![row("A", None, 3), row("B", Some("L1"), -2)];
            for st in steps {
                match st {
                    Step::Move(f, t, q) => {
                        let m = mv(all.len() as u64 + 1,
                            loc(f).then(|| locs[f as usize]), loc(t).then(|| locs[t as usize]), u64::from(q));
                        if m.from_location.is_none() && m.to_location.is_none() { continue; }
                        view.apply(std::slice::from_ref(&m)).unwrap();
                        all.push(m);
                    }
                    Step::Ack(n) => acked = (acked + u64::from(n)).min(all.len() as u64),
                    Step::Snapshot => {
                        let mut server: BTreeMap<(String, Option<String>), i64> = BTreeMap::new();
                        for r in &others { *server.entry((r.location.clone(), r.lot.clone())).or_default() += r.qty; }
                        for m in all.iter().take(acked as usize) {
                            for e in m.effects() { *server.entry((e.location.to_string(), m.lot.clone())).or_default() += e.delta; }
                        }
                        let rows = server.into_iter().map(|((l, lot), q)| row(&l, lot.as_deref(), q)).collect();
                        s.install(&snap(acked, rows), OffsetDateTime::UNIX_EPOCH).unwrap();
                    }
                }
                let mut model: BTreeMap<(String, Option<String>), i64> = BTreeMap::new();
                let snapped = s.acked_through().unwrap() > 0 || s.fetched_at().unwrap().is_some();
                if snapped {
                    for r in &others { *model.entry((r.location.clone(), r.lot.clone())).or_default() += r.qty; }
                }
                for m in &all {
                    for e in m.effects() { *model.entry((e.location.to_string(), m.lot.clone())).or_default() += e.delta; }
                }
                model.retain(|_, q| *q != 0);
                let want: Vec<(String, Option<String>, i64)> = model.into_iter().map(|((l, lot), q)| (l, lot, q)).collect();
                let have: Vec<(String, Option<String>, i64)> = s.local_stock(None).unwrap().into_iter().map(|r| (r.location, r.lot, r.qty)).collect();
                prop_assert_eq!(have, want);
            }
        }
    }
}
