//! Fuzzes `gs1::digital_link::parse_digital_link`. Input: the URI as UTF-8 (anything else is skipped).
//!
//! Properties, for every URI the parser accepts:
//! - the canonical URI of its elements (`digital_link`) exists: nothing read from a Digital Link is inexpressible;
//! - parsing the canonical URI gives the same elements (as a set: a qualifier written in the query moves to the path,
//!   so order may change), and writing those again gives the very same canonical URI (a fixed point);
//! - the elements also survive `to_element_string` → `parse_element_string`, like those read from a barcode.
//!
//! And for every URI it rejects: the error's position, when it has one, lies inside the URI.

#![no_main]

use dockhand_protocol::decode::GS;
use dockhand_protocol::gs1::digital_link::{digital_link, parse_digital_link};
use dockhand_protocol::gs1::{parse_element_string, to_element_string, Element};
use libfuzzer_sys::fuzz_target;

fn sorted(els: &[Element]) -> Vec<&Element> {
    let mut v: Vec<&Element> = els.iter().collect();
    v.sort_by(|a, b| (&a.ai, &a.value).cmp(&(&b.ai, &b.value)));
    v
}

fuzz_target!(|input: &[u8]| {
    let Ok(uri) = std::str::from_utf8(input) else {
        return;
    };
    let els = match parse_digital_link(uri) {
        Ok(els) => els,
        Err(e) => {
            if let Some(p) = e.position() {
                assert!(
                    p <= uri.len(),
                    "error position {p} beyond {} bytes: {e}",
                    uri.len()
                );
            }
            return;
        }
    };
    assert!(!els.is_empty(), "{uri:?} parsed to no elements");
    let Some(canonical) = digital_link(&els) else {
        panic!("{uri:?} parsed to {els:?}, which has no Digital Link");
    };
    let again = match parse_digital_link(&canonical) {
        Ok(again) => again,
        Err(e) => panic!("{uri:?} → {canonical:?} does not parse: {e}"),
    };
    assert_eq!(sorted(&again), sorted(&els), "{uri:?} → {canonical:?}");
    assert_eq!(
        digital_link(&again).as_deref(),
        Some(canonical.as_str()),
        "canonical URI is not a fixed point"
    );
    let es = to_element_string(&els, GS);
    assert_eq!(
        parse_element_string(&es, GS),
        Ok(els),
        "element string {:?}",
        String::from_utf8_lossy(&es)
    );
});
