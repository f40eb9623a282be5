//! The office dashboard through `app(state)` with `tower::ServiceExt::oneshot` (no socket, no browser).
//!
//! - access: every dashboard page without a session is a 303 to `/login`; every office API route without
//!   credentials is a 401; a device token opens neither; forged, tampered and expired cookies are refused;
//! - login and logout: the cookie's attributes, a wrong token, the `next` path (no open redirect);
//! - CSRF: a post without the token or with another's is a 403 and changes nothing;
//! - escaping: hostile item descriptions and lots never reach the page unescaped;
//! - the stock page: filters, sorts and paging against the store's own answer (table-driven), expiry markers;
//! - item and location pages, CSV exports (quoting, formula injection), and garbage input (400 pages).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use dockhand_protocol::sync::{Item, Location, Movement, MovementKind, MovementSource};
use dockhand_server::store::{StockSort, OFFICE_DEVICE};
use dockhand_server::web::{Access, SessionKey, SESSION_COOKIE};
use dockhand_server::{
    app, enroll, routes, AdminToken, AppState, Devices, SledStore, StockFilter, Store,
};
use http_body_util::BodyExt;
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

const ADMIN: &str = "admin-secret";
const G1: &str = "09506000134352";
const G2: &str = "05901234123457";
const G3: &str = "04006381333931";
const XSS_SCRIPT: &str = "<script>alert(1)</script>";
const XSS_ATTR: &str = "\"><img src=x onerror=alert(1)>";

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    store: Arc<dyn Store>,
    device_token: String,
    cookie: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let devices_dir = dir.path().join("devices");
    let device_token = enroll(&devices_dir, "hh-01", "WH1", false).unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(&dir.path().join("sled"), 8 << 20).unwrap());
    let devices = Arc::new(Devices::open(&devices_dir).unwrap());
    let admin = AdminToken::from_secret(ADMIN);
    let session = SessionKey::new(&admin).issue(OffsetDateTime::now_utc());
    let state = AppState::new(store.clone(), devices, admin);
    Fixture {
        _dir: dir,
        app: app(state),
        store,
        device_token,
        cookie: format!("{SESSION_COOKIE}={session}"),
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

impl Fixture {
    async fn page(&self, uri: &str) -> Answer {
        call(&self.app, "GET", uri, &[("cookie", &self.cookie)], "").await
    }

    /// A page that must answer 200 HTML.
    async fn ok(&self, uri: &str) -> String {
        let a = self.page(uri).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.body);
        assert_eq!(
            a.header("content-type"),
            "text/html; charset=utf-8",
            "{uri}"
        );
        a.body
    }

    async fn post_form(&self, uri: &str, cookie: Option<&str>, form: &str) -> Answer {
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(c) = cookie {
            headers.push(("cookie", c));
        }
        call(&self.app, "POST", uri, &headers, form).await
    }

    fn push(&self, device: &str, site: &str, movements: &[Movement]) {
        self.store.push(site, device, movements).unwrap();
    }
}

fn mv(seq: u64, gtin: &str, lot: Option<&str>, to: &str, qty: u64) -> Movement {
    Movement {
        device_id: "hh-01".into(),
        seq,
        at: time::macros::datetime!(2026-11-26 08:00:00 UTC) + Duration::minutes(seq as i64),
        kind: MovementKind::Receive,
        gtin: gtin.into(),
        lot: lot.map(Into::into),
        expiry: None,
        serials: vec![],
        qty,
        from_location: None,
        to_location: Some(to.into()),
        sscc: None,
        reference: Some("ASN-1".into()),
        operator: Some("op7".into()),
        source: MovementSource::Manual,
    }
}

fn item(gtin: &str, description: &str) -> Item {
    Item {
        gtin: gtin.into(),
        description: description.into(),
        unit: "EA".into(),
        lot_tracked: true,
        expiry_tracked: false,
        serial_tracked: false,
        active: true,
        unit_cost: None,
    }
}

/// The `data-*` attributes of every element marked `data-test="<test>"`, HTML entities decoded.
fn rows(html: &str, test: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let marker = format!("data-test=\"{test}\"");
    let mut out = Vec::new();
    for (i, _) in html.match_indices(&marker) {
        let start = html[..i].rfind('<').unwrap();
        let end = i + html[i..].find('>').unwrap();
        let tag = &html[start..end];
        let mut attrs = std::collections::BTreeMap::new();
        let mut rest = tag;
        while let Some(eq) = rest.find("=\"") {
            let name = rest[..eq].rsplit(' ').next().unwrap().to_string();
            let value_end = eq + 2 + rest[eq + 2..].find('"').unwrap();
            let value = rest[eq + 2..value_end]
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&");
            attrs.insert(name, value);
            rest = &rest[value_end + 1..];
        }
        out.push(attrs);
    }
    out
}

/// The `href` of the element with `id`, decoded, if the page has it.
fn link(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = html[..at].rfind('<')?;
    let tag = &html[start..start + html[start..].find('>')?];
    let href = tag.split("href=\"").nth(1)?.split('"').next()?;
    Some(href.replace("&amp;", "&").replace("&quot;", "\""))
}

/// Concrete URIs for the dashboard's path patterns.
fn concrete(path: &str) -> String {
    path.replace("{gtin}", G1)
        .replace("{site}", "WH1")
        .replace("{code}", "A-01")
        .replace("{id}", "1")
        .replace(['{', '}'], "")
}

#[tokio::test]
async fn every_page_without_a_session_redirects_to_login() {
    let f = fixture();
    let device_cookie = format!("{SESSION_COOKIE}={}", f.device_token);
    let device_bearer = format!("Bearer {}", f.device_token);
    let admin_bearer = format!("Bearer {ADMIN}");
    let pages: Vec<_> = dockhand_server::web::pages()
        .into_iter()
        .filter(|(_, _, access)| *access == Access::Session)
        .collect();
    assert!(pages.len() >= 5, "{pages:?}");
    for (method, path, _) in pages {
        let uri = format!("{}?x=1", concrete(path));
        let method = method.to_uppercase();
        // The admin token as a bearer opens the API, not the dashboard: pages take sessions only.
        let credentials: &[(&str, &[(&str, &str)])] = &[
            ("nothing", &[]),
            (
                "device token as bearer",
                &[("authorization", &device_bearer)],
            ),
            ("device token as cookie", &[("cookie", &device_cookie)]),
            ("admin token as bearer", &[("authorization", &admin_bearer)]),
        ];
        for (what, headers) in credentials {
            let a = call(&f.app, &method, &uri, headers, "").await;
            assert_eq!(
                a.status,
                StatusCode::SEE_OTHER,
                "{method} {uri} with {what}"
            );
            if method == "GET" {
                let want = format!(
                    "/login?{}",
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("next", &uri)
                        .finish()
                );
                assert_eq!(a.location(), want, "{method} {uri} with {what}");
            } else {
                assert_eq!(a.location(), "/login", "{method} {uri} with {what}");
            }
            assert!(a.header("set-cookie").is_empty(), "{method} {uri}");
        }
    }
}

#[tokio::test]
async fn every_office_api_route_needs_the_admin_token() {
    let f = fixture();
    let device_bearer = format!("Bearer {}", f.device_token);
    let session = f.cookie.clone();
    let office: Vec<_> = routes()
        .into_iter()
        .filter(|(_, path)| {
            path.starts_with("/v1/")
                && !path.starts_with("/v1/sync/")
                && !["/v1/health", "/v1/openapi.json"].contains(path)
        })
        .collect();
    assert!(office.len() >= 20, "{office:?}");
    for (method, path) in office {
        let uri = concrete(path);
        let method = method.to_uppercase();
        // A dashboard session does not open the API either: the API answers bearer tokens only, so a page can
        // never be tricked into calling it with the browser's cookie.
        let credentials: &[(&str, &[(&str, &str)])] = &[
            ("nothing", &[]),
            ("device token", &[("authorization", &device_bearer)]),
            ("dashboard session", &[("cookie", &session)]),
        ];
        for (what, headers) in credentials {
            let mut headers = headers.to_vec();
            headers.push(("content-type", "application/json"));
            let a = call(&f.app, &method, &uri, &headers, "{}").await;
            assert_eq!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with {what}: {}",
                a.body
            );
            let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{method} {uri}");
        }
    }
}

#[tokio::test]
async fn login_sets_a_strict_cookie_and_follows_only_local_paths() {
    let f = fixture();
    let form = call(&f.app, "GET", "/login?next=%2Fstock%3Fsite%3DWH1", &[], "").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("id=\"login-form\""));
    assert!(
        form.body
            .contains("name=\"next\" value=\"/stock?site=WH1\""),
        "{}",
        form.body
    );
    // (next sent, where the login leads)
    let cases: &[(&str, &str)] = &[
        ("%2Fstock%3Fsite%3DWH1", "/stock?site=WH1"),
        ("", "/"),
        ("%2F%2Fevil.example%2F", "/"),
        ("https%3A%2F%2Fevil.example%2F", "/"),
        ("%2F%5Cevil.example", "/"),
        ("%2Fstock%0D%0ASet-Cookie%3A%20x%3D1", "/"),
    ];
    for (next, want) in cases {
        // The file's trailing newline (pasted along) is accepted.
        let a = f
            .post_form("/login", None, &format!("token={ADMIN}%0A&next={next}"))
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{next}: {}", a.body);
        assert_eq!(a.location(), *want, "{next}");
        let cookie = a.header("set-cookie");
        let value = cookie
            .strip_prefix(&format!("{SESSION_COOKIE}="))
            .and_then(|c| c.split(';').next())
            .unwrap_or_else(|| panic!("{cookie}"));
        let attrs: Vec<&str> = cookie.split(';').skip(1).map(str::trim).collect();
        for want in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=43200",
        ] {
            assert!(attrs.contains(&want), "{want} in {cookie}");
        }
        assert!(!attrs.iter().any(|a| a.starts_with("Domain")), "{cookie}");
        // The cookie opens the pages.
        let stock = call(
            &f.app,
            "GET",
            "/stock",
            &[("cookie", &format!("{SESSION_COOKIE}={value}"))],
            "",
        )
        .await;
        assert_eq!(stock.status, StatusCode::OK, "{next}");
    }
    // Logged in already: the form goes straight on.
    let again = f.page("/login?next=%2Fstock").await;
    assert_eq!(
        (again.status, again.location()),
        (StatusCode::SEE_OTHER, "/stock")
    );
}

#[tokio::test]
async fn a_wrong_token_gets_the_form_again_with_401_and_no_cookie() {
    let f = fixture();
    let device = f.device_token.clone();
    let long = "x".repeat(5000);
    let cases: &[(&str, String)] = &[
        ("wrong", "token=admin-secreT".into()),
        ("empty", "token=".into()),
        ("missing", "next=%2F".into()),
        ("device token", format!("token={device}")),
        ("long", format!("token={long}")),
        ("prefix", "token=admin".into()),
    ];
    for (what, form) in cases {
        let a = f.post_form("/login", None, form).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(a.header("set-cookie").is_empty(), "{what}");
        assert!(a.body.contains("id=\"login-error\""), "{what}");
        assert!(a.body.contains("id=\"login-form\""), "{what}");
    }
}

#[tokio::test]
async fn forged_tampered_and_expired_cookies_redirect_to_login() {
    let f = fixture();
    let now = OffsetDateTime::now_utc();
    let key = SessionKey::new(&AdminToken::from_secret(ADMIN));
    let good = key.issue(now);
    let (body, mac) = good.rsplit_once('.').unwrap();
    let mut flipped = mac.to_string();
    flipped.replace_range(..1, if mac.starts_with('a') { "b" } else { "a" });
    let far = (now + Duration::days(3650)).unix_timestamp().to_string();
    let mut parts: Vec<&str> = body.split('.').collect();
    parts[1] = &far;
    let extended = format!("{}.{mac}", parts.join("."));
    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            key.issue_with(now - Duration::seconds(1), [3; 16]),
        ),
        ("tampered mac", format!("{body}.{flipped}")),
        ("extended expiry", extended),
        (
            "signed with another admin token",
            SessionKey::new(&AdminToken::from_secret("other")).issue(now),
        ),
        (
            "forged",
            format!("v1.9999999999.{}.{}", "00".repeat(16), "00".repeat(32)),
        ),
        ("garbage", "%3Cscript%3E".into()),
        ("the admin token itself", ADMIN.into()),
        ("empty", String::new()),
    ];
    for (what, value) in cases {
        let cookie = format!("{SESSION_COOKIE}={value}");
        let a = call(&f.app, "GET", "/stock", &[("cookie", &cookie)], "").await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{what}");
        assert!(a.location().starts_with("/login"), "{what}");
    }
    // The good one next to a bad copy still works (browsers may send both).
    let both = format!("{SESSION_COOKIE}=bad; {SESSION_COOKIE}={good}");
    let a = call(&f.app, "GET", "/stock", &[("cookie", &both)], "").await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn posts_need_the_sessions_csrf_token() {
    let f = fixture();
    let page = f.ok("/stock").await;
    let token = rows(&page, "csrf-token");
    assert!(
        token.is_empty(),
        "the token is a hidden input, not a data-test element"
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    assert_eq!(csrf.len(), 64);
    let other = SessionKey::new(&AdminToken::from_secret(ADMIN)).issue(OffsetDateTime::now_utc());
    let other_page = call(
        &f.app,
        "GET",
        "/stock",
        &[("cookie", &format!("{SESSION_COOKIE}={other}"))],
        "",
    )
    .await;
    let other_csrf = other_page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    assert_ne!(csrf, other_csrf);
    let cases: &[(&str, String)] = &[
        ("missing", String::new()),
        ("empty", "csrf=".into()),
        ("wrong", format!("csrf={}", "0".repeat(64))),
        ("another session's", format!("csrf={other_csrf}")),
        ("truncated", format!("csrf={}", &csrf[..63])),
        ("twice", format!("csrf={csrf}&csrf={csrf}")),
    ];
    for (what, form) in cases {
        let a = f.post_form("/logout", Some(&f.cookie), form).await;
        let want = if *what == "twice" {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(a.status, want, "{what}: {}", a.body);
        assert!(a.header("set-cookie").is_empty(), "{what}: nothing changed");
        // Still logged in.
        assert_eq!(f.page("/stock").await.status, StatusCode::OK, "{what}");
    }
    let a = f
        .post_form("/logout", Some(&f.cookie), &format!("csrf={csrf}"))
        .await;
    assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/login"));
    let cleared = a.header("set-cookie");
    assert!(
        cleared.starts_with(&format!("{SESSION_COOKIE}=;")),
        "{cleared}"
    );
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test]
async fn hostile_descriptions_and_lots_are_escaped() {
    let f = fixture();
    f.store
        .put_items(&[
            item(G1, &format!("Widget {XSS_SCRIPT}")),
            item(G2, &format!("Gadget {XSS_ATTR}")),
        ])
        .unwrap();
    f.push(
        "hh-01",
        "WH1",
        &[
            mv(1, G1, Some("<b>L1"), "A-01", 5),
            mv(2, G2, Some("\"><i>"), "A-01", 3),
        ],
    );
    let pages = [
        "/stock".to_string(),
        format!("/items/{G1}"),
        format!("/items/{G2}"),
        "/sites/WH1/locations/A-01".to_string(),
    ];
    for uri in pages {
        let html = f.ok(&uri).await;
        for evil in [XSS_SCRIPT, XSS_ATTR, "<b>L1", "\"><i>", "<img"] {
            assert!(!html.contains(evil), "{uri} carries {evil:?} unescaped");
        }
        assert!(!html.contains("<script"), "{uri}");
    }
    let stock = f.ok("/stock").await;
    assert!(
        stock.contains("Widget &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{stock}"
    );
    assert!(stock.contains("Gadget &quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    let lots: Vec<_> = rows(&stock, "stock-row")
        .into_iter()
        .map(|r| r["data-lot"].clone())
        .collect();
    // G2 (0590...) sorts before G1 (0950...).
    assert_eq!(
        lots,
        ["\"><i>", "<b>L1"],
        "data attributes hold the text itself"
    );
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let f = fixture();
    for uri in ["/stock", "/login", "/items/09506000134352"] {
        let a = f.page(uri).await;
        let csp = a.header("content-security-policy");
        for want in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(want), "{uri}: {csp}");
        }
        assert_eq!(a.header("x-frame-options"), "DENY", "{uri}");
        assert_eq!(a.header("x-content-type-options"), "nosniff", "{uri}");
    }
    assert_eq!(f.page("/stock").await.header("cache-control"), "no-store");
    let css = f.page("/assets/dashboard.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.header("content-type"), "text/css; charset=utf-8");
    assert!(css.header("cache-control").contains("max-age"));
    let html = f.ok("/stock").await;
    assert!(html.contains("name=\"viewport\""));
    assert!(!html.contains("style=\""), "no inline styles under the CSP");
}

/// 3 sites' worth of rows: WH1 with 4 locations × 3 items × 3 lots (varied quantities and expiries), and WH2.
fn seed_grid(f: &Fixture) -> usize {
    f.store
        .put_items(&[
            item(G1, "Widget"),
            item(G2, "Gadget"),
            item(G3, "Doohickey"),
        ])
        .unwrap();
    let mut batch = Vec::new();
    let mut seq = 0;
    for (l, loc) in ["A-01", "A-02", "B-01", "B-02"].iter().enumerate() {
        for (g, gtin) in [G1, G2, G3].iter().enumerate() {
            for (k, lot) in [None, Some("L1"), Some("L2")].into_iter().enumerate() {
                seq += 1;
                let mut m = mv(
                    seq,
                    gtin,
                    lot,
                    loc,
                    (l * 11 + g * 7 + k * 3) as u64 % 13 + 1,
                );
                m.expiry = match (l + g + k) % 4 {
                    0 => None,
                    1 => Some("2027-01-31".into()),
                    2 => Some("2026-12-24".into()),
                    _ => Some("2028-02-29".into()),
                };
                batch.push(m);
            }
        }
    }
    f.push("hh-01", "WH1", &batch);
    let mut other = mv(1, G1, None, "A-01", 99);
    other.device_id = "rf-01".into();
    f.push("rf-01", "WH2", &[other]);
    batch.len() + 1
}

#[tokio::test]
async fn stock_filters_sorts_and_pages_match_the_store() {
    let f = fixture();
    let total = seed_grid(&f);
    let all = f.store.stock(&StockFilter::default()).unwrap();
    assert_eq!(all.len(), total);
    let key = |r: &std::collections::BTreeMap<String, String>| {
        (
            r["data-site"].clone(),
            r["data-location"].clone(),
            r["data-gtin"].clone(),
            r["data-lot"].clone(),
            r["data-qty"].parse::<i64>().unwrap(),
        )
    };
    type Pred = fn(&dockhand_server::StockRow) -> bool;
    // (query, which rows, sort, descending)
    let cases: &[(&str, Pred, StockSort, bool)] = &[
        ("", |_| true, StockSort::Location, false),
        ("site=WH1", |r| r.site == "WH1", StockSort::Location, false),
        ("site=WH2", |r| r.site == "WH2", StockSort::Location, false),
        (
            "location=A-01",
            |r| r.location == "A-01",
            StockSort::Location,
            false,
        ),
        (
            "gtin=5901234123457",
            |r| r.gtin == G2,
            StockSort::Location,
            false,
        ),
        (
            "lot=L2&site=WH1",
            |r| r.lot.as_deref() == Some("L2"),
            StockSort::Location,
            false,
        ),
        (
            "site=WH1&location=B-02&gtin=04006381333931",
            |r| r.location == "B-02" && r.gtin == G3,
            StockSort::Location,
            false,
        ),
        ("sort=qty&dir=desc", |_| true, StockSort::Qty, true),
        ("sort=qty", |_| true, StockSort::Qty, false),
        (
            "sort=expiry&site=WH1",
            |r| r.site == "WH1",
            StockSort::Expiry,
            false,
        ),
        ("sort=expiry&dir=desc", |_| true, StockSort::Expiry, true),
        (
            "sort=gtin&dir=desc&location=A-02",
            |r| r.location == "A-02",
            StockSort::Gtin,
            true,
        ),
        ("sort=lot", |_| true, StockSort::Lot, false),
        (
            "sort=location&dir=desc",
            |_| true,
            StockSort::Location,
            true,
        ),
        ("site=WH9", |_| false, StockSort::Location, false),
    ];
    for (query, pred, sort, descending) in cases {
        let mut want: Vec<_> = all.iter().filter(|r| pred(r)).cloned().collect();
        want.sort_by(|a, b| sort.compare(a, b));
        if *descending {
            want.reverse();
        }
        let want: Vec<_> = want
            .iter()
            .map(|r| {
                (
                    r.site.clone(),
                    r.location.clone(),
                    r.gtin.clone(),
                    r.lot.clone().unwrap_or_default(),
                    r.qty,
                )
            })
            .collect();
        // Walk the pages with the page's own links, then back with "previous".
        let mut uri = format!("/stock?{query}");
        let mut pages = Vec::new();
        loop {
            let html = f.ok(&uri).await;
            let got: Vec<_> = rows(&html, "stock-row").iter().map(key).collect();
            assert!(got.len() <= 50, "{query}: a page holds at most 50 rows");
            pages.push((uri.clone(), got));
            match link(&html, "next-page") {
                Some(next) => uri = next,
                None => break,
            }
        }
        let walked: Vec<_> = pages.iter().flat_map(|(_, rows)| rows.clone()).collect();
        assert_eq!(walked, want, "{query}");
        if want.is_empty() {
            assert!(f
                .ok(&format!("/stock?{query}"))
                .await
                .contains("id=\"empty\""));
        }
        for i in (1..pages.len()).rev() {
            let html = f.ok(&pages[i].0).await;
            let prev = link(&html, "prev-page")
                .unwrap_or_else(|| panic!("{query}: page {i} has no previous"));
            let back = f.ok(&prev).await;
            let got: Vec<_> = rows(&back, "stock-row").iter().map(key).collect();
            assert_eq!(got, pages[i - 1].1, "{query}: back from page {i}");
        }
        let first = f.ok(&pages[0].0).await;
        assert!(
            link(&first, "prev-page").is_none(),
            "{query}: no previous on the first page"
        );
    }
}

#[tokio::test]
async fn stock_paging_covers_many_rows_without_repeats() {
    let f = fixture();
    let batch: Vec<Movement> = (1..=230)
        .map(|i| {
            mv(
                i,
                G1,
                Some(&format!("L{i:03}")),
                &format!("R-{:02}", i % 17),
                i % 9 + 1,
            )
        })
        .collect();
    f.push("hh-01", "WH1", &batch);
    let mut uri = "/stock?site=WH1&sort=qty&dir=desc".to_string();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let html = f.ok(&uri).await;
        pages += 1;
        seen.extend(
            rows(&html, "stock-row")
                .into_iter()
                .map(|r| r["data-lot"].clone()),
        );
        match link(&html, "next-page") {
            Some(next) => uri = next,
            None => break,
        }
    }
    assert_eq!(pages, 5, "230 rows in pages of 50");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (230, 230));
}

#[tokio::test]
async fn expiring_and_expired_rows_are_marked_in_words() {
    let f = fixture();
    let today = OffsetDateTime::now_utc().date();
    let day = |d: i64| (today + Duration::days(d)).to_string();
    // (lot, expiry, state, marker text)
    let cases: &[(&str, Option<String>, &str, &str)] = &[
        ("PAST", Some(day(-1)), "expired", "EXPIRED"),
        ("TODAY", Some(day(0)), "soon", "expires today"),
        ("SOON", Some(day(10)), "soon", "expires in 10 days"),
        ("EDGE", Some(day(30)), "soon", "expires in 30 days"),
        ("LATER", Some(day(31)), "", ""),
        ("NONE", None, "", ""),
    ];
    let batch: Vec<Movement> = cases
        .iter()
        .enumerate()
        .map(|(i, (lot, expiry, _, _))| {
            let mut m = mv(i as u64 + 1, G1, Some(lot), "A-01", 1);
            m.expiry = expiry.clone();
            m
        })
        .collect();
    f.push("hh-01", "WH1", &batch);
    let html = f.ok("/stock?sort=expiry").await;
    let found = rows(&html, "stock-row");
    for (lot, expiry, state, marker) in cases {
        let row = found.iter().find(|r| r["data-lot"] == *lot).unwrap();
        assert_eq!(
            row["data-expiry"],
            expiry.clone().unwrap_or_default(),
            "{lot}"
        );
        assert_eq!(
            row.get("data-expiry-state")
                .map(String::as_str)
                .unwrap_or(""),
            *state,
            "{lot}"
        );
        if !marker.is_empty() {
            let at = html.find(&format!("data-lot=\"{lot}\"")).unwrap();
            let row_html = &html[at..at + html[at..].find("</tr>").unwrap()];
            assert!(
                row_html.contains(&format!(">{marker}</span>")),
                "{lot}: {row_html}"
            );
        }
    }
    // Sorted by expiry, unknown last.
    let order: Vec<_> = found.iter().map(|r| r["data-lot"].clone()).collect();
    assert_eq!(order, ["PAST", "TODAY", "SOON", "EDGE", "LATER", "NONE"]);
}

#[tokio::test]
async fn item_and_location_pages_show_master_data_stock_and_trail() {
    let f = fixture();
    f.store.put_items(&[item(G1, "Widget")]).unwrap();
    f.store
        .put_locations(
            "WH1",
            &[Location {
                code: "A 01/x".into(),
                gln: None,
                zone: Some("Z1".into()),
                active: true,
            }],
        )
        .unwrap();
    let batch: Vec<Movement> = (1..=60)
        .map(|i| mv(i, G1, Some("L1"), "A 01/x", 1))
        .collect();
    f.push("hh-01", "WH1", &batch);
    let item = f.ok(&format!("/items/{G1}")).await;
    assert!(item.contains("id=\"item-description\">Widget<"), "{item}");
    let stock = rows(&item, "stock-row");
    assert_eq!(stock.len(), 1);
    assert_eq!(
        (
            stock[0]["data-location"].as_str(),
            stock[0]["data-qty"].as_str()
        ),
        ("A 01/x", "60")
    );
    let trail = rows(&item, "movement-row");
    assert_eq!(trail.len(), 50);
    assert_eq!(
        (
            trail[0]["data-device"].as_str(),
            trail[0]["data-seq"].as_str()
        ),
        ("hh-01", "1")
    );
    let next = link(&item, "next-page").unwrap();
    assert_eq!(next, format!("/items/{G1}?after=50"));
    let rest = rows(&f.ok(&next).await, "movement-row");
    let seqs: Vec<_> = rest.iter().map(|r| r["data-seq"].clone()).collect();
    assert_eq!(seqs, (51..=60).map(|s| s.to_string()).collect::<Vec<_>>());
    // A GTIN-13 finds the same item; the location link is percent-encoded.
    assert!(f.ok("/items/9506000134352").await.contains("Widget"));
    assert!(
        item.contains("href=\"/sites/WH1/locations/A%2001%2Fx\""),
        "{item}"
    );
    let location = f.ok("/sites/WH1/locations/A%2001%2Fx").await;
    assert!(location.contains("id=\"location-zone\">Z1<"), "{location}");
    assert_eq!(rows(&location, "stock-row").len(), 1);
    assert_eq!(rows(&location, "movement-row").len(), 50);
    // Unknown to master data: the page says so, stock and trail still show.
    let unknown = f.ok(&format!("/items/{G2}")).await;
    assert!(unknown.contains("id=\"item-unknown\""));
    let nowhere = f.ok("/sites/WH1/locations/Q-99").await;
    assert!(nowhere.contains("id=\"location-unknown\""));
}

#[tokio::test]
async fn csv_exports_quote_and_defuse_cells() {
    let f = fixture();
    f.store
        .put_items(&[
            item(G1, "=HYPERLINK(\"http://evil\",\"click\")"),
            item(G2, "Gadget, large \"XL\""),
            item(G3, "@SUM(A1:A9)"),
        ])
        .unwrap();
    let mut batch = vec![
        mv(1, G1, Some("-5"), "A-01", 5),
        mv(2, G2, Some("+L"), "A-01", 3),
        mv(3, G3, None, "B-01", 2),
    ];
    batch[0].expiry = Some("2027-01-31".into());
    // A negative quantity stays a number.
    let mut pick = mv(4, G3, None, "B-01", 7);
    pick.kind = MovementKind::Pick;
    pick.from_location = pick.to_location.take();
    batch.push(pick);
    f.push("hh-01", "WH1", &batch);
    let page = f.ok("/stock?site=WH1").await;
    let href = link(&page, "csv-link").unwrap();
    assert_eq!(href, "/stock?site=WH1&format=csv");
    let a = f.page(&href).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), "text/csv; charset=utf-8");
    let disposition = a.header("content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"stock-WH1-"),
        "{disposition}"
    );
    assert!(disposition.ends_with(".csv\""), "{disposition}");
    let want = "\u{feff}site,location,gtin,description,lot,expiry,qty\r\n\
        WH1,A-01,05901234123457,\"Gadget, large \"\"XL\"\"\",'+L,,3\r\n\
        WH1,A-01,09506000134352,\"'=HYPERLINK(\"\"http://evil\"\",\"\"click\"\")\",'-5,2027-01-31,5\r\n\
        WH1,B-01,04006381333931,'@SUM(A1:A9),,,-5\r\n";
    assert_eq!(a.body, want);
    // The trail of an item as CSV.
    let trail = f.page(&format!("/items/{G1}?format=csv")).await;
    assert_eq!(trail.status, StatusCode::OK);
    let lines: Vec<&str> = trail.body.split("\r\n").collect();
    assert!(lines[0]
        .starts_with("\u{feff}server_seq,site,device,seq,at,kind,gtin,lot,expiry,qty,from,to"));
    assert!(lines[1].starts_with("1,WH1,hh-01,1,2026-11-26T08:01:00Z,receive,09506000134352,'-5,2027-01-31,5,,A-01,ASN-1,op7,"), "{}", lines[1]);
    assert_eq!(lines.len(), 3, "header, one movement, and the final CRLF");
}

#[tokio::test]
async fn csv_export_pages_through_large_tables() {
    let f = fixture();
    let batch: Vec<Movement> = (1..=2500)
        .map(|i| mv(i, G1, Some(&format!("L{i:05}")), "A-01", 1))
        .collect();
    f.push("hh-01", "WH1", &batch);
    let a = f.page("/stock?format=csv&sort=lot&dir=desc").await;
    let lines: Vec<&str> = a.body.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 2501);
    assert!(lines[1].contains(",L02500,"), "{}", lines[1]);
    assert!(lines[2500].contains(",L00001,"), "{}", lines[2500]);
}

#[tokio::test]
async fn garbage_and_oversized_parameters_get_a_400_page() {
    let f = fixture();
    f.push("hh-01", "WH1", &[mv(1, G1, None, "A-01", 1)]);
    // Just under what the `http` crate takes as a URI at all (64 KiB).
    let huge = "x".repeat(60_000);
    let cases: Vec<String> = vec![
        "/stock?sort=price".into(),
        "/stock?dir=up".into(),
        "/stock?gtin=abc".into(),
        "/stock?gtin=9506000134353".into(),
        "/stock?site=W%20H".into(),
        "/stock?location=%00".into(),
        "/stock?lot=ABCDEFGHIJKLMNOPQRSTUVWXYZ".into(),
        "/stock?after=garbage".into(),
        "/stock?after=%5B%22WH1%22%5D".into(),
        "/stock?before=%5B%22WH1%22%2C%22A%22%2C%22G%22%2Cnull%2C1e400%2Cnull%5D".into(),
        "/stock?after=x&before=y".into(),
        format!("/stock?site={huge}"),
        format!("/stock?after={huge}"),
        "/stock?colour=red".into(),
        "/stock?site=WH1&site=WH2".into(),
        "/stock?format=xlsx".into(),
        "/items/not-a-gtin".into(),
        "/items/12345678901234567890".into(),
        format!("/items/{G1}?after=-1"),
        format!("/items/{G1}?after=99999999999999999999999"),
        "/sites/bad%20site/locations/A-01".into(),
        "/sites/WH1/locations/%07A".into(),
        "/sites/WH1/locations/A-01?format=pdf".into(),
    ];
    for uri in cases {
        let a = f.page(&uri).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{:.80}: {}", uri, a.body);
        assert_eq!(
            a.header("content-type"),
            "text/html; charset=utf-8",
            "{uri:.80}"
        );
        assert!(a.body.contains("id=\"error\""), "{uri:.80}");
        assert!(
            a.body.len() < 20_000,
            "{uri:.80}: the error does not echo the whole input"
        );
    }
}

#[tokio::test]
async fn home_leads_to_stock_and_office_adjustments_show_in_the_trail() {
    let f = fixture();
    let a = f.page("/").await;
    assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/stock"));
    // The office's own pseudo-device appears like any device in a trail.
    let mut m = mv(1, G1, None, "A-01", 1);
    m.kind = MovementKind::Pick;
    m.from_location = m.to_location.take();
    f.push("hh-01", "WH1", &[m]);
    let d = f
        .store
        .discrepancies(&Default::default())
        .unwrap()
        .into_iter()
        .next()
        .expect("negative stock is a discrepancy");
    f.store
        .resolve_discrepancy(
            d.id,
            &dockhand_server::store::Resolution::Adjust {
                location: "A-01".into(),
                gtin: G1.into(),
                lot: None,
                delta: 1,
                reason: "found it".into(),
                movement: None,
            },
            OffsetDateTime::now_utc(),
        )
        .unwrap();
    let trail = rows(&f.ok("/sites/WH1/locations/A-01").await, "movement-row");
    let devices: Vec<_> = trail.iter().map(|r| r["data-device"].clone()).collect();
    assert_eq!(devices, ["hh-01", OFFICE_DEVICE]);
}
