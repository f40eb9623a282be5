//! Housekeeping of the agent's sled store: keep its size bounded relative to the data it holds.
//!
//! sled 0.34 reclaims space lazily; a store that churns (stock rows written and deleted, master data replaced page
//! by page) can grow far beyond its live data. At start, before the view opens it, [`bound_sled`] compares
//! `size_on_disk()` with the live data (the sum of key and value lengths over all trees) and, above
//! `max(64 MiB, 4 × live)`, rebuilds the store by copying every tree into a fresh one.
//!
//! # Invariants
//!
//! - The live store is replaced only by a complete copy: the copy is made, checked (same CRC over all trees as the
//!   original, see `sled::Db::checksum`), flushed and every file `fsync`ed before any rename.
//! - A crash at any point leaves either the old or the new store under the store's name, or neither with the
//!   complete new one beside it; [`bound_sled`] finishes or undoes the swap on the next start (below).
//! - sled is rebuildable (DESIGN §4), so the worst outcome of a failure here is the view's usual recovery, never a
//!   lost scan; errors are logged and the agent starts anyway. A sled panic (damaged stores can cause them) is
//!   caught and leaves the store to the view's check ([`crate::storecheck`]).
//! - Files of our own at the top of the store directory (the clean-shutdown seal) move into the copy, so the
//!   view's check still compares the store against the seal.
//! - Nothing is renamed or synced until sled has let go of the store: sled closes its files from background
//!   threads a moment after the last handle is dropped, so we wait for its `flock` on `db` to be free.
//!
//! # On disk, during a rebuild of `data_dir/sled`
//!
//! ```text
//! sled.rebuild/   the copy being built; complete once `sled` has been renamed to sled.old
//! sled.old/       the original store, between the two renames; deleted once the copy is in place
//! ```
//!
//! # Recovery of an interrupted swap
//!
//! | found                          | meaning                                  | action                       |
//! |--------------------------------|------------------------------------------|------------------------------|
//! | `sled` and `sled.rebuild`      | crashed while copying                    | delete `sled.rebuild`        |
//! | `sled.rebuild`, no `sled`      | crashed between the renames: copy done   | rename it to `sled`          |
//! | `sled` and `sled.old`          | crashed before deleting the original     | delete `sled.old`            |
//!
//! The store cannot be rebuilt while the agent runs: every task holds the view's trees, and sled offers no way to
//! swap its files under open handles. A long-running agent is compacted at its next start.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Below this size a store is never rebuilt: not worth the I/O.
pub const SLED_FLOOR_BYTES: u64 = 64 << 20;
/// A store is rebuilt when larger than this many times its live data (and above the floor).
pub const SLED_MAX_AMPLIFICATION: u64 = 4;
/// sled cache while housekeeping; the copy streams through it.
const CACHE_BYTES: u64 = 8 << 20;
/// How long to wait for sled to let go of a store after its last handle is dropped.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Errors of housekeeping. None of them is fatal to the agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HousekeepingError {
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// sled failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// sled still held the store after its handle was dropped.
    #[error("{0}: sled did not release the store")]
    Busy(PathBuf),
    /// The copy does not match the original.
    #[error("rebuilt store differs from the original (CRC {original:08x} vs {copy:08x}); kept the original")]
    Mismatch {
        /// Checksum of the original.
        original: u32,
        /// Checksum of the copy.
        copy: u32,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> HousekeepingError + '_ {
    move |source| HousekeepingError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`bound_sled`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SledReport {
    /// `size_on_disk()` before.
    pub size_before: u64,
    /// Sum of key and value lengths over all trees.
    pub live_bytes: u64,
    /// `size_on_disk()` after a rebuild; `None` when the store was within bounds.
    pub size_after: Option<u64>,
}

/// The size above which a store holding `live` bytes is rebuilt.
pub fn sled_bound(live: u64, floor: u64) -> u64 {
    floor.max(live.saturating_mul(SLED_MAX_AMPLIFICATION))
}

/// Bounds the sled store at `dir` (see the module doc), with the default floor. Call before the store is opened
/// by anyone else. Returns `Ok(None)` when there is no store yet or it cannot be opened (the view's own recovery
/// deals with that).
pub fn bound_sled(dir: &Path) -> Result<Option<SledReport>, HousekeepingError> {
    bound_sled_with(dir, SLED_FLOOR_BYTES)
}

/// [`bound_sled`] with an explicit floor (tests use a small one).
pub fn bound_sled_with(dir: &Path, floor: u64) -> Result<Option<SledReport>, HousekeepingError> {
    match std::panic::catch_unwind(|| bound(dir, floor)) {
        Ok(result) => result,
        Err(_) => {
            tracing::error!(store = %dir.display(),
                "housekeeping: sled panicked reading the store; left to the store check at open");
            // Whatever sled still holds is released before the view opens the store.
            wait_released(dir);
            Ok(None)
        }
    }
}

fn bound(dir: &Path, floor: u64) -> Result<Option<SledReport>, HousekeepingError> {
    finish_swap(dir)?;
    if !dir.exists() {
        return Ok(None);
    }
    wait_released(dir);
    let db = match open(dir) {
        Ok(db) => db,
        Err(e) => {
            tracing::debug!(error = %e, "housekeeping: sled store not opened; left to the view's recovery");
            return Ok(None);
        }
    };
    let size_before = db.size_on_disk()?;
    let live_bytes = live_bytes(&db)?;
    let mut report = SledReport {
        size_before,
        live_bytes,
        size_after: None,
    };
    let bound = sled_bound(live_bytes, floor);
    if size_before <= bound {
        drop(db);
        wait_released(dir);
        tracing::debug!(
            size_before,
            live_bytes,
            bound,
            "housekeeping: sled store within bounds"
        );
        return Ok(Some(report));
    }
    tracing::warn!(size_before, live_bytes, bound, store = %dir.display(),
        "housekeeping: sled store too large for its data; rebuilding it");
    let rebuild = sibling(dir, "rebuild");
    let copied = copy_store(&db, dir, &rebuild);
    drop(db);
    if let Err(e) = copied {
        let _ = fs::remove_dir_all(&rebuild);
        return Err(e);
    }
    if !wait_released(dir) {
        let _ = fs::remove_dir_all(&rebuild);
        return Err(HousekeepingError::Busy(dir.to_path_buf()));
    }
    let old = sibling(dir, "old");
    let parent = parent(dir);
    fs::rename(dir, &old).map_err(io_err(dir))?;
    sync_dir(parent)?;
    fs::rename(&rebuild, dir).map_err(io_err(&rebuild))?;
    sync_dir(parent)?;
    fs::remove_dir_all(&old).map_err(io_err(&old))?;
    sync_dir(parent)?;
    let size_after = open(dir)?.size_on_disk()?;
    wait_released(dir);
    report.size_after = Some(size_after);
    tracing::warn!(size_before, size_after, live_bytes, store = %dir.display(),
        "housekeeping: sled store rebuilt");
    Ok(Some(report))
}

fn open(dir: &Path) -> sled::Result<sled::Db> {
    sled::Config::new()
        .path(dir)
        .cache_capacity(CACHE_BYTES)
        .open()
}

/// Sum of key and value lengths over all trees.
pub fn live_bytes(db: &sled::Db) -> sled::Result<u64> {
    let mut total = 0u64;
    for name in db.tree_names() {
        for kv in db.open_tree(&name)?.iter() {
            let (k, v) = kv?;
            total += (k.len() + v.len()) as u64;
        }
    }
    Ok(total)
}

/// Waits until no handle holds sled's lock on the store at `dir`; false if it is still held after
/// [`RELEASE_WAIT`] (another process has it open).
fn wait_released(dir: &Path) -> bool {
    let path = dir.join("db");
    let end = Instant::now() + RELEASE_WAIT;
    loop {
        // No `db` file: nothing to hold. The probe's own lock goes when `file` is closed.
        let Ok(file) = File::open(&path) else {
            return true;
        };
        match try_lock(&file) {
            Ok(true) => return true,
            Ok(false) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            Ok(false) => return false,
            Err(e) => {
                tracing::debug!(error = %e, "housekeeping: flock probe failed; not waiting");
                return true;
            }
        }
    }
}

/// Takes the exclusive `flock` sled takes on its `db` file, without blocking: true if it was free.
#[allow(unsafe_code)]
fn try_lock(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: `file` keeps the descriptor open for the duration of the call; flock reads and writes no memory.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// True for sled's own files at the top of a store directory; anything else there is ours.
fn is_sled_file(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name == "conf" || name == "db" || name == "blobs" || name.starts_with("snap.")
}

/// Copies every tree of `db` (the store at `from`) into a fresh store at `to`, checks it, brings our own files
/// along, and makes it durable.
fn copy_store(db: &sled::Db, from: &Path, to: &Path) -> Result<(), HousekeepingError> {
    if to.exists() {
        fs::remove_dir_all(to).map_err(io_err(to))?;
    }
    let copy = open(to)?;
    for name in db.tree_names() {
        let src = db.open_tree(&name)?;
        let dst = copy.open_tree(&name)?;
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for kv in src.iter() {
            let (k, v) = kv?;
            batch.insert(k, v);
            n += 1;
            if n % 1024 == 0 {
                dst.apply_batch(std::mem::take(&mut batch))?;
            }
        }
        dst.apply_batch(batch)?;
    }
    let (original, copied) = (db.checksum()?, copy.checksum()?);
    if original != copied {
        return Err(HousekeepingError::Mismatch {
            original,
            copy: copied,
        });
    }
    copy.flush()?;
    drop(copy);
    if !wait_released(to) {
        return Err(HousekeepingError::Busy(to.to_path_buf()));
    }
    for entry in fs::read_dir(from).map_err(io_err(from))? {
        let entry = entry.map_err(io_err(from))?;
        let is_file = entry.file_type().map_err(io_err(from))?.is_file();
        if is_file && !is_sled_file(&entry.file_name()) {
            let target = to.join(entry.file_name());
            fs::copy(entry.path(), &target).map_err(io_err(&target))?;
        }
    }
    // sled's flush does not fsync (DESIGN §4): sync every file before the copy may replace the original.
    sync_tree(to)
}

/// `fsync`s every file and directory under `dir`, then `dir` itself.
fn sync_tree(dir: &Path) -> Result<(), HousekeepingError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io_err(&path))?;
        }
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), HousekeepingError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

fn parent(dir: &Path) -> &Path {
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    dir.with_file_name(name)
}

/// Finishes or undoes a swap interrupted by a crash (table in the module doc).
fn finish_swap(dir: &Path) -> Result<(), HousekeepingError> {
    let (rebuild, old) = (sibling(dir, "rebuild"), sibling(dir, "old"));
    if rebuild.exists() {
        if dir.exists() {
            tracing::warn!(path = %rebuild.display(), "housekeeping: removing an unfinished sled rebuild");
            fs::remove_dir_all(&rebuild).map_err(io_err(&rebuild))?;
        } else {
            tracing::warn!(path = %rebuild.display(), "housekeeping: completing an interrupted sled swap");
            fs::rename(&rebuild, dir).map_err(io_err(&rebuild))?;
        }
        sync_dir(parent(dir))?;
    }
    if old.exists() && dir.exists() {
        fs::remove_dir_all(&old).map_err(io_err(&old))?;
        sync_dir(parent(dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(db: &sled::Db, tree: &str, range: std::ops::Range<u32>, len: usize) {
        let t = db.open_tree(tree).unwrap();
        for i in range {
            t.insert(i.to_be_bytes(), vec![(i % 251) as u8; len])
                .unwrap();
        }
    }

    /// Every tree's name and key-value pairs, trees sorted by name.
    type Contents = Vec<(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>)>;

    fn snapshot(dir: &Path) -> Contents {
        // sled releases its lock from a background thread a moment after the last handle is dropped: wait for
        // it as the production path does (opening at once failed now and then with WouldBlock).
        assert!(wait_released(dir), "store still locked");
        let db = open(dir).unwrap();
        let mut names = db.tree_names();
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let kv = db
                    .open_tree(&n)
                    .unwrap()
                    .iter()
                    .map(|r| {
                        let (k, v) = r.unwrap();
                        (k.to_vec(), v.to_vec())
                    })
                    .collect();
                (n.to_vec(), kv)
            })
            .collect()
    }

    #[test]
    fn bloated_store_is_rebuilt_smaller_with_every_live_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sled");
        {
            let db = open(&dir).unwrap();
            // Churn: write 8 MiB several times over, then delete nearly all of it.
            for round in 0..4 {
                fill(&db, "stock", 0..4000, 2000 + round);
            }
            let stock = db.open_tree("stock").unwrap();
            for i in 100..4000u32 {
                stock.remove(i.to_be_bytes()).unwrap();
            }
            fill(&db, "items", 0..50, 300);
            db.insert("in-default-tree", "yes").unwrap();
            db.flush().unwrap();
        }
        fs::write(dir.join("dockhand.seal"), b"{\"trees\":{}}").unwrap();
        let before = snapshot(&dir);
        let report = bound_sled_with(&dir, 1 << 20).unwrap().unwrap();
        let after = report.size_after.expect("rebuilt");
        eprintln!(
            "sled: {} bytes on disk for {} live bytes, {after} after the rebuild",
            report.size_before, report.live_bytes
        );
        assert!(report.size_before > sled_bound(report.live_bytes, 1 << 20));
        assert!(
            after * 4 < report.size_before,
            "{after} not much smaller than {}",
            report.size_before
        );
        assert_eq!(snapshot(&dir), before, "every live key and value kept");
        assert_eq!(
            fs::read(dir.join("dockhand.seal")).unwrap(),
            b"{\"trees\":{}}",
            "our own files move with the store"
        );
        assert!(!sibling(&dir, "rebuild").exists() && !sibling(&dir, "old").exists());
        // Within bounds now: a second pass leaves it alone.
        let again = bound_sled_with(&dir, 1 << 20).unwrap().unwrap();
        assert_eq!(again.size_after, None);
    }

    #[test]
    fn small_store_is_left_alone_and_missing_store_is_fine() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sled");
        assert_eq!(bound_sled(&dir).unwrap(), None);
        {
            let db = open(&dir).unwrap();
            fill(&db, "stock", 0..100, 100);
            db.flush().unwrap();
        }
        let report = bound_sled(&dir).unwrap().unwrap();
        assert_eq!(report.size_after, None);
        assert_eq!(report.live_bytes, 100 * (4 + 100));
    }

    #[test]
    fn interrupted_swaps_are_finished_or_undone() {
        let make = |p: &Path| {
            let db = open(p).unwrap();
            db.insert("k", p.file_name().unwrap().to_str().unwrap())
                .unwrap();
            db.flush().unwrap();
        };
        // (case, which directories exist, the store name whose content survives under `sled`)
        let cases: &[(&str, &[&str], &str)] = &[
            ("crash while copying", &["sled", "sled.rebuild"], "sled"),
            (
                "crash between renames",
                &["sled.old", "sled.rebuild"],
                "sled.rebuild",
            ),
            (
                "crash before deleting the original",
                &["sled", "sled.old"],
                "sled",
            ),
        ];
        for (case, present, survivor) in cases {
            let tmp = tempfile::tempdir().unwrap();
            for name in *present {
                make(&tmp.path().join(name));
            }
            let dir = tmp.path().join("sled");
            finish_swap(&dir).unwrap();
            let db = open(&dir).unwrap();
            assert_eq!(
                db.get("k").unwrap().as_deref(),
                Some(survivor.as_bytes()),
                "{case}"
            );
            assert!(!sibling(&dir, "rebuild").exists(), "{case}");
            assert!(!sibling(&dir, "old").exists(), "{case}");
        }
    }
}
