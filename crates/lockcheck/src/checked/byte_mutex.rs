//! The raw lock under [`super::RawMutex`]: one word, parking_lot's protocol, with an uncontended
//! try that is one `compare_exchange` ([`ByteMutex::try_lock_once`]).
//!
//! Why not parking_lot's `RawMutex`: its `try_lock` is a loop (load, test, weak exchange, again
//! on a spurious failure), twice the instructions of its `lock`'s single exchange, and the only
//! single exchange `lock_api` exposes is inside `try_lock_for`, whose failure branch (the clock,
//! the slow lock) gives every caller a frame (docs/benchmarks-history.md, "Round 6"). The checked fast path
//! needs a try that may fail for any reason (the full path tries again), so a lost race or a
//! spurious failure costs nothing there. No crate offers that try on a parking lot: `lock_api`
//! has no such method and parking_lot's state byte is private. So this is lockcheck's own, on
//! `parking_lot_core` (which every user already builds through parking_lot), with parking_lot's
//! semantics, learned from its `raw_mutex.rs` and written anew:
//!
//! - the state word holds `LOCKED` and `PARKED` (some thread sleeps, or is about to, on the
//!   lock's address in `parking_lot_core`'s table), and `FRESH` (see below);
//! - `lock` spins a little while nobody is parked, then parks; `unlock` is one exchange when
//!   nobody is parked, else it wakes one thread;
//! - eventual fairness: when `parking_lot_core` says so (about every 0.5 ms per lock), and always
//!   in `unlock_fair`, the lock is handed to the woken thread without being released, so a
//!   thread that re-locks in a loop cannot starve a sleeper;
//! - timed locks give up at their deadline, clearing `PARKED` when they were the last sleeper.
//!
//! `FRESH` is lockcheck's: set by [`ByteMutex::fresh`] (the checked mutex's `const fn new`), it
//! fails the one-shot try and nothing else (every other operation keeps it as it is, so a lock
//! still `FRESH` works as any other, only its plain `unlock` leaves the inline path), until
//! [`ByteMutex::clear_fresh`]. The checked mutex clears it once it has given the lock its
//! identity, so that a successful one-shot try means "identity assigned" and the fast path
//! needs no test of its own for it.
//!
//! Not carried over: parking_lot's `deadlock_detection` bookkeeping (its detector does not see
//! lockcheck's checked mutexes, which lockcheck itself checks) and hardware lock elision (which
//! parking_lot's mutex does not use either).

use parking_lot_core::{ParkResult, SpinWait, UnparkResult, UnparkToken, DEFAULT_PARK_TOKEN};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Held.
const LOCKED: u32 = 1;
/// Threads may be parked on the lock's address.
const PARKED: u32 = 2;
/// Never named by its owner (see the module's text): the one-shot try fails.
const FRESH: u32 = 4;

/// The woken thread was not given the lock: it competes for it.
const TOKEN_NORMAL: UnparkToken = UnparkToken(0);
/// The woken thread owns the lock already (a fair unlock).
const TOKEN_HANDOFF: UnparkToken = UnparkToken(1);

/// A one-word mutex parked on `parking_lot_core` (see the module's text; named for the byte it
/// was until `FRESH` came, and the module with it, to keep other branches' paths). A word:
/// `fetch_or` of one bit is a `lock bts` on a word (a loop of `compare_exchange` on a byte),
/// and the checked mutex's identity after it keeps the size the same.
pub(crate) struct ByteMutex {
    state: AtomicU32,
}

impl ByteMutex {
    /// Unlocked (the raw lock's own tests: the checked mutex starts [`ByteMutex::fresh`]).
    #[cfg(test)]
    pub(crate) const fn new() -> ByteMutex {
        ByteMutex {
            state: AtomicU32::new(0),
        }
    }

    /// Unlocked and [`FRESH`]: the one-shot try fails until [`ByteMutex::clear_fresh`].
    pub(crate) const fn fresh() -> ByteMutex {
        ByteMutex {
            state: AtomicU32::new(FRESH),
        }
    }

    /// Whether [`ByteMutex::clear_fresh`] has not run yet.
    #[inline(always)]
    pub(crate) fn is_fresh(&self) -> bool {
        self.state.load(Ordering::Relaxed) & FRESH != 0
    }

    /// Lets the one-shot try succeed from now on. `Release`: whoever's one-shot try succeeds
    /// afterwards (`Acquire`) sees what the caller did before (the checked mutex's identity).
    pub(crate) fn clear_fresh(&self) {
        self.state.fetch_and(!FRESH, Ordering::Release);
    }

    /// One attempt, no retry: `true` when the lock was free, nobody was parked on it, it is not
    /// [`FRESH`], and this thread took it. `false` also on a lost race or while threads sleep on
    /// it (the caller then takes its general path, which tries again).
    #[inline(always)]
    pub(crate) fn try_lock_once(&self) -> bool {
        self.state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// One attempt, no retry, for a caller that knows the checked mutex's identity is assigned
    /// (so [`FRESH`] need not fail it): `true` when the lock was free, sleepers announced or
    /// not, and this thread took it (as [`ByteMutex::lock`]'s fast path and parking_lot's slow
    /// path take a free lock); `false` when it was held, with nothing changed. One `lock bts`
    /// and a branch, two instructions less than [`ByteMutex::try_lock_once`]'s exchange (which
    /// needs its two operands in registers).
    #[inline(always)]
    pub(crate) fn try_lock_named(&self) -> bool {
        self.state.fetch_or(LOCKED, Ordering::Acquire) & LOCKED == 0
    }

    /// Acquires, blocking. Inline, one `lock bts` and a branch: free with sleepers announced
    /// or [`FRESH`], the lock is taken here too (as `lock_slow` would).
    #[inline]
    pub(crate) fn lock(&self) {
        if self.state.fetch_or(LOCKED, Ordering::Acquire) & LOCKED != 0 {
            self.lock_slow(None);
        }
    }

    /// Acquires if free (parked threads or not), without blocking.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        while state & LOCKED == 0 {
            match self.state.compare_exchange_weak(
                state,
                state | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(s) => state = s,
            }
        }
        false
    }

    /// Acquires, blocking at most `timeout`.
    pub(crate) fn try_lock_for(&self, timeout: Duration) -> bool {
        self.try_lock() || self.lock_slow(Instant::now().checked_add(timeout))
    }

    /// Acquires, blocking until `deadline` at most.
    pub(crate) fn try_lock_until(&self, deadline: Instant) -> bool {
        self.try_lock() || self.lock_slow(Some(deadline))
    }

    /// Releases; wakes one sleeper if any (handing it the lock when it is time to be fair).
    ///
    /// One `lock sub` and a branch: the lock is free as soon as `LOCKED` is taken off (a
    /// `compare_exchange(LOCKED, 0)` needs two registers more). With sleepers announced the rest
    /// runs out of line on a free lock ([`ByteMutex::after_free`]).
    ///
    /// # Safety
    /// Held by the caller (or by whoever the caller releases it for).
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        if self.state.fetch_sub(LOCKED, Ordering::Release) != LOCKED {
            self.unlock_slow_freed();
        }
    }

    /// [`ByteMutex::unlock`] for a lock that may be [`FRESH`] (never named: the checked mutex's
    /// untracked holds), still inline: one `lock xadd` and a test of `PARKED` (with `FRESH`
    /// set, the plain `unlock` would leave the inline path every time).
    ///
    /// # Safety
    /// As [`ByteMutex::unlock`].
    #[inline]
    pub(crate) unsafe fn unlock_any(&self) {
        if self.state.fetch_sub(LOCKED, Ordering::Release) & PARKED != 0 {
            self.unlock_slow_freed();
        }
    }

    /// Releases, handing the lock to a sleeper if there is one.
    ///
    /// # Safety
    /// As [`ByteMutex::unlock`].
    #[inline]
    pub(crate) unsafe fn unlock_fair(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow(true);
        }
    }

    /// Lets a sleeper run its critical section first, if there is one, then holds the lock again.
    ///
    /// # Safety
    /// As [`ByteMutex::unlock`].
    pub(crate) unsafe fn bump(&self) {
        if self.state.load(Ordering::Relaxed) & PARKED != 0 {
            self.unlock_slow(true);
            self.lock();
        }
    }

    /// Whether some thread holds it.
    pub(crate) fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// `false`: the deadline passed.
    #[cold]
    #[inline(never)]
    fn lock_slow(&self, deadline: Option<Instant>) -> bool {
        let mut spin = SpinWait::new();
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            // Free: take it, sleepers or not (they were woken, or will be, by the release that
            // freed it; fairness is the releaser's decision).
            if state & LOCKED == 0 {
                match self.state.compare_exchange_weak(
                    state,
                    state | LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(s) => state = s,
                }
                continue;
            }
            // Held and nobody asleep: the holder may be about to release, spin a little.
            if state & PARKED == 0 && spin.spin() {
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
            let key = self as *const ByteMutex as usize;
            // SAFETY: the key is this lock's address, which nothing else parks on (the checked
            // mutex that holds it starts with it); the callbacks neither panic nor park nor call
            // into parking_lot.
            let parked = unsafe {
                parking_lot_core::park(
                    key,
                    // Sleep only if the state is still "held, sleepers announced": a release in
                    // between would otherwise be missed.
                    || self.state.load(Ordering::Relaxed) & !FRESH == LOCKED | PARKED,
                    || {},
                    |_, last| {
                        if last {
                            self.state.fetch_and(!PARKED, Ordering::Relaxed);
                        }
                    },
                    DEFAULT_PARK_TOKEN,
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

    /// [`ByteMutex::unlock`]'s release with sleepers, the lock already freed: wakes one.
    #[cold]
    #[inline(never)]
    fn unlock_slow_freed(&self) {
        let key = self as *const ByteMutex as usize;
        // SAFETY: as in `lock_slow`; the callback neither panics nor parks.
        unsafe {
            parking_lot_core::unpark_one(key, |r| self.after_free(r));
        }
    }

    /// What a release that freed the lock and woke `r` does next (under the queue's lock): when
    /// `parking_lot_core` says it is time to be fair, it takes the lock back for the woken
    /// thread and hands it over, unless another thread took it in between (then the woken thread
    /// competes, and fairness waits for a later release); `PARKED` is cleared with nobody left
    /// asleep, whoever holds the lock now.
    fn after_free(&self, r: UnparkResult) -> UnparkToken {
        if r.unparked_threads != 0 && r.be_fair {
            let mut state = self.state.load(Ordering::Relaxed);
            while state & LOCKED == 0 {
                let rest = if r.have_more_threads {
                    state
                } else {
                    state & !PARKED
                };
                match self.state.compare_exchange_weak(
                    state,
                    rest | LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return TOKEN_HANDOFF,
                    Err(s) => state = s,
                }
            }
        }
        if !r.have_more_threads {
            self.state.fetch_and(!PARKED, Ordering::Relaxed);
        }
        TOKEN_NORMAL
    }

    /// The release with sleepers, the lock still held (`unlock_fair`, `bump`): wakes one, and
    /// either frees the lock or hands it over.
    #[cold]
    #[inline(never)]
    fn unlock_slow(&self, fair: bool) {
        let key = self as *const ByteMutex as usize;
        let hand_over = |r: UnparkResult| {
            let (state, token) = after_wake(r, fair);
            if let Some(state) = state {
                // `FRESH` as it is. A `clear_fresh` between the load and the store is undone:
                // the next acquisitions then go the checked mutex's full way, which clears it
                // again.
                let fresh = self.state.load(Ordering::Relaxed) & FRESH;
                self.state.store(state | fresh, Ordering::Release);
            }
            token
        };
        // SAFETY: as in `lock_slow`; the callback neither panics nor parks.
        unsafe {
            parking_lot_core::unpark_one(key, hand_over);
        }
    }
}

/// What a release that woke `r` leaves: the state word to store (`None`: unchanged) and the
/// woken thread's token. Handed over (still held, now by the woken thread) on request (`fair`)
/// or when `parking_lot_core` says it is time; else freed. `PARKED` stays while others sleep.
fn after_wake(r: UnparkResult, fair: bool) -> (Option<u32>, UnparkToken) {
    if r.unparked_threads != 0 && (fair || r.be_fair) {
        let state = if r.have_more_threads {
            None
        } else {
            Some(LOCKED)
        };
        return (state, TOKEN_HANDOFF);
    }
    let rest = if r.have_more_threads { PARKED } else { 0 };
    (Some(rest), TOKEN_NORMAL)
}

impl std::fmt::Debug for ByteMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteMutex")
            .field("locked", &self.is_locked())
            .finish()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::{after_wake, ByteMutex, FRESH, LOCKED, PARKED, TOKEN_HANDOFF, TOKEN_NORMAL};
    use parking_lot_core::UnparkResult;
    use std::cell::UnsafeCell;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::thread;
    use std::time::{Duration, Instant};

    /// Runs `f` on its own thread; fails the test if it has not finished within a minute (the
    /// raw locks' tests: also `word_rwlock`'s).
    pub(in crate::checked) fn within_a_minute(f: impl FnOnce() + Send + 'static) {
        let (tx, rx) = mpsc::channel();
        let t = thread::spawn(move || {
            f();
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("must not hang");
        t.join().unwrap();
    }

    /// Waits until some thread sleeps on `m`: its announcement, then time to be queued (it
    /// announces itself first; a release in between finds nobody to wake, and the thread
    /// takes the lock when it sees the release instead of sleeping).
    fn until_parked(m: &ByteMutex) {
        while m.state.load(Ordering::Relaxed) & PARKED == 0 {
            thread::yield_now();
        }
        thread::sleep(Duration::from_millis(50));
    }

    struct Counted {
        m: ByteMutex,
        n: UnsafeCell<u64>,
    }
    // SAFETY: `n` is only touched under `m`.
    unsafe impl Sync for Counted {}

    #[test]
    fn contended_increments_are_all_kept() {
        contended_increments(ByteMutex::new(), 0);
    }

    #[test]
    fn contended_increments_on_a_fresh_lock_are_all_kept_and_it_stays_fresh() {
        contended_increments(ByteMutex::fresh(), FRESH);
    }

    /// 4 threads × 20,000 increments under `m`, every way in and out mixed; `m`'s state word is
    /// `end` at the end.
    fn contended_increments(m: ByteMutex, end: u32) {
        within_a_minute(move || {
            let c = Arc::new(Counted {
                m,
                n: UnsafeCell::new(0),
            });
            let threads: Vec<_> = (0..4)
                .map(|i| {
                    let c = c.clone();
                    thread::spawn(move || {
                        for k in 0..20_000u64 {
                            // The three ways in, mixed.
                            match (i + k) % 3 {
                                0 => c.m.lock(),
                                1 => {
                                    if !c.m.try_lock_once() {
                                        c.m.lock()
                                    }
                                }
                                _ => assert!(c.m.try_lock_for(Duration::from_secs(30))),
                            }
                            // SAFETY: held.
                            unsafe {
                                *c.n.get() += 1;
                                match k % 4 {
                                    0 => c.m.unlock(),
                                    1 => c.m.unlock_any(),
                                    _ => c.m.unlock_fair(),
                                }
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert!(!c.m.is_locked());
            // SAFETY: every thread is done.
            assert_eq!(unsafe { *c.n.get() }, 80_000);
            assert_eq!(
                c.m.state.load(Ordering::Relaxed),
                end,
                "no sleeper left announced, `FRESH` as it was"
            );
        });
    }

    #[test]
    fn a_fresh_lock_fails_the_one_shot_try_alone_until_cleared() {
        let m = ByteMutex::fresh();
        assert!(m.is_fresh());
        assert!(!m.try_lock_once(), "fresh");
        // Every other way in and out works, and keeps `FRESH`.
        m.lock();
        assert!(m.is_locked() && !m.try_lock() && !m.try_lock_once());
        // SAFETY (each unlock): held.
        unsafe { m.unlock_any() };
        assert_eq!(m.state.load(Ordering::Relaxed), FRESH);
        assert!(m.try_lock());
        unsafe { m.unlock() };
        assert_eq!(m.state.load(Ordering::Relaxed), FRESH);
        assert!(m.try_lock_for(Duration::ZERO));
        unsafe { m.unlock_fair() };
        assert_eq!(m.state.load(Ordering::Relaxed), FRESH);
        assert!(!m.try_lock_once(), "still fresh");
        m.clear_fresh();
        assert!(!m.is_fresh());
        assert!(m.try_lock_once());
        unsafe { m.unlock() };
        assert_eq!(m.state.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_named_try_takes_any_free_lock_and_changes_nothing_on_a_held_one() {
        // Free, free with a sleeper announced, free and `FRESH` (kept: only `clear_fresh` takes
        // it off), each with and without the others: taken; held: refused, the word as it was.
        for rest in [0, PARKED, FRESH, PARKED | FRESH] {
            let m = ByteMutex::new();
            m.state.store(rest, Ordering::Relaxed);
            assert!(m.try_lock_named(), "free ({rest:#x})");
            assert_eq!(m.state.load(Ordering::Relaxed), rest | LOCKED);
            assert!(!m.try_lock_named(), "held ({rest:#x})");
            assert!(!m.try_lock_once());
            assert_eq!(m.state.load(Ordering::Relaxed), rest | LOCKED);
            m.state.store(rest, Ordering::Relaxed);
        }
        // A fresh lock's one-shot try still fails; the named try is for callers that saw the
        // identity assigned.
        let m = ByteMutex::fresh();
        assert!(!m.try_lock_once());
        assert!(m.try_lock_named());
        // SAFETY: held.
        unsafe { m.unlock_any() };
        assert_eq!(m.state.load(Ordering::Relaxed), FRESH);
    }

    #[test]
    fn a_fresh_lock_parks_and_wakes() {
        within_a_minute(|| {
            let m = Arc::new(ByteMutex::fresh());
            m.lock();
            let m2 = m.clone();
            let t = thread::spawn(move || {
                m2.lock();
                // SAFETY: held.
                unsafe { m2.unlock_any() };
            });
            until_parked(&m);
            assert_eq!(m.state.load(Ordering::Relaxed), LOCKED | PARKED | FRESH);
            // SAFETY: held by this thread.
            unsafe { m.unlock_any() };
            t.join().unwrap();
            assert_eq!(m.state.load(Ordering::Relaxed), FRESH);
        });
    }

    #[test]
    fn the_one_shot_try_fails_when_held_or_slept_on_and_the_full_try_only_when_held() {
        let m = ByteMutex::new();
        assert!(m.try_lock_once());
        assert!(!m.try_lock_once());
        assert!(!m.try_lock());
        // SAFETY: held.
        unsafe { m.unlock() };
        // Free, a sleeper announced (a release just woke it): only the full try takes it.
        m.state.store(PARKED, Ordering::Relaxed);
        assert!(!m.try_lock_once());
        assert!(m.try_lock());
        assert_eq!(m.state.load(Ordering::Relaxed), LOCKED | PARKED);
        m.state.store(0, Ordering::Relaxed);
    }

    #[test]
    fn timed_locks_give_up_at_their_deadline_and_succeed_once_free() {
        within_a_minute(|| {
            let m = Arc::new(ByteMutex::new());
            m.lock();
            let m2 = m.clone();
            let waited = thread::spawn(move || {
                let t = Instant::now();
                let got = m2.try_lock_for(Duration::from_millis(100));
                let until = m2.try_lock_until(Instant::now() + Duration::from_millis(50));
                (got, until, t.elapsed())
            })
            .join()
            .unwrap();
            assert!(!waited.0 && !waited.1);
            assert!(waited.2 >= Duration::from_millis(150), "{:?}", waited.2);
            // The last sleeper that timed out took its announcement back.
            assert_eq!(m.state.load(Ordering::Relaxed), LOCKED);
            let m2 = m.clone();
            let t = thread::spawn(move || {
                let got = m2.try_lock_for(Duration::from_secs(30));
                // SAFETY: held when `got`.
                if got {
                    unsafe { m2.unlock() };
                }
                got
            });
            until_parked(&m);
            // SAFETY: held by this thread.
            unsafe { m.unlock() };
            assert!(
                t.join().unwrap(),
                "woken by the release before its deadline"
            );
            // A deadline already past: one try, no sleep.
            assert!(m.try_lock_until(Instant::now() - Duration::from_millis(1)));
            assert!(!m.try_lock_for(Duration::ZERO));
            // SAFETY: held.
            unsafe { m.unlock() };
        });
    }

    #[test]
    fn a_fair_unlock_hands_the_lock_to_the_sleeper() {
        within_a_minute(|| {
            let m = Arc::new(ByteMutex::new());
            m.lock();
            let m2 = m.clone();
            let (tx, rx) = mpsc::channel();
            let t = thread::spawn(move || {
                m2.lock();
                tx.send(()).unwrap();
                thread::sleep(Duration::from_millis(20));
                // SAFETY: held.
                unsafe { m2.unlock() };
            });
            until_parked(&m);
            // SAFETY: held by this thread.
            unsafe { m.unlock_fair() };
            // Handed over without being released: this thread cannot take it back.
            assert!(m.is_locked());
            assert!(!m.try_lock());
            rx.recv().unwrap();
            t.join().unwrap();
            assert!(m.try_lock());
            // SAFETY: held.
            unsafe { m.unlock() };
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
        // Asked (`unlock_fair`, `bump`) or due: handed over, `PARKED` cleared with nobody left.
        for due in [false, true] {
            assert_eq!(
                after_wake(woke(false, due), true),
                (Some(LOCKED), TOKEN_HANDOFF)
            );
            assert_eq!(after_wake(woke(true, due), true), (None, TOKEN_HANDOFF));
        }
        assert_eq!(
            after_wake(woke(false, true), false),
            (Some(LOCKED), TOKEN_HANDOFF)
        );
        // Neither: freed, the announcement kept while others sleep.
        assert_eq!(
            after_wake(woke(false, false), false),
            (Some(0), TOKEN_NORMAL)
        );
        assert_eq!(
            after_wake(woke(true, false), false),
            (Some(PARKED), TOKEN_NORMAL)
        );
        // Nobody woken (the sleeper not queued yet, or timed out): freed, fair or not.
        for fair in [false, true] {
            assert_eq!(
                after_wake(UnparkResult::default(), fair),
                (Some(0), TOKEN_NORMAL)
            );
        }
    }

    #[test]
    fn a_freed_release_hands_over_when_due_unless_taken_meanwhile() {
        let woke = |n: u32, more: bool, be_fair: bool| {
            let mut r = UnparkResult::default();
            r.unparked_threads = n as usize;
            r.have_more_threads = more;
            r.be_fair = be_fair;
            r
        };
        let after = |state: u32, r: UnparkResult| {
            let m = ByteMutex::new();
            m.state.store(state, Ordering::Relaxed);
            let token = m.after_free(r);
            (m.state.load(Ordering::Relaxed), token)
        };
        // Due: taken back for the woken thread, `PARKED` kept only while others sleep.
        assert_eq!(after(PARKED, woke(1, false, true)), (LOCKED, TOKEN_HANDOFF));
        assert_eq!(
            after(PARKED, woke(1, true, true)),
            (LOCKED | PARKED, TOKEN_HANDOFF)
        );
        // Due, but another thread took it since: no hand-over, the woken thread competes.
        assert_eq!(
            after(LOCKED | PARKED, woke(1, false, true)),
            (LOCKED, TOKEN_NORMAL)
        );
        assert_eq!(
            after(LOCKED | PARKED, woke(1, true, true)),
            (LOCKED | PARKED, TOKEN_NORMAL)
        );
        // Not due: stays free.
        assert_eq!(after(PARKED, woke(1, false, false)), (0, TOKEN_NORMAL));
        assert_eq!(after(PARKED, woke(1, true, false)), (PARKED, TOKEN_NORMAL));
        // Nobody woken (not queued yet, or timed out): free, the announcement dropped.
        assert_eq!(after(PARKED, woke(0, false, true)), (0, TOKEN_NORMAL));
    }

    #[test]
    fn a_bump_lets_the_sleeper_in_first() {
        within_a_minute(|| {
            let m = Arc::new(ByteMutex::new());
            let ran = Arc::new(AtomicBool::new(false));
            m.lock();
            let (m2, ran2) = (m.clone(), ran.clone());
            let t = thread::spawn(move || {
                m2.lock();
                ran2.store(true, Ordering::Relaxed);
                // SAFETY: held.
                unsafe { m2.unlock() };
            });
            until_parked(&m);
            // SAFETY: held by this thread.
            unsafe { m.bump() };
            assert!(
                ran.load(Ordering::Relaxed),
                "the sleeper held it during the bump"
            );
            // SAFETY: held again.
            unsafe { m.unlock() };
            t.join().unwrap();
        });
    }

    #[test]
    fn a_thread_relocking_in_a_loop_does_not_starve_a_sleeper() {
        within_a_minute(|| {
            let m = Arc::new(ByteMutex::new());
            let got = Arc::new(AtomicBool::new(false));
            m.lock();
            let (m2, got2) = (m.clone(), got.clone());
            let t = thread::spawn(move || {
                m2.lock();
                got2.store(true, Ordering::Relaxed);
                // SAFETY: held.
                unsafe { m2.unlock() };
            });
            until_parked(&m);
            // SAFETY: held by this thread.
            unsafe { m.unlock() };
            // Re-lock at once, again and again: the plain unlock usually wins the race, but
            // about every 0.5 ms parking_lot_core asks for fairness and the lock is handed over.
            let start = Instant::now();
            while !got.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(20) {
                m.lock();
                // SAFETY: held.
                unsafe { m.unlock() };
            }
            assert!(got.load(Ordering::Relaxed), "the sleeper starved");
            t.join().unwrap();
        });
    }
}
