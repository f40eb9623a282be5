//! The device's site stock view end to end: the real `dockhand-server` and `dockhand-agent` binaries over TLS. The
//! agent fetches `GET /v1/sync/stock` for its own site only, refreshes it within `stock_refresh_ms`, keeps
//! answering `dockhand-agent stock` from the last snapshot (with its age) when the server is gone, and answers
//! from its store once it is stopped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use dockhand_protocol::sync::{Movement, MovementKind, MovementSource, PushRequest};
use dockhand_tests::*;
use serde_json::Value;

const GTIN: &str = "09506000134352";

/// Pushes one receive of `qty` into `to` as `device` with seq `seq`.
fn receive(
    server: &ServerProc,
    token: &str,
    device: &str,
    seq: u64,
    to: &str,
    qty: u64,
) -> Result<()> {
    let body = PushRequest {
        device_id: device.into(),
        movements: vec![Movement {
            device_id: device.into(),
            seq,
            at: time::OffsetDateTime::now_utc(),
            kind: MovementKind::Receive,
            gtin: GTIN.into(),
            lot: Some("L1".into()),
            expiry: None,
            serials: vec![],
            qty,
            from_location: None,
            to_location: Some(to.into()),
            sscc: None,
            reference: None,
            operator: None,
            source: MovementSource::Manual,
        }],
        backlog: None,
    };
    server
        .client()?
        .post(format!("{}/v1/sync/push", server.url()))
        .bearer_auth(token)
        .json(&body)
        .send()?
        .error_for_status()?;
    Ok(())
}

/// `dockhand-agent stock --config CFG --json`.
fn stock(config: &Path) -> Result<Value> {
    let out = Command::new(bin("dockhand-agent"))
        .args(["stock", "--json", "--config"])
        .arg(config)
        .output()?;
    if !out.status.success() {
        bail!("stock failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// `(location, qty)` rows.
fn rows(v: &Value) -> Vec<(String, i64)> {
    v["stock"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["location"].as_str().unwrap_or("").to_string(),
                        r["qty"].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

struct Agent(Child);

impl Agent {
    fn stop(mut self) -> Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()?;
        let st = self.0.wait()?;
        if !st.success() {
            bail!("agent exited with {st}");
        }
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn device_sees_its_site_refreshed_and_keeps_it_offline() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let server_data = tmp.path().join("server");
    let mut server = ServerProc::start(&server_data, free_port())?;
    let hh01 = enroll(&server_data, "hh-01", "WH1")?;
    let hh02 = enroll(&server_data, "hh-02", "WH1")?;
    let rf01 = enroll(&server_data, "rf-01", "WH2")?;
    receive(&server, &hh02, "hh-02", 1, "A-01-02", 5)?;
    receive(&server, &rf01, "rf-01", 1, "A-01-02", 9)?;

    // hh-01 has no scanner: it only syncs.
    let data = tmp.path().join("agent");
    std::fs::create_dir_all(&data)?;
    std::fs::write(data.join("device.token"), &hh01)?;
    let config = data.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "device_id = \"hh-01\"\nsite = \"WH1\"\ndata_dir = \"{}\"\n\n[server]\nurl = \"{}\"\nca_file = \"{}\"\n\
             token_file = \"{}\"\nsync_interval_ms = 200\nmax_backoff_ms = 500\nstock_refresh_ms = 1000\n",
            data.display(),
            server.url(),
            server_data.join("ca.pem").display(),
            data.join("device.token").display()
        ),
    )?;
    let agent = Agent(
        Command::new(bin("dockhand-agent"))
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn dockhand-agent")?,
    );

    // The first snapshot comes at start: WH1 only.
    wait_until(Duration::from_secs(30), || {
        let v = stock(&config)?;
        Ok(v["as_of"].is_string() && rows(&v) == [("A-01-02".to_string(), 5)])
    })?;
    let v = stock(&config)?;
    assert_eq!(
        (v["site"].as_str(), v["unsynced"].as_u64()),
        (Some("WH1"), Some(0)),
        "{v}"
    );

    // Another handheld's receipt shows up within the refresh interval.
    receive(&server, &hh02, "hh-02", 2, "A-01-02", 3)?;
    wait_until(Duration::from_secs(15), || {
        Ok(rows(&stock(&config)?) == [("A-01-02".to_string(), 8)])
    })?;

    // Server gone: the last snapshot is still the answer, and the failure shows in the status file.
    server.kill();
    wait_until(Duration::from_secs(15), || {
        let status = dockhand_agent::read_status(&data)?;
        Ok(status["sync"]["last_stock_error"].is_string())
    })?;
    let v = stock(&config)?;
    assert_eq!(rows(&v), [("A-01-02".to_string(), 8)], "{v}");
    assert!(v["age_seconds"].as_i64().is_some(), "{v}");

    // Agent stopped: the CLI reads the store itself.
    agent.stop()?;
    assert_eq!(rows(&stock(&config)?), [("A-01-02".to_string(), 8)]);
    Ok(())
}
