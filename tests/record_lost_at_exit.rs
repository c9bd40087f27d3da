//! A lock taken in a thread-local's destructor after the thread's recording state was torn down
//! cannot reach the trace (its stream is gone): the recorder says how many events are missing
//! when the recording stops, instead of dropping them silently. Likewise the hold times the
//! writer cannot measure (more locks held at once than its window).

#[path = "support/scratch.rs"]
mod scratch;

use scratch::Scratch;
use std::cell::Cell;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

static LOCK: lockcheck::Mutex<u32> = lockcheck::Mutex::new(0);

struct LocksOnDrop(Cell<u32>);

impl Drop for LocksOnDrop {
    fn drop(&mut self) {
        *LOCK.lock() += self.0.get();
    }
}

thread_local! {
    static LATE: LocksOnDrop = const { LocksOnDrop(Cell::new(0)) };
}

/// The child: `LATE`'s destructor is registered before the recorder's thread-local (destructors
/// run last registered first), so it runs after the recorder's state is gone.
#[test]
fn child() {
    if std::env::var_os("RECORD_LOST_CHILD").is_none() {
        return;
    }
    std::thread::spawn(|| {
        LATE.with(|l| l.0.set(1));
        *LOCK.lock() += 1;
    })
    .join()
    .unwrap();
    // The process exit stops the recording, which says what is missing.
}

/// Runs this binary's test `child` alone, with `env` set and a trace under a directory named after
/// `tag` (in `format`, `LOCKCHECK_TRACE_FORMAT`; JSON Lines when empty), failing if it hangs or
/// fails; returns its stderr.
fn run_child(child: &str, env: &str, tag: &str, format: &str) -> String {
    let dir = Scratch::new(tag);
    let trace = dir.join(format!("{tag}.jsonl"));
    let child = Command::new(std::env::current_exe().unwrap())
        .args([child, "--exact", "--test-threads=1"])
        .env(env, "1")
        .env("LOCKCHECK_TRACE", &trace)
        .env("LOCKCHECK_BACKTRACE", "0")
        .env("LOCKCHECK_TRACE_FORMAT", format)
        .env_remove("LOCKCHECK")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let out = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !out.is_finished() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the child must not hang"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = out.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
    stderr
}

#[test]
fn events_after_the_recorder_s_thread_teardown_are_counted_not_dropped_silently() {
    let stderr = run_child("child", "RECORD_LOST_CHILD", "lost", "");
    assert!(
        stderr.contains("trace event(s) are missing from"),
        "the loss must be said: {stderr}"
    );
}

/// The child of the second test: one thread holds 80 locks at once.
#[test]
fn child_deep() {
    if std::env::var_os("RECORD_DEEP_CHILD").is_none() {
        return;
    }
    let locks: Vec<lockcheck::Mutex<u32>> = (0..80).map(lockcheck::Mutex::new).collect();
    let guards: Vec<_> = locks.iter().map(|m| m.lock()).collect();
    drop(guards);
}

#[test]
fn hold_times_the_writer_cannot_measure_are_said() {
    // `.lct` version 2, whose writer measures the holds (a window of 64 per thread).
    let stderr = run_child("child_deep", "RECORD_DEEP_CHILD", "deep", "lct2");
    assert!(
        stderr.contains("hold(s) fell out of the writer's window"),
        "the unmeasured hold times must be said: {stderr}"
    );
    // JSON Lines (recorded as `.lct` version 5, whose reader measures every hold) and `.lct`:
    // nothing falls out, nothing to say.
    for format in ["", "lct"] {
        let stderr = run_child("child_deep", "RECORD_DEEP_CHILD", "deep", format);
        assert!(!stderr.contains("fell out"), "{format}: {stderr}");
    }
}
