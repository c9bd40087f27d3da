//! A scope's implicit join and thread-local destructors (`docs/trace-format.md`, `join`'s
//! `scope` and `returned`): a scope's join waits for the thread's closure, not for its
//! thread-local destructors (rust-lang/rust#116179), so what the thread does after its
//! `returned` event is not ordered before what follows the scope, while an explicit join (or a
//! trace without `returned`) orders all of it.

use lockcheck_analyze::model::ModelBuilder;
use lockcheck_analyze::{analyze_model, report, Options};
use lockcheck_core::trace::{Event, How, LockKind, Mode, FORMAT_VERSION};

fn acq(t: u64, l: u64, s: u32) -> Event {
    Event::Acquire {
        t,
        l,
        m: Mode::Exclusive,
        how: How::Blocking,
        s: Some(s),
        wait_ns: 0,
    }
}

fn rel(t: u64, l: u64) -> Event {
    Event::Release { t, l, hold_ns: 0 }
}

/// Where thread 2 takes `a` then `b`: in its closure, or after it returned (a thread-local
/// destructor), and whether the trace says `returned` at all (writers before the event did not).
#[derive(Clone, Copy, PartialEq)]
enum Nested {
    InClosure,
    AfterReturned,
    NoReturnedEvent,
}

/// Thread 1 forks thread 2, which takes `a` (lock 1) then `b` (lock 2), as `nested` says;
/// thread 1 joins it (`scope`: the scope's implicit join), then takes `b` then `a`. Thread 2's
/// events all come before the join in the file, as they do when its stream is flushed first.
fn trace(nested: Nested, scope: bool) -> Vec<Event> {
    let mut e = vec![Event::Header {
        version: FORMAT_VERSION,
        pid: 1,
        program: "p".into(),
        start_unix_ms: 0,
        hold_resolution_ns: 0,
    }];
    for (c, key) in [(1, "a"), (2, "b")] {
        e.push(Event::Class {
            c,
            key: key.into(),
            kind: LockKind::Mutex,
        });
        e.push(Event::Lock {
            l: u64::from(c),
            c,
            permits: None,
        });
    }
    for s in 1..=4 {
        e.push(Event::Site {
            s,
            loc: format!("a.rs:{s}:1"),
            frames: vec![],
        });
    }
    e.push(Event::Fork { t: 1, child: 2 });
    if nested == Nested::AfterReturned {
        e.push(Event::Returned { t: 2 });
    }
    e.extend([acq(2, 1, 1), acq(2, 2, 2), rel(2, 2), rel(2, 1)]);
    if nested == Nested::InClosure {
        e.push(Event::Returned { t: 2 });
    }
    e.push(Event::Join {
        t: 1,
        child: 2,
        scope,
    });
    e.extend([acq(1, 2, 3), acq(1, 1, 4), rel(1, 1), rel(1, 2)]);
    e
}

fn analyze(events: &[Event]) -> report::Report {
    let mut b = ModelBuilder::new();
    b.begin_trace("t");
    for e in events {
        b.event(e);
    }
    b.end_trace();
    analyze_model(&b.finish(), &Options::default())
}

#[test]
fn a_destructor_after_returned_is_not_ordered_before_a_scopes_join() {
    let r = analyze(&trace(Nested::AfterReturned, true));
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    let v = &r.violations[0];
    assert_eq!(v.kind, "lock-order-inversion");
    let mut names: Vec<&str> = v.locks.iter().map(|l| l.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "b"], "{v:#?}");
}

/// The trace's one cycle is ordered by the join: no violation, one candidate filtered as
/// `fork-join`.
fn assert_ordered_by_the_join(nested: Nested, scope: bool) {
    let r = analyze(&trace(nested, scope));
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert_eq!(r.filtered.len(), 1, "{:#?}", r.filtered);
    assert_eq!(r.filtered[0].filter, "fork-join");
}

#[test]
fn an_explicit_join_orders_what_followed_returned() {
    assert_ordered_by_the_join(Nested::AfterReturned, false);
}

#[test]
fn a_scopes_join_orders_what_came_before_returned() {
    assert_ordered_by_the_join(Nested::InClosure, true);
}

#[test]
fn a_scopes_join_without_returned_orders_everything_as_before() {
    assert_ordered_by_the_join(Nested::NoReturnedEvent, true);
}
