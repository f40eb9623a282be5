//! The optional `--config FILE` (TOML). Every key is optional; unknown keys fail fast with their name.
//!
//! Without `--config`, `run` and `enroll` read `<data>/server.toml` when it exists ([`ServerConfig::resolve`]):
//! both commands must agree on the store, because the store decides where device credentials live (files in the
//! data directory with sled, the `devices` table with PostgreSQL).
//!
//! ```toml
//! sled_cache_mib = 64           # sled page cache
//! max_body_bytes = 4194304      # larger request bodies get 413
//! shutdown_timeout_secs = 10    # grace period for in-flight requests on SIGTERM / Ctrl-C
//! store = "sled"                # or "postgres": several server nodes on one database
//! postgres_url = "host=db.example user=dockhand dbname=dockhand"   # required with store = "postgres"
//! postgres_max_connections = 8  # connections this node keeps to PostgreSQL
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;

/// The config file read from the data directory when `--config` is not given.
pub const DEFAULT_FILE: &str = "server.toml";

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
    /// Which backend holds movements, stock and master data.
    pub store: StoreKind,
    /// libpq connection string (`host=... user=... dbname=...`) or `postgresql://` URL; needed for PostgreSQL.
    pub postgres_url: Option<String>,
    /// Connections this node keeps open to PostgreSQL.
    pub postgres_max_connections: usize,
    /// A device not heard from (push or pull) for this long counts as offline on the dashboard and in
    /// `/metrics`.
    pub device_offline_after_secs: u64,
    /// How long one webhook request may take before it counts as failed, in milliseconds.
    pub webhook_timeout_ms: u64,
    /// Attempts before a webhook delivery is given up (shown as failed, retryable by hand).
    pub webhook_max_attempts: u32,
}

/// The storage backend a server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Embedded sled database in the data directory (one node).
    #[default]
    Sled,
    /// A PostgreSQL database shared by any number of server nodes.
    Postgres,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            sled_cache_mib: crate::store::sled::DEFAULT_CACHE_BYTES / (1024 * 1024),
            max_body_bytes: crate::state::DEFAULT_BODY_LIMIT,
            shutdown_timeout_secs: 10,
            store: StoreKind::Sled,
            postgres_url: None,
            postgres_max_connections: crate::postgres_store::DEFAULT_MAX_CONNECTIONS,
            device_offline_after_secs: 120,
            webhook_timeout_ms: 10_000,
            webhook_max_attempts: 25,
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
        if config.sled_cache_mib == 0
            || config.max_body_bytes == 0
            || config.device_offline_after_secs == 0
        {
            return Err(Error::Config(format!(
                "{}: sled_cache_mib, max_body_bytes and device_offline_after_secs must be positive",
                path.display()
            )));
        }
        if config.store == StoreKind::Postgres && config.postgres_url.is_none() {
            return Err(Error::Config(format!(
                "{}: store = \"postgres\" needs postgres_url",
                path.display()
            )));
        }
        if config.webhook_timeout_ms == 0 || config.webhook_max_attempts == 0 {
            return Err(Error::Config(format!(
                "{}: webhook_timeout_ms and webhook_max_attempts must be positive",
                path.display()
            )));
        }
        if config.postgres_max_connections == 0 {
            return Err(Error::Config(format!(
                "{}: postgres_max_connections must be positive",
                path.display()
            )));
        }
        Ok(config)
    }

    /// The configuration of the server on `data_dir`: the file `explicit` (`--config`) if given, else
    /// `<data_dir>/server.toml` if it exists, else the defaults (the sled store).
    pub fn resolve(data_dir: &Path, explicit: Option<&Path>) -> Result<Self, Error> {
        if let Some(path) = explicit {
            return Self::load(path);
        }
        let default = data_dir.join(DEFAULT_FILE);
        match std::fs::metadata(&default) {
            Ok(_) => Self::load(&default),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(Error::Io {
                path: default,
                source,
            }),
        }
    }

    /// The shutdown grace period.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// How long a silent device stays online.
    pub fn device_offline_after(&self) -> Duration {
        Duration::from_secs(self.device_offline_after_secs)
    }

    /// The webhook dispatcher's settings.
    pub fn webhooks(&self) -> crate::webhooks::dispatcher::DispatchConfig {
        crate::webhooks::dispatcher::DispatchConfig {
            timeout: Duration::from_millis(self.webhook_timeout_ms),
            max_attempts: self.webhook_max_attempts,
            ..Default::default()
        }
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
            ("store = \"postgres\"", Err("postgres_url")),
            ("store = \"postgres\"\npostgres_url = \"host=db\"", Ok(64)),
            ("store = \"mysql\"", Err("store")),
            ("postgres_max_connections = 0", Err("positive")),
            ("device_offline_after_secs = 0", Err("positive")),
            ("device_offline_after_secs = 5", Ok(64)),
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
