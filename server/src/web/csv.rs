//! CSV downloads of dashboard tables: RFC 4180 quoting, protection against formula injection, and a streamed
//! body so an export of 100,000 rows never sits in memory.
//!
//! [`download`] runs the producer on a blocking thread; it writes rows into a [`CsvSink`], which hands the body
//! over in chunks of about [`CHUNK_BYTES`] through a channel of [`CHUNKS_IN_FLIGHT`] chunks. A slow client
//! therefore holds the producer back instead of letting rows pile up, and a client that goes away stops it
//! ([`CsvError::Closed`]). Producers page through the store (e.g. 1,000 rows per query), so the memory of an
//! export is one page plus the chunks in flight, whatever its length.
//!
//! # Cells
//!
//! Text cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, or a tab or carriage
//! return that some spreadsheets skip before one) get a leading `'`, the convention spreadsheets show as "text"
//! (OWASP's CSV injection advice). A cell is quoted when it holds `,`, `"`, CR or LF, or starts or ends with a
//! space; quotes are doubled. Numbers ([`Cell::Int`]) are written as they are: they are ours, never user text, and
//! a negative quantity must stay a number.

use std::borrow::Cow;

use axum::body::{Body, Bytes};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use crate::store::StoreError;

/// Body chunk size the sink aims for.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks buffered between the producer and the client.
pub const CHUNKS_IN_FLIGHT: usize = 4;

/// One cell of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell<'a> {
    /// Text, possibly from users or devices: quoted as needed and protected against formula injection.
    Text(&'a str),
    /// A number of ours, written as is.
    Int(i64),
    /// Nothing (an empty cell).
    Empty,
}

impl<'a> From<&'a str> for Cell<'a> {
    fn from(s: &'a str) -> Self {
        Cell::Text(s)
    }
}

impl<'a> From<Option<&'a str>> for Cell<'a> {
    fn from(s: Option<&'a str>) -> Self {
        s.map_or(Cell::Empty, Cell::Text)
    }
}

impl From<i64> for Cell<'_> {
    fn from(n: i64) -> Self {
        Cell::Int(n)
    }
}

/// Why a CSV producer stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsvError {
    /// The client went away; nothing to report.
    #[error("the client closed the download")]
    Closed,
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `text` as it goes into a CSV cell (see the module docs).
pub fn escape(text: &str) -> Cow<'_, str> {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote =
        text.contains([',', '"', '\r', '\n']) || text.starts_with(' ') || text.ends_with(' ');
    if !formula && !quote {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 3);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
    Cow::Owned(out)
}

/// Appends one record (cells and CRLF) to `out`.
pub fn write_record(out: &mut String, cells: &[Cell<'_>]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match cell {
            Cell::Text(t) => out.push_str(&escape(t)),
            Cell::Int(n) => out.push_str(&n.to_string()),
            Cell::Empty => {}
        }
    }
    out.push_str("\r\n");
}

/// Where a producer writes its rows; see [`download`].
#[derive(Debug)]
pub struct CsvSink {
    buf: String,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl CsvSink {
    /// Writes one row; [`CsvError::Closed`] once the client has gone (stop producing then).
    pub fn row(&mut self, cells: &[Cell<'_>]) -> Result<(), CsvError> {
        write_record(&mut self.buf, cells);
        if self.buf.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), CsvError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            String::with_capacity(CHUNK_BYTES + 1024),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| CsvError::Closed)
    }
}

/// A file name for `Content-Disposition`: only `A-Z a-z 0-9 . _ -` survive (others become `_`), so no quoting or
/// header injection is possible.
pub fn file_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "export.csv".into()
    } else {
        clean
    }
}

/// A streamed `text/csv` attachment named `name`: a UTF-8 byte-order mark (so spreadsheets read the text as
/// UTF-8), the `header` row, then whatever `produce` writes into the sink, run on a blocking thread. If `produce`
/// fails midway the body ends with an error, so the client sees a broken download rather than a short file that
/// looks complete.
pub fn download<F>(name: &str, header: &'static [&'static str], produce: F) -> Response
where
    F: FnOnce(&mut CsvSink) -> Result<(), CsvError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut sink = CsvSink {
            buf: String::with_capacity(CHUNK_BYTES + 1024),
            tx,
        };
        sink.buf.push('\u{feff}');
        let cells: Vec<Cell<'_>> = header.iter().map(|h| Cell::Text(h)).collect();
        write_record(&mut sink.buf, &cells);
        match produce(&mut sink).and_then(|()| sink.flush()) {
            Ok(()) | Err(CsvError::Closed) => {}
            Err(CsvError::Store(e)) => {
                tracing::error!(error = %e, "CSV export failed midway; the download is cut off");
                let _ = sink
                    .tx
                    .blocking_send(Err(std::io::Error::other("export failed")));
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", file_name(name)),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_table() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("", ""),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("cr\rhere", "\"cr\rhere\""),
            (" padded", "\" padded\""),
            ("=1+1", "'=1+1"),
            ("+31 6 1234", "'+31 6 1234"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=cmd", "'\t=cmd"),
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
            ("a=b", "a=b"),
            ("Ä-Größe", "Ä-Größe"),
        ];
        for (text, want) in cases {
            assert_eq!(escape(text), *want, "{text:?}");
        }
    }

    #[test]
    fn records_and_file_names() {
        let mut out = String::new();
        write_record(
            &mut out,
            &[
                Cell::Text("x,y"),
                Cell::Int(-5),
                Cell::Empty,
                Cell::Text("=1"),
            ],
        );
        assert_eq!(out, "\"x,y\",-5,,'=1\r\n");
        let names: &[(&str, &str)] = &[
            ("stock-WH1.csv", "stock-WH1.csv"),
            ("a\"b\r\n.csv", "a_b__.csv"),
            ("", "export.csv"),
        ];
        for (name, want) in names {
            assert_eq!(file_name(name), *want);
        }
    }
}
