//! std's `Barrier`, checked ([`lockcheck::sync::Barrier`](crate::sync::Barrier) in instrumented
//! builds).
//!
//! A thread that waits at a barrier waits for every participant that has not arrived in this
//! generation. One that waits there while a missing participant is stuck behind it hangs with
//! it, and no lock order shows it: nobody holds the barrier. The participant may wait for a
//! lock `L` the waiter holds, join the waiter (a thread started by `lockcheck::thread` holds its
//! own end while it runs), or wait for a message only the waiter can send (the receive's every
//! sender handle was last used by the waiter). lockcheck puts every wait at a barrier in the
//! wait-for graph (`watch.rs`), holding locks or not, as it does a receive's wait for its
//! senders: a barrier is a lock of kind [`LockKind::Barrier`] (class `barrier created at
//! file:line:col`), **requested** (exclusive) by a thread that waits at it, granted when the
//! barrier opens and released at once. Such a waiter is stuck when the participants it waits
//! for cannot come:
//! - which threads those are is not known (std's barrier counts arrivals, nothing names its
//!   participants). A thread that arrived at the previous generation and has not arrived at this
//!   one is a **known** participant; a known participant that is stuck, directly or through other
//!   waits, behind a thread waiting at this generation of the barrier never arrives: past
//!   [`super::channel::RECV_GRACE`] (one second) that is a `deadlock`;
//! - otherwise, when the known participants not arrived yet are fewer than the missing ones (the
//!   first generation, or participants that change), the threads stuck behind the waiters are
//!   **assumed** to be the missing participants when there are at least as many of them as
//!   participants are missing, past [`super::channel::UNPLACED_GRACE`] (five seconds; a guess,
//!   as for a channel's sender handle never used: a thread that is no participant may wait
//!   for the lock, or join a waiter, while a participant is busy elsewhere for longer than that,
//!   and the report is then false; the notice `BarrierParticipantAssumed` says so, once). When
//!   the known participants are as many as the missing ones, no other thread is assumed: a
//!   joiner that is no participant is not taken for one while a known participant is late.
//!
//! The waiter gives up then (under `panic` and `warn` alike, as every wait-for cycle's victim):
//! it panics out of `wait` with the report, its arrival **still counted**, so that its locks are
//! released as it unwinds and the others, once they arrive, open the barrier and go on.
//!
//! Lock order: a barrier is no lock anybody holds, so "hold `L`, wait at the barrier" makes the
//! order edge `L -> barrier` and nothing closes a cycle through it: a thread that waits at the
//! barrier and then takes `L` took `L` after the generation opened, once every waiter (the one
//! holding `L` too) had arrived, so it cannot have kept that generation from opening. Only a
//! participant that takes `L` *before* it arrives can, and that is the hang above. Predicting it
//! from a run that did not hang would need the barrier held by each participant from its
//! previous arrival to its next one, each generation ordering the threads that pass it (the
//! crossrelease idea the Linux kernel's lockdep tried for completions, a "wait" whose "release"
//! is made by another context, and reverted in 4.15 over its false positives); lockcheck does not
//! (README, "Barriers").
//!
//! In the trace, the wait is a `request` of the barrier (mode `w`) and, once it opens, its
//! `acquire` and `release`; in a deadlock the runtime found, the missing participant's stream
//! shows it holding the barrier (a `try` `acquire`, mode `r`, at the barrier's creation site)
//! over its `request` of the waiter's lock (docs/trace-format.md, "Barriers"), so `lockcheck
//! analyze` finds the cycle `L -> barrier -> L`. A waiter that holds no lock writes its request
//! only when it holds its own end (a thread started by `lockcheck::thread`, see
//! `thread::end_in_trace`): then a join of it closes the cycle `end -> barrier -> end` in the
//! trace too.
//!
//! Written here rather than wrapping std's: std's `wait` cannot be left before the barrier opens,
//! and a waiter chosen to give up its locks must leave. A mutex, a condition variable and a
//! generation number, as std's.

use super::class::{ClassSrc, Meta};
use super::hooks;
use super::state::{ThreadState, STATE};
use lockcheck_core::trace::{LockKind, Mode};
use std::cell::RefCell;
use std::fmt;
use std::panic::Location;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// A barrier: `n` threads wait at it until all of them have arrived, as [`std::sync::Barrier`];
/// a wait made while holding locks is checked (see the module docs).
pub struct Barrier {
    n: usize,
    site: &'static Location<'static>,
    shared: OnceLock<Arc<Shared>>,
}

/// What the wait-for graph looks at while a thread waits at the barrier (see [`waiting_at`]).
pub(crate) struct Shared {
    meta: Meta,
    n: usize,
    site: &'static Location<'static>,
    state: parking_lot::Mutex<Generation>,
    opened: parking_lot::Condvar,
}

/// The barrier's state: arrivals in this generation, which threads they were (at most `n`), and
/// those of the previous generation.
struct Generation {
    count: usize,
    number: u64,
    arrived: Vec<u64>,
    before: Vec<u64>,
}

/// A barrier's generation as the wait-for graph sees it (see [`Shared::view`]).
pub(crate) struct View {
    /// The generation now.
    pub number: u64,
    /// Participants that have not arrived.
    pub missing: usize,
    /// lockcheck's numbers of the threads that arrived in this generation (0: unknown).
    pub arrived: Vec<u64>,
    /// Threads that arrived at the previous generation and not at this one yet.
    pub known: Vec<u64>,
    /// Where the barrier was created.
    pub site: &'static Location<'static>,
}

impl Shared {
    /// The generation now.
    pub(crate) fn view(&self) -> View {
        let g = self.state.lock();
        View {
            number: g.number,
            missing: self.n.saturating_sub(g.count),
            arrived: g.arrived.clone(),
            known: g
                .before
                .iter()
                .copied()
                .filter(|t| *t != 0 && !g.arrived.contains(t))
                .collect(),
            site: self.site,
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        super::forget(&self.meta);
    }
}

thread_local! {
    /// The barrier (and generation) a wait of this thread is in now (see [`waiting_at`]).
    static AT: RefCell<Option<(Weak<Shared>, u64)>> = const { RefCell::new(None) };
}

/// The barrier this thread waits at, and the generation, if the lock `inst` is it: the wait-for
/// graph's waiter then waits for its missing participants (see `watch::deadlock_cycle`).
pub(crate) fn waiting_at(inst: u64) -> Option<(Weak<Shared>, u64)> {
    AT.try_with(|r| {
        let r = r.try_borrow().ok()?;
        let (w, number) = r.as_ref()?;
        let x = w.upgrade()?;
        (x.meta.assigned()?.inst == inst).then(|| (w.clone(), *number))
    })
    .ok()
    .flatten()
}

/// Notes the barrier a wait is at while it lives (see [`waiting_at`]).
struct At;

impl At {
    fn new(shared: &Arc<Shared>, number: u64) -> At {
        let _ = AT.try_with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                *r = Some((Arc::downgrade(shared), number));
            }
        });
        At
    }
}

impl Drop for At {
    fn drop(&mut self) {
        let _ = AT.try_with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                *r = None;
            }
        });
    }
}

impl Barrier {
    /// A barrier for `n` threads (`0` and `1` never wait), its class the caller's location.
    #[must_use]
    #[track_caller]
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            n,
            site: Location::caller(),
            shared: OnceLock::new(),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        self.shared.get_or_init(|| {
            Arc::new(Shared {
                meta: Meta::new(ClassSrc::Site(self.site)),
                n: self.n,
                site: self.site,
                state: parking_lot::Mutex::new(Generation {
                    count: 0,
                    number: 0,
                    arrived: Vec::new(),
                    before: Vec::new(),
                }),
                opened: parking_lot::Condvar::new(),
            })
        })
    }

    /// Blocks until all `n` threads have called `wait`; one of them (the last to arrive) gets a
    /// result whose [`is_leader`](BarrierWaitResult::is_leader) is true. A wait made while
    /// holding locks is checked: a participant stuck behind those locks is a `deadlock` (see the
    /// module docs), and this thread then panics with the report (its arrival counted).
    #[track_caller]
    pub fn wait(&self) -> BarrierWaitResult {
        let site = Location::caller();
        let shared = self.shared();
        let me = STATE.try_with(ThreadState::id).unwrap_or(0);
        let number = {
            // Busy while held: the arrival allocates (the list of arrivals), and a global
            // allocator that takes checked locks must find lockcheck's way out.
            let mut g = super::state::internal(&shared.state);
            g.count += 1;
            if g.count >= self.n {
                let number = g.number;
                let mut before = std::mem::take(&mut g.arrived);
                before.push(me);
                g.before = before;
                g.count = 0;
                g.number = number.wrapping_add(1);
                shared.opened.notify_all();
                return BarrierWaitResult(true);
            }
            g.arrived.push(me);
            g.number
        };
        let open = || shared.state.lock().number != number;
        let wait_open = || {
            let mut g = shared.state.lock();
            while g.number == number {
                shared.opened.wait(&mut g);
            }
        };
        // Every wait, holding locks or not: a participant may be stuck behind a waiter that
        // holds nothing but its own end (a join), or a channel's only sender (a receive).
        let checked = STATE.try_with(|s| !s.busy.get()).unwrap_or(false);
        if !checked || crate::config::flags() & crate::config::flag::CHECK == 0 {
            wait_open();
            return BarrierWaitResult(false);
        }
        let at = At::new(shared, number);
        let r = hooks::lock_blocking(
            &shared.meta,
            LockKind::Barrier,
            Mode::Exclusive,
            1,
            site,
            open,
            wait_open,
            |d: Duration| {
                let mut g = shared.state.lock();
                if g.number == number {
                    let _ = shared.opened.wait_for(&mut g, d);
                }
                g.number != number
            },
        );
        drop(at);
        if let Err(v) = r {
            // Its arrival stays counted: the others open the barrier without it.
            v.raise();
        }
        hooks::released(&shared.meta, Mode::Exclusive);
        BarrierWaitResult(false)
    }
}

// As std's: no user code runs under the barrier's mutex, so a panic never leaves its state
// half-changed (a waiter that gives up leaves its arrival counted, on purpose).
impl std::panic::RefUnwindSafe for Barrier {}
impl std::panic::UnwindSafe for Barrier {}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").finish_non_exhaustive()
    }
}

/// What [`Barrier::wait`] returns: whether this thread is the leader (as std's).
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this thread is the leader: exactly one thread of each generation is.
    #[must_use]
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl fmt::Debug for BarrierWaitResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWaitResult")
            .field("is_leader", &self.0)
            .finish()
    }
}
