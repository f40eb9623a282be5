//! Handheld workflows end to end (issue 5): the office creates master data and tasks over the server API, real
//! agents on pty scanners work them, and the server's stock, movement history and discrepancies are checked exactly.
//!
//! - `two_handhelds_receive_put_away_pick_and_count`: an ASN received (one pallet by SSCC, one loose line), put
//!   away, two pick lists picked concurrently by two devices, a location counted; every rejection on the way
//!   (wrong location, wrong item, wrong lot, over-pick, receiving location as destination) is a NAK that records
//!   nothing.
//! - `offline_shift_with_a_cancelled_pick_list`: thousands of scans with the device's link cut, a pick list
//!   cancelled at the office meanwhile; after the link returns the backlog drains, the device learns the cancel,
//!   and the picks made against the cancelled list are at the server as discrepancies, not lost.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use dockhand_tests::*;
use serde_json::json;

const T: Duration = Duration::from_secs(15);

/// One simulated handheld: its scanner and its agent process.
pub struct Handheld {
    pub name: String,
    pub scanner: Scanner,
    pub agent: Option<AgentProc>,
    pub config: PathBuf,
    pub data: PathBuf,
}

impl Handheld {
    /// Enrolls `name` at WH1 and starts its agent against `url` (the server or a link proxy in front of it).
    pub fn start(
        root: &std::path::Path,
        server_data: &std::path::Path,
        url: String,
        name: &str,
        extra_toml: &str,
    ) -> Result<Handheld> {
        let token = enroll(server_data, name, "WH1")?;
        let scanner = Scanner::new()?;
        let data = root.join(name);
        let config = AgentSpec {
            device: name,
            site: "WH1",
            data: &data,
            server: Some((url, server_data.join("ca.pem"), token)),
            scanner: &scanner.path,
            max_backoff_ms: 300,
        }
        .write_config_with(extra_toml)?;
        let agent = AgentProc::start(&config, &data)?;
        Ok(Handheld {
            name: name.to_string(),
            scanner,
            agent: Some(agent),
            config,
            data,
        })
    }

    pub fn agent(&self) -> &AgentProc {
        self.agent.as_ref().expect("agent running")
    }

    pub fn status(&self) -> Result<serde_json::Value> {
        self.agent().status()
    }

    /// SIGKILL, then start again on the same data (the scanner's unread input is dropped, as a real one would).
    pub fn kill_and_restart(&mut self) -> Result<()> {
        if let Some(mut a) = self.agent.take() {
            a.kill();
        }
        self.scanner.flush_unread()?;
        self.agent = Some(AgentProc::start(&self.config, &self.data)?);
        Ok(())
    }

    /// Scans and checks the feedback byte; on a surprise, says what the agent decided.
    pub fn expect(&mut self, scan: &str, want: u8) -> Result<()> {
        let got = self.scanner.scan_and_wait(scan, T)?;
        if got != Some(want) {
            // The status file is rewritten every 500 ms; give it time to show the decision.
            std::thread::sleep(Duration::from_millis(700));
            let recent = self
                .status()
                .map(|s| s["sources"][0]["recent"].clone())
                .unwrap_or_default();
            bail!(
                "{}: scan {scan:?}: wanted {}, got {got:?}; recent decisions: {recent}",
                self.name,
                if want == ACK { "ACK" } else { "NAK" }
            );
        }
        Ok(())
    }

    pub fn ok(&mut self, scan: &str) -> Result<()> {
        self.expect(scan, ACK)
    }

    pub fn no(&mut self, scan: &str) -> Result<()> {
        self.expect(scan, NAK)
    }

    /// Waits until the device holds at least these counts of master data and documents.
    pub fn wait_master(
        &self,
        items: u64,
        locations: u64,
        asns: u64,
        pick_lists: u64,
    ) -> Result<()> {
        wait_until(Duration::from_secs(30), || {
            let m = &self.status()?["sync"]["master"];
            Ok(m["items"].as_u64() >= Some(items)
                && m["locations"].as_u64() >= Some(locations)
                && m["asns"].as_u64() >= Some(asns)
                && m["pick_lists"].as_u64() >= Some(pick_lists))
        })
    }

    /// Waits until everything durable so far is acknowledged by the server. The status file lags up to 500 ms,
    /// so it first waits for a rewrite that includes the last scan.
    pub fn wait_drained(&self) -> Result<()> {
        std::thread::sleep(Duration::from_millis(700));
        wait_until(Duration::from_secs(120), || {
            let s = self.status()?;
            Ok(s["backlog"].as_u64() == Some(0)
                && s["sync"]["acked_through"].as_u64() == s["durable_seq"].as_u64())
        })
    }
}

/// A movement as compared here: (device, kind, gtin, lot, qty, from, to, reference, operator).
type Mv = (
    String,
    String,
    String,
    Option<String>,
    u64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn mv_of(v: &serde_json::Value) -> Result<Mv> {
    let m = &v["movement"];
    let s = |k: &str| m[k].as_str().map(str::to_string);
    Ok((
        s("device_id").context("device_id")?,
        s("kind").context("kind")?,
        s("gtin").context("gtin")?,
        s("lot"),
        m["qty"].as_u64().context("qty")?,
        s("from_location"),
        s("to_location"),
        s("reference"),
        s("operator"),
    ))
}

#[allow(clippy::too_many_arguments)]
fn mv(
    dev: &str,
    kind: &str,
    gtin: &str,
    lot: Option<&str>,
    qty: u64,
    from: Option<&str>,
    to: Option<&str>,
    reference: Option<&str>,
    op: &str,
) -> Mv {
    let o = |x: Option<&str>| x.map(str::to_string);
    (
        dev.into(),
        kind.into(),
        gtin.into(),
        o(lot),
        qty,
        o(from),
        o(to),
        o(reference),
        Some(op.into()),
    )
}

type Stock = BTreeMap<(String, String, Option<String>), i64>;

fn stock_map(rows: Vec<StockLine>) -> Stock {
    rows.into_iter()
        .filter(|r| r.3 != 0)
        .map(|(l, g, lot, q)| ((l, g, lot), q))
        .collect()
}

fn k(loc: &str, gtin: &str, lot: Option<&str>) -> (String, String, Option<String>) {
    (loc.into(), gtin.into(), lot.map(str::to_string))
}

fn setup_locations(office: &Office, codes: &[&str]) -> Result<()> {
    for code in codes {
        office.put(&format!("/v1/sites/WH1/locations/{code}"), json!({}))?;
    }
    Ok(())
}

#[test]
fn two_handhelds_receive_put_away_pick_and_count() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let server_data = tmp.path().join("server");
    let server = ServerProc::start(&server_data, free_port())?;
    let office = Office::new(&server)?;
    let (g0, g1, g2) = (GTINS[0], GTINS[1], GTINS[2]);
    let p1 = sscc("10614141000000001");

    // The office: items, locations, an ASN with a pallet and a loose line, two pick lists, one per device.
    for (g, lot_tracked) in [(g0, true), (g1, true), (g2, false)] {
        office.put(
            &format!("/v1/items/{g}"),
            json!({"description": format!("item {g}"), "lot_tracked": lot_tracked}),
        )?;
    }
    setup_locations(&office, &["DOCK-1", "A-01-01", "A-01-02", "B-01-01"])?;
    let mut hh1 = Handheld::start(tmp.path(), &server_data, server.url(), "hh-1", "")?;
    let mut hh2 = Handheld::start(tmp.path(), &server_data, server.url(), "hh-2", "")?;
    office.post(
        "/v1/asns",
        Some(json!({
            "id": "ASN-1", "site": "WH1", "supplier": "ACME",
            "pallets": [{"sscc": p1, "lines": [
                {"gtin": g0, "lot": "L1", "qty": 10},
                {"gtin": g1, "lot": "L2", "qty": 6}]}],
            "lines": [{"gtin": g2, "lot": "L3", "qty": 4}]
        })),
    )?;
    office.post(
        "/v1/pick-lists",
        Some(
            json!({"id": "PL-1", "site": "WH1", "device": "hh-1", "lines": [
            {"line": 1, "location": "A-01-01", "gtin": g0, "lot": "L1", "qty": 3},
            {"line": 2, "location": "B-01-01", "gtin": g2, "qty": 2}]}),
        ),
    )?;
    office.post(
        "/v1/pick-lists",
        Some(
            json!({"id": "PL-2", "site": "WH1", "device": "hh-2", "lines": [
            {"line": 1, "location": "A-01-01", "gtin": g1, "lot": "L2", "qty": 2},
            {"line": 2, "location": "A-01-01", "gtin": g0, "lot": "L1", "qty": 2}]}),
        ),
    )?;
    hh1.wait_master(3, 4, 1, 2)?;
    hh2.wait_master(3, 4, 1, 2)?;

    // Receiving against the ASN: the pallet by its SSCC, the loose line by item scans.
    hh1.ok("DH:OP:alice")?;
    hh1.ok("DH:RECEIVE:ASN-1")?;
    hh1.ok(&pallet_scan(&p1))?;
    hh1.no(&pallet_scan(&p1))?; // the same pallet twice
    hh1.no("]C10109506000134353")?; // bad check digit
    hh1.ok("DH:QTY:4")?;
    hh1.ok(&item_scan(g2, "L3"))?;
    hh1.ok("DH:DONE")?;

    // Put-away: the pallet by hh-1, the loose line by hh-2 (which first tries the dock itself).
    hh1.ok("DH:PUTAWAY")?;
    hh1.ok(&pallet_scan(&p1))?;
    hh1.ok("LOC:A-01-01")?;
    hh1.ok("DH:DONE")?;
    hh2.ok("DH:OP:bob")?;
    hh2.ok("DH:PUTAWAY")?;
    hh2.no("LOC:B-01-01")?; // a location before an item
    hh2.ok("DH:QTY:4")?;
    hh2.ok(&item_scan(g2, "L3"))?;
    hh2.no("LOC:DOCK-1")?; // the receiving location is not a destination
    hh2.no("LOC:Z-99-99")?; // unknown location
    hh2.ok("LOC:B-01-01")?;
    hh2.ok("DH:DONE")?;

    // Both lists picked at the same time.
    let t1 = std::thread::spawn(move || -> Result<Handheld> {
        let h = &mut hh1;
        h.no("DH:PICK:PL-2")?; // assigned to hh-2
        h.ok("DH:PICK:PL-1")?;
        h.no(&item_scan(g0, "L1"))?; // an item before the location
        h.no("LOC:B-01-01")?; // wrong location
        h.ok("LOC:A-01-01")?;
        h.no(&item_scan(g1, "L2"))?; // wrong item
        h.no(&item_scan(g0, "L9"))?; // wrong lot
        h.ok("DH:QTY:3")?;
        h.ok(&item_scan(g0, "L1"))?; // line 1 complete
        h.ok("LOC:B-01-01")?;
        h.ok(&item_scan(g2, "L3"))?;
        h.ok(&item_scan(g2, "L3"))?; // line 2 complete: list done
        h.no(&item_scan(g2, "L3"))?; // nothing left to pick
        Ok(hh1)
    });
    let t2 = std::thread::spawn(move || -> Result<Handheld> {
        let h = &mut hh2;
        h.ok("DH:PICK:PL-2")?;
        h.ok("LOC:A-01-01")?;
        h.ok(&item_scan(g1, "L2"))?;
        h.ok(&item_scan(g1, "L2"))?; // line 1 complete
        h.ok("LOC:A-01-01")?;
        h.ok("DH:QTY:3")?;
        h.no(&item_scan(g0, "L1"))?; // over-pick: the line needs 2
        h.ok("DH:QTY:2")?;
        h.ok(&item_scan(g0, "L1"))?; // list done
        Ok(hh2)
    });
    let hh1 = t1.join().expect("hh-1 thread")?;
    let mut hh2 = t2.join().expect("hh-2 thread")?;
    hh1.wait_drained()?;

    // A blind count of A-01-01 by hh-2.
    hh2.ok("DH:COUNT")?;
    hh2.ok("LOC:A-01-01")?;
    hh2.ok("DH:QTY:5")?;
    hh2.ok(&item_scan(g0, "L1"))?;
    hh2.ok("DH:QTY:4")?;
    hh2.ok(&item_scan(g1, "L2"))?;
    hh2.ok("DH:DONE")?;
    hh2.wait_drained()?;

    let want: Stock = [
        (k("A-01-01", g0, Some("L1")), 5),
        (k("A-01-01", g1, Some("L2")), 4),
        (k("B-01-01", g2, Some("L3")), 2),
    ]
    .into_iter()
    .collect();
    assert_eq!(stock_map(server.stock("WH1")?), want, "server stock");

    let a = |kind, g, lot, q, from, to, r| mv("hh-1", kind, g, lot, q, from, to, r, "alice");
    let b = |kind, g, lot, q, from, to, r| mv("hh-2", kind, g, lot, q, from, to, r, "bob");
    let (dock, a11, b11) = (Some("DOCK-1"), Some("A-01-01"), Some("B-01-01"));
    let mut want_mv = vec![
        a("receive", g0, Some("L1"), 10, None, dock, Some("ASN-1")),
        a("receive", g1, Some("L2"), 6, None, dock, Some("ASN-1")),
        a("receive", g2, Some("L3"), 4, None, dock, Some("ASN-1")),
        a("putaway", g0, Some("L1"), 10, dock, a11, None),
        a("putaway", g1, Some("L2"), 6, dock, a11, None),
        b("putaway", g2, Some("L3"), 4, dock, b11, None),
        a("pick", g0, Some("L1"), 3, a11, None, Some("PL-1")),
        a("pick", g2, Some("L3"), 1, b11, None, Some("PL-1")),
        a("pick", g2, Some("L3"), 1, b11, None, Some("PL-1")),
        b("pick", g1, Some("L2"), 1, a11, None, Some("PL-2")),
        b("pick", g1, Some("L2"), 1, a11, None, Some("PL-2")),
        b("pick", g0, Some("L1"), 2, a11, None, Some("PL-2")),
    ];
    let mut got_mv: Vec<Mv> = Vec::new();
    let mut counts = Vec::new();
    for m in office.movements("WH1")? {
        let m = mv_of(&m)?;
        if m.1 == "count" {
            counts.push((m.2.clone(), m.3.clone(), m.4, m.6.clone()));
        } else {
            got_mv.push(m);
        }
    }
    want_mv.sort();
    got_mv.sort();
    assert_eq!(got_mv, want_mv, "movement history");
    counts.sort();
    let mut want_counts = vec![
        (
            g0.to_string(),
            Some("L1".to_string()),
            5,
            Some("A-01-01".to_string()),
        ),
        (
            g1.to_string(),
            Some("L2".to_string()),
            4,
            Some("A-01-01".to_string()),
        ),
    ];
    want_counts.sort();
    assert_eq!(counts, want_counts, "counts");
    let open = office.discrepancies("WH1")?;
    assert!(open.is_empty(), "no discrepancies expected, got {open:#?}");

    // Pick accuracy: the picks above and every refusal of the script, per operator and reason class. The agents
    // report their counters on their pull cadence (200 ms here), so the report is polled until it settles.
    let refused = |pairs: &[(&str, u64)]| {
        let mut m: BTreeMap<String, u64> = [
            "undecodable",
            "wrong_location",
            "wrong_item",
            "wrong_lot",
            "over_pick",
            "refused",
        ]
        .iter()
        .map(|r| (r.to_string(), 0))
        .collect();
        m.extend(pairs.iter().map(|(r, n)| (r.to_string(), *n)));
        json!(m)
    };
    let want = json!([
        {"operator": "alice", "picks": 3, "picked_units": 5, "short_picks": 0, "mistakes": 3,
         // refused: the pallet twice, PL-2 (another device's), an item before the location, nothing left.
         "refused": refused(&[("undecodable", 1), ("wrong_location", 1), ("wrong_item", 1), ("wrong_lot", 1),
                              ("refused", 4)])},
        {"operator": "bob", "picks": 3, "picked_units": 4, "short_picks": 0, "mistakes": 1,
         // refused: a location before an item, the dock as a destination, an unknown location.
         "refused": refused(&[("over_pick", 1), ("refused", 3)])},
    ]);
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("RFC 3339")
    };
    let path = format!(
        "/v1/reports/pick-accuracy?site=WH1&since={}&until={}",
        fmt(now - time::Duration::hours(1)),
        fmt(now + time::Duration::hours(1))
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = office.get(&path)?;
        if got["operators"] == want {
            break;
        }
        if std::time::Instant::now() > deadline {
            panic!("pick accuracy: got {:#}, want {want:#}", got["operators"]);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// GTIN-14 number `i` of a generated catalogue.
fn gen_gtin(i: usize) -> String {
    let body = format!("0950600{i:06}");
    format!("{body}{}", gs1_check_digit(&body))
}

#[test]
fn offline_shift_with_a_cancelled_pick_list() -> Result<()> {
    const ITEMS: usize = 40;
    const UNITS: u64 = 25;
    let tmp = tempfile::tempdir()?;
    let server_data = tmp.path().join("server");
    let server = ServerProc::start(&server_data, free_port())?;
    let office = Office::new(&server)?;
    let link = LinkProxy::start(server.addr.port())?;
    let gtins: Vec<String> = (0..ITEMS).map(gen_gtin).collect();
    let slot = |i: usize| format!("S-{:02}", i % 20 + 1);
    for g in &gtins {
        office.put(
            &format!("/v1/items/{g}"),
            json!({"description": "generated"}),
        )?;
    }
    let mut codes = vec!["DOCK-1".to_string()];
    codes.extend((0..20).map(slot));
    for c in &codes {
        office.put(&format!("/v1/sites/WH1/locations/{c}"), json!({}))?;
    }
    let big: Vec<_> = (0..ITEMS)
        .map(|i| json!({"line": i + 1, "location": slot(i), "gtin": gtins[i], "lot": format!("LOT{i}"), "qty": 5}))
        .collect();
    let cxl: Vec<_> = (0..10)
        .map(|i| json!({"line": i + 1, "location": slot(i), "gtin": gtins[i], "lot": format!("LOT{i}"), "qty": 2}))
        .collect();
    office.post(
        "/v1/pick-lists",
        Some(json!({"id": "PL-BIG", "site": "WH1", "lines": big})),
    )?;
    office.post(
        "/v1/pick-lists",
        Some(json!({"id": "PL-CXL", "site": "WH1", "lines": cxl})),
    )?;
    let mut hh = Handheld::start(tmp.path(), &server_data, link.url(), "hh-off", "")?;
    hh.wait_master(ITEMS as u64, 21, 0, 2)?;

    // The link goes down for the whole shift.
    let cursor_before = settled_status(&hh)?["sync"]["pull_cursor"]
        .as_u64()
        .unwrap_or(0);
    link.set_up(false);
    let mut scans = 0usize;
    let mut ok = |hh: &mut Handheld, s: &str| -> Result<()> {
        scans += 1;
        hh.ok(s)
    };
    ok(&mut hh, "DH:OP:carol")?;
    ok(&mut hh, "DH:RECEIVE")?;
    for (i, g) in gtins.iter().enumerate() {
        for _ in 0..UNITS {
            ok(&mut hh, &item_scan(g, &format!("LOT{i}")))?;
        }
    }
    ok(&mut hh, "DH:DONE")?;
    ok(&mut hh, "DH:PUTAWAY")?;
    for (i, g) in gtins.iter().enumerate() {
        ok(&mut hh, &format!("DH:QTY:{UNITS}"))?;
        ok(&mut hh, &item_scan(g, &format!("LOT{i}")))?;
        ok(&mut hh, &format!("LOC:{}", slot(i)))?;
    }
    ok(&mut hh, "DH:DONE")?;

    // Meanwhile the office cancels PL-CXL; the device cannot know and picks half of it.
    office.post("/v1/pick-lists/PL-CXL/cancel", None)?;
    ok(&mut hh, "DH:PICK:PL-CXL")?;
    for (i, g) in gtins.iter().enumerate().take(5) {
        ok(&mut hh, &format!("LOC:{}", slot(i)))?;
        for _ in 0..2 {
            ok(&mut hh, &item_scan(g, &format!("LOT{i}")))?;
        }
    }
    ok(&mut hh, "DH:CANCEL")?;
    ok(&mut hh, "DH:PICK:PL-BIG")?;
    for (i, g) in gtins.iter().enumerate() {
        ok(&mut hh, &format!("LOC:{}", slot(i)))?;
        for _ in 0..5 {
            ok(&mut hh, &item_scan(g, &format!("LOT{i}")))?;
        }
    }
    // A second delivery stays on the dock.
    ok(&mut hh, "DH:RECEIVE")?;
    for (i, g) in gtins.iter().enumerate() {
        for _ in 0..UNITS {
            ok(&mut hh, &item_scan(g, &format!("LOT{i}")))?;
        }
    }
    ok(&mut hh, "DH:DONE")?;
    // Every movement of the shift waits in the backlog: 2,000 receipts, 40 put-aways, 10 + 200 picks. The status
    // file is rewritten every 500 ms, so wait for the rewrite that includes the last scan.
    let expected = 2 * ITEMS as u64 * UNITS + ITEMS as u64 + 10 + 5 * ITEMS as u64;
    wait_until(Duration::from_secs(10), || {
        Ok(hh.status()?["backlog"].as_u64() == Some(expected))
    })
    .with_context(|| format!("offline backlog should hold the shift's {expected} movements"))?;
    let st = hh.status()?;
    let backlog = st["backlog"].as_u64().unwrap_or(0);
    assert!(
        st["sync"]["failures"].as_u64() > Some(0) && st["sync"]["last_result"] != "ok",
        "the status must show the link failure: {}",
        st["sync"]
    );
    println!("offline shift: {scans} scans confirmed, backlog {backlog}");

    // The link returns: the backlog drains by itself and the device learns the cancel.
    link.set_up(true);
    hh.wait_drained()?;
    // The cancel is a change past the cursor the device had before the link went down.
    wait_until(Duration::from_secs(30), || {
        let s = hh.status()?;
        Ok(s["sync"]["last_pull"] == "ok"
            && s["sync"]["pull_cursor"].as_u64() > Some(cursor_before))
    })?;
    assert_eq!(
        hh.scanner.scan_and_wait("DH:PICK:PL-CXL", T)?,
        Some(NAK),
        "the device knows PL-CXL is cancelled"
    );

    let mut want: Stock = Stock::new();
    for (i, g) in gtins.iter().enumerate() {
        let lot = format!("LOT{i}");
        let picked = 5 + if i < 5 { 2 } else { 0 };
        want.insert(k(&slot(i), g, Some(&lot)), (UNITS - picked) as i64);
        want.insert(k("DOCK-1", g, Some(&lot)), UNITS as i64);
    }
    assert_eq!(
        stock_map(server.stock("WH1")?),
        want,
        "server stock after the shift"
    );
    let history = office.movements("WH1")?;
    let cancelled_picks: Vec<(String, u64)> = history
        .iter()
        .filter(|m| m["movement"]["reference"] == "PL-CXL")
        .map(|m| {
            (
                m["movement"]["device_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                m["movement"]["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        cancelled_picks.len(),
        10,
        "the picks on the cancelled list are kept"
    );
    let flagged: Vec<(String, u64)> = office
        .discrepancies("WH1")?
        .iter()
        .filter(|d| d["kind"] == "pick_on_cancelled_list")
        .flat_map(|d| d["movements"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            (
                r["device_id"].as_str().unwrap_or("").to_string(),
                r["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    for p in &cancelled_picks {
        assert!(
            flagged.contains(p),
            "pick {p:?} on the cancelled list is not flagged: {flagged:?}"
        );
    }
    let receipts = history
        .iter()
        .filter(|m| m["movement"]["kind"] == "receive")
        .count();
    assert_eq!(
        receipts,
        2 * ITEMS * UNITS as usize,
        "every receipt scan is one movement"
    );
    Ok(())
}

/// Reads the status file after it has caught up (it is rewritten every 500 ms).
fn settled_status(hh: &Handheld) -> Result<serde_json::Value> {
    std::thread::sleep(Duration::from_millis(700));
    hh.status()
}

/// SIGKILL after workflow steps: the restarted agent is where the operator left it, no confirmed scan is lost or
/// doubled; then the sled store is corrupted on disk between two runs and rebuilt by itself with the server's
/// totals unchanged.
#[test]
fn killed_between_workflow_steps_resumes_and_a_corrupt_store_rebuilds() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let server_data = tmp.path().join("server");
    let server = ServerProc::start(&server_data, free_port())?;
    let office = Office::new(&server)?;
    let (g0, g1) = (GTINS[0], GTINS[1]);
    let p2 = sscc("10614141000000002");
    for g in [g0, g1] {
        office.put(
            &format!("/v1/items/{g}"),
            json!({"description": "x", "lot_tracked": true}),
        )?;
    }
    setup_locations(&office, &["DOCK-1", "A-01", "A-02", "B-01"])?;
    office.post(
        "/v1/asns",
        Some(json!({"id": "ASN-C", "site": "WH1",
            "lines": [{"gtin": g0, "lot": "L1", "qty": 4}],
            "pallets": [{"sscc": p2, "lines": [{"gtin": g1, "lot": "L2", "qty": 3}]}]})),
    )?;
    office.post(
        "/v1/pick-lists",
        Some(json!({"id": "PL-C", "site": "WH1", "lines": [
            {"line": 1, "location": "A-01", "gtin": g0, "lot": "L1", "qty": 2},
            {"line": 2, "location": "A-02", "gtin": g1, "lot": "L2", "qty": 1}]})),
    )?;
    let mut hh = Handheld::start(tmp.path(), &server_data, server.url(), "hh-crash", "")?;
    hh.wait_master(2, 4, 1, 1)?;

    let (i0, i1) = (item_scan(g0, "L1"), item_scan(g1, "L2"));
    let pallet = pallet_scan(&p2);
    let script: Vec<&str> = vec![
        "DH:OP:dave",
        "DH:RECEIVE:ASN-C",
        &i0,
        &i0,
        &i0,
        &i0,
        &pallet,
        "DH:DONE",
        "DH:PUTAWAY",
        "DH:QTY:4",
        &i0,
        "LOC:A-01",
        &pallet,
        "LOC:A-02",
        "DH:DONE",
        "DH:MOVE",
        "LOC:A-02",
        &i1,
        "LOC:B-01",
        "DH:DONE",
        "DH:PICK:PL-C",
        "LOC:A-01",
        &i0,
        &i0,
        "LOC:A-02",
        &i1,
        "DH:COUNT",
        "LOC:A-01",
        "DH:QTY:2",
        &i0,
        "DH:DONE",
    ];
    let mut kills = 0;
    for (n, scan) in script.iter().enumerate() {
        hh.ok(scan)?;
        if n % 2 == 1 {
            let before = settled_status(&hh)?;
            hh.kill_and_restart()?;
            kills += 1;
            let after = hh.status()?;
            assert_eq!(
                after["workflow"], before["workflow"],
                "after scan {n} ({scan}) the restarted agent must resume where the operator was"
            );
            assert_eq!(
                after["durable_seq"], before["durable_seq"],
                "after scan {n}"
            );
        }
    }
    hh.wait_drained()?;
    let want: Stock = [
        (k("A-01", g0, Some("L1")), 2),
        (k("A-02", g1, Some("L2")), 1),
        (k("B-01", g1, Some("L2")), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        stock_map(server.stock("WH1")?),
        want,
        "server stock after {kills} kills"
    );
    let history = office.movements("WH1")?;
    let seqs: Vec<u64> = history
        .iter()
        .map(|m| m["movement"]["seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "contiguous, none doubled"
    );
    let open = office.discrepancies("WH1")?;
    assert!(open.is_empty(), "no discrepancies expected, got {open:#?}");

    // Corrupt the sled store between two runs: the agent quarantines it and rebuilds from journal and server.
    if let Some(mut a) = hh.agent.take() {
        a.stop()?;
    }
    let sled_dir = hh.data.join("sled");
    let db = sled_dir.join("db");
    let len = std::fs::metadata(&db)?.len().max(4096) as usize;
    let garbage: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&db, garbage)?;
    hh.agent = Some(AgentProc::start(&hh.config, &hh.data)?);
    hh.wait_master(2, 4, 1, 1)?;
    let quarantined = std::fs::read_dir(&hh.data)?
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("sled.broken"));
    assert!(
        quarantined,
        "the corrupt store is kept aside for inspection"
    );
    assert_eq!(
        stock_map(server.stock("WH1")?),
        want,
        "server totals unchanged"
    );
    // The device goes on with the next seq.
    hh.ok("DH:RECEIVE")?;
    hh.ok(&i0)?;
    hh.wait_drained()?;
    let after = office.movements("WH1")?;
    assert_eq!(after.len(), seqs.len() + 1);
    assert_eq!(
        after.last().map(|m| m["movement"]["seq"].as_u64()),
        Some(Some(seqs.len() as u64 + 1))
    );
    Ok(())
}
