//! Device credentials: enrollment, revocation, token lookup, and when each device was last seen.
//!
//! Handlers see the registry through [`DeviceRegistry`]; two implementations sit behind it, chosen with the
//! store (`run` in lib.rs, and `dockhand-server enroll`):
//!
//! - [`Devices`] (this file): one file per device in the data directory, beside the sled store;
//! - [`PgDevices`] (`devices/postgres.rs`): the `devices` table, beside the PostgreSQL store, so that every server
//!   node on the database sees an enrollment or revocation made through any of them at once.
//!
//! # On disk
//!
//! One file per device, written atomically (temp file, fsync, rename, fsync directory):
//!
//! ```text
//! <data>/devices/<device_id>.json
//!   {"device_id":"hh-01","site":"WH1","token_sha256":"<64 hex>","enrolled_at":"2026-11-26T10:15:00Z",
//!    "revoked_at":"2026-12-01T08:00:00Z",     optional: set by revoke, cleared by `enroll --rotate`
//!    "last_seen":"2026-12-01T07:59:58Z",      optional: last authenticated push or pull
//!    "backlog":12,                            optional: unacknowledged movements the device last reported
//!    "user_agent":"dockhand-agent/0.1.0"}     optional: the User-Agent of its last authenticated request
//! <data>/devices/.lock                        flock'ed around every read-modify-write of a device file
//! ```
//!
//! The optional fields were added with the office API (`user_agent` with the dashboard); files without them
//! (older servers) read as "never revoked, never seen". An older server refuses files that carry them (its record
//! denies unknown fields), so do not downgrade a data directory once devices have synced with this one.
//!
//! Devices live outside sled on purpose: sled holds an exclusive lock on its database, and
//! `dockhand-server enroll` must work while the server runs on the same directory. Because both processes rewrite
//! device files (enroll/rotate on one side, revoke and last-seen on the other), every read-modify-write holds an
//! exclusive `flock` on `.lock`, so neither can overwrite a token hash or a revocation with stale data.
//!
//! # Last seen and backlog
//!
//! Every authenticated push and pull calls [`DeviceRegistry::touch_agent`] with the request's `User-Agent` (agents
//! send `dockhand-agent/<version>`, so the office sees which devices still run old software; [`user_agent`] keeps
//! at most [`MAX_USER_AGENT`] printable ASCII characters of it). The latest value lives in memory (what the
//! office sees at once, `SeenCache`) and is written to the device file (or row) at most once per
//! [`SEEN_PERSIST_INTERVAL`] per device, on the request that finds the previous write old enough, and for every
//! device at shutdown ([`DeviceRegistry::flush_seen`]).
//! Writing on every request would put an fsync'ed file rewrite on each sync of hundreds of devices for a value
//! that is only informational; after a crash it is at most that interval stale.
//!
//! # Invariants
//!
//! - The token (256 random bits, hex) is shown once by `enroll`; only its SHA-256 is stored.
//! - A device's file is the truth. The server's in-memory map `sha256 -> device` is a cache: on a miss it
//!   reloads the directory once (so new enrollments work without a restart); on a hit it re-reads the device's
//!   file and accepts the token only if the file still holds that hash and no revocation (so `enroll --rotate`
//!   and revoke take effect at once, without a restart).
//! - A revoked device keeps its file (and the server keeps its movements); its token answers 401 "revoked".
//! - Looking up by digest does not leak the token through timing: an attacker learns at most about a hash.
//! - Device ids and sites are 1..=64 characters of `[A-Za-z0-9._-]`: safe as file names and as sled key
//!   segments (no NUL, no `/`). The id [`OFFICE_DEVICE`] is reserved for the server's own movements.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::fsutil::{write_atomic, Replace};
use crate::store::{StoreError, OFFICE_DEVICE};

mod postgres;

pub use self::postgres::PgDevices;

/// How often at most a device's last-seen time and backlog are written to its file (see the module docs).
pub const SEEN_PERSIST_INTERVAL: Duration = Duration::from_secs(5);

/// The stored record of an enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRecord {
    /// The device id, equal to the file name without `.json`.
    pub device_id: String,
    /// The site the device works at; its movements change this site's stock.
    pub site: String,
    /// SHA-256 of the device's bearer token, lowercase hex.
    pub token_sha256: String,
    /// When the current token was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub enrolled_at: OffsetDateTime,
    /// When the office revoked the device; its token is refused from then on.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub revoked_at: Option<OffsetDateTime>,
    /// The last authenticated push or pull (persisted lazily, see the module docs).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub last_seen: Option<OffsetDateTime>,
    /// Movements the device held unacknowledged when it last pushed, as it reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<u64>,
    /// The `User-Agent` of its last authenticated request that sent one (persisted with `last_seen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl DeviceRecord {
    /// The agent version the device last announced (`dockhand-agent/<version>` in `User-Agent`); `None` when it
    /// sent no such header (an older agent, another client).
    pub fn version(&self) -> Option<&str> {
        agent_version(self.user_agent.as_deref()?)
    }
}

/// The product token agents put first in `User-Agent`.
pub const AGENT_PRODUCT: &str = "dockhand-agent";

/// Longest `User-Agent` kept (longer ones are cut): a label for the office, not a place for a client to store data.
pub const MAX_USER_AGENT: usize = 128;

/// The version in a `User-Agent` that starts with `dockhand-agent/<version>` (RFC 9110 product token).
pub fn agent_version(user_agent: &str) -> Option<&str> {
    let product = user_agent.split_ascii_whitespace().next()?;
    let version = product.strip_prefix(AGENT_PRODUCT)?.strip_prefix('/')?;
    (!version.is_empty()).then_some(version)
}

/// A `User-Agent` header value as the registry keeps it: printable ASCII only (anything else dropped), trimmed,
/// at most [`MAX_USER_AGENT`] characters; `None` when nothing is left.
pub fn user_agent(raw: &[u8]) -> Option<String> {
    let kept: String = raw
        .iter()
        .filter(|b| (0x20..0x7f).contains(*b))
        .map(|b| char::from(*b))
        .take(MAX_USER_AGENT)
        .collect();
    let kept = kept.trim();
    (!kept.is_empty()).then(|| kept.to_string())
}

/// What a presented token turns out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// The current token of an active device.
    Valid(Device),
    /// The current token of a device the office revoked.
    Revoked(Device),
    /// No device holds it (never issued, or replaced by `--rotate`).
    Unknown,
}

/// An authenticated device, as handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its id.
    pub id: String,
    /// Its site.
    pub site: String,
}

/// Why enrollment or a device lookup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The device id is not 1..=64 characters of `[A-Za-z0-9._-]`.
    #[error("invalid device id {0:?}: use 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    InvalidId(String),
    /// The site is not 1..=64 characters of `[A-Za-z0-9._-]`.
    #[error("invalid site {0:?}: use 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    InvalidSite(String),
    /// The id is reserved for the server itself.
    #[error("device id {0:?} is reserved for the server's own movements")]
    Reserved(String),
    /// The device is enrolled already and `--rotate` was not given.
    #[error("device {0:?} is already enrolled; use --rotate to issue a new token (the old one stops working)")]
    AlreadyEnrolled(String),
    /// A device file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A device file does not hold a valid record.
    #[error("{path}: not a device record: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The database holding the registry failed ([`PgDevices`]).
    #[error("device registry database: {0}")]
    Store(#[from] StoreError),
}

/// The device registry as handlers, authentication and the CLI use it; see the module docs for the two
/// implementations. Every method blocks (files, or a database round trip): call them off the async workers.
pub trait DeviceRegistry: Send + Sync {
    /// What `token` is: an active device's, a revoked device's, or nobody's. Decided by the stored record at the
    /// time of the call, so a rotation or revocation made anywhere takes effect at once.
    fn check_token(&self, token: &str) -> Result<TokenCheck, DeviceError>;

    /// The device holding `token`, if it is a current credential of an active device.
    fn authenticate(&self, token: &str) -> Result<Option<Device>, DeviceError> {
        Ok(match self.check_token(token)? {
            TokenCheck::Valid(d) => Some(d),
            TokenCheck::Revoked(_) | TokenCheck::Unknown => None,
        })
    }

    /// The record of `device_id`, with the latest last-seen state this process knows; `None` if not enrolled.
    fn get(&self, device_id: &str) -> Result<Option<DeviceRecord>, DeviceError>;

    /// Every enrolled device, by id, with the latest last-seen state this process knows.
    fn list(&self) -> Result<Vec<DeviceRecord>, DeviceError>;

    /// Issues a new token for `device_id` at `site` and returns it (the only time it is seen); only its SHA-256
    /// is stored. An enrolled id fails with [`DeviceError::AlreadyEnrolled`] unless `rotate`, which replaces the
    /// token (the old one stops working), moves the device to `site`, lifts a revocation and keeps its last-seen
    /// state. The id [`OFFICE_DEVICE`] is refused.
    fn enroll(&self, device_id: &str, site: &str, rotate: bool) -> Result<String, DeviceError>;

    /// Revokes `device_id`: its token is refused (401 `revoked`) from now on; its movements stay. Revoking a
    /// revoked device changes nothing. `None` when no such device is enrolled.
    fn revoke(&self, device_id: &str) -> Result<Option<DeviceRecord>, DeviceError>;

    /// Records that `device_id` was just seen (an authenticated push or pull), with the backlog it reported
    /// (`None` keeps the last known one). Persisted at most once per [`SEEN_PERSIST_INTERVAL`] per device.
    fn touch(
        &self,
        device_id: &str,
        at: OffsetDateTime,
        backlog: Option<u64>,
    ) -> Result<(), DeviceError> {
        self.touch_agent(device_id, at, backlog, None)
    }

    /// [`touch`](Self::touch), also recording the request's `User-Agent` as cleaned by [`user_agent`] (`None`
    /// keeps the last known one), persisted with the last-seen time.
    fn touch_agent(
        &self,
        device_id: &str,
        at: OffsetDateTime,
        backlog: Option<u64>,
        user_agent: Option<&str>,
    ) -> Result<(), DeviceError>;

    /// Persists every device's unwritten last-seen state (at shutdown).
    fn flush_seen(&self) -> Result<(), DeviceError>;
}

/// Checks a device id or site name: 1..=64 characters of `[A-Za-z0-9._-]`.
pub fn is_valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && s != "."
        && s != ".."
}

/// Issues a new token for `device_id` at `site` and stores its hash in `devices_dir`; returns the token.
///
/// Fails with [`DeviceError::AlreadyEnrolled`] if the device exists, unless `rotate` is set, in which case the
/// old token stops working. Rotating a revoked device re-activates it under the new token (issuing a credential is
/// the office's explicit decision); its last-seen time and backlog are kept.
pub fn enroll(
    devices_dir: &Path,
    device_id: &str,
    site: &str,
    rotate: bool,
) -> Result<String, DeviceError> {
    check_enrollment(device_id, site)?;
    fs::create_dir_all(devices_dir).map_err(|source| io(devices_dir, source))?;
    let token = new_token();
    let path = device_path(devices_dir, device_id);
    let _lock = lock_dir(devices_dir)?;
    let previous = if rotate { read_record(&path)? } else { None };
    let record = DeviceRecord {
        device_id: device_id.to_string(),
        site: site.to_string(),
        token_sha256: token_digest_hex(&token),
        enrolled_at: OffsetDateTime::now_utc(),
        revoked_at: None,
        last_seen: previous.as_ref().and_then(|p| p.last_seen),
        backlog: previous.as_ref().and_then(|p| p.backlog),
        user_agent: previous.as_ref().and_then(|p| p.user_agent.clone()),
    };
    let replace = if rotate { Replace::Yes } else { Replace::No };
    match write_record(&path, &record, replace) {
        Err(DeviceError::Io { source, .. }) if source.kind() == ErrorKind::AlreadyExists => {
            Err(DeviceError::AlreadyEnrolled(device_id.to_string()))
        }
        other => other.map(|()| token),
    }
}

/// The rules every registry applies before enrolling: valid id and site, id not reserved.
fn check_enrollment(device_id: &str, site: &str) -> Result<(), DeviceError> {
    if !is_valid_name(device_id) {
        return Err(DeviceError::InvalidId(device_id.to_string()));
    }
    if device_id == OFFICE_DEVICE {
        return Err(DeviceError::Reserved(device_id.to_string()));
    }
    if !is_valid_name(site) {
        return Err(DeviceError::InvalidSite(site.to_string()));
    }
    Ok(())
}

/// A new device token: 256 random bits, lowercase hex.
fn new_token() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    hex::encode(secret)
}

/// SHA-256 of a token, lowercase hex, as stored in device files and the `devices` table.
pub fn token_digest_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The enrolled devices of one data directory, with a token lookup cache (see the module docs).
#[derive(Debug)]
pub struct Devices {
    dir: PathBuf,
    by_digest: RwLock<HashMap<String, Device>>,
    seen: SeenCache,
}

/// The in-memory last-seen state of one device.
#[derive(Debug, Clone)]
struct Seen {
    at: OffsetDateTime,
    backlog: Option<u64>,
    /// The latest `User-Agent` the device sent (see [`user_agent`]).
    user_agent: Option<String>,
    /// When the device reported `backlog` (its push's `at`); orders reports that reach different nodes.
    backlog_at: Option<OffsetDateTime>,
    /// When this state was last written to the registry; `None` if never by this process.
    persisted: Option<Instant>,
    /// Newer than the registry.
    dirty: bool,
}

/// Last-seen state in memory, handing out what is due for a write (see "Last seen and backlog" in the module docs).
#[derive(Debug, Default)]
struct SeenCache {
    map: Mutex<HashMap<String, Seen>>,
}

impl SeenCache {
    /// Records a sighting. Returns the state to write now when this device's last write is older than
    /// [`SEEN_PERSIST_INTERVAL`] (or there was none); the write is claimed here, so concurrent requests of the
    /// same device do not all write.
    fn note(
        &self,
        device_id: &str,
        at: OffsetDateTime,
        backlog: Option<u64>,
        user_agent: Option<&str>,
    ) -> Option<Seen> {
        let mut seen = self.lock();
        let entry = seen.entry(device_id.to_string()).or_insert(Seen {
            at,
            backlog: None,
            user_agent: None,
            backlog_at: None,
            persisted: None,
            dirty: true,
        });
        if let Some(agent) = user_agent.filter(|_| at >= entry.at) {
            if entry.user_agent.as_deref() != Some(agent) {
                entry.user_agent = Some(agent.to_string());
            }
        }
        entry.at = entry.at.max(at);
        if backlog.is_some() && entry.backlog_at.is_none_or(|b| b <= at) {
            entry.backlog = backlog;
            entry.backlog_at = Some(at);
        }
        entry.dirty = true;
        let due = entry
            .persisted
            .is_none_or(|p| p.elapsed() >= SEEN_PERSIST_INTERVAL);
        if due {
            entry.persisted = Some(Instant::now());
            entry.dirty = false;
        }
        due.then(|| entry.clone())
    }

    /// Every state newer than the registry, marked as written.
    fn take_dirty(&self) -> Vec<(String, Seen)> {
        let mut seen = self.lock();
        seen.iter_mut()
            .filter(|(_, s)| s.dirty)
            .map(|(id, s)| {
                s.dirty = false;
                s.persisted = Some(Instant::now());
                (id.clone(), s.clone())
            })
            .collect()
    }

    /// The in-memory state of `device_id`, if it was seen by this process.
    fn get(&self, device_id: &str) -> Option<Seen> {
        self.lock().get(device_id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        // Poison only means a panic elsewhere; the map holds nothing that could be half-updated dangerously.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Devices {
    /// Loads every device file of `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<Self, DeviceError> {
        fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
        let devices = Devices {
            dir: dir.to_path_buf(),
            by_digest: RwLock::new(HashMap::new()),
            seen: SeenCache::default(),
        };
        devices.reload()?;
        Ok(devices)
    }

    /// The directory holding the device files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The device holding `token`, if it is a current credential of an active device. Blocking: reads files.
    pub fn authenticate(&self, token: &str) -> Result<Option<Device>, DeviceError> {
        Ok(match self.check_token(token)? {
            TokenCheck::Valid(d) => Some(d),
            TokenCheck::Revoked(_) | TokenCheck::Unknown => None,
        })
    }

    /// What `token` is: an active device's, a revoked device's, or nobody's. Blocking: reads files.
    pub fn check_token(&self, token: &str) -> Result<TokenCheck, DeviceError> {
        let digest = token_digest_hex(token);
        let cached = self.cached(&digest);
        let device = match cached {
            Some(d) => d,
            None => {
                // Possibly enrolled since we last looked.
                self.reload()?;
                match self.cached(&digest) {
                    Some(d) => d,
                    None => return Ok(TokenCheck::Unknown),
                }
            }
        };
        // The cache may be stale after `enroll --rotate` or a revocation: the file decides.
        match self.get(&device.id)? {
            Some(record) if record.token_sha256 == digest => {
                let device = Device {
                    id: record.device_id,
                    site: record.site,
                };
                Ok(if record.revoked_at.is_some() {
                    TokenCheck::Revoked(device)
                } else {
                    TokenCheck::Valid(device)
                })
            }
            _ => {
                self.write_map().remove(&digest);
                Ok(TokenCheck::Unknown)
            }
        }
    }

    /// Every enrolled device by id, with the latest last-seen state (memory is newer than the files).
    /// Unreadable files are logged and skipped, as in authentication.
    pub fn list(&self) -> Result<Vec<DeviceRecord>, DeviceError> {
        let mut out = Vec::new();
        for (id, path) in self.files()? {
            match read_record(&path) {
                Ok(Some(r)) if r.device_id == id => out.push(self.with_seen(r)),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable device file skipped in the device list")
                }
            }
        }
        out.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        Ok(out)
    }

    /// Like [`Devices::get`], with the latest last-seen state from memory.
    pub fn get_current(&self, device_id: &str) -> Result<Option<DeviceRecord>, DeviceError> {
        Ok(self.get(device_id)?.map(|r| self.with_seen(r)))
    }

    /// Revokes `device_id`: its token is refused from now on; its movements stay. Revoking a revoked device
    /// changes nothing. `None` when no such device is enrolled. Blocking: rewrites the file.
    pub fn revoke(&self, device_id: &str) -> Result<Option<DeviceRecord>, DeviceError> {
        if !is_valid_name(device_id) {
            return Ok(None);
        }
        let path = device_path(&self.dir, device_id);
        let _lock = lock_dir(&self.dir)?;
        let Some(mut record) = read_record(&path)? else {
            return Ok(None);
        };
        if record.revoked_at.is_none() {
            record.revoked_at = Some(OffsetDateTime::now_utc());
            write_record(&path, &record, Replace::Yes)?;
            tracing::info!(device = %device_id, "device revoked; its pushes and pulls are refused from now on");
        }
        Ok(Some(self.with_seen(record)))
    }

    /// Records that `device_id` was just seen (an authenticated push or pull), with the backlog it reported (`None`
    /// keeps the last known one). Writes the device file when the last write is older than
    /// [`SEEN_PERSIST_INTERVAL`]. Blocking: may rewrite the file.
    pub fn touch(
        &self,
        device_id: &str,
        at: OffsetDateTime,
        backlog: Option<u64>,
    ) -> Result<(), DeviceError> {
        self.touch_agent(device_id, at, backlog, None)
    }

    /// [`Devices::touch`], also recording the request's cleaned `User-Agent` (`None` keeps the last known one).
    pub fn touch_agent(
        &self,
        device_id: &str,
        at: OffsetDateTime,
        backlog: Option<u64>,
        user_agent: Option<&str>,
    ) -> Result<(), DeviceError> {
        match self.seen.note(device_id, at, backlog, user_agent) {
            Some(state) => self.persist_seen(device_id, state),
            None => Ok(()),
        }
    }

    /// Writes every device's unwritten last-seen state to its file (at shutdown).
    pub fn flush_seen(&self) -> Result<(), DeviceError> {
        for (id, state) in self.seen.take_dirty() {
            self.persist_seen(&id, state)?;
        }
        Ok(())
    }

    fn persist_seen(&self, device_id: &str, state: Seen) -> Result<(), DeviceError> {
        let path = device_path(&self.dir, device_id);
        let _lock = lock_dir(&self.dir)?;
        let Some(mut record) = read_record(&path)? else {
            return Ok(());
        };
        let agent_news = state.user_agent.is_some() && record.user_agent != state.user_agent;
        if record.last_seen.is_some_and(|s| s >= state.at)
            && record.backlog == state.backlog
            && !agent_news
        {
            return Ok(());
        }
        record.last_seen = Some(record.last_seen.map_or(state.at, |s| s.max(state.at)));
        record.backlog = state.backlog;
        if agent_news {
            record.user_agent = state.user_agent;
        }
        write_record(&path, &record, Replace::Yes)
    }

    fn with_seen(&self, mut record: DeviceRecord) -> DeviceRecord {
        if let Some(s) = self.seen.get(&record.device_id) {
            if record.last_seen.is_none_or(|l| l < s.at) {
                record.last_seen = Some(s.at);
            }
            if s.backlog.is_some() {
                record.backlog = s.backlog;
            }
            if s.user_agent.is_some() {
                record.user_agent = s.user_agent;
            }
        }
        record
    }

    /// `(id, path)` of every plausible device file.
    fn files(&self) -> Result<Vec<(String, PathBuf)>, DeviceError> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(|source| io(&self.dir, source))?;
        for entry in entries {
            let entry = entry.map_err(|source| io(&self.dir, source))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if name.starts_with('.') || !is_valid_name(id) {
                continue;
            }
            out.push((id.to_string(), entry.path()));
        }
        Ok(out)
    }

    /// The stored record of `device_id`, if enrolled. Blocking: reads a file.
    pub fn get(&self, device_id: &str) -> Result<Option<DeviceRecord>, DeviceError> {
        if !is_valid_name(device_id) {
            return Ok(None);
        }
        read_record(&device_path(&self.dir, device_id))
    }

    fn cached(&self, digest: &str) -> Option<Device> {
        // A poisoned lock only means another request panicked mid-update of a cache we can rebuild.
        let map = self.by_digest.read().unwrap_or_else(|p| p.into_inner());
        map.get(digest).cloned()
    }

    fn write_map(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Device>> {
        self.by_digest.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Rebuilds the cache from the directory. A bad file is logged and skipped: one broken record must not
    /// lock every other device out.
    fn reload(&self) -> Result<(), DeviceError> {
        let mut map = HashMap::new();
        for (id, path) in self.files()? {
            match read_record(&path) {
                Ok(Some(r)) if r.device_id == id => {
                    map.insert(
                        r.token_sha256,
                        Device {
                            id: r.device_id,
                            site: r.site,
                        },
                    );
                }
                Ok(Some(r)) => {
                    tracing::warn!(path = %path.display(), device = %r.device_id, "device file name and id differ; ignored")
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "unreadable device file ignored"),
            }
        }
        *self.write_map() = map;
        Ok(())
    }
}

/// The file registry. The inherent methods of the same names are these; `get` here is [`Devices::get_current`]
/// (the file overlaid with this process's newer last-seen state), where the inherent [`Devices::get`] reads the
/// file alone.
impl DeviceRegistry for Devices {
    fn check_token(&self, token: &str) -> Result<TokenCheck, DeviceError> {
        Devices::check_token(self, token)
    }

    fn get(&self, device_id: &str) -> Result<Option<DeviceRecord>, DeviceError> {
        self.get_current(device_id)
    }

    fn list(&self) -> Result<Vec<DeviceRecord>, DeviceError> {
        Devices::list(self)
    }

    fn enroll(&self, device_id: &str, site: &str, rotate: bool) -> Result<String, DeviceError> {
        enroll(&self.dir, device_id, site, rotate)
    }

    fn revoke(&self, device_id: &str) -> Result<Option<DeviceRecord>, DeviceError> {
        Devices::revoke(self, device_id)
    }

    fn touch_agent(
        &self,
        device_id: &str,
        at: OffsetDateTime,
        backlog: Option<u64>,
        user_agent: Option<&str>,
    ) -> Result<(), DeviceError> {
        Devices::touch_agent(self, device_id, at, backlog, user_agent)
    }

    fn flush_seen(&self) -> Result<(), DeviceError> {
        Devices::flush_seen(self)
    }
}

fn device_path(dir: &Path, device_id: &str) -> PathBuf {
    dir.join(format!("{device_id}.json"))
}

/// Holds an exclusive lock on `<dir>/.lock` until dropped (see the module docs). Blocking.
fn lock_dir(dir: &Path) -> Result<fs::File, DeviceError> {
    let path = dir.join(".lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| io(&path, source))?;
    file.lock().map_err(|source| io(&path, source))?;
    Ok(file)
}

fn write_record(path: &Path, record: &DeviceRecord, replace: Replace) -> Result<(), DeviceError> {
    let json = serde_json::to_vec_pretty(record).map_err(|e| DeviceError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_atomic(path, &json, 0o600, replace).map_err(|source| io(path, source))
}

fn read_record(path: &Path) -> Result<Option<DeviceRecord>, DeviceError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io(path, source)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| DeviceError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

fn io(path: &Path, source: std::io::Error) -> DeviceError {
    DeviceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_table() {
        let cases: &[(&str, bool)] = &[
            ("hh-01", true),
            ("a", true),
            ("A.b_c-9", true),
            ("", false),
            (".", false),
            ("..", false),
            ("a/b", false),
            ("a b", false),
            ("é", false),
            ("a\0", false),
        ];
        for (name, ok) in cases {
            assert_eq!(is_valid_name(name), *ok, "{name:?}");
        }
        assert!(is_valid_name(&"x".repeat(64)));
        assert!(!is_valid_name(&"x".repeat(65)));
    }

    #[test]
    fn user_agent_table() {
        // (header bytes, kept, agent version)
        let long = format!("dockhand-agent/1.2.3 {}", "x".repeat(200));
        let cases: &[(&[u8], Option<&str>, Option<&str>)] = &[
            (
                b"dockhand-agent/0.1.0",
                Some("dockhand-agent/0.1.0"),
                Some("0.1.0"),
            ),
            (
                b"  dockhand-agent/2.0.0-rc.1 (linux)  ",
                Some("dockhand-agent/2.0.0-rc.1 (linux)"),
                Some("2.0.0-rc.1"),
            ),
            (b"dockhand-agent/", Some("dockhand-agent/"), None),
            (b"dockhand-agent", Some("dockhand-agent"), None),
            (b"dockhand-agentx/1.0", Some("dockhand-agentx/1.0"), None),
            (b"curl/8.5.0", Some("curl/8.5.0"), None),
            (
                b"dock\x00hand-agent/1\n",
                Some("dockhand-agent/1"),
                Some("1"),
            ),
            (b"\xff\xfe", None, None),
            (b"   ", None, None),
            (b"", None, None),
        ];
        for (raw, kept, version) in cases {
            let got = user_agent(raw);
            assert_eq!(got.as_deref(), *kept, "{raw:?}");
            assert_eq!(got.as_deref().and_then(agent_version), *version, "{raw:?}");
        }
        let cut = user_agent(long.as_bytes()).unwrap();
        assert_eq!(
            (cut.len(), agent_version(&cut)),
            (MAX_USER_AGENT, Some("1.2.3"))
        );
    }

    #[test]
    fn user_agent_is_remembered_with_last_seen() {
        let dir = tempfile::tempdir().unwrap();
        let devices_dir = dir.path().join("devices");
        enroll(&devices_dir, "hh-01", "WH1", false).unwrap();
        let devices = Devices::open(&devices_dir).unwrap();
        assert_eq!(
            devices.get_current("hh-01").unwrap().unwrap().version(),
            None
        );

        let at = OffsetDateTime::now_utc();
        devices
            .touch_agent("hh-01", at, Some(2), Some("dockhand-agent/0.1.0"))
            .unwrap();
        let on_disk = devices.get("hh-01").unwrap().unwrap();
        assert_eq!(
            on_disk.version(),
            Some("0.1.0"),
            "first sighting written at once"
        );
        // An upgrade shows at once (memory) and reaches the file with the next write; a request without the
        // header keeps what is known; an older sighting arriving late does not replace a newer agent.
        let s = time::Duration::seconds;
        devices
            .touch_agent("hh-01", at + s(1), None, Some("dockhand-agent/0.2.0"))
            .unwrap();
        devices.touch_agent("hh-01", at + s(2), None, None).unwrap();
        devices
            .touch_agent("hh-01", at - s(1), None, Some("dockhand-agent/0.0.9"))
            .unwrap();
        assert_eq!(devices.list().unwrap()[0].version(), Some("0.2.0"));
        assert_eq!(
            devices.get("hh-01").unwrap().unwrap().version(),
            Some("0.1.0"),
            "throttled"
        );
        devices.flush_seen().unwrap();
        let on_disk = devices.get("hh-01").unwrap().unwrap();
        assert_eq!(
            (on_disk.version(), on_disk.backlog),
            (Some("0.2.0"), Some(2))
        );
        // Rotation keeps it, as it keeps the last-seen time.
        enroll(&devices_dir, "hh-01", "WH1", true).unwrap();
        assert_eq!(
            devices.get("hh-01").unwrap().unwrap().version(),
            Some("0.2.0")
        );
    }

    #[test]
    fn enroll_stores_hash_and_rotate_revokes() {
        let dir = tempfile::tempdir().unwrap();
        let devices_dir = dir.path().join("devices");
        let token = enroll(&devices_dir, "hh-01", "WH1", false).unwrap();
        assert_eq!(token.len(), 64);
        let file = fs::read_to_string(devices_dir.join("hh-01.json")).unwrap();
        assert!(!file.contains(&token), "the token itself is never stored");
        assert!(file.contains(&token_digest_hex(&token)));

        let devices = Devices::open(&devices_dir).unwrap();
        let want = Device {
            id: "hh-01".into(),
            site: "WH1".into(),
        };
        assert_eq!(devices.authenticate(&token).unwrap(), Some(want.clone()));

        assert!(matches!(
            enroll(&devices_dir, "hh-01", "WH1", false),
            Err(DeviceError::AlreadyEnrolled(_))
        ));
        let new = enroll(&devices_dir, "hh-01", "WH1", true).unwrap();
        assert_ne!(new, token);
        assert_eq!(
            devices.authenticate(&token).unwrap(),
            None,
            "rotated token is revoked without reload"
        );
        assert_eq!(devices.authenticate(&new).unwrap(), Some(want));

        // Enrolled after `open`: found by the reload on miss.
        let other = enroll(&devices_dir, "hh-02", "WH2", false).unwrap();
        assert_eq!(
            devices.authenticate(&other).unwrap().map(|d| d.site),
            Some("WH2".into())
        );
        assert!(matches!(
            enroll(&devices_dir, "../x", "WH1", false),
            Err(DeviceError::InvalidId(_))
        ));
        assert!(matches!(
            enroll(&devices_dir, "hh-3", "W H", false),
            Err(DeviceError::InvalidSite(_))
        ));
    }

    #[test]
    fn revoke_touch_and_reserved_id() {
        let dir = tempfile::tempdir().unwrap();
        let devices_dir = dir.path().join("devices");
        assert!(matches!(
            enroll(&devices_dir, OFFICE_DEVICE, "WH1", false),
            Err(DeviceError::Reserved(_))
        ));
        // A file written before revocation and last-seen existed still reads.
        fs::create_dir_all(&devices_dir).unwrap();
        let token = "t".repeat(64);
        let old = format!(
            r#"{{"device_id":"hh-01","site":"WH1","token_sha256":"{}","enrolled_at":"2026-11-26T10:15:00Z"}}"#,
            token_digest_hex(&token)
        );
        fs::write(devices_dir.join("hh-01.json"), old).unwrap();
        let devices = Devices::open(&devices_dir).unwrap();
        assert!(matches!(
            devices.check_token(&token).unwrap(),
            TokenCheck::Valid(_)
        ));

        let at = OffsetDateTime::now_utc();
        devices.touch("hh-01", at, Some(4)).unwrap();
        let on_disk = devices.get("hh-01").unwrap().unwrap();
        assert_eq!(
            (on_disk.last_seen, on_disk.backlog),
            (Some(at), Some(4)),
            "first sighting written at once"
        );
        let later = at + time::Duration::seconds(1);
        devices.touch("hh-01", later, None).unwrap();
        assert_eq!(
            devices.get("hh-01").unwrap().unwrap().last_seen,
            Some(at),
            "throttled"
        );
        let listed = devices.list().unwrap();
        assert_eq!(
            (listed[0].last_seen, listed[0].backlog),
            (Some(later), Some(4)),
            "memory is newer"
        );
        devices.flush_seen().unwrap();
        assert_eq!(
            devices.get("hh-01").unwrap().unwrap().last_seen,
            Some(later)
        );

        let revoked = devices.revoke("hh-01").unwrap().unwrap();
        assert!(revoked.revoked_at.is_some());
        assert!(
            matches!(devices.check_token(&token).unwrap(), TokenCheck::Revoked(d) if d.id == "hh-01")
        );
        assert_eq!(devices.authenticate(&token).unwrap(), None);
        assert!(devices.revoke("nobody").unwrap().is_none());
        // A later last-seen write keeps the revocation (read-modify-write under the lock).
        devices
            .touch("hh-01", later + time::Duration::seconds(10), None)
            .unwrap();
        devices.flush_seen().unwrap();
        assert!(devices.get("hh-01").unwrap().unwrap().revoked_at.is_some());

        let rotated = enroll(&devices_dir, "hh-01", "WH1", true).unwrap();
        assert!(matches!(
            devices.check_token(&rotated).unwrap(),
            TokenCheck::Valid(_)
        ));
        let record = devices.get("hh-01").unwrap().unwrap();
        assert_eq!(
            (record.revoked_at, record.backlog),
            (None, Some(4)),
            "rotate re-activates, keeps last-seen"
        );
    }
}
