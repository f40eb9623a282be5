//! `GET /v1/openapi.json`: an OpenAPI 3.1 document generated from the route table, so every route the table serves
//! is described: paths, parameters, request bodies, the success body and every error status the route can answer.
//!
//! # What comes from where
//!
//! - Paths, methods, summaries, query parameters, request bodies, success status and schema, media type and the
//!   error statuses: the route table ([`super::table`]). 401 is implied by a route's [`Auth`] and 413 by its
//!   [`Body`]; the table lists the rest (400, 403, 404, 409, 503) per route, as its handler can answer them.
//! - Parameter schemas: the table's type, refined from its description, which the table writes in a fixed form:
//!   `a | b | c` is an enum, `N..=M` a range, `RFC 3339` a date-time, `(required)` required; by name, `site` and
//!   `device` are names (`[A-Za-z0-9._-]{1,64}`), `location`, `gtin` and `lot` follow `routes::input`. Path
//!   parameters get the pattern their handler checks. What a pattern cannot say (a GTIN's check digit, `until`
//!   before `since`) is still a documented 400. Optional query parameters allow an empty value, which the handlers
//!   read as absent.
//! - Component schemas: written by hand below, following the serde types in `dockhand_protocol::sync`, the store's
//!   records and the handlers' own bodies. `server/tests/openapi.rs` sends real requests for every documented
//!   (route, status) and validates each body against its schema with every object closed, so a field the handler
//!   emits and the schema does not name fails the test.
//!
//! # Dialect
//!
//! OpenAPI 3.1 schemas are JSON Schema 2020-12 (with the OpenAPI vocabulary: `discriminator`): optional values are
//! `"type": ["string", "null"]`, constants `const`, examples `examples`. Request schemas are closed
//! (`additionalProperties: false`) because the handlers refuse unknown fields; response schemas are open because
//! responses may gain fields (DESIGN §8).
//!
//! # What is not here
//!
//! - The office dashboard's HTML pages ([`crate::web::pages`], merged into the same router): they are for browsers,
//!   answer HTML, redirects and form posts, and are not part of the machine API. Rule: the document describes every
//!   route of the route table, which holds every JSON route under `/v1/` and `/metrics`; the dashboard's routes are
//!   exactly the router's other routes, all outside `/v1/` and `/metrics` (`server/tests/openapi.rs` checks both).
//! - 405 (a known path with another method) and 500 (a bug, or the file device registry failing): possible on any
//!   route, described once in `info.description`, with the same error body.

use std::sync::OnceLock;

use axum::Json;
use serde_json::{json, Map, Value};

use super::{table, Auth, Body, Route};

/// The document (built once; it depends on nothing but the code).
pub(crate) async fn openapi() -> Json<Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(document).clone())
}

/// The error codes each status carries (`error.code`), as `crate::error::ApiError` maps them.
pub(crate) const ERROR_CODES: &[(u16, &[&str], &str)] = &[
    (
        400,
        &["bad_request"],
        "malformed request; `error.field` names the offending field or query parameter when there is one",
    ),
    (
        401,
        &["unauthorized", "revoked"],
        "missing or invalid credential; `revoked` when the office revoked this device",
    ),
    (
        403,
        &["forbidden"],
        "the device credential does not allow this (another device's movements, another site)",
    ),
    (404, &["not_found"], "no such resource"),
    (
        409,
        &["seq_gap", "conflict", "refused"],
        "`seq_gap`: the batch starts past high-water + 1 (with `expected_seq`); `conflict`: a movement was \
         received before with different content; `refused`: a business rule (already exists, no longer open, \
         resolved twice, deactivated site)",
    ),
    (413, &["payload_too_large"], "request body larger than the server's limit"),
    (503, &["storage_unavailable"], "storage unavailable; retry later"),
];

/// The statuses `route` documents: its success statuses, then its errors in ascending order.
pub(crate) fn statuses(route: &Route) -> Vec<u16> {
    let mut out = vec![route.ok.0];
    out.extend(route.also_ok);
    let mut errors = route.errors.to_vec();
    if route.auth != Auth::Public {
        errors.push(401);
    }
    if route.body != Body::None {
        errors.push(413);
    }
    errors.sort_unstable();
    errors.dedup();
    out.extend(errors);
    out
}

/// Builds the document from [`table`].
pub(crate) fn document() -> Value {
    let mut paths = Map::new();
    for route in table() {
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        entry[route.method] = operation(&route);
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "Dockhand server API",
            "version": env!("CARGO_PKG_VERSION"),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
            "description": "Office API (admin bearer token from DATA/admin.token), device sync (device bearer \
                token from `dockhand-server enroll`) and this node's metrics. Every error answers the JSON body \
                {\"error\":{\"code\",\"message\",\"field\"?}}, with the statuses each operation lists; besides \
                those, any route may answer 405 `method_not_allowed` (a known path with another method) and 500 \
                `internal` (a bug, or the file device registry failing), with the same body. The office \
                dashboard's HTML pages share the listener and are not described here.",
        },
        "tags": [
            {"name": "meta", "description": "health, this document, metrics"},
            {"name": "sync", "description": "what devices call"},
            {"name": "office", "description": "what the office calls"},
        ],
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

fn operation(route: &Route) -> Value {
    let mut params: Vec<Value> = path_params(route.path)
        .into_iter()
        .map(|name| {
            json!({
                "name": name, "in": "path", "required": true,
                "schema": path_param_schema(route.path, name), "description": path_param_doc(name),
            })
        })
        .collect();
    params.extend(route.query.iter().map(|(name, ty, doc)| {
        // The handlers take an empty value (`site=`, as HTML forms send it) as an absent one.
        let required = doc.contains("(required)");
        json!({"name": name, "in": "query", "required": required, "allowEmptyValue": !required,
               "schema": param_schema(name, ty, doc), "description": doc})
    }));
    let (_, schema) = route.ok;
    let mut responses = Map::new();
    for status in statuses(route) {
        let response = if status < 400 {
            json!({
                "description": if status == 201 { "created" } else { "success" },
                "content": {route.media: {"schema": reference(schema)}},
            })
        } else {
            json!({"$ref": format!("#/components/responses/E{status}")})
        };
        responses.insert(status.to_string(), response);
    }
    let tag = if route.path.starts_with("/v1/sync/") {
        "sync"
    } else if matches!(route.path, "/v1/health" | "/v1/openapi.json" | "/metrics") {
        "meta"
    } else {
        "office"
    };
    let mut op = json!({
        "summary": route.summary,
        "operationId": operation_id(route.method, route.path),
        "tags": [tag],
        "parameters": params,
        "responses": responses,
    });
    op["security"] = match route.auth {
        Auth::Public => json!([]),
        Auth::Admin => json!([{"admin": []}]),
        Auth::Device => json!([{"device": []}]),
    };
    match route.body {
        Body::None => {}
        Body::Json(schema) => {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": reference(schema)}}});
        }
        Body::Import { csv, json } => {
            op["requestBody"] = json!({
                "required": true,
                "description": format!("The file to import, chosen by `Content-Type`: `text/csv` with the header \
                    `{csv}` (columns in any order; optional ones in brackets), or `application/json`, an array of \
                    `{json}`. Every row is checked; nothing is imported unless every row is valid, and the 400 \
                    lists each bad one in `rows` (CSV: `line`, the header is line 1, and `column`; JSON: `index` \
                    and `field`)."),
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/json": {"schema": array(reference(json))},
                },
            });
        }
    }
    op
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
        "delivery" => "the delivery id",
        _ => "",
    }
}

/// Site, device and document ids (`routes::input::name`).
const NAME: &str = "^[A-Za-z0-9._-]{1,64}$";
/// A location code (`routes::input::location`): 1 to 64 characters, no control characters, `/` or `,`, no space at
/// either end.
const LOCATION: &str =
    "^[^\\s/,\\x00-\\x1f\\x7f-\\x9f](?:[^/,\\x00-\\x1f\\x7f-\\x9f]{0,62}[^\\s/,\\x00-\\x1f\\x7f-\\x9f])?$";
/// A GTIN-8, -12, -13 or -14 (the check digit is checked too: 400 when wrong).
const GTIN: &str = "^([0-9]{8}|[0-9]{12,14})$";
/// A lot (GS1 AI 10): 1 to 20 printable ASCII characters.
const LOT: &str = "^[!-~]{1,20}$";
/// Text for people (`routes::input::text`): no control characters.
const TEXT: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*$";

/// A path parameter's schema: what the handler accepts (other values answer 400, or 404 for a device id).
fn path_param_schema(path: &str, name: &str) -> Value {
    let pattern = match name {
        "gtin" => GTIN,
        "id" if path.starts_with("/v1/discrepancies/") => "^[0-9]{1,20}$",
        "code" if path.contains("/locations/") => LOCATION,
        _ => NAME,
    };
    json!({"type": "string", "pattern": pattern})
}

/// A query parameter's schema from the table's `(name, type, description)` (see the module docs for the rules).
fn param_schema(name: &str, ty: &str, doc: &str) -> Value {
    if ty == "boolean" {
        return json!({"type": "boolean", "default": false});
    }
    if ty == "integer" {
        let mut schema = json!({"type": "integer", "minimum": 0});
        if let Some((min, max)) = range_in(doc) {
            schema["minimum"] = min.into();
            schema["maximum"] = max.into();
        }
        return schema;
    }
    if let Some(words) = enum_in(doc) {
        return json!({"type": "string", "enum": words});
    }
    if doc.starts_with("RFC 3339") {
        return json!({"type": "string", "format": "date-time"});
    }
    match name {
        "site" | "device" => json!({"type": "string", "pattern": NAME}),
        "location" => json!({"type": "string", "pattern": LOCATION}),
        "lot" => json!({"type": "string", "pattern": LOT}),
        _ if name == "gtin" || doc.contains("GTIN") => json!({"type": "string", "pattern": GTIN}),
        _ => json!({"type": "string"}),
    }
}

/// `N..=M` anywhere in `doc`.
fn range_in(doc: &str) -> Option<(u64, u64)> {
    doc.split([' ', ',']).find_map(|word| {
        let (min, max) = word.split_once("..=")?;
        Some((min.parse().ok()?, max.parse().ok()?))
    })
}

/// `doc` when it is exactly `a | b | c` (lowercase words).
fn enum_in(doc: &str) -> Option<Vec<&str>> {
    let words: Vec<&str> = doc.split(" | ").collect();
    let word = |w: &&str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    (words.len() > 1 && words.iter().all(word)).then_some(words)
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_string();
    for part in path
        .trim_start_matches('/')
        .trim_start_matches("v1/")
        .split(['/', '-', '.'])
    {
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

/// `components/responses/E<status>`: the error body with `error.code` narrowed to what that status carries.
fn error_responses() -> Value {
    let mut out = Map::new();
    for (status, codes, description) in ERROR_CODES {
        let mut schema = error_schema();
        schema["properties"]["error"]["properties"]["code"] =
            json!({"type": "string", "enum": codes});
        if *status != 400 {
            // Only an import's 400 lists bad rows.
            let top = schema["properties"].as_object_mut().expect("object");
            for key in ["rows", "error_count", "truncated"] {
                top.remove(key);
            }
        }
        if *status != 409 {
            // Only a sequence gap carries the expected seq.
            let error = schema["properties"]["error"]["properties"]
                .as_object_mut()
                .expect("object");
            error.remove("expected_seq");
            schema["properties"]
                .as_object_mut()
                .expect("object")
                .remove("expected_seq");
        }
        out.insert(
            format!("E{status}"),
            json!({"description": description, "content": {"application/json": {"schema": schema}}}),
        );
    }
    Value::Object(out)
}

/// `{"error":{"code","message","field"?,"expected_seq"?},"expected_seq"?}` (`dockhand_protocol::sync::ErrorBody`).
fn error_schema() -> Value {
    let codes: Vec<&str> = ERROR_CODES
        .iter()
        .flat_map(|(_, codes, _)| codes.iter().copied())
        .chain(["method_not_allowed", "internal"])
        .collect();
    object(
        &["error"],
        json!({
            "error": object(&["code", "message"], json!({
                "code": {"type": "string", "enum": codes, "examples": ["bad_request"]},
                "message": {"type": "string", "description": "for a person"},
                "field": {"type": "string", "description": "the offending field or parameter, e.g. `movements[3].seq` (400)"},
                "expected_seq": {"type": "integer", "minimum": 1, "description": "`seq_gap`: the seq the server needs next"},
            })),
            "expected_seq": {"type": "integer", "minimum": 1, "description": "`seq_gap`: the same, where agents of protocol v1 read it"},
            "rows": array(json!({
                "type": "object", "required": ["message"],
                "properties": {
                    "line": {"type": "integer", "minimum": 1, "description": "CSV: the physical line where the row starts (header = 1)"},
                    "column": {"type": ["string", "null"], "description": "CSV: the column; null when the row is wrong as a whole"},
                    "index": {"type": "integer", "minimum": 0, "description": "JSON: the element's index in the array"},
                    "field": {"type": ["string", "null"], "description": "JSON: the path inside the element, e.g. `lines[0].qty`"},
                    "message": {"type": "string"},
                },
                "oneOf": [{"required": ["line", "column"]}, {"required": ["index", "field"]}],
            })),
            "error_count": {"type": "integer", "minimum": 1, "description": "imports: every error found; `rows` lists at most the first 1000"},
            "truncated": {"type": "boolean", "description": "imports: `rows` is cut at 1000"},
        }),
    )
}

fn string() -> Value {
    json!({"type": "string"})
}
/// `schema` or null: serde reads null as "absent" for an optional field of a request.
fn or_null(mut schema: Value) -> Value {
    let ty = schema["type"].take();
    schema["type"] = json!([ty, "null"]);
    schema
}
/// Text for people of `min..=max` characters (`routes::input::text`, `required_text`).
fn text(min: u64, max: u64) -> Value {
    json!({"type": "string", "minLength": min, "maxLength": max, "pattern": TEXT})
}
fn nullable(ty: &str) -> Value {
    json!({"type": [ty, "null"]})
}
fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}
fn date() -> Value {
    json!({"type": "string", "format": "date", "examples": ["2027-03-31"]})
}
fn count() -> Value {
    json!({"type": "integer", "minimum": 0})
}
fn boolean(default: bool) -> Value {
    json!({"type": "boolean", "default": default})
}
fn doc_status(description: &str) -> Value {
    json!({"type": "string", "enum": ["open", "closed", "cancelled"], "default": "open", "description": description})
}
fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}
/// An open object (a response: fields may be added).
fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}
/// A closed object (a request body whose handler refuses unknown fields).
fn closed(required: &[&str], properties: Value) -> Value {
    let mut schema = object(required, properties);
    schema["additionalProperties"] = false.into();
    schema
}
/// What `POST` accepts for a new document of `base`'s shape: open, and the line rule `rules` (an `allOf` part).
fn new_document(base: &Value, rules: Value) -> Value {
    let mut schema = base.clone();
    schema["properties"]["status"] = json!({"const": "open", "default": "open"});
    schema["allOf"] = json!([rules]);
    schema
}

/// `base` (an object schema) with a `type` tag, as serde writes an internally tagged enum variant.
fn tagged(tag: &str, base: &Value) -> Value {
    let mut schema = base.clone();
    schema["properties"]["type"] = json!({"const": tag});
    if let Some(required) = schema["required"].as_array_mut() {
        required.insert(0, "type".into());
    }
    schema
}

fn schemas() -> Value {
    let kind = json!({"type": "string", "enum": ["receive", "putaway", "move", "pick", "ship", "adjust", "count"]});
    let qty = json!({"type": "integer", "minimum": 1, "maximum": 1_000_000_000});
    let gtin14 =
        json!({"type": "string", "pattern": "^[0-9]{14}$", "examples": ["09506000134352"]});
    let name = json!({"type": "string", "pattern": NAME});
    // What office requests may send (answers carry GTIN-14).
    let any_gtin = json!({"type": "string", "pattern": GTIN, "description": "GTIN-8/12/13/14; answered as GTIN-14"});
    let lot = json!({"type": "string", "pattern": LOT});
    let location_code = json!({"type": "string", "pattern": LOCATION});
    let webhook_kind = json!({"type": "string", "enum": crate::webhooks::EventKind::ALL.map(crate::webhooks::EventKind::as_str)});
    let webhook_delivery = object(
        &[
            "id",
            "endpoint",
            "key",
            "kind",
            "events",
            "body",
            "status",
            "attempts",
            "created_at",
            "next_attempt_at",
            "delivered_at",
            "last_error",
        ],
        json!({
            "id": {"type": "integer", "minimum": 1}, "endpoint": string(),
            "key": {"type": "string", "description": "sent as Dockhand-Webhook-Id"},
            "kind": webhook_kind.clone(), "events": count(),
            "body": {"type": "string", "description": "the JSON body as signed and sent; empty once delivered"},
            "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
            "attempts": count(), "created_at": time(),
            "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
            "delivered_at": {"type": ["string", "null"], "format": "date-time"},
            "last_error": nullable("string"),
        }),
    );
    let item = object(
        &[
            "gtin",
            "description",
            "unit",
            "lot_tracked",
            "expiry_tracked",
            "serial_tracked",
            "active",
        ],
        json!({
            "gtin": gtin14, "description": string(), "unit": {"type": "string", "default": "EA"},
            "lot_tracked": boolean(false), "expiry_tracked": boolean(false), "serial_tracked": boolean(false),
            "active": boolean(true),
            "unit_cost": {"type": "integer", "minimum": 0, "description": "minor units (cents) per unit; absent when unknown"},
        }),
    );
    let work_row = object(
        &["hour", "who", "movements", "scans", "picked_units"],
        json!({
            "hour": time(), "who": nullable("string"), "movements": count(), "scans": count(), "picked_units": count(),
        }),
    );
    let dock_day = object(
        &[
            "day",
            "pallets",
            "pallet_median_seconds",
            "pallet_p90_seconds",
            "units",
            "unit_median_seconds",
            "unit_p90_seconds",
            "pending_pallets",
            "pending_units",
        ],
        json!({
            "day": string(), "pallets": count(), "pallet_median_seconds": nullable("integer"), "pallet_p90_seconds": nullable("integer"),
            "units": count(), "unit_median_seconds": nullable("integer"), "unit_p90_seconds": nullable("integer"),
            "pending_pallets": count(), "pending_units": count(),
        }),
    );
    let location_props = json!({
        "code": string(),
        "gln": {"type": "string", "pattern": "^[0-9]{13}$", "description": "GLN-13 with check digit"},
        "zone": string(),
        "active": boolean(true),
    });
    let location = object(&["code", "active"], location_props);
    let asn_line = closed(
        &["gtin", "qty"],
        json!({"gtin": any_gtin.clone(), "lot": or_null(lot.clone()), "qty": qty}),
    );
    let asn = closed(
        &["id", "site"],
        json!({
            "id": name, "site": name, "supplier": or_null(text(1, 200)), "expected_on": or_null(date()),
            "lines": array(asn_line.clone()),
            "pallets": array(closed(&["sscc", "lines"], json!({
                "sscc": {"type": "string", "pattern": "^[0-9]{18}$", "description": "SSCC-18 with check digit"},
                "lines": {"type": "array", "items": asn_line, "minItems": 1},
            }))),
            "status": doc_status("a new ASN is open; answers always carry it, with `lines` and `pallets`"),
        }),
    );
    let pick_line = closed(
        &["line", "location", "gtin", "qty"],
        json!({"line": count(), "location": location_code.clone(), "gtin": any_gtin.clone(), "lot": or_null(lot.clone()), "qty": qty}),
    );
    let pick_list = closed(
        &["id", "site", "lines"],
        json!({
            "id": name, "site": name, "device": or_null(name.clone()), "zone": or_null(name.clone()),
            "lines": array(pick_line), "status": doc_status("a new pick list is open; answers always carry it"),
        }),
    );
    let movement_ref = object(
        &["device_id", "seq"],
        json!({"device_id": string(), "seq": {"type": "integer", "minimum": 1}}),
    );
    let source = json!({
        "oneOf": [
            closed(&["type", "raw"], json!({"type": {"const": "barcode"}, "raw": string(), "symbology": or_null(json!({"type": "string", "examples": ["]C1"]}))})),
            closed(&["type", "epc"], json!({"type": {"const": "epc"}, "epc": {"type": "string", "description": "hex"},
                "antenna": or_null(json!({"type": "integer", "minimum": 0, "maximum": 65535})),
                "rssi": or_null(json!({"type": "integer", "minimum": -32768, "maximum": 32767}))})),
            closed(&["type"], json!({"type": {"const": "manual"}})),
        ],
        "discriminator": {"propertyName": "type"},
        "description": "the scan or tag read that caused the movement",
    });
    let stock_row = object(
        &["site", "location", "gtin", "lot", "qty"],
        json!({
            "site": string(), "location": string(), "gtin": gtin14, "lot": nullable("string"),
            "qty": {"type": "integer", "description": "negative: more left than arrived (a discrepancy)"},
            "expiry": {"type": ["string", "null"], "format": "date", "description": "YYYY-MM-DD (AI 17) when known"},
        }),
    );
    let resolution = json!({
        "oneOf": [
            object(&["type", "location", "gtin", "lot", "delta", "reason", "movement"], json!({
                "type": {"const": "adjust"}, "location": string(), "gtin": gtin14, "lot": nullable("string"),
                "delta": {"type": "integer"}, "reason": string(),
                "movement": {"oneOf": [movement_ref.clone(), {"type": "null"}], "description": "the adjust movement recorded"},
            })),
            object(&["type", "reason"], json!({"type": {"const": "accepted"}, "reason": string()})),
        ],
        "discriminator": {"propertyName": "type"},
    });
    json!({
        "Error": error_schema(),
        "Health": object(&["status"], json!({"status": {"const": "ok"}})),
        "OpenApi": {
            "type": "object", "required": ["openapi", "info", "paths"],
            "properties": {"openapi": {"const": "3.1.0"}, "info": {"type": "object"}, "paths": {"type": "object"}},
            "additionalProperties": true,
            "description": "this document",
        },
        "Metrics": {
            "type": "string",
            "description": "Prometheus text exposition format 0.0.4: `# HELP` and `# TYPE` lines, then samples such \
                as `dockhand_push_requests_total{status=\"200\"} 12` (the metric list is in the README)",
        },
        "Movement": closed(&["device_id", "seq", "at", "kind", "gtin", "qty", "source"], json!({
            "device_id": string(), "seq": {"type": "integer", "minimum": 1}, "at": time(), "kind": kind,
            "gtin": gtin14, "lot": or_null(string()), "expiry": or_null(date()),
            "serials": array(string()),
            "qty": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000, "description": "0 only for a count"},
            "from_location": or_null(string()), "to_location": or_null(string()),
            "sscc": or_null(string()), "reference": or_null(string()), "operator": or_null(string()),
            "source": source,
        })),
        "PushRequest": closed(&["device_id", "movements"], json!({
            "device_id": string(),
            "movements": array(reference("Movement")),
            "backlog": or_null(json!({"type": "integer", "minimum": 0, "description": "movements the device still holds unacknowledged"})),
        })),
        "PushResponse": object(&["acked_through"], json!({"acked_through": count()})),
        "ScanStatsRequest": closed(&["device_id", "stats"], json!({
            "device_id": string(),
            "stats": {"type": "array", "maxItems": dockhand_protocol::sync::MAX_SCAN_STATS_ROWS, "items": closed(&["hour", "reason", "count"], json!({
                "hour": time(), "operator": or_null(string()),
                "reason": {"type": "string", "pattern": "^[a-z0-9_]{1,32}$", "description": "over_pick, wrong_item, wrong_lot, wrong_location, undecodable or refused"},
                "count": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000, "description": "running total for the hour, operator and reason"},
            }))},
        })),
        "ScanStatsResponse": object(&["stored"], json!({"stored": count()})),
        "PickAccuracy": object(&["site", "since", "until", "operators"], json!({
            "site": string(), "since": time(), "until": time(),
            "operators": array(object(&["operator", "picks", "picked_units", "short_picks", "refused", "mistakes"], json!({
                "operator": or_null(string()), "picks": count(), "picked_units": count(), "short_picks": count(),
                "refused": {"type": "object", "additionalProperties": count(), "description": "refused scans by reason"},
                "mistakes": count(),
            }))),
        })),
        "PullResponse": object(&["cursor", "more", "changes"], json!({
            "cursor": count(), "more": {"type": "boolean"},
            "changes": array(json!({
                "oneOf": [
                    tagged("item", &item),
                    tagged("location", &location),
                    tagged("asn", &asn),
                    tagged("pick_list", &pick_list),
                    object(&["type", "reference"], json!({"type": {"const": "cancel"}, "reference": string()})),
                ],
                "discriminator": {"propertyName": "type"},
            })),
        })),
        "StockSnapshot": object(&["site", "acked_through", "stock"], json!({
            "site": {"type": "string", "description": "the device's enrolled site"},
            "acked_through": {"type": "integer", "minimum": 0, "description": "the device's high-water mark when the snapshot was taken: its movements with seq <= this are in `stock`, later ones are not"},
            "stock": array(object(&["location", "gtin", "lot", "qty"], json!({
                "location": string(), "gtin": gtin14, "lot": nullable("string"), "qty": {"type": "integer"},
            }))),
        })),
        "Site": object(&["code", "name", "active"], json!({"code": name, "name": text(0, 200), "active": boolean(true)})),
        "SiteBody": closed(&[], json!({"code": or_null(name.clone()), "name": text(0, 200), "active": boolean(true)})),
        "Sites": closed(&["sites"], json!({"sites": array(closed(&["code"], json!({"code": name, "name": text(0, 200), "active": boolean(true)})))})),
        "Item": item,
        "ItemBody": closed(&["description"], json!({
            "gtin": or_null(json!({"type": "string", "pattern": GTIN, "description": "optional; must be the path's item"})),
            "description": text(1, 200),
            "unit": or_null(json!({"type": "string", "pattern": "^[A-Za-z0-9]{1,16}$", "default": "EA"})),
            "lot_tracked": boolean(false), "expiry_tracked": boolean(false), "serial_tracked": boolean(false),
            "active": boolean(true),
            "unit_cost": or_null(json!({"type": "integer", "minimum": 0, "maximum": 1_000_000_000_000_u64, "description": "minor units (cents) per unit"})),
        })),
        "ItemPage": object(&["items", "next"], json!({"items": array(reference("Item")), "next": nullable("string")})),
        "ImportResult": object(&["dry_run"], json!({
            "dry_run": {"type": "boolean"},
            "imported": {"type": "integer", "minimum": 0, "description": "rows (ASN imports: ASNs) written; absent on a dry run"},
            "would_import": {"type": "integer", "minimum": 0, "description": "dry run: what a real import would write"},
            "unchanged": {"type": "integer", "minimum": 0, "description": "ASN imports: ids already stored with exactly this content, left alone"},
        })),
        "ItemImport": closed(&["gtin", "description"], json!({
            "gtin": {"type": "string", "pattern": GTIN},
            "description": text(1, 200),
            "unit": or_null(json!({"type": "string", "pattern": "^[A-Za-z0-9]{1,16}$", "default": "EA"})),
            "lot_tracked": boolean(false), "expiry_tracked": boolean(false), "serial_tracked": boolean(false),
            "active": boolean(true),
        })),
        "Location": location,
        "LocationBody": closed(&[], json!({
            "code": or_null(location_code.clone()),
            "gln": or_null(json!({"type": "string", "pattern": "^[0-9]{13}$", "description": "GLN-13 with check digit"})),
            "zone": or_null(name.clone()),
            "active": boolean(true),
        })),
        "LocationImport": closed(&["code"], json!({
            "code": location_code.clone(),
            "gln": or_null(json!({"type": "string", "pattern": "^[0-9]{13}$", "description": "GLN-13 with check digit"})),
            "zone": or_null(name.clone()),
            "active": boolean(true),
        })),
        "Locations": object(&["site", "locations"], json!({"site": string(), "locations": array(reference("Location"))})),
        "NewAsn": new_document(&asn, json!({"anyOf": [
            {"required": ["lines"], "properties": {"lines": {"minItems": 1}}},
            {"required": ["pallets"], "properties": {"pallets": {"minItems": 1}}},
        ]})),
        "Asn": asn,
        "Asns": object(&["asns"], json!({"asns": array(reference("Asn"))})),
        "NewPickList": new_document(&pick_list, json!({"properties": {"lines": {"minItems": 1, "maxItems": 10_000}}})),
        "PickList": pick_list,
        "PickLists": object(&["pick_lists"], json!({"pick_lists": array(reference("PickList"))})),
        "Assign": {
            "type": "object", "properties": {"device": name, "zone": name}, "additionalProperties": false,
            "oneOf": [{"required": ["device"]}, {"required": ["zone"]}],
            "description": "exactly one of device and zone",
        },
        "Device": object(&["device_id", "site", "enrolled_at", "revoked", "revoked_at", "last_seen", "backlog"], json!({
            "device_id": string(), "site": string(), "enrolled_at": time(), "revoked": {"type": "boolean"},
            "revoked_at": {"type": ["string", "null"], "format": "date-time"},
            "last_seen": {"type": ["string", "null"], "format": "date-time", "description": "the last authenticated push or pull"},
            "backlog": {"type": ["integer", "null"], "minimum": 0, "description": "unacknowledged movements the device reported on its last push"},
            "version": {"type": ["string", "null"], "description": "the agent version its latest User-Agent named"},
            "user_agent": {"type": ["string", "null"], "description": "that User-Agent as sent (cleaned)"},
        })),
        "Devices": object(&["devices"], json!({"devices": array(reference("Device"))})),
        "Enroll": closed(&["device_id", "site"], json!({"device_id": name, "site": name, "rotate": boolean(false)})),
        "Enrolled": object(&["device_id", "site", "token"], json!({"device_id": string(), "site": string(), "token": {"type": "string", "description": "shown once"}})),
        "HighWater": object(&["device_id", "acked_through"], json!({"device_id": string(), "acked_through": count()})),
        "Stock": object(&["stock"], json!({"stock": array(stock_row)})),
        "MovementPage": object(&["movements", "next"], json!({
            "movements": array(object(&["server_seq", "site", "received_at", "movement"], json!({
                "server_seq": {"type": "integer", "minimum": 1}, "site": string(), "received_at": time(), "movement": reference("Movement"),
            }))),
            "next": {"type": ["integer", "null"], "description": "pass as `after` for the next page; null on the last"},
        })),
        "Discrepancy": object(&["id", "site", "kind", "status", "created_at", "movements", "reference", "location", "gtin", "lot", "expected", "actual", "message", "comments", "resolution"], json!({
            "id": {"type": "integer", "minimum": 1}, "site": string(),
            "kind": {"type": "string", "enum": ["negative_stock", "count_mismatch", "asn_over", "asn_short", "asn_unexpected_line", "asn_unexpected_pallet", "unknown_reference", "pick_on_cancelled_list", "unknown_item", "unknown_location"]},
            "status": {"type": "string", "enum": ["open", "resolved"]},
            "created_at": time(), "movements": array(movement_ref),
            "reference": nullable("string"), "location": nullable("string"), "gtin": nullable("string"), "lot": nullable("string"),
            "expected": nullable("integer"), "actual": nullable("integer"), "message": string(),
            "comments": array(object(&["at", "author", "text"], json!({"at": time(), "author": string(), "text": string()}))),
            "resolution": {"oneOf": [resolution, {"type": "null"}]},
        })),
        "Discrepancies": object(&["discrepancies"], json!({"discrepancies": array(reference("Discrepancy"))})),
        // Reports and replenishment (issue 9).
        "ProductivityReport": object(&["by_operator", "by_device", "gate_passes"], json!({
            "by_operator": array(work_row.clone()), "by_device": array(work_row),
            "gate_passes": array(object(&["hour", "passes"], json!({"hour": time(), "passes": count()}))),
        })),
        "DockToStockReport": object(&["days", "total"], json!({"days": array(dock_day.clone()), "total": dock_day})),
        "InventoryReport": object(&["as_of", "rows", "items", "total_value"], json!({
            "as_of": time(),
            "rows": array(object(&["location", "gtin", "lot", "qty", "unit_cost", "value"], json!({
                "location": string(), "gtin": string(), "lot": nullable("string"), "qty": {"type": "integer"},
                "unit_cost": nullable("integer"), "value": nullable("integer"),
            }))),
            "items": array(object(&["gtin", "qty", "value"], json!({"gtin": string(), "qty": {"type": "integer"}, "value": nullable("integer")}))),
            "total_value": {"type": "integer"},
        })),
        "TurnoverReport": object(&["items"], json!({"items": array(object(
            &["gtin", "opening", "closing", "out_units", "average_stock", "turnover", "days_of_supply"],
            json!({
                "gtin": string(), "opening": {"type": "integer"}, "closing": {"type": "integer"}, "out_units": count(),
                "average_stock": {"type": "number"}, "turnover": nullable("number"), "days_of_supply": nullable("number"),
            }),
        ))})),
        "ExpiryReport": object(&["date", "days", "rows", "locations"], json!({
            "date": date(), "days": count(),
            "rows": array(object(&["location", "gtin", "lot", "expiry", "qty", "days_left"], json!({
                "location": string(), "gtin": string(), "lot": nullable("string"), "expiry": string(),
                "qty": {"type": "integer"}, "days_left": nullable("integer"),
            }))),
            "locations": array(object(&["location", "qty"], json!({"location": string(), "qty": {"type": "integer"}}))),
        })),
        "ReorderRule": object(&["site", "gtin", "reorder_point", "reorder_qty", "max"], json!({
            "site": string(), "gtin": string(), "reorder_point": count(),
            "reorder_qty": nullable("integer"), "max": nullable("integer"),
        })),
        "ReorderRuleBody": closed(&["reorder_point"], json!({
            "reorder_point": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000, "description": "reorder when available stock is below this"},
            "reorder_qty": or_null(json!({"type": "integer", "minimum": 1, "maximum": 1_000_000_000, "description": "fixed order quantity; exactly one of reorder_qty and max"})),
            "max": or_null(json!({"type": "integer", "minimum": 1, "maximum": 1_000_000_000, "description": "order up to this level (min/max), at least reorder_point"})),
        })),
        "Suggestions": object(&["suggestions"], json!({"suggestions": array(object(
            &["site", "gtin", "available", "reorder_point", "suggested_qty"],
            json!({"site": string(), "gtin": string(), "available": {"type": "integer"}, "reorder_point": count(), "suggested_qty": count()}),
        ))})),
        "CommentBody": closed(&["author", "text"], json!({
            "author": text(1, 64),
            "text": text(1, 4000),
        })),
        "ResolveBody": {
            "oneOf": [
                closed(&["type", "location", "gtin", "delta", "reason"], json!({
                    "type": {"const": "adjust"}, "location": location_code, "gtin": any_gtin,
                    "lot": or_null(lot), "delta": {"type": "integer", "minimum": -1_000_000_000, "maximum": 1_000_000_000, "not": {"const": 0}},
                    "reason": text(1, 500),
                })),
                closed(&["type", "reason"], json!({"type": {"const": "accepted"}, "reason": text(1, 500)})),
            ],
            "discriminator": {"propertyName": "type"},
        },
        "NewWebhook": closed(&["url", "events"], json!({
            "url": {"type": "string", "pattern": "^https?://", "maxLength": 2048, "description": "http:// or https://, no credentials"},
            "events": {"type": "array", "minItems": 1, "items": webhook_kind.clone()},
            "description": text(0, 200),
        })),
        "WebhookCreated": object(&["id", "url", "events", "description", "created_at", "secret"], json!({
            "id": string(), "url": string(), "events": array(webhook_kind.clone()), "description": string(), "created_at": time(),
            "secret": {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "the HMAC key; shown once"},
        })),
        "Webhooks": object(&["webhooks"], json!({"webhooks": array(object(
            &["id", "url", "events", "description", "created_at", "pending", "failed", "delivered", "last_success_at", "last_error"],
            json!({
                "id": string(), "url": string(), "events": array(webhook_kind.clone()), "description": string(), "created_at": time(),
                "pending": count(), "failed": count(), "delivered": count(),
                "last_success_at": {"type": ["string", "null"], "format": "date-time"},
                "last_error": {"type": ["string", "null"], "description": "the last failed attempt's error, null once one succeeds"},
            }),
        ))})),
        "WebhookDeleted": object(&["deleted"], json!({"deleted": string()})),
        "WebhookDelivery": webhook_delivery.clone(),
        "WebhookDeliveries": object(&["deliveries"], json!({"deliveries": array(webhook_delivery)})),
        "EpcisDocument": {
            "type": "object",
            "description": "a GS1 EPCIS 2.0 JSON-LD document (EPCISDocument); its events follow the EPCIS 2.0 JSON schema",
            "required": ["@context", "type", "schemaVersion", "creationDate", "epcisBody"],
            "properties": {
                "@context": {"type": "array", "minItems": 1, "items": {"type": ["string", "object"]}},
                "type": {"const": "EPCISDocument"},
                "schemaVersion": {"const": "2.0"},
                "creationDate": time(),
                "epcisBody": {
                    "type": "object", "required": ["eventList"], "additionalProperties": true,
                    "properties": {"eventList": array(json!({"type": "object", "required": ["type", "eventID", "eventTime"], "properties": {"type": {"const": "ObjectEvent"}}, "additionalProperties": true}))},
                },
            },
            "additionalProperties": true,
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
            for status in statuses(&route).into_iter().filter(|s| *s >= 400) {
                let known = ERROR_CODES.iter().any(|(s, _, _)| *s == status);
                assert!(
                    known,
                    "{} {}: no shared response for {status}",
                    route.method, route.path
                );
            }
        }
    }

    #[test]
    fn operation_id_table() {
        let cases = [
            ("get", "/v1/pick-lists/{id}", "getPickListsId"),
            ("get", "/v1/openapi.json", "getOpenapiJson"),
            ("get", "/metrics", "getMetrics"),
            ("post", "/v1/sync/push", "postSyncPush"),
        ];
        for (method, path, want) in cases {
            assert_eq!(operation_id(method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn param_schema_table() {
        let cases: &[(&str, &str, &str, Value)] = &[
            (
                "limit",
                "integer",
                "page size, 1..=1000, default 100",
                json!({"type": "integer", "minimum": 1, "maximum": 1000}),
            ),
            (
                "after",
                "integer",
                "the previous page's `next`",
                json!({"type": "integer", "minimum": 0}),
            ),
            (
                "status",
                "string",
                "open | closed | cancelled",
                json!({"type": "string", "enum": ["open", "closed", "cancelled"]}),
            ),
            (
                "since",
                "string",
                "RFC 3339: device time >= since",
                json!({"type": "string", "format": "date-time"}),
            ),
            (
                "site",
                "string",
                "only this site",
                json!({"type": "string", "pattern": NAME}),
            ),
            (
                "lot",
                "string",
                "only this lot",
                json!({"type": "string", "pattern": LOT}),
            ),
            // Not a pure list of words: prose stays prose.
            (
                "after",
                "string",
                "the GTIN-14 of the previous page's `next`",
                json!({"type": "string", "pattern": GTIN}),
            ),
            (
                "location",
                "string",
                "only movements leaving or entering this location",
                json!({"type": "string", "pattern": LOCATION}),
            ),
        ];
        for (name, ty, doc, want) in cases {
            assert_eq!(&param_schema(name, ty, doc), want, "{name}: {doc}");
        }
    }

    #[test]
    fn statuses_follow_auth_and_body() {
        let by_path = |method: &str, path: &str| {
            let route = table()
                .into_iter()
                .find(|r| r.method == method && r.path == path)
                .unwrap();
            statuses(&route)
        };
        let cases: &[(&str, &str, &[u16])] = &[
            ("get", "/v1/health", &[200]),
            ("get", "/metrics", &[200, 401]),
            (
                "post",
                "/v1/sync/push",
                &[200, 400, 401, 403, 409, 413, 503],
            ),
            ("put", "/v1/items/{gtin}", &[200, 201, 400, 401, 413, 503]),
        ];
        for (method, path, want) in cases {
            assert_eq!(by_path(method, path), *want, "{method} {path}");
        }
    }
}
