//! The detector must never be the bug: a global allocator that keeps its statistics under a
//! checked mutex, which the program also reads outside the allocator without allocating inside
//! the critical section. With raw parking_lot this never deadlocks. A contended acquisition of
//! that mutex goes through lockcheck's wait bookkeeping (the wait-for graph), and whatever that
//! bookkeeping frees once the lock is acquired calls the allocator, which takes the same mutex
//! again on the same thread: a self-deadlock made by lockcheck. The bookkeeping must not free
//! anything between the acquisition and the caller getting its guard.

use lockcheck::Mutex;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// The allocator's statistics, under a checked mutex (as a user's tracking allocator would).
static STATS: Mutex<u64> = Mutex::new(0);
/// The allocator takes `STATS` only while a scenario runs (the harness's threads are left alone
/// before it starts).
static ON: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The allocator's own re-entry guard (its lock's hooks may allocate).
    static IN_ALLOC: Cell<bool> = const { Cell::new(false) };
}

struct StatsAlloc;

impl StatsAlloc {
    fn count(&self) {
        if !ON.load(Ordering::Acquire) {
            return;
        }
        if IN_ALLOC.try_with(|c| c.replace(true)).unwrap_or(true) {
            return;
        }
        *STATS.lock() += 1;
        let _ = IN_ALLOC.try_with(|c| c.set(false));
    }
}

// SAFETY: forwards to the system allocator; the lock taken around it never re-enters the
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

/// A reader that waits for the statistics' lock while another thread holds it: its wait goes
/// through the wait-for graph, and it must come back with the lock instead of hanging on it.
#[test]
fn a_contended_lock_the_allocator_also_takes_does_not_self_deadlock() {
    ON.store(true, Ordering::Release);
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut rounds = 0;
        for _ in 0..5 {
            // A flag, not a channel: a send allocates, and the holder must not allocate while
            // it holds the allocator's lock (that would deadlock with any mutex).
            static HELD: AtomicBool = AtomicBool::new(false);
            HELD.store(false, Ordering::Release);
            let holder = std::thread::spawn(move || {
                let g = STATS.lock();
                HELD.store(true, Ordering::Release);
                // Long enough for the reader to block on the lock (and register as waiting).
                std::thread::sleep(Duration::from_millis(50));
                drop(g);
            });
            while !HELD.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            // Contended: the holder keeps it for a while. No allocation inside the section.
            let n = *STATS.lock();
            assert!(n > 0, "the allocator counted the allocations so far");
            holder.join().unwrap();
            rounds += 1;
        }
        let _ = done_tx.send(rounds);
    });
    let rounds = done_rx.recv_timeout(Duration::from_secs(60));
    // Off before any panic message is formatted: a hung reader holds the allocator's lock.
    ON.store(false, Ordering::Release);
    let rounds =
        rounds.expect("must not hang: lockcheck freed its wait bookkeeping while the lock was held");
    assert_eq!(rounds, 5);
    assert!(
        lockcheck::violations().is_empty(),
        "nothing to report: {:?}",
        lockcheck::violations()
    );
}
