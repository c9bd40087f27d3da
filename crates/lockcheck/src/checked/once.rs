//! One-time initialization as a lock: parking_lot's [`Once`], and the gate that std's `Once`,
//! `OnceLock` and `LazyLock` use in [`lockcheck::sync`](crate::sync).
//!
//! While an initializer runs, every other caller waits for it: for deadlock purposes the
//! initializing thread holds a lock that the waiting callers request. lockcheck models exactly
//! that with an [`InitGate`], an instrumented mutex taken around the initializer and by every
//! caller that finds the initialization not done. So an initializer that re-enters its own
//! `Once` is a self-deadlock (reported instead of hanging), and a thread that holds a lock `L`
//! while it calls `call_once`, when the initializer takes `L`, is an order inversion between `L`
//! and the `Once` (reported even when the schedule was lucky). Once done, a call made holding
//! nothing takes a fast path that touches neither the gate nor the checks; a call made holding
//! locks takes the gate and gives it back at once ([`InitGate::pass_done`]): had the initializer
//! still been running, that caller would have waited for it under those locks, so its order
//! (the locks, then the `Once`) belongs in the graph as much as a waiter's (but for the thread
//! that ran the initializer, whose later calls come after it in program order). Without it, an
//! initializer that takes a lock `L` (or gives up and takes back a lock its caller held, as a
//! GIL released inside it) and callers that hold `L` when they find it done were never seen as
//! an inversion, although a caller arriving during the initialization deadlocks.

use super::class::ClassSrc;
use super::raw::RawMutex;
use super::state::STATE;
use lock_api::RawMutex as _;
use lockcheck_core::trace::LockKind;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};

pub use parking_lot::OnceState;

/// The lock that one-time initialization is, for lockcheck (see the module docs), and the
/// number of the thread that last ran its initializer (0: none yet).
#[derive(Debug)]
pub(crate) struct InitGate(RawMutex, AtomicU64);

impl InitGate {
    /// A gate whose class is `site` (the construction site of the `Once`).
    pub(crate) const fn for_site(site: &'static Location<'static>) -> InitGate {
        InitGate(RawMutex::for_site(site, None), AtomicU64::new(0))
    }

    /// A gate without a class (checked at instance level only): for values built by a `const`
    /// item such as `ONCE_INIT`, whose copies would otherwise all share one class.
    #[cfg_attr(not(lockcheck_on), allow(dead_code))]
    pub(crate) const fn anonymous() -> InitGate {
        InitGate(RawMutex::with_class(ClassSrc::Anonymous), AtomicU64::new(0))
    }

    /// A gate of the class `name` (or the site's, without a name).
    pub(crate) const fn named(
        site: &'static Location<'static>,
        name: Option<&'static str>,
    ) -> InitGate {
        InitGate(RawMutex::for_site(site, name), AtomicU64::new(0))
    }

    /// Notes that this thread runs the initializer (called from inside it).
    #[inline]
    pub(crate) fn mark_initializer(&self) {
        if let Ok(id) = STATE.try_with(|s| s.id()) {
            self.1.store(id, Ordering::Relaxed);
        }
    }

    /// Takes the gate: a blocking acquisition at the caller's location.
    #[track_caller]
    #[inline]
    pub(crate) fn enter(&self) -> GateGuard<'_> {
        // The identity is assigned on first use, with the kind of that use: name the gate's
        // class a `Once` before the mutex inside it is taken (which would say `Mutex`).
        let _ = self.0.meta.ids(LockKind::Once);
        self.0.lock();
        GateGuard(&self.0)
    }

    /// A call that found the initialization done: if this thread holds locks, the gate is taken
    /// and given back at once (checked as a blocking acquisition, and recorded), so that its
    /// order after those locks is known (see the module docs). Free by then but for the moment
    /// a late waiter spends in it, the gate waits for nobody. Holding nothing (or inside
    /// lockcheck), nothing is done: no order to add, and the call stays one thread-local read.
    /// Nor on the thread that ran the initializer: its later calls come after the
    /// initialization in program order and could never have waited for it (the order of a
    /// thread that merely waited for it, or was spawned after it, is kept: the graph's
    /// spawn and join clocks already order the latter).
    #[track_caller]
    #[inline]
    pub(crate) fn pass_done(&self) {
        let holds = STATE
            .try_with(|s| {
                !s.busy.get() && s.holds_any() && s.id() != self.1.load(Ordering::Relaxed)
            })
            .unwrap_or(false);
        if holds {
            drop(self.enter());
        }
    }
}

/// The gate, held; released on drop (also when the initializer panics).
pub(crate) struct GateGuard<'a>(&'a RawMutex);

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: taken by `enter` on this thread; the guard is neither `Send` nor `Clone`.
        unsafe { self.0.unlock() };
    }
}

/// parking_lot's `Once`, instrumented: a one-time initialization that takes part in the lock
/// order and reports an initializer that re-enters it (see the module docs).
pub struct Once {
    inner: parking_lot::Once,
    gate: InitGate,
}

impl Once {
    /// Creates a `Once` whose class is the caller's location (usable in statics).
    #[track_caller]
    #[inline]
    pub const fn new() -> Once {
        Once {
            inner: parking_lot::Once::new(),
            gate: InitGate::for_site(Location::caller()),
        }
    }

    /// Creates a `Once` of the class `name` (reports and traces use the name).
    #[track_caller]
    #[inline]
    pub const fn named(name: &'static str) -> Once {
        Once {
            inner: parking_lot::Once::new(),
            gate: InitGate::named(Location::caller(), Some(name)),
        }
    }

    /// The current state (new, poisoned, in progress, done).
    #[inline]
    pub fn state(&self) -> OnceState {
        self.inner.state()
    }

    /// Runs `f` once; callers that find it running wait for it. Panics if a previous
    /// initializer panicked (the `Once` is poisoned), as parking_lot's does.
    #[track_caller]
    #[inline]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.inner.state().done() {
            return self.gate.pass_done();
        }
        let _gate = self.gate.enter();
        self.inner.call_once(|| {
            self.gate.mark_initializer();
            f()
        });
    }

    /// Like [`call_once`](Self::call_once), but runs `f` also when poisoned; `f` is told the
    /// state it found.
    #[track_caller]
    #[inline]
    pub fn call_once_force<F: FnOnce(OnceState)>(&self, f: F) {
        if self.inner.state().done() {
            return self.gate.pass_done();
        }
        let _gate = self.gate.enter();
        self.inner.call_once_force(|state| {
            self.gate.mark_initializer();
            f(state)
        });
    }
}

impl Default for Once {
    #[track_caller]
    fn default() -> Once {
        Once::new()
    }
}

impl std::fmt::Debug for Once {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Once")
            .field("state", &self.state())
            .finish()
    }
}
