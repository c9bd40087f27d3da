//! Condvar soundness: whatever lockcheck raises while a condvar wait retakes its mutex (a deadlock
//! report, a wait-timeout policy), the mutex stays mutually exclusive. Before the fix the wait
//! panicked without the mutex and the guard's unwinding unlocked a mutex another thread owned,
//! so a `try_lock` succeeded while that thread still held it.
//!
//! Lock-order checking is off in this binary so that the deadlock scenarios do reach the real
//! deadlock (with it on, the inversion is reported before anyone blocks).

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use support::{found, watchdog};

fn setup() {
    lockcheck::set_order_checking(false);
}

/// Resets a "this thread believes it holds the mutex" flag when dropped, also when unwinding
/// (declared after the guard, so it runs before the guard unlocks).
struct Believes(Arc<AtomicBool>);

impl Drop for Believes {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Whether another thread can take `m` right now (without blocking).
fn free_for_others<T: Send>(m: &lockcheck::Mutex<T>) -> bool {
    std::thread::scope(|s| s.spawn(|| m.try_lock().is_some()).join().unwrap())
}

fn free_for_others_std<T: Send>(m: &lockcheck::sync::Mutex<T>) -> bool {
    std::thread::scope(|s| {
        s.spawn(|| !matches!(m.try_lock(), Err(std::sync::TryLockError::WouldBlock)))
            .join()
            .unwrap()
    })
}

/// Deadlock through a condvar wait (parking_lot API): the waiter `w` holds `l` and waits on the
/// condvar with `a`; `t` takes `a` meanwhile and blocks on `l`; the notified waiter then retakes
/// `a`: a wait-for cycle that the waiter closes.
#[test]
fn condvar_deadlock_keeps_mutual_exclusion() {
    setup();
    watchdog(60, || {
        let l = Arc::new(lockcheck::Mutex::named("cvs.dl.l", ()));
        let a = Arc::new(lockcheck::Mutex::named("cvs.dl.a", 0u32));
        let cv = Arc::new(lockcheck::Condvar::new());
        let t_holds_a = Arc::new(AtomicBool::new(false));
        let (holds_tx, holds_rx) = mpsc::channel::<()>();
        let (go_tx, go_rx) = mpsc::channel::<()>();

        let _l = l.lock();
        let mut g = a.lock();
        let t = {
            let (a, l, flag) = (a.clone(), l.clone(), t_holds_a.clone());
            std::thread::spawn(move || {
                let _ga = a.lock();
                flag.store(true, Ordering::SeqCst);
                let _believes = Believes(flag);
                let _gl = l.lock();
                // Holds a and l.
                let _ = holds_tx.send(());
                let _ = go_rx.recv_timeout(Duration::from_secs(10));
            })
        };
        {
            let cv = cv.clone();
            std::thread::spawn(move || {
                // Once `t` holds `a` (so the wait below released it) and is blocked on `l`. A
                // 300 ms sleep did not make sure of it on a loaded machine: a notify before the
                // wait is lost, and the wait hangs.
                support::wait_until("t blocks on l holding a", || {
                    support::blocked_on("cvs.dl.l") == 1
                });
                cv.notify_all();
            });
        }
        let r = catch_unwind(AssertUnwindSafe(|| cv.wait(&mut g)));
        // The guard `g` is alive: it must hold `a`.
        assert!(
            !free_for_others(&a),
            "the waiter's guard must hold the mutex"
        );
        drop(g);
        drop(_l);
        // If `t` goes on, it holds `a` (and `l`): nobody else may take `a`.
        if holds_rx.recv_timeout(Duration::from_secs(5)).is_ok() {
            assert!(
                !free_for_others(&a),
                "thread t holds the mutex, yet another thread could take it"
            );
            let _ = go_tx.send(());
        }
        if t_holds_a.load(Ordering::SeqCst) {
            assert!(!free_for_others(&a), "thread t holds the mutex");
        }
        let tr = t.join();
        assert!(
            r.is_err() || tr.is_err(),
            "a real deadlock panics a thread of the cycle"
        );
    })
    .unwrap();
    assert!(found("cvs.dl.a")
        .iter()
        .any(|v| v.kind == lockcheck::ViolationKind::Deadlock));
}

/// The same with std's API (`lockcheck::sync`): the guard moves into `wait` and unwinds there.
#[test]
fn std_condvar_deadlock_keeps_mutual_exclusion() {
    setup();
    watchdog(60, || {
        use lockcheck::sync::{Condvar, Mutex};
        let l_line = line!() + 1;
        let l = Arc::new(Mutex::new(()));
        let a = Arc::new(Mutex::new(0u32));
        let cv = Arc::new(Condvar::new());
        let t_holds_a = Arc::new(AtomicBool::new(false));
        let (holds_tx, holds_rx) = mpsc::channel::<()>();
        let (go_tx, go_rx) = mpsc::channel::<()>();

        let l_guard = l.lock().unwrap();
        let g = a.lock().unwrap();
        let t = {
            let (a, l, flag) = (a.clone(), l.clone(), t_holds_a.clone());
            std::thread::spawn(move || {
                let _ga = a.lock().unwrap_or_else(|e| e.into_inner());
                flag.store(true, Ordering::SeqCst);
                let _believes = Believes(flag);
                let _gl = l.lock().unwrap_or_else(|e| e.into_inner());
                let _ = holds_tx.send(());
                let _ = go_rx.recv_timeout(Duration::from_secs(10));
            })
        };
        {
            let cv = cv.clone();
            std::thread::spawn(move || {
                // Once `t` holds `a` and is blocked on `l` (as above; `l` is known by its line).
                support::wait_until("t blocks on l holding a", || {
                    support::blocked_at(
                        lockcheck::LockKind::Mutex,
                        "tests/trust_condvar.rs",
                        l_line,
                    ) == 1
                });
                cv.notify_all();
            });
        }
        let r = catch_unwind(AssertUnwindSafe(|| drop(cv.wait(g))));
        if t_holds_a.load(Ordering::SeqCst) {
            assert!(!free_for_others_std(&a), "thread t holds the mutex");
        }
        drop(l_guard);
        if holds_rx.recv_timeout(Duration::from_secs(5)).is_ok() {
            assert!(
                !free_for_others_std(&a),
                "thread t holds the mutex, yet another thread could take it"
            );
            let _ = go_tx.send(());
        }
        let tr = t.join();
        assert!(
            r.is_err() || tr.is_err(),
            "a real deadlock panics a thread of the cycle"
        );
    })
    .unwrap();
}

/// A wait-timeout policy fires while the waiter retakes its mutex (parking_lot API): `t` holds
/// the mutex for 500 ms after notifying, the policy allows 50 ms.
#[test]
fn condvar_wait_timeout_keeps_mutual_exclusion() {
    setup();
    lockcheck::watchdog::set_wait_timeout("cvs.to.a", Some(Duration::from_millis(50)));
    watchdog(60, || {
        let a = Arc::new(lockcheck::Mutex::named("cvs.to.a", 0u32));
        let cv = Arc::new(lockcheck::Condvar::new());
        let t_holds_a = Arc::new(AtomicBool::new(false));
        let mut g = a.lock();
        let t = {
            let (a, cv, flag) = (a.clone(), cv.clone(), t_holds_a.clone());
            std::thread::spawn(move || {
                // Timed: not subject to the policy.
                let _ga = a.try_lock_for(Duration::from_secs(10)).expect("a");
                flag.store(true, Ordering::SeqCst);
                let _believes = Believes(flag);
                cv.notify_all();
                std::thread::sleep(Duration::from_millis(500));
            })
        };
        let r = catch_unwind(AssertUnwindSafe(|| {
            cv.wait(&mut g);
        }));
        let msg = r.as_ref().err().map(|e| support::panic_message(&**e));
        assert!(
            msg.as_deref().is_some_and(|m| m.contains("wait timeout")),
            "the policy panics the waiter: {msg:?}"
        );
        assert!(
            !free_for_others(&a),
            "the waiter's guard must hold the mutex"
        );
        drop(g);
        if t_holds_a.load(Ordering::SeqCst) {
            assert!(
                !free_for_others(&a),
                "thread t holds the mutex, yet another thread could take it"
            );
        }
        t.join().unwrap();
    })
    .unwrap();
    assert!(found("cvs.to.a")
        .iter()
        .any(|v| matches!(v.kind, lockcheck::ViolationKind::WaitTimeout { .. })));
}

/// The same with std's API.
#[test]
fn std_condvar_wait_timeout_keeps_mutual_exclusion() {
    setup();
    watchdog(60, || {
        use lockcheck::sync::{Condvar, Mutex};
        let a = Arc::new(
            Mutex::new(0u32), // the class of an unnamed lock is its construction site
        );
        let class = format!("{}:{}:13", file!(), line!() - 2);
        lockcheck::watchdog::set_wait_timeout(&class, Some(Duration::from_millis(50)));
        let cv = Arc::new(Condvar::new());
        let t_holds_a = Arc::new(AtomicBool::new(false));
        let g = a.lock().unwrap();
        let t = {
            let (a, cv, flag) = (a.clone(), cv.clone(), t_holds_a.clone());
            std::thread::spawn(move || {
                let _ga = loop {
                    match a.try_lock() {
                        Ok(g) => break g,
                        Err(std::sync::TryLockError::Poisoned(e)) => break e.into_inner(),
                        Err(_) => std::thread::sleep(Duration::from_millis(1)),
                    }
                };
                flag.store(true, Ordering::SeqCst);
                let _believes = Believes(flag);
                cv.notify_all();
                std::thread::sleep(Duration::from_millis(500));
            })
        };
        let r = catch_unwind(AssertUnwindSafe(|| drop(cv.wait(g))));
        let msg = r.as_ref().err().map(|e| support::panic_message(&**e));
        assert!(
            msg.as_deref().is_some_and(|m| m.contains("wait timeout")),
            "the policy panics the waiter: {msg:?}"
        );
        if t_holds_a.load(Ordering::SeqCst) {
            assert!(
                !free_for_others_std(&a),
                "thread t holds the mutex, yet another thread could take it"
            );
        }
        t.join().unwrap();
    })
    .unwrap();
}

/// The look-alike: an ordinary condvar handshake is silent and never panics.
#[test]
fn plain_condvar_handshake_is_silent() {
    setup();
    watchdog(30, || {
        let a = Arc::new(lockcheck::Mutex::named("cvs.ok.a", false));
        let cv = Arc::new(lockcheck::Condvar::new());
        let t = {
            let (a, cv) = (a.clone(), cv.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                *a.lock() = true;
                cv.notify_all();
            })
        };
        let mut g = a.lock();
        while !*g {
            cv.wait(&mut g);
        }
        drop(g);
        t.join().unwrap();
    })
    .unwrap();
    assert!(found("cvs.ok.a").is_empty());
}
