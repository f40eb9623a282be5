//! The report of a refused import: every bad row of a CSV file or element of a JSON array, so the office fixes a
//! file in one round instead of one error per upload.
//!
//! An import checks every row before it writes anything (the handlers in `routes/` build the rows; this module only
//! collects what is wrong with them). A file with any bad row changes nothing and answers 400 with the usual error
//! object, whose message and field are the first error's, plus the list:
//!
//! ```text
//! {"error": {"code": "bad_request", "message": "row 3, column gtin: ... (and 4 more errors, listed in rows)",
//!            "field": "gtin"},
//!  "rows": [{"line": 3, "column": "gtin", "message": "..."},           CSV: physical line, header = line 1
//!           {"index": 7, "field": "lines[0].qty", "message": "..."}],  JSON: index in the array, path inside it
//!  "error_count": 5, "truncated": false}
//! ```
//!
//! A CSV row's line is the line of the file where its record starts (a quoted cell may span lines), as a text
//! editor numbers it. Only the first [`MAX_REPORTED`] errors are listed, so a 4 MiB file of garbage cannot make a
//! response many times its size; `error_count` still counts them all and `truncated` says the list is cut.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::error::ApiError;

/// Most errors one report lists (all are counted).
pub const MAX_REPORTED: usize = 1000;

/// Where a bad value is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum At {
    /// A CSV file's 1-based physical line (the header is line 1).
    Line(usize),
    /// A JSON array's 0-based index.
    Index(usize),
}

/// One bad value (or a bad row as a whole when `field` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Where the row is.
    pub at: At,
    /// The CSV column, or the path of the value inside the JSON element (`lines[0].gtin`).
    pub field: Option<String>,
    /// What is wrong, for a person; does not repeat the place.
    pub message: String,
}

impl RowError {
    /// The error as one line: `row 3, column gtin: ...` (the wording single-error imports always used) or
    /// `[7].lines[0].qty: ...`.
    pub fn describe(&self) -> String {
        match (self.at, &self.field) {
            (At::Line(l), Some(c)) => format!("row {l}, column {c}: {}", self.message),
            (At::Line(l), None) => format!("row {l}: {}", self.message),
            (At::Index(i), Some(f)) => format!("[{i}].{f}: {}", self.message),
            (At::Index(i), None) => format!("[{i}]: {}", self.message),
        }
    }

    /// The `field` of the error object when this error is the first: a CSV column, or the JSON path from the
    /// array (`[7].lines[0].qty`); `body` for a CSV row that is wrong as a whole.
    pub fn error_field(&self) -> String {
        match (self.at, &self.field) {
            (At::Line(_), Some(c)) => c.clone(),
            (At::Line(_), None) => "body".into(),
            (At::Index(i), Some(f)) => format!("[{i}].{f}"),
            (At::Index(i), None) => format!("[{i}]"),
        }
    }
}

impl Serialize for RowError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        match self.at {
            At::Line(l) => {
                map.serialize_entry("line", &l)?;
                map.serialize_entry("column", &self.field)?;
            }
            At::Index(i) => {
                map.serialize_entry("index", &i)?;
                map.serialize_entry("field", &self.field)?;
            }
        }
        map.serialize_entry("message", &self.message)?;
        map.end()
    }
}

/// The errors found so far; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BadRows {
    /// The first [`MAX_REPORTED`] errors, in the order found.
    pub rows: Vec<RowError>,
    /// How many errors were found, listed or not.
    pub total: usize,
}

impl BadRows {
    /// No error so far.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Records an error about `field` of the row at `at` (`None`: the row as a whole).
    pub fn add(&mut self, at: At, field: Option<&str>, message: impl std::fmt::Display) {
        self.total += 1;
        if self.rows.len() < MAX_REPORTED {
            self.rows.push(RowError {
                at,
                field: field.map(str::to_string),
                message: message.to_string(),
            });
        }
    }

    /// The value of a check, or `None` after recording its error against `field`. The checks in
    /// `routes::input` start their messages with the field's name; that prefix is dropped (the report names the
    /// field already).
    pub fn check<T>(&mut self, at: At, field: &str, checked: Result<T, ApiError>) -> Option<T> {
        match checked {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(at, Some(field), message_without(field, e));
                None
            }
        }
    }

    /// `Ok` when nothing was found, else the 400 carrying this report.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ApiError::BadRows(Box::new(self)))
        }
    }

    /// The one-line summary that becomes the error object's message: the first error, and how many more.
    pub fn summary(&self) -> String {
        let Some(first) = self.rows.first() else {
            return "no bad rows".into();
        };
        match self.total - 1 {
            0 => first.describe(),
            1 => format!("{} (and 1 more error, listed in rows)", first.describe()),
            n => format!("{} (and {n} more errors, listed in rows)", first.describe()),
        }
    }
}

/// The message of a failed check without the `field: ` prefix the checks put in front.
pub(crate) fn message_without(field: &str, e: ApiError) -> String {
    match e {
        ApiError::BadRequest { message, .. } => message
            .strip_prefix(&format!("{field}: "))
            .map(str::to_string)
            .unwrap_or(message),
        other => other.to_string(),
    }
}

/// What the import parsers' tests compare: the `(line or index, field)` of every bad row reported.
#[cfg(test)]
pub(crate) mod testing {
    use super::At;
    use crate::error::ApiError;

    /// The `(at, field)` of every row `result` reports; panics unless it is a bad-rows error.
    pub(crate) fn reported<T: std::fmt::Debug>(
        result: Result<T, ApiError>,
    ) -> Vec<(At, Option<String>)> {
        match result {
            Err(ApiError::BadRows(bad)) => bad.rows.into_iter().map(|r| (r.at, r.field)).collect(),
            other => panic!("{other:?}"),
        }
    }

    /// `(line, field)` pairs as [`reported`] answers them for a CSV file.
    pub(crate) fn at_lines(errors: &[(usize, Option<&str>)]) -> Vec<(At, Option<String>)> {
        errors
            .iter()
            .map(|(l, f)| (At::Line(*l), f.map(str::to_string)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_error_table() {
        let cases: &[(At, Option<&str>, &str, serde_json::Value)] = &[
            (
                At::Line(3),
                Some("gtin"),
                "row 3, column gtin: bad",
                serde_json::json!({"line": 3, "column": "gtin", "message": "bad"}),
            ),
            (
                At::Line(4),
                None,
                "row 4: bad",
                serde_json::json!({"line": 4, "column": null, "message": "bad"}),
            ),
            (
                At::Index(0),
                Some("lines[1].qty"),
                "[0].lines[1].qty: bad",
                serde_json::json!({"index": 0, "field": "lines[1].qty", "message": "bad"}),
            ),
            (
                At::Index(2),
                None,
                "[2]: bad",
                serde_json::json!({"index": 2, "field": null, "message": "bad"}),
            ),
        ];
        for (at, field, text, json) in cases {
            let e = RowError {
                at: *at,
                field: field.map(str::to_string),
                message: "bad".into(),
            };
            assert_eq!(e.describe(), *text);
            assert_eq!(serde_json::to_value(&e).unwrap(), *json);
        }
    }

    #[test]
    fn report_caps_the_list_but_counts_everything() {
        let mut bad = BadRows::default();
        assert!(bad.clone().into_result().is_ok());
        for line in 2..MAX_REPORTED + 502 {
            bad.add(At::Line(line), Some("gtin"), "x");
        }
        assert_eq!(
            (bad.rows.len(), bad.total),
            (MAX_REPORTED, MAX_REPORTED + 500)
        );
        assert_eq!(
            bad.summary(),
            "row 2, column gtin: x (and 1499 more errors, listed in rows)"
        );
        let checked = bad.check(
            At::Line(9),
            "qty",
            Err::<(), _>(ApiError::bad_field("qty", "0 is out of range")),
        );
        assert_eq!(checked, None);
        assert_eq!(bad.total, MAX_REPORTED + 501);
        let mut one = BadRows::default();
        one.check(
            At::Index(1),
            "qty",
            Err::<(), _>(ApiError::bad_field("qty", "0 is out of range")),
        );
        assert_eq!(one.summary(), "[1].qty: 0 is out of range");
        assert!(matches!(one.into_result(), Err(ApiError::BadRows(_))));
    }
}
