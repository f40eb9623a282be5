//! The binary encodings (TDS §14): identity + scheme + filter to bits and back.
//!
//! All partitioned schemes share one layout, after the 8-bit header:
//!
//! ```text
//! filter (3) | partition (3) | company prefix (M) | second field (N) | tail (scheme-specific)
//! ```
//!
//! M and N come from the partition table. The second field is fixed-width decimal (item reference, serial reference,
//! location reference, asset type), an integer (GIAI-96) or a 7-bit string (GIAI-202). The tail is an integer serial
//! or extension (38 or 41 bits), a 7-bit string (140 or 112 bits), 24 reserved zero bits (SSCC-96) or nothing.
//! GID-96 is simply header | manager (28) | class (24) | serial (36).
//!
//! Decoding is strict, so that every accepted bit string is the one and only encoding of its tag URI: partition 7,
//! a decimal field beyond its digits, non-zero reserved bits, non-zero bits after a string's end or after the scheme's
//! length are all errors.

use super::bits::{zero_from, BitReader, BitWriter};
use super::escape::{read_7bit, write_7bit};
use super::identity::{Giai, Gid, Grai, Identity, Sgln, Sgtin, Sscc};
use super::partition::{self, Table};
use super::{EpcError, EpcErrorKind, Field, IdentityKind, Scheme};

/// How the field after the company prefix is coded.
#[derive(Clone, Copy)]
enum Second {
    /// Decimal with the partition table's number of digits, leading zeros kept.
    Digits,
    /// An integer without leading zeros in the URI.
    Integer,
    /// A 7-bit string; the table's digit column is its maximum length.
    String,
}

/// What follows the second field.
#[derive(Clone, Copy)]
enum Tail {
    None,
    /// An integer of this many bits, no leading zeros in the URI.
    Integer(u32),
    /// A 7-bit string of this many bits holding at most this many characters.
    String(u32, usize),
    /// This many bits that must be zero.
    Reserved(u32),
}

struct Layout {
    table: &'static Table,
    second: Second,
    tail: Tail,
}

fn layout(scheme: Scheme) -> Option<Layout> {
    let (table, second, tail) = match scheme {
        Scheme::Sgtin96 => (&partition::SGTIN, Second::Digits, Tail::Integer(38)),
        Scheme::Sgtin198 => (&partition::SGTIN, Second::Digits, Tail::String(140, 20)),
        Scheme::Sscc96 => (&partition::SSCC, Second::Digits, Tail::Reserved(24)),
        Scheme::Sgln96 => (&partition::SGLN, Second::Digits, Tail::Integer(41)),
        Scheme::Sgln195 => (&partition::SGLN, Second::Digits, Tail::String(140, 20)),
        Scheme::Grai96 => (&partition::GRAI, Second::Digits, Tail::Integer(38)),
        Scheme::Grai170 => (&partition::GRAI, Second::Digits, Tail::String(112, 16)),
        Scheme::Giai96 => (&partition::GIAI96, Second::Integer, Tail::None),
        Scheme::Giai202 => (&partition::GIAI202, Second::String, Tail::None),
        Scheme::Gid96 => return None,
    };
    Some(Layout {
        table,
        second,
        tail,
    })
}

/// The names of the second field and the tail for an identity kind.
fn fields(kind: IdentityKind) -> (Field, Field) {
    match kind {
        IdentityKind::Sgtin => (Field::ItemReference, Field::Serial),
        IdentityKind::Sscc => (Field::SerialReference, Field::Reserved),
        IdentityKind::Sgln => (Field::LocationReference, Field::Extension),
        IdentityKind::Grai => (Field::AssetType, Field::Serial),
        IdentityKind::Giai | IdentityKind::Gid => (Field::AssetReference, Field::Reserved),
    }
}

/// Decimal digits to their value (the caller checked they are digits and at most 19 of them).
fn digits_value(s: &str) -> u64 {
    s.bytes().fold(0u64, |v, b| {
        v.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
    })
}

/// The value of an integer field given in a URI: digits, no leading zeros, below 2^bits.
fn integer(field: Field, s: &str, bits: u32) -> Result<u64, EpcError> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EpcError::new(EpcErrorKind::NotNumeric {
            field,
            value: s.to_owned(),
        }));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(EpcError::new(EpcErrorKind::LeadingZeros {
            field,
            value: s.to_owned(),
        }));
    }
    let too_large = || {
        EpcError::new(EpcErrorKind::TooLarge {
            field,
            value: s.to_owned(),
            bits,
        })
    };
    let v = s.parse::<u64>().map_err(|_| too_large())?;
    if bits < 64 && v >> bits != 0 {
        return Err(too_large());
    }
    Ok(v)
}

/// A decimal field read from bits: below 10^digits, written with exactly `digits` digits.
fn decimal(field: Field, value: u64, digits: usize) -> Result<String, EpcError> {
    let fits = u32::try_from(digits)
        .ok()
        .and_then(|d| 10u64.checked_pow(d))
        .is_none_or(|limit| value < limit);
    if !fits {
        return Err(EpcError::new(EpcErrorKind::DecimalRange {
            field,
            value,
            digits,
        }));
    }
    if digits == 0 {
        return Ok(String::new());
    }
    Ok(format!("{value:0digits$}"))
}

/// The company prefix, second field and tail of a partitioned identity, as in its URI (unescaped).
fn parts(id: &Identity) -> Option<(&str, &str, Option<&str>)> {
    Some(match id {
        Identity::Sgtin(x) => (x.company_prefix(), x.item_ref(), Some(x.serial())),
        Identity::Sscc(x) => (x.company_prefix(), x.serial_ref(), None),
        Identity::Sgln(x) => (x.company_prefix(), x.location_ref(), Some(x.extension())),
        Identity::Grai(x) => (x.company_prefix(), x.asset_type(), Some(x.serial())),
        Identity::Giai(x) => (x.company_prefix(), x.asset_ref(), None),
        Identity::Gid(_) => return None,
    })
}

/// Encodes `id` with `scheme`, zero-padded to whole 16-bit words. The filter is ignored for GID-96.
pub(crate) fn encode(id: &Identity, scheme: Scheme, filter: u8) -> Result<Vec<u8>, EpcError> {
    encode_inner(id, scheme, filter).map_err(|e| e.in_scheme(scheme))
}

fn encode_inner(id: &Identity, scheme: Scheme, filter: u8) -> Result<Vec<u8>, EpcError> {
    if scheme.kind() != id.kind() {
        return Err(EpcError::new(EpcErrorKind::SchemeMismatch {
            identity: id.kind(),
        }));
    }
    let mut w = BitWriter::new();
    w.push(u64::from(scheme.header()), 8);
    let (Some(layout), Some((cp, second, tail))) = (layout(scheme), parts(id)) else {
        if let Identity::Gid(g) = id {
            w.push(g.manager(), 28);
            w.push(g.class(), 24);
            w.push(g.serial(), 36);
        }
        return Ok(w.into_words());
    };
    if filter > 7 {
        return Err(EpcError::new(EpcErrorKind::Filter { value: filter }));
    }
    let (second_field, tail_field) = fields(id.kind());
    // The identity holds a 6-12 digit company prefix, so this always finds a row.
    let p = partition::for_prefix_digits(cp.len()).unwrap_or(0);
    let row = partition::lookup(layout.table, p).unwrap_or(layout.table[0]);
    w.push(u64::from(filter), 3);
    w.push(u64::from(p), 3);
    w.push(digits_value(cp), row.cp_bits);
    match layout.second {
        Second::Digits => w.push(digits_value(second), row.other_bits),
        Second::Integer => w.push(
            integer(second_field, second, row.other_bits)?,
            row.other_bits,
        ),
        Second::String => {
            super::escape::check_cs82(second_field, second, row.other_digits)?;
            write_7bit(&mut w, second, row.other_bits);
        }
    }
    let tail = tail.unwrap_or("");
    match layout.tail {
        Tail::None => {}
        Tail::Integer(bits) => w.push(integer(tail_field, tail, bits)?, bits),
        Tail::String(bits, max) => {
            super::escape::check_cs82(tail_field, tail, max)?;
            write_7bit(&mut w, tail, bits);
        }
        Tail::Reserved(bits) => w.push_zeros(bits),
    }
    Ok(w.into_words())
}

/// Decodes an EPC of `scheme` (whose header `data` starts with). Returns the filter (0 for GID-96) and identity.
pub(crate) fn decode(scheme: Scheme, data: &[u8]) -> Result<(u8, Identity), EpcError> {
    decode_inner(scheme, data).map_err(|e| e.in_scheme(scheme))
}

fn decode_inner(scheme: Scheme, data: &[u8]) -> Result<(u8, Identity), EpcError> {
    let bits = scheme.bits();
    let got = data.len().saturating_mul(8);
    if got < bits {
        return Err(EpcError::new(EpcErrorKind::TooShort { needed: bits, got }));
    }
    if !zero_from(data, bits) {
        return Err(EpcError::new(EpcErrorKind::TrailingBits { bits }));
    }
    let mut r = BitReader::new(data);
    r.read(8);
    let Some(layout) = layout(scheme) else {
        let (manager, class, serial) = (r.read(28), r.read(24), r.read(36));
        return Ok((0, Identity::Gid(Gid::new(manager, class, serial)?)));
    };
    let kind = scheme.kind();
    let (second_field, tail_field) = fields(kind);
    // Both are 3-bit values.
    let filter = r.read(3) as u8;
    let p = r.read(3) as u8;
    let row = partition::lookup(layout.table, p)
        .ok_or_else(|| EpcError::new(EpcErrorKind::Partition { value: p }))?;
    let cp = decimal(Field::CompanyPrefix, r.read(row.cp_bits), row.cp_digits)?;
    let second = match layout.second {
        Second::Digits => decimal(second_field, r.read(row.other_bits), row.other_digits)?,
        Second::Integer => r.read(row.other_bits).to_string(),
        Second::String => read_7bit(&mut r, second_field, row.other_bits, row.other_digits)?,
    };
    let tail = match layout.tail {
        Tail::None => String::new(),
        Tail::Integer(bits) => r.read(bits).to_string(),
        Tail::String(bits, max) => read_7bit(&mut r, tail_field, bits, max)?,
        Tail::Reserved(bits) => {
            if r.read(bits) != 0 {
                return Err(EpcError::new(EpcErrorKind::ReservedBits { bits }));
            }
            String::new()
        }
    };
    let id = match kind {
        IdentityKind::Sgtin => Identity::Sgtin(Sgtin::new(&cp, &second, &tail)?),
        IdentityKind::Sscc => Identity::Sscc(Sscc::new(&cp, &second)?),
        IdentityKind::Sgln => Identity::Sgln(Sgln::new(&cp, &second, &tail)?),
        IdentityKind::Grai => Identity::Grai(Grai::new(&cp, &second, &tail)?),
        IdentityKind::Giai => Identity::Giai(Giai::new(&cp, &second)?),
        // GID-96 has no layout and returned above.
        IdentityKind::Gid => {
            return Err(EpcError::new(EpcErrorKind::SchemeMismatch {
                identity: kind,
            }))
        }
    };
    Ok((filter, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        // (text, bits, result)
        let cases: &[(&str, u32, Result<u64, &str>)] = &[
            ("0", 38, Ok(0)),
            ("6789", 38, Ok(6789)),
            ("274877906943", 38, Ok((1 << 38) - 1)),
            (
                "274877906944",
                38,
                Err("serial 274877906944 does not fit in 38 bits"),
            ),
            (
                "99999999999999999999999",
                38,
                Err("serial 99999999999999999999999 does not fit in 38 bits"),
            ),
            (
                "0123",
                38,
                Err("serial \"0123\" has leading zeros, which an integer field cannot keep"),
            ),
            (
                "12a",
                38,
                Err("serial \"12a\" is not a number, which a numeric-serial scheme needs"),
            ),
        ];
        for &(s, bits, ref want) in cases {
            let got = integer(Field::Serial, s, bits).map_err(|e| e.to_string());
            assert_eq!(got, (*want).map_err(String::from), "{s}");
        }
    }

    #[test]
    fn decimals() {
        assert_eq!(
            decimal(Field::CompanyPrefix, 614141, 7).as_deref(),
            Ok("0614141")
        );
        assert_eq!(decimal(Field::LocationReference, 0, 0).as_deref(), Ok(""));
        assert_eq!(
            decimal(Field::LocationReference, 1, 0).map_err(|e| e.to_string()),
            Err("location reference 1 does not fit in 0 digits".into())
        );
        assert_eq!(
            decimal(Field::CompanyPrefix, 1_000_000, 6).map_err(|e| e.to_string()),
            Err("company prefix 1000000 does not fit in 6 digits".into())
        );
    }
}
