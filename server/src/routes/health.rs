//! `GET /v1/health`: liveness, without credentials.

use axum::Json;
use serde_json::{json, Value};

/// Always `{"status":"ok"}` while the server answers.
pub(crate) async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
