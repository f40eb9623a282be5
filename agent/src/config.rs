//! The agent's TOML configuration (DESIGN §8).
//!
//! Checked in two phases, ripgrep style: serde reads the file with `deny_unknown_fields` (so a misspelt key fails
//! fast, named), then [`Config::load`] validates values and resolves relative paths against the config file's
//! directory.

use std::path::{Path, PathBuf};
use std::str::FromStr;

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

/// One `[[sources]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `serial-barcode` (others come with later issues).
    pub kind: String,
    /// Device path, e.g. `/dev/ttyACM0`.
    pub path: PathBuf,
    /// Baud rate.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// `cr`, `lf`, `crlf` or `none`.
    #[serde(default = "default_terminator")]
    pub terminator: String,
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
    /// The character a keyboard-wedge scanner sends for FNC1, e.g. `"|"`.
    pub fnc1: Option<String>,
    /// Treat unbracketed digit strings without AIM id as GS1 element strings.
    #[serde(default)]
    pub gs1: bool,
}

fn default_baud() -> u32 {
    9600
}
fn default_terminator() -> String {
    "crlf".into()
}
fn default_idle() -> u64 {
    50
}

impl SourceConfig {
    /// The parsed terminator (validated at load).
    pub fn terminator(&self) -> Terminator {
        Terminator::from_str(&self.terminator).unwrap_or(Terminator::CrLf)
    }

    /// The FNC1 substitute as one byte (validated at load).
    pub fn fnc1_byte(&self) -> Option<u8> {
        self.fnc1.as_deref().and_then(|s| s.bytes().next())
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
            if src.kind != "serial-barcode" {
                return Err(invalid(
                    &key("kind"),
                    &format!(
                        "unknown source kind {:?}; supported: \"serial-barcode\"",
                        src.kind
                    ),
                ));
            }
            if Terminator::from_str(&src.terminator).is_err() {
                return Err(invalid(
                    &key("terminator"),
                    "must be \"cr\", \"lf\", \"crlf\" or \"none\"",
                ));
            }
            if src.baud == 0 {
                return Err(invalid(&key("baud"), "must be positive"));
            }
            if let Some(f) = &src.fnc1 {
                if f.len() != 1 {
                    return Err(invalid(&key("fnc1"), "must be exactly one ASCII character"));
                }
            }
            resolve(&mut src.path);
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
        assert_eq!(cfg.sources[0].good_read.as_deref(), Some("\u{6}"));
        assert_eq!(cfg.sources[0].terminator(), Terminator::CrLf);
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
                "bad fnc1",
                "[[sources]]\nkind='serial-barcode'\npath='/x'\nfnc1='ab'\n",
                "sources[0].fnc1",
            ),
        ];
        for (name, extra, key) in cases {
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
