//! USB HID scanner reports: HID POS (usage page 0x8C) and boot-keyboard (keyboard wedge) decoding, sans-IO.
//!
//! The agent reads input reports from the device (rusb) and pushes each one, as received, into a decoder here.
//! Nothing in this module touches USB or a clock.
//!
//! # HID POS
//!
//! A scanner in HID POS mode ("Bar Code Scanner" usage, page 0x8C) sends its scans in *scanned data reports* of at
//! most 64 bytes: a report id, a length byte, the symbology, the data and, for long barcodes, a "more data follows"
//! flag so that one scan spans several reports. Vendors place these fields differently, so a [`HidPosProfile`] says
//! where each one sits. Named profiles (byte offsets count the report id as byte 0):
//!
//! ```text
//! honeywell  byte 0      report id 0x02
//!            byte 1      number of data bytes in this report (0..=56; the AIM id is not counted)
//!            bytes 2..5  AIM symbology identifier, `]` + code + modifier (e.g. `]C1`); all zero = none
//!            bytes 5..61 data
//!            bytes 61,62 Honeywell Code ID and a reserved byte (ignored)
//!            byte 63     bit 0 set = more data follows in the next report
//! newland    byte 0      report id 0x02
//!            byte 1      number of data bytes in this report (0..=56)
//!            bytes 2..58 data
//!            bytes 58..62 reserved
//!            byte 62     Newland symbology code, 0x00 = none (ignored: not an AIM id)
//!            no flag     a long scan arrives as several reports back to back; the scan ends when the device goes
//!                        quiet (the caller calls `HidPosDecoder::finish`)
//! zebra      no report id
//!            byte 0      number of data bytes in this report (1..=63)
//!            bytes 1..64 data
//!            no flag     as newland: the scan ends when the device goes quiet
//! generic    byte 0      report id 0x02
//!            byte 1      number of data bytes in this report (0..=62)
//!            bytes 2..64 data
//!            no flag     as newland
//! ```
//!
//! Where these layouts come from, as far as we know them (none was checked against a device here: there is no USB
//! bus on the build machine):
//!
//! - `honeywell` follows Honeywell's HID POS description and published captures of Honeywell imagers (report
//!   `02 38 5d 58 30 ...`, trailer `3f 00 01` on every report but the last). We are fairly confident of it.
//! - `newland` follows the input-report table printed in Newland's programming material for its HID POS mode
//!   (reproduced in public driver code). It documents no continuation flag; the quiet-gap rule is our assumption.
//! - `zebra` follows the Symbol/Zebra "Simple COM Port Emulation" HID mode as read by public reader code (a length
//!   byte, then up to 63 data bytes, chunks reassembled until the device goes quiet). We have not seen Zebra's own
//!   document for it; treat it as uncertain. Zebra's SNAPI mode is a different, command-based protocol and is not
//!   supported.
//! - `generic` is our own fallback for unbranded scanners that put the data right after the length byte.
//!
//! Where a profile has no AIM field (or the field is empty), an AIM identifier at the start of the data is split off
//! in band, so configure such scanners to transmit AIM ids.
//!
//! Call order: [`HidPosDecoder::push_report`] for every input report; when no report arrived for a while (the agent
//! uses 100 ms), call [`HidPosDecoder::finish`]: it completes a quiet-gap scan, or reports a flagged scan whose last
//! report never came. Errors never poison the decoder: after one, it accepts the next scan.
//!
//! # Keyboard wedge
//!
//! A scanner in keyboard mode types the barcode as a USB boot keyboard: 8-byte reports of a modifier byte, a
//! reserved byte and up to six pressed keycodes (HID usage page 0x07). [`KeyboardDecoder`] turns key presses back
//! into bytes for a [`KeyboardLayout`] and ends a scan on the [`KeyTerminator`]. A key counts when it appears in a
//! report and was not in the previous one (so a held key is not repeated and the same character twice needs a release
//! in between, as on a real keyboard). Control-character mode: Ctrl with a key yields that character's control code
//! (Ctrl+] = GS 0x1D, the FNC1 substitute most wedges send; Ctrl+M = CR); Alt held while typing a decimal code on the
//! keypad yields that byte when Alt is released (Alt+0029 = GS).

use std::collections::VecDeque;

use crate::scan::{split_aim, RawScan};

/// The largest input report accepted, in bytes: HID POS scanned data reports and full-speed interrupt packets.
pub const MAX_REPORT_LEN: usize = 64;

/// The longest scan reassembled from several reports, in bytes (a GS1 DataMatrix holds at most about 2.3 KB).
pub const MAX_MESSAGE_LEN: usize = 8 * 1024;

/// The length of a boot keyboard input report.
pub const BOOT_KEYBOARD_REPORT_LEN: usize = 8;

/// Why a report could not be decoded. The decoder stays usable after every error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HidError {
    /// The report is longer than [`MAX_REPORT_LEN`].
    #[error("HID report of {len} bytes is longer than {max}")]
    ReportTooLong {
        /// The report's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The report ends before a field the profile needs.
    #[error(
        "HID report of {len} bytes is too short for profile {profile} (needs at least {need})"
    )]
    Truncated {
        /// The report's length.
        len: usize,
        /// Bytes the profile needs.
        need: usize,
        /// The profile's name.
        profile: &'static str,
    },
    /// Not the scanned data report the profile expects (another report type, or the wrong profile).
    #[error("HID report id {found:#04x} is not the scanned data report {expected:#04x} of profile {profile}")]
    WrongReportId {
        /// The profile's report id.
        expected: u8,
        /// The report's first byte.
        found: u8,
        /// The profile's name.
        profile: &'static str,
    },
    /// The length byte claims more data than the report (or the profile's data area) holds.
    #[error("HID length byte {length} is past the end of the data area ({max} bytes) in profile {profile}")]
    LengthPastReport {
        /// The length byte.
        length: u8,
        /// Data bytes this report can hold.
        max: usize,
        /// The profile's name.
        profile: &'static str,
    },
    /// A report with no data that neither continues nor ends a scan.
    #[error("HID scanned data report with length 0")]
    EmptyReport,
    /// The symbology bytes are neither empty nor an AIM identifier.
    #[error("HID symbology bytes {bytes:02x?} are not an AIM identifier")]
    BadSymbology {
        /// The three bytes.
        bytes: [u8; 3],
    },
    /// A multi-report scan grew past [`MAX_MESSAGE_LEN`]; its remaining reports are dropped.
    #[error("HID scan longer than {max} bytes; discarded")]
    MessageTooLong {
        /// The limit.
        max: usize,
    },
    /// The device went quiet while a scan flagged "more data follows"; the partial scan is dropped.
    #[error(
        "HID scan incomplete: {reports} report(s), {bytes} bytes, but the last report never came"
    )]
    Incomplete {
        /// Reports received for the scan.
        reports: usize,
        /// Data bytes received.
        bytes: usize,
    },
    /// A keyboard report that is not 8 bytes long.
    #[error("keyboard report of {len} bytes; a boot keyboard report has 8")]
    KeyboardReportLength {
        /// The report's length.
        len: usize,
    },
    /// A keycode the layout does not map (with these modifiers); the scan in progress is dropped.
    #[error(
        "keyboard wedge: unknown keycode {keycode:#04x} (modifiers {modifiers:#04x}) for layout {layout}; \
         scan discarded, check the scanner's keyboard country setting"
    )]
    UnknownKeycode {
        /// The HID keyboard usage id.
        keycode: u8,
        /// The modifier byte held with it.
        modifiers: u8,
        /// The layout's name.
        layout: &'static str,
    },
    /// The keyboard reported an error state (usage 0x02 POSTFail or 0x03 ErrorUndefined).
    #[error("keyboard reported error state {code:#04x}")]
    KeyboardError {
        /// The error usage.
        code: u8,
    },
    /// An Alt+numpad code above 255.
    #[error("keyboard wedge: Alt+numpad code {value} is not a byte; scan discarded")]
    BadAltCode {
        /// The decimal value typed.
        value: u32,
    },
}

/// Where a profile finds the symbology of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbologyField {
    /// No field: an AIM id at the start of the data is split off in band.
    None,
    /// Three bytes `]` + code + modifier at this offset, all zero when the scanner sends none.
    Aim {
        /// Offset in the report.
        offset: usize,
    },
    /// A one-byte vendor symbology code at this offset. It is not an AIM id, so it is not reported; an AIM id at
    /// the start of the data is split off in band.
    VendorCode {
        /// Offset in the report.
        offset: usize,
    },
}

/// How a profile tells that more reports of the same scan follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuation {
    /// A flag bit: set = more data follows, clear = this report ends the scan.
    Flag {
        /// Offset of the flag byte in the report.
        offset: usize,
        /// The bit(s) that mean "more data follows".
        mask: u8,
    },
    /// No flag: the scan ends when the device goes quiet ([`HidPosDecoder::finish`]).
    QuietGap,
}

/// Where a vendor puts the fields of its HID POS scanned data report. See the module docs for the named profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HidPosProfile {
    /// Short name, used in errors and config (`profile = "honeywell"`).
    pub name: &'static str,
    /// The scanned data report's id in byte 0, or `None` when the device sends no report id.
    pub report_id: Option<u8>,
    /// Offset of the length byte.
    pub length_offset: usize,
    /// The length byte counts the report from byte 0 up to the end of the data, not only the data.
    pub length_includes_header: bool,
    /// Where the symbology sits.
    pub symbology: SymbologyField,
    /// Offset of the first data byte.
    pub data_offset: usize,
    /// The most data bytes one report carries (the data area ends before any trailer).
    pub max_data: usize,
    /// How a multi-report scan is marked.
    pub continuation: Continuation,
}

impl HidPosProfile {
    /// Honeywell / Hand Held Products imagers in HID POS mode (see the module docs).
    pub const HONEYWELL: HidPosProfile = HidPosProfile {
        name: "honeywell",
        report_id: Some(0x02),
        length_offset: 1,
        length_includes_header: false,
        symbology: SymbologyField::Aim { offset: 2 },
        data_offset: 5,
        max_data: 56,
        continuation: Continuation::Flag {
            offset: 63,
            mask: 0x01,
        },
    };

    /// Newland scanners in HID POS mode (see the module docs).
    pub const NEWLAND: HidPosProfile = HidPosProfile {
        name: "newland",
        report_id: Some(0x02),
        length_offset: 1,
        length_includes_header: false,
        symbology: SymbologyField::VendorCode { offset: 62 },
        data_offset: 2,
        max_data: 56,
        continuation: Continuation::QuietGap,
    };

    /// Symbol / Zebra "Simple COM Port Emulation" HID mode (see the module docs; uncertain).
    pub const ZEBRA: HidPosProfile = HidPosProfile {
        name: "zebra",
        report_id: None,
        length_offset: 0,
        length_includes_header: false,
        symbology: SymbologyField::None,
        data_offset: 1,
        max_data: 63,
        continuation: Continuation::QuietGap,
    };

    /// Our fallback: report id 2, length, data, scan ends when the device goes quiet.
    pub const GENERIC: HidPosProfile = HidPosProfile {
        name: "generic",
        report_id: Some(0x02),
        length_offset: 1,
        length_includes_header: false,
        symbology: SymbologyField::None,
        data_offset: 2,
        max_data: 62,
        continuation: Continuation::QuietGap,
    };

    /// The named profiles, for config lookup.
    pub const ALL: [HidPosProfile; 4] = [
        HidPosProfile::HONEYWELL,
        HidPosProfile::NEWLAND,
        HidPosProfile::ZEBRA,
        HidPosProfile::GENERIC,
    ];

    /// A named profile by its config name.
    pub fn by_name(name: &str) -> Option<HidPosProfile> {
        Self::ALL.into_iter().find(|p| p.name == name)
    }

    /// The fewest bytes a report must have for the header fields (data may be shorter than `max_data`).
    fn min_len(&self) -> usize {
        let mut need = self.length_offset + 1;
        if let SymbologyField::Aim { offset } = self.symbology {
            need = need.max(offset + 3);
        }
        need
    }
}

/// Reassembles HID POS scanned data reports into scans. See the module docs for the call order.
#[derive(Debug, Clone)]
pub struct HidPosDecoder {
    profile: HidPosProfile,
    /// Data of the scan in progress.
    data: Vec<u8>,
    /// The AIM id from the first report of the scan in progress.
    symbology: Option<String>,
    /// Reports received for the scan in progress.
    reports: usize,
    /// An overlong scan is being dropped up to its last report.
    discarding: bool,
}

impl HidPosDecoder {
    /// A decoder for one device with this layout.
    pub fn new(profile: HidPosProfile) -> Self {
        HidPosDecoder {
            profile,
            data: Vec::new(),
            symbology: None,
            reports: 0,
            discarding: false,
        }
    }

    /// The profile in use.
    pub fn profile(&self) -> &HidPosProfile {
        &self.profile
    }

    /// A scan is in progress (some of its reports arrived).
    pub fn is_pending(&self) -> bool {
        self.reports > 0 || self.discarding
    }

    /// Drops the scan in progress, e.g. after the device was unplugged. Returns whether anything was dropped.
    pub fn reset(&mut self) -> bool {
        let pending = self.is_pending();
        self.data.clear();
        self.symbology = None;
        self.reports = 0;
        self.discarding = false;
        pending
    }

    /// Decodes one input report. Returns the scan when this report completes one (only with
    /// [`Continuation::Flag`]; quiet-gap scans complete in [`Self::finish`]).
    ///
    /// A report that is not a scanned data report (wrong id) is an error but leaves the scan in progress alone, since
    /// scanners interleave status reports; a malformed scanned data report drops the scan in progress.
    pub fn push_report(&mut self, report: &[u8]) -> Result<Option<RawScan>, HidError> {
        let p = self.profile;
        if report.len() > MAX_REPORT_LEN {
            return Err(HidError::ReportTooLong {
                len: report.len(),
                max: MAX_REPORT_LEN,
            });
        }
        if let Some(expected) = p.report_id {
            match report.first() {
                Some(&found) if found != expected => {
                    return Err(HidError::WrongReportId {
                        expected,
                        found,
                        profile: p.name,
                    })
                }
                _ => {}
            }
        }
        let parsed = self.parse(report);
        let (data, more) = match parsed {
            Ok(v) => v,
            Err(e) => {
                self.reset();
                return Err(e);
            }
        };
        if self.discarding {
            if !more {
                self.discarding = false;
            }
            return Ok(None);
        }
        if data.is_empty() && !more && self.reports == 0 && p.continuation != Continuation::QuietGap
        {
            return Err(HidError::EmptyReport);
        }
        if data.is_empty() && p.continuation == Continuation::QuietGap {
            // Without a flag an empty report carries nothing: no scan starts or grows.
            return Err(HidError::EmptyReport);
        }
        if self.reports == 0 {
            self.symbology = self.parse_aim(report)?;
        }
        if self.data.len() + data.len() > MAX_MESSAGE_LEN {
            self.reset();
            // With a flag we know where the scan ends, so drop its remaining reports too.
            self.discarding = more;
            return Err(HidError::MessageTooLong {
                max: MAX_MESSAGE_LEN,
            });
        }
        self.data.extend_from_slice(data);
        self.reports += 1;
        if more || p.continuation == Continuation::QuietGap {
            return Ok(None);
        }
        Ok(self.take())
    }

    /// Called when the device has been quiet for a while: completes a quiet-gap scan, or reports a flagged scan whose
    /// last report never came (and drops it).
    pub fn finish(&mut self) -> Result<Option<RawScan>, HidError> {
        if !self.is_pending() {
            return Ok(None);
        }
        match self.profile.continuation {
            Continuation::QuietGap if !self.discarding => Ok(self.take()),
            _ => {
                let err = HidError::Incomplete {
                    reports: self.reports,
                    bytes: self.data.len(),
                };
                self.reset();
                Err(err)
            }
        }
    }

    /// Data bytes and the "more follows" flag of one scanned data report.
    fn parse<'r>(&self, report: &'r [u8]) -> Result<(&'r [u8], bool), HidError> {
        let p = &self.profile;
        let need = p.min_len();
        if report.len() < need {
            return Err(HidError::Truncated {
                len: report.len(),
                need,
                profile: p.name,
            });
        }
        let length = report[p.length_offset];
        let data_len = if p.length_includes_header {
            usize::from(length).checked_sub(p.data_offset)
        } else {
            Some(usize::from(length))
        };
        let past = HidError::LengthPastReport {
            length,
            max: p.max_data,
            profile: p.name,
        };
        let data_len = data_len.ok_or(past.clone())?;
        if data_len > p.max_data {
            return Err(past);
        }
        let data = report
            .get(p.data_offset..p.data_offset + data_len)
            .ok_or(past)?;
        let more = match p.continuation {
            Continuation::Flag { offset, mask } => {
                // A short packet that ends right after its data cannot carry the flag: it ends the scan.
                report.get(offset).is_some_and(|b| b & mask != 0)
            }
            Continuation::QuietGap => false,
        };
        Ok((data, more))
    }

    fn parse_aim(&self, report: &[u8]) -> Result<Option<String>, HidError> {
        let SymbologyField::Aim { offset } = self.profile.symbology else {
            return Ok(None);
        };
        let Some(&[a, b, c]) = report.get(offset..offset + 3) else {
            return Ok(None);
        };
        if [a, b, c] == [0, 0, 0] {
            return Ok(None);
        }
        match split_aim(&[a, b, c]) {
            (Some(id), _) => Ok(Some(id)),
            (None, _) => Err(HidError::BadSymbology { bytes: [a, b, c] }),
        }
    }

    fn take(&mut self) -> Option<RawScan> {
        let data = std::mem::take(&mut self.data);
        let symbology = self.symbology.take();
        self.reset();
        if data.is_empty() {
            return None;
        }
        Some(match symbology {
            _ if matches!(self.profile.symbology, SymbologyField::Aim { .. }) => {
                RawScan { symbology, data }
            }
            Some(symbology) => RawScan {
                symbology: Some(symbology),
                data,
            },
            None => {
                let (symbology, rest) = split_aim(&data);
                RawScan {
                    symbology,
                    data: rest.to_vec(),
                }
            }
        })
    }
}

/// A keyboard layout: which character each boot-keyboard keycode types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyboardLayout {
    /// US English (QWERTY).
    Us,
    /// German (QWERTZ). Dead keys (`^`, `´`, `` ` ``) type their character at once; the space a scanner sends after
    /// a dead key is dropped.
    De,
}

impl KeyboardLayout {
    /// The config name (`"us"`, `"de"`).
    pub fn name(self) -> &'static str {
        match self {
            KeyboardLayout::Us => "us",
            KeyboardLayout::De => "de",
        }
    }

    /// A layout by its config name.
    pub fn by_name(name: &str) -> Option<KeyboardLayout> {
        match name {
            "us" => Some(KeyboardLayout::Us),
            "de" => Some(KeyboardLayout::De),
            _ => None,
        }
    }

    /// The character for a keycode with shift / AltGr, or `None` when the layout has none.
    fn char_for(self, keycode: u8, shift: bool, altgr: bool) -> Option<char> {
        if let Some(c) = keypad(keycode) {
            return Some(c);
        }
        match self {
            KeyboardLayout::Us => us_char(keycode, shift),
            KeyboardLayout::De if altgr => de_altgr(keycode),
            KeyboardLayout::De => de_char(keycode, shift),
        }
    }

    fn is_dead(self, keycode: u8, shift: bool) -> bool {
        // DE: ^ (0x35 unshifted), ´ and ` (0x2E).
        self == KeyboardLayout::De && (keycode == 0x35 && !shift || keycode == 0x2E)
    }
}

/// Keys common to every layout: letters are handled per layout, these are not.
fn common(keycode: u8) -> Option<char> {
    Some(match keycode {
        0x2C => ' ',
        _ => return None,
    })
}

/// Keypad keys, NumLock on (scanners type digits on the keypad in some modes).
fn keypad(keycode: u8) -> Option<char> {
    Some(match keycode {
        0x54 => '/',
        0x55 => '*',
        0x56 => '-',
        0x57 => '+',
        0x59..=0x61 => char::from(b'1' + (keycode - 0x59)),
        0x62 => '0',
        0x63 => '.',
        _ => return None,
    })
}

fn letter(keycode: u8, shift: bool) -> Option<char> {
    (0x04..=0x1D).contains(&keycode).then(|| {
        let c = b'a' + (keycode - 0x04);
        char::from(if shift { c.to_ascii_uppercase() } else { c })
    })
}

fn us_char(keycode: u8, shift: bool) -> Option<char> {
    if let Some(c) = letter(keycode, shift).or_else(|| common(keycode)) {
        return Some(c);
    }
    const DIGITS: &[u8; 10] = b"1234567890";
    const SHIFTED: &[u8; 10] = b"!@#$%^&*()";
    if (0x1E..=0x27).contains(&keycode) {
        let i = usize::from(keycode - 0x1E);
        return Some(char::from(if shift { SHIFTED[i] } else { DIGITS[i] }));
    }
    let (plain, shifted) = match keycode {
        0x2D => ('-', '_'),
        0x2E => ('=', '+'),
        0x2F => ('[', '{'),
        0x30 => (']', '}'),
        0x31 => ('\\', '|'),
        0x32 => ('#', '~'), // non-US # key, as on a UK board
        0x33 => (';', ':'),
        0x34 => ('\'', '"'),
        0x35 => ('`', '~'),
        0x36 => (',', '<'),
        0x37 => ('.', '>'),
        0x38 => ('/', '?'),
        0x64 => ('\\', '|'), // non-US \ key
        _ => return None,
    };
    Some(if shift { shifted } else { plain })
}

fn de_char(keycode: u8, shift: bool) -> Option<char> {
    // QWERTZ: Y and Z swap places.
    let keycode = match keycode {
        0x1C => 0x1D,
        0x1D => 0x1C,
        k => k,
    };
    if let Some(c) = letter(keycode, shift).or_else(|| common(keycode)) {
        return Some(c);
    }
    const DIGITS: [char; 10] = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '0'];
    const SHIFTED: [char; 10] = ['!', '"', '§', '$', '%', '&', '/', '(', ')', '='];
    if (0x1E..=0x27).contains(&keycode) {
        let i = usize::from(keycode - 0x1E);
        return Some(if shift { SHIFTED[i] } else { DIGITS[i] });
    }
    let (plain, shifted) = match keycode {
        0x2D => ('ß', '?'),
        0x2E => ('´', '`'),
        0x2F => ('ü', 'Ü'),
        0x30 => ('+', '*'),
        0x32 | 0x31 => ('#', '\''),
        0x33 => ('ö', 'Ö'),
        0x34 => ('ä', 'Ä'),
        0x35 => ('^', '°'),
        0x36 => (',', ';'),
        0x37 => ('.', ':'),
        0x38 => ('-', '_'),
        0x64 => ('<', '>'),
        _ => return None,
    };
    Some(if shift { shifted } else { plain })
}

fn de_altgr(keycode: u8) -> Option<char> {
    Some(match keycode {
        0x14 => '@',
        0x08 => '€',
        0x1F => '²',
        0x20 => '³',
        0x24 => '{',
        0x25 => '[',
        0x26 => ']',
        0x27 => '}',
        0x2D => '\\',
        0x30 => '~',
        0x64 => '|',
        0x10 => 'µ',
        _ => return None,
    })
}

/// Which key ends a keyboard-wedge scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTerminator {
    /// Enter (0x28) or keypad Enter (0x58).
    Enter,
    /// Tab (0x2B).
    Tab,
    /// Either.
    EnterOrTab,
}

impl KeyTerminator {
    fn ends_scan(self, keycode: u8) -> bool {
        let enter = keycode == 0x28 || keycode == 0x58;
        let tab = keycode == 0x2B;
        match self {
            KeyTerminator::Enter => enter,
            KeyTerminator::Tab => tab,
            KeyTerminator::EnterOrTab => enter || tab,
        }
    }
}

const MOD_CTRL: u8 = 0x01 | 0x10;
const MOD_SHIFT: u8 = 0x02 | 0x20;
const MOD_LALT: u8 = 0x04;
const MOD_RALT: u8 = 0x40;

/// Keyboard-wedge decoder: boot keyboard reports in, scans out. See the module docs.
#[derive(Debug, Clone)]
pub struct KeyboardDecoder {
    layout: KeyboardLayout,
    terminator: KeyTerminator,
    /// Keycodes held in the previous report.
    held: [u8; 6],
    /// The scan being typed.
    buf: Vec<u8>,
    /// Scans completed but not yet returned (two terminators in one report).
    done: VecDeque<Vec<u8>>,
    /// An error hit the scan being typed: drop it at its terminator.
    poisoned: bool,
    /// Decimal digits typed on the keypad while Alt is held.
    alt_code: Option<u32>,
    /// The previous character was a dead key: a following space belongs to it.
    after_dead: bool,
}

impl KeyboardDecoder {
    /// A decoder for one keyboard-wedge scanner.
    pub fn new(layout: KeyboardLayout, terminator: KeyTerminator) -> Self {
        KeyboardDecoder {
            layout,
            terminator,
            held: [0; 6],
            buf: Vec::new(),
            done: VecDeque::new(),
            poisoned: false,
            alt_code: None,
            after_dead: false,
        }
    }

    /// Forgets keys held and the scan being typed, e.g. after the device was unplugged.
    pub fn reset(&mut self) {
        *self = KeyboardDecoder::new(self.layout, self.terminator);
    }

    /// Decodes one 8-byte boot keyboard report. Returns a scan when a terminator key completes one. An error drops
    /// the scan being typed (up to its terminator); the decoder keeps working.
    pub fn push_report(&mut self, report: &[u8]) -> Result<Option<Vec<u8>>, HidError> {
        let report: &[u8; BOOT_KEYBOARD_REPORT_LEN] = report
            .try_into()
            .map_err(|_| HidError::KeyboardReportLength { len: report.len() })?;
        let modifiers = report[0];
        let mut keys = [0u8; 6];
        keys.copy_from_slice(&report[2..8]);
        // ErrorRollOver: too many keys pressed, the key list is meaningless; keep the previous state.
        if keys.contains(&0x01) {
            return Ok(self.done.pop_front());
        }
        if let Some(&code) = keys.iter().find(|&&k| k == 0x02 || k == 0x03) {
            // A device fault: drop a scan being typed, but do not swallow the next one.
            if !self.buf.is_empty() || self.alt_code.is_some() {
                self.poison();
            }
            return Err(HidError::KeyboardError { code });
        }
        let mut first_err = None;
        let alt = modifiers & MOD_LALT != 0
            || self.layout == KeyboardLayout::Us && modifiers & MOD_RALT != 0;
        for &k in keys.iter().filter(|&&k| k != 0) {
            if self.held.contains(&k) {
                continue; // still held from the previous report: not a new key press
            }
            if let Err(e) = self.press(k, modifiers, alt) {
                first_err.get_or_insert(e);
            }
        }
        self.held = keys;
        if !alt {
            if let Some(value) = self.alt_code.take() {
                match u8::try_from(value) {
                    Ok(b) => self.push_byte(b),
                    Err(_) => {
                        self.poison();
                        first_err.get_or_insert(HidError::BadAltCode { value });
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(self.done.pop_front()),
        }
    }

    /// A further scan completed by the last report, when one report completed two (rare; call until `None`).
    pub fn next_scan(&mut self) -> Option<Vec<u8>> {
        self.done.pop_front()
    }

    fn press(&mut self, keycode: u8, modifiers: u8, alt: bool) -> Result<(), HidError> {
        if self.terminator.ends_scan(keycode) && modifiers & MOD_CTRL == 0 {
            let scan = std::mem::take(&mut self.buf);
            if !std::mem::take(&mut self.poisoned) && !scan.is_empty() {
                self.done.push_back(scan);
            }
            self.after_dead = false;
            return Ok(());
        }
        if alt {
            let digit = match keycode {
                0x59..=0x61 => Some(u32::from(keycode - 0x58)),
                0x62 => Some(0),
                _ => None,
            };
            if let Some(d) = digit {
                let v = self.alt_code.unwrap_or(0);
                // Saturate: a long run of digits is reported as a bad code, never an overflow.
                self.alt_code = Some(v.saturating_mul(10).saturating_add(d).min(100_000));
                return Ok(());
            }
        }
        let shift = modifiers & MOD_SHIFT != 0;
        let altgr = self.layout == KeyboardLayout::De && modifiers & MOD_RALT != 0;
        let layout = self.layout.name();
        let unknown = || HidError::UnknownKeycode {
            keycode,
            modifiers,
            layout,
        };
        if modifiers & MOD_CTRL != 0 {
            let control = match keycode {
                0x28 => Some(b'\r'), // Ctrl+Enter: CR, as Ctrl+M
                k => self.layout.char_for(k, shift, altgr).and_then(control_code),
            };
            return match control {
                Some(b) => {
                    self.push_byte(b);
                    Ok(())
                }
                None => {
                    self.poison();
                    Err(unknown())
                }
            };
        }
        let c = match keycode {
            // Enter / Tab that are not the terminator are data.
            0x28 | 0x58 => Some('\r'),
            0x2B => Some('\t'),
            k => self.layout.char_for(k, shift, altgr),
        };
        let Some(c) = c else {
            self.poison();
            return Err(unknown());
        };
        if c == ' ' && std::mem::take(&mut self.after_dead) {
            return Ok(());
        }
        self.after_dead = self.layout.is_dead(keycode, shift);
        let mut utf8 = [0u8; 4];
        for &b in c.encode_utf8(&mut utf8).as_bytes() {
            self.push_byte(b);
        }
        Ok(())
    }

    fn push_byte(&mut self, b: u8) {
        if self.poisoned {
            return;
        }
        if self.buf.len() >= MAX_MESSAGE_LEN {
            // A scanner stuck typing without a terminator: keep memory bounded, drop the scan.
            self.poison();
            return;
        }
        self.buf.push(b);
    }

    fn poison(&mut self) {
        self.buf.clear();
        self.poisoned = true;
        self.alt_code = None;
    }
}

/// The control code Ctrl+`c` types: letters and `@[\]^_` map to 0x00..0x1F.
fn control_code(c: char) -> Option<u8> {
    let b = u8::try_from(c).ok()?.to_ascii_uppercase();
    (b'@'..=b'_').contains(&b).then_some(b & 0x1F)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds the reports a device with `p` sends for one scan (test-side encoder for fixtures and round trips).
    fn encode(p: &HidPosProfile, aim: Option<&str>, data: &[u8]) -> Vec<Vec<u8>> {
        let mut payload = Vec::new();
        if !matches!(p.symbology, SymbologyField::Aim { .. }) {
            if let Some(a) = aim {
                payload.extend_from_slice(a.as_bytes());
            }
        }
        payload.extend_from_slice(data);
        let chunks: Vec<&[u8]> = payload.chunks(p.max_data).collect();
        let n = chunks.len();
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| {
                let mut r = vec![0u8; MAX_REPORT_LEN];
                if let Some(id) = p.report_id {
                    r[0] = id;
                }
                r[p.length_offset] = chunk.len() as u8;
                if let (SymbologyField::Aim { offset }, Some(a)) = (p.symbology, aim) {
                    r[offset..offset + 3].copy_from_slice(a.as_bytes());
                }
                r[p.data_offset..p.data_offset + chunk.len()].copy_from_slice(chunk);
                if let Continuation::Flag { offset, mask } = p.continuation {
                    if i + 1 < n {
                        r[offset] |= mask;
                    }
                }
                r
            })
            .collect()
    }

    /// Pushes all reports, then `finish`, collecting scans and error strings.
    fn run(p: HidPosProfile, reports: &[Vec<u8>]) -> (Vec<RawScan>, Vec<String>) {
        let mut d = HidPosDecoder::new(p);
        let (mut scans, mut errs) = (Vec::new(), Vec::new());
        for r in reports {
            match d.push_report(r) {
                Ok(Some(s)) => scans.push(s),
                Ok(None) => {}
                Err(e) => errs.push(e.to_string()),
            }
        }
        match d.finish() {
            Ok(Some(s)) => scans.push(s),
            Ok(None) => {}
            Err(e) => errs.push(e.to_string()),
        }
        (scans, errs)
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A 64-byte report from a hex prefix, zero-padded, with optional (offset, byte) patches.
    fn report(prefix: &str, patches: &[(usize, u8)]) -> Vec<u8> {
        let mut r = hex(prefix);
        r.resize(MAX_REPORT_LEN, 0);
        for &(i, b) in patches {
            r[i] = b;
        }
        r
    }

    /// (name, profile, reports, expected AIM, expected data)
    type PosCase<'a> = (
        &'a str,
        HidPosProfile,
        Vec<Vec<u8>>,
        Option<&'a str>,
        &'a [u8],
    );
    /// (name, layout, terminator, reports, expected scan)
    type KbCase<'a> = (
        &'a str,
        KeyboardLayout,
        KeyTerminator,
        Vec<Vec<u8>>,
        &'a [u8],
    );

    #[test]
    fn hid_pos_fixtures() {
        let gtin_lot = b"0109506000134352\x1d10ABC123";
        let long: Vec<u8> = (0..130).map(|i| b'A' + (i % 26) as u8).collect();
        let cases: Vec<PosCase<'_>> = vec![
            (
                "honeywell single report, ]E0 EAN-13",
                HidPosProfile::HONEYWELL,
                vec![report(
                    "02 0d 5d 45 30 39 35 30 36 30 30 30 31 33 34 33 35 32",
                    &[(61, b'd')],
                )],
                Some("]E0"),
                b"9506000134352",
            ),
            (
                "honeywell GS1-128 with GS inside",
                HidPosProfile::HONEYWELL,
                encode(&HidPosProfile::HONEYWELL, Some("]C1"), gtin_lot),
                Some("]C1"),
                gtin_lot,
            ),
            (
                "honeywell three reports (56 + 56 + 18)",
                HidPosProfile::HONEYWELL,
                encode(&HidPosProfile::HONEYWELL, Some("]d2"), &long),
                Some("]d2"),
                &long,
            ),
            (
                "honeywell without AIM id (zero bytes)",
                HidPosProfile::HONEYWELL,
                vec![report("02 03 00 00 00 31 32 33", &[])],
                None,
                b"123",
            ),
            (
                "honeywell short packet without trailer ends the scan",
                HidPosProfile::HONEYWELL,
                vec![hex("02 03 5d 43 30 31 32 33")],
                Some("]C0"),
                b"123",
            ),
            (
                "newland single report, vendor code ignored, AIM in band",
                HidPosProfile::NEWLAND,
                vec![report("02 07 5d 51 31 41 42 43 44", &[(62, 0x41)])],
                Some("]Q1"),
                b"ABCD",
            ),
            (
                "newland two reports joined at the quiet gap",
                HidPosProfile::NEWLAND,
                encode(&HidPosProfile::NEWLAND, Some("]d2"), &long[..100]),
                Some("]d2"),
                &long[..100],
            ),
            (
                "zebra (no report id) GS1 DataMatrix",
                HidPosProfile::ZEBRA,
                encode(&HidPosProfile::ZEBRA, Some("]d2"), gtin_lot),
                Some("]d2"),
                gtin_lot,
            ),
            (
                "zebra three chunks",
                HidPosProfile::ZEBRA,
                encode(&HidPosProfile::ZEBRA, None, &long),
                None,
                &long,
            ),
            (
                "generic with AIM in band",
                HidPosProfile::GENERIC,
                vec![report("02 05 5d 43 31 30 31", &[])],
                Some("]C1"),
                b"01",
            ),
        ];
        for (name, p, reports, aim, data) in cases {
            let (scans, errs) = run(p, &reports);
            assert_eq!(errs, Vec::<String>::new(), "{name}");
            assert_eq!(scans.len(), 1, "{name}: {scans:?}");
            assert_eq!(scans[0].symbology.as_deref(), aim, "{name}");
            assert_eq!(scans[0].data, data, "{name}");
        }
    }

    #[test]
    fn honeywell_capture_continuation_then_last_report() {
        // Shape of a published Honeywell capture: full reports end in `3f 00 01`, the last in `3f 00 00`.
        let mut first = report("02 38 5d 58 30", &[(61, 0x3f), (63, 0x01)]);
        first[5..61].fill(b'x');
        let last = report("02 02 5d 58 30 0d 0a", &[(61, 0x3f)]);
        let mut d = HidPosDecoder::new(HidPosProfile::HONEYWELL);
        assert_eq!(d.push_report(&first), Ok(None));
        assert!(d.is_pending());
        let scan = d.push_report(&last).unwrap().unwrap();
        assert_eq!(scan.symbology.as_deref(), Some("]X0"));
        assert_eq!(scan.data.len(), 58);
        assert!(scan.data.ends_with(b"xx\r\n"));
        assert!(!d.is_pending());
    }

    #[test]
    fn hid_pos_garbage_is_an_error_not_a_panic() {
        let h = HidPosProfile::HONEYWELL;
        // (name, profile, reports, error substring)
        let cases: Vec<(&str, HidPosProfile, Vec<Vec<u8>>, &str)> = vec![
            (
                "wrong report id",
                h,
                vec![report("04 03 5d 43 30 31 32 33", &[])],
                "report id 0x04",
            ),
            ("empty report", h, vec![vec![]], "too short"),
            ("only the report id", h, vec![vec![0x02]], "too short"),
            (
                "truncated before the AIM id",
                h,
                vec![hex("02 00 5d")],
                "too short",
            ),
            (
                "length past the report",
                h,
                vec![hex("02 10 5d 43 30 31 32")],
                "past the end",
            ),
            (
                "length past the data area",
                h,
                vec![report("02 39 5d 43 30", &[])],
                "past the end",
            ),
            ("length 0xff", h, vec![report("02 ff", &[])], "past the end"),
            (
                "zero length",
                h,
                vec![report("02 00 5d 43 30", &[])],
                "length 0",
            ),
            (
                "bad AIM bytes",
                h,
                vec![report("02 01 41 42 43 31", &[])],
                "not an AIM",
            ),
            (
                "report longer than 64",
                h,
                vec![vec![0x02; 65]],
                "longer than 64",
            ),
            (
                "continuation that never ends",
                h,
                vec![
                    report("02 01 5d 43 30 31", &[(63, 1)]),
                    report("02 01 5d 43 30 31", &[(63, 1)]),
                ],
                "incomplete: 2 report(s), 2 bytes",
            ),
            (
                "newland zero length",
                HidPosProfile::NEWLAND,
                vec![report("02 00", &[])],
                "length 0",
            ),
            (
                "zebra length 64",
                HidPosProfile::ZEBRA,
                vec![report("40", &[])],
                "past the end",
            ),
            (
                "generic wrong id",
                HidPosProfile::GENERIC,
                vec![report("01 02 41 42", &[])],
                "report id 0x01",
            ),
        ];
        for (name, p, reports, want) in cases {
            let (scans, errs) = run(p, &reports);
            assert!(scans.is_empty(), "{name}: {scans:?}");
            assert!(errs.iter().any(|e| e.contains(want)), "{name}: {errs:?}");
        }
    }

    #[test]
    fn hid_pos_recovers_after_errors() {
        let h = HidPosProfile::HONEYWELL;
        let good = report("02 03 5d 43 30 31 32 33", &[]);
        let mut d = HidPosDecoder::new(h);
        // A status report with another id in the middle of a flagged scan leaves the scan alone.
        assert_eq!(
            d.push_report(&report("02 01 5d 43 30 39", &[(63, 1)])),
            Ok(None)
        );
        assert!(d.push_report(&report("07 00", &[])).is_err());
        let scan = d.push_report(&good).unwrap().unwrap();
        assert_eq!(scan.data, b"9123");
        // A malformed scanned data report drops the scan in progress; the next scan is clean.
        assert_eq!(
            d.push_report(&report("02 01 5d 43 30 39", &[(63, 1)])),
            Ok(None)
        );
        assert!(d.push_report(&report("02 ff", &[])).is_err());
        assert_eq!(d.push_report(&good).unwrap().unwrap().data, b"123");
        // An overlong flagged scan is dropped up to its last report, then decoding resumes.
        let huge = vec![b'7'; MAX_MESSAGE_LEN + 100];
        let reports = encode(&h, Some("]d2"), &huge);
        let errors = reports
            .iter()
            .map(|r| d.push_report(r))
            .filter(|r| r.is_err())
            .count();
        assert_eq!(errors, 1);
        assert!(!d.is_pending());
        assert_eq!(d.push_report(&good).unwrap().unwrap().data, b"123");
        // reset() after an unplug drops a partial scan.
        assert_eq!(
            d.push_report(&report("02 01 5d 43 30 39", &[(63, 1)])),
            Ok(None)
        );
        assert!(d.reset());
        assert_eq!(d.finish(), Ok(None));
    }

    #[test]
    fn profiles_by_name() {
        for p in HidPosProfile::ALL {
            assert_eq!(HidPosProfile::by_name(p.name), Some(p));
            assert!(p.data_offset + p.max_data <= MAX_REPORT_LEN, "{}", p.name);
        }
        assert_eq!(HidPosProfile::by_name("acme"), None);
    }

    // ---- keyboard wedge ----

    /// A boot keyboard report: modifiers and up to six keycodes.
    fn kb(modifiers: u8, keys: &[u8]) -> Vec<u8> {
        let mut r = vec![modifiers, 0, 0, 0, 0, 0, 0, 0];
        r[2..2 + keys.len()].copy_from_slice(keys);
        r
    }

    const UP: [u8; 0] = [];
    const LSHIFT: u8 = 0x02;
    const LCTRL: u8 = 0x01;
    const LALT: u8 = 0x04;
    const RALT: u8 = 0x40;

    /// Press-and-release reports for each (modifiers, keycode).
    fn typed(keys: &[(u8, u8)]) -> Vec<Vec<u8>> {
        keys.iter()
            .flat_map(|&(m, k)| [kb(m, &[k]), kb(0, &UP)])
            .collect()
    }

    fn run_kb(
        layout: KeyboardLayout,
        term: KeyTerminator,
        reports: &[Vec<u8>],
    ) -> (Vec<Vec<u8>>, Vec<String>) {
        let mut d = KeyboardDecoder::new(layout, term);
        let (mut scans, mut errs) = (Vec::new(), Vec::new());
        for r in reports {
            match d.push_report(r) {
                Ok(Some(s)) => scans.push(s),
                Ok(None) => {}
                Err(e) => errs.push(e.to_string()),
            }
            scans.extend(std::iter::from_fn(|| d.next_scan()));
        }
        (scans, errs)
    }

    #[test]
    fn keyboard_fixtures() {
        use KeyTerminator::{Enter, EnterOrTab, Tab};
        use KeyboardLayout::{De, Us};
        let enter = (0, 0x28);
        // "]C1" on US: ] = 0x30, Shift+c = (2, 0x06), 1 = 0x1E.
        let aim = [(0, 0x30), (LSHIFT, 0x06), (0, 0x1E)];
        let cases: Vec<KbCase<'_>> = vec![
            (
                "US ]C1 with shift, digits, Ctrl+] as GS",
                Us,
                Enter,
                typed(&[
                    aim[0],
                    aim[1],
                    aim[2],
                    (0, 0x27),
                    (0, 0x1E),
                    (LCTRL, 0x30),
                    (0, 0x1E),
                    (0, 0x27),
                    enter,
                ]),
                b"]C101\x1d10",
            ),
            (
                "US shifted symbols and letters",
                Us,
                Enter,
                typed(&[
                    (LSHIFT, 0x1F),
                    (0x20, 0x04),
                    (0, 0x04),
                    (LSHIFT, 0x38),
                    (0, 0x2D),
                    enter,
                ]),
                b"@Aa?-",
            ),
            (
                "US Ctrl+M is CR, right Ctrl+] is GS, Tab ends",
                Us,
                Tab,
                typed(&[(LCTRL, 0x10), (0x10, 0x30), (0, 0x04), (0, 0x2B)]),
                b"\r\x1da",
            ),
            (
                "US Alt+numpad 029 is GS",
                Us,
                Enter,
                vec![
                    kb(0, &[0x04]),
                    kb(0, &UP),
                    kb(LALT, &[0x62]),
                    kb(LALT, &UP),
                    kb(LALT, &[0x5A]),
                    kb(LALT, &UP),
                    kb(LALT, &[0x61]),
                    kb(LALT, &UP),
                    kb(0, &UP),
                    kb(0, &[0x05]),
                    kb(0, &[0x28]),
                    kb(0, &UP),
                ],
                b"a\x1db",
            ),
            (
                "rollover: held key not repeated, release then press repeats",
                Us,
                Enter,
                vec![
                    kb(0, &[0x1E]),
                    kb(0, &[0x1E, 0x1F]),
                    kb(0, &[0x1F]),
                    kb(0, &UP),
                    kb(0, &[0x1F]),
                    kb(0, &[0x1F, 0x28]),
                    kb(0, &UP),
                ],
                b"122",
            ),
            (
                "phantom state (ErrorRollOver) is ignored",
                Us,
                Enter,
                vec![
                    kb(0, &[0x1E]),
                    kb(0, &[1, 1, 1, 1, 1, 1]),
                    kb(0, &[0x1E]),
                    kb(0, &UP),
                    kb(0, &[0x28]),
                ],
                b"1",
            ),
            (
                "keypad digits and keypad Enter",
                Us,
                Enter,
                typed(&[(0, 0x59), (0, 0x62), (0, 0x63), (0, 0x58)]),
                b"10.",
            ),
            (
                "Tab is data when Enter terminates",
                Us,
                Enter,
                typed(&[(0, 0x04), (0, 0x2B), (0, 0x05), enter]),
                b"a\tb",
            ),
            (
                "EnterOrTab ends at Tab",
                Us,
                EnterOrTab,
                typed(&[(0, 0x04), (0, 0x2B)]),
                b"a",
            ),
            (
                "DE QWERTZ: Y/Z swapped, shifted digits, AltGr",
                De,
                Enter,
                typed(&[
                    (0, 0x1C),
                    (0, 0x1D),
                    (LSHIFT, 0x1F),
                    (RALT, 0x14),
                    (0, 0x38),
                    (LSHIFT, 0x24),
                    enter,
                ]),
                b"zy\"@-/",
            ),
            (
                "DE umlaut is UTF-8, dead key drops the following space",
                De,
                Enter,
                typed(&[(0, 0x34), (0, 0x35), (0, 0x2C), (0, 0x04), enter]),
                "ä^a".as_bytes(),
            ),
            (
                "DE Ctrl+AltGr+9 (]) is GS",
                De,
                Enter,
                typed(&[(0, 0x1E), (LCTRL | RALT, 0x26), (0, 0x1F), enter]),
                b"1\x1d2",
            ),
        ];
        for (name, layout, term, reports, want) in cases {
            let (scans, errs) = run_kb(layout, term, &reports);
            assert_eq!(errs, Vec::<String>::new(), "{name}");
            assert_eq!(scans, vec![want.to_vec()], "{name}");
        }
    }

    #[test]
    fn keyboard_errors_are_clear_and_recoverable() {
        use KeyboardLayout::Us;
        let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
            (
                "F1 is unknown",
                typed(&[(0, 0x04), (0, 0x3A), (0, 0x05), (0, 0x28)]),
                "unknown keycode 0x3a",
            ),
            (
                "Ctrl+F1 is unknown",
                typed(&[(LCTRL, 0x3A), (0, 0x28)]),
                "unknown keycode 0x3a (modifiers 0x01)",
            ),
            (
                "keycode 0xE8 is unknown",
                typed(&[(0, 0xE8), (0, 0x28)]),
                "unknown keycode 0xe8",
            ),
            (
                "Alt code above 255",
                {
                    let mut r = vec![
                        kb(LALT, &[0x5A]),
                        kb(LALT, &[]),
                        kb(LALT, &[0x61]),
                        kb(LALT, &[]),
                        kb(LALT, &[0x61]),
                    ];
                    r.extend([kb(0, &[]), kb(0, &[0x28])]);
                    r
                },
                "Alt+numpad code 299",
            ),
            ("POST fail", vec![kb(0, &[0x02])], "error state 0x02"),
            ("report too short", vec![vec![0, 0, 4]], "3 bytes"),
            (
                "report with report id",
                vec![vec![1, 0, 0, 4, 0, 0, 0, 0, 0]],
                "9 bytes",
            ),
        ];
        for (name, reports, want) in cases {
            let mut d = KeyboardDecoder::new(Us, KeyTerminator::Enter);
            let mut errs = Vec::new();
            for r in &reports {
                match d.push_report(r) {
                    // The scan hit by the error must not come out partial.
                    Ok(Some(s)) => panic!("{name}: partial scan {s:?}"),
                    Ok(None) => {}
                    Err(e) => errs.push(e.to_string()),
                }
            }
            assert!(errs.iter().any(|e| e.contains(want)), "{name}: {errs:?}");
            // The decoder keeps working: the next scan is whole.
            d.push_report(&kb(0, &[])).unwrap();
            let mut next = None;
            for r in typed(&[(0, 0x1E), (0, 0x28)]) {
                next = next.or(d.push_report(&r).unwrap());
            }
            assert_eq!(next, Some(b"1".to_vec()), "{name}");
        }
    }

    #[test]
    fn two_scans_in_one_report() {
        let mut d = KeyboardDecoder::new(KeyboardLayout::Us, KeyTerminator::EnterOrTab);
        d.push_report(&kb(0, &[0x04])).unwrap();
        assert_eq!(
            d.push_report(&kb(0, &[0x04, 0x28, 0x05, 0x2B])).unwrap(),
            Some(b"a".to_vec())
        );
        assert_eq!(d.next_scan(), Some(b"b".to_vec()));
        assert_eq!(d.next_scan(), None);
    }

    fn profile() -> impl Strategy<Value = HidPosProfile> {
        prop::sample::select(HidPosProfile::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn hid_pos_arbitrary_reports_never_panic(
            p in profile(),
            reports in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..70), 0..20),
        ) {
            let mut d = HidPosDecoder::new(p);
            for r in &reports {
                if let Ok(Some(scan)) = d.push_report(r) {
                    prop_assert!(scan.data.len() <= MAX_MESSAGE_LEN);
                }
            }
            let _ = d.finish();
            prop_assert!(!d.is_pending());
        }

        #[test]
        fn hid_pos_round_trip(
            p in profile(),
            aim in prop::option::of(prop::sample::select(vec!["]C1", "]d2", "]E0", "]Q3"])),
            data in prop::collection::vec(any::<u8>(), 1..600),
        ) {
            // Data that itself starts like an AIM id would be split in band on profiles without an AIM field.
            prop_assume!(aim.is_some() || split_aim(&data).0.is_none());
            let (scans, errs) = run(p, &encode(&p, aim, &data));
            prop_assert!(errs.is_empty(), "{:?}", errs);
            prop_assert_eq!(scans, vec![RawScan { symbology: aim.map(str::to_owned), data }]);
        }

        #[test]
        fn keyboard_arbitrary_reports_never_panic(
            de in any::<bool>(),
            reports in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..10), 0..40),
        ) {
            let layout = if de { KeyboardLayout::De } else { KeyboardLayout::Us };
            let mut d = KeyboardDecoder::new(layout, KeyTerminator::EnterOrTab);
            for r in &reports {
                let _ = d.push_report(r);
            }
        }

        #[test]
        fn keyboard_us_round_trip(text in "[ -~]{1,40}") {
            // Type printable ASCII the way a US wedge does: one press + release per character.
            let mut reports = Vec::new();
            for c in text.chars() {
                let (m, k) = us_key(c).expect("printable ASCII has a US key");
                reports.push(kb(m, &[k]));
                reports.push(kb(0, &UP));
            }
            reports.push(kb(0, &[0x28]));
            let (scans, errs) = run_kb(KeyboardLayout::Us, KeyTerminator::Enter, &reports);
            prop_assert!(errs.is_empty(), "{:?}", errs);
            prop_assert_eq!(scans, vec![text.into_bytes()]);
        }
    }

    /// The (modifiers, keycode) a US keyboard uses for `c`, found by searching the decoder's own table.
    fn us_key(c: char) -> Option<(u8, u8)> {
        (0x04..=0x38u8)
            .flat_map(|k| [(0, k), (LSHIFT, k)])
            .find(|&(m, k)| us_char(k, m != 0) == Some(c))
    }
}
