//! `GET /metrics` on the agent's loopback status endpoint: the Prometheus text exposition format, version 0.0.4.
//!
//! ```text
//! dockhand_agent_info{device,site,version}                      gauge      always 1
//! dockhand_agent_scans_total{result[,reason]}                   counter    result: accepted | prompt | rejected;
//!                                                                          reason (rejected only): undecodable |
//!                                                                          refused | storage_full | not_stored
//! dockhand_agent_gate_passes_total{result}                      counter    a dock gate's tag passes (gate only)
//! dockhand_agent_journal_size_bytes                             gauge      the journal's segment files
//! dockhand_agent_journal_quota_bytes                            gauge      storage.max_journal_bytes, when set
//! dockhand_agent_storage_full                                   gauge      1 while scans are refused for space
//! dockhand_agent_sync_backlog_movements                         gauge      durable, not yet acknowledged
//! dockhand_agent_sync_errors_total{op,class}                    counter    op: push | pull | stock
//! dockhand_agent_sync_last_success_timestamp_seconds{op}        gauge      unix time; absent before the first
//! dockhand_agent_reader_connected{source,kind}                  gauge      RFID readers
//! dockhand_agent_reader_reconnects_total{source,kind}           counter    RFID readers: reopened after a loss
//! dockhand_agent_reader_errors_total{source,kind}               counter    RFID readers: error answers
//! ```
//!
//! `source` is the index of the `[[sources]]` entry. A rejected scan's `reason` is its class, not its text (the
//! text names items and lots, which would make every scan a new series): `undecodable` (the barcode did not
//! decode), `refused` (a workflow rule: wrong item, expired lot, not on the list...), `storage_full` and
//! `not_stored` (the journal could not make it durable). Sync error classes: `unavailable` (network, timeout,
//! 5xx, 429: retried), `gap`, `unauthorized` (401, also a revoked device), `forbidden`, `conflict`, `refused`
//! (another 4xx), `protocol` (an answer the agent cannot use) and `local` (the device's own storage).
//!
//! # Counting without locks on the scan path
//!
//! Counters are atomics in [`AgentMetrics`], shared by `Arc`: the workflow task and the decision emitter add one
//! with a relaxed `fetch_add` per scan, nothing else. The gauges are read at scrape time from what the status file
//! already holds (writer statistics, backlog, source and gate status), under their existing locks, on the
//! endpoint's blocking thread, never on the scan path.
//!
//! The encoder is the same small one as the server's (`dockhand_server::metrics`): the format needs no library
//! (see there for why not `prometheus-client`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::gate::GateStatus;
use crate::status::{DecisionEvent, Outcome};
use crate::sync::PushError;

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How a scan ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanResult {
    /// Movements made and durable.
    Accepted,
    /// Taken; the operator scans the next step.
    Prompt,
    /// Refused or not stored, for this reason class.
    Rejected(RejectReason),
}

/// Why a scan was rejected, by class (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The barcode did not decode.
    Undecodable,
    /// A workflow rule refused it.
    Refused,
    /// The journal refused it for lack of space.
    StorageFull,
    /// The journal could not write it for another reason.
    NotStored,
}

impl RejectReason {
    const ALL: [RejectReason; 4] = [
        RejectReason::Undecodable,
        RejectReason::Refused,
        RejectReason::StorageFull,
        RejectReason::NotStored,
    ];

    fn as_str(self) -> &'static str {
        match self {
            RejectReason::Undecodable => "undecodable",
            RejectReason::Refused => "refused",
            RejectReason::StorageFull => "storage_full",
            RejectReason::NotStored => "not_stored",
        }
    }
}

impl ScanResult {
    /// The class of a scan's decision, once the journal answered (`durable`; `Ok` when it had nothing to write).
    /// An event without a scan text is an undecodable scan (status.rs); a write error starting `storage full:` is
    /// the writer's [`crate::writer::WriteError::StorageFull`].
    pub fn of(event: &DecisionEvent, durable: Result<(), &str>) -> Self {
        match (durable, event.result) {
            (Err(e), _) if e.starts_with("storage full:") => {
                ScanResult::Rejected(RejectReason::StorageFull)
            }
            (Err(_), _) => ScanResult::Rejected(RejectReason::NotStored),
            (Ok(()), Outcome::Accepted) => ScanResult::Accepted,
            (Ok(()), Outcome::Prompt) => ScanResult::Prompt,
            (Ok(()), Outcome::Rejected) if event.scan.is_none() => {
                ScanResult::Rejected(RejectReason::Undecodable)
            }
            (Ok(()), Outcome::Rejected) => ScanResult::Rejected(RejectReason::Refused),
        }
    }

    fn index(self) -> usize {
        match self {
            ScanResult::Accepted => 0,
            ScanResult::Prompt => 1,
            ScanResult::Rejected(r) => 2 + r as usize,
        }
    }
}

/// Which sync exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOp {
    /// `POST /v1/sync/push`.
    Push,
    /// `GET /v1/sync/pull`.
    Pull,
    /// `GET /v1/sync/stock`.
    Stock,
}

impl SyncOp {
    const ALL: [SyncOp; 3] = [SyncOp::Push, SyncOp::Pull, SyncOp::Stock];

    fn as_str(self) -> &'static str {
        match self {
            SyncOp::Push => "push",
            SyncOp::Pull => "pull",
            SyncOp::Stock => "stock",
        }
    }
}

/// Why a sync exchange failed, by class (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncErrorClass {
    /// Network error, timeout, 5xx, 429: retried with backoff.
    Unavailable,
    /// The server expects an earlier seq.
    Gap,
    /// 401: bad token or revoked device.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 409 other than a gap.
    Conflict,
    /// Any other 4xx.
    Refused,
    /// An answer the agent cannot use.
    Protocol,
    /// The device's own storage failed around the exchange.
    Local,
}

impl SyncErrorClass {
    const ALL: [SyncErrorClass; 8] = [
        SyncErrorClass::Unavailable,
        SyncErrorClass::Gap,
        SyncErrorClass::Unauthorized,
        SyncErrorClass::Forbidden,
        SyncErrorClass::Conflict,
        SyncErrorClass::Refused,
        SyncErrorClass::Protocol,
        SyncErrorClass::Local,
    ];

    /// The class of a transport error.
    pub fn of(e: &PushError) -> Self {
        match e {
            PushError::Unavailable(_) => SyncErrorClass::Unavailable,
            PushError::Gap { .. } => SyncErrorClass::Gap,
            PushError::Refused { status: 401, .. } => SyncErrorClass::Unauthorized,
            PushError::Refused { status: 403, .. } => SyncErrorClass::Forbidden,
            PushError::Refused { status: 409, .. } => SyncErrorClass::Conflict,
            PushError::Refused { .. } => SyncErrorClass::Refused,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            SyncErrorClass::Unavailable => "unavailable",
            SyncErrorClass::Gap => "gap",
            SyncErrorClass::Unauthorized => "unauthorized",
            SyncErrorClass::Forbidden => "forbidden",
            SyncErrorClass::Conflict => "conflict",
            SyncErrorClass::Refused => "refused",
            SyncErrorClass::Protocol => "protocol",
            SyncErrorClass::Local => "local",
        }
    }
}

const SCAN_RESULTS: usize = 2 + RejectReason::ALL.len();
const OPS: usize = SyncOp::ALL.len();
const CLASSES: usize = SyncErrorClass::ALL.len();
/// "Never" for the last-success timestamps.
const NEVER: i64 = i64::MIN;

/// The agent's counters (see the module docs); shared by `Arc` between the workflow, the emitter, the sync task and
/// the status endpoint.
#[derive(Debug)]
pub struct AgentMetrics {
    scans: [AtomicU64; SCAN_RESULTS],
    sync_errors: [[AtomicU64; CLASSES]; OPS],
    last_success: [AtomicI64; OPS],
}

impl Default for AgentMetrics {
    fn default() -> Self {
        AgentMetrics {
            scans: std::array::from_fn(|_| AtomicU64::new(0)),
            sync_errors: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            last_success: std::array::from_fn(|_| AtomicI64::new(NEVER)),
        }
    }
}

impl AgentMetrics {
    /// Counts one scan.
    pub fn scan(&self, result: ScanResult) {
        self.scans[result.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Scans counted with `result`.
    pub fn scans(&self, result: ScanResult) -> u64 {
        self.scans[result.index()].load(Ordering::Relaxed)
    }

    /// Counts one failed sync exchange.
    pub fn sync_error(&self, op: SyncOp, class: SyncErrorClass) {
        self.sync_errors[op as usize][class as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Failed exchanges counted for `op` and `class`.
    pub fn sync_errors(&self, op: SyncOp, class: SyncErrorClass) -> u64 {
        self.sync_errors[op as usize][class as usize].load(Ordering::Relaxed)
    }

    /// Records a successful exchange at `unix` seconds.
    pub fn sync_ok(&self, op: SyncOp, unix: i64) {
        self.last_success[op as usize].store(unix, Ordering::Relaxed);
    }

    /// The exposition: these counters and the gauges read now.
    pub fn render(&self, g: &Gauges) -> String {
        let mut out = Encoder::default();
        out.family(
            "dockhand_agent_info",
            "gauge",
            "Always 1; the labels name the device, its site and the dockhand-agent version.",
        );
        out.sample(
            "dockhand_agent_info",
            &[
                ("device", &g.device),
                ("site", &g.site),
                ("version", env!("CARGO_PKG_VERSION")),
            ],
            1,
        );

        out.family(
            "dockhand_agent_scans_total",
            "counter",
            "Scans decided, by result; rejected scans by reason class.",
        );
        out.sample(
            "dockhand_agent_scans_total",
            &[("result", "accepted")],
            self.scans(ScanResult::Accepted),
        );
        out.sample(
            "dockhand_agent_scans_total",
            &[("result", "prompt")],
            self.scans(ScanResult::Prompt),
        );
        for reason in RejectReason::ALL {
            out.sample(
                "dockhand_agent_scans_total",
                &[("result", "rejected"), ("reason", reason.as_str())],
                self.scans(ScanResult::Rejected(reason)),
            );
        }

        if let Some(gate) = &g.gate {
            out.family(
                "dockhand_agent_gate_passes_total",
                "counter",
                "A dock gate's tag passes, by what became of them.",
            );
            for (result, n) in [
                ("receipt", gate.receipts),
                ("ship", gate.ships),
                ("duplicate", gate.duplicates),
                ("unresolved", gate.unresolved),
                ("ignored", gate.ignored),
                ("not_stored", gate.not_stored),
                ("stray", gate.strays),
            ] {
                out.sample("dockhand_agent_gate_passes_total", &[("result", result)], n);
            }
        }

        out.family(
            "dockhand_agent_journal_size_bytes",
            "gauge",
            "Bytes in the journal's segment files.",
        );
        out.sample("dockhand_agent_journal_size_bytes", &[], g.journal_bytes);
        if let Some(quota) = g.journal_quota_bytes {
            out.family(
                "dockhand_agent_journal_quota_bytes",
                "gauge",
                "The configured journal quota (storage.max_journal_bytes).",
            );
            out.sample("dockhand_agent_journal_quota_bytes", &[], quota);
        }
        out.family(
            "dockhand_agent_storage_full",
            "gauge",
            "1 while new scans are refused for lack of storage.",
        );
        out.sample(
            "dockhand_agent_storage_full",
            &[],
            u64::from(g.storage_full),
        );
        out.family(
            "dockhand_agent_sync_backlog_movements",
            "gauge",
            "Movements durable on the device and not yet acknowledged by the server.",
        );
        out.sample("dockhand_agent_sync_backlog_movements", &[], g.backlog);

        out.family(
            "dockhand_agent_sync_errors_total",
            "counter",
            "Failed exchanges with the server, by operation and error class.",
        );
        for op in SyncOp::ALL {
            for class in SyncErrorClass::ALL {
                out.sample(
                    "dockhand_agent_sync_errors_total",
                    &[("op", op.as_str()), ("class", class.as_str())],
                    self.sync_errors(op, class),
                );
            }
        }
        out.family(
            "dockhand_agent_sync_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful exchange, by operation (absent before the first).",
        );
        for op in SyncOp::ALL {
            let at = self.last_success[op as usize].load(Ordering::Relaxed);
            if at != NEVER {
                out.sample_i64(
                    "dockhand_agent_sync_last_success_timestamp_seconds",
                    &[("op", op.as_str())],
                    at,
                );
            }
        }

        if !g.readers.is_empty() {
            let families = [
                (
                    "dockhand_agent_reader_connected",
                    "gauge",
                    "1 while the RFID reader answers.",
                ),
                (
                    "dockhand_agent_reader_reconnects_total",
                    "counter",
                    "RFID reader connections reopened after a loss, and reader resets.",
                ),
                (
                    "dockhand_agent_reader_errors_total",
                    "counter",
                    "Error answers from the RFID reader.",
                ),
            ];
            for (i, (name, kind, help)) in families.iter().enumerate() {
                out.family(name, kind, help);
                for r in &g.readers {
                    let value = match i {
                        0 => u64::from(r.connected),
                        1 => r.reconnects,
                        _ => r.errors,
                    };
                    let source = r.source.to_string();
                    out.sample(name, &[("source", &source), ("kind", &r.kind)], value);
                }
            }
        }
        out.text
    }
}

/// The figures read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// This device.
    pub device: String,
    /// Its site.
    pub site: String,
    /// Bytes in the journal's segment files.
    pub journal_bytes: u64,
    /// The configured journal quota.
    pub journal_quota_bytes: Option<u64>,
    /// Scans are refused for lack of storage.
    pub storage_full: bool,
    /// Movements not yet acknowledged.
    pub backlog: u64,
    /// The RFID readers.
    pub readers: Vec<Reader>,
    /// A dock gate's counters.
    pub gate: Option<GateStatus>,
}

/// One RFID reader's figures.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    /// Index of its `[[sources]]` entry.
    pub source: usize,
    /// Its source kind (`llrp`, `serial-rfid`).
    pub kind: String,
    /// Answering now.
    pub connected: bool,
    /// Connections reopened after a loss, and resets.
    pub reconnects: u64,
    /// Error answers.
    pub errors: u64,
}

/// Writes the text format: `# HELP`, `# TYPE`, then samples, one per line.
#[derive(Debug, Default)]
struct Encoder {
    text: String,
}

impl Encoder {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.line(name, labels, format_args!("{value}"));
    }

    fn sample_i64(&mut self, name: &str, labels: &[(&str, &str)], value: i64) {
        self.line(name, labels, format_args!("{value}"));
    }

    fn line(&mut self, name: &str, labels: &[(&str, &str)], value: std::fmt::Arguments<'_>) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// A label value: backslash, double quote and line feed are escaped (text format 0.0.4).
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text: backslash and line feed are escaped; a double quote is not.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(result: Outcome, scan: Option<&str>) -> DecisionEvent {
        DecisionEvent {
            at: "2026-11-26T10:00:00Z".into(),
            source: 0,
            scan: scan.map(Into::into),
            result,
            message: String::new(),
            seqs: vec![],
            task: None,
        }
    }

    #[test]
    fn scan_result_table() {
        use RejectReason::*;
        let full =
            "storage full: scan not stored (10.0 MiB free, 16.0 MiB needed); sync or free space";
        // (the decision, the scan text, the writer's answer, the class counted)
        type Case<'a> = (Outcome, Option<&'a str>, Result<(), &'a str>, ScanResult);
        let cases: &[Case<'_>] = &[
            (
                Outcome::Accepted,
                Some("]C1..."),
                Ok(()),
                ScanResult::Accepted,
            ),
            (
                Outcome::Prompt,
                Some("DH:PUTAWAY"),
                Ok(()),
                ScanResult::Prompt,
            ),
            (
                Outcome::Rejected,
                Some("]C1..."),
                Ok(()),
                ScanResult::Rejected(Refused),
            ),
            (
                Outcome::Rejected,
                None,
                Ok(()),
                ScanResult::Rejected(Undecodable),
            ),
            (
                Outcome::Accepted,
                Some("]C1..."),
                Err(full),
                ScanResult::Rejected(StorageFull),
            ),
            (
                Outcome::Prompt,
                Some("LOC:A"),
                Err("storage error: scan not stored (EIO); check the disk"),
                ScanResult::Rejected(NotStored),
            ),
            (
                Outcome::Accepted,
                Some("]C1..."),
                Err("journal failed, scan not stored: x"),
                ScanResult::Rejected(NotStored),
            ),
        ];
        for (outcome, scan, durable, want) in cases {
            assert_eq!(
                ScanResult::of(&event(*outcome, *scan), *durable),
                *want,
                "{outcome:?} {scan:?} {durable:?}"
            );
        }
    }

    #[test]
    fn sync_error_class_table() {
        let refused = |status| PushError::Refused {
            status,
            message: String::new(),
        };
        let cases = [
            (PushError::Unavailable("timeout".into()), "unavailable"),
            (PushError::Gap { expected_seq: 3 }, "gap"),
            (refused(401), "unauthorized"),
            (refused(403), "forbidden"),
            (refused(409), "conflict"),
            (refused(400), "refused"),
            (refused(413), "refused"),
        ];
        for (e, want) in cases {
            assert_eq!(SyncErrorClass::of(&e).as_str(), want, "{e:?}");
        }
    }

    #[test]
    fn exposition() {
        let m = AgentMetrics::default();
        m.scan(ScanResult::Accepted);
        m.scan(ScanResult::Accepted);
        m.scan(ScanResult::Rejected(RejectReason::Undecodable));
        m.sync_error(SyncOp::Push, SyncErrorClass::Unavailable);
        m.sync_ok(SyncOp::Pull, 1_795_687_200);
        let gauges = Gauges {
            device: "hh-\"01\"".into(),
            site: "WH1".into(),
            journal_bytes: 4096,
            journal_quota_bytes: None,
            storage_full: true,
            backlog: 12,
            readers: vec![Reader {
                source: 1,
                kind: "llrp".into(),
                connected: true,
                reconnects: 3,
                errors: 0,
            }],
            gate: None,
        };
        let text = m.render(&gauges);
        let want = [
            "dockhand_agent_info{device=\"hh-\\\"01\\\"\",site=\"WH1\",version=\"",
            "dockhand_agent_scans_total{result=\"accepted\"} 2\n",
            "dockhand_agent_scans_total{result=\"prompt\"} 0\n",
            "dockhand_agent_scans_total{result=\"rejected\",reason=\"undecodable\"} 1\n",
            "dockhand_agent_scans_total{result=\"rejected\",reason=\"refused\"} 0\n",
            "dockhand_agent_journal_size_bytes 4096\n",
            "dockhand_agent_storage_full 1\n",
            "dockhand_agent_sync_backlog_movements 12\n",
            "dockhand_agent_sync_errors_total{op=\"push\",class=\"unavailable\"} 1\n",
            "dockhand_agent_sync_errors_total{op=\"stock\",class=\"local\"} 0\n",
            "dockhand_agent_sync_last_success_timestamp_seconds{op=\"pull\"} 1795687200\n",
            "dockhand_agent_reader_connected{source=\"1\",kind=\"llrp\"} 1\n",
            "dockhand_agent_reader_reconnects_total{source=\"1\",kind=\"llrp\"} 3\n",
        ];
        for line in want {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        // No success yet: no timestamp rather than a fake 0; no quota, no gate: no family.
        for absent in [
            "last_success_timestamp_seconds{op=\"push\"}",
            "dockhand_agent_journal_quota_bytes",
            "dockhand_agent_gate_passes_total",
        ] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
        // Every sample belongs to the family declared just before it.
        let mut family = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap();
            } else if !line.starts_with('#') {
                assert_eq!(line.split(['{', ' ']).next(), Some(family), "{line}");
            }
        }
    }

    #[test]
    fn escaping_table() {
        let cases: &[(&str, &str, &str)] = &[
            ("hh-01", "hh-01", "hh-01"),
            ("a\\b", "a\\\\b", "a\\\\b"),
            ("\"q\"", "\\\"q\\\"", "\"q\""),
            ("a\nb", "a\\nb", "a\\nb"),
        ];
        for (raw, label, help) in cases {
            assert_eq!(escape_label(raw), *label, "{raw:?}");
            assert_eq!(escape_help(raw), *help, "{raw:?}");
        }
    }
}
