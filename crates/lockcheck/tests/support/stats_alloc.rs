//! A global allocator that keeps its statistics under a checked lockcheck mutex, which the
//! program also takes elsewhere (without allocating inside): with raw parking_lot this never
//! deadlocks, so with lockcheck it must not either. Shared by the `alloc_lock_*` tests (each a
//! binary of its own: statistics, the watchdog and recording are process-wide switches).
//!
//! The allocator takes the lock on the scenario's threads only ([`guarded`]), so that the test's
//! own thread can always time out and report a hang.

#![allow(dead_code)]

use lockcheck::Mutex;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// The allocator's statistics, under a checked mutex (as a user's tracking allocator would).
pub static STATS: Mutex<u64> = Mutex::new(0);
/// The lock the allocator takes (`STATS` unless a scenario installs another: see [`use_lock`]).
static CURRENT: AtomicPtr<Mutex<u64>> = AtomicPtr::new(std::ptr::null_mut());
/// A second lock the allocator takes inside the first one, when set (see [`nest_inside`]).
static INNER: AtomicPtr<Mutex<u64>> = AtomicPtr::new(std::ptr::null_mut());
/// Allocations counted under the lock.
pub static COUNTED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The allocator takes its lock on this thread.
    static ON: Cell<bool> = const { Cell::new(false) };
    /// The allocator's own re-entry guard (its lock's hooks may allocate).
    static IN_ALLOC: Cell<bool> = const { Cell::new(false) };
}

/// The lock the allocator takes from now on.
pub fn use_lock(m: &'static Mutex<u64>) {
    CURRENT.store(m as *const _ as *mut _, Ordering::Release);
}

/// The lock the allocator takes now.
pub fn lock() -> &'static Mutex<u64> {
    let p = CURRENT.load(Ordering::Acquire);
    if p.is_null() {
        &STATS
    } else {
        // SAFETY: only `'static` references are stored.
        unsafe { &*p }
    }
}

/// From now on the allocator also takes `m` while it holds its lock (an allocator with a lock
/// per size class, say).
pub fn nest_inside(m: &'static Mutex<u64>) {
    INNER.store(m as *const _ as *mut _, Ordering::Release);
}

/// Turns the allocator's locking on for the calling thread.
///
/// First the thread is registered with parking_lot, while its allocator takes no lock: a
/// thread's first park registers it, and the registration may grow parking_lot's global hash
/// table *while holding every bucket's lock* and allocate there. An allocator that then blocks on
/// a parking_lot-based lock (lockcheck's locks are, as raw parking_lot's) parks for the first
/// time, re-enters the registration and waits for a bucket lock its own thread holds: a hang
/// with raw parking_lot too (parking_lot PR #305, dhat-rs issues #18 and #25), about 1 run in
/// 200 of `alloc_lock_waiting` under load before. Not lockcheck's to fix; the tests must not
/// hang on it.
pub fn on() {
    // SAFETY: `validate` returns false, so the thread is never parked: `park` only gets the
    // thread's parking data (registering the thread) and returns `Invalid`. Nothing runs under
    // the bucket lock but `validate`, which calls nothing.
    let r = unsafe {
        parking_lot_core::park(
            &ON as *const _ as usize,
            || false,
            || {},
            |_, _| {},
            parking_lot_core::DEFAULT_PARK_TOKEN,
            None,
        )
    };
    debug_assert_eq!(r, parking_lot_core::ParkResult::Invalid);
    ON.with(|c| c.set(true));
}

struct StatsAlloc;

impl StatsAlloc {
    fn count(&self) {
        if !ON.try_with(Cell::get).unwrap_or(false) {
            return;
        }
        if IN_ALLOC.try_with(|c| c.replace(true)).unwrap_or(true) {
            return;
        }
        {
            let mut g = lock().lock();
            *g += 1;
            let inner = INNER.load(Ordering::Acquire);
            if !inner.is_null() {
                // SAFETY: only `'static` references are stored.
                *unsafe { &*inner }.lock() += 1;
            }
        }
        COUNTED.fetch_add(1, Ordering::Relaxed);
        let _ = IN_ALLOC.try_with(|c| c.set(false));
    }
}

// SAFETY: forwards to the system allocator; the locks taken around it never re-enter the
// allocator on this thread (`IN_ALLOC`).
unsafe impl GlobalAlloc for StatsAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.count();
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.count();
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: StatsAlloc = StatsAlloc;

/// Runs `f` on its own thread with the allocator's locking on, failing instead of hanging:
/// `Err` is its panic message. Returns once the thread has ended (its exit, thread-local
/// destructors and all, runs with the allocator still on).
pub fn guarded<R: Send + 'static>(
    secs: u64,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, String> {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        on();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    // The join waits for the thread's exit too; a thread of its own, so that this one can time
    // out.
    std::thread::spawn(move || {
        let _ = tx.send(worker.join());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err("the scenario's thread died".into()),
        Err(_) => panic!("must not hang: lockcheck deadlocked with the allocator's lock"),
    }
}

/// Reads the allocator's count the way the program does: the lock, no allocation inside.
pub fn read() -> u64 {
    *lock().lock()
}
