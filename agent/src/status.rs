//! The device's local status interface: the decision stream and a loopback HTTP endpoint for screens.
//!
//! ```text
//! handle_scan ──rejection──────────────────────────────► Decisions ──broadcast──► GET /events (SSE)
//!      └──records──► writer ──durable──► emitter task ──┘    └── last 20 ────────► GET /status
//!                                             └──► feedback thread (good_read)
//! ```
//!
//! Every scan's decision becomes one [`DecisionEvent`] once its fate is known. A decision whose records must be
//! durable is published only after the journal writer says they are (invariant 1: the status stream confirms
//! nothing that is not on disk); if the write fails it is published as a rejection `not stored: ...` instead.
//! Rejections are published at once, so a rejection can overtake an earlier scan still waiting for its `fdatasync`.
//!
//! The endpoint has no authentication, so [`crate::config`] only lets it listen on a loopback address. Its bound
//! address goes to `data_dir/status.addr` so that `dockhand-agent tui` and `status` find it. Event JSON:
//!
//! ```text
//! {"at":"2025-05-01T10:00:00Z","source":0,"scan":"]C10109506000134352","result":"accepted",
//!  "message":"received 1 × 09506000134352 into DOCK-1","seqs":[7],"task":null}
//! ```
//!
//! `source` is the index of the `[[sources]]` entry; `scan` is null when the scan could not be decoded; `result`
//! is `accepted`, `prompt` or `rejected`. A dock gate publishes one event per tag pass: `scan` is the EPC in hex,
//! `source` the first RFID source, `result` `accepted` (movements durable) or `rejected` (duplicate, unresolved or
//! ignored, with the reason). On `/events` each event is one `data:` line; a client too slow for the
//! stream gets `event: lagged` with `{"missed":n}` and stays connected; comment lines keep idle connections alive.
//!
//! A gate also serves `GET /audit`: its audit ring of raw reads as JSON lines (`{"epc","antenna","rssi","at",
//! "count"}`, oldest first), for a support case; elsewhere it answers 404.
//!
//! `GET /metrics` is the agent's Prometheus exposition ([`crate::metrics`]): scans by result, journal size, sync
//! backlog and errors, readers. Scans are counted by the emitter once their fate is known ([`Emitter::emit_scan`]).
//!
//! The second half of this file is the matching minimal client (plain HTTP/1.0 over loopback, blocking), used by
//! the TUI and the `status` command.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::gate::AuditRequest;
use crate::metrics::{AgentMetrics, ScanResult};
use crate::source::Durable;
use crate::workflow::Decision;
use crate::StatusFile;

/// Decisions kept for `GET /status`.
pub const RECENT_DECISIONS: usize = 20;

/// File inside `data_dir` holding the endpoint's bound address, e.g. `127.0.0.1:41234`.
pub const ADDR_FILE: &str = "status.addr";

/// Decisions a subscriber may fall behind before it gets `event: lagged`.
const BROADCAST_CAPACITY: usize = 256;

/// How the scan ended, as `result` in the event JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Movements made and durable.
    Accepted,
    /// Taken; the operator scans the next step.
    Prompt,
    /// Refused, or not stored.
    Rejected,
}

/// One scan's decision, as published on the stream (module docs show the JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionEvent {
    /// RFC 3339 time of the decision (the time the workflow was given).
    pub at: String,
    /// Index of the `[[sources]]` entry that read the scan.
    pub source: usize,
    /// The scan's data as text; `None` when it could not be decoded.
    pub scan: Option<String>,
    /// The outcome.
    pub result: Outcome,
    /// What the operator reads.
    pub message: String,
    /// Seqs of the movements the scan made.
    pub seqs: Vec<u64>,
    /// The operator's task after this scan, in one line.
    pub task: Option<String>,
}

impl DecisionEvent {
    /// The event for `decision`, made at `at`.
    pub fn new(
        at: time::OffsetDateTime,
        source: usize,
        scan: Option<String>,
        decision: &Decision,
        task: Option<String>,
    ) -> Self {
        let (result, seqs) = match decision {
            Decision::Accepted { seqs, .. } => (Outcome::Accepted, seqs.clone()),
            Decision::Prompt { .. } => (Outcome::Prompt, Vec::new()),
            Decision::Rejected { .. } => (Outcome::Rejected, Vec::new()),
        };
        DecisionEvent {
            at: at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            source,
            scan,
            result,
            message: decision.text().to_string(),
            seqs,
            task,
        }
    }

    /// The same scan after its records failed to become durable: a rejection that made nothing.
    pub fn not_stored(self, error: &str) -> Self {
        DecisionEvent {
            result: Outcome::Rejected,
            message: format!("not stored: {error}"),
            seqs: Vec::new(),
            ..self
        }
    }
}

/// The decision stream: a broadcast channel for live subscribers and a ring of the last [`RECENT_DECISIONS`].
/// Cheap to clone.
#[derive(Clone)]
pub struct Decisions {
    tx: broadcast::Sender<DecisionEvent>,
    recent: Arc<Mutex<VecDeque<DecisionEvent>>>,
}

impl Default for Decisions {
    fn default() -> Self {
        Decisions::with_capacity(BROADCAST_CAPACITY)
    }
}

impl Decisions {
    /// A stream whose subscribers may fall `capacity` events behind before they lag.
    pub fn with_capacity(capacity: usize) -> Self {
        Decisions {
            tx: broadcast::channel(capacity).0,
            recent: Arc::new(Mutex::new(VecDeque::with_capacity(RECENT_DECISIONS))),
        }
    }

    /// Publishes one event to the ring and to every subscriber.
    pub fn publish(&self, ev: DecisionEvent) {
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == RECENT_DECISIONS {
                recent.pop_front();
            }
            recent.push_back(ev.clone());
        }
        // No subscriber is the normal case on a headless handheld.
        let _ = self.tx.send(ev);
    }

    /// A live subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<DecisionEvent> {
        self.tx.subscribe()
    }

    /// The last decisions, oldest first.
    pub fn recent(&self) -> Vec<DecisionEvent> {
        self.recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// A decision waiting for its records to become durable.
struct Pending {
    event: DecisionEvent,
    durable: Durable,
    feedback: oneshot::Sender<Result<(), String>>,
    /// Where to count the scan once the writer answered; `None` for a gate pass (counted by the gate).
    count: Option<Arc<AgentMetrics>>,
}

/// Publishes decisions, holding back those whose records are not durable yet. Cheap to clone.
#[derive(Clone)]
pub struct Emitter {
    decisions: Decisions,
    pending: mpsc::UnboundedSender<Pending>,
}

impl Emitter {
    /// Starts the task that waits for durability; it ends once every `Emitter` clone is dropped and the decisions
    /// already handed to it are published.
    pub fn spawn(decisions: Decisions) -> (Emitter, tokio::task::JoinHandle<()>) {
        // Unbounded, but never long: it holds at most the scans in flight between the sources and the journal.
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(wait_and_publish(rx, decisions.clone()));
        (
            Emitter {
                decisions,
                pending: tx,
            },
            task,
        )
    }

    /// Publishes `event` now when `durable` is `None`. Otherwise returns the receiver the source's feedback thread
    /// must wait on instead of `durable`: it resolves, with the writer's answer, once the event is published.
    pub fn emit(&self, event: DecisionEvent, durable: Option<Durable>) -> Option<Durable> {
        self.emit_counted(event, durable, None)
    }

    /// [`Emitter::emit`] for a scan: also counts it in `metrics` by its final result ([`ScanResult::of`]), at once
    /// or, when it made records, once the writer answered. One relaxed atomic add; no lock.
    pub fn emit_scan(
        &self,
        event: DecisionEvent,
        durable: Option<Durable>,
        metrics: &Arc<AgentMetrics>,
    ) -> Option<Durable> {
        if durable.is_none() {
            metrics.scan(ScanResult::of(&event, Ok(())));
        }
        self.emit_counted(event, durable, Some(metrics.clone()))
    }

    fn emit_counted(
        &self,
        event: DecisionEvent,
        durable: Option<Durable>,
        count: Option<Arc<AgentMetrics>>,
    ) -> Option<Durable> {
        let Some(durable) = durable else {
            self.decisions.publish(event);
            return None;
        };
        let (feedback, rx) = oneshot::channel();
        let pending = Pending {
            event,
            durable,
            feedback,
            count,
        };
        if let Err(mpsc::error::SendError(p)) = self.pending.send(pending) {
            // The emitter task is gone (shutting down): answer the feedback directly.
            tokio::spawn(async move {
                let result = p.durable.await.unwrap_or_else(|_| Err(stopped()));
                if let Some(m) = &p.count {
                    m.scan(ScanResult::of(&p.event, fate(&result)));
                }
                let _ = p.feedback.send(result);
            });
        }
        Some(rx)
    }
}

fn stopped() -> String {
    "journal writer has stopped".into()
}

/// The writer's answer as [`ScanResult::of`] reads it.
fn fate(result: &Result<(), String>) -> Result<(), &str> {
    result.as_ref().map(|_| ()).map_err(String::as_str)
}

/// One task, in scan order: the writer answers appends in order, so waiting on each in turn costs no latency and
/// keeps the published order equal to the commit order.
async fn wait_and_publish(mut rx: mpsc::UnboundedReceiver<Pending>, decisions: Decisions) {
    while let Some(p) = rx.recv().await {
        let result = p.durable.await.unwrap_or_else(|_| Err(stopped()));
        if let Some(m) = &p.count {
            m.scan(ScanResult::of(&p.event, fate(&result)));
        }
        let event = match &result {
            Ok(()) => p.event,
            Err(e) => p.event.not_stored(e),
        };
        let _ = p.feedback.send(result);
        decisions.publish(event);
    }
}

/// What the endpoint reads about the running agent: the seam that lets tests serve a fixed status.
pub trait StatusSource: Send + Sync + 'static {
    /// The status file's content, now.
    fn status(&self) -> StatusFile;
    /// The operator's current task, in one line.
    fn task(&self) -> Option<String>;
    /// The site stock view served at `GET /stock` ([`crate::sitestock::routes`]); none: no such route.
    fn site_stock(&self) -> Option<crate::sitestock::SiteStock> {
        None
    }
    /// Where `GET /audit` asks a dock gate for its audit ring; none: not a gate.
    fn audit(&self) -> Option<mpsc::Sender<AuditRequest>> {
        None
    }
    /// The Prometheus exposition served at `GET /metrics` ([`crate::metrics`]); none: 404. Called off the async
    /// workers.
    fn metrics(&self) -> Option<String> {
        None
    }
}

/// The router's state.
#[derive(Clone)]
pub struct AppState {
    /// The agent.
    pub source: Arc<dyn StatusSource>,
    /// The decision stream.
    pub decisions: Decisions,
    /// Turns `true` at shutdown; open event streams end then.
    pub stop: watch::Receiver<bool>,
    /// Interval of keep-alive comments on `/events`.
    pub keep_alive: Duration,
}

/// `GET /status` body.
#[derive(Serialize)]
struct StatusBody {
    #[serde(flatten)]
    file: StatusFile,
    task: Option<String>,
    last_decisions: Vec<DecisionEvent>,
}

/// The endpoint's routes, apart from serving so tests call them without a socket.
pub fn router(state: AppState) -> Router {
    let stock = state.source.site_stock();
    let router = Router::new()
        .route("/status", get(status))
        .route("/events", get(events))
        .route("/audit", get(audit))
        .route("/metrics", get(metrics))
        .with_state(state);
    match stock {
        Some(s) => router.merge(crate::sitestock::routes(s)),
        None => router,
    }
}

async fn status(State(st): State<AppState>) -> Response {
    let source = st.source.clone();
    // The snapshot reads sled (local stock): blocking work, off the async workers.
    match tokio::task::spawn_blocking(move || (source.status(), source.task())).await {
        Ok((file, task)) => Json(StatusBody {
            file,
            task,
            last_decisions: st.decisions.recent(),
        })
        .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    let source = st.source.clone();
    match tokio::task::spawn_blocking(move || source.metrics()).await {
        Ok(Some(text)) => ([("content-type", crate::metrics::CONTENT_TYPE)], text).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no metrics\n").into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn audit(State(st): State<AppState>) -> Response {
    let Some(gate) = st.source.audit() else {
        return (
            StatusCode::NOT_FOUND,
            "not a dock gate: no RFID audit ring\n",
        )
            .into_response();
    };
    let (tx, rx) = oneshot::channel();
    if gate.send(tx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the gate has stopped\n").into_response();
    }
    match rx.await {
        Ok(lines) => ([("content-type", "application/x-ndjson")], lines).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the gate has stopped\n").into_response(),
    }
}

async fn events(State(st): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribe before answering, so a client that has the response headers misses nothing after them.
    let rx = st.decisions.subscribe();
    let stream = futures_util::stream::unfold((rx, st.stop), |(mut rx, mut stop)| async move {
        let event = tokio::select! {
            // Decisions already published go out before the stream ends.
            biased;
            r = rx.recv() => match r {
                Ok(ev) => Event::default().data(serde_json::to_string(&ev).unwrap_or_default()),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    Event::default().event("lagged").data(format!("{{\"missed\":{n}}}"))
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            // Ends the stream at shutdown, so graceful shutdown does not wait for clients to hang up.
            _ = stop.wait_for(|s| *s) => return None,
        };
        Some((Ok(event), (rx, stop)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(st.keep_alive))
}

/// Keep-alive interval of the agent's `/events`; clients treat three times it without a byte as a dead link.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// How long open connections get to finish after shutdown is asked.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Binds `listen`, records the bound address in `data_dir/status.addr` and serves until `stop` turns `true`;
/// then removes the address file. A bind failure is logged and the agent runs on without the endpoint: a status
/// window must not keep a warehouse from scanning.
pub async fn spawn(
    listen: SocketAddr,
    data_dir: &Path,
    state: AppState,
) -> Option<tokio::task::JoinHandle<()>> {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%listen, error = %e, "status endpoint not started: cannot bind; the TUI will \
                show the agent as not running");
            return None;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "status endpoint not started");
            return None;
        }
    };
    let addr_file = data_dir.join(ADDR_FILE);
    if let Err(e) = write_addr(&addr_file, addr) {
        tracing::warn!(file = %addr_file.display(), error = %e, "cannot record the status address; \
            the TUI will not find the agent");
    }
    tracing::info!(%addr, "status endpoint listening");
    let mut stop = state.stop.clone();
    let mut stop_grace = state.stop.clone();
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    Some(tokio::spawn(async move {
        tokio::select! {
            r = server => if let Err(e) = r {
                tracing::warn!(error = %e, "status endpoint failed");
            },
            _ = async {
                let _ = stop_grace.wait_for(|s| *s).await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => tracing::warn!("status endpoint: connections still open at shutdown; closed"),
        }
        // Only our own address: a second agent may have started on this data directory since.
        if read_addr_file(&addr_file).ok() == Some(addr) {
            let _ = std::fs::remove_file(&addr_file);
        }
    }))
}

fn write_addr(path: &Path, addr: SocketAddr) -> std::io::Result<()> {
    // Temp file and rename: a reader sees the old address or the new one, never half of one.
    let tmp = path.with_file_name(format!(".{ADDR_FILE}.tmp"));
    std::fs::write(&tmp, format!("{addr}\n"))?;
    std::fs::rename(&tmp, path)
}

fn read_addr_file(path: &Path) -> std::io::Result<SocketAddr> {
    std::fs::read_to_string(path)?
        .trim()
        .parse()
        .map_err(std::io::Error::other)
}

// ---- Client side: plain HTTP/1.0 over loopback, blocking. -----------------------------------------------------

/// Why the status endpoint could not be reached or read.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No `status.addr`: the agent is not running (or runs with `[status] enabled = false`).
    #[error("agent not running (no {0})")]
    NoAddress(PathBuf),
    /// Connecting or reading failed.
    #[error("{addr}: {source}")]
    Io {
        /// The endpoint.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The endpoint answered something else than expected.
    #[error("{addr}: {message}")]
    Protocol {
        /// The endpoint.
        addr: SocketAddr,
        /// What was wrong.
        message: String,
    },
}

/// The status endpoint's address recorded by the running agent in `data_dir`.
pub fn read_addr(data_dir: &Path) -> Result<SocketAddr, ClientError> {
    let path = data_dir.join(ADDR_FILE);
    read_addr_file(&path).map_err(|_| ClientError::NoAddress(path))
}

fn request(addr: SocketAddr, path: &str, timeout: Duration) -> Result<TcpStream, ClientError> {
    let io = |source| ClientError::Io { addr, source };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    // HTTP/1.0: the server closes after the response and streams without chunked encoding, so the client needs
    // no chunk decoder.
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(io)?;
    Ok(stream)
}

/// Reads the status line and headers; returns the status code.
fn read_head(addr: SocketAddr, reader: &mut impl BufRead) -> Result<u16, ClientError> {
    let io = |source| ClientError::Io { addr, source };
    let mut line = String::new();
    reader.read_line(&mut line).map_err(io)?;
    let code = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| ClientError::Protocol {
            addr,
            message: format!("not an HTTP response: {:?}", line.trim_end()),
        })?;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(io)? == 0 || line.trim_end().is_empty() {
            return Ok(code);
        }
    }
}

/// `GET /status` from the endpoint at `addr`.
pub fn fetch_status(addr: SocketAddr, timeout: Duration) -> Result<serde_json::Value, ClientError> {
    let mut reader = BufReader::new(request(addr, "/status", timeout)?);
    let code = read_head(addr, &mut reader)?;
    let mut body = Vec::new();
    reader
        .read_to_end(&mut body)
        .map_err(|source| ClientError::Io { addr, source })?;
    if code != 200 {
        return Err(ClientError::Protocol {
            addr,
            message: format!("HTTP {code}: {}", String::from_utf8_lossy(&body)),
        });
    }
    serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
        addr,
        message: format!("bad status JSON: {e}"),
    })
}

/// `GET /audit` from the endpoint at `addr`: a gate's audit ring as JSON lines.
pub fn fetch_audit(addr: SocketAddr, timeout: Duration) -> Result<String, ClientError> {
    let mut reader = BufReader::new(request(addr, "/audit", timeout)?);
    let code = read_head(addr, &mut reader)?;
    let mut body = Vec::new();
    reader
        .read_to_end(&mut body)
        .map_err(|source| ClientError::Io { addr, source })?;
    let body = String::from_utf8_lossy(&body).into_owned();
    if code != 200 {
        return Err(ClientError::Protocol {
            addr,
            message: format!("HTTP {code}: {}", body.trim_end()),
        });
    }
    Ok(body)
}

/// One item of the `/events` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// A decision.
    Decision(DecisionEvent),
    /// The client fell behind and missed this many decisions.
    Lagged(u64),
    /// A keep-alive comment: the link is alive.
    KeepAlive,
}

/// A blocking reader of `GET /events`.
pub struct EventStream {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl EventStream {
    /// Opens the stream. Reads time out after `timeout` without a byte; the server sends a keep-alive every
    /// [`KEEP_ALIVE`], so pass a few times that.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<EventStream, ClientError> {
        let mut reader = BufReader::new(request(addr, "/events", timeout)?);
        let code = read_head(addr, &mut reader)?;
        if code != 200 {
            return Err(ClientError::Protocol {
                addr,
                message: format!("HTTP {code} for /events"),
            });
        }
        Ok(EventStream { addr, reader })
    }

    /// The next item; `None` when the server closed the stream (agent shutting down).
    pub fn next_item(&mut self) -> Result<Option<StreamItem>, ClientError> {
        let (mut event, mut data, mut comment) = (String::new(), String::new(), false);
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .reader
                .read_line(&mut line)
                .map_err(|source| ClientError::Io {
                    addr: self.addr,
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if let Some(item) = self.item(&event, &data, comment)? {
                    return Ok(Some(item));
                }
                (event, data, comment) = (String::new(), String::new(), false);
            } else if line.starts_with(':') {
                comment = true;
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim_start().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
    }

    fn item(
        &self,
        event: &str,
        data: &str,
        comment: bool,
    ) -> Result<Option<StreamItem>, ClientError> {
        let bad = |e: serde_json::Error| ClientError::Protocol {
            addr: self.addr,
            message: format!("bad event {data:?}: {e}"),
        };
        Ok(match event {
            "" if !data.is_empty() => Some(StreamItem::Decision(
                serde_json::from_str(data).map_err(bad)?,
            )),
            "lagged" => {
                let v: serde_json::Value = serde_json::from_str(data).map_err(bad)?;
                Some(StreamItem::Lagged(v["missed"].as_u64().unwrap_or(0)))
            }
            "" if comment => Some(StreamItem::KeepAlive),
            // Unknown event types are for newer clients.
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    struct Fixed;

    impl StatusSource for Fixed {
        fn status(&self) -> StatusFile {
            StatusFile {
                device_id: "hh-01".into(),
                site: "WH1".into(),
                durable_seq: 7,
                backlog: 42,
                ..StatusFile::default()
            }
        }
        fn task(&self) -> Option<String> {
            Some("Pick 3 × 09506000134352 lot ABC from A-01-02".into())
        }
    }

    fn event(n: u64, decision: &Decision) -> DecisionEvent {
        let at = time::macros::datetime!(2025-05-01 10:00:00 UTC) + Duration::from_secs(n);
        DecisionEvent::new(at, 0, Some(format!("scan {n}")), decision, None)
    }

    fn accepted(n: u64) -> DecisionEvent {
        event(
            n,
            &Decision::Accepted {
                seqs: vec![n],
                message: format!("received {n}"),
            },
        )
    }

    fn state(decisions: Decisions) -> (AppState, watch::Sender<bool>) {
        let (stop_tx, stop) = watch::channel(false);
        let st = AppState {
            source: Arc::new(Fixed),
            decisions,
            stop,
            keep_alive: Duration::from_millis(100),
        };
        (st, stop_tx)
    }

    #[test]
    fn event_json_has_the_contract_shape() {
        let cases = [
            (
                accepted(1),
                r#"{"at":"2025-05-01T10:00:01Z","source":0,"scan":"scan 1","result":"accepted","message":"received 1","seqs":[1],"task":null}"#,
            ),
            (
                event(
                    2,
                    &Decision::Prompt {
                        message: "scan items".into(),
                    },
                ),
                r#"{"at":"2025-05-01T10:00:02Z","source":0,"scan":"scan 2","result":"prompt","message":"scan items","seqs":[],"task":null}"#,
            ),
            (
                event(
                    3,
                    &Decision::Rejected {
                        reason: "expired".into(),
                        class: dockhand_protocol::sync::RejectClass::Refused,
                    },
                ),
                r#"{"at":"2025-05-01T10:00:03Z","source":0,"scan":"scan 3","result":"rejected","message":"expired","seqs":[],"task":null}"#,
            ),
            (
                accepted(4).not_stored("disk full"),
                r#"{"at":"2025-05-01T10:00:04Z","source":0,"scan":"scan 4","result":"rejected","message":"not stored: disk full","seqs":[],"task":null}"#,
            ),
        ];
        for (ev, want) in cases {
            assert_eq!(serde_json::to_string(&ev).unwrap(), want);
            assert_eq!(serde_json::from_str::<DecisionEvent>(want).unwrap(), ev);
        }
    }

    #[test]
    fn ring_keeps_the_last_twenty() {
        let d = Decisions::default();
        for n in 0..25 {
            d.publish(accepted(n));
        }
        let recent = d.recent();
        assert_eq!(recent.len(), RECENT_DECISIONS);
        assert_eq!(recent[0], accepted(5));
        assert_eq!(recent[19], accepted(24));
    }

    #[tokio::test]
    async fn durable_decisions_wait_for_the_writer_and_failures_become_rejections() {
        let d = Decisions::default();
        let mut sub = d.subscribe();
        let (emitter, task) = Emitter::spawn(d.clone());
        let (w1, r1) = oneshot::channel();
        let (w2, r2) = oneshot::channel();
        let fb1 = emitter.emit(accepted(1), Some(r1)).unwrap();
        let fb2 = emitter.emit(accepted(2), Some(r2)).unwrap();
        // A rejection overtakes scans waiting for their fdatasync.
        let rej = event(
            3,
            &Decision::Rejected {
                reason: "no".into(),
                class: dockhand_protocol::sync::RejectClass::Refused,
            },
        );
        assert!(emitter.emit(rej.clone(), None).is_none());
        assert_eq!(sub.recv().await.unwrap(), rej);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(sub.try_recv().is_err(), "nothing confirmed before durable");
        w1.send(Ok(())).unwrap();
        assert_eq!(fb1.await.unwrap(), Ok(()));
        assert_eq!(sub.recv().await.unwrap(), accepted(1));
        w2.send(Err("disk full".into())).unwrap();
        assert_eq!(fb2.await.unwrap(), Err("disk full".into()));
        let ev = sub.recv().await.unwrap();
        assert_eq!(ev.result, Outcome::Rejected);
        assert_eq!(ev.message, "not stored: disk full");
        drop(emitter);
        task.await.unwrap();
    }

    /// Each scan is counted once, by its final fate: at once when it made no records, after the writer's answer
    /// otherwise. A gate pass emitted with `emit` is not counted here (the gate counts its own).
    #[tokio::test]
    async fn scans_are_counted_once_by_their_final_fate() {
        use crate::metrics::{RejectReason, ScanResult};
        let m = Arc::new(AgentMetrics::default());
        let (emitter, task) = Emitter::spawn(Decisions::default());
        let rejected = |scan: Option<&str>| DecisionEvent {
            scan: scan.map(Into::into),
            ..event(
                9,
                &Decision::Rejected {
                    reason: "no".into(),
                    class: dockhand_protocol::sync::RejectClass::Refused,
                },
            )
        };
        assert!(emitter.emit_scan(rejected(Some("x")), None, &m).is_none());
        assert!(emitter.emit_scan(rejected(None), None, &m).is_none());
        let (ok, r1) = oneshot::channel();
        let (full, r2) = oneshot::channel();
        let (broken, r3) = oneshot::channel();
        let fb = [
            emitter.emit_scan(accepted(1), Some(r1), &m).unwrap(),
            emitter.emit_scan(accepted(2), Some(r2), &m).unwrap(),
            emitter.emit_scan(accepted(3), Some(r3), &m).unwrap(),
        ];
        let (gate, r4) = oneshot::channel();
        let gate_fb = emitter.emit(accepted(4), Some(r4)).unwrap();
        // Not counted before the writer answers.
        assert_eq!(m.scans(ScanResult::Accepted), 0);
        ok.send(Ok(())).unwrap();
        full.send(Err(
            "storage full: scan not stored (1 MiB free); sync or free space".into(),
        ))
        .unwrap();
        broken
            .send(Err("journal failed, scan not stored: EIO".into()))
            .unwrap();
        gate.send(Ok(())).unwrap();
        for f in fb {
            let _ = f.await.unwrap();
        }
        gate_fb.await.unwrap().unwrap();
        let cases = [
            (ScanResult::Accepted, 1),
            (ScanResult::Prompt, 0),
            (ScanResult::Rejected(RejectReason::Refused), 1),
            (ScanResult::Rejected(RejectReason::Undecodable), 1),
            (ScanResult::Rejected(RejectReason::StorageFull), 1),
            (ScanResult::Rejected(RejectReason::NotStored), 1),
        ];
        for (result, want) in cases {
            assert_eq!(m.scans(result), want, "{result:?}");
        }
        drop(emitter);
        task.await.unwrap();
    }

    /// `/metrics` serves what the source renders, as the text format; a source without metrics answers 404.
    #[tokio::test]
    async fn metrics_route_serves_the_sources_exposition() {
        struct WithMetrics;
        impl StatusSource for WithMetrics {
            fn status(&self) -> StatusFile {
                StatusFile::default()
            }
            fn task(&self) -> Option<String> {
                None
            }
            fn metrics(&self) -> Option<String> {
                let m = AgentMetrics::default();
                m.scan(ScanResult::Accepted);
                Some(m.render(&crate::metrics::Gauges {
                    device: "hh-01".into(),
                    backlog: 42,
                    ..Default::default()
                }))
            }
        }
        let get = |st: AppState| async move {
            let res = router(st)
                .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
                .await
                .unwrap();
            let code = res.status();
            let content_type = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string());
            let body = res.into_body().collect().await.unwrap().to_bytes();
            (
                code,
                content_type,
                String::from_utf8(body.to_vec()).unwrap(),
            )
        };
        let (st, _stop) = state(Decisions::default());
        assert_eq!(get(st).await.0, StatusCode::NOT_FOUND);
        let (mut st, _stop) = state(Decisions::default());
        st.source = Arc::new(WithMetrics);
        let (code, content_type, text) = get(st).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some(crate::metrics::CONTENT_TYPE));
        assert!(
            text.contains("dockhand_agent_scans_total{result=\"accepted\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("dockhand_agent_sync_backlog_movements 42\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn status_route_adds_task_and_last_decisions() {
        let d = Decisions::default();
        d.publish(accepted(1));
        let (st, _stop) = state(d);
        let res = router(st)
            .oneshot(Request::get("/status").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["device_id"], "hh-01");
        assert_eq!(v["backlog"], 42);
        assert_eq!(v["task"], "Pick 3 × 09506000134352 lot ABC from A-01-02");
        assert_eq!(v["last_decisions"][0]["message"], "received 1");
    }

    /// A gate whose audit ring holds two reads.
    struct Gate(mpsc::Sender<AuditRequest>);

    impl StatusSource for Gate {
        fn status(&self) -> StatusFile {
            StatusFile::default()
        }
        fn task(&self) -> Option<String> {
            None
        }
        fn audit(&self) -> Option<mpsc::Sender<AuditRequest>> {
            Some(self.0.clone())
        }
    }

    #[tokio::test]
    async fn audit_route_serves_a_gates_ring_and_404_elsewhere() {
        let get = |st: AppState| async move {
            let res = router(st)
                .oneshot(Request::get("/audit").body(Body::empty()).unwrap())
                .await
                .unwrap();
            let code = res.status();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            (code, String::from_utf8(body.to_vec()).unwrap())
        };
        let (st, _stop) = state(Decisions::default());
        assert_eq!(get(st).await.0, StatusCode::NOT_FOUND);
        let (tx, mut rx) = mpsc::channel::<AuditRequest>(1);
        let lines = "{\"epc\":\"30\",\"antenna\":1,\"rssi\":-60,\"at\":5,\"count\":1}\n".repeat(2);
        let want = lines.clone();
        let gate = tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                let _ = req.send(lines.clone());
            }
        });
        let (mut st, _stop) = state(Decisions::default());
        st.source = Arc::new(Gate(tx));
        assert_eq!(get(st.clone()).await, (StatusCode::OK, want));
        // The gate task has ended (shutdown).
        gate.abort();
        let _ = gate.await;
        assert_eq!(get(st).await.0, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn events_route_streams_lagged_notice_and_ends_at_shutdown() {
        let d = Decisions::with_capacity(2);
        let (st, stop) = state(d.clone());
        let res = router(st)
            .oneshot(Request::get("/events").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        // Subscribed when the response was made: four events into a channel of two lag it by two.
        for n in 1..=4 {
            d.publish(accepted(n));
        }
        stop.send(true).unwrap();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        let want = format!(
            "event: lagged\ndata: {{\"missed\":2}}\n\ndata: {}\n\ndata: {}\n\n",
            serde_json::to_string(&accepted(3)).unwrap(),
            serde_json::to_string(&accepted(4)).unwrap()
        );
        assert_eq!(text, want);
    }

    /// One test on a real socket: the blocking client against `spawn`, keep-alives included.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn client_reads_status_and_stream_over_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let d = Decisions::default();
        let (st, stop) = state(d.clone());
        let server = spawn("127.0.0.1:0".parse().unwrap(), dir.path(), st)
            .await
            .unwrap();
        let addr = read_addr(dir.path()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let client = std::thread::spawn(move || {
            let mut events = EventStream::connect(addr, Duration::from_secs(5)).unwrap();
            tx.send(()).unwrap();
            let mut items = Vec::new();
            while let Some(item) = events.next_item().unwrap() {
                items.push(item);
            }
            items
        });
        tokio::task::spawn_blocking(move || rx.recv().unwrap())
            .await
            .unwrap();
        let status =
            tokio::task::spawn_blocking(move || fetch_status(addr, Duration::from_secs(5)))
                .await
                .unwrap()
                .unwrap();
        assert_eq!(
            status["task"],
            "Pick 3 × 09506000134352 lot ABC from A-01-02"
        );
        d.publish(accepted(1));
        tokio::time::sleep(Duration::from_millis(250)).await; // at least one keep-alive
        d.publish(event(
            2,
            &Decision::Rejected {
                reason: "wrong item".into(),
                class: dockhand_protocol::sync::RejectClass::Refused,
            },
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(true).unwrap();
        server.await.unwrap();
        let items = tokio::task::spawn_blocking(move || client.join().unwrap())
            .await
            .unwrap();
        let decisions: Vec<_> = items
            .iter()
            .filter(|i| !matches!(i, StreamItem::KeepAlive))
            .cloned()
            .collect();
        assert_eq!(
            decisions,
            [
                StreamItem::Decision(accepted(1)),
                StreamItem::Decision(event(
                    2,
                    &Decision::Rejected {
                        reason: "wrong item".into(),
                        class: dockhand_protocol::sync::RejectClass::WrongItem,
                    }
                ))
            ]
        );
        assert!(items.contains(&StreamItem::KeepAlive), "{items:?}");
        // The address file goes with the endpoint.
        let after = read_addr(dir.path());
        assert!(matches!(after, Err(ClientError::NoAddress(_))), "{after:?}");
    }
}
