//! A violation found on a `lockcheck::tokio` lock panics at the user's line: the checks that need
//! no wait (self-deadlock, recursive read, lock order, a semaphore whose missing permits the task
//! holds) run in the `#[track_caller]` method that returns the future, so the panic hook sees the
//! location of `lock()`, `read()`, `write()`, `acquire()`, ... in this file, on both runtime
//! flavours and in the `blocking_*` methods.
//!
//! One test function: the panic hook is process-wide.

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

    let _ = std::panic::take_hook();
}
