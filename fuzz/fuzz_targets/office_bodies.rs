//! Fuzzes the office's request bodies: the JSON documents (ASN, pick list, assignment, item, location, site,
//! sites, comment, resolution, enrollment) and the imports (items, locations, ASNs; CSV and JSON arrays), through
//! what each handler runs before the store. Input: one selector byte (its value modulo 16 picks the body kind, in
//! the order of `Office::ALL`; the first 12 kept their numbers when the imports were added), then the body.
//!
//! Properties, for every input:
//! - a refused body is a 400 with a message, and the same input is refused the same way again;
//! - a JSON error names a field and starts its message with it, unless it is about the text itself (empty, not an
//!   object, invalid JSON); the API promises a field for every check of a value;
//! - an import error is either about the file as a whole (a 400 naming `body`, `content-type` never reaches here)
//!   or a report of bad rows: at most `MAX_REPORTED` listed, at least that many counted, each with a message, CSV
//!   rows at a line of the file (1 = header), JSON rows at an index of the array;
//! - an ASN or pick list that passes its check re-serialises and parses to the same document, which passes again
//!   (serialising loses nothing the check looks at).

#![no_main]

use dockhand_protocol::sync::{Asn, PickList};
use dockhand_server::fuzzing::{office_body, parse_json, Office};
use dockhand_server::import::{At, MAX_REPORTED};
use dockhand_server::ApiError;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let kind = Office::ALL[usize::from(selector) % Office::ALL.len()];
    let result = office_body(kind, body);
    assert_eq!(
        result.as_ref().map_err(ToString::to_string),
        office_body(kind, body)
            .as_ref()
            .map_err(ToString::to_string),
        "{kind:?} is not deterministic"
    );
    if let Err(e) = &result {
        if kind.is_import() {
            check_import_error(kind, body, e);
        } else {
            let ApiError::BadRequest { field, message } = e else {
                panic!("{kind:?}: a body is refused with 400, not {e:?}");
            };
            assert!(!message.is_empty());
            match field {
                Some(f) => {
                    assert!(!f.is_empty(), "{message}");
                    assert!(message.starts_with(&format!("{f}: ")), "{f}: {message}");
                }
                None => assert!(
                    ["invalid JSON: ", "empty body", "expected a JSON object"]
                        .iter()
                        .any(|p| message.starts_with(p)),
                    "{kind:?}: an error about a value names no field: {message}"
                ),
            }
        }
    }
    match kind {
        Office::Asn => round_trip::<Asn>(kind, body, result.is_ok()),
        Office::PickList => round_trip::<PickList>(kind, body, result.is_ok()),
        _ => {}
    }
});

/// An import's refusal (see the module docs).
fn check_import_error(kind: Office, body: &[u8], e: &ApiError) {
    match e {
        ApiError::BadRequest { field, message } => {
            assert_eq!(field.as_deref(), Some("body"), "{kind:?}: {message}");
            assert!(message.starts_with("body: "), "{kind:?}: {message}");
        }
        ApiError::BadRows(bad) => {
            assert!(
                !bad.rows.is_empty() && bad.rows.len() <= MAX_REPORTED,
                "{kind:?}"
            );
            assert!(bad.total >= bad.rows.len(), "{kind:?}");
            let lines = body.iter().filter(|b| **b == b'\n').count() + 1;
            let elements = serde_json::from_slice::<Vec<serde_json::Value>>(body).map(|v| v.len());
            for r in &bad.rows {
                assert!(!r.message.is_empty(), "{kind:?}: {r:?}");
                match r.at {
                    At::Line(l) => {
                        assert!(kind.is_csv() && (1..=lines).contains(&l), "{kind:?}: {r:?}")
                    }
                    At::Index(i) => assert!(
                        !kind.is_csv() && elements.as_ref().is_ok_and(|n| i < *n),
                        "{kind:?}: {r:?}"
                    ),
                }
            }
        }
        other => panic!("{kind:?}: an import is refused with 400, not {other:?}"),
    }
}

/// For a document the check accepted: it re-serialises and parses to the same value, and checks again as fine.
fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    kind: Office,
    body: &[u8],
    checked: bool,
) {
    let Ok(doc) = parse_json::<T>(body) else {
        assert!(!checked, "{kind:?}: checked a body that does not parse");
        return;
    };
    let json = serde_json::to_vec(&doc).expect("a document serialises");
    let again = parse_json::<T>(&json)
        .unwrap_or_else(|e| panic!("{kind:?} {}: {e}", String::from_utf8_lossy(&json)));
    assert_eq!(again, doc, "{kind:?} {}", String::from_utf8_lossy(&json));
    if checked {
        if let Err(e) = office_body(kind, &json) {
            panic!(
                "{kind:?}: accepted, then refused once re-serialised: {e}: {}",
                String::from_utf8_lossy(&json)
            );
        }
    }
}
