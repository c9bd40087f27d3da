//! Sync locks (`lockcheck::Mutex`) nested inside tokio tasks, recorded: `lockcheck analyze` on
//! the trace finds what the runtime finds, by task, not by the worker thread that ran it. One
//! task taking both orders in turn on two workers is silent on both sides; an inversion between
//! two tasks is found offline even when one of them was first checked before the recording
//! started, or when checking is off (only the trace sees it then).
//!
//! Its own process: recording, the action and `violations()` are process-wide, so the tests run
//! one at a time.
// A scenario holds a sync guard across `.await` on purpose: that is what lockcheck reports.
#![allow(clippy::await_holding_lock)]

#[path = "support/rt.rs"]
mod rt;
mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::{Action, Mutex};
use rt::Flavor;
use std::collections::HashSet;
use std::sync::Arc;
use std::thread::ThreadId;
use trace_file::findings_involving as offline;

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes `first` then `second`, with no `.await` while holding.
fn nested(first: &Mutex<u32>, second: &Mutex<u32>) {
    let mut x = first.lock();
    let mut y = second.lock();
    *x += 1;
    *y += 1;
}

/// A task alternates `a -> b` and `b -> a` with `.await`s between, on a two-worker runtime kept
/// busy, until it has run the first order on one worker and the second on the other. One
/// holder: the runtime is silent, and so is the analyzer (the worker threads' streams show the
/// nested acquisitions, which are the task's dependencies, not the threads').
#[test]
fn one_task_taking_both_orders_on_two_workers_is_silent_offline_too() {
    let _serial = serial();
    lockcheck::set_action(Action::Warn);
    let path = trace_file::tmp("one-task-two-workers.json");
    lockcheck::record::start(&path).unwrap();
    let migrated = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = migrated.clone();
    rt::run(Flavor::MultiThread, move || async move {
        let a = Arc::new(Mutex::named("arec.synctask.one.a", 0));
        let b = Arc::new(Mutex::named("arec.synctask.one.b", 0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Other tasks keep both workers busy, so that the task moves between them.
        let busy: Vec<_> = (0..4)
            .map(|_| {
                let stop = stop.clone();
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        tokio::spawn(async move {
            let mut ab: HashSet<ThreadId> = HashSet::new();
            let mut ba: HashSet<ThreadId> = HashSet::new();
            for _ in 0..20_000 {
                nested(&a, &b);
                ab.insert(std::thread::current().id());
                tokio::task::yield_now().await;
                nested(&b, &a);
                ba.insert(std::thread::current().id());
                tokio::task::yield_now().await;
                // Two threads in all: one ran an order the other did not.
                if ab.union(&ba).count() > 1 {
                    seen.store(true, std::sync::atomic::Ordering::Relaxed);
                    break;
                }
            }
        })
        .await
        .unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in busy {
            t.await.unwrap();
        }
    })
    .unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    assert!(
        migrated.load(std::sync::atomic::Ordering::Relaxed),
        "the task never ran on both workers: nothing was tested"
    );
    let runtime = support::found("arec.synctask.one.a");
    assert!(runtime.is_empty(), "runtime: {runtime:#?}");
    let found = offline(&written, "arec.synctask.one.a");
    assert!(found.is_empty(), "offline: {found:?}");
}

/// Task 1 takes `a -> b` before the recording starts (the runtime checks that dependency then,
/// and remembers it) and again after; task 2 then takes `b -> a` on the same worker: the runtime
/// reports the inversion between the tasks, and so must the analyzer, from the trace alone.
#[test]
fn an_inversion_first_checked_before_the_recording_started_is_found_offline() {
    let _serial = serial();
    lockcheck::set_action(Action::Warn);
    let path = trace_file::tmp("checked-before-start.json");
    let recording = path.to_path_buf();
    rt::run(Flavor::CurrentThread, move || async move {
        let a = Arc::new(Mutex::named("arec.synctask.late.a", 0));
        let b = Arc::new(Mutex::named("arec.synctask.late.b", 0));
        let (a1, b1) = (a.clone(), b.clone());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let first = tokio::spawn(async move {
            nested(&a1, &b1);
            let _ = done_tx.send(());
            let _ = go_rx.await;
            nested(&a1, &b1);
        });
        done_rx.await.unwrap();
        lockcheck::record::start(&recording).unwrap();
        go_tx.send(()).unwrap();
        first.await.unwrap();
        tokio::spawn(async move { nested(&b, &a) }).await.unwrap();
    })
    .unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    let runtime = support::inversions("arec.synctask.late.a");
    assert!(!runtime.is_empty(), "the runtime reports the inversion");
    let found = offline(&written, "arec.synctask.late.a");
    assert!(
        !found.is_empty(),
        "the runtime reported {} finding(s), the trace shows none",
        runtime.len()
    );
}

/// With checking off nothing is reported at run time; the trace still shows each task's nested
/// acquisitions as the task's, so the analyzer finds the inversion between two tasks that ran
/// on one worker thread.
#[test]
fn with_checking_off_an_inversion_between_tasks_on_one_worker_is_found_offline() {
    let _serial = serial();
    lockcheck::set_action(Action::Off);
    let path = trace_file::tmp("checking-off.json");
    lockcheck::record::start(&path).unwrap();
    let r = rt::run(Flavor::CurrentThread, || async {
        let a = Arc::new(Mutex::named("arec.synctask.off.a", 0));
        let b = Arc::new(Mutex::named("arec.synctask.off.b", 0));
        let (a1, b1) = (a.clone(), b.clone());
        tokio::spawn(async move { nested(&a1, &b1) }).await.unwrap();
        tokio::spawn(async move { nested(&b, &a) }).await.unwrap();
    });
    lockcheck::set_action(Action::Warn);
    r.unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    assert!(
        support::found("arec.synctask.off.a").is_empty(),
        "checking is off"
    );
    let found = offline(&written, "arec.synctask.off.a");
    assert!(
        !found.is_empty(),
        "the trace shows the inversion between the tasks"
    );
}

/// Task 1 takes the sync `s` while holding the tokio `x`, before the recording starts (the
/// runtime checks that dependency then, and remembers it) and again after; then a task holds
/// `s` across its `.await` of `x`: the runtime reports the inversion, and so must the analyzer.
#[test]
fn a_sync_lock_under_an_async_one_first_checked_before_the_recording_started_is_found_offline() {
    let _serial = serial();
    lockcheck::set_action(Action::Warn);
    let path = trace_file::tmp("async-then-sync-before-start.json");
    let recording = path.to_path_buf();
    rt::run(Flavor::CurrentThread, move || async move {
        let x = Arc::new(lockcheck::tokio::Mutex::named("arec.synctask.mixed.x", 0));
        let s = Arc::new(Mutex::named("arec.synctask.mixed.s", 0));
        let (x1, s1) = (x.clone(), s.clone());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let first = tokio::spawn(async move {
            {
                let _x = x1.lock().await;
                *s1.lock() += 1;
            }
            let _ = done_tx.send(());
            let _ = go_rx.await;
            let _x = x1.lock().await;
            *s1.lock() += 1;
        });
        done_rx.await.unwrap();
        lockcheck::record::start(&recording).unwrap();
        go_tx.send(()).unwrap();
        first.await.unwrap();
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async move {
                tokio::task::spawn_local(async move {
                    let _s = s.lock();
                    *x.lock().await += 1;
                })
                .await
                .unwrap();
            })
            .await;
    })
    .unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    let runtime = support::inversions("arec.synctask.mixed.s");
    assert!(!runtime.is_empty(), "the runtime reports the inversion");
    let found: Vec<_> = offline(&written, "arec.synctask.mixed.s")
        .into_iter()
        .filter(|(k, _)| k.contains("inversion"))
        .collect();
    assert!(
        !found.is_empty(),
        "the runtime reported {} inversion(s), the trace shows none",
        runtime.len()
    );
}
