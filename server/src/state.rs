//! The state every handler shares.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::AdminToken;
use crate::devices::DeviceRegistry;
use crate::metrics::ServerMetrics;
use crate::store::Store;

/// Largest request body accepted by default (DESIGN §5 allows 413 above it).
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// How long a silent device counts as online by default.
pub const DEFAULT_OFFLINE_AFTER: Duration = Duration::from_secs(120);

/// Shared handler state: cheap to clone (all `Arc`s).
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) devices: Arc<dyn DeviceRegistry>,
    pub(crate) admin: Arc<AdminToken>,
    pub(crate) body_limit: usize,
    /// A device silent for longer is offline (dashboard, `/metrics`).
    pub(crate) offline_after: Duration,
    /// This process's counters for `/metrics`; every clone of the state (every handler) shares them.
    pub(crate) metrics: Arc<ServerMetrics>,
    /// Becomes true when the server begins to shut down: long-lived answers (the dashboard's live streams) end
    /// then instead of holding the graceful shutdown until its timeout.
    pub(crate) closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppState {
    /// State over a store, the device registry that goes with it and the admin credential, with the default body
    /// limit.
    pub fn new(store: Arc<dyn Store>, devices: Arc<dyn DeviceRegistry>, admin: AdminToken) -> Self {
        AppState {
            store,
            devices,
            admin: Arc::new(admin),
            body_limit: DEFAULT_BODY_LIMIT,
            offline_after: DEFAULT_OFFLINE_AFTER,
            metrics: Arc::default(),
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Sets the largest accepted request body, in bytes.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Sets how long a silent device stays online.
    pub fn with_offline_after(mut self, after: Duration) -> Self {
        self.offline_after = after;
        self
    }

    /// The store, e.g. for tests that check what a request changed.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// This process's `/metrics` counters, e.g. for tests that check what a request counted.
    pub fn metrics(&self) -> &ServerMetrics {
        &self.metrics
    }

    /// Tells long-lived answers (the dashboard's live streams) that the server is shutting down; they end.
    pub fn begin_shutdown(&self) {
        self.closing.send_replace(true);
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}
