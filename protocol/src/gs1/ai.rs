//! The table of GS1 Application Identifiers we understand.
//!
//! Each entry mirrors one line of the GS1 Barcode Syntax Dictionary
//! (`AIs  Flags  Specification  Attributes  # Title`), so that extending the table to the whole dictionary is a
//! matter of adding rows, not code. A test cross-checks every row against the dictionary file when it is present.
//!
//! The table is our own code; only the facts come from the dictionary. Linters that need external tables
//! (`gcppos1`/`gcppos2` need the GS1 Company Prefix list, `iso3166`/`iso4217` need country and currency lists) are not
//! implemented yet and are simply absent from our component definitions.

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

impl Charset {
    /// True when `b` belongs to this character set.
    pub fn allows(self, b: u8) -> bool {
        match self {
            Charset::Numeric => b.is_ascii_digit(),
            Charset::Cset82 => {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'!' | b'"'
                            | b'%'
                            | b'&'
                            | b'\''
                            | b'('
                            | b')'
                            | b'*'
                            | b'+'
                            | b','
                            | b'-'
                            | b'.'
                            | b'/'
                            | b':'
                            | b';'
                            | b'<'
                            | b'='
                            | b'>'
                            | b'?'
                            | b'_'
                    )
            }
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

/// A content check applied to one component (the dictionary's "linters").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Linter {
    /// `csum`: the last digit is the GS1 mod-10 check digit of the others.
    Csum,
    /// `yymmd0`: a date YYMMDD where DD may be `00` (meaning the last day of the month).
    Yymmd0,
    /// `yymmdd`: a date YYMMDD with a real day.
    Yymmdd,
    /// `hhmi`: a time of day HHMM.
    Hhmi,
    /// `zero`: the digit `0`.
    Zero,
    /// `pieceoftotal`: NNTT, piece NN of TT pieces, `1 <= NN <= TT`.
    PieceOfTotal,
}

impl Linter {
    /// The dictionary's name of this linter.
    pub fn name(self) -> &'static str {
        match self {
            Linter::Csum => "csum",
            Linter::Yymmd0 => "yymmd0",
            Linter::Yymmdd => "yymmdd",
            Linter::Hhmi => "hhmi",
            Linter::Zero => "zero",
            Linter::PieceOfTotal => "pieceoftotal",
        }
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
    /// Content checks for this component.
    pub linters: &'static [Linter],
}

impl Component {
    const fn fixed(charset: Charset, len: u8) -> Self {
        Component {
            charset,
            min: len,
            max: len,
            optional: false,
            linters: &[],
        }
    }

    const fn var(charset: Charset, max: u8) -> Self {
        Component {
            charset,
            min: 1,
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
    /// The dictionary's data title, e.g. `GTIN` or `BATCH/LOT`.
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

    /// For the measure families (`31nn`-`36nn`, `39nn`): the implied number of decimal places, the AI's last digit.
    pub fn decimal_places(&self, ai: &str) -> Option<u8> {
        let prefix = self.first.get(..2)?;
        if self.first.len() == 4 && matches!(prefix, "31" | "32" | "33" | "34" | "35" | "36" | "39")
        {
            ai.as_bytes()
                .get(3)
                .filter(|b| b.is_ascii_digit())
                .map(|b| b - b'0')
        } else {
            None
        }
    }
}

use Charset::{Cset82, Numeric};
use Linter::{Csum, Hhmi, PieceOfTotal, Yymmd0, Yymmdd, Zero};

const N2: Component = Component::fixed(Numeric, 2);
const N3: Component = Component::fixed(Numeric, 3);
const N6: Component = Component::fixed(Numeric, 6);
const N13_CSUM: Component = Component::fixed(Numeric, 13).lint(&[Csum]);
const N14_CSUM: Component = Component::fixed(Numeric, 14).lint(&[Csum]);
const N17_CSUM: Component = Component::fixed(Numeric, 17).lint(&[Csum]);
const N18_CSUM: Component = Component::fixed(Numeric, 18).lint(&[Csum]);
const DATE0: Component = Component::fixed(Numeric, 6).lint(&[Yymmd0]);
const X20: Component = Component::var(Cset82, 20);
const X25: Component = Component::var(Cset82, 25);
const X30: Component = Component::var(Cset82, 30);
const X90: Component = Component::var(Cset82, 90);
const NV8: Component = Component::var(Numeric, 8);
const NV15: Component = Component::var(Numeric, 15);

/// Gives the table's rows a dictionary-like look: `measure("3100", "3105", "NET WEIGHT (kg)", REQ_TRADE, "310n")`.
const fn measure(
    first: &'static str,
    last: &'static str,
    title: &'static str,
    req: &'static [&'static str],
    ex: &'static [&'static str],
) -> AiDef {
    AiDef::new(first, last, "*?", &[N6], title).req(req).ex(ex)
}

const TRADE: &[&str] = &["01,02"];
const LOGISTIC: &[&str] = &["00,01"];
const ITEM_ATTR: &[&str] = &["01,02,03,8006,8026"];

/// Every AI we understand, in the dictionary's lexical order.
pub static AI_TABLE: &[AiDef] = &[
    AiDef::one("00", "*?", &[N18_CSUM], "SSCC").dlpkey(""),
    AiDef::one("01", "*?", &[N14_CSUM], "GTIN")
        .ex(&["255,37"])
        .dlpkey("22,10,21|235"),
    AiDef::one("02", "*?", &[N14_CSUM], "CONTENT")
        .ex(&["01,03"])
        .req(&["37"]),
    AiDef::one("03", "*", &[N14_CSUM], "MTO GTIN").ex(&["01,02,37"]),
    AiDef::one("10", "?", &[X20], "BATCH/LOT").req(ITEM_ATTR),
    AiDef::one("11", "*?", &[DATE0], "PROD DATE").req(ITEM_ATTR),
    AiDef::one("12", "*?", &[DATE0], "DUE DATE").req(&["8020"]),
    AiDef::one("13", "*?", &[DATE0], "PACK DATE").req(ITEM_ATTR),
    AiDef::one("15", "*?", &[DATE0], "BEST BEFORE or BEST BY").req(ITEM_ATTR),
    AiDef::one("16", "*?", &[DATE0], "SELL BY").req(ITEM_ATTR),
    AiDef::one("17", "*?", &[DATE0], "USE BY or EXPIRY").req(&["01,02,03,255,8006,8026"]),
    AiDef::one("20", "*?", &[N2], "VARIANT").req(&["01,02,8006,8026"]),
    AiDef::one("21", "", &[X20], "SERIAL")
        .req(&["01,03,8006"])
        .ex(&["235"]),
    AiDef::one("22", "", &[X20], "CPV").req(&["01"]),
    AiDef::one("240", "?", &[X30], "ADDITIONAL ID").req(&["01,02,8006,8026"]),
    AiDef::one("241", "?", &[X30], "CUST. PART No.").req(&["01,02,8006,8026"]),
    AiDef::one("250", "?", &[X30], "SECONDARY SERIAL").req(&["01,8006", "21"]),
    AiDef::one("251", "?", &[X30], "REF. TO SOURCE").req(&["01,8006"]),
    AiDef::one("254", "", &[X20], "GLN EXTENSION COMPONENT").req(&["414"]),
    AiDef::one("30", "?", &[NV8], "VAR. COUNT").req(TRADE),
    measure("3100", "3105", "NET WEIGHT (kg)", TRADE, &["310n"]),
    measure("3110", "3115", "LENGTH (m)", TRADE, &["311n"]),
    measure("3120", "3125", "WIDTH (m)", TRADE, &["312n"]),
    measure("3130", "3135", "HEIGHT (m)", TRADE, &["313n"]),
    measure("3140", "3145", "AREA (m²)", TRADE, &["314n"]),
    measure("3150", "3155", "NET VOLUME (l)", TRADE, &["315n"]),
    measure("3160", "3165", "NET VOLUME (m³)", TRADE, &["316n"]),
    measure("3200", "3205", "NET WEIGHT (lb)", TRADE, &["320n"]),
    measure("3210", "3215", "LENGTH (in)", TRADE, &["321n"]),
    measure("3220", "3225", "LENGTH (ft)", TRADE, &["322n"]),
    measure("3230", "3235", "LENGTH (yd)", TRADE, &["323n"]),
    measure("3240", "3245", "WIDTH (in)", TRADE, &["324n"]),
    measure("3250", "3255", "WIDTH (ft)", TRADE, &["325n"]),
    measure("3260", "3265", "WIDTH (yd)", TRADE, &["326n"]),
    measure("3270", "3275", "HEIGHT (in)", TRADE, &["327n"]),
    measure("3280", "3285", "HEIGHT (ft)", TRADE, &["328n"]),
    measure("3290", "3295", "HEIGHT (yd)", TRADE, &["329n"]),
    measure("3300", "3305", "GROSS WEIGHT (kg)", LOGISTIC, &["330n"]),
    measure("3310", "3315", "LENGTH (m), log", LOGISTIC, &["331n"]),
    measure("3320", "3325", "WIDTH (m), log", LOGISTIC, &["332n"]),
    measure("3330", "3335", "HEIGHT (m), log", LOGISTIC, &["333n"]),
    measure("3340", "3345", "AREA (m²), log", LOGISTIC, &["334n"]),
    measure("3350", "3355", "VOLUME (l), log", LOGISTIC, &["335n"]),
    measure("3360", "3365", "VOLUME (m³), log", LOGISTIC, &["336n"]),
    measure("3370", "3375", "KG PER m²", &["01"], &["337n"]),
    measure("3400", "3405", "GROSS WEIGHT (lb)", LOGISTIC, &["340n"]),
    measure("3410", "3415", "LENGTH (in), log", LOGISTIC, &["341n"]),
    measure("3420", "3425", "LENGTH (ft), log", LOGISTIC, &["342n"]),
    measure("3430", "3435", "LENGTH (yd), log", LOGISTIC, &["343n"]),
    measure("3440", "3445", "WIDTH (in), log", LOGISTIC, &["344n"]),
    measure("3450", "3455", "WIDTH (ft), log", LOGISTIC, &["345n"]),
    measure("3460", "3465", "WIDTH (yd), log", LOGISTIC, &["346n"]),
    measure("3470", "3475", "HEIGHT (in), log", LOGISTIC, &["347n"]),
    measure("3480", "3485", "HEIGHT (ft), log", LOGISTIC, &["348n"]),
    measure("3490", "3495", "HEIGHT (yd), log", LOGISTIC, &["349n"]),
    measure("3500", "3505", "AREA (in²)", TRADE, &["350n"]),
    measure("3510", "3515", "AREA (ft²)", TRADE, &["351n"]),
    measure("3520", "3525", "AREA (yd²)", TRADE, &["352n"]),
    measure("3530", "3535", "AREA (in²), log", LOGISTIC, &["353n"]),
    measure("3540", "3545", "AREA (ft²), log", LOGISTIC, &["354n"]),
    measure("3550", "3555", "AREA (yd²), log", LOGISTIC, &["355n"]),
    measure("3560", "3565", "NET WEIGHT (tr oz)", TRADE, &["356n"]),
    measure("3570", "3575", "NET VOLUME (oz)", TRADE, &["357n"]),
    measure("3600", "3605", "NET VOLUME (qt (US))", TRADE, &["360n"]),
    measure("3610", "3615", "NET VOLUME (gal.)", TRADE, &["361n"]),
    measure("3620", "3625", "VOLUME (qt (US)), log", LOGISTIC, &["362n"]),
    measure(
        "3630",
        "3635",
        "VOLUME (gal (US)), log",
        LOGISTIC,
        &["363n"],
    ),
    measure("3640", "3645", "NET VOLUME (in³)", TRADE, &["364n"]),
    measure("3650", "3655", "NET VOLUME (ft³)", TRADE, &["365n"]),
    measure("3660", "3665", "NET VOLUME (yd³)", TRADE, &["366n"]),
    measure("3670", "3675", "VOLUME (in³), log", LOGISTIC, &["367n"]),
    measure("3680", "3685", "VOLUME (ft³), log", LOGISTIC, &["368n"]),
    measure("3690", "3695", "VOLUME (yd³), log", LOGISTIC, &["369n"]),
    AiDef::one("37", "?", &[NV8], "COUNT").req(&["00", "02,8026"]),
    AiDef::new("3900", "3909", "?", &[NV15], "AMOUNT")
        .req(&["255,8020"])
        .ex(&["390n,391n,394n,8111"]),
    AiDef::new("3910", "3919", "?", &[N3, NV15], "AMOUNT")
        .req(&["8020"])
        .ex(&["391n"]),
    AiDef::new("3920", "3929", "?", &[NV15], "PRICE")
        .req(&["01", "30,31nn,32nn,35nn,36nn"])
        .ex(&["392n,393n"]),
    AiDef::new("3930", "3939", "?", &[N3, NV15], "PRICE")
        .req(&["30,31nn,32nn,35nn,36nn"])
        .ex(&["393n"]),
    AiDef::one("400", "?", &[X30], "ORDER NUMBER"),
    AiDef::one("401", "?", &[X30], "GINC").dlpkey(""),
    AiDef::one("402", "?", &[N17_CSUM], "GSIN").dlpkey(""),
    AiDef::one("403", "?", &[X30], "ROUTE").req(&["00"]),
    AiDef::one("410", "*?", &[N13_CSUM], "SHIP TO LOC"),
    AiDef::one("411", "*?", &[N13_CSUM], "BILL TO"),
    AiDef::one("412", "*?", &[N13_CSUM], "PURCHASE FROM"),
    AiDef::one("413", "*?", &[N13_CSUM], "SHIP FOR LOC"),
    AiDef::one("414", "*?", &[N13_CSUM], "LOC No.").dlpkey("254|7040"),
    AiDef::one("415", "*?", &[N13_CSUM], "PAY TO")
        .req(&["8020"])
        .dlpkey("8020"),
    AiDef::one("416", "*?", &[N13_CSUM], "PROD/SERV LOC"),
    AiDef::one("420", "?", &[X20], "SHIP TO POST").ex(&["421"]),
    AiDef::one("421", "?", &[N3, Component::var(Cset82, 9)], "SHIP TO POST").ex(&["4307"]),
    AiDef::one("422", "?", &[N3], "ORIGIN")
        .req(&["01,02,8006,8026"])
        .ex(&["426"]),
    AiDef::one(
        "7003",
        "?",
        &[
            Component::fixed(Numeric, 6).lint(&[Yymmdd]),
            Component::fixed(Numeric, 4).lint(&[Hhmi]),
        ],
        "EXPIRY TIME",
    )
    .req(TRADE),
    AiDef::one(
        "8003",
        "?",
        &[
            Component::fixed(Numeric, 1).lint(&[Zero]),
            N13_CSUM,
            Component::var(Cset82, 16).opt(),
        ],
        "GRAI",
    )
    .dlpkey(""),
    AiDef::one("8004", "?", &[X30], "GIAI").dlpkey("7040"),
    AiDef::one(
        "8006",
        "?",
        &[N14_CSUM, Component::fixed(Numeric, 4).lint(&[PieceOfTotal])],
        "ITIP",
    )
    .ex(&["01,37"])
    .dlpkey("22,10,21"),
    AiDef::one("8018", "?", &[N18_CSUM], "GSRN - RECIPIENT")
        .ex(&["8017"])
        .dlpkey("8019"),
    AiDef::one("8020", "", &[X25], "REF No.").req(&["415"]),
    AiDef::one("90", "?", &[X30], "INTERNAL"),
    AiDef::new("91", "99", "?", &[X90], "INTERNAL"),
];

/// The definition of `ai` (a complete AI such as `"3103"`), if we know it.
pub fn lookup(ai: &str) -> Option<&'static AiDef> {
    AI_TABLE.iter().find(|d| d.matches(ai))
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
            ("3103", Some("NET WEIGHT (kg)")),
            ("3106", None),
            ("3922", Some("PRICE")),
            ("414", Some("LOC No.")),
            ("95", Some("INTERNAL")),
            ("23", None),
            ("0", None),
            ("abc", None),
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
        let d = lookup("3103").map(|d| d.decimal_places("3103"));
        assert_eq!(d, Some(Some(3)));
        assert_eq!(lookup("10").map(|d| d.decimal_places("10")), Some(None));
    }

    /// Parses one component such as `N13,csum,gcppos1`, `[X..16]` or `[N3],iso3166`.
    fn parse_component(tok: &str) -> Option<(char, u8, u8, bool, Vec<String>)> {
        let optional = tok.starts_with('[');
        let tok = tok.replace(['[', ']'], "");
        let mut parts = tok.split(',');
        let ty = parts.next()?;
        let mut chars = ty.chars();
        let cs = chars.next()?;
        if !matches!(cs, 'N' | 'X' | 'Y' | 'Z') {
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
        Some((cs, min, max, optional, parts.map(str::to_owned).collect()))
    }

    struct DictEntry {
        first: String,
        last: String,
        flags: String,
        components: Vec<(char, u8, u8, bool, Vec<String>)>,
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
        assert!(
            dict.len() > 100,
            "dictionary parsed to only {} entries",
            dict.len()
        );
        for d in AI_TABLE {
            let Some(e) = dict.iter().find(|e| e.first == d.first && e.last == d.last) else {
                panic!("AI {}-{} is not a row of the dictionary", d.first, d.last);
            };
            let ai = d.first;
            assert_eq!(d.title, e.title, "AI {ai} title");
            assert_eq!(d.fnc1_required, !e.flags.contains('*'), "AI {ai} FNC1 flag");
            assert_eq!(
                d.dl_attribute,
                e.flags.contains('?'),
                "AI {ai} DL attribute flag"
            );
            assert_eq!(
                d.components.len(),
                e.components.len(),
                "AI {ai} component count"
            );
            for (c, (cs, min, max, optional, linters)) in d.components.iter().zip(&e.components) {
                assert_eq!(c.charset.letter(), *cs, "AI {ai} charset");
                assert_eq!(
                    (c.min, c.max, c.optional),
                    (*min, *max, *optional),
                    "AI {ai} length"
                );
                for l in c.linters {
                    assert!(
                        linters.iter().any(|n| n == l.name()),
                        "AI {ai} linter {}",
                        l.name()
                    );
                }
                // Every linter we implement must be applied wherever the dictionary asks for it.
                for n in linters {
                    let implemented = [Csum, Yymmd0, Yymmdd, Hhmi, Zero, PieceOfTotal];
                    if let Some(l) = implemented.iter().find(|l| l.name() == n) {
                        assert!(c.linters.contains(l), "AI {ai} misses linter {n}");
                    }
                }
            }
            let req: Vec<&str> = d.req.to_vec();
            assert_eq!(req, e.req, "AI {ai} req");
            let ex: Vec<&str> = d.ex.to_vec();
            assert_eq!(ex, e.ex, "AI {ai} ex");
            assert_eq!(d.dlpkey.map(str::to_owned), e.dlpkey, "AI {ai} dlpkey");
        }
    }
}
