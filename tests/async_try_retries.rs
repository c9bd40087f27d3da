//! The try rule (`lockcheck_core::trace::TRY_RETRIES`) for `lockcheck::tokio`: a task's
//! `try_lock` (or a semaphore's `try_acquire`) that fails 1000 times in a row, holding the same
//! locks throughout, is a retry loop that waits for the lock as `lock().await` does: checked as
//! one (a lock the task holds itself: a self-deadlock, raised under `warn` too; otherwise the
//! held locks ordered before it). 999 failures wait for nothing: silent. Both runtime flavours,
//! each run recorded, and `analyze` of its trace must agree with the runtime.

#[path = "support/rt.rs"]
mod rt;
mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::tokio::{Mutex, Semaphore};
use lockcheck::{Action, ViolationKind};
use lockcheck_core::trace::TRY_RETRIES;
use rt::{name, run, Flavor};
use std::sync::Arc;
use support::found;

const FLAVORS: [Flavor; 2] = [Flavor::CurrentThread, Flavor::MultiThread];

/// Recording is process-wide: one scenario at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `body` recorded on flavour `fl` under `warn`; returns the runtime's reports of kind
/// `kind` naming `class`, the analyzer's findings naming it (kind names, `+retried` when an edge
/// is a retried try), and the scenario's panic message, if any.
fn recorded<F, Fut>(
    tag: &str,
    fl: Flavor,
    class: &str,
    kind: ViolationKind,
    body: F,
) -> (usize, Vec<String>, Option<String>)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    lockcheck::set_action(Action::Warn);
    let ext = if fl == Flavor::CurrentThread {
        "json"
    } else {
        "lct"
    };
    let trace = trace_file::tmp(&format!("{tag}.{fl:?}.{ext}"));
    lockcheck::record::start(&trace).unwrap();
    let r = run(fl, body);
    lockcheck::record::stop().unwrap().expect("was recording");
    let runtime = found(class).iter().filter(|v| v.kind == kind).count();
    let offline = trace_file::findings_naming(&trace, class);
    (runtime, offline, r.err())
}

/// `b -> a` in one task; then a task holds `b` while another, holding `a`, fails `fails` tries
/// of `b` (yielding between them), and gives up.
async fn spin_on_mutex(a: &'static str, b: &'static str, fails: u32) {
    let a = Arc::new(Mutex::named(a, ()));
    let b = Arc::new(Mutex::named(b, ()));
    let (a1, b1) = (a.clone(), b.clone());
    tokio::spawn(async move {
        let _b = b1.lock().await;
        let _a = a1.lock().await;
    })
    .await
    .unwrap();
    let (has_tx, has_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let b2 = b.clone();
    let holder = tokio::spawn(async move {
        let _b = b2.lock().await;
        has_tx.send(()).unwrap();
        let _ = done_rx.await;
    });
    let spinner = tokio::spawn(async move {
        has_rx.await.unwrap();
        let _a = a.lock().await;
        for _ in 0..fails {
            assert!(b.try_lock().is_err());
            tokio::task::yield_now().await;
        }
        done_tx.send(()).unwrap();
    });
    spinner.await.unwrap();
    holder.await.unwrap();
}

/// As [`spin_on_mutex`], on a semaphore of one permit: `permit -> a`, then a spin of
/// `try_acquire` holding `a` while another task has the permit.
async fn spin_on_semaphore(a: &'static str, s: &'static str, fails: u32) {
    let a = Arc::new(Mutex::named(a, ()));
    let s = Arc::new(Semaphore::named(s, 1));
    let (a1, s1) = (a.clone(), s.clone());
    tokio::spawn(async move {
        let _p = s1.acquire().await.unwrap();
        let _a = a1.lock().await;
    })
    .await
    .unwrap();
    let (has_tx, has_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let s2 = s.clone();
    let holder = tokio::spawn(async move {
        let _p = s2.acquire().await.unwrap();
        has_tx.send(()).unwrap();
        let _ = done_rx.await;
    });
    let spinner = tokio::spawn(async move {
        has_rx.await.unwrap();
        let _a = a.lock().await;
        for _ in 0..fails {
            assert!(s.try_acquire().is_err());
            tokio::task::yield_now().await;
        }
        done_tx.send(()).unwrap();
    });
    spinner.await.unwrap();
    holder.await.unwrap();
}

#[test]
fn a_try_lock_retried_1000_times_under_a_lock_orders_it_before_the_lock() {
    let _s = serial();
    for fl in FLAVORS {
        let (a, b) = (name("tryr.mutex.a", fl), name("tryr.mutex.b", fl));
        let (runtime, offline, panic) = recorded(
            "tryr.mutex",
            fl,
            b,
            ViolationKind::LockOrderInversion,
            move || spin_on_mutex(a, b, TRY_RETRIES),
        );
        assert_eq!(panic, None, "{fl:?}: warn goes on");
        assert_eq!(runtime, 1, "{fl:?}: the runtime reports the inversion");
        assert!(
            offline
                .iter()
                .any(|k| k.contains("inversion") && k.ends_with("+retried")),
            "{fl:?}: offline too, with the retried try: {offline:?}"
        );
        let v = found(b);
        assert!(
            v.iter()
                .any(|v| v.to_string().contains("a try retried 1000 times in a row")),
            "{fl:?}: the report says the try was retried: {v:#?}"
        );
    }
}

#[test]
fn a_try_lock_given_up_after_999_failures_is_silent() {
    let _s = serial();
    for fl in FLAVORS {
        let (a, b) = (name("tryr.short.a", fl), name("tryr.short.b", fl));
        let (runtime, offline, panic) = recorded(
            "tryr.short",
            fl,
            b,
            ViolationKind::LockOrderInversion,
            move || spin_on_mutex(a, b, TRY_RETRIES - 1),
        );
        assert_eq!(panic, None);
        assert_eq!(runtime, 0, "{fl:?}");
        assert!(offline.is_empty(), "{fl:?}: {offline:?}");
    }
}

#[test]
fn a_semaphore_try_acquire_retried_1000_times_under_a_lock_orders_it_before_the_permit() {
    let _s = serial();
    for fl in FLAVORS {
        let (a, s) = (name("tryr.sem.a", fl), name("tryr.sem.s", fl));
        let (runtime, offline, panic) = recorded(
            "tryr.sem",
            fl,
            s,
            ViolationKind::LockOrderInversion,
            move || spin_on_semaphore(a, s, TRY_RETRIES),
        );
        assert_eq!(panic, None, "{fl:?}");
        assert_eq!(runtime, 1, "{fl:?}: the runtime reports the inversion");
        assert!(
            offline.iter().any(|k| k.contains("inversion")),
            "{fl:?}: offline too: {offline:?}"
        );
    }
}

#[test]
fn a_semaphore_try_acquire_given_up_after_999_failures_is_silent() {
    let _s = serial();
    for fl in FLAVORS {
        let (a, s) = (name("tryr.semshort.a", fl), name("tryr.semshort.s", fl));
        let (runtime, offline, panic) = recorded(
            "tryr.semshort",
            fl,
            s,
            ViolationKind::LockOrderInversion,
            move || spin_on_semaphore(a, s, TRY_RETRIES - 1),
        );
        assert_eq!(panic, None);
        assert_eq!(runtime, 0, "{fl:?}");
        assert!(offline.is_empty(), "{fl:?}: {offline:?}");
    }
}

/// A task that holds a mutex and spins on `try_lock` of it never succeeds: a self-deadlock at
/// the 1000th failure, raised under `warn` too. 999 failures, then giving up: silent.
#[test]
fn a_task_spinning_on_a_mutex_it_holds_is_a_self_deadlock() {
    let _s = serial();
    for fl in FLAVORS {
        for (fails, expected) in [(TRY_RETRIES - 1, 0), (TRY_RETRIES, 1)] {
            let m = name(&format!("tryr.self.{fails}"), fl);
            let (runtime, offline, panic) = recorded(
                "tryr.self",
                fl,
                m,
                ViolationKind::SelfDeadlock,
                move || async move {
                    let m = Arc::new(Mutex::named(m, ()));
                    let task = tokio::spawn(async move {
                        let _g = m.lock().await;
                        for _ in 0..fails {
                            assert!(m.try_lock().is_err());
                            tokio::task::yield_now().await;
                        }
                    });
                    if let Err(e) = task.await {
                        std::panic::resume_unwind(e.into_panic());
                    }
                },
            );
            assert_eq!(runtime, expected, "{fl:?} {fails}");
            if expected == 1 {
                let msg = panic.expect("raised under warn too");
                assert!(msg.contains("self-deadlock"), "{msg}");
                assert!(
                    offline.iter().any(|k| k == "self-deadlock+retried"),
                    "{fl:?}: offline too: {offline:?}"
                );
            } else {
                assert_eq!(panic, None);
                assert!(offline.is_empty(), "{fl:?}: {offline:?}");
            }
        }
    }
}

/// A task that holds the only permit of a semaphore and spins on `try_acquire`: a self-deadlock
/// at the 1000th failure (raised under `warn` too), on both sides; 999: silent.
#[test]
fn a_task_spinning_on_a_semaphore_whose_permit_it_holds_is_a_self_deadlock() {
    let _s = serial();
    for fl in FLAVORS {
        for (fails, expected) in [(TRY_RETRIES - 1, 0), (TRY_RETRIES, 1)] {
            let sn = name(&format!("tryr.semself.{fails}"), fl);
            let (runtime, offline, panic) = recorded(
                "tryr.semself",
                fl,
                sn,
                ViolationKind::SelfDeadlock,
                move || async move {
                    let s = Arc::new(Semaphore::named(sn, 1));
                    let task = tokio::spawn(async move {
                        let _p = s.acquire().await.unwrap();
                        for _ in 0..fails {
                            assert!(s.try_acquire().is_err());
                            tokio::task::yield_now().await;
                        }
                    });
                    if let Err(e) = task.await {
                        std::panic::resume_unwind(e.into_panic());
                    }
                },
            );
            assert_eq!(runtime, expected, "{fl:?} {fails}");
            if expected == 1 {
                let msg = panic.expect("raised under warn too");
                assert!(msg.contains("self-deadlock"), "{msg}");
                assert!(
                    offline.iter().any(|k| k == "self-deadlock+retried"),
                    "{fl:?}: offline too: {offline:?}"
                );
            } else {
                assert_eq!(panic, None);
                assert!(offline.is_empty(), "{fl:?}: {offline:?}");
            }
        }
    }
}
