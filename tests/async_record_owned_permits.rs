//! A recorded deadlock through an owned guard whose holder waits for several permits at once
//! (its own process: recording and the action are process-wide): the trace's request of that
//! wait says how many permits it asks for, and so does the one written again under the owned
//! guard when the deadlock is reported.

#[path = "support/rt.rs"]
mod rt;
mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::tokio::{Mutex, Semaphore};
use lockcheck_core::trace::{Event, How};
use std::sync::Arc;
use trace_file::lock_of;
use trace_file::Scratch;

#[test]
fn an_owned_guards_holder_waiting_for_two_permits_asks_for_two_in_the_trace() {
    lockcheck::set_action(lockcheck::Action::Warn);
    let dir = Scratch::new("async-ownperm");
    let path = dir.join("owned-permits.json");
    lockcheck::record::start(&path).unwrap();
    rt::run(rt::Flavor::CurrentThread, || async {
        let m = Arc::new(Mutex::named("arec.ownperm.m", 0));
        let pool = Arc::new(Semaphore::named("arec.ownperm.pool", 2));
        let both = Arc::new(tokio::sync::Barrier::new(2));
        let (m1, p1, b1) = (m.clone(), pool.clone(), both.clone());
        // Holds the mutex through an owned guard and asks for both permits.
        let a = tokio::spawn(async move {
            let _g = m1.lock_owned().await;
            b1.wait().await;
            let _ = rt::within(1000, p1.acquire_many(2)).await;
        });
        // Holds one permit and waits for the mutex.
        let b = tokio::spawn(async move {
            let _p = pool.acquire().await.unwrap();
            both.wait().await;
            let _ = rt::within(1500, m.lock()).await;
        });
        a.await.unwrap();
        b.await.unwrap();
    })
    .unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    let deadlocks: Vec<_> = lockcheck::violations()
        .into_iter()
        .filter(|v| v.involves("arec.ownperm.m") && v.message.contains("deadlock"))
        .collect();
    assert!(!deadlocks.is_empty(), "{:#?}", lockcheck::violations());

    let events = trace_file::events(&written);
    let lock_of = |key: &str| lock_of(&events, key);
    let (m, pool) = (lock_of("arec.ownperm.m"), lock_of("arec.ownperm.pool"));
    // The owned guard's holder shown holding it (a `try`) when the deadlock was reported, and
    // its wait written again right after.
    let (at, holder) = events
        .iter()
        .enumerate()
        .find_map(|(i, e)| match e {
            Event::Acquire {
                t,
                l,
                how: How::Try,
                ..
            } if *l == m => Some((i, *t)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the owned guard is established: {events:#?}"));
    let asks = |e: &Event| match e {
        Event::Request { t, l, n, .. } if *t == holder && *l == pool => Some(*n),
        _ => None,
    };
    let first = events.iter().find_map(asks);
    let again = events[at..].iter().find_map(asks);
    assert_eq!(
        (first, again),
        (Some(2), Some(2)),
        "the wait and its establishment ask for 2: {events:#?}"
    );
    let report =
        lockcheck_analyze::analyze(std::slice::from_ref(&written), &Default::default()).unwrap();
    assert!(!report.violations.is_empty(), "{report:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}
