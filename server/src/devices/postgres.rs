//! [`DeviceRegistry`] on PostgreSQL: the `devices` table, shared by every server node on the database.
//!
//! # Schema (`server/migrations/0002_devices.sql`, applied by [`PgStore::open`])
//!
//! ```text
//! devices (device_id pk, site, token_sha256 unique, enrolled_at, revoked_at, last_seen, backlog, backlog_at,
//!          user_agent)
//!   token_sha256   SHA-256 of the bearer token, 64 lowercase hex; the token itself is never stored
//!   backlog_at     when the device reported `backlog` (NULL exactly when backlog is NULL)
//!   user_agent     the `User-Agent` of its latest request that sent one (migration 5; agents send
//!                  `dockhand-agent/<version>`)
//! ```
//!
//! # Invariants
//!
//! - The table is the truth and no node caches a credential: every authentication is one lookup by token digest
//!   (the UNIQUE index), so an enrollment, rotation or revocation made through any node, or by
//!   `dockhand-server enroll --config`, applies to the very next request on every node. Looking up by digest
//!   leaks at most something about a hash, never the token, through timing.
//! - Enrolling an enrolled id fails unless rotating. A plain enroll is `INSERT ... ON CONFLICT DO NOTHING`: of two
//!   nodes enrolling one id at the same moment, exactly one inserts and the other sees no row inserted and reports
//!   [`DeviceError::AlreadyEnrolled`]; neither overwrites the other's token. A rotation is an upsert that replaces
//!   token, site and enrollment time, lifts a revocation and keeps the last-seen state, as the file registry does.
//! - Enrollment and revocation times come from the database clock, one clock for all nodes.
//!
//! # Last seen and backlog
//!
//! As in the file registry ([`SeenCache`]): each node keeps the latest sighting in memory and writes a device's
//! row at most once per [`SEEN_PERSIST_INTERVAL`](super::SEEN_PERSIST_INTERVAL), and everything unwritten at
//! shutdown. Several nodes write their own views of one device, in any order, so the update only moves forward:
//! `last_seen` takes the later time, `backlog` changes only to a report at least as recent as the stored one
//! (`backlog_at`), and `user_agent` only to one sent at or after the stored `last_seen`. A node that dies loses at most one interval of sightings, which the next request restores.

use std::sync::Arc;

use postgres::Row;
use time::OffsetDateTime;

use super::{
    check_enrollment, is_valid_name, new_token, token_digest_hex, Device, DeviceError,
    DeviceRecord, DeviceRegistry, Seen, SeenCache, TokenCheck,
};
use crate::PgStore;

/// The columns [`stored`] reads, in order.
const COLUMNS: &str =
    "device_id, site, token_sha256, enrolled_at, revoked_at, last_seen, backlog, backlog_at, user_agent";

/// The device registry in PostgreSQL (see the module docs).
pub struct PgDevices {
    store: Arc<PgStore>,
    seen: SeenCache,
}

impl std::fmt::Debug for PgDevices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDevices")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// A row: the record and when its backlog was reported.
struct Stored {
    record: DeviceRecord,
    backlog_at: Option<OffsetDateTime>,
}

impl PgDevices {
    /// The registry in the database of `store`, sharing its connections (what a server node does).
    pub fn new(store: Arc<PgStore>) -> Self {
        PgDevices {
            store,
            seen: SeenCache::default(),
        }
    }

    /// Connects to `url` with a pool of its own (up to `max_connections`) and applies pending migrations, as
    /// [`PgStore::open`] does (what `dockhand-server enroll` does).
    pub fn open(url: &str, max_connections: usize) -> Result<Self, DeviceError> {
        Ok(Self::new(Arc::new(PgStore::open(url, max_connections)?)))
    }

    fn persist_seen(&self, device_id: &str, state: Seen) -> Result<(), DeviceError> {
        let backlog = state.backlog.map(to_i64);
        self.store.with_client(true, |c| {
            // Every right-hand side reads the row as it was, so `user_agent` compares with the old last_seen.
            c.execute(
                "UPDATE devices SET
                     last_seen = GREATEST(last_seen, $2),
                     user_agent = CASE WHEN $5::text IS NOT NULL AND (last_seen IS NULL OR last_seen <= $2)
                                       THEN $5 ELSE user_agent END,
                     backlog = CASE WHEN $3::bigint IS NOT NULL AND (backlog_at IS NULL OR backlog_at <= $4)
                                    THEN $3 ELSE backlog END,
                     backlog_at = CASE WHEN $3::bigint IS NOT NULL AND (backlog_at IS NULL OR backlog_at <= $4)
                                       THEN $4 ELSE backlog_at END
                 WHERE device_id = $1",
                &[
                    &device_id,
                    &state.at,
                    &backlog,
                    &state.backlog_at,
                    &state.user_agent,
                ],
            )
        })?;
        Ok(())
    }

    /// The stored record overlaid with this node's newer, not yet written sighting.
    fn with_seen(&self, stored: Stored) -> DeviceRecord {
        let Stored {
            mut record,
            backlog_at,
        } = stored;
        if let Some(s) = self.seen.get(&record.device_id) {
            if s.user_agent.is_some() && record.last_seen.is_none_or(|l| l <= s.at) {
                record.user_agent = s.user_agent.clone();
            }
            if record.last_seen.is_none_or(|l| l < s.at) {
                record.last_seen = Some(s.at);
            }
            if s.backlog.is_some() && (backlog_at.is_none() || s.backlog_at >= backlog_at) {
                record.backlog = s.backlog;
            }
        }
        record
    }
}

impl DeviceRegistry for PgDevices {
    fn check_token(&self, token: &str) -> Result<TokenCheck, DeviceError> {
        let digest = token_digest_hex(token);
        // Every authenticated request runs this: prepared once per pooled connection.
        let row = self.store.with_prepared(
            true,
            "SELECT device_id, site, revoked_at IS NOT NULL FROM devices WHERE token_sha256 = $1",
            |c, lookup| c.query_opt(lookup, &[&digest]),
        )?;
        Ok(match row {
            None => TokenCheck::Unknown,
            Some(r) => {
                let device = Device {
                    id: r.get(0),
                    site: r.get(1),
                };
                if r.get(2) {
                    TokenCheck::Revoked(device)
                } else {
                    TokenCheck::Valid(device)
                }
            }
        })
    }

    fn get(&self, device_id: &str) -> Result<Option<DeviceRecord>, DeviceError> {
        if !is_valid_name(device_id) {
            return Ok(None);
        }
        let row = self.store.with_client(true, |c| {
            c.query_opt(
                &format!("SELECT {COLUMNS} FROM devices WHERE device_id = $1"),
                &[&device_id],
            )
        })?;
        Ok(row.map(|r| self.with_seen(stored(&r))))
    }

    fn list(&self) -> Result<Vec<DeviceRecord>, DeviceError> {
        let rows = self.store.with_client(true, |c| {
            c.query(
                &format!("SELECT {COLUMNS} FROM devices ORDER BY device_id"),
                &[],
            )
        })?;
        Ok(rows.iter().map(|r| self.with_seen(stored(r))).collect())
    }

    fn enroll(&self, device_id: &str, site: &str, rotate: bool) -> Result<String, DeviceError> {
        check_enrollment(device_id, site)?;
        let token = new_token();
        let digest = token_digest_hex(&token);
        let on_conflict = if rotate {
            "DO UPDATE SET site = EXCLUDED.site, token_sha256 = EXCLUDED.token_sha256,
                           enrolled_at = EXCLUDED.enrolled_at, revoked_at = NULL"
        } else {
            "DO NOTHING"
        };
        let sql = format!(
            "INSERT INTO devices (device_id, site, token_sha256, enrolled_at) VALUES ($1, $2, $3, now())
             ON CONFLICT (device_id) {on_conflict}"
        );
        // A rotation may run twice (the second token wins and is the one returned); a plain enroll must not, or
        // a retry after a lost answer would find its own row and report the device as enrolled already.
        let inserted = self
            .store
            .with_client(rotate, |c| c.execute(&sql, &[&device_id, &site, &digest]))?;
        if inserted == 0 {
            return Err(DeviceError::AlreadyEnrolled(device_id.to_string()));
        }
        Ok(token)
    }

    fn revoke(&self, device_id: &str) -> Result<Option<DeviceRecord>, DeviceError> {
        if !is_valid_name(device_id) {
            return Ok(None);
        }
        let found = self.store.with_client(true, |c| {
            let revoked = c.query_opt(
                &format!(
                    "UPDATE devices SET revoked_at = now() WHERE device_id = $1 AND revoked_at IS NULL
                     RETURNING {COLUMNS}"
                ),
                &[&device_id],
            )?;
            if let Some(row) = revoked {
                return Ok(Some((row, true)));
            }
            let row = c.query_opt(
                &format!("SELECT {COLUMNS} FROM devices WHERE device_id = $1"),
                &[&device_id],
            )?;
            Ok(row.map(|r| (r, false)))
        })?;
        Ok(found.map(|(row, newly)| {
            if newly {
                tracing::info!(device = %device_id, "device revoked; its pushes and pulls are refused from now on, on every node");
            }
            self.with_seen(stored(&row))
        }))
    }

    fn touch_agent(
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

    fn flush_seen(&self) -> Result<(), DeviceError> {
        for (id, state) in self.seen.take_dirty() {
            self.persist_seen(&id, state)?;
        }
        Ok(())
    }
}

/// Reads a row selected with [`COLUMNS`].
fn stored(r: &Row) -> Stored {
    Stored {
        record: DeviceRecord {
            device_id: r.get(0),
            site: r.get(1),
            token_sha256: r.get(2),
            enrolled_at: r.get(3),
            revoked_at: r.get(4),
            last_seen: r.get(5),
            backlog: r
                .get::<_, Option<i64>>(6)
                .map(|b| u64::try_from(b).unwrap_or(0)),
            user_agent: r.get(8),
        },
        backlog_at: r.get(7),
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
