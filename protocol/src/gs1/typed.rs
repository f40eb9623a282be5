//! Typed element values: what an element's raw value means, for people and for JSON (`elements[].typed`).
//!
//! Values reaching here have passed validation, so typing never fails: anything without a more specific type is
//! [`TypedValue::Text`].

use super::ai::{self, Linter};
use super::iso;
use super::resolve_date;
use serde::Serialize;
use time::Date;

/// The meaning of one element's value. Serialised with a `type` tag, e.g.
/// `{"type":"decimal","value":"1.250","unit":"kg"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TypedValue {
    /// Free text (lot, serial, postcode, ...).
    Text {
        /// The value as scanned.
        value: String,
    },
    /// A GS1 identification key (GTIN, SSCC, GLN, GRAI, GDTI, ...), kept as a string so leading zeros survive.
    Key {
        /// The key.
        value: String,
    },
    /// A whole number (counts, points).
    Count {
        /// The number.
        value: u64,
    },
    /// A decimal from an AI with implied decimal places, as a string so no precision is lost.
    Decimal {
        /// The decimal, e.g. `1.250`.
        value: String,
        /// The unit (`kg`, `m²`, ...), the ISO 4217 alphabetic currency, or `%`; absent for local currency.
        #[serde(skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
    /// A calendar date, `YYYY-MM-DD`.
    Date {
        /// The date.
        value: String,
    },
    /// A date and time, `YYYY-MM-DDTHH:MM` (with `:SS` when the value has seconds).
    DateTime {
        /// The date and time.
        value: String,
    },
    /// A date range (AI 7007 with its optional end date).
    DateRange {
        /// First day.
        from: String,
        /// Last day.
        to: String,
    },
    /// An ISO 3166 country code (numeric or alpha-2, as encoded).
    Country {
        /// The code.
        value: String,
    },
    /// Several ISO 3166 numeric country codes (AI 423, 425).
    Countries {
        /// The codes, in order.
        value: Vec<String>,
    },
    /// Piece `piece` of `total` of a trade item (AI 8006, 8026).
    PieceOfTotal {
        /// GTIN of the complete item.
        gtin: String,
        /// This piece.
        piece: u32,
        /// Number of pieces.
        total: u32,
    },
    /// A yes/no flag (AI 4321-4323).
    Flag {
        /// True for `1`.
        value: bool,
    },
}

/// The dictionary title of `ai`, e.g. `NET WEIGHT (kg)`.
pub fn title(ai: &str) -> Option<&'static str> {
    ai::lookup(ai).map(|d| d.title)
}

/// Types `value` of `ai`; `today` fixes the century of six-digit dates.
pub fn typed_value(ai: &str, value: &str, today: Date) -> TypedValue {
    typed(ai, value, today).unwrap_or_else(|| TypedValue::Text {
        value: value.to_owned(),
    })
}

fn typed(ai: &str, value: &str, today: Date) -> Option<TypedValue> {
    let def = ai::lookup(ai)?;
    if let Some(places) = def.decimal_places(ai) {
        return Some(decimal_value(ai, value, places));
    }
    let first = def.components.first()?;
    let has = |l: Linter| first.linters.contains(&l);
    let date6 = |s: &str| resolve_date(s, today).map(iso_date);
    match ai {
        "30" | "37" | "7004" | "8111" => {
            value.parse().ok().map(|value| TypedValue::Count { value })
        }
        "8006" | "8026" => Some(TypedValue::PieceOfTotal {
            gtin: value.get(..14)?.to_owned(),
            piece: value.get(14..16)?.parse().ok()?,
            total: value.get(16..18)?.parse().ok()?,
        }),
        "423" | "425" => Some(TypedValue::Countries {
            value: (0..value.len() / 3)
                .filter_map(|i| value.get(i * 3..i * 3 + 3).map(str::to_owned))
                .collect(),
        }),
        "7007" => {
            let from = date6(value.get(..6)?)?;
            match value.get(6..12) {
                Some(end) => Some(TypedValue::DateRange {
                    from,
                    to: date6(end)?,
                }),
                None => Some(TypedValue::Date { value: from }),
            }
        }
        "8008" => {
            let date = date6(value.get(..6)?)?;
            let hh = value.get(6..8)?;
            let mi = value.get(8..10).unwrap_or("00");
            let ss = value
                .get(10..12)
                .map(|s| format!(":{s}"))
                .unwrap_or_default();
            Some(TypedValue::DateTime {
                value: format!("{date}T{hh}:{mi}{ss}"),
            })
        }
        _ if has(Linter::Yymmd0) || has(Linter::Yymmdd) => {
            let date = date6(value.get(..6)?)?;
            match value.get(6..10) {
                Some(t) => Some(TypedValue::DateTime {
                    value: format!("{date}T{}:{}", t.get(..2)?, t.get(2..)?),
                }),
                None => Some(TypedValue::Date { value: date }),
            }
        }
        _ if has(Linter::Yyyymmdd) => {
            let date = format!(
                "{}-{}-{}",
                value.get(..4)?,
                value.get(4..6)?,
                value.get(6..8)?
            );
            match value.get(8..12) {
                Some(t) => Some(TypedValue::DateTime {
                    value: format!("{date}T{}:{}", t.get(..2)?, t.get(2..)?),
                }),
                None => Some(TypedValue::Date { value: date }),
            }
        }
        _ if has(Linter::Iso3166) || has(Linter::Iso3166Alpha2) => {
            if def.components.len() == 1 {
                Some(TypedValue::Country {
                    value: value.to_owned(),
                })
            } else {
                None
            }
        }
        _ if has(Linter::YesNo) => Some(TypedValue::Flag {
            value: value == "1",
        }),
        _ if has(Linter::Csum) || def.dlpkey.is_some() || has(Linter::Gcppos1) => {
            Some(TypedValue::Key {
                value: value.to_owned(),
            })
        }
        _ => None,
    }
}

/// `value` of a decimal-point AI with `places` implied decimals, with its unit or currency.
fn decimal_value(ai: &str, value: &str, places: u8) -> TypedValue {
    let family = ai.get(..3).unwrap_or("");
    let (digits, unit) = match family {
        "391" | "393" => {
            let currency = value.get(..3).unwrap_or("");
            let unit = iso::currency_alpha(currency).unwrap_or(currency).to_owned();
            (value.get(3..).unwrap_or(""), Some(unit))
        }
        "394" => (value, Some("%".to_owned())),
        _ => (value, unit_of(family).map(str::to_owned)),
    };
    TypedValue::Decimal {
        value: format_decimal(digits, usize::from(places)),
        unit,
    }
}

/// The unit of the measure family `31n`..`36n` (first three digits of the AI); `None` for amounts and prices.
fn unit_of(family: &str) -> Option<&'static str> {
    Some(match family {
        "310" | "330" => "kg",
        "311" | "312" | "313" | "331" | "332" | "333" => "m",
        "314" | "334" => "m²",
        "315" | "335" => "l",
        "316" | "336" => "m³",
        "337" => "kg/m²",
        "320" | "340" => "lb",
        "321" | "324" | "327" | "341" | "344" | "347" => "in",
        "322" | "325" | "328" | "342" | "345" | "348" => "ft",
        "323" | "326" | "329" | "343" | "346" | "349" => "yd",
        "350" | "353" => "in²",
        "351" | "354" => "ft²",
        "352" | "355" => "yd²",
        "356" => "tr oz",
        "357" => "oz",
        "360" | "362" => "qt",
        "361" | "363" => "gal",
        "364" | "367" => "in³",
        "365" | "368" => "ft³",
        "366" | "369" => "yd³",
        _ => return None,
    })
}

/// Inserts a decimal point `places` digits from the right, dropping redundant leading zeros: `001250`, 3 → `1.250`.
pub fn format_decimal(digits: &str, places: usize) -> String {
    let padded = format!("{digits:0>width$}", width = places + 1);
    let (int, frac) = padded.split_at(padded.len() - places);
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    if frac.is_empty() {
        int.to_owned()
    } else {
        format!("{int}.{frac}")
    }
}

/// `YYYY-MM-DD`.
pub fn iso_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 03 - 15);

    #[test]
    fn typed_values() {
        let cases: &[(&str, &str, serde_json::Value)] = &[
            (
                "3103",
                "001250",
                json!({"type":"decimal","value":"1.250","unit":"kg"}),
            ),
            (
                "3100",
                "001250",
                json!({"type":"decimal","value":"1250","unit":"kg"}),
            ),
            (
                "3145",
                "000001",
                json!({"type":"decimal","value":"0.00001","unit":"m²"}),
            ),
            ("3922", "1999", json!({"type":"decimal","value":"19.99"})),
            (
                "3932",
                "9781999",
                json!({"type":"decimal","value":"19.99","unit":"EUR"}),
            ),
            (
                "3941",
                "0250",
                json!({"type":"decimal","value":"25.0","unit":"%"}),
            ),
            ("3909", "5", json!({"type":"decimal","value":"0.000000005"})),
            (
                "01",
                "09506000134352",
                json!({"type":"key","value":"09506000134352"}),
            ),
            (
                "414",
                "9506000014005",
                json!({"type":"key","value":"9506000014005"}),
            ),
            (
                "8003",
                "09506000134352ABC",
                json!({"type":"key","value":"09506000134352ABC"}),
            ),
            ("10", "ABC", json!({"type":"text","value":"ABC"})),
            ("30", "0012", json!({"type":"count","value":12})),
            ("17", "270300", json!({"type":"date","value":"2027-03-31"})),
            (
                "7003",
                "2701312359",
                json!({"type":"date_time","value":"2027-01-31T23:59"}),
            ),
            (
                "7007",
                "250101250131",
                json!({"type":"date_range","from":"2025-01-01","to":"2025-01-31"}),
            ),
            (
                "7007",
                "250101",
                json!({"type":"date","value":"2025-01-01"}),
            ),
            (
                "8008",
                "25010112",
                json!({"type":"date_time","value":"2025-01-01T12:00"}),
            ),
            (
                "8008",
                "250101123456",
                json!({"type":"date_time","value":"2025-01-01T12:34:56"}),
            ),
            (
                "7250",
                "19991231",
                json!({"type":"date","value":"1999-12-31"}),
            ),
            ("422", "250", json!({"type":"country","value":"250"})),
            ("4307", "FR", json!({"type":"country","value":"FR"})),
            (
                "423",
                "250276",
                json!({"type":"countries","value":["250","276"]}),
            ),
            (
                "8006",
                "095060001343520203",
                json!({"type":"piece_of_total","gtin":"09506000134352","piece":2,"total":3}),
            ),
            ("4321", "1", json!({"type":"flag","value":true})),
            ("99", "X", json!({"type":"text","value":"X"})),
        ];
        for (ai, value, want) in cases {
            let got = serde_json::to_value(typed_value(ai, value, TODAY)).unwrap_or_default();
            assert_eq!(&got, want, "AI {ai} {value}");
        }
    }

    #[test]
    fn decimals() {
        let cases: &[(&str, usize, &str)] = &[
            ("001250", 3, "1.250"),
            ("000000", 0, "0"),
            ("000000", 5, "0.00000"),
            ("5", 3, "0.005"),
            ("123456", 6, "0.123456"),
        ];
        for &(d, p, want) in cases {
            assert_eq!(format_decimal(d, p), want, "{d} {p}");
        }
    }
}
