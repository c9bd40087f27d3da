//! Each thread's copy of the fast path's switch byte (`config::ThreadSwitch`) follows a switch
//! changed at run time by another thread: a stale copy would take a checked thread's locks the
//! raw way (a missed inversion) or keep checking after `LOCKCHECK=off`. Its own binary: it flips
//! the process-wide action.

use lockcheck::{Action, Mutex, ViolationKind};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

/// The tests of this binary change process-wide switches: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const WAIT: Duration = Duration::from_secs(20);

/// A thread that takes one lock right away (registering its copy of the switch byte under the
/// switches of the moment), then, once told, `first` then `second`, and reports back.
fn worker(
    warm: Arc<Mutex<u32>>,
    first: Arc<Mutex<u32>>,
    second: Arc<Mutex<u32>>,
) -> (Sender<()>, Receiver<()>, std::thread::JoinHandle<()>) {
    let (go_tx, go_rx) = channel::<()>();
    let (done_tx, done_rx) = channel::<()>();
    let h = std::thread::spawn(move || {
        *warm.lock() += 1;
        done_tx.send(()).unwrap();
        go_rx.recv_timeout(WAIT).expect("must not hang");
        {
            let _a = first.lock();
            *second.lock() += 1;
        }
        done_tx.send(()).unwrap();
        // Stay alive until told: both orders are then taken by concurrent threads.
        go_rx.recv_timeout(WAIT).expect("must not hang");
    });
    done_rx.recv_timeout(WAIT).expect("must not hang");
    (go_tx, done_rx, h)
}

/// Two threads started under `before` take `a` then `b` and `b` then `a`, one after the other,
/// after the action became `after`: the inversions found on `a`'s and `b`'s classes, and whether
/// every thread's copy of the switch byte then agreed with the switches.
fn inversions_after_switch(
    before: Action,
    after: Action,
    a: &'static str,
    b: &'static str,
) -> (usize, bool) {
    lockcheck::set_action(before);
    let warm = Arc::new(Mutex::named("switch_copies.warm", 0));
    let la = Arc::new(Mutex::named(a, 0));
    let lb = Arc::new(Mutex::named(b, 0));
    let (go1, done1, h1) = worker(warm.clone(), la.clone(), lb.clone());
    let (go2, done2, h2) = worker(warm, lb, la);
    lockcheck::set_action(after);
    go1.send(()).unwrap();
    done1.recv_timeout(WAIT).expect("must not hang");
    go2.send(()).unwrap();
    done2.recv_timeout(WAIT).expect("must not hang");
    go1.send(()).unwrap();
    go2.send(()).unwrap();
    h1.join().unwrap();
    h2.join().unwrap();
    let found = lockcheck::violations()
        .into_iter()
        .filter(|v| v.kind == ViolationKind::LockOrderInversion)
        .filter(|v| v.classes().contains(&a))
        .count();
    (found, lockcheck::__private::flags_match_switches())
}

#[test]
fn threads_started_with_checking_off_check_once_it_is_switched_on() {
    let _serial = serial();
    let found = inversions_after_switch(
        Action::Off,
        Action::Warn,
        "switch_copies.on.a",
        "switch_copies.on.b",
    );
    assert_eq!(
        found.0, 1,
        "the inversion taken after checking was switched on"
    );
    assert!(found.1, "a thread's copy of the switch byte is stale");
}

#[test]
fn threads_started_checked_stop_checking_once_it_is_switched_off() {
    let _serial = serial();
    let found = inversions_after_switch(
        Action::Warn,
        Action::Off,
        "switch_copies.off.a",
        "switch_copies.off.b",
    );
    lockcheck::set_action(Action::Warn);
    assert_eq!(found.0, 0, "no checking after LOCKCHECK=off");
    assert!(found.1, "a thread's copy of the switch byte is stale");
}

#[test]
fn an_ended_thread_leaves_the_registry() {
    let _serial = serial();
    lockcheck::set_action(Action::Warn);
    let m = Arc::new(Mutex::named("switch_copies.ended", 0));
    // This thread's own copy first, so that the count below is only the workers'.
    *m.lock() += 1;
    let before = lockcheck::__private::registered_switches();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || *m.lock() += 1)
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Joined: every worker's thread-local destructors ran, the slow state's unregistered it.
    // At most `before`, not equal: the previous test's thread (libtest's, which sent its result
    // before its own thread-local destructors ran) may unregister meanwhile (CI saw 2 -> 1);
    // 16 workers left registered would still fail it.
    let after = lockcheck::__private::registered_switches();
    assert!(
        after <= before,
        "{after} copies registered, {before} before the workers"
    );
    // A refresh after they ended writes only to live copies, and they all agree.
    lockcheck::set_order_checking(false);
    lockcheck::set_order_checking(true);
    assert!(lockcheck::__private::flags_match_switches());
    assert_eq!(*m.lock(), 17);
}

/// A checked mutex used only while checking was off has no identity yet, and its raw lock's
/// one-shot try keeps failing (`byte_mutex::FRESH`) until the full path gave it one: once
/// checking is switched on, its first acquisition goes the full way, later ones the fast way,
/// and an inversion on it is found (a fast path that took it without its identity would push
/// an unnamed hold and miss it).
#[test]
fn locks_used_only_while_off_are_checked_once_it_is_switched_on() {
    let _serial = serial();
    let inversions = || {
        lockcheck::violations()
            .into_iter()
            .filter(|v| v.kind == ViolationKind::LockOrderInversion)
            .filter(|v| v.classes().contains(&"switch_copies.fresh.a"))
            .count()
    };
    lockcheck::set_action(Action::Off);
    let a = Arc::new(Mutex::named("switch_copies.fresh.a", 0));
    let b = Arc::new(Mutex::named("switch_copies.fresh.b", 0));
    for _ in 0..3 {
        *a.lock() += 1;
        *b.lock() += 1;
        {
            let _a = a.lock();
            *b.lock() += 1;
        }
        let _b = b.lock();
        *a.lock() += 1;
    }
    lockcheck::set_action(Action::Warn);
    assert_eq!(inversions(), 0, "nothing checked while off");
    for _ in 0..3 {
        *a.lock() += 1;
        *b.lock() += 1;
    }
    // Both orders on two threads alive together (their own lines: a report is made once per
    // pair of sites, and `worker`'s are the other tests').
    let (tx, rx) = channel::<()>();
    let (a1, b1) = (a.clone(), b.clone());
    let h = std::thread::spawn(move || {
        {
            let _a = a1.lock();
            *b1.lock() += 1;
        }
        tx.send(()).unwrap();
    });
    rx.recv_timeout(WAIT).expect("must not hang");
    assert_eq!(inversions(), 0, "one order only");
    {
        let _b = b.lock();
        *a.lock() += 1;
    }
    h.join().unwrap();
    let n = *a.lock();
    assert_eq!(n + *b.lock(), 20);
    assert_eq!(
        inversions(),
        1,
        "the inversion taken after checking was switched on"
    );
    assert!(lockcheck::__private::flags_match_switches());
}
