//! One scan in, a typed [`Scan`] out: what the agent's workflows consume and what `dockhand-agent decode --json`
//! prints (DESIGN §8; the JSON shapes are a contract).
//!
//! Routing, first match wins:
//!
//! 1. `DH:` → [`Scan::Command`]; `LOC:` → [`Scan::Location`], whatever the symbology (command sheets are Code 128
//!    `]C0` or Code 39 `]A0`..`]A7`).
//! 2. By AIM symbology identifier (ISO/IEC 15424):
//!    - `]C1`, `]e0`, `]d2`, `]Q3`, `]J1` (GS1-128, DataBar, GS1 DataMatrix, GS1 QR, GS1 DotCode): an unbracketed
//!      element string.
//!    - `]E0` (EAN-13, UPC-A; eight digits are UPC-E, expanded to UPC-A), `]E4` (EAN-8), `]I1` (ITF-14): a GTIN,
//!      whose check digit must hold.
//!    - `]E3` (EAN/UPC with add-on): the GTIN as for `]E0`, the trailing 2 or 5 digits kept as [`Gs1Scan::addon`].
//!    - `]E1`, `]E2` (an add-on read alone): an error, since an add-on identifies nothing without its main symbol.
//!    - Anything else (`]C0`, `]C2`, `]A0`.., `]d1`, `]Q1`, unknown ids): plain text, read as below.
//! 3. Plain text or no AIM id: an `http://` / `https://` URI is a GS1 Digital Link; an 8/12/13/14-digit number
//!    whose check digit holds is a GTIN; text starting with `(` is bracketed HRI.
//! 4. No AIM id, and data starting with FNC1 or [`DecodeOptions::assume_gs1`]: an unbracketed element string.
//! 5. Anything else is an error.
//!
//! FNC1 in element strings: GS (0x1D) as scanners send it, the configured [`DecodeOptions::fnc1_substitute`] byte
//! that keyboard wedges send instead, and the textual forms wedges type for a control character. `^]` is always
//! recognised in GS1 element-string data: `^` and `]` are outside every GS1 character set, so it can never be data.
//! `<GS>` is recognised only with [`DecodeOptions::fnc1_text`]: `<`, `G`, `S` and `>` are all legal in a lot or
//! serial (CSET 82), so reading them as FNC1 unasked would split a legal value (the fuzzer found exactly that).
//! Error positions in element strings count bytes after this substitution.

use crate::command::{parse_command, parse_location, Command, CommandError};
use crate::gs1::{self, upc, Element, Gs1Error, Gs1Item, TypedValue};
use crate::scan::split_aim;
use serde_json::{json, Map, Value};
use time::Date;

/// The GS1 FNC1 separator as scanners transmit it.
pub const GS: u8 = 0x1d;

/// Symbologies whose data is an unbracketed GS1 element string.
const GS1_SYMBOLOGIES: &[&str] = &["]C1", "]e0", "]d2", "]Q3", "]J1"];

/// How to decode scans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Today's date, for the century of YYMMDD dates.
    pub today: Date,
    /// A byte that stands for FNC1 (e.g. `b'|'` from a keyboard wedge that cannot send GS); replaced by GS in GS1 data.
    pub fnc1_substitute: Option<u8>,
    /// Treat unbracketed data without an AIM id as a GS1 element string.
    pub assume_gs1: bool,
    /// Also read the text `<GS>` as FNC1 (keyboard wedges configured to spell out control characters). Off by
    /// default: `<GS>` is legal text inside a lot or serial.
    pub fnc1_text: bool,
}

/// A decoded GS1 scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gs1Scan {
    /// The AIM symbology identifier, if the scanner sent one.
    pub symbology: Option<String>,
    /// The data as text (GS stays a GS character, which JSON shows as `\u001d`).
    pub raw: String,
    /// The elements in scan order.
    pub elements: Vec<Element>,
    /// The date the scan was decoded against (fixes the century of YYMMDD dates).
    pub today: Date,
    /// The 2- or 5-digit EAN/UPC add-on read with the main symbol (`]E3`), if any.
    pub addon: Option<String>,
    /// The typed view of the elements.
    pub item: Gs1Item,
}

impl Gs1Scan {
    /// The typed value of each element, in the same order as `elements`. Computed on demand: the workflows use
    /// [`Gs1Scan::item`], only printing needs every element typed.
    pub fn typed(&self) -> Vec<TypedValue> {
        self.elements
            .iter()
            .map(|e| gs1::typed_value(&e.ai, &e.value, self.today))
            .collect()
    }
}

/// A decoded scan.
// Scans are decoded and handled one at a time, never stored in bulk, so the big GS1 variant costs nothing worth
// a Box in every consumer's pattern.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// A `DH:` command barcode.
    Command(Command),
    /// A `LOC:` location code.
    Location(String),
    /// A GS1 barcode (including plain EAN/UPC/ITF-14, as element 01, and Digital Link URIs).
    Gs1(Gs1Scan),
}

/// Why a scan could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The scan was empty.
    #[error("empty scan")]
    Empty,
    /// Bytes that are not UTF-8.
    #[error("scan is not valid text: invalid UTF-8 at byte {position}")]
    InvalidUtf8 {
        /// Byte position of the first invalid byte.
        position: usize,
    },
    /// A control character other than GS.
    #[error("scan contains control character {ch} at byte {position}")]
    ControlChar {
        /// The character, quoted and escaped.
        ch: String,
        /// Its byte position.
        position: usize,
    },
    /// A bad `DH:` or `LOC:` barcode.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// Bad GS1 data.
    #[error(transparent)]
    Gs1(#[from] Gs1Error),
    /// An EAN/UPC add-on read without its main symbol (`]E1`, `]E2`).
    #[error("EAN/UPC add-on {addon} alone: scan the main barcode next to it")]
    AddOnAlone {
        /// The add-on digits.
        addon: String,
    },
    /// Data that is none of the above.
    #[error("not a GS1 barcode, command or location: {0}")]
    Unrecognized(String),
}

impl DecodeError {
    /// The rule broken, a short stable name (for GS1 errors see [`gs1::Gs1ErrorKind::rule`]).
    pub fn rule(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::InvalidUtf8 { .. } => "utf8",
            DecodeError::ControlChar { .. } => "control-char",
            DecodeError::Command(_) => "command",
            DecodeError::Gs1(e) => e.rule(),
            DecodeError::AddOnAlone { .. } => "addon",
            DecodeError::Unrecognized(_) => "unrecognized",
        }
    }

    /// The contract JSON: `{"error":{"message": "...", "position": n, "ai": "17", "rule": "yymmd0"}}`, position and
    /// AI when known.
    pub fn to_json(&self) -> Value {
        let mut err = Map::new();
        err.insert("message".into(), Value::String(self.to_string()));
        let (position, ai) = match self {
            DecodeError::InvalidUtf8 { position } | DecodeError::ControlChar { position, .. } => {
                (Some(*position), None)
            }
            DecodeError::Gs1(e) => (e.position(), e.ai()),
            _ => (None, None),
        };
        if let Some(p) = position {
            err.insert("position".into(), json!(p));
        }
        if let Some(ai) = ai {
            err.insert("ai".into(), json!(ai));
        }
        err.insert("rule".into(), json!(self.rule()));
        json!({ "error": err })
    }
}

/// Decodes one framed scan: its AIM id (if any) and its data.
pub fn decode_scan(
    symbology: Option<&str>,
    data: &[u8],
    opts: &DecodeOptions,
) -> Result<Scan, DecodeError> {
    if data.is_empty() {
        return Err(DecodeError::Empty);
    }
    let text = std::str::from_utf8(data).map_err(|e| DecodeError::InvalidUtf8 {
        position: e.valid_up_to(),
    })?;
    if let Some((position, ch)) = text
        .char_indices()
        .find(|&(_, c)| c.is_control() && c != '\u{1d}')
    {
        let ch = format!("'{}'", ch.escape_default());
        return Err(DecodeError::ControlChar { ch, position });
    }
    if let Some(cmd) = parse_command(text) {
        return Ok(Scan::Command(cmd?));
    }
    if let Some(loc) = parse_location(text) {
        return Ok(Scan::Location(loc?));
    }
    let gs1_data = normalise_fnc1(data, opts.fnc1_substitute, opts.fnc1_text);
    let gs1 = |elements: Vec<Element>, addon: Option<String>| -> Result<Scan, DecodeError> {
        // Every element here came from a parser of this crate (or a verified retail GTIN): already validated.
        let item = gs1::interpret_validated(&elements, opts.today)?;
        Ok(Scan::Gs1(Gs1Scan {
            symbology: symbology.map(str::to_owned),
            raw: String::from_utf8_lossy(&gs1_data).into_owned(),
            elements,
            today: opts.today,
            addon,
            item,
        }))
    };
    let gtin = |g: String| vec![Element::new("01", g)];
    match symbology {
        Some(s) if GS1_SYMBOLOGIES.contains(&s) => {
            return gs1(gs1::parse_element_string(&gs1_data, GS)?, None);
        }
        Some("]E0" | "]E4" | "]I1") => return gs1(gtin(retail_gtin(symbology, text)?), None),
        Some("]E3") => {
            // EAN-13/UPC-A (13 digits) or UPC-E (8) followed by a 2- or 5-digit add-on. Digits only, checked
            // before splitting: a split by byte count inside a multi-byte character would panic (found by fuzzing).
            if !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(unrecognized(text));
            }
            let split = match text.len() {
                15 | 18 => 13,
                10 | 13 => 8,
                _ => {
                    return Err(upc::check_addon(text)
                        .err()
                        .map_or_else(|| unrecognized(text), Into::into))
                }
            };
            let (main, addon) = text.split_at(split);
            let addon = upc::check_addon(addon)?.to_owned();
            let g = retail_gtin(Some("]E0"), main)?;
            return gs1(gtin(g), Some(addon));
        }
        Some("]E1" | "]E2") => {
            let addon = upc::check_addon(text)?.to_owned();
            return Err(DecodeError::AddOnAlone { addon });
        }
        _ => {}
    }
    // Plain text from here on: Code 128 / Code 39 / plain DataMatrix or QR, or no AIM id.
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return gs1(gs1::parse_digital_link(text)?, None);
    }
    let all_digits = text.bytes().all(|b| b.is_ascii_digit());
    if all_digits && matches!(text.len(), 8 | 12 | 13 | 14) {
        if let Ok(g) = gs1::gtin_from_retail(text) {
            return gs1(gtin(g), None);
        }
    }
    if text.starts_with('(') {
        match gs1::parse_bracketed(text) {
            Ok(elements) => return gs1(elements, None),
            // It looks like HRI, so the HRI error says more than "not recognised".
            Err(e) if symbology.is_some() || !opts.assume_gs1 => return Err(e.into()),
            Err(_) => {}
        }
    }
    if symbology.is_none() && (gs1_data.first() == Some(&GS) || opts.assume_gs1) {
        return gs1(gs1::parse_element_string(&gs1_data, GS)?, None);
    }
    if symbology.is_none() && all_digits && matches!(text.len(), 8 | 12 | 13 | 14) {
        // A GTIN-length number with a bad check digit: say so rather than "not recognised".
        return Err(gs1::gtin_from_retail(text)
            .err()
            .map_or_else(|| unrecognized(text), Into::into));
    }
    Err(unrecognized(text))
}

/// The GTIN-14 of an EAN/UPC/ITF symbol's data; eight digits under `]E0` are UPC-E.
fn retail_gtin(symbology: Option<&str>, text: &str) -> Result<String, Gs1Error> {
    if symbology == Some("]E0") && text.len() == 8 {
        return Ok(format!("{:0>14}", upc::expand_upce(text)?));
    }
    gs1::gtin_from_retail(text)
}

/// Decodes a scan typed or pasted as text: splits the AIM id off first, then [`decode_scan`].
pub fn decode_text(s: &str, opts: &DecodeOptions) -> Result<Scan, DecodeError> {
    let (symbology, data) = split_aim(s.as_bytes());
    decode_scan(symbology.as_deref(), data, opts)
}

/// Replaces every FNC1 stand-in (the configured byte, `^]`, and `<GS>` when asked) with GS. Borrows when there is
/// nothing to replace, which is the common case (scanners send GS) and keeps the decode hot path free of a copy.
fn normalise_fnc1(data: &[u8], sub: Option<u8>, text: bool) -> std::borrow::Cow<'_, [u8]> {
    let needs = |i: usize| {
        let rest = &data[i..];
        Some(data[i]) == sub || rest.starts_with(b"^]") || (text && rest.starts_with(b"<GS>"))
    };
    if !(0..data.len()).any(needs) {
        return std::borrow::Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        let rest = &data[i..];
        if text && rest.starts_with(b"<GS>") {
            out.push(GS);
            i += 4;
        } else if rest.starts_with(b"^]") {
            out.push(GS);
            i += 2;
        } else {
            out.push(if Some(data[i]) == sub { GS } else { data[i] });
            i += 1;
        }
    }
    std::borrow::Cow::Owned(out)
}

fn unrecognized(text: &str) -> DecodeError {
    // Keep error messages readable when someone scans a whole paragraph.
    const SHOWN: usize = 64;
    let mut shown: String = text
        .chars()
        .take(SHOWN)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if text.chars().count() > SHOWN {
        shown.push('…');
    }
    DecodeError::Unrecognized(shown)
}

fn date_json(d: Option<Date>) -> Value {
    d.map_or(Value::Null, |d| Value::String(gs1::typed::iso_date(d)))
}

impl Scan {
    /// The contract JSON (DESIGN §8).
    pub fn to_json(&self) -> Value {
        match self {
            Scan::Command(c) => json!({
                "kind": "command",
                "command": c.name(),
                "argument": c.argument(),
            }),
            Scan::Location(l) => json!({ "kind": "location", "location": l }),
            Scan::Gs1(g) => {
                let it = &g.item;
                let elements: Vec<Value> = g
                    .elements
                    .iter()
                    .zip(g.typed())
                    .map(|(e, t)| {
                        json!({
                            "ai": e.ai,
                            "title": gs1::typed::title(&e.ai),
                            "value": e.value,
                            "typed": t,
                        })
                    })
                    .collect();
                json!({
                    "kind": "gs1",
                    "symbology": g.symbology,
                    "raw": g.raw,
                    "elements": elements,
                    "addon": g.addon,
                    "hri": gs1::to_hri(&g.elements),
                    "element_string": String::from_utf8_lossy(&gs1::to_element_string(&g.elements, GS)),
                    "digital_link": gs1::to_digital_link(&g.elements),
                    "gtin": it.gtin,
                    "sscc": it.sscc,
                    "lot": it.lot,
                    "serial": it.serial,
                    "expiry": date_json(it.expiry),
                    "best_before": date_json(it.best_before),
                    "production_date": date_json(it.production_date),
                    "count": it.count,
                    "content_gtin": it.content_gtin,
                    "ship_to_gln": it.ship_to_gln,
                    "location_gln": it.location_gln,
                    "location_ext": it.location_ext,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    fn opts() -> DecodeOptions {
        DecodeOptions {
            today: date!(2026 - 03 - 15),
            fnc1_substitute: None,
            assume_gs1: false,
            fnc1_text: false,
        }
    }

    /// Decodes `input` (AIM id included) and returns its JSON, or the error's message.
    fn dec(input: &[u8], o: &DecodeOptions) -> Result<Value, String> {
        let (sym, data) = split_aim(input);
        decode_scan(sym.as_deref(), data, o)
            .map(|s| s.to_json())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn routes() {
        // (input, expected hri or kind marker, or expected error message)
        let cases: &[(&[u8], Result<&str, &str>)] = &[
            (b"]C1010950600013435210ABC123\x1d17271231", Ok("(01)09506000134352(10)ABC123(17)271231")),
            (b"]C101095060001343521727123110ABC123", Ok("(01)09506000134352(17)271231(10)ABC123")),
            (b"]C1\x1d0109506000134352", Ok("(01)09506000134352")),
            (b"]d2010950600013435221S1", Ok("(01)09506000134352(21)S1")),
            (b"]Q300009506000134350004", Ok("(00)009506000134350004")),
            (b"]e00109506000134352", Ok("(01)09506000134352")),
            (b"]J10109506000134352", Ok("(01)09506000134352")),
            (b"]E09506000134352", Ok("(01)09506000134352")),
            (b"]E004252614", Ok("(01)00042100005264")), // UPC-E
            (b"]E011234579", Ok("(01)00112345000079")), // UPC-E, number system 1
            (b"]E0036000291452", Ok("(01)00036000291452")), // UPC-A sent as 12 digits
            (b"]E3950600013435212", Ok("(01)09506000134352")),
            (b"]E3950600013435212345", Ok("(01)09506000134352")),
            (b"]E30425261412", Ok("(01)00042100005264")),
            (b"]E112", Err("EAN/UPC add-on 12 alone: scan the main barcode next to it")),
            (b"]E212345", Err("EAN/UPC add-on 12345 alone: scan the main barcode next to it")),
            (b"]E1123", Err("an EAN/UPC add-on has 2 or 5 digits, found \"123\"")),
            (b"]E39506000134352123", Err("an EAN/UPC add-on has 2 or 5 digits, found \"9506000134352123\"")),
            (b"]E3950600013435312", Err("GTIN check digit should be 2, found 3")),
            (b"]E024252614", Err("UPC-E number system must be 0 or 1, found 2")),
            (b"]E004252615", Err("GTIN check digit should be 4, found 5")),
            (b"]C0DH:RECEIVE", Ok("command")),
            (b"]A0LOC:A-01", Ok("location")),
            (b"]A0DH:DONE", Ok("command")),
            (b"]d1DH:PICK:PL-1", Ok("command")),
            (b"]Q1LOC:B-02", Ok("location")),
            (b"]A0hello", Err("not a GS1 barcode, command or location: hello")),
            (b"]d1https://example.com/01/09506000134352/10/ABC%2F1?17=271231", Ok("(01)09506000134352(10)ABC/1(17)271231")),
            (b"]Q1https://id.gs1.org/00/009506000134350004", Ok("(00)009506000134350004")),
            (b"https://id.gs1.org/01/09506000134352?3103=000500", Ok("(01)09506000134352(3103)000500")),
            (b"]Q1https://id.gs1.org/01/09506000134352/21/S/10/L", Err("AI 10: not allowed in the path after primary key AI 01 (allowed in order: 22,10,21 or 235)")),
            (b"]C2ABC", Err("not a GS1 barcode, command or location: ABC")),
            // Regression (fuzz/regressions/decode_scan): a multi-byte character where the add-on split would fall.
            ("]E3]800]&0\u{697}10AB".as_bytes(), Err("not a GS1 barcode, command or location: ]800]&0\u{697}10AB")),
            (b"]C20109506000134352", Err("not a GS1 barcode, command or location: 0109506000134352")),
            // `<GS>` is text unless the source is configured for it (see the fnc1 options test).
            (b"]C1010950600013435210ABC<GS>17271231", Ok("(01)09506000134352(10)ABC<GS>17271231")),
            (b"]d2010950600013435210ABC^]17271231", Ok("(01)09506000134352(10)ABC(17)271231")),
            (b"]Q3010950600013435221S1", Ok("(01)09506000134352(21)S1")),
            (b"<GS>0109506000134352", Err("not a GS1 barcode, command or location: <GS>0109506000134352")),
            (b"]E495011011", Ok("(01)00000095011011")),
            (b"]I109506000134352", Ok("(01)09506000134352")),
            (b"]C009506000134352", Ok("(01)09506000134352")),
            (b"036000291452", Ok("(01)00036000291452")),
            (b"9506000134352", Ok("(01)09506000134352")),
            (b"(01)09506000134352(10)ABC123", Ok("(01)09506000134352(10)ABC123")),
            (b"\x1d0109506000134352", Ok("(01)09506000134352")),
            (b"DH:RECEIVE:ASN-1", Ok("command")),
            (b"LOC:A-01-02", Ok("location")),
            (b"]C0DH:DONE", Ok("command")),
            (b"]C10109506000134353", Err("AI 01: check digit should be 2, found 3")),
            (b"]C10109506000134352\x1d17271341", Err("AI 17: date 271341 is not a valid date")),
            (b"]C10109506000134352\x1d23ABC", Err("unknown AI 23 at position 17")),
            (b"]C1010950600013435", Err("AI 01: value too short (expected 14 digits)")),
            (b"]E09506000134353", Err("GTIN check digit should be 2, found 3")),
            (b"]E0123", Err("a GTIN has 8, 12, 13 or 14 digits, found 3")),
            (b"9506000134353", Err("GTIN check digit should be 2, found 3")),
            (b"(01)09506000134353", Err("AI 01: check digit should be 2, found 3")),
            (b"hello", Err("not a GS1 barcode, command or location: hello")),
            (b"]C0hello", Err("not a GS1 barcode, command or location: hello")),
            (b"0109506000134352", Err("not a GS1 barcode, command or location: 0109506000134352")),
            (b"", Err("empty scan")),
            (b"]C1", Err("empty scan")),
            (b"AB\xffC", Err("scan is not valid text: invalid UTF-8 at byte 2")),
            (b"AB\x07C", Err("scan contains control character '\\u{7}' at byte 2")),
            (b"DH:QTY:0", Err("DH:QTY: quantity must be between 1 and 1000000, got 0")),
            (b"DH:FOO", Err("unknown command DH:FOO")),
            (b"LOC:", Err("location \"\" is not valid: use 1 to 64 printable ASCII characters without spaces")),
        ];
        for &(input, want) in cases {
            let got = dec(input, &opts());
            let label = String::from_utf8_lossy(input);
            match (got, want) {
                (Ok(v), Ok(w)) if w == "command" || w == "location" => {
                    assert_eq!(v["kind"], w, "{label:?}")
                }
                (Ok(v), Ok(w)) => assert_eq!(v["hri"], w, "{label:?}"),
                (Err(e), Err(w)) => assert_eq!(e, w, "{label:?}"),
                (got, _) => panic!("{label:?}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn options() {
        let sub = DecodeOptions {
            fnc1_substitute: Some(b'|'),
            ..opts()
        };
        let v = dec(b"]C1010950600013435210ABC|17271231", &sub);
        assert_eq!(v.map(|v| v["expiry"].clone()), Ok(json!("2027-12-31")));
        // A wedge configured to spell FNC1 as `<GS>`: then, and only then, the text is a separator.
        let text = DecodeOptions {
            fnc1_text: true,
            ..opts()
        };
        let v = dec(b"]C1010950600013435210ABC<GS>17271231", &text);
        assert_eq!(
            v.map(|v| v["hri"].clone()),
            Ok(json!("(01)09506000134352(10)ABC(17)271231"))
        );
        let v = dec(b"<GS>0109506000134352", &text);
        assert_eq!(v.map(|v| v["gtin"].clone()), Ok(json!("09506000134352")));
        // Regression (fuzz/regressions/decode_scan): a lot holding the text `<GS>` survives the GS round trip.
        let v = dec(b"(01)09506000134352(10)ABC9506000<GS>5", &opts()).unwrap();
        assert_eq!(v["lot"], json!("ABC9506000<GS>5"));
        let again = dec(
            format!("]C1{}", v["element_string"].as_str().unwrap()).as_bytes(),
            &opts(),
        );
        assert_eq!(
            again.map(|a| a["lot"].clone()),
            Ok(json!("ABC9506000<GS>5"))
        );
        let assume = DecodeOptions {
            assume_gs1: true,
            ..opts()
        };
        let v = dec(b"010950600013435210ABC", &assume);
        assert_eq!(v.map(|v| v["lot"].clone()), Ok(json!("ABC")));
        let v = dec(b"09506000134352", &assume);
        assert_eq!(v.map(|v| v["gtin"].clone()), Ok(json!("09506000134352")));
        // Without assume_gs1 an unbracketed element string is not guessed at.
        let v = dec(b"010950600013435210ABC", &opts());
        assert!(v.is_err(), "{v:?}");
        let hash = DecodeOptions {
            fnc1_substitute: Some(b'#'),
            ..opts()
        };
        let v = dec(b"]C1010950600013435210ABC#17271231", &hash);
        assert_eq!(
            v.map(|v| v["hri"].clone()),
            Ok(json!("(01)09506000134352(10)ABC(17)271231"))
        );
        let v = dec(b"]E3950600013435212", &opts());
        assert_eq!(v.map(|v| v["addon"].clone()), Ok(json!("12")));
    }

    #[test]
    fn json_shapes() {
        let v = dec(b"]C1010950600013435210ABC123\x1d17270300", &opts());
        let want = json!({
            "kind": "gs1",
            "symbology": "]C1",
            "raw": "010950600013435210ABC123\u{1d}17270300",
            "elements": [
                {"ai": "01", "title": "GTIN", "value": "09506000134352",
                 "typed": {"type": "key", "value": "09506000134352"}},
                {"ai": "10", "title": "BATCH/LOT", "value": "ABC123",
                 "typed": {"type": "text", "value": "ABC123"}},
                {"ai": "17", "title": "USE BY or EXPIRY", "value": "270300",
                 "typed": {"type": "date", "value": "2027-03-31"}},
            ],
            "addon": null,
            "hri": "(01)09506000134352(10)ABC123(17)270300",
            "element_string": "010950600013435210ABC123\u{1d}17270300",
            "digital_link": "https://id.gs1.org/01/09506000134352/10/ABC123?17=270300",
            "gtin": "09506000134352",
            "sscc": null,
            "lot": "ABC123",
            "serial": null,
            "expiry": "2027-03-31",
            "best_before": null,
            "production_date": null,
            "count": null,
            "content_gtin": null,
            "ship_to_gln": null,
            "location_gln": null,
            "location_ext": null,
        });
        assert_eq!(v, Ok(want));
        let v = dec(b"]C10109506000134352\x1d3103001250", &opts());
        assert_eq!(
            v.map(|v| v["elements"][1].clone()),
            Ok(
                json!({"ai": "3103", "title": "NET WEIGHT (kg)", "value": "001250",
                      "typed": {"type": "decimal", "value": "1.250", "unit": "kg"}})
            )
        );
        assert_eq!(
            dec(b"DH:RECEIVE:ASN-1", &opts()),
            Ok(json!({"kind": "command", "command": "receive", "argument": "ASN-1"}))
        );
        assert_eq!(
            dec(b"DH:PUTAWAY", &opts()),
            Ok(json!({"kind": "command", "command": "putaway", "argument": null}))
        );
        assert_eq!(
            dec(b"LOC:A-01-02", &opts()),
            Ok(json!({"kind": "location", "location": "A-01-02"}))
        );
        let err =
            decode_text("]C10109506000134352\u{1d}17271341", &opts()).map_err(|e| e.to_json());
        assert_eq!(
            err,
            Err(json!({"error": {
                "message": "AI 17: date 271341 is not a valid date",
                "position": 19,
                "ai": "17",
                "rule": "yymmd0",
            }}))
        );
        let err = decode_text("]C10109506000134355", &opts()).map_err(|e| e.to_json());
        assert_eq!(
            err,
            Err(json!({"error": {
                "message": "AI 01: check digit should be 2, found 5",
                "position": 2,
                "ai": "01",
                "rule": "csum",
            }}))
        );
        let err = decode_text("nope", &opts()).map_err(|e| e.to_json());
        assert_eq!(
            err,
            Err(
                json!({"error": {"message": "not a GS1 barcode, command or location: nope", "rule": "unrecognized"}})
            )
        );
    }

    #[test]
    fn oversized_input() {
        let long = vec![b'9'; 100_000];
        assert!(decode_scan(Some("]C1"), &long, &opts()).is_err());
        assert!(decode_scan(None, &long, &opts()).is_err());
        let mut lot = b"010950600013435210".to_vec();
        lot.extend(std::iter::repeat_n(b'A', 5000));
        let e = decode_scan(Some("]C1"), &lot, &opts()).map_err(|e| e.to_string());
        assert_eq!(e, Err("AI 10: value longer than 20 characters".to_owned()));
    }

    /// Elements from a subset of AIs with valid values, in an order that is legal together.
    fn valid_elements() -> impl Strategy<Value = Vec<Element>> {
        let x82 = "[A-Za-z0-9!\"%&'()*+,./:;<=>?_-]";
        let gtin = "[0-9]{13}".prop_map(|body| {
            let cd = gs1::check::gs1_check_digit(&body).unwrap_or(0);
            format!("{body}{cd}")
        });
        let date =
            (0u32..100, 1u32..=12, 0u32..=28).prop_map(|(y, m, d)| format!("{y:02}{m:02}{d:02}"));
        (
            gtin,
            proptest::option::of(
                proptest::string::string_regex(&format!("{x82}{{1,20}}"))
                    .unwrap_or_else(|_| unreachable!()),
            ),
            proptest::option::of(date),
            proptest::option::of(
                proptest::string::string_regex(&format!("{x82}{{1,20}}"))
                    .unwrap_or_else(|_| unreachable!()),
            ),
            proptest::option::of(0u32..1_000_000),
            proptest::option::of("[0-9]{1,8}"),
            any::<u64>(),
        )
            .prop_map(|(gtin, lot, expiry, serial, weight, count, order)| {
                let mut v = vec![Element::new("01", gtin)];
                let mut rest = Vec::new();
                if let Some(l) = lot {
                    rest.push(Element::new("10", l));
                }
                if let Some(d) = expiry {
                    rest.push(Element::new("17", d));
                }
                if let Some(s) = serial {
                    rest.push(Element::new("21", s));
                }
                if let Some(w) = weight {
                    rest.push(Element::new("3103", format!("{w:06}")));
                }
                if let Some(c) = count {
                    rest.push(Element::new("30", c));
                }
                // Shuffle deterministically so variable- and fixed-length AIs meet in every order.
                let n = rest.len().max(1);
                rest.rotate_left((order as usize) % n);
                if order & 1 == 1 {
                    rest.reverse();
                }
                v.extend(rest);
                v
            })
    }

    proptest! {
        #[test]
        fn decode_never_panics(
            sym in proptest::option::of(prop_oneof![
                Just("]C1"), Just("]E0"), Just("]C0"), Just("]d2"), Just("]I1"), Just("]E4"),
                Just("]E3"), Just("]E1"), Just("]Q1"), Just("]d1"), Just("]A0"), Just("]C2")]),
            data in proptest::collection::vec(
                prop_oneof![Just(0x1du8), Just(b'('), Just(b')'), Just(b'/'), Just(b'%'), Just(b'?'),
                    b'0'..=b'9', any::<u8>()], 0..80),
            url in any::<bool>(),
            assume in any::<bool>(),
        ) {
            let o = DecodeOptions { assume_gs1: assume, fnc1_substitute: Some(b'|'), ..opts() };
            let mut data = data;
            if url {
                let mut u = b"https://x.example/01/".to_vec();
                u.extend(data);
                data = u;
            }
            match decode_scan(sym, &data, &o) {
                Ok(s) => { let _ = s.to_json(); }
                Err(e) => { let _ = e.to_json(); }
            }
        }

        #[test]
        fn element_string_round_trip(els in valid_elements()) {
            let es = gs1::to_element_string(&els, GS);
            prop_assert_eq!(gs1::parse_element_string(&es, GS), Ok(els.clone()));
            let hri = gs1::to_hri(&els);
            prop_assert_eq!(gs1::parse_bracketed(&hri), Ok(els.clone()));
            let scan = decode_scan(Some("]C1"), &es, &opts());
            prop_assert!(scan.is_ok(), "{:?}", scan);
        }
    }
}
