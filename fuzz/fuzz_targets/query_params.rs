//! Fuzzes the query-string parser of the routes (`Params` in server/src/routes/input.rs) and its typed getters.
//! Input: one seed byte, then the query string (UTF-8; other inputs are skipped). Each parameter gets one getter
//! picked by the seed and its position; `skip` leaves it for `finish`.
//!
//! Properties, checked against `form_urlencoded`'s decoding of the query as the model:
//! - a parameter given twice is refused, naming it; otherwise the query parses;
//! - every getter agrees with the model: an empty value is absent, `text` gives the decoded value, `u64` and
//!   `limit` the number (a limit only in 1..=max), `gtin` the value zero-padded to 14 digits, `name`, `location`
//!   and `short_text` the value itself and only when it keeps their rules, `time` an RFC 3339 time that formats
//!   and parses back to itself, `status` one of the three statuses;
//! - every refusal is a 400 naming the parameter, its message starting with the name;
//! - a getter takes its parameter: asking again gives nothing;
//! - `finish` refuses exactly when a parameter was left, naming the first one left.

#![no_main]

use dockhand_protocol::sync::DocStatus;
use dockhand_server::fuzzing::Query;
use dockhand_server::ApiError;
use libfuzzer_sys::fuzz_target;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The getters, in the order the seed picks them.
const GETTERS: usize = 10;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let Ok(query) = std::str::from_utf8(rest) else {
        return;
    };
    // A `#` starts the fragment, which never reaches the server: the model would see more than the parser.
    if query.contains('#') {
        let _ = Query::parse(query);
        return;
    }
    let Some(parsed) = Query::parse(query) else {
        return;
    };
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let twice = pairs
        .iter()
        .enumerate()
        .find(|(i, (n, _))| pairs[..*i].iter().any(|(m, _)| m == n))
        .map(|(_, (n, _))| n.clone());
    let mut q = match (parsed, twice) {
        (Ok(q), None) => q,
        (Err(e), Some(name)) => {
            assert_names(&e, &name);
            return;
        }
        (Ok(_), Some(name)) => panic!("{name:?} given twice was accepted"),
        (Err(e), None) => panic!("{query:?} refused: {e:?}"),
    };

    let mut left = Vec::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        let getter = (usize::from(seed) + i * 3) % GETTERS;
        if getter == GETTERS - 1 {
            left.push(name.clone());
            continue;
        }
        check_getter(&mut q, getter, name, value);
        check_getter(&mut q, getter, name, "");
    }
    match (q.finish(), left.first()) {
        (Ok(()), None) => {}
        (Err(e), Some(name)) => assert_names(&e, name),
        (result, name) => panic!("finish gave {result:?} with {name:?} left"),
    }
});

/// Runs getter number `getter` on `name` and checks its answer against `value`, the model's decoded value (empty
/// for a parameter already taken).
fn check_getter(q: &mut Query, getter: usize, name: &str, value: &str) {
    let empty = value.is_empty();
    match getter {
        0 => assert_eq!(q.text(name).as_deref(), (!empty).then_some(value)),
        1 => match q.name(name) {
            Ok(got) => {
                assert_eq!(got.as_deref(), (!empty).then_some(value));
                assert!(empty || is_name(value), "{value:?}");
            }
            Err(e) => {
                assert!(!is_name(value), "{value:?}");
                assert_names(&e, name);
            }
        },
        2 => match q.gtin(name) {
            Ok(None) => assert!(empty),
            Ok(Some(g)) => {
                assert!(matches!(value.len(), 8 | 12 | 13 | 14), "{value:?}");
                assert_eq!(g, format!("{value:0>14}"));
                assert!(g.bytes().all(|b| b.is_ascii_digit()), "{g}");
            }
            Err(e) => assert_names(&e, name),
        },
        3 => match q.location(name) {
            Ok(got) => {
                assert_eq!(got.as_deref(), (!empty).then_some(value));
                assert!(empty || is_location(value), "{value:?}");
            }
            Err(e) => {
                assert!(!is_location(value), "{value:?}");
                assert_names(&e, name);
            }
        },
        4 => {
            let fits = value.chars().count() <= 20 && !value.chars().any(char::is_control);
            match q.short_text(name, 20) {
                Ok(got) => {
                    assert!(fits, "{value:?}");
                    assert_eq!(got.as_deref(), (!empty).then_some(value));
                }
                Err(e) => {
                    assert!(!fits, "{value:?}");
                    assert_names(&e, name);
                }
            }
        }
        5 => match q.u64(name) {
            Ok(got) => assert_eq!(got, (!empty).then(|| value.parse::<u64>().unwrap())),
            Err(e) => {
                assert!(value.parse::<u64>().is_err(), "{value:?}");
                assert_names(&e, name);
            }
        },
        6 => match q.limit(name, 100, 1000) {
            Ok(n) if empty => assert_eq!(n, 100),
            Ok(n) => {
                assert!((1..=1000).contains(&n), "{n}");
                assert_eq!(value.parse::<usize>().ok(), Some(n));
            }
            Err(e) => {
                let n = value.parse::<u64>();
                assert!(n.map_or(true, |n| !(1..=1000).contains(&n)), "{value:?}");
                assert_names(&e, name);
            }
        },
        7 => match q.time(name) {
            Ok(None) => assert!(empty),
            Ok(Some(t)) => {
                let text = t.format(&Rfc3339).unwrap_or_else(|e| panic!("{t}: {e}"));
                assert_eq!(
                    OffsetDateTime::parse(&text, &Rfc3339).ok(),
                    Some(t),
                    "{text}"
                );
            }
            Err(e) => assert_names(&e, name),
        },
        8 => {
            let want = match value {
                "open" => Some(DocStatus::Open),
                "closed" => Some(DocStatus::Closed),
                "cancelled" => Some(DocStatus::Cancelled),
                _ => None,
            };
            match q.status(name) {
                Ok(got) => assert_eq!(got, want, "{value:?}"),
                Err(e) => {
                    assert!(!empty && want.is_none(), "{value:?}");
                    assert_names(&e, name);
                }
            }
        }
        _ => unreachable!("getter {getter}"),
    }
}

/// The rule of site, device and document ids, written out again as the model.
fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && s != "."
        && s != ".."
}

/// The rule of location codes, written out again as the model.
fn is_location(s: &str) -> bool {
    (1..=64).contains(&s.chars().count())
        && !s.chars().any(char::is_control)
        && s.trim() == s
        && !s.contains(['/', ','])
}

/// A refusal is a 400 naming `name`, its message starting with it.
fn assert_names(e: &ApiError, name: &str) {
    match e {
        ApiError::BadRequest {
            field: Some(f),
            message,
        } => {
            assert_eq!(f, name, "{message}");
            assert!(message.starts_with(&format!("{name}: ")), "{message}");
        }
        other => panic!("{name}: refused with {other:?}"),
    }
}
