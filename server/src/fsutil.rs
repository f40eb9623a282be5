//! Crash-safe file writes for everything the server keeps outside sled (keys, tokens, device records).
//!
//! A file is written to a temporary sibling, fsync'ed, then moved into place and the directory fsync'ed, so a
//! reader (another process, or the server after a power cut) sees either the old file or the complete new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// How [`write_atomic`] treats an existing file at the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace {
    /// Replace it.
    Yes,
    /// Fail with `ErrorKind::AlreadyExists`; decided atomically (a hard link never overwrites), so two
    /// concurrent writers cannot both succeed.
    No,
}

/// Writes `bytes` to `path` with permission `mode`, atomically and durably (see the module docs).
pub(crate) fn write_atomic(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    replace: Replace,
) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        match replace {
            Replace::Yes => fs::rename(&tmp, path)?,
            Replace::No => {
                fs::hard_link(&tmp, path)?;
                fs::remove_file(&tmp)?;
            }
        }
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nonce: u64 = rand::random();
    path.with_file_name(format!(".{name}.{}.{nonce:016x}.tmp", std::process::id()))
}
