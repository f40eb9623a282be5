//! [`WebhookStore`] on PostgreSQL (migration 8; see [`crate::webhooks`] for the design).
//!
//! # Late commits: the settled horizon
//!
//! A push draws its server_seq range while it writes, not when it commits, so a push numbered 10 can become
//! visible after one numbered 11; discrepancy ids and outbox seqs (sequences too) behave the same. A cursor that
//! followed "the highest number seen" would step over the late one forever. [`WebhookStore::settled`] answers a
//! horizon instead:
//!
//! 1. read `L`, the last value of each sequence;
//! 2. THEN take a transaction id `N` of our own (`pg_current_xact_id()` in an autocommit statement, so it
//!    commits at once);
//! 3. wait until no transaction with an id below `N` is in progress: a snapshot taken after step 2 lists every
//!    such transaction in `pg_snapshot_xip`.
//!
//! Any writer holding a number `<= L` drew it before step 1, and had its transaction id before that (every
//! writer writes before it draws: a push upserts `device_hw` and COPYs its movements before
//! `reserve_server_seq`; ASN closes and resolutions lock their row `FOR UPDATE` before inserting discrepancies
//! or outbox rows; [`outbox`] itself asks for the transaction id first), so its id is below `N`. After step 3
//! every number `<= L` is committed and visible, or rolled back and never will be. Writers that start after
//! step 2 have larger ids and hold nothing up.
//!
//! Two traps the lead's first sketch ("read `L` and `S = pg_current_snapshot()` together, wait for
//! `pg_snapshot_xip(S)`") falls into, both pinned by `postgres_late_commit_is_not_settled`: a snapshot's `xmax`
//! is the latest *completed* id plus one, so a writer whose id is at or above it is in progress yet absent from
//! `xip` (the test saw `726:726:` with transaction 726 open); and a writer that takes its id after the snapshot
//! could still draw its number before `L` is read. Hence the order above and our own id as the mark.
//!
//! The price: each call burns one transaction id (four a second while the dispatcher runs, harmless next to
//! ingest), and a transaction left open with an id stalls the horizon (for [`SETTLE_WAIT`] per call, the
//! dispatcher tries again on its next tick), which is the correct answer, since it might be a writer.
//!
//! # One dispatcher per database
//!
//! [`WebhookStore::try_lead`] holds a session advisory lock ([`DISPATCH_LOCK`]) on a connection of its own,
//! outside the pool; the node holding it dispatches, the others ask again every few seconds; a node that dies
//! loses its session and with it the lock. [`WebhookStore::enqueue`] also compares and sets the cursors, so even
//! two nodes both believing they lead could not queue an event twice.

use postgres::{Client, GenericClient};
use time::OffsetDateTime;

use super::{decode, encode, to_i64, to_u64, Fail, PgStore};
use crate::store::StoreError;
use crate::webhooks::{
    Attempt, Cursors, Delivery, DeliveryStatus, Endpoint, EndpointStats, Event, NewDelivery,
    WebhookStore,
};

/// Session advisory lock of the dispatching node (ASCII "dockhook").
const DISPATCH_LOCK: i64 = 0x646f_636b_686f_6f6b;

/// How long [`WebhookStore::settled`] waits for in-flight writers before answering "not now".
const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The dispatch lock's own connection, and whether it holds the lock.
#[derive(Default)]
pub(super) struct Leader {
    conn: Option<(Client, bool)>,
}

/// Appends `event` to the outbox inside `tx` (an office write's transaction).
pub(super) fn outbox(tx: &mut postgres::Transaction<'_>, event: &Event) -> Result<(), Fail> {
    // The transaction id before the sequence number: see "Late commits" in the module docs.
    tx.execute("SELECT pg_current_xact_id()", &[])?;
    tx.execute(
        "INSERT INTO webhook_outbox (event) VALUES ($1)",
        &[&encode(event)?],
    )?;
    Ok(())
}

fn status_text(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
    }
}

const LAST_VALUES: &str = "SELECT
    (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM server_seq_seq),
    (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM discrepancies_id_seq),
    (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM webhook_outbox_seq_seq)";

fn last_values(c: &mut impl GenericClient) -> Result<Cursors, Fail> {
    let r = c.query_one(LAST_VALUES, &[])?;
    Ok(Cursors {
        movements: to_u64(r.get(0)),
        discrepancies: to_u64(r.get(1)),
        outbox: to_u64(r.get(2)),
    })
}

fn save(tx: &mut postgres::Transaction<'_>, d: &Delivery) -> Result<(), Fail> {
    tx.execute(
        "UPDATE webhook_deliveries SET status = $2, next_attempt_at = $3, body = $4 WHERE id = $1",
        &[
            &to_i64(d.id),
            &status_text(d.status),
            &d.next_attempt_at,
            &encode(d)?,
        ],
    )?;
    Ok(())
}

fn lock_delivery(tx: &mut postgres::Transaction<'_>, id: u64) -> Result<Option<Delivery>, Fail> {
    let row = tx.query_opt(
        "SELECT body FROM webhook_deliveries WHERE id = $1 FOR UPDATE",
        &[&to_i64(id)],
    )?;
    Ok(match row {
        Some(r) => Some(decode("webhook_deliveries", r.get::<_, &str>(0))?),
        None => None,
    })
}

impl WebhookStore for PgStore {
    fn put_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let body = encode(endpoint)?;
        self.in_tx(true, |tx| {
            let heads = last_values(tx)?;
            tx.execute(
                "INSERT INTO webhook_endpoints (id, body) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
                &[&endpoint.id, &body],
            )?;
            tx.execute(
                "INSERT INTO webhook_cursors (movements, discrepancies, outbox) VALUES ($1, $2, $3)
                 ON CONFLICT (one) DO NOTHING",
                &[
                    &to_i64(heads.movements),
                    &to_i64(heads.discrepancies),
                    &to_i64(heads.outbox),
                ],
            )?;
            Ok(())
        })
    }

    fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        self.with_conn(true, |c| {
            c.query("SELECT body FROM webhook_endpoints ORDER BY id", &[])?
                .iter()
                .map(|r| decode("webhook_endpoints", r.get::<_, &str>(0)).map_err(Fail::from))
                .collect()
        })
    }

    fn delete_endpoint(&self, id: &str) -> Result<bool, StoreError> {
        self.in_tx(true, |tx| {
            tx.execute("DELETE FROM webhook_deliveries WHERE endpoint = $1", &[&id])?;
            Ok(tx.execute("DELETE FROM webhook_endpoints WHERE id = $1", &[&id])? > 0)
        })
    }

    fn cursors(&self) -> Result<Option<Cursors>, StoreError> {
        self.with_conn(true, |c| {
            Ok(c.query_opt(
                "SELECT movements, discrepancies, outbox FROM webhook_cursors",
                &[],
            )?
            .map(|r| Cursors {
                movements: to_u64(r.get(0)),
                discrepancies: to_u64(r.get(1)),
                outbox: to_u64(r.get(2)),
            }))
        })
    }

    fn heads(&self) -> Result<Cursors, StoreError> {
        self.with_conn(true, last_values)
    }

    fn settled(&self) -> Result<Option<Cursors>, StoreError> {
        self.with_conn(true, |c| {
            let horizon = last_values(c)?;
            // A transaction id of our own, committed at once (autocommit): every writer that drew a number
            // before `horizon` was read has a smaller id. See "Late commits" in the module docs.
            let mark: i64 = c
                .query_one("SELECT pg_current_xact_id()::text::bigint", &[])?
                .get(0);
            let end = std::time::Instant::now() + SETTLE_WAIT;
            loop {
                let running: i64 = c
                    .query_one(
                        "SELECT count(*) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
                         WHERE x::text::bigint < $1",
                        &[&mark],
                    )?
                    .get(0);
                if running == 0 {
                    return Ok(Some(horizon));
                }
                if std::time::Instant::now() >= end {
                    return Ok(None);
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    }

    fn try_lead(&self) -> Result<bool, StoreError> {
        let mut leader = self.leader.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((client, held)) = leader.conn.as_mut() {
            let check = if *held {
                client.simple_query("SELECT 1").map(|_| true)
            } else {
                client
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&DISPATCH_LOCK])
                    .map(|r| r.get(0))
            };
            match check {
                Ok(now_held) => {
                    *held = now_held;
                    return Ok(now_held);
                }
                // The session is gone, and with it the lock if it was held: start over below.
                Err(_) => leader.conn = None,
            }
        }
        let mut client = self.pool.connect()?;
        let held: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&DISPATCH_LOCK])
            .map_err(|e| super::pg_error(&e))?
            .get(0);
        leader.conn = Some((client, held));
        Ok(held)
    }

    fn enqueue(
        &self,
        from: Cursors,
        to: Cursors,
        deliveries: &[NewDelivery],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.in_tx(false, |tx| {
            let moved = tx.execute(
                "UPDATE webhook_cursors SET movements = $4, discrepancies = $5, outbox = $6
                 WHERE movements = $1 AND discrepancies = $2 AND outbox = $3",
                &[
                    &to_i64(from.movements),
                    &to_i64(from.discrepancies),
                    &to_i64(from.outbox),
                    &to_i64(to.movements),
                    &to_i64(to.discrepancies),
                    &to_i64(to.outbox),
                ],
            )?;
            if moved != 1 {
                return Err(StoreError::Refused("webhook cursors moved meanwhile".into()).into());
            }
            for new in deliveries {
                let id: i64 = tx
                    .query_one("SELECT nextval('webhook_deliveries_id_seq')", &[])?
                    .get(0);
                let delivery = Delivery {
                    id: to_u64(id),
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
                tx.execute(
                    "INSERT INTO webhook_deliveries (id, endpoint, status, next_attempt_at, body)
                     VALUES ($1, $2, 'pending', $3, $4)",
                    &[&id, &new.endpoint, &now, &encode(&delivery)?],
                )?;
            }
            Ok(())
        })
    }

    fn due(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.with_conn(true, |c| {
            c.query(
                "SELECT body FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1
                 ORDER BY next_attempt_at, id LIMIT $2",
                &[&now, &to_i64(limit as u64)],
            )?
            .iter()
            .map(|r| decode("webhook_deliveries", r.get::<_, &str>(0)).map_err(Fail::from))
            .collect()
        })
    }

    fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        self.with_conn(true, |c| {
            Ok(c.query_one(
                "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'",
                &[],
            )?
            .get(0))
        })
    }

    fn record_attempt(
        &self,
        id: u64,
        attempt: &Attempt,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.in_tx(true, |tx| {
            let Some(mut d) = lock_delivery(tx, id)? else {
                return Ok(());
            };
            if d.status != DeliveryStatus::Pending {
                return Ok(());
            }
            d.attempts += 1;
            match attempt {
                Attempt::Delivered => {
                    d.status = DeliveryStatus::Delivered;
                    d.next_attempt_at = None;
                    d.delivered_at = Some(now);
                    // A hundred movements weigh tens of kilobytes; the receiver has them now.
                    d.body.clear();
                    tx.execute(
                        "UPDATE webhook_endpoints SET last_success_at = $2, last_error = NULL WHERE id = $1",
                        &[&d.endpoint, &now],
                    )?;
                }
                Attempt::Retry { error, next } => {
                    d.next_attempt_at = Some(*next);
                    d.last_error = Some(error.clone());
                }
                Attempt::GiveUp { error } => {
                    d.status = DeliveryStatus::Failed;
                    d.next_attempt_at = None;
                    d.last_error = Some(error.clone());
                }
            }
            if let Some(error) = &d.last_error {
                if d.status != DeliveryStatus::Delivered {
                    tx.execute(
                        "UPDATE webhook_endpoints SET last_error = $2 WHERE id = $1",
                        &[&d.endpoint, error],
                    )?;
                }
            }
            save(tx, &d)
        })
    }

    fn deliveries(
        &self,
        endpoint: &str,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let status = status.map(status_text);
        self.with_conn(true, |c| {
            c.query(
                "SELECT body FROM webhook_deliveries WHERE endpoint = $1 AND ($2::text IS NULL OR status = $2)
                 ORDER BY id DESC LIMIT $3",
                &[&endpoint, &status, &to_i64(limit as u64)],
            )?
            .iter()
            .map(|r| decode("webhook_deliveries", r.get::<_, &str>(0)).map_err(Fail::from))
            .collect()
        })
    }

    /// One `GROUP BY` over the deliveries (the endpoint index); the last success and error are the endpoint's
    /// own columns.
    fn endpoint_stats(&self) -> Result<Vec<(String, EndpointStats)>, StoreError> {
        self.with_conn(true, |c| {
            Ok(c.query(
                "SELECT e.id, e.last_success_at, e.last_error,
                        count(d.id) FILTER (WHERE d.status = 'pending'),
                        count(d.id) FILTER (WHERE d.status = 'failed'),
                        count(d.id) FILTER (WHERE d.status = 'delivered')
                 FROM webhook_endpoints e LEFT JOIN webhook_deliveries d ON d.endpoint = e.id
                 GROUP BY e.id ORDER BY e.id",
                &[],
            )?
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    EndpointStats {
                        last_success_at: r.get(1),
                        last_error: r.get(2),
                        pending: to_u64(r.get(3)),
                        failed: to_u64(r.get(4)),
                        delivered: to_u64(r.get(5)),
                    },
                )
            })
            .collect())
        })
    }

    fn retry(
        &self,
        endpoint: &str,
        id: u64,
        now: OffsetDateTime,
    ) -> Result<Option<Delivery>, StoreError> {
        self.in_tx(true, |tx| {
            let Some(mut d) = lock_delivery(tx, id)? else {
                return Ok(None);
            };
            if d.endpoint != endpoint {
                return Ok(None);
            }
            if d.status == DeliveryStatus::Delivered {
                return Err(
                    StoreError::Refused(format!("delivery {id} was already delivered")).into(),
                );
            }
            d.status = DeliveryStatus::Pending;
            d.attempts = 0;
            d.next_attempt_at = Some(now);
            save(tx, &d)?;
            Ok(Some(d))
        })
    }

    fn enqueue_event(&self, event: &Event) -> Result<u64, StoreError> {
        self.in_tx(false, |tx| {
            outbox(tx, event)?;
            Ok(to_u64(
                tx.query_one("SELECT currval('webhook_outbox_seq_seq')", &[])?
                    .get(0),
            ))
        })
    }

    fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
        self.with_conn(true, |c| {
            c.query(
                "SELECT seq, event FROM webhook_outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&to_i64(after), &to_i64(limit as u64)],
            )?
            .iter()
            .map(|r| {
                Ok((
                    to_u64(r.get(0)),
                    decode("webhook_outbox", r.get::<_, &str>(1)).map_err(Fail::from)?,
                ))
            })
            .collect()
        })
    }
}
