//! A violation found on a `lockcheck::tokio` lock panics at the user's line: the checks that need
//! no wait (self-deadlock, recursive read, lock order, a semaphore whose missing permits the task
//! holds) run in the `#[track_caller]` method that returns the future, so the panic hook sees the
//! location of `lock()`, `read()`, `write()`, `acquire()`, ... in this file, on both runtime
//! flavours and in the `blocking_*` methods.
//!
//! One test function: the panic hook is process-wide.
// Some scenarios hold sync guards across `.await` on purpose: that is what lockcheck reports.
#![allow(clippy::await_holding_lock)]

use lockcheck::tokio::{Mutex, RwLock, Semaphore};
use std::future::Future;
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// The location and message of the last panic (one test function, so one writer at a time).
static SEEN: parking_lot::Mutex<Option<(String, u32)>> = parking_lot::Mutex::new(None);

#[derive(Debug)]
struct Seen {
    file: String,
    line: u32,
    message: String,
}

/// Runs `f` on a fresh runtime of the given flavour (on its own thread, under a timeout); it must
/// panic inside a spawned task. Returns where that panic happened.
fn panic_in_task<F, Fut>(multi: bool, f: F) -> Seen
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
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread().build()
        }
        .unwrap();
        let r = rt.block_on(async move { tokio::spawn(f()).await });
        let message = match r {
            Ok(()) => String::new(),
            Err(e) => {
                let p = e.into_panic();
                p.downcast_ref::<String>().cloned().unwrap_or_default()
            }
        };
        let _ = tx.send(message);
    });
    let message = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("must not hang");
    assert!(!message.is_empty(), "the task must panic");
    let (file, line) = SEEN.lock().take().expect("the panic hook ran");
    Seen {
        file,
        line,
        message,
    }
}

/// Runs `f` on a plain thread (no runtime: the `blocking_*` methods); it must panic.
fn panic_on_thread(f: impl FnOnce() + Send + 'static) -> Seen {
    SEEN.lock().take();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let message = r
            .err()
            .and_then(|p| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let _ = tx.send(message);
    });
    let message = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("must not hang");
    assert!(!message.is_empty(), "the thread must panic");
    let (file, line) = SEEN.lock().take().expect("the panic hook ran");
    Seen {
        file,
        line,
        message,
    }
}

/// Runs `f` as the root future of a current-thread runtime (on its own thread, under a timeout):
/// for scenarios whose future is not `Send` (a sync guard across an `.await`); it must panic.
fn panic_in_block_on<F, Fut>(f: F) -> Seen
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    panic_on_thread(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(f());
    })
}

#[track_caller]
fn assert_at(seen: &Seen, line: u32, kind: &str) {
    assert_eq!(
        (seen.file.as_str(), seen.line),
        (file!(), line),
        "the panic must point at the test's acquisition line: {seen:?}"
    );
    assert!(seen.message.contains(kind), "{seen:?}");
}

#[test]
fn async_violations_panic_at_the_users_line() {
    lockcheck::set_action(lockcheck::Action::Panic);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(l) = info.location() {
            *SEEN.lock() = Some((l.file().to_owned(), l.line()));
        }
        if std::env::var_os("SHOW_PANICS").is_some() {
            default_hook(info);
        }
    }));

    for multi in [false, true] {
        // A task locking a Mutex it holds.
        const MUTEX_LINE: u32 = line!() + 4;
        let seen = panic_in_task(multi, || async {
            let m = Mutex::new(0);
            let _g = m.lock().await;
            let _h = m.lock().await;
        });
        assert_at(&seen, MUTEX_LINE, "self-deadlock");

        // A `blocking_*` method inside a task: tokio's refusal to block a runtime thread, with
        // tokio's message, at the user's line (as `tokio::sync::Mutex::blocking_lock`'s).
        const BLOCKING_IN_TASK_LINE: u32 = line!() + 3;
        let seen = panic_in_task(multi, || async {
            let m = Mutex::new(0);
            let _g = m.blocking_lock();
        });
        assert_at(
            &seen,
            BLOCKING_IN_TASK_LINE,
            "Cannot block the current thread from within a runtime",
        );

        // `lock_owned` of a Mutex the task holds through a plain guard.
        const OWNED_LINE: u32 = line!() + 4;
        let seen = panic_in_task(multi, || async {
            let m = Arc::new(Mutex::new(0));
            let _g = m.lock().await;
            let _h = m.clone().lock_owned().await;
        });
        assert_at(&seen, OWNED_LINE, "self-deadlock");

        // A second read of a (fair) RwLock in the same task.
        const READ_LINE: u32 = line!() + 4;
        let seen = panic_in_task(multi, || async {
            let rw = RwLock::new(0);
            let _r = rw.read().await;
            let _s = rw.read().await;
        });
        assert_at(&seen, READ_LINE, "read");

        // A write while the task reads.
        const WRITE_LINE: u32 = line!() + 4;
        let seen = panic_in_task(multi, || async {
            let rw = RwLock::new(0);
            let _r = rw.read().await;
            let _w = rw.write().await;
        });
        assert_at(&seen, WRITE_LINE, "self-deadlock");

        // A semaphore whose only permit the task holds.
        const SEM_LINE: u32 = line!() + 4;
        let seen = panic_in_task(multi, || async {
            let s = Semaphore::new(1);
            let _p = s.acquire().await.unwrap();
            let _q = s.acquire().await.unwrap();
        });
        assert_at(&seen, SEM_LINE, "self-deadlock");
    }

    // An inversion between two tasks (the second, run after the first, panics). One copy per
    // flavour: a cycle is reported (and acted on) once per pair of acquisition lines.
    const ORDER_CT_LINE: u32 = line!() + 14;
    let seen = panic_in_task(false, || async {
        let a = Arc::new(Mutex::new(0));
        let b = Arc::new(Mutex::new(0));
        let (a2, b2) = (a.clone(), b.clone());
        tokio::spawn(async move {
            let _a = a2.lock().await;
            let _b = b2.lock().await;
        })
        .await
        .unwrap();
        // The first task ended: nothing can block here, the order is what is reported.
        let _b = b.lock().await;
        {
            let _a = a.lock().await;
        }
    });
    assert_at(&seen, ORDER_CT_LINE, "lock order inversion");

    const ORDER_MT_LINE: u32 = line!() + 13;
    let seen = panic_in_task(true, || async {
        let a = Arc::new(Mutex::new(0));
        let b = Arc::new(Mutex::new(0));
        let (a2, b2) = (a.clone(), b.clone());
        tokio::spawn(async move {
            let _a = a2.lock().await;
            let _b = b2.lock().await;
        })
        .await
        .unwrap();
        let _b = b.lock().await;
        {
            let _a = a.lock().await;
        }
    });
    assert_at(&seen, ORDER_MT_LINE, "lock order inversion");

    // The blocking methods, outside any runtime.
    const BLOCKING_LINE: u32 = line!() + 4;
    let seen = panic_on_thread(|| {
        let m = Mutex::new(0);
        let _g = m.blocking_lock();
        let _h = m.blocking_lock();
    });
    assert_at(&seen, BLOCKING_LINE, "self-deadlock");

    const BLOCKING_SEM_LINE: u32 = line!() + 4;
    let seen = panic_on_thread(|| {
        let s = Arc::new(Semaphore::new(2));
        let _p = s.blocking_acquire_many(2).unwrap();
        let _q = s.clone().blocking_acquire_owned().unwrap();
    });
    assert_at(&seen, BLOCKING_SEM_LINE, "self-deadlock");

    // Found once the acquisition waits: a sync guard of the waiting (root) future held across
    // that wait.
    const ACROSS_LINE: u32 = line!() + 20;
    let seen = panic_in_block_on(|| async {
        let s = lockcheck::Mutex::new(0);
        let a_site = format!("{}:{}:", file!(), line!() + 1);
        let a = Arc::new(Mutex::new(0));
        let g = a.clone().lock_owned().await;
        let releaser = tokio::spawn(async move {
            // Once the acquisition below waits (a 20 ms sleep did not make sure of it on a
            // loaded machine: released before, it never suspends).
            let start = std::time::Instant::now();
            while !lockcheck::__private::waits()
                .iter()
                .any(|(c, _)| c.starts_with(&a_site))
            {
                assert!(start.elapsed() < Duration::from_secs(60), "the wait for a");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            drop(g);
        });
        let _sync = s.lock();
        let _a = a.lock().await;
        drop(releaser);
    });
    assert_at(&seen, ACROSS_LINE, "held across await");

    // A sync lock taken by another task on the same thread while a suspended task holds a sync
    // guard: raised by the sync lock's `#[track_caller]` entry point.
    const SYNC_LINE: u32 = line!() + 12;
    let seen = panic_in_block_on(|| async {
        let guard = Arc::new(lockcheck::Mutex::new(0));
        let other = Arc::new(lockcheck::Mutex::new(0));
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async move {
                let holder = tokio::task::spawn_local(async move {
                    let _g = guard.lock();
                    tokio::task::yield_now().await;
                });
                let t = tokio::task::spawn_local(async move {
                    *other.lock() += 1;
                });
                let (r1, r2) = (holder.await, t.await);
                for r in [r2, r1] {
                    if let Err(e) = r {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            })
            .await;
    });
    assert_at(&seen, SYNC_LINE, "held across await");

    for multi in [false, true] {
        // A wait only the task's own owned guard keeps, confirmed after a second unmoved.
        const OWNED_WAIT_LINE: u32 = line!() + 4;
        let seen = panic_in_task(multi, || async {
            let m = Arc::new(Mutex::new(0));
            let _g = m.clone().lock_owned().await;
            let _h = m.lock().await;
        });
        assert_at(&seen, OWNED_WAIT_LINE, "self-deadlock");
    }

    // A real deadlock between two tasks: the wait that closes the cycle panics at its line (order
    // checking off, so that the inversion does not stop the second task before it waits).
    lockcheck::set_order_checking(false);
    for multi in [false, true] {
        const DL_LINE_1: u32 = line!() + 10;
        const DL_LINE_2: u32 = line!() + 14;
        let seen = panic_in_task(multi, || async {
            let a = Arc::new(Mutex::new(0));
            let b = Arc::new(Mutex::new(0));
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let (a1, b1, bar1) = (a.clone(), b.clone(), barrier.clone());
            let t1 = tokio::spawn(async move {
                let _a = a1.lock().await;
                bar1.wait().await;
                let _b = b1.lock().await;
            });
            let t2 = tokio::spawn(async move {
                let _b = b.lock().await;
                barrier.wait().await;
                let _a = a.lock().await;
            });
            for r in [t1.await, t2.await] {
                if let Err(e) = r {
                    // Passed on without running the hook again: the location is the task's.
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        });
        assert!(
            seen.line == DL_LINE_1 || seen.line == DL_LINE_2,
            "the panic must point at a waiting line: {seen:?}"
        );
        assert_eq!(seen.file, file!());
        assert!(seen.message.contains("deadlock"), "{seen:?}");
    }
    lockcheck::set_order_checking(true);

    let _ = std::panic::take_hook();
}
