//! The journal writer: one OS thread that owns the [`Journal`] and does group commit.
//!
//! Appends queue up while the previous `fdatasync` runs; the thread then writes everything queued with one write and
//! one `fdatasync`, applies the new movements to the local view and the sync backlog, and only then answers each
//! caller, in order. Acks from the sync task go through the same thread so the journal has a single owner.
//!
//! A journal error is fatal: the thread answers `Err` to everyone waiting, stops, and the agent exits. The next start
//! recovers the journal (truncating a torn tail) and resumes at the last durable seq + 1; nothing that was confirmed
//! is lost, and nothing unconfirmed was ever promised.

use std::collections::VecDeque;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::thread;

use dockhand_protocol::sync::Movement;
use tokio::sync::{oneshot, Notify};

use crate::journal::{Journal, Record};
use crate::view::LocalView;

/// Most appends committed by one `fdatasync`; bounds latency of the first in a huge burst.
const MAX_GROUP: usize = 4096;

enum Cmd {
    Append(Vec<Record>, oneshot::Sender<Result<(), String>>),
    Ack(u64, oneshot::Sender<Result<(), String>>),
}

/// Movements durable in the journal and not yet acknowledged by the server, oldest first.
pub type Backlog = Arc<Mutex<VecDeque<Movement>>>;

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: std_mpsc::Sender<Cmd>,
}

/// Shared counters the writer publishes.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Group commits done.
    pub commits: u64,
    /// Records written.
    pub records: u64,
    /// The last durable movement seq.
    pub durable_seq: u64,
    /// The durable acknowledged high-water mark.
    pub acked: u64,
    /// Set when the journal failed; the agent must stop.
    pub failed: Option<String>,
}

impl Writer {
    /// Starts the writer thread. `on_fatal` is notified if the journal fails.
    pub fn spawn(
        journal: Journal,
        view: LocalView,
        backlog: Backlog,
        new_data: Arc<Notify>,
        stats: Arc<Mutex<WriterStats>>,
        on_fatal: Arc<Notify>,
    ) -> (Writer, thread::JoinHandle<()>) {
        let (tx, rx) = std_mpsc::channel();
        let handle = thread::Builder::new()
            .name("journal".into())
            .spawn(move || run(journal, view, backlog, new_data, stats, on_fatal, rx))
            .expect("spawn journal thread");
        (Writer { tx }, handle)
    }

    /// Queues records; the receiver resolves once they are durable.
    pub fn append(&self, records: Vec<Record>) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        if let Err(std_mpsc::SendError(Cmd::Append(_, tx))) = self.tx.send(Cmd::Append(records, tx))
        {
            let _ = tx.send(Err("journal writer has stopped".into()));
        }
        rx
    }

    /// Persists the server's acknowledged high-water mark, then lets the journal drop covered segments.
    pub async fn ack(&self, hw: u64) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Ack(hw, tx))
            .map_err(|_| "journal writer has stopped".to_string())?;
        rx.await
            .map_err(|_| "journal writer has stopped".to_string())?
    }
}

fn run(
    mut journal: Journal,
    view: LocalView,
    backlog: Backlog,
    new_data: Arc<Notify>,
    stats: Arc<Mutex<WriterStats>>,
    on_fatal: Arc<Notify>,
    rx: std_mpsc::Receiver<Cmd>,
) {
    let mut waiting = Vec::new();
    let mut records = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Cmd::Append(mut r, reply) => {
                    records.append(&mut r);
                    waiting.push(reply);
                }
                Cmd::Ack(hw, reply) => {
                    // Commit what is queued first so acks and appends keep their order.
                    if !commit(
                        &mut journal,
                        &view,
                        &backlog,
                        &stats,
                        &mut records,
                        &mut waiting,
                    ) {
                        let _ = reply.send(Err("journal failed".into()));
                        on_fatal.notify_one();
                        return;
                    }
                    let res = journal.ack(hw).map(|_| ()).map_err(|e| e.to_string());
                    if let Err(e) = &res {
                        tracing::error!(error = %e, "could not persist the acknowledged high-water mark");
                    } else if let Ok(mut s) = stats.lock() {
                        s.acked = journal.acked();
                    }
                    let _ = reply.send(res);
                }
            }
            if waiting.len() < MAX_GROUP {
                next = rx.try_recv().ok();
            }
        }
        let had_new = !records.is_empty();
        if !commit(
            &mut journal,
            &view,
            &backlog,
            &stats,
            &mut records,
            &mut waiting,
        ) {
            on_fatal.notify_one();
            // Answer everything still queued so no caller waits forever.
            while let Ok(cmd) = rx.try_recv() {
                match cmd {
                    Cmd::Append(_, r) | Cmd::Ack(_, r) => {
                        let _ = r.send(Err("journal failed".into()));
                    }
                }
            }
            return;
        }
        if had_new {
            new_data.notify_one();
        }
    }
}

/// Writes and syncs the queued records; returns false if the journal failed.
fn commit(
    journal: &mut Journal,
    view: &LocalView,
    backlog: &Backlog,
    stats: &Mutex<WriterStats>,
    records: &mut Vec<Record>,
    waiting: &mut Vec<oneshot::Sender<Result<(), String>>>,
) -> bool {
    if waiting.is_empty() {
        return true;
    }
    let result = journal.append(records);
    let n = records.len() as u64;
    let movements: Vec<Movement> = records
        .drain(..)
        .filter_map(|r| match r {
            Record::Movement(m) => Some(m),
            Record::State(_) => None,
        })
        .collect();
    match result {
        Ok(()) => {
            if let Err(e) = view.apply(&movements) {
                // The view is rebuildable from the journal; the scans are durable, so still confirm them.
                tracing::error!(error = %e, "local stock view not updated; it is rebuilt at next start");
            }
            if let Ok(mut s) = stats.lock() {
                s.commits += 1;
                s.records += n;
                s.durable_seq = journal.last_seq();
            }
            if let Ok(mut b) = backlog.lock() {
                b.extend(movements);
            }
            for w in waiting.drain(..) {
                let _ = w.send(Ok(()));
            }
            true
        }
        Err(e) => {
            let msg = format!("journal write failed, scans not stored: {e}");
            tracing::error!("{msg}; the agent stops and recovers on restart");
            if let Ok(mut s) = stats.lock() {
                s.failed = Some(msg.clone());
            }
            for w in waiting.drain(..) {
                let _ = w.send(Err(msg.clone()));
            }
            false
        }
    }
}
