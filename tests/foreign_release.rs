//! A guard forgotten on one thread and `force_unlock`ed on another leaves a stale entry on the
//! first thread's held stack; its next lock of that mutex is not a self-deadlock. The runtime
//! remembers such foreign releases exactly, however many other locks were released that way in
//! between (it used to keep the last 1024 and silently drop the oldest half).

mod support;

use lockcheck::Mutex;
use std::sync::{mpsc, Arc};
use std::time::Duration;
use support::{found, watchdog};

/// A lock of `m` on a thread of its own, whose guard is forgotten: only `force_unlock` frees it.
fn lock_and_forget_elsewhere(m: &Arc<Mutex<u32>>) {
    let m = Arc::clone(m);
    std::thread::spawn(move || std::mem::forget(m.lock()))
        .join()
        .expect("locker thread");
}

#[test]
fn relock_after_foreign_release_is_silent_after_many_other_foreign_releases() {
    let r = watchdog(60, || {
        let x = Arc::new(Mutex::named("fr.x", 0u32));
        let (locked_tx, locked_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let x2 = Arc::clone(&x);
        let holder = std::thread::spawn(move || {
            std::mem::forget(x2.lock());
            locked_tx.send(()).unwrap();
            go_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("go signal");
            // The lock was freed by the main thread: this is not a self-deadlock.
            *x2.lock() += 1;
        });
        locked_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("holder locked");
        // SAFETY: the holder forgot its guard; nothing else uses the lock meanwhile.
        unsafe { x.force_unlock() };
        // Many more foreign releases of other live locks.
        let others: Vec<Arc<Mutex<u32>>> = (0..1500)
            .map(|_| Arc::new(Mutex::named("fr.other", 0)))
            .collect();
        for m in &others {
            lock_and_forget_elsewhere(m);
            // SAFETY: as above.
            unsafe { m.force_unlock() };
        }
        go_tx.send(()).unwrap();
        holder
            .join()
            .map_err(|_| "the relock was reported")
            .unwrap();
        assert_eq!(*x.lock(), 1);
        // Each released lock can be taken again on this thread.
        for m in &others {
            *m.lock() += 1;
        }
    });
    r.expect("no self-deadlock may be reported");
    assert!(found("fr.x").is_empty(), "{:#?}", found("fr.x"));
    assert!(found("fr.other").is_empty(), "{:#?}", found("fr.other"));
}

#[test]
fn relock_of_a_really_held_lock_is_still_reported_after_foreign_releases() {
    // The look-alike: a foreign release of *another* lock excuses nothing here.
    let r = watchdog(30, || {
        let other = Arc::new(Mutex::named("fr.unrelated", 0u32));
        lock_and_forget_elsewhere(&other);
        // SAFETY: the locker thread forgot its guard and exited.
        unsafe { other.force_unlock() };
        let m = Mutex::named("fr.held", 0u32);
        let _g = m.lock();
        let _h = m.lock();
    });
    let msg = r.expect_err("must panic instead of hanging");
    assert!(msg.contains("self-deadlock"), "{msg}");
    assert_eq!(found("fr.held").len(), 1);
}
