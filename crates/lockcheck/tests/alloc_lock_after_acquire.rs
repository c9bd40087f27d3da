//! The detector must never be the bug: between a raw acquisition and the caller getting its
//! guard (and between a release's bookkeeping and the raw unlock) lockcheck must neither
//! allocate nor free, or a global allocator that takes that very lock takes it again on the same
//! thread, a self-deadlock lockcheck made. Here with plain checking: deep nesting (the held
//! stack moving to the heap, growing, and moving back) and the first use of a lock by `try_lock`
//! (its identity). The allocator and the program's use of its lock: `support/stats_alloc.rs`.

#[path = "support/stats_alloc.rs"]
mod stats_alloc;

use lockcheck::Mutex;
use stats_alloc::{guarded, read, use_lock};

/// The tests of this binary one at a time: [`use_lock`] makes every allocation of the process take
/// the given lock, so another test allocating at that moment holds it, and a first `try_lock`
/// (which must find it free to test what it tests) would fail. A plain std mutex, not checked.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Locks to nest, leaked (allocated before the scenario holds anything).
fn many(n: usize) -> &'static [Mutex<u32>] {
    Box::leak(
        (0..n)
            .map(|_| Mutex::new(0))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

/// The allocator's lock taken at depth 33 (past the held stack's 32 inline entries: the stack
/// moves to the heap), at depth 129 (the heap area full: it grows), and released as the 17th
/// entry of a heap stack (it moves back inline), on fresh threads each time.
#[test]
fn the_allocators_lock_taken_and_released_at_any_depth_does_not_deadlock() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ls = many(200);
    for depth in [32usize, 128, 40] {
        guarded(60, move || {
            // Room for the guards first: the program must not allocate while holding the
            // allocator's lock, and here it holds nothing but its own when it does.
            let mut held = Vec::with_capacity(ls.len());
            for l in &ls[..depth] {
                held.push(l.lock());
            }
            let n = read();
            assert!(n > 0, "the allocator counted the allocations so far");
            held.clear();
        })
        .expect("no violation, no hang");
    }
    // Spilled and down to 17 entries, the allocator's lock on top: its release takes the stack
    // back inline, right before the raw unlock.
    guarded(60, move || {
        let mut held = Vec::with_capacity(ls.len());
        for l in &ls[..40] {
            held.push(l.lock());
        }
        held.truncate(17);
        let g = stats_alloc::lock().lock();
        // A release inside the critical section (no allocation with raw parking_lot).
        drop(held.pop());
        assert!(*g > 0);
        drop(g);
        held.clear();
    })
    .expect("no violation, no hang");
    assert!(
        lockcheck::violations().is_empty(),
        "nothing to report: {:?}",
        lockcheck::violations()
    );
}

/// A lock whose first use is a `try_lock` gets its identity (the class table, which allocates):
/// before the attempt, not once the lock is held.
#[test]
fn a_first_use_by_try_lock_of_the_allocators_lock_does_not_deadlock() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for round in 0..3 {
        let m: &'static Mutex<u64> = Box::leak(Box::new(Mutex::named(
            Box::leak(format!("alloc.try.{round}").into_boxed_str()),
            0,
        )));
        use_lock(m);
        guarded(60, move || {
            let g = m.try_lock().expect("free");
            drop(g);
            assert!(read() > 0);
        })
        .expect("no violation, no hang");
        use_lock(&stats_alloc::STATS);
    }
    assert!(
        lockcheck::violations().is_empty(),
        "nothing to report: {:?}",
        lockcheck::violations()
    );
}
