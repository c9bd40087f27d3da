//! Owned guards (`lock_owned`, `read_owned`, `write_owned`, `acquire_owned`) and the lock order:
//! what a task acquires while it has an owned guard counts as ordered after that guard's lock
//! once the guard is dropped in that same task (it was held all along); dropped in another task,
//! the guard may have left before, and nothing is concluded.

#[path = "support/rt.rs"]
mod rt;
mod support;

use lockcheck::tokio::{Mutex, RwLock, Semaphore};
use lockcheck::ViolationKind;
use rt::{name, run, within, Flavor};
use std::sync::Arc;
use std::time::Duration;
use support::found;

fn setup() {
    lockcheck::set_action(lockcheck::Action::Warn);
}

/// The scenario of [`owned_guard_kept_by_its_task_orders_what_the_task_takes_under_it`]; a
/// macro, so that each flavour's acquisitions have lines of their own (a cycle is reported once
/// per set of acquisition lines).
macro_rules! kept {
    ($fl:expr) => {{
        let fl = $fl;
        let (na, nb) = (name("own.keep.a", fl), name("own.keep.b", fl));
        let r = run(fl, move || async move {
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            let (a2, b2) = (a.clone(), b.clone());
            tokio::spawn(async move {
                let ga = a2.lock_owned().await;
                *b2.lock().await += 1;
                drop(ga);
            })
            .await
            .unwrap();
            let _b = b.lock().await;
            let _a = a.lock().await;
        });
        assert!(r.is_ok(), "{r:?}");
        let v = found(na);
        assert_eq!(v.len(), 1, "{fl:?}: {v:#?}");
        assert!(v[0].involves(nb));
    }};
}

#[test]
fn owned_guard_kept_by_its_task_orders_what_the_task_takes_under_it() {
    setup();
    kept!(Flavor::CurrentThread);
    kept!(Flavor::MultiThread);
}

/// A write guard and a permit taken owned, kept by the task, then `m` under them; another
/// holder takes `m` then the other lock (`$which`: 0 the semaphore, 1 the RwLock).
macro_rules! kept_write_or_permit {
    ($fl:expr, $which:expr) => {{
        let (fl, which) = ($fl, $which);
        let sfx = ["sem", "rw"][which];
        let (nr, ns, nm) = (
            name(&format!("own.{sfx}.rw"), fl),
            name(&format!("own.{sfx}.sem"), fl),
            name(&format!("own.{sfx}.m"), fl),
        );
        let r = run(fl, move || async move {
            let rw = Arc::new(RwLock::named(nr, 0));
            let sem = Arc::new(Semaphore::named(ns, 1));
            let m = Arc::new(Mutex::named(nm, 0));
            let (rw2, sem2, m2) = (rw.clone(), sem.clone(), m.clone());
            tokio::spawn(async move {
                let gw = rw2.write_owned().await;
                let p = sem2.acquire_owned().await.unwrap();
                *m2.lock().await += 1;
                drop(p);
                drop(gw);
            })
            .await
            .unwrap();
            let _m = m.lock().await;
            if which == 0 {
                let _p = sem.acquire().await.unwrap();
            } else {
                let _w = rw.write().await;
            }
        });
        assert!(r.is_ok(), "{r:?}");
        let v = found([ns, nr][which]);
        assert_eq!(v.len(), 1, "{fl:?}: {:#?}", lockcheck::violations());
        assert!(v[0].involves(nm));
    }};
}

#[test]
fn owned_write_and_permit_kept_by_their_task_order_too() {
    setup();
    kept_write_or_permit!(Flavor::CurrentThread, 0);
    kept_write_or_permit!(Flavor::MultiThread, 0);
    kept_write_or_permit!(Flavor::CurrentThread, 1);
    kept_write_or_permit!(Flavor::MultiThread, 1);
}

#[test]
fn owned_guard_handed_to_another_task_orders_nothing() {
    setup();
    for fl in [Flavor::CurrentThread, Flavor::MultiThread] {
        let (na, nb) = (name("own.move.a", fl), name("own.move.b", fl));
        let r = run(fl, move || async move {
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            let (a2, b2) = (a.clone(), b.clone());
            tokio::spawn(async move {
                let ga = a2.lock_owned().await;
                // Handed to a worker that drops it; this task goes on taking `b`.
                let worker = tokio::spawn(async move {
                    let _ga = ga;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                });
                *b2.lock().await += 1;
                worker.await.unwrap();
            })
            .await
            .unwrap();
            let _b = b.lock().await;
            let _a = a.lock().await;
        });
        assert!(r.is_ok(), "{r:?}");
        let v = found(na);
        assert!(v.is_empty(), "{fl:?}: {v:#?}");
    }
}

/// A task that keeps an owned guard and locks the same mutex again waits for itself: reported as a self-deadlock when the wait is
/// given up (here a timeout) with the guard still unmoved. Its look-alike: owned permits handed to workers that hold them longer than the grace period
/// without using them, while the task waits for another permit (a worker pool): silent. A macro,
/// so that each flavour has lines of its own (a report is made once per pair of lines).
macro_rules! owned_self {
    ($fl:expr) => {{
        let fl = $fl;
        let (n, ns) = (name("own.self.m", fl), name("own.pool.sem", fl));
        let r = run(fl, move || async move {
            tokio::spawn(async move {
                let m = Arc::new(Mutex::named(n, 0));
                let g = m.clone().lock_owned().await;
                assert!(within(50, m.lock()).await.is_none(), "it does block");
                drop(g);
                let s = Arc::new(Semaphore::named(ns, 2));
                let mut workers = Vec::new();
                for _ in 0..3 {
                    let p = s.clone().acquire_owned().await.unwrap();
                    workers.push(tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(2500)).await;
                        drop(p);
                    }));
                }
                for w in workers {
                    w.await.unwrap();
                }
            })
            .await
            .unwrap();
        });
        assert!(r.is_ok(), "{r:?}");
        let v = found(n);
        assert_eq!(v.len(), 1, "{fl:?} {n}: {v:#?}");
        assert_eq!(v[0].kind, ViolationKind::SelfDeadlock, "{fl:?}");
        assert!(
            v[0].edges[0].thread.starts_with("task #"),
            "{:?}",
            v[0].edges
        );
        assert!(found(ns).is_empty(), "{fl:?}: {:#?}", found(ns));
    }};
}

/// The only permit of a semaphore, taken owned and kept, and another asked for: given up with
/// the permit still the task's, a self-deadlock (a macro: lines of its own per flavour).
macro_rules! owned_self_sem {
    ($fl:expr) => {{
        let fl = $fl;
        let n = name("own.self.sem", fl);
        let r = run(fl, move || async move {
            tokio::spawn(async move {
                let k = Arc::new(Semaphore::named(n, 1));
                let p = k.clone().acquire_owned().await.unwrap();
                assert!(within(50, k.acquire()).await.is_none(), "it does block");
                drop(p);
            })
            .await
            .unwrap();
        });
        assert!(r.is_ok(), "{r:?}");
        let v = found(n);
        assert_eq!(v.len(), 1, "{fl:?} {n}: {v:#?}");
        assert_eq!(v[0].kind, ViolationKind::SelfDeadlock, "{fl:?}");
    }};
}

#[test]
fn an_owned_permit_kept_while_waiting_for_another_is_a_self_deadlock_when_given_up() {
    setup();
    owned_self_sem!(Flavor::CurrentThread);
    owned_self_sem!(Flavor::MultiThread);
}

#[test]
fn owned_guard_kept_and_locked_again_is_a_self_deadlock_and_a_worker_pool_is_not() {
    setup();
    owned_self!(Flavor::CurrentThread);
    owned_self!(Flavor::MultiThread);
}

/// The same wait with no timeout is reported while it hangs, once it has lasted
/// `OWNED_GRACE` (2 s) with the guard unmoved, not only when it is given up.
macro_rules! owned_self_hang {
    ($fl:expr) => {{
        let fl = $fl;
        let n = name("own.hang", fl);
        let r = run(fl, move || async move {
            let waiter = tokio::spawn(async move {
                let m = Arc::new(Mutex::named(n, 0));
                let _g = m.clone().lock_owned().await;
                let _h = m.lock().await; // hangs for good
            });
            let mut seen = false;
            for _ in 0..300 {
                tokio::time::sleep(Duration::from_millis(25)).await;
                if !found(n).is_empty() {
                    seen = true;
                    break;
                }
            }
            assert!(!waiter.is_finished(), "the wait still hangs");
            waiter.abort();
            assert!(seen, "reported while it hangs");
        });
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(found(n)[0].kind, ViolationKind::SelfDeadlock);
    }};
}

#[test]
fn owned_self_deadlock_is_reported_while_it_hangs() {
    setup();
    owned_self_hang!(Flavor::CurrentThread);
    owned_self_hang!(Flavor::MultiThread);
}

/// Two tasks, each holding an owned guard the other waits for: a real deadlock, found by the
/// wait-for graph (the owned guards count as held by the tasks that have them).
macro_rules! owned_cycle {
    ($fl:expr) => {{
        let fl = $fl;
        let (na, nb) = (name("own.dl.a", fl), name("own.dl.b", fl));
        let r = run(fl, move || async move {
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let (a1, b1, bar1) = (a.clone(), b.clone(), barrier.clone());
            let t1 = tokio::spawn(async move {
                let _a = a1.lock_owned().await;
                bar1.wait().await;
                within(5000, b1.lock()).await.is_some()
            });
            let t2 = tokio::spawn(async move {
                let _b = b.lock_owned().await;
                barrier.wait().await;
                for _ in 0..300 {
                    if within(50, a.lock()).await.is_some() {
                        return true;
                    }
                    if found(na).iter().any(|v| v.kind == ViolationKind::Deadlock) {
                        return false;
                    }
                }
                false
            });
            let (r1, r2) = (t1.await.unwrap(), t2.await.unwrap());
            assert!(!(r1 && r2), "a real deadlock: at most one goes on");
        });
        assert!(r.is_ok(), "{r:?}");
        let dl: Vec<_> = found(na)
            .into_iter()
            .filter(|v| v.kind == ViolationKind::Deadlock)
            .collect();
        assert_eq!(dl.len(), 1, "{fl:?}: {:#?}", found(na));
        assert!(dl[0].involves(nb));
    }};
}

#[test]
fn a_wait_cycle_through_owned_guards_is_a_deadlock() {
    setup();
    owned_cycle!(Flavor::CurrentThread);
    owned_cycle!(Flavor::MultiThread);
}

/// An owned guard sent to another task that uses it there: that task is its holder from then
/// on. Locking the same mutex again there is its own self-deadlock; the task that took the guard
/// and goes on locking that mutex (after the guard is dropped) is silent.
macro_rules! moved_holder {
    ($fl:expr) => {{
        let fl = $fl;
        let n = name("own.moved.self", fl);
        let r = run(fl, move || async move {
            let m = Arc::new(Mutex::named(n, 0));
            let g = m.clone().lock_owned().await;
            let (tx, rx) = tokio::sync::oneshot::channel();
            let m2 = m.clone();
            let other = tokio::spawn(async move {
                let mut g: lockcheck::tokio::OwnedMutexGuard<i32> = rx.await.unwrap();
                *g += 1; // used here: this task holds it now
                let blocked = within(50, m2.lock()).await.is_none();
                drop(g);
                blocked
            });
            tx.send(g).unwrap();
            assert!(other.await.unwrap(), "it does block");
            *m.lock().await += 1; // the guard is gone: free
        });
        assert!(r.is_ok(), "{r:?}");
        let v = found(n);
        assert_eq!(v.len(), 1, "{fl:?}: {v:#?}");
        assert_eq!(v[0].kind, ViolationKind::SelfDeadlock);
    }};
}

#[test]
fn an_owned_guard_used_in_another_task_belongs_to_that_task() {
    setup();
    moved_holder!(Flavor::CurrentThread);
    moved_holder!(Flavor::MultiThread);
}

/// An owned guard used in the task it was sent to: what that task takes under it is ordered
/// after it (the new holder counts as the holder), so the reverse order elsewhere is an
/// inversion; what the task that took it acquired after sending it is not.
macro_rules! moved_orders {
    ($fl:expr) => {{
        let fl = $fl;
        let (nm, nx, ny) = (
            name("own.adopt.m", fl),
            name("own.adopt.x", fl),
            name("own.adopt.y", fl),
        );
        let r = run(fl, move || async move {
            let m = Arc::new(Mutex::named(nm, 0));
            let x = Arc::new(Mutex::named(nx, 0));
            let y = Arc::new(Mutex::named(ny, 0));
            let g = m.clone().lock_owned().await;
            let (tx, rx) = tokio::sync::oneshot::channel();
            let x2 = x.clone();
            let adopter = tokio::spawn(async move {
                let mut g: lockcheck::tokio::OwnedMutexGuard<i32> = rx.await.unwrap();
                *g += 1; // this task has it now
                *x2.lock().await += 1; // ordered after m
                drop(g);
            });
            tx.send(g).unwrap();
            *y.lock().await += 1; // the taker, after sending it: not ordered after m
            adopter.await.unwrap();
            // The reverse orders, in another task.
            let (m3, x3, y3) = (m.clone(), x.clone(), y.clone());
            tokio::spawn(async move {
                let _x = x3.lock().await;
                let _m = m3.lock().await;
                drop(_m);
                drop(_x);
                let _y = y3.lock().await;
                let _m = m3.lock().await;
            })
            .await
            .unwrap();
        });
        assert!(r.is_ok(), "{r:?}");
        let v = found(nx);
        assert_eq!(v.len(), 1, "{fl:?}: {v:#?}");
        assert!(v[0].involves(nm), "{v:#?}");
        assert!(found(ny).is_empty(), "{fl:?}: {:#?}", found(ny));
    }};
}

#[test]
fn what_the_new_holder_of_an_owned_guard_takes_under_it_is_ordered() {
    setup();
    moved_orders!(Flavor::CurrentThread);
    moved_orders!(Flavor::MultiThread);
}
