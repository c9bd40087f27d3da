//! Compiled out, the locks are parking_lot's in size; instrumented, dropped locks leave the graph.

use std::mem::size_of;

#[test]
fn plain_types_have_parking_lots_size() {
    assert_eq!(
        size_of::<lockcheck::plain::Mutex<u64>>(),
        size_of::<parking_lot::Mutex<u64>>()
    );
    assert_eq!(
        size_of::<lockcheck::plain::RwLock<u64>>(),
        size_of::<parking_lot::RwLock<u64>>()
    );
    assert_eq!(
        size_of::<lockcheck::plain::Mutex<()>>(),
        size_of::<parking_lot::Mutex<()>>()
    );
    assert_eq!(
        size_of::<lockcheck::plain::FairMutex<u64>>(),
        size_of::<parking_lot::FairMutex<u64>>()
    );
    assert_eq!(
        size_of::<lockcheck::plain::ReentrantMutex<u64>>(),
        size_of::<parking_lot::ReentrantMutex<u64>>()
    );
    assert_eq!(
        size_of::<lockcheck::plain::ReentrantMutex<()>>(),
        size_of::<parking_lot::ReentrantMutex<()>>()
    );
    assert_eq!(
        size_of::<lockcheck::plain::Once>(),
        size_of::<parking_lot::Once>()
    );
    // Compiled out, the crate root's types are these in size and `lockcheck::sync`'s are std's
    // own: const assertions in `crates/lockcheck/src/lib.rs`, checked by every release build of
    // the library (`.ci/run` makes one; this workspace's tests build it instrumented).
}

#[test]
fn dropped_instances_leave_the_instance_graph() {
    let outer = lockcheck::Mutex::named("mem.outer", ());
    let before = lockcheck::__private::graph_sizes();
    for _ in 0..10_000 {
        let inner = lockcheck::Mutex::named("mem.inner", 0);
        let _o = outer.lock();
        *inner.lock() += 1;
    }
    let after = lockcheck::__private::graph_sizes();
    // The outer lock stays; the 10,000 inner instances came and went.
    assert!(
        after.0 <= before.0 + 2,
        "instance nodes grew: {before:?} -> {after:?}"
    );
    assert!(
        after.1 <= before.1 + 1,
        "instance edges grew: {before:?} -> {after:?}"
    );
    // Classes stay: one class edge outer -> inner.
    assert!(after.3 >= 1);
}
