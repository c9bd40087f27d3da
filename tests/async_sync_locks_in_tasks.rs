//! Sync locks (`lockcheck::Mutex`) nested inside tokio tasks, with no `.await` in between: the
//! dependency is the task's, not the worker thread's. Two tasks run by one worker taking two
//! locks in opposite orders are an inversion (on a multi-thread runtime they can run on two
//! workers at once and deadlock), reported on both runtime flavours; one task taking both
//! orders in turn is one holder, silent however its worker changes between them; two tasks in
//! the same order are silent.
//!
//! The action is `warn`, so that each scenario runs to its end.

#[path = "support/rt.rs"]
mod rt;
mod support;

use lockcheck::{Action, Mutex};
use rt::{name, run, Flavor};
use std::sync::Arc;
use support::{found, inversions};

const FLAVORS: [Flavor; 2] = [Flavor::CurrentThread, Flavor::MultiThread];

fn setup() {
    lockcheck::set_action(Action::Warn);
}

/// Takes `first` then `second`, with no `.await` while holding; at lines of the flavour's own
/// (a finding is reported once per pair of acquisition lines in a process).
fn nested(fl: Flavor, first: &Mutex<u32>, second: &Mutex<u32>) {
    let (mut x, mut y) = match fl {
        Flavor::CurrentThread => {
            let x = first.lock();
            (x, second.lock())
        }
        Flavor::MultiThread => {
            let x = first.lock();
            (x, second.lock())
        }
    };
    *x += 1;
    *y += 1;
}

#[test]
fn two_tasks_inverting_sync_locks_are_reported_even_on_one_worker() {
    setup();
    for fl in FLAVORS {
        let (na, nb) = (
            name("sync_in_tasks.inv.a", fl),
            name("sync_in_tasks.inv.b", fl),
        );
        run(fl, move || async move {
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            let (a1, b1) = (a.clone(), b.clone());
            tokio::spawn(async move { nested(fl, &a1, &b1) })
                .await
                .unwrap();
            tokio::spawn(async move { nested(fl, &b, &a) })
                .await
                .unwrap();
        })
        .unwrap();
        let found = inversions(na);
        assert!(
            !found.is_empty(),
            "{fl:?}: the inversion between tasks is missed"
        );
        let text = &found[0].message;
        assert!(text.contains("task"), "{fl:?}: named by task:\n{text}");
    }
}

#[test]
fn one_task_taking_both_orders_in_turn_is_silent() {
    setup();
    for fl in FLAVORS {
        let (na, nb) = (
            name("sync_in_tasks.one.a", fl),
            name("sync_in_tasks.one.b", fl),
        );
        run(fl, move || async move {
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            // Other tasks keep the workers busy, so that the task is likely run by both.
            let busy: Vec<_> = (0..4)
                .map(|_| {
                    tokio::spawn(async {
                        for _ in 0..200 {
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            tokio::spawn(async move {
                for _ in 0..100 {
                    nested(fl, &a, &b);
                    tokio::task::yield_now().await;
                    nested(fl, &b, &a);
                    tokio::task::yield_now().await;
                }
            })
            .await
            .unwrap();
            for t in busy {
                t.await.unwrap();
            }
        })
        .unwrap();
        assert!(found(na).is_empty(), "{fl:?}: {:#?}", found(na));
    }
}

#[test]
fn two_tasks_in_the_same_order_are_silent() {
    setup();
    for fl in FLAVORS {
        let (na, nb) = (
            name("sync_in_tasks.same.a", fl),
            name("sync_in_tasks.same.b", fl),
        );
        run(fl, move || async move {
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let (a, b) = (a.clone(), b.clone());
                    tokio::spawn(async move {
                        for _ in 0..20 {
                            nested(fl, &a, &b);
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
        .unwrap();
        assert!(found(na).is_empty(), "{fl:?}: {:#?}", found(na));
    }
}
