//! `dockhand-gate-bench`: the dock gate's pallet-pass-to-server-ack latency (issue 4), next to its floor.
//!
//! Run: `cargo run --release -p dockhand-tests --bin dockhand-gate-bench` (about three minutes). Prints a
//! Markdown table for BENCHMARKS.md; every figure is the median over RUNS repetitions.
//!
//! Each run: the real `dockhand-server` and a gate `dockhand-agent` reading a simulated reader (an R2000 module on
//! a pty, or an LLRP reader on TCP), PALLETS pallets announced on an ASN and carried inbound one at a time (passes
//! of 1 s every 1.2 s: no two overlap), 10% stray reads. For each pallet: from the moment its pass's last read
//! is due at the simulator (the script's ground truth on the simulator's clock, which the bench starts and so maps
//! to wall time) to the moment the server applied its receipts (`received_at` in the movement history; the
//! server's ack follows after that transaction's fdatasync, a few ms). Baseline: the gate's `quiet_ms`, the time
//! without a read after which a pass is over: a departure, and so the direction and the receipt, cannot be
//! decided earlier. The difference is what the agent, its journal and the sync add.
//!
//! `DH_GATE_BENCH_VERBOSE=1` prints each pallet's figures (last read to decision + decision to server) per run.
//!
//! For context: the reads per second the agent took in during the passes (reads delivered by the simulator over
//! the time from the first pass's start to the last pass's end).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, ensure, Context, Result};
use dockhand_tests::rfidsim::{
    pallet_sscc, sscc96, Direction, LlrpSim, Pass, R2000Sim, ReadSource, Script,
};
use dockhand_tests::*;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const RUNS: usize = 3;
const PALLETS: usize = 20;
const LEAD_MS: u64 = 3000;
const SPACING_MS: u64 = 1200;
const PASS_MS: u64 = 1000;
const QUIET_MS: u64 = 3000;
const SITE: &str = "WH1";
const GATE: &str = "DOCK-3";

fn gtin(i: usize) -> String {
    let body = format!("0950604{i:06}");
    format!("{body}{}", gs1_check_digit(&body))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reader {
    R2000,
    Llrp,
}

impl Reader {
    fn label(self) -> &'static str {
        match self {
            Reader::R2000 => "R2000 on a pty",
            Reader::Llrp => "LLRP on TCP",
        }
    }
}

/// One run's figures.
struct Run {
    /// Pass end to server apply, ms, sorted.
    latency_ms: Vec<f64>,
    /// Pass end to the agent's decision (the movements' `at`), ms, sorted.
    decision_ms: Vec<f64>,
    /// Reads delivered per second of passes.
    reads_per_s: f64,
    /// Reads delivered and reads lost (strays due before the agent connected).
    reads: (u64, u64),
}

fn script(seed: u64) -> Script {
    let mut script = Script::new(seed);
    script.stray_fraction = 0.10;
    for i in 0..PALLETS {
        let mut pass = Pass::new(
            vec![sscc96(&pallet_sscc(seed, i), 7, 0)],
            Direction::Inbound,
        );
        pass.duration_ms = PASS_MS;
        // As in the e2e gate tests: the sides ~430 ms apart, a direction confidence of ~0.8.
        pass.overlap = 0.1;
        script.passes.push((LEAD_MS + i as u64 * SPACING_MS, pass));
    }
    script
}

fn run(reader: Reader, seed: u64) -> Result<Run> {
    let tmp = tempfile::tempdir()?;
    let server_data = tmp.path().join("server");
    let server = ServerProc::start(&server_data, free_port())?;
    let office = Office::new(&server)?;
    for i in 0..4 {
        office.put(
            &format!("/v1/items/{}", gtin(i)),
            json!({"description": format!("bench item {i}"), "lot_tracked": true}),
        )?;
    }
    office.put(&format!("/v1/sites/{SITE}/locations/{GATE}"), json!({}))?;
    let ssccs: Vec<String> = (0..PALLETS).map(|i| pallet_sscc(seed, i)).collect();
    let pallets: Vec<Value> = ssccs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"sscc": s, "lines": [
                {"gtin": gtin(i % 4), "lot": format!("B{i}"), "qty": 10 + i},
                {"gtin": gtin((i + 1) % 4), "lot": format!("C{i}"), "qty": 1}]})
        })
        .collect();
    office.post(
        "/v1/asns",
        Some(json!({"id": "ASN-BENCH", "site": SITE, "pallets": pallets})),
    )?;
    let token = enroll(&server_data, "gate-bench", SITE)?;

    let script = script(seed);
    let schedule = script.schedule();
    // When each pass's last read is due, µs on the simulator's clock.
    let mut last_read_us = [0u64; PALLETS];
    for r in &schedule.reads {
        if let ReadSource::Pass(i) = r.source {
            last_read_us[i] = last_read_us[i].max(r.at_us);
        }
    }
    let (r2000, llrp, gate_reader) = match reader {
        Reader::R2000 => {
            let sim = R2000Sim::start(&script)?;
            let path = sim.path().to_path_buf();
            (Some(sim), None, GateReader::R2000(path))
        }
        Reader::Llrp => {
            let sim = LlrpSim::start(&script, 1000)?;
            let address = format!("127.0.0.1:{}", sim.port());
            (None, Some(sim), GateReader::Llrp(address))
        }
    };
    let data = tmp.path().join("agent");
    let config = GateSpec {
        device: "gate-bench",
        site: SITE,
        data: &data,
        server: (server.url(), server_data.join("ca.pem"), token),
        location: GATE,
        reader: gate_reader,
        quiet_ms: QUIET_MS,
        min_reads: 3,
        min_confidence: 0.5,
    }
    .write_config()?;

    // The simulator's clock starts here: its times are offsets from `t0` on the wall clock.
    if let Some(s) = &r2000 {
        s.start_clock();
    }
    if let Some(s) = &llrp {
        s.start_clock();
    }
    let t0 = OffsetDateTime::from(SystemTime::now());
    let started = Instant::now();
    let agent = AgentProc::start(&config, &data)?;
    wait_until(Duration::from_secs(30), || {
        Ok(agent.status()?["sync"]["master"]["asns"].as_u64() >= Some(1))
    })?;
    ensure!(
        started.elapsed() < Duration::from_millis(LEAD_MS),
        "the agent was ready only after the first pass began ({:?})",
        started.elapsed()
    );

    // Every pallet's receipts at the server, with the time the server applied them.
    let end = Duration::from_millis(schedule.truth.end_ms + QUIET_MS) + Duration::from_secs(30);
    // sscc -> (decided at, applied at): the latest over the pallet's lines (it is at the server once all are).
    let mut applied: BTreeMap<String, (OffsetDateTime, OffsetDateTime)> = BTreeMap::new();
    let time = |v: &Value| -> Result<OffsetDateTime> {
        Ok(OffsetDateTime::parse(
            v.as_str().context("a time")?,
            &Rfc3339,
        )?)
    };
    wait_until(end, || {
        applied.clear();
        for m in office.movements(SITE)? {
            if m["movement"]["kind"] != "receive" {
                continue;
            }
            let sscc = m["movement"]["sscc"].as_str().context("sscc")?.to_string();
            let (decided, at) = (time(&m["movement"]["at"])?, time(&m["received_at"])?);
            let e = applied.entry(sscc).or_insert((decided, at));
            *e = (e.0.max(decided), e.1.max(at));
        }
        Ok(applied.len() >= PALLETS)
    })
    .with_context(|| format!("{reader:?}: not every pallet was received"))?;
    let (mut latency_ms, mut decision_ms) = (Vec::new(), Vec::new());
    for (i, sscc) in ssccs.iter().enumerate() {
        let (decided, at) = applied
            .get(sscc)
            .with_context(|| format!("pallet {i} not received"))?;
        let last_read = t0 + Duration::from_micros(last_read_us[i]);
        latency_ms.push((*at - last_read).as_seconds_f64() * 1000.0);
        decision_ms.push((*decided - last_read).as_seconds_f64() * 1000.0);
    }
    if std::env::var_os("DH_GATE_BENCH_VERBOSE").is_some() {
        let each: Vec<String> = latency_ms
            .iter()
            .zip(&decision_ms)
            .map(|(l, d)| format!("{d:.0}+{:.0}", l - d))
            .collect();
        eprintln!(
            "{reader:?} seed {seed}: decision+sync ms per pallet: {}",
            each.join(" ")
        );
    }
    latency_ms.sort_by(|a, b| a.total_cmp(b));
    decision_ms.sort_by(|a, b| a.total_cmp(b));
    if latency_ms[0] < QUIET_MS as f64 * 0.9 {
        bail!(
            "a receipt {:.0} ms after its pass: the clocks are not mapped right",
            latency_ms[0]
        );
    }
    let (delivered, lost) = match (&r2000, &llrp) {
        (Some(s), _) => (s.stats().reads_delivered, s.stats().reads_lost),
        (_, Some(s)) => (s.stats().reads_delivered, s.stats().reads_lost),
        _ => unreachable!("one simulator runs"),
    };
    let passes_s =
        (LEAD_MS + (PALLETS as u64 - 1) * SPACING_MS + PASS_MS - LEAD_MS) as f64 / 1000.0;
    Ok(Run {
        latency_ms,
        decision_ms,
        reads_per_s: delivered as f64 / passes_s,
        reads: (delivered, lost),
    })
}

fn main() -> Result<()> {
    struct Row {
        reader: Reader,
        p50: f64,
        p99: f64,
        min: f64,
        decision: (f64, f64),
        reads_per_s: f64,
        delivered: f64,
        lost: f64,
    }
    let mut rows = Vec::new();
    for reader in [Reader::R2000, Reader::Llrp] {
        let mut runs = Vec::new();
        for n in 0..RUNS {
            eprintln!("{} run {}/{RUNS} ...", reader.label(), n + 1);
            runs.push(run(reader, 100 + n as u64)?);
        }
        let m = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
        rows.push(Row {
            reader,
            p50: m(&|r| pct(&r.latency_ms, 0.5)),
            p99: m(&|r| pct(&r.latency_ms, 0.99)),
            min: m(&|r| r.latency_ms[0]),
            decision: (
                m(&|r| pct(&r.decision_ms, 0.5)),
                m(&|r| pct(&r.decision_ms, 0.99)),
            ),
            reads_per_s: m(&|r| r.reads_per_s),
            delivered: m(&|r| r.reads.0 as f64),
            lost: m(&|r| r.reads.1 as f64),
        });
    }
    let quiet = QUIET_MS as f64;
    println!("| figure | value | baseline (same run) | ratio |");
    println!("| --- | --- | --- | --- |");
    for r in &rows {
        println!(
            "| pallet pass (last read) to server ack, {}, p50 / p99 ({RUNS} runs × {PALLETS} pallets; min {:.2} s) | {:.2} / {:.2} s | gate quiet_ms {:.2} s: no departure before it | {:.2}× / {:.2}× |",
            r.reader.label(),
            r.min / 1e3,
            r.p50 / 1e3,
            r.p99 / 1e3,
            quiet / 1e3,
            r.p50 / quiet,
            r.p99 / quiet
        );
        println!(
            "| … last read to the agent's decision (movement `at`), p50 / p99 | {:.0} / {:.0} ms | quiet_ms {quiet:.0} ms | +{:.0} / +{:.0} ms |",
            r.decision.0,
            r.decision.1,
            r.decision.0 - quiet,
            r.decision.1 - quiet
        );
        println!(
            "| … everything after quiet_ms (decision, journal, push), p50 / p99 | {:.0} / {:.0} ms | — | — |",
            r.p50 - quiet,
            r.p99 - quiet
        );
    }
    for r in &rows {
        println!(
            "| reads taken in during the passes, {} (context) | {:.0} reads/s ({:.0} delivered, {:.0} lost before the agent connected) | — | — |",
            r.reader.label(),
            r.reads_per_s,
            r.delivered,
            r.lost
        );
    }
    Ok(())
}
