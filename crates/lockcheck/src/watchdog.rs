//! Real deadlocks, long waits and timeout policies.
//!
//! - **Deadlocks** need no set-up: when a thread is about to block (its fast try failed), lockcheck
//!   records what it waits for and what it holds; if that closes a cycle of waiting threads (over
//!   any mix of mutexes, rwlocks and semaphores, where a semaphore counts only when every permit is
//!   held inside the cycle), it reports a `deadlock` naming every thread, the lock it holds and the
//!   lock it waits for. Under `LOCKCHECK=panic` the thread that closed the cycle panics, which
//!   unwinds its guards and lets the others go on: the program fails instead of hanging.
//! - **Watchdog**: `LOCKCHECK_WAIT_WARN=500ms` (or [`set_wait_warn`]) reports a thread that has
//!   waited longer, with who holds the lock and where they took it; `LOCKCHECK_HOLD_WARN=1s` (or
//!   [`set_hold_warn`]) reports a lock held longer. A background thread checks; with the watchdog
//!   on, each acquisition also publishes the held lock (a per-thread, uncontended mutex).
//!   Watchdog reports never panic: a slow holder is not a bug by itself.
//! - **Timeout policies**: [`set_wait_timeout`] (or a `LOCKCHECK_POLICY=lockcheck.toml` file with a
//!   `[wait_timeout]` table of `"class" = "50ms"`, as `lockcheck analyze --timeouts-toml` writes)
//!   bounds how long a blocking `lock()` of a class may wait: past it, a `wait-timeout` report
//!   (a panic under `LOCKCHECK=panic`; under `warn` the wait goes on). Suggested timeouts are
//!   derived from measured waits (see `docs/analyze.md`); one that is too tight fires on a slow or
//!   loaded machine in normal operation, so keep a wide margin (lockcheck's suggestions use at
//!   least ten times the 99th percentile wait and twice the longest wait seen).

//! - **Condvar waits** (opt-in, `LOCKCHECK_CONDVAR=warn` or [`set_condvar_check`]): a thread that
//!   waits on a condvar while holding another lock that a notifier of that condvar needed to
//!   notify gets a warning (never a panic): the notifier would block on that lock and never
//!   notify. A notifier needed the locks it held when it notified and those it took in its window
//!   on the condvar: since its last return from a wait on it or its last notify of it (on a
//!   condvar it has neither for, since its latest such event on any condvar, or its start), so a
//!   pool's job that takes a lock, releases it and then notifies a latch shared by all jobs
//!   counts. Before any notify was seen, any other held lock is reported. Each (wait line, held
//!   line, mutex class, held class) is reported once. The bounds (64 distinct locks per thread's
//!   window, 16 condvars' window starts per thread, 32 notifier locks per condvar) are reported
//!   as `incomplete` findings when hit. While on, every acquisition takes the full path. This rule
//!   is known to be noisy in other tools, hence opt-in and a warning. `lockcheck analyze` does not
//!   apply it: a trace has no notify event.
//! - **Lost wakeups** (with the condvar rule): a waiter checks its condition under the mutex it
//!   waits with, then waits; a notify that comes between the two is lost unless the notifier
//!   took that mutex after changing the condition. A notify whose window (as above: the locks
//!   the notifier held, and took since its last wait on or notify of the condvar) lacks the
//!   mutex of an untimed wait in progress on another thread, or an untimed wait whose mutex the
//!   condvar's latest notify (by another thread) lacked, gets a `condvar-lost-wakeup` warning
//!   (never a panic), once per (notify line, wait line, mutex class). Timed waits end by
//!   themselves and are not checked; a notify whose window is incomplete (the bounds above) is
//!   not checked either. It warns about a correct program in one case: the condition changed by
//!   a thread under the mutex, and the notify sent by another thread that never takes it.

use std::path::Path;
use std::time::Duration;

/// Reports threads that wait longer than `limit` for a lock (`None`: off).
pub fn set_wait_warn(limit: Option<Duration>) {
    crate::checked::watch::set_wait_warn(limit);
}

/// Reports locks held longer than `limit` (`None`: off).
pub fn set_hold_warn(limit: Option<Duration>) {
    crate::checked::watch::set_hold_warn(limit);
}

/// Bounds the wait of blocking acquisitions of `class` (a lock name, or `file:line:col` of its
/// construction site) to `limit`; `None` removes the bound.
pub fn set_wait_timeout(class: &str, limit: Option<Duration>) {
    crate::checked::watch::set_wait_timeout(class, limit);
}

/// Loads the `[wait_timeout]` table of a TOML policy file; returns how many classes it set.
pub fn load_policy_file(path: impl AsRef<Path>) -> Result<usize, String> {
    crate::checked::watch::load_policy_file(path.as_ref())
}

/// Turns the opt-in condvar check on or off (see the module docs).
pub fn set_condvar_check(on: bool) {
    crate::checked::watch::set_condvar_check(on);
}

/// Turns the opt-in prediction of receives' deadlocks on or off (`LOCKCHECK_CHANNEL_RECV=on`
/// does the same): a thread that sends through a handle of a `lockcheck::sync::mpsc` channel
/// holds the channel's senders from then on, so that a lock it takes before its next send and a
/// receive that waits holding that lock are an inversion, reported the first time both orders
/// are seen (crates/lockcheck/src/checked/channel.rs, "Predicting a receive's deadlock").
pub fn set_channel_recv_check(on: bool) {
    crate::checked::channel_recv_prediction(on);
}
