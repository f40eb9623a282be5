//! Reconciliation rules: which applied movements need the office's attention.
//!
//! Pure: a store gathers the [`Facts`] about one newly applied movement inside its push transaction, calls
//! [`evaluate`], and records the returned [`Draft`]s as discrepancies in the same transaction. Every backend shares
//! these rules, so sled and PostgreSQL flag exactly the same things.
//!
//! Rules (issue 6, DESIGN §3.5 "nothing silently dropped"):
//! - stock below zero at a location after the movement → [`DiscrepancyKind::NegativeStock`];
//! - a count whose quantity differs from the book at the count's own device time → `CountMismatch` (a late count,
//!   from a device that was offline, is judged against the stock as it was then, not as it is on arrival);
//! - a receipt against an ASN: an item the ASN does not list → `AsnUnexpectedLine`; a pallet it does not announce
//!   → `AsnUnexpectedPallet`; more than announced → `AsnOver` (raised once, by the receipt that crosses the line);
//!   shortfalls are judged when the ASN closes ([`asn_shorts`]);
//! - a pick naming a cancelled pick list → `PickOnCancelledList`;
//! - a reference to no known ASN or pick list → `UnknownReference` (except a count's own session id);
//! - an unknown item or location → `UnknownItem` / `UnknownLocation` (the movement is stored anyway).

use dockhand_protocol::sync::{Asn, AsnLine, DocStatus, Movement, MovementKind, PickList};

use crate::store::DiscrepancyKind;

/// The document a movement's `reference` names.
#[derive(Debug, Clone, Copy)]
pub enum Document<'a> {
    /// The movement names no document.
    None,
    /// It names one the server does not have.
    Unknown,
    /// An ASN.
    Asn(&'a Asn),
    /// A pick list.
    PickList(&'a PickList),
}

/// What a store knows about one movement at the moment it applies it.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The item's GTIN is in the item master.
    pub item_known: bool,
    /// `from_location` is a location of the site (true when the movement has none).
    pub from_known: bool,
    /// `to_location` is a location of the site (true when the movement has none).
    pub to_known: bool,
    /// Stock after this movement at each of [`Movement::effects`], in the same order. Only the entries of effects
    /// that take stock out (negative delta) are judged, so a store may give the others relative to an unknown
    /// base (the PostgreSQL store does not fetch the quantity of a key its batch only adds to).
    pub stock_after: Vec<i64>,
    /// The document named by `reference`.
    pub document: Document<'a>,
    /// For a count: the book quantity at `(to_location, gtin, lot)` as of the count's `at`, without the count.
    pub book_at_count: Option<i64>,
    /// For a receipt against an ASN: units of this GTIN received against it so far, this movement included, over
    /// all lots.
    pub asn_received_gtin: u64,
    /// The same for this GTIN and this movement's lot only.
    pub asn_received_lot: u64,
}

impl Default for Facts<'_> {
    fn default() -> Self {
        Facts {
            item_known: true,
            from_known: true,
            to_known: true,
            stock_after: Vec::new(),
            document: Document::None,
            book_at_count: None,
            asn_received_gtin: 0,
            asn_received_lot: 0,
        }
    }
}

/// A discrepancy to record (the store adds id, site, time and the movement reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// The kind.
    pub kind: DiscrepancyKind,
    /// The location concerned.
    pub location: Option<String>,
    /// The item.
    pub gtin: Option<String>,
    /// The lot.
    pub lot: Option<String>,
    /// What the book or document expected.
    pub expected: Option<i64>,
    /// What was found.
    pub actual: Option<i64>,
    /// The document concerned.
    pub reference: Option<String>,
    /// For a person.
    pub message: String,
}

fn draft(m: &Movement, kind: DiscrepancyKind, message: String) -> Draft {
    Draft {
        kind,
        location: m.to_location.clone().or_else(|| m.from_location.clone()),
        gtin: Some(m.gtin.clone()),
        lot: m.lot.clone(),
        expected: None,
        actual: None,
        reference: m.reference.clone(),
        message,
    }
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Units of `gtin` an ASN announces, loose and on pallets; with `lot`, only lines for that lot or with no lot.
pub fn asn_expected(asn: &Asn, gtin: &str, lot: Option<&str>) -> Option<u64> {
    let lines = asn
        .lines
        .iter()
        .chain(asn.pallets.iter().flat_map(|p| p.lines.iter()));
    let matching: Vec<&AsnLine> = lines.filter(|l| l.gtin == gtin).collect();
    if matching.is_empty() {
        return None;
    }
    Some(
        matching
            .iter()
            .filter(|l| lot.is_none() || l.lot.is_none() || l.lot.as_deref() == lot)
            .map(|l| l.qty)
            .sum(),
    )
}

/// The rules for one newly applied movement (see the module doc).
pub fn evaluate(m: &Movement, f: &Facts<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    if !f.item_known {
        out.push(draft(
            m,
            DiscrepancyKind::UnknownItem,
            format!("item {} is not in the item master", m.gtin),
        ));
    }
    for (known, loc) in [
        (f.from_known, &m.from_location),
        (f.to_known, &m.to_location),
    ] {
        if let (false, Some(loc)) = (known, loc) {
            let mut d = draft(
                m,
                DiscrepancyKind::UnknownLocation,
                format!("location {loc} is not a location of this site"),
            );
            d.location = Some(loc.clone());
            out.push(d);
        }
    }
    for (effect, after) in m.effects().iter().zip(&f.stock_after) {
        // Only the movement that takes stock below zero (or further below) raises it.
        if *after < 0 && effect.delta < 0 {
            let mut d = draft(
                m,
                DiscrepancyKind::NegativeStock,
                format!(
                    "stock of {}{} at {} went to {after}",
                    m.gtin,
                    m.lot
                        .as_ref()
                        .map(|l| format!(" lot {l}"))
                        .unwrap_or_default(),
                    effect.location
                ),
            );
            d.location = Some(effect.location.to_string());
            d.expected = Some(0);
            d.actual = Some(*after);
            out.push(d);
        }
    }
    if m.kind == MovementKind::Count {
        if let Some(book) = f.book_at_count {
            let counted = as_i64(m.qty);
            if counted != book {
                let mut d = draft(
                    m,
                    DiscrepancyKind::CountMismatch,
                    format!(
                        "counted {counted} of {}{} at {}, book said {book} at the count's time",
                        m.gtin,
                        m.lot
                            .as_ref()
                            .map(|l| format!(" lot {l}"))
                            .unwrap_or_default(),
                        m.to_location.as_deref().unwrap_or("?")
                    ),
                );
                d.expected = Some(book);
                d.actual = Some(counted);
                out.push(d);
            }
        }
    }
    match f.document {
        Document::None => {}
        // A count names its own count session (`COUNT-<device>-<seq>`, DESIGN §2), which is no server document.
        Document::Unknown if m.kind == MovementKind::Count => {}
        Document::Unknown => {
            let reference = m.reference.as_deref().unwrap_or("?");
            out.push(draft(
                m,
                DiscrepancyKind::UnknownReference,
                format!(
                    "{} refers to {reference}, which the server does not know",
                    m.kind.as_str()
                ),
            ));
        }
        Document::Asn(asn) if m.kind == MovementKind::Receive => out.extend(asn_rules(m, asn, f)),
        Document::PickList(list)
            if m.kind == MovementKind::Pick && list.status == DocStatus::Cancelled =>
        {
            out.push(draft(
                m,
                DiscrepancyKind::PickOnCancelledList,
                format!(
                    "picked {} × {} against cancelled pick list {}",
                    m.qty, m.gtin, list.id
                ),
            ));
        }
        Document::Asn(_) | Document::PickList(_) => {}
    }
    out
}

fn asn_rules(m: &Movement, asn: &Asn, f: &Facts<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    if let Some(sscc) = &m.sscc {
        if !asn.pallets.iter().any(|p| &p.sscc == sscc) {
            out.push(draft(
                m,
                DiscrepancyKind::AsnUnexpectedPallet,
                format!(
                    "pallet {sscc} received against {}, which does not announce it",
                    asn.id
                ),
            ));
        }
    }
    let lot_specific = asn
        .lines
        .iter()
        .chain(asn.pallets.iter().flat_map(|p| p.lines.iter()))
        .any(|l| l.gtin == m.gtin && l.lot.is_some());
    let (expected, received) = if lot_specific {
        (
            asn_expected(asn, &m.gtin, m.lot.as_deref()),
            f.asn_received_lot,
        )
    } else {
        (asn_expected(asn, &m.gtin, None), f.asn_received_gtin)
    };
    match expected {
        None => out.push(draft(
            m,
            DiscrepancyKind::AsnUnexpectedLine,
            format!(
                "{} received against {}, which does not list it",
                m.gtin, asn.id
            ),
        )),
        Some(0) => out.push(draft(
            m,
            DiscrepancyKind::AsnUnexpectedLine,
            format!(
                "{} lot {} received against {}, which announces other lots",
                m.gtin,
                m.lot.as_deref().unwrap_or("(none)"),
                asn.id
            ),
        )),
        // Raised once: by the receipt that crosses the announced quantity.
        Some(exp) if received > exp && received - m.qty <= exp => {
            let mut d = draft(
                m,
                DiscrepancyKind::AsnOver,
                format!(
                    "received {received} of {} against {}, which announces {exp}",
                    m.gtin, asn.id
                ),
            );
            d.expected = Some(as_i64(exp));
            d.actual = Some(as_i64(received));
            out.push(d);
        }
        Some(_) => {}
    }
    out
}

/// Shortfalls of an ASN that is being closed. `received(gtin, lot)` gives units received against it (lot `None`:
/// over all lots). One draft per short line group (GTIN, and lot where the ASN names one).
pub fn asn_shorts(asn: &Asn, received: impl Fn(&str, Option<&str>) -> u64) -> Vec<Draft> {
    let mut keys: Vec<(String, Option<String>)> = Vec::new();
    for l in asn
        .lines
        .iter()
        .chain(asn.pallets.iter().flat_map(|p| p.lines.iter()))
    {
        let k = (l.gtin.clone(), l.lot.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut out = Vec::new();
    for (gtin, lot) in keys {
        let expected: u64 = asn
            .lines
            .iter()
            .chain(asn.pallets.iter().flat_map(|p| p.lines.iter()))
            .filter(|l| l.gtin == gtin && l.lot == lot)
            .map(|l| l.qty)
            .sum();
        let got = received(&gtin, lot.as_deref());
        if got < expected {
            out.push(Draft {
                kind: DiscrepancyKind::AsnShort,
                location: None,
                gtin: Some(gtin.clone()),
                lot: lot.clone(),
                expected: Some(as_i64(expected)),
                actual: Some(as_i64(got)),
                reference: Some(asn.id.clone()),
                message: format!(
                    "{} closed with {got} of {expected} × {gtin}{} received",
                    asn.id,
                    lot.as_ref()
                        .map(|l| format!(" lot {l}"))
                        .unwrap_or_default()
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockhand_protocol::sync::{AsnPallet, MovementSource};

    fn mv(kind: MovementKind, from: Option<&str>, to: Option<&str>, qty: u64) -> Movement {
        Movement {
            device_id: "hh".into(),
            seq: 1,
            at: time::OffsetDateTime::UNIX_EPOCH,
            kind,
            gtin: "09506000134352".into(),
            lot: Some("L1".into()),
            expiry: None,
            serials: vec![],
            qty,
            from_location: from.map(Into::into),
            to_location: to.map(Into::into),
            sscc: None,
            reference: None,
            operator: None,
            source: MovementSource::Manual,
        }
    }

    fn asn() -> Asn {
        Asn {
            id: "ASN-1".into(),
            site: "WH1".into(),
            supplier: None,
            expected_on: None,
            lines: vec![AsnLine {
                gtin: "09506000134352".into(),
                lot: None,
                qty: 10,
            }],
            pallets: vec![AsnPallet {
                sscc: "106141411234567897".into(),
                lines: vec![AsnLine {
                    gtin: "05901234123457".into(),
                    lot: Some("P1".into()),
                    qty: 5,
                }],
            }],
            status: DocStatus::Open,
        }
    }

    fn kinds(d: &[Draft]) -> Vec<DiscrepancyKind> {
        d.iter().map(|d| d.kind).collect()
    }

    #[test]
    fn rules_table() {
        use DiscrepancyKind::*;
        let a = asn();
        let cancelled = PickList {
            id: "PL-1".into(),
            site: "WH1".into(),
            device: None,
            zone: None,
            lines: vec![],
            status: DocStatus::Cancelled,
        };
        let recv = |qty| {
            let mut m = mv(MovementKind::Receive, None, Some("DOCK-1"), qty);
            m.reference = Some("ASN-1".into());
            m
        };
        let cases: Vec<(&str, Movement, Facts<'_>, Vec<DiscrepancyKind>)> = vec![
            (
                "clean receipt",
                mv(MovementKind::Receive, None, Some("D"), 1),
                Facts {
                    stock_after: vec![1],
                    ..Facts::default()
                },
                vec![],
            ),
            (
                "unknown item",
                mv(MovementKind::Receive, None, Some("D"), 1),
                Facts {
                    item_known: false,
                    stock_after: vec![1],
                    ..Facts::default()
                },
                vec![UnknownItem],
            ),
            (
                "unknown location",
                mv(MovementKind::Receive, None, Some("D"), 1),
                Facts {
                    to_known: false,
                    stock_after: vec![1],
                    ..Facts::default()
                },
                vec![UnknownLocation],
            ),
            (
                "negative at source",
                mv(MovementKind::Pick, Some("A"), None, 3),
                Facts {
                    stock_after: vec![-1],
                    ..Facts::default()
                },
                vec![NegativeStock],
            ),
            (
                "a receipt into negative stock is not the culprit",
                mv(MovementKind::Receive, None, Some("A"), 1),
                Facts {
                    stock_after: vec![-1],
                    ..Facts::default()
                },
                vec![],
            ),
            (
                "count matches",
                mv(MovementKind::Count, None, Some("A"), 4),
                Facts {
                    book_at_count: Some(4),
                    ..Facts::default()
                },
                vec![],
            ),
            (
                "count differs",
                mv(MovementKind::Count, None, Some("A"), 3),
                Facts {
                    book_at_count: Some(4),
                    ..Facts::default()
                },
                vec![CountMismatch],
            ),
            (
                "count of zero where book has stock",
                mv(MovementKind::Count, None, Some("A"), 0),
                Facts {
                    book_at_count: Some(2),
                    ..Facts::default()
                },
                vec![CountMismatch],
            ),
            (
                "within ASN",
                recv(4),
                Facts {
                    document: Document::Asn(&a),
                    asn_received_gtin: 10,
                    stock_after: vec![10],
                    ..Facts::default()
                },
                vec![],
            ),
            (
                "crosses ASN qty",
                recv(4),
                Facts {
                    document: Document::Asn(&a),
                    asn_received_gtin: 12,
                    stock_after: vec![12],
                    ..Facts::default()
                },
                vec![AsnOver],
            ),
            (
                "already over: raised once",
                recv(1),
                Facts {
                    document: Document::Asn(&a),
                    asn_received_gtin: 13,
                    stock_after: vec![13],
                    ..Facts::default()
                },
                vec![],
            ),
            (
                "unknown reference",
                recv(1),
                Facts {
                    document: Document::Unknown,
                    stock_after: vec![1],
                    ..Facts::default()
                },
                vec![UnknownReference],
            ),
            (
                "a count names its own count session",
                {
                    let mut c = mv(MovementKind::Count, None, Some("A"), 0);
                    c.reference = Some("COUNT-hh-1-7".into());
                    c
                },
                Facts {
                    document: Document::Unknown,
                    book_at_count: Some(0),
                    ..Facts::default()
                },
                vec![],
            ),
            (
                "pick on cancelled list",
                mv(MovementKind::Pick, Some("A"), None, 1),
                Facts {
                    document: Document::PickList(&cancelled),
                    stock_after: vec![0],
                    ..Facts::default()
                },
                vec![PickOnCancelledList],
            ),
        ];
        for (name, m, f, want) in cases {
            assert_eq!(kinds(&evaluate(&m, &f)), want, "{name}");
        }
    }

    #[test]
    fn asn_items_pallets_and_lots() {
        use DiscrepancyKind::*;
        let a = asn();
        let mut other = mv(MovementKind::Receive, None, Some("D"), 1);
        other.gtin = "04006381333931".into();
        other.reference = Some("ASN-1".into());
        let f = Facts {
            document: Document::Asn(&a),
            asn_received_gtin: 1,
            asn_received_lot: 1,
            stock_after: vec![1],
            ..Facts::default()
        };
        assert_eq!(kinds(&evaluate(&other, &f)), vec![AsnUnexpectedLine]);

        let mut wrong_pallet = mv(MovementKind::Receive, None, Some("D"), 5);
        wrong_pallet.gtin = "05901234123457".into();
        wrong_pallet.lot = Some("P1".into());
        wrong_pallet.sscc = Some("000000000000000000".into());
        wrong_pallet.reference = Some("ASN-1".into());
        let f = Facts {
            document: Document::Asn(&a),
            asn_received_gtin: 5,
            asn_received_lot: 5,
            stock_after: vec![5],
            ..Facts::default()
        };
        assert_eq!(
            kinds(&evaluate(&wrong_pallet, &f)),
            vec![AsnUnexpectedPallet]
        );

        let mut wrong_lot = wrong_pallet.clone();
        wrong_lot.sscc = None;
        wrong_lot.lot = Some("P9".into());
        assert_eq!(kinds(&evaluate(&wrong_lot, &f)), vec![AsnUnexpectedLine]);
    }

    #[test]
    fn shorts_on_close() {
        let a = asn();
        let shorts = asn_shorts(&a, |gtin, _| if gtin == "09506000134352" { 7 } else { 5 });
        assert_eq!(shorts.len(), 1);
        assert_eq!(shorts[0].expected, Some(10));
        assert_eq!(shorts[0].actual, Some(7));
        assert!(asn_shorts(&a, |_, _| 10).is_empty());
    }
}
