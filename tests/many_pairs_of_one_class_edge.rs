//! Many instance pairs of one class edge (locks created in a loop, each pair nested once): the
//! class edge's variants are then many, indexed by held lock, and compacted when their locks are
//! dropped. A cycle through such an edge is still found (the variant that makes it feasible is
//! kept, the ones it makes redundant dropped through the index), and the gated look-alike stays
//! silent. Each scenario uses its own lock names.

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
