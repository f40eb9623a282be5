//! `GET /v1/movements` (admin): movement history in server commit order, filtered and paged by `server_seq`.

use axum::extract::State;
use axum::Json;
use dockhand_protocol::sync::MovementKind;

use super::blocking;
use super::input::Params;
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{MovementFilter, MovementPage};

/// Default and largest page.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

pub(crate) async fn list(
    _admin: AdminAuth,
    State(state): State<AppState>,
    mut q: Params,
) -> Result<Json<MovementPage>, ApiError> {
    let filter = MovementFilter {
        site: q.name("site")?,
        device_id: q.name("device")?,
        gtin: q.gtin("gtin")?,
        location: q.location("location")?,
        kind: q
            .choice::<MovementKind>("kind", "receive, putaway, move, pick, ship, adjust, count")?,
        since: q.time("since")?,
        until: q.time("until")?,
    };
    let after = q.u64("after")?.unwrap_or(0);
    let limit = q.limit("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    q.finish()?;
    if let (Some(since), Some(until)) = (filter.since, filter.until) {
        if until < since {
            return Err(ApiError::bad_field("until", "is before since"));
        }
    }
    let store = state.store.clone();
    let page = blocking(move || Ok(store.movements(&filter, after, limit)?)).await?;
    Ok(Json(page))
}
