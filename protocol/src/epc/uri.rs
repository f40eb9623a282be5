//! EPC URIs (TDS §6 and §12): `urn:epc:id:<kind>:<body>` and `urn:epc:tag:<scheme>:<filter>.<body>`.
//!
//! Bodies are dot-separated. Only the last component of an SGTIN, SGLN, GRAI or GIAI may be alphanumeric, and `.` is
//! a legal character there, so a body splits at its first dots only.

use super::escape::{escape, unescape};
use super::identity::{Giai, Gid, Grai, Identity, Sgln, Sgtin, Sscc};
use super::{EpcError, EpcErrorKind, Field, IdentityKind, Scheme};

/// The body of the pure identity URI (what follows `urn:epc:id:<kind>:`).
pub(crate) fn body(id: &Identity) -> String {
    match id {
        Identity::Sgtin(x) => format!(
            "{}.{}.{}",
            x.company_prefix(),
            x.item_ref(),
            escape(x.serial())
        ),
        Identity::Sscc(x) => format!("{}.{}", x.company_prefix(), x.serial_ref()),
        Identity::Sgln(x) => {
            format!(
                "{}.{}.{}",
                x.company_prefix(),
                x.location_ref(),
                escape(x.extension())
            )
        }
        Identity::Grai(x) => format!(
            "{}.{}.{}",
            x.company_prefix(),
            x.asset_type(),
            escape(x.serial())
        ),
        Identity::Giai(x) => format!("{}.{}", x.company_prefix(), escape(x.asset_ref())),
        Identity::Gid(x) => format!("{}.{}.{}", x.manager(), x.class(), x.serial()),
    }
}

fn uri_err(reason: impl Into<String>) -> EpcError {
    EpcError::new(EpcErrorKind::Uri {
        reason: reason.into(),
    })
}

/// Splits `body` into exactly `n` components at its first `n - 1` dots.
fn split(body: &str, n: usize, kind: IdentityKind) -> Result<Vec<&str>, EpcError> {
    let parts: Vec<&str> = body.splitn(n, '.').collect();
    if parts.len() != n {
        return Err(uri_err(format!(
            "{kind} needs {n} dot-separated components, found {}",
            parts.len()
        )));
    }
    Ok(parts)
}

/// A GID number: decimal, no leading zeros (TDS §6.3.5).
fn gid_number(field: Field, s: &str) -> Result<u64, EpcError> {
    if s.is_empty() {
        return Err(EpcError::new(EpcErrorKind::EmptyString { field }));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EpcError::new(EpcErrorKind::NotDigits {
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
    s.parse::<u64>().map_err(|_| {
        EpcError::new(EpcErrorKind::TooLarge {
            field,
            value: s.to_owned(),
            bits: 64,
        })
    })
}

/// Parses a pure identity body of the given kind.
pub(crate) fn parse_body(kind: IdentityKind, body: &str) -> Result<Identity, EpcError> {
    Ok(match kind {
        IdentityKind::Sgtin => {
            let p = split(body, 3, kind)?;
            Identity::Sgtin(Sgtin::new(p[0], p[1], &unescape(Field::Serial, p[2], 20)?)?)
        }
        IdentityKind::Sscc => {
            let p = split(body, 2, kind)?;
            Identity::Sscc(Sscc::new(p[0], p[1])?)
        }
        IdentityKind::Sgln => {
            let p = split(body, 3, kind)?;
            Identity::Sgln(Sgln::new(
                p[0],
                p[1],
                &unescape(Field::Extension, p[2], 20)?,
            )?)
        }
        IdentityKind::Grai => {
            let p = split(body, 3, kind)?;
            Identity::Grai(Grai::new(p[0], p[1], &unescape(Field::Serial, p[2], 16)?)?)
        }
        IdentityKind::Giai => {
            let p = split(body, 2, kind)?;
            // The prefix is checked first so the asset reference's limit (30 - prefix digits) is meaningful.
            let max = 30usize.saturating_sub(p[0].len()).max(1);
            Identity::Giai(Giai::new(
                p[0],
                &unescape(Field::AssetReference, p[1], max)?,
            )?)
        }
        IdentityKind::Gid => {
            let p = split(body, 3, kind)?;
            Identity::Gid(Gid::new(
                gid_number(Field::GeneralManager, p[0])?,
                gid_number(Field::ObjectClass, p[1])?,
                gid_number(Field::Serial, p[2])?,
            )?)
        }
    })
}

/// Parses `urn:epc:id:<kind>:<body>`.
pub(crate) fn parse_pure(uri: &str) -> Result<Identity, EpcError> {
    let rest = uri
        .strip_prefix("urn:epc:id:")
        .ok_or_else(|| uri_err("a pure identity URI starts with urn:epc:id:"))?;
    let (name, body) = rest
        .split_once(':')
        .ok_or_else(|| uri_err("missing ':' after the EPC scheme"))?;
    let kind = IdentityKind::from_name(name)
        .ok_or_else(|| uri_err(format!("unsupported EPC scheme {name:?}")))?;
    parse_body(kind, body)
}

/// Parses `urn:epc:tag:<scheme>:<filter>.<body>` (`gid-96` has no filter; it is returned as 0).
pub(crate) fn parse_tag(uri: &str) -> Result<(Scheme, u8, Identity), EpcError> {
    let rest = uri
        .strip_prefix("urn:epc:tag:")
        .ok_or_else(|| uri_err("a tag URI starts with urn:epc:tag:"))?;
    let (name, body) = rest
        .split_once(':')
        .ok_or_else(|| uri_err("missing ':' after the tag encoding scheme"))?;
    let scheme = Scheme::from_name(name)
        .ok_or_else(|| uri_err(format!("unsupported tag encoding scheme {name:?}")))?;
    let (filter, body) = if scheme.has_filter() {
        let (f, body) = body
            .split_once('.')
            .ok_or_else(|| uri_err("missing filter value"))?;
        let filter = match f.as_bytes() {
            [d @ b'0'..=b'7'] => d - b'0',
            _ => return Err(uri_err(format!("filter value {f:?} is not a digit 0-7"))),
        };
        (filter, body)
    } else {
        (0, body)
    };
    let id = parse_body(scheme.kind(), body).map_err(|e| e.in_scheme(scheme))?;
    Ok((scheme, filter, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pure_round_trip() {
        // Pure identity URIs from TDS §6.3 and nedap/retail-epcpy tests/epc_schemes (valid_data).
        let cases = [
            "urn:epc:id:sgtin:0614141.812345.6789",
            "urn:epc:id:sgtin:50712192365.88..%25:.13%26",
            "urn:epc:id:sgtin:00000000000.00.0",
            "urn:epc:id:sscc:0614141.1234567890",
            "urn:epc:id:sscc:061414123456.00000",
            "urn:epc:id:sgln:0614141.12345.400",
            "urn:epc:id:sgln:061411123456..A%2F-BCDEFGHIJKLMNOPQR",
            "urn:epc:id:grai:0614141.12345.400",
            "urn:epc:id:grai:061414113245..01",
            "urn:epc:id:giai:0614141.12345400",
            "urn:epc:id:giai:012345.012345678901234567890123",
            "urn:epc:id:gid:95100000.12345.400",
            "urn:epc:id:gid:268435455.16777215.68719476735",
        ];
        for uri in cases {
            let id = parse_pure(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(id.pure_identity_uri(), uri);
        }
    }

    #[test]
    fn pure_errors() {
        // (URI, message): most from nedap/retail-epcpy tests/epc_schemes (invalid_data).
        let cases: &[(&str, &str)] = &[
            (
                "urn:epc:id:sg:0614141.812345.1",
                "not an EPC URI: unsupported EPC scheme \"sg\"",
            ),
            (
                "urn:epcid:sgtin:00000000000.00.0",
                "not an EPC URI: a pure identity URI starts with urn:epc:id:",
            ),
            (
                "urn:epc:id:sgtin:000000000000.00.0",
                "item reference must have 1 digit, found 2",
            ),
            (
                "urn:epc:id:sgtin:00000000000.00.123456789012345678901",
                "serial has 21 characters, at most 20 fit",
            ),
            (
                "urn:epc:id:sgtin:50712192365.88..%23:.13%26",
                "serial: %23 is not a valid %-escape",
            ),
            (
                "urn:epc:id:sscc:06141.112345678901",
                "company prefix must have 6 to 12 digits, found 5",
            ),
            ("urn:epc:id:sgln:0614141.12345.", "extension is empty"),
            (
                "urn:epc:id:sgln:0614141.12345",
                "not an EPC URI: sgln needs 3 dot-separated components, found 2",
            ),
            (
                "urn:epc:id:grai:0614141.12345.ABCDEFGHIJKLMNOPQ",
                "serial has 17 characters, at most 16 fit",
            ),
            (
                "urn:epc:id:giai:012345.0123456789012345678901234",
                "individual asset reference has 25 characters, at most 24 fit",
            ),
            (
                "urn:epc:id:gid:95100000.12345.01",
                "serial \"01\" has leading zeros, which an integer field cannot keep",
            ),
            ("urn:epc:id:gid:95100000..10", "object class is empty"),
            (
                "urn:epc:id:gid:268435456.16777215.68719476735",
                "general manager number 268435456 does not fit in 28 bits",
            ),
            (
                "urn:epc:id:gid:1.1.99999999999999999999",
                "serial 99999999999999999999 does not fit in 64 bits",
            ),
        ];
        for &(uri, want) in cases {
            let got = parse_pure(uri).map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_string()), "{uri}");
        }
    }

    #[test]
    fn tag_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "urn:epc:tag:sgtin-97:3.0614141.812345.6789",
                "not an EPC URI: unsupported tag encoding scheme \"sgtin-97\"",
            ),
            (
                "urn:epc:tag:sgtin-96:8.0614141.812345.6789",
                "not an EPC URI: filter value \"8\" is not a digit 0-7",
            ),
            (
                "urn:epc:tag:sgtin-96:30614141",
                "not an EPC URI: missing filter value",
            ),
            (
                "urn:epc:tag:sgtin-96:3.0614141",
                "sgtin-96: not an EPC URI: sgtin needs 3 dot-separated components, found 1",
            ),
            (
                "urn:epc:tag:sgtin-96",
                "not an EPC URI: missing ':' after the tag encoding scheme",
            ),
            (
                "urn:epc:id:sgtin:0614141.812345.6789",
                "not an EPC URI: a tag URI starts with urn:epc:tag:",
            ),
        ];
        for &(uri, want) in cases {
            let got = parse_tag(uri).map(drop).map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_string()), "{uri}");
        }
    }
}
