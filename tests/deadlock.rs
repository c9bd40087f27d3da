//! Real deadlocks (barriers make them certain) end with a report naming every thread and lock,
//! instead of a hang. Lock-order checking is switched off in this binary so that the threads do
//! reach the deadlock (with it on, the inversion is reported before anyone blocks).

mod support;

use lockcheck::{Mutex, RwLock, Semaphore, ViolationKind};
use std::sync::{Arc, Barrier};
use std::time::Duration;
use support::{found, panic_message, watchdog};

fn setup() {
    lockcheck::set_order_checking(false);
}

/// Runs each closure on its own thread; returns how many panicked and their messages.
fn run_all(bodies: Vec<Box<dyn FnOnce() + Send>>) -> Vec<Result<(), String>> {
    let handles: Vec<_> = bodies.into_iter().map(std::thread::spawn).collect();
    handles
        .into_iter()
        .map(|h| h.join().map_err(|e| panic_message(&*e)))
        .collect()
}

fn ring(prefix: &'static str, names: &'static [&'static str]) -> Vec<Result<(), String>> {
    let locks: Vec<Arc<Mutex<()>>> = names
        .iter()
        .map(|n| Arc::new(Mutex::named(n, ())))
        .collect();
    let n = locks.len();
    let barrier = Arc::new(Barrier::new(n));
    let _ = prefix;
    let bodies: Vec<Box<dyn FnOnce() + Send>> = (0..n)
        .map(|i| {
            let (a, b, barrier) = (
                locks[i].clone(),
                locks[(i + 1) % n].clone(),
                barrier.clone(),
            );
            Box::new(move || {
                let _a = a.lock();
                barrier.wait();
                let _b = b.lock();
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    run_all(bodies)
}

#[test]
fn two_thread_deadlock_is_reported_not_hung() {
    setup();
    let results = watchdog(20, || {
        let r = ring("dl2", &["dl2.a", "dl2.b"]);
        let failed: Vec<_> = r.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(
            failed.len(),
            1,
            "exactly the thread that closed the cycle panics: {r:?}"
        );
        assert!(failed[0].contains("deadlock"), "{}", failed[0]);
    });
    results.unwrap();
    let v: Vec<_> = found("dl2.a")
        .into_iter()
        .filter(|v| v.kind == ViolationKind::Deadlock)
        .collect();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].edges.len(), 2);
    let mut held: Vec<&str> = v[0].edges.iter().map(|e| e.held.class.as_str()).collect();
    held.sort();
    assert_eq!(held, ["dl2.a", "dl2.b"]);
    assert!(
        v[0].message.starts_with("lockcheck: deadlock"),
        "{}",
        v[0].message
    );
    assert!(v[0]
        .edges
        .iter()
        .all(|e| e.site.starts_with("tests/deadlock.rs:")));
    let threads: std::collections::HashSet<u64> = v[0].edges.iter().map(|e| e.thread_id).collect();
    assert_eq!(threads.len(), 2);
}

#[test]
fn four_thread_deadlock_is_reported() {
    setup();
    watchdog(20, || {
        let r = ring("dl4", &["dl4.a", "dl4.b", "dl4.c", "dl4.d"]);
        assert_eq!(r.iter().filter(|r| r.is_err()).count(), 1, "{r:?}");
    })
    .unwrap();
    let v: Vec<_> = found("dl4.a")
        .into_iter()
        .filter(|v| v.kind == ViolationKind::Deadlock)
        .collect();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].edges.len(), 4);
}

#[test]
fn mixed_mutex_rwlock_semaphore_deadlock() {
    setup();
    watchdog(20, || {
        let m = Arc::new(Mutex::named("mix.m", ()));
        let r = Arc::new(RwLock::named("mix.r", ()));
        let s = Arc::new(Semaphore::named("mix.s", 1));
        let b = Arc::new(Barrier::new(3));
        let (m1, r1, b1) = (m.clone(), r.clone(), b.clone());
        let (r2, s2, b2) = (r.clone(), s.clone(), b.clone());
        let (s3, m3, b3) = (s.clone(), m.clone(), b.clone());
        let res = run_all(vec![
            Box::new(move || {
                let _m = m1.lock();
                b1.wait();
                let _w = r1.write();
            }),
            Box::new(move || {
                let _r = r2.read();
                b2.wait();
                let _p = s2.acquire();
            }),
            Box::new(move || {
                let _p = s3.acquire();
                b3.wait();
                let _m = m3.lock();
            }),
        ]);
        assert_eq!(res.iter().filter(|r| r.is_err()).count(), 1, "{res:?}");
    })
    .unwrap();
    let v: Vec<_> = found("mix.m")
        .into_iter()
        .filter(|v| v.kind == ViolationKind::Deadlock)
        .collect();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].edges.len(), 3);
}

#[test]
fn a_semaphore_with_a_permit_held_outside_the_cycle_is_no_deadlock() {
    setup();
    watchdog(20, || {
        let m = Arc::new(Mutex::named("semok.m", ()));
        let s = Arc::new(Semaphore::named("semok.s", 2));
        let b = Arc::new(Barrier::new(3));
        let (m1, s1, b1) = (m.clone(), s.clone(), b.clone());
        let (m2, s2, b2) = (m.clone(), s.clone(), b.clone());
        let (s3, b3) = (s.clone(), b.clone());
        let res = run_all(vec![
            // Holds a permit, waits for the mutex.
            Box::new(move || {
                let _p = s1.acquire();
                b1.wait();
                std::thread::sleep(Duration::from_millis(50));
                let _m = m1.lock();
            }),
            // Holds the mutex, waits for a permit (both taken).
            Box::new(move || {
                let _m = m2.lock();
                b2.wait();
                let _p = s2.acquire();
            }),
            // Holds the other permit for a while, then gives it back: everyone finishes.
            Box::new(move || {
                let p = s3.acquire();
                b3.wait();
                std::thread::sleep(Duration::from_millis(300));
                drop(p);
            }),
        ]);
        assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    })
    .unwrap();
    assert!(found("semok.m").is_empty(), "{:#?}", found("semok.m"));
}

#[test]
fn plain_contention_is_no_deadlock() {
    setup();
    watchdog(20, || {
        let m = Arc::new(Mutex::named("cont.m", 0u64));
        let bodies: Vec<Box<dyn FnOnce() + Send>> = (0..4)
            .map(|_| {
                let m = m.clone();
                Box::new(move || {
                    for _ in 0..2000 {
                        *m.lock() += 1;
                    }
                }) as Box<dyn FnOnce() + Send>
            })
            .collect();
        assert!(run_all(bodies).iter().all(|r| r.is_ok()));
        assert_eq!(*m.lock(), 8000);
    })
    .unwrap();
    assert!(found("cont.m").is_empty());
}
