//! The dock gate (DESIGN §7): RFID tag passes in, receipts and shipments out.
//!
//! ```text
//! serial-rfid / llrp threads ──TagRead──► gate task ── Smoother ──Departure──► decide() ──► Workflow::record (seqs)
//!  (rfid_source: transport +            (one pass per EPC, direction +            │              │
//!   sans-IO reader session)              confidence; audit ring)                  │              ▼ one append per pass
//!                                                                                 │     writer (journal, fdatasync)
//!                        decision event (GET /events) ◄── only once durable ──────┴──────────────┘
//! ```
//!
//! One task owns the [`Smoother`]: every reader's reads go to it over one channel, stamped with the agent's
//! monotonic [`Clock`]. Each departure is judged by [`decide`], which is pure (the departure, the master data and
//! what the gate remembers in, a [`Verdict`] out) and has the table test at the bottom of this file. The movements of
//! one pass take contiguous seqs from the same [`Workflow`] counter as handheld scans and go to the journal in one
//! append; the decision event is published only when they are durable (invariant 1). Readers are never told
//! anything about a pass, so nothing precedes durability.
//!
//! # Rules
//!
//! A pass counts when its direction is `Inbound` or `Outbound` with a confidence of at least `min_confidence`
//! and it ended quietly (a pass cut short by `max_tags` is flagged, not trusted). The gate location is
//! `workflow.receiving_location`.
//!
//! ```text
//! tag                direction        gate memory          movements
//! SSCC on open ASN   inbound          not received         one receive per pallet line (gtin, lot, qty), sscc,
//!                                                          reference = ASN id, into the gate
//! SSCC, no ASN       inbound          not received         receive 1 × 00000000000000 with the sscc, no reference:
//!                                                          an unknown unit; the server flags the unknown item
//! SGTIN              inbound          not received         receive 1 × gtin, serials = [serial]
//! SSCC               outbound         not shipped          ship from the gate: the lines received here, else the
//!                                                          open ASN's pallet lines, else 1 × 00000000000000
//! SGTIN              outbound         not shipped          ship 1 × gtin with its serial
//! SSCC / SGTIN       inbound          received             nothing: duplicate (counted, rejected event)
//! SSCC / SGTIN       outbound         shipped              nothing: duplicate
//! SSCC / SGTIN       bounced, unknown, below min_confidence, evicted
//!                                                          nothing: unresolved (counted, kept in the status ring)
//! other scheme, non-GS1 or invalid EPC                     nothing: ignored (counted with the reason)
//! ```
//!
//! The gate never refuses goods that physically arrived: unknown items are received and left to the server's
//! reconciliation (DESIGN §3.5: a discrepancy, not a silent loss). An unannounced pallet has no GTIN, so it is
//! received as one unit of the all-zero GTIN [`NO_GTIN`] (valid syntax and check digit, never a real item): the
//! movement validates, the server records it with its SSCC and flags `unknown_item` for the office, and stock at the
//! gate shows it until the office corrects it. A reference would be wrong (no ASN announced it) and would add an
//! `unknown_reference` on top. Each movement's source is the EPC with the antenna of the strongest peak RSSI.
//!
//! # What the gate remembers
//!
//! A receipt or a shipment is remembered per unit (pallet SSCC, or GTIN + serial), so a later pass the same way is
//! a duplicate, while a received pallet that goes out is shipped and may then be received again:
//!
//! ```text
//! local view tree "gate_units":  key = "P" sscc | "S" gtin 0x00 serial
//!   value = JSON {"state": "received"|"shipped", "lines": [{gtin, lot?, qty}], "reference"?, "at", "last_seq"}
//! ```
//!
//! The view derives it from the gate's own movements (source `epc`, kind receive or ship) in the transaction that
//! applies them to stock ([`remember`]): the movements of one pass are consecutive seqs and form one record. So it
//! is as durable as the journal: start-up replays movements the view has not applied, and a rebuilt view gets
//! back what the journal still holds. Movements already acknowledged and deleted from the journal are not in a
//! rebuilt view (DESIGN §4): after a store quarantine, which is logged loudly, a pallet received before it could be
//! received a second time and the server would flag the over-receipt. Records older than [`MEMORY_DAYS`] are
//! pruned at start.
//!
//! Between a decision and its durability the view does not know the pass yet; the task keeps those units in a
//! small pending map, so two departures of one EPC a few milliseconds apart are still judged in order. An entry
//! whose append failed is dropped and the view decides again.
//!
//! # Shutdown
//!
//! When the sources have stopped, [`Smoother::finish`] closes the passes still open and they are judged like any
//! other: a pallet half through the door is recorded if its direction is already clear enough, and if it keeps
//! moving after the restart the next pass the same way is a duplicate. Not recording them would lose a pallet
//! whose pass straddles a restart (the new pass sees one side only and stays unresolved).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dockhand_protocol::epc::{self, Identity};
use dockhand_protocol::rfid::smooth::{Departure, Direction, PassEnd, PassEvent, Smoother};
use dockhand_protocol::rfid::{hex, Millis, TagRead};
use dockhand_protocol::sync::{Movement, MovementKind, MovementSource, RejectClass};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::journal::Record;
use crate::status::{DecisionEvent, Emitter};
use crate::view::LocalView;
use crate::workflow::{Decision, MasterData, Workflow};
use crate::writer::Writer;

/// The GTIN of an unknown unit: an unannounced pallet whose contents nobody told the device.
pub const NO_GTIN: &str = "00000000000000";

/// Gate memory older than this is pruned at start.
pub const MEMORY_DAYS: i64 = 180;

/// Unresolved passes and ignored tags kept in the status file, each.
const RECENT: usize = 20;

/// What the gate's rules need from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct GateRules {
    /// The gate's location: inbound goes in, outbound leaves from it.
    pub location: String,
    /// Passes less sure of their direction make no movement.
    pub min_confidence: f64,
}

/// A unit the gate remembers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnitKey {
    /// A pallet, by SSCC-18.
    Pallet(String),
    /// A serialised item.
    Serial {
        /// GTIN-14.
        gtin: String,
        /// Its serial.
        serial: String,
    },
}

impl UnitKey {
    /// The key in the view's `gate_units` tree (module doc).
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            UnitKey::Pallet(sscc) => [b"P", sscc.as_bytes()].concat(),
            UnitKey::Serial { gtin, serial } => {
                [b"S", gtin.as_bytes(), b"\0", serial.as_bytes()].concat()
            }
        }
    }

    /// "pallet 106141411234567897", "item 00012345678905 serial 42".
    fn describe(&self) -> String {
        match self {
            UnitKey::Pallet(sscc) => format!("pallet {sscc}"),
            UnitKey::Serial { gtin, serial } => format!("item {gtin} serial {serial}"),
        }
    }
}

/// Where a remembered unit went last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitState {
    /// Received through the gate.
    Received,
    /// Shipped through the gate.
    Shipped,
}

/// One line a unit moved with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitLine {
    /// GTIN-14.
    pub gtin: String,
    /// Lot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Units.
    pub qty: u64,
}

/// What the gate remembers of a unit: its last pass's movements (module doc for the JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRecord {
    /// Received or shipped.
    pub state: UnitState,
    /// What moved.
    pub lines: Vec<UnitLine>,
    /// The ASN it was received against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The seq of the pass's last movement.
    pub last_seq: u64,
}

/// What the gate remembers, by unit.
pub trait GateMemory {
    /// The unit's last receipt or shipment through this gate.
    fn unit(&self, key: &UnitKey) -> Option<UnitRecord>;
}

impl GateMemory for LocalView {
    fn unit(&self, key: &UnitKey) -> Option<UnitRecord> {
        // An unreadable record reads as "never seen": the worst case is a duplicate the server flags.
        self.gate_unit(&key.bytes()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "gate memory unreadable");
            None
        })
    }
}

/// The unit a movement of the gate moved; `None` for every other movement (scans, other kinds).
pub fn unit_key(m: &Movement) -> Option<UnitKey> {
    if !matches!(m.source, MovementSource::Epc { .. })
        || !matches!(m.kind, MovementKind::Receive | MovementKind::Ship)
    {
        return None;
    }
    match (&m.sscc, m.serials.as_slice()) {
        (Some(sscc), _) => Some(UnitKey::Pallet(sscc.clone())),
        (None, [serial]) => Some(UnitKey::Serial {
            gtin: m.gtin.clone(),
            serial: serial.clone(),
        }),
        _ => None,
    }
}

/// The record after `m` (one with a [`unit_key`]): a movement that continues the record's pass (the next seq,
/// same way) adds its line; any other starts a new record.
pub fn remember(prev: Option<UnitRecord>, m: &Movement) -> UnitRecord {
    let state = if m.kind == MovementKind::Receive {
        UnitState::Received
    } else {
        UnitState::Shipped
    };
    let line = UnitLine {
        gtin: m.gtin.clone(),
        lot: m.lot.clone(),
        qty: m.qty,
    };
    match prev {
        Some(mut r) if r.state == state && r.last_seq + 1 == m.seq => {
            r.lines.push(line);
            r.last_seq = m.seq;
            r
        }
        _ => UnitRecord {
            state,
            lines: vec![line],
            reference: m.reference.clone(),
            at: m.at,
            last_seq: m.seq,
        },
    }
}

/// Receipt or shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Inbound: receive movements.
    Receipt,
    /// Outbound: ship movements.
    Shipment,
}

impl Flow {
    fn way(self) -> &'static str {
        match self {
            Flow::Receipt => "inbound",
            Flow::Shipment => "outbound",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Flow::Receipt => "received",
            Flow::Shipment => "shipped",
        }
    }

    fn kind(self) -> MovementKind {
        match self {
            Flow::Receipt => MovementKind::Receive,
            Flow::Shipment => MovementKind::Ship,
        }
    }

    /// The state a unit is in after it.
    fn state(self) -> UnitState {
        match self {
            Flow::Receipt => UnitState::Received,
            Flow::Shipment => UnitState::Shipped,
        }
    }
}

/// What to do about one pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Record these movements; the workflow fills in the device, seqs and time ([`Workflow::record`]).
    Record {
        /// The movements, in order.
        movements: Vec<Movement>,
        /// Which way.
        flow: Flow,
        /// For a person.
        message: String,
        /// An unannounced pallet, received or shipped as an unknown unit.
        unknown: bool,
    },
    /// The unit already went this way through the gate.
    Duplicate {
        /// For a person.
        message: String,
    },
    /// A pallet or item whose direction is not clear: bounced, unknown, not confident enough, or cut short.
    Unresolved {
        /// For a person.
        message: String,
    },
    /// Not a pallet or item tag.
    Ignored {
        /// Why, for a person.
        reason: String,
    },
}

/// "1 line", "3 lines".
fn count(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The antenna with the strongest peak RSSI (the most reads when none reported RSSI), and that peak.
fn best_antenna(pass: &Departure) -> (Option<u16>, Option<i16>) {
    pass.per_antenna
        .iter()
        .max_by_key(|a| (a.peak_rssi.is_some(), a.peak_rssi, a.reads))
        .map_or((None, None), |a| (Some(a.antenna), a.peak_rssi))
}

/// Judges one pass (module doc: the rules). Pure: reads `md` and `memory`, changes nothing.
pub fn decide(
    pass: &Departure,
    rules: &GateRules,
    md: &dyn MasterData,
    memory: &dyn GateMemory,
) -> Verdict {
    let epc_hex = hex(&pass.epc);
    let unit = match unit_of(&pass.epc) {
        Ok(unit) => unit,
        Err(reason) => {
            return Verdict::Ignored {
                reason: format!("tag {epc_hex}: {reason}"),
            }
        }
    };
    let flow = match flow_of(pass, rules, &unit.describe()) {
        Ok(flow) => flow,
        Err(message) => return Verdict::Unresolved { message },
    };
    let head = format!(
        "{} {} ({:.2})",
        unit.describe(),
        flow.way(),
        pass.confidence
    );
    let last = memory.unit(&unit);
    if let Some(r) = last.as_ref().filter(|r| r.state == flow.state()) {
        return Verdict::Duplicate {
            message: format!(
                "{head}: already {} through this gate (seq {}); nothing recorded",
                flow.done(),
                r.last_seq
            ),
        };
    }
    let (antenna, rssi) = best_antenna(pass);
    let loc = &rules.location;
    let base = Movement {
        device_id: String::new(),
        seq: 0,
        at: OffsetDateTime::UNIX_EPOCH,
        kind: flow.kind(),
        gtin: NO_GTIN.to_string(),
        lot: None,
        expiry: None,
        serials: Vec::new(),
        qty: 1,
        from_location: (flow == Flow::Shipment).then(|| loc.clone()),
        to_location: (flow == Flow::Receipt).then(|| loc.clone()),
        sscc: None,
        reference: None,
        operator: None,
        source: MovementSource::Epc {
            epc: epc_hex,
            antenna,
            rssi,
        },
    };
    let sscc = match unit {
        UnitKey::Serial { gtin, serial } => {
            let message = match flow {
                Flow::Receipt => format!("{head}: received 1 unit into {loc}"),
                Flow::Shipment => format!("{head}: shipped 1 unit from {loc}"),
            };
            return Verdict::Record {
                movements: vec![Movement {
                    gtin,
                    serials: vec![serial],
                    ..base
                }],
                flow,
                message,
                unknown: false,
            };
        }
        UnitKey::Pallet(sscc) => sscc,
    };
    let line = |l: &UnitLine, reference: Option<&String>| Movement {
        gtin: l.gtin.clone(),
        lot: l.lot.clone(),
        qty: l.qty,
        sscc: Some(sscc.clone()),
        reference: reference.cloned(),
        ..base.clone()
    };
    let unknown_unit = UnitLine {
        gtin: NO_GTIN.to_string(),
        lot: None,
        qty: 1,
    };
    // The open ASN announcing the pallet, and its contents there.
    let announced = || {
        let asn = md.asn_for_pallet(&sscc)?;
        let pallet = asn.pallets.iter().find(|p| p.sscc == sscc)?;
        let lines: Vec<UnitLine> = pallet
            .lines
            .iter()
            .filter(|l| l.qty > 0)
            .map(|l| UnitLine {
                gtin: l.gtin.clone(),
                lot: l.lot.clone(),
                qty: l.qty,
            })
            .collect();
        Some((asn.id, lines))
    };
    let record = |movements: Vec<Movement>, message: String, unknown: bool| Verdict::Record {
        movements,
        flow,
        message,
        unknown,
    };
    match flow {
        Flow::Receipt => match announced() {
            Some((asn, lines)) if !lines.is_empty() => record(
                lines.iter().map(|l| line(l, Some(&asn))).collect(),
                format!(
                    "{head}: received {} into {loc} from {asn}",
                    count(lines.len(), "line")
                ),
                false,
            ),
            Some((asn, _)) => record(
                vec![line(&unknown_unit, Some(&asn))],
                format!(
                    "{head}: {asn} announces it without contents; received as an unknown unit into {loc} for \
                     the office to check"
                ),
                true,
            ),
            None => record(
                vec![line(&unknown_unit, None)],
                format!(
                    "{head}: not announced on any open ASN; received as an unknown unit into {loc} for the \
                     office to check"
                ),
                true,
            ),
        },
        Flow::Shipment => {
            // What was received here, else what the ASN announces.
            let received = last
                .filter(|r| r.state == UnitState::Received && !r.lines.is_empty())
                .map(|r| {
                    let note = match &r.reference {
                        Some(asn) => format!("as received from {asn}"),
                        None => "as received".to_string(),
                    };
                    (r.lines, note)
                });
            let from_asn = || {
                announced()
                    .filter(|(_, lines)| !lines.is_empty())
                    .map(|(asn, lines)| (lines, format!("contents from {asn}")))
            };
            match received.or_else(from_asn) {
                Some((lines, note)) => record(
                    lines.iter().map(|l| line(l, None)).collect(),
                    format!(
                        "{head}: shipped {} from {loc} ({note})",
                        count(lines.len(), "line")
                    ),
                    false,
                ),
                None => record(
                    vec![line(&unknown_unit, None)],
                    format!(
                        "{head}: contents unknown (not received here, on no open ASN); shipped as an unknown \
                         unit from {loc}"
                    ),
                    true,
                ),
            }
        }
    }
}

/// The unit an EPC names, or why it names none.
fn unit_of(epc: &[u8]) -> Result<UnitKey, String> {
    let tag = epc::decode(epc).map_err(|e| format!("invalid EPC ({e})"))?;
    match tag.identity() {
        Some(Identity::Sscc(s)) => Ok(UnitKey::Pallet(s.sscc())),
        Some(Identity::Sgtin(s)) => Ok(UnitKey::Serial {
            gtin: s.gtin(),
            serial: s.serial().to_string(),
        }),
        Some(_) => Err(format!(
            "{} is not a pallet (SSCC) or item (SGTIN) tag",
            tag.scheme()
        )),
        None => Err(tag.message().unwrap_or_else(|| "not a GS1 EPC".to_string())),
    }
}

/// Which way a pass of `what` went, or why that is not clear enough to move stock.
fn flow_of(pass: &Departure, rules: &GateRules, what: &str) -> Result<Flow, String> {
    let (conf, reads) = (pass.confidence, pass.reads);
    let flow = match pass.direction {
        _ if pass.end == PassEnd::Evicted => {
            return Err(format!(
                "{what}: pass cut short with {reads} reads (too many tags at the gate); not received or shipped: \
                 check it"
            ))
        }
        Direction::Bounced => {
            return Err(format!(
                "{what} bounced ({conf:.2}, {reads} reads): went in and straight back out; not received or shipped"
            ))
        }
        Direction::Unknown => {
            return Err(format!(
                "{what}: direction unknown ({reads} reads, one side only or no clear order); not received or \
                 shipped: check it"
            ))
        }
        Direction::Inbound => Flow::Receipt,
        Direction::Outbound => Flow::Shipment,
    };
    if f64::from(conf) < rules.min_confidence {
        return Err(format!(
            "{what} {} at confidence {conf:.2}, below {:.2} ({reads} reads): not {}; check it",
            flow.way(),
            rules.min_confidence,
            flow.done()
        ));
    }
    Ok(flow)
}

// ---------------------------------------------------------------------------------------------------------------
// The gate task.

/// The agent's monotonic clock in milliseconds, shared by the reader threads and the gate task ([`Millis`]).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock starting at 0 now.
    pub fn new() -> Clock {
        Clock {
            epoch: Instant::now(),
        }
    }

    /// Milliseconds since the clock started.
    pub fn now(&self) -> Millis {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The instant of `ms` on this clock.
    fn instant(&self, ms: Millis) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }
}

/// A request for the audit ring as JSON lines ([`Smoother::audit_json_lines`]).
pub type AuditRequest = oneshot::Sender<String>;

/// One pass that made no movement for lack of a clear direction, as the status file shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnresolvedPass {
    /// RFC 3339 time of the decision.
    pub at: String,
    /// The EPC in hex.
    pub epc: String,
    /// The direction the smoother gave.
    pub direction: Direction,
    /// Its confidence.
    pub confidence: f32,
    /// Reads in the pass.
    pub reads: u32,
    /// Why nothing was recorded.
    pub reason: String,
}

/// One tag that is not a pallet or item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredTag {
    /// RFC 3339 time of the decision.
    pub at: String,
    /// The EPC in hex.
    pub epc: String,
    /// Why.
    pub reason: String,
}

/// The gate part of the status file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GateStatus {
    /// The gate's location.
    pub location: String,
    /// Raw reads observed.
    pub reads: u64,
    /// Passes that ended (departures).
    pub passes: u64,
    /// Passes that reached `min_reads`.
    pub arrivals: u64,
    /// Passes below `min_reads`: a neighbouring door, a reflection.
    pub strays: u64,
    /// Inbound passes whose receive movements are durable.
    pub receipts: u64,
    /// Outbound passes whose ship movements are durable.
    pub ships: u64,
    /// Movements durable.
    pub movements: u64,
    /// Of `receipts` and `ships`, unannounced pallets moved as unknown units.
    pub unknown_units: u64,
    /// Passes the way the unit already went.
    pub duplicates: u64,
    /// Pallet or item passes without a clear direction: nothing recorded.
    pub unresolved: u64,
    /// Passes of tags that are not pallets or items.
    pub ignored: u64,
    /// Passes whose movements the journal refused (storage full): nothing recorded.
    pub not_stored: u64,
    /// Tags evicted at `max_tags`.
    pub evicted: u64,
    /// Tags tracked now.
    pub tracked: usize,
    /// Raw reads in the audit ring now.
    pub audit_len: usize,
    /// The last unresolved passes, newest last.
    pub recent_unresolved: VecDeque<UnresolvedPass>,
    /// The last ignored tags, newest last.
    pub recent_ignored: VecDeque<IgnoredTag>,
}

fn push_ring<T>(ring: &mut VecDeque<T>, item: T) {
    if ring.len() >= RECENT {
        ring.pop_front();
    }
    ring.push_back(item);
}

const PENDING: u8 = 0;
const DURABLE: u8 = 1;
const FAILED: u8 = 2;

/// Units decided but not yet durable (so not yet in the view), with their append's fate.
type Pending = HashMap<UnitKey, (UnitRecord, Arc<AtomicU8>)>;

/// The pending map in front of the view.
struct Memory<'a> {
    pending: &'a Pending,
    view: &'a LocalView,
}

impl GateMemory for Memory<'_> {
    fn unit(&self, key: &UnitKey) -> Option<UnitRecord> {
        match self.pending.get(key) {
            Some((r, fate)) if fate.load(Ordering::Acquire) == PENDING => Some(r.clone()),
            // Durable: the writer applied it to the view before answering. Failed: the view is right.
            _ => self.view.unit(key),
        }
    }
}

/// Everything the gate task uses. Built by [`crate::run`].
pub struct GateTask {
    /// The rules.
    pub rules: GateRules,
    /// The smoother, built from `[gate]`.
    pub smoother: Smoother,
    /// `[[sources]]` index named in decision events (the first RFID source).
    pub source: usize,
    /// The agent's monotonic clock.
    pub clock: Clock,
    /// The seq owner shared with the scan path.
    pub workflow: Arc<Mutex<Workflow>>,
    /// Master data and gate memory.
    pub view: LocalView,
    /// The journal.
    pub writer: Writer,
    /// The decision stream.
    pub emitter: Emitter,
    /// What the status file shows.
    pub status: Arc<Mutex<GateStatus>>,
}

/// How often the task refreshes its status and ages the audit ring when nothing happens.
const TICK: Duration = Duration::from_secs(1);
/// Reads taken from the channel in one go before events are handled.
const BATCH: usize = 256;

impl GateTask {
    /// Runs until every reader has stopped (the `reads` channel closes), then closes the open passes, judges them
    /// and returns. `audit` requests are answered meanwhile.
    pub async fn run(
        mut self,
        mut reads: mpsc::Receiver<TagRead>,
        mut audit: mpsc::Receiver<AuditRequest>,
    ) {
        let mut pending = Pending::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = self.smoother.poll_timeout();
            let wake = tokio::time::Instant::from_std(self.clock.instant(due.unwrap_or(0)));
            tokio::select! {
                r = reads.recv() => {
                    let Some(read) = r else { break };
                    self.smoother.observe(&read);
                    for _ in 1..BATCH {
                        match reads.try_recv() {
                            Ok(read) => self.smoother.observe(&read),
                            Err(_) => break,
                        }
                    }
                }
                Some(req) = audit.recv() => {
                    self.smoother.handle_timeout(self.clock.now());
                    let _ = req.send(self.smoother.audit_json_lines());
                }
                _ = tokio::time::sleep_until(wake), if due.is_some() => {
                    self.smoother.handle_timeout(self.clock.now());
                }
                _ = tick.tick() => self.smoother.handle_timeout(self.clock.now()),
            }
            self.drain(&mut pending);
        }
        self.smoother.finish();
        self.drain(&mut pending);
        tracing::info!("gate stopped");
    }

    fn drain(&mut self, pending: &mut Pending) {
        while let Some(ev) = self.smoother.poll_event() {
            match ev {
                PassEvent::Arrival(a) => {
                    tracing::debug!(epc = %hex(&a.epc), antenna = a.antenna, "tag at the gate");
                }
                PassEvent::Departure(d) => self.on_departure(&d, pending),
            }
        }
        let st = self.smoother.stats();
        if let Ok(mut s) = self.status.lock() {
            s.reads = st.reads;
            s.passes = st.departures;
            s.arrivals = st.arrivals;
            s.strays = st.strays;
            s.evicted = st.evicted;
            s.tracked = st.tracked;
            s.audit_len = st.audit_len;
        }
    }

    fn on_departure(&mut self, pass: &Departure, pending: &mut Pending) {
        pending.retain(|_, (_, fate)| fate.load(Ordering::Acquire) == PENDING);
        let verdict = decide(
            pass,
            &self.rules,
            &self.view,
            &Memory {
                pending,
                view: &self.view,
            },
        );
        let now = crate::clock::now();
        let epc = hex(&pass.epc);
        let rejected = |reason: &str| {
            let d = Decision::Rejected {
                reason: reason.to_string(),
                class: RejectClass::Refused,
            };
            DecisionEvent::new(now, self.source, Some(epc.clone()), &d, None)
        };
        let (movements, flow, message, unknown) = match verdict {
            Verdict::Record {
                movements,
                flow,
                message,
                unknown,
            } => (movements, flow, message, unknown),
            Verdict::Duplicate { message } => {
                tracing::info!(%epc, "{message}");
                self.count(|s| s.duplicates += 1);
                self.emitter.emit(rejected(&message), None);
                return;
            }
            Verdict::Unresolved { message } => {
                tracing::info!(%epc, direction = ?pass.direction, confidence = pass.confidence, reads = pass.reads,
                    "{message}");
                let entry = UnresolvedPass {
                    at: rfc3339(now),
                    epc: epc.clone(),
                    direction: pass.direction,
                    confidence: pass.confidence,
                    reads: pass.reads,
                    reason: message.clone(),
                };
                self.count(|s| {
                    s.unresolved += 1;
                    push_ring(&mut s.recent_unresolved, entry);
                });
                self.emitter.emit(rejected(&message), None);
                return;
            }
            Verdict::Ignored { reason } => {
                tracing::debug!(%epc, "{reason}");
                let entry = IgnoredTag {
                    at: rfc3339(now),
                    epc: epc.clone(),
                    reason: reason.clone(),
                };
                self.count(|s| {
                    s.ignored += 1;
                    push_ring(&mut s.recent_ignored, entry);
                });
                self.emitter.emit(rejected(&reason), None);
                return;
            }
        };
        // Seqs, then the append, under the workflow lock: appends reach the journal in seq order whichever task
        // (scans or the gate) makes them.
        let (step, durable) = {
            let Ok(mut wf) = self.workflow.lock() else {
                tracing::error!(%epc, "workflow unusable after a panic; pass NOT recorded: {message}");
                return;
            };
            // Movements refused as "storage full" gave away seqs: take them back first (writer module doc).
            self.writer.apply_rollback(&mut wf);
            let step = wf.record(movements, now, &message);
            let durable = (!step.movements.is_empty()).then(|| {
                let records = step.movements.iter().cloned().map(Record::Movement);
                self.writer.append(records.collect())
            });
            (step, durable)
        };
        if unknown {
            tracing::warn!(%epc, "UNKNOWN UNIT at the gate, the office must check it: {}", step.decision.text());
        } else {
            tracing::info!(%epc, "{}", step.decision.text());
        }
        let fate = Arc::new(AtomicU8::new(PENDING));
        let mut records: HashMap<UnitKey, UnitRecord> = HashMap::new();
        for m in &step.movements {
            if let Some(key) = unit_key(m) {
                // Only this pass's own movements continue a record (see `remember`).
                let prev = records.remove(&key);
                records.insert(key, remember(prev, m));
            }
        }
        for (key, record) in records {
            pending.insert(key, (record, fate.clone()));
        }
        let n = step.movements.len() as u64;
        let event = DecisionEvent::new(now, self.source, Some(epc), &step.decision, None);
        let Some(answer) = self.emitter.emit(event, durable) else {
            // Refused by the workflow (an invalid movement): the event says why.
            fate.store(FAILED, Ordering::Release);
            self.count(|s| s.not_stored += 1);
            return;
        };
        let status = self.status.clone();
        tokio::spawn(async move {
            let ok = matches!(answer.await, Ok(Ok(())));
            fate.store(if ok { DURABLE } else { FAILED }, Ordering::Release);
            if let Ok(mut s) = status.lock() {
                if !ok {
                    s.not_stored += 1;
                    return;
                }
                match flow {
                    Flow::Receipt => s.receipts += 1,
                    Flow::Shipment => s.ships += 1,
                }
                s.movements += n;
                if unknown {
                    s.unknown_units += 1;
                }
            }
        });
    }

    fn count(&self, f: impl FnOnce(&mut GateStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::testing::{master, render, MemMaster, AT, G1, G2, G4, SSCC};
    use crate::workflow::State;
    use dockhand_protocol::epc::Epc;
    use dockhand_protocol::rfid::smooth::{AntennaStats, Role};
    use std::collections::BTreeMap;

    const DOCK: &str = "DOCK-3";

    #[derive(Default)]
    struct MemMemory(BTreeMap<Vec<u8>, UnitRecord>);

    impl GateMemory for MemMemory {
        fn unit(&self, key: &UnitKey) -> Option<UnitRecord> {
            self.0.get(&key.bytes()).cloned()
        }
    }

    impl MemMemory {
        fn apply(&mut self, movements: &[Movement]) {
            for m in movements {
                if let Some(k) = unit_key(m) {
                    let prev = self.0.get(&k.bytes()).cloned();
                    self.0.insert(k.bytes(), remember(prev, m));
                }
            }
        }
    }

    fn rules() -> GateRules {
        GateRules {
            location: DOCK.into(),
            min_confidence: 0.5,
        }
    }

    /// An unannounced pallet.
    const STRANGER: &str = "106141410000000019";

    fn sscc_epc(sscc: &str) -> String {
        Epc::sscc96_from_sscc(sscc, 7, 2).unwrap().hex()
    }

    fn sgtin_epc(gtin: &str, serial: u64) -> String {
        Epc::sgtin96_from_gtin(gtin, 7, serial, 1).unwrap().hex()
    }

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A pass of `epc` seen by outside antenna 1 (peak -58 dBm) and inside antenna 2 (peak -52 dBm).
    fn pass(epc: &str, direction: Direction, confidence: f32, end: PassEnd) -> Departure {
        let ant = |antenna, role, peak| AntennaStats {
            antenna,
            role,
            first_seen: 1_000,
            last_seen: 2_000,
            reads: 12,
            peak_rssi: Some(peak),
            peak_at: Some(1_500),
        };
        Departure {
            epc: bytes(epc),
            first_seen: 1_000,
            last_seen: 2_000,
            reads: 24,
            per_antenna: vec![ant(1, Role::Outside, -58), ant(2, Role::Inside, -52)],
            direction,
            confidence,
            end,
        }
    }

    fn kind(v: &Verdict) -> &'static str {
        match v {
            Verdict::Record { .. } => "record",
            Verdict::Duplicate { .. } => "duplicate",
            Verdict::Unresolved { .. } => "unresolved",
            Verdict::Ignored { .. } => "ignored",
        }
    }

    fn text(v: &Verdict) -> &str {
        match v {
            Verdict::Record { message, .. }
            | Verdict::Duplicate { message }
            | Verdict::Unresolved { message } => message,
            Verdict::Ignored { reason } => reason,
        }
    }

    /// Runs `earlier` passes (each recorded as the gate would), then judges `last`; returns the verdict and the
    /// movements recorded for it, numbered by a workflow as the gate task does.
    fn run(md: &MemMaster, earlier: &[Departure], last: &Departure) -> (Verdict, Vec<Movement>) {
        let mut mem = MemMemory::default();
        let mut wf = Workflow::new("gate-3", DOCK, State::default(), 1);
        let mut record = |v: &Verdict, mem: &mut MemMemory| -> Vec<Movement> {
            let Verdict::Record {
                movements, message, ..
            } = v
            else {
                return Vec::new();
            };
            let seq = wf.next_seq();
            let step = wf.record(movements.clone(), AT, message);
            let Decision::Accepted { seqs, message: m } = &step.decision else {
                panic!("{message}: not accepted: {:?}", step.decision);
            };
            assert!(m.starts_with(message.as_str()), "{m}");
            assert_eq!(seqs.first(), Some(&seq), "contiguous seqs");
            assert!(step.state.is_none(), "the gate changes no workflow state");
            for m in &step.movements {
                m.validate().unwrap();
                assert_eq!((m.device_id.as_str(), m.at), ("gate-3", AT));
            }
            mem.apply(&step.movements);
            step.movements
        };
        for p in earlier {
            let v = decide(p, &rules(), md, &mem);
            record(&v, &mut mem);
        }
        let v = decide(last, &rules(), md, &mem);
        let moves = record(&v, &mut mem);
        (v, moves)
    }

    /// (case, earlier passes, judged pass, verdict, text fragment, movements).
    type Row = (
        &'static str,
        Vec<Departure>,
        Departure,
        &'static str,
        &'static str,
        Vec<String>,
    );

    #[test]
    #[rustfmt::skip]
    fn gate_table() {
        use Direction::{Bounced, Inbound, Outbound, Unknown};
        let md = master();
        let q = PassEnd::Quiet;
        let asn_pallet = sscc_epc(SSCC);
        let stranger = sscc_epc(STRANGER);
        let unit = sgtin_epc(G4, 42);
        let grai = Epc::from_tag_uri("urn:epc:tag:grai-96:0.0614141.12345.5678").unwrap().hex();
        let in_ = |epc: &str| pass(epc, Inbound, 0.92, q);
        let out = |epc: &str| pass(epc, Outbound, 0.88, q);
        // (case, earlier passes, judged pass, verdict, text fragment, movements)
        let rows: Vec<Row> = vec![
            ("inbound ASN pallet: one receipt per pallet line", vec![], in_(&asn_pallet), "record",
                "pallet 106141411234567897 inbound (0.92): received 2 lines into DOCK-3 from ASN-7",
                vec![format!("receive 20 {G1} lot=P1 to=DOCK-3 sscc={SSCC} ref=ASN-7"),
                     format!("receive 4 {G2} to=DOCK-3 sscc={SSCC} ref=ASN-7")]),
            ("unannounced pallet: an unknown unit", vec![], in_(&stranger), "record",
                "not announced on any open ASN; received as an unknown unit into DOCK-3",
                vec![format!("receive 1 {NO_GTIN} to=DOCK-3 sscc={STRANGER}")]),
            ("SGTIN: one unit with its serial", vec![], in_(&unit), "record",
                "item 00012345678905 serial 42 inbound (0.92): received 1 unit into DOCK-3",
                vec![format!("receive 1 {G4} to=DOCK-3 serial=42")]),
            ("outbound received pallet: ships what was received", vec![in_(&asn_pallet)], out(&asn_pallet), "record",
                "shipped 2 lines from DOCK-3 (as received from ASN-7)",
                vec![format!("ship 20 {G1} lot=P1 from=DOCK-3 sscc={SSCC}"),
                     format!("ship 4 {G2} from=DOCK-3 sscc={SSCC}")]),
            ("outbound pallet not received here: the ASN's contents", vec![], out(&asn_pallet), "record",
                "shipped 2 lines from DOCK-3 (contents from ASN-7)",
                vec![format!("ship 20 {G1} lot=P1 from=DOCK-3 sscc={SSCC}"),
                     format!("ship 4 {G2} from=DOCK-3 sscc={SSCC}")]),
            ("outbound unknown pallet: an unknown unit", vec![], out(&stranger), "record",
                "shipped as an unknown unit from DOCK-3",
                vec![format!("ship 1 {NO_GTIN} from=DOCK-3 sscc={STRANGER}")]),
            ("outbound unknown pallet received as unknown", vec![in_(&stranger)], out(&stranger), "record",
                "shipped 1 line from DOCK-3 (as received)",
                vec![format!("ship 1 {NO_GTIN} from=DOCK-3 sscc={STRANGER}")]),
            ("outbound SGTIN", vec![], out(&unit), "record", "shipped 1 unit from DOCK-3",
                vec![format!("ship 1 {G4} from=DOCK-3 serial=42")]),
            ("duplicate inbound pallet", vec![in_(&asn_pallet)], in_(&asn_pallet), "duplicate",
                "already received through this gate (seq 2)", vec![]),
            ("duplicate inbound SGTIN", vec![in_(&unit)], in_(&unit), "duplicate", "already received", vec![]),
            ("duplicate outbound", vec![in_(&asn_pallet), out(&asn_pallet)], out(&asn_pallet), "duplicate",
                "already shipped through this gate (seq 4)", vec![]),
            ("received, shipped, received again", vec![in_(&unit), out(&unit)], in_(&unit), "record",
                "received 1 unit", vec![format!("receive 1 {G4} to=DOCK-3 serial=42")]),
            ("a bounce between two receipts is no movement", vec![in_(&unit), pass(&unit, Bounced, 0.9, q)],
                in_(&unit), "duplicate", "already received", vec![]),
            ("bounced", vec![], pass(&asn_pallet, Bounced, 0.9, q), "unresolved",
                "bounced (0.90, 24 reads): went in and straight back out", vec![]),
            ("unknown direction", vec![], pass(&asn_pallet, Unknown, 0.0, q), "unresolved", "direction unknown", vec![]),
            ("low confidence inbound", vec![], pass(&asn_pallet, Inbound, 0.31, q), "unresolved",
                "inbound at confidence 0.31, below 0.50 (24 reads): not received", vec![]),
            ("low confidence outbound", vec![], pass(&unit, Outbound, 0.49, q), "unresolved", "not shipped", vec![]),
            ("at the threshold counts", vec![], pass(&unit, Inbound, 0.5, q), "record", "received 1 unit",
                vec![format!("receive 1 {G4} to=DOCK-3 serial=42")]),
            ("evicted pass", vec![], pass(&asn_pallet, Inbound, 0.95, PassEnd::Evicted), "unresolved",
                "pass cut short", vec![]),
            ("non-GS1 EPC", vec![], in_("e2801160600002054c1e9d76"), "ignored",
                "tag e2801160600002054c1e9d76: not a GS1 EPC", vec![]),
            ("other GS1 scheme", vec![], in_(&grai), "ignored", "grai-96 is not a pallet (SSCC) or item (SGTIN) tag",
                vec![]),
            ("invalid SGTIN encoding", vec![], in_("301c00000000000000000000"), "ignored", "invalid EPC", vec![]),
            ("ignored even when bounced", vec![], pass("e2801160600002054c1e9d76", Bounced, 0.9, q), "ignored",
                "not a GS1 EPC", vec![]),
        ];
        for (case, earlier, last, want_kind, fragment, want) in rows {
            let (v, moves) = run(&md, &earlier, &last);
            assert_eq!(kind(&v), want_kind, "{case}: {v:?}");
            assert!(text(&v).contains(fragment), "{case}: {:?} should contain {fragment:?}", text(&v));
            assert_eq!(moves.iter().map(render).collect::<Vec<_>>(), want, "{case}");
            for m in &moves {
                // The source names the EPC, the antenna with the strongest peak and that peak.
                assert_eq!(m.source, MovementSource::Epc { epc: hex(&last.epc), antenna: Some(2), rssi: Some(-52) },
                    "{case}");
            }
        }
    }

    /// Without any master data (a gate that never synced) every pallet is an unknown unit; the rules stay the same.
    #[test]
    fn without_master_data_pallets_are_unknown_units() {
        let (v, moves) = run(
            &MemMaster::default(),
            &[],
            &pass(&sscc_epc(SSCC), Direction::Inbound, 0.9, PassEnd::Quiet),
        );
        assert!(matches!(v, Verdict::Record { unknown: true, .. }), "{v:?}");
        assert_eq!(
            moves.iter().map(render).collect::<Vec<_>>(),
            [format!("receive 1 {NO_GTIN} to=DOCK-3 sscc={SSCC}")]
        );
    }

    /// A pallet its ASN announces without contents is received against that ASN as an unknown unit.
    #[test]
    fn pallet_announced_without_contents_is_an_unknown_unit_of_its_asn() {
        let mut md = master();
        let mut asn = md.asns["ASN-7"].clone();
        asn.id = "ASN-E".into();
        asn.pallets[0].sscc = STRANGER.into();
        asn.pallets[0].lines.clear();
        md.asns.insert(asn.id.clone(), asn);
        let (v, moves) = run(
            &md,
            &[],
            &pass(&sscc_epc(STRANGER), Direction::Inbound, 0.9, PassEnd::Quiet),
        );
        assert!(
            text(&v).contains("ASN-E announces it without contents"),
            "{v:?}"
        );
        assert_eq!(
            moves.iter().map(render).collect::<Vec<_>>(),
            [format!(
                "receive 1 {NO_GTIN} to=DOCK-3 sscc={STRANGER} ref=ASN-E"
            )]
        );
    }

    #[test]
    fn memory_records_group_a_pass_and_keys_are_distinct() {
        let md = master();
        let p = pass(&sscc_epc(SSCC), Direction::Inbound, 0.9, PassEnd::Quiet);
        let (_, moves) = run(&md, &[], &p);
        let mut rec = None;
        for m in &moves {
            rec = Some(remember(rec, m));
        }
        let rec = rec.unwrap();
        assert_eq!(rec.state, UnitState::Received);
        assert_eq!(rec.lines.len(), 2);
        assert_eq!(rec.reference.as_deref(), Some("ASN-7"));
        assert_eq!(rec.last_seq, 2);
        // A movement that does not continue the pass starts a new record.
        let mut later = moves[0].clone();
        later.seq = 9;
        assert_eq!(remember(Some(rec.clone()), &later).lines.len(), 1);
        // JSON round trip (the view stores it).
        let json = serde_json::to_vec(&rec).unwrap();
        assert_eq!(serde_json::from_slice::<UnitRecord>(&json).unwrap(), rec);
        // Scans are not the gate's.
        let mut scan = moves[0].clone();
        scan.source = MovementSource::Barcode {
            raw: "x".into(),
            symbology: None,
        };
        assert_eq!(unit_key(&scan), None);
        let a = UnitKey::Serial {
            gtin: "1".into(),
            serial: "23".into(),
        };
        let b = UnitKey::Serial {
            gtin: "12".into(),
            serial: "3".into(),
        };
        assert_ne!(a.bytes(), b.bytes());
        assert_ne!(UnitKey::Pallet("S1".into()).bytes(), a.bytes());
    }
}
