//! Locations of a site (admin): list, create/update (`active:false` deactivates), and CSV import
//! (`code,gln,zone[,active]`, checked entirely before one `put_locations` transaction; errors name row and column
//! as for items).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use dockhand_protocol::sync::Location;
use serde::{Deserialize, Serialize};

use super::input::{self, csv_bool, csv_error, in_cell, Csv, CsvBody, Params};
use super::items::ImportResult;
use super::{blocking, JsonBody};
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::state::AppState;

/// `PUT /v1/sites/{site}/locations/{code}` body; `code`, if given, must equal the path's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LocationBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    gln: Option<String>,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize)]
pub(crate) struct Locations {
    site: String,
    locations: Vec<Location>,
}

pub(crate) async fn list(
    _admin: AdminAuth,
    State(state): State<AppState>,
    site: Result<Path<String>, PathRejection>,
    q: Params,
) -> Result<Json<Locations>, ApiError> {
    q.finish()?;
    let Path(site) = site?;
    let site = input::name("site", &site)?;
    let store = state.store.clone();
    let lookup = site.clone();
    let locations = blocking(move || Ok(store.locations(&lookup)?)).await?;
    Ok(Json(Locations { site, locations }))
}

pub(crate) async fn put(
    _admin: AdminAuth,
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    JsonBody(body): JsonBody<LocationBody>,
) -> Result<(StatusCode, Json<Location>), ApiError> {
    let Path((site, code)) = path?;
    let site = input::name("site", &site)?;
    let code = input::location("code", &code)?;
    input::same_id("code", &code, body.code.as_deref())?;
    let location = Location {
        code,
        gln: body.gln,
        zone: body.zone,
        active: body.active,
    };
    check(&location)?;
    let store = state.store.clone();
    blocking(move || {
        let existed = store
            .locations(&site)?
            .iter()
            .any(|l| l.code == location.code);
        store.put_locations(&site, std::slice::from_ref(&location))?;
        let status = if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok((status, Json(location)))
    })
    .await
}

pub(crate) async fn import(
    _admin: AdminAuth,
    State(state): State<AppState>,
    site: Result<Path<String>, PathRejection>,
    CsvBody(text): CsvBody,
) -> Result<Json<ImportResult>, ApiError> {
    let Path(site) = site?;
    let site = input::name("site", &site)?;
    let locations = parse_locations(&text)?;
    let imported = locations.len();
    let store = state.store.clone();
    let at = site.clone();
    blocking(move || Ok(store.put_locations(&at, &locations)?)).await?;
    tracing::info!(site = %site, imported, "locations imported");
    Ok(Json(ImportResult { imported }))
}

fn check(l: &Location) -> Result<(), ApiError> {
    if let Some(gln) = &l.gln {
        input::gln("gln", gln)?;
    }
    if let Some(zone) = &l.zone {
        zone_name("zone", zone)?;
    }
    Ok(())
}

/// A zone: the same rules as site codes.
pub(crate) fn zone_name(field: &str, value: &str) -> Result<String, ApiError> {
    input::name(field, value)
}

pub(super) fn parse_locations(text: &str) -> Result<Vec<Location>, ApiError> {
    let csv = Csv::parse(text, &["code", "gln", "zone"], &["active"])?;
    let mut out: Vec<Location> = Vec::with_capacity(csv.rows.len());
    let mut rows_by_code = std::collections::HashMap::new();
    for r in &csv.rows {
        let row = r.row;
        let cell = |c: &str| csv.cell(r, c);
        let code = input::location("code", cell("code")).map_err(|e| in_cell(row, "code", e))?;
        if let Some(first) = rows_by_code.insert(code.clone(), row) {
            return Err(csv_error(
                row,
                "code",
                format!("{code:?} is already on row {first}"),
            ));
        }
        let gln = match cell("gln") {
            "" => None,
            g => {
                input::gln("gln", g).map_err(|e| in_cell(row, "gln", e))?;
                Some(g.to_string())
            }
        };
        let zone = match cell("zone") {
            "" => None,
            z => Some(zone_name("zone", z).map_err(|e| in_cell(row, "zone", e))?),
        };
        out.push(Location {
            code,
            gln,
            zone,
            active: csv_bool(row, "active", cell("active"), true)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_table() {
        let cases: &[(&str, Result<usize, &str>)] = &[
            ("code,gln,zone\nA-01,,Z1\nA-02,0614141000005,\n", Ok(2)),
            ("zone,code,gln,active\nZ1,A-01,,no\n", Ok(1)),
            (
                "code,gln,zone\nA-01,0614141000000,Z1\n",
                Err("row 2, column gln: "),
            ),
            (
                "code,gln,zone\nA-01,,Z1\n,,Z1\n",
                Err("row 3, column code: "),
            ),
            ("code,gln,zone\nA-01,,Z 1\n", Err("row 2, column zone: ")),
            (
                "code,gln,zone\nA-01,,\nA-01,,\n",
                Err("row 3, column code: "),
            ),
            ("code,gln,zone,colour\n", Err("row 1, column colour: ")),
        ];
        for (text, want) in cases {
            match (parse_locations(text), want) {
                (Ok(l), Ok(n)) => assert_eq!(l.len(), *n, "{text:?}"),
                (Err(ApiError::BadRequest { message, .. }), Err(w)) => {
                    assert!(message.starts_with(w), "{text:?}: {message}")
                }
                (got, _) => panic!("{text:?}: {got:?}"),
            }
        }
    }
}
