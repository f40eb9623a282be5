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
//! ```text
//! tree "stock": key = location 0x00 gtin 0x00 lot   (lot empty when none)  value = i64 big-endian
//! tree "meta":  key = "applied_seq"                                          value = u64 big-endian
//! ```

use std::path::{Path, PathBuf};

use dockhand_protocol::sync::Movement;
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

/// The sled-backed local view.
#[derive(Clone, Debug)]
pub struct LocalView {
    stock: sled::Tree,
    meta: sled::Tree,
}

/// A sled failure.
#[derive(Debug, thiserror::Error)]
#[error("local store: {0}")]
pub struct ViewError(#[from] sled::Error);

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
