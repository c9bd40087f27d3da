//! The `send_guard` and `arc_lock` features (run with `--features send_guard,arc_lock`; CI
//! does). A guard released on another thread leaves the acquiring thread's held set; locks
//! held through an `Arc` are checked as any other, at the user's lines.

use std::sync::mpsc;
use std::time::Duration;

/// Violations that involve the class `class`.
#[allow(dead_code)]
fn found(class: &str) -> Vec<lockcheck::Violation> {
    lockcheck::violations()
        .into_iter()
        .filter(|v| v.involves(class))
        .collect()
}

/// Runs `first`, then `second` on another thread while the first one is still alive (so that
/// lockcheck sees them as concurrent); returns whether each panicked.
#[allow(dead_code)]
fn two_threads(
    first: impl FnOnce() + Send + 'static,
    second: impl FnOnce() + Send + 'static,
) -> (bool, bool) {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let t1 = std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(first)).is_err();
        let _ = done_tx.send(());
        let _ = exit_rx.recv_timeout(Duration::from_secs(30));
        r
    });
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("must not hang");
    let t2 = std::thread::spawn(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(second)).is_err()
    });
    let r2 = t2.join().expect("second thread");
    let _ = exit_tx.send(());
    (t1.join().expect("first thread"), r2)
}

/// `assert_not_send!(T)` at compile time: if `T: Send`, both impls apply and the call is
/// ambiguous (the trick of the `static_assertions` crate).
#[cfg(not(feature = "send_guard"))]
macro_rules! assert_not_send {
    ($t:ty) => {
        const _: fn() = || {
            trait AmbiguousIfSend<A> {
                fn some_item() {}
            }
            impl<T: ?Sized> AmbiguousIfSend<()> for T {}
            #[allow(dead_code)]
            struct Invalid;
            impl<T: ?Sized + Send> AmbiguousIfSend<Invalid> for T {}
            let _item: fn() = <$t as AmbiguousIfSend<_>>::some_item;
        };
    };
}

// Without `send_guard`, guards stay on the thread that locked (as parking_lot's, and std's):
// lockcheck keeps each thread's held locks in thread-local state, which a guard moved to another
// thread would make wrong.
#[cfg(not(feature = "send_guard"))]
mod guards_stay {
    assert_not_send!(lockcheck::MutexGuard<'static, u32>);
    assert_not_send!(lockcheck::RwLockReadGuard<'static, u32>);
    assert_not_send!(lockcheck::RwLockWriteGuard<'static, u32>);
    assert_not_send!(lockcheck::RwLockUpgradableReadGuard<'static, u32>);
    assert_not_send!(lockcheck::sync::MutexGuard<'static, u32>);
    assert_not_send!(lockcheck::sync::RwLockReadGuard<'static, u32>);
    assert_not_send!(lockcheck::sync::RwLockWriteGuard<'static, u32>);
}

// With it they are `Send` (a release on another thread leaves the acquirer's held set).
#[cfg(feature = "send_guard")]
const _: fn() = || {
    fn send<T: Send>() {}
    send::<lockcheck::MutexGuard<'static, u32>>();
    send::<lockcheck::RwLockReadGuard<'static, u32>>();
    send::<lockcheck::RwLockWriteGuard<'static, u32>>();
    send::<lockcheck::RwLockUpgradableReadGuard<'static, u32>>();
    send::<lockcheck::sync::MutexGuard<'static, u32>>();
    send::<lockcheck::sync::RwLockReadGuard<'static, u32>>();
    send::<lockcheck::sync::RwLockWriteGuard<'static, u32>>();
};

#[cfg(feature = "send_guard")]
mod send_guard {
    use super::*;
    use lockcheck::{Mutex, RwLock};
    use std::sync::Arc;

    /// Sends `guard` to a new thread that drops it; waits for that.
    fn release_elsewhere<G: Send + 'static>(guard: G) {
        std::thread::spawn(move || drop(guard))
            .join()
            .expect("releasing thread");
    }

    #[test]
    fn a_guard_released_on_another_thread_is_no_longer_held_by_the_acquirer() {
        let a = Arc::new(Mutex::named("sg.a", 0));
        let b = Arc::new(Mutex::named("sg.b", 0));
        let (a2, b2) = (a.clone(), b.clone());
        let (p1, p2) = two_threads(
            move || {
                // SAFETY of the test: the guard borrows from an Arc that outlives the thread.
                let a: &'static Mutex<u32> = Box::leak(Box::new(a));
                release_elsewhere(a.lock());
                // Not held any more: taking it again is no self-deadlock, and B after it is
                // no "A then B".
                drop(a.lock());
                drop(b.lock());
            },
            move || {
                let _b = b2.lock();
                let _a = a2.lock();
            },
        );
        assert!(!p1 && !p2, "no false report: {:#?}", found("sg.a"));
        assert!(found("sg.a").is_empty(), "{:#?}", found("sg.a"));
    }

    #[test]
    fn a_guard_kept_by_the_acquirer_is_still_held() {
        // The look-alike: the same code without the send does take A then B.
        let a = Arc::new(Mutex::named("sg.kept.a", 0));
        let b = Arc::new(Mutex::named("sg.kept.b", 0));
        let (a2, b2) = (a.clone(), b.clone());
        let (p1, p2) = two_threads(
            move || {
                let _g = a.lock();
                drop(b.lock());
            },
            move || {
                let _b = b2.lock();
                let _a = a2.lock();
            },
        );
        assert!(!p1 && p2, "the inversion is reported");
        assert_eq!(found("sg.kept.a").len(), 1);
    }

    #[test]
    fn a_guard_that_outlives_its_acquiring_thread_is_released_cleanly() {
        let m: &'static Mutex<u32> = Box::leak(Box::new(Mutex::named("sg.orphan", 0)));
        let g = std::thread::spawn(move || m.lock()).join().unwrap();
        drop(g);
        let mut g = m.lock();
        *g += 1;
        drop(g);
        drop(m.lock());
        assert!(found("sg.orphan").is_empty(), "{:#?}", found("sg.orphan"));
    }

    #[test]
    fn a_true_self_deadlock_is_still_reported_after_the_grace_period() {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(|| {
                let m = Mutex::named("sg.self", 0);
                let _g = m.lock();
                let _again = m.lock();
            });
            let _ = tx.send(r.is_err());
        });
        let panicked = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("must not hang");
        assert!(panicked);
        assert_eq!(
            found("sg.self")[0].kind,
            lockcheck::ViolationKind::SelfDeadlock
        );
    }

    #[test]
    fn write_and_upgradable_guards_released_elsewhere_leave_the_held_set() {
        let l = Arc::new(RwLock::named("sg.rw", 0));
        let b = Arc::new(Mutex::named("sg.rw.b", 0));
        let (l2, b2) = (l.clone(), b.clone());
        let (p1, p2) = two_threads(
            move || {
                let l: &'static RwLock<u32> = Box::leak(Box::new(l));
                release_elsewhere(l.write());
                release_elsewhere(l.upgradable_read());
                let u = l.upgradable_read();
                release_elsewhere(lockcheck::RwLockUpgradableReadGuard::upgrade(u));
                drop(l.write());
                drop(b.lock());
            },
            move || {
                let _b = b2.lock();
                let _w = l2.write();
            },
        );
        assert!(!p1 && !p2, "{:#?}", found("sg.rw"));
        assert!(found("sg.rw").is_empty());
    }

    #[test]
    fn many_threads_handing_guards_over_keep_every_set_right() {
        let m: &'static Mutex<u64> = Box::leak(Box::new(Mutex::named("sg.many", 0)));
        let (tx, rx) = mpsc::channel::<lockcheck::MutexGuard<'static, u64>>();
        let consumer = std::thread::spawn(move || {
            for g in rx {
                drop(g);
            }
        });
        let producers: Vec<_> = (0..4)
            .map(|_| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let mut g = m.lock();
                        *g += 1;
                        tx.send(g).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        for p in producers {
            p.join().expect("no false self-deadlock");
        }
        consumer.join().unwrap();
        assert_eq!(*m.lock(), 800);
        assert!(found("sg.many").is_empty(), "{:#?}", found("sg.many"));
    }
}

#[cfg(feature = "arc_lock")]
mod arc_lock {
    use super::*;
    use lockcheck::{ArcMutexGuard, Mutex, RawMutex, RwLock};
    use std::sync::Arc;

    #[test]
    fn locks_held_through_an_arc_take_part_in_the_order_at_the_users_lines() {
        let a = Arc::new(Mutex::named("arc.a", 0));
        let b = Arc::new(RwLock::named("arc.b", 0));
        let (a2, b2) = (a.clone(), b.clone());
        let (p1, p2) = two_threads(
            move || {
                let _a: ArcMutexGuard<RawMutex, u32> = a.lock_arc();
                let _b = b.write_arc();
            },
            move || {
                let _b = b2.upgradable_read_arc();
                let _a = a2.lock_arc();
            },
        );
        assert!(!p1 && p2);
        let v = found("arc.a");
        assert_eq!(v.len(), 1, "{v:#?}");
        assert!(
            v[0].sites()
                .iter()
                .all(|s| s.starts_with("crates/lockcheck/tests/features.rs:")
                    || s.starts_with("tests/features.rs:")),
            "{:?}",
            v[0].sites()
        );
    }

    #[test]
    fn arc_guards_release_their_hold() {
        let a = Arc::new(Mutex::named("arc.rel", 0));
        let g = a.lock_arc();
        drop(g);
        let g = a.try_lock_arc().expect("free");
        assert!(a.is_locked());
        drop(g);
        drop(a.lock()); // nothing held: no self-deadlock
        let r = Arc::new(lockcheck::ReentrantMutex::named("arc.re", 0));
        let g1: lockcheck::ArcReentrantMutexGuard<RawMutex, lockcheck::RawThreadId, u32> =
            r.lock_arc();
        let g2 = r.lock_arc();
        drop((g1, g2));
        assert!(found("arc.rel").is_empty() && found("arc.re").is_empty());
    }
}
