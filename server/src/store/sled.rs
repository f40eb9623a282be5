//! [`Store`] on sled 0.34: the server's default, single-node storage.
//!
//! # Trees and key layouts
//!
//! ```text
//! movements   device_id bytes ++ 0x00 ++ seq (u64 big-endian)         -> Movement as JSON
//! high_water  device_id bytes                                        -> u64 big-endian
//! stock       site ++ 0x00 ++ location ++ 0x00 ++ gtin [++ 0x00 ++ lot] -> i64 big-endian
//! ```
//!
//! Keys are big-endian so a device's movements iterate in seq order, and NUL-separated so stock keys sort by
//! `(site, location, gtin, lot)` with "no lot" (three segments) before any lot. None of the key texts may contain
//! a NUL byte (device ids and sites are restricted at enrollment; locations and lots are checked by the push
//! handler and again here), otherwise keys would be ambiguous. A stock row that sums to zero is removed, so
//! the tree holds only non-zero rows.
//!
//! # Invariants
//!
//! - For every device, `movements` holds exactly seqs `1..=high_water[device]`, contiguous.
//! - `stock` equals the sum of [`Movement::effects`] over all stored movements (conservation, DESIGN §3.6).
//! - Both hold after every commit because a push writes the three trees in ONE sled transaction, reading the
//!   high-water mark inside it, so concurrent pushes of one device serialize (sled retries the loser).
//!
//! # Durability
//!
//! A push is answered `Acked` only after its transaction is on disk. sled's `flush()` writes its log but on
//! Linux only calls `sync_file_range`, which neither flushes the drive cache nor the file's metadata (its real
//! `sync_all` runs in a background thread every 500 ms; DESIGN §4). So after `flush()` we also `fdatasync` sled's
//! single data file `<dir>/db` ourselves. sled 0.34 writes, under its directory: `db` (the log and all pages),
//! `conf` (written once at creation), `snap.<lsn>` (snapshots, rebuildable from the log) and `blobs/` (values
//! over the blob threshold, far above a movement's size, so unused here).
//!
//! # Recovery
//!
//! On open sled replays its log up to the last complete write; everything acknowledged was fdatasync'ed, so it is
//! there. Work that was committed but not yet synced may be lost; its pushes were never acknowledged, so the
//! agents still hold those movements in their journals and push them again (DESIGN §3.4). If sled cannot open
//! the directory at all, [`SledStore::open`] fails and the server refuses to start rather than run empty.

use std::fs::File;
use std::path::Path;

use dockhand_protocol::sync::Movement;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use sled::{Db, Tree};

use super::{PushOutcome, StockFilter, StockRow, Store, StoreError};

/// Default sled page cache: small and explicit, because sled's own default (1 GiB) is far more than an edge
/// box can spare and resident memory grows past it.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

const MOVEMENTS: &str = "movements";
const HIGH_WATER: &str = "high_water";
const STOCK: &str = "stock";

/// The sled-backed store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct SledStore {
    db: Db,
    movements: Tree,
    high_water: Tree,
    stock: Tree,
    /// sled's data file, kept open so every acknowledged push can fdatasync it.
    data_file: File,
}

impl SledStore {
    /// Opens (or creates) the database in `dir` with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()?;
        let movements = db.open_tree(MOVEMENTS)?;
        let high_water = db.open_tree(HIGH_WATER)?;
        let stock = db.open_tree(STOCK)?;
        let data_file = File::open(dir.join("db"))?;
        Ok(SledStore {
            db,
            movements,
            high_water,
            stock,
            data_file,
        })
    }

    /// Makes everything committed so far durable: sled's flush, then a real fdatasync (see the module docs).
    fn sync(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.data_file.sync_data()?;
        Ok(())
    }
}

/// What the transaction decided, plus stock rows it left negative (logged after commit, since the closure may
/// run more than once).
struct Applied {
    outcome: PushOutcome,
    negative: Vec<(Vec<u8>, i64)>,
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
        // Encode outside the transaction: the closure may be retried and must not fail on serialization.
        let encoded = movements
            .iter()
            .map(|m| serde_json::to_vec(m).map_err(|e| StoreError::InvalidBatch(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;

        let result =
            (&self.movements, &self.high_water, &self.stock).transaction(|(tm, th, ts)| {
                let hw = match th.get(hw_key)? {
                    Some(v) => decode_u64(&v).map_err(ConflictableTransactionError::Abort)?,
                    None => 0,
                };
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
                    let stored = tm.get(movement_key(device_id, m.seq))?.ok_or_else(|| {
                        ConflictableTransactionError::Abort(StoreError::Corrupt {
                            tree: MOVEMENTS,
                            message: format!(
                                "{device_id} seq {} missing below high-water {hw}",
                                m.seq
                            ),
                        })
                    })?;
                    let stored: Movement = serde_json::from_slice(&stored).map_err(|e| {
                        ConflictableTransactionError::Abort(StoreError::Corrupt {
                            tree: MOVEMENTS,
                            message: format!("{device_id} seq {}: {e}", m.seq),
                        })
                    })?;
                    if stored != *m {
                        return Ok(Applied {
                            outcome: PushOutcome::Conflict { seq: m.seq },
                            negative: Vec::new(),
                        });
                    }
                }
                // New suffix: starts at hw + 1 because the batch is contiguous.
                let mut new_hw = hw;
                let mut negative = Vec::new();
                for (m, json) in movements.iter().zip(&encoded).filter(|(m, _)| m.seq > hw) {
                    tm.insert(movement_key(device_id, m.seq), json.as_slice())?;
                    for effect in m.effects() {
                        let key = stock_key(site, effect.location, &m.gtin, m.lot.as_deref());
                        let old = match ts.get(&key)? {
                            Some(v) => {
                                decode_i64(&v).map_err(ConflictableTransactionError::Abort)?
                            }
                            None => 0,
                        };
                        let new = old.checked_add(effect.delta).ok_or_else(|| {
                            ConflictableTransactionError::Abort(StoreError::Overflow(describe_key(
                                &key,
                            )))
                        })?;
                        if new == 0 {
                            ts.remove(key)?;
                        } else {
                            if new < 0 {
                                negative.push((key.clone(), new));
                            }
                            ts.insert(key, &new.to_be_bytes())?;
                        }
                    }
                    new_hw = m.seq;
                }
                if new_hw != hw {
                    th.insert(hw_key, &new_hw.to_be_bytes())?;
                }
                Ok(Applied {
                    outcome: PushOutcome::Acked {
                        acked_through: new_hw,
                    },
                    negative,
                })
            });
        let applied = match result {
            Ok(applied) => applied,
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(StoreError::Db(e)),
        };
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
        match self.high_water.get(device_id.as_bytes())? {
            Some(v) => decode_u64(&v),
            None => Ok(0),
        }
    }

    fn stock(&self, filter: &StockFilter) -> Result<Vec<StockRow>, StoreError> {
        let iter = match &filter.site {
            Some(site) => self.stock.scan_prefix(prefix_of(site)),
            None => self.stock.iter(),
        };
        let mut rows = Vec::new();
        for entry in iter {
            let (key, value) = entry?;
            let row = decode_stock_row(&key, &value)?;
            let keep = filter.site.as_ref().is_none_or(|s| *s == row.site)
                && filter.location.as_ref().is_none_or(|l| *l == row.location)
                && filter.gtin.as_ref().is_none_or(|g| *g == row.gtin)
                && filter
                    .lot
                    .as_ref()
                    .is_none_or(|l| Some(l) == row.lot.as_ref());
            if keep && row.qty != 0 {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    fn movement(&self, device_id: &str, seq: u64) -> Result<Option<Movement>, StoreError> {
        match self.movements.get(movement_key(device_id, seq))? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    tree: MOVEMENTS,
                    message: format!("{device_id} seq {seq}: {e}"),
                }),
            None => Ok(None),
        }
    }

    fn movement_count(&self) -> Result<u64, StoreError> {
        Ok(self.movements.len() as u64)
    }
}

/// Re-checks the batch rules the transaction relies on (the handler has already named the field for the client).
fn check_batch(site: &str, device_id: &str, movements: &[Movement]) -> Result<(), StoreError> {
    let bad = |msg: String| Err(StoreError::InvalidBatch(msg));
    if device_id.is_empty() || device_id.contains('\0') || site.is_empty() || site.contains('\0') {
        return bad("device id and site must be non-empty and free of NUL".into());
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

fn movement_key(device_id: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(device_id.len() + 9);
    key.extend_from_slice(device_id.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn prefix_of(site: &str) -> Vec<u8> {
    let mut key = site.as_bytes().to_vec();
    key.push(0);
    key
}

fn stock_key(site: &str, location: &str, gtin: &str, lot: Option<&str>) -> Vec<u8> {
    let mut key = prefix_of(site);
    key.extend_from_slice(location.as_bytes());
    key.push(0);
    key.extend_from_slice(gtin.as_bytes());
    if let Some(lot) = lot {
        key.push(0);
        key.extend_from_slice(lot.as_bytes());
    }
    key
}

fn decode_stock_row(key: &[u8], value: &[u8]) -> Result<StockRow, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        tree: STOCK,
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
        qty: decode_i64(value)?,
    })
}

fn describe_key(key: &[u8]) -> String {
    String::from_utf8_lossy(key).replace('\0', "/")
}

fn decode_u64(v: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = v.try_into().map_err(|_| StoreError::Corrupt {
        tree: HIGH_WATER,
        message: format!("value has {} bytes, want 8", v.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

fn decode_i64(v: &[u8]) -> Result<i64, StoreError> {
    let bytes: [u8; 8] = v.try_into().map_err(|_| StoreError::Corrupt {
        tree: STOCK,
        message: format!("value has {} bytes, want 8", v.len()),
    })?;
    Ok(i64::from_be_bytes(bytes))
}
