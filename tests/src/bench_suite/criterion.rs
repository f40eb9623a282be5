//! Criterion's results, read from the files it writes rather than from its console output.
//!
//! For every benchmark criterion keeps `<target>/criterion/<dir>/new/benchmark.json` (the id: group, function,
//! parameter, throughput) and `new/estimates.json` (bootstrap estimates in nanoseconds per iteration). The
//! directory name is a sanitised form of the id, so the id is taken from `benchmark.json`, not from the path.
//! Results older than the suite's own `cargo bench` run are skipped: a benchmark that was renamed or removed must
//! not lend a stale figure to a new report.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;

/// One benchmark's median.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// `group/function[/parameter]`, as criterion prints it.
    pub id: String,
    /// The median time of one iteration, nanoseconds.
    pub median_ns: f64,
    /// Elements one iteration processes, when the bench declared a throughput in elements.
    pub elements: Option<u64>,
}

impl Estimate {
    /// Elements per second at the median, when the bench declared elements per iteration.
    pub fn per_second(&self) -> Option<f64> {
        self.elements
            .map(|n| n as f64 / (self.median_ns * 1e-9))
            .filter(|r| r.is_finite())
    }
}

/// Why the estimates could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum EstimateError {
    /// A directory or file could not be read.
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file is not the JSON criterion writes.
    Format {
        /// The path.
        path: PathBuf,
        /// What is missing or wrong.
        message: String,
    },
}

impl fmt::Display for EstimateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EstimateError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            EstimateError::Format { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

impl std::error::Error for EstimateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EstimateError::Io { source, .. } => Some(source),
            EstimateError::Format { .. } => None,
        }
    }
}

/// Every estimate under `root` (criterion's output directory) written at or after `since`, sorted by id.
pub fn read_estimates(root: &Path, since: SystemTime) -> Result<Vec<Estimate>, EstimateError> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| io(&dir, source))?;
        for entry in entries {
            let path = entry.map_err(|source| io(&dir, source))?.path();
            if !path.is_dir() {
                continue;
            }
            // `new` holds the latest run; `base` and `change` are comparisons with older ones.
            if path.file_name().is_some_and(|n| n == "new") {
                let estimates = path.join("estimates.json");
                let written = std::fs::metadata(&estimates)
                    .and_then(|m| m.modified())
                    .map_err(|source| io(&estimates, source))?;
                if written >= since {
                    found.push(read_one(&path)?);
                }
            } else {
                dirs.push(path);
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

/// Reads one `new/` directory.
fn read_one(dir: &Path) -> Result<Estimate, EstimateError> {
    let bench_path = dir.join("benchmark.json");
    let bench = read_json(&bench_path)?;
    let text = |key: &str| bench[key].as_str().map(str::to_string);
    let group = text("group_id").ok_or_else(|| format_error(&bench_path, "no group_id"))?;
    let id = [Some(group), text("function_id"), text("value_str")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("/");
    let estimates_path = dir.join("estimates.json");
    let estimates = read_json(&estimates_path)?;
    let median_ns = estimates["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format_error(&estimates_path, "no median.point_estimate"))?;
    Ok(Estimate {
        id,
        median_ns,
        elements: bench["throughput"]["Elements"].as_u64(),
    })
}

fn read_json(path: &Path) -> Result<Value, EstimateError> {
    let bytes = std::fs::read(path).map_err(|source| io(path, source))?;
    serde_json::from_slice(&bytes).map_err(|e| format_error(path, &e.to_string()))
}

fn io(path: &Path, source: std::io::Error) -> EstimateError {
    EstimateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn format_error(path: &Path, message: &str) -> EstimateError {
    EstimateError::Format {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Writes a `new/` directory the way criterion 0.5 does.
    fn write(root: &Path, dir: &str, benchmark: &str, median_ns: f64) {
        let new = root.join(dir).join("new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(new.join("benchmark.json"), benchmark).unwrap();
        let estimate = |v: f64| {
            serde_json::json!({"confidence_interval": {"confidence_level": 0.95, "lower_bound": v, "upper_bound": v},
                               "point_estimate": v, "standard_error": 0.0})
        };
        let estimates = serde_json::json!({"mean": estimate(median_ns * 1.1), "median": estimate(median_ns),
                                           "median_abs_dev": estimate(1.0), "slope": estimate(median_ns),
                                           "std_dev": estimate(1.0)});
        std::fs::write(new.join("estimates.json"), estimates.to_string()).unwrap();
        // A comparison with an older run sits beside `new`, and must be ignored.
        let base = root.join(dir).join("base");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(base.join("estimates.json"), "{}").unwrap();
    }

    #[test]
    fn reads_ids_medians_and_rates() {
        let tmp = tempfile::tempdir().unwrap();
        let cases: &[(&str, &str, f64, &str, Option<f64>)] = &[
            (
                "decode/decode_scan/gs1_128_40",
                r#"{"group_id":"decode","function_id":"decode_scan","value_str":"gs1_128_40","throughput":{"Elements":1}}"#,
                500.0,
                "decode/decode_scan/gs1_128_40",
                Some(2_000_000.0),
            ),
            (
                "rfid/smooth",
                r#"{"group_id":"rfid","function_id":"smooth","value_str":null,"throughput":{"Elements":110000}}"#,
                11_000_000.0,
                "rfid/smooth",
                Some(10_000_000.0),
            ),
            (
                "misc/no_throughput",
                r#"{"group_id":"misc","function_id":"no_throughput","value_str":null,"throughput":null}"#,
                10.0,
                "misc/no_throughput",
                None,
            ),
        ];
        for &(dir, json, ns, _, _) in cases {
            write(tmp.path(), dir, json, ns);
        }
        let found = read_estimates(tmp.path(), SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(found.len(), cases.len());
        for &(_, _, ns, id, per_second) in cases {
            let e = found.iter().find(|e| e.id == id).expect(id);
            assert_eq!(e.median_ns, ns, "{id}");
            assert_eq!(e.per_second().map(f64::round), per_second, "{id}");
        }
    }

    #[test]
    fn skips_results_older_than_the_run() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "old/bench",
            r#"{"group_id":"old","function_id":"bench","throughput":{"Elements":1}}"#,
            1.0,
        );
        let later = SystemTime::now() + Duration::from_secs(3600);
        assert_eq!(read_estimates(tmp.path(), later).unwrap(), vec![]);
    }

    #[test]
    fn malformed_files_are_errors() {
        let cases: &[(&str, &str)] = &[("not json", "{"), ("no group", r#"{"function_id":"x"}"#)];
        for &(name, benchmark) in cases {
            let tmp = tempfile::tempdir().unwrap();
            write(tmp.path(), "g/x", benchmark, 1.0);
            let err = read_estimates(tmp.path(), SystemTime::UNIX_EPOCH);
            assert!(
                matches!(err, Err(EstimateError::Format { .. })),
                "{name}: {err:?}"
            );
        }
    }
}
