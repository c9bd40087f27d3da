//! A lock already held when a recording starts (`lockcheck::record::start` mid-run, or a
//! restart): the trace shows it held (a `try` acquisition, which makes no dependency of its own,
//! at the holder's first event of the recording) and released, so that a dependency from that
//! hold, which the runtime checks, is in the trace too: whatever the runtime reports, `analyze`
//! of the trace reports, in JSON Lines and in `.lct`. The look-alikes (the hold released before
//! the other lock is taken) stay silent on both sides: the shown hold ends where it ended.
//!
//! Its own process: recording, the action and `violations()` are process-wide, so the tests run
//! one at a time. An inversion is reported once per pair of source lines, so a scenario run
//! again for the second format is checked offline only (the runtime's side was checked on the
//! first run, from the same lines).

#[path = "support/rt.rs"]
mod rt;
mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::{Action, Mutex};
use std::sync::{mpsc, Arc};
use trace_file::findings_involving as offline;

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The trace formats, by the file's extension.
const FORMATS: [&str; 2] = ["json", "lct"];

fn name(base: &str, ext: &str) -> &'static str {
    Box::leak(format!("held_at_start.{base}.{ext}").into_boxed_str())
}

/// Thread 1 takes `a`; while it holds it the recording starts (`path`); then, with `a` still
/// held (`nested`) or after releasing it, it takes `c` and then `b`; thread 2 (concurrent for
/// lockcheck) takes `b` then `a`. Returns the trace written, and the names of `a`.
fn sync_scenario(base: &str, ext: &str, nested: bool) -> (trace_file::ScratchFile, &'static str) {
    lockcheck::set_action(Action::Warn);
    let path = trace_file::tmp(&format!("{base}.{ext}"));
    let (na, nb, nc) = (
        name(&format!("{base}.a"), ext),
        name(&format!("{base}.b"), ext),
        name(&format!("{base}.c"), ext),
    );
    let a = Arc::new(Mutex::named(na, 0));
    let b = Arc::new(Mutex::named(nb, 0));
    let c = Arc::new(Mutex::named(nc, 0));
    let (a1, b1) = (a.clone(), b.clone());
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let recording = path.to_path_buf();
    let starter = std::thread::spawn(move || {
        held_rx.recv().unwrap();
        lockcheck::record::start(&recording).unwrap();
        go_tx.send(()).unwrap();
    });
    let (r1, r2) = support::two_threads(
        move || {
            let ga = a1.lock();
            held_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            // Another lock under `a` first: the thread's first event of the recording is
            // `c`'s, and `a` must then stay shown held (or released) as it really is.
            *c.lock() += 1;
            if nested {
                *b1.lock() += 1;
                drop(ga);
            } else {
                drop(ga);
                *b1.lock() += 1;
            }
        },
        move || {
            let _gb = b.lock();
            let _ga = a.lock();
        },
    );
    starter.join().unwrap();
    r1.unwrap();
    r2.unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    assert_eq!(written, *path);
    (path, na)
}

/// `a -> b` taken with `a` held since before the recording started, `b -> a` after: the runtime
/// reports the inversion, and the analyzer finds it in the trace.
#[test]
fn a_dependency_from_a_lock_held_when_the_recording_started_is_found_offline() {
    let _serial = serial();
    for (i, ext) in FORMATS.into_iter().enumerate() {
        let (written, a) = sync_scenario("sync", ext, true);
        if i == 0 {
            let runtime = support::inversions(a);
            assert!(!runtime.is_empty(), "the runtime reports the inversion");
        }
        let found = offline(&written, a);
        assert!(
            found.iter().any(|(k, _)| k.contains("inversion")),
            "{ext}: the runtime reported the inversion, the trace shows none: {found:?}"
        );
    }
}

/// The same, with `a` released before `b` is taken: no dependency `a -> b`, silent on both sides
/// (the trace shows `a`'s release, so `a` is not held in it when `b` is taken).
#[test]
fn a_lock_held_when_the_recording_started_and_released_before_is_silent_offline() {
    let _serial = serial();
    for ext in FORMATS {
        let (written, a) = sync_scenario("sync_released", ext, false);
        let runtime = support::found(a);
        assert!(runtime.is_empty(), "runtime: {runtime:#?}");
        let found = offline(&written, a);
        assert!(found.is_empty(), "{ext}: offline: {found:?}");
    }
}

/// A lock taken while one recording runs and still held when it is stopped and another starts:
/// the second trace shows it held too.
#[test]
fn a_lock_held_across_a_restarted_recording_is_in_the_new_trace() {
    let _serial = serial();
    lockcheck::set_action(Action::Warn);
    let first = trace_file::tmp("restart.first.json");
    let second = trace_file::tmp("restart.second.json");
    let a = Arc::new(Mutex::named("held_at_start.restart.a", 0));
    let b = Arc::new(Mutex::named("held_at_start.restart.b", 0));
    let (a1, b1) = (a.clone(), b.clone());
    lockcheck::record::start(&first).unwrap();
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let restart = second.to_path_buf();
    let starter = std::thread::spawn(move || {
        held_rx.recv().unwrap();
        lockcheck::record::stop().unwrap();
        lockcheck::record::start(&restart).unwrap();
        go_tx.send(()).unwrap();
    });
    let (r1, r2) = support::two_threads(
        move || {
            let _ga = a1.lock();
            held_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            *b1.lock() += 1;
        },
        move || {
            let _gb = b.lock();
            let _ga = a.lock();
        },
    );
    starter.join().unwrap();
    r1.unwrap();
    r2.unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    let runtime = support::inversions("held_at_start.restart.a");
    assert!(!runtime.is_empty(), "the runtime reports the inversion");
    let found = offline(&written, "held_at_start.restart.a");
    assert!(
        found.iter().any(|(k, _)| k.contains("inversion")),
        "the runtime reported the inversion, the second trace shows none: {found:?}"
    );
}

/// Task 1 holds the tokio lock `x` when the recording starts, then takes `z` and `y` under it
/// (`nested`) or after releasing it; task 2 then takes `y` and `x`. Returns the trace and `x`'s
/// name.
fn async_scenario(base: &str, ext: &str, nested: bool) -> (trace_file::ScratchFile, &'static str) {
    lockcheck::set_action(Action::Warn);
    let path = trace_file::tmp(&format!("{base}.{ext}"));
    let (nx, ny, nz) = (
        name(&format!("{base}.x"), ext),
        name(&format!("{base}.y"), ext),
        name(&format!("{base}.z"), ext),
    );
    let recording = path.to_path_buf();
    rt::run(rt::Flavor::CurrentThread, move || async move {
        let x = Arc::new(lockcheck::tokio::Mutex::named(nx, 0));
        let y = Arc::new(lockcheck::tokio::Mutex::named(ny, 0));
        let z = Arc::new(lockcheck::tokio::Mutex::named(nz, 0));
        let (x1, y1) = (x.clone(), y.clone());
        let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let first = tokio::spawn(async move {
            let gx = x1.lock().await;
            let _ = held_tx.send(());
            let _ = go_rx.await;
            *z.lock().await += 1;
            if nested {
                *y1.lock().await += 1;
                drop(gx);
            } else {
                drop(gx);
                *y1.lock().await += 1;
            }
        });
        held_rx.await.unwrap();
        lockcheck::record::start(&recording).unwrap();
        go_tx.send(()).unwrap();
        first.await.unwrap();
        tokio::spawn(async move {
            let _gy = y.lock().await;
            let _gx = x.lock().await;
        })
        .await
        .unwrap();
    })
    .unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    assert_eq!(written, *path);
    (path, nx)
}

/// A task holding a tokio lock when the recording starts, taking another under it: the runtime
/// reports the inversion a later task makes, and the analyzer finds it in the trace.
#[test]
fn a_dependency_from_a_tokio_lock_held_when_the_recording_started_is_found_offline() {
    let _serial = serial();
    for (i, ext) in FORMATS.into_iter().enumerate() {
        let (written, x) = async_scenario("async", ext, true);
        if i == 0 {
            let runtime = support::inversions(x);
            assert!(!runtime.is_empty(), "the runtime reports the inversion");
        }
        let found = offline(&written, x);
        assert!(
            found.iter().any(|(k, _)| k.contains("inversion")),
            "{ext}: the runtime reported the inversion, the trace shows none: {found:?}"
        );
    }
}

/// The same with the tokio lock released before the other is taken: silent on both sides.
#[test]
fn a_tokio_lock_held_when_the_recording_started_and_released_before_is_silent_offline() {
    let _serial = serial();
    for ext in FORMATS {
        let (written, x) = async_scenario("async_released", ext, false);
        let runtime = support::found(x);
        assert!(runtime.is_empty(), "runtime: {runtime:#?}");
        let found = offline(&written, x);
        assert!(found.is_empty(), "{ext}: offline: {found:?}");
    }
}

/// More locks held at the start than a recording block holds (1,024 records): all shown, in
/// order, across the blocks, then the lock taken under them and every release; the trace reads
/// and the analyzer finds nothing (one thread, one order). Checking is off for `last` (the
/// runtime's check of one acquisition under 1,100 held locks takes seconds in a debug build).
#[test]
fn more_held_locks_than_a_block_holds_are_all_shown() {
    use lockcheck_core::trace::{Event, How};
    let _serial = serial();
    lockcheck::set_action(Action::Warn);
    const HELD: usize = 1_100;
    let path = trace_file::tmp("many.lct");
    let locks: Vec<Mutex<u32>> = (0..HELD)
        .map(|_| Mutex::named("held_at_start.many.held", 0))
        .collect();
    let last = Mutex::named("held_at_start.many.last", 0);
    let recording = path.to_path_buf();
    let r = std::thread::spawn(move || {
        // Taken by `try_lock`: held (checking is on), with no dependency to check.
        let mut guards: Vec<_> = locks.iter().map(|m| m.try_lock().unwrap()).collect();
        lockcheck::set_action(Action::Off);
        lockcheck::record::start(&recording).unwrap();
        *last.lock() += 1;
        while let Some(g) = guards.pop() {
            drop(g);
        }
    })
    .join();
    lockcheck::set_action(Action::Warn);
    r.unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    let ev = trace_file::events(&written);
    let held = trace_file::lock_of(&ev, "held_at_start.many.held");
    let last = trace_file::lock_of(&ev, "held_at_start.many.last");
    // The thread's events, in order: the shown locks, then `last`'s request and acquisition.
    let mut tries = Vec::new();
    let mut releases = 0;
    let mut last_at = None;
    for (i, e) in ev.iter().enumerate() {
        match e {
            Event::Acquire { l, how, .. } if *how == How::Try => tries.push((i, *l)),
            Event::Acquire { l, .. } if *l == last => last_at = Some(i),
            Event::Release { .. } => releases += 1,
            _ => {}
        }
    }
    assert_eq!(tries.len(), HELD, "every held lock shown once");
    assert_eq!(tries[0].1, held, "the first shown is the oldest hold");
    let last_at = last_at.expect("`last` acquired in the trace");
    assert!(
        tries.iter().all(|&(i, _)| i < last_at),
        "shown before `last`"
    );
    assert_eq!(releases, HELD + 1, "every shown hold released, and `last`");
    assert!(offline(&written, "held_at_start.many.held").is_empty());
}
