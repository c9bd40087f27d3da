//! Threads that take locks in a thread-local destructor after lockcheck's own per-thread end
//! mark is gone ("late" dependencies) are remembered so that their dependencies are never
//! merged as an ended thread's: one entry per such thread, up to a bound; past it, no ended
//! thread's dependencies are merged any more (said once on stderr), nothing is reported as
//! incomplete, and an inversion is still found while its look-alike stays silent.
//!
//! One test: the count it checks is process-wide.

mod support;

use lockcheck::{Mutex, ViolationKind};
use std::cell::RefCell;
use std::sync::Arc;
use support::{inversions, two_threads, watchdog};

/// [`lockcheck::__private::late_threads`]'s bound (`graph::LATE_LIMIT`).
const LATE_LIMIT: usize = 4096;

/// Two locks of one class (one construction site), so that a dependency between them makes no
/// class edge: each thread's variants leave with its locks, and the only thing kept per thread
/// is its entry among the late threads.
fn pair() -> [Mutex<()>; 2] {
    [(); 2].map(|_| Mutex::new(()))
}

/// Its destructor takes its two locks nested.
struct LocksOnExit(Option<[Mutex<()>; 2]>);

impl Drop for LocksOnExit {
    fn drop(&mut self) {
        if let Some([a, b]) = &self.0 {
            let _a = a.lock();
            let _b = b.lock();
        }
    }
}

thread_local! {
    static ON_EXIT: RefCell<LocksOnExit> = const { RefCell::new(LocksOnExit(None)) };
}

/// A thread whose exit takes two locks nested after lockcheck's end mark is gone: its state is
/// made first (a lone lock), then the user's thread-local (destroyed after the mark, which
/// lockcheck makes at the thread's first dependency, below).
fn late_thread() {
    std::thread::spawn(|| {
        let first = Mutex::new(());
        drop(first.lock());
        ON_EXIT.with(|t| t.borrow_mut().0 = Some(pair()));
        let [x, y] = pair();
        let _x = x.lock();
        let _y = y.lock();
    })
    .join()
    .expect("thread");
}

fn incomplete() -> Vec<lockcheck::Violation> {
    lockcheck::violations()
        .into_iter()
        .filter(|v| matches!(v.kind, ViolationKind::Incomplete { .. }))
        .collect()
}

#[test]
fn late_threads_are_bounded_and_detection_goes_on() {
    watchdog(120, || {
        let (before, full) = lockcheck::__private::late_threads();
        assert!(!full);
        late_thread();
        let (after, _) = lockcheck::__private::late_threads();
        assert_eq!(after, before + 1, "the late thread is remembered");

        for _ in 0..LATE_LIMIT + 4 {
            late_thread();
        }
        assert_eq!(
            lockcheck::__private::late_threads(),
            (0, true),
            "bounded: past the limit none is remembered, and none is merged"
        );
        assert!(incomplete().is_empty(), "{:#?}", incomplete());

        // Detection goes on: an inversion between two threads is reported ...
        let a = Arc::new(Mutex::named("late.a", ()));
        let b = Arc::new(Mutex::named("late.b", ()));
        let (a2, b2) = (a.clone(), b.clone());
        let (r1, r2) = two_threads(
            move || {
                let _a = a.lock();
                let _b = b.lock();
            },
            move || {
                let _b = b2.lock();
                let _a = a2.lock();
            },
        );
        assert!(r1.is_ok());
        assert!(r2.is_err(), "the inversion panics");
        assert!(!inversions("late.a").is_empty());
        // ... and its look-alike, the same order on both, is silent.
        let c = Arc::new(Mutex::named("late.c", ()));
        let d = Arc::new(Mutex::named("late.d", ()));
        let (c2, d2) = (c.clone(), d.clone());
        let (r1, r2) = two_threads(
            move || {
                let _c = c.lock();
                let _d = d.lock();
            },
            move || {
                let _c = c2.lock();
                let _d = d2.lock();
            },
        );
        assert!(r1.is_ok() && r2.is_ok());
        assert!(inversions("late.c").is_empty());
        assert!(incomplete().is_empty(), "{:#?}", incomplete());
    })
    .unwrap();
}
