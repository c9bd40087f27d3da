//! `tokio::sync::Mutex`, instrumented. Built as tokio builds its own (a one-permit fair
//! semaphore and an `UnsafeCell`), so that every guard, owned and mapped ones included, carries
//! its hold without wrapping tokio's guard types.

use super::track::{Hold, Req};
use super::{
    acquire, block_checked, precheck, try_acquire, try_lock_error, Checked, Sem, TryLockError,
};
use crate::checked::class::{ClassSrc, Meta};
use lockcheck_core::trace::{LockKind, Mode};
use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::Arc;

/// An asynchronous mutex with `tokio::sync::Mutex`'s API, checked by lockcheck.
///
/// Its class is its construction site, or the name given to [`Mutex::named`].
pub struct Mutex<T: ?Sized> {
    meta: Meta,
    s: Sem,
    c: UnsafeCell<T>,
}

// SAFETY: as tokio's: the semaphore gives one task at a time access to `c`.
unsafe impl<T> Send for Mutex<T> where T: ?Sized + Send {}
// SAFETY: as tokio's.
unsafe impl<T> Sync for Mutex<T> where T: ?Sized + Send {}
// SAFETY: as tokio's: a shared guard only hands out `&T`.
unsafe impl<T> Sync for MutexGuard<'_, T> where T: ?Sized + Send + Sync {}
// SAFETY: as tokio's.
unsafe impl<T> Sync for OwnedMutexGuard<T> where T: ?Sized + Send + Sync {}
// SAFETY: as tokio's.
unsafe impl<'a, T> Sync for MappedMutexGuard<'a, T> where T: ?Sized + Sync + 'a {}
// SAFETY: as tokio's.
unsafe impl<'a, T> Send for MappedMutexGuard<'a, T> where T: ?Sized + Send + 'a {}
// SAFETY: as tokio's.
unsafe impl<T, U> Sync for OwnedMappedMutexGuard<T, U>
where
    T: ?Sized + Send + Sync,
    U: ?Sized + Send + Sync,
{
}
// SAFETY: as tokio's.
unsafe impl<T, U> Send for OwnedMappedMutexGuard<T, U>
where
    T: ?Sized + Send,
    U: ?Sized + Send,
{
}

/// A held [`Mutex`]; unlocks when dropped.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    lock: &'a Mutex<T>,
    hold: Hold,
}

/// A held [`Mutex`] behind an `Arc` (`lock_owned`): `'static`, movable to another task.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct OwnedMutexGuard<T: ?Sized> {
    lock: Arc<Mutex<T>>,
    hold: Hold,
}

/// A held [`Mutex`] narrowed to a part of its value ([`MutexGuard::map`]).
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MappedMutexGuard<'a, T: ?Sized> {
    s: &'a Sem,
    data: *mut T,
    hold: Hold,
    marker: PhantomData<&'a mut T>,
}

/// An owned guard narrowed to a part of its value ([`OwnedMutexGuard::map`]).
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct OwnedMappedMutexGuard<T: ?Sized, U: ?Sized = T> {
    data: *mut U,
    lock: Arc<Mutex<T>>,
    hold: Hold,
}

impl<T: ?Sized> Mutex<T> {
    /// Creates an unlocked mutex whose class is the caller's location.
    #[track_caller]
    pub fn new(t: T) -> Self
    where
        T: Sized,
    {
        Self::build(t, ClassSrc::Site(Location::caller()))
    }

    /// Creates an unlocked mutex in a `const` context (statics); class: the caller's location.
    #[track_caller]
    pub const fn const_new(t: T) -> Self
    where
        T: Sized,
    {
        Self::build(t, ClassSrc::Site(Location::caller()))
    }

    /// Creates an unlocked mutex of the class `name` (lockcheck's addition).
    pub const fn named(name: &'static str, t: T) -> Self
    where
        T: Sized,
    {
        Self::build(t, ClassSrc::Named(name))
    }

    const fn build(t: T, src: ClassSrc) -> Self
    where
        T: Sized,
    {
        Mutex {
            meta: Meta::new(src),
            s: Sem::const_new(1),
            c: UnsafeCell::new(t),
        }
    }

    fn req(&self, site: &'static Location<'static>, owned: bool) -> Req<'_> {
        Req {
            meta: &self.meta,
            kind: LockKind::Mutex,
            mode: Mode::Exclusive,
            site,
            permits: 1,
            owned,
        }
    }

    /// Locks, waiting asynchronously (fairly: FIFO) while another task holds it. Checked before
    /// the first wait: self-deadlock, lock order, deadlock.
    #[track_caller]
    pub fn lock(&self) -> impl Future<Output = MutexGuard<'_, T>> {
        let site = Location::caller();
        let pre = precheck(&self.s, &self.req(site, false));
        Checked(async move {
            let hold = acquire(&self.s, self.req(site, false), pre)
                .await?
                .expect("the semaphore of a Mutex is never closed");
            Ok(MutexGuard { lock: self, hold })
        })
    }

    /// Locks, blocking the current thread (not for async contexts).
    #[track_caller]
    pub fn blocking_lock(&self) -> MutexGuard<'_, T> {
        let site = Location::caller();
        let pre = precheck(&self.s, &self.req(site, false));
        block_checked(async move {
            let hold = acquire(&self.s, self.req(site, false), pre)
                .await?
                .expect("the semaphore of a Mutex is never closed");
            Ok(MutexGuard { lock: self, hold })
        })
    }

    /// Locks an `Arc`'d mutex, blocking the current thread; the guard is `'static`.
    #[track_caller]
    pub fn blocking_lock_owned(self: Arc<Self>) -> OwnedMutexGuard<T> {
        let site = Location::caller();
        let pre = precheck(&self.s, &self.req(site, true));
        block_checked(async move {
            let hold = acquire(&self.s, self.req(site, true), pre)
                .await?
                .expect("the semaphore of a Mutex is never closed");
            Ok(OwnedMutexGuard { lock: self, hold })
        })
    }

    /// Locks an `Arc`'d mutex; the guard is `'static` (see the module docs on owned guards).
    #[track_caller]
    pub fn lock_owned(self: Arc<Self>) -> impl Future<Output = OwnedMutexGuard<T>> {
        let site = Location::caller();
        let pre = precheck(&self.s, &self.req(site, true));
        Checked(async move {
            let hold = acquire(&self.s, self.req(site, true), pre)
                .await?
                .expect("the semaphore of a Mutex is never closed");
            Ok(OwnedMutexGuard { lock: self, hold })
        })
    }

    /// Locks if free right now (never an ordering edge: it cannot wait).
    #[track_caller]
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        match try_acquire(&self.s, self.req(Location::caller(), false)) {
            Ok(hold) => Ok(MutexGuard { lock: self, hold }),
            Err(_) => Err(try_lock_error()),
        }
    }

    /// [`try_lock`](Self::try_lock) on an `Arc`'d mutex.
    #[track_caller]
    pub fn try_lock_owned(self: Arc<Self>) -> Result<OwnedMutexGuard<T>, TryLockError> {
        match try_acquire(&self.s, self.req(Location::caller(), true)) {
            Ok(hold) => Ok(OwnedMutexGuard { lock: self, hold }),
            Err(_) => Err(try_lock_error()),
        }
    }

    /// The value, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.c.get_mut()
    }

    /// Consumes the mutex and returns its value.
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

impl<T: ?Sized> Drop for Mutex<T> {
    fn drop(&mut self) {
        crate::checked::forget(&self.meta);
    }
}

impl<T> From<T> for Mutex<T> {
    #[track_caller]
    fn from(s: T) -> Self {
        Self::new(s)
    }
}

impl<T: Default> Default for Mutex<T> {
    #[track_caller]
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.s.try_acquire() {
            Ok(_permit) => {
                // SAFETY: the permit excludes every other access while it lives.
                d.field("data", &unsafe { &*self.c.get() })
            }
            Err(_) => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    fn into_parts(this: Self) -> (&'a Mutex<T>, Hold) {
        let this = ManuallyDrop::new(this);
        // SAFETY: read out once, `this` is not dropped.
        (this.lock, unsafe { std::ptr::read(&this.hold) })
    }

    /// Narrows the guard to a part of the value.
    pub fn map<U: ?Sized, F>(mut this: Self, f: F) -> MappedMutexGuard<'a, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        let data = f(&mut *this) as *mut U;
        let (lock, hold) = Self::into_parts(this);
        MappedMutexGuard {
            s: &lock.s,
            data,
            hold,
            marker: PhantomData,
        }
    }

    /// Narrows the guard if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<U: ?Sized, F>(mut this: Self, f: F) -> Result<MappedMutexGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        let data = match f(&mut *this) {
            Some(d) => d as *mut U,
            None => return Err(this),
        };
        let (lock, hold) = Self::into_parts(this);
        Ok(MappedMutexGuard {
            s: &lock.s,
            data,
            hold,
            marker: PhantomData,
        })
    }

    /// The mutex this guard holds.
    pub fn mutex(this: &Self) -> &'a Mutex<T> {
        this.lock
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.hold.release();
        self.lock.s.add_permits(1);
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the only permit.
        unsafe { &*self.lock.c.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the only permit.
        unsafe { &mut *self.lock.c.get() }
    }
}

impl<T: ?Sized> OwnedMutexGuard<T> {
    fn into_parts(this: Self) -> (Arc<Mutex<T>>, Hold) {
        let this = ManuallyDrop::new(this);
        // SAFETY: each field read out once, `this` is not dropped.
        unsafe { (std::ptr::read(&this.lock), std::ptr::read(&this.hold)) }
    }

    /// Narrows the guard to a part of the value.
    pub fn map<U: ?Sized, F>(mut this: Self, f: F) -> OwnedMappedMutexGuard<T, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        let data = f(&mut *this) as *mut U;
        let (lock, hold) = Self::into_parts(this);
        OwnedMappedMutexGuard { data, lock, hold }
    }

    /// Narrows the guard if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<U: ?Sized, F>(mut this: Self, f: F) -> Result<OwnedMappedMutexGuard<T, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        let data = match f(&mut *this) {
            Some(d) => d as *mut U,
            None => return Err(this),
        };
        let (lock, hold) = Self::into_parts(this);
        Ok(OwnedMappedMutexGuard { data, lock, hold })
    }

    /// The mutex this guard holds.
    pub fn mutex(this: &Self) -> &Arc<Mutex<T>> {
        &this.lock
    }
}

impl<T: ?Sized> Drop for OwnedMutexGuard<T> {
    fn drop(&mut self) {
        self.hold.release();
        self.lock.s.add_permits(1);
    }
}

impl<T: ?Sized> Deref for OwnedMutexGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.hold.touch();
        // SAFETY: the guard holds the only permit.
        unsafe { &*self.lock.c.get() }
    }
}

impl<T: ?Sized> DerefMut for OwnedMutexGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.hold.touch();
        // SAFETY: the guard holds the only permit.
        unsafe { &mut *self.lock.c.get() }
    }
}

impl<'a, T: ?Sized> MappedMutexGuard<'a, T> {
    fn into_parts(this: Self) -> (&'a Sem, Hold) {
        let this = ManuallyDrop::new(this);
        // SAFETY: read out once, `this` is not dropped.
        (this.s, unsafe { std::ptr::read(&this.hold) })
    }

    /// Narrows the guard further.
    pub fn map<U: ?Sized, F>(mut this: Self, f: F) -> MappedMutexGuard<'a, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        let data = f(&mut *this) as *mut U;
        let (s, hold) = Self::into_parts(this);
        MappedMutexGuard {
            s,
            data,
            hold,
            marker: PhantomData,
        }
    }

    /// Narrows the guard further if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<U: ?Sized, F>(mut this: Self, f: F) -> Result<MappedMutexGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        let data = match f(&mut *this) {
            Some(d) => d as *mut U,
            None => return Err(this),
        };
        let (s, hold) = Self::into_parts(this);
        Ok(MappedMutexGuard {
            s,
            data,
            hold,
            marker: PhantomData,
        })
    }
}

impl<T: ?Sized> Drop for MappedMutexGuard<'_, T> {
    fn drop(&mut self) {
        self.hold.release();
        self.s.add_permits(1);
    }
}

impl<T: ?Sized> Deref for MappedMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the only permit; `data` points into the locked value.
        unsafe { &*self.data }
    }
}

impl<T: ?Sized> DerefMut for MappedMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above.
        unsafe { &mut *self.data }
    }
}

impl<T: ?Sized, U: ?Sized> OwnedMappedMutexGuard<T, U> {
    fn into_parts(this: Self) -> (Arc<Mutex<T>>, Hold) {
        let this = ManuallyDrop::new(this);
        // SAFETY: each field read out once, `this` is not dropped.
        unsafe { (std::ptr::read(&this.lock), std::ptr::read(&this.hold)) }
    }

    /// Narrows the guard further.
    pub fn map<S: ?Sized, F>(mut this: Self, f: F) -> OwnedMappedMutexGuard<T, S>
    where
        F: FnOnce(&mut U) -> &mut S,
    {
        let data = f(&mut *this) as *mut S;
        let (lock, hold) = Self::into_parts(this);
        OwnedMappedMutexGuard { data, lock, hold }
    }

    /// Narrows the guard further if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<S: ?Sized, F>(mut this: Self, f: F) -> Result<OwnedMappedMutexGuard<T, S>, Self>
    where
        F: FnOnce(&mut U) -> Option<&mut S>,
    {
        let data = match f(&mut *this) {
            Some(d) => d as *mut S,
            None => return Err(this),
        };
        let (lock, hold) = Self::into_parts(this);
        Ok(OwnedMappedMutexGuard { data, lock, hold })
    }

    /// The mutex this guard holds.
    pub fn mutex(this: &Self) -> &Arc<Mutex<T>> {
        &this.lock
    }
}

impl<T: ?Sized, U: ?Sized> Drop for OwnedMappedMutexGuard<T, U> {
    fn drop(&mut self) {
        self.hold.release();
        self.lock.s.add_permits(1);
    }
}

impl<T: ?Sized, U: ?Sized> Deref for OwnedMappedMutexGuard<T, U> {
    type Target = U;
    fn deref(&self) -> &U {
        self.hold.touch();
        // SAFETY: the guard holds the only permit; `data` points into the locked value.
        unsafe { &*self.data }
    }
}

impl<T: ?Sized, U: ?Sized> DerefMut for OwnedMappedMutexGuard<T, U> {
    fn deref_mut(&mut self) -> &mut U {
        self.hold.touch();
        // SAFETY: as above.
        unsafe { &mut *self.data }
    }
}

/// `Debug` and `Display` of a guard: those of the value it derefs to (as tokio's).
macro_rules! fmt_via_deref {
    ($($ty:ty => $tgt:ident [$($gen:tt)*]),* $(,)?) => {$(
        impl<$($gen)*> fmt::Debug for $ty where $tgt: fmt::Debug {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&**self, f)
            }
        }
        impl<$($gen)*> fmt::Display for $ty where $tgt: fmt::Display {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&**self, f)
            }
        }
    )*};
}
pub(super) use fmt_via_deref;

fmt_via_deref!(
    MutexGuard<'_, T> => T [T: ?Sized],
    OwnedMutexGuard<T> => T [T: ?Sized],
    MappedMutexGuard<'_, T> => T [T: ?Sized],
    OwnedMappedMutexGuard<T, U> => U [T: ?Sized, U: ?Sized],
);
