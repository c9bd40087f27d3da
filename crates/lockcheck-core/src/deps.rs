//! Lock dependencies and the rules that decide whether a cycle of them is a feasible deadlock.
//!
//! A dependency `(thread, lock, held, mode)` says: `thread` requested `lock` in `mode` while holding
//! the locks in `held`. A lock-order cycle `l0 -> l1 -> ... -> l0` is a *feasible* deadlock only if
//! one dependency per edge can be chosen such that all of them could be waited on at the same time
//! (the iGoodLock conditions, Joshi et al., PLDI 2009, extended with modes and fork/join):
//!
//! 1. every request can block forever (no `try_*`, no timed acquisition);
//! 2. the threads are pairwise distinct (one thread cannot wait twice at once);
//! 3. the held sets are pairwise disjoint, up to shared holds that do not exclude each other (a lock
//!    held by all of them is a *gate*: only one of them can be inside it);
//! 4. the dependencies are pairwise concurrent under fork/join happens-before;
//! 5. each request conflicts with the mode in which the next thread holds that lock (two readers do
//!    not block each other, unless a writer can queue between them).
//!
//! The same rules serve the runtime detector (which checks a new dependency against the graph) and
//! the offline analyzer (which enumerates cycles), so both agree on what a violation is.

use crate::trace::{How, Mode};
use std::fmt;

/// A thread's knowledge of other threads' progress, over fork and join only.
///
/// Lock release/acquire pairs deliberately do not order events here: two critical sections that
/// happened to run one after the other under a lock could as well have overlapped, and that overlap
/// is exactly the deadlock a predictive detector must find.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct VectorClock {
    // Sorted by thread; absent entries are 0. Most programs fork few threads, so a sorted vector
    // beats a map in both space and speed.
    entries: Vec<(u64, u32)>,
}

impl VectorClock {
    /// A clock that knows nothing.
    pub const fn new() -> Self {
        VectorClock {
            entries: Vec::new(),
        }
    }

    /// The epoch of `thread` known to this clock.
    pub fn get(&self, thread: u64) -> u32 {
        match self.entries.binary_search_by_key(&thread, |e| e.0) {
            Ok(i) => self.entries[i].1,
            Err(_) => 0,
        }
    }

    /// Sets the epoch of `thread`.
    pub fn set(&mut self, thread: u64, epoch: u32) {
        match self.entries.binary_search_by_key(&thread, |e| e.0) {
            Ok(i) => self.entries[i].1 = epoch,
            Err(i) => self.entries.insert(i, (thread, epoch)),
        }
    }

    /// Advances `thread`'s own epoch by one.
    pub fn tick(&mut self, thread: u64) {
        let e = self.get(thread);
        self.set(thread, e.saturating_add(1));
    }

    /// Pointwise maximum with `other` (what a join learns).
    pub fn join(&mut self, other: &VectorClock) {
        for &(t, e) in &other.entries {
            if e > self.get(t) {
                self.set(t, e);
            }
        }
    }

    /// Whether every entry of `self` but `except`'s is at most `other`'s. A walk over both
    /// sorted lists, allocating nothing.
    pub fn others_at_most(&self, other: &VectorClock, except: u64) -> bool {
        let mut theirs = other.entries.iter().peekable();
        self.entries.iter().all(|&(t, e)| {
            if t == except || e == 0 {
                return true;
            }
            while theirs.next_if(|o| o.0 < t).is_some() {}
            theirs.peek().is_some_and(|o| o.0 == t && e <= o.1)
        })
    }

    /// Whether an event of `thread` at clock `self` happened before an event at clock `later`.
    pub fn happens_before(&self, thread: u64, later: &VectorClock) -> bool {
        let own = self.get(thread);
        own != 0 && own <= later.get(thread)
    }
}

/// One lock dependency: `thread` requested `lock` in `mode` (`how`) while holding `held`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency<L> {
    /// The requesting thread (unique within the analysis, across processes).
    pub thread: u64,
    /// The requested lock.
    pub lock: L,
    /// The requested mode.
    pub mode: Mode,
    /// Whether the request could block forever.
    pub how: How,
    /// The locks held at the request, with the mode each is held in, oldest first.
    pub held: Vec<(L, Mode)>,
    /// The thread's vector clock at the request (empty if fork/join is unknown).
    pub clock: VectorClock,
}

impl<L: Copy + Eq> Dependency<L> {
    /// The mode in which this dependency's thread holds `lock`, if it does.
    pub fn held_mode(&self, lock: L) -> Option<Mode> {
        self.held.iter().find(|h| h.0 == lock).map(|h| h.1)
    }
}

/// Why a candidate cycle is not a feasible deadlock: the name of the filter that removed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Infeasible<L> {
    /// A request in the cycle never blocks (`try_*`) or blocks only up to a timeout.
    NonBlocking {
        /// Whether the acquisition was a timed one (else a `try_*`).
        timed: bool,
    },
    /// Two dependencies of the cycle come from the same thread.
    SameThread {
        /// That thread.
        thread: u64,
    },
    /// Two dependencies of the cycle hold a common lock in conflicting modes: a gate lock.
    GateLock {
        /// The common lock.
        gate: L,
    },
    /// Two dependencies of the cycle are ordered by fork/join.
    HappensBefore,
    /// A request does not conflict with the mode in which the next thread holds the lock: a read
    /// behind a read, of a lock that no write can come between ([`write_between`]).
    ReadRead {
        /// The lock read by both.
        lock: L,
    },
}

impl<L> Infeasible<L> {
    /// Stable name of the filter, as used in reports (`same-thread`, `gate-lock`, `fork-join`,
    /// `read-read`, `try-lock`, `timed-lock`).
    pub fn filter_name(&self) -> &'static str {
        match self {
            Infeasible::NonBlocking { timed: false } => "try-lock",
            Infeasible::NonBlocking { timed: true } => "timed-lock",
            Infeasible::SameThread { .. } => "same-thread",
            Infeasible::GateLock { .. } => "gate-lock",
            Infeasible::HappensBefore => "fork-join",
            Infeasible::ReadRead { .. } => "read-read",
        }
    }
}

impl<L: fmt::Debug> fmt::Display for Infeasible<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Infeasible::NonBlocking { timed: false } => f.write_str("an acquisition is a try_*"),
            Infeasible::NonBlocking { timed: true } => f.write_str("an acquisition has a timeout"),
            Infeasible::SameThread { thread } => {
                write!(f, "two edges come only from thread {thread}")
            }
            Infeasible::GateLock { gate } => write!(f, "all acquisitions are guarded by {gate:?}"),
            Infeasible::HappensBefore => f.write_str("the threads are ordered by spawn/join"),
            Infeasible::ReadRead { lock } => {
                write!(f, "no write of {lock:?} can come between its reads")
            }
        }
    }
}

/// What the rules need to know about a dependency, without fixing how it is stored.
///
/// [`Dependency`] stores its held set and clock inline, which suits the runtime (a few live
/// dependencies per lock pair). The offline analyzer keeps millions of distinct dependencies and
/// stores each as a few indices into shared tables of held sets and clocks; both implement this
/// view, so both are checked by the same rules.
pub trait DepView {
    /// The lock identifier.
    type Lock: Copy + Eq;
    /// The requesting thread.
    fn thread(&self) -> u64;
    /// The requested lock.
    fn lock(&self) -> Self::Lock;
    /// The requested mode.
    fn mode(&self) -> Mode;
    /// Whether the request could block forever.
    fn how(&self) -> How;
    /// The epoch of `thread` known to the thread's vector clock at the request (0: none).
    /// A view, not the clock itself, so that the analyzer may store its clocks its own way.
    fn epoch(&self, thread: u64) -> u32;
    /// Whether this dependency happens before `later` under fork/join (as
    /// [`VectorClock::happens_before`] of their clocks).
    fn happens_before<B: DepView + ?Sized>(&self, later: &B) -> bool {
        let own = self.epoch(self.thread());
        own != 0 && own <= later.epoch(self.thread())
    }
    /// The locks held at the request with their modes, oldest first.
    fn held_iter(&self) -> impl Iterator<Item = (Self::Lock, Mode)> + '_;
    /// The mode of the oldest hold of `lock` at the request, if it was held.
    fn held_mode(&self, lock: Self::Lock) -> Option<Mode> {
        self.held_iter().find(|h| h.0 == lock).map(|h| h.1)
    }
    /// Whether a hold of `lock` in `mode` can be a gate (see [`check_pair`]): not a permit of a
    /// semaphore known to have several permits, which two threads can each hold at once. A view
    /// that knows no permits says yes.
    fn gates(&self, lock: Self::Lock, mode: Mode) -> bool {
        let _ = (lock, mode);
        true
    }
}

impl<L: Copy + Eq> DepView for Dependency<L> {
    type Lock = L;
    fn thread(&self) -> u64 {
        self.thread
    }
    fn lock(&self) -> L {
        self.lock
    }
    fn mode(&self) -> Mode {
        self.mode
    }
    fn how(&self) -> How {
        self.how
    }
    fn epoch(&self, thread: u64) -> u32 {
        self.clock.get(thread)
    }
    fn held_iter(&self) -> impl Iterator<Item = (L, Mode)> + '_ {
        self.held.iter().copied()
    }
    fn held_mode(&self, lock: L) -> Option<Mode> {
        Dependency::held_mode(self, lock)
    }
}

/// Checks one dependency on its own: can it block forever?
pub fn check_blocking<D: DepView + ?Sized>(d: &D) -> Result<(), Infeasible<D::Lock>> {
    match d.how() {
        How::Blocking => Ok(()),
        How::Try => Err(Infeasible::NonBlocking { timed: false }),
        How::Timed => Err(Infeasible::NonBlocking { timed: true }),
    }
}

/// Checks two dependencies of one candidate cycle against each other: distinct threads, no gate
/// lock, concurrent. Used to prune a cycle search as soon as a pair fails.
pub fn check_pair<A, B>(a: &A, b: &B) -> Result<(), Infeasible<A::Lock>>
where
    A: DepView + ?Sized,
    B: DepView<Lock = A::Lock> + ?Sized,
{
    if a.thread() == b.thread() {
        return Err(Infeasible::SameThread { thread: a.thread() });
    }
    for (la, ma) in a.held_iter() {
        if let Some(mb) = b.held_mode(la) {
            if (ma.excludes(mb) || mb.excludes(ma)) && a.gates(la, ma) {
                return Err(Infeasible::GateLock { gate: la });
            }
        }
    }
    if a.happens_before(b) || b.happens_before(a) {
        return Err(Infeasible::HappensBefore);
    }
    Ok(())
}

/// Checks the link from `d` to `next` in a cycle: `d` requests `d.lock`, which `next` holds; the
/// request must conflict with that hold. `ever_written` says whether the lock is ever write-locked.
pub fn check_link<A, B>(d: &A, next: &B, ever_written: bool) -> Result<(), Infeasible<A::Lock>>
where
    A: DepView + ?Sized,
    B: DepView<Lock = A::Lock> + ?Sized,
{
    match next.held_mode(d.lock()) {
        Some(held) if d.mode().conflicts_with(held, ever_written) => Ok(()),
        Some(_) => Err(Infeasible::ReadRead { lock: d.lock() }),
        // `next` does not hold the lock: not a cycle link at all; callers never build such cycles.
        None => Err(Infeasible::ReadRead { lock: d.lock() }),
    }
}

/// Whether a write-lock of a lock, by `thread` at a vector clock whose entries `epoch` gives, can
/// be the queued writer of a read-read link: `a` requests the lock (shared) and `b` holds it
/// (shared) in a candidate cycle. A reader waits behind a reader only when a writer is queued in
/// between, so a read-read link counts only if some write can be that writer.
///
/// In a deadlock every dependency of the cycle waits at its request for good, and a write is
/// noted at its request (the clock it was requested at). So a write can be the queued writer only
/// if it is
///
/// - not ordered before either dependency under fork/join: a write before `a`'s request, or
///   before `b`'s (which `b` makes while it holds the lock), was granted, since its thread went
///   on past it (a fork or its end carried the order to the reader), so it is not queued;
/// - not ordered after either: a write after `a`'s or `b`'s request needs that thread to go on
///   past its request (a fork, or its end joined), which a thread waiting there for good never
///   does, so the write is never made in a deadlocked run;
/// - not by either reader's thread: such a write comes before that thread's request in program
///   order (granted: the thread went on) or after it (never made).
///
/// A write by neither thread and unordered with both dependencies counts. A write whose clock
/// knows no other thread (a thread lockcheck did not spawn) is ordered with no other thread's
/// dependency, so it counts unless it is by one of the two threads. The writes not known by
/// their clocks at all (a task's, those past the noting bounds) are not asked here: the callers
/// count them between every two reads.
///
/// The clock conventions make `e <= epoch(t)` exact across threads: a thread's epoch goes up
/// right after each fork it makes and each message it sends (and, in the runtime, at each join
/// it makes), and a clock learns a thread's epoch only at such a fork (the child starts with the
/// parent's clock of before the tick), at such a message's receipt, or at the thread's end (a
/// join: in the analyzer the joined thread's epoch goes up right after it). So an event of
/// thread `t` at its own epoch `e` is before an event of another thread exactly when that
/// event's clock knows `e` or more of `t`. Within one thread an equal epoch says nothing of program
/// order, which the thread test makes irrelevant here. An epoch of 0 is none known: no order.
pub fn write_between<A, B>(thread: u64, epoch: impl Fn(u64) -> u32, a: &A, b: &B) -> bool
where
    A: DepView + ?Sized,
    B: DepView<Lock = A::Lock> + ?Sized,
{
    if thread == a.thread() || thread == b.thread() {
        return false;
    }
    let own = epoch(thread);
    let before = |d: u32| own != 0 && own <= d;
    let after = |t: u64, e: u32| e != 0 && e <= epoch(t);
    !before(a.epoch(thread))
        && !before(b.epoch(thread))
        && !after(a.thread(), a.epoch(a.thread()))
        && !after(b.thread(), b.epoch(b.thread()))
}

/// Checks a whole candidate cycle `deps[0] -> deps[1] -> ...`, where `deps[i+1]` holds the lock
/// that `deps[i]` requests (and `deps[0]` holds what the last one requests).
pub fn check_cycle<D: DepView>(
    deps: &[&D],
    ever_written: impl Fn(D::Lock) -> bool,
) -> Result<(), Infeasible<D::Lock>> {
    for d in deps {
        check_blocking(*d)?;
    }
    for (i, a) in deps.iter().enumerate() {
        for b in &deps[i + 1..] {
            check_pair(*a, *b)?;
        }
    }
    for (i, d) in deps.iter().enumerate() {
        let next = deps[(i + 1) % deps.len()];
        check_link(*d, next, ever_written(d.lock()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(thread: u64, lock: u32, held: &[u32]) -> Dependency<u32> {
        Dependency {
            thread,
            lock,
            mode: Mode::Exclusive,
            how: How::Blocking,
            held: held.iter().map(|&h| (h, Mode::Exclusive)).collect(),
            clock: VectorClock::new(),
        }
    }

    #[test]
    fn others_at_most_skips_the_excepted_thread_and_treats_absent_as_zero() {
        let clock = |e: &[(u64, u32)]| {
            let mut c = VectorClock::new();
            for &(t, v) in e {
                c.set(t, v);
            }
            c
        };
        let old = clock(&[(1, 5), (2, 3), (4, 1)]);
        assert!(old.others_at_most(&clock(&[(1, 1), (2, 3), (4, 2)]), 1));
        assert!(!old.others_at_most(&clock(&[(1, 9), (2, 2), (4, 2)]), 1));
        assert!(!old.others_at_most(&clock(&[(2, 3)]), 1), "4 absent: 0 < 1");
        assert!(old.others_at_most(&clock(&[(2, 3), (3, 7), (4, 1)]), 1));
        assert!(VectorClock::new().others_at_most(&VectorClock::new(), 1));
    }

    #[test]
    fn ab_ba_on_two_threads_is_feasible() {
        let (a, b) = (dep(1, 2, &[1]), dep(2, 1, &[2]));
        assert_eq!(check_cycle(&[&a, &b], |_| true), Ok(()));
    }

    #[test]
    fn each_filter_names_its_reason() {
        let (a, b) = (dep(1, 2, &[1]), dep(1, 1, &[2]));
        assert_eq!(
            check_cycle(&[&a, &b], |_| true),
            Err(Infeasible::SameThread { thread: 1 })
        );

        let (a, b) = (dep(1, 2, &[9, 1]), dep(2, 1, &[9, 2]));
        assert_eq!(
            check_cycle(&[&a, &b], |_| true),
            Err(Infeasible::GateLock { gate: 9 })
        );

        let (mut a, b) = (dep(1, 2, &[1]), dep(2, 1, &[2]));
        a.how = How::Try;
        assert_eq!(
            check_cycle(&[&a, &b], |_| true),
            Err(Infeasible::NonBlocking { timed: false })
        );

        let (mut a, mut b) = (dep(1, 2, &[1]), dep(2, 1, &[2]));
        a.mode = Mode::Shared;
        b.mode = Mode::Shared;
        a.held[0].1 = Mode::Shared;
        b.held[0].1 = Mode::Shared;
        assert_eq!(
            check_cycle(&[&a, &b], |_| false),
            Err(Infeasible::ReadRead { lock: 2 })
        );
        assert_eq!(
            check_cycle(&[&a, &b], |_| true),
            Ok(()),
            "a queued writer makes read-read block"
        );
    }

    #[test]
    fn a_shared_gate_is_no_gate() {
        let (mut a, mut b) = (dep(1, 2, &[9, 1]), dep(2, 1, &[9, 2]));
        a.held[0].1 = Mode::Shared;
        b.held[0].1 = Mode::Shared;
        assert_eq!(check_cycle(&[&a, &b], |_| true), Ok(()));
    }

    /// A dependency stored another way (held set newest first, as a prefix tree walks it): the
    /// rules see the same thing through the view, gate locks named oldest first.
    struct Reversed<'a> {
        dep: &'a Dependency<u32>,
        newest_first: Vec<(u32, Mode)>,
    }

    #[allow(non_snake_case)]
    fn Reversed(dep: &Dependency<u32>) -> Reversed<'_> {
        Reversed {
            dep,
            newest_first: dep.held.iter().rev().copied().collect(),
        }
    }

    impl DepView for Reversed<'_> {
        type Lock = u32;
        fn thread(&self) -> u64 {
            self.dep.thread
        }
        fn lock(&self) -> u32 {
            self.dep.lock
        }
        fn mode(&self) -> Mode {
            self.dep.mode
        }
        fn how(&self) -> How {
            self.dep.how
        }
        fn epoch(&self, thread: u64) -> u32 {
            self.dep.clock.get(thread)
        }
        fn held_iter(&self) -> impl Iterator<Item = (u32, Mode)> + '_ {
            self.newest_first.iter().rev().copied()
        }
    }

    #[test]
    fn the_rules_judge_any_view_alike() {
        let cases = [
            (dep(1, 2, &[1]), dep(2, 1, &[2])),
            (dep(1, 2, &[1]), dep(1, 1, &[2])),
            (dep(1, 2, &[9, 8, 1]), dep(2, 1, &[8, 9, 2])),
        ];
        for (a, b) in &cases {
            let (va, vb) = (Reversed(a), Reversed(b));
            assert_eq!(check_pair(&va, &vb), check_pair(a, b));
            assert_eq!(check_pair(&va, b), check_pair(a, b));
            assert_eq!(check_link(&va, &vb, true), check_link(a, b, true));
            assert_eq!(check_blocking(&va), check_blocking(a));
        }
        assert_eq!(
            check_pair(&Reversed(&cases[2].0), &Reversed(&cases[2].1)),
            Err(Infeasible::GateLock { gate: 9 }),
            "the oldest common hold of the first is the gate named"
        );
    }

    #[test]
    fn fork_join_orders_dependencies() {
        // Thread 1 makes a dependency, then forks thread 2 which makes the reverse one.
        let mut parent = VectorClock::new();
        parent.tick(1);
        let mut a = dep(1, 2, &[1]);
        a.clock = parent.clone();
        let mut child = parent.clone();
        child.tick(2);
        parent.tick(1);
        let mut b = dep(2, 1, &[2]);
        b.clock = child;
        assert_eq!(
            check_cycle(&[&a, &b], |_| true),
            Err(Infeasible::HappensBefore)
        );
        // The parent's dependency after the fork is concurrent with the child's.
        a.clock = parent;
        assert_eq!(check_cycle(&[&a, &b], |_| true), Ok(()));
    }

    /// A clock from its entries.
    fn clock(entries: &[(u64, u32)]) -> VectorClock {
        let mut c = VectorClock::new();
        for &(t, e) in entries {
            c.set(t, e);
        }
        c
    }

    /// A plain read request of lock 1 (`L`) by `thread` at `at`, holding lock `held` for reading
    /// (for `b`, the holder of `L`, `held` is 1 itself).
    fn read(thread: u64, lock: u32, held: u32, at: &[(u64, u32)]) -> Dependency<u32> {
        Dependency {
            thread,
            lock,
            mode: Mode::Shared,
            how: How::Blocking,
            held: vec![(held, Mode::Shared)],
            clock: clock(at),
        }
    }

    /// Whether a write by `thread` at clock `at` counts between `a`'s request and `b`'s hold.
    fn counts(thread: u64, at: &[(u64, u32)], a: &Dependency<u32>, b: &Dependency<u32>) -> bool {
        let c = clock(at);
        write_between(thread, |t| c.get(t), a, b)
    }

    /// The cycle L -> M -> L of two readers of L: `a` (thread 2, epoch 1) requests L holding M,
    /// `b` (thread 1, at `b_at`) holds L and requests M.
    fn readers(b_at: &[(u64, u32)]) -> (Dependency<u32>, Dependency<u32>) {
        (read(2, 1, 2, &[(2, 1)]), read(1, 2, 1, b_at))
    }

    #[test]
    fn a_write_by_a_third_thread_unordered_with_both_reads_counts() {
        let (a, b) = readers(&[(1, 1)]);
        assert!(counts(3, &[(3, 1)], &a, &b));
        assert!(
            counts(3, &[], &a, &b),
            "a clock that knows nothing orders nothing"
        );
        // Ordered with another epoch of a reader's thread than its dependency's: unordered
        // with the dependency itself. Thread 1 forked thread 3 at its epoch 1 and made `b` at
        // its epoch 2, after the fork: the write is neither before nor after `b`.
        let (a, b) = readers(&[(1, 2)]);
        assert!(counts(3, &[(1, 1), (3, 1)], &a, &b));
    }

    #[test]
    fn a_write_before_either_read_is_granted_before_the_cycle() {
        // Thread 3 wrote, then forked thread 1 (which starts knowing 3's epoch 1): before `b`
        // only. The rule of before both counted it.
        let (a, b) = readers(&[(1, 1), (3, 1)]);
        assert!(!counts(3, &[(3, 1)], &a, &b));
        // Before `a` only.
        let (a, b) = (read(2, 1, 2, &[(2, 1), (3, 1)]), read(1, 2, 1, &[(1, 1)]));
        assert!(!counts(3, &[(3, 1)], &a, &b));
        // Thread 3 forked thread 1 at its epoch 1 and wrote at its epoch 2, after the fork:
        // not before `b` (equal epochs across threads are ordered, later ones are not).
        let (a, b) = readers(&[(1, 1), (3, 1)]);
        assert!(counts(3, &[(3, 2)], &a, &b));
    }

    #[test]
    fn a_write_after_either_read_is_never_made_in_a_deadlock() {
        // The false alarm of the rule of after both: thread 1 read-locked L, forked thread 3
        // (at its epoch 1) and made `b` at its epoch 2; thread 3 joined thread 2 (learning its
        // epoch 1, that of `a`) and then wrote. After `a`, not after `b`.
        let (a, b) = readers(&[(1, 2)]);
        let write = [(1, 1), (2, 1), (3, 1)];
        assert!(!counts(3, &write, &a, &b));
        // Thread 3 did not join thread 2 first: it can be the queued writer.
        assert!(counts(3, &[(1, 1), (3, 1)], &a, &b));
        // After `b` only: thread 1 made `b` at its epoch 1, then forked thread 3.
        let (a, b) = readers(&[(1, 1)]);
        assert!(!counts(3, &[(1, 1), (3, 1)], &a, &b));
    }

    #[test]
    fn a_write_by_either_readers_thread_is_not_between_them() {
        let (a, b) = readers(&[(1, 1)]);
        assert!(!counts(1, &[(1, 1)], &a, &b), "by b's thread, at b's epoch");
        assert!(
            !counts(1, &[(1, 7)], &a, &b),
            "by b's thread, at a later epoch"
        );
        assert!(!counts(2, &[(2, 1)], &a, &b), "by a's thread");
        assert!(
            !counts(2, &[], &a, &b),
            "by a's thread, its clock not known"
        );
        // And the link's verdict follows: the cycle L -> M -> L is read-read.
        assert_eq!(
            check_link(&a, &b, counts(1, &[(1, 1)], &a, &b)),
            Err(Infeasible::ReadRead { lock: 1 })
        );
        assert_eq!(check_link(&a, &b, counts(3, &[(3, 1)], &a, &b)), Ok(()));
    }
}
