//! `GET /webhooks`: the registered ERP endpoints with their delivery counts, last success and last error, and
//! the recent deliveries that failed or are being retried (with the error of their last attempt), so the office
//! sees a failing endpoint before the ERP's users do. Read-only: endpoints are registered through the API (the
//! secret is shown once, which a page reload would defeat).
//!
//! # Selectors
//!
//! ```text
//! #webhooks-table, rows tr[data-test=webhook-row] with data-id, td[data-test=pending|failed|delivered|last-error];
//! #webhooks-empty; #failing-table, rows tr[data-test=failing-row] with data-id data-endpoint data-status,
//! td[data-test=error]; #failing-empty
//! ```

use axum::extract::State;
use axum::response::IntoResponse;
use maud::html;

use super::devices::human_time;
use super::layout::{self, Nav};
use super::{blocking, Fields, PageResult, Session};
use crate::routes::webhooks::views;
use crate::state::AppState;
use crate::webhooks::{Delivery, DeliveryStatus, EventKind};

/// Failing deliveries shown per endpoint.
const RECENT: usize = 20;

pub(super) async fn page(session: Session, State(state): State<AppState>, q: Fields) -> PageResult {
    q.finish()?;
    let store = state.store.clone();
    let (endpoints, failing) = blocking(move || {
        let endpoints = views(store.as_ref())?;
        let mut failing: Vec<Delivery> = Vec::new();
        if let Some(hooks) = store.webhooks() {
            for e in &endpoints {
                for status in [DeliveryStatus::Failed, DeliveryStatus::Pending] {
                    failing.extend(
                        hooks
                            .deliveries(e.id(), Some(status), RECENT)?
                            .into_iter()
                            .filter(|d| d.last_error.is_some()),
                    );
                }
            }
        }
        failing.sort_by_key(|d| std::cmp::Reverse(d.id));
        Ok((endpoints, failing))
    })
    .await?;
    let content = html! {
        p.muted { "Endpoints are registered with " code { "POST /v1/webhooks" } " (see README, Webhooks)." }
        @if endpoints.is_empty() {
            p #webhooks-empty { "No webhook endpoint is registered." }
        } @else {
            div.table-wrap {
                table #webhooks-table {
                    thead { tr {
                        th scope="col" { "Endpoint" } th scope="col" { "URL" } th scope="col" { "Events" }
                        th scope="col" { "Pending" } th scope="col" { "Failed" } th scope="col" { "Delivered" }
                        th scope="col" { "Last success" } th scope="col" { "Last error" }
                    } }
                    tbody {
                        @for e in &endpoints {
                            tr data-test="webhook-row" data-id=(e.id()) {
                                td { code { (e.id()) } }
                                td { (e.url()) }
                                td { (e.events().iter().map(|k: &EventKind| k.as_str()).collect::<Vec<_>>().join(", ")) }
                                td data-test="pending" { (e.stats().pending) }
                                td data-test="failed" { (e.stats().failed) }
                                td data-test="delivered" { (e.stats().delivered) }
                                td { (e.stats().last_success_at.map(human_time).unwrap_or_else(|| "never".into())) }
                                td data-test="last-error" { (e.stats().last_error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Failing deliveries" }
        @if failing.is_empty() {
            p #failing-empty { "No delivery is failing." }
        } @else {
            div.table-wrap {
                table #failing-table {
                    thead { tr {
                        th scope="col" { "Delivery" } th scope="col" { "Endpoint" } th scope="col" { "Kind" }
                        th scope="col" { "Events" } th scope="col" { "Status" } th scope="col" { "Attempts" }
                        th scope="col" { "Next attempt" } th scope="col" { "Last error" }
                    } }
                    tbody {
                        @for d in &failing {
                            tr data-test="failing-row" data-id=(d.id) data-endpoint=(d.endpoint) data-status=(status_name(d.status)) {
                                td { code { (d.key) } }
                                td { code { (d.endpoint) } }
                                td { (d.kind.as_str()) }
                                td { (d.events) }
                                td { (status_name(d.status)) }
                                td { (d.attempts) }
                                td { (d.next_attempt_at.map(human_time).unwrap_or_default()) }
                                td data-test="error" { (d.last_error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&session, Nav::Webhooks, "Webhooks", content).into_response())
}

fn status_name(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Pending => "retrying",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
    }
}
