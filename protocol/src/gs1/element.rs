//! Layer 1: GS1 element strings, syntax only.
//!
//! Turns the bytes a scanner sends (`0109506000134352` `10ABC123` `<GS>` `17271231`) or the bracketed
//! human-readable form (`(01)09506000134352(10)ABC123(17)271231`) into a list of [`Element`]s, checking each value
//! against its AI's definition in [`super::ai`]: lengths, character sets, check digits and date/time syntax.
//! Associations between AIs and the meaning of values belong to [`super::interpret`].
//!
//! A FNC1 separator is only needed after a value whose AI is not of predefined length. When a scanner or encoder
//! leaves one out, the variable-length value simply runs on: `10ABC12317271231` is one lot `ABC12317271231`, which is
//! legal GS1 and cannot be told apart from what was meant. Redundant separators (a leading FNC1, one after a
//! fixed-length value, two in a row) are tolerated because real encoders emit them.

use super::ai::{self, AiDef};
use super::lint::lint;
use super::{Gs1Error, Gs1ErrorKind};
use serde::{Deserialize, Serialize};

/// One AI and its value, e.g. `01` / `09506000134352`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Element {
    /// The Application Identifier, 2 to 4 digits.
    pub ai: String,
    /// The value, ASCII from the AI's character set.
    pub value: String,
}

impl Element {
    /// Builds an element (no validation; [`validate_element`] checks it).
    pub fn new(ai: impl Into<String>, value: impl Into<String>) -> Self {
        Element {
            ai: ai.into(),
            value: value.into(),
        }
    }
}

/// Parses an unbracketed element string: the data of a GS1-128 (`]C1`), GS1 DataMatrix (`]d2`), GS1 QR (`]Q3`),
/// GS1 DataBar (`]e0`) or GS1 DotCode (`]J1`) symbol, with `fnc1` (usually GS, 0x1D) as the separator.
pub fn parse_element_string(data: &[u8], fnc1: u8) -> Result<Vec<Element>, Gs1Error> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        if data[pos] == fnc1 {
            pos += 1;
            continue;
        }
        let (ai_len, def) = read_ai(data, pos)?;
        let ai = ascii(&data[pos..pos + ai_len]);
        let start = pos + ai_len;
        let rest = &data[start..];
        let to_fnc1 = rest.iter().position(|&b| b == fnc1).unwrap_or(rest.len());
        // A predefined-length value ends after its length even without a separator; any other value runs to the
        // next FNC1 or the end of the data.
        let len = if def.fnc1_required {
            to_fnc1
        } else {
            to_fnc1.min(def.max_len())
        };
        let value = &rest[..len];
        validate_value(&ai, def, value, start)?;
        out.push(Element {
            ai,
            value: ascii(value),
        });
        pos = start + len;
    }
    if out.is_empty() {
        return Err(Gs1Error::new(Gs1ErrorKind::Empty).at(0));
    }
    Ok(out)
}

/// Parses the bracketed human-readable form, e.g. `(01)09506000134352(10)ABC123`.
///
/// CSET 82 allows `(` inside values; write it as `\(` so it is not taken for the start of the next AI (this is
/// what [`to_hri`] produces, and what the GS1 Barcode Syntax Engine accepts).
pub fn parse_bracketed(s: &str) -> Result<Vec<Element>, Gs1Error> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(Gs1Error::new(Gs1ErrorKind::Empty).at(0));
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        if b[pos] != b'(' {
            return Err(Gs1Error::new(Gs1ErrorKind::ExpectedBracket).at(pos));
        }
        let Some(close) = b[pos + 1..]
            .iter()
            .position(|&c| c == b')')
            .map(|i| pos + 1 + i)
        else {
            return Err(Gs1Error::new(Gs1ErrorKind::UnclosedBracket).at(pos));
        };
        let ai = &s[pos + 1..close];
        if !(2..=4).contains(&ai.len()) || !ai.bytes().all(|c| c.is_ascii_digit()) {
            return Err(Gs1Error::new(Gs1ErrorKind::ExpectedAi {
                found: format!("{ai:?}"),
            })
            .at(pos + 1));
        }
        let Some(def) = ai::lookup(ai) else {
            return Err(Gs1Error::new(Gs1ErrorKind::UnknownAi { ai: ai.to_owned() })
                .with_ai(ai)
                .at(pos + 1));
        };
        let start = close + 1;
        let mut value = Vec::new();
        let mut i = start;
        while i < b.len() && b[i] != b'(' {
            if b[i] == b'\\' && b.get(i + 1) == Some(&b'(') {
                i += 1;
            }
            value.push(b[i]);
            i += 1;
        }
        // Report a non-ASCII character as the character the user typed, not as one of its UTF-8 bytes.
        if let Some((off, ch)) = s[start..i].char_indices().find(|(_, c)| !c.is_ascii()) {
            return Err(Gs1Error::new(Gs1ErrorKind::BadChar { ch: show_char(ch) })
                .with_ai(ai)
                .at(start + off));
        }
        validate_value(ai, def, &value, start)?;
        out.push(Element {
            ai: ai.to_owned(),
            value: ascii(&value),
        });
        pos = i;
    }
    Ok(out)
}

/// The bracketed human-readable form, `(01)09506000134352(10)ABC123`; `(` inside a value is written `\(`.
pub fn to_hri(elements: &[Element]) -> String {
    let mut s = String::new();
    for e in elements {
        s.push('(');
        s.push_str(&e.ai);
        s.push(')');
        s.push_str(&e.value.replace('(', "\\("));
    }
    s
}

/// The unbracketed element string, with `fnc1` after every value that needs a separator and is not the last.
/// An AI missing from our table is treated as needing one, which is always safe.
pub fn to_element_string(elements: &[Element], fnc1: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in elements.iter().enumerate() {
        out.extend_from_slice(e.ai.as_bytes());
        out.extend_from_slice(e.value.as_bytes());
        let last = i + 1 == elements.len();
        if !last && ai::lookup(&e.ai).is_none_or(|d| d.fnc1_required) {
            out.push(fnc1);
        }
    }
    out
}

/// Checks one element against its AI's definition (for elements built by hand rather than parsed).
pub fn validate_element(e: &Element) -> Result<(), Gs1Error> {
    let Some(def) = ai::lookup(&e.ai) else {
        return Err(Gs1Error::new(Gs1ErrorKind::UnknownAi { ai: e.ai.clone() }).with_ai(&e.ai));
    };
    validate_value(&e.ai, def, e.value.as_bytes(), 0).map_err(|mut err| {
        // Positions inside a hand-built element mean nothing to the caller.
        err.position = None;
        err
    })
}

/// Reads the AI starting at `pos`, which is known to be inside `data`.
fn read_ai(data: &[u8], pos: usize) -> Result<(usize, &'static AiDef), Gs1Error> {
    let rest = &data[pos..];
    let digits = rest
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        let found = show_char(char::from(rest[0]));
        return Err(Gs1Error::new(Gs1ErrorKind::ExpectedAi { found }).at(pos));
    }
    if let Some(found) = ai::lookup_prefix(rest) {
        return Ok(found);
    }
    let partial = ascii(&rest[..digits]);
    if digits < 4
        && digits == rest.len()
        && ai::AI_TABLE
            .iter()
            .any(|d| d.first.len() > digits && d.first.starts_with(&partial))
    {
        return Err(Gs1Error::new(Gs1ErrorKind::IncompleteAi {
            partial: partial.clone(),
        })
        .with_ai(&partial)
        .at(pos));
    }
    let ai = ascii(&rest[..digits.min(2)]);
    Err(Gs1Error::new(Gs1ErrorKind::UnknownAi { ai: ai.clone() })
        .with_ai(&ai)
        .at(pos))
}

/// Checks `value` (starting at byte `pos` of the input) against `def`'s components.
pub(crate) fn validate_value(
    ai: &str,
    def: &AiDef,
    value: &[u8],
    pos: usize,
) -> Result<(), Gs1Error> {
    let err = |kind: Gs1ErrorKind, at: usize| Gs1Error::new(kind).with_ai(ai).at(at);
    let unit = if def.is_numeric() {
        "digits"
    } else {
        "characters"
    };
    if value.len() > def.max_len() {
        let kind = if def.is_fixed_len() {
            Gs1ErrorKind::TooLong {
                expected: format!("{} {unit}", def.max_len()),
            }
        } else {
            Gs1ErrorKind::LongerThan { max: def.max_len() }
        };
        return Err(err(kind, pos));
    }
    if value.is_empty() {
        return Err(err(Gs1ErrorKind::EmptyValue, pos));
    }
    if value.len() < def.min_len() {
        let expected = if def.is_fixed_len() {
            format!("{} {unit}", def.min_len())
        } else {
            format!("at least {} {unit}", def.min_len())
        };
        return Err(err(Gs1ErrorKind::TooShort { expected }, pos));
    }
    let mut off = 0;
    for c in def.components {
        let remaining = value.len() - off;
        if remaining == 0 && c.optional {
            break;
        }
        let len = remaining.min(usize::from(c.max));
        if len < usize::from(c.min) {
            let expected = format!("{} more {unit}", usize::from(c.min) - len);
            return Err(err(Gs1ErrorKind::TooShort { expected }, pos + off));
        }
        let part = &value[off..off + len];
        if let Some(i) = part.iter().position(|&b| !c.charset.allows(b)) {
            let ch = show_char(char::from(part[i]));
            return Err(err(Gs1ErrorKind::BadChar { ch }, pos + off + i));
        }
        for &linter in c.linters {
            lint(linter, part).map_err(|kind| err(kind, pos + off).with_rule(linter.name()))?;
        }
        off += len;
    }
    if off < value.len() {
        let kind = Gs1ErrorKind::LongerThan { max: def.max_len() };
        return Err(err(kind, pos + off));
    }
    Ok(())
}

/// Bytes already known to be ASCII (or shown as Latin-1 in an error) as a `String`.
fn ascii(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if s.is_ascii() => s.to_owned(),
        _ => b.iter().map(|&c| char::from(c)).collect(),
    }
}

/// A character as a person reads it in an error message: `'A'`, `'\u{7f}'`.
pub(crate) fn show_char(c: char) -> String {
    format!("'{}'", c.escape_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GS: u8 = 0x1d;

    /// `(ai, value)` pairs, the way test tables spell element lists.
    type Pairs = &'static [(&'static str, &'static str)];

    fn els(pairs: &[(&str, &str)]) -> Vec<Element> {
        pairs.iter().map(|(a, v)| Element::new(*a, *v)).collect()
    }

    #[test]
    fn valid_element_strings() {
        let cases: &[(&[u8], Pairs)] = &[
            (b"0109506000134352", &[("01", "09506000134352")]),
            (
                b"010950600013435217271231",
                &[("01", "09506000134352"), ("17", "271231")],
            ),
            (
                b"01095060001343521727123110ABC123",
                &[("01", "09506000134352"), ("17", "271231"), ("10", "ABC123")],
            ),
            // AI 17 after a lot, correctly separated.
            (
                b"010950600013435210ABC123\x1d17271231",
                &[("01", "09506000134352"), ("10", "ABC123"), ("17", "271231")],
            ),
            // Missing FNC1: the lot swallows the date. Legal GS1, and indistinguishable from intent.
            (
                b"010950600013435210ABC12317271231",
                &[("01", "09506000134352"), ("10", "ABC12317271231")],
            ),
            // Leading FNC1 and a redundant one after a fixed-length value are tolerated.
            (
                b"\x1d0109506000134352\x1d21SN-1",
                &[("01", "09506000134352"), ("21", "SN-1")],
            ),
            (b"00009506000134350004", &[("00", "009506000134350004")]),
            (
                b"0209506000134352379\x1d",
                &[("02", "09506000134352"), ("37", "9")],
            ),
            (b"3103001250", &[("3103", "001250")]),
            (
                b"4149506000014005254A-01-02",
                &[("414", "9506000014005"), ("254", "A-01-02")],
            ),
            (b"17270200", &[("17", "270200")]),
            (b"17280229", &[("17", "280229")]),
            (
                b"70032701312359\x1d8006095060001343520203",
                &[("7003", "2701312359"), ("8006", "095060001343520203")],
            ),
            (b"3922123\x1d99X", &[("3922", "123"), ("99", "X")]),
            (b"800309506000134352ABC", &[("8003", "09506000134352ABC")]),
        ];
        for &(data, want) in cases {
            let got = parse_element_string(data, GS);
            assert_eq!(got, Ok(els(want)), "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn invalid_element_strings() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty element string at position 0"),
            (b"\x1d", "empty element string at position 0"),
            (
                b"0109506000134353",
                "AI 01: check digit should be 2, found 3",
            ),
            (
                b"01095060001343",
                "AI 01: value too short (expected 14 digits)",
            ),
            (
                b"010950600013435",
                "AI 01: value too short (expected 14 digits)",
            ),
            (
                b"0109506000\x1d134352",
                "AI 01: value too short (expected 14 digits)",
            ),
            (b"17271341", "AI 17: date 271341 is not a valid date"),
            (b"17271301", "AI 17: date 271301 is not a valid date"),
            (b"17270229", "AI 17: date 270229 is not a valid date"),
            (b"1727123", "AI 17: value too short (expected 6 digits)"),
            (b"010950600013435223ABC", "unknown AI 23 at position 16"),
            (
                b"0109506000134352\x1d\x1d23ABC",
                "unknown AI 23 at position 18",
            ),
            (
                b"10ABCDEFGHIJKLMNOPQRSTU",
                "AI 10: value longer than 20 characters",
            ),
            (b"21AB\x7fC", "AI 21: character '\\u{7f}' not allowed"),
            (b"21AB C", "AI 21: character ' ' not allowed"),
            (b"10", "AI 10: missing value"),
            (b"10\x1d17271231", "AI 10: missing value"),
            (b"0A", "unknown AI 0 at position 0"),
            (b"ABC", "expected an AI at position 0, found 'A'"),
            (b"31", "incomplete AI 31 at position 0"),
            (b"70032701312460", "AI 7003: time 2460 is not a valid time"),
            (b"4221234", "AI 422: value too long (expected 3 digits)"),
            (
                b"80031095060001343579",
                "AI 8003: first digit must be 0, found 1",
            ),
            (
                b"800609506000134352 203",
                "AI 8006: character ' ' not allowed",
            ),
            (
                b"8006095060001343520302",
                "AI 8006: piece of total 0302 is not valid",
            ),
            (b"3103\xff", "AI 3103: value too short (expected 6 digits)"),
            (b"10\xff", "AI 10: character '\\u{ff}' not allowed"),
        ];
        for &(data, want) in cases {
            let got = parse_element_string(data, GS).map_err(|e| e.to_string());
            assert_eq!(
                got,
                Err(want.to_owned()),
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
    }

    #[test]
    fn bracketed() {
        let ok: &[(&str, Pairs)] = &[
            (
                "(01)09506000134352(10)ABC123",
                &[("01", "09506000134352"), ("10", "ABC123")],
            ),
            ("(10)A\\(B)(21)1", &[("10", "A(B)"), ("21", "1")]),
            ("(3103)000250", &[("3103", "000250")]),
        ];
        for &(s, want) in ok {
            assert_eq!(parse_bracketed(s), Ok(els(want)), "{s}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "empty element string at position 0"),
            ("01)0950", "expected '(' at position 0"),
            ("(01", "unclosed '(' at position 0"),
            ("(1)0", "expected an AI at position 1, found \"1\""),
            ("(23)0", "unknown AI 23 at position 1"),
            (
                "(01)09506000134353",
                "AI 01: check digit should be 2, found 3",
            ),
            ("(10)Ä", "AI 10: character '\\u{c4}' not allowed"),
            ("(10)", "AI 10: missing value"),
        ];
        for &(s, want) in bad {
            assert_eq!(
                parse_bracketed(s).map_err(|e| e.to_string()),
                Err(want.to_owned()),
                "{s}"
            );
        }
    }

    #[test]
    fn encoding() {
        let cases: &[(Pairs, &[u8], &str)] = &[
            (
                &[("01", "09506000134352"), ("17", "271231"), ("10", "ABC123")],
                b"01095060001343521727123110ABC123",
                "(01)09506000134352(17)271231(10)ABC123",
            ),
            (
                &[("01", "09506000134352"), ("10", "ABC123"), ("17", "271231")],
                b"010950600013435210ABC123\x1d17271231",
                "(01)09506000134352(10)ABC123(17)271231",
            ),
            (&[("10", "A(B")], b"10A(B", "(10)A\\(B"),
            (&[], b"", ""),
        ];
        for &(pairs, es, hri) in cases {
            let e = els(pairs);
            assert_eq!(to_element_string(&e, GS), es, "{pairs:?}");
            assert_eq!(to_hri(&e), hri, "{pairs:?}");
        }
    }
}
