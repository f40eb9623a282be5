//! What `GET /metrics` reports, in the Prometheus text exposition format, version 0.0.4.
//!
//! Two kinds of figures:
//!
//! - **Counters and the push-latency histogram** ([`ServerMetrics`], one per process, in [`AppState`](crate::state::AppState)): updated by
//!   the push handler and the middleware around it. Each server node counts what *it* served: with several nodes
//!   on one PostgreSQL database, scrape every node and `sum` over them.
//! - **Gauges read at scrape time** ([`Scrape`]): devices online and their backlog (from the device registry),
//!   open discrepancies and the store's size (from the store). With PostgreSQL every node reads the same database,
//!   so these are the same on every node: aggregate them with `max`, not `sum`.
//!
//! ```text
//! dockhand_build_info{version}                                  gauge      always 1
//! dockhand_movements_ingested_total{site,kind,result}           counter    result: applied | duplicate | conflict
//!                                                                          | gap | rejected | failed
//! dockhand_push_requests_total{status}                          counter    every POST /v1/sync/push, by HTTP status
//! dockhand_push_duration_seconds                                histogram  request in to response out
//! dockhand_devices_enrolled{site}                               gauge      enrolled, not revoked
//! dockhand_devices_online{site}                                 gauge      of those, seen within offline_after
//! dockhand_device_backlog_movements{device,site}                gauge      as the device last reported it
//! dockhand_device_last_seen_timestamp_seconds{device,site}      gauge      unix time of its last push or pull
//! dockhand_discrepancies_open{site,kind}                        gauge
//! dockhand_store_size_bytes                                     gauge      sled's files / pg_database_size
//! dockhand_metrics_source_up{source}                            gauge      0: reading `store` or `devices` failed
//!                                                                          for this scrape; its gauges are missing
//! ```
//!
//! Label cardinality is bounded: sites and devices by enrollment (revoked devices are left out), kinds and results
//! by their enums, statuses by what the handler can answer.
//!
//! # Why hand-rolled
//!
//! `prometheus-client`, the official Rust client, encodes OpenMetrics (counter families named without `_total`,
//! `# EOF`), not the 0.0.4 text format asked for here, and its registry wants every gauge registered up front,
//! while ours are per-device figures read from the registry at scrape time. What we need is a few counters, one
//! histogram and a text encoder with correct escaping: about as much code as the glue around a library would be,
//! with no dependency. The escaping rules are those of the format's specification (label values: `\`, `"` and
//! newline; HELP text: `\` and newline) and are tested below.
//!
//! # Cost on the push path
//!
//! One uncontended mutex per push for the movement counters and one for the status counter, a few atomic adds for
//! the histogram: next to the push's `fdatasync` (milliseconds) this is noise. Telling applied movements from
//! duplicates needs the device's high-water mark as the batch found it, which the store answers with the outcome
//! (`Store::push_reporting_mark`, read inside the push's own transaction: no extra lookup, and exact even when
//! two nodes receive the same batch at the same moment).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use dockhand_protocol::sync::{Movement, MovementKind};
use time::OffsetDateTime;

use crate::devices::DeviceRecord;
use crate::store::{DiscrepancyCount, PushOutcome};

/// The `Content-Type` of the text exposition format this module writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the push-latency buckets: a push is one transaction plus an fsync, a few
/// milliseconds on a healthy disk; the upper buckets catch a disk or database in trouble before the agents'
/// 30-second timeout does.
pub const PUSH_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What became of a pushed movement (`result` of `dockhand_movements_ingested_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ingest {
    /// Stored and applied to stock now.
    Applied,
    /// Already stored with equal content: acknowledged again, not applied again (a resend after a lost answer).
    Duplicate,
    /// Its batch was refused (409 `conflict`): a stored movement of the batch differs from the one sent.
    Conflict,
    /// Its batch was refused (409 `seq_gap`): it starts past the device's high-water mark + 1.
    Gap,
    /// Its batch was refused before the store saw it (400 invalid, 403 another device's movements).
    Rejected,
    /// The store failed (503); the agent sends it again.
    Failed,
}

impl Ingest {
    const ALL: [Ingest; 6] = [
        Ingest::Applied,
        Ingest::Duplicate,
        Ingest::Conflict,
        Ingest::Gap,
        Ingest::Rejected,
        Ingest::Failed,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Ingest::Applied => "applied",
            Ingest::Duplicate => "duplicate",
            Ingest::Conflict => "conflict",
            Ingest::Gap => "gap",
            Ingest::Rejected => "rejected",
            Ingest::Failed => "failed",
        }
    }
}

const KINDS: [MovementKind; 7] = [
    MovementKind::Receive,
    MovementKind::Putaway,
    MovementKind::Move,
    MovementKind::Pick,
    MovementKind::Ship,
    MovementKind::Adjust,
    MovementKind::Count,
];

fn kind_index(kind: MovementKind) -> usize {
    match kind {
        MovementKind::Receive => 0,
        MovementKind::Putaway => 1,
        MovementKind::Move => 2,
        MovementKind::Pick => 3,
        MovementKind::Ship => 4,
        MovementKind::Adjust => 5,
        MovementKind::Count => 6,
    }
}

type Counts = [[u64; Ingest::ALL.len()]; KINDS.len()];

/// The movements of one push counted by kind and result, gathered before the shared counters are touched so a
/// batch of 500 costs one lock, not 500.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    counts: Counts,
}

impl Tally {
    /// Every movement of `movements` with the same `result` (a refused or failed batch).
    pub fn uniform(movements: &[Movement], result: Ingest) -> Self {
        let mut t = Tally::default();
        for m in movements {
            t.add(m.kind, result);
        }
        t
    }

    /// A batch the store answered `outcome` for, the device's high-water mark having been `before`: on `Acked`,
    /// seqs up to `before` were duplicates and the rest applied.
    pub fn of_push(movements: &[Movement], before: u64, outcome: PushOutcome) -> Self {
        let mut t = Tally::default();
        for m in movements {
            let result = match outcome {
                PushOutcome::Acked { .. } if m.seq <= before => Ingest::Duplicate,
                PushOutcome::Acked { .. } => Ingest::Applied,
                PushOutcome::Gap { .. } => Ingest::Gap,
                PushOutcome::Conflict { .. } => Ingest::Conflict,
            };
            t.add(m.kind, result);
        }
        t
    }

    fn add(&mut self, kind: MovementKind, result: Ingest) {
        self.counts[kind_index(kind)][result as usize] += 1;
    }

    /// How many movements of `kind` ended as `result`.
    pub fn get(&self, kind: MovementKind, result: Ingest) -> u64 {
        self.counts[kind_index(kind)][result as usize]
    }
}

/// A histogram with fixed buckets, updated with atomics only.
#[derive(Debug)]
struct Histogram {
    /// Observations per bucket (not cumulative; the encoder sums them), the last one past every bound (`+Inf`).
    buckets: [AtomicU64; PUSH_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = PUSH_BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(PUSH_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// The counters of one server process (see the module docs). Lives in [`AppState`](crate::state::AppState); tests
/// read it through
/// [`ServerMetrics::render`] or the getters.
#[derive(Debug, Default)]
pub struct ServerMetrics {
    movements: Mutex<HashMap<String, Counts>>,
    push_requests: Mutex<BTreeMap<u16, u64>>,
    push_seconds: Histogram,
}

/// A counter mutex is only ever held for a few additions, which cannot panic; a poisoned one still holds valid
/// counts.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ServerMetrics {
    /// Adds one push's movements, all of the device's `site`.
    pub fn ingested(&self, site: &str, tally: &Tally) {
        if tally.counts.iter().flatten().all(|n| *n == 0) {
            return;
        }
        let mut by_site = lock(&self.movements);
        let counts = match by_site.get_mut(site) {
            Some(c) => c,
            None => by_site.entry(site.to_string()).or_default(),
        };
        for (row, add) in counts.iter_mut().zip(&tally.counts) {
            for (n, a) in row.iter_mut().zip(add) {
                *n += a;
            }
        }
    }

    /// Records one answered `POST /v1/sync/push`.
    pub fn push_answered(&self, status: u16, elapsed: Duration) {
        *lock(&self.push_requests).entry(status).or_default() += 1;
        self.push_seconds.observe(elapsed);
    }

    /// `dockhand_movements_ingested_total` for one label set.
    pub fn movements(&self, site: &str, kind: MovementKind, result: Ingest) -> u64 {
        lock(&self.movements)
            .get(site)
            .map_or(0, |c| c[kind_index(kind)][result as usize])
    }

    /// `dockhand_push_requests_total{status}`.
    pub fn push_requests(&self, status: u16) -> u64 {
        lock(&self.push_requests).get(&status).copied().unwrap_or(0)
    }

    /// The whole exposition: these counters and the gauges of `scrape`.
    pub fn render(&self, scrape: &Scrape) -> String {
        let mut out = Encoder::default();
        out.family(
            "dockhand_build_info",
            "gauge",
            "Always 1; the label says which dockhand-server version answers.",
        );
        out.sample(
            "dockhand_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );

        out.family(
            "dockhand_movements_ingested_total",
            "counter",
            "Movements received in pushes by this node, by the device's site, the movement's kind and what \
             became of it (applied, duplicate, conflict, gap, rejected, failed).",
        );
        {
            let by_site = lock(&self.movements);
            let mut sites: Vec<&String> = by_site.keys().collect();
            sites.sort();
            for site in sites {
                for (kind, row) in KINDS.iter().zip(&by_site[site]) {
                    for (result, n) in Ingest::ALL.iter().zip(row) {
                        if *n > 0 {
                            out.sample(
                                "dockhand_movements_ingested_total",
                                &[
                                    ("site", site),
                                    ("kind", kind.as_str()),
                                    ("result", result.as_str()),
                                ],
                                *n,
                            );
                        }
                    }
                }
            }
        }

        out.family(
            "dockhand_push_requests_total",
            "counter",
            "POST /v1/sync/push requests answered by this node, by HTTP status.",
        );
        for (status, n) in lock(&self.push_requests).iter() {
            out.sample(
                "dockhand_push_requests_total",
                &[("status", &status.to_string())],
                *n,
            );
        }

        out.family(
            "dockhand_push_duration_seconds",
            "histogram",
            "Time from a POST /v1/sync/push arriving to its answer, on this node.",
        );
        let mut cumulative = 0;
        for (i, bucket) in self.push_seconds.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = PUSH_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            out.sample(
                "dockhand_push_duration_seconds_bucket",
                &[("le", &le)],
                cumulative,
            );
        }
        let sum = Duration::from_nanos(self.push_seconds.sum_nanos.load(Ordering::Relaxed));
        out.sample_f64("dockhand_push_duration_seconds_sum", &[], sum.as_secs_f64());
        out.sample("dockhand_push_duration_seconds_count", &[], cumulative);

        scrape.render(&mut out);
        out.text
    }
}

/// The gauges read for one scrape; `None` where the source could not be read (the scrape still answers).
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The time the scrape was taken.
    pub now: OffsetDateTime,
    /// A device silent for longer is offline.
    pub offline_after: Duration,
    /// The device registry.
    pub devices: Option<Vec<DeviceRecord>>,
    /// Open discrepancies per site and kind.
    pub discrepancies: Option<Vec<DiscrepancyCount>>,
    /// The store's size on disk.
    pub store_bytes: Option<u64>,
}

impl Scrape {
    fn render(&self, out: &mut Encoder) {
        if let Some(devices) = &self.devices {
            let active: Vec<&DeviceRecord> =
                devices.iter().filter(|d| d.revoked_at.is_none()).collect();
            let mut per_site: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
            for d in &active {
                let (enrolled, online) = per_site.entry(&d.site).or_default();
                *enrolled += 1;
                if self.is_online(d) {
                    *online += 1;
                }
            }
            out.family(
                "dockhand_devices_enrolled",
                "gauge",
                "Devices enrolled and not revoked, by site.",
            );
            for (site, (enrolled, _)) in &per_site {
                out.sample("dockhand_devices_enrolled", &[("site", site)], *enrolled);
            }
            out.family(
                "dockhand_devices_online",
                "gauge",
                "Devices that pushed or pulled within the server's device_offline_after_secs, by site.",
            );
            for (site, (_, online)) in &per_site {
                out.sample("dockhand_devices_online", &[("site", site)], *online);
            }
            let mut active = active;
            active.sort_by(|a, b| a.device_id.cmp(&b.device_id));
            out.family(
                "dockhand_device_backlog_movements",
                "gauge",
                "Movements a device held unacknowledged when it last pushed, as it reported them.",
            );
            for d in active.iter().filter(|d| d.backlog.is_some()) {
                let labels = [("device", d.device_id.as_str()), ("site", d.site.as_str())];
                out.sample(
                    "dockhand_device_backlog_movements",
                    &labels,
                    d.backlog.unwrap_or(0),
                );
            }
            out.family(
                "dockhand_device_last_seen_timestamp_seconds",
                "gauge",
                "Unix time of a device's last authenticated push or pull.",
            );
            for d in &active {
                if let Some(seen) = d.last_seen {
                    let labels = [("device", d.device_id.as_str()), ("site", d.site.as_str())];
                    out.sample_i64(
                        "dockhand_device_last_seen_timestamp_seconds",
                        &labels,
                        seen.unix_timestamp(),
                    );
                }
            }
        }
        if let Some(counts) = &self.discrepancies {
            let mut rows: Vec<(&str, String, u64)> = counts
                .iter()
                .map(|c| (c.site.as_str(), kind_name(c), c.open))
                .collect();
            rows.sort();
            out.family(
                "dockhand_discrepancies_open",
                "gauge",
                "Discrepancies waiting for the office, by site and kind.",
            );
            for (site, kind, open) in &rows {
                out.sample(
                    "dockhand_discrepancies_open",
                    &[("site", site), ("kind", kind)],
                    *open,
                );
            }
        }
        if let Some(bytes) = self.store_bytes {
            out.family(
                "dockhand_store_size_bytes",
                "gauge",
                "Bytes the store occupies on disk (sled's files, or PostgreSQL's pg_database_size).",
            );
            out.sample("dockhand_store_size_bytes", &[], bytes);
        }
        out.family(
            "dockhand_metrics_source_up",
            "gauge",
            "1 when this scrape could read the source, 0 when reading it failed and its gauges are missing.",
        );
        let devices_up = u64::from(self.devices.is_some());
        let store_up = u64::from(self.discrepancies.is_some() && self.store_bytes.is_some());
        out.sample(
            "dockhand_metrics_source_up",
            &[("source", "devices")],
            devices_up,
        );
        out.sample(
            "dockhand_metrics_source_up",
            &[("source", "store")],
            store_up,
        );
    }

    fn is_online(&self, d: &DeviceRecord) -> bool {
        d.last_seen
            .is_some_and(|seen| (self.now - seen).unsigned_abs() <= self.offline_after)
    }
}

/// The wire name of a discrepancy kind (`negative_stock`), as the API spells it.
fn kind_name(c: &DiscrepancyCount) -> String {
    match serde_json::to_value(c.kind) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{:?}", c.kind),
    }
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

    fn sample_f64(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        // Rust prints f64 without exponent, which the format accepts; a sum of durations is never NaN or infinite.
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
    use dockhand_protocol::sync::MovementSource;
    use time::macros::datetime;

    use crate::store::DiscrepancyKind;

    #[test]
    fn escaping_table() {
        let cases: &[(&str, &str, &str)] = &[
            ("WH1", "WH1", "WH1"),
            ("a\\b", "a\\\\b", "a\\\\b"),
            ("say \"hi\"", "say \\\"hi\\\"", "say \"hi\""),
            ("two\nlines", "two\\nlines", "two\\nlines"),
            ("Łódź ✓", "Łódź ✓", "Łódź ✓"),
        ];
        for (raw, label, help) in cases {
            assert_eq!(escape_label(raw), *label, "label {raw:?}");
            assert_eq!(escape_help(raw), *help, "help {raw:?}");
        }
    }

    fn mv(seq: u64, kind: MovementKind) -> Movement {
        Movement {
            device_id: "hh-01".into(),
            seq,
            at: datetime!(2026-11-26 10:00 UTC),
            kind,
            gtin: "09506000134352".into(),
            lot: None,
            expiry: None,
            serials: vec![],
            qty: 1,
            from_location: None,
            to_location: Some("A".into()),
            sscc: None,
            reference: None,
            operator: None,
            source: MovementSource::Manual,
        }
    }

    #[test]
    fn tally_of_push_table() {
        use MovementKind::{Pick, Receive};
        let batch = [mv(4, Receive), mv(5, Receive), mv(6, Pick), mv(7, Receive)];
        // (outcome, high-water before, receive applied, receive duplicate, pick applied, pick duplicate, refused as)
        let acked = PushOutcome::Acked { acked_through: 7 };
        let cases: &[(PushOutcome, u64, [u64; 4], Option<Ingest>)] = &[
            (acked, 3, [3, 0, 1, 0], None),
            (acked, 5, [1, 2, 1, 0], None),
            (acked, 9, [0, 3, 0, 1], None),
            (
                PushOutcome::Gap { expected_seq: 2 },
                1,
                [0; 4],
                Some(Ingest::Gap),
            ),
            (
                PushOutcome::Conflict { seq: 5 },
                7,
                [0; 4],
                Some(Ingest::Conflict),
            ),
        ];
        for (outcome, before, [ra, rd, pa, pd], refused) in cases {
            let t = Tally::of_push(&batch, *before, *outcome);
            let got = [
                t.get(Receive, Ingest::Applied),
                t.get(Receive, Ingest::Duplicate),
                t.get(Pick, Ingest::Applied),
                t.get(Pick, Ingest::Duplicate),
            ];
            assert_eq!(got, [*ra, *rd, *pa, *pd], "{outcome:?} after {before}");
            if let Some(r) = refused {
                assert_eq!((t.get(Receive, *r), t.get(Pick, *r)), (3, 1), "{outcome:?}");
            }
        }
        let rejected = Tally::uniform(&batch, Ingest::Rejected);
        assert_eq!(rejected.get(Receive, Ingest::Rejected), 3);
        assert_eq!(rejected.get(Pick, Ingest::Rejected), 1);
    }

    #[test]
    fn histogram_buckets_table() {
        // (elapsed, the first bucket bound that counts it; None = only +Inf)
        let cases: &[(Duration, Option<f64>)] = &[
            (Duration::from_micros(200), Some(0.001)),
            (Duration::from_millis(1), Some(0.001)),
            (Duration::from_micros(1001), Some(0.0025)),
            (Duration::from_millis(30), Some(0.05)),
            (Duration::from_secs(10), Some(10.0)),
            (Duration::from_secs(11), None),
        ];
        for (elapsed, first) in cases {
            let m = ServerMetrics::default();
            m.push_answered(200, *elapsed);
            let text = m.render(&empty_scrape());
            for (i, bound) in PUSH_BUCKETS.iter().enumerate() {
                let want = u64::from(first.is_some_and(|f| *bound >= f));
                let line =
                    format!("dockhand_push_duration_seconds_bucket{{le=\"{bound}\"}} {want}\n");
                assert!(text.contains(&line), "{elapsed:?} bucket {i}: {text}");
            }
            assert!(text.contains("dockhand_push_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
            assert!(text.contains("dockhand_push_duration_seconds_count 1\n"));
            let sum = format!(
                "dockhand_push_duration_seconds_sum {}\n",
                elapsed.as_secs_f64()
            );
            assert!(text.contains(&sum), "{elapsed:?}: {text}");
        }
    }

    fn empty_scrape() -> Scrape {
        Scrape {
            now: datetime!(2026-11-26 10:00 UTC),
            offline_after: Duration::from_secs(120),
            devices: None,
            discrepancies: None,
            store_bytes: None,
        }
    }

    /// A registry record as the file registry reads it (through serde, so fields added later take their default).
    fn device(id: &str, site: &str, seen_secs_ago: Option<i64>, revoked: bool) -> DeviceRecord {
        let now = datetime!(2026-11-26 10:00 UTC);
        let rfc = |t: OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let mut record = serde_json::json!({
            "device_id": id, "site": site, "token_sha256": "00".repeat(32),
            "enrolled_at": rfc(now - time::Duration::days(1)),
        });
        if revoked {
            record["revoked_at"] = rfc(now - time::Duration::hours(1)).into();
        }
        if let Some(s) = seen_secs_ago {
            record["last_seen"] = rfc(now - time::Duration::seconds(s)).into();
            record["backlog"] = s.into();
        }
        serde_json::from_value(record).unwrap()
    }

    #[test]
    fn scrape_gauges() {
        let scrape = Scrape {
            devices: Some(vec![
                device("hh-01", "WH1", Some(5), false),
                device("hh-02", "WH1", Some(121), false),
                device("hh-03", "WH1", None, false),
                device("rf-\"x\"", "WH2", Some(120), false),
                device("old", "WH3", Some(1), true),
            ]),
            discrepancies: Some(vec![
                DiscrepancyCount {
                    site: "WH2".into(),
                    kind: DiscrepancyKind::AsnShort,
                    open: 2,
                },
                DiscrepancyCount {
                    site: "WH1".into(),
                    kind: DiscrepancyKind::NegativeStock,
                    open: 1,
                },
            ]),
            store_bytes: Some(4096),
            ..empty_scrape()
        };
        let text = ServerMetrics::default().render(&scrape);
        let seen = (scrape.now - time::Duration::seconds(5)).unix_timestamp();
        let last_seen = format!(
            "dockhand_device_last_seen_timestamp_seconds{{device=\"hh-01\",site=\"WH1\"}} {seen}"
        );
        let want = [
            "dockhand_devices_enrolled{site=\"WH1\"} 3",
            "dockhand_devices_enrolled{site=\"WH2\"} 1",
            "dockhand_devices_online{site=\"WH1\"} 1",
            // Exactly offline_after ago still counts as online.
            "dockhand_devices_online{site=\"WH2\"} 1",
            "dockhand_device_backlog_movements{device=\"hh-02\",site=\"WH1\"} 121",
            "dockhand_device_backlog_movements{device=\"rf-\\\"x\\\"\",site=\"WH2\"} 120",
            last_seen.as_str(),
            "dockhand_discrepancies_open{site=\"WH1\",kind=\"negative_stock\"} 1\n\
             dockhand_discrepancies_open{site=\"WH2\",kind=\"asn_short\"} 2",
            "dockhand_store_size_bytes 4096",
            "dockhand_metrics_source_up{source=\"devices\"} 1",
            "dockhand_metrics_source_up{source=\"store\"} 1",
        ];
        for line in want {
            assert!(
                text.contains(&format!("{line}\n")),
                "missing {line:?} in\n{text}"
            );
        }
        // Revoked devices and a device that never reported a backlog are left out.
        assert!(!text.contains("old"), "{text}");
        assert!(!text.contains("dockhand_device_backlog_movements{device=\"hh-03\""));

        let down = ServerMetrics::default().render(&empty_scrape());
        assert!(down.contains("dockhand_metrics_source_up{source=\"store\"} 0\n"));
        assert!(!down.contains("dockhand_store_size_bytes"), "{down}");
    }

    #[test]
    fn every_sample_belongs_to_a_declared_family() {
        let m = ServerMetrics::default();
        m.ingested(
            "WH1",
            &Tally::uniform(&[mv(1, MovementKind::Count)], Ingest::Applied),
        );
        m.push_answered(409, Duration::from_millis(3));
        let text = m.render(&empty_scrape());
        let mut declared: Vec<&str> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                assert!(!declared.contains(&name), "{name} declared twice");
                declared.push(name);
            } else if !line.starts_with("# HELP ") {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = declared.last().copied().unwrap_or("");
                let ok = name == family
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name.strip_suffix(s) == Some(family));
                assert!(ok, "{name} outside its family {family}");
            }
        }
        assert!(text.contains(
            "dockhand_movements_ingested_total{site=\"WH1\",kind=\"count\",result=\"applied\"} 1\n"
        ));
        assert!(text.contains("dockhand_push_requests_total{status=\"409\"} 1\n"));
    }
}
