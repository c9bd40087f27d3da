//! `LOCKCHECK=off` switched at run time: acquisitions take the raw lock on the inlined fast path
//! (issue 13), still exclusive, with nothing checked; switched back on, checking resumes.

use lockcheck::{Action, Mutex, RwLock};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

fn named(name: &'static str) -> Arc<Mutex<u32>> {
    Arc::new(Mutex::named(name, 0))
}

/// `x` then `y` on one thread, then `y` then `x` on another while the first is alive (the two
/// are concurrent for lockcheck).
fn invert(x: Arc<Mutex<u32>>, y: Arc<Mutex<u32>>) {
    let (c, d) = (x, y);
    let (c1, d1) = (c.clone(), d.clone());
    let (first_tx, first_rx) = mpsc::channel();
    let (end_tx, end_rx) = mpsc::channel::<()>();
    // Alive while the other order is taken: the two threads are concurrent for lockcheck.
    let t1 = std::thread::spawn(move || {
        {
            let _c = c1.lock();
            let _d = d1.lock();
        }
        let _ = first_tx.send(());
        let _ = end_rx.recv_timeout(Duration::from_secs(60));
    });
    first_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("must not hang");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _d = d.lock();
        let _c = c.lock();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("must not hang");
    let _ = end_tx.send(());
    t1.join().expect("first order");
}

#[test]
fn off_at_run_time_locks_without_checking_and_on_again_checks() {
    lockcheck::set_action(Action::Off);
    let (a, b) = (named("off.a"), named("off.b"));
    let (tx, rx) = mpsc::channel();
    let a2 = a.clone();
    std::thread::spawn(move || {
        // Still a lock: exclusive, and a contender waits for the holder.
        let g = a2.lock();
        assert!(a2.try_lock().is_none(), "held: not available");
        let a3 = a2.clone();
        let h = std::thread::spawn(move || *a3.lock() += 1);
        std::thread::sleep(Duration::from_millis(20));
        drop(g);
        h.join().expect("contender");
        assert_eq!(*a2.lock(), 1);
        let r = RwLock::new(0u8);
        *r.write() += 1;
        assert_eq!(*r.read(), 1);
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("must not hang");
    // The inversion that is reported below once checking is on: nothing is checked while off.
    invert(a, b);
    assert!(
        lockcheck::violations().is_empty(),
        "{:#?}",
        lockcheck::violations()
    );

    // On again (reporting without panicking): the same inversion on other locks is found.
    lockcheck::set_action(Action::Warn);
    let (c, d) = (named("off.c"), named("off.d"));
    invert(c, d);
    let v = lockcheck::violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0]
        .edges
        .iter()
        .any(|e| e.held.class == "off.c" || e.acquired.class == "off.c"));
}
