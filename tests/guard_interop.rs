//! parking_lot's guard operations keep the held set right: `unlocked` (not held inside the
//! closure, re-acquired after it), `bump` (a release and a re-acquisition), `leak` then
//! `force_unlock`, `map`/`try_map`, upgradable guards (`upgrade`, `try_upgrade`, `downgrade`).

mod support;

use lockcheck::{
    FairMutex, FairMutexGuard, Mutex, MutexGuard, ReentrantMutex, ReentrantMutexGuard, RwLock,
    RwLockReadGuard, RwLockUpgradableReadGuard, RwLockWriteGuard, ViolationKind,
};
use std::sync::Arc;
use support::{found, two_threads, watchdog};

fn pair(a: &'static str, b: &'static str) -> (Arc<Mutex<u32>>, Arc<Mutex<u32>>) {
    (Arc::new(Mutex::named(a, 0)), Arc::new(Mutex::named(b, 0)))
}

#[test]
fn a_guard_unlocked_by_unlocked_is_not_held_inside_the_closure() {
    let r = watchdog(10, || {
        let a = Mutex::named("gi.unl.self", 0);
        let mut g = a.lock();
        MutexGuard::unlocked(&mut g, || *a.lock() += 1);
        MutexGuard::unlocked_fair(&mut g, || *a.lock() += 1);
        *g += 1;
        drop(g);
        assert_eq!(*a.lock(), 3);
    });
    assert!(r.is_ok(), "{r:?}");
    assert!(found("gi.unl.self").is_empty());
}

#[test]
fn a_lock_taken_inside_unlocked_makes_no_order_with_the_unlocked_one() {
    let (a, b) = pair("gi.unl.a", "gi.unl.b");
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            let mut g = a.lock();
            MutexGuard::unlocked(&mut g, || drop(b.lock()));
        },
        move || {
            let _b = b2.lock();
            let _a = a2.lock();
        },
    );
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert!(found("gi.unl.a").is_empty(), "{:#?}", found("gi.unl.a"));
}

#[test]
fn unlocked_reacquires_under_what_the_closure_kept() {
    // The closure returns B's guard: A is retaken while B is held, "B then A".
    let (a, b) = pair("gi.re.a", "gi.re.b");
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            let mut g = a.lock();
            let hb = MutexGuard::unlocked(&mut g, || b.lock());
            drop(g);
            drop(hb);
        },
        move || {
            let _a = a2.lock();
            let _b = b2.lock();
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    assert!(r2.is_err(), "A then B against the re-acquisition B then A");
    assert_eq!(found("gi.re.a")[0].kind, ViolationKind::LockOrderInversion);
}

#[test]
fn bump_is_a_release_and_a_reacquisition() {
    // bump hands A to a waiter and takes it back while B is held: "B then A".
    let (a, b) = pair("gi.bump.a", "gi.bump.b");
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            let mut ga = a.lock();
            let _gb = b.lock();
            MutexGuard::bump(&mut ga);
        },
        move || {
            let _a = a2.lock();
            let _b = b2.lock();
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    assert!(r2.is_err());
    let v = found("gi.bump.a");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0]
        .sites()
        .iter()
        .all(|s| s.starts_with("tests/guard_interop.rs:")));
}

#[test]
fn bump_with_nothing_else_held_is_silent() {
    let (a, b) = pair("gi.bq.a", "gi.bq.b");
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            let mut ga = a.lock();
            MutexGuard::bump(&mut ga);
            let _gb = b.lock();
            let fair = FairMutex::named("gi.bq.fair", ());
            let mut gf = fair.lock();
            FairMutexGuard::bump(&mut gf);
        },
        move || {
            let _a = a2.lock();
            let _b = b2.lock();
        },
    );
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert!(found("gi.bq.a").is_empty());
    assert!(found("gi.bq.fair").is_empty());
}

#[test]
fn rwlock_bump_is_a_reacquisition_too() {
    let l = Arc::new(RwLock::named("gi.rwb.l", 0));
    let b = Arc::new(Mutex::named("gi.rwb.b", 0));
    let (l2, b2) = (l.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            let mut w = l.write();
            let _b = b.lock();
            RwLockWriteGuard::bump(&mut w);
        },
        move || {
            let _w = l2.write();
            let _b = b2.lock();
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    assert!(r2.is_err());
    assert!(!found("gi.rwb.l").is_empty());
    let r = watchdog(10, || {
        let l = RwLock::named("gi.rwb.quiet", 0);
        let mut r = l.read();
        RwLockReadGuard::bump(&mut r);
        drop(r);
        let mut u = l.upgradable_read();
        RwLockUpgradableReadGuard::bump(&mut u);
        drop(u);
        *l.write() += 1;
    });
    assert!(r.is_ok(), "{r:?}");
    assert!(found("gi.rwb.quiet").is_empty());
}

#[test]
fn leak_then_force_unlock_leaves_nothing_held() {
    let (a, b) = pair("gi.leak.a", "gi.leak.b");
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            *MutexGuard::leak(a.lock()) += 1;
            // SAFETY: the guard was leaked just above, on this thread.
            unsafe { a.force_unlock() };
            std::mem::forget(a.lock());
            // SAFETY: as above.
            unsafe { a.force_unlock_fair() };
            std::mem::forget(a.lock());
            // SAFETY: as above; the raw lock is what the guard would have unlocked.
            unsafe { lockcheck::lock_api::RawMutex::unlock(a.raw()) };
            // Nothing held: no self-deadlock, and B is taken without A.
            drop(a.lock());
            drop(b.lock());
        },
        move || {
            let _b = b2.lock();
            let _a = a2.lock();
        },
    );
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert!(found("gi.leak.a").is_empty(), "{:#?}", found("gi.leak.a"));
}

#[test]
fn mapped_guards_release_and_an_unmapped_try_map_keeps_holding() {
    let r = watchdog(10, || {
        let m = Mutex::named("gi.map", vec![1, 2]);
        let first = MutexGuard::map(m.lock(), |v| &mut v[0]);
        assert_eq!(*first, 1);
        drop(first);
        assert!(!m.is_locked());
        let kept = MutexGuard::try_map(m.lock(), |v| v.get_mut(9)).expect_err("no index 9");
        assert!(m.is_locked());
        assert!(!m.data_ptr().is_null());
        let _again = m.lock(); // `kept` still holds it: a true self-deadlock
        drop(kept);
    });
    let msg = r.expect_err("the second lock is reported");
    assert!(msg.contains("self-deadlock"), "{msg}");
    assert_eq!(found("gi.map").len(), 1);
}

#[test]
fn upgrade_and_downgrade_change_the_held_mode() {
    // After upgrade then downgrade the hold is shared: another `read` is the recursive-read
    // hazard, not a self-deadlock; `read_recursive` is fine.
    let r = watchdog(10, || {
        let l = RwLock::named("gi.up", 0);
        let u = l.upgradable_read();
        let w = RwLockUpgradableReadGuard::upgrade(u);
        let r = RwLockWriteGuard::downgrade(w);
        let rr = l.read_recursive();
        drop(rr);
        let _r2 = l.read();
        drop(r);
    });
    let msg = r.expect_err("recursive read reported");
    assert!(msg.contains("recursive read"), "{msg}");
    let v = found("gi.up");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::RecursiveRead);

    let r = watchdog(10, || {
        let l = RwLock::named("gi.up.try", 0);
        let u = l.upgradable_read();
        let w = RwLockUpgradableReadGuard::try_upgrade(u).expect("no readers");
        let u = RwLockWriteGuard::downgrade_to_upgradable(w);
        let r = l.read(); // readers coexist with an upgradable holder
        drop(r);
        let r = RwLockUpgradableReadGuard::downgrade(u);
        drop(r);
        let mut u = l.upgradable_read();
        u.with_upgraded(|v| *v += 1);
        drop(u);
        *l.write() += 1; // nothing held any more
    });
    assert!(r.is_ok(), "{r:?}");
    assert!(found("gi.up.try").is_empty(), "{:#?}", found("gi.up.try"));
}

#[test]
fn a_reentrant_guard_unlocked_is_not_held_inside_the_closure() {
    let r = watchdog(10, || {
        let m = ReentrantMutex::named("gi.re", 0);
        let other = Mutex::named("gi.re.other", 0);
        let mut g = m.lock();
        ReentrantMutexGuard::unlocked(&mut g, || drop(other.lock()));
        ReentrantMutexGuard::bump(&mut g);
        drop(g);
    });
    assert!(r.is_ok(), "{r:?}");
    assert!(found("gi.re").is_empty());
}

#[test]
fn a_bump_stopped_by_a_report_leaves_the_held_set_right() {
    // The report panics inside `bump` while the lock is still held; the guard then releases it
    // while unwinding. That release must match the hold, or a later true self-deadlock on the
    // same lock would be taken for a stale entry and hang.
    let r = watchdog(20, || {
        let (a, b) = pair("gi.bstop.a", "gi.bstop.b");
        let (a2, b2) = (a.clone(), b.clone());
        let (r1, r2) = two_threads(
            move || {
                let _a = a.lock();
                let _b = b.lock();
            },
            move || {
                let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let mut ga = a2.lock();
                    let _gb = b2.lock();
                    MutexGuard::bump(&mut ga); // "B then A": reported here
                }));
                assert!(stopped.is_err(), "the bump's inversion is reported");
                let _x = a2.lock();
                let _y = a2.lock(); // a true self-deadlock: reported, not hung
            },
        );
        assert!(r1.is_ok(), "{r1:?}");
        let msg = r2.expect_err("the self-deadlock is reported");
        assert!(msg.contains("self-deadlock"), "{msg}");
    });
    assert!(r.is_ok(), "{r:?}");
}
