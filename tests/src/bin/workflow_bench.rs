//! `dockhand-workflow-bench`: the handheld workflow figures of issue 5, each next to a baseline measured in the
//! same run.
//!
//! Run: `cargo run --release -p dockhand-tests --bin dockhand-workflow-bench` (about two minutes). Prints a
//! Markdown table for BENCHMARKS.md; every figure is the median over RUNS repetitions.
//!
//! 1. Decision time, in process: a 1,000-line pick list walked (location + item scan per line) against a sled
//!    store holding 10,000 items, `Workflow::handle` timed per scan, p50/p99. Baseline: decoding the same scans
//!    alone (`decode_text`), which every scan pays anyway.
//! 2. Scan-to-decision latency, end to end: the real `dockhand-server` and `dockhand-agent` processes, master data
//!    (10,000 items, 1,000 locations, a 1,000-line pick list) loaded through the office API and pulled by the
//!    device; the same pick walk written to the agent's pty one scan at a time, time from write to the good-read
//!    byte (the decision is only given once the scan's records are fdatasync'ed). Baseline: one append +
//!    `fdatasync` of a 200-byte record in the agent's data directory (the floor of any durable confirm).
//! 3. Agent memory: VmRSS of the agent process after 100,000 receiving scans of 1,000 item-lots, streamed as fast
//!    as the agent confirms them and synced to the server as they go.
//!    Baseline: its VmRSS after start-up and pulling the master data, before the scans.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dockhand_agent::view::LocalView;
use dockhand_agent::workflow::{ScanInput, State, Workflow};
use dockhand_protocol::decode::{decode_text, DecodeOptions};
use dockhand_protocol::sync::{Change, DocStatus, Item, Location, PickLine, PickList};
use dockhand_tests::*;

const ITEMS: usize = 10_000;
const LINES: usize = 1_000;
const RUNS: usize = 5;
const RSS_SCANS: usize = 100_000;

fn gtin(i: usize) -> String {
    let body = format!("0950601{i:06}");
    format!("{body}{}", gs1_check_digit(&body))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn lines() -> Vec<PickLine> {
    (0..LINES)
        .map(|i| PickLine {
            line: i as u32 + 1,
            location: format!("P-{i:04}"),
            gtin: gtin((i * 7) % ITEMS),
            lot: None,
            qty: 1,
        })
        .collect()
}

fn walk() -> Vec<String> {
    walk_list("BIG")
}

fn walk_list(id: &str) -> Vec<String> {
    let mut scans = vec![format!("DH:PICK:{id}")];
    for l in lines() {
        scans.push(format!("LOC:{}", l.location));
        scans.push(format!("]C101{}10B1", l.gtin));
    }
    scans
}

fn opts() -> DecodeOptions {
    DecodeOptions {
        today: time::OffsetDateTime::now_utc().date(),
        fnc1_substitute: None,
        assume_gs1: false,
        fnc1_text: false,
    }
}

/// (p50, p99) in µs of the workflow decision, and of decoding alone.
fn in_process() -> Result<((f64, f64), (f64, f64))> {
    let tmp = tempfile::tempdir()?;
    let (view, _) = LocalView::open(&tmp.path().join("sled"))?;
    let items: Vec<Change> = (0..ITEMS)
        .map(|i| {
            Change::Item(Item {
                gtin: gtin(i),
                description: format!("item {i}"),
                unit: "EA".into(),
                lot_tracked: true,
                expiry_tracked: false,
                serial_tracked: false,
                active: true,
                unit_cost: None,
            })
        })
        .collect();
    for (n, page) in items.chunks(1000).enumerate() {
        view.apply_changes(page, n as u64 + 1)?;
    }
    let mut master: Vec<Change> = lines()
        .iter()
        .map(|l| {
            Change::Location(Location {
                code: l.location.clone(),
                gln: None,
                zone: None,
                active: true,
            })
        })
        .collect();
    master.push(Change::PickList(PickList {
        id: "BIG".into(),
        site: "WH1".into(),
        device: None,
        zone: None,
        lines: lines(),
        status: DocStatus::Open,
    }));
    view.apply_changes(&master, 100)?;
    let scans = walk();
    let opts = opts();
    let at = time::OffsetDateTime::now_utc();
    let (mut wf_p50, mut wf_p99, mut dec_p50, mut dec_p99) = (vec![], vec![], vec![], vec![]);
    for _ in 0..RUNS {
        let mut wf = Workflow::new("bench", "DOCK-1", State::default(), 1);
        let (mut took, mut dec) = (Vec::new(), Vec::new());
        for s in &scans {
            let t = Instant::now();
            let scan = decode_text(s, &opts);
            dec.push(t.elapsed().as_secs_f64() * 1e6);
            let input = match scan {
                Ok(scan) => ScanInput::Decoded {
                    scan,
                    raw: s.clone(),
                    symbology: None,
                },
                Err(e) => bail!("{s}: {e}"),
            };
            let t = Instant::now();
            let step = wf.handle(input, at, &view);
            took.push(t.elapsed().as_secs_f64() * 1e6);
            if !step.decision.is_ok() {
                bail!("{s}: {:?}", step.decision);
            }
        }
        took.sort_by(|a, b| a.total_cmp(b));
        dec.sort_by(|a, b| a.total_cmp(b));
        wf_p50.push(pct(&took, 0.5));
        wf_p99.push(pct(&took, 0.99));
        dec_p50.push(pct(&dec, 0.5));
        dec_p99.push(pct(&dec, 0.99));
    }
    Ok((
        (median(wf_p50), median(wf_p99)),
        (median(dec_p50), median(dec_p99)),
    ))
}

fn vm_rss_kib(pid: u32) -> Result<u64> {
    proc_status_kib(pid, "VmRSS:")
}

fn proc_status_kib(pid: u32, key: &str) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")
}

fn fsync_floor(dir: &std::path::Path) -> Result<(f64, f64)> {
    let path = dir.join("fsync-baseline");
    let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
    let rec = [0x5au8; 200];
    let mut took = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        f.write_all(&rec)?;
        f.sync_data()?;
        took.push(t.elapsed().as_secs_f64() * 1e6);
    }
    std::fs::remove_file(&path)?;
    took.sort_by(|a, b| a.total_cmp(b));
    Ok((pct(&took, 0.5), pct(&took, 0.99)))
}

struct EndToEnd {
    pick_p50: f64,
    pick_p99: f64,
    loc_p50: f64,
    loc_p99: f64,
    offline_p50: f64,
    offline_p99: f64,
    fsync_p50: f64,
    fsync_p99: f64,
    rss_idle_kib: u64,
    rss_after_kib: u64,
    rss_peak_kib: u64,
    rss_scans_per_s: f64,
}

fn end_to_end() -> Result<EndToEnd> {
    let tmp = tempfile::tempdir()?;
    let server_data = tmp.path().join("server");
    let mut server = ServerProc::start(&server_data, free_port())?;
    let office = Office::new(&server)?;
    let client = server.client()?;
    let admin = server.admin_token()?;
    let mut csv = String::from("gtin,description,unit,lot_tracked,expiry_tracked,serial_tracked\n");
    for i in 0..ITEMS {
        csv.push_str(&format!("{},item {i},EA,true,false,false\n", gtin(i)));
    }
    let post_csv = |path: &str, body: String| -> Result<()> {
        let r = client
            .post(format!("{}{path}", server.url()))
            .bearer_auth(&admin)
            .header("content-type", "text/csv")
            .body(body)
            .send()?;
        if !r.status().is_success() {
            bail!("{path}: {} {}", r.status(), r.text()?);
        }
        Ok(())
    };
    post_csv("/v1/items/import", csv)?;
    let mut locs = String::from("code,gln,zone\nDOCK-1,,\n");
    for l in lines() {
        locs.push_str(&format!("{},,\n", l.location));
    }
    post_csv("/v1/sites/WH1/locations/import", locs)?;
    // The same list twice: walked once with the server up, once with the device offline.
    for id in ["BIG", "BIG2"] {
        office.post(
            "/v1/pick-lists",
            Some(serde_json::to_value(PickList {
                id: id.into(),
                site: "WH1".into(),
                device: None,
                zone: None,
                lines: lines(),
                status: DocStatus::Open,
            })?),
        )?;
    }
    let token = enroll(&server_data, "hh-bench", "WH1")?;
    let mut scanner = Scanner::new()?;
    let data = tmp.path().join("agent");
    let config = AgentSpec {
        device: "hh-bench",
        site: "WH1",
        data: &data,
        server: Some((server.url(), server_data.join("ca.pem"), token)),
        scanner: &scanner.path,
        max_backoff_ms: 500,
    }
    .write_config()?;
    let agent = AgentProc::start(&config, &data)?;
    wait_until(Duration::from_secs(120), || {
        let m = &agent.status()?["sync"]["master"];
        Ok(m["items"].as_u64() == Some(ITEMS as u64) && m["pick_lists"].as_u64() == Some(2))
    })?;
    std::thread::sleep(Duration::from_secs(1));
    let rss_idle_kib = vm_rss_kib(agent.pid())?;

    // The pick walk, one scan at a time.
    let (mut pick, mut loc) = (Vec::new(), Vec::new());
    let quick = std::env::var_os("DH_BENCH_RSS_ONLY").is_some();
    for s in walk().into_iter().take(if quick { 3 } else { usize::MAX }) {
        let t = Instant::now();
        let fb = scanner.scan_and_wait(&s, Duration::from_secs(10))?;
        let us = t.elapsed().as_secs_f64() * 1e6;
        if fb != Some(ACK) {
            bail!("{s}: feedback {fb:?}");
        }
        if s.starts_with("LOC:") {
            loc.push(us);
        } else if s.starts_with("]C1") {
            pick.push(us);
        }
    }
    pick.sort_by(|a, b| a.total_cmp(b));
    loc.sort_by(|a, b| a.total_cmp(b));
    let (fsync_p50, fsync_p99) = fsync_floor(&data)?;

    // 100,000 receiving scans, streamed, then the agent's resident memory.
    if quick && scanner.scan_and_wait("DH:CANCEL", Duration::from_secs(10))? != Some(ACK) {
        bail!("DH:CANCEL refused");
    }
    if scanner.scan_and_wait("DH:RECEIVE", Duration::from_secs(10))? != Some(ACK) {
        bail!("DH:RECEIVE refused");
    }
    let mut writer = scanner.try_clone_master()?;
    let feeder = std::thread::spawn(move || -> Result<()> {
        let mut buf = Vec::new();
        for i in 0..RSS_SCANS {
            // 100,000 scans of 1,000 item-lots: a busy receiving dock (a new lot every 100 scans).
            let n = i % 1000;
            buf.extend_from_slice(format!("]C101{}10R{}\r\n", gtin(n * 7), n % 13).as_bytes());
            if buf.len() > 8000 {
                writer.write_all(&buf)?;
                buf.clear();
            }
        }
        writer.write_all(&buf)?;
        Ok(())
    });
    let t = Instant::now();
    let mut acks = 0usize;
    while acks < RSS_SCANS {
        let got = scanner.feedback_n(RSS_SCANS - acks, Duration::from_secs(30));
        if got.is_empty() {
            bail!("no feedback after {acks} of {RSS_SCANS} scans");
        }
        if let Some(b) = got.iter().find(|b| **b != ACK) {
            bail!("scan refused (feedback {b:#x}) after {acks}");
        }
        acks += got.len();
    }
    let secs = t.elapsed().as_secs_f64();
    feeder.join().expect("feeder")?;
    wait_until(Duration::from_secs(300), || {
        Ok(agent.status()?["backlog"].as_u64() == Some(0))
    })?;
    let rss_after_kib = vm_rss_kib(agent.pid())?;
    let rss_peak_kib = proc_status_kib(agent.pid(), "VmHWM:")?;

    // The second walk with the server gone: the device's own scan path, without the server's work (ingest and its
    // fsyncs) competing for the same two cores and disk, as when the server runs elsewhere or the link is down.
    let mut offline = Vec::new();
    if !quick {
        if scanner.scan_and_wait("DH:DONE", Duration::from_secs(10))? != Some(ACK) {
            bail!("DH:DONE refused");
        }
        server.kill();
        for s in walk_list("BIG2") {
            let t = Instant::now();
            let fb = scanner.scan_and_wait(&s, Duration::from_secs(10))?;
            let us = t.elapsed().as_secs_f64() * 1e6;
            if fb != Some(ACK) {
                bail!("{s} (offline): feedback {fb:?}");
            }
            if s.starts_with("]C1") {
                offline.push(us);
            }
        }
        offline.sort_by(|a, b| a.total_cmp(b));
    } else {
        offline.push(0.0);
    }
    if quick {
        eprintln!("rss idle {rss_idle_kib} KiB, after {rss_after_kib} KiB");
        let st = agent.status()?;
        eprintln!(
            "status backlog {} durable {}",
            st["backlog"], st["durable_seq"]
        );
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", agent.pid()))?;
        eprintln!("{smaps}");
        // The largest resident mappings, to see where the memory is.
        let all = std::fs::read_to_string(format!("/proc/{}/smaps", agent.pid()))?;
        let mut regions: Vec<(u64, String)> = Vec::new();
        let mut head = String::new();
        for line in all.lines() {
            if line
                .split_whitespace()
                .next()
                .is_some_and(|w| w.contains('-'))
            {
                head = line.to_string();
            } else if let Some(v) = line.strip_prefix("Rss:") {
                let kib = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                regions.push((kib, head.clone()));
            }
        }
        regions.sort_by_key(|r| std::cmp::Reverse(r.0));
        for (kib, head) in regions.iter().take(12) {
            eprintln!("{kib:>8} KiB  {head}");
        }
    }
    Ok(EndToEnd {
        pick_p50: pct(&pick, 0.5),
        pick_p99: pct(&pick, 0.99),
        loc_p50: pct(&loc, 0.5),
        loc_p99: pct(&loc, 0.99),
        offline_p50: pct(&offline, 0.5),
        offline_p99: pct(&offline, 0.99),
        fsync_p50,
        fsync_p99,
        rss_idle_kib,
        rss_after_kib,
        rss_peak_kib,
        rss_scans_per_s: RSS_SCANS as f64 / secs,
    })
}

fn main() -> Result<()> {
    if std::env::var_os("DH_BENCH_RSS_ONLY").is_some() {
        let r = end_to_end()?;
        println!(
            "rss after {} KiB, {:.0} scans/s",
            r.rss_after_kib, r.rss_scans_per_s
        );
        return Ok(());
    }
    let ((wf50, wf99), (dec50, dec99)) = in_process()?;
    let mut runs = Vec::new();
    for n in 0..3 {
        eprintln!("end-to-end run {}/3 ...", n + 1);
        runs.push(end_to_end()?);
    }
    let m = |f: fn(&EndToEnd) -> f64| median(runs.iter().map(f).collect());
    let (p50, p99, l50, l99) = (
        m(|r| r.pick_p50),
        m(|r| r.pick_p99),
        m(|r| r.loc_p50),
        m(|r| r.loc_p99),
    );
    let (f50, f99) = (m(|r| r.fsync_p50), m(|r| r.fsync_p99));
    let (idle, after) = (
        m(|r| r.rss_idle_kib as f64) / 1024.0,
        m(|r| r.rss_after_kib as f64) / 1024.0,
    );
    println!("| figure | value | baseline (same run) | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| pick decision in process, p50 / p99 ({RUNS} runs × {} scans) | {wf50:.0} / {wf99:.0} µs | decode alone {dec50:.1} / {dec99:.1} µs | {:.1}× / {:.1}× |",
        walk().len(),
        wf50 / dec50,
        wf99 / dec99
    );
    println!(
        "| pick scan to good-read over the pty, p50 / p99 (3 runs × {LINES}) | {:.2} / {:.2} ms | fdatasync of 200 B {:.2} / {:.2} ms | {:.1}× / {:.1}× |",
        p50 / 1e3,
        p99 / 1e3,
        f50 / 1e3,
        f99 / 1e3,
        p50 / f50,
        p99 / f99
    );
    let (o50, o99) = (m(|r| r.offline_p50), m(|r| r.offline_p99));
    println!(
        "| pick scan to good-read, device offline (server stopped), p50 / p99 | {:.2} / {:.2} ms | same | {:.1}× / {:.1}× |",
        o50 / 1e3,
        o99 / 1e3,
        o50 / f50,
        o99 / f99
    );
    println!(
        "| location scan to good-read, p50 / p99 | {:.2} / {:.2} ms | same | {:.1}× / {:.1}× |",
        l50 / 1e3,
        l99 / 1e3,
        l50 / f50,
        l99 / f99
    );
    println!(
        "| agent VmRSS after {RSS_SCANS} scans (at {:.0} scans/s), synced | {after:.1} MiB | after start-up + pull {idle:.1} MiB | {:.2}× |",
        m(|r| r.rss_scans_per_s),
        after / idle
    );
    let peak = m(|r| r.rss_peak_kib as f64) / 1024.0;
    println!(
        "| agent peak VmRSS (VmHWM) during the burst | {peak:.1} MiB | same | {:.2}× |",
        peak / idle
    );
    Ok(())
}
