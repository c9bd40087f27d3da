//! An upgrade of an upgradable read (blocking or `try_upgrade`) is a write: the read-read rule
//! (a read-read cycle is a deadlock only if a write can come between the reads: a queued writer
//! makes a reader wait behind a reader) counts it at runtime, as a `write()` is counted, and as
//! the analyzer counts the trace's `convert` to exclusive. Before, the runtime did not note it
//! and stayed silent on a read-read cycle of RwLocks written only through upgrades (offline
//! reported it). An upgradable read never upgraded is no write: silent.
//!
//! Its own process: the action and `violations()` are process-wide.

mod support;

use lockcheck::{Action, RwLock, RwLockUpgradableReadGuard};
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
enum Upgrade {
    Blocking,
    Try,
    Never,
}

/// Two threads read `a` and `b` in opposite orders; a third takes an upgradable read of each and
/// upgrades it (`how`). Returns the inversions reported on `a`.
fn read_read_then(base: &str, how: Upgrade) -> Vec<lockcheck::Violation> {
    lockcheck::set_action(Action::Warn);
    let key_a: &'static str = Box::leak(format!("upg.{base}.a").into_boxed_str());
    let key_b: &'static str = Box::leak(format!("upg.{base}.b").into_boxed_str());
    support::watchdog(30, move || {
        let a = Arc::new(RwLock::named(key_a, 0));
        let b = Arc::new(RwLock::named(key_b, 0));
        let (a2, b2, a3, b3) = (a.clone(), b.clone(), a.clone(), b.clone());
        support::one_by_one(vec![
            Box::new(move || {
                let _x = a.read();
                let _y = b.read();
            }),
            Box::new(move || {
                let _y = b2.read();
                let _x = a2.read();
            }),
            Box::new(move || {
                // By reference: the locks live on (a dropped lock leaves the runtime's instance
                // graph, which would then see the cycle at class level only).
                for l in [&a3, &b3] {
                    let u = l.upgradable_read();
                    match how {
                        Upgrade::Blocking => drop(RwLockUpgradableReadGuard::upgrade(u)),
                        Upgrade::Try => {
                            let w = RwLockUpgradableReadGuard::try_upgrade(u);
                            assert!(w.is_ok(), "no other reader: the upgrade succeeds");
                        }
                        Upgrade::Never => drop(u),
                    }
                }
            }),
        ]);
    })
    .unwrap();
    support::inversions(key_a)
}

#[test]
fn a_read_read_cycle_on_rwlocks_written_only_through_upgrades_is_reported() {
    for (base, how) in [("blocking", Upgrade::Blocking), ("try", Upgrade::Try)] {
        let v = read_read_then(base, how);
        assert!(!v.is_empty(), "{how:?}: the upgrades are writes");
    }
}

#[test]
fn a_read_read_cycle_on_rwlocks_never_upgraded_is_silent() {
    let v = read_read_then("never", Upgrade::Never);
    assert!(v.is_empty(), "{v:#?}");
}
