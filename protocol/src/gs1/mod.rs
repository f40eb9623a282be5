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

pub use element::{parse_bracketed, parse_element_string, to_element_string, to_hri, Element};

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
    #[error("check digit should be {expected}, got {got}")]
    CheckDigit {
        /// The correct check digit.
        expected: u8,
        /// The check digit in the data.
        got: u8,
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
    #[error("first digit must be 0, got {got}")]
    NotZero {
        /// The digit found.
        got: String,
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
    #[error("a GTIN has 8, 12, 13 or 14 digits, got {len}")]
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
    #[error("GTIN check digit should be {expected}, got {got}")]
    GtinCheckDigit {
        /// The correct check digit.
        expected: u8,
        /// The check digit in the data.
        got: u8,
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
}

impl Gs1Error {
    pub(crate) fn new(kind: Gs1ErrorKind) -> Self {
        Gs1Error {
            kind,
            ai: None,
            position: None,
        }
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
        u8::try_from(element::days_in_month(year, u32::from(mm))).ok()?
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
        let got = last.bytes().next().map_or(0, |b| b - b'0');
        return Err(Gs1Error::new(Gs1ErrorKind::GtinCheckDigit {
            expected,
            got,
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
            ("9506000134353", Err("GTIN check digit should be 2, got 3")),
            ("12345", Err("a GTIN has 8, 12, 13 or 14 digits, got 5")),
            ("", Err("a GTIN has 8, 12, 13 or 14 digits, got 0")),
            ("95060001343x2", Err("a GTIN has only digits, found 'x'")),
        ];
        for &(s, want) in cases {
            let got = gtin_from_retail(s).map_err(|e| e.to_string());
            assert_eq!(got, want.map(str::to_owned).map_err(str::to_owned), "{s}");
        }
    }
}
