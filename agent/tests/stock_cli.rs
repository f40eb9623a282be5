//! `dockhand-agent stock`, end to end with the real binary: answered from the store when no agent runs, by the
//! running agent's status endpoint when one does; and a store damaged while the agent was stopped is quarantined
//! and rebuilt at the next start, loudly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dockhand_agent::sitestock::SiteStock;
use dockhand_agent::view::LocalView;
use dockhand_protocol::sync::{Movement, MovementKind, MovementSource, SnapshotRow, StockSnapshot};
use serde_json::{json, Value};

mod common;
use common::Agent;

const BIN: &str = env!("CARGO_BIN_EXE_dockhand-agent");
const GTIN: &str = "09506000134352";

fn movement(seq: u64, from: Option<&str>, to: &str, qty: u64) -> Movement {
    Movement {
        device_id: "hh-stock".into(),
        seq,
        at: time::OffsetDateTime::now_utc(),
        kind: if from.is_some() {
            MovementKind::Move
        } else {
            MovementKind::Receive
        },
        gtin: GTIN.into(),
        lot: Some("L1".into()),
        expiry: None,
        serials: vec![],
        qty,
        from_location: from.map(Into::into),
        to_location: Some(to.into()),
        sscc: None,
        reference: None,
        operator: None,
        source: MovementSource::Manual,
    }
}

/// A store as a device leaves it: a snapshot two minutes old covering seq 1 (plus another device's stock), and
/// seq 2 not yet at the server.
fn prepare(data: &Path) {
    let (view, _) = LocalView::open(&data.join("sled")).unwrap();
    view.apply(&[
        movement(1, None, "A-01-02", 5),
        movement(2, Some("A-01-02"), "B-01", 2),
    ])
    .unwrap();
    let row = |lot: Option<&str>, qty| SnapshotRow {
        location: "A-01-02".into(),
        gtin: GTIN.into(),
        lot: lot.map(Into::into),
        qty,
    };
    let snap = StockSnapshot {
        site: "WH1".into(),
        acked_through: 1,
        stock: vec![row(None, 7), row(Some("L1"), 5)],
    };
    let at = time::OffsetDateTime::now_utc() - time::Duration::seconds(120);
    SiteStock::new(view.db())
        .unwrap()
        .install(&snap, at)
        .unwrap();
    view.close().unwrap();
}

fn config(data: &Path) -> PathBuf {
    let path = data.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "device_id = \"hh-stock\"\nsite = \"WH1\"\ndata_dir = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();
    path
}

fn stock(cfg: &Path, args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(["stock", "--config"])
        .arg(cfg)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stock {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stock_json(cfg: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_slice(&stock(cfg, &all).stdout).unwrap()
}

fn rows(v: &Value) -> Vec<(String, Value, i64)> {
    v["stock"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["location"].as_str().unwrap().to_string(),
                r["lot"].clone(),
                r["qty"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Starts the agent (its log kept in a file, to check for the quarantine line) and waits for its status endpoint.
fn start(cfg: &Path, data: &Path) -> Agent {
    let log = data.join(format!("agent-{}.log", std::process::id()));
    let mut agent = Agent::spawn(cfg, data, "warn", Some(log));
    agent.wait("the status endpoint", |a| {
        a.data.join("status.addr").exists()
    });
    agent
}

#[test]
fn stock_from_the_store_from_the_agent_and_after_a_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let cfg = config(data);
    prepare(data);
    let want = vec![
        ("A-01-02".to_string(), Value::Null, 7),
        ("A-01-02".to_string(), json!("L1"), 3),
        ("B-01".to_string(), json!("L1"), 2),
    ];

    // No agent: read from the store.
    let v = stock_json(&cfg, &[]);
    assert_eq!(rows(&v), want, "{v}");
    assert_eq!(
        (
            v["unsynced"].clone(),
            v["acked_through"].clone(),
            v["site"].clone()
        ),
        (json!(1), json!(1), json!("WH1"))
    );
    assert!(
        v["as_of"].is_string() && v["age_seconds"].as_i64().unwrap() >= 120,
        "{v}"
    );
    let table = String::from_utf8(stock(&cfg, &["--location", "B-01"]).stdout).unwrap();
    assert!(
        table.contains("2 min ago") && table.contains("not running"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["B-01", GTIN, "L1", "2"]),
        "{table}"
    );
    assert!(!table.contains("A-01-02  "), "{table}");

    // A running agent answers through its status endpoint (the store is locked meanwhile).
    let agent = start(&cfg, data);
    let v = stock_json(&cfg, &["--location", "A-01-02"]);
    assert_eq!(rows(&v), want[..2].to_vec(), "{v}");
    let table = String::from_utf8(stock(&cfg, &[]).stdout).unwrap();
    assert!(table.contains("answered by the running agent"), "{table}");
    agent.stop();

    // Damaged while stopped: quarantined and rebuilt at the next start, with a loud line; no snapshot yet.
    let db = data.join("sled").join("db");
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    std::io::Write::write_all(&mut file, &garbage).unwrap();
    drop(file);
    let agent = start(&cfg, data);
    let v = stock_json(&cfg, &[]);
    let log = agent.stop();
    assert!(log.contains("LOCAL STORE DAMAGED"), "{log}");
    let quarantined: Vec<_> = std::fs::read_dir(data)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.starts_with("sled.broken-"))
        .collect();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert_eq!((rows(&v), v["as_of"].clone()), (vec![], Value::Null), "{v}");
}
