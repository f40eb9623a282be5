//! UPC-E and EAN/UPC add-ons.
//!
//! UPC-E is UPC-A with zeros suppressed (GS1 General Specifications §5.2.2.4.2); scanners usually send it as
//! eight digits with AIM id `]E0`: number system (0 or 1), six data digits, the check digit of the expanded UPC-A.

use super::check::gs1_check_digit;
use super::{Gs1Error, Gs1ErrorKind};

/// Expands an 8-digit UPC-E (`N X1..X6 C`) to the 12-digit UPC-A it stands for, verifying the check digit.
///
/// The last data digit X6 says where the zeros go:
///
/// ```text
/// X6 = 0,1,2  →  N X1 X2 X6 0 0 0 0 X3 X4 X5 C
/// X6 = 3      →  N X1 X2 X3 0 0 0 0 0 X4 X5 C
/// X6 = 4      →  N X1 X2 X3 X4 0 0 0 0 0 X5 C
/// X6 = 5..9   →  N X1 X2 X3 X4 X5 0 0 0 0 X6 C
/// ```
pub fn expand_upce(upce: &str) -> Result<String, Gs1Error> {
    if let Some(c) = upce.chars().find(|c| !c.is_ascii_digit()) {
        let found = super::element::show_char(c);
        return Err(Gs1Error::new(Gs1ErrorKind::GtinNotNumeric { found }));
    }
    let d = upce.as_bytes();
    if d.len() != 8 {
        return Err(Gs1Error::new(Gs1ErrorKind::GtinLength { len: d.len() }));
    }
    let ns = d[0];
    if ns != b'0' && ns != b'1' {
        let kind = Gs1ErrorKind::UpcENumberSystem {
            found: char::from(ns),
        };
        return Err(Gs1Error::new(kind).at(0));
    }
    let x = |i: usize| char::from(d[i]);
    let body: String = match d[6] {
        b'0'..=b'2' => format!(
            "{}{}{}{}0000{}{}{}",
            x(0),
            x(1),
            x(2),
            x(6),
            x(3),
            x(4),
            x(5)
        ),
        b'3' => format!("{}{}{}{}00000{}{}", x(0), x(1), x(2), x(3), x(4), x(5)),
        b'4' => format!("{}{}{}{}{}00000{}", x(0), x(1), x(2), x(3), x(4), x(5)),
        _ => format!(
            "{}{}{}{}{}{}0000{}",
            x(0),
            x(1),
            x(2),
            x(3),
            x(4),
            x(5),
            x(6)
        ),
    };
    let expected = gs1_check_digit(&body).unwrap_or(0);
    let found = d[7] - b'0';
    if expected != found {
        return Err(Gs1Error::new(Gs1ErrorKind::GtinCheckDigit { expected, found }).at(7));
    }
    Ok(format!("{body}{found}"))
}

/// Checks an EAN/UPC add-on (2 or 5 digits) and returns it.
pub fn check_addon(addon: &str) -> Result<&str, Gs1Error> {
    if matches!(addon.len(), 2 | 5) && addon.bytes().all(|b| b.is_ascii_digit()) {
        Ok(addon)
    } else {
        let kind = Gs1ErrorKind::AddOn {
            found: format!("{addon:?}"),
        };
        Err(Gs1Error::new(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upce() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("02345604", Ok("023000004564")), // X6 = 0: manufacturer X1 X2 0 0 0
            ("01234514", Ok("012100003454")), // X6 = 1 (also the GS1 example 04252614 below)
            ("04252614", Ok("042100005264")),
            ("01234523", Ok("012200003453")), // X6 = 2
            ("01234531", Ok("012300000451")), // X6 = 3
            ("01234543", Ok("012340000053")), // X6 = 4
            ("01234558", Ok("012345000058")), // X6 = 5
            ("01234565", Ok("012345000065")), // X6 = 6
            ("11234579", Ok("112345000079")), // X6 = 7, number system 1
            ("04252615", Err("GTIN check digit should be 4, found 5")),
            (
                "24252614",
                Err("UPC-E number system must be 0 or 1, found 2"),
            ),
            ("0425261", Err("a GTIN has 8, 12, 13 or 14 digits, found 7")),
            ("0425261x", Err("a GTIN has only digits, found 'x'")),
        ];
        for &(s, want) in cases {
            let got = expand_upce(s).map_err(|e| e.to_string());
            assert_eq!(got, want.map(str::to_owned).map_err(str::to_owned), "{s}");
        }
    }

    #[test]
    fn addons() {
        let cases: &[(&str, bool)] = &[
            ("12", true),
            ("12345", true),
            ("123", false),
            ("1a", false),
            ("", false),
        ];
        for &(s, ok) in cases {
            assert_eq!(check_addon(s).is_ok(), ok, "{s}");
        }
    }
}
