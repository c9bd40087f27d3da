//! The permits gate rule for tokio semaphores (feature `tokio`), as round 4 fixed it for the sync
//! `Semaphore` (`tests/real_bugs_round4.rs`, section 5): a permit of a semaphore of several
//! permits is no gate (two tasks can each hold one at once), so two tasks each holding one and
//! locking two async mutexes in opposite orders are an inversion; a semaphore of one permit
//! serializes them (a gate) and stays silent. Both runtime flavours, each scenario under
//! `rt::run`'s timeout and watchdog; the action is `panic`, so the reported acquisition is
//! refused before it waits. Each run is recorded (JSON Lines on the current-thread runtime,
//! `.lct` on the multi-thread one) and `analyze` of its trace must agree with the runtime.

#[path = "support/rt.rs"]
mod rt;
mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::tokio::{Mutex, Semaphore};
use lockcheck::{Action, ViolationKind};
use rt::{name, run, Flavor};
use std::sync::Arc;
use support::found;

const FLAVORS: [Flavor; 2] = [Flavor::CurrentThread, Flavor::MultiThread];

/// Recording is process-wide: one scenario at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether `analyze` of `trace` finds an inversion involving `class`.
fn offline_inversion(trace: &std::path::Path, class: &str) -> bool {
    trace_file::findings_involving(trace, class)
        .iter()
        .any(|(k, _)| k.contains("inversion"))
}

/// Two jobs under a semaphore of `permits`: the first holds a permit and locks `index` then
/// `cache`; the second, spawned after it, holds a permit and locks `cache` then `index`.
/// Returns the name of `index`, whether the second job was stopped by a report, and the trace.
fn limiter(
    base: &str,
    fl: Flavor,
    permits: usize,
) -> (&'static str, bool, trace_file::ScratchFile) {
    lockcheck::set_action(Action::Panic);
    let ext = if fl == Flavor::CurrentThread {
        "json"
    } else {
        "lct"
    };
    let trace = trace_file::tmp(&format!("{base}.{fl:?}.{ext}"));
    lockcheck::record::start(&trace).unwrap();
    let (s, a, b) = (
        name(&format!("{base}.jobs"), fl),
        name(&format!("{base}.index"), fl),
        name(&format!("{base}.cache"), fl),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    run(fl, move || async move {
        let jobs = Arc::new(Semaphore::named(s, permits));
        let index = Arc::new(Mutex::named(a, 0u32));
        let cache = Arc::new(Mutex::named(b, 0u32));
        let (j1, i1, c1) = (jobs.clone(), index.clone(), cache.clone());
        tokio::spawn(async move {
            let _p = j1.acquire().await.unwrap();
            let _i = i1.lock().await;
            *c1.lock().await += 1;
        })
        .await
        .unwrap();
        let second = tokio::spawn(async move {
            let _p = jobs.acquire().await.unwrap();
            let _c = cache.lock().await;
            *index.lock().await += 1;
        })
        .await;
        tx.send(second.is_err()).unwrap();
    })
    .unwrap();
    lockcheck::record::stop().unwrap().expect("was recording");
    (a, rx.recv().unwrap(), trace)
}

#[test]
fn two_tasks_under_a_tokio_semaphore_of_several_permits_locking_in_opposite_orders_are_an_inversion(
) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for fl in FLAVORS {
        let (index, refused, trace) = limiter("async.limit", fl, 4);
        let v = found(index);
        assert!(
            v.iter()
                .any(|v| v.kind == ViolationKind::LockOrderInversion),
            "{fl:?}: {v:#?}"
        );
        assert!(refused, "{fl:?}: the closing acquisition must be refused");
        assert!(offline_inversion(&trace, index), "{fl:?}: offline too");
    }
}

#[test]
fn two_tasks_under_a_tokio_semaphore_of_one_permit_are_serialized_and_silent() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for fl in FLAVORS {
        let (index, refused, trace) = limiter("async.limit.one", fl, 1);
        assert!(found(index).is_empty(), "{fl:?}: {:#?}", found(index));
        assert!(!refused, "{fl:?}: nothing refused");
        assert!(
            !offline_inversion(&trace, index),
            "{fl:?}: offline silent too"
        );
    }
}
