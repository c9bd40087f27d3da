//! The sync locks' hooks inside tokio tasks: what a `lockcheck::Mutex` acquisition finds through
//! the async tracker (an inversion with async holds, a wait that closes a mixed sync/async
//! deadlock) is raised at the user's line, as every other verdict, never from inside lockcheck;
//! and a look-alike (a sync guard held while `blocking_lock` waits in a `spawn_blocking` thread,
//! which suspends nothing) makes no report and no panic.
//!
//! Each scenario runs inside a spawned task on both runtime flavours, on a thread of its own
//! under a timeout. The tests share the process-wide panic hook and action: they run one at a
//! time.

use lockcheck::tokio::Mutex;
use std::future::Future;
use std::sync::{mpsc, Arc};
use std::time::Duration;

mod support;

/// One test at a time: the panic hook, the action and order checking are process-wide.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Where the last panic happened.
static SEEN: parking_lot::Mutex<Option<(String, u32)>> = parking_lot::Mutex::new(None);

fn hook() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(l) = info.location() {
            *SEEN.lock() = Some((l.file().to_owned(), l.line()));
        }
        default_hook(info);
    }));
}

/// Runs `f()` in a task spawned on a fresh runtime of the flavour (its own thread, 30 s timeout).
/// Returns the task's panic message, if it panicked, with the panic's location.
fn in_task<F, Fut>(multi: bool, f: F) -> Option<(String, (String, u32))>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    SEEN.lock().take();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = if multi {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_time()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
        }
        .unwrap();
        let r = rt.block_on(async move { tokio::spawn(f()).await });
        let _ = tx.send(r.err().map(|e| support::panic_message(&*e.into_panic())));
    });
    let message = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("must not hang");
    message.map(|m| (m, SEEN.lock().take().unwrap_or_default()))
}

#[test]
fn sync_lock_closing_an_inversion_with_async_holds_panics_at_the_users_line() {
    let _one = SERIAL.lock();
    hook();
    lockcheck::set_action(lockcheck::Action::Panic);
    lockcheck::set_order_checking(true);
    for multi in [false, true] {
        let (na, ns) = if multi {
            ("hooks.inv.a.mt", "hooks.inv.s.mt")
        } else {
            ("hooks.inv.a.ct", "hooks.inv.s.ct")
        };
        let a = Arc::new(Mutex::named(na, 0));
        let s = Arc::new(lockcheck::Mutex::named(ns, 0));
        // A thread: the sync lock, then the async one (order s -> a).
        {
            let (a, s) = (a.clone(), s.clone());
            std::thread::spawn(move || {
                let _s = s.lock();
                *a.blocking_lock() += 1;
            })
            .join()
            .unwrap();
        }
        // A task: the async lock, then the sync one: the inversion, found by the sync lock's
        // hook from the task's async holds. (A cycle is acted on once per pair of lines: one
        // copy per flavour.)
        const LINE_CT: u32 = line!() + 5;
        const LINE_MT: u32 = line!() + 9;
        let seen = if !multi {
            in_task(false, move || async move {
                let _a = a.lock().await;
                *s.lock() += 1;
            })
        } else {
            in_task(true, move || async move {
                let _a = a.lock().await;
                *s.lock() += 1;
            })
        };
        let line = if multi { LINE_MT } else { LINE_CT };
        let (message, at) = seen.expect("the task panics");
        assert!(message.contains("lock order inversion"), "{message}");
        assert_eq!(
            at,
            (file!().to_owned(), line),
            "at the user's line: {message}"
        );
        let v = support::found(na);
        assert_eq!(v.len(), 1, "{v:#?}");
        assert!(v[0].involves(ns));
    }
    let _ = std::panic::take_hook();
}

#[test]
fn sync_wait_closing_a_mixed_deadlock_panics_at_the_users_line() {
    let _one = SERIAL.lock();
    hook();
    lockcheck::set_action(lockcheck::Action::Panic);
    // The inversion would stop the task before it waits: the wait is what is tested.
    lockcheck::set_order_checking(false);
    for multi in [false, true] {
        let (nm, ns) = if multi {
            ("hooks.dl.m.mt", "hooks.dl.s.mt")
        } else {
            ("hooks.dl.m.ct", "hooks.dl.s.ct")
        };
        let m = Arc::new(Mutex::named(nm, 0));
        let s = Arc::new(lockcheck::Mutex::named(ns, 0));
        const LINE: u32 = line!() + 18;
        let seen = in_task(multi, move || async move {
            let _m = m.lock().await;
            let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
            let (m1, s1) = (m.clone(), s.clone());
            // A plain thread: the sync s, then the async m (waits for this task).
            let th = std::thread::spawn(move || {
                let _s = s1.lock();
                ready_tx.send(()).unwrap();
                *m1.blocking_lock() += 1;
            });
            ready.recv().unwrap();
            // Until the thread waits for m (registered in the wait-for graph). A 300 ms sleep
            // did not make sure of it on a loaded machine (the thread's wait would close the
            // cycle instead).
            support::wait_until("the thread waits for m", || support::blocked_on(nm) == 1);
            // The task waits for s, held by the thread that waits for m: the cycle closes here.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                *s.lock() += 1;
            }));
            drop(_m);
            th.join().unwrap();
            if let Err(p) = r {
                std::panic::resume_unwind(p);
            }
        });
        let (message, at) = seen.expect("the task panics");
        assert!(message.contains("deadlock"), "{message}");
        assert_eq!(
            at,
            (file!().to_owned(), LINE),
            "at the user's line: {message}"
        );
        // Reported in both flavours: the same lines, but other locks (other names).
        {
            assert!(support::found(nm)
                .iter()
                .any(|v| v.kind == lockcheck::ViolationKind::Deadlock && v.involves(ns)));
        }
    }
    lockcheck::set_order_checking(true);
    let _ = std::panic::take_hook();
}

#[test]
fn sync_guard_held_while_blocking_lock_waits_in_spawn_blocking_is_silent() {
    let _one = SERIAL.lock();
    hook();
    lockcheck::set_action(lockcheck::Action::Panic);
    lockcheck::set_order_checking(true);
    for multi in [false, true] {
        let (nm, ns) = if multi {
            ("hooks.sb.m.mt", "hooks.sb.s.mt")
        } else {
            ("hooks.sb.m.ct", "hooks.sb.s.ct")
        };
        let seen = in_task(multi, move || async move {
            let m = Arc::new(Mutex::named(nm, 0));
            let s = Arc::new(lockcheck::Mutex::named(ns, 0));
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let m1 = m.clone();
            let holder = tokio::spawn(async move {
                let _g = m1.lock().await;
                tx.send(()).unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
            rx.await.unwrap();
            // Blocking is what spawn_blocking is for: the sync guard is held while this thread
            // blocks, but no task is suspended with it and no other task runs on this thread.
            tokio::task::spawn_blocking(move || {
                let _s = s.lock();
                *m.blocking_lock() += 1;
            })
            .await
            .unwrap();
            holder.await.unwrap();
        });
        assert!(seen.is_none(), "no panic: {seen:?}");
        assert!(support::found(nm).is_empty(), "{:#?}", support::found(nm));
        assert!(support::found(ns).is_empty(), "{:#?}", support::found(ns));
    }
    let _ = std::panic::take_hook();
}
