//! The agent's TOML configuration (DESIGN §8).
//!
//! Checked in two phases, ripgrep style: serde reads the file with `deny_unknown_fields` (so a misspelt key fails
//! fast, named), then [`Config::load`] validates values and resolves relative paths against the config file's
//! directory.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use dockhand_protocol::hid::{HidPosProfile, KeyTerminator, KeyboardLayout};
use dockhand_protocol::scan::Terminator;
use serde::Deserialize;

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a wrongly typed value.
    #[error("config {path}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("config {path}: key `{key}`: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// The offending key, dotted.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole agent configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This device's id, as enrolled at the server.
    pub device_id: String,
    /// The site this device works in.
    pub site: String,
    /// Where the journal, the local store and the status file live.
    pub data_dir: PathBuf,
    /// The sync server; without it the agent works offline only.
    pub server: Option<ServerConfig>,
    /// Workflow settings.
    #[serde(default)]
    pub workflow: WorkflowConfig,
    /// Scanners and readers.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// The loopback status endpoint.
    #[serde(default)]
    pub status: StatusConfig,
    /// Disk limits for the journal.
    #[serde(default)]
    pub storage: StorageConfig,
}

/// `[storage]`: when the agent refuses new scans as "storage full" rather than fill the disk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Cap on the journal's segment files together; none by default.
    pub max_journal_bytes: Option<u64>,
    /// Free space the file system holding `data_dir` must keep (default 16 MiB; 0 turns the check off).
    #[serde(default = "default_min_free")]
    pub min_free_bytes: u64,
}

/// The smallest `max_journal_bytes`: room for a few records.
pub const MIN_JOURNAL_BYTES: u64 = 2048;

fn default_min_free() -> u64 {
    16 << 20
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            max_journal_bytes: None,
            min_free_bytes: default_min_free(),
        }
    }
}

/// `[status]`: the device's local status endpoint (`GET /status`, `GET /events`), for the TUI and the CLI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    /// Serve it (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Loopback address and port; port 0 picks a free one, written to `data_dir/status.addr`.
    #[serde(default = "default_status_listen")]
    pub listen: String,
}

fn default_true() -> bool {
    true
}
fn default_status_listen() -> String {
    "127.0.0.1:0".into()
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            enabled: true,
            listen: default_status_listen(),
        }
    }
}

impl StatusConfig {
    /// The address to bind (validated at load to be a loopback address).
    pub fn listen_addr(&self) -> std::net::SocketAddr {
        self.listen
            .parse()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Base URL, e.g. `https://127.0.0.1:8443`.
    pub url: String,
    /// The CA certificate (PEM) that signed the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// A file holding this device's bearer token.
    pub token_file: PathBuf,
    /// How often to sync when nothing new happens.
    #[serde(default = "default_sync_interval")]
    pub sync_interval_ms: u64,
    /// Cap of the retry backoff after failures.
    #[serde(default = "default_max_backoff")]
    pub max_backoff_ms: u64,
    /// Movements per push request.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// How often to refresh the site stock snapshot (`GET /v1/sync/stock`) for offline stock lookups.
    #[serde(default = "default_stock_refresh")]
    pub stock_refresh_ms: u64,
}

fn default_sync_interval() -> u64 {
    1000
}
fn default_max_backoff() -> u64 {
    30_000
}
fn default_batch() -> usize {
    500
}
fn default_stock_refresh() -> u64 {
    60_000
}

/// `[workflow]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowConfig {
    /// `handheld` or `gate`.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Where received goods land before put-away.
    #[serde(default = "default_receiving")]
    pub receiving_location: String,
}

fn default_mode() -> String {
    "handheld".into()
}
fn default_receiving() -> String {
    "DOCK-1".into()
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig {
            mode: default_mode(),
            receiving_location: default_receiving(),
        }
    }
}

/// The source kinds the agent knows.
pub const SOURCE_KINDS: [&str; 3] = [KIND_SERIAL, KIND_USB_HID_POS, KIND_USB_KEYBOARD];
/// A scanner on a serial port (or a USB CDC-ACM virtual COM port).
pub const KIND_SERIAL: &str = "serial-barcode";
/// A USB scanner in HID POS mode (usage page 0x8C).
pub const KIND_USB_HID_POS: &str = "usb-hid-pos";
/// A USB scanner in keyboard (wedge) mode, read directly as a boot keyboard.
pub const KIND_USB_KEYBOARD: &str = "usb-keyboard";

/// A USB vendor or product id: in TOML a hex string (`"0x0c2e"` or `"0c2e"`, as `lsusb` prints it) or an integer.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum UsbId {
    /// An integer, e.g. `3118`.
    Int(i64),
    /// A hex string, e.g. `"0x0c2e"`.
    Hex(String),
}

impl UsbId {
    /// The 16-bit id, or `None` when the value is not one.
    pub fn value(&self) -> Option<u16> {
        match self {
            UsbId::Int(i) => u16::try_from(*i).ok(),
            UsbId::Hex(s) => {
                let digits = s
                    .strip_prefix("0x")
                    .or_else(|| s.strip_prefix("0X"))
                    .unwrap_or(s);
                if digits.is_empty() || digits.len() > 4 {
                    return None;
                }
                u16::from_str_radix(digits, 16).ok()
            }
        }
    }
}

/// One `[[sources]]` entry. Which keys apply depends on `kind`; [`Config::parse`] rejects the others.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `serial-barcode`, `usb-hid-pos` or `usb-keyboard`.
    pub kind: String,
    /// Serial only: device path, e.g. `/dev/ttyACM0` (empty for USB sources).
    #[serde(default)]
    pub path: PathBuf,
    /// Serial only: baud rate.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Serial: `cr`, `lf`, `crlf` (default) or `none`. USB keyboard: `enter` (default), `tab` or `enter-or-tab`.
    pub terminator: Option<String>,
    /// USB only: the device's vendor id.
    pub vendor_id: Option<UsbId>,
    /// USB only: the device's product id.
    pub product_id: Option<UsbId>,
    /// USB only: the interface to claim (default 0).
    pub interface: Option<u8>,
    /// `usb-hid-pos` only: the report layout, `honeywell`, `newland`, `zebra` or `generic` (default).
    pub profile: Option<String>,
    /// `usb-keyboard` only: the keyboard layout the scanner types with, `us` (default) or `de`.
    pub layout: Option<String>,
    /// Frames wrapped in STX/ETX.
    #[serde(default)]
    pub stx_etx: bool,
    /// Idle time that ends a frame when `terminator = "none"`.
    #[serde(default = "default_idle")]
    pub idle_timeout_ms: u64,
    /// Bytes written back once the scan's movement is durable.
    pub good_read: Option<String>,
    /// Bytes written back when the scan is rejected.
    pub bad_read: Option<String>,
    /// Serial only: the scanner family whose host commands supply default `good_read`/`bad_read`
    /// (`generic`, `honeywell`, `zebra`, `datalogic`; see [`crate::source::ScannerModel`]).
    pub model: Option<String>,
    /// What a keyboard-wedge scanner sends for FNC1: one ASCII character such as `"|"`, or the text `"<GS>"`.
    pub fnc1: Option<String>,
    /// Treat unbracketed digit strings without AIM id as GS1 element strings.
    #[serde(default)]
    pub gs1: bool,
}

fn default_baud() -> u32 {
    9600
}
fn default_idle() -> u64 {
    50
}

impl SourceConfig {
    /// The parsed serial terminator (validated at load).
    pub fn terminator(&self) -> Terminator {
        self.terminator
            .as_deref()
            .and_then(|t| Terminator::from_str(t).ok())
            .unwrap_or(Terminator::CrLf)
    }

    /// The USB HID POS report layout (validated at load).
    pub fn hid_pos_profile(&self) -> HidPosProfile {
        self.profile
            .as_deref()
            .and_then(HidPosProfile::by_name)
            .unwrap_or(HidPosProfile::GENERIC)
    }

    /// The keyboard-wedge layout (validated at load).
    pub fn keyboard_layout(&self) -> KeyboardLayout {
        self.layout
            .as_deref()
            .and_then(KeyboardLayout::by_name)
            .unwrap_or(KeyboardLayout::Us)
    }

    /// The keyboard-wedge terminator key (validated at load).
    pub fn key_terminator(&self) -> KeyTerminator {
        self.terminator
            .as_deref()
            .and_then(parse_key_terminator)
            .unwrap_or(KeyTerminator::Enter)
    }

    /// The USB vendor and product id (validated at load; 0 when absent, which matches no device).
    pub fn usb_ids(&self) -> (u16, u16) {
        let id = |v: &Option<UsbId>| v.as_ref().and_then(UsbId::value).unwrap_or(0);
        (id(&self.vendor_id), id(&self.product_id))
    }

    /// The USB interface to claim.
    pub fn usb_interface(&self) -> u8 {
        self.interface.unwrap_or(0)
    }

    /// Is this a USB source?
    pub fn is_usb(&self) -> bool {
        self.kind == KIND_USB_HID_POS || self.kind == KIND_USB_KEYBOARD
    }

    /// The FNC1 substitute as one byte (validated at load); `None` for the `<GS>` text form.
    pub fn fnc1_byte(&self) -> Option<u8> {
        self.fnc1
            .as_deref()
            .filter(|s| s.len() == 1)
            .and_then(|s| s.bytes().next())
    }

    /// True when the scanner spells FNC1 as the text `<GS>`.
    pub fn fnc1_text(&self) -> bool {
        self.fnc1.as_deref() == Some(FNC1_TEXT)
    }
}

/// The text some keyboard wedges type for FNC1.
pub const FNC1_TEXT: &str = "<GS>";

fn parse_key_terminator(s: &str) -> Option<KeyTerminator> {
    match s {
        "enter" => Some(KeyTerminator::Enter),
        "tab" => Some(KeyTerminator::Tab),
        "enter-or-tab" => Some(KeyTerminator::EnterOrTab),
        _ => None,
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, path, base)
    }

    /// Parses and validates config text; relative paths are resolved against `base`.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message: message.to_string(),
        };
        if !is_id(&cfg.device_id) {
            return Err(invalid(
                "device_id",
                "must be 1 to 64 characters of letters, digits, '.', '_' or '-'",
            ));
        }
        if cfg.site.is_empty() || cfg.site.len() > 64 {
            return Err(invalid("site", "must be 1 to 64 characters"));
        }
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut cfg.data_dir);
        if let Some(server) = &mut cfg.server {
            if !(server.url.starts_with("https://") || server.url.starts_with("http://")) {
                return Err(invalid("server.url", "must start with https://"));
            }
            if let Some(ca) = &mut server.ca_file {
                resolve(ca);
            }
            resolve(&mut server.token_file);
            if server.sync_interval_ms == 0 {
                return Err(invalid("server.sync_interval_ms", "must be at least 1"));
            }
            if server.max_backoff_ms < 10 {
                return Err(invalid("server.max_backoff_ms", "must be at least 10"));
            }
            if !(1..=5000).contains(&server.batch_size) {
                return Err(invalid("server.batch_size", "must be between 1 and 5000"));
            }
            // A snapshot is the whole site's stock: refreshing it more than once a second only loads the server.
            if server.stock_refresh_ms < 1000 {
                return Err(invalid("server.stock_refresh_ms", "must be at least 1000"));
            }
        }
        if !["handheld", "gate"].contains(&cfg.workflow.mode.as_str()) {
            return Err(invalid("workflow.mode", "must be \"handheld\" or \"gate\""));
        }
        if cfg.workflow.mode == "gate" {
            return Err(invalid(
                "workflow.mode",
                "\"gate\" (RFID dock gates) is not available in this version",
            ));
        }
        if cfg.workflow.receiving_location.is_empty() {
            return Err(invalid("workflow.receiving_location", "must not be empty"));
        }
        for (i, src) in cfg.sources.iter_mut().enumerate() {
            let key = |k: &str| format!("sources[{i}].{k}");
            if !SOURCE_KINDS.contains(&src.kind.as_str()) {
                return Err(invalid(
                    &key("kind"),
                    &format!(
                        "unknown source kind {:?}; supported: \"{KIND_SERIAL}\", \"{KIND_USB_HID_POS}\", \
                         \"{KIND_USB_KEYBOARD}\"",
                        src.kind
                    ),
                ));
            }
            // Keys of another kind are mistakes (a USB scanner with a `path`), so they fail like unknown keys.
            let usb_keys = [
                ("vendor_id", src.vendor_id.is_some()),
                ("product_id", src.product_id.is_some()),
                ("interface", src.interface.is_some()),
                ("profile", src.profile.is_some()),
                ("layout", src.layout.is_some()),
            ];
            let not_for =
                |k: &str| invalid(&key(k), &format!("is not used by {:?} sources", src.kind));
            if src.kind == KIND_SERIAL {
                if let Some((k, _)) = usb_keys.iter().find(|(_, set)| *set) {
                    return Err(not_for(k));
                }
                if src.path.as_os_str().is_empty() {
                    return Err(invalid(
                        &key("path"),
                        "is required for \"serial-barcode\" sources",
                    ));
                }
                if let Some(t) = &src.terminator {
                    if Terminator::from_str(t).is_err() {
                        return Err(invalid(
                            &key("terminator"),
                            "must be \"cr\", \"lf\", \"crlf\" or \"none\"",
                        ));
                    }
                }
                if src.baud == 0 {
                    return Err(invalid(&key("baud"), "must be positive"));
                }
                if let Some(m) = &src.model {
                    if crate::source::ScannerModel::by_name(m).is_none() {
                        return Err(invalid(
                            &key("model"),
                            "must be \"generic\", \"honeywell\", \"zebra\" or \"datalogic\"",
                        ));
                    }
                }
                resolve(&mut src.path);
            } else {
                if !src.path.as_os_str().is_empty() {
                    return Err(invalid(
                        &key("path"),
                        "is not used by USB sources; they are found by vendor_id and product_id",
                    ));
                }
                for k in ["vendor_id", "product_id"] {
                    let v = if k == "vendor_id" {
                        &src.vendor_id
                    } else {
                        &src.product_id
                    };
                    match v {
                        None => return Err(invalid(&key(k), "is required for USB sources")),
                        Some(id) if id.value().is_none() => {
                            return Err(invalid(
                                &key(k),
                                "must be a 16-bit id: a hex string like \"0x0c2e\" or an integer",
                            ))
                        }
                        Some(_) => {}
                    }
                }
                for (k, set) in [
                    ("good_read", src.good_read.is_some()),
                    ("bad_read", src.bad_read.is_some()),
                    ("model", src.model.is_some()),
                ] {
                    if set {
                        return Err(invalid(
                            &key(k),
                            "USB scanners get no feedback bytes in this version",
                        ));
                    }
                }
                if src.kind == KIND_USB_HID_POS {
                    if src.layout.is_some() {
                        return Err(not_for("layout"));
                    }
                    if src.terminator.is_some() {
                        return Err(not_for("terminator"));
                    }
                    if let Some(p) = &src.profile {
                        if HidPosProfile::by_name(p).is_none() {
                            return Err(invalid(
                                &key("profile"),
                                "must be \"honeywell\", \"newland\", \"zebra\" or \"generic\"",
                            ));
                        }
                    }
                } else {
                    if src.profile.is_some() {
                        return Err(not_for("profile"));
                    }
                    if let Some(l) = &src.layout {
                        if KeyboardLayout::by_name(l).is_none() {
                            return Err(invalid(&key("layout"), "must be \"us\" or \"de\""));
                        }
                    }
                    if let Some(t) = &src.terminator {
                        if parse_key_terminator(t).is_none() {
                            return Err(invalid(
                                &key("terminator"),
                                "must be \"enter\", \"tab\" or \"enter-or-tab\" for USB keyboard sources",
                            ));
                        }
                    }
                }
            }
            if let Some(f) = &src.fnc1 {
                if !(f.len() == 1 && f.is_ascii() || f == FNC1_TEXT) {
                    return Err(invalid(
                        &key("fnc1"),
                        "must be exactly one ASCII character, or \"<GS>\"",
                    ));
                }
            }
        }
        let listen = cfg
            .status
            .listen
            .parse::<std::net::SocketAddr>()
            .map_err(|_| {
                invalid(
                    "status.listen",
                    "must be an IP address and port, e.g. \"127.0.0.1:0\"",
                )
            })?;
        if !listen.ip().is_loopback() {
            return Err(invalid(
                "status.listen",
                "must be a loopback address (127.0.0.1 or ::1): the status endpoint has no authentication",
            ));
        }
        if cfg
            .storage
            .max_journal_bytes
            .is_some_and(|b| b < MIN_JOURNAL_BYTES)
        {
            return Err(invalid(
                "storage.max_journal_bytes",
                &format!("must be at least {MIN_JOURNAL_BYTES}"),
            ));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
device_id = "hh-01"
site = "WH1"
data_dir = "data"

[server]
url = "https://127.0.0.1:8443"
ca_file = "ca.pem"
token_file = "/etc/dockhand/hh-01.token"
sync_interval_ms = 1000

[workflow]
mode = "handheld"
receiving_location = "DOCK-1"

[[sources]]
kind = "serial-barcode"
path = "/dev/ttyACM0"
baud = 9600
terminator = "crlf"
good_read = "\u0006"
bad_read = "\u0015"
"#;

    const USB: &str = "[[sources]]\nkind='usb-hid-pos'\nvendor_id='0x0c2e'\nproduct_id='0b61'\n";
    const KBD: &str = "[[sources]]\nkind='usb-keyboard'\nvendor_id=1\nproduct_id=2\n";

    #[test]
    fn usb_sources_parse() {
        let head = "device_id='hh-01'\nsite='WH1'\ndata_dir='/d'\n";
        let cfg = parse(&format!("{head}{USB}profile='honeywell'\ninterface=1\n{KBD}layout='de'\nterminator='tab'\nfnc1='|'\n")).unwrap();
        let hid = &cfg.sources[0];
        assert_eq!(hid.usb_ids(), (0x0c2e, 0x0b61));
        assert_eq!(hid.hid_pos_profile(), HidPosProfile::HONEYWELL);
        assert_eq!(hid.usb_interface(), 1);
        assert!(hid.is_usb());
        let kbd = &cfg.sources[1];
        assert_eq!(kbd.usb_ids(), (1, 2));
        assert_eq!(kbd.keyboard_layout(), KeyboardLayout::De);
        assert_eq!(kbd.key_terminator(), KeyTerminator::Tab);
        assert_eq!(kbd.usb_interface(), 0);
        // Defaults.
        let cfg = parse(&format!("{head}{USB}{KBD}")).unwrap();
        assert_eq!(cfg.sources[0].hid_pos_profile(), HidPosProfile::GENERIC);
        assert_eq!(cfg.sources[1].keyboard_layout(), KeyboardLayout::Us);
        assert_eq!(cfg.sources[1].key_terminator(), KeyTerminator::Enter);
        // Serial keeps its default terminator.
        let cfg = parse(&format!(
            "{head}[[sources]]\nkind='serial-barcode'\npath='tty'\n"
        ))
        .unwrap();
        assert_eq!(cfg.sources[0].terminator(), Terminator::CrLf);
        assert_eq!(cfg.sources[0].path, Path::new("/etc/dh/tty"));
        for (id, want) in [
            ("\"0x0C2E\"", Some(0x0c2e)),
            ("\"ffff\"", Some(0xffff)),
            ("65535", Some(0xffff)),
            ("\"0x10000\"", None),
            ("\"\"", None),
            ("\"0x\"", None),
        ] {
            let v: UsbId = toml::from_str::<toml::Value>(&format!("v = {id}")).unwrap()["v"]
                .clone()
                .try_into()
                .unwrap();
            assert_eq!(v.value(), want, "{id}");
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/dh/agent.toml"), Path::new("/etc/dh"))
    }

    #[test]
    fn design_example_parses_and_resolves_relative_paths() {
        let cfg = parse(GOOD).unwrap();
        assert_eq!(cfg.device_id, "hh-01");
        assert_eq!(cfg.data_dir, Path::new("/etc/dh/data"));
        let server = cfg.server.unwrap();
        assert_eq!(server.ca_file.unwrap(), Path::new("/etc/dh/ca.pem"));
        assert_eq!(server.token_file, Path::new("/etc/dockhand/hh-01.token"));
        assert_eq!(server.stock_refresh_ms, 60_000);
        assert_eq!(cfg.sources[0].good_read.as_deref(), Some("\u{6}"));
        assert_eq!(cfg.sources[0].terminator(), Terminator::CrLf);
        assert!(cfg.status.enabled);
        assert_eq!(cfg.status.listen_addr(), "127.0.0.1:0".parse().unwrap());
    }

    #[test]
    fn storage_table_parses() {
        let head = "device_id='hh-01'\nsite='WH1'\ndata_dir='/d'\n";
        for (table, max, min_free) in [
            ("", None, 16 << 20),
            ("[storage]\nmax_journal_bytes=4096\n", Some(4096), 16 << 20),
            ("[storage]\nmin_free_bytes=0\n", None, 0),
        ] {
            let cfg = parse(&format!("{head}{table}")).unwrap();
            assert_eq!(cfg.storage.max_journal_bytes, max, "{table}");
            assert_eq!(cfg.storage.min_free_bytes, min_free, "{table}");
        }
    }

    #[test]
    fn status_table_parses() {
        let head = "device_id='hh-01'\nsite='WH1'\ndata_dir='/d'\n";
        for (table, enabled, listen) in [
            ("[status]\nenabled=false\n", false, "127.0.0.1:0"),
            (
                "[status]\nlisten='127.0.0.1:9100'\n",
                true,
                "127.0.0.1:9100",
            ),
            ("[status]\nlisten='[::1]:9100'\n", true, "[::1]:9100"),
        ] {
            let cfg = parse(&format!("{head}{table}")).unwrap();
            assert_eq!(cfg.status.enabled, enabled, "{table}");
            assert_eq!(cfg.status.listen_addr(), listen.parse().unwrap(), "{table}");
        }
    }

    #[test]
    fn bad_keys_and_values_fail_naming_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("unknown top key", "colour = 1\n", "colour"),
            (
                "unknown source key",
                "[[sources]]\nkind='serial-barcode'\npath='/x'\nspeed=1\n",
                "speed",
            ),
            (
                "bad terminator",
                "[[sources]]\nkind='serial-barcode'\npath='/x'\nterminator='tab'\n",
                "sources[0].terminator",
            ),
            (
                "bad kind",
                "[[sources]]\nkind='laser'\npath='/x'\n",
                "sources[0].kind",
            ),
            (
                "bad baud type",
                "[[sources]]\nkind='serial-barcode'\npath='/x'\nbaud='fast'\n",
                "baud",
            ),
            ("bad mode", "[workflow]\nmode='forklift'\n", "workflow.mode"),
            (
                "journal quota too small",
                "[storage]\nmax_journal_bytes=100\n",
                "storage.max_journal_bytes",
            ),
            ("unknown storage key", "[storage]\nquota=1\n", "quota"),
            (
                "stock refresh too fast",
                "[server]\nurl='https://x'\ntoken_file='t'\nstock_refresh_ms=10\n",
                "server.stock_refresh_ms",
            ),
            (
                "serial without path",
                "[[sources]]\nkind='serial-barcode'\n",
                "sources[0].path",
            ),
            (
                "usb key on serial",
                "[[sources]]\nkind='serial-barcode'\npath='/x'\nvendor_id='0x0c2e'\n",
                "sources[0].vendor_id",
            ),
            (
                "usb without vendor_id",
                "[[sources]]\nkind='usb-hid-pos'\nproduct_id=1\n",
                "sources[0].vendor_id",
            ),
            (
                "usb without product_id",
                "[[sources]]\nkind='usb-hid-pos'\nvendor_id=1\n",
                "sources[0].product_id",
            ),
            (
                "usb with path",
                &format!("{USB}path='/dev/hidraw0'\n"),
                "sources[0].path",
            ),
            (
                "vendor_id not hex",
                "[[sources]]\nkind='usb-hid-pos'\nvendor_id='0xzz'\nproduct_id=1\n",
                "sources[0].vendor_id",
            ),
            (
                "vendor_id too big",
                "[[sources]]\nkind='usb-hid-pos'\nvendor_id=70000\nproduct_id=1\n",
                "sources[0].vendor_id",
            ),
            (
                "product_id negative",
                "[[sources]]\nkind='usb-hid-pos'\nvendor_id=1\nproduct_id=-1\n",
                "sources[0].product_id",
            ),
            (
                "vendor_id wrong type",
                "[[sources]]\nkind='usb-hid-pos'\nvendor_id=true\nproduct_id=1\n",
                "vendor_id",
            ),
            (
                "bad profile",
                &format!("{USB}profile='acme'\n"),
                "sources[0].profile",
            ),
            (
                "layout on hid-pos",
                &format!("{USB}layout='us'\n"),
                "sources[0].layout",
            ),
            (
                "terminator on hid-pos",
                &format!("{USB}terminator='cr'\n"),
                "sources[0].terminator",
            ),
            (
                "feedback on usb",
                &format!("{USB}good_read='x'\n"),
                "sources[0].good_read",
            ),
            (
                "interface out of range",
                &format!("{USB}interface=300\n"),
                "interface",
            ),
            (
                "bad layout",
                &format!("{KBD}layout='fr'\n"),
                "sources[0].layout",
            ),
            (
                "profile on keyboard",
                &format!("{KBD}profile='zebra'\n"),
                "sources[0].profile",
            ),
            (
                "bad key terminator",
                &format!("{KBD}terminator='crlf'\n"),
                "sources[0].terminator",
            ),
            (
                "unknown usb key",
                &format!("{USB}serial_number='x'\n"),
                "serial_number",
            ),
            (
                "status on a LAN address",
                "[status]\nlisten='0.0.0.0:8080'\n",
                "status.listen",
            ),
            (
                "status not an address",
                "[status]\nlisten='localhost'\n",
                "status.listen",
            ),
            ("unknown status key", "[status]\nport=1\n", "port"),
            (
                "bad scanner model",
                "[[sources]]\nkind='serial-barcode'\npath='/x'\nmodel='acme'\n",
                "sources[0].model",
            ),
            (
                "model on usb",
                &format!("{USB}model='zebra'\n"),
                "sources[0].model",
            ),
            (
                "bad fnc1",
                "[[sources]]\nkind='serial-barcode'\npath='/x'\nfnc1='ab'\n",
                "sources[0].fnc1",
            ),
        ];
        for (name, extra, key) in cases.iter().map(|(n, e, k)| (n, e.to_string(), k)) {
            let text = format!("device_id='hh-01'\nsite='WH1'\ndata_dir='/d'\n{extra}");
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{name}: {err}");
        }
        let err = parse("site='WH1'\ndata_dir='/d'\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("device_id"), "{err}");
        let err = parse("device_id='a b'\nsite='WH1'\ndata_dir='/d'\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("device_id"), "{err}");
    }
}
