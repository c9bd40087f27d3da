//! A condition variable for lockcheck's instrumented [`Mutex`](super::Mutex).
//!
//! `lock_api` 0.4 has no generic condvar and parking_lot's only works with its own raw mutex, so
//! this one pairs parking_lot's `Condvar` with a private gate mutex: a waiter takes the gate,
//! releases the user's mutex (bookkeeping: released), sleeps on the gate, then retakes the user's
//! mutex (bookkeeping: a blocking acquisition at the `wait` call). Notifiers take the gate too, so
//! a notification sent after the waiter released the user's mutex cannot be lost.
//!
//! Whatever lockcheck finds while the mutex is retaken, the wait returns or panics only with the
//! mutex held again: the caller's guard then unlocks the mutex it really holds (see
//! `hooks::defer_if_relocking` and, for a deadlock through the wait, `watch::begin_wait`).

use super::raw::RawMutex;
use super::MutexGuard;
use lock_api::RawMutex as _;
use std::time::{Duration, Instant};

/// A condition variable with parking_lot's API, for lockcheck's [`Mutex`](super::Mutex).
#[derive(Default)]
pub struct Condvar {
    inner: parking_lot::Condvar,
    gate: parking_lot::Mutex<()>,
    /// Number in traces, assigned on first recorded wait (never an address).
    id: std::sync::atomic::AtomicU64,
    /// Lock instances its notifiers held or took in their window (only with the opt-in condvar
    /// check on; bounded, see `watch::note_notifier`).
    notifiers: parking_lot::Mutex<Vec<u64>>,
    /// Untimed waits in progress and the latest notify, for the lost-wakeup rule (only with the
    /// opt-in condvar check on; see `watch::lost_wakeup_at_notify`).
    waits: parking_lot::Mutex<Vec<super::watch::WaitWith>>,
    last_notify: parking_lot::Mutex<Option<super::watch::LastNotify>>,
}

/// Whether a timed wait timed out (parking_lot's type has a private constructor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait ended because the timeout elapsed.
    pub fn timed_out(self) -> bool {
        self.0
    }
}

impl std::fmt::Debug for Condvar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Condvar { .. }")
    }
}

impl Condvar {
    /// Creates a condition variable.
    pub const fn new() -> Condvar {
        Condvar {
            inner: parking_lot::Condvar::new(),
            gate: parking_lot::Mutex::new(()),
            id: std::sync::atomic::AtomicU64::new(0),
            notifiers: parking_lot::Mutex::new(Vec::new()),
            waits: parking_lot::Mutex::new(Vec::new()),
            last_notify: parking_lot::Mutex::new(None),
        }
    }

    fn id(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 {
            return id;
        }
        let new = super::class::new_instance_id();
        match self
            .id
            .compare_exchange(0, new, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => new,
            Err(cur) => cur,
        }
    }

    /// The condvar rule's bookkeeping of a notify (opt-in, see `watch::note_notifier`).
    #[track_caller]
    fn note_notifier(&self) {
        if super::recorder::recording() {
            super::recorder::on_notify(self.id(), std::panic::Location::caller());
        }
        if super::watch::features() & super::watch::CONDVAR != 0 {
            let window = super::watch::note_notifier(&self.notifiers, self.id());
            super::watch::lost_wakeup_at_notify(
                &self.waits,
                &self.last_notify,
                window,
                std::panic::Location::caller(),
            );
        }
    }

    /// Wakes one waiter; returns whether one was woken.
    #[track_caller]
    pub fn notify_one(&self) -> bool {
        self.note_notifier();
        let _gate = self.gate.lock();
        self.inner.notify_one()
    }

    /// Wakes all waiters; returns how many were woken.
    #[track_caller]
    pub fn notify_all(&self) -> usize {
        self.note_notifier();
        let _gate = self.gate.lock();
        self.inner.notify_all()
    }

    /// Releases the guard's mutex, waits for a notification, and retakes the mutex.
    #[track_caller]
    pub fn wait<T: ?Sized>(&self, guard: &mut MutexGuard<'_, T>) {
        self.wait_inner(guard, None);
    }

    /// Like [`wait`](Self::wait), until `condition` returns false.
    #[track_caller]
    pub fn wait_while<T: ?Sized, F: FnMut(&mut T) -> bool>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        mut condition: F,
    ) {
        while condition(&mut *guard) {
            self.wait_inner(guard, None);
        }
    }

    /// Waits until notified or until `timeout` (an instant) passes.
    #[track_caller]
    pub fn wait_until<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        timeout: Instant,
    ) -> WaitTimeoutResult {
        WaitTimeoutResult(self.wait_inner(guard, Some(timeout)))
    }

    /// Waits until notified or for at most `timeout`.
    #[track_caller]
    pub fn wait_for<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        timeout: Duration,
    ) -> WaitTimeoutResult {
        let deadline = Instant::now().checked_add(timeout);
        WaitTimeoutResult(self.wait_inner(guard, deadline))
    }

    /// Waits while `condition` holds, until `timeout` (an instant) passes.
    #[track_caller]
    pub fn wait_while_until<T: ?Sized, F: FnMut(&mut T) -> bool>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        mut condition: F,
        timeout: Instant,
    ) -> WaitTimeoutResult {
        while condition(&mut *guard) {
            if self.wait_inner(guard, Some(timeout)) {
                return WaitTimeoutResult(condition(&mut *guard));
            }
        }
        WaitTimeoutResult(false)
    }

    /// Waits while `condition` holds, for at most `timeout`.
    #[track_caller]
    pub fn wait_while_for<T: ?Sized, F: FnMut(&mut T) -> bool>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        condition: F,
        timeout: Duration,
    ) -> WaitTimeoutResult {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_while_until(guard, condition, deadline),
            None => {
                self.wait_while(guard, condition);
                WaitTimeoutResult(false)
            }
        }
    }

    /// Returns whether the wait timed out.
    #[track_caller]
    fn wait_inner<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        deadline: Option<Instant>,
    ) -> bool {
        // SAFETY: the guard proves the mutex is locked by this thread; it is unlocked and relocked
        // below before the guard is used again, as parking_lot's own condvar does.
        let raw: &RawMutex = unsafe { lock_api::MutexGuard::mutex(guard).raw() };
        let site = std::panic::Location::caller();
        super::watch::check_condvar_wait(&raw.meta, &self.notifiers, site);
        // A timed wait ends by itself: a lost notify only delays it.
        if deadline.is_none() {
            super::watch::lost_wakeup_at_wait(&raw.meta, &self.waits, &self.last_notify, site);
        }
        if super::recorder::recording() {
            if let Some(ids) = raw.meta.assigned() {
                super::recorder::on_cond_wait(self.id(), ids, deadline.is_some());
            }
        }
        let mut gate = self.gate.lock();
        // SAFETY: held by this thread (see above).
        unsafe { raw.unlock() };
        let timed_out = match deadline {
            None => {
                self.inner.wait(&mut gate);
                false
            }
            Some(d) => self.inner.wait_until(&mut gate, d).timed_out(),
        };
        drop(gate);
        if deadline.is_none() {
            super::watch::lost_wakeup_wait_ended(&self.waits);
        }
        // The caller's guard unlocks the mutex when a panic unwinds through it: a verdict of the
        // relock (a report under `panic`, a wait-timeout policy, a deadlock) waits until the
        // mutex is held again (`hooks::defer_if_relocking`), or the guard would unlock a mutex
        // another thread now owns. So the relock itself always ends holding the mutex (every verdict
        // on its path is deferred), and the verdict is raised here.
        let relocking = super::hooks::Relocking::enter();
        let relocked = raw.relock_at(site);
        drop(relocking);
        // The condvar rule: this thread's window on this condvar starts again (see
        // `watch::note_notifier`).
        if super::watch::features() & super::watch::CONDVAR != 0 {
            super::watch::note_woken(self.id());
        }
        if let Some(v) = relocked.err().or_else(super::hooks::take_deferred) {
            v.raise();
        }
        timed_out
    }
}
