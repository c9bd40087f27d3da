//! The detector must never be the bug: a global allocator that keeps its statistics under a
//! checked mutex, which the program also reads outside the allocator without allocating inside
//! the critical section. With raw parking_lot this never deadlocks. A contended acquisition of
//! that mutex goes through lockcheck's wait bookkeeping (the wait-for graph), and whatever that
//! bookkeeping frees once the lock is acquired calls the allocator, which takes the same mutex
//! again on the same thread: a self-deadlock made by lockcheck. The bookkeeping must not free
//! anything between the acquisition and the caller getting its guard.

#[path = "support/stats_alloc.rs"]
mod stats_alloc;

use stats_alloc::{on, STATS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

static STOP: AtomicBool = AtomicBool::new(false);

/// A reader that waits for the statistics' lock while another thread holds it: its wait goes
/// through the wait-for graph, and it must come back with the lock instead of hanging on it.
/// Two more threads allocate all along, so that the lock is often contended inside the
/// allocator too, while lockcheck's wait bookkeeping (which allocates) runs on other threads.
#[test]
fn a_contended_lock_the_allocator_also_takes_does_not_deadlock() {
    const ROUNDS: usize = 100;
    let churners: Vec<_> = (0..2)
        .map(|i| {
            std::thread::spawn(move || {
                on();
                let mut n = 0u64;
                while !STOP.load(Ordering::Acquire) {
                    let v: Vec<u64> = (0..8 + i).collect();
                    n += v.len() as u64;
                    std::thread::yield_now();
                }
                n
            })
        })
        .collect();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        on();
        let mut rounds = 0;
        for _ in 0..ROUNDS {
            // A flag, not a channel: a send allocates, and the holder must not allocate while
            // it holds the allocator's lock (that would deadlock with any mutex).
            static HELD: AtomicBool = AtomicBool::new(false);
            HELD.store(false, Ordering::Release);
            let holder = std::thread::spawn(move || {
                on();
                let g = STATS.lock();
                HELD.store(true, Ordering::Release);
                // Long enough for the reader to block on the lock (and register as waiting).
                std::thread::sleep(Duration::from_millis(3));
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
    let rounds = done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("must not hang: lockcheck's wait bookkeeping deadlocked with the allocator's lock");
    assert_eq!(rounds, ROUNDS);
    STOP.store(true, Ordering::Release);
    for c in churners {
        assert!(c.join().unwrap() > 0);
    }
    assert!(
        lockcheck::violations().is_empty(),
        "nothing to report: {:?}",
        lockcheck::violations()
    );
}
