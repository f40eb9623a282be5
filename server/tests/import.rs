//! Imports of items, locations and ASNs (issue 9, scope 4): "a 10,000-row CSV imports in one call; a file with
//! bad rows changes nothing and reports each bad row".
//!
//! - `dry_run_*`: a dry run answers what the real import then does, and changes nothing (the store is read back).
//! - `bad_rows_*`: every bad row of a file is reported with its line (CSV) or index (JSON), nothing is written, and
//!   the list is capped for a file of garbage.
//! - `garbage_bodies_*`: garbage, truncated and oversized bodies get 400 or 413, never a 5xx, and change nothing.
//! - `ten_thousand_rows_*`: 10,000 items and a 10,000-line ASN file, each in one call, through the router on sled
//!   and on PostgreSQL (a throw-away cluster, `pg/mod.rs`), and over real HTTPS against the real server process.
//!   The time each takes is printed (`--nocapture` shows it); nothing asserts on it.
//! - `parsers_never_panic`: proptest feeds arbitrary bytes and mangled files to every import's parser and checks
//!   that each is accepted or refused with a well-formed report.

mod pg;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use dockhand_protocol::gs1::check::gs1_check_digit;
use dockhand_server::fuzzing::{office_body, Office};
use dockhand_server::import::{At, MAX_REPORTED};
use dockhand_server::{app, AdminToken, ApiError, AppState, Devices, PgStore, SledStore, Store};
use http_body_util::BodyExt;
use proptest::prelude::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const ADMIN: &str = "admin-secret";
const ITEM_HEAD: &str = "gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked\n";
const ASN_HEAD: &str = "asn_id,site,supplier,expected_on,sscc,gtin,lot,qty\n";
/// Body limit of the router fixtures: the server's default.
const LIMIT: usize = dockhand_server::state::DEFAULT_BODY_LIMIT;

struct Fixture {
    _dir: tempfile::TempDir,
    _db: Option<pg::TestDb>,
    app: Router,
    store: Arc<dyn Store>,
}

fn app_on(store: Arc<dyn Store>, dir: &Path) -> Router {
    let devices = Arc::new(Devices::open(&dir.join("devices")).unwrap());
    app(AppState::new(store, devices, AdminToken::from_secret(ADMIN)).with_body_limit(LIMIT))
}

fn sled() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(&dir.path().join("sled"), 8 << 20).unwrap());
    Fixture {
        app: app_on(store.clone(), dir.path()),
        _dir: dir,
        _db: None,
        store,
    }
}

fn postgres() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = pg::database();
    let store: Arc<dyn Store> = Arc::new(PgStore::open(&db.url(), 4).unwrap());
    Fixture {
        app: app_on(store.clone(), dir.path()),
        _dir: dir,
        _db: Some(db),
        store,
    }
}

impl Fixture {
    async fn post(&self, uri: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method("POST")
            .uri(uri)
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{uri}: not JSON ({e}): {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, value)
    }

    async fn csv(&self, uri: &str, text: &str) -> (StatusCode, Value) {
        self.post(uri, "text/csv", text.into()).await
    }

    async fn json(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.post(uri, "application/json", body.to_string().into_bytes())
            .await
    }

    /// `read` on a blocking thread: the PostgreSQL store's client must not block the async runtime's threads.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn Store) -> T + Send + 'static,
    ) -> T {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || read(store.as_ref()))
            .await
            .unwrap()
    }

    /// [`snapshot`] of the fixture's store.
    async fn snapshot(&self) -> Value {
        self.read(snapshot).await
    }
}

/// Everything an import can change.
fn snapshot(s: &dyn Store) -> Value {
    let locations: Vec<_> = ["WH1", "WH2"].map(|x| s.locations(x).unwrap()).into();
    let asns: Vec<_> = ["WH1", "WH2", "WH9"]
        .map(|x| s.asns(x, None).unwrap())
        .into();
    let pull: Vec<_> = ["WH1", "WH2"]
        .map(|x| s.pull(x, 0, 100_000).unwrap())
        .into();
    json!({
        "items": s.items(None, 100_000).unwrap(),
        "locations": locations,
        "asns": asns,
        "pull": pull,
    })
}

/// The `i`-th of a run of valid GTIN-13s (prefix 400638, then a counter, then the check digit).
fn gtin13(i: usize) -> String {
    let body = format!("400638{i:06}");
    format!("{body}{}", gs1_check_digit(&body).unwrap())
}

/// The `i`-th of a run of valid SSCCs.
fn sscc(i: usize) -> String {
    let body = format!("00614141{i:09}");
    format!("{body}{}", gs1_check_digit(&body).unwrap())
}

fn items_csv(n: usize) -> String {
    let mut text = String::from(ITEM_HEAD);
    for i in 0..n {
        text.push_str(&format!(
            "{},\"Item {i}, boxed\",EA,{},0,0\n",
            gtin13(i),
            i % 2
        ));
    }
    text
}

/// `asns` ASNs of `lines_each` lines; every other line sits on one of the ASN's two pallets.
fn asns_csv(asns: usize, lines_each: usize) -> String {
    let mut text = String::from(ASN_HEAD);
    for a in 0..asns {
        for l in 0..lines_each {
            let pallet = if l % 2 == 1 {
                sscc(a * 2 + l % 4 / 2)
            } else {
                String::new()
            };
            text.push_str(&format!(
                "ASN-{a:05},WH1,ACME,2026-12-01,{pallet},{},L{l},{}\n",
                gtin13(l),
                l + 1
            ));
        }
    }
    text
}

/// `(line or index, field)` of every reported error.
fn reported(body: &Value) -> Vec<(String, Value)> {
    body["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {body}"))
        .iter()
        .map(|r| match (&r["line"], &r["index"]) {
            (Value::Number(l), Value::Null) => (format!("line {l}"), r["column"].clone()),
            (Value::Null, Value::Number(i)) => (format!("index {i}"), r["field"].clone()),
            _ => panic!("a row error names a line or an index: {r}"),
        })
        .collect()
}

fn at(place: &str, field: Option<&str>) -> (String, Value) {
    (place.to_string(), field.map_or(Value::Null, |f| json!(f)))
}

// ---------------------------------------------------------------------------------------------------------------
// Dry runs

#[tokio::test]
async fn dry_run_answers_what_the_import_then_does_and_changes_nothing() {
    let f = sled();
    let asn_json = json!([
        {"id": "J-1", "site": "WH1", "supplier": "ACME", "lines": [{"gtin": gtin13(1), "qty": 3}]},
        {"id": "J-2", "site": "WH2", "pallets": [{"sscc": sscc(9), "lines": [{"gtin": gtin13(2), "lot": "L", "qty": 1}]}]},
    ]);
    // (uri, content type, body, rows it imports)
    let cases: Vec<(&str, &str, Vec<u8>, usize)> = vec![
        ("/v1/items/import", "text/csv", items_csv(25).into_bytes(), 25),
        (
            "/v1/items/import",
            "application/json",
            json!([{"gtin": gtin13(100), "description": "JSON item", "unit": "CS", "lot_tracked": true}])
                .to_string()
                .into_bytes(),
            1,
        ),
        (
            "/v1/sites/WH1/locations/import",
            "text/csv",
            b"code,gln,zone,active\nA-01,,Z1,\nA-02,0614141000005,,no\n".to_vec(),
            2,
        ),
        (
            "/v1/sites/WH2/locations/import",
            "application/json",
            br#"[{"code":"B-01","zone":"Z2"}]"#.to_vec(),
            1,
        ),
        ("/v1/asns/import", "text/csv", asns_csv(3, 4).into_bytes(), 3),
        (
            "/v1/asns/import",
            "application/json",
            asn_json.to_string().into_bytes(),
            2,
        ),
    ];
    for (uri, content_type, body, n) in cases {
        let before = f.snapshot().await;
        let (status, dry) = f
            .post(&format!("{uri}?dry_run=true"), content_type, body.clone())
            .await;
        assert_eq!(status, StatusCode::OK, "{uri} {content_type}: {dry}");
        assert_eq!(dry["dry_run"], true);
        assert_eq!(dry["would_import"], n, "{uri} {content_type}: {dry}");
        assert_eq!(dry.get("imported"), None, "{dry}");
        assert_eq!(
            f.snapshot().await,
            before,
            "{uri} {content_type}: a dry run wrote"
        );

        let (status, done) = f.post(uri, content_type, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{uri} {content_type}: {done}");
        assert_eq!(
            (done["dry_run"].clone(), done["imported"].clone()),
            (json!(false), json!(n))
        );
        assert_ne!(
            f.snapshot().await,
            before,
            "{uri} {content_type}: the import wrote nothing"
        );
    }

    // Read back what the files said.
    let item = f.store.item(&format!("0{}", gtin13(7))).unwrap().unwrap();
    assert_eq!(
        (item.description.as_str(), item.lot_tracked),
        ("Item 7, boxed", true)
    );
    let json_item = f.store.item(&format!("0{}", gtin13(100))).unwrap().unwrap();
    assert_eq!(
        (json_item.unit.as_str(), json_item.lot_tracked),
        ("CS", true)
    );
    let wh1: Vec<(String, bool)> = f
        .store
        .locations("WH1")
        .unwrap()
        .into_iter()
        .map(|l| (l.code, l.active))
        .collect();
    assert_eq!(
        wh1,
        [("A-01".to_string(), true), ("A-02".to_string(), false)]
    );
    let a1 = f.store.asn("ASN-00001").unwrap().unwrap();
    assert_eq!((a1.lines.len(), a1.pallets.len()), (2, 2));
    assert_eq!(a1.pallets[0].sscc, sscc(2));
    assert_eq!(a1.lines[1].lot.as_deref(), Some("L2"));
    assert_eq!(
        f.store.asn("J-2").unwrap().unwrap().pallets[0].lines[0].qty,
        1
    );

    // The same ASN file again: nothing new, all unchanged, nothing written.
    let before = f.snapshot().await;
    let (status, again) = f.csv("/v1/asns/import", &asns_csv(3, 4)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again,
        json!({"dry_run": false, "imported": 0, "unchanged": 3})
    );
    assert_eq!(f.snapshot().await, before);
}

// ---------------------------------------------------------------------------------------------------------------
// Bad rows

/// `(uri, content type, body, every (place, field) reported)`.
type BadFile = (&'static str, &'static str, String, Vec<(String, Value)>);

#[tokio::test]
async fn bad_rows_are_all_reported_and_nothing_is_written() {
    let f = sled();
    f.json(
        "/v1/asns",
        json!({"id": "TAKEN", "site": "WH1", "lines": [{"gtin": gtin13(1), "qty": 1}]}),
    )
    .await;
    let put = Request::builder()
        .method("PUT")
        .uri("/v1/sites/WH9")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"active":false}"#))
        .unwrap();
    assert_eq!(
        f.app.clone().oneshot(put).await.unwrap().status(),
        StatusCode::OK
    );

    let good = gtin13(3);
    let cases: Vec<BadFile> = vec![
        (
            "/v1/items/import",
            "text/csv",
            format!(
                "{ITEM_HEAD}{good},ok,EA,0,0,0\n\
                 1234,,E A,maybe,0,0\n\
                 \n\
                 {good},dup,EA,0,0,0\n\
                 {},\"quoted\nover two lines\",EA,0,0,0\n\
                 {},short,EA\n",
                gtin13(4),
                gtin13(5)
            ),
            vec![
                at("line 3", Some("gtin")),
                at("line 3", Some("description")),
                at("line 3", Some("unit")),
                at("line 3", Some("lot_tracked")),
                at("line 5", Some("gtin")),
                at("line 6", Some("description")),
                at("line 8", None),
            ],
        ),
        (
            "/v1/sites/WH1/locations/import",
            "application/json",
            json!([{"code": "A-01"}, {"code": " A"}, {"code": "B", "gln": "1", "zone": "Z 1"}, {"code": "A-01"}, "x"])
                .to_string(),
            vec![
                at("index 1", Some("code")),
                at("index 2", Some("gln")),
                at("index 2", Some("zone")),
                at("index 3", Some("code")),
                at("index 4", None),
            ],
        ),
        (
            "/v1/asns/import",
            "text/csv",
            format!(
                "{ASN_HEAD}NEW,WH1,ACME,,,{good},,1\n\
                 TAKEN,WH1,,,,{good},,1\n\
                 NEW,WH2,ACME,,,{good},,1\n\
                 OLD,WH9,,,,{good},,1\n\
                 BAD,WH1,,2026-02-30,{},{good},,0\n",
                "1".repeat(18)
            ),
            vec![
                at("line 4", Some("site")),
                at("line 6", Some("expected_on")),
                at("line 6", Some("sscc")),
                at("line 6", Some("qty")),
            ],
        ),
        (
            "/v1/asns/import",
            "text/csv",
            format!("{ASN_HEAD}NEW,WH1,ACME,,,{good},,1\nTAKEN,WH1,,,,{good},,1\nOLD,WH9,,,,{good},,1\n"),
            vec![at("line 3", Some("asn_id")), at("line 4", Some("site"))],
        ),
        (
            "/v1/asns/import",
            "application/json",
            json!([
                {"id": "NEW", "site": "WH1", "lines": [{"gtin": good, "qty": 1}]},
                {"id": "TAKEN", "site": "WH1", "lines": [{"gtin": good, "qty": 2}]},
                {"id": "X", "site": "WH1", "lines": [{"gtin": good, "qty": 1}], "pallets": [{"sscc": sscc(1), "lines": [{"gtin": "123", "qty": 1}]}]},
            ])
            .to_string(),
            vec![at("index 2", Some("pallets[0].lines[0].gtin"))],
        ),
    ];
    for (uri, content_type, body, want) in cases {
        for query in ["", "?dry_run=true"] {
            let before = f.snapshot().await;
            let (status, answer) = f
                .post(
                    &format!("{uri}{query}"),
                    content_type,
                    body.clone().into_bytes(),
                )
                .await;
            let name = format!("{uri}{query} {content_type}");
            assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {answer}");
            assert_eq!(reported(&answer), want, "{name}: {answer}");
            assert_eq!(answer["error_count"], want.len(), "{name}");
            assert_eq!(answer["truncated"], false, "{name}");
            assert_eq!(answer["error"]["code"], "bad_request");
            let first = &answer["rows"][0]["message"];
            assert!(
                answer["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(first.as_str().unwrap()),
                "{name}: the summary leads with the first error: {answer}"
            );
            assert_eq!(f.snapshot().await, before, "{name}: a refused file wrote");
        }
    }
}

#[tokio::test]
async fn bad_rows_of_a_garbage_file_are_counted_but_listed_only_up_to_the_cap() {
    let f = sled();
    let mut text = String::from(ITEM_HEAD);
    for i in 0..20_000 {
        text.push_str(&format!("{i},,,x,y,z\n"));
    }
    let (status, answer) = f.csv("/v1/items/import", &text).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["rows"].as_array().unwrap().len(), MAX_REPORTED);
    assert_eq!(answer["error_count"], 20_000 * 5);
    assert_eq!(answer["truncated"], true);
    assert_eq!(
        answer["rows"][0],
        json!({"line": 2, "column": "gtin", "message": answer["rows"][0]["message"]})
    );
    let size = answer.to_string().len();
    assert!(
        size < 256 * 1024,
        "a capped report stays small: {size} bytes"
    );
    assert_eq!(f.store.items(None, 10).unwrap(), vec![]);
}

// ---------------------------------------------------------------------------------------------------------------
// Garbage

#[tokio::test]
async fn garbage_bodies_are_400_or_413_and_change_nothing() {
    let f = sled();
    let items = items_csv(3);
    let cut = &items[..items.len() - 9];
    let asns = asns_csv(2, 2);
    let huge = vec![b'a'; LIMIT + 1];
    let mut noise = Vec::with_capacity(64 * 1024);
    let mut x: u32 = 0x1234_5678;
    for _ in 0..64 * 1024 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x as u8);
    }
    // (body, content type, status)
    let bodies: Vec<(Vec<u8>, &str, u16)> = vec![
        (noise.clone(), "text/csv", 400),
        (noise.clone(), "application/json", 400),
        (b"\xef\xbb\xbf".to_vec(), "text/csv", 400),
        (cut.as_bytes().to_vec(), "text/csv", 400),
        (
            asns.as_bytes()[..asns.len() / 2].to_vec(),
            "application/json",
            400,
        ),
        (b"[{\"gtin\":".to_vec(), "application/json", 400),
        (b"[1,2,3]".to_vec(), "application/json", 400),
        (b"\"a,b\nc".to_vec(), "text/csv", 400),
        (b"a,\"b\"c\n".to_vec(), "text/csv", 400),
        (vec![0; 1000], "text/csv", 400),
        (b"<xml/>".to_vec(), "application/xml", 400),
        (huge.clone(), "text/csv", 413),
        (huge, "application/json", 413),
    ];
    for uri in [
        "/v1/items/import",
        "/v1/sites/WH1/locations/import",
        "/v1/asns/import",
    ] {
        for (body, content_type, want) in &bodies {
            let before = f.snapshot().await;
            let (status, answer) = f.post(uri, content_type, body.clone()).await;
            assert_eq!(
                status.as_u16(),
                *want,
                "{uri} {content_type} {:?}: {answer}",
                String::from_utf8_lossy(&body[..body.len().min(40)])
            );
            assert!(answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
            assert_eq!(f.snapshot().await, before, "{uri}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes: every import parser answers Ok or a 400, and a report is well-formed: at most
    /// [`MAX_REPORTED`] rows, counted at least as many, CSV lines within the file, JSON indexes within the array.
    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(kind in 0..6usize, body in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_parser(IMPORTS[kind], &body);
    }

    /// Mangled real files: a valid file with bytes replaced, removed or inserted, reaching deeper than noise.
    #[test]
    fn parsers_never_panic_on_mangled_files(
        kind in 0..6usize,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..8),
    ) {
        let mut body = sample(IMPORTS[kind]).into_bytes();
        for (i, byte, op) in edits {
            let at = i.index(body.len().max(1)).min(body.len());
            match op {
                0 if at < body.len() => body[at] = byte,
                1 if at < body.len() => { body.remove(at); }
                _ => body.insert(at, byte),
            }
        }
        check_parser(IMPORTS[kind], &body);
    }
}

const IMPORTS: [Office; 6] = [
    Office::ItemsCsv,
    Office::LocationsCsv,
    Office::AsnsCsv,
    Office::ItemsJson,
    Office::LocationsJson,
    Office::AsnsJson,
];

fn sample(kind: Office) -> String {
    match kind {
        Office::ItemsCsv => items_csv(3),
        Office::LocationsCsv => "code,gln,zone,active\nA-01,0614141000005,Z1,yes\n\"B,\"\"1\",,,\n".into(),
        Office::AsnsCsv => asns_csv(2, 3),
        Office::ItemsJson => json!([{"gtin": gtin13(1), "description": "W", "unit": "CS", "lot_tracked": true}, {"gtin": gtin13(2), "description": "X"}]).to_string(),
        Office::LocationsJson => r#"[{"code":"A-01","gln":"0614141000005","zone":"Z1"},{"code":"B","active":false}]"#.into(),
        _ => json!([{"id": "A", "site": "WH1", "supplier": "S", "expected_on": "2026-12-01", "lines": [{"gtin": gtin13(1), "lot": "L", "qty": 2}], "pallets": [{"sscc": sscc(1), "lines": [{"gtin": gtin13(2), "qty": 1}]}]}]).to_string(),
    }
}

fn check_parser(kind: Office, body: &[u8]) {
    let result = office_body(kind, body);
    match &result {
        Ok(()) => {}
        Err(ApiError::BadRequest { message, .. }) => assert!(!message.is_empty()),
        Err(ApiError::BadRows(bad)) => {
            assert!(!bad.rows.is_empty() && bad.rows.len() <= MAX_REPORTED);
            assert!(bad.total >= bad.rows.len());
            let lines = body.iter().filter(|b| **b == b'\n').count() + 1;
            for r in &bad.rows {
                assert!(!r.message.is_empty(), "{kind:?}: {r:?}");
                match r.at {
                    At::Line(l) => {
                        assert!(kind.is_csv(), "{kind:?}: {r:?}");
                        assert!((1..=lines).contains(&l), "{kind:?}: line {l} of {lines}");
                    }
                    At::Index(i) => {
                        assert!(!kind.is_csv(), "{kind:?}: {r:?}");
                        let n = serde_json::from_slice::<Vec<Value>>(body).map(|v| v.len());
                        assert!(n.is_ok_and(|n| i < n), "{kind:?}: index {i}");
                    }
                }
            }
        }
        Err(other) => panic!("{kind:?}: an import is refused with 400, not {other:?}"),
    }
    assert_eq!(
        result.map_err(|e| e.to_string()),
        office_body(kind, body).map_err(|e| e.to_string()),
        "{kind:?} is deterministic"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 10,000 rows

async fn ten_thousand_rows(f: &Fixture, backend: &str) {
    let items = items_csv(10_000);
    let started = Instant::now();
    let (status, answer) = f.csv("/v1/items/import?dry_run=true", &items).await;
    let checked = started.elapsed();
    assert_eq!(
        (status, answer["would_import"].clone()),
        (StatusCode::OK, json!(10_000))
    );
    let started = Instant::now();
    let (status, answer) = f.csv("/v1/items/import", &items).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["imported"], 10_000);
    println!(
        "{backend}: 10,000-row items CSV ({} bytes) checked in {checked:.2?} (dry run), imported in {took:.2?}",
        items.len()
    );
    assert_eq!(
        f.read(|s| s.items(None, 20_000).unwrap().len()).await,
        10_000
    );

    // 10,000 lines: 100 ASNs of 100 lines, and one ASN of 10,000 lines (the most one ASN may have).
    for (asns, lines) in [(100, 100), (1, 10_000)] {
        let text = asns_csv(asns, lines).replace("ASN-", &format!("A{asns}-"));
        let started = Instant::now();
        let (status, answer) = f.csv("/v1/asns/import", &text).await;
        let took = started.elapsed();
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["imported"], asns);
        println!(
            "{backend}: 10,000-line ASN CSV as {asns} ASN(s) of {lines} lines ({} bytes) imported in {took:.2?}",
            text.len()
        );
    }
    let stored = f.read(|s| s.asns("WH1", None).unwrap()).await;
    assert_eq!(stored.len(), 101);
    let lines: usize = stored
        .iter()
        .map(|a| a.lines.len() + a.pallets.iter().map(|p| p.lines.len()).sum::<usize>())
        .sum();
    assert_eq!(lines, 20_000);
    let big = f.read(|s| s.asn("A1-00000").unwrap().unwrap()).await;
    assert_eq!(big.pallets.len(), 2);

    // A 10,000-row file with one bad row at the end changes nothing.
    let before = f.snapshot().await;
    let mut bad = items_csv(10_000).replace(",Item ", ",Renamed ");
    bad.push_str("1,x,EA,0,0,0\n");
    let (status, answer) = f.csv("/v1/items/import", &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reported(&answer), [at("line 10002", Some("gtin"))]);
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn ten_thousand_rows_in_one_call_sled() {
    ten_thousand_rows(&sled(), "sled").await;
}

/// A plain test with its own runtime: the PostgreSQL store is opened and dropped outside it (its client runs a
/// runtime of its own).
#[test]
fn ten_thousand_rows_in_one_call_postgres() {
    let f = postgres();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(ten_thousand_rows(&f, "postgres"));
}

/// The real binary on a real socket with TLS: the two 10,000-row files, timed end to end.
#[tokio::test]
async fn ten_thousand_rows_over_https_against_the_server_process() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("data"));
    let items = items_csv(10_000);
    let started = Instant::now();
    let (status, body) = server
        .post("/v1/items/import", "text/csv", items.as_bytes())
        .await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["imported"],
        10_000
    );
    println!("server process over HTTPS: 10,000-row items CSV imported in {took:.2?}");

    let asns = asns_csv(100, 100);
    let started = Instant::now();
    let (status, body) = server
        .post("/v1/asns/import?dry_run=true", "text/csv", asns.as_bytes())
        .await;
    let dry = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["would_import"],
        100
    );
    let started = Instant::now();
    let (status, body) = server
        .post("/v1/asns/import", "text/csv", asns.as_bytes())
        .await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["imported"],
        100
    );
    println!(
        "server process over HTTPS: 10,000-line ASN CSV (100 ASNs) checked in {dry:.2?} (dry run), imported in {took:.2?}"
    );
    server.stop();
}

/// `dockhand-server run` on a free port, its CA and admin token as it printed them.
struct ServerProcess {
    child: Child,
    addr: String,
    ca: std::path::PathBuf,
    token: String,
}

impl ServerProcess {
    fn start(data: &Path) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dockhand-server"))
            .args(["run", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || {
            lines
                .next()
                .expect("the server prints its contract lines")
                .unwrap()
        };
        let addr = next()
            .strip_prefix("dockhand-server listening on https://")
            .expect("the listen line")
            .to_string();
        let ca = next().strip_prefix("ca: ").unwrap().into();
        let token_file = next().strip_prefix("admin token: ").unwrap().to_string();
        let token = std::fs::read_to_string(token_file)
            .unwrap()
            .trim()
            .to_string();
        // Keep reading, so the server never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        ServerProcess {
            child,
            addr,
            ca,
            token,
        }
    }

    /// One request on a fresh TLS connection: the status and the body.
    async fn post(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let name = ServerName::try_from("localhost".to_string()).unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.token,
            body.len()
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(body).await.unwrap();
        let mut response = String::new();
        // Servers may close without close_notify after `Connection: close`; what was read is what counts.
        let _ = tls.read_to_string(&mut response).await;
        let status = response
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {response:?}"));
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// SIGTERM, then wait for the exit.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        for _ in 0..200 {
            if let Some(exit) = self.child.try_wait().unwrap() {
                assert!(exit.success(), "{exit:?}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not stop within 10 s of SIGTERM");
    }
}
