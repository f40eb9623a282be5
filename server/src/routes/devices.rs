//! Devices (admin): list with last-seen time and backlog, enroll, revoke, and the high-water mark.
//!
//! Enrolling through the API follows the rules of `dockhand-server enroll` (both go through the same
//! [`DeviceRegistry`](crate::devices::DeviceRegistry)): valid id and site, the id `office` is reserved, an enrolled
//! id is refused (409) unless `"rotate": true`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::input::Params;
use super::{blocking, JsonBody};
use crate::auth::AdminAuth;
use crate::devices::{DeviceError, DeviceRecord};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub(crate) struct HighWater {
    device_id: String,
    acked_through: u64,
}

/// A device as the office sees it (never its token hash).
#[derive(Debug, Serialize)]
pub(crate) struct DeviceView {
    device_id: String,
    site: String,
    #[serde(with = "time::serde::rfc3339")]
    enrolled_at: OffsetDateTime,
    revoked: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
    /// The last authenticated push or pull.
    #[serde(with = "time::serde::rfc3339::option")]
    last_seen: Option<OffsetDateTime>,
    /// Unacknowledged movements the device reported on its last push.
    backlog: Option<u64>,
    /// The agent version its latest `User-Agent` named (`dockhand-agent/<version>`); null if unknown.
    version: Option<String>,
    /// That `User-Agent` as sent (cleaned); null if it sent none.
    user_agent: Option<String>,
}

impl From<DeviceRecord> for DeviceView {
    fn from(r: DeviceRecord) -> Self {
        DeviceView {
            version: r.version().map(str::to_string),
            user_agent: r.user_agent,
            device_id: r.device_id,
            site: r.site,
            enrolled_at: r.enrolled_at,
            revoked: r.revoked_at.is_some(),
            revoked_at: r.revoked_at,
            last_seen: r.last_seen,
            backlog: r.backlog,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct DeviceList {
    devices: Vec<DeviceView>,
}

/// `POST /v1/devices` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Enroll {
    device_id: String,
    site: String,
    /// Issue a new token for an enrolled device (the old one stops working).
    #[serde(default)]
    rotate: bool,
}

/// `POST /v1/devices` answer: the token, shown this once.
#[derive(Debug, Serialize)]
pub(crate) struct Enrolled {
    device_id: String,
    site: String,
    token: String,
}

pub(crate) async fn list(
    _admin: AdminAuth,
    State(state): State<AppState>,
    q: Params,
) -> Result<Json<DeviceList>, ApiError> {
    q.finish()?;
    let devices = state.devices.clone();
    let list = blocking(move || Ok(devices.list()?)).await?;
    Ok(Json(DeviceList {
        devices: list.into_iter().map(DeviceView::from).collect(),
    }))
}

pub(crate) async fn enroll(
    _admin: AdminAuth,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Enroll>,
) -> Result<(StatusCode, Json<Enrolled>), ApiError> {
    let devices = state.devices.clone();
    let (id, site) = (body.device_id.clone(), body.site.clone());
    let token = blocking(move || {
        devices
            .enroll(&id, &site, body.rotate)
            .map_err(|e| match e {
                DeviceError::InvalidId(_) | DeviceError::Reserved(_) => {
                    ApiError::bad_field("device_id", e)
                }
                DeviceError::InvalidSite(_) => ApiError::bad_field("site", e),
                DeviceError::AlreadyEnrolled(id) => ApiError::Refused(format!(
                    "device {id:?} is already enrolled; send \"rotate\": true to issue a new token"
                )),
                other => ApiError::Devices(other),
            })
    })
    .await?;
    tracing::info!(device = %body.device_id, site = %body.site, rotate = body.rotate, "device enrolled through the API");
    Ok((
        StatusCode::CREATED,
        Json(Enrolled {
            device_id: body.device_id,
            site: body.site,
            token,
        }),
    ))
}

pub(crate) async fn revoke(
    _admin: AdminAuth,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<DeviceView>, ApiError> {
    let Path(id) = id?;
    let devices = state.devices.clone();
    let lookup = id.clone();
    match blocking(move || Ok(devices.revoke(&lookup)?)).await? {
        Some(record) => Ok(Json(record.into())),
        None => Err(ApiError::NotFound(format!("no device {id:?}"))),
    }
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
    let hw = blocking(move || {
        if devices.get(&lookup)?.is_none() {
            return Ok(None);
        }
        Ok(Some(store.high_water(&lookup)?))
    })
    .await?;
    match hw {
        Some(acked_through) => Ok(Json(HighWater {
            device_id: id,
            acked_through,
        })),
        None => Err(ApiError::NotFound(format!("no device {id:?}"))),
    }
}
