//! What the figures were measured on: the machine, the toolchain, the code, and how busy the machine was.
//!
//! Absolute figures from a shared 2-core VM mean little without this; the load average at the start and the end
//! of the run says whether other work competed with the benches (ratios to same-run baselines are what to compare
//! across runs). Everything is read from `/proc` and from `rustc -V` / `git rev-parse`; a value that cannot be read
//! is reported as unknown rather than failing the run.

use std::path::Path;
use std::process::Command;

/// The machine and code a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu: String,
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Total RAM, bytes.
    pub ram_bytes: Option<u64>,
    /// Kernel release.
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
    /// `git rev-parse --short HEAD`, with "+ uncommitted changes" when tracked files differ from it.
    pub commit: String,
}

impl Machine {
    /// Reads the machine description; `root` is the workspace (for git).
    pub fn read(root: &Path) -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let commit = match output(root, "git", &["rev-parse", "--short", "HEAD"]) {
            Some(head) => {
                let dirty = output(
                    root,
                    "git",
                    &["status", "--porcelain", "--untracked-files=no"],
                )
                .is_some_and(|s| !s.is_empty());
                if dirty {
                    format!("{head} + uncommitted changes")
                } else {
                    head
                }
            }
            None => "unknown".into(),
        };
        Machine {
            cpu: cpu_model(&read("/proc/cpuinfo")).unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            ram_bytes: mem_total_bytes(&read("/proc/meminfo")),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            rustc: output(root, "rustc", &["-V"]).unwrap_or_else(|| "unknown".into()),
            commit,
        }
    }
}

/// The 1, 5 and 15 minute load averages now, as `/proc/loadavg` gives them.
pub fn load_average() -> Option<[f64; 3]> {
    parse_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

/// Trimmed stdout of a command that succeeded.
fn output(dir: &Path, program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The first `model name` in a `/proc/cpuinfo` text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_string())
    })
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
pub fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The three load averages of a `/proc/loadavg` text.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(str::parse::<f64>);
    Some([it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?])
}

/// A `VmRSS:`-style field of a `/proc/<pid>/status` text, in bytes.
pub fn status_field_bytes(status: &str, key: &str) -> Option<u64> {
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// `VmRSS` (resident now) or `VmHWM` (peak resident) of a live process, bytes.
pub fn process_memory(pid: u32, key: &str) -> Option<u64> {
    status_field_bytes(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        key,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n",
                Some("AMD EPYC 7B13"),
            ),
            ("processor\t: 0\nCPU part\t: 0xd0c\n", None),
            ("", None),
        ];
        for &(text, want) in cases {
            assert_eq!(cpu_model(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn meminfo() {
        let cases: &[(&str, Option<u64>)] = &[
            (
                "MemTotal:       24684084 kB\nMemFree: 1 kB\n",
                Some(24_684_084 * 1024),
            ),
            ("MemFree: 1 kB\n", None),
            ("MemTotal: lots\n", None),
        ];
        for &(text, want) in cases {
            assert_eq!(mem_total_bytes(text), want, "{text:?}");
        }
    }

    #[test]
    fn loadavg() {
        let cases: &[(&str, Option<[f64; 3]>)] = &[
            ("1.01 1.36 1.58 2/170 12345\n", Some([1.01, 1.36, 1.58])),
            ("1.01 1.36\n", None),
            ("x y z\n", None),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_loadavg(text), want, "{text:?}");
        }
    }

    #[test]
    fn status_fields() {
        let status = "Name:\tdockhand-server\nVmHWM:\t   90112 kB\nVmRSS:\t   55040 kB\n";
        let cases: &[(&str, Option<u64>)] = &[
            ("VmRSS:", Some(55_040 * 1024)),
            ("VmHWM:", Some(90_112 * 1024)),
            ("VmSwap:", None),
        ];
        for &(key, want) in cases {
            assert_eq!(status_field_bytes(status, key), want, "{key}");
        }
    }

    #[test]
    fn this_machine_and_process() {
        let m = Machine::read(Path::new(env!("CARGO_MANIFEST_DIR")));
        assert!(m.cores >= 1);
        assert!(m.rustc.starts_with("rustc "), "{}", m.rustc);
        assert!(process_memory(std::process::id(), "VmRSS:").is_some_and(|b| b > 0));
        assert!(load_average().is_some());
    }
}
