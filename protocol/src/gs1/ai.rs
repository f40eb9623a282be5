//! The table of GS1 Application Identifiers: every AI of the GS1 Barcode Syntax Dictionary (release 2026-01-27).
//!
//! Each row mirrors one line of the dictionary (`AIs  Flags  Specification  Attributes  # Title`), so a new release
//! means editing rows, not code. The table is our own code; only the facts come from the dictionary. A test
//! cross-checks it against the dictionary file in both directions (every row there is here with the same components,
//! flags, associations and linters, and nothing here is missing there) whenever the file is present.
//!
//! Every linter the dictionary names is listed on its row, including those we do not enforce; which ones are
//! enforced, and why the others are not, is documented once, on [`Linter::is_enforced`].

/// The character set of one component of an AI's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Charset {
    /// Digits `0`-`9` (dictionary type `N`).
    Numeric,
    /// GS1 AI encodable character set 82 (dictionary type `X`).
    Cset82,
    /// GS1 AI encodable character set 39 (dictionary type `Y`).
    Cset39,
    /// base64url without padding (dictionary type `Z`).
    Base64Url,
}

/// CSET 82 in the order of GS1 General Specifications Figure 7.11-1; a character's index is its value in the
/// check character pair calculation (`csumalpha`).
pub const CSET82: &[u8; 82] =
    b"!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// Membership table for CSET 82: one load per byte instead of a search through 82 characters (decode hot path).
static CSET82_TABLE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < CSET82.len() {
        t[CSET82[i] as usize] = true;
        i += 1;
    }
    t
};

impl Charset {
    /// True when `b` belongs to this character set.
    pub fn allows(self, b: u8) -> bool {
        match self {
            Charset::Numeric => b.is_ascii_digit(),
            Charset::Cset82 => CSET82_TABLE[usize::from(b)],
            Charset::Cset39 => {
                b.is_ascii_digit() || b.is_ascii_uppercase() || matches!(b, b'#' | b'-' | b'/')
            }
            Charset::Base64Url => b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'),
        }
    }

    /// The dictionary's letter for this set.
    pub fn letter(self) -> char {
        match self {
            Charset::Numeric => 'N',
            Charset::Cset82 => 'X',
            Charset::Cset39 => 'Y',
            Charset::Base64Url => 'Z',
        }
    }
}

/// A content check applied to one component (the dictionary's "linters"), named as in the dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Linter {
    /// `csum`: the last digit is the GS1 mod-10 check digit of the others.
    Csum,
    /// `csumalpha`: the last two characters are the GS1 check character pair of the others.
    CsumAlpha,
    /// `gcppos1`: a GS1 Company Prefix starts at the first character.
    Gcppos1,
    /// `gcppos2`: a GS1 Company Prefix starts at the second character.
    Gcppos2,
    /// `yymmd0`: a date YYMMDD where DD may be `00` (the last day of the month).
    Yymmd0,
    /// `yymmdd`: a date YYMMDD with a real day.
    Yymmdd,
    /// `yyyymmdd`: a date with a four-digit year.
    Yyyymmdd,
    /// `hhmi`: a time of day HHMM.
    Hhmi,
    /// `hh`: hours 00-23.
    Hh,
    /// `mi`: minutes 00-59.
    Mi,
    /// `ss`: seconds 00-59.
    Ss,
    /// `iso3166`: an ISO 3166-1 numeric country code.
    Iso3166,
    /// `iso3166999`: an ISO 3166-1 numeric country code, or `999` (unknown).
    Iso3166999,
    /// `iso3166alpha2`: an ISO 3166-1 alpha-2 country code.
    Iso3166Alpha2,
    /// `iso4217`: an ISO 4217 numeric currency code.
    Iso4217,
    /// `iso5218`: an ISO/IEC 5218 sex code (0, 1, 2 or 9).
    Iso5218,
    /// `latitude`: ten digits, 0 to 1800000000 (degrees + 90, times 10^7).
    Latitude,
    /// `longitude`: ten digits, 0 to 3600000000 (degrees + 180, times 10^7).
    Longitude,
    /// `mediatype`: an AIDC media type code, 01-10 or 80-99.
    MediaType,
    /// `nonzero`: a number other than zero.
    NonZero,
    /// `nozeroprefix`: no leading zero unless the value is `0`.
    NoZeroPrefix,
    /// `packagetype`: a UN/ECE Recommendation 21 package type code.
    PackageType,
    /// `pcenc`: every `%` starts a valid percent-escape.
    Pcenc,
    /// `pieceoftotal`: NNTT, piece NN of TT pieces, `1 <= NN <= TT`.
    PieceOfTotal,
    /// `posinseqslash`: `N/M`, position N of M, `1 <= N <= M`.
    PosInSeqSlash,
    /// `winding`: winding direction 0, 1 or 9.
    Winding,
    /// `yesno`: 0 or 1.
    YesNo,
    /// `zero`: the digit `0`.
    Zero,
    /// `hyphen`: the character `-`.
    Hyphen,
    /// `iban`: an International Bank Account Number.
    Iban,
    /// `importeridx`: an importer index character (`0-9`, `A-Z`, `a-z`, `-`, `_`).
    ImporterIdx,
    /// `couponcode`: the North American coupon code structure.
    CouponCode,
    /// `couponposoffer`: the North American paperless coupon structure.
    CouponPosOffer,
    /// `hasnondigit`: at least one character that is not a digit.
    HasNonDigit,
}

impl Linter {
    /// Every linter, for the dictionary cross-check and the property tests.
    pub const ALL: &'static [Linter] = &[
        Linter::Csum,
        Linter::CsumAlpha,
        Linter::Gcppos1,
        Linter::Gcppos2,
        Linter::Yymmd0,
        Linter::Yymmdd,
        Linter::Yyyymmdd,
        Linter::Hhmi,
        Linter::Hh,
        Linter::Mi,
        Linter::Ss,
        Linter::Iso3166,
        Linter::Iso3166999,
        Linter::Iso3166Alpha2,
        Linter::Iso4217,
        Linter::Iso5218,
        Linter::Latitude,
        Linter::Longitude,
        Linter::MediaType,
        Linter::NonZero,
        Linter::NoZeroPrefix,
        Linter::PackageType,
        Linter::Pcenc,
        Linter::PieceOfTotal,
        Linter::PosInSeqSlash,
        Linter::Winding,
        Linter::YesNo,
        Linter::Zero,
        Linter::Hyphen,
        Linter::Iban,
        Linter::ImporterIdx,
        Linter::CouponCode,
        Linter::CouponPosOffer,
        Linter::HasNonDigit,
    ];

    /// The dictionary's name of this linter.
    pub fn name(self) -> &'static str {
        match self {
            Linter::Csum => "csum",
            Linter::CsumAlpha => "csumalpha",
            Linter::Gcppos1 => "gcppos1",
            Linter::Gcppos2 => "gcppos2",
            Linter::Yymmd0 => "yymmd0",
            Linter::Yymmdd => "yymmdd",
            Linter::Yyyymmdd => "yyyymmdd",
            Linter::Hhmi => "hhmi",
            Linter::Hh => "hh",
            Linter::Mi => "mi",
            Linter::Ss => "ss",
            Linter::Iso3166 => "iso3166",
            Linter::Iso3166999 => "iso3166999",
            Linter::Iso3166Alpha2 => "iso3166alpha2",
            Linter::Iso4217 => "iso4217",
            Linter::Iso5218 => "iso5218",
            Linter::Latitude => "latitude",
            Linter::Longitude => "longitude",
            Linter::MediaType => "mediatype",
            Linter::NonZero => "nonzero",
            Linter::NoZeroPrefix => "nozeroprefix",
            Linter::PackageType => "packagetype",
            Linter::Pcenc => "pcenc",
            Linter::PieceOfTotal => "pieceoftotal",
            Linter::PosInSeqSlash => "posinseqslash",
            Linter::Winding => "winding",
            Linter::YesNo => "yesno",
            Linter::Zero => "zero",
            Linter::Hyphen => "hyphen",
            Linter::Iban => "iban",
            Linter::ImporterIdx => "importeridx",
            Linter::CouponCode => "couponcode",
            Linter::CouponPosOffer => "couponposoffer",
            Linter::HasNonDigit => "hasnondigit",
        }
    }

    /// The linter named `name` in the dictionary.
    pub fn from_name(name: &str) -> Option<Linter> {
        Linter::ALL.iter().copied().find(|l| l.name() == name)
    }

    /// True when we check this linter; the others are carried on the AI rows but not enforced.
    ///
    /// Not enforced, and why:
    ///
    /// - `gcppos1`, `gcppos2`: need the GS1 Company Prefix allocation list, which changes daily and is not public in
    ///   bulk; the check digit already catches misreads.
    /// - `packagetype`: needs the UN/ECE Recommendation 21 code list (hundreds of codes) for AI 7041, which only
    ///   transport-unit labels in rail/road freight carry; a bad code cannot corrupt a stock movement.
    /// - `couponcode`, `couponposoffer`: the North American coupon structures (AI 8110/8112) are point-of-sale data,
    ///   never needed in a warehouse; validating them means implementing a separate coupon specification.
    pub fn is_enforced(self) -> bool {
        !matches!(
            self,
            Linter::Gcppos1
                | Linter::Gcppos2
                | Linter::PackageType
                | Linter::CouponCode
                | Linter::CouponPosOffer
        )
    }
}

/// One component of an AI's value: a run of characters of one set, fixed or variable in length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    /// Allowed characters.
    pub charset: Charset,
    /// Minimum length; equal to `max` for a fixed-length component. Variable components have a minimum of 1.
    pub min: u8,
    /// Maximum length.
    pub max: u8,
    /// `[...]` in the dictionary: may be omitted when the value ends before it.
    pub optional: bool,
    /// Content checks for this component, in the dictionary's order (enforced or not).
    pub linters: &'static [Linter],
}

impl Component {
    const fn new(charset: Charset, min: u8, max: u8) -> Self {
        Component {
            charset,
            min,
            max,
            optional: false,
            linters: &[],
        }
    }

    const fn lint(self, linters: &'static [Linter]) -> Self {
        Component { linters, ..self }
    }

    const fn opt(self) -> Self {
        Component {
            optional: true,
            ..self
        }
    }

    /// True for a fixed-length component.
    pub fn is_fixed(&self) -> bool {
        self.min == self.max
    }
}

/// The definition of one AI or of a family of AIs such as `3100`-`3105`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AiDef {
    /// First AI of the range (equal to `last` for a single AI).
    pub first: &'static str,
    /// Last AI of the range; same length as `first`.
    pub last: &'static str,
    /// The dictionary's data title, e.g. `GTIN` or `BATCH/LOT` (ours for the two untitled coupon AIs).
    pub title: &'static str,
    /// True unless the AI is in the predefined-length table (flag `*`), i.e. a FNC1 must follow the value
    /// when another element follows.
    pub fnc1_required: bool,
    /// Flag `?`: may appear as a GS1 Digital Link data attribute (query parameter).
    pub dl_attribute: bool,
    /// The value's components, in order.
    pub components: &'static [Component],
    /// `req=` attributes: each string is a comma-separated list of alternatives, each alternative a `+`-joined set
    /// of AIs or patterns (`n` matches any digit). Every listed attribute must be satisfied.
    pub req: &'static [&'static str],
    /// `ex=` attributes: AIs or patterns that must not appear together with this AI.
    pub ex: &'static [&'static str],
    /// `dlpkey`: `Some("")` for a Digital Link primary key without qualifiers, `Some("22,10,21")` with its ordered
    /// qualifiers (alternatives separated by `|`), `None` when not a primary key.
    pub dlpkey: Option<&'static str>,
}

impl AiDef {
    /// Builds a row from the dictionary's flag string (`*` and `?`).
    const fn new(
        first: &'static str,
        last: &'static str,
        flags: &'static str,
        components: &'static [Component],
        title: &'static str,
    ) -> Self {
        let f = flags.as_bytes();
        let mut predefined = false;
        let mut dl_attribute = false;
        let mut i = 0;
        while i < f.len() {
            match f[i] {
                b'*' => predefined = true,
                b'?' => dl_attribute = true,
                _ => {}
            }
            i += 1;
        }
        AiDef {
            first,
            last,
            title,
            fnc1_required: !predefined,
            dl_attribute,
            components,
            req: &[],
            ex: &[],
            dlpkey: None,
        }
    }

    const fn one(
        ai: &'static str,
        flags: &'static str,
        c: &'static [Component],
        title: &'static str,
    ) -> Self {
        AiDef::new(ai, ai, flags, c, title)
    }

    const fn req(self, req: &'static [&'static str]) -> Self {
        AiDef { req, ..self }
    }

    const fn ex(self, ex: &'static [&'static str]) -> Self {
        AiDef { ex, ..self }
    }

    const fn dlpkey(self, qualifiers: &'static str) -> Self {
        AiDef {
            dlpkey: Some(qualifiers),
            ..self
        }
    }

    /// True when `ai` (a string of digits) is defined by this row.
    pub fn matches(&self, ai: &str) -> bool {
        ai.len() == self.first.len()
            && ai.bytes().all(|b| b.is_ascii_digit())
            && self.first <= ai
            && ai <= self.last
    }

    /// Minimum total value length.
    pub fn min_len(&self) -> usize {
        self.components
            .iter()
            .filter(|c| !c.optional)
            .map(|c| usize::from(c.min))
            .sum()
    }

    /// Maximum total value length.
    pub fn max_len(&self) -> usize {
        self.components.iter().map(|c| usize::from(c.max)).sum()
    }

    /// True when the value always has the same length.
    pub fn is_fixed_len(&self) -> bool {
        self.components.iter().all(|c| c.is_fixed() && !c.optional)
    }

    /// True when every component is numeric (so lengths are reported in digits).
    pub fn is_numeric(&self) -> bool {
        self.components
            .iter()
            .all(|c| c.charset == Charset::Numeric)
    }

    /// The Digital Link qualifier sequences of a primary key: `[["22","10","21"],["235"]]` for AI 01, `[[]]` for a
    /// key without qualifiers, empty when the AI is no primary key.
    pub fn dl_qualifier_paths(&self) -> Vec<Vec<&'static str>> {
        match self.dlpkey {
            None => Vec::new(),
            Some("") => vec![Vec::new()],
            Some(q) => q.split('|').map(|alt| alt.split(',').collect()).collect(),
        }
    }

    /// For the decimal-point families (`310n`-`369n`, `390n`-`395n`): the implied number of decimal places, the
    /// AI's last digit.
    pub fn decimal_places(&self, ai: &str) -> Option<u8> {
        let prefix = self.first.get(..2)?;
        let family = matches!(prefix, "31" | "32" | "33" | "34" | "35" | "36")
            || matches!(
                self.first.get(..3)?,
                "390" | "391" | "392" | "393" | "394" | "395"
            );
        if self.first.len() == 4 && family {
            ai.as_bytes()
                .get(3)
                .filter(|b| b.is_ascii_digit())
                .map(|b| b - b'0')
        } else {
            None
        }
    }
}

use Charset::{Base64Url, Cset39, Cset82, Numeric};
use Linter::*;

/// `N<len>`.
const fn n(len: u8) -> Component {
    Component::new(Numeric, len, len)
}
/// `N..<max>`.
const fn nv(max: u8) -> Component {
    Component::new(Numeric, 1, max)
}
/// `X<len>`.
const fn x(len: u8) -> Component {
    Component::new(Cset82, len, len)
}
/// `X..<max>`.
const fn xv(max: u8) -> Component {
    Component::new(Cset82, 1, max)
}
/// `Y..<max>`.
const fn yv(max: u8) -> Component {
    Component::new(Cset39, 1, max)
}
/// `Z..<max>`.
const fn zv(max: u8) -> Component {
    Component::new(Base64Url, 1, max)
}

/// Every AI of the dictionary, in its lexical order (which [`lookup`] relies on for a binary search).
pub static AI_TABLE: &[AiDef] = &[
    AiDef::one("00", "*?", &[n(18).lint(&[Csum, Gcppos2])], "SSCC").dlpkey(""),
    AiDef::one("01", "*?", &[n(14).lint(&[Csum, Gcppos2])], "GTIN")
        .ex(&["255,37"])
        .dlpkey("22,10,21|235"),
    AiDef::one("02", "*?", &[n(14).lint(&[Csum, Gcppos2])], "CONTENT")
        .req(&["37"])
        .ex(&["01,03"]),
    AiDef::one("03", "*", &[n(14).lint(&[Csum, Gcppos2])], "MTO GTIN").ex(&["01,02,37"]),
    AiDef::one("10", "?", &[xv(20)], "BATCH/LOT").req(&["01,02,03,8006,8026"]),
    AiDef::one("11", "*?", &[n(6).lint(&[Yymmd0])], "PROD DATE").req(&["01,02,03,8006,8026"]),
    AiDef::one("12", "*?", &[n(6).lint(&[Yymmd0])], "DUE DATE").req(&["8020"]),
    AiDef::one("13", "*?", &[n(6).lint(&[Yymmd0])], "PACK DATE").req(&["01,02,03,8006,8026"]),
    AiDef::one(
        "15",
        "*?",
        &[n(6).lint(&[Yymmd0])],
        "BEST BEFORE or BEST BY",
    )
    .req(&["01,02,03,8006,8026"]),
    AiDef::one("16", "*?", &[n(6).lint(&[Yymmd0])], "SELL BY").req(&["01,02,03,8006,8026"]),
    AiDef::one("17", "*?", &[n(6).lint(&[Yymmd0])], "USE BY or EXPIRY")
        .req(&["01,02,03,255,8006,8026"]),
    AiDef::one("20", "*?", &[n(2)], "VARIANT").req(&["01,02,8006,8026"]),
    AiDef::one("21", "", &[xv(20)], "SERIAL")
        .req(&["01,03,8006"])
        .ex(&["235"]),
    AiDef::one("22", "", &[xv(20)], "CPV").req(&["01"]),
    AiDef::one("235", "", &[xv(28)], "TPX").req(&["01"]),
    AiDef::one("240", "?", &[xv(30)], "ADDITIONAL ID").req(&["01,02,8006,8026"]),
    AiDef::one("241", "?", &[xv(30)], "CUST. PART No.").req(&["01,02,8006,8026"]),
    AiDef::one("242", "?", &[nv(6)], "MTO VARIANT").req(&["01,02,8006,8026"]),
    AiDef::one("243", "?", &[xv(20)], "PCN").req(&["01"]),
    AiDef::one("250", "?", &[xv(30)], "SECONDARY SERIAL").req(&["01,8006", "21"]),
    AiDef::one("251", "?", &[xv(30)], "REF. TO SOURCE").req(&["01,8006"]),
    AiDef::one(
        "253",
        "?",
        &[n(13).lint(&[Csum, Gcppos1]), xv(17).opt()],
        "GDTI",
    )
    .dlpkey(""),
    AiDef::one("254", "", &[xv(20)], "GLN EXTENSION COMPONENT").req(&["414"]),
    AiDef::one(
        "255",
        "?",
        &[n(13).lint(&[Csum, Gcppos1]), nv(12).opt()],
        "GCN",
    )
    .ex(&["01,02,415,8006,8020,8026"])
    .dlpkey(""),
    AiDef::one("30", "?", &[nv(8)], "VAR. COUNT").req(&["01,02"]),
    AiDef::new("3100", "3105", "*?", &[n(6)], "NET WEIGHT (kg)")
        .req(&["01,02"])
        .ex(&["310n"]),
    AiDef::new("3110", "3115", "*?", &[n(6)], "LENGTH (m)")
        .req(&["01,02"])
        .ex(&["311n"]),
    AiDef::new("3120", "3125", "*?", &[n(6)], "WIDTH (m)")
        .req(&["01,02"])
        .ex(&["312n"]),
    AiDef::new("3130", "3135", "*?", &[n(6)], "HEIGHT (m)")
        .req(&["01,02"])
        .ex(&["313n"]),
    AiDef::new("3140", "3145", "*?", &[n(6)], "AREA (m²)")
        .req(&["01,02"])
        .ex(&["314n"]),
    AiDef::new("3150", "3155", "*?", &[n(6)], "NET VOLUME (l)")
        .req(&["01,02"])
        .ex(&["315n"]),
    AiDef::new("3160", "3165", "*?", &[n(6)], "NET VOLUME (m³)")
        .req(&["01,02"])
        .ex(&["316n"]),
    AiDef::new("3200", "3205", "*?", &[n(6)], "NET WEIGHT (lb)")
        .req(&["01,02"])
        .ex(&["320n"]),
    AiDef::new("3210", "3215", "*?", &[n(6)], "LENGTH (in)")
        .req(&["01,02"])
        .ex(&["321n"]),
    AiDef::new("3220", "3225", "*?", &[n(6)], "LENGTH (ft)")
        .req(&["01,02"])
        .ex(&["322n"]),
    AiDef::new("3230", "3235", "*?", &[n(6)], "LENGTH (yd)")
        .req(&["01,02"])
        .ex(&["323n"]),
    AiDef::new("3240", "3245", "*?", &[n(6)], "WIDTH (in)")
        .req(&["01,02"])
        .ex(&["324n"]),
    AiDef::new("3250", "3255", "*?", &[n(6)], "WIDTH (ft)")
        .req(&["01,02"])
        .ex(&["325n"]),
    AiDef::new("3260", "3265", "*?", &[n(6)], "WIDTH (yd)")
        .req(&["01,02"])
        .ex(&["326n"]),
    AiDef::new("3270", "3275", "*?", &[n(6)], "HEIGHT (in)")
        .req(&["01,02"])
        .ex(&["327n"]),
    AiDef::new("3280", "3285", "*?", &[n(6)], "HEIGHT (ft)")
        .req(&["01,02"])
        .ex(&["328n"]),
    AiDef::new("3290", "3295", "*?", &[n(6)], "HEIGHT (yd)")
        .req(&["01,02"])
        .ex(&["329n"]),
    AiDef::new("3300", "3305", "*?", &[n(6)], "GROSS WEIGHT (kg)")
        .req(&["00,01"])
        .ex(&["330n"]),
    AiDef::new("3310", "3315", "*?", &[n(6)], "LENGTH (m), log")
        .req(&["00,01"])
        .ex(&["331n"]),
    AiDef::new("3320", "3325", "*?", &[n(6)], "WIDTH (m), log")
        .req(&["00,01"])
        .ex(&["332n"]),
    AiDef::new("3330", "3335", "*?", &[n(6)], "HEIGHT (m), log")
        .req(&["00,01"])
        .ex(&["333n"]),
    AiDef::new("3340", "3345", "*?", &[n(6)], "AREA (m²), log")
        .req(&["00,01"])
        .ex(&["334n"]),
    AiDef::new("3350", "3355", "*?", &[n(6)], "VOLUME (l), log")
        .req(&["00,01"])
        .ex(&["335n"]),
    AiDef::new("3360", "3365", "*?", &[n(6)], "VOLUME (m³), log")
        .req(&["00,01"])
        .ex(&["336n"]),
    AiDef::new("3370", "3375", "*?", &[n(6)], "KG PER m²")
        .req(&["01"])
        .ex(&["337n"]),
    AiDef::new("3400", "3405", "*?", &[n(6)], "GROSS WEIGHT (lb)")
        .req(&["00,01"])
        .ex(&["340n"]),
    AiDef::new("3410", "3415", "*?", &[n(6)], "LENGTH (in), log")
        .req(&["00,01"])
        .ex(&["341n"]),
    AiDef::new("3420", "3425", "*?", &[n(6)], "LENGTH (ft), log")
        .req(&["00,01"])
        .ex(&["342n"]),
    AiDef::new("3430", "3435", "*?", &[n(6)], "LENGTH (yd), log")
        .req(&["00,01"])
        .ex(&["343n"]),
    AiDef::new("3440", "3445", "*?", &[n(6)], "WIDTH (in), log")
        .req(&["00,01"])
        .ex(&["344n"]),
    AiDef::new("3450", "3455", "*?", &[n(6)], "WIDTH (ft), log")
        .req(&["00,01"])
        .ex(&["345n"]),
    AiDef::new("3460", "3465", "*?", &[n(6)], "WIDTH (yd), log")
        .req(&["00,01"])
        .ex(&["346n"]),
    AiDef::new("3470", "3475", "*?", &[n(6)], "HEIGHT (in), log")
        .req(&["00,01"])
        .ex(&["347n"]),
    AiDef::new("3480", "3485", "*?", &[n(6)], "HEIGHT (ft), log")
        .req(&["00,01"])
        .ex(&["348n"]),
    AiDef::new("3490", "3495", "*?", &[n(6)], "HEIGHT (yd), log")
        .req(&["00,01"])
        .ex(&["349n"]),
    AiDef::new("3500", "3505", "*?", &[n(6)], "AREA (in²)")
        .req(&["01,02"])
        .ex(&["350n"]),
    AiDef::new("3510", "3515", "*?", &[n(6)], "AREA (ft²)")
        .req(&["01,02"])
        .ex(&["351n"]),
    AiDef::new("3520", "3525", "*?", &[n(6)], "AREA (yd²)")
        .req(&["01,02"])
        .ex(&["352n"]),
    AiDef::new("3530", "3535", "*?", &[n(6)], "AREA (in²), log")
        .req(&["00,01"])
        .ex(&["353n"]),
    AiDef::new("3540", "3545", "*?", &[n(6)], "AREA (ft²), log")
        .req(&["00,01"])
        .ex(&["354n"]),
    AiDef::new("3550", "3555", "*?", &[n(6)], "AREA (yd²), log")
        .req(&["00,01"])
        .ex(&["355n"]),
    AiDef::new("3560", "3565", "*?", &[n(6)], "NET WEIGHT (tr oz)")
        .req(&["01,02"])
        .ex(&["356n"]),
    AiDef::new("3570", "3575", "*?", &[n(6)], "NET VOLUME (oz)")
        .req(&["01,02"])
        .ex(&["357n"]),
    AiDef::new("3600", "3605", "*?", &[n(6)], "NET VOLUME (qt (US))")
        .req(&["01,02"])
        .ex(&["360n"]),
    AiDef::new("3610", "3615", "*?", &[n(6)], "NET VOLUME (gal.)")
        .req(&["01,02"])
        .ex(&["361n"]),
    AiDef::new("3620", "3625", "*?", &[n(6)], "VOLUME (qt (US)), log")
        .req(&["00,01"])
        .ex(&["362n"]),
    AiDef::new("3630", "3635", "*?", &[n(6)], "VOLUME (gal (US)), log")
        .req(&["00,01"])
        .ex(&["363n"]),
    AiDef::new("3640", "3645", "*?", &[n(6)], "NET VOLUME (in³)")
        .req(&["01,02"])
        .ex(&["364n"]),
    AiDef::new("3650", "3655", "*?", &[n(6)], "NET VOLUME (ft³)")
        .req(&["01,02"])
        .ex(&["365n"]),
    AiDef::new("3660", "3665", "*?", &[n(6)], "NET VOLUME (yd³)")
        .req(&["01,02"])
        .ex(&["366n"]),
    AiDef::new("3670", "3675", "*?", &[n(6)], "VOLUME (in³), log")
        .req(&["00,01"])
        .ex(&["367n"]),
    AiDef::new("3680", "3685", "*?", &[n(6)], "VOLUME (ft³), log")
        .req(&["00,01"])
        .ex(&["368n"]),
    AiDef::new("3690", "3695", "*?", &[n(6)], "VOLUME (yd³), log")
        .req(&["00,01"])
        .ex(&["369n"]),
    AiDef::one("37", "?", &[nv(8)], "COUNT").req(&["00", "02,8026"]),
    AiDef::new("3900", "3909", "?", &[nv(15)], "AMOUNT")
        .req(&["255,8020"])
        .ex(&["390n,391n,394n,8111"]),
    AiDef::new(
        "3910",
        "3919",
        "?",
        &[n(3).lint(&[Iso4217]), nv(15)],
        "AMOUNT",
    )
    .req(&["8020"])
    .ex(&["391n"]),
    AiDef::new("3920", "3929", "?", &[nv(15)], "PRICE")
        .req(&["01", "30,31nn,32nn,35nn,36nn"])
        .ex(&["392n,393n"]),
    AiDef::new(
        "3930",
        "3939",
        "?",
        &[n(3).lint(&[Iso4217]), nv(15)],
        "PRICE",
    )
    .req(&["30,31nn,32nn,35nn,36nn"])
    .ex(&["393n"]),
    AiDef::new("3940", "3943", "?", &[n(4)], "PRCNT OFF")
        .req(&["255"])
        .ex(&["394n,8111"]),
    AiDef::new("3950", "3955", "?", &[n(6)], "PRICE/UoM")
        .req(&["30,31nn,32nn,35nn,36nn"])
        .ex(&["392n,393n,395n,8005"]),
    AiDef::one("400", "?", &[xv(30)], "ORDER NUMBER"),
    AiDef::one("401", "?", &[xv(30).lint(&[Gcppos1])], "GINC").dlpkey(""),
    AiDef::one("402", "?", &[n(17).lint(&[Csum, Gcppos1])], "GSIN").dlpkey(""),
    AiDef::one("403", "?", &[xv(30)], "ROUTE").req(&["00"]),
    AiDef::one("410", "*?", &[n(13).lint(&[Csum, Gcppos1])], "SHIP TO LOC"),
    AiDef::one("411", "*?", &[n(13).lint(&[Csum, Gcppos1])], "BILL TO"),
    AiDef::one(
        "412",
        "*?",
        &[n(13).lint(&[Csum, Gcppos1])],
        "PURCHASE FROM",
    ),
    AiDef::one("413", "*?", &[n(13).lint(&[Csum, Gcppos1])], "SHIP FOR LOC"),
    AiDef::one("414", "*?", &[n(13).lint(&[Csum, Gcppos1])], "LOC No.").dlpkey("254|7040"),
    AiDef::one("415", "*?", &[n(13).lint(&[Csum, Gcppos1])], "PAY TO")
        .req(&["8020"])
        .dlpkey("8020"),
    AiDef::one(
        "416",
        "*?",
        &[n(13).lint(&[Csum, Gcppos1])],
        "PROD/SERV LOC",
    ),
    AiDef::one("417", "*?", &[n(13).lint(&[Csum, Gcppos1])], "PARTY").dlpkey("7040"),
    AiDef::one("420", "?", &[xv(20)], "SHIP TO POST").ex(&["421"]),
    AiDef::one("421", "?", &[n(3).lint(&[Iso3166]), xv(9)], "SHIP TO POST").ex(&["4307"]),
    AiDef::one("422", "?", &[n(3).lint(&[Iso3166])], "ORIGIN")
        .req(&["01,02,8006,8026"])
        .ex(&["426"]),
    AiDef::one(
        "423",
        "?",
        &[
            n(3).lint(&[Iso3166]),
            n(3).lint(&[Iso3166]).opt(),
            n(3).lint(&[Iso3166]).opt(),
            n(3).lint(&[Iso3166]).opt(),
            n(3).lint(&[Iso3166]).opt(),
        ],
        "COUNTRY - INITIAL PROCESS",
    )
    .req(&["01,02"])
    .ex(&["426"]),
    AiDef::one("424", "?", &[n(3).lint(&[Iso3166])], "COUNTRY - PROCESS")
        .req(&["01,02"])
        .ex(&["426"]),
    AiDef::one(
        "425",
        "?",
        &[
            n(3).lint(&[Iso3166]),
            n(3).lint(&[Iso3166]).opt(),
            n(3).lint(&[Iso3166]).opt(),
            n(3).lint(&[Iso3166]).opt(),
            n(3).lint(&[Iso3166]).opt(),
        ],
        "COUNTRY - DISASSEMBLY",
    )
    .req(&["01,02"])
    .ex(&["426"]),
    AiDef::one(
        "426",
        "?",
        &[n(3).lint(&[Iso3166])],
        "COUNTRY - FULL PROCESS",
    )
    .req(&["01,02"]),
    AiDef::one("427", "?", &[xv(3)], "ORIGIN SUBDIVISION").req(&["01,02", "422"]),
    AiDef::one("4300", "?", &[xv(35).lint(&[Pcenc])], "SHIP TO COMP").req(&["00"]),
    AiDef::one("4301", "?", &[xv(35).lint(&[Pcenc])], "SHIP TO NAME").req(&["00"]),
    AiDef::one("4302", "?", &[xv(70).lint(&[Pcenc])], "SHIP TO ADD1").req(&["00"]),
    AiDef::one("4303", "?", &[xv(70).lint(&[Pcenc])], "SHIP TO ADD2").req(&["4302"]),
    AiDef::one("4304", "?", &[xv(70).lint(&[Pcenc])], "SHIP TO SUB").req(&["00"]),
    AiDef::one("4305", "?", &[xv(70).lint(&[Pcenc])], "SHIP TO LOC").req(&["00"]),
    AiDef::one("4306", "?", &[xv(70).lint(&[Pcenc])], "SHIP TO REG").req(&["00"]),
    AiDef::one(
        "4307",
        "?",
        &[x(2).lint(&[Iso3166Alpha2])],
        "SHIP TO COUNTRY",
    )
    .req(&["00"]),
    AiDef::one("4308", "?", &[xv(30)], "SHIP TO PHONE").req(&["00"]),
    AiDef::one(
        "4309",
        "?",
        &[n(10).lint(&[Latitude]), n(10).lint(&[Longitude])],
        "SHIP TO GEO",
    )
    .req(&["00"]),
    AiDef::one("4310", "?", &[xv(35).lint(&[Pcenc])], "RTN TO COMP").req(&["00"]),
    AiDef::one("4311", "?", &[xv(35).lint(&[Pcenc])], "RTN TO NAME").req(&["00"]),
    AiDef::one("4312", "?", &[xv(70).lint(&[Pcenc])], "RTN TO ADD1").req(&["00"]),
    AiDef::one("4313", "?", &[xv(70).lint(&[Pcenc])], "RTN TO ADD2").req(&["4312"]),
    AiDef::one("4314", "?", &[xv(70).lint(&[Pcenc])], "RTN TO SUB").req(&["00"]),
    AiDef::one("4315", "?", &[xv(70).lint(&[Pcenc])], "RTN TO LOC").req(&["00"]),
    AiDef::one("4316", "?", &[xv(70).lint(&[Pcenc])], "RTN TO REG").req(&["00"]),
    AiDef::one(
        "4317",
        "?",
        &[x(2).lint(&[Iso3166Alpha2])],
        "RTN TO COUNTRY",
    )
    .req(&["00"]),
    AiDef::one("4318", "?", &[xv(20)], "RTN TO POST").req(&["00"]),
    AiDef::one("4319", "?", &[xv(30)], "RTN TO PHONE").req(&["00"]),
    AiDef::one("4320", "?", &[xv(35).lint(&[Pcenc])], "SRV DESCRIPTION").req(&["00"]),
    AiDef::one("4321", "?", &[n(1).lint(&[YesNo])], "DANGEROUS GOODS").req(&["00"]),
    AiDef::one("4322", "?", &[n(1).lint(&[YesNo])], "AUTH TO LEAVE").req(&["00"]),
    AiDef::one("4323", "?", &[n(1).lint(&[YesNo])], "SIG REQUIRED").req(&["00"]),
    AiDef::one(
        "4324",
        "?",
        &[n(6).lint(&[Yymmd0]), n(4).lint(&[Hhmi])],
        "NOT BEF DEL DT",
    )
    .req(&["00"]),
    AiDef::one(
        "4325",
        "?",
        &[n(6).lint(&[Yymmd0]), n(4).lint(&[Hhmi])],
        "NOT AFT DEL DT",
    )
    .req(&["00"]),
    AiDef::one("4326", "?", &[n(6).lint(&[Yymmdd])], "REL DATE").req(&["00"]),
    AiDef::one(
        "4330",
        "?",
        &[n(6), x(1).lint(&[Hyphen]).opt()],
        "MAX TEMP F.",
    )
    .req(&["00"])
    .ex(&["4331"]),
    AiDef::one(
        "4331",
        "?",
        &[n(6), x(1).lint(&[Hyphen]).opt()],
        "MAX TEMP C.",
    )
    .req(&["00"])
    .ex(&["4330"]),
    AiDef::one(
        "4332",
        "?",
        &[n(6), x(1).lint(&[Hyphen]).opt()],
        "MIN TEMP F.",
    )
    .req(&["00"])
    .ex(&["4333"]),
    AiDef::one(
        "4333",
        "?",
        &[n(6), x(1).lint(&[Hyphen]).opt()],
        "MIN TEMP C.",
    )
    .req(&["00"])
    .ex(&["4332"]),
    AiDef::one("7001", "?", &[n(13)], "NSN").req(&["01,02,8006,8026"]),
    AiDef::one("7002", "?", &[xv(30)], "MEAT CUT").req(&["01,02"]),
    AiDef::one(
        "7003",
        "?",
        &[n(6).lint(&[Yymmdd]), n(4).lint(&[Hhmi])],
        "EXPIRY TIME",
    )
    .req(&["01,02"]),
    AiDef::one("7004", "?", &[nv(4)], "ACTIVE POTENCY").req(&["01+10"]),
    AiDef::one("7005", "?", &[xv(12)], "CATCH AREA").req(&["01,02"]),
    AiDef::one("7006", "?", &[n(6).lint(&[Yymmdd])], "FIRST FREEZE DATE").req(&["01,02"]),
    AiDef::one(
        "7007",
        "?",
        &[n(6).lint(&[Yymmdd]), n(6).lint(&[Yymmdd]).opt()],
        "HARVEST DATE",
    )
    .req(&["01,02"]),
    AiDef::one("7008", "?", &[xv(3)], "AQUATIC SPECIES").req(&["01,02"]),
    AiDef::one("7009", "?", &[xv(10)], "FISHING GEAR TYPE").req(&["01,02"]),
    AiDef::one("7010", "?", &[xv(2)], "PROD METHOD").req(&["01,02"]),
    AiDef::one(
        "7011",
        "?",
        &[n(6).lint(&[Yymmdd]), n(4).lint(&[Hhmi]).opt()],
        "TEST BY DATE",
    )
    .req(&["01,02"]),
    AiDef::one("7020", "?", &[xv(20)], "REFURB LOT").req(&["01,8006", "416"]),
    AiDef::one("7021", "?", &[xv(20)], "FUNC STAT").req(&["01,8006"]),
    AiDef::one("7022", "?", &[xv(20)], "REV STAT").req(&["7021"]),
    AiDef::one("7023", "?", &[xv(30).lint(&[Gcppos1])], "GIAI - ASSEMBLY"),
    AiDef::one(
        "7030",
        "?",
        &[n(3).lint(&[Iso3166999]), xv(27)],
        "PROCESSOR # 0",
    )
    .req(&["01,02"]),
    AiDef::one(
        "7031",
        "?",
        &[n(3).lint(&[Iso3166999]), xv(27)],
        "PROCESSOR # 1",
    )
    .req(&["01,02"]),
    AiDef::one(
        "7032",
        "?",
        &[n(3).lint(&[Iso3166999]), xv(27)],
        "PROCESSOR # 2",
    )
    .req(&["01,02"]),
    AiDef::one(
        "7033",
        "?",
        &[n(3).lint(&[Iso3166999]), xv(27)],
        "PROCESSOR # 3",
    )
    .req(&["01,02"]),
    AiDef::one(
        "7034",
        "?",
        &[n(3).lint(&[Iso3166999]), xv(27)],
        "PROCESSOR # 4",
    )
    .req(&["01,02"]),
    AiDef::one(
        "7035",
        "?",
        &[n(3).lint(&[Iso3166999]), xv(27)],
        "PROCESSOR # 5",
    )
    .req(&["01,02"]),
    AiDef::one(
        "7036",
        "?",
        &[n(3).lint(&[Iso3166999]), xv(27)],
        "PROCESSOR # 6",
    )
    .req(&["01,02"]),
    AiDef::one(
        "7037",
        "?",
        &[n(3).lint(&[Iso3166999]), xv(27)],
        "PROCESSOR # 7",
    )
    .req(&["01,02"]),
    AiDef::one(
        "7038",
        "?",
        &[n(3).lint(&[Iso3166999]), xv(27)],
        "PROCESSOR # 8",
    )
    .req(&["01,02"]),
    AiDef::one(
        "7039",
        "?",
        &[n(3).lint(&[Iso3166999]), xv(27)],
        "PROCESSOR # 9",
    )
    .req(&["01,02"]),
    AiDef::one(
        "7040",
        "",
        &[n(1), x(1), x(1), x(1).lint(&[ImporterIdx])],
        "UIC+EXT",
    ),
    AiDef::one("7041", "", &[xv(4).lint(&[PackageType])], "UFRGT UNIT TYPE").req(&["00"]),
    AiDef::one("710", "?", &[xv(20)], "NHRN PZN").req(&["01"]),
    AiDef::one("711", "?", &[xv(20)], "NHRN CIP").req(&["01"]),
    AiDef::one("712", "?", &[xv(20)], "NHRN CN").req(&["01"]),
    AiDef::one("713", "?", &[xv(20)], "NHRN DRN").req(&["01"]),
    AiDef::one("714", "?", &[xv(20)], "NHRN AIM").req(&["01"]),
    AiDef::one("715", "?", &[xv(20)], "NHRN NDC").req(&["01"]),
    AiDef::one("716", "?", &[xv(20)], "NHRN AIC").req(&["01"]),
    AiDef::one("717", "?", &[xv(20)], "NHRN SRN").req(&["01"]),
    AiDef::one("7230", "?", &[x(2), xv(28)], "CERT # 1").req(&["01,8004"]),
    AiDef::one("7231", "?", &[x(2), xv(28)], "CERT # 2").req(&["01,8004"]),
    AiDef::one("7232", "?", &[x(2), xv(28)], "CERT # 3").req(&["01,8004"]),
    AiDef::one("7233", "?", &[x(2), xv(28)], "CERT # 4").req(&["01,8004"]),
    AiDef::one("7234", "?", &[x(2), xv(28)], "CERT # 5").req(&["01,8004"]),
    AiDef::one("7235", "?", &[x(2), xv(28)], "CERT # 6").req(&["01,8004"]),
    AiDef::one("7236", "?", &[x(2), xv(28)], "CERT # 7").req(&["01,8004"]),
    AiDef::one("7237", "?", &[x(2), xv(28)], "CERT # 8").req(&["01,8004"]),
    AiDef::one("7238", "?", &[x(2), xv(28)], "CERT # 9").req(&["01,8004"]),
    AiDef::one("7239", "?", &[x(2), xv(28)], "CERT # 10").req(&["01,8004"]),
    AiDef::one("7240", "?", &[xv(20)], "PROTOCOL").req(&["01,8006"]),
    AiDef::one("7241", "?", &[n(2).lint(&[MediaType])], "AIDC MEDIA TYPE").req(&["8017,8018"]),
    AiDef::one("7242", "?", &[xv(25)], "VCN").req(&["8017,8018"]),
    AiDef::one("7250", "?", &[n(8).lint(&[Yyyymmdd])], "DOB")
        .req(&["8018"])
        .ex(&["7251"]),
    AiDef::one(
        "7251",
        "?",
        &[n(8).lint(&[Yyyymmdd]), n(4).lint(&[Hhmi])],
        "DOB TIME",
    )
    .req(&["8018"])
    .ex(&["7250"]),
    AiDef::one("7252", "?", &[n(1).lint(&[Iso5218])], "BIO SEX").req(&["8018"]),
    AiDef::one("7253", "?", &[xv(40).lint(&[Pcenc])], "FAMILY NAME")
        .req(&["8017,8018"])
        .ex(&["7256,7259"]),
    AiDef::one("7254", "?", &[xv(40).lint(&[Pcenc])], "GIVEN NAME")
        .req(&["8017,8018"])
        .ex(&["7256,7259"]),
    AiDef::one("7255", "?", &[xv(10)], "SUFFIX")
        .req(&["8017,8018"])
        .ex(&["7256,7259"]),
    AiDef::one("7256", "?", &[xv(90).lint(&[Pcenc])], "FULL NAME").req(&["8017,8018"]),
    AiDef::one("7257", "?", &[xv(70).lint(&[Pcenc])], "PERSON ADDR").req(&["8018"]),
    AiDef::one(
        "7258",
        "?",
        &[x(3).lint(&[PosInSeqSlash])],
        "BIRTH SEQUENCE",
    )
    .req(&["8018+7259"]),
    AiDef::one("7259", "?", &[xv(40).lint(&[Pcenc])], "BABY")
        .req(&["8018"])
        .ex(&["7256"]),
    AiDef::one(
        "8001",
        "?",
        &[
            n(4).lint(&[NonZero]),
            n(5).lint(&[NonZero]),
            n(3).lint(&[NonZero]),
            n(1).lint(&[Winding]),
            n(1),
        ],
        "DIMENSIONS",
    )
    .req(&["01"]),
    AiDef::one("8002", "?", &[xv(20)], "CMT No."),
    AiDef::one(
        "8003",
        "?",
        &[
            n(1).lint(&[Zero]),
            n(13).lint(&[Csum, Gcppos1]),
            xv(16).opt(),
        ],
        "GRAI",
    )
    .dlpkey(""),
    AiDef::one("8004", "?", &[xv(30).lint(&[Gcppos1])], "GIAI").dlpkey("7040"),
    AiDef::one("8005", "?", &[n(6)], "PRICE PER UNIT").req(&["01,02"]),
    AiDef::one(
        "8006",
        "?",
        &[n(14).lint(&[Csum, Gcppos2]), n(4).lint(&[PieceOfTotal])],
        "ITIP",
    )
    .ex(&["01,37"])
    .dlpkey("22,10,21"),
    AiDef::one("8007", "?", &[xv(34).lint(&[Iban])], "IBAN").req(&["415"]),
    AiDef::one(
        "8008",
        "?",
        &[
            n(6).lint(&[Yymmdd]),
            n(2).lint(&[Hh]),
            n(2).lint(&[Mi]).opt(),
            n(2).lint(&[Ss]).opt(),
        ],
        "PROD TIME",
    )
    .req(&["01,02"]),
    AiDef::one("8009", "?", &[xv(50)], "OPTSEN").req(&["00,01"]),
    AiDef::one("8010", "?", &[yv(30).lint(&[Gcppos1])], "CPID").dlpkey("8011"),
    AiDef::one("8011", "", &[nv(12).lint(&[NoZeroPrefix])], "CPID SERIAL").req(&["8010"]),
    AiDef::one("8012", "?", &[xv(20)], "VERSION").req(&["01,8006"]),
    AiDef::one("8013", "?", &[xv(25).lint(&[CsumAlpha, Gcppos1])], "GMN").dlpkey(""),
    AiDef::one(
        "8014",
        "",
        &[xv(25).lint(&[CsumAlpha, Gcppos1, HasNonDigit])],
        "MUDI",
    )
    .req(&["01"]),
    AiDef::one(
        "8017",
        "?",
        &[n(18).lint(&[Csum, Gcppos1])],
        "GSRN - PROVIDER",
    )
    .ex(&["8018"])
    .dlpkey("8019"),
    AiDef::one(
        "8018",
        "?",
        &[n(18).lint(&[Csum, Gcppos1])],
        "GSRN - RECIPIENT",
    )
    .ex(&["8017"])
    .dlpkey("8019"),
    AiDef::one("8019", "", &[nv(10)], "SRIN").req(&["8017,8018"]),
    AiDef::one("8020", "", &[xv(25)], "REF No.").req(&["415"]),
    AiDef::one(
        "8026",
        "?",
        &[n(14).lint(&[Csum, Gcppos2]), n(4).lint(&[PieceOfTotal])],
        "ITIP CONTENT",
    )
    .req(&["37"])
    .ex(&["02,8006"]),
    AiDef::one("8030", "?", &[zv(90)], "DIGSIG")
        .req(&["00,01+21,253,255,8003,8004,8006+21,8010+8011,8017,8018"]),
    AiDef::one("8040", "", &[n(15)], "IMEI").req(&["01+21"]),
    AiDef::one("8041", "", &[n(15)], "IMEI2").req(&["01+21+8040"]),
    AiDef::one("8042", "", &[n(32)], "ESIM").req(&["01+21+8040"]),
    AiDef::one("8043", "", &[n(18), nv(2).opt()], "PSIM").req(&["01+21+8040"]),
    AiDef::one(
        "8110",
        "?",
        &[xv(70).lint(&[CouponCode])],
        "NORTH AMERICAN COUPON",
    ),
    AiDef::one("8111", "?", &[n(4)], "POINTS").req(&["255"]),
    AiDef::one(
        "8112",
        "?",
        &[xv(70).lint(&[CouponPosOffer])],
        "PAPERLESS COUPON",
    ),
    AiDef::one("8200", "", &[xv(70)], "PRODUCT URL").req(&["01"]),
    AiDef::one("90", "?", &[xv(30)], "INTERNAL"),
    AiDef::new("91", "99", "?", &[xv(90)], "INTERNAL"),
];

/// The definition of `ai` (a complete AI such as `"3103"`), if the dictionary has it.
///
/// O(1): AIs are 2 to 4 digits, so a dense index per width (built once) maps the AI's number straight to its row.
/// Decoding calls this several times per element; a binary search over strings was half of all decode time.
pub fn lookup(ai: &str) -> Option<&'static AiDef> {
    let b = ai.as_bytes();
    if !(2..=4).contains(&b.len()) || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = b
        .iter()
        .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
    let slot = *index().get(b.len() - 2)?.get(n)?;
    // Slot 0 means "no AI"; otherwise the row is at slot - 1.
    AI_TABLE.get(usize::from(slot).checked_sub(1)?)
}

/// Dense indexes of AI_TABLE rows (plus one) for 2-, 3- and 4-digit AIs.
fn index() -> &'static [Vec<u16>; 3] {
    static INDEX: std::sync::OnceLock<[Vec<u16>; 3]> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut idx = [vec![0u16; 100], vec![0u16; 1000], vec![0u16; 10_000]];
        for (row, d) in AI_TABLE.iter().enumerate() {
            let width = d.first.len();
            let (Ok(first), Ok(last)) = (d.first.parse::<usize>(), d.last.parse::<usize>()) else {
                continue;
            };
            if let Some(table) = idx.get_mut(width.wrapping_sub(2)) {
                for n in first..=last.min(table.len() - 1) {
                    table[n] = u16::try_from(row + 1).unwrap_or(0);
                }
            }
        }
        idx
    })
}

/// Finds the AI at the start of `data`: GS1 AIs are prefix-free, so at most one of the 2-, 3- and 4-digit prefixes
/// names an AI. Returns the AI's length and definition.
pub fn lookup_prefix(data: &[u8]) -> Option<(usize, &'static AiDef)> {
    (2..=4).find_map(|len| {
        let prefix = data.get(..len)?;
        let ai = std::str::from_utf8(prefix).ok()?;
        lookup(ai).map(|d| (len, d))
    })
}

/// True when `pattern` (digits, or `n` for any digit) matches `ai`.
pub fn pattern_matches(pattern: &str, ai: &str) -> bool {
    pattern.len() == ai.len()
        && pattern
            .bytes()
            .zip(ai.bytes())
            .all(|(p, a)| p == a || (p == b'n' && a.is_ascii_digit()))
}

/// Every AI the table defines, ranges expanded (`3100`, `3101`, ...), in table order.
pub fn all_ais() -> impl Iterator<Item = (String, &'static AiDef)> {
    AI_TABLE.iter().flat_map(|d| {
        let width = d.first.len();
        let first: u32 = d.first.parse().unwrap_or(0);
        let last: u32 = d.last.parse().unwrap_or(0);
        (first..=last).map(move |n| (format!("{n:0width$}"), d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let cases: &[(&str, Option<&str>)] = &[
            ("00", Some("SSCC")),
            ("01", Some("GTIN")),
            ("10", Some("BATCH/LOT")),
            ("17", Some("USE BY or EXPIRY")),
            ("235", Some("TPX")),
            ("253", Some("GDTI")),
            ("3103", Some("NET WEIGHT (kg)")),
            ("3106", None),
            ("3922", Some("PRICE")),
            ("3943", Some("PRCNT OFF")),
            ("3944", None),
            ("414", Some("LOC No.")),
            ("7040", Some("UIC+EXT")),
            ("710", Some("NHRN PZN")),
            ("8013", Some("GMN")),
            ("8200", Some("PRODUCT URL")),
            ("95", Some("INTERNAL")),
            ("99", Some("INTERNAL")),
            ("23", None),
            ("0", None),
            ("", None),
            ("abc", None),
            ("31", None),
        ];
        for &(ai, title) in cases {
            assert_eq!(lookup(ai).map(|d| d.title), title, "AI {ai}");
        }
    }

    #[test]
    fn prefix_lookup() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"0109506000134352", Some(2)),
            (b"3103000250", Some(4)),
            (b"414950600001400", Some(3)),
            (b"23", None),
            (b"4", None),
            (b"", None),
        ];
        for &(data, want) in cases {
            assert_eq!(lookup_prefix(data).map(|(l, _)| l), want, "{data:?}");
        }
    }

    #[test]
    fn table_is_prefix_free_and_sorted() {
        for w in AI_TABLE.windows(2) {
            assert!(
                w[0].last < w[1].first,
                "{} before {}",
                w[0].first,
                w[1].first
            );
        }
        for (i, a) in AI_TABLE.iter().enumerate() {
            assert_eq!(a.first.len(), a.last.len(), "{}", a.first);
            assert!(a.first <= a.last, "{}", a.first);
            assert!(!a.components.is_empty(), "{}", a.first);
            for b in &AI_TABLE[i + 1..] {
                // No AI of one row may be a prefix of an AI of another row, or parsing becomes ambiguous.
                let (short, long) = if a.first.len() <= b.first.len() {
                    (a, b)
                } else {
                    (b, a)
                };
                let long_prefix_first = &long.first[..short.first.len()];
                let long_prefix_last = &long.last[..short.first.len()];
                assert!(
                    long_prefix_last < short.first || long_prefix_first > short.last,
                    "{} overlaps {}",
                    a.first,
                    b.first
                );
            }
        }
        for (ai, d) in all_ais() {
            assert_eq!(lookup(&ai).map(|l| l.first), Some(d.first), "AI {ai}");
        }
    }

    #[test]
    fn fnc1_flag_follows_predefined_length_table() {
        // GS1 General Specifications Figure 7.8.5-2: these two-digit prefixes have predefined lengths.
        const PREDEFINED: &[&str] = &[
            "00", "01", "02", "03", "04", "11", "12", "13", "14", "15", "16", "17", "18", "19",
            "20", "31", "32", "33", "34", "35", "36", "41",
        ];
        for d in AI_TABLE {
            let predefined = PREDEFINED.contains(&&d.first[..2]);
            assert_eq!(d.fnc1_required, !predefined, "AI {}", d.first);
            if predefined {
                assert!(d.is_fixed_len(), "AI {}", d.first);
            }
        }
    }

    #[test]
    fn patterns() {
        let cases: &[(&str, &str, bool)] = &[
            ("310n", "3103", true),
            ("31nn", "3199", true),
            ("310n", "3113", false),
            ("01", "01", true),
            ("01", "010", false),
        ];
        for &(p, ai, want) in cases {
            assert_eq!(pattern_matches(p, ai), want, "{p} {ai}");
        }
    }

    #[test]
    fn decimals() {
        let cases: &[(&str, Option<u8>)] = &[
            ("3103", Some(3)),
            ("3695", Some(5)),
            ("3922", Some(2)),
            ("3955", Some(5)),
            ("10", None),
            ("37", None),
            ("8005", None),
        ];
        for &(ai, want) in cases {
            assert_eq!(
                lookup(ai).and_then(|d| d.decimal_places(ai)),
                want,
                "AI {ai}"
            );
        }
    }

    #[test]
    fn linter_names_round_trip() {
        for l in Linter::ALL {
            assert_eq!(Linter::from_name(l.name()), Some(*l));
        }
        assert_eq!(Linter::from_name("nope"), None);
    }

    /// One component as the dictionary writes it: `N13,csum,gcppos1`, `[X..16]`, `[N3],iso3166`.
    #[derive(Debug, PartialEq)]
    struct DictComponent {
        charset: char,
        min: u8,
        max: u8,
        optional: bool,
        linters: Vec<String>,
    }

    fn parse_component(tok: &str) -> Option<DictComponent> {
        let optional = tok.starts_with('[');
        let tok = tok.replace(['[', ']'], "");
        let mut parts = tok.split(',');
        let ty = parts.next()?;
        let mut chars = ty.chars();
        let charset = chars.next()?;
        if !matches!(charset, 'N' | 'X' | 'Y' | 'Z') {
            return None;
        }
        let rest: String = chars.collect();
        let (min, max) = match rest.strip_prefix("..") {
            Some(m) => (1, m.parse().ok()?),
            None => {
                let n = rest.parse().ok()?;
                (n, n)
            }
        };
        Some(DictComponent {
            charset,
            min,
            max,
            optional,
            linters: parts.map(str::to_owned).collect(),
        })
    }

    struct DictEntry {
        first: String,
        last: String,
        flags: String,
        components: Vec<DictComponent>,
        req: Vec<String>,
        ex: Vec<String>,
        dlpkey: Option<String>,
        title: String,
    }

    fn parse_dictionary(text: &str) -> Vec<DictEntry> {
        let mut out = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (spec, title) = match line.split_once('#') {
                Some((s, t)) => (s, t.trim().to_owned()),
                None => (line, String::new()),
            };
            let mut toks = spec.split_whitespace().peekable();
            let Some(ais) = toks.next() else { continue };
            let (first, last) = match ais.split_once('-') {
                Some((a, b)) => (a.to_owned(), b.to_owned()),
                None => (ais.to_owned(), ais.to_owned()),
            };
            let mut flags = String::new();
            if let Some(t) = toks.peek() {
                if t.chars().all(|c| !c.is_ascii_alphanumeric() && c != '[') {
                    flags = (*t).to_owned();
                    toks.next();
                }
            }
            let mut e = DictEntry {
                first,
                last,
                flags,
                components: Vec::new(),
                req: Vec::new(),
                ex: Vec::new(),
                dlpkey: None,
                title,
            };
            for t in toks {
                if let Some(c) = parse_component(t) {
                    e.components.push(c);
                } else if let Some(r) = t.strip_prefix("req=") {
                    e.req.push(r.to_owned());
                } else if let Some(x) = t.strip_prefix("ex=") {
                    e.ex.push(x.to_owned());
                } else if t == "dlpkey" {
                    e.dlpkey = Some(String::new());
                } else if let Some(k) = t.strip_prefix("dlpkey=") {
                    e.dlpkey = Some(k.to_owned());
                } else {
                    panic!("dictionary token {t:?} not understood (line {line:?})");
                }
            }
            out.push(e);
        }
        out
    }

    #[test]
    fn table_matches_syntax_dictionary() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/reference/gs1/gs1-syntax-dictionary.txt");
        let Ok(text) = std::fs::read_to_string(&path) else {
            println!(
                "note: {} not found; skipping the dictionary cross-check",
                path.display()
            );
            return;
        };
        let dict = parse_dictionary(&text);
        // Both directions: the same rows in the same order, so an AI added to or dropped from a release fails here.
        let ours: Vec<String> = AI_TABLE
            .iter()
            .map(|d| format!("{}-{}", d.first, d.last))
            .collect();
        let theirs: Vec<String> = dict
            .iter()
            .map(|e| format!("{}-{}", e.first, e.last))
            .collect();
        for t in &theirs {
            assert!(
                ours.contains(t),
                "dictionary AI {t} is missing from AI_TABLE"
            );
        }
        for o in &ours {
            assert!(
                theirs.contains(o),
                "AI_TABLE row {o} is not in the dictionary"
            );
        }
        assert_eq!(ours, theirs, "row order");
        for (d, e) in AI_TABLE.iter().zip(&dict) {
            let ai = d.first;
            if !e.title.is_empty() {
                assert_eq!(d.title, e.title, "AI {ai} title");
            }
            assert_eq!(d.fnc1_required, !e.flags.contains('*'), "AI {ai} FNC1 flag");
            assert_eq!(
                d.dl_attribute,
                e.flags.contains('?'),
                "AI {ai} DL attribute flag"
            );
            let mine: Vec<DictComponent> = d
                .components
                .iter()
                .map(|c| DictComponent {
                    charset: c.charset.letter(),
                    min: c.min,
                    max: c.max,
                    optional: c.optional,
                    linters: c.linters.iter().map(|l| l.name().to_owned()).collect(),
                })
                .collect();
            assert_eq!(mine, e.components, "AI {ai} components");
            assert_eq!(d.req.to_vec(), e.req, "AI {ai} req");
            assert_eq!(d.ex.to_vec(), e.ex, "AI {ai} ex");
            assert_eq!(d.dlpkey.map(str::to_owned), e.dlpkey, "AI {ai} dlpkey");
        }
    }
}
