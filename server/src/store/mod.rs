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
//! - Reconciliation runs inside the push transaction: for every newly applied movement the store gathers the facts
//!   [`crate::reconcile::Facts`] asks for and records what [`crate::reconcile::evaluate`] finds, so a discrepancy
//!   exists if and only if its movements do. Movements are never rejected for business reasons once a device
//!   confirmed them (unknown item, unknown location, over-receipt...): they are stored and flagged.
//!
//! Callers validate batches first (contiguous seqs, one device, [`Movement::validate`]) so they can name the
//! offending field; implementations re-check what they rely on and answer [`StoreError::InvalidBatch`].

pub mod progress;
pub mod sled;

use dockhand_protocol::sync::{
    Asn, DocStatus, Item, Location, Movement, MovementKind, PickList, PullResponse, ScanStat,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use self::progress::{AsnProgress, PickProgress};
pub use self::sled::SledStore;
pub use crate::reports::replenishment::ReorderRule;

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
    /// Expiry date `YYYY-MM-DD` (GS1 AI 17) of the goods: the first one a movement into this row carried, never
    /// overwritten; `null` on the wire when no movement named one.
    pub expiry: Option<String>,
}

/// The column a [`Store::stock_page`] is sorted by. Every order ends with the row's identity, so it is total and
/// a boundary row is an exact keyset cursor. Texts compare as bytes (both backends), "no lot" before any lot,
/// unknown expiry after any date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StockSort {
    /// `(site, location, gtin, lot)`: the stock key's own order, which both backends keep indexed.
    #[default]
    Location,
    /// `(gtin, lot, site, location)`.
    Gtin,
    /// `(lot, gtin, site, location)`.
    Lot,
    /// `(qty, site, location, gtin, lot)`.
    Qty,
    /// `(expiry, gtin, lot, site, location)`, unknown expiry last.
    Expiry,
}

impl StockSort {
    /// Compares two rows in this order, ascending. The backends' queries agree with it (conformance suite).
    pub fn compare(self, a: &StockRow, b: &StockRow) -> std::cmp::Ordering {
        // `str` and `Option` order as the backends do: bytes, `None` (no lot) first.
        fn place(r: &StockRow) -> (&str, &str) {
            (&r.site, &r.location)
        }
        fn item(r: &StockRow) -> (&str, Option<&str>) {
            (&r.gtin, r.lot.as_deref())
        }
        // Unknown expiry sorts last: (is unknown, date).
        fn expiry(r: &StockRow) -> (bool, &str) {
            (r.expiry.is_none(), r.expiry.as_deref().unwrap_or(""))
        }
        match self {
            StockSort::Location => (place(a), item(a)).cmp(&(place(b), item(b))),
            StockSort::Gtin => (item(a), place(a)).cmp(&(item(b), place(b))),
            StockSort::Lot => (a.lot.as_deref(), a.gtin.as_str(), place(a)).cmp(&(
                b.lot.as_deref(),
                b.gtin.as_str(),
                place(b),
            )),
            StockSort::Qty => (a.qty, place(a), item(a)).cmp(&(b.qty, place(b), item(b))),
            StockSort::Expiry => {
                (expiry(a), item(a), place(a)).cmp(&(expiry(b), item(b), place(b)))
            }
        }
    }
}

/// Where a [`Store::stock_page`] starts. Keyset paging: a page costs the same wherever it lies, and rows written
/// between two page loads neither repeat nor vanish at the seam.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StockPageStart {
    /// The first rows in the order.
    #[default]
    First,
    /// The rows after this one in the order (the previous page's last row: "next").
    After(StockRow),
    /// The rows just before this one (the current page's first row: "previous"); still returned in the order.
    Before(StockRow),
}

/// What [`Store::stock_page`] is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockPageQuery {
    /// Which rows.
    pub filter: StockFilter,
    /// The column to sort by.
    pub sort: StockSort,
    /// Descending: the whole order reversed (every column of the tuple), so the cursor stays exact.
    pub descending: bool,
    /// Where the page starts.
    pub start: StockPageStart,
    /// At most this many rows; 0 is read as 1.
    pub limit: usize,
}

/// A page of non-zero stock rows, in the requested order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockPage {
    /// The rows.
    pub rows: Vec<StockRow>,
    /// Whether more rows lie beyond the page in the direction it was read: after it for `First` and `After`,
    /// before it for `Before`.
    pub more: bool,
}

impl StockPageQuery {
    /// Whether the page is read against the sort order (a `Before` page): the backends fetch it in reverse and
    /// turn it around.
    pub fn backward(&self) -> bool {
        matches!(self.start, StockPageStart::Before(_))
    }

    /// Whether the read goes from larger to smaller rows of [`StockSort::compare`].
    pub fn reads_descending(&self) -> bool {
        self.backward() != self.descending
    }

    /// The order rows are read in (`Less` first): the sort order, reversed for descending and again for `Before`.
    pub fn reading_order(&self, a: &StockRow, b: &StockRow) -> std::cmp::Ordering {
        let ord = self.sort.compare(a, b);
        if self.reads_descending() {
            ord.reverse()
        } else {
            ord
        }
    }

    /// Whether `row` lies strictly beyond the page's start in the reading order, i.e. may be on the page.
    pub fn beyond_start(&self, row: &StockRow) -> bool {
        match &self.start {
            StockPageStart::First => true,
            StockPageStart::After(b) | StockPageStart::Before(b) => {
                self.reading_order(row, b) == std::cmp::Ordering::Greater
            }
        }
    }

    /// The page size, at least 1.
    pub fn limit(&self) -> usize {
        self.limit.max(1)
    }
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
    /// The request breaks a business rule (e.g. changing a cancelled ASN, resolving twice); nothing changed.
    #[error("{0}")]
    Refused(String),
    /// The PostgreSQL backend failed.
    #[error("database error: {0}")]
    Postgres(String),
}

/// A site (warehouse) of the company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Short code devices are enrolled with, e.g. `WH1` (same rules as device ids).
    pub code: String,
    /// What people call it.
    #[serde(default)]
    pub name: String,
    /// False once deactivated.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// Which movements [`Store::movements`] returns; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MovementFilter {
    /// Only this site.
    pub site: Option<String>,
    /// Only this device.
    pub device_id: Option<String>,
    /// Only this GTIN-14.
    pub gtin: Option<String>,
    /// Only movements leaving or entering this location.
    pub location: Option<String>,
    /// Only this kind.
    pub kind: Option<MovementKind>,
    /// Only movements with device time `at >= since`.
    pub since: Option<OffsetDateTime>,
    /// Only movements with device time `at < until`.
    pub until: Option<OffsetDateTime>,
}

/// A movement as stored: with the server's commit order and when it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredMovement {
    /// Position in the server's commit order (1, 2, ... over all devices); the history's paging cursor.
    pub server_seq: u64,
    /// The site of the device that recorded it.
    pub site: String,
    /// When the server applied it.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// The movement.
    pub movement: Movement,
}

/// One page of movement history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MovementPage {
    /// Matching movements in server commit order.
    pub movements: Vec<StoredMovement>,
    /// Pass as `after` to get the next page; `None` when this was the last.
    pub next: Option<u64>,
}

/// What kind of discrepancy the office must look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyKind {
    /// Stock at a location went below zero.
    NegativeStock,
    /// A cycle count differs from the book quantity at the count's own time.
    CountMismatch,
    /// More received against an ASN line than announced.
    AsnOver,
    /// Less received than announced (evaluated when the ASN closes).
    AsnShort,
    /// An item received against an ASN that does not list it.
    AsnUnexpectedLine,
    /// A pallet (SSCC) received against an ASN that does not announce it.
    AsnUnexpectedPallet,
    /// A movement names an ASN or pick list the server does not know.
    UnknownReference,
    /// A pick against a cancelled pick list.
    PickOnCancelledList,
    /// A movement for an item the server does not know (stored anyway).
    UnknownItem,
    /// A movement for a location the site does not have (stored anyway).
    UnknownLocation,
}

/// Open until the office resolves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyStatus {
    /// Waiting for the office.
    Open,
    /// Resolved (see its resolution).
    Resolved,
}

/// A movement's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MovementRef {
    /// The device.
    pub device_id: String,
    /// Its seq.
    pub seq: u64,
}

/// A note by the office on a discrepancy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who.
    pub author: String,
    /// What.
    pub text: String,
}

/// How the office closed a discrepancy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Resolution {
    /// The book was corrected with an `adjust` movement (recorded by the pseudo-device [`OFFICE_DEVICE`]).
    Adjust {
        /// The adjusted location.
        location: String,
        /// The item.
        gtin: String,
        /// The lot.
        #[serde(default)]
        lot: Option<String>,
        /// Units added (positive) or removed (negative); never 0.
        delta: i64,
        /// Why, for the audit trail.
        reason: String,
        /// The adjust movement that was recorded (filled in by the store).
        #[serde(default)]
        movement: Option<MovementRef>,
    },
    /// The difference is accepted as is; no stock change.
    Accepted {
        /// Why.
        reason: String,
    },
}

/// The device id under which the server records the office's own movements (adjustments). Never enrollable.
pub const OFFICE_DEVICE: &str = "office";

/// A discrepancy record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discrepancy {
    /// Server-assigned id, increasing.
    pub id: u64,
    /// The site.
    pub site: String,
    /// The kind.
    pub kind: DiscrepancyKind,
    /// Open or resolved.
    pub status: DiscrepancyStatus,
    /// When it was raised.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The movements that caused it.
    pub movements: Vec<MovementRef>,
    /// The ASN or pick list concerned.
    #[serde(default)]
    pub reference: Option<String>,
    /// The location concerned.
    #[serde(default)]
    pub location: Option<String>,
    /// The item concerned.
    #[serde(default)]
    pub gtin: Option<String>,
    /// The lot concerned.
    #[serde(default)]
    pub lot: Option<String>,
    /// What the book / document expected.
    #[serde(default)]
    pub expected: Option<i64>,
    /// What was found.
    #[serde(default)]
    pub actual: Option<i64>,
    /// For a person: what is wrong.
    pub message: String,
    /// The office's notes.
    #[serde(default)]
    pub comments: Vec<Comment>,
    /// Set when resolved.
    #[serde(default)]
    pub resolution: Option<Resolution>,
}

/// Which discrepancies [`Store::discrepancies`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscrepancyFilter {
    /// Only this site.
    pub site: Option<String>,
    /// Only this status.
    pub status: Option<DiscrepancyStatus>,
    /// Only this kind.
    pub kind: Option<DiscrepancyKind>,
}

/// Authoritative server storage. See the module docs for the contract.
///
/// Master-data writes (items, locations, ASNs, pick lists; sites are office-only) each append to the change feed that
/// [`Store::pull`] serves. The feed keeps only the latest change per entity (item GTIN, site+location code,
/// document id): writing an entity again removes its older entry and appends a new one with a new cursor. So a new
/// device pulling from cursor 0 gets one entry per entity, a compact snapshot, instead of years of history, and a
/// device that is behind gets exactly what changed since its cursor.
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

    /// Stock as it was at device time `at`: the sum of effects of stored movements with `movement.at <= at`.
    fn stock_as_of(
        &self,
        filter: &StockFilter,
        at: OffsetDateTime,
    ) -> Result<Vec<StockRow>, StoreError>;

    /// Movement history matching `filter`, in server commit order, starting after server seq `after`.
    fn movements(
        &self,
        filter: &MovementFilter,
        after: u64,
        limit: usize,
    ) -> Result<MovementPage, StoreError>;

    /// Creates or replaces a site.
    fn put_site(&self, site: &Site) -> Result<(), StoreError>;
    /// All sites, by code.
    fn sites(&self) -> Result<Vec<Site>, StoreError>;

    /// Creates or replaces items (one transaction for the whole slice: a CSV import applies entirely or not at all).
    fn put_items(&self, items: &[Item]) -> Result<(), StoreError>;
    /// One item.
    fn item(&self, gtin: &str) -> Result<Option<Item>, StoreError>;
    /// Items by GTIN, after `after` (exclusive), at most `limit`.
    fn items(&self, after: Option<&str>, limit: usize) -> Result<Vec<Item>, StoreError>;

    /// Creates or replaces locations of `site` (one transaction).
    fn put_locations(&self, site: &str, locations: &[Location]) -> Result<(), StoreError>;
    /// The locations of `site`, by code.
    fn locations(&self, site: &str) -> Result<Vec<Location>, StoreError>;

    /// Creates or replaces an ASN. Replacing is refused ([`StoreError::Refused`]) once it is not open.
    fn put_asn(&self, asn: &Asn) -> Result<(), StoreError>;
    /// One ASN.
    fn asn(&self, id: &str) -> Result<Option<Asn>, StoreError>;
    /// The ASNs of a site, optionally only those with `status`.
    fn asns(&self, site: &str, status: Option<DocStatus>) -> Result<Vec<Asn>, StoreError>;
    /// Closes or cancels an open ASN. Closing raises [`DiscrepancyKind::AsnShort`] for every line received short.
    /// `None` when there is no such ASN.
    fn set_asn_status(&self, id: &str, status: DocStatus) -> Result<Option<Asn>, StoreError>;

    /// Creates or replaces a pick list (also how it is assigned). Refused once it is not open.
    fn put_pick_list(&self, list: &PickList) -> Result<(), StoreError>;
    /// One pick list.
    fn pick_list(&self, id: &str) -> Result<Option<PickList>, StoreError>;
    /// The pick lists of a site, optionally only those with `status`.
    fn pick_lists(
        &self,
        site: &str,
        status: Option<DocStatus>,
    ) -> Result<Vec<PickList>, StoreError>;
    /// Closes or cancels an open pick list; `None` when there is no such list.
    fn set_pick_list_status(
        &self,
        id: &str,
        status: DocStatus,
    ) -> Result<Option<PickList>, StoreError>;

    /// The change feed for devices of `site` (items are global, everything else per site), after `cursor`, at most
    /// `limit` changes. `cursor` in the answer is the last change returned (or `cursor` unchanged when none).
    fn pull(&self, site: &str, cursor: u64, limit: usize) -> Result<PullResponse, StoreError>;

    /// Discrepancies matching `filter`, by id.
    fn discrepancies(&self, filter: &DiscrepancyFilter) -> Result<Vec<Discrepancy>, StoreError>;
    /// One discrepancy.
    fn discrepancy(&self, id: u64) -> Result<Option<Discrepancy>, StoreError>;
    /// Adds a comment; `None` when there is no such discrepancy.
    fn comment_discrepancy(
        &self,
        id: u64,
        comment: &Comment,
    ) -> Result<Option<Discrepancy>, StoreError>;
    /// Resolves an open discrepancy. An [`Resolution::Adjust`] records an `adjust` movement of [`OFFICE_DEVICE`] at
    /// `at` in the same transaction (so stock stays the sum of movements). Resolving twice is refused.
    fn resolve_discrepancy(
        &self,
        id: u64,
        resolution: &Resolution,
        at: OffsetDateTime,
    ) -> Result<Option<Discrepancy>, StoreError>;

    /// Bytes the store occupies on disk, for `/metrics`: sled's files, or PostgreSQL's `pg_database_size` of the
    /// database (the same figure on every node sharing it).
    fn size_on_disk(&self) -> Result<u64, StoreError>;

    /// Open discrepancies counted per site and kind, for `/metrics`. Scraped every few seconds, so backends count
    /// without building the records (PostgreSQL: one `GROUP BY`; sled: one pass decoding three fields).
    fn open_discrepancy_counts(&self) -> Result<Vec<DiscrepancyCount>, StoreError>;

    /// Units received against ASN `id` per GTIN and lot: the counters reconciliation judges over and short receipts
    /// by (receipts naming a known ASN), sorted by GTIN, then lot with "no lot" first. Empty when nothing was
    /// received against it (or there is no such ASN).
    fn asn_received(&self, id: &str) -> Result<Vec<ReceivedLot>, StoreError>;

    /// Movements whose `reference` is `reference` (an ASN, a pick list, a count session), in server commit order,
    /// after server seq `after`, at most `limit`. Served by an index on the reference, so the cost is the
    /// document's own movements, never a walk through the whole history.
    fn movements_by_reference(
        &self,
        reference: &str,
        after: u64,
        limit: usize,
    ) -> Result<MovementPage, StoreError>;

    /// Movements per site and UTC hour of device time, over the movements with `since <= at < until`. Bounded:
    /// the store walks back from its newest movement and stops at the first one received before
    /// `since - `[`RECEIVED_SLACK`] (a movement is received after it happens, unless its device's clock is
    /// ahead), or after `max_scan` movements; [`HourlyCounts::complete`] says which. The cost is the movements
    /// received since `since`, not the history.
    fn movements_per_hour(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        max_scan: usize,
    ) -> Result<HourlyCounts, StoreError>;

    /// Discrepancies with an id above `after`, by id, at most `limit`: what was raised since the dashboard last
    /// looked (ids only grow). A range read, not a scan of every discrepancy.
    fn discrepancies_after(&self, after: u64, limit: usize)
        -> Result<Vec<Discrepancy>, StoreError>;

    /// An ASN with its lines expected against received and its pallets (see [`progress`]); `None` when there is
    /// no such ASN. Reads the ASN, its counters and its own movements.
    fn asn_progress(&self, id: &str) -> Result<Option<AsnProgress>, StoreError> {
        let Some(asn) = self.asn(id)? else {
            return Ok(None);
        };
        let received = self.asn_received(id)?;
        let movements = all_by_reference(self, id)?;
        Ok(Some(AsnProgress::new(asn, &received, &movements)))
    }

    /// A pick list with its lines requested against picked and short (see [`progress`]); `None` when there is no
    /// such list. Reads the list and its own movements.
    fn pick_list_progress(&self, id: &str) -> Result<Option<PickProgress>, StoreError> {
        let Some(list) = self.pick_list(id)? else {
            return Ok(None);
        };
        let movements = all_by_reference(self, id)?;
        Ok(Some(PickProgress::new(list, &movements)))
    }

    /// One page of non-zero stock rows matching `query.filter`, in `query.sort` order (see [`StockPageQuery`]),
    /// never more than `query.limit` rows in memory. Each backend documents what a page costs per sort.
    fn stock_page(&self, query: &StockPageQuery) -> Result<StockPage, StoreError>;

    /// [`Store::push`], also answering the device's high-water mark as the batch found it, which the push
    /// handler's metrics need to count resent movements. The default reads the mark before pushing (a second
    /// read, and a concurrent push of the same device could move the mark in between); the backends answer it
    /// from inside the push's own transaction, exact and for free.
    fn push_reporting_mark(
        &self,
        site: &str,
        device_id: &str,
        movements: &[Movement],
    ) -> Result<Pushed, StoreError> {
        let high_water_before = self.high_water(device_id)?;
        Ok(Pushed {
            outcome: self.push(site, device_id, movements)?,
            high_water_before,
        })
    }

    /// The webhook storage of this backend ([`crate::webhooks`]); `None` where webhooks are not available.
    fn webhooks(&self) -> Option<&dyn crate::webhooks::WebhookStore> {
        None
    }
    /// Creates new open ASNs, all in one transaction (an import stores all of its ASNs or none). An id already
    /// stored with exactly this content (an import sent again) is left alone and not counted; an id stored with
    /// other content, or an ASN that is not open, refuses the whole batch ([`StoreError::Refused`]). Decided
    /// inside the transaction, so two imports racing for one id cannot both create it. Answers how many were
    /// created.
    fn create_asns(&self, asns: &[Asn]) -> Result<usize, StoreError>;

    /// Stores a device's refused-scan counters (`POST /v1/sync/scan-stats`): per `(site, hour, device, operator,
    /// reason)` the largest count ever sent is kept, so resent and late reports change nothing they should not
    /// (the counts are running totals, see [`ScanStat`]). Durable before it returns. Callers validate the rows.
    fn put_scan_stats(
        &self,
        site: &str,
        device_id: &str,
        stats: &[ScanStat],
    ) -> Result<(), StoreError>;

    /// The refused-scan counters of `site` for the hours `since <= hour < until`, sorted by hour, device,
    /// operator (none first), reason.
    fn scan_stats(
        &self,
        site: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<SiteScanStat>, StoreError>;

    /// Creates or replaces the reorder rule of `(rule.site, rule.gtin)` (issue 9; see
    /// [`crate::reports::replenishment`]). Callers validate the rule first.
    fn put_reorder_rule(&self, rule: &ReorderRule) -> Result<(), StoreError>;

    /// The reorder rules of `site` (every site when `None`), by site then GTIN.
    fn reorder_rules(&self, site: Option<&str>) -> Result<Vec<ReorderRule>, StoreError>;
}

/// One refused-scan counter as [`Store::scan_stats`] answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteScanStat {
    /// The device that counted.
    pub device_id: String,
    /// Its counter.
    #[serde(flatten)]
    pub stat: ScanStat,
}

/// What [`Store::push_reporting_mark`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// What became of the batch.
    pub outcome: PushOutcome,
    /// The device's high-water mark the batch met: on `Acked`, its movements with a seq up to this were
    /// replays.
    pub high_water_before: u64,
}

/// How many discrepancies of one kind are open at one site ([`Store::open_discrepancy_counts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscrepancyCount {
    /// The site.
    pub site: String,
    /// The kind.
    pub kind: DiscrepancyKind,
    /// Open discrepancies of that kind there (never 0: absent pairs have none).
    pub open: u64,
}

/// Re-checks the batch rules every backend's transaction relies on (the handler has already named the field for the
/// client): one device, seqs from 1, contiguous and within SQL's bigint, quantities within bigint, no NUL in key
/// texts (PostgreSQL text cannot hold NUL; sled keys are NUL-separated). Shared so both backends refuse the same
/// batches.
pub(crate) fn check_batch(
    site: &str,
    device_id: &str,
    movements: &[Movement],
) -> Result<(), StoreError> {
    let bad = |msg: String| Err(StoreError::InvalidBatch(msg));
    if device_id.is_empty() || device_id.contains('\0') || site.is_empty() || site.contains('\0') {
        return bad("device id and site must be non-empty and free of NUL".into());
    }
    for (i, m) in movements.iter().enumerate() {
        if m.device_id != device_id {
            return bad(format!("movements[{i}] belongs to {:?}", m.device_id));
        }
        if m.seq == 0 || i64::try_from(m.seq).is_err() {
            return bad(format!("movements[{i}].seq is out of range"));
        }
        if i > 0 && m.seq != movements[i - 1].seq.wrapping_add(1) {
            return bad(format!("movements[{i}].seq is not contiguous"));
        }
        if i64::try_from(m.qty).is_err() {
            return bad(format!("movements[{i}].qty is out of range"));
        }
        let texts = [
            Some(m.gtin.as_str()),
            m.lot.as_deref(),
            m.from_location.as_deref(),
            m.to_location.as_deref(),
            m.reference.as_deref(),
        ];
        if texts.into_iter().flatten().any(|t| t.contains('\0')) {
            return bad(format!("movements[{i}] has a NUL byte in a key field"));
        }
    }
    Ok(())
}

/// [`check_batch`] for a device's push: also refuses [`OFFICE_DEVICE`], whose movements only the server records.
pub(crate) fn check_push(
    site: &str,
    device_id: &str,
    movements: &[Movement],
) -> Result<(), StoreError> {
    if device_id == OFFICE_DEVICE {
        return Err(StoreError::InvalidBatch(format!(
            "{OFFICE_DEVICE} is the server's own pseudo-device; it cannot push"
        )));
    }
    check_batch(site, device_id, movements)
}

/// Units received against an ASN of one item and lot ([`Store::asn_received`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceivedLot {
    /// The item.
    pub gtin: String,
    /// The lot; `None` for goods without one.
    pub lot: Option<String>,
    /// Units received.
    pub qty: u64,
}

/// How long before `since` [`Store::movements_per_hour`] keeps walking back. Arrival times are not strictly in
/// commit order (a push reads the clock before it takes its locks; PostgreSQL stamps a transaction's start), so
/// the first movement received before `since` does not prove that none after it in commit order was stamped in
/// the window; one this much older does.
pub const RECEIVED_SLACK: time::Duration = time::Duration::minutes(5);

/// Movements of one site in one hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HourlyMovements {
    /// The site.
    pub site: String,
    /// The hour's start (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub hour: OffsetDateTime,
    /// Movements with device time in that hour.
    pub count: u64,
}

/// The answer of [`Store::movements_per_hour`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct HourlyCounts {
    /// Non-zero hours, by site, then hour.
    pub hours: Vec<HourlyMovements>,
    /// Movements looked at.
    pub scanned: u64,
    /// False when `max_scan` stopped the walk before it left the window: the counts are of the newest movements
    /// only.
    pub complete: bool,
}

/// The start of the UTC hour holding `at`.
pub fn hour_of(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_time(time::Time::MIDNIGHT) + time::Duration::hours(i64::from(at.hour()))
}

/// Per-(site, hour) counts as the backends gather them for [`Store::movements_per_hour`], so both bucket alike.
#[derive(Debug)]
pub(crate) struct HourCounter {
    since: OffsetDateTime,
    until: OffsetDateTime,
    counts: std::collections::BTreeMap<(String, OffsetDateTime), u64>,
    scanned: u64,
}

impl HourCounter {
    pub(crate) fn new(since: OffsetDateTime, until: OffsetDateTime) -> Self {
        HourCounter {
            since,
            until,
            counts: std::collections::BTreeMap::new(),
            scanned: 0,
        }
    }

    /// Where the walk back may stop: movements received before this cannot be stamped in the window.
    pub(crate) fn stop_before(&self) -> OffsetDateTime {
        self.since - RECEIVED_SLACK
    }

    /// Counts one movement of `site` with device time `at` if it is in the window.
    pub(crate) fn add(&mut self, site: &str, at: OffsetDateTime) {
        self.scanned += 1;
        if at < self.since || at >= self.until {
            return;
        }
        let hour = hour_of(at);
        match self.counts.get_mut(&(site.to_string(), hour)) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert((site.to_string(), hour), 1);
            }
        }
    }

    /// Movements counted so far, in or out of the window.
    pub(crate) fn scanned(&self) -> u64 {
        self.scanned
    }

    pub(crate) fn finish(self, complete: bool) -> HourlyCounts {
        HourlyCounts {
            hours: self
                .counts
                .into_iter()
                .map(|((site, hour), count)| HourlyMovements { site, hour, count })
                .collect(),
            scanned: self.scanned,
            complete,
        }
    }
}

/// Every movement naming `reference`, page by page.
fn all_by_reference<S: Store + ?Sized>(
    store: &S,
    reference: &str,
) -> Result<Vec<StoredMovement>, StoreError> {
    const PAGE: usize = 1000;
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.movements_by_reference(reference, after, PAGE)?;
        out.extend(page.movements);
        match page.next {
            Some(next) => after = next,
            None => return Ok(out),
        }
    }
}
