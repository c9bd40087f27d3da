//! An edge that every short-lived thread repeats (each test of a suite on its own thread, a pool
//! respawned per job) keeps a bounded number of variants once the threads have ended, with no
//! `incomplete` report, and every cycle found before is still found: the inversion on a later
//! thread is reported, an inversion ordered by join stays silent, a cycle that needs two ended
//! threads with variants on two edges is still found, a read-read cycle whose queued writer is
//! one of the ended threads is still found. Each scenario uses its own lock names.

mod support;

use lockcheck::{Mutex, RwLock, ViolationKind};
use std::sync::Arc;
use support::{found, inversions, two_threads, watchdog};

fn incomplete() -> Vec<lockcheck::Violation> {
    lockcheck::violations()
        .into_iter()
        .filter(|v| matches!(v.kind, ViolationKind::Incomplete { .. }))
        .collect()
}

/// Runs `f` on a fresh std thread (unordered for lockcheck, as a test of `cargo test` is) and
/// joins it.
fn on_own_thread(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().expect("thread");
}

/// 5,000 threads one after the other, each taking A then B (as 5,000 tests would), then B then A
/// on a new thread: reported, with no `incomplete` finding and a bounded number of variants kept.
#[test]
fn five_thousand_ended_threads_then_the_inversion_is_reported() {
    watchdog(120, || {
        let a = Arc::new(Mutex::named("ended.a", ()));
        let b = Arc::new(Mutex::named("ended.b", ()));
        for _ in 0..5000 {
            let (a, b) = (a.clone(), b.clone());
            on_own_thread(move || {
                let _a = a.lock();
                let _b = b.lock();
            });
        }
        assert!(incomplete().is_empty(), "{:#?}", incomplete());
        // Merged each time the list reaches 32 (the other tests of this file keep at most 41).
        let (inst, class) = lockcheck::__private::most_edge_variants();
        assert!(
            inst <= 64 && class <= 64,
            "variants of one edge: {inst}, {class}"
        );
        let r = std::thread::spawn(move || {
            let _b = b.lock();
            let _a = a.lock();
        })
        .join();
        assert!(r.is_err(), "the inversion panics");
        assert!(!inversions("ended.a").is_empty());
        assert!(incomplete().is_empty(), "{:#?}", incomplete());
    })
    .unwrap();
}

/// The look-alike ordered by join: threads started and joined through `lockcheck::thread`, then
/// the inversion on a thread started after the joins: silent.
#[test]
fn inversion_after_the_joins_on_a_new_thread_is_silent() {
    watchdog(60, || {
        let a = Arc::new(Mutex::named("joined.a", ()));
        let b = Arc::new(Mutex::named("joined.b", ()));
        for _ in 0..40 {
            let (a, b) = (a.clone(), b.clone());
            lockcheck::thread::spawn(move || {
                let _a = a.lock();
                let _b = b.lock();
            })
            .join()
            .unwrap();
        }
        lockcheck::thread::spawn(move || {
            let _b = b.lock();
            let _a = a.lock();
        })
        .join()
        .unwrap();
        assert!(found("joined.a").is_empty(), "{:#?}", found("joined.a"));
    })
    .unwrap();
}

/// The same inversion while an A-then-B thread is alive (concurrent): reported.
#[test]
fn inversion_concurrent_with_a_live_thread_is_reported() {
    watchdog(60, || {
        let a = Arc::new(Mutex::named("live.a", ()));
        let b = Arc::new(Mutex::named("live.b", ()));
        for _ in 0..40 {
            let (a, b) = (a.clone(), b.clone());
            on_own_thread(move || {
                let _a = a.lock();
                let _b = b.lock();
            });
        }
        let (a1, b1, a2, b2) = (a.clone(), b.clone(), a, b);
        let (r1, r2) = two_threads(
            move || {
                let _a = a1.lock();
                let _b = b1.lock();
            },
            move || {
                let _b = b2.lock();
                let _a = a2.lock();
            },
        );
        assert!(r1.is_ok(), "{r1:?}");
        assert!(r2.is_err(), "the inversion panics");
        assert!(!inversions("live.a").is_empty());
    })
    .unwrap();
}

/// Hand over hand (A, B, release A, C) on 40 ended threads, then C then A on a new thread: the
/// cycle A -> B -> C -> A needs A -> B and B -> C from two different threads, and is reported
/// (a merge keeping one thread's variants for both edges would lose it).
#[test]
fn hand_over_hand_of_many_ended_threads_then_the_closing_edge_is_reported() {
    watchdog(60, || {
        let a = Arc::new(Mutex::named("hoh.a", ()));
        let b = Arc::new(Mutex::named("hoh.b", ()));
        let c = Arc::new(Mutex::named("hoh.c", ()));
        for _ in 0..40 {
            let (a, b, c) = (a.clone(), b.clone(), c.clone());
            on_own_thread(move || {
                let ga = a.lock();
                let _b = b.lock();
                drop(ga);
                let _c = c.lock();
            });
        }
        let r = std::thread::spawn(move || {
            let _c = c.lock();
            let _a = a.lock();
        })
        .join();
        assert!(r.is_err(), "the closing edge panics");
        assert!(!inversions("hoh.a").is_empty());
    })
    .unwrap();
}

/// The look-alike: one ended thread hand over hand (its two edges cannot both be waited on), 40
/// ended threads taking A then B under a gate, then C then A under the same gate: silent.
#[test]
fn hand_over_hand_of_one_thread_and_gated_repeats_are_silent() {
    watchdog(60, || {
        let g = Arc::new(Mutex::named("hoh1.gate", ()));
        let a = Arc::new(Mutex::named("hoh1.a", ()));
        let b = Arc::new(Mutex::named("hoh1.b", ()));
        let c = Arc::new(Mutex::named("hoh1.c", ()));
        {
            let (a, b, c) = (a.clone(), b.clone(), c.clone());
            on_own_thread(move || {
                let ga = a.lock();
                let _b = b.lock();
                drop(ga);
                let _c = c.lock();
            });
        }
        for _ in 0..40 {
            let (g, a, b) = (g.clone(), a.clone(), b.clone());
            on_own_thread(move || {
                let _g = g.lock();
                let _a = a.lock();
                let _b = b.lock();
            });
        }
        on_own_thread(move || {
            let _g = g.lock();
            let _c = c.lock();
            let _a = a.lock();
        });
        assert!(found("hoh1.a").is_empty(), "{:#?}", found("hoh1.a"));
    })
    .unwrap();
}

/// 40 ended threads each taking only A then B (merged into one of them), one ended thread hand
/// over hand (A, B, release A, C: its A -> B and B -> C cannot both be on a cycle), then C then A
/// on a new thread: the cycle A -> B -> C -> A is feasible with a single-edge thread's A -> B and
/// the hand-over-hand thread's B -> C, and is reported whichever variant of A -> B was kept.
#[test]
fn repeats_merged_around_a_hand_over_hand_thread_still_close_the_cycle() {
    watchdog(60, || {
        let a = Arc::new(Mutex::named("mix.a", ()));
        let b = Arc::new(Mutex::named("mix.b", ()));
        let c = Arc::new(Mutex::named("mix.c", ()));
        {
            let (a, b, c) = (a.clone(), b.clone(), c.clone());
            on_own_thread(move || {
                let ga = a.lock();
                let _b = b.lock();
                drop(ga);
                let _c = c.lock();
            });
        }
        for _ in 0..40 {
            let (a, b) = (a.clone(), b.clone());
            on_own_thread(move || {
                let _a = a.lock();
                let _b = b.lock();
            });
        }
        let r = std::thread::spawn(move || {
            let _c = c.lock();
            let _a = a.lock();
        })
        .join();
        assert!(r.is_err(), "the closing edge panics");
        assert!(!inversions("mix.a").is_empty());
    })
    .unwrap();
}

/// Read-read through merged variants: R (an unordered thread) write-locks L, then read-locks L
/// and locks M under it; 31 more unordered threads read-lock L and lock M; Y, started through
/// `lockcheck::thread` and joined, does it too (its variant is the 33rd: the edge's variants are
/// merged before it goes in). Then N, started after the join (so ordered after Y), locks M and
/// read-locks L: a deadlock with any of the 31 threads, R's write the queued writer (R's thread
/// is ordered with none of them). Not with R's own variant: a write by one of the two readers'
/// threads is never the queued writer (`write_between`). The merge took R's variant, the first,
/// to stand for the 31 others, and the cycle was lost; a thread that wrote stands for no other
/// now, and N's acquisition is reported.
#[test]
fn a_read_read_cycle_whose_queued_writer_ended_is_still_found() {
    watchdog(60, || {
        let l = Arc::new(RwLock::named("ended.rw.l", 0));
        let m = Arc::new(Mutex::named("ended.rw.m", ()));
        let section = |l: Arc<RwLock<i32>>, m: Arc<Mutex<()>>| {
            move || {
                let _l = l.read();
                let _m = m.lock();
            }
        };
        {
            let (l, m) = (l.clone(), m.clone());
            on_own_thread(move || {
                *l.write() += 1;
                section(l, m)();
            });
        }
        for _ in 0..31 {
            on_own_thread(section(l.clone(), m.clone()));
        }
        lockcheck::thread::spawn(section(l.clone(), m.clone()))
            .join()
            .expect("Y");
        let r = lockcheck::thread::spawn(move || {
            let _m = m.lock();
            let _l = l.read();
        })
        .join();
        assert!(r.is_err(), "the closing read panics");
        assert!(!inversions("ended.rw.l").is_empty());
    })
    .unwrap();
}
