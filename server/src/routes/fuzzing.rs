//! Entry points for the fuzz targets in `fuzz/` (hidden from the docs; not an API, no stability promise).
//!
//! Each runs exactly the code a handler runs on a request's body or query string before it touches the store, so
//! the targets can hammer the request parsing without a server, a socket or a database. Nothing here is
//! reimplemented: the functions only reach the crate-private parsers the handlers use.

use axum::http::Uri;
use dockhand_protocol::sync::{Asn, DocStatus, PickList, PushRequest};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::import::csv_text;
use super::input::Params;
use super::{asn_import, asns, devices, discrepancies, items, locations, pick_lists, sites, sync};
use crate::devices::{is_valid_name, Device};
use crate::error::ApiError;
use crate::store::{StoreError, OFFICE_DEVICE};

/// The site of the device [`check_push`] pretends is calling.
pub const PUSH_SITE: &str = "WH1";

/// The device [`check_push`] pretends is calling when the body names one that could not have enrolled.
pub const OTHER_DEVICE: &str = "fuzz-device";

/// The JSON body parser of every route ([`super::JsonBody`]): errors name the path of the bad value.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    super::parse_json(bytes)
}

/// The push handler's checks on a parsed body, as if the device the body names had sent it. A body naming an id
/// no device can enroll with (see [`crate::devices::enroll`]) is checked as sent by [`OTHER_DEVICE`] instead, so
/// it fails the credential check as it would on a server.
pub fn check_push(req: &PushRequest) -> Result<(), ApiError> {
    let enrollable = is_valid_name(&req.device_id) && req.device_id != OFFICE_DEVICE;
    let id = if enrollable {
        req.device_id.clone()
    } else {
        OTHER_DEVICE.to_string()
    };
    let device = Device {
        id,
        site: PUSH_SITE.to_string(),
    };
    sync::check(&device, req)
}

/// The store's own check of a batch ([`crate::store::Store::push`] runs it in every backend). Anything it refuses
/// that [`check_push`] let through reaches the device as a 503 it retries forever, instead of a 400.
pub fn store_check_push(req: &PushRequest) -> Result<(), StoreError> {
    crate::store::check_push(PUSH_SITE, &req.device_id, &req.movements)
}

/// The office's request bodies: JSON documents and the CSV imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Office {
    /// `POST /v1/asns`: parsed and checked.
    Asn,
    /// `POST /v1/pick-lists`: parsed and checked.
    PickList,
    /// `POST /v1/pick-lists/{id}/assign`: parsed.
    Assign,
    /// `PUT /v1/items/{gtin}`: parsed.
    Item,
    /// `PUT /v1/sites/{site}/locations/{code}`: parsed.
    Location,
    /// `PUT /v1/sites/{code}`: parsed.
    Site,
    /// `PUT /v1/sites`: parsed.
    Sites,
    /// `POST /v1/discrepancies/{id}/comments`: parsed.
    Comment,
    /// `POST /v1/discrepancies/{id}/resolve`: parsed.
    Resolve,
    /// `POST /v1/devices`: parsed.
    Enroll,
    /// `POST /v1/items/import` (`text/csv`): parsed and checked row by row.
    ItemsCsv,
    /// `POST /v1/sites/{site}/locations/import` (`text/csv`): parsed and checked row by row.
    LocationsCsv,
    /// `POST /v1/asns/import` (`text/csv`): parsed, checked row by row and assembled into ASNs.
    AsnsCsv,
    /// `POST /v1/items/import` (`application/json`): checked element by element.
    ItemsJson,
    /// `POST /v1/sites/{site}/locations/import` (`application/json`): checked element by element.
    LocationsJson,
    /// `POST /v1/asns/import` (`application/json`): checked element by element.
    AsnsJson,
}

impl Office {
    /// Every body, in a fixed order (the fuzz target picks one by index).
    pub const ALL: [Office; 16] = [
        Office::Asn,
        Office::PickList,
        Office::Assign,
        Office::Item,
        Office::Location,
        Office::Site,
        Office::Sites,
        Office::Comment,
        Office::Resolve,
        Office::Enroll,
        Office::ItemsCsv,
        Office::LocationsCsv,
        Office::AsnsCsv,
        Office::ItemsJson,
        Office::LocationsJson,
        Office::AsnsJson,
    ];

    /// A CSV import rather than a JSON body.
    pub fn is_csv(self) -> bool {
        matches!(
            self,
            Office::ItemsCsv | Office::LocationsCsv | Office::AsnsCsv
        )
    }

    /// An import (CSV or a JSON array), whose errors are reported row by row ([`ApiError::BadRows`]).
    pub fn is_import(self) -> bool {
        self.is_csv()
            || matches!(
                self,
                Office::ItemsJson | Office::LocationsJson | Office::AsnsJson
            )
    }
}

/// What the handler of `kind` makes of `bytes` before the store: the JSON parser and, where the route has one
/// apart from the store, its check; for an import the UTF-8 check of a CSV body and the row checks.
pub fn office_body(kind: Office, bytes: &[u8]) -> Result<(), ApiError> {
    match kind {
        Office::Asn => asns::check(&mut parse_json::<Asn>(bytes)?),
        Office::PickList => pick_lists::check(&mut parse_json::<PickList>(bytes)?),
        Office::Assign => parse_json::<pick_lists::Assign>(bytes).map(drop),
        Office::Item => parse_json::<items::ItemBody>(bytes).map(drop),
        Office::Location => parse_json::<locations::LocationBody>(bytes).map(drop),
        Office::Site => parse_json::<sites::SiteBody>(bytes).map(drop),
        Office::Sites => parse_json::<sites::Sites>(bytes).map(drop),
        Office::Comment => parse_json::<discrepancies::CommentBody>(bytes).map(drop),
        Office::Resolve => parse_json::<discrepancies::ResolveBody>(bytes).map(drop),
        Office::Enroll => parse_json::<devices::Enroll>(bytes).map(drop),
        Office::ItemsCsv => items::parse_items(&csv_text(bytes)?).map(drop),
        Office::LocationsCsv => locations::parse_locations(&csv_text(bytes)?).map(drop),
        Office::AsnsCsv => asn_import::parse_asns(&csv_text(bytes)?).map(drop),
        Office::ItemsJson => items::items_from_json(bytes).map(drop),
        Office::LocationsJson => locations::locations_from_json(bytes).map(drop),
        Office::AsnsJson => asn_import::asns_from_json(bytes).map(drop),
    }
}

/// A request's query string as the handlers take it, with their typed getters. Each getter takes its parameter
/// out, so asking twice gives `None` the second time; [`Query::finish`] refuses whatever is left.
#[derive(Debug)]
pub struct Query(Params);

impl Query {
    /// Parses the query string of `/?{query}`; `None` when that is not a URI a request could carry at all.
    pub fn parse(query: &str) -> Option<Result<Query, ApiError>> {
        let uri: Uri = format!("/?{query}").parse().ok()?;
        Some(Params::from_uri(&uri).map(Query))
    }

    /// The raw value; empty counts as absent.
    pub fn text(&mut self, name: &str) -> Option<String> {
        self.0.text(name)
    }

    /// A site, device or document id.
    pub fn name(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        self.0.name(name)
    }

    /// A GTIN, normalised to GTIN-14.
    pub fn gtin(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        self.0.gtin(name)
    }

    /// A location code.
    pub fn location(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        self.0.location(name)
    }

    /// Free text up to `max` characters.
    pub fn short_text(&mut self, name: &str, max: usize) -> Result<Option<String>, ApiError> {
        self.0.short_text(name, max)
    }

    /// A non-negative integer.
    pub fn u64(&mut self, name: &str) -> Result<Option<u64>, ApiError> {
        self.0.u64(name)
    }

    /// A page size, `default` when absent, else 1..=`max`.
    pub fn limit(&mut self, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
        self.0.limit(name, default, max)
    }

    /// An RFC 3339 time.
    pub fn time(&mut self, name: &str) -> Result<Option<OffsetDateTime>, ApiError> {
        self.0.time(name)
    }

    /// A document status (`open`, `closed`, `cancelled`), the one snake_case choice every list route shares.
    pub fn status(&mut self, name: &str) -> Result<Option<DocStatus>, ApiError> {
        self.0.choice(name, "open, closed, cancelled")
    }

    /// Refuses whatever parameter was not taken.
    pub fn finish(self) -> Result<(), ApiError> {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(body kind, body, Ok, the field an error names)`: one realistic body and one bad one of each kind.
    #[test]
    fn office_body_table() {
        let cases: &[(Office, &str, Option<&str>)] = &[
            (
                Office::Asn,
                r#"{"id":"ASN-1","site":"WH1","lines":[{"gtin":"9506000134352","qty":5}]}"#,
                None,
            ),
            (
                Office::Asn,
                r#"{"id":"ASN-1","site":"WH1","lines":[{"gtin":"9506000134353","qty":5}]}"#,
                Some("lines[0].gtin"),
            ),
            (
                Office::PickList,
                r#"{"id":"P1","site":"WH1","lines":[{"line":1,"location":"A-01","gtin":"09506000134352","qty":2}]}"#,
                None,
            ),
            (
                Office::PickList,
                r#"{"id":"P1","site":"WH1","lines":[]}"#,
                Some("lines"),
            ),
            (Office::Assign, r#"{"device":"dev-1"}"#, None),
            (Office::Assign, r#"{"devise":"dev-1"}"#, Some("devise")),
            (Office::Item, r#"{"description":"Widget"}"#, None),
            (Office::Item, r#"{}"#, Some("description")),
            (Office::Location, r#"{"zone":"cold"}"#, None),
            (Office::Location, r#"{"active":"no"}"#, Some("active")),
            (Office::Site, r#"{"name":"Main"}"#, None),
            (Office::Sites, r#"{"sites":[{"code":"WH1"}]}"#, None),
            (Office::Sites, r#"{"sites":[{}]}"#, Some("sites[0].code")),
            // An empty unknown key names the object holding it (fuzz/regressions/push_request/empty-unknown-key).
            (Office::Sites, r#"{"sites":[{"code":"A","":1}]}"#, Some("sites[0]")),
            (Office::Comment, r#"{"author":"ann","text":"x"}"#, None),
            (Office::Comment, r#"{"author":"ann"}"#, Some("text")),
            (Office::Resolve, r#"{"type":"accepted","reason":"ok"}"#, None),
            (
                Office::Resolve,
                r#"{"type":"shrug","reason":"ok"}"#,
                Some("type"),
            ),
            (Office::Enroll, r#"{"device_id":"d","site":"WH1"}"#, None),
            (
                Office::ItemsCsv,
                "\u{feff}gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked\n9506000134352,W,EA,1,0,0\n",
                None,
            ),
            (
                Office::ItemsCsv,
                "gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked\n9506000134352,W,EA,maybe,0,0\n",
                Some("lot_tracked"),
            ),
            (Office::LocationsCsv, "code,gln,zone\nA-01,,cold\n", None),
            (
                Office::LocationsCsv,
                "code,gln,zone\nA-01,0614141000000,\n",
                Some("gln"),
            ),
            (
                Office::AsnsCsv,
                "asn_id,site,gtin,qty\nA1,WH1,9506000134352,3\n",
                None,
            ),
            (
                Office::AsnsCsv,
                "asn_id,site,gtin,qty\nA1,WH1,9506000134352,0\n",
                Some("qty"),
            ),
            (
                Office::ItemsJson,
                r#"[{"gtin":"9506000134352","description":"W"}]"#,
                None,
            ),
            (Office::ItemsJson, r#"{"gtin":"9506000134352"}"#, Some("body")),
            (
                Office::LocationsJson,
                r#"[{"code":"A-01"},{"code":"A/2"}]"#,
                Some("[1].code"),
            ),
            (
                Office::AsnsJson,
                r#"[{"id":"A1","site":"WH1","lines":[{"gtin":"9506000134352","qty":5}]}]"#,
                None,
            ),
            (
                Office::AsnsJson,
                r#"[{"id":"A1","site":"WH1","lines":[{"gtin":"9506000134352","qty":0}]}]"#,
                Some("[0].lines[0].qty"),
            ),
        ];
        for (kind, body, field) in cases {
            let got = match office_body(*kind, body.as_bytes()) {
                Ok(()) => None,
                Err(ApiError::BadRequest { field, .. }) => field,
                Err(ApiError::BadRows(bad)) => bad.rows.first().map(|r| r.error_field()),
                Err(other) => panic!("{kind:?} {body}: {other:?}"),
            };
            assert_eq!(got.as_deref(), *field, "{kind:?} {body}");
        }
        assert!(office_body(Office::ItemsCsv, b"\xff").is_err());
    }

    #[test]
    fn push_checks_table() {
        let movement = |device: &str, seq: u64| {
            format!(
                r#"{{"device_id":"{device}","seq":{seq},"kind":"receive","gtin":"09506000134352","qty":1,"to_location":"A-01","at":"2026-11-26T10:00:00Z","source":{{"type":"manual"}}}}"#
            )
        };
        // (body, the handler accepts it)
        let cases: &[(String, bool)] = &[
            (
                format!(
                    r#"{{"device_id":"d1","movements":[{}]}}"#,
                    movement("d1", 1)
                ),
                true,
            ),
            (
                format!(
                    r#"{{"device_id":"d1","movements":[{},{}]}}"#,
                    movement("d1", 1),
                    movement("d1", 3)
                ),
                false,
            ),
            (
                format!(
                    r#"{{"device_id":"d1","movements":[{}]}}"#,
                    movement("d2", 1)
                ),
                false,
            ),
            (
                format!(
                    r#"{{"device_id":"{OFFICE_DEVICE}","movements":[{}]}}"#,
                    movement(OFFICE_DEVICE, 1)
                ),
                false,
            ),
        ];
        for (body, ok) in cases {
            let req: PushRequest = parse_json(body.as_bytes()).unwrap();
            assert_eq!(check_push(&req).is_ok(), *ok, "{body}");
            if *ok {
                store_check_push(&req).unwrap();
            }
        }
    }

    #[test]
    fn query_table() {
        let mut q = Query::parse("cursor=12&limit=50&after=9506000134352&status=open&x=")
            .unwrap()
            .unwrap();
        assert_eq!(q.u64("cursor").unwrap(), Some(12));
        assert_eq!(q.u64("cursor").unwrap(), None);
        assert_eq!(q.limit("limit", 100, 1000).unwrap(), 50);
        assert_eq!(q.gtin("after").unwrap().as_deref(), Some("09506000134352"));
        assert_eq!(q.status("status").unwrap(), Some(DocStatus::Open));
        match q.finish() {
            Err(ApiError::BadRequest { field, .. }) => assert_eq!(field.as_deref(), Some("x")),
            other => panic!("{other:?}"),
        }
        match Query::parse("a=1&a=2").unwrap() {
            Err(ApiError::BadRequest { field, .. }) => assert_eq!(field.as_deref(), Some("a")),
            other => panic!("{other:?}"),
        }
        assert!(Query::parse("a b").is_none());
    }
}
