//! Webhooks (admin): register, list, delete endpoints; list and retry their deliveries ([`crate::webhooks`]).
//!
//! The secret is generated here and answered once, in the 201 of the registration; the list never shows it
//! (like a device token). A store without webhooks (none today) answers 503.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::input::{self, Params};
use super::{blocking, JsonBody};
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Store, StoreError};
use crate::webhooks::{
    check_url, Delivery, DeliveryStatus, Endpoint, EndpointStats, EventKind, WebhookStore,
};

/// `POST /v1/webhooks` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWebhook {
    url: String,
    events: Vec<String>,
    #[serde(default)]
    description: String,
}

/// An endpoint as listed: everything but the secret, with its delivery counts.
#[derive(Debug, Serialize)]
pub(crate) struct WebhookView {
    id: String,
    url: String,
    events: Vec<EventKind>,
    description: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(flatten)]
    stats: EndpointStats,
}

/// The 201 of a registration: the endpoint and its secret, shown this once.
#[derive(Debug, Serialize)]
pub(crate) struct Registered {
    id: String,
    url: String,
    events: Vec<EventKind>,
    description: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    secret: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Webhooks {
    webhooks: Vec<WebhookView>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Deliveries {
    deliveries: Vec<Delivery>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Deleted {
    deleted: String,
}

fn hooks(store: &dyn Store) -> Result<&dyn WebhookStore, ApiError> {
    store.webhooks().ok_or_else(|| {
        ApiError::Store(StoreError::Refused(
            "webhooks are not available with this store".into(),
        ))
    })
}

/// Checks a registration body; answers the endpoint to store (with a fresh id and secret).
fn endpoint(body: NewWebhook, now: OffsetDateTime) -> Result<Endpoint, ApiError> {
    check_url(&body.url).map_err(|e| ApiError::bad_field("url", e))?;
    if body.events.is_empty() {
        return Err(ApiError::bad_field(
            "events",
            "name at least one event kind",
        ));
    }
    let mut events = Vec::new();
    for (i, name) in body.events.iter().enumerate() {
        let kind = EventKind::parse(name).ok_or_else(|| {
            ApiError::bad_field(
                format!("events[{i}]"),
                format!(
                    "unknown event kind {name:?}; expected one of {}",
                    EventKind::ALL.map(EventKind::as_str).join(", ")
                ),
            )
        })?;
        if !events.contains(&kind) {
            events.push(kind);
        }
    }
    events.sort();
    input::text("description", &body.description, 200)?;
    let mut raw = [0u8; 40];
    rand::rng().fill_bytes(&mut raw);
    Ok(Endpoint {
        id: format!("wh_{}", hex::encode(&raw[..8])),
        url: body.url,
        events,
        description: body.description,
        secret: hex::encode(&raw[8..]),
        created_at: now,
    })
}

pub(crate) async fn create(
    _admin: AdminAuth,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewWebhook>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let e = endpoint(
        body,
        OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc()),
    )?;
    let store = state.store.clone();
    let stored = e.clone();
    blocking(move || Ok(hooks(store.as_ref())?.put_endpoint(&stored)?)).await?;
    tracing::info!(webhook = %e.id, url = %e.url, "webhook endpoint registered");
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            id: e.id,
            url: e.url,
            events: e.events,
            description: e.description,
            created_at: e.created_at,
            secret: e.secret,
        }),
    ))
}

/// Every endpoint with its counts (the dashboard shows the same).
pub(crate) fn views(store: &dyn Store) -> Result<Vec<WebhookView>, ApiError> {
    let hooks = hooks(store)?;
    let mut stats: std::collections::HashMap<String, EndpointStats> =
        hooks.endpoint_stats()?.into_iter().collect();
    Ok(hooks
        .endpoints()?
        .into_iter()
        .map(|e| WebhookView {
            stats: stats.remove(&e.id).unwrap_or_default(),
            id: e.id,
            url: e.url,
            events: e.events,
            description: e.description,
            created_at: e.created_at,
        })
        .collect())
}

impl WebhookView {
    /// The endpoint id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
    /// Where it posts.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
    /// Its kinds.
    pub(crate) fn events(&self) -> &[EventKind] {
        &self.events
    }
    /// Its counts.
    pub(crate) fn stats(&self) -> &EndpointStats {
        &self.stats
    }
}

pub(crate) async fn list(
    _admin: AdminAuth,
    State(state): State<AppState>,
    q: Params,
) -> Result<Json<Webhooks>, ApiError> {
    q.finish()?;
    let store = state.store.clone();
    let webhooks = blocking(move || views(store.as_ref())).await?;
    Ok(Json(Webhooks { webhooks }))
}

fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::bad_field("id", e.body_text()))?;
    input::name("id", &id)
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no webhook endpoint {id}"))
}

pub(crate) async fn delete(
    _admin: AdminAuth,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Deleted>, ApiError> {
    let id = path_id(id)?;
    let store = state.store.clone();
    let gone = id.clone();
    if blocking(move || Ok(hooks(store.as_ref())?.delete_endpoint(&gone)?)).await? {
        tracing::info!(webhook = %id, "webhook endpoint deleted");
        Ok(Json(Deleted { deleted: id }))
    } else {
        Err(not_found(&id))
    }
}

pub(crate) async fn deliveries(
    _admin: AdminAuth,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    mut q: Params,
) -> Result<Json<Deliveries>, ApiError> {
    let id = path_id(id)?;
    let status = q.choice::<DeliveryStatus>("status", "pending, delivered, failed")?;
    let limit = q.limit("limit", 100, 1000)?;
    q.finish()?;
    let store = state.store.clone();
    blocking(move || {
        let hooks = hooks(store.as_ref())?;
        if !hooks.endpoints()?.iter().any(|e| e.id == id) {
            return Err(not_found(&id));
        }
        Ok(Json(Deliveries {
            deliveries: hooks.deliveries(&id, status, limit)?,
        }))
    })
    .await
}

pub(crate) async fn retry(
    _admin: AdminAuth,
    State(state): State<AppState>,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Delivery>, ApiError> {
    let Path((id, delivery)) = ids.map_err(|e| ApiError::bad_field("id", e.body_text()))?;
    let id = input::name("id", &id)?;
    let delivery: u64 = delivery
        .parse()
        .map_err(|_| ApiError::bad_field("delivery", "expected a delivery id (an integer)"))?;
    let store = state.store.clone();
    blocking(move || {
        hooks(store.as_ref())?
            .retry(&id, delivery, OffsetDateTime::now_utc())?
            .map(Json)
            .ok_or_else(|| ApiError::NotFound(format!("no delivery {delivery} of webhook {id}")))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(url: &str, events: &[&str]) -> NewWebhook {
        NewWebhook {
            url: url.into(),
            events: events.iter().map(|s| s.to_string()).collect(),
            description: String::new(),
        }
    }

    #[test]
    fn registration_table() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("https://erp/x", &["movement.applied"], None),
            (
                "http://127.0.0.1:9/x",
                &["receipt.closed", "receipt.closed"],
                None,
            ),
            ("ftp://erp/x", &["movement.applied"], Some("url")),
            ("https://erp/x", &[], Some("events")),
            (
                "https://erp/x",
                &["movement.applied", "stock.changed"],
                Some("events[1]"),
            ),
        ];
        for (url, events, field) in cases {
            match (endpoint(body(url, events), now), field) {
                (Ok(e), None) => {
                    assert!(e.id.starts_with("wh_") && e.id.len() == 19, "{}", e.id);
                    assert_eq!(e.secret.len(), 64);
                    assert_eq!(e.events.len(), 1, "{url}: duplicates collapse");
                }
                (Err(ApiError::BadRequest { field: got, .. }), Some(want)) => {
                    assert_eq!(got.as_deref(), Some(*want), "{url}")
                }
                (other, _) => panic!("{url} {events:?}: {other:?}"),
            }
        }
    }
}
