//! Errors: [`Error`] for starting and running the server, [`ApiError`] for HTTP answers.
//!
//! [`ApiError`] is the ONE place where failures become HTTP statuses and the JSON error body
//! `{"error":{"code","message",...}}` (DESIGN §5). Every handler and extractor returns it, so rejections of
//! malformed requests look exactly like business errors to the agent.

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dockhand_protocol::sync::ErrorBody;

use crate::devices::DeviceError;
use crate::import::BadRows;
use crate::store::StoreError;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Certificates or keys could not be created or loaded.
    #[error("TLS material {path}: {message}")]
    Tls {
        /// The file at fault.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The configuration (file or options) is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address as given.
        addr: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The device registry could not be read.
    #[error("devices: {0}")]
    Devices(#[from] DeviceError),
    /// The HTTP server failed while running.
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// A failed request, turned into a status and JSON body in [`IntoResponse`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: the request is malformed; `field` names the offending part (e.g. `movements[3].seq`).
    #[error("{message}")]
    BadRequest {
        /// The offending field path, when one can be named.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// 401: no credential, or not a current one.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// 401 `revoked`: the token is current but the office revoked its device.
    #[error("device {0:?} is revoked: the office withdrew its credential; its synced movements are kept")]
    Revoked(String),
    /// 403: the credential is valid but does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such route or resource.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409 `seq_gap`: the batch starts past high-water + 1.
    #[error("sequence gap: expected seq {expected_seq}")]
    SeqGap {
        /// high-water + 1.
        expected_seq: u64,
    },
    /// 409 `conflict`: a stored movement with this seq has different content.
    #[error("movement seq {seq} was already received with different content")]
    Conflict {
        /// The conflicting seq.
        seq: u64,
    },
    /// 409 `refused`: the request breaks a business rule (already exists, document no longer open, resolved
    /// twice...); nothing changed. A store's [`StoreError::Refused`] answers the same.
    #[error("{0}")]
    Refused(String),
    /// 413: the body is larger than the limit.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 503: storage failed; the agent retries.
    #[error("storage unavailable")]
    Store(#[from] StoreError),
    /// 500: the device registry failed; 503 when its database did (PostgreSQL registry), like the store.
    #[error("device registry unavailable")]
    Devices(#[from] DeviceError),
    /// 500: a bug or a crashed worker.
    #[error("internal error")]
    Internal(String),
    /// 400: an import with bad rows; the body lists them (see [`crate::import`]).
    #[error("{}", .0.summary())]
    BadRows(Box<BadRows>),
}

impl ApiError {
    /// A 400 naming `field`, in the message too (for people reading logs).
    pub fn bad_field(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let field = field.into();
        ApiError::BadRequest {
            message: format!("{field}: {message}"),
            field: Some(field),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { .. } | ApiError::BadRows(_) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Revoked(_) => (StatusCode::UNAUTHORIZED, "revoked"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::SeqGap { .. } => (StatusCode::CONFLICT, "seq_gap"),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            ApiError::Refused(_) | ApiError::Store(StoreError::Refused(_)) => {
                (StatusCode::CONFLICT, "refused")
            }
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::Store(StoreError::InvalidBatch(_)) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            // The registry's database is the store's: unavailable alike, and the agent retries.
            ApiError::Store(_) | ApiError::Devices(DeviceError::Store(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
            }
            ApiError::Devices(_) | ApiError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            // Details of server-side failures go to the log, not to the client.
            ApiError::Store(StoreError::InvalidBatch(m) | StoreError::Refused(m)) => m.clone(),
            ApiError::Store(e) => {
                tracing::error!(error = %e, "store failed");
                self.to_string()
            }
            ApiError::Devices(e) => {
                tracing::error!(error = %e, "device registry failed");
                self.to_string()
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                self.to_string()
            }
            _ => self.to_string(),
        };
        let mut body = ErrorBody::new(code, message);
        match self {
            ApiError::BadRequest { field, .. } => body.error.field = field,
            ApiError::BadRows(bad) => {
                body.error.field = bad.rows.first().map(|r| r.error_field());
                let BadRows { rows, total } = *bad;
                let body = BadRowsBody {
                    body,
                    truncated: total > rows.len(),
                    error_count: total,
                    rows,
                };
                return (status, Json(body)).into_response();
            }
            ApiError::SeqGap { expected_seq } => {
                body.error.expected_seq = Some(expected_seq);
                body.expected_seq = Some(expected_seq);
            }
            _ => {}
        }
        (status, Json(body)).into_response()
    }
}

/// The error body of [`ApiError::BadRows`]: the usual error object plus the rows.
#[derive(serde::Serialize)]
struct BadRowsBody {
    #[serde(flatten)]
    body: ErrorBody,
    rows: Vec<crate::import::RowError>,
    /// Every error found; `rows` lists at most [`crate::import::MAX_REPORTED`].
    error_count: usize,
    truncated: bool,
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(format!("blocking task failed: {e}"))
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::BadRequest {
            field: None,
            message: e.body_text(),
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        ApiError::BadRequest {
            field: None,
            message: e.body_text(),
        }
    }
}
