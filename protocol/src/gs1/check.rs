//! The GS1 mod-10 check digit (GS1 General Specifications §7.9).
//!
//! Used by GTINs, SSCCs, GLNs, GSRNs and every other fixed-length numeric key with a trailing check digit.

/// Computes the check digit for `digits_without_check`, or `None` when the input is empty or not all ASCII digits.
///
/// Weights alternate 3, 1, 3, ... starting from the rightmost digit, so the same function serves keys of every length.
pub fn gs1_check_digit(digits_without_check: &str) -> Option<u8> {
    if digits_without_check.is_empty() {
        return None;
    }
    let mut sum = 0u32;
    for (i, b) in digits_without_check.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let weight = if i % 2 == 0 { 3 } else { 1 };
        sum += u32::from(b - b'0') * weight;
    }
    // `sum % 10` is below 10, so the result fits in a u8.
    Some(((10 - sum % 10) % 10) as u8)
}

/// True when `s` is at least two ASCII digits and its last digit is the GS1 check digit of the others.
pub fn verify_check_digit(s: &str) -> bool {
    // All-ASCII first, so that splitting off the last byte cannot cut a character in two.
    if s.len() < 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (body, last) = s.split_at(s.len() - 1);
    gs1_check_digit(body) == last.bytes().next().map(|b| b - b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits() {
        let cases: &[(&str, Option<u8>)] = &[
            ("0950600013435", Some(2)),     // GTIN-14 body of 09506000134352
            ("950600013435", Some(2)),      // same GTIN as EAN-13 body
            ("9501101", Some(1)),           // EAN-8 95011011
            ("03600029145", Some(2)),       // UPC-A 036000291452
            ("00950600013435000", Some(4)), // SSCC 009506000134350004
            ("", None),
            ("12a", None),
            ("0", Some(0)),
        ];
        for &(body, want) in cases {
            assert_eq!(gs1_check_digit(body), want, "body {body:?}");
        }
    }

    #[test]
    fn verify() {
        let cases: &[(&str, bool)] = &[
            ("09506000134352", true),
            ("09506000134353", false),
            ("95011011", true),
            ("036000291452", true),
            ("4006381333931", true),
            ("", false),
            ("5", false),
            ("0950600013435x", false),
            ("é", false),
        ];
        for &(s, want) in cases {
            assert_eq!(verify_check_digit(s), want, "{s:?}");
        }
    }
}
