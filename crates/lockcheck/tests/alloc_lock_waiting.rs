//! The detector must never be the bug, in the wait-for graph: a global allocator holds its
//! statistics' lock while it blocks on a second lock (one per size class, say), which registers
//! its wait; another thread registers a wait of its own and allocates while it holds the
//! waiters' list, so its allocator wants the statistics' lock. With raw parking_lot the
//! allocator's thread gets its second lock and goes on; lockcheck must not make it wait for
//! the waiters' list meanwhile. The allocator: `support/stats_alloc.rs`.

#[path = "support/stats_alloc.rs"]
mod stats_alloc;

use lockcheck::Mutex;
use stats_alloc::{guarded, nest_inside, on};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static INNER: Mutex<u64> = Mutex::new(0);
static OTHER: Mutex<u64> = Mutex::new(0);
static STOP: AtomicBool = AtomicBool::new(false);

/// Holds `m` for a while now and then, without allocating: the others' acquisitions of it wait.
fn holder(m: &'static Mutex<u64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !STOP.load(Ordering::Acquire) {
            let g = m.lock();
            std::thread::sleep(Duration::from_micros(200));
            drop(g);
            std::thread::sleep(Duration::from_micros(50));
        }
    })
}

#[test]
fn an_allocator_blocked_under_its_lock_never_waits_for_the_waiters_list() {
    nest_inside(&INNER);
    let holders = [holder(&INNER), holder(&OTHER)];
    // Allocating threads: their allocator takes the statistics' lock, then `INNER` (contended).
    let allocators: Vec<_> = (0..2)
        .map(|i| {
            std::thread::spawn(move || {
                on();
                let mut n = 0usize;
                while !STOP.load(Ordering::Acquire) {
                    let v: Vec<u64> = (0..4 + i).collect();
                    n += v.len();
                }
                n
            })
        })
        .collect();
    // Threads waiting for `OTHER` (contended): their waits' bookkeeping allocates, so their
    // allocator takes the statistics' lock, while they hold the waiters' list.
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(|| {
                guarded(120, || {
                    let end = Instant::now() + Duration::from_secs(4);
                    let mut rounds = 0u64;
                    while Instant::now() < end {
                        *OTHER.lock() += 1;
                        rounds += 1;
                    }
                    rounds
                })
            })
        })
        .collect();
    let waited: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    STOP.store(true, Ordering::Release);
    for w in waited {
        assert!(w.expect("no violation, no hang") > 0);
    }
    for h in holders {
        h.join().unwrap();
    }
    for a in allocators {
        assert!(a.join().unwrap() > 0);
    }
    assert!(
        lockcheck::violations().is_empty(),
        "nothing to report: {:?}",
        lockcheck::violations()
    );
}
