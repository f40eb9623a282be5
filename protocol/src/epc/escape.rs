//! Alphanumeric EPC components: GS1 character set 82, their %-escaped URI form, and their 7-bit binary form.
//!
//! TDS Table A-1: the 82 characters of GS1 AI encodable character set 82 are the only ones an alphanumeric serial
//! (SGTIN, GRAI), GLN extension (SGLN) or asset reference (GIAI) may hold. In a URI, seven of them must be written as
//! `%XX` (`"` `%` `&` `/` `<` `>` `?`); a decoder also accepts any other CS82 character escaped, hex in either case.
//! In binary, each character is its 7-bit ASCII code; the string ends at the first all-zero 7-bit group or at the end
//! of the field, and everything after the end must be zero.

use super::bits::{BitReader, BitWriter};
use super::{EpcError, EpcErrorKind, Field};

/// True for the 82 characters of GS1 AI encodable character set 82.
pub(crate) fn is_cs82(b: u8) -> bool {
    // `%` through `?` is a run of 27 CS82 characters: % & ' ( ) * + , - . / 0-9 : ; < = > ?
    matches!(b, b'!' | b'"' | b'%'..=b'?' | b'A'..=b'Z' | b'_' | b'a'..=b'z')
}

/// True for the CS82 characters that a pure identity or tag URI must %-escape (TDS Table A-1, "URI Form").
fn must_escape(b: u8) -> bool {
    matches!(b, b'"' | b'%' | b'&' | b'/' | b'<' | b'>' | b'?')
}

/// Checks that `s` is 1 to `max` characters of CS82.
pub(crate) fn check_cs82(field: Field, s: &str, max: usize) -> Result<(), EpcError> {
    if s.is_empty() {
        return Err(EpcError::new(EpcErrorKind::EmptyString { field }));
    }
    if let Some((position, ch)) = s
        .char_indices()
        .find(|&(_, c)| !c.is_ascii() || !is_cs82(c as u8))
    {
        return Err(EpcError::new(EpcErrorKind::BadChar {
            field,
            found: format!("{ch:?}"),
            position,
        }));
    }
    // All ASCII from here on, so bytes are characters.
    if s.len() > max {
        return Err(EpcError::new(EpcErrorKind::StringTooLong {
            field,
            len: s.len(),
            max,
        }));
    }
    Ok(())
}

/// The URI form of a CS82 string.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if ch.is_ascii() && must_escape(ch as u8) {
            out.push_str(&format!("%{:02X}", ch as u8));
        } else {
            out.push(ch);
        }
    }
    out
}

/// Reads the URI form of an alphanumeric component back into its characters (at most `max` of them).
pub(crate) fn unescape(field: Field, s: &str, max: usize) -> Result<String, EpcError> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex = b.get(i + 1..i + 3);
            let value = hex
                .and_then(|h| std::str::from_utf8(h).ok())
                .filter(|h| h.bytes().all(|d| d.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .filter(|&v| is_cs82(v));
            let Some(v) = value else {
                let end = (i + 3).min(b.len());
                let found = String::from_utf8_lossy(&b[i..end]).into_owned();
                return Err(EpcError::new(EpcErrorKind::BadEscape { field, found }));
            };
            out.push(char::from(v));
            i += 3;
        } else if c.is_ascii() && is_cs82(c) && !must_escape(c) {
            out.push(char::from(c));
            i += 1;
        } else if c.is_ascii() && must_escape(c) {
            return Err(EpcError::new(EpcErrorKind::MustEscape {
                field,
                found: char::from(c),
            }));
        } else {
            let ch = s[i..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
            return Err(EpcError::new(EpcErrorKind::BadChar {
                field,
                found: format!("{ch:?}"),
                position: i,
            }));
        }
    }
    check_cs82(field, &out, max)?;
    Ok(out)
}

/// Writes `s` (already checked as CS82, at most `bits / 7` characters) as 7-bit codes, zero-padded to `bits`.
pub(crate) fn write_7bit(w: &mut BitWriter, s: &str, bits: u32) {
    let mut used = 0;
    for b in s.bytes().take((bits / 7) as usize) {
        w.push(u64::from(b), 7);
        used += 7;
    }
    w.push_zeros(bits - used);
}

/// Reads a 7-bit string field of `bits` bits holding at most `max` characters (TDS "String" decoding method).
pub(crate) fn read_7bit(
    r: &mut BitReader<'_>,
    field: Field,
    bits: u32,
    max: usize,
) -> Result<String, EpcError> {
    let mut out = String::new();
    let mut ended = false;
    let mut left = bits;
    while left > 0 {
        let n = left.min(7);
        let v = r.read(n);
        left -= n;
        if ended || n < 7 {
            // After the terminating zero, and in the bits too few for one more character, only zeros may follow.
            if v != 0 {
                return Err(EpcError::new(EpcErrorKind::StringPadding { field }));
            }
            continue;
        }
        if v == 0 {
            ended = true;
            continue;
        }
        // `v` is below 128: seven bits.
        let b = v as u8;
        if !is_cs82(b) {
            return Err(EpcError::new(EpcErrorKind::BadChar {
                field,
                found: format!("{:?}", char::from(b)),
                position: out.len(),
            }));
        }
        out.push(char::from(b));
    }
    check_cs82(field, &out, max)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cs82_has_82_characters() {
        assert_eq!((0u8..=127).filter(|&b| is_cs82(b)).count(), 82);
        for b in *b"#$ @[\\]^`{|}~\x00\x7f" {
            assert!(!is_cs82(b), "{:?}", char::from(b));
        }
    }

    #[test]
    fn escape_round_trip() {
        // (raw, URI form): TDS Table A-1 escapes exactly these seven characters.
        let cases: &[(&str, &str)] = &[
            ("32a/b", "32a%2Fb"),
            ("\"%&/<>?", "%22%25%26%2F%3C%3E%3F"),
            ("!'()*+,-.:;=_", "!'()*+,-.:;=_"),
            ("..%:.13&", "..%25:.13%26"),
            ("ABCabc019", "ABCabc019"),
        ];
        for &(raw, uri) in cases {
            assert_eq!(escape(raw), uri, "{raw:?}");
            assert_eq!(
                unescape(Field::Serial, uri, 20).as_deref(),
                Ok(raw),
                "{uri:?}"
            );
        }
    }

    #[test]
    fn unescape_errors() {
        // (URI form, expected message)
        let cases: &[(&str, &str)] = &[
            (
                "a/b",
                "serial: character '/' must be %-escaped in an EPC URI",
            ),
            ("a%2", "serial: %2 is not a valid %-escape"),
            ("a%zz", "serial: %zz is not a valid %-escape"),
            ("a%23", "serial: %23 is not a valid %-escape"), // '#' is not CS82
            ("a%00", "serial: %00 is not a valid %-escape"),
            (
                "a#",
                "serial: character '#' at position 1 is not in GS1 character set 82",
            ),
            (
                "aé",
                "serial: character 'é' at position 1 is not in GS1 character set 82",
            ),
            ("", "serial is empty"),
            (
                "123456789012345678901",
                "serial has 21 characters, at most 20 fit",
            ),
        ];
        for &(uri, want) in cases {
            let got = unescape(Field::Serial, uri, 20).map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_string()), "{uri:?}");
        }
        // Escapes of characters that need none are accepted, in either case.
        assert_eq!(unescape(Field::Serial, "%41%2f", 20).as_deref(), Ok("A/"));
    }

    fn bits_of(s: &str, width: u32) -> Vec<u8> {
        let mut w = BitWriter::new();
        write_7bit(&mut w, s, width);
        w.into_bytes()
    }

    #[test]
    fn seven_bit() {
        // "32a/b" in 140 bits: TDS 2.3 E.3 SGTIN-198 example, serial part.
        let bytes = bits_of("32a/b", 140);
        let mut r = BitReader::new(&bytes);
        assert_eq!(
            read_7bit(&mut r, Field::Serial, 140, 20).as_deref(),
            Ok("32a/b")
        );
        // Full width, no terminator.
        let full = "ABCDEFGHIJKLMNOPQRST";
        let bytes = bits_of(full, 140);
        assert_eq!(
            read_7bit(&mut BitReader::new(&bytes), Field::Serial, 140, 20).as_deref(),
            Ok(full)
        );
    }

    #[test]
    fn seven_bit_errors() {
        let mut w = BitWriter::new();
        w.push(u64::from(b'A'), 7);
        w.push(0, 7);
        w.push(u64::from(b'B'), 7); // after the terminator
        w.push_zeros(140 - 21);
        let bytes = w.into_bytes();
        let got = read_7bit(&mut BitReader::new(&bytes), Field::Serial, 140, 20);
        assert_eq!(
            got.map_err(|e| e.to_string()),
            Err("serial: non-zero bits after the terminating zero character".into())
        );

        let mut w = BitWriter::new();
        w.push(u64::from(b'#'), 7);
        w.push_zeros(140 - 7);
        let bytes = w.into_bytes();
        let got = read_7bit(&mut BitReader::new(&bytes), Field::Serial, 140, 20);
        assert_eq!(
            got.map_err(|e| e.to_string()),
            Err("serial: character '#' at position 0 is not in GS1 character set 82".into())
        );

        let bytes = [0u8; 18];
        let got = read_7bit(&mut BitReader::new(&bytes), Field::Serial, 140, 20);
        assert_eq!(
            got.map_err(|e| e.to_string()),
            Err("serial is empty".into())
        );

        // 148 bits hold 21 characters and one spare bit; a GIAI-202 at partition 0 allows only 18 characters.
        let mut w = BitWriter::new();
        for _ in 0..19 {
            w.push(u64::from(b'7'), 7);
        }
        w.push_zeros(148 - 19 * 7);
        let bytes = w.into_bytes();
        let got = read_7bit(&mut BitReader::new(&bytes), Field::AssetReference, 148, 18);
        assert_eq!(
            got.map_err(|e| e.to_string()),
            Err("individual asset reference has 19 characters, at most 18 fit".into())
        );
        let mut w = BitWriter::new();
        w.push(u64::from(b'7'), 7);
        w.push_zeros(147 - 7);
        w.push(1, 1); // the spare bit
        let bytes = w.into_bytes();
        let got = read_7bit(&mut BitReader::new(&bytes), Field::AssetReference, 148, 18);
        assert_eq!(
            got.map_err(|e| e.to_string()),
            Err(
                "individual asset reference: non-zero bits after the terminating zero character"
                    .into()
            )
        );
    }
}
