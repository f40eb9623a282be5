//! How far the office's documents are worked: an ASN's lines expected against received and its pallets, a pick
//! list's lines requested against picked and short. What the dashboard's receipt and pick-list pages show.
//!
//! Pure: a store supplies the facts it keeps anyway ([`Store::asn_received`](super::Store::asn_received), the
//! counters reconciliation judges over and short receipts by, and
//! [`Store::movements_by_reference`](super::Store::movements_by_reference), the document's own movements), and the
//! rules here turn them into progress, so both backends show the same thing.
//!
//! # Rules
//!
//! - ASN lines are grouped by (GTIN, lot) in the order the ASN first names them, loose lines and pallet contents
//!   together, exactly as [`reconcile::asn_shorts`] groups them when the ASN closes: a group with a lot counts the
//!   units received of that lot, a group without one counts every lot of its GTIN. So a line marked short here is
//!   the line the close raises (or raised) an `asn_short` discrepancy for.
//! - Received lots no group covers are listed as unexpected (they raised `asn_unexpected_line`).
//! - A pallet is received when a receipt against the ASN carries its SSCC; SSCCs the ASN does not announce are
//!   listed after the announced ones (they raised `asn_unexpected_pallet`).
//! - A pick (`kind: pick`, `reference` = the list) counts toward the first line, in list order, at its
//!   `from_location` for its GTIN (and lot, when the line names one) that still needs units; when all such lines
//!   are complete it counts toward the last of them (an over-pick stays visible). A pick is never split over
//!   lines: the agent picks lines in list order and refuses a scan above what the line still needs, so this is the
//!   line the picker was on.
//! - A short pick is what the agent records for `DH:SHORT`: a `count` of 0 at the line's location naming the list
//!   (agent/src/workflow/pick.rs). It marks the first unfinished matching line short.
//! - Movements naming the document that match no line (a pick of another item, a count with units) are kept as
//!   `other`, so nothing the devices recorded against the document is hidden.

use dockhand_protocol::sync::{Asn, DocStatus, MovementKind, PickLine, PickList};
use serde::Serialize;
use time::OffsetDateTime;

use super::{ReceivedLot, StoredMovement};

/// Where one expected quantity stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    /// Less than expected so far, and the document is still open.
    Outstanding,
    /// Exactly as expected.
    Complete,
    /// More than expected.
    Over,
    /// Less than expected, and no more will come: the ASN is closed or cancelled, or the picker shorted the line.
    Short,
}

impl Fill {
    fn of(expected: u64, got: u64, finished: bool) -> Fill {
        match got.cmp(&expected) {
            std::cmp::Ordering::Equal => Fill::Complete,
            std::cmp::Ordering::Greater => Fill::Over,
            std::cmp::Ordering::Less if finished => Fill::Short,
            std::cmp::Ordering::Less => Fill::Outstanding,
        }
    }

    /// The word the dashboard shows (not only a colour).
    pub fn label(self) -> &'static str {
        match self {
            Fill::Outstanding => "outstanding",
            Fill::Complete => "complete",
            Fill::Over => "over",
            Fill::Short => "short",
        }
    }
}

/// An ASN with what has been received against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsnProgress {
    /// The ASN.
    pub asn: Asn,
    /// One entry per (GTIN, lot) group the ASN announces, in the order it first names them.
    pub lines: Vec<AsnLineProgress>,
    /// Received lots that no announced group covers.
    pub unexpected: Vec<ReceivedLot>,
    /// Announced pallets in ASN order, then received pallets the ASN does not announce.
    pub pallets: Vec<PalletProgress>,
}

/// One (GTIN, lot) group of an ASN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsnLineProgress {
    /// The item.
    pub gtin: String,
    /// The announced lot; `None`: any lot counts.
    pub lot: Option<String>,
    /// Units announced, loose and on pallets.
    pub expected: u64,
    /// Units received against the ASN that count for this group.
    pub received: u64,
    /// Where it stands.
    pub fill: Fill,
}

/// A pallet (SSCC) of an ASN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PalletProgress {
    /// The SSCC-18.
    pub sscc: String,
    /// The ASN announces it.
    pub announced: bool,
    /// Receipts against the ASN carrying this SSCC.
    pub receipts: u64,
    /// Units those receipts brought in.
    pub units: u64,
}

impl PalletProgress {
    /// At least one receipt carried the SSCC.
    pub fn received(&self) -> bool {
        self.receipts > 0
    }
}

impl AsnProgress {
    /// Progress of `asn` from its received counters (any order) and the movements naming it (commit order).
    pub fn new(asn: Asn, received: &[ReceivedLot], movements: &[StoredMovement]) -> AsnProgress {
        let finished = asn.status != DocStatus::Open;
        let mut groups: Vec<(String, Option<String>, u64)> = Vec::new();
        for l in asn
            .lines
            .iter()
            .chain(asn.pallets.iter().flat_map(|p| p.lines.iter()))
        {
            match groups
                .iter_mut()
                .find(|(g, lot, _)| *g == l.gtin && *lot == l.lot)
            {
                Some(group) => group.2 = group.2.saturating_add(l.qty),
                None => groups.push((l.gtin.clone(), l.lot.clone(), l.qty)),
            }
        }
        let lines = groups
            .iter()
            .map(|(gtin, lot, expected)| {
                let got = received
                    .iter()
                    .filter(|r| r.gtin == *gtin && (lot.is_none() || r.lot == *lot))
                    .fold(0u64, |sum, r| sum.saturating_add(r.qty));
                AsnLineProgress {
                    gtin: gtin.clone(),
                    lot: lot.clone(),
                    expected: *expected,
                    received: got,
                    fill: Fill::of(*expected, got, finished),
                }
            })
            .collect();
        let mut unexpected: Vec<ReceivedLot> = received
            .iter()
            .filter(|r| {
                r.qty > 0
                    && !groups
                        .iter()
                        .any(|(g, lot, _)| *g == r.gtin && (lot.is_none() || *lot == r.lot))
            })
            .cloned()
            .collect();
        unexpected.sort_by(|a, b| (&a.gtin, &a.lot).cmp(&(&b.gtin, &b.lot)));

        let mut pallets: Vec<PalletProgress> = asn
            .pallets
            .iter()
            .map(|p| PalletProgress {
                sscc: p.sscc.clone(),
                announced: true,
                receipts: 0,
                units: 0,
            })
            .collect();
        for s in movements {
            let m = &s.movement;
            let (MovementKind::Receive, Some(sscc)) = (m.kind, &m.sscc) else {
                continue;
            };
            let i = match pallets.iter().position(|p| p.sscc == *sscc) {
                Some(i) => i,
                None => {
                    pallets.push(PalletProgress {
                        sscc: sscc.clone(),
                        announced: false,
                        receipts: 0,
                        units: 0,
                    });
                    pallets.len() - 1
                }
            };
            pallets[i].receipts += 1;
            pallets[i].units = pallets[i].units.saturating_add(m.qty);
        }
        AsnProgress {
            asn,
            lines,
            unexpected,
            pallets,
        }
    }
}

/// A pick list with what has been picked against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PickProgress {
    /// The list.
    pub list: PickList,
    /// One entry per line, in list order.
    pub lines: Vec<PickLineProgress>,
    /// Movements naming the list that match no line.
    pub other: Vec<StoredMovement>,
}

/// One line of a pick list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PickLineProgress {
    /// The line as the office wrote it.
    pub line: PickLine,
    /// Units picked on it.
    pub picked: u64,
    /// The picker declared nothing more is at the location (`DH:SHORT`).
    pub shorted: bool,
    /// Where it stands.
    pub fill: Fill,
    /// Device time of the latest pick or short on the line.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_at: Option<OffsetDateTime>,
    /// Devices that picked or shorted on the line, in the order they first did.
    pub devices: Vec<String>,
}

impl PickProgress {
    /// Progress of `list` from the movements naming it, in server commit order.
    pub fn new(list: PickList, movements: &[StoredMovement]) -> PickProgress {
        let mut lines: Vec<PickLineProgress> = list
            .lines
            .iter()
            .map(|l| PickLineProgress {
                line: l.clone(),
                picked: 0,
                shorted: false,
                fill: Fill::Outstanding,
                last_at: None,
                devices: Vec::new(),
            })
            .collect();
        let mut other = Vec::new();
        for s in movements {
            let m = &s.movement;
            let (location, is_short) = match (m.kind, &m.from_location, &m.to_location) {
                (MovementKind::Pick, Some(from), _) => (from, false),
                (MovementKind::Count, _, Some(to)) if m.qty == 0 => (to, true),
                _ => {
                    other.push(s.clone());
                    continue;
                }
            };
            let candidates: Vec<usize> = lines
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    p.line.location == *location
                        && p.line.gtin == m.gtin
                        && p.line
                            .lot
                            .as_ref()
                            .is_none_or(|l| Some(l) == m.lot.as_ref())
                })
                .map(|(i, _)| i)
                .collect();
            let open = candidates
                .iter()
                .copied()
                .find(|i| !lines[*i].shorted && lines[*i].picked < lines[*i].line.qty);
            let Some(i) = open.or_else(|| candidates.last().copied()) else {
                other.push(s.clone());
                continue;
            };
            let p = &mut lines[i];
            if is_short {
                p.shorted = true;
            } else {
                p.picked = p.picked.saturating_add(m.qty);
            }
            p.last_at = Some(p.last_at.map_or(m.at, |t| t.max(m.at)));
            if !p.devices.contains(&m.device_id) {
                p.devices.push(m.device_id.clone());
            }
        }
        let finished = list.status != DocStatus::Open;
        for p in &mut lines {
            p.fill = Fill::of(p.line.qty, p.picked, p.shorted || finished);
        }
        PickProgress { list, lines, other }
    }

    /// Units requested over all lines.
    pub fn requested(&self) -> u64 {
        self.lines
            .iter()
            .fold(0, |sum, l| sum.saturating_add(l.line.qty))
    }

    /// Units picked over all lines.
    pub fn picked(&self) -> u64 {
        self.lines
            .iter()
            .fold(0, |sum, l| sum.saturating_add(l.picked))
    }

    /// Lines shorted by the picker.
    pub fn shorts(&self) -> usize {
        self.lines.iter().filter(|l| l.shorted).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockhand_protocol::sync::{AsnLine, AsnPallet, Movement, MovementSource};
    use time::macros::datetime;

    const G1: &str = "09506000134352";
    const G2: &str = "05901234123457";

    fn stored(seq: u64, kind: MovementKind, edit: impl FnOnce(&mut Movement)) -> StoredMovement {
        let mut m = Movement {
            device_id: "hh-01".into(),
            seq,
            at: datetime!(2026-11-26 10:00 UTC) + time::Duration::minutes(seq as i64),
            kind,
            gtin: G1.into(),
            lot: None,
            expiry: None,
            serials: vec![],
            qty: 1,
            from_location: None,
            to_location: None,
            sscc: None,
            reference: Some("DOC".into()),
            operator: None,
            source: MovementSource::Manual,
        };
        edit(&mut m);
        StoredMovement {
            server_seq: seq,
            site: "WH1".into(),
            received_at: m.at,
            movement: m,
        }
    }

    fn line(gtin: &str, lot: Option<&str>, qty: u64) -> AsnLine {
        AsnLine {
            gtin: gtin.into(),
            lot: lot.map(Into::into),
            qty,
        }
    }

    fn lot(gtin: &str, lot: Option<&str>, qty: u64) -> ReceivedLot {
        ReceivedLot {
            gtin: gtin.into(),
            lot: lot.map(Into::into),
            qty,
        }
    }

    fn asn(status: DocStatus) -> Asn {
        Asn {
            id: "DOC".into(),
            site: "WH1".into(),
            supplier: None,
            expected_on: None,
            lines: vec![line(G1, Some("L1"), 10), line(G2, None, 4)],
            pallets: vec![AsnPallet {
                sscc: "003456789012345675".into(),
                lines: vec![line(G1, Some("L1"), 5)],
            }],
            status,
        }
    }

    #[test]
    fn asn_lines_table() {
        type Row = (&'static str, Option<&'static str>, u64, u64, Fill);
        // (status, received counters, expected groups: gtin, lot, expected, received, fill)
        let cases: &[(DocStatus, &[ReceivedLot], &[Row])] = &[
            (
                DocStatus::Open,
                &[],
                &[
                    (G1, Some("L1"), 15, 0, Fill::Outstanding),
                    (G2, None, 4, 0, Fill::Outstanding),
                ],
            ),
            (
                DocStatus::Open,
                // A lot-less group counts every lot of its GTIN; a lot group only its lot.
                &[
                    lot(G1, Some("L1"), 15),
                    lot(G1, Some("L9"), 2),
                    lot(G2, Some("X"), 3),
                    lot(G2, None, 2),
                ],
                &[
                    (G1, Some("L1"), 15, 15, Fill::Complete),
                    (G2, None, 4, 5, Fill::Over),
                ],
            ),
            (
                DocStatus::Closed,
                &[lot(G1, Some("L1"), 7)],
                &[
                    (G1, Some("L1"), 15, 7, Fill::Short),
                    (G2, None, 4, 0, Fill::Short),
                ],
            ),
        ];
        for (status, received, want) in cases {
            let p = AsnProgress::new(asn(*status), received, &[]);
            let got: Vec<(&str, Option<&str>, u64, u64, Fill)> = p
                .lines
                .iter()
                .map(|l| {
                    (
                        l.gtin.as_str(),
                        l.lot.as_deref(),
                        l.expected,
                        l.received,
                        l.fill,
                    )
                })
                .collect();
            assert_eq!(got, want.to_vec(), "{status:?} {received:?}");
        }
    }

    #[test]
    fn asn_unexpected_lots_and_pallets() {
        let received = [
            lot(G1, Some("L9"), 2),
            lot(G1, Some("L1"), 1),
            lot(G2, None, 0),
        ];
        let movements = [
            stored(1, MovementKind::Receive, |m| {
                m.sscc = Some("003456789012345675".into());
                m.qty = 5;
            }),
            stored(2, MovementKind::Receive, |m| {
                m.sscc = Some("000000000000000017".into());
                m.qty = 2;
            }),
            // A putaway carrying the SSCC is no receipt.
            stored(3, MovementKind::Putaway, |m| {
                m.sscc = Some("000000000000000017".into());
            }),
        ];
        let p = AsnProgress::new(asn(DocStatus::Open), &received, &movements);
        assert_eq!(p.unexpected, vec![lot(G1, Some("L9"), 2)]);
        let pallets: Vec<(&str, bool, u64, u64)> = p
            .pallets
            .iter()
            .map(|p| (p.sscc.as_str(), p.announced, p.receipts, p.units))
            .collect();
        assert_eq!(
            pallets,
            vec![
                ("003456789012345675", true, 1, 5),
                ("000000000000000017", false, 1, 2)
            ]
        );
    }

    fn list(status: DocStatus) -> PickList {
        let pl = |line, location: &str, gtin: &str, lot: Option<&str>, qty| PickLine {
            line,
            location: location.into(),
            gtin: gtin.into(),
            lot: lot.map(Into::into),
            qty,
        };
        PickList {
            id: "DOC".into(),
            site: "WH1".into(),
            device: None,
            zone: None,
            lines: vec![
                pl(1, "A-01", G1, None, 2),
                pl(2, "A-01", G1, None, 3),
                pl(3, "B-02", G2, Some("L1"), 1),
            ],
            status,
        }
    }

    fn pick(seq: u64, from: &str, gtin: &str, lot: Option<&str>, qty: u64) -> StoredMovement {
        stored(seq, MovementKind::Pick, |m| {
            m.from_location = Some(from.into());
            m.gtin = gtin.into();
            m.lot = lot.map(Into::into);
            m.qty = qty;
        })
    }

    fn short(seq: u64, at: &str, gtin: &str, lot: Option<&str>) -> StoredMovement {
        stored(seq, MovementKind::Count, |m| {
            m.to_location = Some(at.into());
            m.gtin = gtin.into();
            m.lot = lot.map(Into::into);
            m.qty = 0;
        })
    }

    #[test]
    fn pick_lines_table() {
        type Line = (u64, bool, Fill);
        // (status, movements, per line: picked, shorted, fill; movements matching no line)
        let cases: Vec<(DocStatus, Vec<StoredMovement>, [Line; 3], usize)> = vec![
            (
                DocStatus::Open,
                vec![],
                [
                    (0, false, Fill::Outstanding),
                    (0, false, Fill::Outstanding),
                    (0, false, Fill::Outstanding),
                ],
                0,
            ),
            (
                // Two lines at one location for one item fill in list order.
                DocStatus::Open,
                vec![
                    pick(1, "A-01", G1, Some("X"), 1),
                    pick(2, "A-01", G1, None, 1),
                    pick(3, "A-01", G1, None, 1),
                    pick(4, "A-01", G1, None, 1),
                ],
                [
                    (2, false, Fill::Complete),
                    (2, false, Fill::Outstanding),
                    (0, false, Fill::Outstanding),
                ],
                0,
            ),
            (
                // An over-pick lands on the last matching line; a wrong lot, location or item matches nothing.
                DocStatus::Open,
                vec![
                    pick(1, "A-01", G1, None, 2),
                    pick(5, "A-01", G1, None, 4),
                    pick(2, "B-02", G2, Some("L2"), 1),
                    pick(3, "C-03", G1, None, 1),
                    pick(4, "B-02", G1, Some("L1"), 1),
                ],
                [
                    (2, false, Fill::Complete),
                    (4, false, Fill::Over),
                    (0, false, Fill::Outstanding),
                ],
                3,
            ),
            (
                // DH:SHORT: a count of 0 at the line's location marks the first unfinished matching line.
                DocStatus::Open,
                vec![
                    pick(1, "A-01", G1, None, 1),
                    short(2, "A-01", G1, None),
                    short(3, "B-02", G2, Some("L1")),
                ],
                [
                    (1, true, Fill::Short),
                    (0, false, Fill::Outstanding),
                    (0, true, Fill::Short),
                ],
                0,
            ),
            (
                // A count with units is no short; a closed list's unfinished lines are short.
                DocStatus::Closed,
                vec![stored(1, MovementKind::Count, |m| {
                    m.to_location = Some("A-01".into());
                    m.qty = 4;
                })],
                [
                    (0, false, Fill::Short),
                    (0, false, Fill::Short),
                    (0, false, Fill::Short),
                ],
                1,
            ),
        ];
        for (i, (status, movements, want, other)) in cases.into_iter().enumerate() {
            let p = PickProgress::new(list(status), &movements);
            let got: Vec<Line> = p
                .lines
                .iter()
                .map(|l| (l.picked, l.shorted, l.fill))
                .collect();
            assert_eq!(got, want.to_vec(), "case {i}");
            assert_eq!(p.other.len(), other, "case {i}");
            assert_eq!(p.requested(), 6);
            assert_eq!(p.picked(), got.iter().map(|l| l.0).sum::<u64>(), "case {i}");
            assert_eq!(p.shorts(), got.iter().filter(|l| l.1).count(), "case {i}");
        }
    }

    #[test]
    fn pick_line_remembers_devices_and_latest_time() {
        let mut later = pick(2, "A-01", G1, None, 1);
        later.movement.device_id = "hh-02".into();
        let movements = [
            pick(1, "A-01", G1, None, 1),
            later.clone(),
            pick(3, "A-01", G1, None, 1),
        ];
        let p = PickProgress::new(list(DocStatus::Open), &movements);
        assert_eq!(
            p.lines[0].devices,
            vec!["hh-01".to_string(), "hh-02".to_string()]
        );
        assert_eq!(p.lines[1].last_at, Some(movements[2].movement.at));
        assert_eq!(p.lines[0].last_at, Some(later.movement.at));
    }
}
