//! The drop-in promise, checked by the compiler: one body of code that uses every public item of
//! parking_lot 0.12's lock API (its `lib.rs` re-exports, `arc_lock` ones included), compiled
//! and run once against `parking_lot::` and once against `lockcheck::` names.
//!
//! The `arc_lock` part needs `--features arc_lock` (CI runs it); without the feature it is
//! compiled out on both sides, as parking_lot's would be.

macro_rules! exercise {
    ($module:ident, $k:ident) => {
        mod $module {
            use std::sync::Arc;
            use std::time::{Duration, Instant};
            #[allow(unused_imports)]
            use $k::lock_api::{self, RawMutex as _, RawRwLock as _};
            use $k::{
                const_fair_mutex, const_mutex, const_reentrant_mutex, const_rwlock, Condvar,
                FairMutex, FairMutexGuard, MappedFairMutexGuard, MappedMutexGuard,
                MappedReentrantMutexGuard, MappedRwLockReadGuard, MappedRwLockWriteGuard, Mutex,
                MutexGuard, Once, OnceState, RawFairMutex, RawMutex, RawRwLock, RawThreadId,
                ReentrantMutex, ReentrantMutexGuard, RwLock, RwLockReadGuard,
                RwLockUpgradableReadGuard, RwLockWriteGuard, WaitTimeoutResult,
            };

            static M: Mutex<u32> = const_mutex(0);
            static F: FairMutex<u32> = const_fair_mutex(0);
            static R: ReentrantMutex<u32> = const_reentrant_mutex(0);
            static W: RwLock<u32> = const_rwlock(0);
            static ONCE: Once = Once::new();

            pub fn run() {
                // Mutex and its guards.
                {
                    let mut g: MutexGuard<'_, u32> = M.lock();
                    *g += 1;
                    MutexGuard::unlocked(&mut g, || assert!(!M.is_locked()));
                    MutexGuard::unlocked_fair(&mut g, || ());
                    MutexGuard::bump(&mut g);
                    assert!(M.is_locked());
                    MutexGuard::unlock_fair(g);
                }
                let v = Mutex::new(vec![1, 2]);
                {
                    let mapped: MappedMutexGuard<'_, u32> =
                        MutexGuard::map(v.lock(), |v| &mut v[0]);
                    assert_eq!(*mapped, 1);
                    drop(mapped);
                    let g = MutexGuard::try_map(v.lock(), |v| v.get_mut(5));
                    assert!(g.is_err());
                    drop(g);
                }
                assert!(v.try_lock_for(Duration::from_millis(1)).is_some());
                assert!(v.try_lock_until(Instant::now()).is_some());
                let leaked = MutexGuard::leak(M.lock());
                *leaked += 1;
                // SAFETY: the guard was leaked on this thread.
                unsafe { M.force_unlock() };
                std::mem::forget(M.lock());
                // SAFETY: as above.
                unsafe { M.force_unlock_fair() };
                let _: *mut u32 = M.data_ptr();
                // SAFETY: the raw lock is used by the contract (lock, then unlock).
                unsafe {
                    let raw: &RawMutex = M.raw();
                    raw.lock();
                    raw.unlock();
                }

                // FairMutex.
                {
                    let g: FairMutexGuard<'_, u32> = F.lock();
                    let m: MappedFairMutexGuard<'_, u32> = FairMutexGuard::map(g, |x| x);
                    drop(m);
                    let _: &RawFairMutex = unsafe { F.raw() };
                }

                // ReentrantMutex.
                {
                    let a: ReentrantMutexGuard<'_, u32> = R.lock();
                    let b = R.try_lock().expect("owner re-enters");
                    let c = R
                        .try_lock_for(Duration::from_millis(1))
                        .expect("owner re-enters");
                    assert!(R.is_owned_by_current_thread());
                    let m: MappedReentrantMutexGuard<'_, u32> = ReentrantMutexGuard::map(c, |x| x);
                    assert_eq!(*m + *a + *b, 0);
                }
                let _ = RawThreadId;

                // RwLock and its guards.
                {
                    let r: RwLockReadGuard<'_, u32> = W.read();
                    let r2 = W.read_recursive();
                    let m: MappedRwLockReadGuard<'_, u32> = RwLockReadGuard::map(r, |x| x);
                    drop((m, r2));
                    let u: RwLockUpgradableReadGuard<'_, u32> = W.upgradable_read();
                    let mut w: RwLockWriteGuard<'_, u32> = RwLockUpgradableReadGuard::upgrade(u);
                    *w += 1;
                    let u = RwLockWriteGuard::downgrade_to_upgradable(w);
                    let w = RwLockUpgradableReadGuard::try_upgrade(u).expect("no readers");
                    let mw: MappedRwLockWriteGuard<'_, u32> = RwLockWriteGuard::map(w, |x| x);
                    drop(mw);
                    let w = W.write();
                    let r = RwLockWriteGuard::downgrade(w);
                    drop(r);
                    let mut u = W.upgradable_read();
                    u.with_upgraded(|x| *x += 1);
                    let r = RwLockUpgradableReadGuard::downgrade(u);
                    drop(r);
                    let _: &RawRwLock = unsafe { W.raw() };
                    assert!(W.try_write_for(Duration::from_millis(1)).is_some());
                    assert!(W.try_upgradable_read().is_some());
                }

                // Condvar.
                let pair = Arc::new((Mutex::new(false), Condvar::new()));
                let p2 = pair.clone();
                let t = std::thread::spawn(move || {
                    *p2.0.lock() = true;
                    p2.1.notify_all();
                });
                {
                    let mut g = pair.0.lock();
                    while !*g {
                        let r: WaitTimeoutResult =
                            pair.1.wait_for(&mut g, Duration::from_millis(50));
                        let _ = r.timed_out();
                    }
                }
                t.join().unwrap();
                let _ = pair.1.notify_one();

                // Once.
                let mut ran = 0;
                ONCE.call_once(|| ran += 1);
                ONCE.call_once(|| ran += 1);
                assert_eq!(ran, 1);
                let s: OnceState = ONCE.state();
                assert!(s.done() && !s.poisoned());
                Once::new().call_once_force(|s| assert!(!s.poisoned()));
                let _ = Once::default();

                // The raw locks through lock_api's traits.
                let raw = <RawMutex as lock_api::RawMutex>::INIT;
                raw.lock();
                // SAFETY: locked just above.
                unsafe { raw.unlock() };
                let raw = <RawRwLock as lock_api::RawRwLock>::INIT;
                raw.lock_shared();
                // SAFETY: locked just above.
                unsafe { raw.unlock_shared() };

                arc();
            }

            #[cfg(feature = "arc_lock")]
            fn arc() {
                use $k::{
                    ArcMutexGuard, ArcReentrantMutexGuard, ArcRwLockReadGuard,
                    ArcRwLockUpgradableReadGuard, ArcRwLockWriteGuard,
                };
                let m = Arc::new(Mutex::new(1));
                let g: ArcMutexGuard<RawMutex, u32> = m.lock_arc();
                drop(g);
                assert!(m.try_lock_arc().is_some());
                assert!(m.try_lock_arc_for(Duration::from_millis(1)).is_some());
                let f = Arc::new(FairMutex::new(1));
                let g: ArcMutexGuard<RawFairMutex, u32> = f.lock_arc();
                drop(g);
                let r = Arc::new(ReentrantMutex::new(1));
                let g: ArcReentrantMutexGuard<RawMutex, RawThreadId, u32> = r.lock_arc();
                let g2 = r.try_lock_arc().expect("owner re-enters");
                drop((g, g2));
                let l = Arc::new(RwLock::new(1));
                let rg: ArcRwLockReadGuard<RawRwLock, u32> = l.read_arc();
                let rg2 = l.read_arc_recursive();
                drop((rg, rg2));
                let wg: ArcRwLockWriteGuard<RawRwLock, u32> = l.write_arc();
                let rg = ArcRwLockWriteGuard::downgrade(wg);
                drop(rg);
                let ug: ArcRwLockUpgradableReadGuard<RawRwLock, u32> = l.upgradable_read_arc();
                let wg = ArcRwLockUpgradableReadGuard::upgrade(ug);
                drop(wg);
                assert!(l.try_write_arc().is_some());
                assert!(l.try_read_arc_for(Duration::from_millis(1)).is_some());
                assert!(l.try_upgradable_read_arc().is_some());
            }

            #[cfg(not(feature = "arc_lock"))]
            fn arc() {}
        }
    };
}

exercise!(with_parking_lot, parking_lot);
exercise!(with_lockcheck, lockcheck);

#[test]
fn the_same_code_runs_on_parking_lot() {
    with_parking_lot::run();
}

#[test]
fn the_same_code_runs_on_lockcheck() {
    with_lockcheck::run();
    assert!(
        lockcheck::violations().is_empty(),
        "{:#?}",
        lockcheck::violations()
    );
}
