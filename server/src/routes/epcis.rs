//! `GET /v1/epcis/events` (admin): stored movements as one GS1 EPCIS 2.0 `EPCISDocument` per page (the mapping
//! is [`crate::epcis`]).
//!
//! Query parameters, checked like every office route (a bad, repeated or unknown one is a 400 naming it):
//!
//! - `site`: only movements recorded at this site. Optional: an ERP that takes the whole company's events
//!   pages through them once instead of once per site; location URIs carry the site, so nothing is ambiguous.
//! - `since`, `until`: RFC 3339; `since <= eventTime < until`, eventTime being the device time.
//! - `limit`: events per page, 1..=1000, default 100. Out of range is refused, not clamped.
//! - `after`: the cursor, a `server_seq`; 0 (the default) starts at the beginning.
//!
//! # Paging
//!
//! Events come in server commit order. When more match, the answer has `Link: <...&after=N>; rel="next"` (RFC
//! 8288), the URL of the next page with the same filters, as the EPCIS 2.0 REST binding announces its next page;
//! `Dockhand-Next-After: N` carries the bare cursor for scripts. No `Link` means this was the last page. A cursor
//! is a position in the history, so it never expires (no `GS1-Next-Page-Token-Expires`), and movements applied
//! later get higher positions. One caveat for a client that follows the newest events closely: with PostgreSQL,
//! positions are drawn when a push inserts, not when it commits (store/postgres.rs), so a page read while two
//! pushes commit may show the later position before the earlier one is visible. Such a client should re-read from
//! a cursor somewhat behind its last one; `eventID`s are stable, so a re-read event is recognised, not doubled.
//!
//! The document is JSON-LD, served as `application/ld+json` with the `GS1-EPCIS-Version` and `GS1-CBV-Version`
//! headers of the EPCIS 2.0 REST binding.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, LINK};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use dockhand_protocol::gs1::digital_link::percent_encode;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::blocking;
use super::input::Params;
use crate::auth::AdminAuth;
use crate::epcis::{self, MasterData, PRIVATE_BASE};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::MovementFilter;

/// This route's path, also the base of the `Link` to the next page.
pub(crate) const PATH: &str = "/v1/epcis/events";

/// Default and largest page.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The bare next-page cursor.
const NEXT_AFTER: HeaderName = HeaderName::from_static("dockhand-next-after");
const EPCIS_VERSION: HeaderName = HeaderName::from_static("gs1-epcis-version");
const CBV_VERSION: HeaderName = HeaderName::from_static("gs1-cbv-version");

/// The checked query (the first step: syntax and ranges; the store is not touched until all of it is valid).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Query {
    site: Option<String>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    after: u64,
    limit: usize,
}

impl Query {
    fn parse(mut q: Params) -> Result<Query, ApiError> {
        let query = Query {
            site: q.name("site")?,
            since: q.time("since")?,
            until: q.time("until")?,
            after: q.u64("after")?.unwrap_or(0),
            limit: q.limit("limit", DEFAULT_LIMIT, MAX_LIMIT)?,
        };
        q.finish()?;
        if let (Some(since), Some(until)) = (query.since, query.until) {
            if until < since {
                return Err(ApiError::bad_field("until", "is before since"));
            }
        }
        Ok(query)
    }

    /// The URL of the page after `next`, with the same filters.
    fn next_url(&self, next: u64) -> Result<String, ApiError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(site) = &self.site {
            params.push(("site", site.clone()));
        }
        for (name, t) in [("since", self.since), ("until", self.until)] {
            if let Some(t) = t {
                let text = t
                    .format(&Rfc3339)
                    .map_err(|e| ApiError::Internal(format!("formatting {name}: {e}")))?;
                params.push((name, text));
            }
        }
        params.push(("limit", self.limit.to_string()));
        params.push(("after", next.to_string()));
        let query: Vec<String> = params
            .iter()
            .map(|(name, value)| format!("{name}={}", percent_encode(value)))
            .collect();
        Ok(format!("{PATH}?{}", query.join("&")))
    }
}

pub(crate) async fn events(
    _admin: AdminAuth,
    State(state): State<AppState>,
    q: Params,
) -> Result<Response, ApiError> {
    let query = Query::parse(q)?;
    let filter = MovementFilter {
        site: query.site.clone(),
        since: query.since,
        until: query.until,
        ..MovementFilter::default()
    };
    let (after, limit) = (query.after, query.limit);
    let store = state.store.clone();
    let (page, master) = blocking(move || {
        let page = store.movements(&filter, after, limit)?;
        // Only the master data this page names: its sites' locations (for GLNs) and its items (for units).
        let mut master = MasterData::default();
        let sites: BTreeSet<&str> = page.movements.iter().map(|m| m.site.as_str()).collect();
        for site in sites {
            master.add_locations(site, &store.locations(site)?);
        }
        let gtins: BTreeSet<&str> = page
            .movements
            .iter()
            .map(|m| m.movement.gtin.as_str())
            .collect();
        for gtin in gtins {
            if let Some(item) = store.item(gtin)? {
                master.add_item(&item);
            }
        }
        Ok((page, master))
    })
    .await?;

    // A movement that cannot be exported is a server-side data problem: 500 with the details in the log, never a
    // document that silently lacks it.
    let events = page
        .movements
        .iter()
        .map(|m| epcis::object_event(m, &master, PRIVATE_BASE))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let doc = epcis::document(events, OffsetDateTime::now_utc(), PRIVATE_BASE)
        .map_err(|e| ApiError::Internal(format!("formatting creationDate: {e}")))?;
    let body = serde_json::to_vec(&doc)
        .map_err(|e| ApiError::Internal(format!("serialising the EPCIS document: {e}")))?;

    let mut response = (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("application/ld+json"),
            ),
            (EPCIS_VERSION, HeaderValue::from_static("2.0.0")),
            (CBV_VERSION, HeaderValue::from_static("2.0.0")),
        ],
        body,
    )
        .into_response();
    if let Some(next) = page.next {
        let link = format!("<{}>; rel=\"next\"", query.next_url(next)?);
        let headers = response.headers_mut();
        headers.insert(LINK, header_value(&link)?);
        headers.insert(NEXT_AFTER, HeaderValue::from(next));
    }
    Ok(response)
}

fn header_value(text: &str) -> Result<HeaderValue, ApiError> {
    // Percent-encoding leaves only ASCII, so this cannot fail; a bug would be a 500, not a panic.
    HeaderValue::from_str(text).map_err(|e| ApiError::Internal(format!("header {text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn next_url_keeps_the_filters() {
        let query = Query {
            site: Some("WH1".into()),
            since: Some(datetime!(2026-11-26 10:15:00 +01:00)),
            until: None,
            after: 3,
            limit: 50,
        };
        assert_eq!(
            query.next_url(42).unwrap(),
            "/v1/epcis/events?site=WH1&since=2026-11-26T10%3A15%3A00%2B01%3A00&limit=50&after=42"
        );
        let bare = Query {
            site: None,
            since: None,
            until: None,
            after: 0,
            limit: 100,
        };
        assert_eq!(
            bare.next_url(1).unwrap(),
            "/v1/epcis/events?limit=100&after=1"
        );
    }
}
