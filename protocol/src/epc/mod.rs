//! The EPC Tag Data Standard (GS1 TDS 1.x/2.x): binary EPCs to and from URIs and GS1 element strings.
//!
//! Ten binary schemes are read and written: SGTIN-96/-198, SSCC-96, SGLN-96/-195, GRAI-96/-170, GIAI-96/-202 and
//! GID-96. Three representations of one tag:
//!
//! ```text
//! binary (EPC bank after the PC word)  30 74 25 7B F7 19 4E 40 00 00 1A 85
//! tag URI (scheme + filter + identity) urn:epc:tag:sgtin-96:3.0614141.812345.6789
//! pure identity URI (what it names)    urn:epc:id:sgtin:0614141.812345.6789
//! GS1 element string                   (01)80614141123458(21)6789
//! ```
//!
//! - [`decode`] / [`decode_hex`]: bits to an [`Epc`]. A header that is not one of the ten is not an error: the EPC is
//!   kept as raw hex with scheme `unknown` and a message (factory EPCs copied from the TID start `E2`). An invalid
//!   encoding of one of the ten (too short, partition 7, a field out of its decimal range, non-zero reserved or
//!   padding bits, a bad 7-bit string) is an [`EpcError`].
//! - [`encode`] / [`encode_tag_uri`] / [`Epc::new`]: an [`Identity`] and a [`Scheme`] to bits, zero-padded to whole
//!   16-bit words as a Gen2 EPC bank holds them.
//! - [`parse_pure_identity_uri`]: a pure identity URI to an [`Identity`].
//!
//! Decoding is strict and canonical: every bit string [`decode`] accepts is the exact encoding of its tag URI, so
//! decode → tag URI → encode gives back the same bits (the fuzz target `epc` checks this).

mod binary;
mod bits;
mod escape;
mod identity;
mod partition;
mod scheme;
mod uri;

#[cfg(test)]
mod tests;

pub use identity::{Giai, Gid, Grai, Identity, Sgln, Sgtin, Sscc};
pub use scheme::{IdentityKind, Scheme};

use crate::gs1::Element;
use serde_json::{json, Map, Value};
use std::fmt;

/// The EPC component an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The 3-bit filter value.
    Filter,
    /// The GS1 Company Prefix.
    CompanyPrefix,
    /// SGTIN: indicator digit and item reference.
    ItemReference,
    /// SSCC: extension digit and serial reference.
    SerialReference,
    /// SGLN: location reference.
    LocationReference,
    /// SGLN: GLN extension component.
    Extension,
    /// GRAI: asset type.
    AssetType,
    /// GIAI: individual asset reference.
    AssetReference,
    /// SGTIN, GRAI or GID serial.
    Serial,
    /// GID: general manager number.
    GeneralManager,
    /// GID: object class.
    ObjectClass,
    /// Bits the scheme reserves.
    Reserved,
    /// A whole GTIN given to a constructor.
    Gtin,
    /// A whole SSCC given to a constructor.
    Sscc,
}

impl Field {
    /// The name used in messages, e.g. `company prefix`.
    pub fn name(self) -> &'static str {
        match self {
            Field::Filter => "filter",
            Field::CompanyPrefix => "company prefix",
            Field::ItemReference => "item reference",
            Field::SerialReference => "serial reference",
            Field::LocationReference => "location reference",
            Field::Extension => "extension",
            Field::AssetType => "asset type",
            Field::AssetReference => "individual asset reference",
            Field::Serial => "serial",
            Field::GeneralManager => "general manager number",
            Field::ObjectClass => "object class",
            Field::Reserved => "reserved bits",
            Field::Gtin => "GTIN",
            Field::Sscc => "SSCC",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn digits_word(n: &str) -> &'static str {
    if n == "1" {
        "digit"
    } else {
        "digits"
    }
}

/// What is wrong with an EPC, an EPC URI or an identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EpcErrorKind {
    /// No bytes at all.
    #[error("empty EPC")]
    Empty,
    /// A character that is not a hex digit in a hex EPC.
    #[error("not a hex digit at position {position}: {found:?}")]
    Hex {
        /// Byte offset in the text.
        position: usize,
        /// The character.
        found: char,
    },
    /// An odd number of hex digits.
    #[error("odd number of hex digits ({digits}): an EPC is whole bytes")]
    OddHex {
        /// How many there were.
        digits: usize,
    },
    /// Fewer bits than the header's scheme needs.
    #[error("too short: {got} bits, the scheme needs {needed}")]
    TooShort {
        /// The scheme's length in bits.
        needed: usize,
        /// The bits given.
        got: usize,
    },
    /// Bits set after the scheme's length (padding up to the EPC bank's size must be zero).
    #[error("non-zero bits after the {bits}-bit EPC")]
    TrailingBits {
        /// The scheme's length in bits.
        bits: usize,
    },
    /// Partition value 7.
    #[error("partition value {value} is invalid (valid: 0 to 6)")]
    Partition {
        /// The partition value.
        value: u8,
    },
    /// A decimal field whose bits hold a value with more digits than the partition allows.
    #[error("{field} {value} does not fit in {digits} digits")]
    DecimalRange {
        /// The field.
        field: Field,
        /// The value in the bits.
        value: u64,
        /// The digits the partition gives the field.
        digits: usize,
    },
    /// Reserved bits (SSCC-96) that are not zero.
    #[error("the {bits} reserved bits are not all zero")]
    ReservedBits {
        /// How many reserved bits the scheme has.
        bits: u32,
    },
    /// An alphanumeric component with no characters.
    #[error("{field} is empty")]
    EmptyString {
        /// The field.
        field: Field,
    },
    /// An alphanumeric component longer than the scheme allows.
    #[error("{field} has {len} characters, at most {max} fit")]
    StringTooLong {
        /// The field.
        field: Field,
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A character outside GS1 character set 82.
    #[error("{field}: character {found} at position {position} is not in GS1 character set 82")]
    BadChar {
        /// The field.
        field: Field,
        /// The character, quoted.
        found: String,
        /// Its position in the component.
        position: usize,
    },
    /// A 7-bit string with bits set after its terminating zero character.
    #[error("{field}: non-zero bits after the terminating zero character")]
    StringPadding {
        /// The field.
        field: Field,
    },
    /// A character that a URI must write as `%XX`.
    #[error("{field}: character {found:?} must be %-escaped in an EPC URI")]
    MustEscape {
        /// The field.
        field: Field,
        /// The character.
        found: char,
    },
    /// A `%` not followed by two hex digits naming a CS82 character.
    #[error("{field}: {found} is not a valid %-escape")]
    BadEscape {
        /// The field.
        field: Field,
        /// The text from the `%`.
        found: String,
    },
    /// A decimal component with other characters.
    #[error("{field} {value:?} must be all digits")]
    NotDigits {
        /// The field.
        field: Field,
        /// The value.
        value: String,
    },
    /// A decimal component of the wrong length.
    #[error("{field} must have {expected} {}, found {found}", digits_word(.expected))]
    DigitCount {
        /// The field.
        field: Field,
        /// The expected count, e.g. `6 to 12`.
        expected: String,
        /// The count found.
        found: usize,
    },
    /// An integer too large for its bits.
    #[error("{field} {value} does not fit in {bits} bits")]
    TooLarge {
        /// The field.
        field: Field,
        /// The value, as given.
        value: String,
        /// The field's width.
        bits: u32,
    },
    /// An integer field with leading zeros, which its binary form cannot keep.
    #[error("{field} {value:?} has leading zeros, which an integer field cannot keep")]
    LeadingZeros {
        /// The field.
        field: Field,
        /// The value.
        value: String,
    },
    /// An alphanumeric value for an integer field (e.g. an SGTIN-96 serial).
    #[error("{field} {value:?} is not a number, which a numeric-serial scheme needs")]
    NotNumeric {
        /// The field.
        field: Field,
        /// The value.
        value: String,
    },
    /// A filter value above 7.
    #[error("filter value {value} is out of range (0 to 7)")]
    Filter {
        /// The value.
        value: u8,
    },
    /// An identity given to a scheme of another kind.
    #[error("cannot encode an identity of kind {identity}")]
    SchemeMismatch {
        /// The identity's kind.
        identity: IdentityKind,
    },
    /// A GS1 key with a wrong check digit.
    #[error("{field} check digit should be {expected}, found {found}")]
    CheckDigit {
        /// The key.
        field: Field,
        /// The correct check digit.
        expected: u8,
        /// The one given.
        found: u8,
    },
    /// Text that is not an EPC URI of a supported scheme.
    #[error("not an EPC URI: {reason}")]
    Uri {
        /// What is wrong.
        reason: String,
    },
}

impl EpcErrorKind {
    /// A short stable name for the broken rule, for JSON and metrics.
    pub fn rule(&self) -> &'static str {
        match self {
            EpcErrorKind::Empty | EpcErrorKind::TooShort { .. } => "length",
            EpcErrorKind::Hex { .. } | EpcErrorKind::OddHex { .. } => "hex",
            EpcErrorKind::TrailingBits { .. } => "trailing-bits",
            EpcErrorKind::Partition { .. } => "partition",
            EpcErrorKind::DecimalRange { .. } | EpcErrorKind::TooLarge { .. } => "range",
            EpcErrorKind::ReservedBits { .. } => "reserved-bits",
            EpcErrorKind::EmptyString { .. }
            | EpcErrorKind::StringTooLong { .. }
            | EpcErrorKind::BadChar { .. }
            | EpcErrorKind::StringPadding { .. } => "string",
            EpcErrorKind::MustEscape { .. } | EpcErrorKind::BadEscape { .. } => "uri-escape",
            EpcErrorKind::NotDigits { .. } | EpcErrorKind::DigitCount { .. } => "digits",
            EpcErrorKind::LeadingZeros { .. } | EpcErrorKind::NotNumeric { .. } => "integer",
            EpcErrorKind::Filter { .. } => "filter",
            EpcErrorKind::SchemeMismatch { .. } => "scheme",
            EpcErrorKind::CheckDigit { .. } => "check-digit",
            EpcErrorKind::Uri { .. } => "uri",
        }
    }

    /// The component at fault, if the error concerns one.
    pub fn field(&self) -> Option<Field> {
        match self {
            EpcErrorKind::DecimalRange { field, .. }
            | EpcErrorKind::EmptyString { field }
            | EpcErrorKind::StringTooLong { field, .. }
            | EpcErrorKind::BadChar { field, .. }
            | EpcErrorKind::StringPadding { field }
            | EpcErrorKind::MustEscape { field, .. }
            | EpcErrorKind::BadEscape { field, .. }
            | EpcErrorKind::NotDigits { field, .. }
            | EpcErrorKind::DigitCount { field, .. }
            | EpcErrorKind::TooLarge { field, .. }
            | EpcErrorKind::LeadingZeros { field, .. }
            | EpcErrorKind::NotNumeric { field, .. }
            | EpcErrorKind::CheckDigit { field, .. } => Some(*field),
            EpcErrorKind::ReservedBits { .. } => Some(Field::Reserved),
            EpcErrorKind::Filter { .. } => Some(Field::Filter),
            _ => None,
        }
    }
}

/// An EPC error: what is wrong and, where known, the scheme being decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpcError {
    kind: EpcErrorKind,
    scheme: Option<Scheme>,
}

impl EpcError {
    pub(crate) fn new(kind: EpcErrorKind) -> Self {
        EpcError { kind, scheme: None }
    }

    /// Adds the scheme, unless one is already known.
    pub(crate) fn in_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme.get_or_insert(scheme);
        self
    }

    /// What is wrong.
    pub fn kind(&self) -> &EpcErrorKind {
        &self.kind
    }

    /// The scheme being decoded or encoded, if known.
    pub fn scheme(&self) -> Option<Scheme> {
        self.scheme
    }

    /// `{"error":{"message", "rule", "scheme"?, "field"?}}`, the shape `dockhand-agent decode --json` prints.
    pub fn to_json(&self) -> Value {
        let mut err = Map::new();
        err.insert("message".into(), json!(self.to_string()));
        err.insert("rule".into(), json!(self.kind.rule()));
        if let Some(s) = self.scheme {
            err.insert("scheme".into(), json!(s.name()));
        }
        if let Some(f) = self.kind.field() {
            err.insert("field".into(), json!(f.name()));
        }
        json!({ "error": err })
    }
}

impl fmt::Display for EpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.scheme {
            write!(f, "{s}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for EpcError {}

/// A decoded (or built) EPC: one of our ten schemes, or raw bits we pass through.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Epc {
    repr: Repr,
    /// The canonical bits: the scheme's encoding padded to 16-bit words, or the raw input for an unknown EPC.
    bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Repr {
    Gs1 {
        scheme: Scheme,
        filter: u8,
        identity: Identity,
    },
    Unknown,
}

/// Decodes the EPC bank contents after the PC word. Zero bits after the scheme's length are allowed (readers report
/// whole words, or the whole bank); anything else after it is an error.
pub fn decode(epc: &[u8]) -> Result<Epc, EpcError> {
    let Some(&header) = epc.first() else {
        return Err(EpcError::new(EpcErrorKind::Empty));
    };
    let Some(scheme) = Scheme::from_header(header) else {
        return Ok(Epc {
            repr: Repr::Unknown,
            bytes: epc.to_vec(),
        });
    };
    let (filter, identity) = binary::decode(scheme, epc)?;
    let words = scheme.bits().div_ceil(16) * 2;
    let mut bytes = epc[..words.min(epc.len())].to_vec();
    bytes.resize(words, 0);
    Ok(Epc {
        repr: Repr::Gs1 {
            scheme,
            filter,
            identity,
        },
        bytes,
    })
}

/// Decodes an EPC written in hex (either case; spaces and a leading `0x` are ignored).
pub fn decode_hex(hex: &str) -> Result<Epc, EpcError> {
    decode(&parse_hex(hex)?)
}

fn parse_hex(hex: &str) -> Result<Vec<u8>, EpcError> {
    let t = hex.trim();
    let (skip, t) = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(rest) => (2, rest),
        None => (0, t),
    };
    let offset = hex.len() - hex.trim_start().len() + skip;
    let mut nibbles = Vec::with_capacity(t.len());
    for (i, ch) in t.char_indices() {
        if ch == ' ' {
            continue;
        }
        let Some(v) = ch.to_digit(16) else {
            return Err(EpcError::new(EpcErrorKind::Hex {
                position: offset + i,
                found: ch,
            }));
        };
        // A hex digit is below 16.
        nibbles.push(v as u8);
    }
    if !nibbles.len().is_multiple_of(2) {
        return Err(EpcError::new(EpcErrorKind::OddHex {
            digits: nibbles.len(),
        }));
    }
    Ok(nibbles.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

/// Encodes `id` with `scheme` and `filter` (0-7; ignored by GID-96, which has none), zero-padded to whole 16-bit
/// words.
pub fn encode(id: &Identity, scheme: Scheme, filter: u8) -> Result<Vec<u8>, EpcError> {
    binary::encode(id, scheme, filter)
}

/// Encodes a tag URI such as `urn:epc:tag:sgtin-96:3.0614141.812345.6789`.
pub fn encode_tag_uri(uri: &str) -> Result<Vec<u8>, EpcError> {
    Ok(Epc::from_tag_uri(uri)?.bytes)
}

/// Parses a pure identity URI such as `urn:epc:id:sgtin:0614141.812345.6789`.
pub fn parse_pure_identity_uri(uri: &str) -> Result<Identity, EpcError> {
    uri::parse_pure(uri)
}

fn lower_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Epc {
    /// Builds the EPC of `identity` in `scheme` with `filter` (ignored by GID-96).
    pub fn new(identity: Identity, scheme: Scheme, filter: u8) -> Result<Epc, EpcError> {
        let bytes = binary::encode(&identity, scheme, filter)?;
        let filter = if scheme.has_filter() { filter } else { 0 };
        Ok(Epc {
            repr: Repr::Gs1 {
                scheme,
                filter,
                identity,
            },
            bytes,
        })
    }

    /// Parses and encodes a tag URI.
    pub fn from_tag_uri(uri: &str) -> Result<Epc, EpcError> {
        let (scheme, filter, identity) = uri::parse_tag(uri)?;
        Epc::new(identity, scheme, filter)
    }

    /// An SGTIN-96 tag from URI components: company prefix, indicator digit + item reference, numeric serial.
    pub fn sgtin96(
        company_prefix: &str,
        item_ref: &str,
        serial: u64,
        filter: u8,
    ) -> Result<Epc, EpcError> {
        let id = Sgtin::new(company_prefix, item_ref, &serial.to_string())
            .map_err(|e| e.in_scheme(Scheme::Sgtin96))?;
        Epc::new(Identity::Sgtin(id), Scheme::Sgtin96, filter)
    }

    /// An SGTIN-96 tag from a GTIN-14, the length of its company prefix and a numeric serial.
    pub fn sgtin96_from_gtin(
        gtin: &str,
        company_prefix_len: usize,
        serial: u64,
        filter: u8,
    ) -> Result<Epc, EpcError> {
        let id = Sgtin::from_gtin(gtin, company_prefix_len, &serial.to_string())
            .map_err(|e| e.in_scheme(Scheme::Sgtin96))?;
        Epc::new(Identity::Sgtin(id), Scheme::Sgtin96, filter)
    }

    /// An SSCC-96 tag from URI components: company prefix, extension digit + serial reference.
    pub fn sscc96(company_prefix: &str, serial_ref: &str, filter: u8) -> Result<Epc, EpcError> {
        let id = Sscc::new(company_prefix, serial_ref).map_err(|e| e.in_scheme(Scheme::Sscc96))?;
        Epc::new(Identity::Sscc(id), Scheme::Sscc96, filter)
    }

    /// An SSCC-96 tag from an 18-digit SSCC and the length of its company prefix.
    pub fn sscc96_from_sscc(
        sscc: &str,
        company_prefix_len: usize,
        filter: u8,
    ) -> Result<Epc, EpcError> {
        let id =
            Sscc::from_sscc(sscc, company_prefix_len).map_err(|e| e.in_scheme(Scheme::Sscc96))?;
        Epc::new(Identity::Sscc(id), Scheme::Sscc96, filter)
    }

    /// The scheme name: `sgtin-96` etc., or `unknown` for anything else.
    pub fn scheme(&self) -> &'static str {
        self.gs1_scheme().map_or("unknown", Scheme::name)
    }

    /// The scheme, if it is one of ours.
    pub fn gs1_scheme(&self) -> Option<Scheme> {
        match &self.repr {
            Repr::Gs1 { scheme, .. } => Some(*scheme),
            Repr::Unknown => None,
        }
    }

    /// The pure identity, for one of our schemes.
    pub fn identity(&self) -> Option<&Identity> {
        match &self.repr {
            Repr::Gs1 { identity, .. } => Some(identity),
            Repr::Unknown => None,
        }
    }

    /// The filter value; none for GID-96 and unknown EPCs.
    pub fn filter(&self) -> Option<u8> {
        match &self.repr {
            Repr::Gs1 { scheme, filter, .. } if scheme.has_filter() => Some(*filter),
            _ => None,
        }
    }

    /// The canonical bytes: the scheme's encoding padded to 16-bit words, or the raw bytes of an unknown EPC.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// [`Epc::as_bytes`] in lower-case hex.
    pub fn hex(&self) -> String {
        lower_hex(&self.bytes)
    }

    /// The length in bits: the scheme's, or all the bits of an unknown EPC.
    pub fn bit_len(&self) -> usize {
        self.gs1_scheme().map_or(self.bytes.len() * 8, Scheme::bits)
    }

    /// The TDS raw URI, `urn:epc:raw:<bits>.x<HEX>` (TDS §12.4).
    pub fn raw_uri(&self) -> String {
        let hex: String = self.bytes.iter().map(|b| format!("{b:02X}")).collect();
        format!("urn:epc:raw:{}.x{hex}", self.bytes.len() * 8)
    }

    /// The pure identity URI; the raw URI for an unknown EPC.
    pub fn pure_identity_uri(&self) -> String {
        match &self.repr {
            Repr::Gs1 { identity, .. } => identity.pure_identity_uri(),
            Repr::Unknown => self.raw_uri(),
        }
    }

    /// The tag URI, e.g. `urn:epc:tag:sgtin-96:3.0614141.812345.6789`; the raw URI for an unknown EPC.
    pub fn tag_uri(&self) -> String {
        match &self.repr {
            Repr::Gs1 {
                scheme,
                filter,
                identity,
            } => {
                let body = uri::body(identity);
                if scheme.has_filter() {
                    format!("urn:epc:tag:{scheme}:{filter}.{body}")
                } else {
                    format!("urn:epc:tag:{scheme}:{body}")
                }
            }
            Repr::Unknown => self.raw_uri(),
        }
    }

    /// The GS1 elements (none for GID-96 and unknown EPCs).
    pub fn elements(&self) -> Vec<Element> {
        self.identity().map(Identity::elements).unwrap_or_default()
    }

    /// The bracketed GS1 element string, e.g. `(01)80614141123458(21)6789`.
    pub fn hri(&self) -> Option<String> {
        self.identity().and_then(Identity::hri)
    }

    /// The 14-digit GTIN of an SGTIN.
    pub fn gtin(&self) -> Option<String> {
        match self.identity()? {
            Identity::Sgtin(x) => Some(x.gtin()),
            _ => None,
        }
    }

    /// The 18-digit SSCC of an SSCC.
    pub fn sscc(&self) -> Option<String> {
        match self.identity()? {
            Identity::Sscc(x) => Some(x.sscc()),
            _ => None,
        }
    }

    /// The 13-digit GLN of an SGLN.
    pub fn gln(&self) -> Option<String> {
        match self.identity()? {
            Identity::Sgln(x) => Some(x.gln()),
            _ => None,
        }
    }

    /// The serial of an SGTIN, a GRAI or a GID.
    pub fn serial(&self) -> Option<String> {
        match self.identity()? {
            Identity::Sgtin(x) => Some(x.serial().to_owned()),
            Identity::Grai(x) => Some(x.serial().to_owned()),
            Identity::Gid(x) => Some(x.serial().to_string()),
            _ => None,
        }
    }

    /// For an unknown EPC, why it is not decoded: `not a GS1 EPC: header 0xe2`.
    pub fn message(&self) -> Option<String> {
        if !matches!(self.repr, Repr::Unknown) {
            return None;
        }
        let header = self.bytes.first().copied().unwrap_or(0);
        Some(match (header, scheme::other_scheme(header)) {
            (0x00, _) => "not a GS1 EPC: header 0x00 (unprogrammed tag)".to_owned(),
            (h, Some(name)) => format!(
                "GS1 EPC scheme {name} (header 0x{h:02x}) is not supported: kept as raw hex"
            ),
            (h, None) => format!("not a GS1 EPC: header 0x{h:02x}"),
        })
    }

    /// The fields with a value, in a fixed order: what `to_json` holds and `dockhand-agent decode --epc` prints.
    fn summary(&self) -> Vec<(&'static str, Value)> {
        let mut v: Vec<(&'static str, Value)> = vec![
            ("scheme", json!(self.scheme())),
            ("pure_identity_uri", json!(self.pure_identity_uri())),
            ("tag_uri", json!(self.tag_uri())),
            ("hri", json!(self.hri())),
            ("filter", json!(self.filter())),
            ("hex", json!(self.hex())),
            ("bits", json!(self.bit_len())),
        ];
        match self.identity() {
            None => v.push(("message", json!(self.message()))),
            Some(id) => {
                if let Some(cp) = id.company_prefix() {
                    v.push(("company_prefix", json!(cp)));
                }
                match id {
                    Identity::Sgtin(x) => {
                        v.push(("gtin", json!(x.gtin())));
                        v.push(("serial", json!(x.serial())));
                    }
                    Identity::Sscc(x) => v.push(("sscc", json!(x.sscc()))),
                    Identity::Sgln(x) => {
                        v.push(("gln", json!(x.gln())));
                        v.push(("extension", json!(x.extension())));
                    }
                    Identity::Grai(x) => v.push(("grai", json!(x.grai()))),
                    Identity::Giai(x) => v.push(("giai", json!(x.giai()))),
                    Identity::Gid(x) => {
                        v.push(("general_manager", json!(x.manager())));
                        v.push(("object_class", json!(x.class())));
                        v.push(("serial", json!(x.serial())));
                    }
                }
            }
        }
        v
    }

    /// The JSON `dockhand-agent decode --epc HEX --json` prints (DESIGN §8): `scheme`, `pure_identity_uri`,
    /// `tag_uri`, `hri`, `filter`, `hex`, `bits`, the GS1 key fields and `elements`; for an unknown EPC, the raw URI
    /// and a `message`.
    pub fn to_json(&self) -> Value {
        let mut m: Map<String, Value> = self
            .summary()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let elements: Vec<Value> = self
            .elements()
            .into_iter()
            .map(|e| json!({ "ai": e.ai, "value": e.value }))
            .collect();
        m.insert("elements".into(), Value::Array(elements));
        Value::Object(m)
    }

    /// One `name: value` line per field that has a value, in a fixed order.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.summary() {
            let text = match v {
                Value::Null => continue,
                Value::String(s) => s,
                other => other.to_string(),
            };
            out.push_str(&format!("{k}: {text}\n"));
        }
        out
    }
}
