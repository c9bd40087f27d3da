//! Contended acquisitions through the fast path's entry points (`lock`, `read`, `write`) in this
//! crate's default build (no `tokio` feature: a failed fast try goes to the full path, which
//! tries again and then waits). Every increment must land, nothing may be reported, and the
//! held sets must end empty (a lock taken again alone must not look held).

use std::sync::{mpsc, Arc};
use std::time::Duration;

fn threads(n: usize, f: impl Fn() + Send + Sync + 'static) {
    let f = Arc::new(f);
    let (tx, rx) = mpsc::channel();
    for _ in 0..n {
        let (f, tx) = (f.clone(), tx.clone());
        std::thread::spawn(move || {
            f();
            let _ = tx.send(());
        });
    }
    for _ in 0..n {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("must not hang");
    }
}

#[test]
fn contended_mutex_and_rwlock_lose_nothing_and_report_nothing() {
    let outer = Arc::new(lockcheck::Mutex::named("contended.outer", 0u64));
    let m = Arc::new(lockcheck::Mutex::named("contended.m", 0u64));
    let rw = Arc::new(lockcheck::RwLock::named("contended.rw", 0u64));
    let (o2, m2, rw2) = (outer.clone(), m.clone(), rw.clone());
    threads(4, move || {
        for i in 0..5_000u64 {
            *m2.lock() += 1;
            {
                let _o = o2.lock();
                *m2.lock() += 1; // nested, the same order everywhere
            }
            if i % 2 == 0 {
                *rw2.write() += 1;
            } else {
                std::hint::black_box(*rw2.read());
            }
        }
    });
    assert_eq!(*m.lock(), 4 * 5_000 * 2);
    assert_eq!(*rw.write(), 4 * 5_000 / 2);
    let _o = outer.lock(); // held sets are per thread: this one holds nothing else
    let found: Vec<_> = lockcheck::violations()
        .into_iter()
        .filter(|v| v.involves("contended.m") || v.involves("contended.rw"))
        .collect();
    assert!(found.is_empty(), "{found:#?}");
}
