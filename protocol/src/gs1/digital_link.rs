//! GS1 Digital Link URIs for scanned element strings (GS1 Digital Link standard 1.x, uncompressed form).
//!
//! Only the keys our warehouse uses are supported as primary keys: GTIN (AI 01, with qualifiers 22, 10, 21 in
//! that order) and SSCC (AI 00). Other AIs become query parameters when the dictionary allows them as data
//! attributes (flag `?`); the rest cannot be expressed in a Digital Link and are left out of it, which is harmless
//! because the URI is a convenience next to the full element list, never the record of the scan.

use super::ai;
use super::element::Element;

/// The resolver GS1 itself runs; used when no site-specific resolver is configured.
pub const GS1_RESOLVER: &str = "https://id.gs1.org";

/// The Digital Link URI of `elements` on [`GS1_RESOLVER`], or `None` without a GTIN or SSCC.
pub fn digital_link(elements: &[Element]) -> Option<String> {
    digital_link_with(GS1_RESOLVER, elements)
}

/// The Digital Link URI of `elements` on `resolver` (no trailing slash), or `None` without a GTIN or SSCC.
pub fn digital_link_with(resolver: &str, elements: &[Element]) -> Option<String> {
    let (key, qualifiers): (&Element, &[&str]) =
        if let Some(gtin) = elements.iter().find(|e| e.ai == "01") {
            (gtin, &["22", "10", "21"])
        } else {
            (elements.iter().find(|e| e.ai == "00")?, &[])
        };
    let mut uri = format!("{resolver}/{}/{}", key.ai, percent_encode(&key.value));
    for q in qualifiers {
        if let Some(e) = elements.iter().find(|e| e.ai == *q) {
            uri.push_str(&format!("/{}/{}", e.ai, percent_encode(&e.value)));
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut sep = '?';
    for e in elements {
        let is_path = e.ai == key.ai || qualifiers.contains(&e.ai.as_str());
        let allowed = ai::lookup(&e.ai).is_some_and(|d| d.dl_attribute);
        if is_path || !allowed || seen.contains(&e.ai.as_str()) {
            continue;
        }
        seen.push(&e.ai);
        uri.push(sep);
        sep = '&';
        uri.push_str(&format!("{}={}", e.ai, percent_encode(&e.value)));
    }
    Some(uri)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gs1::parse_bracketed;

    #[test]
    fn links() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "(01)09506000134352(10)ABC123",
                Some("https://id.gs1.org/01/09506000134352/10/ABC123"),
            ),
            (
                "(01)09506000134352(21)S/1(17)271231(10)L%1(22)A",
                Some("https://id.gs1.org/01/09506000134352/22/A/10/L%251/21/S%2F1?17=271231"),
            ),
            (
                "(00)009506000134350004(02)09506000134352(37)4",
                Some("https://id.gs1.org/00/009506000134350004?02=09506000134352&37=4"),
            ),
            ("(414)9506000014005(254)A-1", None),
            (
                "(01)09506000134352(8020)X(3103)000100",
                Some("https://id.gs1.org/01/09506000134352?3103=000100"),
            ),
        ];
        for &(hri, want) in cases {
            let els = parse_bracketed(hri).map_err(|e| e.to_string());
            let Ok(els) = els else {
                panic!("{hri}: {els:?}")
            };
            assert_eq!(digital_link(&els).as_deref(), want, "{hri}");
        }
    }

    #[test]
    fn encoding() {
        assert_eq!(percent_encode("aZ9-._~"), "aZ9-._~");
        assert_eq!(percent_encode("a/b c&%"), "a%2Fb%20c%26%25");
    }
}
