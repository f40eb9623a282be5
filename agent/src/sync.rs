//! The sync task: pushes the durable backlog to the server, oldest first, and acts on acknowledgements.
//!
//! Rules (DESIGN §3.4, §5):
//! - A movement leaves the backlog only after the server acknowledged it *and* that acknowledgement is durable in
//!   the journal (`Writer::ack`).
//! - Network errors, 5xx and 429 are retried with capped exponential backoff plus jitter ([`Backoff`]); new data
//!   wakes the task at once, so a link coming back drains the backlog without waiting for the next tick.
//! - Nothing is ever dropped because of an error: a conflict or a rejected batch is logged loudly, shown in the status
//!   file, and retried with backoff until a person fixes it.
//!
//! Pull (master data and tasks, `GET /v1/sync/pull`):
//! - Push goes first in every round; a pull runs after it whenever a pull is due (at start, then once per
//!   `interval` after a successful pull, or after the pull backoff following a failure), so office changes reach
//!   the device within one interval and a failing pull never delays a push.
//! - Pages are requested until `more` is false; each page is applied to sled together with its cursor in one
//!   transaction ([`LocalView::apply_changes`]) before the next page is requested. The data is rebuildable from the
//!   server (cursor 0 is a snapshot), so sled's own flushing is durable enough.
//! - Pull errors (same mapping as push) back off with their own [`Backoff`], independent of the push backoff.
//!
//! Site stock snapshot (`GET /v1/sync/stock`, [`crate::sitestock`]):
//! - Fetched after the pull of a round whose push succeeded (nothing to push, or acknowledged), at start (so also
//!   right after a quarantined store was rebuilt) and then at most once per `stock_refresh`. Fetching between
//!   push rounds, never during one, is what makes the snapshot's `acked_through` exact for this device.
//! - Errors back off with their own [`Backoff`] and show in [`SyncStatus`] (`last_stock_error`); the previous
//!   snapshot is kept meanwhile and its age is shown with every answer.
//!
//! Every failed exchange is also counted by operation and class, and every success timestamped, in
//! [`AgentMetrics`] for `GET /metrics`.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dockhand_protocol::sync::{
    ErrorBody, PullResponse, PushRequest, PushResponse, ScanStatsRequest, ScanStatsResponse,
    StockSnapshot,
};
use serde::Serialize;
use tokio::sync::Notify;

use crate::metrics::{AgentMetrics, SyncErrorClass, SyncOp};
use crate::sitestock::SiteStock;
use crate::view::{LocalView, MasterCounts};
use crate::writer::{Backlog, Writer};

/// Capped exponential backoff with jitter; pure, so tests can step it.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// Starts at `base`, doubles per failure, never exceeds `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The delay before the next attempt; `jitter` in `[0, 1)` spreads it over the upper half of the window so a
    /// fleet reconnecting at once does not hit the server in lockstep.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(20));
        let window = exp.min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        window / 2 + window.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failures in a row.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// Why a push or a pull failed (a pull never yields [`PushError::Gap`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// Network error, timeout, 5xx, 429: try again later.
    #[error("server unreachable or busy: {0}")]
    Unavailable(String),
    /// The server expects an earlier seq (409 with `expected_seq`).
    #[error("server expects seq {expected_seq}")]
    Gap {
        /// The seq the server wants next.
        expected_seq: u64,
    },
    /// Any other refusal (401, 403, 409 conflict, 400, 413): needs a person.
    #[error("server refused the batch ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
}

/// The sync transport seam.
pub trait Transport: Send + Sync + 'static {
    /// Pushes one batch.
    fn push(
        &self,
        req: &PushRequest,
    ) -> impl Future<Output = Result<PushResponse, PushError>> + Send;

    /// Fetches one page of the pull feed after `cursor`.
    fn pull(
        &self,
        cursor: u64,
        limit: usize,
    ) -> impl Future<Output = Result<PullResponse, PushError>> + Send;

    /// Fetches the stock snapshot of the device's site.
    fn stock(&self) -> impl Future<Output = Result<StockSnapshot, PushError>> + Send;

    /// Reports refused-scan counters ([`crate::scanstats`]).
    fn scan_stats(
        &self,
        req: &ScanStatsRequest,
    ) -> impl Future<Output = Result<ScanStatsResponse, PushError>> + Send;
}

/// The `User-Agent` of every request to the server: the office's device list shows which agent version each
/// device runs, so a fleet upgrade can be followed (and a straggler found).
pub const USER_AGENT: &str = concat!("dockhand-agent/", env!("CARGO_PKG_VERSION"));

/// HTTPS transport (reqwest over rustls, trusting the server's CA file).
pub struct HttpTransport {
    client: reqwest::Client,
    url: String,
    pull_url: String,
    stock_url: String,
    stats_url: String,
    token: String,
}

impl HttpTransport {
    /// Builds the client. `ca_pem` is the CA that signed the server certificate.
    pub fn new(base_url: &str, ca_pem: Option<&[u8]>, token: &str) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("CA file is not PEM: {e}"))?;
            if certs.is_empty() {
                return Err("CA file holds no certificate".into());
            }
            builder = builder.tls_certs_only(certs);
        }
        let client = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
        Ok(HttpTransport {
            client,
            url: format!("{}/v1/sync/push", base_url.trim_end_matches('/')),
            pull_url: format!("{}/v1/sync/pull", base_url.trim_end_matches('/')),
            stock_url: format!("{}/v1/sync/stock", base_url.trim_end_matches('/')),
            stats_url: format!("{}/v1/sync/scan-stats", base_url.trim_end_matches('/')),
            token: token.trim().to_string(),
        })
    }
}

impl HttpTransport {
    /// Sends `req` with the device's credentials and maps the answer to what the sync loop acts on: the decoded
    /// body of a 2xx; [`PushError::Unavailable`] for network errors, 5xx and 429 (retry later); a 409 carrying
    /// `expected_seq` as [`PushError::Gap`]; anything else as [`PushError::Refused`] with the server's message.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, PushError> {
        let resp = req
            .bearer_auth(&self.token)
            .header(
                "X-Dockhand-Protocol",
                dockhand_protocol::sync::PROTOCOL_VERSION.to_string(),
            )
            .send()
            .await
            .map_err(|e| PushError::Unavailable(error_chain(&e)))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| PushError::Unavailable(error_chain(&e)))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| PushError::Refused {
                status: status.as_u16(),
                message: format!("unreadable {what}: {e}"),
            });
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(PushError::Unavailable(format!("HTTP {status}")));
        }
        let err: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        if status.as_u16() == 409 {
            if let Some(expected_seq) = err
                .as_ref()
                .and_then(|e| e.expected_seq.or(e.error.expected_seq))
            {
                return Err(PushError::Gap { expected_seq });
            }
        }
        Err(PushError::Refused {
            status: status.as_u16(),
            message: err.map_or_else(
                || String::from_utf8_lossy(&body).chars().take(200).collect(),
                |e| e.error.message,
            ),
        })
    }
}

impl Transport for HttpTransport {
    async fn push(&self, req: &PushRequest) -> Result<PushResponse, PushError> {
        self.call(self.client.post(&self.url).json(req), "acknowledgement")
            .await
    }

    async fn pull(&self, cursor: u64, limit: usize) -> Result<PullResponse, PushError> {
        let url = format!("{}?cursor={cursor}&limit={limit}", self.pull_url);
        self.call(self.client.get(url), "pull page").await
    }

    async fn stock(&self) -> Result<StockSnapshot, PushError> {
        self.call(self.client.get(&self.stock_url), "stock snapshot")
            .await
    }

    async fn scan_stats(&self, req: &ScanStatsRequest) -> Result<ScanStatsResponse, PushError> {
        self.call(
            self.client.post(&self.stats_url).json(req),
            "scan stats answer",
        )
        .await
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// What the status file shows about sync.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncStatus {
    /// RFC 3339 time of the last attempt.
    pub last_attempt: Option<String>,
    /// RFC 3339 time of the last success.
    pub last_success: Option<String>,
    /// `ok` or the error of the last attempt.
    pub last_result: Option<String>,
    /// Failures in a row.
    pub failures: u32,
    /// The server's acknowledged high-water mark.
    pub acked_through: u64,
    /// The pull cursor of the last applied page.
    pub pull_cursor: u64,
    /// RFC 3339 time of the last successful pull (all pages until `more` was false).
    pub last_pull_success: Option<String>,
    /// `ok` or the error of the last pull.
    pub last_pull: Option<String>,
    /// Pull failures in a row.
    pub pull_failures: u32,
    /// Master data and tasks held on the device.
    pub master: MasterCounts,
    /// RFC 3339 time of the last site stock snapshot installed.
    pub stock_fetched_at: Option<String>,
    /// The error of the last snapshot fetch; `None` after a success.
    pub last_stock_error: Option<String>,
    /// Snapshot failures in a row.
    pub stock_failures: u32,
}

/// Hands memory freed after a drained burst back to the OS. glibc keeps freed heap in per-thread arenas and only
/// trims the top of the main one, so a backlog of 100,000 movements pushed from tokio worker threads would stay
/// resident for the process's life without this.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes the arena locks itself.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Settings of the sync loop.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// This device.
    pub device_id: String,
    /// Idle tick.
    pub interval: Duration,
    /// Backoff cap.
    pub max_backoff: Duration,
    /// Movements per request.
    pub batch_size: usize,
    /// Changes per pull page.
    pub pull_limit: usize,
    /// Least time between two site stock snapshots.
    pub stock_refresh: Duration,
}

fn now_text() -> Option<String> {
    crate::clock::now()
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// A failed exchange: its class for the metrics, and what the status file shows.
type Failure = (SyncErrorClass, String);

fn local_failure(e: impl std::fmt::Display) -> Failure {
    (SyncErrorClass::Local, e.to_string())
}

fn remote_failure(e: PushError) -> Failure {
    (SyncErrorClass::of(&e), e.to_string())
}

fn unix_now() -> i64 {
    crate::clock::now().unix_timestamp()
}

/// Pulls pages from `view`'s cursor until `more` is false, applying each before asking for the next.
/// Returns the final cursor; `status` is updated after every page.
async fn pull_all<T: Transport>(
    transport: &T,
    view: &LocalView,
    limit: usize,
    status: &Mutex<SyncStatus>,
) -> Result<u64, Failure> {
    let mut cursor = {
        let v = view.clone();
        tokio::task::spawn_blocking(move || v.pull_cursor())
            .await
            .map_err(local_failure)?
            .map_err(local_failure)?
    };
    loop {
        let page = transport
            .pull(cursor, limit.max(1))
            .await
            .map_err(remote_failure)?;
        if page.more && page.cursor <= cursor {
            return Err((
                SyncErrorClass::Protocol,
                format!("server sent more=true without advancing the cursor past {cursor}"),
            ));
        }
        let (v, n, next) = (view.clone(), page.changes.len(), page.cursor);
        let counts = tokio::task::spawn_blocking(move || {
            v.apply_changes(&page.changes, next)?;
            Ok::<_, crate::view::ViewError>(v.master_counts())
        })
        .await
        .map_err(local_failure)?
        .map_err(local_failure)?;
        tracing::debug!(
            from = cursor,
            to = next,
            changes = n,
            more = page.more,
            "pulled"
        );
        cursor = next;
        if let Ok(mut s) = status.lock() {
            s.pull_cursor = cursor;
            s.master = counts;
        }
        if !page.more {
            return Ok(cursor);
        }
    }
}

/// Fetches a site stock snapshot and installs it; returns the number of rows.
async fn refresh_stock<T: Transport>(transport: &T, stock: &SiteStock) -> Result<usize, Failure> {
    let snap = transport.stock().await.map_err(remote_failure)?;
    let (s, at) = (stock.clone(), crate::clock::now());
    tokio::task::spawn_blocking(move || s.install(&snap, at))
        .await
        .map_err(local_failure)?
        .map_err(local_failure)
}

/// Runs the sync loop until `shutdown` resolves.
#[allow(clippy::too_many_arguments)]
pub async fn run<T: Transport>(
    transport: T,
    settings: SyncSettings,
    backlog: Backlog,
    writer: Writer,
    view: LocalView,
    new_data: Arc<Notify>,
    status: Arc<Mutex<SyncStatus>>,
    metrics: Arc<AgentMetrics>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut backoff = Backoff::new(Duration::from_millis(100), settings.max_backoff);
    let mut pull_backoff = Backoff::new(Duration::from_millis(100), settings.max_backoff);
    let mut delay = Duration::ZERO;
    let mut next_pull = tokio::time::Instant::now();
    let mut stock_backoff = Backoff::new(Duration::from_millis(100), settings.max_backoff);
    let mut next_stock = tokio::time::Instant::now();
    let site_stock = SiteStock::new(view.db())
        .map_err(|e| tracing::error!(error = %e, "site stock unavailable; offline stock lookups show no snapshot"))
        .ok();
    let scan_stats = Some(view.scan_stats().clone());
    let mut next_stats = tokio::time::Instant::now();
    let mut stats_failures = 0u32;
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = new_data.notified() => {
                // Let a burst accumulate into one batch.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            _ = tokio::time::sleep(delay) => {}
        }
        // Push first; as before, an attempt in flight is finished, not cut off, at shutdown.
        let Some(push_delay) = push_round(
            &transport,
            &settings,
            &backlog,
            &writer,
            &mut backoff,
            &status,
            &metrics,
        )
        .await
        else {
            return;
        };
        // Refused-scan counters ride on the pull's cadence, after a push that worked (a server that is down is
        // retried by the push's backoff, not by this).
        if let (true, Some(stats)) = (backoff.attempts() == 0, &scan_stats) {
            if tokio::time::Instant::now() >= next_stats {
                let result = tokio::select! {
                    _ = &mut shutdown => return,
                    r = report_scan_stats(&transport, &settings.device_id, stats) => r,
                };
                match result {
                    Ok(()) => stats_failures = 0,
                    Err(e) => {
                        stats_failures += 1;
                        if stats_failures == 1 || stats_failures.is_multiple_of(10) {
                            tracing::warn!(error = %e, failures = stats_failures,
                                "refused-scan counters not reported; kept and retried");
                        }
                    }
                }
                next_stats = tokio::time::Instant::now() + settings.interval;
            }
        }
        if tokio::time::Instant::now() >= next_pull {
            let result = tokio::select! {
                _ = &mut shutdown => return,
                r = pull_all(&transport, &view, settings.pull_limit, &status) => r,
            };
            let mut st = status.lock().map(|s| s.clone()).unwrap_or_default();
            match result {
                Ok(cursor) => {
                    metrics.sync_ok(SyncOp::Pull, unix_now());
                    pull_backoff.reset();
                    st.last_pull_success = now_text();
                    st.last_pull = Some("ok".into());
                    st.pull_failures = 0;
                    st.pull_cursor = cursor;
                    next_pull = tokio::time::Instant::now() + settings.interval;
                }
                Err((class, e)) => {
                    metrics.sync_error(SyncOp::Pull, class);
                    let d = pull_backoff.next_delay(rand::random::<f64>());
                    st.pull_failures = pull_backoff.attempts();
                    st.last_pull = Some(e.clone());
                    if pull_backoff.attempts() == 1 || pull_backoff.attempts().is_multiple_of(10) {
                        tracing::warn!(error = %e, retry_in_ms = d.as_millis() as u64,
                            failures = pull_backoff.attempts(), "pull failed; master data is kept and retried");
                    }
                    next_pull = tokio::time::Instant::now() + d;
                }
            }
            if let Ok(mut s) = status.lock() {
                *s = st;
            }
        }
        // Only after a successful push: a failing push must not turn a due snapshot into a busy loop.
        let push_ok = backoff.attempts() == 0;
        if let (true, Some(stock)) = (push_ok, &site_stock) {
            if tokio::time::Instant::now() >= next_stock {
                let result = tokio::select! {
                    _ = &mut shutdown => return,
                    r = refresh_stock(&transport, stock) => r,
                };
                let now = tokio::time::Instant::now();
                next_stock = match result {
                    Ok(rows) => {
                        metrics.sync_ok(SyncOp::Stock, unix_now());
                        stock_backoff.reset();
                        tracing::debug!(rows, "site stock snapshot installed");
                        if let Ok(mut s) = status.lock() {
                            s.stock_fetched_at = now_text();
                            s.last_stock_error = None;
                            s.stock_failures = 0;
                        }
                        now + settings.stock_refresh
                    }
                    Err((class, e)) => {
                        metrics.sync_error(SyncOp::Stock, class);
                        let d = stock_backoff.next_delay(rand::random::<f64>());
                        if stock_backoff.attempts() == 1
                            || stock_backoff.attempts().is_multiple_of(10)
                        {
                            tracing::warn!(error = %e, retry_in_ms = d.as_millis() as u64,
                                failures = stock_backoff.attempts(),
                                "site stock snapshot failed; the previous one is kept and retried");
                        }
                        if let Ok(mut s) = status.lock() {
                            s.last_stock_error = Some(e);
                            s.stock_failures = stock_backoff.attempts();
                        }
                        now + d
                    }
                };
            }
        }
        let now = tokio::time::Instant::now();
        delay = push_delay.min(next_pull.saturating_duration_since(now));
        if push_ok && site_stock.is_some() {
            delay = delay.min(next_stock.saturating_duration_since(now));
        }
    }
}

/// Sends the unreported refused-scan counters, a request of at most
/// [`dockhand_protocol::sync::MAX_SCAN_STATS_ROWS`] rows at a time (at most 16 requests per round), and marks what
/// the server acknowledged as reported.
async fn report_scan_stats<T: Transport>(
    transport: &T,
    device_id: &str,
    stats: &crate::scanstats::ScanStats,
) -> Result<(), String> {
    for _ in 0..16 {
        let rows = stats.unreported().map_err(|e| e.to_string())?;
        if rows.is_empty() {
            break;
        }
        let req = ScanStatsRequest {
            device_id: device_id.to_string(),
            stats: rows,
        };
        transport
            .scan_stats(&req)
            .await
            .map_err(|e| e.to_string())?;
        stats
            .reported(&req.stats, crate::clock::now())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One push attempt of the oldest batch; returns the delay before the next round, or `None` to stop syncing.
async fn push_round<T: Transport>(
    transport: &T,
    settings: &SyncSettings,
    backlog: &Backlog,
    writer: &Writer,
    backoff: &mut Backoff,
    status: &Mutex<SyncStatus>,
    metrics: &AgentMetrics,
) -> Option<Duration> {
    // Movements spilled to the journal (a long offline spell) are read back outside the lock, so the writer is
    // never kept waiting on this file read.
    let refill = match backlog.lock() {
        Ok(b) => b
            .refill_from(settings.batch_size)
            .map(|(after, max)| (after, max, b.journal_dir.clone())),
        Err(_) => return None,
    };
    if let Some((after, max, dir)) = refill {
        match tokio::task::spawn_blocking(move || crate::journal::read_movements(&dir, after, max))
            .await
        {
            Ok(Ok(ms)) => {
                if let Ok(mut b) = backlog.lock() {
                    b.refill(after, ms);
                }
            }
            // The push below goes on with what is in memory.
            Ok(Err(e)) => {
                metrics.sync_error(SyncOp::Push, SyncErrorClass::Local);
                tracing::error!(error = %e, after, "cannot read the backlog back from the journal")
            }
            Err(e) => {
                metrics.sync_error(SyncOp::Push, SyncErrorClass::Local);
                tracing::error!(error = %e, "journal read task failed")
            }
        }
    }
    let (batch, pending): (Vec<_>, u64) = match backlog.lock() {
        Ok(b) => (
            b.mem.iter().take(settings.batch_size).cloned().collect(),
            b.pending(),
        ),
        Err(_) => return None,
    };
    let Some(first) = batch.first().map(|m| m.seq) else {
        return Some(settings.interval);
    };
    let last = batch.last().map_or(first, |m| m.seq);
    let req = PushRequest {
        device_id: settings.device_id.clone(),
        movements: batch,
        backlog: Some(pending),
    };
    let result = transport.push(&req).await;
    let mut st = status.lock().map(|s| s.clone()).unwrap_or_default();
    st.last_attempt = now_text();
    let ack = match result {
        Ok(resp) => Ok(resp.acked_through),
        // The server already holds everything before `expected_seq`.
        Err(PushError::Gap { expected_seq }) if expected_seq > first => Ok(expected_seq - 1),
        Err(PushError::Gap { expected_seq }) => Err((
            SyncErrorClass::Gap,
            format!(
                "server is missing movements {expected_seq}..{} that this device no longer holds; \
                 restore the server or contact support",
                first - 1
            ),
        )),
        Err(e) => Err(remote_failure(e)),
    };
    let delay = match ack {
        Ok(hw) => {
            if let Err(e) = writer.ack(hw).await {
                metrics.sync_error(SyncOp::Push, SyncErrorClass::Local);
                tracing::error!(error = %e, "cannot persist acknowledgement; stopping sync");
                return None;
            }
            metrics.sync_ok(SyncOp::Push, unix_now());
            if let Ok(mut b) = backlog.lock() {
                let cap = b.mem.capacity();
                b.ack(hw);
                if b.mem.capacity() < cap {
                    release_free_heap();
                }
            }
            tracing::debug!(first, last, acked_through = hw, "pushed");
            backoff.reset();
            st.last_success = st.last_attempt.clone();
            st.last_result = Some("ok".into());
            st.failures = 0;
            st.acked_through = hw;
            let more = backlog.lock().map(|b| b.pending() > 0).unwrap_or(false);
            if more {
                Duration::ZERO
            } else {
                settings.interval
            }
        }
        Err((class, e)) => {
            metrics.sync_error(SyncOp::Push, class);
            let delay = backoff.next_delay(rand::random::<f64>());
            st.failures = backoff.attempts();
            st.last_result = Some(e.clone());
            if backoff.attempts() == 1 || backoff.attempts().is_multiple_of(10) {
                tracing::warn!(error = %e, backlog_from = first, retry_in_ms = delay.as_millis() as u64,
                    failures = backoff.attempts(), "sync failed; movements are kept and retried");
            }
            delay
        }
    };
    // Only the push fields: the pull fields belong to the pull step.
    if let Ok(mut s) = status.lock() {
        s.last_attempt = st.last_attempt;
        s.last_success = st.last_success;
        s.last_result = st.last_result;
        s.failures = st.failures;
        s.acked_through = st.acked_through;
    }
    Some(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Journal, Record};
    use crate::writer::WriterStats;
    use dockhand_protocol::sync::{Change, Item, Movement, MovementKind, MovementSource};
    use std::collections::VecDeque;

    /// Scripted pulls (served in order, then empty pages at the last cursor); pushes ack everything unless
    /// `push_down`.
    #[derive(Default)]
    struct Fake {
        pulls: Mutex<VecDeque<Result<PullResponse, PushError>>>,
        pull_calls: Mutex<Vec<u64>>,
        pushed: Mutex<Vec<u64>>,
        push_down: bool,
        /// Scripted snapshots (served in order, then an empty one covering everything pushed).
        stocks: Mutex<VecDeque<Result<StockSnapshot, PushError>>>,
        stock_calls: Mutex<u32>,
        /// Every refused-scan counter row reported.
        stats: Mutex<Vec<dockhand_protocol::sync::ScanStat>>,
    }

    impl Transport for Arc<Fake> {
        async fn push(&self, req: &PushRequest) -> Result<PushResponse, PushError> {
            if self.push_down {
                return Err(PushError::Unavailable("down".into()));
            }
            let hw = req.movements.last().map_or(0, |m| m.seq);
            self.pushed.lock().unwrap().push(hw);
            Ok(PushResponse { acked_through: hw })
        }

        async fn pull(&self, cursor: u64, _limit: usize) -> Result<PullResponse, PushError> {
            self.pull_calls.lock().unwrap().push(cursor);
            self.pulls
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Ok(PullResponse {
                    cursor,
                    more: false,
                    changes: vec![],
                }))
        }

        async fn scan_stats(&self, req: &ScanStatsRequest) -> Result<ScanStatsResponse, PushError> {
            self.stats.lock().unwrap().extend(req.stats.iter().cloned());
            Ok(ScanStatsResponse {
                stored: req.stats.len(),
            })
        }

        async fn stock(&self) -> Result<StockSnapshot, PushError> {
            *self.stock_calls.lock().unwrap() += 1;
            let acked_through = self.pushed.lock().unwrap().last().copied().unwrap_or(0);
            self.stocks
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Ok(StockSnapshot {
                    site: "WH1".into(),
                    acked_through,
                    stock: vec![],
                }))
        }
    }

    fn item(gtin: &str) -> Change {
        Change::Item(Item {
            gtin: gtin.into(),
            description: "x".into(),
            unit: "EA".into(),
            lot_tracked: false,
            expiry_tracked: false,
            serial_tracked: false,
            active: true,
            unit_cost: None,
        })
    }

    fn page(cursor: u64, more: bool, changes: Vec<Change>) -> Result<PullResponse, PushError> {
        Ok(PullResponse {
            cursor,
            more,
            changes,
        })
    }

    struct Harness {
        _tmp: tempfile::TempDir,
        view: LocalView,
        writer: Writer,
        backlog: Backlog,
        new_data: Arc<Notify>,
        status: Arc<Mutex<SyncStatus>>,
        metrics: Arc<AgentMetrics>,
        stop: tokio::sync::watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    fn start(fake: Arc<Fake>) -> Harness {
        start_with(fake, Duration::from_secs(3600))
    }

    fn start_with(fake: Arc<Fake>, stock_refresh: Duration) -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let (view, _) = LocalView::open(&tmp.path().join("sled")).unwrap();
        let (journal, _) = Journal::open(&tmp.path().join("journal"), 1 << 20).unwrap();
        let backlog: Backlog = Arc::default();
        let new_data = Arc::new(Notify::new());
        let (writer, _thread) = crate::writer::Writer::spawn(
            journal,
            view.clone(),
            backlog.clone(),
            new_data.clone(),
            Arc::new(Mutex::new(WriterStats::default())),
            Arc::new(Notify::new()),
        );
        let status = Arc::new(Mutex::new(SyncStatus::default()));
        let metrics = Arc::new(AgentMetrics::default());
        let (stop, mut rx) = tokio::sync::watch::channel(false);
        let settings = SyncSettings {
            device_id: "hh".into(),
            interval: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            batch_size: 100,
            pull_limit: 2,
            stock_refresh,
        };
        let task = tokio::spawn(run(
            fake,
            settings,
            backlog.clone(),
            writer.clone(),
            view.clone(),
            new_data.clone(),
            status.clone(),
            metrics.clone(),
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        ));
        Harness {
            _tmp: tmp,
            view,
            writer,
            backlog,
            new_data,
            status,
            metrics,
            stop,
            task,
        }
    }

    async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        for _ in 0..400 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test]
    async fn pulls_pages_until_more_is_false() {
        let fake = Arc::new(Fake::default());
        fake.pulls.lock().unwrap().extend([
            page(
                2,
                true,
                vec![item("00000000000001"), item("00000000000002")],
            ),
            page(
                4,
                true,
                vec![item("00000000000003"), item("00000000000002")],
            ),
            page(5, false, vec![item("00000000000004")]),
        ]);
        let h = start(fake.clone());
        wait_for("pull ok", || {
            h.status.lock().unwrap().last_pull.as_deref() == Some("ok")
        })
        .await;
        assert_eq!(&fake.pull_calls.lock().unwrap()[..3], &[0, 2, 4]);
        assert_eq!(h.view.pull_cursor().unwrap(), 5);
        let st = h.status.lock().unwrap().clone();
        assert_eq!(st.pull_cursor, 5);
        assert_eq!(st.master.items, 4);
        assert_eq!(st.pull_failures, 0);
        // The next pull comes within an interval and starts from the stored cursor.
        wait_for("second pull", || fake.pull_calls.lock().unwrap().len() >= 4).await;
        assert_eq!(fake.pull_calls.lock().unwrap()[3], 5);
        h.stop.send(true).unwrap();
        h.task.await.unwrap();
    }

    #[tokio::test]
    async fn pull_error_backs_off_then_succeeds_and_keeps_applied_pages() {
        let fake = Arc::new(Fake::default());
        fake.pulls.lock().unwrap().extend([
            page(1, true, vec![item("00000000000001")]),
            Err(PushError::Unavailable("HTTP 503".into())),
            Err(PushError::Refused {
                status: 401,
                message: "bad token".into(),
            }),
            page(2, false, vec![item("00000000000002")]),
        ]);
        let h = start(fake.clone());
        wait_for("first failure", || {
            h.status.lock().unwrap().pull_failures == 1
        })
        .await;
        // The page before the error is kept, with its cursor.
        assert_eq!(h.view.pull_cursor().unwrap(), 1);
        assert!(h
            .status
            .lock()
            .unwrap()
            .last_pull
            .as_deref()
            .unwrap()
            .contains("503"));
        wait_for("recovery", || {
            h.status.lock().unwrap().last_pull.as_deref() == Some("ok")
        })
        .await;
        // Resumed from the stored cursor, not from 0.
        assert_eq!(&fake.pull_calls.lock().unwrap()[..4], &[0, 1, 1, 1]);
        assert_eq!(h.view.pull_cursor().unwrap(), 2);
        assert_eq!(h.status.lock().unwrap().master.items, 2);
        assert_eq!(h.status.lock().unwrap().pull_failures, 0);
        h.stop.send(true).unwrap();
        h.task.await.unwrap();
    }

    #[tokio::test]
    async fn failing_pulls_do_not_block_pushes() {
        let fake = Arc::new(Fake::default());
        fake.pulls
            .lock()
            .unwrap()
            .extend((0..1000).map(|_| Err(PushError::Unavailable("down".into()))));
        let h = start(fake.clone());
        wait_for("a pull failure", || {
            h.status.lock().unwrap().pull_failures >= 1
        })
        .await;
        let m = Movement {
            device_id: "hh".into(),
            seq: 1,
            at: time::OffsetDateTime::UNIX_EPOCH,
            kind: MovementKind::Receive,
            gtin: "09506000134352".into(),
            lot: None,
            expiry: None,
            serials: vec![],
            qty: 1,
            from_location: None,
            to_location: Some("DOCK".into()),
            sscc: None,
            reference: None,
            operator: None,
            source: MovementSource::Manual,
        };
        h.writer
            .append(vec![Record::Movement(m)])
            .await
            .unwrap()
            .unwrap();
        h.new_data.notify_one();
        wait_for("push", || h.status.lock().unwrap().acked_through == 1).await;
        assert_eq!(h.backlog.lock().unwrap().pending(), 0);
        assert_eq!(fake.pushed.lock().unwrap().as_slice(), &[1]);
        assert!(h.status.lock().unwrap().pull_failures >= 1);
        h.stop.send(true).unwrap();
        h.task.await.unwrap();
    }

    #[tokio::test]
    async fn a_stuck_cursor_is_an_error_not_a_loop() {
        let fake = Arc::new(Fake::default());
        fake.pulls.lock().unwrap().extend([
            page(3, true, vec![item("00000000000001")]),
            page(3, true, vec![]),
        ]);
        let h = start(fake.clone());
        wait_for("failure", || h.status.lock().unwrap().pull_failures == 1).await;
        assert!(h
            .status
            .lock()
            .unwrap()
            .last_pull
            .as_deref()
            .unwrap()
            .contains("without advancing"));
        h.stop.send(true).unwrap();
        h.task.await.unwrap();
    }

    fn receive(seq: u64, to: &str, qty: u64) -> Movement {
        Movement {
            device_id: "hh".into(),
            seq,
            at: time::OffsetDateTime::UNIX_EPOCH,
            kind: MovementKind::Receive,
            gtin: "09506000134352".into(),
            lot: None,
            expiry: None,
            serials: vec![],
            qty,
            from_location: None,
            to_location: Some(to.into()),
            sscc: None,
            reference: None,
            operator: None,
            source: MovementSource::Manual,
        }
    }

    fn snapshot(acked_through: u64, rows: &[(&str, i64)]) -> Result<StockSnapshot, PushError> {
        Ok(StockSnapshot {
            site: "WH1".into(),
            acked_through,
            stock: rows
                .iter()
                .map(|(l, q)| dockhand_protocol::sync::SnapshotRow {
                    location: (*l).into(),
                    gtin: "09506000134352".into(),
                    lot: None,
                    qty: *q,
                })
                .collect(),
        })
    }

    fn local(h: &Harness) -> Vec<(String, i64)> {
        SiteStock::new(h.view.db())
            .unwrap()
            .local_stock(None)
            .unwrap()
            .into_iter()
            .map(|r| (r.location, r.qty))
            .collect()
    }

    #[tokio::test]
    async fn stock_snapshot_at_start_then_unsynced_movements_on_top() {
        let fake = Arc::new(Fake::default());
        fake.stocks
            .lock()
            .unwrap()
            .push_back(snapshot(0, &[("A-01", 7), ("B-01", 1)]));
        let h = start(fake.clone());
        wait_for("snapshot", || {
            h.status.lock().unwrap().stock_fetched_at.is_some()
        })
        .await;
        assert_eq!(local(&h), vec![("A-01".into(), 7), ("B-01".into(), 1)]);
        assert_eq!(*fake.stock_calls.lock().unwrap(), 1);
        // A movement recorded now is added to the snapshot before and after the server acknowledges it.
        h.writer
            .append(vec![Record::Movement(receive(1, "A-01", 2))])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(local(&h), vec![("A-01".into(), 9), ("B-01".into(), 1)]);
        h.new_data.notify_one();
        wait_for("push", || h.status.lock().unwrap().acked_through == 1).await;
        assert_eq!(local(&h), vec![("A-01".into(), 9), ("B-01".into(), 1)]);
        // No second snapshot within the refresh interval.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(*fake.stock_calls.lock().unwrap(), 1);
        h.stop.send(true).unwrap();
        h.task.await.unwrap();
    }

    #[tokio::test]
    async fn stock_errors_back_off_show_in_status_and_keep_the_old_snapshot() {
        let fake = Arc::new(Fake::default());
        fake.stocks.lock().unwrap().extend([
            snapshot(0, &[("A-01", 3)]),
            Err(PushError::Unavailable("HTTP 503".into())),
            Err(PushError::Refused {
                status: 403,
                message: "wrong site".into(),
            }),
            snapshot(0, &[("A-01", 4)]),
        ]);
        let h = start_with(fake.clone(), Duration::from_millis(20));
        wait_for("a failure", || h.status.lock().unwrap().stock_failures >= 1).await;
        assert!(h
            .status
            .lock()
            .unwrap()
            .last_stock_error
            .as_deref()
            .unwrap()
            .contains("503"));
        assert_eq!(
            local(&h),
            vec![("A-01".into(), 3)],
            "the old snapshot is kept"
        );
        wait_for("recovery", || {
            let s = h.status.lock().unwrap();
            s.last_stock_error.is_none()
                && s.stock_failures == 0
                && *fake.stock_calls.lock().unwrap() >= 4
        })
        .await;
        assert_eq!(local(&h), vec![("A-01".into(), 4)]);
        h.stop.send(true).unwrap();
        h.task.await.unwrap();
    }

    /// `/metrics` counts each failed exchange by operation and class and timestamps the successes: a push to a
    /// server that is down, a pull refused with 401 then served, a snapshot refused with 403.
    #[tokio::test]
    async fn errors_and_successes_are_counted_by_operation_and_class() {
        let refused = |status| PushError::Refused {
            status,
            message: "no".into(),
        };
        let fake = Arc::new(Fake {
            push_down: true,
            ..Fake::default()
        });
        fake.pulls.lock().unwrap().push_back(Err(refused(401)));
        fake.stocks.lock().unwrap().push_back(Err(refused(403)));
        let h = start_with(fake.clone(), Duration::from_millis(20));
        let m = h.metrics.clone();
        wait_for("the pull served after its 401", || {
            h.status.lock().unwrap().last_pull.as_deref() == Some("ok")
        })
        .await;
        assert_eq!(m.sync_errors(SyncOp::Pull, SyncErrorClass::Unauthorized), 1);
        assert_eq!(m.sync_errors(SyncOp::Pull, SyncErrorClass::Unavailable), 0);
        wait_for("the snapshot refused", || {
            m.sync_errors(SyncOp::Stock, SyncErrorClass::Forbidden) == 1
        })
        .await;
        h.writer
            .append(vec![Record::Movement(receive(1, "A-01", 2))])
            .await
            .unwrap()
            .unwrap();
        h.new_data.notify_one();
        wait_for("push failures", || h.status.lock().unwrap().failures >= 2).await;
        let failures = u64::from(h.status.lock().unwrap().failures);
        assert!(m.sync_errors(SyncOp::Push, SyncErrorClass::Unavailable) >= failures);
        let text = m.render(&crate::metrics::Gauges::default());
        assert!(
            text.contains("dockhand_agent_sync_last_success_timestamp_seconds{op=\"pull\"} "),
            "{text}"
        );
        assert!(
            !text.contains("dockhand_agent_sync_last_success_timestamp_seconds{op=\"push\"}"),
            "no push ever succeeded: {text}"
        );
        h.stop.send(true).unwrap();
        h.task.await.unwrap();
    }

    #[tokio::test]
    async fn no_snapshot_while_pushes_fail() {
        let fake = Arc::new(Fake {
            push_down: true,
            ..Fake::default()
        });
        let h = start_with(fake.clone(), Duration::from_millis(20));
        h.writer
            .append(vec![Record::Movement(receive(1, "A-01", 2))])
            .await
            .unwrap()
            .unwrap();
        h.new_data.notify_one();
        wait_for("push failures", || h.status.lock().unwrap().failures >= 2).await;
        let calls = *fake.stock_calls.lock().unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            *fake.stock_calls.lock().unwrap(),
            calls,
            "no snapshot while the push fails"
        );
        // Offline, the device still answers with its own movements.
        assert_eq!(local(&h), vec![("A-01".into(), 2)]);
        h.stop.send(true).unwrap();
        h.task.await.unwrap();
    }

    /// Every request names the agent and its version (the office's device list shows it): push, pull and the
    /// stock snapshot, each answered by a bare HTTP server that records the header.
    #[tokio::test]
    async fn every_request_carries_the_user_agent() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let answers = [
            r#"{"acked_through":0}"#,
            r#"{"cursor":0,"more":false,"changes":[]}"#,
            r#"{"site":"WH1","acked_through":0,"stock":[]}"#,
        ];
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for answer in answers {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    let n = conn.read(&mut buf).await.unwrap();
                    assert!(n > 0, "connection closed mid-request");
                    request.extend_from_slice(&buf[..n]);
                    if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i;
                    }
                };
                let head = String::from_utf8_lossy(&request[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                    })
                };
                let length: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
                while request.len() < head_end + 4 + length {
                    let n = conn.read(&mut buf).await.unwrap();
                    request.extend_from_slice(&buf[..n]);
                }
                seen.push((
                    head.lines().next().unwrap_or("").to_string(),
                    header("user-agent"),
                ));
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                conn.write_all(response.as_bytes()).await.unwrap();
            }
            seen
        });
        let transport = HttpTransport::new(&base, None, "token").unwrap();
        let req = PushRequest {
            device_id: "hh-01".into(),
            movements: vec![],
            backlog: Some(0),
        };
        transport.push(&req).await.unwrap();
        transport.pull(0, 10).await.unwrap();
        transport.stock().await.unwrap();
        let seen = server.await.unwrap();
        let want = Some(format!("dockhand-agent/{}", env!("CARGO_PKG_VERSION")));
        assert_eq!(seen.len(), 3);
        for (request_line, agent) in &seen {
            assert_eq!(agent, &want, "{request_line}");
        }
        assert_eq!(Some(USER_AGENT.to_string()), want);
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let lows: Vec<u128> = (0..6).map(|_| b.next_delay(0.0).as_millis()).collect();
        assert_eq!(lows, vec![50, 100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(0.999_999).as_millis(), 99);
        for _ in 0..100 {
            assert!(b.next_delay(0.5) <= Duration::from_millis(1000));
        }
    }
}
