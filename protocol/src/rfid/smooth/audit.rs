//! The audit ring: the last raw reads, bounded in count and in age, for a support case ("what did the reader
//! see at door 3 at 14:02?").
//!
//! A fixed-capacity ring allocated once: a new read past capacity overwrites the oldest, and reads older than
//! the maximum age are dropped from the front on every insert and on [`super::Smoother::handle_timeout`]. Reads
//! are kept as received (raw `at`), whether or not smoothing counted them.

use super::key::{EpcKey, MAX_EPC_BYTES};
use crate::rfid::{hex, Millis, TagRead};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// One raw read as the audit dump shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Lowercase hex; an EPC longer than 62 bytes (not a valid Gen2 EPC) is cut to its first 62.
    pub epc: String,
    /// The antenna port, 1-based.
    pub antenna: u16,
    /// dBm, when the reader reported it.
    pub rssi: Option<i16>,
    /// The read's own time on the caller's clock.
    pub at: Millis,
    /// How many sightings the reader folded into this report.
    pub count: u32,
}

struct Entry {
    epc: EpcKey,
    at: Millis,
    count: u32,
    antenna: u16,
    rssi: Option<i16>,
}

pub(crate) struct AuditRing {
    buf: VecDeque<Entry>,
    capacity: usize,
    max_age: Millis,
    /// Heap bytes owned by entries with EPCs longer than the inline size.
    heap_bytes: usize,
    /// Reads pushed out by newer ones (full) or by age.
    pub(crate) overwritten: u64,
    pub(crate) aged_out: u64,
}

impl AuditRing {
    pub(crate) fn new(capacity: usize, max_age: Millis) -> Self {
        AuditRing {
            buf: VecDeque::with_capacity(capacity),
            capacity,
            max_age,
            heap_bytes: 0,
            overwritten: 0,
            aged_out: 0,
        }
    }

    /// Records `read`; `now` is the smoother's clock (at least `read.at`).
    #[inline]
    pub(crate) fn push(&mut self, read: &TagRead, now: Millis) {
        if self.capacity == 0 {
            return;
        }
        self.expire(now);
        if self.buf.len() == self.capacity {
            self.pop();
            self.overwritten += 1;
        }
        let epc = EpcKey::new(&read.epc);
        self.heap_bytes += epc.heap_bytes();
        self.buf.push_back(Entry {
            epc,
            at: read.at,
            count: read.count,
            antenna: read.antenna,
            rssi: read.rssi,
        });
    }

    /// Drops reads from the front while they are older than the maximum age at `now`.
    #[inline]
    pub(crate) fn expire(&mut self, now: Millis) {
        while self
            .buf
            .front()
            .is_some_and(|e| e.at.saturating_add(self.max_age) <= now)
        {
            self.pop();
            self.aged_out += 1;
        }
    }

    fn pop(&mut self) {
        if let Some(e) = self.buf.pop_front() {
            self.heap_bytes -= e.epc.heap_bytes();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The reads still within the maximum age at `now`, oldest first.
    pub(crate) fn records(&self, now: Millis) -> Vec<AuditRecord> {
        self.buf
            .iter()
            .filter(|e| e.at.saturating_add(self.max_age) > now)
            .map(|e| AuditRecord {
                epc: hex(e.epc.as_bytes()),
                antenna: e.antenna,
                rssi: e.rssi,
                at: e.at,
                count: e.count,
            })
            .collect()
    }

    pub(crate) fn approx_bytes(&self) -> usize {
        self.buf.capacity() * std::mem::size_of::<Entry>() + self.heap_bytes
    }

    /// What [`Self::approx_bytes`] can reach: every slot used, every EPC of the longest kind.
    pub(crate) fn bound(capacity: usize) -> usize {
        capacity * (std::mem::size_of::<Entry>() + MAX_EPC_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(epc: u8, at: Millis) -> TagRead {
        TagRead {
            epc: vec![0xAB, epc],
            pc: None,
            antenna: 1,
            rssi: Some(-50),
            at,
            count: 1,
        }
    }

    #[test]
    fn bounded_by_count_and_age() {
        // (capacity, max_age, read times, dump time, times expected in the dump)
        #[rustfmt::skip]
        type Case<'a> = (usize, Millis, &'a [Millis], Millis, &'a [Millis]);
        let cases: &[Case<'_>] = &[
            (4, 10_000, &[0, 1, 2, 3, 4, 5], 5, &[2, 3, 4, 5]),
            (4, 1_000, &[0, 500, 1600], 1600, &[1600]),
            (4, 1_000, &[0, 500, 900], 1499, &[500, 900]),
            (4, 1_000, &[0, 500, 900], 1500, &[900]),
            (0, 1_000, &[0, 1, 2], 2, &[]),
        ];
        for (i, &(cap, age, times, now, want)) in cases.iter().enumerate() {
            let mut ring = AuditRing::new(cap, age);
            for &t in times {
                ring.push(&read(t as u8, t), t);
            }
            let got: Vec<Millis> = ring.records(now).iter().map(|r| r.at).collect();
            assert_eq!(got, want, "case {i}");
            assert!(ring.len() <= cap, "case {i}");
            assert!(ring.approx_bytes() <= AuditRing::bound(cap), "case {i}");
        }
    }

    #[test]
    fn never_grows_past_its_first_allocation() {
        let mut ring = AuditRing::new(100, 1_000_000);
        let before = ring.approx_bytes();
        for t in 0..10_000 {
            ring.push(&read(t as u8, t), t);
        }
        assert_eq!(ring.approx_bytes(), before);
        assert_eq!(ring.overwritten, 9_900);
    }
}
