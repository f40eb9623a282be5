//! `GET /v1/devices/{id}/high-water` (admin): how far a device's movements are applied.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub(crate) struct HighWater {
    device_id: String,
    acked_through: u64,
}

/// The device's high-water mark; 404 for a device that was never enrolled.
pub(crate) async fn high_water(
    _admin: AdminAuth,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<HighWater>, ApiError> {
    let Path(id) = id?;
    let (devices, store) = (state.devices.clone(), state.store.clone());
    let lookup = id.clone();
    let hw = tokio::task::spawn_blocking(move || -> Result<Option<u64>, ApiError> {
        if devices.get(&lookup)?.is_none() {
            return Ok(None);
        }
        Ok(Some(store.high_water(&lookup)?))
    })
    .await??;
    match hw {
        Some(acked_through) => Ok(Json(HighWater {
            device_id: id,
            acked_through,
        })),
        None => Err(ApiError::NotFound(format!("no device {id:?}"))),
    }
}
