// Reproductions of real async deadlock bugs from public projects, each with a harmless
// look-alike, included by `async_real_bugs_current_thread.rs` and
// `async_real_bugs_multi_thread.rs` (one process per runtime flavour: each bug is reported once
// per process, and both flavours run the same lines). `FL` is the flavour. The bug must be
// reported with the right kind, at the right lines, and the look-alike must stay silent. No code
// is copied: each scenario is a minimal program with the shape of the bug, written with
// `lockcheck::tokio` / `lockcheck` locks; the source is cited above each test.
//
// The action is `panic`: a reported acquisition panics in its task before it waits, so a bug
// that lockcheck reports cannot hang, and one it misses fails the test (every hang-prone wait
// is under a short timeout, and each scenario under `rt::run`'s timeout and watchdog).

use lockcheck::tokio::{Mutex, RwLock, Semaphore};
use lockcheck::{Action, Violation, ViolationKind};
use rt::{name, run, within, Flavor};
use std::sync::Arc;
use std::time::Duration;
use support::found;

fn setup() {
    lockcheck::set_action(Action::Panic);
}

/// `real_bugs.rs:LINE:` (sites are `file:line:col`).
fn at(line: u32) -> String {
    format!("real_bugs.rs:{line}:")
}

fn kinds(class: &str) -> Vec<ViolationKind> {
    found(class).into_iter().map(|v| v.kind).collect()
}

fn first_line(v: &Violation) -> &str {
    v.message.lines().next().unwrap_or("")
}

/// Joins a task that lockcheck is expected to stop (`panic`): its panic message.
async fn panicked<T: std::fmt::Debug>(h: tokio::task::JoinHandle<T>) -> String {
    match h.await {
        Ok(v) => panic!("the task was expected to be stopped by a report, it returned {v:?}"),
        Err(e) => support::panic_message(&*e.into_panic()),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. A read guard held while a helper reads the same tokio RwLock again, a writer queued in
//    between (tokio's RwLock is fair: the second read waits behind the writer, which waits for
//    the first read).
//    Sources: tokio-rs/tokio#2849 ("RwLock: Recursive reads cause deadlock"), the fix of
//    dfinity/ic#2172 (PocketIC, a read of `instances` taken again while held),
//    matrix-org/matrix-rust-sdk#6839 (a read guard held across a loop calling a helper that
//    reads), tari-project/tari#4674.
//    Look-alikes: neondatabase/neon#12875 (a read held across slow I/O while a writer and
//    another reader queue: slow, not a deadlock); the helper given the guard instead.

struct Rooms {
    state: RwLock<Vec<u32>>,
}

impl Rooms {
    /// The helper that reads again (the bug): its line is the second acquisition.
    async fn find(&self, id: u32) -> Option<u32> {
        let st = within(200, self.state.read()).await?; // RECURSIVE_READ_LINE
        st.iter().copied().find(|&x| x == id)
    }

    /// The fixed helper: it is given what the caller holds.
    fn find_in(st: &[u32], id: u32) -> Option<u32> {
        st.iter().copied().find(|&x| x == id)
    }
}

fn line_of(marker: &str) -> u32 {
    let src = include_str!("real_bugs.rs");
    let needle = format!("// {marker}");
    src.lines()
        .position(|l| l.trim_end().ends_with(&needle) && !l.contains("needle"))
        .map(|i| i as u32 + 1)
        .unwrap_or_else(|| panic!("marker {marker}"))
}

#[test]
fn recursive_read_through_a_helper_while_a_writer_queues_is_reported() {
    setup();
    {
        let fl = FL;
        let n = name("real.rr.state", fl);
        let first = line!() + 9;
        run(fl, move || async move {
            let rooms = Arc::new(Rooms { state: RwLock::named(n, vec![1, 2, 3]) });
            let r = rooms.clone();
            // The writer queues once the handler reads, and the handler reads again once the
            // writer is queued (sleeps of 5 and 30 ms did not make sure of either on a loaded
            // machine: without a writer queued the second read succeeds, reported, no panic).
            let (read, has_read) = tokio::sync::oneshot::channel::<()>();
            let handler = tokio::spawn(async move {
                let st = r.state.read().await;
                let _ = read.send(());
                rt::until("the writer queues", || support::blocked_on(n) == 1).await;
                for &id in st.iter() {
                    let _ = r.find(id).await;
                }
            });
            let w = rooms.clone();
            let writer = tokio::spawn(async move {
                has_read.await.unwrap();
                w.state.write().await.push(4);
            });
            let msg = panicked(handler).await;
            assert!(msg.contains("self-deadlock"), "{fl:?}: {msg}");
            writer.await.unwrap();
        })
        .unwrap();
        let v = found(n);
        assert_eq!(v.len(), 1, "{fl:?}: {v:#?}");
        assert_eq!(v[0].kind, ViolationKind::RecursiveRead);
        assert!(first_line(&v[0]).contains("self-deadlock"));
        let e = &v[0].edges[0];
        assert!(e.thread.starts_with("task #"), "{}", e.thread);
        assert!(e.held_site.contains(&at(first)), "first read: {}", e.held_site);
        assert!(
            e.site.contains(&at(line_of("RECURSIVE_READ_LINE"))),
            "second read, in the helper: {}",
            e.site
        );
    }
}

#[test]
fn read_held_across_slow_io_with_a_writer_and_readers_queued_is_silent() {
    setup();
    {
        let fl = FL;
        let n = name("real.rr.ok", fl);
        run(fl, move || async move {
            let rooms = Arc::new(Rooms { state: RwLock::named(n, vec![1, 2, 3]) });
            // neon#12875's shape: one task holds a read across slow I/O ...
            let a = rooms.clone();
            // Each step once the one before it happened (sleeps of 10 ms did not make sure of
            // it on a loaded machine: a reader before the writer read 3 entries).
            let (read, has_read) = tokio::sync::oneshot::channel::<()>();
            let sender = tokio::spawn(async move {
                let st = a.state.read().await;
                let _ = read.send(());
                // The slow I/O: until the writer and the reader behind it wait.
                rt::until("the writer and a reader queue", || support::blocked_on(n) == 2).await;
                Rooms::find_in(&st, 2) // ... and its helper is given the guard
            });
            has_read.await.unwrap();
            // ... a writer queues behind it, and another reader behind the writer: all wait,
            // all go on once the sender is done.
            let b = rooms.clone();
            let writer = tokio::spawn(async move { b.state.write().await.push(4) });
            rt::until("the writer queues", || support::blocked_on(n) == 1).await;
            let c = rooms.clone();
            let metrics = tokio::spawn(async move { c.state.read().await.len() });
            assert_eq!(sender.await.unwrap(), Some(2));
            writer.await.unwrap();
            assert_eq!(metrics.await.unwrap(), 4);
        })
        .unwrap();
        assert!(found(n).is_empty(), "{fl:?}: {:#?}", found(n));
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Two tokio RwLocks write-locked in opposite orders by two tasks, each then reading the
//    other (a write guard held while reading the other lock).
//    Source: wasmCloud/wasmCloud#813 (`actors.write()` then `links.read()` while scaling an
//    actor; `links.write()` then `actors.read()` while putting a link). Also
//    locka99/opcua#240 (server_state / session_manager).
//    Look-alike: both tasks in the same order.

#[test]
fn rwlocks_write_locked_in_opposite_orders_by_two_tasks_are_an_inversion() {
    setup();
    {
        let fl = FL;
        let (na, nl) = (name("real.wasm.actors", fl), name("real.wasm.links", fl));
        run(fl, move || async move {
            let actors = Arc::new(RwLock::named(na, 0u32));
            let links = Arc::new(RwLock::named(nl, 0u32));
            let (a1, l1) = (actors.clone(), links.clone());
            // scale_actor: actors.write, then (in start_actor) links.read.
            tokio::spawn(async move {
                let mut a = a1.write().await;
                tokio::task::yield_now().await;
                *a += *l1.read().await; // SCALE_LINE
            })
            .await
            .unwrap();
            // put_linkdef: links.write, then actors.read.
            let msg = panicked(tokio::spawn(async move {
                let mut l = links.write().await;
                tokio::task::yield_now().await;
                *l += *actors.read().await; // PUT_LINE
            }))
            .await;
            assert!(msg.contains("lock order inversion"), "{fl:?}: {msg}");
        })
        .unwrap();
        let v = found(na);
        assert_eq!(v.len(), 1, "{fl:?}: {v:#?}");
        assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
        assert!(v[0].involves(nl));
        let sites: Vec<&str> = v[0].edges.iter().map(|e| e.site.as_str()).collect();
        assert!(sites.iter().any(|s| s.contains(&at(line_of("SCALE_LINE")))), "{sites:?}");
        assert!(sites.iter().any(|s| s.contains(&at(line_of("PUT_LINE")))), "{sites:?}");
        assert_ne!(v[0].edges[0].thread_id, v[0].edges[1].thread_id, "two tasks");
    }
}

#[test]
fn rwlocks_taken_in_one_order_by_both_tasks_are_silent() {
    setup();
    {
        let fl = FL;
        let (na, nl) = (name("real.wasm.ok.actors", fl), name("real.wasm.ok.links", fl));
        run(fl, move || async move {
            let actors = Arc::new(RwLock::named(na, 0u32));
            let links = Arc::new(RwLock::named(nl, 0u32));
            let mut ts = Vec::new();
            for i in 0..4 {
                let (a, l) = (actors.clone(), links.clone());
                ts.push(tokio::spawn(async move {
                    // The fix: actors first, always (write or read).
                    if i % 2 == 0 {
                        let mut a = a.write().await;
                        tokio::task::yield_now().await;
                        *a += *l.read().await;
                    } else {
                        let a = a.read().await;
                        tokio::task::yield_now().await;
                        *l.write().await += *a;
                    }
                }));
            }
            for t in ts {
                t.await.unwrap();
            }
        })
        .unwrap();
        assert!(found(na).is_empty(), "{fl:?}: {:#?}", found(na));
    }
}

// ---------------------------------------------------------------------------------------------
// 3. `select!` over two futures of one (`!Send`) root future, each taking the same sync mutex
//    and sleeping with it: the second one polled blocks the thread on the first's guard.
//    Source: tokio-rs/tokio#4588 ("`!Send` future in `tokio::main` deadlock in locking locked
//    mutex"). Look-alike: each future drops its guard before sleeping.

async fn use_mutex(m: &lockcheck::Mutex<u32>, keep: bool) {
    let mut g = m.lock(); // USE_MUTEX_LINE
    *g += 1;
    if !keep {
        drop(g);
        tokio::time::sleep(Duration::from_millis(5)).await;
    } else {
        tokio::time::sleep(Duration::from_millis(5)).await;
        *g += 1;
    }
}

async fn select_two(m: &lockcheck::Mutex<u32>, keep: bool) {
    let f1 = use_mutex(m, keep);
    let f2 = use_mutex(m, keep);
    tokio::pin!(f1, f2);
    let (mut d1, mut d2) = (false, false);
    while !(d1 && d2) {
        tokio::select! {
            _ = &mut f1, if !d1 => d1 = true,
            _ = &mut f2, if !d2 => d2 = true,
        }
    }
}

#[test]
fn select_over_two_futures_holding_one_sync_mutex_across_sleep_is_reported() {
    setup();
    let n = name("real.select.m", FL);
    let msg = run(FL, move || async move {
        let m = lockcheck::Mutex::named(n, 0);
        select_two(&m, true).await;
    })
    .unwrap_err();
    let v = found(n);
    assert_eq!(v.len(), 1, "{v:#?}");
    // One task (the root future) takes a lock it holds: the thread would block on itself.
    assert!(
        matches!(v[0].kind, ViolationKind::SelfDeadlock | ViolationKind::HeldAcrossAwait),
        "{v:#?}"
    );
    assert!(msg.contains(first_line(&v[0])), "{msg}");
    let e = &v[0].edges[0];
    let l = at(line_of("USE_MUTEX_LINE"));
    assert!(e.held_site.contains(&l) && e.site.contains(&l), "{e:#?}");
}

#[test]
fn select_over_two_futures_dropping_the_sync_guard_before_sleeping_is_silent() {
    setup();
    let n = name("real.select.ok", FL);
    run(FL, move || async move {
        let m = lockcheck::Mutex::named(n, 0);
        select_two(&m, false).await;
        assert_eq!(*m.lock(), 2);
    })
    .unwrap();
    assert!(found(n).is_empty(), "{:#?}", found(n));
}

// ---------------------------------------------------------------------------------------------
// 4. A task that holds a lock polls a second acquisition of it once (a `select!` branch that
//    loses) and keeps the future: tokio queues it, and the lock is handed to it on release, so
//    nothing else gets the lock while the task does not poll it.
//    Source: tokio-rs/tokio#6450 ("Semaphore deadlock": `try_write` held, then `write()`
//    futures polled once in `select!` against a ready branch).
//    Look-alike: the guard is dropped before the second acquisition is polled.

#[test]
fn lock_future_polled_once_while_the_task_holds_the_lock_is_a_self_deadlock() {
    setup();
    {
        let fl = FL;
        let n = name("real.6450.rw", fl);
        let second = line!() + 7;
        let msg = run(fl, move || async move {
            let lock = Arc::new(RwLock::named(n, ()));
            tokio::spawn(async move {
                let _held = lock.try_write().expect("first lock always succeeds");
                let fut = lock.write();
                tokio::pin!(fut);
                tokio::select! {
                    biased;
                    _ = &mut fut => unreachable!("the task holds the lock"),
                    _ = std::future::ready(()) => {}
                }
            })
            .await
            .unwrap();
        })
        .unwrap_err();
        assert!(msg.contains("self-deadlock"), "{fl:?}: {msg}");
        let v = found(n);
        assert_eq!(kinds(n), [ViolationKind::SelfDeadlock], "{fl:?}: {v:#?}");
        assert!(v[0].edges[0].site.contains(&at(second - 2)) || v[0].message.contains(&at(second)),
            "{fl:?}: {}", v[0].message);
    }
}

#[test]
fn lock_future_polled_after_the_guard_is_dropped_is_silent() {
    setup();
    {
        let fl = FL;
        let n = name("real.6450.ok", fl);
        run(fl, move || async move {
            let lock = Arc::new(RwLock::named(n, 0));
            tokio::spawn(async move {
                {
                    let mut held = lock.try_write().expect("first lock always succeeds");
                    *held += 1;
                }
                let fut = lock.write();
                tokio::pin!(fut);
                tokio::select! {
                    biased;
                    mut g = &mut fut => *g += 1,
                    _ = std::future::ready(()) => unreachable!("the lock is free"),
                }
            })
            .await
            .unwrap();
        })
        .unwrap();
        assert!(found(n).is_empty(), "{fl:?}: {:#?}", found(n));
    }
}

// ---------------------------------------------------------------------------------------------
// 5. A sync helper, called while the task holds a per-agent tokio Mutex, takes the same mutex
//    with `block_in_place(|| lock.blocking_lock())`: the same task waits for itself
//    (`block_in_place` does not release what the task holds).
//    Source: librefang/librefang#5126 (`append_to_session` mirroring a `channel_send` of an
//    agent to a channel it owns). Multi-thread runtime only (`block_in_place`).
//    Look-alike: the channel belongs to another agent (another mutex of the same map).

struct Agents {
    locks: std::sync::Mutex<std::collections::HashMap<u32, Arc<Mutex<Vec<String>>>>>,
    class: &'static str,
}

impl Agents {
    fn lock_of(&self, agent: u32) -> Arc<Mutex<Vec<String>>> {
        let class = self.class;
        self.locks
            .lock()
            .unwrap()
            .entry(agent)
            .or_insert_with(|| Arc::new(Mutex::named(class, Vec::new())))
            .clone()
    }

    /// Sync code reached from async code: appends under the agent's lock.
    fn append(&self, agent: u32, msg: &str) {
        let lock = self.lock_of(agent);
        let mut g = tokio::task::block_in_place(|| lock.blocking_lock()); // APPEND_LINE
        g.push(msg.to_owned());
    }

    async fn send_message(&self, from: u32, channel_owner: u32) {
        let lock = self.lock_of(from);
        let mut g = lock.lock().await; // SEND_LINE
        g.push("turn".to_owned());
        tokio::task::yield_now().await;
        self.append(channel_owner, "mirrored");
        drop(g);
    }
}

#[test]
fn block_in_place_blocking_lock_of_the_tasks_own_mutex_is_a_self_deadlock() {
    setup();
    // `block_in_place` needs the multi-thread runtime.
    if FL != Flavor::MultiThread {
        return;
    }
    let fl = FL;
    let n = name("real.agents", fl);
    run(fl, move || async move {
        let agents = Arc::new(Agents { locks: Default::default(), class: n });
        let a = agents.clone();
        let msg = panicked(tokio::spawn(async move { a.send_message(1, 1).await })).await;
        assert!(msg.contains("self-deadlock"), "{msg}");
    })
    .unwrap();
    let v = found(n);
    assert_eq!(kinds(n), [ViolationKind::SelfDeadlock], "{v:#?}");
    let e = &v[0].edges[0];
    assert!(e.thread.starts_with("task #"), "{}", e.thread);
    assert!(e.held_site.contains(&at(line_of("SEND_LINE"))), "{}", e.held_site);
    assert!(e.site.contains(&at(line_of("APPEND_LINE"))), "{}", e.site);
}

#[test]
fn block_in_place_blocking_lock_of_another_agents_mutex_is_silent() {
    setup();
    // `block_in_place` needs the multi-thread runtime.
    if FL != Flavor::MultiThread {
        return;
    }
    let fl = FL;
    let n = name("real.agents.ok", fl);
    run(fl, move || async move {
        let agents = Arc::new(Agents { locks: Default::default(), class: n });
        let mut ts = Vec::new();
        for agent in 0..4u32 {
            let a = agents.clone();
            // Each agent mirrors to the next one's channel: never its own.
            ts.push(tokio::spawn(async move { a.send_message(agent, agent + 10).await }));
        }
        for t in ts {
            t.await.unwrap();
        }
    })
    .unwrap();
    assert!(found(n).is_empty(), "{:#?}", found(n));
}

// ---------------------------------------------------------------------------------------------
// 6. `block_in_place(|| Handle::current().block_on(lock.lock()))` in a task that holds the lock.
//    Source: tokio-rs/tokio#7892 (`block_in_place` + `block_on` + `tokio::sync::Mutex`, from
//    eclipse-zenoh/zenoh#2409). Multi-thread runtime only.
//    Look-alike: the same call after the guard is dropped.

async fn block_on_lock(m: Arc<Mutex<u32>>, keep: bool) {
    let g = if keep { Some(m.lock().await) } else { None }; // BLOCK_ON_HELD_LINE
    let h = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| h.block_on(async { *m.lock().await += 1 })); // BLOCK_ON_LINE
    drop(g);
}

#[test]
fn block_on_of_a_lock_the_task_holds_inside_block_in_place_is_a_self_deadlock() {
    setup();
    // `block_in_place` needs the multi-thread runtime.
    if FL != Flavor::MultiThread {
        return;
    }
    let fl = FL;
    let (n, ok) = (name("real.7892.m", fl), name("real.7892.ok", fl));
    run(fl, move || async move {
        let m = Arc::new(Mutex::named(n, 0));
        let msg = panicked(tokio::spawn(block_on_lock(m, true))).await;
        assert!(msg.contains("self-deadlock"), "{msg}");
        let m = Arc::new(Mutex::named(ok, 0));
        tokio::spawn(block_on_lock(m.clone(), false)).await.unwrap();
        assert_eq!(*m.lock().await, 1);
    })
    .unwrap();
    let v = found(n);
    assert_eq!(kinds(n), [ViolationKind::SelfDeadlock], "{v:#?}");
    assert!(v[0].edges[0].site.contains(&at(line_of("BLOCK_ON_LINE"))), "{v:#?}");
    assert!(v[0].edges[0].held_site.contains(&at(line_of("BLOCK_ON_HELD_LINE"))), "{v:#?}");
    assert!(found(ok).is_empty(), "{:#?}", found(ok));
}

// ---------------------------------------------------------------------------------------------
// 7. Sync mutexes taken in opposite orders by an async fn (in a task) and a worker thread.
//    Source: versatica/mediasoup#1605 (`Consumer::resume` locks `paused` then
//    `producer_paused`; the worker thread's `ProducerResume` notification locks
//    `producer_paused` then `paused`). Look-alike: the fixed order on both sides.

async fn resume(paused: &lockcheck::Mutex<bool>, producer_paused: &lockcheck::Mutex<bool>) -> bool {
    tokio::task::yield_now().await; // the request to the worker
    let mut p = paused.lock();
    let pp = *producer_paused.lock(); // RESUME_LINE
    let was = *p || pp;
    *p = false;
    was
}

fn on_producer_resume(
    paused: &lockcheck::Mutex<bool>,
    producer_paused: &lockcheck::Mutex<bool>,
    fixed: bool,
) {
    if fixed {
        let p = *paused.lock();
        *producer_paused.lock() = false;
        let _ = p;
    } else {
        let mut pp = producer_paused.lock();
        let p = *paused.lock(); // NOTIFY_LINE
        *pp = false;
        let _ = p;
    }
}

#[test]
fn sync_mutexes_in_opposite_orders_in_a_task_and_a_worker_thread_are_an_inversion() {
    setup();
    {
        let fl = FL;
        let (np, npp) = (name("real.ms.paused", fl), name("real.ms.pp", fl));
        let (okp, okpp) = (name("real.ms.ok.paused", fl), name("real.ms.ok.pp", fl));
        run(fl, move || async move {
            let paused = Arc::new(lockcheck::Mutex::named(np, false));
            let pp = Arc::new(lockcheck::Mutex::named(npp, true));
            let okpaused = Arc::new(lockcheck::Mutex::named(okp, false));
            let okpp = Arc::new(lockcheck::Mutex::named(okpp, true));
            // The worker thread runs from the start (its notifications come later, through a
            // channel lockcheck does not see: the two sides are concurrent, as in mediasoup).
            let (go, notified) = std::sync::mpsc::channel::<bool>();
            let worker = {
                let (paused, pp) = (paused.clone(), pp.clone());
                let (okpaused, okpp) = (okpaused.clone(), okpp.clone());
                std::thread::spawn(move || {
                    let mut out = Vec::new();
                    while let Ok(fixed) = notified.recv() {
                        let (p, q) = if fixed { (&okpaused, &okpp) } else { (&paused, &pp) };
                        out.push(
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                on_producer_resume(p, q, fixed)
                            }))
                            .map_err(|e| support::panic_message(&*e)),
                        );
                    }
                    out
                })
            };
            let (p1, pp1) = (paused.clone(), pp.clone());
            tokio::spawn(async move { resume(&p1, &pp1).await }).await.unwrap();
            let (p1, pp1) = (okpaused.clone(), okpp.clone());
            tokio::spawn(async move { resume(&p1, &pp1).await }).await.unwrap();
            go.send(false).unwrap();
            go.send(true).unwrap();
            drop(go);
            let out = tokio::task::spawn_blocking(move || worker.join().unwrap()).await.unwrap();
            assert!(out[0].as_ref().unwrap_err().contains("lock order inversion"), "{out:?}");
            assert!(out[1].is_ok(), "{out:?}");
        })
        .unwrap();
        let v = found(np);
        assert_eq!(kinds(np), [ViolationKind::LockOrderInversion], "{fl:?}: {v:#?}");
        let sites: Vec<&str> = v[0].edges.iter().map(|e| e.site.as_str()).collect();
        assert!(sites.iter().any(|s| s.contains(&at(line_of("RESUME_LINE")))), "{sites:?}");
        assert!(sites.iter().any(|s| s.contains(&at(line_of("NOTIFY_LINE")))), "{sites:?}");
        // Sync locks are held per thread: the task's side is named by its worker thread.
        assert_ne!(v[0].edges[0].thread_id, v[0].edges[1].thread_id);
        assert!(found(okp).is_empty(), "{fl:?}: {:#?}", found(okp));
    }
}

// ---------------------------------------------------------------------------------------------
// 8. A connection pool bounded by a semaphore: a request holding a connection asks for a
//    second one. With a pool of one it waits for itself; with a pool of two and two such
//    requests, each holds one and waits for the other's.
//    Sources: brettwooldridge/HikariCP#442 (threads holding one connection and asking for
//    another exhaust the pool), enyineer/checkstack#233 (a lock-holder connection waiting for a
//    work connection of the same pool). Look-alike: the first connection is returned before
//    the second is taken.

struct Pool {
    permits: Semaphore,
}

impl Pool {
    // 20 s, not 300 ms: the request a report stopped returns its connection after its report
    // and panic, which took longer than 300 ms on a loaded machine, and the other request gave
    // up (1 of 1 runs on one core shared with two busy loops). What lockcheck refuses it
    // refuses before the wait; the limit only keeps a wrong wait from hanging the test.
    async fn conn(&self) -> Option<lockcheck::tokio::SemaphorePermit<'_>> {
        within(20_000, self.permits.acquire()).await.map(|p| p.unwrap()) // POOL_LINE
    }
}

#[test]
fn a_request_taking_a_second_connection_of_a_pool_of_one_is_a_self_deadlock() {
    setup();
    {
        let fl = FL;
        let n = name("real.pool1", fl);
        run(fl, move || async move {
            let pool = Arc::new(Pool { permits: Semaphore::named(n, 1) });
            let p = pool.clone();
            let msg = panicked(tokio::spawn(async move {
                let _tx = p.conn().await;
                p.conn().await.is_some()
            }))
            .await;
            assert!(msg.contains("self-deadlock"), "{fl:?}: {msg}");
        })
        .unwrap();
        assert_eq!(kinds(n), [ViolationKind::SelfDeadlock], "{fl:?}: {:#?}", found(n));
    }
}

#[test]
fn two_requests_each_holding_one_connection_of_a_pool_of_two_are_a_deadlock() {
    setup();
    {
        let fl = FL;
        let n = name("real.pool2", fl);
        run(fl, move || async move {
            let pool = Arc::new(Pool { permits: Semaphore::named(n, 2) });
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let mut ts = Vec::new();
            for _ in 0..2 {
                let (p, b) = (pool.clone(), barrier.clone());
                ts.push(tokio::spawn(async move {
                    let _tx = p.conn().await.expect("a free connection");
                    b.wait().await;
                    p.conn().await.is_some()
                }));
            }
            // The request that closes the cycle is stopped, its connection returns to the
            // pool, and the other one gets it.
            let mut stopped = 0;
            for t in ts {
                match t.await {
                    Ok(got) => assert!(got, "{fl:?}: the other request goes on"),
                    Err(e) => {
                        let msg = support::panic_message(&*e.into_panic());
                        assert!(msg.contains("deadlock"), "{fl:?}: {msg}");
                        stopped += 1;
                    }
                }
            }
            assert_eq!(stopped, 1, "{fl:?}: the report stops one request");
        })
        .unwrap();
        // Predicted before it hangs, as the sync `semaphore-cycle` scenario is: the second
        // request made holding a permit, by as many tasks as the pool has permits, is a permit
        // nest (spk#805), refused under `panic` before it waits (it was the wait-for graph's
        // `deadlock` before the rule covered tasks).
        let v = found(n);
        assert_eq!(kinds(n), [ViolationKind::LockOrderInversion], "{fl:?}: {v:#?}");
        assert_eq!(v[0].edges.len(), 2, "{fl:?}: two requests");
        for e in &v[0].edges {
            assert!(e.thread.starts_with("task #"), "{}", e.thread);
            assert!(e.site.contains(&at(line_of("POOL_LINE"))), "{}", e.site);
        }
        assert_ne!(v[0].edges[0].thread_id, v[0].edges[1].thread_id);
    }
}

#[test]
fn a_pool_whose_requests_return_a_connection_before_taking_another_is_silent() {
    setup();
    {
        let fl = FL;
        let n = name("real.pool.ok", fl);
        run(fl, move || async move {
            let pool = Arc::new(Pool { permits: Semaphore::named(n, 2) });
            let mut ts = Vec::new();
            for _ in 0..6 {
                let p = pool.clone();
                ts.push(tokio::spawn(async move {
                    {
                        let _read = p.conn().await.expect("a connection");
                        tokio::task::yield_now().await;
                    }
                    let _write = p.conn().await.expect("a connection");
                    tokio::task::yield_now().await;
                }));
            }
            for t in ts {
                t.await.unwrap();
            }
        })
        .unwrap();
        assert!(found(n).is_empty(), "{fl:?}: {:#?}", found(n));
    }
}

// ---------------------------------------------------------------------------------------------
// 9. Futurelock: a task keeps a lock future it polled once (queued) in a `select!` and, in the
//    other branch, waits for the same lock again. When the holder releases, tokio hands the
//    lock to the queued future, which its task no longer polls: the task waits for itself.
//    Sources: Oxide RFD 609 "Futurelock" (omicron), awslabs/shuttle#245, the e6data write-up
//    "Deadlocking a Tokio Mutex without holding a lock". Look-alike: the branch drops the
//    queued future before locking again.

/// `name`: `m`'s. The holder holds the lock until the second acquisition waits (sleeps of 10 and
/// 300 ms did not make sure of the order on a loaded machine: a select's branch coming after
/// the holder's release took the first future's lock, and the look-alike counted 2).
async fn futurelock(m: Arc<Mutex<u32>>, name: &'static str, drop_first: bool) -> u32 {
    let second = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (locked, is_locked) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let (m, second) = (m.clone(), second.clone());
        tokio::spawn(async move {
            let mut g = m.lock().await;
            let _ = locked.send(());
            // The second acquisition waits: alone (the first dropped), or behind the first.
            let waits = if drop_first { 1 } else { 2 };
            rt::until("the second acquisition waits", || {
                (second.load(std::sync::atomic::Ordering::SeqCst)
                    && support::blocked_on(name) == waits)
                    || !found(name).is_empty()
            })
            .await;
            *g += 1;
        })
    };
    is_locked.await.unwrap(); // the holder has it
    let mut first = Some(Box::pin(m.lock())); // FUTURELOCK_FIRST_LINE
    let n = tokio::select! {
        mut g = first.as_mut().unwrap() => { *g += 1; *g }
        _ = tokio::time::sleep(Duration::from_millis(20)) => {
            if drop_first {
                first = None;
            }
            second.store(true, std::sync::atomic::Ordering::SeqCst);
            let r = within(4000, m.lock()).await.map(|g| *g); // FUTURELOCK_LINE
            r.unwrap_or(0)
        }
    };
    drop(first);
    holder.await.unwrap();
    n
}

#[test]
fn a_task_waiting_for_a_lock_its_own_unpolled_future_is_queued_for_is_reported() {
    setup();
    {
        let fl = FL;
        let n = name("real.futurelock", fl);
        run(fl, move || async move {
            let m = Arc::new(Mutex::named(n, 0));
            let msg = panicked(tokio::spawn(futurelock(m, n, false))).await;
            assert!(msg.contains("deadlock"), "{fl:?}: {msg}");
        })
        .unwrap();
        let v = found(n);
        assert_eq!(v.len(), 1, "{fl:?}: {v:#?}");
        assert!(
            matches!(v[0].kind, ViolationKind::SelfDeadlock | ViolationKind::Deadlock),
            "{fl:?}: {v:#?}"
        );
        assert!(v[0].message.contains(&at(line_of("FUTURELOCK_LINE"))), "{}", v[0].message);
        assert!(
            v[0].message.contains(&at(line_of("FUTURELOCK_FIRST_LINE"))),
            "{}",
            v[0].message
        );
    }
}

#[test]
fn a_task_dropping_its_queued_lock_future_before_locking_again_is_silent() {
    setup();
    {
        let fl = FL;
        let n = name("real.futurelock.ok", fl);
        run(fl, move || async move {
            let m = Arc::new(Mutex::named(n, 0));
            assert_eq!(tokio::spawn(futurelock(m.clone(), n, true)).await.unwrap(), 1);
            assert_eq!(*m.lock().await, 1);
        })
        .unwrap();
        assert!(found(n).is_empty(), "{fl:?}: {:#?}", found(n));
    }
}

#[test]
fn a_task_polling_two_acquisitions_of_a_busy_lock_together_is_silent() {
    setup();
    {
        let fl = FL;
        let n = name("real.futurelock.join", fl);
        run(fl, move || async move {
            let m = Arc::new(Mutex::named(n, 0));
            // Held past the watch's grace: the task's second acquisition waits behind its
            // first one all that time, and both are polled (`join!`), so the first completes
            // when handed the lock, and the second after it.
            let (locked, is_locked) = tokio::sync::oneshot::channel::<()>();
            let holder = {
                let m = m.clone();
                tokio::spawn(async move {
                    let mut g = m.lock().await;
                    let _ = locked.send(());
                    tokio::time::sleep(OWNED_GRACE_PAST).await;
                    *g += 1;
                })
            };
            is_locked.await.unwrap(); // the holder has it (a 10 ms sleep did not make sure)
            let t = tokio::spawn({
                let m = m.clone();
                async move {
                    tokio::join!(async { *m.lock().await += 1 }, async {
                        *m.lock().await += 1
                    });
                }
            });
            t.await.unwrap();
            holder.await.unwrap();
            assert_eq!(*m.lock().await, 3);
        })
        .unwrap();
        assert!(found(n).is_empty(), "{fl:?}: {:#?}", found(n));
    }
}

/// Longer than the two seconds a wait kept by the waiter itself is watched before it is
/// reported, and two checks of the watch (half a second apart).
const OWNED_GRACE_PAST: Duration = Duration::from_millis(3200);

// ---------------------------------------------------------------------------------------------
// 10. "Upgrading" a tokio RwLock read guard by write-locking while it is still alive: a shadowed
//     read guard lives to the end of its block, so the task waits for its own read; two tasks
//     doing it at once wait for each other's read.
//     Sources: tokio-rs/tokio#2733 (its motivation: forgetting to drop a read guard before a
//     write, "particularly tricky and non-obvious when shadowing the name of the old read
//     guard"), tokio-rs/tokio#7282 (an `upgrade` deadlocks as soon as two tasks upgrade at
//     once). Look-alike: the read guard dropped (or a temporary) before the write.

async fn check_then_apply(state: &RwLock<Vec<u32>>, shadow: bool) -> usize {
    let st = state.read().await; // UPGRADE_READ_LINE
    let delta = st.len();
    if !shadow {
        drop(st);
    }
    tokio::task::yield_now().await;
    let mut st = state.write().await; // UPGRADE_WRITE_LINE
    st.push(delta as u32);
    st.len()
}

#[test]
fn write_locking_while_a_shadowed_read_guard_lives_is_a_self_deadlock() {
    setup();
    {
        let fl = FL;
        let n = name("real.upgrade", fl);
        run(fl, move || async move {
            let state = Arc::new(RwLock::named(n, vec![1]));
            let msg = panicked(tokio::spawn(async move {
                within(200, check_then_apply(&state, true)).await
            }))
            .await;
            assert!(msg.contains("self-deadlock"), "{fl:?}: {msg}");
        })
        .unwrap();
        let v = found(n);
        assert_eq!(kinds(n), [ViolationKind::SelfDeadlock], "{fl:?}: {v:#?}");
        let e = &v[0].edges[0];
        assert!(e.held_site.contains(&at(line_of("UPGRADE_READ_LINE"))), "{e:#?}");
        assert!(e.site.contains(&at(line_of("UPGRADE_WRITE_LINE"))), "{e:#?}");
    }
}

#[test]
fn two_tasks_upgrading_at_once_are_a_deadlock() {
    setup();
    {
        let fl = FL;
        let n = name("real.upgrade2", fl);
        run(fl, move || async move {
            let state = Arc::new(RwLock::named(n, vec![1]));
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let mut ts = Vec::new();
            for _ in 0..2 {
                let (s, b) = (state.clone(), barrier.clone());
                ts.push(tokio::spawn(async move {
                    // Each reads, then (both reads held) asks to write: the self-deadlock of
                    // each is reported first, at the write.
                    let st = s.read().await;
                    b.wait().await;
                    let w = within(300, s.write()).await.is_some();
                    drop(st);
                    w
                }));
            }
            for t in ts {
                let msg = panicked(t).await;
                assert!(msg.contains("self-deadlock"), "{fl:?}: {msg}");
            }
        })
        .unwrap();
        assert!(kinds(n).contains(&ViolationKind::SelfDeadlock), "{fl:?}: {:#?}", found(n));
    }
}

#[test]
fn a_read_guard_dropped_before_the_write_is_silent() {
    setup();
    {
        let fl = FL;
        let n = name("real.upgrade.ok", fl);
        run(fl, move || async move {
            let state = Arc::new(RwLock::named(n, vec![1]));
            let mut ts = Vec::new();
            for _ in 0..4 {
                let s = state.clone();
                ts.push(tokio::spawn(async move { check_then_apply(&s, false).await }));
            }
            for t in ts {
                t.await.unwrap();
            }
            // A temporary read guard ends with its statement.
            let len = state.read().await.len();
            state.write().await.push(len as u32);
        })
        .unwrap();
        assert!(found(n).is_empty(), "{fl:?}: {:#?}", found(n));
    }
}
