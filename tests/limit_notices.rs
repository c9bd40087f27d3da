//! A documented limit that a run hits is said once on stderr (`lockcheck: note: ...`, the site,
//! where README says more): a forked child with threads of its own, a barrier's participant
//! assumed in its first generation, a never-used sender handle assumed with a stuck thread, the
//! lost-wakeup rule's latest-notify-only comparison, a spinner that is no waiter of the wait-for
//! graph. Each scenario hits its limit twice, in a child process of this test binary whose stderr
//! is read: the notice is there exactly once. A clean run, which hits none, says nothing.

mod support;

use lockcheck::sync::Barrier;
use lockcheck::{Condvar, Mutex};
use std::sync::Arc;
use support::{blocked_on, wait_until};

/// Set in the child process: the name of the test to run as the scenario.
const CHILD: &str = "LOCKCHECK_NOTICE_CHILD";

/// Runs the test `name` of this binary in a child process (which runs the scenario, as
/// [`in_child`] tells it) and returns its stderr. Fails if the child fails or runs past 120 s.
fn run_child(name: &str, env: &[(&str, &str)]) -> String {
    let mut all = vec![("LOCKCHECK", "warn")];
    all.extend_from_slice(env);
    let (status, err) = support::child::run_test(name, CHILD, &all);
    assert!(
        status.is_some_and(|s| s.success()),
        "the child scenario `{name}` failed or hung: {status:?}\n{err}"
    );
    err
}

/// Whether this process is the child that runs `name`'s scenario.
fn in_child(name: &str) -> bool {
    support::child::is_child(CHILD, name)
}

/// The notice lines of a child's stderr.
fn notices(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| l.starts_with("lockcheck: note:"))
        .collect()
}

/// How many deadlock reports of two threads `err` has (their first lines).
fn reports(err: &str) -> usize {
    err.lines()
        .filter(|l| *l == "lockcheck: deadlock: 2 threads are waiting for each other")
        .count()
}

/// Asserts that `err` has exactly one notice, that it says `what` and names `site`.
fn said_once(err: &str, what: &str, site: &str) {
    let n = notices(err);
    assert_eq!(n.len(), 1, "one notice expected:\n{err}");
    assert!(n[0].contains(what), "the notice says `{what}`:\n{err}");
    assert!(n[0].contains(site), "the notice names `{site}`:\n{err}");
    assert!(
        n[0].contains("README"),
        "the notice says where to learn more:\n{err}"
    );
}

/// A thread holding `a` spins on `b`, which another thread holds, 1500 failed tries twice (a new
/// streak: `a` is given back and taken again in between). Each loop is checked as a blocking
/// acquisition at its 1000th failure; the limit (no waiter of the wait-for graph) is said once.
#[test]
fn a_spinner_holding_a_lock_is_said_once_to_be_no_waiter() {
    const NAME: &str = "a_spinner_holding_a_lock_is_said_once_to_be_no_waiter";
    if !in_child(NAME) {
        let err = run_child(NAME, &[]);
        return said_once(
            &err,
            "no waiter of the wait-for graph",
            "a try retried 1000 times at tests/limit_notices.rs",
        );
    }
    let a = Mutex::named("notice.spin.a", ());
    let b = Arc::new(Mutex::named("notice.spin.b", ()));
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let b2 = b.clone();
    let holder = std::thread::spawn(move || {
        let g = b2.lock();
        held_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        drop(g);
    });
    held_rx.recv().unwrap();
    for _ in 0..2 {
        let _a = a.lock();
        for _ in 0..1500 {
            assert!(b.try_lock().is_none(), "held by the other thread");
        }
    }
    go_tx.send(()).unwrap();
    holder.join().unwrap();
}

/// A forked child with a thread of its own blocks twice on a lock that thread holds: the check for
/// a lock the fork left held applies to a child's only thread, and the child's two blocking
/// acquisitions are unchecked. Said once (by the forked child, on the same stderr).
#[cfg(target_os = "linux")]
#[test]
fn a_forked_child_with_threads_of_its_own_is_said_once_to_be_unchecked() {
    const NAME: &str = "a_forked_child_with_threads_of_its_own_is_said_once_to_be_unchecked";
    if !in_child(NAME) {
        let err = run_child(NAME, &[]);
        return said_once(
            &err,
            "in a forked child process that has threads of its own",
            "tests/limit_notices.rs",
        );
    }
    let m = Arc::new(Mutex::named("notice.fork", ()));
    drop(m.lock()); // registers the fork handler
                    // SAFETY: the child runs lockcheck's locks and its own thread only, and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for _ in 0..2 {
                let (held_tx, held_rx) = std::sync::mpsc::channel();
                let m2 = m.clone();
                let t = std::thread::spawn(move || {
                    let g = m2.lock();
                    held_tx.send(()).unwrap();
                    // Released once the child's main thread is blocked on it.
                    wait_until("the forked child's main thread blocked", || {
                        blocked_on("notice.fork") == 1
                    });
                    drop(g);
                });
                held_rx.recv().unwrap();
                drop(m.lock());
                t.join().unwrap();
            }
        }));
        // SAFETY: leaves the forked child at once, without the test harness's cleanup.
        unsafe { libc::_exit(if r.is_ok() { 0 } else { 4 }) }
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child: {status}"
    );
}

/// Two first-generation barrier hangs at once (a waiter holds a lock the other participant takes
/// before it arrives): both reported five seconds into the wait, with the participant assumed;
/// the guess is said once.
#[test]
fn a_participant_assumed_at_a_barrier_is_said_once() {
    const NAME: &str = "a_participant_assumed_at_a_barrier_is_said_once";
    if !in_child(NAME) {
        let err = run_child(NAME, &[]);
        assert_eq!(reports(&err), 2, "{err}");
        return said_once(
            &err,
            "assumed to be a missing participant",
            "barrier created at tests/limit_notices.rs",
        );
    }
    let hangs: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                let state = Arc::new(Mutex::named("notice.barrier.state", 0u32));
                let barrier = Arc::new(Barrier::new(2));
                let (go, wait_go) = std::sync::mpsc::channel::<()>();
                let (s2, b2) = (state.clone(), barrier.clone());
                let other = std::thread::spawn(move || {
                    wait_go.recv().unwrap();
                    *s2.lock() += 1; // waits for the waiter's `state`
                    b2.wait(); // arrives once the waiter gave up (its arrival counted)
                });
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _g = state.lock();
                    go.send(()).unwrap();
                    barrier.wait();
                }));
                assert!(r.is_err(), "the waiter gives up");
                other.join().unwrap();
            })
        })
        .collect();
    for h in hangs {
        h.join().unwrap();
    }
}

/// Two receives, at once, under the lock their only sender takes before its first send: both
/// reported with the never-used handle assumed with the stuck sender; the guess is said once.
#[test]
fn a_sender_handle_assumed_is_said_once() {
    const NAME: &str = "a_sender_handle_assumed_is_said_once";
    if !in_child(NAME) {
        let err = run_child(NAME, &[]);
        assert_eq!(reports(&err), 2, "{err}");
        return said_once(
            &err,
            "never used, assumed to be with a stuck thread",
            "tests/limit_notices.rs",
        );
    }
    let hangs: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                let state = Arc::new(Mutex::named("notice.recv.state", 0u32));
                let (tx, rx) = lockcheck::sync::mpsc::channel::<u32>();
                let (go, wait_go) = std::sync::mpsc::channel::<()>();
                let s2 = state.clone();
                let sender = std::thread::spawn(move || {
                    wait_go.recv().unwrap();
                    let g = s2.lock(); // waits for the receiver
                    let _ = tx.send(*g);
                });
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _g = state.lock();
                    go.send(()).unwrap();
                    rx.recv()
                }));
                assert!(r.is_err(), "the receive gives up");
                sender.join().unwrap();
            })
        })
        .collect();
    for h in hangs {
        h.join().unwrap();
    }
}

/// The lost-wakeup rule (`LOCKCHECK_CONDVAR=warn`) compares a wait with the condvar's latest
/// notify only. A thread notifies without the mutex, then with it; two waits follow (each woken
/// by a thread that takes the mutex): no warning (the latest notify took the mutex), and the
/// earlier notify, which lacked it, is said once.
#[test]
fn an_earlier_notify_lacking_the_mutex_is_said_once() {
    const NAME: &str = "an_earlier_notify_lacking_the_mutex_is_said_once";
    if !in_child(NAME) {
        let err = run_child(NAME, &[("LOCKCHECK_CONDVAR", "warn")]);
        let other = err
            .lines()
            .filter(|l| l.starts_with("lockcheck:") && !l.starts_with("lockcheck: note:"));
        assert_eq!(other.count(), 0, "no warning:\n{err}");
        return said_once(&err, "latest notify only", "tests/limit_notices.rs");
    }
    let pair = Arc::new((Mutex::named("notice.cv.m", false), Condvar::new()));
    let p = pair.clone();
    std::thread::spawn(move || {
        p.1.notify_all(); // without the mutex
        let _g = p.0.lock();
        p.1.notify_all(); // with it: the latest notify
    })
    .join()
    .unwrap();
    for _ in 0..2 {
        let mut g = pair.0.lock();
        *g = false;
        let p = pair.clone();
        // Takes the mutex once the wait released it: sets the flag and notifies, holding it.
        let waker = std::thread::spawn(move || {
            let mut g = p.0.lock();
            *g = true;
            p.1.notify_all();
        });
        pair.1.wait_while(&mut g, |done| !*done);
        drop(g);
        waker.join().unwrap();
    }
}

/// A run that hits none of the limits says nothing: a short try loop, a barrier and a channel
/// used holding nothing, a condvar notified under its mutex (condvar rule on), a forked child
/// with one thread on a free lock.
#[test]
fn a_clean_run_says_nothing() {
    const NAME: &str = "a_clean_run_says_nothing";
    if !in_child(NAME) {
        let err = run_child(NAME, &[("LOCKCHECK_CONDVAR", "warn")]);
        assert!(!err.contains("lockcheck:"), "nothing said:\n{err}");
        return;
    }
    // Tries that fail 10 times, holding a lock.
    let a = Mutex::named("clean.a", ());
    let b = Arc::new(Mutex::named("clean.b", ()));
    let g = b.lock();
    {
        let _a = a.lock();
        for _ in 0..10 {
            assert!(b.try_lock().is_none());
        }
    }
    drop(g);
    // A barrier and a channel.
    let barrier = Arc::new(Barrier::new(2));
    let (tx, rx) = lockcheck::sync::mpsc::channel::<u32>();
    let b2 = barrier.clone();
    let t = std::thread::spawn(move || {
        b2.wait();
        tx.send(1).unwrap();
    });
    barrier.wait();
    assert_eq!(rx.recv().unwrap(), 1);
    t.join().unwrap();
    // A condvar notified under its mutex.
    let pair = Arc::new((Mutex::named("clean.cv.m", false), Condvar::new()));
    let mut g = pair.0.lock();
    let p = pair.clone();
    let waker = std::thread::spawn(move || {
        let mut g = p.0.lock();
        *g = true;
        p.1.notify_all();
    });
    pair.1.wait_while(&mut g, |done| !*done);
    drop(g);
    waker.join().unwrap();
    // A forked child with one thread, on a free lock.
    #[cfg(target_os = "linux")]
    {
        // SAFETY: the child takes one free lockcheck lock and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            drop(a.lock());
            // SAFETY: leaves the forked child at once.
            unsafe { libc::_exit(0) }
        }
        let mut status = 0;
        // SAFETY: `pid` is our child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
}
