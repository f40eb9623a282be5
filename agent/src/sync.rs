//! The sync task: pushes the durable backlog to the server, oldest first, and acts on acknowledgements.
//!
//! Rules (DESIGN §3.4, §5):
//! - A movement leaves the backlog only after the server acknowledged it *and* that acknowledgement is durable in
//!   the journal (`Writer::ack`).
//! - Network errors, 5xx and 429 are retried with capped exponential backoff plus jitter ([`Backoff`]); new data
//!   wakes the task at once, so a link coming back drains the backlog without waiting for the next tick.
//! - Nothing is ever dropped because of an error: a conflict or a rejected batch is logged loudly, shown in the status
//!   file, and retried with backoff until a person fixes it.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dockhand_protocol::sync::{ErrorBody, PushRequest, PushResponse};
use serde::Serialize;
use tokio::sync::Notify;

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

/// Why a push failed.
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
}

/// HTTPS transport (reqwest over rustls, trusting the server's CA file).
pub struct HttpTransport {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl HttpTransport {
    /// Builds the client. `ca_pem` is the CA that signed the server certificate.
    pub fn new(base_url: &str, ca_pem: Option<&[u8]>, token: &str) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
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
            token: token.trim().to_string(),
        })
    }
}

impl Transport for HttpTransport {
    async fn push(&self, req: &PushRequest) -> Result<PushResponse, PushError> {
        let resp = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header(
                "X-Dockhand-Protocol",
                dockhand_protocol::sync::PROTOCOL_VERSION.to_string(),
            )
            .json(req)
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
                message: format!("unreadable acknowledgement: {e}"),
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
}

fn now_text() -> Option<String> {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Runs the sync loop until `shutdown` resolves.
pub async fn run<T: Transport>(
    transport: T,
    settings: SyncSettings,
    backlog: Backlog,
    writer: Writer,
    new_data: Arc<Notify>,
    status: Arc<Mutex<SyncStatus>>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut backoff = Backoff::new(Duration::from_millis(100), settings.max_backoff);
    let mut delay = Duration::ZERO;
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = new_data.notified() => {
                // Let a burst accumulate into one batch.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            _ = tokio::time::sleep(delay) => {}
        }
        let (batch, pending): (Vec<_>, usize) = match backlog.lock() {
            Ok(b) => (
                b.iter().take(settings.batch_size).cloned().collect(),
                b.len(),
            ),
            Err(_) => return,
        };
        let Some(first) = batch.first().map(|m| m.seq) else {
            delay = settings.interval;
            continue;
        };
        let last = batch.last().map_or(first, |m| m.seq);
        let req = PushRequest {
            device_id: settings.device_id.clone(),
            movements: batch,
            backlog: Some(pending as u64),
        };
        let result = transport.push(&req).await;
        let mut st = status.lock().map(|s| s.clone()).unwrap_or_default();
        st.last_attempt = now_text();
        let ack = match result {
            Ok(resp) => Ok(resp.acked_through),
            // The server already holds everything before `expected_seq`.
            Err(PushError::Gap { expected_seq }) if expected_seq > first => Ok(expected_seq - 1),
            Err(PushError::Gap { expected_seq }) => Err(format!(
                "server is missing movements {expected_seq}..{} that this device no longer holds; \
                 restore the server or contact support",
                first - 1
            )),
            Err(e) => Err(e.to_string()),
        };
        match ack {
            Ok(hw) => {
                if let Err(e) = writer.ack(hw).await {
                    tracing::error!(error = %e, "cannot persist acknowledgement; stopping sync");
                    return;
                }
                if let Ok(mut b) = backlog.lock() {
                    while b.front().is_some_and(|m| m.seq <= hw) {
                        b.pop_front();
                    }
                }
                tracing::debug!(first, last, acked_through = hw, "pushed");
                backoff.reset();
                st.last_success = st.last_attempt.clone();
                st.last_result = Some("ok".into());
                st.failures = 0;
                st.acked_through = hw;
                let more = backlog.lock().map(|b| !b.is_empty()).unwrap_or(false);
                delay = if more {
                    Duration::ZERO
                } else {
                    settings.interval
                };
            }
            Err(e) => {
                delay = backoff.next_delay(rand::random::<f64>());
                st.failures = backoff.attempts();
                st.last_result = Some(e.clone());
                if backoff.attempts() == 1 || backoff.attempts().is_multiple_of(10) {
                    tracing::warn!(error = %e, backlog_from = first, retry_in_ms = delay.as_millis() as u64,
                        failures = backoff.attempts(), "sync failed; movements are kept and retried");
                }
            }
        }
        if let Ok(mut s) = status.lock() {
            *s = st;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
