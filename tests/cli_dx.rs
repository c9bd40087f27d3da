//! Developer experience: `lockcheck explain`, shell completions, the man page, `--quiet`,
//! colors (`--color`, `NO_COLOR` on a real terminal), no progress bar off a terminal.

mod common;

#[path = "support/scratch.rs"]
mod scratch;

use common::{fixture, lockcheck};
use lockcheck_analyze::report::FILTER_ORDER;
use scratch::{Scratch, ScratchFile};
use std::path::Path;
use std::process::Command;

#[test]
fn explain_knows_every_rule_filter_and_flag() {
    for rule in [
        "lockcheck/lock-order-inversion",
        "lockcheck/class-lock-order-inversion",
        "lockcheck/hierarchy-violation",
    ] {
        let run = lockcheck(["explain", rule]);
        assert_eq!(run.code, Some(0), "{rule}: {}", run.stderr);
        assert!(run.stdout.starts_with(rule), "{}", run.stdout);
        assert!(run.stdout.contains("What it means"), "{}", run.stdout);
        assert!(run.stdout.contains("How to fix it"), "{}", run.stdout);
    }
    for name in
        FILTER_ORDER
            .iter()
            .chain(&["long-hold", "long-wait", "livelock-risk", "timeouts-fired"])
    {
        let run = lockcheck(["explain", name]);
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        assert!(run.stdout.starts_with(name), "{}", run.stdout);
        assert!(run.stdout.contains("What to do"), "{}", run.stdout);
    }
    // Short forms.
    let run = lockcheck(["explain", "lock-order-inversion"]);
    assert!(run.stdout.starts_with("lockcheck/lock-order-inversion"));
    // The list names them all.
    let run = lockcheck(["explain"]);
    assert_eq!(run.code, Some(0));
    for name in FILTER_ORDER {
        assert!(run.stdout.contains(name), "{}", run.stdout);
    }
    assert!(run.stdout.contains("lockcheck/hierarchy-violation"));
    // Unknown: exit 2.
    let run = lockcheck(["explain", "no-such-rule"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("no-such-rule"), "{}", run.stderr);
}

#[test]
fn every_rule_id_in_sarif_is_explained() {
    let run = lockcheck([
        "analyze",
        "--format",
        "sarif",
        fixture("clean.json").to_str().unwrap(),
    ]);
    let log: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    for r in log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
    {
        let id = r["id"].as_str().unwrap();
        assert_eq!(lockcheck(["explain", id]).code, Some(0), "{id}");
    }
}

#[test]
fn completions_for_every_shell_name_the_options() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = lockcheck(["completions", shell]);
        assert_eq!(run.code, Some(0), "{shell}: {}", run.stderr);
        assert!(run.stdout.contains("analyze"), "{shell}");
        assert!(run.stdout.contains("write-baseline"), "{shell}");
    }
    assert_eq!(lockcheck(["completions", "tcsh"]).code, Some(2));
}

#[test]
fn the_man_pages_are_roff() {
    let run = lockcheck(["man"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains(".TH lockcheck 1"), "{}", run.stdout);
    assert!(run.stdout.contains("explain"), "{}", run.stdout);
    let run = lockcheck(["man", "analyze"]);
    assert_eq!(run.code, Some(0));
    assert!(
        run.stdout.contains(".TH lockcheck-analyze 1"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("baseline"), "{}", run.stdout);
    assert_eq!(lockcheck(["man", "nope"]).code, Some(2));
}

#[test]
fn quiet_prints_only_the_failing_findings() {
    let run = lockcheck(["analyze", "-q", fixture("ab-ba.json").to_str().unwrap()]);
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.starts_with("VIOLATION 1 of 1"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("Suggested lock hierarchy"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("lockcheck: 1 violation"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let run = lockcheck([
        "analyze",
        "--quiet",
        fixture("clean.json").to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0));
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    // With -o, no summary on stderr either.
    let out = ScratchFile::new("quiet", "report.json");
    let run = lockcheck([
        "analyze".as_ref(),
        "-q".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        fixture("ab-ba.json").as_os_str(),
    ]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    std::fs::remove_file(&out).ok();
}

#[test]
fn color_flag_forces_or_forbids_escapes() {
    let f = fixture("ab-ba.json");
    let run = lockcheck(["analyze", "--color", "always", f.to_str().unwrap()]);
    assert!(run.stdout.contains("\x1b[1;31mVIOLATION"), "{}", run.stdout);
    let run = lockcheck(["analyze", "--color", "never", f.to_str().unwrap()]);
    assert!(!run.stdout.contains('\x1b'));
    // Not a terminal: none by default.
    let run = lockcheck(["analyze", f.to_str().unwrap()]);
    assert!(!run.stdout.contains('\x1b'));
}

/// Runs `lockcheck <args>` on a pseudo-terminal with util-linux `script`, returning what the
/// terminal showed.
fn on_a_terminal(args: &str, no_color: Option<&str>) -> Option<String> {
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("NOTICE: /usr/bin/script not found: the terminal color checks are skipped");
        return None;
    }
    let mut cmd = Command::new("/usr/bin/script");
    cmd.args(["-q", "-e", "-c"])
        .arg(format!("{} {args}", env!("CARGO_BIN_EXE_lockcheck")))
        .arg("/dev/null")
        .env_remove("NO_COLOR");
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let out = cmd.output().expect("script runs");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn on_a_terminal_colors_follow_no_color() {
    let f = fixture("ab-ba.json");
    let args = format!("analyze {}", f.display());
    let Some(colored) = on_a_terminal(&args, None) else {
        return;
    };
    assert!(colored.contains("\x1b[1;31mVIOLATION"), "{colored}");
    let plain = on_a_terminal(&args, Some("1")).unwrap();
    assert!(plain.contains("VIOLATION 1 of 1"), "{plain}");
    assert!(!plain.contains("\x1b["), "NO_COLOR=1: {plain:?}");
    // An empty NO_COLOR does not count (no-color.org).
    let empty = on_a_terminal(&args, Some("")).unwrap();
    assert!(empty.contains("\x1b[1;31m"), "{empty}");
}

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    // 60 traces: enough files for a bar on a terminal.
    let dir = Scratch::new("progress");
    for i in 0..60 {
        std::fs::copy(fixture("clean.json"), dir.join(format!("{i}.json"))).unwrap();
    }
    let run = lockcheck(["analyze", dir.to_str().unwrap()]);
    assert_eq!(run.code, Some(0));
    assert!(run.stderr.is_empty(), "{:?}", run.stderr);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_github_actions_example_records_analyzes_uploads_and_fails() {
    let yml = std::fs::read_to_string(common::root("examples/ci/github-actions.yml")).unwrap();
    for needed in [
        "lockcheck run --sarif lockcheck.sarif --html lockcheck.html -- cargo nextest run --workspace",
        "github/codeql-action/upload-sarif@",
        "sarif_file: lockcheck.sarif",
        "security-events: write",
        "if: (success() || failure())",
    ] {
        assert!(
            yml.contains(needed),
            "examples/ci/github-actions.yml lacks {needed:?}"
        );
    }
    assert!(!yml.contains('\t'), "YAML has no tabs");
}
