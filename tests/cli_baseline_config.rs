//! Baselines (`--baseline`, `--write-baseline`) and `lockcheck.toml` (`[[suppress]]` with a
//! reason, `[hierarchy]` declared levels), end to end on fixtures.

mod common;

#[path = "support/scratch.rs"]
mod scratch;

use common::{analyze_json, fixture, lockcheck, root, violations, Run};
use scratch::Scratch;
use std::path::Path;
use std::process::Command;

fn tmpdir(name: &str) -> Scratch {
    Scratch::new(name)
}

fn config(name: &str) -> String {
    root("fixtures/json/config")
        .join(name)
        .display()
        .to_string()
}

/// Runs the binary in `dir` (for the default `./lockcheck.toml`).
fn lockcheck_in(dir: &Path, args: &[&std::ffi::OsStr]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_lockcheck"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_written_baseline_accepts_the_current_findings_and_only_those() {
    let dir = tmpdir("baseline");
    let base = dir.join("lockcheck-baseline.json");
    let base_s = base.to_str().unwrap();
    // Writing a baseline accepts everything: exit 0.
    let run = analyze_json(&[fixture("ab-ba.json")], &["--write-baseline", base_s]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    assert_eq!(written["version"], 1);
    assert_eq!(
        written["findings"][0]["rule"],
        "lockcheck/lock-order-inversion"
    );
    let id = written["findings"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(run.json()["violations"][0]["id"], id.as_str());

    // The same finding against the baseline: reported, not failing.
    let run = analyze_json(&[fixture("ab-ba.json")], &["--baseline", base_s]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let r = run.json();
    assert_eq!(violations(&r), 1);
    assert_eq!(r["violations"][0]["baselined"], true);
    assert_eq!(r["summary"]["baselined"], 1);

    // Text says so.
    let text = lockcheck([
        "analyze".as_ref(),
        "--baseline".as_ref(),
        base.as_os_str(),
        fixture("ab-ba.json").as_os_str(),
    ]);
    assert_eq!(text.code, Some(0));
    assert!(!text.stdout.contains("VIOLATION"), "{}", text.stdout);
    assert!(text.stdout.contains("In the baseline"), "{}", text.stdout);
    assert!(
        text.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("lockcheck: 0 violations (+1 in the baseline) in 1 trace"),
        "{}",
        text.stdout
    );

    // A new finding (another inversion) still fails.
    let run = analyze_json(
        &[fixture("three-way-deadlock.json")],
        &["--baseline", base_s],
    );
    assert_eq!(run.code, Some(1));
    assert!(run.json()["violations"][0].get("baselined").is_none());

    // SARIF marks the states.
    let run = lockcheck([
        "analyze".as_ref(),
        "--format".as_ref(),
        "sarif".as_ref(),
        "--baseline".as_ref(),
        base.as_os_str(),
        fixture("ab-ba.json").as_os_str(),
        fixture("three-way-deadlock.json").as_os_str(),
    ]);
    assert_eq!(run.code, Some(1));
    let log: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let mut states: Vec<&str> = log["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["baselineState"].as_str().unwrap())
        .collect();
    states.sort();
    assert_eq!(states, ["new", "unchanged"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bad_baseline_exits_2() {
    let dir = tmpdir("bad-baseline");
    let base = dir.join("b.json");
    std::fs::write(&base, "{\"version\": 9, \"findings\": []}").unwrap();
    let run = analyze_json(
        &[fixture("ab-ba.json")],
        &["--baseline", base.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("unsupported baseline version 9"),
        "{}",
        run.stderr
    );
    let run = analyze_json(
        &[fixture("ab-ba.json")],
        &["--baseline", "no/such/baseline.json"],
    );
    assert_eq!(run.code, Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_suppression_with_its_reason_accepts_a_finding() {
    let run = analyze_json(
        &[fixture("ab-ba.json")],
        &["--config", &config("suppress-abba.toml")],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let r = run.json();
    assert_eq!(violations(&r), 0);
    assert_eq!(r["summary"]["suppressed"], 1);
    assert_eq!(r["suppressed"][0]["entry"], 1);
    assert!(r["suppressed"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("reviewed in #12"));

    // Verbose text shows it as suppressed, with the reason; the summary counts it.
    let run = lockcheck([
        "analyze",
        "-v",
        "--config",
        &config("suppress-abba.toml"),
        fixture("ab-ba.json").to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0));
    assert!(
        run.stdout.contains("Suppressed by lockcheck.toml:"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("suppressed (entry 1): the audit runs before the transfer threads start"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("0 violations, 1 suppressed"),
        "{}",
        run.stdout
    );
    // Not verbose: only counted.
    let run = lockcheck([
        "analyze",
        "--config",
        &config("suppress-abba.toml"),
        fixture("ab-ba.json").to_str().unwrap(),
    ]);
    assert!(!run.stdout.contains("Suppressed by"), "{}", run.stdout);
}

#[test]
fn a_suppression_naming_another_site_accepts_nothing() {
    let run = analyze_json(
        &[fixture("ab-ba.json")],
        &["--config", &config("suppress-other-site.toml")],
    );
    assert_eq!(run.code, Some(1));
    assert_eq!(violations(&run.json()), 1);
}

#[test]
fn lockcheck_toml_in_the_current_directory_is_read_by_default() {
    let dir = tmpdir("default-config");
    std::fs::copy(config("suppress-abba.toml"), dir.join("lockcheck.toml")).unwrap();
    let trace = fixture("ab-ba.json");
    let run = lockcheck_in(&dir, &["analyze".as_ref(), trace.as_os_str()]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let run = lockcheck_in(
        &dir,
        &[
            "analyze".as_ref(),
            "--no-config".as_ref(),
            trace.as_os_str(),
        ],
    );
    assert_eq!(run.code, Some(1));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_suppression_without_a_reason_is_refused() {
    let run = analyze_json(
        &[fixture("ab-ba.json")],
        &["--config", &config("no-reason.toml")],
    );
    assert_eq!(run.code, Some(2));
    let line = run.stderr.trim();
    assert!(line.starts_with("lockcheck: error: "), "{line}");
    assert!(line.contains("no-reason.toml"), "{line}");
    assert!(line.contains("`reason` is required"), "{line}");
}

#[test]
fn a_declared_hierarchy_makes_a_wrong_order_a_violation_without_a_cycle() {
    // clean.json has no cycle: one order only.
    let run = analyze_json(&[fixture("clean.json")], &[]);
    assert_eq!(run.code, Some(0));
    // Declared the other way round, that order is a violation.
    let run = analyze_json(
        &[fixture("hierarchy-sites.json")],
        &["--config", &config("hierarchy.toml")],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let r = run.json();
    // One finding: the blocking acquisition; the try_lock at src/report.rs:8:5 cannot wait.
    assert_eq!(violations(&r), 1, "{r}");
    let v = &r["violations"][0];
    assert_eq!(v["kind"], "hierarchy-violation");
    assert_eq!(v["rule"], "lockcheck/hierarchy-violation");
    assert_eq!(v["locks"][0]["class"], "accounts");
    assert_eq!(v["locks"][1]["class"], "src/ledger.rs:14:20");
    assert_eq!(v["declared_levels"], serde_json::json!([2, 1]));
    assert_eq!(v["edges"][0]["site"], "src/bank.rs:21:9");
    // The text names both levels and the site.
    let run = lockcheck([
        "analyze",
        "--config",
        &config("hierarchy.toml"),
        fixture("hierarchy-sites.json").to_str().unwrap(),
    ]);
    assert!(
        run.stdout.contains(
            "hierarchy violation: src/ledger.rs:14:20 (level 1) acquired while holding accounts (level 2) at src/bank.rs:21:9"
        ),
        "{}",
        run.stdout
    );
    // The order it follows, declared: nothing.
    let run = analyze_json(
        &[fixture("hierarchy-sites.json")],
        &["--config", &config("hierarchy-agrees.toml")],
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
}

#[test]
fn an_inversion_of_two_processes_is_reported_once() {
    // Two test binaries running the same buggy code: one bug, one finding.
    let dir = tmpdir("dedup");
    std::fs::copy(fixture("ab-ba.json"), dir.join("1.json")).unwrap();
    std::fs::copy(fixture("ab-ba.json"), dir.join("2.json")).unwrap();
    let run = analyze_json(&[dir.to_path_buf()], &[]);
    assert_eq!(run.code, Some(1));
    let one = analyze_json(&[fixture("ab-ba.json")], &[]).json();
    let r = run.json();
    assert_eq!(violations(&r), 1, "{r}");
    assert_eq!(r["violations"][0]["id"], one["violations"][0]["id"]);
    std::fs::remove_dir_all(&dir).ok();
}
