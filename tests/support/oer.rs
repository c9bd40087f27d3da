//! What the offline-equals-runtime tests share: running a program as a child process with
//! `LOCKCHECK_TRACE` set, under a timeout, and reading each side's findings (the runtime's from its
//! reports on stderr, the analyzer's from `lockcheck analyze --format json` on the trace).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One finding: its kind (`lock-order-inversion`, `class-lock-order-inversion`, `self-deadlock`,
/// `recursive-read`, `held-across-await`, and the runtime's `deadlock` before [`as_offline`]),
/// and the class keys of its locks.
pub type Finding = (String, BTreeSet<String>);

/// The trace format a run records in: JSON Lines or `.lct` (version 4, the recorder's raw blocks),
/// half of the runs each, chosen by a hash of the run's name, so that every scenario and mode
/// is covered in one format and the suite as a whole covers both without running twice.
pub fn trace_ext(name: &str) -> &'static str {
    // FNV-1a: a fixed hash (std's `DefaultHasher` may change between releases).
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    if h & 1 == 0 {
        "json"
    } else {
        "lct"
    }
}

/// Runs `cmd` with the mode `mode`, a trace path and backtraces on or off, its stderr to a file
/// beside the trace, killed after `limit`; returns its stderr. With `hang_after_report`, a
/// program still running that long after its first report is killed too: a real deadlock or a
/// self-deadlock under `warn` blocks after the report, and the trace's periodic flush has
/// written what it recorded.
pub fn run_traced(
    mut cmd: Command,
    mode: &str,
    backtraces: bool,
    trace: &Path,
    limit: Duration,
    hang_after_report: Option<Duration>,
) -> String {
    let _ = std::fs::remove_file(trace);
    let err_path = trace.with_extension("stderr");
    let err = std::fs::File::create(&err_path).unwrap();
    let mut child = cmd
        .env("LOCKCHECK", mode)
        .env("LOCKCHECK_TRACE", trace)
        .env_remove("LOCKCHECK_ORDER")
        .env("LOCKCHECK_BACKTRACE", if backtraces { "1" } else { "0" })
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} runs: {e}"));
    let start = Instant::now();
    let mut reported_at: Option<Instant> = None;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if hang_after_report.is_some()
            && reported_at.is_none()
            && std::fs::read_to_string(&err_path).is_ok_and(|e| e.contains("lockcheck: "))
        {
            reported_at = Some(Instant::now());
        }
        let hung = reported_at
            .zip(hang_after_report)
            .is_some_and(|(t, grace)| t.elapsed() > grace);
        if hung || start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read_to_string(&err_path).unwrap()
}

/// The runtime's findings, from its reports on stderr (`lockcheck: <kind>: ...` and the indented
/// lines after it, which name the locks as ``Kind `class` #n``), with the runtime's kind names.
pub fn runtime_findings(stderr: &str) -> BTreeSet<Finding> {
    let mut out = BTreeSet::new();
    let mut lines = stderr.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.starts_with("lockcheck: ") || line.contains("(report above") {
            continue;
        }
        let rest = &line["lockcheck: ".len()..];
        let kind = if rest.starts_with("self-deadlock:") {
            "self-deadlock"
        } else if rest.starts_with("possible self-deadlock (recursive read lock)") {
            "recursive-read"
        } else if rest.starts_with("deadlock:") {
            "deadlock"
        } else if rest.starts_with("held across await:") {
            "held-across-await"
        } else if rest.starts_with("warning: possible lost wakeup:") {
            "condvar-lost-wakeup"
        } else if rest.starts_with("warning: possible deadlock: thread") {
            "condvar-wait-holding-lock"
        } else if rest.starts_with("lock order inversion between lock classes") {
            "class-lock-order-inversion"
        } else if rest.starts_with("lock order inversion") {
            "lock-order-inversion"
        } else {
            continue;
        };
        // The first line names the lock of a held-across-await report.
        let mut classes: BTreeSet<String> = lock_classes(line).into_iter().collect();
        while let Some(next) = lines.peek() {
            if !(next.is_empty() || next.starts_with(' ')) {
                break;
            }
            // Locks a thread holds besides the cycle's (`and also holding ...`) are context,
            // not the finding's locks (the analyzer lists them apart too).
            if !next.trim_start().starts_with("and also holding") {
                classes.extend(lock_classes(next));
            }
            lines.next();
        }
        out.insert((kind.to_string(), classes));
    }
    out
}

/// The analyzer's name for a runtime kind (the analyzer's findings are named by their rule, which
/// tells instance from class level): a real deadlock is a cycle of lock instances to the analyzer,
/// which reports the cycle whether or not this run happened to block on it.
pub fn offline_kind(runtime_kind: &str) -> &str {
    match runtime_kind {
        "deadlock" => "lock-order-inversion",
        k => k,
    }
}

/// `findings` with the analyzer's kind names ([`offline_kind`]). A real deadlock on the locks of
/// a recursive read the run also reported (a reader waiting behind the writer queued between its
/// two reads, which waits for the first: the hazard realized) is that recursive read to the
/// analyzer, whose rule reports it on the trace whether or not the run blocked.
pub fn as_offline(findings: &BTreeSet<Finding>) -> BTreeSet<Finding> {
    findings
        .iter()
        .map(|(k, c)| {
            let realized_reread =
                k == "deadlock" && findings.contains(&("recursive-read".to_string(), c.clone()));
            let kind = if realized_reread {
                "recursive-read"
            } else {
                offline_kind(k)
            };
            (kind.to_string(), c.clone())
        })
        .collect()
}

/// The class keys named as ``Kind `class` #n`` in a report line.
pub fn lock_classes(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(open) = rest.find('`') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('`') else { break };
        let name = &after[..close];
        let tail = &after[close + 1..];
        if tail.starts_with(" #") && tail[2..].starts_with(|c: char| c.is_ascii_digit()) {
            out.push(name.to_string());
        }
        rest = tail;
    }
    out
}

/// The analyzer's findings on `trace` (with `extra` arguments), and its whole JSON report.
pub fn offline_findings(trace: &Path, extra: &[&str]) -> (BTreeSet<Finding>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_lockcheck"))
        // A killed child may have been cut in the middle of a line.
        .args(["analyze", "--format", "json", "--allow-truncated"])
        .args(extra)
        .arg(trace)
        .output()
        .expect("lockcheck runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{}: no JSON report ({e}): {}",
            trace.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let found = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let classes = v["locks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["class"].as_str().unwrap().to_string())
                .collect();
            let rule = v["rule"].as_str().unwrap();
            (rule.trim_start_matches("lockcheck/").to_string(), classes)
        })
        .collect();
    (found, report)
}
