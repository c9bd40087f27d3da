//! Small races: a `lockcheck::thread::scope` that panics still joins its children for lockcheck
//! (the switch race is in `tests/trust_flags.rs`: it toggles lock-order checking).

mod support;

use lockcheck::Mutex;
use std::sync::Arc;
use support::found;

/// A scope whose closure panics: its child (which took A then B) is still joined, so the
/// parent's later B then A is ordered after it: silent.
#[test]
fn panicking_scope_still_joins_its_children() {
    let a = Mutex::named("scope.a", ());
    let b = Mutex::named("scope.b", ());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lockcheck::thread::scope(|s| {
            s.spawn(|| {
                let _a = a.lock();
                let _b = b.lock();
            });
            panic!("the scope's closure panics");
        })
    }));
    assert!(r.is_err());
    let later = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _b = b.lock();
        let _a = a.lock();
    }));
    assert!(
        later.is_ok(),
        "ordered after the joined child: no inversion"
    );
    assert!(found("scope.a").is_empty());
}

/// The other side: while the child runs (before the scope's join), the parent's opposite order
/// is concurrent with it: reported.
#[test]
fn opposite_order_inside_the_scope_is_reported() {
    let a = Arc::new(Mutex::named("scopein.a", ()));
    let b = Arc::new(Mutex::named("scopein.b", ()));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lockcheck::thread::scope(|s| {
            let (a2, b2) = (a.clone(), b.clone());
            s.spawn(move || {
                {
                    let _a = a2.lock();
                    let _b = b2.lock();
                }
                let _ = tx.send(());
            });
            let _ = rx.recv();
            let _b = b.lock();
            let _a = a.lock();
        })
    }));
    assert!(r.is_err(), "the inversion panics");
    assert!(!found("scopein.a").is_empty());
}
