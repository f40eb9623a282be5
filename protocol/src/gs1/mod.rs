//! GS1 element strings in two layers.
//!
//! 1. [`element`]: syntax. Bytes or bracketed text become [`Element`]s; each value is checked against its AI's
//!    definition in [`ai`] (length, character set, check digit, date and time syntax).
//! 2. [`interpret`]: meaning. Elements become a [`Gs1Item`] with typed dates and quantities, after checking the
//!    associations between AIs that our movements depend on.
//!
//! Both layers report a [`Gs1Error`] naming the AI at fault and, where there is one, the byte position.

pub mod ai;
pub mod check;
pub mod digital_link;
pub mod element;
pub mod iso;
pub mod lint;
pub mod typed;
pub mod upc;

#[cfg(test)]
mod proptests;

pub use digital_link::{parse_digital_link, to_digital_link};
pub use element::{parse_bracketed, parse_element_string, to_element_string, to_hri, Element};
pub use typed::{typed_value, TypedValue};

use check::{gs1_check_digit, verify_check_digit};
use std::fmt;
use time::{Date, Month};

/// What went wrong while parsing or interpreting GS1 data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Gs1ErrorKind {
    /// Nothing to parse.
    #[error("empty element string")]
    Empty,
    /// A character that cannot start an AI where one was expected.
    #[error("expected an AI")]
    ExpectedAi {
        /// What was found instead, quoted.
        found: String,
    },
    /// The data ends in the middle of an AI.
    #[error("incomplete AI {partial}")]
    IncompleteAi {
        /// The digits that were there.
        partial: String,
    },
    /// An AI that is not in our table (for unbracketed data: its first two digits).
    #[error("unknown AI {ai}")]
    UnknownAi {
        /// The AI.
        ai: String,
    },
    /// In bracketed text, something other than `(` where an AI should start.
    #[error("expected '('")]
    ExpectedBracket,
    /// In bracketed text, a `(` without its `)`.
    #[error("unclosed '('")]
    UnclosedBracket,
    /// An AI with no value at all.
    #[error("missing value")]
    EmptyValue,
    /// A value shorter than its AI allows.
    #[error("value too short (expected {expected})")]
    TooShort {
        /// The expected length, e.g. `14 digits`.
        expected: String,
    },
    /// A fixed-length value that is too long.
    #[error("value too long (expected {expected})")]
    TooLong {
        /// The expected length, e.g. `3 digits`.
        expected: String,
    },
    /// A variable-length value that is too long.
    #[error("value longer than {max} characters")]
    LongerThan {
        /// The maximum length.
        max: usize,
    },
    /// A character outside the AI's character set.
    #[error("character {ch} not allowed")]
    BadChar {
        /// The character, quoted and escaped.
        ch: String,
    },
    /// A wrong GS1 check digit.
    #[error("check digit should be {expected}, found {found}")]
    CheckDigit {
        /// The correct check digit.
        expected: u8,
        /// The check digit in the data.
        found: u8,
    },
    /// A wrong GS1 check character pair (`csumalpha`).
    #[error("check characters should be {expected}, found {found}")]
    CheckCharacters {
        /// The correct pair.
        expected: String,
        /// The pair in the data.
        found: String,
    },
    /// A component that fails one of the dictionary's linters (other than those with their own kind).
    #[error("{value} is not {}", lint::expectation(*.linter))]
    Lint {
        /// The linter.
        linter: ai::Linter,
        /// The component's value.
        value: String,
    },
    /// A YYMMDD value that is not a calendar date.
    #[error("date {value} is not a valid date")]
    InvalidDate {
        /// The value.
        value: String,
    },
    /// An HHMM value that is not a time of day.
    #[error("time {value} is not a valid time")]
    InvalidTime {
        /// The value.
        value: String,
    },
    /// A component that must be `0` (the GRAI's filler digit).
    #[error("first digit must be 0, found {found}")]
    NotZero {
        /// The digit found.
        found: String,
    },
    /// A piece/total pair (AI 8006) with piece 0 or piece above total.
    #[error("piece of total {value} is not valid")]
    PieceOfTotal {
        /// The NNTT value.
        value: String,
    },
    /// The same AI twice with different values.
    #[error("appears twice with different values ({first} and {second})")]
    Conflicting {
        /// The first value.
        first: String,
        /// The second value.
        second: String,
    },
    /// An AI that needs another AI which is absent (dictionary `req=`).
    #[error("requires {}", describe_req(.needs))]
    MissingRequired {
        /// The dictionary's requirement, e.g. `37` or `01,02`.
        needs: String,
    },
    /// Two AIs that must not appear together (dictionary `ex=`).
    #[error("cannot appear together with AI {other}")]
    Excluded {
        /// The other AI.
        other: String,
    },
    /// A retail number that is not 8, 12, 13 or 14 digits long.
    #[error("a GTIN has 8, 12, 13 or 14 digits, found {len}")]
    GtinLength {
        /// The length found.
        len: usize,
    },
    /// A retail number with a non-digit.
    #[error("a GTIN has only digits, found {found}")]
    GtinNotNumeric {
        /// The character, quoted and escaped.
        found: String,
    },
    /// A retail number with a wrong check digit.
    #[error("GTIN check digit should be {expected}, found {found}")]
    GtinCheckDigit {
        /// The correct check digit.
        expected: u8,
        /// The check digit in the data.
        found: u8,
    },
    /// A UPC-E number whose number system digit is not 0 or 1.
    #[error("UPC-E number system must be 0 or 1, found {found}")]
    UpcENumberSystem {
        /// The digit found.
        found: char,
    },
    /// An EAN/UPC add-on that is not 2 or 5 digits.
    #[error("an EAN/UPC add-on has 2 or 5 digits, found {found}")]
    AddOn {
        /// What was found, quoted.
        found: String,
    },
    /// Text that is not a URI we can read as a GS1 Digital Link.
    #[error("not a GS1 Digital Link URI: {reason}")]
    BadUri {
        /// What is wrong with it.
        reason: String,
    },
    /// A Digital Link path without a primary key we know.
    #[error("no GS1 Digital Link primary key in the path (expected e.g. /01/<GTIN>)")]
    NoPrimaryKey,
    /// A Digital Link path segment pair whose AI is not allowed there.
    #[error("not allowed in the path after primary key AI {key} (allowed in order: {allowed})")]
    QualifierOrder {
        /// The primary key.
        key: &'static str,
        /// The allowed qualifier sequences.
        allowed: String,
    },
    /// A Digital Link query parameter naming an AI that may not be a data attribute.
    #[error("not allowed as a Digital Link data attribute")]
    NotDataAttribute,
    /// The same AI twice in a Digital Link.
    #[error("appears twice")]
    DuplicateAi,
    /// A `%` not followed by two hex digits, or an escape that decodes to something other than ASCII.
    #[error("bad percent-encoding {found}")]
    PercentEncoding {
        /// The escape, quoted.
        found: String,
    },
}

impl Gs1ErrorKind {
    /// Syntax errors locate themselves with a position; value errors name their AI instead.
    fn is_positional(&self) -> bool {
        matches!(
            self,
            Gs1ErrorKind::Empty
                | Gs1ErrorKind::ExpectedAi { .. }
                | Gs1ErrorKind::IncompleteAi { .. }
                | Gs1ErrorKind::UnknownAi { .. }
                | Gs1ErrorKind::ExpectedBracket
                | Gs1ErrorKind::UnclosedBracket
        )
    }
}

impl Gs1ErrorKind {
    /// The rule broken, as a short stable name for JSON errors: a dictionary linter name (`csum`, `yymmd0`, ...) or
    /// one of `syntax`, `unknown-ai`, `length`, `charset`, `req`, `ex`, `duplicate`, `gtin`, `upc-e`, `addon`,
    /// `digital-link`.
    pub fn rule(&self) -> &'static str {
        match self {
            Gs1ErrorKind::Empty
            | Gs1ErrorKind::ExpectedAi { .. }
            | Gs1ErrorKind::IncompleteAi { .. }
            | Gs1ErrorKind::ExpectedBracket
            | Gs1ErrorKind::UnclosedBracket => "syntax",
            Gs1ErrorKind::UnknownAi { .. } => "unknown-ai",
            Gs1ErrorKind::EmptyValue
            | Gs1ErrorKind::TooShort { .. }
            | Gs1ErrorKind::TooLong { .. }
            | Gs1ErrorKind::LongerThan { .. } => "length",
            Gs1ErrorKind::BadChar { .. } => "charset",
            Gs1ErrorKind::CheckDigit { .. } => "csum",
            Gs1ErrorKind::CheckCharacters { .. } => "csumalpha",
            Gs1ErrorKind::Lint { linter, .. } => linter.name(),
            Gs1ErrorKind::InvalidDate { .. } => "yymmdd",
            Gs1ErrorKind::InvalidTime { .. } => "hhmi",
            Gs1ErrorKind::NotZero { .. } => "zero",
            Gs1ErrorKind::PieceOfTotal { .. } => "pieceoftotal",
            Gs1ErrorKind::Conflicting { .. } | Gs1ErrorKind::DuplicateAi => "duplicate",
            Gs1ErrorKind::MissingRequired { .. } => "req",
            Gs1ErrorKind::Excluded { .. } => "ex",
            Gs1ErrorKind::GtinLength { .. }
            | Gs1ErrorKind::GtinNotNumeric { .. }
            | Gs1ErrorKind::GtinCheckDigit { .. } => "gtin",
            Gs1ErrorKind::UpcENumberSystem { .. } => "upc-e",
            Gs1ErrorKind::AddOn { .. } => "addon",
            Gs1ErrorKind::BadUri { .. }
            | Gs1ErrorKind::NoPrimaryKey
            | Gs1ErrorKind::QualifierOrder { .. }
            | Gs1ErrorKind::NotDataAttribute
            | Gs1ErrorKind::PercentEncoding { .. } => "digital-link",
        }
    }
}

fn describe_req(needs: &str) -> String {
    let alts: Vec<String> = needs
        .split(',')
        .map(|a| a.replace('+', " with AI "))
        .collect();
    match alts.as_slice() {
        [one] => format!("AI {one}"),
        _ => format!("one of AI {}", alts.join(", ")),
    }
}

/// A GS1 error: what went wrong, the AI at fault and the byte position in the input, where known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gs1Error {
    kind: Gs1ErrorKind,
    ai: Option<String>,
    position: Option<usize>,
    /// The linter that failed, when it is more precise than the kind's own rule (`yymmd0` rather than `yymmdd`).
    rule: Option<&'static str>,
}

impl Gs1Error {
    pub(crate) fn new(kind: Gs1ErrorKind) -> Self {
        Gs1Error {
            kind,
            ai: None,
            position: None,
            rule: None,
        }
    }

    pub(crate) fn with_rule(mut self, rule: &'static str) -> Self {
        self.rule = Some(rule);
        self
    }

    /// The rule broken (see [`Gs1ErrorKind::rule`]).
    pub fn rule(&self) -> &'static str {
        self.rule.unwrap_or_else(|| self.kind.rule())
    }

    pub(crate) fn with_ai(mut self, ai: &str) -> Self {
        self.ai = Some(ai.to_owned());
        self
    }

    pub(crate) fn at(mut self, position: usize) -> Self {
        self.position = Some(position);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &Gs1ErrorKind {
        &self.kind
    }

    /// The AI at fault, if the error concerns one.
    pub fn ai(&self) -> Option<&str> {
        self.ai.as_deref()
    }

    /// The byte position in the input where the problem is, if known.
    pub fn position(&self) -> Option<usize> {
        self.position
    }
}

impl fmt::Display for Gs1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.is_positional() {
            write!(f, "{}", self.kind)?;
            if let Some(p) = self.position {
                write!(f, " at position {p}")?;
            }
            if let Gs1ErrorKind::ExpectedAi { found } = &self.kind {
                write!(f, ", found {found}")?;
            }
            return Ok(());
        }
        if let Some(ai) = &self.ai {
            write!(f, "AI {ai}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for Gs1Error {}

/// What a GS1 barcode says about the thing it is on, typed. Absent AIs are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gs1Item {
    /// GTIN-14 of the trade item (AI 01).
    pub gtin: Option<String>,
    /// SSCC-18 of the logistic unit (AI 00).
    pub sscc: Option<String>,
    /// Batch or lot (AI 10).
    pub lot: Option<String>,
    /// Serial number (AI 21).
    pub serial: Option<String>,
    /// Expiry / use-by date (AI 17).
    pub expiry: Option<Date>,
    /// Best-before date (AI 15).
    pub best_before: Option<Date>,
    /// Production date (AI 11).
    pub production_date: Option<Date>,
    /// Quantity: AI 37 (items contained in a logistic unit) or else AI 30 (variable count).
    pub count: Option<u64>,
    /// GTIN-14 of the trade items contained in a logistic unit (AI 02).
    pub content_gtin: Option<String>,
    /// Ship-to GLN (AI 410).
    pub ship_to_gln: Option<String>,
    /// Physical location GLN (AI 414).
    pub location_gln: Option<String>,
    /// GLN extension component, e.g. a bin within the location (AI 254).
    pub location_ext: Option<String>,
}

/// The `req=` rules we enforce on a single scan.
///
/// The dictionary says associations should be judged over all carriers on a physical item, and warehouses do put
/// a lot on a separate label from its GTIN; so a lone `(10)` is accepted here and the workflow decides. These pairs,
/// however, are meaningless alone on one label: a content GTIN without its count, a GLN extension without its GLN.
const ENFORCED_REQ: &[&str] = &["02", "254"];

/// Interprets parsed elements: re-validates them, checks associations, and types dates and quantities.
///
/// `today` fixes the century of YYMMDD dates (GS1 General Specifications §7.12: a year more than 50 years in the
/// past of `today` is taken in the next century, one 50 or more years ahead in the previous century).
pub fn interpret(elements: &[Element], today: Date) -> Result<Gs1Item, Gs1Error> {
    for e in elements {
        element::validate_element(e)?;
    }
    interpret_validated(elements, today)
}

/// [`interpret`] for elements that came out of one of this crate's parsers, which validated each of them already.
pub(crate) fn interpret_validated(elements: &[Element], today: Date) -> Result<Gs1Item, Gs1Error> {
    for (i, a) in elements.iter().enumerate() {
        if let Some(b) = elements[i + 1..]
            .iter()
            .find(|b| b.ai == a.ai && b.value != a.value)
        {
            let kind = Gs1ErrorKind::Conflicting {
                first: a.value.clone(),
                second: b.value.clone(),
            };
            return Err(Gs1Error::new(kind).with_ai(&a.ai));
        }
    }
    let present = |pattern: &str| elements.iter().any(|e| ai::pattern_matches(pattern, &e.ai));
    for e in elements {
        let Some(def) = ai::lookup(&e.ai) else {
            continue;
        };
        for ex in def.ex {
            // An AI never excludes itself, even when it matches a pattern such as `310n`.
            let clash = ex.split(',').find_map(|p| {
                elements
                    .iter()
                    .find(|o| o.ai != e.ai && ai::pattern_matches(p, &o.ai))
            });
            if let Some(other) = clash {
                let kind = Gs1ErrorKind::Excluded {
                    other: other.ai.clone(),
                };
                return Err(Gs1Error::new(kind).with_ai(&e.ai));
            }
        }
        if ENFORCED_REQ.contains(&e.ai.as_str()) {
            for req in def.req {
                let ok = req.split(',').any(|alt| alt.split('+').all(present));
                if !ok {
                    let kind = Gs1ErrorKind::MissingRequired {
                        needs: (*req).to_owned(),
                    };
                    return Err(Gs1Error::new(kind).with_ai(&e.ai));
                }
            }
        }
    }

    let value = |ai: &str| {
        elements
            .iter()
            .find(|e| e.ai == ai)
            .map(|e| e.value.clone())
    };
    let date = |ai: &str| -> Result<Option<Date>, Gs1Error> {
        match elements.iter().find(|e| e.ai == ai) {
            None => Ok(None),
            Some(e) => resolve_date(&e.value, today).map(Some).ok_or_else(|| {
                Gs1Error::new(Gs1ErrorKind::InvalidDate {
                    value: e.value.clone(),
                })
                .with_ai(ai)
            }),
        }
    };
    let count = |ai: &str| -> Option<u64> { value(ai).and_then(|v| v.parse().ok()) };
    Ok(Gs1Item {
        gtin: value("01"),
        sscc: value("00"),
        lot: value("10"),
        serial: value("21"),
        expiry: date("17")?,
        best_before: date("15")?,
        production_date: date("11")?,
        count: count("37").or_else(|| count("30")),
        content_gtin: value("02"),
        ship_to_gln: value("410"),
        location_gln: value("414"),
        location_ext: value("254"),
    })
}

/// Resolves a GS1 YYMMDD date (DD `00` meaning the last day of the month) relative to `today`.
/// `None` if it is not a calendar date.
pub fn resolve_date(yymmdd: &str, today: Date) -> Option<Date> {
    if yymmdd.len() != 6 || !yymmdd.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let yy: i32 = yymmdd.get(0..2)?.parse().ok()?;
    let mm: u8 = yymmdd.get(2..4)?.parse().ok()?;
    let dd: u8 = yymmdd.get(4..6)?.parse().ok()?;
    let this_year = today.year();
    let century = this_year - this_year.rem_euclid(100);
    let diff = yy - this_year.rem_euclid(100);
    let year = if diff >= 51 {
        century - 100 + yy
    } else if diff <= -50 {
        century + 100 + yy
    } else {
        century + yy
    };
    let month = Month::try_from(mm).ok()?;
    let day = if dd == 0 {
        u8::try_from(lint::days_in_month(year, u32::from(mm))).ok()?
    } else {
        dd
    };
    Date::from_calendar_date(year, month, day).ok()
}

/// Normalises a retail number (EAN-8, UPC-A, EAN-13, ITF-14 / GTIN-14) to a GTIN-14, after checking its check digit.
pub fn gtin_from_retail(digits: &str) -> Result<String, Gs1Error> {
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_digit()) {
        let found = element::show_char(c);
        return Err(Gs1Error::new(Gs1ErrorKind::GtinNotNumeric { found }));
    }
    if !matches!(digits.len(), 8 | 12 | 13 | 14) {
        return Err(Gs1Error::new(Gs1ErrorKind::GtinLength {
            len: digits.len(),
        }));
    }
    if !verify_check_digit(digits) {
        let (body, last) = digits.split_at(digits.len() - 1);
        let expected = gs1_check_digit(body).unwrap_or(0);
        let found = last.bytes().next().map_or(0, |b| b - b'0');
        return Err(Gs1Error::new(Gs1ErrorKind::GtinCheckDigit {
            expected,
            found,
        }));
    }
    Ok(format!("{digits:0>14}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 03 - 15);

    fn parse(hri: &str) -> Result<Gs1Item, String> {
        parse_bracketed(hri)
            .and_then(|e| interpret(&e, TODAY))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn interpret_valid() {
        let item = parse("(01)09506000134352(17)270300(10)ABC123(21)S1(15)261231(11)250101(30)12");
        let want = Gs1Item {
            gtin: Some("09506000134352".into()),
            lot: Some("ABC123".into()),
            serial: Some("S1".into()),
            expiry: Some(date!(2027 - 03 - 31)),
            best_before: Some(date!(2026 - 12 - 31)),
            production_date: Some(date!(2025 - 01 - 01)),
            count: Some(12),
            ..Gs1Item::default()
        };
        assert_eq!(item, Ok(want));

        let pallet = parse("(00)009506000134350004(02)09506000134352(37)40");
        let want = Gs1Item {
            sscc: Some("009506000134350004".into()),
            content_gtin: Some("09506000134352".into()),
            count: Some(40),
            ..Gs1Item::default()
        };
        assert_eq!(pallet, Ok(want));

        let loc = parse("(414)9506000014005(254)A-01-02");
        let want = Gs1Item {
            location_gln: Some("9506000014005".into()),
            location_ext: Some("A-01-02".into()),
            ..Gs1Item::default()
        };
        assert_eq!(loc, Ok(want));
    }

    #[test]
    fn interpret_errors() {
        let cases: &[(&str, &str)] = &[
            ("(02)09506000134352", "AI 02: requires AI 37"),
            ("(254)A1", "AI 254: requires AI 414"),
            (
                "(01)09506000134352(02)09506000134352",
                "AI 02: cannot appear together with AI 01",
            ),
            (
                "(01)09506000134352(37)5",
                "AI 01: cannot appear together with AI 37",
            ),
            (
                "(01)09506000134352(3102)000100(3103)000100",
                "AI 3102: cannot appear together with AI 3103",
            ),
            (
                "(01)09506000134352(10)A(10)B",
                "AI 10: appears twice with different values (A and B)",
            ),
            ("(10)A(10)A", ""),
        ];
        for &(hri, want) in cases {
            let got = parse(hri).err().unwrap_or_default();
            assert_eq!(got, want, "{hri}");
        }
        // Hand-built elements are validated too.
        let bad = [Element::new("17", "271341")];
        let err = interpret(&bad, TODAY).map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err("AI 17: date 271341 is not a valid date".to_owned())
        );
    }

    /// Example element strings printed in the GS1 General Specifications (and the Digital Link standard), plus the
    /// tricky cases of issue 3, each as `(input, Ok(HRI after parsing) | Err(message))`. Input starting with `(` is
    /// HRI; anything else an unbracketed element string with GS.
    #[test]
    fn specification_examples_and_tricky_cases() {
        let cases: &[(&[u8], Result<&str, &str>)] = &[
            (
                b"(01)09506000134352(17)201225(10)ABC123",
                Ok("(01)09506000134352(17)201225(10)ABC123"),
            ),
            (b"(00)106141411234567897", Ok("(00)106141411234567897")),
            (
                b"(01)95012345678903(3103)000123",
                Ok("(01)95012345678903(3103)000123"),
            ),
            (
                b"(8003)09506000134352ABC123",
                Ok("(8003)09506000134352ABC123"),
            ), // GRAI with serial
            (b"(8003)09506000134352", Ok("(8003)09506000134352")), // GRAI without serial
            (b"(253)4602443000331XYZ", Ok("(253)4602443000331XYZ")), // GDTI with serial
            (b"(253)4602443000331", Ok("(253)4602443000331")),
            (
                b"(414)9506000014005(254)A-01-02",
                Ok("(414)9506000014005(254)A-01-02"),
            ),
            (b"(421)84012345", Ok("(421)84012345")),
            (
                b"(00)106141411234567897(02)09506000134352(37)20(10)L1",
                Ok("(00)106141411234567897(02)09506000134352(37)20(10)L1"),
            ),
            (
                b"(01)09506000134352(3922)1999",
                Ok("(01)09506000134352(3922)1999"),
            ),
            (
                b"(01)09506000134352(3932)9781999",
                Ok("(01)09506000134352(3932)9781999"),
            ),
            (
                b"(8013)1987654Ad4X4bL5ttr2310c2K",
                Ok("(8013)1987654Ad4X4bL5ttr2310c2K"),
            ), // GMN
            (b"(8006)095060001343520102", Ok("(8006)095060001343520102")),
            (b"(8018)095060001343521236", Ok("(8018)095060001343521236")),
            // Variable-length AI last, no GS.
            (
                b"0109506000134352\x1d10ABC123",
                Ok("(01)09506000134352(10)ABC123"),
            ),
            (
                b"010950600013435210ABC123",
                Ok("(01)09506000134352(10)ABC123"),
            ),
            // GS after a fixed-length AI is tolerated.
            (
                b"0109506000134352\x1d17271231\x1d10A",
                Ok("(01)09506000134352(17)271231(10)A"),
            ),
            // Missing GS between two variable AIs: the lot runs on, rejected once it is too long.
            (b"10ABC123\x1d21S1", Ok("(10)ABC123(21)S1")),
            (
                b"10ABCDEFGHIJKLMN21SERIAL",
                Err("AI 10: value longer than 20 characters"),
            ),
            // AI 17 with DD = 00 (last day of the month), and a day that does not exist.
            (b"17270200", Ok("(17)270200")),
            (b"17270230", Err("AI 17: date 270230 is not a valid date")),
            // AI 3103: three decimals.
            (b"3103001250", Ok("(3103)001250")),
            (
                b"31030012",
                Err("AI 3103: value too short (expected 6 digits)"),
            ),
            // AI 8003 GRAI: leading zero and check digit.
            (
                b"80031095060001343579",
                Err("AI 8003: first digit must be 0, found 1"),
            ),
            (
                b"800309506000134353",
                Err("AI 8003: check digit should be 2, found 3"),
            ),
            // AI 253 GDTI with a bad check digit.
            (
                b"2534602443000332",
                Err("AI 253: check digit should be 1, found 2"),
            ),
            // AI 422 is fixed-length but not predefined: it needs a GS before the next AI.
            (
                b"422250\x1d0109506000134352",
                Ok("(422)250(01)09506000134352"),
            ),
            (
                b"4222500109506000134352",
                Err("AI 422: value too long (expected 3 digits)"),
            ),
            (
                b"422999",
                Err("AI 422: 999 is not an ISO 3166 numeric country code"),
            ),
            (b"(3932)9991999", Ok("(3932)9991999")),
            (
                b"(3932)0001999",
                Err("AI 3932: 000 is not an ISO 4217 numeric currency code"),
            ),
            (
                b"(4307)UK",
                Err("AI 4307: UK is not an ISO 3166 alpha-2 country code"),
            ),
            (
                b"(8013)1987654Ad4X4bL5ttr2310c2L",
                Err("AI 8013: check characters should be 2K, found 2L"),
            ),
            (b"(4330)001234-", Ok("(4330)001234-")),
            (b"(4330)001234+", Err("AI 4330: + is not '-'")),
            (
                b"(4300)A%2",
                Err("AI 4300: A%2 is not validly percent-encoded (% followed by two hex digits)"),
            ),
            (
                b"(8001)00000123450011",
                Err("AI 8001: 0000 is not a non-zero number"),
            ),
            (b"(8001)12340123450011", Ok("(8001)12340123450011")),
            (
                b"(8008)2501011",
                Err("AI 8008: value too short (expected at least 8 digits)"),
            ),
            (
                b"(8008)250101127",
                Err("AI 8008: value too short (expected 1 more digits)"),
            ),
            (b"(8008)25010124", Err("AI 8008: 24 is not an hour 00-23")),
            (b"(7250)20000229", Ok("(7250)20000229")),
            (
                b"(7250)21000229",
                Err("AI 7250: date 21000229 is not a valid date"),
            ),
            // Garbage and truncated input.
            (b"01", Err("AI 01: missing value")),
            (
                b"010950600",
                Err("AI 01: value too short (expected 14 digits)"),
            ),
            (
                b"\xff\xfe",
                Err("expected an AI at position 0, found '\\u{ff}'"),
            ),
            (b"(", Err("unclosed '(' at position 0")),
            (b"()", Err("expected an AI at position 1, found \"\"")),
        ];
        for &(input, want) in cases {
            let got = if input.first() == Some(&b'(') {
                parse_bracketed(&String::from_utf8_lossy(input))
            } else {
                parse_element_string(input, 0x1d)
            };
            let got = got.map(|e| to_hri(&e)).map_err(|e| e.to_string());
            let label = String::from_utf8_lossy(input);
            assert_eq!(
                got,
                want.map(str::to_owned).map_err(str::to_owned),
                "{label:?}"
            );
        }
    }

    #[test]
    fn error_rules() {
        let cases: &[(&str, &str)] = &[
            ("(01)09506000134355", "csum"),
            ("(17)270230", "yymmd0"),
            ("(7003)2701312460", "hhmi"),
            ("(422)999", "iso3166"),
            ("(10)A B", "charset"),
            ("(23)1", "unknown-ai"),
            ("(01)0950", "length"),
        ];
        for &(hri, rule) in cases {
            let got = parse_bracketed(hri).err().map(|e| e.rule());
            assert_eq!(got, Some(rule), "{hri}");
        }
    }

    #[test]
    fn century_rule() {
        let cases: &[(&str, Date, Option<Date>)] = &[
            ("270331", TODAY, Some(date!(2027 - 03 - 31))),
            ("270300", TODAY, Some(date!(2027 - 03 - 31))),
            ("280200", TODAY, Some(date!(2028 - 02 - 29))),
            ("750101", TODAY, Some(date!(2075 - 01 - 01))), // 49 years ahead: this century
            ("770101", TODAY, Some(date!(1977 - 01 - 01))), // 51 years ahead: previous century
            ("010101", date!(2098 - 06 - 01), Some(date!(2101 - 01 - 01))), // 97 behind: next century
            ("000229", date!(2040 - 01 - 01), Some(date!(2000 - 02 - 29))),
            ("000229", date!(2080 - 01 - 01), None), // 2100 is not a leap year
            ("271301", TODAY, None),
            ("27013", TODAY, None),
            ("2701x1", TODAY, None),
        ];
        for &(s, today, want) in cases {
            assert_eq!(resolve_date(s, today), want, "{s} at {today}");
        }
    }

    #[test]
    fn retail() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("95011011", Ok("00000095011011")),
            ("036000291452", Ok("00036000291452")),
            ("9506000134352", Ok("09506000134352")),
            ("09506000134352", Ok("09506000134352")),
            (
                "9506000134353",
                Err("GTIN check digit should be 2, found 3"),
            ),
            ("12345", Err("a GTIN has 8, 12, 13 or 14 digits, found 5")),
            ("", Err("a GTIN has 8, 12, 13 or 14 digits, found 0")),
            ("95060001343x2", Err("a GTIN has only digits, found 'x'")),
        ];
        for &(s, want) in cases {
            let got = gtin_from_retail(s).map_err(|e| e.to_string());
            assert_eq!(got, want.map(str::to_owned).map_err(str::to_owned), "{s}");
        }
    }
}
