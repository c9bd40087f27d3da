//! The CI recipe end to end (docs/ci.md): separate processes of a test suite record into one
//! directory with `LOCKCHECK_TRACE=<dir>/{pid}.json`; each takes one lock order, so no process
//! alone has an inversion, and only `lockcheck analyze <dir>` over the merged traces finds it.
//!
//! The processes are this test binary itself, re-run with `LOCKCHECK_CI_ORDER=ab|ba` (as nextest
//! runs every test in its own process), and, when cargo has built it, `examples/ci_order.rs`.

mod common;

#[path = "support/scratch.rs"]
mod scratch;

use common::lockcheck;
use lockcheck::Mutex;
use scratch::Scratch;
use std::path::{Path, PathBuf};
use std::process::Command;

/// In a child process (`LOCKCHECK_CI_ORDER` set): take `accounts` and `ledger` in that order.
/// In a normal run: nothing.
#[test]
fn child_takes_one_order() {
    let Ok(order) = std::env::var("LOCKCHECK_CI_ORDER") else {
        return;
    };
    let accounts = Mutex::named("accounts", 0u64);
    let ledger = Mutex::named("ledger", 0u64);
    if order == "ab" {
        let _a = accounts.lock();
        let _l = ledger.lock();
    } else {
        let _l = ledger.lock();
        let _a = accounts.lock();
    }
}

/// `target/lockcheck` in a new scratch directory, which goes when the returned guard is dropped.
fn trace_dir(name: &str) -> (Scratch, PathBuf) {
    let root = Scratch::new(&format!("merge-{name}"));
    let dir = root.join("target/lockcheck");
    std::fs::create_dir_all(&dir).unwrap();
    (root, dir)
}

fn run_child(program: &Path, args: &[&str], env: &[(&str, &str)], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .env("LOCKCHECK_TRACE", dir.join("{pid}.json"))
        .env_remove("LOCKCHECK")
        .output()
        .expect("the child runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{program:?} {args:?}: {stderr}");
    stderr
}

fn analyze(paths: &[&Path]) -> common::Run {
    let mut args: Vec<std::ffi::OsString> =
        vec!["analyze".into(), "--format".into(), "json".into()];
    args.extend(paths.iter().map(|p| p.as_os_str().to_owned()));
    lockcheck(args)
}

fn traces(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn assert_only_the_merge_finds_it(dir: &Path) {
    let files = traces(dir);
    assert_eq!(files.len(), 2, "one trace per process: {files:?}");
    for f in &files {
        let run = analyze(&[f]);
        assert_eq!(run.code, Some(0), "{} alone: {}", f.display(), run.stdout);
    }
    let run = analyze(&[dir]);
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(r["summary"]["traces"], 2);
    assert_eq!(r["violations"].as_array().unwrap().len(), 1, "{r}");
    let v = &r["violations"][0];
    assert_eq!(v["rule"], "lockcheck/class-lock-order-inversion");
    let mut classes: Vec<&str> = v["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["class"].as_str().unwrap())
        .collect();
    classes.sort();
    assert_eq!(classes, ["accounts", "ledger"]);
    // The two edges come from the two processes.
    let threads: Vec<&str> = v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["thread"].as_str().unwrap())
        .collect();
    assert_ne!(threads[0], threads[1], "{threads:?}");
}

#[test]
fn two_test_processes_each_with_one_order_are_an_inversion_only_together() {
    let (_scratch, dir) = trace_dir("tests");
    let me = std::env::current_exe().unwrap();
    for order in ["ab", "ba"] {
        run_child(
            &me,
            &["--exact", "child_takes_one_order", "--nocapture"],
            &[("LOCKCHECK_CI_ORDER", order)],
            &dir,
        );
    }
    assert_only_the_merge_finds_it(&dir);
}

#[test]
fn two_runs_of_the_ci_order_example_are_an_inversion_only_together() {
    // `cargo test` builds the examples; a filtered run (`cargo test --test cli_merge`) does not.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_lockcheck"));
    let example = bin
        .parent()
        .unwrap()
        .join("examples")
        .join(format!("ci_order{}", std::env::consts::EXE_SUFFIX));
    if !example.exists() {
        eprintln!(
            "NOTICE: {} is not built (cargo test without target filters builds it): skipped",
            example.display()
        );
        return;
    }
    let (_scratch, dir) = trace_dir("example");
    run_child(&example, &["ab"], &[], &dir);
    run_child(&example, &["ba"], &[], &dir);
    assert_only_the_merge_finds_it(&dir);
}

#[test]
fn suggested_timeouts_are_a_policy_file_the_runtime_loads() {
    let (_scratch, dir) = trace_dir("policy");
    let me = std::env::current_exe().unwrap();
    for order in ["ab", "ba"] {
        run_child(
            &me,
            &["--exact", "child_takes_one_order", "--nocapture"],
            &[("LOCKCHECK_CI_ORDER", order)],
            &dir,
        );
    }
    let policy = dir.parent().unwrap().join("lockcheck-timeouts.toml");
    let run = lockcheck([
        "analyze".as_ref(),
        "--timeouts-toml".as_ref(),
        policy.as_os_str(),
        dir.as_os_str(),
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let text = std::fs::read_to_string(&policy).unwrap();
    // It is TOML, with a [wait_timeout] table of "class" = "NNms".
    let table: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
    let wt = table["wait_timeout"].as_table().expect("[wait_timeout]");
    let mut keys: Vec<&str> = wt.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["accounts", "ledger"], "{text}");
    for v in wt.values() {
        let s = v.as_str().unwrap();
        let ms: u64 = s.strip_suffix("ms").unwrap().parse().unwrap();
        assert!(ms >= 10, "the 10 ms floor: {s}");
    }
    // A comment per class with the reasoning.
    assert!(text.contains("# accounts: "), "{text}");
    // The floor, or (hold times from the coarse clock, the recorder's default) two steps of its
    // resolution above the longest hold, which exceeds the floor where a step is 10 ms (HZ=100)
    // or when a short hold happened to cover a tick.
    assert!(
        text.contains("(the floor)") || text.contains("(2 × (max hold + resolution))"),
        "{text}"
    );
    // The runtime reads it: directly ...
    assert_eq!(lockcheck::watchdog::load_policy_file(&policy), Ok(2));
    // ... and through LOCKCHECK_POLICY, without complaint.
    let stderr = run_child(
        &me,
        &["--exact", "child_takes_one_order", "--nocapture"],
        &[
            ("LOCKCHECK_CI_ORDER", "ab"),
            ("LOCKCHECK_POLICY", policy.to_str().unwrap()),
        ],
        &trace_dir("policy-check").1,
    );
    assert!(!stderr.contains("LOCKCHECK_POLICY"), "{stderr}");
}
