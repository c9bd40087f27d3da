//! Findings at the same lines on locks of other classes are other findings: two tests (or two
//! users) sharing a helper each get their report in `violations()`, rather than the first one
//! hiding the others (the runtime deduplicated self-deadlocks and inversions by their sites
//! alone).

mod support;

use lockcheck::{Action, Mutex};
use std::sync::Arc;
use support::{found, two_threads, watchdog};

/// Locks `m` twice: a self-deadlock at the same two lines whatever `m`'s class.
fn relock(m: &Mutex<u32>) {
    let _g = m.lock();
    let _h = m.lock();
}

/// Two threads locking `a` then `b`, and `b` then `a`, at the same lines whatever the classes.
fn opposite_orders(a: &'static str, b: &'static str) -> Result<(), String> {
    let (a, b) = (Arc::new(Mutex::named(a, 0)), Arc::new(Mutex::named(b, 0)));
    let (a2, b2) = (a.clone(), b.clone());
    let (first, second) = two_threads(
        move || {
            let _a = a.lock();
            *b.lock() += 1;
        },
        move || {
            let _b = b2.lock();
            *a2.lock() += 1;
        },
    );
    first?;
    match second {
        Err(_) => Ok(()),
        Ok(()) => Err("the closing acquisition was not refused".into()),
    }
}

#[test]
fn self_deadlocks_at_the_same_lines_on_two_classes_are_two_findings() {
    lockcheck::set_action(Action::Panic);
    watchdog(20, || {
        for name in ["dedup.self.a", "dedup.self.b"] {
            let m = Mutex::named(name, 0);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| relock(&m)));
            assert!(r.is_err(), "{name}: the second lock must be refused");
        }
    })
    .unwrap();
    assert_eq!(found("dedup.self.a").len(), 1);
    assert_eq!(found("dedup.self.b").len(), 1);
}

#[test]
fn inversions_at_the_same_lines_on_two_class_pairs_are_two_findings() {
    lockcheck::set_action(Action::Panic);
    watchdog(20, || {
        opposite_orders("dedup.inv.a", "dedup.inv.b").unwrap();
        opposite_orders("dedup.inv.c", "dedup.inv.d").unwrap();
    })
    .unwrap();
    assert_eq!(found("dedup.inv.a").len(), 1);
    assert_eq!(found("dedup.inv.c").len(), 1);
}
