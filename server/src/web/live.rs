//! Live updates for open dashboard pages: server-sent events, and the small script that applies them.
//!
//! ```text
//! GET /live/devices[?site=S]                              event "device": a DeviceStatus (devices.rs) as JSON
//! GET /live/discrepancies?after=ID[&site&status&kind]     event "discrepancy": {id, site, kind, status, message}
//! GET /assets/live.js                                     the script (the Content Security Policy allows no
//!                                                         inline script)
//! ```
//!
//! A page opts in with [`subscribe`]: an element `#live` whose `data-live` names its stream, and the script. The
//! script only sets text and attributes (`textContent`, never `innerHTML`), so nothing that arrives on a stream
//! can become markup.
//!
//! # How a stream works, and what it costs
//!
//! Each open stream polls every [`POLL`]: the device stream lists the registry (with the file registry, one read
//! of each device file; with PostgreSQL, one query) and sends a `device` event for every device whose status as
//! the page shows it changed, including the text "3 min ago", so times age on screen and a device that stops
//! syncing turns offline within `offline_after` + [`POLL`]. Its first poll, at once, sends every device: whatever
//! changed between rendering the page and opening the stream is applied. The discrepancy stream reads only the
//! discrepancies raised after the last one it saw ([`Store::discrepancies_after`](crate::store::Store), a range
//! read) and sends those matching the page's filters. Polling each stream on its own costs a few reads per second
//! per open page; an office has a handful, and a stream needs no state shared between requests or nodes (a page
//! behind a load balancer sees devices that sync through any node, since the registry is shared).
//!
//! Streams need a session like every page (the browser sends the cookie with `EventSource`), and end when the
//! session expires, after [`MAX_STREAM`] (the browser reconnects on its own, with the cookie, and a reconnect
//! without a valid session gets the login redirect, which ends `EventSource`), or when the server begins to shut
//! down ([`AppState::begin_shutdown`]), so an open dashboard never holds a graceful shutdown until its timeout.
//!
//! # Selectors
//!
//! ```text
//! #live[data-live]      the subscription (hidden)
//! #live-state           "connecting" | "open" | "reconnecting" | "closed" in data-state, and in words
//! #live-banner          (discrepancies) shown when new ones arrive, with #live-count and a#live-reload
//! #live-new-device      (devices) shown when a device not on the page appears
//! ```

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use maud::{html, Markup};
use serde::Serialize;
use time::OffsetDateTime;

use super::devices::{statuses, DeviceStatus};
use super::discrepancies::DiscrepancyQuery;
use super::{blocking, Fields, PageResult, Session};
use crate::state::AppState;
use crate::store::{Discrepancy, DiscrepancyFilter};

/// How often an open stream looks for changes.
pub const POLL: Duration = Duration::from_secs(1);
/// The longest a stream stays open; the browser then reconnects.
pub const MAX_STREAM: Duration = Duration::from_secs(15 * 60);
/// How long the browser waits before reconnecting a broken stream.
const RETRY: Duration = Duration::from_secs(2);
/// New discrepancies read per poll at most (more wait for the next poll).
const DISCREPANCY_BATCH: usize = 200;

/// Where the script is served.
pub const SCRIPT_PATH: &str = "/assets/live.js";

/// The markup that subscribes a page to `stream`.
pub fn subscribe(stream: &str) -> Markup {
    html! {
        div #live hidden data-live=(stream) {}
        script src=(SCRIPT_PATH) defer {}
    }
}

/// What one stream watches, and what it has already sent.
enum Watch {
    Devices {
        site: Option<String>,
        sent: HashMap<String, DeviceStatus>,
    },
    Discrepancies {
        after: u64,
        filter: DiscrepancyFilter,
    },
}

/// A `discrepancy` event.
#[derive(Debug, Serialize)]
struct NewDiscrepancy<'a> {
    id: u64,
    site: &'a str,
    kind: crate::store::DiscrepancyKind,
    status: crate::store::DiscrepancyStatus,
    message: &'a str,
}

impl Watch {
    /// The events for what changed since the last poll.
    async fn poll(&mut self, state: &AppState) -> Result<Vec<Event>, super::PageError> {
        match self {
            Watch::Devices { site, sent } => {
                let now = statuses(state, site.clone()).await?;
                Ok(device_changes(sent, now))
            }
            Watch::Discrepancies { after, filter } => {
                let store = state.store.clone();
                let from = *after;
                let found =
                    blocking(move || Ok(store.discrepancies_after(from, DISCREPANCY_BATCH)?))
                        .await?;
                if let Some(last) = found.last() {
                    *after = last.id;
                }
                Ok(found
                    .iter()
                    .filter(|d| matches(filter, d))
                    .filter_map(|d| {
                        Event::default()
                            .event("discrepancy")
                            .json_data(NewDiscrepancy {
                                id: d.id,
                                site: &d.site,
                                kind: d.kind,
                                status: d.status,
                                message: &d.message,
                            })
                            .ok()
                    })
                    .collect())
            }
        }
    }
}

/// `device` events for the devices whose status differs from what was sent; remembers what it sends.
fn device_changes(sent: &mut HashMap<String, DeviceStatus>, now: Vec<DeviceStatus>) -> Vec<Event> {
    let mut events = Vec::new();
    for status in now {
        if sent.get(&status.id) == Some(&status) {
            continue;
        }
        if let Ok(event) = Event::default().event("device").json_data(&status) {
            events.push(event);
        }
        sent.insert(status.id.clone(), status);
    }
    events
}

fn matches(filter: &DiscrepancyFilter, d: &Discrepancy) -> bool {
    filter.site.as_ref().is_none_or(|s| *s == d.site)
        && filter.status.is_none_or(|s| s == d.status)
        && filter.kind.is_none_or(|k| k == d.kind)
}

/// The event stream of `watch` for `session`.
fn stream(state: AppState, session: &Session, watch: Watch) -> impl IntoResponse {
    let left = (session.expires() - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
    let life = MAX_STREAM.min(left.unsigned_abs());
    struct Feed {
        state: AppState,
        watch: Watch,
        ticker: tokio::time::Interval,
        deadline: tokio::time::Instant,
        closing: tokio::sync::watch::Receiver<bool>,
        pending: VecDeque<Event>,
    }
    let mut ticker = tokio::time::interval(POLL);
    // A slow poll (a busy database) delays the next one instead of bunching them up.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feed = Feed {
        closing: state.closing.subscribe(),
        state,
        watch,
        ticker,
        deadline: tokio::time::Instant::now() + life,
        pending: VecDeque::from([Event::default().retry(RETRY)]),
    };
    let events = futures_util::stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(event) = feed.pending.pop_front() {
                return Some((Ok::<Event, Infallible>(event), feed));
            }
            tokio::select! {
                _ = feed.ticker.tick() => {}
                () = tokio::time::sleep_until(feed.deadline) => return None,
                _ = feed.closing.wait_for(|closing| *closing) => return None,
            }
            match feed.watch.poll(&feed.state).await {
                Ok(events) => feed.pending.extend(events),
                // The page keeps what it shows; the next poll tries again.
                Err(e) => tracing::warn!(error = %e, "live dashboard update failed"),
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// `GET /live/devices[?site=S]`.
pub(super) async fn devices(
    session: Session,
    State(state): State<AppState>,
    mut q: Fields,
) -> PageResult {
    let site = q.name("site")?;
    q.finish()?;
    let watch = Watch::Devices {
        site,
        sent: HashMap::new(),
    };
    Ok(stream(state, &session, watch).into_response())
}

/// `GET /live/discrepancies?after=ID[&site&status&kind]`: discrepancies raised after `ID` that match the
/// filters (the discrepancy list's own parameters).
pub(super) async fn discrepancies(
    session: Session,
    State(state): State<AppState>,
    mut q: Fields,
) -> PageResult {
    let after = q.u64("after")?.unwrap_or(0);
    let query = DiscrepancyQuery::parse(&mut q)?;
    q.finish()?;
    let watch = Watch::Discrepancies {
        after,
        filter: query.filter(),
    };
    Ok(stream(state, &session, watch).into_response())
}

/// `GET /assets/live.js`.
pub(super) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("live.js"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: &str, state: &'static str, ago: &str) -> DeviceStatus {
        DeviceStatus {
            id: id.into(),
            site: "WH1".into(),
            status: state,
            label: state,
            last_seen: None,
            last_seen_text: "never".into(),
            ago: ago.into(),
            backlog: None,
            version: None,
            revoked: false,
        }
    }

    #[test]
    fn device_changes_send_only_what_changed() {
        let mut sent = HashMap::new();
        // (poll, ids that get an event)
        let polls: Vec<(Vec<DeviceStatus>, Vec<&str>)> = vec![
            (
                vec![
                    status("a", "online", "just now"),
                    status("b", "never", "never"),
                ],
                vec!["a", "b"],
            ),
            (
                vec![
                    status("a", "online", "just now"),
                    status("b", "never", "never"),
                ],
                vec![],
            ),
            (
                vec![
                    status("a", "online", "1 min ago"),
                    status("b", "never", "never"),
                ],
                vec!["a"],
            ),
            (
                vec![
                    status("a", "offline", "3 min ago"),
                    status("b", "online", "just now"),
                ],
                vec!["a", "b"],
            ),
            (vec![status("a", "offline", "3 min ago")], vec![]),
        ];
        for (i, (now, want)) in polls.into_iter().enumerate() {
            let events = device_changes(&mut sent, now);
            assert_eq!(events.len(), want.len(), "poll {i}");
            for id in want {
                assert!(sent.contains_key(id), "poll {i}: {id}");
            }
        }
        assert_eq!(sent["a"].status, "offline");
    }
}
