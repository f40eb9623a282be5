//! The shared page and the small pieces every table page is made of (links, pager, sortable headers).
//!
//! Everything here builds [`Markup`] with maud's `html!`, which escapes every spliced value; links are built with
//! [`href`] and [`path_segment`], which percent-encode, so data never reaches a URL or the markup unescaped.

use axum::http::StatusCode;
use maud::{html, Markup, DOCTYPE};

pub use super::session::csrf_field;
use super::session::Session;
use super::STYLESHEET_PATH;

/// The sections of the navigation bar; `None` for pages outside it (item, location, errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// `/stock`.
    Stock,
    /// `/devices`.
    Devices,
    /// `/discrepancies`.
    Discrepancies,
    /// `/receipts`.
    Receipts,
    /// `/pick-lists`.
    PickLists,
    /// `/overview` (movements per hour per site).
    Overview,
    /// `/webhooks` (ERP endpoints and failing deliveries).
    Webhooks,
    /// `/reports` (issue 9).
    Reports,
    /// No section is current.
    None,
}

/// The navigation bar's entries: section, path, label, element id.
const NAV: &[(Nav, &str, &str, &str)] = &[
    (Nav::Stock, "/stock", "Stock", "nav-stock"),
    (Nav::Devices, "/devices", "Devices", "nav-devices"),
    (
        Nav::Discrepancies,
        "/discrepancies",
        "Discrepancies",
        "nav-discrepancies",
    ),
    (Nav::Receipts, "/receipts", "Receipts", "nav-receipts"),
    (
        Nav::PickLists,
        "/pick-lists",
        "Pick lists",
        "nav-pick-lists",
    ),
    (Nav::Overview, "/overview", "Overview", "nav-overview"),
    (Nav::Webhooks, "/webhooks", "Webhooks", "nav-webhooks"),
    (Nav::Reports, "/reports", "Reports", "nav-reports"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Dockhand" }
            link rel="stylesheet" href=(STYLESHEET_PATH);
        }
    }
}

/// A whole dashboard page: navigation (with `current` marked), the logout button, `title` as its heading and
/// `content` below.
pub fn page(session: &Session, current: Nav, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    a.brand href="/stock" { "Dockhand" }
                    nav #nav aria-label="Sections" {
                        @for (section, path, label, id) in NAV {
                            @if *section == current {
                                a id=(id) href=(path) aria-current="page" { (label) }
                            } @else {
                                a id=(id) href=(path) { (label) }
                            }
                        }
                    }
                    form #logout method="post" action="/logout" {
                        (csrf_field(session))
                        button #logout-button type="submit" { "Log out" }
                    }
                }
                main #content {
                    h1 #title { (title) }
                    (content)
                }
            }
        }
    }
}

/// The login form; `error` after a failed attempt.
pub fn login_page(next: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Log in"))
            body.login {
                main #content {
                    h1 #title { "Dockhand office" }
                    @if let Some(error) = error {
                        p #login-error .error role="alert" { (error) }
                    }
                    form #login-form method="post" action="/login" {
                        input type="hidden" name="next" value=(next);
                        label for="token" { "Admin token" }
                        input #token type="password" name="token" autocomplete="current-password" required autofocus;
                        p.hint { "The contents of admin.token in the server's data directory." }
                        button #login-button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

/// An error page (no session needed, so no logout button).
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    a.brand href="/stock" { "Dockhand" }
                }
                main #content {
                    h1 #title { (status.as_u16()) " " (title) }
                    p #error .error data-status=(status.as_u16()) role="alert" { (message) }
                    p { a href="/stock" { "Back to stock" } }
                }
            }
        }
    }
}

/// A one-button form that posts to `action` with the CSRF token and `fields` as hidden inputs. `id` is the
/// button's id (for tests).
pub fn post_button(
    session: &Session,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    id: &str,
) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(session))
            @for (name, value) in fields {
                input type="hidden" name=(name) value=(value);
            }
            button id=(id) type="submit" { (label) }
        }
    }
}

/// Characters a path segment keeps as they are (RFC 3986 unreserved); everything else is percent-encoded.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `text` as one URL path segment: `A-01/2?x` → `A-01%2F2%3Fx`.
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path` with a query string of the non-empty `params` (form-encoded), e.g. `/stock?site=WH1&sort=qty`.
pub fn href(path: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (name, value) in params {
        if !value.is_empty() {
            query.append_pair(name, value);
            any = true;
        }
    }
    if any {
        format!("{path}?{}", query.finish())
    } else {
        path.to_string()
    }
}

/// The item page of a GTIN.
pub fn item_href(gtin: &str) -> String {
    format!("/items/{}", path_segment(gtin))
}

/// The location page of a location.
pub fn location_href(site: &str, code: &str) -> String {
    format!(
        "/sites/{}/locations/{}",
        path_segment(site),
        path_segment(code)
    )
}

/// Previous / next / first links; each only when it leads somewhere.
pub fn pager(first: Option<&str>, prev: Option<&str>, next: Option<&str>) -> Markup {
    html! {
        nav.pager aria-label="Pages" {
            @if let Some(first) = first { a #first-page href=(first) { "« First" } }
            @if let Some(prev) = prev { a #prev-page rel="prev" href=(prev) { "‹ Previous" } }
            @if let Some(next) = next { a #next-page rel="next" href=(next) { "Next ›" } }
        }
    }
}

/// The "Download CSV" link of a table.
pub fn csv_link(href: &str) -> Markup {
    html! { a #csv-link .button href=(href) download { "Download CSV" } }
}

/// A column header that sorts by `key`: a link to ascending, or to the other direction when it is already the
/// sort (marked with `aria-sort` and an arrow). `link(key, descending)` builds the target.
pub fn sort_header(
    label: &str,
    key: &str,
    current: (&str, bool),
    link: impl Fn(&str, bool) -> String,
) -> Markup {
    let active = current.0 == key;
    let descending = current.1;
    let target = link(key, active && !descending);
    html! {
        @if active {
            th data-sort=(key) aria-sort=(if descending { "descending" } else { "ascending" }) {
                a data-test="sort-link" href=(target) { (label) " " (if descending { "▼" } else { "▲" }) }
            }
        } @else {
            th data-sort=(key) {
                a data-test="sort-link" href=(target) { (label) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_table() {
        let cases: &[(String, &str)] = &[
            (path_segment("A-01"), "A-01"),
            (path_segment("A 1/2?#%"), "A%201%2F2%3F%23%25"),
            (path_segment("Lager-Ä"), "Lager-%C3%84"),
            (item_href("09506000134352"), "/items/09506000134352"),
            (location_href("WH1", "B/7"), "/sites/WH1/locations/B%2F7"),
            (href("/stock", &[]), "/stock"),
            (href("/stock", &[("site", ""), ("lot", "")]), "/stock"),
            (
                href("/stock", &[("site", "WH1"), ("lot", "a&b=c d")]),
                "/stock?site=WH1&lot=a%26b%3Dc+d",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn markup_escapes_data() {
        let cases: &[(&str, &str)] = &[
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            (
                "\"><img src=x onerror=alert(1)>",
                "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;",
            ),
        ];
        for (evil, escaped) in cases {
            let page = login_page(evil, Some(evil)).into_string();
            assert!(!page.contains(evil), "{evil}");
            assert!(page.contains(escaped), "{escaped} in {page}");
        }
    }
}
