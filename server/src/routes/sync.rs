//! Device sync (DESIGN §5): `POST /v1/sync/push` (exactly-once movement ingest, §3.3) and `GET /v1/sync/pull`
//! (master data for the device's site).
//!
//! Push checks everything that does not need the store, naming the offending field (400), then hands the batch
//! to [`Store::push`](crate::store::Store::push), which decides replay, gap or conflict and applies the rest
//! atomically and durably before we answer.
//!
//! Both record that the device was seen (and the backlog a push reports, and the agent version its `User-Agent`
//! names) for the office's device list. Push also counts its movements by what became of them, for `/metrics`
//! ([`crate::metrics::Tally`]).

use axum::extract::{FromRequestParts, State};
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use axum::Json;
use dockhand_protocol::sync::{PullResponse, PushRequest, PushResponse};
use time::OffsetDateTime;

use super::input::Params;
use super::{blocking, JsonBody};
use crate::auth::DeviceAuth;
use crate::devices::{self, Device};
use crate::error::ApiError;
use crate::metrics::{Ingest, Tally};
use crate::state::AppState;
use crate::store::{PushOutcome, Pushed};

/// Applies a device's batch; answers `{"acked_through": N}`.
pub(crate) async fn push(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    UserAgent(agent): UserAgent,
    JsonBody(req): JsonBody<PushRequest>,
) -> Result<Json<PushResponse>, ApiError> {
    if let Err(e) = check(&device, &req) {
        let tally = Tally::uniform(&req.movements, Ingest::Rejected);
        state.metrics.ingested(&device.site, &tally);
        return Err(e);
    }
    // Counted as failed unless the store answers: the kinds are read now, the batch moves into the blocking task.
    let failed = Tally::uniform(&req.movements, Ingest::Failed);
    let (store, devices) = (state.store.clone(), state.devices.clone());
    let (site, device_id) = (device.site.clone(), device.id.clone());
    let (movements, backlog) = (req.movements, req.backlog);
    let pushed = blocking(move || {
        // The mark the batch met tells the metrics which movements were resends (crate::metrics, module docs).
        let result = store.push_reporting_mark(&site, &device_id, &movements);
        // The device counted this batch in its backlog; what it still holds once the answer arrives is what the
        // office should see (a drained device shows 0, not the size of its last batch).
        let left = match &result {
            Ok(Pushed {
                outcome: PushOutcome::Acked { acked_through },
                ..
            }) => backlog.map(|b| {
                let acked = movements.iter().filter(|m| m.seq <= *acked_through).count();
                b.saturating_sub(acked as u64)
            }),
            _ => backlog,
        };
        devices.touch_agent(
            &device_id,
            OffsetDateTime::now_utc(),
            left,
            agent.as_deref(),
        )?;
        let Pushed {
            outcome,
            high_water_before,
        } = result?;
        Ok((
            outcome,
            Tally::of_push(&movements, high_water_before, outcome),
        ))
    })
    .await;
    let outcome = match pushed {
        Ok((outcome, tally)) => {
            state.metrics.ingested(&device.site, &tally);
            outcome
        }
        Err(e) => {
            state.metrics.ingested(&device.site, &failed);
            return Err(e);
        }
    };
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
    UserAgent(agent): UserAgent,
    mut q: Params,
) -> Result<Json<PullResponse>, ApiError> {
    let cursor = q.u64("cursor")?.unwrap_or(0);
    let limit = q.limit("limit", PULL_DEFAULT_LIMIT, PULL_MAX_LIMIT)?;
    q.finish()?;
    let (store, devices) = (state.store.clone(), state.devices.clone());
    let (id, site) = (device.id.clone(), device.site.clone());
    let page = blocking(move || {
        devices.touch_agent(&id, OffsetDateTime::now_utc(), None, agent.as_deref())?;
        Ok(store.pull(&site, cursor, limit)?)
    })
    .await?;
    tracing::debug!(device = %device.id, cursor, next = page.cursor, more = page.more, "pull served");
    Ok(Json(page))
}

/// Extractor: the request's `User-Agent` as the device registry keeps it ([`devices::user_agent`]); `None` when
/// absent or unusable. Never rejects: a missing header only means an unknown version.
#[derive(Debug, Clone)]
pub(crate) struct UserAgent(pub(crate) Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(UserAgent(
            parts
                .headers
                .get(USER_AGENT)
                .and_then(|v| devices::user_agent(v.as_bytes())),
        ))
    }
}

/// Store-independent checks: the batch is the device's own, each movement valid, seqs contiguous.
pub(super) fn check(device: &Device, req: &PushRequest) -> Result<(), ApiError> {
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
