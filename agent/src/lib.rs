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
//! [`run`] wires these together; each piece lives in its own module. Shutdown is a future passed in.

pub mod config;
pub mod journal;
pub mod source;
pub mod sync;
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

use crate::config::Config;
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
}

/// The status file written into the data directory every half second, read by `dockhand-agent status`.
#[derive(Debug, Clone, Serialize)]
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
    let data = cfg.data_dir.clone();
    std::fs::create_dir_all(&data).map_err(|source| AgentError::DataDir {
        path: data.clone(),
        source,
    })?;
    // Open the view first: sled's lock keeps a second agent off this data directory before it touches the journal.
    let (view, moved) = LocalView::open(&data.join("sled"))?;
    let (journal, rec) = Journal::open(&data.join("journal"), journal::DEFAULT_SEGMENT_BYTES)?;
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
    let state = rec
        .state
        .as_deref()
        .map(Workflow::decode_state)
        .unwrap_or_default();
    let last_seq = rec.last_seq();
    let backlog: Backlog = Arc::new(Mutex::new(
        rec.movements
            .iter()
            .filter(|m| m.seq > rec.acked)
            .cloned()
            .collect(),
    ));
    tracing::info!(device = %cfg.device_id, last_seq, acked = rec.acked,
        backlog = backlog.lock().map(|b| b.len()).unwrap_or(0), mode = ?state.mode, "agent starting");

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
    let (events_tx, mut events_rx) = mpsc::channel::<ScanEvent>(1024);
    let mut source_status = Vec::new();
    let mut source_threads = Vec::new();
    for src in &cfg.sources {
        let st = Arc::new(Mutex::new(SourceStatus::default()));
        source_status.push(st.clone());
        let (cfg, tx, stop) = (src.clone(), events_tx.clone(), stop_sources.clone());
        // Kinds are validated at config load; each kind owns its device thread(s).
        source_threads.push(match src.kind.as_str() {
            config::KIND_USB_HID_POS | config::KIND_USB_KEYBOARD => {
                usb::spawn_usb(cfg, tx, st, stop)
            }
            _ => source::spawn_serial(cfg, tx, st, stop),
        });
    }
    drop(events_tx);

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
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        )));
    } else {
        tracing::warn!("no [server] configured: working offline only");
    }

    let workflow = Arc::new(Mutex::new(Workflow::new(
        &cfg.device_id,
        &cfg.workflow.receiving_location,
        state,
        last_seq + 1,
    )));
    {
        let status_ctx = StatusCtx {
            cfg: cfg.clone(),
            view: view.clone(),
            backlog: backlog.clone(),
            stats: stats.clone(),
            sync: sync_status.clone(),
            sources: source_status.clone(),
            workflow: workflow.clone(),
        };
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
                let Some(ev) = ev else {
                    // No sources (or all ended): keep syncing until shutdown.
                    tokio::select! {
                        _ = &mut shutdown => break Ok(()),
                        _ = fatal.notified() => break Err(AgentError::JournalFailed(String::new())),
                    }
                };
                handle_scan(&workflow, &writer, ev);
            }
        }
    };

    stop_sources.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    // Answer scans already read so their feedback is not lost.
    while let Ok(ev) = events_rx.try_recv() {
        handle_scan(&workflow, &writer, ev);
    }
    drop(events_rx);
    for t in tasks {
        let _ = t.await;
    }
    for t in source_threads {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    drop(writer);
    let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    tracing::info!("agent stopped");
    result
}

fn handle_scan(workflow: &Mutex<Workflow>, writer: &Writer, ev: ScanEvent) {
    let Ok(mut wf) = workflow.lock() else { return };
    let step = wf.handle(ev.input, time::OffsetDateTime::now_utc());
    drop(wf);
    match &step.decision {
        workflow::Decision::Rejected { reason } => tracing::info!(%reason, "scan rejected"),
        d => tracing::debug!(decision = d.text(), "scan decided"),
    }
    let mut records: Vec<Record> = step.movements.into_iter().map(Record::Movement).collect();
    if let Some(s) = step.state {
        records.push(Record::State(s));
    }
    let durable = (!records.is_empty()).then(|| writer.append(records));
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
}

impl StatusCtx {
    fn write(&self) {
        let (durable_seq, fatal) = self
            .stats
            .lock()
            .map(|s| (s.durable_seq, s.failed.clone()))
            .unwrap_or_default();
        let file = StatusFile {
            device_id: self.cfg.device_id.clone(),
            site: self.cfg.site.clone(),
            updated: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .ok(),
            durable_seq,
            backlog: self.backlog.lock().map(|b| b.len()).unwrap_or(0),
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
        };
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
