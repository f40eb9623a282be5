//! Fuzzes the body of `POST /v1/sync/push`: the server's JSON parser, then the push handler's checks and the
//! store's own batch check. Input: the body bytes.
//!
//! Properties, for every input:
//! - a refused body is a 400 with a message; one naming a field starts its message with that field, one naming
//!   none is about the text (empty, not an object, or invalid JSON);
//! - the parser accepts exactly what plain `serde_json` accepts from an object (its path-tracking slow path agrees);
//! - an accepted body re-serialises and parses again to the very same request (a round trip);
//! - the handler's checks refuse with a 400 naming `device_id` or a field of a movement in the batch, or a 403 for
//!   someone else's batch, and never anything else;
//! - whatever the handler lets through, the store's check accepts too: otherwise the device would get a 503 and
//!   resend the same batch forever instead of a 400 it can report.

#![no_main]

use dockhand_protocol::sync::PushRequest;
use dockhand_server::fuzzing::{check_push, parse_json, store_check_push};
use dockhand_server::ApiError;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let req = match parse_json::<PushRequest>(data) {
        Ok(req) => req,
        Err(e) => {
            assert_parse_error(&e);
            if is_object(data) {
                assert!(
                    serde_json::from_slice::<PushRequest>(data).is_err(),
                    "serde_json accepts what parse_json refused: {e}"
                );
            }
            return;
        }
    };
    assert!(
        serde_json::from_slice::<PushRequest>(data).is_ok(),
        "parse_json accepts what serde_json refuses"
    );

    let json = serde_json::to_vec(&req).expect("a push request serialises");
    let again = parse_json::<PushRequest>(&json)
        .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(&json)));
    assert_eq!(again, req, "{}", String::from_utf8_lossy(&json));

    match check_push(&req) {
        Ok(()) => {
            if let Err(e) = store_check_push(&req) {
                panic!("the handler accepted a batch the store refuses: {e}");
            }
        }
        Err(ApiError::BadRequest {
            field: Some(field),
            message,
        }) => {
            assert!(message.starts_with(&format!("{field}: ")), "{message}");
            let in_batch = field
                .strip_prefix("movements[")
                .and_then(|rest| rest.split_once("]."))
                .and_then(|(i, name)| Some((i.parse::<usize>().ok()?, name)))
                .is_some_and(|(i, name)| i < req.movements.len() && !name.is_empty());
            assert!(field == "device_id" || in_batch, "{field}: {message}");
        }
        Err(ApiError::Forbidden(message)) => assert!(!message.is_empty()),
        Err(other) => panic!("unexpected refusal {other:?}"),
    }
    assert_eq!(
        check_push(&req).map_err(|e| e.to_string()),
        check_push(&again).map_err(|e| e.to_string()),
        "the checks are deterministic"
    );
});

/// Whether the first non-blank byte opens an object, the only bodies the server reads as JSON.
fn is_object(data: &[u8]) -> bool {
    data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// A body the parser refused: a 400; naming a field, the message starts with it; naming none, it is about the
/// text.
fn assert_parse_error(e: &ApiError) {
    let ApiError::BadRequest { field, message } = e else {
        panic!("a body is refused with 400, not {e:?}");
    };
    match field {
        Some(f) => {
            assert!(!f.is_empty(), "{message}");
            assert!(message.starts_with(&format!("{f}: ")), "{f}: {message}");
        }
        None => assert!(
            ["invalid JSON: ", "empty body", "expected a JSON object"]
                .iter()
                .any(|p| message.starts_with(p)),
            "{message}"
        ),
    }
}
