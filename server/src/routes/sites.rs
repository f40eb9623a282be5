//! Sites (admin): `GET /v1/sites`, `PUT /v1/sites` (several), `PUT /v1/sites/{code}` (one).
//!
//! A site's code is what devices are enrolled with. Deactivating a site (`active:false`) keeps its data; new
//! ASNs and pick lists for it are refused.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::input::Params;
use super::{blocking, input, JsonBody};
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Site, Store};

/// `{"sites": [...]}`, in and out.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sites {
    sites: Vec<Site>,
}

/// `PUT /v1/sites/{code}` body; `code`, if given, must equal the path's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SiteBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

/// The largest `PUT /v1/sites` batch.
const MAX_SITES: usize = 1000;

pub(crate) async fn list(
    _admin: AdminAuth,
    State(state): State<AppState>,
    q: Params,
) -> Result<Json<Sites>, ApiError> {
    q.finish()?;
    let store = state.store.clone();
    let sites = blocking(move || Ok(store.sites()?)).await?;
    Ok(Json(Sites { sites }))
}

pub(crate) async fn put_many(
    _admin: AdminAuth,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Sites>,
) -> Result<Json<Sites>, ApiError> {
    if body.sites.len() > MAX_SITES {
        return Err(ApiError::bad_field(
            "sites",
            format!("at most {MAX_SITES} at a time"),
        ));
    }
    for (i, site) in body.sites.iter().enumerate() {
        check(&format!("sites[{i}]"), site)?;
        if body.sites[..i].iter().any(|s| s.code == site.code) {
            return Err(ApiError::bad_field(
                format!("sites[{i}].code"),
                format!("{:?} appears twice", site.code),
            ));
        }
    }
    let store = state.store.clone();
    let sites = blocking(move || {
        for site in &body.sites {
            store.put_site(site)?;
        }
        Ok(store.sites()?)
    })
    .await?;
    Ok(Json(Sites { sites }))
}

pub(crate) async fn put_one(
    _admin: AdminAuth,
    State(state): State<AppState>,
    code: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<SiteBody>,
) -> Result<Json<Site>, ApiError> {
    let Path(code) = code?;
    let code = input::name("code", &code)?;
    input::same_id("code", &code, body.code.as_deref())?;
    let site = Site {
        code,
        name: body.name,
        active: body.active,
    };
    check("", &site)?;
    let store = state.store.clone();
    blocking(move || {
        store.put_site(&site)?;
        Ok(Json(site))
    })
    .await
}

fn check(prefix: &str, site: &Site) -> Result<(), ApiError> {
    let field = |f: &str| {
        if prefix.is_empty() {
            f.to_string()
        } else {
            format!("{prefix}.{f}")
        }
    };
    input::name(&field("code"), &site.code)?;
    input::text(&field("name"), &site.name, 200)
}

/// Refuses new documents for a site the office deactivated; an unregistered site is fine (devices may be
/// enrolled at any valid site code).
pub(crate) fn check_active(store: &dyn Store, site: &str) -> Result<(), ApiError> {
    match store.sites()?.into_iter().find(|s| s.code == site) {
        Some(s) if !s.active => Err(ApiError::Refused(format!(
            "site {site:?} is deactivated; reactivate it with PUT /v1/sites/{site} first"
        ))),
        _ => Ok(()),
    }
}
