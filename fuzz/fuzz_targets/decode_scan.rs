//! Fuzzes `decode::decode_scan` and checks that every GS1 scan it accepts survives a round trip through both
//! textual forms.
//!
//! Input layout (so that seeds are real scans with one byte in front):
//!
//! ```text
//! byte 0   bits 0-2  symbology: 0 = take the AIM id from the data (split_aim), 1..=7 = SYMBOLOGIES[n - 1]
//!          bit  3    DecodeOptions::assume_gs1
//!          bits 4-5  DecodeOptions::fnc1_substitute: none, '|', '#', '^'
//!          bit  6    DecodeOptions::fnc1_text (read the text `<GS>` as FNC1)
//! rest     the scan data
//! ```
//!
//! Properties, for every input:
//! - decoding never panics, and is deterministic;
//! - an error's byte position, when it has one, lies inside the data, and its JSON renders;
//! - a command comes only from data starting `DH:`, a location only from data starting `LOC:`;
//! - a GS1 scan has at least one element, and its elements come back unchanged from
//!   `to_element_string` → `parse_element_string` and from `to_hri` → `parse_bracketed`;
//! - those two re-encodings also decode as whole scans (`]C1` + element string, and the bare HRI) to the same
//!   elements and the same typed item;
//! - its JSON and Digital Link render.

#![no_main]

use dockhand_protocol::decode::{decode_scan, decode_text, DecodeOptions, Scan, GS};
use dockhand_protocol::gs1::{
    self, parse_bracketed, parse_element_string, to_element_string, to_hri,
};
use dockhand_protocol::scan::split_aim;
use libfuzzer_sys::fuzz_target;
use time::macros::date;

const SYMBOLOGIES: [&str; 7] = ["]C1", "]E0", "]d2", "]Q1", "]C0", "]e0", "]I1"];
const SUBSTITUTES: [Option<u8>; 4] = [None, Some(b'|'), Some(b'#'), Some(b'^')];

fuzz_target!(|input: &[u8]| {
    let Some((&sel, rest)) = input.split_first() else {
        return;
    };
    let (symbology, data) = match usize::from(sel & 0b111) {
        0 => split_aim(rest),
        n => (Some(SYMBOLOGIES[n - 1].to_owned()), rest),
    };
    let opts = DecodeOptions {
        // Fixed, so a crash reproduces on any day.
        today: date!(2026 - 03 - 15),
        fnc1_substitute: SUBSTITUTES[usize::from((sel >> 4) & 0b11)],
        assume_gs1: sel & 0b1000 != 0,
        fnc1_text: sel & 0b100_0000 != 0,
    };
    let result = decode_scan(symbology.as_deref(), data, &opts);
    assert_eq!(
        result,
        decode_scan(symbology.as_deref(), data, &opts),
        "not deterministic"
    );
    let scan = match result {
        Ok(scan) => scan,
        Err(e) => {
            let json = e.to_json();
            if let Some(p) = json["error"]["position"].as_u64() {
                assert!(
                    p <= data.len() as u64,
                    "error position {p} beyond {} bytes of data: {e}",
                    data.len()
                );
            }
            return;
        }
    };
    let _ = scan.to_json();
    let g = match scan {
        Scan::Command(_) => {
            assert!(data.starts_with(b"DH:"), "command from {data:?}");
            return;
        }
        Scan::Location(_) => {
            assert!(data.starts_with(b"LOC:"), "location from {data:?}");
            return;
        }
        Scan::Gs1(g) => g,
    };
    let els = &g.elements;
    assert!(!els.is_empty(), "GS1 scan without elements");
    assert_eq!(g.symbology, symbology);

    let es = to_element_string(els, GS);
    assert_eq!(
        parse_element_string(&es, GS).as_ref(),
        Ok(els),
        "element string {:?}",
        String::from_utf8_lossy(&es)
    );
    let hri = to_hri(els);
    assert_eq!(parse_bracketed(&hri).as_ref(), Ok(els), "HRI {hri:?}");

    // The re-encodings are scans in their own right and must mean the same thing.
    let plain = DecodeOptions {
        fnc1_substitute: None,
        assume_gs1: false,
        fnc1_text: false,
        ..opts.clone()
    };
    let es_text = format!("]C1{}", String::from_utf8_lossy(&es));
    for (form, again) in [
        (es_text, decode_scan(Some("]C1"), &es, &plain)),
        (hri.clone(), decode_text(&hri, &plain)),
    ] {
        match again {
            Ok(Scan::Gs1(h)) => {
                assert_eq!(&h.elements, els, "{form:?}");
                assert_eq!(h.item, g.item, "{form:?}");
            }
            other => panic!("{els:?} re-encoded as {form:?} decodes as {other:?}"),
        }
    }
    if let Some(uri) = gs1::digital_link::digital_link(els) {
        assert!(uri.starts_with("https://id.gs1.org/"), "{uri}");
    }
});
