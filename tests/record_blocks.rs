//! The recorder's per-thread blocks: threads that make events much faster than the writer turns
//! them into text lose none (the writer's backlog is bounded, and a thread that fills a block while
//! it is full drains it itself), each thread's events stay in order, hold times come from the
//! recorder's own clock, and a restarted recording is complete on its own. Both formats.

mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::checked::Mutex;
use lockcheck_core::trace::Event;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use trace_file::{events, tmp};

/// What a thread's stream says, in order, for the locks given: `a`/`b` acquired (`+`), requested
/// (`?`) or released (`-`).
fn stream(ev: &[Event], t: u64, names: &HashMap<u64, char>) -> String {
    let mut s = String::new();
    for e in ev {
        let (tt, l, op) = match e {
            Event::Acquire { t, l, .. } => (*t, *l, '+'),
            Event::Request { t, l, .. } => (*t, *l, '?'),
            Event::Release { t, l, .. } => (*t, *l, '-'),
            _ => continue,
        };
        if tt == t {
            if let Some(n) = names.get(&l) {
                s.push(op);
                s.push(*n);
            }
        }
    }
    s
}

/// Lock numbers of the classes `prefix.a` and `prefix.b`, as `a` and `b`.
fn lock_names(ev: &[Event], prefix: &str) -> HashMap<u64, char> {
    let mut classes = HashMap::new();
    for e in ev {
        if let Event::Class { c, key, .. } = e {
            if let Some(n) = key.strip_prefix(prefix) {
                classes.insert(*c, n.chars().next().unwrap());
            }
        }
    }
    let mut out = HashMap::new();
    for e in ev {
        if let Event::Lock { l, c, .. } = e {
            if let Some(n) = classes.get(c) {
                out.insert(*l, *n);
            }
        }
    }
    out
}

/// Threads each take their own pair `N` times: far more records than the writer's backlog holds
/// (64 blocks of 1024 records), so the threads outrun the writer and must wait for it or do its
/// work; every event is in the trace, in each thread's order, declared before use.
fn many_threads_lose_nothing(path: &Path) {
    const THREADS: usize = 4;
    const N: usize = 25_000;
    lockcheck::record::start(path).unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let t = std::thread::Builder::new().name(format!("blocks-{i}"));
            t.spawn(move || {
                let name = |n: &str| -> &'static str {
                    Box::leak(format!("blocks{i}.{n}").into_boxed_str())
                };
                let a = Mutex::named(name("a"), 0u64);
                let b = Mutex::named(name("b"), 0u64);
                for _ in 0..N {
                    let _a = a.lock();
                    *b.lock() += 1;
                }
            })
            .unwrap()
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let written = lockcheck::record::stop().unwrap().unwrap();
    let ev = events(&written);
    for i in 0..THREADS {
        let want = format!("blocks-{i}");
        let t = ev
            .iter()
            .find_map(|e| match e {
                Event::Thread { t, name } if name.as_deref() == Some(want.as_str()) => Some(t),
                _ => None,
            })
            .unwrap_or_else(|| panic!("thread {want} declared"));
        let names = lock_names(&ev, &format!("blocks{i}."));
        assert_eq!(names.len(), 2, "both locks declared");
        let s = stream(&ev, *t, &names);
        assert_eq!(s.len(), N * 10, "thread {i}: every event recorded");
        assert!(s == "+a?b+b-b-a".repeat(N), "thread {i}: events in order");
    }
    // Declarations precede uses, across the interleaved streams.
    let (mut locks, mut threads) = (vec![], vec![]);
    for e in &ev {
        match e {
            Event::Lock { l, .. } => locks.push(*l),
            Event::Thread { t, .. } => threads.push(*t),
            Event::Acquire { t, l, .. } | Event::Release { t, l, .. } => {
                assert!(threads.contains(t) && locks.contains(l), "{e:?}");
            }
            _ => {}
        }
    }
}

/// A hold of about 30 ms is recorded as about 30 ms (the recorder's clock, converted by the
/// writer), and a short one as far less.
fn hold_times_are_measured(path: &Path) {
    lockcheck::record::start(path).unwrap();
    let m = Mutex::named("blocks.hold", 0u64);
    {
        let _g = m.lock();
        std::thread::sleep(Duration::from_millis(30));
    }
    drop(m.lock());
    let written = lockcheck::record::stop().unwrap().unwrap();
    let ev = events(&written);
    let holds: Vec<u64> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Release { hold_ns, .. } => Some(*hold_ns),
            _ => None,
        })
        .collect();
    assert_eq!(holds.len(), 2, "{ev:#?}");
    assert!(
        (25_000_000..2_000_000_000).contains(&holds[0]),
        "a 30 ms hold: {} ns",
        holds[0]
    );
    assert!(holds[1] < 25_000_000, "a short hold: {} ns", holds[1]);
    let stats = ev.iter().find_map(|e| match e {
        Event::Stats { stats, .. } => Some(stats.clone()),
        _ => None,
    });
    let stats = stats.expect("statistics at the end");
    assert_eq!(stats.acquisitions, 2);
    assert_eq!(stats.hold_max_ns, holds[0]);
}

/// A second recording in the same process (threads that recorded into the first one keep going)
/// declares everything again: each trace analyzes on its own.
fn a_restarted_recording_is_complete(first: &Path, second: &Path) {
    let a = Arc::new(Mutex::named("blocks.restart.a", 0u64));
    let b = Arc::new(Mutex::named("blocks.restart.b", 0u64));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (a2, b2) = (a.clone(), b.clone());
    // A thread that records into both recordings.
    let worker = std::thread::spawn(move || {
        for _ in rx {
            let _a = a2.lock();
            *b2.lock() += 1;
            done_tx.send(()).unwrap();
        }
    });
    for path in [first, second] {
        lockcheck::record::start(path).unwrap();
        tx.send(()).unwrap();
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("must not hang");
        let written = lockcheck::record::stop().unwrap().unwrap();
        let ev = events(&written);
        let names = lock_names(&ev, "blocks.restart.");
        assert_eq!(names.len(), 2, "{ev:#?}");
        assert!(ev.iter().any(|e| matches!(e, Event::Thread { .. })));
        assert!(ev.iter().any(|e| matches!(e, Event::Site { .. })));
        let acquires = ev
            .iter()
            .filter(|e| matches!(e, Event::Acquire { .. }))
            .count();
        assert_eq!(acquires, 2, "{ev:#?}");
    }
    drop(tx);
    worker.join().unwrap();
}

/// One recording at a time in this process: the steps run in sequence.
#[test]
fn blocks_keep_every_event_in_order() {
    lockcheck::set_action(lockcheck::Action::Panic);
    support::watchdog(300, || {
        for ext in ["json", "lct"] {
            many_threads_lose_nothing(&tmp(&format!("many.{ext}")));
            hold_times_are_measured(&tmp(&format!("hold.{ext}")));
            a_restarted_recording_is_complete(
                &tmp(&format!("first.{ext}")),
                &tmp(&format!("second.{ext}")),
            );
        }
    })
    .unwrap();
}
