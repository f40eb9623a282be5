//! The movement journal: the agent's durable truth (DESIGN §4).
//!
//! # Invariants
//!
//! - A scan is confirmed only after the records it produced are written *and* `fdatasync`ed here.
//! - Movement seqs in the journal are contiguous and increasing, across segments.
//! - A segment is deleted only when every movement in it is covered by the acknowledged high-water mark, and only
//!   after that mark is itself durable (the `acked` file). The active segment is never deleted.
//! - The active segment always holds a copy of the latest state record, so deleting older segments never loses
//!   the workflow state.
//! - Recovery never deletes data: a torn tail (the last write of a crash) is truncated, anything else that fails its
//!   CRC is moved to `damaged/` for inspection, together with every later segment, and reported loudly.
//! - What recovery reports is durable: it syncs what it read before anything is replayed or built upon.
//!
//! # On-disk format
//!
//! ```text
//! journal/
//!   00000000000000000001.seg     segments, numbered by creation order (u64, zero padded)
//!   00000000000000000002.seg
//!   acked                        the acknowledged high-water mark: ASCII decimal + "\n", replaced atomically
//!   damaged/                     segments set aside by recovery, never read again by the agent
//!
//! segment  = magic "DHJ1" , record*
//! record   = len: u32 LE , crc: u32 LE (CRC-32 of payload) , payload[len]
//! payload  = kind: u8 , body
//!   kind 1 = movement, body = JSON of dockhand_protocol::sync::Movement
//!   kind 2 = state,    body = opaque bytes (the workflow state snapshot, JSON)
//! ```
//!
//! Every new segment starts with a copy of the latest state record, so deleting older segments never loses the
//! workflow state.
//!
//! # Recovery
//!
//! Segments are read in order. In the *last* segment, damage that reaches the end of the file (an incomplete header
//! or payload, a bad CRC on the final record, or a zero-filled tail as left by a power cut on ext4) is a torn write:
//! the file is truncated to the last good record. Any other damage means the disk lied or was altered: the good
//! prefix of that segment is kept (rewritten into a fresh file of the same name), the original and all later segments
//! are renamed into `damaged/`, and [`Recovery::damaged`] lists them. Records after the damage are then not replayed;
//! seqs resume after the last good movement, so contiguity holds.
//!
//! A roll-over cut short by a crash can leave the last segment without its copy of the state record (its header was
//! the torn write); recovery writes the latest state into it again, before an acknowledgement could delete the older
//! segment that still holds it. Finally recovery `fdatasync`s the last segment and the directory: after a `kill -9`
//! what it read may still be only in the page cache, and it must not be replayed, pushed to the server and then
//! lost to a power cut (its seqs would be given again, to different movements).
//!
//! # Full disks
//!
//! A full disk must cost the operator a refused scan, never a damaged journal (DESIGN §3.5). Before writing, an
//! append checks [`Limits`]: the journal's own quota (`max_bytes`, counted over all segment files) and the free
//! space the file system must keep (`min_free_bytes`, from `statvfs`). If the append, plus the header of a new
//! segment when it would roll, does not fit, it fails with [`JournalError::Full`] and not a byte is written.
//!
//! If a write or `fdatasync` still fails (a real `ENOSPC` raced past the check, or an I/O error), the active
//! segment is cut back to its length before the append and synced, so the file ends at the last good record and
//! later appends never sit behind a torn one; the error is [`JournalError::Full`] (no space) or
//! [`JournalError::WriteFailed`], and the journal stays usable. A failed roll-over removes the new segment file.
//! Only when that clean-up itself fails is the error [`JournalError::Io`]: the journal refuses every later append
//! ([`JournalError::Stopped`]), since one would land behind the torn bytes and be set aside as damage at the next
//! start, and the next recovery truncates the torn tail as after a crash. [`JournalError::is_intact`] tells the
//! cases apart.
//!
//! With a quota, segments are at most a quarter of it, so acknowledged segments can be deleted and free room
//! long before the quota is reached.
//!
//! # File system
//!
//! All I/O goes through [`fs::Fs`], [`fs::RealFs`] in production. Tests swap in a model disk (`sim::SimFs`, with
//! the `fault-injection` feature) that cuts power after any write-like operation or fails any one of them; see
//! `agent/tests/power_loss.rs`.

pub mod fs;
#[cfg(any(test, feature = "fault-injection"))]
pub mod sim;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dockhand_protocol::sync::Movement;
use serde::Serialize;

use self::fs::{Fs, FsFile, RealFs};

const MAGIC: &[u8; 4] = b"DHJ1";
const HEADER: usize = 8;
/// No record is larger; a bigger length field is damage, not a record.
pub const MAX_RECORD: usize = 1 << 20;
const KIND_MOVEMENT: u8 = 1;
const KIND_STATE: u8 = 2;
/// Default size after which a new segment is started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 << 20;

/// One journal record.
// Nearly every record is a movement; boxing it would add an allocation per scan for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A stock movement.
    Movement(Movement),
    /// A workflow state snapshot (opaque to the journal).
    State(Vec<u8>),
}

/// Errors of the journal. Any of them means the journal can no longer promise durability.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file system failed.
    #[error("journal I/O error at {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A caller tried to append a movement out of seq order.
    #[error("movement seq {got} appended after {last}; seqs must be contiguous")]
    OutOfOrder {
        /// The last seq in the journal.
        last: u64,
        /// The seq offered.
        got: u64,
    },
    /// A record is too large to be stored.
    #[error("record of {0} bytes exceeds the {MAX_RECORD}-byte limit")]
    TooLarge(usize),
    /// Not enough room for the append; nothing of it is in the journal, which stays usable.
    #[error("journal full: {0}")]
    Full(Shortage),
    /// A write or sync failed and the active segment was cut back to its last good record; the journal stays
    /// usable.
    #[error("journal write failed at {path} (cut back to the last good record): {source}")]
    WriteFailed {
        /// The segment involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// An earlier append failed with [`JournalError::Io`] and could not be undone: the journal takes no more
    /// appends until it is opened again, which truncates the torn bytes.
    #[error("journal stopped after an unrecoverable write error; restart to recover it")]
    Stopped,
}

impl JournalError {
    /// True when the journal is still consistent and usable after this error: the append was refused whole.
    /// False (an I/O error that could not be cleaned up) means the journal must not be used again.
    pub fn is_intact(&self) -> bool {
        !matches!(self, JournalError::Io { .. } | JournalError::Stopped)
    }
}

/// Which limit refused an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// The journal's quota (`max_journal_bytes`).
    Quota,
    /// The file system's free-space floor (`min_free_bytes`).
    FreeSpace,
    /// The file system itself reported no space (`ENOSPC`/`EDQUOT`) during the write.
    NoSpace,
}

/// Why an append did not fit, with the figures an operator needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shortage {
    /// The limit that refused it.
    pub limit: Limit,
    /// Bytes still available under that limit.
    pub free_bytes: u64,
    /// Bytes the append needed under that limit (for free space: the append plus the floor).
    pub needed_bytes: u64,
}

impl std::fmt::Display for Shortage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} free, {} needed",
            human_bytes(self.free_bytes),
            human_bytes(self.needed_bytes)
        )
    }
}

/// Bytes for a person: MiB with one decimal, smaller amounts in KiB or bytes.
pub fn human_bytes(n: u64) -> String {
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    match n {
        n if n >= MIB => format!("{:.1} MiB", n as f64 / MIB as f64),
        n if n >= KIB => format!("{:.1} KiB", n as f64 / KIB as f64),
        n => format!("{n} B"),
    }
}

/// Limits on the journal's disk use, checked before every append.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes all segment files together may hold; `None` for no quota.
    pub max_bytes: Option<u64>,
    /// Free space the file system must still have after an append; 0 turns the check off.
    pub min_free_bytes: u64,
}

/// Bytes available to an unprivileged writer on the file system holding `path` (`statvfs`: `f_bavail × f_frsize`).
#[allow(unsafe_code)]
pub fn free_space(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is NUL-terminated and outlives the call; `st` points to writable memory of the right type.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    // Both fields are u64 here but narrower on some 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (u64::from(st.f_bavail), u64::from(st.f_frsize));
    Ok(blocks.saturating_mul(size))
}

/// True for the errors a full file system or an exhausted disk quota gives.
fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Cuts `file` back to `len` bytes and makes that durable: undoes a failed append.
pub fn truncate_back(file: &mut dyn FsFile, len: u64) -> io::Result<()> {
    file.set_len(len)?;
    file.sync_data()
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What recovery found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Every movement still in the journal, in seq order.
    pub movements: Vec<Movement>,
    /// The latest state snapshot, if any.
    pub state: Option<Vec<u8>>,
    /// The durable acknowledged high-water mark.
    pub acked: u64,
    /// Bytes cut off a torn tail.
    pub truncated_bytes: u64,
    /// Files moved to `damaged/`.
    pub damaged: Vec<PathBuf>,
}

impl Recovery {
    /// The last movement seq ever written (or acked), so the next one is this + 1.
    pub fn last_seq(&self) -> u64 {
        self.movements.last().map_or(0, |m| m.seq).max(self.acked)
    }
}

#[derive(Debug)]
struct Segment {
    id: u64,
    path: PathBuf,
    max_seq: Option<u64>,
    len: u64,
}

/// An open journal, positioned for appending.
#[derive(Debug)]
pub struct Journal {
    /// Shared: tests keep a handle on the model disk to cut its power.
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    segments: Vec<Segment>,
    active: Box<dyn FsFile>,
    active_len: u64,
    segment_bytes: u64,
    limits: Limits,
    last_seq: u64,
    acked: u64,
    last_state: Option<Vec<u8>>,
    buf: Vec<u8>,
    /// Set when a failed append could not be undone; see [`JournalError::Stopped`].
    stopped: bool,
}

enum Scan {
    /// The whole file parsed.
    Clean,
    /// Damage at this offset that reaches the end of the file.
    TornAt(u64),
    /// Damage at this offset with more data after it.
    CorruptAt(u64),
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// The ids of the segment files in `dir`, oldest first.
fn segment_ids(fs: &dyn Fs, dir: &Path) -> Result<Vec<u64>, JournalError> {
    let mut ids: Vec<u64> = fs
        .list(dir)
        .map_err(io_err(dir))?
        .iter()
        .filter_map(|name| name.strip_suffix(".seg")?.parse().ok())
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// The seq of the first movement in a segment file, from its first 64 KiB (a segment starts with the magic, a
/// copy of the latest state record, then movements); `None` if unreadable or none there.
fn first_movement_seq(fs: &dyn Fs, path: &Path) -> Option<u64> {
    let head = fs.read(path, 64 << 10).ok()?;
    let mut first = None;
    let _ = scan_segment(&head, |record| {
        if let (None, Record::Movement(m)) = (first, &record) {
            first = Some(m.seq);
        }
        Ok(())
    });
    first
}

/// Reads back up to `max` durable movements with `seq > after` from the segment files in `dir`, oldest first,
/// while the writer keeps appending: the sync task's way to page through a backlog too large to keep in memory.
///
/// Only call it for seqs the writer has reported durable: the tail of the active segment may hold a record being
/// written, which parses as a torn tail and is left out. A segment deleted meanwhile (by an ack) held only
/// acknowledged movements and is skipped.
pub fn read_movements(dir: &Path, after: u64, max: usize) -> Result<Vec<Movement>, JournalError> {
    read_movements_on(&RealFs, dir, after, max)
}

/// [`read_movements`] on a given file system.
pub fn read_movements_on(
    fs: &dyn Fs,
    dir: &Path,
    after: u64,
    max: usize,
) -> Result<Vec<Movement>, JournalError> {
    let ids = segment_ids(fs, dir)?;
    // Start at the last segment whose first movement is at or before `after + 1`: older segments hold only what
    // was already read (a backlog of days would otherwise be re-read from its start at every refill).
    let mut start = 0;
    for (i, &id) in ids.iter().enumerate().rev() {
        match first_movement_seq(fs, &segment_path(dir, id)) {
            Some(first) if first <= after.saturating_add(1) => {
                start = i;
                break;
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for &id in &ids[start..] {
        let path = segment_path(dir, id);
        let data = match fs.read(&path, usize::MAX) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&path)(e)),
        };
        // Damage is recovery's business at the next start; here a bad record only ends what this segment gives.
        let _ = scan_segment(&data, |record| {
            if let Record::Movement(m) = record {
                if m.seq > after && out.len() < max {
                    out.push(m);
                }
            }
            Ok(())
        });
        if out.len() >= max {
            break;
        }
    }
    Ok(out)
}

fn sync_dir(fs: &dyn Fs, dir: &Path) -> Result<(), JournalError> {
    fs.sync_dir(dir).map_err(io_err(dir))
}

/// Creates `dir` if it is missing, and makes its name durable: a directory's name is durable only once its parent
/// is synced. After a `kill -9` there is no telling whether an earlier start created `dir` (or a parent of it) and
/// died before syncing, so every ancestor is synced, top down, at each open: a few `fsync`s of clean directories.
fn ensure_dir(fs: &dyn Fs, dir: &Path) -> Result<(), JournalError> {
    fs.create_dir_all(dir).map_err(io_err(dir))?;
    let mut parents: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    if dir.is_relative() {
        parents.push(Path::new("."));
    }
    for (i, p) in parents.iter().enumerate().rev() {
        match fs.sync_dir(p) {
            Ok(()) => {}
            // A directory this process may not read is not one it created (it would own it): not ours to sync.
            Err(e) if i > 0 && e.kind() == io::ErrorKind::PermissionDenied => {
                tracing::debug!(dir = %p.display(), error = %e, "journal: ancestor directory not synced")
            }
            Err(e) => return Err(io_err(p)(e)),
        }
    }
    Ok(())
}

/// Parses records from `data` (a whole segment), calling `on` for each good one. Returns how parsing ended.
fn scan_segment(data: &[u8], mut on: impl FnMut(Record) -> Result<(), ()>) -> Scan {
    // A segment whose magic never made it to disk whole is a torn creation: the header is its first write, and a
    // power cut may keep part of it, or none, with a zero-filled tail.
    let torn_magic = data.len() < MAGIC.len() || {
        let same = data.iter().zip(MAGIC).take_while(|(a, b)| a == b).count();
        same < MAGIC.len() && data[same..].iter().all(|&b| b == 0)
    };
    if torn_magic {
        return Scan::TornAt(0);
    }
    if &data[..4] != MAGIC {
        return Scan::CorruptAt(0);
    }
    let mut pos = MAGIC.len();
    loop {
        if pos == data.len() {
            return Scan::Clean;
        }
        let rest = &data[pos..];
        let torn_or_corrupt = |end: usize| {
            // Damage reaching EOF, or followed only by zeros, is the tail of an interrupted write.
            if end >= data.len() || data[end..].iter().all(|&b| b == 0) {
                Scan::TornAt(pos as u64)
            } else {
                Scan::CorruptAt(pos as u64)
            }
        };
        if rest.len() < HEADER {
            return torn_or_corrupt(data.len());
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len == 0 || len > MAX_RECORD {
            return torn_or_corrupt(pos + HEADER);
        }
        if rest.len() < HEADER + len {
            return Scan::TornAt(pos as u64);
        }
        let payload = &rest[HEADER..HEADER + len];
        let end = pos + HEADER + len;
        if crc32fast::hash(payload) != crc {
            return torn_or_corrupt(end);
        }
        let record = match decode_payload(payload) {
            Some(r) => r,
            // A record that passed its CRC but does not parse was written by a buggy or foreign writer.
            None => return Scan::CorruptAt(pos as u64),
        };
        if on(record).is_err() {
            return Scan::CorruptAt(pos as u64);
        }
        pos = end;
    }
}

fn decode_payload(payload: &[u8]) -> Option<Record> {
    let (&kind, body) = payload.split_first()?;
    match kind {
        KIND_MOVEMENT => serde_json::from_slice(body).ok().map(Record::Movement),
        KIND_STATE => Some(Record::State(body.to_vec())),
        _ => None,
    }
}

fn encode_record(record: &Record, out: &mut Vec<u8>) -> Result<(), JournalError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    match record {
        Record::Movement(m) => {
            out.push(KIND_MOVEMENT);
            serde_json::to_writer(&mut *out, m).map_err(|e| JournalError::Io {
                path: PathBuf::new(),
                source: io::Error::other(e),
            })?;
        }
        Record::State(s) => {
            out.push(KIND_STATE);
            out.extend_from_slice(s);
        }
    }
    let len = out.len() - start - HEADER;
    if len > MAX_RECORD {
        out.truncate(start);
        return Err(JournalError::TooLarge(len));
    }
    let crc = crc32fast::hash(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn read_acked(fs: &dyn Fs, dir: &Path) -> Result<u64, JournalError> {
    let path = dir.join("acked");
    match fs.read(&path, 64) {
        Ok(s) => Ok(std::str::from_utf8(&s)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                tracing::error!(path = %path.display(), "acked file unreadable; assuming nothing acked, the server will acknowledge replays");
                0
            })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Writes `data` to `dir/name` atomically and durably (temp file, fsync, rename, fsync dir).
///
/// On failure (a full disk) the temp file is removed, so it takes no space, and the old file is unchanged.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    write_atomic_on(&RealFs, dir, name, data)
}

/// [`write_atomic`] on a given file system.
pub fn write_atomic_on(fs: &dyn Fs, dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = fs.create(&tmp).and_then(|mut f| {
        f.append(data)?;
        f.sync_data()
    });
    if let Err(e) = written {
        let _ = fs.remove_file(&tmp);
        return Err(e);
    }
    fs.rename(&tmp, &dir.join(name))?;
    fs.sync_dir(dir)
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir` and recovers it. See the module doc.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<(Journal, Recovery), JournalError> {
        Journal::open_on(Arc::new(RealFs), dir, segment_bytes)
    }

    /// [`Journal::open`] on a given file system.
    pub fn open_on(
        fs: Arc<dyn Fs>,
        dir: &Path,
        segment_bytes: u64,
    ) -> Result<(Journal, Recovery), JournalError> {
        ensure_dir(&*fs, dir)?;
        let ids = segment_ids(&*fs, dir)?;
        let mut rec = Recovery {
            acked: read_acked(&*fs, dir)?,
            ..Recovery::default()
        };
        let mut segments = Vec::new();
        let mut damaged_from: Option<usize> = None;
        // Where the last segment's torn tail starts, and whether what is kept of it holds a state record.
        let mut torn_at = None;
        let mut last_has_state = false;
        let count = ids.len();
        for (i, &id) in ids.iter().enumerate() {
            let path = segment_path(dir, id);
            let data = fs.read(&path, usize::MAX).map_err(io_err(&path))?;
            let mut max_seq = None;
            let mut has_state = false;
            let before = rec.movements.len();
            let outcome = scan_segment(&data, |record| {
                match record {
                    Record::Movement(m) => {
                        let expect = rec.movements.last().map(|p| p.seq + 1);
                        if expect.is_some_and(|e| e != m.seq) || m.seq == 0 {
                            return Err(());
                        }
                        max_seq = Some(m.seq);
                        rec.movements.push(m);
                    }
                    Record::State(s) => {
                        rec.state = Some(s);
                        has_state = true;
                    }
                }
                Ok(())
            });
            last_has_state = has_state;
            let is_last = i + 1 == count;
            let len = match outcome {
                Scan::Clean => data.len() as u64,
                Scan::TornAt(at) if is_last => {
                    rec.truncated_bytes = data.len() as u64 - at;
                    tracing::warn!(
                        segment = %path.display(),
                        bytes = rec.truncated_bytes,
                        "journal: truncating the torn tail of an interrupted write"
                    );
                    // Cut when the segment is opened for appending, below.
                    torn_at = Some(at);
                    at.max(MAGIC.len() as u64)
                }
                Scan::TornAt(at) | Scan::CorruptAt(at) => {
                    tracing::error!(
                        segment = %path.display(),
                        offset = at,
                        kept_records = rec.movements.len() - before,
                        "journal: DAMAGED segment (bad CRC or garbage before the end); keeping the records before \
                         the damage and moving the segment and all later ones to journal/damaged/ for inspection"
                    );
                    damaged_from = Some(i);
                    let damaged_dir = dir.join("damaged");
                    fs.create_dir_all(&damaged_dir)
                        .map_err(io_err(&damaged_dir))?;
                    let aside = damaged_dir.join(format!("{id:020}.seg"));
                    fs.rename(&path, &aside).map_err(io_err(&path))?;
                    rec.damaged.push(aside);
                    // Damage in the magic itself keeps nothing, but the fresh file still needs a magic: appends
                    // to a file without one would be set aside as damage at the next start.
                    let kept = if at < MAGIC.len() as u64 {
                        &MAGIC[..]
                    } else {
                        &data[..at as usize]
                    };
                    let mut f = fs.create(&path).map_err(io_err(&path))?;
                    f.append(kept).map_err(io_err(&path))?;
                    f.sync_data().map_err(io_err(&path))?;
                    segments.push(Segment {
                        id,
                        path,
                        max_seq,
                        len: kept.len() as u64,
                    });
                    break;
                }
            };
            segments.push(Segment {
                id,
                path,
                max_seq,
                len,
            });
        }
        if let Some(i) = damaged_from {
            let damaged_dir = dir.join("damaged");
            for &id in &ids[i + 1..] {
                let path = segment_path(dir, id);
                let aside = damaged_dir.join(format!("{id:020}.seg"));
                fs.rename(&path, &aside).map_err(io_err(&path))?;
                tracing::error!(segment = %aside.display(), "journal: later segment set aside after damage");
                rec.damaged.push(aside);
            }
            sync_dir(&*fs, &damaged_dir)?;
        }

        let last_seq = rec.last_seq();
        let (active, active_len) = match segments.last_mut() {
            Some(seg) => {
                let mut f = fs.open_append(&seg.path).map_err(io_err(&seg.path))?;
                let restored = recover_tail(&mut *f, torn_at, rec.state.as_deref(), last_has_state)
                    .map_err(io_err(&seg.path))?;
                if restored {
                    tracing::warn!(segment = %seg.path.display(),
                        "journal: the last segment had lost its copy of the workflow state (a roll-over cut \
                         short); written again");
                }
                seg.len = f.size().map_err(io_err(&seg.path))?;
                let len = seg.len;
                (f, len)
            }
            None => {
                let id = 1;
                let path = segment_path(dir, id);
                let f = create_segment(&*fs, &path, MAGIC).map_err(io_err(&path))?;
                segments.push(Segment {
                    id,
                    path,
                    max_seq: None,
                    len: MAGIC.len() as u64,
                });
                (f, MAGIC.len() as u64)
            }
        };
        // Truncations, renames into damaged/ and a new first segment all become durable here.
        sync_dir(&*fs, dir)?;
        let journal = Journal {
            fs,
            dir: dir.to_path_buf(),
            segments,
            active,
            active_len,
            segment_bytes,
            limits: Limits::default(),
            last_seq,
            acked: rec.acked,
            last_state: rec.state.clone(),
            buf: Vec::new(),
            stopped: false,
        };
        Ok((journal, rec))
    }

    /// The last movement seq written (or acked).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The durable acknowledged high-water mark.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Number of segment files (for status and tests).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Sets the disk limits checked before every append (none by default).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Bytes held by all segment files.
    pub fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// The latest durable state snapshot, if any.
    pub fn last_state(&self) -> Option<&[u8]> {
        self.last_state.as_deref()
    }

    /// The size at which a new segment is started: the configured size, or a quarter of the quota if smaller, so
    /// that acknowledged segments can be deleted well before the quota is reached.
    fn roll_at(&self) -> u64 {
        let quarter = self.limits.max_bytes.map_or(u64::MAX, |q| q / 4);
        self.segment_bytes.min(quarter)
    }

    /// Appends records and makes them durable with one `fdatasync` (group commit).
    ///
    /// Refused whole, with nothing written, when it does not fit the [`Limits`] ([`JournalError::Full`]). After a
    /// failed write the segment is cut back to where it was, so the journal stays usable
    /// ([`JournalError::is_intact`]); only if that fails too must the journal not be used again, and it refuses
    /// every later append ([`JournalError::Stopped`]).
    pub fn append(&mut self, records: &[Record]) -> Result<(), JournalError> {
        if self.stopped {
            return Err(JournalError::Stopped);
        }
        if records.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        let mut last = self.last_seq;
        let mut max_seq = None;
        let mut new_state = None;
        for r in records {
            match r {
                Record::Movement(m) => {
                    if m.seq != last + 1 {
                        return Err(JournalError::OutOfOrder { last, got: m.seq });
                    }
                    last = m.seq;
                    max_seq = Some(m.seq);
                }
                Record::State(s) => new_state = Some(s),
            }
            encode_record(r, &mut self.buf)?;
        }
        let header = if self.active_len >= self.roll_at() {
            Some(self.segment_header()?)
        } else {
            None
        };
        let need = self.buf.len() as u64 + header.as_ref().map_or(0, |h| h.len() as u64);
        self.check_space(need)?;
        if let Some(header) = header {
            self.roll(&header, need)?;
        }
        let before = self.active_len;
        let written = self
            .active
            .append(&self.buf)
            .and_then(|()| self.active.sync_data());
        if let Err(e) = written {
            return Err(self.cut_back(before, e, self.buf.len() as u64));
        }
        self.active_len += self.buf.len() as u64;
        self.last_seq = last;
        if let Some(s) = new_state {
            self.last_state = Some(s.clone());
        }
        let seg = self.segments.last_mut().expect("active segment");
        seg.len = self.active_len;
        if let Some(seq) = max_seq {
            seg.max_seq = Some(seq);
        }
        Ok(())
    }

    /// Refuses an append of `need` bytes that would pass the quota or the free-space floor.
    fn check_space(&self, need: u64) -> Result<(), JournalError> {
        if let Some(max) = self.limits.max_bytes {
            let used = self.total_bytes();
            if used.saturating_add(need) > max {
                return Err(JournalError::Full(Shortage {
                    limit: Limit::Quota,
                    free_bytes: max.saturating_sub(used),
                    needed_bytes: need,
                }));
            }
        }
        if self.limits.min_free_bytes == 0 {
            return Ok(());
        }
        match self.fs.free_space(&self.dir) {
            Ok(free) => {
                let floor = need.saturating_add(self.limits.min_free_bytes);
                if free < floor {
                    return Err(JournalError::Full(Shortage {
                        limit: Limit::FreeSpace,
                        free_bytes: free,
                        needed_bytes: floor,
                    }));
                }
            }
            // Not knowing the free space is no reason to refuse a scan; a real ENOSPC is still handled.
            Err(e) => {
                tracing::debug!(error = %e, "journal: statvfs failed; free space not checked")
            }
        }
        Ok(())
    }

    /// Undoes a failed append of `need` bytes to the active segment by cutting it back to `len`. Returns the error
    /// to report: intact if the cut worked, [`JournalError::Io`] (journal stopped) if not.
    fn cut_back(&mut self, len: u64, cause: io::Error, need: u64) -> JournalError {
        let path = self.segments.last().expect("active segment").path.clone();
        if let Err(e) = truncate_back(&mut *self.active, len) {
            tracing::error!(segment = %path.display(), write_error = %cause, error = %e,
                "journal: could not cut the segment back after a failed write; the journal stops here and the \
                 torn tail is truncated at the next start");
            self.stopped = true;
            return JournalError::Io {
                path,
                source: cause,
            };
        }
        tracing::warn!(segment = %path.display(), error = %cause,
            "journal: write failed; segment cut back to its last good record");
        self.failed_write(path, cause, need)
    }

    /// Classifies a write error whose effects were undone: no space, or another write failure.
    fn failed_write(&self, path: PathBuf, cause: io::Error, need: u64) -> JournalError {
        if is_no_space(&cause) {
            let needed_bytes = need.saturating_add(self.limits.min_free_bytes);
            JournalError::Full(Shortage {
                limit: Limit::NoSpace,
                free_bytes: self.fs.free_space(&self.dir).unwrap_or(0),
                needed_bytes,
            })
        } else {
            JournalError::WriteFailed {
                path,
                source: cause,
            }
        }
    }

    /// What a new segment starts with: the magic and a copy of the latest state record.
    fn segment_header(&self) -> Result<Vec<u8>, JournalError> {
        let mut header = MAGIC.to_vec();
        if let Some(state) = &self.last_state {
            encode_record(&Record::State(state.clone()), &mut header)?;
        }
        Ok(header)
    }

    /// Starts a new active segment holding `header`, for an append of `need` bytes in all. On failure the new file
    /// is removed again and the current segment stays active.
    fn roll(&mut self, header: &[u8], need: u64) -> Result<(), JournalError> {
        let id = self.segments.last().map_or(1, |s| s.id + 1);
        let path = segment_path(&self.dir, id);
        let fs = &*self.fs;
        let created =
            create_segment(fs, &path, header).and_then(|f| fs.sync_dir(&self.dir).map(|()| f));
        let f = match created {
            Ok(f) => f,
            Err(cause) => {
                let removed = match fs.remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                    _ => fs.sync_dir(&self.dir),
                };
                if let Err(e) = removed {
                    tracing::error!(segment = %path.display(), write_error = %cause, error = %e,
                        "journal: could not remove a half-created segment; the journal stops here");
                    self.stopped = true;
                    return Err(JournalError::Io {
                        path,
                        source: cause,
                    });
                }
                tracing::warn!(segment = %path.display(), error = %cause,
                    "journal: could not start a new segment; removed it, the current one stays active");
                return Err(self.failed_write(path, cause, need));
            }
        };
        self.active = f;
        self.active_len = header.len() as u64;
        self.segments.push(Segment {
            id,
            path,
            max_seq: None,
            len: self.active_len,
        });
        Ok(())
    }

    /// Records that the server acknowledged every movement through `hw`: persists the mark first, then deletes the
    /// segments it fully covers. Returns how many segments were deleted.
    pub fn ack(&mut self, hw: u64) -> Result<usize, JournalError> {
        if hw <= self.acked {
            return Ok(0);
        }
        write_atomic_on(&*self.fs, &self.dir, "acked", format!("{hw}\n").as_bytes())
            .map_err(io_err(&self.dir.join("acked")))?;
        self.acked = hw;
        let active = self.segments.len() - 1;
        let deletable = self.segments[..active]
            .iter()
            .take_while(|s| s.max_seq.is_none_or(|m| m <= hw))
            .count();
        for _ in 0..deletable {
            // Forget a segment only once its file is gone, so `total_bytes` never undercounts.
            let path = &self.segments[0].path;
            self.fs.remove_file(path).map_err(io_err(path))?;
            self.segments.remove(0);
        }
        if deletable > 0 {
            sync_dir(&*self.fs, &self.dir)?;
        }
        Ok(deletable)
    }
}

/// Readies the last segment for appending after recovery: cuts its torn tail (`torn_at`), writes the latest
/// `state` into it again if what is left of it lost its copy, and syncs it, so that everything recovery read from
/// it is durable. Returns whether the state was written again.
fn recover_tail(
    f: &mut dyn FsFile,
    torn_at: Option<u64>,
    state: Option<&[u8]>,
    has_state: bool,
) -> Result<bool, io::Error> {
    match torn_at {
        // Not even the magic made it: the segment starts afresh.
        Some(at) if at < MAGIC.len() as u64 => {
            f.set_len(0)?;
            f.append(MAGIC)?;
        }
        Some(at) => f.set_len(at)?,
        None => {}
    }
    let restore = state.filter(|_| !has_state);
    if let Some(state) = restore {
        let mut buf = Vec::new();
        encode_record(&Record::State(state.to_vec()), &mut buf).map_err(io::Error::other)?;
        f.append(&buf)?;
    }
    f.sync_data()?;
    Ok(restore.is_some())
}

/// Creates a segment file holding `header` (the magic, maybe a state record) and syncs it.
fn create_segment(fs: &dyn Fs, path: &Path, header: &[u8]) -> io::Result<Box<dyn FsFile>> {
    let mut f = fs.create_new(path)?;
    f.append(header)?;
    f.sync_data()?;
    Ok(f)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dockhand_protocol::sync::{MovementKind, MovementSource};
    use proptest::prelude::*;
    use std::fs;

    /// A receipt of one unit with seq `seq` and lot `L<seq>` (also the writer's test fixture).
    pub(crate) fn mv(seq: u64) -> Movement {
        Movement {
            device_id: "hh-01".into(),
            seq,
            at: time::OffsetDateTime::UNIX_EPOCH,
            kind: MovementKind::Receive,
            gtin: "09506000134352".into(),
            lot: Some(format!("L{seq}")),
            expiry: None,
            serials: vec![],
            qty: 1,
            from_location: None,
            to_location: Some("DOCK-1".into()),
            sscc: None,
            reference: None,
            operator: None,
            source: MovementSource::Manual,
        }
    }

    fn append_n(j: &mut Journal, from: u64, n: u64) {
        for seq in from..from + n {
            j.append(&[Record::Movement(mv(seq))]).unwrap();
        }
    }

    fn seqs(r: &Recovery) -> Vec<u64> {
        r.movements.iter().map(|m| m.seq).collect()
    }

    fn only_segment(dir: &Path) -> PathBuf {
        let mut segs: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        segs.sort();
        segs.pop().unwrap()
    }

    #[test]
    fn append_and_recover() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, rec) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(rec.last_seq(), 0);
        append_n(&mut j, 1, 5);
        j.append(&[Record::State(b"{\"mode\":\"receiving\"}".to_vec())])
            .unwrap();
        drop(j);
        let (j, rec) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(seqs(&rec), vec![1, 2, 3, 4, 5]);
        assert_eq!(rec.state.as_deref(), Some(&b"{\"mode\":\"receiving\"}"[..]));
        assert_eq!(j.last_seq(), 5);
        assert!(rec.damaged.is_empty());
    }

    #[test]
    fn out_of_order_append_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        append_n(&mut j, 1, 2);
        let err = j.append(&[Record::Movement(mv(4))]).unwrap_err();
        assert!(matches!(err, JournalError::OutOfOrder { last: 2, got: 4 }));
    }

    #[test]
    fn torn_tails_are_truncated() {
        // Each case damages the end of the last record in a different way a crash can.
        type Damage = fn(&mut Vec<u8>);
        let cases: &[(&str, Damage)] = &[
            ("half a header", |d| d.extend_from_slice(&[9, 0, 0])),
            ("header without payload", |d| {
                d.extend_from_slice(&100u32.to_le_bytes());
                d.extend_from_slice(&[1, 2, 3, 4]);
            }),
            ("payload cut short", |d| {
                let n = d.len();
                d.truncate(n - 7);
            }),
            ("zero-filled tail", |d| d.extend_from_slice(&[0; 4096])),
            ("last record garbled", |d| {
                let n = d.len();
                d[n - 3] ^= 0xff;
            }),
        ];
        for (name, damage) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let (mut j, _) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
            append_n(&mut j, 1, 4);
            drop(j);
            let seg = only_segment(tmp.path());
            let mut data = fs::read(&seg).unwrap();
            damage(&mut data);
            fs::write(&seg, &data).unwrap();
            let (mut j, rec) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
            let want: Vec<u64> = if name.contains("cut") || name.contains("garbled") {
                vec![1, 2, 3]
            } else {
                vec![1, 2, 3, 4]
            };
            assert_eq!(seqs(&rec), want, "{name}");
            assert!(rec.damaged.is_empty(), "{name}");
            assert!(rec.truncated_bytes > 0, "{name}");
            // The journal continues cleanly after the cut.
            let next = want.len() as u64 + 1;
            j.append(&[Record::Movement(mv(next))]).unwrap();
            drop(j);
            let (_, rec) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
            assert_eq!(rec.movements.len() as u64, next, "{name}");
            assert_eq!(rec.truncated_bytes, 0, "{name}");
        }
    }

    #[test]
    fn bad_crc_in_the_middle_keeps_prefix_and_sets_segment_aside() {
        let tmp = tempfile::tempdir().unwrap();
        // Small segments so the damage is in a middle segment with later segments after it.
        let (mut j, _) = Journal::open(tmp.path(), 600).unwrap();
        append_n(&mut j, 1, 20);
        assert!(j.segment_count() >= 4, "{}", j.segment_count());
        drop(j);
        let mut segs: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        segs.sort();
        // Flip one byte inside the second record of the second segment.
        let victim = &segs[1];
        let mut data = fs::read(victim).unwrap();
        let first_len = u32::from_le_bytes(data[4..8].try_into().unwrap()) as usize;
        let second = 4 + HEADER + first_len;
        data[second + HEADER + 10] ^= 0x55;
        fs::write(victim, &data).unwrap();
        let mut before = 0;
        let _ = scan_segment(&fs::read(&segs[0]).unwrap(), |r| {
            before += usize::from(matches!(r, Record::Movement(_)));
            Ok(())
        });

        let (mut j, rec) = Journal::open(tmp.path(), 600).unwrap();
        // Everything before the damage survives: the first segment plus the first record of the second.
        assert_eq!(rec.movements.len(), before + 1);
        assert_eq!(seqs(&rec), (1..=before as u64 + 1).collect::<Vec<_>>());
        // The damaged segment and every later one are kept for inspection, not deleted.
        assert_eq!(rec.damaged.len(), segs.len() - 1);
        for d in &rec.damaged {
            assert!(d.exists(), "{}", d.display());
            assert!(d.starts_with(tmp.path().join("damaged")));
        }
        // Seqs continue after the last good one.
        assert_eq!(j.last_seq(), before as u64 + 1);
        j.append(&[Record::Movement(mv(before as u64 + 2))])
            .unwrap();
    }

    #[test]
    fn ack_deletes_only_fully_covered_segments_and_survives_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(tmp.path(), 600).unwrap();
        j.append(&[Record::State(b"s1".to_vec())]).unwrap();
        append_n(&mut j, 1, 20);
        let before = j.segment_count();
        assert_eq!(j.ack(0).unwrap(), 0);
        let deleted = j.ack(10).unwrap();
        assert!(deleted > 0 && deleted < before);
        drop(j);
        let (j, rec) = Journal::open(tmp.path(), 600).unwrap();
        assert_eq!(rec.acked, 10);
        assert_eq!(
            rec.state.as_deref(),
            Some(&b"s1"[..]),
            "state survives segment deletion"
        );
        // Movements 11..=20 are all still there; older ones may be gone.
        let s = seqs(&rec);
        assert!(s.first().copied().unwrap() <= 11);
        assert_eq!(*s.last().unwrap(), 20);
        assert_eq!(j.last_seq(), 20);
    }

    #[test]
    fn last_seq_survives_acking_everything() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(tmp.path(), 300).unwrap();
        append_n(&mut j, 1, 10);
        j.ack(10).unwrap();
        drop(j);
        let (j, _) = Journal::open(tmp.path(), 300).unwrap();
        assert_eq!(j.last_seq(), 10);
    }

    /// Sizes of the segment files on disk, in order.
    fn file_sizes(dir: &Path) -> Vec<u64> {
        let mut segs: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        segs.sort();
        segs.iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .collect()
    }

    #[test]
    fn quota_refuses_the_whole_append_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        let limits = Limits {
            max_bytes: Some(4096),
            min_free_bytes: 0,
        };
        j.set_limits(limits);
        j.append(&[Record::State(b"s1".to_vec())]).unwrap();
        let mut seq = 1;
        let shortage = loop {
            match j.append(&[Record::Movement(mv(seq))]) {
                Ok(()) => seq += 1,
                Err(JournalError::Full(s)) => break s,
                Err(e) => panic!("{e}"),
            }
            assert!(seq < 100, "quota never reached");
        };
        let durable = seq - 1;
        assert!(durable >= 5, "{durable}");
        assert_eq!(shortage.limit, Limit::Quota);
        assert!(shortage.free_bytes < shortage.needed_bytes, "{shortage:?}");
        assert_eq!(j.total_bytes(), file_sizes(tmp.path()).iter().sum::<u64>());
        assert!(j.total_bytes() <= 4096);
        // Refused again, with nothing written, however often it is tried; a state record too.
        let sizes = file_sizes(tmp.path());
        for _ in 0..3 {
            let err = j
                .append(&[Record::Movement(mv(seq)), Record::State(b"s2".to_vec())])
                .unwrap_err();
            assert!(matches!(err, JournalError::Full(_)) && err.is_intact());
        }
        assert_eq!(file_sizes(tmp.path()), sizes);
        assert_eq!(j.last_seq(), durable);
        assert_eq!(j.last_state(), Some(&b"s1"[..]));
        assert!(shortage.to_string().ends_with(" needed"), "{shortage}");
        drop(j);

        let (mut j, rec) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(seqs(&rec), (1..=durable).collect::<Vec<_>>());
        assert_eq!(rec.state.as_deref(), Some(&b"s1"[..]));
        assert_eq!(rec.truncated_bytes, 0);
        // Acknowledged segments go, and the next append fits: a quota keeps segments small enough for that.
        j.set_limits(limits);
        assert!(j.ack(durable).unwrap() > 0);
        j.append(&[Record::Movement(mv(durable + 1))]).unwrap();
        drop(j);
        let (_, rec) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(rec.last_seq(), durable + 1);
        assert_eq!(rec.state.as_deref(), Some(&b"s1"[..]));
    }

    #[test]
    fn free_space_floor_refuses_and_zero_turns_it_off() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        let free = free_space(tmp.path()).unwrap();
        assert!(free > 0);
        j.set_limits(Limits {
            max_bytes: None,
            min_free_bytes: u64::MAX / 2,
        });
        let err = j.append(&[Record::Movement(mv(1))]).unwrap_err();
        let JournalError::Full(s) = err else {
            panic!("{err}")
        };
        assert_eq!(s.limit, Limit::FreeSpace);
        assert!(s.needed_bytes > u64::MAX / 2);
        assert_eq!(file_sizes(tmp.path()), vec![MAGIC.len() as u64]);
        j.set_limits(Limits::default());
        j.append(&[Record::Movement(mv(1))]).unwrap();
    }

    #[test]
    fn human_bytes_cases() {
        for (n, want) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.5 KiB"),
            (16 << 20, "16.0 MiB"),
            ((3 << 30) + (1 << 29), "3584.0 MiB"),
        ] {
            assert_eq!(human_bytes(n), want, "{n}");
        }
    }

    #[test]
    fn truncate_back_leaves_the_segment_ending_at_the_last_good_record() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        append_n(&mut j, 1, 3);
        let good = j.active_len;
        // A failed append as a full disk leaves it: part of a record on disk.
        let mut partial = Vec::new();
        encode_record(&Record::Movement(mv(4)), &mut partial).unwrap();
        j.active.append(&partial[..partial.len() / 2]).unwrap();
        truncate_back(&mut *j.active, good).unwrap();
        // The append position follows the cut (O_APPEND), so the next record lands right after the good ones.
        j.append(&[Record::Movement(mv(4))]).unwrap();
        drop(j);
        let (_, rec) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(seqs(&rec), vec![1, 2, 3, 4]);
        assert_eq!(rec.truncated_bytes, 0);
        assert!(rec.damaged.is_empty());
    }

    // Regression tests for what the power-loss loops (agent/tests/power_loss.rs) found, on the model disk. Each
    // names the loop's replay coordinates, but those replay the same case only while the journal performs the same
    // operations in the same order, so each is also set up here directly.

    use super::sim::{Fault, OpClass, SimFs};

    const SIM_DIR: &str = "/data/journal";

    fn sim_open(fs: &Arc<SimFs>, segment_bytes: u64) -> (Journal, Recovery) {
        Journal::open_on(fs.clone(), Path::new(SIM_DIR), segment_bytes).unwrap()
    }

    /// Found at `DOCKHAND_SEED=0x5eed20261127 DOCKHAND_CUT=13`: a roll-over cut after the new segment's name
    /// reached the disk but before its header (magic + state copy) did left the last segment without the state;
    /// once an ack deleted the older segment, the workflow state was gone.
    #[test]
    fn regression_state_survives_a_roll_over_cut_before_its_header_reached_the_disk() {
        let mut found = 0;
        for seed in 0..16 {
            let fs = Arc::new(SimFs::new(seed));
            let (mut j, _) = sim_open(&fs, 300);
            j.append(&[Record::State(b"receiving ASN-7".to_vec())])
                .unwrap();
            append_n(&mut j, 1, 2);
            let segments = j.segment_count();
            // The next append rolls over: cut the power right after it creates the new file.
            fs.cut_power_after(1);
            assert!(j.append(&[Record::Movement(mv(3))]).is_err());
            drop(j);
            let crash = fs.reboot();
            let (mut j, rec) = sim_open(&fs, 300);
            if j.segment_count() > segments {
                // The new segment's name survived the cut, its header did not.
                found += 1;
                assert!(
                    rec.truncated_bytes == 0 && rec.damaged.is_empty(),
                    "{crash}"
                );
            }
            assert_eq!(
                rec.state.as_deref(),
                Some(&b"receiving ASN-7"[..]),
                "{crash}"
            );
            j.append(&[Record::Movement(mv(3))]).unwrap();
            assert!(j.ack(3).unwrap() > 0, "older segments deleted");
            drop(j);
            fs.reboot();
            let (_, rec) = sim_open(&fs, 300);
            assert_eq!(
                rec.state.as_deref(),
                Some(&b"receiving ASN-7"[..]),
                "seed {seed}: {crash}"
            );
            assert_eq!(rec.last_seq(), 3);
        }
        assert!(found > 0, "no seed kept the new segment's name");
    }

    /// Found at `DOCKHAND_SEED=0x5eed20261127 DOCKHAND_CUT=3` (a second cut during recovery) and in the recovery
    /// fault loop at cut 184: a segment whose creation was torn, its magic partly written and the rest zeros (the
    /// size reached the disk, the data did not), was set aside as damage instead of truncated. The "wrong magic"
    /// row pins a second bug this table found: damage in the magic itself left a fresh segment *without* a magic,
    /// so the next start set every append made to it aside as damage too.
    #[test]
    fn regression_a_torn_segment_creation_is_a_torn_tail_not_damage() {
        // (case, bytes of the newest segment, torn: truncated and not damage)
        let cases: &[(&str, Vec<u8>, bool)] = &[
            ("empty", vec![], true),
            ("half the magic", b"DH".to_vec(), true),
            (
                "half the magic, zero-filled",
                [&b"DH"[..], &[0; 2]].concat(),
                true,
            ),
            ("zero-filled block", vec![0; 4096], true),
            (
                "magic less a byte, zero-filled",
                [&b"DHJ"[..], &[0; 53]].concat(),
                true,
            ),
            ("wrong magic", b"DHJ2".to_vec(), false),
            ("zeros then data", [&[0; 8][..], b"data"].concat(), false),
        ];
        for (case, bytes, torn) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let (mut j, _) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
            append_n(&mut j, 1, 3);
            drop(j);
            fs::write(segment_path(tmp.path(), 2), bytes).unwrap();
            let (mut j, rec) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
            assert_eq!(seqs(&rec), vec![1, 2, 3], "{case}");
            assert_eq!(rec.damaged.is_empty(), *torn, "{case}: {:?}", rec.damaged);
            assert_eq!(
                rec.truncated_bytes,
                if *torn { bytes.len() as u64 } else { 0 },
                "{case}"
            );
            // Either way the journal goes on in a sound newest segment.
            j.append(&[Record::Movement(mv(4))]).unwrap();
            drop(j);
            let (_, rec) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
            assert_eq!(seqs(&rec), vec![1, 2, 3, 4], "{case}");
            assert!(rec.damaged.is_empty() && rec.truncated_bytes == 0, "{case}");
        }
    }

    /// Found at `DOCKHAND_SEED=0x5eed20261127 DOCKHAND_CUT=9` (kill -9 loop): after a `kill -9` between a write and
    /// its `fdatasync`, recovery read the record from the page cache and replayed it, but never synced it; a power
    /// cut then lost it, and its seq would have been given again, to another movement.
    #[test]
    fn regression_recovery_syncs_what_it_read_so_kill_9_then_power_cut_loses_nothing() {
        for seed in 0..8 {
            let fs = Arc::new(SimFs::new(seed));
            let (mut j, _) = sim_open(&fs, DEFAULT_SEGMENT_BYTES);
            append_n(&mut j, 1, 2);
            // Killed right after the write of seq 3, before its fdatasync.
            fs.cut_power_after(1);
            assert!(j.append(&[Record::Movement(mv(3))]).is_err());
            drop(j);
            fs.kill();
            let (j, rec) = sim_open(&fs, DEFAULT_SEGMENT_BYTES);
            assert_eq!(seqs(&rec), vec![1, 2, 3], "the page cache held seq 3");
            drop(j);
            let crash = fs.reboot();
            let (_, rec) = sim_open(&fs, DEFAULT_SEGMENT_BYTES);
            assert_eq!(seqs(&rec), vec![1, 2, 3], "seed {seed}: {crash}");
        }
    }

    /// Found by every cut point of the loops once the model disk made a new directory's name durable only with its
    /// parent synced: a fresh journal's first confirmed scans could vanish with the whole `journal/` directory. The
    /// second row was found at `DOCKHAND_SEED=1 DOCKHAND_CUT=1` (and `=42`) in the recovery fault loop: a start that
    /// created the directories and died before syncing left names only in the page cache, and the next start, which
    /// found them there, never synced them either.
    #[test]
    fn regression_the_journal_directory_is_durable_in_its_parents() {
        // (case, what an earlier start left behind)
        type Before = fn(&SimFs);
        let cases: &[(&str, Before)] = &[
            ("fresh disk", |_| {}),
            ("directories left by a killed start", |fs| {
                fs.create_dir_all(Path::new(SIM_DIR)).unwrap();
                fs.kill();
            }),
        ];
        for (case, before) in cases {
            for seed in 0..32 {
                let fs = Arc::new(SimFs::new(seed));
                before(&fs);
                let (mut j, _) = sim_open(&fs, DEFAULT_SEGMENT_BYTES);
                append_n(&mut j, 1, 1);
                drop(j);
                let crash = fs.reboot();
                let (_, rec) = sim_open(&fs, DEFAULT_SEGMENT_BYTES);
                assert_eq!(seqs(&rec), vec![1], "{case}, seed {seed}: {crash}");
            }
        }
    }

    /// A failed append whose cut-back fails too leaves torn bytes at the end of the segment. An append accepted
    /// after that would sit behind them: confirmed, then set aside as damage by the next recovery. So the journal
    /// refuses every append until it is reopened.
    #[test]
    fn regression_no_append_is_confirmed_behind_bytes_a_failed_cut_back_left() {
        let fs = Arc::new(SimFs::new(5));
        let (mut j, _) = sim_open(&fs, DEFAULT_SEGMENT_BYTES);
        append_n(&mut j, 1, 2);
        let seg = segment_path(Path::new(SIM_DIR), 1);
        let good = fs.contents(&seg).unwrap().len();
        // The write of seq 3 fails after part of it, and so does the truncation that would undo it.
        fs.inject(Fault::once(OpClass::Write, 1, libc::EIO));
        fs.inject(Fault::once(OpClass::Write, 2, libc::EIO));
        let err = j.append(&[Record::Movement(mv(3))]).unwrap_err();
        assert!(
            matches!(err, JournalError::Io { .. }) && !err.is_intact(),
            "{err}"
        );
        assert!(
            fs.contents(&seg).unwrap().len() > good,
            "torn bytes left behind"
        );
        // The disk is healthy again, the journal still refuses.
        fs.heal();
        for seq in [3, 3] {
            let err = j.append(&[Record::Movement(mv(seq))]).unwrap_err();
            assert!(
                matches!(err, JournalError::Stopped) && !err.is_intact(),
                "{err}"
            );
        }
        drop(j);
        // The agent restarts: recovery truncates the torn bytes and the journal goes on.
        fs.kill();
        let (mut j, rec) = sim_open(&fs, DEFAULT_SEGMENT_BYTES);
        assert_eq!(seqs(&rec), vec![1, 2]);
        assert!(rec.truncated_bytes > 0 && rec.damaged.is_empty());
        j.append(&[Record::Movement(mv(3))]).unwrap();
        drop(j);
        fs.reboot();
        let (_, rec) = sim_open(&fs, DEFAULT_SEGMENT_BYTES);
        assert_eq!(seqs(&rec), vec![1, 2, 3]);
        assert!(rec.damaged.is_empty());
    }

    /// A size-limited tmpfs, unmounted on drop. `None` when this process may not mount (not root).
    struct Tmpfs {
        dir: tempfile::TempDir,
    }

    impl Tmpfs {
        fn mount(bytes: u64) -> Option<Tmpfs> {
            let dir = tempfile::tempdir().ok()?;
            let ok = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
                .arg(dir.path())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            ok.then_some(Tmpfs { dir })
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg(self.dir.path())
                .status();
        }
    }

    /// A real ENOSPC in the middle of a write or of a roll-over, on a tiny tmpfs (skipped unless we may mount one).
    #[test]
    fn real_enospc_cuts_back_and_recovers_when_space_returns() {
        // (case, segment size): small segments make the roll-over meet the full disk; big ones a plain write,
        // which on tmpfs first writes what fits in its last page and then fails.
        for (case, segment_bytes) in [("roll-over", 2000), ("write", DEFAULT_SEGMENT_BYTES)] {
            let Some(fs) = Tmpfs::mount(64 << 10) else {
                eprintln!("skipped: cannot mount a tmpfs here (needs root)");
                return;
            };
            let dir = fs.dir.path().join("journal");
            let (mut j, _) = Journal::open(&dir, segment_bytes).unwrap();
            j.append(&[Record::State(b"s1".to_vec())]).unwrap();
            let filler = fs.dir.path().join("filler");
            fs::write(&filler, vec![7u8; 40 << 10]).unwrap();
            let mut seq = 1;
            let mut failures = Vec::new();
            while failures.len() < 5 {
                let before = file_sizes(&dir);
                match j.append(&[Record::Movement(mv(seq))]) {
                    Ok(()) => seq += 1,
                    Err(e) => {
                        assert!(e.is_intact(), "{case}: {e}");
                        let JournalError::Full(s) = &e else {
                            panic!("{case}: {e}")
                        };
                        assert_eq!(s.limit, Limit::NoSpace, "{case}");
                        // Not a byte of the failed append is left, and no half-made segment.
                        assert_eq!(file_sizes(&dir), before, "{case}");
                        failures.push(e);
                    }
                }
                assert!(seq < 1000, "{case}: the disk never filled");
            }
            let durable = seq - 1;
            eprintln!(
                "{case}: tmpfs full after {durable} appends: {}",
                failures[0]
            );
            drop(j);
            let (mut j, rec) = Journal::open(&dir, segment_bytes).unwrap();
            assert_eq!(seqs(&rec), (1..=durable).collect::<Vec<_>>(), "{case}");
            assert_eq!(rec.truncated_bytes, 0, "{case}");
            assert!(rec.damaged.is_empty(), "{case}");
            assert_eq!(rec.state.as_deref(), Some(&b"s1"[..]), "{case}");
            // Space returns: the next append simply works.
            fs::remove_file(&filler).unwrap();
            append_n(&mut j, durable + 1, 3);
            drop(j);
            let (_, rec) = Journal::open(&dir, segment_bytes).unwrap();
            assert_eq!(seqs(&rec), (1..=durable + 3).collect::<Vec<_>>(), "{case}");
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Append(u8),
        State,
        Ack(u8),
        Reopen,
        TearTail(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u8..5).prop_map(Op::Append),
            1 => Just(Op::State),
            2 => any::<u8>().prop_map(Op::Ack),
            1 => Just(Op::Reopen),
            1 => (1u8..40).prop_map(Op::TearTail),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// The journal against a Vec model: after any sequence of appends, acks, reopenings and torn tails, recovery
        /// yields exactly the unacked (and possibly some acked) movements, in order, and the latest state.
        #[test]
        fn model_based(ops in proptest::collection::vec(op(), 1..40)) {
            let tmp = tempfile::tempdir().unwrap();
            let (mut j, _) = Journal::open(tmp.path(), 700).unwrap();
            let mut model: Vec<u64> = Vec::new();
            let mut acked = 0u64;
            let mut state: Option<Vec<u8>> = None;
            let mut n_state = 0u32;
            for op in ops {
                match op {
                    Op::Append(n) => {
                        let start = model.last().copied().unwrap_or(acked).max(acked) + 1;
                        let recs: Vec<_> = (start..start + n as u64).map(|s| Record::Movement(mv(s))).collect();
                        j.append(&recs).unwrap();
                        model.extend(start..start + n as u64);
                    }
                    Op::State => {
                        n_state += 1;
                        let s = format!("state-{n_state}").into_bytes();
                        j.append(&[Record::State(s.clone())]).unwrap();
                        state = Some(s);
                    }
                    Op::Ack(k) => {
                        let hw = model.last().copied().unwrap_or(0).min(k as u64);
                        j.ack(hw).unwrap();
                        acked = acked.max(hw);
                    }
                    Op::Reopen => {
                        drop(j);
                        let (nj, rec) = Journal::open(tmp.path(), 700).unwrap();
                        j = nj;
                        let got = seqs(&rec);
                        let unacked: Vec<u64> = model.iter().copied().filter(|&s| s > acked).collect();
                        // Every unacked movement is there, in order, and nothing beyond the model.
                        prop_assert!(got.ends_with(&unacked), "got {:?} model {:?}", got, model);
                        prop_assert!(model.ends_with(&got));
                        prop_assert_eq!(rec.state.clone(), state.clone());
                        prop_assert_eq!(rec.acked, acked);
                        prop_assert!(rec.damaged.is_empty());
                    }
                    Op::TearTail(n) => {
                        // A crash in the middle of writing garbage of n bytes: simulate an incomplete record.
                        drop(j);
                        let seg = only_segment(tmp.path());
                        let mut data = fs::read(&seg).unwrap();
                        data.extend_from_slice(&(500u32).to_le_bytes());
                        data.extend(std::iter::repeat_n(0xAB, n as usize));
                        fs::write(&seg, &data).unwrap();
                        let (nj, rec) = Journal::open(tmp.path(), 700).unwrap();
                        j = nj;
                        prop_assert!(rec.truncated_bytes > 0);
                        prop_assert!(rec.damaged.is_empty());
                    }
                }
            }
        }
    }
}
