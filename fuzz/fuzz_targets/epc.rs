//! Fuzzes `epc::decode` with arbitrary EPC bank contents (the bytes after the PC word).
//!
//! Properties, for every input:
//! - decoding never panics and is deterministic; every rendering (URIs, element string, JSON, text) works;
//! - an unknown header is passed through: scheme `unknown`, the same bytes, a raw URI and a message;
//! - for one of the ten schemes: encoding the tag URI gives the very same bits (the input, up to the zero padding
//!   decode allows after the scheme's length), the pure identity URI parses back to the same identity, and the GS1
//!   element string parses as GS1 to the same elements;
//! - an error names a scheme exactly when the header is one of ours, and renders as JSON.

#![no_main]

use dockhand_protocol::epc::{self, Scheme};
use dockhand_protocol::gs1::parse_bracketed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let result = epc::decode(data);
    assert_eq!(result, epc::decode(data), "not deterministic");
    let ours = data.first().and_then(|&h| Scheme::from_header(h));
    let e = match result {
        Ok(e) => e,
        Err(err) => {
            let _ = err.to_json();
            if !data.is_empty() {
                assert_eq!(err.scheme(), ours, "{err}");
            }
            return;
        }
    };
    let (tag, pure) = (e.tag_uri(), e.pure_identity_uri());
    let _ = (e.to_json(), e.to_text());
    let Some(scheme) = e.gs1_scheme() else {
        assert_eq!(ours, None);
        assert_eq!(e.scheme(), "unknown");
        assert_eq!(e.as_bytes(), data);
        assert!(tag.starts_with("urn:epc:raw:") && tag == pure, "{tag}");
        assert!(e.message().is_some());
        return;
    };
    assert_eq!(Some(scheme), ours);
    assert_eq!(e.scheme(), scheme.name());

    let bytes = epc::encode_tag_uri(&tag).unwrap_or_else(|err| panic!("{tag}: {err}"));
    let n = bytes.len().max(data.len());
    let (mut a, mut b) = (bytes.clone(), data.to_vec());
    a.resize(n, 0);
    b.resize(n, 0);
    assert_eq!(a, b, "{tag} re-encodes to other bits");
    assert_eq!(e.as_bytes(), &bytes[..]);

    let id = e.identity().expect("a GS1 scheme has an identity");
    assert_eq!(
        epc::parse_pure_identity_uri(&pure).as_ref(),
        Ok(id),
        "{pure}"
    );
    if let Some(hri) = e.hri() {
        let els = parse_bracketed(&hri).unwrap_or_else(|err| panic!("{hri}: {err}"));
        assert_eq!(els, e.elements(), "{hri}");
    }
});
