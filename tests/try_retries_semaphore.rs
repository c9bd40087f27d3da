//! The try rule (`lockcheck_core::trace::TRY_RETRIES`) for `lockcheck::Semaphore::try_acquire`:
//! a try failed 1000 times in a row, holding the same locks throughout, waits as `acquire`
//! does. A thread that holds every permit itself and spins never succeeds (a self-deadlock, as
//! a blocking `acquire` of it is, raised under `warn` too); a spin under a lock orders the lock
//! before the permit. 999 failures, then giving up: silent. Each run recorded, and `analyze` of
//! its trace agrees with the runtime.

mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::{Action, Mutex, Semaphore, ViolationKind};
use lockcheck_core::trace::TRY_RETRIES;
use std::sync::Arc;
use support::{found, watchdog};

/// Recording is process-wide: one scenario at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `body` recorded under `warn`: the runtime's reports of `kind` naming `class`, the
/// analyzer's finding kinds naming it (with `+retried` when an edge of it is a retried try),
/// and the body's panic message.
fn recorded(
    tag: &str,
    class: &str,
    kind: ViolationKind,
    body: impl FnOnce() + Send + 'static,
) -> (usize, Vec<String>, Option<String>) {
    lockcheck::set_action(Action::Warn);
    let trace = trace_file::tmp(&format!("{tag}.lct"));
    lockcheck::record::start(&trace).unwrap();
    let r = watchdog(30, body);
    lockcheck::record::stop().unwrap().expect("was recording");
    let runtime = found(class).iter().filter(|v| v.kind == kind).count();
    let offline = trace_file::findings_naming(&trace, class);
    (runtime, offline, r.err())
}

#[test]
fn a_thread_spinning_on_a_semaphore_whose_permits_it_holds_is_a_self_deadlock() {
    let _s = serial();
    for (fails, expected) in [(TRY_RETRIES - 1, 0), (TRY_RETRIES, 1)] {
        let class: &'static str = Box::leak(format!("tryr.sync.self.{fails}").into_boxed_str());
        let (runtime, offline, panic) =
            recorded(class, class, ViolationKind::SelfDeadlock, move || {
                let s = Semaphore::named(class, 1);
                let _p = s.acquire();
                for _ in 0..fails {
                    assert!(s.try_acquire().is_none());
                }
            });
        assert_eq!(runtime, expected, "{fails}");
        if expected == 1 {
            let msg = panic.expect("raised under warn too");
            assert!(msg.contains("self-deadlock"), "{msg}");
            assert!(
                offline.iter().any(|k| k == "self-deadlock+retried"),
                "offline too, a retried try: {offline:?}"
            );
            assert!(
                found(class)
                    .iter()
                    .any(|v| v.to_string().contains("a try retried 1000 times in a row")),
                "the report says the try was retried: {:#?}",
                found(class)
            );
        } else {
            assert_eq!(panic, None);
            assert!(offline.is_empty(), "{offline:?}");
        }
    }
}

/// Of a semaphore of two permits, one held: the other can come back.
#[test]
fn a_spin_on_a_semaphore_with_a_permit_left_to_others_is_no_self_deadlock() {
    let _s = serial();
    let class = "tryr.sync.two";
    let (runtime, offline, panic) = recorded(class, class, ViolationKind::SelfDeadlock, || {
        let s = Arc::new(Semaphore::named(class, 2));
        let s2 = s.clone();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            let _p = s2.acquire();
            tx.send(()).unwrap();
            let _ = done_rx.recv();
        });
        rx.recv().unwrap();
        let _p = s.acquire();
        for _ in 0..TRY_RETRIES {
            assert!(s.try_acquire().is_none());
        }
        done_tx.send(()).unwrap();
        other.join().unwrap();
    });
    assert_eq!(panic, None);
    assert_eq!(runtime, 0);
    assert!(
        !offline.iter().any(|k| k.contains("self-deadlock")),
        "{offline:?}"
    );
}

/// `permit -> a` in one thread; another, holding `a`, spins on `try_acquire` 1000 times while
/// a third has the permit: the inversion, on both sides.
#[test]
fn a_try_acquire_retried_under_a_lock_orders_the_lock_before_the_permit() {
    let _s = serial();
    let (an, sn) = ("tryr.sync.inv.a", "tryr.sync.inv.s");
    let (runtime, offline, panic) =
        recorded(sn, sn, ViolationKind::LockOrderInversion, move || {
            let a = Arc::new(Mutex::named(an, ()));
            let s = Arc::new(Semaphore::named(sn, 1));
            {
                let (a, s) = (a.clone(), s.clone());
                std::thread::spawn(move || {
                    let _p = s.acquire();
                    let _a = a.lock();
                })
                .join()
                .unwrap();
            }
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            let s2 = s.clone();
            let holder = std::thread::spawn(move || {
                let _p = s2.acquire();
                tx.send(()).unwrap();
                let _ = done_rx.recv();
            });
            rx.recv().unwrap();
            {
                let _a = a.lock();
                for _ in 0..TRY_RETRIES {
                    assert!(s.try_acquire().is_none());
                }
            }
            done_tx.send(()).unwrap();
            holder.join().unwrap();
        });
    assert_eq!(panic, None);
    assert_eq!(runtime, 1);
    assert!(
        offline
            .iter()
            .any(|k| k.contains("inversion") && k.ends_with("+retried")),
        "offline too, with the retried try: {offline:?}"
    );
    assert!(
        found(sn)
            .iter()
            .any(|v| v.to_string().contains("a try retried 1000 times in a row")),
        "the report says the try was retried: {:#?}",
        found(sn)
    );
}
