//! Pure identities: what an EPC names, apart from how a tag encodes it (TDS §6).
//!
//! Every value here is valid as a pure identity URI: company prefixes of 6 to 12 digits, fixed-width decimal fields
//! that add up to the GS1 key's length, alphanumeric parts of 1 to N characters of GS1 character set 82 (held
//! unescaped). Whether a binary scheme can hold it (a numeric serial without leading zeros for SGTIN-96, say) is
//! checked when encoding.

use super::escape::check_cs82;
use super::{partition, EpcError, EpcErrorKind, Field, IdentityKind};
use crate::gs1::check::{gs1_check_digit, verify_check_digit};
use crate::gs1::Element;

/// A pure identity of one of the six kinds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A serialised trade item.
    Sgtin(Sgtin),
    /// A logistic unit.
    Sscc(Sscc),
    /// A location.
    Sgln(Sgln),
    /// A returnable asset.
    Grai(Grai),
    /// An individual asset.
    Giai(Giai),
    /// A General Identifier (not a GS1 key).
    Gid(Gid),
}

/// SGTIN: company prefix, indicator digit + item reference, serial (AI 01 + AI 21).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sgtin {
    company_prefix: String,
    item_ref: String,
    serial: String,
}

/// SSCC: company prefix, extension digit + serial reference (AI 00).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sscc {
    company_prefix: String,
    serial_ref: String,
}

/// SGLN: company prefix, location reference, extension (AI 414 + AI 254). Extension `0` means none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sgln {
    company_prefix: String,
    location_ref: String,
    extension: String,
}

/// GRAI: company prefix, asset type, serial (AI 8003).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grai {
    company_prefix: String,
    asset_type: String,
    serial: String,
}

/// GIAI: company prefix, individual asset reference (AI 8004).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Giai {
    company_prefix: String,
    asset_ref: String,
}

/// GID: general manager number (28 bits), object class (24 bits), serial (36 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gid {
    manager: u64,
    class: u64,
    serial: u64,
}

fn err(kind: EpcErrorKind) -> EpcError {
    EpcError::new(kind)
}

fn check_digits(field: Field, s: &str, len: usize) -> Result<(), EpcError> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(EpcErrorKind::NotDigits {
            field,
            value: s.to_owned(),
        }));
    }
    if s.len() != len {
        return Err(err(EpcErrorKind::DigitCount {
            field,
            expected: len.to_string(),
            found: s.len(),
        }));
    }
    Ok(())
}

fn check_prefix(cp: &str) -> Result<usize, EpcError> {
    let field = Field::CompanyPrefix;
    if !cp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(EpcErrorKind::NotDigits {
            field,
            value: cp.to_owned(),
        }));
    }
    if partition::for_prefix_digits(cp.len()).is_none() {
        return Err(err(EpcErrorKind::DigitCount {
            field,
            expected: "6 to 12".into(),
            found: cp.len(),
        }));
    }
    Ok(cp.len())
}

/// The GS1 key `body` followed by its check digit (`body` is all digits by construction).
fn with_check(body: String) -> String {
    let check = gs1_check_digit(&body).unwrap_or(0);
    let mut key = body;
    key.push(char::from(b'0' + check));
    key
}

/// Checks a GS1 key's check digit before it is split (for the `from_*` constructors).
fn check_key(field: Field, key: &str, len: usize) -> Result<(), EpcError> {
    check_digits(field, key, len)?;
    if !verify_check_digit(key) {
        let (body, last) = key.split_at(len - 1);
        return Err(err(EpcErrorKind::CheckDigit {
            field,
            expected: gs1_check_digit(body).unwrap_or(0),
            found: last.bytes().next().map_or(0, |b| b - b'0'),
        }));
    }
    Ok(())
}

impl Sgtin {
    /// An SGTIN from its URI components: company prefix (6-12 digits), indicator digit + item reference
    /// (13 - prefix digits), serial (1-20 characters of CS82, unescaped).
    pub fn new(company_prefix: &str, item_ref: &str, serial: &str) -> Result<Self, EpcError> {
        let l = check_prefix(company_prefix)?;
        check_digits(Field::ItemReference, item_ref, 13 - l)?;
        check_cs82(Field::Serial, serial, 20)?;
        Ok(Sgtin {
            company_prefix: company_prefix.to_owned(),
            item_ref: item_ref.to_owned(),
            serial: serial.to_owned(),
        })
    }

    /// An SGTIN from a GTIN-14 (check digit verified), the length of its company prefix and a serial.
    pub fn from_gtin(
        gtin: &str,
        company_prefix_len: usize,
        serial: &str,
    ) -> Result<Self, EpcError> {
        check_key(Field::Gtin, gtin, 14)?;
        let l = company_prefix_len.clamp(6, 12);
        if l != company_prefix_len {
            return Err(err(EpcErrorKind::DigitCount {
                field: Field::CompanyPrefix,
                expected: "6 to 12".into(),
                found: company_prefix_len,
            }));
        }
        let item_ref = format!("{}{}", &gtin[..1], &gtin[1 + l..13]);
        Sgtin::new(&gtin[1..1 + l], &item_ref, serial)
    }

    /// The GS1 Company Prefix.
    pub fn company_prefix(&self) -> &str {
        &self.company_prefix
    }

    /// The indicator digit followed by the item reference.
    pub fn item_ref(&self) -> &str {
        &self.item_ref
    }

    /// The serial (AI 21), unescaped.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The GTIN-14 with its check digit.
    pub fn gtin(&self) -> String {
        let (indicator, item) = self.item_ref.split_at(1.min(self.item_ref.len()));
        with_check(format!("{indicator}{}{item}", self.company_prefix))
    }
}

impl Sscc {
    /// An SSCC from its URI components: company prefix (6-12 digits), extension digit + serial reference
    /// (17 - prefix digits).
    pub fn new(company_prefix: &str, serial_ref: &str) -> Result<Self, EpcError> {
        let l = check_prefix(company_prefix)?;
        check_digits(Field::SerialReference, serial_ref, 17 - l)?;
        Ok(Sscc {
            company_prefix: company_prefix.to_owned(),
            serial_ref: serial_ref.to_owned(),
        })
    }

    /// An SSCC from its 18 digits (check digit verified) and the length of its company prefix.
    pub fn from_sscc(sscc: &str, company_prefix_len: usize) -> Result<Self, EpcError> {
        check_key(Field::Sscc, sscc, 18)?;
        let l = company_prefix_len.clamp(6, 12);
        if l != company_prefix_len {
            return Err(err(EpcErrorKind::DigitCount {
                field: Field::CompanyPrefix,
                expected: "6 to 12".into(),
                found: company_prefix_len,
            }));
        }
        let serial_ref = format!("{}{}", &sscc[..1], &sscc[1 + l..17]);
        Sscc::new(&sscc[1..1 + l], &serial_ref)
    }

    /// The GS1 Company Prefix.
    pub fn company_prefix(&self) -> &str {
        &self.company_prefix
    }

    /// The extension digit followed by the serial reference.
    pub fn serial_ref(&self) -> &str {
        &self.serial_ref
    }

    /// The 18-digit SSCC with its check digit.
    pub fn sscc(&self) -> String {
        let (ext, rest) = self.serial_ref.split_at(1.min(self.serial_ref.len()));
        with_check(format!("{ext}{}{rest}", self.company_prefix))
    }
}

impl Sgln {
    /// An SGLN from its URI components: company prefix (6-12 digits), location reference (12 - prefix digits,
    /// possibly none), extension (1-20 characters of CS82, unescaped; `0` for none).
    pub fn new(
        company_prefix: &str,
        location_ref: &str,
        extension: &str,
    ) -> Result<Self, EpcError> {
        let l = check_prefix(company_prefix)?;
        check_digits(Field::LocationReference, location_ref, 12 - l)?;
        check_cs82(Field::Extension, extension, 20)?;
        Ok(Sgln {
            company_prefix: company_prefix.to_owned(),
            location_ref: location_ref.to_owned(),
            extension: extension.to_owned(),
        })
    }

    /// The GS1 Company Prefix.
    pub fn company_prefix(&self) -> &str {
        &self.company_prefix
    }

    /// The location reference (empty for a 12-digit company prefix).
    pub fn location_ref(&self) -> &str {
        &self.location_ref
    }

    /// The GLN extension component, unescaped; `0` means no extension.
    pub fn extension(&self) -> &str {
        &self.extension
    }

    /// The 13-digit GLN with its check digit.
    pub fn gln(&self) -> String {
        with_check(format!("{}{}", self.company_prefix, self.location_ref))
    }
}

impl Grai {
    /// A GRAI from its URI components: company prefix (6-12 digits), asset type (12 - prefix digits, possibly
    /// none), serial (1-16 characters of CS82, unescaped).
    pub fn new(company_prefix: &str, asset_type: &str, serial: &str) -> Result<Self, EpcError> {
        let l = check_prefix(company_prefix)?;
        check_digits(Field::AssetType, asset_type, 12 - l)?;
        check_cs82(Field::Serial, serial, 16)?;
        Ok(Grai {
            company_prefix: company_prefix.to_owned(),
            asset_type: asset_type.to_owned(),
            serial: serial.to_owned(),
        })
    }

    /// The GS1 Company Prefix.
    pub fn company_prefix(&self) -> &str {
        &self.company_prefix
    }

    /// The asset type (empty for a 12-digit company prefix).
    pub fn asset_type(&self) -> &str {
        &self.asset_type
    }

    /// The serial, unescaped.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The value of AI 8003: `0`, the 13-digit GRAI with its check digit, the serial.
    pub fn grai(&self) -> String {
        let key = with_check(format!("{}{}", self.company_prefix, self.asset_type));
        format!("0{key}{}", self.serial)
    }
}

impl Giai {
    /// A GIAI from its URI components: company prefix (6-12 digits), individual asset reference (1 to
    /// 30 - prefix digits characters of CS82, unescaped).
    pub fn new(company_prefix: &str, asset_ref: &str) -> Result<Self, EpcError> {
        let l = check_prefix(company_prefix)?;
        check_cs82(Field::AssetReference, asset_ref, 30 - l)?;
        Ok(Giai {
            company_prefix: company_prefix.to_owned(),
            asset_ref: asset_ref.to_owned(),
        })
    }

    /// The GS1 Company Prefix.
    pub fn company_prefix(&self) -> &str {
        &self.company_prefix
    }

    /// The individual asset reference, unescaped.
    pub fn asset_ref(&self) -> &str {
        &self.asset_ref
    }

    /// The value of AI 8004.
    pub fn giai(&self) -> String {
        format!("{}{}", self.company_prefix, self.asset_ref)
    }
}

impl Gid {
    /// The largest general manager number (28 bits).
    pub const MAX_MANAGER: u64 = (1 << 28) - 1;
    /// The largest object class (24 bits).
    pub const MAX_CLASS: u64 = (1 << 24) - 1;
    /// The largest serial (36 bits).
    pub const MAX_SERIAL: u64 = (1 << 36) - 1;

    /// A GID from its three numbers.
    pub fn new(manager: u64, class: u64, serial: u64) -> Result<Self, EpcError> {
        for (field, value, bits) in [
            (Field::GeneralManager, manager, 28),
            (Field::ObjectClass, class, 24),
            (Field::Serial, serial, 36),
        ] {
            if value >> bits != 0 {
                return Err(err(EpcErrorKind::TooLarge {
                    field,
                    value: value.to_string(),
                    bits,
                }));
            }
        }
        Ok(Gid {
            manager,
            class,
            serial,
        })
    }

    /// The general manager number.
    pub fn manager(&self) -> u64 {
        self.manager
    }

    /// The object class.
    pub fn class(&self) -> u64 {
        self.class
    }

    /// The serial.
    pub fn serial(&self) -> u64 {
        self.serial
    }
}

impl Identity {
    /// Which kind of identity this is.
    pub fn kind(&self) -> IdentityKind {
        match self {
            Identity::Sgtin(_) => IdentityKind::Sgtin,
            Identity::Sscc(_) => IdentityKind::Sscc,
            Identity::Sgln(_) => IdentityKind::Sgln,
            Identity::Grai(_) => IdentityKind::Grai,
            Identity::Giai(_) => IdentityKind::Giai,
            Identity::Gid(_) => IdentityKind::Gid,
        }
    }

    /// The pure identity URI, e.g. `urn:epc:id:sgtin:0614141.812345.6789`.
    pub fn pure_identity_uri(&self) -> String {
        format!("urn:epc:id:{}:{}", self.kind(), super::uri::body(self))
    }

    /// The GS1 Company Prefix (none for a GID).
    pub fn company_prefix(&self) -> Option<&str> {
        match self {
            Identity::Sgtin(x) => Some(x.company_prefix()),
            Identity::Sscc(x) => Some(x.company_prefix()),
            Identity::Sgln(x) => Some(x.company_prefix()),
            Identity::Grai(x) => Some(x.company_prefix()),
            Identity::Giai(x) => Some(x.company_prefix()),
            Identity::Gid(_) => None,
        }
    }

    /// The GS1 elements this identity stands for, in element string order (empty for a GID). An SGLN extension of
    /// `0` is how TDS §7.4 writes a GLN without extension, so it gives no AI 254.
    pub fn elements(&self) -> Vec<Element> {
        match self {
            Identity::Sgtin(x) => {
                vec![Element::new("01", x.gtin()), Element::new("21", x.serial())]
            }
            Identity::Sscc(x) => vec![Element::new("00", x.sscc())],
            Identity::Sgln(x) => {
                let mut v = vec![Element::new("414", x.gln())];
                if x.extension() != "0" {
                    v.push(Element::new("254", x.extension()));
                }
                v
            }
            Identity::Grai(x) => vec![Element::new("8003", x.grai())],
            Identity::Giai(x) => vec![Element::new("8004", x.giai())],
            Identity::Gid(_) => Vec::new(),
        }
    }

    /// The bracketed GS1 element string, e.g. `(01)80614141123458(21)6789`; none for a GID.
    pub fn hri(&self) -> Option<String> {
        let els = self.elements();
        (!els.is_empty()).then(|| crate::gs1::to_hri(&els))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let s = Sgtin::new("0614141", "812345", "6789").unwrap();
        assert_eq!(s.gtin(), "80614141123458"); // TDS §7.1 example
        assert_eq!(Sgtin::from_gtin("80614141123458", 7, "6789"), Ok(s));
        let s = Sscc::new("0614141", "1234567890").unwrap();
        assert_eq!(s.sscc(), "106141412345678908"); // TDS §7.2 example
        assert_eq!(Sscc::from_sscc("106141412345678908", 7), Ok(s));
        assert_eq!(
            Sgln::new("0614141", "12345", "400").unwrap().gln(),
            "0614141123452"
        );
        assert_eq!(
            Grai::new("0614141", "12345", "400").unwrap().grai(),
            "00614141123452400"
        );
        assert_eq!(
            Giai::new("0614141", "12345400").unwrap().giai(),
            "061414112345400"
        );
    }

    #[test]
    fn invalid() {
        // (result, expected message)
        let cases: Vec<(Result<(), EpcError>, &str)> = vec![
            (
                Sgtin::new("06141", "8123456", "1").map(drop),
                "company prefix must have 6 to 12 digits, found 5",
            ),
            (
                Sgtin::new("0614141", "81234", "1").map(drop),
                "item reference must have 6 digits, found 5",
            ),
            (
                Sgtin::new("061414a", "812345", "1").map(drop),
                "company prefix \"061414a\" must be all digits",
            ),
            (
                Sgtin::new("0614141", "812345", "").map(drop),
                "serial is empty",
            ),
            (
                Sscc::new("0614141", "123456789").map(drop),
                "serial reference must have 10 digits, found 9",
            ),
            (
                Sgln::new("061414112345", "1", "0").map(drop),
                "location reference must have 0 digits, found 1",
            ),
            (
                Grai::new("0614141", "12345", "12345678901234567").map(drop),
                "serial has 17 characters, at most 16 fit",
            ),
            (
                Giai::new("012345678901", "0123456789012345678").map(drop),
                "individual asset reference has 19 characters, at most 18 fit",
            ),
            (
                Gid::new(1 << 28, 0, 0).map(drop),
                "general manager number 268435456 does not fit in 28 bits",
            ),
            (
                Sgtin::from_gtin("80614141123459", 7, "1").map(drop),
                "GTIN check digit should be 8, found 9",
            ),
            (
                Sgtin::from_gtin("80614141123458", 13, "1").map(drop),
                "company prefix must have 6 to 12 digits, found 13",
            ),
            (
                Sscc::from_sscc("10614141234567890", 7).map(drop),
                "SSCC must have 18 digits, found 17",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got.map_err(|e| e.to_string()), Err(want.to_string()));
        }
    }
}
