//! GS1 Digital Link URIs (GS1 Digital Link standard 1.x, uncompressed form), both directions.
//!
//! ```text
//! https://example.com/products/01/09506000134352/10/ABC%2F1?17=271231&3103=000500&linkType=all
//! \______ any domain and path prefix ______/\ key /\ value  /\ qualifiers /\ data attributes /\ ignored /
//! ```
//!
//! Parsing rules:
//! - `http` or `https`, any authority, any path prefix. The primary key is the leftmost path segment that is an AI
//!   with a `dlpkey` in the dictionary and is followed only by AI/value pairs; its qualifiers must follow it in one
//!   of the dictionary's orders (a subsequence of, e.g., `22,10,21` or `235` for a GTIN, never mixed).
//! - Query parameters whose name is all digits are AIs and must be allowed as data attributes (dictionary flag
//!   `?`); other parameters (`linkType`, tracking tags, ...) are ignored, as the standard requires.
//! - Values are percent-decoded; a GTIN-8, -12 or -13 in the path is padded to 14 digits.
//! - Every element is validated exactly like one from an element string; an AI may appear only once.
//!
//! The result is in URI order: key, path qualifiers, then query attributes. [`to_digital_link`] writes that same
//! order, so `parse_digital_link(&to_digital_link(x)?) == x` for any `x` already in that order.

use super::ai::{self, AiDef};
use super::element::{validate_element, Element};
use super::{Gs1Error, Gs1ErrorKind};

/// The resolver GS1 itself runs; the canonical Digital Link host.
pub const GS1_RESOLVER: &str = "https://id.gs1.org";

/// Parses a GS1 Digital Link URI into its elements (see the module documentation for the rules).
pub fn parse_digital_link(uri: &str) -> Result<Vec<Element>, Gs1Error> {
    let bad = |reason: &str| {
        Gs1Error::new(Gs1ErrorKind::BadUri {
            reason: reason.to_owned(),
        })
    };
    let lower = uri.get(..8).unwrap_or(uri).to_ascii_lowercase();
    let after_scheme = if lower.starts_with("https://") {
        8
    } else if lower.starts_with("http://") {
        7
    } else {
        return Err(bad("it must start with http:// or https://").at(0));
    };
    if let Some((i, c)) = uri.char_indices().find(|&(_, c)| !c.is_ascii_graphic()) {
        let reason = format!(
            "character {} not allowed in a URI",
            super::element::show_char(c)
        );
        return Err(bad(&reason).at(i));
    }
    // The fragment never carries GS1 data.
    let uri = uri.split('#').next().unwrap_or(uri);
    let (path_part, query) = match uri.split_once('?') {
        Some((p, q)) => (p, q),
        None => (uri, ""),
    };
    let Some(path_start) = path_part[after_scheme..]
        .find('/')
        .map(|i| i + after_scheme)
    else {
        return Err(Gs1Error::new(Gs1ErrorKind::NoPrimaryKey).at(path_part.len()));
    };
    if path_start == after_scheme {
        return Err(bad("it has no host").at(after_scheme));
    }
    // (segment, byte offset of the segment in the URI)
    let mut segs: Vec<(&str, usize)> = Vec::new();
    let mut off = path_start + 1;
    for s in path_part[path_start + 1..].split('/') {
        if !s.is_empty() {
            segs.push((s, off));
        }
        off += s.len() + 1;
    }
    let is_ai = |s: &str| ai::lookup(s).is_some();
    let key_at = (0..segs.len()).find(|&i| {
        (segs.len() - i).is_multiple_of(2)
            && ai::lookup(segs[i].0).is_some_and(|d| d.dlpkey.is_some())
            && (i..segs.len()).step_by(2).all(|j| is_ai(segs[j].0))
    });
    let Some(key_at) = key_at else {
        return Err(Gs1Error::new(Gs1ErrorKind::NoPrimaryKey).at(path_start));
    };
    let mut out: Vec<(Element, usize)> = Vec::new();
    let key_ai = segs[key_at].0;
    let key_def = ai::lookup(key_ai).ok_or_else(|| Gs1Error::new(Gs1ErrorKind::NoPrimaryKey))?;
    for pair in segs[key_at..].chunks(2) {
        let [(ai, _), (raw, value_off)] = pair else {
            return Err(Gs1Error::new(Gs1ErrorKind::NoPrimaryKey).at(path_start));
        };
        let mut value = percent_decode(raw).map_err(|e| e.with_ai(ai).at(*value_off))?;
        if *ai == "01" && matches!(value.len(), 8 | 12 | 13) {
            value = format!("{value:0>14}");
        }
        out.push((Element::new(*ai, value), *value_off));
    }
    check_qualifiers(key_def, &out[1..], &segs, key_at)?;
    let mut qoff = path_part.len() + 1;
    for param in query.split('&') {
        let this_off = qoff;
        qoff += param.len() + 1;
        let (name, raw) = param.split_once('=').unwrap_or((param, ""));
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Some(def) = ai::lookup(name) else {
            return Err(Gs1Error::new(Gs1ErrorKind::UnknownAi {
                ai: name.to_owned(),
            })
            .with_ai(name)
            .at(this_off));
        };
        if !def.dl_attribute {
            let kind = Gs1ErrorKind::NotDataAttribute;
            return Err(Gs1Error::new(kind).with_ai(name).at(this_off));
        }
        // The value starts after `name=`; with no `=` there is no value, and the error points at the end of the name.
        let value_off = this_off + name.len() + usize::from(param.len() > name.len());
        let value = percent_decode(raw).map_err(|e| e.with_ai(name).at(value_off))?;
        out.push((Element::new(name, value), value_off));
    }
    for (i, (e, at)) in out.iter().enumerate() {
        if out[..i].iter().any(|(o, _)| o.ai == e.ai) {
            let kind = Gs1ErrorKind::DuplicateAi;
            return Err(Gs1Error::new(kind).with_ai(&e.ai).at(*at));
        }
        validate_element(e).map_err(|err| err.at(*at))?;
    }
    Ok(out.into_iter().map(|(e, _)| e).collect())
}

/// Checks that the path qualifiers after the primary key `def` follow one of its dictionary orders.
fn check_qualifiers(
    def: &AiDef,
    quals: &[(Element, usize)],
    segs: &[(&str, usize)],
    key_at: usize,
) -> Result<(), Gs1Error> {
    let paths = def.dl_qualifier_paths();
    // For each allowed order, how many of the qualifiers it accepts, in order.
    let accepted = |order: &[&str]| {
        let mut pos = 0;
        quals
            .iter()
            .take_while(
                |(q, _)| match order[pos..].iter().position(|a| *a == q.ai) {
                    Some(i) => {
                        pos += i + 1;
                        true
                    }
                    None => false,
                },
            )
            .count()
    };
    let best = paths.iter().map(|p| accepted(p)).max().unwrap_or(0);
    if best == quals.len() {
        return Ok(());
    }
    let ai = quals[best].0.ai.clone();
    let allowed = if def.dlpkey == Some("") {
        "none".to_owned()
    } else {
        paths
            .iter()
            .map(|p| p.join(","))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let at = segs.get(key_at + 2 * (best + 1)).map_or(0, |s| s.1);
    let kind = Gs1ErrorKind::QualifierOrder {
        key: def.first,
        allowed,
    };
    Err(Gs1Error::new(kind).with_ai(&ai).at(at))
}

/// The canonical Digital Link URI of `elements` on [`GS1_RESOLVER`]; see [`to_digital_link_with`].
pub fn to_digital_link(elements: &[Element]) -> Option<String> {
    to_digital_link_with(GS1_RESOLVER, elements)
}

/// Same as [`to_digital_link`]; the name the first releases of this module used.
pub fn digital_link(elements: &[Element]) -> Option<String> {
    to_digital_link(elements)
}

/// The Digital Link URI of `elements` on `resolver` (no trailing slash).
///
/// The primary key is the first element whose AI is a Digital Link primary key; its qualifiers go in the path in
/// the dictionary's order (the alternative order that covers most of them), every other element in the query.
/// `None` when there is no primary key, an AI appears twice, or an element can be neither a qualifier nor a data
/// attribute: a URI that silently dropped data would be worse than none.
pub fn to_digital_link_with(resolver: &str, elements: &[Element]) -> Option<String> {
    let (key_idx, key_def) = elements.iter().enumerate().find_map(|(i, e)| {
        ai::lookup(&e.ai)
            .filter(|d| d.dlpkey.is_some())
            .map(|d| (i, d))
    })?;
    for (i, e) in elements.iter().enumerate() {
        if elements[..i].iter().any(|o| o.ai == e.ai) {
            return None;
        }
    }
    let key = &elements[key_idx];
    // The qualifier order covering most of the elements; on a tie, the first one the dictionary lists.
    let best = key_def
        .dl_qualifier_paths()
        .into_iter()
        .fold((0usize, Vec::new()), |acc, p| {
            let n = p
                .iter()
                .filter(|q| elements.iter().any(|e| e.ai == **q))
                .count();
            if n > acc.0 || acc.1.is_empty() {
                (n, p)
            } else {
                acc
            }
        })
        .1;
    let mut uri = format!("{resolver}/{}/{}", key.ai, percent_encode(&key.value));
    let mut in_path = vec![key_idx];
    for q in &best {
        if let Some(i) = elements.iter().position(|e| e.ai == *q) {
            uri.push_str(&format!("/{}/{}", q, percent_encode(&elements[i].value)));
            in_path.push(i);
        }
    }
    let mut sep = '?';
    for (i, e) in elements.iter().enumerate() {
        if in_path.contains(&i) {
            continue;
        }
        if !ai::lookup(&e.ai).is_some_and(|d| d.dl_attribute) {
            return None;
        }
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

/// Decodes `%XX` escapes. GS1 values are ASCII, so an escape above 0x7F is an error rather than UTF-8.
pub fn percent_decode(s: &str) -> Result<String, Gs1Error> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
            let byte = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .filter(u8::is_ascii);
            let Some(byte) = byte else {
                let found: String = s[i..].chars().take(3).collect();
                let kind = Gs1ErrorKind::PercentEncoding {
                    found: format!("{found:?}"),
                };
                return Err(Gs1Error::new(kind));
            };
            out.push(char::from(byte));
            i += 3;
        } else {
            out.push(char::from(b[i]));
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gs1::parse_bracketed;

    #[test]
    fn build() {
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
            (
                "(414)9506000014005(254)A-1",
                Some("https://id.gs1.org/414/9506000014005/254/A-1"),
            ),
            ("(01)09506000134352(8020)X(3103)000100", None),
            (
                "(01)09506000134352(3103)000100",
                Some("https://id.gs1.org/01/09506000134352?3103=000100"),
            ),
            (
                "(01)09506000134352(235)TPX1",
                Some("https://id.gs1.org/01/09506000134352/235/TPX1"),
            ),
            (
                "(8003)09506000134352ABC",
                Some("https://id.gs1.org/8003/09506000134352ABC"),
            ),
            (
                "(253)9506000134352XYZ",
                Some("https://id.gs1.org/253/9506000134352XYZ"),
            ),
            ("(10)ABC(21)1", None),
        ];
        for &(hri, want) in cases {
            let els = parse_bracketed(hri).map_err(|e| e.to_string());
            let Ok(els) = els else {
                panic!("{hri}: {els:?}")
            };
            assert_eq!(to_digital_link(&els).as_deref(), want, "{hri}");
            if let Some(uri) = want {
                let back = parse_digital_link(uri).map(|e| crate::gs1::to_hri(&e));
                assert!(back.is_ok(), "{uri}: {back:?}");
            }
        }
    }

    #[test]
    fn parse() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            (
                "https://example.com/products/01/09506000134352/10/ABC%2F1?17=271231&3103=000500",
                Ok("(01)09506000134352(10)ABC/1(17)271231(3103)000500"),
            ),
            (
                "https://id.gs1.org/01/09506000134352/22/A/10/L%251/21/S%2F1?17=271231",
                Ok("(01)09506000134352(22)A(10)L%1(21)S/1(17)271231"),
            ),
            ("HTTP://id.gs1.org/01/9506000134352", Ok("(01)09506000134352")),
            ("https://d.example/01/95011011?linkType=all", Ok("(01)00000095011011")),
            ("https://d.example/01/036000291452#frag", Ok("(01)00036000291452")),
            (
                "https://id.gs1.org/00/009506000134350004?02=09506000134352&37=4&utm=x",
                Ok("(00)009506000134350004(02)09506000134352(37)4"),
            ),
            ("https://id.gs1.org/414/9506000014005/254/A-1", Ok("(414)9506000014005(254)A-1")),
            ("https://id.gs1.org/8003/09506000134352ABC", Ok("(8003)09506000134352ABC")),
            ("https://id.gs1.org/253/9506000134352XYZ", Ok("(253)9506000134352XYZ")),
            ("https://id.gs1.org/8004/9506000ABC", Ok("(8004)9506000ABC")),
            ("https://id.gs1.org/01/09506000134352/235/T1", Ok("(01)09506000134352(235)T1")),
            ("https://id.gs1.org/8018/095060001343521236", Ok("(8018)095060001343521236")),
            ("ftp://id.gs1.org/01/09506000134352", Err("not a GS1 Digital Link URI: it must start with http:// or https://")),
            ("https://id.gs1.org", Err("no GS1 Digital Link primary key in the path (expected e.g. /01/<GTIN>)")),
            ("https:///01/09506000134352", Err("not a GS1 Digital Link URI: it has no host")),
            ("https://id.gs1.org/products/123", Err("no GS1 Digital Link primary key in the path (expected e.g. /01/<GTIN>)")),
            ("https://id.gs1.org/10/ABC", Err("no GS1 Digital Link primary key in the path (expected e.g. /01/<GTIN>)")),
            ("https://id.gs1.org/01", Err("no GS1 Digital Link primary key in the path (expected e.g. /01/<GTIN>)")),
            ("https://id.gs1.org/01/09506000134352/21/S/10/L", Err("AI 10: not allowed in the path after primary key AI 01 (allowed in order: 22,10,21 or 235)")),
            ("https://id.gs1.org/01/09506000134352/10/L/235/T", Err("AI 235: not allowed in the path after primary key AI 01 (allowed in order: 22,10,21 or 235)")),
            ("https://id.gs1.org/00/009506000134350004/10/L", Err("AI 10: not allowed in the path after primary key AI 00 (allowed in order: none)")),
            ("https://id.gs1.org/01/09506000134352?10=A&10=B", Err("AI 10: appears twice")),
            ("https://id.gs1.org/01/09506000134352/10/A?10=A", Err("AI 10: appears twice")),
            ("https://id.gs1.org/01/09506000134352?21=A", Err("AI 21: not allowed as a Digital Link data attribute")),
            ("https://id.gs1.org/01/09506000134352?23=A", Err("unknown AI 23 at position 37")),
            ("https://id.gs1.org/01/09506000134353", Err("AI 01: check digit should be 2, found 3")),
            ("https://id.gs1.org/01/09506000134352/10/A%2", Err("AI 10: bad percent-encoding \"%2\"")),
            ("https://id.gs1.org/01/09506000134352/10/A%FF", Err("AI 10: bad percent-encoding \"%FF\"")),
            ("https://id.gs1.org/01/09506000134352/10/A%20B", Err("AI 10: character ' ' not allowed")),
            ("https://id.gs1.org/01/0950 6000134352", Err("not a GS1 Digital Link URI: character ' ' not allowed in a URI")),
            ("https://id.gs1.org/01/09506000134352?17=271341", Err("AI 17: date 271341 is not a valid date")),
        ];
        for &(uri, want) in cases {
            let got = parse_digital_link(uri)
                .map(|e| crate::gs1::to_hri(&e))
                .map_err(|e| e.to_string());
            assert_eq!(got, want.map(str::to_owned).map_err(str::to_owned), "{uri}");
        }
    }

    /// Regression (fuzz/regressions/digital_link): a query AI without `=` reported a position past the URI's end.
    #[test]
    fn error_positions_stay_inside_the_uri() {
        for uri in [
            "https://example.com/example.com/01/9506000134352?3100",
            "https://id.gs1.org/01/09506000134352?17",
            "https://id.gs1.org/01/09506000134352?17=",
        ] {
            let err = parse_digital_link(uri).unwrap_err();
            let pos = err.position().unwrap_or(0);
            assert!(pos <= uri.len(), "{uri}: position {pos} past {}", uri.len());
        }
    }

    #[test]
    fn encoding() {
        assert_eq!(percent_encode("aZ9-._~"), "aZ9-._~");
        assert_eq!(percent_encode("a/b c&%"), "a%2Fb%20c%26%25");
        assert_eq!(
            percent_decode("a%2Fb%20c%26%25").ok().as_deref(),
            Some("a/b c&%")
        );
    }
}
