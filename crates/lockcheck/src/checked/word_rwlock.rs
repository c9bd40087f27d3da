//! The raw lock under [`super::RawRwLock`]: one word, parking_lot's reader-writer protocol, with
//! an uncontended shared try that is one `compare_exchange` of the word
//! ([`WordRwLock::try_lock_shared_once`]).
//!
//! Why not parking_lot's `RawRwLock`: as for the mutex (`checked::byte_mutex`), the checked fast
//! path needs a shared try that may fail for any reason (a lost race, other readers, a writer),
//! because the full path tries again; parking_lot's `try_lock_shared` tests for a writer and for
//! overflow and retries a spurious failure (11 instructions, against 4 for one exchange from a
//! free word), and its shared unlock reads the old word back to test it (5, against 2 for a
//! `lock sub` whose flags say "nothing else in the word"): about 10 of the 52 instructions of a
//! checked read (docs/benchmarks-history.md, "Round 8"). `lock_api` has no one-shot try and parking_lot's
//! state word is private, so no crate offers either. This is lockcheck's own, on
//! `parking_lot_core` (which every user already builds through parking_lot), with parking_lot's
//! semantics, learned from its `raw_rwlock.rs` and written anew:
//!
//! - the word holds the reader count (above the four flag bits), `WRITER` (a writer holds the
//!   lock or waits for the readers to leave), `UPGRADABLE` (an upgradable reader holds it, counted
//!   as a reader too), `PARKED` (threads sleep on the lock's address) and `WRITER_PARKED` (the one
//!   writer that waits for readers sleeps on the address plus one);
//! - writer preference: a writer sets `WRITER` first, which keeps new readers out, then waits for
//!   the readers inside to leave; a recursive read still enters while other readers are inside,
//!   so that a thread reading again while a writer waits does not deadlock;
//! - an upgrade turns the upgradable hold into `WRITER` and waits for the other readers likewise;
//! - eventual fairness: when `parking_lot_core` says so (about every 0.5 ms per lock), and always
//!   in the `*_fair` unlocks and `bump_*`, an exclusive or upgradable release hands the lock to
//!   the woken threads (all woken readers, or one writer or upgradable reader) without freeing it;
//! - timed locks give up at their deadline, taking back their `WRITER` (and waking whoever it kept
//!   out) or their sleeper announcement.
//!
//! Not carried over: parking_lot's `deadlock_detection` bookkeeping (lockcheck checks these locks
//! itself) and hardware lock elision (off in parking_lot's default build).

use parking_lot_core::{FilterOp, ParkResult, ParkToken, SpinWait, UnparkResult, UnparkToken};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Threads may sleep on the lock's address (readers, writers and upgradable readers waiting for
/// `WRITER` or `UPGRADABLE` to go).
const PARKED: usize = 0b0001;
/// A writer sleeps on the lock's address plus one, waiting for the readers to leave.
const WRITER_PARKED: usize = 0b0010;
/// An upgradable reader holds the lock (it is counted in the readers as well).
const UPGRADABLE: usize = 0b0100;
/// A writer holds the lock, or holds the right to it and waits for the readers to leave.
const WRITER: usize = 0b1000;
/// One reader in the count.
const ONE_READER: usize = 0b1_0000;
/// The reader count.
const READERS: usize = !(ONE_READER - 1);

/// What a sleeper asks for, as the bits its hand-over adds to the word.
const TOKEN_SHARED: ParkToken = ParkToken(ONE_READER);
const TOKEN_EXCLUSIVE: ParkToken = ParkToken(WRITER);
const TOKEN_UPGRADABLE: ParkToken = ParkToken(ONE_READER | UPGRADABLE);

/// The woken thread was not given the lock: it competes for it.
const TOKEN_NORMAL: UnparkToken = UnparkToken(0);
/// The woken thread holds the lock already (a fair release).
const TOKEN_HANDOFF: UnparkToken = UnparkToken(1);

/// A one-word reader-writer lock parked on `parking_lot_core` (see the module's text).
pub(crate) struct WordRwLock {
    state: AtomicUsize,
}

impl WordRwLock {
    /// Free.
    pub(crate) const fn new() -> WordRwLock {
        WordRwLock {
            state: AtomicUsize::new(0),
        }
    }

    fn key(&self) -> usize {
        self as *const WordRwLock as usize
    }

    // ---- shared ----

    /// The uncontended shared try: one exchange from a free word; with other readers inside
    /// (and no writer), one more from the word that exchange saw. `true`: this thread's reader
    /// entered. `false` also on a lost race (the caller then takes its general path, which tries
    /// again).
    #[inline(always)]
    pub(crate) fn try_lock_shared_once(&self) -> bool {
        match self
            .state
            .compare_exchange(0, ONE_READER, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => true,
            Err(seen) => self.try_shared_beside(seen),
        }
    }

    /// [`WordRwLock::try_lock_shared_once`] when the word was `seen`, not free: out of line, so
    /// that the uncontended try stays three instructions.
    #[inline(never)]
    fn try_shared_beside(&self, seen: usize) -> bool {
        match Self::shared_entry(seen, false) {
            Some(new) => self
                .state
                .compare_exchange(seen, new, Ordering::Acquire, Ordering::Relaxed)
                .is_ok(),
            None => false,
        }
    }

    /// Acquires a shared hold, blocking while a writer holds the lock or waits for it.
    #[inline]
    pub(crate) fn lock_shared(&self) {
        if !self.try_lock_shared_once() {
            self.lock_shared_slow(false, None);
        }
    }

    /// A shared hold if no writer holds the lock or waits for it, without blocking.
    #[inline]
    pub(crate) fn try_lock_shared(&self) -> bool {
        self.try_shared(false)
    }

    /// Acquires a shared hold, blocking at most `timeout`.
    pub(crate) fn try_lock_shared_for(&self, timeout: Duration) -> bool {
        self.try_shared(false) || self.lock_shared_slow(false, Instant::now().checked_add(timeout))
    }

    /// Acquires a shared hold, blocking until `deadline` at most.
    pub(crate) fn try_lock_shared_until(&self, deadline: Instant) -> bool {
        self.try_shared(false) || self.lock_shared_slow(false, Some(deadline))
    }

    /// A shared hold that also enters while a writer waits, provided readers are inside (one of
    /// them may be this thread, which the writer waits for).
    pub(crate) fn lock_shared_recursive(&self) {
        if !self.try_shared(true) {
            self.lock_shared_slow(true, None);
        }
    }

    /// [`WordRwLock::lock_shared_recursive`] without blocking.
    pub(crate) fn try_lock_shared_recursive(&self) -> bool {
        self.try_shared(true)
    }

    /// [`WordRwLock::lock_shared_recursive`], blocking at most `timeout`.
    pub(crate) fn try_lock_shared_recursive_for(&self, timeout: Duration) -> bool {
        self.try_shared(true) || self.lock_shared_slow(true, Instant::now().checked_add(timeout))
    }

    /// [`WordRwLock::lock_shared_recursive`], blocking until `deadline` at most.
    pub(crate) fn try_lock_shared_recursive_until(&self, deadline: Instant) -> bool {
        self.try_shared(true) || self.lock_shared_slow(true, Some(deadline))
    }

    /// Releases a shared hold; the last reader out wakes the writer waiting for it.
    ///
    /// # Safety
    /// A shared hold is held by the caller (or by whoever the caller releases it for).
    #[inline]
    pub(crate) unsafe fn unlock_shared(&self) {
        // The lone reader of an otherwise empty word: one `lock sub` and a branch on its flags.
        if self.state.fetch_sub(ONE_READER, Ordering::Release) != ONE_READER {
            self.unlocked_shared_beside();
        }
    }

    /// A reader left a word with more in it: wakes the writer waiting for the readers if none is
    /// left now. Whoever left, the reader that left last sees no reader and `WRITER_PARKED` here
    /// (or the writer, before sleeping, sees no reader); a wake-up by another reader as well is
    /// harmless (the writer looks again, and the flag is cleared under the queue's lock).
    #[inline(never)]
    fn unlocked_shared_beside(&self) {
        if self.state.load(Ordering::Relaxed) & (READERS | WRITER_PARKED) == WRITER_PARKED {
            self.wake_writer();
        }
    }

    /// Releases a shared hold, waiting in line again if a writer waits for this reader alone.
    ///
    /// # Safety
    /// As [`WordRwLock::unlock_shared`].
    pub(crate) unsafe fn bump_shared(&self) {
        if self.state.load(Ordering::Relaxed) & (READERS | WRITER) == ONE_READER | WRITER {
            self.unlock_shared();
            self.lock_shared();
        }
    }

    /// Whether a reader may enter now (`recursive`: also past a waiting writer while readers are
    /// inside), and the word it then writes.
    #[inline]
    fn shared_entry(state: usize, recursive: bool) -> Option<usize> {
        if state & WRITER != 0 && (!recursive || state & READERS == 0) {
            return None;
        }
        state.checked_add(ONE_READER)
    }

    fn try_shared(&self, recursive: bool) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        while let Some(new) = Self::shared_entry(state, recursive) {
            match self
                .state
                .compare_exchange_weak(state, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(s) => state = s,
            }
        }
        false
    }

    #[cold]
    #[inline(never)]
    fn lock_shared_slow(&self, recursive: bool, deadline: Option<Instant>) -> bool {
        let enter = |state: &mut usize| {
            let mut backoff = SpinWait::new();
            loop {
                let Some(new) = Self::shared_entry(*state, recursive) else {
                    return false;
                };
                match self.state.compare_exchange_weak(
                    *state,
                    new,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    // Readers race each other for the count: leave them room.
                    Err(s) => {
                        backoff.spin_no_yield();
                        *state = s;
                    }
                }
            }
        };
        self.lock_common(deadline, TOKEN_SHARED, enter, WRITER)
    }

    /// The last reader left while a writer sleeps waiting for it: wake that writer (there is at
    /// most one: it holds `WRITER`).
    #[cold]
    #[inline(never)]
    fn wake_writer(&self) {
        // SAFETY: the key is inside this lock (its second byte), which nothing else parks on;
        // the callback neither panics nor parks nor calls into parking_lot.
        unsafe {
            parking_lot_core::unpark_one(self.key() + 1, |_| {
                self.state.fetch_and(!WRITER_PARKED, Ordering::Relaxed);
                TOKEN_NORMAL
            });
        }
    }

    // ---- exclusive ----

    /// An exclusive hold if the lock is free, without blocking: one exchange.
    #[inline]
    pub(crate) fn try_lock_exclusive(&self) -> bool {
        self.state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Acquires an exclusive hold, blocking.
    #[inline]
    pub(crate) fn lock_exclusive(&self) {
        if !self.try_lock_exclusive() {
            self.lock_exclusive_slow(None);
        }
    }

    /// Acquires an exclusive hold, blocking at most `timeout`.
    pub(crate) fn try_lock_exclusive_for(&self, timeout: Duration) -> bool {
        self.try_lock_exclusive() || self.lock_exclusive_slow(Instant::now().checked_add(timeout))
    }

    /// Acquires an exclusive hold, blocking until `deadline` at most.
    pub(crate) fn try_lock_exclusive_until(&self, deadline: Instant) -> bool {
        self.try_lock_exclusive() || self.lock_exclusive_slow(Some(deadline))
    }

    /// Releases an exclusive hold; wakes the sleepers if any (handing them the lock when it is
    /// time to be fair).
    ///
    /// # Safety
    /// An exclusive hold is held by the caller (or by whoever the caller releases it for).
    #[inline]
    pub(crate) unsafe fn unlock_exclusive(&self) {
        if self
            .state
            .compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_exclusive_slow(false);
        }
    }

    /// Releases an exclusive hold, handing the lock to the sleepers if there are any.
    ///
    /// # Safety
    /// As [`WordRwLock::unlock_exclusive`].
    pub(crate) unsafe fn unlock_exclusive_fair(&self) {
        if self
            .state
            .compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_exclusive_slow(true);
        }
    }

    /// Lets the sleepers run first, if there are any, then holds the lock exclusively again.
    ///
    /// # Safety
    /// As [`WordRwLock::unlock_exclusive`].
    pub(crate) unsafe fn bump_exclusive(&self) {
        if self.state.load(Ordering::Relaxed) & PARKED != 0 {
            self.unlock_exclusive_slow(true);
            self.lock_exclusive();
        }
    }

    /// `false`: the deadline passed.
    #[cold]
    #[inline(never)]
    fn lock_exclusive_slow(&self, deadline: Option<Instant>) -> bool {
        // First `WRITER` (which keeps new readers out), sleepers or not; then the readers' exit.
        let claim = |state: &mut usize| loop {
            if *state & (WRITER | UPGRADABLE) != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                *state,
                *state | WRITER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(s) => *state = s,
            }
        };
        self.lock_common(deadline, TOKEN_EXCLUSIVE, claim, WRITER | UPGRADABLE)
            && self.wait_for_readers(deadline, 0)
    }

    /// The exclusive release with sleepers: wakes all woken-together readers or one writer or
    /// upgradable reader, and either frees the lock or hands it over.
    #[cold]
    #[inline(never)]
    fn unlock_exclusive_slow(&self, fair: bool) {
        // While `WRITER` is held nobody else writes the word outside `parking_lot_core`'s queue
        // lock (readers and writers fail their exchanges, the sleepers' announcement is
        // already set), so the callback may store it whole.
        // SAFETY: the callback neither panics nor parks nor calls into parking_lot.
        unsafe {
            self.wake(0, |handed, r| {
                let (state, token) = after_release(handed, r, fair);
                self.state.store(state, Ordering::Release);
                token
            });
        }
    }

    // ---- upgradable ----

    /// An upgradable hold if no writer or upgradable reader holds the lock, without blocking.
    pub(crate) fn try_lock_upgradable(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        while let Some(new) = Self::upgradable_entry(state) {
            match self
                .state
                .compare_exchange_weak(state, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(s) => state = s,
            }
        }
        false
    }

    /// Acquires an upgradable hold, blocking.
    pub(crate) fn lock_upgradable(&self) {
        if !self.try_lock_upgradable() {
            self.lock_upgradable_slow(None);
        }
    }

    /// Acquires an upgradable hold, blocking at most `timeout`.
    pub(crate) fn try_lock_upgradable_for(&self, timeout: Duration) -> bool {
        self.try_lock_upgradable() || self.lock_upgradable_slow(Instant::now().checked_add(timeout))
    }

    /// Acquires an upgradable hold, blocking until `deadline` at most.
    pub(crate) fn try_lock_upgradable_until(&self, deadline: Instant) -> bool {
        self.try_lock_upgradable() || self.lock_upgradable_slow(Some(deadline))
    }

    /// Releases an upgradable hold; wakes the sleepers if any.
    ///
    /// # Safety
    /// An upgradable hold is held by the caller (or by whoever the caller releases it for).
    pub(crate) unsafe fn unlock_upgradable(&self) {
        self.unlock_upgradable_as(false);
    }

    /// Releases an upgradable hold, handing the lock to the sleepers if there are any.
    ///
    /// # Safety
    /// As [`WordRwLock::unlock_upgradable`].
    pub(crate) unsafe fn unlock_upgradable_fair(&self) {
        self.unlock_upgradable_as(true);
    }

    /// Lets the sleepers run first, if there are any and no other reader is inside, then holds
    /// the lock upgradably again.
    ///
    /// # Safety
    /// As [`WordRwLock::unlock_upgradable`].
    pub(crate) unsafe fn bump_upgradable(&self) {
        if self.state.load(Ordering::Relaxed) == ONE_READER | UPGRADABLE | PARKED {
            self.unlock_upgradable_slow(true);
            self.lock_upgradable();
        }
    }

    /// Turns an upgradable hold into an exclusive one, waiting for the other readers to leave
    /// (new readers stay out meanwhile).
    ///
    /// # Safety
    /// An upgradable hold is held by the caller.
    pub(crate) unsafe fn upgrade(&self) {
        let state = self.state.fetch_add(
            WRITER.wrapping_sub(ONE_READER | UPGRADABLE),
            Ordering::Acquire,
        );
        if state & READERS != ONE_READER {
            let upgraded = self.wait_for_readers(None, ONE_READER | UPGRADABLE);
            debug_assert!(upgraded);
        }
    }

    /// [`WordRwLock::upgrade`] if no other reader is inside, without blocking.
    ///
    /// # Safety
    /// As [`WordRwLock::upgrade`].
    pub(crate) unsafe fn try_upgrade(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        while state & READERS == ONE_READER {
            match self.state.compare_exchange_weak(
                state,
                state - (ONE_READER | UPGRADABLE) + WRITER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(s) => state = s,
            }
        }
        false
    }

    /// [`WordRwLock::upgrade`], waiting at most `timeout` (then still upgradable).
    ///
    /// # Safety
    /// As [`WordRwLock::upgrade`].
    pub(crate) unsafe fn try_upgrade_for(&self, timeout: Duration) -> bool {
        self.upgrade_until(Instant::now().checked_add(timeout))
    }

    /// [`WordRwLock::upgrade`], waiting until `deadline` at most (then still upgradable).
    ///
    /// # Safety
    /// As [`WordRwLock::upgrade`].
    pub(crate) unsafe fn try_upgrade_until(&self, deadline: Instant) -> bool {
        self.upgrade_until(Some(deadline))
    }

    unsafe fn upgrade_until(&self, deadline: Option<Instant>) -> bool {
        let state = self.state.fetch_add(
            WRITER.wrapping_sub(ONE_READER | UPGRADABLE),
            Ordering::Acquire,
        );
        state & READERS == ONE_READER || self.wait_for_readers(deadline, ONE_READER | UPGRADABLE)
    }

    /// Whether an upgradable reader may enter now, and the word it then writes.
    #[inline]
    fn upgradable_entry(state: usize) -> Option<usize> {
        if state & (WRITER | UPGRADABLE) != 0 {
            return None;
        }
        state.checked_add(ONE_READER | UPGRADABLE)
    }

    #[cold]
    #[inline(never)]
    fn lock_upgradable_slow(&self, deadline: Option<Instant>) -> bool {
        let enter = |state: &mut usize| {
            let mut backoff = SpinWait::new();
            loop {
                let Some(new) = Self::upgradable_entry(*state) else {
                    return false;
                };
                match self.state.compare_exchange_weak(
                    *state,
                    new,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(s) => {
                        backoff.spin_no_yield();
                        *state = s;
                    }
                }
            }
        };
        self.lock_common(deadline, TOKEN_UPGRADABLE, enter, WRITER | UPGRADABLE)
    }

    unsafe fn unlock_upgradable_as(&self, fair: bool) {
        let mut state = self.state.load(Ordering::Relaxed);
        while state & PARKED == 0 {
            match self.state.compare_exchange_weak(
                state,
                state - (ONE_READER | UPGRADABLE),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(s) => state = s,
            }
        }
        self.unlock_upgradable_slow(fair);
    }

    /// The upgradable release with sleepers. Readers may enter or leave meanwhile, so the word is
    /// changed by exchange, not stored.
    #[cold]
    #[inline(never)]
    fn unlock_upgradable_slow(&self, fair: bool) {
        // SAFETY: the callback neither panics nor parks nor calls into parking_lot.
        unsafe {
            self.wake(0, |handed, r| {
                let hand_over = r.unparked_threads != 0 && (fair || r.be_fair);
                let mut state = self.state.load(Ordering::Relaxed);
                loop {
                    let mut new = (state - (ONE_READER | UPGRADABLE)) & !PARKED;
                    if hand_over {
                        new = new.wrapping_add(handed);
                    }
                    if r.have_more_threads {
                        new |= PARKED;
                    }
                    match self.state.compare_exchange_weak(
                        state,
                        new,
                        Ordering::Release,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) if hand_over => return TOKEN_HANDOFF,
                        Ok(_) => return TOKEN_NORMAL,
                        Err(s) => state = s,
                    }
                }
            });
        }
    }

    // ---- downgrades ----

    /// Turns an exclusive hold into a shared one, waking the readers that wait.
    ///
    /// # Safety
    /// An exclusive hold is held by the caller.
    pub(crate) unsafe fn downgrade(&self) {
        let state = self
            .state
            .fetch_add(ONE_READER.wrapping_sub(WRITER), Ordering::Release);
        if state & PARKED != 0 {
            self.wake_after_downgrade(ONE_READER);
        }
    }

    /// Turns an exclusive hold into an upgradable one, waking the readers that wait.
    ///
    /// # Safety
    /// As [`WordRwLock::downgrade`].
    pub(crate) unsafe fn downgrade_to_upgradable(&self) {
        let state = self.state.fetch_add(
            (ONE_READER | UPGRADABLE).wrapping_sub(WRITER),
            Ordering::Release,
        );
        if state & PARKED != 0 {
            self.wake_after_downgrade(ONE_READER | UPGRADABLE);
        }
    }

    /// Turns an upgradable hold into a shared one, waking a writer or upgradable reader that
    /// waits.
    ///
    /// # Safety
    /// An upgradable hold is held by the caller.
    pub(crate) unsafe fn downgrade_upgradable(&self) {
        let state = self.state.fetch_sub(UPGRADABLE, Ordering::Relaxed);
        if state & PARKED != 0 {
            self.wake_after_downgrade(ONE_READER);
        }
    }

    /// Wakes the sleepers that the hold left (`held`) lets in; they compete for the lock.
    #[cold]
    #[inline(never)]
    fn wake_after_downgrade(&self, held: usize) {
        // SAFETY: the callback neither panics nor parks nor calls into parking_lot.
        unsafe {
            self.wake(held, |_, r| {
                if !r.have_more_threads {
                    self.state.fetch_and(!PARKED, Ordering::Relaxed);
                }
                TOKEN_NORMAL
            });
        }
    }

    // ---- state ----

    /// Whether some thread holds it, in any mode.
    pub(crate) fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & (WRITER | READERS) != 0
    }

    /// Whether a writer holds it (or waits for the readers to leave).
    pub(crate) fn is_locked_exclusive(&self) -> bool {
        self.state.load(Ordering::Relaxed) & WRITER != 0
    }

    // ---- the common sleeping ----

    /// Tries `enter` until it succeeds, spinning while nobody sleeps, then sleeping on the
    /// lock's address while the word has one of `blockers` (and `PARKED`). `false`: the deadline
    /// passed. A fair release's hand-over returns `true` at once: the releaser wrote this
    /// thread's bits into the word.
    fn lock_common(
        &self,
        deadline: Option<Instant>,
        token: ParkToken,
        mut enter: impl FnMut(&mut usize) -> bool,
        blockers: usize,
    ) -> bool {
        let mut spin = SpinWait::new();
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if enter(&mut state) {
                return true;
            }
            if state & (PARKED | WRITER_PARKED) == 0 && spin.spin() {
                state = self.state.load(Ordering::Relaxed);
                continue;
            }
            // Announce a sleeper before sleeping, so that the release wakes it.
            if state & PARKED == 0 {
                if let Err(s) = self.state.compare_exchange_weak(
                    state,
                    state | PARKED,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    state = s;
                    continue;
                }
            }
            // SAFETY: the key is this lock's address, which nothing else parks on (the checked
            // lock that holds it starts with it); the callbacks neither panic nor park nor call
            // into parking_lot.
            let parked = unsafe {
                parking_lot_core::park(
                    self.key(),
                    // Sleep only if still blocked with the announcement up: a release in between
                    // would otherwise be missed.
                    || {
                        let s = self.state.load(Ordering::Relaxed);
                        s & PARKED != 0 && s & blockers != 0
                    },
                    || {},
                    |_, last| {
                        if last {
                            self.state.fetch_and(!PARKED, Ordering::Relaxed);
                        }
                    },
                    token,
                    deadline,
                )
            };
            match parked {
                ParkResult::Unparked(TOKEN_HANDOFF) => return true,
                ParkResult::Unparked(_) | ParkResult::Invalid => {}
                ParkResult::TimedOut => return false,
            }
            spin.reset();
            state = self.state.load(Ordering::Relaxed);
        }
    }

    /// With `WRITER` held (taken, or made of an upgradable hold that was `prev`): waits for the
    /// readers inside to leave. `false`: the deadline passed, and the word is back to `prev`
    /// (the sleepers `WRITER` kept out woken).
    fn wait_for_readers(&self, deadline: Option<Instant>, prev: usize) -> bool {
        let mut spin = SpinWait::new();
        let mut state = self.state.load(Ordering::Acquire);
        while state & READERS != 0 {
            if spin.spin() {
                state = self.state.load(Ordering::Acquire);
                continue;
            }
            if state & WRITER_PARKED == 0 {
                if let Err(s) = self.state.compare_exchange_weak(
                    state,
                    state | WRITER_PARKED,
                    Ordering::Acquire,
                    Ordering::Acquire,
                ) {
                    state = s;
                    continue;
                }
            }
            // SAFETY: as in `lock_common`, on the second key (inside this lock); only the
            // holder of `WRITER` sleeps there, so a timed-out sleeper is always the last.
            let parked = unsafe {
                parking_lot_core::park(
                    self.key() + 1,
                    || {
                        let s = self.state.load(Ordering::Relaxed);
                        s & READERS != 0 && s & WRITER_PARKED != 0
                    },
                    || {},
                    |_, _| {
                        self.state.fetch_and(!WRITER_PARKED, Ordering::Relaxed);
                    },
                    TOKEN_EXCLUSIVE,
                    deadline,
                )
            };
            match parked {
                // Look again: a reader may have entered past an earlier writer that timed out.
                ParkResult::Unparked(_) | ParkResult::Invalid => {
                    state = self.state.load(Ordering::Acquire);
                }
                ParkResult::TimedOut => {
                    let state = self
                        .state
                        .fetch_add(prev.wrapping_sub(WRITER), Ordering::Relaxed);
                    if state & PARKED != 0 {
                        self.wake_after_downgrade(prev);
                    }
                    return false;
                }
            }
        }
        true
    }

    /// Wakes sleepers on the lock's address: every reader, and one writer or upgradable reader
    /// unless `held` (what stays held) or an earlier woken thread excludes it; a writer ends the
    /// wake-up. `then` gets the bits the woken threads would add to the word (their hand-over)
    /// and the result, and returns the token they wake with.
    ///
    /// # Safety
    /// `then` neither panics nor parks nor calls into parking_lot.
    unsafe fn wake(&self, held: usize, then: impl FnOnce(usize, UnparkResult) -> UnparkToken) {
        let acc = Cell::new(held);
        let filter = |ParkToken(wants)| {
            let s = acc.get();
            if s & WRITER != 0 {
                FilterOp::Stop
            } else if wants & (WRITER | UPGRADABLE) != 0 && s & UPGRADABLE != 0 {
                FilterOp::Skip
            } else {
                acc.set(s.wrapping_add(wants));
                FilterOp::Unpark
            }
        };
        parking_lot_core::unpark_filter(self.key(), filter, |r| {
            then(acc.get().wrapping_sub(held), r)
        });
    }
}

/// What an exclusive release that woke `r` leaves: the word and the woken threads' token. Handed
/// over (the woken threads' bits, `handed`, written for them) on request (`fair`) or when
/// `parking_lot_core` says it is time; else freed. `PARKED` stays while others sleep.
fn after_release(handed: usize, r: UnparkResult, fair: bool) -> (usize, UnparkToken) {
    let rest = if r.have_more_threads { PARKED } else { 0 };
    if r.unparked_threads != 0 && (fair || r.be_fair) {
        return (handed | rest, TOKEN_HANDOFF);
    }
    (rest, TOKEN_NORMAL)
}

impl std::fmt::Debug for WordRwLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("WordRwLock")
            .field("readers", &(s / ONE_READER))
            .field("writer", &(s & WRITER != 0))
            .field("upgradable", &(s & UPGRADABLE != 0))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{
        after_release, WordRwLock, ONE_READER, PARKED, READERS, TOKEN_HANDOFF, TOKEN_NORMAL,
        UPGRADABLE, WRITER, WRITER_PARKED,
    };
    use crate::checked::byte_mutex::tests::within_a_minute;
    use parking_lot_core::UnparkResult;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};
    use std::thread;
    use std::time::{Duration, Instant};

    fn state(l: &WordRwLock) -> usize {
        l.state.load(Ordering::Relaxed)
    }

    /// Waits until the word has `bits` (a sleeper announced), then gives the sleeper time to be
    /// queued.
    fn until(l: &WordRwLock, bits: usize) {
        while state(l) & bits != bits {
            thread::yield_now();
        }
        thread::sleep(Duration::from_millis(50));
    }

    /// Who is inside, as the lock's users see it: readers (upgradable ones included) and writers.
    #[derive(Default)]
    struct Inside {
        readers: AtomicUsize,
        writers: AtomicUsize,
        /// Increments made under exclusive holds.
        written: AtomicUsize,
    }

    impl Inside {
        fn read(&self) {
            self.readers.fetch_add(1, Ordering::SeqCst);
            assert_eq!(
                self.writers.load(Ordering::SeqCst),
                0,
                "a reader beside a writer"
            );
        }
        fn unread(&self) {
            self.readers.fetch_sub(1, Ordering::SeqCst);
        }
        fn write(&self) {
            assert_eq!(
                self.writers.fetch_add(1, Ordering::SeqCst),
                0,
                "two writers"
            );
            assert_eq!(
                self.readers.load(Ordering::SeqCst),
                0,
                "a writer beside a reader"
            );
            // Not atomic as one step: another writer inside would lose increments.
            let n = self.written.load(Ordering::Relaxed);
            thread::yield_now();
            self.written.store(n + 1, Ordering::Relaxed);
        }
        fn unwrite(&self) {
            self.writers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn readers_writers_and_upgraders_mixed_keep_the_invariant() {
        within_a_minute(|| {
            let l = Arc::new(WordRwLock::new());
            let inside = Arc::new(Inside::default());
            const ROUNDS: usize = 3_000;
            let threads: Vec<_> = (0..4)
                .map(|i| {
                    let (l, inside) = (l.clone(), inside.clone());
                    thread::spawn(move || {
                        let long = Duration::from_secs(30);
                        let mut writes = 0;
                        for k in 0..ROUNDS {
                            // SAFETY (all unlocks): each releases the hold taken just before.
                            unsafe {
                                match (i + k) % 9 {
                                    0 => {
                                        if !l.try_lock_shared_once() {
                                            l.lock_shared();
                                        }
                                        inside.read();
                                        inside.unread();
                                        l.unlock_shared();
                                    }
                                    1 => {
                                        assert!(l.try_lock_shared_recursive_for(long));
                                        inside.read();
                                        inside.unread();
                                        l.unlock_shared();
                                    }
                                    2 => {
                                        l.lock_exclusive();
                                        inside.write();
                                        inside.unwrite();
                                        l.unlock_exclusive();
                                        writes += 1;
                                    }
                                    3 => {
                                        assert!(l.try_lock_exclusive_for(long));
                                        inside.write();
                                        inside.unwrite();
                                        l.unlock_exclusive_fair();
                                        writes += 1;
                                    }
                                    4 => {
                                        // Upgradable, upgraded, downgraded to shared.
                                        l.lock_upgradable();
                                        inside.read();
                                        inside.unread();
                                        l.upgrade();
                                        inside.write();
                                        inside.unwrite();
                                        writes += 1;
                                        l.downgrade();
                                        inside.read();
                                        inside.unread();
                                        l.unlock_shared();
                                    }
                                    5 => {
                                        assert!(l.try_lock_upgradable_for(long));
                                        inside.read();
                                        inside.unread();
                                        if l.try_upgrade() || l.try_upgrade_for(long) {
                                            inside.write();
                                            inside.unwrite();
                                            writes += 1;
                                            l.downgrade_to_upgradable();
                                        }
                                        l.downgrade_upgradable();
                                        inside.read();
                                        inside.unread();
                                        l.unlock_shared();
                                    }
                                    6 => {
                                        l.lock_upgradable();
                                        inside.read();
                                        inside.unread();
                                        if k % 2 == 0 {
                                            l.unlock_upgradable_fair();
                                        } else {
                                            l.unlock_upgradable();
                                        }
                                    }
                                    7 => {
                                        l.lock_exclusive();
                                        inside.write();
                                        inside.unwrite();
                                        l.bump_exclusive();
                                        inside.write();
                                        inside.unwrite();
                                        writes += 2;
                                        l.unlock_exclusive();
                                    }
                                    _ => {
                                        l.lock_shared();
                                        inside.read();
                                        inside.unread();
                                        l.bump_shared();
                                        inside.read();
                                        inside.unread();
                                        l.unlock_shared();
                                    }
                                }
                            }
                        }
                        writes
                    })
                })
                .collect();
            let writes: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
            assert_eq!(inside.written.load(Ordering::Relaxed), writes);
            assert_eq!(state(&l), 0, "free, no sleeper left announced");
        });
    }

    #[test]
    fn the_one_shot_shared_try_fails_while_a_writer_holds_or_waits() {
        let l = WordRwLock::new();
        assert!(l.try_lock_shared_once());
        assert!(l.try_lock_shared_once());
        assert_eq!(state(&l), 2 * ONE_READER);
        // A writer that waits for these readers (its `WRITER` set): new readers stay out, a
        // recursive one enters.
        l.state.fetch_or(WRITER, Ordering::Relaxed);
        assert!(!l.try_lock_shared_once());
        assert!(!l.try_lock_shared());
        assert!(l.try_lock_shared_recursive());
        assert_eq!(state(&l), (3 * ONE_READER) | WRITER);
        // A writer inside alone: not even a recursive reader.
        l.state.store(WRITER, Ordering::Relaxed);
        assert!(!l.try_lock_shared_recursive());
        assert!(l.is_locked_exclusive());
        l.state.store(0, Ordering::Relaxed);
        assert!(!l.is_locked());
    }

    #[test]
    fn timed_locks_give_up_at_their_deadline_and_leave_the_word_as_it_was() {
        within_a_minute(|| {
            let l = Arc::new(WordRwLock::new());
            let took = |f: fn(&WordRwLock) -> bool| {
                let l = l.clone();
                thread::spawn(move || {
                    let t = Instant::now();
                    (f(&l), t.elapsed())
                })
                .join()
                .unwrap()
            };
            fn ms(n: u64) -> Duration {
                Duration::from_millis(n)
            }
            // Held exclusively: readers, writers and upgraders time out.
            l.lock_exclusive();
            for f in [
                (|l: &WordRwLock| l.try_lock_shared_for(ms(60))) as fn(&WordRwLock) -> bool,
                |l| l.try_lock_shared_recursive_until(Instant::now() + ms(60)),
                |l| l.try_lock_exclusive_for(ms(60)),
                |l| l.try_lock_upgradable_until(Instant::now() + ms(60)),
            ] {
                let (got, waited) = took(f);
                assert!(!got);
                assert!(waited >= ms(60), "{waited:?}");
            }
            // The last sleeper that timed out took its announcement back.
            assert_eq!(state(&l), WRITER);
            // SAFETY: held by this thread.
            unsafe { l.unlock_exclusive() };
            // Held shared: a writer sets `WRITER`, waits for the reader, times out and takes
            // `WRITER` back, so readers enter again.
            l.lock_shared();
            let (got, waited) = took(|l| l.try_lock_exclusive_for(ms(60)));
            assert!(!got && waited >= ms(60), "{waited:?}");
            assert_eq!(state(&l), ONE_READER);
            assert!(l.try_lock_shared());
            // Upgradable and a reader: the upgrade times out and stays upgradable.
            // SAFETY: two shared holds of this thread.
            unsafe { l.unlock_shared() };
            l.lock_upgradable();
            assert_eq!(state(&l), (2 * ONE_READER) | UPGRADABLE);
            // SAFETY: the upgradable hold is this thread's.
            unsafe {
                assert!(!l.try_upgrade());
                let t = Instant::now();
                assert!(!l.try_upgrade_for(ms(60)));
                assert!(t.elapsed() >= ms(60));
                assert_eq!(state(&l), (2 * ONE_READER) | UPGRADABLE);
                l.unlock_shared();
                assert!(l.try_upgrade_for(ms(60)), "no other reader: at once");
                assert_eq!(state(&l), WRITER);
                l.unlock_exclusive();
            }
            // Released before the deadline: woken, taken.
            l.lock_exclusive();
            let l2 = l.clone();
            let t = thread::spawn(move || {
                let got = l2.try_lock_shared_for(Duration::from_secs(30));
                // SAFETY: held when `got`.
                if got {
                    unsafe { l2.unlock_shared() };
                }
                got
            });
            until(&l, PARKED);
            // SAFETY: held by this thread.
            unsafe { l.unlock_exclusive() };
            assert!(
                t.join().unwrap(),
                "woken by the release before its deadline"
            );
            assert_eq!(state(&l), 0);
        });
    }

    #[test]
    fn a_fair_unlock_hands_the_lock_to_the_sleepers() {
        within_a_minute(|| {
            let l = Arc::new(WordRwLock::new());
            l.lock_exclusive();
            let (tx, rx) = mpsc::channel();
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let (l, tx) = (l.clone(), tx.clone());
                    thread::spawn(move || {
                        l.lock_shared();
                        tx.send(()).unwrap();
                        thread::sleep(Duration::from_millis(50));
                        // SAFETY: held.
                        unsafe { l.unlock_shared() };
                    })
                })
                .collect();
            while state(&l) & PARKED == 0 {
                thread::yield_now();
            }
            thread::sleep(Duration::from_millis(100));
            // SAFETY: held by this thread.
            unsafe { l.unlock_exclusive_fair() };
            // Handed over without being freed: the readers hold it, this thread cannot write.
            assert!(l.is_locked());
            assert!(!l.try_lock_exclusive());
            rx.recv().unwrap();
            rx.recv().unwrap();
            for t in readers {
                t.join().unwrap();
            }
            assert_eq!(state(&l), 0);
        });
    }

    #[test]
    fn a_release_hands_over_when_asked_or_when_due_and_else_frees() {
        let woke = |more: bool, be_fair: bool| {
            let mut r = UnparkResult::default();
            r.unparked_threads = 1;
            r.have_more_threads = more;
            r.be_fair = be_fair;
            r
        };
        for due in [false, true] {
            assert_eq!(
                after_release(2 * ONE_READER, woke(false, due), true),
                (2 * ONE_READER, TOKEN_HANDOFF)
            );
            assert_eq!(
                after_release(WRITER, woke(true, due), true),
                (WRITER | PARKED, TOKEN_HANDOFF)
            );
        }
        assert_eq!(
            after_release(WRITER, woke(false, true), false),
            (WRITER, TOKEN_HANDOFF)
        );
        assert_eq!(
            after_release(WRITER, woke(false, false), false),
            (0, TOKEN_NORMAL)
        );
        assert_eq!(
            after_release(WRITER, woke(true, false), false),
            (PARKED, TOKEN_NORMAL)
        );
        // Nobody woken: freed, fair or not.
        for fair in [false, true] {
            assert_eq!(
                after_release(0, UnparkResult::default(), fair),
                (0, TOKEN_NORMAL)
            );
        }
    }

    #[test]
    fn a_writer_is_not_starved_by_a_stream_of_readers() {
        within_a_minute(|| {
            let l = Arc::new(WordRwLock::new());
            let stop = Arc::new(AtomicBool::new(false));
            // Two readers whose holds overlap: without writer preference the count never drops
            // to zero.
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let (l, stop) = (l.clone(), stop.clone());
                    thread::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            l.lock_shared();
                            thread::sleep(Duration::from_millis(2));
                            // SAFETY: held.
                            unsafe { l.unlock_shared() };
                        }
                    })
                })
                .collect();
            while state(&l) & READERS == 0 {
                thread::yield_now();
            }
            let got = l.try_lock_exclusive_for(Duration::from_secs(20));
            stop.store(true, Ordering::Relaxed);
            assert!(got, "the writer starved");
            // SAFETY: held.
            unsafe { l.unlock_exclusive() };
            for t in readers {
                t.join().unwrap();
            }
        });
    }

    #[test]
    fn a_recursive_read_while_a_writer_waits_does_not_deadlock() {
        within_a_minute(|| {
            let l = Arc::new(WordRwLock::new());
            l.lock_shared();
            let l2 = l.clone();
            let writer = thread::spawn(move || {
                l2.lock_exclusive();
                // SAFETY: held.
                unsafe { l2.unlock_exclusive() };
            });
            until(&l, WRITER | WRITER_PARKED);
            // The writer waits for this thread's read: a plain read must wait behind it (and
            // would deadlock), a recursive one enters.
            assert!(!l.try_lock_shared());
            assert!(!l.try_lock_shared_for(Duration::from_millis(20)));
            l.lock_shared_recursive();
            assert_eq!(state(&l) & READERS, 2 * ONE_READER);
            // SAFETY: two shared holds of this thread.
            unsafe {
                l.unlock_shared();
                l.unlock_shared();
            }
            writer.join().unwrap();
            assert_eq!(state(&l), 0);
        });
    }

    #[test]
    fn an_upgrade_waits_for_the_readers_to_drain_and_keeps_new_ones_out() {
        within_a_minute(|| {
            let l = Arc::new(WordRwLock::new());
            let upgraded = Arc::new(AtomicBool::new(false));
            l.lock_shared();
            let (l2, up2) = (l.clone(), upgraded.clone());
            let upgrader = thread::spawn(move || {
                l2.lock_upgradable();
                // SAFETY: the upgradable hold is this thread's.
                unsafe {
                    l2.upgrade();
                    up2.store(true, Ordering::SeqCst);
                    l2.unlock_exclusive();
                }
            });
            until(&l, WRITER | WRITER_PARKED);
            assert!(!upgraded.load(Ordering::SeqCst), "upgraded beside a reader");
            assert!(
                !l.try_lock_shared(),
                "a new reader entered past the upgrade"
            );
            // SAFETY: this thread's read.
            unsafe { l.unlock_shared() };
            upgrader.join().unwrap();
            assert!(upgraded.load(Ordering::SeqCst));
            assert_eq!(state(&l), 0);
        });
    }

    #[test]
    fn a_downgrade_lets_the_waiting_readers_in() {
        within_a_minute(|| {
            let l = Arc::new(WordRwLock::new());
            l.lock_exclusive();
            let l2 = l.clone();
            let reader = thread::spawn(move || {
                l2.lock_shared();
                // SAFETY: held.
                unsafe { l2.unlock_shared() };
            });
            until(&l, PARKED);
            // SAFETY: the exclusive hold is this thread's; then its shared one.
            unsafe {
                l.downgrade();
                // The reader gets in beside this thread's read.
                reader.join().unwrap();
                l.unlock_shared();
            }
            assert_eq!(state(&l), 0);
        });
    }

    #[test]
    fn a_bump_lets_the_sleeper_in_first() {
        within_a_minute(|| {
            let l = Arc::new(WordRwLock::new());
            let ran = Arc::new(AtomicBool::new(false));
            l.lock_exclusive();
            let (l2, ran2) = (l.clone(), ran.clone());
            let t = thread::spawn(move || {
                l2.lock_exclusive();
                ran2.store(true, Ordering::Relaxed);
                // SAFETY: held.
                unsafe { l2.unlock_exclusive() };
            });
            until(&l, PARKED);
            // SAFETY: held by this thread.
            unsafe { l.bump_exclusive() };
            assert!(
                ran.load(Ordering::Relaxed),
                "the sleeper held it during the bump"
            );
            // SAFETY: held again.
            unsafe { l.unlock_exclusive() };
            t.join().unwrap();
            assert_eq!(state(&l), 0);
        });
    }

    #[test]
    fn a_writer_relocking_in_a_loop_does_not_starve_a_sleeper() {
        within_a_minute(|| {
            let l = Arc::new(WordRwLock::new());
            let got = Arc::new(AtomicBool::new(false));
            l.lock_exclusive();
            let (l2, got2) = (l.clone(), got.clone());
            let t = thread::spawn(move || {
                l2.lock_shared();
                got2.store(true, Ordering::Relaxed);
                // SAFETY: held.
                unsafe { l2.unlock_shared() };
            });
            until(&l, PARKED);
            // SAFETY: held by this thread.
            unsafe { l.unlock_exclusive() };
            // Re-lock at once, again and again: parking_lot_core asks for fairness about every
            // 0.5 ms, and the lock is then handed over.
            let start = Instant::now();
            while !got.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(20) {
                l.lock_exclusive();
                // SAFETY: held.
                unsafe { l.unlock_exclusive() };
            }
            assert!(got.load(Ordering::Relaxed), "the sleeper starved");
            t.join().unwrap();
        });
    }
}
