//! A recorded run where an owned guard stays with the task that took it, which takes other locks
//! under it and still holds them when it drops the guard: the runtime then adds the dependencies
//! on the guard (confirmed), and the trace shows them, with no finding the runtime does not make
//! (its own process: recording and the action are process-wide).

#[path = "support/rt.rs"]
mod rt;
mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::tokio::{Mutex, Semaphore};
use std::sync::Arc;

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What `lockcheck analyze` reports on `trace` that involves `class` (every kind: inversions,
/// self-deadlocks, wait cycles), as JSON.
fn offline(trace: &std::path::Path, class: &str) -> Vec<serde_json::Value> {
    let report = lockcheck_analyze::analyze(&[trace.to_path_buf()], &Default::default()).unwrap();
    report
        .violations
        .iter()
        .filter(|v| v.locks.iter().any(|l| l.class == class))
        .map(|v| serde_json::to_value(v).unwrap())
        .collect()
}

/// Under an owned guard the task takes a mutex, or every permit of a semaphore (with
/// `acquire_many`), and drops the guard while it still holds them: no self-deadlock, no finding,
/// at run time or offline.
#[test]
fn locks_still_held_when_an_owned_guard_is_confirmed_make_no_finding_offline() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    lockcheck::set_action(lockcheck::Action::Warn);
    let path = trace_file::tmp("confirmed-held.json");
    lockcheck::record::start(&path).unwrap();
    rt::run(rt::Flavor::MultiThread, || async {
        let g = Arc::new(Mutex::named("arec.confirm.guard", 0));
        let m = Arc::new(Mutex::named("arec.confirm.m", 0));
        let pool = Arc::new(Semaphore::named("arec.confirm.pool", 2));
        tokio::spawn(async move {
            let owned = g.clone().lock_owned().await;
            let held = m.lock().await;
            let permits = pool.acquire_many(2).await.unwrap();
            drop(owned);
            drop(permits);
            drop(held);
        })
        .await
        .unwrap();
    })
    .unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    let runtime = support::found("arec.confirm.guard");
    assert!(runtime.is_empty(), "runtime: {runtime:#?}");
    for class in ["arec.confirm.m", "arec.confirm.pool"] {
        let found = offline(&written, class);
        assert!(found.is_empty(), "offline on {class}: {found:#?}");
    }
}

/// Under an owned guard the task takes `m`, then `p` (so `m -> p`); it drops the guard holding
/// both. Another task then takes `m` then `p` too (no inversion), and a third `m` then the
/// guard's lock (an inversion with the confirmed `guard -> m`). The runtime reports the second
/// only; so must the analyzer: the confirmed dependencies are shown with the locks held at each
/// acquisition (`guard -> m`, `{guard, m} -> p`), not with those held at the drop (which would
/// make a `p -> m` that never was).
#[test]
fn confirmed_dependencies_are_shown_with_their_own_held_sets() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    lockcheck::set_action(lockcheck::Action::Warn);
    let path = trace_file::tmp("confirmed-held-sets.json");
    lockcheck::record::start(&path).unwrap();
    rt::run(rt::Flavor::MultiThread, || async {
        let g = Arc::new(Mutex::named("arec.confirm2.guard", 0));
        let m = Arc::new(Mutex::named("arec.confirm2.m", 0));
        let p = Arc::new(Mutex::named("arec.confirm2.p", 0));
        let (g1, m1, p1) = (g.clone(), m.clone(), p.clone());
        tokio::spawn(async move {
            let owned = g1.lock_owned().await;
            let held_m = m1.lock().await;
            let held_p = p1.lock().await;
            drop(owned);
            drop(held_p);
            drop(held_m);
        })
        .await
        .unwrap();
        let (m2, p2) = (m.clone(), p.clone());
        tokio::spawn(async move {
            let _m = m2.lock().await;
            let _p = p2.lock().await;
        })
        .await
        .unwrap();
        tokio::spawn(async move {
            let _m = m.lock().await;
            let _g = rt::within(1000, g.lock()).await;
        })
        .await
        .unwrap();
    })
    .unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    let runtime = support::inversions("arec.confirm2.guard");
    assert!(!runtime.is_empty(), "the runtime reports guard/m");
    assert!(
        support::found("arec.confirm2.p").is_empty(),
        "{:#?}",
        support::found("arec.confirm2.p")
    );
    let guard = offline(&written, "arec.confirm2.guard");
    assert!(!guard.is_empty(), "guard/m is found offline");
    let p = offline(&written, "arec.confirm2.p");
    assert!(p.is_empty(), "offline on p: {p:#?}");
}
