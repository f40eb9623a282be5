//! `dockhand-rfid-sim`: runs a simulated RFID reader with N pallets driven inbound through a gate, for the demo and
//! manual testing.
//!
//! ```text
//! dockhand-rfid-sim r2000 [--pallets N] [--seed S] [--spacing-ms MS]    prints the pty path to configure
//! dockhand-rfid-sim llrp  [--pallets N] [--seed S] [--spacing-ms MS] [--keepalive-ms MS]
//! ```
//!
//! Prints the pallets' SSCCs and EPCs (for the ASN), then progress every second until every read was delivered or
//! lost, then waits for Ctrl-C so the agent can keep its connection.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use dockhand_tests::rfidsim::{epc_hex, pallet_sscc, LlrpSim, R2000Sim, Script};

struct Args {
    kind: String,
    pallets: usize,
    seed: u64,
    spacing_ms: u64,
    keepalive_ms: u64,
}

fn parse(mut raw: impl Iterator<Item = String>) -> Result<Args> {
    let usage = "usage: dockhand-rfid-sim r2000|llrp [--pallets N] [--seed S] [--spacing-ms MS] [--keepalive-ms MS]";
    let kind = raw.next().context(usage)?;
    if kind != "r2000" && kind != "llrp" {
        bail!("unknown reader {kind:?}; {usage}");
    }
    let mut args = Args {
        kind,
        pallets: 10,
        seed: 1,
        spacing_ms: 2000,
        keepalive_ms: 1000,
    };
    while let Some(flag) = raw.next() {
        let value = raw
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .with_context(|| format!("{flag} {value:?}"))
        };
        match flag.as_str() {
            "--pallets" => args.pallets = number()? as usize,
            "--seed" => args.seed = number()?,
            "--spacing-ms" => args.spacing_ms = number()?,
            "--keepalive-ms" => args.keepalive_ms = number()?,
            _ => bail!("unknown flag {flag}; {usage}"),
        }
    }
    Ok(args)
}

/// The one place errors become an exit code: 1, with the message on stderr.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dockhand-rfid-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args = parse(std::env::args().skip(1))?;
    let script = Script::pallet_gate(args.pallets, args.spacing_ms, args.seed);
    for (i, pass) in script.passes.iter().enumerate() {
        let epc = pass.1.tags.first().map(|e| epc_hex(e)).unwrap_or_default();
        println!(
            "pallet {i:>3}  sscc {}  epc {epc}  at {} ms",
            pallet_sscc(args.seed, i),
            pass.0
        );
    }
    let progress: Box<dyn Fn() -> (String, bool)> = match args.kind.as_str() {
        "r2000" => {
            let sim = R2000Sim::start(&script)?;
            println!("r2000 reader on {}", sim.path().display());
            println!(
                "{} reads scheduled; the clock starts at the first inventory",
                sim.truth().total_reads
            );
            Box::new(move || {
                let s = sim.stats();
                (
                    format!(
                        "commands {} reads delivered {} lost {}",
                        s.commands_seen, s.reads_delivered, s.reads_lost
                    ),
                    sim.done(),
                )
            })
        }
        _ => {
            let sim = LlrpSim::start(&script, args.keepalive_ms)?;
            println!("llrp reader on 127.0.0.1:{}", sim.port());
            println!(
                "{} reads scheduled; the clock starts with the first active ROSpec",
                sim.truth().total_reads
            );
            Box::new(move || {
                let s = sim.stats();
                (
                    format!(
                        "connected {} reports {} reads delivered {} lost {} keepalive acks {}",
                        sim.connected(),
                        s.reports_sent,
                        s.reads_delivered,
                        s.reads_lost,
                        s.keepalive_acks
                    ),
                    sim.done(),
                )
            })
        }
    };
    let mut finished = false;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let (line, done) = progress();
        if !finished {
            println!("{line}");
        }
        if done && !finished {
            println!("script finished; Ctrl-C to stop");
            finished = true;
        }
    }
}
