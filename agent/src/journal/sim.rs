//! A model of a disk for crash and fault tests: a page cache over durable storage, power cuts, torn writes and
//! injected I/O errors, all deterministic from one seed (in the manner of SQLite's crash tests and TigerBeetle's
//! simulator).
//!
//! # The model
//!
//! ```text
//! file data   volatile bytes (what reads see)  ──sync_data──►  durable bytes (what survives a power cut)
//! names       volatile namespace               ──sync_dir───►  durable namespace
//!             (create, rename, remove, mkdir are queued in one ordered log until synced)
//! ```
//!
//! A power cut ([`SimFs::reboot`]) keeps, per file, its durable bytes; the namespace keeps its durable names plus a
//! seeded prefix of the queued name operations (a journaling file system commits them in order, but maybe not all
//! of them). A name whose directory never became durable in its parent is gone, and so is a file no durable name
//! points to. The last unsynced write, if it extended a file's durable bytes, may be torn: a seeded prefix of it
//! survives, possibly followed by zeros (the size reached the disk, the data did not: ext4 after a crash), either up
//! to the write's end or up to the next 4 KiB block.
//!
//! This is more conservative than ext4 in `data=ordered` mode, on purpose: a `sync_dir` makes durable only the
//! queued operations on that directory (and the ones they depend on, in order), never its own name in its parent,
//! and a `sync_data` never makes a new file's name durable. A rename is one operation, atomic on both sides.
//!
//! A [`SimFs::kill`] (`kill -9`) keeps everything: the page cache belongs to the kernel, not to the process.
//!
//! # Faults
//!
//! [`Fault`]s make the *n*-th operation of a class (write, sync, read) from now fail once, or fail from then on,
//! with an errno (`EIO`; `ENOSPC` only hits operations that allocate space). A failed append first writes a seeded
//! prefix of its data, as a real short write does. A failed `sync_data` leaves the data in the page cache but not
//! on disk (Linux after a failed `fsync`). [`SimFs::cut_power_after`] stops the disk after the *n*-th write-like
//! operation (anything but reads): every later operation fails with `EIO`, as if the process died there, until
//! [`SimFs::reboot`].
//!
//! # Every cut point from one run
//!
//! Cutting the power at operation *n* of a workload, for every *n*, costs a run per cut point. Instead
//! [`SimFs::record`] keeps a copy of the disk after every write-like operation (file bytes are shared and copied on
//! write, so a copy costs a few map entries) and [`SimFs::replay_point`] hands out the disk as it was after any one
//! of them, to cut its power or kill its process there. [`SimFs::fork`] copies a disk as it is now, e.g. to cut the
//! power a second time, at each point of a recovery.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::fs::{Fs, FsFile};

/// Block size for a zero-filled tail that runs to the end of a block.
const BLOCK: usize = 4096;

/// Which operations a [`Fault`] counts and hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpClass {
    /// Appends, truncation, creating, renaming and removing files, making directories.
    Write,
    /// `sync_data` and `sync_dir`.
    Sync,
    /// Reading a file or listing a directory.
    Read,
}

/// An injected I/O error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The operations counted.
    pub class: OpClass,
    /// The first failing operation: 1 is the next one of `class` (that `errno` can hit).
    pub nth: u64,
    /// The error, e.g. `libc::EIO` or `libc::ENOSPC`.
    pub errno: i32,
    /// Whether every later operation of the class fails too.
    pub forever: bool,
}

impl Fault {
    /// The `nth` operation of `class` from now fails with `errno`; the others succeed.
    pub fn once(class: OpClass, nth: u64, errno: i32) -> Fault {
        Fault {
            class,
            nth,
            errno,
            forever: false,
        }
    }

    /// The `nth` operation of `class` from now, and every later one, fails with `errno`.
    pub fn forever(class: OpClass, nth: u64, errno: i32) -> Fault {
        Fault {
            class,
            nth,
            errno,
            forever: true,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errno = match self.errno {
            libc::EIO => "EIO".to_string(),
            libc::ENOSPC => "ENOSPC".to_string(),
            n => format!("errno {n}"),
        };
        let when = if self.forever { "and later" } else { "once" };
        write!(f, "{errno} on {:?} op #{} {when}", self.class, self.nth)
    }
}

/// What a power cut did, for failure messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Crash {
    /// Name operations queued but not synced at the cut.
    pub queued_name_ops: usize,
    /// How many of them (a prefix) survived.
    pub kept_name_ops: usize,
    /// The torn last write, if there was an unsynced one that extended a surviving file.
    pub torn: Option<Torn>,
}

/// The part of a write that survived a power cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    /// The file written.
    pub path: PathBuf,
    /// Bytes the write had.
    pub written: usize,
    /// Bytes of it that survived.
    pub kept: usize,
    /// Zero bytes after them.
    pub zeros: usize,
}

impl fmt::Display for Crash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} unsynced name ops kept",
            self.kept_name_ops, self.queued_name_ops
        )?;
        match &self.torn {
            Some(t) => write!(
                f,
                ", last write to {} torn: {} of {} bytes kept + {} zeros",
                t.path.display(),
                t.kept,
                t.written,
                t.zeros
            ),
            None => write!(f, ", no torn write"),
        }
    }
}

/// The simulated disk. Share it as `Arc<SimFs>`; the journal takes it as `Arc<dyn Fs>`.
pub struct SimFs {
    disk: Arc<Mutex<Disk>>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = lock(&self.disk);
        f.debug_struct("SimFs")
            .field("boot", &d.boot)
            .field("write_ops", &d.ops)
            .field("powered_off", &d.off)
            .finish()
    }
}

impl SimFs {
    /// An empty disk holding only `/`; `seed` decides every torn write and surviving name operation.
    pub fn new(seed: u64) -> SimFs {
        let mut names = Namespace::new();
        names.insert(PathBuf::from("/"), BTreeMap::new());
        SimFs {
            disk: Arc::new(Mutex::new(Disk {
                durable_names: names.clone(),
                names,
                queued: Vec::new(),
                inodes: BTreeMap::new(),
                next_ino: 1,
                boot: 0,
                ops: 0,
                cut_at: None,
                off: false,
                last_write: None,
                faults: Vec::new(),
                fired: 0,
                rng: SplitMix64(seed),
                recorded: None,
            })),
        }
    }

    /// Cuts the power right after the `n`-th write-like operation from now (`n` ≥ 1): that operation completes in
    /// the page cache, every later one fails with `EIO` until [`SimFs::reboot`].
    pub fn cut_power_after(&self, n: u64) {
        let mut d = lock(&self.disk);
        d.cut_at = Some(d.ops + n.max(1));
    }

    /// True once the power is cut.
    pub fn powered_off(&self) -> bool {
        lock(&self.disk).off
    }

    /// Write-like operations (anything but reads) completed so far, over all boots.
    pub fn write_ops(&self) -> u64 {
        lock(&self.disk).ops
    }

    /// Loses power now (if it is not already off) and boots again: only durable state survives, see the module
    /// doc. Open files of the previous boot fail from now on. Faults are cleared: the disk is healthy again.
    pub fn reboot(&self) -> Crash {
        lock(&self.disk).power_cycle()
    }

    /// The process dies (`kill -9`) and starts again, the machine does not: everything written survives, open files
    /// of the previous process fail from now on. A power cut pending is cancelled, faults are cleared.
    pub fn kill(&self) {
        let mut d = lock(&self.disk);
        d.boot += 1;
        d.off = false;
        d.cut_at = None;
        d.faults.clear();
    }

    /// Adds an I/O error to inject; its count starts now.
    pub fn inject(&self, fault: Fault) {
        lock(&self.disk).faults.push(FaultState { fault, seen: 0 });
    }

    /// Removes every injected fault: the disk is healthy again.
    pub fn heal(&self) {
        lock(&self.disk).faults.clear();
    }

    /// Operations failed by injected faults so far, over all boots.
    pub fn faults_fired(&self) -> u64 {
        lock(&self.disk).fired
    }

    /// From now on keeps a copy of the disk after every write-like operation, for [`SimFs::replay_point`]: one run
    /// of a workload then gives every cut point, where cutting the power in a fresh run for each would cost a run
    /// each.
    pub fn record(&self) {
        lock(&self.disk).recorded = Some(Vec::new());
    }

    /// Write-like operations recorded so far.
    pub fn recorded(&self) -> usize {
        lock(&self.disk).recorded.as_ref().map_or(0, Vec::len)
    }

    /// The disk as it was right after the `n`-th recorded operation (1-based), power still on, with `seed` for what
    /// follows: [`SimFs::reboot`] it to cut the power there, [`SimFs::kill`] it for a `kill -9` there.
    pub fn replay_point(&self, n: usize, seed: u64) -> Option<SimFs> {
        let d = lock(&self.disk);
        let mut copy = d.recorded.as_ref()?.get(n.checked_sub(1)?)?.copy();
        copy.rng = SplitMix64(seed);
        Some(SimFs {
            disk: Arc::new(Mutex::new(copy)),
        })
    }

    /// An independent copy of the disk as it is now (a power cut pending included). Files opened on this one do
    /// not work on the copy.
    pub fn fork(&self) -> SimFs {
        let mut copy = lock(&self.disk).copy();
        copy.boot += 1;
        SimFs {
            disk: Arc::new(Mutex::new(copy)),
        }
    }

    /// The current (volatile) content of a file, for inspection; `None` if there is no such file.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let d = lock(&self.disk);
        match d.lookup(path) {
            Some(Node::File(ino)) => Some(d.inodes[&ino].data.to_vec()),
            _ => None,
        }
    }
}

fn lock(disk: &Mutex<Disk>) -> MutexGuard<'_, Disk> {
    // A test that panicked mid-operation leaves a consistent disk: every operation mutates after its checks.
    disk.lock().unwrap_or_else(|e| e.into_inner())
}

fn os(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}

/// SplitMix64: tiny, and its sequence for a seed never changes with a crate upgrade, so seeds replay forever.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(u64),
    Dir,
}

/// Directory path → its entries. A directory exists when it has a table here.
type Namespace = BTreeMap<PathBuf, BTreeMap<String, Node>>;

/// One queued name operation: its edits `(directory, name, new entry or none)` apply together.
#[derive(Debug, Clone)]
struct NameOp(Vec<(PathBuf, String, Option<Node>)>);

impl NameOp {
    fn touches(&self, dir: &Path) -> bool {
        self.0.iter().any(|(d, _, _)| d == dir)
    }

    fn apply(&self, ns: &mut Namespace) {
        for (dir, name, node) in &self.0 {
            let entries = ns.entry(dir.clone()).or_default();
            match node {
                Some(node) => {
                    entries.insert(name.clone(), *node);
                    if *node == Node::Dir {
                        ns.entry(dir.join(name)).or_default();
                    }
                }
                None => {
                    entries.remove(name);
                }
            }
        }
    }
}

/// A file's bytes. Shared, copied on write: a snapshot of the disk after every operation costs little.
#[derive(Debug, Clone, Default)]
struct Inode {
    data: Arc<Vec<u8>>,
    durable: Arc<Vec<u8>>,
}

/// The last unsynced append, which a power cut may tear.
#[derive(Debug, Clone)]
struct Write {
    ino: u64,
    off: usize,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
struct FaultState {
    fault: Fault,
    seen: u64,
}

/// What an operation is, for faults and the power-cut count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Mkdir,
    Create,
    Append,
    SetLen,
    Rename,
    Remove,
    SyncData,
    SyncDir,
    Read,
    List,
}

impl Op {
    fn class(self) -> OpClass {
        match self {
            Op::Mkdir | Op::Create | Op::Append | Op::SetLen | Op::Rename | Op::Remove => {
                OpClass::Write
            }
            Op::SyncData | Op::SyncDir => OpClass::Sync,
            Op::Read | Op::List => OpClass::Read,
        }
    }

    /// Operations that need free blocks, the only ones a full disk refuses.
    fn allocates(self) -> bool {
        matches!(self, Op::Mkdir | Op::Create | Op::Append)
    }
}

#[derive(Debug)]
struct Disk {
    names: Namespace,
    durable_names: Namespace,
    /// Name operations not yet synced, oldest first.
    queued: Vec<NameOp>,
    inodes: BTreeMap<u64, Inode>,
    next_ino: u64,
    /// Incremented by every reboot and kill; files opened before fail.
    boot: u64,
    /// Write-like operations completed.
    ops: u64,
    cut_at: Option<u64>,
    off: bool,
    last_write: Option<Write>,
    faults: Vec<FaultState>,
    /// Operations failed by faults.
    fired: u64,
    rng: SplitMix64,
    /// While recording: a copy of the disk after every write-like operation.
    recorded: Option<Vec<Disk>>,
}

impl Disk {
    /// Checks that `op` may run: the power is on and no fault hits it.
    fn begin(&mut self, op: Op) -> io::Result<()> {
        if self.off {
            return Err(os(libc::EIO));
        }
        let mut failure = None;
        for f in &mut self.faults {
            let hits =
                f.fault.class == op.class() && (f.fault.errno != libc::ENOSPC || op.allocates());
            if hits {
                f.seen += 1;
                if f.seen == f.fault.nth || (f.fault.forever && f.seen > f.fault.nth) {
                    failure.get_or_insert(f.fault.errno);
                }
            }
        }
        let errno = failure.map_or(Ok(()), |errno| Err(os(errno)));
        self.fired += u64::from(errno.is_err());
        errno
    }

    /// Counts a completed write-like operation; the power goes off after the chosen one.
    fn done(&mut self) {
        self.ops += 1;
        if self.cut_at == Some(self.ops) {
            self.off = true;
        }
        if self.recorded.is_some() {
            let copy = self.copy();
            self.recorded.get_or_insert_with(Vec::new).push(copy);
        }
    }

    /// A copy of the disk, without the recording.
    fn copy(&self) -> Disk {
        Disk {
            names: self.names.clone(),
            durable_names: self.durable_names.clone(),
            queued: self.queued.clone(),
            inodes: self.inodes.clone(),
            next_ino: self.next_ino,
            boot: self.boot,
            ops: self.ops,
            cut_at: self.cut_at,
            off: self.off,
            last_write: self.last_write.clone(),
            faults: self.faults.clone(),
            fired: self.fired,
            rng: self.rng.clone(),
            recorded: None,
        }
    }

    fn lookup(&self, path: &Path) -> Option<Node> {
        if path == Path::new("/") {
            return Some(Node::Dir);
        }
        let (dir, name) = split(path).ok()?;
        self.names.get(dir)?.get(name).copied()
    }

    fn file(&self, path: &Path) -> io::Result<u64> {
        match self.lookup(path) {
            Some(Node::File(ino)) => Ok(ino),
            Some(Node::Dir) => Err(os(libc::EISDIR)),
            None => Err(os(libc::ENOENT)),
        }
    }

    /// The entries of an existing directory.
    fn dir(&self, dir: &Path) -> io::Result<&BTreeMap<String, Node>> {
        match self.names.get(dir) {
            Some(entries) => Ok(entries),
            None if self.lookup(dir).is_some() => Err(os(libc::ENOTDIR)),
            None => Err(os(libc::ENOENT)),
        }
    }

    fn queue(&mut self, op: NameOp) {
        op.apply(&mut self.names);
        self.queued.push(op);
    }

    fn new_file(&mut self, path: &Path) -> io::Result<u64> {
        let (dir, name) = split(path)?;
        self.dir(dir)?;
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, Inode::default());
        self.queue(NameOp(vec![(
            dir.to_path_buf(),
            name.to_string(),
            Some(Node::File(ino)),
        )]));
        Ok(ino)
    }

    /// Makes the queued operations on `dir` durable, with every earlier one they depend on (same directories),
    /// in order.
    fn commit(&mut self, dir: &Path) {
        let Some(last) = self.queued.iter().rposition(|op| op.touches(dir)) else {
            return;
        };
        let mut dirs = BTreeSet::from([dir.to_path_buf()]);
        let mut take = vec![false; self.queued.len()];
        for i in (0..=last).rev() {
            if self.queued[i].0.iter().any(|(d, _, _)| dirs.contains(d)) {
                take[i] = true;
                dirs.extend(self.queued[i].0.iter().map(|(d, _, _)| d.clone()));
            }
        }
        let queued = std::mem::take(&mut self.queued);
        for (op, take) in queued.into_iter().zip(take) {
            if take {
                op.apply(&mut self.durable_names);
            } else {
                self.queued.push(op);
            }
        }
    }

    fn power_cycle(&mut self) -> Crash {
        let mut crash = Crash {
            queued_name_ops: self.queued.len(),
            kept_name_ops: self.rng.below(self.queued.len() + 1),
            torn: None,
        };
        for op in self.queued.drain(..crash.kept_name_ops) {
            op.apply(&mut self.durable_names);
        }
        self.queued.clear();
        // Only what hangs off `/` through durable directory entries survives.
        let mut reachable = BTreeSet::from([PathBuf::from("/")]);
        let mut files = BTreeMap::new();
        let mut stack = vec![PathBuf::from("/")];
        while let Some(dir) = stack.pop() {
            let entries = self.durable_names.entry(dir.clone()).or_default().clone();
            for (name, node) in entries {
                let path = dir.join(&name);
                match node {
                    Node::Dir => {
                        reachable.insert(path.clone());
                        stack.push(path);
                    }
                    Node::File(ino) => {
                        files.insert(ino, path);
                    }
                }
            }
        }
        self.durable_names.retain(|dir, _| reachable.contains(dir));
        self.inodes.retain(|ino, _| files.contains_key(ino));
        if let Some(w) = self.last_write.take() {
            let torn = self
                .inodes
                .get_mut(&w.ino)
                .filter(|inode| inode.durable.len() == w.off);
            if let (Some(inode), Some(path)) = (torn, files.get(&w.ino)) {
                let kept = self.rng.below(w.bytes.len() + 1);
                let end = w.off + kept;
                let zeros = match self.rng.below(3) {
                    0 => 0,
                    1 => w.bytes.len() - kept,
                    _ => end.div_ceil(BLOCK) * BLOCK - end,
                };
                let durable = Arc::make_mut(&mut inode.durable);
                durable.extend_from_slice(&w.bytes[..kept]);
                durable.resize(end + zeros, 0);
                crash.torn = Some(Torn {
                    path: path.clone(),
                    written: w.bytes.len(),
                    kept,
                    zeros,
                });
            }
        }
        for inode in self.inodes.values_mut() {
            inode.data = inode.durable.clone();
        }
        self.names.clone_from(&self.durable_names);
        self.boot += 1;
        self.off = false;
        self.cut_at = None;
        self.faults.clear();
        crash
    }
}

/// `(directory, name)` of an absolute path.
fn split(path: &Path) -> io::Result<(&Path, &str)> {
    match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        (Some(dir), Some(name)) if path.is_absolute() => Ok((dir, name)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("SimFs needs an absolute path to a file: {}", path.display()),
        )),
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut d = lock(&self.disk);
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(p) = at {
            match d.lookup(p) {
                Some(Node::Dir) => break,
                Some(Node::File(_)) => return Err(os(libc::ENOTDIR)),
                None => missing.push(p),
            }
            at = p.parent();
        }
        for p in missing.into_iter().rev() {
            d.begin(Op::Mkdir)?;
            let (parent, name) = split(p)?;
            d.queue(NameOp(vec![(
                parent.to_path_buf(),
                name.to_string(),
                Some(Node::Dir),
            )]));
            d.done();
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut d = lock(&self.disk);
        d.begin(Op::List)?;
        Ok(d.dir(dir)?.keys().cloned().collect())
    }

    fn read(&self, path: &Path, max: usize) -> io::Result<Vec<u8>> {
        let mut d = lock(&self.disk);
        d.begin(Op::Read)?;
        let data = &d.inodes[&d.file(path)?].data;
        Ok(data[..data.len().min(max)].to_vec())
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let d = lock(&self.disk);
        if d.off {
            return Err(os(libc::EIO));
        }
        let ino = d.file(path)?;
        Ok(self.handle(&d, ino, path))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let mut d = lock(&self.disk);
        d.begin(Op::Create)?;
        if d.lookup(path).is_some() {
            return Err(os(libc::EEXIST));
        }
        let ino = d.new_file(path)?;
        d.done();
        Ok(self.handle(&d, ino, path))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let mut d = lock(&self.disk);
        d.begin(Op::Create)?;
        let ino = match d.lookup(path) {
            Some(Node::File(ino)) => {
                // Emptying a file is a change of its data, durable with its next sync like any other.
                d.inodes.get_mut(&ino).expect("inode").data = Arc::default();
                if d.last_write.as_ref().is_some_and(|w| w.ino == ino) {
                    d.last_write = None;
                }
                ino
            }
            Some(Node::Dir) => return Err(os(libc::EISDIR)),
            None => d.new_file(path)?,
        };
        d.done();
        Ok(self.handle(&d, ino, path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut d = lock(&self.disk);
        d.begin(Op::Rename)?;
        let ino = d.file(from)?;
        let ((from_dir, from_name), (to_dir, to_name)) = (split(from)?, split(to)?);
        d.dir(to_dir)?;
        if d.lookup(to) == Some(Node::Dir) {
            return Err(os(libc::EISDIR));
        }
        d.queue(NameOp(vec![
            (
                to_dir.to_path_buf(),
                to_name.to_string(),
                Some(Node::File(ino)),
            ),
            (from_dir.to_path_buf(), from_name.to_string(), None),
        ]));
        d.done();
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut d = lock(&self.disk);
        d.begin(Op::Remove)?;
        d.file(path)?;
        let (dir, name) = split(path)?;
        d.queue(NameOp(vec![(dir.to_path_buf(), name.to_string(), None)]));
        d.done();
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut d = lock(&self.disk);
        d.begin(Op::SyncDir)?;
        d.dir(dir)?;
        d.commit(dir);
        d.done();
        Ok(())
    }

    /// Always 1 TiB: a full disk is modelled by `ENOSPC` faults, which is how a real one shows.
    fn free_space(&self, _dir: &Path) -> io::Result<u64> {
        if lock(&self.disk).off {
            return Err(os(libc::EIO));
        }
        Ok(1 << 40)
    }
}

impl SimFs {
    fn handle(&self, d: &Disk, ino: u64, path: &Path) -> Box<dyn FsFile> {
        Box::new(SimFile {
            disk: self.disk.clone(),
            ino,
            boot: d.boot,
            path: path.to_path_buf(),
        })
    }
}

/// An open file of a [`SimFs`], valid until the next reboot or kill.
struct SimFile {
    disk: Arc<Mutex<Disk>>,
    ino: u64,
    boot: u64,
    path: PathBuf,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimFile({}, boot {})", self.path.display(), self.boot)
    }
}

impl SimFile {
    /// The disk, if this handle is still from the running boot.
    fn disk(&self) -> io::Result<MutexGuard<'_, Disk>> {
        let d = lock(&self.disk);
        if d.boot != self.boot || !d.inodes.contains_key(&self.ino) {
            return Err(os(libc::EIO));
        }
        Ok(d)
    }
}

impl FsFile for SimFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let mut d = self.disk()?;
        let result = d.begin(Op::Append);
        // A failed write may still have written a prefix, as a short write before ENOSPC or EIO does.
        let n = match result {
            Ok(()) => data.len(),
            Err(_) if d.off => return result,
            Err(_) => d.rng.below(data.len()),
        };
        let inode = d.inodes.get_mut(&self.ino).expect("inode");
        let off = inode.data.len();
        Arc::make_mut(&mut inode.data).extend_from_slice(&data[..n]);
        d.last_write = Some(Write {
            ino: self.ino,
            off,
            bytes: data[..n].to_vec(),
        });
        result?;
        d.done();
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut d = self.disk()?;
        d.begin(Op::SyncData)?;
        let inode = d.inodes.get_mut(&self.ino).expect("inode");
        inode.durable = inode.data.clone();
        if d.last_write.as_ref().is_some_and(|w| w.ino == self.ino) {
            d.last_write = None;
        }
        d.done();
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut d = self.disk()?;
        d.begin(Op::SetLen)?;
        let len = usize::try_from(len).map_err(|_| os(libc::EFBIG))?;
        Arc::make_mut(&mut d.inodes.get_mut(&self.ino).expect("inode").data).resize(len, 0);
        // A pending write cut away or not: conservatively, only the durable bytes survive a cut now.
        if d.last_write.as_ref().is_some_and(|w| w.ino == self.ino) {
            d.last_write = None;
        }
        d.done();
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        let d = self.disk()?;
        if d.off {
            return Err(os(libc::EIO));
        }
        Ok(d.inodes[&self.ino].data.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    /// `/d` made durable, with `/d/f` holding `durable` (synced, name synced) then `pending` (not synced).
    fn disk_with(seed: u64, durable: &[u8], pending: &[u8]) -> SimFs {
        let fs = SimFs::new(seed);
        fs.create_dir_all(p("/d")).unwrap();
        fs.sync_dir(p("/")).unwrap();
        let mut f = fs.create_new(p("/d/f")).unwrap();
        f.append(durable).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(p("/d")).unwrap();
        if !pending.is_empty() {
            f.append(pending).unwrap();
        }
        fs
    }

    fn names(fs: &SimFs, dir: &str) -> Vec<String> {
        fs.list(p(dir)).unwrap_or_default()
    }

    /// Every outcome a power cut may give for a scenario, over many seeds.
    fn outcomes<T: Ord>(scenario: impl Fn(u64) -> T) -> BTreeSet<T> {
        (0..200).map(scenario).collect()
    }

    #[test]
    fn synced_data_survives_and_a_torn_append_keeps_a_prefix_maybe_zero_padded() {
        let seen = outcomes(|seed| {
            let fs = disk_with(seed, b"durable", b"0123456789");
            let crash = fs.reboot();
            let data = fs.contents(p("/d/f")).unwrap();
            assert!(data.starts_with(b"durable"), "{crash}");
            let tail = &data[7..];
            let torn = crash
                .torn
                .clone()
                .expect("the pending append is the torn write");
            assert_eq!(tail.len(), torn.kept + torn.zeros, "{crash}");
            assert_eq!(&tail[..torn.kept], &b"0123456789"[..torn.kept]);
            assert!(tail[torn.kept..].iter().all(|&b| b == 0));
            (torn.kept, torn.zeros > 0)
        });
        // Every tear byte from none to all of the write, with and without a zero tail.
        assert!((0..=10).all(|k| seen.contains(&(k, false))), "{seen:?}");
        assert!(seen.iter().any(|&(k, z)| z && k < 10), "{seen:?}");
    }

    #[test]
    fn name_operations_need_a_sync_of_their_directory() {
        // (case, operations after the durable setup, names in /d after the cut: possible outcomes)
        type Ops = fn(&SimFs);
        let cases: &[(&str, Ops, &[&[&str]])] = &[
            (
                "create, no dir sync",
                |fs| drop(fs.create_new(p("/d/g")).unwrap()),
                &[&["f"], &["f", "g"]],
            ),
            (
                "create, dir synced",
                |fs| {
                    drop(fs.create_new(p("/d/g")).unwrap());
                    fs.sync_dir(p("/d")).unwrap();
                },
                &[&["f", "g"]],
            ),
            (
                "create, file synced only",
                |fs| {
                    let mut g = fs.create_new(p("/d/g")).unwrap();
                    g.append(b"x").unwrap();
                    g.sync_data().unwrap();
                },
                &[&["f"], &["f", "g"]],
            ),
            (
                "rename, no dir sync",
                |fs| fs.rename(p("/d/f"), p("/d/g")).unwrap(),
                &[&["f"], &["g"]],
            ),
            (
                "remove, dir synced",
                |fs| {
                    fs.remove_file(p("/d/f")).unwrap();
                    fs.sync_dir(p("/d")).unwrap();
                },
                &[&[]],
            ),
            (
                "sync of another dir",
                |fs| {
                    fs.remove_file(p("/d/f")).unwrap();
                    fs.sync_dir(p("/")).unwrap();
                },
                &[&[], &["f"]],
            ),
        ];
        for (case, ops, want) in cases {
            let seen = outcomes(|seed| {
                let fs = disk_with(seed, b"x", b"");
                ops(&fs);
                fs.reboot();
                names(&fs, "/d")
            });
            let want: BTreeSet<Vec<String>> = want
                .iter()
                .map(|n| n.iter().map(|s| s.to_string()).collect())
                .collect();
            assert_eq!(seen, want, "{case}");
        }
    }

    #[test]
    fn a_new_directory_needs_a_sync_of_its_parent() {
        let seen = outcomes(|seed| {
            let fs = SimFs::new(seed);
            fs.create_dir_all(p("/a/b")).unwrap();
            let mut f = fs.create_new(p("/a/b/f")).unwrap();
            f.append(b"x").unwrap();
            f.sync_data().unwrap();
            fs.sync_dir(p("/a/b")).unwrap();
            fs.reboot();
            fs.contents(p("/a/b/f")).is_some()
        });
        assert_eq!(seen, BTreeSet::from([false, true]));
        // With the parents synced, top down, it always survives.
        let fs = SimFs::new(7);
        fs.create_dir_all(p("/a/b")).unwrap();
        for dir in ["/", "/a", "/a/b"] {
            fs.sync_dir(p(dir)).unwrap();
        }
        drop(fs.create_new(p("/a/b/f")).unwrap());
        fs.sync_dir(p("/a/b")).unwrap();
        fs.reboot();
        assert_eq!(fs.contents(p("/a/b/f")), Some(vec![]));
    }

    #[test]
    fn an_atomic_replace_leaves_the_old_or_the_new_file_never_a_mix() {
        let seen = outcomes(|seed| {
            let fs = disk_with(seed, b"old", b"");
            let mut t = fs.create(p("/d/.f.tmp")).unwrap();
            t.append(b"new").unwrap();
            t.sync_data().unwrap();
            fs.rename(p("/d/.f.tmp"), p("/d/f")).unwrap();
            fs.reboot();
            fs.contents(p("/d/f")).unwrap()
        });
        assert_eq!(seen, BTreeSet::from([b"old".to_vec(), b"new".to_vec()]));
    }

    #[test]
    fn power_cut_after_n_stops_every_later_operation_until_reboot() {
        let fs = SimFs::new(1);
        fs.create_dir_all(p("/d")).unwrap();
        let mut f = fs.create_new(p("/d/f")).unwrap();
        let before = fs.write_ops();
        fs.cut_power_after(2);
        f.append(b"a").unwrap();
        assert!(!fs.powered_off());
        f.sync_data().unwrap();
        assert!(fs.powered_off());
        assert_eq!(fs.write_ops(), before + 2);
        for err in [
            f.append(b"b").unwrap_err(),
            fs.list(p("/d")).unwrap_err(),
            fs.create_new(p("/d/g")).unwrap_err(),
        ] {
            assert_eq!(err.raw_os_error(), Some(libc::EIO));
        }
        fs.reboot();
        // Handles of the previous boot are dead; the disk works again.
        assert_eq!(f.append(b"c").unwrap_err().raw_os_error(), Some(libc::EIO));
        assert!(fs.list(p("/")).is_ok());
    }

    #[test]
    fn kill_keeps_the_page_cache() {
        let fs = disk_with(3, b"durable", b"+cached");
        fs.kill();
        assert_eq!(fs.contents(p("/d/f")).unwrap(), b"durable+cached");
    }

    #[test]
    fn faults_hit_the_nth_operation_of_their_class_once_or_forever() {
        // (fault, the class's operations' outcomes: true = ok)
        let cases = [
            (
                Fault::once(OpClass::Sync, 2, libc::EIO),
                [true, false, true, true],
            ),
            (
                Fault::forever(OpClass::Sync, 2, libc::EIO),
                [true, false, false, false],
            ),
            (
                Fault::once(OpClass::Write, 1, libc::EIO),
                [false, true, true, true],
            ),
            (
                Fault::forever(OpClass::Write, 3, libc::ENOSPC),
                [true, true, false, false],
            ),
        ];
        for (fault, want) in cases {
            let fs = disk_with(5, b"x", b"");
            let mut f = fs.open_append(p("/d/f")).unwrap();
            fs.inject(fault);
            let got: Vec<bool> = (0..4)
                .map(|_| match fault.class {
                    OpClass::Sync => f.sync_data().is_ok(),
                    _ => f.append(b"y").is_ok(),
                })
                .collect();
            assert_eq!(got, want, "{fault}");
        }
    }

    #[test]
    fn enospc_spares_operations_that_free_space_and_a_failed_append_may_write_a_prefix() {
        let fs = disk_with(9, b"x", b"");
        let mut f = fs.open_append(p("/d/f")).unwrap();
        fs.inject(Fault::forever(OpClass::Write, 1, libc::ENOSPC));
        let err = f.append(&[7; 100]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        let len = fs.contents(p("/d/f")).unwrap().len();
        assert!((1..101).contains(&len), "{len}");
        f.set_len(1).unwrap();
        fs.remove_file(p("/d/f")).unwrap();
        assert!(fs.create_new(p("/d/g")).is_err());
    }

    #[test]
    fn a_failed_sync_leaves_the_data_readable_but_not_durable() {
        let fs = disk_with(11, b"durable", b"");
        let mut f = fs.open_append(p("/d/f")).unwrap();
        f.append(b"+more").unwrap();
        fs.inject(Fault::once(OpClass::Sync, 1, libc::EIO));
        assert!(f.sync_data().is_err());
        assert_eq!(fs.contents(p("/d/f")).unwrap(), b"durable+more");
        f.set_len(7).unwrap();
        f.sync_data().unwrap();
        fs.reboot();
        assert_eq!(fs.contents(p("/d/f")).unwrap(), b"durable");
    }

    /// What a power cut and a kill leave of `/d/f` at each point of: create (1), append "a" (2), `sync_data` (3),
    /// `sync_dir` (4). A replay point is the disk right after that operation.
    #[test]
    fn replay_points_are_the_disk_after_each_recorded_operation() {
        let fs = SimFs::new(1);
        fs.create_dir_all(p("/d")).unwrap();
        fs.sync_dir(p("/")).unwrap();
        fs.record();
        let mut f = fs.create_new(p("/d/f")).unwrap();
        f.append(b"a").unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(p("/d")).unwrap();
        assert_eq!(fs.recorded(), 4);
        type Contents = Option<Vec<u8>>;
        let some = |s: &[u8]| Some(s.to_vec());
        // (point, after a kill, after a power cut: every outcome over the seeds)
        let cases: [(usize, Contents, BTreeSet<Contents>); 3] = [
            (1, some(b""), BTreeSet::from([None, some(b"")])),
            (3, some(b"a"), BTreeSet::from([None, some(b"a")])),
            (4, some(b"a"), BTreeSet::from([some(b"a")])),
        ];
        for (n, killed, cut) in cases {
            let disk = fs.replay_point(n, 0).unwrap();
            disk.kill();
            assert_eq!(disk.contents(p("/d/f")), killed, "kill at {n}");
            let seen = outcomes(|seed| {
                let disk = fs.replay_point(n, seed).unwrap();
                disk.reboot();
                disk.contents(p("/d/f"))
            });
            assert_eq!(seen, cut, "power cut at {n}");
        }
        // At 2 the append is unsynced: gone, torn, or whole, maybe zero-padded, if the name survived at all.
        let seen = outcomes(|seed| {
            let disk = fs.replay_point(2, seed).unwrap();
            disk.reboot();
            disk.contents(p("/d/f"))
        });
        assert!(seen.contains(&None) && seen.contains(&some(b"")) && seen.contains(&some(b"a")));
        assert!(seen
            .iter()
            .flatten()
            .all(|d| d.iter().skip(1).all(|&b| b == 0)));
        assert!(fs.replay_point(0, 0).is_none() && fs.replay_point(5, 0).is_none());
    }

    #[test]
    fn a_fork_is_independent_of_its_original() {
        let fs = disk_with(2, b"durable", b"+cached");
        let fork = fs.fork();
        fork.open_append(p("/d/f"))
            .unwrap()
            .append(b"+fork")
            .unwrap();
        fs.cut_power_after(1);
        fs.remove_file(p("/d/f")).unwrap();
        assert!(fs.powered_off() && !fork.powered_off());
        assert_eq!(fork.contents(p("/d/f")).unwrap(), b"durable+cached+fork");
        fork.reboot();
        assert_eq!(fork.contents(p("/d/f")).unwrap()[..7], b"durable"[..]);
    }
}
