//! A trace of deep nesting stays balanced: every acquisition of a lock held 33 or more deep is
//! recorded with its release (the 33rd lock used to be untracked: its release was lost, and the
//! analyzer then saw the lock held forever and reported a false inversion).

#[path = "support/scratch.rs"]
mod scratch;

use lockcheck::Mutex;
use lockcheck_core::trace::Event;
use scratch::Scratch;
use std::collections::HashMap;
use std::sync::Arc;

#[test]
fn deep_nesting_trace_is_balanced_and_analyzes_clean() {
    let dir = Scratch::new("trust-depth");
    let path = dir.join("deep-{pid}.json");
    lockcheck::record::start(&path).unwrap();
    let locks: Arc<Vec<Mutex<()>>> = Arc::new(
        (0..40)
            .map(|i| Mutex::named(Box::leak(format!("tdepth.{i}").into_boxed_str()), ()))
            .collect(),
    );
    let l2 = locks.clone();
    std::thread::spawn(move || {
        for _ in 0..2 {
            let _g: Vec<_> = l2.iter().map(|m| m.lock()).collect();
        }
    })
    .join()
    .unwrap();
    // Another thread takes the 1st lock, then the 35th: consistent with the nest. With a lost
    // release of the 35th, the analyzer would see the first thread's second round take the 1st
    // lock while "holding" the 35th: an inversion that never was.
    let l3 = locks.clone();
    std::thread::spawn(move || {
        let _a = l3[0].lock();
        let _b = l3[34].lock();
    })
    .join()
    .unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    let events: Vec<Event> = lockcheck_analyze::read::TraceReader::open(&written, None)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let mut balance: HashMap<u64, i64> = HashMap::new();
    for e in &events {
        match e {
            Event::Acquire { l, .. } => *balance.entry(*l).or_default() += 1,
            Event::Release { l, .. } => *balance.entry(*l).or_default() -= 1,
            _ => {}
        }
    }
    assert_eq!(balance.len(), 40, "every lock recorded");
    assert!(
        balance.values().all(|&b| b == 0),
        "every acquisition has its release: {balance:?}"
    );
    let report =
        lockcheck_analyze::analyze(std::slice::from_ref(&written), &Default::default()).unwrap();
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    let _ = std::fs::remove_dir_all(&dir);
}
