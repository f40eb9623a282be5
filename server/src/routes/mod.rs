//! The HTTP API: one router built in [`app`], one file per resource.

mod devices;
mod health;
mod stock;
mod sync;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// The whole API over `state`; no socket involved, so tests drive it with `tower::ServiceExt::oneshot`.
pub fn app(state: AppState) -> Router {
    let limit = state.body_limit;
    Router::new()
        .route("/v1/health", get(health::health))
        .route("/v1/sync/push", post(sync::push))
        .route("/v1/stock", get(stock::stock))
        .route("/v1/devices/{id}/high-water", get(devices::high_water))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A JSON body extractor whose every rejection is an [`ApiError`] naming the offending field.
///
/// Unlike `axum::Json` it does not insist on a `Content-Type` (agents are ours; a missing header is no reason to
/// refuse movements) and it reports the path of the bad value (`movements[0].qty`).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge {
                    limit: state.body_limit,
                }
            } else {
                ApiError::BadRequest {
                    field: None,
                    message: r.body_text(),
                }
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Deserializes `bytes`, naming the path of the first bad value.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest {
            field: None,
            message: "empty body: expected a JSON object".into(),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = field_of(&path, &inner.to_string());
        let message = match &field {
            Some(f) => format!("{f}: {inner}"),
            None => format!("invalid JSON: {inner}"),
        };
        ApiError::BadRequest { field, message }
    })?;
    de.end().map_err(|e| ApiError::BadRequest {
        field: None,
        message: format!("invalid JSON: {e}"),
    })?;
    Ok(value)
}

/// The field a serde error is about: the path, extended by the name in "missing field `x`" (for an unknown
/// field the path already ends with its name).
fn field_of(path: &str, message: &str) -> Option<String> {
    let named = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        (".", Some(name)) => Some(name.to_string()),
        (".", None) => None,
        (path, Some(name)) => Some(format!("{path}.{name}")),
        (path, None) => Some(path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_of_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            (".", "expected value at line 1 column 1", None),
            (
                ".",
                "missing field `device_id` at line 1",
                Some("device_id"),
            ),
            (
                "movements[0]",
                "missing field `gtin` at line 1",
                Some("movements[0].gtin"),
            ),
            (
                "movements[0].colour",
                "unknown field `colour`, expected",
                Some("movements[0].colour"),
            ),
            (
                "movements[0].qty",
                "invalid type: string \"x\", expected u64",
                Some("movements[0].qty"),
            ),
        ];
        for (path, message, want) in cases {
            assert_eq!(
                field_of(path, message).as_deref(),
                *want,
                "{path} {message}"
            );
        }
    }
}
