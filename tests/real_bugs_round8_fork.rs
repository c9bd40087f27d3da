//! Real deadlocks from public Rust projects, eighth round, the one that needs `fork(2)` (its own
//! test binary, one test: a fork copies only the calling thread, and a test running beside it in
//! the same process could hold a lock, lockcheck's own or the allocator's, at that moment).
//!
//! A logger's mutex held by a background thread when the program forks: the child's first log
//! line blocks on a lock whose holder does not exist in the child, forever. Source:
//! daboross/fern#59 ("Fern and forks": a program logging through fern from a background thread
//! forks; the child hangs in its first `info!`, on the output's `Mutex`; the reproduction in the
//! thread is a `OnceCell<Mutex<()>>` locked in a loop by a spawned thread while the main thread
//! forks). The workaround discussed there takes the lock around the `fork` (`with_lock(fork)`):
//! then no other thread can hold it at that moment, and the child's copy, held by the child's
//! own thread, is released by it. The same shape: greenbone/openvas-scanner#491 ("Prevent
//! deadlock, ensure that no locks are being held at the time of forking"), and
//! maelstrom-software/maelstrom#48 (a worker's clone while other threads may hold locks).
//!
//! No cycle of waits shows this hang: the child has one thread, and the holder is in no
//! wait-for graph. lockcheck now marks a forked process (a `pthread_atfork` child handler) and
//! reports a blocking acquisition by a forked process's only thread of a lock it does not hold
//! itself: nothing can ever release it (`checked::fork`). Linux only.
#![cfg(target_os = "linux")]

mod support;

use lockcheck::sync::Mutex;
use lockcheck::{Action, ViolationKind};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use support::markers::Markers;
use support::watchdog;

/// This file's marker comments.
const M: Markers = Markers::new(
    "real_bugs_round8_fork.rs",
    include_str!("real_bugs_round8_fork.rs"),
);

/// fern's `Dispatch` reduced to its output: a `std::sync::Mutex` around the sink, taken by every
/// log call (fern's `Output::Stdout`/`File` outputs lock the stream for each record).
struct Logger {
    out: Mutex<Vec<String>>,
}

impl Logger {
    fn log(&self, line: &str) {
        self.out.lock().unwrap().push(line.to_owned()); // FERN_LOG
    }
}

/// What a child did, as its exit status tells the parent.
#[derive(Debug, PartialEq, Eq)]
enum Child {
    /// Logged and exited (status 0).
    Logged,
    /// Stopped by the report lockcheck was expected to make (status 3).
    Reported,
    /// Exited with another status: a wrong report (5), another panic (4).
    Other(i32),
    /// Still running after the deadline: hung (killed).
    Hung,
}

/// Runs `child` in a forked child of this process (made by `fork`, which runs `child` there and
/// never returns in the child), then waits up to 20 s for it.
fn wait_child(pid: libc::pid_t) -> Child {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == pid {
            return match libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)) {
                Some(0) => Child::Logged,
                Some(3) => Child::Reported,
                Some(c) => Child::Other(c),
                None => Child::Other(-status),
            };
        }
        if Instant::now() > deadline {
            // SAFETY: as above; the child is ours and still running.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Child::Hung;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Forks; the child runs `body` and leaves with `_exit`: status 0 if it returned, 3 if it
/// panicked with lockcheck's fork report, found with the right kind and sites in `violations()`
/// (`check`), 5 with a report that is not that, 4 for any other panic. Returns the child's pid.
fn fork_running(body: impl FnOnce(), check: impl FnOnce() -> bool) -> libc::pid_t {
    // SAFETY: the child only runs `body` (lockcheck's locks, a report, a panic caught here) and
    // leaves with `_exit`, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        let code = match r {
            Ok(()) => 0,
            Err(e) => {
                let msg = support::panic_message(&*e);
                if !msg.contains("deadlock") {
                    4
                } else if check() {
                    3
                } else {
                    5
                }
            }
        };
        // SAFETY: leaves the child at once, without the parent's atexit handlers or destructors.
        unsafe { libc::_exit(code) }
    }
    pid
}

/// The child's findings on the lock made at `marker`'s line: one deadlock, naming the child's log
/// line as the wait and no site of the child as the holder's.
fn one_fork_report(marker: &str) -> bool {
    let v = M.found_at(marker);
    v.len() == 1
        && v[0].kind == ViolationKind::Deadlock
        && v[0].edges.len() == 1
        && v[0].edges[0].site.contains(&M.at("FERN_LOG"))
        && v[0].message.contains("fork")
}

/// A background thread that logs while the main thread forks: it takes the logger's lock, tells
/// `holding`, and releases it once told on `go` (after the fork).
fn background_logger(
    logger: Arc<Logger>,
    holding: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let out = logger.out.lock().unwrap(); // FERN_BACKGROUND
        holding.send(()).unwrap();
        go.recv().unwrap();
        drop(out);
        logger.log("background: done");
    })
}

#[test]
fn a_lock_held_by_another_thread_when_the_process_forks_hangs_the_child_and_is_reported() {
    lockcheck::set_action(Action::Panic);
    watchdog(90, || {
        // fern#59: the background thread holds the output's lock at the fork.
        let logger = Arc::new(Logger {
            out: Mutex::new(Vec::new()), // FERN_OUTPUT
        });
        let (holding_tx, holding_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel();
        let bg = background_logger(logger.clone(), holding_tx, go_rx);
        holding_rx.recv().unwrap();
        let l = logger.clone();
        let pid = fork_running(
            move || l.log("child: started"),
            || one_fork_report("FERN_OUTPUT"),
        );
        go_tx.send(()).unwrap();
        bg.join().unwrap();
        assert_eq!(wait_child(pid), Child::Reported);
        // The parent's lock was never stuck: its background thread released it.
        logger.log("parent: child reaped");

        // The workaround (fern#59's `with_lock(fork)`): the forking thread holds the lock across
        // the fork, so no other thread can; the child's copy is held by the child's own thread,
        // which releases it before logging. The background thread is ready to log meanwhile (it
        // may be blocked on the lock at the fork, or not yet): silent either way.
        let logger = Arc::new(Logger {
            out: Mutex::new(Vec::new()), // FERN_FIXED_OUTPUT
        });
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let l = logger.clone();
        let guard = logger.out.lock().unwrap();
        let bg = std::thread::spawn(move || {
            ready_tx.send(()).unwrap();
            l.log("background: logging beside the fork");
        });
        ready_rx.recv().unwrap();
        let l = logger.clone();
        let pid = fork_running(
            move || {
                drop(guard);
                l.log("child: started");
            },
            || false,
        );
        // The parent's copy of the guard was released when `fork_running` dropped the closure
        // it did not run in the parent.
        bg.join().unwrap();
        assert_eq!(wait_child(pid), Child::Logged);

        // A child with a thread of its own that holds the lock and releases it: the lone-thread
        // rule does not apply (the child has two threads), and the wait ends: silent.
        let logger = Arc::new(Logger {
            out: Mutex::new(Vec::new()), // FERN_CHILD_OUTPUT
        });
        let l = logger.clone();
        let pid = fork_running(
            move || {
                let (holding_tx, holding_rx) = mpsc::channel();
                let (go_tx, go_rx) = mpsc::channel();
                let bg = background_logger(l.clone(), holding_tx, go_rx);
                holding_rx.recv().unwrap();
                // Released once this thread is about to wait (or already waits): the wait ends.
                go_tx.send(()).unwrap();
                l.log("child: started");
                bg.join().unwrap();
            },
            || false,
        );
        assert_eq!(wait_child(pid), Child::Logged);

        // The same hang through a one-time initialization: a background thread is inside a
        // `OnceLock`'s initializer (it holds the initialization's gate) when the process forks;
        // the child's `get_or_init` waits for an initializer that does not exist in it.
        let cell: &'static lockcheck::sync::OnceLock<u32> =
            Box::leak(Box::new(lockcheck::sync::OnceLock::new()));
        let (holding_tx, holding_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let init = std::thread::spawn(move || {
            cell.get_or_init(|| {
                holding_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                7
            });
        });
        holding_rx.recv().unwrap();
        let pid = fork_running(
            move || {
                cell.get_or_init(|| 8); // FORK_ONCE
            },
            || {
                let v = M.found_at("FORK_ONCE");
                v.len() == 1
                    && v[0].kind == ViolationKind::Deadlock
                    && v[0].message.contains("fork")
            },
        );
        go_tx.send(()).unwrap();
        init.join().unwrap();
        assert_eq!(cell.get(), Some(&7));
        assert_eq!(wait_child(pid), Child::Reported);
    })
    .unwrap();
    // The parent made no report of any of these.
    for marker in ["FERN_OUTPUT", "FERN_FIXED_OUTPUT", "FERN_CHILD_OUTPUT"] {
        assert!(M.found_at(marker).is_empty(), "{:#?}", M.found_at(marker));
    }
}
