//! A lock left held by a `fork`: `fork(2)` copies only the calling thread into the child, so a
//! lock another thread of the parent held at that moment is held in the child by a thread that
//! does not exist there, and no one can ever release it. A child that then blocks on it hangs
//! forever (daboross/fern#59: a logger's mutex held by a background thread when the program
//! forked; greenbone/openvas-scanner#491; maelstrom-software/maelstrom#48). No cycle of waits
//! shows it: the holder is in no wait-for graph of the child, and the child has no other thread.
//!
//! What is checked (Linux, where `pthread_atfork` and `/proc` tell what is needed): a
//! `pthread_atfork` child handler, registered on a thread's first acquisition, marks the process
//! as forked. A blocking acquisition of a lock, semaphore or `RwLock` in a forked process whose
//! only thread is the caller (`/proc/self/stat`'s thread count) and who does not hold it itself
//! (that is a self-deadlock, checked before) waits for a thread that does not exist: reported as a
//! deadlock of one thread, a certain hang, under `panic` and `warn` alike. A child that started
//! threads of its own is not checked (one of them may hold the lock and release it): a hang there
//! stays unreported, a limit the README states, and said once on stderr when a forked child's
//! blocking acquisition meets it (`notice.rs`). Nothing of this runs before a fork: the check
//! starts with one relaxed load of a flag that only the child handler sets.

use super::class::Ids;
use super::report::{publish, EdgeInfo, LockRef, Verdict, Violation, ViolationKind};
use super::state::{as_busy, thread_name};
use lockcheck_core::trace::{LockKind, Mode};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Set in the child of a `fork` (and in its children), by the `pthread_atfork` handler.
static FORKED: AtomicBool = AtomicBool::new(false);
/// The handler is registered (once per process; the child inherits the registration).
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// The `pthread_atfork` child handler: one atomic store, async-signal-safe as the child of a
/// multi-threaded program needs.
#[cfg(target_os = "linux")]
extern "C" fn in_child() {
    FORKED.store(true, Ordering::Relaxed);
    // The parent's recording is not the child's: the child's own starts at its first event
    // (atomic operations and plain stores too).
    super::recorder::in_fork_child();
}

/// Registers the child handler, once. Called on each thread's first acquisition (the cold
/// `state::register_switch`): a lock held across a fork was taken after it.
pub(crate) fn register() {
    if REGISTERED.load(Ordering::Relaxed) || REGISTERED.swap(true, Ordering::Relaxed) {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: the handler is a plain `extern "C"` function that stores an atomic; registering it
    // has no other precondition.
    unsafe {
        libc::pthread_atfork(None, None, Some(in_child));
    }
}

/// How many threads this process has now (`/proc/self/stat`'s 20th field), if known.
#[cfg(target_os = "linux")]
fn threads_now() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses: the
    // fields after its last `)` start with the state (field 3).
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(17)?.parse().ok()
}

#[cfg(not(target_os = "linux"))]
fn threads_now() -> Option<usize> {
    None
}

/// What a blocked acquisition learned here.
pub(crate) enum Orphan {
    /// Not a forked process's lone thread (or the lock is not one a thread holds): wait as usual.
    No,
    /// The lock was free after all (its holder was a thread of the child that ended meanwhile):
    /// it is now held by the caller.
    Acquired,
    /// Held by a thread the fork left behind: the report's verdict, to raise (the lock is not
    /// taken).
    Hang(Verdict),
}

/// Checks a blocking acquisition of `ids` (the fast try failed) in a forked process: see the
/// module's text. `try_now` tries the lock once more, after the thread count was read: a holder
/// that was a thread of the child and ended meanwhile released it.
#[cold]
#[inline(never)]
pub(crate) fn orphaned(
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
    try_now: impl Fn(Duration) -> bool,
) -> Orphan {
    if !FORKED.load(Ordering::Relaxed)
        || !matches!(
            kind,
            LockKind::Mutex | LockKind::Rwlock | LockKind::Semaphore
        )
    {
        return Orphan::No;
    }
    match threads_now() {
        Some(1) => {}
        Some(_) => {
            // The limit: a child with threads of its own is not checked. Said once.
            super::notice::once(super::notice::Limit::ForkedWithThreads, site);
            return Orphan::No;
        }
        None => return Orphan::No,
    }
    if try_now(Duration::ZERO) {
        return Orphan::Acquired;
    }
    // In the trace first (the report's flush writes it): `lockcheck analyze` reports it too.
    super::recorder::on_left_held(ids, mode, site);
    let v = as_busy(|s| {
        let held = s.held_snapshot();
        let thread = s.id();
        publish(Violation {
            kind: ViolationKind::Deadlock,
            edges: vec![EdgeInfo {
                thread: thread_name(thread),
                thread_id: thread,
                held: LockRef::new(ids.inst, ids.class),
                held_mode: Mode::Exclusive,
                held_site: GONE.to_owned(),
                acquired: LockRef::new(ids.inst, ids.class),
                mode,
                site: site.to_string(),
                other_held: held.iter().map(|h| LockRef::new(h.inst, h.class)).collect(),
                backtrace: super::report::Trace::capture(),
                retried: false,
            }],
            message: String::new(),
        })
    });
    let first = v
        .as_ref()
        .and_then(|v| v.message.lines().next().map(str::to_owned))
        .unwrap_or_else(|| {
            "lockcheck: deadlock: a lock held by a thread a fork left behind".into()
        });
    // A thread already unwinding cannot raise a second panic: it was told, and waits.
    if std::thread::panicking() {
        return Orphan::No;
    }
    Orphan::Hang(Verdict::new(format!(
        "{first}, at {site} (report above; nothing can release it, this acquisition would block forever)"
    )))
}

/// The holder's site in a report: no site of the child took it.
pub(crate) const GONE: &str = "a thread of the parent process, which fork() did not copy";
