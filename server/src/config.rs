//! The optional `--config FILE` (TOML). Every key is optional; unknown keys fail fast with their name.
//!
//! ```toml
//! sled_cache_mib = 64           # sled page cache
//! max_body_bytes = 4194304      # larger request bodies get 413
//! shutdown_timeout_secs = 10    # grace period for in-flight requests on SIGTERM / Ctrl-C
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;

/// Server tuning, with defaults for everything.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// sled page cache in MiB.
    pub sled_cache_mib: u64,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Grace period for in-flight requests at shutdown, in seconds.
    pub shutdown_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            sled_cache_mib: crate::store::sled::DEFAULT_CACHE_BYTES / (1024 * 1024),
            max_body_bytes: crate::state::DEFAULT_BODY_LIMIT,
            shutdown_timeout_secs: 10,
        }
    }
}

impl ServerConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: ServerConfig =
            toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        if config.sled_cache_mib == 0 || config.max_body_bytes == 0 {
            return Err(Error::Config(format!(
                "{}: sled_cache_mib and max_body_bytes must be positive",
                path.display()
            )));
        }
        Ok(config)
    }

    /// The shutdown grace period.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_table() {
        let cases: &[(&str, Result<u64, &str>)] = &[
            ("", Ok(64)),
            ("sled_cache_mib = 8", Ok(8)),
            ("sled_cache_mb = 8", Err("sled_cache_mb")),
            ("sled_cache_mib = \"x\"", Err("sled_cache_mib")),
            ("sled_cache_mib = 0", Err("positive")),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        for (text, want) in cases {
            std::fs::write(&path, text).unwrap();
            match (ServerConfig::load(&path), want) {
                (Ok(c), Ok(mib)) => assert_eq!(c.sled_cache_mib, *mib, "{text}"),
                (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }
}
