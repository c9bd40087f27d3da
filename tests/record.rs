//! Recording: a traced run yields a trace the analyzer reads, with definitions before uses,
//! fork/join in order, statistics at the end; a crashed process leaves an analyzable trace.

mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::Mutex;
use lockcheck_core::trace::Event;
use std::sync::Arc;
use trace_file::{events, tmp};

/// One recording at a time in this process: the tests below run in sequence inside one test.
#[test]
fn recording_end_to_end() {
    if std::env::var_os("LOCKCHECK_CRASH_CHILD").is_some() {
        return crash_child();
    }
    recorded_inversion_is_found_by_the_analyzer();
    definitions_precede_uses_and_fork_join_are_ordered();
    a_killed_process_leaves_an_analyzable_trace();
}

fn recorded_inversion_is_found_by_the_analyzer() {
    // Checking off: only the trace sees the inversion.
    lockcheck::set_action(lockcheck::Action::Off);
    let path = tmp("abba-{pid}.json");
    lockcheck::record::start(&path).unwrap();
    assert!(lockcheck::record::is_recording());
    let a = Arc::new(Mutex::named("rec.a", 0));
    let b = Arc::new(Mutex::named("rec.b", 0));
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
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    assert!(
        written
            .to_string_lossy()
            .contains(&std::process::id().to_string()),
        "{written:?}"
    );
    let report =
        lockcheck_analyze::analyze(std::slice::from_ref(&written), &Default::default()).unwrap();
    assert_eq!(report.violations.len(), 1, "{report:#?}");
    let v = &report.violations[0];
    let mut classes: Vec<&str> = v.locks.iter().map(|l| l.class.as_str()).collect();
    classes.sort();
    assert_eq!(classes, ["rec.a", "rec.b"]);
    let evs = events(&written);
    assert!(
        evs.iter().any(|e| matches!(e, Event::Stats { .. })),
        "statistics at the end"
    );
    lockcheck::set_action(lockcheck::Action::Panic);
}

fn definitions_precede_uses_and_fork_join_are_ordered() {
    let path = tmp("forkjoin.json");
    lockcheck::record::start(&path).unwrap();
    let m = Arc::new(Mutex::named("rec.fj", 0));
    let m2 = m.clone();
    *m.lock() += 1;
    lockcheck::thread::spawn(move || *m2.lock() += 1)
        .join()
        .unwrap();
    *m.lock() += 1;
    let written = lockcheck::record::stop().unwrap().unwrap();
    let evs = events(&written);
    assert!(matches!(evs[0], Event::Header { version: 1, .. }));
    let (mut classes, mut locks, mut sites, mut threads) = (vec![], vec![], vec![], vec![]);
    let (mut fork_at, mut join_at, mut child_events) = (None, None, vec![]);
    let mut child = None;
    for (i, e) in evs.iter().enumerate() {
        match e {
            Event::Class { c, .. } => classes.push(*c),
            Event::Lock { l, c, .. } => {
                assert!(classes.contains(c), "class before lock");
                locks.push(*l);
            }
            Event::Site { s, loc, .. } => {
                assert!(loc.starts_with("tests/record.rs:"), "{loc}");
                sites.push(*s);
            }
            Event::Thread { t, .. } => threads.push(*t),
            Event::Acquire { t, l, s, .. } => {
                assert!(locks.contains(l) && threads.contains(t) && sites.contains(&s.unwrap()));
                if Some(*t) == child {
                    child_events.push(i);
                }
            }
            Event::Fork { child: c, .. } => {
                fork_at = Some(i);
                child = Some(*c);
            }
            Event::Join { .. } => join_at = Some(i),
            _ => {}
        }
    }
    let (f, j) = (
        fork_at.expect("fork recorded"),
        join_at.expect("join recorded"),
    );
    assert!(!child_events.is_empty());
    assert!(
        child_events.iter().all(|&i| f < i && i < j),
        "fork < child's events < join"
    );
}

fn a_killed_process_leaves_an_analyzable_trace() {
    let path = tmp("crash.json");
    let _ = std::fs::remove_file(&path);
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "recording_end_to_end",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LOCKCHECK_CRASH_CHILD", "1")
        .env("LOCKCHECK_TRACE", &path)
        .env("LOCKCHECK", "warn")
        .status()
        .unwrap();
    assert!(!status.success(), "the child aborts");
    let opts = lockcheck_analyze::Options {
        allow_truncated: true,
        ..Default::default()
    };
    let report = lockcheck_analyze::analyze(&[path.to_path_buf()], &opts).unwrap();
    assert_eq!(
        report.violations.len(),
        1,
        "the inversion recorded before the crash: {report:#?}"
    );
}

/// The child of the crash test: records an inversion, waits for the background writer, aborts.
fn crash_child() {
    let a = Arc::new(Mutex::named("crash.a", 0));
    let b = Arc::new(Mutex::named("crash.b", 0));
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
    // No stop(), no exit handlers: only the periodic background flush saves the events.
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::process::abort();
}
