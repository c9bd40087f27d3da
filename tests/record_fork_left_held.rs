//! A forked child records its own trace, so that `lockcheck analyze` reports the fork hang the
//! runtime reports (daboross/fern#59, `tests/real_bugs_round8_fork.rs`): a lock another thread of
//! the parent held at the fork, requested by the child's only thread. The child's trace is the
//! parent's path with `.child-PID` before the extension; it starts with a `forked` event, and the
//! runtime's report writes a `left_held` event first. The look-alikes stay silent there as they do
//! at run time: the lock taken around the fork by the forking thread itself (held by the child's
//! own thread, which releases it), and a lock released before the fork. Its own binary, one test:
//! a fork copies only the calling thread, and a test running beside it could hold a lock then.
#![cfg(target_os = "linux")]

#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::Mutex;
use lockcheck_core::trace::Event;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Waits up to 60 s for child `pid`; its exit status (killed and -1 if it hung).
fn wait_child(pid: libc::pid_t) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut status = 0;
    loop {
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == pid {
            return if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -2
            };
        }
        if Instant::now() > deadline {
            // SAFETY: as above; the child is ours and still running.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return -1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Forks; the child runs `body`, writes its trace out (`record::flush`) and leaves with `_exit`:
/// status 0 if `body` returned, 3 if it panicked with a deadlock report, 4 for another panic.
/// Returns the child's pid.
fn fork_running(body: impl FnOnce()) -> libc::pid_t {
    // SAFETY: the child only runs `body` (lockcheck's locks, a report, a panic caught here) and
    // leaves with `_exit`, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        let code = match r {
            Ok(()) => 0,
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                if msg.contains("deadlock") {
                    3
                } else {
                    4
                }
            }
        };
        lockcheck::record::flush();
        // SAFETY: leaves the child at once, without the parent's atexit handlers or destructors.
        unsafe { libc::_exit(code) }
    }
    pid
}

/// The kinds of the findings of `lockcheck analyze` on `traces` that name class `class`.
fn kinds(traces: &[PathBuf], class: &str) -> Vec<String> {
    let report = lockcheck_analyze::analyze(traces, &Default::default()).unwrap();
    report
        .violations
        .iter()
        .filter(|v| v.locks.iter().any(|l| l.class == class))
        .map(|v| format!("{} {}", v.kind, lockcheck_analyze::report::title(v)))
        .collect()
}

/// A class name for this format's run (`Mutex::named` takes a `&'static str`).
fn name(base: &str, ext: &str) -> &'static str {
    Box::leak(format!("{base}.{ext}").into_boxed_str())
}

fn child_trace(parent: &Path, pid: libc::pid_t) -> PathBuf {
    let stem = parent.file_stem().unwrap().to_string_lossy();
    let ext = parent.extension().unwrap().to_string_lossy();
    parent.with_file_name(format!("{stem}.child-{pid}.{ext}"))
}

/// In JSON Lines and in `.lct` (version 5, whose writer writes these events as version-2
/// records among its raw ones).
#[test]
fn a_forked_childs_trace_shows_the_lock_its_fork_left_held() {
    for ext in ["jsonl", "lct"] {
        in_format(ext);
    }
}

fn in_format(ext: &str) {
    let trace = trace_file::tmp(&format!("parent.{ext}"));
    lockcheck::record::start(&trace).unwrap();
    let me = std::process::id();

    // The bug: a background thread holds the logger's lock while the main thread forks.
    let logger = Arc::new(Mutex::named(name("fork17.logger", ext), 0u32));
    let (holding_tx, holding) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let l2 = Arc::clone(&logger);
    let bg = std::thread::spawn(move || {
        let g = l2.lock();
        holding_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        drop(g);
    });
    holding.recv().unwrap();
    let l3 = Arc::clone(&logger);
    let bug = fork_running(move || {
        *l3.lock() += 1;
    });
    go.send(()).unwrap();
    bg.join().unwrap();
    assert_eq!(wait_child(bug), 3, "the runtime's report in the child");
    let bug_trace = child_trace(&trace, bug);
    let events = trace_file::events(&bug_trace);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Forked { parent, .. } if *parent == me)),
        "{events:#?}"
    );
    let l = trace_file::lock_of(&events, &format!("fork17.logger.{ext}"));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::LeftHeld { l: x, .. } if *x == l)),
        "{events:#?}"
    );
    let alone = kinds(
        std::slice::from_ref(&bug_trace),
        &format!("fork17.logger.{ext}"),
    );
    assert_eq!(alone.len(), 1, "{alone:?}");
    assert!(
        alone[0].starts_with("deadlock deadlock:") && alone[0].contains("fork() did not copy"),
        "{alone:?}"
    );

    // The look-alike of fern's workaround: the forking thread holds the lock across the fork,
    // so the child's own thread holds its copy and releases it.
    let around = Arc::new(Mutex::named(name("fork17.around", ext), 0u32));
    let a2 = Arc::clone(&around);
    let guard = around.lock();
    let held_around = fork_running(move || {
        drop(guard);
        *a2.lock() += 1;
    });
    assert_eq!(wait_child(held_around), 0);
    let around_trace = child_trace(&trace, held_around);
    let events = trace_file::events(&around_trace);
    assert!(events.iter().any(|e| matches!(e, Event::Forked { .. })));
    assert!(!events.iter().any(|e| matches!(e, Event::LeftHeld { .. })));
    trace_file::lock_of(&events, &format!("fork17.around.{ext}"));
    assert!(kinds(&[around_trace], &format!("fork17.around.{ext}")).is_empty());

    // A lock released (by a thread that ended) before the fork.
    let before = Arc::new(Mutex::named(name("fork17.before", ext), 0u32));
    let b2 = Arc::clone(&before);
    std::thread::spawn(move || *b2.lock() += 1).join().unwrap();
    let b3 = Arc::clone(&before);
    let released = fork_running(move || {
        *b3.lock() += 1;
    });
    assert_eq!(wait_child(released), 0);
    let released_trace = child_trace(&trace, released);
    assert!(kinds(
        std::slice::from_ref(&released_trace),
        &format!("fork17.before.{ext}"),
    )
    .is_empty());

    // The parent's trace is its own: one header, no child's event; with the child's, `analyze`
    // reports the hang once.
    *logger.lock() += 1;
    lockcheck::record::stop().unwrap();
    let events = trace_file::events(&trace);
    let headers = events
        .iter()
        .filter(|e| matches!(e, Event::Header { .. }))
        .count();
    assert_eq!(headers, 1);
    assert!(!events
        .iter()
        .any(|e| matches!(e, Event::Forked { .. } | Event::LeftHeld { .. })));
    let both = kinds(
        &[trace.to_path_buf(), bug_trace.clone()],
        &format!("fork17.logger.{ext}"),
    );
    assert_eq!(both.len(), 1, "{both:?}");
    for p in [bug_trace, child_trace(&trace, held_around), released_trace] {
        let _ = std::fs::remove_file(p);
    }
}
