//! `GET /metrics` (admin token): this node's counters and the gauges read now, in the Prometheus text format
//! (see [`crate::metrics`] for the metric list); and the middleware that counts and times `POST /v1/sync/push`.
//!
//! The endpoint sits on the API's listener, so it is TLS like the rest and needs the office credential:
//! Prometheus sends it with `authorization: {type: Bearer, credentials_file: .../admin.token}` (README, Metrics).
//!
//! A store or registry that cannot be read does not fail the scrape: the counters are what an operator needs most
//! while the database is down (how many pushes got 503). The gauges of that source are left out and
//! `dockhand_metrics_source_up{source}` says 0.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::metrics::{Scrape, ServerMetrics};
use crate::state::AppState;

/// The exposition.
pub(crate) async fn metrics(
    _admin: AdminAuth,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let (store, devices, offline_after) = (
        state.store.clone(),
        state.devices.clone(),
        state.offline_after,
    );
    let scrape = tokio::task::spawn_blocking(move || {
        let devices = devices
            .list()
            .map_err(|e| tracing::warn!(error = %e, "metrics: cannot read the device registry"))
            .ok();
        let discrepancies = store
            .open_discrepancy_counts()
            .map_err(|e| tracing::warn!(error = %e, "metrics: cannot count open discrepancies"))
            .ok();
        let store_bytes = store
            .size_on_disk()
            .map_err(|e| tracing::warn!(error = %e, "metrics: cannot read the store's size"))
            .ok();
        Scrape {
            now: OffsetDateTime::now_utc(),
            offline_after,
            devices,
            discrepancies,
            store_bytes,
        }
    })
    .await?;
    let body = state.metrics.render(&scrape);
    Ok(([(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response())
}

/// Wraps `POST /v1/sync/push` (the route table marks it `observed`): counts the answer by status and times it,
/// whatever produced it (the handler, or an extractor refusing the credential or the body).
pub(crate) async fn observe_push(
    State(metrics): State<Arc<ServerMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let response = next.run(req).await;
    metrics.push_answered(response.status().as_u16(), started.elapsed());
    response
}
