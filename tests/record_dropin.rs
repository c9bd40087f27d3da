//! Offline equals runtime for the new locks and guard operations: a recorded run of a `Once`
//! against a lock, of a `bump` under another lock, and of a reentrant mutex is analyzed to the
//! same findings the runtime reports (and to nothing for the re-entry).

#[path = "support/scratch.rs"]
mod scratch;
mod support;

use lockcheck::{Mutex, MutexGuard, Once, ReentrantMutex};
use scratch::Scratch;
use std::sync::Arc;

fn classes_of(written: &std::path::Path) -> Vec<Vec<String>> {
    let report = lockcheck_analyze::analyze(&[written.to_path_buf()], &Default::default()).unwrap();
    let mut all: Vec<Vec<String>> = report
        .violations
        .iter()
        .map(|v| {
            let mut c: Vec<String> = v.locks.iter().map(|l| l.class.clone()).collect();
            c.sort();
            c.dedup();
            c
        })
        .collect();
    all.sort();
    all
}

#[test]
fn recorded_once_bump_and_reentry_analyze_as_at_runtime() {
    // Checking off: only the trace sees the scenarios.
    lockcheck::set_action(lockcheck::Action::Off);
    let dir = Scratch::new("dropin");
    lockcheck::record::start(dir.join("dropin.json")).unwrap();

    // A Once initialized under no lock that takes L, and a lock L held around another Once of
    // the same class.
    let l = Arc::new(Mutex::named("rd.once.l", ()));
    let l2 = l.clone();
    let _ = support::two_threads(
        move || Once::named("rd.once").call_once(|| drop(l.lock())),
        move || {
            let _l = l2.lock();
            Once::named("rd.once").call_once(|| ());
        },
    );
    // bump under B: "B then A" against another thread's "A then B".
    let a = Arc::new(Mutex::named("rd.bump.a", ()));
    let b = Arc::new(Mutex::named("rd.bump.b", ()));
    let (a2, b2) = (a.clone(), b.clone());
    let _ = support::two_threads(
        move || {
            let mut ga = a.lock();
            let _gb = b.lock();
            MutexGuard::bump(&mut ga);
        },
        move || {
            let _a = a2.lock();
            let _b = b2.lock();
        },
    );
    // Re-entry after another lock, in a consistent order: nothing to find.
    let r = Arc::new(ReentrantMutex::named("rd.re", ()));
    let c = Arc::new(Mutex::named("rd.re.c", ()));
    let (r2, c2) = (r.clone(), c.clone());
    let _ = support::two_threads(
        move || {
            let _r = r.lock();
            let _c = c.lock();
            let _again = r.lock();
        },
        move || {
            let _r = r2.lock();
            let _c = c2.lock();
        },
    );

    let written = lockcheck::record::stop().unwrap().expect("was recording");
    let found = classes_of(&written);
    assert!(
        found.contains(&vec!["rd.once".to_owned(), "rd.once.l".to_owned()]),
        "{found:?}"
    );
    assert!(
        found.contains(&vec!["rd.bump.a".to_owned(), "rd.bump.b".to_owned()]),
        "{found:?}"
    );
    assert!(
        !found.iter().flatten().any(|c| c.starts_with("rd.re")),
        "{found:?}"
    );
}
