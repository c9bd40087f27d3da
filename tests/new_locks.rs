//! parking_lot's other locks, instrumented: `ReentrantMutex` (re-entry by the owner is fine, the
//! first acquisition takes part in the order), `FairMutex` (a mutex for ordering) and `Once`
//! (a lock held by the initializing thread). Every scenario on both sides.

mod support;

use lockcheck::{FairMutex, Mutex, Once, ReentrantMutex, ViolationKind};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use support::{found, two_threads, watchdog};

#[test]
fn reentrant_mutex_reentered_by_its_owner_is_no_self_deadlock() {
    let r = watchdog(10, || {
        let m = ReentrantMutex::named("re.self", 1);
        let a = m.lock();
        let b = m.lock();
        let c = m.try_lock().expect("the owner re-enters");
        let d = m.try_lock_for(Duration::from_millis(1)).expect("re-enters");
        assert_eq!(*a + *b + *c + *d, 4);
    });
    assert!(r.is_ok(), "{r:?}");
    assert!(found("re.self").is_empty(), "{:#?}", found("re.self"));
}

#[test]
fn a_plain_mutex_locked_twice_is_still_a_self_deadlock() {
    let r = watchdog(10, || {
        let m = Mutex::named("re.plain", 1);
        let _a = m.lock();
        let _b = m.lock();
    });
    let msg = r.expect_err("reported instead of hanging");
    assert!(msg.contains("self-deadlock"), "{msg}");
    assert_eq!(found("re.plain")[0].kind, ViolationKind::SelfDeadlock);
}

#[test]
fn reentrant_mutex_takes_part_in_lock_order() {
    let a = Arc::new(ReentrantMutex::named("re.ord.a", ()));
    let b = Arc::new(Mutex::named("re.ord.b", ()));
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            let _a = a.lock();
            let _again = a.lock();
            let _b = b.lock();
        },
        move || {
            let _b = b2.lock();
            let _a = a2.lock(); // reported here, before blocking
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    let msg = r2.expect_err("the inversion panics");
    assert!(msg.contains("lock order inversion"), "{msg}");
    let v = found("re.ord.a");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
    // The sites are the user's lines, not lock_api's.
    assert!(
        v[0].sites()
            .iter()
            .all(|s| s.starts_with("tests/new_locks.rs:")),
        "{:?}",
        v[0].sites()
    );
}

#[test]
fn reentering_after_another_lock_is_no_order_edge() {
    // Owner re-entry cannot block, so `b` then re-entering `a` is no "b before a".
    let a = Arc::new(ReentrantMutex::named("re.quiet.a", ()));
    let b = Arc::new(Mutex::named("re.quiet.b", ()));
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            let _a = a.lock();
            let _b = b.lock();
            let _again = a.lock();
        },
        move || {
            let _a = a2.lock();
            let _b = b2.lock();
        },
    );
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert!(found("re.quiet.a").is_empty(), "{:#?}", found("re.quiet.a"));
}

#[test]
fn fair_mutex_is_a_mutex_for_ordering() {
    let a = Arc::new(FairMutex::named("fair.a", ()));
    let b = Arc::new(Mutex::named("fair.b", ()));
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            let _a = a.lock();
            let _b = b.lock();
        },
        move || {
            let _b = b2.lock();
            let _a = a2.lock();
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    assert!(r2.is_err());
    assert_eq!(found("fair.a")[0].kind, ViolationKind::LockOrderInversion);
}

#[test]
fn fair_mutex_in_a_consistent_order_is_silent() {
    let a = Arc::new(FairMutex::named("fair.ok.a", ()));
    let b = Arc::new(Mutex::named("fair.ok.b", ()));
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            let _a = a.lock();
            let _b = b.lock();
        },
        move || {
            let _a = a2.lock();
            let _b = b2.lock();
        },
    );
    assert!(r1.is_ok() && r2.is_ok());
    assert!(found("fair.ok.a").is_empty());
    let r = watchdog(10, || {
        let m = FairMutex::named("fair.self", ());
        let _a = m.lock();
        let _b = m.lock();
    });
    assert!(r.is_err(), "a fair mutex locked twice is a self-deadlock");
}

#[test]
fn once_whose_initializer_reenters_it_is_reported_not_hung() {
    let r = watchdog(10, || {
        let once = Once::named("once.self");
        once.call_once(|| once.call_once(|| ()));
    });
    let msg = r.expect_err("reported instead of hanging");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = found("once.self");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::SelfDeadlock);
}

#[test]
fn once_done_is_a_fast_path_without_checks() {
    let r = watchdog(10, || {
        let once = Once::named("once.done");
        let l = Mutex::named("once.done.l", ());
        once.call_once(|| ());
        // Calling a completed Once while holding anything is no dependency.
        let _l = l.lock();
        once.call_once(|| unreachable!());
        assert!(once.state().done());
    });
    assert!(r.is_ok(), "{r:?}");
    assert!(found("once.done").is_empty());
}

/// Per-object `Once`s of one class: the order is checked across them, as for locks.
fn class_once() -> Once {
    Once::named("once.cls")
}

#[test]
fn lock_held_around_call_once_against_an_initializer_taking_it_is_reported() {
    let l = Arc::new(Mutex::named("once.cls.l", ()));
    let l2 = l.clone();
    let (r1, r2) = two_threads(
        move || {
            // The initializer takes L: "Once, then L".
            let o = class_once();
            o.call_once(|| drop(l.lock()));
        },
        move || {
            // L held while calling into an initialization: "L, then Once".
            let o = class_once();
            let _l = l2.lock();
            o.call_once(|| ());
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    assert!(r2.is_err(), "the inversion is reported");
    let v = found("once.cls");
    assert_eq!(v.len(), 1, "{v:#?}");
    // Two Once instances of one class: found at class level, before any unlucky pairing.
    assert_eq!(v[0].kind, ViolationKind::ClassInversion);
    let mut classes = v[0].classes();
    classes.sort();
    assert_eq!(classes, ["once.cls", "once.cls.l"]);
}

fn quiet_once() -> Once {
    Once::named("once.quiet")
}

#[test]
fn once_in_a_consistent_order_with_a_lock_is_silent() {
    let l = Arc::new(Mutex::named("once.quiet.l", ()));
    let l2 = l.clone();
    let (r1, r2) = two_threads(
        move || {
            let o = quiet_once();
            o.call_once(|| drop(l.lock()));
        },
        move || {
            // Same order: the Once first, L inside (and L taken after the Once is done).
            let o = quiet_once();
            o.call_once(|| drop(l2.lock()));
            let _l = l2.lock();
            o.call_once(|| ());
        },
    );
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert!(found("once.quiet").is_empty(), "{:#?}", found("once.quiet"));
}

#[test]
fn the_real_once_and_lock_deadlock_is_reported_not_hung() {
    // Thread 1 runs the initializer and, inside it, waits until thread 2 holds L and calls
    // into the Once; then it takes L. Without lockcheck both threads would wait forever.
    let r = watchdog(20, || {
        let once = Arc::new(Once::named("once.real"));
        let l = Arc::new(Mutex::named("once.real.l", ()));
        let (held_tx, held_rx) = mpsc::channel::<()>();
        // The initializer has started (a signal, not a sleep: under load the caller could
        // otherwise run the Once first, and there would be no deadlock to find).
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (o2, l2) = (once.clone(), l.clone());
        let init = std::thread::spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                o2.call_once(|| {
                    started_tx.send(()).unwrap();
                    held_rx.recv().unwrap();
                    std::thread::sleep(Duration::from_millis(100));
                    drop(l2.lock());
                })
            }))
        });
        started_rx.recv().unwrap();
        let caller = std::thread::spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _l = l.lock();
                held_tx.send(()).unwrap();
                once.call_once(|| ());
            }))
        });
        let a = init.join().unwrap();
        let b = caller.join().unwrap();
        assert!(
            a.is_err() || b.is_err(),
            "one side is stopped by the report"
        );
    });
    assert!(r.is_ok(), "{r:?}");
    let v = found("once.real");
    assert!(!v.is_empty());
    assert!(
        v.iter().all(|v| matches!(
            v.kind,
            ViolationKind::LockOrderInversion | ViolationKind::Deadlock
        )),
        "{v:#?}"
    );
}

#[test]
fn lock_api_mutexes_over_lockchecks_raw_mutex_are_checked_per_instance() {
    // What `lock_api::Mutex<parking_lot::RawMutex, T>` becomes with the raw type swapped: no
    // class (built from `RawMutex::INIT`), but the instances' order is checked.
    type ApiMutex<T> = lockcheck::lock_api::Mutex<lockcheck::RawMutex, T>;
    let a = Arc::new(ApiMutex::new(0));
    let b = Arc::new(ApiMutex::new(0));
    let (a2, b2) = (a.clone(), b.clone());
    let before = lockcheck::violations().len();
    let (r1, r2) = two_threads(
        move || {
            let _a = a.lock();
            let _b = b.lock();
        },
        move || {
            let _b = b2.lock();
            let _a = a2.lock();
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    let msg = r2.expect_err("the instance-level inversion is reported");
    assert!(msg.contains("lock order inversion"), "{msg}");
    assert!(lockcheck::violations().len() > before);
}
