//! Recording in lockcheck's binary `.lct` format: the same program recorded as JSON Lines and as
//! `.lct` (by the extension, or `LOCKCHECK_TRACE_FORMAT=lct`) gives the same analysis, and a
//! crashed process leaves an `.lct` trace readable up to its last complete record.

mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::Mutex;
use std::path::Path;
use std::sync::Arc;
use trace_file::tmp;

/// An AB-BA inversion between two threads (reported) and two locks always taken in one order by
/// two threads (silent).
fn program(tag: &str) {
    let name = |n: &str| -> &'static str { Box::leak(format!("{tag}.{n}").into_boxed_str()) };
    let a = Arc::new(Mutex::named(name("a"), 0));
    let b = Arc::new(Mutex::named(name("b"), 0));
    let (a2, b2) = (a.clone(), b.clone());
    let _ = support::two_threads(
        move || {
            let _a = a.lock();
            let _b = b.lock();
        },
        move || {
            let _b = b2.lock();
            let _a = a2.lock();
        },
    );
    let c = Arc::new(Mutex::named(name("c"), 0));
    let d = Arc::new(Mutex::named(name("d"), 0));
    let (c2, d2) = (c.clone(), d.clone());
    let _ = support::two_threads(
        move || {
            let _c = c.lock();
            let _d = d.lock();
        },
        move || {
            let _c = c2.lock();
            let _d = d2.lock();
        },
    );
}

fn report(path: &Path, allow_truncated: bool) -> lockcheck_analyze::report::Report {
    let opts = lockcheck_analyze::Options {
        allow_truncated,
        ..Default::default()
    };
    lockcheck_analyze::analyze(&[path.to_path_buf()], &opts).unwrap_or_else(|e| panic!("{e}"))
}

/// What must not depend on the trace format: the violations (by id and locks) and the counts.
fn essence(r: &lockcheck_analyze::report::Report) -> (Vec<(String, Vec<String>)>, u64, u64, u64) {
    let mut v: Vec<(String, Vec<String>)> = r
        .violations
        .iter()
        .map(|v| {
            (
                v.id.clone(),
                v.locks.iter().map(|l| l.name.clone()).collect(),
            )
        })
        .collect();
    v.sort();
    (v, r.summary.events, r.summary.dependencies, r.summary.locks)
}

fn is_lct(path: &Path) -> bool {
    std::fs::read(path)
        .unwrap()
        .starts_with(&lockcheck_core::lct::MAGIC)
}

/// One recording at a time in this process: the steps run in sequence inside one test.
#[test]
fn lct_recording_end_to_end() {
    match std::env::var("LOCKCHECK_LCT_CHILD").as_deref() {
        Ok("exit") => return program("child"),
        Ok("crash") => {
            program("crash");
            // No stop(), no exit handlers: only the periodic background flush saves the events.
            std::thread::sleep(std::time::Duration::from_millis(300));
            std::process::abort();
        }
        _ => {}
    }
    lockcheck::set_action(lockcheck::Action::Off);
    let json = tmp("same.json");
    let lct = tmp("same.lct");
    lockcheck::record::start(&json).unwrap();
    program("same");
    lockcheck::record::stop().unwrap().expect("was recording");
    lockcheck::record::start(&lct).unwrap();
    program("same");
    lockcheck::record::stop().unwrap().expect("was recording");
    assert!(!is_lct(&json));
    assert!(is_lct(&lct), "a .lct path is recorded in .lct");
    let (rj, rl) = (report(&json, false), report(&lct, false));
    assert_eq!(rj.violations.len(), 1, "{rj:#?}");
    assert_eq!(essence(&rj), essence(&rl));

    // The switch, whatever the extension, in a process recording from the environment.
    let switched = tmp("switched.trace");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lct_recording_end_to_end", "--test-threads=1"])
        .env("LOCKCHECK_LCT_CHILD", "exit")
        .env("LOCKCHECK_TRACE", &switched)
        .env("LOCKCHECK_TRACE_FORMAT", "lct")
        .env("LOCKCHECK", "warn")
        .status()
        .unwrap();
    assert!(status.success());
    assert!(is_lct(&switched), "LOCKCHECK_TRACE_FORMAT=lct");
    let r = report(&switched, false);
    assert_eq!(r.violations.len(), 1, "{r:#?}");

    // A crash: the trace is read up to its last complete record.
    let crashed = tmp("crash.lct");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lct_recording_end_to_end", "--test-threads=1"])
        .env("LOCKCHECK_LCT_CHILD", "crash")
        .env("LOCKCHECK_TRACE", &crashed)
        .env("LOCKCHECK", "warn")
        .status()
        .unwrap();
    assert!(!status.success(), "the child aborts");
    assert!(is_lct(&crashed));
    let r = report(&crashed, true);
    assert_eq!(r.violations.len(), 1, "recorded before the crash: {r:#?}");
    // Cut in the middle of its last record, it still is.
    let mut bytes = std::fs::read(&crashed).unwrap();
    bytes.pop();
    let cut = tmp("cut.lct");
    std::fs::write(&cut, &bytes).unwrap();
    let r = report(&cut, true);
    assert_eq!(r.violations.len(), 1, "{r:#?}");
}
