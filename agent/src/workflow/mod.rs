//! Handheld workflows: the rules that turn scans into decisions and movements (DESIGN §6).
//!
//! Pure: no I/O, no clock. The caller passes the device time `at` and the device's master data
//! ([`MasterData`]: items, locations, ASNs, pick lists, and what the device believes is where); the engine only reads
//! it. Each workflow is its own module with its rules and a table of scan → decision tests at its bottom:
//! `receive` ([`Receipt`]), `putaway` ([`Putaway`]), `pick` ([`Picking`]), `moves` ([`Move`]) and `count`
//! ([`Count`]). This module is the engine: it classifies a scan (command, location, item, pallet), holds the checks
//! every workflow shares (known item and location, lot/expiry/serial flags, quantity, expiry) and dispatches to the
//! current mode from one `match`.
//!
//! # Order of calls
//!
//! For each scan: [`Workflow::handle`] → [`Step`]. The caller makes `step.movements` and `step.state` durable
//! together (one journal group commit) and only then gives `step.decision` to the operator (DESIGN §3.1).
//!
//! # Seqs
//!
//! The workflow assigns movement seqs. It is built with `next_seq` = last durable seq + 1; each movement takes the
//! next one, so one scan's movements are consecutive and seqs stay contiguous across scans and restarts (§3.2).
//!
//! # A rejected scan changes nothing
//!
//! A rejection restores the state and `next_seq` as they were before the scan and drops any movement made on the
//! way, so handlers may check as they go. A rejection names what was expected and what was scanned, for a person.
//!
//! # State that survives restarts
//!
//! [`State`] is everything a restart must remember between scans. Each scan that changes it returns a JSON snapshot
//! that the journal stores next to the movements of the same scan, so state and movements are durable together.
//! It is written on every such scan, so it stays small: documents (ASN, pick list) are named by id, never copied,
//! and looked up in [`MasterData`] on each scan.
//!
//! ```text
//! { "mode": {"mode": "idle"}                                             waiting for a command
//!         | {"mode": "receiving", "asn"?, "received"?: [{gtin, lot?, qty}], "pallets"?: [sscc]}
//!         | {"mode": "putaway", "pending"?: item, "pallet"?: {sscc, asn, lines: [item]}}
//!         | {"mode": "picking", "list", "index", "at_location"}        index: current line, in list order
//!         | {"mode": "moving", "from"?, "items"?: [item]}
//!         | {"mode": "counting", "location"?, "lines"?: [item]},
//!   "qty_next": n | null,                      DH:QTY, for the next item scan
//!   "operator": id | null,                     DH:OP, signs the movements
//!   "picks"?: {list id: {line no: {"picked"?: n, "lot"?, "short"?: true}}}   open or short lines touched
//!   "picks_done"?: {list id: [[first line, last line], ...]}                  lines picked complete (ranges)
//!   "picked"?: [list id] }                     lists finished on this device, newest last, at most 32
//! ```
//!
//! `item` is a [`PendingItem`]. Blind receipts keep no per-item tally (there is nothing to compare against, and blind
//! receipt is the high-rate path, which should not write a snapshot per scan); ASN receipts keep what was received
//! per GTIN and lot for the close report. Snapshots of older agents (`receiving {asn}`, `putaway {pending}`) still
//! decode; an unreadable snapshot gives the idle state.

use std::collections::BTreeMap;

use dockhand_protocol::command::Command;
use dockhand_protocol::decode::{Gs1Scan, Scan};
use dockhand_protocol::sync::{
    Asn, Item, Location, Movement, MovementKind, MovementSource, PickList, RejectClass, MAX_QTY,
};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

mod count;
mod moves;
mod pick;
mod putaway;
mod receive;
pub mod testing;

pub use count::Count;
pub use moves::Move;
pub use pick::{LineProgress, Picking};
pub use putaway::{PendingPallet, Putaway};
pub use receive::{Receipt, Received};

/// How many finished pick lists the state remembers, so that scanning one again is refused instead of re-picked.
/// Older ones are forgotten; by then the office has closed them, and a closed list is refused anyway.
const PICKED_MEMORY: usize = 32;

/// What the device knows about its site: its copy of the office's master data and tasks, and its stock view.
///
/// Implemented by the sled-backed [`LocalView`](crate::view::LocalView) and the in-memory [`testing::MemMaster`].
/// Lookups happen per scan, so they must be cheap (a key read, or a walk over a few documents). A store error reads
/// as "not found", which rejects the scan with a reason: never a silent acceptance.
pub trait MasterData {
    /// The item with this GTIN-14.
    fn item(&self, gtin: &str) -> Option<Item>;
    /// False when the device has no item master yet: unknown items are then accepted (the server flags them).
    fn has_items(&self) -> bool;
    /// The location with this code.
    fn location(&self, code: &str) -> Option<Location>;
    /// False when the device has no location master yet: any location code is then accepted.
    fn has_locations(&self) -> bool;
    /// The location labelled with this GLN (AI 414) and extension (AI 254); see [`location_by_gln`].
    fn location_by_gln(&self, gln: &str, extension: Option<&str>) -> Option<Location>;
    /// The ASN with this id, whatever its status.
    fn asn(&self, id: &str) -> Option<Asn>;
    /// An open ASN announcing the pallet with this SSCC.
    fn asn_for_pallet(&self, sscc: &str) -> Option<Asn>;
    /// The pick list with this id, whatever its status.
    fn pick_list(&self, id: &str) -> Option<std::sync::Arc<PickList>>;
    /// Where this item was last put away or moved to (a put-away suggestion).
    fn last_location(&self, gtin: &str) -> Option<String>;
    /// The (GTIN, lot) pairs the device believes are at this location (stock above zero).
    fn items_at(&self, location: &str) -> Vec<(String, Option<String>)>;
}

/// The GLN rule shared by the [`MasterData`] implementations: among the locations labelled with `gln`, the one whose
/// code is the extension (AI 254 names the bin) when an extension was scanned, else the only one. An extension that
/// names no location, or a GLN shared by several locations scanned without extension, resolves to none: guessing a
/// location would put stock in the wrong place.
pub fn location_by_gln(
    locations: impl IntoIterator<Item = Location>,
    gln: &str,
    extension: Option<&str>,
) -> Option<Location> {
    let mut found = None;
    for l in locations {
        if l.gln.as_deref() != Some(gln) {
            continue;
        }
        match extension {
            Some(ext) if l.code == ext => return Some(l),
            Some(_) => {}
            None if found.is_some() => return None,
            None => found = Some(l),
        }
    }
    found
}

/// What the operator is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Mode {
    /// Waiting for a command barcode.
    #[default]
    Idle,
    /// Receiving goods into the receiving location (`DH:RECEIVE[:<asn>]`).
    Receiving(Receipt),
    /// Putting goods away: an item or pallet, then its destination (`DH:PUTAWAY`).
    Putaway(Putaway),
    /// Picking a pick list line by line (`DH:PICK:<list>`).
    Picking(Picking),
    /// Moving goods: source location, items, destination (`DH:MOVE`).
    Moving(Move),
    /// Counting a location (`DH:COUNT`).
    Counting(Count),
}

/// An item scanned and held until its location is scanned (put-away, move) or the count is finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingItem {
    /// GTIN-14.
    pub gtin: String,
    /// Lot.
    pub lot: Option<String>,
    /// Expiry `YYYY-MM-DD`.
    pub expiry: Option<String>,
    /// Serials.
    pub serials: Vec<String>,
    /// Units.
    pub qty: u64,
    /// The (first) scan that named it.
    pub source: MovementSource,
}

/// The workflow state that survives restarts (see the module doc for its JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct State {
    /// Current mode.
    pub mode: Mode,
    /// Units the next item scan counts (`DH:QTY`).
    pub qty_next: Option<u64>,
    /// Operator signing the movements (`DH:OP:x`).
    pub operator: Option<String>,
    /// Progress of unfinished pick lists: touched lines only, by line number.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub picks: BTreeMap<String, BTreeMap<u32, LineProgress>>,
    /// Lines of unfinished pick lists picked complete, as inclusive ranges of line numbers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub picks_done: BTreeMap<String, Vec<(u32, u32)>>,
    /// Pick lists finished on this device, newest last (at most 32).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub picked: Vec<String>,
}

/// The answer to one scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Decision {
    /// The scan made movements.
    Accepted {
        /// Their seqs.
        seqs: Vec<u64>,
        /// What happened, for a person.
        message: String,
    },
    /// The scan was taken; the operator must scan the next step.
    Prompt {
        /// What to scan next.
        message: String,
    },
    /// The scan was refused; nothing changed.
    Rejected {
        /// Why, for a person.
        reason: String,
        /// Why, by class: what pick accuracy is reported by.
        class: RejectClass,
    },
}

impl Decision {
    /// True unless rejected.
    pub fn is_ok(&self) -> bool {
        !matches!(self, Decision::Rejected { .. })
    }

    /// The human text.
    pub fn text(&self) -> &str {
        match self {
            Decision::Accepted { message, .. } | Decision::Prompt { message } => message,
            Decision::Rejected { reason, .. } => reason,
        }
    }
}

/// What a scan looked like when it reached the workflow.
// The decoded variant is the common one; boxing it would allocate per scan for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ScanInput {
    /// Decoded.
    Decoded {
        /// The typed scan.
        scan: Scan,
        /// The scan's data as text.
        raw: String,
        /// AIM identifier.
        symbology: Option<String>,
    },
    /// Framing or decoding failed.
    Invalid {
        /// Why.
        reason: String,
    },
}

/// The result of handling a scan.
#[derive(Debug)]
pub struct Step {
    /// The decision to give the operator, after `movements` and `state` are durable.
    pub decision: Decision,
    /// New movements, with consecutive seqs.
    pub movements: Vec<Movement>,
    /// The new state snapshot (JSON) if the scan changed it.
    pub state: Option<Vec<u8>>,
}

/// The handheld workflow engine.
#[derive(Debug)]
pub struct Workflow {
    device_id: String,
    receiving_location: String,
    state: State,
    next_seq: u64,
}

/// What one scan means to a workflow once classified (commands are handled apart).
#[derive(Debug)]
enum Scanned {
    /// A known location (`LOC:` or a resolved GLN).
    Location { code: String },
    /// A trade item.
    Item(ItemScan),
    /// A logistic unit (AI 00 without a GTIN).
    Pallet {
        sscc: String,
        source: MovementSource,
    },
}

impl Scanned {
    /// "got …", for rejections that name what was scanned.
    fn got(&self) -> String {
        match self {
            Scanned::Location { code } => format!("got location {code}"),
            Scanned::Item(it) => format!("got item {}", it.gtin),
            Scanned::Pallet { sscc, .. } => format!("got pallet {sscc}"),
        }
    }
}

/// The parts of a GS1 item scan the workflows use.
#[derive(Debug, Clone)]
struct ItemScan {
    gtin: String,
    lot: Option<String>,
    expiry: Option<Date>,
    serial: Option<String>,
    /// AI 30/37.
    count: Option<u64>,
    source: MovementSource,
}

impl ItemScan {
    fn pending(self, qty: u64) -> PendingItem {
        PendingItem {
            gtin: self.gtin,
            lot: self.lot,
            expiry: self.expiry.map(|d| d.to_string()),
            serials: self.serial.into_iter().collect(),
            qty,
            source: self.source,
        }
    }
}

/// What a handler needs besides the workflow: the scan's time, the master data, and where its movements go.
struct Ctx<'a> {
    at: OffsetDateTime,
    md: &'a dyn MasterData,
    out: Vec<Movement>,
}

/// A handler's result: the next mode and the decision, or a rejection (which the engine undoes).
type Outcome = Result<(Mode, Decision), Decision>;

/// A refusal of class [`RejectClass::Refused`]; the mistakes pick accuracy tells apart use [`reject_as`].
fn reject(reason: impl Into<String>) -> Decision {
    reject_as(RejectClass::Refused, reason)
}

fn reject_as(class: RejectClass, reason: impl Into<String>) -> Decision {
    Decision::Rejected {
        reason: reason.into(),
        class,
    }
}

fn prompt(message: impl Into<String>) -> Decision {
    Decision::Prompt {
        message: message.into(),
    }
}

/// An acceptance whose message ends with the seqs it made.
fn accepted(seqs: Vec<u64>, message: &str, then: &str) -> Decision {
    let seq = match (seqs.first(), seqs.last()) {
        (Some(a), Some(b)) if a == b => format!("seq {a}"),
        (Some(a), Some(b)) => format!("seqs {a}–{b}"),
        _ => "nothing recorded".to_string(),
    };
    let message = if then.is_empty() {
        format!("{message} ({seq})")
    } else {
        format!("{message} ({seq}); {then}")
    };
    Decision::Accepted { seqs, message }
}

fn describe(gtin: &str, lot: &Option<String>, qty: u64) -> String {
    match lot {
        Some(lot) => format!("{qty} × {gtin} lot {lot}"),
        None => format!("{qty} × {gtin}"),
    }
}

/// "1 line", "2 lines".
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn units(lines: &[PendingItem]) -> u64 {
    lines.iter().map(|l| l.qty).sum()
}

/// Adds an item to accumulated lines, one line per (GTIN, lot); a serial already among them is refused.
fn merge(lines: &mut Vec<PendingItem>, item: PendingItem, place: &str) -> Result<(), Decision> {
    let Some(line) = lines
        .iter_mut()
        .find(|l| l.gtin == item.gtin && l.lot == item.lot)
    else {
        lines.push(item);
        return Ok(());
    };
    if let Some(s) = item.serials.iter().find(|s| line.serials.contains(s)) {
        return Err(reject(format!(
            "serial {s} of {} was already scanned {place}: scan each unit once",
            item.gtin
        )));
    }
    let qty = line.qty + item.qty;
    if qty > MAX_QTY {
        return Err(reject(format!(
            "{} would come to {qty} units, more than {MAX_QTY} on one line",
            item.gtin
        )));
    }
    line.qty = qty;
    line.serials.extend(item.serials);
    Ok(())
}

impl Mode {
    /// What the operator must finish before starting another workflow, if anything would be lost.
    fn busy(&self) -> Option<String> {
        match self {
            Mode::Idle => None,
            Mode::Receiving(r) => r.busy(),
            Mode::Putaway(p) => p.busy(),
            Mode::Picking(p) => p.busy(),
            Mode::Moving(m) => m.busy(),
            Mode::Counting(c) => c.busy(),
        }
    }
}

impl Workflow {
    /// A workflow resuming from `state`; the next movement gets `next_seq`.
    pub fn new(device_id: &str, receiving_location: &str, state: State, next_seq: u64) -> Self {
        Workflow {
            device_id: device_id.to_string(),
            receiving_location: receiving_location.to_string(),
            state,
            next_seq,
        }
    }

    /// Decodes a state snapshot written by [`Step::state`]; unreadable snapshots give the idle state.
    pub fn decode_state(bytes: &[u8]) -> State {
        serde_json::from_slice(bytes).unwrap_or_else(|e| {
            tracing::error!(error = %e, "workflow state snapshot unreadable; starting idle");
            State::default()
        })
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The seq the next movement will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Forgets scans the journal refused (storage full): the next movement gets `next_seq` (the last durable seq
    /// + 1) and the state returns to the last durable snapshot, so seqs stay contiguous (DESIGN §3.2).
    pub fn rollback(&mut self, next_seq: u64, state: State) {
        self.next_seq = next_seq;
        self.state = state;
    }

    /// Records movements decided outside the scan workflows (the dock gate, [`crate::gate`]): each gets this
    /// device, `at` and the next seq, so they are contiguous with the scans' (§3.2), and the decision accepts them
    /// with `message` (the seqs appended, as for scans). The caller applies the writer's rollback first and appends
    /// `step.movements` in one go before it lets go of the workflow, as for a scan. If any movement fails
    /// [`Movement::validate`] all are refused and no seq is used. The state is untouched (`step.state` is `None`).
    pub fn record(&mut self, movements: Vec<Movement>, at: OffsetDateTime, message: &str) -> Step {
        let refused = |reason: String| Step {
            decision: reject(reason),
            movements: Vec::new(),
            state: None,
        };
        if movements.is_empty() {
            return refused(format!("{message}: nothing to record"));
        }
        let mut out = Vec::with_capacity(movements.len());
        for (seq, mut m) in (self.next_seq..).zip(movements) {
            m.device_id = self.device_id.clone();
            m.seq = seq;
            m.at = at;
            if let Err(e) = m.validate() {
                return refused(format!(
                    "{message}: NOT recorded, a movement is invalid ({e})"
                ));
            }
            out.push(m);
        }
        self.next_seq += out.len() as u64;
        let seqs = out.iter().map(|m| m.seq).collect();
        Step {
            decision: accepted(seqs, message, ""),
            movements: out,
            state: None,
        }
    }

    /// The current task in one line for a screen ("Pick 3 × 09506000134352 lot ABC from A-01-02 …"); `None` when
    /// idle.
    pub fn task(&self, md: &dyn MasterData) -> Option<String> {
        let task = match &self.state.mode {
            Mode::Idle => return None,
            Mode::Receiving(r) => r.task(self, md),
            Mode::Putaway(p) => p.task(self, md),
            Mode::Picking(p) => p.task(self, md),
            Mode::Moving(m) => m.task(),
            Mode::Counting(c) => c.task(),
        };
        Some(match self.state.qty_next {
            Some(n) => format!("{task} [next item counts {n}]"),
            None => task,
        })
    }

    /// Handles one scan at device time `at`, reading `md`.
    pub fn handle(&mut self, input: ScanInput, at: OffsetDateTime, md: &dyn MasterData) -> Step {
        let before = self.state.clone();
        let seq_before = self.next_seq;
        let mut cx = Ctx {
            at,
            md,
            out: Vec::new(),
        };
        let decision = match input {
            ScanInput::Invalid { reason } => reject_as(RejectClass::Undecodable, reason),
            ScanInput::Decoded {
                scan,
                raw,
                symbology,
            } => {
                let source = MovementSource::Barcode { raw, symbology };
                self.on_scan(scan, source, &mut cx).unwrap_or_else(|d| d)
            }
        };
        let mut movements = cx.out;
        // A rejected scan changes nothing, whatever the handler touched on the way.
        if !decision.is_ok() {
            self.state = before.clone();
            self.next_seq = seq_before;
            movements.clear();
        }
        let state = (self.state != before)
            .then(|| serde_json::to_vec(&self.state).expect("state serializes"));
        Step {
            decision,
            movements,
            state,
        }
    }

    fn on_scan(
        &mut self,
        scan: Scan,
        source: MovementSource,
        cx: &mut Ctx<'_>,
    ) -> Result<Decision, Decision> {
        let scanned = match scan {
            Scan::Command(cmd) => return self.on_command(cmd, source, cx),
            Scan::Location(code) => Scanned::Location {
                code: self.known_location(code, cx.md)?,
            },
            Scan::Gs1(gs1) => self.classify(gs1, source, cx.md)?,
        };
        self.step(|wf, mode| match mode {
            Mode::Idle => Err(reject(format!(
                "scan a command first (DH:RECEIVE, DH:PUTAWAY, DH:PICK:<list>, DH:MOVE or DH:COUNT); {}",
                scanned.got()
            ))),
            Mode::Receiving(r) => r.scan(wf, cx, scanned),
            Mode::Putaway(p) => p.scan(wf, cx, scanned),
            Mode::Picking(p) => p.scan(wf, cx, scanned),
            Mode::Moving(m) => m.scan(wf, cx, scanned),
            Mode::Counting(c) => c.scan(wf, cx, scanned),
        })
    }

    /// Runs a handler on the current mode, which it consumes and replaces.
    fn step(
        &mut self,
        handler: impl FnOnce(&mut Workflow, Mode) -> Outcome,
    ) -> Result<Decision, Decision> {
        let mode = std::mem::take(&mut self.state.mode);
        // On a rejection the mode stays idle here; `handle` restores the whole state.
        let (mode, decision) = handler(self, mode)?;
        self.state.mode = mode;
        Ok(decision)
    }

    fn on_command(
        &mut self,
        cmd: Command,
        source: MovementSource,
        cx: &mut Ctx<'_>,
    ) -> Result<Decision, Decision> {
        match cmd {
            Command::Qty(n) => {
                self.state.qty_next = Some(n);
                Ok(prompt(format!("next item counts {n} units")))
            }
            Command::Op(op) => {
                let message = format!("operator {op} signed in");
                self.state.operator = Some(op);
                Ok(prompt(message))
            }
            Command::Receive { .. }
            | Command::Putaway
            | Command::Pick { .. }
            | Command::Move
            | Command::Count => {
                if let (Mode::Picking(p), Command::Pick { list }) = (&self.state.mode, &cmd) {
                    if p.list == *list {
                        return p.clone().again(self, cx);
                    }
                }
                if let Some(busy) = self.state.mode.busy() {
                    return Err(reject(format!("{busy}; got DH:{}", cmd.name().to_uppercase())));
                }
                self.step(|wf, _| match cmd {
                    Command::Receive { asn } => Receipt::start(wf, cx, asn),
                    Command::Pick { list } => Picking::start(wf, cx, list),
                    Command::Move => Ok(Move::start()),
                    Command::Count => Ok(Count::start()),
                    _ => Ok(Putaway::start()),
                })
            }
            Command::Done => {
                let decision = self.step(|wf, mode| match mode {
                    Mode::Idle => Ok((Mode::Idle, prompt("done"))),
                    Mode::Receiving(r) => r.done(wf, cx),
                    Mode::Putaway(p) => p.done(),
                    Mode::Picking(p) => p.done(wf, cx),
                    Mode::Moving(m) => m.done(),
                    Mode::Counting(c) => c.done(wf, cx, source),
                })?;
                self.state.qty_next = None;
                Ok(decision)
            }
            Command::Cancel => {
                let mode = std::mem::take(&mut self.state.mode);
                let message = match mode {
                    Mode::Idle => "cancelled".to_string(),
                    Mode::Receiving(r) => r.cancel(),
                    Mode::Putaway(p) => p.cancel(&self.receiving_location),
                    Mode::Picking(p) => p.cancel(self, cx.md),
                    Mode::Moving(m) => m.cancel(),
                    Mode::Counting(c) => c.cancel(),
                };
                self.state.qty_next = None;
                Ok(prompt(message))
            }
            Command::Short => self.step(|wf, mode| match mode {
                Mode::Picking(p) => p.short(wf, cx, source),
                _ => Err(reject(
                    "no pick line to short: DH:SHORT works while picking (scan DH:PICK:<list> first)",
                )),
            }),
        }
    }

    /// A `LOC:` code, checked against the location master when the device has one. The receiving location is
    /// configured on the device and always known.
    fn known_location(&self, code: String, md: &dyn MasterData) -> Result<String, Decision> {
        if code == self.receiving_location || !md.has_locations() {
            return Ok(code);
        }
        match md.location(&code) {
            None => Err(reject(format!(
                "unknown location {code}: not in this site's locations on this device (sync and retry)"
            ))),
            Some(l) if !l.active => Err(reject(format!(
                "location {code} is inactive: the office deactivated it"
            ))),
            Some(_) => Ok(code),
        }
    }

    fn classify(
        &self,
        gs1: Gs1Scan,
        source: MovementSource,
        md: &dyn MasterData,
    ) -> Result<Scanned, Decision> {
        let item = gs1.item;
        // A label with AI 02 + 30/37 and no SSCC says "n units of this GTIN": an item scan with a count.
        let gtin = item
            .gtin
            .or(item.content_gtin.filter(|_| item.sscc.is_none()));
        if let Some(gtin) = gtin {
            return Ok(Scanned::Item(ItemScan {
                gtin,
                lot: item.lot,
                expiry: item.expiry,
                serial: item.serial,
                count: item.count,
                source,
            }));
        }
        if let Some(sscc) = item.sscc {
            return Ok(Scanned::Pallet { sscc, source });
        }
        let Some(gln) = item.location_gln else {
            return Err(reject(
                "this barcode carries no GTIN, SSCC or location GLN: scan the item, pallet or location label",
            ));
        };
        let ext = item.location_ext;
        let label = match &ext {
            Some(e) => format!("GLN {gln} extension {e}"),
            None => format!("GLN {gln}"),
        };
        match md.location_by_gln(&gln, ext.as_deref()) {
            None => Err(reject(format!(
                "unknown location {label}: no single location on this device carries it \
                 (sync and retry, or scan the LOC: label)"
            ))),
            Some(l) if !l.active => Err(reject(format!(
                "location {} ({label}) is inactive: the office deactivated it",
                l.code
            ))),
            Some(l) => Ok(Scanned::Location { code: l.code }),
        }
    }

    /// The units an item scan counts: `DH:QTY` (consumed) times AI 30/37, one for a serialised unit.
    fn take_qty(&mut self, it: &ItemScan) -> Result<u64, Decision> {
        let multiplier = self.state.qty_next.take().unwrap_or(1);
        let qty = multiplier.saturating_mul(it.count.unwrap_or(1));
        if qty == 0 || qty > MAX_QTY {
            return Err(reject(format!(
                "quantity {qty} is out of range: 1 to {MAX_QTY} per scan"
            )));
        }
        if it.serial.is_some() && qty != 1 {
            return Err(reject(format!(
                "a serialised unit counts 1, not {qty}: scan each serial"
            )));
        }
        Ok(qty)
    }

    /// The item master's checks: a known item (when the device has a master), active for new receipts, and the
    /// lot, expiry and serial its flags require.
    fn check_item(md: &dyn MasterData, it: &ItemScan, receipt: bool) -> Result<(), Decision> {
        let Some(item) = md.item(&it.gtin) else {
            if md.has_items() {
                return Err(reject(format!(
                    "unknown item {}: not in the item master on this device (sync and retry, or ask the office)",
                    it.gtin
                )));
            }
            return Ok(());
        };
        let name = format!("{} ({})", it.gtin, item.description);
        if receipt && !item.active {
            return Err(reject(format!(
                "item {name} is inactive: the office stopped its receipts"
            )));
        }
        if item.lot_tracked && it.lot.is_none() {
            return Err(reject(format!(
                "lot required for {name}: scan the label with the lot (AI 10)"
            )));
        }
        if item.expiry_tracked && it.expiry.is_none() {
            return Err(reject(format!(
                "expiry date required for {name}: scan the label with the expiry date (AI 17)"
            )));
        }
        if item.serial_tracked && it.serial.is_none() {
            return Err(reject(format!(
                "serial number required for {name}: scan each unit's serial (AI 21)"
            )));
        }
        Ok(())
    }

    /// Refuses goods whose expiry date (AI 17) is before the scan's date.
    fn check_expiry(it: &ItemScan, at: OffsetDateTime) -> Result<(), Decision> {
        match it.expiry {
            Some(exp) if exp < at.date() => Err(reject(format!(
                "expired: {}{} expired on {exp}",
                it.gtin,
                it.lot
                    .as_ref()
                    .map(|l| format!(" lot {l}"))
                    .unwrap_or_default()
            ))),
            _ => Ok(()),
        }
    }

    /// A movement of `kind` signed by the current operator; the caller fills in what it moves and where.
    fn movement(
        &self,
        kind: MovementKind,
        at: OffsetDateTime,
        gtin: String,
        source: MovementSource,
    ) -> Movement {
        Movement {
            device_id: self.device_id.clone(),
            seq: 0,
            at,
            kind,
            gtin,
            lot: None,
            expiry: None,
            serials: Vec::new(),
            qty: 1,
            from_location: None,
            to_location: None,
            sscc: None,
            reference: None,
            operator: self.state.operator.clone(),
            source,
        }
    }

    /// A movement of `kind` carrying a pending item.
    fn movement_of(&self, kind: MovementKind, at: OffsetDateTime, p: &PendingItem) -> Movement {
        Movement {
            lot: p.lot.clone(),
            expiry: p.expiry.clone(),
            serials: p.serials.clone(),
            qty: p.qty,
            ..self.movement(kind, at, p.gtin.clone(), p.source.clone())
        }
    }

    /// Gives `m` the next seq and records it.
    fn emit(&mut self, cx: &mut Ctx<'_>, mut m: Movement) -> u64 {
        m.seq = self.next_seq;
        self.next_seq += 1;
        debug_assert!(m.validate().is_ok(), "{m:?}: {:?}", m.validate());
        cx.out.push(m);
        self.next_seq - 1
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{input, master, AT, DOCK};
    use super::*;

    fn wf() -> Workflow {
        Workflow::new("hh-01", DOCK, State::default(), 1)
    }

    /// Scans that fit no mode, commands that don't fit the current one, and the shared item and location checks.
    #[test]
    #[rustfmt::skip]
    fn engine_table() {
        let md = master();
        let none = testing::MemMaster::default();
        // (scans, the last one judged → kind, text fragment, movements out)
        let rows: &[testing::Row<'_>] = &[
            (&["]C10109506000134352"], "rejected", "scan a command first", &[]),
            (&["]C10109506000134352"], "rejected", "got item 09506000134352", &[]),
            (&["LOC:A-01-02"], "rejected", "got location A-01-02", &[]),
            (&["hello world"], "rejected", "", &[]),
            (&["DH:RECEIVE", "]C10109506000134353"], "rejected", "check digit", &[]),
            (&["DH:OP:anna"], "prompt", "operator anna signed in", &[]),
            (&["DH:QTY:4"], "prompt", "next item counts 4 units", &[]),
            (&["DH:DONE"], "prompt", "done", &[]),
            (&["DH:CANCEL"], "prompt", "cancelled", &[]),
            (&["DH:SHORT"], "rejected", "no pick line to short", &[]),
            // Locations: unknown, inactive, by GLN (414, +254), the receiving location is always known.
            (&["DH:PUTAWAY", "]C10105901234123457", "LOC:Z-99"], "rejected", "unknown location Z-99", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457", "LOC:X-00"], "rejected", "location X-00 is inactive", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457", "]C14140614141000005"], "accepted", "to A-01-02",
                &["putaway 1 05901234123457 from=DOCK-1 to=A-01-02"]),
            (&["DH:PUTAWAY", "]C10105901234123457", "]C14140614141000012254B1"], "accepted", "to B1",
                &["putaway 1 05901234123457 from=DOCK-1 to=B1"]),
            (&["DH:PUTAWAY", "]C10105901234123457", "]C14140614141000012"], "rejected", "unknown location GLN 0614141000012", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457", "]C14140614141000012254B9"], "rejected", "extension B9", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457", "]C14140614141000029"], "rejected", "unknown location GLN", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457", "LOC:DOCK-1"], "rejected", "DOCK-1 is the receiving location", &[]),
            // Items: unknown, flags, serial quantity, AI 30 count, AI 02 + 37 without SSCC.
            (&["DH:RECEIVE", "]C10109501101530003"], "rejected", "unknown item 09501101530003", &[]),
            (&["DH:RECEIVE", "]C10109506000134352"], "rejected", "lot required for 09506000134352 (Widget)", &[]),
            (&["DH:RECEIVE", "]C10104006381333931"], "rejected", "lot required for 04006381333931", &[]),
            (&["DH:RECEIVE", "]C1010400638133393110L5"], "rejected", "expiry date required for 04006381333931", &[]),
            (&["DH:RECEIVE", "]C10100012345678905"], "rejected", "serial number required for 00012345678905", &[]),
            (&["DH:RECEIVE", "DH:QTY:2", "]C1010001234567890521S1"], "rejected", "a serialised unit counts 1, not 2", &[]),
            (&["DH:RECEIVE", "]C1010001234567890521S1"], "accepted", "received 1 × 00012345678905",
                &["receive 1 00012345678905 to=DOCK-1 serial=S1"]),
            (&["DH:RECEIVE", "]C10105901234123457305"], "accepted", "received 5 × 05901234123457",
                &["receive 5 05901234123457 to=DOCK-1"]),
            (&["DH:RECEIVE", "DH:QTY:3", "]C10105901234123457305"], "accepted", "received 15 ×",
                &["receive 15 05901234123457 to=DOCK-1"]),
            (&["DH:RECEIVE", "]C10205901234123457376"], "accepted", "received 6 × 05901234123457",
                &["receive 6 05901234123457 to=DOCK-1"]),
            (&["DH:RECEIVE", "]C14140614141000005"], "rejected", "receiving goes to DOCK-1", &[]),
            // Commands that do not fit the mode say what to do.
            (&["DH:PUTAWAY", "]C10105901234123457", "DH:PICK:PL-1"], "rejected", "scan a location, or DH:CANCEL; got DH:PICK", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457", "DH:RECEIVE"], "rejected", "waiting for its location", &[]),
            (&["DH:RECEIVE:ASN-7", "DH:PUTAWAY"], "rejected", "you are receiving ASN-7: DH:DONE closes", &[]),
            (&["DH:RECEIVE", "DH:PUTAWAY"], "prompt", "put-away: scan an item", &[]),
            (&["DH:PICK:PL-1", "DH:COUNT"], "rejected", "you are picking PL-1: DH:CANCEL pauses it", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "]C10105901234123457", "DH:COUNT"], "rejected", "1 line from A-01-02 is waiting", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "DH:COUNT"], "prompt", "count: scan the location", &[]),
            (&["DH:COUNT", "LOC:A-01-02", "]C10105901234123457", "DH:MOVE"], "rejected", "counting A-01-02", &[]),
            (&["DH:OP:anna", "DH:RECEIVE", "]C10105901234123457"], "accepted", "received",
                &["receive 1 05901234123457 to=DOCK-1 op=anna"]),
        ];
        testing::check_table(&md, rows);
        // Without any master data the device accepts what it cannot check (the server flags unknown items).
        let blind: &[testing::Row<'_>] = &[
            (&["DH:RECEIVE", "]C10109501101530003"], "accepted", "received 1 × 09501101530003",
                &["receive 1 09501101530003 to=DOCK-1"]),
            (&["DH:RECEIVE", "]C10109506000134352"], "accepted", "received", &["receive 1 09506000134352 to=DOCK-1"]),
            (&["DH:PUTAWAY", "]C10109506000134352", "LOC:Z-99"], "accepted", "to Z-99",
                &["putaway 1 09506000134352 from=DOCK-1 to=Z-99"]),
            (&["DH:PUTAWAY", "]C10109506000134352", "]C14140614141000005"], "rejected", "unknown location GLN", &[]),
        ];
        testing::check_table(&none, blind);
    }

    #[test]
    fn receive_then_putaway_makes_contiguous_movements() {
        let md = testing::MemMaster::default();
        let mut wf = wf();
        let steps: Vec<Step> = [
            "DH:RECEIVE",
            "]C1010950600013435210LOT1\u{1d}17271231",
            "DH:QTY:3",
            "]C10109506000134352",
            "DH:PUTAWAY",
            "]C1010950600013435210LOT1\u{1d}17271231",
            "LOC:A-01-02",
        ]
        .iter()
        .map(|s| wf.handle(input(s), AT, &md))
        .collect();
        let ms: Vec<_> = steps.iter().flat_map(|s| s.movements.clone()).collect();
        assert_eq!(ms.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(ms[0].expiry.as_deref(), Some("2027-12-31"));
        assert_eq!(ms[1].qty, 3);
        assert!(steps.iter().all(|s| s.decision.is_ok()), "{steps:#?}");
        // Blind receipt is the high-rate path: an item scan writes no state snapshot.
        assert!(steps[1].state.is_none() && steps[3].state.is_some());
    }

    #[test]
    fn state_snapshot_restores_the_workflow() {
        let md = testing::MemMaster::default();
        let mut a = wf();
        let mut snap = None;
        for s in ["DH:OP:anna", "DH:PUTAWAY", "]C1010950600013435210L9"] {
            snap = a.handle(input(s), AT, &md).state.or(snap);
        }
        let mut b = Workflow::new(
            "hh-01",
            DOCK,
            Workflow::decode_state(&snap.unwrap()),
            a.next_seq(),
        );
        let step = b.handle(input("LOC:B-02"), AT, &md);
        assert_eq!(step.movements.len(), 1);
        assert_eq!(step.movements[0].lot.as_deref(), Some("L9"));
        assert_eq!(step.movements[0].operator.as_deref(), Some("anna"));
        assert_eq!(Workflow::decode_state(b"garbage"), State::default());
    }

    /// Snapshots written before the workflows were split still decode.
    #[test]
    fn older_snapshots_decode() {
        let cases: &[(&str, Mode)] = &[
            (
                r#"{"mode":{"mode":"receiving","asn":null},"qty_next":null,"operator":null}"#,
                Mode::Receiving(Receipt::default()),
            ),
            (
                r#"{"mode":{"mode":"receiving","asn":"ASN-1"},"qty_next":2,"operator":"x"}"#,
                Mode::Receiving(Receipt {
                    asn: Some("ASN-1".into()),
                    ..Receipt::default()
                }),
            ),
            (
                r#"{"mode":{"mode":"putaway","pending":null},"qty_next":null,"operator":null}"#,
                Mode::Putaway(Putaway::default()),
            ),
            (
                r#"{"mode":{"mode":"idle"},"qty_next":null,"operator":null}"#,
                Mode::Idle,
            ),
        ];
        for (json, want) in cases {
            assert_eq!(
                &Workflow::decode_state(json.as_bytes()).mode,
                want,
                "{json}"
            );
        }
        let pending = r#"{"mode":{"mode":"putaway","pending":{"gtin":"09506000134352","lot":"L9","expiry":null,
            "serials":[],"qty":2,"source":{"type":"barcode","raw":"x"}}},"qty_next":null,"operator":null}"#;
        let Mode::Putaway(p) = Workflow::decode_state(pending.as_bytes()).mode else {
            panic!("putaway expected");
        };
        assert_eq!(p.pending.unwrap().qty, 2);
    }

    #[test]
    fn task_lines() {
        let md = master();
        let cases: &[(&[&str], Option<&str>)] = &[
            (&[], None),
            (&["DH:RECEIVE"], Some("Receiving into DOCK-1: scan items")),
            (
                &["DH:RECEIVE:ASN-7", "DH:QTY:3", "]C10105901234123457"],
                Some("Receiving ASN-7 into DOCK-1: 3 of 39 units"),
            ),
            (&["DH:QTY:2"], None),
            (
                &["DH:RECEIVE", "DH:QTY:2"],
                Some("Receiving into DOCK-1: scan items [next item counts 2]"),
            ),
            (
                &["DH:PUTAWAY", "]C10105901234123457"],
                Some("Put away 1 × 05901234123457: scan the destination (suggested B-04-01)"),
            ),
            (
                &["DH:PICK:PL-1"],
                Some("Pick 2 × 09506000134352 lot L1 from A-01-02 (PL-1 line 1 of 3)"),
            ),
            (
                &["DH:PICK:PL-1", "LOC:A-01-02", "]C1010950600013435210L1"],
                Some("Pick 1 × 09506000134352 lot L1 from A-01-02 (PL-1 line 1 of 3)"),
            ),
            (&["DH:MOVE"], Some("Move: scan the source location")),
            (
                &["DH:MOVE", "LOC:A-01-02", "DH:QTY:2", "]C10105901234123457"],
                Some("Move from A-01-02: 1 line, 2 units; scan more items or the destination"),
            ),
            (&["DH:COUNT"], Some("Count: scan a location")),
            (
                &["DH:COUNT", "LOC:A-01-02", "DH:QTY:5", "]C10105901234123457"],
                Some("Count A-01-02: 5 units scanned"),
            ),
        ];
        for (scans, want) in cases {
            let mut wf = wf();
            for s in *scans {
                let step = wf.handle(input(s), AT, &md);
                assert!(step.decision.is_ok(), "{s}: {:?}", step.decision);
            }
            let state = wf.state().clone();
            if *scans == ["DH:QTY:2"] {
                // Idle has no task, whatever DH:QTY says.
                assert_eq!(wf.task(&md), None);
                continue;
            }
            assert_eq!(wf.task(&md).as_deref(), *want, "{scans:?}");
            assert_eq!(wf.state(), &state, "task() changes nothing");
        }
    }
}
