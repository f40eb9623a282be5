//! The storage seam: authoritative movements, per-device high-water marks and stock.
//!
//! Handlers see storage only as an `Arc<dyn Store>`. Methods are synchronous because the only implementation
//! today (sled) is a blocking library; handlers call them through `tokio::task::spawn_blocking` so a slow disk
//! never stalls the async runtime.
//!
//! # Contract every implementation keeps (DESIGN §3)
//!
//! - `push` is all or nothing: the new movements of a batch, their stock effects and the device's high-water
//!   mark change in one transaction, and are durable (fdatasync'ed) before `push` returns `Acked`.
//! - A movement already stored (same `(device_id, seq)`) with equal content is a replay: acknowledged, not
//!   applied again. Different content is a [`PushOutcome::Conflict`] and nothing of the batch is applied.
//! - A batch that starts past high-water + 1 is a [`PushOutcome::Gap`] and changes nothing.
//! - Stock for `(site, location, gtin, lot)` is the sum of the effects of applied movements (conservation);
//!   negative stock is kept, never clamped: it is a discrepancy for the office.
//!
//! Callers validate batches first (contiguous seqs, one device, [`Movement::validate`]) so they can name the
//! offending field; implementations re-check what they rely on and answer [`StoreError::InvalidBatch`].

pub mod sled;

use dockhand_protocol::sync::Movement;
use serde::Serialize;

pub use self::sled::SledStore;

/// The result of [`Store::push`] for a well-formed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Every movement of the device up to `acked_through` is durably applied.
    Acked {
        /// The device's high-water mark after this batch.
        acked_through: u64,
    },
    /// The batch starts past high-water + 1; nothing was applied.
    Gap {
        /// The seq the store needs next (high-water + 1).
        expected_seq: u64,
    },
    /// The stored movement with this seq differs from the pushed one; nothing was applied.
    Conflict {
        /// The first conflicting seq.
        seq: u64,
    },
}

/// Which stock rows [`Store::stock`] returns; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockFilter {
    /// Only this site.
    pub site: Option<String>,
    /// Only this location.
    pub location: Option<String>,
    /// Only this GTIN-14.
    pub gtin: Option<String>,
    /// Only this lot (rows without a lot never match a lot filter).
    pub lot: Option<String>,
}

/// One non-zero stock quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StockRow {
    /// The site.
    pub site: String,
    /// The site-local location code.
    pub location: String,
    /// The item as GTIN-14.
    pub gtin: String,
    /// The lot, `null` on the wire when the goods carry none.
    pub lot: Option<String>,
    /// Units on hand; negative means more left than arrived (a discrepancy).
    pub qty: i64,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database engine failed (I/O, or it could not open the files).
    #[error("database error: {0}")]
    Db(#[from] ::sled::Error),
    /// A file operation around the database failed (e.g. the fdatasync that makes a push durable).
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Stored bytes do not decode; the database needs a person's attention.
    #[error("corrupt record in {tree}: {message}")]
    Corrupt {
        /// The tree holding the bad record.
        tree: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The batch breaks a rule the caller should have checked (non-contiguous, wrong device, bad key text).
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// A stock sum left the range of `i64`; refused rather than clamped.
    #[error("stock overflow at {0}")]
    Overflow(String),
}

/// Authoritative server storage. See the module docs for the contract.
pub trait Store: Send + Sync {
    /// Applies a batch of one device's movements exactly once (see the module docs).
    fn push(
        &self,
        site: &str,
        device_id: &str,
        movements: &[Movement],
    ) -> Result<PushOutcome, StoreError>;

    /// The highest seq of `device_id` applied so far, 0 when none.
    fn high_water(&self, device_id: &str) -> Result<u64, StoreError>;

    /// Non-zero stock rows matching `filter`, sorted by site, location, gtin, lot (no lot first).
    fn stock(&self, filter: &StockFilter) -> Result<Vec<StockRow>, StoreError>;

    /// The stored movement `(device_id, seq)`, if any.
    fn movement(&self, device_id: &str, seq: u64) -> Result<Option<Movement>, StoreError>;

    /// How many movements are stored, over all devices.
    fn movement_count(&self) -> Result<u64, StoreError>;
}
