//! The Markdown the suite reads and writes: pipe tables, and figures formatted for them.
//!
//! The bench binaries print their results as one pipe table on stdout. The suite embeds those tables verbatim
//! and only *looks up* a few cells in them (by column header and row label) to fill the targets summary. A lookup
//! that finds nothing yields `None`, never a guess: a bench whose table changed shape shows up as "not found" in
//! the summary rather than as a wrong figure.

/// A pipe table: the header cells and the body rows, cells trimmed. The `| --- |` rule is not kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column headers.
    pub header: Vec<String>,
    /// Body rows, each as many cells as the source line had.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The first pipe table in `text` (lines starting with `|` after a header line and a `---` rule), if any.
    pub fn parse(text: &str) -> Option<Table> {
        let mut lines = text
            .lines()
            .map(str::trim)
            .skip_while(|l| !l.starts_with('|'));
        let header = cells(lines.next()?);
        let rule = cells(lines.next()?);
        let is_rule = !rule.is_empty()
            && rule
                .iter()
                .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')));
        if !is_rule {
            return None;
        }
        let rows = lines
            .take_while(|l| l.starts_with('|'))
            .map(cells)
            .collect();
        Some(Table { header, rows })
    }

    /// The index of the first column whose header starts with `prefix` (case-insensitive).
    pub fn column(&self, prefix: &str) -> Option<usize> {
        let prefix = prefix.to_lowercase();
        self.header
            .iter()
            .position(|h| h.to_lowercase().starts_with(&prefix))
    }

    /// The first row whose first cell starts with `label` (case-insensitive).
    pub fn row(&self, label: &str) -> Option<&[String]> {
        let label = label.to_lowercase();
        self.rows
            .iter()
            .find(|r| {
                r.first()
                    .is_some_and(|c| c.to_lowercase().starts_with(&label))
            })
            .map(Vec::as_slice)
    }

    /// The cell in the row labelled `label` under the column headed `column`.
    pub fn cell(&self, label: &str, column: &str) -> Option<&str> {
        let col = self.column(column)?;
        self.row(label)?.get(col).map(String::as_str)
    }

    /// Renders the table as Markdown, one line per row.
    pub fn render(&self) -> String {
        let mut out = line(&self.header);
        out.push_str(&line(&vec!["---".to_string(); self.header.len()]));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

fn line(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// The decimal numbers in `cell`, in order: `"0.40 ms / 0.72 ms"` gives `[0.40, 0.72]`, `"41%"` gives `[41]`.
/// A sign is kept only when it touches the digits (`-5`), so a range `27–43` is two numbers.
pub fn numbers(cell: &str) -> Vec<f64> {
    let bytes = cell.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let negative = bytes[i] == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        if bytes[i].is_ascii_digit() || negative {
            let start = i;
            let mut point = false;
            i += 1;
            while i < bytes.len() {
                let fraction =
                    !point && bytes[i] == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
                if !(bytes[i].is_ascii_digit() || fraction) {
                    break;
                }
                point |= fraction;
                i += 1;
            }
            if let Ok(v) = cell[start..i].parse() {
                out.push(v);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// A rate for a table: `1.47 M/s`, `65.7 k/s`, `950/s`.
pub fn rate(per_second: f64) -> String {
    if per_second >= 1e6 {
        format!("{:.2} M/s", per_second / 1e6)
    } else if per_second >= 1e4 {
        format!("{:.1} k/s", per_second / 1e3)
    } else {
        format!("{per_second:.0}/s")
    }
}

/// A duration given in nanoseconds, in the unit that keeps three significant figures.
pub fn duration_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// A byte count in MiB with one decimal, or GiB with one decimal from 1 GiB.
pub fn mib(bytes: u64) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

/// A ratio with two significant decimals however small it gets: `1.02×`, `0.083×`, `0.0041×`.
pub fn ratio(x: f64) -> String {
    let decimals = if x >= 0.1 || x <= 0.0 || !x.is_finite() {
        2
    } else {
        // Two significant figures: one more decimal per factor of ten below 0.1.
        (1.0 - x.log10().floor()) as usize
    };
    format!("{x:.decimals$}×")
}

/// The median of `values` (the upper middle for an even count); `NaN` when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPINE: &str = "noise before\n\
        | measurement | Dockhand | baseline (same run) | ratio |\n\
        | --- | --- | --- | --- |\n\
        | agent burst, 10000 scans, confirmed scans/s (median of 5) | 65725 | 5879 records/s | 11.18× |\n\
        | agent single-scan confirm latency p50 / p99 (900 scans) | 0.40 ms / 0.72 ms | 0.13 ms | 3.07× at p50 |\n\
        | server ingest over HTTPS | 90648 | 218790 raw | 41% |\n\
        trailing text\n";

    #[test]
    fn cell_lookups() {
        let t = Table::parse(SPINE).expect("a table");
        assert_eq!(t.header.len(), 4);
        assert_eq!(t.rows.len(), 3);
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("agent burst", "dockhand", Some("65725")),
            ("agent single-scan", "Dockhand", Some("0.40 ms / 0.72 ms")),
            ("server ingest", "ratio", Some("41%")),
            ("server ingest", "no such column", None),
            ("no such row", "ratio", None),
        ];
        for &(row, col, want) in cases {
            assert_eq!(t.cell(row, col), want, "{row} / {col}");
        }
    }

    #[test]
    fn parse_rejects_what_is_not_a_table() {
        let cases: &[(&str, &str)] = &[
            ("no pipes", "just text\nmore text\n"),
            ("no rule", "| a | b |\n| 1 | 2 |\n"),
            ("header only", "| a | b |\n"),
        ];
        for &(name, text) in cases {
            assert_eq!(Table::parse(text), None, "{name}");
        }
    }

    #[test]
    fn render_round_trips() {
        let t = Table::parse(SPINE).expect("a table");
        assert_eq!(Table::parse(&t.render()), Some(t));
    }

    #[test]
    fn numbers_in_cells() {
        let cases: &[(&str, &[f64])] = &[
            ("65725", &[65725.0]),
            ("0.40 ms / 0.72 ms", &[0.40, 0.72]),
            ("41%", &[41.0]),
            ("27–43%", &[27.0, 43.0]),
            ("-5 days", &[-5.0]),
            ("1.2.3", &[1.2, 3.0]),
            ("none", &[]),
            ("3.", &[3.0]),
        ];
        for &(cell, want) in cases {
            assert_eq!(numbers(cell), want, "{cell:?}");
        }
    }

    #[test]
    fn formatting() {
        let cases: &[(String, &str)] = &[
            (rate(1_470_000.0), "1.47 M/s"),
            (rate(65_725.0), "65.7 k/s"),
            (rate(950.4), "950/s"),
            (duration_ns(681.75), "681.8 ns"),
            (duration_ns(6_340_000.0), "6.34 ms"),
            (duration_ns(2_500.0), "2.50 µs"),
            (duration_ns(1.5e9), "1.50 s"),
            (mib(56_098_816), "53.5 MiB"),
            (mib(3 << 30), "3.0 GiB"),
            (ratio(1.0213), "1.02×"),
            (ratio(0.1), "0.10×"),
            (ratio(0.0834), "0.083×"),
            (ratio(0.00412), "0.0041×"),
            (ratio(12.5), "12.50×"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn medians() {
        let cases: &[(&[f64], f64)] = &[
            (&[3.0, 1.0, 2.0], 2.0),
            (&[4.0, 1.0, 3.0, 2.0], 3.0),
            (&[7.0], 7.0),
        ];
        for &(values, want) in cases {
            assert_eq!(median(values), want, "{values:?}");
        }
        assert!(median(&[]).is_nan());
    }
}
