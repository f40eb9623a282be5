//! The journal writer: one OS thread that owns the [`Journal`] and does group commit.
//!
//! Appends queue up while the previous `fdatasync` runs; the thread then writes everything queued with one write and
//! one `fdatasync`, applies the new movements to the local view and the sync backlog, and only then answers each
//! caller, in order. Acks from the sync task go through the same thread so the journal has a single owner.
//!
//! # Storage full
//!
//! An append the journal refuses with its state intact (quota or free-space floor reached, or a failed write that
//! was cut back, see the journal's module doc) is answered [`WriteError::StorageFull`] (or
//! [`WriteError::Storage`]) and the agent keeps running. The workflow had already given seqs to the refused
//! movements, and to every scan queued behind them, so:
//!
//! 1. the writer enters *refusing*: it answers every append with the same error without writing, until
//! 2. the workflow task, before its next scan, calls [`Writer::apply_rollback`]: the workflow goes back to the last
//!    durable seq + 1 and the last durable state record, and a `Resume` for that rollback is queued behind the
//!    stale appends. The channel is FIFO, so every append after `Resume` was made from durable state.
//!
//! Seqs therefore stay contiguous and a seq is never given to two durable movements (DESIGN §3.2). The next scan
//! after space returns (acks deleted segments, or the disk was freed) is simply accepted. The log says so once per
//! episode, and [`WriterStats::storage_full`] carries the figures for the status file.
//!
//! A journal error that leaves the journal unusable (see [`JournalError::is_intact`]) is fatal: the thread answers
//! [`WriteError::Failed`] to everyone waiting, stops, and the agent exits. The next start recovers the journal
//! (truncating a torn tail) and resumes at the last durable seq + 1; nothing that was confirmed is lost, and nothing
//! unconfirmed was ever promised.

use std::collections::VecDeque;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::thread;

use dockhand_protocol::sync::Movement;
use serde::Serialize;
use tokio::sync::{oneshot, Notify};

use crate::journal::{Journal, JournalError, Limit, Record, Shortage};
use crate::view::LocalView;
use crate::workflow::Workflow;

/// Most appends committed by one `fdatasync`; bounds latency of the first in a huge burst.
const MAX_GROUP: usize = 4096;

/// Why records were not made durable. Its text is what the operator reads.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// No room under the journal quota or the free-space floor, or the disk is full. Nothing was written; the
    /// agent goes on and accepts scans again once space returns.
    #[error("storage full: scan not stored ({0}); sync or free space")]
    StorageFull(Shortage),
    /// A write failed and was undone. Nothing was written; the agent goes on.
    #[error("storage error: scan not stored ({0}); check the disk")]
    Storage(String),
    /// The journal failed and the agent stops.
    #[error("journal failed, scan not stored: {0}")]
    Failed(String),
}

impl WriteError {
    fn stopped() -> WriteError {
        WriteError::Failed("journal writer has stopped".into())
    }
}

/// True when `error` (an append's answer) is a refusal the writer already logged for its episode, storage full or
/// an undone write error, so that callers need not log it once per scan.
pub fn is_storage_refusal(error: &str) -> bool {
    error.starts_with("storage full:") || error.starts_with("storage error:")
}

// The receiving side (feedback thread, decision stream) needs only the text: a [`WriteError`] rendered.
type Reply = oneshot::Sender<Result<(), String>>;

enum Cmd {
    Append(Vec<Record>, Reply),
    Ack(u64, oneshot::Sender<Result<(), String>>),
    /// The workflow applied rollback number `.0`; appends after this one were made from durable state.
    Resume(u64),
}

/// A rollback the writer asks the workflow to apply.
#[derive(Debug)]
struct Pending {
    epoch: u64,
    next_seq: u64,
    state: Option<Vec<u8>>,
}

/// Movements durable in the journal and not yet acknowledged by the server, oldest first.
pub type Backlog = Arc<Mutex<BacklogState>>;

/// Most unacknowledged movements kept in memory; the rest stay in the journal until the sync task reads them back.
pub const BACKLOG_IN_MEMORY: usize = 10_000;

/// The sync backlog: every durable movement with `acked < seq <= durable` must reach the server. The oldest of them
/// (up to [`BACKLOG_IN_MEMORY`]) are held in memory, contiguous from `acked + 1`; a device offline for days keeps
/// the rest only in the journal (that is what it is for), so memory stays bounded however long the link is down.
#[derive(Debug, Default)]
pub struct BacklogState {
    /// Movements `acked + 1 ..= acked + mem.len()`, in seq order.
    pub mem: VecDeque<Movement>,
    /// The server's durable acknowledged high-water mark.
    pub acked: u64,
    /// The last durable seq.
    pub durable: u64,
    /// The journal directory, to read spilled movements back.
    pub journal_dir: std::path::PathBuf,
}

impl BacklogState {
    /// A backlog after recovery: `unacked` are the journal's movements above `acked`, `durable` the last seq.
    pub fn new(
        journal_dir: std::path::PathBuf,
        acked: u64,
        durable: u64,
        unacked: impl IntoIterator<Item = Movement>,
    ) -> Self {
        let mut b = BacklogState {
            mem: VecDeque::new(),
            acked,
            durable: acked,
            journal_dir,
        };
        b.push_durable(unacked);
        b.durable = b.durable.max(durable);
        b
    }

    /// Movements durable but not yet acknowledged.
    pub fn pending(&self) -> u64 {
        self.durable.saturating_sub(self.acked)
    }

    /// The last seq held in memory (or `acked` when none).
    pub fn mem_end(&self) -> u64 {
        self.mem.back().map_or(self.acked, |m| m.seq)
    }

    /// Records newly durable movements; keeps them in memory while there is room and nothing older is spilled.
    pub fn push_durable(&mut self, movements: impl IntoIterator<Item = Movement>) {
        for m in movements {
            if m.seq <= self.acked {
                continue;
            }
            self.durable = self.durable.max(m.seq);
            if self.mem.len() < BACKLOG_IN_MEMORY && m.seq == self.mem_end() + 1 {
                self.mem.push_back(m);
            }
        }
    }

    /// The server acknowledged everything up to `hw` (and that acknowledgement is durable).
    pub fn ack(&mut self, hw: u64) {
        while self.mem.front().is_some_and(|m| m.seq <= hw) {
            self.mem.pop_front();
        }
        self.acked = self.acked.max(hw);
        self.durable = self.durable.max(self.acked);
        // A burst or an offline spell can leave a large empty buffer behind: give it back.
        if self.mem.capacity() > 4096 && self.mem.len() < self.mem.capacity() / 4 {
            let keep = self.mem.len().max(1024);
            self.mem.shrink_to(keep);
        }
    }

    /// Where to read spilled movements from, when memory holds fewer than `want` and the journal has more:
    /// `(after, max)` for [`crate::journal::read_movements`].
    pub fn refill_from(&self, want: usize) -> Option<(u64, usize)> {
        let end = self.mem_end();
        (self.mem.len() < want && end < self.durable)
            .then(|| (end, BACKLOG_IN_MEMORY.saturating_sub(self.mem.len())))
    }

    /// Adds movements read back from the journal after `after`; ignored if the backlog moved on meanwhile.
    pub fn refill(&mut self, after: u64, movements: Vec<Movement>) {
        if after != self.mem_end() {
            return;
        }
        for m in movements {
            if m.seq == self.mem_end() + 1
                && m.seq <= self.durable
                && self.mem.len() < BACKLOG_IN_MEMORY
            {
                self.mem.push_back(m);
            } else {
                break;
            }
        }
    }
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: std_mpsc::Sender<Cmd>,
    rollback: Arc<Mutex<Option<Pending>>>,
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
    /// Bytes in the journal's segment files.
    pub journal_bytes: u64,
    /// Set while scans are refused for lack of storage.
    pub storage_full: Option<StorageFull>,
    /// Set when the journal failed; the agent must stop.
    pub failed: Option<String>,
}

/// A storage-full episode, as the status file shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageFull {
    /// What the operator is told.
    pub message: String,
    /// The limit that refused the last scan (`quota`, `free_space`, `no_space`); absent for other write errors.
    pub limit: Option<Limit>,
    /// Bytes available under that limit.
    pub free_bytes: Option<u64>,
    /// Bytes the last refused scan needed.
    pub needed_bytes: Option<u64>,
    /// Scans refused in this episode.
    pub refused_scans: u64,
    /// When the episode began (RFC 3339).
    pub since: Option<String>,
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
        let rollback = Arc::new(Mutex::new(None));
        if let Ok(mut s) = stats.lock() {
            s.journal_bytes = journal.total_bytes();
        }
        let state = WriterThread {
            journal,
            view,
            backlog,
            stats,
            rollback: rollback.clone(),
            epoch: 0,
            refusing: None,
            records: Vec::new(),
            groups: Vec::new(),
            wrote: false,
        };
        let handle = thread::Builder::new()
            .name("journal".into())
            .spawn(move || state.run(rx, new_data, on_fatal))
            .expect("spawn journal thread");
        (Writer { tx, rollback }, handle)
    }

    /// Queues records; the receiver resolves once they are durable, or with why they were not stored (a
    /// [`WriteError`]'s text, which the operator reads).
    pub fn append(&self, records: Vec<Record>) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        if let Err(std_mpsc::SendError(Cmd::Append(_, tx))) = self.tx.send(Cmd::Append(records, tx))
        {
            let _ = tx.send(Err(WriteError::stopped().to_string()));
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

    /// Applies the rollback the writer asked for after refusing appends, if any: the workflow goes back to the
    /// last durable seq + 1 and the last durable state. Call it with the workflow locked, before it handles a
    /// scan, from the task that appends. Returns true if there was one.
    pub fn apply_rollback(&self, workflow: &mut Workflow) -> bool {
        self.rollback_with(|next_seq, state| {
            let state = state.map(Workflow::decode_state).unwrap_or_default();
            workflow.rollback(next_seq, state);
        })
    }

    /// [`Writer::apply_rollback`] for any seq owner: `apply(next_seq, last durable state snapshot)`.
    pub fn rollback_with(&self, apply: impl FnOnce(u64, Option<&[u8]>)) -> bool {
        let pending = self.rollback.lock().ok().and_then(|mut p| p.take());
        let Some(p) = pending else { return false };
        tracing::debug!(
            next_seq = p.next_seq,
            "workflow rolled back to the last durable seq"
        );
        apply(p.next_seq, p.state.as_deref());
        let _ = self.tx.send(Cmd::Resume(p.epoch));
        true
    }
}

/// What the journal thread owns.
struct WriterThread {
    journal: Journal,
    view: LocalView,
    backlog: Backlog,
    stats: Arc<Mutex<WriterStats>>,
    rollback: Arc<Mutex<Option<Pending>>>,
    /// Number of the latest rollback asked for.
    epoch: u64,
    /// Set from a refusal until the workflow applied its rollback: every append is answered with this error.
    refusing: Option<(u64, WriteError)>,
    /// Records queued for the next group commit.
    records: Vec<Record>,
    /// One entry per queued append: the end of its records in `records`, and its caller.
    groups: Vec<(usize, Reply)>,
    /// Movements became durable since the sync task was last woken.
    wrote: bool,
}

/// The journal failed and must not be used again.
struct Fatal;

impl WriterThread {
    fn run(mut self, rx: std_mpsc::Receiver<Cmd>, new_data: Arc<Notify>, on_fatal: Arc<Notify>) {
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            let mut result = Ok(());
            while let Some(cmd) = next.take() {
                result = self.handle(cmd);
                if result.is_err() {
                    break;
                }
                if self.groups.len() < MAX_GROUP {
                    next = rx.try_recv().ok();
                }
            }
            if result.is_ok() {
                result = self.commit();
            }
            if self.wrote {
                self.wrote = false;
                new_data.notify_one();
            }
            if result.is_err() {
                on_fatal.notify_one();
                // Answer everything still queued so no caller waits forever.
                let msg = self.failed_message();
                while let Ok(cmd) = rx.try_recv() {
                    match cmd {
                        Cmd::Append(_, r) => {
                            let _ = r.send(Err(WriteError::Failed(msg.clone()).to_string()));
                        }
                        Cmd::Ack(_, r) => {
                            let _ = r.send(Err(msg.clone()));
                        }
                        Cmd::Resume(_) => {}
                    }
                }
                return;
            }
        }
    }

    fn handle(&mut self, cmd: Cmd) -> Result<(), Fatal> {
        match cmd {
            Cmd::Append(records, reply) => {
                if let Some((_, err)) = &self.refusing {
                    let err = err.clone();
                    self.count_refused();
                    let _ = reply.send(Err(err.to_string()));
                } else {
                    self.records.extend(records);
                    self.groups.push((self.records.len(), reply));
                }
            }
            Cmd::Ack(hw, reply) => {
                // Commit what is queued first so acks and appends keep their order.
                if let Err(fatal) = self.commit() {
                    let _ = reply.send(Err(self.failed_message()));
                    return Err(fatal);
                }
                let res = self.journal.ack(hw).map(|_| ()).map_err(|e| e.to_string());
                if let Err(e) = &res {
                    tracing::error!(error = %e, "could not persist the acknowledged high-water mark");
                }
                if let Ok(mut s) = self.stats.lock() {
                    s.acked = self.journal.acked();
                    s.journal_bytes = self.journal.total_bytes();
                }
                let _ = reply.send(res);
            }
            Cmd::Resume(epoch) => {
                self.commit()?;
                if self.refusing.as_ref().is_some_and(|(e, _)| *e == epoch) {
                    self.refusing = None;
                }
            }
        }
        Ok(())
    }

    /// Writes and syncs the queued records, answering each caller.
    fn commit(&mut self) -> Result<(), Fatal> {
        if self.groups.is_empty() {
            return Ok(());
        }
        let mut records = std::mem::take(&mut self.records);
        let groups = std::mem::take(&mut self.groups);
        let result = match self.journal.append(&records) {
            Ok(()) => {
                let n = records.len();
                self.durable(movements(records.drain(..)), n);
                for (_, reply) in groups {
                    let _ = reply.send(Ok(()));
                }
                Ok(())
            }
            Err(e) if !e.is_intact() => Err(self.fail(e, groups)),
            Err(e) if groups.len() == 1 => {
                let err = self.refuse(e);
                for (_, reply) in groups {
                    let _ = reply.send(Err(err.to_string()));
                }
                Ok(())
            }
            // Some of the group may still fit: write the appends one by one, in order, up to the first refused.
            Err(_) => self.commit_each(&records, groups),
        };
        records.clear();
        self.records = records;
        result
    }

    fn commit_each(
        &mut self,
        records: &[Record],
        groups: Vec<(usize, Reply)>,
    ) -> Result<(), Fatal> {
        let mut start = 0;
        let mut groups = groups.into_iter();
        while let Some((end, reply)) = groups.next() {
            let part = &records[start..end];
            start = end;
            if let Some((_, err)) = &self.refusing {
                let err = err.clone();
                self.count_refused();
                let _ = reply.send(Err(err.to_string()));
                continue;
            }
            match self.journal.append(part) {
                Ok(()) => {
                    self.durable(movements(part.iter().cloned()), part.len());
                    let _ = reply.send(Ok(()));
                }
                Err(e) if e.is_intact() => {
                    let err = self.refuse(e);
                    let _ = reply.send(Err(err.to_string()));
                }
                Err(e) => {
                    let rest = std::iter::once((end, reply)).chain(groups).collect();
                    return Err(self.fail(e, rest));
                }
            }
        }
        Ok(())
    }

    /// Publishes records that just became durable.
    fn durable(&mut self, movements: Vec<Movement>, n_records: usize) {
        if let Err(e) = self.view.apply(&movements) {
            // The view is rebuildable from the journal; the scans are durable, so still confirm them.
            tracing::error!(error = %e, "local stock view not updated; it is rebuilt at next start");
        }
        let ended = if let Ok(mut s) = self.stats.lock() {
            s.commits += 1;
            s.records += n_records as u64;
            s.durable_seq = self.journal.last_seq();
            s.journal_bytes = self.journal.total_bytes();
            s.storage_full.take()
        } else {
            None
        };
        if let Some(episode) = ended {
            tracing::warn!(refused_scans = episode.refused_scans, since = ?episode.since,
                "storage available again: scans are accepted and stored");
        }
        self.wrote |= !movements.is_empty();
        if let Ok(mut b) = self.backlog.lock() {
            b.push_durable(movements);
        }
    }

    /// Turns an append refused with the journal intact into the callers' error, and asks the workflow to roll
    /// back to the last durable seq and state.
    fn refuse(&mut self, e: JournalError) -> WriteError {
        let (err, shortage) = match e {
            JournalError::Full(s) => (WriteError::StorageFull(s), Some(s)),
            other => (WriteError::Storage(other.to_string()), None),
        };
        self.epoch += 1;
        if let Ok(mut p) = self.rollback.lock() {
            *p = Some(Pending {
                epoch: self.epoch,
                next_seq: self.journal.last_seq() + 1,
                state: self.journal.last_state().map(<[u8]>::to_vec),
            });
        }
        self.refusing = Some((self.epoch, err.clone()));
        let Ok(mut s) = self.stats.lock() else {
            return err;
        };
        s.journal_bytes = self.journal.total_bytes();
        let refused_scans = match &s.storage_full {
            Some(ep) => ep.refused_scans + 1,
            None => {
                // Loud once per episode; each refused scan is also answered with the reason on its device.
                let durable_seq = self.journal.last_seq();
                match shortage {
                    Some(sh) => tracing::error!(limit = ?sh.limit, free_bytes = sh.free_bytes,
                        needed_bytes = sh.needed_bytes, durable_seq,
                        "STORAGE FULL ({sh}): new scans are refused until space returns; everything already \
                         stored is safe. Let the device sync (acknowledged journal segments are deleted) or free \
                         disk space"),
                    None => tracing::error!(durable_seq, error = %err,
                        "STORAGE ERROR: a journal write failed and was undone; new scans are refused until a \
                         write succeeds; everything already stored is safe. Check the disk"),
                }
                1
            }
        };
        let since = s.storage_full.as_ref().and_then(|ep| ep.since.clone());
        s.storage_full = Some(StorageFull {
            message: err.to_string(),
            limit: shortage.map(|s| s.limit),
            free_bytes: shortage.map(|s| s.free_bytes),
            needed_bytes: shortage.map(|s| s.needed_bytes),
            refused_scans,
            since: since.or_else(now_rfc3339),
        });
        err
    }

    fn count_refused(&self) {
        if let Ok(mut s) = self.stats.lock() {
            if let Some(ep) = &mut s.storage_full {
                ep.refused_scans += 1;
            }
        }
    }

    /// The journal failed for good: answers `groups` and records the failure.
    fn fail(&mut self, e: JournalError, groups: Vec<(usize, Reply)>) -> Fatal {
        let msg = format!("journal write failed, scans not stored: {e}");
        tracing::error!("{msg}; the agent stops and recovers on restart");
        if let Ok(mut s) = self.stats.lock() {
            s.failed = Some(msg.clone());
        }
        for (_, reply) in groups {
            let _ = reply.send(Err(WriteError::Failed(msg.clone()).to_string()));
        }
        Fatal
    }

    fn failed_message(&self) -> String {
        self.stats
            .lock()
            .ok()
            .and_then(|s| s.failed.clone())
            .unwrap_or_else(|| "journal failed".into())
    }
}

fn movements(records: impl Iterator<Item = Record>) -> Vec<Movement> {
    records
        .filter_map(|r| match r {
            Record::Movement(m) => Some(m),
            Record::State(_) => None,
        })
        .collect()
}

fn now_rfc3339() -> Option<String> {
    crate::clock::now()
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::sim::{Fault, OpClass, SimFs};
    use crate::journal::{Limits, DEFAULT_SEGMENT_BYTES};
    use crate::source::{Feedback, SourceStatus};
    use crate::workflow::Decision;

    use crate::journal::tests::mv;

    /// A backlog larger than memory holds: the oldest stay in memory, the rest are read back from the real journal
    /// in order as acks come in, every movement delivered exactly once, memory never above the bound.
    #[test]
    fn backlog_spills_to_the_journal_and_reads_back_in_order() {
        const N: u64 = 25_000;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("journal");
        // Small segments: the read-back crosses many files, and acked ones are deleted while it runs.
        let (mut journal, _) = Journal::open(&dir, 256 << 10).unwrap();
        let all: Vec<Record> = (1..=N).map(|s| Record::Movement(mv(s))).collect();
        for chunk in all.chunks(5000) {
            journal.append(chunk).unwrap();
        }
        let mut b = BacklogState::new(dir.clone(), 0, 0, std::iter::empty());
        b.push_durable((1..=N).map(mv));
        assert_eq!(b.pending(), N);
        assert_eq!(
            b.mem.len(),
            BACKLOG_IN_MEMORY,
            "memory holds the oldest only"
        );
        let (mut delivered, mut reads) = (Vec::new(), 0);
        while b.pending() > 0 {
            if let Some((after, max)) = b.refill_from(500) {
                reads += 1;
                b.refill(
                    after,
                    crate::journal::read_movements(&dir, after, max).unwrap(),
                );
            }
            assert!(b.mem.len() <= BACKLOG_IN_MEMORY);
            let batch: Vec<u64> = b.mem.iter().take(500).map(|m| m.seq).collect();
            assert!(
                !batch.is_empty(),
                "pending {} but nothing to push",
                b.pending()
            );
            let hw = *batch.last().unwrap();
            delivered.extend(batch);
            journal.ack(hw).unwrap();
            b.ack(hw);
        }
        assert_eq!(delivered, (1..=N).collect::<Vec<_>>());
        assert!(reads >= 2, "the spilled part was read back ({reads} reads)");
        // New movements after a drained spill go to memory again.
        b.push_durable([mv(N + 1)]);
        assert_eq!(b.mem.len(), 1);
        // A stale read-back (the backlog moved on meanwhile) is ignored.
        b.refill(3, vec![mv(4)]);
        assert_eq!(b.mem.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![N + 1]);
    }

    /// The seq owner as the workflow task drives it: rollback first, then seqs for the scan, then append.
    struct Engine {
        next_seq: u64,
        state: Option<Vec<u8>>,
        writer: Writer,
    }

    impl Engine {
        /// One scan making a movement and maybe a new state; returns the writer's answer (not awaited yet).
        fn scan(&mut self, state: Option<&[u8]>) -> (u64, oneshot::Receiver<Result<(), String>>) {
            let (next, st) = (&mut self.next_seq, &mut self.state);
            self.writer.rollback_with(|n, s| {
                *next = n;
                *st = s.map(<[u8]>::to_vec);
            });
            self.scan_before_rollback(state)
        }

        /// A scan handled before a refusal published by the writer reached the workflow.
        fn scan_before_rollback(
            &mut self,
            state: Option<&[u8]>,
        ) -> (u64, oneshot::Receiver<Result<(), String>>) {
            let seq = self.next_seq;
            self.next_seq += 1;
            let mut records = vec![Record::Movement(mv(seq))];
            if let Some(s) = state {
                self.state = Some(s.to_vec());
                records.push(Record::State(s.to_vec()));
            }
            (seq, self.writer.append(records))
        }
    }

    struct Setup {
        _tmp: tempfile::TempDir,
        dir: std::path::PathBuf,
        engine: Engine,
        stats: Arc<Mutex<WriterStats>>,
        backlog: Backlog,
        fatal: Arc<Notify>,
        thread: thread::JoinHandle<()>,
    }

    fn setup(limits: Limits) -> Setup {
        setup_with(|dir| {
            let (mut journal, _) = Journal::open(dir, DEFAULT_SEGMENT_BYTES).unwrap();
            journal.set_limits(limits);
            journal
        })
    }

    /// A writer over the journal `open` gives (passed the real journal directory; a model disk ignores it).
    fn setup_with(open: impl FnOnce(&std::path::Path) -> Journal) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("journal");
        let (view, _) = LocalView::open(&tmp.path().join("sled")).unwrap();
        let journal = open(&dir);
        let stats = Arc::new(Mutex::new(WriterStats::default()));
        let backlog = Backlog::default();
        let fatal = Arc::new(Notify::new());
        let (writer, thread) = Writer::spawn(
            journal,
            view,
            backlog.clone(),
            Arc::new(Notify::new()),
            stats.clone(),
            fatal.clone(),
        );
        Setup {
            _tmp: tmp,
            dir,
            engine: Engine {
                next_seq: 1,
                state: None,
                writer,
            },
            stats,
            backlog,
            fatal,
            thread,
        }
    }

    const QUOTA: Limits = Limits {
        max_bytes: Some(4096),
        min_free_bytes: 0,
    };

    /// Scans A (stored) B, C (refused: C was queued behind B before the refusal was known), then space returns
    /// through an ack with no restart: D gets A + 1, and the state goes back to A's.
    #[tokio::test]
    async fn refused_scans_roll_seqs_and_state_back_and_space_returning_needs_no_restart() {
        let mut t = setup(QUOTA);
        let mut a = 0;
        loop {
            let (seq, rx) = t.engine.scan(Some(format!("state-{}", a + 1).as_bytes()));
            if rx.await.unwrap().is_err() {
                break;
            }
            a = seq;
            assert!(a < 100, "quota never reached");
        }
        assert!(a >= 3, "{a}");
        let a_state = format!("state-{a}").into_bytes();
        // The quota is reached. C is handled before B's refusal reaches the workflow, so it gets a seq behind
        // B's.
        let (b, rb) = t.engine.scan(Some(b"state-B"));
        let (c, rc) = t.engine.scan_before_rollback(None);
        assert_eq!((b, c), (a + 1, a + 2));
        for rx in [rb, rc] {
            let err = rx.await.unwrap().unwrap_err();
            assert!(
                err.starts_with("storage full: scan not stored (")
                    && err.ends_with("; sync or free space"),
                "{err}"
            );
        }
        let full = t
            .stats
            .lock()
            .unwrap()
            .storage_full
            .clone()
            .expect("episode");
        assert_eq!(full.limit, Some(Limit::Quota));
        assert!(full.free_bytes.unwrap() < full.needed_bytes.unwrap());
        assert!(full.refused_scans >= 3, "{full:?}");
        assert_eq!(t.stats.lock().unwrap().durable_seq, a);

        // Still full: E is refused, and gets A + 1 (rolled back), not C + 1; the state is A's again.
        let (e, re) = t.engine.scan(None);
        assert_eq!(e, a + 1);
        assert!(re.await.unwrap().is_err());
        assert_eq!(t.engine.state.as_deref(), Some(&a_state[..]));

        // The server acknowledges everything: segments go, and the next scan is stored without a restart.
        t.engine.writer.ack(a).await.unwrap();
        let (d, rd) = t.engine.scan(None);
        assert_eq!(d, a + 1);
        rd.await.unwrap().unwrap();
        assert!(t.stats.lock().unwrap().storage_full.is_none());
        assert_eq!(t.stats.lock().unwrap().durable_seq, a + 1);
        let backlog: Vec<u64> = t
            .backlog
            .lock()
            .unwrap()
            .mem
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(backlog, (1..=a + 1).collect::<Vec<_>>());

        // The journal holds exactly the durable movements, contiguous, and A's state.
        drop(t.engine);
        let thread = t.thread;
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
        let (_, rec) = Journal::open(&t.dir, DEFAULT_SEGMENT_BYTES).unwrap();
        let seqs: Vec<u64> = rec.movements.iter().map(|m| m.seq).collect();
        assert_eq!(*seqs.last().unwrap(), a + 1);
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        assert_eq!(rec.state.as_deref(), Some(&a_state[..]));
        assert_eq!(rec.acked, a);
    }

    /// A burst committed as one group, straddling the quota: the prefix that fits is stored, the rest refused.
    #[tokio::test]
    async fn a_group_straddling_the_quota_stores_its_prefix_in_order() {
        let mut t = setup(QUOTA);
        let pending: Vec<_> = (0..60).map(|_| t.engine.scan(None)).collect();
        let mut results = Vec::new();
        for (seq, rx) in pending {
            results.push((seq, rx.await.unwrap().is_ok()));
        }
        let stored = results.iter().take_while(|(_, ok)| *ok).count();
        assert!(stored > 0 && stored < 60, "{results:?}");
        assert!(results[stored..].iter().all(|(_, ok)| !ok), "{results:?}");
        assert_eq!(t.stats.lock().unwrap().durable_seq, stored as u64);
        // The next scan resumes right after the stored prefix.
        let (seq, rx) = t.engine.scan(None);
        assert_eq!(seq, stored as u64 + 1);
        assert!(rx.await.unwrap().is_err());
    }

    #[test]
    fn refusals_are_told_apart_from_failures_by_their_text() {
        let full = Shortage {
            limit: Limit::FreeSpace,
            free_bytes: 10 << 20,
            needed_bytes: 16 << 20,
        };
        for (err, text, refusal) in [
            (
                WriteError::StorageFull(full),
                "storage full: scan not stored (10.0 MiB free, 16.0 MiB needed); sync or free space",
                true,
            ),
            (
                WriteError::Storage("EIO".into()),
                "storage error: scan not stored (EIO); check the disk",
                true,
            ),
            (
                WriteError::Failed("EIO".into()),
                "journal failed, scan not stored: EIO",
                false,
            ),
        ] {
            assert_eq!(err.to_string(), text);
            assert_eq!(is_storage_refusal(text), refusal, "{text}");
        }
    }

    /// A writer over a journal on the model disk.
    fn setup_sim(fs: &Arc<SimFs>) -> Setup {
        setup_with(|_| {
            let dir = std::path::Path::new("/data/journal");
            Journal::open_on(fs.clone(), dir, DEFAULT_SEGMENT_BYTES)
                .unwrap()
                .0
        })
    }

    /// What the scanner hears for scans whose writer answers are `answers`: the source's feedback loop, with good
    /// read `G` and bad read `B`.
    fn beeps(answers: Vec<Result<(), String>>) -> Vec<u8> {
        let (tx, rx) = std_mpsc::channel();
        for answer in answers {
            let (durable_tx, durable) = oneshot::channel();
            durable_tx.send(answer).unwrap();
            let decision = Decision::Accepted {
                seqs: vec![],
                message: "received".into(),
            };
            tx.send(Feedback {
                decision,
                durable: Some(durable),
            })
            .unwrap();
        }
        drop(tx);
        let mut port = Vec::new();
        let status = Arc::new(Mutex::new(SourceStatus::default()));
        crate::source::feedback_loop(Some(&mut port), rx, b"G".to_vec(), b"B".to_vec(), status);
        port
    }

    /// The disk fails one `fdatasync` (EIO): that scan is answered "storage error", which the scanner hears as a
    /// bad read, never a good one; the journal cut the write back, so the next scan gets the same seq, is stored
    /// and confirmed, and the refused scan is not in the journal after a power cut.
    #[test]
    fn a_failed_fdatasync_is_a_bad_read_and_the_next_scan_is_stored() {
        let fs = Arc::new(SimFs::new(3));
        let mut t = setup_sim(&fs);
        let (s1, r1) = t.engine.scan(Some(b"state-1"));
        let a1 = r1.blocking_recv().unwrap();
        fs.inject(Fault::once(OpClass::Sync, 1, libc::EIO));
        let (s2, r2) = t.engine.scan(Some(b"state-2"));
        let a2 = r2.blocking_recv().unwrap();
        let err = a2.clone().unwrap_err();
        assert!(
            err.starts_with(
                "storage error: scan not stored (journal write failed at /data/journal/"
            ) && err.ends_with("; check the disk"),
            "{err}"
        );
        let episode = t
            .stats
            .lock()
            .unwrap()
            .storage_full
            .clone()
            .expect("episode");
        assert_eq!((episode.limit, episode.refused_scans), (None, 1));
        let (s3, r3) = t.engine.scan(None);
        let a3 = r3.blocking_recv().unwrap();
        assert_eq!((s1, s2, s3), (1, 2, 2), "the refused seq is given again");
        assert_eq!(beeps(vec![a1, a2, a3]), b"GBG");
        assert!(t.stats.lock().unwrap().storage_full.is_none());
        assert!(t.stats.lock().unwrap().failed.is_none(), "not fatal");
        drop(t.engine);
        t.thread.join().unwrap();
        fs.reboot();
        let dir = std::path::Path::new("/data/journal");
        let (_, rec) = Journal::open_on(fs.clone(), dir, DEFAULT_SEGMENT_BYTES).unwrap();
        let seqs: Vec<u64> = rec.movements.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, vec![1, 2]);
        assert_eq!(
            rec.state.as_deref(),
            Some(&b"state-1"[..]),
            "state-2 was refused"
        );
    }

    /// Writes fail from now on (EIO), so the journal cannot undo the failed one: the writer answers "journal
    /// failed", stops and wakes the agent to exit; every later scan is refused, none confirmed; the refused scan is
    /// not in the journal after a power cut.
    #[test]
    fn a_write_that_cannot_be_undone_stops_the_writer_and_refuses_every_later_scan() {
        let fs = Arc::new(SimFs::new(4));
        let mut t = setup_sim(&fs);
        let (_, r1) = t.engine.scan(None);
        let a1 = r1.blocking_recv().unwrap();
        fs.inject(Fault::forever(OpClass::Write, 1, libc::EIO));
        let (_, r2) = t.engine.scan(None);
        let a2 = r2.blocking_recv().unwrap();
        let err = a2.clone().unwrap_err();
        assert!(
            err.starts_with("journal failed, scan not stored: "),
            "{err}"
        );
        assert!(!is_storage_refusal(&err), "a failure, not a refusal");
        let failed = t.stats.lock().unwrap().failed.clone().expect("failed");
        assert!(failed.contains("Input/output error"), "{failed}");
        let fatal = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(5), t.fatal.notified()).await
            });
        assert!(fatal.is_ok(), "the agent is told to stop");
        t.thread.join().unwrap();
        let later: Vec<_> = (0..3)
            .map(|_| t.engine.scan(None).1.blocking_recv().unwrap())
            .collect();
        assert!(later.iter().all(|a| a
            .as_ref()
            .is_err_and(|e| e.starts_with("journal failed, scan not stored: "))));
        let mut answers = vec![a1, a2];
        answers.extend(later);
        assert_eq!(beeps(answers), b"GBBBB");
        fs.reboot();
        let dir = std::path::Path::new("/data/journal");
        let (_, rec) = Journal::open_on(fs.clone(), dir, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(rec.last_seq(), 1);
        assert!(rec.damaged.is_empty());
    }

    #[tokio::test]
    async fn free_space_floor_refuses_without_stopping_the_agent() {
        let mut t = setup(Limits {
            max_bytes: None,
            min_free_bytes: u64::MAX / 2,
        });
        let (_, rx) = t.engine.scan(None);
        let err = rx.await.unwrap().unwrap_err();
        assert!(err.starts_with("storage full:"), "{err}");
        let full = t.stats.lock().unwrap().storage_full.clone().unwrap();
        assert_eq!(full.limit, Some(Limit::FreeSpace));
        // Not fatal: the fatal notification never fires.
        let fired =
            tokio::time::timeout(std::time::Duration::from_millis(50), t.fatal.notified()).await;
        assert!(fired.is_err());
        assert!(t.stats.lock().unwrap().failed.is_none());
    }
}
