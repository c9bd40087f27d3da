//! The first write of a `lockcheck::tokio::RwLock` re-checks the read-read cycles it can turn into
//! deadlocks (a queued writer blocks new readers), as the sync `RwLock`'s first write does: two
//! tasks reading two RwLocks in opposite orders make a cycle that is harmless while the locks
//! are never written; a task that then write-locks both (a task's write is ordered with nothing:
//! its clock is unknown, so it can come between the reads) makes it a deadlock, reported at the
//! write that completes it. The tokio tracker dropped what the graph found there: the cycle was
//! never reported (no later acquisition adds an edge to search from). Both runtime flavours,
//! under `rt::run`'s timeout and watchdog; the look-alike (never written) stays silent.

#[path = "support/rt.rs"]
mod rt;
mod support;

use lockcheck::tokio::RwLock;
use lockcheck::Action;
use rt::{name, run, Flavor};
use std::sync::Arc;
use support::found;

const FLAVORS: [Flavor; 2] = [Flavor::CurrentThread, Flavor::MultiThread];

/// Two tasks read `a` and `b` in opposite orders, one after the other; then, if `write`, a third
/// task write-locks `a`, then `b` (the cycle is a deadlock from `b`'s first write on). Returns the
/// name of `a`.
fn reads_then_write(base: &str, fl: Flavor, write: bool) -> &'static str {
    lockcheck::set_action(Action::Warn);
    let (a, b) = (
        name(&format!("{base}.a"), fl),
        name(&format!("{base}.b"), fl),
    );
    run(fl, move || async move {
        let ra = Arc::new(RwLock::named(a, 0u32));
        let rb = Arc::new(RwLock::named(b, 0u32));
        let (a1, b1) = (ra.clone(), rb.clone());
        tokio::spawn(async move {
            let _x = a1.read().await;
            let _y = b1.read().await;
        })
        .await
        .unwrap();
        let (a2, b2) = (ra.clone(), rb.clone());
        tokio::spawn(async move {
            let _y = b2.read().await;
            let _x = a2.read().await;
        })
        .await
        .unwrap();
        if write {
            // Both locks: each read of the cycle must be able to wait behind a queued writer.
            tokio::spawn(async move {
                *ra.write().await += 1;
                *rb.write().await += 1;
            })
            .await
            .unwrap();
        }
    })
    .unwrap();
    a
}

#[test]
fn a_first_write_that_makes_a_read_read_cycle_a_deadlock_is_reported() {
    for fl in FLAVORS {
        let a = reads_then_write("firstwrite", fl, true);
        assert!(
            !found(a).is_empty(),
            "{fl:?}: the cycle made a deadlock by the write is reported"
        );
    }
}

#[test]
fn reads_in_both_orders_of_rwlocks_never_written_stay_silent() {
    for fl in FLAVORS {
        let a = reads_then_write("neverwritten", fl, false);
        assert!(found(a).is_empty(), "{fl:?}: {:#?}", found(a));
    }
}
