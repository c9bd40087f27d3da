//! The raw lock under [`ReentrantMutex`](super::ReentrantMutex).
//!
//! `lock_api`'s reentrant mutex counts re-entries by the owner itself and calls the raw lock
//! only for the first acquisition and the last release, so re-entry is never seen here (no
//! self-deadlock) while the first acquisition is checked for order as a mutex's is. Its call
//! path into the raw lock is not `#[track_caller]`, so the `ReentrantMutex` methods leave the
//! caller's location in a thread-local for the raw lock to use ([`at_site`]).

use super::class::ClassSrc;
use super::raw::RawMutex;
use lockcheck_core::trace::How;
use std::cell::Cell;
use std::panic::Location;
use std::time::{Duration, Instant};

thread_local! {
    /// The location of the `ReentrantMutex` call in progress on this thread.
    static SITE: Cell<Option<&'static Location<'static>>> = const { Cell::new(None) };
}

/// Runs `f` (a `ReentrantMutex` acquisition) with `site` as the location its raw lock reports.
#[inline]
pub(crate) fn at_site<R>(site: &'static Location<'static>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<&'static Location<'static>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = SITE.try_with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SITE.try_with(|s| s.replace(Some(site))).ok().flatten());
    f()
}

/// The site to report: the one a `ReentrantMutex` method left, else `fallback`.
#[inline]
fn site_or(fallback: &'static Location<'static>) -> &'static Location<'static> {
    SITE.try_with(Cell::get).ok().flatten().unwrap_or(fallback)
}

/// Makes a [`ReentrantRawMutex`] type from the raw mutex type a user's code names
/// (`ArcReentrantMutexGuard<RawMutex, RawThreadId, T>`, as with parking_lot).
pub trait ReentrantRawOf {
    /// The raw lock of a reentrant mutex over `Self`.
    type Raw;
}

impl ReentrantRawOf for RawMutex {
    type Raw = ReentrantRawMutex;
}

/// An instrumented raw mutex for [`ReentrantMutex`](super::ReentrantMutex): lockcheck's
/// [`RawMutex`] that takes the acquisition site from the `ReentrantMutex` call.
#[derive(Debug)]
pub struct ReentrantRawMutex(RawMutex);

impl ReentrantRawMutex {
    pub(crate) const fn for_site(
        site: &'static Location<'static>,
        name: Option<&'static str>,
    ) -> ReentrantRawMutex {
        ReentrantRawMutex(RawMutex::for_site(site, name))
    }
}

// SAFETY: every operation is forwarded to lockcheck's raw mutex, which upholds the contract.
unsafe impl lock_api::RawMutex for ReentrantRawMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: ReentrantRawMutex = ReentrantRawMutex(RawMutex::with_class(ClassSrc::Anonymous));
    type GuardMarker = <RawMutex as lock_api::RawMutex>::GuardMarker;

    #[track_caller]
    fn lock(&self) {
        if let Err(v) = self.0.relock_at(site_or(Location::caller())) {
            v.raise();
        }
    }

    #[track_caller]
    fn try_lock(&self) -> bool {
        self.0
            .try_lock_at(How::Try, site_or(Location::caller()), |m| m.try_lock())
    }

    unsafe fn unlock(&self) {
        self.0.unlock();
    }

    fn is_locked(&self) -> bool {
        self.0.is_locked()
    }
}

// SAFETY: forwarded.
unsafe impl lock_api::RawMutexFair for ReentrantRawMutex {
    unsafe fn unlock_fair(&self) {
        self.0.unlock_fair();
    }

    #[track_caller]
    unsafe fn bump(&self) {
        self.0.bump_at(site_or(Location::caller()));
    }
}

// SAFETY: forwarded.
unsafe impl lock_api::RawMutexTimed for ReentrantRawMutex {
    type Duration = Duration;
    type Instant = Instant;

    #[track_caller]
    fn try_lock_for(&self, timeout: Duration) -> bool {
        self.0
            .try_lock_at(How::Timed, site_or(Location::caller()), |m| {
                m.try_lock_for(timeout)
            })
    }

    #[track_caller]
    fn try_lock_until(&self, timeout: Instant) -> bool {
        self.0
            .try_lock_at(How::Timed, site_or(Location::caller()), |m| {
                m.try_lock_until(timeout)
            })
    }
}
