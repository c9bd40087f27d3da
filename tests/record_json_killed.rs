//! A JSON Lines recording is written as `.lct` version 5 while the process runs and turned into
//! JSON Lines when the recording stops (`record::stop`, the exit handler). A process killed first
//! (SIGKILL: no handler runs) leaves the `.lct` bytes under the JSON Lines name, cut at its last
//! complete record: `lockcheck analyze` tells the format by the content and finds what was
//! recorded, with no warning about the format.

#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::Mutex;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trace_file::Scratch;

/// The child: an inversion between two threads (checking off: only the trace sees it), then
/// lock traffic until it is killed.
#[test]
fn child() {
    if std::env::var_os("RECORD_JSON_KILLED_CHILD").is_none() {
        return;
    }
    lockcheck::set_action(lockcheck::Action::Off);
    let a = Arc::new(Mutex::named("killed.a", 0));
    let b = Arc::new(Mutex::named("killed.b", 0));
    let (a2, b2) = (a.clone(), b.clone());
    std::thread::spawn(move || {
        let _a = a.lock();
        let _b = b.lock();
    })
    .join()
    .unwrap();
    std::thread::spawn(move || {
        let _b = b2.lock();
        let _a = a2.lock();
    })
    .join()
    .unwrap();
    // Busy until killed: the background writer appends to the file meanwhile, so the kill
    // lands while the trace grows.
    let c = Mutex::named("killed.c", 0u64);
    eprintln!("ready");
    loop {
        *c.lock() += 1;
    }
}

fn run_child(trace: &std::path::Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env("RECORD_JSON_KILLED_CHILD", "1")
        .env("LOCKCHECK_TRACE", trace)
        .env("LOCKCHECK_BACKTRACE", "0")
        .env_remove("LOCKCHECK")
        .env_remove("LOCKCHECK_TRACE_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_killed_json_lines_recording_leaves_an_lct_trace_that_analyzes() {
    let dir = Scratch::new("json-killed");
    let trace = dir.join("run.jsonl");
    let mut child = run_child(&trace);
    // Wait for "ready" (the inversion recorded), then for the trace to grow past it.
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let start = Instant::now();
    while !String::from_utf8_lossy(&seen).contains("ready") {
        let mut buf = [0u8; 256];
        let n = std::io::Read::read(&mut stderr, &mut buf).unwrap();
        assert!(
            n > 0,
            "the child ended early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the child must not hang"
        );
    }
    let size = || std::fs::metadata(&trace).map_or(0, |m| m.len());
    let first = size();
    while size() <= first + (64 << 10) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the trace must grow"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let bytes = std::fs::read(&trace).unwrap();
    assert!(
        bytes.starts_with(&lockcheck_core::lct::raw::MAGIC_V5),
        "not converted: the .lct bytes under the JSON Lines name"
    );
    assert!(
        std::fs::read_dir(&*dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")),
        "no temporary file (the conversion never started)"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lockcheck"))
        .args([
            "analyze",
            "--no-config",
            "--allow-truncated",
            "--format",
            "json",
        ])
        .arg(&trace)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Exit code 1: a violation found.
    assert_eq!(out.status.code(), Some(1), "{stderr}\n{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let violations = report["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 1, "{stdout}");
    let mut classes: Vec<&str> = violations[0]["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["class"].as_str().unwrap())
        .collect();
    classes.sort();
    assert_eq!(classes, ["killed.a", "killed.b"]);
    // Nothing about the format: at most the cut at the end.
    for w in report["warnings"].as_array().unwrap() {
        let w = w.as_str().unwrap();
        assert!(w.contains("truncated at"), "unexpected warning: {w}");
    }
    assert!(!stderr.contains("format"), "{stderr}");
    // `lockcheck convert` reads it by its content too, and writes JSON Lines.
    let json = dir.join("run.converted.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_lockcheck"))
        .args(["convert", "--allow-truncated"])
        .arg(&trace)
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&json).unwrap();
    assert!(
        text.starts_with("{\"e\":\"header\""),
        "{}",
        &text[..80.min(text.len())]
    );
}

/// The same recording stopped normally (its exit handler) is JSON Lines, whole, with no
/// temporary file left.
#[test]
fn a_json_lines_recording_that_stops_is_json_lines() {
    let dir = Scratch::new("json-stopped");
    let trace = dir.join("run.jsonl");
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["stopping_child", "--exact", "--test-threads=1"])
        .env("RECORD_JSON_STOPPING_CHILD", "1")
        .env("LOCKCHECK_TRACE", &trace)
        .env("LOCKCHECK_BACKTRACE", "0")
        .env_remove("LOCKCHECK")
        .env_remove("LOCKCHECK_TRACE_FORMAT")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(
        text.starts_with("{\"e\":\"header\""),
        "{}",
        &text[..80.min(text.len())]
    );
    for line in text.lines() {
        serde_json::from_str::<lockcheck_core::trace::Event>(line)
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    assert!(text.contains("\"e\":\"stats\""), "statistics at the end");
    let names: Vec<String> = std::fs::read_dir(&*dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["run.jsonl"]);
}

#[test]
fn stopping_child() {
    if std::env::var_os("RECORD_JSON_STOPPING_CHILD").is_none() {
        return;
    }
    let a = Mutex::named("stopped.a", 0);
    for _ in 0..1000 {
        *a.lock() += 1;
    }
}

/// A conversion that cannot be made (here the file was removed during the run) is an error of
/// `record::stop` (and said on stderr, for the exit handler's sake), never silent.
#[test]
fn a_conversion_that_fails_is_an_error() {
    if std::env::var_os("RECORD_JSON_KILLED_CHILD").is_some()
        || std::env::var_os("RECORD_JSON_STOPPING_CHILD").is_some()
    {
        return;
    }
    let dir = Scratch::new("json-gone");
    let trace = dir.join("gone.jsonl");
    lockcheck::record::start(&trace).unwrap();
    let m = Mutex::named("gone.m", 0);
    *m.lock() += 1;
    std::fs::remove_file(&trace).unwrap();
    let e = lockcheck::record::stop().unwrap_err();
    assert!(e.to_string().contains("into JSON Lines failed"), "{e}");
}
