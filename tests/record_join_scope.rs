//! A scope's implicit join waits for its threads' closures, not for their thread-local
//! destructors (rust-lang/rust#116179); an explicit join waits for both. The trace tells the two
//! apart (`docs/trace-format.md`, "Thread ends and joins": a scope's join requests the end in
//! `read_recursive` mode, and the thread holds its end in `read` mode after its `returned`), so
//! that `lockcheck analyze` reports what can hang and only that:
//!
//! - a scope ending while holding the lock a scoped thread's thread-local destructor takes cannot
//!   hang (the destructor waits until the scope's owner lets go): silent, offline as at runtime;
//! - an explicit join holding that lock can: predicted from a run that did not hang;
//! - a scope ending while holding a lock its thread's closure takes can: predicted too;
//! - so can one holding a lock its thread's value takes when the thread drops it (its handle
//!   gone), which the scope's join waits for.
//!
//! One test: recording is per process, and the runs record one after another.

mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::Mutex;
use std::sync::{mpsc, Arc};
use trace_file::{findings_involving, tmp};

/// A thread-local whose destructor takes a lock, then says so.
struct Flush(Arc<Mutex<u32>>, mpsc::Sender<()>);

impl Drop for Flush {
    fn drop(&mut self) {
        *self.0.lock() += 1;
        let _ = self.1.send(());
    }
}

thread_local! {
    static CACHE: std::cell::RefCell<Option<Flush>> = const { std::cell::RefCell::new(None) };
}

/// Records `run` and returns what the analyzer finds involving `class`, with the reasons of
/// the filtered cycles through it; asserts that the runtime reported nothing of it.
fn recorded(
    name: &str,
    class: &str,
    run: impl FnOnce(),
) -> (
    Vec<(String, std::collections::BTreeSet<String>)>,
    Vec<String>,
) {
    let path = tmp(name);
    lockcheck::record::start(&path).unwrap();
    run();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    assert!(
        lockcheck::violations().iter().all(|v| !v.involves(class)),
        "the runtime reports none of it: {:#?}",
        lockcheck::violations()
    );
    let report = lockcheck_analyze::analyze(&[written.to_path_buf()], &Default::default()).unwrap();
    let filtered = report
        .filtered
        .iter()
        .filter(|f| f.locks.iter().any(|l| l.class == class))
        .map(|f| format!("{}: {}", f.filter, f.reason))
        .collect();
    (findings_involving(&written, class), filtered)
}

fn is_join_deadlock(found: &[(String, std::collections::BTreeSet<String>)]) -> bool {
    found.len() == 1
        && found[0].0 == "lock-order-inversion"
        && found[0]
            .1
            .iter()
            .any(|c| c.starts_with("end of thread spawned at tests/record_join_scope.rs:"))
}

#[test]
fn a_scope_does_not_wait_for_thread_local_destructors_an_explicit_join_does() {
    lockcheck::set_action(lockcheck::Action::Panic);

    // The scope ends holding the lock the destructor takes: the destructor waits for the owner,
    // which does not wait for it.
    let (found, filtered) = recorded("scope_dtor.json", "rjs.scope_dtor", || {
        let m = Arc::new(Mutex::named("rjs.scope_dtor", 0));
        let (tx, rx) = mpsc::channel();
        let g = m.lock();
        lockcheck::thread::scope(|s| {
            let (m, tx) = (m.clone(), tx.clone());
            s.spawn(move || CACHE.with(|c| *c.borrow_mut() = Some(Flush(m, tx))));
        });
        drop(g);
        rx.recv().unwrap();
    });
    assert!(found.is_empty(), "{found:?}");
    assert!(
        filtered
            .iter()
            .any(|f| f.starts_with("read-read: a scope's implicit join waits for the closure")),
        "the cycle is seen, and left out for the scope's reason: {filtered:?}"
    );

    // The same thread joined explicitly: the join would wait for the destructor. This run took
    // the lock only after the destructor had let it go; the analyzer predicts the hang.
    let (found, _) = recorded("explicit_dtor.json", "rjs.explicit_dtor", || {
        let m = Arc::new(Mutex::named("rjs.explicit_dtor", 0));
        let (tx, rx) = mpsc::channel();
        lockcheck::thread::scope(|s| {
            let (m2, tx) = (m.clone(), tx.clone());
            let h = s.spawn(move || CACHE.with(|c| *c.borrow_mut() = Some(Flush(m2, tx))));
            rx.recv().unwrap();
            let g = m.lock();
            h.join().unwrap();
            drop(g);
        });
    });
    assert!(is_join_deadlock(&found), "{found:?}");

    // The scope ends holding a lock its thread's closure took (before it returned): predicted.
    // The guard is the scope's value, held across its implicit joins.
    let (found, _) = recorded("scope_closure.json", "rjs.scope_closure", || {
        let m = Mutex::named("rjs.scope_closure", 0);
        let (tx, rx) = mpsc::channel();
        let g = lockcheck::thread::scope(|s| {
            s.spawn(|| {
                *m.lock() += 1;
                tx.send(()).unwrap();
            });
            rx.recv().unwrap();
            m.lock()
        });
        drop(g);
    });
    assert!(is_join_deadlock(&found), "{found:?}");

    // The scope ends holding a lock that its thread's value takes when dropped: std drops it in
    // the thread (its handle is gone) and the scope's join waits for that drop. Predicted: this
    // run took the lock only after the drop had let it go.
    let (found, _) = recorded("scope_value.json", "rjs.scope_value", || {
        let m = Mutex::named("rjs.scope_value", 0);
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let m_ref = &m;
        let g = lockcheck::thread::scope(|s| {
            s.spawn(move || {
                let _ = go_rx.recv();
                Unregisters(m_ref, done_tx)
            });
            go_tx.send(()).unwrap();
            done_rx.recv().unwrap();
            m_ref.lock()
        });
        drop(g);
    });
    assert!(is_join_deadlock(&found), "{found:?}");
}

/// A value whose drop takes a lock, then says so.
struct Unregisters<'a>(&'a Mutex<u32>, mpsc::Sender<()>);

impl Drop for Unregisters<'_> {
    fn drop(&mut self) {
        *self.0.lock() += 1;
        let _ = self.1.send(());
    }
}
