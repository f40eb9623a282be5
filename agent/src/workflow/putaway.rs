//! Put-away: `DH:PUTAWAY`, then an item (or an announced pallet), then its destination location, DESIGN §6.
//!
//! - The item passes the engine's checks; expiry is not checked here: the goods are already on site and must be
//!   stored somewhere (receipt and picking refuse expired goods).
//! - An SSCC puts away a whole pallet as an open ASN on the device announces it: one movement per pallet line, with
//!   `sscc` set (and no `reference`: the receipt named the ASN already).
//! - The prompt after the item suggests where it went last (`MasterData::last_location`).
//! - The destination makes one `putaway` movement per line from the receiving location to it; the receiving
//!   location itself is refused, and so is a location before any item.
//! - After each put-away the mode waits for the next item; `DH:DONE` ends it (not while an item waits).

use dockhand_protocol::sync::{Movement, MovementKind};
use serde::{Deserialize, Serialize};

use super::{
    accepted, describe, prompt, reject, units, Ctx, MasterData, Mode, Outcome, PendingItem,
    Scanned, Workflow,
};

/// A put-away in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Putaway {
    /// The item scanned and waiting for its location.
    #[serde(default)]
    pub pending: Option<PendingItem>,
    /// Or the pallet scanned and waiting for its location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pallet: Option<PendingPallet>,
}

/// A pallet waiting for its location, with its contents as its ASN announced them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPallet {
    /// SSCC-18.
    pub sscc: String,
    /// The ASN that announced it.
    pub asn: String,
    /// Its lines.
    pub lines: Vec<PendingItem>,
}

impl Putaway {
    /// `DH:PUTAWAY`.
    pub(super) fn start() -> (Mode, super::Decision) {
        (
            Mode::Putaway(Putaway::default()),
            prompt("put-away: scan an item or pallet"),
        )
    }

    /// What waits for a location, for messages.
    fn waiting(&self) -> Option<String> {
        match (&self.pending, &self.pallet) {
            (Some(p), _) => Some(describe(&p.gtin, &p.lot, p.qty)),
            (None, Some(p)) => Some(format!(
                "pallet {} ({} lines, {} units)",
                p.sscc,
                p.lines.len(),
                units(&p.lines)
            )),
            (None, None) => None,
        }
    }

    pub(super) fn scan(mut self, wf: &mut Workflow, cx: &mut Ctx<'_>, s: Scanned) -> Outcome {
        let dock = wf.receiving_location.clone();
        if let Some(what) = self.waiting() {
            let Scanned::Location { code } = s else {
                return Err(reject(format!(
                    "scan a location for {what} first, or DH:CANCEL; {}",
                    s.got()
                )));
            };
            if code == dock {
                return Err(reject(format!(
                    "{code} is the receiving location; scan the storage location for {what}"
                )));
            }
            let (lines, sscc) = match (self.pending.take(), self.pallet.take()) {
                (Some(p), _) => (vec![p], None),
                (None, Some(p)) => (p.lines, Some(p.sscc)),
                (None, None) => (Vec::new(), None),
            };
            let mut seqs = Vec::with_capacity(lines.len());
            for p in &lines {
                let m = Movement {
                    from_location: Some(dock.clone()),
                    to_location: Some(code.clone()),
                    sscc: sscc.clone(),
                    ..wf.movement_of(MovementKind::Putaway, cx.at, p)
                };
                seqs.push(wf.emit(cx, m));
            }
            let message = format!("put away {what} to {code}");
            return Ok((Mode::Putaway(self), accepted(seqs, &message, "")));
        }
        match s {
            Scanned::Location { code } => {
                Err(reject(format!("scan an item before the location {code}")))
            }
            Scanned::Item(it) => {
                Workflow::check_item(cx.md, &it, false)?;
                let qty = wf.take_qty(&it)?;
                let p = it.pending(qty);
                let message = format!(
                    "{}: scan the destination location{}",
                    describe(&p.gtin, &p.lot, qty),
                    suggestion(cx.md, &p.gtin, &dock)
                );
                self.pending = Some(p);
                Ok((Mode::Putaway(self), prompt(message)))
            }
            Scanned::Pallet { sscc, source } => {
                if let Some(n) = wf.state.qty_next {
                    return Err(reject(format!(
                        "a pallet is put away whole, but DH:QTY:{n} is waiting for an item: scan the item it \
                         was for, or DH:CANCEL; got pallet {sscc}"
                    )));
                }
                let Some(asn) = cx.md.asn_for_pallet(&sscc) else {
                    return Err(reject(format!(
                        "pallet {sscc} is not announced on any open ASN on this device: scan its items"
                    )));
                };
                let lines: Vec<PendingItem> = asn
                    .pallets
                    .iter()
                    .filter(|p| p.sscc == sscc)
                    .flat_map(|p| p.lines.iter().filter(|l| l.qty > 0))
                    .map(|l| PendingItem {
                        gtin: l.gtin.clone(),
                        lot: l.lot.clone(),
                        expiry: None,
                        serials: Vec::new(),
                        qty: l.qty,
                        source: source.clone(),
                    })
                    .collect();
                let Some(first) = lines.first() else {
                    return Err(reject(format!(
                        "pallet {sscc} has no contents on ASN {}: scan its items",
                        asn.id
                    )));
                };
                let hint = suggestion(cx.md, &first.gtin, &dock);
                self.pallet = Some(PendingPallet {
                    sscc,
                    asn: asn.id,
                    lines,
                });
                let what = self.waiting().unwrap_or_default();
                let message = format!("{what}: scan the destination location{hint}");
                Ok((Mode::Putaway(self), prompt(message)))
            }
        }
    }

    /// `DH:DONE`: not while something waits for its location.
    pub(super) fn done(self) -> Outcome {
        if let Some(busy) = self.busy() {
            return Err(reject(busy));
        }
        Ok((Mode::Idle, prompt("put-away done")))
    }

    pub(super) fn cancel(self, dock: &str) -> String {
        match self.waiting() {
            Some(what) => format!("cancelled: {what} was not put away; it stays at {dock}"),
            None => "cancelled".to_string(),
        }
    }

    pub(super) fn busy(&self) -> Option<String> {
        if self.pending.is_some() {
            return Some(
                "an item is waiting for its location: scan a location, or DH:CANCEL".into(),
            );
        }
        self.pallet.as_ref().map(|p| {
            format!(
                "pallet {} is waiting for its location: scan a location, or DH:CANCEL",
                p.sscc
            )
        })
    }

    pub(super) fn task(&self, wf: &Workflow, md: &dyn MasterData) -> String {
        let first = self
            .pending
            .as_ref()
            .or(self.pallet.as_ref().and_then(|p| p.lines.first()));
        match (self.waiting(), first) {
            (Some(what), Some(p)) => format!(
                "Put away {what}: scan the destination{}",
                suggestion(md, &p.gtin, &wf.receiving_location)
            ),
            _ => "Put-away: scan an item or pallet".to_string(),
        }
    }
}

/// " (suggested A-01-02)" when the item last went somewhere other than the dock.
fn suggestion(md: &dyn MasterData, gtin: &str, dock: &str) -> String {
    md.last_location(gtin)
        .filter(|l| l != dock)
        .map(|l| format!(" (suggested {l})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_table, master, Row};

    #[test]
    #[rustfmt::skip]
    fn putaway_table() {
        const P: &str = "]C100106141411234567897";
        let rows: &[Row<'_>] = &[
            (&["DH:PUTAWAY"], "prompt", "put-away: scan an item or pallet", &[]),
            (&["DH:PUTAWAY", "LOC:A-01-02"], "rejected", "scan an item before the location A-01-02", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457"], "prompt", "1 × 05901234123457: scan the destination location (suggested B-04-01)", &[]),
            (&["DH:PUTAWAY", "]C1010950600013435210L1"], "prompt", "1 × 09506000134352 lot L1: scan the destination location", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457", "LOC:C-02-03"], "accepted", "put away 1 × 05901234123457 to C-02-03 (seq 1)",
                &["putaway 1 05901234123457 from=DOCK-1 to=C-02-03"]),
            (&["DH:PUTAWAY", "DH:QTY:3", "]C1010950600013435210L1", "LOC:B-04-01"], "accepted", "put away 3 × 09506000134352 lot L1 to B-04-01",
                &["putaway 3 09506000134352 lot=L1 from=DOCK-1 to=B-04-01"]),
            (&["DH:PUTAWAY", "]C10105901234123457", "LOC:DOCK-1"], "rejected", "DOCK-1 is the receiving location; scan the storage location for 1 × 05901234123457", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457", "]C10105901234123457"], "rejected", "scan a location for 1 × 05901234123457 first, or DH:CANCEL; got item 05901234123457", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457", P], "rejected", "scan a location for 1 × 05901234123457 first", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457", "DH:DONE"], "rejected", "an item is waiting for its location", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457", "DH:PUTAWAY"], "rejected", "an item is waiting for its location", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457", "DH:CANCEL"], "prompt", "cancelled: 1 × 05901234123457 was not put away; it stays at DOCK-1", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457", "LOC:C-02-03", "]C10105901234123457"], "prompt", "scan the destination location", &[]),
            (&["DH:PUTAWAY", "]C10105901234123457", "LOC:C-02-03", "DH:DONE"], "prompt", "put-away done", &[]),
            // Expired goods already on site are stored; receipt and picking refuse them.
            (&["DH:PUTAWAY", "]C101040063813339311725010110L5", "LOC:C-02-03"], "accepted", "put away",
                &["putaway 1 04006381333931 lot=L5 from=DOCK-1 to=C-02-03"]),
            // A pallet an open ASN announces: its lines, with the SSCC and the ASN.
            (&["DH:PUTAWAY", P], "prompt", "pallet 106141411234567897 (2 lines, 24 units): scan the destination location", &[]),
            (&["DH:PUTAWAY", P, "LOC:A-01-02"], "accepted", "put away pallet 106141411234567897 (2 lines, 24 units) to A-01-02 (seqs 1–2)",
                &["putaway 20 09506000134352 lot=P1 from=DOCK-1 to=A-01-02 sscc=106141411234567897",
                  "putaway 4 05901234123457 from=DOCK-1 to=A-01-02 sscc=106141411234567897"]),
            (&["DH:PUTAWAY", P, "DH:DONE"], "rejected", "pallet 106141411234567897 is waiting for its location", &[]),
            (&["DH:PUTAWAY", "]C100106141411234567903"], "rejected", "pallet 106141411234567903 is not announced on any open ASN", &[]),
            (&["DH:PUTAWAY", "DH:QTY:2", P], "rejected", "DH:QTY:2 is waiting for an item", &[]),
        ];
        check_table(&master(), rows);
    }
}
