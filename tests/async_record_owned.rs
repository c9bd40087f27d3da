//! A recorded run where an owned guard moves to another task and is released there (its own
//! process: recording and the action are process-wide).

#[path = "support/rt.rs"]
mod rt;
mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::tokio::Mutex;
use lockcheck_core::trace::Event;
use std::sync::Arc;
use trace_file::lock_of;
use trace_file::Scratch;

/// An owned guard moved to another task and dropped there: the trace says who released it (a
/// zero-length hold in the releasing task's stream), never shows it held by the task that took
/// it past its acquisition (the guard may have moved), and stays balanced for the analyzer.
#[test]
fn an_owned_guard_released_in_another_task_is_released_there_in_the_trace() {
    lockcheck::set_action(lockcheck::Action::Warn);
    let dir = Scratch::new("async-own");
    let path = dir.join("owned.json");
    let taker = Arc::new(std::sync::Mutex::new(None::<String>));
    let releaser = Arc::new(std::sync::Mutex::new(None::<String>));
    let (t2, r2) = (taker.clone(), releaser.clone());
    lockcheck::record::start(&path).unwrap();
    rt::run(rt::Flavor::MultiThread, move || async move {
        let m = Arc::new(Mutex::named("arec.owned", 0));
        let b = Arc::new(Mutex::named("arec.owned.b", 0));
        let (m1, b1) = (m.clone(), b.clone());
        lockcheck::tokio::spawn(async move {
            *t2.lock().unwrap() = Some(format!("task #{}", tokio::task::id()));
            let g = m1.lock_owned().await;
            let _b = b1.lock().await; // under the owned guard: not ordered (it may have moved)
            lockcheck::tokio::spawn(async move {
                *r2.lock().unwrap() = Some(format!("task #{}", tokio::task::id()));
                tokio::task::yield_now().await;
                drop(g);
            })
            .await
            .unwrap();
        })
        .await
        .unwrap();
        // The reverse order, elsewhere: no inversion, the guard had left.
        let _b = b.lock().await;
        let _m = m.lock().await;
    })
    .unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    let events = trace_file::events(&written);
    let stream = |name: &str| -> u64 {
        events
            .iter()
            .find_map(|e| match e {
                Event::Thread { t, name: Some(n) } if n.starts_with(name) => Some(*t),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no stream {name}: {events:#?}"))
    };
    let lock_of = |key: &str| lock_of(&events, key);
    let (taker, releaser) = (
        taker.lock().unwrap().clone().unwrap(),
        releaser.lock().unwrap().clone().unwrap(),
    );
    let (tk, rl, m) = (stream(&taker), stream(&releaser), lock_of("arec.owned"));
    let on = |t: u64| -> Vec<&Event> {
        events
            .iter()
            .filter(|e| match e {
                Event::Acquire { t: et, l, .. } | Event::Release { t: et, l, .. } => {
                    *et == t && *l == m
                }
                _ => false,
            })
            .collect()
    };
    // The taker: its acquisition, released right away (not shown held while it may have moved).
    let taken = on(tk);
    assert!(
        matches!(
            taken.as_slice(),
            [Event::Acquire { .. }, Event::Release { .. }]
        ),
        "{taken:#?}"
    );
    // The releaser: a `try` acquisition (no dependency) and its release: who released it.
    let released = on(rl);
    assert!(
        matches!(
            released.as_slice(),
            [
                Event::Acquire {
                    how: lockcheck_core::trace::How::Try,
                    ..
                },
                Event::Release { .. }
            ]
        ),
        "{released:#?}"
    );
    let report =
        lockcheck_analyze::analyze(std::slice::from_ref(&written), &Default::default()).unwrap();
    assert!(report.violations.is_empty(), "{report:#?}");
    assert!(
        lockcheck::violations().is_empty(),
        "{:#?}",
        lockcheck::violations()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
