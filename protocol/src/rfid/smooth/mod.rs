//! Read smoothing (DESIGN §7): a flood of raw reads in; one arrival and one departure per tag pass out, the
//! departure carrying per-antenna statistics and a direction with a confidence. Raw reads also go to a bounded
//! audit ring. Sans-IO: reads and `now` go in, [`PassEvent`]s come out; nothing here reads a clock.
//!
//! # Calling order
//!
//! Feed reads to [`Smoother::observe`] as they come; call [`Smoother::handle_timeout`] once the time returned by
//! [`Smoother::poll_timeout`] is reached; after either, drain [`Smoother::poll_event`]. [`Smoother::finish`]
//! closes every open pass (shutdown, reader reconfigured). Events come out in the order of their causes.
//!
//! # One EPC's states
//!
//! ```text
//!            counted read                 reads reach min_reads: Arrival
//!   absent ───────────────▶ pending ─────────────────────────────────────▶ arrived
//!     ▲                        │ quiet_ms without a counted read: a stray;   │ quiet_ms without a counted read:
//!     │                        │ evicted: counted as evicted; no event       │ Departure (end: quiet)
//!     │                        ▼                                             │ evicted: Departure (end: evicted)
//!     └────────────────────────┴─────────────────────────────────────────────┘
//! ```
//!
//! A read *counts* when its antenna has the `Outside` or `Inside` role, its EPC is 1..=62 bytes and, when both the
//! read's RSSI and `min_rssi` are given, the RSSI is at least `min_rssi`. Every read, counted or not, goes to the
//! audit ring and the stats. An antenna missing from `roles` is ignored. `count` (LLRP's TagSeenCount) adds up:
//! a report of 5 sightings is 5 reads.
//!
//! # Timing rules
//!
//! - The clock is the latest time seen, from reads and `handle_timeout`; a read stamped earlier (two readers,
//!   report latency) is taken as happening at the clock. The clock never goes back.
//! - A pass ends when `clock - last_seen >= quiet_ms`. `observe` first closes every pass that is due at the read's
//!   time, so a read after a gap of `quiet_ms` or more always starts a new pass, whether or not `handle_timeout`
//!   ran in between. Passes are therefore exactly the maximal runs of an EPC's counted reads with gaps shorter
//!   than `quiet_ms`; those with at least `min_reads` reads get an arrival and a departure, the rest are strays.
//!   The property test holds the smoother to that naive model.
//! - The arrival is sent by the read that brings the pass to `min_reads`: the gate learns of a pallet within a few
//!   reads, and of its direction `quiet_ms` after its last read.
//! - `quiet_ms` must exceed the longest silence of a tag that is still passing, *including a reader reconnect*.
//!   A 2 s disconnect mid-pass with `quiet_ms = 1500` splits the pass in two, each seeing one side mostly, so
//!   neither reads as a clean inbound (the gate flags rather than receives, but the pallet is not received).
//!   Recommendation: `quiet_ms` ≥ the reader's reconnect time + 1 s (3000 for a 2 s reconnect). The price of a
//!   longer `quiet_ms` is a later departure, and two passes of one tag closer than `quiet_ms` merging into one.
//!
//! # Direction
//!
//! See [`Direction`]: the order of first sight between the outside and inside antennas, the
//! order of last sight and the order of their RSSI peaks, each scaled by `direction_scale_ms`, give `Inbound`,
//! `Outbound`, `Bounced` (went in and straight back out: not a receipt) or `Unknown` (one side only), with a
//! confidence in [0, 1].
//!
//! # Memory bound
//!
//! Every structure is bounded by the configuration, whatever the reads, as long as the caller drains events:
//! - tracked tags ≤ `max_tags`: a new EPC beyond it evicts the least recently read tag first (the head of an LRU
//!   list, O(1)); an arrived tag evicted sends its departure early (`end: evicted`), a pending one only counts as evicted.
//!   So a flood of unique EPCs (a neighbouring door, a misread storm) churns the LRU's stale end while the tags
//!   being read stay at its fresh end.
//! - per tag: one slab entry, one fixed array of per-antenna statistics (one slot per role antenna), one table
//!   entry; EPCs ≤ 30 bytes (every TDS 1.x scheme) are stored inline, longer ones (≤ 62) on the heap.
//! - the audit ring: allocated once with `audit_capacity` entries, never grows.
//!
//! [`Smoother::approx_bytes`] adds up its structures' capacities; [`SmoothConfig::memory_bound`] is what that can
//! reach. For the default gate (two antennas, max_tags 10,000, 100,000 audit reads) the bound is 17.1 MB, of
//! which 11.8 MB is the audit ring if every EPC were 62 bytes; an empty smoother holds 5.6 MB (the audit ring,
//! allocated up front), and 1,000,000 distinct 96-bit EPCs streamed through peak at 8.1 MB (tests
//! `memory_bound_figures`, `a_million_distinct_epcs_stay_within_the_bound`). Per tracked tag: 64 B of slab entry,
//! 24 B per role antenna, 41 B of table bucket (×8/7 load, ×2 worst case after tombstones).
//!
//! # Complexity
//!
//! `observe` is O(1) expected and allocates nothing for a tag already tracked: one hash lookup (a folded-multiply
//! hasher over the EPC bytes, [`FoldHasher`]), a move to the tail of the LRU list, a write into the tag's per-antenna
//! slot and a push into the audit ring. Each departure and eviction pops the LRU head (O(1) plus building the
//! event); `poll_timeout` is O(1). No operation scans the tags.

mod audit;
mod direction;
mod key;
#[cfg(test)]
mod tests;

pub use audit::AuditRecord;
pub use direction::Direction;
pub use key::{FoldBuild, FoldHasher, MAX_EPC_BYTES};

use super::{hex, Millis, TagRead};
use audit::AuditRing;
use direction::Side;
use key::EpcKey;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::mem::size_of;

/// At most this many antennas can have the `Outside` or `Inside` role (each costs every tracked tag a slot).
pub const MAX_ROLE_ANTENNAS: usize = 32;

/// Which side of the door an antenna watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Faces the yard or the truck: an inbound tag is seen here first.
    Outside,
    /// Faces the warehouse: an inbound tag is seen here last.
    Inside,
    /// Reads are audited and counted in the stats, never smoothed (a reference tag, a test antenna).
    Ignore,
}

/// How a smoother behaves; [`SmoothConfig::gate`] gives the defaults for a two-sided door.
#[derive(Debug, Clone, PartialEq)]
pub struct SmoothConfig {
    /// The role of each antenna port (1-based); ports not listed are ignored.
    pub roles: BTreeMap<u16, Role>,
    /// A pass departs after this long without a counted read. Must exceed the reader's reconnect time.
    pub quiet_ms: Millis,
    /// A pass needs this many reads to arrive; fewer is a stray (a neighbouring door, a reflection).
    pub min_reads: u32,
    /// Reads weaker than this (dBm) do not count, when both this and the read's RSSI are given.
    pub min_rssi: Option<i16>,
    /// At most this many tags are tracked at once; beyond it the least recently read is evicted.
    pub max_tags: usize,
    /// A time difference of this much between the sides makes one direction signal certain.
    pub direction_scale_ms: Millis,
    /// The audit ring keeps at most this many raw reads (0 turns it off).
    pub audit_capacity: usize,
    /// ... and none older than this.
    pub audit_max_age_ms: Millis,
}

impl SmoothConfig {
    /// Defaults for a door with `outside` and `inside` antenna ports: quiet 3 s (survives a 2 s reader
    /// reconnect), 3 reads to arrive, no RSSI floor, 10,000 tags, direction scale 500 ms, and an audit ring of
    /// 100,000 reads or 15 minutes.
    pub fn gate(outside: &[u16], inside: &[u16]) -> Self {
        let roles = outside
            .iter()
            .map(|&a| (a, Role::Outside))
            .chain(inside.iter().map(|&a| (a, Role::Inside)))
            .collect();
        SmoothConfig {
            roles,
            quiet_ms: 3_000,
            min_reads: 3,
            min_rssi: None,
            max_tags: 10_000,
            direction_scale_ms: 500,
            audit_capacity: 100_000,
            audit_max_age_ms: 15 * 60 * 1000,
        }
    }

    /// Checks the values [`Smoother::new`] relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let role_antennas = self.role_antennas().count();
        if self.quiet_ms == 0 {
            Err(ConfigError::Zero("quiet_ms"))
        } else if self.min_reads == 0 {
            Err(ConfigError::Zero("min_reads"))
        } else if self.direction_scale_ms == 0 {
            Err(ConfigError::Zero("direction_scale_ms"))
        } else if self.max_tags == 0 || self.max_tags > MAX_TAGS {
            Err(ConfigError::MaxTags(self.max_tags))
        } else if role_antennas > MAX_ROLE_ANTENNAS {
            Err(ConfigError::TooManyAntennas(role_antennas))
        } else {
            Ok(())
        }
    }

    fn role_antennas(&self) -> impl Iterator<Item = (u16, Role)> + '_ {
        self.roles
            .iter()
            .filter(|(_, r)| **r != Role::Ignore)
            .map(|(&a, &r)| (a, r))
    }

    /// The most [`Smoother::approx_bytes`] can report for this configuration once the caller has drained the
    /// events: every tag slot used with the longest EPCs, the hash table at its largest, a full audit ring.
    pub fn memory_bound(&self) -> usize {
        let n = self.role_antennas().count();
        let slot_of = self
            .roles
            .keys()
            .next_back()
            .map_or(0, |&a| usize::from(a) + 1);
        let tags = self.max_tags;
        size_of::<Smoother>()
            + btree_bytes(self.roles.len())
            + slot_of
            + n * size_of::<(u16, Role)>()
            // The table holds ≤ max_tags entries; deletions leave tombstones, and std's table rehashes in place
            // unless it is over half full, when it doubles once: so at most twice the buckets for max_tags.
            + table_bytes(2 * buckets_for(tags))
            + tags * (size_of::<Tag>() + n * size_of::<AntSlot>() + 2 * MAX_EPC_BYTES)
            // Drained after every call, the queue held at most every tracked tag's departure plus one arrival;
            // VecDeque doubles when it grows.
            + 2 * (tags + 1).max(4) * size_of::<PassEvent>()
            + AuditRing::bound(self.audit_capacity)
    }
}

/// `max_tags` above this is refused (slab indices are u32 and the bound should mean something).
const MAX_TAGS: usize = 1 << 28;

/// A configuration [`Smoother::new`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value that must be at least 1 is 0.
    #[error("rfid smoothing: {0} must be at least 1")]
    Zero(&'static str),
    /// `max_tags` is 0 or unreasonably large.
    #[error("rfid smoothing: max_tags must be between 1 and {MAX_TAGS}, not {0}")]
    MaxTags(usize),
    /// More antennas have the outside or inside role than a tag has slots for.
    #[error(
        "rfid smoothing: at most {MAX_ROLE_ANTENNAS} antennas can be outside or inside, {0} are"
    )]
    TooManyAntennas(usize),
}

/// What the smoother reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PassEvent {
    /// A pass reached `min_reads`: the tag is at the gate.
    Arrival(Arrival),
    /// A pass that arrived has ended.
    Departure(Departure),
}

/// A tag is at the gate; what is known so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arrival {
    /// The EPC bytes.
    #[serde(serialize_with = "ser_hex")]
    pub epc: Vec<u8>,
    /// The pass's first counted read.
    pub first_seen: Millis,
    /// The read that brought the pass to `min_reads`.
    pub at: Millis,
    /// The antenna of the first counted read, and its role: an early hint of the direction, no more.
    pub antenna: u16,
    /// The role of `antenna`.
    pub role: Role,
    /// Reads so far (`min_reads`, or more when the last report folded several sightings).
    pub reads: u32,
}

/// A pass has ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Departure {
    /// The EPC bytes.
    #[serde(serialize_with = "ser_hex")]
    pub epc: Vec<u8>,
    /// The pass's first and last counted reads.
    pub first_seen: Millis,
    /// See `first_seen`.
    pub last_seen: Millis,
    /// Counted reads in the pass.
    pub reads: u32,
    /// One entry per antenna that counted a read, in antenna order.
    pub per_antenna: Vec<AntennaStats>,
    /// Which way the tag went (see [`Direction`]).
    pub direction: Direction,
    /// How sure `direction` is, in [0, 1]; 0 for `Unknown`.
    pub confidence: f32,
    /// Why the pass ended.
    pub end: PassEnd,
}

/// Why a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassEnd {
    /// No counted read for `quiet_ms` (or [`Smoother::finish`]).
    Quiet,
    /// Pushed out by newer tags at `max_tags`, while still being read perhaps: the gate should flag it.
    Evicted,
}

/// What one antenna saw of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AntennaStats {
    /// The antenna port.
    pub antenna: u16,
    /// Its role (outside or inside).
    pub role: Role,
    /// Its first and last counted reads of the tag.
    pub first_seen: Millis,
    /// See `first_seen`.
    pub last_seen: Millis,
    /// Counted reads.
    pub reads: u32,
    /// The strongest RSSI, if the reader reported any.
    pub peak_rssi: Option<i16>,
    /// The middle of the time `peak_rssi` was seen.
    pub peak_at: Option<Millis>,
}

/// Counters since the smoother was made, and current sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SmoothStats {
    /// Every read observed, sightings folded into one report counted each (LLRP TagSeenCount).
    pub reads: u64,
    /// Reads from antennas with the ignore role or none.
    pub ignored: u64,
    /// Reads under `min_rssi`.
    pub weak: u64,
    /// Reads with an empty EPC or one longer than 62 bytes.
    pub rejected: u64,
    /// Passes that arrived (reached `min_reads`).
    pub arrivals: u64,
    /// Passes that departed (every arrival departs once: quiet, evicted or finished).
    pub departures: u64,
    /// Passes that ended below `min_reads`, without events.
    pub strays: u64,
    /// Tags evicted at `max_tags` (arrived or not).
    pub evicted: u64,
    /// Tags tracked now.
    pub tracked: usize,
    /// Raw reads in the audit ring now.
    pub audit_len: usize,
    /// Audited reads pushed out of the full ring by newer ones.
    pub audit_overwritten: u64,
    /// Audited reads dropped for age.
    pub audit_aged_out: u64,
}

const NIL: u32 = u32::MAX;
const NO_SLOT: u8 = u8::MAX;
const NO_RSSI: i16 = i16::MIN;

/// One tracked tag (an open pass), in the slab; linked into the LRU list by `prev`/`next` (oldest read first),
/// or, when free, into the free list by `next`.
struct Tag {
    key: EpcKey,
    first_seen: Millis,
    last_seen: Millis,
    prev: u32,
    next: u32,
    reads: u32,
    first_slot: u8,
    arrived: bool,
}

/// One antenna's view of one pass; times are offsets from the pass's `first_seen` (saturating at ~49 days).
#[derive(Clone, Copy)]
struct AntSlot {
    reads: u32,
    first: u32,
    last: u32,
    peak_first: u32,
    peak_last: u32,
    peak_rssi: i16,
}

impl AntSlot {
    const EMPTY: AntSlot = AntSlot {
        reads: 0,
        first: 0,
        last: 0,
        peak_first: 0,
        peak_last: 0,
        peak_rssi: NO_RSSI,
    };
}

/// Per-EPC pass detection, direction and the audit ring; see the module documentation.
pub struct Smoother {
    cfg: SmoothConfig,
    /// Antenna port → slot in a tag's per-antenna array, `NO_SLOT` for ignored ports.
    slot_of: Vec<u8>,
    /// Slot → (antenna, role).
    slots: Vec<(u16, Role)>,
    index: HashMap<EpcKey, u32, FoldBuild>,
    tags: Vec<Tag>,
    /// `slots.len()` entries per slab entry.
    ants: Vec<AntSlot>,
    /// LRU list: least recently read at the head.
    head: u32,
    tail: u32,
    free: u32,
    clock: Millis,
    /// Heap bytes of long EPC keys (each held twice: table and slab).
    key_heap: usize,
    events: VecDeque<PassEvent>,
    event_heap: usize,
    audit: AuditRing,
    stats: SmoothStats,
}

impl Smoother {
    /// A smoother with nothing tracked; its clock starts at 0.
    pub fn new(cfg: SmoothConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let slots: Vec<(u16, Role)> = cfg.role_antennas().collect();
        let mut slot_of = vec![
            NO_SLOT;
            cfg.roles
                .keys()
                .next_back()
                .map_or(0, |&a| usize::from(a) + 1)
        ];
        for (i, &(a, _)) in slots.iter().enumerate() {
            slot_of[usize::from(a)] = i as u8;
        }
        Ok(Smoother {
            slot_of,
            slots,
            index: HashMap::with_hasher(FoldBuild),
            tags: Vec::new(),
            ants: Vec::new(),
            head: NIL,
            tail: NIL,
            free: NIL,
            clock: 0,
            key_heap: 0,
            events: VecDeque::new(),
            event_heap: 0,
            audit: AuditRing::new(cfg.audit_capacity, cfg.audit_max_age_ms),
            stats: SmoothStats::default(),
            cfg,
        })
    }

    /// The configuration this smoother was made with.
    pub fn config(&self) -> &SmoothConfig {
        &self.cfg
    }

    /// Takes one raw read. Closes the passes due by the read's time first, so events stay in order.
    #[inline]
    pub fn observe(&mut self, read: &TagRead) {
        // A report folding several sightings (LLRP TagSeenCount) counts as that many reads.
        self.stats.reads += u64::from(read.count.max(1));
        let at = read.at.max(self.clock);
        self.clock = at;
        self.audit.push(read, at);
        self.expire(at);

        let slot = match self.slot_of.get(usize::from(read.antenna)) {
            Some(&s) if s != NO_SLOT => s,
            _ => {
                self.stats.ignored += 1;
                return;
            }
        };
        if read.epc.is_empty() || read.epc.len() > MAX_EPC_BYTES {
            self.stats.rejected += 1;
            return;
        }
        if let (Some(min), Some(rssi)) = (self.cfg.min_rssi, read.rssi) {
            if rssi < min {
                self.stats.weak += 1;
                return;
            }
        }

        let i = match self.index.get(read.epc.as_slice()) {
            Some(&i) => {
                self.touch(i);
                i
            }
            None => self.start_pass(&read.epc, at, slot),
        };
        let n = self.slots.len();
        let tag = &mut self.tags[i as usize];
        let count = read.count.max(1);
        tag.last_seen = at;
        tag.reads = tag.reads.saturating_add(count);
        let off = u32::try_from(at - tag.first_seen).unwrap_or(u32::MAX);
        let a = &mut self.ants[i as usize * n + usize::from(slot)];
        if a.reads == 0 {
            a.first = off;
        }
        a.last = off;
        a.reads = a.reads.saturating_add(count);
        if let Some(rssi) = read.rssi {
            if rssi > a.peak_rssi {
                a.peak_rssi = rssi;
                a.peak_first = off;
                a.peak_last = off;
            } else if rssi == a.peak_rssi {
                a.peak_last = off;
            }
        }
        if !tag.arrived && tag.reads >= self.cfg.min_reads {
            tag.arrived = true;
            let (antenna, role) = self.slots[usize::from(tag.first_slot)];
            let arrival = Arrival {
                epc: read.epc.clone(),
                first_seen: tag.first_seen,
                at,
                antenna,
                role,
                reads: tag.reads,
            };
            self.stats.arrivals += 1;
            self.push_event(PassEvent::Arrival(arrival));
        }
    }

    /// Advances the clock to `now` (never back) and closes the passes quiet since `quiet_ms`.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.clock = self.clock.max(now);
        self.expire(self.clock);
        self.audit.expire(self.clock);
    }

    /// When the next pass is due to depart, if any is open: call [`Smoother::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Option<Millis> {
        (self.head != NIL).then(|| {
            self.tags[self.head as usize]
                .last_seen
                .saturating_add(self.cfg.quiet_ms)
        })
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<PassEvent> {
        let e = self.events.pop_front()?;
        self.event_heap -= event_heap(&e);
        Some(e)
    }

    /// Closes every open pass now, as if `quiet_ms` had passed (shutdown, reader reconfigured).
    pub fn finish(&mut self) {
        while self.head != NIL {
            self.depart(self.head, PassEnd::Quiet);
        }
    }

    /// Counters and current sizes.
    pub fn stats(&self) -> SmoothStats {
        SmoothStats {
            tracked: self.index.len(),
            audit_len: self.audit.len(),
            audit_overwritten: self.audit.overwritten,
            audit_aged_out: self.audit.aged_out,
            ..self.stats
        }
    }

    /// The raw reads still in the audit ring (within the maximum age at the clock), oldest first.
    pub fn audit_dump(&self) -> Vec<AuditRecord> {
        self.audit.records(self.clock)
    }

    /// [`Smoother::audit_dump`] as JSON lines, one read per line, for a support case.
    pub fn audit_json_lines(&self) -> String {
        let mut out = String::new();
        for r in self.audit_dump() {
            // A struct of strings and integers always serializes.
            out.push_str(&serde_json::to_string(&r).unwrap_or_default());
            out.push('\n');
        }
        out
    }

    /// The bytes this smoother holds, from its structures' capacities (tables, slab, per-antenna slots, long EPC
    /// keys, queued events, audit ring); not counting allocator overhead. See [`SmoothConfig::memory_bound`].
    pub fn approx_bytes(&self) -> usize {
        size_of::<Self>()
            + btree_bytes(self.cfg.roles.len())
            + self.slot_of.capacity()
            + self.slots.capacity() * size_of::<(u16, Role)>()
            + table_bytes(buckets_for(self.index.capacity()))
            + self.tags.capacity() * size_of::<Tag>()
            + self.ants.capacity() * size_of::<AntSlot>()
            + self.key_heap
            + self.events.capacity() * size_of::<PassEvent>()
            + self.event_heap
            + self.audit.approx_bytes()
    }

    /// Closes every pass due at `now`: the LRU head is the least recently read, so stop at the first not due.
    #[inline]
    fn expire(&mut self, now: Millis) {
        while self.head != NIL
            && self.tags[self.head as usize]
                .last_seen
                .saturating_add(self.cfg.quiet_ms)
                <= now
        {
            self.depart(self.head, PassEnd::Quiet);
        }
    }

    /// Tracks a new pass of `epc`, evicting the stalest tag if the table is full; returns its slab index.
    fn start_pass(&mut self, epc: &[u8], at: Millis, slot: u8) -> u32 {
        if self.index.len() >= self.cfg.max_tags {
            self.stats.evicted += 1;
            self.depart(self.head, PassEnd::Evicted);
        }
        let key = EpcKey::new(epc);
        self.key_heap += 2 * key.heap_bytes();
        let tag = Tag {
            key: key.clone(),
            first_seen: at,
            last_seen: at,
            prev: NIL,
            next: NIL,
            reads: 0,
            first_slot: slot,
            arrived: false,
        };
        let n = self.slots.len();
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.tags[i as usize].next;
            self.tags[i as usize] = tag;
            self.ants[i as usize * n..(i as usize + 1) * n].fill(AntSlot::EMPTY);
            i
        } else {
            // Free list empty: every slot is in use, so there are fewer than max_tags. Grow by doubling, but
            // never past max_tags, so the slab's capacity stays within the bound.
            if self.tags.len() == self.tags.capacity() {
                let extra = self
                    .tags
                    .capacity()
                    .max(16)
                    .min(self.cfg.max_tags - self.tags.len());
                self.tags.reserve_exact(extra);
                self.ants.reserve_exact(extra * n);
            }
            self.tags.push(tag);
            self.ants.extend(std::iter::repeat_n(AntSlot::EMPTY, n));
            (self.tags.len() - 1) as u32
        };
        self.index.insert(key, i);
        self.push_tail(i);
        i
    }

    /// Ends the pass in slab entry `i`: its departure (if it arrived), or a stray; frees the entry.
    fn depart(&mut self, i: u32, end: PassEnd) {
        self.unlink(i);
        let tag = &mut self.tags[i as usize];
        let key = std::mem::replace(&mut tag.key, EpcKey::EMPTY);
        tag.next = self.free;
        self.free = i;
        self.index.remove(key.as_bytes());
        self.key_heap -= 2 * key.heap_bytes();
        let tag = &self.tags[i as usize];
        if !tag.arrived {
            if end == PassEnd::Quiet {
                self.stats.strays += 1;
            }
            return;
        }
        let n = self.slots.len();
        let base = tag.first_seen;
        let mut per_antenna = Vec::new();
        let (mut outside, mut inside) = (None::<Side>, None::<Side>);
        for (s, a) in self.ants[i as usize * n..(i as usize + 1) * n]
            .iter()
            .enumerate()
        {
            if a.reads == 0 {
                continue;
            }
            let (antenna, role) = self.slots[s];
            let peak = (a.peak_rssi != NO_RSSI).then(|| {
                let mid = (u64::from(a.peak_first) + u64::from(a.peak_last)) / 2;
                (a.peak_rssi, base + mid)
            });
            let stats = AntennaStats {
                antenna,
                role,
                first_seen: base + u64::from(a.first),
                last_seen: base + u64::from(a.last),
                reads: a.reads,
                peak_rssi: peak.map(|p| p.0),
                peak_at: peak.map(|p| p.1),
            };
            let side = Side {
                reads: a.reads,
                first: stats.first_seen,
                last: stats.last_seen,
                peak,
            };
            let acc = if role == Role::Outside {
                &mut outside
            } else {
                &mut inside
            };
            *acc = Some(acc.map_or(side, |s| s.merge(side)));
            per_antenna.push(stats);
        }
        let (direction, confidence) = direction::classify(
            outside,
            inside,
            self.cfg.direction_scale_ms,
            self.cfg.min_reads,
        );
        let departure = Departure {
            epc: key.as_bytes().to_vec(),
            first_seen: tag.first_seen,
            last_seen: tag.last_seen,
            reads: tag.reads,
            per_antenna,
            direction,
            confidence,
            end,
        };
        self.stats.departures += 1;
        self.push_event(PassEvent::Departure(departure));
    }

    fn push_event(&mut self, e: PassEvent) {
        self.event_heap += event_heap(&e);
        self.events.push_back(e);
    }

    /// Moves slab entry `i` to the tail (most recently read) of the LRU list.
    #[inline]
    fn touch(&mut self, i: u32) {
        if self.tail != i {
            self.unlink(i);
            self.push_tail(i);
        }
    }

    #[inline]
    fn unlink(&mut self, i: u32) {
        let Tag { prev, next, .. } = self.tags[i as usize];
        if prev == NIL {
            self.head = next;
        } else {
            self.tags[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.tags[next as usize].prev = prev;
        }
    }

    #[inline]
    fn push_tail(&mut self, i: u32) {
        let t = &mut self.tags[i as usize];
        t.prev = self.tail;
        t.next = NIL;
        if self.tail == NIL {
            self.head = i;
        } else {
            self.tags[self.tail as usize].next = i;
        }
        self.tail = i;
    }
}

impl std::fmt::Debug for Smoother {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smoother")
            .field("clock", &self.clock)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Heap bytes an event owns.
fn event_heap(e: &PassEvent) -> usize {
    match e {
        PassEvent::Arrival(a) => a.epc.capacity(),
        PassEvent::Departure(d) => {
            d.epc.capacity() + d.per_antenna.capacity() * size_of::<AntennaStats>()
        }
    }
}

/// Buckets of a std (hashbrown) table whose `capacity()` is `cap`: it keeps 1/8 of its buckets empty, and below
/// 8 buckets one.
fn buckets_for(cap: usize) -> usize {
    match cap {
        0 => 0,
        1..=7 => (cap + 1).next_power_of_two(),
        _ => (cap * 8).div_ceil(7).next_power_of_two(),
    }
}

/// Bytes of a table with `buckets` buckets: an entry and a control byte per bucket, plus a group of control bytes.
fn table_bytes(buckets: usize) -> usize {
    if buckets == 0 {
        0
    } else {
        buckets * (size_of::<(EpcKey, u32)>() + 1) + 16
    }
}

/// A generous estimate for a small `BTreeMap<u16, Role>`: a node of 11 entries per 6 entries.
fn btree_bytes(len: usize) -> usize {
    len.div_ceil(6) * (11 * (size_of::<u16>() + size_of::<Role>()) + 16 + 12 * size_of::<usize>())
}

fn ser_hex<S: Serializer>(epc: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(epc))
}
