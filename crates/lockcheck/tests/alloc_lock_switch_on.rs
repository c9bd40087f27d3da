//! Checking switched on at run time (`lockcheck::set_action`) while a thread holds a lock it took
//! with checking off: that hold is on no held stack, and its release finds no entry. It is not
//! another thread's release (a forgotten guard unlocked elsewhere, noted as "foreign"): noting it
//! allocated right before the raw unlock (a global allocator taking that lock deadlocked on it),
//! and excused the next real self-deadlock on that lock, which then hung unreported. The
//! allocator: `support/stats_alloc.rs`.

#[path = "support/stats_alloc.rs"]
mod stats_alloc;

use lockcheck::{Action, Mutex, ViolationKind};
use stats_alloc::{guarded, use_lock};

fn fresh(name: &str) -> &'static Mutex<u64> {
    Box::leak(Box::new(Mutex::named(
        Box::leak(name.to_owned().into_boxed_str()),
        0,
    )))
}

/// Held across the switch on, released after: no hang; then a real self-deadlock on that lock
/// by the same thread is still reported (raised before it blocks).
#[test]
fn a_lock_held_across_the_switch_on_is_released_quietly_and_its_self_deadlocks_are_reported() {
    lockcheck::set_action(Action::Panic);
    let m = fresh("switch.allocs");
    use_lock(m);
    guarded(60, move || {
        // Known to lockcheck (its identity assigned), then taken with checking off.
        drop(m.lock());
        lockcheck::set_action(Action::Off);
        let g = m.lock();
        lockcheck::set_action(Action::Panic);
        drop(g);
    })
    .expect("no violation, no hang");
    use_lock(&stats_alloc::STATS);
    assert!(lockcheck::violations().is_empty());

    // Without the allocator's lock (a self-deadlock's report allocates, with the lock held):
    // the thread that released an untracked hold later locks that lock twice.
    let k = fresh("switch.k");
    drop(k.lock());
    let r = guarded(60, move || {
        lockcheck::set_action(Action::Off);
        let g = k.lock();
        lockcheck::set_action(Action::Panic);
        drop(g);
        let _a = k.lock();
        let _b = k.lock();
    });
    r.expect_err("the self-deadlock is raised, not hung on");
    let v = lockcheck::violations();
    assert!(
        v.iter().any(|v| v.kind == ViolationKind::SelfDeadlock
            && v.edges.iter().any(|e| e.acquired.class == "switch.k")),
        "reported: {v:?}"
    );
}
