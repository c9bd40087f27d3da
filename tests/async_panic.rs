//! `lockcheck::tokio` under the default action, `panic`: the task that would block forever panics
//! instead (its `JoinHandle` returns the report's first line), its guards drop, and the others go
//! on. Lock-order checking is off in this binary so that the tasks reach the real deadlock.
// The scenarios hold sync guards across `.await` on purpose: that is what lockcheck reports.
#![allow(clippy::await_holding_lock)]

#[path = "support/rt.rs"]
mod rt;
mod support;

use lockcheck::tokio::{Mutex, RwLock, Semaphore};
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
        // Reported in both flavours: the same lines, but other locks (other names).
        {
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
        // Reported in both flavours: the same lines, but other locks (other names).
        {
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
        // Both flavours: the same lines, other locks (other names).
        {
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

/// The panic message of `f` run in a task (it must panic).
async fn panic_in_task(f: Box<dyn FnOnce() + Send>) -> String {
    join_message(tokio::spawn(async move { f() }).await).expect("the call must panic")
}

/// tokio's `blocking_*` methods panic when called from within an asynchronous execution context,
/// where blocking would stall the runtime's thread; lockcheck's, a drop-in replacement, panic
/// alike, with tokio's message, and leave nothing behind (the lock is free, nothing reported).
#[test]
fn blocking_methods_in_a_task_panic_as_tokios_do() {
    setup();
    for (fl, n) in [
        (Flavor::CurrentThread, "pblockrt.ct"),
        (Flavor::MultiThread, "pblockrt.mt"),
    ] {
        run(fl, move || async move {
            let m = Arc::new(Mutex::named(n, 0));
            let rw = Arc::new(RwLock::new(0));
            let s = Arc::new(Semaphore::new(3));
            let tm = Arc::new(tokio::sync::Mutex::new(0));
            let trw = Arc::new(tokio::sync::RwLock::new(0));
            let ts = Arc::new(tokio::sync::Semaphore::new(3));
            type Call = Box<dyn FnOnce() + Send>;
            let (m1, m2, tm1, tm2) = (m.clone(), m.clone(), tm.clone(), tm.clone());
            let (rw1, rw2, trw1, trw2) = (rw.clone(), rw.clone(), trw.clone(), trw.clone());
            let (s1, s2, s3, s4) = (s.clone(), s.clone(), s.clone(), s.clone());
            let (ts1, ts2, ts3, ts4) = (ts.clone(), ts.clone(), ts.clone(), ts.clone());
            let cases: [(&str, Call, Call); 8] = [
                (
                    "blocking_lock",
                    Box::new(move || drop(m1.blocking_lock())),
                    Box::new(move || drop(tm1.blocking_lock())),
                ),
                (
                    "blocking_lock_owned",
                    Box::new(move || drop(m2.blocking_lock_owned())),
                    Box::new(move || drop(tm2.blocking_lock_owned())),
                ),
                (
                    "blocking_read",
                    Box::new(move || drop(rw1.blocking_read())),
                    Box::new(move || drop(trw1.blocking_read())),
                ),
                (
                    "blocking_write",
                    Box::new(move || drop(rw2.blocking_write())),
                    Box::new(move || drop(trw2.blocking_write())),
                ),
                (
                    "blocking_acquire",
                    Box::new(move || drop(s1.blocking_acquire())),
                    Box::new(move || drop(ts1.blocking_acquire())),
                ),
                (
                    "blocking_acquire_many",
                    Box::new(move || drop(s2.blocking_acquire_many(2))),
                    Box::new(move || drop(ts2.blocking_acquire_many(2))),
                ),
                (
                    "blocking_acquire_owned",
                    Box::new(move || drop(s3.blocking_acquire_owned())),
                    Box::new(move || drop(ts3.blocking_acquire_owned())),
                ),
                (
                    "blocking_acquire_many_owned",
                    Box::new(move || drop(s4.blocking_acquire_many_owned(2))),
                    Box::new(move || drop(ts4.blocking_acquire_many_owned(2))),
                ),
            ];
            for (what, ours, theirs) in cases {
                let ours = panic_in_task(ours).await;
                let theirs = panic_in_task(theirs).await;
                assert!(
                    theirs.starts_with("Cannot block the current thread from within a runtime"),
                    "{fl:?} {what}: {theirs}"
                );
                assert_eq!(ours, theirs, "{fl:?} {what}: tokio's panic, word for word");
            }
            // Nothing left behind: every lock free, no report.
            assert!(m.try_lock().is_ok(), "{fl:?}");
            assert!(rw.try_write().is_ok(), "{fl:?}");
            assert_eq!(s.available_permits(), 3, "{fl:?}");
            assert!(found(n).is_empty(), "{fl:?}: {:?}", found(n));
        })
        .unwrap();

        // The runtime's root future is an asynchronous context too.
        let ours = run(fl, || async { drop(Mutex::new(0).blocking_lock()) }).unwrap_err();
        let theirs = run(fl, || async {
            drop(tokio::sync::Mutex::new(0).blocking_lock())
        })
        .unwrap_err();
        assert!(
            theirs.starts_with("Cannot block the current thread"),
            "{theirs}"
        );
        assert_eq!(ours, theirs, "{fl:?}: in block_on");
    }
}

/// Where tokio lets a thread block, lockcheck's `blocking_*` methods work: in `spawn_blocking`
/// (tokio's and lockcheck's), in `block_in_place` (multi-thread runtime), on a plain thread
/// started from a task; and they wait there for an async holder to release.
#[test]
fn blocking_methods_work_in_spawn_blocking_block_in_place_and_plain_threads() {
    setup();
    for (fl, n) in [
        (Flavor::CurrentThread, "pblockok.ct"),
        (Flavor::MultiThread, "pblockok.mt"),
    ] {
        run(fl, move || async move {
            let m = Arc::new(Mutex::named(n, 0));
            let rw = Arc::new(RwLock::new(0));
            let s = Arc::new(Semaphore::new(2));
            let all = |m: Arc<Mutex<i32>>, rw: Arc<RwLock<i32>>, s: Arc<Semaphore>| {
                *m.blocking_lock() += 1;
                *m.clone().blocking_lock_owned() += 1;
                drop(rw.blocking_read());
                *rw.blocking_write() += 1;
                drop(s.blocking_acquire().unwrap());
                drop(s.blocking_acquire_many(2).unwrap());
                drop(s.clone().blocking_acquire_owned().unwrap());
                drop(s.blocking_acquire_many_owned(2).unwrap());
            };
            // Held by a task while the blocking side starts: it waits, then gets the lock.
            let g = m.clone().lock_owned().await;
            let (m1, rw1, s1) = (m.clone(), rw.clone(), s.clone());
            let h = tokio::task::spawn_blocking(move || all(m1, rw1, s1));
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            drop(g);
            h.await.expect("in tokio's spawn_blocking");
            let (m1, rw1, s1) = (m.clone(), rw.clone(), s.clone());
            lockcheck::tokio::spawn_blocking(move || all(m1, rw1, s1))
                .await
                .expect("in lockcheck's spawn_blocking");
            let (m1, rw1, s1) = (m.clone(), rw.clone(), s.clone());
            let th = std::thread::spawn(move || all(m1, rw1, s1));
            tokio::task::spawn_blocking(move || th.join())
                .await
                .unwrap()
                .expect("on a plain thread");
            if fl == Flavor::MultiThread {
                let (m1, rw1, s1) = (m.clone(), rw.clone(), s.clone());
                tokio::spawn(async move {
                    tokio::task::block_in_place(move || all(m1, rw1, s1));
                })
                .await
                .expect("in block_in_place");
            }
            let rounds = if fl == Flavor::MultiThread { 4 } else { 3 };
            assert_eq!(*m.lock().await, 2 * rounds, "{fl:?}");
            assert_eq!(*rw.read().await, rounds, "{fl:?}");
            assert_eq!(s.available_permits(), 2, "{fl:?}");
            assert!(found(n).is_empty(), "{fl:?}: {:?}", found(n));
        })
        .unwrap();
    }
}
