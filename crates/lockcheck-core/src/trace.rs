//! The lockcheck trace: one JSON object per line (JSON Lines), first line a [`Event::Header`].
//!
//! JSON Lines rather than one JSON document so that a process that dies mid-run leaves a file whose
//! every complete line is still a valid event, and so that readers can stream. `docs/trace-format.md`
//! documents every field; `docs/trace-format.schema.json` is the JSON Schema of one line.
//!
//! Identity: lock instances (`l`), threads (`t`), classes (`c`), sites (`s`) and backtraces (`b`)
//! are small numbers local to one process. What is stable across processes is a class's
//! [`key`](Event::Class) (its name, or its construction site `file:line:col`) and a site's
//! location string, so traces of different test binaries merge by key.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Version written in [`Event::Header`]; readers refuse other major versions.
pub const FORMAT_VERSION: u32 = 1;

/// Per-process lock instance number (never reused within a process).
pub type LockNo = u64;
/// Per-process thread number.
pub type ThreadNo = u64;
/// Per-process class number; the class's `key` is its cross-process identity.
pub type ClassNo = u32;
/// Per-process interned acquisition site number.
pub type SiteNo = u32;

/// What kind of primitive a lock class is.
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum LockKind {
    /// A mutual-exclusion lock.
    Mutex,
    /// A reader-writer lock.
    Rwlock,
    /// A counting semaphore.
    Semaphore,
    /// A condition variable (never held; appears in wait events).
    Condvar,
    /// A lock of a foreign trace format whose kind is unknown.
    Unknown,
    /// One-time initialization (`Once`, `OnceLock`, `LazyLock`): held by the initializing thread
    /// while its initializer runs, requested by every caller that finds it not done. Exclusive,
    /// as a mutex: an initializer that re-enters it is a self-deadlock. Serialized `once`.
    Once,
    /// The end of a thread (or task) that can be joined (one class per spawn site, key
    /// `end of thread spawned at file:line:col`, or `end of task ...`; one instance per thread
    /// or task; traces of lockcheck 0.1 before this key had `thread spawned at ...`, and wrote a
    /// task's end as a `Once` named `task spawned at ...`): held by the thread from its
    /// start until it finishes, requested by a join (made while holding locks) and granted when
    /// the join returns. A join made holding `L` of a thread that takes `L` is then an ordinary
    /// lock-order cycle `L -> end -> L`: a join deadlock. Serialized `end`; added within version
    /// 1: older readers refuse it, every older trace still reads.
    End,
    /// A bounded channel (`lockcheck::sync::mpsc::sync_channel`): held (shared) by the thread
    /// that owns its receiving end (from the channel's creation, then by the last thread that
    /// used the `Receiver`, until it is dropped), requested (exclusive) by a send that finds it
    /// full (or, with no capacity, no receiver waiting), and released as soon as the send is
    /// done. A send made while holding `L` into a channel whose receiver's thread takes `L` is
    /// then an ordinary lock-order cycle `L -> channel -> L`. Serialized `channel`; added within
    /// version 1: older readers refuse it, every older trace still reads.
    Channel,
    /// A barrier (`lockcheck::sync::Barrier`, class `barrier created at file:line:col`):
    /// requested (exclusive) by a thread that waits at it holding locks, granted when the
    /// barrier opens and released at once. Held (shared) only in a deadlock the runtime found:
    /// by a participant that had not arrived, over its request of a lock a waiter at the
    /// barrier holds (a `try` `acquire`, a `request`, a `release`: docs/trace-format.md,
    /// "Barriers"), so that the trace shows the cycle `L -> barrier -> L`. Serialized
    /// `barrier`; added within version 1: older readers refuse it, every older trace still
    /// reads.
    Barrier,
}

/// The mode in which a lock is requested or held.
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// Exclusive: a mutex lock or a write lock.
    #[cfg_attr(feature = "serde", serde(rename = "w"))]
    Exclusive,
    /// Shared: a read lock.
    #[cfg_attr(feature = "serde", serde(rename = "r"))]
    Shared,
    /// A read lock that does not wait behind queued writers (parking_lot's `read_recursive`).
    #[cfg_attr(feature = "serde", serde(rename = "rr"))]
    SharedRecursive,
    /// An upgradable read lock: excludes writers and other upgradable readers, not readers.
    #[cfg_attr(feature = "serde", serde(rename = "u"))]
    Upgradable,
    /// One permit of a semaphore.
    #[cfg_attr(feature = "serde", serde(rename = "p"))]
    Permit,
}

impl Mode {
    /// Whether a thread requesting `self` must wait while another thread holds the lock in `held`,
    /// ignoring writer preference (see [`Mode::conflicts_with`] for the full rule).
    pub fn excludes(self, held: Mode) -> bool {
        use Mode::*;
        matches!(
            (self, held),
            (Permit, _) | (_, Permit) | (Exclusive, _) | (_, Exclusive) | (Upgradable, Upgradable)
        )
    }

    /// Whether a request in mode `self` can wait for a holder in mode `held`.
    ///
    /// Two shared acquisitions never exclude each other, but parking_lot's and std's RwLocks make a
    /// new (non-recursive) reader wait behind a *queued* writer: if the lock is ever write-locked
    /// (`ever_written`), a plain shared request behind a shared holder can block too.
    pub fn conflicts_with(self, held: Mode, ever_written: bool) -> bool {
        self.excludes(held) || (ever_written && self == Mode::Shared)
    }

    /// Short name used in reports: `write`, `read`, `read_recursive`, `upgradable`, `permit`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Exclusive => "write",
            Mode::Shared => "read",
            Mode::SharedRecursive => "read_recursive",
            Mode::Upgradable => "upgradable",
            Mode::Permit => "permit",
        }
    }
}

/// How many times in a row a thread may fail one `try_*` or timed acquisition (same lock, mode
/// and site, holding the same locks) before the runtime and the analyzer take it for a retry loop
/// (a spin lock's), which waits for the lock as a blocking acquisition does, and check it as one:
/// on a lock the thread holds itself it can never succeed (a `self-deadlock`: a spin lock
/// re-entered by its holder, PyO3/pyo3#916); on a lock another thread holds it orders the held
/// locks before it. A loop that gives up sooner waits for nothing and is not counted as a wait;
/// a successful try ends the streak.
pub const TRY_RETRIES: u32 = 1000;

/// Whether a site (`file:line:col`, or its file) is inside a lock's own `Debug` impl, which peeks
/// at the value with a try (lock_api's, or lockcheck's `sync` module): such a try is not the
/// user's, and printing a held lock is no wait ([`TRY_RETRIES`] does not count it).
pub fn is_peek_site(site: &str) -> bool {
    let lock_api = (site.contains("lock_api-") || site.contains("lock_api/"))
        && ["src/mutex.rs", "src/rwlock.rs", "src/remutex.rs"]
            .iter()
            .any(|f| site.contains(f));
    lock_api || (site.contains("lockcheck") && site.contains("src/sync.rs"))
}

/// What the runtime saw of a semaphore whose available permits were fewer than a request asked
/// for (the `short` of a `request`): whether other holders held some of its permits then. A
/// first-come-first-served semaphore (tokio's) sets its free permits aside for the requests
/// queued before, so a request can lack permits that no holder holds; when no other holder
/// holds any, the permits lacking are the requester's own or set aside for queued requests,
/// which wait, in order, for the requester's own: the runtime's `self-deadlock` of a semaphore.
/// The other holders are the runtime's count at the request, not the analyzer's replay: the
/// threads' streams reach the trace in any order (another holder's `acquire` may come after
/// the request), and an owned permit shows released at once (see the format's owned guards).
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Short {
    /// Other holders held permits of the semaphore.
    Held,
    /// No other holder held a permit of it.
    Alone,
}

/// How an acquisition waits.
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum How {
    /// Blocks until the lock is available (`lock`, `read`, `write`, `acquire`).
    #[default]
    Blocking,
    /// Never blocks (`try_lock`, `try_read`, ...): cannot take part in a deadlock.
    Try,
    /// Blocks at most a timeout (`try_lock_for`, ...): a deadlock would end in a timeout.
    Timed,
}

impl How {
    /// Whether this acquisition can wait forever.
    pub fn blocks(self) -> bool {
        self == How::Blocking
    }
}

/// One resolved backtrace frame.
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Demangled function name, if known.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "fn", default, skip_serializing_if = "Option::is_none")
    )]
    pub function: Option<String>,
    /// Source file, if known.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub file: Option<String>,
    /// Source line, if known.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub line: Option<u32>,
}

/// Per-class statistics, written once at the end of a trace (and by `lockcheck::stats()`).
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassStats {
    /// Successful acquisitions.
    pub acquisitions: u64,
    /// Acquisitions that found the lock taken and had to wait.
    pub contended: u64,
    /// Total wait time in nanoseconds.
    pub wait_total_ns: u64,
    /// Longest wait in nanoseconds.
    pub wait_max_ns: u64,
    /// Total hold time in nanoseconds (measured only while recording or a hold watchdog is on).
    pub hold_total_ns: u64,
    /// Longest hold in nanoseconds.
    pub hold_max_ns: u64,
}

/// One line of a trace.
///
/// Field names are short because a trace holds millions of them; `docs/trace-format.md` spells
/// them out. Unknown fields are ignored by readers, so minor versions can add fields.
///
/// **Exhaustive on purpose** (not `#[non_exhaustive]`, and so [`LockKind`], [`Mode`] and
/// [`How`]): a consumer must not skip an event it does not know, since a skipped `acquire` or
/// `release` falsifies every held set after it. The format makes the same choice (a reader
/// refuses an unknown `e`: `docs/trace-format.md`, "Versioning"), and here a consumer that
/// matches every kind stops compiling when a kind is added, instead of going on without it.
/// Adding one is therefore a breaking change of this crate, made deliberately.
///
/// ```
/// use lockcheck_core::trace::Event;
///
/// /// Whether an event changes what a thread holds: every kind is decided, no `_` arm.
/// fn moves_a_hold(e: &Event) -> bool {
///     match e {
///         Event::Acquire { .. }
///         | Event::Release { .. }
///         | Event::Convert { .. }
///         | Event::CondWait { .. } => true,
///         Event::Header { .. }
///         | Event::Thread { .. }
///         | Event::Class { .. }
///         | Event::Site { .. }
///         | Event::Lock { .. }
///         | Event::Request { .. }
///         | Event::Fail { .. }
///         | Event::Fork { .. }
///         | Event::Join { .. }
///         | Event::Returned { .. }
///         | Event::Drop { .. }
///         | Event::Forget { .. }
///         | Event::Written { .. }
///         | Event::ClassWritten { .. }
///         | Event::HeldAcrossAwait { .. }
///         | Event::Notify { .. }
///         | Event::Forked { .. }
///         | Event::LeftHeld { .. }
///         | Event::Stats { .. } => false,
///     }
/// }
/// assert!(moves_a_hold(&Event::Release { t: 1, l: 2, hold_ns: 0 }));
/// ```
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", serde(tag = "e", rename_all = "snake_case"))]
pub enum Event {
    /// First line of every trace.
    Header {
        /// [`FORMAT_VERSION`] of the writer.
        version: u32,
        /// Process id of the traced program.
        pid: u32,
        /// Program name (argv\[0\]).
        #[cfg_attr(feature = "serde", serde(default))]
        program: String,
        /// Wall-clock start, milliseconds since the Unix epoch.
        #[cfg_attr(feature = "serde", serde(default))]
        start_unix_ms: u64,
        /// The resolution of the `hold_ns` of releases, in nanoseconds: 0 (the default, and what
        /// traces written before the field mean) when hold times are precise, else the step of
        /// the coarse clock they come from (each hold is then within one step of the truth, and
        /// their sum right on average). Wait times are always precise.
        #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "is_zero"))]
        hold_resolution_ns: u64,
    },
    /// A thread was first seen.
    Thread {
        /// Thread number.
        t: ThreadNo,
        /// Thread name, if it has one.
        #[cfg_attr(
            feature = "serde",
            serde(default, skip_serializing_if = "Option::is_none")
        )]
        name: Option<String>,
    },
    /// A lock class was first used.
    Class {
        /// Class number.
        c: ClassNo,
        /// Cross-process identity: the user-given name, or the construction site `file:line:col`.
        key: String,
        /// What kind of lock.
        kind: LockKind,
    },
    /// An acquisition site was first used; `frames` is the backtrace captured there, if any.
    Site {
        /// Site number.
        s: SiteNo,
        /// `file:line:col` of the acquisition.
        loc: String,
        /// Backtrace of the first acquisition at this site (innermost first).
        #[cfg_attr(
            feature = "serde",
            serde(default, skip_serializing_if = "Vec::is_empty")
        )]
        frames: Vec<Frame>,
    },
    /// A lock instance was first used. Repeated for a lock already declared only to give a
    /// semaphore's `permits` (the runtime learns them at its first blocking request); readers keep
    /// the first class and the most permits given, less those a [`Event::Forget`] removed since.
    Lock {
        /// Lock number.
        l: LockNo,
        /// Its class.
        c: ClassNo,
        /// Semaphore permits, for semaphores.
        #[cfg_attr(
            feature = "serde",
            serde(default, skip_serializing_if = "Option::is_none")
        )]
        permits: Option<u64>,
    },
    /// A thread is about to make a blocking acquisition, written before the detector's checks
    /// run, so that an acquisition the runtime stops (a panic on a self-deadlock or an inversion)
    /// is still in the trace. The lockcheck runtime writes it whenever the thread already holds a
    /// lock (an acquisition holding nothing can neither make a dependency nor wait for itself);
    /// other writers may write it for every wait, or never. A following `acquire` of the same lock
    /// and mode by the thread grants it; a request never granted is a dependency that was still
    /// waiting (or was stopped).
    Request {
        /// Thread.
        t: ThreadNo,
        /// Lock.
        l: LockNo,
        /// Requested mode.
        m: Mode,
        /// Acquisition site.
        #[cfg_attr(
            feature = "serde",
            serde(default, skip_serializing_if = "Option::is_none")
        )]
        s: Option<SiteNo>,
        /// Permits requested at once (a semaphore's `acquire_many(n)`); 1 for every other
        /// request, and when absent (traces written before the field).
        #[cfg_attr(
            feature = "serde",
            serde(default = "one", skip_serializing_if = "is_one")
        )]
        n: u32,
        /// A semaphore's permits as the runtime saw them at this request, when they were fewer
        /// than `n` (see [`Short`]); `None` for every other request, and when absent (traces
        /// written before the field, other formats).
        #[cfg_attr(
            feature = "serde",
            serde(default, skip_serializing_if = "Option::is_none")
        )]
        short: Option<Short>,
    },
    /// A thread acquired a lock.
    Acquire {
        /// Thread.
        t: ThreadNo,
        /// Lock.
        l: LockNo,
        /// Mode.
        m: Mode,
        /// Whether it could have blocked forever.
        #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "is_blocking"))]
        how: How,
        /// Acquisition site.
        #[cfg_attr(
            feature = "serde",
            serde(default, skip_serializing_if = "Option::is_none")
        )]
        s: Option<SiteNo>,
        /// Time spent waiting, in nanoseconds (0 if uncontended or unmeasured).
        #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "is_zero"))]
        wait_ns: u64,
    },
    /// A `try_*` or timed acquisition failed.
    Fail {
        /// Thread.
        t: ThreadNo,
        /// Lock.
        l: LockNo,
        /// Requested mode.
        m: Mode,
        /// `try` or `timed`.
        how: How,
        /// Acquisition site.
        #[cfg_attr(
            feature = "serde",
            serde(default, skip_serializing_if = "Option::is_none")
        )]
        s: Option<SiteNo>,
        /// Time waited before giving up, in nanoseconds (of a streak of `n`: the longest).
        #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "is_zero"))]
        wait_ns: u64,
        /// Failures this event stands for: a streak of identical failures in a row (same
        /// thread, lock, mode, how and site, nothing else of the thread in between: the held
        /// set unchanged), written as one event by the lockcheck runtime so that a spinning
        /// `try_lock` does not flood the trace. 1 when absent (traces written before the field).
        /// Readers count it as `n` failures ([`TRY_RETRIES`]).
        #[cfg_attr(
            feature = "serde",
            serde(default = "one", skip_serializing_if = "is_one")
        )]
        n: u32,
    },
    /// A thread released a lock (or one permit, or one read share).
    Release {
        /// Thread.
        t: ThreadNo,
        /// Lock.
        l: LockNo,
        /// Hold time in nanoseconds (0 if unmeasured).
        #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "is_zero"))]
        hold_ns: u64,
    },
    /// `n` permits of semaphore `l` left it for good (tokio's `forget_permits`, a permit's
    /// `forget`): its permits, as the `lock` events gave them, are `n` fewer from here (until a
    /// later `lock` event gives more, e.g. after `add_permits`).
    Forget {
        /// Lock (a semaphore).
        l: LockNo,
        /// Permits removed.
        n: u64,
    },
    /// RwLock `l` was write-locked before it first appeared in this trace (a recording started
    /// mid-run, after the runtime saw its first write): readers take it as ever written, as an
    /// exclusive request in the trace would make it (a read-read link on it can block).
    Written {
        /// Lock (an RwLock).
        l: LockNo,
    },
    /// An RwLock of class `c` was write-locked before the class first appeared in this trace (a
    /// recording started mid-run), perhaps through an instance the trace never shows: the class
    /// level's read-read rule takes the class as written by a write ordered with nothing, as
    /// [`Event::Written`] does for an instance.
    ClassWritten {
        /// Class (of RwLocks).
        c: ClassNo,
    },
    /// A held lock changed mode in place (upgrade or downgrade).
    Convert {
        /// Thread.
        t: ThreadNo,
        /// Lock.
        l: LockNo,
        /// New mode.
        m: Mode,
    },
    /// A thread started waiting on a condition variable, releasing `l`.
    CondWait {
        /// Thread.
        t: ThreadNo,
        /// Condition variable number (a lock number of kind condvar).
        cv: LockNo,
        /// The mutex released for the wait (retaken by a following `acquire`).
        l: LockNo,
        /// A wait with a timeout (`wait_for`, `wait_timeout`, ...), which ends by itself: a
        /// notify it misses only delays it. Added within version 1 (older readers ignore the
        /// JSON field; an `.lct` record that has it is refused by them).
        #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "is_false"))]
        timed: bool,
    },
    /// A thread spawned another (happens-before: everything before in `t` precedes `child`).
    Fork {
        /// Parent thread.
        t: ThreadNo,
        /// Child thread.
        child: ThreadNo,
    },
    /// A thread joined another (happens-before: everything in `child` precedes what follows in `t`;
    /// for a `scope` join, everything up to `child`'s [`Event::Returned`] if it wrote one).
    Join {
        /// Joining thread.
        t: ThreadNo,
        /// Joined thread.
        child: ThreadNo,
        /// The implicit join at a scope's end (`std::thread::scope`), which waits for `child`'s
        /// closure but not for its thread-local destructors (rust-lang/rust#116179), unlike an
        /// explicit join. Added within version 1 (older readers ignore the JSON field; an `.lct`
        /// record that has it is refused by them).
        #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "is_false"))]
        scope: bool,
    },
    /// Thread `t`'s closure returned (a thread started by `lockcheck::thread`); what `t` does from
    /// here on (its thread-local destructors) is not ordered before a `scope` [`Event::Join`] of
    /// it. The lockcheck runtime writes it for every thread it starts while recording, when the
    /// thread's closure returns. Added within version 1: older readers refuse it.
    Returned {
        /// The thread.
        t: ThreadNo,
    },
    /// A lock instance was dropped; its number is never used again.
    Drop {
        /// Lock.
        l: LockNo,
    },
    /// A sync lock held across an `.await` (feature `tokio`): `h`, taken by holder `ht` at `hs`,
    /// was still held while that holder was suspended at an `.await`, seen when holder `t` (another
    /// task on the same thread, or `ht` itself waiting for an async lock) requested `l` in mode
    /// `m` at `s`. A thread blocked by a guard whose holder cannot resume. Added within version
    /// 1: older readers refuse it.
    HeldAcrossAwait {
        /// The requesting holder (a thread, or a task: bit 62 set).
        t: ThreadNo,
        /// The lock it requested.
        l: LockNo,
        /// The requested mode.
        m: Mode,
        /// Where it was requested.
        #[cfg_attr(
            feature = "serde",
            serde(default, skip_serializing_if = "Option::is_none")
        )]
        s: Option<SiteNo>,
        /// The sync lock held across the `.await`.
        h: LockNo,
        /// The holder that took `h` and is suspended (a task; 0: a runtime's root future).
        #[cfg_attr(feature = "serde", serde(default))]
        ht: ThreadNo,
        /// Where `h` was taken.
        #[cfg_attr(
            feature = "serde",
            serde(default, skip_serializing_if = "Option::is_none")
        )]
        hs: Option<SiteNo>,
    },
    /// A thread notified a condition variable (`notify_one`, `notify_all`) at `s`. What the
    /// lost-wakeup rule needs besides: the locks the thread held and took before it, which its
    /// own events show. Added within version 1: older readers refuse it.
    Notify {
        /// Thread.
        t: ThreadNo,
        /// Condition variable number (as in [`Event::CondWait`]).
        cv: LockNo,
        /// Where it notified.
        #[cfg_attr(
            feature = "serde",
            serde(default, skip_serializing_if = "Option::is_none")
        )]
        s: Option<SiteNo>,
    },
    /// This trace is a forked child's (Linux): its process was forked from process `parent`
    /// (whose trace is another file) by thread `t`, the child's only thread at the fork. Written
    /// right after the header of the child's trace. `fork(2)` copies only the calling thread: a
    /// lock another thread of the parent held at that moment stays held in the child by a thread
    /// that does not exist there (see [`Event::LeftHeld`]). Added within version 1: older readers
    /// refuse it.
    Forked {
        /// The parent process's id.
        parent: u32,
        /// The forking thread (the child's thread that carries on).
        t: ThreadNo,
    },
    /// In a forked child's trace: lock `l` is held by a thread of the parent process that the
    /// fork did not copy, in a mode that excludes mode `m`, found when thread `t`, the process's
    /// only thread and not a holder of `l`, requested `l` in mode `m` at `s` and the lock was
    /// taken. Nothing can ever release it: a deadlock of one thread. Written before the request
    /// is refused (the runtime's report). Added within version 1: older readers refuse it.
    LeftHeld {
        /// The requesting thread.
        t: ThreadNo,
        /// The lock left held.
        l: LockNo,
        /// The requested mode.
        m: Mode,
        /// Where it was requested.
        #[cfg_attr(
            feature = "serde",
            serde(default, skip_serializing_if = "Option::is_none")
        )]
        s: Option<SiteNo>,
    },
    /// Statistics of one class, written at the end of a trace.
    Stats {
        /// Class.
        c: ClassNo,
        /// The figures.
        #[cfg_attr(feature = "serde", serde(flatten))]
        stats: ClassStats,
    },
}

#[cfg(feature = "serde")]
fn one() -> u32 {
    1
}

#[cfg(feature = "serde")]
fn is_false(v: &bool) -> bool {
    !*v
}

#[cfg(feature = "serde")]
fn is_one(v: &u32) -> bool {
    *v == 1
}

#[cfg(feature = "serde")]
fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[cfg(feature = "serde")]
fn is_blocking(h: &How) -> bool {
    *h == How::Blocking
}

impl Event {
    /// Encodes the event as one JSON line (with the trailing newline) onto `out`, exactly as the
    /// `serde` feature's `Serialize` would (field order, omitted defaults, escapes).
    ///
    /// Hand-written (see the private `json` module) so that the runtime, which records traces, needs no
    /// serde: the runtime must not change its users' dependency graph.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        crate::json::write_event(self, out);
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "serde")]
    #[test]
    fn events_round_trip_through_json_lines() {
        let events = vec![
            Event::Header {
                version: FORMAT_VERSION,
                pid: 7,
                program: "p".into(),
                start_unix_ms: 1,
                hold_resolution_ns: 0,
            },
            Event::Header {
                version: FORMAT_VERSION,
                pid: 7,
                program: "p".into(),
                start_unix_ms: 1,
                hold_resolution_ns: 4_000_000,
            },
            Event::Class {
                c: 1,
                key: "src/a.rs:3:9".into(),
                kind: LockKind::Rwlock,
            },
            Event::Acquire {
                t: 1,
                l: 2,
                m: Mode::Shared,
                how: How::Try,
                s: Some(4),
                wait_ns: 0,
            },
            Event::Stats {
                c: 1,
                stats: ClassStats {
                    acquisitions: 3,
                    ..Default::default()
                },
            },
        ];
        let mut buf = Vec::new();
        for e in &events {
            e.write_line(&mut buf);
        }
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text.lines().count(), events.len());
        assert!(
            text.contains(r#"{"e":"acquire","t":1,"l":2,"m":"r","how":"try","s":4}"#),
            "{text}"
        );
        let back: Vec<Event> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, events);
    }

    #[test]
    fn shared_modes_conflict_only_behind_writers() {
        assert!(!Mode::Shared.conflicts_with(Mode::Shared, false));
        assert!(Mode::Shared.conflicts_with(Mode::Shared, true));
        assert!(!Mode::SharedRecursive.conflicts_with(Mode::Shared, true));
        assert!(Mode::Shared.conflicts_with(Mode::Exclusive, false));
        assert!(Mode::Upgradable.conflicts_with(Mode::Upgradable, false));
        assert!(!Mode::Upgradable.conflicts_with(Mode::Shared, false));
    }
}
