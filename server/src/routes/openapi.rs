//! `GET /v1/openapi.json`: an OpenAPI 3.0 document generated from the route table, so every route served is
//! described (paths, parameters, bodies, the success shape and the error shape). Schemas are written by hand
//! below; they follow the wire types in `dockhand_protocol::sync` and the store's records.

use std::sync::OnceLock;

use axum::Json;
use serde_json::{json, Map, Value};

use super::{table, Auth, Body};

/// The document (built once; it depends on nothing but the code).
pub(crate) async fn openapi() -> Json<Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(document).clone())
}

/// Builds the document from [`table`].
pub(crate) fn document() -> Value {
    let mut paths = Map::new();
    for route in table() {
        let mut params: Vec<Value> = path_params(route.path)
            .into_iter()
            .map(|name| {
                json!({
                    "name": name, "in": "path", "required": true,
                    "schema": {"type": "string"}, "description": path_param_doc(name),
                })
            })
            .collect();
        params.extend(route.query.iter().map(|(name, ty, doc)| {
            json!({"name": name, "in": "query", "required": false, "schema": {"type": ty}, "description": doc})
        }));
        let (status, schema) = route.ok;
        let mut responses = Map::new();
        responses.insert(
            status.to_string(),
            json!({"description": "success", "content": {"application/json": {"schema": reference(schema)}}}),
        );
        // Which of the shared error responses (components/responses) this route can give.
        let mut errors = vec![400];
        if route.auth != Auth::Public {
            errors.push(401);
        }
        if route.auth == Auth::Device {
            errors.push(403);
        }
        if route.path.contains('{') {
            errors.push(404);
        }
        if route.method != "get" {
            errors.extend([409, 413]);
        }
        errors.push(503);
        for code in errors {
            responses.insert(
                code.to_string(),
                json!({"$ref": format!("#/components/responses/E{code}")}),
            );
        }
        let mut op = json!({
            "summary": route.summary,
            "operationId": operation_id(route.method, route.path),
            "parameters": params,
            "responses": responses,
        });
        match route.auth {
            Auth::Public => op["security"] = json!([]),
            Auth::Admin => op["security"] = json!([{"admin": []}]),
            Auth::Device => op["security"] = json!([{"device": []}]),
        }
        match route.body {
            Body::None => {}
            Body::Json(schema) => {
                op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": reference(schema)}}});
            }
            Body::Csv(header) => {
                op["requestBody"] = json!({
                    "required": true,
                    "description": format!("CSV with the header `{header}` (columns in any order; optional ones in brackets). Errors name the row (header = row 1) and column; nothing is imported unless every row is valid."),
                    "content": {"text/csv": {"schema": {"type": "string"}}},
                });
            }
        }
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        entry[route.method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Dockhand server API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Office API (admin bearer token from DATA/admin.token) and device sync (device bearer token from `dockhand-server enroll`). Every error is JSON {\"error\":{\"code\",\"message\",\"field\"?}}.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "admin": {"type": "http", "scheme": "bearer", "description": "the office credential, DATA/admin.token"},
                "device": {"type": "http", "scheme": "bearer", "description": "a device token from enrollment"},
            },
            "responses": error_responses(),
            "schemas": schemas(),
        },
    })
}

/// The `{name}` segments of a path.
pub(crate) fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn path_param_doc(name: &str) -> &'static str {
    match name {
        "code" => "site code or location code",
        "site" => "site code",
        "gtin" => "GTIN-8/12/13/14, normalised to GTIN-14",
        "id" => "the resource id",
        _ => "",
    }
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_string();
    for part in path.trim_start_matches("/v1/").split(['/', '-', '.']) {
        let part = part.trim_start_matches('{').trim_end_matches('}');
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

fn reference(schema: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{schema}")})
}

fn error_responses() -> Value {
    let mut out = Map::new();
    for (code, description) in [
        (400, "malformed request; `error.field` names the offending field or query parameter"),
        (401, "missing or invalid credential; code `revoked` for a revoked device"),
        (403, "the device credential does not allow this (another device's movements, another site)"),
        (404, "no such resource"),
        (409, "refused: a business rule (code `refused`), a sequence gap (`seq_gap`, with `expected_seq`) or a conflicting movement (`conflict`)"),
        (413, "request body larger than the server's limit"),
        (503, "storage unavailable; retry later"),
    ] {
        out.insert(
            format!("E{code}"),
            json!({"description": description, "content": {"application/json": {"schema": reference("Error")}}}),
        );
    }
    Value::Object(out)
}

fn string() -> Value {
    json!({"type": "string"})
}
fn nullable(ty: &str) -> Value {
    json!({"type": ty, "nullable": true})
}
fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}
fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}
fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn schemas() -> Value {
    let doc_status = json!({"type": "string", "enum": ["open", "closed", "cancelled"]});
    let kind = json!({"type": "string", "enum": ["receive", "putaway", "move", "pick", "ship", "adjust", "count"]});
    let item_props = json!({
        "gtin": {"type": "string", "description": "GTIN-14"},
        "description": string(),
        "unit": {"type": "string", "default": "EA"},
        "lot_tracked": {"type": "boolean", "default": false},
        "expiry_tracked": {"type": "boolean", "default": false},
        "serial_tracked": {"type": "boolean", "default": false},
        "active": {"type": "boolean", "default": true},
    });
    let location_props = json!({
        "code": string(),
        "gln": {"type": "string", "description": "GLN-13 with check digit"},
        "zone": string(),
        "active": {"type": "boolean", "default": true},
    });
    let asn_line = object(
        &["gtin", "qty"],
        json!({"gtin": string(), "lot": string(), "qty": {"type": "integer", "minimum": 1, "maximum": 1_000_000_000}}),
    );
    let pick_line = object(
        &["line", "location", "gtin", "qty"],
        json!({"line": {"type": "integer"}, "location": string(), "gtin": string(), "lot": string(),
               "qty": {"type": "integer", "minimum": 1, "maximum": 1_000_000_000}}),
    );
    let movement_ref = object(
        &["device_id", "seq"],
        json!({"device_id": string(), "seq": {"type": "integer"}}),
    );
    json!({
        "Error": object(&["error"], json!({
            "error": object(&["code", "message"], json!({
                "code": {"type": "string", "example": "bad_request"},
                "message": string(),
                "field": {"type": "string", "description": "the offending field or parameter (400)"},
                "expected_seq": {"type": "integer", "description": "on seq_gap"},
            })),
            "expected_seq": {"type": "integer"},
        })),
        "Health": object(&["status"], json!({"status": {"type": "string", "enum": ["ok"]}})),
        "OpenApi": {"type": "object", "description": "this document"},
        "Movement": object(&["device_id", "seq", "at", "kind", "gtin", "qty", "source"], json!({
            "device_id": string(), "seq": {"type": "integer", "minimum": 1}, "at": time(), "kind": kind,
            "gtin": string(), "lot": string(), "expiry": {"type": "string", "format": "date"},
            "serials": array(string()), "qty": {"type": "integer"}, "from_location": string(),
            "to_location": string(), "sscc": string(), "reference": string(), "operator": string(),
            "source": {"type": "object", "description": "{\"type\":\"barcode\",\"raw\",\"symbology\"} | {\"type\":\"epc\",\"epc\",\"antenna\",\"rssi\"} | {\"type\":\"manual\"}"},
        })),
        "PushRequest": object(&["device_id", "movements"], json!({
            "device_id": string(),
            "movements": array(reference("Movement")),
            "backlog": {"type": "integer", "description": "movements the device still holds unacknowledged"},
        })),
        "PushResponse": object(&["acked_through"], json!({"acked_through": {"type": "integer"}})),
        "PullResponse": object(&["cursor", "more", "changes"], json!({
            "cursor": {"type": "integer"}, "more": {"type": "boolean"},
            "changes": array(json!({"type": "object", "description": "{\"type\":\"item\"|\"location\"|\"asn\"|\"pick_list\", ...the record} or {\"type\":\"cancel\",\"reference\"}"})),
        })),
        "StockSnapshot": object(&["site", "acked_through", "stock"], json!({
            "site": {"type": "string", "description": "the device's enrolled site"},
            "acked_through": {"type": "integer", "description": "the device's high-water mark when the snapshot was taken: its movements with seq <= this are in `stock`, later ones are not"},
            "stock": array(object(&["location", "gtin", "lot", "qty"], json!({
                "location": string(), "gtin": string(), "lot": nullable("string"), "qty": {"type": "integer"},
            }))),
        })),
        "Site": object(&["code"], json!({"code": string(), "name": string(), "active": {"type": "boolean", "default": true}})),
        "SiteBody": object(&[], json!({"code": string(), "name": string(), "active": {"type": "boolean", "default": true}})),
        "Sites": object(&["sites"], json!({"sites": array(reference("Site"))})),
        "Item": object(&["gtin", "description"], item_props.clone()),
        "ItemBody": object(&["description"], item_props),
        "ItemPage": object(&["items", "next"], json!({"items": array(reference("Item")), "next": nullable("string")})),
        "ImportResult": object(&["imported"], json!({"imported": {"type": "integer"}})),
        "Location": object(&["code"], location_props.clone()),
        "LocationBody": object(&[], location_props),
        "Locations": object(&["site", "locations"], json!({"site": string(), "locations": array(reference("Location"))})),
        "Asn": object(&["id", "site"], json!({
            "id": string(), "site": string(), "supplier": string(),
            "expected_on": {"type": "string", "format": "date"},
            "lines": array(asn_line.clone()),
            "pallets": array(object(&["sscc", "lines"], json!({"sscc": {"type": "string", "description": "SSCC-18 with check digit"}, "lines": array(asn_line)}))),
            "status": doc_status.clone(),
        })),
        "Asns": object(&["asns"], json!({"asns": array(reference("Asn"))})),
        "PickList": object(&["id", "site", "lines"], json!({
            "id": string(), "site": string(), "device": string(), "zone": string(),
            "lines": array(pick_line), "status": doc_status,
        })),
        "PickLists": object(&["pick_lists"], json!({"pick_lists": array(reference("PickList"))})),
        "Assign": object(&[], json!({"device": string(), "zone": string()})),
        "Device": object(&["device_id", "site", "enrolled_at", "revoked", "revoked_at", "last_seen", "backlog"], json!({
            "device_id": string(), "site": string(), "enrolled_at": time(), "revoked": {"type": "boolean"},
            "revoked_at": {"type": "string", "format": "date-time", "nullable": true},
            "last_seen": {"type": "string", "format": "date-time", "nullable": true},
            "backlog": nullable("integer"),
        })),
        "Devices": object(&["devices"], json!({"devices": array(reference("Device"))})),
        "Enroll": object(&["device_id", "site"], json!({"device_id": string(), "site": string(), "rotate": {"type": "boolean", "default": false}})),
        "Enrolled": object(&["device_id", "site", "token"], json!({"device_id": string(), "site": string(), "token": {"type": "string", "description": "shown once"}})),
        "HighWater": object(&["device_id", "acked_through"], json!({"device_id": string(), "acked_through": {"type": "integer"}})),
        "Stock": object(&["stock"], json!({"stock": array(object(&["site", "location", "gtin", "lot", "qty"], json!({
            "site": string(), "location": string(), "gtin": string(), "lot": nullable("string"), "qty": {"type": "integer"},
        })))})),
        "MovementPage": object(&["movements", "next"], json!({
            "movements": array(object(&["server_seq", "site", "received_at", "movement"], json!({
                "server_seq": {"type": "integer"}, "site": string(), "received_at": time(), "movement": reference("Movement"),
            }))),
            "next": nullable("integer"),
        })),
        "Discrepancy": object(&["id", "site", "kind", "status", "created_at", "movements", "message"], json!({
            "id": {"type": "integer"}, "site": string(),
            "kind": {"type": "string", "enum": ["negative_stock", "count_mismatch", "asn_over", "asn_short", "asn_unexpected_line", "asn_unexpected_pallet", "unknown_reference", "pick_on_cancelled_list", "unknown_item", "unknown_location"]},
            "status": {"type": "string", "enum": ["open", "resolved"]},
            "created_at": time(), "movements": array(movement_ref),
            "reference": nullable("string"), "location": nullable("string"), "gtin": nullable("string"), "lot": nullable("string"),
            "expected": nullable("integer"), "actual": nullable("integer"), "message": string(),
            "comments": array(object(&["at", "author", "text"], json!({"at": time(), "author": string(), "text": string()}))),
            "resolution": {"type": "object", "nullable": true},
        })),
        "Discrepancies": object(&["discrepancies"], json!({"discrepancies": array(reference("Discrepancy"))})),
        "CommentBody": object(&["author", "text"], json!({"author": string(), "text": string()})),
        "ResolveBody": {
            "oneOf": [
                object(&["type", "location", "gtin", "delta", "reason"], json!({
                    "type": {"type": "string", "enum": ["adjust"]}, "location": string(), "gtin": string(),
                    "lot": string(), "delta": {"type": "integer", "description": "non-zero"}, "reason": string(),
                })),
                object(&["type", "reason"], json!({"type": {"type": "string", "enum": ["accepted"]}, "reason": string()})),
            ],
            "discriminator": {"propertyName": "type"},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_and_schema_is_described() {
        let doc = document();
        for route in table() {
            let op = &doc["paths"][route.path][route.method];
            assert!(op.is_object(), "{} {}", route.method, route.path);
            assert!(!route.summary.is_empty(), "{} {}", route.method, route.path);
            let (_, schema) = route.ok;
            assert!(
                doc["components"]["schemas"][schema].is_object(),
                "schema {schema} of {}",
                route.path
            );
            if let Body::Json(schema) = route.body {
                assert!(
                    doc["components"]["schemas"][schema].is_object(),
                    "schema {schema}"
                );
            }
        }
        assert_eq!(operation_id("get", "/v1/pick-lists/{id}"), "getPickListsId");
    }
}
