//! The detector must never be the bug, with statistics and the watchdog on: what they keep per
//! acquisition (the thread's table and its rows, the published held list) is made before the raw
//! acquisition, so that nothing allocates while the lock is held and the guard not yet returned.
//! A global allocator that takes that lock would take it again on the same thread. The
//! allocator: `support/stats_alloc.rs`.

#[path = "support/stats_alloc.rs"]
mod stats_alloc;

use lockcheck::Mutex;
use stats_alloc::{guarded, read, use_lock};
use std::time::Duration;

fn fresh(name: String) -> &'static Mutex<u64> {
    Box::leak(Box::new(Mutex::named(Box::leak(name.into_boxed_str()), 0)))
}

/// Each round: a lock of a new class (the statistics' table grows), taken first by the program
/// on a fresh thread (its table and published list are created), blocking then `try_lock`.
#[test]
fn with_statistics_and_the_watchdog_on_the_allocators_lock_does_not_deadlock() {
    lockcheck::stats::enable();
    lockcheck::watchdog::set_hold_warn(Some(Duration::from_secs(600)));
    for round in 0..4 {
        let m = fresh(format!("alloc.stats.{round}"));
        use_lock(m);
        guarded(60, move || {
            let n = read();
            let g = m.try_lock().expect("free");
            drop(g);
            n
        })
        .expect("no violation, no hang");
    }
    use_lock(&stats_alloc::STATS);
    let stats = lockcheck::stats::stats();
    for round in 0..4 {
        let name = format!("alloc.stats.{round}");
        let s = stats.iter().find(|s| s.class == name);
        assert!(
            s.is_some_and(|s| s.stats.acquisitions >= 2),
            "{name} counted: {stats:?}"
        );
    }
    assert!(
        lockcheck::violations().is_empty(),
        "nothing to report: {:?}",
        lockcheck::violations()
    );
}
