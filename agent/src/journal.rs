//! The movement journal: the agent's durable truth (DESIGN §4).
//!
//! # Invariants
//!
//! - A scan is confirmed only after the records it produced are written *and* `fdatasync`ed here.
//! - Movement seqs in the journal are contiguous and increasing, across segments.
//! - A segment is deleted only when every movement in it is covered by the acknowledged high-water mark, and only
//!   after that mark is itself durable (the `acked` file). The active segment is never deleted.
//! - Recovery never deletes data: a torn tail (the last write of a crash) is truncated, anything else that fails its
//!   CRC is moved to `damaged/` for inspection, together with every later segment, and reported loudly.
//!
//! # On-disk format
//!
//! ```text
//! journal/
//!   00000000000000000001.seg     segments, numbered by creation order (u64, zero padded)
//!   00000000000000000002.seg
//!   acked                        the acknowledged high-water mark: ASCII decimal + "\n", replaced atomically
//!   damaged/                     segments set aside by recovery, never read again by the agent
//!
//! segment  = magic "DHJ1" , record*
//! record   = len: u32 LE , crc: u32 LE (CRC-32 of payload) , payload[len]
//! payload  = kind: u8 , body
//!   kind 1 = movement, body = JSON of dockhand_protocol::sync::Movement
//!   kind 2 = state,    body = opaque bytes (the workflow state snapshot, JSON)
//! ```
//!
//! Every new segment starts with a copy of the latest state record, so deleting older segments never loses the
//! workflow state.
//!
//! # Recovery
//!
//! Segments are read in order. In the *last* segment, damage that reaches the end of the file (an incomplete header
//! or payload, a bad CRC on the final record, or a zero-filled tail as left by a power cut on ext4) is a torn write:
//! the file is truncated to the last good record. Any other damage means the disk lied or was altered: the good
//! prefix of that segment is kept (rewritten into a fresh file of the same name), the original and all later segments
//! are renamed into `damaged/`, and [`Recovery::damaged`] lists them. Records after the damage are then not replayed;
//! seqs resume after the last good movement, so contiguity holds.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use dockhand_protocol::sync::Movement;

const MAGIC: &[u8; 4] = b"DHJ1";
const HEADER: usize = 8;
/// No record is larger; a bigger length field is damage, not a record.
pub const MAX_RECORD: usize = 1 << 20;
const KIND_MOVEMENT: u8 = 1;
const KIND_STATE: u8 = 2;
/// Default size after which a new segment is started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 << 20;

/// One journal record.
// Nearly every record is a movement; boxing it would add an allocation per scan for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A stock movement.
    Movement(Movement),
    /// A workflow state snapshot (opaque to the journal).
    State(Vec<u8>),
}

/// Errors of the journal. Any of them means the journal can no longer promise durability.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file system failed.
    #[error("journal I/O error at {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A caller tried to append a movement out of seq order.
    #[error("movement seq {got} appended after {last}; seqs must be contiguous")]
    OutOfOrder {
        /// The last seq in the journal.
        last: u64,
        /// The seq offered.
        got: u64,
    },
    /// A record is too large to be stored.
    #[error("record of {0} bytes exceeds the {MAX_RECORD}-byte limit")]
    TooLarge(usize),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What recovery found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Every movement still in the journal, in seq order.
    pub movements: Vec<Movement>,
    /// The latest state snapshot, if any.
    pub state: Option<Vec<u8>>,
    /// The durable acknowledged high-water mark.
    pub acked: u64,
    /// Bytes cut off a torn tail.
    pub truncated_bytes: u64,
    /// Files moved to `damaged/`.
    pub damaged: Vec<PathBuf>,
}

impl Recovery {
    /// The last movement seq ever written (or acked), so the next one is this + 1.
    pub fn last_seq(&self) -> u64 {
        self.movements.last().map_or(0, |m| m.seq).max(self.acked)
    }
}

#[derive(Debug)]
struct Segment {
    id: u64,
    path: PathBuf,
    max_seq: Option<u64>,
}

/// An open journal, positioned for appending.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    segments: Vec<Segment>,
    active: File,
    active_len: u64,
    segment_bytes: u64,
    last_seq: u64,
    acked: u64,
    last_state: Option<Vec<u8>>,
    buf: Vec<u8>,
}

enum Scan {
    /// The whole file parsed.
    Clean,
    /// Damage at this offset that reaches the end of the file.
    TornAt(u64),
    /// Damage at this offset with more data after it.
    CorruptAt(u64),
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Parses records from `data` (a whole segment), calling `on` for each good one. Returns how parsing ended.
fn scan_segment(data: &[u8], mut on: impl FnMut(Record) -> Result<(), ()>) -> Scan {
    if data.len() < MAGIC.len() {
        // A segment whose magic never made it to disk is a torn creation.
        return Scan::TornAt(0);
    }
    if &data[..4] != MAGIC {
        return Scan::CorruptAt(0);
    }
    let mut pos = MAGIC.len();
    loop {
        if pos == data.len() {
            return Scan::Clean;
        }
        let rest = &data[pos..];
        let torn_or_corrupt = |end: usize| {
            // Damage reaching EOF, or followed only by zeros, is the tail of an interrupted write.
            if end >= data.len() || data[end..].iter().all(|&b| b == 0) {
                Scan::TornAt(pos as u64)
            } else {
                Scan::CorruptAt(pos as u64)
            }
        };
        if rest.len() < HEADER {
            return torn_or_corrupt(data.len());
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len == 0 || len > MAX_RECORD {
            return torn_or_corrupt(pos + HEADER);
        }
        if rest.len() < HEADER + len {
            return Scan::TornAt(pos as u64);
        }
        let payload = &rest[HEADER..HEADER + len];
        let end = pos + HEADER + len;
        if crc32fast::hash(payload) != crc {
            return torn_or_corrupt(end);
        }
        let record = match decode_payload(payload) {
            Some(r) => r,
            // A record that passed its CRC but does not parse was written by a buggy or foreign writer.
            None => return Scan::CorruptAt(pos as u64),
        };
        if on(record).is_err() {
            return Scan::CorruptAt(pos as u64);
        }
        pos = end;
    }
}

fn decode_payload(payload: &[u8]) -> Option<Record> {
    let (&kind, body) = payload.split_first()?;
    match kind {
        KIND_MOVEMENT => serde_json::from_slice(body).ok().map(Record::Movement),
        KIND_STATE => Some(Record::State(body.to_vec())),
        _ => None,
    }
}

fn encode_record(record: &Record, out: &mut Vec<u8>) -> Result<(), JournalError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    match record {
        Record::Movement(m) => {
            out.push(KIND_MOVEMENT);
            serde_json::to_writer(&mut *out, m).map_err(|e| JournalError::Io {
                path: PathBuf::new(),
                source: io::Error::other(e),
            })?;
        }
        Record::State(s) => {
            out.push(KIND_STATE);
            out.extend_from_slice(s);
        }
    }
    let len = out.len() - start - HEADER;
    if len > MAX_RECORD {
        out.truncate(start);
        return Err(JournalError::TooLarge(len));
    }
    let crc = crc32fast::hash(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn read_acked(dir: &Path) -> Result<u64, JournalError> {
    let path = dir.join("acked");
    match fs::read_to_string(&path) {
        Ok(s) => Ok(s.trim().parse().unwrap_or_else(|_| {
            tracing::error!(path = %path.display(), "acked file unreadable; assuming nothing acked, the server will acknowledge replays");
            0
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Writes `data` to `dir/name` atomically and durably (temp file, fsync, rename, fsync dir).
pub fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_data()?;
    drop(f);
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir` and recovers it. See the module doc.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<(Journal, Recovery), JournalError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut ids: Vec<u64> = fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();

        let mut rec = Recovery {
            acked: read_acked(dir)?,
            ..Recovery::default()
        };
        let mut segments = Vec::new();
        let mut damaged_from: Option<usize> = None;
        let count = ids.len();
        for (i, &id) in ids.iter().enumerate() {
            let path = segment_path(dir, id);
            let mut data = Vec::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut data))
                .map_err(io_err(&path))?;
            let mut max_seq = None;
            let before = rec.movements.len();
            let outcome = scan_segment(&data, |record| {
                match record {
                    Record::Movement(m) => {
                        let expect = rec.movements.last().map(|p| p.seq + 1);
                        if expect.is_some_and(|e| e != m.seq) || m.seq == 0 {
                            return Err(());
                        }
                        max_seq = Some(m.seq);
                        rec.movements.push(m);
                    }
                    Record::State(s) => rec.state = Some(s),
                }
                Ok(())
            });
            let is_last = i + 1 == count;
            match outcome {
                Scan::Clean => {}
                Scan::TornAt(at) if is_last => {
                    rec.truncated_bytes = data.len() as u64 - at;
                    tracing::warn!(
                        segment = %path.display(),
                        bytes = rec.truncated_bytes,
                        "journal: truncating the torn tail of an interrupted write"
                    );
                    if at < MAGIC.len() as u64 {
                        let mut f = File::create(&path).map_err(io_err(&path))?;
                        f.write_all(MAGIC).map_err(io_err(&path))?;
                        f.sync_data().map_err(io_err(&path))?;
                    } else {
                        let f = OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .map_err(io_err(&path))?;
                        f.set_len(at).map_err(io_err(&path))?;
                        f.sync_data().map_err(io_err(&path))?;
                    }
                }
                Scan::TornAt(at) | Scan::CorruptAt(at) => {
                    tracing::error!(
                        segment = %path.display(),
                        offset = at,
                        kept_records = rec.movements.len() - before,
                        "journal: DAMAGED segment (bad CRC or garbage before the end); keeping the records before \
                         the damage and moving the segment and all later ones to journal/damaged/ for inspection"
                    );
                    damaged_from = Some(i);
                    let damaged_dir = dir.join("damaged");
                    fs::create_dir_all(&damaged_dir).map_err(io_err(&damaged_dir))?;
                    let aside = damaged_dir.join(format!("{id:020}.seg"));
                    fs::rename(&path, &aside).map_err(io_err(&path))?;
                    rec.damaged.push(aside);
                    let mut f = File::create(&path).map_err(io_err(&path))?;
                    f.write_all(&data[..at as usize]).map_err(io_err(&path))?;
                    f.sync_data().map_err(io_err(&path))?;
                    segments.push(Segment { id, path, max_seq });
                    break;
                }
            }
            segments.push(Segment { id, path, max_seq });
        }
        if let Some(i) = damaged_from {
            let damaged_dir = dir.join("damaged");
            for &id in &ids[i + 1..] {
                let path = segment_path(dir, id);
                let aside = damaged_dir.join(format!("{id:020}.seg"));
                fs::rename(&path, &aside).map_err(io_err(&path))?;
                tracing::error!(segment = %aside.display(), "journal: later segment set aside after damage");
                rec.damaged.push(aside);
            }
        }
        sync_dir(dir)?;

        let last_seq = rec.last_seq();
        let (active, active_len) = match segments.last() {
            Some(seg) => {
                let f = OpenOptions::new()
                    .append(true)
                    .open(&seg.path)
                    .map_err(io_err(&seg.path))?;
                let len = f.metadata().map_err(io_err(&seg.path))?.len();
                (f, len)
            }
            None => {
                let id = 1;
                let path = segment_path(dir, id);
                let f = new_segment(&path)?;
                sync_dir(dir)?;
                segments.push(Segment {
                    id,
                    path,
                    max_seq: None,
                });
                (f, MAGIC.len() as u64)
            }
        };
        let journal = Journal {
            dir: dir.to_path_buf(),
            segments,
            active,
            active_len,
            segment_bytes,
            last_seq,
            acked: rec.acked,
            last_state: rec.state.clone(),
            buf: Vec::new(),
        };
        Ok((journal, rec))
    }

    /// The last movement seq written (or acked).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The durable acknowledged high-water mark.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Number of segment files (for status and tests).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Appends records and makes them durable with one `fdatasync` (group commit).
    ///
    /// On error the journal must not be used again: the file may hold part of the batch, which the next
    /// recovery truncates as a torn tail.
    pub fn append(&mut self, records: &[Record]) -> Result<(), JournalError> {
        if records.is_empty() {
            return Ok(());
        }
        if self.active_len >= self.segment_bytes {
            self.roll()?;
        }
        self.buf.clear();
        let mut last = self.last_seq;
        let mut max_seq = None;
        for r in records {
            match r {
                Record::Movement(m) => {
                    if m.seq != last + 1 {
                        return Err(JournalError::OutOfOrder { last, got: m.seq });
                    }
                    last = m.seq;
                    max_seq = Some(m.seq);
                }
                Record::State(s) => self.last_state = Some(s.clone()),
            }
            let mut buf = std::mem::take(&mut self.buf);
            let res = encode_record(r, &mut buf);
            self.buf = buf;
            res?;
        }
        let path = &self.segments.last().expect("active segment").path;
        self.active.write_all(&self.buf).map_err(io_err(path))?;
        self.active.sync_data().map_err(io_err(path))?;
        self.active_len += self.buf.len() as u64;
        self.last_seq = last;
        if let Some(seq) = max_seq {
            self.segments.last_mut().expect("active segment").max_seq = Some(seq);
        }
        Ok(())
    }

    fn roll(&mut self) -> Result<(), JournalError> {
        let id = self.segments.last().map_or(1, |s| s.id + 1);
        let path = segment_path(&self.dir, id);
        let mut f = new_segment(&path)?;
        let mut len = MAGIC.len() as u64;
        if let Some(state) = &self.last_state {
            let mut buf = Vec::new();
            encode_record(&Record::State(state.clone()), &mut buf)?;
            f.write_all(&buf).map_err(io_err(&path))?;
            f.sync_data().map_err(io_err(&path))?;
            len += buf.len() as u64;
        }
        sync_dir(&self.dir)?;
        self.active = f;
        self.active_len = len;
        self.segments.push(Segment {
            id,
            path,
            max_seq: None,
        });
        Ok(())
    }

    /// Records that the server acknowledged every movement through `hw`: persists the mark first, then deletes the
    /// segments it fully covers. Returns how many segments were deleted.
    pub fn ack(&mut self, hw: u64) -> Result<usize, JournalError> {
        if hw <= self.acked {
            return Ok(0);
        }
        write_atomic(&self.dir, "acked", format!("{hw}\n").as_bytes())
            .map_err(io_err(&self.dir.join("acked")))?;
        self.acked = hw;
        let active = self.segments.len() - 1;
        let deletable = self.segments[..active]
            .iter()
            .take_while(|s| s.max_seq.is_none_or(|m| m <= hw))
            .count();
        for seg in self.segments.drain(..deletable) {
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
        }
        if deletable > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(deletable)
    }
}

fn new_segment(path: &Path) -> Result<File, JournalError> {
    let mut f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(MAGIC).map_err(io_err(path))?;
    f.sync_data().map_err(io_err(path))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockhand_protocol::sync::{MovementKind, MovementSource};
    use proptest::prelude::*;

    fn mv(seq: u64) -> Movement {
        Movement {
            device_id: "hh-01".into(),
            seq,
            at: time::OffsetDateTime::UNIX_EPOCH,
            kind: MovementKind::Receive,
            gtin: "09506000134352".into(),
            lot: Some(format!("L{seq}")),
            expiry: None,
            serials: vec![],
            qty: 1,
            from_location: None,
            to_location: Some("DOCK-1".into()),
            sscc: None,
            reference: None,
            operator: None,
            source: MovementSource::Manual,
        }
    }

    fn append_n(j: &mut Journal, from: u64, n: u64) {
        for seq in from..from + n {
            j.append(&[Record::Movement(mv(seq))]).unwrap();
        }
    }

    fn seqs(r: &Recovery) -> Vec<u64> {
        r.movements.iter().map(|m| m.seq).collect()
    }

    fn only_segment(dir: &Path) -> PathBuf {
        let mut segs: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        segs.sort();
        segs.pop().unwrap()
    }

    #[test]
    fn append_and_recover() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, rec) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(rec.last_seq(), 0);
        append_n(&mut j, 1, 5);
        j.append(&[Record::State(b"{\"mode\":\"receiving\"}".to_vec())])
            .unwrap();
        drop(j);
        let (j, rec) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(seqs(&rec), vec![1, 2, 3, 4, 5]);
        assert_eq!(rec.state.as_deref(), Some(&b"{\"mode\":\"receiving\"}"[..]));
        assert_eq!(j.last_seq(), 5);
        assert!(rec.damaged.is_empty());
    }

    #[test]
    fn out_of_order_append_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        append_n(&mut j, 1, 2);
        let err = j.append(&[Record::Movement(mv(4))]).unwrap_err();
        assert!(matches!(err, JournalError::OutOfOrder { last: 2, got: 4 }));
    }

    #[test]
    fn torn_tails_are_truncated() {
        // Each case damages the end of the last record in a different way a crash can.
        type Damage = fn(&mut Vec<u8>);
        let cases: &[(&str, Damage)] = &[
            ("half a header", |d| d.extend_from_slice(&[9, 0, 0])),
            ("header without payload", |d| {
                d.extend_from_slice(&100u32.to_le_bytes());
                d.extend_from_slice(&[1, 2, 3, 4]);
            }),
            ("payload cut short", |d| {
                let n = d.len();
                d.truncate(n - 7);
            }),
            ("zero-filled tail", |d| d.extend_from_slice(&[0; 4096])),
            ("last record garbled", |d| {
                let n = d.len();
                d[n - 3] ^= 0xff;
            }),
        ];
        for (name, damage) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let (mut j, _) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
            append_n(&mut j, 1, 4);
            drop(j);
            let seg = only_segment(tmp.path());
            let mut data = fs::read(&seg).unwrap();
            damage(&mut data);
            fs::write(&seg, &data).unwrap();
            let (mut j, rec) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
            let want: Vec<u64> = if name.contains("cut") || name.contains("garbled") {
                vec![1, 2, 3]
            } else {
                vec![1, 2, 3, 4]
            };
            assert_eq!(seqs(&rec), want, "{name}");
            assert!(rec.damaged.is_empty(), "{name}");
            assert!(rec.truncated_bytes > 0, "{name}");
            // The journal continues cleanly after the cut.
            let next = want.len() as u64 + 1;
            j.append(&[Record::Movement(mv(next))]).unwrap();
            drop(j);
            let (_, rec) = Journal::open(tmp.path(), DEFAULT_SEGMENT_BYTES).unwrap();
            assert_eq!(rec.movements.len() as u64, next, "{name}");
            assert_eq!(rec.truncated_bytes, 0, "{name}");
        }
    }

    #[test]
    fn bad_crc_in_the_middle_keeps_prefix_and_sets_segment_aside() {
        let tmp = tempfile::tempdir().unwrap();
        // Small segments so the damage is in a middle segment with later segments after it.
        let (mut j, _) = Journal::open(tmp.path(), 600).unwrap();
        append_n(&mut j, 1, 20);
        assert!(j.segment_count() >= 4, "{}", j.segment_count());
        drop(j);
        let mut segs: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        segs.sort();
        // Flip one byte inside the second record of the second segment.
        let victim = &segs[1];
        let mut data = fs::read(victim).unwrap();
        let first_len = u32::from_le_bytes(data[4..8].try_into().unwrap()) as usize;
        let second = 4 + HEADER + first_len;
        data[second + HEADER + 10] ^= 0x55;
        fs::write(victim, &data).unwrap();
        let mut before = 0;
        let _ = scan_segment(&fs::read(&segs[0]).unwrap(), |r| {
            before += usize::from(matches!(r, Record::Movement(_)));
            Ok(())
        });

        let (mut j, rec) = Journal::open(tmp.path(), 600).unwrap();
        // Everything before the damage survives: the first segment plus the first record of the second.
        assert_eq!(rec.movements.len(), before + 1);
        assert_eq!(seqs(&rec), (1..=before as u64 + 1).collect::<Vec<_>>());
        // The damaged segment and every later one are kept for inspection, not deleted.
        assert_eq!(rec.damaged.len(), segs.len() - 1);
        for d in &rec.damaged {
            assert!(d.exists(), "{}", d.display());
            assert!(d.starts_with(tmp.path().join("damaged")));
        }
        // Seqs continue after the last good one.
        assert_eq!(j.last_seq(), before as u64 + 1);
        j.append(&[Record::Movement(mv(before as u64 + 2))])
            .unwrap();
    }

    #[test]
    fn ack_deletes_only_fully_covered_segments_and_survives_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(tmp.path(), 600).unwrap();
        j.append(&[Record::State(b"s1".to_vec())]).unwrap();
        append_n(&mut j, 1, 20);
        let before = j.segment_count();
        assert_eq!(j.ack(0).unwrap(), 0);
        let deleted = j.ack(10).unwrap();
        assert!(deleted > 0 && deleted < before);
        drop(j);
        let (j, rec) = Journal::open(tmp.path(), 600).unwrap();
        assert_eq!(rec.acked, 10);
        assert_eq!(
            rec.state.as_deref(),
            Some(&b"s1"[..]),
            "state survives segment deletion"
        );
        // Movements 11..=20 are all still there; older ones may be gone.
        let s = seqs(&rec);
        assert!(s.first().copied().unwrap() <= 11);
        assert_eq!(*s.last().unwrap(), 20);
        assert_eq!(j.last_seq(), 20);
    }

    #[test]
    fn last_seq_survives_acking_everything() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(tmp.path(), 300).unwrap();
        append_n(&mut j, 1, 10);
        j.ack(10).unwrap();
        drop(j);
        let (j, _) = Journal::open(tmp.path(), 300).unwrap();
        assert_eq!(j.last_seq(), 10);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Append(u8),
        State,
        Ack(u8),
        Reopen,
        TearTail(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u8..5).prop_map(Op::Append),
            1 => Just(Op::State),
            2 => any::<u8>().prop_map(Op::Ack),
            1 => Just(Op::Reopen),
            1 => (1u8..40).prop_map(Op::TearTail),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// The journal against a Vec model: after any sequence of appends, acks, reopenings and torn tails, recovery
        /// yields exactly the unacked (and possibly some acked) movements, in order, and the latest state.
        #[test]
        fn model_based(ops in proptest::collection::vec(op(), 1..40)) {
            let tmp = tempfile::tempdir().unwrap();
            let (mut j, _) = Journal::open(tmp.path(), 700).unwrap();
            let mut model: Vec<u64> = Vec::new();
            let mut acked = 0u64;
            let mut state: Option<Vec<u8>> = None;
            let mut n_state = 0u32;
            for op in ops {
                match op {
                    Op::Append(n) => {
                        let start = model.last().copied().unwrap_or(acked).max(acked) + 1;
                        let recs: Vec<_> = (start..start + n as u64).map(|s| Record::Movement(mv(s))).collect();
                        j.append(&recs).unwrap();
                        model.extend(start..start + n as u64);
                    }
                    Op::State => {
                        n_state += 1;
                        let s = format!("state-{n_state}").into_bytes();
                        j.append(&[Record::State(s.clone())]).unwrap();
                        state = Some(s);
                    }
                    Op::Ack(k) => {
                        let hw = model.last().copied().unwrap_or(0).min(k as u64);
                        j.ack(hw).unwrap();
                        acked = acked.max(hw);
                    }
                    Op::Reopen => {
                        drop(j);
                        let (nj, rec) = Journal::open(tmp.path(), 700).unwrap();
                        j = nj;
                        let got = seqs(&rec);
                        let unacked: Vec<u64> = model.iter().copied().filter(|&s| s > acked).collect();
                        // Every unacked movement is there, in order, and nothing beyond the model.
                        prop_assert!(got.ends_with(&unacked), "got {:?} model {:?}", got, model);
                        prop_assert!(model.ends_with(&got));
                        prop_assert_eq!(rec.state.clone(), state.clone());
                        prop_assert_eq!(rec.acked, acked);
                        prop_assert!(rec.damaged.is_empty());
                    }
                    Op::TearTail(n) => {
                        // A crash in the middle of writing garbage of n bytes: simulate an incomplete record.
                        drop(j);
                        let seg = only_segment(tmp.path());
                        let mut data = fs::read(&seg).unwrap();
                        data.extend_from_slice(&(500u32).to_le_bytes());
                        data.extend(std::iter::repeat_n(0xAB, n as usize));
                        fs::write(&seg, &data).unwrap();
                        let (nj, rec) = Journal::open(tmp.path(), 700).unwrap();
                        j = nj;
                        prop_assert!(rec.truncated_bytes > 0);
                        prop_assert!(rec.damaged.is_empty());
                    }
                }
            }
        }
    }
}
