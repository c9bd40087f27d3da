//! The fast exclusive push stores a lock's identity as its held word and leaves the slot's
//! separate identity as an earlier entry wrote it (one store less; without the `tokio` feature,
//! whose pushes always write it): a held lock's class in a report must still be its own.

use lockcheck::{Mutex, RwLock};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Reports naming the lock class `name` as held or acquired.
fn found(name: &str) -> Vec<lockcheck::Violation> {
    lockcheck::violations()
        .into_iter()
        .filter(|v| {
            v.edges
                .iter()
                .any(|e| e.held.class == name || e.acquired.class == name)
        })
        .collect()
}

#[test]
fn a_held_lock_keeps_its_class_in_a_slot_a_read_used_before() {
    let a = Arc::new(Mutex::named("slot.a", 0));
    let b = Arc::new(Mutex::named("slot.b", 0));
    let r = RwLock::named("slot.r", 0);
    // The first thread's order b -> a; it stays alive (concurrent with the second) until told.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (a1, b1) = (a.clone(), b.clone());
    let first = std::thread::spawn(move || {
        {
            let _b = b1.lock();
            let _a = a1.lock();
        }
        ready_tx.send(()).unwrap();
        let _ = done_rx.recv_timeout(Duration::from_secs(60));
    });
    ready_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("must not hang");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for _ in 0..3 {
                drop(r.read()); // the slot's identity: the RwLock's
            }
            let _a = a.lock(); // the fast push: the identity left as the read wrote it
            let _b = b.lock(); // inverts b -> a, with a held
        }));
        let _ = tx.send(res.is_err());
    });
    let panicked = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("must not hang");
    done_tx.send(()).unwrap();
    first.join().unwrap();
    let v = found("slot.a");
    assert_eq!(v.len(), 1, "panicked: {panicked}, {v:#?}");
    assert!(found("slot.b").len() == 1, "{:#?}", found("slot.b"));
    assert!(found("slot.r").is_empty(), "{:#?}", found("slot.r"));
}
