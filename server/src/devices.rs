//! Device credentials: enrollment and token lookup.
//!
//! # On disk
//!
//! One file per device, written atomically (temp file, fsync, rename, fsync directory):
//!
//! ```text
//! <data>/devices/<device_id>.json
//!   {"device_id":"hh-01","site":"WH1","token_sha256":"<64 hex>","enrolled_at":"2026-11-26T10:15:00Z"}
//! ```
//!
//! Devices live outside sled on purpose: sled holds an exclusive lock on its database, and
//! `dockhand-server enroll` must work while the server runs on the same directory.
//!
//! # Invariants
//!
//! - The token (256 random bits, hex) is shown once by `enroll`; only its SHA-256 is stored.
//! - A device's file is the truth. The server's in-memory map `sha256 -> device` is a cache: on a miss it
//!   reloads the directory once (so new enrollments work without a restart); on a hit it re-reads the device's
//!   file and accepts the token only if the file still holds that hash (so `enroll --rotate` revokes the old
//!   token at once, without a restart).
//! - Looking up by digest does not leak the token through timing: an attacker learns at most about a hash.
//! - Device ids and sites are 1..=64 characters of `[A-Za-z0-9._-]`: safe as file names and as sled key
//!   segments (no NUL, no `/`).

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::fsutil::{write_atomic, Replace};

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
/// old token stops working.
pub fn enroll(
    devices_dir: &Path,
    device_id: &str,
    site: &str,
    rotate: bool,
) -> Result<String, DeviceError> {
    if !is_valid_name(device_id) {
        return Err(DeviceError::InvalidId(device_id.to_string()));
    }
    if !is_valid_name(site) {
        return Err(DeviceError::InvalidSite(site.to_string()));
    }
    fs::create_dir_all(devices_dir).map_err(|source| io(devices_dir, source))?;
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = hex::encode(secret);
    let record = DeviceRecord {
        device_id: device_id.to_string(),
        site: site.to_string(),
        token_sha256: token_digest_hex(&token),
        enrolled_at: OffsetDateTime::now_utc(),
    };
    let path = device_path(devices_dir, device_id);
    let json = serde_json::to_vec_pretty(&record).map_err(|e| DeviceError::Corrupt {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let replace = if rotate { Replace::Yes } else { Replace::No };
    match write_atomic(&path, &json, 0o600, replace) {
        Ok(()) => Ok(token),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            Err(DeviceError::AlreadyEnrolled(device_id.to_string()))
        }
        Err(source) => Err(io(&path, source)),
    }
}

/// SHA-256 of a token, lowercase hex, as stored in device files.
pub fn token_digest_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The enrolled devices of one data directory, with a token lookup cache (see the module docs).
#[derive(Debug)]
pub struct Devices {
    dir: PathBuf,
    by_digest: RwLock<HashMap<String, Device>>,
}

impl Devices {
    /// Loads every device file of `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<Self, DeviceError> {
        fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
        let devices = Devices {
            dir: dir.to_path_buf(),
            by_digest: RwLock::new(HashMap::new()),
        };
        devices.reload()?;
        Ok(devices)
    }

    /// The device holding `token`, if it is a current credential. Blocking: reads files.
    pub fn authenticate(&self, token: &str) -> Result<Option<Device>, DeviceError> {
        let digest = token_digest_hex(token);
        let cached = self.cached(&digest);
        let device = match cached {
            Some(d) => d,
            None => {
                // Possibly enrolled since we last looked.
                self.reload()?;
                match self.cached(&digest) {
                    Some(d) => d,
                    None => return Ok(None),
                }
            }
        };
        // The cache may be stale after `enroll --rotate`: the file decides.
        match self.get(&device.id)? {
            Some(record) if record.token_sha256 == digest => Ok(Some(Device {
                id: record.device_id,
                site: record.site,
            })),
            _ => {
                self.write_map().remove(&digest);
                Ok(None)
            }
        }
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
        let entries = fs::read_dir(&self.dir).map_err(|source| io(&self.dir, source))?;
        for entry in entries {
            let entry = entry.map_err(|source| io(&self.dir, source))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if name.starts_with('.') || !is_valid_name(id) {
                continue;
            }
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

fn device_path(dir: &Path, device_id: &str) -> PathBuf {
    dir.join(format!("{device_id}.json"))
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
}
