//! Handheld workflows: the rules that turn scans into decisions and movements (DESIGN §6).
//!
//! Pure: no I/O, no clock (the caller passes `at`). The workflow assigns movement seqs; the caller must make the
//! returned records durable (journal) before confirming the decision to the operator.
//!
//! # State
//!
//! [`State`] is everything a restart must remember between scans: the mode (idle, receiving, put-away with a
//! pending item), the `DH:QTY` multiplier and the operator. Each scan that changes it returns a serialized
//! snapshot, which the journal stores next to the movements of the same scan, so state and movements are durable
//! together.

use dockhand_protocol::command::Command;
use dockhand_protocol::decode::{Gs1Scan, Scan};
use dockhand_protocol::sync::{Movement, MovementKind, MovementSource};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What the operator is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Mode {
    /// Waiting for a command barcode.
    #[default]
    Idle,
    /// Receiving goods into the receiving location.
    Receiving {
        /// The ASN received against, if any.
        asn: Option<String>,
    },
    /// Putting goods away: an item, then its destination location.
    Putaway {
        /// The item scanned and waiting for a location.
        pending: Option<PendingItem>,
    },
}

/// An item scanned in put-away, waiting for its location.
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
    /// The scan that named it.
    pub source: MovementSource,
}

/// The workflow state that survives restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct State {
    /// Current mode.
    pub mode: Mode,
    /// Units the next item scan counts (`DH:QTY:n`).
    pub qty_next: Option<u64>,
    /// Operator signing the movements (`DH:OP:x`).
    pub operator: Option<String>,
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
            Decision::Rejected { reason } => reason,
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

fn reject(reason: impl Into<String>) -> Decision {
    Decision::Rejected {
        reason: reason.into(),
    }
}

fn describe(gtin: &str, lot: &Option<String>, qty: u64) -> String {
    match lot {
        Some(lot) => format!("{qty} × {gtin} lot {lot}"),
        None => format!("{qty} × {gtin}"),
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

    /// Handles one scan at device time `at`.
    pub fn handle(&mut self, input: ScanInput, at: OffsetDateTime) -> Step {
        let before = self.state.clone();
        let mut movements = Vec::new();
        let decision = match input {
            ScanInput::Invalid { reason } => reject(reason),
            ScanInput::Decoded {
                scan,
                raw,
                symbology,
            } => {
                let source = MovementSource::Barcode { raw, symbology };
                self.on_scan(scan, source, at, &mut movements)
            }
        };
        // A rejected scan changes nothing, whatever the handler touched on the way.
        if !decision.is_ok() {
            self.state = before.clone();
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
        at: OffsetDateTime,
        out: &mut Vec<Movement>,
    ) -> Decision {
        match scan {
            Scan::Command(cmd) => self.on_command(cmd),
            Scan::Location(code) => self.on_location(code, at, out),
            Scan::Gs1(gs1) => self.on_item(&gs1, source, at, out),
        }
    }

    fn on_command(&mut self, cmd: Command) -> Decision {
        let pending = matches!(&self.state.mode, Mode::Putaway { pending: Some(_) });
        match cmd {
            Command::Receive { asn } => {
                if pending {
                    return reject("finish the put-away first: scan a location, or DH:CANCEL");
                }
                let message = match &asn {
                    Some(asn) => format!(
                        "receiving {asn} into {}: scan items",
                        self.receiving_location
                    ),
                    None => format!("receiving into {}: scan items", self.receiving_location),
                };
                self.state.mode = Mode::Receiving { asn };
                Decision::Prompt { message }
            }
            Command::Putaway => {
                if pending {
                    return reject(
                        "an item is waiting for its location: scan a location, or DH:CANCEL",
                    );
                }
                self.state.mode = Mode::Putaway { pending: None };
                Decision::Prompt {
                    message: "put-away: scan an item".into(),
                }
            }
            Command::Pick { .. } => reject("picking is not available on this device yet"),
            Command::Move => reject("moves are not available on this device yet"),
            Command::Count => reject("cycle counts are not available on this device yet"),
            Command::Short => reject("no pick line to short"),
            Command::Qty(n) => {
                self.state.qty_next = Some(n);
                Decision::Prompt {
                    message: format!("next item counts {n} units"),
                }
            }
            Command::Op(op) => {
                let message = format!("operator {op} signed in");
                self.state.operator = Some(op);
                Decision::Prompt { message }
            }
            Command::Done => {
                if pending {
                    return reject(
                        "an item is waiting for its location: scan a location, or DH:CANCEL",
                    );
                }
                self.state.mode = Mode::Idle;
                self.state.qty_next = None;
                Decision::Prompt {
                    message: "done".into(),
                }
            }
            Command::Cancel => {
                self.state.mode = Mode::Idle;
                self.state.qty_next = None;
                Decision::Prompt {
                    message: "cancelled".into(),
                }
            }
        }
    }

    fn take_qty(&mut self, gs1: &Gs1Scan) -> Result<u64, Decision> {
        let multiplier = self.state.qty_next.take().unwrap_or(1);
        let per_scan = gs1.item.count.unwrap_or(1);
        let qty = multiplier.saturating_mul(per_scan);
        if qty == 0 || qty > dockhand_protocol::sync::MAX_QTY {
            return Err(reject(format!("quantity {qty} is out of range")));
        }
        if gs1.item.serial.is_some() && qty != 1 {
            return Err(reject(format!(
                "a serialised unit counts 1, not {qty}: scan each serial"
            )));
        }
        Ok(qty)
    }

    fn on_item(
        &mut self,
        gs1: &Gs1Scan,
        source: MovementSource,
        at: OffsetDateTime,
        out: &mut Vec<Movement>,
    ) -> Decision {
        let item = &gs1.item;
        let Some(gtin) = item.gtin.clone() else {
            if let Some(sscc) = &item.sscc {
                return reject(format!(
                    "pallet {sscc}: receiving or putting away whole pallets needs an ASN, which this version \
                     does not support; scan the items on it"
                ));
            }
            if item.location_gln.is_some() {
                return reject(
                    "GLN locations (AI 414) need location master data; scan the LOC: label",
                );
            }
            return reject("this barcode carries no GTIN");
        };
        let lot = item.lot.clone();
        let expiry = item.expiry.map(|d| d.to_string());
        let serials: Vec<String> = item.serial.iter().cloned().collect();
        match self.state.mode.clone() {
            Mode::Idle => reject("scan DH:RECEIVE or DH:PUTAWAY first"),
            Mode::Receiving { asn } => {
                if let Some(exp) = item.expiry {
                    if exp < at.date() {
                        return reject(format!(
                            "expired: {gtin}{} expired on {exp}",
                            lot.as_ref()
                                .map(|l| format!(" lot {l}"))
                                .unwrap_or_default()
                        ));
                    }
                }
                let qty = match self.take_qty(gs1) {
                    Ok(q) => q,
                    Err(d) => return d,
                };
                let m = self.movement(MovementKind::Receive, at, gtin, source);
                let m = Movement {
                    lot,
                    expiry,
                    serials,
                    qty,
                    to_location: Some(self.receiving_location.clone()),
                    reference: asn,
                    ..m
                };
                let message = format!(
                    "received {} into {}",
                    describe(&m.gtin, &m.lot, qty),
                    self.receiving_location
                );
                self.push(m, out, message)
            }
            Mode::Putaway { pending: Some(p) } => reject(format!(
                "scan a location for {} first, or DH:CANCEL",
                describe(&p.gtin, &p.lot, p.qty)
            )),
            Mode::Putaway { pending: None } => {
                let qty = match self.take_qty(gs1) {
                    Ok(q) => q,
                    Err(d) => return d,
                };
                let message = format!(
                    "{}: scan the destination location",
                    describe(&gtin, &lot, qty)
                );
                self.state.mode = Mode::Putaway {
                    pending: Some(PendingItem {
                        gtin,
                        lot,
                        expiry,
                        serials,
                        qty,
                        source,
                    }),
                };
                Decision::Prompt { message }
            }
        }
    }

    fn on_location(
        &mut self,
        code: String,
        at: OffsetDateTime,
        out: &mut Vec<Movement>,
    ) -> Decision {
        match self.state.mode.clone() {
            Mode::Putaway { pending: Some(p) } => {
                if code == self.receiving_location {
                    return reject(format!(
                        "{code} is the receiving location; scan the storage location"
                    ));
                }
                self.state.mode = Mode::Putaway { pending: None };
                let m = self.movement(MovementKind::Putaway, at, p.gtin, p.source);
                let m = Movement {
                    lot: p.lot,
                    expiry: p.expiry,
                    serials: p.serials,
                    qty: p.qty,
                    from_location: Some(self.receiving_location.clone()),
                    to_location: Some(code.clone()),
                    ..m
                };
                let message = format!("put away {} to {code}", describe(&m.gtin, &m.lot, m.qty));
                self.push(m, out, message)
            }
            Mode::Putaway { pending: None } => {
                reject(format!("scan an item before the location {code}"))
            }
            Mode::Receiving { .. } => reject(format!(
                "receiving goes to {}; scan DH:PUTAWAY to store goods at {code}",
                self.receiving_location
            )),
            Mode::Idle => reject("scan DH:RECEIVE or DH:PUTAWAY first"),
        }
    }

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

    fn push(&mut self, mut m: Movement, out: &mut Vec<Movement>, message: String) -> Decision {
        m.seq = self.next_seq;
        self.next_seq += 1;
        let seq = m.seq;
        out.push(m);
        Decision::Accepted {
            seqs: vec![seq],
            message: format!("{message} (seq {seq})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockhand_protocol::decode::{decode_text, DecodeOptions};
    use time::macros::{date, datetime};

    const AT: OffsetDateTime = datetime!(2026-11-26 10:00 UTC);

    fn input(text: &str) -> ScanInput {
        let opts = DecodeOptions {
            today: date!(2026 - 11 - 26),
            fnc1_substitute: None,
            assume_gs1: false,
            fnc1_text: false,
        };
        match decode_text(text, &opts) {
            Ok(scan) => ScanInput::Decoded {
                scan,
                raw: text.to_string(),
                symbology: None,
            },
            Err(e) => ScanInput::Invalid {
                reason: e.to_string(),
            },
        }
    }

    fn run(wf: &mut Workflow, scans: &[&str]) -> Vec<Step> {
        scans.iter().map(|s| wf.handle(input(s), AT)).collect()
    }

    fn wf() -> Workflow {
        Workflow::new("hh-01", "DOCK-1", State::default(), 1)
    }

    #[test]
    fn receive_then_putaway_makes_contiguous_movements() {
        let mut wf = wf();
        let steps = run(
            &mut wf,
            &[
                "DH:RECEIVE",
                "]C1010950600013435210LOT1\u{1d}17271231",
                "DH:QTY:3",
                "]C10109506000134352",
                "DH:PUTAWAY",
                "]C1010950600013435210LOT1\u{1d}17271231",
                "LOC:A-01-02",
            ],
        );
        let ms: Vec<_> = steps.iter().flat_map(|s| s.movements.clone()).collect();
        assert_eq!(ms.len(), 3);
        assert_eq!(ms.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(ms[0].kind, MovementKind::Receive);
        assert_eq!(ms[0].lot.as_deref(), Some("LOT1"));
        assert_eq!(ms[0].expiry.as_deref(), Some("2027-12-31"));
        assert_eq!(ms[1].qty, 3);
        assert_eq!(ms[2].kind, MovementKind::Putaway);
        assert_eq!(ms[2].from_location.as_deref(), Some("DOCK-1"));
        assert_eq!(ms[2].to_location.as_deref(), Some("A-01-02"));
        for m in &ms {
            m.validate().unwrap();
        }
        assert!(steps.iter().all(|s| s.decision.is_ok()), "{steps:#?}");
    }

    #[test]
    fn decisions_table() {
        // (scans before, scan, expected decision kind, text fragment)
        let cases: &[(&[&str], &str, &str, &str)] = &[
            (&[], "]C10109506000134352", "rejected", "DH:RECEIVE"),
            (&[], "LOC:A-01", "rejected", "DH:RECEIVE"),
            (
                &["DH:RECEIVE"],
                "LOC:A-01",
                "rejected",
                "receiving goes to DOCK-1",
            ),
            (
                &["DH:RECEIVE"],
                "]C1010950600013435217250101",
                "rejected",
                "expired",
            ),
            (
                &["DH:RECEIVE"],
                "]C100106141411234567897",
                "rejected",
                "pallet",
            ),
            (&["DH:PUTAWAY"], "LOC:A-01", "rejected", "scan an item"),
            (
                &["DH:PUTAWAY", "]C10109506000134352"],
                "]C10109506000134352",
                "rejected",
                "scan a location",
            ),
            (
                &["DH:PUTAWAY", "]C10109506000134352"],
                "LOC:DOCK-1",
                "rejected",
                "receiving location",
            ),
            (
                &["DH:PUTAWAY", "]C10109506000134352"],
                "DH:DONE",
                "rejected",
                "waiting",
            ),
            (
                &["DH:PUTAWAY", "]C10109506000134352"],
                "DH:CANCEL",
                "prompt",
                "cancelled",
            ),
            (
                &["DH:RECEIVE", "DH:QTY:2"],
                "]C1010950600013435221SER1",
                "rejected",
                "serialised",
            ),
            (&[], "DH:PICK:PL-1", "rejected", "not available"),
            (&[], "DH:OP:anna", "prompt", "anna"),
            (&[], "hello world", "rejected", ""),
            (
                &["DH:RECEIVE"],
                "]C10109506000134353",
                "rejected",
                "check digit",
            ),
        ];
        for (before, scan, kind, fragment) in cases {
            let mut wf = wf();
            run(&mut wf, before);
            let state_before = wf.state().clone();
            let step = wf.handle(input(scan), AT);
            let got = match &step.decision {
                Decision::Accepted { .. } => "accepted",
                Decision::Prompt { .. } => "prompt",
                Decision::Rejected { .. } => "rejected",
            };
            assert_eq!(got, *kind, "{before:?} then {scan}: {:?}", step.decision);
            assert!(
                step.decision.text().contains(fragment),
                "{scan}: {:?}",
                step.decision
            );
            if *kind == "rejected" {
                assert!(step.movements.is_empty());
                assert!(step.state.is_none());
                assert_eq!(wf.state(), &state_before, "a rejection changes nothing");
            }
        }
    }

    #[test]
    fn state_snapshot_restores_the_workflow() {
        let mut a = wf();
        let steps = run(
            &mut a,
            &["DH:OP:anna", "DH:PUTAWAY", "]C1010950600013435210L9"],
        );
        let snap = steps.iter().rev().find_map(|s| s.state.clone()).unwrap();
        let mut b = Workflow::new(
            "hh-01",
            "DOCK-1",
            Workflow::decode_state(&snap),
            a.next_seq(),
        );
        let step = b.handle(input("LOC:B-02"), AT);
        assert_eq!(step.movements.len(), 1);
        assert_eq!(step.movements[0].lot.as_deref(), Some("L9"));
        assert_eq!(step.movements[0].operator.as_deref(), Some("anna"));
        assert_eq!(Workflow::decode_state(b"garbage"), State::default());
    }
}
