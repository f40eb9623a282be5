//! The journal's file-system seam (STYLE: a trait at every I/O seam).
//!
//! [`Fs`] and [`FsFile`] hold exactly the operations the journal performs, so a model of a disk
//! (`journal::sim::SimFs`, feature `fault-injection`) can stand in for the real one and cut its power or fail any
//! one of them. The real implementation, [`RealFs`], is a pass-through to `std::fs`: one extra indirect call per
//! system call, which is noise beside the system call itself and nothing beside an `fdatasync` (measured: the same
//! 1.3 µs per one-record append on tmpfs as `std::fs::File` directly).
//!
//! The journal holds an `Arc<dyn Fs>` and `Box<dyn FsFile>`, not a type parameter: its type stays `Journal` for
//! the writer, the agent and their tests, and the one virtual call sits next to a system call. `Arc`, because a
//! test keeps a handle on the model disk to cut its power while the journal uses it.
//!
//! # The contract the journal relies on
//!
//! The journal assumes no more than POSIX promises, and the model grants no more:
//!
//! - [`FsFile::append`] data is durable only after [`FsFile::sync_data`] on that file returned `Ok`; until then a
//!   power cut may lose it, or keep any prefix of the last write followed by zeros.
//! - Creating, renaming and removing a name is durable only after [`Fs::sync_dir`] on the directory holding it;
//!   until then a power cut may undo it. A new directory needs a sync of its parent.
//! - A rename replaces its target atomically: after a crash the name holds the old file or the new one.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

/// The file-system operations of the journal. Paths are absolute or relative to the process's directory.
pub trait Fs: Send + Sync + fmt::Debug {
    /// Creates `dir` and any missing parents (`mkdir -p`).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names in `dir` that are valid UTF-8, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Up to `max` bytes from the start of the file at `path`.
    fn read(&self, path: &Path, max: usize) -> io::Result<Vec<u8>>;
    /// Opens an existing file for appending.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Creates a file that must not exist yet, for appending.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Creates a file, or empties an existing one, for appending.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the names in `dir` durable (`fsync` on the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Bytes available to an unprivileged writer on the file system holding `dir`.
    fn free_space(&self, dir: &Path) -> io::Result<u64>;
}

/// An open file, positioned at its end: every write appends (`O_APPEND`).
pub trait FsFile: Send + fmt::Debug {
    /// Writes all of `data` at the end of the file.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes the file's content durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes (or extends it with zeros); the next append lands at `len`.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// The file's current size in bytes.
    fn size(&self) -> io::Result<u64>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl Fs for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn read(&self, path: &Path, max: usize) -> io::Result<Vec<u8>> {
        let f = File::open(path)?;
        let size = usize::try_from(f.metadata()?.len()).unwrap_or(usize::MAX);
        let mut data = Vec::with_capacity(size.min(max));
        f.take(max as u64).read_to_end(&mut data)?;
        Ok(data)
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let f = OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(RealFile(f)))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let f = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)?;
        Ok(Box::new(RealFile(f)))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        // std refuses O_TRUNC with O_APPEND; emptying the file after opening it is the same here.
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        f.set_len(0)?;
        Ok(Box::new(RealFile(f)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn free_space(&self, dir: &Path) -> io::Result<u64> {
        super::free_space(dir)
    }
}

/// A real file opened with `O_APPEND`.
#[derive(Debug)]
struct RealFile(File);

impl FsFile for RealFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(data)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pass-through does what `std::fs` does, operation by operation.
    #[test]
    fn real_fs_cases() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = RealFs;
        let dir = tmp.path().join("a/b");
        fs.create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let mut f = fs.create_new(&path).unwrap();
        f.append(b"hello").unwrap();
        f.append(b" world").unwrap();
        f.sync_data().unwrap();
        assert_eq!(f.size().unwrap(), 11);
        f.set_len(5).unwrap();
        // O_APPEND: the next write lands at the new end.
        f.append(b"!").unwrap();
        drop(f);
        assert_eq!(fs.read(&path, usize::MAX).unwrap(), b"hello!");
        assert_eq!(fs.read(&path, 2).unwrap(), b"he");
        assert_eq!(
            fs.create_new(&path).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        fs.open_append(&path).unwrap().append(b"?").unwrap();
        assert_eq!(fs.read(&path, usize::MAX).unwrap(), b"hello!?");
        fs.create(&path).unwrap().append(b"new").unwrap();
        assert_eq!(fs.read(&path, usize::MAX).unwrap(), b"new");
        fs.rename(&path, &dir.join("g")).unwrap();
        fs.sync_dir(&dir).unwrap();
        assert_eq!(fs.list(&dir).unwrap(), vec!["g".to_string()]);
        fs.remove_file(&dir.join("g")).unwrap();
        assert!(fs.list(&dir).unwrap().is_empty());
        assert!(fs.free_space(&dir).unwrap() > 0);
        assert_eq!(
            fs.read(&path, 1).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
