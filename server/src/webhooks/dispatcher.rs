//! The dispatcher: a background task that turns logged events into queued deliveries and posts them.
//!
//! Two loops in one task, both driven by a short tick:
//!
//! 1. **Expand.** Read a page of each source log after its cursor (movements by server_seq, discrepancies by id,
//!    the outbox by seq), make the deliveries for every endpoint subscribed to the kind, and store them with the
//!    advanced cursors in one transaction ([`super::WebhookStore::enqueue`]). Movements and discrepancies go
//!    [`PAGE`] events per delivery; outbox events (rare office events) one per delivery, keyed by the event id.
//! 2. **Deliver.** Take the due deliveries, post each with its signature, record the outcome. Each endpoint has
//!    at most [`PER_ENDPOINT`] requests in flight, so a slow endpoint holds its own slots and nobody else's; a
//!    request that outlives the timeout counts as a failure.
//!
//! 3. **Replenishment.** Every [`REPLENISH_EVERY`], when an endpoint subscribes to `replenishment.suggested`, the
//!    leading node computes the replenishment suggestions ([`crate::reports::replenishment::suggestions`], from
//!    current stock) and appends one event per item below its point per UTC day to the outbox, with the id
//!    `replenishment:{site}:{gtin}:{YYYY-MM-DD}`: purchasing hears of an item when it falls below its point and
//!    again each day it stays there. The ids announced today are remembered in memory only, so a restart or a new
//!    leading node may append an event of the same id again: delivery is at-least-once and receivers deduplicate
//!    by event id (README, Webhooks).
//!
//! Nothing here touches the push path: ingest only writes the logs it writes anyway, so a failing or
//! blackholing endpoint costs pushes nothing but the dispatcher's own reads (BENCHMARKS.md, "Webhooks").
//! The store calls are blocking and run on the blocking pool, never on an async worker.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{watch, Semaphore};

use super::signature::{self, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{backoff, Attempt, Cursors, Delivery, Endpoint, Event, EventKind, NewDelivery};
use crate::store::{MovementFilter, Store, StoreError};

/// Events per delivery for movements and discrepancies.
pub const PAGE: usize = 100;
/// Requests in flight per endpoint.
pub const PER_ENDPOINT: usize = 4;
/// Due deliveries taken per tick.
const DUE_BATCH: usize = 64;
/// Pages of each log expanded per tick at most, so a backlog is worked off in bounded steps.
const PAGES_PER_TICK: usize = 20;
/// How long a node that does not hold the dispatch lock waits before trying again.
const FOLLOWER_WAIT: Duration = Duration::from_secs(2);
/// How often the leading node looks for items below their reorder point.
pub const REPLENISH_EVERY: Duration = Duration::from_secs(30);
/// The longest error text kept with a delivery.
const MAX_ERROR: usize = 300;

/// How the dispatcher behaves (`webhook_*` keys of the server config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchConfig {
    /// How long one request may take, connection included.
    pub timeout: Duration,
    /// Attempts before a delivery is given up (`failed`).
    pub max_attempts: u32,
    /// How often the logs are looked at and due deliveries taken.
    pub tick: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            timeout: Duration::from_secs(10),
            max_attempts: 25,
            tick: Duration::from_millis(250),
        }
    }
}

/// Runs the dispatcher until `shutdown` turns true. Requests in flight then are abandoned: their deliveries are
/// still pending in the store and are posted again after the restart (at-least-once).
pub async fn run(
    store: Arc<dyn Store>,
    config: DispatchConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    if store.webhooks().is_none() {
        tracing::info!("webhooks are not available with this store; dispatcher not started");
        return;
    }
    let client = match reqwest::Client::builder()
        .user_agent(concat!("dockhand-webhooks/", env!("CARGO_PKG_VERSION")))
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: cannot build the HTTP client; no deliveries will be made");
            return;
        }
    };
    let state = Arc::new(Shared {
        store,
        client,
        config,
        in_flight: Mutex::new(HashSet::new()),
        slots: Mutex::new(HashMap::new()),
    });
    let mut tick = tokio::time::interval(config.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing_since: Option<OffsetDateTime> = None;
    let mut was_leading = false;
    let mut requests = tokio::task::JoinSet::new();
    let mut announced: HashSet<String> = HashSet::new();
    let mut next_replenish = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            break;
        }
        // One dispatching node at a time (PostgreSQL); the others look again every few seconds.
        let s = state.clone();
        let leading = matches!(
            tokio::task::spawn_blocking(move || s.hooks().try_lead()).await,
            Ok(Ok(true))
        );
        if leading != was_leading {
            tracing::info!(
                leading,
                "webhooks: this node {} dispatching",
                if leading { "is now" } else { "is not" }
            );
            was_leading = leading;
        }
        if !leading {
            tokio::select! {
                _ = tokio::time::sleep(FOLLOWER_WAIT) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let s = state.clone();
        match tokio::task::spawn_blocking(move || s.expand()).await {
            Ok(Ok(())) => {
                if let Some(since) = failing_since.take() {
                    tracing::info!(%since, "webhooks: queueing deliveries again");
                }
            }
            Ok(Err(e)) => {
                // Logged once per outage, not on every tick.
                if failing_since.is_none() {
                    tracing::error!(error = %e, "webhooks: cannot queue deliveries; will keep trying");
                    failing_since = Some(OffsetDateTime::now_utc());
                }
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "webhooks: queueing deliveries panicked");
                continue;
            }
        }
        if tokio::time::Instant::now() >= next_replenish {
            next_replenish = tokio::time::Instant::now() + REPLENISH_EVERY;
            let (s, known) = (state.clone(), std::mem::take(&mut announced));
            match tokio::task::spawn_blocking(move || s.announce_replenishment(known)).await {
                Ok(Ok(now_known)) => announced = now_known,
                Ok(Err((known, e))) => {
                    announced = known;
                    tracing::warn!(error = %e, "webhooks: replenishment suggestions not announced; next look in 30 s");
                }
                Err(e) => tracing::error!(error = %e, "webhooks: replenishment look panicked"),
            }
        }
        let s = state.clone();
        let due = match tokio::task::spawn_blocking(move || s.take_due()).await {
            Ok(Ok(due)) => due,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "webhooks: cannot read due deliveries");
                continue;
            }
            Err(_) => continue,
        };
        for (delivery, endpoint, permit) in due {
            let s = state.clone();
            requests.spawn(async move {
                s.deliver(delivery, endpoint).await;
                drop(permit);
            });
        }
        // Reap finished requests so the set stays the size of what is in flight.
        while requests.try_join_next().is_some() {}
    }
    // Requests in flight are abandoned (still pending in the store, posted again after the restart). The store
    // goes last, off the async workers: the PostgreSQL client must not be dropped on one (see `crate::run`).
    requests.shutdown().await;
    let _ = tokio::task::spawn_blocking(move || drop(state)).await;
    tracing::info!("webhooks: dispatcher stopped");
}

struct Shared {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    config: DispatchConfig,
    /// Deliveries being posted now, so a tick does not take them again.
    in_flight: Mutex<HashSet<u64>>,
    /// Each endpoint's request slots.
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Shared {
    fn hooks(&self) -> &dyn super::WebhookStore {
        // `run` returns early when the store has no webhooks, so this is only reached with one.
        self.store
            .webhooks()
            .unwrap_or_else(|| unreachable!("checked in run"))
    }

    /// Appends a `replenishment.suggested` event for every item below its point whose id for today is not in
    /// `known` (see the module docs); answers the ids announced today. Does nothing when no endpoint listens.
    #[allow(clippy::result_large_err)]
    fn announce_replenishment(
        &self,
        known: HashSet<String>,
    ) -> Result<HashSet<String>, (HashSet<String>, StoreError)> {
        let hooks = self.hooks();
        let listening = match hooks.endpoints() {
            Ok(e) => e
                .iter()
                .any(|e| e.events.contains(&EventKind::ReplenishmentSuggested)),
            Err(e) => return Err((known, e)),
        };
        if !listening {
            return Ok(known);
        }
        let now = OffsetDateTime::now_utc();
        let suggestions =
            match crate::reports::replenishment::suggestions(self.store.as_ref(), None) {
                Ok(s) => s,
                Err(e) => return Err((known, e)),
            };
        let day = now.date().to_string();
        // Yesterday's ids can never come again: keep only today's.
        let mut known: HashSet<String> =
            known.into_iter().filter(|id| id.ends_with(&day)).collect();
        for s in suggestions {
            let id = replenishment_event_id(&s.site, &s.gtin, now.date());
            if known.contains(&id) {
                continue;
            }
            let data = match to_value(&s) {
                Ok(d) => d,
                Err(e) => return Err((known, e)),
            };
            let event = Event {
                id: id.clone(),
                kind: EventKind::ReplenishmentSuggested,
                occurred_at: now,
                data,
            };
            if let Err(e) = hooks.enqueue_event(&event) {
                return Err((known, e));
            }
            known.insert(id);
        }
        Ok(known)
    }

    /// Expands every log until caught up or [`PAGES_PER_TICK`] pages were queued.
    fn expand(&self) -> Result<(), StoreError> {
        let hooks = self.hooks();
        let Some(mut cursors) = hooks.cursors()? else {
            return Ok(()); // no endpoint was ever registered
        };
        let Some(settled) = hooks.settled()? else {
            return Ok(()); // a writer is still in flight; next tick
        };
        let endpoints = hooks.endpoints()?;
        if endpoints.is_empty() {
            // Nobody listens: skip to the settled heads rather than read what no one will receive.
            let to = Cursors {
                movements: settled.movements.max(cursors.movements),
                discrepancies: settled.discrepancies.max(cursors.discrepancies),
                outbox: settled.outbox.max(cursors.outbox),
            };
            if to != cursors {
                hooks.enqueue(cursors, to, &[], OffsetDateTime::now_utc())?;
            }
            return Ok(());
        }
        for _ in 0..PAGES_PER_TICK {
            let now = OffsetDateTime::now_utc();
            let (next, deliveries, full) = self.page(cursors, settled, &endpoints)?;
            if next == cursors {
                break;
            }
            hooks.enqueue(cursors, next, &deliveries, now)?;
            cursors = next;
            if !full {
                break;
            }
        }
        Ok(())
    }

    /// One page of each log after `c`: the cursors after it, its deliveries, and whether any log had more.
    fn page(
        &self,
        c: Cursors,
        settled: Cursors,
        endpoints: &[Endpoint],
    ) -> Result<(Cursors, Vec<NewDelivery>, bool), StoreError> {
        let mut next = c;
        let mut out = Vec::new();
        let mut full = false;

        let mut page = self
            .store
            .movements(&MovementFilter::default(), c.movements, PAGE)?;
        page.movements.retain(|m| m.server_seq <= settled.movements);
        if let (Some(first), Some(last)) = (page.movements.first(), page.movements.last()) {
            let key = format!("movements:{}-{}", first.server_seq, last.server_seq);
            next.movements = last.server_seq;
            full |= page.movements.len() == PAGE;
            let events = page
                .movements
                .iter()
                .map(|m| {
                    Ok(Event {
                        id: format!("movement:{}:{}", m.movement.device_id, m.movement.seq),
                        kind: EventKind::MovementApplied,
                        occurred_at: m.received_at,
                        data: to_value(m)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            fan_out(
                &mut out,
                endpoints,
                EventKind::MovementApplied,
                &key,
                &events,
            )?;
        }

        let mut opened = self.store.discrepancies_after(c.discrepancies, PAGE)?;
        opened.retain(|d| d.id <= settled.discrepancies);
        if let (Some(first), Some(last)) = (opened.first(), opened.last()) {
            let key = format!("discrepancies:{}-{}", first.id, last.id);
            next.discrepancies = last.id;
            full |= opened.len() == PAGE;
            let events = opened
                .iter()
                .map(|d| {
                    Ok(Event {
                        id: format!("discrepancy:{}:opened", d.id),
                        kind: EventKind::DiscrepancyOpened,
                        occurred_at: d.created_at,
                        data: to_value(d)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            fan_out(
                &mut out,
                endpoints,
                EventKind::DiscrepancyOpened,
                &key,
                &events,
            )?;
        }

        let mut outbox = self.hooks().outbox_after(c.outbox, PAGE)?;
        outbox.retain(|(seq, _)| *seq <= settled.outbox);
        full |= outbox.len() == PAGE;
        for (seq, event) in outbox {
            next.outbox = seq;
            let key = event.id.clone();
            let kind = event.kind;
            fan_out(&mut out, endpoints, kind, &key, &[event])?;
        }
        Ok((next, out, full))
    }

    /// Due deliveries not in flight, each with its endpoint and a request slot; those whose endpoint has no free
    /// slot wait for a later tick.
    #[allow(clippy::type_complexity)]
    fn take_due(
        &self,
    ) -> Result<Vec<(Delivery, Endpoint, tokio::sync::OwnedSemaphorePermit)>, StoreError> {
        let hooks = self.hooks();
        let due = hooks.due(OffsetDateTime::now_utc(), DUE_BATCH)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let endpoints: HashMap<String, Endpoint> = hooks
            .endpoints()?
            .into_iter()
            .map(|e| (e.id.clone(), e))
            .collect();
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|id, _| endpoints.contains_key(id));
        let mut out = Vec::new();
        for d in due {
            let Some(endpoint) = endpoints.get(&d.endpoint) else {
                continue; // deleted meanwhile; its deliveries are being removed
            };
            if in_flight.contains(&d.id) {
                continue;
            }
            let sem = slots
                .entry(d.endpoint.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(PER_ENDPOINT)))
                .clone();
            let Ok(permit) = sem.try_acquire_owned() else {
                continue;
            };
            in_flight.insert(d.id);
            out.push((d, endpoint.clone(), permit));
        }
        Ok(out)
    }

    /// Posts one delivery and records the outcome.
    async fn deliver(self: Arc<Self>, delivery: Delivery, endpoint: Endpoint) {
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let sig = signature::sign(&endpoint.secret, timestamp, delivery.body.as_bytes());
        let sent = self
            .client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header(ID_HEADER, &delivery.key)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, sig)
            .body(delivery.body.clone())
            .send()
            .await;
        let error = match sent {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("HTTP {}", r.status())),
            Err(e) if e.is_timeout() => Some(format!(
                "timed out after {} s",
                self.config.timeout.as_secs_f64()
            )),
            Err(e) => Some(describe(&e)),
        };
        let now = OffsetDateTime::now_utc();
        let attempt = match error {
            None => Attempt::Delivered,
            Some(error) if delivery.attempts + 1 >= self.config.max_attempts => {
                tracing::warn!(endpoint = %endpoint.id, delivery = delivery.id, key = %delivery.key, %error,
                    "webhook delivery given up after the configured attempts; retry it from the dashboard or API");
                Attempt::GiveUp { error }
            }
            Some(error) => {
                let jitter = 0.5 + rand::random::<f64>() / 2.0;
                let wait = backoff(delivery.attempts + 1, jitter);
                tracing::debug!(endpoint = %endpoint.id, delivery = delivery.id, %error, retry_in_ms = wait.as_millis() as u64,
                    "webhook delivery failed; will retry");
                Attempt::Retry {
                    error,
                    next: now + wait,
                }
            }
        };
        let s = self.clone();
        let id = delivery.id;
        let recorded =
            tokio::task::spawn_blocking(move || s.hooks().record_attempt(id, &attempt, now)).await;
        if let Ok(Err(e)) | Err(e) = recorded.map_err(|e| StoreError::Refused(e.to_string())) {
            tracing::warn!(delivery = id, error = %e, "webhooks: cannot record a delivery attempt; it will be made again");
        }
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

/// Adds one delivery of `events` for every endpoint subscribed to `kind`.
fn fan_out(
    out: &mut Vec<NewDelivery>,
    endpoints: &[Endpoint],
    kind: EventKind,
    key: &str,
    events: &[Event],
) -> Result<(), StoreError> {
    for e in endpoints.iter().filter(|e| e.events.contains(&kind)) {
        let body = serde_json::json!({
            "delivery": key,
            "endpoint": e.id,
            "events": events,
        });
        out.push(NewDelivery {
            endpoint: e.id.clone(),
            key: key.to_string(),
            kind,
            events: events.len(),
            body: body.to_string(),
        });
    }
    Ok(())
}

/// The id of the day's `replenishment.suggested` event for an item at a site.
pub fn replenishment_event_id(site: &str, gtin: &str, day: time::Date) -> String {
    format!("replenishment:{site}:{gtin}:{day}")
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::Corrupt {
        tree: "webhooks",
        message: format!("cannot encode an event: {e}"),
    })
}

/// The error chain of a failed request, shortened for the dashboard.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if text.len() > MAX_ERROR {
        let mut cut = MAX_ERROR;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ReorderRule, SledStore};

    fn shared(store: Arc<dyn Store>) -> Shared {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Shared {
            store,
            client: reqwest::Client::new(),
            config: DispatchConfig::default(),
            in_flight: Mutex::new(HashSet::new()),
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn endpoint(id: &str, events: Vec<EventKind>) -> Endpoint {
        Endpoint {
            id: id.into(),
            url: "http://127.0.0.1:9/hook".into(),
            events,
            description: String::new(),
            secret: "00".repeat(32),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn items_below_their_point_are_announced_once_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path(), 16 << 20).unwrap());
        let s = shared(store.clone());
        let hooks = store.webhooks().unwrap();
        let gtin = "09506000134352";
        store
            .put_reorder_rule(&ReorderRule {
                site: "WH1".into(),
                gtin: gtin.into(),
                reorder_point: 5,
                reorder_qty: Some(20),
                max: None,
            })
            .unwrap();
        let outbox = || -> Vec<Event> {
            hooks
                .outbox_after(0, 100)
                .unwrap()
                .into_iter()
                .map(|(_, e)| e)
                .collect()
        };
        // Nobody listens for the kind: nothing is appended.
        hooks
            .put_endpoint(&endpoint("wh_a", vec![EventKind::MovementApplied]))
            .unwrap();
        let known = s.announce_replenishment(HashSet::new()).unwrap();
        assert!(known.is_empty() && outbox().is_empty());
        // A listener: the item (no stock, point 5) is announced once, however often the dispatcher looks.
        hooks
            .put_endpoint(&endpoint("wh_b", vec![EventKind::ReplenishmentSuggested]))
            .unwrap();
        let known = s.announce_replenishment(known).unwrap();
        let known = s.announce_replenishment(known).unwrap();
        let events = outbox();
        let today = OffsetDateTime::now_utc().date();
        let id = replenishment_event_id("WH1", gtin, today);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].id, id);
        assert_eq!(events[0].kind, EventKind::ReplenishmentSuggested);
        assert_eq!(events[0].data["suggested_qty"], 20);
        assert_eq!(known, HashSet::from([id.clone()]));
        // Yesterday's ids are forgotten; a restart (nothing known) appends the same id again, which receivers
        // deduplicate.
        let stale = HashSet::from([replenishment_event_id(
            "WH1",
            gtin,
            today.previous_day().unwrap(),
        )]);
        let known = s.announce_replenishment(stale).unwrap();
        assert_eq!(known, HashSet::from([id.clone()]));
        let events = outbox();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].id, id);
    }
}
