//! `dockhand-agent`: scanners in, durable movements out, synced to the server.
//!
//! ```text
//! serial/USB thread ──ScanEvent──► workflow task ──records──► journal thread (group commit, fdatasync)
//!   (framing, decode)           (rules, seqs)                  │ durable
//!        ▲                                                     ├─► local view (sled), backlog ──► sync task ──► server
//!        └──── feedback thread ◄── decision + "durable" ◄──────┘
//!               (good_read only after durable)
//! ```
//!
//! [`run`] wires these together; each piece lives in its own module. Shutdown is a future passed in. Each decision
//! also goes, once its fate is known, to the loopback status endpoint ([`status`]) that `dockhand-agent tui` shows.
//!
//! A dock gate (`workflow.mode = "gate"`) adds RFID reader threads ([`rfid_source`]) feeding one gate task
//! ([`gate`]) that smooths the reads into passes and records their movements through the same workflow seqs and
//! journal writer; barcode sources keep working beside it.

pub mod clock;
pub mod config;
pub mod gate;
pub mod housekeeping;
pub mod journal;
pub mod metrics;
pub mod rfid_source;
pub mod scanstats;
pub mod sitestock;
pub mod source;
pub mod status;
pub mod storecheck;
pub mod sync;
pub mod tui;
pub mod usb;
pub mod view;
pub mod workflow;
pub mod writer;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, Notify};

use dockhand_protocol::rfid::smooth::Smoother;
use dockhand_protocol::rfid::TagRead;

use crate::config::Config;
use crate::gate::{AuditRequest, Clock, GateStatus};
use crate::journal::{Journal, Record};
use crate::source::{Feedback, ScanEvent, SourceStatus};
use crate::sync::{HttpTransport, SyncSettings, SyncStatus};
use crate::view::{LocalView, StockRow};
use crate::workflow::{State, Workflow};
use crate::writer::{Backlog, Writer, WriterStats};

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The data directory is unusable.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The journal failed to open or write.
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    /// The local view failed to open.
    #[error(transparent)]
    View(#[from] view::ViewError),
    /// The sync client could not be set up.
    #[error("sync setup: {0}")]
    Sync(String),
    /// The journal failed while running; scans after the failure were not confirmed.
    #[error("journal failed while running: {0}")]
    JournalFailed(String),
    /// The gate's read smoothing could not be set up.
    #[error("gate: {0}")]
    Gate(String),
}

/// The status file written into the data directory every half second, read by `dockhand-agent status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusFile {
    /// This device.
    pub device_id: String,
    /// Its site.
    pub site: String,
    /// RFC 3339 time of writing.
    pub updated: Option<String>,
    /// The last durable movement seq.
    pub durable_seq: u64,
    /// Movements durable but not yet acknowledged by the server.
    pub backlog: usize,
    /// Sync state.
    pub sync: SyncStatus,
    /// Source states.
    pub sources: Vec<SourceStatus>,
    /// The workflow mode.
    pub workflow: State,
    /// Local stock as this device recorded it.
    pub stock: Vec<StockRow>,
    /// Set when the journal failed.
    pub fatal: Option<String>,
    /// True while new scans are refused for lack of storage.
    pub storage_full: bool,
    /// Journal size and, while full, the figures.
    pub storage: StorageStatus,
    /// A dock gate's counters ([`gate::GateStatus`]); absent on handhelds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateStatus>,
}

/// The storage part of the status file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StorageStatus {
    /// Bytes in the journal's segment files.
    pub journal_bytes: u64,
    /// The configured journal quota.
    pub max_journal_bytes: Option<u64>,
    /// The storage-full episode in progress, with its figures.
    pub full: Option<writer::StorageFull>,
}

/// Changes per pull page (the server's default page size).
const PULL_LIMIT: usize = 1000;

/// File name of the status file inside `data_dir`.
pub const STATUS_FILE: &str = "status.json";

/// Reads the agent's status file.
pub fn read_status(data_dir: &Path) -> std::io::Result<serde_json::Value> {
    let text = std::fs::read(data_dir.join(STATUS_FILE))?;
    serde_json::from_slice(&text).map_err(std::io::Error::other)
}

/// Runs the agent until `shutdown` resolves or the journal fails.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
    // The gate's smoother first: a bad [gate] (the config check should have caught it) fails before anything runs.
    let smoother = match cfg.gate.as_ref().filter(|_| cfg.workflow.is_gate()) {
        Some(g) => {
            Some(Smoother::new(g.smooth_config()).map_err(|e| AgentError::Gate(e.to_string()))?)
        }
        None => None,
    };
    let data = cfg.data_dir.clone();
    std::fs::create_dir_all(&data).map_err(|source| AgentError::DataDir {
        path: data.clone(),
        source,
    })?;
    // Before anyone holds the store: rebuild it if it has grown far beyond its data. Never fatal.
    if let Err(e) = housekeeping::bound_sled(&data.join("sled")) {
        tracing::error!(error = %e, "housekeeping: sled store not compacted; starting with it as it is");
    }
    // Open the view first: sled's lock keeps a second agent off this data directory before it touches the journal.
    let (view, moved) = LocalView::open(&data.join("sled"))?;
    let (mut journal, rec) = Journal::open(&data.join("journal"), journal::DEFAULT_SEGMENT_BYTES)?;
    journal.set_limits(journal::Limits {
        max_bytes: cfg.storage.max_journal_bytes,
        min_free_bytes: cfg.storage.min_free_bytes,
    });
    if !rec.damaged.is_empty() {
        tracing::error!(files = ?rec.damaged, "journal damage: segments set aside in journal/damaged; \
            movements after the damage were not recovered");
    }
    let applied = view.applied_seq()?;
    if moved.is_some() || applied < rec.movements.first().map_or(0, |m| m.seq.saturating_sub(1)) {
        tracing::warn!(
            applied,
            acked = rec.acked,
            "local stock view is behind the journal; movements already at the server are not in it"
        );
    }
    view.apply(&rec.movements)?;
    if cfg.workflow.is_gate() {
        let before = clock::now() - time::Duration::days(gate::MEMORY_DAYS);
        match view.prune_gate_units(before) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                units = n,
                days = gate::MEMORY_DAYS,
                "gate: forgot units not seen for long"
            ),
            Err(e) => tracing::warn!(error = %e, "gate: old units not pruned"),
        }
    }
    let state = rec
        .state
        .as_deref()
        .map(Workflow::decode_state)
        .unwrap_or_default();
    let last_seq = rec.last_seq();
    let backlog: Backlog = Arc::new(Mutex::new(writer::BacklogState::new(
        data.join("journal"),
        rec.acked,
        last_seq,
        rec.movements.iter().filter(|m| m.seq > rec.acked).cloned(),
    )));
    tracing::info!(device = %cfg.device_id, last_seq, acked = rec.acked,
        backlog = backlog.lock().map(|b| b.pending()).unwrap_or(0), mode = ?state.mode, "agent starting");

    let new_data = Arc::new(Notify::new());
    let fatal = Arc::new(Notify::new());
    let stats = Arc::new(Mutex::new(WriterStats {
        durable_seq: last_seq,
        acked: rec.acked,
        ..WriterStats::default()
    }));
    let (writer, writer_thread) = Writer::spawn(
        journal,
        view.clone(),
        backlog.clone(),
        new_data.clone(),
        stats.clone(),
        fatal.clone(),
    );

    let stop_sources = Arc::new(AtomicBool::new(false));
    let (events_tx, mut events_rx) = mpsc::channel::<(usize, ScanEvent)>(1024);
    // Every RFID reader feeds the one gate task; reads are small and come in bursts.
    let (reads_tx, reads_rx) = mpsc::channel::<TagRead>(4096);
    let clock = Clock::new();
    let mut source_status = Vec::new();
    let mut source_threads = Vec::new();
    for (index, src) in cfg.sources.iter().enumerate() {
        let st = Arc::new(Mutex::new(SourceStatus::default()));
        source_status.push(st.clone());
        if src.is_rfid() {
            let link = rfid_source::ReaderLink {
                reads: reads_tx.clone(),
                status: st,
                stop: stop_sources.clone(),
                clock,
            };
            source_threads.push(rfid_source::spawn(src.clone(), link));
            continue;
        }
        let (cfg, tx, stop) = (
            src.clone(),
            tag_source(index, &events_tx),
            stop_sources.clone(),
        );
        // Kinds are validated at config load; each kind owns its device thread(s).
        source_threads.push(match src.kind.as_str() {
            config::KIND_USB_HID_POS | config::KIND_USB_KEYBOARD => {
                usb::spawn_usb(cfg, tx, st, stop)
            }
            _ => source::spawn_serial(cfg, tx, st, stop),
        });
    }
    drop(events_tx);
    drop(reads_tx);

    // Counters for `GET /metrics`, shared by the workflow, the emitter, the sync task and the status endpoint.
    let metrics = Arc::new(metrics::AgentMetrics::default());
    let sync_status = Arc::new(Mutex::new(SyncStatus {
        acked_through: rec.acked,
        pull_cursor: view.pull_cursor()?,
        master: view.master_counts(),
        ..SyncStatus::default()
    }));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(server) = &cfg.server {
        let token = std::fs::read_to_string(&server.token_file).map_err(|e| {
            AgentError::Sync(format!("token file {}: {e}", server.token_file.display()))
        })?;
        let ca = match &server.ca_file {
            Some(p) => Some(
                std::fs::read(p)
                    .map_err(|e| AgentError::Sync(format!("CA file {}: {e}", p.display())))?,
            ),
            None => None,
        };
        let transport =
            HttpTransport::new(&server.url, ca.as_deref(), &token).map_err(AgentError::Sync)?;
        let settings = SyncSettings {
            device_id: cfg.device_id.clone(),
            interval: Duration::from_millis(server.sync_interval_ms),
            max_backoff: Duration::from_millis(server.max_backoff_ms),
            batch_size: server.batch_size,
            pull_limit: PULL_LIMIT,
            stock_refresh: Duration::from_millis(server.stock_refresh_ms),
        };
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(sync::run(
            transport,
            settings,
            backlog.clone(),
            writer.clone(),
            view.clone(),
            new_data.clone(),
            sync_status.clone(),
            metrics.clone(),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        )));
    } else {
        tracing::warn!("no [server] configured: working offline only");
    }

    let decisions = status::Decisions::default();
    let (emitter, emitter_task) = status::Emitter::spawn(decisions.clone());
    let workflow = Arc::new(Mutex::new(Workflow::new(
        &cfg.device_id,
        &cfg.workflow.receiving_location,
        state,
        last_seq + 1,
    )));
    let mut gate_task = None;
    let mut gate_status = None;
    let mut audit_tx = None;
    if let (Some(gate_cfg), Some(smoother)) = (&cfg.gate, smoother) {
        let status = Arc::new(Mutex::new(GateStatus {
            location: cfg.workflow.receiving_location.clone(),
            ..GateStatus::default()
        }));
        let (tx, audit_rx) = mpsc::channel::<AuditRequest>(4);
        let task = gate::GateTask {
            rules: gate::GateRules {
                location: cfg.workflow.receiving_location.clone(),
                min_confidence: gate_cfg.min_confidence,
            },
            smoother,
            source: cfg.sources.iter().position(|s| s.is_rfid()).unwrap_or(0),
            clock,
            workflow: workflow.clone(),
            view: view.clone(),
            writer: writer.clone(),
            emitter: emitter.clone(),
            status: status.clone(),
        };
        tracing::info!(location = %cfg.workflow.receiving_location, outside = ?gate_cfg.outside_antennas,
            inside = ?gate_cfg.inside_antennas, "dock gate running");
        gate_task = Some(tokio::spawn(task.run(reads_rx, audit_rx)));
        gate_status = Some(status);
        audit_tx = Some(tx);
    } else {
        drop(reads_rx);
    }
    {
        let status_ctx = Arc::new(StatusCtx {
            cfg: cfg.clone(),
            view: view.clone(),
            backlog: backlog.clone(),
            stats: stats.clone(),
            sync: sync_status.clone(),
            sources: source_status.clone(),
            workflow: workflow.clone(),
            gate: gate_status,
            audit: audit_tx,
            metrics: metrics.clone(),
        });
        if cfg.status.enabled {
            let state = status::AppState {
                source: status_ctx.clone(),
                decisions: decisions.clone(),
                stop: stop_rx.clone(),
                keep_alive: status::KEEP_ALIVE,
            };
            tasks.extend(status::spawn(cfg.status.listen_addr(), &data, state).await);
        }
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                status_ctx.write();
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => { status_ctx.write(); return; }
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }));
    }

    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            _ = fatal.notified() => {
                let msg = stats.lock().ok().and_then(|s| s.failed.clone()).unwrap_or_default();
                break Err(AgentError::JournalFailed(msg));
            }
            ev = events_rx.recv() => {
                let Some((source, ev)) = ev else {
                    // No sources (or all ended): keep syncing until shutdown.
                    tokio::select! {
                        _ = &mut shutdown => break Ok(()),
                        _ = fatal.notified() => break Err(AgentError::JournalFailed(String::new())),
                    }
                };
                handle_scan(&workflow, &view, &writer, &emitter, &metrics, source, ev);
            }
        }
    };

    stop_sources.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    // Answer scans already read so their feedback is not lost: the channel closes once every source thread has
    // stopped reading and answered its last feedback (which needs the emitter and the writer, both still running).
    while let Some((source, ev)) = events_rx.recv().await {
        handle_scan(&workflow, &view, &writer, &emitter, &metrics, source, ev);
    }
    // The gate ends once its readers have stopped, after judging the passes still open (it needs the writer and
    // the emitter for them).
    if let Some(t) = gate_task {
        let _ = t.await;
    }
    drop(emitter);
    let _ = emitter_task.await;
    for t in tasks {
        let _ = t.await;
    }
    for t in source_threads {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    drop(writer);
    let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    // Nothing writes the view any more: seal it so the next start can tell a store damaged meanwhile.
    if let Err(e) = view.close() {
        tracing::warn!(error = %e, "could not seal the local store; the next start cannot check it as closely");
    }
    tracing::info!("agent stopped");
    result
}

/// Sources send plain [`ScanEvent`]s; this relay tags them with the source's `[[sources]]` index for the decision
/// stream. It ends when the source's threads have dropped their sender.
fn tag_source(index: usize, events: &mpsc::Sender<(usize, ScanEvent)>) -> mpsc::Sender<ScanEvent> {
    let (tx, mut rx) = mpsc::channel::<ScanEvent>(64);
    let events = events.clone();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if events.send((index, ev)).await.is_err() {
                return;
            }
        }
    });
    tx
}

fn handle_scan(
    workflow: &Mutex<Workflow>,
    view: &LocalView,
    writer: &Writer,
    emitter: &status::Emitter,
    metrics: &Arc<metrics::AgentMetrics>,
    source: usize,
    ev: ScanEvent,
) {
    let scan = match &ev.input {
        workflow::ScanInput::Decoded { raw, .. } => Some(raw.clone()),
        workflow::ScanInput::Invalid { .. } => None,
    };
    let now = clock::now();
    let Ok(mut wf) = workflow.lock() else { return };
    // Scans refused as "storage full" gave away seqs: take them back before the next one (writer module doc).
    writer.apply_rollback(&mut wf);
    let step = wf.handle(ev.input, now, view);
    let task = wf.task(view);
    let mut records: Vec<Record> = step.movements.into_iter().map(Record::Movement).collect();
    if let Some(s) = step.state {
        records.push(Record::State(s));
    }
    // Appended before the workflow is let go: the gate task takes seqs from it too, and the journal must get them
    // in order.
    let durable = (!records.is_empty()).then(|| writer.append(records));
    // Who was refused what, for the office's pick accuracy (crate::scanstats): a refusal restored the state, so
    // the operator is the one signed in when the scan came.
    let refused = match &step.decision {
        workflow::Decision::Rejected { class, .. } => Some((wf.state().operator.clone(), *class)),
        _ => None,
    };
    drop(wf);
    if let Some((operator, class)) = refused {
        if let Err(e) = view
            .scan_stats()
            .count(now, operator.as_deref(), class.as_str())
        {
            tracing::warn!(error = %e, "refused scan not counted for the office's pick accuracy");
        }
    }
    match &step.decision {
        workflow::Decision::Rejected { reason, class } => {
            tracing::info!(%reason, class = class.as_str(), "scan rejected")
        }
        d => tracing::debug!(decision = d.text(), "scan decided"),
    }
    // The feedback thread and the decision stream both learn the outcome from the emitter, once the writer has
    // answered: good_read and the status event still follow durability (invariant 1).
    let event = status::DecisionEvent::new(now, source, scan, &step.decision, task);
    let durable = emitter.emit_scan(event, durable, metrics);
    let _ = ev.feedback.send(Feedback {
        decision: step.decision,
        durable,
    });
}

struct StatusCtx {
    cfg: Config,
    view: LocalView,
    backlog: Backlog,
    stats: Arc<Mutex<WriterStats>>,
    sync: Arc<Mutex<SyncStatus>>,
    sources: Vec<Arc<Mutex<SourceStatus>>>,
    workflow: Arc<Mutex<Workflow>>,
    gate: Option<Arc<Mutex<GateStatus>>>,
    audit: Option<mpsc::Sender<AuditRequest>>,
    metrics: Arc<metrics::AgentMetrics>,
}

impl status::StatusSource for StatusCtx {
    fn status(&self) -> StatusFile {
        self.snapshot()
    }

    fn task(&self) -> Option<String> {
        self.workflow.lock().ok().and_then(|w| w.task(&self.view))
    }

    fn site_stock(&self) -> Option<sitestock::SiteStock> {
        sitestock::SiteStock::new(self.view.db()).ok()
    }

    fn audit(&self) -> Option<mpsc::Sender<AuditRequest>> {
        self.audit.clone()
    }

    fn metrics(&self) -> Option<String> {
        Some(self.metrics.render(&self.gauges()))
    }
}

impl StatusCtx {
    fn snapshot(&self) -> StatusFile {
        let (durable_seq, fatal, journal_bytes, full) = self
            .stats
            .lock()
            .map(|s| {
                (
                    s.durable_seq,
                    s.failed.clone(),
                    s.journal_bytes,
                    s.storage_full.clone(),
                )
            })
            .unwrap_or_default();
        StatusFile {
            device_id: self.cfg.device_id.clone(),
            site: self.cfg.site.clone(),
            updated: clock::now()
                .format(&time::format_description::well_known::Rfc3339)
                .ok(),
            durable_seq,
            backlog: self
                .backlog
                .lock()
                .map(|b| b.pending() as usize)
                .unwrap_or(0),
            sync: self.sync.lock().map(|s| s.clone()).unwrap_or_default(),
            sources: self
                .sources
                .iter()
                .filter_map(|s| s.lock().ok().map(|s| s.clone()))
                .collect(),
            workflow: self
                .workflow
                .lock()
                .map(|w| w.state().clone())
                .unwrap_or_default(),
            stock: self.view.stock().unwrap_or_default(),
            fatal,
            storage_full: full.is_some(),
            storage: StorageStatus {
                journal_bytes,
                max_journal_bytes: self.cfg.storage.max_journal_bytes,
                full,
            },
            gate: self
                .gate
                .as_ref()
                .and_then(|g| g.lock().ok().map(|g| g.clone())),
        }
    }

    /// The figures `/metrics` reads at scrape time: what [`StatusCtx::snapshot`] reads, without the local stock.
    fn gauges(&self) -> metrics::Gauges {
        let (journal_bytes, storage_full) = self
            .stats
            .lock()
            .map(|s| (s.journal_bytes, s.storage_full.is_some()))
            .unwrap_or_default();
        let readers = self
            .cfg
            .sources
            .iter()
            .zip(&self.sources)
            .enumerate()
            .filter(|(_, (cfg, _))| cfg.is_rfid())
            .filter_map(|(source, (cfg, status))| {
                let s = status.lock().ok()?;
                Some(metrics::Reader {
                    source,
                    kind: cfg.kind.clone(),
                    connected: s.connected,
                    reconnects: s.reconnects,
                    errors: s.reader_errors,
                })
            })
            .collect();
        metrics::Gauges {
            device: self.cfg.device_id.clone(),
            site: self.cfg.site.clone(),
            journal_bytes,
            journal_quota_bytes: self.cfg.storage.max_journal_bytes,
            storage_full,
            backlog: self.backlog.lock().map(|b| b.pending()).unwrap_or(0),
            readers,
            gate: self
                .gate
                .as_ref()
                .and_then(|g| g.lock().ok().map(|g| g.clone())),
        }
    }

    fn write(&self) {
        let file = self.snapshot();
        // Not fsynced: the status file is a window for people, not a source of truth.
        let tmp = self.cfg.data_dir.join(".status.json.tmp");
        let ok = serde_json::to_vec_pretty(&file)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, self.cfg.data_dir.join(STATUS_FILE)));
        if let Err(e) = ok {
            tracing::warn!(error = %e, "could not write status file");
        }
    }
}
