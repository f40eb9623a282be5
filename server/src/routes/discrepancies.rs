//! Discrepancies (admin): list, get, comment, resolve.
//!
//! Resolving records either an `adjust` movement of the pseudo-device `office` (so stock stays the sum of
//! movements) or "accepted as is"; resolving twice is refused by the store (409).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use dockhand_protocol::sync::MAX_QTY;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::input::{self, Params};
use super::{blocking, JsonBody};
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{
    Comment, Discrepancy, DiscrepancyFilter, DiscrepancyKind, DiscrepancyStatus, Resolution,
};

#[derive(Debug, Serialize)]
pub(crate) struct Discrepancies {
    discrepancies: Vec<Discrepancy>,
}

/// `POST /v1/discrepancies/{id}/comments` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommentBody {
    author: String,
    text: String,
}

/// `POST /v1/discrepancies/{id}/resolve` body: `{"type":"adjust","location","gtin","lot"?,"delta","reason"}` or
/// `{"type":"accepted","reason"}`. A flat struct rather than a tagged enum so every error names its field (serde
/// reports an unknown tag without a path).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResolveBody {
    #[serde(rename = "type")]
    kind: ResolveKind,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    gtin: Option<String>,
    #[serde(default)]
    lot: Option<String>,
    #[serde(default)]
    delta: Option<i64>,
    reason: String,
}

/// How a discrepancy is resolved (the `type` of the resolve body, the dashboard's resolve form).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ResolveKind {
    Adjust,
    Accepted,
}

pub(crate) async fn list(
    _admin: AdminAuth,
    State(state): State<AppState>,
    mut q: Params,
) -> Result<Json<Discrepancies>, ApiError> {
    let filter = DiscrepancyFilter {
        site: q.name("site")?,
        status: q.choice::<DiscrepancyStatus>("status", "open, resolved")?,
        kind: q.choice::<DiscrepancyKind>(
            "kind",
            "negative_stock, count_mismatch, asn_over, asn_short, asn_unexpected_line, \
             asn_unexpected_pallet, unknown_reference, pick_on_cancelled_list, unknown_item, unknown_location",
        )?,
    };
    q.finish()?;
    let store = state.store.clone();
    let discrepancies = blocking(move || Ok(store.discrepancies(&filter)?)).await?;
    Ok(Json(Discrepancies { discrepancies }))
}

pub(crate) async fn get(
    _admin: AdminAuth,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Discrepancy>, ApiError> {
    let id = path_id(id)?;
    let store = state.store.clone();
    blocking(move || {
        store
            .discrepancy(id)?
            .map(Json)
            .ok_or_else(|| not_found(id))
    })
    .await
}

pub(crate) async fn comment(
    _admin: AdminAuth,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<CommentBody>,
) -> Result<Json<Discrepancy>, ApiError> {
    let id = path_id(id)?;
    let comment = comment_of(body.author, body.text)?;
    let store = state.store.clone();
    blocking(move || {
        store
            .comment_discrepancy(id, &comment)?
            .map(Json)
            .ok_or_else(|| not_found(id))
    })
    .await
}

pub(crate) async fn resolve(
    _admin: AdminAuth,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<ResolveBody>,
) -> Result<Json<Discrepancy>, ApiError> {
    let id = path_id(id)?;
    let resolution = resolution_of(
        body.kind,
        body.location,
        body.gtin,
        body.lot,
        body.delta,
        body.reason,
    )?;
    let store = state.store.clone();
    let resolved = blocking(move || {
        store
            .resolve_discrepancy(id, &resolution, OffsetDateTime::now_utc())?
            .ok_or_else(|| not_found(id))
    })
    .await?;
    tracing::info!(discrepancy = id, kind = ?resolved.kind, "discrepancy resolved");
    Ok(Json(resolved))
}

fn path_id(id: Result<Path<String>, PathRejection>) -> Result<u64, ApiError> {
    let Path(id) = id?;
    id.parse().map_err(|_| {
        ApiError::bad_field("id", format!("{id:?} is not a discrepancy id (a number)"))
    })
}

fn not_found(id: u64) -> ApiError {
    ApiError::NotFound(format!("no discrepancy {id}"))
}

/// A comment as the API and the dashboard accept it: an author (1 to 64 characters) and a text (1 to 4,000).
pub(crate) fn comment_of(author: String, text: String) -> Result<Comment, ApiError> {
    input::required_text("author", &author, 64)?;
    input::required_text("text", &text, 4000)?;
    Ok(Comment {
        at: OffsetDateTime::now_utc(),
        author,
        text,
    })
}

/// A resolution as the API and the dashboard accept it, each error naming its field: an adjustment needs a
/// location, a GTIN and a non-zero delta within [`MAX_QTY`] (a lot is optional); "accepted" takes none of them.
pub(crate) fn resolution_of(
    kind: ResolveKind,
    location: Option<String>,
    gtin: Option<String>,
    lot: Option<String>,
    delta: Option<i64>,
    reason: String,
) -> Result<Resolution, ApiError> {
    input::required_text("reason", &reason, 500)?;
    Ok(match kind {
        ResolveKind::Adjust => {
            let required = |v: Option<String>, field: &str| {
                v.ok_or_else(|| ApiError::bad_field(field, "required for type adjust"))
            };
            let location = input::location("location", &required(location, "location")?)?;
            let gtin = input::gtin("gtin", &required(gtin, "gtin")?)?;
            if let Some(lot) = &lot {
                input::lot("lot", lot)?;
            }
            let delta =
                delta.ok_or_else(|| ApiError::bad_field("delta", "required for type adjust"))?;
            if delta == 0 || delta.unsigned_abs() > MAX_QTY {
                return Err(ApiError::bad_field(
                    "delta",
                    format!("{delta}: must be non-zero and at most {MAX_QTY} units either way"),
                ));
            }
            Resolution::Adjust {
                location,
                gtin,
                lot,
                delta,
                reason,
                movement: None,
            }
        }
        ResolveKind::Accepted => {
            let extra = [
                ("location", location.is_some()),
                ("gtin", gtin.is_some()),
                ("lot", lot.is_some()),
                ("delta", delta.is_some()),
            ];
            if let Some((field, _)) = extra.iter().find(|(_, given)| *given) {
                return Err(ApiError::bad_field(
                    *field,
                    "only for type adjust; \"accepted\" changes no stock",
                ));
            }
            Resolution::Accepted { reason }
        }
    })
}
