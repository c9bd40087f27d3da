//! `tokio::sync::RwLock`, instrumented. As tokio's: a fair semaphore of `max_readers` permits, a
//! read takes one, a write takes all; a writer that queues blocks every later reader.

use super::guard::{guard_deref, lock_common, narrow, narrow_mut, narrowed, Grant};
use super::track::{Hold, Pre, Req};
use super::{
    acquire, block_checked, precheck, try_acquire, try_lock_error, Acquire, Checked, Sem,
    TryLockError,
};
use crate::checked::class::{ClassSrc, Meta};
use crate::checked::report::Verdict;
use lockcheck_core::trace::{LockKind, Mode};
use std::cell::UnsafeCell;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::Arc;

/// Why a lock's semaphore never fails an acquire: it is closed by no one.
const NEVER_CLOSED: &str = "the semaphore of a RwLock is never closed";

/// tokio's default and largest number of concurrent readers.
const MAX_READS: u32 = u32::MAX >> 3;

/// An asynchronous, fair reader-writer lock with `tokio::sync::RwLock`'s API, checked by
/// lockcheck (a second `read()` in the task that holds a read is reported: see the module docs).
pub struct RwLock<T: ?Sized> {
    meta: Meta,
    mr: u32,
    pub(super) s: Sem,
    c: UnsafeCell<T>,
}

// SAFETY (all below): the same bounds as tokio's guards, for the same reasons.
unsafe impl<T> Send for RwLock<T> where T: ?Sized + Send {}
// SAFETY: see above.
unsafe impl<T> Sync for RwLock<T> where T: ?Sized + Send + Sync {}
// SAFETY: see above.
unsafe impl<T> Send for RwLockReadGuard<'_, T> where T: ?Sized + Sync {}
// SAFETY: see above.
unsafe impl<T> Sync for RwLockReadGuard<'_, T> where T: ?Sized + Send + Sync {}
// SAFETY: see above.
unsafe impl<T, U> Send for OwnedRwLockReadGuard<T, U>
where
    T: ?Sized + Send + Sync,
    U: ?Sized + Sync,
{
}
// SAFETY: see above.
unsafe impl<T, U> Sync for OwnedRwLockReadGuard<T, U>
where
    T: ?Sized + Send + Sync,
    U: ?Sized + Send + Sync,
{
}
// SAFETY: see above.
unsafe impl<T> Sync for RwLockWriteGuard<'_, T> where T: ?Sized + Send + Sync {}
// SAFETY: see above.
unsafe impl<T> Send for RwLockWriteGuard<'_, T> where T: ?Sized + Send + Sync {}
// SAFETY: see above.
unsafe impl<T> Sync for OwnedRwLockWriteGuard<T> where T: ?Sized + Send + Sync {}
// SAFETY: see above.
unsafe impl<T> Send for OwnedRwLockWriteGuard<T> where T: ?Sized + Send + Sync {}
// SAFETY: see above.
unsafe impl<T> Sync for RwLockMappedWriteGuard<'_, T> where T: ?Sized + Send + Sync {}
// SAFETY: see above.
unsafe impl<T> Send for RwLockMappedWriteGuard<'_, T> where T: ?Sized + Send + Sync {}
// SAFETY: see above.
unsafe impl<T, U> Sync for OwnedRwLockMappedWriteGuard<T, U>
where
    T: ?Sized + Send + Sync,
    U: ?Sized + Send + Sync,
{
}
// SAFETY: see above.
unsafe impl<T, U> Send for OwnedRwLockMappedWriteGuard<T, U>
where
    T: ?Sized + Send + Sync,
    U: ?Sized + Send + Sync,
{
}

/// A read hold of an [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    g: Grant<&'a Sem>,
    data: *const T,
    marker: PhantomData<&'a T>,
}

/// The write hold of an [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    g: Grant<&'a Sem>,
    data: *mut T,
    marker: PhantomData<&'a mut T>,
}

/// A write hold narrowed to a part of the value ([`RwLockWriteGuard::map`]).
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockMappedWriteGuard<'a, T: ?Sized> {
    g: Grant<&'a Sem>,
    data: *mut T,
    marker: PhantomData<&'a mut T>,
}

/// A read hold of an `Arc`'d [`RwLock`] (`read_owned`), possibly narrowed to a `U`.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct OwnedRwLockReadGuard<T: ?Sized, U: ?Sized = T> {
    g: Grant<Arc<RwLock<T>>>,
    data: *const U,
}

/// The write hold of an `Arc`'d [`RwLock`] (`write_owned`).
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct OwnedRwLockWriteGuard<T: ?Sized> {
    g: Grant<Arc<RwLock<T>>>,
    data: *mut T,
}

/// An owned write hold narrowed to a part of the value.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct OwnedRwLockMappedWriteGuard<T: ?Sized, U: ?Sized = T> {
    g: Grant<Arc<RwLock<T>>>,
    data: *mut U,
}

impl<T: ?Sized> RwLock<T> {
    /// Creates an unlocked lock whose class is the caller's location.
    #[track_caller]
    pub fn new(value: T) -> RwLock<T>
    where
        T: Sized,
    {
        Self::build(value, MAX_READS, ClassSrc::Site(Location::caller()))
    }

    /// Creates an unlocked lock admitting at most `max_reads` concurrent readers.
    ///
    /// # Panics
    /// If `max_reads` is more than `u32::MAX >> 3` (as tokio's).
    #[track_caller]
    pub fn with_max_readers(value: T, max_reads: u32) -> RwLock<T>
    where
        T: Sized,
    {
        assert!(
            max_reads <= MAX_READS,
            "a RwLock may not be created with more than {MAX_READS} readers"
        );
        Self::build(value, max_reads, ClassSrc::Site(Location::caller()))
    }

    /// Creates an unlocked lock in a `const` context (statics).
    #[track_caller]
    pub const fn const_new(value: T) -> RwLock<T>
    where
        T: Sized,
    {
        Self::build(value, MAX_READS, ClassSrc::Site(Location::caller()))
    }

    /// [`with_max_readers`](Self::with_max_readers) in a `const` context.
    #[track_caller]
    pub const fn const_with_max_readers(value: T, max_reads: u32) -> RwLock<T>
    where
        T: Sized,
    {
        let max_reads = if max_reads > MAX_READS {
            MAX_READS
        } else {
            max_reads
        };
        Self::build(value, max_reads, ClassSrc::Site(Location::caller()))
    }

    /// Creates an unlocked lock of the class `name` (lockcheck's addition).
    pub const fn named(name: &'static str, value: T) -> RwLock<T>
    where
        T: Sized,
    {
        Self::build(value, MAX_READS, ClassSrc::Named(name))
    }

    const fn build(value: T, mr: u32, src: ClassSrc) -> RwLock<T>
    where
        T: Sized,
    {
        RwLock {
            meta: Meta::new(src),
            mr,
            s: Sem::const_new(mr as usize),
            c: UnsafeCell::new(value),
        }
    }

    fn req(&self, write: bool, site: &'static Location<'static>, owned: bool) -> Req<'_> {
        Req {
            meta: &self.meta,
            kind: LockKind::Rwlock,
            mode: if write { Mode::Exclusive } else { Mode::Shared },
            site,
            permits: if write { self.mr } else { 1 },
            capacity: 0,
            owned,
        }
    }

    /// Waits for the permits (checked: `pre` is the check already made before the first wait).
    async fn acquire(
        &self,
        write: bool,
        site: &'static Location<'static>,
        owned: bool,
        pre: Pre,
    ) -> Result<Hold, Verdict> {
        Ok(acquire(&self.s, self.req(write, site, owned), pre)
            .await?
            .expect(NEVER_CLOSED))
    }

    fn read_guard(&self, hold: Hold) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard {
            g: Grant::new(&self.s, 1, hold),
            data: self.c.get(),
            marker: PhantomData,
        }
    }

    fn write_guard(&self, hold: Hold) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard {
            g: Grant::new(&self.s, self.mr, hold),
            data: self.c.get(),
            marker: PhantomData,
        }
    }

    fn owned_read(this: Arc<Self>, hold: Hold) -> OwnedRwLockReadGuard<T> {
        let data = this.c.get() as *const T;
        OwnedRwLockReadGuard {
            g: Grant::new(this, 1, hold),
            data,
        }
    }

    fn owned_write(this: Arc<Self>, hold: Hold) -> OwnedRwLockWriteGuard<T> {
        let (data, mr) = (this.c.get(), this.mr);
        OwnedRwLockWriteGuard {
            g: Grant::new(this, mr, hold),
            data,
        }
    }

    /// Read-locks, waiting while a writer holds it or is queued (fair).
    #[track_caller]
    pub fn read(&self) -> impl Future<Output = RwLockReadGuard<'_, T>> {
        let site = Location::caller();
        Acquire::new(
            &self.s,
            self.req(false, site, false),
            move |hold: Result<Hold, _>| self.read_guard(hold.expect(NEVER_CLOSED)),
        )
    }

    /// Read-locks, blocking the current thread (not for async contexts).
    ///
    /// # Panics
    ///
    /// Within an asynchronous execution context, as tokio's; on a violation under
    /// `LOCKCHECK=panic` (see [`crate::tokio`]).
    #[track_caller]
    pub fn blocking_read(&self) -> RwLockReadGuard<'_, T> {
        let site = Location::caller();
        let pre = precheck(&self.s, &self.req(false, site, false));
        block_checked(self.read_at(site, pre))
    }

    async fn read_at(
        &self,
        site: &'static Location<'static>,
        pre: Pre,
    ) -> Result<RwLockReadGuard<'_, T>, Verdict> {
        let hold = self.acquire(false, site, false, pre).await?;
        Ok(self.read_guard(hold))
    }

    async fn write_at(
        &self,
        site: &'static Location<'static>,
        pre: Pre,
    ) -> Result<RwLockWriteGuard<'_, T>, Verdict> {
        let hold = self.acquire(true, site, false, pre).await?;
        Ok(self.write_guard(hold))
    }

    /// Read-locks an `Arc`'d lock; the guard is `'static` (see the module docs on owned guards).
    #[track_caller]
    pub fn read_owned(self: Arc<Self>) -> impl Future<Output = OwnedRwLockReadGuard<T>> {
        let site = Location::caller();
        let pre = Pre::NONE;
        Checked(async move {
            let hold = self.acquire(false, site, true, pre).await?;
            Ok(Self::owned_read(self, hold))
        })
    }

    /// Read-locks if possible right now.
    #[track_caller]
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T>, TryLockError> {
        try_acquire(&self.s, self.req(false, Location::caller(), false))
            .map(|hold| self.read_guard(hold))
            .map_err(|_| try_lock_error())
    }

    /// [`try_read`](Self::try_read) on an `Arc`'d lock.
    #[track_caller]
    pub fn try_read_owned(self: Arc<Self>) -> Result<OwnedRwLockReadGuard<T>, TryLockError> {
        try_acquire(&self.s, self.req(false, Location::caller(), true))
            .map(|hold| Self::owned_read(self, hold))
            .map_err(|_| try_lock_error())
    }

    /// Write-locks, waiting for every reader and writer to leave.
    #[track_caller]
    pub fn write(&self) -> impl Future<Output = RwLockWriteGuard<'_, T>> {
        let site = Location::caller();
        Acquire::new(
            &self.s,
            self.req(true, site, false),
            move |hold: Result<Hold, _>| self.write_guard(hold.expect(NEVER_CLOSED)),
        )
    }

    /// Write-locks, blocking the current thread (not for async contexts).
    ///
    /// # Panics
    ///
    /// Within an asynchronous execution context, as tokio's; on a violation under
    /// `LOCKCHECK=panic` (see [`crate::tokio`]).
    #[track_caller]
    pub fn blocking_write(&self) -> RwLockWriteGuard<'_, T> {
        let site = Location::caller();
        let pre = precheck(&self.s, &self.req(true, site, false));
        block_checked(self.write_at(site, pre))
    }

    /// Write-locks an `Arc`'d lock; the guard is `'static`.
    #[track_caller]
    pub fn write_owned(self: Arc<Self>) -> impl Future<Output = OwnedRwLockWriteGuard<T>> {
        let site = Location::caller();
        let pre = Pre::NONE;
        Checked(async move {
            let hold = self.acquire(true, site, true, pre).await?;
            Ok(Self::owned_write(self, hold))
        })
    }

    /// Write-locks if possible right now.
    #[track_caller]
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, TryLockError> {
        try_acquire(&self.s, self.req(true, Location::caller(), false))
            .map(|hold| self.write_guard(hold))
            .map_err(|_| try_lock_error())
    }

    /// [`try_write`](Self::try_write) on an `Arc`'d lock.
    #[track_caller]
    pub fn try_write_owned(self: Arc<Self>) -> Result<OwnedRwLockWriteGuard<T>, TryLockError> {
        try_acquire(&self.s, self.req(true, Location::caller(), true))
            .map(|hold| Self::owned_write(self, hold))
            .map_err(|_| try_lock_error())
    }
}

lock_common!(RwLock, "RwLock");

impl<'a, T: ?Sized> RwLockReadGuard<'a, T> {
    /// Narrows the guard to a part of the value.
    pub fn map<F, U: ?Sized>(this: Self, f: F) -> RwLockReadGuard<'a, U>
    where
        F: FnOnce(&T) -> &U,
    {
        narrowed(Self::try_map(this, |v| Some(f(v))))
    }

    /// Narrows the guard if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<F, U: ?Sized>(this: Self, f: F) -> Result<RwLockReadGuard<'a, U>, Self>
    where
        F: FnOnce(&T) -> Option<&U>,
    {
        narrow(this, f, |this, data| RwLockReadGuard {
            g: this.g,
            data,
            marker: PhantomData,
        })
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// Narrows the guard to a part of the value.
    pub fn map<F, U: ?Sized>(this: Self, f: F) -> RwLockMappedWriteGuard<'a, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        narrowed(Self::try_map(this, |v| Some(f(v))))
    }

    /// Narrows the guard if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<F, U: ?Sized>(this: Self, f: F) -> Result<RwLockMappedWriteGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        narrow_mut(this, f, |this, data| RwLockMappedWriteGuard {
            g: this.g,
            data,
            marker: PhantomData,
        })
    }

    /// Downgrades to a read hold of a part of the value, without letting a writer in between.
    pub fn downgrade_map<F, U: ?Sized>(this: Self, f: F) -> RwLockReadGuard<'a, U>
    where
        F: FnOnce(&T) -> &U,
    {
        RwLockReadGuard::map(this.downgrade(), f)
    }

    /// [`downgrade_map`](Self::downgrade_map) if `f` returns `Some`; gives the write guard back
    /// otherwise.
    pub fn try_downgrade_map<F, U: ?Sized>(this: Self, f: F) -> Result<RwLockReadGuard<'a, U>, Self>
    where
        F: FnOnce(&T) -> Option<&U>,
    {
        narrow(this, f, |this, data| RwLockReadGuard {
            g: this.downgrade().g,
            data,
            marker: PhantomData,
        })
    }

    /// The guard as a mapped one (of the whole value).
    pub fn into_mapped(this: Self) -> RwLockMappedWriteGuard<'a, T> {
        RwLockWriteGuard::map(this, |v| v)
    }

    /// Turns the write hold into a read hold without letting a writer in between.
    pub fn downgrade(self) -> RwLockReadGuard<'a, T> {
        let mut g = self.g;
        g.downgrade();
        RwLockReadGuard {
            g,
            data: self.data,
            marker: PhantomData,
        }
    }
}

impl<'a, T: ?Sized> RwLockMappedWriteGuard<'a, T> {
    /// Narrows the guard further.
    pub fn map<F, U: ?Sized>(this: Self, f: F) -> RwLockMappedWriteGuard<'a, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        narrowed(Self::try_map(this, |v| Some(f(v))))
    }

    /// Narrows the guard further if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<F, U: ?Sized>(this: Self, f: F) -> Result<RwLockMappedWriteGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        narrow_mut(this, f, |this, data| RwLockMappedWriteGuard {
            g: this.g,
            data,
            marker: PhantomData,
        })
    }
}

impl<T: ?Sized, U: ?Sized> OwnedRwLockReadGuard<T, U> {
    /// Narrows the guard to a part of the value.
    pub fn map<F, V: ?Sized>(this: Self, f: F) -> OwnedRwLockReadGuard<T, V>
    where
        F: FnOnce(&U) -> &V,
    {
        narrowed(Self::try_map(this, |v| Some(f(v))))
    }

    /// Narrows the guard if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<F, V: ?Sized>(this: Self, f: F) -> Result<OwnedRwLockReadGuard<T, V>, Self>
    where
        F: FnOnce(&U) -> Option<&V>,
    {
        narrow(this, f, |this, data| OwnedRwLockReadGuard {
            g: this.g,
            data,
        })
    }

    /// The lock this guard holds.
    pub fn rwlock(this: &Self) -> &Arc<RwLock<T>> {
        &this.g.lock
    }
}

impl<T: ?Sized> OwnedRwLockWriteGuard<T> {
    /// Narrows the guard to a part of the value.
    pub fn map<F, U: ?Sized>(this: Self, f: F) -> OwnedRwLockMappedWriteGuard<T, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        narrowed(Self::try_map(this, |v| Some(f(v))))
    }

    /// Narrows the guard if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<F, U: ?Sized>(
        this: Self,
        f: F,
    ) -> Result<OwnedRwLockMappedWriteGuard<T, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        narrow_mut(this, f, |this, data| OwnedRwLockMappedWriteGuard {
            g: this.g,
            data,
        })
    }

    /// Downgrades to a read hold of a part of the value, without letting a writer in between.
    pub fn downgrade_map<F, U: ?Sized>(this: Self, f: F) -> OwnedRwLockReadGuard<T, U>
    where
        F: FnOnce(&T) -> &U,
    {
        OwnedRwLockReadGuard::map(this.downgrade(), f)
    }

    /// [`downgrade_map`](Self::downgrade_map) if `f` returns `Some`; gives the write guard back
    /// otherwise.
    pub fn try_downgrade_map<F, U: ?Sized>(
        this: Self,
        f: F,
    ) -> Result<OwnedRwLockReadGuard<T, U>, Self>
    where
        F: FnOnce(&T) -> Option<&U>,
    {
        narrow(this, f, |this, data| OwnedRwLockReadGuard {
            g: this.downgrade().g,
            data,
        })
    }

    /// The guard as a mapped one (of the whole value).
    pub fn into_mapped(this: Self) -> OwnedRwLockMappedWriteGuard<T> {
        OwnedRwLockWriteGuard::map(this, |v| v)
    }

    /// Turns the write hold into a read hold without letting a writer in between.
    pub fn downgrade(self) -> OwnedRwLockReadGuard<T> {
        let mut g = self.g;
        g.downgrade();
        OwnedRwLockReadGuard { g, data: self.data }
    }

    /// The lock this guard holds.
    pub fn rwlock(this: &Self) -> &Arc<RwLock<T>> {
        &this.g.lock
    }
}

impl<T: ?Sized, U: ?Sized> OwnedRwLockMappedWriteGuard<T, U> {
    /// Narrows the guard further.
    pub fn map<F, V: ?Sized>(this: Self, f: F) -> OwnedRwLockMappedWriteGuard<T, V>
    where
        F: FnOnce(&mut U) -> &mut V,
    {
        narrowed(Self::try_map(this, |v| Some(f(v))))
    }

    /// Narrows the guard further if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<F, V: ?Sized>(
        this: Self,
        f: F,
    ) -> Result<OwnedRwLockMappedWriteGuard<T, V>, Self>
    where
        F: FnOnce(&mut U) -> Option<&mut V>,
    {
        narrow_mut(this, f, |this, data| OwnedRwLockMappedWriteGuard {
            g: this.g,
            data,
        })
    }

    /// The lock this guard holds.
    pub fn rwlock(this: &Self) -> &Arc<RwLock<T>> {
        &this.g.lock
    }
}

// SAFETY (every `deref` below): a read guard's grant holds a read permit (no writer), a write
// guard's every permit; `data` points into the locked value.
guard_deref!(
    RwLockReadGuard<'_, T> => T [T: ?Sized] ro borrowed,
    RwLockWriteGuard<'_, T> => T [T: ?Sized] mut borrowed,
    RwLockMappedWriteGuard<'_, T> => T [T: ?Sized] mut borrowed,
    OwnedRwLockReadGuard<T, U> => U [T: ?Sized, U: ?Sized] ro owned,
    OwnedRwLockWriteGuard<T> => T [T: ?Sized] mut owned,
    OwnedRwLockMappedWriteGuard<T, U> => U [T: ?Sized, U: ?Sized] mut owned,
);
