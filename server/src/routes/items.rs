//! Items (admin): list, get, create/update (`active:false` deactivates), and CSV import.
//!
//! GTINs are accepted as GTIN-8, -12, -13 or -14 with a correct check digit and stored as GTIN-14.
//!
//! CSV import: header `gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked[,active]` (any order);
//! every row is checked first and the first bad cell is reported as `row R, column C: ...` (the header is row 1,
//! as in a spreadsheet); only a fully valid file is written, in one `put_items` transaction.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use dockhand_protocol::sync::Item;
use serde::{Deserialize, Serialize};

use super::input::{self, csv_bool, csv_error, in_cell, Csv, CsvBody, Params};
use super::{blocking, JsonBody};
use crate::auth::AdminAuth;
use crate::error::ApiError;
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

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize)]
pub(crate) struct ItemPage {
    items: Vec<Item>,
    /// Pass as `after` for the next page; null on the last.
    next: Option<String>,
}

/// What an import did.
#[derive(Debug, Serialize)]
pub(crate) struct ImportResult {
    pub(crate) imported: usize,
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
    if body.unit_cost.is_some_and(|c| c > MAX_UNIT_COST) {
        return Err(ApiError::bad_field(
            "unit_cost",
            format!("must be 0..={MAX_UNIT_COST} (minor units, e.g. cents)"),
        ));
    }
    let item = Item {
        gtin,
        description: body.description,
        unit,
        lot_tracked: body.lot_tracked,
        expiry_tracked: body.expiry_tracked,
        serial_tracked: body.serial_tracked,
        active: body.active,
        unit_cost: body.unit_cost,
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
    CsvBody(text): CsvBody,
) -> Result<Json<ImportResult>, ApiError> {
    let items = parse_items(&text)?;
    let imported = items.len();
    let store = state.store.clone();
    blocking(move || Ok(store.put_items(&items)?)).await?;
    tracing::info!(imported, "items imported");
    Ok(Json(ImportResult { imported }))
}

/// Checks every row of an item CSV (see the module docs).
pub(super) fn parse_items(text: &str) -> Result<Vec<Item>, ApiError> {
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
    let mut items: Vec<Item> = Vec::with_capacity(csv.rows.len());
    let mut rows_by_gtin = std::collections::HashMap::new();
    for r in &csv.rows {
        let row = r.row;
        let cell = |c: &str| csv.cell(r, c);
        let gtin = input::gtin("gtin", cell("gtin")).map_err(|e| in_cell(row, "gtin", e))?;
        if let Some(first) = rows_by_gtin.insert(gtin.clone(), row) {
            return Err(csv_error(
                row,
                "gtin",
                format!("{gtin} is already on row {first}"),
            ));
        }
        let description = cell("description");
        input::required_text("description", description, 200)
            .map_err(|e| in_cell(row, "description", e))?;
        let unit = match cell("unit") {
            "" => "EA".to_string(),
            u => self::unit("unit", u).map_err(|e| in_cell(row, "unit", e))?,
        };
        items.push(Item {
            gtin,
            description: description.to_string(),
            unit,
            lot_tracked: csv_bool(row, "lot_tracked", cell("lot_tracked"), false)?,
            expiry_tracked: csv_bool(row, "expiry_tracked", cell("expiry_tracked"), false)?,
            serial_tracked: csv_bool(row, "serial_tracked", cell("serial_tracked"), false)?,
            active: csv_bool(row, "active", cell("active"), true)?,
            unit_cost: None,
        });
    }
    Ok(items)
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

    fn error_of(text: &str) -> String {
        match parse_items(text) {
            Err(ApiError::BadRequest { message, .. }) => message,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn import_errors_table() {
        const HEAD: &str = "gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked\n";
        let cases: &[(&str, &str)] = &[
            (
                "9506000134352,W,EA,1,0,0\n9506000134353,X,EA,0,0,0\n",
                "row 3, column gtin: ",
            ),
            ("9506000134352,,EA,1,0,0\n", "row 2, column description: "),
            ("9506000134352,W,E A,1,0,0\n", "row 2, column unit: "),
            (
                "9506000134352,W,EA,maybe,0,0\n",
                "row 2, column lot_tracked: ",
            ),
            (
                "9506000134352,W,EA,1,0,0\n09506000134352,W,EA,1,0,0\n",
                "row 3, column gtin: ",
            ),
            ("9506000134352,W,EA,1,0\n", "row 2: 5 cells"),
        ];
        for (rows, want) in cases {
            let got = error_of(&format!("{HEAD}{rows}"));
            assert!(got.starts_with(want), "{rows:?}: {got}");
        }
        assert!(error_of("gtin,description\n").contains("column unit"));
        assert!(error_of("").contains("empty CSV"));
        let items =
            parse_items(&format!("{HEAD}9506000134352,\"Widget, blue\",,yes,no,0\n")).unwrap();
        assert_eq!(items[0].gtin, "09506000134352");
        assert_eq!(items[0].description, "Widget, blue");
        assert_eq!(items[0].unit, "EA");
        assert!(items[0].lot_tracked && items[0].active);
    }
}
