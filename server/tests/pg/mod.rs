//! A throw-away PostgreSQL cluster for tests, started from the installed binaries (BUILD-NOTES, PostgreSQL).
//!
//! [`database`] hands out a fresh, empty database (`CREATE DATABASE t_<n>`) on one cluster shared by all tests of
//! a test binary, started on first use: initdb (`--no-sync`: the template needs no durability) and pg_ctl in a
//! temporary directory, listening on 127.0.0.1 at a free port and on a unix socket in that directory, with
//! `fsync=on` so commits really reach the disk. Rust never drops statics, so the shared cluster is stopped by its
//! guard process: a small shell started with the cluster that waits for the test process to end (however it
//! ends: success, panic, abort, kill) and then stops the cluster and deletes its directory. A test that wants a
//! cluster of its own calls [`Cluster::start`]; dropping that stops and deletes it at once.
//!
//! initdb refuses to run as root, so as root the directory is given to the `postgres` user and the binaries run
//! through `runuser -u postgres`; as any other user they run directly.
//!
//! PostgreSQL missing is a test FAILURE with the command that installs it, never a silent skip.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Where to look for `initdb` and `pg_ctl`: `$DOCKHAND_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`.
fn pg_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKHAND_PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").exists() && dir.join("pg_ctl").exists(),
            "DOCKHAND_PG_BIN={} holds no initdb and pg_ctl. Install PostgreSQL with `apt-get install postgresql` \
             (Debian/Ubuntu) or point DOCKHAND_PG_BIN at its bin directory.",
            dir.display()
        );
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found (no /usr/lib/postgresql/<version>/bin/initdb). These tests start \
             their own throw-away cluster and need them: install with `apt-get install postgresql` (Debian/Ubuntu), \
             or set DOCKHAND_PG_BIN to the directory holding initdb and pg_ctl."
        ),
    }
}

/// A running throw-away cluster; stopped and deleted on drop.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// TCP port on 127.0.0.1 (the socket in `dir` uses the same number).
    pub port: u16,
    /// How long initdb + start took.
    pub started_in: std::time::Duration,
}

impl Cluster {
    /// Starts a new cluster (about a second; see [`Cluster::started_in`]). Panics, saying how to install
    /// PostgreSQL, when the binaries are missing.
    pub fn start() -> Cluster {
        let bin = pg_bin();
        let started = Instant::now();
        // `id -u` rather than libc::geteuid: no `unsafe` in tests.
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let dir = tempfile::Builder::new()
            .prefix("dockhand-pg-")
            .tempdir()
            .expect("create a temporary directory for PostgreSQL");
        if as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()));
        }
        let cluster = Cluster {
            dir,
            bin,
            as_postgres,
            port: 0,
            started_in: std::time::Duration::ZERO,
        };
        let data = cluster.data();
        run(&mut cluster.pg(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        ));
        let mut cluster = cluster;
        // A free port can be taken between our probe and the server's bind: try a few.
        for attempt in 1..=5 {
            let port = free_port();
            let opts = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200",
                path_str(cluster.dir.path())
            );
            let log = cluster.dir.path().join("postgres.log");
            let status = cluster
                .pg(
                    "pg_ctl",
                    &[
                        "-D",
                        path_str(&data),
                        "-l",
                        path_str(&log),
                        "-o",
                        &opts,
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                )
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run pg_ctl start");
            if status.success() {
                cluster.port = port;
                break;
            }
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                attempt < 5,
                "pg_ctl start failed 5 times; last server log:\n{log}"
            );
        }
        cluster.started_in = started.elapsed();
        cluster.watch_parent();
        eprintln!(
            "throw-away PostgreSQL cluster on port {} started in {:?}",
            cluster.port, cluster.started_in
        );
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A PostgreSQL binary, as the `postgres` user when we are root.
    fn pg(&self, tool: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args).stdin(Stdio::null());
        cmd
    }

    /// Stops the cluster once this process is gone if nothing dropped it first (the shared cluster, a killed run).
    fn watch_parent(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = format!(
            "{}{} -D {} -m immediate stop",
            if self.as_postgres {
                "runuser -u postgres -- "
            } else {
                ""
            },
            path_str(&pg_ctl),
            path_str(&self.data())
        );
        let script = format!(
            "while kill -0 {pid} 2>/dev/null && [ -d {data} ]; do sleep 1; done; \
             [ -d {data} ] && {stop}; rm -rf {dir}",
            pid = std::process::id(),
            data = path_str(&self.data()),
            dir = path_str(self.dir.path()),
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    /// A connection string for `dbname` over the unix socket.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={dbname}",
            path_str(self.dir.path()),
            self.port
        )
    }

    /// A connection string for `dbname` over TCP (what remote server nodes use).
    pub fn tcp_url(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={dbname}",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .pg(
                "pg_ctl",
                &["-D", path_str(&data), "-m", "fast", "-w", "stop"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // The TempDir removes the directory (and so ends the watchdog).
    }
}

/// The cluster shared by the tests of this process (see the module docs for how it stops).
static SHARED: OnceLock<Arc<Cluster>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(1);

/// The shared cluster, started on first use.
pub fn cluster() -> Arc<Cluster> {
    SHARED.get_or_init(|| Arc::new(Cluster::start())).clone()
}

/// A fresh database; keeps its cluster running while it lives.
pub struct TestDb {
    /// The cluster.
    pub cluster: Arc<Cluster>,
    /// The database's name.
    pub name: String,
}

impl TestDb {
    /// Connection string (unix socket).
    pub fn url(&self) -> String {
        self.cluster.url(&self.name)
    }
}

/// Creates an empty database on the shared cluster.
pub fn database() -> TestDb {
    database_on(cluster())
}

/// Creates an empty database on `cluster`.
pub fn database_on(cluster: Arc<Cluster>) -> TestDb {
    let name = format!("t_{}", NEXT_DB.fetch_add(1, Ordering::Relaxed));
    let mut admin = postgres::Client::connect(&cluster.url("postgres"), postgres::NoTls)
        .expect("connect to the throw-away cluster");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create a test database");
    TestDb { cluster, name }
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free TCP port")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}
