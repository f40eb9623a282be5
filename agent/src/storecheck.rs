//! Opening the local sled store so that damage is found at start and repaired by itself (DESIGN §4; STYLE: "ours
//! must recover by itself").
//!
//! # Why more than `sled::open`
//!
//! sled 0.34 treats a damaged log as a torn tail: a `db` file truncated, or overwritten with garbage, usually opens
//! without an error and silently holds less (an empty store when the damage is at the start). Other damage makes it
//! return an error or panic. So opening checks, in order, and any failure quarantines the store:
//!
//! 1. Shape: an existing store directory must hold `conf` and `db` as regular files.
//! 2. Open inside `catch_unwind`: a sled panic is damage, not a crash of the agent.
//! 3. Birth mark: a new store gets `meta/store_created` (flushed at once); an existing store whose mark is gone has
//!    lost its log from the start.
//! 4. Read-back: every entry of every tree is read once and checked by the caller's `check` (values decode).
//! 5. Clean-shutdown seal: [`seal`] (called when the agent stops) writes every tree's entry count to
//!    `dockhand.seal` inside the store. Opening compares and then deletes the seal (durably, before anything is
//!    written), so a store damaged while the agent was stopped is found even when sled truncates it quietly. After a
//!    crash there is no seal, and sled's own recovery (a consistent prefix) is accepted: everything in the store is
//!    rebuildable from the journal and the server, which is what start-up does anyway.
//!
//! A store locked by a running agent is never touched.
//!
//! ```text
//! dir/conf, dir/db, dir/blobs/   sled's own files
//! dir/dockhand.seal              JSON {"trees": {"<tree name>": <entry count>, ...}}, only between a clean stop and
//!                                the next start
//! meta/store_created             i64 big-endian, unix seconds of creation
//! ```
//!
//! Quarantine renames the directory to `sled.broken-<unix time>` beside it and logs one loud error; the caller
//! rebuilds (see [`crate::view`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::view::ViewError;

/// Seal file inside the store directory.
const SEAL_FILE: &str = "dockhand.seal";
const BIRTH_KEY: &str = "store_created";

/// `check(tree, key, value)`: rejects a stored entry that does not decode, saying why.
pub(crate) type CheckEntry = dyn Fn(&str, &[u8], &[u8]) -> Result<(), String>;

/// Why [`open_checked`] failed.
enum OpenFailure {
    /// Another process (a running agent) holds sled's lock.
    Locked(sled::Error),
    /// The store is damaged.
    Broken(String),
}

/// Opens the store in `dir`, quarantining and replacing a damaged one; returns the quarantine path when it did.
/// `check(tree, key, value)` rejects an entry that does not decode.
pub(crate) fn open(
    dir: &Path,
    cache_bytes: u64,
    check: &CheckEntry,
) -> Result<(sled::Db, Option<PathBuf>), ViewError> {
    let mut first = open_checked(dir, cache_bytes, check);
    // sled releases its file lock from a background thread a moment after the last handle is dropped, so a store
    // reopened within the same process (tests, a restarted run loop) can look locked for some milliseconds.
    for _ in 0..100 {
        match &first {
            Err(OpenFailure::Locked(_)) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
                first = open_checked(dir, cache_bytes, check);
            }
            _ => break,
        }
    }
    let why = match first {
        Ok(db) => return Ok((db, None)),
        Err(OpenFailure::Locked(e)) => return Err(e.into()),
        Err(OpenFailure::Broken(why)) => why,
    };
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut aside = dir.with_file_name(format!("sled.broken-{stamp}"));
    for n in 1.. {
        if !aside.exists() {
            break;
        }
        aside = dir.with_file_name(format!("sled.broken-{stamp}.{n}"));
    }
    tracing::error!(reason = %why, store = %dir.display(), moved_to = %aside.display(),
        "LOCAL STORE DAMAGED: quarantined it and rebuilding from the journal and the server (unsynced movements \
         from the journal, master data pulled again from cursor 0, site stock fetched again); keep the \
         quarantined copy for support");
    std::fs::rename(dir, &aside).map_err(sled::Error::Io)?;
    match open_checked(dir, cache_bytes, check) {
        Ok(db) => Ok((db, Some(aside))),
        Err(OpenFailure::Locked(e)) => Err(e.into()),
        Err(OpenFailure::Broken(message)) => Err(ViewError::Corrupt {
            tree: "(store)",
            key: dir.display().to_string(),
            message: format!("a fresh store will not open either: {message}"),
        }),
    }
}

/// Writes the clean-shutdown seal: flushes sled, then records every tree's entry count. Call it when nothing
/// writes the store any more.
pub(crate) fn seal(db: &sled::Db, dir: &Path) -> Result<(), ViewError> {
    db.flush()?;
    let counts = count(db).map_err(|message| ViewError::Corrupt {
        tree: "(store)",
        key: dir.display().to_string(),
        message,
    })?;
    let body = serde_json::json!({ "trees": counts }).to_string();
    let tmp = dir.join(format!(".{SEAL_FILE}.tmp"));
    std::fs::write(&tmp, body)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, dir.join(SEAL_FILE)))
        .and_then(|()| sync_dir(dir))
        .map_err(sled::Error::Io)?;
    Ok(())
}

/// Whether sled refused to open because another process holds the store (sled reports the failed `flock` as an
/// I/O error of kind `Other` with this text).
pub(crate) fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock"))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn count(db: &sled::Db) -> Result<BTreeMap<String, u64>, String> {
    let mut counts = BTreeMap::new();
    for name in db.tree_names() {
        let tree = db.open_tree(&name).map_err(|e| e.to_string())?;
        let n = tree.iter().keys().try_fold(0u64, |n, k| k.map(|_| n + 1));
        counts.insert(
            String::from_utf8_lossy(&name).into_owned(),
            n.map_err(|e| e.to_string())?,
        );
    }
    Ok(counts)
}

/// Steps 1 to 5 of the module doc.
fn open_checked(dir: &Path, cache_bytes: u64, check: &CheckEntry) -> Result<sled::Db, OpenFailure> {
    let existed = dir
        .read_dir()
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if existed {
        for file in ["conf", "db"] {
            match std::fs::symlink_metadata(dir.join(file)) {
                Ok(m) if m.is_file() => {}
                Ok(_) => return Err(OpenFailure::Broken(format!("{file} is not a regular file"))),
                Err(e) => return Err(OpenFailure::Broken(format!("{file}: {e}"))),
            }
        }
    }
    let seal = match std::fs::read(dir.join(SEAL_FILE)) {
        Ok(bytes) => Some(
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| {
                    serde_json::from_value::<BTreeMap<String, u64>>(v["trees"].clone()).ok()
                })
                .ok_or_else(|| OpenFailure::Broken(format!("{SEAL_FILE} does not decode")))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(OpenFailure::Broken(format!("{SEAL_FILE}: {e}"))),
    };
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(|e| match e {
                e if is_lock_error(&e) => OpenFailure::Locked(e),
                e => OpenFailure::Broken(format!("sled will not open it: {e}")),
            })?;
        let broken = |e: sled::Error| OpenFailure::Broken(e.to_string());
        let meta = db.open_tree("meta").map_err(broken)?;
        let born = meta.get(BIRTH_KEY).map_err(broken)?.is_some();
        let mut counts = BTreeMap::new();
        for name in db.tree_names() {
            let tree = db.open_tree(&name).map_err(broken)?;
            let name = String::from_utf8_lossy(&name).into_owned();
            let mut n = 0u64;
            for kv in tree.iter() {
                let (k, v) = kv.map_err(|e| OpenFailure::Broken(format!("tree {name:?}: {e}")))?;
                check(&name, &k, &v).map_err(|e| {
                    OpenFailure::Broken(format!(
                        "tree {name:?} key {:?}: {e}",
                        String::from_utf8_lossy(&k)
                    ))
                })?;
                n += 1;
            }
            counts.insert(name, n);
        }
        let entries: u64 = counts.values().sum();
        if existed && !born && entries == 0 {
            return Err(OpenFailure::Broken(
                "sled recovered an empty store from existing files: its log is damaged from the start".into(),
            ));
        }
        if let Some(sealed) = &seal {
            // Trees that hold nothing need not exist on both sides.
            let differs = sealed
                .iter()
                .filter(|(_, &n)| n > 0)
                .chain(counts.iter().filter(|(_, &n)| n > 0))
                .find(|(t, _)| {
                    sealed.get(*t).copied().unwrap_or(0) != counts.get(*t).copied().unwrap_or(0)
                });
            if let Some((tree, _)) = differs {
                return Err(OpenFailure::Broken(format!(
                    "tree {tree:?} holds {} entries, {} at the last clean shutdown: sled lost data",
                    counts.get(tree).copied().unwrap_or(0),
                    sealed.get(tree).copied().unwrap_or(0)
                )));
            }
        }
        if !born {
            // New store, or one from before the mark existed that still holds data.
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            meta.insert(BIRTH_KEY, &now.to_be_bytes()).map_err(broken)?;
            db.flush().map_err(broken)?;
        }
        Ok(db)
    }));
    let db = attempt.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        Err(OpenFailure::Broken(format!(
            "sled panicked while opening it: {message}"
        )))
    })?;
    if seal.is_some() {
        // Durably gone before anything is written: a later crash must not compare against a stale seal.
        std::fs::remove_file(dir.join(SEAL_FILE))
            .and_then(|()| sync_dir(dir))
            .map_err(|e| OpenFailure::Broken(format!("cannot remove {SEAL_FILE}: {e}")))?;
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::LocalView;
    use dockhand_protocol::sync::{Change, Item, Movement, MovementKind, MovementSource};
    use std::io::{Seek, SeekFrom, Write};

    fn mv(seq: u64) -> Movement {
        Movement {
            device_id: "hh".into(),
            seq,
            at: time::OffsetDateTime::UNIX_EPOCH,
            kind: MovementKind::Receive,
            gtin: "09506000134352".into(),
            lot: None,
            expiry: None,
            serials: vec![],
            qty: 1,
            from_location: None,
            to_location: Some(format!("A-{seq:04}")),
            sscc: None,
            reference: None,
            operator: None,
            source: MovementSource::Manual,
        }
    }

    fn item(i: u32) -> Change {
        Change::Item(Item {
            gtin: format!("{i:014}"),
            description: "a description long enough to fill sled's log with a few pages of data"
                .into(),
            unit: "EA".into(),
            lot_tracked: false,
            expiry_tracked: false,
            serial_tracked: false,
            active: true,
            unit_cost: None,
        })
    }

    /// A store with data, closed cleanly (sealed) or not.
    fn filled(dir: &Path, sealed: bool) {
        let (v, moved) = LocalView::open(dir).unwrap();
        assert!(moved.is_none());
        let ms: Vec<Movement> = (1..=300).map(mv).collect();
        v.apply(&ms).unwrap();
        v.apply_changes(&(0..500).map(item).collect::<Vec<_>>(), 9)
            .unwrap();
        if sealed {
            v.close().unwrap();
        } else {
            v.db().flush().unwrap();
        }
    }

    fn garbage(len: usize) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    fn truncate(path: &Path, to: impl Fn(u64) -> u64) {
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(to(len)).unwrap();
    }

    fn overwrite(path: &Path, at: impl Fn(u64) -> u64, n: usize) {
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        let len = f.metadata().unwrap().len();
        f.seek(SeekFrom::Start(at(len))).unwrap();
        f.write_all(&garbage(n)).unwrap();
    }

    fn replace_with_dir(path: &Path) {
        std::fs::remove_file(path).unwrap();
        std::fs::create_dir(path).unwrap();
        std::fs::write(path.join("x"), b"x").unwrap();
    }

    type Corruption = fn(&Path);

    /// Opens a store just dropped in this process: sled releases its lock from a background thread, a moment later.
    fn reopen(dir: &Path) -> (LocalView, Option<PathBuf>) {
        LocalView::open(dir).unwrap()
    }

    fn unlocked<T>(mut f: impl FnMut() -> Result<T, ViewError>) -> Result<T, ViewError> {
        for _ in 0..200 {
            match f() {
                Err(ViewError::Sled(e)) if is_lock_error(&e) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                r => return r,
            }
        }
        panic!("the store stays locked");
    }

    #[test]
    fn damaged_stores_are_quarantined_and_replaced() {
        let cases: &[(&str, bool, Corruption)] = &[
            ("db truncated to half", true, |d| {
                truncate(&d.join("db"), |l| l / 2)
            }),
            ("db truncated to 100 bytes", false, |d| {
                truncate(&d.join("db"), |_| 100)
            }),
            ("db truncated to nothing", false, |d| {
                truncate(&d.join("db"), |_| 0)
            }),
            ("random bytes at the start of db", false, |d| {
                overwrite(&d.join("db"), |_| 0, 8192)
            }),
            ("random bytes in the middle of db", true, |d| {
                overwrite(&d.join("db"), |l| l / 3, 8192)
            }),
            ("db all random", false, |d| {
                let len = std::fs::metadata(d.join("db")).unwrap().len() as usize;
                std::fs::write(d.join("db"), garbage(len)).unwrap();
            }),
            ("conf deleted", false, |d| {
                std::fs::remove_file(d.join("conf")).unwrap()
            }),
            ("db deleted", false, |d| {
                std::fs::remove_file(d.join("db")).unwrap()
            }),
            ("conf is garbage", false, |d| {
                std::fs::write(d.join("conf"), b"\xff\xfe garbage").unwrap()
            }),
            ("a directory where db should be", false, |d| {
                replace_with_dir(&d.join("db"))
            }),
            ("a directory where conf should be", false, |d| {
                replace_with_dir(&d.join("conf"))
            }),
            ("the seal is garbage", true, |d| {
                std::fs::write(d.join(SEAL_FILE), b"{").unwrap()
            }),
        ];
        for (name, sealed, corrupt) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("sled");
            filled(&dir, *sealed);
            corrupt(&dir);
            let opened = std::panic::catch_unwind(|| LocalView::open(&dir));
            let (v, moved) = match opened {
                Ok(Ok(x)) => x,
                Ok(Err(e)) => panic!("{name}: open failed: {e}"),
                Err(_) => panic!("{name}: a panic escaped"),
            };
            let moved = moved.unwrap_or_else(|| panic!("{name}: not quarantined"));
            assert!(moved.is_dir(), "{name}: {}", moved.display());
            assert!(moved
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("sled.broken-"));
            assert_eq!(v.applied_seq().unwrap(), 0, "{name}: a fresh store");
            assert_eq!(v.pull_cursor().unwrap(), 0, "{name}");
            assert!(v.stock().unwrap().is_empty(), "{name}");
            // The fresh store works and reopens without another quarantine.
            v.apply(&[mv(1)]).unwrap();
            drop(v);
            let (v, again) = reopen(&dir);
            assert!(again.is_none(), "{name}: quarantined twice");
            assert_eq!(v.applied_seq().unwrap(), 1, "{name}");
        }
    }

    #[test]
    fn healthy_stores_are_kept() {
        for sealed in [true, false] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("sled");
            filled(&dir, sealed);
            let (v, moved) = reopen(&dir);
            assert!(moved.is_none(), "sealed={sealed}");
            assert_eq!(v.applied_seq().unwrap(), 300);
            assert_eq!(v.master_counts().items, 500);
            assert!(!dir.join(SEAL_FILE).exists(), "the seal is used once");
            // Changed after the seal was consumed, then crashed (no new seal): still fine.
            v.apply(&[mv(301)]).unwrap();
            drop(v);
            let (v, moved) = reopen(&dir);
            assert!(moved.is_none());
            assert_eq!(v.applied_seq().unwrap(), 301);
        }
    }

    #[test]
    fn undecodable_values_are_found_at_open() {
        let cases: &[(&str, &str, &[u8])] = &[
            ("items", "09506000134352", b"{not json"),
            ("stock", "A\0G\0", b"\x01\x02"),
            ("meta", "applied_seq", b"\x01"),
            (
                crate::sitestock::UNSYNCED_TREE,
                "\0\0\0\0\0\0\0\x01",
                b"[[1,2]]",
            ),
            (crate::sitestock::STOCK_TREE, "no separators", &[0; 8]),
        ];
        for (tree, key, value) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("sled");
            filled(&dir, false);
            {
                let db = unlocked(|| Ok(sled::open(&dir)?)).unwrap();
                db.open_tree(tree).unwrap().insert(*key, *value).unwrap();
                db.flush().unwrap();
            }
            let (v, moved) = reopen(&dir);
            assert!(moved.is_some(), "{tree}: not quarantined");
            assert_eq!(v.applied_seq().unwrap(), 0);
        }
    }

    #[test]
    fn a_locked_store_is_never_quarantined() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sled");
        let (_held, _) = LocalView::open(&dir).unwrap();
        let err = LocalView::open(&dir).unwrap_err();
        assert!(
            matches!(&err, ViewError::Sled(e) if is_lock_error(e)),
            "{err}"
        );
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "nothing moved aside"
        );
    }
}
