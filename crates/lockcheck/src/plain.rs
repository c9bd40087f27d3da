//! The plain locks: what the crate root exports when instrumentation is compiled out.
//!
//! parking_lot's locks behind the same newtypes: same size, same speed (`new` and `named` only
//! forward; the class is not kept). Always compiled, so that sizes and speeds can be compared.

use std::panic::Location;

const fn raw_mutex(
    _site: &'static Location<'static>,
    _name: Option<&'static str>,
) -> parking_lot::RawMutex {
    <parking_lot::RawMutex as lock_api::RawMutex>::INIT
}

const fn raw_rwlock(
    _site: &'static Location<'static>,
    _name: Option<&'static str>,
) -> parking_lot::RawRwLock {
    <parking_lot::RawRwLock as lock_api::RawRwLock>::INIT
}

const fn raw_fair_mutex(
    _site: &'static Location<'static>,
    _name: Option<&'static str>,
) -> parking_lot::RawFairMutex {
    <parking_lot::RawFairMutex as lock_api::RawMutex>::INIT
}

/// Plain reentrant mutexes have no site to pass on.
#[inline(always)]
fn at_site<R>(_site: &'static Location<'static>, f: impl FnOnce() -> R) -> R {
    f()
}

crate::wrappers::lock_wrappers!(
    mutex: parking_lot::RawMutex = raw_mutex,
    fair_mutex: parking_lot::RawFairMutex = raw_fair_mutex,
    reentrant: parking_lot::RawMutex = raw_mutex, at_site,
    rwlock: parking_lot::RawRwLock = raw_rwlock,
);

#[cfg(feature = "arc_lock")]
pub use lock_api::ArcReentrantMutexGuard;
pub use parking_lot::{
    Condvar, OnceState, RawFairMutex, RawMutex, RawRwLock, RawThreadId, WaitTimeoutResult,
};

/// parking_lot's `Once` behind a newtype, so that [`Once::named`] exists in every build.
#[repr(transparent)]
#[derive(Default)]
pub struct Once(parking_lot::Once);

impl Once {
    /// Creates a `Once`.
    #[inline]
    pub const fn new() -> Once {
        Once(parking_lot::Once::new())
    }

    /// Creates a `Once`; the name is for the instrumented build's reports.
    #[inline]
    pub const fn named(_name: &'static str) -> Once {
        Once::new()
    }

    /// The current state (new, poisoned, in progress, done).
    #[inline]
    pub fn state(&self) -> OnceState {
        self.0.state()
    }

    /// Runs `f` once (parking_lot's `call_once`).
    #[inline]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        self.0.call_once(f);
    }

    /// Runs `f` once, also when poisoned (parking_lot's `call_once_force`).
    #[inline]
    pub fn call_once_force<F: FnOnce(OnceState)>(&self, f: F) {
        self.0.call_once_force(f);
    }
}

impl std::fmt::Debug for Once {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
