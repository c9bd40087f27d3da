//! The parking_lot-shaped API works as parking_lot's does (guards, upgrade/downgrade, mapping,
//! timed variants, condvar timeouts, semaphores), with the checks on.

mod support;

use lockcheck::{
    Condvar, Mutex, MutexGuard, RwLock, RwLockUpgradableReadGuard, RwLockWriteGuard, Semaphore,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{found, two_threads, watchdog};

#[test]
fn mutex_api() {
    let mut m = Mutex::named("api.m", vec![1, 2]);
    m.get_mut().push(3);
    {
        let g = m.lock();
        let first = MutexGuard::map(g, |v| &mut v[0]);
        assert_eq!(*first, 1);
    }
    assert!(!m.is_locked());
    let g = m.try_lock().expect("free");
    assert!(m.is_locked());
    drop(g);
    assert!(m.try_lock_for(Duration::from_millis(1)).is_some());
    assert!(m
        .try_lock_until(Instant::now() + Duration::from_millis(1))
        .is_some());
    assert_eq!(m.into_inner(), vec![1, 2, 3]);
    let d: Mutex<u8> = Mutex::default();
    assert_eq!(format!("{d:?}"), "Mutex { data: 0 }");
}

#[test]
fn rwlock_upgrade_and_downgrade() {
    let l = RwLock::named("api.rw", 1);
    {
        let u = l.upgradable_read();
        let r = l.read(); // readers coexist with an upgradable reader
        assert_eq!(*r, 1);
        drop(r);
        let mut w = RwLockUpgradableReadGuard::upgrade(u);
        *w += 1;
        let r = RwLockWriteGuard::downgrade(w);
        assert_eq!(*r, 2);
    }
    {
        let mut u = l.upgradable_read();
        u.with_upgraded(|v| *v += 1);
        let w = RwLockUpgradableReadGuard::try_upgrade(u).expect("no readers");
        let u = RwLockWriteGuard::downgrade_to_upgradable(w);
        assert_eq!(*u, 3);
    }
    assert!(l.try_write_for(Duration::from_millis(1)).is_some());
    assert!(l.try_read_for(Duration::from_millis(1)).is_some());
    assert!(found("api.rw").is_empty(), "{:#?}", found("api.rw"));
    // After the upgrade cycle the held stack is empty: taking it again is no self-deadlock.
    *l.write() += 1;
    assert_eq!(l.into_inner(), 4);
}

#[test]
fn condvar_timeouts_and_notification() {
    watchdog(10, || {
        let pair = Arc::new((Mutex::named("api.cv", 0), Condvar::new()));
        let (m, cv) = &*pair;
        let mut g = m.lock();
        assert!(cv.wait_for(&mut g, Duration::from_millis(10)).timed_out());
        let p2 = pair.clone();
        let t = std::thread::spawn(move || {
            let (m, cv) = &*p2;
            *m.lock() = 1;
            cv.notify_one();
        });
        let r = cv.wait_while_for(&mut g, |v| *v == 0, Duration::from_secs(5));
        assert!(!r.timed_out());
        drop(g);
        t.join().unwrap();
        // The mutex is free and not held by this thread after the waits.
        drop(m.lock());
    })
    .unwrap();
    assert!(found("api.cv").is_empty());
}

#[test]
fn semaphore_api() {
    let s = Semaphore::named("api.sem", 2);
    let a = s.acquire();
    let b = s.try_acquire().expect("second permit");
    assert!(s.try_acquire().is_none());
    assert!(s.try_acquire_for(Duration::from_millis(5)).is_none());
    drop(a);
    assert_eq!(s.available_permits(), 1);
    drop(b);
    assert_eq!(s.available_permits(), 2);
    assert_eq!(s.permits(), 2);
}

#[test]
fn std_rwlock_inversion_is_reported() {
    let a = Arc::new(lockcheck::sync::RwLock::new(0));
    let b = Arc::new(lockcheck::sync::RwLock::new(0));
    let (a2, b2) = (a.clone(), b.clone());
    let (_, r2) = two_threads(
        move || {
            let _a = a.write().unwrap();
            let _b = b.write().unwrap();
        },
        move || {
            let _b = b2.write().unwrap();
            let _a = a2.write().unwrap();
        },
    );
    assert!(r2.unwrap_err().contains("lock order inversion"));
}
