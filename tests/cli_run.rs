//! `lockcheck run -- <command>`: the CI gate in one command, on a real crate.
//!
//! `fixtures/run-crate` is copied to a temporary directory (its `lockcheck` path dependency pointed
//! at this repository) and tested with `lockcheck run -- cargo test`: with the injected inversion
//! (`FIXTURE_INVERT`, taken by two test binaries, so by two processes) the run fails with the report
//! and writes SARIF and HTML; without it the run passes; a failing test without violations still
//! fails with cargo's code. With cargo-nextest installed, the same with one process per test. The
//! fixture builds into one shared target directory under this workspace's `target/`, so only the
//! first run compiles lockcheck. Commands that need no build (`true`, `sh`) check the exit code
//! table and the "no trace" error.

mod common;

#[path = "support/scratch.rs"]
mod scratch;

use common::root;
use scratch::Scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One run of `lockcheck`, bounded by a timeout.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn lockcheck_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lockcheck"))
        .args(args)
        .current_dir(dir)
        .env_remove("LOCKCHECK_TRACE")
        .env_remove("LOCKCHECK")
        .env_remove("FIXTURE_INVERT")
        .env_remove("FIXTURE_FAIL")
        .envs(env.iter().copied())
        .env("CARGO_TARGET_DIR", fixture_target())
        .env("CARGO_TERM_COLOR", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lockcheck starts");
    // Drain both pipes in threads so that a chatty cargo cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(900) {
            child.kill().ok();
            panic!("lockcheck run did not finish in 900 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        code: status.code(),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// The fixture crates' shared target directory (builds of lockcheck are reused across tests).
fn fixture_target() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root("target"));
    let base = if base.is_absolute() {
        base
    } else {
        root("").join(base)
    };
    base.join("lockcheck-run-fixture")
}

fn tmpdir(name: &str) -> Scratch {
    Scratch::new(&format!("run-{name}"))
}

/// A copy of `fixtures/run-crate` beside the shared target directory, depending on this
/// repository's lockcheck, with this workspace's lock file (so that cargo resolves the same
/// versions without the network). One copy at one path for every test, made once per test
/// process and rewritten only when it changed, so that cargo rebuilds nothing it already built.
fn fixture_crate() -> PathBuf {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let src = root("fixtures/run-crate");
        let dst = fixture_target().join("crate");
        // Atomically (a temporary file renamed over it): another test process (nextest runs one
        // per test) may be running cargo on the copy right now.
        let write = |path: PathBuf, bytes: Vec<u8>| {
            if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                std::fs::write(&tmp, bytes).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
            }
        };
        for sub in ["src", "tests"] {
            for entry in std::fs::read_dir(src.join(sub)).unwrap() {
                let entry = entry.unwrap();
                write(
                    dst.join(sub).join(entry.file_name()),
                    std::fs::read(entry.path()).unwrap(),
                );
            }
        }
        let manifest = std::fs::read_to_string(src.join("Cargo.toml")).unwrap();
        let lockcheck = root("crates/lockcheck");
        let manifest = manifest.replace(
            "path = \"../../crates/lockcheck\"",
            &format!("path = {:?}", lockcheck.display().to_string()),
        );
        assert!(manifest.contains(&lockcheck.display().to_string()));
        write(dst.join("Cargo.toml"), manifest.into_bytes());
        // (cargo prunes it to the fixture's packages; a rewrite does not rebuild anything.)
        write(
            dst.join("Cargo.lock"),
            std::fs::read(root("Cargo.lock")).unwrap(),
        );
        dst
    })
    .clone()
}

/// The text report names the inversion between the two classes (in either order).
fn names_the_inversion(stdout: &str) -> bool {
    stdout.lines().any(|l| {
        l.contains("lock-order inversion between") && l.contains("accounts") && l.contains("ledger")
    })
}

fn show(run: &Run) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        run.code, run.stdout, run.stderr
    )
}

#[test]
fn an_inversion_across_test_binaries_fails_the_run_with_the_report_sarif_and_html() {
    let dir = tmpdir("inversion");
    let krate = fixture_crate();
    let sarif = dir.join("out/lockcheck.sarif");
    let html = dir.join("out/lockcheck.html");
    let json = dir.join("out/lockcheck.json");
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let run = lockcheck_in(
        &krate,
        &[
            "run",
            "--sarif",
            sarif.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            "--",
            "cargo",
            "test",
        ],
        &[("FIXTURE_INVERT", "1")],
    );
    assert_eq!(run.code, Some(1), "{}", show(&run));
    // The tests passed (cargo's own output is forwarded) ...
    assert!(run.stdout.contains("test result: ok"), "{}", show(&run));
    // ... and the report names the inversion between the two processes' orders.
    assert!(names_the_inversion(&run.stdout), "{}", show(&run));
    assert!(run.stdout.contains("*** DEADLOCK ***"), "{}", show(&run));
    // One trace per test binary (post, audit; the lib's unit tests and doc tests take no lock).
    assert!(run.stderr.contains("analyzing 2 traces"), "{}", show(&run));
    assert!(
        run.stderr.contains("exit code 1 (violations)"),
        "{}",
        show(&run)
    );

    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).expect("SARIF written")).unwrap();
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{log:#}");
    assert!(
        results[0]["ruleId"]
            .as_str()
            .unwrap()
            .contains("lock-order-inversion"),
        "{log:#}"
    );
    let uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
        ["uri"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(uri.ends_with("src/lib.rs"), "{uri}");
    let page = std::fs::read_to_string(&html).expect("HTML written");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("accounts") && page.contains("ledger"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written")).unwrap();
    assert_eq!(report["summary"]["violations"], 1);
    assert_eq!(report["summary"]["traces"], 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_clean_crate_passes_and_a_failing_test_without_violations_still_fails() {
    let dir = tmpdir("clean");
    let krate = fixture_crate();
    let traces = dir.join("traces");
    let run = lockcheck_in(
        &krate,
        &[
            "run",
            "--trace-dir",
            traces.to_str().unwrap(),
            "--",
            "cargo",
            "test",
        ],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", show(&run));
    assert!(
        run.stdout.contains("lockcheck: 0 violations"),
        "{}",
        show(&run)
    );
    // --trace-dir keeps the traces: one per test binary that took a lock.
    let kept = std::fs::read_dir(&traces).unwrap().count();
    assert_eq!(kept, 2, "{}", show(&run));
    // A non-empty trace directory is refused: its old traces would be merged.
    let again = lockcheck_in(
        &krate,
        &["run", "--trace-dir", traces.to_str().unwrap(), "--", "true"],
        &[],
    );
    assert_eq!(again.code, Some(2), "{}", show(&again));
    assert!(again.stderr.contains("not empty"), "{}", show(&again));

    // A failing test, no violation: cargo's exit code (101), and the report still printed.
    let run = lockcheck_in(
        &krate,
        &["run", "--", "cargo", "test"],
        &[("FIXTURE_FAIL", "1")],
    );
    assert_eq!(run.code, Some(101), "{}", show(&run));
    assert!(
        run.stdout.contains("lockcheck: 0 violations"),
        "{}",
        show(&run)
    );
    assert!(
        run.stderr.contains("exit code 101 (the command failed)"),
        "{}",
        show(&run)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn nextest_runs_one_process_per_test_and_the_inversion_is_found() {
    let probe = Command::new("cargo")
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!(
            "NOTICE: cargo-nextest is not installed: the nextest run of `lockcheck run` is skipped"
        );
        return;
    }
    let krate = fixture_crate();
    let run = lockcheck_in(
        &krate,
        &["run", "--", "cargo", "nextest", "run", "--no-fail-fast"],
        &[("FIXTURE_INVERT", "1")],
    );
    assert_eq!(run.code, Some(1), "{}", show(&run));
    assert!(names_the_inversion(&run.stdout), "{}", show(&run));
    // One process per test: posting_credits, audit_balances (fails_when_asked takes no lock).
    assert!(run.stderr.contains("analyzing 2 traces"), "{}", show(&run));
}

#[test]
fn a_command_that_records_nothing_fails_loudly() {
    let dir = tmpdir("none");
    let run = lockcheck_in(&dir, &["run", "--", "true"], &[]);
    assert_eq!(run.code, Some(4), "{}", show(&run));
    assert!(run.stderr.contains("NO lock trace"), "{}", show(&run));
    // The command's own failure wins over "nothing recorded".
    let run = lockcheck_in(&dir, &["run", "--", "sh", "-c", "exit 7"], &[]);
    assert_eq!(run.code, Some(7), "{}", show(&run));
    assert!(run.stderr.contains("NO lock trace"), "{}", show(&run));
    // A command that cannot start is a usage error.
    let run = lockcheck_in(&dir, &["run", "--", "./no-such-command"], &[]);
    assert_eq!(run.code, Some(2), "{}", show(&run));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_command_sees_the_trace_path_and_warn_unless_lockcheck_is_set() {
    let dir = tmpdir("env");
    let probe = "printf '%s|%s' \"$LOCKCHECK_TRACE\" \"$LOCKCHECK\"";
    let run = lockcheck_in(&dir, &["run", "--", "sh", "-c", probe], &[]);
    let (trace, action) = run.stdout.split_once('|').expect("the probe printed");
    assert!(Path::new(trace).is_absolute(), "{trace}");
    assert!(trace.ends_with("/{pid}.json"), "{trace}");
    assert_eq!(action, "warn");
    // The temporary trace directory is removed afterwards.
    assert!(!Path::new(trace).parent().unwrap().exists(), "{trace}");
    let run = lockcheck_in(
        &dir,
        &["run", "--", "sh", "-c", probe],
        &[("LOCKCHECK", "panic")],
    );
    assert!(run.stdout.ends_with("|panic"), "{}", show(&run));
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(unix)]
#[test]
fn a_signal_to_lockcheck_ends_every_process_of_the_command() {
    // The command starts a grandchild in the background that would sleep for a minute (a
    // non-interactive shell starts it with SIGINT ignored); SIGINT or SIGTERM to lockcheck must end
    // both (the whole process group, and what an interrupted command leaves in it), and the run
    // ends with the command's signal code.
    for (signal, number) in [("INT", 2), ("TERM", 15)] {
        let dir = tmpdir(&format!("signal-{signal}"));
        let pidfile = dir.join("grandchild.pid");
        let script = format!("sleep 60 & echo $! > '{}'; wait", pidfile.display());
        let mut child = Command::new(env!("CARGO_BIN_EXE_lockcheck"))
            .args(["run", "--", "sh", "-c", &script])
            .env_remove("LOCKCHECK_TRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::fs::read_to_string(&pidfile)
            .map(|s| s.trim().is_empty())
            .unwrap_or(true)
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the command did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let grandchild: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                child.kill().ok();
                panic!("lockcheck run did not end after SIG{signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // sh, killed by the signal: 128 + its number.
        assert_eq!(status.code(), Some(128 + number), "SIG{signal}");
        // The grandchild is gone too (a zombie waiting for init counts as gone).
        let gone = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.rsplit(')').next().unwrap_or("").split_whitespace().next() == Some("Z"))
                .unwrap_or(true)
        };
        let start = Instant::now();
        while !gone(grandchild) {
            if start.elapsed() > Duration::from_secs(10) {
                // End it by its pid (this test started it), then fail.
                Command::new("kill")
                    .args(["-KILL", &grandchild.to_string()])
                    .status()
                    .ok();
                panic!("the grandchild {grandchild} outlived the run after SIG{signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// A command that writes 60 copies of a clean trace where `lockcheck run` told it to: enough
/// traces for a progress bar, without building anything.
fn many_traces_script(dir: &Path) -> PathBuf {
    let script = dir.join("many.sh");
    let clean = common::fixture("clean.json");
    std::fs::write(
        &script,
        format!(
            "dir=\"${{LOCKCHECK_TRACE%/*}}\"\nfor i in $(seq 60); do cp '{}' \"$dir/$i.json\"; done\n",
            clean.display()
        ),
    )
    .unwrap();
    script
}

#[test]
fn progress_is_drawn_on_a_terminal_only() {
    let dir = tmpdir("progress");
    let script = many_traces_script(&dir);
    // Not a terminal: no bar.
    let run = lockcheck_in(&dir, &["run", "--", "sh", script.to_str().unwrap()], &[]);
    assert_eq!(run.code, Some(0), "{}", show(&run));
    assert!(run.stderr.contains("analyzing 60 traces"), "{}", show(&run));
    assert!(!run.stderr.contains("reading"), "{}", show(&run));
    // A terminal (util-linux `script` gives the run a pseudo-terminal): the bar is drawn.
    let has_script = Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_script {
        eprintln!("NOTICE: `script` (util-linux) is not installed: the terminal half is skipped");
        return;
    }
    let inner = format!(
        "'{}' run -- sh '{}'",
        env!("CARGO_BIN_EXE_lockcheck"),
        script.display()
    );
    let out = Command::new("timeout")
        .args(["120", "script", "-qec", &inner, "/dev/null"])
        .current_dir(&dir)
        .env_remove("LOCKCHECK_TRACE")
        .stdin(Stdio::null())
        .output()
        .expect("script runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("reading"),
        "no progress bar on a terminal: {text}"
    );
    assert!(
        text.contains("trace 60 of 60") || text.contains("of 60"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_exit_codes_are_documented_in_help_and_docs_ci() {
    let dir = tmpdir("help");
    let help = lockcheck_in(&dir, &["run", "--help"], &[]);
    assert_eq!(help.code, Some(0));
    let docs = std::fs::read_to_string(root("docs/ci.md")).unwrap();
    for code in ["0", "1", "2", "4"] {
        assert!(
            help.stdout.contains(&format!("\n  {code}  ")),
            "--help lacks exit code {code}:\n{}",
            help.stdout
        );
        assert!(
            docs.contains(&format!("\n| {code} | ")),
            "docs/ci.md lacks exit code {code}"
        );
    }
    assert!(help
        .stdout
        .contains("N  the command failed: its own exit code"));
    std::fs::remove_dir_all(&dir).ok();
}
