//! Pick lists (admin): create, list, get, assign (to a device or a zone), cancel.
//!
//! A list is created once (409 if the id exists); assigning replaces the previous assignment; the store refuses
//! (409) changing a list that is no longer open. A device it is assigned to must be enrolled at the list's site and
//! not revoked.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use dockhand_protocol::sync::{DocStatus, PickList};
use serde::{Deserialize, Serialize};

use super::asns::MAX_LINES;
use super::input::{self, Params};
use super::locations::zone_name;
use super::{blocking, sites, JsonBody};
use crate::auth::AdminAuth;
use crate::devices::DeviceRegistry;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub(crate) struct PickLists {
    pick_lists: Vec<PickList>,
}

/// `POST /v1/pick-lists/{id}/assign` body: exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Assign {
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    zone: Option<String>,
}

pub(crate) async fn create(
    _admin: AdminAuth,
    State(state): State<AppState>,
    JsonBody(mut list): JsonBody<PickList>,
) -> Result<(StatusCode, Json<PickList>), ApiError> {
    check(&mut list)?;
    let (store, devices) = (state.store.clone(), state.devices.clone());
    blocking(move || {
        if let Some(device) = &list.device {
            check_device(devices.as_ref(), device, &list.site)?;
        }
        sites::check_active(store.as_ref(), &list.site)?;
        if store.pick_list(&list.id)?.is_some() {
            return Err(ApiError::Refused(format!(
                "pick list {:?} already exists",
                list.id
            )));
        }
        store.put_pick_list(&list)?;
        tracing::info!(pick_list = %list.id, site = %list.site, "pick list created");
        Ok((StatusCode::CREATED, Json(list)))
    })
    .await
}

pub(crate) async fn list(
    _admin: AdminAuth,
    State(state): State<AppState>,
    mut q: Params,
) -> Result<Json<PickLists>, ApiError> {
    let site = q
        .name("site")?
        .ok_or_else(|| ApiError::bad_field("site", "required"))?;
    let status = q.choice::<DocStatus>("status", "open, closed, cancelled")?;
    q.finish()?;
    let store = state.store.clone();
    let pick_lists = blocking(move || Ok(store.pick_lists(&site, status)?)).await?;
    Ok(Json(PickLists { pick_lists }))
}

pub(crate) async fn get(
    _admin: AdminAuth,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<PickList>, ApiError> {
    let id = path_id(id)?;
    let store = state.store.clone();
    let lookup = id.clone();
    let list = blocking(move || Ok(store.pick_list(&lookup)?)).await?;
    list.map(Json).ok_or_else(|| not_found(&id))
}

pub(crate) async fn assign(
    _admin: AdminAuth,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<Assign>,
) -> Result<Json<PickList>, ApiError> {
    let id = path_id(id)?;
    match (&body.device, &body.zone) {
        (Some(d), None) => {
            input::name("device", d)?;
        }
        (None, Some(z)) => {
            zone_name("zone", z)?;
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_field(
                "zone",
                "give a device or a zone, not both",
            ))
        }
        (None, None) => return Err(ApiError::bad_field("device", "give a device or a zone")),
    }
    let (store, devices) = (state.store.clone(), state.devices.clone());
    blocking(move || {
        let mut list = store.pick_list(&id)?.ok_or_else(|| not_found(&id))?;
        if let Some(device) = &body.device {
            check_device(devices.as_ref(), device, &list.site)?;
        }
        list.device = body.device;
        list.zone = body.zone;
        store.put_pick_list(&list)?;
        tracing::info!(pick_list = %list.id, device = ?list.device, zone = ?list.zone, "pick list assigned");
        Ok(Json(list))
    })
    .await
}

pub(crate) async fn cancel(
    _admin: AdminAuth,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<PickList>, ApiError> {
    let id = path_id(id)?;
    let store = state.store.clone();
    let lookup = id.clone();
    let list = blocking(move || Ok(store.set_pick_list_status(&lookup, DocStatus::Cancelled)?))
        .await?
        .ok_or_else(|| not_found(&id))?;
    tracing::info!(pick_list = %list.id, "pick list cancelled");
    Ok(Json(list))
}

fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = id?;
    input::name("id", &id)
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no pick list {id:?}"))
}

/// The device exists (400 naming `device` otherwise), works at `site` and is not revoked (409 otherwise).
fn check_device(devices: &dyn DeviceRegistry, device: &str, site: &str) -> Result<(), ApiError> {
    let Some(record) = devices.get(device)? else {
        return Err(ApiError::bad_field(
            "device",
            format!("no enrolled device {device:?}"),
        ));
    };
    if record.site != site {
        return Err(ApiError::Refused(format!(
            "device {device:?} works at site {:?}, the pick list is for {site:?}",
            record.site
        )));
    }
    if record.revoked_at.is_some() {
        return Err(ApiError::Refused(format!("device {device:?} is revoked")));
    }
    Ok(())
}

/// Checks a new pick list and normalises its GTINs.
pub(super) fn check(list: &mut PickList) -> Result<(), ApiError> {
    input::name("id", &list.id)?;
    input::name("site", &list.site)?;
    if let Some(d) = &list.device {
        input::name("device", d)?;
    }
    if let Some(z) = &list.zone {
        zone_name("zone", z)?;
    }
    if list.status != DocStatus::Open {
        return Err(ApiError::bad_field("status", "a new pick list is open"));
    }
    if list.lines.is_empty() {
        return Err(ApiError::bad_field(
            "lines",
            "a pick list has at least one line",
        ));
    }
    if list.lines.len() > MAX_LINES {
        return Err(ApiError::bad_field(
            "lines",
            format!("{} lines; at most {MAX_LINES}", list.lines.len()),
        ));
    }
    let mut numbers = std::collections::HashSet::new();
    for (i, line) in list.lines.iter_mut().enumerate() {
        let field = format!("lines[{i}]");
        if !numbers.insert(line.line) {
            return Err(ApiError::bad_field(
                format!("{field}.line"),
                format!("line number {} is used twice", line.line),
            ));
        }
        input::location(&format!("{field}.location"), &line.location)?;
        line.gtin = input::gtin(&format!("{field}.gtin"), &line.gtin)?;
        if let Some(lot) = &line.lot {
            input::lot(&format!("{field}.lot"), lot)?;
        }
        input::qty(&format!("{field}.qty"), line.qty)?;
    }
    Ok(())
}
