//! `tokio::sync::RwLock`, instrumented. As tokio's: a fair semaphore of `max_readers` permits, a
//! read takes one, a write takes all; a writer that queues blocks every later reader.

use super::mutex::fmt_via_deref;
use super::track::{Hold, Pre, Req};
use super::{
    acquire, block_checked, precheck, try_acquire, try_lock_error, Checked, Sem, TryLockError,
};
use crate::checked::class::{ClassSrc, Meta};
use crate::checked::report::Verdict;
use lockcheck_core::trace::{LockKind, Mode};
use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::Arc;

/// tokio's default and largest number of concurrent readers.
const MAX_READS: u32 = u32::MAX >> 3;

/// An asynchronous, fair reader-writer lock with `tokio::sync::RwLock`'s API, checked by
/// lockcheck (a second `read()` in the task that holds a read is reported: see the module docs).
pub struct RwLock<T: ?Sized> {
    meta: Meta,
    mr: u32,
    s: Sem,
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
    s: &'a Sem,
    data: *const T,
    hold: Hold,
    marker: PhantomData<&'a T>,
}

/// The write hold of an [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    s: &'a Sem,
    data: *mut T,
    permits: u32,
    hold: Hold,
    marker: PhantomData<&'a mut T>,
}

/// A write hold narrowed to a part of the value ([`RwLockWriteGuard::map`]).
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockMappedWriteGuard<'a, T: ?Sized> {
    s: &'a Sem,
    data: *mut T,
    permits: u32,
    hold: Hold,
    marker: PhantomData<&'a mut T>,
}

/// A read hold of an `Arc`'d [`RwLock`] (`read_owned`), possibly narrowed to a `U`.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct OwnedRwLockReadGuard<T: ?Sized, U: ?Sized = T> {
    lock: Arc<RwLock<T>>,
    data: *const U,
    hold: Hold,
}

/// The write hold of an `Arc`'d [`RwLock`] (`write_owned`).
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct OwnedRwLockWriteGuard<T: ?Sized> {
    lock: Arc<RwLock<T>>,
    data: *mut T,
    hold: Hold,
}

/// An owned write hold narrowed to a part of the value.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct OwnedRwLockMappedWriteGuard<T: ?Sized, U: ?Sized = T> {
    lock: Arc<RwLock<T>>,
    data: *mut U,
    hold: Hold,
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
            owned,
        }
    }

    fn read_guard(&self, hold: Hold) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard {
            s: &self.s,
            data: self.c.get(),
            hold,
            marker: PhantomData,
        }
    }

    fn write_guard(&self, hold: Hold) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard {
            s: &self.s,
            data: self.c.get(),
            permits: self.mr,
            hold,
            marker: PhantomData,
        }
    }

    /// Read-locks, waiting while a writer holds it or is queued (fair).
    #[track_caller]
    pub fn read(&self) -> impl Future<Output = RwLockReadGuard<'_, T>> {
        let site = Location::caller();
        let pre = precheck(&self.s, &self.req(false, site, false));
        Checked(async move {
            let hold = acquire(&self.s, self.req(false, site, false), pre)
                .await?
                .expect("the semaphore of a RwLock is never closed");
            Ok(self.read_guard(hold))
        })
    }

    /// Read-locks, blocking the current thread (not for async contexts).
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
        let hold = acquire(&self.s, self.req(false, site, false), pre)
            .await?
            .expect("the semaphore of a RwLock is never closed");
        Ok(self.read_guard(hold))
    }

    async fn write_at(
        &self,
        site: &'static Location<'static>,
        pre: Pre,
    ) -> Result<RwLockWriteGuard<'_, T>, Verdict> {
        let hold = acquire(&self.s, self.req(true, site, false), pre)
            .await?
            .expect("the semaphore of a RwLock is never closed");
        Ok(self.write_guard(hold))
    }

    /// Read-locks an `Arc`'d lock; the guard is `'static` (see the module docs on owned guards).
    #[track_caller]
    pub fn read_owned(self: Arc<Self>) -> impl Future<Output = OwnedRwLockReadGuard<T>> {
        let site = Location::caller();
        let pre = precheck(&self.s, &self.req(false, site, true));
        Checked(async move {
            let hold = acquire(&self.s, self.req(false, site, true), pre)
                .await?
                .expect("the semaphore of a RwLock is never closed");
            let data = self.c.get() as *const T;
            Ok(OwnedRwLockReadGuard {
                lock: self,
                data,
                hold,
            })
        })
    }

    /// Read-locks if possible right now.
    #[track_caller]
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T>, TryLockError> {
        match try_acquire(&self.s, self.req(false, Location::caller(), false)) {
            Ok(hold) => Ok(self.read_guard(hold)),
            Err(_) => Err(try_lock_error()),
        }
    }

    /// [`try_read`](Self::try_read) on an `Arc`'d lock.
    #[track_caller]
    pub fn try_read_owned(self: Arc<Self>) -> Result<OwnedRwLockReadGuard<T>, TryLockError> {
        match try_acquire(&self.s, self.req(false, Location::caller(), true)) {
            Ok(hold) => {
                let data = self.c.get() as *const T;
                Ok(OwnedRwLockReadGuard {
                    lock: self,
                    data,
                    hold,
                })
            }
            Err(_) => Err(try_lock_error()),
        }
    }

    /// Write-locks, waiting for every reader and writer to leave.
    #[track_caller]
    pub fn write(&self) -> impl Future<Output = RwLockWriteGuard<'_, T>> {
        let site = Location::caller();
        let pre = precheck(&self.s, &self.req(true, site, false));
        Checked(self.write_at(site, pre))
    }

    /// Write-locks, blocking the current thread (not for async contexts).
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
        let pre = precheck(&self.s, &self.req(true, site, true));
        Checked(async move {
            let hold = acquire(&self.s, self.req(true, site, true), pre)
                .await?
                .expect("the semaphore of a RwLock is never closed");
            let data = self.c.get();
            Ok(OwnedRwLockWriteGuard {
                lock: self,
                data,
                hold,
            })
        })
    }

    /// Write-locks if possible right now.
    #[track_caller]
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, TryLockError> {
        match try_acquire(&self.s, self.req(true, Location::caller(), false)) {
            Ok(hold) => Ok(self.write_guard(hold)),
            Err(_) => Err(try_lock_error()),
        }
    }

    /// [`try_write`](Self::try_write) on an `Arc`'d lock.
    #[track_caller]
    pub fn try_write_owned(self: Arc<Self>) -> Result<OwnedRwLockWriteGuard<T>, TryLockError> {
        match try_acquire(&self.s, self.req(true, Location::caller(), true)) {
            Ok(hold) => {
                let data = self.c.get();
                Ok(OwnedRwLockWriteGuard {
                    lock: self,
                    data,
                    hold,
                })
            }
            Err(_) => Err(try_lock_error()),
        }
    }

    /// The value, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.c.get_mut()
    }

    /// Consumes the lock and returns its value.
    pub fn into_inner(self) -> T
    where
        T: Sized,
    {
        let mut this = ManuallyDrop::new(self);
        crate::checked::forget(&this.meta);
        // SAFETY: `this` is never used or dropped again; the semaphore is dropped in place and
        // the value read out, each exactly once (`meta` needs no drop).
        unsafe {
            std::ptr::drop_in_place(&mut this.s);
            std::ptr::read(&this.c).into_inner()
        }
    }
}

impl<T: ?Sized> Drop for RwLock<T> {
    fn drop(&mut self) {
        crate::checked::forget(&self.meta);
    }
}

impl<T> From<T> for RwLock<T> {
    #[track_caller]
    fn from(s: T) -> Self {
        Self::new(s)
    }
}

impl<T: Default> Default for RwLock<T> {
    #[track_caller]
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.s.try_acquire() {
            Ok(_permit) => {
                // SAFETY: a read permit excludes writers while it lives.
                d.field("data", &unsafe { &*self.c.get() })
            }
            Err(_) => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Takes the hold out of a guard that is not dropped (its permits change hands).
///
/// # Safety
/// `hold` must be a field of `*this`, which is never dropped or used again.
unsafe fn take_hold(hold: &Hold) -> Hold {
    // SAFETY: per the contract.
    unsafe { std::ptr::read(hold) }
}

impl<'a, T: ?Sized> RwLockReadGuard<'a, T> {
    /// Narrows the guard to a part of the value.
    pub fn map<F, U: ?Sized>(this: Self, f: F) -> RwLockReadGuard<'a, U>
    where
        F: FnOnce(&T) -> &U,
    {
        let data = f(&*this) as *const U;
        let this = ManuallyDrop::new(this);
        RwLockReadGuard {
            s: this.s,
            data,
            // SAFETY: `this` is not dropped.
            hold: unsafe { take_hold(&this.hold) },
            marker: PhantomData,
        }
    }

    /// Narrows the guard if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<F, U: ?Sized>(this: Self, f: F) -> Result<RwLockReadGuard<'a, U>, Self>
    where
        F: FnOnce(&T) -> Option<&U>,
    {
        let data = match f(&*this) {
            Some(d) => d as *const U,
            None => return Err(this),
        };
        let this = ManuallyDrop::new(this);
        Ok(RwLockReadGuard {
            s: this.s,
            data,
            // SAFETY: `this` is not dropped.
            hold: unsafe { take_hold(&this.hold) },
            marker: PhantomData,
        })
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.hold.release();
        self.s.add_permits(1);
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read permit excludes writers.
        unsafe { &*self.data }
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// Narrows the guard to a part of the value.
    pub fn map<F, U: ?Sized>(mut this: Self, f: F) -> RwLockMappedWriteGuard<'a, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        let data = f(&mut *this) as *mut U;
        let this = ManuallyDrop::new(this);
        RwLockMappedWriteGuard {
            s: this.s,
            data,
            permits: this.permits,
            // SAFETY: `this` is not dropped.
            hold: unsafe { take_hold(&this.hold) },
            marker: PhantomData,
        }
    }

    /// Narrows the guard if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<F, U: ?Sized>(
        mut this: Self,
        f: F,
    ) -> Result<RwLockMappedWriteGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        // SAFETY: the guard holds every permit.
        let data = match f(unsafe { &mut *this.data }) {
            Some(d) => d as *mut U,
            None => return Err(this),
        };
        let _ = &mut this;
        let this = ManuallyDrop::new(this);
        Ok(RwLockMappedWriteGuard {
            s: this.s,
            data,
            permits: this.permits,
            // SAFETY: `this` is not dropped.
            hold: unsafe { take_hold(&this.hold) },
            marker: PhantomData,
        })
    }

    /// Downgrades to a read hold of a part of the value, without letting a writer in between.
    pub fn downgrade_map<F, U: ?Sized>(this: Self, f: F) -> RwLockReadGuard<'a, U>
    where
        F: FnOnce(&T) -> &U,
    {
        let data = f(&*this) as *const U;
        let r = this.downgrade();
        let r = ManuallyDrop::new(r);
        RwLockReadGuard {
            s: r.s,
            data,
            // SAFETY: `r` is not dropped.
            hold: unsafe { take_hold(&r.hold) },
            marker: PhantomData,
        }
    }

    /// [`downgrade_map`](Self::downgrade_map) if `f` returns `Some`; gives the write guard back
    /// otherwise.
    pub fn try_downgrade_map<F, U: ?Sized>(this: Self, f: F) -> Result<RwLockReadGuard<'a, U>, Self>
    where
        F: FnOnce(&T) -> Option<&U>,
    {
        let data = match f(&*this) {
            Some(d) => d as *const U,
            None => return Err(this),
        };
        let r = ManuallyDrop::new(this.downgrade());
        Ok(RwLockReadGuard {
            s: r.s,
            data,
            // SAFETY: `r` is not dropped.
            hold: unsafe { take_hold(&r.hold) },
            marker: PhantomData,
        })
    }

    /// The guard as a mapped one (of the whole value).
    pub fn into_mapped(this: Self) -> RwLockMappedWriteGuard<'a, T> {
        RwLockWriteGuard::map(this, |v| v)
    }

    /// Turns the write hold into a read hold without letting a writer in between.
    pub fn downgrade(self) -> RwLockReadGuard<'a, T> {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is not dropped.
        let hold = unsafe { take_hold(&this.hold) };
        hold.convert(Mode::Shared);
        this.s.add_permits(this.permits as usize - 1);
        RwLockReadGuard {
            s: this.s,
            data: this.data,
            hold,
            marker: PhantomData,
        }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.hold.release();
        self.s.add_permits(self.permits as usize);
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds every permit.
        unsafe { &*self.data }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds every permit.
        unsafe { &mut *self.data }
    }
}

impl<'a, T: ?Sized> RwLockMappedWriteGuard<'a, T> {
    /// Narrows the guard further.
    pub fn map<F, U: ?Sized>(mut this: Self, f: F) -> RwLockMappedWriteGuard<'a, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        let data = f(&mut *this) as *mut U;
        let this = ManuallyDrop::new(this);
        RwLockMappedWriteGuard {
            s: this.s,
            data,
            permits: this.permits,
            // SAFETY: `this` is not dropped.
            hold: unsafe { take_hold(&this.hold) },
            marker: PhantomData,
        }
    }

    /// Narrows the guard further if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<F, U: ?Sized>(this: Self, f: F) -> Result<RwLockMappedWriteGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        // SAFETY: the guard holds every permit.
        let data = match f(unsafe { &mut *this.data }) {
            Some(d) => d as *mut U,
            None => return Err(this),
        };
        let this = ManuallyDrop::new(this);
        Ok(RwLockMappedWriteGuard {
            s: this.s,
            data,
            permits: this.permits,
            // SAFETY: `this` is not dropped.
            hold: unsafe { take_hold(&this.hold) },
            marker: PhantomData,
        })
    }
}

impl<T: ?Sized> Drop for RwLockMappedWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.hold.release();
        self.s.add_permits(self.permits as usize);
    }
}

impl<T: ?Sized> Deref for RwLockMappedWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds every permit.
        unsafe { &*self.data }
    }
}

impl<T: ?Sized> DerefMut for RwLockMappedWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds every permit.
        unsafe { &mut *self.data }
    }
}

/// Moves the lock and hold out of an owned guard that is not dropped.
///
/// # Safety
/// Both must be fields of a guard that is never dropped or used again.
unsafe fn take_owned<T: ?Sized>(lock: &Arc<RwLock<T>>, hold: &Hold) -> (Arc<RwLock<T>>, Hold) {
    // SAFETY: per the contract.
    unsafe { (std::ptr::read(lock), std::ptr::read(hold)) }
}

impl<T: ?Sized, U: ?Sized> OwnedRwLockReadGuard<T, U> {
    /// Narrows the guard to a part of the value.
    pub fn map<F, V: ?Sized>(this: Self, f: F) -> OwnedRwLockReadGuard<T, V>
    where
        F: FnOnce(&U) -> &V,
    {
        let data = f(&*this) as *const V;
        let this = ManuallyDrop::new(this);
        // SAFETY: `this` is not dropped.
        let (lock, hold) = unsafe { take_owned(&this.lock, &this.hold) };
        OwnedRwLockReadGuard { lock, data, hold }
    }

    /// Narrows the guard if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<F, V: ?Sized>(this: Self, f: F) -> Result<OwnedRwLockReadGuard<T, V>, Self>
    where
        F: FnOnce(&U) -> Option<&V>,
    {
        let data = match f(&*this) {
            Some(d) => d as *const V,
            None => return Err(this),
        };
        let this = ManuallyDrop::new(this);
        // SAFETY: `this` is not dropped.
        let (lock, hold) = unsafe { take_owned(&this.lock, &this.hold) };
        Ok(OwnedRwLockReadGuard { lock, data, hold })
    }

    /// The lock this guard holds.
    pub fn rwlock(this: &Self) -> &Arc<RwLock<T>> {
        &this.lock
    }
}

impl<T: ?Sized, U: ?Sized> Drop for OwnedRwLockReadGuard<T, U> {
    fn drop(&mut self) {
        self.hold.release();
        self.lock.s.add_permits(1);
    }
}

impl<T: ?Sized, U: ?Sized> Deref for OwnedRwLockReadGuard<T, U> {
    type Target = U;
    fn deref(&self) -> &U {
        self.hold.touch();
        // SAFETY: a read permit excludes writers.
        unsafe { &*self.data }
    }
}

impl<T: ?Sized> OwnedRwLockWriteGuard<T> {
    /// Narrows the guard to a part of the value.
    pub fn map<F, U: ?Sized>(mut this: Self, f: F) -> OwnedRwLockMappedWriteGuard<T, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        let data = f(&mut *this) as *mut U;
        let this = ManuallyDrop::new(this);
        // SAFETY: `this` is not dropped.
        let (lock, hold) = unsafe { take_owned(&this.lock, &this.hold) };
        OwnedRwLockMappedWriteGuard { lock, data, hold }
    }

    /// Narrows the guard if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<F, U: ?Sized>(
        mut this: Self,
        f: F,
    ) -> Result<OwnedRwLockMappedWriteGuard<T, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        // SAFETY: the guard holds every permit.
        let data = match f(unsafe { &mut *this.data }) {
            Some(d) => d as *mut U,
            None => return Err(this),
        };
        let _ = &mut this;
        let this = ManuallyDrop::new(this);
        // SAFETY: `this` is not dropped.
        let (lock, hold) = unsafe { take_owned(&this.lock, &this.hold) };
        Ok(OwnedRwLockMappedWriteGuard { lock, data, hold })
    }

    /// Downgrades to a read hold of a part of the value, without letting a writer in between.
    pub fn downgrade_map<F, U: ?Sized>(this: Self, f: F) -> OwnedRwLockReadGuard<T, U>
    where
        F: FnOnce(&T) -> &U,
    {
        let data = f(&*this) as *const U;
        OwnedRwLockReadGuard::map(this.downgrade(), |_| {
            // SAFETY: `data` points into the value, which the read hold keeps alive and unwritten.
            unsafe { &*data }
        })
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
        let data = match f(&*this) {
            Some(d) => d as *const U,
            None => return Err(this),
        };
        Ok(OwnedRwLockReadGuard::map(this.downgrade(), |_| {
            // SAFETY: as in `downgrade_map`.
            unsafe { &*data }
        }))
    }

    /// The guard as a mapped one (of the whole value).
    pub fn into_mapped(this: Self) -> OwnedRwLockMappedWriteGuard<T> {
        OwnedRwLockWriteGuard::map(this, |v| v)
    }

    /// Turns the write hold into a read hold without letting a writer in between.
    pub fn downgrade(self) -> OwnedRwLockReadGuard<T> {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is not dropped.
        let (lock, hold) = unsafe { take_owned(&this.lock, &this.hold) };
        hold.convert(Mode::Shared);
        lock.s.add_permits(lock.mr as usize - 1);
        OwnedRwLockReadGuard {
            data: this.data,
            lock,
            hold,
        }
    }

    /// The lock this guard holds.
    pub fn rwlock(this: &Self) -> &Arc<RwLock<T>> {
        &this.lock
    }
}

impl<T: ?Sized> Drop for OwnedRwLockWriteGuard<T> {
    fn drop(&mut self) {
        self.hold.release();
        self.lock.s.add_permits(self.lock.mr as usize);
    }
}

impl<T: ?Sized> Deref for OwnedRwLockWriteGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.hold.touch();
        // SAFETY: the guard holds every permit.
        unsafe { &*self.data }
    }
}

impl<T: ?Sized> DerefMut for OwnedRwLockWriteGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.hold.touch();
        // SAFETY: the guard holds every permit.
        unsafe { &mut *self.data }
    }
}

impl<T: ?Sized, U: ?Sized> OwnedRwLockMappedWriteGuard<T, U> {
    /// Narrows the guard further.
    pub fn map<F, V: ?Sized>(mut this: Self, f: F) -> OwnedRwLockMappedWriteGuard<T, V>
    where
        F: FnOnce(&mut U) -> &mut V,
    {
        let data = f(&mut *this) as *mut V;
        let this = ManuallyDrop::new(this);
        // SAFETY: `this` is not dropped.
        let (lock, hold) = unsafe { take_owned(&this.lock, &this.hold) };
        OwnedRwLockMappedWriteGuard { lock, data, hold }
    }

    /// Narrows the guard further if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<F, V: ?Sized>(
        this: Self,
        f: F,
    ) -> Result<OwnedRwLockMappedWriteGuard<T, V>, Self>
    where
        F: FnOnce(&mut U) -> Option<&mut V>,
    {
        // SAFETY: the guard holds every permit.
        let data = match f(unsafe { &mut *this.data }) {
            Some(d) => d as *mut V,
            None => return Err(this),
        };
        let this = ManuallyDrop::new(this);
        // SAFETY: `this` is not dropped.
        let (lock, hold) = unsafe { take_owned(&this.lock, &this.hold) };
        Ok(OwnedRwLockMappedWriteGuard { lock, data, hold })
    }

    /// The lock this guard holds.
    pub fn rwlock(this: &Self) -> &Arc<RwLock<T>> {
        &this.lock
    }
}

impl<T: ?Sized, U: ?Sized> Drop for OwnedRwLockMappedWriteGuard<T, U> {
    fn drop(&mut self) {
        self.hold.release();
        self.lock.s.add_permits(self.lock.mr as usize);
    }
}

impl<T: ?Sized, U: ?Sized> Deref for OwnedRwLockMappedWriteGuard<T, U> {
    type Target = U;
    fn deref(&self) -> &U {
        self.hold.touch();
        // SAFETY: the guard holds every permit.
        unsafe { &*self.data }
    }
}

impl<T: ?Sized, U: ?Sized> DerefMut for OwnedRwLockMappedWriteGuard<T, U> {
    fn deref_mut(&mut self) -> &mut U {
        self.hold.touch();
        // SAFETY: the guard holds every permit.
        unsafe { &mut *self.data }
    }
}

fmt_via_deref!(
    RwLockReadGuard<'_, T> => T [T: ?Sized],
    RwLockWriteGuard<'_, T> => T [T: ?Sized],
    RwLockMappedWriteGuard<'_, T> => T [T: ?Sized],
    OwnedRwLockReadGuard<T, U> => U [T: ?Sized, U: ?Sized],
    OwnedRwLockWriteGuard<T> => T [T: ?Sized],
    OwnedRwLockMappedWriteGuard<T, U> => U [T: ?Sized, U: ?Sized],
);
