// The async scenarios, included by `async_current_thread.rs` and `async_multi_thread.rs` (one
// process per runtime flavour: each bug is reported once per process, and both flavours run the
// same lines). `FL` is the flavour.
//
// The action is `warn`, so that each scenario runs to its end: an acquisition reported and then
// waiting forever is wrapped in a short timeout (the report comes before the wait).

use lockcheck::tokio::{Mutex, RwLock, Semaphore};
use lockcheck::{Action, ViolationKind};
use rt::{name, run, within, Flavor};
use std::sync::Arc;
use std::time::Duration;
use support::found;

fn setup() {
    lockcheck::set_action(Action::Warn);
}

/// Runs `f` as a task of its own, to its end (a panic in it fails the scenario).
async fn in_task(f: impl std::future::Future<Output = ()> + Send + 'static) {
    tokio::spawn(f).await.unwrap()
}

fn kinds(class: &str) -> Vec<ViolationKind> {
    found(class).into_iter().map(|v| v.kind).collect()
}

fn first_line(v: &lockcheck::Violation) -> &str {
    v.message.lines().next().unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// Inversions between tasks.

async fn ab_ba(a: Arc<Mutex<u32>>, b: Arc<Mutex<u32>>) {
    let (a1, b1) = (a.clone(), b.clone());
    in_task(async move {
        let _a = a1.lock().await;
        tokio::task::yield_now().await;
        let _b = b1.lock().await;
    })
    .await;
    in_task(async move {
        let _b = b.lock().await;
        tokio::task::yield_now().await;
        let _a = a.lock().await;
    })
    .await;
}

#[test]
fn inversion_between_tasks_is_reported_with_tasks_and_lines() {
    setup();
    {
        let fl = FL;
        let (na, nb) = (name("inv.a", fl), name("inv.b", fl));
        run(fl, move || async move {
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            ab_ba(a, b).await;
        })
        .unwrap();
        let v = found(na);
        assert_eq!(v.len(), 1, "{fl:?}: one inversion: {v:#?}");
        assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
        assert!(first_line(&v[0]).contains("lock order inversion"));
        assert!(v[0].involves(nb));
        for e in &v[0].edges {
            assert!(e.thread.starts_with("task #"), "{fl:?}: holder is a task: {}", e.thread);
            assert!(e.site.contains("scenarios.rs"), "acquisition line: {}", e.site);
            assert!(e.held_site.contains("scenarios.rs"), "held line: {}", e.held_site);
        }
        assert_ne!(v[0].edges[0].thread_id, v[0].edges[1].thread_id);
    }
}

#[test]
fn rwlock_and_semaphore_inversions_between_tasks() {
    setup();
    {
        let fl = FL;
        let (nr, ns) = (name("inv2.rw", fl), name("inv2.sem", fl));
        run(fl, move || async move {
            let rw = Arc::new(RwLock::named(nr, 0));
            let sem = Arc::new(Semaphore::named(ns, 1));
            let (rw1, sem1) = (rw.clone(), sem.clone());
            in_task(async move {
                let _w = rw1.write().await;
                let _p = sem1.acquire().await.unwrap();
            })
            .await;
            in_task(async move {
                let _p = sem.acquire().await.unwrap();
                let _r = rw.read().await;
            })
            .await;
        })
        .unwrap();
        assert_eq!(kinds(nr), [ViolationKind::LockOrderInversion], "{fl:?}");
    }
}

#[test]
fn class_level_inversion_between_tasks_on_different_instances() {
    setup();
    {
        let fl = FL;
        let (na, nb) = (name("cls.a", fl), name("cls.b", fl));
        run(fl, move || async move {
            // Two pairs of the same two classes: a1 then b1 in one task, b2 then a2 in another.
            let (a1, b1) = (Mutex::named(na, 0), Mutex::named(nb, 0));
            let (a2, b2) = (Mutex::named(na, 0), Mutex::named(nb, 0));
            in_task(async move {
                let _a = a1.lock().await;
                let _b = b1.lock().await;
            })
            .await;
            in_task(async move {
                let _b = b2.lock().await;
                let _a = a2.lock().await;
            })
            .await;
        })
        .unwrap();
        assert_eq!(kinds(na), [ViolationKind::ClassInversion], "{fl:?}");
    }
}

#[test]
fn inversion_between_an_async_and_a_sync_lock_across_tasks() {
    setup();
    {
        let fl = FL;
        let (na, ns) = (name("mix.async", fl), name("mix.sync", fl));
        run(fl, move || async move {
            let m = Arc::new(Mutex::named(na, 0));
            let s = Arc::new(lockcheck::Mutex::named(ns, 0));
            let (m1, s1) = (m.clone(), s.clone());
            in_task(async move {
                let _m = m1.lock().await;
                *s1.lock() += 1; // sync lock inside the async critical section
            })
            .await;
            let local = tokio::task::LocalSet::new();
            local
                .run_until(async move {
                    tokio::task::spawn_local(async move {
                        let _s = s.lock();
                        *m.lock().await += 1; // free: no suspension, but the reverse order
                    })
                    .await
                    .unwrap();
                })
                .await;
        })
        .unwrap();
        assert_eq!(kinds(na), [ViolationKind::LockOrderInversion], "{fl:?}");
    }
}

/// Round 7's quiet paths: a task that holds nothing pushes and pops its hold without the full
/// scan. After hundreds of those (past the 64 emptyings at which lists used to be swept), what
/// the task takes under a held lock is still checked: the inversion and the self-deadlock are
/// reported, and the same loops in a consistent order stay silent.
#[test]
fn findings_after_many_quiet_acquisitions_are_still_reported() {
    setup();
    {
        let fl = FL;
        let (na, nb) = (name("quiet.a", fl), name("quiet.b", fl));
        let ns = name("quiet.self", fl);
        run(fl, move || async move {
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            let (a1, b1) = (a.clone(), b.clone());
            in_task(async move {
                for _ in 0..300 {
                    *a1.lock().await += 1;
                }
                let _a = a1.lock().await;
                let _b = b1.lock().await;
            })
            .await;
            in_task(async move {
                for _ in 0..300 {
                    *b.lock().await += 1;
                }
                let _b = b.lock().await;
                let _a = a.lock().await;
            })
            .await;
            in_task(async move {
                let m = Mutex::named(ns, 0);
                for _ in 0..300 {
                    *m.lock().await += 1;
                }
                let _g = m.lock().await;
                assert!(within(50, m.lock()).await.is_none(), "it does block");
            })
            .await;
        })
        .unwrap();
        assert!(
            kinds(na).contains(&ViolationKind::LockOrderInversion),
            "{fl:?}: {:#?}",
            found(na)
        );
        assert_eq!(kinds(ns), vec![ViolationKind::SelfDeadlock], "{fl:?}");
    }
    {
        let fl = FL;
        let (na, nb) = (name("quiet.cons.a", fl), name("quiet.cons.b", fl));
        run(fl, move || async move {
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            for _ in 0..2 {
                let (a, b) = (a.clone(), b.clone());
                in_task(async move {
                    for _ in 0..300 {
                        *a.lock().await += 1;
                        *b.lock().await += 1;
                    }
                    let _a = a.lock().await;
                    let _b = b.lock().await;
                })
                .await;
            }
        })
        .unwrap();
        assert!(found(na).is_empty(), "{fl:?}: {:#?}", found(na));
        assert!(found(nb).is_empty(), "{fl:?}: {:#?}", found(nb));
    }
}

#[test]
fn consistent_order_across_tasks_is_silent() {
    setup();
    {
        let fl = FL;
        let (na, nb) = (name("cons.a", fl), name("cons.b", fl));
        run(fl, move || async move {
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let (a, b) = (a.clone(), b.clone());
                tasks.push(tokio::spawn(async move {
                    for _ in 0..20 {
                        let mut x = a.lock().await;
                        tokio::task::yield_now().await;
                        let mut y = b.lock().await;
                        *x += 1;
                        *y += 1;
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(*a.lock().await, 160);
        })
        .unwrap();
        assert!(found(na).is_empty(), "{fl:?}: {:#?}", found(na));
    }
}

#[test]
fn try_lock_in_reverse_order_is_silent() {
    setup();
    {
        let fl = FL;
        let (na, nb) = (name("try.a", fl), name("try.b", fl));
        run(fl, move || async move {
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            let (a1, b1) = (a.clone(), b.clone());
            in_task(async move {
                let _a = a1.lock().await;
                let _b = b1.lock().await;
            })
            .await;
            in_task(async move {
                let _b = b.lock().await;
                let got = a.try_lock();
                assert!(got.is_ok());
            })
            .await;
        })
        .unwrap();
        assert!(found(na).is_empty(), "{fl:?}: {:#?}", found(na));
    }
}

#[test]
fn read_read_on_a_never_written_rwlock_is_silent() {
    setup();
    {
        let fl = FL;
        let (na, nb) = (name("rr.a", fl), name("rr.b", fl));
        run(fl, move || async move {
            let a = Arc::new(RwLock::named(na, 0));
            let b = Arc::new(RwLock::named(nb, 0));
            let (a1, b1) = (a.clone(), b.clone());
            let t1 = tokio::spawn(async move {
                let _a = a1.read().await;
                tokio::task::yield_now().await;
                let _b = b1.read().await;
            });
            let t2 = tokio::spawn(async move {
                let _b = b.read().await;
                tokio::task::yield_now().await;
                let _a = a.read().await;
            });
            t1.await.unwrap();
            t2.await.unwrap();
        })
        .unwrap();
        assert!(found(na).is_empty(), "{fl:?}: {:#?}", found(na));
    }
}

// ---------------------------------------------------------------------------------------------
// Async self-deadlocks.

#[test]
fn task_locking_a_mutex_it_holds_is_a_self_deadlock() {
    setup();
    {
        let fl = FL;
        let n = name("self.m", fl);
        run(fl, move || async move {
            in_task(async move {
                let m = Mutex::named(n, 0);
                let _g = m.lock().await;
                assert!(within(50, m.lock()).await.is_none(), "it does block");
            })
            .await;
        })
        .unwrap();
        let v = found(n);
        assert_eq!(v.len(), 1, "{fl:?}: {v:#?}");
        assert_eq!(v[0].kind, ViolationKind::SelfDeadlock);
        assert!(first_line(&v[0]).contains("self-deadlock"));
        assert!(v[0].edges[0].thread.starts_with("task #"));
    }
}

#[test]
fn second_read_in_the_same_task_is_a_hazard_even_without_a_writer() {
    setup();
    {
        let fl = FL;
        let n = name("self.rr", fl);
        run(fl, move || async move {
            in_task(async move {
                let rw = RwLock::named(n, 0);
                let _r1 = rw.read().await;
                let _r2 = rw.read().await; // no writer queued: it succeeds, and is reported
            })
            .await;
        })
        .unwrap();
        let v = found(n);
        assert_eq!(v.len(), 1, "{fl:?}: {v:#?}");
        assert_eq!(v[0].kind, ViolationKind::RecursiveRead);
        assert!(first_line(&v[0]).contains("self-deadlock"));
    }
}

#[test]
fn second_read_with_a_writer_queued_is_reported_before_it_hangs() {
    setup();
    {
        let fl = FL;
        let n = name("self.rrw", fl);
        run(fl, move || async move {
            let rw = Arc::new(RwLock::named(n, 0));
            let r1 = rw.read().await;
            let w = rw.clone();
            let writer = tokio::spawn(async move {
                *w.write().await += 1;
            });
            // The writer queues (a 20 ms sleep did not make sure of it on a loaded machine).
            rt::until("the writer queues", || support::blocked_on(n) == 1).await;
            assert!(within(50, rw.read()).await.is_none(), "fair: it waits");
            drop(r1);
            writer.await.unwrap();
        })
        .unwrap();
        let k = kinds(n);
        assert!(k.contains(&ViolationKind::RecursiveRead), "{fl:?}: {k:?}");
    }
}

#[test]
fn different_tasks_reading_and_a_write_after_are_silent() {
    setup();
    {
        let fl = FL;
        let n = name("rw.ok", fl);
        run(fl, move || async move {
            let rw = Arc::new(RwLock::named(n, 0));
            let mut ts = Vec::new();
            for _ in 0..4 {
                let rw = rw.clone();
                ts.push(tokio::spawn(async move {
                    let _r = rw.read().await;
                    tokio::task::yield_now().await;
                }));
            }
            for t in ts {
                t.await.unwrap();
            }
            *rw.write().await += 1;
            let w = rw.write().await;
            let r = lockcheck::tokio::RwLockWriteGuard::downgrade(w);
            assert_eq!(*r, 1);
            drop(r);
            // The rest of tokio's guard API: maps and downgrades, borrowed and owned.
            use lockcheck::tokio::{OwnedRwLockWriteGuard, RwLockWriteGuard};
            let w = rw.write().await;
            let r = RwLockWriteGuard::downgrade_map(w, |v| v);
            assert_eq!(*r, 1);
            drop(r);
            let w = rw.write().await;
            let Err(w) = RwLockWriteGuard::try_downgrade_map(w, |_| None::<&i32>) else {
                panic!("None gives the guard back")
            };
            let mut m = RwLockWriteGuard::map(w, |v| v);
            *m += 1;
            drop(m);
            let ow = rw.clone().write_owned().await;
            let mut om = OwnedRwLockWriteGuard::try_map(ow, |v| Some(v)).ok().unwrap();
            *om += 1;
            drop(om);
            let ow = rw.clone().write_owned().await;
            let or = OwnedRwLockWriteGuard::downgrade_map(ow, |v| v);
            assert_eq!(*or, 3);
            drop(or);
            assert!(rw.try_write().is_ok(), "every guard gave its permits back");
        })
        .unwrap();
        assert!(found(n).is_empty(), "{fl:?}: {:#?}", found(n));
    }
}

#[test]
fn waiting_for_permits_only_the_task_itself_holds_is_a_self_deadlock() {
    setup();
    {
        let fl = FL;
        let n = name("self.sem", fl);
        let ok = name("self.sem.ok", fl);
        run(fl, move || async move {
            let s = Semaphore::named(n, 2);
            let _p = s.acquire_many(2).await.unwrap();
            assert!(within(50, s.acquire()).await.is_none());
            // Look-alike: a permit held and another one free.
            let s2 = Semaphore::named(ok, 2);
            let _q1 = s2.acquire().await.unwrap();
            let _q2 = s2.acquire().await.unwrap();
        })
        .unwrap();
        assert_eq!(kinds(n), [ViolationKind::SelfDeadlock], "{fl:?}");
        assert!(found(ok).is_empty(), "{fl:?}: {:#?}", found(ok));
    }
}

// ---------------------------------------------------------------------------------------------
// Owned guards.

#[test]
fn owned_guard_moved_to_another_task_and_released_there_is_silent() {
    setup();
    {
        let fl = FL;
        let (n, ns, nb) = (
            name("own.m", fl),
            name("own.sem", fl),
            name("own.b", fl),
        );
        run(fl, move || async move {
            let m = Arc::new(Mutex::named(n, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            let g = m.clone().lock_owned().await;
            let handoff = tokio::spawn(async move {
                let mut g = g;
                tokio::time::sleep(Duration::from_millis(20)).await;
                *g += 1;
            });
            // This task takes b, then m again (the guard is in the other task now).
            let _b = b.lock().await;
            *m.lock().await += 1;
            handoff.await.unwrap();
            drop(_b);
            // The worker pool pattern: owned permits handed to spawned tasks.
            let sem = Arc::new(Semaphore::named(ns, 2));
            let mut ts = Vec::new();
            for _ in 0..6 {
                let p = sem.clone().acquire_owned().await.unwrap();
                let (m, b) = (m.clone(), b.clone());
                ts.push(tokio::spawn(async move {
                    let _b = b.lock().await;
                    *m.lock().await += 1;
                    drop(p);
                }));
            }
            for t in ts {
                t.await.unwrap();
            }
            assert_eq!(*m.lock().await, 8);
        })
        .unwrap();
        for c in [n, ns, nb] {
            assert!(found(c).is_empty(), "{fl:?}: {:#?}", found(c));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Real deadlocks.

#[test]
fn tasks_waiting_for_each_other_are_a_deadlock_reported_not_hung() {
    setup();
    {
        let fl = FL;
        let (na, nb) = (name("dl.a", fl), name("dl.b", fl));
        run(fl, move || async move {
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let (a1, b1, bar1) = (a.clone(), b.clone(), barrier.clone());
            let t1 = tokio::spawn(async move {
                let _a = a1.lock().await;
                bar1.wait().await;
                // Waits until t2 gives up (under warn, a reported deadlock still waits).
                let _b = b1.lock().await;
                true
            });
            let t2 = tokio::spawn(async move {
                let _b = b.lock().await;
                barrier.wait().await;
                // Whichever of the two waits last closes the cycle; t2 retries until it is
                // reported (on a busy machine t1 may take a while to start waiting).
                for _ in 0..300 {
                    if within(50, a.lock()).await.is_some() {
                        return true;
                    }
                    if kinds(na).contains(&ViolationKind::Deadlock) {
                        return false;
                    }
                }
                false
            });
            let (r1, r2) = (t1.await.unwrap(), t2.await.unwrap());
            assert!(!(r1 && r2), "a real deadlock: at most one goes on");
        })
        .unwrap();
        let dl: Vec<_> = found(na)
            .into_iter()
            .filter(|v| v.kind == ViolationKind::Deadlock)
            .collect();
        assert_eq!(dl.len(), 1, "{fl:?}: {:#?}", found(na));
        assert!(first_line(&dl[0]).contains("deadlock"));
        assert_eq!(dl[0].edges.len(), 2);
        assert!(dl[0].edges.iter().all(|e| e.thread.starts_with("task #")));
    }
}

#[test]
fn blocking_lock_thread_and_task_deadlock_is_reported() {
    setup();
    {
        let fl = FL;
        let (na, nb) = (name("dlb.a", fl), name("dlb.b", fl));
        run(fl, move || async move {
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            let (a1, b1) = (a.clone(), b.clone());
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let (tx2, rx2) = std::sync::mpsc::channel::<()>();
            let th = std::thread::spawn(move || {
                let _a = a1.blocking_lock();
                tx.send(()).unwrap();
                rx2.recv().unwrap();
                let _b = b1.blocking_lock(); // waits for the task
            });
            rx.await.unwrap();
            let task = tokio::spawn(async move {
                let _b = b.lock().await;
                tx2.send(()).unwrap();
                // Closes the cycle once the thread waits for b: reported; under warn it then
                // waits, so give up after a while, and try again until the thread is waiting
                // (its first report, with a backtrace to resolve, may take a while on a busy
                // machine).
                for _ in 0..300 {
                    if within(50, a.lock()).await.is_some() {
                        return true;
                    }
                    if kinds(na).contains(&ViolationKind::Deadlock) {
                        return false;
                    }
                }
                false
            });
            assert!(!task.await.unwrap(), "a real deadlock: the task cannot get a");
            tokio::task::spawn_blocking(move || th.join().unwrap())
                .await
                .unwrap();
        })
        .unwrap();
        let dl: Vec<_> = found(na)
            .into_iter()
            .filter(|v| v.kind == ViolationKind::Deadlock)
            .collect();
        assert_eq!(dl.len(), 1, "{fl:?}: {:#?}", found(na));
        let holders: Vec<&str> = dl[0].edges.iter().map(|e| e.thread.as_str()).collect();
        assert!(
            holders.iter().any(|h| h.starts_with("task #"))
                && holders.iter().any(|h| !h.starts_with("task #")),
            "a task and a thread: {holders:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Sync guards held across `.await`.

/// Violations about a lock whose class is a construction site in this file at `line`.
fn at_line(line: u32) -> Vec<lockcheck::Violation> {
    let prefix = format!("{}:{line}:", file!());
    lockcheck::violations()
        .into_iter()
        .filter(|v| {
            v.edges
                .iter()
                .any(|e| e.held.class.starts_with(&prefix) || e.acquired.class.starts_with(&prefix))
        })
        .collect()
}

#[test]
fn sync_guard_held_across_await_is_reported_when_another_task_locks() {
    setup();
    {
        let fl = FL;
        let (ng, no) = (name("await.sync", fl), name("await.other", fl));
        run(fl, move || async move {
            let guard = Arc::new(lockcheck::Mutex::named(ng, 0));
            let other = Arc::new(lockcheck::Mutex::named(no, 0));
            let local = tokio::task::LocalSet::new();
            local
                .run_until(async move {
                    let holder = tokio::task::spawn_local(async move {
                        let mut g = guard.lock();
                        tokio::task::yield_now().await; // suspended with the guard
                        *g += 1;
                    });
                    let other_task = tokio::task::spawn_local(async move {
                        *other.lock() += 1; // another task, same thread, any lock
                    });
                    holder.await.unwrap();
                    other_task.await.unwrap();
                })
                .await;
        })
        .unwrap();
        let v = found(ng);
        assert_eq!(v.len(), 1, "{fl:?}: {v:#?}");
        assert_eq!(v[0].kind, ViolationKind::HeldAcrossAwait);
        assert!(first_line(&v[0]).contains("held across await"));
        assert!(v[0].edges[0].held_site.contains("scenarios.rs"));
        assert!(v[0].edges[1].thread.starts_with("task #"));
        assert!(v[0].edges[0].thread.starts_with("task #"));
        assert_ne!(v[0].edges[0].thread, v[0].edges[1].thread);
    }
}

#[test]
fn root_future_holding_a_std_api_guard_across_await_on_the_current_thread_runtime() {
    setup();
    let line = line!() + 2;
    run(Flavor::CurrentThread, move || async move {
        let s = Arc::new(lockcheck::sync::Mutex::new(0));
        let other = Arc::new(Mutex::named("await.root.other", 0));
        let g = s.lock().unwrap();
        // The spawned task runs on this thread while the root future waits for it.
        in_task(async move {
            *other.lock().await += 1;
        })
        .await;
        drop(g);
    })
    .unwrap();
    let v = at_line(line);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::HeldAcrossAwait);
    assert!(v[0].message.contains("root future"), "{}", v[0].message);
}

/// The root future's guard is tagged 0 like plain thread code's (no runtime test on the
/// acquisition path): a task that acquires over it, on the same thread, must still leave the sync
/// fast paths, even when the root itself took the same lock under the guard before (the
/// dependency then sits in the thread's cache, which a nested fast path would have used).
#[test]
fn root_future_guard_over_a_cached_dependency_is_held_across_await_for_a_task() {
    setup();
    // The task started with `tokio::spawn`, then with `lockcheck::tokio::spawn`: the same report.
    for (ng, nl, by_lockcheck) in [
        ("await.root.cached.g", "await.root.cached.l", false),
        ("await.root.cached.g2", "await.root.cached.l2", true),
    ] {
        run(Flavor::CurrentThread, move || async move {
            let g = Arc::new(lockcheck::Mutex::named(ng, 0));
            let l = Arc::new(lockcheck::Mutex::named(nl, 0));
            let guard = g.lock();
            // The root's own nested acquisitions: g then l, checked once, then from the cache.
            for _ in 0..3 {
                *l.lock() += 1;
            }
            let l2 = l.clone();
            if by_lockcheck {
                lockcheck::tokio::spawn(async move {
                    *l2.lock() += 1;
                })
                .await
                .unwrap();
            } else {
                in_task(async move {
                    *l2.lock() += 1;
                })
                .await;
            }
            drop(guard);
        })
        .unwrap();
        // Reported by the task, never by the root's own nesting.
        let v = found(ng);
        assert_eq!(v.len(), 1, "{by_lockcheck}: {v:#?}");
        assert_eq!(v[0].kind, ViolationKind::HeldAcrossAwait);
        assert!(v[0].edges[0].thread.starts_with("task #"), "{v:#?}");
        assert!(v[0].message.contains("root future"), "{}", v[0].message);
    }
}

#[test]
fn std_api_guard_held_across_await_in_local_tasks() {
    setup();
    {
        let fl = FL;
        let line = line!() + 2;
        run(fl, move || async move {
            let guard = Arc::new(lockcheck::sync::Mutex::new(0));
            let other = Arc::new(Mutex::named(name("await.std.other", fl), 0));
            let local = tokio::task::LocalSet::new();
            local
                .run_until(async move {
                    let holder = tokio::task::spawn_local(async move {
                        let mut g = guard.lock().unwrap();
                        tokio::task::yield_now().await;
                        *g += 1;
                    });
                    let t = tokio::task::spawn_local(async move {
                        *other.lock().await += 1;
                    });
                    holder.await.unwrap();
                    t.await.unwrap();
                })
                .await;
        })
        .unwrap();
        let v = at_line(line);
        assert_eq!(v.len(), 1, "{fl:?}: {v:#?}");
        assert_eq!(v[0].kind, ViolationKind::HeldAcrossAwait);
    }
}

#[test]
fn sync_guard_held_while_awaiting_an_async_lock_is_reported() {
    setup();
    {
        let fl = FL;
        let (ns, na) = (name("await.self.sync", fl), name("await.self.async", fl));
        run(fl, move || async move {
            let s = Arc::new(lockcheck::Mutex::named(ns, 0));
            let a = Arc::new(Mutex::named(na, 0));
            let g = a.clone().lock_owned().await;
            let releaser = tokio::spawn(async move {
                // Once the acquisition below waits (a 20 ms sleep did not make sure of it: the
                // guard dropped before it, the acquisition never suspends, nothing to report).
                rt::until("the acquisition waits", || support::blocked_on(na) == 1).await;
                drop(g);
            });
            {
                // The runtime's root future: no task id, still suspended holding `_sync`.
                let _sync = s.lock();
                let _a = a.lock().await; // pending until the releaser drops its guard
            }
            releaser.await.unwrap();
        })
        .unwrap();
        assert!(kinds(ns).contains(&ViolationKind::HeldAcrossAwait), "{fl:?}");
    }
}

#[test]
fn guard_dropped_before_await_and_brief_std_mutex_are_silent() {
    setup();
    {
        let fl = FL;
        let n1 = name("await.ok1", fl);
        let line = line!() + 3;
        run(fl, move || async move {
            let m = Arc::new(lockcheck::Mutex::named(n1, 0));
            let s = Arc::new(lockcheck::sync::Mutex::new(0));
            let mut ts = Vec::new();
            for _ in 0..8 {
                let (m, s) = (m.clone(), s.clone());
                ts.push(tokio::spawn(async move {
                    for _ in 0..10 {
                        {
                            let mut g = m.lock();
                            *g += 1;
                        } // dropped before the await
                        tokio::task::yield_now().await;
                        *s.lock().unwrap() += 1; // brief, no await inside
                        tokio::task::yield_now().await;
                    }
                }));
            }
            for t in ts {
                t.await.unwrap();
            }
            assert_eq!(*m.lock(), 80);
        })
        .unwrap();
        assert!(found(n1).is_empty(), "{fl:?}: {:#?}", found(n1));
        assert!(at_line(line).is_empty(), "{fl:?}: {:#?}", at_line(line));
    }
}

// ---------------------------------------------------------------------------------------------
// Naming and switches.

#[test]
fn tasks_spawned_through_lockcheck_name_their_spawn_site() {
    setup();
    let (na, nb) = ("site.a", "site.b");
    run(Flavor::MultiThread, move || async move {
        let a = Arc::new(Mutex::named(na, 0));
        let b = Arc::new(Mutex::named(nb, 0));
        let (a1, b1) = (a.clone(), b.clone());
        lockcheck::tokio::spawn(async move {
            let _a = a1.lock().await;
            let _b = b1.lock().await;
        })
        .await
        .unwrap();
        lockcheck::tokio::spawn(async move {
            let _b = b.lock().await;
            let _a = a.lock().await;
        })
        .await
        .unwrap();
    })
    .unwrap();
    let v = found(na);
    assert_eq!(v.len(), 1);
    assert!(
        v[0].message.contains("spawned at") && v[0].message.contains("scenarios.rs"),
        "{}",
        v[0].message
    );
}

// ---------------------------------------------------------------------------------------------
// Waits for a task's end (`lockcheck::tokio::spawn`'s `JoinHandle`).

#[test]
fn awaiting_a_task_that_waits_for_a_lock_the_joiner_holds_is_a_deadlock() {
    setup();
    let fl = FL;
    let nm = name("join.m", fl);
    run(fl, move || async move {
        let m = Arc::new(Mutex::named(nm, 0));
        let g = m.lock().await;
        let m2 = m.clone();
        let mut h = lockcheck::tokio::spawn(async move {
            *m2.lock().await += 1;
        });
        // Reported when the cycle closes; under warn both then wait: the joiner gives up after
        // a while, releases the lock and joins again.
        for _ in 0..300 {
            assert!(
                within(50, &mut h).await.is_none(),
                "the task cannot end while its joiner holds m"
            );
            if kinds(nm).contains(&ViolationKind::Deadlock) {
                break;
            }
        }
        drop(g);
        h.await.unwrap();
    })
    .unwrap();
    let dl: Vec<_> = found(nm)
        .into_iter()
        .filter(|v| v.kind == ViolationKind::Deadlock)
        .collect();
    assert_eq!(dl.len(), 1, "{fl:?}: {:#?}", found(nm));
    assert!(first_line(&dl[0]).contains("deadlock"));
    // Named as a thread's end is (a lock of kind `End`), no more as a `Once`.
    assert!(
        dl[0].message.contains("`end of task spawned at tests/")
            && dl[0].message.contains("scenarios.rs")
            && !dl[0].message.contains("Once `"),
        "the task's end, named by its spawn site: {}",
        dl[0].message
    );
    assert!(
        dl[0]
            .edges
            .iter()
            .any(|e| e.held.kind == lockcheck_core::trace::LockKind::End),
        "{:#?}",
        dl[0].edges
    );
    // The joiner is the runtime's root future (a thread), the task a task.
    assert!(dl[0].edges.iter().any(|e| e.thread.starts_with("task #")));
    assert_eq!(dl[0].edges.len(), 2);
}

#[test]
fn awaiting_a_blocking_task_that_waits_for_a_lock_the_joiner_holds_is_a_deadlock() {
    setup();
    let fl = FL;
    let nm = name("join.blocking.m", fl);
    run(fl, move || async move {
        let m = Arc::new(Mutex::named(nm, 0));
        let g = m.lock().await;
        let m2 = m.clone();
        let mut h = lockcheck::tokio::spawn_blocking(move || {
            *m2.blocking_lock() += 1;
        });
        for _ in 0..300 {
            assert!(within(50, &mut h).await.is_none());
            if kinds(nm).contains(&ViolationKind::Deadlock) {
                break;
            }
        }
        drop(g);
        h.await.unwrap();
    })
    .unwrap();
    assert_eq!(kinds(nm), [ViolationKind::Deadlock], "{fl:?}: {:#?}", found(nm));
}

#[test]
fn joins_that_cannot_deadlock_are_silent() {
    setup();
    let fl = FL;
    let (n1, n2, n3) = (
        name("join.ok.before", fl),
        name("join.ok.other", fl),
        name("join.ok.gaveup", fl),
    );
    run(fl, move || async move {
        // The task took and released the lock before the joiner took it.
        let m = Arc::new(Mutex::named(n1, 0));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let m2 = m.clone();
        let h = lockcheck::tokio::spawn(async move {
            *m2.lock().await += 1;
            tx.send(()).unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        });
        rx.await.unwrap();
        let g = m.lock().await;
        h.await.unwrap();
        drop(g);

        // The joiner holds a lock the task never takes.
        let other = Arc::new(Mutex::named(n2, 0));
        let mine = Mutex::named(n2, 0);
        let g = mine.lock().await;
        lockcheck::tokio::spawn(async move {
            *other.lock().await += 1;
        })
        .await
        .unwrap();
        drop(g);

        // The joiner gives the join up (the handle stays alive, as in a `select!`), goes on
        // (takes another lock) and releases its lock later: the task waits for it meanwhile, but
        // nobody waits for the task.
        let m = Arc::new(Mutex::named(n3, 0));
        let n = Mutex::named(n3, 0);
        let g = m.lock().await;
        let m2 = m.clone();
        let mut h = lockcheck::tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            *m2.lock().await += 1;
        });
        assert!(within(20, &mut h).await.is_none());
        let _n = n.lock().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(g);
        h.await.unwrap();
    })
    .unwrap();
    for n in [n1, n2, n3] {
        assert!(found(n).is_empty(), "{fl:?}: {n}: {:#?}", found(n));
    }
}

#[test]
fn block_on_of_a_task_that_waits_for_the_threads_lock_is_a_deadlock() {
    setup();
    let fl = FL;
    let nm = name("join.blockon.m", fl);
    run(fl, move || async move {
        let m = Arc::new(Mutex::named(nm, 0));
        let handle = tokio::runtime::Handle::current();
        // A plain thread holds m and blocks on the end of a task that waits for m.
        let th = std::thread::spawn(move || {
            let g = m.blocking_lock();
            let m2 = m.clone();
            let mut h = {
                let _in = handle.enter();
                lockcheck::tokio::spawn(async move {
                    *m2.lock().await += 1;
                })
            };
            for _ in 0..300 {
                let ended = handle.block_on(async { within(50, &mut h).await.is_some() });
                assert!(!ended, "the task cannot end while the thread holds m");
                if kinds(nm).contains(&ViolationKind::Deadlock) {
                    break;
                }
            }
            drop(g);
            handle.block_on(h).unwrap();
        });
        tokio::task::spawn_blocking(move || th.join().unwrap())
            .await
            .unwrap();
    })
    .unwrap();
    assert_eq!(kinds(nm), [ViolationKind::Deadlock], "{fl:?}: {:#?}", found(nm));
}
