//! `lockcheck::sync` keeps std's API and semantics, poisoning included, and is checked.

mod support;

use lockcheck::sync::{Arc, Condvar, Mutex, RwLock, TryLockError};
use std::time::Duration;
use support::{two_threads, watchdog};

#[test]
fn poisoning_is_exact() {
    let m = Arc::new(Mutex::new(1));
    let m2 = m.clone();
    let r = std::thread::spawn(move || {
        let _g = m2.lock().unwrap();
        panic!("boom");
    })
    .join();
    assert!(r.is_err());
    assert!(m.is_poisoned());
    let err = m.lock().expect_err("poisoned");
    assert_eq!(*err.into_inner(), 1);
    assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
    m.clear_poison();
    assert!(!m.is_poisoned());
    *m.lock().unwrap() += 1;
    let m = Arc::try_unwrap(m).unwrap();
    assert_eq!(m.into_inner().unwrap(), 2);
}

#[test]
fn a_panic_before_locking_does_not_poison() {
    let m = Mutex::new(0);
    let r = std::panic::catch_unwind(|| {
        struct LockOnDrop<'a>(&'a Mutex<i32>);
        impl Drop for LockOnDrop<'_> {
            fn drop(&mut self) {
                // Locked while already panicking: std does not poison in that case.
                let _g = self.0.lock();
            }
        }
        let _d = LockOnDrop(&m);
        panic!("first");
    });
    assert!(r.is_err());
    assert!(!m.is_poisoned());
}

#[test]
fn rwlock_poisoning_and_api() {
    let l = Arc::new(RwLock::new(vec![1]));
    {
        let r1 = l.read().unwrap();
        assert!(matches!(l.try_write(), Err(TryLockError::WouldBlock)));
        assert_eq!(r1.len(), 1);
    }
    l.write().unwrap().push(2);
    let l2 = l.clone();
    let _ = std::thread::spawn(move || {
        let _w = l2.write().unwrap();
        panic!("poison");
    })
    .join();
    assert!(l.is_poisoned());
    assert!(l.read().is_err());
    assert!(matches!(l.try_read(), Err(TryLockError::Poisoned(_))));
}

#[test]
fn read_guards_do_not_poison() {
    let l = Arc::new(RwLock::new(0));
    let l2 = l.clone();
    let _ = std::thread::spawn(move || {
        let _r = l2.read().unwrap();
        panic!("reader");
    })
    .join();
    assert!(!l.is_poisoned());
}

#[test]
fn condvar_wait_while_and_timeout() {
    watchdog(10, || {
        let pair = Arc::new((Mutex::new(0), Condvar::new()));
        let p2 = pair.clone();
        let t = std::thread::spawn(move || {
            for _ in 0..5 {
                let (m, cv) = &*p2;
                *m.lock().unwrap() += 1;
                cv.notify_all();
            }
        });
        let (m, cv) = &*pair;
        let g = cv.wait_while(m.lock().unwrap(), |n| *n < 5).unwrap();
        assert_eq!(*g, 5);
        drop(g);
        // The notifier may still send its last notification: wait for it to finish so that
        // nothing can wake the timed waits below.
        t.join().unwrap();
        let g = m.lock().unwrap();
        let (g, r) = cv.wait_timeout(g, Duration::from_millis(10)).unwrap();
        assert!(r.timed_out());
        let (_g, r) = cv
            .wait_timeout_while(g, Duration::from_millis(10), |n| *n < 100)
            .unwrap();
        assert!(r.timed_out());
    })
    .unwrap();
}

#[test]
fn std_api_inversion_is_reported() {
    let a = Arc::new(Mutex::new(0));
    let b = Arc::new(Mutex::new(0));
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            let _a = a.lock().unwrap();
            let _b = b.lock().unwrap();
        },
        move || {
            let _b = b2.lock().unwrap();
            let _a = a2.lock().unwrap();
        },
    );
    assert!(r1.is_ok());
    assert!(r2.unwrap_err().contains("lock order inversion"));
    let v: Vec<_> = lockcheck::violations()
        .into_iter()
        .filter(|v| {
            v.sites()
                .iter()
                .all(|s| s.starts_with("tests/sync_api.rs:"))
        })
        .collect();
    assert_eq!(v.len(), 1);
}

#[test]
fn debug_output_matches_std_shape() {
    let m = Mutex::new(3);
    let s = format!("{m:?}");
    assert!(
        s.starts_with("Mutex {") && s.contains("data: 3") && s.contains("poisoned: false"),
        "{s}"
    );
}
