//! The recording starts on the first use of a lock in the process (`LOCKCHECK_TRACE`). Threads
//! whose first acquisitions race with that start must wait for it, not go on unrecorded: an
//! acquisition missing from the trace (with its release) can hide offline a finding the runtime
//! made, which broke "offline equals runtime" for two tokio tasks on two workers.

#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck_core::trace::Event;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use trace_file::events;
use trace_file::Scratch;

const THREADS: usize = 8;

/// The child: no lock used before the threads start together, each takes its own lock once.
#[test]
fn child() {
    if std::env::var_os("RECORD_START_RACE_CHILD").is_none() {
        return;
    }
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let m = lockcheck::Mutex::new(i);
                barrier.wait();
                *m.lock() += 1;
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn first_acquisitions_racing_with_the_start_of_the_recording_are_all_recorded() {
    let dir = Scratch::new("start-race");
    for round in 0..6 {
        let trace = dir.join(format!("race{round}.jsonl"));
        let _ = std::fs::remove_file(&trace);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child", "--exact", "--test-threads=1"])
            .env("RECORD_START_RACE_CHILD", "1")
            .env("LOCKCHECK_TRACE", &trace)
            .env("LOCKCHECK_BACKTRACE", "0")
            .env_remove("LOCKCHECK")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("the child must not hang");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "child failed: {status}");
        let ev = events(&trace);
        let acquires = ev
            .iter()
            .filter(|e| matches!(e, Event::Acquire { .. }))
            .count();
        let releases = ev
            .iter()
            .filter(|e| matches!(e, Event::Release { .. }))
            .count();
        assert_eq!(
            (acquires, releases),
            (THREADS, THREADS),
            "round {round}: every thread's acquisition and release must be in the trace"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
