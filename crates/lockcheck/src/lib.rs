//! Drop-in instrumented locks that find lock-order inversions and self-deadlocks.
//!
//! Swap `use parking_lot::{Mutex, RwLock, Condvar}` for `use lockcheck::{Mutex, RwLock, Condvar}`
//! (or `std::sync` for [`lockcheck::sync`](sync)) in a test build: every acquisition records the
//! lock order, and the first time two threads take locks in opposite orders, lockcheck reports
//! it, even if the threads were lucky and never deadlocked.
//!
//! Every item of parking_lot 0.12's lock API is here under the same name (`FairMutex`,
//! `ReentrantMutex`, `Once`, `const_mutex`, the guards, the raw locks, `lock_api`, and with the
//! features `arc_lock` and `send_guard` what parking_lot's give), and [`sync`] has std's
//! `Once`, `OnceLock` and `LazyLock` next to its locks. One-time initialization is checked as a
//! lock held by the initializing thread; a reentrant mutex may be re-entered by its owner. The
//! README's drop-in list says what swaps and the few one-line changes that remain.
//!
//! ```
//! use lockcheck::{Mutex, Action};
//!
//! lockcheck::set_action(Action::Warn); // report and go on (the default, `Panic`, fails the test)
//! static A: Mutex<u32> = Mutex::new(0);
//! static B: Mutex<u32> = Mutex::new(0);
//!
//! // One thread takes A then B...
//! lockcheck::thread::spawn(|| {
//!     let _a = A.lock();
//!     let _b = B.lock();
//! })
//! .join()
//! .unwrap();
//! // ...another takes B then A: a deadlock waiting for an unlucky schedule.
//! std::thread::spawn(|| {
//!     let _b = B.lock();
//!     let _a = A.lock();
//! })
//! .join()
//! .unwrap();
//!
//! # if lockcheck::ENABLED {
//! let found = lockcheck::violations();
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].kind, lockcheck::ViolationKind::LockOrderInversion);
//! # }
//! ```
//!
//! # What is checked
//! - **Lock-order inversions** at two levels: lock instances, and lock classes (a class is the
//!   construction site, or a name given with `named`), so that `a` then `b` on one pair of
//!   objects and `b` then `a` on another is found before the unlucky pairing happens.
//! - **Self-deadlocks**: locking what the thread already holds (also through a guard kept alive
//!   by an `if let` or `match` scrutinee), write after read, and recursive `read` (a hazard: a
//!   queued writer makes it deadlock; `read_recursive` is fine).
//! - Not reported, because they cannot deadlock: cycles made by one thread only, cycles whose
//!   acquisitions all hold a common gate lock (a semaphore's permit only if it has one permit),
//!   read-read cycles on locks never write-locked, edges made by `try_*` or timed acquisitions
//!   (unless one is retried 1000 times in a row holding the same locks throughout, a spin
//!   lock's loop: then it is checked as a blocking acquisition, and on a lock the thread holds
//!   itself it is a self-deadlock),
//!   and, for threads started through [`lockcheck::thread`](thread), orders separated by spawn
//!   or join.
//!
//! # What happens on a violation
//! `LOCKCHECK=panic` (default): the report goes to stderr and to `tracing` (target `lockcheck`;
//! the default feature `tracing`), then the acquiring thread panics before it blocks, and the
//! panic's location is the acquisition in your code. `LOCKCHECK=warn`: report and go on, except
//! on a certain hang (a real deadlock, a thread locking a mutex it holds), which panics too.
//! `LOCKCHECK=off`: no checking. [`set_action`] does the same from code, and [`violations`]
//! returns what was found.
//!
//! # Release builds
//! Instrumentation is compiled in when debug assertions are on and out otherwise; the features
//! `instrument` and `no-instrument` force either way. Compiled out, the types are parking_lot's
//! (and std's for [`sync`]): same size, same speed. [`checked`] is always instrumented.
#![warn(missing_docs, rust_2018_idioms, missing_debug_implementations)]

pub mod checked;
mod config;
pub mod plain;
pub mod record;
mod semaphore;
pub mod stats;
pub mod sync;
#[cfg(lockcheck_on)]
mod sync_once;
pub mod thread;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod watchdog;
mod wrappers;

pub use checked::report::{
    take_violations, violations, EdgeInfo, LockRef, Violation, ViolationKind,
};
pub use config::{action, order_checking, set_action, set_order_checking, Action};
pub use lockcheck_core::trace::{LockKind, Mode};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use stats::stats;

#[cfg(lockcheck_on)]
pub use checked::{
    const_fair_mutex, const_mutex, const_reentrant_mutex, const_rwlock, Condvar, FairMutex,
    FairMutexGuard, MappedFairMutexGuard, MappedMutexGuard, MappedReentrantMutexGuard,
    MappedRwLockReadGuard, MappedRwLockWriteGuard, Mutex, MutexGuard, Once, OnceState,
    RawFairMutex, RawMutex, RawRwLock, RawThreadId, ReentrantMutex, ReentrantMutexGuard, RwLock,
    RwLockReadGuard, RwLockUpgradableReadGuard, RwLockWriteGuard, WaitTimeoutResult,
};
#[cfg(not(lockcheck_on))]
pub use plain::{
    const_fair_mutex, const_mutex, const_reentrant_mutex, const_rwlock, Condvar, FairMutex,
    FairMutexGuard, MappedFairMutexGuard, MappedMutexGuard, MappedReentrantMutexGuard,
    MappedRwLockReadGuard, MappedRwLockWriteGuard, Mutex, MutexGuard, Once, OnceState,
    RawFairMutex, RawMutex, RawRwLock, RawThreadId, ReentrantMutex, ReentrantMutexGuard, RwLock,
    RwLockReadGuard, RwLockUpgradableReadGuard, RwLockWriteGuard, WaitTimeoutResult,
};

#[cfg(all(feature = "arc_lock", lockcheck_on))]
pub use checked::ArcReentrantMutexGuard;
/// The guards of locks held through an `Arc` (the `arc_lock` feature), as parking_lot
/// re-exports them: name them with this crate's raw locks, `ArcMutexGuard<RawMutex, T>`.
#[cfg(feature = "arc_lock")]
pub use lock_api::{
    ArcMutexGuard, ArcRwLockReadGuard, ArcRwLockUpgradableReadGuard, ArcRwLockWriteGuard,
};
#[cfg(all(feature = "arc_lock", not(lockcheck_on)))]
pub use plain::ArcReentrantMutexGuard;

/// `lock_api`, as parking_lot re-exports it (`parking_lot::lock_api`).
pub use lock_api;

/// Whether instrumentation is compiled into this build (see the crate docs).
pub const ENABLED: bool = cfg!(lockcheck_on);

// Compiled out, the crate root's locks are parking_lot's size and `sync`'s types are std's own:
// checked whenever this crate compiles so (a release build; `.ci/run` makes one), since the
// workspace's tests build it instrumented. Nothing here exists at run time.
#[cfg(not(lockcheck_on))]
const _: () = {
    use std::mem::size_of;
    assert!(size_of::<Mutex<u64>>() == size_of::<parking_lot::Mutex<u64>>());
    assert!(size_of::<Mutex<()>>() == size_of::<parking_lot::Mutex<()>>());
    assert!(size_of::<FairMutex<u64>>() == size_of::<parking_lot::FairMutex<u64>>());
    assert!(size_of::<ReentrantMutex<u64>>() == size_of::<parking_lot::ReentrantMutex<u64>>());
    assert!(size_of::<RwLock<u64>>() == size_of::<parking_lot::RwLock<u64>>());
    assert!(size_of::<Condvar>() == size_of::<parking_lot::Condvar>());
    assert!(size_of::<Once>() == size_of::<parking_lot::Once>());
};

// std's own types, compiled out: a coercion that compiles only between identical types.
#[cfg(not(lockcheck_on))]
#[allow(clippy::type_complexity)]
const _: (
    fn(sync::Mutex<u64>) -> std::sync::Mutex<u64>,
    fn(sync::RwLock<u64>) -> std::sync::RwLock<u64>,
    fn(sync::Condvar) -> std::sync::Condvar,
    fn(sync::Once) -> std::sync::Once,
    fn(sync::OnceLock<u64>) -> std::sync::OnceLock<u64>,
    fn(sync::LazyLock<u64>) -> std::sync::LazyLock<u64>,
    fn(sync::Barrier) -> std::sync::Barrier,
    fn(sync::mpsc::Receiver<u64>) -> std::sync::mpsc::Receiver<u64>,
    fn(sync::mpsc::SyncSender<u64>) -> std::sync::mpsc::SyncSender<u64>,
) = (
    |x| x,
    |x| x,
    |x| x,
    |x| x,
    |x| x,
    |x| x,
    |x| x,
    |x| x,
    |x| x,
);

#[doc(hidden)]
pub mod __private {
    /// Graph sizes (instance nodes, instance edges, class nodes, class edges), for tests.
    pub fn graph_sizes() -> (usize, usize, usize, usize) {
        crate::checked::graph::sizes()
    }

    /// The most dependency variants kept on one edge (instance level, class level), for tests.
    pub fn most_edge_variants() -> (usize, usize) {
        crate::checked::graph::most_variants()
    }

    /// The most groups of dependency variants kept on one class edge (what the `edge-variants`
    /// bound counts there: one per thread, mode, fork/join clock and held class set), for tests.
    pub fn most_class_edge_groups() -> usize {
        crate::checked::graph::most_class_groups()
    }

    /// Threads remembered as having taken locks while exiting (in thread-local destructors), and
    /// whether their bound was reached, for tests.
    pub fn late_threads() -> (usize, bool) {
        crate::checked::graph::late_threads()
    }

    /// The `wait_timeout` entries a policy file's text sets (as `LOCKCHECK_POLICY` reads it),
    /// for tests that hold the runtime's reader to a real TOML parser.
    pub fn policy_entries(text: &str) -> Result<Vec<(String, std::time::Duration)>, String> {
        crate::checked::policy::wait_timeouts(text)
    }

    /// Whether the fast path's switch byte, and every thread's copy of it, agree with the
    /// switches, for tests.
    pub fn flags_match_switches() -> bool {
        crate::config::flags_match_switches()
    }

    /// How many threads' copies of the switch byte are registered, for tests.
    pub fn registered_switches() -> usize {
        crate::config::registered_switches()
    }

    /// How many locks the recorder keeps notes of for a trace started later (an RwLock's first
    /// write, a semaphore's permits), for tests: a lock's note goes with its drop.
    pub fn noted_locks() -> usize {
        crate::checked::recorder::noted_locks()
    }

    /// Makes the next switch refresh pause between computing and storing, for tests.
    pub fn delay_next_refresh(d: std::time::Duration) {
        crate::config::delay_next_refresh(d)
    }

    /// The threads blocked now in the wait-for graph, and the tasks waiting in the async one (the
    /// class key of the lock each waits for, its kind), for tests that must know a wait has
    /// begun (see `tests/support`'s `wait_until`). [`waiters`] says who waits, too.
    pub fn waits() -> Vec<(String, crate::LockKind)> {
        crate::checked::watch::waits()
            .into_iter()
            .map(|(class, kind, _)| (class, kind))
            .collect()
    }

    /// [`waits`], with the waiter of each: the number [`waiter_id`] returns on that thread (or
    /// in that task), so that a test can tell its own thread's wait from a concurrent test's
    /// on a lock of the same class (a thread's end, named after one spawn site).
    pub fn waiters() -> Vec<(String, crate::LockKind, u64)> {
        crate::checked::watch::waits()
    }

    /// This thread's number in [`waiters`] (inside a `lockcheck::tokio` task: the task's).
    pub fn waiter_id() -> u64 {
        crate::checked::watch::waiter_id()
    }
}
