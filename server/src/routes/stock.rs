//! `GET /v1/stock` (admin): authoritative stock rows.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{StockFilter, StockRow};

/// Query string: every filter optional; unknown parameters are refused so a typo is not a silent "all".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StockParams {
    site: Option<String>,
    location: Option<String>,
    gtin: Option<String>,
    lot: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct StockResponse {
    stock: Vec<StockRow>,
}

/// Non-zero stock rows matching the filters, sorted by site, location, gtin, lot.
pub(crate) async fn stock(
    _admin: AdminAuth,
    State(state): State<AppState>,
    params: Result<Query<StockParams>, QueryRejection>,
) -> Result<Json<StockResponse>, ApiError> {
    let Query(p) = params?;
    let filter = StockFilter {
        site: p.site,
        location: p.location,
        gtin: p.gtin,
        lot: p.lot,
    };
    let store = state.store.clone();
    let stock = tokio::task::spawn_blocking(move || store.stock(&filter)).await??;
    Ok(Json(StockResponse { stock }))
}
