//! The raw lock under [`FairMutex`](super::FairMutex): lockcheck's raw mutex whose every unlock is
//! fair, as parking_lot's `RawFairMutex` is. For ordering it is a mutex like any other.

use super::class::ClassSrc;
use super::raw::RawMutex;
use lock_api::RawMutexFair as _;
use std::panic::Location;
use std::time::{Duration, Instant};

/// An instrumented raw fair mutex: lockcheck's [`RawMutex`] with a fair unlock.
#[derive(Debug)]
pub struct RawFairMutex(RawMutex);

impl RawFairMutex {
    pub(crate) const fn for_site(
        site: &'static Location<'static>,
        name: Option<&'static str>,
    ) -> RawFairMutex {
        RawFairMutex(RawMutex::for_site(site, name))
    }
}

// SAFETY: every operation is forwarded to lockcheck's raw mutex, which upholds the contract.
unsafe impl lock_api::RawMutex for RawFairMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: RawFairMutex = RawFairMutex(RawMutex::with_class(ClassSrc::Anonymous));
    type GuardMarker = <RawMutex as lock_api::RawMutex>::GuardMarker;

    #[track_caller]
    #[inline]
    fn lock(&self) {
        self.0.lock();
    }

    #[track_caller]
    #[inline]
    fn try_lock(&self) -> bool {
        self.0.try_lock()
    }

    #[inline]
    unsafe fn unlock(&self) {
        self.0.unlock_fair();
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.0.is_locked()
    }
}

// SAFETY: forwarded.
unsafe impl lock_api::RawMutexFair for RawFairMutex {
    #[inline]
    unsafe fn unlock_fair(&self) {
        self.0.unlock_fair();
    }

    #[track_caller]
    #[inline]
    unsafe fn bump(&self) {
        self.0.bump();
    }
}

// SAFETY: forwarded.
unsafe impl lock_api::RawMutexTimed for RawFairMutex {
    type Duration = Duration;
    type Instant = Instant;

    #[track_caller]
    #[inline]
    fn try_lock_for(&self, timeout: Duration) -> bool {
        self.0.try_lock_for(timeout)
    }

    #[track_caller]
    #[inline]
    fn try_lock_until(&self, timeout: Instant) -> bool {
        self.0.try_lock_until(timeout)
    }
}
