//! Limits of the online detector are reported, never silent: when a cycle search runs out of
//! steps, or an edge has kept as many distinct dependencies as it may, `violations()` gets an
//! `incomplete` finding naming the limit (once per limit), also printed on stderr.

mod support;

use lockcheck::{Mutex, ViolationKind};
use std::sync::Arc;

fn incomplete(limit: &str) -> Vec<lockcheck::Violation> {
    lockcheck::violations()
        .into_iter()
        .filter(|v| matches!(v.kind, ViolationKind::Incomplete { limit: l, .. } if l == limit))
        .collect()
}

fn named(prefix: &str, i: usize, j: usize) -> Mutex<()> {
    Mutex::named(Box::leak(format!("{prefix}.{i}.{j}").into_boxed_str()), ())
}

/// A layered graph, 8 layers of 6 locks, every lock of a layer before every lock of the next (one
/// thread per layer), has 6^7 paths from its first layer to its last. Thread F takes each lock of
/// the last layer, then `a`; then `a`, then the first lock of the first layer: every path closes
/// a cycle, each infeasible only at its last step (F made both its ends), so the search runs out
/// of steps.
#[test]
fn search_budget_is_reported_as_incomplete() {
    let (k, w) = (8, 6);
    let layers: Arc<Vec<Vec<Mutex<()>>>> = Arc::new(
        (0..k)
            .map(|i| (0..w).map(|j| named("bud", i, j)).collect())
            .collect(),
    );
    for i in 0..k - 1 {
        let layers = layers.clone();
        std::thread::spawn(move || {
            for x in &layers[i] {
                for y in &layers[i + 1] {
                    let _x = x.lock();
                    let _y = y.lock();
                }
            }
        })
        .join()
        .unwrap();
    }
    let a = Arc::new(Mutex::named("bud.a", ()));
    let (l2, a2) = (layers.clone(), a.clone());
    std::thread::spawn(move || {
        for x in &l2[k - 1] {
            let _x = x.lock();
            let _a = a2.lock();
        }
        assert!(
            incomplete("search-steps").is_empty(),
            "an acyclic graph needs no search: nothing incomplete yet"
        );
        let _a = a2.lock();
        let _b = l2[0][0].lock();
    })
    .join()
    .unwrap();
    let v = incomplete("search-steps");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].message.starts_with("lockcheck: incomplete"),
        "{}",
        v[0].message
    );
    assert_eq!(v[0].kind.name(), "incomplete");
}

/// One class edge made 4100 ways by one thread, each time under a lock of another class: each is
/// a distinct shape of the class edge (its held classes differ), and distinct dependencies (no
/// held set is a subset of another, the locks live on): the 4097th shape is past the bound:
/// dropped, and reported. (Live instance pairs of one shape, however many, make one group:
/// `tests/many_pairs_of_one_class_edge.rs`; threads that repeat an edge and end are merged:
/// `tests/ended_threads.rs`.)
#[test]
fn variant_bound_is_reported_as_incomplete() {
    let held: Vec<[Mutex<()>; 3]> = (0..4100)
        .map(|i| {
            [
                named("vb.x", i, 0),
                Mutex::named("vb.a", ()),
                Mutex::named("vb.b", ()),
            ]
        })
        .collect();
    for (i, [x, a, b]) in held.iter().enumerate() {
        let _x = x.lock();
        let _a = a.lock();
        let _b = b.lock();
        if i == 4000 {
            assert!(incomplete("edge-variants").is_empty());
        }
    }
    let v = incomplete("edge-variants");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].involves("vb.b"));
    assert_eq!(lockcheck::__private::most_class_edge_groups(), 4096);
}
