//! The state every handler shares.

use std::sync::Arc;

use crate::auth::AdminToken;
use crate::devices::DeviceRegistry;
use crate::store::Store;

/// Largest request body accepted by default (DESIGN §5 allows 413 above it).
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Shared handler state: cheap to clone (all `Arc`s).
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) devices: Arc<dyn DeviceRegistry>,
    pub(crate) admin: Arc<AdminToken>,
    pub(crate) body_limit: usize,
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
        }
    }

    /// Sets the largest accepted request body, in bytes.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The store, e.g. for tests that check what a request changed.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}
