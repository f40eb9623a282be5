//! Items (admin): list, get, create/update (`active:false` deactivates), and import.
//!
//! GTINs are accepted as GTIN-8, -12, -13 or -14 with a correct check digit and stored as GTIN-14.
//!
//! Import (see [`super::import`]): CSV with the header
//! `gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked[,active]` (any order), or a JSON array of
//! `PUT /v1/items/{gtin}` bodies that name their `gtin`. Every row is checked and every bad cell reported (CSV:
//! by line, the header is line 1, and column); only a fully valid file is written, in one `put_items`
//! transaction.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use dockhand_protocol::sync::Item;
use serde::{Deserialize, Serialize};

use super::import::{element, json_elements, ImportBody, ImportOptions, ImportResult};
use super::input::{self, Csv, Params};
use super::{blocking, JsonBody};
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::import::{At, BadRows};
use crate::state::AppState;

/// `PUT /v1/items/{gtin}` body; `gtin`, if given, must be the path's item.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ItemBody {
    #[serde(default)]
    gtin: Option<String>,
    description: String,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    lot_tracked: bool,
    #[serde(default)]
    expiry_tracked: bool,
    #[serde(default)]
    serial_tracked: bool,
    #[serde(default = "yes")]
    active: bool,
    /// Minor units (cents) per unit; see [`Item::unit_cost`].
    #[serde(default)]
    unit_cost: Option<u64>,
}

/// Largest accepted unit cost in minor units (10 billion in major units): a value of stock (units × cost) stays
/// far inside `i64`.
const MAX_UNIT_COST: u64 = 1_000_000_000_000;

/// Checks a unit cost (minor units).
fn unit_cost(cost: Option<u64>) -> Result<Option<u64>, ApiError> {
    match cost {
        Some(c) if c > MAX_UNIT_COST => Err(ApiError::bad_field(
            "unit_cost",
            format!("must be 0..={MAX_UNIT_COST} (minor units, e.g. cents)"),
        )),
        c => Ok(c),
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize)]
pub(crate) struct ItemPage {
    items: Vec<Item>,
    /// Pass as `after` for the next page; null on the last.
    next: Option<String>,
}

pub(crate) async fn list(
    _admin: AdminAuth,
    State(state): State<AppState>,
    mut q: Params,
) -> Result<Json<ItemPage>, ApiError> {
    let after = q.gtin("after")?;
    let limit = q.limit("limit", 100, 1000)?;
    q.finish()?;
    let store = state.store.clone();
    // One more than asked tells whether a next page exists.
    let mut items = blocking(move || Ok(store.items(after.as_deref(), limit + 1)?)).await?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|i| i.gtin.clone())
    } else {
        None
    };
    Ok(Json(ItemPage { items, next }))
}

pub(crate) async fn get(
    _admin: AdminAuth,
    State(state): State<AppState>,
    gtin: Result<Path<String>, PathRejection>,
) -> Result<Json<Item>, ApiError> {
    let Path(gtin) = gtin?;
    let gtin = input::gtin("gtin", &gtin)?;
    let store = state.store.clone();
    let lookup = gtin.clone();
    match blocking(move || Ok(store.item(&lookup)?)).await? {
        Some(item) => Ok(Json(item)),
        None => Err(ApiError::NotFound(format!("no item {gtin}"))),
    }
}

pub(crate) async fn put(
    _admin: AdminAuth,
    State(state): State<AppState>,
    gtin: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<ItemBody>,
) -> Result<(StatusCode, Json<Item>), ApiError> {
    let Path(gtin) = gtin?;
    let gtin = input::gtin("gtin", &gtin)?;
    if let Some(b) = &body.gtin {
        input::same_id("gtin", &gtin, Some(&input::gtin("gtin", b)?))?;
    }
    input::required_text("description", &body.description, 200)?;
    let unit = match body.unit {
        Some(u) => unit("unit", &u)?,
        None => "EA".to_string(),
    };
    let unit_cost = unit_cost(body.unit_cost)?;
    let item = Item {
        gtin,
        description: body.description,
        unit,
        lot_tracked: body.lot_tracked,
        expiry_tracked: body.expiry_tracked,
        serial_tracked: body.serial_tracked,
        active: body.active,
        unit_cost,
    };
    let store = state.store.clone();
    blocking(move || {
        let existed = store.item(&item.gtin)?.is_some();
        store.put_items(std::slice::from_ref(&item))?;
        let status = if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok((status, Json(item)))
    })
    .await
}

pub(crate) async fn import(
    _admin: AdminAuth,
    State(state): State<AppState>,
    options: ImportOptions,
    body: ImportBody,
) -> Result<Json<ImportResult>, ApiError> {
    let items = match body {
        ImportBody::Csv(text) => parse_items(&text)?,
        ImportBody::Json(bytes) => items_from_json(&bytes)?,
    };
    let n = items.len();
    if !options.dry_run {
        let store = state.store.clone();
        blocking(move || Ok(store.put_items(&items)?)).await?;
        tracing::info!(imported = n, "items imported");
    }
    Ok(Json(ImportResult::new(options, n)))
}

/// Checks every row of an item CSV (see the module docs); any error refuses the whole file.
pub(super) fn parse_items(text: &str) -> Result<Vec<Item>, ApiError> {
    let mut bad = BadRows::default();
    let csv = Csv::parse(
        text,
        &[
            "gtin",
            "description",
            "unit",
            "lot_tracked",
            "expiry_tracked",
            "serial_tracked",
        ],
        &["active"],
    )?;
    let mut items = Unique::default();
    for r in &csv.rows {
        if !csv.fits(r, &mut bad) {
            continue;
        }
        let at = r.at();
        let cell = |c: &str| csv.cell(r, c);
        let unit = match cell("unit") {
            "" => None,
            u => Some(u),
        };
        let item = check_item(&mut bad, at, cell("gtin"), cell("description"), unit);
        let flag = |bad: &mut BadRows, column: &str, default: bool| {
            bad.check(at, column, input::csv_bool(column, cell(column), default))
        };
        let lot_tracked = flag(&mut bad, "lot_tracked", false);
        let expiry_tracked = flag(&mut bad, "expiry_tracked", false);
        let serial_tracked = flag(&mut bad, "serial_tracked", false);
        let active = flag(&mut bad, "active", true);
        if let (Some(mut item), Some(lot), Some(expiry), Some(serial), Some(active)) =
            (item, lot_tracked, expiry_tracked, serial_tracked, active)
        {
            item.lot_tracked = lot;
            item.expiry_tracked = expiry;
            item.serial_tracked = serial;
            item.active = active;
            items.add(&mut bad, at, item);
        }
    }
    bad.into_result()?;
    Ok(items.into_items())
}

/// Checks every element of a JSON array of items (`PUT /v1/items/{gtin}` bodies with their `gtin`).
pub(super) fn items_from_json(bytes: &[u8]) -> Result<Vec<Item>, ApiError> {
    let mut bad = BadRows::default();
    let mut items = Unique::default();
    for (i, value) in json_elements(bytes)?.into_iter().enumerate() {
        let Some(body) = element::<ItemBody>(&mut bad, i, value) else {
            continue;
        };
        let at = At::Index(i);
        let Some(gtin) = body.gtin.as_deref() else {
            bad.add(at, Some("gtin"), "required in an import");
            continue;
        };
        let Some(mut item) =
            check_item(&mut bad, at, gtin, &body.description, body.unit.as_deref())
        else {
            continue;
        };
        item.lot_tracked = body.lot_tracked;
        item.expiry_tracked = body.expiry_tracked;
        item.serial_tracked = body.serial_tracked;
        item.active = body.active;
        let Some(cost) = bad.check(at, "unit_cost", unit_cost(body.unit_cost)) else {
            continue;
        };
        item.unit_cost = cost;
        items.add(&mut bad, at, item);
    }
    bad.into_result()?;
    Ok(items.into_items())
}

/// Checks the text fields of an imported item, reporting every bad one; flags at their defaults.
fn check_item(
    bad: &mut BadRows,
    at: At,
    gtin: &str,
    description: &str,
    unit: Option<&str>,
) -> Option<Item> {
    let gtin = bad.check(at, "gtin", input::gtin("gtin", gtin));
    let description = bad
        .check(
            at,
            "description",
            input::required_text("description", description, 200),
        )
        .map(|()| description.to_string());
    let unit = match unit {
        None => Some("EA".to_string()),
        Some(u) => bad.check(at, "unit", self::unit("unit", u)),
    };
    Some(Item {
        gtin: gtin?,
        description: description?,
        unit: unit?,
        lot_tracked: false,
        expiry_tracked: false,
        serial_tracked: false,
        active: true,
        unit_cost: None,
    })
}

/// The items of a file, each GTIN once: a second row for the same item (perhaps written as EAN-13 once and
/// GTIN-14 once) is a bad row naming the first, since which of the two should win is anyone's guess.
#[derive(Default)]
struct Unique {
    items: Vec<Item>,
    first: std::collections::HashMap<String, At>,
}

impl Unique {
    fn add(&mut self, bad: &mut BadRows, at: At, item: Item) {
        match self.first.get(&item.gtin) {
            Some(first) => bad.add(
                at,
                Some("gtin"),
                format!("{} is already on {}", item.gtin, place(*first)),
            ),
            None => {
                self.first.insert(item.gtin.clone(), at);
                self.items.push(item);
            }
        }
    }

    fn into_items(self) -> Vec<Item> {
        self.items
    }
}

/// Where an earlier row is, for messages: `row 3` or `[3]`.
pub(super) fn place(at: At) -> String {
    match at {
        At::Line(l) => format!("row {l}"),
        At::Index(i) => format!("[{i}]"),
    }
}

/// A unit of measure: 1 to 16 letters or digits (`EA`, `KG`, `CS12`).
fn unit(field: &str, value: &str) -> Result<String, ApiError> {
    if (1..=16).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(value.to_string())
    } else {
        Err(ApiError::bad_field(
            field,
            format!("{value:?} is not 1 to 16 letters or digits"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::testing::{at_lines, reported};

    /// `(line or index, field)` of each error a case expects.
    type Errors<'a> = &'a [(usize, Option<&'a str>)];

    /// Rows after the header, and every `(line, column)` reported.
    #[test]
    fn csv_errors_table() {
        const HEAD: &str = "gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked\n";
        let cases: &[(&str, Errors<'_>)] = &[
            (
                "9506000134352,W,EA,1,0,0\n9506000134353,X,EA,0,0,0\n",
                &[(3, Some("gtin"))],
            ),
            ("9506000134352,,EA,1,0,0\n", &[(2, Some("description"))]),
            ("9506000134352,W,E A,1,0,0\n", &[(2, Some("unit"))]),
            ("9506000134352,W,EA,maybe,0,0\n", &[(2, Some("lot_tracked"))]),
            (
                "9506000134352,W,EA,1,0,0\n09506000134352,W,EA,1,0,0\n",
                &[(3, Some("gtin"))],
            ),
            ("9506000134352,W,EA,1,0\n", &[(2, None)]),
            // Every bad cell of every row, blank lines counted, a multi-line cell's row at its first line.
            (
                "1,,E A,x,y,z\n\n9506000134352,\"two\nlines\",EA,1,0,0\n9506000134352,W,EA,1,0,0\n5901234123457,\"ok\",EA,1,0\n",
                &[
                    (2, Some("gtin")),
                    (2, Some("description")),
                    (2, Some("unit")),
                    (2, Some("lot_tracked")),
                    (2, Some("expiry_tracked")),
                    (2, Some("serial_tracked")),
                    (4, Some("description")),
                    (7, None),
                ],
            ),
            (
                "9506000134352,W,EA,1,0,0\n\"5901234123457\",\"G\nH\",EA,0,0,0\n09506000134352,W,EA,1,0,0\n",
                &[(3, Some("description")), (5, Some("gtin"))],
            ),
        ];
        for (rows, want) in cases {
            let got = reported(parse_items(&format!("{HEAD}{rows}")));
            assert_eq!(got, at_lines(want), "{rows:?}");
        }
        let header = reported(parse_items("gtin,colour,gtin\n"));
        assert_eq!(
            header,
            at_lines(&[
                (1, Some("colour")),
                (1, Some("gtin")),
                (1, Some("description")),
                (1, Some("unit")),
                (1, Some("lot_tracked")),
                (1, Some("expiry_tracked")),
                (1, Some("serial_tracked")),
            ])
        );
        assert_eq!(
            reported(parse_items(&format!("{HEAD}\"open,W\n"))),
            at_lines(&[(2, None)])
        );
        match parse_items("") {
            Err(ApiError::BadRequest { message, .. }) => assert!(message.contains("empty CSV")),
            other => panic!("{other:?}"),
        }
        let items =
            parse_items(&format!("{HEAD}9506000134352,\"Widget, blue\",,yes,no,0\n")).unwrap();
        assert_eq!(items[0].gtin, "09506000134352");
        assert_eq!(items[0].description, "Widget, blue");
        assert_eq!(items[0].unit, "EA");
        assert!(items[0].lot_tracked && items[0].active);
    }

    #[test]
    fn json_errors_table() {
        let cases: &[(&str, Errors<'_>)] = &[
            (
                r#"[{"gtin":"9506000134352","description":"W","unit":"CS","lot_tracked":true}]"#,
                &[],
            ),
            (
                r#"[{"gtin":"9506000134353","description":"W"},{"description":"W"},{"gtin":"5901234123457","description":"","unit":"E A"},{"gtin":"5901234123457","description":"W","lot_tracked":"yes"}]"#,
                &[
                    (0, Some("gtin")),
                    (1, Some("gtin")),
                    (2, Some("description")),
                    (2, Some("unit")),
                    (3, Some("lot_tracked")),
                ],
            ),
            (
                r#"[{"gtin":"9506000134352","description":"W"},{"gtin":"09506000134352","description":"W"}]"#,
                &[(1, Some("gtin"))],
            ),
        ];
        for (body, want) in cases {
            let want: Vec<(At, Option<String>)> = want
                .iter()
                .map(|(i, f)| (At::Index(*i), f.map(str::to_string)))
                .collect();
            match items_from_json(body.as_bytes()) {
                Ok(items) => {
                    assert!(want.is_empty(), "{body}");
                    assert_eq!(items[0].gtin, "09506000134352");
                    assert_eq!((items[0].unit.as_str(), items[0].lot_tracked), ("CS", true));
                }
                got => assert_eq!(reported(got), want, "{body}"),
            }
        }
    }
}
