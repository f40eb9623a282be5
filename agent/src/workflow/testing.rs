//! An in-memory [`MasterData`] for tests and tools, and (in tests) the table runner every workflow module uses.

use std::collections::BTreeMap;

use dockhand_protocol::sync::{Asn, DocStatus, Item, Location, PickList};

use super::MasterData;

/// Master data held in maps; `stock` lists what [`MasterData::items_at`] answers.
#[derive(Debug, Clone, Default)]
pub struct MemMaster {
    /// Items by GTIN.
    pub items: BTreeMap<String, Item>,
    /// Locations by code.
    pub locations: BTreeMap<String, Location>,
    /// ASNs by id.
    pub asns: BTreeMap<String, Asn>,
    /// Pick lists by id.
    pub pick_lists: BTreeMap<String, PickList>,
    /// Last put-away or move destination by GTIN.
    pub last_locations: BTreeMap<String, String>,
    /// (location, GTIN, lot) the device believes hold stock.
    pub stock: Vec<(String, String, Option<String>)>,
}

impl MasterData for MemMaster {
    fn item(&self, gtin: &str) -> Option<Item> {
        self.items.get(gtin).cloned()
    }

    fn has_items(&self) -> bool {
        !self.items.is_empty()
    }

    fn location(&self, code: &str) -> Option<Location> {
        self.locations.get(code).cloned()
    }

    fn has_locations(&self) -> bool {
        !self.locations.is_empty()
    }

    fn location_by_gln(&self, gln: &str, extension: Option<&str>) -> Option<Location> {
        super::location_by_gln(self.locations.values().cloned(), gln, extension)
    }

    fn asn(&self, id: &str) -> Option<Asn> {
        self.asns.get(id).cloned()
    }

    fn asn_for_pallet(&self, sscc: &str) -> Option<Asn> {
        self.asns
            .values()
            .find(|a| a.status == DocStatus::Open && a.pallets.iter().any(|p| p.sscc == sscc))
            .cloned()
    }

    fn pick_list(&self, id: &str) -> Option<std::sync::Arc<PickList>> {
        self.pick_lists.get(id).cloned().map(std::sync::Arc::new)
    }

    fn last_location(&self, gtin: &str) -> Option<String> {
        self.last_locations.get(gtin).cloned()
    }

    fn items_at(&self, location: &str) -> Vec<(String, Option<String>)> {
        self.stock
            .iter()
            .filter(|(l, _, _)| l == location)
            .map(|(_, g, lot)| (g.clone(), lot.clone()))
            .collect()
    }
}

#[cfg(test)]
pub(crate) use fixture::*;

#[cfg(test)]
mod fixture {
    use super::*;
    use crate::workflow::{Decision, ScanInput, State, Workflow};
    use dockhand_protocol::decode::{decode_text, DecodeOptions};
    use dockhand_protocol::sync::{AsnLine, AsnPallet, Movement, PickLine};
    use time::macros::{date, datetime};
    use time::OffsetDateTime;

    /// Device time of every test scan.
    pub(crate) const AT: OffsetDateTime = datetime!(2026-11-26 10:00 UTC);
    /// The device.
    pub(crate) const DEVICE: &str = "hh-01";
    /// Its receiving location.
    pub(crate) const DOCK: &str = "DOCK-1";
    /// Widget: lot tracked.
    pub(crate) const G1: &str = "09506000134352";
    /// Gadget: nothing tracked.
    pub(crate) const G2: &str = "05901234123457";
    /// Sprocket: lot and expiry tracked.
    pub(crate) const G3: &str = "04006381333931";
    /// Serialised.
    pub(crate) const G4: &str = "00012345678905";
    /// Inactive.
    pub(crate) const G5: &str = "09506000134369";
    /// The pallet ASN-7 announces.
    pub(crate) const SSCC: &str = "106141411234567897";

    /// Decodes a test scan; `^]` stands for the GS separator.
    pub(crate) fn input(text: &str) -> ScanInput {
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

    fn item(gtin: &str, description: &str, flags: &str, active: bool) -> Item {
        Item {
            gtin: gtin.into(),
            description: description.into(),
            unit: "EA".into(),
            lot_tracked: flags.contains('l'),
            expiry_tracked: flags.contains('e'),
            serial_tracked: flags.contains('s'),
            active,
            unit_cost: None,
        }
    }

    fn location(code: &str, gln: Option<&str>, active: bool) -> Location {
        Location {
            code: code.into(),
            gln: gln.map(Into::into),
            zone: None,
            active,
        }
    }

    fn line(gtin: &str, lot: Option<&str>, qty: u64) -> AsnLine {
        AsnLine {
            gtin: gtin.into(),
            lot: lot.map(Into::into),
            qty,
        }
    }

    fn asn(id: &str, status: DocStatus) -> Asn {
        Asn {
            id: id.into(),
            site: "WH1".into(),
            supplier: None,
            expected_on: None,
            lines: vec![line(G2, None, 10), line(G1, Some("L1"), 5)],
            pallets: vec![AsnPallet {
                sscc: SSCC.into(),
                lines: vec![line(G1, Some("P1"), 20), line(G2, None, 4)],
            }],
            status,
        }
    }

    /// A pick list: (line, location, gtin, lot, qty).
    pub(crate) fn pick_list(
        id: &str,
        device: Option<&str>,
        status: DocStatus,
        lines: &[(u32, &str, &str, Option<&str>, u64)],
    ) -> PickList {
        PickList {
            id: id.into(),
            site: "WH1".into(),
            device: device.map(Into::into),
            zone: None,
            lines: lines
                .iter()
                .map(|&(line, location, gtin, lot, qty)| PickLine {
                    line,
                    location: location.into(),
                    gtin: gtin.into(),
                    lot: lot.map(Into::into),
                    qty,
                })
                .collect(),
            status,
        }
    }

    /// The site every table runs against.
    ///
    /// ```text
    /// items      G1 Widget (lot)  G2 Gadget  G3 Sprocket (lot, expiry)  G4 (serial)  G5 (inactive)
    /// locations  DOCK-1  A-01-02 (GLN 0614141000005)  B-04-01  C-02-03  B1, B2 (GLN 0614141000012 + ext)  X-00 (inactive)
    /// ASN-7      open: G2 × 10, G1 lot L1 × 5; pallet SSCC: G1 lot P1 × 20, G2 × 4   (39 units)
    /// ASN-C      cancelled, ASN-X closed (same content)
    /// PL-1       1: A-01-02 G1 lot L1 × 2   2: B-04-01 G2 × 3   3: B-04-01 G1 × 2
    /// PL-C cancelled, PL-X closed, PL-D assigned to hh-02, PL-E assigned to hh-01 (one line), PL-0 no lines
    /// stock      A-01-02: G1 lot L1, G2;  B-04-01: G2
    /// last       G2 last went to B-04-01
    /// ```
    pub(crate) fn master() -> MemMaster {
        let mut md = MemMaster::default();
        for i in [
            item(G1, "Widget", "l", true),
            item(G2, "Gadget", "", true),
            item(G3, "Sprocket", "le", true),
            item(G4, "Scanner", "s", true),
            item(G5, "Old widget", "", false),
        ] {
            md.items.insert(i.gtin.clone(), i);
        }
        for l in [
            location("DOCK-1", None, true),
            location("A-01-02", Some("0614141000005"), true),
            location("B-04-01", None, true),
            location("C-02-03", None, true),
            location("B1", Some("0614141000012"), true),
            location("B2", Some("0614141000012"), true),
            location("X-00", None, false),
        ] {
            md.locations.insert(l.code.clone(), l);
        }
        for a in [
            asn("ASN-7", DocStatus::Open),
            asn("ASN-C", DocStatus::Cancelled),
            asn("ASN-X", DocStatus::Closed),
        ] {
            md.asns.insert(a.id.clone(), a);
        }
        let pl1: &[(u32, &str, &str, Option<&str>, u64)] = &[
            (1, "A-01-02", G1, Some("L1"), 2),
            (2, "B-04-01", G2, None, 3),
            (3, "B-04-01", G1, None, 2),
        ];
        for p in [
            pick_list("PL-1", None, DocStatus::Open, pl1),
            pick_list("PL-C", None, DocStatus::Cancelled, pl1),
            pick_list("PL-X", None, DocStatus::Closed, pl1),
            pick_list("PL-D", Some("hh-02"), DocStatus::Open, pl1),
            pick_list("PL-E", Some(DEVICE), DocStatus::Open, &pl1[1..2]),
            pick_list("PL-0", None, DocStatus::Open, &[]),
        ] {
            md.pick_lists.insert(p.id.clone(), p);
        }
        md.last_locations.insert(G2.into(), "B-04-01".into());
        md.stock = vec![
            ("A-01-02".into(), G1.into(), Some("L1".into())),
            ("A-01-02".into(), G2.into(), None),
            ("B-04-01".into(), G2.into(), None),
        ];
        md
    }

    /// A movement in one line: `kind qty gtin [lot=] [from=] [to=] [sscc=] [ref=] [serial=] [op=]`.
    pub(crate) fn render(m: &Movement) -> String {
        let mut s = format!("{} {} {}", m.kind.as_str(), m.qty, m.gtin);
        let fields = [
            ("lot", m.lot.clone()),
            ("from", m.from_location.clone()),
            ("to", m.to_location.clone()),
            ("sscc", m.sscc.clone()),
            ("ref", m.reference.clone()),
            (
                "serial",
                (!m.serials.is_empty()).then(|| m.serials.join(",")),
            ),
            ("op", m.operator.clone()),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                s.push_str(&format!(" {name}={v}"));
            }
        }
        s
    }

    /// One line of a workflow table: the scans (the last one is judged), the kind of its decision (`accepted`,
    /// `prompt`, `rejected`), a fragment of its text, and the movements it makes, rendered by [`render`].
    pub(crate) type Row<'a> = (&'a [&'a str], &'a str, &'a str, &'a [&'a str]);

    fn kind(d: &Decision) -> &'static str {
        match d {
            Decision::Accepted { .. } => "accepted",
            Decision::Prompt { .. } => "prompt",
            Decision::Rejected { .. } => "rejected",
        }
    }

    /// Runs each row on a fresh workflow. Every scan before the last must be taken; every movement must pass
    /// `Movement::validate`, carry the next seq and be listed in its decision; every snapshot must decode to the
    /// state it was taken from; a rejection must change nothing.
    pub(crate) fn check_table(md: &MemMaster, rows: &[Row<'_>]) {
        for (scans, want_kind, fragment, want_moves) in rows {
            let (last, setup) = scans.split_last().expect("a row has scans");
            let mut wf = Workflow::new(DEVICE, DOCK, State::default(), 1);
            for s in setup {
                let step = run(&mut wf, md, s);
                assert!(step.is_ok(), "{scans:?}: setup scan {s:?} → {step:?}");
            }
            let (state, seq) = (wf.state().clone(), wf.next_seq());
            let (decision, moves) = run_full(&mut wf, md, last);
            let got: Vec<String> = moves.iter().map(render).collect();
            assert_eq!(kind(&decision), *want_kind, "{scans:?} → {decision:?}");
            assert!(
                decision.text().contains(fragment),
                "{scans:?} → {:?} should contain {fragment:?}",
                decision.text()
            );
            assert_eq!(&got, want_moves, "{scans:?} → {:?}", decision.text());
            if !decision.is_ok() {
                assert_eq!(wf.state(), &state, "{scans:?}: a rejection changes nothing");
                assert_eq!(wf.next_seq(), seq, "{scans:?}: a rejection uses no seq");
            }
        }
    }

    fn run(wf: &mut Workflow, md: &MemMaster, scan: &str) -> Decision {
        run_full(wf, md, scan).0
    }

    /// One scan with the engine's invariants checked.
    pub(crate) fn run_full(
        wf: &mut Workflow,
        md: &MemMaster,
        scan: &str,
    ) -> (Decision, Vec<Movement>) {
        let seq = wf.next_seq();
        let step = wf.handle(input(scan), AT, md);
        for (i, m) in step.movements.iter().enumerate() {
            m.validate()
                .unwrap_or_else(|e| panic!("{scan:?}: {m:?} invalid: {e:?}"));
            assert_eq!(m.seq, seq + i as u64, "{scan:?}: seqs are consecutive");
            assert_eq!(m.device_id, DEVICE);
            assert_eq!(m.at, AT);
        }
        assert_eq!(wf.next_seq(), seq + step.movements.len() as u64);
        match &step.decision {
            Decision::Accepted { seqs, .. } => {
                let made: Vec<u64> = step.movements.iter().map(|m| m.seq).collect();
                assert_eq!(seqs, &made, "{scan:?}: the decision lists its movements");
                assert!(!made.is_empty(), "{scan:?}: accepted without movements");
            }
            _ => assert!(
                step.movements.is_empty(),
                "{scan:?}: movements without acceptance"
            ),
        }
        if let Some(bytes) = &step.state {
            assert_eq!(
                &Workflow::decode_state(bytes),
                wf.state(),
                "{scan:?}: snapshot"
            );
        }
        (step.decision, step.movements)
    }
}
