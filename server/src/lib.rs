//! `dockhand-server`: exactly-once movement ingest and authoritative stock over HTTPS (DESIGN §1, §5).
//!
//! - [`app`] builds the whole HTTP API over an [`AppState`]; tests drive it without a socket.
//! - [`run`] is the server process: data directory, TLS material, admin token, store, HTTPS listener, and
//!   graceful shutdown when the given future completes.
//! - [`enroll`] issues device credentials; it works while a server runs on the same directory.
//!
//! # The data directory
//!
//! ```text
//! <data>/ca.pem ca.key server.pem server.key   TLS material (see tls.rs), keys mode 0600
//! <data>/admin.token                            the office credential, 64 hex chars, mode 0600
//! <data>/devices/<device_id>.json               one record per enrolled device (token hash only)
//! <data>/sled/                                  the sled database (movements, high-water marks, stock)
//! ```

pub mod auth;
pub mod config;
pub mod devices;
pub mod error;
mod fsutil;
mod routes;
pub mod state;
pub mod store;
mod tls;

use std::future::Future;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;

pub use crate::auth::AdminToken;
pub use crate::config::ServerConfig;
pub use crate::devices::{enroll, Devices};
pub use crate::error::{ApiError, Error};
pub use crate::routes::app;
pub use crate::state::AppState;
pub use crate::store::{PushOutcome, SledStore, StockFilter, StockRow, Store, StoreError};

/// What `dockhand-server run` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// The data directory; created if missing.
    pub data_dir: PathBuf,
    /// Address to listen on, e.g. `0.0.0.0:8443` or `127.0.0.1:0` (any free port).
    pub listen: String,
    /// Optional TOML tuning file ([`ServerConfig`]).
    pub config: Option<PathBuf>,
    /// Certificate (PEM chain) to serve instead of the generated one; needs `key`.
    pub cert: Option<PathBuf>,
    /// Private key (PEM) for `cert`.
    pub key: Option<PathBuf>,
    /// Extra DNS names or IP addresses for the generated server certificate.
    pub sans: Vec<String>,
}

/// The devices directory inside a data directory.
pub fn devices_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("devices")
}

/// Runs the server until `shutdown` completes, then drains in-flight requests (bounded by the configured
/// timeout) and returns.
///
/// Once listening it prints to stdout: `dockhand-server listening on https://ADDR`, `ca: PATH` and
/// `admin token: PATH` (paths absolute; the `ca:` line is omitted with `--cert`).
pub async fn run(
    opts: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    // One crypto provider process-wide (ring, BUILD-NOTES); fails harmlessly if already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();

    std::fs::create_dir_all(&opts.data_dir).map_err(|source| Error::Io {
        path: opts.data_dir.clone(),
        source,
    })?;
    let data_dir = std::fs::canonicalize(&opts.data_dir).map_err(|source| Error::Io {
        path: opts.data_dir.clone(),
        source,
    })?;
    let config = match &opts.config {
        Some(path) => ServerConfig::load(path)?,
        None => ServerConfig::default(),
    };

    let tls_files = match (&opts.cert, &opts.key) {
        (Some(cert), Some(key)) => tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: None,
        },
        (None, None) => tls::ensure_generated(&data_dir, &opts.sans)?,
        _ => return Err(Error::Config("--cert and --key go together".into())),
    };
    let rustls_config = RustlsConfig::from_pem_file(&tls_files.cert, &tls_files.key)
        .await
        .map_err(|e| Error::Tls {
            path: tls_files.cert.clone(),
            message: e.to_string(),
        })?;

    let admin_path = data_dir.join("admin.token");
    let admin = AdminToken::load_or_create(&admin_path)?;
    let store = SledStore::open(&data_dir.join("sled"), config.sled_cache_mib * 1024 * 1024)?;
    let devices = Devices::open(&devices_dir(&data_dir))?;
    let state = AppState::new(Arc::new(store), Arc::new(devices), admin)
        .with_body_limit(config.max_body_bytes);

    let listener = TcpListener::bind(&opts.listen).map_err(|source| Error::Bind {
        addr: opts.listen.clone(),
        source,
    })?;
    let bind_err = |source| Error::Bind {
        addr: opts.listen.clone(),
        source,
    };
    listener.set_nonblocking(true).map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;

    announce(&addr, tls_files.ca.as_deref(), &admin_path).map_err(|source| Error::Io {
        path: PathBuf::from("<stdout>"),
        source,
    })?;
    tracing::info!(%addr, data = %data_dir.display(), "dockhand-server listening");

    let handle = axum_server::Handle::new();
    let grace = config.shutdown_timeout();
    let shutdown_handle = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down; draining in-flight requests"
        );
        shutdown_handle.graceful_shutdown(Some(grace));
    });

    axum_server::from_tcp_rustls(listener, rustls_config)
        .map_err(bind_err)?
        .handle(handle)
        .serve(app(state).into_make_service())
        .await
        .map_err(Error::Serve)?;
    tracing::info!("stopped");
    Ok(())
}

/// The stdout lines scripts and tests wait for.
fn announce(addr: &std::net::SocketAddr, ca: Option<&Path>, admin: &Path) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "dockhand-server listening on https://{addr}")?;
    if let Some(ca) = ca {
        writeln!(out, "ca: {}", ca.display())?;
    }
    writeln!(out, "admin token: {}", admin.display())?;
    out.flush()
}
