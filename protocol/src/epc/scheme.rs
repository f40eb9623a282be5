//! The binary coding schemes we read and write, and the names of the ones we only recognise.

use std::fmt;

/// The kind of identity a scheme carries: the part of the pure identity URI after `urn:epc:id:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    /// Serialised GTIN.
    Sgtin,
    /// Serial Shipping Container Code.
    Sscc,
    /// GLN with extension.
    Sgln,
    /// Global Returnable Asset Identifier.
    Grai,
    /// Global Individual Asset Identifier.
    Giai,
    /// General Identifier (not GS1).
    Gid,
}

impl IdentityKind {
    /// The URI name, e.g. `sgtin`.
    pub fn name(self) -> &'static str {
        match self {
            IdentityKind::Sgtin => "sgtin",
            IdentityKind::Sscc => "sscc",
            IdentityKind::Sgln => "sgln",
            IdentityKind::Grai => "grai",
            IdentityKind::Giai => "giai",
            IdentityKind::Gid => "gid",
        }
    }

    pub(crate) fn from_name(s: &str) -> Option<Self> {
        [
            IdentityKind::Sgtin,
            IdentityKind::Sscc,
            IdentityKind::Sgln,
            IdentityKind::Grai,
            IdentityKind::Giai,
            IdentityKind::Gid,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An EPC binary coding scheme (TDS §14.5), identified on the tag by its 8-bit header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sgtin-96`, header 0x30: numeric serial up to 2^38 - 1.
    Sgtin96,
    /// `sgtin-198`, header 0x36: alphanumeric serial up to 20 characters.
    Sgtin198,
    /// `sscc-96`, header 0x31.
    Sscc96,
    /// `sgln-96`, header 0x32: numeric extension up to 2^41 - 1.
    Sgln96,
    /// `sgln-195`, header 0x39: alphanumeric extension up to 20 characters.
    Sgln195,
    /// `grai-96`, header 0x33: numeric serial up to 2^38 - 1.
    Grai96,
    /// `grai-170`, header 0x37: alphanumeric serial up to 16 characters.
    Grai170,
    /// `giai-96`, header 0x34: numeric asset reference.
    Giai96,
    /// `giai-202`, header 0x38: alphanumeric asset reference.
    Giai202,
    /// `gid-96`, header 0x35: General Identifier, no filter.
    Gid96,
}

impl Scheme {
    /// Every scheme, in header order.
    pub const ALL: [Scheme; 10] = [
        Scheme::Sgtin96,
        Scheme::Sscc96,
        Scheme::Sgln96,
        Scheme::Grai96,
        Scheme::Giai96,
        Scheme::Gid96,
        Scheme::Sgtin198,
        Scheme::Grai170,
        Scheme::Giai202,
        Scheme::Sgln195,
    ];

    /// The 8-bit header (TDS Table 14-1).
    pub fn header(self) -> u8 {
        match self {
            Scheme::Sgtin96 => 0x30,
            Scheme::Sscc96 => 0x31,
            Scheme::Sgln96 => 0x32,
            Scheme::Grai96 => 0x33,
            Scheme::Giai96 => 0x34,
            Scheme::Gid96 => 0x35,
            Scheme::Sgtin198 => 0x36,
            Scheme::Grai170 => 0x37,
            Scheme::Giai202 => 0x38,
            Scheme::Sgln195 => 0x39,
        }
    }

    /// The encoding's length in bits, header included.
    pub fn bits(self) -> usize {
        match self {
            Scheme::Sgtin198 => 198,
            Scheme::Sgln195 => 195,
            Scheme::Grai170 => 170,
            Scheme::Giai202 => 202,
            _ => 96,
        }
    }

    /// The tag URI name, e.g. `sgtin-96`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Sgtin96 => "sgtin-96",
            Scheme::Sgtin198 => "sgtin-198",
            Scheme::Sscc96 => "sscc-96",
            Scheme::Sgln96 => "sgln-96",
            Scheme::Sgln195 => "sgln-195",
            Scheme::Grai96 => "grai-96",
            Scheme::Grai170 => "grai-170",
            Scheme::Giai96 => "giai-96",
            Scheme::Giai202 => "giai-202",
            Scheme::Gid96 => "gid-96",
        }
    }

    /// The identity this scheme encodes.
    pub fn kind(self) -> IdentityKind {
        match self {
            Scheme::Sgtin96 | Scheme::Sgtin198 => IdentityKind::Sgtin,
            Scheme::Sscc96 => IdentityKind::Sscc,
            Scheme::Sgln96 | Scheme::Sgln195 => IdentityKind::Sgln,
            Scheme::Grai96 | Scheme::Grai170 => IdentityKind::Grai,
            Scheme::Giai96 | Scheme::Giai202 => IdentityKind::Giai,
            Scheme::Gid96 => IdentityKind::Gid,
        }
    }

    /// Whether the scheme has a 3-bit filter value (all but GID-96).
    pub fn has_filter(self) -> bool {
        self != Scheme::Gid96
    }

    /// The scheme with this header, if it is one of ours.
    pub fn from_header(header: u8) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|s| s.header() == header)
    }

    /// The scheme with this tag URI name, e.g. `sgtin-96`.
    pub fn from_name(name: &str) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name of an EPC scheme we recognise but do not decode (TDS 2.x Table 14-1), for a helpful message.
pub(crate) fn other_scheme(header: u8) -> Option<&'static str> {
    Some(match header {
        0x2C => "gdti-96",
        0x2D => "gsrn-96",
        0x2E => "gsrnp-96",
        0x2F => "usdod-96",
        0x3A => "gdti-113",
        0x3B => "adi-var",
        0x3C => "cpi-96",
        0x3D => "cpi-var",
        0x3E => "gdti-174",
        0x3F => "sgcn-96",
        0x40 => "itip-110",
        0x41 => "itip-212",
        // TDS 2.x "+" schemes (GS1 Digital Link / element string based).
        0xF0 => "cpi+",
        0xF1 => "grai+",
        0xF2 => "sgln+",
        0xF3 => "itip+",
        0xF4 => "gsrn+",
        0xF5 => "gsrnp+",
        0xF6 => "gdti+",
        0xF7 => "sgtin+",
        0xF8 => "sgcn+",
        0xF9 => "sscc+",
        0xFA => "giai+",
        0xFB => "dsgtin+",
        // TDS 2.x "++" schemes (with a Digital Link hostname).
        0xE6 => "cpi++",
        0xE7 => "gsrn++",
        0xE8 => "gsrnp++",
        0xE9 => "sgln++",
        0xEA => "gdti++",
        0xEB => "grai++",
        0xEC => "sgcn++",
        0xED => "itip++",
        0xEE => "giai++",
        0xEF => "sscc++",
        0xFC => "dsgtin++",
        0xFD => "sgtin++",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_names() {
        // (scheme, header, bits, name): TDS Table 14-1 and §14.5.
        let cases = [
            (Scheme::Sgtin96, 0x30, 96, "sgtin-96"),
            (Scheme::Sscc96, 0x31, 96, "sscc-96"),
            (Scheme::Sgln96, 0x32, 96, "sgln-96"),
            (Scheme::Grai96, 0x33, 96, "grai-96"),
            (Scheme::Giai96, 0x34, 96, "giai-96"),
            (Scheme::Gid96, 0x35, 96, "gid-96"),
            (Scheme::Sgtin198, 0x36, 198, "sgtin-198"),
            (Scheme::Grai170, 0x37, 170, "grai-170"),
            (Scheme::Giai202, 0x38, 202, "giai-202"),
            (Scheme::Sgln195, 0x39, 195, "sgln-195"),
        ];
        for (s, header, bits, name) in cases {
            assert_eq!((s.header(), s.bits(), s.name()), (header, bits, name));
            assert_eq!(Scheme::from_header(header), Some(s));
            assert_eq!(Scheme::from_name(name), Some(s));
            assert!(other_scheme(header).is_none());
        }
        assert_eq!(Scheme::from_header(0xE2), None);
        assert_eq!(Scheme::from_name("SGTIN-96"), None);
    }
}
