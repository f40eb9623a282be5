//! The local stock view in sled: what this device has recorded, rebuilt from the journal when needed.
//!
//! # Design
//!
//! sled is not the durable truth (DESIGN §4): it holds only what the journal can rebuild. Each applied batch updates
//! the stock tree and `meta/applied_seq` in one sled transaction, so after a crash the view is at some seq `a`, and
//! start-up replays journal movements with `seq > a`. If the store is damaged (checks in [`crate::storecheck`]: it
//! will not open, sled panics, a value does not decode, entries were lost since the last clean stop), its directory
//! is moved aside (`sled.broken-<unix time>`), a loud error is logged, and a fresh view is rebuilt: from the journal
//! (movements not yet acknowledged), from the server's pull feed (cursor 0) and from a new site stock snapshot
//! ([`crate::sitestock`]); movements already acknowledged and deleted from the journal are then only at the server.
//!
//! Master data and tasks pulled from the server (`GET /v1/sync/pull`, DESIGN §5) live in their own trees. They are a
//! cache of the server's feed, not device truth: a page and the new `meta/pull_cursor` are written in one sled
//! transaction ([`LocalView::apply_changes`]), so the cursor never runs ahead of the data; if the store is lost,
//! pulling from cursor 0 (a snapshot of the compacted feed) rebuilds them. Re-applying a page is harmless: every
//! change is an upsert of the whole entity.
//!
//! A `cancel` change does **not** delete the document: the ASN or pick list keeps its content with
//! `status = cancelled`, so a workflow can answer "pick list cancelled" (not "unknown") and picks already made
//! against it stay explainable. A cancel for a document this device never saw (a compacted feed sends only the
//! cancel) is kept as a tombstone in `cancelled`; a later `asn`/`pick_list` change for that id removes it.
//!
//! ```text
//! tree "stock":      key = location 0x00 gtin 0x00 lot   (lot empty when none)  value = i64 big-endian
//! tree "meta":       key = "applied_seq"                                        value = u64 big-endian
//!                    key = "pull_cursor"                                        value = u64 big-endian
//! tree "items":      key = gtin                                                 value = JSON protocol::sync::Item
//! tree "locations":  key = location code                                        value = JSON protocol::sync::Location
//! tree "asns":       key = ASN id                                               value = JSON protocol::sync::Asn
//! tree "pick_lists": key = pick list id                                         value = JSON protocol::sync::PickList
//! tree "cancelled":  key = document id (cancel for an unknown document)         value = empty
//! tree "last_location": key = gtin                                              value = location code (UTF-8)
//! tree "gate_units": key = "P" sscc | "S" gtin 0x00 serial                      value = JSON gate::UnitRecord
//! ```
//!
//! `gate_units` is what a dock gate remembers of the pallets and serialised items it received or shipped (so that a
//! second pass is not a second receipt); [`LocalView::apply`] derives it from the gate's own movements
//! ([`crate::gate::unit_key`], [`crate::gate::remember`]) in the stock transaction, so the journal rebuilds it too.
//!
//! `last_location` is where each item last went by put-away or move (the put-away suggestion); [`LocalView::apply`]
//! updates it in the stock transaction, so the journal rebuilds it too. The view is also the workflows'
//! [`MasterData`]: GLN and pallet lookups walk the `locations` and `asns` trees (a byte search skips values that
//! cannot match before any JSON is parsed), `items_at` is a prefix scan of `stock`.
//!
//! The site stock snapshot and its per-movement "unsynced" records live in trees of their own, described in
//! [`crate::sitestock`]; [`LocalView::apply`] writes the records in the same transaction as the stock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dockhand_protocol::sync::{
    Asn, Change, DocStatus, Item, Location, Movement, MovementKind, PickList,
};
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::workflow::MasterData;

/// The tree of units a dock gate moved (module doc).
const GATE_UNITS: &str = "gate_units";

/// Cache for the view; it is small and mostly written.
const CACHE_BYTES: u64 = 16 << 20;

/// One row of local stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StockRow {
    /// Location code.
    pub location: String,
    /// GTIN-14.
    pub gtin: String,
    /// Lot, if any.
    pub lot: Option<String>,
    /// Units.
    pub qty: i64,
}

/// How much master data the device holds (shown in the status file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MasterCounts {
    /// Items.
    pub items: usize,
    /// Locations.
    pub locations: usize,
    /// ASNs, cancelled ones included.
    pub asns: usize,
    /// Pick lists, cancelled ones included.
    pub pick_lists: usize,
}

/// The sled-backed local view.
#[derive(Clone, Debug)]
pub struct LocalView {
    dir: PathBuf,
    db: sled::Db,
    site_unsynced: sled::Tree,
    stock: sled::Tree,
    meta: sled::Tree,
    items: sled::Tree,
    locations: sled::Tree,
    asns: sled::Tree,
    pick_lists: sled::Tree,
    cancelled: sled::Tree,
    last_location: sled::Tree,
    gate_units: sled::Tree,
    scan_stats: crate::scanstats::ScanStats,
    /// Parsed pick lists by id, shared by clones; emptied whenever a pulled page is applied.
    pick_cache: Arc<Mutex<HashMap<String, Arc<PickList>>>>,
}

/// Pick lists kept parsed (a device works one or two at a time).
const PICK_CACHE_LISTS: usize = 4;

/// A sled failure, or a stored value that no longer decodes.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// sled failed.
    #[error("local store: {0}")]
    Sled(#[from] sled::Error),
    /// A stored master-data value is unreadable (rebuild by pulling from cursor 0).
    #[error("local store: unreadable {tree} entry {key:?}: {message}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// The key.
        key: String,
        /// The decoding error.
        message: String,
    },
}

fn get_json<T: serde::de::DeserializeOwned>(
    tree: &sled::Tree,
    name: &'static str,
    key: &str,
) -> Result<Option<T>, ViewError> {
    match tree.get(key)? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|e| ViewError::Corrupt {
                tree: name,
                key: key.to_string(),
                message: e.to_string(),
            }),
    }
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // Protocol types always serialise (plain structs of strings and numbers).
    serde_json::to_vec(v).unwrap_or_default()
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

fn be_i64(v: &[u8]) -> i64 {
    v.try_into().map(i64::from_be_bytes).unwrap_or(0)
}

/// Checks one stored entry of the trees this module and [`crate::sitestock`] write ([`crate::storecheck`] calls it
/// for every entry at open).
fn check_entry(tree: &str, k: &[u8], v: &[u8]) -> Result<(), String> {
    let decodes = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err("value does not decode".to_string())
        }
    };
    match tree {
        "stock" => decodes(v.len() == 8 && k.iter().filter(|&&b| b == 0).count() == 2),
        "meta" if k == b"applied_seq" || k == b"pull_cursor" => decodes(v.len() == 8),
        "items" => decodes(serde_json::from_slice::<Item>(v).is_ok()),
        "locations" => decodes(serde_json::from_slice::<Location>(v).is_ok()),
        "asns" => decodes(serde_json::from_slice::<Asn>(v).is_ok()),
        "pick_lists" => decodes(serde_json::from_slice::<PickList>(v).is_ok()),
        "last_location" => decodes(std::str::from_utf8(v).is_ok()),
        GATE_UNITS => decodes(serde_json::from_slice::<crate::gate::UnitRecord>(v).is_ok()),
        crate::scanstats::TREE => crate::scanstats::verify_entry(k, v),
        _ => crate::sitestock::verify_entry(tree, k, v),
    }
}

impl LocalView {
    /// Opens the view in `dir`. A damaged store (it will not open, sled panics, a value does not decode, or it
    /// lost entries since the last clean stop) is quarantined beside it as `sled.broken-<unix time>` and replaced
    /// by a fresh one, whose quarantine path is returned; see [`crate::storecheck`] and the module doc for the
    /// rebuild. A store locked by a running agent is an error, never quarantined.
    pub fn open(dir: &Path) -> Result<(LocalView, Option<PathBuf>), ViewError> {
        let (db, moved) = crate::storecheck::open(dir, CACHE_BYTES, &check_entry)?;
        Ok((LocalView::from_db(db, dir)?, moved))
    }

    /// Seals the store after a clean stop, so the next open can tell a damaged store from a healthy one (see
    /// [`crate::storecheck`]). Call it once nothing writes the view any more.
    pub fn close(&self) -> Result<(), ViewError> {
        crate::storecheck::seal(&self.db, &self.dir)
    }

    fn from_db(db: sled::Db, dir: &Path) -> Result<LocalView, ViewError> {
        Ok(LocalView {
            dir: dir.to_path_buf(),
            site_unsynced: db.open_tree(crate::sitestock::UNSYNCED_TREE)?,
            stock: db.open_tree("stock")?,
            meta: db.open_tree("meta")?,
            items: db.open_tree("items")?,
            locations: db.open_tree("locations")?,
            asns: db.open_tree("asns")?,
            pick_lists: db.open_tree("pick_lists")?,
            cancelled: db.open_tree("cancelled")?,
            last_location: db.open_tree("last_location")?,
            gate_units: db.open_tree(GATE_UNITS)?,
            scan_stats: crate::scanstats::ScanStats::new(&db)?,
            pick_cache: Arc::default(),
            db,
        })
    }

    /// The sled database, for modules keeping trees of their own in it (e.g. [`crate::sitestock`]).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// The refused-scan counters ([`crate::scanstats`]).
    pub fn scan_stats(&self) -> &crate::scanstats::ScanStats {
        &self.scan_stats
    }

    /// The last movement seq reflected in the view.
    pub fn applied_seq(&self) -> Result<u64, ViewError> {
        Ok(self
            .meta
            .get("applied_seq")?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Applies movements (ignoring those already applied) atomically.
    pub fn apply(&self, movements: &[Movement]) -> Result<(), ViewError> {
        let applied = self.applied_seq()?;
        let fresh: Vec<&Movement> = movements.iter().filter(|m| m.seq > applied).collect();
        let Some(last) = fresh.last().map(|m| m.seq) else {
            return Ok(());
        };
        let trees = (
            &self.stock,
            &self.meta,
            &self.site_unsynced,
            &self.last_location,
            &self.gate_units,
        );
        let res: Result<(), TransactionError<()>> =
            trees.transaction(|(stock, meta, unsynced, last_location, gate_units)| {
                for m in &fresh {
                    crate::sitestock::record_unsynced(unsynced, m)?;
                    if let Some(k) = crate::gate::unit_key(m) {
                        let k = k.bytes();
                        // An unreadable record is replaced: the movement in hand is the newer truth.
                        let prev = gate_units
                            .get(&k)?
                            .and_then(|v| serde_json::from_slice(&v).ok());
                        gate_units.insert(k, to_json(&crate::gate::remember(prev, m)))?;
                    }
                    if let (MovementKind::Putaway | MovementKind::Move, Some(to)) =
                        (m.kind, &m.to_location)
                    {
                        last_location.insert(m.gtin.as_bytes(), to.as_bytes())?;
                    }
                    for e in m.effects() {
                        let k = key(e.location, &m.gtin, m.lot.as_deref());
                        let old = stock.get(&k)?.map_or(0, |v| be_i64(&v));
                        let new = old.saturating_add(e.delta);
                        if new == 0 {
                            stock.remove(k)?;
                        } else {
                            stock.insert(k, &new.to_be_bytes())?;
                        }
                    }
                }
                meta.insert("applied_seq", &last.to_be_bytes())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            });
        match res {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(e.into()),
            Err(TransactionError::Abort(())) => Ok(()),
        }
    }

    /// The pull cursor of the last applied page (0 before the first pull).
    pub fn pull_cursor(&self) -> Result<u64, ViewError> {
        Ok(self
            .meta
            .get("pull_cursor")?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Applies one pull page and stores `new_cursor`, all in one sled transaction (see the module doc for what a
    /// cancel does). Re-applying a page is idempotent.
    pub fn apply_changes(&self, changes: &[Change], new_cursor: u64) -> Result<(), ViewError> {
        if let Ok(mut c) = self.pick_cache.lock() {
            c.clear();
        }
        let trees = (
            &self.meta,
            &self.items,
            &self.locations,
            &self.asns,
            &self.pick_lists,
            &self.cancelled,
        );
        let res: Result<(), TransactionError<()>> =
            trees.transaction(|(meta, items, locations, asns, pick_lists, cancelled)| {
                for c in changes {
                    match c {
                        Change::Item(i) => {
                            items.insert(i.gtin.as_bytes(), to_json(i))?;
                        }
                        Change::Location(l) => {
                            locations.insert(l.code.as_bytes(), to_json(l))?;
                        }
                        Change::Asn(a) => {
                            asns.insert(a.id.as_bytes(), to_json(a))?;
                            cancelled.remove(a.id.as_bytes())?;
                        }
                        Change::PickList(p) => {
                            pick_lists.insert(p.id.as_bytes(), to_json(p))?;
                            cancelled.remove(p.id.as_bytes())?;
                        }
                        Change::Cancel { reference } => {
                            let key = reference.as_bytes();
                            let mut known = false;
                            if let Some(v) = asns.get(key)? {
                                if let Ok(mut a) = serde_json::from_slice::<Asn>(&v) {
                                    a.status = DocStatus::Cancelled;
                                    asns.insert(key, to_json(&a))?;
                                    known = true;
                                }
                            }
                            if let Some(v) = pick_lists.get(key)? {
                                if let Ok(mut p) = serde_json::from_slice::<PickList>(&v) {
                                    p.status = DocStatus::Cancelled;
                                    pick_lists.insert(key, to_json(&p))?;
                                    known = true;
                                }
                            }
                            if !known {
                                cancelled.insert(key, &[] as &[u8])?;
                            }
                        }
                    }
                }
                meta.insert("pull_cursor", &new_cursor.to_be_bytes())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            });
        // Again after the commit: a lookup between the first clear and the commit may have cached the old list.
        if let Ok(mut c) = self.pick_cache.lock() {
            c.clear();
        }
        match res {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(e.into()),
            Err(TransactionError::Abort(())) => Ok(()),
        }
    }

    /// What the gate remembers of a unit (see [`crate::gate`]); `key` is [`crate::gate::UnitKey::bytes`].
    pub fn gate_unit(&self, key: &[u8]) -> Result<Option<crate::gate::UnitRecord>, ViewError> {
        match self.gate_units.get(key)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| ViewError::Corrupt {
                    tree: GATE_UNITS,
                    key: String::from_utf8_lossy(key).into_owned(),
                    message: e.to_string(),
                }),
        }
    }

    /// Forgets gate units last moved before `before`; returns how many. The memory would otherwise grow with every
    /// pallet ever seen (see [`crate::gate`]).
    pub fn prune_gate_units(&self, before: time::OffsetDateTime) -> Result<usize, ViewError> {
        let mut n = 0;
        for kv in self.gate_units.iter() {
            let (k, v) = kv?;
            let old = serde_json::from_slice::<crate::gate::UnitRecord>(&v)
                .map_or(true, |r| r.at < before);
            if old {
                self.gate_units.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// An item by GTIN-14.
    pub fn item(&self, gtin: &str) -> Result<Option<Item>, ViewError> {
        get_json(&self.items, "items", gtin)
    }

    /// A location by code.
    pub fn location(&self, code: &str) -> Result<Option<Location>, ViewError> {
        get_json(&self.locations, "locations", code)
    }

    /// An ASN by id (a cancelled one has `status = cancelled`).
    pub fn asn(&self, id: &str) -> Result<Option<Asn>, ViewError> {
        get_json(&self.asns, "asns", id)
    }

    /// A pick list by id (a cancelled one has `status = cancelled`).
    pub fn pick_list(&self, id: &str) -> Result<Option<PickList>, ViewError> {
        get_json(&self.pick_lists, "pick_lists", id)
    }

    /// Whether the office cancelled document `id`, whether or not this device holds its content.
    pub fn is_cancelled(&self, id: &str) -> Result<bool, ViewError> {
        if self.cancelled.contains_key(id)? {
            return Ok(true);
        }
        let asn = self
            .asn(id)?
            .is_some_and(|a| a.status == DocStatus::Cancelled);
        Ok(asn
            || self
                .pick_list(id)?
                .is_some_and(|p| p.status == DocStatus::Cancelled))
    }

    /// How much master data is held (walks the trees: call it per pull, not per scan).
    pub fn master_counts(&self) -> MasterCounts {
        MasterCounts {
            items: self.items.len(),
            locations: self.locations.len(),
            asns: self.asns.len(),
            pick_lists: self.pick_lists.len(),
        }
    }

    /// All non-zero stock rows, sorted by location, GTIN, lot.
    pub fn stock(&self) -> Result<Vec<StockRow>, ViewError> {
        let mut rows = Vec::new();
        for kv in self.stock.iter() {
            let (k, v) = kv?;
            let mut parts = k.split(|&b| b == 0);
            let text = |p: Option<&[u8]>| String::from_utf8_lossy(p.unwrap_or(b"")).into_owned();
            let location = text(parts.next());
            let gtin = text(parts.next());
            let lot = text(parts.next());
            rows.push(StockRow {
                location,
                gtin,
                lot: (!lot.is_empty()).then_some(lot),
                qty: be_i64(&v),
            });
        }
        Ok(rows)
    }

    /// Values of `tree` whose bytes contain `needle`, decoded; the byte search spares parsing the rest.
    fn containing<T: serde::de::DeserializeOwned>(
        tree: &sled::Tree,
        name: &'static str,
        needle: &str,
    ) -> impl Iterator<Item = T> {
        let needle = needle.as_bytes().to_vec();
        tree.iter().filter_map(move |kv| {
            let (k, v) = logged(name, "", kv.map_err(ViewError::from))?;
            if needle.is_empty() || !v.windows(needle.len()).any(|w| w == needle.as_slice()) {
                return None;
            }
            let key = String::from_utf8_lossy(&k).into_owned();
            let decoded = serde_json::from_slice(&v).map_err(|e| ViewError::Corrupt {
                tree: name,
                key: key.clone(),
                message: e.to_string(),
            });
            logged(name, &key, decoded)
        })
    }
}

/// A store error as "not found" for the workflows (which then reject the scan with a reason), logged loudly.
fn logged<T>(tree: &str, key: &str, r: Result<T, ViewError>) -> Option<T> {
    r.map_err(|e| tracing::error!(error = %e, tree, key, "local store read failed during a scan"))
        .ok()
}

/// The workflows read master data through this. Inherent methods of the same names return the store's errors;
/// these turn them into "not found" (see [`logged`]).
impl MasterData for LocalView {
    fn item(&self, gtin: &str) -> Option<Item> {
        logged("items", gtin, LocalView::item(self, gtin)).flatten()
    }

    fn has_items(&self) -> bool {
        !self.items.is_empty()
    }

    fn location(&self, code: &str) -> Option<Location> {
        logged("locations", code, LocalView::location(self, code)).flatten()
    }

    fn has_locations(&self) -> bool {
        !self.locations.is_empty()
    }

    fn location_by_gln(&self, gln: &str, extension: Option<&str>) -> Option<Location> {
        let candidates = Self::containing::<Location>(&self.locations, "locations", gln);
        crate::workflow::location_by_gln(candidates, gln, extension)
    }

    fn asn(&self, id: &str) -> Option<Asn> {
        logged("asns", id, LocalView::asn(self, id)).flatten()
    }

    fn asn_for_pallet(&self, sscc: &str) -> Option<Asn> {
        Self::containing::<Asn>(&self.asns, "asns", sscc)
            .find(|a| a.status == DocStatus::Open && a.pallets.iter().any(|p| p.sscc == sscc))
    }

    fn pick_list(&self, id: &str) -> Option<Arc<PickList>> {
        // A picker works one list for hundreds of scans: parse it once (a 1,000-line list is ~70 KB of JSON,
        // ~0.3 ms to parse) and keep it until the next pulled page changes the documents.
        if let Some(hit) = self.pick_cache.lock().ok().and_then(|c| c.get(id).cloned()) {
            return Some(hit);
        }
        let list = Arc::new(logged("pick_lists", id, LocalView::pick_list(self, id)).flatten()?);
        if let Ok(mut c) = self.pick_cache.lock() {
            if c.len() >= PICK_CACHE_LISTS {
                c.clear();
            }
            c.insert(id.to_string(), list.clone());
        }
        Some(list)
    }

    fn last_location(&self, gtin: &str) -> Option<String> {
        let v = logged(
            "last_location",
            gtin,
            self.last_location.get(gtin).map_err(Into::into),
        )??;
        Some(String::from_utf8_lossy(&v).into_owned())
    }

    fn items_at(&self, location: &str) -> Vec<(String, Option<String>)> {
        let mut prefix = location.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.stock.scan_prefix(&prefix) {
            let Some((k, v)) = logged("stock", location, kv.map_err(Into::into)) else {
                continue;
            };
            if be_i64(&v) <= 0 {
                continue;
            }
            let mut parts = k[prefix.len()..].splitn(2, |&b| b == 0);
            let gtin = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let lot = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            out.push((gtin, (!lot.is_empty()).then_some(lot)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockhand_protocol::sync::{MovementKind, MovementSource};

    fn mv(
        seq: u64,
        kind: MovementKind,
        from: Option<&str>,
        to: Option<&str>,
        qty: u64,
    ) -> Movement {
        Movement {
            device_id: "hh".into(),
            seq,
            at: time::OffsetDateTime::UNIX_EPOCH,
            kind,
            gtin: "09506000134352".into(),
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

    #[test]
    fn apply_is_idempotent_and_survives_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sled");
        let ms = vec![
            mv(1, MovementKind::Receive, None, Some("DOCK-1"), 5),
            mv(2, MovementKind::Putaway, Some("DOCK-1"), Some("A-01"), 5),
            mv(3, MovementKind::Receive, None, Some("DOCK-1"), 2),
        ];
        {
            let (v, moved) = LocalView::open(&dir).unwrap();
            assert!(moved.is_none());
            v.apply(&ms[..2]).unwrap();
            v.apply(&ms).unwrap(); // 1 and 2 again: ignored
            assert_eq!(v.applied_seq().unwrap(), 3);
        }
        let (v, _) = LocalView::open(&dir).unwrap();
        let rows = v.stock().unwrap();
        let got: Vec<(&str, i64)> = rows.iter().map(|r| (r.location.as_str(), r.qty)).collect();
        assert_eq!(got, vec![("A-01", 5), ("DOCK-1", 2)]);
        assert_eq!(rows[0].lot.as_deref(), Some("L1"));
    }

    fn item(gtin: &str, desc: &str) -> Change {
        Change::Item(Item {
            gtin: gtin.into(),
            description: desc.into(),
            unit: "EA".into(),
            lot_tracked: true,
            expiry_tracked: false,
            serial_tracked: false,
            active: true,
            unit_cost: None,
        })
    }

    fn pick(id: &str) -> Change {
        Change::PickList(PickList {
            id: id.into(),
            site: "WH1".into(),
            device: None,
            zone: None,
            lines: vec![dockhand_protocol::sync::PickLine {
                line: 1,
                location: "A-01".into(),
                gtin: "09506000134352".into(),
                lot: None,
                qty: 3,
            }],
            status: DocStatus::Open,
        })
    }

    fn asn(id: &str) -> Change {
        Change::Asn(Asn {
            id: id.into(),
            site: "WH1".into(),
            supplier: None,
            expected_on: None,
            lines: vec![dockhand_protocol::sync::AsnLine {
                gtin: "09506000134352".into(),
                lot: Some("L1".into()),
                qty: 10,
            }],
            pallets: vec![],
            status: DocStatus::Open,
        })
    }

    #[test]
    fn apply_changes_is_idempotent_and_cursor_survives_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sled");
        let page = vec![
            item("09506000134352", "Widget"),
            Change::Location(Location {
                code: "A-01".into(),
                gln: None,
                zone: Some("Z1".into()),
                active: true,
            }),
            asn("ASN-1"),
            pick("PL-1"),
            item("09506000134352", "Widget v2"),
        ];
        {
            let (v, _) = LocalView::open(&dir).unwrap();
            assert_eq!(v.pull_cursor().unwrap(), 0);
            v.apply_changes(&page, 5).unwrap();
            let before = v.master_counts();
            v.apply_changes(&page, 5).unwrap();
            assert_eq!(v.master_counts(), before);
            assert_eq!(
                before,
                MasterCounts {
                    items: 1,
                    locations: 1,
                    asns: 1,
                    pick_lists: 1
                }
            );
        }
        let (v, _) = LocalView::open(&dir).unwrap();
        assert_eq!(v.pull_cursor().unwrap(), 5);
        assert_eq!(
            v.item("09506000134352").unwrap().unwrap().description,
            "Widget v2"
        );
        assert_eq!(
            v.location("A-01").unwrap().unwrap().zone.as_deref(),
            Some("Z1")
        );
        assert_eq!(v.asn("ASN-1").unwrap().unwrap().lines[0].qty, 10);
        assert_eq!(v.pick_list("PL-1").unwrap().unwrap().lines.len(), 1);
        assert!(v.item("00000000000000").unwrap().is_none());
    }

    #[test]
    fn cancel_marks_documents_and_keeps_tombstones() {
        let tmp = tempfile::tempdir().unwrap();
        let (v, _) = LocalView::open(&tmp.path().join("sled")).unwrap();
        v.apply_changes(&[asn("ASN-1"), pick("PL-1")], 2).unwrap();
        let cancel = |r: &str| Change::Cancel {
            reference: r.into(),
        };
        v.apply_changes(&[cancel("PL-1"), cancel("ASN-1"), cancel("PL-9")], 5)
            .unwrap();
        let pl = v.pick_list("PL-1").unwrap().unwrap();
        assert_eq!(pl.status, DocStatus::Cancelled);
        assert_eq!(pl.lines.len(), 1, "content is kept");
        assert_eq!(
            v.asn("ASN-1").unwrap().unwrap().status,
            DocStatus::Cancelled
        );
        assert!(v.is_cancelled("PL-1").unwrap());
        assert!(
            v.is_cancelled("PL-9").unwrap(),
            "unknown document: tombstone"
        );
        assert!(v.pick_list("PL-9").unwrap().is_none());
        assert!(!v.is_cancelled("PL-2").unwrap());
        // Re-applying the cancel page changes nothing; a later version of the document replaces the tombstone.
        v.apply_changes(&[cancel("PL-1"), cancel("PL-9")], 5)
            .unwrap();
        assert_eq!(
            v.pick_list("PL-1").unwrap().unwrap().status,
            DocStatus::Cancelled
        );
        v.apply_changes(&[pick("PL-9")], 6).unwrap();
        assert!(!v.is_cancelled("PL-9").unwrap());
        assert_eq!(v.pull_cursor().unwrap(), 6);
        assert_eq!(v.master_counts().pick_lists, 2);
    }

    #[test]
    fn unopenable_store_is_moved_aside() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sled");
        std::fs::create_dir_all(&dir).unwrap();
        // A "conf" that is garbage makes sled refuse to open.
        std::fs::write(dir.join("conf"), b"\xff\xfe garbage").unwrap();
        std::fs::write(dir.join("db"), b"not a sled file at all").unwrap();
        match LocalView::open(&dir) {
            Ok((v, moved)) => {
                let moved = moved.expect("a broken store is moved aside");
                assert!(moved.exists());
                assert_eq!(v.applied_seq().unwrap(), 0);
            }
            Err(e) => panic!("should recover by moving aside: {e}"),
        }
    }

    fn loc(code: &str, gln: Option<&str>) -> Change {
        Change::Location(Location {
            code: code.into(),
            gln: gln.map(Into::into),
            zone: None,
            active: true,
        })
    }

    /// What the workflows read: master data, GLN and pallet lookups, the last destination, what is where.
    #[test]
    fn local_view_is_master_data() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sled");
        let g = "09506000134352";
        {
            let (v, _) = LocalView::open(&dir).unwrap();
            let md: &dyn MasterData = &v;
            assert!(!md.has_items() && !md.has_locations());
            let mut pallet = asn("ASN-2");
            if let Change::Asn(a) = &mut pallet {
                a.pallets.push(dockhand_protocol::sync::AsnPallet {
                    sscc: "106141411234567897".into(),
                    lines: a.lines.clone(),
                });
            }
            let page = vec![
                item(g, "Widget"),
                loc("A-01", Some("0614141000005")),
                loc("B1", Some("0614141000012")),
                loc("B2", Some("0614141000012")),
                pallet,
                pick("PL-1"),
            ];
            v.apply_changes(&page, 1).unwrap();
            assert!(md.has_items() && md.has_locations());
            assert_eq!(md.item(g).unwrap().description, "Widget");
            assert!(md.item("05901234123457").is_none());
            assert_eq!(md.pick_list("PL-1").unwrap().lines.len(), 1);
            let by_gln =
                |gln: &str, ext: Option<&str>| md.location_by_gln(gln, ext).map(|l| l.code);
            assert_eq!(by_gln("0614141000005", None).as_deref(), Some("A-01"));
            assert_eq!(by_gln("0614141000012", Some("B2")).as_deref(), Some("B2"));
            assert_eq!(
                by_gln("0614141000012", None),
                None,
                "shared GLN needs AI 254"
            );
            assert_eq!(by_gln("0614141000012", Some("B9")), None);
            assert_eq!(by_gln("0614141000029", None), None);
            assert_eq!(md.asn_for_pallet("106141411234567897").unwrap().id, "ASN-2");
            assert!(md.asn_for_pallet("106141411234567903").is_none());
            v.apply(&[
                mv(1, MovementKind::Receive, None, Some("DOCK-1"), 5),
                mv(2, MovementKind::Putaway, Some("DOCK-1"), Some("A-01"), 3),
                mv(3, MovementKind::Move, Some("A-01"), Some("B1"), 3),
                mv(4, MovementKind::Putaway, Some("DOCK-1"), Some("B2"), 2),
            ])
            .unwrap();
            assert_eq!(md.last_location(g).as_deref(), Some("B2"));
            assert_eq!(md.items_at("B1"), vec![(g.to_string(), Some("L1".into()))]);
            assert!(md.items_at("A-01").is_empty(), "zero rows are not there");
            assert!(
                md.items_at("B").is_empty(),
                "a prefix of a code is another location"
            );
            v.apply_changes(
                &[Change::Cancel {
                    reference: "ASN-2".into(),
                }],
                2,
            )
            .unwrap();
            assert!(
                md.asn_for_pallet("106141411234567897").is_none(),
                "only open ASNs"
            );
            v.close().unwrap();
        }
        let (v, moved) = LocalView::open(&dir).unwrap();
        assert!(moved.is_none());
        assert_eq!(MasterData::last_location(&v, g).as_deref(), Some("B2"));
    }

    fn gtin(n: u64) -> String {
        let body = format!("0950601{n:06}");
        let sum: u32 = body
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
            .sum();
        format!("{body}{}", (10 - sum % 10) % 10)
    }

    /// The latency the workflows add per scan on the real store: a 1,000-line pick list among 10,000 items and
    /// 1,000 locations, picked line by line (location, item). Prints the figures; asserts no timing (shared CI
    /// machines), only that every scan was taken and the snapshot stayed small.
    #[test]
    fn pick_scan_latency_with_a_large_master() {
        use crate::workflow::testing::{input, AT};
        use crate::workflow::{State, Workflow};
        let tmp = tempfile::tempdir().unwrap();
        let (v, _) = LocalView::open(&tmp.path().join("sled")).unwrap();
        let items: Vec<String> = (0..10_000).map(gtin).collect();
        for (page, chunk) in items.chunks(1000).enumerate() {
            let changes: Vec<Change> = chunk.iter().map(|g| item(g, "Thing")).collect();
            v.apply_changes(&changes, page as u64 + 1).unwrap();
        }
        let lines: Vec<dockhand_protocol::sync::PickLine> = (0..1000)
            .map(|i| dockhand_protocol::sync::PickLine {
                line: i + 1,
                location: format!("L-{i:04}"),
                gtin: items[(i as usize * 7) % items.len()].clone(),
                lot: None,
                qty: 1,
            })
            .collect();
        let mut master: Vec<Change> = lines.iter().map(|l| loc(&l.location, None)).collect();
        master.push(Change::PickList(PickList {
            id: "BIG".into(),
            site: "WH1".into(),
            device: None,
            zone: None,
            lines: lines.clone(),
            status: DocStatus::Open,
        }));
        v.apply_changes(&master, 20).unwrap();
        let mut scans = vec!["DH:PICK:BIG".to_string()];
        for l in &lines {
            scans.push(format!("LOC:{}", l.location));
            // The test items are lot tracked.
            scans.push(format!("]C101{}10B1", l.gtin));
        }
        let mut wf = Workflow::new("hh-01", "DOCK-1", State::default(), 1);
        let (mut took, mut largest) = (Vec::with_capacity(scans.len()), 0);
        for s in &scans {
            let scan = input(s);
            let start = std::time::Instant::now();
            let step = wf.handle(scan, AT, &v);
            took.push(start.elapsed());
            assert!(step.decision.is_ok(), "{s}: {:?}", step.decision);
            largest = largest.max(step.state.map_or(0, |s| s.len()));
        }
        assert_eq!(wf.next_seq(), 1001);
        took.sort();
        let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
        println!(
            "workflow on sled, 1,000-line pick list, 10,000 items ({} build): {} scans, p50 {:?}, p99 {:?}, \
             max {:?}; largest state snapshot {largest} bytes",
            if cfg!(debug_assertions) { "debug" } else { "release" },
            took.len(),
            at(0.50),
            at(0.99),
            took[took.len() - 1],
        );
        assert!(
            largest < 1024,
            "state snapshot grew with the lines picked: {largest} bytes"
        );
    }
}
