//! End-to-end tests: the real `dockhand-server` and `dockhand-agent` binaries, real TLS, a scanner simulated on a
//! pseudo-terminal. One test binary; each module is one capability.
//!
//! - `flow`: a receiving + put-away session lands as the exact expected stock, at the server and locally.
//! - `crash`: SIGKILL of the agent or of the server mid-stream loses no confirmed scan and doubles none.
//! - `offline`: with the server down scans are still confirmed; the backlog drains by itself when it returns.
//! - `bad_input`: garbage on the serial line is rejected (NAK) and the source keeps working.
//! - `master_data`: what the office creates reaches the device by pull.
//! - `workflows` (e2e/workflows.rs): receiving against ASNs, put-away, picking, counting with two handhelds, and
//!   an offline shift with a pick list cancelled meanwhile.
//! - `gate` (e2e/gate.rs): 50 pallets through an RFID dock gate on a simulated R2000 (pty) and LLRP (TCP) reader,
//!   with strays and a reader outage: exactly one receipt per announced pallet line, a reversed pass ships.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use dockhand_tests::*;
use rand::{Rng, SeedableRng};

type Stock = BTreeMap<(String, String, Option<String>), i64>;

fn to_map(rows: Vec<StockLine>) -> Stock {
    rows.into_iter()
        .filter(|r| r.3 != 0)
        .map(|(l, g, lot, q)| ((l, g, lot), q))
        .collect()
}

fn local_stock(agent: &AgentProc) -> Result<Stock> {
    let v = agent.status()?;
    Ok(to_map(parse_stock(&v)?))
}

struct World {
    _tmp: tempfile::TempDir,
    server: ServerProc,
    port: u16,
    scanner: Scanner,
    agent: Option<AgentProc>,
    config: std::path::PathBuf,
    agent_data: std::path::PathBuf,
}

impl World {
    fn new(device: &str) -> Result<World> {
        let tmp = tempfile::tempdir()?;
        let server_data = tmp.path().join("server");
        let port = free_port();
        let server = ServerProc::start(&server_data, port)?;
        let token = enroll(&server_data, device, "WH1")?;
        let scanner = Scanner::new()?;
        let agent_data = tmp.path().join("agent");
        let config = AgentSpec {
            device,
            site: "WH1",
            data: &agent_data,
            server: Some((server.url(), server_data.join("ca.pem"), token)),
            scanner: &scanner.path,
            max_backoff_ms: 500,
        }
        .write_config()?;
        let agent = AgentProc::start(&config, &agent_data)?;
        Ok(World {
            _tmp: tmp,
            server,
            port,
            scanner,
            agent: Some(agent),
            config,
            agent_data,
        })
    }

    fn agent(&self) -> &AgentProc {
        self.agent.as_ref().expect("agent running")
    }

    fn restart_agent(&mut self) -> Result<()> {
        if let Some(mut a) = self.agent.take() {
            a.kill();
        }
        // The dead agent may have left part of a scan unread; a real scanner would not resend it either.
        self.scanner.flush_unread()?;
        self.agent = Some(AgentProc::start(&self.config, &self.agent_data)?);
        Ok(())
    }

    fn restart_server(&mut self) -> Result<()> {
        self.server.kill();
        let data = self.server.data.clone();
        self.server = ServerProc::start(&data, self.port)?;
        Ok(())
    }

    /// Waits until the agent's backlog is empty and the server's stock equals `want`.
    fn wait_synced(&self, want: &Stock) -> Result<()> {
        wait_until(Duration::from_secs(60), || {
            let backlog = self.agent().status()?["backlog"].as_u64();
            Ok(backlog == Some(0) && &to_map(self.server.stock("WH1")?) == want)
        })
    }

    fn high_water(&self, device: &str) -> Result<u64> {
        let v: serde_json::Value = self
            .server
            .client()?
            .get(format!(
                "{}/v1/devices/{device}/high-water",
                self.server.url()
            ))
            .bearer_auth(self.server.admin_token()?)
            .send()?
            .error_for_status()?
            .json()?;
        v["acked_through"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("no acked_through in {v}"))
    }
}

fn key(loc: &str, gtin: &str, lot: &str) -> (String, String, Option<String>) {
    (loc.to_string(), gtin.to_string(), Some(lot.to_string()))
}

mod flow {
    use super::*;

    /// 200 scans (99 receipts, 49 put-aways of item + location, 3 commands) over 5 GTINs and 4 lots give exactly the model's stock at the
    /// server, and the agent's local view agrees.
    #[test]
    fn two_hundred_scans_make_the_expected_stock() -> Result<()> {
        let mut w = World::new("hh-flow")?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(200);
        let lots = ["A1", "B2", "C3", "D4"];
        let mut model = Stock::new();
        let mut scans = vec!["DH:RECEIVE".to_string()];
        let mut received = Vec::new();
        for _ in 0..99 {
            let gtin = GTINS[rng.random_range(0..GTINS.len())];
            let lot = lots[rng.random_range(0..lots.len())];
            scans.push(item_scan(gtin, lot));
            *model.entry(key("DOCK-1", gtin, lot)).or_default() += 1;
            received.push((gtin, lot));
        }
        scans.push("DH:PUTAWAY".into());
        for _ in 0..49 {
            let (gtin, lot) = received.swap_remove(rng.random_range(0..received.len()));
            let loc = format!("A-0{}-0{}", rng.random_range(1..4), rng.random_range(1..4));
            scans.push(item_scan(gtin, lot));
            scans.push(format!("LOC:{loc}"));
            *model.entry(key("DOCK-1", gtin, lot)).or_default() -= 1;
            *model.entry(key(&loc, gtin, lot)).or_default() += 1;
        }
        scans.push("DH:DONE".into());
        assert_eq!(scans.len(), 200);
        model.retain(|_, q| *q != 0);

        // Stream all 200 without waiting, as a scanner in a hurry would.
        let mut bytes = Vec::new();
        for s in &scans {
            bytes.extend_from_slice(s.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        w.scanner.write(&bytes)?;
        let fb = w.scanner.feedback_n(200, Duration::from_secs(30));
        assert_eq!(fb.len(), 200, "feedback for every scan");
        assert!(fb.iter().all(|&b| b == ACK), "every scan confirmed: {fb:?}");

        w.wait_synced(&model)?;
        assert_eq!(w.high_water("hh-flow")?, 148, "99 receipts + 49 put-aways");
        wait_until(Duration::from_secs(5), || {
            Ok(local_stock(w.agent())? == model)
        })?;
        w.agent.as_mut().expect("agent").stop()?;
        Ok(())
    }
}

mod crash {
    use super::*;

    /// Streams scans in bursts and SIGKILLs the agent at a random moment in each of 25 bursts (during reading,
    /// journaling, syncing or feedback). Every scan confirmed before a kill reaches the server exactly once; no
    /// movement is doubled; seqs stay contiguous.
    #[test]
    fn agent_killed_25_times_loses_and_doubles_nothing() -> Result<()> {
        run_crash_test("hh-crash-agent", 25, 0)
    }

    /// The same with the server SIGKILLed and restarted 8 times mid-stream (agent untouched).
    #[test]
    fn server_killed_8_times_loses_and_doubles_nothing() -> Result<()> {
        run_crash_test("hh-crash-server", 0, 8)
    }

    fn run_crash_test(device: &str, agent_kills: usize, server_kills: usize) -> Result<()> {
        let mut w = World::new(device)?;
        let gtin = GTINS[0];
        let mut rng =
            rand::rngs::StdRng::seed_from_u64(agent_kills as u64 * 31 + server_kills as u64);
        assert_eq!(
            w.scanner
                .scan_and_wait("DH:RECEIVE", Duration::from_secs(5))?,
            Some(ACK)
        );
        let mut confirmed = Vec::new();
        let mut sent = 0usize;
        let rounds = agent_kills.max(server_kills);
        for round in 0..rounds {
            // A burst of 1..=6 scans, each a unique lot so a doubled movement shows as qty 2.
            let burst = rng.random_range(1..=6);
            let lots: Vec<String> = (0..burst).map(|i| format!("K{:05}", sent + i)).collect();
            sent += burst;
            let mut bytes = Vec::new();
            for lot in &lots {
                bytes.extend_from_slice(item_scan(gtin, lot).as_bytes());
                bytes.extend_from_slice(b"\r\n");
            }
            w.scanner.write(&bytes)?;
            // From "not even read yet" to "confirmed and syncing": the kill lands anywhere in the pipeline.
            let delay = Duration::from_micros(rng.random_range(0..20_000));
            std::thread::sleep(delay);
            if agent_kills > 0 {
                w.agent.as_mut().expect("agent").kill();
                // Feedback the agent sent before dying is still in the pty; it maps to scans in order.
                let fb = w.scanner.feedback_n(burst, Duration::from_millis(300));
                assert!(fb.iter().all(|&b| b == ACK), "round {round}: {fb:?}");
                confirmed.extend(lots.iter().take(fb.len()).cloned());
                w.restart_agent()?;
            } else {
                w.restart_server()?;
                let fb = w.scanner.feedback_n(burst, Duration::from_secs(10));
                assert_eq!(
                    fb.len(),
                    burst,
                    "the agent confirms locally while the server restarts"
                );
                assert!(fb.iter().all(|&b| b == ACK));
                confirmed.extend(lots);
            }
        }
        assert!(!confirmed.is_empty(), "some scans must have been confirmed");

        // Drain: every durable movement reaches the server.
        wait_until(Duration::from_secs(60), || {
            Ok(w.agent().status()?["backlog"].as_u64() == Some(0))
        })?;
        let server = to_map(w.server.stock("WH1")?);
        for lot in &confirmed {
            assert_eq!(
                server.get(&key("DOCK-1", gtin, lot)),
                Some(&1),
                "confirmed scan {lot} must be at the server exactly once"
            );
        }
        for ((_, _, lot), qty) in &server {
            assert_eq!(*qty, 1, "lot {lot:?} counted {qty} times");
        }
        // Contiguous seqs: one receipt per movement, high-water = number of movements.
        let hw = w.high_water(device)?;
        assert_eq!(
            hw as usize,
            server.len(),
            "high-water {hw} vs {} movements",
            server.len()
        );
        assert!(server.len() >= confirmed.len() && server.len() <= sent);
        wait_until(Duration::from_secs(5), || {
            Ok(local_stock(w.agent())? == server)
        })?;
        eprintln!(
            "{device}: sent {sent}, confirmed {}, at server {} (agent kills {agent_kills}, server kills {server_kills})",
            confirmed.len(),
            server.len()
        );
        Ok(())
    }
}

mod offline {
    use super::*;

    /// With the server down, scans are still confirmed from the journal; when it comes back the backlog drains
    /// with no new scan to trigger it.
    #[test]
    fn backlog_drains_by_itself_when_the_server_returns() -> Result<()> {
        let mut w = World::new("hh-offline")?;
        let gtin = GTINS[1];
        assert_eq!(
            w.scanner
                .scan_and_wait("DH:RECEIVE", Duration::from_secs(5))?,
            Some(ACK)
        );
        w.server.kill();
        let mut model = Stock::new();
        for i in 0..30 {
            let lot = format!("OFF{i}");
            let fb = w
                .scanner
                .scan_and_wait(&item_scan(gtin, &lot), Duration::from_secs(5))?;
            assert_eq!(fb, Some(ACK), "scan {i} confirmed while offline");
            model.insert(key("DOCK-1", gtin, &lot), 1);
        }
        // The agent notices and keeps everything.
        wait_until(Duration::from_secs(10), || {
            let s = w.agent().status()?;
            Ok(s["backlog"] == 30 && s["sync"]["failures"].as_u64().unwrap_or(0) > 0)
        })?;
        std::thread::sleep(Duration::from_secs(2));
        let data = w.server.data.clone();
        w.server = ServerProc::start(&data, w.port)?;
        w.wait_synced(&model)?;
        Ok(())
    }
}

mod bad_input {
    use super::*;

    /// Random bytes, an overlong frame without terminator and a lone STX never confirm a scan; each gets a NAK, the
    /// agent keeps running and the next good scan is confirmed.
    #[test]
    fn garbage_is_rejected_and_the_source_keeps_reading() -> Result<()> {
        let mut w = World::new("hh-garbage")?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        assert_eq!(
            w.scanner
                .scan_and_wait("DH:RECEIVE", Duration::from_secs(5))?,
            Some(ACK)
        );
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("lone STX", b"\x02\r\n".to_vec()),
            ("binary noise", {
                let mut v: Vec<u8> = (0..300).map(|_| rng.random_range(0x80..=0xff)).collect();
                v.extend_from_slice(b"\r\n");
                v
            }),
            ("overlong frame", {
                let mut v = vec![b'7'; 10_000];
                v.extend_from_slice(b"\r\n");
                v
            }),
            ("bad check digit", b"]C10109506000134353\r\n".to_vec()),
            ("truncated GS1", b"]C1010950600\r\n".to_vec()),
            ("unknown command", b"DH:FLY\r\n".to_vec()),
        ];
        for (name, bytes) in &cases {
            w.scanner.write(bytes)?;
            let fb = w.scanner.feedback(Duration::from_secs(5));
            assert_eq!(fb, Some(NAK), "{name}");
            // Exactly one answer per bad scan: nothing else is pending.
            assert_eq!(
                w.scanner.feedback(Duration::from_millis(100)),
                None,
                "{name}"
            );
        }
        let fb = w
            .scanner
            .scan_and_wait(&item_scan(GTINS[2], "OK1"), Duration::from_secs(5))?;
        assert_eq!(fb, Some(ACK));
        let mut model = Stock::new();
        model.insert(key("DOCK-1", GTINS[2], "OK1"), 1);
        w.wait_synced(&model)?;
        // The status file is refreshed twice a second.
        wait_until(Duration::from_secs(5), || {
            Ok(w.agent().status()?["sources"][0]["rejected"] == cases.len() as u64)
        })?;
        Ok(())
    }
}

#[path = "e2e/workflows.rs"]
mod workflows;

#[path = "e2e/gate.rs"]
mod gate;

mod master_data {
    use super::*;

    /// What the office creates over the API reaches the device's store by pull within a few sync intervals, and a
    /// cancellation moves the device's pull cursor on.
    #[test]
    fn office_master_data_reaches_the_device() -> Result<()> {
        let w = World::new("hh-master")?;
        let (client, url, admin) = (w.server.client()?, w.server.url(), w.server.admin_token()?);
        client
            .put(format!("{url}/v1/items/{}", GTINS[0]))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"description": "Widget", "lot_tracked": true}))
            .send()?
            .error_for_status()?;
        client
            .put(format!("{url}/v1/sites/WH1/locations/A-01-02"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"zone": "Z1"}))
            .send()?
            .error_for_status()?;
        client
            .post(format!("{url}/v1/asns"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({
                "id": "ASN-E2E-1",
                "site": "WH1",
                "lines": [{"gtin": GTINS[0], "lot": "L1", "qty": 10}]
            }))
            .send()?
            .error_for_status()?;
        let mut cursor = 0;
        wait_until(Duration::from_secs(20), || {
            let s = w.agent().status()?;
            let m = &s["sync"]["master"];
            cursor = s["sync"]["pull_cursor"].as_u64().unwrap_or(0);
            Ok(m["items"] == 1
                && m["locations"] == 1
                && m["asns"] == 1
                && s["sync"]["last_pull"] == "ok")
        })?;
        client
            .post(format!("{url}/v1/asns/ASN-E2E-1/cancel"))
            .bearer_auth(&admin)
            .send()?
            .error_for_status()?;
        wait_until(Duration::from_secs(20), || {
            let s = w.agent().status()?;
            Ok(s["sync"]["pull_cursor"].as_u64().unwrap_or(0) > cursor
                && s["sync"]["master"]["asns"] == 1)
        })?;
        Ok(())
    }
}
