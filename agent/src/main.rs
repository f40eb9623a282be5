//! The `dockhand-agent` command line. All errors become exit codes here and only here:
//! 0 success, 1 invalid scan (decode), 2 bad usage or configuration, 3 runtime failure (journal, device, sync setup).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use dockhand_agent::config::Config;
use dockhand_protocol::decode::{decode_text, DecodeOptions};

#[derive(Parser)]
#[command(
    name = "dockhand-agent",
    version,
    about = "Dockhand edge agent for handhelds and dock gates"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the agent: read scanners, record movements, sync to the server.
    Run {
        /// The agent's TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Decode one scan (argument, or `-`/nothing for stdin) and print what it means.
    Decode {
        /// Print JSON (DESIGN §8 shape).
        #[arg(long)]
        json: bool,
        /// Treat digit strings without an AIM identifier as GS1 element strings.
        #[arg(long)]
        gs1: bool,
        /// What a keyboard wedge sends for FNC1: one character such as '|', or the text '<GS>'.
        #[arg(long)]
        fnc1: Option<String>,
        /// The scan; `-` or absent reads stdin up to EOF (one trailing CR/LF removed).
        scan: Option<String>,
        /// Decode this EPC instead (the EPC bank after the PC word, in hex), e.g. `3074257BF7194E4000001A85`.
        #[arg(long, value_name = "HEX", conflicts_with_all = ["scan", "gs1", "fnc1"])]
        epc: Option<String>,
    },
    /// Print the running (or last run) agent's status: sync backlog, last sync result, sources, local stock.
    Status {
        /// The agent's TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Fetch a running dock gate's audit ring (the raw RFID reads kept for a support case) as JSON lines.
    Audit {
        /// The agent's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// Write the lines to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show the running agent's task, decisions and sync state on this terminal (q or Esc quits).
    Tui {
        /// The agent's TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Stock at this device's site as the device knows it: the server's last snapshot plus this device's
    /// movements not yet in it. Works offline.
    Stock {
        /// The agent's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// Only this location.
        #[arg(long)]
        location: Option<String>,
        /// Print JSON: {"stock":[...], "as_of", "age_seconds", "site", "acked_through", "unsynced"}.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run { config } => {
            init_tracing();
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("dockhand-agent: {e}");
                    return ExitCode::from(2);
                }
            };
            match dockhand_agent::clock::check_env() {
                Ok(offset) if offset.is_zero() => {}
                Ok(offset) => tracing::warn!(
                    offset_secs = offset.whole_seconds(),
                    "device clock skewed on purpose by {}: a simulation knob, never set it in production",
                    dockhand_agent::clock::OFFSET_ENV
                ),
                Err(e) => {
                    eprintln!("dockhand-agent: {e}");
                    return ExitCode::from(2);
                }
            }
            match run(cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("dockhand-agent: {e:#}");
                    ExitCode::from(3)
                }
            }
        }
        Cmd::Decode {
            json,
            epc: Some(hex),
            ..
        } => decode_epc(json, &hex),
        Cmd::Decode {
            json,
            gs1,
            fnc1,
            scan,
            epc: None,
        } => decode(json, gs1, fnc1, scan),
        Cmd::Stock {
            config,
            location,
            json,
        } => match Config::load(&config) {
            Err(e) => {
                eprintln!("dockhand-agent: {e}");
                ExitCode::from(2)
            }
            Ok(cfg) => match stock(&cfg, location.as_deref(), json) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("dockhand-agent: {e:#}");
                    ExitCode::from(3)
                }
            },
        },
        Cmd::Status { config } => match status(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dockhand-agent: {e:#}");
                ExitCode::from(2)
            }
        },
        Cmd::Audit { config, out } => match Config::load(&config) {
            Err(e) => {
                eprintln!("dockhand-agent: {e}");
                ExitCode::from(2)
            }
            Ok(cfg) => match audit(&cfg, out.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("dockhand-agent: {e:#}");
                    ExitCode::from(3)
                }
            },
        },
        Cmd::Tui { config } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("dockhand-agent: {e}");
                    return ExitCode::from(2);
                }
            };
            match dockhand_agent::tui::run(&cfg.data_dir) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("dockhand-agent: terminal: {e}");
                    ExitCode::from(3)
                }
            }
        }
    }
}

fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

fn run(cfg: Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("install SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutting down");
        };
        dockhand_agent::run(cfg, shutdown).await
    })?;
    Ok(())
}

fn decode(json: bool, gs1: bool, fnc1: Option<String>, scan: Option<String>) -> ExitCode {
    let text = match scan.as_deref() {
        Some(s) if s != "-" => s.to_string(),
        _ => {
            let mut buf = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut buf) {
                eprintln!("dockhand-agent: reading stdin: {e}");
                return ExitCode::from(2);
            }
            let mut s = String::from_utf8_lossy(&buf).into_owned();
            if s.ends_with('\n') {
                s.pop();
            }
            if s.ends_with('\r') {
                s.pop();
            }
            s
        }
    };
    let fnc1_text = fnc1.as_deref() == Some(dockhand_agent::config::FNC1_TEXT);
    let fnc1_substitute = match fnc1.as_deref() {
        None => None,
        Some(_) if fnc1_text => None,
        Some(s) if s.len() == 1 && s.is_ascii() => s.bytes().next(),
        Some(s) => {
            eprintln!("dockhand-agent: --fnc1 must be one ASCII character or '<GS>', got {s:?}");
            return ExitCode::from(2);
        }
    };
    let opts = DecodeOptions {
        today: time::OffsetDateTime::now_utc().date(),
        fnc1_substitute,
        assume_gs1: gs1,
        fnc1_text,
    };
    match decode_text(&text, &opts) {
        Ok(scan) => {
            let v = scan.to_json();
            if json {
                out(&v.to_string());
            } else {
                out(&serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                out(&e.to_json().to_string());
            } else {
                eprintln!("invalid scan: {e}");
            }
            ExitCode::from(1)
        }
    }
}

/// `decode --epc HEX`: one EPC (DESIGN §8). A non-GS1 EPC is a result (`"scheme":"unknown"`), not an error.
fn decode_epc(json: bool, hex: &str) -> ExitCode {
    match dockhand_protocol::epc::decode_hex(hex) {
        Ok(epc) if json => out(&epc.to_json().to_string()),
        Ok(epc) => out(epc.to_text().trim_end()),
        Err(e) if json => {
            out(&e.to_json().to_string());
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("invalid EPC: {e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

fn status(config: &std::path::Path) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    // The running agent's endpoint adds the task and the last decisions; the file is there when it is not running.
    let live = dockhand_agent::status::read_addr(&cfg.data_dir).and_then(|addr| {
        dockhand_agent::status::fetch_status(addr, std::time::Duration::from_secs(2))
    });
    if let Ok(v) = live {
        out(&serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let v = dockhand_agent::read_status(&cfg.data_dir).with_context(|| {
        format!(
            "no status in {} (has the agent run yet?)",
            cfg.data_dir.display()
        )
    })?;
    out(&serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// `dockhand-agent audit`: the running gate's audit ring, to stdout or a file. The ring lives in memory, so the
/// agent must be running.
fn audit(cfg: &Config, out_file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let addr = dockhand_agent::status::read_addr(&cfg.data_dir)?;
    // A full ring is some megabytes built on the gate task: give it time.
    let lines = dockhand_agent::status::fetch_audit(addr, std::time::Duration::from_secs(30))?;
    match out_file {
        Some(path) => {
            std::fs::write(path, &lines).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "dockhand-agent: {} raw reads written to {}",
                lines.lines().count(),
                path.display()
            );
        }
        None => {
            use std::io::Write;
            let _ = std::io::stdout().lock().write_all(lines.as_bytes());
        }
    }
    Ok(())
}

/// `dockhand-agent stock`: asks the running agent, or reads the store when none runs.
fn stock(cfg: &Config, location: Option<&str>, json: bool) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let (answer, from_agent) =
        rt.block_on(dockhand_agent::sitestock::query(&cfg.data_dir, location))?;
    if json {
        out(&serde_json::to_string(&answer)?);
        return Ok(());
    }
    let source = if from_agent {
        "answered by the running agent"
    } else {
        "read from the local store; the agent is not running"
    };
    match (&answer.as_of, answer.age_seconds) {
        (Some(at), Some(age)) => out(&format!(
            "site {} stock as of {at} ({} ago), plus {} movement(s) of this device not in it yet ({source})",
            answer.site.as_deref().unwrap_or("?"),
            age_text(age),
            answer.unsynced
        )),
        _ => out(&format!(
            "no stock snapshot from the server yet: only this device's {} movement(s) ({source})",
            answer.unsynced
        )),
    }
    let mut table = vec![[
        "LOCATION".to_string(),
        "GTIN".into(),
        "LOT".into(),
        "QTY".into(),
    ]];
    for r in &answer.stock {
        table.push([
            r.location.clone(),
            r.gtin.clone(),
            r.lot.clone().unwrap_or_else(|| "-".into()),
            r.qty.to_string(),
        ]);
    }
    let width = |i: usize| {
        table
            .iter()
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    for [l, g, lot, q] in &table {
        out(&format!("{l:<w0$}  {g:<w1$}  {lot:<w2$}  {q:>w3$}"));
    }
    if answer.stock.is_empty() {
        out("(no stock)");
    }
    Ok(())
}

fn age_text(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// Prints a line to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn out(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
