//! Offline equals runtime, for `lockcheck::tokio`: every async scenario runs as a child process
//! (this test binary again, selecting the scenario by environment) with `LOCKCHECK_TRACE` set,
//! under `LOCKCHECK=panic` and `LOCKCHECK=warn`, on both runtime flavours; each finding the
//! runtime reports on stderr (inversions between tasks, async self-deadlocks, real deadlocks, sync
//! guards held across `.await`, owned guards) must be reported by `lockcheck analyze` on the trace
//! of that very run, and nothing else; each look-alike must stay silent on both sides.
// The scenarios hold sync guards across `.await` on purpose: that is what lockcheck reports.
#![allow(clippy::await_holding_lock)]

#[path = "support/oer.rs"]
mod oer;

#[path = "support/scratch.rs"]
mod scratch;

mod support;

use lockcheck::tokio::{Mutex, RwLock, Semaphore};
use scratch::Scratch;
use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// Gives up on an acquisition after `ms` (under `warn` a reported one would wait forever).
async fn within<T>(ms: u64, f: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(Duration::from_millis(ms), f)
        .await
        .ok()
}

/// `support::wait_until` for a task: polls `cond` every millisecond, yielding to the runtime in
/// between, and panics naming `what` if it does not hold within 60 seconds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the scenario did not form: {what} (not within 60 s)"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Joins a task; a panic in it (the action `panic` stopping it) is expected.
async fn join<T>(h: tokio::task::JoinHandle<T>) {
    let _ = h.await;
}

// ---------------------------------------------------------------------------------------------
// The scenarios (each names its locks `oer.<scenario>.*`).

async fn inversion() {
    let a = Arc::new(Mutex::named("oer.inv.a", 0));
    let b = Arc::new(Mutex::named("oer.inv.b", 0));
    let (a1, b1) = (a.clone(), b.clone());
    join(tokio::spawn(async move {
        let _a = a1.lock().await;
        tokio::task::yield_now().await;
        let _b = b1.lock().await;
    }))
    .await;
    join(tokio::spawn(async move {
        let _b = b.lock().await;
        let _a = a.lock().await;
    }))
    .await;
}

async fn self_deadlock() {
    join(tokio::spawn(async move {
        let m = Mutex::named("oer.self.m", 0);
        let _g = m.lock().await;
        let _ = within(50, m.lock()).await;
    }))
    .await;
}

async fn recursive_read() {
    join(tokio::spawn(async move {
        let rw = RwLock::named("oer.rr", 0);
        let _r1 = rw.read().await;
        let _r2 = rw.read().await;
    }))
    .await;
}

async fn semaphore_self() {
    join(tokio::spawn(async move {
        let s = Semaphore::named("oer.sem", 2);
        let _p = s.acquire_many(2).await;
        let _ = within(50, s.acquire()).await;
    }))
    .await;
}

async fn owned_self() {
    join(tokio::spawn(async move {
        let m = Arc::new(Mutex::named("oer.own.self", 0));
        let _g = m.clone().lock_owned().await;
        let _ = within(50, m.lock()).await;
    }))
    .await;
}

async fn owned_kept() {
    let a = Arc::new(Mutex::named("oer.kept.a", 0));
    let b = Arc::new(Mutex::named("oer.kept.b", 0));
    let (a1, b1) = (a.clone(), b.clone());
    join(tokio::spawn(async move {
        let ga = a1.lock_owned().await;
        *b1.lock().await += 1;
        drop(ga);
    }))
    .await;
    join(tokio::spawn(async move {
        let _b = b.lock().await;
        let _a = a.lock().await;
    }))
    .await;
}

async fn real_deadlock() {
    let a = Arc::new(Mutex::named("oer.dl.a", 0));
    let b = Arc::new(Mutex::named("oer.dl.b", 0));
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let (a1, b1, bar1) = (a.clone(), b.clone(), barrier.clone());
    let t1 = tokio::spawn(async move {
        let _a = a1.lock_owned().await;
        bar1.wait().await;
        let _ = within(1500, b1.lock()).await;
    });
    let t2 = tokio::spawn(async move {
        let _b = b.lock().await;
        barrier.wait().await;
        let _ = within(1000, a.lock()).await;
    });
    join(t1).await;
    join(t2).await;
}

/// A task awaits (through `lockcheck::tokio::spawn`'s handle) a task that waits for the lock it
/// holds.
async fn join_deadlock() {
    let m = Arc::new(Mutex::named("oer.join.m", 0));
    join(tokio::spawn(async move {
        let g = m.lock().await;
        let m2 = m.clone();
        let h = lockcheck::tokio::spawn(async move {
            let _ = within(1000, m2.lock()).await;
        });
        let _ = within(1500, h).await;
        drop(g);
    }))
    .await;
}

/// A task awaits a task that takes the lock, holding nothing itself: no join deadlock.
async fn join_holding_nothing_look_alike() {
    let m = Arc::new(Mutex::named("oer.ok.joinfree.m", 0));
    join(tokio::spawn(async move {
        let m2 = m.clone();
        let h = lockcheck::tokio::spawn(async move {
            *m2.lock().await += 1;
        });
        let _ = h.await;
        *m.lock().await += 1;
    }))
    .await;
}

/// A sync `Once` in an async wait cycle: a thread runs its initializer, which waits (in
/// `block_on`) for the tokio lock a task holds; the task then calls the `Once`. A deadlock
/// through a `Once`, reported as one (no task's end in it). The initializer gives its wait up
/// after 1.5 s (a oneshot fired by a plain thread: the current-thread runtime's timer does not
/// run while the task blocks its only thread).
async fn sync_once_cycle() {
    let m = Arc::new(Mutex::named("oer.oncecycle.m", 0));
    let once = Arc::new(lockcheck::Once::named("oer.oncecycle.once"));
    let handle = tokio::runtime::Handle::current();
    join(tokio::spawn(async move {
        let g = m.lock().await;
        let (m2, once2) = (m.clone(), once.clone());
        let (started, wait_started) = std::sync::mpsc::channel::<()>();
        let initializer = std::thread::spawn(move || {
            once2.call_once(|| {
                let (give_up, gave_up) = tokio::sync::oneshot::channel::<()>();
                let timer = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(1500));
                    let _ = give_up.send(());
                });
                started.send(()).unwrap();
                handle.block_on(async move {
                    tokio::select! {
                        _ = m2.lock() => {}
                        _ = gave_up => {}
                    }
                });
                timer.join().unwrap();
            });
        });
        wait_started.recv().unwrap();
        // The initializer's wait for m begins first: the task's call closes the cycle. (A
        // 200 ms sleep did not make sure of it on a loaded machine; this task may block its
        // thread here, as it did in that sleep: the initializer's thread drives its own wait.)
        // Under `panic` the initializer is stopped as its wait begins (a guard held across
        // `block_on`'s `.await`), its request of m checked: then it ends instead.
        support::wait_until("the initializer waits for m", || {
            support::blocked_on("oer.oncecycle.m") == 1 || initializer.is_finished()
        });
        once.call_once(|| {});
        drop(g);
        initializer.join().unwrap();
    }))
    .await;
}

/// Tasks use a sync `Once` around joins: one initializes it while its joiner holds a lock it
/// never takes, another finds it done under that lock. No cycle.
async fn sync_once_look_alike() {
    let m = Arc::new(Mutex::named("oer.ok.once.m", 0));
    let once = Arc::new(lockcheck::Once::named("oer.ok.once.once"));
    join(tokio::spawn(async move {
        let g = m.lock().await;
        let o = once.clone();
        let h = lockcheck::tokio::spawn(async move { o.call_once(|| {}) });
        let _ = h.await;
        once.call_once(|| {});
        drop(g);
    }))
    .await;
}

/// The joiner gives the join up (the handle stays alive), goes on and releases its lock later;
/// the task took the other lock before the joiner did.
async fn join_look_alikes() {
    let m = Arc::new(Mutex::named("oer.joinok.m", 0));
    let n = Arc::new(Mutex::named("oer.joinok.n", 0));
    join(tokio::spawn(async move {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let n2 = n.clone();
        let h = lockcheck::tokio::spawn(async move {
            *n2.lock().await += 1;
            tx.send(()).unwrap();
        });
        rx.await.unwrap();
        let gn = n.lock().await;
        let _ = h.await;
        drop(gn);

        let g = m.lock().await;
        let m2 = m.clone();
        // The task asks for the lock only once the joiner has given the join up (a signal, not a
        // sleep: under load a 20 ms give-up could come after a 100 ms sleep, and the join would
        // then be a real deadlock).
        let (go, gone) = tokio::sync::oneshot::channel::<()>();
        let mut h = lockcheck::tokio::spawn(async move {
            gone.await.unwrap();
            *m2.lock().await += 1;
        });
        let _ = within(20, &mut h).await;
        go.send(()).unwrap();
        let _n = n.lock().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(g);
        let _ = h.await;
    }))
    .await;
}

async fn across_await_other_task() {
    let guard = Arc::new(lockcheck::Mutex::named("oer.await.guard", 0));
    let other = Arc::new(lockcheck::Mutex::named("oer.await.other", 0));
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let holder = tokio::task::spawn_local(async move {
                let _g = guard.lock();
                tokio::task::yield_now().await;
            });
            let t = tokio::task::spawn_local(async move {
                *other.lock() += 1;
            });
            join(holder).await;
            join(t).await;
        })
        .await;
}

async fn across_await_self() {
    let s = Arc::new(lockcheck::Mutex::named("oer.await.self.sync", 0));
    let a = Arc::new(Mutex::named("oer.await.self.async", 0));
    let g = a.clone().lock_owned().await;
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(g);
    });
    {
        let _sync = s.lock();
        let _a = a.lock().await;
    }
    join(releaser).await;
}

async fn mixed_sync_async() {
    let m = Arc::new(Mutex::named("oer.mix.async", 0));
    let s = Arc::new(lockcheck::Mutex::named("oer.mix.sync", 0));
    let (m1, s1) = (m.clone(), s.clone());
    join(tokio::spawn(async move {
        let _m = m1.lock().await;
        *s1.lock() += 1;
    }))
    .await;
    join(tokio::spawn(async move {
        let _s = s.lock();
        let _ = m.try_lock(); // no order: a try
        drop(_s);
        let _m = m.lock().await;
    }))
    .await;
    let local = tokio::task::LocalSet::new();
    let (m2, s2) = (
        Arc::new(Mutex::named("oer.mix2.async", 0)),
        Arc::new(lockcheck::Mutex::named("oer.mix2.sync", 0)),
    );
    let (m3, s3) = (m2.clone(), s2.clone());
    join(tokio::spawn(async move {
        let _m = m3.lock().await;
        *s3.lock() += 1;
    }))
    .await;
    local
        .run_until(async move {
            join(tokio::task::spawn_local(async move {
                let _s = s2.lock();
                *m2.lock().await += 1;
            }))
            .await;
        })
        .await;
}

async fn consistent_order() {
    let a = Arc::new(Mutex::named("oer.ok.order.a", 0));
    let b = Arc::new(Mutex::named("oer.ok.order.b", 0));
    let mut ts = Vec::new();
    for _ in 0..4 {
        let (a, b) = (a.clone(), b.clone());
        ts.push(tokio::spawn(async move {
            for _ in 0..5 {
                let _x = a.lock().await;
                tokio::task::yield_now().await;
                let _y = b.lock().await;
            }
        }));
    }
    for t in ts {
        join(t).await;
    }
}

async fn dropped_before_await_and_brief_std() {
    let m = Arc::new(lockcheck::Mutex::named("oer.ok.dropped", 0));
    let s = Arc::new(lockcheck::sync::Mutex::new(0));
    let other = Arc::new(Mutex::named("oer.ok.dropped.async", 0));
    let mut ts = Vec::new();
    for _ in 0..4 {
        let (m, s, other) = (m.clone(), s.clone(), other.clone());
        ts.push(tokio::spawn(async move {
            for _ in 0..5 {
                {
                    *m.lock() += 1;
                }
                tokio::task::yield_now().await;
                *s.lock().unwrap() += 1;
                *other.lock().await += 1;
            }
        }));
    }
    for t in ts {
        join(t).await;
    }
}

async fn read_read() {
    let a = Arc::new(RwLock::named("oer.ok.rr.a", 0));
    let b = Arc::new(RwLock::named("oer.ok.rr.b", 0));
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
    join(t1).await;
    join(t2).await;
}

async fn owned_moved() {
    let m = Arc::new(Mutex::named("oer.ok.moved.m", 0));
    let b = Arc::new(Mutex::named("oer.ok.moved.b", 0));
    let g = m.clone().lock_owned().await;
    let handoff = tokio::spawn(async move {
        let mut g = g;
        tokio::time::sleep(Duration::from_millis(20)).await;
        *g += 1;
    });
    {
        let _b = b.lock().await;
        *m.lock().await += 1;
    }
    join(handoff).await;
    // Owned permits handed to workers, which take b then m.
    let sem = Arc::new(Semaphore::named("oer.ok.moved.sem", 2));
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
        join(t).await;
    }
}

async fn try_reverse() {
    let a = Arc::new(Mutex::named("oer.ok.try.a", 0));
    let b = Arc::new(Mutex::named("oer.ok.try.b", 0));
    let (a1, b1) = (a.clone(), b.clone());
    join(tokio::spawn(async move {
        let _a = a1.lock().await;
        let _b = b1.lock().await;
    }))
    .await;
    join(tokio::spawn(async move {
        let _b = b.lock().await;
        let _a = a.try_lock();
    }))
    .await;
}

/// A futurelock (Oxide RFD 609): a task keeps a lock future a `select!` polled once (queued) and
/// waits for the lock again in the other branch.
async fn futurelock() {
    let m = Arc::new(Mutex::named("oer.futurelock", 0));
    let m1 = m.clone();
    // Told through a tokio oneshot, which lockcheck does not see (the trace stays the same).
    let (locked, is_locked) = tokio::sync::oneshot::channel::<()>();
    let holder = tokio::spawn(async move {
        let _g = m1.lock().await;
        let _ = locked.send(());
        // Held until both acquisitions of the other task wait: the queued one and the one in
        // the `select!`'s other branch (sleeps of 10 and 200 ms did not make sure of the order on
        // a loaded machine).
        until("both acquisitions wait", || {
            support::blocked_on("oer.futurelock") == 2
                || !support::found("oer.futurelock").is_empty()
        })
        .await;
    });
    is_locked.await.unwrap();
    join(tokio::spawn(async move {
        let mut first = Some(Box::pin(m.lock()));
        tokio::select! {
            _ = first.as_mut().unwrap() => {}
            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                let _ = within(3500, m.lock()).await;
            }
        }
        drop(first);
    }))
    .await;
    join(holder).await;
}

/// Two acquisitions of one task polled together (`join!`) while another task holds the lock past
/// the watch's grace: the first completes when handed the lock, then the second.
async fn futurelock_look_alike() {
    let m = Arc::new(Mutex::named("oer.ok.futurelock", 0));
    let m1 = m.clone();
    let (locked, is_locked) = tokio::sync::oneshot::channel::<()>();
    let holder = tokio::spawn(async move {
        let _g = m1.lock().await;
        let _ = locked.send(());
        tokio::time::sleep(Duration::from_millis(3200)).await;
    });
    // The holder holds first (a 10 ms sleep did not make sure of it; a oneshot, unseen by
    // lockcheck, leaves the trace as it was).
    is_locked.await.unwrap();
    join(tokio::spawn(async move {
        tokio::join!(async { *m.lock().await += 1 }, async {
            *m.lock().await += 1
        });
    }))
    .await;
    join(holder).await;
}

/// A pool of two connections (a semaphore): two tasks each hold one and ask for another, so
/// each waits for the other's (a wait cycle through one semaphore: a `deadlock`). Under `panic`
/// the request that closes the cycle is stopped and the other one gets its connection.
async fn semaphore_cycle() {
    let pool = Arc::new(Semaphore::named("oer.semcycle", 2));
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mut ts = Vec::new();
    for ms in [1000, 1500] {
        let (p, b) = (pool.clone(), barrier.clone());
        ts.push(tokio::spawn(async move {
            let _first = p.acquire().await.unwrap();
            b.wait().await;
            let _ = within(ms, p.acquire()).await;
        }));
    }
    for t in ts {
        join(t).await;
    }
}

/// The same pool, but the other task does not ask for a second connection: it returns its own
/// a little later, and the waiting task gets it.
async fn semaphore_cycle_look_alike() {
    let pool = Arc::new(Semaphore::named("oer.ok.semcycle", 2));
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let (p, b) = (pool.clone(), barrier.clone());
    let t1 = tokio::spawn(async move {
        let _first = p.acquire().await.unwrap();
        b.wait().await;
        let _ = within(1500, p.acquire()).await;
    });
    let t2 = tokio::spawn(async move {
        let _first = pool.acquire().await.unwrap();
        barrier.wait().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    });
    join(t1).await;
    join(t2).await;
}

/// A pool whose permits grow (`add_permits`) after the trace learnt them: two tasks each hold
/// one and ask for another while two are free, so neither waits (the trace gives the new count).
async fn semaphore_added_look_alike() {
    let pool = Arc::new(Semaphore::named("oer.ok.semadded", 2));
    {
        let _a = pool.acquire().await.unwrap();
        let _b = pool.acquire().await.unwrap();
    }
    pool.add_permits(2);
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mut ts = Vec::new();
    for _ in 0..2 {
        let (p, b) = (pool.clone(), barrier.clone());
        ts.push(tokio::spawn(async move {
            let _first = p.acquire().await.unwrap();
            b.wait().await;
            let _ = within(1000, p.acquire()).await;
            b.wait().await;
        }));
    }
    for t in ts {
        join(t).await;
    }
}

/// A heap of 4 permits (BoundaryML/baml#3635): the parent task holds one, a collector task
/// queues `acquire_many(4)` (tokio's semaphore is first come, first served: the 3 free permits
/// are set aside for it, and it waits for the parent's), then the parent asks for a second
/// permit, queued behind the collector: a self-deadlock of the parent (`held`: the parent's
/// second request is made, else it gives its permit back: the fix, silent). `worker`: a third
/// task holds 2 permits meanwhile and gives them back after 50 ms, and the collector asks for
/// 2, which the worker's give back: the parent's request waits behind the collector without
/// needing the parent's own permit (silent).
async fn behind_queued_many(name: &'static str, second: bool, worker: bool) {
    let heap = Arc::new(Semaphore::named(name, 4));
    let parent_permit = heap.acquire().await.unwrap();
    let w = if worker {
        let (h, (tx, rx)) = (heap.clone(), tokio::sync::oneshot::channel());
        let t = tokio::spawn(async move {
            let _two = h.acquire_many(2).await.unwrap();
            tx.send(()).unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        rx.await.unwrap();
        Some(t)
    } else {
        None
    };
    let h = heap.clone();
    let all = if worker { 2 } else { 4 };
    let collector = tokio::spawn(async move {
        let _ = within(3000, h.acquire_many(all)).await;
    });
    // Queued: the permits left are set aside for it.
    until("the collector queued", || heap.available_permits() == 0).await;
    if second {
        let _ = within(1000, heap.acquire()).await;
    }
    drop(parent_permit);
    join(collector).await;
    if let Some(t) = w {
        join(t).await;
    }
}

/// Two tasks of a pool of `size` each hold a connection and, together, ask for `more` at once
/// (`acquire_many`), giving up after 1 s and 1.5 s.
async fn pool_of(pool: Arc<Semaphore>, more: u32) {
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mut ts = Vec::new();
    for ms in [1000, 1500] {
        let (p, b) = (pool.clone(), barrier.clone());
        ts.push(tokio::spawn(async move {
            let _first = p.acquire().await.unwrap();
            b.wait().await;
            let _ = within(ms, p.acquire_many(more)).await;
        }));
    }
    for t in ts {
        join(t).await;
    }
}

/// A pool of 3: each task holds one and asks for 2 more at once; one is free, and neither task
/// gives its own back (a wait cycle that counting each request as one permit misses).
async fn semaphore_many_cycle() {
    pool_of(Arc::new(Semaphore::named("oer.semmany", 3)), 2).await;
}

/// A pool of 6: the same requests, with enough permits for both (1 + 2 each).
async fn semaphore_many_look_alike() {
    pool_of(Arc::new(Semaphore::named("oer.ok.semmany", 6)), 2).await;
}

/// Uses the pool once, holding a permit while asking for another, so that the trace learns its
/// permits (a `request` says them), then forgets `n` of them.
async fn learn_then_forget(pool: &Semaphore, n: usize) {
    {
        let _a = pool.acquire().await.unwrap();
        let _b = pool.acquire().await.unwrap();
    }
    assert_eq!(pool.forget_permits(n), n);
}

/// A pool of 3 after the trace learnt it, of which 1 is forgotten: each task holds one of the
/// 2 left and asks for another (a wait cycle only with the permits counted after the forget).
async fn semaphore_forget_cycle() {
    let pool = Arc::new(Semaphore::named("oer.semforget", 3));
    learn_then_forget(&pool, 1).await;
    pool_of(pool, 1).await;
}

/// A pool of 5 of which 1 is forgotten: the 4 left are enough for both tasks (1 + 1 each).
async fn semaphore_forget_look_alike() {
    let pool = Arc::new(Semaphore::named("oer.ok.semforget", 5));
    learn_then_forget(&pool, 1).await;
    pool_of(pool, 1).await;
}

/// Each task of a pool of 3 holds one permit; then another thread (whose trace stream is
/// younger than the tasks', so the writer drains it after theirs) forgets one of the 2 free, and
/// stays alive; then each task asks for another. A wait cycle only with the permits counted
/// after the forget, which the trace must give whatever order the streams are written in.
async fn forget_elsewhere(pool: Arc<Semaphore>) {
    learn_then_forget(&pool, 0).await;
    let held = Arc::new(tokio::sync::Barrier::new(3));
    let go = Arc::new(tokio::sync::Barrier::new(3));
    let mut ts = Vec::new();
    for ms in [1000, 1500] {
        let (p, h, g) = (pool.clone(), held.clone(), go.clone());
        ts.push(tokio::spawn(async move {
            let _first = p.acquire().await.unwrap();
            h.wait().await;
            g.wait().await;
            let _ = within(ms, p.acquire()).await;
        }));
    }
    held.wait().await;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (end_tx, end_rx) = std::sync::mpsc::channel::<()>();
    let p = pool.clone();
    let other = std::thread::spawn(move || {
        done_tx.send(p.forget_permits(1)).unwrap();
        let _ = end_rx.recv();
    });
    assert_eq!(done_rx.recv().unwrap(), 1);
    go.wait().await;
    for t in ts {
        join(t).await;
    }
    drop(end_tx);
    other.join().unwrap();
}

/// [`forget_elsewhere`] on a pool of 3: a cycle (2 permits left, both held, both asked for).
async fn semaphore_forget_elsewhere_cycle() {
    forget_elsewhere(Arc::new(Semaphore::named("oer.semelse", 3))).await;
}

/// [`forget_elsewhere`] on a pool of 5: 4 left, enough for both.
async fn semaphore_forget_elsewhere_look_alike() {
    forget_elsewhere(Arc::new(Semaphore::named("oer.ok.semelse", 5))).await;
}

/// `tasks` tasks, one after the other (nothing waits), each take a permit of `pool` and request
/// another holding it (spkenv/spk#805); `give_back`: after giving the first back.
async fn nest_in_turn(pool: Arc<Semaphore>, tasks: usize, give_back: bool) {
    for _ in 0..tasks {
        let p = pool.clone();
        join(tokio::spawn(async move {
            let first = p.acquire().await.unwrap();
            if give_back {
                drop(first);
                let _second = p.acquire().await;
            } else {
                let _second = p.acquire().await;
                drop(first);
            }
        }))
        .await;
    }
}

/// A pool of 2, two tasks each requesting a permit holding one: together they can hold both and
/// wait for each other's (the permit-nest rule, predicted: here they run in turn).
async fn permit_nest_tasks() {
    nest_in_turn(Arc::new(Semaphore::named("oer.permitnest", 2)), 2, false).await;
}

/// The same tasks giving their permit back first.
async fn permit_nest_tasks_look_alike() {
    nest_in_turn(Arc::new(Semaphore::named("oer.ok.permitnest", 2)), 2, true).await;
}

/// A pool of 3 of which one permit is forgotten before use: two nesting tasks are as many as the
/// permits left.
async fn permit_nest_after_forget() {
    let pool = Arc::new(Semaphore::named("oer.permitforget", 3));
    assert_eq!(pool.forget_permits(1), 1);
    nest_in_turn(pool, 2, false).await;
}

/// A pool of 2 grown to 3 before use: two nesting tasks are fewer than its permits.
async fn permit_nest_after_add_look_alike() {
    let pool = Arc::new(Semaphore::named("oer.ok.permitadd", 2));
    pool.add_permits(1);
    nest_in_turn(pool, 2, false).await;
}

/// Two tasks take two sync locks nested in opposite orders, with no `.await` (on the
/// current-thread runtime, on one worker thread): an inversion between the tasks.
async fn sync_inversion_between_tasks() {
    let a = Arc::new(lockcheck::Mutex::named("oer.synctasks.a", 0));
    let b = Arc::new(lockcheck::Mutex::named("oer.synctasks.b", 0));
    let (a1, b1) = (a.clone(), b.clone());
    join(tokio::spawn(async move {
        let _a = a1.lock();
        *b1.lock() += 1;
    }))
    .await;
    join(tokio::spawn(async move {
        let _b = b.lock();
        *a.lock() += 1;
    }))
    .await;
}

/// One task takes two sync locks nested in both orders in turn, with `.await`s between (on the
/// multi-thread runtime it may run on both workers): one holder, silent.
async fn sync_one_task_both_orders() {
    let a = Arc::new(lockcheck::Mutex::named("oer.ok.synconetask.a", 0));
    let b = Arc::new(lockcheck::Mutex::named("oer.ok.synconetask.b", 0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    join(tokio::spawn(async move {
        for _ in 0..200 {
            {
                let _a = a.lock();
                *b.lock() += 1;
            }
            tokio::task::yield_now().await;
            {
                let _b = b.lock();
                *a.lock() += 1;
            }
            tokio::task::yield_now().await;
        }
    }))
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in busy {
        join(t).await;
    }
}

/// A task takes a sync lock it holds (nested, no `.await`): a self-deadlock (under `warn` too:
/// a certain hang), found in the task's stream offline.
async fn sync_self_in_task() {
    let a = Arc::new(lockcheck::Mutex::named("oer.syncself.a", 0));
    let b = Arc::new(lockcheck::Mutex::named("oer.syncself.b", 0));
    join(tokio::spawn(async move {
        let _a = a.lock();
        let _b = b.lock();
        *a.lock() += 1;
    }))
    .await;
}

/// A task holds a sync mutex across `.await` while another task of the same thread blocks on it
/// (local tasks: a sync guard is not `Send`): a real deadlock, since the blocked task holds the
/// thread, so the holder never resumes. The program hangs after the report, as it would without
/// lockcheck, and is killed then (`run_child`'s `hang_after_report`); the trace written until
/// then must give the same finding.
async fn sync_held_across_await_blocks_another_task() {
    let m = Arc::new(lockcheck::Mutex::named("oer.syncawait.m", 0));
    let m1 = m.clone();
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let holder = tokio::task::spawn_local(async move {
                let g = m1.lock();
                tokio::time::sleep(Duration::from_millis(50)).await;
                drop(g);
            });
            let blocker = tokio::task::spawn_local(async move {
                tokio::task::yield_now().await;
                *m.lock() += 1;
            });
            join(holder).await;
            join(blocker).await;
        })
        .await;
}

/// Under an owned guard a task takes a mutex and every permit of a semaphore, and drops the
/// guard holding them: the dependencies on the guard are confirmed then, and that is all.
async fn owned_confirmed_held() {
    let g = Arc::new(Mutex::named("oer.ok.confheld.guard", 0));
    let m = Arc::new(Mutex::named("oer.ok.confheld.m", 0));
    let pool = Arc::new(Semaphore::named("oer.ok.confheld.pool", 2));
    join(tokio::spawn(async move {
        let owned = g.clone().lock_owned().await;
        let held = m.lock().await;
        let permits = pool.acquire_many(2).await.unwrap();
        drop(owned);
        drop(permits);
        drop(held);
    }))
    .await;
}

/// Under an owned guard a task takes `m` then `p`, and drops the guard holding both (confirmed
/// `guard -> m`, `guard -> p`); another task takes `m` then `p` (the same order), a third `m`
/// then the guard's lock: an inversion with the confirmed `guard -> m`, and nothing on `p`.
async fn owned_confirmed_inversion() {
    let g = Arc::new(Mutex::named("oer.confinv.guard", 0));
    let m = Arc::new(Mutex::named("oer.confinv.m", 0));
    let p = Arc::new(Mutex::named("oer.confinv.p", 0));
    let (g1, m1, p1) = (g.clone(), m.clone(), p.clone());
    join(tokio::spawn(async move {
        let owned = g1.lock_owned().await;
        let held_m = m1.lock().await;
        let held_p = p1.lock().await;
        drop(owned);
        drop(held_p);
        drop(held_m);
    }))
    .await;
    let (m2, p2) = (m.clone(), p.clone());
    join(tokio::spawn(async move {
        let _m = m2.lock().await;
        *p2.lock().await += 1;
    }))
    .await;
    join(tokio::spawn(async move {
        let _m = m.lock().await;
        let _ = within(1000, g.lock()).await;
    }))
    .await;
}

/// (name, what the runtime must report: a runtime kind, or `-` for a look-alike).
const SCENARIOS: &[(&str, &str)] = &[
    ("inversion", "lock-order-inversion"),
    ("self_deadlock", "self-deadlock"),
    ("recursive_read", "recursive-read"),
    ("semaphore_self", "self-deadlock"),
    ("owned_self", "self-deadlock"),
    ("owned_kept", "lock-order-inversion"),
    ("real_deadlock", "lock-order-inversion"),
    ("join_deadlock", "lock-order-inversion"),
    ("across_await_other_task", "held-across-await"),
    ("across_await_self", "held-across-await"),
    ("mixed_sync_async", "lock-order-inversion"),
    ("consistent_order", "-"),
    ("dropped_before_await_and_brief_std", "-"),
    ("read_read", "-"),
    ("owned_moved", "-"),
    ("try_reverse", "-"),
    ("join_look_alikes", "-"),
    ("join_holding_nothing_look_alike", "-"),
    ("sync_once_cycle", "lock-order-inversion"),
    ("sync_once_look_alike", "-"),
    ("futurelock", "self-deadlock"),
    ("futurelock_look_alike", "-"),
    ("semaphore_cycle", "lock-order-inversion"),
    ("semaphore_cycle_look_alike", "-"),
    ("semaphore_added_look_alike", "-"),
    ("semaphore_many_cycle", "lock-order-inversion"),
    ("semaphore_many_look_alike", "-"),
    ("semaphore_behind_queued_many", "self-deadlock"),
    ("semaphore_behind_queued_many_fixed", "-"),
    ("semaphore_behind_queued_many_not_mine", "-"),
    ("semaphore_forget_cycle", "lock-order-inversion"),
    ("semaphore_forget_look_alike", "-"),
    ("semaphore_forget_elsewhere_cycle", "lock-order-inversion"),
    ("semaphore_forget_elsewhere_look_alike", "-"),
    ("permit_nest_tasks", "lock-order-inversion"),
    ("permit_nest_tasks_look_alike", "-"),
    ("permit_nest_after_forget", "lock-order-inversion"),
    ("permit_nest_after_add_look_alike", "-"),
    ("sync_inversion_between_tasks", "lock-order-inversion"),
    ("sync_one_task_both_orders", "-"),
    ("sync_self_in_task", "self-deadlock"),
    ("owned_confirmed_held", "-"),
    ("owned_confirmed_inversion", "lock-order-inversion"),
    (
        "sync_held_across_await_blocks_another_task",
        "held-across-await",
    ),
];

async fn scenario(name: &str) {
    match name {
        "inversion" => inversion().await,
        "self_deadlock" => self_deadlock().await,
        "recursive_read" => recursive_read().await,
        "semaphore_self" => semaphore_self().await,
        "owned_self" => owned_self().await,
        "owned_kept" => owned_kept().await,
        "real_deadlock" => real_deadlock().await,
        "join_deadlock" => join_deadlock().await,
        "join_look_alikes" => join_look_alikes().await,
        "join_holding_nothing_look_alike" => join_holding_nothing_look_alike().await,
        "sync_once_cycle" => sync_once_cycle().await,
        "sync_once_look_alike" => sync_once_look_alike().await,
        "across_await_other_task" => across_await_other_task().await,
        "across_await_self" => across_await_self().await,
        "mixed_sync_async" => mixed_sync_async().await,
        "consistent_order" => consistent_order().await,
        "dropped_before_await_and_brief_std" => dropped_before_await_and_brief_std().await,
        "read_read" => read_read().await,
        "owned_moved" => owned_moved().await,
        "try_reverse" => try_reverse().await,
        "futurelock" => futurelock().await,
        "futurelock_look_alike" => futurelock_look_alike().await,
        "semaphore_cycle" => semaphore_cycle().await,
        "semaphore_cycle_look_alike" => semaphore_cycle_look_alike().await,
        "semaphore_added_look_alike" => semaphore_added_look_alike().await,
        "semaphore_many_cycle" => semaphore_many_cycle().await,
        "semaphore_many_look_alike" => semaphore_many_look_alike().await,
        "semaphore_behind_queued_many" => behind_queued_many("oer.semqueued", true, false).await,
        "semaphore_behind_queued_many_fixed" => {
            behind_queued_many("oer.ok.semqueued.fix", false, false).await
        }
        "semaphore_behind_queued_many_not_mine" => {
            behind_queued_many("oer.ok.semqueued.other", true, true).await
        }
        "semaphore_forget_cycle" => semaphore_forget_cycle().await,
        "semaphore_forget_look_alike" => semaphore_forget_look_alike().await,
        "semaphore_forget_elsewhere_cycle" => semaphore_forget_elsewhere_cycle().await,
        "semaphore_forget_elsewhere_look_alike" => semaphore_forget_elsewhere_look_alike().await,
        "permit_nest_tasks" => permit_nest_tasks().await,
        "permit_nest_tasks_look_alike" => permit_nest_tasks_look_alike().await,
        "permit_nest_after_forget" => permit_nest_after_forget().await,
        "permit_nest_after_add_look_alike" => permit_nest_after_add_look_alike().await,
        "sync_inversion_between_tasks" => sync_inversion_between_tasks().await,
        "sync_one_task_both_orders" => sync_one_task_both_orders().await,
        "sync_self_in_task" => sync_self_in_task().await,
        "owned_confirmed_held" => owned_confirmed_held().await,
        "owned_confirmed_inversion" => owned_confirmed_inversion().await,
        "sync_held_across_await_blocks_another_task" => {
            sync_held_across_await_blocks_another_task().await
        }
        other => panic!("no scenario {other}"),
    }
}

/// The child: runs the scenario named by `OER_ASYNC_SCENARIO` on the flavour `OER_ASYNC_FLAVOR`
/// (nothing when run as a plain test).
#[test]
fn child() {
    let Ok(name) = std::env::var("OER_ASYNC_SCENARIO") else {
        return;
    };
    let multi = std::env::var("OER_ASYNC_FLAVOR").is_ok_and(|f| f == "multi");
    let rt = if multi {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
    }
    .unwrap();
    rt.block_on(async move {
        let _ = tokio::time::timeout(Duration::from_secs(20), scenario(&name)).await;
    });
}

// ---------------------------------------------------------------------------------------------
// The comparison.

/// What a scenario's reports must say besides their kind and locks: (scenario, a piece of the
/// runtime's stderr, pieces of one line of `lockcheck analyze`'s text (the finding's title), a
/// piece neither may contain). A task's end is named as a thread's (`end of task spawned at`),
/// and a cycle through it is a join deadlock; a sync `Once` stays a `Once`.
type Wording = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
);
const WORDING: &[Wording] = &[
    // One semaphore, its holders each requesting more: named so on both sides, not as a cycle
    // "between" the semaphore and itself.
    (
        "permit_nest_tasks",
        "2 tasks request a permit of",
        &[
            "lock-order inversion (permits): 2 tasks each request permits of ",
            "oer.permitnest",
        ],
        "between ",
    ),
    (
        "join_deadlock",
        "`end of task spawned at tests/async_offline_equals_runtime.rs:",
        &[
            "join deadlock: ",
            " (end of task spawned at tests/async_offline_equals_runtime.rs:",
        ],
        "Once `",
    ),
    (
        "sync_once_cycle",
        "Once `oer.oncecycle.once`",
        &[
            "lock-order inversion between ",
            "oer.oncecycle.once",
            "oer.oncecycle.m",
        ],
        "end of task",
    ),
];

/// `lockcheck analyze`'s text report on `trace` (titles and all).
fn offline_text(trace: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lockcheck"))
        .args(["analyze", "--no-config", "--allow-truncated"])
        .arg(trace)
        .output()
        .expect("lockcheck runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs one scenario as a child under a timeout; returns its stderr.
fn run_child(name: &str, multi: bool, mode: &str, trace: &Path) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env("OER_ASYNC_SCENARIO", name)
        .env("OER_ASYNC_FLAVOR", if multi { "multi" } else { "current" });
    // A scenario that deadlocks for real (a sync lock held across `.await` on the current-thread
    // runtime) hangs after its report: killed 10 s after it, with the trace flushed by then.
    oer::run_traced(
        cmd,
        mode,
        false,
        trace,
        Duration::from_secs(60),
        Some(Duration::from_secs(10)),
    )
}

#[test]
fn every_async_scenario_reports_the_same_findings_offline() {
    if std::env::var_os("OER_ASYNC_SCENARIO").is_some() {
        return;
    }
    // Instrumentation is compiled out of release builds unless the `instrument` feature is on:
    // without it there is no runtime finding and no trace to compare.
    if !lockcheck::ENABLED {
        eprintln!("NOTICE: lockcheck's instrumentation is compiled out of this build: skipped");
        return;
    }
    let dir = Scratch::new("async-oer");
    // `OER_ASYNC_ONLY=a,b` runs only those scenarios (when working on them).
    let only = std::env::var("OER_ASYNC_ONLY").ok();
    let mut jobs = Vec::new();
    for &(name, expect) in SCENARIOS {
        if only
            .as_ref()
            .is_some_and(|o| !o.split(',').any(|x| x == name))
        {
            continue;
        }
        for multi in [false, true] {
            for mode in ["panic", "warn"] {
                jobs.push((name, expect, multi, mode));
            }
        }
    }
    let queue = std::sync::Mutex::new(jobs);
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let Some((name, expect, multi, mode)) = queue.lock().unwrap().pop() else {
                    return;
                };
                let fl = if multi { "multi" } else { "current" };
                let run = format!("{name}-{fl}-{mode}");
                let trace = dir.join(format!("{run}.{}", oer::trace_ext(&run)));
                let stderr = run_child(name, multi, mode, &trace);
                let what = format!("{name} ({fl}, LOCKCHECK={mode}, {})", trace.display());
                if !trace.exists() {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{what}: no trace; stderr:\n{stderr}"));
                    continue;
                }
                // With the analyzer's kind names.
                let runtime = oer::as_offline(&oer::runtime_findings(&stderr));
                let (offline, report) = oer::offline_findings(&trace, &["--no-config"]);
                let explain = format!(
                    "{what}:\n  runtime: {runtime:?}\n  offline: {offline:?}\n  warnings: {}\n--- stderr:\n{stderr}",
                    report["warnings"]
                );
                let warnings = report["warnings"].to_string();
                let mut bad = Vec::new();
                if warnings.contains("not held") || warnings.contains("another thread") {
                    bad.push("unbalanced trace");
                }
                if expect == "-" {
                    if !runtime.is_empty() || !offline.is_empty() {
                        bad.push("look-alike reported");
                    }
                } else {
                    if !runtime.iter().any(|(k, _)| k == expect) {
                        bad.push("the runtime missed it");
                    }
                    if runtime.iter().any(|f| !offline.contains(f)) {
                        bad.push("missed offline");
                    }
                    if offline.iter().any(|f| !runtime.contains(f)) {
                        bad.push("reported offline only");
                    }
                }
                let text;
                if let Some(&(_, said, titled, never)) = WORDING.iter().find(|w| w.0 == name) {
                    text = offline_text(&trace);
                    if !stderr.contains(said) {
                        bad.push("the runtime's report is worded otherwise");
                    }
                    if !text.lines().any(|l| titled.iter().all(|t| l.contains(t))) {
                        bad.push("titled otherwise offline");
                    }
                    if stderr.contains(never) || text.contains(never) {
                        bad.push("named as another kind");
                    }
                } else {
                    text = String::new();
                }
                if !bad.is_empty() {
                    let explain = format!("{explain}\n--- analyze:\n{text}");
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{}: {explain}", bad.join(", ")));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
