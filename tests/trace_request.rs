//! The trace keeps the deciding event: a blocking acquisition is recorded as a `request` before
//! the detector's checks, and a thread that the detector stops with a panic still gets its request
//! into the file by the time it is joined (without any report's flush, nor the exit's).

#[path = "support/trace_file.rs"]
mod trace_file;
use lockcheck::Mutex;

use lockcheck_core::trace::Event;
use trace_file::{events, tmp};

fn lock_twice(m: &Mutex<u32>) {
    let _g = m.lock();
    let _h = m.lock();
}

/// The lock numbers of the `lock` events of class `key`.
fn locks_of(ev: &[Event], key: &str) -> Vec<u64> {
    let classes: Vec<u32> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Class { c, key: k, .. } if k == key => Some(*c),
            _ => None,
        })
        .collect();
    ev.iter()
        .filter_map(|e| match e {
            Event::Lock { l, c, .. } if classes.contains(c) => Some(*l),
            _ => None,
        })
        .collect()
}

fn requests_of(ev: &[Event], locks: &[u64]) -> usize {
    ev.iter()
        .filter(|e| matches!(e, Event::Request { l, .. } if locks.contains(l)))
        .count()
}

/// One recording per process: the steps run in sequence.
#[test]
fn requests_are_recorded_before_the_checks_and_reach_the_file() {
    let path = tmp("trace.json");
    lockcheck::set_action(lockcheck::Action::Panic);
    lockcheck::record::start(&path).unwrap();

    // Three threads self-deadlock at the same lines: only the first report is published (and
    // flushes); the others panic without a report's flush.
    let m = std::sync::Arc::new(Mutex::named("tr.self", 0));
    for _ in 0..3 {
        let m = m.clone();
        let r = std::thread::spawn(move || lock_twice(&m)).join();
        assert!(r.is_err(), "the self-deadlock must panic");
    }
    // Read at once: the threads have ended, so their buffers are in the file.
    let ev = events(&path);
    let locks = locks_of(&ev, "tr.self");
    assert_eq!(requests_of(&ev, &locks), 3, "{ev:#?}");

    // Checking off: no report, but the trace still records the requests of nested acquisitions
    // (a run that hangs in a real deadlock must show what every thread waited for).
    lockcheck::set_action(lockcheck::Action::Off);
    let a = Mutex::named("tr.off.a", 0);
    let b = Mutex::named("tr.off.b", 0);
    std::thread::spawn(move || {
        let _a = a.lock();
        let _b = b.lock();
    })
    .join()
    .unwrap();
    let ev = events(&path);
    let b_locks = locks_of(&ev, "tr.off.b");
    let a_locks = locks_of(&ev, "tr.off.a");
    assert_eq!(requests_of(&ev, &b_locks), 1, "{ev:#?}");
    assert_eq!(requests_of(&ev, &a_locks), 0, "nothing held: no request");
    // The request comes before its grant.
    let req = ev
        .iter()
        .position(|e| matches!(e, Event::Request { l, .. } if b_locks.contains(l)))
        .unwrap();
    let acq = ev
        .iter()
        .position(|e| matches!(e, Event::Acquire { l, .. } if b_locks.contains(l)))
        .unwrap();
    assert!(req < acq);
    lockcheck::set_action(lockcheck::Action::Panic);

    // The writes of an RwLock noted one by one (the first 8) are requested even holding nothing
    // (each can decide a report: a read-read cycle it can come between stops being harmless);
    // later writes are not (the lock then counts as written between every two reads).
    let w = lockcheck::RwLock::named("tr.write", 0);
    for _ in 0..20 {
        drop(w.write());
    }
    drop(w.read());
    lockcheck::record::flush();
    let ev = events(&path);
    assert_eq!(requests_of(&ev, &locks_of(&ev, "tr.write")), 8, "{ev:#?}");

    lockcheck::record::stop().unwrap();
    let report = lockcheck_analyze::analyze(&[path.to_path_buf()], &Default::default()).unwrap();
    let kinds: Vec<(&str, &str)> = report
        .violations
        .iter()
        .map(|v| (v.kind.as_str(), v.locks[0].class.as_str()))
        .collect();
    assert_eq!(kinds, [("self-deadlock", "tr.self")], "{report:#?}");
    assert_eq!(report.violations[0].edges[0].count, 3);
    assert!(report.violations[0].edges[0].waiting_at_end);
}
