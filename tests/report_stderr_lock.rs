//! A report is written without std's stderr lock: a thread of the deadlock, blocked on a checked
//! lock, may hold that lock (it was printing), and the thread that found the cycle must still
//! print its report and give up its locks. With `eprintln!` the reporter blocked on stderr's
//! lock for ever, a hang lockcheck made out of a report. The scenario runs in a child process of
//! this test binary (with `--nocapture`: the test harness's capture would route `eprintln!`
//! around std's lock), whose stderr is read.

mod support;

use lockcheck::Mutex;
use std::sync::Arc;
use support::{blocked_on, wait_until};

/// Set in the child process: the name of the test to run as the scenario.
const CHILD: &str = "LOCKCHECK_STDERR_LOCK_CHILD";

/// Runs the test `name` of this binary in a child process and returns its stderr; `None` if it
/// did not end within the watchdog's time (killed).
fn run_child(name: &str) -> (Option<std::process::ExitStatus>, String) {
    run_child_env(name, &[])
}

/// [`run_child`] with more environment variables for the child (`LOCKCHECK=panic` unless
/// `env` says otherwise).
fn run_child_env(name: &str, env: &[(&str, &str)]) -> (Option<std::process::ExitStatus>, String) {
    let mut all = vec![("LOCKCHECK", "panic")];
    all.extend_from_slice(env);
    support::child::run_test(name, CHILD, &all)
}

/// A thread holds `a`, then std's stderr lock, and blocks on `b`; the test's thread holds `b`
/// and closes the cycle on `a`: it finds the cycle (the lock order's inversion, checked before
/// the wait), and its report comes out although the other thread holds stderr's lock; it gives
/// up `b`, and both go on.
#[test]
fn a_report_comes_out_while_a_thread_of_the_cycle_holds_stderr() {
    const NAME: &str = "a_report_comes_out_while_a_thread_of_the_cycle_holds_stderr";
    if std::env::var(CHILD).as_deref() != Ok(NAME) {
        let (status, err) = run_child(NAME);
        assert!(
            status.is_some_and(|s| s.success()),
            "the child hung or failed: {status:?}\n{err}"
        );
        assert!(
            err.lines()
                .any(|l| l.starts_with("lockcheck: lock order inversion")
                    && l.ends_with("2 locks, 2 threads")),
            "the report is on stderr:\n{err}"
        );
        return;
    }
    let a = Arc::new(Mutex::named("stderr_lock.a", ()));
    let b = Arc::new(Mutex::named("stderr_lock.b", ()));
    let gb = b.lock();
    let (a2, b2) = (a.clone(), b.clone());
    let (held, wait_held) = std::sync::mpsc::channel::<()>();
    let printer = std::thread::spawn(move || {
        let _ga = a2.lock();
        let err = std::io::stderr();
        let _printing = err.lock();
        held.send(()).unwrap();
        drop(b2.lock()); // blocks: the test's thread holds `b`
    });
    wait_held.recv().unwrap();
    wait_until("the printer blocked on b", || {
        blocked_on("stderr_lock.b") == 1
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(a.lock()); // closes the cycle: the report, then this thread panics
    }));
    assert!(r.is_err(), "this thread gives up its locks");
    drop(gb);
    printer.join().unwrap();
}

/// lockcheck's own lines (here a bad setting, said when the first lock is used) are written
/// without std's stderr lock too: the main thread holds that lock while it joins the thread
/// whose first lock use reads the settings. With `eprintln!` that thread blocked on stderr's lock
/// for ever, and the join with it.
#[test]
fn a_settings_line_comes_out_while_another_thread_holds_stderr() {
    const NAME: &str = "a_settings_line_comes_out_while_another_thread_holds_stderr";
    if std::env::var(CHILD).as_deref() != Ok(NAME) {
        let (status, err) = run_child_env(NAME, &[("LOCKCHECK_HOLD_WARN", "soon")]);
        assert!(
            status.is_some_and(|s| s.success()),
            "the child hung or failed: {status:?}\n{err}"
        );
        assert!(
            err.lines()
                .any(|l| l.starts_with("lockcheck: ignoring LOCKCHECK_HOLD_WARN=\"soon\"")),
            "the setting's line is on stderr:\n{err}"
        );
        return;
    }
    let err = std::io::stderr();
    let printing = err.lock();
    std::thread::spawn(|| {
        let m = Mutex::named("stderr_lock.first_use", 0u32);
        *m.lock() += 1;
    })
    .join()
    .unwrap();
    drop(printing);
}
