//! Many instance pairs of one class edge (locks created in a loop, each pair nested once): the
//! class edge's variants are then many, grouped by shape (thread, held classes, modes, clock),
//! indexed by held lock within a group, and compacted when their locks are dropped. A cycle
//! through such an edge is still found (the variant that makes it feasible is kept, the ones it
//! makes redundant dropped through the index, and the search tries a group's members until one
//! passes the gates), and the gated look-alike stays silent. More live pairs than the per-edge
//! bound make one group, not an `incomplete` finding. Each scenario uses its own lock names.

mod support;

use lockcheck::Mutex;
use std::sync::Arc;
use support::{found, inversions, watchdog};

/// Live pairs: 40 per scenario, past the length from which an edge's variants are indexed (16).
const PAIRS: usize = 40;

/// Two locks of the classes of one class edge.
type Pair = (Arc<Mutex<()>>, Arc<Mutex<()>>);

fn pairs(a: &'static str, b: &'static str, n: usize) -> Vec<Pair> {
    (0..n)
        .map(|_| (Arc::new(Mutex::named(a, ())), Arc::new(Mutex::named(b, ()))))
        .collect()
}

/// 40 live pairs nested under a gate, then one of them nested without it (its variant makes the
/// gated one of the same pair redundant: dropped through the index), then another thread, under
/// the gate, takes B then A of another pair: a feasible class-level cycle with the ungated
/// variant, reported.
#[test]
fn a_cycle_through_a_variant_kept_by_the_index_is_reported() {
    watchdog(60, || {
        let g = Arc::new(Mutex::named("ixf.gate", ()));
        let ps = pairs("ixf.a", "ixf.b", PAIRS);
        for (a, b) in &ps {
            let _g = g.lock();
            let _a = a.lock();
            let _b = b.lock();
        }
        {
            let (a, b) = &ps[7];
            let _a = a.lock();
            let _b = b.lock();
        }
        assert!(found("ixf.a").is_empty(), "{:#?}", found("ixf.a"));
        let (a, b) = (ps[20].0.clone(), ps[20].1.clone());
        let r = std::thread::spawn(move || {
            let _g = g.lock();
            let _b = b.lock();
            let _a = a.lock();
        })
        .join();
        assert!(r.is_err(), "the inversion panics");
        assert!(!inversions("ixf.a").is_empty());
    })
    .unwrap();
}

/// The look-alike: the same 40 live pairs, every nesting under the gate, and the other thread's
/// B then A under the gate too: every cycle holds the gate twice, silent.
#[test]
fn the_same_pairs_all_under_a_gate_are_silent() {
    watchdog(60, || {
        let g = Arc::new(Mutex::named("ixs.gate", ()));
        let ps = pairs("ixs.a", "ixs.b", PAIRS);
        for (a, b) in &ps {
            let _g = g.lock();
            let _a = a.lock();
            let _b = b.lock();
        }
        let (a, b) = (ps[20].0.clone(), ps[20].1.clone());
        let r = std::thread::spawn(move || {
            let _g = g.lock();
            let _b = b.lock();
            let _a = a.lock();
        })
        .join();
        assert!(r.is_ok(), "silent: {r:?}");
        assert!(found("ixs.a").is_empty(), "{:#?}", found("ixs.a"));
        drop(ps);
    })
    .unwrap();
}

/// Rounds of 64 fresh pairs, each nested once and then dropped (the class edge's list doubles,
/// its dropped locks are rewritten to the class marker and merged), then another thread takes B
/// then A of a fresh pair: reported at class level (the order A then B was seen, whichever
/// instances). With every nesting under a gate on both sides: silent.
#[test]
fn a_class_edge_of_dropped_pairs_still_closes_a_cycle_and_its_gated_look_alike_is_silent() {
    fn rounds(g: Option<&Mutex<()>>, a: &'static str, b: &'static str) {
        for _ in 0..4 {
            for (a, b) in &pairs(a, b, 64) {
                let _g = g.map(|g| g.lock());
                let _a = a.lock();
                let _b = b.lock();
            }
        }
    }
    watchdog(60, || {
        rounds(None, "ixd.a", "ixd.b");
        let r = std::thread::spawn(|| {
            let (a, b) = (Mutex::named("ixd.a", ()), Mutex::named("ixd.b", ()));
            let _b = b.lock();
            let _a = a.lock();
        })
        .join();
        assert!(r.is_err(), "the class inversion panics");
        assert!(!found("ixd.a").is_empty());

        let g = Arc::new(Mutex::named("ixg.gate", ()));
        rounds(Some(&g), "ixg.a", "ixg.b");
        let r = std::thread::spawn(move || {
            let (a, b) = (Mutex::named("ixg.a", ()), Mutex::named("ixg.b", ()));
            let _g = g.lock();
            let _b = b.lock();
            let _a = a.lock();
        })
        .join();
        assert!(r.is_ok(), "silent: {r:?}");
        assert!(found("ixg.a").is_empty(), "{:#?}", found("ixg.a"));
    })
    .unwrap();
}

/// No `incomplete` finding of any kind so far (this file's scenarios stay within every bound).
fn no_incomplete() {
    let v: Vec<_> = lockcheck::violations()
        .into_iter()
        .filter(|v| matches!(v.kind, lockcheck::ViolationKind::Incomplete { .. }))
        .collect();
    assert!(v.is_empty(), "{v:#?}");
}

/// Live pairs, more than the per-edge bound (4,096): a server's 5,000 sessions, each `a` then
/// `b`, all alive at once. The class edge keeps them as one group (one thread, one held class
/// set), so the bound is not reached; then another thread takes B then A of another session: the
/// class-level inversion is reported, and nothing is `incomplete`.
#[test]
fn five_thousand_live_pairs_then_a_class_inversion_on_another_thread_is_reported() {
    watchdog(120, || {
        let ps = pairs("live.a", "live.b", 5000);
        for (a, b) in &ps {
            let _a = a.lock();
            let _b = b.lock();
        }
        no_incomplete();
        let groups = lockcheck::__private::most_class_edge_groups();
        assert!(groups <= 64, "groups on one class edge: {groups}");
        let (a, b) = (ps[4321].0.clone(), ps[4321].1.clone());
        let r = std::thread::spawn(move || {
            let _b = b.lock();
            let _a = a.lock();
        })
        .join();
        assert!(r.is_err(), "the inversion panics");
        assert!(!inversions("live.a").is_empty());
        no_incomplete();
        drop(ps);
    })
    .unwrap();
}

/// Among 5,000 live pairs nested under a gate `g`, the last one is nested under another lock of
/// the gate's class: one group of 5,000 members on the class edge, every member but the last
/// gated by `g`. Another thread, holding `g`, takes B then A: the cycle through the last member
/// is feasible and reported (the search tries the group's members past the gated ones). The
/// look-alike, all 5,000 under `g`: silent.
#[test]
fn one_ungated_member_among_five_thousand_gated_ones_closes_the_cycle_and_all_gated_is_silent() {
    fn scenario(prefix: &str, last_elsewhere: bool) -> std::thread::Result<()> {
        let name = |s: &str| &*Box::leak(format!("{prefix}.{s}").into_boxed_str());
        let g = Arc::new(Mutex::named(name("gate"), ()));
        let other = Mutex::named(name("gate"), ());
        let ps = pairs(name("a"), name("b"), 5000);
        for (i, (a, b)) in ps.iter().enumerate() {
            let _g = if last_elsewhere && i == ps.len() - 1 {
                other.lock()
            } else {
                g.lock()
            };
            let _a = a.lock();
            let _b = b.lock();
        }
        let (a, b) = (ps[20].0.clone(), ps[20].1.clone());
        let r = std::thread::spawn(move || {
            let _g = g.lock();
            let _b = b.lock();
            let _a = a.lock();
        })
        .join();
        drop(ps);
        r
    }
    watchdog(120, || {
        assert!(scenario("gm1", true).is_err(), "the inversion panics");
        assert!(!inversions("gm1.a").is_empty());
        assert!(scenario("gm2", false).is_ok(), "silent");
        assert!(found("gm2.a").is_empty(), "{:#?}", found("gm2.a"));
        no_incomplete();
    })
    .unwrap();
}

/// A cycle of three class edges, A -> B on thread 1 (two members of one group: under gates `g1`
/// and `g2`, two locks of one class), B -> C on thread 2 under `g1`, C -> A on thread 3. With the
/// first member of A -> B the cycle holds `g1` twice; with the second it is feasible: the search
/// must change its choice of member after a failure caused by that member's gate. Reported; the
/// look-alike where both members hold `g1` is silent.
#[test]
fn a_member_that_causes_a_gate_failure_further_on_is_replaced_by_the_next_one() {
    fn scenario(prefix: &str, second_gate_differs: bool) -> bool {
        let name = |s: &str| &*Box::leak(format!("{prefix}.{s}").into_boxed_str());
        let g1 = Arc::new(Mutex::named(name("g"), ()));
        let g2 = Arc::new(Mutex::named(name("g"), ()));
        let ab = pairs(name("a"), name("b"), 2);
        std::thread::scope(|s| {
            s.spawn(|| {
                for (i, (a, b)) in ab.iter().enumerate() {
                    let _g = if i == 1 && second_gate_differs {
                        g2.lock()
                    } else {
                        g1.lock()
                    };
                    let _a = a.lock();
                    let _b = b.lock();
                }
            })
            .join()
            .unwrap();
            s.spawn(|| {
                let (b, c) = (Mutex::named(name("b"), ()), Mutex::named(name("c"), ()));
                let _g = g1.lock();
                let _b = b.lock();
                let _c = c.lock();
            })
            .join()
            .unwrap();
            s.spawn(|| {
                let (c, a) = (Mutex::named(name("c"), ()), Mutex::named(name("a"), ()));
                let _c = c.lock();
                let _a = a.lock();
            })
            .join()
            .is_err()
        })
    }
    watchdog(60, || {
        assert!(scenario("bj1", true), "the inversion panics");
        assert!(!inversions("bj1.a").is_empty());
        assert!(!scenario("bj2", false), "silent");
        assert!(found("bj2.a").is_empty(), "{:#?}", found("bj2.a"));
    })
    .unwrap();
}
