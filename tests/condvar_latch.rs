//! The opt-in condvar rule's window: a wait is warned about when it holds a lock that a notifier
//! of the condvar held when it notified, or took in its window on the condvar (since its last
//! return from a wait on it or its last notify of it; on a condvar it has neither for, since its
//! latest such event on any condvar). A lock taken before the window, or by no notifier, is
//! silent. (The pool of `tests/real_bugs_round3.rs` section 9 is the bug this was made for.)
//! Every wait here has a timeout, and every scenario runs under a watchdog.

mod support;

use lockcheck::{Condvar, Mutex, ViolationKind};
use std::sync::Arc;
use std::time::Duration;
use support::{condvar_warnings as warnings, notifier_seen, watchdog};

fn setup() {
    lockcheck::set_action(lockcheck::Action::Warn);
    lockcheck::watchdog::set_condvar_check(true);
}

/// A condvar with its mutex.
type Pair = Arc<(Mutex<bool>, Condvar)>;

fn pair(class: &'static str) -> Pair {
    Arc::new((Mutex::named(class, false), Condvar::new()))
}

/// A wait on `p` (timing out) while holding `held`.
fn wait_holding(p: &Pair, held: &Mutex<u32>) {
    let _h = held.lock();
    let mut g = p.0.lock();
    let _ = p.1.wait_for(&mut g, Duration::from_millis(5));
}

/// On a thread of its own (joined): runs `f`.
fn on_thread(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

#[test]
fn a_lock_taken_after_the_notifiers_wait_and_released_before_its_notify_is_reported() {
    setup();
    watchdog(20, || {
        let l = Arc::new(Mutex::named("cvl.after.l", 0));
        let p = pair("cvl.after.m");
        let (l2, p2) = (l.clone(), p.clone());
        on_thread(move || {
            let mut g = p2.0.lock();
            let _ = p2.1.wait_for(&mut g, Duration::from_millis(1));
            drop(g);
            // In the window: after the wait, before the notify, not held at the notify.
            *l2.lock() += 1;
            *p2.0.lock() = true;
            p2.1.notify_all();
        });
        wait_holding(&p, &l);
    })
    .unwrap();
    let v = warnings("cvl.after.l");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(notifier_seen(&v[0]), "{v:#?}");
}

#[test]
fn a_notifiers_lock_taken_before_its_previous_wait_is_silent() {
    setup();
    watchdog(20, || {
        let l = Arc::new(Mutex::named("cvl.before.l", 0));
        let p = pair("cvl.before.m");
        let (l2, p2) = (l.clone(), p.clone());
        on_thread(move || {
            // Before the window: the wait below starts it again.
            *l2.lock() += 1;
            let mut g = p2.0.lock();
            let _ = p2.1.wait_for(&mut g, Duration::from_millis(1));
            *g = true;
            p2.1.notify_all();
        });
        wait_holding(&p, &l);
    })
    .unwrap();
    let v = warnings("cvl.before.l");
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn a_worker_that_notifies_without_taking_the_waiters_lock_is_silent() {
    setup();
    watchdog(20, || {
        let l = Arc::new(Mutex::named("cvl.never.l", 0));
        let other = Arc::new(Mutex::named("cvl.never.other", 0));
        let p = pair("cvl.never.m");
        let (o2, p2) = (other.clone(), p.clone());
        // A worker (it never waits on the condvar): its window is since its start.
        on_thread(move || {
            for _ in 0..3 {
                *o2.lock() += 1;
                *p2.0.lock() = true;
                p2.1.notify_all();
            }
        });
        wait_holding(&p, &l);
        // The other side in the same run: holding the lock the worker took is reported.
        wait_holding(&p, &other);
    })
    .unwrap();
    let v = warnings("cvl.never.l");
    assert!(v.is_empty(), "{v:#?}");
    let v = warnings("cvl.never.other");
    assert_eq!(v.len(), 1, "{v:#?}");
}

#[test]
fn each_condvar_notified_in_a_row_has_its_own_window() {
    setup();
    watchdog(20, || {
        let l = Arc::new(Mutex::named("cvl.row.l", 0));
        let (a, b) = (pair("cvl.row.a"), pair("cvl.row.b"));
        let (l2, a2, b2) = (l.clone(), a.clone(), b.clone());
        on_thread(move || {
            // `b`'s window starts here (its first notify); then `l`, then `a`, then `b` again:
            // the notify of `a` in between does not end `b`'s window.
            b2.1.notify_all();
            *l2.lock() += 1;
            a2.1.notify_all();
            b2.1.notify_all();
        });
        wait_holding(&b, &l);
    })
    .unwrap();
    let v = warnings("cvl.row.l");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].involves("cvl.row.b"), "{v:#?}");
}

#[test]
fn a_window_past_its_bound_is_reported_once_and_its_condvar_checked_against_every_lock() {
    setup();
    watchdog(20, || {
        let z = Mutex::named("cvl.bound.z", 0);
        let p = pair("cvl.bound.m");
        let p2 = p.clone();
        on_thread(move || {
            // More distinct locks than a thread's log keeps, all in the window of the first
            // notify (since the thread's start).
            let many: Vec<Mutex<u32>> =
                (0..80).map(|_| Mutex::named("cvl.bound.many", 0)).collect();
            for m in &many {
                *m.lock() += 1;
            }
            p2.1.notify_all();
            for m in &many {
                *m.lock() += 1;
            }
            p2.1.notify_all();
        });
        // `z` was never taken by the notifier: warned all the same (the window is not known in
        // full), and so said.
        wait_holding(&p, &z);
    })
    .unwrap();
    let limits: Vec<_> = lockcheck::violations()
        .into_iter()
        .filter(|v| {
            matches!(
                v.kind,
                ViolationKind::Incomplete {
                    limit: "condvar-window-locks",
                    ..
                }
            )
        })
        .collect();
    assert_eq!(limits.len(), 1, "{limits:#?}");
    assert!(
        limits[0]
            .message
            .contains("condvar rule keeps the latest 64"),
        "{}",
        limits[0].message
    );
    assert_eq!(warnings("cvl.bound.z").len(), 1);
}

#[test]
fn two_locks_of_two_classes_held_at_one_line_are_two_warnings() {
    setup();
    watchdog(20, || {
        let p = pair("cvl.key.m");
        let (x, y) = (
            Arc::new(Mutex::named("cvl.key.x", 0)),
            Arc::new(Mutex::named("cvl.key.y", 0)),
        );
        let (p2, x2, y2) = (p.clone(), x.clone(), y.clone());
        on_thread(move || {
            *x2.lock() += 1;
            *y2.lock() += 1;
            p2.1.notify_all();
        });
        // One wait line, one held line (in `wait_holding`), two classes.
        wait_holding(&p, &x);
        wait_holding(&p, &y);
    })
    .unwrap();
    assert_eq!(warnings("cvl.key.x").len(), 1);
    assert_eq!(warnings("cvl.key.y").len(), 1);
}
