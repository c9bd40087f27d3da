//! No silent caps, and no excuse that outlives its premise (issue 10, runtime side): deep nesting,
//! many variants of one edge, long rings, the exact dependency cache, a late writer, a cycle made
//! by one thread that another thread later repeats. Each scenario uses its own lock names, so the
//! tests of this binary can run side by side; each has its look-alike that stays silent.

mod support;

use lockcheck::{Mutex, RwLock, ViolationKind};
use std::sync::{Arc, Barrier};
use support::{found, inversions, two_threads, watchdog};

/// `n` mutexes named `prefix.0` to `prefix.{n-1}`.
fn mutexes(prefix: &str, n: usize) -> Vec<Mutex<()>> {
    (0..n)
        .map(|i| Mutex::named(Box::leak(format!("{prefix}.{i}").into_boxed_str()), ()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Nesting deeper than 32 locks.

/// A self-deadlock on the 35th of 40 nested locks is reported (it used to be untracked: a hang).
#[test]
fn self_deadlock_at_depth_40_is_reported() {
    let r = watchdog(20, || {
        let locks = mutexes("deep.sd", 40);
        let _guards: Vec<_> = locks.iter().map(|m| m.lock()).collect();
        let _again = locks[34].lock();
    });
    let msg = r.expect_err("the self-deadlock panics before it blocks");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = found("deep.sd.34");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::SelfDeadlock);
}

/// The look-alike: 40 nested locks released in any order, then taken again: silent.
#[test]
fn deep_nesting_released_and_retaken_is_silent() {
    watchdog(20, || {
        let locks = mutexes("deep.ok", 40);
        for _ in 0..3 {
            let mut guards: Vec<_> = locks.iter().map(|m| m.lock()).collect();
            // Out of order: every other one first, then the rest from the top.
            let mut i = 0;
            guards.retain(|_| {
                i += 1;
                i % 2 == 0
            });
            while guards.pop().is_some() {}
            let _g = locks[34].lock();
        }
    })
    .unwrap();
    assert!(found("deep.ok.34").is_empty());
    assert!(found("deep.ok.0").is_empty());
}

/// Deep locks make edges too: an inversion between the 38th and 39th lock of a deep nest.
#[test]
fn inversion_below_depth_32_is_reported() {
    let locks = Arc::new(mutexes("deep.inv", 40));
    let l2 = locks.clone();
    let (r1, r2) = two_threads(
        move || {
            let _g: Vec<_> = locks.iter().map(|m| m.lock()).collect();
        },
        move || {
            let _b = l2[39].lock();
            let _a = l2[38].lock();
        },
    );
    assert!(r1.is_ok());
    assert!(r2.is_err(), "the inversion panics");
    let v = inversions("deep.inv.39");
    assert!(
        v.iter().any(|v| v.involves("deep.inv.38")),
        "inversion between deep.inv.38 and deep.inv.39: {v:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Variants of one edge.

/// Twenty gated A->B nestings (each also holding its own extra lock), then an ungated A->B on the
/// same thread, then B->A under the gate on another thread: the ungated variant completes the
/// cycle and must not have been dropped.
#[test]
fn ungated_variant_after_many_gated_ones_is_kept() {
    let gate = Arc::new(Mutex::named("var.gate", ()));
    let a = Arc::new(Mutex::named("var.a", ()));
    let b = Arc::new(Mutex::named("var.b", ()));
    let extras = Arc::new(mutexes("var.x", 20));
    let (g2, a2, b2) = (gate.clone(), a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            for x in extras.iter() {
                let _g = gate.lock();
                let _x = x.lock();
                let _a = a.lock();
                let _b = b.lock();
            }
            // Gated so far: silent.
            assert!(inversions("var.a").is_empty());
            let _a = a.lock();
            let _b = b.lock();
        },
        move || {
            let _g = g2.lock();
            let _b = b2.lock();
            let _a = a2.lock();
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    assert!(r2.is_err(), "the inversion panics");
    assert!(!inversions("var.a").is_empty());
}

/// The look-alike: only gated nestings, however many: silent.
#[test]
fn many_gated_variants_alone_are_silent() {
    let gate = Arc::new(Mutex::named("varok.gate", ()));
    let a = Arc::new(Mutex::named("varok.a", ()));
    let b = Arc::new(Mutex::named("varok.b", ()));
    let extras = Arc::new(mutexes("varok.x", 20));
    let (g2, a2, b2) = (gate.clone(), a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            for x in extras.iter() {
                let _g = gate.lock();
                let _x = x.lock();
                let _a = a.lock();
                let _b = b.lock();
            }
        },
        move || {
            let _g = g2.lock();
            let _b = b2.lock();
            let _a = a2.lock();
        },
    );
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert!(found("varok.a").is_empty());
}

/// Variants from many threads (each its own thread: none subsumes another), then the closing
/// edge: still found.
#[test]
fn variants_of_many_threads_are_kept() {
    let gate = Arc::new(Mutex::named("varmt.gate", ()));
    let a = Arc::new(Mutex::named("varmt.a", ()));
    let b = Arc::new(Mutex::named("varmt.b", ()));
    for _ in 0..24 {
        let (g, a, b) = (gate.clone(), a.clone(), b.clone());
        std::thread::spawn(move || {
            let _g = g.lock();
            let _a = a.lock();
            let _b = b.lock();
        })
        .join()
        .unwrap();
    }
    assert!(found("varmt.a").is_empty(), "gated: silent");
    let (a2, b2) = (a.clone(), b.clone());
    let (g3, a3, b3) = (gate.clone(), a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            let _a = a2.lock();
            let _b = b2.lock();
        },
        move || {
            let _g = g3.lock();
            let _b = b3.lock();
            let _a = a3.lock();
        },
    );
    assert!(r1.is_ok());
    assert!(r2.is_err(), "the inversion panics");
    assert!(!inversions("varmt.a").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Long cycles.

/// A ring of 20 locks over 20 threads (thread i takes lock i, then lock i+1): one 20-lock cycle.
#[test]
fn ring_of_20_locks_is_reported() {
    let n = 20;
    let locks = Arc::new(mutexes("ring20", n));
    // All threads alive together (so concurrent for lockcheck), each takes its pair in turn.
    let start = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (locks, start) = (locks.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                std::thread::sleep(std::time::Duration::from_millis(20 * i as u64));
                let _a = locks[i].lock();
                let _b = locks[(i + 1) % n].lock();
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_err()).count(),
        1,
        "the thread that closes the ring panics"
    );
    let v = inversions("ring20.0");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].edges.len(), n);
}

/// The look-alike: the same chain of 20, not closed: silent.
#[test]
fn open_chain_of_20_locks_is_silent() {
    let n = 20;
    let locks = Arc::new(mutexes("chain20", n));
    let start = Arc::new(Barrier::new(n - 1));
    let handles: Vec<_> = (0..n - 1)
        .map(|i| {
            let (locks, start) = (locks.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let _a = locks[i].lock();
                let _b = locks[i + 1].lock();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(found("chain20.0").is_empty());
    assert!(found("chain20.19").is_empty());
}

// ---------------------------------------------------------------------------------------------
// The dependency cache is exact.

/// The old cache key xored `mode << 56` with `epoch << 48`: an exclusive request at epoch 512
/// had the key of a recursive-read request at epoch 0 with the same held set, so the write was
/// never checked. Here the write closes a cycle the recursive read could not.
#[test]
fn cache_does_not_confuse_mode_and_epoch() {
    let h = Arc::new(Mutex::named("cache.h", ()));
    let x = Arc::new(RwLock::named("cache.x", ()));
    let (h2, x2) = (h.clone(), x.clone());
    let (r1, r2) = two_threads(
        move || {
            // X read-held, then H.
            let _x = x2.read();
            let _h = h2.lock();
        },
        move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                {
                    let _h = h.lock();
                    let _x = x.read_recursive();
                }
                assert!(
                    inversions("cache.x").is_empty(),
                    "a recursive read never waits for a reader"
                );
                // 512 spawns: the thread's clock epoch is 512 now.
                for _ in 0..512 {
                    let _ = lockcheck::thread::spawn(|| {}).into_inner().join();
                }
                let _h = h.lock();
                let _x = x.write();
            }));
            if let Err(e) = r {
                std::panic::resume_unwind(e);
            }
        },
    );
    assert!(r1.is_ok());
    assert!(r2.is_err(), "the inversion panics: {r2:?}");
    assert!(!inversions("cache.x").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Excuses whose premise changes later.

/// How a thread of [`two_threads`] ended: its panic message if it panicked.
type Ran = Result<(), String>;

/// Thread 1 takes read(X) then Y, thread 2 takes Y then read(X), with an `RwLock` X and a `Mutex`
/// Y of these names: X (to write-lock it later, or not) and each thread's result.
fn read_read_cycle(x: &'static str, y: &'static str) -> (Arc<RwLock<i32>>, Ran, Ran) {
    let x = Arc::new(RwLock::named(x, 0));
    let y = Arc::new(Mutex::named(y, ()));
    let (x2, y2, x_keep) = (x.clone(), y.clone(), x.clone());
    let (r1, r2) = two_threads(
        move || {
            let _x = x2.read();
            let _y = y2.lock();
        },
        move || {
            let _y = y.lock();
            let _x = x.read();
        },
    );
    (x_keep, r1, r2)
}

/// Thread 1 takes read(X) then Y, thread 2 takes Y then read(X): harmless while X is never
/// written. A third thread then write-locks X: a queued writer makes the second reader wait,
/// so the cycle is a deadlock now, and it is reported then.
#[test]
fn late_writer_reports_the_read_read_cycle() {
    let (x_keep, r1, r2) = read_read_cycle("late.x", "late.y");
    assert!(r1.is_ok() && r2.is_ok(), "read-read: silent so far");
    assert!(found("late.x").is_empty(), "never written: silent");
    let x3 = x_keep.clone();
    let w = std::thread::spawn(move || {
        *x3.write() += 1;
    })
    .join();
    assert!(w.is_err(), "the writer that makes the cycle real panics");
    let v = inversions("late.x");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].involves("late.y"));
}

/// The look-alike: the same read-read cycle with no writer, ever: silent.
#[test]
fn read_read_cycle_without_writer_is_silent() {
    let (x_keep, r1, r2) = read_read_cycle("rr.x", "rr.y");
    assert!(r1.is_ok() && r2.is_ok());
    let _ = *x_keep.read();
    assert!(found("rr.x").is_empty());
}

/// A cycle made by one thread alone is not a deadlock; once another thread makes one of its
/// edges, it is.
#[test]
fn one_thread_cycle_is_reported_once_another_thread_repeats_an_edge() {
    let a = Arc::new(Mutex::named("solo.a", ()));
    let b = Arc::new(Mutex::named("solo.b", ()));
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            {
                let _a = a2.lock();
                let _b = b2.lock();
            }
            {
                let _b = b2.lock();
                let _a = a2.lock();
            }
            assert!(inversions("solo.a").is_empty(), "one thread alone: silent");
        },
        move || {
            let _a = a.lock();
            let _b = b.lock();
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    assert!(r2.is_err(), "the second thread's edge completes the cycle");
    assert!(!inversions("solo.a").is_empty());
}
