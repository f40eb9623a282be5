//! `dockhand-server`: exactly-once movement ingest and authoritative stock over HTTPS (DESIGN §1, §5).
//!
//! - [`app`] builds the whole HTTP API over an [`AppState`]; tests drive it without a socket.
//! - [`run`] is the server process: data directory, TLS material, admin token, store, HTTPS listener, and
//!   graceful shutdown when the given future completes.
//! - [`enroll_device`] is `dockhand-server enroll`: it issues a device credential in the registry that goes with
//!   the configured store (device files, which work while a sled server runs on the same directory, or the
//!   PostgreSQL `devices` table that every node reads). [`enroll`] is the file registry's own function.
//!
//! # The data directory
//!
//! ```text
//! <data>/ca.pem ca.key server.pem server.key   TLS material (see tls.rs), keys mode 0600
//! <data>/admin.token                            the office credential, 64 hex chars, mode 0600
//! <data>/server.toml                            optional: the config when --config is not given
//! <data>/devices/<device_id>.json               sled store only: one record per enrolled device (token hash only)
//! <data>/sled/                                  sled store only: the database (movements, high-water marks, stock)
//! ```

// The OpenAPI document's hand-written `json!` schemas nest deeper than the default limit.
#![recursion_limit = "256"]

pub mod auth;
pub mod config;
pub mod devices;
pub mod epcis;
pub mod error;
mod fsutil;
pub mod import;
pub mod metrics;
pub mod reconcile;
pub mod reports;
mod routes;
pub mod state;
pub mod store;
pub mod web;
pub mod webhooks;
// The PostgreSQL store sits in store/ beside sled; it is declared here, not in store/mod.rs, only until the owner
// of store/mod.rs adds `pub mod postgres;` there.
#[path = "store/postgres.rs"]
pub mod postgres_store;
mod tls;

use std::future::Future;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;

pub use crate::auth::AdminToken;
pub use crate::config::{ServerConfig, StoreKind};
pub use crate::devices::{enroll, DeviceRegistry, Devices, PgDevices};
pub use crate::error::{ApiError, Error};
pub use crate::postgres_store::PgStore;
#[doc(hidden)]
pub use crate::routes::fuzzing;
pub use crate::routes::{app, routes};
pub use crate::state::AppState;
pub use crate::store::{PushOutcome, SledStore, StockFilter, StockRow, Store, StoreError};

/// What `dockhand-server run` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// The data directory; created if missing.
    pub data_dir: PathBuf,
    /// Address to listen on, e.g. `0.0.0.0:8443` or `127.0.0.1:0` (any free port).
    pub listen: String,
    /// Optional TOML tuning file ([`ServerConfig`]); without it, `<data_dir>/server.toml` if present
    /// ([`ServerConfig::resolve`]).
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
    let config = ServerConfig::resolve(&data_dir, opts.config.as_deref())?;

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
    // The registry goes with the store: nodes sharing a database must share device credentials too.
    let (store, devices): (Arc<dyn Store>, Arc<dyn DeviceRegistry>) = match config.store {
        StoreKind::Postgres => {
            // The synchronous postgres client drives each connection with a runtime of its own, which panics when
            // created, used or dropped on an async worker: open (and, at the end, drop) the store off the runtime.
            let (url, max) = (
                postgres_url(&config)?.to_string(),
                config.postgres_max_connections,
            );
            let pg = Arc::new(
                tokio::task::spawn_blocking(move || PgStore::open(&url, max))
                    .await
                    .map_err(|e| StoreError::Postgres(format!("opening the store: {e}")))??,
            );
            warn_unused_device_files(&devices_dir(&data_dir));
            (pg.clone(), Arc::new(PgDevices::new(pg)))
        }
        StoreKind::Sled => (
            Arc::new(SledStore::open(
                &data_dir.join("sled"),
                config.sled_cache_mib * 1024 * 1024,
            )?),
            Arc::new(Devices::open(&devices_dir(&data_dir))?),
        ),
    };
    let last_store = store.clone();
    let state = AppState::new(store, devices.clone(), admin)
        .with_body_limit(config.max_body_bytes)
        .with_offline_after(config.device_offline_after());

    // Everything from here may fail; whatever happens, the registry is flushed and the store dropped off the
    // runtime afterwards (see the PostgreSQL arm above), so an early error cannot panic on the way out.
    let served: Result<(), Error> = async move {
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

        // Webhook deliveries: a task of their own, ended by the same shutdown as the listener, and awaited below
        // so its handle on the store is gone before the store is dropped.
        let dispatcher = tokio::spawn(webhooks::dispatcher::run(
            state.store.clone(),
            config.webhooks(),
            state.closing.subscribe(),
        ));

        let handle = axum_server::Handle::new();
        let grace = config.shutdown_timeout();
        let shutdown_handle = handle.clone();
        let closing = state.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!(
                grace_secs = grace.as_secs(),
                "shutting down; draining in-flight requests"
            );
            closing.begin_shutdown();
            shutdown_handle.graceful_shutdown(Some(grace));
        });

        axum_server::from_tcp_rustls(listener, rustls_config)
            .map_err(bind_err)?
            .handle(handle)
            .serve(app(state.clone()).into_make_service())
            .await
            .map_err(Error::Serve)?;
        // The listener may also stop on its own (an error above returns early, and the dispatcher then ends
        // with the runtime); normally `closing` is already set and this returns at once.
        state.begin_shutdown();
        let _ = dispatcher.await;
        Ok(())
    }
    .await;
    // Last-seen times are written lazily (devices.rs); keep the latest across the restart.
    match tokio::task::spawn_blocking(move || devices.flush_seen()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not save the devices' last-seen times"),
        Err(e) => tracing::warn!(error = %e, "saving the devices' last-seen times failed"),
    }
    // See the PostgreSQL arm above: the store's connections must close off the runtime.
    let _ = tokio::task::spawn_blocking(move || drop(last_store)).await;
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// `dockhand-server enroll`: issues a token for `device_id` at `site` in the device registry of the server on
/// `data_dir` and returns it. The configuration is found as for `run` ([`ServerConfig::resolve`]: `config`, else
/// `<data_dir>/server.toml` if present): with `store = "postgres"` the device goes into the database's `devices`
/// table, where every node sees it at once; otherwise into `<data_dir>/devices/`, which works while a sled server
/// runs on the directory. `rotate` as in [`DeviceRegistry::enroll`].
pub fn enroll_device(
    data_dir: &Path,
    config: Option<&Path>,
    device_id: &str,
    site: &str,
    rotate: bool,
) -> Result<String, Error> {
    let config = ServerConfig::resolve(data_dir, config)?;
    let token = match config.store {
        // One connection: enroll makes a single statement (after the migrations, if the database lacks any).
        StoreKind::Postgres => {
            PgDevices::open(postgres_url(&config)?, 1)?.enroll(device_id, site, rotate)?
        }
        StoreKind::Sled => enroll(&devices_dir(data_dir), device_id, site, rotate)?,
    };
    Ok(token)
}

fn postgres_url(config: &ServerConfig) -> Result<&str, Error> {
    config
        .postgres_url
        .as_deref()
        .ok_or_else(|| Error::Config("store = \"postgres\" needs postgres_url".into()))
}

/// With PostgreSQL the device files of the data directory are not read; say so if there are any, since a device
/// enrolled into them (`enroll` without the node's config) would be refused with 401.
fn warn_unused_device_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let ignored = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .count();
    if ignored > 0 {
        tracing::warn!(
            dir = %dir.display(),
            files = ignored,
            "device files are ignored with store = \"postgres\": device credentials live in the database; \
             enroll those devices again with `dockhand-server enroll --config <this node's config>`"
        );
    }
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
