//! What every guard and permit of `lockcheck::tokio` shares: a [`Grant`], lockcheck's hold of the
//! lock plus the permits to give back to its semaphore, released in that order when dropped (the
//! hold first, so that no other task sees a stale holder). A guard is a `Grant` and a pointer to
//! the data; mapping, downgrading, splitting and merging move or adjust the `Grant`, so the
//! guards themselves need no `Drop` and no unsafe moves of their fields.

use super::track::Hold;
use super::{Mutex, RwLock, Sem, Semaphore};
use lockcheck_core::trace::Mode;
use std::mem::ManuallyDrop;
use std::sync::Arc;

/// A handle on a held lock that reaches its semaphore: the lock borrowed or `Arc`'d, or the bare
/// semaphore (mapped guards).
pub(super) trait Lock {
    fn sem(&self) -> &Sem;
}

impl Lock for &Sem {
    fn sem(&self) -> &Sem {
        self
    }
}

impl<T: ?Sized> Lock for &Mutex<T> {
    fn sem(&self) -> &Sem {
        &self.s
    }
}

impl<T: ?Sized> Lock for Arc<Mutex<T>> {
    fn sem(&self) -> &Sem {
        &self.s
    }
}

impl<T: ?Sized> Lock for &RwLock<T> {
    fn sem(&self) -> &Sem {
        &self.s
    }
}

impl<T: ?Sized> Lock for Arc<RwLock<T>> {
    fn sem(&self) -> &Sem {
        &self.s
    }
}

impl Lock for &Semaphore {
    fn sem(&self) -> &Sem {
        &self.s
    }
}

impl Lock for Arc<Semaphore> {
    fn sem(&self) -> &Sem {
        &self.s
    }
}

/// `permits` permits of `lock`'s semaphore, held, with lockcheck's record of the hold.
pub(super) struct Grant<L: Lock> {
    pub(super) lock: L,
    pub(super) permits: u32,
    hold: Hold,
}

impl<L: Lock> Grant<L> {
    pub(super) fn new(lock: L, permits: u32, hold: Hold) -> Self {
        Grant {
            lock,
            permits,
            hold,
        }
    }

    /// The guard is used by whoever runs now: an owned guard that moved to another task belongs
    /// to that task from here (see `Hold::touch`).
    #[inline]
    pub(super) fn touch(&self) -> &Self {
        self.hold.touch();
        self
    }

    fn into_parts(self) -> (L, u32, Hold) {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped or used again; each field is read out once.
        unsafe {
            (
                std::ptr::read(&this.lock),
                this.permits,
                std::ptr::read(&this.hold),
            )
        }
    }

    /// The same hold and permits through another handle on the lock (a guard mapped to a part of
    /// its value keeps only what it needs to give the permits back).
    pub(super) fn map<M: Lock>(self, f: impl FnOnce(L) -> M) -> Grant<M> {
        let (lock, permits, hold) = self.into_parts();
        Grant::new(f(lock), permits, hold)
    }

    /// A write hold becomes a read hold of one permit, without letting a writer in between.
    pub(super) fn downgrade(&mut self) {
        self.hold.convert(Mode::Shared);
        let back = self.permits.saturating_sub(1);
        self.lock.sem().add_permits(back as usize);
        self.permits = 1;
    }

    /// The permits leave the semaphore for good: no longer held, never given back.
    pub(super) fn forget(mut self) {
        self.hold.release();
        self.permits = 0;
    }

    /// Takes `other`'s permits into this grant (same semaphore).
    pub(super) fn merge(&mut self, other: Grant<L>) {
        let (_, n, hold) = other.into_parts();
        self.hold.merge(hold, n);
        self.permits += n;
    }

    /// Splits `n` permits off into a grant of their own; `None` if this one has fewer.
    pub(super) fn split(&mut self, n: usize) -> Option<Grant<L>>
    where
        L: Clone,
    {
        let n = u32::try_from(n).ok().filter(|&n| n <= self.permits)?;
        self.permits -= n;
        Some(Grant::new(self.lock.clone(), n, self.hold.split(n)))
    }
}

impl<L: Lock> Drop for Grant<L> {
    fn drop(&mut self) {
        self.hold.release();
        if self.permits > 0 {
            self.lock.sem().add_permits(self.permits as usize);
        }
    }
}

/// A borrowed lock narrowed to its semaphore, for as long as it is borrowed (a mapped guard
/// keeps only what gives the permits back).
pub(super) trait LockSem<'a> {
    fn into_sem(self) -> &'a Sem;
}

impl<'a> LockSem<'a> for &'a Sem {
    fn into_sem(self) -> &'a Sem {
        self
    }
}

impl<'a, T: ?Sized> LockSem<'a> for &'a Mutex<T> {
    fn into_sem(self) -> &'a Sem {
        &self.s
    }
}

/// `Deref` (and `DerefMut` for `mut` guards) through the guard's `data` pointer, and `Debug` and
/// `Display` of the value it derefs to (as tokio's). An `owned` guard is `'static + Send` and may
/// have moved to another task: each use tells lockcheck who has it now ([`Grant::touch`]). Every
/// guard type listed must hold, in its grant, the permits that make `data` safe to reach.
macro_rules! guard_deref {
    (@touch owned, $s:ident) => {
        $s.g.touch();
    };
    (@touch borrowed, $s:ident) => {};
    (@mut mut, $ty:ty, $tgt:ident, [$($gen:tt)*], $own:ident) => {
        impl<$($gen)*> std::ops::DerefMut for $ty {
            fn deref_mut(&mut self) -> &mut $tgt {
                guard_deref!(@touch $own, self);
                // SAFETY: the grant holds the permits that exclude every other writer (see the
                // invocation).
                unsafe { &mut *self.data }
            }
        }
    };
    (@mut ro, $ty:ty, $tgt:ident, [$($gen:tt)*], $own:ident) => {};
    ($($ty:ty => $tgt:ident [$($gen:tt)*] $m:ident $own:ident),* $(,)?) => {$(
        impl<$($gen)*> std::ops::Deref for $ty {
            type Target = $tgt;
            fn deref(&self) -> &$tgt {
                guard_deref!(@touch $own, self);
                // SAFETY: the grant holds the permits that exclude writers (see the invocation).
                unsafe { &*self.data }
            }
        }
        guard_deref!(@mut $m, $ty, $tgt, [$($gen)*], $own);
        impl<$($gen)*> std::fmt::Debug for $ty where $tgt: std::fmt::Debug {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&**self, f)
            }
        }
        impl<$($gen)*> std::fmt::Display for $ty where $tgt: std::fmt::Display {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&**self, f)
            }
        }
    )*};
}
pub(super) use guard_deref;

/// What `Mutex` and `RwLock` share besides their guards: the value through a unique borrow,
/// `into_inner`, forgetting the lock's registration when it goes, `From`, `Default`, and `Debug`
/// (the value, or `<locked>` when a permit cannot be had right now).
macro_rules! lock_common {
    ($lock:ident, $name:literal) => {
        impl<T: ?Sized> $lock<T> {
            /// The value, through a unique borrow (no locking needed).
            pub fn get_mut(&mut self) -> &mut T {
                self.c.get_mut()
            }

            /// Consumes the lock and returns its value.
            pub fn into_inner(self) -> T
            where
                T: Sized,
            {
                let mut this = std::mem::ManuallyDrop::new(self);
                crate::checked::forget(&this.meta);
                // SAFETY: `this` is never used or dropped again; the semaphore is dropped in
                // place and the value read out, each exactly once (`meta` needs no drop).
                unsafe {
                    std::ptr::drop_in_place(&mut this.s);
                    std::ptr::read(&this.c).into_inner()
                }
            }
        }

        impl<T: ?Sized> Drop for $lock<T> {
            fn drop(&mut self) {
                crate::checked::forget(&self.meta);
            }
        }

        impl<T> From<T> for $lock<T> {
            #[track_caller]
            fn from(s: T) -> Self {
                Self::new(s)
            }
        }

        impl<T: Default> Default for $lock<T> {
            #[track_caller]
            fn default() -> Self {
                Self::new(T::default())
            }
        }

        impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for $lock<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut d = f.debug_struct($name);
                match self.s.try_acquire() {
                    Ok(_permit) => {
                        // SAFETY: the permit excludes every writer while it lives.
                        d.field("data", &unsafe { &*self.c.get() })
                    }
                    Err(_) => d.field("data", &format_args!("<locked>")),
                };
                d.finish()
            }
        }
    };
}
pub(super) use lock_common;

/// A guard narrowed to the part of its value that `f` picks, built by `build` from the guard and
/// a pointer to that part; the guard back when `f` picks nothing. The pointer is taken before
/// `build` moves the guard (its grant) into the new one.
pub(super) fn narrow<G, U, R>(
    this: G,
    f: impl FnOnce(&G::Target) -> Option<&U>,
    build: impl FnOnce(G, *const U) -> R,
) -> Result<R, G>
where
    G: std::ops::Deref,
    U: ?Sized,
{
    match f(&*this).map(|d| d as *const U) {
        Some(data) => Ok(build(this, data)),
        None => Err(this),
    }
}

/// [`narrow`] through a unique borrow (a write or mutex guard).
pub(super) fn narrow_mut<G, U, R>(
    mut this: G,
    f: impl FnOnce(&mut G::Target) -> Option<&mut U>,
    build: impl FnOnce(G, *mut U) -> R,
) -> Result<R, G>
where
    G: std::ops::DerefMut,
    U: ?Sized,
{
    match f(&mut *this).map(|d| d as *mut U) {
        Some(data) => Ok(build(this, data)),
        None => Err(this),
    }
}

/// The guard a `try_map` whose `f` always narrows gives (`map` is `try_map` of `Some(f(v))`).
pub(super) fn narrowed<G, S>(r: Result<G, S>) -> G {
    match r {
        Ok(g) => g,
        Err(_) => unreachable!("`f` always narrows"),
    }
}
