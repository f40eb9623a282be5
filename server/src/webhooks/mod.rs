//! Webhooks: signed, durable, at-least-once deliveries of warehouse events to the office's ERP endpoints.
//!
//! # Events and where they come from
//!
//! Ingest must not pay per event, so no push writes anything for webhooks. Each kind is read from a durable log
//! the server keeps anyway, and the [`dispatcher`] follows each log with a durable cursor:
//!
//! ```text
//! kind                     source log (written by)                       event id (stable, dedup key)
//! movement.applied         the movement history, by server_seq (push)   movement:{device_id}:{seq}
//! discrepancy.opened       discrepancies, by id (push, ASN close)        discrepancy:{id}:opened
//! receipt.closed           the outbox (the ASN close's transaction)      receipt:{asn}:closed
//! discrepancy.resolved     the outbox (the resolve's transaction)        discrepancy:{id}:resolved
//! replenishment.suggested  the outbox ([`WebhookStore::enqueue_event`])  given by the caller
//! ```
//!
//! The outbox entry of an office event is written in the same store transaction as the change it reports, so an
//! event exists if and only if its change does. A movement's event id is its identity `(device_id, seq)`, not its
//! server_seq: should a push be lost after it was delivered (committed, not yet synced, then a crash), the agent
//! pushes it again under a new server_seq and the receiver still recognises it.
//!
//! # Deliveries
//!
//! The dispatcher reads a page of each log after its cursor, makes one delivery per page and matching endpoint
//! (a page holds up to [`dispatcher::PAGE`] events, so a busy site costs one request per hundred movements, not
//! one per movement) and stores the deliveries together with the advanced cursor in ONE transaction: a cursor
//! never passes an event whose deliveries are not durably queued. A delivery is then posted until the endpoint
//! answers 2xx, with exponential backoff and jitter ([`backoff`]), and given up (`failed`, shown on the dashboard,
//! retryable by hand) after the configured number of attempts. Attempt results are recorded without an fsync of
//! their own: a result lost in a crash means one more attempt, which at-least-once allows.
//!
//! Body of every request (one shape for every kind):
//!
//! ```text
//! {"delivery": "<Dockhand-Webhook-Id>", "endpoint": "<endpoint id>",
//!  "events": [{"id": "movement:hh-01:42", "kind": "movement.applied", "occurred_at": RFC 3339, "data": {...}}, ...]}
//! ```
//!
//! # Signature
//!
//! `Dockhand-Webhook-Signature: v1=<hex HMAC-SHA256(secret, timestamp ++ "." ++ body)>` with the timestamp of
//! `Dockhand-Webhook-Timestamp` (unix seconds, fresh on every attempt). See [`signature`].
//!
//! # Recovery
//!
//! Everything the dispatcher knows is in the store: cursors, deliveries and their due index. After a crash it
//! resumes from the cursors; a delivery in flight at the crash is still pending and is posted again (the receiver
//! deduplicates by delivery id or event id, README "Webhooks").

pub mod dispatcher;
pub mod signature;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::store::StoreError;

/// What a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventKind {
    /// A movement was applied (pushed by a device, or an office adjustment).
    #[serde(rename = "movement.applied")]
    MovementApplied,
    /// An ASN was closed.
    #[serde(rename = "receipt.closed")]
    ReceiptClosed,
    /// A discrepancy was raised.
    #[serde(rename = "discrepancy.opened")]
    DiscrepancyOpened,
    /// A discrepancy was resolved.
    #[serde(rename = "discrepancy.resolved")]
    DiscrepancyResolved,
    /// Replenishment suggested moving stock (raised through [`WebhookStore::enqueue_event`]).
    #[serde(rename = "replenishment.suggested")]
    ReplenishmentSuggested,
}

impl EventKind {
    /// Every kind, in documentation order.
    pub const ALL: [EventKind; 5] = [
        EventKind::MovementApplied,
        EventKind::ReceiptClosed,
        EventKind::DiscrepancyOpened,
        EventKind::DiscrepancyResolved,
        EventKind::ReplenishmentSuggested,
    ];

    /// The wire name, e.g. `movement.applied`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MovementApplied => "movement.applied",
            EventKind::ReceiptClosed => "receipt.closed",
            EventKind::DiscrepancyOpened => "discrepancy.opened",
            EventKind::DiscrepancyResolved => "discrepancy.resolved",
            EventKind::ReplenishmentSuggested => "replenishment.suggested",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// An event as delivered (see the module docs for ids).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Stable id: the same event always has the same id, whatever delivery carries it.
    pub id: String,
    /// What happened.
    pub kind: EventKind,
    /// When the server recorded it.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The movement, discrepancy, ASN... as the office API shows it.
    pub data: serde_json::Value,
}

/// An office event for the outbox, written by the store method that makes the change, in its transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum OfficeEvent {
    /// An ASN was closed; `asn` is the closed ASN as JSON.
    ReceiptClosed { id: String, asn: serde_json::Value },
    /// A discrepancy was resolved; `discrepancy` as JSON, with its resolution.
    DiscrepancyResolved {
        id: u64,
        discrepancy: serde_json::Value,
    },
}

impl OfficeEvent {
    /// The event as delivered, stamped `at`.
    pub fn into_event(self, at: OffsetDateTime) -> Event {
        match self {
            OfficeEvent::ReceiptClosed { id, asn } => Event {
                id: format!("receipt:{id}:closed"),
                kind: EventKind::ReceiptClosed,
                occurred_at: at,
                data: asn,
            },
            OfficeEvent::DiscrepancyResolved { id, discrepancy } => Event {
                id: format!("discrepancy:{id}:resolved"),
                kind: EventKind::DiscrepancyResolved,
                occurred_at: at,
                data: discrepancy,
            },
        }
    }
}

/// A registered endpoint. The secret never leaves the server after registration (the API shows it once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `wh_` and 16 hex digits.
    pub id: String,
    /// Where deliveries are posted.
    pub url: String,
    /// The kinds it receives.
    pub events: Vec<EventKind>,
    /// Free text for the office.
    #[serde(default)]
    pub description: String,
    /// The HMAC key, 64 hex digits.
    pub secret: String,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet acknowledged; retried at `next_attempt_at`.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up after the configured attempts; retried only when the office asks.
    Failed,
}

/// One request's worth of events for one endpoint, with its delivery history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Store-assigned, increasing.
    pub id: u64,
    /// The endpoint it goes to.
    pub endpoint: String,
    /// Sent as `Dockhand-Webhook-Id`: the same for every attempt of this delivery.
    pub key: String,
    /// The kind of its events (a delivery never mixes kinds).
    pub kind: EventKind,
    /// How many events it carries.
    pub events: usize,
    /// The request body (JSON text), exactly as signed and sent; emptied once delivered (the receiver has it,
    /// and a page of movements weighs tens of kilobytes).
    pub body: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it is next due (pending only).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// When the endpoint acknowledged it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
    /// What went wrong on the last failed attempt.
    pub last_error: Option<String>,
}

/// A delivery about to be queued (the store assigns the id).
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    /// See [`Delivery`].
    pub endpoint: String,
    /// See [`Delivery::key`].
    pub key: String,
    /// See [`Delivery`].
    pub kind: EventKind,
    /// See [`Delivery`].
    pub events: usize,
    /// See [`Delivery`].
    pub body: String,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// 2xx.
    Delivered,
    /// Try again at `next`.
    Retry { error: String, next: OffsetDateTime },
    /// Out of attempts.
    GiveUp { error: String },
}

/// The dispatcher's position in each source log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursors {
    /// Last server_seq expanded.
    pub movements: u64,
    /// Last discrepancy id expanded.
    pub discrepancies: u64,
    /// Last outbox seq expanded.
    pub outbox: u64,
}

/// Per-endpoint counts for the API and the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndpointStats {
    /// Deliveries still to be made.
    pub pending: u64,
    /// Deliveries given up.
    pub failed: u64,
    /// Deliveries acknowledged.
    pub delivered: u64,
    /// The last acknowledgement.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    /// The last failed attempt's error, if the last attempt failed.
    pub last_error: Option<String>,
}

/// The storage webhooks need. A separate trait from [`crate::store::Store`] so its methods stay in one place;
/// a store offers it through [`crate::store::Store::webhooks`].
pub trait WebhookStore: Send + Sync {
    /// Registers an endpoint. The first registration also starts the cursors at the logs' current heads, so an
    /// endpoint receives what happens after it was registered, not the whole history.
    fn put_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError>;
    /// Every endpoint, by id.
    fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError>;
    /// Removes an endpoint and its deliveries; false when there was none.
    fn delete_endpoint(&self, id: &str) -> Result<bool, StoreError>;
    /// Where the dispatcher stands; `None` before the first endpoint was registered.
    fn cursors(&self) -> Result<Option<Cursors>, StoreError>;
    /// The newest position of each log (what a first registration starts the cursors at).
    fn heads(&self) -> Result<Cursors, StoreError>;
    /// Positions at or below which every event that will ever exist is already visible: the dispatcher never
    /// moves a cursor past them, so an event that commits late (PostgreSQL numbers pushes before they commit)
    /// is never skipped. `None` when that cannot be established right now (try again later).
    fn settled(&self) -> Result<Option<Cursors>, StoreError>;
    /// Whether this node may dispatch: true on a single-node store; on PostgreSQL, whether this node holds the
    /// dispatch lock (taken if free), so one node of many dispatches at a time.
    fn try_lead(&self) -> Result<bool, StoreError>;
    /// Queues `deliveries` (due now) and moves the cursors from `from` to `to`, in one durable transaction;
    /// refused ([`StoreError::Refused`]) without any change when the cursors are no longer at `from` (another
    /// node moved them), so an event is never queued twice.
    fn enqueue(
        &self,
        from: Cursors,
        to: Cursors,
        deliveries: &[NewDelivery],
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Pending deliveries due at or before `now`, oldest due first, at most `limit`.
    fn due(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    /// When the next pending delivery is due, if any.
    fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError>;
    /// Records an attempt on delivery `id` (ignored if it was deleted meanwhile).
    fn record_attempt(
        &self,
        id: u64,
        attempt: &Attempt,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// The deliveries of `endpoint`, newest first, optionally only with `status`, at most `limit`.
    fn deliveries(
        &self,
        endpoint: &str,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Counts per endpoint id.
    fn endpoint_stats(&self) -> Result<Vec<(String, EndpointStats)>, StoreError>;
    /// Makes a failed (or pending) delivery of `endpoint` due now with its attempts reset; `None` if there is no
    /// such delivery, refused if it was delivered.
    fn retry(
        &self,
        endpoint: &str,
        id: u64,
        now: OffsetDateTime,
    ) -> Result<Option<Delivery>, StoreError>;
    /// Appends a free-standing event to the outbox (e.g. `replenishment.suggested`) and returns its outbox seq.
    /// A store method that changes state and raises an event should write the outbox entry in its own
    /// transaction instead (see the backends' `outbox` helpers), so the two cannot part.
    fn enqueue_event(&self, event: &Event) -> Result<u64, StoreError>;
    /// Outbox events after seq `after`, in order, at most `limit`.
    fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError>;
}

/// The retry delay after `attempts` failed attempts: 1 s doubling up to 10 minutes, times a jitter in
/// `[0.5, 1.0]` given as `jitter` (the caller draws it, so this stays deterministic), so endpoints that failed
/// together do not all come back together.
pub fn backoff(attempts: u32, jitter: f64) -> std::time::Duration {
    const BASE_MS: u64 = 1_000;
    const MAX_MS: u64 = 600_000;
    let exp = attempts.saturating_sub(1).min(20);
    let ms = BASE_MS.saturating_mul(1 << exp).min(MAX_MS);
    let jitter = jitter.clamp(0.5, 1.0);
    std::time::Duration::from_millis((ms as f64 * jitter) as u64)
}

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not an absolute `http://` or `https://` URL with a host.
    #[error("url must be an absolute http:// or https:// URL with a host, got {0:?}")]
    Scheme(String),
    /// Longer than anyone means.
    #[error("url is longer than 2048 characters")]
    TooLong,
    /// Userinfo would be sent to, and logged by, every proxy on the way.
    #[error("url must not carry credentials (user:password@); authenticate with the signature")]
    Credentials,
}

/// Checks an endpoint URL: `https://` anywhere, `http://` too (a receiver on the office LAN often has no
/// certificate; the signature authenticates the body either way). No credentials, no whitespace.
pub fn check_url(url: &str) -> Result<(), UrlError> {
    if url.len() > 2048 {
        return Err(UrlError::TooLong);
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| UrlError::Scheme(url.to_string()))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty()
        || authority.starts_with(':')
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(UrlError::Scheme(url.to_string()));
    }
    if authority.contains('@') {
        return Err(UrlError::Credentials);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_table() {
        let cases: &[(u32, f64, u64)] = &[
            (1, 1.0, 1_000),
            (2, 1.0, 2_000),
            (3, 1.0, 4_000),
            (10, 1.0, 512_000),
            (11, 1.0, 600_000),
            (40, 1.0, 600_000),
            (1, 0.5, 500),
            (1, 0.0, 500),
            (3, 0.75, 3_000),
            (0, 1.0, 1_000),
        ];
        for &(attempts, jitter, ms) in cases {
            assert_eq!(
                backoff(attempts, jitter).as_millis() as u64,
                ms,
                "attempts {attempts}, jitter {jitter}"
            );
        }
    }

    #[test]
    fn url_table() {
        let cases: &[(&str, Result<(), UrlError>)] = &[
            ("https://erp.example.com/hooks", Ok(())),
            ("http://127.0.0.1:8080/in", Ok(())),
            ("http://[::1]:80/", Ok(())),
            ("ftp://erp/", Err(UrlError::Scheme("ftp://erp/".into()))),
            ("https://", Err(UrlError::Scheme("https://".into()))),
            (
                "https:///path",
                Err(UrlError::Scheme("https:///path".into())),
            ),
            (
                "erp.example.com",
                Err(UrlError::Scheme("erp.example.com".into())),
            ),
            ("https://a b/", Err(UrlError::Scheme("https://a b/".into()))),
            ("https://u:p@erp/", Err(UrlError::Credentials)),
        ];
        for (url, want) in cases {
            assert_eq!(&check_url(url), want, "{url}");
        }
        assert_eq!(
            check_url(&format!("https://e/{}", "a".repeat(2048))),
            Err(UrlError::TooLong)
        );
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(EventKind::parse("movement"), None);
    }
}
