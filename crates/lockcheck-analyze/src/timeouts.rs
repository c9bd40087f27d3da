//! Timeout policies: per lock class, wait and hold distributions and a suggested `try_lock_for`
//! timeout with its reasoning.
//!
//! The rule (documented in `docs/analyze.md`):
//!
//! `timeout = ceil_ms(max(10 × p99 wait, 2 × max wait, 2 × max hold, 10 ms))`
//!
//! - 10 × p99 wait: an order of magnitude above what almost every acquisition waited;
//! - 2 × max wait: never below twice the worst wait seen, so a normal run does not hit it;
//! - 2 × max hold: a waiter that arrives just after the holder took the lock waits for the whole
//!   hold, and behind another waiter for one more: the waits of a trace with little contention
//!   say nothing about that, the holds do;
//! - 10 ms floor: below that, scheduler noise (a preempted holder) alone can fire it.
//!
//! When the trace's hold times come from a coarse clock (the header's `hold_resolution_ns` R > 0,
//! the runtime's default), a hold is known to within R only, so the hold term becomes
//! `2 × (max hold + R)`: never below what a hold written as 0 may have been, and so never below
//! 2 × R. The report says the resolution ([`hold_times_note`]).
//!
//! Flags (each tested on both sides of its threshold):
//! - `long-hold` / `long-wait`: the class's p99 hold (wait) is above [`LONG_NS`] (100 ms), or more
//!   than 10× the median of the timed classes' p99 (with at least 3 timed classes);
//! - `livelock-risk`: the suggestion rests on one outlier: it is set by 2 × the longest wait or
//!   hold, and that longest one is more than [`TAIL_RATIO`]× its p99. A heavy tail seen once is
//!   exceeded by the next unlucky run (a slower machine, more contention), and a timed acquisition
//!   that fails and retries in a loop then livelocks;
//! - `timeouts-fired`: timed acquisitions of the class already failed in the trace.

use crate::hist::Distribution;
use crate::model::Model;
use serde::{Deserialize, Serialize};

/// Above this (100 ms), a p99 wait or hold is flagged as long on its own.
pub const LONG_NS: u64 = 100_000_000;
/// The floor of a suggested timeout (10 ms).
pub const FLOOR_NS: u64 = 10_000_000;
/// A longest wait or hold more than this many times its p99 is a heavy tail (`livelock-risk` when
/// it sets the suggestion). 5 because 10 × p99 wait and 2 × max wait meet there: above it, the
/// worst wait decides.
pub const TAIL_RATIO: u64 = 5;

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

/// What the report says of hold times of resolution `ns` (`None` when precise): "hold times at
/// 4.0ms resolution ...".
pub fn hold_times_note(ns: u64) -> Option<String> {
    (ns > 0).then(|| {
        format!(
            "hold times at {} resolution (a coarse clock: each hold within {} of the truth, their sums right on average; wait times are precise); suggested timeouts allow for it",
            fmt_ns(ns),
            fmt_ns(ns)
        )
    })
}

fn median(mut v: Vec<u64>) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// Computes the rows, for classes with any timing information (a non-zero wait or hold, a
/// `stats` event, or a failed timed acquisition), sorted by class key. Not for thread ends
/// (kind `end`): their hold is the thread's life, no lock's timeout; nor for channels (kind
/// `channel`): their hold is the receiver's ownership.
pub fn suggest(model: &Model) -> Vec<TimeoutRow> {
    use lockcheck_core::trace::LockKind;
    let timed: Vec<_> = model
        .classes
        .iter()
        .filter(|c| {
            !matches!(
                c.kind,
                LockKind::End | LockKind::Channel | LockKind::Barrier
            )
        })
        .filter(|c| {
            c.wait.has_nonzero()
                || c.hold.has_nonzero()
                || c.stats.is_some()
                || c.timed_failures > 0
        })
        .collect();
    let med_wait = median(timed.iter().map(|c| c.wait.quantile(0.99)).collect());
    let med_hold = median(timed.iter().map(|c| c.hold.quantile(0.99)).collect());
    let resolution = model.hold_resolution_ns;
    let hold_term = if resolution > 0 {
        "2 × (max hold + resolution)"
    } else {
        "2 × max hold"
    };
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
            let terms = [
                ("10 × p99 wait", wait.p99_ns.saturating_mul(10)),
                ("2 × max wait", wait.max_ns.saturating_mul(2)),
                (
                    hold_term,
                    hold.max_ns.saturating_add(resolution).saturating_mul(2),
                ),
            ];
            let (chosen, raw) = terms
                .iter()
                .fold(("the floor", FLOOR_NS), |best, &(name, v)| {
                    if v > best.1 {
                        (name, v)
                    } else {
                        best
                    }
                });
            let suggested = raw.div_ceil(1_000_000).saturating_mul(1_000_000);
            let reasoning = format!(
                "max(10 × p99 wait = {}, 2 × max wait = {}, {hold_term} = {}, floor {}) = {} ({chosen}), rounded up to {}",
                fmt_ns(terms[0].1),
                fmt_ns(terms[1].1),
                fmt_ns(terms[2].1),
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
            // A coarse hold's p99 may be a step below the truth (short holds read as 0): the tail
            // is measured against what the p99 may have been.
            let tail = match chosen {
                "2 × max wait" => Some(("wait", wait, 0)),
                _ if chosen == hold_term => Some(("hold", hold, resolution)),
                _ => None,
            };
            if let Some((what, d, step)) = tail {
                if d.max_ns > d.p99_ns.saturating_add(step).saturating_mul(TAIL_RATIO) {
                    flags.push(Flag {
                        kind: "livelock-risk".into(),
                        message: format!(
                            "the suggestion rests on one outlier: the longest {what} ({}) is more than {TAIL_RATIO}× the p99 ({}), and the timeout is only 2× above it; a slower machine or a busier run stretches such a tail, and a timed acquisition that fails and retries then livelocks",
                            fmt_ns(d.max_ns),
                            fmt_ns(d.p99_ns)
                        ),
                    });
                }
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
        "# timeout = ceil_to_ms(max(10 x p99 wait, 2 x max wait, 2 x max hold, 10 ms)); see docs/analyze.md\n# (2 x (max hold + resolution) when the trace's hold times come from a coarse clock).\n",
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
        // Its one wait was 40 ms, but it was held 300 ms: a waiter can wait that long.
        assert_eq!(slow.suggested_timeout_ns, 600_000_000, "{}", slow.reasoning);
        let kinds: Vec<&str> = slow.flags.iter().map(|f| f.kind.as_str()).collect();
        assert!(kinds.contains(&"long-hold"), "{kinds:?}");
    }

    /// A class: its key, its (wait, hold) samples, and its failed timed acquisitions.
    type ClassSpec<'a> = (&'a str, Vec<(u64, u64)>, u64);

    /// A model with one class per entry.
    fn classes(spec: &[ClassSpec<'_>]) -> Vec<TimeoutRow> {
        let mut text = String::new();
        for (i, (key, samples, failures)) in spec.iter().enumerate() {
            let c = i + 1;
            text += &format!("{{\"e\":\"class\",\"c\":{c},\"key\":\"{key}\",\"kind\":\"mutex\"}}\n{{\"e\":\"lock\",\"l\":{c},\"c\":{c}}}\n");
            for &(w, h) in samples {
                text += &format!("{{\"e\":\"acquire\",\"t\":1,\"l\":{c},\"m\":\"w\",\"wait_ns\":{w}}}\n{{\"e\":\"release\",\"t\":1,\"l\":{c},\"hold_ns\":{h}}}\n");
            }
            for _ in 0..*failures {
                text += &format!("{{\"e\":\"fail\",\"t\":1,\"l\":{c},\"m\":\"w\",\"how\":\"timed\",\"wait_ns\":5000000}}\n");
            }
        }
        suggest(&model_of(&[("t", &text)]))
    }

    fn flags(r: &TimeoutRow) -> Vec<&str> {
        r.flags.iter().map(|f| f.kind.as_str()).collect()
    }

    /// 200 samples of `(wait, hold)` and one of `tail`.
    fn dist(body: (u64, u64), tail: (u64, u64)) -> Vec<(u64, u64)> {
        let mut v = vec![body; 200];
        v.push(tail);
        v
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn the_suggestion_covers_the_longest_hold() {
        // The issue's case: waits tiny (no contention in the trace), holds of 645 ms.
        let rows = classes(&[("big", dist((1000, 645 * MS), (1000, 645 * MS)), 0)]);
        assert!(
            rows[0].suggested_timeout_ns >= 2 * 645 * MS,
            "{}",
            rows[0].reasoning
        );
        assert!(
            rows[0].reasoning.contains("(2 × max hold)"),
            "{}",
            rows[0].reasoning
        );
        // Uniform holds: no tail, no livelock risk; long holds are flagged.
        assert_eq!(flags(&rows[0]), ["long-hold"]);
    }

    #[test]
    fn livelock_risk_on_both_sides_of_the_wait_tail_threshold() {
        // p99 wait is exactly the body value when it is a bucket's upper bound.
        let p = 1_015_807;
        // 2 × 40.3 ms is no whole number of milliseconds (the old flag never fired then).
        let rows = classes(&[
            ("at", dist((p, 1000), (TAIL_RATIO * p, 1000)), 0),
            ("above", dist((p, 1000), (TAIL_RATIO * p + 1, 1000)), 0),
            ("odd", dist((p, 1000), (40_300_000, 1000)), 0),
        ]);
        let row = |k: &str| rows.iter().find(|r| r.class == k).unwrap();
        assert_eq!(row("at").wait.p99_ns, p);
        assert!(
            !flags(row("at")).contains(&"livelock-risk"),
            "{:?}",
            row("at")
        );
        assert!(
            flags(row("above")).contains(&"livelock-risk"),
            "{:?}",
            row("above")
        );
        assert!(
            flags(row("odd")).contains(&"livelock-risk"),
            "{:?}",
            row("odd")
        );
        assert_eq!(row("odd").suggested_timeout_ns, 81 * MS);
    }

    #[test]
    fn livelock_risk_on_both_sides_of_the_hold_tail_threshold() {
        let p = 16_252_927; // a bucket's upper bound (about 16 ms)
        let rows = classes(&[
            ("at", dist((0, p), (0, TAIL_RATIO * p)), 0),
            ("above", dist((0, p), (0, TAIL_RATIO * p + 1)), 0),
        ]);
        assert_eq!(rows[1].hold.p99_ns, p);
        assert!(rows[0].reasoning.contains("(2 × max hold)"));
        assert!(!flags(&rows[1]).contains(&"livelock-risk"), "{:?}", rows[1]);
        assert!(flags(&rows[0]).contains(&"livelock-risk"), "{:?}", rows[0]);
    }

    /// [`classes`] for a trace whose header declares hold times of resolution `step`.
    fn coarse_classes(step: u64, spec: &[ClassSpec<'_>]) -> (Model, Vec<TimeoutRow>) {
        let mut text =
            format!("{{\"e\":\"header\",\"version\":1,\"pid\":1,\"hold_resolution_ns\":{step}}}\n");
        for (i, (key, samples, _)) in spec.iter().enumerate() {
            let c = i + 1;
            text += &format!("{{\"e\":\"class\",\"c\":{c},\"key\":\"{key}\",\"kind\":\"mutex\"}}\n{{\"e\":\"lock\",\"l\":{c},\"c\":{c}}}\n");
            for &(w, h) in samples {
                text += &format!("{{\"e\":\"acquire\",\"t\":1,\"l\":{c},\"m\":\"w\",\"wait_ns\":{w}}}\n{{\"e\":\"release\",\"t\":1,\"l\":{c},\"hold_ns\":{h}}}\n");
            }
        }
        let m = model_of(&[("t", &text)]);
        let rows = suggest(&m);
        (m, rows)
    }

    #[test]
    fn coarse_hold_times_never_bring_a_timeout_below_what_their_resolution_supports() {
        // Short holds at a 4 ms step: most read 0, one in a while covers a tick and reads 4 ms.
        let holds = dist((1000, 0), (1000, 4 * MS));
        let (m, rows) = coarse_classes(4 * MS, &[("short", holds.clone(), 0)]);
        assert_eq!(m.hold_resolution_ns, 4 * MS);
        // The 4 ms hold may have been up to 8 ms: 2 × (4 + 4) = 16 ms, not 2 × 4 = 8 (the floor).
        assert_eq!(
            rows[0].suggested_timeout_ns,
            16 * MS,
            "{}",
            rows[0].reasoning
        );
        assert!(
            rows[0].reasoning.contains("(2 × (max hold + resolution))"),
            "{}",
            rows[0].reasoning
        );
        // A p99 of 0 is a step's uncertainty, not a heavy tail.
        assert_eq!(flags(&rows[0]), Vec::<&str>::new(), "{:?}", rows[0].flags);
        // The same holds, precise: the floor, and the old wording.
        let precise = classes(&[("short", holds, 0)]);
        assert_eq!(precise[0].suggested_timeout_ns, FLOOR_NS);
        assert!(!precise[0].reasoning.contains("resolution"));
        // Every hold read as 0 at a 10 ms step (HZ=100): never below 2 steps, above the floor.
        let (_, rows) = coarse_classes(10 * MS, &[("zero", dist((1000, 0), (1000, 0)), 0)]);
        assert_eq!(
            rows[0].suggested_timeout_ns,
            20 * MS,
            "{}",
            rows[0].reasoning
        );
        // A heavy tail is still one when it is far beyond the step.
        let (_, rows) = coarse_classes(4 * MS, &[("tail", dist((0, 4 * MS), (0, 400 * MS)), 0)]);
        assert!(flags(&rows[0]).contains(&"livelock-risk"), "{:?}", rows[0]);
        assert_eq!(rows[0].suggested_timeout_ns, 808 * MS);
    }

    #[test]
    fn the_resolution_is_stated_only_when_hold_times_are_coarse() {
        let note = hold_times_note(4 * MS).unwrap();
        assert!(note.starts_with("hold times at 4.0ms resolution"), "{note}");
        assert_eq!(hold_times_note(0), None);
    }

    #[test]
    fn long_flags_on_both_sides_of_100ms() {
        let rows = classes(&[
            ("a-at", dist((LONG_NS, LONG_NS), (LONG_NS, LONG_NS)), 0),
            (
                "b-above",
                dist((LONG_NS + 1, LONG_NS + 1), (LONG_NS + 1, LONG_NS + 1)),
                0,
            ),
        ]);
        assert_eq!(rows[0].wait.p99_ns, LONG_NS);
        assert_eq!(flags(&rows[0]), Vec::<&str>::new());
        assert!(rows[1].wait.p99_ns > LONG_NS);
        assert_eq!(flags(&rows[1]), ["long-hold", "long-wait"]);
    }

    #[test]
    fn long_flags_on_both_sides_of_10x_the_median_class() {
        // Values below 32 ns are exact in the histogram: p99s of 2, 2 and 20 (or 21) ns, so the
        // median class's p99 is 2 ns and the threshold 20 ns.
        for (v, flagged) in [(20, false), (21, true)] {
            let rows = classes(&[
                ("a", dist((2, 2), (2, 2)), 0),
                ("b", dist((2, 2), (2, 2)), 0),
                ("c", dist((v, v), (v, v)), 0),
            ]);
            assert_eq!(rows[2].wait.p99_ns, v);
            let want: &[&str] = if flagged {
                &["long-hold", "long-wait"]
            } else {
                &[]
            };
            assert_eq!(flags(&rows[2]), want, "{:?}", rows[2]);
            assert_eq!(flags(&rows[0]), Vec::<&str>::new());
        }
        // Fewer than 3 timed classes: no median to compare with.
        let rows = classes(&[
            ("a", dist((2, 2), (2, 2)), 0),
            ("c", dist((21, 21), (21, 21)), 0),
        ]);
        assert_eq!(flags(&rows[1]), Vec::<&str>::new());
    }

    #[test]
    fn timeouts_fired_on_both_sides_of_one_failure() {
        let rows = classes(&[
            ("none", dist((1000, 1000), (1000, 1000)), 0),
            ("one", dist((1000, 1000), (1000, 1000)), 1),
        ]);
        assert!(!flags(&rows[0]).contains(&"timeouts-fired"));
        assert_eq!(flags(&rows[1]), ["timeouts-fired"]);
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
