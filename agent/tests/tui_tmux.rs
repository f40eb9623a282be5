//! One real-terminal smoke test of `dockhand-agent tui`: a real agent reading a serial scanner on a pty, the TUI in
//! a detached tmux session, keys in with `send-keys` and the screen out with `capture-pane`. Skipped, with a note,
//! only where tmux is not installed (CI installs it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use dockhand_agent::status;
use serialport::{SerialPort, TTYPort};

const BIN: &str = env!("CARGO_BIN_EXE_dockhand-agent");
const GTIN: &str = "09506000134352";
/// Patience for each step; the whole test usually takes under two seconds.
const T: Duration = Duration::from_secs(30);

/// A private tmux server (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            // A detached session needs no terminal of ours, but tmux wants TERM set to start its server.
            .env("TERM", "xterm-256color")
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "tui"]).stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The agent process, stopped with SIGTERM (SIGKILL if it does not stop in time) at the latest on drop.
struct Agent(Child);

impl Agent {
    /// SIGTERM, then its exit status; `None` if it had to be killed.
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.0.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        None
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn quoted(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

#[test]
fn tui_follows_a_real_agent_shows_its_scans_and_quits_on_q() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tui_tmux: tmux is not installed; skipping the real-terminal smoke test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut scanner, slave) = TTYPort::pair().expect("pty pair");
    let tty = PathBuf::from(slave.name().expect("pty name"));
    // Only the agent may hold the slave: two readers would race for the bytes.
    drop(slave);
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "device_id = \"tui-01\"\nsite = \"WH1\"\ndata_dir = \"data\"\n\n[[sources]]\n\
             kind = \"serial-barcode\"\npath = \"{}\"\nmodel = \"generic\"\n",
            tty.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");

    // The screen first, before any agent runs: it must say so and keep trying.
    let tmux = Tmux {
        socket: format!("dockhand-tui-test-{}", std::process::id()),
    };
    let cmd = format!(
        "{} tui --config {}",
        quoted(Path::new(BIN)),
        quoted(&config)
    );
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "tui",
        "-x",
        "100",
        "-y",
        "30",
        &cmd,
    ]);
    assert!(
        out.status.success(),
        "tmux: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the TUI to say the agent is not running", T, || {
        tmux.screen().contains("agent not running").then_some(())
    });

    let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
    let mut agent = Agent(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start agent"),
    );
    // Ready when the endpoint reports the scanner open.
    wait_for("the agent's scanner to connect", T, || {
        let addr = status::read_addr(&data).ok()?;
        let v = status::fetch_status(addr, Duration::from_secs(2)).ok()?;
        (v["sources"][0]["connected"] == true).then_some(())
    });
    wait_for("the TUI to reach the agent", T, || {
        tmux.screen().contains("agent 127.0.0.1").then_some(())
    });

    for scan in ["DH:RECEIVE".to_string(), format!("]C101{GTIN}10TUI1")] {
        scanner.write_all(format!("{scan}\r\n").as_bytes()).unwrap();
        scanner.flush().unwrap();
    }
    let screen = wait_for("the received item on screen", T, || {
        let s = tmux.screen();
        // The decision's message, not the echo of the scan below it.
        s.lines()
            .any(|l| l.contains(GTIN) && !l.contains("  scan "))
            .then_some(s)
    });
    eprintln!("{screen}");

    // The agent stops promptly with the TUI's event stream open, and the TUI notices.
    let exit = agent.stop();
    assert!(exit.is_some_and(|e| e.success()), "agent exit: {exit:?}");
    wait_for("the TUI to notice the agent stopped", T, || {
        tmux.screen().contains("agent not running").then_some(())
    });

    let out = tmux.run(&["send-keys", "-t", "tui", "q"]);
    assert!(out.status.success());
    wait_for("the TUI to quit on q", Duration::from_secs(10), || {
        (!tmux.run(&["has-session", "-t", "tui"]).status.success()).then_some(())
    });
}
