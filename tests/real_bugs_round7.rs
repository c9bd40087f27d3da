//! Real deadlocks from public Rust projects, seventh round: a spin lock re-entered by its holder
//! (a `try_lock` retried until it succeeds, on a lock the thread holds itself: pyo3's
//! `ReleasePool`), two read guards of one channel's lock alive in one span's fields while the
//! sender writes (zebra's chain tip `watch` channel), a cache's eviction listener run under the
//! entry's lock and writing the entry back (moka), and an agent's per-session lock re-entered
//! through a tool call it makes while holding it (the same shape through a callee chain). Kinds the first six
//! rounds (`tests/async/real_bugs.rs`, `tests/real_bugs_round2.rs`..`round6.rs`,
//! `examples/scenarios.rs`) did not cover. Each is reduced to its locking skeleton (not their
//! code), cites its source, and is paired with the look-alike the project's fix turned it into,
//! which must stay silent. Every scenario runs under a watchdog: a miss that really hangs fails
//! the test instead of hanging CI.

mod support;

use lockcheck::{Action, Mutex, RwLock, ViolationKind};
use std::collections::HashMap;
use std::sync::{mpsc, Arc};
use support::markers::Markers;
use support::{found, watchdog};

/// This file's marker comments.
const M: Markers = Markers::new("real_bugs_round7.rs", include_str!("real_bugs_round7.rs"));

fn setup() {
    lockcheck::set_action(Action::Panic);
}

/// Runs `f` under the watchdog and returns the message of the report that stopped it (the
/// scenario must be stopped: unreported, it hangs).
fn stopped<F: FnOnce() + Send + 'static>(f: F) -> String {
    watchdog(20, f).expect_err("reported before it hangs")
}

/// The one finding of `kind` among `v`, with every marker among its sites.
#[track_caller]
fn one_of_kind(v: &[lockcheck::Violation], kind: ViolationKind, markers: &[&str]) {
    let s: Vec<_> = v.iter().filter(|v| v.kind == kind).collect();
    assert_eq!(s.len(), 1, "{v:#?}");
    M.assert_sites(s[0], markers);
}

// ---------------------------------------------------------------------------------------------
// 1. A spin lock re-entered by the thread that holds it: pyo3 0.10.0 replaced the `ReleasePool`'s
//    `parking_lot::Mutex` with an `AtomicBool` spin lock (a compare-and-swap retried until it
//    succeeds: a `try_lock` loop). `update_counts` held it while it decremented the reference
//    counts of the objects queued for release; a count reaching zero runs the object's
//    deallocator, which drops a `Py<T>` it owned, which queues that pointer: `register_pointer`
//    spins on the lock its own thread holds, forever, at 100% CPU. A `try_lock` never blocks,
//    so no wait was ever seen: lockcheck now takes a try of a lock the thread holds, failed
//    `OWN_TRY_RETRIES` times in a row at one site with the same held set, for a self-deadlock.
//    Source: PyO3/pyo3#916 ("Avoid spinlocks": the hang, and the line `register_pointer` spins
//    at, during a drop inside `update_counts`), introduced by PyO3/pyo3#899, fixed by
//    PyO3/pyo3#924 ("Fix deadlock in update_counts": the pending pointers are taken out of the
//    lock, which is released before the counts are decremented).
//    Look-alikes: the fix; and a try of a held lock that gives up (a `Debug` printing it, a
//    bounded retry): a few failures are no wait.

/// A Python object: dropping its last reference deallocates it, which drops the `Py<T>` handles
/// it owns (each queued in the pool).
struct PyObject {
    owns: Vec<PyObject>,
}

struct ReleasePool {
    /// The spin lock and the pointers it guards.
    pending: Mutex<Vec<PyObject>>,
    /// pyo3#924's way: take the pointers out, release the lock, then drop them.
    takes_first: bool,
}

impl ReleasePool {
    /// The spin lock: a try retried until it succeeds (`while locked.compare_and_swap(..)`).
    fn spin(&self) -> lockcheck::MutexGuard<'_, Vec<PyObject>> {
        loop {
            let tried = self.pending.try_lock(); // PYO3_SPIN
            if let Some(g) = tried {
                return g;
            }
            std::hint::spin_loop();
        }
    }

    /// A `Py<T>` dropped without the GIL: queued for `update_counts`.
    fn register_pointer(&self, obj: PyObject) {
        self.spin().push(obj);
    }

    /// `Py_DECREF` of a queued pointer whose count reaches zero: its deallocator drops the
    /// handles it owns, which queue themselves.
    fn decref(&self, obj: PyObject) {
        for owned in obj.owns {
            self.register_pointer(owned);
        }
    }

    /// Releases the queued pointers (when the GIL is next taken).
    fn update_counts(&self) {
        if self.takes_first {
            let pending = std::mem::take(&mut *self.spin());
            for obj in pending {
                self.decref(obj);
            }
        } else {
            let mut pending = self.spin();
            while let Some(obj) = pending.pop() {
                self.decref(obj);
            }
        }
    }

    fn queued(&self) -> usize {
        self.pending.lock().len()
    }
}

fn release_pool(class: &'static str, takes_first: bool) -> ReleasePool {
    let pool = ReleasePool {
        pending: Mutex::named(class, Vec::new()),
        takes_first,
    };
    // A list object whose deallocation releases the item it holds.
    pool.register_pointer(PyObject {
        owns: vec![PyObject { owns: vec![] }],
    });
    pool
}

#[test]
fn a_spin_lock_retried_by_the_thread_that_holds_it_is_a_self_deadlock() {
    setup();
    let msg = stopped(|| release_pool("pyo3.release_pool", false).update_counts());
    assert!(msg.contains("self-deadlock"), "{msg}");
    one_of_kind(
        &found("pyo3.release_pool"),
        ViolationKind::SelfDeadlock,
        &["PYO3_SPIN"],
    );
    let v = &found("pyo3.release_pool")[0];
    assert!(v.edges[0].held_site.contains(&M.at("PYO3_SPIN")), "{v:#?}");
}

#[test]
fn pending_pointers_taken_out_before_the_decrefs_and_a_try_that_gives_up_are_silent() {
    setup();
    watchdog(20, || {
        let pool = release_pool("pyo3.fixed.release_pool", true);
        pool.update_counts();
        // The item the list released is queued for the next round.
        assert_eq!(pool.queued(), 1);
        pool.update_counts();
        assert_eq!(pool.queued(), 0);
    })
    .unwrap();
    assert!(found("pyo3.fixed.release_pool").is_empty());

    // A held lock printed (its `Debug` peeks with a try) more times than a spin is allowed, and
    // a bounded retry of a held lock: each gives up, nothing hangs.
    watchdog(20, || {
        let m = Mutex::named("pyo3.peeked", 7);
        let sm = lockcheck::sync::Mutex::new(7);
        let _g = m.lock();
        let _sg = sm.lock().unwrap();
        for _ in 0..2 * 1000 {
            assert!(format!("{m:?}").contains("<locked>"));
            assert!(format!("{sm:?}").contains("<locked>"));
        }
        for _ in 0..3 {
            assert!(m.try_lock().is_none());
        }
    })
    .unwrap();
    assert!(
        found("pyo3.peeked").is_empty(),
        "{:#?}",
        found("pyo3.peeked")
    );
}

/// The same spin on another thread's lock is a plain wait that ends: silent.
#[test]
fn a_spin_on_a_lock_another_thread_holds_is_silent() {
    setup();
    watchdog(20, || {
        let m = Arc::new(Mutex::named("pyo3.contended", 0u32));
        let (held_tx, held_rx) = mpsc::channel();
        let m2 = m.clone();
        let holder = std::thread::spawn(move || {
            let mut g = m2.lock();
            held_tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(200));
            *g += 1;
        });
        held_rx.recv().unwrap();
        let mut spins = 0u64;
        let g = loop {
            if let Some(g) = m.try_lock() {
                break g;
            }
            spins += 1;
            std::thread::yield_now();
        };
        assert_eq!(*g, 1);
        assert!(spins > 0);
        drop(g);
        holder.join().unwrap();
    })
    .unwrap();
    assert!(found("pyo3.contended").is_empty());
}

/// Two threads, one spinning on the other's lock while holding its own, the other blocking on
/// it: a spin waits as `lock` does, so the cycle is found (before, neither the order nor the
/// wait was seen, and this hung). The thread that closes it panics, which lets the other go on.
#[test]
fn a_spin_on_a_lock_whose_holder_waits_for_the_spinners_lock_is_reported() {
    setup();
    let a = Arc::new(Mutex::named("spin.live.a", 0u32));
    let b = Arc::new(Mutex::named("spin.live.b", 0u32));
    let (a2, b2) = (a.clone(), b.clone());
    let (tx, rx) = mpsc::channel();
    watchdog(30, move || {
        let (held_tx, held_rx) = mpsc::channel();
        let blocker = std::thread::spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _y = b2.lock();
                held_tx.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(100));
                let _x = a2.lock(); // SPIN_LIVE_BLOCK
            }))
            .map_err(|e| support::panic_message(&*e))
        });
        let spinner = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _x = a.lock();
            held_rx.recv().unwrap();
            let _y = loop {
                let tried = b.try_lock(); // SPIN_LIVE_TRY
                if let Some(g) = tried {
                    break g;
                }
                std::thread::yield_now();
            };
        }))
        .map_err(|e| support::panic_message(&*e));
        tx.send((spinner, blocker.join().unwrap())).unwrap();
    })
    .unwrap();
    let (r1, r2) = rx.recv().unwrap();
    assert!(r1.is_err() || r2.is_err(), "{r1:?} {r2:?}");
    let v: Vec<_> = found("spin.live.a")
        .into_iter()
        .filter(|v| {
            matches!(
                v.kind,
                ViolationKind::LockOrderInversion | ViolationKind::Deadlock
            )
        })
        .collect();
    assert!(!v.is_empty(), "{:#?}", found("spin.live.a"));
    for v in &v {
        M.assert_sites(v, &["SPIN_LIVE_TRY", "SPIN_LIVE_BLOCK"]);
    }
}
