//! `dockhand-bench-suite`: runs every benchmark and writes the whole of BENCHMARKS.md.
//!
//! Run: `cargo run --release -p dockhand-tests --bin dockhand-bench-suite` (about 20 minutes on a 2-core VM; needs
//! the PostgreSQL 15 server binaries, see server/tests/pg). Options:
//!
//! - `--quick`: fewer runs and smaller sizes where the suite controls them (criterion's `--quick`, the scaling and
//!   memory measurements, the sled backend only for the ingest and dashboard benches); the output says so.
//! - `--only NAME,...`: only these sections (names as in [`Section::key`]); the others are left out of the file.
//! - `--out PATH`: where to write (default: BENCHMARKS.md at the workspace root).
//!
//! What it runs, in order: `cargo build --release` of the bench binaries and the server and agent (into the target
//! directory this binary runs from, so `CARGO_TARGET_DIR` carries through); `cargo bench -p dockhand-protocol`,
//! whose medians it reads from criterion's `estimates.json` files; each bench binary as a subprocess, its stdout
//! table embedded verbatim and its stderr (per-run figures) kept beside it; and its own measurements (scaling with
//! the data 1×/10×/100×, server and agent memory). Then it writes a header describing the machine and the run, a
//! targets summary, and one section per measurement with the prose from `bench/prose/`.
//!
//! A section that fails is written as failed, with its error, and the run exits non-zero after writing the file:
//! a partial report says what is missing instead of silently dropping it.

#[path = "../bench_suite/criterion.rs"]
mod criterion;
#[path = "../bench_suite/machine.rs"]
mod machine;
#[path = "../bench_suite/markdown.rs"]
mod markdown;
#[path = "../bench_suite/memory.rs"]
mod memory;
#[path = "../bench_suite/reports.rs"]
mod reports;
#[path = "../bench_suite/scaling.rs"]
mod scaling;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context, Result};

use criterion::Estimate;
use machine::Machine;
use markdown::{duration_ns, numbers, rate, Table};

/// The one command, as documented at the top of BENCHMARKS.md and in README.md.
const COMMAND: &str = "cargo run --release -p dockhand-tests --bin dockhand-bench-suite";

/// One section of BENCHMARKS.md, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Decode,
    Smoothing,
    Spine,
    Workflow,
    Gate,
    Ingest,
    Dashboard,
    Scaling,
    Memory,
    Webhooks,
    Reports,
}

impl Section {
    const ALL: [Section; 11] = [
        Section::Decode,
        Section::Smoothing,
        Section::Spine,
        Section::Workflow,
        Section::Gate,
        Section::Ingest,
        Section::Dashboard,
        Section::Scaling,
        Section::Memory,
        Section::Webhooks,
        Section::Reports,
    ];

    /// The name `--only` takes.
    fn key(self) -> &'static str {
        match self {
            Section::Decode => "decode",
            Section::Smoothing => "smoothing",
            Section::Spine => "spine",
            Section::Workflow => "workflow",
            Section::Gate => "gate",
            Section::Ingest => "ingest",
            Section::Dashboard => "dashboard",
            Section::Scaling => "scaling",
            Section::Memory => "memory",
            Section::Webhooks => "webhooks",
            Section::Reports => "reports",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Section::Decode => "Decode rates: GS1, EPC, reader frames (issue 3)",
            Section::Smoothing => "RFID read smoothing (issue 4)",
            Section::Spine => {
                "Journal group commit, scan-to-confirm latency, server ingest (issue 2)"
            }
            Section::Workflow => {
                "Handheld workflows: decision, scan to good-read, agent memory (issue 5)"
            }
            Section::Gate => "Dock gate: pallet pass to server acknowledgement (issue 4)",
            Section::Ingest => {
                "Server ingest at 1/8/64 devices, sled and PostgreSQL, and pull (issue 6)"
            }
            Section::Dashboard => "Office dashboard: the stock page on 100,000 rows (issue 7)",
            Section::Scaling => "Scaling: the server as the data grows 10× and 100×",
            Section::Memory => "Memory: server RSS under load, agent RSS after a day of scans",
            Section::Webhooks => "Webhooks: ingest while the ERP endpoint is down (issue 9)",
            Section::Reports => "Reports over a year of a busy site on PostgreSQL (issue 9)",
        }
    }

    /// What the section measures and against what: prose, never figures.
    fn prose(self) -> &'static str {
        match self {
            Section::Decode => include_str!("../../../bench/prose/decode.md"),
            Section::Smoothing => include_str!("../../../bench/prose/smoothing.md"),
            Section::Spine => include_str!("../../../bench/prose/spine.md"),
            Section::Workflow => include_str!("../../../bench/prose/workflow.md"),
            Section::Gate => include_str!("../../../bench/prose/gate.md"),
            Section::Ingest => include_str!("../../../bench/prose/ingest.md"),
            Section::Dashboard => include_str!("../../../bench/prose/dashboard.md"),
            Section::Scaling => include_str!("../../../bench/prose/scaling.md"),
            Section::Memory => include_str!("../../../bench/prose/memory.md"),
            Section::Webhooks => include_str!("../../../bench/prose/webhooks.md"),
            Section::Reports => include_str!("../../../bench/prose/reports.md"),
        }
    }

    /// The bench binary the section runs, if it is one.
    fn binary(self) -> Option<&'static str> {
        match self {
            Section::Spine => Some("dockhand-bench"),
            Section::Workflow => Some("dockhand-workflow-bench"),
            Section::Gate => Some("dockhand-gate-bench"),
            Section::Ingest => Some("dockhand-ingest-bench"),
            Section::Dashboard => Some("dockhand-dashboard-bench"),
            Section::Webhooks => Some("dockhand-webhook-bench"),
            _ => None,
        }
    }

    fn is_criterion(self) -> bool {
        matches!(self, Section::Decode | Section::Smoothing)
    }

    fn from_key(key: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// What the user asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    quick: bool,
    sections: Vec<Section>,
    out: PathBuf,
}

/// Why the command line was refused.
#[derive(Debug, PartialEq, Eq)]
enum UsageError {
    UnknownFlag(String),
    MissingValue(&'static str),
    UnknownSection(String),
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsageError::UnknownFlag(a) => write!(f, "unknown argument {a:?}"),
            UsageError::MissingValue(flag) => write!(f, "{flag} needs a value"),
            UsageError::UnknownSection(s) => {
                let names: Vec<_> = Section::ALL.iter().map(|s| s.key()).collect();
                write!(f, "unknown section {s:?}; sections: {}", names.join(", "))
            }
        }
    }
}

impl std::error::Error for UsageError {}

impl Options {
    fn parse(args: &[String], default_out: &Path) -> Result<Options, UsageError> {
        let mut opts = Options {
            quick: false,
            sections: Section::ALL.to_vec(),
            out: default_out.to_path_buf(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--quick" => opts.quick = true,
                "--only" => {
                    let list = it.next().ok_or(UsageError::MissingValue("--only"))?;
                    let wanted = list
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| {
                            Section::from_key(s).ok_or_else(|| UsageError::UnknownSection(s.into()))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    // Keep the file's order whatever order they were named in.
                    opts.sections.retain(|s| wanted.contains(s));
                }
                "--out" => opts.out = it.next().ok_or(UsageError::MissingValue("--out"))?.into(),
                other => return Err(UsageError::UnknownFlag(other.into())),
            }
        }
        Ok(opts)
    }
}

/// Where things are: the workspace, and the target directory this binary was built into.
struct Paths {
    root: PathBuf,
    target: PathBuf,
    bins: PathBuf,
}

impl Paths {
    fn discover() -> Paths {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ has a parent")
            .to_path_buf();
        let bins = dockhand_tests::bin_dir();
        let target = bins
            .parent()
            .map_or_else(|| root.join("target"), Path::to_path_buf);
        Paths { root, target, bins }
    }
}

/// What one section produced.
struct Outcome {
    section: Section,
    /// What reproduces the section alone.
    command: String,
    secs: f64,
    load_before: Option<[f64; 3]>,
    load_after: Option<[f64; 3]>,
    /// The table, as Markdown.
    table: Option<String>,
    /// Per-run figures (a bench's stderr, or the suite's own log).
    log: Vec<String>,
    /// Targets the section measured.
    targets: Vec<Target>,
    error: Option<String>,
}

/// One row of the targets summary.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    issue: &'static str,
    what: String,
    target: String,
    measured: String,
    /// `None`: the figure was not found where it should be.
    met: Option<bool>,
}

/// The whole run.
struct Report {
    quick: bool,
    /// The cargo profile the benches were built with (`release`, or `debug` in the suite's own test).
    profile: String,
    args: Vec<String>,
    started: time::OffsetDateTime,
    secs: f64,
    machine: Machine,
    load_start: Option<[f64; 3]>,
    load_end: Option<[f64; 3]>,
    outcomes: Vec<Outcome>,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let paths = Paths::discover();
    let opts = Options::parse(&args, &paths.root.join("BENCHMARKS.md"))?;
    let report = run(&opts, &args, &paths)?;
    let failed: Vec<_> = report
        .outcomes
        .iter()
        .filter(|o| o.error.is_some())
        .map(|o| o.section.key())
        .collect();
    std::fs::write(&opts.out, render(&report))
        .with_context(|| format!("write {}", opts.out.display()))?;
    eprintln!("wrote {} in {:.0} s", opts.out.display(), report.secs);
    if !failed.is_empty() {
        bail!(
            "sections failed: {} (see {})",
            failed.join(", "),
            opts.out.display()
        );
    }
    Ok(())
}

/// Runs the sections of `opts` and gathers what they measured.
fn run(opts: &Options, args: &[String], paths: &Paths) -> Result<Report> {
    let started = time::OffsetDateTime::now_utc();
    let clock = Instant::now();
    let load_start = machine::load_average();
    let machine = Machine::read(&paths.root);
    let needs_build = opts
        .sections
        .iter()
        .any(|s| s.binary().is_some() || *s == Section::Memory);
    if needs_build {
        build(paths)?;
    }
    let mut outcomes = Vec::new();
    let mut estimates = None;
    for &section in &opts.sections {
        eprintln!("== {} ...", section.key());
        let load_before = machine::load_average();
        let t = Instant::now();
        let mut outcome = Outcome {
            section,
            command: String::new(),
            secs: 0.0,
            load_before,
            load_after: None,
            table: None,
            log: Vec::new(),
            targets: Vec::new(),
            error: None,
        };
        let result = if section.is_criterion() {
            // One `cargo bench` serves both criterion sections; run it at the first.
            if estimates.is_none() {
                estimates = Some(criterion_run(opts.quick, paths));
            }
            match estimates.as_ref().expect("set above") {
                Ok(found) => criterion_section(section, opts.quick, found, &mut outcome),
                Err(e) => Err(anyhow::anyhow!("{e:#}")),
            }
        } else if let Some(bin) = section.binary() {
            binary_section(section, bin, opts.quick, paths, &mut outcome)
        } else {
            own_section(section, opts.quick, &mut outcome)
        };
        if let Err(e) = result {
            eprintln!("{} failed: {e:#}", section.key());
            outcome.error = Some(format!("{e:#}"));
        }
        outcome.secs = t.elapsed().as_secs_f64();
        outcome.load_after = machine::load_average();
        outcomes.push(outcome);
    }
    Ok(Report {
        quick: opts.quick,
        profile: paths
            .bins
            .file_name()
            .map_or_else(|| "unknown".into(), |n| n.to_string_lossy().into_owned()),
        args: args.to_vec(),
        started,
        secs: clock.elapsed().as_secs_f64(),
        machine,
        load_start,
        load_end: machine::load_average(),
        outcomes,
    })
}

/// Builds the bench binaries, the server and the agent into this binary's target directory.
/// The profile is this binary's own, so a debug build of the suite (its test) measures debug binaries it built.
fn build(paths: &Paths) -> Result<()> {
    let mut cmd = cargo(paths);
    cmd.args(["build", "-p", "dockhand-tests", "--bins"]).args([
        "-p",
        "dockhand-server",
        "-p",
        "dockhand-agent",
    ]);
    if paths.bins.ends_with("release") {
        cmd.arg("--release");
    }
    let status = cmd.status().context("run cargo build")?;
    if !status.success() {
        bail!("cargo build of the bench binaries failed ({status})");
    }
    Ok(())
}

/// `cargo` in the workspace, writing to this binary's target directory.
fn cargo(paths: &Paths) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(&paths.root)
        .env("CARGO_TARGET_DIR", &paths.target);
    // `cargo run` gives this process its package's variables (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, ...). Build
    // scripts that watch them (ring's does) would see them changed and rebuild, and the next plain `cargo build`
    // would rebuild them back: the nested cargo must see the environment a user's shell has.
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        let injected = name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                name.as_ref(),
                "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_RUSTC_CURRENT_DIR"
            );
        if injected {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// Runs `cargo bench -p dockhand-protocol`; returns the estimates it wrote.
fn criterion_run(quick: bool, paths: &Paths) -> Result<Vec<Estimate>> {
    // Criterion stamps its files after the run starts; a second of slack covers coarse file-system clocks.
    let since = SystemTime::now() - std::time::Duration::from_secs(1);
    let mut cmd = cargo(paths);
    // Bench targets only: the library's own tests would be built in release for nothing, and would refuse
    // criterion's flags.
    cmd.args(["bench", "-p", "dockhand-protocol", "--bench", "*"]);
    if quick {
        cmd.args(["--", "--quick"]);
    }
    let (_, log) = captured(cmd, "criterion")?;
    let found = criterion::read_estimates(&paths.target.join("criterion"), since)
        .context("read criterion's estimates")?;
    if found.is_empty() {
        bail!(
            "cargo bench wrote no estimates; its output ended with:\n{}",
            tail(&log, 20)
        );
    }
    Ok(found)
}

/// Runs `cmd`, echoing its stderr (progress, per-run figures) as it comes; returns stdout and the stderr lines.
fn captured(mut cmd: Command, label: &str) -> Result<(String, Vec<String>)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {label}"))?;
    let stderr = child.stderr.take().context("stderr")?;
    let label_owned = label.to_string();
    let echo = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("  [{label_owned}] {line}");
            if !is_log_record(&line) {
                lines.push(line);
            }
        }
        lines
    });
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().context("stdout")?, &mut stdout)?;
    let status = child.wait()?;
    let log = echo.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "{label} exited with {status}; stderr ended with:\n{}",
            tail(&log, 20)
        );
    }
    Ok((stdout, log))
}

/// Whether a stderr line is a log record of a process the bench started (the agent's and server's `tracing`
/// output, e.g. sync retries while a bench has stopped the server) rather than a figure the bench printed. Those
/// are echoed while the suite runs but kept out of the report.
fn is_log_record(line: &str) -> bool {
    let plain: String = strip_ansi(line);
    let mut words = plain.split_whitespace();
    let stamped = words
        .next()
        .is_some_and(|w| w.len() >= 20 && w.ends_with('Z') && w.as_bytes()[4] == b'-');
    stamped
        && words
            .next()
            .is_some_and(|w| matches!(w, "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR"))
}

/// `text` without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn tail(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A decoder (or smoother) row: the measured benchmark, its floor, and what each processes.
struct CriterionRow {
    what: &'static str,
    id: &'static str,
    floor: &'static str,
    floor_id: &'static str,
}

const DECODE_ROWS: &[CriterionRow] = &[
    CriterionRow {
        what: "GS1-128, 40 bytes (`decode_scan`), scans",
        id: "decode/decode_scan/gs1_128_40",
        floor: "UTF-8 check + split on GS",
        floor_id: "decode/baseline_utf8_split/gs1_128_40",
    },
    CriterionRow {
        what: "GS1 DataMatrix, 44 bytes, scans",
        id: "decode/decode_scan/gs1_datamatrix",
        floor: "UTF-8 check + split on GS",
        floor_id: "decode/baseline_utf8_split/gs1_datamatrix",
    },
    CriterionRow {
        what: "EAN-13, scans",
        id: "decode/decode_scan/ean_13",
        floor: "UTF-8 check + split on GS",
        floor_id: "decode/baseline_utf8_split/ean_13",
    },
    CriterionRow {
        what: "SGTIN-96 EPC → pure-identity URI, tags",
        id: "epc/sgtin96_decode_uri",
        floor: "the 12 bytes as hex",
        floor_id: "epc/baseline_hex",
    },
    CriterionRow {
        what: "R2000 `0x89` tag frames through `R2000Session`, reads",
        id: "r2000/session_tag_frames",
        floor: "byte scan of the same stream",
        floor_id: "r2000/baseline_byte_scan",
    },
    CriterionRow {
        what: "LLRP RO_ACCESS_REPORT (50 tags each) through `Decoder`, tag reports",
        id: "llrp/decoder_ro_access_report",
        floor: "byte scan of the same stream",
        floor_id: "llrp/baseline_byte_scan",
    },
];

const SMOOTHING_ROWS: &[CriterionRow] = &[
    CriterionRow {
        what: "smoothing alone (`Smoother::observe` + timeouts), reads",
        id: "rfid/smooth",
        floor: "std `HashMap<Vec<u8>, u64>` read counter",
        floor_id: "rfid/baseline_std_hashmap_counter",
    },
    CriterionRow {
        what: "R2000 frames decoded, then smoothed, reads",
        id: "rfid/decode_and_smooth",
        floor: "hashing each EPC alone",
        floor_id: "rfid/baseline_hash_epc",
    },
];

/// The decode or smoothing table from criterion's estimates.
fn criterion_section(
    section: Section,
    quick: bool,
    found: &[Estimate],
    out: &mut Outcome,
) -> Result<()> {
    out.command = format!(
        "cargo bench -p dockhand-protocol --bench '*'{}",
        if quick { " -- --quick" } else { "" }
    );
    let rows = if section == Section::Decode {
        DECODE_ROWS
    } else {
        SMOOTHING_ROWS
    };
    let table = criterion_table(rows, found);
    out.log = rows
        .iter()
        .flat_map(|r| [r.id, r.floor_id])
        .filter_map(|id| found.iter().find(|e| e.id == id))
        .map(|e| {
            format!(
                "{}: median {} per iteration, {:?} elements",
                e.id,
                duration_ns(e.median_ns),
                e.elements
            )
        })
        .collect();
    let target = match section {
        Section::Decode => (
            "issue 3",
            "decode/decode_scan/gs1_128_40",
            "40-character GS1-128 scans decoded per second, one core",
        ),
        _ => (
            "issue 4",
            "rfid/decode_and_smooth",
            "raw RFID reads per second through R2000 decoding + smoothing, one core",
        ),
    };
    let per_second = found
        .iter()
        .find(|e| e.id == target.1)
        .and_then(Estimate::per_second);
    out.targets.push(Target {
        issue: target.0,
        what: target.2.into(),
        target: "≥ 1,000,000/s".into(),
        measured: per_second.map_or_else(|| "not measured".into(), rate),
        met: per_second.map(|r| r >= 1e6),
    });
    out.table = Some(table.render());
    Ok(())
}

fn criterion_table(rows: &[CriterionRow], found: &[Estimate]) -> Table {
    let get = |id: &str| found.iter().find(|e| e.id == id);
    let header = [
        "input, unit",
        "median per item",
        "items/s",
        "floor (same run)",
        "floor items/s",
        "ratio (time / floor's)",
    ]
    .map(String::from)
    .to_vec();
    let rows = rows
        .iter()
        .map(|r| {
            let per_item = |e: &Estimate| e.median_ns / e.elements.unwrap_or(1) as f64;
            match (get(r.id), get(r.floor_id)) {
                (Some(m), Some(f)) => vec![
                    r.what.to_string(),
                    duration_ns(per_item(m)),
                    m.per_second().map_or_else(String::new, rate),
                    r.floor.to_string(),
                    f.per_second().map_or_else(String::new, rate),
                    format!("{:.1}×", per_item(m) / per_item(f)),
                ],
                _ => vec![
                    r.what.to_string(),
                    format!(
                        "not measured (no estimate for `{}` or `{}`)",
                        r.id, r.floor_id
                    ),
                    String::new(),
                    r.floor.to_string(),
                    String::new(),
                    String::new(),
                ],
            }
        })
        .collect();
    Table { header, rows }
}

/// Runs a bench binary and embeds its table.
fn binary_section(
    section: Section,
    bin: &str,
    quick: bool,
    paths: &Paths,
    out: &mut Outcome,
) -> Result<()> {
    // The sled backend alone in a quick run: PostgreSQL's cluster and fills are the slow half of these two.
    let args: &[&str] = match section {
        Section::Ingest | Section::Dashboard if quick => &["--backend", "sled"],
        _ => &[],
    };
    out.command = format!("cargo run --release -p dockhand-tests --bin {bin}");
    if !args.is_empty() {
        out.command.push_str(&format!(" -- {}", args.join(" ")));
    }
    let mut cmd = Command::new(paths.bins.join(bin));
    cmd.args(args).current_dir(&paths.root);
    let (stdout, log) = captured(cmd, bin)?;
    out.log = log;
    let table =
        Table::parse(&stdout).with_context(|| format!("{bin} printed no Markdown table"))?;
    out.targets = targets_from_table(section, &table);
    out.table = Some(table_block(&stdout));
    Ok(())
}

/// A bench's stdout from its table on, verbatim. Lines before the table are not results: an in-process server
/// prints where it listens and where its CA and admin token are.
fn table_block(stdout: &str) -> String {
    let lines: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with('|'))
        .collect();
    lines.join("\n").trim_end().to_string() + "\n"
}

/// The suite's own measurements.
fn own_section(section: Section, quick: bool, out: &mut Outcome) -> Result<()> {
    let q = if quick { " --quick" } else { "" };
    out.command = format!("{COMMAND} -- --only {}{q}", section.key());
    match section {
        Section::Scaling => {
            let cfg = if quick {
                scaling::Config::quick()
            } else {
                scaling::Config::full()
            };
            let (table, log) = scaling::run(&cfg)?;
            out.table = Some(table.render());
            out.log = log;
        }
        Section::Memory => {
            let cfg = if quick {
                memory::Config::quick()
            } else {
                memory::Config::full()
            };
            let (table, log, agent_day) = memory::run(&cfg)?;
            out.table = Some(table.render());
            out.log = log;
            out.targets.push(Target {
                issue: "issue 5",
                what: format!("agent VmRSS after a day ({} scans), synced", cfg.scans),
                target: "≤ 64 MiB".into(),
                measured: markdown::mib(agent_day),
                met: Some(agent_day <= memory::AGENT_BUDGET_BYTES),
            });
        }
        Section::Reports => {
            let cfg = if quick {
                reports::Config::quick()
            } else {
                reports::Config::full()
            };
            let (table, log) = reports::run(&cfg)?;
            for row in &table.rows {
                let median = row[1].clone();
                out.targets.push(Target {
                    issue: "issue 9",
                    what: format!("{} over {} movements (PostgreSQL)", row[0], cfg.movements),
                    target: format!("≤ {} s", reports::TARGET_SECS),
                    met: Some(row[4] == "yes"),
                    measured: median,
                });
            }
            out.table = Some(table.render());
            out.log = log;
        }
        other => bail!("{} is not measured by the suite itself", other.key()),
    }
    Ok(())
}

/// How to find one target in a bench's table: the row, the column, which number of the cell, and the bound.
struct Lookup {
    issue: &'static str,
    what: &'static str,
    row: &'static str,
    column: &'static str,
    nth: usize,
    unit: &'static str,
    bound: Bound,
}

#[derive(Clone, Copy)]
enum Bound {
    AtLeast(f64),
    AtMost(f64),
}

const LOOKUPS: &[(Section, Lookup)] = &[
    (
        Section::Spine,
        Lookup {
            issue: "issue 2",
            what: "confirmed scans/s in a burst of 10,000 (journal group commit)",
            row: "agent burst",
            column: "dockhand",
            nth: 0,
            unit: "/s",
            bound: Bound::AtLeast(5_000.0),
        },
    ),
    (
        Section::Spine,
        Lookup {
            issue: "issue 2",
            what: "p99 single-scan confirm latency",
            row: "agent single-scan",
            column: "dockhand",
            nth: 1,
            unit: " ms",
            bound: Bound::AtMost(10.0),
        },
    ),
    (
        Section::Spine,
        Lookup {
            issue: "issue 2",
            what: "server ingest over HTTPS, % of raw sled inserts",
            row: "server ingest",
            column: "ratio",
            nth: 0,
            unit: "%",
            bound: Bound::AtLeast(30.0),
        },
    ),
    (
        Section::Workflow,
        Lookup {
            issue: "issue 5",
            what: "p99 pick scan to good-read, 10,000 items, 1,000 lines, server up",
            row: "pick scan to good-read over the pty",
            column: "value",
            nth: 1,
            unit: " ms",
            bound: Bound::AtMost(5.0),
        },
    ),
    (
        Section::Workflow,
        Lookup {
            issue: "issue 5",
            what: "agent VmRSS after 100,000 scans, synced",
            row: "agent vmrss after",
            column: "value",
            nth: 0,
            unit: " MiB",
            bound: Bound::AtMost(64.0),
        },
    ),
];

/// The targets a bench's table shows: looked up by row and column for the benches that print bare figures, and
/// copied from the rows that judge themselves ("≥ 50%: met") for the others, without reading their columns.
fn targets_from_table(section: Section, table: &Table) -> Vec<Target> {
    let mut out: Vec<Target> = LOOKUPS
        .iter()
        .filter(|(s, _)| *s == section)
        .map(|(_, l)| {
            let value = table
                .cell(l.row, l.column)
                .and_then(|c| numbers(c).get(l.nth).copied());
            let (target, met) = match l.bound {
                Bound::AtLeast(b) => (
                    format!("≥ {}{}", thousands(b), l.unit),
                    value.map(|v| v >= b),
                ),
                Bound::AtMost(b) => (
                    format!("≤ {}{}", thousands(b), l.unit),
                    value.map(|v| v <= b),
                ),
            };
            Target {
                issue: l.issue,
                what: l.what.into(),
                target,
                measured: value.map_or_else(
                    || format!("not found (row \"{}\", column \"{}\")", l.row, l.column),
                    |v| format!("{}{}", thousands(v), l.unit),
                ),
                met,
            }
        })
        .collect();
    let (issue, label_cells) = match section {
        Section::Ingest => ("issue 6", 1),
        Section::Dashboard => ("issue 7", 2),
        _ => return out,
    };
    for row in &table.rows {
        let Some((at, verdict)) = row
            .iter()
            .enumerate()
            .find_map(|(i, c)| verdict(c).map(|v| (i, v)))
        else {
            continue;
        };
        // The figure judged: the nearest non-empty cell before the verdict, except in the dashboard's table, whose
        // target is on the page time and not on the ratio beside it.
        let measured_at = match section {
            Section::Dashboard => table.column("page"),
            _ => (label_cells..at).rev().find(|&i| !row[i].is_empty()),
        };
        out.push(Target {
            issue,
            what: row[..label_cells.min(at)].join(", "),
            target: row[at]
                .split(':')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
            measured: measured_at
                .and_then(|i| Some(with_unit(row.get(i)?, table.header.get(i)?)))
                .unwrap_or_else(|| "see the table".into()),
            met: Some(verdict),
        });
    }
    out
}

/// A bare figure gets the unit its column header names ("page, median ms" → "0.15 ms"); others stay as they are.
fn with_unit(cell: &str, header: &str) -> String {
    let bare = !cell.is_empty() && cell.parse::<f64>().is_ok();
    match header.rsplit(' ').next() {
        Some(unit @ ("ms" | "s" | "µs")) if bare => format!("{cell} {unit}"),
        _ => cell.to_string(),
    }
}

/// `Some(true)` for a cell like "≥ 50%: met", `Some(false)` for "…: missed"; `None` for any other cell.
fn verdict(cell: &str) -> Option<bool> {
    let (_, v) = cell.rsplit_once(':')?;
    let v = v.trim().to_lowercase();
    if v.starts_with("met") {
        Some(true)
    } else if v.starts_with("missed") {
        Some(false)
    } else {
        None
    }
}

/// A number with thousands separators and no needless decimals: 5,000 / 0.72 / 64.
fn thousands(v: f64) -> String {
    if v.fract() != 0.0 && v.abs() < 1000.0 {
        return format!("{v:.2}").trim_end_matches('0').to_string();
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0.0 {
        out.insert(0, '-');
    }
    out
}

fn load(l: Option<[f64; 3]>) -> String {
    l.map_or_else(
        || "unknown".into(),
        |[a, b, c]| format!("{a:.2} / {b:.2} / {c:.2}"),
    )
}

fn minutes(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// The whole BENCHMARKS.md.
fn render(r: &Report) -> String {
    let mut md = String::new();
    let m = &r.machine;
    let when = r.started;
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "<!-- Generated by dockhand-bench-suite (tests/src/bin/bench_suite.rs). Do not edit: re-run the command \
         below; prose lives in bench/prose/. -->\n"
    );
    if r.quick {
        let _ = writeln!(
            md,
            "> **Quick run (`--quick`)**: fewer runs and smaller sizes, a smoke check. Do not compare these figures \
             with a full run's.\n"
        );
    }
    let _ = writeln!(
        md,
        "Every figure below comes from one run of:\n\n```sh\n{COMMAND}\n```\n"
    );
    let mut ran = COMMAND.to_string();
    if !r.args.is_empty() {
        ran = format!("{ran} -- {}", r.args.join(" "));
    }
    let ram = m.ram_bytes.map_or_else(
        || "unknown RAM".into(),
        |b| format!("{} RAM", markdown::mib(b)),
    );
    let rows = [
        (
            "date",
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                when.year(),
                u8::from(when.month()),
                when.day(),
                when.hour(),
                when.minute()
            ),
        ),
        ("command of this run", format!("`{ran}`")),
        ("run time", minutes(r.secs)),
        (
            "machine",
            format!("{}, {} logical CPUs, {ram}", m.cpu, m.cores),
        ),
        ("kernel", format!("Linux {}", m.kernel)),
        ("toolchain", format!("{}, {} profile", m.rustc, r.profile)),
        ("code", format!("git {}", m.commit)),
        (
            "load average (1 / 5 / 15 min)",
            format!("start {}; end {}", load(r.load_start), load(r.load_end)),
        ),
    ];
    let _ = writeln!(md, "| run | |\n| --- | --- |");
    for (k, v) in rows {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    let _ = writeln!(md, "\n{}", include_str!("../../../bench/prose/intro.md"));

    let _ = writeln!(md, "## Targets\n");
    let targets: Vec<&Target> = r.outcomes.iter().flat_map(|o| &o.targets).collect();
    if targets.is_empty() {
        let _ = writeln!(md, "No section of this run measures an issue's target.\n");
    } else {
        let _ = writeln!(
            md,
            "| issue | what | target | measured | verdict |\n| --- | --- | --- | --- | --- |"
        );
        for t in targets {
            let verdict = match t.met {
                Some(true) => "met",
                Some(false) => "**missed**",
                None => "not found",
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {verdict} |",
                t.issue, t.what, t.target, t.measured
            );
        }
        let _ = writeln!(md);
    }
    let failed: Vec<_> = r
        .outcomes
        .iter()
        .filter(|o| o.error.is_some())
        .map(|o| o.section.title())
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(
            md,
            "Sections that failed in this run (their targets are missing above): {}.\n",
            failed.join("; ")
        );
    }

    for o in &r.outcomes {
        let _ = writeln!(md, "## {}\n", o.section.title());
        let _ = writeln!(
            md,
            "`{}` — {}, load average {} before, {} after.\n",
            o.command,
            minutes(o.secs),
            load(o.load_before),
            load(o.load_after)
        );
        if let Some(e) = &o.error {
            let _ = writeln!(md, "**Failed in this run**:\n\n```text\n{e}\n```\n");
        }
        if let Some(t) = &o.table {
            let _ = writeln!(md, "{t}");
        }
        if !o.log.is_empty() {
            let _ = writeln!(
                md,
                "<details><summary>Per-run figures</summary>\n\n```text\n{}\n```\n\n</details>\n",
                o.log.join("\n")
            );
        }
        let _ = writeln!(md, "{}", o.section.prose());
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn command_lines() {
        let out = Path::new("/w/BENCHMARKS.md");
        let all = Section::ALL.to_vec();
        /// (arguments, Ok((quick, sections, out)) or the usage error).
        type Case = (
            &'static str,
            Result<(bool, Vec<Section>, &'static str), UsageError>,
        );
        let cases: &[Case] = &[
            ("", Ok((false, all.clone(), "/w/BENCHMARKS.md"))),
            ("--quick", Ok((true, all.clone(), "/w/BENCHMARKS.md"))),
            (
                "--only memory,decode",
                Ok((
                    false,
                    vec![Section::Decode, Section::Memory],
                    "/w/BENCHMARKS.md",
                )),
            ),
            (
                "--only scaling --out /tmp/x.md --quick",
                Ok((true, vec![Section::Scaling], "/tmp/x.md")),
            ),
            ("--only", Err(UsageError::MissingValue("--only"))),
            ("--out", Err(UsageError::MissingValue("--out"))),
            (
                "--only decode,nope",
                Err(UsageError::UnknownSection("nope".into())),
            ),
            ("--fast", Err(UsageError::UnknownFlag("--fast".into()))),
        ];
        for (line, want) in cases {
            let got = Options::parse(&args(line), out).map(|o| (o.quick, o.sections, o.out));
            let want = want
                .as_ref()
                .map(|(q, s, p)| (*q, s.clone(), PathBuf::from(p)));
            assert_eq!(got.as_ref().map(Clone::clone), want, "{line:?}");
        }
    }

    #[test]
    fn every_section_has_a_unique_key_and_prose() {
        for s in Section::ALL {
            assert_eq!(Section::from_key(s.key()), Some(s));
            assert!(!s.prose().trim().is_empty(), "{}", s.key());
            // Prose explains; figures come from the run. A digit followed by a rate or time unit would be a figure.
            for unit in [" M/s", " k/s", " ms |", "MiB |"] {
                assert!(!s.prose().contains(unit), "{}: {unit:?} in prose", s.key());
            }
        }
    }

    #[test]
    fn log_records_are_not_figures() {
        let cases: &[(&str, bool)] = &[
            (
                "\u{1b}[2m2026-11-27T04:32:44.277395Z\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m \u{1b}[2mdockhand_agent::sync\u{1b}[0m: sync failed",
                true,
            ),
            ("2026-11-27T04:32:44.277395Z  INFO dockhand_server: listening", true),
            ("burst run 0: 66403 scans/s, naive fsync-each 7013/s", false),
            ("end-to-end run 1/3 ...", false),
            ("sled pull of 100000 changes, runs: [1.939, 0.857, 0.830] s", false),
            ("", false),
        ];
        for &(line, want) in cases {
            assert_eq!(is_log_record(line), want, "{line:?}");
        }
    }

    #[test]
    fn table_blocks() {
        let cases: &[(&str, &str)] = &[
            (
                "dockhand-server listening on https://127.0.0.1:1\nca: /tmp/x/ca.pem\n| a | b |\n| --- | --- |\n| 1 | 2 |\n",
                "| a | b |\n| --- | --- |\n| 1 | 2 |\n",
            ),
            ("| a |\n| --- |\n| 1 |\n\nnote after\n\n", "| a |\n| --- |\n| 1 |\n\nnote after\n"),
        ];
        for &(stdout, want) in cases {
            assert_eq!(table_block(stdout), want, "{stdout:?}");
        }
    }

    #[test]
    fn units_from_headers() {
        let cases: &[(&str, &str, &str)] = &[
            ("0.15", "page, median ms", "0.15 ms"),
            ("54%", "ratio", "54%"),
            ("0.45 s", "Dockhand", "0.45 s"),
            ("61.2", "value", "61.2"),
        ];
        for &(cell, header, want) in cases {
            assert_eq!(with_unit(cell, header), want, "{cell} / {header}");
        }
    }

    #[test]
    fn verdicts() {
        let cases: &[(&str, Option<bool>)] = &[
            ("≥ 50%: met", Some(true)),
            ("≥ 50%: met (thin margin)", Some(true)),
            ("≥ 30%: missed", Some(false)),
            ("≤ 200 ms: MISSED", Some(false)),
            ("41%", None),
            ("note: see above", None),
        ];
        for &(cell, want) in cases {
            assert_eq!(verdict(cell), want, "{cell:?}");
        }
    }

    #[test]
    fn thousands_separators() {
        let cases: &[(f64, &str)] = &[
            (5000.0, "5,000"),
            (1_000_000.0, "1,000,000"),
            (0.72, "0.72"),
            (64.0, "64"),
            (65725.0, "65,725"),
            (4.5, "4.5"),
        ];
        for &(v, want) in cases {
            assert_eq!(thousands(v), want, "{v}");
        }
    }

    const SPINE: &str = "| measurement | Dockhand | baseline (same run) | ratio |\n| --- | --- | --- | --- |\n\
        | agent burst, 10000 scans from a pty, confirmed scans/s (median of 5) | 65725 | 5879 records/s | 11.18× |\n\
        | agent single-scan confirm latency p50 / p99 (900 scans) | 0.40 ms / 12.72 ms | 0.13 ms | 3.07× at p50 |\n";

    const INGEST: &str =
        "| measurement | Dockhand | raw | ratio | target |\n| --- | --- | --- | --- | --- |\n\
        | sled ingest, 8 device(s), movements/s | 96473 | 177325 | 54% | ≥ 50%: met |\n\
        | PostgreSQL ingest, 8 device(s) | 84612 | 317360 | 27% | ≥ 30%: missed |\n\
        | sled pull of 100000 changes | 0.45 s | | | ≤ 2 s: met |\n";

    const DASHBOARD: &str = "| backend | request | page, median ms | store query alone, median ms | page / store | target |\n\
        | --- | --- | --- | --- | --- | --- |\n\
        | sled | sorted by qty | 61.20 | 63.70 | 1.0× | ≤ 200 ms: met |\n\
        | sled | baseline: JSON | 25.8 | | | |\n";

    #[test]
    fn targets_from_bench_tables() {
        let row = |issue, what: &str, target: &str, measured: &str, met| Target {
            issue,
            what: what.into(),
            target: target.into(),
            measured: measured.into(),
            met,
        };
        let cases: &[(Section, &str, Vec<Target>)] = &[
            (
                Section::Spine,
                SPINE,
                vec![
                    row(
                        "issue 2",
                        LOOKUPS[0].1.what,
                        "≥ 5,000/s",
                        "65,725/s",
                        Some(true),
                    ),
                    row(
                        "issue 2",
                        LOOKUPS[1].1.what,
                        "≤ 10 ms",
                        "12.72 ms",
                        Some(false),
                    ),
                    row(
                        "issue 2",
                        LOOKUPS[2].1.what,
                        "≥ 30%",
                        "not found (row \"server ingest\", column \"ratio\")",
                        None,
                    ),
                ],
            ),
            (
                Section::Ingest,
                INGEST,
                vec![
                    row(
                        "issue 6",
                        "sled ingest, 8 device(s), movements/s",
                        "≥ 50%",
                        "54%",
                        Some(true),
                    ),
                    row(
                        "issue 6",
                        "PostgreSQL ingest, 8 device(s)",
                        "≥ 30%",
                        "27%",
                        Some(false),
                    ),
                    row(
                        "issue 6",
                        "sled pull of 100000 changes",
                        "≤ 2 s",
                        "0.45 s",
                        Some(true),
                    ),
                ],
            ),
            (
                Section::Dashboard,
                DASHBOARD,
                vec![row(
                    "issue 7",
                    "sled, sorted by qty",
                    "≤ 200 ms",
                    "61.20 ms",
                    Some(true),
                )],
            ),
            (Section::Gate, SPINE, vec![]),
        ];
        for (section, text, want) in cases {
            let table = Table::parse(text).expect("table");
            assert_eq!(
                &targets_from_table(*section, &table),
                want,
                "{}",
                section.key()
            );
        }
    }

    #[test]
    fn criterion_rows_and_missing_estimates() {
        let est = |id: &str, ns: f64, n: u64| Estimate {
            id: id.into(),
            median_ns: ns,
            elements: Some(n),
        };
        let found = vec![
            est("decode/decode_scan/gs1_128_40", 500.0, 1),
            est("decode/baseline_utf8_split/gs1_128_40", 10.0, 1),
            est("epc/sgtin96_decode_uri", 200_000.0, 1_000),
        ];
        let t = criterion_table(DECODE_ROWS, &found);
        assert_eq!(t.rows.len(), DECODE_ROWS.len());
        let gs1 = &t.rows[0];
        assert_eq!(gs1[1], "500.0 ns");
        assert_eq!(gs1[2], "2.00 M/s");
        assert_eq!(gs1[4], "100.00 M/s");
        assert_eq!(gs1[5], "50.0×");
        let epc = t.row("SGTIN-96").expect("epc row");
        assert!(epc[1].starts_with("not measured"), "{epc:?}");
    }

    /// The whole path of a run (options, machine description, one of the suite's own sections, rendering) in
    /// quick mode, into a temporary file.
    #[test]
    fn quick_scaling_run_writes_a_report() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("BENCHMARKS.md");
        let args = args(&format!("--quick --only scaling --out {}", out.display()));
        let paths = Paths::discover();
        let opts = Options::parse(&args, &paths.root.join("BENCHMARKS.md")).unwrap();
        let report = run(&opts, &args, &paths).unwrap();
        std::fs::write(&opts.out, render(&report)).unwrap();
        let md = std::fs::read_to_string(&out).unwrap();

        assert!(md.starts_with("# Benchmarks\n"));
        assert!(md.contains("**Quick run (`--quick`)**"));
        assert!(md.contains(&format!("```sh\n{COMMAND}\n```")));
        for key in [
            "| machine |",
            "| kernel | Linux ",
            "| toolchain | rustc ",
            "| code | git ",
            "| load average",
        ] {
            assert!(md.contains(key), "{key} missing");
        }
        assert!(
            md.contains(", debug profile |"),
            "the test's suite measures its own debug build"
        );
        assert!(md.contains(&format!("## {}", Section::Scaling.title())));
        assert!(!md.contains(&format!("## {}", Section::Decode.title())));
        assert!(!md.contains("Failed in this run"));
        let section = md
            .split(&format!("## {}", Section::Scaling.title()))
            .nth(1)
            .unwrap();
        let table = Table::parse(section).expect("scaling table");
        assert_eq!(
            table.header,
            ["figure", "1×", "10×", "100×", "10× / 1×", "100× / 1×"]
        );
        let data = table.cell("data", "10×").expect("data row");
        assert_eq!(data, "100 / 1000 / 10");
        for row in [
            "ingest",
            "pull",
            "stock page, first",
            "stock page, 50 rows sorted",
        ] {
            let ratio = table.cell(row, "100× /").unwrap_or_default();
            assert!(
                numbers(ratio).first().is_some_and(|r| *r > 0.0),
                "{row}: ratio {ratio:?}"
            );
        }
    }
}
