//! `GET /v1/stock` (admin): authoritative stock rows, now or `as_of` a past device time.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use super::blocking;
use super::input::Params;
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{StockFilter, StockRow};

#[derive(Debug, Serialize)]
pub(crate) struct StockResponse {
    stock: Vec<StockRow>,
}

/// Non-zero stock rows matching the filters, sorted by site, location, gtin, lot. Every filter is optional;
/// unknown parameters are refused so a typo is not a silent "all".
pub(crate) async fn stock(
    _admin: AdminAuth,
    State(state): State<AppState>,
    mut q: Params,
) -> Result<Json<StockResponse>, ApiError> {
    let filter = StockFilter {
        site: q.name("site")?,
        location: q.location("location")?,
        gtin: q.gtin("gtin")?,
        lot: q.short_text("lot", 20)?,
    };
    let as_of = q.time("as_of")?;
    q.finish()?;
    let store = state.store.clone();
    let stock = blocking(move || {
        Ok(match as_of {
            Some(at) => store.stock_as_of(&filter, at)?,
            None => store.stock(&filter)?,
        })
    })
    .await?;
    Ok(Json(StockResponse { stock }))
}
