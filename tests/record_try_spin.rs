//! A spinning `try_lock` under recording does not flood the trace: failures in a row of one try
//! (same thread, lock, mode, site, nothing else of the thread in between) are written as a few
//! `fail` events with a count (`n`), in every format the recorder writes (JSON Lines, `.lct`
//! version 4, `.lct` version 2), and read back as the failures they stand for, in their place
//! among the thread's other events.

#[path = "support/trace_file.rs"]
mod trace_file;
use lockcheck::Mutex;
use lockcheck_core::trace::Event;
use std::sync::mpsc;
use std::sync::Arc;
use trace_file::{events, findings_involving, lock_of, tmp};

/// Failures of the long spin.
const SPIN: u32 = 1_000_000;

/// Holds `m` on another thread until the returned sender is dropped.
fn hold(m: Arc<Mutex<u32>>) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (held_tx, held_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        let _g = m.lock();
        held_tx.send(()).unwrap();
        let _ = go_rx.recv();
    });
    held_rx.recv().unwrap();
    (go_tx, h)
}

/// What the spinning thread does, on its own thread: `SPIN` failed tries of `b` holding `a`,
/// then `a` released and taken again, 5 more failures, then a success (after the holder let
/// go), all at one site per loop. Then another thread takes `b` and `a`: the order the spin's
/// retry rule made (`a` before `b`, at the 1000th failure) makes it an inversion.
fn program(prefix: &str) {
    let a = Arc::new(Mutex::named(format!("{prefix}.a").leak(), 0));
    let b = Arc::new(Mutex::named(format!("{prefix}.b").leak(), 0));
    let (a2, b2) = (a.clone(), b.clone());
    let (go, holder) = hold(b.clone());
    std::thread::spawn(move || {
        let x = a.lock();
        for _ in 0..SPIN {
            assert!(b.try_lock().is_none());
        }
        drop(x);
        let _x = a.lock();
        for _ in 0..5 {
            assert!(b.try_lock().is_none());
        }
        drop(go);
        holder.join().unwrap();
        assert!(b.try_lock().is_some());
    })
    .join()
    .unwrap();
    std::thread::spawn(move || {
        let _y = b2.lock();
        let _x = a2.lock();
    })
    .join()
    .unwrap();
}

/// The spinning thread's events on `a` and `b`, failures in a row merged: ('f', failures,
/// records) for a run of `fail` events, ('a' / 'r', lock index, 1) for an acquisition / release.
fn runs(ev: &[Event], a: u64, b: u64) -> Vec<(char, u64, usize)> {
    let spinner = ev
        .iter()
        .find_map(|e| match e {
            Event::Fail { t, .. } => Some(*t),
            _ => None,
        })
        .expect("a fail event");
    let mut out: Vec<(char, u64, usize)> = Vec::new();
    for e in ev {
        match *e {
            Event::Fail { t, l, n, .. } if t == spinner && l == b => match out.last_mut() {
                Some(('f', count, records)) => {
                    *count += u64::from(n);
                    *records += 1;
                }
                _ => out.push(('f', u64::from(n), 1)),
            },
            Event::Acquire { t, l, .. } if t == spinner && (l == a || l == b) => {
                out.push(('a', u64::from(l == b), 1))
            }
            Event::Release { t, l, .. } if t == spinner && (l == a || l == b) => {
                out.push(('r', u64::from(l == b), 1))
            }
            _ => {}
        }
    }
    out
}

fn check(path: &std::path::Path, prefix: &str) {
    let size = std::fs::metadata(path).unwrap().len();
    let ev = events(path);
    let (a, b) = (
        lock_of(&ev, &format!("{prefix}.a")),
        lock_of(&ev, &format!("{prefix}.b")),
    );
    let runs = runs(&ev, a, b);
    let shape: Vec<(char, u64)> = runs.iter().map(|&(k, x, _)| (k, x)).collect();
    assert_eq!(
        shape,
        [
            ('a', 0),
            ('f', u64::from(SPIN)),
            ('r', 0),
            ('a', 0),
            ('f', 5),
            ('a', 1),
            ('r', 1),
            ('r', 0),
        ],
        "{}",
        path.display()
    );
    // A few records for a million failures (about a dozen: the first, the one that reaches
    // the retry rule's count, then one each time the streak doubles, and the last).
    let records = runs[1].2;
    eprintln!("{}: {records} fail records, {size} bytes", path.display());
    assert!(
        records <= 20,
        "{records} fail records for {SPIN} failures in {}",
        path.display()
    );
    assert!(size < 64 << 10, "{} is {size} bytes", path.display());
}

/// One recording per format, in sequence (one process).
#[test]
fn a_spin_of_a_million_failures_writes_a_few_records() {
    lockcheck::set_action(lockcheck::Action::Warn);
    let json = tmp("spin.json");
    lockcheck::record::start(&json).unwrap();
    program("spinj");
    lockcheck::record::stop().unwrap().expect("was recording");
    check(&json, "spinj");

    let lct = tmp("spin.lct");
    lockcheck::record::start(&lct).unwrap();
    program("spinl");
    lockcheck::record::stop().unwrap().expect("was recording");
    assert!(std::fs::read(&lct).unwrap().starts_with(b"LCT\x05"));
    check(&lct, "spinl");

    let v2 = tmp("spin.v2.lct");
    std::env::set_var("LOCKCHECK_TRACE_FORMAT", "lct2");
    lockcheck::record::start(&v2).unwrap();
    std::env::remove_var("LOCKCHECK_TRACE_FORMAT");
    program("spin2");
    lockcheck::record::stop().unwrap().expect("was recording");
    assert!(std::fs::read(&v2).unwrap().starts_with(b"LCT\x02"));
    check(&v2, "spin2");

    // A streak still open when its own thread stops the recording is written whole.
    let stopped = tmp("stop.json");
    lockcheck::record::start(&stopped).unwrap();
    let m = Arc::new(Mutex::named("spins.m", 0));
    let (go, holder) = hold(m.clone());
    for _ in 0..3000 {
        assert!(m.try_lock().is_none());
    }
    lockcheck::record::stop().unwrap().expect("was recording");
    drop(go);
    holder.join().unwrap();
    let ev = events(&stopped);
    let l = lock_of(&ev, "spins.m");
    let failures: u64 = ev
        .iter()
        .map(|e| match *e {
            Event::Fail { l: fl, n, .. } if fl == l => u64::from(n),
            _ => 0,
        })
        .sum();
    assert_eq!(failures, 3000, "{}", stopped.display());

    // The streak reached the retry rule: the analyzer orders `a` before `b` from the trace as
    // the runtime did (at the 1000th failure holding `a`), so `b` then `a` is an inversion,
    // for each format.
    for (path, prefix) in [(&json, "spinj"), (&lct, "spinl"), (&v2, "spin2")] {
        let found = findings_involving(path, &format!("{prefix}.a"));
        assert!(
            found.iter().any(|(kind, _)| kind == "lock-order-inversion"),
            "{found:?} in {}",
            path.display()
        );
    }
}

/// A process that dies in a spin (here it aborts while a thread is still failing, with no
/// report and no other event of that thread to publish its streak) leaves the streak's failures
/// up to the retry rule's in the trace, so that the analysis of the trace still orders the held
/// lock before the spun one.
#[test]
fn a_spin_cut_by_an_abort_keeps_its_first_thousand_failures() {
    const FAILS: u32 = 5000;
    if std::env::var_os("LOCKCHECK_SPIN_CHILD").is_some() {
        let a = Arc::new(Mutex::named("crash.a", 0));
        let b = Arc::new(Mutex::named("crash.b", 0));
        let (_go, _holder) = hold(b.clone());
        let (spun_tx, spun_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _x = a.lock();
            for _ in 0..FAILS {
                assert!(b.try_lock().is_none());
            }
            spun_tx.send(()).unwrap();
            // Still in the streak (no other event of this thread) when the process dies.
            std::thread::park();
        });
        spun_rx.recv().unwrap();
        // The writer's periodic flush (every 50 ms) writes what was published: wait until the
        // trace has a counted `fail` (the first pass symbolizes the sites' backtraces, which
        // takes a while in a debug build), and for a few more passes.
        let path = std::env::var_os("LOCKCHECK_TRACE").unwrap();
        let start = std::time::Instant::now();
        while !std::fs::read_to_string(&path)
            .unwrap_or_default()
            .contains(",\"n\":")
            && start.elapsed() < std::time::Duration::from_secs(30)
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::process::abort();
    }
    let trace = tmp("crash.json");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_spin_cut_by_an_abort_keeps_its_first_thousand_failures",
            "--test-threads=1",
        ])
        .env("LOCKCHECK_SPIN_CHILD", "1")
        .env("LOCKCHECK_TRACE", &*trace)
        .env("LOCKCHECK", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child aborts: {out:?}");
    let ev = events(&trace);
    let b = lock_of(&ev, "crash.b");
    let failures: u64 = ev
        .iter()
        .map(|e| match *e {
            Event::Fail { l, n, .. } if l == b => u64::from(n),
            _ => 0,
        })
        .sum();
    assert!(
        (u64::from(lockcheck_core::trace::TRY_RETRIES)..=u64::from(FAILS)).contains(&failures),
        "{failures} failures of {FAILS} in {}",
        trace.display()
    );
}
