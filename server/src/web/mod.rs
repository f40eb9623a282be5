//! The office dashboard (issue 7): server-rendered HTML on the API's own TLS listener, for people who reconcile
//! stock in a browser or on a tablet.
//!
//! Pages are [maud] templates: the markup is checked at compile time and every value spliced into it is
//! HTML-escaped unless wrapped in `PreEscaped`, which this module never does with data. The pages need no
//! JavaScript; the one stylesheet is served from [`STYLESHEET_PATH`] with a cache header (the Content Security
//! Policy forbids inline scripts and styles, so a page that wants script serves it from a route too).
//!
//! # Access
//!
//! - `GET /login`, `POST /login`: the admin token (the contents of `admin.token`, the API's bearer token) buys a
//!   session cookie ([`session`]): stateless, signed with a key derived from the token, so every node that has the
//!   same `admin.token` accepts it. A wrong token answers the form again with 401 and sets no cookie.
//! - Every page needs a valid session; without one it answers 303 to `/login?next=<the page>` (only a same-site
//!   path is ever followed after login). Bearer tokens are not looked at here: a device token opens nothing, and
//!   the JSON API under `/v1/` keeps answering 401 JSON as before.
//! - Every `POST` form carries the session's CSRF token in a hidden `csrf` field; [`CsrfForm`] checks it (missing
//!   or wrong: 403 page, nothing changed). The login form is the only form without one: there is no session yet,
//!   and with a single credential a forged login could only log someone in as the office itself.
//!
//! # Adding a page (for part 2: devices, discrepancies, receipts, pick lists)
//!
//! One file per page under `web/`, one line in [`table`]:
//!
//! ```text
//! // web/devices.rs
//! pub(super) async fn page(session: Session, State(state): State<AppState>, mut q: Fields) -> PageResult {
//!     let site = q.name("site")?;            // typed getters; a bad value is a 400 page naming the field
//!     let format = q.format()?;              // `?format=csv` or HTML
//!     q.finish()?;                           // unknown parameters are a 400, never a silent "all"
//!     let store = state.store.clone();
//!     let devices = blocking(move || Ok(store.something()?)).await?;   // store calls off the async workers
//!     if format == Format::Csv {
//!         return Ok(csv::download("devices.csv", &["id", "site"], move |out| { ...; out.row(&[..]) }));
//!     }
//!     Ok(layout::page(&session, Nav::Devices, "Devices", html! { ... }).into_response())
//! }
//! // web/mod.rs, in table():
//! page("/devices", get(devices::page)),
//! ```
//!
//! - [`Session`] first among the extractors: it turns a missing session into the redirect before anything else
//!   runs (a query parameter error must not tell an anonymous caller anything).
//! - [`Fields`] is the query string (GET) or the form (through [`CsrfForm`]) with typed, validated getters.
//! - [`PageError`] is the one error type: `?` on a store error, a [`crate::error::ApiError`] or a join error works,
//!   and each becomes an HTML error page with the right status (400, 403, 404, 409, 503, 500).
//! - A POST handler takes [`CsrfForm`] (`form.session`, `form.fields`) and answers with [`see_other`] (303) so a
//!   reload does not post twice.
//! - [`layout`] has the shared page ([`layout::page`]), links ([`layout::item_href`], [`layout::location_href`],
//!   [`layout::href`]), the pager, sortable headers, the CSV link, [`layout::post_button`] and
//!   [`layout::csrf_field`]. [`csv`] streams a CSV download with quoting and formula-injection protection.
//!
//! # Stable selectors (for the browser tests)
//!
//! Ids are unique per page; `data-test` marks repeated elements; table rows also carry their key as `data-*`.
//!
//! ```text
//! every page      #nav, nav links #nav-stock #nav-devices #nav-discrepancies #nav-receipts #nav-pick-lists #nav-reports
//!                 (the current one has aria-current="page"), #logout (form) with #logout-button, #content, h1#title
//! error page      #error (the message), status in data-status
//! login           #login-form, #token (password input), #login-button, #login-error (only after a failure),
//!                 hidden input name=next
//! stock           #filters (GET form) with #filter-site #filter-location #filter-gtin #filter-lot #filter-apply
//!                 #filter-clear; #stock-table; column headers th[data-sort=location|gtin|lot|expiry|qty] each
//!                 with a link a[data-test=sort-link] (aria-sort on the current one); rows tr[data-test=stock-row]
//!                 with data-site data-location data-gtin data-lot data-qty data-expiry and, when it applies,
//!                 data-expiry-state="expired"|"soon" plus a visible span[data-test=expiry-marker];
//!                 a[data-test=item-link], a[data-test=location-link], td[data-test=description];
//!                 #prev-page #next-page #first-page (present only when they lead somewhere), #csv-link, #row-count
//!                 ("50 rows shown"), #empty when nothing matches
//! item page       #item-master (dl) with #item-description #item-unit, #item-unknown if not in master data,
//!                 #item-stock (table, rows tr[data-test=stock-row]), #item-stock-all (link to /stock filtered),
//!                 #trail (table, rows tr[data-test=movement-row] with data-server-seq data-device data-seq
//!                 data-kind), #next-page, #csv-link
//! location page   #location-master (dl) with #location-zone #location-gln, #location-unknown, #location-stock,
//!                 #location-stock-all, #trail, #next-page, #csv-link (same rows as the item page)
//! ```
//!
//! # Routes
//!
//! ```text
//! GET  /                                  303 to /stock
//! GET  /login  POST /login  POST /logout  session
//! GET  /stock[?site&location&gtin&lot&sort&dir&after|before&format=csv]
//! GET  /items/{gtin}[?after&format=csv]                     master data, stock, movement trail
//! GET  /sites/{site}/locations/{code}[?after&format=csv]    master data, stock, movement trail
//! GET  /assets/dashboard.css
//! GET  /devices[?site&format=csv]  POST /devices/{id}/revoke           devices.rs (live: live.rs)
//! GET  /discrepancies[?site&status&kind&format=csv]  GET /discrepancies/{id}
//! POST /discrepancies/{id}/comments  POST /discrepancies/{id}/resolve  discrepancies.rs
//! GET  /receipts[?site&status&format=csv]  GET /receipts/{id}[?format=csv&table]        receipts.rs
//! GET  /pick-lists[?site&status&format=csv]  GET /pick-lists/{id}[?format=csv]          pick_lists.rs
//! GET  /overview[?format=csv]                                          charts.rs
//! GET  /live/devices[?site]  GET /live/discrepancies?after[&site&status&kind]  GET /assets/live.js   live.rs
//! ```

mod charts;
pub mod csv;
mod devices;
mod discrepancies;
pub mod layout;
mod live;
mod pick_lists;
mod receipts;
mod reports;
pub mod session;
mod stock;
mod trail;
mod webhooks;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::routes::input;
use crate::state::AppState;
use crate::store::StoreError;

pub use self::session::{CsrfForm, Session, SessionKey, SESSION_COOKIE, SESSION_LIFETIME};

/// Where the stylesheet is served.
pub const STYLESHEET_PATH: &str = "/assets/dashboard.css";

/// What a page handler returns.
pub type PageResult = Result<Response, PageError>;

/// Who may open a dashboard route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the login form and the stylesheet.
    Public,
    /// A valid session; without one, 303 to `/login`.
    Session,
}

/// One dashboard route.
pub struct Page {
    /// `get` or `post`.
    pub method: &'static str,
    /// The axum path pattern.
    pub path: &'static str,
    /// Who may open it.
    pub access: Access,
    handler: MethodRouter<AppState>,
}

fn page(method: &'static str, path: &'static str, handler: MethodRouter<AppState>) -> Page {
    Page {
        method,
        path,
        access: Access::Session,
        handler,
    }
}

fn public(method: &'static str, path: &'static str, handler: MethodRouter<AppState>) -> Page {
    Page {
        access: Access::Public,
        ..page(method, path, handler)
    }
}

/// Every dashboard route. Part 2's pages go here too.
fn table() -> Vec<Page> {
    vec![
        public("get", "/login", get(session::login_form)),
        public("post", "/login", post(session::login)),
        public("get", STYLESHEET_PATH, get(stylesheet)),
        page("post", "/logout", post(session::logout)),
        page("get", "/", get(home)),
        page("get", "/stock", get(stock::page)),
        page("get", "/items/{gtin}", get(trail::item_page)),
        page(
            "get",
            "/sites/{site}/locations/{code}",
            get(trail::location_page),
        ),
        // Part 2: devices, discrepancies, receipts, pick lists, live updates, charts (selectors: each module's docs).
        page("get", "/devices", get(devices::page)),
        page("post", "/devices/{id}/revoke", post(devices::revoke)),
        page("get", "/discrepancies", get(discrepancies::list)),
        page("get", "/discrepancies/{id}", get(discrepancies::detail)),
        page(
            "post",
            "/discrepancies/{id}/comments",
            post(discrepancies::comment),
        ),
        page(
            "post",
            "/discrepancies/{id}/resolve",
            post(discrepancies::resolve),
        ),
        page("get", "/receipts", get(receipts::list)),
        page("get", "/receipts/{id}", get(receipts::detail)),
        page("get", "/pick-lists", get(pick_lists::list)),
        page("get", "/pick-lists/{id}", get(pick_lists::detail)),
        page("get", "/overview", get(charts::overview)),
        page("get", "/live/devices", get(live::devices)),
        page("get", "/live/discrepancies", get(live::discrepancies)),
        public("get", live::SCRIPT_PATH, get(live::script)),
        page("get", "/webhooks", get(webhooks::page)),
        page("get", "/reports", get(reports::page)),
    ]
}

/// Every `(method, path pattern, access)` of the dashboard, for tests that walk them all.
pub fn pages() -> Vec<(&'static str, &'static str, Access)> {
    table()
        .iter()
        .map(|p| (p.method, p.path, p.access))
        .collect()
}

/// The dashboard's routes, merged into the API router by [`crate::routes::app`].
pub(crate) fn router() -> Router<AppState> {
    let mut router = Router::new();
    for p in table() {
        router = router.route(p.path, p.handler);
    }
    router.layer(axum::middleware::map_response(security_headers))
}

/// Headers every dashboard answer carries. Pages hold stock figures: no caching (`no-store`, except where a
/// route set its own, like the stylesheet); no framing (clickjacking the logout or a resolve button); scripts
/// and styles only from this origin, never inline, so an escaping bug could not run script.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn home(_session: Session) -> Redirect {
    Redirect::to("/stock")
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("dashboard.css"),
    )
}

/// 303 See Other to `to`: the answer to a successful form post, so reloading the result does not post again.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Today's date on the server's clock (UTC), for "expires in N days".
pub(crate) fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

/// Why a page could not be shown; rendered as an HTML error page with the matching status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PageError {
    /// 400: a parameter or form field is malformed (the message names it).
    #[error("{0}")]
    BadRequest(String),
    /// 403: the form's CSRF token is missing or wrong.
    #[error("this form has expired or did not come from this dashboard: nothing was changed; reload the page and try again")]
    Csrf,
    /// 403: not allowed for another reason.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such page or record.
    #[error("{0}")]
    NotFound(String),
    /// 409: refused by a business rule (already resolved, no longer open...); nothing changed.
    #[error("{0}")]
    Refused(String),
    /// 413: the form is larger than the body limit.
    #[error("the form is too large")]
    TooLarge,
    /// 503: the store failed; details are logged, not shown.
    #[error("the database is unavailable right now; try again in a moment")]
    Unavailable,
    /// 500: a bug; details are logged, not shown.
    #[error("something went wrong on the server; the details are in its log")]
    Internal,
}

impl PageError {
    /// The status the page is served with.
    pub fn status(&self) -> StatusCode {
        match self {
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Csrf | PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Refused(_) => StatusCode::CONFLICT,
            PageError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            PageError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.status();
        (status, layout::error_page(status, &self.to_string())).into_response()
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::BadRequest { message, .. } => PageError::BadRequest(message),
            ApiError::Forbidden(m) => PageError::Forbidden(m),
            ApiError::NotFound(m) => PageError::NotFound(m),
            ApiError::Refused(m) | ApiError::Store(StoreError::Refused(m)) => PageError::Refused(m),
            ApiError::Store(StoreError::InvalidBatch(m)) => PageError::BadRequest(m),
            ApiError::PayloadTooLarge { .. } => PageError::TooLarge,
            ApiError::Store(e) => {
                tracing::error!(error = %e, "store failed while serving a dashboard page");
                PageError::Unavailable
            }
            other => {
                tracing::error!(error = %other, "dashboard page failed");
                PageError::Internal
            }
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e).into()
    }
}

impl From<tokio::task::JoinError> for PageError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::from(e).into()
    }
}

/// Runs blocking store work off the async workers (like the API's `blocking`), with page errors.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PageError> + Send + 'static,
) -> Result<T, PageError> {
    tokio::task::spawn_blocking(f).await?
}

/// How a table page answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The page.
    Html,
    /// The table as a CSV download (`?format=csv`).
    Csv,
}

/// The longest single parameter value accepted; anything longer is a 400 (no field of ours comes close).
const MAX_VALUE_CHARS: usize = 2048;
/// The most parameters or form fields accepted.
const MAX_FIELDS: usize = 64;

/// A query string or form body as `(name, value)` pairs, taken one by one through typed getters so each error
/// names its field; [`Fields::finish`] refuses whatever was not taken (a typo must not silently mean "all").
/// Empty values count as absent (HTML forms send `site=`). As an extractor it reads the query string.
#[derive(Debug, Default, Clone)]
pub struct Fields {
    pairs: Vec<(String, String)>,
}

impl Fields {
    /// Parses `application/x-www-form-urlencoded` text (a query string or a form body). Refuses repeated names,
    /// more than [`MAX_FIELDS`] fields and values over [`MAX_VALUE_CHARS`] characters.
    pub fn parse(encoded: &[u8]) -> Result<Self, PageError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(encoded) {
            if pairs.len() == MAX_FIELDS {
                return Err(PageError::BadRequest(format!(
                    "more than {MAX_FIELDS} parameters"
                )));
            }
            if value.chars().count() > MAX_VALUE_CHARS || name.chars().count() > 64 {
                return Err(PageError::BadRequest(format!(
                    "{}: value too long",
                    truncate(&name, 64)
                )));
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(PageError::BadRequest(format!(
                    "{name}: given more than once"
                )));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Fields { pairs })
    }

    /// The query string of `uri`.
    pub fn from_uri(uri: &Uri) -> Result<Self, PageError> {
        Self::parse(uri.query().unwrap_or("").as_bytes())
    }

    /// The raw value of `name`, if given and not empty.
    pub fn text(&mut self, name: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(n, _)| n == name)?;
        let (_, value) = self.pairs.remove(i);
        (!value.is_empty()).then_some(value)
    }

    /// A site, device or document id (1 to 64 of `A-Z a-z 0-9 . _ -`).
    pub fn name(&mut self, name: &str) -> Result<Option<String>, PageError> {
        Ok(self.text(name).map(|v| input::name(name, &v)).transpose()?)
    }

    /// A GTIN-8/12/13/14 with a correct check digit, as GTIN-14.
    pub fn gtin(&mut self, name: &str) -> Result<Option<String>, PageError> {
        Ok(self.text(name).map(|v| input::gtin(name, &v)).transpose()?)
    }

    /// A location code as devices may record it ([`location_code`]).
    pub fn location(&mut self, name: &str) -> Result<Option<String>, PageError> {
        self.text(name).map(|v| location_code(name, &v)).transpose()
    }

    /// A lot (1 to 20 printable ASCII characters, GS1 AI 10).
    pub fn lot(&mut self, name: &str) -> Result<Option<String>, PageError> {
        Ok(self
            .text(name)
            .map(|v| input::lot(name, &v).map(|()| v))
            .transpose()?)
    }

    /// Text for people: at most `max` characters, no control characters.
    pub fn short_text(&mut self, name: &str, max: usize) -> Result<Option<String>, PageError> {
        Ok(self
            .text(name)
            .map(|v| input::text(name, &v, max).map(|()| v))
            .transpose()?)
    }

    /// A non-negative integer.
    pub fn u64(&mut self, name: &str) -> Result<Option<u64>, PageError> {
        self.text(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    PageError::BadRequest(format!(
                        "{name}: {:?} is not a non-negative integer",
                        truncate(&v, 40)
                    ))
                })
            })
            .transpose()
    }

    /// One of `allowed` (exact match).
    pub fn one_of(
        &mut self,
        name: &str,
        allowed: &[&'static str],
    ) -> Result<Option<&'static str>, PageError> {
        match self.text(name) {
            None => Ok(None),
            Some(v) => allowed
                .iter()
                .find(|a| **a == v)
                .map(|a| Some(*a))
                .ok_or_else(|| {
                    PageError::BadRequest(format!(
                        "{name}: {:?} is not one of {}",
                        truncate(&v, 40),
                        allowed.join(", ")
                    ))
                }),
        }
    }

    /// `format=csv` asks for the table as CSV; absent (or `html`) for the page.
    pub fn format(&mut self) -> Result<Format, PageError> {
        Ok(match self.one_of("format", &["html", "csv"])? {
            Some("csv") => Format::Csv,
            _ => Format::Html,
        })
    }

    /// Refuses the first field nobody took.
    pub fn finish(self) -> Result<(), PageError> {
        match self.pairs.into_iter().next() {
            None => Ok(()),
            Some((name, _)) => Err(PageError::BadRequest(format!(
                "{}: unknown parameter",
                truncate(&name, 64)
            ))),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Fields {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, PageError> {
        Fields::from_uri(&parts.uri)
    }
}

/// A location code as it may appear in stock: what a movement may carry (1 to 64 bytes) without control
/// characters. Laxer than the office API's rule for creating locations (no `/` or `,`), because a device can
/// record a movement at a location the office never created, and its page and filter must still open.
pub fn location_code(field: &str, value: &str) -> Result<String, PageError> {
    if value.is_empty() || value.len() > 64 || value.chars().any(char::is_control) {
        return Err(PageError::BadRequest(format!(
            "{field}: {:?} is not 1 to 64 bytes without control characters",
            truncate(value, 70)
        )));
    }
    Ok(value.to_string())
}

/// At most `max` characters of `s`, for echoing bad input in messages.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Reads a form body (bounded by the body limit layer) as [`Fields`].
pub(crate) async fn form_fields(
    req: axum::extract::Request,
    state: &AppState,
) -> Result<Fields, PageError> {
    use axum::extract::FromRequest;
    let bytes = Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            PageError::TooLarge
        } else {
            PageError::BadRequest(r.body_text())
        }
    })?;
    Fields::parse(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One getter of [`Fields`] by name, its answer as text.
    fn take(fields: &mut Fields, getter: &str) -> Result<Option<String>, PageError> {
        let dirs = &["asc", "desc"];
        match getter {
            "name" => fields.name("v"),
            "gtin" => fields.gtin("v"),
            "lot" => fields.lot("v"),
            "location" => fields.location("v"),
            "u64" => fields.u64("v").map(|n| n.map(|n| n.to_string())),
            "dir" => fields.one_of("v", dirs).map(|d| d.map(str::to_string)),
            other => unreachable!("{other}"),
        }
    }

    #[test]
    fn fields_table() {
        // (query, getter, Ok(value) or Err(start of the message))
        #[rustfmt::skip]
        type Want = Result<Option<&'static str>, &'static str>;
        let cases: &[(&str, &str, Want)] = &[
            ("v=WH1", "name", Ok(Some("WH1"))),
            ("v=", "name", Ok(None)),
            ("", "name", Ok(None)),
            ("v=W%20H", "name", Err("v: ")),
            ("v=9506000134352", "gtin", Ok(Some("09506000134352"))),
            ("v=9506000134353", "gtin", Err("v: ")),
            ("v=L%3C1", "lot", Ok(Some("L<1"))),
            ("v=%00", "lot", Err("v: ")),
            ("v=ABCDEFGHIJKLMNOPQRSTU", "lot", Err("v: ")),
            ("v=A-01", "location", Ok(Some("A-01"))),
            ("v=A%2F01", "location", Ok(Some("A/01"))),
            ("v=A%0A", "location", Err("v: ")),
            ("v=12", "u64", Ok(Some("12"))),
            ("v=-1", "u64", Err("v: ")),
            ("v=up", "dir", Err("v: ")),
            ("v=desc", "dir", Ok(Some("desc"))),
        ];
        for (query, getter, want) in cases {
            let mut fields = Fields::parse(query.as_bytes()).unwrap();
            match (take(&mut fields, getter), want) {
                (Ok(got), Ok(want)) => assert_eq!(got.as_deref(), *want, "{query}"),
                (Err(e), Err(start)) => {
                    assert!(matches!(e, PageError::BadRequest(_)), "{query}: {e:?}");
                    assert!(e.to_string().starts_with(start), "{query}: {e}");
                }
                (got, want) => panic!("{query}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn parse_refuses_repeats_floods_and_long_values() {
        let long = format!("a={}", "x".repeat(MAX_VALUE_CHARS + 1));
        let many: String = (0..=MAX_FIELDS).map(|i| format!("f{i}=1&")).collect();
        let cases: &[(&str, bool)] = &[
            ("a=1&b=2", true),
            ("a=1&a=2", false),
            (&long, false),
            (&many, false),
            ("%FF=%FE", true),
        ];
        for (query, ok) in cases {
            assert_eq!(Fields::parse(query.as_bytes()).is_ok(), *ok, "{query:.40}");
        }
        let mut unknown = Fields::parse(b"site=WH1&colour=red").unwrap();
        assert_eq!(unknown.text("site").as_deref(), Some("WH1"));
        let e = unknown.finish().unwrap_err();
        assert_eq!(e.to_string(), "colour: unknown parameter");
    }

    #[test]
    fn page_errors_have_their_status() {
        let cases: &[(PageError, u16)] = &[
            (PageError::BadRequest("x".into()), 400),
            (PageError::Csrf, 403),
            (PageError::NotFound("x".into()), 404),
            (PageError::Refused("x".into()), 409),
            (PageError::from(StoreError::Postgres("down".into())), 503),
            (PageError::from(StoreError::Refused("twice".into())), 409),
            (PageError::from(ApiError::Internal("bug".into())), 500),
        ];
        for (e, status) in cases {
            assert_eq!(e.status().as_u16(), *status, "{e:?}");
        }
    }
}
