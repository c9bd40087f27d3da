//! A finding is reported once (a real repeat: the same lines with the same locks, or new
//! instances of their classes), but two findings at the same lines with locks of other classes
//! (a helper called with other locks) are two: neither hides the other from `violations()`.
//! Before, self-deadlocks, held-across-await reports, async wait cycles and lock-order
//! inversions were keyed by their sites only, and the second helper call's finding was missing.
//! Each kind: the helper called with one lock (or pair), again with the same, then with another.
// The scenario holds a sync guard across `.await` on purpose: that is what lockcheck reports.
#![allow(clippy::await_holding_lock)]

#[path = "support/rt.rs"]
mod rt;
mod support;

use lockcheck::{Action, Mutex, ViolationKind};
use rt::{run, Flavor};
use std::sync::Arc;
use support::{found, two_threads, watchdog};

fn kinds(class: &str) -> Vec<ViolationKind> {
    found(class).into_iter().map(|v| v.kind).collect()
}

/// Locks `m` twice on this thread: a self-deadlock, refused (`panic`) before it waits.
fn relock(m: &Mutex<u32>) {
    let _g = m.lock();
    let _again = m.lock();
}

/// Runs [`relock`] on a fresh mutex named `name` under the watchdog; the refusal is expected.
fn relock_named(name: &'static str) {
    let r = watchdog(20, move || relock(&Mutex::named(name, 0)));
    let msg = r.expect_err("the second lock is refused");
    assert!(msg.contains("self-deadlock"), "{msg}");
}

#[test]
fn a_helper_that_relocks_what_it_is_given_is_one_self_deadlock_per_class() {
    lockcheck::set_action(Action::Panic);
    relock_named("dedup.self.a");
    // A real repeat: the same lines, a new instance of the same class.
    relock_named("dedup.self.a");
    relock_named("dedup.self.b");
    assert_eq!(kinds("dedup.self.a"), [ViolationKind::SelfDeadlock]);
    assert_eq!(
        kinds("dedup.self.b"),
        [ViolationKind::SelfDeadlock],
        "hidden before"
    );
}

/// Takes `x` then `y`.
fn nested(x: &Mutex<u32>, y: &Mutex<u32>) {
    let _x = x.lock();
    *y.lock() += 1;
}

/// Two threads run [`nested`] on a fresh pair named `a`, `b` in opposite orders; the second's
/// closing acquisition is refused (`panic`) when the inversion is reported (a repeat is not: an
/// inversion is no certain hang, and it was reported already).
fn opposite(a: &'static str, b: &'static str, refused: bool) {
    watchdog(20, move || {
        let x = Arc::new(Mutex::named(a, 0));
        let y = Arc::new(Mutex::named(b, 0));
        let (x1, y1) = (x.clone(), y.clone());
        let (first, second) = two_threads(move || nested(&x1, &y1), move || nested(&y, &x));
        first.unwrap();
        assert_eq!(second.is_err(), refused, "{second:?}");
    })
    .unwrap();
}

#[test]
fn a_helper_called_with_two_pairs_in_opposite_orders_is_one_inversion_per_pair() {
    lockcheck::set_action(Action::Panic);
    opposite("dedup.inv.a", "dedup.inv.b", true);
    // A real repeat: the same lines, new instances of the same classes.
    opposite("dedup.inv.a", "dedup.inv.b", false);
    opposite("dedup.inv.c", "dedup.inv.d", true);
    assert_eq!(kinds("dedup.inv.a"), [ViolationKind::LockOrderInversion]);
    assert_eq!(
        kinds("dedup.inv.c"),
        [ViolationKind::LockOrderInversion],
        "hidden before"
    );
}

/// Locks the tokio mutex `m` twice in one task: a self-deadlock, refused before it waits.
async fn relock_async(m: &lockcheck::tokio::Mutex<u32>) {
    let _g = m.lock().await;
    let _again = m.lock().await;
}

fn relock_async_named(name: &'static str) {
    run(Flavor::CurrentThread, move || async move {
        let m = Arc::new(lockcheck::tokio::Mutex::named(name, 0));
        let r = tokio::spawn(async move { relock_async(&m).await }).await;
        assert!(r.is_err(), "the second lock is refused");
    })
    .unwrap();
}

#[test]
fn an_async_helper_that_relocks_what_it_is_given_is_one_self_deadlock_per_class() {
    lockcheck::set_action(Action::Panic);
    relock_async_named("dedup.aself.a");
    relock_async_named("dedup.aself.a");
    relock_async_named("dedup.aself.b");
    assert_eq!(kinds("dedup.aself.a"), [ViolationKind::SelfDeadlock]);
    assert_eq!(
        kinds("dedup.aself.b"),
        [ViolationKind::SelfDeadlock],
        "hidden before"
    );
}

/// One task keeps a guard of the sync mutex `m` across an `.await`; another task of the same
/// thread then locks `m` (it would block the thread on itself): refused.
async fn held_across(m: Arc<Mutex<u32>>) {
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
                *m2.lock() += 1;
            });
            assert!(holder.await.is_ok(), "the holder finishes");
            assert!(blocked.await.is_err(), "the second lock is refused");
        })
        .await;
}

fn held_across_named(name: &'static str) {
    run(Flavor::CurrentThread, move || async move {
        held_across(Arc::new(Mutex::named(name, 0))).await;
    })
    .unwrap();
}

#[test]
fn a_helper_holding_what_it_is_given_across_an_await_is_one_report_per_class() {
    lockcheck::set_action(Action::Panic);
    held_across_named("dedup.await.a");
    held_across_named("dedup.await.a");
    held_across_named("dedup.await.b");
    assert_eq!(kinds("dedup.await.a"), [ViolationKind::HeldAcrossAwait]);
    assert_eq!(
        kinds("dedup.await.b"),
        [ViolationKind::HeldAcrossAwait],
        "hidden before"
    );
}
