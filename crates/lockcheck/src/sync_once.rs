//! std's one-time initialization (`Once`, `OnceLock`, `LazyLock`, `ONCE_INIT`) for
//! [`lockcheck::sync`](crate::sync), instrumented, and `Condvar::wait_timeout_ms`.
//!
//! Each wraps std's own type and takes an [`InitGate`] around the initializer, as parking_lot's
//! [`Once`](crate::Once) does (see `checked::once`): an initializer that re-enters its own cell is
//! a self-deadlock, reported instead of hanging, and a lock held while calling into an
//! initialization whose initializer takes that lock is an order inversion. Once initialized,
//! a read made holding nothing takes std's fast path only; one made holding locks passes the
//! gate (`InitGate::pass_done`), so that its order after those locks is known as a waiter's
//! would be.

use crate::checked::once::InitGate;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceState;

/// std's `Once`, instrumented (see the module docs).
pub struct Once {
    inner: std::sync::Once,
    gate: InitGate,
}

/// A `Once` in a `const` item, as std's deprecated `ONCE_INIT`. Its copies have no class (a
/// class is a construction site, and this one would be shared by all), so they are checked at
/// instance level only: prefer `Once::new()`.
#[deprecated(since = "0.1.0", note = "the `Once::new()` function is now preferred")]
#[allow(clippy::declare_interior_mutable_const)]
pub const ONCE_INIT: Once = Once {
    inner: std::sync::Once::new(),
    gate: InitGate::anonymous(),
};

// std's `Once` has no `Default`: neither has this one, so that code written for it is std code.
#[allow(clippy::new_without_default)]
impl Once {
    /// Creates a `Once` whose class is the caller's location (usable in statics).
    #[track_caller]
    #[inline]
    pub const fn new() -> Once {
        Once {
            inner: std::sync::Once::new(),
            gate: InitGate::for_site(Location::caller()),
        }
    }

    /// Runs `f` once; callers that find it running wait for it. Panics if a previous
    /// initializer panicked, as std's does.
    #[track_caller]
    #[inline]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.inner.is_completed() {
            return self.gate.pass_done();
        }
        let _gate = self.gate.enter();
        self.inner.call_once(|| {
            self.gate.mark_initializer();
            f()
        });
    }

    /// Like [`call_once`](Self::call_once), but also runs when poisoned.
    #[track_caller]
    #[inline]
    pub fn call_once_force<F: FnOnce(&OnceState)>(&self, f: F) {
        if self.inner.is_completed() {
            return self.gate.pass_done();
        }
        let _gate = self.gate.enter();
        self.inner.call_once_force(|state| {
            self.gate.mark_initializer();
            f(state)
        });
    }

    /// Whether an initializer completed.
    #[inline]
    pub fn is_completed(&self) -> bool {
        self.inner.is_completed()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once").finish_non_exhaustive()
    }
}

/// std's `OnceLock`, instrumented (see the module docs).
pub struct OnceLock<T> {
    inner: std::sync::OnceLock<T>,
    gate: InitGate,
}

impl<T> OnceLock<T> {
    /// Creates an empty cell whose class is the caller's location (usable in statics).
    #[track_caller]
    #[inline]
    pub const fn new() -> OnceLock<T> {
        OnceLock {
            inner: std::sync::OnceLock::new(),
            gate: InitGate::for_site(Location::caller()),
        }
    }

    /// The value, if initialized (never blocks).
    #[inline]
    pub fn get(&self) -> Option<&T> {
        self.inner.get()
    }

    /// A mutable reference to the value, if initialized.
    #[inline]
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.inner.get_mut()
    }

    /// Initializes the cell with `value`; `Err(value)` if it was initialized. Waits for an
    /// initializer running on another thread, as std's does.
    #[track_caller]
    #[inline]
    pub fn set(&self, value: T) -> Result<(), T> {
        if self.inner.get().is_some() {
            self.gate.pass_done();
            return Err(value);
        }
        let _gate = self.gate.enter();
        let r = self.inner.set(value);
        if r.is_ok() {
            self.gate.mark_initializer();
        }
        r
    }

    /// The value, initialized by `f` if the cell was empty.
    #[track_caller]
    #[inline]
    pub fn get_or_init<F: FnOnce() -> T>(&self, f: F) -> &T {
        if let Some(v) = self.inner.get() {
            self.gate.pass_done();
            return v;
        }
        let _gate = self.gate.enter();
        self.inner.get_or_init(|| {
            self.gate.mark_initializer();
            f()
        })
    }

    /// Consumes the cell, returning its value if initialized.
    #[inline]
    pub fn into_inner(self) -> Option<T> {
        self.inner.into_inner()
    }

    /// Takes the value out, leaving the cell empty.
    #[inline]
    pub fn take(&mut self) -> Option<T> {
        self.inner.take()
    }
}

impl<T> Default for OnceLock<T> {
    #[track_caller]
    fn default() -> OnceLock<T> {
        OnceLock::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: Clone> Clone for OnceLock<T> {
    #[track_caller]
    fn clone(&self) -> OnceLock<T> {
        OnceLock {
            inner: self.inner.clone(),
            gate: InitGate::for_site(Location::caller()),
        }
    }
}

impl<T> From<T> for OnceLock<T> {
    #[track_caller]
    fn from(value: T) -> OnceLock<T> {
        OnceLock {
            inner: std::sync::OnceLock::from(value),
            gate: InitGate::for_site(Location::caller()),
        }
    }
}

impl<T: PartialEq> PartialEq for OnceLock<T> {
    fn eq(&self, other: &OnceLock<T>) -> bool {
        self.inner == other.inner
    }
}

impl<T: Eq> Eq for OnceLock<T> {}

/// std's `LazyLock`, instrumented (see the module docs).
pub struct LazyLock<T, F = fn() -> T> {
    inner: std::sync::LazyLock<T, F>,
    /// Set once `force` returned: std's `LazyLock` cannot tell without forcing.
    done: AtomicBool,
    gate: InitGate,
}

impl<T, F: FnOnce() -> T> LazyLock<T, F> {
    /// Creates a lazy value initialized by `f` on first use; its class is the caller's location.
    #[track_caller]
    #[inline]
    pub const fn new(f: F) -> LazyLock<T, F> {
        LazyLock {
            inner: std::sync::LazyLock::new(f),
            done: AtomicBool::new(false),
            gate: InitGate::for_site(Location::caller()),
        }
    }

    /// Initializes the value if needed and returns it.
    #[track_caller]
    #[inline]
    pub fn force(this: &LazyLock<T, F>) -> &T {
        if this.done.load(Ordering::Acquire) {
            this.gate.pass_done();
            return std::sync::LazyLock::force(&this.inner);
        }
        let _gate = this.gate.enter();
        let v = std::sync::LazyLock::force(&this.inner);
        // The first to set it ran the initializer: it stores before it gives the gate back.
        if !this.done.swap(true, Ordering::AcqRel) {
            this.gate.mark_initializer();
        }
        v
    }
}

impl<T, F: FnOnce() -> T> std::ops::Deref for LazyLock<T, F> {
    type Target = T;
    #[track_caller]
    #[inline]
    fn deref(&self) -> &T {
        LazyLock::force(self)
    }
}

impl<T: Default> Default for LazyLock<T> {
    #[track_caller]
    fn default() -> LazyLock<T> {
        LazyLock::new(T::default)
    }
}

impl<T: fmt::Debug, F> fmt::Debug for LazyLock<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl crate::sync::Condvar {
    /// Waits for at most `ms` milliseconds; `false` if the time elapsed (std's deprecated
    /// `wait_timeout_ms`).
    #[deprecated(since = "0.1.0", note = "replaced by `wait_timeout`")]
    #[track_caller]
    pub fn wait_timeout_ms<'a, T>(
        &self,
        guard: crate::sync::MutexGuard<'a, T>,
        ms: u32,
    ) -> std::sync::LockResult<(crate::sync::MutexGuard<'a, T>, bool)> {
        let dur = std::time::Duration::from_millis(u64::from(ms));
        match self.wait_timeout(guard, dur) {
            Ok((g, r)) => Ok((g, !r.timed_out())),
            Err(e) => {
                let (g, r) = e.into_inner();
                Err(std::sync::PoisonError::new((g, !r.timed_out())))
            }
        }
    }
}
