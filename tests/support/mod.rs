//! Shared helpers of the runtime tests: a watchdog so that a test that would hang fails instead,
//! and helpers to run two threads in a fixed order without lockcheck seeing them as ordered.
#![allow(dead_code)]

pub mod child;
pub mod markers;

use std::sync::mpsc;
use std::time::Duration;

/// The least time [`watchdog`] gives a scenario, whatever its caller asks: a scenario that ends
/// in 0.5 s of CPU (most of it resolving the report's backtraces) took 7 s of wall time at a
/// load of 10 on 2 cores, and 15 s on one core shared with two busy loops, past the 10 s some
/// tests asked for. The watchdog only tells a hang from a slow run: a hang fails as surely two
/// minutes later.
pub const WATCHDOG_FLOOR_SECS: u64 = 120;

/// Runs `f` on its own thread and fails the test if it does not finish within `secs` seconds
/// (at least [`WATCHDOG_FLOOR_SECS`]). Returns `Err(panic message)` if `f` panicked.
pub fn watchdog<F>(secs: u64, f: F) -> Result<(), String>
where
    F: FnOnce() + Send + 'static,
{
    let secs = secs.max(WATCHDOG_FLOOR_SECS);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r.map_err(|e| panic_message(&*e)));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(r) => r,
        Err(_) => panic!("watchdog: the scenario did not finish within {secs}s (a hang lockcheck should have reported)"),
    }
}

/// The text of a panic payload.
pub fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = e.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "<non-string panic>".to_owned()
    }
}

/// Runs `first` on one thread and then, while that thread is still alive (so the two are
/// concurrent for lockcheck), `second` on another. Both run to completion without overlapping
/// their lock sections, so no real deadlock can happen. Returns each thread's panic message.
pub fn two_threads<A, B>(first: A, second: B) -> (Result<(), String>, Result<(), String>)
where
    A: FnOnce() + Send + 'static,
    B: FnOnce() + Send + 'static,
{
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let t1 = std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(first))
            .map_err(|e| panic_message(&*e));
        let _ = done_tx.send(());
        let _ = exit_rx.recv_timeout(Duration::from_secs(30));
        r
    });
    let _ = done_rx.recv_timeout(Duration::from_secs(30));
    let t2 = std::thread::spawn(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(second))
            .map_err(|e| panic_message(&*e))
    });
    let r2 = t2.join().expect("second thread");
    let _ = exit_tx.send(());
    let r1 = t1.join().expect("first thread");
    (r1, r2)
}

/// Polls `cond` until it holds, and panics naming `what` if it does not within 60 seconds. For a
/// test that needs another thread to be somewhere (holding a lock, blocked on one) before it
/// goes on: a sleep orders nothing on a loaded machine.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the scenario did not form: {what} (not within 60 s)"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// How many threads are blocked now on a lock of class `class`, as the wait-for graph sees them.
pub fn blocked_on(class: &str) -> usize {
    lockcheck::__private::waits()
        .iter()
        .filter(|(c, _)| c == class)
        .count()
}

/// How many threads are blocked now on a lock of kind `kind` (a channel's send or receive, a
/// join), as the wait-for graph sees them.
pub fn blocked_kind(kind: lockcheck::LockKind) -> usize {
    lockcheck::__private::waits()
        .iter()
        .filter(|(_, k)| *k == kind)
        .count()
}

/// How many threads are blocked now on a lock of kind `kind` whose class is named by the site
/// `file`:`line` (a channel's, by where it was made, and its senders'; a thread's end, by where
/// the thread was spawned), as the wait-for graph sees them.
pub fn blocked_at(kind: lockcheck::LockKind, file: &str, line: u32) -> usize {
    let site = format!("{file}:{line}:");
    lockcheck::__private::waits()
        .iter()
        .filter(|(c, k)| *k == kind && c.contains(&site))
        .count()
}

/// How many waits of kind `kind` the thread (or task) `waiter` has now in the wait-for graphs:
/// `waiter` is the number `lockcheck::__private::waiter_id()` returned on that thread (or in that
/// task). For a wait whose class other tests' waits share (a thread's end is named after its
/// spawn site, the same for every test that calls one helper).
pub fn blocked_by(waiter: u64, kind: lockcheck::LockKind) -> usize {
    lockcheck::__private::waiters()
        .iter()
        .filter(|(_, k, w)| *k == kind && *w == waiter)
        .count()
}

/// [`blocked_at`] for the channel made at `file`:`line` (a send, or a receive on its senders).
pub fn blocked_on_channel(file: &str, line: u32) -> usize {
    blocked_at(lockcheck::LockKind::Channel, file, line)
}

/// Violations that involve the class `class` (tests name their locks uniquely).
pub fn found(class: &str) -> Vec<lockcheck::Violation> {
    lockcheck::violations()
        .into_iter()
        .filter(|v| v.involves(class))
        .collect()
}

/// The lock-order inversions (instance or class level) among [`found`]`(class)`.
pub fn inversions(class: &str) -> Vec<lockcheck::Violation> {
    found(class)
        .into_iter()
        .filter(|v| {
            matches!(
                v.kind,
                lockcheck::ViolationKind::LockOrderInversion
                    | lockcheck::ViolationKind::ClassInversion
            )
        })
        .collect()
}

/// The condvar warnings (the opt-in condvar rule's findings) that involve a lock of `class`.
pub fn condvar_warnings(class: &str) -> Vec<lockcheck::Violation> {
    found(class)
        .into_iter()
        .filter(|v| matches!(v.kind, lockcheck::ViolationKind::CondvarWait { .. }))
        .collect()
}

/// Whether `v` is a condvar warning whose notifier was seen holding the lock (not a warning
/// given before any notify was seen).
pub fn notifier_seen(v: &lockcheck::Violation) -> bool {
    matches!(
        v.kind,
        lockcheck::ViolationKind::CondvarWait {
            notifier_seen: true
        }
    )
}

/// Runs the bodies one after the other, each on its own thread, all alive until the last is done
/// (concurrent as far as fork/join knows), so that nothing hangs.
pub fn one_by_one(bodies: Vec<Box<dyn FnOnce() + Send>>) {
    let (exit_tx, exit_rx) = std::sync::mpsc::channel::<()>();
    let exit_rx = std::sync::Arc::new(std::sync::Mutex::new(exit_rx));
    let mut handles = Vec::new();
    for b in bodies {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let exit = exit_rx.clone();
        handles.push(std::thread::spawn(move || {
            b();
            let _ = tx.send(());
            let _ = exit
                .lock()
                .unwrap()
                .recv_timeout(std::time::Duration::from_millis(50));
        }));
        rx.recv().expect("the body ran");
    }
    drop(exit_tx);
    for h in handles {
        h.join().unwrap();
    }
}
