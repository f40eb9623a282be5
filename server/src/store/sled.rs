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
//! stock           site ++ 0x00 ++ location ++ 0x00 ++ gtin [++ 0x00 ++ lot]   -> i64 (non-zero rows only)
//! log             server_seq (u64)                                  -> device_id ++ 0x00 ++ seq (a movements key)
//! effects         stock key ++ 0xFF ++ at (16) ++ server_seq (u64) ++ effect index (u8)   -> delta i64
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
//! ```
//!
//! None of the key texts may contain a NUL byte (device ids and sites are restricted at enrollment; locations,
//! lots, GTINs and document ids are checked by the handlers and again here), otherwise keys would be ambiguous.
//! Texts are UTF-8, which never contains the byte 0xFF, so 0xFF ends a stock key inside an `effects` key and
//! marks "no lot" in `asn_received`. Stock keys sort by `(site, location, gtin, lot)` with "no lot" (three
//! segments) before any lot.
//!
//! - `log` is the server commit order: `server_seq` counts applied movements over all devices (1, 2, ...); the
//!   history pages by it.
//! - `effects` is every stock effect ever applied, per stock key in device-time order. Stock as of a time is the
//!   sum of the effects with `at <= t`; the book quantity a count is judged against is the current stock minus the
//!   effects after the count's time, which for a count arriving in time is a scan of nothing.
//! - `changes` is the compacted pull feed: `change_index` remembers each entity's current entry, and writing the
//!   entity again removes that entry before appending the new one, so the feed holds one entry per entity.
//!
//! # Invariants
//!
//! - For every device, `movements` holds exactly seqs `1..=high_water[device]`, contiguous; `log` holds exactly
//!   one entry per stored movement, numbered `1..=meta.server_seq`.
//! - `stock` equals the sum of [`Movement::effects`] over all stored movements (conservation, DESIGN §3.6), and
//!   equals the sum of `effects` per key.
//! - `asn_received` is the sum of the quantities of stored receipts naming a known ASN.
//! - A discrepancy is stored if and only if the movements (or the ASN close) that raised it are.
//! - All of this holds after every commit because every write is ONE sled transaction over all trees. Writers
//!   also take [`SledStore`]'s writer lock: a push reads the `effects` index before its transaction (sled
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
//! threshold, far above a movement's size, so unused here).
//!
//! # Recovery
//!
//! On open sled replays its log up to the last complete write; everything acknowledged was fdatasync'ed, so it is
//! there. Work that was committed but not yet synced may be lost; its pushes were never acknowledged, so the
//! agents still hold those movements in their journals and push them again (DESIGN §3.4). If sled cannot open
//! the directory at all, [`SledStore::open`] fails and the server refuses to start rather than run empty.
//! `meta.format` is 2; a database holding movements but no format mark was written before the movement log
//! existed (format 1, movements stored without site or server seq) and is refused with a message rather than
//! served with a history that silently lacks them.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use dockhand_protocol::sync::{
    Asn, Change, DocStatus, Item, Location, Movement, MovementKind, MovementSource, PickList,
    PullResponse, MAX_QTY,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};
use sled::{Db, Tree};
use time::OffsetDateTime;

use super::{
    Comment, Discrepancy, DiscrepancyFilter, DiscrepancyStatus, MovementFilter, MovementPage,
    MovementRef, PushOutcome, Resolution, Site, StockFilter, StockRow, Store, StoreError,
    StoredMovement, OFFICE_DEVICE,
};
use crate::reconcile::{self, Document, Draft, Facts};

/// Default sled page cache: small and explicit, because sled's own default (1 GiB) is far more than an edge
/// box can spare and resident memory grows past it.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The on-disk format this code writes (see "Recovery" in the module docs).
const FORMAT: u64 = 2;

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
}

const TREE_NAMES: [&str; 15] = [
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

/// Ends the stock key inside an `effects` key; never part of UTF-8 text.
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
}

/// A movement as stored in the `movements` tree.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    server_seq: u64,
    site: String,
    #[serde(with = "time::serde::rfc3339")]
    received_at: OffsetDateTime,
    movement: Movement,
}

type TxError = ConflictableTransactionError<StoreError>;
type TxResult<R> = Result<R, TxError>;

fn abort(e: StoreError) -> TxError {
    ConflictableTransactionError::Abort(e)
}

impl SledStore {
    /// Opens (or creates) the database in `dir` with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()?;
        let trees = TREE_NAMES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<Result<Vec<_>, _>>()?;
        let data_file = File::open(dir.join("db"))?;
        let store = SledStore {
            db,
            trees,
            writer: Mutex::new(()),
            data_file,
        };
        match store.tree(T::Meta).get(META_FORMAT)? {
            Some(v) if decode_u64(T::Meta, &v)? == FORMAT => {}
            Some(v) => {
                return Err(StoreError::Corrupt {
                    tree: T::Meta.name(),
                    message: format!(
                        "database format {} is not {FORMAT}; this server cannot read it",
                        decode_u64(T::Meta, &v)?
                    ),
                })
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
        Ok(store)
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
    /// count's time. Read before the push transaction (which cannot scan), under the writer lock.
    fn committed_after_counts(
        &self,
        site: &str,
        movements: &[Movement],
    ) -> Result<HashMap<u64, i64>, StoreError> {
        let mut out = HashMap::new();
        for m in movements {
            let (MovementKind::Count, Some(to)) = (m.kind, &m.to_location) else {
                continue;
            };
            let key = stock_key(site, to, &m.gtin, m.lot.as_deref());
            let mut prefix = key;
            prefix.push(END_OF_TEXT);
            let mut start = prefix.clone();
            start.extend_from_slice(&(at_code(m.at) + 1).to_be_bytes());
            let mut sum: i128 = 0;
            for entry in self.tree(T::Effects).range(start..) {
                let (k, v) = entry?;
                if !k.starts_with(&prefix) {
                    break;
                }
                sum += i128::from(decode_i64(T::Effects, &v)?);
            }
            out.insert(m.seq, to_i64(sum, &describe_key(&prefix))?);
        }
        Ok(out)
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

    fn i64(&self, t: T, key: &[u8]) -> TxResult<i64> {
        match self.t(t).get(key)? {
            Some(v) => decode_i64(t, &v).map_err(abort),
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
    /// `(stock key, at code, delta)` of every effect applied in this transaction, in order.
    pending: Vec<(Vec<u8>, u128, i64)>,
    /// Stock rows left negative, logged after commit (the closure may run more than once).
    negative: Vec<(Vec<u8>, i64)>,
}

impl Writer {
    fn start(tx: &Tx<'_>, now: OffsetDateTime) -> TxResult<Self> {
        let server_seq = tx.u64(T::Meta, META_SERVER_SEQ)?;
        let change_seq = tx.u64(T::Meta, META_CHANGE_SEQ)?;
        let discrepancy_id = tx.u64(T::Meta, META_DISCREPANCY_ID)?;
        Ok(Writer {
            now,
            server_seq,
            change_seq,
            discrepancy_id,
            start: (server_seq, change_seq, discrepancy_id),
            pending: Vec::new(),
            negative: Vec::new(),
        })
    }

    fn finish(&self, tx: &Tx<'_>) -> TxResult<()> {
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
    ) -> TxResult<MovementRef> {
        self.server_seq += 1;
        let server_seq = self.server_seq;
        let mkey = movement_key(&m.device_id, m.seq);
        let record = Record {
            server_seq,
            site: site.to_string(),
            received_at: self.now,
            movement: m.clone(),
        };
        tx.put_json(T::Movements, &mkey, &record)?;
        tx.t(T::Log).insert(&server_seq.to_be_bytes(), mkey)?;

        let at = at_code(m.at);
        let mut stock_after = Vec::with_capacity(2);
        for (i, effect) in m.effects().iter().enumerate() {
            let key = stock_key(site, effect.location, &m.gtin, m.lot.as_deref());
            let old = tx.i64(T::Stock, &key)?;
            let new = old
                .checked_add(effect.delta)
                .ok_or_else(|| abort(StoreError::Overflow(describe_key(&key))))?;
            if new == 0 {
                tx.t(T::Stock).remove(key.as_slice())?;
            } else {
                if new < 0 {
                    self.negative.push((key.clone(), new));
                }
                tx.t(T::Stock).insert(key.as_slice(), &new.to_be_bytes())?;
            }
            stock_after.push(new);
            tx.t(T::Effects).insert(
                effect_key(&key, at, server_seq, i as u8),
                &effect.delta.to_be_bytes(),
            )?;
            self.pending.push((key, at, effect.delta));
        }

        let location_known = |loc: &Option<String>| -> TxResult<bool> {
            match loc {
                Some(loc) => tx.has(T::Locations, &text_key(&[site, loc])),
                None => Ok(true),
            }
        };
        let (asn, list): (Option<Asn>, Option<PickList>) = match &m.reference {
            None => (None, None),
            Some(r) => match tx.json::<Asn>(T::Asns, r.as_bytes())? {
                Some(asn) => (Some(asn), None),
                None => (None, tx.json(T::PickLists, r.as_bytes())?),
            },
        };
        let mut facts = Facts {
            item_known: tx.has(T::Items, m.gtin.as_bytes())?,
            from_known: location_known(&m.from_location)?,
            to_known: location_known(&m.to_location)?,
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
            let key = stock_key(site, to, &m.gtin, m.lot.as_deref());
            let now = i128::from(tx.i64(T::Stock, &key)?);
            let later_in_tx: i128 = self
                .pending
                .iter()
                .filter(|(k, a, _)| *k == key && *a > at)
                .map(|(_, _, d)| i128::from(*d))
                .sum();
            let book = now - i128::from(committed_after) - later_in_tx;
            facts.book_at_count = Some(to_i64(book, &describe_key(&key)).map_err(abort)?);
        }
        let this = MovementRef {
            device_id: m.device_id.clone(),
            seq: m.seq,
        };
        for draft in reconcile::evaluate(m, &facts) {
            self.raise(tx, site, draft, vec![this.clone()])?;
        }
        Ok(this)
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
        check_batch(site, device_id, movements)?;
        let hw_key = device_id.as_bytes();
        let now = OffsetDateTime::now_utc();
        let guard = self.writer();
        let committed_after = self.committed_after_counts(site, movements)?;
        let applied = self.transact(|tx| {
            let hw = tx.u64(T::HighWater, hw_key)?;
            let Some(first) = movements.first() else {
                return Ok(Applied {
                    outcome: PushOutcome::Acked { acked_through: hw },
                    negative: Vec::new(),
                });
            };
            if first.seq > hw + 1 {
                return Ok(Applied {
                    outcome: PushOutcome::Gap {
                        expected_seq: hw + 1,
                    },
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
                        negative: Vec::new(),
                    });
                }
            }
            // New suffix: starts at hw + 1 because the batch is contiguous.
            let mut w = Writer::start(tx, now)?;
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
        Ok(applied.outcome)
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
            let (key, value) = entry?;
            let row = stock_row(&key, decode_i64(T::Stock, &value)?)?;
            if row.qty != 0 && stock_matches(filter, &row) {
                rows.push(row);
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
        let limit = at_code(at);
        let mut sums: BTreeMap<Vec<u8>, i128> = BTreeMap::new();
        for entry in self.tree(T::Effects).scan_prefix(scope_prefix(filter)) {
            let (key, value) = entry?;
            let (stock_key, effect_at) = split_effect_key(&key)?;
            if effect_at <= limit {
                *sums.entry(stock_key.to_vec()).or_default() +=
                    i128::from(decode_i64(T::Effects, &value)?);
            }
        }
        let mut rows = Vec::new();
        for (key, qty) in sums {
            if qty == 0 {
                continue;
            }
            let row = stock_row(&key, to_i64(qty, &describe_key(&key))?)?;
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
        let device_prefix = filter.device_id.as_deref().map(|d| text_key(&[d, ""]));
        for entry in self.tree(T::Log).range(start.to_be_bytes()..) {
            let (key, mkey) = entry?;
            // The device filter needs no decoding: the log value starts with the device id.
            if device_prefix
                .as_ref()
                .is_some_and(|p| !mkey.starts_with(p) || mkey.len() != p.len() + 8)
            {
                continue;
            }
            let server_seq = decode_u64(T::Log, &key)?;
            let record = self
                .movement_record(&mkey)?
                .ok_or_else(|| StoreError::Corrupt {
                    tree: T::Log.name(),
                    message: format!(
                        "server seq {server_seq} names {} which is not stored",
                        describe_key(&mkey)
                    ),
                })?;
            if !movement_matches(filter, &record) {
                continue;
            }
            if page.movements.len() == limit {
                page.next = page.movements.last().map(|m| m.server_seq);
                break;
            }
            page.movements.push(StoredMovement {
                server_seq,
                site: record.site,
                received_at: record.received_at,
                movement: record.movement,
            });
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
                *movement = Some(w.apply(tx, &d.site, &m, 0)?);
                tx.t(T::HighWater)
                    .insert(OFFICE_DEVICE.as_bytes(), &m.seq.to_be_bytes())?;
            }
            d.status = DiscrepancyStatus::Resolved;
            d.resolution = Some(resolution);
            tx.put_json(T::Discrepancies, &key, &d)?;
            Ok(Some((d, std::mem::take(&mut w.negative))))
        })?;
        Ok(resolved.map(|(d, negative)| {
            for (key, qty) in &negative {
                tracing::warn!(device = OFFICE_DEVICE, stock = %describe_key(key), qty, "office adjustment left stock negative");
            }
            d
        }))
    }
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

/// Re-checks the batch rules the transaction relies on (the handler has already named the field for the client).
fn check_batch(site: &str, device_id: &str, movements: &[Movement]) -> Result<(), StoreError> {
    let bad = |msg: String| Err(StoreError::InvalidBatch(msg));
    if device_id.is_empty() || device_id.contains('\0') || site.is_empty() || site.contains('\0') {
        return bad("device id and site must be non-empty and free of NUL".into());
    }
    if device_id == OFFICE_DEVICE {
        return bad(format!(
            "{OFFICE_DEVICE} is the server's own pseudo-device; it cannot push"
        ));
    }
    for (i, m) in movements.iter().enumerate() {
        if m.device_id != device_id {
            return bad(format!("movements[{i}] belongs to {:?}", m.device_id));
        }
        if m.seq == 0 {
            return bad(format!("movements[{i}].seq is 0"));
        }
        if i > 0 && m.seq != movements[i - 1].seq.wrapping_add(1) {
            return bad(format!("movements[{i}].seq is not contiguous"));
        }
        let texts = [
            Some(m.gtin.as_str()),
            m.lot.as_deref(),
            m.from_location.as_deref(),
            m.to_location.as_deref(),
        ];
        if texts.into_iter().flatten().any(|t| t.contains('\0')) {
            return bad(format!("movements[{i}] has a NUL byte in a key field"));
        }
    }
    Ok(())
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

fn effect_key(stock_key: &[u8], at: u128, server_seq: u64, index: u8) -> Vec<u8> {
    let mut key = Vec::with_capacity(stock_key.len() + 26);
    key.extend_from_slice(stock_key);
    key.push(END_OF_TEXT);
    key.extend_from_slice(&at.to_be_bytes());
    key.extend_from_slice(&server_seq.to_be_bytes());
    key.push(index);
    key
}

/// The stock key and the time code of an `effects` key.
fn split_effect_key(key: &[u8]) -> Result<(&[u8], u128), StoreError> {
    let corrupt = || StoreError::Corrupt {
        tree: T::Effects.name(),
        message: format!("bad key {}", describe_key(key)),
    };
    let end = key
        .iter()
        .position(|b| *b == END_OF_TEXT)
        .ok_or_else(corrupt)?;
    let at: [u8; 16] = key
        .get(end + 1..end + 17)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(corrupt)?;
    Ok((&key[..end], u128::from_be_bytes(at)))
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

fn stock_row(key: &[u8], qty: i64) -> Result<StockRow, StoreError> {
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
    Ok(StockRow {
        site: site.to_string(),
        location: location.to_string(),
        gtin: gtin.to_string(),
        lot,
        qty,
    })
}

fn describe_key(key: &[u8]) -> String {
    String::from_utf8_lossy(key).replace('\0', "/")
}

fn to_i64(v: i128, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Overflow(what.to_string()))
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

fn decode_i64(t: T, v: &[u8]) -> Result<i64, StoreError> {
    decode_u64(t, v).map(|u| u as i64)
}
