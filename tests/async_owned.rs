//! Owned guards (`lock_owned`, `read_owned`, `write_owned`, `acquire_owned`) and the lock order:
//! what a task acquires while it has an owned guard counts as ordered after that guard's lock
//! once the guard is dropped in that same task (it was held all along); dropped in another task,
//! the guard may have left before, and nothing is concluded.

#[path = "support/rt.rs"]
mod rt;
mod support;

use lockcheck::tokio::{Mutex, RwLock, Semaphore};
use rt::{name, run, Flavor};
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
