//! `LOCKCHECK=warn` with the async tracker: a `blocking_*` acquisition of what the thread itself
//! holds is a certain hang, so it panics under `warn` too (as the sync locks' self-deadlocks
//! do), instead of reporting and then blocking forever. An awaited one goes on after the report:
//! its wait may be given up by a timeout that lockcheck cannot see (the look-alike below).
//! Every scenario runs under a watchdog.

mod support;

use lockcheck::tokio::{Mutex, RwLock, Semaphore};
use lockcheck::{Action, ViolationKind};
use std::time::Duration;
use support::watchdog;

fn setup() {
    lockcheck::set_action(Action::Warn);
}

fn self_deadlocks(class: &str) -> usize {
    lockcheck::violations()
        .iter()
        .filter(|v| v.kind == ViolationKind::SelfDeadlock && v.message.contains(class))
        .count()
}

/// Runs `body` (a blocking acquisition of what it holds, of a lock of `class`) under `warn` and
/// the watchdog: it panics as a certain hang, reported once as a self-deadlock.
fn panics_as_a_certain_hang(class: &str, body: impl FnOnce() + Send + 'static) {
    setup();
    let msg = watchdog(20, body).expect_err("the blocking wait on itself panics under warn");
    assert!(
        msg.contains("a certain hang panics under LOCKCHECK=warn too"),
        "{msg}"
    );
    assert_eq!(self_deadlocks(class), 1);
}

#[test]
fn blocking_lock_of_a_held_tokio_mutex_panics_under_warn() {
    panics_as_a_certain_hang("warn.blocking.m", || {
        let m = Mutex::named("warn.blocking.m", 0);
        let _g = m.blocking_lock();
        let _again = m.blocking_lock();
    });
}

#[test]
fn blocking_write_over_its_own_read_panics_under_warn() {
    panics_as_a_certain_hang("warn.blocking.rw", || {
        let l = RwLock::named("warn.blocking.rw", 0);
        let _r = l.blocking_read();
        let _w = l.blocking_write();
    });
}

#[test]
fn blocking_acquire_of_the_only_permit_it_holds_panics_under_warn() {
    panics_as_a_certain_hang("warn.blocking.sem", || {
        let s = Semaphore::named("warn.blocking.sem", 1);
        let _p = s.blocking_acquire().unwrap();
        let _q = s.blocking_acquire().unwrap();
    });
}

/// The look-alike: an awaited lock of a mutex the task holds, given up by a timeout. Reported
/// (the task would wait forever without the timeout), and under `warn` the task goes on.
#[test]
fn an_awaited_self_lock_given_up_by_a_timeout_goes_on_under_warn() {
    setup();
    watchdog(20, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let m = Mutex::named("warn.await.m", 0);
            let _g = m.lock().await;
            let again = tokio::time::timeout(Duration::from_millis(50), m.lock()).await;
            assert!(again.is_err(), "the second lock times out");
        });
    })
    .unwrap();
    assert_eq!(self_deadlocks("warn.await.m"), 1);
}
