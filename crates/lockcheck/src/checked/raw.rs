//! Raw locks that record: parking_lot's raw locks plus a [`Meta`], implementing `lock_api`'s raw
//! traits so that the whole guard API (map, upgrade, downgrade, arc guards...) comes for free.

use super::byte_mutex::ByteMutex;
use super::class::{ClassSrc, Meta};
use super::handoff::{self, Owner};
use super::hooks::{
    before_upgrade, converted, lock_blocking, lock_fast, lock_known, lock_nonblocking,
    release_fast, release_kind, released, released_rest, upgrade_wait, upgrade_withdrawn, upgraded,
    upgraded_now, Released, Taken,
};
use super::report::Verdict;
use super::word_rwlock::WordRwLock;
#[cfg(not(feature = "send_guard"))]
use lock_api::GuardNoSend;
use lockcheck_core::trace::{How, LockKind, Mode};
use std::panic::Location;
use std::time::{Duration, Instant};

/// Guards are `Send` with the `send_guard` feature, as parking_lot's: the release of a guard
/// sent to another thread is then a release by a thread that did not acquire it, which
/// `hooks::released` hands back to the acquiring thread.
#[cfg(feature = "send_guard")]
type GuardMarker = lock_api::GuardSend;
#[cfg(not(feature = "send_guard"))]
type GuardMarker = GuardNoSend;

/// For an acquisition whose raw lock is already held (`bump`, a sent guard's release waited
/// for): if its checks panic (a report under `LOCKCHECK=panic`), the lock stays held and its
/// guard will release it while unwinding, so the hold goes back on the held set rather than
/// leave that release looking like another thread's.
struct Rehold<'a> {
    meta: &'a Meta,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
}

impl<'a> Rehold<'a> {
    fn new(meta: &'a Meta, kind: LockKind, mode: Mode, site: &'static Location<'static>) -> Self {
        Rehold {
            meta,
            kind,
            mode,
            site,
        }
    }

    /// The checks passed and the hold was recorded.
    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for Rehold<'_> {
    fn drop(&mut self) {
        // A non-blocking acquisition records the hold without checking it again.
        lock_nonblocking(self.meta, self.kind, self.mode, How::Try, self.site, || {
            true
        });
    }
}

/// An instrumented raw mutex: a raw lock with parking_lot's semantics (`checked::byte_mutex`:
/// eventual fairness, fair unlock, timed locks, `bump`) plus lockcheck's identity and hooks.
///
/// `repr(C)` with the raw lock first: `&self.inner` is `self`, so the inlined lock and unlock
/// pass one pointer to every call they make (no register to save for it).
#[repr(C)]
pub struct RawMutex {
    inner: ByteMutex,
    pub(crate) meta: Meta,
    /// The holder (`send_guard` only).
    owner: Owner,
}

impl RawMutex {
    pub(crate) const fn with_class(src: ClassSrc) -> RawMutex {
        RawMutex {
            // The one-shot try fails until the identity is assigned (`RawMutex::named`).
            inner: ByteMutex::fresh(),
            meta: Meta::new(src),
            owner: Owner::new(),
        }
    }
}

impl RawMutex {
    /// A non-blocking acquisition attempt at `site` (for wrappers whose call path into the raw
    /// lock loses the caller's location).
    #[inline]
    pub(crate) fn try_lock_at(
        &self,
        how: How,
        site: &'static Location<'static>,
        attempt: impl FnOnce(&ByteMutex) -> bool,
    ) -> bool {
        handoff::drain();
        let ok = lock_nonblocking(
            &self.meta,
            LockKind::Mutex,
            Mode::Exclusive,
            how,
            site,
            || attempt(&self.inner),
        );
        if ok {
            self.owner.acquired();
            self.named();
        }
        ok
    }

    /// After an acquisition beyond the fast path: once the lock has its identity, lets the raw
    /// lock's one-shot try succeed (`byte_mutex::FRESH`), so that the fast path
    /// (`hooks::lock_fast`), which takes a lock only through that try, needs no test of its
    /// own for the identity. The full path assigns the identity when it checks; under
    /// `LOCKCHECK=off` it does not, and the lock stays fresh (its raw lock and untracked release
    /// take a fresh lock inline as any other), so that its release still finds no identity and
    /// stays inline too. Clears the flag once per lock (again only if a fair release undid it:
    /// see `ByteMutex::unlock_slow`).
    #[inline]
    fn named(&self) {
        if self.inner.is_fresh() {
            self.name();
        }
    }

    #[cold]
    #[inline(never)]
    fn name(&self) {
        if self.meta.word() != 0 {
            self.inner.clear_fresh();
        }
    }

    /// Bookkeeping of a release, by whichever thread releases.
    #[inline]
    fn release(&self) {
        if self.owner.released_here(&self.meta) {
            released(&self.meta, Mode::Exclusive);
        }
    }

    /// `bump`, modelled as what it may do whether or not a thread waits right now: a release
    /// and a blocking re-acquisition under whatever else this thread holds (so the order
    /// "held locks, then this one" is checked). parking_lot's own `bump` does the work, so the
    /// behaviour is unchanged.
    ///
    /// # Safety
    /// The mutex is held by this thread.
    #[track_caller]
    pub(crate) unsafe fn bump_at(&self, site: &'static Location<'static>) {
        handoff::drain();
        self.release();
        let still_held = Rehold::new(&self.meta, LockKind::Mutex, Mode::Exclusive, site);
        // SAFETY (all three): held by this thread, as the caller promises.
        let checked = lock_blocking(
            &self.meta,
            LockKind::Mutex,
            Mode::Exclusive,
            1,
            site,
            || {
                unsafe { self.inner.bump() };
                true
            },
            || unsafe { self.inner.bump() },
            |_| {
                unsafe { self.inner.bump() };
                true
            },
        );
        if let Err(v) = checked {
            // Not bumped: still held, and the guard releases it while the verdict unwinds.
            drop(still_held);
            v.raise();
        }
        still_held.disarm();
        self.owner.acquired();
    }

    /// `lock` while holding locks: the cached dependency's fast way, else the full path.
    #[inline(never)]
    #[track_caller]
    fn lock_nested(&self, site: &'static Location<'static>) {
        match lock_known(
            &self.meta,
            LockKind::Mutex,
            Mode::Exclusive,
            site,
            // `lock_known` tries only once it has seen the identity assigned: one `lock bts`; a
            // failure goes the full way, which tries again.
            || self.inner.try_lock_named(),
            || self.inner.lock(),
            |d| self.inner.try_lock_for(d),
        ) {
            Taken::Yes => self.owner.acquired(),
            Taken::Nested | Taken::No => self.lock_slow(site),
        }
    }

    /// `unlock` beyond its fast path.
    ///
    /// # Safety
    /// As `unlock`.
    #[inline(never)]
    unsafe fn unlock_rest(&self) {
        released_rest(&self.meta, Mode::Exclusive);
        self.inner.unlock();
    }

    /// `lock` beyond its fast path: the full checks, blocking, raising at the caller's line.
    #[inline(never)]
    #[track_caller]
    fn lock_slow(&self, site: &'static Location<'static>) {
        if let Err(v) = self.relock_at(site) {
            v.raise();
        }
    }

    /// Retakes the mutex after a condvar wait: a blocking acquisition at the `wait` call.
    /// `Err`: the verdict to raise; the mutex is then not held.
    #[inline]
    pub(crate) fn relock_at(&self, site: &'static Location<'static>) -> Result<(), Verdict> {
        handoff::drain();
        #[cfg(feature = "send_guard")]
        if handoff::held_here(&self.meta) && self.inner.try_lock_for(handoff::GRACE) {
            // The hold was a guard sent away and released meanwhile: drop it, then record the
            // acquisition already made.
            handoff::drain();
            let held = Rehold::new(&self.meta, LockKind::Mutex, Mode::Exclusive, site);
            let checked = lock_blocking(
                &self.meta,
                LockKind::Mutex,
                Mode::Exclusive,
                1,
                site,
                || true,
                || (),
                |_| true,
            );
            held.disarm();
            if checked.is_err() {
                // No guard exists yet to release it: the verdict is raised without the mutex.
                // SAFETY: taken just above by this thread.
                unsafe { self.inner.unlock() };
                return checked;
            }
            self.owner.acquired();
            self.named();
            return Ok(());
        }
        lock_blocking(
            &self.meta,
            LockKind::Mutex,
            Mode::Exclusive,
            1,
            site,
            || self.inner.try_lock(),
            || self.inner.lock(),
            |d| self.inner.try_lock_for(d),
        )?;
        self.owner.acquired();
        self.named();
        Ok(())
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

// SAFETY: every operation is forwarded to the byte mutex, which upholds the contract (see its
// tests); the bookkeeping around it never touches the lock state.
unsafe impl lock_api::RawMutex for RawMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: RawMutex = RawMutex::with_class(ClassSrc::Anonymous);
    type GuardMarker = GuardMarker;

    #[inline]
    #[track_caller]
    fn lock(&self) {
        let site = Location::caller();
        handoff::drain();
        // The fast path inline, the rest out of line (see `hooks::lock_fast`).
        match lock_fast::<true>(
            &self.meta,
            LockKind::Mutex,
            Mode::Exclusive,
            site,
            // One exchange: a failure for any reason goes the full way, which tries again.
            || self.inner.try_lock_once(),
            // The identity known assigned (one lock held, the memo hit): one `lock bts`.
            || self.inner.try_lock_named(),
            || self.inner.lock(),
            |d| self.inner.try_lock_for(d),
        ) {
            Taken::Yes => self.owner.acquired(),
            Taken::Nested => self.lock_nested(site),
            Taken::No => self.lock_slow(site),
        }
    }

    #[track_caller]
    fn try_lock(&self) -> bool {
        self.try_lock_at(How::Try, Location::caller(), |m| m.try_lock())
    }

    #[inline]
    unsafe fn unlock(&self) {
        // The usual release (on top of the held stack) inline; the rest and the raw unlock as
        // one tail call, so that the inlined code needs no frame.
        if self.owner.released_here(&self.meta) {
            match release_kind(&self.meta, Mode::Exclusive) {
                // Never tracked, and perhaps still fresh: the raw unlock that stays inline then.
                Released::Untracked => return self.inner.unlock_any(),
                Released::Popped => return self.inner.unlock(),
                Released::Rest => return self.unlock_rest(),
            }
        }
        self.inner.unlock_any();
    }

    fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }
}

// SAFETY: as above.
unsafe impl lock_api::RawMutexFair for RawMutex {
    unsafe fn unlock_fair(&self) {
        self.release();
        self.inner.unlock_fair();
    }

    #[track_caller]
    unsafe fn bump(&self) {
        self.bump_at(Location::caller());
    }
}

// SAFETY: as above.
unsafe impl lock_api::RawMutexTimed for RawMutex {
    type Duration = Duration;
    type Instant = Instant;

    #[track_caller]
    fn try_lock_for(&self, timeout: Duration) -> bool {
        self.try_lock_at(How::Timed, Location::caller(), |m| m.try_lock_for(timeout))
    }

    #[track_caller]
    fn try_lock_until(&self, timeout: Instant) -> bool {
        self.try_lock_at(How::Timed, Location::caller(), |m| {
            m.try_lock_until(timeout)
        })
    }
}

/// An instrumented raw reader-writer lock: a raw lock with parking_lot's semantics
/// (`checked::word_rwlock`: writer preference, upgradable reads, eventual fairness, fair unlocks,
/// timed locks, `bump_*`) plus lockcheck's identity and hooks.
///
/// `repr(C)` with the raw lock first, as [`RawMutex`].
#[repr(C)]
pub struct RawRwLock {
    inner: WordRwLock,
    pub(crate) meta: Meta,
    /// The exclusive or upgradable holder (`send_guard` only).
    owner: Owner,
}

impl RawRwLock {
    pub(crate) const fn with_class(src: ClassSrc) -> RawRwLock {
        RawRwLock {
            inner: WordRwLock::new(),
            meta: Meta::new(src),
            owner: Owner::new(),
        }
    }

    /// A shared or exclusive acquisition: the fast path inline (see `hooks::lock_fast`), else
    /// [`RawRwLock::blocking`] out of line.
    #[inline(always)]
    #[track_caller]
    fn blocking_fast(&self, mode: Mode, site: &'static Location<'static>) {
        handoff::drain();
        let i = &self.inner;
        let taken = match mode {
            Mode::Exclusive => lock_fast::<false>(
                &self.meta,
                LockKind::Rwlock,
                mode,
                site,
                || i.try_lock_exclusive(),
                || i.try_lock_exclusive(),
                || i.lock_exclusive(),
                |d| i.try_lock_exclusive_for(d),
            ),
            _ => lock_fast::<false>(
                &self.meta,
                LockKind::Rwlock,
                Mode::Shared,
                site,
                // One exchange: a failure for any reason goes the full way, which tries again.
                || i.try_lock_shared_once(),
                || i.try_lock_shared_once(),
                || i.lock_shared(),
                |d| i.try_lock_shared_for(d),
            ),
        };
        match taken {
            Taken::Yes => {
                if mode == Mode::Exclusive {
                    self.owner.acquired();
                }
            }
            Taken::Nested => self.blocking_nested(mode, site),
            Taken::No => self.blocking_slow(mode, site),
        }
    }

    /// A shared or exclusive acquisition while holding locks: the cached dependency's fast way,
    /// else the full path.
    #[inline(never)]
    #[track_caller]
    fn blocking_nested(&self, mode: Mode, site: &'static Location<'static>) {
        let i = &self.inner;
        let taken = match mode {
            Mode::Exclusive => lock_known(
                &self.meta,
                LockKind::Rwlock,
                mode,
                site,
                || i.try_lock_exclusive(),
                || i.lock_exclusive(),
                |d| i.try_lock_exclusive_for(d),
            ),
            _ => lock_known(
                &self.meta,
                LockKind::Rwlock,
                Mode::Shared,
                site,
                || i.try_lock_shared_once(),
                || i.lock_shared(),
                |d| i.try_lock_shared_for(d),
            ),
        };
        match taken {
            Taken::Yes => {
                if mode == Mode::Exclusive {
                    self.owner.acquired();
                }
            }
            Taken::Nested | Taken::No => self.blocking_slow(mode, site),
        }
    }

    #[inline(never)]
    #[track_caller]
    fn blocking_slow(&self, mode: Mode, site: &'static Location<'static>) {
        self.blocking(mode, site);
    }

    /// A blocking acquisition in `mode`; raises a verdict at the caller's (the user's) line.
    #[inline]
    #[track_caller]
    fn blocking(&self, mode: Mode, site: &'static Location<'static>) {
        handoff::drain();
        #[cfg(feature = "send_guard")]
        if handoff::held_here(&self.meta) && self.grace(mode) {
            // As in `RawMutex::relock_at`: a sent guard was released meanwhile.
            handoff::drain();
            let m = if mode == Mode::Permit {
                Mode::Shared
            } else {
                mode
            };
            let held = Rehold::new(&self.meta, LockKind::Rwlock, m, site);
            let checked = lock_blocking(
                &self.meta,
                LockKind::Rwlock,
                m,
                1,
                site,
                || true,
                || (),
                |_| true,
            );
            held.disarm();
            if let Err(v) = checked {
                // No guard exists yet to release it: the verdict is raised without the lock.
                // SAFETY: taken in mode `m` just above by this thread.
                unsafe {
                    match m {
                        Mode::Exclusive => self.inner.unlock_exclusive(),
                        Mode::Upgradable => self.inner.unlock_upgradable(),
                        _ => self.inner.unlock_shared(),
                    }
                }
                v.raise();
            }
        } else {
            self.blocking_inner(mode, site);
        }
        #[cfg(not(feature = "send_guard"))]
        self.blocking_inner(mode, site);
        if matches!(mode, Mode::Exclusive | Mode::Upgradable) {
            self.owner.acquired();
        }
    }

    /// Waits up to `handoff::GRACE` for the lock in `mode` (see `handoff`).
    #[cfg(feature = "send_guard")]
    fn grace(&self, mode: Mode) -> bool {
        let (i, t) = (&self.inner, handoff::GRACE);
        match mode {
            Mode::Exclusive => i.try_lock_exclusive_for(t),
            Mode::Upgradable => i.try_lock_upgradable_for(t),
            Mode::SharedRecursive => i.try_lock_shared_recursive_for(t),
            Mode::Shared | Mode::Permit => i.try_lock_shared_for(t),
        }
    }

    #[inline]
    #[track_caller]
    fn blocking_inner(&self, mode: Mode, site: &'static Location<'static>) {
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

    /// A `bump_*` in `mode`, modelled as [`RawMutex`]'s `bump` is: a release, then a blocking
    /// re-acquisition checked against what else this thread holds; `bump` does the work.
    ///
    /// # Safety
    /// `bump` is a `bump_*` of parking_lot's lock in `mode`, which this thread holds.
    #[track_caller]
    unsafe fn bump_as(&self, mode: Mode, site: &'static Location<'static>, bump: impl Fn()) {
        handoff::drain();
        self.release(mode);
        let still_held = Rehold::new(&self.meta, LockKind::Rwlock, mode, site);
        let checked = lock_blocking(
            &self.meta,
            LockKind::Rwlock,
            mode,
            1,
            site,
            || {
                bump();
                true
            },
            &bump,
            |_| {
                bump();
                true
            },
        );
        if let Err(v) = checked {
            // Not bumped: still held, and the guard releases it while the verdict unwinds.
            drop(still_held);
            v.raise();
        }
        still_held.disarm();
        if mode != Mode::Shared {
            self.owner.acquired();
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
        handoff::drain();
        let ok = lock_nonblocking(&self.meta, LockKind::Rwlock, mode, how, site, f);
        if ok && matches!(mode, Mode::Exclusive | Mode::Upgradable) {
            self.owner.acquired();
        }
        ok
    }

    /// A shared or exclusive unlock beyond its fast path.
    ///
    /// # Safety
    /// As `unlock_shared` or `unlock_exclusive` for `mode`.
    #[inline(never)]
    unsafe fn unlock_rest(&self, mode: Mode) {
        released_rest(&self.meta, mode);
        if mode == Mode::Exclusive {
            self.inner.unlock_exclusive();
        } else {
            self.inner.unlock_shared();
        }
    }

    /// Bookkeeping of a release in `mode`, by whichever thread releases. Shared holds have no
    /// single owner: a read guard released elsewhere takes `released`'s foreign path.
    #[inline]
    fn release(&self, mode: Mode) {
        if mode == Mode::Shared || self.owner.released_here(&self.meta) {
            released(&self.meta, mode);
        }
    }
}

impl Drop for RawRwLock {
    fn drop(&mut self) {
        super::forget(&self.meta);
    }
}

// SAFETY: every operation is forwarded to the word lock, which upholds the contract (see its
// tests); the bookkeeping around it never touches the lock state.
unsafe impl lock_api::RawRwLock for RawRwLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: RawRwLock = RawRwLock::with_class(ClassSrc::Anonymous);
    type GuardMarker = GuardMarker;

    #[inline]
    #[track_caller]
    fn lock_shared(&self) {
        let site = Location::caller();
        self.blocking_fast(Mode::Shared, site);
    }

    #[track_caller]
    fn try_lock_shared(&self) -> bool {
        let site = Location::caller();
        self.attempt(Mode::Shared, How::Try, site, || {
            self.inner.try_lock_shared()
        })
    }

    #[inline]
    unsafe fn unlock_shared(&self) {
        // As `RawMutex::unlock`.
        if !release_fast(&self.meta, Mode::Shared) {
            return self.unlock_rest(Mode::Shared);
        }
        self.inner.unlock_shared();
    }

    #[inline]
    #[track_caller]
    fn lock_exclusive(&self) {
        let site = Location::caller();
        self.blocking_fast(Mode::Exclusive, site);
    }

    #[track_caller]
    fn try_lock_exclusive(&self) -> bool {
        let site = Location::caller();
        self.attempt(Mode::Exclusive, How::Try, site, || {
            self.inner.try_lock_exclusive()
        })
    }

    #[inline]
    unsafe fn unlock_exclusive(&self) {
        // As `RawMutex::unlock`.
        if self.owner.released_here(&self.meta) && !release_fast(&self.meta, Mode::Exclusive) {
            return self.unlock_rest(Mode::Exclusive);
        }
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
        self.release(Mode::Shared);
        // A reader wakes nobody but the writer waiting for the readers: fair or not alike.
        self.inner.unlock_shared();
    }

    unsafe fn unlock_exclusive_fair(&self) {
        self.release(Mode::Exclusive);
        self.inner.unlock_exclusive_fair();
    }

    #[track_caller]
    unsafe fn bump_shared(&self) {
        self.bump_as(Mode::Shared, Location::caller(), || {
            self.inner.bump_shared()
        });
    }

    #[track_caller]
    unsafe fn bump_exclusive(&self) {
        self.bump_as(Mode::Exclusive, Location::caller(), || {
            self.inner.bump_exclusive()
        });
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
        self.release(Mode::Upgradable);
        self.inner.unlock_upgradable();
    }

    #[track_caller]
    unsafe fn upgrade(&self) {
        let site = Location::caller();
        let check = before_upgrade(&self.meta, site);
        if let Some(v) = check.verdict {
            upgrade_withdrawn(&self.meta, check.recorded);
            v.raise();
        }
        // The wait for the other readers is one the wait-for graph sees (`upgrade_wait`).
        let waited = upgrade_wait(
            &self.meta,
            site,
            || self.inner.try_upgrade(),
            || self.inner.upgrade(),
            |d| self.inner.try_upgrade_for(d),
        );
        if let Err(v) = waited {
            upgrade_withdrawn(&self.meta, check.recorded);
            v.raise();
        }
        upgraded(&self.meta, check.recorded);
    }

    unsafe fn try_upgrade(&self) -> bool {
        let ok = self.inner.try_upgrade();
        if ok {
            self.upgraded_try();
        }
        ok
    }
}

impl RawRwLock {
    /// A `try_upgrade*` succeeded: noted as a write ([`upgraded_now`]); a cycle that write closes
    /// is raised under `panic`, as a blocking upgrade's is, after the lock goes back to
    /// upgradable (lock_api's guard calls this with its upgradable guard alive, and forgets it
    /// only once this returns: unwinding, that guard releases the lock as upgradable). The trace
    /// shows the `convert` back, as for a stopped blocking upgrade.
    ///
    /// # Safety
    ///
    /// The lock is held exclusively by this thread, just upgraded.
    unsafe fn upgraded_try(&self) {
        if let Some(v) = upgraded_now(&self.meta) {
            converted(&self.meta, Mode::Exclusive, Mode::Upgradable);
            // SAFETY: held exclusively (the caller's contract).
            unsafe { self.inner.downgrade_to_upgradable() };
            v.raise();
        }
    }
}

// SAFETY: forwarded.
unsafe impl lock_api::RawRwLockUpgradeFair for RawRwLock {
    unsafe fn unlock_upgradable_fair(&self) {
        self.release(Mode::Upgradable);
        self.inner.unlock_upgradable_fair();
    }

    #[track_caller]
    unsafe fn bump_upgradable(&self) {
        self.bump_as(Mode::Upgradable, Location::caller(), || {
            self.inner.bump_upgradable()
        });
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
            self.upgraded_try();
        }
        ok
    }

    unsafe fn try_upgrade_until(&self, timeout: Instant) -> bool {
        let ok = self.inner.try_upgrade_until(timeout);
        if ok {
            self.upgraded_try();
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::STATE;
    use super::{ClassSrc, RawMutex};
    use lock_api::RawMutex as _;

    fn depth() -> u8 {
        STATE.with(|s| s.busy_depth())
    }

    #[test]
    fn a_fresh_mutex_is_named_once_it_has_its_identity_and_then_taken_the_fast_way() {
        let m = RawMutex::with_class(ClassSrc::Named("raw.fresh"));
        assert!(m.inner.is_fresh());
        // No identity yet (`LOCKCHECK=off` leaves it so): the flag stays, and the fast try,
        // which would push the hold under identity 0, keeps failing.
        m.named();
        assert!(m.inner.is_fresh() && m.meta.word() == 0);
        assert!(!m.inner.try_lock_once());
        // The first acquisition goes the full way, which assigns the identity; then named.
        m.lock();
        assert_ne!(m.meta.word(), 0);
        assert!(!m.inner.is_fresh());
        assert_eq!(depth(), 1);
        // SAFETY (both): held by this thread.
        unsafe { m.unlock() };
        assert_eq!(depth(), 0);
        m.lock();
        assert_eq!(depth(), 1);
        unsafe { m.unlock() };
        assert_eq!(depth(), 0);
    }
}
