//! `dockhand-demo`: the whole system on one machine in one command.
//!
//! Starts a `dockhand-server` on its embedded store (real HTTPS with its own CA), enrolls a handheld, runs a
//! `dockhand-agent` whose barcode scanner is simulated on a pseudo-terminal, plays a short receiving + put-away
//! session on that scanner, waits for the sync, and prints the server's stock and where to look next.
//! Server and agent run in this process (the same library code the binaries run); the end-to-end tests run them
//! as separate processes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use dockhand_tests::{item_scan, wait_until, AgentSpec, Scanner, ACK, GTINS};

fn main() -> Result<()> {
    tracing_subscriber_init();
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("dockhand-demo-{}", std::process::id()))
        });
    std::fs::create_dir_all(&root)?;
    let server_data = root.join("server");
    let agent_data = root.join("agent-hh-01");
    let port = dockhand_tests::free_port();
    let rt = tokio::runtime::Runtime::new()?;

    println!("Dockhand demo — data in {}", root.display());
    println!(
        "1. starting dockhand-server on https://127.0.0.1:{port} (embedded store, generated CA)"
    );
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(dockhand_server::run(
        dockhand_server::RunOptions {
            data_dir: server_data.clone(),
            listen: format!("127.0.0.1:{port}"),
            config: None,
            cert: None,
            key: None,
            sans: vec![],
        },
        async move {
            let _ = server_stopped.await;
        },
    ));
    wait_until(Duration::from_secs(20), || {
        Ok(server_data.join("admin.token").exists()
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
    })
    .context("server did not start")?;

    println!("2. the office registers site WH1, three items and four locations (office API), and enrolls handheld hh-01");
    office_setup(&server_data, port)?;
    let token = dockhand_server::enroll(
        &dockhand_server::devices_dir(&server_data),
        "hh-01",
        "WH1",
        false,
    )
    .context("enroll")?;

    let mut scanner = Scanner::new()?;
    println!(
        "3. starting dockhand-agent hh-01 with a simulated serial scanner on {}",
        scanner.path.display()
    );
    let config = AgentSpec {
        device: "hh-01",
        site: "WH1",
        data: &agent_data,
        server: Some((
            format!("https://127.0.0.1:{port}"),
            server_data.join("ca.pem"),
            token,
        )),
        scanner: &scanner.path,
        max_backoff_ms: 1000,
    }
    .write_config()?;
    let cfg = dockhand_agent::config::Config::load(&config)?;
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = rt.spawn(dockhand_agent::run(cfg, async move {
        let _ = agent_stopped.await;
    }));
    wait_until(Duration::from_secs(20), || {
        Ok(dockhand_agent::read_status(&agent_data)
            .map(|s| s["sources"][0]["connected"] == true)
            .unwrap_or(false))
    })
    .context("agent did not connect to its scanner")?;

    println!("4. scanning a receiving + put-away session:");
    let session: Vec<String> = vec![
        "DH:OP:demo".into(),
        "DH:RECEIVE".into(),
        item_scan(GTINS[0], "LOT-A"),
        item_scan(GTINS[0], "LOT-A"),
        "DH:QTY:5".into(),
        item_scan(GTINS[1], "LOT-B"),
        format!("]C101{}10LOT-C\u{1d}17301231", GTINS[2]),
        "]C10109506000134353".into(), // a misprinted check digit: rejected, nothing recorded
        "DH:PUTAWAY".into(),
        item_scan(GTINS[0], "LOT-A"),
        "LOC:A-01-02".into(),
        "DH:QTY:3".into(),
        item_scan(GTINS[1], "LOT-B"),
        "LOC:B-04-01".into(),
        "DH:DONE".into(),
    ];
    for scan in &session {
        let fb = scanner.scan_and_wait(scan, Duration::from_secs(10))?;
        let recent = last_decision(&agent_data);
        let shown = scan.replace('\u{1d}', "<GS>");
        match fb {
            Some(ACK) => println!("   beep ✔  {shown:<38} {recent}"),
            Some(_) => println!("   buzz ✘  {shown:<38} {recent}"),
            None => println!("   (no answer) {shown}"),
        }
    }

    println!("5. waiting for the agent to sync its movements to the server");
    wait_until(Duration::from_secs(30), || {
        Ok(dockhand_agent::read_status(&agent_data)?["backlog"] == 0)
    })?;
    let client = dockhand_tests::client_for(&server_data)?;
    let admin = std::fs::read_to_string(server_data.join("admin.token"))?
        .trim()
        .to_string();
    let stock: serde_json::Value = client
        .get(format!("https://127.0.0.1:{port}/v1/stock?site=WH1"))
        .bearer_auth(&admin)
        .send()?
        .error_for_status()?
        .json()?;
    let open: serde_json::Value = client
        .get(format!(
            "https://127.0.0.1:{port}/v1/discrepancies?site=WH1&status=open"
        ))
        .bearer_auth(&admin)
        .send()?
        .error_for_status()?
        .json()?;
    let open = open
        .as_array()
        .or_else(|| open["discrepancies"].as_array())
        .map_or(0, Vec::len);
    println!(
        "\nOpen discrepancies for the office (GET /v1/discrepancies?site=WH1&status=open): {open}"
    );
    println!("\nStock at the server (GET /v1/stock?site=WH1):");
    println!(
        "   {:<12} {:<16} {:<8} {:>5}",
        "location", "gtin", "lot", "qty"
    );
    for (loc, gtin, lot, qty) in dockhand_tests::parse_stock(&stock)? {
        println!(
            "   {:<12} {:<16} {:<8} {:>5}",
            loc,
            gtin,
            lot.unwrap_or_default(),
            qty
        );
    }

    let _ = stop_agent.send(());
    rt.block_on(agent)??;
    let _ = stop_server.send(());
    rt.block_on(server)??;
    where_next(&root, &server_data, &config, port);
    Ok(())
}

/// Master data through the office API, as the central office would load it (so no movement is flagged as an unknown
/// item or location).
fn office_setup(server_data: &Path, port: u16) -> Result<()> {
    let client = dockhand_tests::client_for(server_data)?;
    let admin = std::fs::read_to_string(server_data.join("admin.token"))?
        .trim()
        .to_string();
    let base = format!("https://127.0.0.1:{port}/v1");
    let put = |path: String, body: serde_json::Value| -> Result<()> {
        client
            .put(format!("{base}{path}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()?
            .error_for_status()?;
        Ok(())
    };
    put(
        "/sites/WH1".into(),
        serde_json::json!({"code": "WH1", "name": "Demo warehouse"}),
    )?;
    for (gtin, description) in [
        (GTINS[0], "Widget"),
        (GTINS[1], "Gadget"),
        (GTINS[2], "Sprocket"),
    ] {
        put(
            format!("/items/{gtin}"),
            serde_json::json!({"gtin": gtin, "description": description, "lot_tracked": true}),
        )?;
    }
    for code in ["DOCK-1", "A-01-02", "B-04-01", "C-02-03"] {
        put(
            format!("/sites/WH1/locations/{code}"),
            serde_json::json!({"code": code}),
        )?;
    }
    Ok(())
}

fn last_decision(agent_data: &Path) -> String {
    // The status file is refreshed every 500 ms; give it a moment so the line shows this scan's decision.
    std::thread::sleep(Duration::from_millis(550));
    dockhand_agent::read_status(agent_data)
        .ok()
        .and_then(|s| {
            s["sources"][0]["recent"]
                .as_array()?
                .last()?
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_default()
}

fn where_next(root: &Path, server_data: &Path, config: &Path, port: u16) {
    println!("\nWhere to look next:");
    println!(
        "   server data (CA, certificate, admin token, store): {}",
        server_data.display()
    );
    println!("   agent config: {}", config.display());
    println!(
        "   agent status: cargo run --bin dockhand-agent -- status --config {}",
        config.display()
    );
    println!(
        "   run it yourself: cargo run --release --bin dockhand-server -- run --data {} --listen 127.0.0.1:{port}",
        server_data.display()
    );
    println!(
        "   then: curl --cacert {0}/ca.pem -H \"Authorization: Bearer $(cat {0}/admin.token)\" https://127.0.0.1:{port}/v1/stock?site=WH1",
        server_data.display()
    );
    println!(
        "   README.md explains the configuration; everything above lives under {}",
        root.display()
    );
}

fn tracing_subscriber_init() {
    // Quiet by default so the demo's own lines read cleanly; RUST_LOG=info shows the system's logs.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}
