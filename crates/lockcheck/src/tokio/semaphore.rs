//! `tokio::sync::Semaphore`, instrumented: permits are holds of the task that acquired them.

use super::guard::Grant;
use super::track::{Hold, Pre, Req};
use super::{
    acquire, block_checked, precheck, try_acquire, Acquire, AcquireError, Checked, Sem,
    TryAcquireError,
};
use crate::checked::class::{ClassSrc, Meta};
use crate::checked::report::Verdict;
use lockcheck_core::trace::{LockKind, Mode};
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A fair counting semaphore with `tokio::sync::Semaphore`'s API, checked by lockcheck.
pub struct Semaphore {
    meta: Meta,
    pub(super) s: Sem,
    /// Its permits, free and held (and those tokio set aside for a queued `acquire_many`):
    /// `new`'s, plus `add_permits`', less those forgotten. tokio does not say it, and free plus
    /// held is too low while permits wait in the queue, which would make a semaphore that has
    /// enough look exhausted.
    total: AtomicUsize,
}

/// Permits of a [`Semaphore`], given back when dropped.
#[must_use]
pub struct SemaphorePermit<'a> {
    g: Grant<&'a Semaphore>,
}

/// Permits of an `Arc`'d [`Semaphore`] (`acquire_owned`): `'static`, made to be moved into a
/// spawned task (see the module docs on owned guards).
#[must_use]
pub struct OwnedSemaphorePermit {
    g: Grant<Arc<Semaphore>>,
}

impl Semaphore {
    /// The most permits a semaphore can hold (tokio's limit).
    pub const MAX_PERMITS: usize = Sem::MAX_PERMITS;

    /// A semaphore with `permits` permits, of the class of the caller's location.
    #[track_caller]
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            meta: Meta::new(ClassSrc::Site(Location::caller())),
            s: Sem::new(permits),
            total: AtomicUsize::new(permits),
        }
    }

    /// [`new`](Self::new) in a `const` context (statics).
    #[track_caller]
    pub const fn const_new(permits: usize) -> Semaphore {
        Semaphore {
            meta: Meta::new(ClassSrc::Site(Location::caller())),
            s: Sem::const_new(permits),
            total: AtomicUsize::new(permits),
        }
    }

    /// A semaphore of the class `name` (lockcheck's addition).
    pub const fn named(name: &'static str, permits: usize) -> Semaphore {
        Semaphore {
            meta: Meta::new(ClassSrc::Named(name)),
            s: Sem::const_new(permits),
            total: AtomicUsize::new(permits),
        }
    }

    fn req(&self, n: u32, site: &'static Location<'static>, owned: bool) -> Req<'_> {
        Req {
            meta: &self.meta,
            kind: LockKind::Semaphore,
            mode: Mode::Permit,
            site,
            permits: n,
            capacity: self.total.load(Ordering::Relaxed),
            owned,
        }
    }

    /// Permits available right now.
    pub fn available_permits(&self) -> usize {
        self.s.available_permits()
    }

    /// Adds `n` permits.
    pub fn add_permits(&self, n: usize) {
        self.total.fetch_add(n, Ordering::Relaxed);
        self.s.add_permits(n)
    }

    /// Removes up to `n` available permits; returns how many were removed (the trace says so
    /// before the next request: the analyzer counts the permits held against what is left).
    pub fn forget_permits(&self, n: usize) -> usize {
        let gone = self.s.forget_permits(n);
        self.forgot(gone);
        gone
    }

    /// `n` permits left for good: fewer to count. The trace says so with the count of each later
    /// request (see `Req::capacity`), not here: this thread's stream may reach the file after a
    /// request of another thread that already saw the lower count.
    fn forgot(&self, n: usize) {
        self.total.fetch_sub(n, Ordering::Relaxed);
    }

    /// Acquires one permit, waiting (fairly) until one is free.
    #[track_caller]
    pub fn acquire(&self) -> impl Future<Output = Result<SemaphorePermit<'_>, AcquireError>> {
        self.acquire_many_now(1, Location::caller())
    }

    /// Acquires `n` permits at once.
    #[track_caller]
    pub fn acquire_many(
        &self,
        n: u32,
    ) -> impl Future<Output = Result<SemaphorePermit<'_>, AcquireError>> {
        self.acquire_many_now(n, Location::caller())
    }

    /// The future of `acquire`/`acquire_many` (see `tokio::Acquire`).
    fn acquire_many_now(
        &self,
        n: u32,
        site: &'static Location<'static>,
    ) -> impl Future<Output = Result<SemaphorePermit<'_>, AcquireError>> {
        Acquire::new(
            &self.s,
            self.req(n, site, false),
            move |hold: Result<Hold, _>| {
                hold.map(|hold| SemaphorePermit {
                    g: Grant::new(self, n, hold),
                })
            },
        )
    }

    /// The checks that need no wait, at the user's call (see `tokio::precheck`).
    #[track_caller]
    fn pre(&self, n: u32, site: &'static Location<'static>, owned: bool) -> Pre {
        precheck(&self.s, &self.req(n, site, owned))
    }

    async fn acquire_many_at(
        &self,
        n: u32,
        site: &'static Location<'static>,
        pre: Pre,
    ) -> Result<Result<SemaphorePermit<'_>, AcquireError>, Verdict> {
        let hold = acquire(&self.s, self.req(n, site, false), pre).await?;
        Ok(hold.map(|hold| SemaphorePermit {
            g: Grant::new(self, n, hold),
        }))
    }

    /// Acquires one permit if one is free right now.
    #[track_caller]
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many_at(1, Location::caller())
    }

    /// Acquires `n` permits if they are free right now.
    #[track_caller]
    pub fn try_acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many_at(n, Location::caller())
    }

    fn try_acquire_many_at(
        &self,
        n: u32,
        site: &'static Location<'static>,
    ) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        let hold = try_acquire(&self.s, self.req(n, site, false))?;
        Ok(SemaphorePermit {
            g: Grant::new(self, n, hold),
        })
    }

    /// Acquires one permit, blocking the current thread (not for async contexts).
    ///
    /// # Panics
    ///
    /// Within an asynchronous execution context, as tokio's; on a violation under
    /// `LOCKCHECK=panic` (see [`crate::tokio`]).
    #[track_caller]
    pub fn blocking_acquire(&self) -> Result<SemaphorePermit<'_>, AcquireError> {
        let pre = self.pre(1, Location::caller(), false);
        block_checked(self.acquire_many_at(1, Location::caller(), pre))
    }

    /// Acquires `n` permits, blocking the current thread.
    ///
    /// # Panics
    ///
    /// Within an asynchronous execution context, as tokio's; on a violation under
    /// `LOCKCHECK=panic` (see [`crate::tokio`]).
    #[track_caller]
    pub fn blocking_acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_>, AcquireError> {
        let pre = self.pre(n, Location::caller(), false);
        block_checked(self.acquire_many_at(n, Location::caller(), pre))
    }

    /// Acquires one permit of an `Arc`'d semaphore; the permit is `'static`.
    #[track_caller]
    pub fn acquire_owned(
        self: Arc<Self>,
    ) -> impl Future<Output = Result<OwnedSemaphorePermit, AcquireError>> {
        let pre = Pre::NONE;
        Checked(Self::acquire_many_owned_at(
            self,
            1,
            Location::caller(),
            pre,
        ))
    }

    /// Acquires `n` permits of an `Arc`'d semaphore; the permit is `'static`.
    #[track_caller]
    pub fn acquire_many_owned(
        self: Arc<Self>,
        n: u32,
    ) -> impl Future<Output = Result<OwnedSemaphorePermit, AcquireError>> {
        let pre = Pre::NONE;
        Checked(Self::acquire_many_owned_at(
            self,
            n,
            Location::caller(),
            pre,
        ))
    }

    async fn acquire_many_owned_at(
        self: Arc<Self>,
        n: u32,
        site: &'static Location<'static>,
        pre: Pre,
    ) -> Result<Result<OwnedSemaphorePermit, AcquireError>, Verdict> {
        let hold = acquire(&self.s, self.req(n, site, true), pre).await?;
        Ok(hold.map(|hold| OwnedSemaphorePermit {
            g: Grant::new(self, n, hold),
        }))
    }

    /// [`try_acquire`](Self::try_acquire) on an `Arc`'d semaphore.
    #[track_caller]
    pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        Self::try_acquire_many_owned_at(self, 1, Location::caller())
    }

    /// [`try_acquire_many`](Self::try_acquire_many) on an `Arc`'d semaphore.
    #[track_caller]
    pub fn try_acquire_many_owned(
        self: Arc<Self>,
        n: u32,
    ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        Self::try_acquire_many_owned_at(self, n, Location::caller())
    }

    fn try_acquire_many_owned_at(
        self: Arc<Self>,
        n: u32,
        site: &'static Location<'static>,
    ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        let hold = try_acquire(&self.s, self.req(n, site, true))?;
        Ok(OwnedSemaphorePermit {
            g: Grant::new(self, n, hold),
        })
    }

    /// Acquires one permit of an `Arc`'d semaphore, blocking the current thread.
    ///
    /// # Panics
    ///
    /// Within an asynchronous execution context, as tokio's; on a violation under
    /// `LOCKCHECK=panic` (see [`crate::tokio`]).
    #[track_caller]
    pub fn blocking_acquire_owned(self: Arc<Self>) -> Result<OwnedSemaphorePermit, AcquireError> {
        let pre = self.pre(1, Location::caller(), true);
        block_checked(Self::acquire_many_owned_at(
            self,
            1,
            Location::caller(),
            pre,
        ))
    }

    /// Acquires `n` permits of an `Arc`'d semaphore, blocking the current thread.
    ///
    /// # Panics
    ///
    /// Within an asynchronous execution context, as tokio's; on a violation under
    /// `LOCKCHECK=panic` (see [`crate::tokio`]).
    #[track_caller]
    pub fn blocking_acquire_many_owned(
        self: Arc<Self>,
        n: u32,
    ) -> Result<OwnedSemaphorePermit, AcquireError> {
        let pre = self.pre(n, Location::caller(), true);
        block_checked(Self::acquire_many_owned_at(
            self,
            n,
            Location::caller(),
            pre,
        ))
    }

    /// Closes the semaphore: pending and later acquisitions fail.
    pub fn close(&self) {
        self.s.close()
    }

    /// Whether the semaphore is closed.
    pub fn is_closed(&self) -> bool {
        self.s.is_closed()
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        crate::checked::forget(&self.meta);
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("permits", &self.s.available_permits())
            .finish()
    }
}

impl<'a> SemaphorePermit<'a> {
    /// Keeps the permits out of the semaphore for good (they are no longer held).
    pub fn forget(self) {
        let (sem, n) = (self.g.lock, self.g.permits);
        self.g.forget();
        sem.forgot(n as usize);
    }

    /// Merges another permit of the same semaphore into this one.
    ///
    /// # Panics
    /// If `other` is of another semaphore.
    pub fn merge(&mut self, other: Self) {
        assert!(
            std::ptr::eq(self.g.lock, other.g.lock),
            "merging permits from different semaphore instances"
        );
        self.g.merge(other.g);
    }

    /// Splits `n` permits off into a new permit; `None` if this one has fewer.
    pub fn split(&mut self, n: usize) -> Option<Self> {
        Some(SemaphorePermit {
            g: self.g.split(n)?,
        })
    }

    /// The semaphore the permits are of.
    pub fn semaphore(&self) -> &'a Semaphore {
        self.g.lock
    }

    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.g.permits as usize
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.g.permits)
            .finish()
    }
}

impl OwnedSemaphorePermit {
    /// Keeps the permits out of the semaphore for good (they are no longer held).
    pub fn forget(self) {
        let (sem, n) = (Arc::clone(&self.g.lock), self.g.permits);
        self.g.forget();
        sem.forgot(n as usize);
    }

    /// Merges another permit of the same semaphore into this one.
    ///
    /// # Panics
    /// If `other` is of another semaphore.
    pub fn merge(&mut self, other: Self) {
        assert!(
            Arc::ptr_eq(&self.g.lock, &other.g.lock),
            "merging permits from different semaphore instances"
        );
        self.g.merge(other.g);
    }

    /// Splits `n` permits off into a new permit; `None` if this one has fewer.
    pub fn split(&mut self, n: usize) -> Option<Self> {
        Some(OwnedSemaphorePermit {
            g: self.g.split(n)?,
        })
    }

    /// The semaphore the permits are of.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.g.touch().lock
    }

    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.g.touch().permits as usize
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("permits", &self.g.permits)
            .finish()
    }
}
