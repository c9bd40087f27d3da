//! The helpers every `tests/real_bugs_round*.rs` shares: the action set before a scenario (and,
//! for the rounds that record, one scenario at a time), a scenario expected to be stopped by a
//! report, the findings of one kind checked against a file's marker lines, a thread whose panic is
//! caught, and a run recorded to a trace that `lockcheck analyze` then reads. One copy, included
//! by each round file as `#[path = "support/real_bugs.rs"] mod real_bugs;` next to its
//! `mod support;` (it uses `crate::support`); a round's own variant (round 8's `setup` with the
//! condvar rule on, round 4's `run_pair`) stays in its file.
#![allow(dead_code)]

#[path = "trace_file.rs"]
pub mod trace_file;

use crate::support::markers::Markers;
use crate::support::{found, panic_message, watchdog};
use lockcheck::{Action, ViolationKind};
use std::path::Path;

/// Recording is process-wide: the rounds that record run one scenario at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The file's scenarios one at a time (a test that failed holding it does not poison the others).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A violation panics (the default, set again: another test of the binary may have changed it).
pub fn setup() {
    lockcheck::set_action(Action::Panic);
}

/// [`setup`], one scenario at a time: hold the guard for the whole test.
pub fn setup_serial() -> std::sync::MutexGuard<'static, ()> {
    let g = serial();
    setup();
    g
}

/// Runs `f` under the watchdog and returns the message of the report that stopped it (the
/// scenario must be stopped: unreported, it hangs).
pub fn stopped<F: FnOnce() + Send + 'static>(f: F) -> String {
    watchdog(20, f).expect_err("reported before it hangs")
}

/// Asserts that `v` has exactly one finding of `kind`, and that its sites are at `markers`' lines
/// of the file `m`.
#[track_caller]
pub fn one_of_kind(m: &Markers, v: &[lockcheck::Violation], kind: ViolationKind, markers: &[&str]) {
    let s: Vec<_> = v.iter().filter(|v| v.kind == kind).collect();
    assert_eq!(s.len(), 1, "{v:#?}");
    m.assert_sites(s[0], markers);
}

/// The runtime's findings of `kind` on the lock named `class`.
pub fn of_kind(kind: ViolationKind, class: &str) -> Vec<lockcheck::Violation> {
    found(class)
        .into_iter()
        .filter(|v| v.kind == kind)
        .collect()
}

/// The runtime's findings of `kind` one of whose sites or classes is at `marker`'s line of `m`.
pub fn of_kind_at(m: &Markers, kind: ViolationKind, marker: &str) -> Vec<lockcheck::Violation> {
    m.found_at(marker)
        .into_iter()
        .filter(|v| v.kind == kind)
        .collect()
}

/// Runs `f` on a thread of its own, its panic caught: `Err` is the panic's message.
pub fn caught<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<Result<T, String>> {
    std::thread::spawn(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|e| panic_message(&*e))
    })
}

/// Runs `f` under the watchdog, recorded to a trace of its own named `name` (JSON Lines or
/// `.lct` by its extension); returns `f`'s outcome (`Err`: its panic message) and the trace.
/// Call it under [`setup_serial`]'s guard: recording is process-wide.
pub fn recorded<F>(name: &str, f: F) -> (Result<(), String>, trace_file::ScratchFile)
where
    F: FnOnce() + Send + 'static,
{
    let trace = trace_file::tmp(name);
    lockcheck::record::start(&trace).unwrap();
    let outcome = watchdog(60, f);
    lockcheck::record::stop().unwrap().expect("was recording");
    (outcome, trace)
}

/// The kinds of `lockcheck analyze`'s findings on `trace` one of whose locks' classes contains
/// `needle` (a lock's name, or `file.rs:LINE:` of its construction site).
pub fn offline_kinds(trace: &Path, needle: &str) -> Vec<String> {
    let report = lockcheck_analyze::analyze(&[trace.to_path_buf()], &Default::default()).unwrap();
    report
        .violations
        .iter()
        .filter(|v| v.locks.iter().any(|l| l.class.contains(needle)))
        .map(|v| v.kind.clone())
        .collect()
}
