//! `GET /v1/sync/stock[?location=L]` (device): the server's stock for the device's enrolled site, for the picker's
//! offline stock lookup on the device.
//!
//! The answer carries the device's own high-water mark (`acked_through`) so the agent can add exactly the movements
//! the snapshot does not hold (`seq > acked_through`). Both figures come from the [`Store`](crate::store::Store)
//! trait (`high_water`, then `stock`), so every backend serves the route without a method of its own.

use axum::extract::State;
use axum::Json;
use dockhand_protocol::sync::{SnapshotRow, StockSnapshot};
use time::OffsetDateTime;

use super::blocking;
use super::input::Params;
use super::sync::UserAgent;
use crate::auth::DeviceAuth;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::StockFilter;

/// Non-zero stock rows of the device's site (optionally one location) and the device's high-water mark.
/// `site`, when given, must be the device's own: a device never reads another site's stock (403).
pub(crate) async fn stock(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    UserAgent(agent): UserAgent,
    mut q: Params,
) -> Result<Json<StockSnapshot>, ApiError> {
    if let Some(site) = q.name("site")? {
        if site != device.site {
            return Err(ApiError::Forbidden(format!(
                "device {:?} is enrolled at site {:?}, not {site:?}",
                device.id, device.site
            )));
        }
    }
    let location = q.location("location")?;
    q.finish()?;
    let (store, devices) = (state.store.clone(), state.devices.clone());
    let (id, site) = (device.id.clone(), device.site.clone());
    let snapshot = blocking(move || {
        devices.touch_agent(&id, OffsetDateTime::now_utc(), None, agent.as_deref())?;
        // Two reads, not one transaction: only this device moves its own high-water mark, and the agent asks for a
        // snapshot only between its push rounds (never while one is in flight), so no movement of this device can
        // be applied between the reads. Other devices' movements may land in between; they are not the device's to
        // add, so the snapshot is consistent for its purpose.
        let acked_through = store.high_water(&id)?;
        let rows = store.stock(&StockFilter {
            site: Some(site.clone()),
            location,
            gtin: None,
            lot: None,
        })?;
        Ok(StockSnapshot {
            site,
            acked_through,
            stock: rows
                .into_iter()
                .map(|r| SnapshotRow {
                    location: r.location,
                    gtin: r.gtin,
                    lot: r.lot,
                    qty: r.qty,
                })
                .collect(),
        })
    })
    .await?;
    tracing::debug!(device = %device.id, rows = snapshot.stock.len(), acked_through = snapshot.acked_through,
        "stock snapshot served");
    Ok(Json(snapshot))
}
