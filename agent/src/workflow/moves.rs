//! Moves: `DH:MOVE`, the source location, the items (accumulated), the destination location, DESIGN §6.
//!
//! - The source comes first: an item before it is refused. A second, different location before any item is
//!   refused too (it is most likely a destination scanned too early); the same one again re-prompts.
//! - Items pass the engine's checks and expired goods are refused (a move re-stores goods; expired ones go to
//!   the office's process, not to another shelf). Scans of the same GTIN and lot add up to one line; a serial
//!   scanned twice is refused.
//! - The destination makes one `move` movement per line from source to destination; the source itself is
//!   refused. The mode then waits for the next source; `DH:DONE` ends it (not while items wait).

use dockhand_protocol::sync::{Movement, MovementKind};
use serde::{Deserialize, Serialize};

use super::{
    accepted, describe, merge, plural, prompt, reject, units, Ctx, Decision, Mode, Outcome,
    PendingItem, Scanned, Workflow,
};

/// A move in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Move {
    /// The source location, once scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The items scanned there, one line per GTIN and lot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<PendingItem>,
}

impl Move {
    /// `DH:MOVE`.
    pub(super) fn start() -> (Mode, Decision) {
        (
            Mode::Moving(Move::default()),
            prompt("move: scan the source location"),
        )
    }

    fn so_far(&self) -> String {
        format!(
            "{}, {}",
            plural(self.items.len(), "line"),
            plural(units(&self.items) as usize, "unit")
        )
    }

    pub(super) fn scan(mut self, wf: &mut Workflow, cx: &mut Ctx<'_>, s: Scanned) -> Outcome {
        let Some(from) = self.from.clone() else {
            return match s {
                Scanned::Location { code } => {
                    let message = format!(
                        "moving from {code}: scan the items, then the destination location"
                    );
                    self.from = Some(code);
                    Ok((Mode::Moving(self), prompt(message)))
                }
                other => Err(reject(format!(
                    "scan the source location before the item; {}",
                    other.got()
                ))),
            };
        };
        match s {
            Scanned::Location { code } if self.items.is_empty() => {
                if code == from {
                    let message = format!(
                        "moving from {from}: scan the items, then the destination location"
                    );
                    return Ok((Mode::Moving(self), prompt(message)));
                }
                Err(reject(format!(
                    "scan the items to move from {from} first, or DH:CANCEL to start over; got location {code}"
                )))
            }
            Scanned::Location { code } => {
                if code == from {
                    return Err(reject(format!(
                        "{code} is the source location: scan the destination location"
                    )));
                }
                let mut seqs = Vec::with_capacity(self.items.len());
                for p in &self.items {
                    let m = Movement {
                        from_location: Some(from.clone()),
                        to_location: Some(code.clone()),
                        ..wf.movement_of(MovementKind::Move, cx.at, p)
                    };
                    seqs.push(wf.emit(cx, m));
                }
                let message = format!("moved {} from {from} to {code}", self.so_far());
                Ok((
                    Mode::Moving(Move::default()),
                    accepted(seqs, &message, "scan the next source location, or DH:DONE"),
                ))
            }
            Scanned::Item(it) => {
                Workflow::check_item(cx.md, &it, false)?;
                Workflow::check_expiry(&it, cx.at)?;
                let qty = wf.take_qty(&it)?;
                let p = it.pending(qty);
                let what = describe(&p.gtin, &p.lot, qty);
                merge(&mut self.items, p, "in this move")?;
                let message = format!(
                    "{what} from {from} ({} so far): scan more items or the destination location",
                    self.so_far()
                );
                Ok((Mode::Moving(self), prompt(message)))
            }
            Scanned::Pallet { sscc, .. } => Err(reject(format!(
                "moves go item by item: scan the items on pallet {sscc}"
            ))),
        }
    }

    /// `DH:DONE`: not while items wait for their destination.
    pub(super) fn done(self) -> Outcome {
        if let Some(busy) = self.busy() {
            return Err(reject(busy));
        }
        Ok((Mode::Idle, prompt("moves done")))
    }

    pub(super) fn cancel(self) -> String {
        if self.items.is_empty() {
            "cancelled".to_string()
        } else {
            format!("cancelled: nothing moved ({} dropped)", self.so_far())
        }
    }

    pub(super) fn busy(&self) -> Option<String> {
        let from = self.from.as_deref().unwrap_or_default();
        (!self.items.is_empty()).then(|| {
            format!(
                "{} from {from} {} waiting for the destination: scan a location, or DH:CANCEL",
                plural(self.items.len(), "line"),
                if self.items.len() == 1 { "is" } else { "are" }
            )
        })
    }

    pub(super) fn task(&self) -> String {
        match &self.from {
            None => "Move: scan the source location".to_string(),
            Some(from) if self.items.is_empty() => format!("Move from {from}: scan the items"),
            Some(from) => format!(
                "Move from {from}: {}; scan more items or the destination",
                self.so_far()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_table, master, Row};

    #[test]
    #[rustfmt::skip]
    fn move_table() {
        let rows: &[Row<'_>] = &[
            (&["DH:MOVE"], "prompt", "move: scan the source location", &[]),
            (&["DH:MOVE", "]C10105901234123457"], "rejected", "scan the source location before the item; got item 05901234123457", &[]),
            (&["DH:MOVE", "LOC:A-01-02"], "prompt", "moving from A-01-02: scan the items, then the destination location", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "LOC:A-01-02"], "prompt", "moving from A-01-02", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "LOC:B-04-01"], "rejected", "scan the items to move from A-01-02 first, or DH:CANCEL to start over; got location B-04-01", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "]C10105901234123457"], "prompt", "1 × 05901234123457 from A-01-02 (1 line, 1 unit so far)", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "]C10105901234123457", "LOC:A-01-02"], "rejected", "A-01-02 is the source location: scan the destination location", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "]C10105901234123457", "DH:QTY:2", "]C10105901234123457", "]C1010950600013435210L1", "LOC:C-02-03"], "accepted",
                "moved 2 lines, 4 units from A-01-02 to C-02-03 (seqs 1–2); scan the next source location, or DH:DONE",
                &["move 3 05901234123457 from=A-01-02 to=C-02-03", "move 1 09506000134352 lot=L1 from=A-01-02 to=C-02-03"]),
            (&["DH:MOVE", "LOC:A-01-02", "]C1010001234567890521S1", "]C1010001234567890521S2", "LOC:B-04-01"], "accepted", "moved 1 line, 2 units",
                &["move 2 00012345678905 from=A-01-02 to=B-04-01 serial=S1,S2"]),
            (&["DH:MOVE", "LOC:A-01-02", "]C1010001234567890521S1", "]C1010001234567890521S1"], "rejected", "serial S1 of 00012345678905 was already scanned in this move", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "]C1010950600013435217250101^]10L1"], "rejected", "expired: 09506000134352 lot L1 expired on 2025-01-01", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "]C1010950600013435210L1", "LOC:Z-99"], "rejected", "unknown location Z-99", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "]C100106141411234567897"], "rejected", "moves go item by item: scan the items on pallet 106141411234567897", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "]C10105901234123457", "DH:DONE"], "rejected", "1 line from A-01-02 is waiting for the destination", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "]C10105901234123457", "DH:CANCEL"], "prompt", "cancelled: nothing moved (1 line, 1 unit dropped)", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "]C10105901234123457", "LOC:C-02-03", "LOC:B-04-01"], "prompt", "moving from B-04-01", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "]C10105901234123457", "LOC:C-02-03", "]C10105901234123457"], "rejected", "scan the source location before the item", &[]),
            (&["DH:MOVE", "LOC:A-01-02", "DH:DONE"], "prompt", "moves done", &[]),
        ];
        check_table(&master(), rows);
    }
}
