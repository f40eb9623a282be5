//! The local stock view in sled: what this device has recorded, rebuilt from the journal when needed.
//!
//! # Design
//!
//! sled is not the durable truth (DESIGN §4): it holds only what the journal can rebuild. Each applied batch updates
//! the stock tree and `meta/applied_seq` in one sled transaction, so after a crash the view is at some seq `a`, and
//! start-up replays journal movements with `seq > a`. If sled will not open, its directory is moved aside
//! (`sled.broken-<unix time>`) and a fresh view is rebuilt from the journal; movements already acknowledged and
//! deleted from the journal are then only at the server, which is logged.
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
//! ```

use std::path::{Path, PathBuf};

use dockhand_protocol::sync::{Asn, Change, DocStatus, Item, Location, Movement, PickList};
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

/// Cache for the view; it is small and mostly written.
const CACHE_BYTES: u64 = 16 << 20;

/// One row of local stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    stock: sled::Tree,
    meta: sled::Tree,
    items: sled::Tree,
    locations: sled::Tree,
    asns: sled::Tree,
    pick_lists: sled::Tree,
    cancelled: sled::Tree,
}

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

impl LocalView {
    /// Opens the view in `dir`, moving a sled that will not open aside (see the module doc).
    pub fn open(dir: &Path) -> Result<(LocalView, Option<PathBuf>), ViewError> {
        let open = || {
            sled::Config::new()
                .path(dir)
                .cache_capacity(CACHE_BYTES)
                .open()
        };
        let (db, moved) = match open() {
            Ok(db) => (db, None),
            Err(e) if matches!(e, sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::WouldBlock) =>
            {
                // Another agent holds the lock: never quarantine a store in use.
                return Err(e.into());
            }
            Err(e) => {
                let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
                let aside = dir.with_file_name(format!("sled.broken-{stamp}"));
                tracing::error!(error = %e, moved_to = %aside.display(),
                    "local store will not open; moving it aside and rebuilding from the journal");
                std::fs::rename(dir, &aside).map_err(sled::Error::Io)?;
                (open()?, Some(aside))
            }
        };
        Ok((
            LocalView {
                stock: db.open_tree("stock")?,
                meta: db.open_tree("meta")?,
                items: db.open_tree("items")?,
                locations: db.open_tree("locations")?,
                asns: db.open_tree("asns")?,
                pick_lists: db.open_tree("pick_lists")?,
                cancelled: db.open_tree("cancelled")?,
            },
            moved,
        ))
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
        let res: Result<(), TransactionError<()>> =
            (&self.stock, &self.meta).transaction(|(stock, meta)| {
                for m in &fresh {
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
        match res {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(e.into()),
            Err(TransactionError::Abort(())) => Ok(()),
        }
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
}
