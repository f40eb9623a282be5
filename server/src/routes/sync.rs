//! Device sync (DESIGN §5): `POST /v1/sync/push` (exactly-once movement ingest, §3.3) and `GET /v1/sync/pull`
//! (master data for the device's site).
//!
//! Push checks everything that does not need the store, naming the offending field (400), then hands the batch
//! to [`Store::push`](crate::store::Store::push), which decides replay, gap or conflict and applies the rest
//! atomically and durably before we answer.
//!
//! Both record that the device was seen (and the backlog a push reports) for the office's device list.

use axum::extract::State;
use axum::Json;
use dockhand_protocol::sync::{PullResponse, PushRequest, PushResponse};
use time::OffsetDateTime;

use super::input::Params;
use super::{blocking, JsonBody};
use crate::auth::DeviceAuth;
use crate::devices::Device;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::PushOutcome;

/// Applies a device's batch; answers `{"acked_through": N}`.
pub(crate) async fn push(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    JsonBody(req): JsonBody<PushRequest>,
) -> Result<Json<PushResponse>, ApiError> {
    check(&device, &req)?;
    let (store, devices) = (state.store.clone(), state.devices.clone());
    let (site, device_id) = (device.site.clone(), device.id.clone());
    let (movements, backlog) = (req.movements, req.backlog);
    let outcome = blocking(move || {
        devices.touch(&device_id, OffsetDateTime::now_utc(), backlog)?;
        Ok(store.push(&site, &device_id, &movements)?)
    })
    .await?;
    match outcome {
        PushOutcome::Acked { acked_through } => {
            tracing::debug!(device = %device.id, acked_through, "push acknowledged");
            Ok(Json(PushResponse { acked_through }))
        }
        PushOutcome::Gap { expected_seq } => {
            tracing::info!(device = %device.id, expected_seq, "push refused: sequence gap; the agent resends from expected_seq");
            Err(ApiError::SeqGap { expected_seq })
        }
        PushOutcome::Conflict { seq } => {
            tracing::warn!(device = %device.id, seq, "push refused: a movement was re-sent with different content; check the device's journal");
            Err(ApiError::Conflict { seq })
        }
    }
}

/// Default and largest pull page.
const PULL_DEFAULT_LIMIT: usize = 1000;
const PULL_MAX_LIMIT: usize = 5000;

/// The changes for the device's site after `cursor`: `{"cursor", "more", "changes"}`.
pub(crate) async fn pull(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    mut q: Params,
) -> Result<Json<PullResponse>, ApiError> {
    let cursor = q.u64("cursor")?.unwrap_or(0);
    let limit = q.limit("limit", PULL_DEFAULT_LIMIT, PULL_MAX_LIMIT)?;
    q.finish()?;
    let (store, devices) = (state.store.clone(), state.devices.clone());
    let (id, site) = (device.id.clone(), device.site.clone());
    let page = blocking(move || {
        devices.touch(&id, OffsetDateTime::now_utc(), None)?;
        Ok(store.pull(&site, cursor, limit)?)
    })
    .await?;
    tracing::debug!(device = %device.id, cursor, next = page.cursor, more = page.more, "pull served");
    Ok(Json(page))
}

/// Store-independent checks: the batch is the device's own, each movement valid, seqs contiguous.
fn check(device: &Device, req: &PushRequest) -> Result<(), ApiError> {
    if req.device_id != device.id {
        return Err(ApiError::Forbidden(format!(
            "this credential belongs to device {:?}, not {:?}",
            device.id, req.device_id
        )));
    }
    for (i, m) in req.movements.iter().enumerate() {
        if m.device_id != req.device_id {
            return Err(ApiError::bad_field(
                format!("movements[{i}].device_id"),
                format!(
                    "movement of {:?} in a batch of {:?}",
                    m.device_id, req.device_id
                ),
            ));
        }
        m.validate()
            .map_err(|e| ApiError::bad_field(format!("movements[{i}].{}", e.field), e.message))?;
        if let Some(prev) = i.checked_sub(1).map(|p| &req.movements[p]) {
            if prev.seq.checked_add(1) != Some(m.seq) {
                return Err(ApiError::bad_field(
                    format!("movements[{i}].seq"),
                    format!(
                        "seq {} does not follow {}: a batch must be contiguous",
                        m.seq, prev.seq
                    ),
                ));
            }
        }
        // NUL separates stock key segments; refusing it here keeps keys unambiguous.
        let texts = [
            ("lot", m.lot.as_deref()),
            ("from_location", m.from_location.as_deref()),
            ("to_location", m.to_location.as_deref()),
        ];
        if let Some((field, _)) = texts
            .iter()
            .find(|(_, t)| t.is_some_and(|t| t.contains('\0')))
        {
            return Err(ApiError::bad_field(
                format!("movements[{i}].{field}"),
                "must not contain NUL",
            ));
        }
    }
    Ok(())
}
