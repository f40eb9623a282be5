//! Property tests over the whole AI table: for every AI, random valid values survive all three textual forms (GS
//! element string, bracketed HRI and, where the AI may appear there, Digital Link).

use super::ai::{self, AiDef, Charset, Linter};
use super::lint::check_character_pair;
use super::{check, iso, parse_bracketed, parse_digital_link, parse_element_string};
use super::{to_digital_link, to_element_string, to_hri, Element};
use proptest::prelude::*;

const GS: u8 = 0x1d;

/// A small deterministic generator (SplitMix64), so one proptest seed drives values for every AI.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64 - 1) as usize]
    }

    fn chars(&mut self, set: &[u8], len: usize) -> String {
        (0..len).map(|_| char::from(*self.pick(set))).collect()
    }
}

const DIGITS: &[u8] = b"0123456789";
const CSET39: &[u8] = b"#-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A random valid value for one component of length `len`.
fn component_value(rng: &mut Rng, c: &ai::Component, len: usize) -> String {
    let set: &[u8] = match c.charset {
        Charset::Numeric => DIGITS,
        // `%` only ever as part of a valid escape, which `pcenc` needs; leaving it out keeps every row simple.
        Charset::Cset82 => {
            b"!\"&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
        }
        Charset::Cset39 => CSET39,
        Charset::Base64Url => B64URL,
    };
    let two = |n: u64| format!("{n:02}");
    let date6 = |rng: &mut Rng, zero_day: bool| {
        let dd = if zero_day && rng.range(0, 3) == 0 {
            0
        } else {
            rng.range(1, 28)
        };
        format!(
            "{}{}{}",
            two(rng.range(0, 99)),
            two(rng.range(1, 12)),
            two(dd)
        )
    };
    for l in c.linters {
        match l {
            Linter::Csum => {
                let body = rng.chars(DIGITS, len - 1);
                let cd = check::gs1_check_digit(&body).unwrap_or(0);
                return format!("{body}{cd}");
            }
            Linter::CsumAlpha => {
                let len = len.max(3);
                // `hasnondigit` (AI 8014) is satisfied by a leading letter.
                let body = format!("A{}", rng.chars(set, len - 3));
                let pair = check_character_pair(body.as_bytes()).unwrap_or(*b"22");
                return format!("{body}{}", String::from_utf8_lossy(&pair));
            }
            Linter::Yymmd0 => return date6(rng, true),
            Linter::Yymmdd => return date6(rng, false),
            Linter::Yyyymmdd => {
                return format!(
                    "{}{}{}",
                    rng.range(1900, 2099),
                    two(rng.range(1, 12)),
                    two(rng.range(1, 28))
                )
            }
            Linter::Hhmi => return format!("{}{}", two(rng.range(0, 23)), two(rng.range(0, 59))),
            Linter::Hh => return two(rng.range(0, 23)),
            Linter::Mi | Linter::Ss => return two(rng.range(0, 59)),
            Linter::Iso3166 => return (*rng.pick(iso::ISO3166_NUMERIC)).to_owned(),
            Linter::Iso3166999 => {
                return if rng.range(0, 9) == 0 {
                    "999".to_owned()
                } else {
                    (*rng.pick(iso::ISO3166_NUMERIC)).to_owned()
                }
            }
            Linter::Iso3166Alpha2 => return (*rng.pick(iso::ISO3166_ALPHA2)).to_owned(),
            Linter::Iso4217 => return rng.pick(iso::ISO4217).0.to_owned(),
            Linter::Iso5218 => return (*rng.pick(&["0", "1", "2", "9"])).to_owned(),
            Linter::Latitude => return format!("{:010}", rng.range(0, 1_800_000_000)),
            Linter::Longitude => return format!("{:010}", rng.range(0, 3_600_000_000)),
            Linter::MediaType => return two(*rng.pick(&[1, 5, 10, 80, 99])),
            Linter::NonZero | Linter::NoZeroPrefix => {
                return format!("{}{}", rng.range(1, 9), rng.chars(DIGITS, len - 1))
            }
            Linter::PieceOfTotal => {
                let total = rng.range(1, 99);
                return format!("{}{}", two(rng.range(1, total)), two(total));
            }
            Linter::PosInSeqSlash => {
                let total = rng.range(1, 9);
                return format!("{}/{total}", rng.range(1, total));
            }
            Linter::Winding => return (*rng.pick(&["0", "1", "9"])).to_owned(),
            Linter::YesNo => return (*rng.pick(&["0", "1"])).to_owned(),
            Linter::Zero => return "0".to_owned(),
            Linter::Hyphen => return "-".to_owned(),
            Linter::ImporterIdx => return rng.chars(B64URL, 1),
            Linter::Iban => return iban(rng, usize::from(c.max)),
            _ => {}
        }
    }
    rng.chars(set, len)
}

/// A valid IBAN of at most `max` characters.
fn iban(rng: &mut Rng, max: usize) -> String {
    let country = *rng.pick(iso::ISO3166_ALPHA2);
    let len = rng.range(1, (max - 4) as u64) as usize;
    let bban = rng.chars(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", len);
    let mut rem = 0u64;
    for b in format!("{bban}{country}00").bytes() {
        let v = if b.is_ascii_digit() {
            u64::from(b - b'0')
        } else {
            u64::from(b - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    format!("{country}{:02}{bban}", 98 - rem)
}

/// A random valid value for `def`, respecting optional components and variable lengths.
fn value_for(rng: &mut Rng, def: &AiDef) -> String {
    let mut out = String::new();
    for c in def.components {
        if c.optional && rng.range(0, 2) == 0 {
            break;
        }
        let len = rng.range(u64::from(c.min), u64::from(c.max)) as usize;
        out.push_str(&component_value(rng, c, len));
    }
    out
}

fn element(rng: &mut Rng, ai: &str) -> Element {
    let def = ai::lookup(ai).unwrap_or_else(|| unreachable!("AI {ai} from the table"));
    Element::new(ai, value_for(rng, def))
}

/// Asserts that `els` survive the element string and HRI forms.
fn check_textual(els: &[Element]) -> Result<(), TestCaseError> {
    let es = to_element_string(els, GS);
    prop_assert_eq!(
        parse_element_string(&es, GS),
        Ok(els.to_vec()),
        "{:?}",
        String::from_utf8_lossy(&es)
    );
    let hri = to_hri(els);
    prop_assert_eq!(parse_bracketed(&hri), Ok(els.to_vec()), "{}", hri);
    Ok(())
}

fn check_dl(els: &[Element]) -> Result<(), TestCaseError> {
    let uri = to_digital_link(els);
    prop_assert!(uri.is_some(), "no Digital Link for {}", to_hri(els));
    let uri = uri.unwrap_or_default();
    prop_assert_eq!(parse_digital_link(&uri), Ok(els.to_vec()), "{}", uri);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_ai_round_trips(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let all: Vec<(String, &AiDef)> = ai::all_ais().collect();
        for (ai, def) in &all {
            let e = element(&mut rng, ai);
            check_textual(std::slice::from_ref(&e))?;
            // Next to a variable-length and a fixed-length neighbour, in both orders, so FNC1 placement is tested.
            let (other, _) = rng.pick(&all);
            if other != ai {
                let o = element(&mut rng, other);
                check_textual(&[e.clone(), o.clone()])?;
                check_textual(&[o, e.clone()])?;
            }
            // Digital Link: as a primary key with each of its qualifier orders, and as a data attribute.
            for order in def.dl_qualifier_paths() {
                let mut els = vec![e.clone()];
                for q in order {
                    if rng.range(0, 3) > 0 {
                        els.push(element(&mut rng, q));
                    }
                }
                check_dl(&els)?;
            }
            if def.dl_attribute && ai != "01" {
                let gtin = element(&mut rng, "01");
                check_dl(&[gtin, e.clone()])?;
            }
        }
    }
}
