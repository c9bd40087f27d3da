//! A counting semaphore whose permits are tracked like locks: holding a permit while blocking on
//! a lock, or the reverse, makes lock-order edges; a thread that holds every permit and asks for
//! one more is a self-deadlock.

use crate::checked::class::{ClassSrc, Meta};
use lockcheck_core::trace::{How, LockKind, Mode};
use std::marker::PhantomData;
use std::panic::Location;
use std::time::{Duration, Instant};

/// A counting semaphore: at most `permits` holders at a time.
pub struct Semaphore {
    available: parking_lot::Mutex<usize>,
    freed: parking_lot::Condvar,
    permits: usize,
    meta: Meta,
}

/// One permit of a [`Semaphore`], given back when dropped. Not `Send`: it is released by the
/// thread that acquired it, as lock guards are.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    _not_send: PhantomData<*const ()>,
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("permits", &self.permits)
            .field("available", &self.available_permits())
            .finish()
    }
}

impl std::fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SemaphorePermit")
    }
}

impl Semaphore {
    /// A semaphore with `permits` permits, of the class of the caller's location.
    #[track_caller]
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore::build(permits, ClassSrc::Site(Location::caller()))
    }

    /// A semaphore with `permits` permits, of the class `name`.
    pub const fn named(name: &'static str, permits: usize) -> Semaphore {
        Semaphore::build(permits, ClassSrc::Named(name))
    }

    const fn build(permits: usize, src: ClassSrc) -> Semaphore {
        Semaphore {
            available: parking_lot::Mutex::new(permits),
            freed: parking_lot::Condvar::new(),
            permits,
            meta: Meta::new(src),
        }
    }

    /// The number of permits it was created with.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Permits not currently held.
    pub fn available_permits(&self) -> usize {
        *self.available.lock()
    }

    fn take(&self) -> bool {
        let mut n = self.available.lock();
        if *n > 0 {
            *n -= 1;
            true
        } else {
            false
        }
    }

    fn take_blocking(&self, deadline: Option<Instant>) -> bool {
        let mut n = self.available.lock();
        while *n == 0 {
            match deadline {
                None => self.freed.wait(&mut n),
                Some(d) => {
                    if self.freed.wait_until(&mut n, d).timed_out() && *n == 0 {
                        return false;
                    }
                }
            }
        }
        *n -= 1;
        true
    }

    fn permit(&self) -> SemaphorePermit<'_> {
        SemaphorePermit {
            sem: self,
            _not_send: PhantomData,
        }
    }

    /// Takes a permit, blocking until one is free.
    #[track_caller]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        if cfg!(lockcheck_on) {
            let site = Location::caller();
            if let Some(v) = crate::checked::hooks::check_permits(&self.meta, self.permits, site) {
                v.raise();
            }
            // With `send_guard` the full path leaves the mailbox to the entry points.
            crate::checked::handoff::drain();
            let r = crate::checked::hooks::lock_blocking(
                &self.meta,
                LockKind::Semaphore,
                Mode::Permit,
                self.permits,
                site,
                || self.take(),
                || {
                    self.take_blocking(None);
                },
                |d| self.take_blocking(Instant::now().checked_add(d)),
            );
            if let Err(v) = r {
                v.raise();
            }
        } else {
            self.take_blocking(None);
        }
        self.permit()
    }

    /// Takes a permit if one is free now.
    #[track_caller]
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        let ok = if cfg!(lockcheck_on) {
            let site = Location::caller();
            crate::checked::hooks::lock_nonblocking_of(
                &self.meta,
                LockKind::Semaphore,
                Mode::Permit,
                How::Try,
                site,
                self.permits,
                || self.take(),
            )
        } else {
            self.take()
        };
        ok.then(|| self.permit())
    }

    /// Takes a permit, waiting at most `timeout` for one.
    #[track_caller]
    pub fn try_acquire_for(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        let deadline = Instant::now().checked_add(timeout);
        let ok = if cfg!(lockcheck_on) {
            let site = Location::caller();
            crate::checked::hooks::lock_nonblocking_of(
                &self.meta,
                LockKind::Semaphore,
                Mode::Permit,
                How::Timed,
                site,
                self.permits,
                || self.take_blocking(deadline),
            )
        } else {
            self.take_blocking(deadline)
        };
        ok.then(|| self.permit())
    }

    fn give_back(&self) {
        if cfg!(lockcheck_on) {
            crate::checked::hooks::released(&self.meta, Mode::Permit);
        }
        *self.available.lock() += 1;
        self.freed.notify_one();
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        crate::checked::forget(&self.meta);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.give_back();
    }
}
