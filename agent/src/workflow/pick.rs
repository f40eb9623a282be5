//! Picking: `DH:PICK:<list>`, then for each line in list order its location, then its items, DESIGN §6.
//!
//! - The list must be on the device, open (not cancelled, not closed at the office), not assigned to another device,
//!   and not already finished on this one.
//! - Per line: the location first ("wrong location: expected …, got …"; an item before it: "scan location … first"),
//!   then item scans: the line's GTIN, the line's lot when it names one, not expired, and no more than the line
//!   still needs ("over-pick"). Each accepted scan makes one `pick` movement from the line's location,
//!   `reference` = the list, lot from the scan (else the line's). A location scan while an item is expected is
//!   refused, except the same location again, which re-prompts.
//! - A complete line moves on to the next unfinished line in list order; if that line is at the same location the
//!   location counts as scanned. After the last line the list is finished and the mode is idle.
//! - `DH:SHORT` (at the line's location) records a `count` of 0 at the line's location for the line's GTIN (lot: the
//!   line's, else the one picked on the line), `reference` = the list: the picker asserts nothing is left there, and
//!   the server's count check flags the book if it disagrees. Then the next line.
//! - The list is read from `MasterData` on every scan. If the office cancels or closes it meanwhile, every pick scan
//!   is refused with "scan DH:CANCEL"; picks already made stay recorded.
//! - `DH:DONE` with open lines is refused; `DH:CANCEL` pauses the list. Progress is kept per list in
//!   [`State::picks`](super::State) (touched lines only, by line number, so an office edit of the list cannot shift
//!   it), and `DH:PICK:<same list>` later resumes at the first unfinished line. Progress of lists that are no longer
//!   open is dropped at the next `DH:PICK`.

use dockhand_protocol::sync::{
    DocStatus, Movement, MovementKind, MovementSource, PickLine, PickList, RejectClass,
};
use serde::{Deserialize, Serialize};

use super::{
    accepted, describe, plural, prompt, reject, reject_as, Ctx, Decision, ItemScan, MasterData,
    Mode, Outcome, Scanned, Workflow, PICKED_MEMORY,
};

/// A pick list being picked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Picking {
    /// The pick list's id.
    pub list: String,
    /// The current line's index in the list.
    pub index: usize,
    /// Whether the current line's location was scanned.
    #[serde(default)]
    pub at_location: bool,
}

/// What was done on one line of a pick list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LineProgress {
    /// Units picked.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub picked: u64,
    /// The lot first picked on the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Short-picked: nothing more will be picked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub short: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn progress<'a>(wf: &'a Workflow, list: &str, line: &PickLine) -> Option<&'a LineProgress> {
    wf.state.picks.get(list)?.get(&line.line)
}

fn finished(line: &PickLine, p: Option<&LineProgress>) -> bool {
    p.is_some_and(|p| p.short || p.picked >= line.qty)
}

/// Whether a line was picked complete: such lines leave `picks` for the compact `picks_done` ranges, so the state
/// snapshot journaled with every scan stays a few bytes per list instead of growing with the lines picked.
fn done(wf: &Workflow, list: &str, line: u32) -> bool {
    wf.state
        .picks_done
        .get(list)
        .is_some_and(|r| r.iter().any(|&(a, b)| a <= line && line <= b))
}

fn line_finished(wf: &Workflow, list: &str, line: &PickLine) -> bool {
    done(wf, list, line.line) || finished(line, progress(wf, list, line))
}

/// Moves a complete line from `picks` into the ranges of `picks_done`, merging neighbours.
fn mark_done(wf: &mut Workflow, list: &str, line: u32) {
    if let Some(p) = wf.state.picks.get_mut(list) {
        p.remove(&line);
        if p.is_empty() {
            wf.state.picks.remove(list);
        }
    }
    let ranges = wf.state.picks_done.entry(list.to_string()).or_default();
    ranges.push((line, line));
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for &(a, b) in ranges.iter() {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    *ranges = merged;
}

fn remaining(wf: &Workflow, list: &PickList, line: &PickLine) -> u64 {
    if done(wf, &list.id, line.line) {
        return 0;
    }
    line.qty
        .saturating_sub(progress(wf, &list.id, line).map_or(0, |p| p.picked))
}

/// The first unfinished line, in list order.
fn first_open(wf: &Workflow, list: &PickList) -> Option<usize> {
    list.lines
        .iter()
        .position(|l| !line_finished(wf, &list.id, l))
}

fn open_lines(wf: &Workflow, list: &PickList) -> usize {
    list.lines
        .iter()
        .filter(|l| !line_finished(wf, &list.id, l))
        .count()
}

/// The list, if it can still be picked; refusals mid-pick tell the operator to stop.
fn live(md: &dyn MasterData, id: &str, device: &str) -> Result<std::sync::Arc<PickList>, Decision> {
    match md.pick_list(id) {
        None => Err(reject(format!(
            "pick list {id} is no longer on this device; scan DH:CANCEL"
        ))),
        Some(l) if l.status == DocStatus::Cancelled => Err(reject(format!(
            "pick list {id} was cancelled at the office; scan DH:CANCEL"
        ))),
        Some(l) if l.status == DocStatus::Closed => Err(reject(format!(
            "pick list {id} was closed at the office; scan DH:CANCEL"
        ))),
        Some(l) => match l.device.as_deref() {
            Some(d) if d != device => Err(reject(format!(
                "pick list {id} was reassigned to device {d}; scan DH:CANCEL"
            ))),
            _ => Ok(l),
        },
    }
}

impl Picking {
    /// `DH:PICK:<list>`: start, or resume at the first unfinished line.
    pub(super) fn start(wf: &mut Workflow, cx: &Ctx<'_>, id: String) -> Outcome {
        let list = match cx.md.pick_list(&id) {
            None => Err(format!(
                "unknown pick list {id}: not on this device yet, sync and retry"
            )),
            Some(l) if l.status == DocStatus::Cancelled => {
                Err(format!("pick list {id} was cancelled at the office"))
            }
            Some(l) if l.status == DocStatus::Closed => {
                Err(format!("pick list {id} was closed at the office"))
            }
            Some(l) => match l.device.as_deref() {
                Some(d) if d != wf.device_id => Err(format!(
                    "pick list {id} is assigned to device {d}, not to this one ({})",
                    wf.device_id
                )),
                _ => Ok(l),
            },
        }
        .map_err(reject)?;
        if wf.state.picked.contains(&id) {
            return Err(reject(format!(
                "pick list {id} is already picked on this device"
            )));
        }
        if list.lines.is_empty() {
            return Err(reject(format!("pick list {id} has no lines")));
        }
        // Lists the office closed, cancelled or withdrew cannot be resumed: forget them.
        let open = |k: &String| {
            *k == id
                || cx
                    .md
                    .pick_list(k)
                    .is_some_and(|l| l.status == DocStatus::Open)
        };
        wf.state.picks.retain(|k, _| open(k));
        wf.state.picks_done.retain(|k, _| open(k));
        wf.state.picked.retain(open);
        let Some(index) = first_open(wf, &list) else {
            return Err(reject(format!(
                "pick list {id} is already picked on this device"
            )));
        };
        let resumed = wf.state.picks.contains_key(&id) || wf.state.picks_done.contains_key(&id);
        let p = Picking {
            list: id,
            index,
            at_location: false,
        };
        let message = if resumed {
            format!("resuming {}: {}", p.list, p.next_step(wf, &list))
        } else {
            format!(
                "picking {} ({}): {}",
                p.list,
                plural(list.lines.len(), "line"),
                p.next_step(wf, &list)
            )
        };
        Ok((Mode::Picking(p), prompt(message)))
    }

    /// `DH:PICK:<the list being picked>`: say where we are, change nothing.
    pub(super) fn again(mut self, wf: &Workflow, cx: &Ctx<'_>) -> Result<Decision, Decision> {
        let list = live(cx.md, &self.list, &wf.device_id)?;
        self.current(wf, &list);
        Ok(prompt(format!(
            "already picking {}: {}",
            self.list,
            self.next_step(wf, &list)
        )))
    }

    /// The current line's index: the stored one while it is unfinished, else the first unfinished line (the list
    /// changed at the office). Moving resets `at_location`.
    fn current(&mut self, wf: &Workflow, list: &PickList) -> Option<usize> {
        let ok = list
            .lines
            .get(self.index)
            .is_some_and(|l| !line_finished(wf, &list.id, l));
        if !ok {
            self.index = first_open(wf, list)?;
            self.at_location = false;
        }
        Some(self.index)
    }

    /// What to do on the current line, e.g. "line 2 of 3: scan location B-04-01 (pick 3 × …)".
    fn next_step(&self, wf: &Workflow, list: &PickList) -> String {
        let Some(line) = list.lines.get(self.index) else {
            return "no open lines: scan DH:DONE".to_string();
        };
        let what = describe(&line.gtin, &line.lot, remaining(wf, list, line));
        let (k, n) = (self.index + 1, list.lines.len());
        if self.at_location {
            format!(
                "line {k} of {n}: pick {what} at {}, scan the item",
                line.location
            )
        } else {
            format!(
                "line {k} of {n}: scan location {} (pick {what})",
                line.location
            )
        }
    }

    pub(super) fn scan(mut self, wf: &mut Workflow, cx: &mut Ctx<'_>, s: Scanned) -> Outcome {
        let list = live(cx.md, &self.list, &wf.device_id)?;
        let Some(i) = self.current(wf, &list) else {
            return Err(reject(format!(
                "pick list {} has no open lines: scan DH:DONE; {}",
                list.id,
                s.got()
            )));
        };
        let line = &list.lines[i];
        match s {
            Scanned::Location { code } if code == line.location => {
                let again = if self.at_location { "already " } else { "" };
                self.at_location = true;
                let message = format!("{again}at {code}: {}", self.next_step(wf, &list));
                Ok((Mode::Picking(self), prompt(message)))
            }
            Scanned::Location { code } if self.at_location => Err(reject(format!(
                "scan the item {} at {}; got location {code}",
                line.gtin, line.location
            ))),
            Scanned::Location { code } => Err(reject_as(
                RejectClass::WrongLocation,
                format!("wrong location: expected {}, got {code}", line.location),
            )),
            Scanned::Pallet { sscc, .. } => Err(reject(format!(
                "lines are picked item by item: scan the item {} at {}; got pallet {sscc}",
                line.gtin, line.location
            ))),
            Scanned::Item(it) => self.pick(wf, cx, &list, i, it),
        }
    }

    fn pick(
        self,
        wf: &mut Workflow,
        cx: &mut Ctx<'_>,
        list: &PickList,
        i: usize,
        it: ItemScan,
    ) -> Outcome {
        let line = &list.lines[i];
        if !self.at_location {
            return Err(reject(format!(
                "scan location {} first; got item {}",
                line.location, it.gtin
            )));
        }
        if it.gtin != line.gtin {
            return Err(reject_as(
                RejectClass::WrongItem,
                format!("wrong item: expected {}, got {}", line.gtin, it.gtin),
            ));
        }
        if let Some(want) = &line.lot {
            match &it.lot {
                None => {
                    return Err(reject_as(
                        RejectClass::WrongLot,
                        format!("wrong lot: expected {want}, the barcode has no lot"),
                    ))
                }
                Some(got) if got != want => {
                    return Err(reject_as(
                        RejectClass::WrongLot,
                        format!("wrong lot: expected {want}, got {got}"),
                    ))
                }
                Some(_) => {}
            }
        }
        Workflow::check_item(cx.md, &it, false)?;
        Workflow::check_expiry(&it, cx.at)?;
        let qty = wf.take_qty(&it)?;
        let need = remaining(wf, list, line);
        if qty > need {
            return Err(reject_as(
                RejectClass::OverPick,
                format!("over-pick: line needs {need} more, this scan counts {qty}"),
            ));
        }
        let mut p = it.pending(qty);
        p.lot = p.lot.or_else(|| line.lot.clone());
        let m = Movement {
            from_location: Some(line.location.clone()),
            reference: Some(list.id.clone()),
            ..wf.movement_of(MovementKind::Pick, cx.at, &p)
        };
        let seq = wf.emit(cx, m);
        let entry = wf
            .state
            .picks
            .entry(list.id.clone())
            .or_default()
            .entry(line.line)
            .or_default();
        entry.picked += qty;
        if entry.lot.is_none() {
            entry.lot = p.lot.clone();
        }
        if entry.picked >= line.qty {
            mark_done(wf, &list.id, line.line);
        }
        let what = format!(
            "picked {} from {}",
            describe(&p.gtin, &p.lot, qty),
            line.location
        );
        if qty < need {
            let then = format!(
                "{} more for line {} of {}",
                need - qty,
                i + 1,
                list.lines.len()
            );
            return Ok((Mode::Picking(self), accepted(vec![seq], &what, &then)));
        }
        let (mode, then) = self.advance(wf, list, i);
        Ok((mode, accepted(vec![seq], &what, &then)))
    }

    /// `DH:SHORT`: nothing more of the current line is at its location.
    pub(super) fn short(
        mut self,
        wf: &mut Workflow,
        cx: &mut Ctx<'_>,
        source: MovementSource,
    ) -> Outcome {
        let list = live(cx.md, &self.list, &wf.device_id)?;
        let Some(i) = self.current(wf, &list) else {
            return Err(reject(format!(
                "pick list {} has no open lines to short: scan DH:DONE",
                list.id
            )));
        };
        let line = &list.lines[i];
        if !self.at_location {
            return Err(reject(format!(
                "scan location {} first: DH:SHORT records that nothing is left there",
                line.location
            )));
        }
        let lot = line
            .lot
            .clone()
            .or_else(|| progress(wf, &list.id, line).and_then(|p| p.lot.clone()));
        let missing = describe(&line.gtin, &line.lot, remaining(wf, &list, line));
        let m = Movement {
            lot: lot.clone(),
            qty: 0,
            to_location: Some(line.location.clone()),
            reference: Some(list.id.clone()),
            ..wf.movement(MovementKind::Count, cx.at, line.gtin.clone(), source)
        };
        let seq = wf.emit(cx, m);
        // A DH:QTY meant for this line must not carry over to the next one.
        wf.state.qty_next = None;
        wf.state
            .picks
            .entry(list.id.clone())
            .or_default()
            .entry(line.line)
            .or_default()
            .short = true;
        let item = match &lot {
            Some(l) => format!("{} lot {l}", line.gtin),
            None => line.gtin.clone(),
        };
        let what = format!(
            "short on line {} of {}: {missing} not found; {} recorded as holding no {item}",
            i + 1,
            list.lines.len(),
            line.location,
        );
        let (mode, then) = self.advance(wf, &list, i);
        Ok((mode, accepted(vec![seq], &what, &then)))
    }

    /// After line `i` is finished: the next unfinished line, or the list is done.
    fn advance(mut self, wf: &mut Workflow, list: &PickList, i: usize) -> (Mode, String) {
        let Some(j) = first_open(wf, list) else {
            return (Mode::Idle, finish(wf, list));
        };
        self.at_location = self.at_location && list.lines[j].location == list.lines[i].location;
        self.index = j;
        let then = format!("next: {}", self.next_step(wf, list));
        (Mode::Picking(self), then)
    }

    /// `DH:DONE`: only when no line is open.
    pub(super) fn done(self, wf: &mut Workflow, cx: &Ctx<'_>) -> Outcome {
        let list = live(cx.md, &self.list, &wf.device_id)?;
        let open = open_lines(wf, &list);
        if open > 0 {
            return Err(reject(format!(
                "pick list {} has {}: pick {}, DH:SHORT {}, or DH:CANCEL to pause (progress is kept)",
                list.id,
                plural(open, "open line"),
                if open == 1 { "it" } else { "them" },
                if open == 1 { "it" } else { "them" },
            )));
        }
        Ok((Mode::Idle, prompt(finish(wf, &list))))
    }

    /// `DH:CANCEL`: pause; the progress stays for a later `DH:PICK`.
    pub(super) fn cancel(self, wf: &Workflow, md: &dyn MasterData) -> String {
        match md.pick_list(&self.list) {
            Some(list) if list.status == DocStatus::Open => match first_open(wf, &list) {
                Some(k) => format!(
                    "cancelled: {id} paused at line {} of {}; DH:PICK:{id} resumes there",
                    k + 1,
                    list.lines.len(),
                    id = self.list
                ),
                None => format!("cancelled: {} has no open lines", self.list),
            },
            _ => format!(
                "cancelled: stopped picking {}; picks already made stay recorded",
                self.list
            ),
        }
    }

    pub(super) fn busy(&self) -> Option<String> {
        Some(format!(
            "you are picking {}: DH:CANCEL pauses it (progress is kept)",
            self.list
        ))
    }

    pub(super) fn task(&self, wf: &Workflow, md: &dyn MasterData) -> String {
        let list = match live(md, &self.list, &wf.device_id) {
            Ok(list) => list,
            Err(d) => return d.text().replace("; scan", ": scan"),
        };
        let mut me = self.clone();
        let Some(i) = me.current(wf, &list) else {
            return format!("Picking {}: no open lines, scan DH:DONE", self.list);
        };
        let line = &list.lines[i];
        format!(
            "Pick {} from {} ({} line {} of {})",
            describe(&line.gtin, &line.lot, remaining(wf, &list, line)),
            line.location,
            self.list,
            i + 1,
            list.lines.len()
        )
    }
}

/// The list is done: forget its progress, remember that it was picked here.
fn finish(wf: &mut Workflow, list: &PickList) -> String {
    let shorts = wf
        .state
        .picks
        .remove(&list.id)
        .map_or(0, |p| p.values().filter(|l| l.short).count());
    wf.state.picks_done.remove(&list.id);
    wf.state.picked.retain(|k| *k != list.id);
    wf.state.picked.push(list.id.clone());
    if wf.state.picked.len() > PICKED_MEMORY {
        wf.state.picked.remove(0);
    }
    let n = list.lines.len();
    match shorts {
        0 => format!("{} complete: {} picked", list.id, plural(n, "line")),
        s => format!("{} complete: {}, {s} short", list.id, plural(n, "line")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        check_table, master, pick_list, run_full, Row, DEVICE, DOCK, G1, G2,
    };
    use super::super::State;
    use super::*;

    /// PL-1: line 1 A-01-02 G1 lot L1 × 2, line 2 B-04-01 G2 × 3, line 3 B-04-01 G1 (any lot) × 2.
    #[test]
    #[rustfmt::skip]
    fn pick_table() {
        let rows: &[Row<'_>] = &[
            (&["DH:PICK:PL-1"], "prompt", "picking PL-1 (3 lines): line 1 of 3: scan location A-01-02 (pick 2 × 09506000134352 lot L1)", &[]),
            (&["DH:PICK:PL-9"], "rejected", "unknown pick list PL-9: not on this device yet, sync and retry", &[]),
            (&["DH:PICK:PL-C"], "rejected", "pick list PL-C was cancelled at the office", &[]),
            (&["DH:PICK:PL-X"], "rejected", "pick list PL-X was closed at the office", &[]),
            (&["DH:PICK:PL-D"], "rejected", "pick list PL-D is assigned to device hh-02, not to this one (hh-01)", &[]),
            (&["DH:PICK:PL-E"], "prompt", "picking PL-E (1 line): line 1 of 1: scan location B-04-01", &[]),
            (&["DH:PICK:PL-0"], "rejected", "pick list PL-0 has no lines", &[]),
            // The location first.
            (&["DH:PICK:PL-1", "]C1010950600013435210L1"], "rejected", "scan location A-01-02 first; got item 09506000134352", &[]),
            (&["DH:PICK:PL-1", "LOC:B-04-01"], "rejected", "wrong location: expected A-01-02, got B-04-01", &[]),
            (&["DH:PICK:PL-1", "]C14140614141000005"], "prompt", "at A-01-02: line 1 of 3: pick 2 × 09506000134352 lot L1 at A-01-02, scan the item", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "LOC:A-01-02"], "prompt", "already at A-01-02", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "LOC:B-04-01"], "rejected", "scan the item 09506000134352 at A-01-02; got location B-04-01", &[]),
            // Then the item: GTIN, lot, expiry, quantity.
            (&["DH:PICK:PL-1", "LOC:A-01-02", "]C10105901234123457"], "rejected", "wrong item: expected 09506000134352, got 05901234123457", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "]C1010950600013435210ZZ"], "rejected", "wrong lot: expected L1, got ZZ", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "]C10109506000134352"], "rejected", "wrong lot: expected L1, the barcode has no lot", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "]C1010950600013435217250101^]10L1"], "rejected", "expired: 09506000134352 lot L1 expired on 2025-01-01", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "DH:QTY:3", "]C1010950600013435210L1"], "rejected", "over-pick: line needs 2 more, this scan counts 3", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "]C1010950600013435210L1^]303"], "rejected", "over-pick: line needs 2 more, this scan counts 3", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "]C100106141411234567897"], "rejected", "scan the item 09506000134352 at A-01-02; got pallet", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "]C1010950600013435210L1"], "accepted", "picked 1 × 09506000134352 lot L1 from A-01-02 (seq 1); 1 more for line 1 of 3",
                &["pick 1 09506000134352 lot=L1 from=A-01-02 ref=PL-1"]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "]C1010950600013435210L1", "]C1010950600013435210L1"], "accepted",
                "(seq 2); next: line 2 of 3: scan location B-04-01 (pick 3 × 05901234123457)", &["pick 1 09506000134352 lot=L1 from=A-01-02 ref=PL-1"]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "]C1010950600013435210L1^]302"], "accepted", "next: line 2 of 3",
                &["pick 2 09506000134352 lot=L1 from=A-01-02 ref=PL-1"]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "]C1010950600013435210L1", "]C1010950600013435210L1", "]C10105901234123457"], "rejected", "scan location B-04-01 first", &[]),
            // Line 3 is at the same location as line 2: no second location scan; its line names no lot.
            (&["DH:PICK:PL-1", "LOC:A-01-02", "DH:QTY:2", "]C1010950600013435210L1", "LOC:B-04-01", "DH:QTY:3", "]C10105901234123457"], "accepted",
                "next: line 3 of 3: pick 2 × 09506000134352 at B-04-01, scan the item", &["pick 3 05901234123457 from=B-04-01 ref=PL-1"]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "DH:QTY:2", "]C1010950600013435210L1", "LOC:B-04-01", "DH:QTY:3", "]C10105901234123457", "DH:QTY:2", "]C1010950600013435210ZZ"],
                "accepted", "PL-1 complete: 3 lines picked", &["pick 2 09506000134352 lot=ZZ from=B-04-01 ref=PL-1"]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "DH:QTY:2", "]C1010950600013435210L1", "LOC:B-04-01", "DH:QTY:3", "]C10105901234123457", "DH:QTY:2", "]C1010950600013435210ZZ", "DH:PICK:PL-1"],
                "rejected", "pick list PL-1 is already picked on this device", &[]),
            // Short: at the location only; lot of the line, else the one picked on it.
            (&["DH:PICK:PL-1", "DH:SHORT"], "rejected", "scan location A-01-02 first: DH:SHORT records that nothing is left there", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "DH:SHORT"], "accepted",
                "short on line 1 of 3: 2 × 09506000134352 lot L1 not found; A-01-02 recorded as holding no 09506000134352 lot L1 (seq 1); next: line 2 of 3",
                &["count 0 09506000134352 lot=L1 to=A-01-02 ref=PL-1"]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "DH:SHORT", "LOC:B-04-01", "DH:SHORT"], "accepted", "next: line 3 of 3: pick 2 × 09506000134352 at B-04-01",
                &["count 0 05901234123457 to=B-04-01 ref=PL-1"]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "DH:SHORT", "LOC:B-04-01", "DH:SHORT", "]C1010950600013435210ZZ", "DH:SHORT"], "accepted",
                "PL-1 complete: 3 lines, 3 short", &["count 0 09506000134352 lot=ZZ to=B-04-01 ref=PL-1"]),
            // DONE, CANCEL, resume.
            (&["DH:PICK:PL-1", "DH:DONE"], "rejected", "pick list PL-1 has 3 open lines: pick them, DH:SHORT them, or DH:CANCEL to pause (progress is kept)", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "]C1010950600013435210L1", "DH:CANCEL"], "prompt", "cancelled: PL-1 paused at line 1 of 3; DH:PICK:PL-1 resumes there", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "DH:QTY:2", "]C1010950600013435210L1", "DH:CANCEL", "DH:PICK:PL-1"], "prompt",
                "resuming PL-1: line 2 of 3: scan location B-04-01 (pick 3 × 05901234123457)", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "]C1010950600013435210L1", "DH:CANCEL", "DH:PICK:PL-1"], "prompt",
                "resuming PL-1: line 1 of 3: scan location A-01-02 (pick 1 × 09506000134352 lot L1)", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "]C1010950600013435210L1", "DH:CANCEL", "DH:PICK:PL-1", "LOC:A-01-02", "DH:QTY:2", "]C1010950600013435210L1"],
                "rejected", "over-pick: line needs 1 more, this scan counts 2", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "DH:PICK:PL-1"], "prompt", "already picking PL-1: line 1 of 3: pick 2 × 09506000134352 lot L1 at A-01-02", &[]),
            (&["DH:PICK:PL-1", "DH:PICK:PL-E"], "rejected", "you are picking PL-1: DH:CANCEL pauses it (progress is kept); got DH:PICK", &[]),
            (&["DH:PICK:PL-1", "DH:CANCEL", "DH:PICK:PL-E"], "prompt", "picking PL-E", &[]),
            (&["DH:PICK:PL-1", "LOC:A-01-02", "DH:OP:bo", "]C1010950600013435210L1"], "accepted", "picked",
                &["pick 1 09506000134352 lot=L1 from=A-01-02 ref=PL-1 op=bo"]),
        ];
        check_table(&master(), rows);
    }

    fn wf() -> Workflow {
        Workflow::new(DEVICE, DOCK, State::default(), 1)
    }

    /// The office cancels the list mid-pick: every pick scan is refused with what to do, the picks made stay, and
    /// the progress is dropped at the next DH:PICK.
    #[test]
    fn list_cancelled_while_picking() {
        let mut md = master();
        let mut wf = wf();
        for s in ["DH:PICK:PL-1", "LOC:A-01-02", "]C1010950600013435210L1"] {
            assert!(run_full(&mut wf, &md, s).0.is_ok());
        }
        md.pick_lists.get_mut("PL-1").unwrap().status = DocStatus::Cancelled;
        for s in [
            "]C1010950600013435210L1",
            "LOC:A-01-02",
            "DH:SHORT",
            "DH:DONE",
        ] {
            let (d, m) = run_full(&mut wf, &md, s);
            assert_eq!(
                d.text(),
                "pick list PL-1 was cancelled at the office; scan DH:CANCEL",
                "{s}"
            );
            assert!(m.is_empty());
        }
        assert_eq!(
            wf.task(&md).as_deref(),
            Some("pick list PL-1 was cancelled at the office: scan DH:CANCEL")
        );
        let (d, _) = run_full(&mut wf, &md, "DH:CANCEL");
        assert_eq!(
            d.text(),
            "cancelled: stopped picking PL-1; picks already made stay recorded"
        );
        assert_eq!(wf.state().picks["PL-1"][&1].picked, 1);
        let (d, _) = run_full(&mut wf, &md, "DH:PICK:PL-1");
        assert!(d.text().contains("was cancelled"), "{d:?}");
        assert!(run_full(&mut wf, &md, "DH:PICK:PL-E").0.is_ok());
        assert!(wf.state().picks.is_empty(), "{:?}", wf.state().picks);
    }

    /// The office edits the list while it is picked: progress is by line number, so a line inserted before the
    /// current one is picked next and lines already done stay done.
    #[test]
    fn list_edited_while_picking() {
        let mut md = master();
        let mut wf = wf();
        for s in [
            "DH:PICK:PL-1",
            "LOC:A-01-02",
            "DH:QTY:2",
            "]C1010950600013435210L1",
        ] {
            assert!(run_full(&mut wf, &md, s).0.is_ok());
        }
        md.pick_lists.insert(
            "PL-1".into(),
            pick_list(
                "PL-1",
                None,
                DocStatus::Open,
                &[
                    (4, "C-02-03", G2, None, 1),
                    (1, "A-01-02", G1, Some("L1"), 2),
                    (2, "B-04-01", G2, None, 3),
                ],
            ),
        );
        // Still at index 1 (line 2 before the edit, line 1 now, which is done): the first open line is line 4.
        let (d, _) = run_full(&mut wf, &md, "LOC:B-04-01");
        assert_eq!(d.text(), "wrong location: expected C-02-03, got B-04-01");
        let (d, _) = run_full(&mut wf, &md, "LOC:C-02-03");
        assert!(d.is_ok(), "{d:?}");
        let (d, m) = run_full(&mut wf, &md, "]C10105901234123457");
        assert_eq!(m.len(), 1);
        assert!(
            d.text()
                .ends_with("next: line 3 of 3: scan location B-04-01 (pick 3 × 05901234123457)"),
            "{d:?}"
        );
    }

    /// A 1,000-line list keeps the snapshot to the touched lines, and a finished list leaves only its id.
    #[test]
    fn state_stays_small() {
        let mut md = master();
        let lines: Vec<(u32, String)> = (1..=1000).map(|i| (i, format!("L-{i:04}"))).collect();
        let spec: Vec<(u32, &str, &str, Option<&str>, u64)> = lines
            .iter()
            .map(|(i, loc)| (*i, loc.as_str(), G2, None, 1))
            .collect();
        md.pick_lists
            .insert("BIG".into(), pick_list("BIG", None, DocStatus::Open, &spec));
        md.locations.clear();
        let mut wf = wf();
        let mut largest = 0;
        run_full(&mut wf, &md, "DH:PICK:BIG");
        for (_, loc) in &lines {
            for s in [format!("LOC:{loc}"), "]C10105901234123457".to_string()] {
                let step = wf.handle(
                    super::super::testing::input(&s),
                    super::super::testing::AT,
                    &md,
                );
                assert!(step.decision.is_ok(), "{s}: {:?}", step.decision);
                largest = largest.max(step.state.map_or(0, |s| s.len()));
            }
        }
        assert_eq!(wf.state().mode, Mode::Idle);
        assert_eq!(wf.state().picked, vec!["BIG".to_string()]);
        assert!(wf.state().picks.is_empty());
        let end = serde_json::to_vec(wf.state()).unwrap().len();
        println!("1,000-line pick list: largest state snapshot {largest} bytes, after the list {end} bytes");
        assert!(largest < 32 * 1024, "{largest}");
    }
}
