//! The agent's TOML configuration (DESIGN §8).
//!
//! Checked in two phases, ripgrep style: serde reads the file with `deny_unknown_fields` (so a misspelt key fails
//! fast, named), then [`Config::load`] validates values and resolves relative paths against the config file's
//! directory.
//!
//! # Dock gates
//!
//! `workflow.mode = "gate"` turns the agent into an RFID dock gate ([`crate::gate`]): `workflow.receiving_location`
//! is then the gate's location (inbound goes in, outbound leaves from it), a `[gate]` table gives the antennas'
//! roles and the smoothing, and at least one RFID source reads the tags:
//!
//! ```toml
//! [workflow]
//! mode = "gate"                    # "handheld" stays the default
//! receiving_location = "DOCK-3"
//!
//! [gate]
//! outside_antennas = [1]           # required: the antennas facing the yard (seen first by an inbound tag)
//! inside_antennas = [2]            # required: the antennas facing the warehouse
//! quiet_ms = 3000                  # a pass departs after no read for this long (> the reader's reconnect time)
//! min_reads = 3                    # fewer reads in a pass: a stray, nothing happens
//! min_confidence = 0.5             # below it a pass is logged and counted as unresolved, no movement
//! # max_tags = 10000               # tags tracked at once
//! # audit_capacity = 100000        # raw reads kept for GET /audit (0: none)
//! # audit_max_age_s = 900          # ... and none older than this
//! # min_rssi = -70                 # weaker reads (dBm) do not count
//! # direction_scale_ms = 500       # a time difference this large makes a direction signal certain
//!
//! [[sources]]
//! kind = "serial-rfid"
//! protocol = "r2000"               # the only one for serial-rfid (and the default)
//! path = "/dev/ttyUSB0"
//! baud = 115200                    # the default for serial-rfid
//! antennas = [1, 2]                # ports the session cycles (1..=8); default: the [gate] antennas
//!
//! [[sources]]
//! kind = "llrp"
//! address = "10.0.0.5:5084"        # host:port; a bare host means port 5084
//! antennas = [1, 2]                # empty or absent: all the reader's antennas
//! ```
//!
//! Antenna numbers are shared by every reader of one gate. RFID sources are refused in handheld mode; barcode
//! sources are allowed in gate mode (a scanner at the gate works as on a handheld).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use dockhand_protocol::hid::{HidPosProfile, KeyTerminator, KeyboardLayout};
use dockhand_protocol::rfid::smooth::{SmoothConfig, MAX_ROLE_ANTENNAS};
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
    /// The dock gate (required in gate mode, refused otherwise).
    pub gate: Option<GateConfig>,
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
    /// Where received goods land before put-away; at a gate, the gate's location (inbound goes in, outbound leaves
    /// from it).
    #[serde(default = "default_receiving")]
    pub receiving_location: String,
}

impl WorkflowConfig {
    /// True for an RFID dock gate.
    pub fn is_gate(&self) -> bool {
        self.mode == "gate"
    }
}

/// `[gate]`: antenna roles and read smoothing of an RFID dock gate (see the module doc).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// Antennas facing the yard: an inbound tag is seen here first.
    pub outside_antennas: Vec<u16>,
    /// Antennas facing the warehouse.
    pub inside_antennas: Vec<u16>,
    /// A pass departs after this long without a read.
    #[serde(default = "default_quiet_ms")]
    pub quiet_ms: u64,
    /// Reads a pass needs to count.
    #[serde(default = "default_min_reads")]
    pub min_reads: u32,
    /// Direction confidence below which a pass makes no movement.
    #[serde(default = "default_min_confidence")]
    pub min_confidence: f64,
    /// Tags tracked at once.
    pub max_tags: Option<usize>,
    /// Raw reads kept in the audit ring.
    pub audit_capacity: Option<usize>,
    /// Age limit of the audit ring, in seconds.
    pub audit_max_age_s: Option<u64>,
    /// Reads weaker than this (dBm) do not count.
    pub min_rssi: Option<i16>,
    /// Time difference that makes one direction signal certain.
    pub direction_scale_ms: Option<u64>,
}

fn default_quiet_ms() -> u64 {
    3_000
}
fn default_min_reads() -> u32 {
    3
}
fn default_min_confidence() -> f64 {
    0.5
}

/// Largest `gate.max_tags` and `gate.audit_capacity`: each is memory held by a small gate computer.
pub const MAX_GATE_TABLE: usize = 1_000_000;

impl GateConfig {
    /// The smoother's configuration: [`SmoothConfig::gate`] with the values given.
    pub fn smooth_config(&self) -> SmoothConfig {
        let mut c = SmoothConfig::gate(&self.outside_antennas, &self.inside_antennas);
        c.quiet_ms = self.quiet_ms;
        c.min_reads = self.min_reads;
        c.min_rssi = self.min_rssi;
        if let Some(n) = self.max_tags {
            c.max_tags = n;
        }
        if let Some(n) = self.audit_capacity {
            c.audit_capacity = n;
        }
        if let Some(s) = self.audit_max_age_s {
            c.audit_max_age_ms = s.saturating_mul(1000);
        }
        if let Some(ms) = self.direction_scale_ms {
            c.direction_scale_ms = ms;
        }
        c
    }

    /// Every antenna with a role, outside first.
    pub fn antennas(&self) -> impl Iterator<Item = u16> + '_ {
        self.outside_antennas
            .iter()
            .chain(&self.inside_antennas)
            .copied()
    }

    /// The value check, naming the key at fault.
    fn check(&self) -> Result<(), (&'static str, String)> {
        for (key, list) in [
            ("gate.outside_antennas", &self.outside_antennas),
            ("gate.inside_antennas", &self.inside_antennas),
        ] {
            if list.is_empty() {
                return Err((key, "needs at least one antenna".into()));
            }
            if list.contains(&0) {
                return Err((key, "antennas are numbered from 1".into()));
            }
        }
        if let Some(a) = self
            .outside_antennas
            .iter()
            .find(|a| self.inside_antennas.contains(a))
        {
            return Err((
                "gate.inside_antennas",
                format!("antenna {a} is also an outside antenna; an antenna watches one side"),
            ));
        }
        if self.antennas().count() > MAX_ROLE_ANTENNAS {
            return Err((
                "gate.inside_antennas",
                format!("at most {MAX_ROLE_ANTENNAS} antennas in all"),
            ));
        }
        if self.quiet_ms == 0 {
            return Err(("gate.quiet_ms", "must be at least 1".into()));
        }
        if self.min_reads == 0 {
            return Err(("gate.min_reads", "must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&self.min_confidence) {
            return Err(("gate.min_confidence", "must be between 0 and 1".into()));
        }
        if self.max_tags.is_some_and(|n| n == 0 || n > MAX_GATE_TABLE) {
            return Err((
                "gate.max_tags",
                format!("must be between 1 and {MAX_GATE_TABLE}"),
            ));
        }
        if self.audit_capacity.is_some_and(|n| n > MAX_GATE_TABLE) {
            return Err((
                "gate.audit_capacity",
                format!("must be at most {MAX_GATE_TABLE}"),
            ));
        }
        if self.audit_max_age_s == Some(0) {
            return Err(("gate.audit_max_age_s", "must be at least 1".into()));
        }
        if self.direction_scale_ms == Some(0) {
            return Err(("gate.direction_scale_ms", "must be at least 1".into()));
        }
        Ok(())
    }
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
pub const SOURCE_KINDS: [&str; 5] = [
    KIND_SERIAL,
    KIND_USB_HID_POS,
    KIND_USB_KEYBOARD,
    KIND_SERIAL_RFID,
    KIND_LLRP,
];
/// An RFID reader module on a serial port (`protocol = "r2000"`).
pub const KIND_SERIAL_RFID: &str = "serial-rfid";
/// A fixed RFID reader speaking LLRP over TCP.
pub const KIND_LLRP: &str = "llrp";
/// The serial RFID protocol: Impinj-R2000 modules' "0xA0" protocol.
pub const PROTOCOL_R2000: &str = "r2000";
/// LLRP's port, when `address` names a host only.
pub const LLRP_PORT: u16 = 5084;
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
    /// `serial-barcode`, `usb-hid-pos`, `usb-keyboard`, `serial-rfid` or `llrp`.
    pub kind: String,
    /// Serial only: device path, e.g. `/dev/ttyACM0` (empty for USB and LLRP sources).
    #[serde(default)]
    pub path: PathBuf,
    /// Serial only: baud rate (default 9600 for scanners, 115200 for `serial-rfid`); see [`SourceConfig::baud`].
    #[serde(rename = "baud")]
    pub baud_rate: Option<u32>,
    /// `serial-rfid` only: the reader protocol, `r2000` (the default and only one).
    pub protocol: Option<String>,
    /// RFID only: antenna ports to read, 1-based. `serial-rfid`: the ports the session cycles (default: the
    /// `[gate]` antennas); `llrp`: empty or absent means all.
    pub antennas: Option<Vec<u16>>,
    /// `llrp` only: the reader, `host:port` (a bare host means port 5084).
    pub address: Option<String>,
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

/// Scanners' usual serial speed.
const DEFAULT_BAUD: u32 = 9600;
/// R2000 modules' factory speed.
const DEFAULT_RFID_BAUD: u32 = 115_200;
fn default_idle() -> u64 {
    50
}

impl SourceConfig {
    /// The serial baud rate: the configured one, else 9600 (115200 for `serial-rfid`).
    pub fn baud(&self) -> u32 {
        self.baud_rate.unwrap_or(if self.kind == KIND_SERIAL_RFID {
            DEFAULT_RFID_BAUD
        } else {
            DEFAULT_BAUD
        })
    }

    /// Is this an RFID reader (`serial-rfid` or `llrp`)?
    pub fn is_rfid(&self) -> bool {
        self.kind == KIND_SERIAL_RFID || self.kind == KIND_LLRP
    }

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

/// The checks of an RFID source: `(key inside the source, message)` on failure. `gate_antennas` are the antennas
/// with a role, which a serial reader cycles by default.
fn check_rfid(src: &mut SourceConfig, gate_antennas: &[u16]) -> Result<(), (&'static str, String)> {
    let barcode_keys = [
        ("terminator", src.terminator.is_some()),
        ("good_read", src.good_read.is_some()),
        ("bad_read", src.bad_read.is_some()),
        ("model", src.model.is_some()),
        ("fnc1", src.fnc1.is_some()),
        ("stx_etx", src.stx_etx),
        ("gs1", src.gs1),
        ("vendor_id", src.vendor_id.is_some()),
        ("product_id", src.product_id.is_some()),
        ("interface", src.interface.is_some()),
        ("profile", src.profile.is_some()),
        ("layout", src.layout.is_some()),
    ];
    if let Some((k, _)) = barcode_keys.iter().find(|(_, set)| *set) {
        return Err((k, format!("is not used by {:?} sources", src.kind)));
    }
    if src.antennas.as_ref().is_some_and(|a| a.contains(&0)) {
        return Err(("antennas", "antennas are numbered from 1".into()));
    }
    if src.kind == KIND_SERIAL_RFID {
        if src.address.is_some() {
            return Err((
                "address",
                "is for \"llrp\" sources; a serial reader has a path".into(),
            ));
        }
        if src.path.as_os_str().is_empty() {
            return Err(("path", "is required for \"serial-rfid\" sources".into()));
        }
        if src.protocol.as_deref().is_some_and(|p| p != PROTOCOL_R2000) {
            return Err((
                "protocol",
                format!("must be \"{PROTOCOL_R2000}\" (Impinj R2000 modules' serial protocol)"),
            ));
        }
        if src.baud() == 0 {
            return Err(("baud", "must be positive".into()));
        }
        let antennas = src.antennas.get_or_insert_with(|| {
            let mut a: Vec<u16> = gate_antennas.to_vec();
            a.sort_unstable();
            a.dedup();
            a
        });
        if antennas.is_empty() || antennas.iter().any(|&a| a > 8) {
            return Err((
                "antennas",
                "an R2000 reader has ports 1 to 8; list the ones to cycle".into(),
            ));
        }
    } else {
        for (k, set) in [
            ("path", !src.path.as_os_str().is_empty()),
            ("protocol", src.protocol.is_some()),
            ("baud", src.baud_rate.is_some()),
        ] {
            if set {
                return Err((
                    k,
                    "is not used by \"llrp\" sources; they have an address".into(),
                ));
            }
        }
        let Some(address) = &src.address else {
            return Err((
                "address",
                "is required for \"llrp\" sources (host:port)".into(),
            ));
        };
        if llrp_address(address).is_none() {
            return Err((
                "address",
                "must be host:port (e.g. \"10.0.0.5:5084\" or \"[fe80::1]:5084\") or a bare host"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// `host:port` of an LLRP address: as given when it has a port, else with port 5084; `None` when malformed.
pub fn llrp_address(address: &str) -> Option<String> {
    let a = address.trim();
    if a.is_empty() || a.contains(char::is_whitespace) || a.contains('/') {
        return None;
    }
    if a.parse::<std::net::SocketAddr>().is_ok() {
        return Some(a.to_string());
    }
    if a.parse::<std::net::IpAddr>().is_ok() {
        return Some(std::net::SocketAddr::new(a.parse().ok()?, LLRP_PORT).to_string());
    }
    match a.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            port.parse::<u16>().ok().filter(|&p| p != 0)?;
            Some(a.to_string())
        }
        Some(_) => None,
        None => Some(format!("{a}:{LLRP_PORT}")),
    }
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
        if cfg.workflow.receiving_location.is_empty() {
            return Err(invalid("workflow.receiving_location", "must not be empty"));
        }
        if cfg.workflow.receiving_location.len() > 64 {
            return Err(invalid(
                "workflow.receiving_location",
                "must be at most 64 characters",
            ));
        }
        match (&cfg.gate, cfg.workflow.is_gate()) {
            (None, true) => {
                return Err(invalid(
                    "gate",
                    "a [gate] table with outside_antennas and inside_antennas is required when \
                     workflow.mode = \"gate\"",
                ))
            }
            (Some(_), false) => {
                return Err(invalid(
                    "gate",
                    "is only used when workflow.mode = \"gate\"",
                ))
            }
            (Some(gate), true) => gate.check().map_err(|(k, m)| invalid(k, &m))?,
            (None, false) => {}
        }
        if cfg.workflow.is_gate() && !cfg.sources.iter().any(SourceConfig::is_rfid) {
            return Err(invalid(
                "sources",
                "a gate needs an RFID reader: a source of kind \"serial-rfid\" or \"llrp\"",
            ));
        }
        let gate_antennas: Vec<u16> = cfg.gate.iter().flat_map(GateConfig::antennas).collect();
        for (i, src) in cfg.sources.iter_mut().enumerate() {
            let key = |k: &str| format!("sources[{i}].{k}");
            if !SOURCE_KINDS.contains(&src.kind.as_str()) {
                return Err(invalid(
                    &key("kind"),
                    &format!(
                        "unknown source kind {:?}; supported: \"{KIND_SERIAL}\", \"{KIND_USB_HID_POS}\", \
                         \"{KIND_USB_KEYBOARD}\", \"{KIND_SERIAL_RFID}\", \"{KIND_LLRP}\"",
                        src.kind
                    ),
                ));
            }
            if src.is_rfid() {
                if !cfg.workflow.is_gate() {
                    return Err(invalid(
                        &key("kind"),
                        "RFID readers work at a dock gate: set workflow.mode = \"gate\" and a [gate] table",
                    ));
                }
                check_rfid(src, &gate_antennas).map_err(|(k, m)| invalid(&key(k), &m))?;
                if src.kind == KIND_SERIAL_RFID {
                    resolve(&mut src.path);
                }
                continue;
            }
            let rfid_keys = [
                ("protocol", src.protocol.is_some()),
                ("antennas", src.antennas.is_some()),
                ("address", src.address.is_some()),
            ];
            if let Some((k, _)) = rfid_keys.iter().find(|(_, set)| *set) {
                return Err(invalid(
                    &key(k),
                    &format!("is only for RFID sources, not {:?}", src.kind),
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
                if src.baud() == 0 {
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

    /// The issue's dock gate example, with a barcode scanner beside the readers.
    const GATE: &str = r#"
device_id = "gate-3"
site = "WH1"
data_dir = "data"

[workflow]
mode = "gate"
receiving_location = "DOCK-3"

[gate]
outside_antennas = [1]
inside_antennas = [2]
quiet_ms = 3000
min_reads = 3
min_confidence = 0.5

[[sources]]
kind = "serial-rfid"
protocol = "r2000"
path = "/dev/ttyUSB0"
baud = 115200
antennas = [1, 2]

[[sources]]
kind = "llrp"
address = "10.0.0.5:5084"
antennas = [1, 2]

[[sources]]
kind = "serial-barcode"
path = "/dev/ttyACM0"
"#;

    #[test]
    fn gate_example_parses() {
        let cfg = parse(GATE).unwrap();
        assert!(cfg.workflow.is_gate());
        let gate = cfg.gate.as_ref().unwrap();
        let smooth = gate.smooth_config();
        assert_eq!(smooth, {
            let mut d = SmoothConfig::gate(&[1], &[2]);
            d.quiet_ms = 3000;
            d.min_reads = 3;
            d
        });
        assert_eq!(gate.min_confidence, 0.5);
        let (r2000, llrp, scanner) = (&cfg.sources[0], &cfg.sources[1], &cfg.sources[2]);
        assert!(r2000.is_rfid() && llrp.is_rfid() && !scanner.is_rfid());
        assert_eq!((r2000.baud(), scanner.baud()), (115_200, 9600));
        assert_eq!(r2000.antennas.as_deref(), Some(&[1, 2][..]));
        assert_eq!(llrp.path, Path::new(""));
        // Defaults: R2000 speed and the [gate] antennas; the optional smoothing keys.
        let head = "device_id='g'\nsite='WH1'\ndata_dir='/d'\n[workflow]\nmode='gate'\n";
        let cfg = parse(&format!(
            "{head}[gate]\noutside_antennas=[3,1]\ninside_antennas=[2,4]\nmax_tags=50\naudit_capacity=0\n\
             audit_max_age_s=60\nmin_rssi=-70\ndirection_scale_ms=250\n\
             [[sources]]\nkind='serial-rfid'\npath='tty'\n[[sources]]\nkind='llrp'\naddress='reader.local'\n"
        ))
        .unwrap();
        let s = &cfg.sources[0];
        assert_eq!(
            (s.baud(), s.antennas.as_deref()),
            (115_200, Some(&[1, 2, 3, 4][..]))
        );
        assert_eq!(s.path, Path::new("/etc/dh/tty"));
        assert_eq!(cfg.sources[1].antennas, None);
        let g = cfg.gate.unwrap();
        let smooth = g.smooth_config();
        assert_eq!(
            (
                smooth.quiet_ms,
                smooth.min_reads,
                smooth.max_tags,
                smooth.audit_capacity
            ),
            (3000, 3, 50, 0)
        );
        assert_eq!(
            (
                smooth.audit_max_age_ms,
                smooth.min_rssi,
                smooth.direction_scale_ms
            ),
            (60_000, Some(-70), 250)
        );
        assert_eq!(g.min_confidence, 0.5);
        for (address, want) in [
            ("10.0.0.5:5084", Some("10.0.0.5:5084")),
            ("10.0.0.5", Some("10.0.0.5:5084")),
            ("reader.local", Some("reader.local:5084")),
            ("reader.local:15084", Some("reader.local:15084")),
            ("[::1]:5084", Some("[::1]:5084")),
            ("::1", Some("[::1]:5084")),
            ("reader:0", None),
            ("reader:http", None),
            ("", None),
            ("a b", None),
            ("http://reader", None),
        ] {
            assert_eq!(llrp_address(address).as_deref(), want, "{address:?}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn bad_gate_keys_and_values_fail_naming_the_key() {
        let gate = "[workflow]\nmode='gate'\n[gate]\noutside_antennas=[1]\ninside_antennas=[2]\n";
        let rfid = "[[sources]]\nkind='serial-rfid'\npath='/dev/ttyUSB0'\n";
        let llrp = "[[sources]]\nkind='llrp'\naddress='10.0.0.5'\n";
        let cases: &[(&str, String, &str)] = &[
            ("gate mode without [gate]", format!("[workflow]\nmode='gate'\n{rfid}"), "gate"),
            ("[gate] in handheld mode", format!("[gate]\noutside_antennas=[1]\ninside_antennas=[2]\n{rfid}"), "`gate`"),
            ("reader in handheld mode", rfid.to_string(), "sources[0].kind"),
            ("gate without a reader", format!("{gate}[[sources]]\nkind='serial-barcode'\npath='/x'\n"), "`sources`"),
            ("missing outside antennas", format!("[workflow]\nmode='gate'\n[gate]\ninside_antennas=[2]\n{rfid}"), "outside_antennas"),
            ("unknown gate key", format!("{gate}quiet=1\n{rfid}"), "quiet"),
            ("no outside antenna", format!("[workflow]\nmode='gate'\n[gate]\noutside_antennas=[]\ninside_antennas=[2]\n{rfid}"), "gate.outside_antennas"),
            ("antenna 0", format!("[workflow]\nmode='gate'\n[gate]\noutside_antennas=[1]\ninside_antennas=[0]\n{rfid}"), "gate.inside_antennas"),
            ("antenna on both sides", format!("[workflow]\nmode='gate'\n[gate]\noutside_antennas=[1,2]\ninside_antennas=[2]\n{rfid}"), "gate.inside_antennas"),
            ("negative antenna", format!("[workflow]\nmode='gate'\n[gate]\noutside_antennas=[-1]\ninside_antennas=[2]\n{rfid}"), "outside_antennas"),
            ("quiet_ms 0", format!("{gate}quiet_ms=0\n{rfid}"), "gate.quiet_ms"),
            ("min_reads 0", format!("{gate}min_reads=0\n{rfid}"), "gate.min_reads"),
            ("min_confidence above 1", format!("{gate}min_confidence=1.5\n{rfid}"), "gate.min_confidence"),
            ("min_confidence negative", format!("{gate}min_confidence=-0.1\n{rfid}"), "gate.min_confidence"),
            ("min_confidence not a number", format!("{gate}min_confidence='high'\n{rfid}"), "min_confidence"),
            ("max_tags 0", format!("{gate}max_tags=0\n{rfid}"), "gate.max_tags"),
            ("max_tags huge", format!("{gate}max_tags=100000000\n{rfid}"), "gate.max_tags"),
            ("audit_capacity huge", format!("{gate}audit_capacity=100000000\n{rfid}"), "gate.audit_capacity"),
            ("audit_max_age_s 0", format!("{gate}audit_max_age_s=0\n{rfid}"), "gate.audit_max_age_s"),
            ("direction_scale_ms 0", format!("{gate}direction_scale_ms=0\n{rfid}"), "gate.direction_scale_ms"),
            ("bad protocol", format!("{gate}{rfid}protocol='llrp'\n"), "sources[0].protocol"),
            ("serial reader without path", format!("{gate}[[sources]]\nkind='serial-rfid'\n"), "sources[0].path"),
            ("R2000 port 9", format!("{gate}{rfid}antennas=[1,9]\n"), "sources[0].antennas"),
            ("R2000 no ports", format!("{gate}{rfid}antennas=[]\n"), "sources[0].antennas"),
            ("reader antenna 0", format!("{gate}{llrp}antennas=[0]\n"), "sources[0].antennas"),
            ("baud 0", format!("{gate}{rfid}baud=0\n"), "sources[0].baud"),
            ("terminator on a reader", format!("{gate}{rfid}terminator='cr'\n"), "sources[0].terminator"),
            ("feedback on a reader", format!("{gate}{llrp}good_read='x'\n"), "sources[0].good_read"),
            ("address on a serial reader", format!("{gate}{rfid}address='10.0.0.5'\n"), "sources[0].address"),
            ("llrp without address", format!("{gate}[[sources]]\nkind='llrp'\n"), "sources[0].address"),
            ("llrp with a path", format!("{gate}{llrp}path='/dev/x'\n"), "sources[0].path"),
            ("llrp with a baud", format!("{gate}{llrp}baud=9600\n"), "sources[0].baud"),
            ("llrp bad address", format!("{gate}[[sources]]\nkind='llrp'\naddress='10.0.0.5:99999'\n"), "sources[0].address"),
            ("antennas on a scanner", format!("{gate}{rfid}[[sources]]\nkind='serial-barcode'\npath='/x'\nantennas=[1]\n"), "sources[1].antennas"),
            ("protocol on a scanner", "[[sources]]\nkind='serial-barcode'\npath='/x'\nprotocol='r2000'\n".into(), "sources[0].protocol"),
            ("gate location too long", format!("[workflow]\nmode='gate'\nreceiving_location='{}'\n{}{rfid}", "D".repeat(65),
                "[gate]\noutside_antennas=[1]\ninside_antennas=[2]\n"), "workflow.receiving_location"),
        ];
        for (name, extra, key) in cases {
            let text = format!("device_id='gate-3'\nsite='WH1'\ndata_dir='/d'\n{extra}");
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{name}: {err}");
        }
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
