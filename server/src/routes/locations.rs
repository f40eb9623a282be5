//! Locations of a site (admin): list, create/update (`active:false` deactivates), and import: CSV
//! `code,gln,zone[,active]` or a JSON array of locations as `GET` lists them (`{"code","gln","zone","active"}`),
//! every row checked and every error reported as for items (see [`super::import`]) before one `put_locations`
//! transaction.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use dockhand_protocol::sync::Location;
use serde::{Deserialize, Serialize};

use super::import::{element, json_elements, ImportBody, ImportOptions, ImportResult};
use super::input::{self, Csv, Params};
use super::items::place;
use super::{blocking, JsonBody};
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::import::{At, BadRows};
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
    options: ImportOptions,
    body: ImportBody,
) -> Result<Json<ImportResult>, ApiError> {
    let Path(site) = site?;
    let site = input::name("site", &site)?;
    let locations = match body {
        ImportBody::Csv(text) => parse_locations(&text)?,
        ImportBody::Json(bytes) => locations_from_json(&bytes)?,
    };
    let n = locations.len();
    if !options.dry_run {
        let store = state.store.clone();
        let at = site.clone();
        blocking(move || Ok(store.put_locations(&at, &locations)?)).await?;
        tracing::info!(site = %site, imported = n, "locations imported");
    }
    Ok(Json(ImportResult::new(options, n)))
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

/// Checks every row of a location CSV; any error refuses the whole file.
pub(super) fn parse_locations(text: &str) -> Result<Vec<Location>, ApiError> {
    let mut bad = BadRows::default();
    let csv = Csv::parse(text, &["code", "gln", "zone"], &["active"])?;
    let mut out = Unique::default();
    for r in &csv.rows {
        if !csv.fits(r, &mut bad) {
            continue;
        }
        let at = r.at();
        let cell = |c: &str| match csv.cell(r, c) {
            "" => None,
            v => Some(v.to_string()),
        };
        let location = check_location(
            &mut bad,
            at,
            Location {
                code: csv.cell(r, "code").to_string(),
                gln: cell("gln"),
                zone: cell("zone"),
                active: true,
            },
        );
        let active = input::csv_bool("active", csv.cell(r, "active"), true);
        if let (Some(mut location), Some(active)) = (location, bad.check(at, "active", active)) {
            location.active = active;
            out.add(&mut bad, at, location);
        }
    }
    bad.into_result()?;
    Ok(out.locations)
}

/// Checks every element of a JSON array of locations.
pub(super) fn locations_from_json(bytes: &[u8]) -> Result<Vec<Location>, ApiError> {
    let mut bad = BadRows::default();
    let mut out = Unique::default();
    for (i, value) in json_elements(bytes)?.into_iter().enumerate() {
        let at = At::Index(i);
        let location = element::<Location>(&mut bad, i, value);
        if let Some(location) = location.and_then(|l| check_location(&mut bad, at, l)) {
            out.add(&mut bad, at, location);
        }
    }
    bad.into_result()?;
    Ok(out.locations)
}

/// The location when every field is fine, each bad one reported.
fn check_location(bad: &mut BadRows, at: At, l: Location) -> Option<Location> {
    let code = bad.check(at, "code", input::location("code", &l.code));
    let gln = l
        .gln
        .as_deref()
        .map_or(Some(()), |g| bad.check(at, "gln", input::gln("gln", g)));
    let zone = l.zone.as_deref().map_or(Some(()), |z| {
        bad.check(at, "zone", zone_name("zone", z).map(drop))
    });
    (code.is_some() && gln.is_some() && zone.is_some()).then_some(l)
}

/// The locations of a file, each code once (a second row for it is a bad row naming the first).
#[derive(Default)]
struct Unique {
    locations: Vec<Location>,
    first: std::collections::HashMap<String, At>,
}

impl Unique {
    fn add(&mut self, bad: &mut BadRows, at: At, location: Location) {
        match self.first.get(&location.code) {
            Some(first) => bad.add(
                at,
                Some("code"),
                format!("{:?} is already on {}", location.code, place(*first)),
            ),
            None => {
                self.first.insert(location.code.clone(), at);
                self.locations.push(location);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::testing::at_lines;

    /// `(line or index, field)` of each error a case expects.
    type Errors<'a> = &'a [(usize, Option<&'a str>)];

    /// `(body, locations imported or every (line, column) reported)`.
    #[test]
    fn import_table() {
        let cases: &[(&str, Result<usize, Errors<'_>>)] = &[
            ("code,gln,zone\nA-01,,Z1\nA-02,0614141000005,\n", Ok(2)),
            ("zone,code,gln,active\nZ1,A-01,,no\n", Ok(1)),
            (
                "code,gln,zone\nA-01,0614141000000,Z1\n",
                Err(&[(2, Some("gln"))]),
            ),
            ("code,gln,zone\nA-01,,Z1\n,,Z1\n", Err(&[(3, Some("code"))])),
            ("code,gln,zone\nA-01,,Z 1\n", Err(&[(2, Some("zone"))])),
            ("code,gln,zone\nA-01,,\nA-01,,\n", Err(&[(3, Some("code"))])),
            ("code,gln,zone,colour\n", Err(&[(1, Some("colour"))])),
            (
                "code,gln,zone,active\n,1,Z 1,maybe\nB,,\n\"C\nD\",,Z1,1\nA-01,,,\n",
                Err(&[
                    (2, Some("code")),
                    (2, Some("gln")),
                    (2, Some("zone")),
                    (2, Some("active")),
                    (3, None),
                    (4, Some("code")),
                ]),
            ),
        ];
        for (text, want) in cases {
            match (parse_locations(text), want) {
                (Ok(l), Ok(n)) => assert_eq!(l.len(), *n, "{text:?}"),
                (Err(ApiError::BadRows(bad)), Err(w)) => {
                    let got: Vec<(At, Option<String>)> =
                        bad.rows.into_iter().map(|r| (r.at, r.field)).collect();
                    assert_eq!(got, at_lines(w), "{text:?}");
                }
                (got, _) => panic!("{text:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn json_table() {
        let cases: &[(&str, Result<usize, Errors<'_>>)] = &[
            (
                r#"[{"code":"A-01","zone":"Z1"},{"code":"A-02","gln":"0614141000005","active":false}]"#,
                Ok(2),
            ),
            (
                r#"[{"code":"A,1"},{"zone":"Z1"},{"code":"A-01","gln":"0614141000000","zone":"Z 1"},{"code":"B"},{"code":"B"}]"#,
                Err(&[
                    (0, Some("code")),
                    (1, Some("code")),
                    (2, Some("gln")),
                    (2, Some("zone")),
                    (4, Some("code")),
                ]),
            ),
        ];
        for (body, want) in cases {
            match (locations_from_json(body.as_bytes()), want) {
                (Ok(l), Ok(n)) => assert_eq!(l.len(), *n, "{body}"),
                (Err(ApiError::BadRows(bad)), Err(w)) => {
                    let got: Vec<(At, Option<String>)> =
                        bad.rows.into_iter().map(|r| (r.at, r.field)).collect();
                    let w: Vec<(At, Option<String>)> = w
                        .iter()
                        .map(|(i, f)| (At::Index(*i), f.map(str::to_string)))
                        .collect();
                    assert_eq!(got, w, "{body}");
                }
                (got, _) => panic!("{body}: {got:?}"),
            }
        }
    }
}
