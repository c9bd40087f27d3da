//! A thread's end in the trace (`docs/trace-format.md`, "Thread ends and joins"): a thread started
//! by `lockcheck::thread` holds its end (a lock of kind `end`) from its first event to its last,
//! and a join made holding a lock requests the end before it waits; a join holding nothing writes
//! only `join`. The analyzer then predicts the join deadlock of a run that did not deadlock (the
//! thread took the lock first), which the runtime does not report.

mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::Mutex;
use lockcheck_core::trace::{Event, How, LockKind};
use std::collections::HashMap;
use std::sync::{mpsc, Arc};
use trace_file::{events, findings_involving, tmp};

#[test]
fn a_join_holding_a_lock_is_a_request_of_the_threads_end() {
    lockcheck::set_action(lockcheck::Action::Panic);
    let path = tmp("join.json");
    lockcheck::record::start(&path).unwrap();
    let m = Arc::new(Mutex::named("recjoin.m", 0));
    let m2 = m.clone();
    let (tx, rx) = mpsc::channel::<()>();
    let spawn_line = line!() + 1;
    let child = lockcheck::thread::spawn(move || {
        *m2.lock() += 1;
        let _ = tx.send(());
    });
    let _ = rx.recv();
    let g = m.lock();
    let join_line = line!() + 1;
    child.join().unwrap();
    drop(g);
    // A join holding nothing: no request.
    let free_line = line!() + 1;
    lockcheck::thread::spawn(|| {}).join().unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    assert!(
        lockcheck::violations()
            .iter()
            .all(|v| !v.involves("recjoin.m")),
        "the runtime does not predict it"
    );

    let ev = events(&written);
    let sites: HashMap<u32, String> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Site { s, loc, .. } => Some((*s, loc.clone())),
            _ => None,
        })
        .collect();
    let at = |s: &Option<u32>, line: u32| {
        s.and_then(|s| sites.get(&s))
            .is_some_and(|loc| loc.starts_with(&format!("tests/record_join.rs:{line}:")))
    };
    let end_class = |line: u32| {
        ev.iter()
            .find_map(|e| match e {
                Event::Class {
                    c,
                    key,
                    kind: LockKind::End,
                } if key.starts_with(&format!(
                    "end of thread spawned at tests/record_join.rs:{line}:"
                )) =>
                {
                    Some(*c)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no end class for line {line}"))
    };
    let end_of = |line: u32| {
        let c = end_class(line);
        ev.iter()
            .find_map(|e| match e {
                Event::Lock { l, c: lc, .. } if *lc == c => Some(*l),
                _ => None,
            })
            .expect("the end's lock")
    };
    let (end, free_end) = (end_of(spawn_line), end_of(free_line));
    let child_t = ev
        .iter()
        .find_map(|e| match e {
            Event::Acquire { t, l, how, s, .. } if *l == end => {
                assert_eq!(*how, How::Try);
                assert!(at(s, spawn_line), "acquired at the spawn site");
                Some(*t)
            }
            _ => None,
        })
        .expect("the thread holds its end");
    // The thread's own events: its end first and last.
    let own: Vec<&Event> = ev
        .iter()
        .filter(|e| match e {
            Event::Acquire { t, .. } | Event::Request { t, .. } | Event::Release { t, .. } => {
                *t == child_t
            }
            _ => false,
        })
        .collect();
    assert!(
        matches!(own.first(), Some(Event::Acquire { l, .. }) if *l == end),
        "{own:?}"
    );
    assert!(
        matches!(own.last(), Some(Event::Release { l, .. }) if *l == end),
        "{own:?}"
    );
    // The joiner: request, grant, release of the end, then the join.
    let i = |f: &dyn Fn(&Event) -> bool| ev.iter().position(f);
    let request = i(&|e| matches!(e, Event::Request { l, t, s, .. } if *l == end && *t != child_t && at(s, join_line)))
        .expect("the join's request");
    let grant = i(&|e| matches!(e, Event::Acquire { l, t, how: How::Blocking, .. } if *l == end && *t != child_t))
        .expect("the join's grant");
    let join = i(&|e| matches!(e, Event::Join { child, .. } if *child == child_t)).expect("join");
    assert!(request < grant && grant < join, "{request} {grant} {join}");
    assert!(
        !ev.iter()
            .any(|e| matches!(e, Event::Request { l, .. } if *l == free_end)),
        "a join holding nothing requests nothing"
    );

    let found = findings_involving(&written, "recjoin.m");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "lock-order-inversion");
    assert!(
        found[0]
            .1
            .iter()
            .any(|c| c.starts_with("end of thread spawned at tests/record_join.rs:")),
        "{found:?}"
    );
}
