//! `dockhand-agent decode --epc HEX`, end to end with the real binary (DESIGN §8): a GS1 EPC, a non-GS1 EPC
//! (a result, not an error), an invalid encoding (exit 1 with a JSON error), and the text form.

use std::process::{Command, Output};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_dockhand-agent");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run dockhand-agent")
}

fn json_of(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout:?}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout:?}"))
}

#[test]
fn gs1_epc() {
    // The TDS Appendix E SGTIN-96 example.
    let out = run(&["decode", "--epc", "3074257BF7194E4000001A85", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json_of(&out);
    assert_eq!(v["scheme"], "sgtin-96");
    assert_eq!(
        v["pure_identity_uri"],
        "urn:epc:id:sgtin:0614141.812345.6789"
    );
    assert_eq!(v["tag_uri"], "urn:epc:tag:sgtin-96:3.0614141.812345.6789");
    assert_eq!(v["hri"], "(01)80614141123458(21)6789");
    assert_eq!(v["filter"], 3);
    assert_eq!(v["hex"], "3074257bf7194e4000001a85");
    assert_eq!(v["gtin"], "80614141123458");
    assert_eq!(v["serial"], "6789");
}

#[test]
fn unknown_epc_is_a_result() {
    let out = run(&["decode", "--json", "--epc", "e2801160600002054b1c2d7a"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json_of(&out);
    assert_eq!(v["scheme"], "unknown");
    assert_eq!(v["hex"], "e2801160600002054b1c2d7a");
    assert_eq!(v["message"], "not a GS1 EPC: header 0xe2");
    assert_eq!(v["tag_uri"], "urn:epc:raw:96.xE2801160600002054B1C2D7A");
    assert_eq!(v["hri"], Value::Null);
}

#[test]
fn invalid_epc_exits_1() {
    // SGTIN-96 with partition value 7.
    let out = run(&["decode", "--epc", "307C257BF7194E4000001A85", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        json_of(&out),
        json!({"error": {
            "message": "sgtin-96: partition value 7 is invalid (valid: 0 to 6)",
            "rule": "partition",
            "scheme": "sgtin-96",
        }})
    );
    let out = run(&["decode", "--epc", "30zz", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        json_of(&out)["error"]["message"],
        "not a hex digit at position 2: 'z'"
    );
}

#[test]
fn text_output_is_one_line_per_field() {
    let out = run(&["decode", "--epc", "3154257BF4499602D2000000"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "scheme: sscc-96");
    assert!(
        lines.contains(&"tag_uri: urn:epc:tag:sscc-96:2.0614141.1234567890"),
        "{stdout}"
    );
    assert!(lines.contains(&"hri: (00)106141412345678908"), "{stdout}");
    assert!(lines.contains(&"sscc: 106141412345678908"), "{stdout}");

    let out = run(&["decode", "--epc", "3154257BF4499602D2000001"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "invalid EPC: sscc-96: the 24 reserved bits are not all zero"
    );
}

#[test]
fn epc_and_scan_together_is_a_usage_error() {
    let out = run(&[
        "decode",
        "--epc",
        "3074257BF7194E4000001A85",
        "]C10109506000134352",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
