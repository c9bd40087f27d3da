//! Timeout policies: per lock class, wait and hold distributions and a suggested `try_lock_for`
//! timeout with its reasoning.
//!
//! The rule (documented in `docs/analyze.md`):
//!
//! `timeout = ceil_ms(max(10 × p99 wait, 2 × max wait, 10 ms))`
//!
//! - 10 × p99: a timeout an order of magnitude above what almost every acquisition waits;
//! - 2 × max: never below twice the worst wait seen, so a normal run does not hit it;
//! - 10 ms floor: below that, scheduler noise (a preempted holder) alone can fire it.
//!
//! Flags: a class whose p99 hold or p99 wait is above [`LONG_NS`] (100 ms), or more than 10× the
//! median of all timed classes' p99, is flagged. A livelock risk is reported where the suggested
//! timeout is within 2× of the longest observed wait (the heavy-tail case: on a slower machine the
//! timeout would fire in normal operation), and where timed acquisitions already failed in the
//! trace.

use crate::hist::Distribution;
use crate::model::Model;
use serde::{Deserialize, Serialize};

/// Above this (100 ms), a p99 wait or hold is flagged as long on its own.
pub const LONG_NS: u64 = 100_000_000;
/// The floor of a suggested timeout (10 ms).
pub const FLOOR_NS: u64 = 10_000_000;

/// The timeout figures of one class.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TimeoutRow {
    /// Class key.
    pub class: String,
    /// Class kind.
    pub kind: String,
    /// Wait times of acquisitions.
    pub wait: Distribution,
    /// Hold times.
    pub hold: Distribution,
    /// Suggested `try_lock_for` timeout in nanoseconds.
    pub suggested_timeout_ns: u64,
    /// How the suggestion was computed.
    pub reasoning: String,
    /// Observations: `long-hold`, `long-wait`, `livelock-risk`, `timeouts-fired`, each with a sentence.
    pub flags: Vec<Flag>,
}

/// A flag on a class.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// `long-hold`, `long-wait`, `livelock-risk` or `timeouts-fired`.
    pub kind: String,
    /// What was seen.
    pub message: String,
}

/// Formats nanoseconds for humans: `850ns`, `12.3µs`, `4.0ms`, `1.20s`.
pub fn fmt_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{:.1}µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// Computes the rows, for classes with any timing information (a non-zero wait or hold, a
/// `stats` event, or a failed timed acquisition), sorted by class key.
pub fn suggest(model: &Model) -> Vec<TimeoutRow> {
    let timed: Vec<_> = model
        .classes
        .iter()
        .filter(|c| {
            c.wait.has_nonzero()
                || c.hold.has_nonzero()
                || c.stats.is_some()
                || c.timed_failures > 0
        })
        .collect();
    let med_wait = median(timed.iter().map(|c| c.wait.quantile(0.99)).collect());
    let med_hold = median(timed.iter().map(|c| c.hold.quantile(0.99)).collect());
    let mut rows: Vec<TimeoutRow> = timed
        .iter()
        .map(|c| {
            let mut wait = c.wait.summary();
            let mut hold = c.hold.summary();
            if let Some(s) = &c.stats {
                // Stats carry exact maxima even when the trace did not record every event.
                wait.max_ns = wait.max_ns.max(s.wait_max_ns);
                hold.max_ns = hold.max_ns.max(s.hold_max_ns);
                if wait.count == 0 {
                    wait.count = s.acquisitions;
                }
            }
            let a = wait.p99_ns.saturating_mul(10);
            let b = wait.max_ns.saturating_mul(2);
            let raw = a.max(b).max(FLOOR_NS);
            let suggested = raw.div_ceil(1_000_000).saturating_mul(1_000_000);
            let chosen = if raw == FLOOR_NS && a < FLOOR_NS && b < FLOOR_NS {
                "the floor"
            } else if a >= b {
                "10 × p99 wait"
            } else {
                "2 × max wait"
            };
            let reasoning = format!(
                "max(10 × p99 wait = {}, 2 × max wait = {}, floor {}) = {} ({chosen}), rounded up to {}",
                fmt_ns(a),
                fmt_ns(b),
                fmt_ns(FLOOR_NS),
                fmt_ns(raw),
                fmt_ns(suggested)
            );
            let mut flags = Vec::new();
            let mut long = |kind: &str, what: &str, p99: u64, med: u64| {
                if p99 > LONG_NS {
                    flags.push(Flag {
                        kind: kind.into(),
                        message: format!("p99 {what} {} is above {}", fmt_ns(p99), fmt_ns(LONG_NS)),
                    });
                } else if timed.len() >= 3 && med > 0 && p99 > med.saturating_mul(10) {
                    flags.push(Flag {
                        kind: kind.into(),
                        message: format!(
                            "p99 {what} {} is more than 10× the median class's ({})",
                            fmt_ns(p99),
                            fmt_ns(med)
                        ),
                    });
                }
            };
            long("long-hold", "hold", hold.p99_ns, med_hold);
            long("long-wait", "wait", wait.p99_ns, med_wait);
            if wait.max_ns > 0 && suggested <= wait.max_ns.saturating_mul(2) {
                flags.push(Flag {
                    kind: "livelock-risk".into(),
                    message: format!(
                        "the longest wait ({}) is within 2× of the suggested timeout: on a slower machine it would fire in normal operation",
                        fmt_ns(wait.max_ns)
                    ),
                });
            }
            if c.timed_failures > 0 {
                flags.push(Flag {
                    kind: "timeouts-fired".into(),
                    message: format!(
                        "{} timed acquisition(s) already failed in this trace (after up to {}): the timeout in use fires in normal operation",
                        c.timed_failures,
                        fmt_ns(c.timed_failure_wait_max_ns)
                    ),
                });
            }
            TimeoutRow {
                class: c.key.clone(),
                kind: format!("{:?}", c.kind).to_lowercase(),
                wait,
                hold,
                suggested_timeout_ns: suggested,
                reasoning,
                flags,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.class.cmp(&b.class));
    rows
}

/// The suggested timeouts as a `lockcheck.toml` `[wait_timeout]` table (`"class key" = "NNms"`),
/// with a comment per class giving the reasoning and flags, so that
/// `LOCKCHECK_POLICY=<this file>` makes the runtime enforce them.
pub fn to_toml(rows: &[TimeoutRow], traces: u64) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "# Per-class wait timeouts suggested by `lockcheck analyze` from {traces} trace{}.\n",
        if traces == 1 { "" } else { "s" }
    ));
    s.push_str(
        "# timeout = ceil_to_ms(max(10 x p99 wait, 2 x max wait, 10 ms)); see docs/analyze.md.\n",
    );
    s.push_str(
        "# With LOCKCHECK_POLICY=<this file>, a blocking lock() of such a class waits at most\n",
    );
    s.push_str("# that long, then reports a wait-timeout (and panics under LOCKCHECK=panic).\n");
    s.push_str(
        "# Review before committing: a timeout too tight for a slower machine fires in normal\n",
    );
    s.push_str("# operation (see the livelock-risk flags below).\n\n");
    s.push_str("[wait_timeout]\n");
    for r in rows {
        s.push_str(&format!(
            "# {}: {} waits, p99 {}, max {}: {}\n",
            r.class.replace(['\n', '\r'], " "),
            r.wait.count,
            fmt_ns(r.wait.p99_ns),
            fmt_ns(r.wait.max_ns),
            r.reasoning
        ));
        for f in &r.flags {
            s.push_str(&format!(
                "#   [{}] {}\n",
                f.kind,
                f.message.replace(['\n', '\r'], " ")
            ));
        }
        s.push_str(&format!(
            "{} = \"{}ms\"\n",
            toml_key(&r.class),
            r.suggested_timeout_ns.div_ceil(1_000_000)
        ));
    }
    s
}

/// A TOML basic-string key (always quoted: class keys hold `/`, `:` and spaces).
fn toml_key(k: &str) -> String {
    let mut q = String::from("\"");
    for c in k.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => q.push_str(&format!("\\u{:04X}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::model_of;

    #[test]
    fn rule_and_flags() {
        let mut text = String::from(
            r#"{"e":"class","c":1,"key":"fast","kind":"mutex"}
{"e":"class","c":2,"key":"slow","kind":"mutex"}
{"e":"lock","l":1,"c":1}
{"e":"lock","l":2,"c":2}
"#,
        );
        for i in 0..100 {
            text.push_str(&format!(
                "{{\"e\":\"acquire\",\"t\":1,\"l\":1,\"m\":\"w\",\"wait_ns\":{}}}\n{{\"e\":\"release\",\"t\":1,\"l\":1,\"hold_ns\":1000}}\n",
                1000 + i
            ));
        }
        text.push_str(
            "{\"e\":\"acquire\",\"t\":1,\"l\":2,\"m\":\"w\",\"wait_ns\":40000000}\n{\"e\":\"release\",\"t\":1,\"l\":2,\"hold_ns\":300000000}\n",
        );
        let m = model_of(&[("t", &text)]);
        let rows = suggest(&m);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].class, "fast");
        assert_eq!(rows[0].suggested_timeout_ns, FLOOR_NS);
        assert!(rows[0].flags.is_empty(), "{:?}", rows[0].flags);
        let slow = &rows[1];
        assert_eq!(slow.suggested_timeout_ns, 400_000_000, "{}", slow.reasoning);
        let kinds: Vec<&str> = slow.flags.iter().map(|f| f.kind.as_str()).collect();
        assert!(kinds.contains(&"long-hold"), "{kinds:?}");
    }

    #[test]
    fn toml_keys_are_quoted_and_escaped() {
        assert_eq!(toml_key("src/a.rs:1:2"), "\"src/a.rs:1:2\"");
        assert_eq!(toml_key("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000A\"");
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_ns(5), "5ns");
        assert_eq!(fmt_ns(12_300), "12.3µs");
        assert_eq!(fmt_ns(10_000_000), "10.0ms");
        assert_eq!(fmt_ns(1_200_000_000), "1.20s");
    }
}
