//! A violation's panic points at the user's line, not at lockcheck's source: the panic hook sees
//! the location of the acquisition that found it (`file!()`/`line!()` of this test), for every
//! kind of lock and every kind of finding that panics.
//!
//! One test function: the panic hook is process-wide, and the last case switches order checking
//! off to reach the wait-for graph.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

thread_local! {
    /// The location the panic hook saw last on this thread.
    static SEEN: RefCell<Option<(String, u32)>> = const { RefCell::new(None) };
}

/// What a panic looked like: where the hook says it happened, and its message.
#[derive(Debug)]
struct Seen {
    file: String,
    line: u32,
    message: String,
}

/// Runs `f`, which must panic, and returns the panic's location and message.
fn panic_of(f: impl FnOnce()) -> Seen {
    SEEN.with(|s| s.borrow_mut().take());
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("lockcheck must panic here");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let (file, line) = SEEN
        .with(|s| s.borrow_mut().take())
        .expect("the panic hook ran");
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

/// Runs `f` on a std thread (lockcheck sees no fork/join ordering), waiting with a timeout.
fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("must not hang")
}

#[test]
fn violations_panic_at_the_users_line() {
    if !lockcheck::ENABLED {
        return;
    }
    lockcheck::set_action(lockcheck::Action::Panic);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(l) = info.location() {
            SEEN.with(|s| *s.borrow_mut() = Some((l.file().to_owned(), l.line())));
        }
        if std::env::var_os("SHOW_PANICS").is_some() {
            default_hook(info);
        }
    }));

    // parking_lot-style Mutex: self-deadlock.
    let m = lockcheck::Mutex::new(0);
    let g = m.lock();
    let at = line!() + 1;
    let seen = panic_of(|| drop(m.lock()));
    assert_at(&seen, at, "self-deadlock");
    drop(g);
    // The refused acquisition took nothing: the mutex is free.
    assert!(m.try_lock().is_some());

    // RwLock: write while reading, recursive read, upgrade while reading.
    let rw = lockcheck::RwLock::new(0);
    let r = rw.read();
    let at = line!() + 1;
    let seen = panic_of(|| drop(rw.write()));
    assert_at(&seen, at, "self-deadlock");
    let at = line!() + 1;
    let seen = panic_of(|| drop(rw.read()));
    assert_at(&seen, at, "recursive read");
    drop(r);
    let u = rw.upgradable_read();
    let r = rw.read();
    let at = line!() + 1;
    let seen = panic_of(|| drop(lockcheck::RwLockUpgradableReadGuard::upgrade(u)));
    assert_at(&seen, at, "self-deadlock");
    drop(r);
    assert!(rw.try_write().is_some());

    // std-style Mutex and RwLock.
    let sm = lockcheck::sync::Mutex::new(0);
    let g = sm.lock().unwrap();
    let at = line!() + 1;
    let seen = panic_of(|| drop(sm.lock()));
    assert_at(&seen, at, "self-deadlock");
    drop(g);
    let srw = lockcheck::sync::RwLock::new(0);
    let g = srw.write().unwrap();
    let at = line!() + 1;
    let seen = panic_of(|| drop(srw.read()));
    assert_at(&seen, at, "self-deadlock");
    drop(g);

    // Semaphore: every permit held by this thread.
    let sem = lockcheck::Semaphore::new(1);
    let p = sem.acquire();
    let at = line!() + 1;
    let seen = panic_of(|| drop(sem.acquire()));
    assert_at(&seen, at, "self-deadlock");
    drop(p);
    assert!(sem.try_acquire().is_some());

    // A lock-order inversion, found on a second thread.
    static A: lockcheck::Mutex<()> = lockcheck::Mutex::new(());
    static B: lockcheck::Mutex<()> = lockcheck::Mutex::new(());
    on_thread(|| {
        let _a = A.lock();
        let _b = B.lock();
    });
    let (seen, at) = on_thread(|| {
        let _b = B.lock();
        let at = line!() + 1;
        (panic_of(|| drop(A.lock())), at)
    });
    assert_at(&seen, at, "lock order inversion");

    // A wait longer than the class's timeout policy.
    static E: lockcheck::Mutex<()> = lockcheck::Mutex::named("panic_location::timed", ());
    lockcheck::watchdog::set_wait_timeout("panic_location::timed", Some(Duration::from_millis(20)));
    let (held, held_rx) = mpsc::channel();
    let (done, done_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _e = E.lock();
        held.send(()).unwrap();
        let _ = done_rx.recv_timeout(Duration::from_secs(30));
    });
    held_rx.recv().unwrap();
    let at = line!() + 1;
    let seen = panic_of(|| drop(E.lock()));
    assert_at(&seen, at, "wait timeout");
    done.send(()).unwrap();
    holder.join().unwrap();
    lockcheck::watchdog::set_wait_timeout("panic_location::timed", None);

    // A real deadlock (order checking off, so that the wait-for graph finds it): the thread
    // that closes the cycle panics at its own acquisition.
    lockcheck::set_order_checking(false);
    static C: lockcheck::Mutex<()> = lockcheck::Mutex::new(());
    static D: lockcheck::Mutex<()> = lockcheck::Mutex::new(());
    let (c_held, c_held_rx) = mpsc::channel();
    let (d_held, d_held_rx) = mpsc::channel();
    let first = std::thread::spawn(move || {
        let _c = C.lock();
        c_held.send(lockcheck::__private::waiter_id()).unwrap();
        d_held_rx.recv().unwrap();
        // Blocks until the other thread gives D up.
        let _d = D.lock();
    });
    let (seen, at) = on_thread(move || {
        let _d = D.lock();
        let first_id = c_held_rx.recv().unwrap();
        d_held.send(()).unwrap();
        // Let the first thread block on D: the wait-for graph shows it (a 200 ms sleep did not
        // make sure of it on a loaded machine; the first thread would close the cycle then).
        let start = std::time::Instant::now();
        while !lockcheck::__private::waiters()
            .iter()
            .any(|(_, k, w)| *w == first_id && *k == lockcheck::LockKind::Mutex)
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the first thread blocks"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let at = line!() + 1;
        (panic_of(|| drop(C.lock())), at)
    });
    assert_at(&seen, at, "deadlock");
    first
        .join()
        .expect("the first thread goes on once D is free");
    lockcheck::set_order_checking(true);
}
