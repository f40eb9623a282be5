//! The dictionary's linters: content checks on one component of a value whose characters are already known to be in
//! the component's character set and whose length is already right.
//!
//! Which linters are enforced, and why the others are not, is documented on [`Linter::is_enforced`].

use super::ai::{Linter, CSET82};
use super::check::gs1_check_digit;
use super::iso;
use super::Gs1ErrorKind;

/// The 32 characters of a GS1 check character pair (GS1 General Specifications §7.9.5).
const CSET32: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// The check character pair for `body` (CSET 82 characters), or `None` if `body` is empty, too long for the
/// weights (more than 23 characters) or has a character outside CSET 82.
pub fn check_character_pair(body: &[u8]) -> Option<[u8; 2]> {
    // Weights are the primes from 2 (rightmost character) upwards; 23 of them cover the longest body (X..25).
    const PRIMES: [u32; 23] = [
        2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83,
    ];
    if body.is_empty() || body.len() > PRIMES.len() {
        return None;
    }
    let mut sum = 0u32;
    for (i, &b) in body.iter().rev().enumerate() {
        let value = CSET82.iter().position(|&c| c == b)?;
        sum += PRIMES[i] * u32::try_from(value).ok()?;
    }
    let sum = (sum % 1021) as usize;
    Some([CSET32[sum >> 5], CSET32[sum & 31]])
}

/// Applies one linter to `part`. Linters we do not enforce always pass.
pub(crate) fn lint(linter: Linter, part: &[u8]) -> Result<(), Gs1ErrorKind> {
    // Values reaching a linter passed their character-set check, so this borrows rather than allocates.
    let text = String::from_utf8_lossy(part);
    let num = |r: std::ops::Range<usize>| text.get(r).and_then(|s| s.parse::<u32>().ok());
    let fail = || Gs1ErrorKind::Lint {
        linter,
        value: text.to_string(),
    };
    let check = |ok: bool| if ok { Ok(()) } else { Err(fail()) };
    match linter {
        Linter::Csum => {
            let (body, last) = text.split_at(text.len().saturating_sub(1));
            let found = last.bytes().next().map(|b| b.wrapping_sub(b'0'));
            match (gs1_check_digit(body), found) {
                (Some(expected), Some(found)) if expected == found => Ok(()),
                (Some(expected), Some(found)) => Err(Gs1ErrorKind::CheckDigit { expected, found }),
                _ => Err(fail()),
            }
        }
        Linter::CsumAlpha => {
            if part.len() < 2 {
                return Err(fail());
            }
            let (body, pair) = part.split_at(part.len() - 2);
            match check_character_pair(body) {
                Some(expected) if expected == pair => Ok(()),
                Some(expected) => Err(Gs1ErrorKind::CheckCharacters {
                    expected: String::from_utf8_lossy(&expected).into_owned(),
                    found: String::from_utf8_lossy(pair).into_owned(),
                }),
                None => Err(fail()),
            }
        }
        Linter::Yymmd0 | Linter::Yymmdd => {
            let bad = || Gs1ErrorKind::InvalidDate {
                value: text.to_string(),
            };
            let (Some(yy), Some(mm), Some(dd)) = (num(0..2), num(2..4), num(4..6)) else {
                return Err(bad());
            };
            // The century is unknown at this layer; YY divisible by 4 is a leap year in 2000-2099 and 1901-1999.
            let year = if yy % 4 == 0 { 2000 } else { 2001 };
            let min_day = if linter == Linter::Yymmd0 { 0 } else { 1 };
            if !(1..=12).contains(&mm) || dd < min_day || dd > days_in_month(year, mm) {
                return Err(bad());
            }
            Ok(())
        }
        Linter::Yyyymmdd => {
            let (Some(yyyy), Some(mm), Some(dd)) = (num(0..4), num(4..6), num(6..8)) else {
                return Err(Gs1ErrorKind::InvalidDate {
                    value: text.into_owned(),
                });
            };
            let year = i32::try_from(yyyy).unwrap_or(0);
            if !(1..=12).contains(&mm) || dd < 1 || dd > days_in_month(year, mm) {
                return Err(Gs1ErrorKind::InvalidDate {
                    value: text.into_owned(),
                });
            }
            Ok(())
        }
        Linter::Hhmi => match (num(0..2), num(2..4)) {
            (Some(hh), Some(mi)) if hh < 24 && mi < 60 => Ok(()),
            _ => Err(Gs1ErrorKind::InvalidTime {
                value: text.into_owned(),
            }),
        },
        Linter::Hh => check(num(0..2).is_some_and(|h| h < 24)),
        Linter::Mi | Linter::Ss => check(num(0..2).is_some_and(|m| m < 60)),
        Linter::Iso3166 => check(iso::is_country_numeric(&text)),
        Linter::Iso3166999 => check(text == "999" || iso::is_country_numeric(&text)),
        Linter::Iso3166Alpha2 => check(iso::is_country_alpha2(&text)),
        Linter::Iso4217 => check(iso::currency_alpha(&text).is_some()),
        Linter::Iso5218 => check(matches!(&*text, "0" | "1" | "2" | "9")),
        Linter::Latitude => check(text.parse::<u64>().is_ok_and(|v| v <= 1_800_000_000)),
        Linter::Longitude => check(text.parse::<u64>().is_ok_and(|v| v <= 3_600_000_000)),
        Linter::MediaType => check(num(0..2).is_some_and(|m| (1..=10).contains(&m) || m >= 80)),
        Linter::NonZero => check(part.iter().any(|&b| b != b'0')),
        Linter::NoZeroPrefix => check(part.len() == 1 || part.first() != Some(&b'0')),
        Linter::Pcenc => check(percent_escapes_valid(part)),
        Linter::PieceOfTotal => match (num(0..2), num(2..4)) {
            (Some(piece), Some(total)) if piece >= 1 && piece <= total => Ok(()),
            _ => Err(Gs1ErrorKind::PieceOfTotal {
                value: text.into_owned(),
            }),
        },
        Linter::PosInSeqSlash => {
            let ok = text.split_once('/').is_some_and(|(p, t)| {
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                digits(p)
                    && digits(t)
                    && !p.starts_with('0')
                    && !t.starts_with('0')
                    && p.parse::<u32>().ok() <= t.parse::<u32>().ok()
            });
            check(ok)
        }
        Linter::Winding => check(matches!(&*text, "0" | "1" | "9")),
        Linter::YesNo => check(matches!(&*text, "0" | "1")),
        Linter::Zero => check(text == "0").map_err(|_| Gs1ErrorKind::NotZero {
            found: text.into_owned(),
        }),
        Linter::Hyphen => check(text == "-"),
        Linter::Iban => check(iban_valid(part)),
        Linter::ImporterIdx => check(
            part.len() == 1
                && part
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        ),
        Linter::HasNonDigit => check(part.iter().any(|b| !b.is_ascii_digit())),
        Linter::Gcppos1
        | Linter::Gcppos2
        | Linter::PackageType
        | Linter::CouponCode
        | Linter::CouponPosOffer => Ok(()),
    }
}

/// What a value that fails `linter` should have been, for error messages.
pub(crate) fn expectation(linter: Linter) -> &'static str {
    match linter {
        Linter::Csum => "a number ending in its check digit",
        Linter::CsumAlpha => "a value ending in its two check characters",
        Linter::Yymmd0 | Linter::Yymmdd | Linter::Yyyymmdd => "a valid date",
        Linter::Hhmi => "a valid time",
        Linter::Hh => "an hour 00-23",
        Linter::Mi => "a minute 00-59",
        Linter::Ss => "a second 00-59",
        Linter::Iso3166 => "an ISO 3166 numeric country code",
        Linter::Iso3166999 => "an ISO 3166 numeric country code or 999",
        Linter::Iso3166Alpha2 => "an ISO 3166 alpha-2 country code",
        Linter::Iso4217 => "an ISO 4217 numeric currency code",
        Linter::Iso5218 => "a sex code 0, 1, 2 or 9",
        Linter::Latitude => "a latitude 0000000000-1800000000",
        Linter::Longitude => "a longitude 0000000000-3600000000",
        Linter::MediaType => "an AIDC media type 01-10 or 80-99",
        Linter::NonZero => "a non-zero number",
        Linter::NoZeroPrefix => "a number without leading zeros",
        Linter::Pcenc => "validly percent-encoded (% followed by two hex digits)",
        Linter::PieceOfTotal => "a piece number 01..total",
        Linter::PosInSeqSlash => "a position N/M with 1 <= N <= M",
        Linter::Winding => "a winding direction 0, 1 or 9",
        Linter::YesNo => "0 or 1",
        Linter::Zero => "0",
        Linter::Hyphen => "'-'",
        Linter::Iban => "a valid IBAN",
        Linter::ImporterIdx => "an importer index (0-9, A-Z, a-z, - or _)",
        Linter::HasNonDigit => "a value with at least one non-digit",
        Linter::Gcppos1
        | Linter::Gcppos2
        | Linter::PackageType
        | Linter::CouponCode
        | Linter::CouponPosOffer => "valid",
    }
}

/// True when every `%` in `s` is followed by two hexadecimal digits.
fn percent_escapes_valid(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = |j: usize| s.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// ISO 13616: country (alpha-2), two check digits, up to 30 alphanumerics, and mod 97 of the rearranged number is 1.
///
/// The per-country BBAN lengths are not checked: the mod-97 check already catches misreads.
fn iban_valid(s: &[u8]) -> bool {
    if s.len() < 5
        || s.len() > 34
        || !s
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return false;
    }
    let country = String::from_utf8_lossy(&s[..2]);
    if !iso::is_country_alpha2(&country) || !s[2..4].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut rem = 0u32;
    for &b in s[4..].iter().chain(&s[..4]) {
        let v = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// Days in `month` (1-12) of `year`.
pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Linter::*;

    #[test]
    fn linters() {
        // (linter, value, passes)
        let cases: &[(Linter, &str, bool)] = &[
            (Csum, "09506000134352", true),
            (Csum, "09506000134353", false),
            (CsumAlpha, "1987654Ad4X4bL5ttr2310c2K", true),
            (CsumAlpha, "1987654Ad4X4bL5ttr2310c2L", false),
            (CsumAlpha, "2K", false),
            (Yymmd0, "270200", true),
            (Yymmd0, "270230", false),
            (Yymmdd, "270200", false),
            (Yymmdd, "280229", true),
            (Yyyymmdd, "20000229", true),
            (Yyyymmdd, "21000229", false),
            (Yyyymmdd, "20251301", false),
            (Hhmi, "2359", true),
            (Hhmi, "2400", false),
            (Hh, "23", true),
            (Hh, "24", false),
            (Mi, "59", true),
            (Ss, "60", false),
            (Iso3166, "250", true),
            (Iso3166, "999", false),
            (Iso3166999, "999", true),
            (Iso3166999, "998", false),
            (Iso3166Alpha2, "DE", true),
            (Iso3166Alpha2, "UK", false),
            (Iso4217, "978", true),
            (Iso4217, "250", false),
            (Iso5218, "9", true),
            (Iso5218, "3", false),
            (Latitude, "1800000000", true),
            (Latitude, "1800000001", false),
            (Longitude, "3600000000", true),
            (Longitude, "3600000001", false),
            (MediaType, "01", true),
            (MediaType, "10", true),
            (MediaType, "11", false),
            (MediaType, "80", true),
            (MediaType, "00", false),
            (NonZero, "0001", true),
            (NonZero, "0000", false),
            (NoZeroPrefix, "0", true),
            (NoZeroPrefix, "10", true),
            (NoZeroPrefix, "01", false),
            (Pcenc, "A%20B", true),
            (Pcenc, "A%2", false),
            (Pcenc, "A%G0", false),
            (PieceOfTotal, "0102", true),
            (PieceOfTotal, "0302", false),
            (PieceOfTotal, "0002", false),
            (PosInSeqSlash, "1/2", true),
            (PosInSeqSlash, "2/2", true),
            (PosInSeqSlash, "3/2", false),
            (PosInSeqSlash, "0/2", false),
            (PosInSeqSlash, "1-2", false),
            (Winding, "9", true),
            (Winding, "2", false),
            (YesNo, "1", true),
            (YesNo, "2", false),
            (Zero, "0", true),
            (Zero, "1", false),
            (Hyphen, "-", true),
            (Hyphen, "+", false),
            (Iban, "GB82WEST12345698765432", true),
            (Iban, "GB82WEST12345698765431", false),
            (Iban, "XX82WEST12345698765432", false),
            (Iban, "GB8", false),
            (ImporterIdx, "_", true),
            (ImporterIdx, "!", false),
            (HasNonDigit, "12A", true),
            (HasNonDigit, "123", false),
            (Gcppos1, "0000000", true),
            (PackageType, "??", true),
        ];
        for &(l, v, ok) in cases {
            assert_eq!(lint(l, v.as_bytes()).is_ok(), ok, "{} {v}", l.name());
        }
    }

    #[test]
    fn check_character_pairs() {
        // GS1 General Specifications §7.9.5 example (GMN).
        let cases: &[(&str, Option<&[u8; 2]>)] = &[
            ("1987654Ad4X4bL5ttr2310c", Some(b"2K")),
            ("12345678901234567890123", Some(b"NT")),
            ("", None),
            ("A B", None),
            ("123456789012345678901234", None),
        ];
        for &(body, want) in cases {
            assert_eq!(
                check_character_pair(body.as_bytes()).as_ref(),
                want,
                "{body}"
            );
        }
    }
}
