//! `lockcheck::tokio` under the default action, `panic`: the task that would block forever panics
//! instead (its `JoinHandle` returns the report's first line), its guards drop, and the others go
//! on. Lock-order checking is off in this binary so that the tasks reach the real deadlock.
// The scenarios hold sync guards across `.await` on purpose: that is what lockcheck reports.
#![allow(clippy::await_holding_lock)]

#[path = "support/rt.rs"]
mod rt;
mod support;

use lockcheck::tokio::Mutex;
use lockcheck::ViolationKind;
use rt::{run, Flavor};
use std::sync::Arc;
use support::{found, panic_message};

fn setup() {
    lockcheck::set_action(lockcheck::Action::Panic);
    lockcheck::set_order_checking(false);
}

fn join_message(r: Result<(), tokio::task::JoinError>) -> Option<String> {
    r.err().map(|e| panic_message(&*e.into_panic()))
}

#[test]
fn real_deadlock_between_tasks_panics_one_task_and_the_other_goes_on() {
    setup();
    for (fl, na, nb) in [
        (Flavor::CurrentThread, "pdl.a.ct", "pdl.b.ct"),
        (Flavor::MultiThread, "pdl.a.mt", "pdl.b.mt"),
    ] {
        run(fl, move || async move {
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let (a1, b1, bar1) = (a.clone(), b.clone(), barrier.clone());
            let t1 = tokio::spawn(async move {
                let _a = a1.lock().await;
                bar1.wait().await;
                *b1.lock().await += 1;
            });
            let t2 = tokio::spawn(async move {
                let _b = b.lock().await;
                barrier.wait().await;
                *a.lock().await += 1;
            });
            let msgs: Vec<String> = [t1.await, t2.await]
                .into_iter()
                .filter_map(join_message)
                .collect();
            assert_eq!(msgs.len(), 1, "{fl:?}: exactly one task gives up: {msgs:?}");
            assert!(msgs[0].contains("deadlock"), "{}", msgs[0]);
        })
        .unwrap();
        // Reported once per process (same lines on both flavours); acted on every time.
        if fl == Flavor::CurrentThread {
            let k: Vec<_> = found(na).into_iter().map(|v| v.kind).collect();
            assert_eq!(k, [ViolationKind::Deadlock], "{fl:?}");
        }
    }
}

#[test]
fn same_sync_lock_from_another_task_on_the_thread_panics_instead_of_blocking_it() {
    setup();
    for (fl, n) in [
        (Flavor::CurrentThread, "pawait.ct"),
        (Flavor::MultiThread, "pawait.mt"),
    ] {
        run(fl, move || async move {
            let m = Arc::new(lockcheck::Mutex::named(n, 0));
            let m2 = m.clone();
            let local = tokio::task::LocalSet::new();
            local
                .run_until(async move {
                    let holder = tokio::task::spawn_local(async move {
                        let mut g = m.lock();
                        tokio::task::yield_now().await;
                        *g += 1;
                    });
                    let blocked = tokio::task::spawn_local(async move {
                        *m2.lock() += 1; // would block the thread on itself
                    });
                    let (r1, r2) = (holder.await, blocked.await);
                    assert!(r1.is_ok(), "the holder resumes and finishes");
                    let msg = join_message(r2).expect("the second task panics");
                    assert!(msg.contains("held across await"), "{msg}");
                })
                .await;
        })
        .unwrap();
        // Reported once per process (same lines on both flavours); acted on every time.
        if fl == Flavor::CurrentThread {
            let k: Vec<_> = found(n).into_iter().map(|v| v.kind).collect();
            assert_eq!(k, [ViolationKind::HeldAcrossAwait], "{fl:?}");
        }
    }
}

#[test]
fn self_deadlock_panics_the_task() {
    setup();
    for (fl, n) in [
        (Flavor::CurrentThread, "pself.ct"),
        (Flavor::MultiThread, "pself.mt"),
    ] {
        run(fl, move || async move {
            let r = tokio::spawn(async move {
                let m = Mutex::named(n, 0);
                let _g = m.lock().await;
                let _again = m.lock().await;
            })
            .await;
            let msg = join_message(r).expect("the task panics");
            assert!(msg.contains("self-deadlock"), "{msg}");
        })
        .unwrap();
    }
}

#[test]
fn deadlock_through_a_sync_and_an_async_lock_panics_one_side() {
    setup();
    for (fl, nm, ns) in [
        (Flavor::CurrentThread, "pmix.m.ct", "pmix.s.ct"),
        (Flavor::MultiThread, "pmix.m.mt", "pmix.s.mt"),
    ] {
        run(fl, move || async move {
            let m = Arc::new(Mutex::named(nm, 0));
            let s = Arc::new(lockcheck::Mutex::named(ns, 0));
            let (t_ready_tx, t_ready) = std::sync::mpsc::channel::<()>();
            let (a_ready_tx, a_ready) = std::sync::mpsc::channel::<()>();
            let (m1, s1) = (m.clone(), s.clone());
            // A plain thread: sync s, then the async m through `blocking_lock`.
            let th = std::thread::spawn(move || {
                let _s = s1.lock();
                t_ready_tx.send(()).unwrap();
                a_ready.recv().unwrap();
                *m1.blocking_lock() += 1;
            });
            // A task: async m, then the sync s (blocking its worker thread).
            let task = tokio::spawn(async move {
                let _m = m.lock().await;
                a_ready_tx.send(()).unwrap();
                t_ready.recv().unwrap();
                *s.lock() += 1;
            });
            let r_task = task.await;
            let r_thread = tokio::task::spawn_blocking(move || th.join())
                .await
                .unwrap();
            let msgs: Vec<String> = [
                join_message(r_task),
                r_thread.err().map(|e| panic_message(&*e)),
            ]
            .into_iter()
            .flatten()
            .collect();
            assert_eq!(msgs.len(), 1, "{fl:?}: exactly one side gives up: {msgs:?}");
            assert!(msgs[0].contains("deadlock"), "{}", msgs[0]);
        })
        .unwrap();
        if fl == Flavor::CurrentThread {
            let k: Vec<_> = found(nm).into_iter().map(|v| v.kind).collect();
            assert_eq!(k, [ViolationKind::Deadlock], "{fl:?}");
            assert!(found(nm)[0].involves(ns));
        }
    }
}

#[test]
fn root_future_holding_a_std_api_guard_and_a_task_locking_it_panics_the_task() {
    setup();
    run(Flavor::CurrentThread, || async {
        let m = Arc::new(lockcheck::sync::Mutex::new(0));
        let g = m.lock().unwrap();
        let m2 = m.clone();
        // The spawned task runs on this very thread while the root future waits for it: it
        // would block the thread on the root's guard forever.
        let r = tokio::spawn(async move {
            *m2.lock().unwrap() += 1;
        })
        .await;
        drop(g);
        let msg = join_message(r).expect("the task panics instead of blocking the thread");
        assert!(msg.contains("held across await"), "{msg}");
    })
    .unwrap();
}

#[test]
fn task_awaited_by_the_holder_of_the_lock_it_waits_for_panics_one_side() {
    setup();
    for (fl, n) in [
        (Flavor::CurrentThread, "pjoin.ct"),
        (Flavor::MultiThread, "pjoin.mt"),
    ] {
        run(fl, move || async move {
            let r = tokio::spawn(async move {
                let m = Arc::new(Mutex::named(n, 0));
                let g = m.lock().await;
                let m2 = m.clone();
                let h = lockcheck::tokio::spawn(async move {
                    *m2.lock().await += 1;
                });
                let r = h.await;
                drop(g);
                r
            })
            .await;
            // The joiner panics at its `.await`, or the task at its `lock().await`.
            let msg = match r {
                Err(e) => join_message(Err(e)),
                Ok(inner) => join_message(inner),
            };
            let msg = msg.expect("one side gives up");
            assert!(msg.contains("deadlock"), "{fl:?}: {msg}");
        })
        .unwrap();
    }
}
