//! `GET /v1/epcis/events`: the EPCIS 2.0 export, through `app(state)` with `tower::ServiceExt::oneshot`.
//!
//! Every document a test receives is validated against GS1's EPCIS 2.0 JSON Schema (draft-07, formats checked).
//! The schema is not in the repository: `bash server/tests/epcis-schema/fetch.sh` puts it in
//! `target/epcis-schema/` (`.ci/run` runs it first, and these tests run it themselves when the file is missing).
//! A schema that cannot be had is a test failure naming that command, never a skip.
//!
//! - the schema check itself: it accepts a real export and rejects documents broken in the ways that matter;
//! - `event_shape_table`: one line per movement kind and variant (lot, serials, SSCC, GLN or not, measured item);
//! - paging and filters: following `Link: rel="next"` visits every event once in commit order; site, since/until;
//! - eventID stability: two calls; two server nodes on one PostgreSQL database; sled against PostgreSQL
//!   (a throw-away cluster from `pg/mod.rs`);
//! - bad input: garbage, oversized, out-of-range, unknown and repeated parameters are 400s naming the parameter;
//!   every office credential rule holds.

mod pg;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use dockhand_protocol::sync::{Item, Location, Movement, MovementKind, MovementSource};
use dockhand_server::{app, AdminToken, AppState, Devices, PgStore, SledStore, Store};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;
use tower::ServiceExt;

const ADMIN: &str = "admin-secret";
const GTIN: &str = "09506000134352";
/// An item whose master-data unit is kilograms.
const GTIN_KG: &str = "05901234123457";
const SSCC: &str = "106141411234567897";
/// GLNs with valid check digits, on DOCK-1 and A-02 of WH1; A-01 has none.
const GLN_DOCK: &str = "9506000000015";
const GLN_A02: &str = "9506000000022";
const DOCK: &str = "https://id.gs1.org/414/9506000000015";
const A01: &str = "https://dockhand.example/loc/WH1/A-01";
const A02: &str = "https://id.gs1.org/414/9506000000022";
const T0: OffsetDateTime = datetime!(2026-11-26 08:00:00 +01:00);

// ---------------------------------------------------------------------------------------------------------------
// The schema.

/// Where fetch.sh puts the schema: `$DOCKHAND_EPCIS_SCHEMA`, else `<repository>/target/epcis-schema/`.
fn schema_path() -> PathBuf {
    match std::env::var_os("DOCKHAND_EPCIS_SCHEMA") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/epcis-schema/EPCIS-JSON-Schema.json"),
    }
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let path = schema_path();
        if !path.exists() && std::env::var_os("DOCKHAND_EPCIS_SCHEMA").is_none() {
            // First run on this checkout: fetch it, so `cargo test --workspace` alone is enough on a fresh machine.
            let script =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/epcis-schema/fetch.sh");
            let status = std::process::Command::new("bash").arg(&script).status();
            eprintln!("fetching the EPCIS 2.0 JSON Schema with {}: {status:?}", script.display());
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "GS1's EPCIS 2.0 JSON Schema is not at {} ({e}). These tests validate every export against it: \
                 fetch it with `bash server/tests/epcis-schema/fetch.sh` (needs npm; .ci/run does this), or set \
                 DOCKHAND_EPCIS_SCHEMA to a copy of EPCIS-JSON-Schema.json.",
                path.display()
            )
        });
        let schema: Value = serde_json::from_str(&text).expect("the schema file is JSON");
        // The draft decides the keywords' meaning; the crate is asked for exactly this one.
        assert_eq!(
            schema["$schema"], "http://json-schema.org/draft-07/schema#",
            "{} declares another JSON Schema draft",
            path.display()
        );
        jsonschema::draft7::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the EPCIS schema compiles")
    })
}

/// The schema's complaints about `doc`, one line each.
fn schema_errors(doc: &Value) -> Vec<String> {
    validator()
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn assert_valid(doc: &Value) {
    let errors = schema_errors(doc);
    assert!(
        errors.is_empty(),
        "not a valid EPCIS 2.0 document:\n{}\n{doc:#}",
        errors.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Fixture.

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    store: Arc<dyn Store>,
}

fn state(store: Arc<dyn Store>, dir: &std::path::Path) -> AppState {
    let devices = Arc::new(Devices::open(&dir.join("devices")).unwrap());
    AppState::new(store, devices, AdminToken::from_secret(ADMIN))
}

/// A sled store with WH1's locations and the two items.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(&dir.path().join("sled"), 8 << 20).unwrap());
    master_data(&*store);
    Fixture {
        app: app(state(store.clone(), dir.path())),
        store,
        _dir: dir,
    }
}

fn master_data(store: &dyn Store) {
    let loc = |code: &str, gln: Option<&str>| Location {
        code: code.into(),
        gln: gln.map(Into::into),
        zone: None,
        active: true,
    };
    store
        .put_locations(
            "WH1",
            &[
                loc("DOCK-1", Some(GLN_DOCK)),
                loc("A-01", None),
                loc("A-02", Some(GLN_A02)),
            ],
        )
        .unwrap();
    let item = |gtin: &str, unit: &str| Item {
        gtin: gtin.into(),
        description: "test item".into(),
        unit: unit.into(),
        lot_tracked: false,
        expiry_tracked: false,
        serial_tracked: false,
        active: true,
        unit_cost: None,
    };
    store
        .put_items(&[item(GTIN, "EA"), item(GTIN_KG, "KGM")])
        .unwrap();
}

fn mv(
    device: &str,
    seq: u64,
    kind: MovementKind,
    from: Option<&str>,
    to: Option<&str>,
) -> Movement {
    Movement {
        device_id: device.into(),
        seq,
        at: T0 + time::Duration::minutes(seq as i64),
        kind,
        gtin: GTIN.into(),
        lot: None,
        expiry: None,
        serials: vec![],
        qty: 5,
        from_location: from.map(Into::into),
        to_location: to.map(Into::into),
        sscc: None,
        reference: None,
        operator: Some("op7".into()),
        source: MovementSource::Manual,
    }
}

fn push(store: &dyn Store, site: &str, device: &str, movements: &[Movement]) {
    let outcome = store.push(site, device, movements).unwrap();
    assert!(
        matches!(outcome, dockhand_server::PushOutcome::Acked { .. }),
        "{outcome:?}"
    );
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn get(app: &Router, uri: &str, token: Option<&str>) -> Answer {
    let mut req = Request::builder().method("GET").uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "GET {uri}: body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    Answer {
        status,
        headers,
        body,
    }
}

/// An export that must succeed; its document is checked against the schema.
async fn export(app: &Router, uri: &str) -> Answer {
    let answer = get(app, uri, Some(ADMIN)).await;
    assert_eq!(answer.status, StatusCode::OK, "GET {uri}: {}", answer.body);
    assert_valid(&answer.body);
    answer
}

fn events(doc: &Value) -> &Vec<Value> {
    doc["epcisBody"]["eventList"].as_array().expect("eventList")
}

/// The `after` of the next page, from the `Link` header, checked against `Dockhand-Next-After`.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().unwrap();
    let url = link
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix(">; rel=\"next\""))
        .unwrap_or_else(|| panic!("Link header {link:?}"));
    let after = headers["dockhand-next-after"].to_str().unwrap();
    assert!(url.ends_with(&format!("&after={after}")), "{url} / {after}");
    Some(url.to_string())
}

/// Follows `Link` from `uri` to the last page; the events of all pages, and the page sizes.
async fn all_pages(app: &Router, uri: &str) -> (Vec<Value>, Vec<usize>) {
    let (mut all, mut sizes) = (Vec::new(), Vec::new());
    let mut next = Some(uri.to_string());
    while let Some(uri) = next {
        let answer = export(app, &uri).await;
        sizes.push(events(&answer.body).len());
        all.extend(events(&answer.body).iter().cloned());
        next = next_link(&answer.headers);
        assert!(sizes.len() < 100, "paging does not end");
    }
    (all, sizes)
}

// ---------------------------------------------------------------------------------------------------------------
// The schema check itself.

/// Guards against a validator that accepts anything (a wrong draft, formats not checked): a real export passes,
/// and each break below, one per line, fails.
#[tokio::test]
async fn the_schema_check_accepts_an_export_and_rejects_broken_documents() {
    let f = fixture();
    let mut m = mv("hh-01", 1, MovementKind::Receive, None, Some("DOCK-1"));
    m.serials = vec!["S1".into()];
    m.qty = 2;
    push(&*f.store, "WH1", "hh-01", &[m]);
    let doc = export(&f.app, "/v1/epcis/events").await.body;

    type Break = fn(&mut Value);
    let cases: &[(&str, Break)] = &[
        ("no @context", |d| {
            d.as_object_mut().unwrap().remove("@context");
        }),
        ("wrong document type", |d| {
            d["type"] = "EPCISQueryDocument".into()
        }),
        ("no creationDate", |d| {
            d.as_object_mut().unwrap().remove("creationDate");
        }),
        ("creationDate not a date-time", |d| {
            d["creationDate"] = "yesterday".into()
        }),
        ("action not in the enum", |d| {
            d["epcisBody"]["eventList"][0]["action"] = "ADDED".into()
        }),
        ("bizStep neither CBV word nor URI", |d| {
            d["epcisBody"]["eventList"][0]["bizStep"] = "relocating".into()
        }),
        ("offset beyond +14:00", |d| {
            d["epcisBody"]["eventList"][0]["eventTimeZoneOffset"] = "+15:00".into()
        }),
        ("epcList entry not a URI", |d| {
            d["epcisBody"]["eventList"][0]["epcList"][0] = "S1".into()
        }),
        ("epcList entry twice", |d| {
            let first = d["epcisBody"]["eventList"][0]["epcList"][0].clone();
            d["epcisBody"]["eventList"][0]["epcList"]
                .as_array_mut()
                .unwrap()
                .push(first);
        }),
        ("uom not a Rec 20 code", |d| {
            d["epcisBody"]["eventList"][0]["quantityList"][0]["uom"] = "kg".into()
        }),
        ("readPoint without id", |d| {
            d["epcisBody"]["eventList"][0]["readPoint"] = json!({})
        }),
        ("unprefixed extension field", |d| {
            d["epcisBody"]["eventList"][0]["device id"] = "hh-01".into()
        }),
    ];
    for (name, brk) in cases {
        let mut broken = doc.clone();
        brk(&mut broken);
        assert!(!schema_errors(&broken).is_empty(), "{name}: accepted");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Event shapes.

struct Shape {
    name: &'static str,
    kind: MovementKind,
    from: Option<&'static str>,
    to: Option<&'static str>,
    edit: fn(&mut Movement),
    /// bizStep, disposition, readPoint, bizLocation, epcList, quantityList, bizTransactionList (null = absent).
    want: Value,
}

fn no_edit(_: &mut Movement) {}

/// One line per movement kind and variant; every movement is pushed, exported in one document, and each event
/// compared with its line. The document as a whole passes the schema.
#[tokio::test]
async fn event_shape_table() {
    use MovementKind as K;
    let class = |suffix: &str| format!("https://id.gs1.org/01/{GTIN}{suffix}");
    let cases = vec![
        Shape {
            name: "blind receipt at a GLN location",
            kind: K::Receive,
            from: None,
            to: Some("DOCK-1"),
            edit: no_edit,
            want: json!(["receiving", "sellable_not_accessible", DOCK, DOCK, null,
                         [{"epcClass": class(""), "quantity": 5}], null]),
        },
        Shape {
            name: "receipt of a lot on a pallet against an ASN",
            kind: K::Receive,
            from: None,
            to: Some("DOCK-1"),
            edit: |m| {
                m.lot = Some("LOT-7".into());
                m.sscc = Some(SSCC.into());
                m.reference = Some("ASN-1".into());
            },
            want: json!(["receiving", "sellable_not_accessible", DOCK, DOCK,
                         [format!("https://id.gs1.org/00/{SSCC}")],
                         [{"epcClass": class("/10/LOT-7"), "quantity": 5}],
                         [{"type": "desadv", "bizTransaction": "https://dockhand.example/doc/ASN-1"}]]),
        },
        Shape {
            name: "serialised receipt at a location without GLN",
            kind: K::Receive,
            from: None,
            to: Some("A-01"),
            edit: |m| {
                m.serials = vec!["S1".into(), "S2".into()];
                m.qty = 2;
            },
            want: json!([
                "receiving",
                "sellable_not_accessible",
                A01,
                A01,
                [class("/21/S1"), class("/21/S2")],
                null,
                null
            ]),
        },
        Shape {
            name: "put-away from the dock to a private location",
            kind: K::Putaway,
            from: Some("DOCK-1"),
            to: Some("A-01"),
            edit: no_edit,
            want: json!(["storing", "sellable_not_accessible", A01, A01, null,
                         [{"epcClass": class(""), "quantity": 5}], null]),
        },
        Shape {
            name: "put-away of a pallet",
            kind: K::Putaway,
            from: Some("DOCK-1"),
            to: Some("A-02"),
            edit: |m| m.sscc = Some(SSCC.into()),
            want: json!(["storing", "sellable_not_accessible", A02, A02,
                         [format!("https://id.gs1.org/00/{SSCC}")],
                         [{"epcClass": class(""), "quantity": 5}], null]),
        },
        Shape {
            name: "move between locations, lot",
            kind: K::Move,
            from: Some("A-01"),
            to: Some("A-02"),
            edit: |m| m.lot = Some("L1".into()),
            want: json!(["storing", "sellable_not_accessible", A02, A02, null,
                         [{"epcClass": class("/10/L1"), "quantity": 5}], null]),
        },
        Shape {
            name: "pick against a pick list",
            kind: K::Pick,
            from: Some("A-01"),
            to: None,
            edit: |m| {
                m.lot = Some("L1".into());
                m.reference = Some("PL-9".into());
            },
            want: json!(["picking", null, A01, null, null,
                         [{"epcClass": class("/10/L1"), "quantity": 5}],
                         [{"bizTransaction": "https://dockhand.example/doc/PL-9"}]]),
        },
        Shape {
            name: "serialised pick from a GLN location",
            kind: K::Pick,
            from: Some("A-02"),
            to: None,
            edit: |m| {
                m.serials = vec!["S9".into()];
                m.qty = 1;
            },
            want: json!(["picking", null, A02, null, [class("/21/S9")], null, null]),
        },
        Shape {
            name: "shipment of a pallet",
            kind: K::Ship,
            from: Some("DOCK-1"),
            to: None,
            edit: |m| m.sscc = Some(SSCC.into()),
            want: json!(["shipping", "in_transit", DOCK, null,
                         [format!("https://id.gs1.org/00/{SSCC}")],
                         [{"epcClass": class(""), "quantity": 5}], null]),
        },
        Shape {
            name: "count",
            kind: K::Count,
            from: None,
            to: Some("A-02"),
            edit: |m| m.qty = 4,
            want: json!(["cycle_counting", null, A02, A02, null,
                         [{"epcClass": class(""), "quantity": 4}], null]),
        },
        Shape {
            name: "count of nothing",
            kind: K::Count,
            from: None,
            to: Some("A-01"),
            edit: |m| m.qty = 0,
            want: json!(["cycle_counting", null, A01, A01, null,
                         [{"epcClass": class(""), "quantity": 0}], null]),
        },
        Shape {
            name: "serialised count",
            kind: K::Count,
            from: None,
            to: Some("A-01"),
            edit: |m| {
                m.serials = vec!["S1".into(), "S2".into()];
                m.qty = 2;
            },
            want: json!([
                "cycle_counting",
                null,
                A01,
                A01,
                [class("/21/S1"), class("/21/S2")],
                null,
                null
            ]),
        },
        Shape {
            name: "adjust in",
            kind: K::Adjust,
            from: None,
            to: Some("A-01"),
            edit: no_edit,
            want: json!(["stock_taking", "sellable_not_accessible", A01, A01, null,
                         [{"epcClass": class(""), "quantity": 5}], null]),
        },
        Shape {
            name: "adjust out of a GLN location",
            kind: K::Adjust,
            from: Some("A-02"),
            to: None,
            edit: |m| m.lot = Some("L1".into()),
            want: json!(["stock_taking", "unknown", A02, null, null,
                         [{"epcClass": class("/10/L1"), "quantity": 5}], null]),
        },
        Shape {
            name: "receipt of a measured item",
            kind: K::Receive,
            from: None,
            to: Some("DOCK-1"),
            edit: |m| {
                m.gtin = GTIN_KG.into();
                m.qty = 12;
            },
            want: json!(["receiving", "sellable_not_accessible", DOCK, DOCK, null,
                         [{"epcClass": format!("https://id.gs1.org/01/{GTIN_KG}"), "quantity": 12, "uom": "KGM"}],
                         null]),
        },
        Shape {
            name: "receipt at a location the site does not know",
            kind: K::Receive,
            from: None,
            to: Some("NEW 1"),
            edit: no_edit,
            want: json!(["receiving", "sellable_not_accessible",
                         "https://dockhand.example/loc/WH1/NEW%201", "https://dockhand.example/loc/WH1/NEW%201",
                         null, [{"epcClass": class(""), "quantity": 5}], null]),
        },
    ];

    let f = fixture();
    let movements: Vec<Movement> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut m = mv("hh-01", i as u64 + 1, c.kind, c.from, c.to);
            (c.edit)(&mut m);
            m.validate().unwrap_or_else(|e| panic!("{}: {e}", c.name));
            m
        })
        .collect();
    push(&*f.store, "WH1", "hh-01", &movements);
    let doc = export(&f.app, "/v1/epcis/events").await.body;
    assert_eq!(doc["type"], "EPCISDocument");
    assert_eq!(doc["schemaVersion"], "2.0");
    assert_eq!(
        doc["@context"][0],
        "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
    );
    assert!(doc["@context"][1]["dh"].is_string(), "{}", doc["@context"]);
    let list = events(&doc);
    assert_eq!(list.len(), cases.len());
    for ((case, m), e) in cases.iter().zip(&movements).zip(list) {
        let got = json!([
            e["bizStep"],
            e["disposition"],
            e["readPoint"]["id"],
            e["bizLocation"]["id"],
            e["epcList"],
            e["quantityList"],
            e["bizTransactionList"],
        ]);
        assert_eq!(got, case.want, "{}: {e:#}", case.name);
        assert_eq!(e["type"], "ObjectEvent", "{}", case.name);
        assert_eq!(e["action"], "OBSERVE", "{}", case.name);
        // Device time with the device's offset; the extension fields map the event back to the movement.
        let at =
            m.at.format(&time::format_description::well_known::Rfc3339)
                .unwrap();
        let from = m.from_location.as_deref().map_or(Value::Null, Value::from);
        let to = m.to_location.as_deref().map_or(Value::Null, Value::from);
        assert_eq!(
            json!([
                e["eventTime"],
                e["eventTimeZoneOffset"],
                e["dh:site"],
                e["dh:deviceID"],
                e["dh:seq"],
                e["dh:movementKind"],
                e["dh:fromLocation"],
                e["dh:toLocation"]
            ]),
            json!([
                at,
                "+01:00",
                "WH1",
                "hh-01",
                m.seq,
                m.kind.as_str(),
                from,
                to
            ]),
            "{}",
            case.name
        );
        assert!(e["recordTime"].is_string(), "{}", case.name);
        assert!(
            e["eventID"].as_str().unwrap().starts_with("urn:uuid:"),
            "{}",
            case.name
        );
        // Who scanned stays in the building.
        assert!(!e.to_string().contains("op7"), "{}: {e}", case.name);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Paging and filters.

/// 25 movements at WH1 (hh-01) interleaved with 10 at WH2 (rf-01), one minute apart per device.
fn paging_fixture() -> Fixture {
    let f = fixture();
    let mut hh = 1;
    let mut rf = 1;
    for round in 0..35u64 {
        if round % 7 == 3 || round % 7 == 6 {
            let m = mv("rf-01", rf, MovementKind::Receive, None, Some("R-1"));
            push(&*f.store, "WH2", "rf-01", &[m]);
            rf += 1;
        } else {
            let m = mv("hh-01", hh, MovementKind::Receive, None, Some("DOCK-1"));
            push(&*f.store, "WH1", "hh-01", &[m]);
            hh += 1;
        }
    }
    assert_eq!((hh - 1, rf - 1), (25, 10));
    f
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["eventID"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn following_next_links_visits_every_event_once_in_commit_order() {
    let f = paging_fixture();
    let whole = export(&f.app, "/v1/epcis/events?limit=1000").await;
    assert!(whole.headers.get("link").is_none(), "one page holds all 35");
    let everything = events(&whole.body).clone();
    assert_eq!(everything.len(), 35);

    let (paged, sizes) = all_pages(&f.app, "/v1/epcis/events?limit=10").await;
    assert_eq!(sizes, [10, 10, 10, 5]);
    assert_eq!(ids(&paged), ids(&everything), "same events, same order");
    let mut unique = ids(&paged);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 35, "every eventID distinct");

    // Commit order is push order: per device the seqs ascend.
    let seqs = |device: &str| -> Vec<u64> {
        paged
            .iter()
            .filter(|e| e["dh:deviceID"] == device)
            .map(|e| e["dh:seq"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(seqs("hh-01"), (1..=25).collect::<Vec<_>>());
    assert_eq!(seqs("rf-01"), (1..=10).collect::<Vec<_>>());

    // The default page is 100; past the end is an empty, valid document without a next link.
    let default = export(&f.app, "/v1/epcis/events").await;
    assert_eq!(events(&default.body).len(), 35);
    let past = export(&f.app, "/v1/epcis/events?after=1000000").await;
    assert!(events(&past.body).is_empty());
    assert!(past.headers.get("link").is_none());
    let top = export(&f.app, &format!("/v1/epcis/events?after={}", u64::MAX)).await;
    assert!(events(&top.body).is_empty());

    // EPCIS 2.0 REST binding headers.
    assert_eq!(default.headers["content-type"], "application/ld+json");
    assert_eq!(default.headers["gs1-epcis-version"], "2.0.0");
    assert_eq!(default.headers["gs1-cbv-version"], "2.0.0");
}

#[tokio::test]
async fn filters_hold_across_pages() {
    let f = paging_fixture();
    // (query, expected (device, seq) pairs)
    let t = |minutes: i64| {
        (T0 + time::Duration::minutes(minutes))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
            .replace('+', "%2B")
            .replace(':', "%3A")
    };
    let cases: Vec<(String, Vec<(&str, u64)>)> = vec![
        (
            "site=WH2&limit=4".into(),
            (1..=10).map(|s| ("rf-01", s)).collect(),
        ),
        (
            format!("site=WH1&since={}&limit=3", t(20)),
            (20..=25).map(|s| ("hh-01", s)).collect(),
        ),
        (
            // since inclusive, until exclusive, on device time; both devices' clocks run from T0.
            format!("since={}&until={}&limit=2", t(9), t(11)),
            vec![("hh-01", 9), ("rf-01", 9), ("hh-01", 10), ("rf-01", 10)],
        ),
        (format!("until={}", t(1)), vec![]),
        ("site=WH3".into(), vec![]),
    ];
    for (query, want) in cases {
        let (list, _) = all_pages(&f.app, &format!("/v1/epcis/events?{query}")).await;
        let mut got: Vec<(String, u64)> = list
            .iter()
            .map(|e| {
                (
                    e["dh:deviceID"].as_str().unwrap().to_string(),
                    e["dh:seq"].as_u64().unwrap(),
                )
            })
            .collect();
        got.sort();
        let mut want: Vec<(String, u64)> = want.iter().map(|(d, s)| (d.to_string(), *s)).collect();
        want.sort();
        assert_eq!(got, want, "{query}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// eventID stability.

#[tokio::test]
async fn two_calls_give_the_same_events() {
    let f = paging_fixture();
    let first = export(&f.app, "/v1/epcis/events?limit=50").await.body;
    let second = export(&f.app, "/v1/epcis/events?limit=50").await.body;
    // Everything but the document's own creation time is the same.
    assert_eq!(events(&first), events(&second));
    assert_eq!(first["@context"], second["@context"]);
}

/// The same movements on sled, and on PostgreSQL behind two server nodes sharing one database: the nodes give
/// identical events, and sled gives the same events but for `recordTime` (each store applied the movements at
/// its own moment).
#[test]
fn event_ids_agree_across_nodes_and_backends() {
    let movements: Vec<Movement> = (1..=12)
        .map(|seq| {
            let mut m = match seq % 4 {
                0 => mv("hh-01", seq, MovementKind::Pick, Some("A-02"), None),
                1 => mv("hh-01", seq, MovementKind::Receive, None, Some("DOCK-1")),
                2 => mv(
                    "hh-01",
                    seq,
                    MovementKind::Putaway,
                    Some("DOCK-1"),
                    Some("A-01"),
                ),
                _ => mv("hh-01", seq, MovementKind::Count, None, Some("A-01")),
            };
            if seq % 3 == 0 {
                m.lot = Some(format!("L{seq}"));
            }
            // Sub-microsecond device times survive both backends (the body is stored as sent).
            m.at += time::Duration::nanoseconds(123_456_789);
            m
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let sled: Arc<dyn Store> =
        Arc::new(SledStore::open(&dir.path().join("sled"), 8 << 20).unwrap());
    master_data(&*sled);
    push(&*sled, "WH1", "hh-01", &movements);

    // The synchronous PostgreSQL client must not be opened, used or dropped on an async worker: set up here,
    // before the runtime exists, and drop after it is gone.
    let db = pg::database();
    let node_a: Arc<dyn Store> = Arc::new(PgStore::open(&db.url(), 2).unwrap());
    let node_b: Arc<dyn Store> = Arc::new(PgStore::open(&db.cluster.tcp_url(&db.name), 2).unwrap());
    master_data(&*node_a);
    push(&*node_a, "WH1", "hh-01", &movements);

    let apps: Vec<Router> = [&sled, &node_a, &node_b]
        .into_iter()
        .map(|store| app(state(store.clone(), dir.path())))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let docs: Vec<Value> = runtime.block_on(async {
        let mut docs = Vec::new();
        for app in &apps {
            docs.push(export(app, "/v1/epcis/events?limit=5").await.body);
            // Paged the same way too.
            let (paged, _) = all_pages(app, "/v1/epcis/events?limit=5").await;
            assert_eq!(paged.len(), 12);
        }
        docs
    });
    drop(runtime);
    drop(apps);

    let without_record_time = |doc: &Value| -> Vec<Value> {
        events(doc)
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().unwrap().remove("recordTime");
                e
            })
            .collect()
    };
    assert_eq!(
        events(&docs[1]),
        events(&docs[2]),
        "two nodes, one database"
    );
    assert_eq!(
        without_record_time(&docs[0]),
        without_record_time(&docs[1]),
        "sled and PostgreSQL"
    );
    assert_eq!(events(&docs[0]).len(), 5);
    drop((sled, node_a, node_b));
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input and credentials.

#[tokio::test]
async fn bad_input_table() {
    let f = paging_fixture();
    let long = "9".repeat(5000);
    // (query string, field the 400 names)
    let cases: Vec<(String, &str)> = vec![
        ("limit=0".into(), "limit"),
        ("limit=1001".into(), "limit"),
        ("limit=-5".into(), "limit"),
        ("limit=ten".into(), "limit"),
        ("limit=99999999999999999999999999".into(), "limit"),
        (format!("limit={long}"), "limit"),
        ("after=x".into(), "after"),
        ("after=-1".into(), "after"),
        ("after=18446744073709551616".into(), "after"),
        ("after=1.5".into(), "after"),
        ("site=..%2Fetc".into(), "site"),
        (format!("site={}", "W".repeat(65)), "site"),
        ("site=W%20H".into(), "site"),
        ("since=yesterday".into(), "since"),
        ("since=2026-11-26".into(), "since"),
        ("until=2026-13-01T00%3A00%3A00Z".into(), "until"),
        (format!("until={long}"), "until"),
        (
            "since=2026-11-27T00%3A00%3A00Z&until=2026-11-26T00%3A00%3A00Z".into(),
            "until",
        ),
        ("cursor=3".into(), "cursor"),
        ("nextPageToken=3".into(), "nextPageToken"),
        ("limit=5&limit=6".into(), "limit"),
        ("site=WH1&site=WH2".into(), "site"),
        // Not UTF-8: decoded lossily, then refused as a site name.
        ("site=%FF".into(), "site"),
    ];
    for (query, field) in cases {
        let uri = format!("/v1/epcis/events?{query}");
        let answer = get(&f.app, &uri, Some(ADMIN)).await;
        let shown = &query[..query.len().min(60)];
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{shown}: {}",
            answer.body
        );
        assert_eq!(answer.body["error"]["code"], "bad_request", "{shown}");
        assert_eq!(
            answer.body["error"]["field"].as_str(),
            Some(field),
            "{shown}: {}",
            answer.body
        );
    }
    // Nothing above broke the route.
    assert_eq!(
        events(&export(&f.app, "/v1/epcis/events").await.body).len(),
        35
    );
}

#[tokio::test]
async fn only_the_office_may_export() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let token =
        dockhand_server::enroll(&dir.path().join("devices"), "hh-01", "WH1", false).unwrap();
    let state = state(f.store.clone(), dir.path());
    let app = app(state);
    for token in [None, Some("wrong"), Some(token.as_str())] {
        let answer = get(&app, "/v1/epcis/events", token).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(answer.body["error"]["code"], "unauthorized");
    }
    // An empty store exports an empty, valid document.
    let empty = export(&app, "/v1/epcis/events").await;
    assert!(events(&empty.body).is_empty());
}
