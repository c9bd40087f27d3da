//! A process forked while it records does not write into its parent's trace: the trace file is
//! shared (one open file, one offset) and the buffers of the parent's threads are copied into the
//! child, so a flush in the child (`record::flush`, a report's, the exit handler's) wrote the
//! parent's pending records a second time and the child's own events, under the forking thread's
//! number, into the parent's trace. The child now records a trace of its own, next to the
//! parent's (`parent.child-PID.jsonl`, `tests/record_fork_left_held.rs`), and the parent's is
//! untouched. Its own binary: a fork copies only the calling thread, and a test running beside it could
//! hold a lock at that moment.
#![cfg(target_os = "linux")]

#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::Mutex;
use lockcheck_core::trace::Event;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn a_forked_child_writes_nothing_into_its_parents_trace() {
    let trace = trace_file::tmp("parent.jsonl");
    lockcheck::record::start(&trace).unwrap();
    let parent = Arc::new(Mutex::named("fork_trace.parent", 0u32));
    let child_only = Arc::new(Mutex::named("fork_trace.child_only", 0u32));
    *parent.lock() += 1;
    // SAFETY: the child only takes lockcheck's locks, flushes, and leaves with `exit` (the C
    // runtime's exit handlers, lockcheck's trace flush among them), never returning into the
    // test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        {
            let _p = parent.lock();
            *child_only.lock() += 1;
        }
        lockcheck::record::flush();
        // SAFETY: ends the child; its exit handlers run (lockcheck's stops the recording).
        unsafe { libc::exit(0) }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut status = 0;
    loop {
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: as above; the child is ours and still running.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the forked child hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{status}"
    );
    *parent.lock() += 1;
    lockcheck::record::stop().unwrap();
    let events = trace_file::events(&trace);
    let headers = events
        .iter()
        .filter(|e| matches!(e, Event::Header { .. }))
        .count();
    assert_eq!(headers, 1);
    let keys: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Class { key, .. } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    assert!(keys.contains(&"fork_trace.parent"), "{keys:?}");
    assert!(!keys.contains(&"fork_trace.child_only"), "{keys:?}");
    // The parent's two acquisitions, each once.
    let parent_lock = trace_file::lock_of(&events, "fork_trace.parent");
    let acquisitions = events
        .iter()
        .filter(|e| matches!(e, Event::Acquire { l, .. } if *l == parent_lock))
        .count();
    assert_eq!(acquisitions, 2, "{events:#?}");
}
