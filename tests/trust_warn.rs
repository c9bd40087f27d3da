//! `LOCKCHECK=warn` (set from code here) and a certain hang: a wait-for cycle, or a thread
//! locking a mutex it holds, never resolves itself, so it is reported and panics under `warn` as
//! under `panic` (it used to print a report and hang). An inversion that has not deadlocked is
//! only reported under `warn`. Lock-order checking is off so that the threads reach the deadlock.

mod support;

use lockcheck::{Action, Mutex, RwLock, ViolationKind};
use std::sync::{Arc, Barrier};
use support::{found, watchdog};

fn setup() {
    lockcheck::set_action(Action::Warn);
    lockcheck::set_order_checking(false);
}

#[test]
fn real_deadlock_panics_under_warn() {
    setup();
    let r = watchdog(20, || {
        let a = Arc::new(Mutex::named("wdl.a", ()));
        let b = Arc::new(Mutex::named("wdl.b", ()));
        let barrier = Arc::new(Barrier::new(2));
        let t = {
            let (a, b, barrier) = (a.clone(), b.clone(), barrier.clone());
            std::thread::spawn(move || {
                let _b = b.lock();
                barrier.wait();
                let _a = a.lock();
            })
        };
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _a = a.lock();
            barrier.wait();
            let _b = b.lock();
        }));
        let theirs = t.join();
        assert_eq!(
            usize::from(mine.is_err()) + usize::from(theirs.is_err()),
            1,
            "exactly the thread that closes the wait-for cycle panics"
        );
    });
    r.unwrap();
    let v: Vec<_> = found("wdl.a")
        .into_iter()
        .filter(|v| v.kind == ViolationKind::Deadlock)
        .collect();
    assert_eq!(v.len(), 1, "{v:#?}");
}

#[test]
fn self_deadlock_panics_under_warn() {
    setup();
    let r = watchdog(20, || {
        let m = Mutex::named("wsd.m", ());
        let _g = m.lock();
        let _again = m.lock();
    });
    let msg = r.expect_err("a thread locking what it holds would hang: it panics");
    assert!(msg.contains("self-deadlock"), "{msg}");
    assert_eq!(found("wsd.m").len(), 1);
}

/// The look-alikes: a recursive read (a hazard, not a certain hang) is reported and goes on.
#[test]
fn recursive_read_goes_on_under_warn() {
    setup();
    watchdog(20, || {
        let l = RwLock::named("wrr.l", 0);
        let _r1 = l.read();
        let _r2 = l.read();
    })
    .unwrap();
    let v = found("wrr.l");
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].kind, ViolationKind::RecursiveRead);
}
