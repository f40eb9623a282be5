//! Receiving: `DH:RECEIVE` (blind) or `DH:RECEIVE:<asn>` (against an expected receipt), DESIGN §6.
//!
//! - An ASN must be on the device, not cancelled and not closed: checked when the receipt starts and again on every
//!   scan, because the office may withdraw it while goods come in (the operator then closes the receipt and
//!   receives blind).
//! - Each item scan makes one `receive` movement into the receiving location, `reference` = the ASN. Goods the ASN
//!   does not announce, and units beyond what it announces, are accepted: they are physically here, and refusing
//!   them loses them. The decision says so ("not on ASN-7", "over ASN-7 by 2") and the close report lists them.
//! - Items pass the engine's checks (known, lot/expiry/serial flags), and receipts also refuse inactive items and
//!   expired goods.
//! - An SSCC (AI 00) receives a whole announced pallet: one movement per pallet line with `sscc` set. Against an ASN
//!   the pallet must be on that ASN; in blind receipt an open ASN on the device must announce it and becomes the
//!   reference. A pallet is received once per receipt.
//! - `DH:DONE` closes the receipt. Against an ASN the decision lists short, over and unexpected lines, comparing
//!   per GTIN and, where the ASN line names one, lot: a received lot counts against the line naming it, else against
//!   its GTIN's lot-less line, else it is unexpected. Loose lines and pallet contents are compared together, so
//!   items of a pallet whose label would not scan count against it.

use std::collections::BTreeMap;

use dockhand_protocol::sync::{Asn, DocStatus, Movement, MovementKind, MovementSource};
use serde::{Deserialize, Serialize};

use super::{
    accepted, describe, plural, prompt, reject, Ctx, Decision, Mode, Outcome, Scanned, Workflow,
};

/// A receipt in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Receipt {
    /// The ASN received against; `None` for a blind receipt.
    pub asn: Option<String>,
    /// What was received against the ASN, per GTIN and lot as scanned (ASN receipts only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub received: Vec<Received>,
    /// Pallets (SSCC) received in this receipt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pallets: Vec<String>,
}

/// Units of one GTIN and lot received against an ASN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// GTIN-14.
    pub gtin: String,
    /// Lot as scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Units.
    pub qty: u64,
}

/// An ASN line: GTIN and the lot it names.
type Key = (String, Option<String>);

/// What an ASN announces, loose lines and pallet contents together, per GTIN and lot.
fn expected(asn: &Asn) -> BTreeMap<Key, u64> {
    let mut exp = BTreeMap::new();
    let pallet_lines = asn.pallets.iter().flat_map(|p| &p.lines);
    for l in asn.lines.iter().chain(pallet_lines) {
        *exp.entry((l.gtin.clone(), l.lot.clone())).or_insert(0) += l.qty;
    }
    exp
}

/// The ASN line a received GTIN and lot counts against: the line naming its lot, else the GTIN's lot-less line.
fn line_for<'a>(exp: &'a BTreeMap<Key, u64>, gtin: &str, lot: Option<&str>) -> Option<&'a Key> {
    let exact = lot.and_then(|l| exp.get_key_value(&(gtin.to_string(), Some(l.to_string()))));
    exact
        .or_else(|| exp.get_key_value(&(gtin.to_string(), None)))
        .map(|(k, _)| k)
}

/// At most five entries, then how many more.
fn listing(mut entries: Vec<String>) -> String {
    const SHOWN: usize = 5;
    let more = entries.len().saturating_sub(SHOWN);
    entries.truncate(SHOWN);
    let mut s = entries.join(", ");
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}

/// The ASN, if it can still be received against. `during`: a receipt is open and must be closed first.
fn receivable(md: &dyn super::MasterData, id: &str, during: bool) -> Result<Asn, Decision> {
    let then = if during {
        "; scan DH:DONE to close this receipt, then DH:RECEIVE to receive the goods blind"
    } else {
        ""
    };
    match md.asn(id) {
        None if during => Err(reject(format!(
            "ASN {id} is no longer on this device{then}"
        ))),
        None => Err(reject(format!(
            "unknown ASN {id}: not on this device yet, sync and retry"
        ))),
        Some(a) if a.status == DocStatus::Cancelled => Err(reject(format!(
            "ASN {id} was cancelled at the office{then}"
        ))),
        Some(a) if a.status == DocStatus::Closed => {
            Err(reject(format!("ASN {id} was closed at the office{then}")))
        }
        Some(a) => Ok(a),
    }
}

impl Receipt {
    /// `DH:RECEIVE[:<asn>]`.
    pub(super) fn start(wf: &mut Workflow, cx: &Ctx<'_>, asn: Option<String>) -> Outcome {
        let dock = &wf.receiving_location;
        let Some(id) = asn else {
            let message = format!("receiving into {dock}: scan items");
            return Ok((Mode::Receiving(Receipt::default()), prompt(message)));
        };
        let a = receivable(cx.md, &id, false)?;
        let units: u64 = expected(&a).values().sum();
        let message = format!(
            "receiving {id} into {dock}: {units} units expected on {} and {}; scan items or pallets",
            plural(a.lines.len(), "line"),
            plural(a.pallets.len(), "pallet")
        );
        let receipt = Receipt {
            asn: Some(id),
            ..Receipt::default()
        };
        Ok((Mode::Receiving(receipt), prompt(message)))
    }

    pub(super) fn scan(mut self, wf: &mut Workflow, cx: &mut Ctx<'_>, s: Scanned) -> Outcome {
        let dock = wf.receiving_location.clone();
        let it = match s {
            Scanned::Location { code } => {
                return Err(reject(format!(
                    "receiving goes to {dock}; scan DH:PUTAWAY to store goods at {code}"
                )))
            }
            Scanned::Pallet { sscc, source } => return self.pallet(wf, cx, sscc, source),
            Scanned::Item(it) => it,
        };
        Workflow::check_item(cx.md, &it, true)?;
        Workflow::check_expiry(&it, cx.at)?;
        let qty = wf.take_qty(&it)?;
        let note = match &self.asn {
            Some(id) => {
                let asn = receivable(cx.md, id, true)?;
                let note = self.note(&asn, &it.gtin, it.lot.as_deref(), qty);
                self.add(&it.gtin, &it.lot, qty);
                note
            }
            None => String::new(),
        };
        let p = it.pending(qty);
        let m = Movement {
            to_location: Some(dock.clone()),
            reference: self.asn.clone(),
            ..wf.movement_of(MovementKind::Receive, cx.at, &p)
        };
        let seq = wf.emit(cx, m);
        let message = format!(
            "received {} into {dock}{note}",
            describe(&p.gtin, &p.lot, qty)
        );
        Ok((Mode::Receiving(self), accepted(vec![seq], &message, "")))
    }

    /// An SSCC: the whole pallet as its ASN announces it.
    fn pallet(
        mut self,
        wf: &mut Workflow,
        cx: &mut Ctx<'_>,
        sscc: String,
        source: MovementSource,
    ) -> Outcome {
        if let Some(n) = wf.state.qty_next {
            return Err(reject(format!(
                "a pallet is received whole as announced, but DH:QTY:{n} is waiting for an item: scan the item \
                 it was for, or DH:CANCEL; got pallet {sscc}"
            )));
        }
        if self.pallets.contains(&sscc) {
            return Err(reject(format!(
                "pallet {sscc} was already received in this receipt"
            )));
        }
        let asn = match &self.asn {
            Some(id) => {
                let a = receivable(cx.md, id, true)?;
                if !a.pallets.iter().any(|p| p.sscc == sscc) {
                    return Err(reject(format!(
                        "pallet {sscc} is not on ASN {id}: scan its items"
                    )));
                }
                a
            }
            None => cx.md.asn_for_pallet(&sscc).ok_or_else(|| {
                reject(format!(
                    "pallet {sscc} is not announced on any open ASN on this device: scan its items \
                     (or sync and retry)"
                ))
            })?,
        };
        let lines: Vec<_> = asn
            .pallets
            .iter()
            .filter(|p| p.sscc == sscc)
            .flat_map(|p| p.lines.iter().filter(|l| l.qty > 0))
            .cloned()
            .collect();
        if lines.is_empty() {
            return Err(reject(format!(
                "pallet {sscc} has no contents on ASN {}: scan its items",
                asn.id
            )));
        }
        let dock = wf.receiving_location.clone();
        let mut seqs = Vec::with_capacity(lines.len());
        for l in &lines {
            let m = Movement {
                lot: l.lot.clone(),
                qty: l.qty,
                to_location: Some(dock.clone()),
                sscc: Some(sscc.clone()),
                reference: Some(asn.id.clone()),
                ..wf.movement(MovementKind::Receive, cx.at, l.gtin.clone(), source.clone())
            };
            seqs.push(wf.emit(cx, m));
            if self.asn.is_some() {
                self.add(&l.gtin, &l.lot, l.qty);
            }
        }
        let units: u64 = lines.iter().map(|l| l.qty).sum();
        let message = format!(
            "received pallet {sscc} of {}: {}, {units} units into {dock}",
            asn.id,
            plural(lines.len(), "line")
        );
        self.pallets.push(sscc);
        Ok((Mode::Receiving(self), accepted(seqs, &message, "")))
    }

    /// How a scan stands against the ASN, as a suffix for the decision.
    fn note(&self, asn: &Asn, gtin: &str, lot: Option<&str>, qty: u64) -> String {
        let id = &asn.id;
        let exp = expected(asn);
        let Some(key) = line_for(&exp, gtin, lot) else {
            let lots: Vec<&str> = exp
                .keys()
                .filter(|(g, _)| g == gtin)
                .filter_map(|(_, l)| l.as_deref())
                .collect();
            return match (lots.is_empty(), lot) {
                (true, _) => format!(", not on {id}"),
                (false, Some(l)) => {
                    format!(
                        ", lot {l} not on {id} (it announces lot {})",
                        lots.join(", ")
                    )
                }
                (false, None) => format!(
                    ", without lot: not on {id} (it announces lot {})",
                    lots.join(", ")
                ),
            };
        };
        let want = exp[key];
        let after = self.got(&exp, key) + qty;
        if after > want {
            format!(", over {id} by {}", after - want)
        } else {
            format!(", {after} of {want} on {id}")
        }
    }

    /// Units received so far against one ASN line.
    fn got(&self, exp: &BTreeMap<Key, u64>, key: &Key) -> u64 {
        self.received
            .iter()
            .filter(|r| line_for(exp, &r.gtin, r.lot.as_deref()) == Some(key))
            .map(|r| r.qty)
            .sum()
    }

    fn add(&mut self, gtin: &str, lot: &Option<String>, qty: u64) {
        match self
            .received
            .iter_mut()
            .find(|r| r.gtin == gtin && r.lot == *lot)
        {
            Some(r) => r.qty += qty,
            None => self.received.push(Received {
                gtin: gtin.to_string(),
                lot: lot.clone(),
                qty,
            }),
        }
    }

    fn units(&self) -> u64 {
        self.received.iter().map(|r| r.qty).sum()
    }

    /// The close report: short, over and unexpected lines against the ASN.
    fn report(&self, asn: &Asn) -> String {
        let id = &asn.id;
        let exp = expected(asn);
        let mut got: BTreeMap<&Key, u64> = BTreeMap::new();
        let mut unexpected = Vec::new();
        for r in &self.received {
            match line_for(&exp, &r.gtin, r.lot.as_deref()) {
                Some(k) => *got.entry(k).or_insert(0) += r.qty,
                None => unexpected.push(describe(&r.gtin, &r.lot, r.qty)),
            }
        }
        let (mut short, mut over) = (Vec::new(), Vec::new());
        for (k, &want) in &exp {
            let have = got.get(k).copied().unwrap_or(0);
            if have < want {
                short.push(describe(&k.0, &k.1, want - have));
            } else if have > want {
                over.push(describe(&k.0, &k.1, have - want));
            }
        }
        let want: u64 = exp.values().sum();
        if short.is_empty() && over.is_empty() && unexpected.is_empty() {
            return format!("closed receipt of {id}: all {want} units as announced");
        }
        let mut parts = vec![format!(
            "closed receipt of {id}: {} received, {want} announced",
            plural(self.units() as usize, "unit")
        )];
        for (name, entries) in [
            ("short".to_string(), short),
            ("over".to_string(), over),
            (format!("not on {id}"), unexpected),
        ] {
            if !entries.is_empty() {
                parts.push(format!("{name}: {}", listing(entries)));
            }
        }
        parts.join("; ")
    }

    /// `DH:DONE`: close the receipt (with its report against the ASN).
    pub(super) fn done(self, wf: &Workflow, cx: &Ctx<'_>) -> Outcome {
        let message = match &self.asn {
            None => format!("receiving into {} finished", wf.receiving_location),
            Some(id) => match cx.md.asn(id) {
                Some(asn) => self.report(&asn),
                None => format!(
                    "closed receipt of {id}: {} received; the ASN is no longer on this device, nothing to \
                     compare",
                    plural(self.units() as usize, "unit")
                ),
            },
        };
        Ok((Mode::Idle, prompt(message)))
    }

    pub(super) fn cancel(self) -> String {
        match &self.asn {
            Some(id) => format!(
                "cancelled: receipt of {id} left without a close report; what was received ({}) stays recorded",
                plural(self.units() as usize, "unit")
            ),
            None => "cancelled: receiving stopped".to_string(),
        }
    }

    pub(super) fn busy(&self) -> Option<String> {
        self.asn.as_ref().map(|id| {
            format!("you are receiving {id}: DH:DONE closes the receipt, DH:CANCEL leaves it")
        })
    }

    pub(super) fn task(&self, wf: &Workflow, md: &dyn super::MasterData) -> String {
        let dock = &wf.receiving_location;
        match &self.asn {
            None => format!("Receiving into {dock}: scan items"),
            Some(id) => match md.asn(id) {
                Some(asn) => format!(
                    "Receiving {id} into {dock}: {} of {} units",
                    self.units(),
                    expected(&asn).values().sum::<u64>()
                ),
                None => format!("Receiving {id} into {dock}: {} units", self.units()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_table, master, run_full, Row, DEVICE, DOCK};
    use super::super::State;
    use super::*;

    /// ASN-7 announces G2 × 10, G1 lot L1 × 5 and pallet 106141411234567897 (G1 lot P1 × 20, G2 × 4): 39 units.
    #[test]
    #[rustfmt::skip]
    fn receive_table() {
        const P: &str = "]C100106141411234567897";
        const P_MORE: &[&str] = &["receive 20 09506000134352 lot=P1 to=DOCK-1 sscc=106141411234567897 ref=ASN-7",
            "receive 4 05901234123457 to=DOCK-1 sscc=106141411234567897 ref=ASN-7"];
        let rows: &[Row<'_>] = &[
            (&["DH:RECEIVE"], "prompt", "receiving into DOCK-1: scan items", &[]),
            (&["DH:RECEIVE:ASN-7"], "prompt", "receiving ASN-7 into DOCK-1: 39 units expected on 2 lines and 1 pallet", &[]),
            (&["DH:RECEIVE:ASN-9"], "rejected", "unknown ASN ASN-9: not on this device yet, sync and retry", &[]),
            (&["DH:RECEIVE:ASN-C"], "rejected", "ASN ASN-C was cancelled at the office", &[]),
            (&["DH:RECEIVE:ASN-X"], "rejected", "ASN ASN-X was closed at the office", &[]),
            (&["DH:RECEIVE", "DH:RECEIVE:ASN-7"], "prompt", "receiving ASN-7", &[]),
            (&["DH:RECEIVE", "]C10105901234123457"], "accepted", "received 1 × 05901234123457 into DOCK-1 (seq 1)",
                &["receive 1 05901234123457 to=DOCK-1"]),
            (&["DH:RECEIVE:ASN-7", "]C10105901234123457"], "accepted", "into DOCK-1, 1 of 14 on ASN-7 (seq 1)",
                &["receive 1 05901234123457 to=DOCK-1 ref=ASN-7"]),
            (&["DH:RECEIVE:ASN-7", "DH:QTY:16", "]C10105901234123457"], "accepted", "received 16 × 05901234123457 into DOCK-1, over ASN-7 by 2",
                &["receive 16 05901234123457 to=DOCK-1 ref=ASN-7"]),
            (&["DH:RECEIVE:ASN-7", "DH:QTY:14", "]C10105901234123457", "]C10105901234123457"], "accepted", "over ASN-7 by 1",
                &["receive 1 05901234123457 to=DOCK-1 ref=ASN-7"]),
            (&["DH:RECEIVE:ASN-7", "]C1010950600013435210L1"], "accepted", "1 of 5 on ASN-7",
                &["receive 1 09506000134352 lot=L1 to=DOCK-1 ref=ASN-7"]),
            (&["DH:RECEIVE:ASN-7", "]C1010950600013435210ZZ"], "accepted", "lot ZZ not on ASN-7 (it announces lot L1, P1)",
                &["receive 1 09506000134352 lot=ZZ to=DOCK-1 ref=ASN-7"]),
            (&["DH:RECEIVE:ASN-7", "]C101040063813339311727123110L5"], "accepted", "received 1 × 04006381333931 lot L5 into DOCK-1, not on ASN-7",
                &["receive 1 04006381333931 lot=L5 to=DOCK-1 ref=ASN-7"]),
            (&["DH:RECEIVE:ASN-7", "]C101040063813339311725010110L5"], "rejected", "expired: 04006381333931 lot L5 expired on 2025-01-01", &[]),
            (&["DH:RECEIVE", "]C10109506000134369"], "rejected", "item 09506000134369 (Old widget) is inactive", &[]),
            (&["DH:RECEIVE", "LOC:A-01-02"], "rejected", "receiving goes to DOCK-1; scan DH:PUTAWAY to store goods at A-01-02", &[]),
            // Pallets: announced, twice, not on this ASN, blind via any open ASN, with a DH:QTY waiting.
            (&["DH:RECEIVE:ASN-7", P], "accepted", "received pallet 106141411234567897 of ASN-7: 2 lines, 24 units into DOCK-1 (seqs 1–2)", P_MORE),
            (&["DH:RECEIVE:ASN-7", P, P], "rejected", "pallet 106141411234567897 was already received in this receipt", &[]),
            (&["DH:RECEIVE:ASN-7", "]C100106141411234567903"], "rejected", "pallet 106141411234567903 is not on ASN ASN-7: scan its items", &[]),
            (&["DH:RECEIVE", P], "accepted", "received pallet 106141411234567897 of ASN-7", P_MORE),
            (&["DH:RECEIVE", P, P], "rejected", "already received", &[]),
            (&["DH:RECEIVE", "]C100106141411234567903"], "rejected", "pallet 106141411234567903 is not announced on any open ASN on this device: scan its items", &[]),
            (&["DH:RECEIVE:ASN-7", "DH:QTY:3", P], "rejected", "DH:QTY:3 is waiting for an item", &[]),
            // Closing: blind, as announced, with short/over/unexpected lines; cancelling.
            (&["DH:RECEIVE", "]C10105901234123457", "DH:DONE"], "prompt", "receiving into DOCK-1 finished", &[]),
            (&["DH:RECEIVE:ASN-7", P, "DH:QTY:10", "]C10105901234123457", "DH:QTY:5", "]C1010950600013435210L1", "DH:DONE"],
                "prompt", "closed receipt of ASN-7: all 39 units as announced", &[]),
            (&["DH:RECEIVE:ASN-7", "DH:QTY:16", "]C10105901234123457", "]C1010950600013435210ZZ", "DH:DONE"], "prompt",
                "closed receipt of ASN-7: 17 units received, 39 announced; short: 5 × 09506000134352 lot L1, 20 × 09506000134352 lot P1; \
                 over: 2 × 05901234123457; not on ASN-7: 1 × 09506000134352 lot ZZ", &[]),
            (&["DH:RECEIVE:ASN-7", "DH:DONE", "]C10105901234123457"], "rejected", "scan a command first", &[]),
            (&["DH:RECEIVE:ASN-7", "]C10105901234123457", "DH:CANCEL"], "prompt",
                "cancelled: receipt of ASN-7 left without a close report; what was received (1 unit) stays recorded", &[]),
        ];
        check_table(&master(), rows);
    }

    /// The office cancels the ASN while goods come in: further scans are refused with what to do; the receipt
    /// can still be closed with its report.
    #[test]
    fn asn_cancelled_during_the_receipt() {
        let mut md = master();
        let mut wf = Workflow::new(DEVICE, DOCK, State::default(), 1);
        for s in ["DH:RECEIVE:ASN-7", "]C10105901234123457"] {
            assert!(run_full(&mut wf, &md, s).0.is_ok());
        }
        md.asns.get_mut("ASN-7").unwrap().status = DocStatus::Cancelled;
        let (d, _) = run_full(&mut wf, &md, "]C10105901234123457");
        assert_eq!(
            d.text(),
            "ASN ASN-7 was cancelled at the office; scan DH:DONE to close this receipt, then DH:RECEIVE to \
             receive the goods blind"
        );
        let (d, _) = run_full(&mut wf, &md, "]C100106141411234567897");
        assert!(d.text().contains("was cancelled"), "{d:?}");
        let (d, _) = run_full(&mut wf, &md, "DH:DONE");
        assert!(d.text().contains("1 unit received, 39 announced"), "{d:?}");
        let (d, m) = run_full(&mut wf, &md, "]C10105901234123457");
        assert!(!d.is_ok() && m.is_empty());
    }
}
