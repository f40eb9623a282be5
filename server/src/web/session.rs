//! Dashboard sessions: a stateless signed cookie, the login and logout handlers, and the CSRF check.
//!
//! # The cookie
//!
//! ```text
//! __Host-dockhand_session = "v1." expires "." nonce "." mac
//!     expires  Unix seconds (decimal) after which the session is refused
//!     nonce    16 random bytes, hex: the session's identity (its CSRF token derives from it)
//!     mac      HMAC-SHA256("v1." expires "." nonce), hex, keyed by AdminToken::derive_key("dashboard session v1")
//! attributes: Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Strict
//! ```
//!
//! Nothing is stored on the server: any node holding the same `admin.token` derives the same key and accepts the
//! cookie, which is what several nodes on one PostgreSQL need. The price is that a session cannot be revoked one by
//! one: logging out deletes the cookie in that browser; a copied cookie stays valid until it expires (at most
//! [`SESSION_LIFETIME`]). Replacing `admin.token` ends every session at once. The `__Host-` prefix makes browsers
//! refuse the cookie unless it is `Secure`, host-only and `Path=/`, so a sibling subdomain cannot plant one.
//!
//! # CSRF
//!
//! `SameSite=Strict` already keeps the cookie off cross-site posts; the token is the second lock, for browsers or
//! proxies that get that wrong. It is `HMAC-SHA256(nonce)` under a second derived key, hex: one per session, the
//! same in every form of it, unknowable without the key, and checked in constant time by [`CsrfForm`].

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use maud::html;
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use super::{form_fields, layout, Fields, PageError};
use crate::auth::AdminToken;
use crate::state::AppState;

/// The session cookie's name (the `__Host-` prefix: see the module docs).
pub const SESSION_COOKIE: &str = "__Host-dockhand_session";

/// How long a session lasts from login: a working day and a bit, so a shift never logs in twice.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// The cookie format's version tag.
const VERSION: &str = "v1";

/// The keys that sign sessions and their CSRF tokens, derived from the admin token.
#[derive(Clone)]
pub struct SessionKey {
    session: [u8; 32],
    csrf: [u8; 32],
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// Why a cookie is not a session (logged at debug level; the user just sees the login form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// No session cookie.
    #[error("no session cookie")]
    Missing,
    /// Not of the form `v1.expires.nonce.mac`.
    #[error("malformed session cookie")]
    Malformed,
    /// The signature does not match: forged, tampered with, or signed under another admin token.
    #[error("session cookie signature does not match")]
    BadSignature,
    /// Past its expiry.
    #[error("session expired")]
    Expired,
}

/// A valid dashboard session: extract it first in every page handler (see the module docs of [`super`]).
#[derive(Clone)]
pub struct Session {
    expires: OffsetDateTime,
    csrf: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The CSRF token every form of this session carries in its [`CSRF_FIELD`] field.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// When the session ends.
    pub fn expires(&self) -> OffsetDateTime {
        self.expires
    }

    /// Whether `presented` is this session's CSRF token (constant time).
    fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8; 32]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes a key of any length")
}

impl SessionKey {
    /// The keys of the dashboard run by the holder of `admin`.
    pub fn new(admin: &AdminToken) -> Self {
        SessionKey {
            session: admin.derive_key("dashboard session v1"),
            csrf: admin.derive_key("dashboard csrf v1"),
        }
    }

    /// A new session cookie value, valid for [`SESSION_LIFETIME`] from `now`.
    pub fn issue(&self, now: OffsetDateTime) -> String {
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        self.issue_with(now + SESSION_LIFETIME, nonce)
    }

    /// The cookie value of the session `nonce` ending at `expires` (tests use it to make expired sessions).
    pub fn issue_with(&self, expires: OffsetDateTime, nonce: [u8; 16]) -> String {
        let body = format!(
            "{VERSION}.{}.{}",
            expires.unix_timestamp(),
            hex::encode(nonce)
        );
        let mut m = mac(&self.session);
        m.update(body.as_bytes());
        format!("{body}.{}", hex::encode(m.finalize().into_bytes()))
    }

    /// The session a cookie value stands for at `now`.
    pub fn verify(&self, value: &str, now: OffsetDateTime) -> Result<Session, SessionError> {
        let (body, tag) = value.rsplit_once('.').ok_or(SessionError::Malformed)?;
        let mut parts = body.split('.');
        let (Some(VERSION), Some(expires), Some(nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SessionError::Malformed);
        };
        let tag = decode_hex::<32>(tag).ok_or(SessionError::Malformed)?;
        let nonce = decode_hex::<16>(nonce).ok_or(SessionError::Malformed)?;
        // Only digits: `i64::from_str` would also take a sign, which the signer never writes.
        if expires.is_empty() || expires.len() > 12 || !expires.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(SessionError::Malformed);
        }
        let mut m = mac(&self.session);
        m.update(body.as_bytes());
        m.verify_slice(&tag)
            .map_err(|_| SessionError::BadSignature)?;
        let expires = expires
            .parse::<i64>()
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .ok_or(SessionError::Malformed)?;
        if now >= expires {
            return Err(SessionError::Expired);
        }
        let mut m = mac(&self.csrf);
        m.update(&nonce);
        Ok(Session {
            expires,
            csrf: hex::encode(m.finalize().into_bytes()),
        })
    }

    /// The session of a request, from any of its `Cookie` headers.
    pub fn from_headers(
        &self,
        headers: &HeaderMap,
        now: OffsetDateTime,
    ) -> Result<Session, SessionError> {
        let mut outcome = Err(SessionError::Missing);
        for value in cookie_values(headers, SESSION_COOKIE) {
            match self.verify(value, now) {
                Ok(session) => return Ok(session),
                Err(e) => outcome = Err(e),
            }
        }
        outcome
    }
}

fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    // Lowercase only, as written: one spelling per session.
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// The values of every cookie called `name` in the request's `Cookie` headers.
fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name).then_some(v)
        })
}

fn set_cookie(value: &str, max_age: i64) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
    )
}

/// A 303 to the login form that comes back to `next` afterwards.
fn to_login(next: Option<&str>) -> Response {
    let location = match next.and_then(safe_next) {
        Some(next) if next != "/" => super::layout::href("/login", &[("next", next)]),
        _ => "/login".to_string(),
    };
    (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
}

/// `next` if it is a path of this site (`/stock?site=WH1`), else `None`. Refuses what a browser could read as
/// another origin (`//evil`, `/\evil`, `https://evil`) or a different scheme, and control characters.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 2048
        && !next.chars().any(|c| c.is_control() || c == '\\');
    ok.then_some(next)
}

impl FromRequestParts<AppState> for Session {
    /// A 303 to `/login`, back to this page afterwards when it is one a browser can GET.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let key = SessionKey::new(&state.admin);
        match key.from_headers(&parts.headers, OffsetDateTime::now_utc()) {
            Ok(session) => Ok(session),
            Err(e) => {
                if e != SessionError::Missing {
                    tracing::debug!(reason = %e, path = %parts.uri.path(), "dashboard session refused");
                }
                let next = (parts.method == Method::GET || parts.method == Method::HEAD)
                    .then(|| parts.uri.path_and_query().map(|p| p.as_str()))
                    .flatten();
                Err(to_login(next))
            }
        }
    }
}

/// A form posted from the dashboard: the session is valid and the form's CSRF token is this session's (else a
/// 303 to the login or a 403 page, and the handler does not run). `fields` holds the other fields.
#[derive(Debug)]
pub struct CsrfForm {
    /// The session that posted.
    pub session: Session,
    /// The form's fields without the token.
    pub fields: Fields,
}

impl FromRequest<AppState> for CsrfForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let mut fields = form_fields(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match fields.text(CSRF_FIELD) {
            Some(token) if session.csrf_matches(&token) => Ok(CsrfForm { session, fields }),
            presented => {
                tracing::warn!(
                    token = if presented.is_some() {
                        "wrong"
                    } else {
                        "missing"
                    },
                    "dashboard form refused: CSRF token does not match the session"
                );
                Err(PageError::Csrf.into_response())
            }
        }
    }
}

/// `GET /login[?next=/path]`: the form; straight on to `next` with a session already.
pub(super) async fn login_form(State(state): State<AppState>, parts: Parts) -> Response {
    let mut fields = Fields::from_uri(&parts.uri).unwrap_or_default();
    let next = fields.text("next");
    let next = next.as_deref().and_then(safe_next).unwrap_or("/");
    let key = SessionKey::new(&state.admin);
    if key
        .from_headers(&parts.headers, OffsetDateTime::now_utc())
        .is_ok()
    {
        return super::see_other(next);
    }
    layout::login_page(next, None).into_response()
}

/// `POST /login` (`token`, `next`): a session cookie and 303 to `next` for the admin token; the form again with
/// 401 and no cookie for anything else.
pub(super) async fn login(State(state): State<AppState>, req: Request) -> Response {
    // A form that does not even parse (a pasted novel) is a failed login like any other, not a 400.
    let mut fields = match form_fields(req, &state).await {
        Ok(f) => f,
        Err(PageError::BadRequest(_)) => Fields::default(),
        Err(e) => return e.into_response(),
    };
    let next = fields.text("next");
    let next = next
        .as_deref()
        .and_then(safe_next)
        .unwrap_or("/")
        .to_string();
    let token = fields.text("token").unwrap_or_default();
    // The file ends with a newline and people paste with spaces; the token itself never has either.
    if token.len() > 1024 || !state.admin.verify(token.trim()) {
        tracing::warn!("dashboard login refused: wrong admin token");
        let error = "That is not the admin token. Paste the whole contents of admin.token from the server's \
                     data directory.";
        return (
            StatusCode::UNAUTHORIZED,
            layout::login_page(&next, Some(error)),
        )
            .into_response();
    }
    let value = SessionKey::new(&state.admin).issue(OffsetDateTime::now_utc());
    tracing::info!("dashboard login");
    (
        StatusCode::SEE_OTHER,
        [
            (
                SET_COOKIE,
                set_cookie(&value, SESSION_LIFETIME.whole_seconds()),
            ),
            (LOCATION, next),
        ],
    )
        .into_response()
}

/// `POST /logout` (CSRF form): deletes the cookie and shows the login form.
pub(super) async fn logout(form: CsrfForm) -> Response {
    drop(form);
    (
        StatusCode::SEE_OTHER,
        [
            (SET_COOKIE, set_cookie("", 0)),
            (LOCATION, "/login".to_string()),
        ],
    )
        .into_response()
}

/// The hidden field that carries the session's CSRF token; put it in every `POST` form.
pub fn csrf_field(session: &Session) -> maud::Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf_token()); }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey::new(&AdminToken::from_secret("admin-secret"))
    }

    #[test]
    fn verify_table() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let good = key().issue_with(now + Duration::hours(1), [7; 16]);
        let (body, tag) = good.rsplit_once('.').unwrap();
        let mut flipped = tag.to_string();
        flipped.replace_range(0..1, if tag.starts_with('0') { "1" } else { "0" });
        let other = SessionKey::new(&AdminToken::from_secret("another"))
            .issue_with(now + Duration::hours(1), [7; 16]);
        let later = good.replacen(
            &(now + Duration::hours(1)).unix_timestamp().to_string(),
            &(now + Duration::days(365)).unix_timestamp().to_string(),
            1,
        );
        let cases: &[(&str, String, Result<(), SessionError>)] = &[
            ("valid", good.clone(), Ok(())),
            (
                "tampered mac",
                format!("{body}.{flipped}"),
                Err(SessionError::BadSignature),
            ),
            ("extended expiry", later, Err(SessionError::BadSignature)),
            ("other admin token", other, Err(SessionError::BadSignature)),
            (
                "expired",
                key().issue_with(now, [7; 16]),
                Err(SessionError::Expired),
            ),
            (
                "uppercase mac",
                format!("{body}.{}", tag.to_uppercase()),
                Err(SessionError::Malformed),
            ),
            ("empty", String::new(), Err(SessionError::Malformed)),
            ("garbage", "hello".into(), Err(SessionError::Malformed)),
            (
                "v2",
                good.replacen("v1.", "v2.", 1),
                Err(SessionError::Malformed),
            ),
            (
                "extra part",
                format!("v1.1.{}.{}", "00".repeat(16), good),
                Err(SessionError::Malformed),
            ),
            (
                "signed expiry",
                good.replacen("v1.", "v1.-", 1),
                Err(SessionError::Malformed),
            ),
        ];
        for (name, value, want) in cases {
            assert_eq!(key().verify(value, now).map(|_| ()), *want, "{name}");
        }
    }

    #[test]
    fn csrf_is_per_session_and_stable() {
        let now = OffsetDateTime::now_utc();
        let until = now + Duration::hours(1);
        let a = key()
            .verify(&key().issue_with(until, [1; 16]), now)
            .unwrap();
        let a_again = key()
            .verify(&key().issue_with(until, [1; 16]), now)
            .unwrap();
        let b = key().verify(&key().issue(now), now).unwrap();
        assert_eq!(a.csrf_token(), a_again.csrf_token());
        assert_ne!(a.csrf_token(), b.csrf_token());
        assert!(a.csrf_matches(a.csrf_token()));
        assert!(!a.csrf_matches(b.csrf_token()));
        assert!(!a.csrf_matches(""));
    }

    #[test]
    fn safe_next_table() {
        let cases: &[(&str, bool)] = &[
            ("/", true),
            ("/stock?site=WH1&sort=qty", true),
            ("/items/09506000134352", true),
            ("//evil.example/x", false),
            ("/\\evil.example", false),
            ("https://evil.example/", false),
            ("javascript:alert(1)", false),
            ("stock", false),
            ("/a\r\nSet-Cookie: x=1", false),
            ("", false),
        ];
        for (next, ok) in cases {
            assert_eq!(safe_next(next).is_some(), *ok, "{next:?}");
        }
    }

    #[test]
    fn cookie_values_finds_every_copy() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, "a=1; __Host-dockhand_session=x".parse().unwrap());
        headers.append(COOKIE, "__Host-dockhand_session=y;b=2".parse().unwrap());
        let found: Vec<&str> = cookie_values(&headers, SESSION_COOKIE).collect();
        assert_eq!(found, ["x", "y"]);
    }
}
