//! What the agent's integration tests share: the real `dockhand-agent` binary as a child process, watched through
//! its status file, stopped with SIGTERM (and checked to exit cleanly) or killed with SIGKILL.

#![allow(dead_code)] // each test binary uses a part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for the agent to reach a state.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running agent.
pub struct Agent {
    child: Child,
    /// Its data directory.
    pub data: PathBuf,
    /// Its config file.
    pub config: PathBuf,
    log: Option<PathBuf>,
}

impl Agent {
    /// Starts `dockhand-agent run --config CONFIG` on data directory `data` (files left by an earlier run that
    /// would say "running" too early are removed first). With `log`, stderr goes to that file instead of the
    /// test's output.
    pub fn spawn(config: &Path, data: &Path, rust_log: &str, log: Option<PathBuf>) -> Agent {
        let _ = std::fs::remove_file(data.join("status.json"));
        let _ = std::fs::remove_file(data.join("status.addr"));
        let stderr = match &log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("agent log file")),
            None => Stdio::inherit(),
        };
        let child = Command::new(env!("CARGO_BIN_EXE_dockhand-agent"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn dockhand-agent");
        Agent {
            child,
            data: data.to_path_buf(),
            config: config.to_path_buf(),
            log,
        }
    }

    /// The status file, if written yet.
    pub fn status(&self) -> Option<serde_json::Value> {
        dockhand_agent::read_status(&self.data).ok()
    }

    /// What the agent logged (with a log file; empty otherwise).
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// Waits until `ready` holds, failing the test if the agent exits or [`WAIT`] passes.
    pub fn wait(&mut self, what: &str, mut ready: impl FnMut(&Agent) -> bool) {
        let end = Instant::now() + WAIT;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "dockhand-agent exited while waiting for {what}: {st}; {}",
                    self.log_text()
                );
            }
            if ready(self) {
                return;
            }
            assert!(
                Instant::now() < end,
                "waiting for {what}; status: {:#}; {}",
                self.status().unwrap_or_default(),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the status file (written every 500 ms) satisfies `pred`, and returns it.
    pub fn wait_status(
        &mut self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut found = None;
        self.wait(what, |a| {
            found = a.status().filter(&pred);
            found.is_some()
        });
        found.expect("matched status")
    }

    /// SIGKILL, as a power cut would.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM; the agent must exit cleanly. Returns what it logged.
    pub fn stop(mut self) -> String {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "could not send SIGTERM");
        let status = self.child.wait().expect("wait");
        assert!(
            status.success(),
            "agent exited with {status}: {}",
            self.log_text()
        );
        self.log_text()
    }
}
