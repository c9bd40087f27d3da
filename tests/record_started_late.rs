//! A recording started mid-run (`lockcheck::record::start` after the locks were used) still
//! carries what the runtime learned of them before it: a semaphore's permits (noted at its first
//! blocking acquisition, which the trace did not see) and an RwLock's first write (ditto). Without
//! them `analyze` took the semaphore of several permits for a gate and the read-read links on a
//! written RwLock for harmless, and was silent where the runtime reports. Each scenario runs in
//! JSON Lines and in `.lct`, and each bug beside its look-alike (silent on both sides).
//!
//! Its own process: recording, the action and `violations()` are process-wide, so the tests run
//! one at a time.

mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::{Action, Mutex, RwLock, Semaphore};
use std::sync::Arc;
use trace_file::findings_involving as offline;

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The trace formats, by the file's extension.
const FORMATS: [&str; 2] = ["json", "lct"];

fn name(base: &str, lock: &str, ext: &str) -> &'static str {
    Box::leak(format!("late.{base}.{lock}.{ext}").into_boxed_str())
}

/// Whether any finding is an inversion (instance or class level).
fn inversion(found: &[(String, std::collections::BTreeSet<String>)]) -> bool {
    found.iter().any(|(k, _)| k.contains("inversion"))
}

/// The runtime's and the analyzer's verdicts on the trace of `scenario`, run with the recording
/// started after `before` (which uses the same locks): whether each reports an inversion
/// involving `key`. `scenario` and `before` get the trace's extension.
fn verdicts(
    base: &str,
    ext: &str,
    key: &str,
    before: impl FnOnce(),
    scenario: impl FnOnce() -> (Result<(), String>, Result<(), String>),
) -> (bool, bool) {
    lockcheck::set_action(Action::Warn);
    assert!(!lockcheck::record::is_recording(), "no recording before");
    before();
    let path = trace_file::tmp(&format!("{base}.{ext}"));
    lockcheck::record::start(&path).unwrap();
    let (r1, r2) = scenario();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    assert_eq!(written, *path);
    r1.unwrap();
    r2.unwrap();
    let runtime = !support::inversions(key).is_empty();
    (runtime, inversion(&offline(&path, key)))
}

/// Round 4's limiter (`tests/real_bugs_round4.rs`, section 5) with the semaphore's first
/// blocking acquisition made before the recording: two jobs hold a permit each of `permits` and
/// lock two mutexes in opposite orders. Returns both verdicts.
fn limiter(base: &str, ext: &str, permits: usize) -> (bool, bool) {
    let (s, a, b) = (
        name(base, "jobs", ext),
        name(base, "index", ext),
        name(base, "cache", ext),
    );
    let jobs = Arc::new(Semaphore::named(s, permits));
    let index = Arc::new(Mutex::named(a, 0));
    let cache = Arc::new(Mutex::named(b, 0));
    let warm = jobs.clone();
    verdicts(
        base,
        ext,
        a,
        move || drop(warm.acquire()),
        move || {
            let (j1, i1, c1) = (jobs.clone(), index.clone(), cache.clone());
            support::two_threads(
                move || {
                    let _p = j1.acquire();
                    let _i = i1.lock();
                    *c1.lock() += 1;
                },
                move || {
                    let _p = jobs.acquire();
                    let _c = cache.lock();
                    *index.lock() += 1;
                },
            )
        },
    )
}

/// Two RwLocks read-locked in opposite orders by two threads, each write-locked once before the
/// recording (`written`) or never. Returns both verdicts.
fn read_read(base: &str, ext: &str, written: bool) -> (bool, bool) {
    let (na, nb) = (name(base, "a", ext), name(base, "b", ext));
    let a = Arc::new(RwLock::named(na, 0));
    let b = Arc::new(RwLock::named(nb, 0));
    let (wa, wb) = (a.clone(), b.clone());
    verdicts(
        base,
        ext,
        na,
        move || {
            if written {
                *wa.write() += 1;
                *wb.write() += 1;
            } else {
                let _ = (*wa.read(), *wb.read());
            }
        },
        move || {
            let (a1, b1) = (a.clone(), b.clone());
            support::two_threads(
                move || {
                    let _a = a1.read();
                    let _ = *b1.read();
                },
                move || {
                    let _b = b.read();
                    let _ = *a.read();
                },
            )
        },
    )
}

/// Two RwLock classes (by name) whose instances are read-locked in opposite orders by two
/// threads, each instance fresh (never written); the classes were written before the recording
/// (`written`), or only read, through other instances, dropped before it began: the class
/// level's read-read rule counts the writes of every instance of a class. Returns both verdicts
/// (an inversion involving class `a`, at class level on both sides: no instance cycle).
fn class_read_read(base: &str, ext: &str, written: bool) -> (bool, bool) {
    let (na, nb) = (name(base, "a", ext), name(base, "b", ext));
    verdicts(
        base,
        ext,
        na,
        move || {
            let (wa, wb) = (RwLock::named(na, 0), RwLock::named(nb, 0));
            if written {
                *wa.write() += 1;
                *wb.write() += 1;
            } else {
                let _ = (*wa.read(), *wb.read());
            }
        },
        move || {
            let (a1, b1) = (RwLock::named(na, 0), RwLock::named(nb, 0));
            let (a2, b2) = (RwLock::named(na, 0), RwLock::named(nb, 0));
            support::two_threads(
                move || {
                    let _a = a1.read();
                    let _ = *b1.read();
                },
                move || {
                    let _b = b2.read();
                    let _ = *a2.read();
                },
            )
        },
    )
}

/// A semaphore of 4 permits first acquired before the recording: the runtime reports the
/// limiter's inversion, and so does `analyze` of the trace (it took the semaphore for a gate).
#[test]
fn a_semaphore_of_several_permits_used_before_the_recording_is_no_gate_offline() {
    let _serial = serial();
    for ext in FORMATS {
        let (runtime, found) = limiter("limit", ext, 4);
        assert!(runtime, "{ext}: the runtime reports the inversion");
        assert!(
            found,
            "{ext}: the runtime reported the inversion, the trace shows none"
        );
    }
}

/// Its look-alike: a semaphore of one permit is a gate, silent on both sides.
#[test]
fn a_semaphore_of_one_permit_used_before_the_recording_stays_a_gate_offline() {
    let _serial = serial();
    for ext in FORMATS {
        let (runtime, found) = limiter("limit.one", ext, 1);
        assert!(!runtime, "{ext}: the runtime is silent");
        assert!(!found, "{ext}: offline is silent");
    }
}

/// Read-read cycles on RwLocks written before the recording: the runtime reports them (a queued
/// writer stops new readers), and so does `analyze` of the trace, which shows no write.
#[test]
fn rwlocks_written_before_the_recording_make_read_read_cycles_offline_too() {
    let _serial = serial();
    for ext in FORMATS {
        let (runtime, found) = read_read("rr.written", ext, true);
        assert!(runtime, "{ext}: the runtime reports the read-read cycle");
        assert!(
            found,
            "{ext}: the runtime reported the cycle, the trace shows none"
        );
    }
}

/// Its look-alike: RwLocks never written, only read before: silent on both sides.
#[test]
fn rwlocks_never_written_keep_read_read_cycles_silent_offline() {
    let _serial = serial();
    for ext in FORMATS {
        let (runtime, found) = read_read("rr.read", ext, false);
        assert!(!runtime, "{ext}: the runtime is silent");
        assert!(!found, "{ext}: offline is silent");
    }
}

/// Classes written before the recording only through instances the trace never shows (dropped
/// before it began): the runtime's class level counts their writes and reports the read-read
/// cycle of fresh instances; the trace declares the classes written (`class_written`), so
/// `analyze` reports it too (before, it was silent).
#[test]
fn classes_written_before_the_recording_through_unseen_instances_make_class_cycles_offline_too() {
    let _serial = serial();
    for ext in FORMATS {
        let (runtime, found) = class_read_read("cls.written", ext, true);
        assert!(runtime, "{ext}: the runtime reports the class-level cycle");
        assert!(found, "{ext}: offline too");
    }
}

/// Its look-alike: classes only read before the recording: silent on both sides.
#[test]
fn classes_only_read_before_the_recording_keep_class_cycles_silent() {
    let _serial = serial();
    for ext in FORMATS {
        let (runtime, found) = class_read_read("cls.read", ext, false);
        assert!(!runtime, "{ext}: the runtime is silent");
        assert!(!found, "{ext}: offline is silent");
    }
}

/// The notes kept for a later trace go with their locks: RwLocks written fewer times than the
/// graph notes one by one (their `WRITTEN` bit is not set yet) and semaphores of several permits,
/// created, used and dropped by the thousand while nothing records, leave no note behind (they
/// were kept forever when an RwLock's drop looked at its `WRITTEN` bit alone).
#[test]
fn notes_for_a_later_trace_go_with_their_locks() {
    let _serial = serial();
    lockcheck::set_action(Action::Warn);
    assert!(!lockcheck::record::is_recording(), "no recording");
    let before = lockcheck::__private::noted_locks();
    for i in 0..1000u32 {
        let rw = RwLock::named("late.notes.rw", i);
        *rw.write() += 1;
        let _r = rw.read();
        let sem = Semaphore::named("late.notes.sem", 4);
        drop(sem.acquire());
    }
    let after = lockcheck::__private::noted_locks();
    // Other tests of this file run one at a time (serial), so nothing else notes meanwhile.
    assert!(
        after <= before,
        "notes kept of dropped locks: {before} before, {after} after"
    );
}
