//! Notices: a documented limit of the runtime checks, said once per process on stderr when a run
//! actually hits it.
//!
//! Some limits are no finding: nothing in the program is known to be wrong, but a check did not
//! run where it would have, or a report rests on a guess. README states each; a user who never
//! reads that paragraph should still learn, from the run itself, that one applied, and where.
//! Limits that bound the detector's own tables (a search's steps, the graph's size, the class
//! table) are `incomplete` findings instead (`ViolationKind::Incomplete`, in `violations()`):
//! they can hide any finding. These name one check and one site.
//!
//! Each notice is one line, `lockcheck: note: ...`, printed the first time its limit is hit (an
//! atomic bit per limit: no lock, no allocation before the line is formatted), never at start-up
//! and never in a run that does not hit it. Everything here is off the fast path: the callers are
//! cold functions of rare events (a blocked acquisition in a forked child, a report, the 1000th
//! failed try).
//!
//! This is lockcheck's one "say once" mechanism: every limit said once per process has its bit
//! here ([`Limit`]), those whose saying is an `incomplete` finding too ([`first`]), and every
//! line lockcheck writes to stderr on a path that can run while another thread is blocked goes
//! through [`write_stderr`] (reports included, `report::publish`): one `write(2)` per message on
//! Linux, never std's stderr lock, which a thread blocked on a checked lock may hold (it was
//! printing), and which a forked child may find held for ever by a parent's thread the fork left
//! behind.

use std::fmt::Display;
use std::sync::atomic::{AtomicU32, Ordering};

/// A limit that is said once when hit (see the module's text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    /// A blocking acquisition in a forked child that has threads of its own: the check for a lock
    /// the fork left held (`fork.rs`) applies to a child's only thread.
    ForkedWithThreads,
    /// A barrier's deadlock reported with a thread assumed to be a participant (the first
    /// generation: nothing names a barrier's participants; `barrier.rs`).
    BarrierParticipantAssumed,
    /// A receive's deadlock reported with a sender handle never used assumed to be with a stuck
    /// thread (`channel.rs`, "A receive that waits for a message").
    SenderHandleAssumed,
    /// The lost-wakeup rule compares a wait with the condvar's latest notify only: an earlier
    /// notify, since the previous wait began, lacked the wait's mutex.
    LostWakeupEarlierNotify,
    /// A try retried `TRY_RETRIES` times holding locks: a spinner is no waiter of the wait-for
    /// graph, so a hang through it is found by the lock order only.
    SpinnerNotWaiter,
    /// A backtrace cut short for want of stack (`unwind.rs`); the detail is the KiB left.
    ShortBacktrace,
    /// A forked child of a recording process cannot record its own trace (a recorder lock was
    /// held at the fork, or its file cannot be made): said by `recorder/forked.rs` with the
    /// reason, through [`first`] and [`write_stderr`] only (no `tracing`: a subscriber's lock
    /// may be held by a thread the fork left behind).
    ForkedChildUnrecorded,
    /// A `SyncSender` another thread sent through, used by this thread after a receive joined a
    /// send's clock (`channel.rs`): said as the `incomplete` finding `channel-message-order`.
    ChannelMessageOrder,
    /// The deferred channel dependencies' bound reached (`channel.rs`): said as the `incomplete`
    /// finding `deferred-channel-dependencies`.
    DeferredChannelDependencies,
}

impl Limit {
    fn bit(self) -> u32 {
        1 << self as u32
    }

    /// The line said: what was not checked (or guessed), given the site (or the variant's
    /// detail), and where README says more; with its `lockcheck: ` prefix and its newline.
    fn line(self, site: &dyn Display) -> String {
        let text = match self {
            Limit::ShortBacktrace => {
                return format!(
                    "lockcheck: a backtrace was cut short on a thread with {site} KiB of stack \
                     left (the unwinder may need {} KiB): its reports and recorded sites show the \
                     innermost frames only; give the thread a larger stack \
                     (thread::Builder::stack_size) for whole ones\n",
                    super::unwind::REFERENCE_STACK >> 10
                )
            }
            // Said as findings (`first`), or by their own line (`recorder/forked.rs`).
            Limit::ChannelMessageOrder
            | Limit::DeferredChannelDependencies
            | Limit::ForkedChildUnrecorded => String::new(),
            Limit::ForkedWithThreads => format!(
                "not checked: a blocking acquisition at {site} in a forked child process that has \
                 threads of its own (a lock the fork left held by a thread of the parent would hang \
                 it unreported: the check applies to a child's only thread); README, \"Real \
                 deadlocks, long waits, timeouts, statistics\", on fork"
            ),
            Limit::BarrierParticipantAssumed => format!(
                "a deadlock at the barrier created at {site} was reported with a thread assumed \
                 to be a missing participant (first generation: nothing names a barrier's \
                 participants), a guess that can be false: if that thread is no participant (a \
                 participant was only slow), let the participants pass the barrier once before \
                 a wait there can be blocked (from its second generation the participants are \
                 known and none is guessed); README, \"Barriers\""
            ),
            Limit::SenderHandleAssumed => format!(
                "a receive's deadlock was reported with the sender handle made at {site}, never \
                 used, assumed to be with a stuck thread, a guess that can be false; README, \
                 \"Limits that remain\", on channels"
            ),
            Limit::LostWakeupEarlierNotify => format!(
                "not checked: the lost-wakeup rule compared the wait {site} with the condvar's \
                 latest notify only, and an earlier one lacked its mutex; README, \
                 \"LOCKCHECK_CONDVAR\""
            ),
            Limit::SpinnerNotWaiter => format!(
                "a try retried {} times at {site} while holding locks is checked as a blocking \
                 acquisition by the lock order only: a spinner is no waiter of the wait-for \
                 graph, so a hang through it is never reported as a `deadlock`; README, \"What \
                 is checked, and what is not reported\", on retried tries",
                lockcheck_core::trace::TRY_RETRIES
            ),
        };
        format!("lockcheck: note: {text} (said once)\n")
    }
}

/// The limits said so far, a bit each.
static SAID: AtomicU32 = AtomicU32::new(0);

/// Whether `limit` is hit for the first time in this process (claims its bit): for a limit
/// said some other way (an `incomplete` finding), and by [`once`].
pub(crate) fn first(limit: Limit) -> bool {
    SAID.load(Ordering::Relaxed) & limit.bit() == 0
        && SAID.fetch_or(limit.bit(), Ordering::Relaxed) & limit.bit() == 0
}

/// Says `limit`, hit at `site`, on stderr (and to `tracing` with that feature), the first time
/// only in this process. Returns whether it was said now (tests).
#[cold]
#[inline(never)]
pub(crate) fn once(limit: Limit, site: &dyn Display) -> bool {
    if !first(limit) {
        return false;
    }
    // As lockcheck's own work: a lock taken meanwhile (an instrumented global allocator's, a
    // `tracing` subscriber's) is not checked. Said as well by a thread that is already busy.
    let say = || {
        let line = limit.line(site);
        write_stderr(&line);
        #[cfg(feature = "tracing")]
        tracing::warn!(target: "lockcheck", "{}", line.trim_end());
    };
    if super::state::as_busy(|_| say()).is_none() {
        say();
    }
    true
}

/// One line of lockcheck's own on stderr (a bad setting, an incomplete trace), written as
/// [`write_stderr`] writes: never through std's stderr lock, which a thread blocked on a
/// lockcheck lock may hold.
pub(crate) fn say(line: std::fmt::Arguments<'_>) {
    write_stderr(&format!("{line}\n"));
}

/// Writes `text` to stderr without std's stderr lock: one `write(2)` on Linux (again for what a
/// short write left), `eprint!` elsewhere. std's `eprintln!` takes a lock that another thread may
/// hold while it is blocked on a checked lock (it was printing: a `Display` that locks, or an
/// explicit `stderr().lock()`), in a cycle this very text reports: the reporter would block before
/// it gives up its locks (`tests/report_stderr_lock.rs`). In a forked child that lock may be held
/// for ever by a parent's thread the fork left behind. Lines written so are not captured by the
/// test harness (`cargo test` shows them for passing tests too).
pub(crate) fn write_stderr(text: &str) {
    #[cfg(target_os = "linux")]
    {
        let mut left = text.as_bytes();
        while !left.is_empty() {
            // SAFETY: writes `left`'s bytes to file descriptor 2; no other precondition.
            let n = unsafe { libc::write(2, left.as_ptr().cast(), left.len()) };
            if n > 0 {
                left = &left[n as usize..];
            } else if n < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
                continue;
            } else {
                // Closed or failing: nothing else can be done with the text.
                break;
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    eprint!("{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_is_said_once() {
        assert!(once(Limit::SpinnerNotWaiter, &"here.rs:1:1"));
        assert!(!once(Limit::SpinnerNotWaiter, &"there.rs:2:2"));
        assert!(once(Limit::ForkedWithThreads, &"here.rs:1:1"));
        assert!(!once(Limit::ForkedWithThreads, &"here.rs:1:1"));
    }
}
