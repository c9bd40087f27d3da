//! Under `LOCKCHECK=panic`, a blocking upgrade whose write closes a read-read cycle (two threads
//! read two RwLocks in opposite orders; with both written, a write can come between the reads,
//! so they can deadlock)
//! is stopped with a panic before it waits, as a `write()` would be; the lock stays upgradable
//! (its guard unwinds). Before, the finding was reported and the upgrade went on. A `try_upgrade`
//! that succeeds (it never waits) and so closes a cycle is raised too: the lock goes back to
//! upgradable and its guard unwinds (see `RawRwLock::upgraded_try`); before, it was reported after
//! the fact and went on.
//!
//! Its own process: the action is process-wide.

mod support;

use lockcheck::{Action, RwLock, RwLockUpgradableReadGuard};
use std::sync::{mpsc, Arc};

#[test]
fn an_upgrade_whose_write_closes_a_read_read_cycle_is_raised_under_panic() {
    lockcheck::set_action(Action::Panic);
    let (tx, rx) = mpsc::channel::<(bool, bool)>();
    support::watchdog(30, move || {
        let a = Arc::new(RwLock::named("upgraised.a", 0));
        let b = Arc::new(RwLock::named("upgraised.b", 0));
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
                // `b` first: a write of one lock alone does not make the cycle a deadlock (each
                // read must be able to wait behind a write). By reference: the locks live on (a
                // dropped lock leaves the runtime's instance graph).
                drop(RwLockUpgradableReadGuard::upgrade(b3.upgradable_read()));
                let u = a3.upgradable_read();
                let raised = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    drop(RwLockUpgradableReadGuard::upgrade(u));
                }))
                .is_err();
                // The upgradable guard unwound: the lock is free.
                let free = a3.try_write().is_some();
                let _ = tx.send((raised, free));
            }),
        ]);
    })
    .unwrap();
    let (raised, free) = rx.recv().expect("the upgrade ran");
    let found = support::inversions("upgraised.a");
    assert!(!found.is_empty(), "the upgrade's write is reported");
    assert!(raised, "the finding is raised under `panic`: {found:#?}");
    assert!(
        free,
        "the stopped upgrade left the lock upgradable, and its guard released it"
    );
}

/// The same cycle closed by a `try_upgrade` that succeeds: raised under `panic`, the lock back to
/// upgradable, its guard released as it unwinds; the same holds for `try_upgrade_for`.
#[test]
fn a_try_upgrade_whose_write_closes_a_read_read_cycle_is_raised_under_panic() {
    lockcheck::set_action(Action::Panic);
    for timed in [false, true] {
        let (tx, rx) = mpsc::channel::<(bool, bool)>();
        let (an, bn) = if timed {
            ("upgraised.tryfor.a", "upgraised.tryfor.b")
        } else {
            ("upgraised.try.a", "upgraised.try.b")
        };
        support::watchdog(30, move || {
            let a = Arc::new(RwLock::named(an, 0));
            let b = Arc::new(RwLock::named(bn, 0));
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
                    drop(RwLockUpgradableReadGuard::upgrade(b3.upgradable_read()));
                    let u = a3.upgradable_read();
                    let raised = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let w = if timed {
                            RwLockUpgradableReadGuard::try_upgrade_for(
                                u,
                                std::time::Duration::from_millis(100),
                            )
                        } else {
                            RwLockUpgradableReadGuard::try_upgrade(u)
                        };
                        let Ok(w) = w else {
                            panic!("no other reader: it succeeds")
                        };
                        drop(w);
                    }))
                    .is_err();
                    let free = a3.try_write().is_some();
                    let _ = tx.send((raised, free));
                }),
            ]);
        })
        .unwrap();
        let (raised, free) = rx.recv().expect("the upgrade ran");
        let found = support::inversions(an);
        assert!(!found.is_empty(), "{an}: the upgrade's write is reported");
        assert!(
            raised,
            "{an}: the finding is raised under `panic`: {found:#?}"
        );
        assert!(
            free,
            "{an}: the lock went back to upgradable, and its guard released it"
        );
    }
}
