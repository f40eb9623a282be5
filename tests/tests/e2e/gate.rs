//! The dock gate end to end (issue 4): a simulated RFID reader plays pallet passes through a two-antenna gate, a
//! real gate agent smooths the reads and decides, and the server's movement history and stock are checked exactly.
//!
//! Both tests play the same kind of script: 50 pallets announced on 5 ASNs (1–3 lines each), each carried inbound
//! past antenna 1 (outside) then 2 (inside) and read 50–500 times, 10% stray reads of a neighbour's pallets, one
//! reader outage in a gap between two pallets, and, after the 50, one received pallet carried back out.
//!
//! - `fifty_pallets_through_an_r2000_gate_on_a_pty`: an R2000 module on a pty goes silent for 1.5 s mid-stream.
//! - `fifty_pallets_through_an_llrp_gate_on_tcp`: an LLRP reader drops the TCP connection mid-stream.
//!
//! Each asserts at the server: exactly one `receive` per announced pallet line (gtin, lot, qty, sscc, ASN id, into
//! the gate's location) and nothing for the strays, stock at the gate equal to the ASNs' contents, contiguous
//! unique seqs, every movement's source the pallet's EPC, no discrepancy; then `ship` movements of the reversed
//! pallet's lines and the stock down by them. At the agent, the gate counters: 50 receipts and 1 shipment (every
//! pass decided in its direction), no duplicate, unknown unit or eviction, no pallet of the script among the
//! unresolved passes (the strays that reached `min_reads` end there).
//!
//! The outage falls between passes on purpose: reads the reader never delivers cannot make a receipt (the
//! acceptance wants all 50), and the smoother's rule `quiet_ms` ≥ reconnect time + 1 s is what keeps a pass that
//! spans an outage whole; the protocol's property tests cover that.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use dockhand_tests::rfidsim::{
    epc_hex, pallet_sscc, sscc96, Direction, GroundTruth, LlrpSim, Pass, R2000Sim, Script,
};
use dockhand_tests::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const SITE: &str = "WH1";
const DEVICE: &str = "gate-1";
const GATE: &str = "DOCK-3";
const PALLETS: usize = 50;
/// Pallets per ASN.
const PER_ASN: usize = 10;
/// GTINs the pallets carry.
const CATALOGUE: usize = 12;

/// One announced pallet line.
#[derive(Clone, Debug)]
struct Line {
    gtin: String,
    lot: String,
    qty: u64,
}

/// One pallet of the script and what its ASN announces.
#[derive(Clone, Debug)]
struct Pallet {
    sscc: String,
    epc: Vec<u8>,
    asn: String,
    lines: Vec<Line>,
}

/// The script's timing, in ms of the simulator's clock.
#[derive(Clone, Copy, Debug)]
struct Timing {
    /// Before the first pass: the agent starts, connects and pulls the ASNs.
    lead_ms: u64,
    /// Between the starts of two pallets' passes (shorter than a pass: passes overlap, smoothing is per EPC).
    spacing_ms: u64,
    /// How long each pallet is in the field.
    pass_ms: u64,
    /// Extra room between pallets 24 and 25 where the reader is disrupted.
    gap_ms: u64,
    /// The gate's `quiet_ms`.
    quiet_ms: u64,
}

/// What the script holds.
struct Plan {
    pallets: Vec<Pallet>,
    script: Script,
    /// (end of the last pass before the gap, start of the first after it).
    gap: (u64, u64),
    /// When the reader is disrupted.
    disrupt_at_ms: u64,
    /// End of the last inbound pass.
    inbound_end_ms: u64,
    /// The pallet carried back out after the 50: an early one with three lines, far from the outage.
    reversed: usize,
}

/// GTIN-14 number `i` of the gate's catalogue.
fn gen_gtin(i: usize) -> String {
    let body = format!("0950603{i:06}");
    format!("{body}{}", gs1_check_digit(&body))
}

/// A pass with the simulator's dock values (50–500 reads per tag, antennas 1 outside and 2 inside), `pass_ms`
/// long, the two antennas' fields overlapping for a tenth of it.
fn gate_pass(epc: Vec<u8>, direction: Direction, pass_ms: u64) -> Pass {
    let mut pass = Pass::new(vec![epc], direction);
    pass.duration_ms = pass_ms;
    // The direction's confidence grows with the time between the two sides (scale 500 ms): with a 1 s pass and
    // a 10% overlap the sides' first sights, last sights and peaks lie ~430 ms apart, a confidence of ~0.85.
    pass.overlap = 0.1;
    pass
}

fn plan(seed: u64, t: Timing) -> Plan {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut script = Script::new(seed);
    script.stray_fraction = 0.10;
    let half = PALLETS / 2;
    let start =
        |i: usize| t.lead_ms + i as u64 * t.spacing_ms + if i >= half { t.gap_ms } else { 0 };
    let mut pallets = Vec::new();
    for i in 0..PALLETS {
        let sscc = pallet_sscc(seed, i);
        let epc = sscc96(&sscc, 7, 0);
        let first = rng.random_range(0..CATALOGUE);
        let lines = (0..rng.random_range(1..=3usize))
            .map(|k| Line {
                // 0, 5, 10 apart in a catalogue of 12: a pallet's lines have distinct GTINs.
                gtin: gen_gtin((first + 5 * k) % CATALOGUE),
                lot: format!("L{i:02}{k}"),
                qty: rng.random_range(1..=48),
            })
            .collect();
        script.passes.push((
            start(i),
            gate_pass(epc.clone(), Direction::Inbound, t.pass_ms),
        ));
        pallets.push(Pallet {
            sscc,
            epc,
            asn: format!("ASN-G{}", i / PER_ASN + 1),
            lines,
        });
    }
    let gap = (start(half - 1) + t.pass_ms, start(half));
    let inbound_end_ms = start(PALLETS - 1) + t.pass_ms;
    let reversed = (5..half)
        .find(|&i| pallets[i].lines.len() == 3)
        .unwrap_or(5);
    // The reversed pass comes well after its pallet's inbound pass (more than quiet_ms: a separate pass).
    script.passes.push((
        inbound_end_ms + 1000,
        gate_pass(
            pallets[reversed].epc.clone(),
            Direction::Outbound,
            t.pass_ms,
        ),
    ));
    Plan {
        pallets,
        script,
        gap,
        disrupt_at_ms: gap.0 + 300,
        inbound_end_ms,
        reversed,
    }
}

/// The simulated reader of a test.
enum Sim {
    R2000(R2000Sim),
    Llrp(LlrpSim),
}

impl Sim {
    fn reader(&self) -> GateReader {
        match self {
            Sim::R2000(s) => GateReader::R2000(s.path().to_path_buf()),
            Sim::Llrp(s) => GateReader::Llrp(format!("127.0.0.1:{}", s.port())),
        }
    }

    fn truth(&self) -> &GroundTruth {
        match self {
            Sim::R2000(s) => s.truth(),
            Sim::Llrp(s) => s.truth(),
        }
    }

    fn start_clock(&self) {
        match self {
            Sim::R2000(s) => s.start_clock(),
            Sim::Llrp(s) => s.start_clock(),
        }
    }

    fn done(&self) -> bool {
        match self {
            Sim::R2000(s) => s.done(),
            Sim::Llrp(s) => s.done(),
        }
    }

    /// (reads delivered, reads lost).
    fn reads(&self) -> (u64, u64) {
        match self {
            Sim::R2000(s) => {
                let st = s.stats();
                (st.reads_delivered, st.reads_lost)
            }
            Sim::Llrp(s) => {
                let st = s.stats();
                (st.reads_delivered, st.reads_lost)
            }
        }
    }

    /// Checks that the outage happened and the agent came back; returns the reader's counters for the summary.
    fn check_outage(&self) -> Result<String> {
        match self {
            Sim::R2000(s) => {
                let st = s.stats();
                ensure!(
                    st.ignored_while_silent > 0,
                    "the agent sent nothing while the module was silent: {st:?}"
                );
                Ok(format!(
                    "{} commands ignored while silent, {} resets, {} inventories",
                    st.ignored_while_silent, st.resets, st.inventories
                ))
            }
            Sim::Llrp(s) => {
                let st = s.stats();
                ensure!(
                    st.disconnects == 1 && st.connections_accepted >= 2,
                    "the agent did not reconnect after the drop: {st:?}"
                );
                Ok(format!(
                    "{} disconnect, {} connections, {} keepalive acks",
                    st.disconnects, st.connections_accepted, st.keepalive_acks
                ))
            }
        }
    }

    /// The mid-stream outage: the module stops answering for 1.5 s, or the reader drops the connection.
    fn disrupt(&self) {
        match self {
            Sim::R2000(s) => s.go_silent(Duration::from_millis(1500)),
            Sim::Llrp(s) => s.disconnect_now(),
        }
    }
}

/// A movement as compared here: (kind, sscc, gtin, lot, qty, from, to, reference).
type Mv = (
    String,
    String,
    String,
    Option<String>,
    u64,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn receipt(p: &Pallet, l: &Line) -> Mv {
    (
        "receive".into(),
        p.sscc.clone(),
        l.gtin.clone(),
        Some(l.lot.clone()),
        l.qty,
        None,
        Some(GATE.into()),
        Some(p.asn.clone()),
    )
}

/// A shipment compared without its reference (the contract does not fix one for a ship).
fn shipment(p: &Pallet, l: &Line) -> Mv {
    (
        "ship".into(),
        p.sscc.clone(),
        l.gtin.clone(),
        Some(l.lot.clone()),
        l.qty,
        Some(GATE.into()),
        None,
        None,
    )
}

fn mv_of(v: &Value) -> Result<Mv> {
    let m = &v["movement"];
    let s = |k: &str| m[k].as_str().map(str::to_string);
    let kind = s("kind").context("kind")?;
    Ok((
        kind.clone(),
        s("sscc").with_context(|| format!("no sscc in {m}"))?,
        s("gtin").context("gtin")?,
        s("lot"),
        m["qty"].as_u64().context("qty")?,
        s("from_location"),
        s("to_location"),
        if kind == "ship" { None } else { s("reference") },
    ))
}

fn receipts_of(history: &[Value]) -> Vec<&Value> {
    history
        .iter()
        .filter(|m| m["movement"]["kind"] == "receive")
        .collect()
}

type Stock = BTreeMap<(String, String, Option<String>), i64>;

fn stock_map(rows: Vec<StockLine>) -> Stock {
    rows.into_iter()
        .filter(|r| r.3 != 0)
        .map(|(l, g, lot, q)| ((l, g, lot), q))
        .collect()
}

/// Stock at the gate after receiving every pallet and shipping `shipped`.
fn gate_stock(pallets: &[Pallet], shipped: &[usize]) -> Stock {
    let mut s = Stock::new();
    for (i, p) in pallets.iter().enumerate() {
        let sign = if shipped.contains(&i) { 0 } else { 1 };
        for l in &p.lines {
            *s.entry((GATE.into(), l.gtin.clone(), Some(l.lot.clone())))
                .or_default() += sign * l.qty as i64;
        }
    }
    s.retain(|_, q| *q != 0);
    s
}

/// The office's master data: items, the gate's location, five ASNs announcing the pallets.
fn office_setup(office: &Office, pallets: &[Pallet]) -> Result<()> {
    for i in 0..CATALOGUE {
        office.put(
            &format!("/v1/items/{}", gen_gtin(i)),
            json!({"description": format!("gate item {i}"), "lot_tracked": true}),
        )?;
    }
    office.put(&format!("/v1/sites/{SITE}/locations/{GATE}"), json!({}))?;
    for chunk in pallets.chunks(PER_ASN) {
        let body: Vec<Value> = chunk
            .iter()
            .map(|p| {
                json!({"sscc": p.sscc, "lines": p.lines.iter()
                    .map(|l| json!({"gtin": l.gtin, "lot": l.lot, "qty": l.qty}))
                    .collect::<Vec<_>>()})
            })
            .collect();
        office.post(
            "/v1/asns",
            Some(json!({"id": chunk[0].asn, "site": SITE, "supplier": "ACME", "pallets": body})),
        )?;
    }
    Ok(())
}

/// Waits until everything durable is acknowledged (the status file lags up to 500 ms).
fn wait_drained(agent: &AgentProc) -> Result<()> {
    std::thread::sleep(Duration::from_millis(700));
    wait_until(Duration::from_secs(60), || {
        let s = agent.status()?;
        Ok(s["backlog"].as_u64() == Some(0)
            && s["sync"]["acked_through"].as_u64() == s["durable_seq"].as_u64())
    })
}

/// Sleeps until `ms` of the simulator's clock (started at `t0`).
fn sleep_until(t0: Instant, ms: u64) {
    let at = t0 + Duration::from_millis(ms);
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
}

/// Plays the plan on `sim` against a fresh server and gate agent and checks every outcome; returns the summary.
fn run_gate(sim: Sim, plan: &Plan, t: Timing) -> Result<String> {
    let began = Instant::now();
    let tmp = tempfile::tempdir()?;
    let server_data = tmp.path().join("server");
    let server = ServerProc::start(&server_data, free_port())?;
    let office = Office::new(&server)?;
    office_setup(&office, &plan.pallets)?;
    let token = enroll(&server_data, DEVICE, SITE)?;
    let data = tmp.path().join(DEVICE);
    let config = GateSpec {
        device: DEVICE,
        site: SITE,
        data: &data,
        server: (server.url(), server_data.join("ca.pem"), token),
        location: GATE,
        reader: sim.reader(),
        quiet_ms: t.quiet_ms,
        min_reads: 3,
        min_confidence: 0.5,
    }
    .write_config()?;

    // The script's clock starts now, so its times map to this process's clock; the lead-in covers the agent's
    // start and its first pull.
    sim.start_clock();
    let t0 = Instant::now();
    let agent = AgentProc::start(&config, &data)?;
    wait_until(Duration::from_secs(30), || {
        let m = &agent.status()?["sync"]["master"];
        Ok(m["asns"].as_u64() >= Some((PALLETS / PER_ASN) as u64)
            && m["items"].as_u64() >= Some(CATALOGUE as u64))
    })?;
    let ready_ms = t0.elapsed().as_millis() as u64;
    ensure!(
        ready_ms < t.lead_ms,
        "the agent had its reader and the ASNs only {ready_ms} ms into the script, after the first pass \
         (lead-in {} ms): a slow machine, not a gate decision",
        t.lead_ms
    );

    // The outage, in the gap between pallets 24 and 25.
    sleep_until(t0, plan.disrupt_at_ms);
    let disrupted_ms = t0.elapsed().as_millis() as u64;
    sim.disrupt();
    ensure!(
        disrupted_ms < plan.gap.1.saturating_sub(2000),
        "the outage started at {disrupted_ms} ms, too late for the gap {:?}",
        plan.gap
    );

    // All 50 pallets at the server. Checked now, before the reversed pass can ship one (if it already did, the
    // stock check allows for it; the end checks the shipment exactly).
    let want_receipts: Vec<Mv> = {
        let mut v: Vec<Mv> = plan
            .pallets
            .iter()
            .flat_map(|p| p.lines.iter().map(move |l| receipt(p, l)))
            .collect();
        v.sort();
        v
    };
    let inbound_deadline = Duration::from_millis(plan.inbound_end_ms + t.quiet_ms)
        .saturating_sub(t0.elapsed())
        + Duration::from_secs(30);
    wait_until(inbound_deadline, || {
        let history = office.movements(SITE)?;
        let ssccs: BTreeSet<&str> = receipts_of(&history)
            .iter()
            .filter_map(|m| m["movement"]["sscc"].as_str())
            .collect();
        Ok(ssccs.len() >= PALLETS)
    })
    .with_context(|| {
        let history = office.movements(SITE).unwrap_or_default();
        let received: BTreeSet<&str> = receipts_of(&history)
            .iter()
            .filter_map(|m| m["movement"]["sscc"].as_str())
            .collect();
        let missing: Vec<usize> = (0..PALLETS)
            .filter(|&i| !received.contains(plan.pallets[i].sscc.as_str()))
            .collect();
        let gate = agent
            .status()
            .map(|s| s["gate"].clone())
            .unwrap_or_default();
        format!("pallets not received: {missing:?} (script order); the agent's gate status: {gate}")
    })?;
    let mid_ms = t0.elapsed().as_millis();
    let (mid_stock, shipped_by_then) = loop {
        let before = office.movements(SITE)?;
        let stock = stock_map(server.stock(SITE)?);
        let after = office.movements(SITE)?;
        if before.len() == after.len() {
            let shipped = after
                .iter()
                .any(|m| m["movement"]["kind"] == "ship")
                .then_some(plan.reversed);
            break (stock, shipped);
        }
    };
    let mid_want = gate_stock(
        &plan.pallets,
        &shipped_by_then.into_iter().collect::<Vec<_>>(),
    );
    assert_eq!(
        mid_stock,
        mid_want,
        "stock after the 50 pallets (the reversed pass shipped already: {})",
        shipped_by_then.is_some()
    );

    // The reversed pass, the last strays, and the agent's last departures (quiet_ms after the last read).
    wait_until(
        Duration::from_millis(plan.script.passes.last().map_or(0, |p| p.0) + 30_000),
        || Ok(sim.done()),
    )?;
    let done_ms = t0.elapsed().as_millis();
    std::thread::sleep(Duration::from_millis(t.quiet_ms + 500));
    let reversed = &plan.pallets[plan.reversed];
    wait_until(Duration::from_secs(30), || {
        Ok(office
            .movements(SITE)?
            .iter()
            .filter(|m| m["movement"]["kind"] == "ship")
            .count()
            >= reversed.lines.len())
    })
    .context("the reversed pass made no shipment")?;
    wait_drained(&agent)?;
    // Once more after the status file caught up: whatever the agent decided last is at the server.
    std::thread::sleep(Duration::from_millis(700));
    wait_drained(&agent)?;

    // The movement history: exactly the receipts and the reversed pallet's shipment.
    let history = office.movements(SITE)?;
    let mut ids = BTreeSet::new();
    for m in &history {
        let mv = &m["movement"];
        ensure!(
            mv["device_id"] == DEVICE,
            "a movement of another device: {mv}"
        );
        let seq = mv["seq"].as_u64().context("seq")?;
        ensure!(ids.insert(seq), "(device, seq) {seq} twice: {mv}");
        let src = &mv["source"];
        ensure!(src["type"] == "epc", "source of {mv}");
        let sscc = mv["sscc"].as_str().context("sscc")?;
        let pallet = plan
            .pallets
            .iter()
            .find(|p| p.sscc == sscc)
            .with_context(|| format!("a movement for a pallet not in the script: {mv}"))?;
        ensure!(
            src["epc"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(&epc_hex(&pallet.epc))),
            "source EPC of {mv}: want {}",
            epc_hex(&pallet.epc)
        );
        ensure!(
            matches!(src["antenna"].as_u64(), Some(1 | 2)),
            "antenna of {mv}"
        );
        ensure!(
            src["rssi"]
                .as_i64()
                .is_some_and(|r| (-128..=0).contains(&r)),
            "rssi of {mv}"
        );
    }
    assert_eq!(
        ids.iter().copied().collect::<Vec<_>>(),
        (1..=history.len() as u64).collect::<Vec<_>>(),
        "seqs contiguous from 1"
    );
    let mut got: Vec<Mv> = history.iter().map(mv_of).collect::<Result<_>>()?;
    got.sort();
    let mut want = want_receipts.clone();
    want.extend(reversed.lines.iter().map(|l| shipment(reversed, l)));
    want.sort();
    if got != want {
        let extra: Vec<&Mv> = got.iter().filter(|m| !want.contains(m)).collect();
        let missing: Vec<&Mv> = want.iter().filter(|m| !got.contains(m)).collect();
        bail!(
            "movement history differs: {} movements, {} wanted\nextra: {extra:#?}\nmissing: {missing:#?}",
            got.len(),
            want.len()
        );
    }
    assert_eq!(
        stock_map(server.stock(SITE)?),
        gate_stock(&plan.pallets, &[plan.reversed]),
        "stock after the reversed pass"
    );
    let open = office.discrepancies(SITE)?;
    assert!(open.is_empty(), "no discrepancies expected: {open:#?}");

    // The agent's counters (the drain above waited for a rewrite of the status file).
    let status = agent.status()?;
    let gate = &status["gate"];
    let counter = |k: &str| gate[k].as_u64();
    // (counter, value): 50 inbound passes received, 1 outbound shipped, nothing doubled, unknown or cut short.
    let want_counters = [
        ("receipts", PALLETS as u64),
        ("ships", 1),
        ("movements", history.len() as u64),
        ("duplicates", 0),
        ("unknown_units", 0),
        ("evicted", 0),
        ("not_stored", 0),
    ];
    for (k, v) in want_counters {
        assert_eq!(counter(k), Some(v), "gate.{k}: {gate}");
    }
    // Strays that reached min_reads end unresolved (no clear direction); a pallet of the script never does.
    let pallet_epcs: BTreeSet<String> = plan
        .pallets
        .iter()
        .map(|p| epc_hex(&p.epc).to_lowercase())
        .collect();
    for u in gate["recent_unresolved"].as_array().into_iter().flatten() {
        let epc = u["epc"].as_str().unwrap_or_default().to_lowercase();
        ensure!(
            !pallet_epcs.contains(&epc),
            "a pallet's pass unresolved: {u}"
        );
    }

    let outage = sim.check_outage()?;
    let counters: Vec<String> = [
        "reads",
        "passes",
        "arrivals",
        "strays",
        "receipts",
        "ships",
        "unresolved",
        "duplicates",
    ]
    .iter()
    .map(|k| format!("{k} {}", gate[*k]))
    .collect();
    let counters = counters.join(", ");
    let truth = sim.truth();
    let (delivered, lost) = sim.reads();
    Ok(format!(
        "{PALLETS} pallets ({} lines) + 1 reversed; {} reads scheduled ({} of passes, {} strays from {} stray tags), \
         {delivered} delivered, {lost} lost; outage at {disrupted_ms} ms in the gap {:?} ({outage}); agent ready at {ready_ms} ms, \
         all received at {mid_ms} ms, sim done at {done_ms} ms; {} receipts + {} ships at the server; \
         gate: {counters}; reader {}; {:.1} s in all",
        want_receipts.len(),
        truth.total_reads,
        truth.pass_reads,
        truth.stray_reads,
        truth.strays.len(),
        plan.gap,
        want_receipts.len(),
        reversed.lines.len(),
        status["sources"][0],
        began.elapsed().as_secs_f64(),
    ))
}

#[test]
fn fifty_pallets_through_an_r2000_gate_on_a_pty() -> Result<()> {
    // quiet_ms 3000 (the gate default): the smoother's rule, reconnect time + 1 s, for a module silent 1.5 s.
    let t = Timing {
        lead_ms: 3000,
        spacing_ms: 500,
        pass_ms: 1000,
        gap_ms: 4500,
        quiet_ms: 3000,
    };
    let plan = plan(41, t);
    let sim = R2000Sim::start(&plan.script)?;
    let summary = run_gate(Sim::R2000(sim), &plan, t)?;
    println!("r2000 gate: {summary}");
    Ok(())
}

#[test]
fn fifty_pallets_through_an_llrp_gate_on_tcp() -> Result<()> {
    // quiet_ms 3000 (the gate default): survives a reconnect of up to 2 s.
    let t = Timing {
        lead_ms: 3000,
        spacing_ms: 500,
        pass_ms: 1000,
        gap_ms: 4500,
        quiet_ms: 3000,
    };
    let plan = plan(42, t);
    let sim = LlrpSim::start(&plan.script, 1000)?;
    let summary = run_gate(Sim::Llrp(sim), &plan, t)?;
    println!("llrp gate: {summary}");
    Ok(())
}
