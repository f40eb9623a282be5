//! The `dockhand-server` binary: parses the command line, runs the library, maps errors to exit codes.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use dockhand_server::{enroll_device, run, RunOptions};

#[derive(Debug, Parser)]
#[command(
    name = "dockhand-server",
    version,
    about = "Dockhand central sync server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTPS API.
    Run {
        /// Data directory (created if missing).
        #[arg(long)]
        data: PathBuf,
        /// Listen address, e.g. 0.0.0.0:8443 (port 0 picks a free port).
        #[arg(long)]
        listen: String,
        /// TOML config file [default: DATA/server.toml if it exists].
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serve this certificate (PEM) instead of the generated one.
        #[arg(long, requires = "key")]
        cert: Option<PathBuf>,
        /// Private key (PEM) for --cert.
        #[arg(long, requires = "cert")]
        key: Option<PathBuf>,
        /// Extra DNS name or IP for the generated server certificate (repeatable).
        #[arg(long = "san")]
        sans: Vec<String>,
    },
    /// Issue a device token; prints it alone on stdout, once. With store = "postgres" in the config the device is
    /// enrolled in the database (every node sees it); otherwise in DATA/devices/.
    Enroll {
        /// Data directory of the server.
        #[arg(long)]
        data: PathBuf,
        /// The server's config file, which says where devices are registered
        /// [default: DATA/server.toml if it exists].
        #[arg(long)]
        config: Option<PathBuf>,
        /// Device id: 1 to 64 characters of A-Z a-z 0-9 . _ -
        #[arg(long)]
        device: String,
        /// The device's site.
        #[arg(long)]
        site: String,
        /// Replace the token of an enrolled device (the old one stops working).
        #[arg(long)]
        rotate: bool,
    },
}

/// The one place errors become exit codes: 0 on success, 1 with the error chain on stderr otherwise
/// (2 for usage errors, from clap).
fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dockhand-server: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match cli.command {
        Command::Run {
            data,
            listen,
            config,
            cert,
            key,
            sans,
        } => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let opts = RunOptions {
                data_dir: data,
                listen,
                config,
                cert,
                key,
                sans,
            };
            runtime
                .block_on(run(opts, shutdown_signal()))
                .context("dockhand-server run")?;
        }
        Command::Enroll {
            data,
            config,
            device,
            site,
            rotate,
        } => {
            let token = enroll_device(&data, config.as_deref(), &device, &site, rotate)
                .with_context(|| format!("enrolling device {device:?}"))?;
            // An error here (stdout closed) must not be a panic: the device is enrolled, so say so on stderr.
            let mut stdout = std::io::stdout().lock();
            std::io::Write::write_all(&mut stdout, format!("{token}\n").as_bytes())
                .and_then(|()| std::io::Write::flush(&mut stdout))
                .with_context(|| {
                    format!("device {device:?} is enrolled but its token could not be printed; enroll again with --rotate")
                })?;
        }
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
