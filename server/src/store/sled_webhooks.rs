//! [`WebhookStore`] on sled (see [`crate::webhooks`] for the design).
//!
//! # Trees
//!
//! ```text
//! outbox              seq (u64)                          -> Event as JSON   (in TREE_NAMES: written inside office
//!                                                                             transactions; meta "outbox_seq" counts)
//! webhook_endpoints   id                                 -> Endpoint as JSON
//! webhook_deliveries  id (u64)                           -> Delivery as JSON
//! webhook_due         next attempt (unix ms, u64) ++ id  -> empty: exactly the pending deliveries, by due time
//! webhook_meta        "cursors"                          -> movements ++ discrepancies ++ outbox (3 × u64)
//!                     "delivery_id"                      -> u64, the last id assigned
//!                     "stats" 0x00 endpoint id           -> EndpointStats as JSON
//! ```
//!
//! The webhook trees are not part of the push transaction (pushes never touch them); the dispatcher's writes are
//! small transactions over these four trees only. `enqueue` and `record_attempt` are not fdatasync'ed: deliveries
//! and cursors move together in one transaction, so after a crash both are back where they were and the
//! dispatcher queues the same events again (at-least-once, same event ids). Office writes (register, delete,
//! retry) are synced like every office write.
//!
//! Costs: `due` is a range read of `webhook_due`; counts are kept per endpoint in `webhook_meta`, updated in the
//! transactions that change them. Listing an endpoint's deliveries walks `webhook_deliveries` newest first until
//! it has `limit` matches, and deleting an endpoint walks it whole: fine while delivered deliveries are few
//! (their bodies are emptied on delivery, but the records stay; pruning old ones is not done yet).

use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Transactional, Tree};
use time::OffsetDateTime;

use super::{abort, from_json, to_json, SledStore, Tx, TxResult, META_DISCREPANCY_ID, T};
use crate::store::StoreError;
use crate::webhooks::{
    Attempt, Cursors, Delivery, DeliveryStatus, Endpoint, EndpointStats, Event, NewDelivery,
    WebhookStore,
};

pub(super) const META_OUTBOX_SEQ: &[u8] = b"outbox_seq";
const CURSORS: &[u8] = b"cursors";
const DELIVERY_ID: &[u8] = b"delivery_id";

/// The webhook trees, opened with the store.
#[derive(Debug)]
pub(super) struct Trees {
    endpoints: Tree,
    deliveries: Tree,
    due: Tree,
    meta: Tree,
}

impl Trees {
    pub(super) fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Trees {
            endpoints: db.open_tree("webhook_endpoints")?,
            deliveries: db.open_tree("webhook_deliveries")?,
            due: db.open_tree("webhook_due")?,
            meta: db.open_tree("webhook_meta")?,
        })
    }
}

/// Appends `event` to the outbox inside an office write's transaction; answers its seq.
pub(super) fn outbox(tx: &Tx<'_>, event: &Event) -> TxResult<u64> {
    let seq = tx.u64(T::Meta, META_OUTBOX_SEQ)? + 1;
    tx.put_json(T::Outbox, &seq.to_be_bytes(), event)?;
    tx.t(T::Meta).insert(META_OUTBOX_SEQ, &seq.to_be_bytes())?;
    Ok(seq)
}

fn millis(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

fn due_key(at: OffsetDateTime, id: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&millis(at).to_be_bytes());
    key[8..].copy_from_slice(&id.to_be_bytes());
    key
}

fn stats_key(endpoint: &str) -> Vec<u8> {
    let mut key = b"stats\0".to_vec();
    key.extend_from_slice(endpoint.as_bytes());
    key
}

fn encode_cursors(c: Cursors) -> [u8; 24] {
    let mut v = [0u8; 24];
    v[..8].copy_from_slice(&c.movements.to_be_bytes());
    v[8..16].copy_from_slice(&c.discrepancies.to_be_bytes());
    v[16..].copy_from_slice(&c.outbox.to_be_bytes());
    v
}

fn decode_cursors(v: &[u8]) -> Result<Cursors, StoreError> {
    let n = |i: usize| -> Result<u64, StoreError> {
        v.get(i..i + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| StoreError::Corrupt {
                tree: "webhook_meta",
                message: format!("cursors: expected 24 bytes, found {}", v.len()),
            })
    };
    Ok(Cursors {
        movements: n(0)?,
        discrepancies: n(8)?,
        outbox: n(16)?,
    })
}

fn json<V: serde::de::DeserializeOwned>(tree: &'static str, v: &[u8]) -> Result<V, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        tree,
        message: e.to_string(),
    })
}

fn bytes<V: Serialize>(v: &V) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt {
        tree: "webhook_deliveries",
        message: e.to_string(),
    })
}

type HookTx<'a> = (
    &'a TransactionalTree,
    &'a TransactionalTree,
    &'a TransactionalTree,
);

fn tx_json<V: serde::de::DeserializeOwned>(
    t: &TransactionalTree,
    tree: &'static str,
    key: &[u8],
) -> TxResult<Option<V>> {
    match t.get(key)? {
        Some(v) => json(tree, &v).map(Some).map_err(abort),
        None => Ok(None),
    }
}

fn tx_put<V: Serialize>(t: &TransactionalTree, key: &[u8], v: &V) -> TxResult<()> {
    t.insert(key, bytes(v).map_err(abort)?)?;
    Ok(())
}

/// Adjusts an endpoint's stats inside a transaction.
fn update_stats(
    meta: &TransactionalTree,
    endpoint: &str,
    f: impl FnOnce(&mut EndpointStats),
) -> TxResult<()> {
    let key = stats_key(endpoint);
    let mut stats: EndpointStats = match meta.get(&key)? {
        Some(v) => json::<StatsRecord>("webhook_meta", &v)
            .map_err(abort)?
            .into(),
        None => EndpointStats::default(),
    };
    f(&mut stats);
    tx_put(meta, &key, &StatsRecord::from(stats))
}

/// [`EndpointStats`] as stored (it serializes for the API only).
#[derive(serde::Serialize, serde::Deserialize)]
struct StatsRecord {
    pending: u64,
    failed: u64,
    delivered: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    last_success_at: Option<OffsetDateTime>,
    last_error: Option<String>,
}

impl From<StatsRecord> for EndpointStats {
    fn from(r: StatsRecord) -> Self {
        EndpointStats {
            pending: r.pending,
            failed: r.failed,
            delivered: r.delivered,
            last_success_at: r.last_success_at,
            last_error: r.last_error,
        }
    }
}

impl From<EndpointStats> for StatsRecord {
    fn from(s: EndpointStats) -> Self {
        StatsRecord {
            pending: s.pending,
            failed: s.failed,
            delivered: s.delivered,
            last_success_at: s.last_success_at,
            last_error: s.last_error,
        }
    }
}

impl SledStore {
    /// One transaction over the deliveries, due and meta trees.
    fn hook_tx<R>(&self, f: impl Fn(HookTx<'_>) -> TxResult<R>) -> Result<R, StoreError> {
        let h = &self.hooks;
        let r = (&h.deliveries, &h.due, &h.meta).transaction(|(d, due, meta)| f((d, due, meta)));
        match r {
            Ok(r) => Ok(r),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StoreError::Db(e)),
        }
    }

    fn meta_u64(&self, key: &[u8]) -> Result<u64, StoreError> {
        match self.tree(T::Meta).get(key)? {
            Some(v) => super::decode_u64(T::Meta, &v),
            None => Ok(0),
        }
    }
}

impl WebhookStore for SledStore {
    fn put_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let heads = self.heads()?;
        let value = to_json(T::Meta, endpoint)?;
        let h = &self.hooks;
        let r = (&h.endpoints, &h.meta).transaction(|(e, meta)| {
            e.insert(endpoint.id.as_bytes(), value.clone())?;
            if meta.get(CURSORS)?.is_none() {
                meta.insert(CURSORS, &encode_cursors(heads))?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        });
        r.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Db(e),
        })?;
        self.sync()
    }

    fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        self.hooks
            .endpoints
            .iter()
            .map(|entry| json("webhook_endpoints", &entry?.1))
            .collect()
    }

    fn delete_endpoint(&self, id: &str) -> Result<bool, StoreError> {
        if self.hooks.endpoints.remove(id.as_bytes())?.is_none() {
            return Ok(false);
        }
        // The endpoint is gone, so the dispatcher queues nothing more for it; its deliveries go one by one (a
        // crash halfway leaves orphans the dispatcher skips: record_attempt and due ignore unknown endpoints).
        for entry in self.hooks.deliveries.iter() {
            let (key, value) = entry?;
            let d: Delivery = json("webhook_deliveries", &value)?;
            if d.endpoint == id {
                if let Some(at) = d.next_attempt_at {
                    self.hooks.due.remove(due_key(at, d.id))?;
                }
                self.hooks.deliveries.remove(key)?;
            }
        }
        self.hooks.meta.remove(stats_key(id))?;
        self.sync()?;
        Ok(true)
    }

    fn cursors(&self) -> Result<Option<Cursors>, StoreError> {
        match self.hooks.meta.get(CURSORS)? {
            Some(v) => decode_cursors(&v).map(Some),
            None => Ok(None),
        }
    }

    fn heads(&self) -> Result<Cursors, StoreError> {
        Ok(Cursors {
            movements: self.meta_u64(super::META_SERVER_SEQ)?,
            discrepancies: self.meta_u64(META_DISCREPANCY_ID)?,
            outbox: self.meta_u64(META_OUTBOX_SEQ)?,
        })
    }

    fn settled(&self) -> Result<Option<Cursors>, StoreError> {
        // A push commits under the writer lock in server_seq order, and so does every writer of discrepancies
        // and the outbox: whatever is numbered is visible.
        self.heads().map(Some)
    }

    fn try_lead(&self) -> Result<bool, StoreError> {
        Ok(true) // one process owns the database (sled's file lock)
    }

    fn enqueue(
        &self,
        from: Cursors,
        to: Cursors,
        deliveries: &[NewDelivery],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.hook_tx(|(d, due, meta)| {
            let current = match meta.get(CURSORS)? {
                Some(v) => Some(decode_cursors(&v).map_err(abort)?),
                None => None,
            };
            if current.is_some_and(|c| c != from) {
                return Err(abort(StoreError::Refused(
                    "webhook cursors moved meanwhile".into(),
                )));
            }
            let mut id = match meta.get(DELIVERY_ID)? {
                Some(v) => super::decode_u64(T::Meta, &v).map_err(abort)?,
                None => 0,
            };
            for new in deliveries {
                id += 1;
                let delivery = Delivery {
                    id,
                    endpoint: new.endpoint.clone(),
                    key: new.key.clone(),
                    kind: new.kind,
                    events: new.events,
                    body: new.body.clone(),
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    created_at: now,
                    next_attempt_at: Some(now),
                    delivered_at: None,
                    last_error: None,
                };
                tx_put(d, &id.to_be_bytes(), &delivery)?;
                due.insert(&due_key(now, id), &[][..])?;
                update_stats(meta, &new.endpoint, |s| s.pending += 1)?;
            }
            meta.insert(DELIVERY_ID, &id.to_be_bytes())?;
            meta.insert(CURSORS, &encode_cursors(to))?;
            Ok(())
        })
    }

    fn due(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let mut out = Vec::new();
        let end = due_key(now, u64::MAX);
        for entry in self.hooks.due.range(..=end) {
            if out.len() >= limit {
                break;
            }
            let (key, _) = entry?;
            let id =
                u64::from_be_bytes(key[8..16].try_into().map_err(|_| StoreError::Corrupt {
                    tree: "webhook_due",
                    message: "key shorter than 16 bytes".into(),
                })?);
            if let Some(v) = self.hooks.deliveries.get(id.to_be_bytes())? {
                out.push(json("webhook_deliveries", &v)?);
            }
        }
        Ok(out)
    }

    fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let Some((key, _)) = self.hooks.due.first()? else {
            return Ok(None);
        };
        let ms = u64::from_be_bytes(key[..8].try_into().map_err(|_| StoreError::Corrupt {
            tree: "webhook_due",
            message: "key shorter than 16 bytes".into(),
        })?);
        Ok(OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
    }

    fn record_attempt(
        &self,
        id: u64,
        attempt: &Attempt,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.hook_tx(|(d, due, meta)| {
            let Some(mut delivery) =
                tx_json::<Delivery>(d, "webhook_deliveries", &id.to_be_bytes())?
            else {
                return Ok(());
            };
            if delivery.status != DeliveryStatus::Pending {
                return Ok(());
            }
            if let Some(at) = delivery.next_attempt_at {
                due.remove(&due_key(at, id))?;
            }
            delivery.attempts += 1;
            match attempt {
                Attempt::Delivered => {
                    delivery.status = DeliveryStatus::Delivered;
                    delivery.next_attempt_at = None;
                    delivery.delivered_at = Some(now);
                    // A hundred movements weigh tens of kilobytes; the receiver has them now.
                    delivery.body.clear();
                    update_stats(meta, &delivery.endpoint, |s| {
                        s.pending = s.pending.saturating_sub(1);
                        s.delivered += 1;
                        s.last_success_at = Some(now);
                        s.last_error = None;
                    })?;
                }
                Attempt::Retry { error, next } => {
                    delivery.next_attempt_at = Some(*next);
                    delivery.last_error = Some(error.clone());
                    due.insert(&due_key(*next, id), &[][..])?;
                    update_stats(meta, &delivery.endpoint, |s| {
                        s.last_error = Some(error.clone())
                    })?;
                }
                Attempt::GiveUp { error } => {
                    delivery.status = DeliveryStatus::Failed;
                    delivery.next_attempt_at = None;
                    delivery.last_error = Some(error.clone());
                    update_stats(meta, &delivery.endpoint, |s| {
                        s.pending = s.pending.saturating_sub(1);
                        s.failed += 1;
                        s.last_error = Some(error.clone());
                    })?;
                }
            }
            tx_put(d, &id.to_be_bytes(), &delivery)
        })
    }

    fn deliveries(
        &self,
        endpoint: &str,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut out = Vec::new();
        for entry in self.hooks.deliveries.iter().rev() {
            if out.len() >= limit {
                break;
            }
            let d: Delivery = json("webhook_deliveries", &entry?.1)?;
            if d.endpoint == endpoint && status.is_none_or(|s| s == d.status) {
                out.push(d);
            }
        }
        Ok(out)
    }

    fn endpoint_stats(&self) -> Result<Vec<(String, EndpointStats)>, StoreError> {
        self.hooks
            .meta
            .scan_prefix(b"stats\0")
            .map(|entry| {
                let (key, value) = entry?;
                let id = String::from_utf8_lossy(&key[6..]).into_owned();
                Ok((id, json::<StatsRecord>("webhook_meta", &value)?.into()))
            })
            .collect()
    }

    fn retry(
        &self,
        endpoint: &str,
        id: u64,
        now: OffsetDateTime,
    ) -> Result<Option<Delivery>, StoreError> {
        let r = self.hook_tx(|(d, due, meta)| {
            let Some(mut delivery) =
                tx_json::<Delivery>(d, "webhook_deliveries", &id.to_be_bytes())?
            else {
                return Ok(None);
            };
            if delivery.endpoint != endpoint {
                return Ok(None);
            }
            match delivery.status {
                DeliveryStatus::Delivered => {
                    return Err(abort(StoreError::Refused(format!(
                        "delivery {id} was already delivered"
                    ))))
                }
                DeliveryStatus::Failed => update_stats(meta, endpoint, |s| {
                    s.failed = s.failed.saturating_sub(1);
                    s.pending += 1;
                })?,
                DeliveryStatus::Pending => {
                    if let Some(at) = delivery.next_attempt_at {
                        due.remove(&due_key(at, id))?;
                    }
                }
            }
            delivery.status = DeliveryStatus::Pending;
            delivery.attempts = 0;
            delivery.next_attempt_at = Some(now);
            due.insert(&due_key(now, id), &[][..])?;
            tx_put(d, &id.to_be_bytes(), &delivery)?;
            Ok(Some(delivery))
        })?;
        self.sync()?;
        Ok(r)
    }

    fn enqueue_event(&self, event: &Event) -> Result<u64, StoreError> {
        self.write(|tx, _| outbox(tx, event))
    }

    fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
        let Some(start) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        self.tree(T::Outbox)
            .range(start.to_be_bytes()..)
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                let seq = super::decode_u64(T::Outbox, &key)?;
                Ok((seq, from_json(T::Outbox, &value)?))
            })
            .collect()
    }
}
