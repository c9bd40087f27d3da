//! Offline equals runtime: for every program whose run reports a finding, `lockcheck analyze` on
//! the trace of that very run reports the same finding (kind and locks), under `LOCKCHECK=panic`
//! (where the runtime stops the deciding acquisition with a panic) and `LOCKCHECK=warn`.
//!
//! The programs are every example of `examples/` that uses lockcheck, and every scenario of
//! `examples/scenarios.rs` (the runtime detector's scenarios, each with its look-alike, which must
//! stay silent on both sides). Each runs as a child process under a timeout, with
//! `LOCKCHECK_TRACE` set; the runtime's findings are read from its reports on stderr, the
//! analyzer's from `--format json`.
//!
//! The examples are built by `cargo build --examples`, run here once.

#[path = "support/oer.rs"]
mod oer;

#[path = "support/scratch.rs"]
mod scratch;

use oer::{offline_findings, runtime_findings, Finding};
use scratch::Scratch;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory of the example binaries, built once.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_lockcheck"));
        let dir = bin.parent().unwrap().join("examples");
        // Always: cargo knows whether the examples are up to date with the library.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--examples"]);
        // The profile of this test binary (its directory is the profile's).
        if dir
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "release")
        {
            cmd.arg("--release");
        }
        let status = cmd.current_dir(root()).status().expect("cargo runs");
        assert!(status.success(), "cargo build --examples failed");
        dir
    })
}

/// One program run: what each side found.
struct Outcome {
    what: String,
    /// With the runtime's kinds.
    runtime_raw: BTreeSet<Finding>,
    /// With the analyzer's kinds.
    runtime: BTreeSet<Finding>,
    offline: BTreeSet<Finding>,
    stderr: String,
    report: serde_json::Value,
    /// The run's trace, kept (with its path printed) if the test fails while it is alive.
    _scratch: Scratch,
}

impl Outcome {
    fn explain(&self) -> String {
        format!(
            "{}:\n  runtime: {:?}\n  offline: {:?}\n--- stderr:\n{}\n--- report warnings: {}",
            self.what, self.runtime, self.offline, self.stderr, self.report["warnings"]
        )
    }
}

/// Runs one program; `backtraces` off saves seconds of symbol resolution per report (the examples
/// keep them on, so that path is covered too).
/// `analyze`: further arguments of `lockcheck analyze`.
fn run(
    exe: &Path,
    args: &[&str],
    mode: &str,
    tag: &str,
    backtraces: bool,
    analyze: &[&str],
) -> Outcome {
    let dir = Scratch::new("oer");
    let name = format!("{tag}-{mode}");
    let trace = dir.join(format!("{name}.{}", oer::trace_ext(&name)));
    let mut cmd = Command::new(exe);
    cmd.args(args);
    // (Generous: the report's own flush, resolving backtraces, can take seconds on a busy
    // machine, and the scenarios give up by themselves 2 s after a report.)
    let stderr = oer::run_traced(
        cmd,
        mode,
        backtraces,
        &trace,
        Duration::from_secs(120),
        Some(Duration::from_secs(10)),
    );
    assert!(
        trace.exists(),
        "{tag} ({mode}) left no trace; stderr:\n{stderr}"
    );
    let (offline, report) = offline_findings(&trace, analyze);
    let runtime_raw = runtime_findings(&stderr);
    Outcome {
        what: format!(
            "{tag} under LOCKCHECK={mode}, recorded to {}",
            trace.display()
        ),
        runtime: oer::as_offline(&runtime_raw),
        runtime_raw,
        offline,
        stderr,
        report,
        _scratch: dir,
    }
}

/// Runs `jobs` on a few workers (the children mostly wait), results in the order of `jobs`.
fn in_parallel(jobs: Vec<Box<dyn FnOnce() -> Outcome + Send>>) -> Vec<Outcome> {
    let n = jobs.len();
    let queue = std::sync::Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let results = std::sync::Mutex::new((0..n).map(|_| None).collect::<Vec<Option<Outcome>>>());
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| loop {
                let Some((i, job)) = queue.lock().unwrap().pop() else {
                    return;
                };
                let o = job();
                results.lock().unwrap()[i] = Some(o);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|o| o.expect("every job ran"))
        .collect()
}

/// The rule: every runtime finding is an offline finding with the same kind and locks.
fn assert_offline_has_runtime(o: &Outcome) {
    for f in &o.runtime {
        assert!(
            o.offline.contains(f),
            "missed offline: {f:?}\n{}",
            o.explain()
        );
    }
}

/// Whether the runtime checks in this build (instrumentation is compiled out of release builds
/// unless the `instrument` feature is on): without it there is nothing to compare.
fn instrumented() -> bool {
    if !lockcheck::ENABLED {
        eprintln!("NOTICE: lockcheck's instrumentation is compiled out of this build: skipped");
    }
    lockcheck::ENABLED
}

#[test]
fn every_scenario_reports_the_same_findings_offline_in_both_modes() {
    if !instrumented() {
        return;
    }
    let exe = examples_dir().join(format!("scenarios{}", std::env::consts::EXE_SUFFIX));
    let list = Command::new(&exe).arg("list").output().expect("runs");
    let list = String::from_utf8(list.stdout).unwrap();
    // `name expectation [condvar]`: the last, a scenario run with the opt-in condvar rule on,
    // analyzed with `--condvar`.
    let condvar: BTreeSet<String> = list
        .lines()
        .filter(|l| l.split(' ').nth(2) == Some("condvar"))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    let scenarios: Vec<(String, String)> = list
        .lines()
        .map(|l| {
            let mut w = l.split(' ');
            let (n, k) = (w.next().unwrap(), w.next().unwrap());
            (n.to_string(), k.to_string())
        })
        .collect();
    assert!(scenarios.len() >= 20, "{list}");
    // Each on a worker thread, and the self-deadlocks and one inversion also on the main thread
    // (under `panic` the process then ends through the panic).
    let mut runs: Vec<(String, String, bool)> = Vec::new();
    for (name, expect) in &scenarios {
        runs.push((name.clone(), expect.clone(), false));
        if expect == "self-deadlock" || expect == "recursive-read" || name == "ab-ba" {
            runs.push((name.clone(), expect.clone(), true));
        }
    }
    let mut jobs: Vec<Box<dyn FnOnce() -> Outcome + Send>> = Vec::new();
    for (name, _, main) in &runs {
        for mode in ["panic", "warn"] {
            let (exe, name, main) = (exe.clone(), name.clone(), *main);
            let analyze: &'static [&'static str] = if condvar.contains(&name) {
                &["--condvar"]
            } else {
                &[]
            };
            jobs.push(Box::new(move || {
                if main {
                    run(
                        &exe,
                        &[&name, "--main"],
                        mode,
                        &format!("{name}-main"),
                        false,
                        analyze,
                    )
                } else {
                    run(&exe, &[&name], mode, &name, false, analyze)
                }
            }));
        }
    }
    let outcomes = in_parallel(jobs);
    // Each outcome checked on its own: a passing one is dropped at once (its trace removed), a
    // failing one kept until the end, so that only the failures' traces stay behind (a scratch
    // directory is kept when dropped during a panic: every scenario's, before, some of them
    // gigabytes), and every failure is shown, not the first.
    let mut failed: Vec<(String, Outcome)> = Vec::new();
    for (o, (name, expect, _)) in outcomes.into_iter().zip(runs.iter().flat_map(|r| [r, r])) {
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let o = &o;
            assert!(o.what.starts_with(name.as_str()));
            // The trace is balanced: no release of a lock the trace does not show held.
            let warnings = o.report["warnings"].to_string();
            assert!(!warnings.contains("not held"), "{}", o.explain());
            assert!(!warnings.contains("another thread"), "{}", o.explain());
            if let Some(kind) = expect.strip_suffix('?') {
                assert_offline_has_runtime(o);
                assert!(
                    o.offline.iter().any(|(k, _)| k == kind),
                    "expected a {kind} offline: {}",
                    o.explain()
                );
                return;
            }
            if expect == "-" {
                assert!(o.runtime.is_empty(), "look-alike reported: {}", o.explain());
                assert!(o.offline.is_empty(), "look-alike reported: {}", o.explain());
                return;
            }
            assert!(
                !o.runtime.is_empty(),
                "the runtime found nothing: {}",
                o.explain()
            );
            assert!(
                o.runtime_raw.iter().any(|(k, _)| k == expect),
                "expected a {expect} report: {}",
                o.explain()
            );
            assert_offline_has_runtime(o);
            // Nothing else either: the same bug, the same findings.
            assert_eq!(o.offline, o.runtime, "{}", o.explain());
        }));
        if let Err(e) = checked {
            let message = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push((message, o));
        }
    }
    let messages: Vec<&str> = failed.iter().map(|(m, _)| m.as_str()).collect();
    assert!(
        failed.is_empty(),
        "{} of the runs failed:\n\n{}",
        failed.len(),
        messages.join("\n\n")
    );
}

#[test]
fn every_example_reports_the_same_findings_offline_in_both_modes() {
    if !instrumented() {
        return;
    }
    let dir = examples_dir();
    let mut names: Vec<String> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let stem = p.file_stem()?.to_str()?.to_string();
            let src = std::fs::read_to_string(&p).ok()?;
            // Programs that use lockcheck's locks (not `gen_trace`, which writes a synthetic
            // trace; not `scenarios`, which the other test runs one by one).
            (p.extension()? == "rs" && src.contains("use lockcheck::") && stem != "scenarios")
                .then_some(stem)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    let mut jobs: Vec<Box<dyn FnOnce() -> Outcome + Send>> = Vec::new();
    for name in &names {
        for mode in ["panic", "warn"] {
            let exe = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
            let name = name.clone();
            jobs.push(Box::new(move || run(&exe, &[], mode, &name, true, &[])));
        }
    }
    let outcomes = in_parallel(jobs);
    let mut reported = 0;
    for o in &outcomes {
        assert_offline_has_runtime(o);
        if o.runtime.is_empty() {
            assert!(o.offline.is_empty(), "{}", o.explain());
        } else {
            reported += 1;
        }
    }
    assert!(reported >= 4, "the examples' bugs were not reported");
}

#[test]
fn report_parsing_reads_kind_and_classes() {
    let stderr = "lockcheck: self-deadlock: thread `w` acquires a lock it already holds\n  acquiring Mutex `m.x` #3 (exclusive) at a.rs:1:1\n  already held (exclusive) since a.rs:1:2\n\nthread 'w' panicked at a.rs:1:1:\nlockcheck: self-deadlock: thread `w` acquires a lock it already holds, at a.rs:1:1 (report above; LOCKCHECK=warn reports and goes on)\nlockcheck: lock order inversion (possible deadlock): 2 locks, 2 threads\n  L1 = Mutex `a` #1\n  L2 = RwLock `b` #2\n\n  thread `t` is acquiring L2 (RwLock `b` #2) at x\n";
    let f = oer::as_offline(&runtime_findings(stderr));
    let want: BTreeSet<Finding> = [
        ("self-deadlock".to_string(), ["m.x".to_string()].into()),
        (
            "lock-order-inversion".to_string(),
            ["a".to_string(), "b".to_string()].into(),
        ),
    ]
    .into();
    assert_eq!(f, want);
}
