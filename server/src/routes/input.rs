//! Checking what the office sends, in two steps like push does: syntax (serde, query strings, CSV) first, then
//! the values themselves (check digits, ranges, names). Every failure is a 400 naming the field or parameter.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use dockhand_protocol::gs1::check::verify_check_digit;
use dockhand_protocol::gs1::gtin_from_retail;
use dockhand_protocol::sync::MAX_QTY;
use serde::de::DeserializeOwned;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::devices::is_valid_name;
use crate::error::ApiError;
use crate::import::{At, BadRows};
use crate::state::AppState;

/// The query string as `(name, value)` pairs, taken one by one so each error names its parameter; call
/// [`Params::finish`] last so an unknown parameter (a typo) is refused instead of silently meaning "all".
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl FromRequestParts<AppState> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        Params::from_uri(&parts.uri)
    }
}

impl Params {
    /// The query string of `uri`, refusing a parameter given twice (which one would win is anyone's guess).
    pub(crate) fn from_uri(uri: &Uri) -> Result<Params, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)?;
        let mut seen: Vec<&str> = Vec::new();
        for (name, _) in &pairs {
            if seen.contains(&name.as_str()) {
                return Err(ApiError::bad_field(name.clone(), "given more than once"));
            }
            seen.push(name);
        }
        Ok(Params { pairs })
    }

    /// The raw value of `name`; an empty value counts as absent (HTML forms send `site=`).
    pub(crate) fn text(&mut self, name: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(n, _)| n == name)?;
        let (_, value) = self.pairs.remove(i);
        (!value.is_empty()).then_some(value)
    }

    /// A site, device or document id (see [`name`]).
    pub(crate) fn name(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        self.text(name).map(|v| self::name(name, &v)).transpose()
    }

    /// A GTIN, normalised to GTIN-14.
    pub(crate) fn gtin(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        self.text(name).map(|v| gtin(name, &v)).transpose()
    }

    /// A location code.
    pub(crate) fn location(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        self.text(name).map(|v| location(name, &v)).transpose()
    }

    /// Free text up to `max` characters.
    pub(crate) fn short_text(
        &mut self,
        name: &str,
        max: usize,
    ) -> Result<Option<String>, ApiError> {
        self.text(name)
            .map(|v| text(name, &v, max).map(|()| v))
            .transpose()
    }

    /// A non-negative integer.
    pub(crate) fn u64(&mut self, name: &str) -> Result<Option<u64>, ApiError> {
        self.text(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::bad_field(name, format!("{v:?} is not a non-negative integer"))
                })
            })
            .transpose()
    }

    /// A page size: `default` when absent, else 1..=`max`. Out of range is refused, not clamped.
    pub(crate) fn limit(
        &mut self,
        name: &str,
        default: usize,
        max: usize,
    ) -> Result<usize, ApiError> {
        match self.u64(name)? {
            None => Ok(default),
            Some(n) if (1..=max as u64).contains(&n) => Ok(n as usize),
            Some(n) => Err(ApiError::bad_field(
                name,
                format!("{n} is out of range 1..={max}"),
            )),
        }
    }

    /// An RFC 3339 timestamp with offset.
    pub(crate) fn time(&mut self, name: &str) -> Result<Option<OffsetDateTime>, ApiError> {
        self.text(name)
            .map(|v| {
                OffsetDateTime::parse(&v, &Rfc3339).map_err(|e| {
                    ApiError::bad_field(
                        name,
                        format!("{v:?} is not an RFC 3339 time such as 2026-11-26T10:15:00Z: {e}"),
                    )
                })
            })
            .transpose()
    }

    /// A value of a snake_case enum (`status=open`, `kind=receive`).
    pub(crate) fn choice<T: DeserializeOwned>(
        &mut self,
        name: &str,
        allowed: &str,
    ) -> Result<Option<T>, ApiError> {
        self.text(name)
            .map(|v| {
                serde_json::from_value(serde_json::Value::String(v.clone())).map_err(|_| {
                    ApiError::bad_field(name, format!("{v:?} is not one of {allowed}"))
                })
            })
            .transpose()
    }

    /// Refuses whatever parameter was not taken.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        match self.pairs.into_iter().next() {
            None => Ok(()),
            Some((name, _)) => Err(ApiError::bad_field(name, "unknown query parameter")),
        }
    }
}

/// A site, device, ASN or pick-list id: 1 to 64 characters of `A-Z a-z 0-9 . _ -` (they appear in URL paths and
/// file names).
pub(crate) fn name(field: &str, value: &str) -> Result<String, ApiError> {
    if is_valid_name(value) {
        Ok(value.to_string())
    } else {
        Err(ApiError::bad_field(
            field,
            format!("{value:?} is not 1 to 64 characters of A-Z a-z 0-9 . _ -"),
        ))
    }
}

/// A GTIN-8/12/13/14 with a correct check digit, normalised to GTIN-14.
pub(crate) fn gtin(field: &str, value: &str) -> Result<String, ApiError> {
    gtin_from_retail(value).map_err(|e| ApiError::bad_field(field, format!("{value:?}: {e}")))
}

/// An SSCC: 18 digits with a correct GS1 check digit.
pub(crate) fn sscc(field: &str, value: &str) -> Result<(), ApiError> {
    gs1_key(field, value, 18, "an SSCC")
}

/// A GLN: 13 digits with a correct GS1 check digit.
pub(crate) fn gln(field: &str, value: &str) -> Result<(), ApiError> {
    gs1_key(field, value, 13, "a GLN")
}

fn gs1_key(field: &str, value: &str, len: usize, what: &str) -> Result<(), ApiError> {
    if value.len() != len || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_field(
            field,
            format!("{value:?}: {what} has {len} digits"),
        ));
    }
    if !verify_check_digit(value) {
        let (body, _) = value.split_at(len - 1);
        let expected = dockhand_protocol::gs1::check::gs1_check_digit(body).unwrap_or(0);
        return Err(ApiError::bad_field(
            field,
            format!("{value:?}: check digit should be {expected}"),
        ));
    }
    Ok(())
}

/// A site-local location code such as `A-01-02`: 1 to 64 printable characters, no spaces at either end.
pub(crate) fn location(field: &str, value: &str) -> Result<String, ApiError> {
    let ok = (1..=64).contains(&value.chars().count())
        && !value.chars().any(char::is_control)
        && value.trim() == value
        && !value.contains(['/', ',']);
    if ok {
        Ok(value.to_string())
    } else {
        Err(ApiError::bad_field(
            field,
            format!(
                "{value:?} is not 1 to 64 printable characters without / , or surrounding spaces"
            ),
        ))
    }
}

/// A lot number as GS1 AI 10 allows: 1 to 20 printable ASCII characters.
pub(crate) fn lot(field: &str, value: &str) -> Result<(), ApiError> {
    if (1..=20).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(ApiError::bad_field(
            field,
            format!("{value:?} is not 1 to 20 printable ASCII characters"),
        ))
    }
}

/// A quantity of units: 1 to [`MAX_QTY`].
pub(crate) fn qty(field: &str, value: u64) -> Result<(), ApiError> {
    if (1..=MAX_QTY).contains(&value) {
        Ok(())
    } else {
        Err(ApiError::bad_field(
            field,
            format!("{value} is out of range 1..={MAX_QTY}"),
        ))
    }
}

/// Text for people: at most `max` characters, no control characters.
pub(crate) fn text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::bad_field(
            field,
            format!("longer than {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::bad_field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Like [`text`], and not empty or blank.
pub(crate) fn required_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::bad_field(field, "must not be empty"));
    }
    text(field, value, max)
}

/// A calendar date `YYYY-MM-DD`.
pub(crate) fn date(field: &str, value: &str) -> Result<(), ApiError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &format)
        .map(|_| ())
        .map_err(|_| ApiError::bad_field(field, format!("{value:?} is not a date YYYY-MM-DD")))
}

/// The path's id must equal the body's, when the body repeats it.
pub(crate) fn same_id(field: &str, path: &str, body: Option<&str>) -> Result<(), ApiError> {
    match body {
        Some(b) if b != path => Err(ApiError::bad_field(
            field,
            format!("{b:?} differs from {path:?} in the URL"),
        )),
        _ => Ok(()),
    }
}

/// The largest import, in data rows or array elements; the body limit bounds the bytes.
pub(crate) const MAX_IMPORT_ROWS: usize = 100_000;

/// The body bytes, 413 above the limit.
pub(crate) async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge {
                limit: state.body_limit,
            }
        } else {
            ApiError::BadRequest {
                field: None,
                message: r.body_text(),
            }
        }
    })
}

/// One data row of a CSV file: the line of the file where it starts (the header is line 1) and its cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CsvRow {
    pub(crate) row: usize,
    pub(crate) cells: Vec<String>,
}

impl CsvRow {
    /// Where the row is, for a [`BadRows`] report.
    pub(crate) fn at(&self) -> At {
        At::Line(self.row)
    }
}

/// A CSV file checked against its expected columns: the data rows, and where each known column is.
#[derive(Debug)]
pub(crate) struct Csv {
    columns: Vec<&'static str>,
    index: Vec<Option<usize>>,
    /// Cells in the header.
    width: usize,
    pub(crate) rows: Vec<CsvRow>,
}

impl Csv {
    /// Parses `text` (RFC 4180: commas, `"` quoting with `""` inside, CRLF or LF). The header names the columns in
    /// any order; `required` must all be there, `optional` may be, nothing else. Blank lines are skipped.
    ///
    /// A file whose rows cannot be told apart (a quote never closed, text after a closing quote), a bad header
    /// (every error in it reported), an empty file or one of more than [`MAX_IMPORT_ROWS`] rows is refused at once;
    /// a row with the wrong number of cells is the caller's to report, in order, with [`Csv::fits`].
    pub(crate) fn parse(
        text: &str,
        required: &[&'static str],
        optional: &[&'static str],
    ) -> Result<Csv, ApiError> {
        let mut records = records(text)?.into_iter();
        let Some(header) = records.next() else {
            return Err(ApiError::bad_field(
                "body",
                format!("empty CSV: expected a header {}", required.join(",")),
            ));
        };
        let columns: Vec<&'static str> = required.iter().chain(optional).copied().collect();
        let mut index = vec![None; columns.len()];
        let mut header_errors = BadRows::default();
        let at = header.at();
        for (i, cell) in header.cells.iter().enumerate() {
            let cell = cell.trim();
            let Some(c) = columns.iter().position(|c| c.eq_ignore_ascii_case(cell)) else {
                header_errors.add(
                    at,
                    Some(cell),
                    format!("unknown column; expected {}", columns.join(",")),
                );
                continue;
            };
            if index[c].replace(i).is_some() {
                header_errors.add(at, Some(cell), "column given twice");
            }
        }
        for (c, name) in required.iter().enumerate() {
            if index[c].is_none() {
                header_errors.add(at, Some(name), "missing column in the header");
            }
        }
        header_errors.into_result()?;
        let rows: Vec<CsvRow> = records.collect();
        if rows.len() > MAX_IMPORT_ROWS {
            return Err(ApiError::bad_field(
                "body",
                format!(
                    "{} rows; import at most {MAX_IMPORT_ROWS} at a time",
                    rows.len()
                ),
            ));
        }
        Ok(Csv {
            columns,
            index,
            width: header.cells.len(),
            rows,
        })
    }

    /// Whether `row` has as many cells as the header; reports it in `bad` when not. Call it first for each row:
    /// [`Csv::cell`] needs a row that fits.
    pub(crate) fn fits(&self, row: &CsvRow, bad: &mut BadRows) -> bool {
        let fits = row.cells.len() == self.width;
        if !fits {
            bad.add(
                row.at(),
                None,
                format!("{} cells, the header has {}", row.cells.len(), self.width),
            );
        }
        fits
    }

    /// The (trimmed) cell of `column` in `row` (which [`Csv::fits`]); empty when the optional column is absent.
    pub(crate) fn cell<'a>(&self, row: &'a CsvRow, column: &str) -> &'a str {
        let c = self.columns.iter().position(|c| *c == column);
        c.and_then(|c| self.index[c])
            .map_or("", |i| row.cells[i].trim())
    }
}

/// A CSV boolean: `true`/`false`, `yes`/`no`, `1`/`0` (any case); empty is `default`.
pub(crate) fn csv_bool(column: &str, value: &str, default: bool) -> Result<bool, ApiError> {
    match value.to_ascii_lowercase().as_str() {
        "" => Ok(default),
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(ApiError::bad_field(
            column,
            format!("{value:?} is not true/false, yes/no or 1/0"),
        )),
    }
}

/// A file-level CSV error at `line`, reported like a bad row so a client finds it in the same place.
fn csv_error(line: usize, message: &str) -> ApiError {
    let mut bad = BadRows::default();
    bad.add(At::Line(line), None, message);
    ApiError::BadRows(Box::new(bad))
}

/// Splits CSV text into records with their row numbers (1-based lines of the file where each record starts).
fn records(text: &str) -> Result<Vec<CsvRow>, ApiError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let (mut cells, mut cell) = (Vec::new(), String::new());
    let mut start = 1;
    let mut quoted_cell = false;
    let mut finish = |cells: &mut Vec<String>, cell: &mut String, start: usize, quoted: bool| {
        let blank = cells.is_empty() && cell.trim().is_empty() && !quoted;
        cells.push(std::mem::take(cell));
        let row = std::mem::take(cells);
        if !blank {
            out.push(CsvRow {
                row: start,
                cells: row,
            });
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' if cell.trim().is_empty() && !quoted_cell => {
                cell.clear();
                quoted_cell = true;
                loop {
                    match chars.next() {
                        None => return Err(csv_error(start, "a quoted cell is never closed")),
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            cell.push('"');
                        }
                        Some('"') => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            cell.push(c);
                        }
                    }
                }
            }
            ',' => {
                cells.push(std::mem::take(&mut cell));
                quoted_cell = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                finish(&mut cells, &mut cell, start, quoted_cell);
                quoted_cell = false;
                line += 1;
                start = line;
            }
            c if quoted_cell && !c.is_whitespace() => {
                return Err(csv_error(line, "text after a closing quote"));
            }
            c => cell.push(c),
        }
    }
    finish(&mut cells, &mut cell, start, quoted_cell);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(row, cells)` of each expected record.
    type Rows<'a> = &'a [(usize, &'a [&'a str])];
    type Check = fn(&str, &str) -> Result<(), ApiError>;

    #[test]
    fn csv_records_table() {
        let cases: &[(&str, Rows<'_>)] = &[
            ("a,b\n1,2\n", &[(1, &["a", "b"]), (2, &["1", "2"])]),
            ("a,b\r\n1,2", &[(1, &["a", "b"]), (2, &["1", "2"])]),
            ("a\n\n2\n", &[(1, &["a"]), (3, &["2"])]),
            ("a,\"x, \"\"y\"\"\"\n", &[(1, &["a", "x, \"y\""])]),
            (
                "\"multi\nline\",b\nc,d",
                &[(1, &["multi\nline", "b"]), (3, &["c", "d"])],
            ),
            (",\n", &[(1, &["", ""])]),
        ];
        for (text, want) in cases {
            let got = records(text).unwrap();
            let got: Vec<(usize, Vec<&str>)> = got
                .iter()
                .map(|r| (r.row, r.cells.iter().map(String::as_str).collect()))
                .collect();
            let want: Vec<(usize, Vec<&str>)> =
                want.iter().map(|(r, c)| (*r, c.to_vec())).collect();
            assert_eq!(got, want, "{text:?}");
        }
        assert!(records("\"open").is_err());
        assert!(records("\"a\"b,c").is_err());
    }

    /// `(file, Ok(rows that fit) | Err(every (line, column) of a refused file))` against columns `a,b[,c]`.
    #[test]
    fn csv_parse_table() {
        type Want<'a> = Result<&'a [bool], &'a [(usize, Option<&'a str>)]>;
        let cases: &[(&str, Want<'_>)] = &[
            ("a,b\n1,2\n", Ok(&[true])),
            (
                "B, A ,c\n1,2,3\n1,2\n\n1,2,3,4\n",
                Ok(&[true, false, false]),
            ),
            ("a\n", Err(&[(1, Some("b"))])),
            (
                "a,x,a\n",
                Err(&[(1, Some("x")), (1, Some("a")), (1, Some("b"))]),
            ),
            ("a,b\n\n\"1\n2,3\n", Err(&[(3, None)])),
            ("a,b\n\"1\"x,2\n", Err(&[(2, None)])),
        ];
        for (text, want) in cases {
            match (Csv::parse(text, &["a", "b"], &["c"]), want) {
                (Ok(csv), Ok(fits)) => {
                    let mut bad = BadRows::default();
                    let got: Vec<bool> = csv.rows.iter().map(|r| csv.fits(r, &mut bad)).collect();
                    assert_eq!(&got, fits, "{text:?}");
                    assert_eq!(bad.total, fits.iter().filter(|f| !**f).count());
                }
                (Err(ApiError::BadRows(bad)), Err(errors)) => {
                    let got: Vec<(At, Option<&str>)> = bad
                        .rows
                        .iter()
                        .map(|r| (r.at, r.field.as_deref()))
                        .collect();
                    let want: Vec<(At, Option<&str>)> =
                        errors.iter().map(|(l, f)| (At::Line(*l), *f)).collect();
                    assert_eq!(got, want, "{text:?}");
                }
                (other, _) => panic!("{text:?}: {other:?}"),
            }
        }
        let csv = Csv::parse("B, A\n x ,\"y\"\n", &["a", "b"], &["c"]).unwrap();
        let row = &csv.rows[0];
        assert_eq!(
            (csv.cell(row, "a"), csv.cell(row, "b"), csv.cell(row, "c")),
            ("y", "x", "")
        );
    }

    #[test]
    fn key_table() {
        let cases: &[(&str, Check, bool)] = &[
            ("106141411234567897", sscc, true),
            ("106141411234567890", sscc, false),
            ("006141411234567890", sscc, true),
            ("00614141123456789", sscc, false),
            ("10614141123456789X", sscc, false),
            ("0614141000005", gln, true),
            ("0614141000000", gln, false),
            ("061414100000", gln, false),
        ];
        for (value, check, ok) in cases {
            assert_eq!(check("f", value).is_ok(), *ok, "{value}");
        }
        assert_eq!(gtin("g", "9506000134352").unwrap(), "09506000134352");
        assert!(gtin("g", "9506000134353").is_err());
        assert!(location("l", "A-01-02").is_ok());
        assert!(location("l", " A").is_err());
        assert!(location("l", "").is_err());
    }
}
