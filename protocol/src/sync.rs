//! Sync wire types, version 1 (DESIGN §5).
//!
//! These are the JSON bodies exchanged between `dockhand-agent` and `dockhand-server`. Field names are a contract:
//! agents in the field speak this format for years, so fields may be added (as `Option` or with a default) but
//! never renamed or removed.
//!
//! A movement's identity is `(device_id, seq)`. `seq` starts at 1 and is contiguous per device. The server compares
//! a replayed movement with the stored one by value ([`Movement`] is `PartialEq`), so every field that matters for
//! stock is part of the comparison.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The version of this wire format, sent by agents in the `X-Dockhand-Protocol` header.
pub const PROTOCOL_VERSION: u32 = 1;

/// What a movement does to stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// Goods arrive (into `to_location`).
    Receive,
    /// Goods go from the dock to their storage location.
    Putaway,
    /// Goods move between two locations.
    Move,
    /// Goods are picked (out of `from_location`).
    Pick,
    /// Goods leave the site (out of `from_location`).
    Ship,
    /// A correction (into `to_location` or out of `from_location`).
    Adjust,
    /// A counted quantity; an observation only, it changes no stock by itself.
    Count,
}

impl MovementKind {
    /// The lowercase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Receive => "receive",
            MovementKind::Putaway => "putaway",
            MovementKind::Move => "move",
            MovementKind::Pick => "pick",
            MovementKind::Ship => "ship",
            MovementKind::Adjust => "adjust",
            MovementKind::Count => "count",
        }
    }
}

/// Where a movement came from: the raw scan or tag read that caused it, kept for audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MovementSource {
    /// A barcode scan.
    Barcode {
        /// The scan's data as received (after framing, without the AIM identifier).
        raw: String,
        /// The AIM symbology identifier such as `]C1`, if the scanner sent one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        symbology: Option<String>,
    },
    /// An RFID tag read.
    Epc {
        /// The EPC in hexadecimal.
        epc: String,
        /// The antenna that saw it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        antenna: Option<u16>,
        /// Peak RSSI in dBm.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rssi: Option<i16>,
    },
    /// Entered by hand or created by the system.
    Manual,
}

/// One stock movement recorded by a device (DESIGN §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Movement {
    /// The device that recorded it.
    pub device_id: String,
    /// Contiguous per device, starting at 1.
    pub seq: u64,
    /// Device time when the scan was accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What the movement does.
    pub kind: MovementKind,
    /// The item as a GTIN-14.
    pub gtin: String,
    /// Batch or lot number (GS1 AI 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Expiry date as `YYYY-MM-DD` (GS1 AI 17).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
    /// Serial numbers (GS1 AI 21), one per unit when serialised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serials: Vec<String>,
    /// Units moved; always positive, the direction is given by the locations.
    pub qty: u64,
    /// The location the goods leave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_location: Option<String>,
    /// The location the goods arrive at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_location: Option<String>,
    /// The logistic unit (SSCC-18) the goods travelled on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sscc: Option<String>,
    /// The ASN, pick list or count this movement belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The operator who scanned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// The scan or read that caused it.
    pub source: MovementSource,
}

/// One change to stock at a location, derived from a movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockEffect<'a> {
    /// The location whose stock changes.
    pub location: &'a str,
    /// Signed change in units.
    pub delta: i64,
}

/// Why a movement is not acceptable, whatever the state of the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct MovementError {
    /// The offending field, as named on the wire.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl Movement {
    /// The movement's effect on stock: `-qty` at `from_location`, `+qty` at `to_location`.
    ///
    /// The rule is the same for every kind, so conservation (DESIGN §3.6) holds by construction; a `count` is
    /// an observation and has no effect.
    pub fn effects(&self) -> Vec<StockEffect<'_>> {
        if self.kind == MovementKind::Count {
            return Vec::new();
        }
        let qty = i64::try_from(self.qty).unwrap_or(i64::MAX);
        let mut out = Vec::with_capacity(2);
        if let Some(from) = &self.from_location {
            out.push(StockEffect {
                location: from,
                delta: -qty,
            });
        }
        if let Some(to) = &self.to_location {
            out.push(StockEffect {
                location: to,
                delta: qty,
            });
        }
        out
    }

    /// Checks what can be checked without a store: a GTIN-14 of digits, a positive quantity that fits stock
    /// arithmetic, and the locations each kind needs.
    pub fn validate(&self) -> Result<(), MovementError> {
        let err = |field, message: &str| {
            Err(MovementError {
                field,
                message: message.to_string(),
            })
        };
        if self.device_id.is_empty() {
            return err("device_id", "must not be empty");
        }
        if self.seq == 0 {
            return err("seq", "starts at 1");
        }
        if self.gtin.len() != 14 || !self.gtin.bytes().all(|b| b.is_ascii_digit()) {
            return err("gtin", "must be 14 digits");
        }
        // A count of zero is an observation ("none here"); every other movement moves at least one unit.
        if (self.qty == 0 && self.kind != MovementKind::Count) || self.qty > MAX_QTY {
            return err("qty", "must be between 1 and 1000000000");
        }
        let (from, to) = (self.from_location.is_some(), self.to_location.is_some());
        let ok = match self.kind {
            MovementKind::Receive => to && !from,
            MovementKind::Pick | MovementKind::Ship => from && !to,
            MovementKind::Putaway | MovementKind::Move => from && to,
            MovementKind::Adjust => from != to,
            // A count observes one location: the counted quantity at `to_location`.
            MovementKind::Count => to && !from,
        };
        if !ok {
            return err(
                if from { "to_location" } else { "from_location" },
                "locations do not fit the movement kind",
            );
        }
        for loc in [&self.from_location, &self.to_location]
            .into_iter()
            .flatten()
        {
            if loc.is_empty() || loc.len() > 64 {
                return err("location", "must be 1 to 64 characters");
            }
        }
        Ok(())
    }
}

/// Largest quantity a single movement may carry; keeps stock sums far from overflow.
pub const MAX_QTY: u64 = 1_000_000_000;

/// `POST /v1/sync/push` request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// The pushing device; must match the credential.
    pub device_id: String,
    /// Movements with contiguous seqs, oldest first.
    pub movements: Vec<Movement>,
    /// How many movements the device still holds unacknowledged (this batch included), for the office's device
    /// list. Optional: older agents do not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<u64>,
}

/// `POST /v1/sync/push` success body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// Every movement of this device with `seq <= acked_through` is durably applied at the server.
    pub acked_through: u64,
}

/// Why the operator's scan was refused, by class: what pick accuracy is reported by (`POST /v1/sync/scan-stats`).
///
/// Only refusals the operator caused are counted; a scan the device could not store (storage full, journal
/// failure) is a device fault, reported in the agent's metrics instead. On the wire a class is its
/// [`RejectClass::as_str`] name; servers accept any well-formed name so that newer agents can add classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectClass {
    /// The barcode or tag could not be framed or decoded.
    Undecodable,
    /// A location other than the one the task needs.
    WrongLocation,
    /// An item other than the one the task needs.
    WrongItem,
    /// The right item with another lot than the task needs.
    WrongLot,
    /// More units than the pick line still needs.
    OverPick,
    /// Any other refusal (no task, unknown item, expired goods, a closed document...).
    Refused,
}

impl RejectClass {
    /// Every class, in wire-name order of appearance in reports.
    pub const ALL: [RejectClass; 6] = [
        RejectClass::Undecodable,
        RejectClass::WrongLocation,
        RejectClass::WrongItem,
        RejectClass::WrongLot,
        RejectClass::OverPick,
        RejectClass::Refused,
    ];

    /// The name used on the wire and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectClass::Undecodable => "undecodable",
            RejectClass::WrongLocation => "wrong_location",
            RejectClass::WrongItem => "wrong_item",
            RejectClass::WrongLot => "wrong_lot",
            RejectClass::OverPick => "over_pick",
            RejectClass::Refused => "refused",
        }
    }
}

/// At most this many rows in one [`ScanStatsRequest`]; a device with more sends them in several requests.
pub const MAX_SCAN_STATS_ROWS: usize = 1000;

/// How many scans one operator had refused for one reason in one UTC hour of device time, on one device.
///
/// `count` is the device's running total for that key, not an increment: the server keeps the largest value it
/// was sent, so a report that is resent (a retry, a lost answer) or arrives late changes nothing it should not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanStat {
    /// Start of the UTC hour (minutes, seconds and nanoseconds zero).
    #[serde(with = "time::serde::rfc3339")]
    pub hour: OffsetDateTime,
    /// The operator signed in at the time, `null` when nobody was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// A [`RejectClass`] name: 1 to 32 of `a-z`, `0-9`, `_`.
    pub reason: String,
    /// Refused scans so far for this hour, operator and reason.
    pub count: u64,
}

/// `POST /v1/sync/scan-stats` body: a device's refused-scan counters that changed since it last reported them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanStatsRequest {
    /// The reporting device; must match the credential.
    pub device_id: String,
    /// At most [`MAX_SCAN_STATS_ROWS`] rows.
    pub stats: Vec<ScanStat>,
}

/// `POST /v1/sync/scan-stats` success body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanStatsResponse {
    /// How many rows the request held (all of them are stored).
    pub stored: usize,
}

impl ScanStat {
    /// Checks what the server relies on; the error names the offending field.
    pub fn validate(&self) -> Result<(), MovementError> {
        let bad = |field, message: &str| {
            Err(MovementError {
                field,
                message: message.to_string(),
            })
        };
        let h = self.hour;
        if h.offset() != time::UtcOffset::UTC
            || h.minute() != 0
            || h.second() != 0
            || h.nanosecond() != 0
        {
            return bad(
                "hour",
                "must be the start of a UTC hour, e.g. 2026-11-27T06:00:00Z",
            );
        }
        let r = self.reason.as_bytes();
        if r.is_empty()
            || r.len() > 32
            || !r
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        {
            return bad("reason", "must be 1 to 32 of a-z, 0-9 and _");
        }
        if let Some(op) = &self.operator {
            if op.is_empty() || op.len() > 64 || op.chars().any(char::is_control) {
                return bad(
                    "operator",
                    "must be 1 to 64 characters without control characters",
                );
            }
        }
        if self.count > 1_000_000_000 {
            return bad("count", "must be at most 1000000000");
        }
        Ok(())
    }
}

/// An item of master data (pull feed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// GTIN-14.
    pub gtin: String,
    /// What a person calls it.
    pub description: String,
    /// Unit of measure, e.g. `EA`.
    #[serde(default = "default_unit")]
    pub unit: String,
    /// Whether a lot must be scanned.
    #[serde(default)]
    pub lot_tracked: bool,
    /// Whether an expiry date must be scanned.
    #[serde(default)]
    pub expiry_tracked: bool,
    /// Whether each unit carries a serial.
    #[serde(default)]
    pub serial_tracked: bool,
    /// False once the office deactivated it: devices stop accepting new receipts of it.
    #[serde(default = "yes")]
    pub active: bool,
    /// What one unit is worth, in minor units of the site's currency (cents): an integer, so inventory values
    /// are exact sums. Optional and omitted when absent, so agents and stored items from before it still decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_cost: Option<u64>,
}

fn yes() -> bool {
    true
}

fn default_unit() -> String {
    "EA".to_string()
}

/// A storage location of a site (pull feed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// Site-local code such as `A-01-02`.
    pub code: String,
    /// GLN (AI 414) if the location is also labelled with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gln: Option<String>,
    /// Picking zone, for assigning pick lists to a zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// False once the office deactivated it.
    #[serde(default = "yes")]
    pub active: bool,
}

/// Where a document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DocStatus {
    /// Expected / to be worked.
    #[default]
    Open,
    /// Finished; an ASN's short lines are evaluated when it closes.
    Closed,
    /// Withdrawn by the office; devices must stop working it.
    Cancelled,
}

/// One expected line of goods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsnLine {
    /// GTIN-14.
    pub gtin: String,
    /// Expected lot, if the supplier announced one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Expected units.
    pub qty: u64,
}

/// A pallet (logistic unit) announced on an ASN, with its contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsnPallet {
    /// SSCC-18.
    pub sscc: String,
    /// What is on it.
    pub lines: Vec<AsnLine>,
}

/// An expected receipt (advance shipping notice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asn {
    /// The ASN's id, unique per server; movements name it in `reference`.
    pub id: String,
    /// The receiving site.
    pub site: String,
    /// Supplier name or GLN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<String>,
    /// Expected arrival date `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_on: Option<String>,
    /// Loose lines (not on an announced pallet).
    #[serde(default)]
    pub lines: Vec<AsnLine>,
    /// Announced pallets.
    #[serde(default)]
    pub pallets: Vec<AsnPallet>,
    /// Status.
    #[serde(default)]
    pub status: DocStatus,
}

/// One line of a pick list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PickLine {
    /// Line number, unique within the list.
    pub line: u32,
    /// Where to pick.
    pub location: String,
    /// GTIN-14.
    pub gtin: String,
    /// Required lot, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Units to pick.
    pub qty: u64,
}

/// A pick list for one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PickList {
    /// The list's id, unique per server; pick movements name it in `reference`.
    pub id: String,
    /// The site.
    pub site: String,
    /// The device it is assigned to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The zone it is assigned to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The lines.
    pub lines: Vec<PickLine>,
    /// Status.
    #[serde(default)]
    pub status: DocStatus,
}

/// One entry of the pull feed, in server commit order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// An item was created or changed.
    Item(Item),
    /// A location was created or changed.
    Location(Location),
    /// An expected receipt was created or changed.
    Asn(Asn),
    /// A pick list was created, assigned or changed.
    PickList(PickList),
    /// A document (ASN or pick list) was cancelled: stop working it.
    Cancel {
        /// The document's id.
        reference: String,
    },
}

/// `GET /v1/sync/pull` success body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullResponse {
    /// Pass this back as `cursor` on the next pull.
    pub cursor: u64,
    /// More changes are waiting beyond this page.
    pub more: bool,
    /// The changes, oldest first.
    pub changes: Vec<Change>,
}

/// `GET /v1/sync/stock` success body: the server's stock for the device's site, with the device's own high-water
/// mark read with it, so the device can add exactly its movements the snapshot does not hold yet
/// (`seq > acked_through`). Fields may be added (e.g. paging); readers ignore unknown ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockSnapshot {
    /// The device's enrolled site.
    pub site: String,
    /// The device's high-water mark at the server when the snapshot was taken: every movement of this device with
    /// `seq <= acked_through`, and none after it, is in `stock`.
    pub acked_through: u64,
    /// Non-zero rows, sorted by location, GTIN, lot (no lot first).
    pub stock: Vec<SnapshotRow>,
}

/// One row of a [`StockSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRow {
    /// The site-local location code.
    pub location: String,
    /// The item as GTIN-14.
    pub gtin: String,
    /// The lot, `null` when the goods carry none.
    #[serde(default)]
    pub lot: Option<String>,
    /// Units on hand; negative is possible (a discrepancy at the office).
    pub qty: i64,
}

/// The JSON body of every error response: `{"error": {"code", "message", ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
    /// On a sequence gap (409): the seq the server expects next. Also inside `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_seq: Option<u64>,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `seq_gap`, `conflict`, `bad_request`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// The offending request field, for 400s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// On a sequence gap: the seq the server expects next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_seq: Option<u64>,
}

impl ErrorBody {
    /// An error body with a code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                field: None,
                expected_seq: None,
            },
            expected_seq: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn movement() -> Movement {
        Movement {
            device_id: "hh-01".into(),
            seq: 7,
            at: datetime!(2026-11-26 10:15:00 +01:00),
            kind: MovementKind::Putaway,
            gtin: "09506000134352".into(),
            lot: Some("ABC123".into()),
            expiry: Some("2027-03-31".into()),
            serials: vec![],
            qty: 3,
            from_location: Some("DOCK-1".into()),
            to_location: Some("A-01-02".into()),
            sscc: None,
            reference: None,
            operator: Some("op7".into()),
            source: MovementSource::Barcode {
                raw: "0109506000134352".into(),
                symbology: Some("]C1".into()),
            },
        }
    }

    #[test]
    fn movement_round_trips_and_keeps_offset() {
        let m = movement();
        let json = serde_json::to_string(&m).unwrap();
        assert!(
            json.contains(r#""at":"2026-11-26T10:15:00+01:00""#),
            "{json}"
        );
        assert!(json.contains(r#""kind":"putaway""#));
        assert!(
            !json.contains("serials"),
            "empty serials are omitted: {json}"
        );
        let back: Movement = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn push_request_and_response_round_trip() {
        let req = PushRequest {
            device_id: "hh-01".into(),
            movements: vec![movement()],
            backlog: None,
        };
        let back: PushRequest =
            serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        assert_eq!(back, req);
        let resp: PushResponse = serde_json::from_str(r#"{"acked_through":42}"#).unwrap();
        assert_eq!(resp.acked_through, 42);
    }

    #[test]
    fn stock_snapshot_shape_and_unknown_fields() {
        let json = r#"{"site":"WH1","acked_through":7,"stock":[
            {"location":"A-01","gtin":"09506000134352","lot":null,"qty":3},
            {"location":"A-02","gtin":"09506000134352","lot":"L1","qty":-1,"reserved":0}],"next":null}"#;
        let snap: StockSnapshot = serde_json::from_str(json).unwrap();
        assert_eq!(snap.acked_through, 7);
        assert_eq!(snap.stock[1].lot.as_deref(), Some("L1"));
        let out = serde_json::to_value(&snap).unwrap();
        assert_eq!(out["stock"][0]["lot"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<StockSnapshot>(out).unwrap(), snap);
    }

    #[test]
    fn pull_response_round_trips() {
        let pull = PullResponse {
            cursor: 9,
            more: false,
            changes: vec![
                Change::Item(Item {
                    gtin: "09506000134352".into(),
                    description: "Widget".into(),
                    unit: "EA".into(),
                    lot_tracked: true,
                    expiry_tracked: false,
                    serial_tracked: false,
                    active: true,
                    unit_cost: None,
                }),
                Change::Location(Location {
                    code: "A-01".into(),
                    gln: None,
                    zone: None,
                    active: true,
                }),
                Change::Cancel {
                    reference: "ASN-1".into(),
                },
            ],
        };
        let json = serde_json::to_string(&pull).unwrap();
        assert!(json.contains(r#""type":"item""#));
        assert_eq!(serde_json::from_str::<PullResponse>(&json).unwrap(), pull);
    }

    #[test]
    fn error_body_shape() {
        let mut body = ErrorBody::new("seq_gap", "expected seq 5");
        body.error.expected_seq = Some(5);
        body.expected_seq = Some(5);
        let v: serde_json::Value = serde_json::to_value(&body).unwrap();
        assert_eq!(v["error"]["code"], "seq_gap");
        assert_eq!(v["error"]["expected_seq"], 5);
        assert_eq!(v["expected_seq"], 5);
        assert_eq!(serde_json::from_value::<ErrorBody>(v).unwrap(), body);
    }

    #[test]
    fn unknown_movement_field_is_rejected_with_its_name() {
        let mut v = serde_json::to_value(movement()).unwrap();
        v["colour"] = "red".into();
        let err = serde_json::from_value::<Movement>(v)
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn effects_follow_locations() {
        let m = movement();
        let e = m.effects();
        assert_eq!(
            e,
            vec![
                StockEffect {
                    location: "DOCK-1",
                    delta: -3
                },
                StockEffect {
                    location: "A-01-02",
                    delta: 3
                }
            ]
        );
        let count = Movement {
            kind: MovementKind::Count,
            ..m
        };
        assert!(count.effects().is_empty());
    }

    #[test]
    fn validate_table() {
        type Edit = fn(&mut Movement);
        let cases: &[(&str, Edit, Option<&str>)] = &[
            ("valid putaway", |_| {}, None),
            ("seq zero", |m| m.seq = 0, Some("seq")),
            ("short gtin", |m| m.gtin = "123".into(), Some("gtin")),
            (
                "letters in gtin",
                |m| m.gtin = "0950600013435X".into(),
                Some("gtin"),
            ),
            ("zero qty", |m| m.qty = 0, Some("qty")),
            ("huge qty", |m| m.qty = MAX_QTY + 1, Some("qty")),
            (
                "putaway without from",
                |m| m.from_location = None,
                Some("from_location"),
            ),
            (
                "receive with from",
                |m| m.kind = MovementKind::Receive,
                Some("to_location"),
            ),
            ("empty device", |m| m.device_id.clear(), Some("device_id")),
            (
                "long location",
                |m| m.to_location = Some("x".repeat(65)),
                Some("location"),
            ),
        ];
        for (name, edit, want) in cases {
            let mut m = movement();
            edit(&mut m);
            let got = m.validate().err().map(|e| e.field);
            assert_eq!(got, *want, "{name}");
        }
    }

    #[test]
    fn scan_stat_validation_names_the_field() {
        let ok = ScanStat {
            hour: datetime!(2026-11-27 06:00:00 UTC),
            operator: Some("anna".into()),
            reason: RejectClass::OverPick.as_str().into(),
            count: 3,
        };
        type Edit = fn(&mut ScanStat);
        let cases: &[(&str, Edit, Option<&str>)] = &[
            ("valid", |_| {}, None),
            ("no operator", |s| s.operator = None, None),
            (
                "a future class",
                |s| s.reason = "scanned_twice2".into(),
                None,
            ),
            (
                "minutes",
                |s| s.hour = datetime!(2026-11-27 06:30:00 UTC),
                Some("hour"),
            ),
            (
                "nanos",
                |s| s.hour = datetime!(2026-11-27 06:00:00.5 UTC),
                Some("hour"),
            ),
            (
                "not UTC",
                |s| s.hour = datetime!(2026-11-27 06:00:00 +01:00),
                Some("hour"),
            ),
            ("empty reason", |s| s.reason.clear(), Some("reason")),
            (
                "upper case",
                |s| s.reason = "OverPick".into(),
                Some("reason"),
            ),
            ("long reason", |s| s.reason = "x".repeat(33), Some("reason")),
            (
                "empty operator",
                |s| s.operator = Some(String::new()),
                Some("operator"),
            ),
            (
                "control",
                |s| s.operator = Some("a\u{0}b".into()),
                Some("operator"),
            ),
            (
                "long operator",
                |s| s.operator = Some("o".repeat(65)),
                Some("operator"),
            ),
            ("huge count", |s| s.count = u64::MAX, Some("count")),
        ];
        for (name, edit, want) in cases {
            let mut s = ok.clone();
            edit(&mut s);
            assert_eq!(s.validate().err().map(|e| e.field), *want, "{name}");
        }
        let names: std::collections::BTreeSet<_> =
            RejectClass::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), RejectClass::ALL.len());
        for c in RejectClass::ALL {
            let s = ScanStat {
                reason: c.as_str().into(),
                ..ok.clone()
            };
            assert_eq!(s.validate(), Ok(()), "{c:?}");
        }
    }
}
