//! Refused-scan counters for the office's pick-accuracy report (`POST /v1/sync/scan-stats`, DESIGN §5).
//!
//! A refused scan is not a movement: it changes no stock and the journal never sees it. What the office wants of
//! it is a count per operator, reason and hour, so the device keeps exactly that, in a sled tree of the local view,
//! and reports the counters that changed since they were last reported:
//!
//! ```text
//! tree "scan_stats": key = hour (unix seconds, u64 big-endian) ++ reason ++ 0x00 ++ operator (empty: none)
//!                    value = count (u64 big-endian) ++ reported (u64 big-endian)
//! ```
//!
//! - `count` is the running total of refusals for the key; `reported` is the largest count the server has
//!   acknowledged. A row with `count > reported` is *unreported*; the sync task sends such rows (at most
//!   [`MAX_SCAN_STATS_ROWS`] per request) and, once the server answered 2xx, raises `reported` to the count it
//!   sent, never lowering it, so a refusal counted while the request was in flight stays unreported.
//! - The server keeps the largest count it was sent per key, so resends and late reports are harmless: counts are
//!   absolute, not increments.
//! - These are statistics, not stock: an increment is a plain sled update, flushed with sled's own periodic
//!   flush, not fdatasync'ed per scan. A kill -9 or power loss can forget the last half-second of refusals, and a
//!   view rebuilt after damage (crate::view) starts its counters at zero (the server then keeps its larger
//!   values until the new counts pass them). Reported rows older than [`KEEP_REPORTED`] are pruned.

use dockhand_protocol::sync::{ScanStat, MAX_SCAN_STATS_ROWS};
use time::{Duration, OffsetDateTime};

use crate::view::ViewError;

/// The sled tree.
pub(crate) const TREE: &str = "scan_stats";

/// How long a fully reported row is kept (a device's own screen could show it; the server has it anyway).
pub const KEEP_REPORTED: Duration = Duration::days(8);

/// The refused-scan counters in the view's sled database.
#[derive(Debug, Clone)]
pub struct ScanStats {
    tree: sled::Tree,
}

/// The start of the UTC hour holding `at`.
pub fn hour_of(at: OffsetDateTime) -> OffsetDateTime {
    let t = at.unix_timestamp();
    let h = t - t.rem_euclid(3600);
    OffsetDateTime::from_unix_timestamp(h).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn key(hour: OffsetDateTime, reason: &str, operator: Option<&str>) -> Vec<u8> {
    let secs = u64::try_from(hour.unix_timestamp()).unwrap_or(0);
    let op = operator.unwrap_or("");
    let mut k = Vec::with_capacity(8 + reason.len() + 1 + op.len());
    k.extend_from_slice(&secs.to_be_bytes());
    k.extend_from_slice(reason.as_bytes());
    k.push(0);
    k.extend_from_slice(op.as_bytes());
    k
}

/// A stored row as `(count, reported)`.
fn value(v: &[u8]) -> Option<(u64, u64)> {
    let count = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let reported = u64::from_be_bytes(v.get(8..16)?.try_into().ok()?);
    (v.len() == 16).then_some((count, reported))
}

fn encode(count: u64, reported: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&count.to_be_bytes());
    v.extend_from_slice(&reported.to_be_bytes());
    v
}

fn decode_key(k: &[u8]) -> Option<(OffsetDateTime, String, Option<String>)> {
    let secs = u64::from_be_bytes(k.get(..8)?.try_into().ok()?);
    let rest = k.get(8..)?;
    let nul = rest.iter().position(|&b| b == 0)?;
    let reason = std::str::from_utf8(&rest[..nul]).ok()?.to_string();
    let op = std::str::from_utf8(&rest[nul + 1..]).ok()?;
    let hour = OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    Some((hour, reason, (!op.is_empty()).then(|| op.to_string())))
}

/// The view's entry check (crate::storecheck) for this tree: keys and values decode.
pub(crate) fn verify_entry(k: &[u8], v: &[u8]) -> Result<(), String> {
    match (decode_key(k), value(v)) {
        (Some(_), Some(_)) => Ok(()),
        _ => Err("scan stats entry does not decode".into()),
    }
}

impl ScanStats {
    /// The counters in `db`.
    pub fn new(db: &sled::Db) -> Result<ScanStats, ViewError> {
        Ok(ScanStats {
            tree: db.open_tree(TREE)?,
        })
    }

    /// Counts one refusal of `reason` by `operator` at device time `at`.
    pub fn count(
        &self,
        at: OffsetDateTime,
        operator: Option<&str>,
        reason: &str,
    ) -> Result<(), ViewError> {
        let operator = operator.filter(|o| !o.is_empty());
        let k = key(hour_of(at), reason, operator);
        self.tree.update_and_fetch(k, |old| {
            let (count, reported) = old.and_then(value).unwrap_or((0, 0));
            Some(encode(count.saturating_add(1), reported))
        })?;
        Ok(())
    }

    /// Up to [`MAX_SCAN_STATS_ROWS`] rows whose count the server has not acknowledged, oldest hour first.
    pub fn unreported(&self) -> Result<Vec<ScanStat>, ViewError> {
        let mut out = Vec::new();
        for kv in self.tree.iter() {
            let (k, v) = kv?;
            let (Some((hour, reason, operator)), Some((count, reported))) =
                (decode_key(&k), value(&v))
            else {
                continue;
            };
            if count > reported {
                out.push(ScanStat {
                    hour,
                    operator,
                    reason,
                    count,
                });
                if out.len() == MAX_SCAN_STATS_ROWS {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Records that the server acknowledged `sent`; prunes reported rows older than `now - KEEP_REPORTED`.
    pub fn reported(&self, sent: &[ScanStat], now: OffsetDateTime) -> Result<(), ViewError> {
        for s in sent {
            let k = key(s.hour, &s.reason, s.operator.as_deref());
            self.tree.update_and_fetch(&k, |old| {
                let (count, reported) = old.and_then(value)?;
                Some(encode(count, reported.max(s.count.min(count))))
            })?;
        }
        let horizon = hour_of(now - KEEP_REPORTED);
        let end = u64::try_from(horizon.unix_timestamp()).unwrap_or(0);
        for kv in self.tree.range(..end.to_be_bytes().to_vec()) {
            let (k, v) = kv?;
            if value(&v).is_some_and(|(c, r)| c <= r) {
                self.tree.remove(k)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn stats() -> (tempfile::TempDir, ScanStats) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        (dir, ScanStats::new(&db).unwrap())
    }

    fn rows(s: &ScanStats) -> Vec<(String, Option<String>, String, u64)> {
        s.unreported()
            .unwrap()
            .into_iter()
            .map(|r| (r.hour.to_string(), r.operator, r.reason, r.count))
            .collect()
    }

    #[test]
    fn counts_per_hour_operator_and_reason() {
        let (_d, s) = stats();
        let t = datetime!(2026-11-27 06:59:59.9 UTC);
        for (at, op, reason) in [
            (t, Some("anna"), "over_pick"),
            (t, Some("anna"), "over_pick"),
            (t, Some("anna"), "wrong_item"),
            (t, None, "undecodable"),
            (t, Some(""), "undecodable"),
            (t + Duration::milliseconds(100), Some("anna"), "over_pick"),
            // Another offset, same instant's hour.
            (
                datetime!(2026-11-27 08:10:00 +02:00),
                Some("anna"),
                "over_pick",
            ),
        ] {
            s.count(at, op, reason).unwrap();
        }
        assert_eq!(
            rows(&s),
            vec![
                // Hour, then reason, then operator.
                (
                    "2026-11-27 6:00:00.0 +00:00:00".into(),
                    Some("anna".into()),
                    "over_pick".into(),
                    3
                ),
                (
                    "2026-11-27 6:00:00.0 +00:00:00".into(),
                    None,
                    "undecodable".into(),
                    2
                ),
                (
                    "2026-11-27 6:00:00.0 +00:00:00".into(),
                    Some("anna".into()),
                    "wrong_item".into(),
                    1
                ),
                (
                    "2026-11-27 7:00:00.0 +00:00:00".into(),
                    Some("anna".into()),
                    "over_pick".into(),
                    1
                ),
            ]
        );
        for r in s.unreported().unwrap() {
            assert_eq!(r.validate(), Ok(()), "{r:?}");
        }
    }

    #[test]
    fn a_refusal_during_the_request_stays_unreported() {
        let (_d, s) = stats();
        let t = datetime!(2026-11-27 06:10:00 UTC);
        s.count(t, Some("bo"), "wrong_lot").unwrap();
        let sent = s.unreported().unwrap();
        // Counted while the request was on the wire.
        s.count(t, Some("bo"), "wrong_lot").unwrap();
        s.reported(&sent, t).unwrap();
        let left = s.unreported().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].count, 2);
        s.reported(&left, t).unwrap();
        assert!(s.unreported().unwrap().is_empty());
        // A stale acknowledgement never lowers what was reported.
        s.reported(&sent, t).unwrap();
        assert!(s.unreported().unwrap().is_empty());
    }

    #[test]
    fn old_reported_rows_are_pruned_unreported_ones_kept() {
        let (_d, s) = stats();
        let old = datetime!(2026-11-01 06:10:00 UTC);
        s.count(old, Some("a"), "refused").unwrap();
        s.count(old, Some("b"), "refused").unwrap();
        let first: Vec<_> = s
            .unreported()
            .unwrap()
            .into_iter()
            .filter(|r| r.operator.as_deref() == Some("a"))
            .collect();
        s.reported(&first, datetime!(2026-11-27 06:00:00 UTC))
            .unwrap();
        assert_eq!(s.tree.len(), 1, "a's reported row is pruned, b's kept");
        assert_eq!(rows(&s)[0].1.as_deref(), Some("b"));
    }

    #[test]
    fn garbage_entries_are_refused_by_the_check() {
        let k = key(
            datetime!(2026-11-27 06:00:00 UTC),
            "over_pick",
            Some("anna"),
        );
        assert_eq!(verify_entry(&k, &encode(2, 1)), Ok(()));
        for (k, v) in [
            (&k[..], &[0u8; 15][..]),
            (&k[..7], &encode(1, 0)[..]),
            (&[0u8; 8][..], &encode(1, 0)[..]),
            (&[0xFF; 12][..], &encode(1, 0)[..]),
        ] {
            assert!(verify_entry(k, v).is_err(), "{k:?} {v:?}");
        }
    }

    #[test]
    fn at_most_one_request_of_rows_at_a_time() {
        let (_d, s) = stats();
        let t = datetime!(2026-11-27 06:10:00 UTC);
        for i in 0..MAX_SCAN_STATS_ROWS + 5 {
            s.count(t, Some(&format!("op{i}")), "refused").unwrap();
        }
        let first = s.unreported().unwrap();
        assert_eq!(first.len(), MAX_SCAN_STATS_ROWS);
        s.reported(&first, t).unwrap();
        assert_eq!(s.unreported().unwrap().len(), 5);
    }

    proptest::proptest! {
        /// Any key and value bytes: the entry check answers, never panics; whatever a real row encodes to decodes
        /// back to the same hour, reason and operator.
        #[test]
        fn keys_round_trip_and_garbage_never_panics(
            k in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            v in proptest::collection::vec(proptest::num::u8::ANY, 0..20),
            hours in 0i64..2_000_000,
            reason in "[a-z0-9_]{1,32}",
            op in proptest::option::of("[^\\x00]{1,20}"),
        ) {
            let _ = verify_entry(&k, &v);
            let hour = OffsetDateTime::from_unix_timestamp(hours * 3600).unwrap();
            let key = key(hour, &reason, op.as_deref());
            proptest::prop_assert_eq!(decode_key(&key), Some((hour, reason, op)));
        }
    }
}
