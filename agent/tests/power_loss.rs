//! Power loss, `kill -9` and I/O errors against the movement journal, on the model disk of
//! `dockhand_agent::journal::sim` (feature `fault-injection`): the promise under test is DESIGN §3.1, a scan
//! confirmed to the operator survives anything, and §3.2, seqs stay contiguous and are never given twice.
//!
//! One realistic session (receipts, put-aways and picks in group commits, workflow state records, segment
//! roll-overs at a small segment size, a sync task that reads the backlog back and acknowledges it, so acknowledged
//! segments are deleted and the `acked` file is rewritten) is driven through the journal the way the writer thread
//! drives it: one `append` per group commit, and a scan counts as confirmed only if its `append` returned `Ok`.
//! (The writer itself is a thread fed by a channel, so the grouping of its commits depends on timing; the session
//! fixes it instead, to keep every case deterministic. How the writer answers a refused scan is tested in
//! `writer.rs` on the same model disk.)
//!
//! Modules:
//! - `power_cut`: the power goes off after the 1st, 2nd, … write-like operation of the session, every one of them;
//!   the disk keeps only what was durable, with the last write torn at a seeded byte; the journal must reopen and
//!   hold every confirmed scan. Also `kill -9` at the same points, followed by a power cut right after the restart,
//!   and a second power cut during recovery.
//! - `io_errors`: the n-th write, sync or read fails, once or from then on, with `EIO` or `ENOSPC`, for every n the
//!   session reaches.
//!
//! Every case is deterministic. A failure names its seed and cut point (or fault number); replay it alone with
//! `DOCKHAND_SEED=<seed> DOCKHAND_CUT=<n> cargo test -p dockhand-agent --test power_loss -- --exact <test>`.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use dockhand_agent::journal::fs::Fs;
use dockhand_agent::journal::sim::SimFs;
use dockhand_agent::journal::{read_movements_on, Journal, JournalError, Record, Recovery};
use dockhand_protocol::sync::{Movement, MovementKind, MovementSource};

/// Where the journal lives on the model disk.
const DIR: &str = "/data/journal";
/// Small segments: a roll-over every few commits, so cuts land inside roll-overs and segment deletions often.
const SEGMENT_BYTES: u64 = 1024;
/// Scans in the session.
const SCANS: usize = 400;
/// The session's own seed: the same session for every case.
const SESSION_SEED: u64 = 0x0D0C_4A4D;
/// The default base seed of the cases (tear bytes, surviving name operations, short writes).
const BASE_SEED: u64 = 0x5EED_2026_1127;

/// SplitMix64, as the model disk uses: seeds replay forever.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The seed of one case, from the base seed and the case's coordinates.
fn case_seed(base: u64, n: u64, variant: u64) -> u64 {
    Rng(base ^ n.rotate_left(32) ^ variant.rotate_left(17)).next()
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn base_seed() -> u64 {
    env_u64("DOCKHAND_SEED").unwrap_or(BASE_SEED)
}

/// Runs `case`, turning a panic or an error into one that names how to replay it.
fn replayable<T>(what: &str, n: u64, seed: u64, case: impl FnOnce() -> Result<T, String>) -> T {
    // libtest runs each test on a thread named after it.
    let test = std::thread::current()
        .name()
        .unwrap_or_default()
        .to_string();
    let outcome = catch_unwind(AssertUnwindSafe(case)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("panicked: {msg}"))
    });
    outcome.unwrap_or_else(|e| {
        panic!(
            "{what}, n = {n}, case seed {seed:#x}: {e}\n  replay: DOCKHAND_SEED={:#x} DOCKHAND_CUT={n} cargo test \
             -p dockhand-agent --test power_loss -- --exact {test}",
            base_seed()
        )
    })
}

/// One step of the session, as the agent's tasks drive the journal.
#[derive(Debug, Clone)]
enum Step {
    /// A group commit: the movements of the scans queued while the previous `fdatasync` ran (seqs are given when
    /// it is appended), then the workflow state they left, if it changed.
    Commit {
        scans: Vec<Movement>,
        state: Option<Vec<u8>>,
    },
    /// The sync task reads back up to `max` unacknowledged movements; the server acknowledges all of them.
    Sync { max: usize },
}

const GTINS: [&str; 4] = [
    "09506000134352",
    "09506000134369",
    "04012345000016",
    "00614141000012",
];

/// A shift at a dock: receipts against ASNs, their put-away, picks against pick lists; `scans` scans in all.
fn session(scans: usize) -> Vec<Step> {
    let mut rng = Rng(SESSION_SEED);
    let mut steps = Vec::new();
    let mut made = 0;
    let mut phase = 0;
    while made < scans {
        let (mode, reference) = match phase % 3 {
            0 => ("receiving", format!("ASN-{:04}", phase / 3 + 1)),
            1 => ("putaway", String::new()),
            _ => ("picking", format!("PL-{:04}", phase / 3 + 1)),
        };
        let lines = 8 + rng.below(30);
        let mut line = 0;
        while line < lines && made < scans {
            let group = [1, 1, 1, 2, 2, 3, 4][rng.below(7)]
                .min(lines - line)
                .min(scans - made);
            let batch: Vec<Movement> = (0..group)
                .map(|i| movement(phase, made + i, &reference, &mut rng))
                .collect();
            made += group;
            // The first commit of a phase changes the mode; later ones sometimes move the line counter on.
            let state = (line == 0 || rng.below(4) == 0).then(|| {
                format!(r#"{{"mode":"{mode}","reference":"{reference}","line":{line}}}"#)
                    .into_bytes()
            });
            line += group;
            steps.push(Step::Commit {
                scans: batch,
                state,
            });
            if rng.below(6) == 0 {
                steps.push(Step::Sync {
                    max: 5 + rng.below(60),
                });
            }
        }
        phase += 1;
    }
    steps.push(Step::Sync { max: usize::MAX });
    steps
}

/// Scan number `k` of the session, made in phase `phase`; seq 0 until the journal takes it.
fn movement(phase: usize, k: usize, reference: &str, rng: &mut Rng) -> Movement {
    let gtin = GTINS[rng.below(GTINS.len())];
    let lot = format!("L{:03}", k % 37);
    let bin = format!("A-{:02}-{:02}", 1 + k % 12, 1 + rng.below(6));
    let (kind, from, to, qty, serials) = match phase % 3 {
        0 => {
            let serials = if k.is_multiple_of(5) {
                vec![format!("S{k:08}")]
            } else {
                vec![]
            };
            let qty = if serials.is_empty() {
                1 + rng.below(24)
            } else {
                1
            };
            (
                MovementKind::Receive,
                None,
                Some("DOCK-1".to_string()),
                qty,
                serials,
            )
        }
        1 => (
            MovementKind::Putaway,
            Some("DOCK-1".to_string()),
            Some(bin),
            1 + rng.below(24),
            vec![],
        ),
        _ => (
            MovementKind::Pick,
            Some(bin),
            None,
            1 + rng.below(5),
            vec![],
        ),
    };
    Movement {
        device_id: "hh-07".into(),
        seq: 0,
        at: time::OffsetDateTime::UNIX_EPOCH
            + time::Duration::seconds(1_700_000_000 + k as i64 * 7),
        kind,
        gtin: gtin.into(),
        lot: Some(lot.clone()),
        expiry: Some(format!("2027-{:02}-28", 1 + k % 12)),
        serials,
        qty: qty as u64,
        from_location: from,
        to_location: to,
        sscc: None,
        reference: (!reference.is_empty()).then(|| reference.to_string()),
        operator: Some("op-7".into()),
        source: MovementSource::Barcode {
            raw: format!("01{gtin}10{lot}"),
            symbology: Some("]C1".into()),
        },
    }
}

/// What the session promised, as the operator and the server saw it.
#[derive(Debug, Default)]
struct Model {
    /// Movements whose append returned `Ok`, in seq order (confirmed to the operator).
    confirmed: Vec<Movement>,
    /// The state of the last confirmed append that had one.
    state: Option<Vec<u8>>,
    /// The append the disk died in: neither confirmed nor refused, so any prefix of it may survive.
    in_flight: Vec<Record>,
    /// The highest mark whose `ack` returned `Ok`.
    acked: u64,
    /// The highest mark offered to `ack`.
    ack_offered: u64,
    /// Appends refused with an error: its text, and whether it left the journal usable.
    refused: Vec<(String, bool)>,
    /// Scans in the refused appends.
    refused_scans: usize,
    /// Appends that returned `Ok` after an earlier one was refused.
    ok_after_refusal: usize,
}

impl Model {
    fn last_seq(&self) -> u64 {
        self.confirmed.last().map_or(0, |m| m.seq).max(self.acked)
    }

    /// Confirmed movements above `acked`.
    fn unacked(&self, acked: u64) -> &[Movement] {
        let start = self.confirmed.partition_point(|m| m.seq <= acked);
        &self.confirmed[start..]
    }
}

/// How the session reacts to a failing disk.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Disk {
    /// The power goes off: stop at the first operation that finds it off.
    PowerCut,
    /// I/O errors: carry on as the agent does (a refused scan, then the next one).
    Faulty,
}

/// Where the model stood before and after a step, and the write-like operations the step did.
#[derive(Debug, Clone)]
struct Mark {
    /// Write-like operations done when the step began and when it ended.
    ops: (u64, u64),
    before: Snap,
    after: Snap,
    /// A commit's records, seqs given.
    records: Vec<Record>,
}

/// The model's figures at one moment; its confirmed movements are a prefix of the final model's.
#[derive(Debug, Clone)]
struct Snap {
    confirmed: usize,
    state: Option<Vec<u8>>,
    acked: u64,
    ack_offered: u64,
}

impl Snap {
    fn of(model: &Model) -> Snap {
        Snap {
            confirmed: model.confirmed.len(),
            state: model.state.clone(),
            acked: model.acked,
            ack_offered: model.ack_offered,
        }
    }
}

/// Drives `steps` through `journal`, recording in `model` what was confirmed and, with `marks`, where each step
/// began and ended.
fn drive(
    fs: &SimFs,
    journal: &mut Journal,
    steps: &[Step],
    model: &mut Model,
    disk: Disk,
    mut marks: Option<&mut Vec<Mark>>,
) -> Result<(), String> {
    for step in steps {
        let (ops, before) = (fs.write_ops(), Snap::of(model));
        let records = step_once(fs, journal, step, model, disk)?;
        if let Some(marks) = marks.as_deref_mut() {
            marks.push(Mark {
                ops: (ops, fs.write_ops()),
                before,
                after: Snap::of(model),
                records: records.unwrap_or_default(),
            });
        }
        if disk == Disk::PowerCut && fs.powered_off() {
            return Ok(());
        }
    }
    Ok(())
}

/// One step of [`drive`]; returns a commit's records.
fn step_once(
    fs: &SimFs,
    journal: &mut Journal,
    step: &Step,
    model: &mut Model,
    disk: Disk,
) -> Result<Option<Vec<Record>>, String> {
    match step {
        Step::Commit { scans, state } => {
            // Seqs continue from the last durable one: the writer rolls the workflow back after a refusal.
            let next = model.last_seq() + 1;
            let mut records: Vec<Record> = scans
                .iter()
                .zip(next..)
                .map(|(m, seq)| Record::Movement(Movement { seq, ..m.clone() }))
                .collect();
            records.extend(state.clone().map(Record::State));
            match journal.append(&records) {
                Ok(()) => {
                    model.ok_after_refusal += usize::from(!model.refused.is_empty());
                    for r in records.iter().cloned() {
                        match r {
                            Record::Movement(m) => model.confirmed.push(m),
                            Record::State(s) => model.state = Some(s),
                        }
                    }
                }
                Err(_) if disk == Disk::PowerCut && fs.powered_off() => {
                    model.in_flight = records.clone();
                }
                Err(e) if disk == Disk::PowerCut => {
                    return Err(format!("append failed with the power on: {e}"))
                }
                Err(e) => {
                    // A failed write that could not be cut back stays in the page cache and may reach the
                    // disk: like an append the power cut, it may survive (the writer stops the agent).
                    if !e.is_intact() && model.in_flight.is_empty() {
                        model.in_flight = records.clone();
                    }
                    model.refused.push((e.to_string(), e.is_intact()));
                    model.refused_scans += scans.len();
                }
            }
            Ok(Some(records))
        }
        Step::Sync { max } => {
            let after = journal.acked();
            let mut batch = match read_movements_on(fs, Path::new(DIR), after, *max) {
                Ok(batch) => batch,
                Err(_) if disk == Disk::PowerCut && fs.powered_off() => return Ok(None),
                // The sync task tries again later.
                Err(_) if disk == Disk::Faulty => return Ok(None),
                Err(e) => return Err(format!("read-back failed with the power on: {e}")),
            };
            // As the backlog does: only what the writer reported durable (the tail of the active segment may
            // hold an append being written, or one a failing disk could not cut back).
            let durable = model.last_seq();
            batch.retain(|m| m.seq <= durable);
            let want = model.unacked(after);
            let want = &want[..want.len().min(*max)];
            if batch != want {
                return Err(format!(
                    "read-back after {after} gave seqs {:?}, confirmed {:?}",
                    seqs(&batch),
                    seqs(want)
                ));
            }
            let Some(hw) = batch.last().map(|m| m.seq) else {
                return Ok(None);
            };
            model.ack_offered = model.ack_offered.max(hw);
            match journal.ack(hw) {
                Ok(_) => model.acked = hw,
                Err(_) if disk == Disk::PowerCut && fs.powered_off() => {}
                Err(_) if disk == Disk::Faulty => {}
                Err(e) => return Err(format!("ack failed with the power on: {e}")),
            }
            Ok(None)
        }
    }
}

fn seqs(movements: &[Movement]) -> Vec<u64> {
    movements.iter().map(|m| m.seq).collect()
}

fn open(fs: &Arc<SimFs>) -> Result<(Journal, Recovery), JournalError> {
    Journal::open_on(fs.clone(), Path::new(DIR), SEGMENT_BYTES)
}

/// Checks what recovery found against the model: every confirmed movement above the durable acked mark, with its
/// content, contiguous, the acked mark between what was acknowledged and what was offered, no damage. Only the
/// append the disk died in (`Model::in_flight`) may have survived beyond them, in part or whole; when there is none
/// the journal must hold exactly the confirmed movements.
fn check(fs: &SimFs, rec: &Recovery, model: &Model) -> Result<(), String> {
    if !rec.damaged.is_empty() {
        return Err(format!(
            "damaged: {:?} (a torn tail is not damage)",
            rec.damaged
        ));
    }
    let damaged = fs.list(&Path::new(DIR).join("damaged")).unwrap_or_default();
    if !damaged.is_empty() {
        return Err(format!("damaged/ holds {damaged:?}"));
    }
    let got = seqs(&rec.movements);
    if got.windows(2).any(|w| w[1] != w[0] + 1) {
        return Err(format!("seqs not contiguous: {got:?}"));
    }
    if rec.acked < model.acked || rec.acked > model.ack_offered {
        return Err(format!(
            "acked mark {} outside [{}, {}]: an acknowledgement went backwards or was invented",
            rec.acked, model.acked, model.ack_offered
        ));
    }
    // Every confirmed movement above the durable acked mark is there, with its content.
    let want = model.unacked(rec.acked);
    let got_unacked = &rec.movements[rec.movements.partition_point(|m| m.seq <= rec.acked)..];
    if got_unacked.len() < want.len() || got_unacked[..want.len()] != *want {
        return Err(format!(
            "confirmed movements lost or changed: want seqs {:?}, recovered {:?}",
            seqs(want),
            seqs(got_unacked)
        ));
    }
    // Acknowledged ones may be gone, but any still there is unchanged.
    let by_seq: BTreeMap<u64, &Movement> = model.confirmed.iter().map(|m| (m.seq, m)).collect();
    let beyond = &got_unacked[want.len()..];
    for m in rec.movements.iter().filter(|m| m.seq <= rec.acked) {
        if by_seq.get(&m.seq) != Some(&m) {
            return Err(format!("acknowledged seq {} changed", m.seq));
        }
    }
    // Anything after the confirmed ones is a prefix of the append the disk died in.
    let flying: Vec<&Movement> = model
        .in_flight
        .iter()
        .filter_map(|r| match r {
            Record::Movement(m) => Some(m),
            Record::State(_) => None,
        })
        .collect();
    if beyond.len() > flying.len() || beyond.iter().zip(&flying).any(|(a, b)| a != *b) {
        return Err(format!(
            "movements never confirmed appeared: seqs {:?} (in flight: {:?})",
            seqs(beyond),
            flying.iter().map(|m| m.seq).collect::<Vec<_>>()
        ));
    }
    let flying_state = model.in_flight.iter().find_map(|r| match r {
        Record::State(s) => Some(s),
        Record::Movement(_) => None,
    });
    let state_ok = rec.state == model.state
        || (flying_state.is_some()
            && rec.state.as_ref() == flying_state
            && beyond.len() == flying.len());
    if !state_ok {
        return Err(format!(
            "state {:?}, confirmed {:?}",
            rec.state.as_deref().map(String::from_utf8_lossy),
            model.state.as_deref().map(String::from_utf8_lossy)
        ));
    }
    Ok(())
}

/// After recovery, life goes on: one more scan, the server acknowledges everything, and a power cut. The state
/// and the seqs must survive with only the active segment left.
fn carry_on(fs: &Arc<SimFs>, mut journal: Journal, rec: &Recovery) -> Result<(), String> {
    let next = journal.last_seq() + 1;
    let mut m = movement(0, 9999, "ASN-9999", &mut Rng(next));
    m.seq = next;
    journal
        .append(&[Record::Movement(m.clone())])
        .map_err(|e| format!("append after recovery: {e}"))?;
    journal
        .ack(next)
        .map_err(|e| format!("ack after recovery: {e}"))?;
    drop(journal);
    fs.reboot();
    let (_, after) = open(fs).map_err(|e| format!("reopen after carrying on: {e}"))?;
    if after.state != rec.state {
        return Err(format!(
            "workflow state lost once older segments were deleted: {:?}, was {:?}",
            after.state.as_deref().map(String::from_utf8_lossy),
            rec.state.as_deref().map(String::from_utf8_lossy)
        ));
    }
    if after.last_seq() != next || after.acked != next || !after.damaged.is_empty() {
        return Err(format!(
            "after carrying on: last seq {} acked {} damaged {:?}, want {next}",
            after.last_seq(),
            after.acked,
            after.damaged
        ));
    }
    Ok(())
}

/// Figures of a loop, printed so a run shows what it exercised.
#[derive(Debug, Default)]
struct Tally {
    cases: u64,
    torn: u64,
    truncated: u64,
    in_flight_kept: u64,
    name_ops_lost: u64,
    recovery_cuts: u64,
}

mod power_cut {
    use super::*;

    /// One run of the session on a disk that keeps a copy of itself after every write-like operation, with the
    /// model before and after every step: every cut point without running the session again for each.
    struct Recording {
        fs: SimFs,
        model: Model,
        marks: Vec<Mark>,
    }

    impl Recording {
        fn new(steps: &[Step]) -> Recording {
            let fs = Arc::new(SimFs::new(0));
            fs.record();
            let (mut journal, _) = open(&fs).unwrap();
            let mut model = Model::default();
            let mut marks = Vec::new();
            drive(
                &fs,
                &mut journal,
                steps,
                &mut model,
                Disk::PowerCut,
                Some(&mut marks),
            )
            .unwrap();
            assert_eq!(
                model.confirmed.len(),
                SCANS,
                "the healthy session confirms every scan"
            );
            assert!(
                model.acked > 0 && journal.segment_count() < 4,
                "acks deleted segments"
            );
            drop(journal);
            let fs = Arc::into_inner(fs).expect("the only handle");
            Recording { fs, model, marks }
        }

        fn cut_points(&self) -> u64 {
            self.fs.recorded() as u64
        }

        /// What the operator and the server had been told when the power went off after operation `n`.
        fn model_at(&self, n: u64) -> Model {
            let Some(mark) = self.marks.iter().find(|m| m.ops.0 < n && n <= m.ops.1) else {
                // In the first open: nothing yet.
                return Model::default();
            };
            let done = n == mark.ops.1;
            let snap = if done { &mark.after } else { &mark.before };
            Model {
                confirmed: self.model.confirmed[..snap.confirmed].to_vec(),
                state: snap.state.clone(),
                in_flight: if done {
                    Vec::new()
                } else {
                    mark.records.clone()
                },
                acked: snap.acked,
                ack_offered: mark.after.ack_offered,
                ..Model::default()
            }
        }
    }

    /// Cut point `n`: power cut, reboot, recover and check; then carry on. With `second_cuts`, also a second cut
    /// during that recovery, after each of its write-like operations.
    fn case(
        rec: &Recording,
        seed: u64,
        n: u64,
        second_cuts: bool,
        tally: &mut Tally,
    ) -> Result<(), String> {
        let model = rec.model_at(n);
        let fs = Arc::new(
            rec.fs
                .replay_point(n as usize, seed)
                .ok_or("no such cut point")?,
        );
        let crash = fs.reboot();
        let rebooted = fs.fork();
        let before = fs.write_ops();
        let (journal, recovered) =
            open(&fs).map_err(|e| format!("reopen failed ({crash}): {e}"))?;
        let recovery_ops = fs.write_ops() - before;
        check(&fs, &recovered, &model).map_err(|e| format!("{e} ({crash})"))?;
        tally.cases += 1;
        tally.torn += u64::from(crash.torn.is_some());
        tally.truncated += u64::from(recovered.truncated_bytes > 0);
        tally.name_ops_lost += u64::from(crash.kept_name_ops < crash.queued_name_ops);
        tally.in_flight_kept += u64::from(recovered.last_seq() > model.last_seq());
        carry_on(&fs, journal, &recovered).map_err(|e| format!("{e} ({crash})"))?;

        // The power fails again while recovery repairs the journal.
        for m in (1..=recovery_ops).filter(|_| second_cuts) {
            let fs = Arc::new(rebooted.fork());
            fs.cut_power_after(m);
            let _ = open(&fs);
            let second = fs.reboot();
            let context =
                format!("second cut after recovery op {m} of {recovery_ops} ({crash}; {second})");
            let (journal, recovered) =
                open(&fs).map_err(|e| format!("reopen failed after a {context}: {e}"))?;
            check(&fs, &recovered, &model).map_err(|e| format!("{e} after a {context}"))?;
            carry_on(&fs, journal, &recovered).map_err(|e| format!("{e} after a {context}"))?;
            tally.recovery_cuts += 1;
        }
        Ok(())
    }

    /// Cut points to run: all, or the one `DOCKHAND_CUT` names.
    fn cut_points(rec: &Recording) -> Vec<u64> {
        match env_u64("DOCKHAND_CUT") {
            Some(n) => vec![n],
            None => (1..=rec.cut_points()).collect(),
        }
    }

    /// Seeds per cut point: each tears the last write at another byte and keeps another prefix of the unsynced
    /// name operations.
    const SEEDS: u64 = 4;

    /// The power-loss loop: every write-like operation of the session is a cut point.
    #[test]
    fn every_confirmed_scan_survives_a_power_cut_after_any_write() {
        let rec = Recording::new(&session(SCANS));
        let total = rec.cut_points();
        assert!(
            total >= 500,
            "the session has only {total} write-like operations"
        );
        let cuts = cut_points(&rec);
        let mut tally = Tally::default();
        for &n in &cuts {
            for variant in 0..SEEDS {
                let seed = case_seed(base_seed(), n, variant);
                // Second cuts in recovery for half the seeds: they are most of the loop's time.
                let second_cuts = variant < SEEDS / 2;
                replayable("power cut", n, seed, || {
                    case(&rec, seed, n, second_cuts, &mut tally)
                });
            }
        }
        eprintln!(
            "power cut: {} cut points (of {total} write-like ops) x {SEEDS} seeds = {} cases (base seed {:#x}): {} \
             torn writes, {} torn tails truncated, {} unconfirmed appends survived in part or whole, {} lost unsynced \
             name ops, {} second cuts during recovery",
            cuts.len(),
            tally.cases,
            base_seed(),
            tally.torn,
            tally.truncated,
            tally.in_flight_kept,
            tally.name_ops_lost,
            tally.recovery_cuts
        );
        // The loop really went through the situations it is about.
        if cuts.len() > 1 {
            assert!(
                tally.torn > 0 && tally.truncated > 0 && tally.in_flight_kept > 0,
                "{tally:?}"
            );
            assert!(
                tally.name_ops_lost > 0 && tally.recovery_cuts > 0,
                "{tally:?}"
            );
        }
    }

    /// `kill -9` after any write-like operation: the page cache survives, so recovery may read records that never
    /// reached the disk. What it reports must be durable: a power cut right after the restart loses none of it.
    #[test]
    fn what_recovery_reports_after_kill_9_survives_a_power_cut_next() {
        let rec = Recording::new(&session(SCANS));
        let cuts = cut_points(&rec);
        let mut unsynced_recovered = 0;
        for &n in &cuts {
            let seed = case_seed(base_seed(), n, SEEDS);
            replayable("kill -9", n, seed, || {
                let model = rec.model_at(n);
                let fs = Arc::new(
                    rec.fs
                        .replay_point(n as usize, seed)
                        .ok_or("no such cut point")?,
                );
                fs.kill();
                let (journal, recovered) =
                    open(&fs).map_err(|e| format!("reopen after kill: {e}"))?;
                check(&fs, &recovered, &model)?;
                unsynced_recovered += u64::from(recovered.last_seq() > model.last_seq());
                drop(journal);
                let crash = fs.reboot();
                let (journal, again) =
                    open(&fs).map_err(|e| format!("reopen after the cut: {e}"))?;
                if again.movements != recovered.movements
                    || again.state != recovered.state
                    || again.acked != recovered.acked
                {
                    return Err(format!(
                        "recovered after kill -9 but lost to the next power cut ({crash}): seqs {:?} then {:?}, \
                         acked {} then {}",
                        seqs(&recovered.movements),
                        seqs(&again.movements),
                        recovered.acked,
                        again.acked
                    ));
                }
                carry_on(&fs, journal, &again)
            });
        }
        eprintln!(
            "kill -9: {} cut points, {unsynced_recovered} recovered an append that was written but not synced",
            cuts.len()
        );
        if cuts.len() > 1 {
            assert!(unsynced_recovered > 0);
        }
    }
}

mod io_errors {
    use super::*;
    use dockhand_agent::journal::sim::{Fault, OpClass};

    /// Scans in the sessions of this module: fewer than the power-cut session, since every fault reruns it.
    const FAULT_SCANS: usize = 120;

    /// The faults of the loops: (class, errno). A full disk only refuses what allocates space.
    const FAULTS: [(OpClass, i32); 3] = [
        (OpClass::Write, libc::EIO),
        (OpClass::Write, libc::ENOSPC),
        (OpClass::Sync, libc::EIO),
    ];

    fn errno_name(errno: i32) -> &'static str {
        match errno {
            libc::EIO => "EIO",
            libc::ENOSPC => "ENOSPC",
            _ => "errno",
        }
    }

    /// The session on a disk with `fault` injected after the first open, then a reboot onto a healthy disk:
    /// exactly the confirmed scans are there, and the journal carries on. `None` when the fault never fired (`n`
    /// is past the session's last operation of its class).
    fn case(steps: &[Step], seed: u64, fault: Fault) -> Result<Option<Model>, String> {
        let fs = Arc::new(SimFs::new(seed));
        let (mut journal, _) = open(&fs).map_err(|e| format!("first open: {e}"))?;
        fs.inject(fault);
        let mut model = Model::default();
        drive(&fs, &mut journal, steps, &mut model, Disk::Faulty, None)?;
        if fs.faults_fired() == 0 {
            return Ok(None);
        }
        drop(journal);
        let crash = fs.reboot();
        let (journal, rec) = open(&fs).map_err(|e| format!("reopen on a healthy disk: {e}"))?;
        // Strict unless the journal stopped: then the append it stopped in may have reached the disk.
        check(&fs, &rec, &model).map_err(|e| format!("{e} ({crash})"))?;
        carry_on(&fs, journal, &rec)?;
        Ok(Some(model))
    }

    /// Runs `case` for n = 1, 2, … until the fault no longer fires; returns (cases, appends refused).
    fn sweep(
        steps: &[Step],
        make: impl Fn(u64) -> Fault,
        variant: u64,
        judge: impl Fn(&Model) -> Result<(), String>,
    ) -> (u64, usize) {
        let (mut cases, mut refused) = (0, 0);
        let only = env_u64("DOCKHAND_CUT");
        for n in only.unwrap_or(1).. {
            let fault = make(n);
            let seed = case_seed(base_seed(), n, variant);
            let model = replayable(&fault.to_string(), n, seed, || {
                let model = case(steps, seed, fault)?;
                model.as_ref().map_or(Ok(()), &judge)?;
                Ok(model)
            });
            let Some(model) = model else { break };
            cases += 1;
            refused += model.refused.len();
            if only.is_some() {
                break;
            }
        }
        (cases, refused)
    }

    /// The n-th write or sync fails once, for every n the session reaches: the scan is refused with an error that
    /// leaves the journal usable, every later one is confirmed, and nothing refused is there after a reboot.
    #[test]
    fn a_write_or_sync_failing_once_refuses_that_scan_only() {
        let steps = session(FAULT_SCANS);
        for (class, errno) in FAULTS {
            let (cases, refused) = sweep(
                &steps,
                |n| Fault::once(class, n, errno),
                errno as u64,
                |model| {
                    if model.refused.len() > 1 || model.refused.iter().any(|(_, intact)| !intact) {
                        return Err(format!("one fault, refusals: {:?}", model.refused));
                    }
                    if model.confirmed.len() + model.refused_scans != FAULT_SCANS {
                        return Err(format!(
                            "{} scans confirmed and {} refused, of {FAULT_SCANS}: the journal did not stay usable",
                            model.confirmed.len(),
                            model.refused_scans
                        ));
                    }
                    Ok(())
                },
            );
            eprintln!(
                "{class:?} {} once: {cases} cases, {refused} appends refused",
                errno_name(errno)
            );
            assert!(
                cases > 50 && refused > 0,
                "{class:?}: {cases} cases, {refused} refused"
            );
        }
    }

    /// The n-th write or sync fails and so does every later one, for every n: from the first refusal on no scan is
    /// confirmed, and nothing confirmed before is lost once the disk is healthy again.
    #[test]
    fn a_disk_that_keeps_failing_never_confirms_again_and_loses_nothing() {
        let steps = session(FAULT_SCANS);
        for (class, errno) in FAULTS {
            let (cases, refused) = sweep(
                &steps,
                |n| Fault::forever(class, n, errno),
                100 + errno as u64,
                |model| {
                    if model.ok_after_refusal > 0 {
                        return Err(format!(
                            "{} appends confirmed after a refusal on a failing disk",
                            model.ok_after_refusal
                        ));
                    }
                    Ok(())
                },
            );
            eprintln!(
                "{class:?} {} forever: {cases} cases, {refused} appends refused",
                errno_name(errno)
            );
            assert!(
                cases > 50 && refused > 0,
                "{class:?}: {cases} cases, {refused} refused"
            );
        }
    }

    /// The sync task's read-back meets a failing read: it gets an error, never a wrong or short batch presented as
    /// the truth (checked by `drive` at every sync step), and the next read works.
    #[test]
    fn a_failing_read_during_read_back_costs_a_retry_only() {
        let steps = session(FAULT_SCANS);
        for forever in [false, true] {
            let (cases, _) = sweep(
                &steps,
                |n| Fault {
                    class: OpClass::Read,
                    nth: n,
                    errno: libc::EIO,
                    forever,
                },
                200 + u64::from(forever),
                |model| {
                    if !model.refused.is_empty() {
                        return Err(format!("a read fault refused appends: {:?}", model.refused));
                    }
                    Ok(())
                },
            );
            eprintln!("read EIO (forever: {forever}) during the session: {cases} cases");
            assert!(cases > 10, "{cases}");
        }
    }

    /// A fault while recovery reads or repairs the journal after a power cut: the open fails (the agent exits and
    /// is restarted) or succeeds with a correct recovery; either way the next open on a healthy disk holds every
    /// confirmed scan. Over cut points spread across the session, every operation of recovery fails in turn.
    #[test]
    fn a_fault_during_recovery_fails_the_start_not_the_data() {
        let steps = session(FAULT_SCANS);
        let total = {
            let fs = Arc::new(SimFs::new(0));
            let (mut journal, _) = open(&fs).unwrap();
            drive(
                &fs,
                &mut journal,
                &steps,
                &mut Model::default(),
                Disk::PowerCut,
                None,
            )
            .unwrap();
            fs.write_ops()
        };
        let (mut cases, mut failed_opens) = (0, 0);
        let cuts: Vec<u64> = match env_u64("DOCKHAND_CUT") {
            Some(n) => vec![n],
            None => (1..=total).step_by(3).collect(),
        };
        for &cut in &cuts {
            for (class, errno) in [
                (OpClass::Read, libc::EIO),
                (OpClass::Write, libc::EIO),
                (OpClass::Sync, libc::EIO),
            ] {
                for nth in 1.. {
                    let seed = case_seed(base_seed(), cut, 300 + nth);
                    let fault = Fault::once(class, nth, errno);
                    let fired = replayable(&format!("{fault} in recovery"), cut, seed, || {
                        let fs = Arc::new(SimFs::new(seed));
                        fs.cut_power_after(cut);
                        let mut model = Model::default();
                        if let Ok((mut journal, _)) = open(&fs) {
                            drive(&fs, &mut journal, &steps, &mut model, Disk::PowerCut, None)?;
                        }
                        let crash = fs.reboot();
                        fs.inject(fault);
                        let first = open(&fs);
                        let fired = fs.faults_fired() > 0;
                        let open_failed = first.is_err();
                        match first {
                            Ok((_, rec)) if fired => {
                                check(&fs, &rec, &model).map_err(|e| {
                                    format!(
                                        "an open that met a fault recovered wrongly: {e} ({crash})"
                                    )
                                })?;
                            }
                            Ok(_) => {}
                            Err(e) if !fired => {
                                return Err(format!("open failed without a fault: {e}"))
                            }
                            Err(_) => {}
                        }
                        // The agent restarts (the machine does not): the page cache is kept.
                        fs.kill();
                        let (journal, rec) =
                            open(&fs).map_err(|e| format!("reopen on a healthy disk: {e}"))?;
                        check(&fs, &rec, &model).map_err(|e| format!("{e} ({crash})"))?;
                        carry_on(&fs, journal, &rec)?;
                        Ok(fired.then_some(open_failed))
                    });
                    let Some(open_failed) = fired else { break };
                    cases += 1;
                    failed_opens += u64::from(open_failed);
                }
            }
        }
        eprintln!(
            "faults during recovery: {} cut points, {cases} cases, {failed_opens} opens refused",
            cuts.len()
        );
        if cuts.len() > 1 {
            assert!(failed_opens > 0);
        }
    }
}
