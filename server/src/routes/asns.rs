//! Expected receipts (admin): create, list, get, close, cancel.
//!
//! An ASN is created once (`POST`, 409 if the id exists) and then only closed or cancelled; the store refuses
//! (409) changing one that is no longer open. GTINs are normalised to GTIN-14, SSCCs must carry a correct check
//! digit, quantities are 1..=1e9.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use dockhand_protocol::sync::{Asn, AsnLine, DocStatus};
use serde::Serialize;

use super::input::{self, Params};
use super::{blocking, sites, JsonBody};
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::state::AppState;

/// Most lines (loose plus on pallets) one document may carry.
pub(crate) const MAX_LINES: usize = 10_000;

#[derive(Debug, Serialize)]
pub(crate) struct Asns {
    asns: Vec<Asn>,
}

pub(crate) async fn create(
    _admin: AdminAuth,
    State(state): State<AppState>,
    JsonBody(mut asn): JsonBody<Asn>,
) -> Result<(StatusCode, Json<Asn>), ApiError> {
    check(&mut asn)?;
    let store = state.store.clone();
    blocking(move || {
        sites::check_active(store.as_ref(), &asn.site)?;
        if store.asn(&asn.id)?.is_some() {
            return Err(ApiError::Refused(format!(
                "ASN {:?} already exists",
                asn.id
            )));
        }
        store.put_asn(&asn)?;
        tracing::info!(asn = %asn.id, site = %asn.site, "ASN created");
        Ok((StatusCode::CREATED, Json(asn)))
    })
    .await
}

pub(crate) async fn list(
    _admin: AdminAuth,
    State(state): State<AppState>,
    mut q: Params,
) -> Result<Json<Asns>, ApiError> {
    let site = q
        .name("site")?
        .ok_or_else(|| ApiError::bad_field("site", "required"))?;
    let status = q.choice::<DocStatus>("status", "open, closed, cancelled")?;
    q.finish()?;
    let store = state.store.clone();
    let asns = blocking(move || Ok(store.asns(&site, status)?)).await?;
    Ok(Json(Asns { asns }))
}

pub(crate) async fn get(
    _admin: AdminAuth,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Asn>, ApiError> {
    let id = path_id(id)?;
    let store = state.store.clone();
    let lookup = id.clone();
    let asn = blocking(move || Ok(store.asn(&lookup)?)).await?;
    asn.map(Json).ok_or_else(|| not_found(&id))
}

pub(crate) async fn close(
    admin: AdminAuth,
    state: State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Asn>, ApiError> {
    set_status(admin, state, id, DocStatus::Closed).await
}

pub(crate) async fn cancel(
    admin: AdminAuth,
    state: State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Asn>, ApiError> {
    set_status(admin, state, id, DocStatus::Cancelled).await
}

async fn set_status(
    _admin: AdminAuth,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    status: DocStatus,
) -> Result<Json<Asn>, ApiError> {
    let id = path_id(id)?;
    let store = state.store.clone();
    let lookup = id.clone();
    let asn = blocking(move || Ok(store.set_asn_status(&lookup, status)?)).await?;
    let asn = asn.ok_or_else(|| not_found(&id))?;
    tracing::info!(asn = %asn.id, status = ?asn.status, "ASN status changed");
    Ok(Json(asn))
}

fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = id?;
    input::name("id", &id)
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no ASN {id:?}"))
}

/// Checks a new ASN and normalises its GTINs.
pub(super) fn check(asn: &mut Asn) -> Result<(), ApiError> {
    input::name("id", &asn.id)?;
    input::name("site", &asn.site)?;
    if let Some(s) = &asn.supplier {
        input::required_text("supplier", s, 200)?;
    }
    if let Some(d) = &asn.expected_on {
        input::date("expected_on", d)?;
    }
    if asn.status != DocStatus::Open {
        return Err(ApiError::bad_field("status", "a new ASN is open"));
    }
    if asn.lines.is_empty() && asn.pallets.is_empty() {
        return Err(ApiError::bad_field(
            "lines",
            "an ASN announces at least one line or pallet",
        ));
    }
    let total: usize = asn.lines.len() + asn.pallets.iter().map(|p| p.lines.len()).sum::<usize>();
    if total > MAX_LINES {
        return Err(ApiError::bad_field(
            "lines",
            format!("{total} lines; at most {MAX_LINES}"),
        ));
    }
    check_lines("lines", &mut asn.lines)?;
    let mut ssccs = std::collections::HashSet::new();
    for (i, pallet) in asn.pallets.iter_mut().enumerate() {
        let field = format!("pallets[{i}]");
        input::sscc(&format!("{field}.sscc"), &pallet.sscc)?;
        if !ssccs.insert(pallet.sscc.clone()) {
            return Err(ApiError::bad_field(
                format!("{field}.sscc"),
                format!("{} is announced twice", pallet.sscc),
            ));
        }
        if pallet.lines.is_empty() {
            return Err(ApiError::bad_field(
                format!("{field}.lines"),
                "a pallet carries at least one line",
            ));
        }
        check_lines(&format!("{field}.lines"), &mut pallet.lines)?;
    }
    Ok(())
}

fn check_lines(field: &str, lines: &mut [AsnLine]) -> Result<(), ApiError> {
    for (i, line) in lines.iter_mut().enumerate() {
        let field = format!("{field}[{i}]");
        line.gtin = input::gtin(&format!("{field}.gtin"), &line.gtin)?;
        if let Some(lot) = &line.lot {
            input::lot(&format!("{field}.lot"), lot)?;
        }
        input::qty(&format!("{field}.qty"), line.qty)?;
    }
    Ok(())
}
