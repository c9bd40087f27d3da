//! The joins of `lockcheck::thread::scope` are waits the runtime sees, as `spawn`'s `join`: the
//! implicit join at the scope's end and the explicit join of a scoped thread, made while holding
//! a lock a scoped thread waits for, are reported as a deadlock instead of hanging, whichever side
//! closes the cycle. The scoped thread gives up its locks (a panic of the joiner would hang in
//! std's own join of the scope's threads, with the joiner's guard, taken outside the scope,
//! still held), and the scope panics with the report. Look-alikes stay silent. Every scenario
//! runs under a watchdog: a miss hangs, and fails the test instead.

mod support;

use lockcheck::{Action, LockKind, Mutex, ViolationKind};
use std::time::Duration;
use support::{found, watchdog};

fn setup() {
    lockcheck::set_action(Action::Panic);
}

/// One deadlock between a scoped thread's end and the lock `class`, reported at `site_line`
/// (a line of this file) among its sites.
fn assert_join_deadlock(class: &str, site_line: u32) {
    let v = found(class);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::Deadlock);
    let classes = v[0].classes();
    assert!(
        classes
            .iter()
            .any(|c| c.starts_with("end of thread spawned at tests/join_scope.rs:")),
        "{classes:?}"
    );
    // The runtime names the end as the analyzer does: by its class alone, no kind before it.
    assert!(
        v[0].message
            .contains("`end of thread spawned at tests/join_scope.rs:")
            && !v[0].message.contains("end of `"),
        "{}",
        v[0].message
    );
    let at = format!("tests/join_scope.rs:{site_line}:");
    assert!(
        v[0].sites().iter().any(|s| s.contains(&at)),
        "{at} not in {:?}",
        v[0].sites()
    );
}

fn scope_end(class: &'static str, late: bool) -> (Result<(), String>, u32) {
    let line = line!() + 4;
    let r = watchdog(20, move || {
        let m = Mutex::named(class, 0);
        let g = m.lock();
        lockcheck::thread::scope(|s| {
            s.spawn(|| {
                if late {
                    // The scope's end waits for this thread first (a sleep did not make sure of
                    // it on a loaded machine, and the wrong side then closed the cycle).
                    support::wait_until("the scope's end waits", || {
                        support::blocked_at(LockKind::End, file!(), line + 1) == 1
                    });
                }
                *m.lock() += 1;
            });
            if !late {
                // The thread blocks on `m` first: the scope's end closes the cycle.
                support::wait_until("the scoped thread waits for m", || {
                    support::blocked_on(class) == 1
                });
            }
        });
        drop(g);
    });
    (r, line)
}

#[test]
fn a_scope_ending_while_holding_a_lock_its_thread_waits_for_is_a_deadlock() {
    setup();
    // The scope's end closes the cycle (its thread blocked first).
    let (r, line) = scope_end("join_scope.end", false);
    let msg = r.expect_err("the scope panics with the report");
    assert!(msg.contains("deadlock"), "{msg}");
    assert!(msg.contains(&format!("join_scope.rs:{line}:")), "{msg}");
    assert_join_deadlock("join_scope.end", line);
}

#[test]
fn a_scoped_thread_waiting_for_the_lock_of_its_ending_scope_is_a_deadlock() {
    setup();
    // The scoped thread closes the cycle (it blocks after the scope's end began).
    let (r, line) = scope_end("join_scope.end.late", true);
    r.expect_err("the scope panics: its thread did");
    assert_join_deadlock("join_scope.end.late", line);
}

#[test]
fn joining_a_scoped_thread_while_holding_its_lock_is_a_deadlock() {
    setup();
    let line = line!() + 11;
    let r = watchdog(20, || {
        let m = Mutex::named("join_scope.explicit", 0);
        let g = m.lock();
        lockcheck::thread::scope(|s| {
            let h = s.spawn(|| *m.lock() += 1);
            // The thread blocks on `m` first: the join closes the cycle (a sleep did not make
            // sure of it on a loaded machine).
            support::wait_until("the scoped thread waits for m", || {
                support::blocked_on("join_scope.explicit") == 1
            });
            let _ = h.join();
        });
        drop(g);
    });
    let msg = r.expect_err("the join panics with the report");
    assert!(msg.contains("deadlock"), "{msg}");
    assert!(msg.contains(&format!("join_scope.rs:{line}:")), "{msg}");
    assert_join_deadlock("join_scope.explicit", line);
}

#[test]
fn a_scope_that_releases_first_or_whose_thread_takes_another_lock_is_silent() {
    setup();
    watchdog(20, || {
        let m = Mutex::named("join_scope.fixed", 0);
        let n = Mutex::named("join_scope.other", 0);
        lockcheck::thread::scope(|s| {
            let g = m.lock();
            s.spawn(|| *m.lock() += 1);
            std::thread::sleep(Duration::from_millis(50));
            drop(g);
        });
        let g = m.lock();
        lockcheck::thread::scope(|s| {
            s.spawn(|| *n.lock() += 1);
        });
        drop(g);
    })
    .unwrap();
    assert!(found("join_scope.fixed").is_empty());
    assert!(found("join_scope.other").is_empty());
}

/// A thread-local whose destructor takes a lock.
struct TakesOnDrop(std::sync::Arc<Mutex<u32>>);

impl Drop for TakesOnDrop {
    fn drop(&mut self) {
        *self.0.lock() += 1;
    }
}

thread_local! {
    static TAKES: std::cell::RefCell<Option<TakesOnDrop>> =
        const { std::cell::RefCell::new(None) };
}

#[test]
fn a_scope_ending_while_holding_the_lock_of_a_thread_local_destructor_is_silent() {
    // The scope's implicit join waits for the closure only (rust-lang/rust#116179): the
    // destructor waits for the owner's lock, and the owner, past the join, lets it go. The
    // runtime must not take the join's wait for the thread's end, which the thread holds while
    // its destructors run, for a deadlock with the destructor's wait. The join is waiting when
    // the closure returns, and the destructor blocks at once: most rounds, the join's wait is
    // still registered then (the false report came in the first of them).
    setup();
    let line = line!() + 7;
    watchdog(30, move || {
        for _ in 0..20 {
            let m = std::sync::Arc::new(Mutex::named("join_scope.dtor", 0));
            let g = m.lock();
            lockcheck::thread::scope(|s| {
                let m = m.clone();
                s.spawn(move || {
                    TAKES.with(|t| *t.borrow_mut() = Some(TakesOnDrop(m)));
                    support::wait_until("the scope's end waits", || {
                        support::blocked_at(LockKind::End, file!(), line) == 1
                    });
                });
            });
            drop(g);
            // The destructor has the lock, or will: wait for it before the next round.
            while m.try_lock().map(|v| *v).unwrap_or(0) == 0 {
                std::thread::yield_now();
            }
        }
    })
    .unwrap();
    assert!(
        found("join_scope.dtor").is_empty(),
        "{:#?}",
        found("join_scope.dtor")
    );
}

/// A scoped thread's value whose drop takes a lock (a handle that unregisters itself).
struct Unregisters<'a>(&'a Mutex<u32>);

impl Drop for Unregisters<'_> {
    fn drop(&mut self) {
        *self.0.lock() += 1;
    }
}

#[test]
fn a_scope_ending_while_holding_the_lock_its_thread_s_value_takes_when_dropped_is_a_deadlock() {
    // std drops the value of a scoped thread whose handle is gone in that thread, after its
    // closure, and the scope's implicit join waits for that drop: holding the lock the drop
    // takes, the scope hangs (its join waits for the drop, the drop for the lock).
    setup();
    let line = line!() + 7; // the scope's line, where its implicit joins are
    let r = watchdog(20, move || {
        let m = Mutex::named("join_scope.value", 0);
        let other = Mutex::named("join_scope.value.other", 0);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let g = m.lock();
        let (m_ref, other_ref) = (&m, &other);
        lockcheck::thread::scope(|s| {
            s.spawn(move || {
                // The handle is gone (dropped at the end of this statement) before the value
                // is: the thread drops it.
                let _ = rx.recv();
                (Unregisters(m_ref), Unregisters(other_ref))
            });
            let _ = tx.send(());
        });
        drop(g);
    });
    r.expect_err("the scope panics with the report");
    assert_join_deadlock("join_scope.value", line);
    // The look-alike: the value's drop takes a lock the scope's owner does not hold.
    assert!(found("join_scope.value.other").is_empty());
}
