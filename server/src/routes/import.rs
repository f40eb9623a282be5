//! What every import route (`POST /v1/items/import`, `/v1/sites/{site}/locations/import`, `/v1/asns/import`)
//! shares: the body as CSV or JSON by its `Content-Type`, the `dry_run` parameter, the answer, and reading a JSON
//! array element by element.
//!
//! An import runs in two phases. First every row is checked, all of them, and every error is collected into a
//! [`BadRows`] report (see [`crate::import`]); checks against the store (an ASN id already taken) come last, on the
//! rows that are fine on their own. Only then, if nothing is wrong and it is not a dry run, is the whole file
//! written, in one store transaction. So a file with bad rows changes nothing, and a dry run answers exactly what
//! the real import would, without writing.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::input::{read_body, Params, MAX_IMPORT_ROWS};
use crate::error::ApiError;
use crate::import::{At, BadRows};
use crate::state::AppState;

/// An import's body: CSV text (`text/csv`, also `application/csv`, `text/plain` or no type at all, as spreadsheet
/// tools send it) or a JSON array (`application/json`). Anything else is refused, so a form or a zip posted by
/// mistake is not read as one odd CSV row.
#[derive(Debug)]
pub(crate) enum ImportBody {
    /// UTF-8 text, a leading byte-order mark dropped.
    Csv(String),
    /// The raw bytes; see [`json_elements`].
    Json(Bytes),
}

impl FromRequest<AppState> for ImportBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("?").to_ascii_lowercase());
        let essence = content_type
            .as_deref()
            .map(|ct| ct.split(';').next().unwrap_or("").trim().to_string());
        let json = match essence.as_deref() {
            None | Some("text/csv" | "application/csv" | "text/plain") => false,
            Some("application/json") => true,
            Some(other) => {
                return Err(ApiError::bad_field(
                    "content-type",
                    format!(
                        "{other:?}: send the file as text/csv or a JSON array as application/json"
                    ),
                ))
            }
        };
        let bytes = read_body(req, state).await?;
        if json {
            Ok(ImportBody::Json(bytes))
        } else {
            csv_text(&bytes).map(ImportBody::Csv)
        }
    }
}

/// The text of a CSV body: UTF-8, a leading byte-order mark (Excel writes one) dropped.
pub(crate) fn csv_text(bytes: &[u8]) -> Result<String, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::bad_field("body", format!("not UTF-8: {e}")))?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text).to_string())
}

/// The query string of an import: `dry_run` (`true`/`false`, `1`/`0`, `yes`/`no`; default false), nothing else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ImportOptions {
    /// Check everything, write nothing.
    pub(crate) dry_run: bool,
}

impl FromRequestParts<AppState> for ImportOptions {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        let mut q = Params::from_uri(&parts.uri)?;
        let dry_run = match q.text("dry_run") {
            None => false,
            Some(v) => super::input::csv_bool("dry_run", &v, false)?,
        };
        q.finish()?;
        Ok(ImportOptions { dry_run })
    }
}

/// What an import did, or would do (`dry_run`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ImportResult {
    /// True when nothing was written.
    pub(crate) dry_run: bool,
    /// Rows written (absent on a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) imported: Option<usize>,
    /// Rows a real import would write (only on a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) would_import: Option<usize>,
    /// Documents already stored exactly as the file has them, left alone (ASN imports only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unchanged: Option<usize>,
}

impl ImportResult {
    /// `n` rows imported, or found importable on a dry run.
    pub(crate) fn new(options: ImportOptions, n: usize) -> Self {
        ImportResult {
            dry_run: options.dry_run,
            imported: (!options.dry_run).then_some(n),
            would_import: options.dry_run.then_some(n),
            unchanged: None,
        }
    }
}

/// The elements of a JSON array body, to be read one by one with [`element`] so that one bad element does not hide
/// the others (and errors are reported in index order). A body that is not an array at all is refused at once.
pub(crate) fn json_elements(bytes: &[u8]) -> Result<Vec<serde_json::Value>, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        return Err(ApiError::bad_field(
            "body",
            "expected a JSON array of the objects to import",
        ));
    }
    let values: Vec<serde_json::Value> = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_field("body", format!("invalid JSON: {e}")))?;
    if values.len() > MAX_IMPORT_ROWS {
        return Err(ApiError::bad_field(
            "body",
            format!(
                "{} elements; import at most {MAX_IMPORT_ROWS} at a time",
                values.len()
            ),
        ));
    }
    Ok(values)
}

/// Element `i` of a JSON array as a `T`, or `None` after reporting why not (at its index, with the path inside
/// it).
pub(crate) fn element<T: DeserializeOwned>(
    bad: &mut BadRows,
    i: usize,
    value: serde_json::Value,
) -> Option<T> {
    // Like the JSON bodies of single objects: an array element is never read as a struct by position.
    if !value.is_object() {
        bad.add(At::Index(i), None, "expected a JSON object");
        return None;
    }
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let field = super::field_of(&path, &inner);
            bad.add(At::Index(i), field.as_deref(), inner);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Thing {
        id: String,
        #[serde(default)]
        qty: u64,
    }

    /// `(body, parsed elements, reported (index, field))`, or the top-level field of a refused body.
    #[test]
    fn json_elements_table() {
        type Want<'a> = Result<(Vec<bool>, &'a [(usize, Option<&'a str>)]), &'a str>;
        let cases: &[(&str, Want<'_>)] = &[
            (
                r#"[{"id":"a"},{"id":"b","qty":2}]"#,
                Ok((vec![true, true], &[])),
            ),
            (r#" []"#, Ok((vec![], &[]))),
            (
                r#"[{"id":"a","qty":-1},{"qty":1},{"id":"c","colour":1},7,[1]]"#,
                Ok((
                    vec![false, false, false, false, false],
                    &[
                        (0, Some("qty")),
                        (1, Some("id")),
                        (2, Some("colour")),
                        (3, None),
                        (4, None),
                    ],
                )),
            ),
            (r#"{"id":"a"}"#, Err("body")),
            (r#"[{"id":"a"}"#, Err("body")),
            ("", Err("body")),
        ];
        for (body, want) in cases {
            let mut bad = BadRows::default();
            let got = json_elements(body.as_bytes()).map(|values| {
                values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| element::<Thing>(&mut bad, i, v))
                    .collect::<Vec<_>>()
            });
            match (got, want) {
                (Ok(things), Ok((parsed, errors))) => {
                    let got: Vec<bool> = things.iter().map(Option::is_some).collect();
                    assert_eq!(&got, parsed, "{body}");
                    let reported: Vec<(usize, Option<&str>)> = bad
                        .rows
                        .iter()
                        .map(|r| match r.at {
                            At::Index(i) => (i, r.field.as_deref()),
                            At::Line(_) => panic!("{body}: a line in a JSON report"),
                        })
                        .collect();
                    assert_eq!(&reported, errors, "{body}");
                }
                (Err(ApiError::BadRequest { field, .. }), Err(f)) => {
                    assert_eq!(field.as_deref(), Some(*f), "{body}")
                }
                (other, _) => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn result_shape_table() {
        let cases = [
            (false, serde_json::json!({"dry_run": false, "imported": 3})),
            (
                true,
                serde_json::json!({"dry_run": true, "would_import": 3}),
            ),
        ];
        for (dry_run, want) in cases {
            let got = ImportResult::new(ImportOptions { dry_run }, 3);
            assert_eq!(serde_json::to_value(got).unwrap(), want);
        }
    }
}
