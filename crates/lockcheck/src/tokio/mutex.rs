//! `tokio::sync::Mutex`, instrumented. Built as tokio builds its own (a one-permit fair
//! semaphore and an `UnsafeCell`), so that every guard, owned and mapped ones included, carries
//! its hold without wrapping tokio's guard types.

use super::guard::{guard_deref, lock_common, narrow_mut, narrowed, Grant, Lock, LockSem};
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

/// Why a mutex's semaphore never fails an acquire: it is closed by no one.
const NEVER_CLOSED: &str = "the semaphore of a Mutex is never closed";

/// An asynchronous mutex with `tokio::sync::Mutex`'s API, checked by lockcheck.
///
/// Its class is its construction site, or the name given to [`Mutex::named`].
pub struct Mutex<T: ?Sized> {
    meta: Meta,
    pub(super) s: Sem,
    c: UnsafeCell<T>,
}

// SAFETY: as tokio's: the semaphore gives one task at a time access to `c`.
unsafe impl<T> Send for Mutex<T> where T: ?Sized + Send {}
// SAFETY: as tokio's.
unsafe impl<T> Sync for Mutex<T> where T: ?Sized + Send {}
// SAFETY: as tokio's (whose guards hold a reference or an `Arc` to the mutex): the guard's
// permit gives exclusive access to `T`, which may move to another thread with it.
unsafe impl<T> Send for MutexGuard<'_, T> where T: ?Sized + Send {}
// SAFETY: as above.
unsafe impl<T> Send for OwnedMutexGuard<T> where T: ?Sized + Send {}
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
    g: Grant<&'a Mutex<T>>,
    data: *mut T,
}

/// A held [`Mutex`] behind an `Arc` (`lock_owned`): `'static`, movable to another task.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct OwnedMutexGuard<T: ?Sized> {
    g: Grant<Arc<Mutex<T>>>,
    data: *mut T,
}

/// A held [`Mutex`] narrowed to a part of its value ([`MutexGuard::map`]).
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MappedMutexGuard<'a, T: ?Sized> {
    g: Grant<&'a Sem>,
    data: *mut T,
    marker: PhantomData<&'a mut T>,
}

/// An owned guard narrowed to a part of its value ([`OwnedMutexGuard::map`]).
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct OwnedMappedMutexGuard<T: ?Sized, U: ?Sized = T> {
    g: Grant<Arc<Mutex<T>>>,
    data: *mut U,
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
            capacity: 0,
            owned,
        }
    }

    /// Waits for the permit (checked: `pre` is the check already made before the first wait).
    async fn acquire(
        &self,
        site: &'static Location<'static>,
        owned: bool,
        pre: Pre,
    ) -> Result<Hold, Verdict> {
        Ok(acquire(&self.s, self.req(site, owned), pre)
            .await?
            .expect(NEVER_CLOSED))
    }

    fn guard(&self, hold: Hold) -> MutexGuard<'_, T> {
        MutexGuard {
            g: Grant::new(self, 1, hold),
            data: self.c.get(),
        }
    }

    fn owned_guard(this: Arc<Self>, hold: Hold) -> OwnedMutexGuard<T> {
        let data = this.c.get();
        OwnedMutexGuard {
            g: Grant::new(this, 1, hold),
            data,
        }
    }

    /// Locks, waiting asynchronously (fairly: FIFO) while another task holds it. Checked before
    /// the first wait: self-deadlock, lock order, deadlock.
    #[track_caller]
    pub fn lock(&self) -> impl Future<Output = MutexGuard<'_, T>> {
        let site = Location::caller();
        Acquire::new(
            &self.s,
            self.req(site, false),
            move |hold: Result<Hold, _>| self.guard(hold.expect(NEVER_CLOSED)),
        )
    }

    /// Locks, blocking the current thread (not for async contexts).
    ///
    /// # Panics
    ///
    /// Within an asynchronous execution context, as tokio's; on a violation under
    /// `LOCKCHECK=panic` (see [`crate::tokio`]).
    #[track_caller]
    pub fn blocking_lock(&self) -> MutexGuard<'_, T> {
        let site = Location::caller();
        let pre = precheck(&self.s, &self.req(site, false));
        block_checked(async move {
            let hold = self.acquire(site, false, pre).await?;
            Ok(self.guard(hold))
        })
    }

    /// Locks an `Arc`'d mutex, blocking the current thread; the guard is `'static`.
    ///
    /// # Panics
    ///
    /// Within an asynchronous execution context, as tokio's; on a violation under
    /// `LOCKCHECK=panic` (see [`crate::tokio`]).
    #[track_caller]
    pub fn blocking_lock_owned(self: Arc<Self>) -> OwnedMutexGuard<T> {
        let site = Location::caller();
        let pre = precheck(&self.s, &self.req(site, true));
        block_checked(async move {
            let hold = self.acquire(site, true, pre).await?;
            Ok(Self::owned_guard(self, hold))
        })
    }

    /// Locks an `Arc`'d mutex; the guard is `'static` (see the module docs on owned guards).
    #[track_caller]
    pub fn lock_owned(self: Arc<Self>) -> impl Future<Output = OwnedMutexGuard<T>> {
        let site = Location::caller();
        let pre = Pre::NONE;
        Checked(async move {
            let hold = self.acquire(site, true, pre).await?;
            Ok(Self::owned_guard(self, hold))
        })
    }

    /// Locks if free right now (never an ordering edge: it cannot wait).
    #[track_caller]
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        try_acquire(&self.s, self.req(Location::caller(), false))
            .map(|hold| self.guard(hold))
            .map_err(|_| try_lock_error())
    }

    /// [`try_lock`](Self::try_lock) on an `Arc`'d mutex.
    #[track_caller]
    pub fn try_lock_owned(self: Arc<Self>) -> Result<OwnedMutexGuard<T>, TryLockError> {
        try_acquire(&self.s, self.req(Location::caller(), true))
            .map(|hold| Self::owned_guard(self, hold))
            .map_err(|_| try_lock_error())
    }
}

lock_common!(Mutex, "Mutex");

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Narrows the guard to a part of the value.
    pub fn map<U: ?Sized, F>(this: Self, f: F) -> MappedMutexGuard<'a, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        narrowed(Self::try_map(this, |v| Some(f(v))))
    }

    /// Narrows the guard if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<U: ?Sized, F>(this: Self, f: F) -> Result<MappedMutexGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        narrow_mut(this, f, |this, data| MappedMutexGuard::new(this.g, data))
    }

    /// The mutex this guard holds.
    pub fn mutex(this: &Self) -> &'a Mutex<T> {
        this.g.lock
    }
}

impl<'a, T: ?Sized> MappedMutexGuard<'a, T> {
    fn new<L: Lock + LockSem<'a>>(g: Grant<L>, data: *mut T) -> Self {
        MappedMutexGuard {
            g: g.map(L::into_sem),
            data,
            marker: PhantomData,
        }
    }

    /// Narrows the guard further.
    pub fn map<U: ?Sized, F>(this: Self, f: F) -> MappedMutexGuard<'a, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        narrowed(Self::try_map(this, |v| Some(f(v))))
    }

    /// Narrows the guard further if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<U: ?Sized, F>(this: Self, f: F) -> Result<MappedMutexGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        narrow_mut(this, f, |this, data| MappedMutexGuard::new(this.g, data))
    }
}

impl<T: ?Sized> OwnedMutexGuard<T> {
    /// Narrows the guard to a part of the value.
    pub fn map<U: ?Sized, F>(this: Self, f: F) -> OwnedMappedMutexGuard<T, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        narrowed(Self::try_map(this, |v| Some(f(v))))
    }

    /// Narrows the guard if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<U: ?Sized, F>(this: Self, f: F) -> Result<OwnedMappedMutexGuard<T, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        narrow_mut(this, f, |this, data| OwnedMappedMutexGuard {
            g: this.g,
            data,
        })
    }

    /// The mutex this guard holds.
    pub fn mutex(this: &Self) -> &Arc<Mutex<T>> {
        &this.g.lock
    }
}

impl<T: ?Sized, U: ?Sized> OwnedMappedMutexGuard<T, U> {
    /// Narrows the guard further.
    pub fn map<S: ?Sized, F>(this: Self, f: F) -> OwnedMappedMutexGuard<T, S>
    where
        F: FnOnce(&mut U) -> &mut S,
    {
        narrowed(Self::try_map(this, |v| Some(f(v))))
    }

    /// Narrows the guard further if `f` returns `Some`; gives it back otherwise.
    pub fn try_map<S: ?Sized, F>(this: Self, f: F) -> Result<OwnedMappedMutexGuard<T, S>, Self>
    where
        F: FnOnce(&mut U) -> Option<&mut S>,
    {
        narrow_mut(this, f, |this, data| OwnedMappedMutexGuard {
            g: this.g,
            data,
        })
    }

    /// The mutex this guard holds.
    pub fn mutex(this: &Self) -> &Arc<Mutex<T>> {
        &this.g.lock
    }
}

// SAFETY (every `deref` below): the guard's grant holds the mutex's only permit, and `data`
// points into the locked value.
guard_deref!(
    MutexGuard<'_, T> => T [T: ?Sized] mut borrowed,
    MappedMutexGuard<'_, T> => T [T: ?Sized] mut borrowed,
    OwnedMutexGuard<T> => T [T: ?Sized] mut owned,
    OwnedMappedMutexGuard<T, U> => U [T: ?Sized, U: ?Sized] mut owned,
);
