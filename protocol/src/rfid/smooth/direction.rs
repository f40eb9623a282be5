//! The direction of one finished pass, from what the outside and inside antennas saw of it.
//! The rule is documented on [`Direction`].

use crate::rfid::Millis;
use serde::{Deserialize, Serialize};

/// The direction of a pass through the gate.
///
/// Three signals, each a signed time difference between the two sides scaled by
/// [`direction_scale_ms`](super::SmoothConfig::direction_scale_ms) and clamped to
/// [-1, 1], positive meaning "inbound" (the tag moved from the outside antennas' field to the inside ones'):
///
/// ```text
/// s_first = clamp((first_seen(inside) - first_seen(outside)) / scale)   outside saw it first
/// s_last  = clamp((last_seen(inside)  - last_seen(outside))  / scale)   inside saw it last
/// s_peak  = clamp((peak_at(inside)    - peak_at(outside))    / scale)   outside's RSSI peaked first
/// support = min(1, min(reads(outside), reads(inside)) / min_reads)
/// ```
///
/// `peak_at` is the middle of the time the side's strongest RSSI was seen (a tag parked under an antenna reads
/// at a plateau), and `s_peak` is left out when either side reported no RSSI. Then, in order:
///
/// 1. One side saw no reads: `Unknown`, confidence 0 (nothing to compare; the gate flags it).
/// 2. `s_first` and `s_last` point opposite ways and both by at least half the scale: the tag entered one
///    field first and left through that same field last. It went in and straight back out (or out and back in):
///    `Bounced`, confidence `min(|s_first|, |s_last|) × support`. The gate neither receives nor ships it.
/// 3. Otherwise `score` = the mean of the available signals: `Inbound` if positive, `Outbound` if negative,
///    confidence `|score| × support`; exactly 0 is `Unknown`, confidence 0.
///
/// So three signals agreeing by at least the scale each, with both sides seeing the tag `min_reads` times,
/// give confidence 1; one of three disagreeing fully gives 1/3; a tag seen once by one side gives `1/min_reads`
/// of what it would. The smoother sets no threshold: the gate compares the confidence with its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Outside to inside: a receipt at a dock door.
    Inbound,
    /// Inside to outside: a shipment.
    Outbound,
    /// Entered one side's field and left through the same side: neither a receipt nor a shipment.
    Bounced,
    /// No usable evidence: reads on one side only, or signals that cancel out.
    Unknown,
}

/// What one side of the door (all antennas of one role) saw of a pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Side {
    pub(crate) reads: u32,
    pub(crate) first: Millis,
    pub(crate) last: Millis,
    /// The strongest RSSI and the middle of the time it was seen at.
    pub(crate) peak: Option<(i16, Millis)>,
}

impl Side {
    /// Folds one antenna's view into the side's.
    pub(crate) fn merge(self, other: Side) -> Side {
        Side {
            reads: self.reads.saturating_add(other.reads),
            first: self.first.min(other.first),
            last: self.last.max(other.last),
            peak: match (self.peak, other.peak) {
                (Some(a), Some(b)) => Some(if b.0 > a.0 || (b.0 == a.0 && b.1 < a.1) {
                    b
                } else {
                    a
                }),
                (a, b) => a.or(b),
            },
        }
    }
}

/// Classifies a pass; `min_reads` is at least 1 and `scale_ms` at least 1 (the config checks both).
pub(crate) fn classify(
    outside: Option<Side>,
    inside: Option<Side>,
    scale_ms: Millis,
    min_reads: u32,
) -> (Direction, f32) {
    let (Some(o), Some(i)) = (outside, inside) else {
        return (Direction::Unknown, 0.0);
    };
    let signal = |inside_t: Millis, outside_t: Millis| {
        let d = inside_t as f64 - outside_t as f64;
        (d / scale_ms as f64).clamp(-1.0, 1.0)
    };
    let s_first = signal(i.first, o.first);
    let s_last = signal(i.last, o.last);
    let s_peak = match (i.peak, o.peak) {
        (Some((_, ti)), Some((_, to))) => Some(signal(ti, to)),
        _ => None,
    };
    let support = (f64::from(o.reads.min(i.reads)) / f64::from(min_reads.max(1))).min(1.0);
    let confidence = |x: f64| (x.abs() * support).clamp(0.0, 1.0) as f32;

    if s_first * s_last < 0.0 && s_first.abs() >= 0.5 && s_last.abs() >= 0.5 {
        return (
            Direction::Bounced,
            confidence(s_first.abs().min(s_last.abs())),
        );
    }
    let (sum, n) = match s_peak {
        Some(p) => (s_first + s_last + p, 3.0),
        None => (s_first + s_last, 2.0),
    };
    let score = sum / n;
    if score > 0.0 {
        (Direction::Inbound, confidence(score))
    } else if score < 0.0 {
        (Direction::Outbound, confidence(score))
    } else {
        (Direction::Unknown, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;

    fn side(reads: u32, first: Millis, last: Millis, peak_at: Option<Millis>) -> Option<Side> {
        Some(Side {
            reads,
            first,
            last,
            peak: peak_at.map(|t| (-40, t)),
        })
    }

    #[test]
    fn rule_table() {
        const N: Option<Side> = None;
        // scale 500 ms, min_reads 3. (name, outside, inside, direction, confidence low..=high)
        #[rustfmt::skip]
        type Case = (&'static str, Option<Side>, Option<Side>, Direction, f32, f32);
        let cases: &[Case] = &[
            (
                "clean inbound",
                side(50, 0, 2000, Some(800)),
                side(50, 700, 3000, Some(2000)),
                Inbound,
                1.0,
                1.0,
            ),
            (
                "clean outbound",
                side(50, 700, 3000, Some(2000)),
                side(50, 0, 2000, Some(800)),
                Outbound,
                1.0,
                1.0,
            ),
            (
                "inside only",
                N,
                side(50, 0, 2000, Some(800)),
                Unknown,
                0.0,
                0.0,
            ),
            (
                "outside only",
                side(50, 0, 2000, Some(800)),
                N,
                Unknown,
                0.0,
                0.0,
            ),
            ("nothing", N, N, Unknown, 0.0, 0.0),
            (
                "out-in-out bounce",
                side(50, 0, 3000, Some(1500)),
                side(30, 700, 2300, Some(1500)),
                Bounced,
                1.0,
                1.0,
            ),
            (
                "in-out-in bounce",
                side(30, 700, 2300, Some(1500)),
                side(50, 0, 3000, Some(1500)),
                Bounced,
                1.0,
                1.0,
            ),
            // first-seen says in by 250 ms, last-seen says out by 100 ms: too small to call a bounce.
            (
                "weak conflict",
                side(50, 0, 2100, Some(900)),
                side(50, 250, 2000, Some(1400)),
                Inbound,
                0.43,
                0.44,
            ),
            (
                "peak disagrees",
                side(50, 0, 2000, Some(2000)),
                side(50, 700, 3000, Some(800)),
                Inbound,
                0.33,
                0.34,
            ),
            (
                "no rssi: two signals",
                side(50, 0, 2000, None),
                side(50, 700, 3000, Some(2000)),
                Inbound,
                1.0,
                1.0,
            ),
            (
                "half scale",
                side(50, 0, 2000, None),
                side(50, 250, 2250, None),
                Inbound,
                0.5,
                0.5,
            ),
            (
                "signals cancel",
                side(50, 0, 2000, None),
                side(50, 200, 1800, None),
                Unknown,
                0.0,
                0.0,
            ),
            (
                "one inside read",
                side(50, 0, 2000, Some(800)),
                side(1, 1900, 1900, Some(1900)),
                Inbound,
                0.19,
                0.21,
            ),
            (
                "simultaneous",
                side(50, 0, 2000, Some(900)),
                side(50, 0, 2000, Some(900)),
                Unknown,
                0.0,
                0.0,
            ),
        ];
        for &(name, o, i, want, lo, hi) in cases {
            let (dir, conf) = classify(o, i, 500, 3);
            assert_eq!(dir, want, "{name}");
            assert!(
                (lo..=hi).contains(&conf),
                "{name}: confidence {conf} not in {lo}..={hi}"
            );
        }
    }

    #[test]
    fn merge_keeps_extremes_and_the_strongest_peak() {
        let a = Side {
            reads: 3,
            first: 10,
            last: 50,
            peak: Some((-50, 20)),
        };
        let b = Side {
            reads: 4,
            first: 5,
            last: 40,
            peak: Some((-45, 30)),
        };
        let m = a.merge(b);
        assert_eq!(
            m,
            Side {
                reads: 7,
                first: 5,
                last: 50,
                peak: Some((-45, 30))
            }
        );
        assert_eq!(a.merge(Side { peak: None, ..b }).peak, Some((-50, 20)));
    }
}
