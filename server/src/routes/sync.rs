//! `POST /v1/sync/push`: exactly-once movement ingest (DESIGN §3.3, §5).
//!
//! The handler checks everything that does not need the store, naming the offending field (400), then hands
//! the batch to [`Store::push`](crate::store::Store::push), which decides replay, gap or conflict and applies
//! the rest atomically and durably before we answer.

use axum::extract::State;
use axum::Json;
use dockhand_protocol::sync::{PushRequest, PushResponse};

use super::JsonBody;
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
    let store = state.store.clone();
    let (site, device_id) = (device.site.clone(), device.id.clone());
    let movements = req.movements;
    let outcome =
        tokio::task::spawn_blocking(move || store.push(&site, &device_id, &movements)).await??;
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
