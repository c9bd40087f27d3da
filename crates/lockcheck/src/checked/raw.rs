//! Raw locks that record: parking_lot's raw locks plus a [`Meta`], implementing `lock_api`'s raw
//! traits so that the whole guard API (map, upgrade, downgrade, arc guards...) comes for free.

use super::class::{ClassSrc, Meta};
use super::hooks::{before_upgrade, converted, lock_blocking, lock_nonblocking, released};
use super::report::Verdict;
use lock_api::{
    GuardNoSend, RawMutex as _, RawMutexTimed as _, RawRwLock as _, RawRwLockRecursive as _,
    RawRwLockRecursiveTimed as _, RawRwLockTimed as _, RawRwLockUpgrade as _,
    RawRwLockUpgradeTimed as _,
};
use lockcheck_core::trace::{How, LockKind, Mode};
use std::panic::Location;
use std::time::{Duration, Instant};

/// An instrumented raw mutex: `parking_lot::RawMutex` plus lockcheck's identity and hooks.
pub struct RawMutex {
    inner: parking_lot::RawMutex,
    pub(crate) meta: Meta,
}

impl RawMutex {
    pub(crate) const fn with_class(src: ClassSrc) -> RawMutex {
        RawMutex {
            inner: <parking_lot::RawMutex as lock_api::RawMutex>::INIT,
            meta: Meta::new(src),
        }
    }
}

impl RawMutex {
    /// Retakes the mutex after a condvar wait: a blocking acquisition at the `wait` call.
    /// `Err`: the verdict to raise (the mutex is not retaken).
    pub(crate) fn relock_at(&self, site: &'static Location<'static>) -> Result<(), Verdict> {
        lock_blocking(
            &self.meta,
            LockKind::Mutex,
            Mode::Exclusive,
            1,
            site,
            || self.inner.try_lock(),
            || self.inner.lock(),
            |d| self.inner.try_lock_for(d),
        )
    }
}

impl std::fmt::Debug for RawMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawMutex")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RawRwLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRwLock")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl Drop for RawMutex {
    fn drop(&mut self) {
        super::forget(&self.meta);
    }
}

// SAFETY: every operation is forwarded to parking_lot's raw mutex, which upholds the contract;
// the bookkeeping around it never touches the lock state.
unsafe impl lock_api::RawMutex for RawMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: RawMutex = RawMutex::with_class(ClassSrc::Anonymous);
    type GuardMarker = GuardNoSend;

    #[track_caller]
    fn lock(&self) {
        let site = Location::caller();
        if let Err(v) = lock_blocking(
            &self.meta,
            LockKind::Mutex,
            Mode::Exclusive,
            1,
            site,
            || self.inner.try_lock(),
            || self.inner.lock(),
            |d| self.inner.try_lock_for(d),
        ) {
            v.raise();
        }
    }

    #[track_caller]
    fn try_lock(&self) -> bool {
        let site = Location::caller();
        lock_nonblocking(
            &self.meta,
            LockKind::Mutex,
            Mode::Exclusive,
            How::Try,
            site,
            || self.inner.try_lock(),
        )
    }

    unsafe fn unlock(&self) {
        released(&self.meta, Mode::Exclusive);
        self.inner.unlock();
    }

    fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }
}

// SAFETY: as above.
unsafe impl lock_api::RawMutexFair for RawMutex {
    unsafe fn unlock_fair(&self) {
        released(&self.meta, Mode::Exclusive);
        self.inner.unlock_fair();
    }

    unsafe fn bump(&self) {
        self.inner.bump();
    }
}

// SAFETY: as above.
unsafe impl lock_api::RawMutexTimed for RawMutex {
    type Duration = Duration;
    type Instant = Instant;

    #[track_caller]
    fn try_lock_for(&self, timeout: Duration) -> bool {
        let site = Location::caller();
        lock_nonblocking(
            &self.meta,
            LockKind::Mutex,
            Mode::Exclusive,
            How::Timed,
            site,
            || self.inner.try_lock_for(timeout),
        )
    }

    #[track_caller]
    fn try_lock_until(&self, timeout: Instant) -> bool {
        let site = Location::caller();
        lock_nonblocking(
            &self.meta,
            LockKind::Mutex,
            Mode::Exclusive,
            How::Timed,
            site,
            || self.inner.try_lock_until(timeout),
        )
    }
}

/// An instrumented raw reader-writer lock: `parking_lot::RawRwLock` plus lockcheck's hooks.
pub struct RawRwLock {
    inner: parking_lot::RawRwLock,
    pub(crate) meta: Meta,
}

impl RawRwLock {
    pub(crate) const fn with_class(src: ClassSrc) -> RawRwLock {
        RawRwLock {
            inner: <parking_lot::RawRwLock as lock_api::RawRwLock>::INIT,
            meta: Meta::new(src),
        }
    }

    /// A blocking acquisition in `mode`; raises a verdict at the caller's (the user's) line.
    #[inline]
    #[track_caller]
    fn blocking(&self, mode: Mode, site: &'static Location<'static>) {
        let i = &self.inner;
        let r = match mode {
            Mode::Exclusive => lock_blocking(
                &self.meta,
                LockKind::Rwlock,
                mode,
                1,
                site,
                || i.try_lock_exclusive(),
                || i.lock_exclusive(),
                |d| i.try_lock_exclusive_for(d),
            ),
            Mode::Upgradable => lock_blocking(
                &self.meta,
                LockKind::Rwlock,
                mode,
                1,
                site,
                || i.try_lock_upgradable(),
                || i.lock_upgradable(),
                |d| i.try_lock_upgradable_for(d),
            ),
            Mode::SharedRecursive => lock_blocking(
                &self.meta,
                LockKind::Rwlock,
                mode,
                1,
                site,
                || i.try_lock_shared_recursive(),
                || i.lock_shared_recursive(),
                |d| i.try_lock_shared_recursive_for(d),
            ),
            Mode::Shared | Mode::Permit => lock_blocking(
                &self.meta,
                LockKind::Rwlock,
                Mode::Shared,
                1,
                site,
                || i.try_lock_shared(),
                || i.lock_shared(),
                |d| i.try_lock_shared_for(d),
            ),
        };
        if let Err(v) = r {
            v.raise();
        }
    }

    #[inline]
    fn attempt(
        &self,
        mode: Mode,
        how: How,
        site: &'static Location<'static>,
        f: impl FnOnce() -> bool,
    ) -> bool {
        lock_nonblocking(&self.meta, LockKind::Rwlock, mode, how, site, f)
    }
}

impl Drop for RawRwLock {
    fn drop(&mut self) {
        super::forget(&self.meta);
    }
}

// SAFETY: every operation is forwarded to parking_lot's raw rwlock.
unsafe impl lock_api::RawRwLock for RawRwLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: RawRwLock = RawRwLock::with_class(ClassSrc::Anonymous);
    type GuardMarker = GuardNoSend;

    #[track_caller]
    fn lock_shared(&self) {
        let site = Location::caller();
        self.blocking(Mode::Shared, site);
    }

    #[track_caller]
    fn try_lock_shared(&self) -> bool {
        let site = Location::caller();
        self.attempt(Mode::Shared, How::Try, site, || {
            self.inner.try_lock_shared()
        })
    }

    unsafe fn unlock_shared(&self) {
        released(&self.meta, Mode::Shared);
        self.inner.unlock_shared();
    }

    #[track_caller]
    fn lock_exclusive(&self) {
        let site = Location::caller();
        self.blocking(Mode::Exclusive, site);
    }

    #[track_caller]
    fn try_lock_exclusive(&self) -> bool {
        let site = Location::caller();
        self.attempt(Mode::Exclusive, How::Try, site, || {
            self.inner.try_lock_exclusive()
        })
    }

    unsafe fn unlock_exclusive(&self) {
        released(&self.meta, Mode::Exclusive);
        self.inner.unlock_exclusive();
    }

    fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }

    fn is_locked_exclusive(&self) -> bool {
        self.inner.is_locked_exclusive()
    }
}

// SAFETY: forwarded.
unsafe impl lock_api::RawRwLockFair for RawRwLock {
    unsafe fn unlock_shared_fair(&self) {
        released(&self.meta, Mode::Shared);
        self.inner.unlock_shared_fair();
    }

    unsafe fn unlock_exclusive_fair(&self) {
        released(&self.meta, Mode::Exclusive);
        self.inner.unlock_exclusive_fair();
    }

    unsafe fn bump_shared(&self) {
        self.inner.bump_shared();
    }

    unsafe fn bump_exclusive(&self) {
        self.inner.bump_exclusive();
    }
}

// SAFETY: forwarded.
unsafe impl lock_api::RawRwLockDowngrade for RawRwLock {
    unsafe fn downgrade(&self) {
        converted(&self.meta, Mode::Exclusive, Mode::Shared);
        self.inner.downgrade();
    }
}

// SAFETY: forwarded.
unsafe impl lock_api::RawRwLockTimed for RawRwLock {
    type Duration = Duration;
    type Instant = Instant;

    #[track_caller]
    fn try_lock_shared_for(&self, timeout: Duration) -> bool {
        let site = Location::caller();
        self.attempt(Mode::Shared, How::Timed, site, || {
            self.inner.try_lock_shared_for(timeout)
        })
    }

    #[track_caller]
    fn try_lock_shared_until(&self, timeout: Instant) -> bool {
        let site = Location::caller();
        self.attempt(Mode::Shared, How::Timed, site, || {
            self.inner.try_lock_shared_until(timeout)
        })
    }

    #[track_caller]
    fn try_lock_exclusive_for(&self, timeout: Duration) -> bool {
        let site = Location::caller();
        self.attempt(Mode::Exclusive, How::Timed, site, || {
            self.inner.try_lock_exclusive_for(timeout)
        })
    }

    #[track_caller]
    fn try_lock_exclusive_until(&self, timeout: Instant) -> bool {
        let site = Location::caller();
        self.attempt(Mode::Exclusive, How::Timed, site, || {
            self.inner.try_lock_exclusive_until(timeout)
        })
    }
}

// SAFETY: forwarded.
unsafe impl lock_api::RawRwLockRecursive for RawRwLock {
    #[track_caller]
    fn lock_shared_recursive(&self) {
        let site = Location::caller();
        self.blocking(Mode::SharedRecursive, site);
    }

    #[track_caller]
    fn try_lock_shared_recursive(&self) -> bool {
        let site = Location::caller();
        self.attempt(Mode::SharedRecursive, How::Try, site, || {
            self.inner.try_lock_shared_recursive()
        })
    }
}

// SAFETY: forwarded.
unsafe impl lock_api::RawRwLockRecursiveTimed for RawRwLock {
    #[track_caller]
    fn try_lock_shared_recursive_for(&self, timeout: Duration) -> bool {
        let site = Location::caller();
        self.attempt(Mode::SharedRecursive, How::Timed, site, || {
            self.inner.try_lock_shared_recursive_for(timeout)
        })
    }

    #[track_caller]
    fn try_lock_shared_recursive_until(&self, timeout: Instant) -> bool {
        let site = Location::caller();
        self.attempt(Mode::SharedRecursive, How::Timed, site, || {
            self.inner.try_lock_shared_recursive_until(timeout)
        })
    }
}

// SAFETY: forwarded.
unsafe impl lock_api::RawRwLockUpgrade for RawRwLock {
    #[track_caller]
    fn lock_upgradable(&self) {
        let site = Location::caller();
        self.blocking(Mode::Upgradable, site);
    }

    #[track_caller]
    fn try_lock_upgradable(&self) -> bool {
        let site = Location::caller();
        self.attempt(Mode::Upgradable, How::Try, site, || {
            self.inner.try_lock_upgradable()
        })
    }

    unsafe fn unlock_upgradable(&self) {
        released(&self.meta, Mode::Upgradable);
        self.inner.unlock_upgradable();
    }

    #[track_caller]
    unsafe fn upgrade(&self) {
        if let Some(v) = before_upgrade(&self.meta, Location::caller()) {
            v.raise();
        }
        self.inner.upgrade();
        converted(&self.meta, Mode::Upgradable, Mode::Exclusive);
    }

    unsafe fn try_upgrade(&self) -> bool {
        let ok = self.inner.try_upgrade();
        if ok {
            converted(&self.meta, Mode::Upgradable, Mode::Exclusive);
        }
        ok
    }
}

// SAFETY: forwarded.
unsafe impl lock_api::RawRwLockUpgradeFair for RawRwLock {
    unsafe fn unlock_upgradable_fair(&self) {
        released(&self.meta, Mode::Upgradable);
        self.inner.unlock_upgradable_fair();
    }

    unsafe fn bump_upgradable(&self) {
        self.inner.bump_upgradable();
    }
}

// SAFETY: forwarded.
unsafe impl lock_api::RawRwLockUpgradeDowngrade for RawRwLock {
    unsafe fn downgrade_upgradable(&self) {
        converted(&self.meta, Mode::Upgradable, Mode::Shared);
        self.inner.downgrade_upgradable();
    }

    unsafe fn downgrade_to_upgradable(&self) {
        converted(&self.meta, Mode::Exclusive, Mode::Upgradable);
        self.inner.downgrade_to_upgradable();
    }
}

// SAFETY: forwarded.
unsafe impl lock_api::RawRwLockUpgradeTimed for RawRwLock {
    #[track_caller]
    fn try_lock_upgradable_for(&self, timeout: Duration) -> bool {
        let site = Location::caller();
        self.attempt(Mode::Upgradable, How::Timed, site, || {
            self.inner.try_lock_upgradable_for(timeout)
        })
    }

    #[track_caller]
    fn try_lock_upgradable_until(&self, timeout: Instant) -> bool {
        let site = Location::caller();
        self.attempt(Mode::Upgradable, How::Timed, site, || {
            self.inner.try_lock_upgradable_until(timeout)
        })
    }

    unsafe fn try_upgrade_for(&self, timeout: Duration) -> bool {
        let ok = self.inner.try_upgrade_for(timeout);
        if ok {
            converted(&self.meta, Mode::Upgradable, Mode::Exclusive);
        }
        ok
    }

    unsafe fn try_upgrade_until(&self, timeout: Instant) -> bool {
        let ok = self.inner.try_upgrade_until(timeout);
        if ok {
            converted(&self.meta, Mode::Upgradable, Mode::Exclusive);
        }
        ok
    }
}
