//! The device's wall clock: the one place the agent reads the time of day it stamps on what it records (movement
//! `at`, decision and status times, the site stock snapshot's age, the date that judges expiry).
//!
//! A handheld's clock is whatever its battery and its last NTP sync left it at: minutes off is normal in a warehouse,
//! and DESIGN §2 makes `at` *device* time on purpose. To let the fleet simulation (`tests/tests/fleet.rs`) run
//! devices whose clocks are skewed, [`now`] is the OS clock plus an offset read once, at first use, from the
//! environment variable [`OFFSET_ENV`] (`DOCKHAND_CLOCK_OFFSET_SECS`, whole seconds, may be negative).
//!
//! This is a simulation and test knob, not configuration: it is not a key of `agent.toml`, nothing in production
//! sets it, and a device that needs the right time needs NTP, not this. Unset (or empty), the offset is zero and
//! [`now`] is `OffsetDateTime::now_utc()`. A malformed value makes `dockhand-agent run` refuse to start ([`check_env`]),
//! so a simulation never runs silently unskewed.
//!
//! Left alone on purpose: TLS certificate validity (rustls reads the OS clock itself), timeouts and backoff
//! (monotonic `Instant`s), the gate's smoothing clock ([`crate::gate::Clock`], monotonic), and file-name stamps of
//! quarantined stores, none of which is a record of when something happened in the warehouse.

use std::sync::OnceLock;

use time::{Duration, OffsetDateTime};

/// The environment variable holding the simulated offset in seconds.
pub const OFFSET_ENV: &str = "DOCKHAND_CLOCK_OFFSET_SECS";

/// The largest offset accepted either way: a year (anything further is a typo, not a skewed clock).
pub const MAX_OFFSET_SECS: i64 = 366 * 24 * 3600;

/// Why [`OFFSET_ENV`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OffsetError {
    /// Not a whole number of seconds.
    #[error("{OFFSET_ENV}={0:?} is not a whole number of seconds")]
    NotSeconds(String),
    /// Further than [`MAX_OFFSET_SECS`] either way.
    #[error("{OFFSET_ENV}={0} is more than a year either way")]
    TooFar(i64),
}

/// The offset `value` (the variable's text, if set) asks for.
pub fn parse_offset(value: Option<&str>) -> Result<Duration, OffsetError> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Duration::ZERO);
    };
    let secs: i64 = text
        .parse()
        .map_err(|_| OffsetError::NotSeconds(text.to_string()))?;
    if secs.abs() > MAX_OFFSET_SECS {
        return Err(OffsetError::TooFar(secs));
    }
    Ok(Duration::seconds(secs))
}

/// The process's offset, read from the environment once. A malformed value counts as zero here; [`check_env`]
/// is how a binary refuses it.
pub fn offset() -> Duration {
    static OFFSET: OnceLock<Duration> = OnceLock::new();
    *OFFSET.get_or_init(|| {
        let value = std::env::var(OFFSET_ENV).ok();
        parse_offset(value.as_deref()).unwrap_or(Duration::ZERO)
    })
}

/// Checks [`OFFSET_ENV`] and returns the offset the process will use.
pub fn check_env() -> Result<Duration, OffsetError> {
    let value = std::env::var(OFFSET_ENV).ok();
    parse_offset(value.as_deref())?;
    Ok(offset())
}

/// The device's time now: the OS clock plus [`offset`].
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc() + offset()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_as_whole_seconds_within_a_year() {
        let cases: [(Option<&str>, Result<i64, &str>); 9] = [
            (None, Ok(0)),
            (Some(""), Ok(0)),
            (Some("  "), Ok(0)),
            (Some("600"), Ok(600)),
            (Some(" -437 "), Ok(-437)),
            (Some("31622400"), Ok(MAX_OFFSET_SECS)),
            (Some("31622401"), Err("more than a year")),
            (Some("1.5"), Err("whole number")),
            (Some("ten"), Err("whole number")),
        ];
        for (value, want) in cases {
            match (parse_offset(value), want) {
                (Ok(d), Ok(secs)) => assert_eq!(d.whole_seconds(), secs, "{value:?}"),
                (Err(e), Err(gist)) => assert!(e.to_string().contains(gist), "{value:?}: {e}"),
                (got, want) => panic!("{value:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
