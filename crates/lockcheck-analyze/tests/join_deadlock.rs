//! Join deadlocks in traces (`docs/trace-format.md`, "Thread ends and joins"): a thread's end is
//! a lock of kind `end` it holds from start to finish, a join made holding locks requests it. A
//! join made holding `m` of a thread that takes `m` is the cycle `m -> end -> m`, titled a join
//! deadlock with both threads and sites; its look-alikes (the thread's `m` ordered before the
//! joiner's by fork/join, the lock released before the join) are silent.

use lockcheck_analyze::model::ModelBuilder;
use lockcheck_analyze::{analyze_model, report, Options};
use lockcheck_core::trace::{Event, How, LockKind, Mode, FORMAT_VERSION};

fn acq(t: u64, l: u64, how: How, s: u32) -> Event {
    Event::Acquire {
        t,
        l,
        m: Mode::Exclusive,
        how,
        s: Some(s),
        wait_ns: 0,
    }
}

fn rel(t: u64, l: u64) -> Event {
    Event::Release { t, l, hold_ns: 0 }
}

/// Thread 1 (`main`) forks thread 2, which takes `m` (lock 1, at `a.rs:2:2`) while holding its
/// end (lock 2); then `main`, holding `m` or not (`hold`), joins thread 2 at `a.rs:3:3`.
/// `ordered`: thread 2 forks thread 3 after its `m`, which `main` joins before it takes `m`.
fn trace(hold: bool, ordered: bool) -> Vec<Event> {
    let mut e = vec![
        Event::Header {
            version: FORMAT_VERSION,
            pid: 1,
            program: "p".into(),
            start_unix_ms: 0,
            hold_resolution_ns: 0,
        },
        Event::Thread {
            t: 1,
            name: Some("main".into()),
        },
        Event::Class {
            c: 1,
            key: "m".into(),
            kind: LockKind::Mutex,
        },
        Event::Class {
            c: 2,
            key: "end of thread spawned at a.rs:1:1".into(),
            kind: LockKind::End,
        },
        Event::Site {
            s: 1,
            loc: "a.rs:2:2".into(),
            frames: vec![],
        },
        Event::Site {
            s: 2,
            loc: "a.rs:3:3".into(),
            frames: vec![],
        },
        Event::Site {
            s: 3,
            loc: "a.rs:1:1".into(),
            frames: vec![],
        },
        Event::Lock {
            l: 1,
            c: 1,
            permits: None,
        },
        Event::Lock {
            l: 2,
            c: 2,
            permits: None,
        },
        Event::Fork { t: 1, child: 2 },
        acq(2, 2, How::Try, 3),
        acq(2, 1, How::Blocking, 1),
        rel(2, 1),
    ];
    if ordered {
        e.push(Event::Fork { t: 2, child: 3 });
        e.push(Event::Join {
            t: 1,
            child: 3,
            scope: false,
        });
    }
    e.push(acq(1, 1, How::Blocking, 1));
    if !hold {
        e.push(rel(1, 1));
    } else {
        e.push(Event::Request {
            t: 1,
            l: 2,
            m: Mode::Exclusive,
            s: Some(2),
            n: 1,
            short: None,
        });
    }
    e.push(rel(2, 2));
    if hold {
        e.push(acq(1, 2, How::Blocking, 2));
        e.push(rel(1, 2));
    }
    e.push(Event::Join {
        t: 1,
        child: 2,
        scope: false,
    });
    if hold {
        e.push(rel(1, 1));
    }
    e
}

/// [`trace`] with the end's class renamed `key`, of kind `kind`.
fn with_end(events: Vec<Event>, key: &str, kind: LockKind) -> Vec<Event> {
    events
        .into_iter()
        .map(|e| match e {
            Event::Class { c: 2, .. } => Event::Class {
                c: 2,
                key: key.into(),
                kind,
            },
            e => e,
        })
        .collect()
}

fn model(events: &[Event]) -> lockcheck_analyze::model::Model {
    let mut b = ModelBuilder::new();
    b.begin_trace("t");
    for e in events {
        b.event(e);
    }
    b.end_trace();
    b.finish()
}

fn analyze(events: &[Event]) -> report::Report {
    analyze_model(&model(events), &Options::default())
}

#[test]
fn a_join_holding_a_lock_the_joined_thread_takes_is_a_join_deadlock() {
    let r = analyze(&trace(true, false));
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    let v = &r.violations[0];
    assert_eq!(v.kind, "lock-order-inversion");
    assert!(v.locks.iter().any(|l| l.kind == "end"), "{:?}", v.locks);
    assert_eq!(
        report::title(v),
        "join deadlock: main joins T2 (end of thread spawned at a.rs:1:1) at a.rs:3:3 while holding m; \
         T2 takes m at a.rs:2:2 (instance level)"
    );
}

#[test]
fn a_join_after_the_release_is_silent() {
    let r = analyze(&trace(false, false));
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
}

#[test]
fn a_join_whose_thread_took_the_lock_before_by_fork_and_join_is_filtered() {
    let r = analyze(&trace(true, true));
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert_eq!(r.filtered.len(), 1, "{:#?}", r.filtered);
    assert_eq!(r.filtered[0].filter, "fork-join");
}

#[test]
fn a_threads_life_is_no_hold_to_suggest_a_timeout_for() {
    // The thread lived a second: its end's hold. The lock's own hold gets its row.
    let events: Vec<Event> = trace(true, false)
        .into_iter()
        .map(|e| match e {
            Event::Release { t, l, .. } => Event::Release {
                t,
                l,
                hold_ns: if (t, l) == (2, 2) {
                    1_000_000_000
                } else {
                    5_000
                },
            },
            e => e,
        })
        .collect();
    let rows = lockcheck_analyze::timeouts::suggest(&model(&events));
    let classes: Vec<&str> = rows.iter().map(|r| r.class.as_str()).collect();
    assert_eq!(classes, ["m"], "{rows:#?}");
}

#[test]
fn a_join_of_a_task_is_a_join_deadlock_too() {
    // What `lockcheck::tokio` writes for a task's end since it is a lock of kind `End`.
    let events = with_end(
        trace(true, false),
        "end of task spawned at a.rs:1:1",
        LockKind::End,
    );
    let r = analyze(&events);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(
        report::title(&r.violations[0]),
        "join deadlock: main joins T2 (end of task spawned at a.rs:1:1) at a.rs:3:3 while \
         holding m; T2 takes m at a.rs:2:2 (instance level)"
    );
    let rows = lockcheck_analyze::timeouts::suggest(&model(&events));
    assert!(rows.iter().all(|r| r.class == "m"), "{rows:#?}");
}

#[test]
fn an_older_trace_with_a_task_end_written_as_a_once_analyzes_as_before() {
    // Before a task's end was of kind `End`, lockcheck::tokio wrote it as a `Once` named
    // `task spawned at ...`: still the same cycle, titled a plain inversion, as it was.
    let events = with_end(
        trace(true, false),
        "task spawned at a.rs:1:1",
        LockKind::Once,
    );
    let r = analyze(&events);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    let v = &r.violations[0];
    assert_eq!(v.kind, "lock-order-inversion");
    assert_eq!(
        report::title(v),
        "lock-order inversion between m, task spawned at a.rs:1:1 (instance level)"
    );
    // A thread's end under its older name (kind `end`, `thread spawned at ...`): a join deadlock.
    let old = with_end(
        trace(true, false),
        "thread spawned at a.rs:1:1",
        LockKind::End,
    );
    assert!(report::title(&analyze(&old).violations[0])
        .starts_with("join deadlock: main joins T2 (thread spawned at a.rs:1:1)"));
}
