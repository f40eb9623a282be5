//! Cycle counts: `DH:COUNT`, a location, every item there, then `DH:DONE`, DESIGN §6.
//!
//! - Items pass the engine's checks; expired goods are counted like any other (they are on the shelf). Scans of the
//!   same GTIN and lot add up; a serial scanned twice is refused.
//! - `DH:DONE` records one `count` movement per counted GTIN and lot with the counted quantity at `to_location` =
//!   the location, plus a count of 0 for each GTIN and lot the device believes is there (`MasterData::items_at`)
//!   but that was not scanned: counted zero is a counted quantity. The device never sends a difference; the server
//!   compares counts with its book. All movements of one count share `reference` = `COUNT-<device>-<first seq>`.
//! - Another location while items are counted is refused ("finish counting … with DH:DONE first"); before any
//!   item it switches the count to that location. After `DH:DONE` the mode waits for the next location, and
//!   `DH:DONE` again ends it. `DH:CANCEL` drops the count: nothing is recorded.

use dockhand_protocol::sync::{Movement, MovementKind, MovementSource};
use serde::{Deserialize, Serialize};

use super::{
    accepted, describe, merge, plural, prompt, reject, units, Ctx, Decision, Mode, Outcome,
    PendingItem, Scanned, Workflow,
};

/// A count in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Count {
    /// The location being counted, once scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// What was counted there, one line per GTIN and lot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<PendingItem>,
}

impl Count {
    /// `DH:COUNT`.
    pub(super) fn start() -> (Mode, Decision) {
        (
            Mode::Counting(Count::default()),
            prompt("count: scan the location"),
        )
    }

    pub(super) fn scan(mut self, wf: &mut Workflow, cx: &mut Ctx<'_>, s: Scanned) -> Outcome {
        match (s, self.location.clone()) {
            (Scanned::Location { code }, Some(loc)) if !self.lines.is_empty() => {
                Err(reject(format!(
                    "finish counting {loc} with DH:DONE first (or DH:CANCEL to drop it); got location {code}"
                )))
            }
            (Scanned::Location { code }, _) => {
                let message = format!("counting {code}: scan every item there, then DH:DONE");
                self.location = Some(code);
                Ok((Mode::Counting(self), prompt(message)))
            }
            (Scanned::Pallet { sscc, .. }, _) => Err(reject(format!(
                "counts go item by item: scan the items on pallet {sscc}"
            ))),
            (other, None) => Err(reject(format!(
                "scan the location to count first; {}",
                other.got()
            ))),
            (Scanned::Item(it), Some(loc)) => {
                Workflow::check_item(cx.md, &it, false)?;
                let qty = wf.take_qty(&it)?;
                let p = it.pending(qty);
                let what = describe(&p.gtin, &p.lot, qty);
                merge(&mut self.lines, p, "in this count")?;
                let message = format!(
                    "counted {what} at {loc} ({} so far); scan the next item, or DH:DONE",
                    plural(units(&self.lines) as usize, "unit")
                );
                Ok((Mode::Counting(self), prompt(message)))
            }
        }
    }

    /// `DH:DONE`: record the count, or end counting when no location is open.
    pub(super) fn done(
        self,
        wf: &mut Workflow,
        cx: &mut Ctx<'_>,
        source: MovementSource,
    ) -> Outcome {
        let Some(loc) = self.location else {
            return Ok((Mode::Idle, prompt("count finished")));
        };
        let reference = format!("COUNT-{}-{}", wf.device_id, wf.next_seq);
        let next = "scan the next location, or DH:DONE";
        let mut seqs = Vec::new();
        for p in &self.lines {
            let m = Movement {
                to_location: Some(loc.clone()),
                reference: Some(reference.clone()),
                ..wf.movement_of(MovementKind::Count, cx.at, p)
            };
            seqs.push(wf.emit(cx, m));
        }
        let mut zero = 0;
        for (gtin, lot) in cx.md.items_at(&loc) {
            if self.lines.iter().any(|l| l.gtin == gtin && l.lot == lot) {
                continue;
            }
            let m = Movement {
                lot,
                qty: 0,
                to_location: Some(loc.clone()),
                reference: Some(reference.clone()),
                ..wf.movement(MovementKind::Count, cx.at, gtin, source.clone())
            };
            seqs.push(wf.emit(cx, m));
            zero += 1;
        }
        let mode = Mode::Counting(Count::default());
        if seqs.is_empty() {
            let message = format!(
                "{loc}: nothing scanned and nothing expected there, nothing to record; {next}"
            );
            return Ok((mode, prompt(message)));
        }
        let mut message = format!(
            "counted {loc}: {}, {}",
            plural(self.lines.len(), "line"),
            plural(units(&self.lines) as usize, "unit")
        );
        if zero > 0 {
            message.push_str(&format!("; {zero} expected there not found (counted 0)"));
        }
        Ok((mode, accepted(seqs, &message, next)))
    }

    pub(super) fn cancel(self) -> String {
        match self.location {
            Some(loc) => format!("cancelled: count of {loc} dropped, nothing recorded"),
            None => "cancelled".to_string(),
        }
    }

    pub(super) fn busy(&self) -> Option<String> {
        let loc = self.location.as_deref().unwrap_or_default();
        (!self.lines.is_empty())
            .then(|| format!("counting {loc}: DH:DONE records the count, DH:CANCEL drops it"))
    }

    pub(super) fn task(&self) -> String {
        match &self.location {
            None => "Count: scan a location".to_string(),
            Some(loc) => format!("Count {loc}: {} units scanned", units(&self.lines)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_table, master, Row};

    /// The device believes A-01-02 holds G1 lot L1 and G2, and B-04-01 holds G2; C-02-03 is empty.
    #[test]
    #[rustfmt::skip]
    fn count_table() {
        let rows: &[Row<'_>] = &[
            (&["DH:COUNT"], "prompt", "count: scan the location", &[]),
            (&["DH:COUNT", "]C10105901234123457"], "rejected", "scan the location to count first; got item 05901234123457", &[]),
            (&["DH:COUNT", "LOC:A-01-02"], "prompt", "counting A-01-02: scan every item there, then DH:DONE", &[]),
            (&["DH:COUNT", "LOC:A-01-02", "LOC:B-04-01"], "prompt", "counting B-04-01", &[]),
            (&["DH:COUNT", "LOC:A-01-02", "]C10105901234123457"], "prompt", "counted 1 × 05901234123457 at A-01-02 (1 unit so far)", &[]),
            (&["DH:COUNT", "LOC:A-01-02", "]C10105901234123457", "LOC:B-04-01"], "rejected",
                "finish counting A-01-02 with DH:DONE first (or DH:CANCEL to drop it); got location B-04-01", &[]),
            (&["DH:COUNT", "LOC:A-01-02", "]C10105901234123457", "LOC:A-01-02"], "rejected", "finish counting A-01-02 with DH:DONE first", &[]),
            (&["DH:COUNT", "LOC:A-01-02", "]C10105901234123457", "DH:QTY:4", "]C10105901234123457", "DH:DONE"], "accepted",
                "counted A-01-02: 1 line, 5 units; 1 expected there not found (counted 0) (seqs 1–2); scan the next location, or DH:DONE",
                &["count 5 05901234123457 to=A-01-02 ref=COUNT-hh-01-1", "count 0 09506000134352 lot=L1 to=A-01-02 ref=COUNT-hh-01-1"]),
            (&["DH:COUNT", "LOC:A-01-02", "]C1010950600013435210L1", "]C10105901234123457", "DH:DONE"], "accepted", "counted A-01-02: 2 lines, 2 units (seqs 1–2)",
                &["count 1 09506000134352 lot=L1 to=A-01-02 ref=COUNT-hh-01-1", "count 1 05901234123457 to=A-01-02 ref=COUNT-hh-01-1"]),
            // Another lot of the same item is a different line: the expected lot is still counted 0.
            (&["DH:COUNT", "LOC:A-01-02", "]C1010950600013435210L2", "]C10105901234123457", "DH:DONE"], "accepted", "1 expected there not found",
                &["count 1 09506000134352 lot=L2 to=A-01-02 ref=COUNT-hh-01-1", "count 1 05901234123457 to=A-01-02 ref=COUNT-hh-01-1",
                  "count 0 09506000134352 lot=L1 to=A-01-02 ref=COUNT-hh-01-1"]),
            (&["DH:COUNT", "LOC:B-04-01", "DH:DONE"], "accepted", "counted B-04-01: 0 lines, 0 units; 1 expected there not found",
                &["count 0 05901234123457 to=B-04-01 ref=COUNT-hh-01-1"]),
            (&["DH:COUNT", "LOC:C-02-03", "DH:DONE"], "prompt", "C-02-03: nothing scanned and nothing expected there, nothing to record", &[]),
            // The reference names the count's first seq.
            (&["DH:RECEIVE", "]C10105901234123457", "DH:COUNT", "LOC:B-04-01", "]C10105901234123457", "DH:DONE"], "accepted", "counted B-04-01",
                &["count 1 05901234123457 to=B-04-01 ref=COUNT-hh-01-2"]),
            (&["DH:COUNT", "LOC:B-04-01", "DH:DONE", "LOC:A-01-02"], "prompt", "counting A-01-02", &[]),
            (&["DH:COUNT", "LOC:B-04-01", "DH:DONE", "DH:DONE"], "prompt", "count finished", &[]),
            (&["DH:COUNT", "LOC:A-01-02", "]C1010950600013435210L1", "DH:CANCEL"], "prompt", "cancelled: count of A-01-02 dropped, nothing recorded", &[]),
            // Expired goods on the shelf are counted; serials once; lots where the item needs them; no pallets.
            (&["DH:COUNT", "LOC:C-02-03", "]C101040063813339311725010110L5", "DH:DONE"], "accepted", "counted C-02-03",
                &["count 1 04006381333931 lot=L5 to=C-02-03 ref=COUNT-hh-01-1"]),
            (&["DH:COUNT", "LOC:C-02-03", "]C1010001234567890521S1", "]C1010001234567890521S2", "DH:DONE"], "accepted", "1 line, 2 units",
                &["count 2 00012345678905 to=C-02-03 ref=COUNT-hh-01-1 serial=S1,S2"]),
            (&["DH:COUNT", "LOC:C-02-03", "]C1010001234567890521S1", "]C1010001234567890521S1"], "rejected", "serial S1 of 00012345678905 was already scanned in this count", &[]),
            (&["DH:COUNT", "LOC:C-02-03", "]C10109506000134352"], "rejected", "lot required for 09506000134352", &[]),
            (&["DH:COUNT", "LOC:C-02-03", "]C100106141411234567897"], "rejected", "counts go item by item", &[]),
        ];
        check_table(&master(), rows);
    }
}
