//! [`Store`] on sled 0.34: the server's default, single-node storage.
//!
//! # Trees and key layouts
//!
//! Numbers in keys are big-endian so they sort numerically; texts are NUL-separated. `at` is a movement's device
//! time as `unix_timestamp_nanos` (i128) with the sign bit flipped, 16 bytes big-endian, so keys sort by instant
//! whatever the offset the device wrote.
//!
//! ```text
//! meta            "format" | "server_seq" | "change_seq" | "discrepancy_id"   -> u64 big-endian
//! movements       device_id ++ 0x00 ++ seq (u64)                    -> Record as JSON {server_seq, site, received_at, movement}
//! high_water      device_id                                         -> u64 (last applied seq)
//! stock           site ++ 0x00 ++ location ++ 0x00 ++ gtin          -> the item's lots there (below; non-empty only)
//! log             first server_seq (u64)                            -> count (u64) ++ first seq (u64) ++ device_id ++ 0x00 ++ site
//! effects         site ++ 0x00 ++ max at (16) ++ first server_seq (u64)   -> effect list (below)
//! sites           code                                              -> Site as JSON
//! items           gtin                                              -> Item as JSON
//! locations       site ++ 0x00 ++ code                              -> Location as JSON
//! asns            id                                                -> Asn as JSON
//! pick_lists      id                                                -> PickList as JSON
//! asn_received    asn ++ 0x00 ++ gtin                               -> u64 units received, all lots
//!                 asn ++ 0x00 ++ gtin ++ 0x00 ++ (lot | 0xFF for none)      -> u64 units received, this lot
//! discrepancies   id (u64)                                          -> Discrepancy as JSON
//! changes         change_seq (u64)                                  -> site ++ 0x00 ++ Change as JSON (site empty: all sites)
//! change_index    "i" 0x00 gtin | "l" 0x00 site 0x00 code | "a" 0x00 asn | "p" 0x00 pick list   -> change_seq (u64)
//! refs            reference ++ 0x00 ++ server_seq (u64)             -> the movement's key (device_id ++ 0x00 ++ seq)
//! reorder_rules   site ++ 0x00 ++ gtin                              -> ReorderRule as JSON (issue 9)
//! outbox          seq (u64)                                         -> webhook office event as JSON (sled_webhooks.rs,
//!                                                                      with the webhook trees; meta "outbox_seq")
//! ```
//!
//! None of the key texts may contain a NUL byte (device ids and sites are restricted at enrollment; locations,
//! lots, GTINs and document ids are checked by the handlers and again here), otherwise keys would be ambiguous.
//! Texts are UTF-8, which never contains the byte 0xFF, so 0xFF marks "no lot" in `asn_received`. Stock keys sort
//! by `(site, location, gtin, lot)` with "no lot" (three segments) before any lot.
//!
//! - A stock row is `(site, location, gtin, lot)`; its *stock key* is `site ++ 0x00 ++ location ++ 0x00 ++ gtin
//!   [++ 0x00 ++ lot]` (the `effects` records and the writer's caches use it). The `stock` tree groups the rows
//!   of one item at one location under one entry keyed by the first three segments, so a push writes one entry
//!   per (location, item) it touches, not one per lot: sled's per-key cost (a read, then a re-insert at commit)
//!   was most of a push's time when every movement brought a new lot. The value lists the rows in stock-key
//!   order ("no lot" first, then lots by byte order), each as `tag ++ [varint(len) ++ lot] ++ varint(zigzag(qty))
//!   ++ [varint(len) ++ expiry]`: tag bit 0 says a lot follows, bit 1 an expiry (format 5; format 4 wrote tags 0
//!   and 1 only). A row's expiry (`YYYY-MM-DD`, GS1 AI 17) is the first one a movement into the row carried and is
//!   never overwritten; it lives in the entry the push rewrites anyway, so it costs ingest no sled operation.
//!   Rows are kept while non-zero or carrying an expiry (so an emptied and refilled row keeps its first expiry,
//!   as PostgreSQL's kept zero rows do); an entry with no such row is removed. Readers skip zero rows.
//!
//! - `log` is the server commit order: `server_seq` counts applied movements over all devices (1, 2, ...); the
//!   history pages by it. One entry per run of consecutive server seqs that hold consecutive seqs of one device
//!   (in practice: the new movements of one push), so ingest writes one log entry per batch, not per movement.
//!   The entry keyed `f` with count `n`, first seq `s` covers server seqs `f..f+n` = the movements
//!   `device_id ++ 0x00 ++ (s..s+n)`, all of `site`. To page from server seq `x`, the history looks up the last
//!   entry keyed `<= x` (a reverse range scan), starts inside it if it reaches `x`, and walks forward; device and
//!   site filters skip whole entries without reading movements.
//! - `effects` is every stock effect ever applied, in records of up to 64 effects (a movement's effects are never
//!   split; one push at one site writes one record per 64 effects, not one entry per effect). A record belongs to
//!   one site and is keyed by the latest device time `max at` among its effects, then its first effect's server
//!   seq (unique). Its value is the effects, in apply order, each as three parts:
//!   `varint(len) ++ stock key without "site ++ 0x00"`, `varint(max at - at)`, `varint(zigzag(delta))`
//!   (LEB128 varints, low 7 bits first; zigzag maps 0, -1, 1, -2... to 0, 1, 2, 3...).
//!   All queries go through "the effects after time t": only the site's records with `max at > t` can hold such
//!   an effect, so they are a range scan from `site ++ 0x00 ++ (t + 1)`, and whatever the record holds at or
//!   before t is skipped while decoding. The book quantity a count is judged against is the current stock minus
//!   the committed effects at its key after the count's time (and minus the later-stamped effects applied earlier
//!   in the same push); for a count stamped after everything its site has recorded, the usual case, the scan is
//!   one seek that finds nothing. Stock as of t is likewise the current stock minus the effects after t (read
//!   under the writer lock, so `stock` and `effects` are seen at the same commit). A late count or an as-of query
//!   reads the site's records of everything stamped after t, all keys: the price of writing per batch.
//! - `changes` is the compacted pull feed: `change_index` remembers each entity's current entry, and writing the
//!   entity again removes that entry before appending the new one, so the feed holds one entry per entity.
//!
//! # Invariants
//!
//! - For every device, `movements` holds exactly seqs `1..=high_water[device]`, contiguous; the `log` entries
//!   cover `1..=meta.server_seq` without gap or overlap, each server seq naming exactly one stored movement whose
//!   record carries that server seq.
//! - `stock` equals the sum of [`Movement::effects`] over all stored movements (conservation, DESIGN §3.6), and
//!   equals the sum of the effects in `effects` per key.
//! - `asn_received` is the sum of the quantities of stored receipts naming a known ASN.
//! - `refs` holds exactly one entry per stored movement that has a `reference` (the document index the dashboard
//!   reads an ASN's pallets and a pick list's progress from, without walking the history). It costs a push one
//!   insert per movement naming a document, none for the others.
//! - A discrepancy is stored if and only if the movements (or the ASN close) that raised it are.
//! - All of this holds after every commit because every write is ONE sled transaction over all trees. Writers
//!   also take [`SledStore`]'s writer lock: a push reads the `effects` records before its transaction (sled
//!   transactions cannot scan), and the lock keeps that read valid until the transaction commits. sled 0.34
//!   serializes transactions globally anyway, so the lock costs no parallelism; the fdatasync after a commit
//!   runs outside it, so concurrent pushes share syncs (group commit).
//!
//! # Durability
//!
//! A push is answered `Acked` only after its transaction is on disk. sled's `flush()` writes its log but on
//! Linux only calls `sync_file_range`, which neither flushes the drive cache nor the file's metadata (its real
//! `sync_all` runs in a background thread every 500 ms; DESIGN §4). So after `flush()` we also `fdatasync` sled's
//! single data file `<dir>/db` ourselves. Office writes (master data, discrepancy updates) are synced the same
//! way before they return. sled 0.34 writes, under its directory: `db` (the log and all pages), `conf` (written
//! once at creation), `snap.<lsn>` (snapshots, rebuildable from the log) and `blobs/` (values over the blob
//! threshold, far above the size of a movement or an `effects` record, so unused here).
//!
//! # Recovery
//!
//! On open sled replays its log up to the last complete write; everything acknowledged was fdatasync'ed, so it is
//! there. Work that was committed but not yet synced may be lost; its pushes were never acknowledged, so the
//! agents still hold those movements in their journals and push them again (DESIGN §3.4). If sled cannot open
//! the directory at all, [`SledStore::open`] fails and the server refuses to start rather than run empty.
//! `meta.format` is 5. Format 4 is the same minus expiries in `stock` values: a format-4 value is a valid format-5
//! value, so opening a format-4 database only raises the mark to 5 (no data is rewritten), which keeps older
//! servers, which would fail on the new row tags, from opening it afterwards. Older formats are refused with a message naming the format, never read: format 3 kept one
//! `stock` entry per lot (value: the quantity); format 2 also kept one `log` entry per movement and one `effects`
//! entry per effect (keyed by stock key and time); a database holding movements but no format mark was written
//! before the movement log existed (format 1, movements stored without site or server seq). There is no converter
//! (no deployed data needs one): re-create the directory and let the agents push again, or run the older server.
//! `refs` came later within format 4: a database without `meta.refs_indexed` has its `refs` built from
//! `movements` once on open (one pass; the mark is written after the index is synced, so an interrupted pass is
//! redone), so older format-4 data is read as is.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use dockhand_protocol::sync::{
    Asn, Change, DocStatus, Item, Location, Movement, MovementKind, MovementSource, PickList,
    PullResponse, ScanStat, MAX_QTY,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};
use sled::{Db, Tree};
use time::OffsetDateTime;

use super::ReorderRule;
use super::{
    check_push, Comment, Discrepancy, DiscrepancyCount, DiscrepancyFilter, DiscrepancyKind,
    DiscrepancyStatus, HourCounter, HourlyCounts, MovementFilter, MovementPage, MovementRef,
    PushOutcome, Pushed, ReceivedLot, Resolution, Site, SiteScanStat, StockFilter, StockPage,
    StockPageQuery, StockPageStart, StockRow, StockSort, Store, StoreError, StoredMovement,
    OFFICE_DEVICE,
};
use crate::reconcile::{self, Document, Draft, Facts};
use crate::webhooks::OfficeEvent;

#[path = "sled_webhooks.rs"]
mod webhooks;

/// Default sled page cache: small and explicit, because sled's own default (1 GiB) is far more than an edge
/// box can spare and resident memory grows past it.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The on-disk format this code writes (see "Recovery" in the module docs).
const FORMAT: u64 = 5;

/// The last format that [`SledStore::open`] upgrades in place (by raising the mark; see "Recovery").
const UPGRADABLE_FORMAT: u64 = 4;

/// The trees, in the order of [`TREE_NAMES`]; `T::X as usize` indexes both.
#[derive(Debug, Clone, Copy)]
enum T {
    Meta,
    Movements,
    HighWater,
    Stock,
    Log,
    Effects,
    Sites,
    Items,
    Locations,
    Asns,
    PickLists,
    AsnReceived,
    Discrepancies,
    Changes,
    ChangeIndex,
    Refs,
    ScanStats,
    /// Webhook office events (sled_webhooks.rs).
    Outbox,
    ReorderRules,
}

const TREE_NAMES: [&str; 19] = [
    "meta",
    "movements",
    "high_water",
    "stock",
    "log",
    "effects",
    "sites",
    "items",
    "locations",
    "asns",
    "pick_lists",
    "asn_received",
    "discrepancies",
    "changes",
    "change_index",
    "refs",
    "scan_stats",
    "outbox",
    "reorder_rules",
];

impl T {
    fn name(self) -> &'static str {
        TREE_NAMES[self as usize]
    }
}

const META_FORMAT: &[u8] = b"format";
const META_SERVER_SEQ: &[u8] = b"server_seq";
const META_CHANGE_SEQ: &[u8] = b"change_seq";
const META_DISCREPANCY_ID: &[u8] = b"discrepancy_id";
/// Present once `refs` covers every stored movement (see "Recovery" in the module docs).
const META_REFS_INDEXED: &[u8] = b"refs_indexed";

/// Marks "no lot" in an `asn_received` key; never part of UTF-8 text.
const END_OF_TEXT: u8 = 0xFF;

/// The sled-backed store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct SledStore {
    db: Db,
    trees: Vec<Tree>,
    /// Serializes writers; see "Invariants" in the module docs for why.
    writer: Mutex<()>,
    /// sled's data file, kept open so every acknowledged push can fdatasync it.
    data_file: File,
    /// The webhook trees (sled_webhooks.rs), outside the push transaction.
    hooks: webhooks::Trees,
}

/// A movement as stored in the `movements` tree.
#[derive(Debug, Deserialize)]
struct Record {
    server_seq: u64,
    site: String,
    #[serde(with = "time::serde::rfc3339")]
    received_at: OffsetDateTime,
    movement: Movement,
}

/// [`Record`] as written: the same JSON, borrowing instead of cloning the movement. `received_at` is the
/// RFC 3339 text `time::serde::rfc3339` writes, formatted once per transaction rather than once per movement.
#[derive(Serialize)]
struct RecordRef<'a> {
    server_seq: u64,
    site: &'a str,
    received_at: &'a str,
    movement: &'a Movement,
}

type TxError = ConflictableTransactionError<StoreError>;
type TxResult<R> = Result<R, TxError>;

fn abort(e: StoreError) -> TxError {
    ConflictableTransactionError::Abort(e)
}

/// How long [`open_db`] waits for sled's file lock before giving up.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens sled, waiting up to [`LOCK_WAIT`] for its exclusive lock on `db`. A handle dropped a moment
/// ago in this process lets the lock go only when sled's background flusher ends, so an immediate
/// reopen (a restart of the store in one process, the tests) can find it still held; another
/// process holding the database is reported after the wait, naming the directory.
fn open_db(dir: &Path, cache_bytes: u64) -> Result<Db, StoreError> {
    let end = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if std::time::Instant::now() >= end {
                    return Err(StoreError::Io(std::io::Error::new(
                        e.kind(),
                        format!(
                            "{} is in use by another process (is another dockhand-server running on it?): {e}",
                            dir.display()
                        ),
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl SledStore {
    /// Opens (or creates) the database in `dir` with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = open_db(dir, cache_bytes)?;
        let trees = TREE_NAMES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<Result<Vec<_>, _>>()?;
        let data_file = File::open(dir.join("db"))?;
        let hooks = webhooks::Trees::open(&db)?;
        let store = SledStore {
            db,
            trees,
            writer: Mutex::new(()),
            data_file,
            hooks,
        };
        match store.tree(T::Meta).get(META_FORMAT)? {
            Some(v) if decode_u64(T::Meta, &v)? == FORMAT => {}
            Some(v) if decode_u64(T::Meta, &v)? == UPGRADABLE_FORMAT => {
                store
                    .tree(T::Meta)
                    .insert(META_FORMAT, &FORMAT.to_be_bytes())?;
                store.sync()?;
                tracing::info!(dir = %dir.display(), "sled database upgraded from format 4 to 5 (stock rows may carry an expiry)");
            }
            Some(v) => {
                let found = decode_u64(T::Meta, &v)?;
                let message = if found < FORMAT {
                    format!(
                        "{} holds database format {found}, written by an older Dockhand server; this one reads \
                         only format {FORMAT} (movement log and stock effects per batch, stock grouped by item and \
                         location) and cannot convert it: \
                         re-create it and let the agents push again, or run the older server",
                        dir.display()
                    )
                } else {
                    format!(
                        "{} holds database format {found}, written by a newer Dockhand server; this one reads \
                         only format {FORMAT}",
                        dir.display()
                    )
                };
                return Err(StoreError::Corrupt {
                    tree: T::Meta.name(),
                    message,
                });
            }
            None if !store.tree(T::Movements).is_empty() => {
                return Err(StoreError::Corrupt {
                    tree: T::Meta.name(),
                    message: format!(
                    "{} was written by a Dockhand server older than format {FORMAT} (no movement \
                         log); re-create it and let the agents push again, or run the older server",
                    dir.display()
                ),
                })
            }
            None => {
                store
                    .tree(T::Meta)
                    .insert(META_FORMAT, &FORMAT.to_be_bytes())?;
                store.sync()?;
            }
        }
        store.index_references()?;
        Ok(store)
    }

    /// Builds `refs` from `movements` if this database predates it (see "Recovery" in the module docs). Runs
    /// before the store serves anything, so plain inserts suffice; they are idempotent, and the mark is written
    /// only once the index is complete and synced, so an interrupted pass is simply done again on the next open.
    /// Memory stays one record at a time, however many movements there are.
    fn index_references(&self) -> Result<(), StoreError> {
        if self.tree(T::Meta).contains_key(META_REFS_INDEXED)? {
            return Ok(());
        }
        let refs = self.tree(T::Refs);
        let mut indexed = 0u64;
        for entry in self.tree(T::Movements).iter() {
            let (mkey, value) = entry?;
            let record: Record = from_json(T::Movements, &value)?;
            if let Some(r) = &record.movement.reference {
                refs.insert(reference_key(r, record.server_seq), mkey)?;
                indexed += 1;
            }
        }
        if indexed > 0 {
            tracing::info!(
                movements = indexed,
                "indexed the stored movements by document reference (once, for data written before the index)"
            );
        }
        self.sync()?;
        self.tree(T::Meta).insert(META_REFS_INDEXED, &[1u8][..])?;
        self.sync()
    }

    fn tree(&self, t: T) -> &Tree {
        &self.trees[t as usize]
    }

    /// Makes everything committed so far durable: sled's flush, then a real fdatasync (see the module docs).
    fn sync(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.data_file.sync_data()?;
        Ok(())
    }

    fn writer(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data of its own, so a panic while holding it leaves nothing inconsistent.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` as one transaction over all trees.
    fn transact<R>(&self, f: impl Fn(&Tx<'_>) -> TxResult<R>) -> Result<R, StoreError> {
        let result = self
            .trees
            .as_slice()
            .transaction(|view: &Vec<TransactionalTree>| f(&Tx(view)));
        match result {
            Ok(r) => Ok(r),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StoreError::Db(e)),
        }
    }

    /// A master-data or office write: one transaction under the writer lock, synced before returning.
    fn write<R>(&self, f: impl Fn(&Tx<'_>, &mut Writer) -> TxResult<R>) -> Result<R, StoreError> {
        let now = OffsetDateTime::now_utc();
        let guard = self.writer();
        let r = self.transact(|tx| {
            let mut w = Writer::start(tx, now)?;
            let r = f(tx, &mut w)?;
            w.finish(tx)?;
            Ok(r)
        })?;
        drop(guard);
        self.sync()?;
        Ok(r)
    }

    fn get_json<V: DeserializeOwned>(&self, t: T, key: &[u8]) -> Result<Option<V>, StoreError> {
        match self.tree(t).get(key)? {
            Some(v) => from_json(t, &v).map(Some),
            None => Ok(None),
        }
    }

    fn scan_json<V: DeserializeOwned>(&self, t: T, prefix: &[u8]) -> Result<Vec<V>, StoreError> {
        self.tree(t)
            .scan_prefix(prefix)
            .map(|entry| from_json(t, &entry?.1))
            .collect()
    }

    /// For every count in the batch: the sum of the already committed effects at the counted stock key after the
    /// count's time. Read before the push transaction (which cannot scan), under the writer lock. One scan of the
    /// site's `effects` records whose latest effect is after the earliest count; for counts stamped after
    /// everything the site has recorded (a device in sync) that is a single seek that finds nothing.
    fn committed_after_counts(
        &self,
        site: &str,
        movements: &[Movement],
    ) -> Result<HashMap<u64, i64>, StoreError> {
        // stock key without the site -> (count's at, seq) of the counts at that key
        let mut counts: HashMap<Vec<u8>, Vec<(u128, u64)>> = HashMap::new();
        let mut earliest = u128::MAX;
        for m in movements {
            let (MovementKind::Count, Some(to)) = (m.kind, &m.to_location) else {
                continue;
            };
            let key = stock_key(site, to, &m.gtin, m.lot.as_deref());
            let at = at_code(m.at);
            earliest = earliest.min(at);
            counts
                .entry(key[site.len() + 1..].to_vec())
                .or_default()
                .push((at, m.seq));
        }
        let mut sums: HashMap<u64, i128> = HashMap::new();
        if !counts.is_empty() {
            self.effects_after(Some(site), earliest, |_, suffix, at, delta| {
                for (count_at, seq) in counts.get(suffix).into_iter().flatten() {
                    if at > *count_at {
                        *sums.entry(*seq).or_default() += i128::from(delta);
                    }
                }
            })?;
        }
        let mut out = HashMap::new();
        for (suffix, list) in &counts {
            for (_, seq) in list {
                let sum = sums.get(seq).copied().unwrap_or(0);
                let what = || format!("{site}/{}", describe_key(suffix));
                out.insert(*seq, to_i64(sum, &what())?);
            }
        }
        Ok(out)
    }

    /// Calls `f(site, stock key without the site, at, delta)` for every committed effect with `at > after` of
    /// `site` (all sites when `None`), and possibly for some earlier ones of the same records (`f` must check `at`).
    /// Reads only the records whose latest effect is after `after`.
    fn effects_after(
        &self,
        site: Option<&str>,
        after: u128,
        mut f: impl FnMut(&[u8], &[u8], u128, i64),
    ) -> Result<(), StoreError> {
        let Some(from_at) = after.checked_add(1) else {
            return Ok(());
        };
        let tree = self.tree(T::Effects);
        let mut next_site: Vec<u8> = match site {
            Some(site) => text_key(&[site, ""]),
            None => Vec::new(),
        };
        loop {
            // The next site that has records (sites hold no NUL, so `site ++ 0x01` is past all of a site's keys).
            let Some(first) = tree.range(next_site.as_slice()..).next() else {
                return Ok(());
            };
            let (first, _) = first?;
            let this_site = key_site(&first);
            if site.is_some_and(|s| s.as_bytes() != this_site) {
                return Ok(());
            }
            let mut start = this_site.to_vec();
            start.push(0);
            start.extend_from_slice(&from_at.to_be_bytes());
            let mut end = this_site.to_vec();
            end.push(1);
            for entry in tree.range(start..end.clone()) {
                let (key, value) = entry?;
                for_each_effect(&key, &value, &mut f)?;
            }
            if site.is_some() {
                return Ok(());
            }
            next_site = end;
        }
    }

    fn movement_record(&self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        self.get_json(T::Movements, key)
    }
}

/// The trees inside one transaction.
struct Tx<'a>(&'a [TransactionalTree]);

impl Tx<'_> {
    fn t(&self, t: T) -> &TransactionalTree {
        &self.0[t as usize]
    }

    fn has(&self, t: T, key: &[u8]) -> TxResult<bool> {
        Ok(self.t(t).get(key)?.is_some())
    }

    fn u64(&self, t: T, key: &[u8]) -> TxResult<u64> {
        match self.t(t).get(key)? {
            Some(v) => decode_u64(t, &v).map_err(abort),
            None => Ok(0),
        }
    }

    fn json<V: DeserializeOwned>(&self, t: T, key: &[u8]) -> TxResult<Option<V>> {
        match self.t(t).get(key)? {
            Some(v) => from_json(t, &v).map(Some).map_err(abort),
            None => Ok(None),
        }
    }

    fn put_json<V: Serialize>(&self, t: T, key: &[u8], value: &V) -> TxResult<()> {
        let bytes = to_json(t, value).map_err(abort)?;
        self.t(t).insert(key, bytes)?;
        Ok(())
    }
}

/// The state one write transaction carries: counters (read at the start, written at the end), stock effects of
/// the movements applied so far in this transaction, and what to log after the commit.
struct Writer {
    now: OffsetDateTime,
    server_seq: u64,
    change_seq: u64,
    discrepancy_id: u64,
    start: (u64, u64, u64),
    /// `now` as the RFC 3339 text of a record's `received_at`.
    received_at: String,
    /// Every effect applied in this transaction, in order; written to `effects` by [`Writer::finish`].
    pending: Vec<Pending>,
    /// Stock rows touched in this transaction, each once, read through on first use; the entries with a
    /// changed row are written by [`Writer::finish`]. Effects and groups name rows by index, so a stock key is
    /// hashed once per effect and its bytes live here only.
    rows: Vec<StockSlot>,
    /// Stock key -> index in `rows`.
    row_index: HashMap<Vec<u8>, usize>,
    /// The `stock` entries read so far (key: the stock key's first three segments): all rows of the entry are
    /// read at once, plus those this transaction added.
    groups: HashMap<Vec<u8>, StockGroup>,
    /// Whether an item (by GTIN) exists (master data does not change during a push).
    items: HashMap<Vec<u8>, bool>,
    /// Whether a location (by `locations` key) exists.
    locations: HashMap<Vec<u8>, bool>,
    /// Scratch space for building keys.
    scratch: Vec<u8>,
    /// Scratch space for the stock key of the effect being applied.
    key: Vec<u8>,
    /// Scratch space for the record of the movement being applied (sled copies it on insert).
    record: Vec<u8>,
    /// The `log` runs of the movements applied in this transaction.
    log: Vec<LogRun>,
    /// Stock rows left negative, logged after commit (the closure may run more than once).
    negative: Vec<(Vec<u8>, i64)>,
}

/// One stock row a transaction touched.
struct StockSlot {
    /// The full stock key (site ++ 0x00 ++ ...).
    key: Vec<u8>,
    /// The quantity as of this point of the transaction.
    qty: i64,
    /// The quantity committed before the transaction.
    committed: i64,
    /// The row's expiry (committed, or first set by this transaction).
    expiry: Option<Vec<u8>>,
}

/// One `stock` entry a transaction read.
#[derive(Default)]
struct StockGroup {
    /// Indices in [`Writer::rows`] of the entry's rows.
    rows: Vec<usize>,
    /// Whether this transaction set a row's first expiry (the entry must be written even if no quantity moved).
    expiry_set: bool,
}

/// One stock effect applied in the current transaction.
struct Pending {
    /// The stock row, an index in [`Writer::rows`].
    row: usize,
    at: u128,
    delta: i64,
    server_seq: u64,
}

/// Consecutive server seqs holding consecutive seqs of one device: one `log` entry.
struct LogRun {
    first_server_seq: u64,
    device_id: String,
    first_seq: u64,
    count: u64,
    site: String,
}

impl Writer {
    fn start(tx: &Tx<'_>, now: OffsetDateTime) -> TxResult<Self> {
        let received_at = now
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| {
                abort(StoreError::Corrupt {
                    tree: T::Movements.name(),
                    message: format!("cannot encode the receipt time {now}: {e}"),
                })
            })?;
        let server_seq = tx.u64(T::Meta, META_SERVER_SEQ)?;
        let change_seq = tx.u64(T::Meta, META_CHANGE_SEQ)?;
        let discrepancy_id = tx.u64(T::Meta, META_DISCREPANCY_ID)?;
        Ok(Writer {
            now,
            server_seq,
            change_seq,
            discrepancy_id,
            start: (server_seq, change_seq, discrepancy_id),
            received_at,
            pending: Vec::new(),
            rows: Vec::new(),
            row_index: HashMap::new(),
            groups: HashMap::new(),
            items: HashMap::new(),
            locations: HashMap::new(),
            scratch: Vec::new(),
            key: Vec::new(),
            record: Vec::new(),
            log: Vec::new(),
            negative: Vec::new(),
        })
    }

    /// The index in `rows` of the stock row at `key`, reading its `stock` entry on first use.
    fn row(&mut self, tx: &Tx<'_>, key: &[u8]) -> TxResult<usize> {
        if let Some(&i) = self.row_index.get(key) {
            return Ok(i);
        }
        let (group, _) = split_stock_key(key);
        if !self.groups.contains_key(group) {
            let mut entry = StockGroup::default();
            if let Some(value) = tx.t(T::Stock).get(group)? {
                let (rows, index) = (&mut self.rows, &mut self.row_index);
                decode_stock(group, &value, |key, qty, expiry| {
                    index.insert(key.clone(), rows.len());
                    entry.rows.push(rows.len());
                    rows.push(StockSlot {
                        key,
                        qty,
                        committed: qty,
                        expiry: expiry.map(<[u8]>::to_vec),
                    });
                })
                .map_err(abort)?;
            }
            self.groups.insert(group.to_vec(), entry);
            if let Some(&i) = self.row_index.get(key) {
                return Ok(i);
            }
        }
        let i = self.rows.len();
        self.rows.push(StockSlot {
            key: key.to_vec(),
            qty: 0,
            committed: 0,
            expiry: None,
        });
        self.row_index.insert(key.to_vec(), i);
        if let Some(entry) = self.groups.get_mut(group) {
            entry.rows.push(i);
        }
        Ok(i)
    }

    /// Whether the item exists (cached for the transaction).
    fn item_known(&mut self, tx: &Tx<'_>, gtin: &str) -> TxResult<bool> {
        if let Some(known) = self.items.get(gtin.as_bytes()) {
            return Ok(*known);
        }
        let known = tx.has(T::Items, gtin.as_bytes())?;
        self.items.insert(gtin.as_bytes().to_vec(), known);
        Ok(known)
    }

    /// Whether the location exists at the site; `true` for none (cached for the transaction).
    fn location_known(&mut self, tx: &Tx<'_>, site: &str, loc: Option<&str>) -> TxResult<bool> {
        let Some(loc) = loc else {
            return Ok(true);
        };
        self.scratch.clear();
        self.scratch.extend_from_slice(site.as_bytes());
        self.scratch.push(0);
        self.scratch.extend_from_slice(loc.as_bytes());
        if let Some(known) = self.locations.get(self.scratch.as_slice()) {
            return Ok(*known);
        }
        let known = tx.has(T::Locations, &self.scratch)?;
        self.locations.insert(self.scratch.clone(), known);
        Ok(known)
    }

    /// Writes what the transaction accumulated (stock, log runs, effect records) and the counters.
    fn finish(&self, tx: &Tx<'_>) -> TxResult<()> {
        for (group, entry) in &self.groups {
            let slots = entry.rows.iter().map(|&i| &self.rows[i]);
            if !entry.expiry_set && slots.clone().all(|r| r.qty == r.committed) {
                continue;
            }
            let rows: Vec<StockValueRow<'_>> = slots
                .map(|r| (r.key.as_slice(), r.qty, r.expiry.as_deref()))
                .collect();
            match encode_stock(rows) {
                Some(value) => tx.t(T::Stock).insert(group.as_slice(), value)?,
                None => tx.t(T::Stock).remove(group.as_slice())?,
            };
        }
        for run in &self.log {
            tx.t(T::Log)
                .insert(&run.first_server_seq.to_be_bytes(), encode_log(run))?;
        }
        for (key, value) in encode_effects(&self.pending, &self.rows) {
            tx.t(T::Effects).insert(key, value)?;
        }
        let meta = tx.t(T::Meta);
        if self.server_seq != self.start.0 {
            meta.insert(META_SERVER_SEQ, &self.server_seq.to_be_bytes())?;
        }
        if self.change_seq != self.start.1 {
            meta.insert(META_CHANGE_SEQ, &self.change_seq.to_be_bytes())?;
        }
        if self.discrepancy_id != self.start.2 {
            meta.insert(META_DISCREPANCY_ID, &self.discrepancy_id.to_be_bytes())?;
        }
        Ok(())
    }

    /// Stores one new movement of `site` (its seq is the device's high-water + 1; the caller moves the mark),
    /// applies its effects and records what reconciliation finds. `committed_after` is, for a count, the sum of
    /// committed effects at the counted key after the count's time.
    fn apply(
        &mut self,
        tx: &Tx<'_>,
        site: &str,
        m: &Movement,
        committed_after: i64,
    ) -> TxResult<()> {
        self.server_seq += 1;
        let server_seq = self.server_seq;
        let mkey = movement_key(&m.device_id, m.seq);
        let record = RecordRef {
            server_seq,
            site,
            received_at: &self.received_at,
            movement: m,
        };
        self.record.clear();
        serde_json::to_writer(&mut self.record, &record).map_err(|e| {
            abort(StoreError::Corrupt {
                tree: T::Movements.name(),
                message: format!("cannot encode: {e}"),
            })
        })?;
        tx.t(T::Movements)
            .insert(mkey.as_slice(), self.record.as_slice())?;
        if let Some(r) = &m.reference {
            tx.t(T::Refs)
                .insert(reference_key(r, server_seq), mkey.as_slice())?;
        }
        match self.log.last_mut() {
            Some(run)
                if run.device_id == m.device_id
                    && run.site == site
                    && run.first_seq.checked_add(run.count) == Some(m.seq)
                    && run.first_server_seq + run.count == server_seq =>
            {
                run.count += 1;
            }
            _ => self.log.push(LogRun {
                first_server_seq: server_seq,
                device_id: m.device_id.clone(),
                first_seq: m.seq,
                count: 1,
                site: site.to_string(),
            }),
        }

        let at = at_code(m.at);
        let mut stock_after = Vec::with_capacity(2);
        for effect in m.effects() {
            let i = self.stock_row(tx, site, effect.location, &m.gtin, m.lot.as_deref())?;
            let row = &mut self.rows[i];
            let new = row
                .qty
                .checked_add(effect.delta)
                .ok_or_else(|| abort(StoreError::Overflow(describe_key(&row.key))))?;
            row.qty = new;
            if new < 0 {
                self.negative.push((row.key.clone(), new));
            }
            stock_after.push(new);
            if let (Some(expiry), true, None) = (&m.expiry, effect.delta > 0, &row.expiry) {
                // First expiry into the row wins (its entry is loaded: `stock_row` read it).
                row.expiry = Some(expiry.as_bytes().to_vec());
                let (group, _) = split_stock_key(&row.key);
                if let Some(entry) = self.groups.get_mut(group) {
                    entry.expiry_set = true;
                }
            }
            self.pending.push(Pending {
                row: i,
                at,
                delta: effect.delta,
                server_seq,
            });
        }

        let from_known = self.location_known(tx, site, m.from_location.as_deref())?;
        let to_known = self.location_known(tx, site, m.to_location.as_deref())?;
        let (asn, list): (Option<Asn>, Option<PickList>) = match &m.reference {
            None => (None, None),
            Some(r) => match tx.json::<Asn>(T::Asns, r.as_bytes())? {
                Some(asn) => (Some(asn), None),
                None => (None, tx.json(T::PickLists, r.as_bytes())?),
            },
        };
        let mut facts = Facts {
            item_known: self.item_known(tx, &m.gtin)?,
            from_known,
            to_known,
            stock_after,
            document: match (&m.reference, &asn, &list) {
                (None, _, _) => Document::None,
                (Some(_), Some(asn), _) => Document::Asn(asn),
                (Some(_), None, Some(list)) => Document::PickList(list),
                (Some(_), None, None) => Document::Unknown,
            },
            ..Facts::default()
        };
        if let (Some(asn), MovementKind::Receive) = (&asn, m.kind) {
            let received = |key: Vec<u8>| -> TxResult<u64> {
                let n = tx.u64(T::AsnReceived, &key)?.saturating_add(m.qty);
                tx.t(T::AsnReceived).insert(key, &n.to_be_bytes())?;
                Ok(n)
            };
            facts.asn_received_gtin = received(received_key(&asn.id, &m.gtin, None))?;
            facts.asn_received_lot =
                received(received_key(&asn.id, &m.gtin, Some(m.lot.as_deref())))?;
        }
        if let (MovementKind::Count, Some(to)) = (m.kind, &m.to_location) {
            let i = self.stock_row(tx, site, to, &m.gtin, m.lot.as_deref())?;
            let now = i128::from(self.rows[i].qty);
            let later_in_tx: i128 = self
                .pending
                .iter()
                .filter(|p| p.row == i && p.at > at)
                .map(|p| i128::from(p.delta))
                .sum();
            let book = now - i128::from(committed_after) - later_in_tx;
            facts.book_at_count =
                Some(to_i64(book, &describe_key(&self.rows[i].key)).map_err(abort)?);
        }
        for draft in reconcile::evaluate(m, &facts) {
            let this = MovementRef {
                device_id: m.device_id.clone(),
                seq: m.seq,
            };
            self.raise(tx, site, draft, vec![this])?;
        }
        Ok(())
    }

    /// [`Writer::row`] of the stock key `(site, location, gtin, lot)`, built in a reused buffer.
    fn stock_row(
        &mut self,
        tx: &Tx<'_>,
        site: &str,
        location: &str,
        gtin: &str,
        lot: Option<&str>,
    ) -> TxResult<usize> {
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        for (i, part) in [Some(site), Some(location), Some(gtin), lot]
            .into_iter()
            .flatten()
            .enumerate()
        {
            if i > 0 {
                key.push(0);
            }
            key.extend_from_slice(part.as_bytes());
        }
        let row = self.row(tx, &key);
        self.key = key;
        row
    }

    fn raise(
        &mut self,
        tx: &Tx<'_>,
        site: &str,
        d: Draft,
        movements: Vec<MovementRef>,
    ) -> TxResult<()> {
        self.discrepancy_id += 1;
        let record = Discrepancy {
            id: self.discrepancy_id,
            site: site.to_string(),
            kind: d.kind,
            status: DiscrepancyStatus::Open,
            created_at: self.now,
            movements,
            reference: d.reference,
            location: d.location,
            gtin: d.gtin,
            lot: d.lot,
            expected: d.expected,
            actual: d.actual,
            message: d.message,
            comments: Vec::new(),
            resolution: None,
        };
        tx.put_json(
            T::Discrepancies,
            &self.discrepancy_id.to_be_bytes(),
            &record,
        )
    }

    /// Appends `change` to the feed, replacing the entity's previous entry. `site` `None`: visible to all sites.
    fn change(
        &mut self,
        tx: &Tx<'_>,
        entity: &[u8],
        site: Option<&str>,
        change: &Change,
    ) -> TxResult<()> {
        self.change_seq += 1;
        let seq = self.change_seq.to_be_bytes();
        if let Some(old) = tx.t(T::ChangeIndex).insert(entity, &seq)? {
            tx.t(T::Changes).remove(old)?;
        }
        let mut value = site.unwrap_or("").as_bytes().to_vec();
        value.push(0);
        value.extend(to_json(T::Changes, change).map_err(abort)?);
        tx.t(T::Changes).insert(&seq, value)?;
        Ok(())
    }
}

/// What the push transaction decided, plus what to log after commit.
struct Applied {
    outcome: PushOutcome,
    high_water_before: u64,
    negative: Vec<(Vec<u8>, i64)>,
}

/// The two kinds of office documents, which share their rules.
#[derive(Clone, Copy)]
enum Doc {
    Asn,
    PickList,
}

impl Doc {
    fn name(self) -> &'static str {
        match self {
            Doc::Asn => "ASN",
            Doc::PickList => "pick list",
        }
    }

    fn entity(self, id: &str) -> Vec<u8> {
        text_key(&[
            match self {
                Doc::Asn => "a",
                Doc::PickList => "p",
            },
            id,
        ])
    }
}

/// Refuses a write to a document that is no longer open, or a put that tries to set a status or move it.
fn check_doc_put(
    doc: Doc,
    id: &str,
    site: &str,
    status: DocStatus,
    old: Option<(&str, DocStatus)>,
) -> TxResult<()> {
    let refuse = |m: String| Err(abort(StoreError::Refused(m)));
    if let Some((old_site, old_status)) = old {
        if old_status != DocStatus::Open {
            return refuse(format!(
                "{} {id} is {}; it can no longer be changed",
                doc.name(),
                status_name(old_status)
            ));
        }
        if old_site != site {
            return refuse(format!(
                "{} {id} belongs to site {old_site}; it cannot move to {site}",
                doc.name()
            ));
        }
    }
    if status != DocStatus::Open {
        return refuse(format!(
            "{} {id} must be written with status open; close or cancel it through its status",
            doc.name()
        ));
    }
    Ok(())
}

fn status_name(s: DocStatus) -> &'static str {
    match s {
        DocStatus::Open => "open",
        DocStatus::Closed => "closed",
        DocStatus::Cancelled => "cancelled",
    }
}

/// Checks a new status for an open document; `Err` with the reason otherwise.
fn check_status_change(doc: Doc, id: &str, old: DocStatus, new: DocStatus) -> TxResult<()> {
    if old != DocStatus::Open {
        return Err(abort(StoreError::Refused(format!(
            "{} {id} is already {}",
            doc.name(),
            status_name(old)
        ))));
    }
    if new == DocStatus::Open {
        return Err(abort(StoreError::Refused(format!(
            "{} {id} is open; the new status must be closed or cancelled",
            doc.name()
        ))));
    }
    Ok(())
}

impl Store for SledStore {
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

    fn push_reporting_mark(
        &self,
        site: &str,
        device_id: &str,
        movements: &[Movement],
    ) -> Result<Pushed, StoreError> {
        check_push(site, device_id, movements)?;
        let hw_key = device_id.as_bytes();
        let now = OffsetDateTime::now_utc();
        let guard = self.writer();
        let committed_after = self.committed_after_counts(site, movements)?;
        let applied = self.transact(|tx| {
            let hw = tx.u64(T::HighWater, hw_key)?;
            let Some(first) = movements.first() else {
                return Ok(Applied {
                    outcome: PushOutcome::Acked { acked_through: hw },
                    high_water_before: hw,
                    negative: Vec::new(),
                });
            };
            if first.seq > hw + 1 {
                return Ok(Applied {
                    outcome: PushOutcome::Gap {
                        expected_seq: hw + 1,
                    },
                    high_water_before: hw,
                    negative: Vec::new(),
                });
            }
            // Replayed prefix: every seq <= hw must match what is stored, else nothing is applied.
            for m in movements.iter().take_while(|m| m.seq <= hw) {
                let stored: Record = tx
                    .json(T::Movements, &movement_key(device_id, m.seq))?
                    .ok_or_else(|| {
                        abort(StoreError::Corrupt {
                            tree: T::Movements.name(),
                            message: format!(
                                "{device_id} seq {} missing below high-water {hw}",
                                m.seq
                            ),
                        })
                    })?;
                if stored.movement != *m {
                    return Ok(Applied {
                        outcome: PushOutcome::Conflict { seq: m.seq },
                        high_water_before: hw,
                        negative: Vec::new(),
                    });
                }
            }
            // New suffix: starts at hw + 1 because the batch is contiguous.
            let mut w = Writer::start(tx, now)?;
            w.rows.reserve(movements.len());
            w.row_index.reserve(movements.len());
            w.pending.reserve(movements.len());
            let mut new_hw = hw;
            for m in movements.iter().filter(|m| m.seq > hw) {
                let after = committed_after.get(&m.seq).copied().unwrap_or(0);
                w.apply(tx, site, m, after)?;
                new_hw = m.seq;
            }
            if new_hw != hw {
                tx.t(T::HighWater).insert(hw_key, &new_hw.to_be_bytes())?;
            }
            w.finish(tx)?;
            Ok(Applied {
                outcome: PushOutcome::Acked {
                    acked_through: new_hw,
                },
                high_water_before: hw,
                negative: w.negative,
            })
        })?;
        drop(guard);
        if let PushOutcome::Acked { .. } = applied.outcome {
            // Also for a pure replay: the original commit may belong to a concurrent push that has not synced yet.
            self.sync()?;
        }
        for (key, qty) in &applied.negative {
            tracing::warn!(device = device_id, stock = %describe_key(key), qty, "stock went negative; a discrepancy for the office");
        }
        Ok(Pushed {
            outcome: applied.outcome,
            high_water_before: applied.high_water_before,
        })
    }

    fn high_water(&self, device_id: &str) -> Result<u64, StoreError> {
        match self.tree(T::HighWater).get(device_id.as_bytes())? {
            Some(v) => decode_u64(T::HighWater, &v),
            None => Ok(0),
        }
    }

    fn stock(&self, filter: &StockFilter) -> Result<Vec<StockRow>, StoreError> {
        let mut rows = Vec::new();
        for entry in self.tree(T::Stock).scan_prefix(scope_prefix(filter)) {
            let (group, value) = entry?;
            let mut found = Vec::new();
            decode_stock(&group, &value, |key, qty, expiry| {
                if qty != 0 {
                    found.push((key, qty, expiry.map(<[u8]>::to_vec)));
                }
            })?;
            for (key, qty, expiry) in found {
                let row = stock_row(&key, qty, expiry.as_deref())?;
                if stock_matches(filter, &row) {
                    rows.push(row);
                }
            }
        }
        Ok(rows)
    }

    fn movement(&self, device_id: &str, seq: u64) -> Result<Option<Movement>, StoreError> {
        Ok(self
            .movement_record(&movement_key(device_id, seq))?
            .map(|r| r.movement))
    }

    fn movement_count(&self) -> Result<u64, StoreError> {
        Ok(self.tree(T::Movements).len() as u64)
    }

    fn stock_as_of(
        &self,
        filter: &StockFilter,
        at: OffsetDateTime,
    ) -> Result<Vec<StockRow>, StoreError> {
        // Stock now minus the effects after `at`. The writer lock keeps `stock` and `effects` consistent with each
        // other while both are read.
        let limit = at_code(at);
        let prefix = scope_prefix(filter);
        let mut sums: BTreeMap<Vec<u8>, i128> = BTreeMap::new();
        // As-of rows show the expiry known now: it is set once per row and never changes.
        let mut expiries: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        {
            let _guard = self.writer();
            for entry in self.tree(T::Stock).scan_prefix(&prefix) {
                let (group, value) = entry?;
                decode_stock(&group, &value, |key, qty, expiry| {
                    if let Some(expiry) = expiry {
                        expiries.insert(key.clone(), expiry.to_vec());
                    }
                    sums.insert(key, i128::from(qty));
                })?;
            }
            let mut key = Vec::new();
            self.effects_after(filter.site.as_deref(), limit, |site, suffix, at, delta| {
                if at <= limit {
                    return;
                }
                key.clear();
                key.extend_from_slice(site);
                key.push(0);
                key.extend_from_slice(suffix);
                if !key.starts_with(&prefix) {
                    return;
                }
                match sums.get_mut(key.as_slice()) {
                    Some(sum) => *sum -= i128::from(delta),
                    None => {
                        sums.insert(key.clone(), -i128::from(delta));
                    }
                }
            })?;
        }
        let mut rows = Vec::new();
        for (key, qty) in sums {
            if qty == 0 {
                continue;
            }
            let expiry = expiries.get(&key).map(Vec::as_slice);
            let row = stock_row(&key, to_i64(qty, &describe_key(&key))?, expiry)?;
            if stock_matches(filter, &row) {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    fn movements(
        &self,
        filter: &MovementFilter,
        after: u64,
        limit: usize,
    ) -> Result<MovementPage, StoreError> {
        let mut page = MovementPage {
            movements: Vec::new(),
            next: None,
        };
        let Some(start) = after.checked_add(1) else {
            return Ok(page);
        };
        let log = self.tree(T::Log);
        // The entry holding `start` is the last one keyed at or before it, if it reaches that far.
        let first = match log.range(..=start.to_be_bytes()).next_back() {
            Some(entry) => {
                let (key, value) = entry?;
                let e = decode_log(&key, &value)?;
                if e.first_server_seq + (e.count - 1) >= start {
                    e.first_server_seq
                } else {
                    start
                }
            }
            None => start,
        };
        'entries: for entry in log.range(first.to_be_bytes()..) {
            let (key, value) = entry?;
            let e = decode_log(&key, &value)?;
            // Device and site filters need no movement decoding: the log entry names both.
            if filter
                .device_id
                .as_ref()
                .is_some_and(|d| d.as_str() != e.device_id)
                || filter.site.as_ref().is_some_and(|s| s.as_bytes() != e.site)
            {
                continue;
            }
            let skip = start.saturating_sub(e.first_server_seq);
            for i in skip..e.count {
                let server_seq = e.first_server_seq + i;
                let mkey = movement_key(e.device_id, e.first_seq + i);
                let record = self
                    .movement_record(&mkey)?
                    .filter(|r| r.server_seq == server_seq)
                    .ok_or_else(|| StoreError::Corrupt {
                        tree: T::Log.name(),
                        message: format!(
                            "server seq {server_seq} names {} which is not stored as such",
                            describe_key(&mkey)
                        ),
                    })?;
                if !movement_matches(filter, &record) {
                    continue;
                }
                if page.movements.len() == limit {
                    page.next = page.movements.last().map(|m| m.server_seq);
                    break 'entries;
                }
                page.movements.push(StoredMovement {
                    server_seq,
                    site: record.site,
                    received_at: record.received_at,
                    movement: record.movement,
                });
            }
        }
        Ok(page)
    }

    fn put_site(&self, site: &Site) -> Result<(), StoreError> {
        check_text("site code", &site.code)?;
        self.write(|tx, _| tx.put_json(T::Sites, site.code.as_bytes(), site))
    }

    fn sites(&self) -> Result<Vec<Site>, StoreError> {
        self.scan_json(T::Sites, b"")
    }

    fn put_items(&self, items: &[Item]) -> Result<(), StoreError> {
        for item in items {
            check_text("gtin", &item.gtin)?;
        }
        self.write(|tx, w| {
            for item in items {
                tx.put_json(T::Items, item.gtin.as_bytes(), item)?;
                w.change(
                    tx,
                    &text_key(&["i", &item.gtin]),
                    None,
                    &Change::Item(item.clone()),
                )?;
            }
            Ok(())
        })
    }

    fn item(&self, gtin: &str) -> Result<Option<Item>, StoreError> {
        self.get_json(T::Items, gtin.as_bytes())
    }

    fn items(&self, after: Option<&str>, limit: usize) -> Result<Vec<Item>, StoreError> {
        let tree = self.tree(T::Items);
        let iter = match after {
            Some(after) => tree.range::<&[u8], _>((
                std::ops::Bound::Excluded(after.as_bytes()),
                std::ops::Bound::Unbounded,
            )),
            None => tree.iter(),
        };
        iter.take(limit)
            .map(|entry| from_json(T::Items, &entry?.1))
            .collect()
    }

    fn put_locations(&self, site: &str, locations: &[Location]) -> Result<(), StoreError> {
        check_text("site", site)?;
        for l in locations {
            check_text("location code", &l.code)?;
        }
        self.write(|tx, w| {
            for l in locations {
                tx.put_json(T::Locations, &text_key(&[site, &l.code]), l)?;
                w.change(
                    tx,
                    &text_key(&["l", site, &l.code]),
                    Some(site),
                    &Change::Location(l.clone()),
                )?;
            }
            Ok(())
        })
    }

    fn locations(&self, site: &str) -> Result<Vec<Location>, StoreError> {
        self.scan_json(T::Locations, &text_key(&[site, ""]))
    }

    fn put_asn(&self, asn: &Asn) -> Result<(), StoreError> {
        check_text("ASN id", &asn.id)?;
        check_text("site", &asn.site)?;
        self.write(|tx, w| {
            let old: Option<Asn> = tx.json(T::Asns, asn.id.as_bytes())?;
            let old = old.as_ref().map(|o| (o.site.as_str(), o.status));
            check_doc_put(Doc::Asn, &asn.id, &asn.site, asn.status, old)?;
            tx.put_json(T::Asns, asn.id.as_bytes(), asn)?;
            w.change(
                tx,
                &Doc::Asn.entity(&asn.id),
                Some(&asn.site),
                &Change::Asn(asn.clone()),
            )
        })
    }

    fn asn(&self, id: &str) -> Result<Option<Asn>, StoreError> {
        self.get_json(T::Asns, id.as_bytes())
    }

    fn asns(&self, site: &str, status: Option<DocStatus>) -> Result<Vec<Asn>, StoreError> {
        let all: Vec<Asn> = self.scan_json(T::Asns, b"")?;
        Ok(all
            .into_iter()
            .filter(|a| a.site == site && status.is_none_or(|s| s == a.status))
            .collect())
    }

    fn set_asn_status(&self, id: &str, status: DocStatus) -> Result<Option<Asn>, StoreError> {
        self.write(|tx, w| {
            let Some(mut asn) = tx.json::<Asn>(T::Asns, id.as_bytes())? else {
                return Ok(None);
            };
            check_status_change(Doc::Asn, id, asn.status, status)?;
            asn.status = status;
            tx.put_json(T::Asns, id.as_bytes(), &asn)?;
            if status == DocStatus::Closed {
                let mut received = HashMap::new();
                for line in asn
                    .lines
                    .iter()
                    .chain(asn.pallets.iter().flat_map(|p| p.lines.iter()))
                {
                    let key = (line.gtin.clone(), line.lot.clone());
                    let n = tx.u64(
                        T::AsnReceived,
                        &received_key(id, &line.gtin, line.lot.as_deref().map(Some)),
                    )?;
                    received.insert(key, n);
                }
                let drafts = reconcile::asn_shorts(&asn, |gtin, lot| {
                    received
                        .get(&(gtin.to_string(), lot.map(str::to_string)))
                        .copied()
                        .unwrap_or(0)
                });
                for d in drafts {
                    w.raise(tx, &asn.site, d, Vec::new())?;
                }
            }
            let change = match status {
                DocStatus::Cancelled => Change::Cancel {
                    reference: id.to_string(),
                },
                _ => Change::Asn(asn.clone()),
            };
            w.change(tx, &Doc::Asn.entity(id), Some(&asn.site), &change)?;
            if status == DocStatus::Closed {
                let event = OfficeEvent::ReceiptClosed {
                    id: id.to_string(),
                    asn: serde_json::to_value(&asn).map_err(|e| {
                        abort(StoreError::Corrupt {
                            tree: T::Outbox.name(),
                            message: format!("cannot encode: {e}"),
                        })
                    })?,
                };
                webhooks::outbox(tx, &event.into_event(w.now))?;
            }
            Ok(Some(asn))
        })
    }

    fn put_pick_list(&self, list: &PickList) -> Result<(), StoreError> {
        check_text("pick list id", &list.id)?;
        check_text("site", &list.site)?;
        self.write(|tx, w| {
            let old: Option<PickList> = tx.json(T::PickLists, list.id.as_bytes())?;
            let old = old.as_ref().map(|o| (o.site.as_str(), o.status));
            check_doc_put(Doc::PickList, &list.id, &list.site, list.status, old)?;
            tx.put_json(T::PickLists, list.id.as_bytes(), list)?;
            w.change(
                tx,
                &Doc::PickList.entity(&list.id),
                Some(&list.site),
                &Change::PickList(list.clone()),
            )
        })
    }

    fn pick_list(&self, id: &str) -> Result<Option<PickList>, StoreError> {
        self.get_json(T::PickLists, id.as_bytes())
    }

    fn pick_lists(
        &self,
        site: &str,
        status: Option<DocStatus>,
    ) -> Result<Vec<PickList>, StoreError> {
        let all: Vec<PickList> = self.scan_json(T::PickLists, b"")?;
        Ok(all
            .into_iter()
            .filter(|l| l.site == site && status.is_none_or(|s| s == l.status))
            .collect())
    }

    fn set_pick_list_status(
        &self,
        id: &str,
        status: DocStatus,
    ) -> Result<Option<PickList>, StoreError> {
        self.write(|tx, w| {
            let Some(mut list) = tx.json::<PickList>(T::PickLists, id.as_bytes())? else {
                return Ok(None);
            };
            check_status_change(Doc::PickList, id, list.status, status)?;
            list.status = status;
            tx.put_json(T::PickLists, id.as_bytes(), &list)?;
            let change = match status {
                DocStatus::Cancelled => Change::Cancel {
                    reference: id.to_string(),
                },
                _ => Change::PickList(list.clone()),
            };
            w.change(tx, &Doc::PickList.entity(id), Some(&list.site), &change)?;
            Ok(Some(list))
        })
    }

    fn pull(&self, site: &str, cursor: u64, limit: usize) -> Result<PullResponse, StoreError> {
        let mut out = PullResponse {
            cursor,
            more: false,
            changes: Vec::new(),
        };
        let Some(start) = cursor.checked_add(1) else {
            return Ok(out);
        };
        for entry in self.tree(T::Changes).range(start.to_be_bytes()..) {
            let (key, value) = entry?;
            let split = value
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| StoreError::Corrupt {
                    tree: T::Changes.name(),
                    message: "value has no site segment".into(),
                })?;
            let owner = &value[..split];
            // Decide visibility on the raw bytes: other sites' entries are never decoded.
            if !owner.is_empty() && owner != site.as_bytes() {
                continue;
            }
            if out.changes.len() == limit {
                out.more = true;
                break;
            }
            out.changes
                .push(from_json(T::Changes, &value[split + 1..])?);
            out.cursor = decode_u64(T::Changes, &key)?;
        }
        Ok(out)
    }

    fn discrepancies(&self, filter: &DiscrepancyFilter) -> Result<Vec<Discrepancy>, StoreError> {
        let all: Vec<Discrepancy> = self.scan_json(T::Discrepancies, b"")?;
        Ok(all
            .into_iter()
            .filter(|d| {
                filter.site.as_ref().is_none_or(|s| *s == d.site)
                    && filter.status.is_none_or(|s| s == d.status)
                    && filter.kind.is_none_or(|k| k == d.kind)
            })
            .collect())
    }

    fn discrepancy(&self, id: u64) -> Result<Option<Discrepancy>, StoreError> {
        self.get_json(T::Discrepancies, &id.to_be_bytes())
    }

    fn comment_discrepancy(
        &self,
        id: u64,
        comment: &Comment,
    ) -> Result<Option<Discrepancy>, StoreError> {
        self.write(|tx, _| {
            let key = id.to_be_bytes();
            let Some(mut d) = tx.json::<Discrepancy>(T::Discrepancies, &key)? else {
                return Ok(None);
            };
            d.comments.push(comment.clone());
            tx.put_json(T::Discrepancies, &key, &d)?;
            Ok(Some(d))
        })
    }

    fn resolve_discrepancy(
        &self,
        id: u64,
        resolution: &Resolution,
        at: OffsetDateTime,
    ) -> Result<Option<Discrepancy>, StoreError> {
        let resolved = self.write(|tx, w| {
            let key = id.to_be_bytes();
            let Some(mut d) = tx.json::<Discrepancy>(T::Discrepancies, &key)? else {
                return Ok(None);
            };
            if d.status == DiscrepancyStatus::Resolved {
                return Err(abort(StoreError::Refused(format!(
                    "discrepancy {id} is already resolved"
                ))));
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
                let m = office_adjustment(tx, location, gtin, lot, *delta, at)?;
                w.apply(tx, &d.site, &m, 0)?;
                *movement = Some(MovementRef {
                    device_id: m.device_id.clone(),
                    seq: m.seq,
                });
                tx.t(T::HighWater)
                    .insert(OFFICE_DEVICE.as_bytes(), &m.seq.to_be_bytes())?;
            }
            d.status = DiscrepancyStatus::Resolved;
            d.resolution = Some(resolution);
            tx.put_json(T::Discrepancies, &key, &d)?;
            let event = OfficeEvent::DiscrepancyResolved {
                id,
                discrepancy: serde_json::to_value(&d).map_err(|e| {
                    abort(StoreError::Corrupt {
                        tree: T::Outbox.name(),
                        message: format!("cannot encode: {e}"),
                    })
                })?,
            };
            webhooks::outbox(tx, &event.into_event(w.now))?;
            Ok(Some((d, std::mem::take(&mut w.negative))))
        })?;
        Ok(resolved.map(|(d, negative)| {
            for (key, qty) in &negative {
                tracing::warn!(device = OFFICE_DEVICE, stock = %describe_key(key), qty, "office adjustment left stock negative");
            }
            d
        }))
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    fn open_discrepancy_counts(&self) -> Result<Vec<DiscrepancyCount>, StoreError> {
        /// The three fields counted; serde skips the rest of the record (comments, movements) without building it.
        #[derive(Deserialize)]
        struct Head {
            site: String,
            kind: DiscrepancyKind,
            status: DiscrepancyStatus,
        }
        let mut counts: HashMap<(String, DiscrepancyKind), u64> = HashMap::new();
        for entry in self.tree(T::Discrepancies).iter() {
            let head: Head = from_json(T::Discrepancies, &entry?.1)?;
            if head.status == DiscrepancyStatus::Open {
                *counts.entry((head.site, head.kind)).or_default() += 1;
            }
        }
        Ok(counts
            .into_iter()
            .map(|((site, kind), open)| DiscrepancyCount { site, kind, open })
            .collect())
    }

    fn asn_received(&self, id: &str) -> Result<Vec<ReceivedLot>, StoreError> {
        let prefix = text_key(&[id, ""]);
        let mut out = Vec::new();
        for entry in self.tree(T::AsnReceived).scan_prefix(&prefix) {
            let (key, value) = entry?;
            let corrupt = || StoreError::Corrupt {
                tree: T::AsnReceived.name(),
                message: format!("bad key {}", describe_key(&key)),
            };
            let rest = &key[prefix.len()..];
            // Keys without a lot segment are the all-lots counters; the per-lot ones say everything.
            let Some(split) = rest.iter().position(|b| *b == 0) else {
                continue;
            };
            let gtin = std::str::from_utf8(&rest[..split]).map_err(|_| corrupt())?;
            let lot = match &rest[split + 1..] {
                [END_OF_TEXT] => None,
                lot => Some(std::str::from_utf8(lot).map_err(|_| corrupt())?.to_string()),
            };
            out.push(ReceivedLot {
                gtin: gtin.to_string(),
                lot,
                qty: decode_u64(T::AsnReceived, &value)?,
            });
        }
        // Keys put "no lot" (0xFF) last; the contract puts it first.
        out.sort_by(|a, b| (&a.gtin, &a.lot).cmp(&(&b.gtin, &b.lot)));
        Ok(out)
    }

    fn movements_by_reference(
        &self,
        reference: &str,
        after: u64,
        limit: usize,
    ) -> Result<MovementPage, StoreError> {
        let mut page = MovementPage {
            movements: Vec::new(),
            next: None,
        };
        let Some(start) = after.checked_add(1) else {
            return Ok(page);
        };
        let mut end = reference.as_bytes().to_vec();
        end.push(1);
        for entry in self
            .tree(T::Refs)
            .range(reference_key(reference, start)..end)
        {
            let (key, mkey) = entry?;
            let record = self
                .movement_record(&mkey)?
                .ok_or_else(|| StoreError::Corrupt {
                    tree: T::Refs.name(),
                    message: format!(
                        "{} names {}, which is not stored",
                        describe_key(&key),
                        describe_key(&mkey)
                    ),
                })?;
            if page.movements.len() == limit {
                page.next = page.movements.last().map(|m| m.server_seq);
                break;
            }
            page.movements.push(StoredMovement {
                server_seq: record.server_seq,
                site: record.site,
                received_at: record.received_at,
                movement: record.movement,
            });
        }
        Ok(page)
    }

    fn movements_per_hour(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        max_scan: usize,
    ) -> Result<HourlyCounts, StoreError> {
        /// What the walk needs of a record; serde skips the rest without building it.
        #[derive(Deserialize)]
        struct Times {
            site: String,
            #[serde(with = "time::serde::rfc3339")]
            received_at: OffsetDateTime,
            movement: At,
        }
        #[derive(Deserialize)]
        struct At {
            #[serde(with = "time::serde::rfc3339")]
            at: OffsetDateTime,
        }
        let mut counter = HourCounter::new(since, until);
        let stop = counter.stop_before();
        // Newest first: log entries backwards, and each entry's movements backwards.
        for entry in self.tree(T::Log).iter().rev() {
            let (key, value) = entry?;
            let e = decode_log(&key, &value)?;
            for i in (0..e.count).rev() {
                if counter.scanned() >= max_scan as u64 {
                    return Ok(counter.finish(false));
                }
                let mkey = movement_key(e.device_id, e.first_seq + i);
                let missing = || StoreError::Corrupt {
                    tree: T::Log.name(),
                    message: format!("names {}, which is not stored", describe_key(&mkey)),
                };
                let bytes = self.tree(T::Movements).get(&mkey)?.ok_or_else(missing)?;
                let t: Times = from_json(T::Movements, &bytes)?;
                if t.received_at < stop {
                    return Ok(counter.finish(true));
                }
                counter.add(&t.site, t.movement.at);
            }
        }
        Ok(counter.finish(true))
    }

    fn discrepancies_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Discrepancy>, StoreError> {
        let Some(start) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        self.tree(T::Discrepancies)
            .range(start.to_be_bytes()..)
            .take(limit)
            .map(|entry| from_json(T::Discrepancies, &entry?.1))
            .collect()
    }

    /// [`StockSort::Location`] is the `stock` tree's own key order: the page walks the tree from the cursor (forward
    /// or backward) and stops after `limit + 1` matching rows, so it costs its own rows, plus the rows it skips when
    /// a gtin or lot filter is given without a site (or the location without a site) to narrow the range. The
    /// other sorts have no index here: the page scans the filter's scope once (one location's, one site's or all
    /// entries) and keeps the best `limit + 1` rows beyond the cursor in a buffer of at most `2 × (limit + 1)` rows,
    /// so O(rows in scope) time and O(limit) memory (figures in BENCHMARKS.md, "Dashboard").
    fn stock_page(&self, query: &StockPageQuery) -> Result<StockPage, StoreError> {
        let limit = query.limit();
        let prefix = scope_prefix(&query.filter);
        let mut rows: Vec<StockRow> = Vec::with_capacity(limit + 1);
        let mut found: Vec<(Vec<u8>, i64, Option<Vec<u8>>)> = Vec::new();
        let mut decode = |group: &[u8], value: &[u8]| {
            found.clear();
            decode_stock(group, value, |key, qty, expiry| {
                if qty != 0 {
                    found.push((key, qty, expiry.map(<[u8]>::to_vec)));
                }
            })?;
            Ok::<_, StoreError>(std::mem::take(&mut found))
        };
        if query.sort == StockSort::Location {
            let reverse = query.reads_descending();
            let cursor = match &query.start {
                StockPageStart::First => None,
                StockPageStart::After(r) | StockPageStart::Before(r) => {
                    Some(text_key(&[&r.site, &r.location, &r.gtin]))
                }
            };
            if let Some(range) = key_order_range(&prefix, cursor, reverse) {
                let iter = self.tree(T::Stock).range::<Vec<u8>, _>(range);
                let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
                    if reverse {
                        Box::new(iter.rev())
                    } else {
                        Box::new(iter)
                    };
                'entries: for entry in iter {
                    let (group, value) = entry?;
                    let mut group_rows = decode(&group, &value)?;
                    if reverse {
                        group_rows.reverse();
                    }
                    for (key, qty, expiry) in group_rows {
                        let row = stock_row(&key, qty, expiry.as_deref())?;
                        if stock_matches(&query.filter, &row) && query.beyond_start(&row) {
                            rows.push(row);
                            if rows.len() > limit {
                                break 'entries;
                            }
                        }
                    }
                }
            }
        } else {
            let keep = limit + 1;
            for entry in self.tree(T::Stock).scan_prefix(&prefix) {
                let (group, value) = entry?;
                for (key, qty, expiry) in decode(&group, &value)? {
                    let row = stock_row(&key, qty, expiry.as_deref())?;
                    if stock_matches(&query.filter, &row) && query.beyond_start(&row) {
                        rows.push(row);
                    }
                }
                if rows.len() >= 2 * keep {
                    rows.sort_unstable_by(|a, b| query.reading_order(a, b));
                    rows.truncate(keep);
                }
            }
            rows.sort_unstable_by(|a, b| query.reading_order(a, b));
            rows.truncate(keep);
        }
        let more = rows.len() > limit;
        rows.truncate(limit);
        if query.backward() {
            rows.reverse();
        }
        Ok(StockPage { rows, more })
    }

    fn put_scan_stats(
        &self,
        site: &str,
        device_id: &str,
        stats: &[ScanStat],
    ) -> Result<(), StoreError> {
        check_text("site", site)?;
        check_text("device_id", device_id)?;
        let tree = self.tree(T::ScanStats);
        for s in stats {
            let key = scan_stat_key(site, device_id, s)?;
            // A running total: keep the largest (an atomic compare-and-swap per key, no transaction needed).
            tree.update_and_fetch(key, |old| {
                let old = old
                    .and_then(|v| v.try_into().ok())
                    .map_or(0, u64::from_be_bytes);
                Some(old.max(s.count).to_be_bytes().to_vec())
            })?;
        }
        self.sync()
    }

    fn scan_stats(
        &self,
        site: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<SiteScanStat>, StoreError> {
        check_text("site", site)?;
        let bound = |t: OffsetDateTime| {
            let mut k = site.as_bytes().to_vec();
            k.push(0);
            k.extend_from_slice(&hour_secs(t).to_be_bytes());
            k
        };
        let mut out = Vec::new();
        if until <= since {
            return Ok(out);
        }
        for kv in self.tree(T::ScanStats).range(bound(since)..bound(until)) {
            let (k, v) = kv?;
            let corrupt = || StoreError::Corrupt {
                tree: T::ScanStats.name(),
                message: "scan stats entry does not decode".into(),
            };
            let rest = &k[site.len() + 1..];
            let secs = u64::from_be_bytes(
                rest.get(..8)
                    .ok_or_else(corrupt)?
                    .try_into()
                    .unwrap_or_default(),
            );
            let mut parts = rest[8..].split(|&b| b == 0);
            let (Some(device), Some(op), Some(reason), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(corrupt());
            };
            let text = |b: &[u8]| {
                std::str::from_utf8(b)
                    .map(str::to_string)
                    .map_err(|_| corrupt())
            };
            let operator = match op.split_first() {
                None => None,
                Some((1, op)) => Some(text(op)?),
                Some(_) => return Err(corrupt()),
            };
            out.push(SiteScanStat {
                device_id: text(device)?,
                stat: ScanStat {
                    hour: OffsetDateTime::from_unix_timestamp(
                        i64::try_from(secs).unwrap_or(i64::MAX),
                    )
                    .map_err(|_| corrupt())?,
                    operator,
                    reason: text(reason)?,
                    count: u64::from_be_bytes(v.as_ref().try_into().map_err(|_| corrupt())?),
                },
            });
        }
        // Keys sort by hour, device, then operator (none, encoded empty, first) and reason: already in order.
        Ok(out)
    }

    fn create_asns(&self, asns: &[Asn]) -> Result<usize, StoreError> {
        for asn in asns {
            check_text("ASN id", &asn.id)?;
            check_text("site", &asn.site)?;
        }
        self.write(|tx, w| {
            let mut created = 0;
            for asn in asns {
                // A transaction reads its own writes, so an id twice in one batch is judged like a stored one.
                match tx.json::<Asn>(T::Asns, asn.id.as_bytes())? {
                    Some(old) if old == *asn => continue,
                    Some(_) => {
                        return Err(abort(StoreError::Refused(format!(
                            "ASN {} already exists with different content",
                            asn.id
                        ))))
                    }
                    None => {}
                }
                check_doc_put(Doc::Asn, &asn.id, &asn.site, asn.status, None)?;
                tx.put_json(T::Asns, asn.id.as_bytes(), asn)?;
                w.change(
                    tx,
                    &Doc::Asn.entity(&asn.id),
                    Some(&asn.site),
                    &Change::Asn(asn.clone()),
                )?;
                created += 1;
            }
            Ok(created)
        })
    }

    fn webhooks(&self) -> Option<&dyn crate::webhooks::WebhookStore> {
        Some(self)
    }

    fn put_reorder_rule(&self, rule: &ReorderRule) -> Result<(), StoreError> {
        check_text("site", &rule.site)?;
        check_text("gtin", &rule.gtin)?;
        let key = text_key(&[&rule.site, &rule.gtin]);
        self.write(|tx, _| tx.put_json(T::ReorderRules, &key, rule))
    }

    fn reorder_rules(&self, site: Option<&str>) -> Result<Vec<ReorderRule>, StoreError> {
        let prefix = match site {
            Some(site) => {
                let mut p = site.as_bytes().to_vec();
                p.push(0);
                p
            }
            None => Vec::new(),
        };
        self.scan_json(T::ReorderRules, &prefix)
    }
}

/// A range of `stock` keys.
type KeyRange = (std::ops::Bound<Vec<u8>>, std::ops::Bound<Vec<u8>>);

/// The range of `stock` entries a key-order page reads: within `prefix` (a scope from [`scope_prefix`]), from the
/// cursor's entry (inclusive: its other rows may still belong on the page) in the reading direction. `None` when
/// the cursor lies outside the scope on the side that leaves nothing to read.
fn key_order_range(prefix: &[u8], cursor: Option<Vec<u8>>, reverse: bool) -> Option<KeyRange> {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    // Scopes end with a NUL separator, so `prefix` with its last byte raised to 0x01 is the first key past it.
    let end = prefix.split_last().map(|(_, head)| {
        let mut end = head.to_vec();
        end.push(1);
        end
    });
    let (lo, hi) = match (cursor, reverse) {
        (None, _) => (prefix.to_vec(), None),
        (Some(c), false) => (c.max(prefix.to_vec()), None),
        (Some(c), true) if c.as_slice() < prefix => return None,
        (Some(c), true) => match &end {
            Some(end) if c >= *end => (prefix.to_vec(), None),
            _ => (prefix.to_vec(), Some(c)),
        },
    };
    if end.as_ref().is_some_and(|end| lo >= *end) {
        return None;
    }
    let hi = match (hi, end) {
        (Some(c), _) => Included(c),
        (None, Some(end)) => Excluded(end),
        (None, None) => Unbounded,
    };
    Some((Included(lo), hi))
}

/// The `adjust` movement of [`OFFICE_DEVICE`] that a [`Resolution::Adjust`] records (next seq of that device).
fn office_adjustment(
    tx: &Tx<'_>,
    location: &str,
    gtin: &str,
    lot: &Option<String>,
    delta: i64,
    at: OffsetDateTime,
) -> TxResult<Movement> {
    let refuse = |m: String| abort(StoreError::Refused(m));
    if delta == 0 || delta.unsigned_abs() > MAX_QTY {
        return Err(refuse(format!(
            "an adjustment moves 1 to {MAX_QTY} units, not {delta}"
        )));
    }
    let seq = tx.u64(T::HighWater, OFFICE_DEVICE.as_bytes())? + 1;
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
        from_location: (delta < 0).then(|| location.to_string()),
        to_location: (delta > 0).then(|| location.to_string()),
        sscc: None,
        reference: None,
        operator: None,
        source: MovementSource::Manual,
    };
    m.validate()
        .map_err(|e| refuse(format!("adjustment: {e}")))?;
    let texts = [Some(gtin), lot.as_deref(), Some(location)];
    if texts.into_iter().flatten().any(|t| t.contains('\0')) {
        return Err(refuse("adjustment: NUL byte in a key field".into()));
    }
    Ok(m)
}

/// Refuses key texts that would make keys ambiguous.
fn check_text(what: &str, text: &str) -> Result<(), StoreError> {
    if text.is_empty() || text.contains('\0') {
        return Err(StoreError::InvalidBatch(format!(
            "{what} must be non-empty and free of NUL"
        )));
    }
    Ok(())
}

fn text_key(parts: &[&str]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(0);
        }
        key.extend_from_slice(part.as_bytes());
    }
    key
}

fn movement_key(device_id: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(device_id.len() + 9);
    key.extend_from_slice(device_id.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// A `refs` key: `reference ++ 0x00 ++ server_seq`.
fn reference_key(reference: &str, server_seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(reference.len() + 9);
    key.extend_from_slice(reference.as_bytes());
    key.push(0);
    key.extend_from_slice(&server_seq.to_be_bytes());
    key
}

fn stock_key(site: &str, location: &str, gtin: &str, lot: Option<&str>) -> Vec<u8> {
    match lot {
        Some(lot) => text_key(&[site, location, gtin, lot]),
        None => text_key(&[site, location, gtin]),
    }
}

/// The narrowest stock-key prefix a filter allows.
fn scope_prefix(filter: &StockFilter) -> Vec<u8> {
    match (&filter.site, &filter.location) {
        (Some(site), Some(location)) => text_key(&[site, location, ""]),
        (Some(site), None) => text_key(&[site, ""]),
        (None, _) => Vec::new(),
    }
}

fn stock_matches(filter: &StockFilter, row: &StockRow) -> bool {
    filter.site.as_ref().is_none_or(|s| *s == row.site)
        && filter.location.as_ref().is_none_or(|l| *l == row.location)
        && filter.gtin.as_ref().is_none_or(|g| *g == row.gtin)
        && filter
            .lot
            .as_ref()
            .is_none_or(|l| Some(l) == row.lot.as_ref())
}

fn movement_matches(filter: &MovementFilter, r: &Record) -> bool {
    let m = &r.movement;
    filter.site.as_ref().is_none_or(|s| *s == r.site)
        && filter.device_id.as_ref().is_none_or(|d| *d == m.device_id)
        && filter.gtin.as_ref().is_none_or(|g| *g == m.gtin)
        && filter.location.as_ref().is_none_or(|l| {
            m.from_location.as_ref() == Some(l) || m.to_location.as_ref() == Some(l)
        })
        && filter.kind.is_none_or(|k| k == m.kind)
        && filter.since.is_none_or(|s| m.at >= s)
        && filter.until.is_none_or(|u| m.at < u)
}

/// A device time as an order-preserving unsigned number (see the module docs).
fn at_code(at: OffsetDateTime) -> u128 {
    (at.unix_timestamp_nanos() as u128) ^ (1 << 127)
}

/// At most this many effects go into one `effects` record (a movement's effects are never split), so a record
/// stays a few KiB: sled keeps up to 16 entries in a leaf and writes values over ~128 KiB as separate blob files.
const EFFECTS_PER_RECORD: usize = 64;

/// The site of a stock key: the bytes before its first NUL.
fn key_site(stock_key: &[u8]) -> &[u8] {
    let end = stock_key
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(stock_key.len());
    &stock_key[..end]
}

/// The `effects` records of a transaction's effects, in order: per site, chunks of up to [`EFFECTS_PER_RECORD`]
/// effects, each keyed `site ++ 0x00 ++ max at ++ first server seq` (see the module docs for the value).
fn encode_effects(pending: &[Pending], rows: &[StockSlot]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let stock_key = |p: &Pending| rows[p.row].key.as_slice();
    let mut out = Vec::new();
    let mut i = 0;
    while i < pending.len() {
        let site = key_site(stock_key(&pending[i]));
        let mut j = i + 1;
        while j < pending.len()
            && key_site(stock_key(&pending[j])) == site
            && (j - i < EFFECTS_PER_RECORD || pending[j].server_seq == pending[j - 1].server_seq)
        {
            j += 1;
        }
        let chunk = &pending[i..j];
        let at_max = chunk.iter().map(|p| p.at).max().unwrap_or(0);
        let mut key = Vec::with_capacity(site.len() + 25);
        key.extend_from_slice(site);
        key.push(0);
        key.extend_from_slice(&at_max.to_be_bytes());
        key.extend_from_slice(&chunk[0].server_seq.to_be_bytes());
        let mut value = Vec::with_capacity(chunk.len() * 40);
        for p in chunk {
            let suffix = &stock_key(p)[site.len() + 1..];
            put_varint(&mut value, suffix.len() as u128);
            value.extend_from_slice(suffix);
            put_varint(&mut value, at_max - p.at);
            put_varint(&mut value, u128::from(zigzag(p.delta)));
        }
        out.push((key, value));
        i = j;
    }
    out
}

/// Calls `f(site, stock key without the site, at, delta)` for every effect of one `effects` record.
fn for_each_effect(
    key: &[u8],
    value: &[u8],
    mut f: impl FnMut(&[u8], &[u8], u128, i64),
) -> Result<(), StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt {
        tree: T::Effects.name(),
        message: format!("record {}: {what}", describe_key(key)),
    };
    let site = key_site(key);
    let at_max: [u8; 16] = key
        .get(site.len() + 1..site.len() + 17)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| corrupt("bad key"))?;
    let at_max = u128::from_be_bytes(at_max);
    let mut rest = value;
    while !rest.is_empty() {
        let len = take_varint(&mut rest).ok_or_else(|| corrupt("bad key length"))?;
        let len = usize::try_from(len).map_err(|_| corrupt("bad key length"))?;
        if rest.len() < len {
            return Err(corrupt("truncated stock key"));
        }
        let (suffix, tail) = rest.split_at(len);
        rest = tail;
        let back = take_varint(&mut rest).ok_or_else(|| corrupt("bad time"))?;
        let at = at_max
            .checked_sub(back)
            .ok_or_else(|| corrupt("bad time"))?;
        let delta = take_varint(&mut rest)
            .and_then(|z| u64::try_from(z).ok())
            .ok_or_else(|| corrupt("bad delta"))?;
        f(site, suffix, at, unzigzag(delta));
    }
    Ok(())
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// LEB128: 7 bits a byte, low bits first, high bit set on all but the last byte.
fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(input: &mut &[u8]) -> Option<u128> {
    let mut v: u128 = 0;
    for (i, b) in input.iter().enumerate() {
        if i == 19 {
            return None;
        }
        v |= u128::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            *input = &input[i + 1..];
            return Some(v);
        }
    }
    None
}

/// A `log` value: `count (u64) ++ first device seq (u64) ++ device_id ++ 0x00 ++ site`.
fn encode_log(run: &LogRun) -> Vec<u8> {
    let mut v = Vec::with_capacity(17 + run.device_id.len() + run.site.len());
    v.extend_from_slice(&run.count.to_be_bytes());
    v.extend_from_slice(&run.first_seq.to_be_bytes());
    v.extend_from_slice(run.device_id.as_bytes());
    v.push(0);
    v.extend_from_slice(run.site.as_bytes());
    v
}

/// A decoded `log` entry.
struct LogEntry<'a> {
    first_server_seq: u64,
    count: u64,
    first_seq: u64,
    device_id: &'a str,
    site: &'a [u8],
}

fn decode_log<'a>(key: &[u8], value: &'a [u8]) -> Result<LogEntry<'a>, StoreError> {
    let first_server_seq = decode_u64(T::Log, key)?;
    let corrupt = || StoreError::Corrupt {
        tree: T::Log.name(),
        message: format!("bad entry at server seq {first_server_seq}"),
    };
    let (Some(count), Some(first_seq), Some(rest)) =
        (value.get(..8), value.get(8..16), value.get(16..))
    else {
        return Err(corrupt());
    };
    let count = decode_u64(T::Log, count)?;
    let first_seq = decode_u64(T::Log, first_seq)?;
    let split = rest.iter().position(|b| *b == 0).ok_or_else(corrupt)?;
    let device_id = std::str::from_utf8(&rest[..split]).map_err(|_| corrupt())?;
    let valid = count > 0
        && first_seq.checked_add(count - 1).is_some()
        && first_server_seq.checked_add(count - 1).is_some();
    if !valid {
        return Err(corrupt());
    }
    Ok(LogEntry {
        first_server_seq,
        count,
        first_seq,
        device_id,
        site: &rest[split + 1..],
    })
}

/// `lot`: `None` for the all-lots counter, `Some(None)` for goods without a lot.
fn received_key(asn: &str, gtin: &str, lot: Option<Option<&str>>) -> Vec<u8> {
    let mut key = text_key(&[asn, gtin]);
    match lot {
        None => {}
        Some(Some(lot)) => {
            key.push(0);
            key.extend_from_slice(lot.as_bytes());
        }
        Some(None) => {
            key.push(0);
            key.push(END_OF_TEXT);
        }
    }
    key
}

/// A stock key split into its `stock` entry key (site, location, gtin) and its lot (`None`: no lot).
fn split_stock_key(key: &[u8]) -> (&[u8], Option<&[u8]>) {
    match key.iter().enumerate().filter(|(_, b)| **b == 0).nth(2) {
        Some((i, _)) => (&key[..i], Some(&key[i + 1..])),
        None => (key, None),
    }
}

/// A row of a `stock` entry as written: its stock key, quantity and expiry.
type StockValueRow<'a> = (&'a [u8], i64, Option<&'a [u8]>);

/// Row tag bits of a `stock` value (see the module docs).
const ROW_LOT: u8 = 1;
const ROW_EXPIRY: u8 = 2;

/// The value of a `stock` entry holding `rows` (stock keys of that entry, quantities and expiries, any order;
/// rows that are zero and have no expiry are left out); `None` when no row is left (the entry is removed). See
/// the module docs.
fn encode_stock(mut rows: Vec<StockValueRow<'_>>) -> Option<Vec<u8>> {
    rows.retain(|(_, qty, expiry)| *qty != 0 || expiry.is_some());
    if rows.is_empty() {
        return None;
    }
    rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut value = Vec::with_capacity(rows.len() * 24);
    for (key, qty, expiry) in rows {
        let lot = split_stock_key(key).1;
        let mut tag = 0;
        if lot.is_some() {
            tag |= ROW_LOT;
        }
        if expiry.is_some() {
            tag |= ROW_EXPIRY;
        }
        value.push(tag);
        if let Some(lot) = lot {
            put_varint(&mut value, lot.len() as u128);
            value.extend_from_slice(lot);
        }
        put_varint(&mut value, u128::from(zigzag(qty)));
        if let Some(expiry) = expiry {
            put_varint(&mut value, expiry.len() as u128);
            value.extend_from_slice(expiry);
        }
    }
    Some(value)
}

/// `varint(len) ++ bytes`: the bytes, advancing `input`; `None` when cut short.
fn take_text<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(take_varint(input)?).ok()?;
    if input.len() < len {
        return None;
    }
    let (text, rest) = input.split_at(len);
    *input = rest;
    Some(text)
}

/// Calls `f(stock key, qty, expiry)` for every row of the `stock` entry `group` (site, location, gtin), in key
/// order, zero rows (kept for their expiry) included.
fn decode_stock(
    group: &[u8],
    value: &[u8],
    mut f: impl FnMut(Vec<u8>, i64, Option<&[u8]>),
) -> Result<(), StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt {
        tree: T::Stock.name(),
        message: format!("entry {}: {what}", describe_key(group)),
    };
    let mut rest = value;
    while let Some((&tag, tail)) = rest.split_first() {
        rest = tail;
        if tag & !(ROW_LOT | ROW_EXPIRY) != 0 {
            return Err(corrupt("bad row tag"));
        }
        let mut key = Vec::with_capacity(group.len() + 16);
        key.extend_from_slice(group);
        if tag & ROW_LOT != 0 {
            let lot = take_text(&mut rest).ok_or_else(|| corrupt("bad or truncated lot"))?;
            key.push(0);
            key.extend_from_slice(lot);
        }
        let qty = take_varint(&mut rest)
            .and_then(|z| u64::try_from(z).ok())
            .ok_or_else(|| corrupt("bad quantity"))?;
        let expiry = match tag & ROW_EXPIRY {
            0 => None,
            _ => Some(take_text(&mut rest).ok_or_else(|| corrupt("bad or truncated expiry"))?),
        };
        f(key, unzigzag(qty), expiry);
    }
    Ok(())
}

fn stock_row(key: &[u8], qty: i64, expiry: Option<&[u8]>) -> Result<StockRow, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        tree: T::Stock.name(),
        message,
    };
    let text = std::str::from_utf8(key).map_err(|e| corrupt(format!("key is not UTF-8: {e}")))?;
    let parts: Vec<&str> = text.split('\0').collect();
    let (site, location, gtin, lot) = match parts.as_slice() {
        [s, l, g] => (*s, *l, *g, None),
        [s, l, g, lot] => (*s, *l, *g, Some(lot.to_string())),
        _ => {
            return Err(corrupt(format!(
                "key {text:?} has {} segments",
                parts.len()
            )))
        }
    };
    let expiry = expiry
        .map(|e| String::from_utf8(e.to_vec()))
        .transpose()
        .map_err(|e| corrupt(format!("expiry of {text:?} is not UTF-8: {e}")))?;
    Ok(StockRow {
        site: site.to_string(),
        location: location.to_string(),
        gtin: gtin.to_string(),
        lot,
        qty,
        expiry,
    })
}

fn describe_key(key: &[u8]) -> String {
    String::from_utf8_lossy(key).replace('\0', "/")
}

fn to_i64(v: i128, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Overflow(what.to_string()))
}

/// An hour's start as unix seconds (0 before 1970, which no device clock reports).
fn hour_secs(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp()).unwrap_or(0)
}

/// `scan_stats` key: site 0x00 hour (u64) device 0x00 (empty | 0x01 operator) 0x00 reason.
fn scan_stat_key(site: &str, device_id: &str, s: &ScanStat) -> Result<Vec<u8>, StoreError> {
    let op = s.operator.as_deref().unwrap_or("");
    if let Some(op) = &s.operator {
        check_text("operator", op)?;
    }
    check_text("reason", &s.reason)?;
    let mut k = Vec::with_capacity(site.len() + device_id.len() + op.len() + s.reason.len() + 13);
    k.extend_from_slice(site.as_bytes());
    k.push(0);
    k.extend_from_slice(&hour_secs(s.hour).to_be_bytes());
    k.extend_from_slice(device_id.as_bytes());
    k.push(0);
    if let Some(op) = &s.operator {
        k.push(1);
        k.extend_from_slice(op.as_bytes());
    }
    k.push(0);
    k.extend_from_slice(s.reason.as_bytes());
    Ok(k)
}

fn from_json<V: DeserializeOwned>(t: T, bytes: &[u8]) -> Result<V, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree: t.name(),
        message: e.to_string(),
    })
}

fn to_json<V: Serialize>(t: T, value: &V) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
        tree: t.name(),
        message: format!("cannot encode: {e}"),
    })
}

fn decode_u64(t: T, v: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = v.try_into().map_err(|_| StoreError::Corrupt {
        tree: t.name(),
        message: format!("value has {} bytes, want 8", v.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_entries_round_trip_in_key_order_without_zero_rows() {
        let group = stock_key("WH1", "DOCK-1", "09506000134352", None);
        let lot_b = stock_key("WH1", "DOCK-1", "09506000134352", Some("L2"));
        let lot_a = stock_key("WH1", "DOCK-1", "09506000134352", Some("L10"));
        let zero = stock_key("WH1", "DOCK-1", "09506000134352", Some("L3"));
        let emptied = stock_key("WH1", "DOCK-1", "09506000134352", Some("L4"));
        assert_eq!(split_stock_key(&group), (group.as_slice(), None));
        assert_eq!(
            split_stock_key(&lot_b),
            (group.as_slice(), Some(b"L2".as_slice()))
        );
        let expiry = Some(b"2027-12-31".as_slice());
        let value = encode_stock(vec![
            (&lot_b, -7, None),
            (&zero, 0, None),
            (&emptied, 0, expiry),
            (&group, 3, expiry),
            (&lot_a, i64::MAX, None),
        ])
        .expect("non-zero rows");
        let mut rows = Vec::new();
        decode_stock(&group, &value, |key, qty, e| {
            rows.push((key, qty, e.map(<[u8]>::to_vec)))
        })
        .unwrap();
        let e = expiry.map(<[u8]>::to_vec);
        assert_eq!(
            rows,
            vec![
                (group.clone(), 3, e.clone()),
                (lot_a, i64::MAX, None),
                (lot_b, -7, None),
                (emptied.clone(), 0, e),
            ]
        );
        assert_eq!(
            encode_stock(vec![(&group, 0, None), (&zero, 0, None)]),
            None
        );
        let cases: &[(&[u8], bool)] = &[
            // Format 4 values (tags 0 and 1) still read.
            (&[0, 6], true),
            (&[1, 2, b'L', b'1', 5], true),
            (&[1, 5, b'L'], false),
            (&[2, 0], false),
            (&[2, 0, 3, b'2', b'0'], false),
            (&[3, 1, b'L', 2, 1, b'X'], true),
            (&[4, 0], false),
        ];
        for (value, ok) in cases {
            assert_eq!(
                decode_stock(&group, value, |_, _, _| {}).is_ok(),
                *ok,
                "{value:?}"
            );
        }
    }

    #[test]
    fn references_are_indexed_on_open_for_data_written_before_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sled");
        let receipt = |seq: u64, reference: Option<&str>| Movement {
            device_id: "hh-01".into(),
            seq,
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000),
            kind: MovementKind::Receive,
            gtin: "09506000134352".into(),
            lot: None,
            expiry: None,
            serials: vec![],
            qty: 1,
            from_location: None,
            to_location: Some("DOCK".into()),
            sscc: None,
            reference: reference.map(Into::into),
            operator: None,
            source: MovementSource::Manual,
        };
        let seqs = |store: &SledStore, reference: &str| -> Vec<u64> {
            let page = store.movements_by_reference(reference, 0, 10).unwrap();
            page.movements.iter().map(|s| s.movement.seq).collect()
        };
        {
            let store = SledStore::open(&path, 8 << 20).unwrap();
            let batch = [
                receipt(1, Some("PL-1")),
                receipt(2, None),
                receipt(3, Some("PL-1")),
                receipt(4, Some("ASN-1")),
            ];
            store.push("WH1", "hh-01", &batch).unwrap();
            assert_eq!(seqs(&store, "PL-1"), vec![1, 3]);
            // A format-4 database written before `refs` existed: no index entries, no mark.
            store.tree(T::Refs).clear().unwrap();
            store.tree(T::Meta).remove(META_REFS_INDEXED).unwrap();
            store.sync().unwrap();
            assert_eq!(seqs(&store, "PL-1"), Vec::<u64>::new());
        }
        let store = SledStore::open(&path, 8 << 20).unwrap();
        assert_eq!(seqs(&store, "PL-1"), vec![1, 3]);
        assert_eq!(seqs(&store, "ASN-1"), vec![4]);
        assert!(store.tree(T::Meta).contains_key(META_REFS_INDEXED).unwrap());
        store
            .push("WH1", "hh-01", &[receipt(5, Some("PL-1"))])
            .unwrap();
        assert_eq!(seqs(&store, "PL-1"), vec![1, 3, 5]);
    }
}
