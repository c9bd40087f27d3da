//! Properties of the offline analysis (proptest):
//!
//! - its findings do not depend on how the threads' events interleave in the trace, as long as
//!   each thread's own order is kept (no fork/join: every thread is concurrent with every other);
//! - a trace whose every thread acquires in one global order never has a violation;
//! - an inversion injected across two threads (no common gate lock, blocking, exclusive) is
//!   always found.
//!
//! The incremental cycle detector's agreement with petgraph is checked where it lives
//! (`crates/lockcheck-core/src/order.rs`, `agrees_with_petgraph`). Regression cases found by the
//! fuzzers (`fuzz/`) are at the end of this file.

use lockcheck_analyze::model::ModelBuilder;
use lockcheck_analyze::report::Report;
use lockcheck_analyze::{analyze_model, Options};
use lockcheck_core::trace::{Event, How, LockKind, Mode, FORMAT_VERSION};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// One critical section of a thread: locks acquired in this order, released in `release` order.
#[derive(Debug, Clone)]
struct Section {
    locks: Vec<(u64, Mode)>,
    /// A permutation seed for the release order (0: LIFO).
    release: u64,
}

type Program = Vec<Section>;

/// The events of one thread's program, in its own order.
fn thread_events(t: u64, program: &Program) -> Vec<Event> {
    let mut out = Vec::new();
    for sec in program {
        for &(l, m) in &sec.locks {
            out.push(Event::Acquire {
                t,
                l,
                m,
                how: How::Blocking,
                s: None,
                wait_ns: 0,
            });
        }
        let mut order: Vec<u64> = sec.locks.iter().rev().map(|&(l, _)| l).collect();
        if sec.release != 0 && order.len() > 1 {
            let k = (sec.release as usize) % order.len();
            order.rotate_left(k);
        }
        for l in order {
            out.push(Event::Release { t, l, hold_ns: 0 });
        }
    }
    out
}

/// Declarations: a header, one class per `class_of(lock)`, then the locks.
fn declarations(locks: u64, class_of: fn(u64) -> u64, kind: LockKind) -> Vec<Event> {
    let mut out = vec![Event::Header {
        version: FORMAT_VERSION,
        pid: 1,
        program: "props".into(),
        start_unix_ms: 0,
        hold_resolution_ns: 0,
    }];
    let mut classes: Vec<u64> = (1..=locks).map(class_of).collect();
    classes.sort_unstable();
    classes.dedup();
    for c in classes {
        out.push(Event::Class {
            c: c as u32,
            key: format!("class{c}"),
            kind,
        });
    }
    for l in 1..=locks {
        out.push(Event::Lock {
            l,
            c: class_of(l) as u32,
            permits: None,
        });
    }
    out
}

/// Merges per-thread event lists following `schedule` (thread choices, taken modulo the threads
/// that still have events), keeping each thread's order.
fn interleave(per_thread: &[Vec<Event>], schedule: &[usize]) -> Vec<Event> {
    let mut next = vec![0usize; per_thread.len()];
    let mut out = Vec::new();
    let mut s = schedule.iter().cycle();
    loop {
        let live: Vec<usize> = (0..per_thread.len())
            .filter(|&i| next[i] < per_thread[i].len())
            .collect();
        if live.is_empty() {
            return out;
        }
        let pick = live[s.next().copied().unwrap_or(0) % live.len()];
        out.push(per_thread[pick][next[pick]].clone());
        next[pick] += 1;
    }
}

fn analyze(events: &[Event]) -> Report {
    let mut b = ModelBuilder::new();
    b.begin_trace("props.json");
    for e in events {
        b.event(e);
    }
    analyze_model(&b.finish(), &Options::default())
}

/// Violations by (level, sorted lock names), and filtered candidates by filter, with counts.
type Findings = (
    BTreeMap<(String, Vec<String>), usize>,
    BTreeMap<String, usize>,
);

/// What must not depend on the interleaving: violations by level and sorted lock names, and
/// filtered candidates by filter, level and lock names.
fn findings(r: &Report) -> Findings {
    let mut v = BTreeMap::new();
    for x in &r.violations {
        let mut names: Vec<String> = x.locks.iter().map(|l| l.name.clone()).collect();
        names.sort();
        *v.entry((x.level.clone(), names)).or_insert(0) += 1;
    }
    let mut f = BTreeMap::new();
    for x in &r.filtered {
        *f.entry(x.filter.clone()).or_insert(0) += 1;
    }
    (v, f)
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        4 => Just(Mode::Exclusive),
        2 => Just(Mode::Shared),
        1 => Just(Mode::SharedRecursive),
        1 => Just(Mode::Upgradable),
    ]
}

/// A section over distinct locks from 1..=locks, in any order.
fn section(locks: u64) -> impl Strategy<Value = Section> {
    (
        prop::sample::subsequence(
            (1..=locks).collect::<Vec<u64>>(),
            1..=(locks as usize).min(4),
        )
        .prop_shuffle(),
        prop::collection::vec(mode(), 4),
        0u64..4,
    )
        .prop_map(|(ls, modes, release)| Section {
            locks: ls.into_iter().zip(modes.into_iter().cycle()).collect(),
            release,
        })
}

/// A section acquiring in increasing lock order (the global order).
fn ordered_section(locks: u64) -> impl Strategy<Value = Section> {
    section(locks).prop_map(|mut s| {
        s.locks.sort_by_key(|&(l, _)| l);
        s
    })
}

fn programs(sec: BoxedStrategy<Section>) -> impl Strategy<Value = Vec<Program>> {
    prop::collection::vec(prop::collection::vec(sec, 1..5), 2..5)
}

fn class_per_lock(l: u64) -> u64 {
    l
}

/// Two consecutive locks per class: same-class pairs and a monotone class order.
fn class_per_pair(l: u64) -> u64 {
    l.div_ceil(2)
}

fn schedule() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..8, 1..64)
}

const LOCKS: u64 = 6;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn findings_do_not_depend_on_the_interleaving(
        progs in programs(section(LOCKS).boxed()),
        pair in any::<bool>(),
        a in schedule(),
        b in schedule(),
    ) {
        let class_of = if pair { class_per_pair } else { class_per_lock };
        let per_thread: Vec<Vec<Event>> = progs
            .iter()
            .enumerate()
            .map(|(i, p)| thread_events(i as u64 + 1, p))
            .collect();
        let decl = declarations(LOCKS, class_of, LockKind::Rwlock);
        let first = [decl.clone(), interleave(&per_thread, &a)].concat();
        let second = [decl, interleave(&per_thread, &b)].concat();
        let (r1, r2) = (analyze(&first), analyze(&second));
        prop_assert_eq!(r1.violations.len(), r2.violations.len());
        prop_assert_eq!(findings(&r1), findings(&r2));
    }

    #[test]
    fn one_global_order_is_never_a_violation(
        progs in programs(ordered_section(LOCKS).boxed()),
        pair in any::<bool>(),
        a in schedule(),
    ) {
        let class_of = if pair { class_per_pair } else { class_per_lock };
        let per_thread: Vec<Vec<Event>> = progs
            .iter()
            .enumerate()
            .map(|(i, p)| thread_events(i as u64 + 1, p))
            .collect();
        let events = [declarations(LOCKS, class_of, LockKind::Mutex), interleave(&per_thread, &a)].concat();
        let r = analyze(&events);
        prop_assert!(r.violations.is_empty(), "violations: {:#?}", r.violations);
    }

    #[test]
    fn an_inversion_across_two_threads_is_always_found(
        progs in programs(ordered_section(LOCKS).boxed()),
        (x, y) in (1..=LOCKS, 1..=LOCKS).prop_filter("two locks", |(x, y)| x != y),
        at in any::<prop::sample::Index>(),
        a in schedule(),
    ) {
        let (lo, hi) = (x.min(y), x.max(y));
        let mut progs = progs;
        // Thread 0 takes lo then hi (the global order); thread 1 takes hi then lo.
        let n = progs[0].len();
        progs[0].insert(at.index(n + 1), Section { locks: vec![(lo, Mode::Exclusive), (hi, Mode::Exclusive)], release: 0 });
        let n = progs[1].len();
        progs[1].insert(at.index(n + 1), Section { locks: vec![(hi, Mode::Exclusive), (lo, Mode::Exclusive)], release: 0 });
        let per_thread: Vec<Vec<Event>> = progs
            .iter()
            .enumerate()
            .map(|(i, p)| thread_events(i as u64 + 1, p))
            .collect();
        let events = [declarations(LOCKS, class_per_lock, LockKind::Mutex), interleave(&per_thread, &a)].concat();
        let r = analyze(&events);
        let want = [format!("class{lo}"), format!("class{hi}")];
        let found = r.violations.iter().any(|v| {
            want.iter().all(|w| v.locks.iter().any(|l| &l.class == w))
        });
        prop_assert!(found, "no violation over {:?}: {:#?}", want, r.violations);
    }
}
