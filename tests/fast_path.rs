//! The inlined fast path (nothing held, or a dependency already in the thread's exact cache) and
//! the release's pop of the top entry: speed must never cost a finding. Each scenario warms the
//! cache first, so that the acquisition under test would take the fast path if it could.

mod support;

use lockcheck::{Mutex, RwLock, ViolationKind};
use std::sync::Arc;
use support::{found, panic_message, two_threads, watchdog};

/// Many acquisitions of `b` while holding `a`: after the first, each is a cache hit.
fn warm(a: &Mutex<u32>, b: &Mutex<u32>) {
    for _ in 0..1000 {
        let _a = a.lock();
        *b.lock() += 1;
    }
}

#[test]
fn a_warm_cache_stays_silent_and_still_reports_the_inversion() {
    let a = Arc::new(Mutex::named("fp.inv.a", 0));
    let b = Arc::new(Mutex::named("fp.inv.b", 0));
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || warm(&a, &b),
        move || {
            warm(&a2, &b2); // the same order from a second thread: a look-alike, silent
            let _b = b2.lock();
            let _a = a2.lock(); // the inversion: reported here
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    let msg = r2.expect_err("the inversion must panic under LOCKCHECK=panic");
    assert!(msg.contains("lock order inversion"), "{msg}");
    let v = found("fp.inv.a");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
}

#[test]
fn the_same_order_from_two_threads_is_silent() {
    let a = Arc::new(Mutex::named("fp.same.a", 0));
    let b = Arc::new(Mutex::named("fp.same.b", 0));
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(move || warm(&a, &b), move || warm(&a2, &b2));
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert!(found("fp.same.a").is_empty(), "{:#?}", found("fp.same.a"));
}

#[test]
fn a_self_deadlock_under_a_cached_held_set_is_reported() {
    let r = watchdog(20, || {
        let a = Mutex::named("fp.self.a", 0);
        let b = Mutex::named("fp.self.b", 0);
        warm(&a, &b);
        let _a = a.lock();
        let _b = b.lock();
        let _again = a.lock(); // holds {a, b}: must report, not hang
    });
    let msg = r.expect_err("a self-deadlock panics");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = found("fp.self.a");
    assert!(
        v.iter().any(|v| v.kind == ViolationKind::SelfDeadlock),
        "{v:#?}"
    );
}

#[test]
fn releases_out_of_order_leave_nothing_held() {
    let r = watchdog(20, || {
        let a = Mutex::named("fp.order.a", 0);
        let b = Mutex::named("fp.order.b", 0);
        for _ in 0..100 {
            let ga = a.lock();
            let gb = b.lock();
            drop(ga); // not on top: the general release
            drop(gb); // on top: the fast pop
        }
        // A stale entry of either would make these a false self-deadlock.
        let _a = a.lock();
        let _b = b.lock();
    });
    assert!(r.is_ok(), "{r:?}");
    assert!(found("fp.order.a").is_empty(), "{:#?}", found("fp.order.a"));
}

#[test]
fn a_new_held_set_is_checked_even_with_its_lock_cached_under_another() {
    let a = Arc::new(Mutex::named("fp.set.a", 0));
    let b = Arc::new(Mutex::named("fp.set.b", 0));
    let c = Arc::new(Mutex::named("fp.set.c", 0));
    let (a2, b2, c2) = (a.clone(), b.clone(), c.clone());
    let (r1, r2) = two_threads(
        move || {
            // c under {a} cached; then c under {b, a}: a new dependency b -> c.
            warm(&a, &c);
            let _b = b.lock();
            let _a = a.lock();
            let _c = c.lock();
        },
        move || {
            let _c = c2.lock();
            let _b = b2.lock(); // inverts b -> c
            let _ = &a2;
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    let msg = r2.expect_err("the inversion of b -> c must panic");
    assert!(msg.contains("lock order inversion"), "{msg}");
    assert!(!found("fp.set.b").is_empty());
}

#[test]
fn rwlock_writes_and_reads_after_the_first_write_are_still_checked() {
    let a = Arc::new(Mutex::named("fp.rw.a", 0));
    let r = Arc::new(RwLock::named("fp.rw.r", 0));
    let (a2, r2) = (a.clone(), r.clone());
    let (r1, res2) = two_threads(
        move || {
            for _ in 0..1000 {
                let _a = a.lock();
                *r.write() += 1; // after the first, on the fast path
                let _read = r.read();
            }
        },
        move || {
            let _w = r2.write();
            let _a = a2.lock(); // inverts a -> r
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    let msg = res2.expect_err("the inversion must panic");
    assert!(msg.contains("lock order inversion"), "{msg}");
    assert!(!found("fp.rw.r").is_empty());
}

/// The nested fast path's memo (one held lock, the last dependency checked over it) survives
/// the release and re-acquisition of that lock, but not a spawn: the parent's order after the
/// spawn is concurrent with the child's and must reach the graph again.
#[test]
fn a_warm_memo_does_not_outlive_a_spawn() {
    let a = Arc::new(Mutex::named("fp.memo.spawn.a", 0));
    let b = Arc::new(Mutex::named("fp.memo.spawn.b", 0));
    warm(&a, &b);
    let (a2, b2) = (a.clone(), b.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let child = lockcheck::thread::spawn(move || {
        let _b = b2.lock();
        let _a = a2.lock();
        tx.send(()).unwrap();
    });
    rx.recv().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _a = a.lock();
        let _b = b.lock(); // the memo says "known": only for the clock before the spawn
    }));
    child.join().unwrap();
    let msg = panic_message(&*r.expect_err("the inversion must panic"));
    assert!(msg.contains("lock order inversion"), "{msg}");
    assert_eq!(found("fp.memo.spawn.a").len(), 1);
}

/// The look-alike: the child's reversed order before the join, the parent's warm order after
/// it (and before the spawn): ordered, silent, and the memo path is taken again afterwards.
#[test]
fn a_warm_memo_after_a_join_stays_silent() {
    let a = Arc::new(Mutex::named("fp.memo.join.a", 0));
    let b = Arc::new(Mutex::named("fp.memo.join.b", 0));
    warm(&a, &b);
    let (a2, b2) = (a.clone(), b.clone());
    lockcheck::thread::spawn(move || {
        let _b = b2.lock();
        let _a = a2.lock();
    })
    .join()
    .expect("the child's order comes after the parent's: no report");
    warm(&a, &b);
    assert!(
        found("fp.memo.join.a").is_empty(),
        "{:#?}",
        found("fp.memo.join.a")
    );
}

/// The memo is for the held lock in the mode it was held: an upgrade makes the same lock
/// under it a new dependency. A recursive read of X under B waits for no upgradable holder of
/// X (the other thread's order, X upgradable then B, is silent), but for a writer it does.
#[test]
fn an_upgraded_hold_is_checked_again_under_a_warm_memo() {
    let x = Arc::new(RwLock::named("fp.memo.up.x", 0));
    let b = Arc::new(Mutex::named("fp.memo.up.b", 0));
    let (x2, b2) = (x.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            let _b = b2.lock();
            let _x = x2.read_recursive();
        },
        move || {
            let _ = *x.write(); // the first write is behind us
            for _ in 0..1000 {
                let _x = x.upgradable_read();
                *b.lock() += 1; // silent
            }
            assert!(
                found("fp.memo.up.x").is_empty(),
                "{:#?}",
                found("fp.memo.up.x")
            );
            let up = x.upgradable_read();
            let _w = lockcheck::RwLockUpgradableReadGuard::upgrade(up);
            *b.lock() += 1; // X written, then B: inverts B -> recursive read of X
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    let msg = r2.expect_err("the inversion must panic");
    assert!(msg.contains("lock order inversion"), "{msg}");
    assert!(!found("fp.memo.up.x").is_empty());
}

/// The fast push of an exclusive hold stores the lock's identity as its word and leaves the
/// slot's separate identity as an earlier entry wrote it (one store less): here an RwLock's
/// read. The held lock's class in the report must still be its own.
#[test]
fn a_held_lock_keeps_its_class_in_a_slot_a_read_used_before() {
    let a = Arc::new(Mutex::named("fp.slot.a", 0));
    let b = Arc::new(Mutex::named("fp.slot.b", 0));
    let r = Arc::new(RwLock::named("fp.slot.r", 0));
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            let _b = b2.lock();
            let _a = a2.lock();
        },
        move || {
            for _ in 0..3 {
                drop(r.read()); // the slot's identity: the RwLock's
            }
            let _a = a.lock(); // the fast push: the identity left as the read wrote it
            let _b = b.lock(); // inverts b -> a, with a held
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    let msg = r2.expect_err("the inversion must panic");
    assert!(msg.contains("lock order inversion"), "{msg}");
    let v = found("fp.slot.a");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].edges.iter().all(|e| e.held.class != "fp.slot.r"),
        "{v:#?}"
    );
    assert!(found("fp.slot.r").is_empty(), "{:#?}", found("fp.slot.r"));
}

/// The same with the slot's identity left by an earlier hold of the same lock, before the
/// lock's identity gained its graph flag: the class is the same and the inversion is found.
#[test]
fn a_held_lock_keeps_its_class_in_a_slot_it_used_before_its_graph_flag() {
    let a = Arc::new(Mutex::named("fp.slot2.a", 0));
    let b = Arc::new(Mutex::named("fp.slot2.b", 0));
    let c = Arc::new(Mutex::named("fp.slot2.c", 0));
    let (a2, c2) = (a.clone(), c.clone());
    let (r1, r2) = two_threads(
        move || {
            let _c = c2.lock();
            let _a = a2.lock();
        },
        move || {
            drop(a.lock()); // the thread's first: the full path writes the slot's identity
            {
                let _a = a.lock();
                let _b = b.lock(); // a new edge from a: its identity gains the graph flag
            }
            let _a = a.lock(); // the fast push, over the identity written before the flag
            let _c = c.lock(); // inverts c -> a, with a held
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    let msg = r2.expect_err("the inversion must panic");
    assert!(msg.contains("lock order inversion"), "{msg}");
    let v = found("fp.slot2.c");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].edges.iter().any(|e| e.held.class == "fp.slot2.a"),
        "{v:#?}"
    );
}
