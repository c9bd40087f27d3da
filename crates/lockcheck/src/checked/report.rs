//! Violations: what was found, formatted in the spirit of lockdep's "possible unsafe locking
//! scenario", printed to stderr, emitted as `tracing` events and kept for [`violations`].

use super::class::class_info;
use super::state::internal;
use lockcheck_core::trace::{LockKind, Mode};
use parking_lot::Mutex as PlMutex;
use std::fmt::Write as _;

/// The kind of a finding.
///
/// Kinds are added as lockcheck learns to find more (`held-across-await` came that way), so the
/// enum is `#[non_exhaustive]`: a `match` on it needs a `_` arm, and a new kind does not break
/// the code of a user who matches on the ones they handle. [`name`](Self::name) is a stable
/// text for every kind.
///
/// ```
/// use lockcheck::ViolationKind;
///
/// fn hangs(k: ViolationKind) -> bool {
///     match k {
///         ViolationKind::Deadlock | ViolationKind::SelfDeadlock => true,
///         _ => false,
///     }
/// }
/// assert!(hangs(ViolationKind::Deadlock));
/// ```
///
/// Outside lockcheck, a `match` that names every kind of today is still not exhaustive:
///
/// ```compile_fail,E0004
/// use lockcheck::ViolationKind as K;
///
/// fn name(k: K) -> &'static str {
///     match k {
///         K::LockOrderInversion => "lock-order-inversion",
///         K::ClassInversion => "class-lock-order-inversion",
///         K::SelfDeadlock => "self-deadlock",
///         K::RecursiveRead => "recursive-read",
///         K::Deadlock => "deadlock",
///         K::WaitTimeout { .. } => "wait-timeout",
///         K::LongWait { .. } => "long-wait",
///         K::LongHold { .. } => "long-hold",
///         K::CondvarWait { .. } => "condvar-wait-holding-lock",
///         K::LostWakeup => "condvar-lost-wakeup",
///         K::Incomplete { .. } => "incomplete",
///         K::HeldAcrossAwait => "held-across-await",
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ViolationKind {
    /// Two (or more) locks were taken in opposite orders by different threads.
    LockOrderInversion,
    /// Lock classes were taken in opposite orders (possibly on different instances): the same bug
    /// waiting for an unlucky pairing of objects.
    ClassInversion,
    /// A thread acquires a lock it already holds: it would block forever.
    SelfDeadlock,
    /// A thread read-locks an RwLock it already read-holds: it deadlocks if a writer queues between.
    RecursiveRead,
    /// Threads are blocked waiting for each other right now (the wait-for graph has a cycle).
    Deadlock,
    /// A blocking acquisition waited longer than its class's timeout policy allows.
    WaitTimeout {
        /// The policy's limit.
        limit: std::time::Duration,
    },
    /// The watchdog saw a thread wait longer than `LOCKCHECK_WAIT_WARN`.
    LongWait {
        /// How long it had waited when reported.
        waited: std::time::Duration,
        /// The threshold.
        limit: std::time::Duration,
    },
    /// A condvar wait while holding another lock that a notifier takes (opt-in warning).
    CondvarWait {
        /// Whether a notifier was seen holding that lock (else: no notify seen yet).
        notifier_seen: bool,
    },
    /// A condvar notified by a thread that took, since its last wait on or notify of it, none of
    /// the mutex its waiters wait with (opt-in warning, with the condvar rule): a waiter checks
    /// its condition under that mutex and then waits, and a notify that comes between the two is
    /// lost, so the wait may never end. The edge's `site` is the notify, its `held_site` the wait,
    /// `acquired` the mutex the notifier did not take.
    LostWakeup,
    /// The watchdog saw a lock held longer than `LOCKCHECK_HOLD_WARN`.
    LongHold {
        /// How long it had been held when reported.
        held_for: std::time::Duration,
        /// The threshold.
        limit: std::time::Duration,
    },
    /// A limit of the online detector was hit, so something went unchecked: the absence of other
    /// findings is no longer proof that none exist (run `lockcheck analyze` on a trace). Reported
    /// once per limit. The edge is the dependency being checked when the limit was hit.
    Incomplete {
        /// Which limit: `search-steps` (a cycle search stopped after `bound` steps, so cycles
        /// through that dependency may be unreported), `edge-variants` (an edge already kept
        /// `bound` groups of distinct dependencies, and a new one needing another was dropped: a
        /// group is one dependency at instance level, one shape at class level), `dependencies`
        /// (the graph keeps `bound` dependencies in all, and a new one was dropped), `classes` (the
        /// class table holds `bound` classes: locks of new sites or names are checked at instance
        /// level only; the edge names the first such lock and its construction site), `instances`
        /// (instance numbers wrapped after `bound` locks), `kept-findings`
        /// ([`violations`] is full: later findings are only printed), or one of the opt-in
        /// condvar rule's: `condvar-window-locks`, `condvar-notifier-locks` (a condvar's
        /// notifier locks are no longer known in full, so its waits are checked against every
        /// lock they hold, which may warn falsely) and `condvar-window-condvars` (a thread's
        /// window start on a condvar was forgotten: a hazard through it may be unreported); the
        /// edge names the thread only. And `channel-message-order` (bound 1): a `SyncSender`
        /// handle used by a second thread after a receive took a waiting send through it as
        /// ordered (one sending thread assumed); the edge names the channel and the send. And
        /// `permit-nests`: a semaphore's permits requested by holders of some of them, more
        /// holders than the `bound` kept with their fork/join order, and the kept ones able to
        /// run with a request fall short of the permits unless the others (only counted) make up
        /// the difference; the edge names that request.
        limit: &'static str,
        /// The limit's value.
        bound: u64,
    },
    /// A sync guard (`lockcheck::Mutex`, `RwLock`, `sync::Mutex`) taken in a task is still held
    /// while that task is suspended at an `.await` (another task runs on its thread and acquires
    /// a lock, or the task itself waits for an async lock): a task needing it blocks the thread.
    /// Found with the `tokio` feature.
    HeldAcrossAwait,
}

impl ViolationKind {
    /// Stable name: `lock-order-inversion`, `class-lock-order-inversion`, `self-deadlock`,
    /// `recursive-read`, `deadlock`, `wait-timeout`, `long-wait`, `long-hold`,
    /// `condvar-wait-holding-lock`, `condvar-lost-wakeup`, `incomplete`, `held-across-await`.
    pub fn name(self) -> &'static str {
        match self {
            ViolationKind::LockOrderInversion => "lock-order-inversion",
            ViolationKind::ClassInversion => "class-lock-order-inversion",
            ViolationKind::SelfDeadlock => "self-deadlock",
            ViolationKind::RecursiveRead => "recursive-read",
            ViolationKind::Deadlock => "deadlock",
            ViolationKind::WaitTimeout { .. } => "wait-timeout",
            ViolationKind::LongWait { .. } => "long-wait",
            ViolationKind::LongHold { .. } => "long-hold",
            ViolationKind::CondvarWait { .. } => "condvar-wait-holding-lock",
            ViolationKind::LostWakeup => "condvar-lost-wakeup",
            ViolationKind::Incomplete { .. } => "incomplete",
            ViolationKind::HeldAcrossAwait => "held-across-await",
        }
    }
}

/// A lock as named in a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRef {
    /// The class: the user-given name, or the construction site `file:line:col`.
    pub class: String,
    /// Mutex, RwLock, Semaphore, Once (also `OnceLock`, `LazyLock`), or End (a thread's or task's
    /// end, awaited by a join).
    pub kind: LockKind,
    /// The instance number (unique in the process, never reused).
    pub instance: u64,
}

impl LockRef {
    pub(crate) fn new(instance: u64, class: u32) -> LockRef {
        let info = class_info(class);
        LockRef {
            class: info.key,
            kind: info.kind,
            instance,
        }
    }

    /// The kind as reports write it before the class; `None` for a thread's or task's end and a
    /// channel, whose class already says what it is (`end of thread spawned at file:line:col`,
    /// `channel created at file:line:col`, the names the analyzer shows too).
    fn kind_name(&self) -> Option<&'static str> {
        Some(match self.kind {
            LockKind::Mutex => "Mutex",
            LockKind::Rwlock => "RwLock",
            LockKind::Semaphore => "Semaphore",
            LockKind::Condvar => "Condvar",
            LockKind::Unknown => "lock",
            LockKind::Once => "Once",
            // Its class already says what it is (`channel created at file:line:col`).
            LockKind::End | LockKind::Channel | LockKind::Barrier => return None,
        })
    }
}

impl std::fmt::Display for LockRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(kind) = self.kind_name() {
            write!(f, "{kind} ")?;
        }
        write!(f, "`{}` #{}", self.class, self.instance)
    }
}

/// One edge of a cycle: `thread` acquired `acquired` while holding `held`.
///
/// `{:?}` is one short structured record (no backtrace: [`EdgeInfo::backtrace`] resolves it).
#[derive(Clone)]
pub struct EdgeInfo {
    /// The thread as reports name it: its std name and std's `ThreadId` (`worker (ThreadId(3))`),
    /// or for an unnamed thread `<unnamed>`, its `ThreadId` and, if it was started through
    /// [`lockcheck::thread`](crate::thread), where and by which function it was spawned.
    pub thread: String,
    /// lockcheck's number for the thread.
    pub thread_id: u64,
    /// The lock held on the cycle.
    pub held: LockRef,
    /// The mode it was held in.
    pub held_mode: Mode,
    /// Where it was acquired (`file:line:col`).
    pub held_site: String,
    /// The lock being acquired.
    pub acquired: LockRef,
    /// The mode requested.
    pub mode: Mode,
    /// Where it was acquired (`file:line:col`): the line that makes this edge.
    pub site: String,
    /// Other locks held at the time.
    pub other_held: Vec<LockRef>,
    /// The acquisition was a `try_*` that failed
    /// [`TRY_RETRIES`](lockcheck_core::trace::TRY_RETRIES) times in a row (a retry loop, a spin
    /// lock's), checked as the blocking acquisition it amounts to, not a blocking call.
    pub retried: bool,
    pub(crate) backtrace: Option<Trace>,
}

impl std::fmt::Debug for EdgeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("EdgeInfo");
        d.field("thread", &self.thread)
            .field("thread_id", &self.thread_id)
            .field(
                "held",
                &format_args!(
                    "{} ({}) at {}",
                    self.held,
                    mode_name(self.held_mode),
                    self.held_site
                ),
            )
            .field(
                "acquired",
                &format_args!(
                    "{} ({}) at {}",
                    self.acquired,
                    mode_name(self.mode),
                    self.site
                ),
            );
        if !self.other_held.is_empty() {
            let others: Vec<String> = self.other_held.iter().map(|l| l.to_string()).collect();
            d.field("other_held", &others);
        }
        d.finish()
    }
}

impl EdgeInfo {
    /// An entry about one lock (a wait, a hold, a holder): `held` and `acquired` are that lock.
    pub(crate) fn on_lock(
        thread_id: u64,
        thread: String,
        lock: LockRef,
        mode: Mode,
        site: String,
        held_site: String,
    ) -> EdgeInfo {
        EdgeInfo {
            thread,
            thread_id,
            held: lock.clone(),
            held_mode: mode,
            held_site,
            acquired: lock,
            mode,
            site,
            other_held: Vec::new(),
            backtrace: None,
            retried: false,
        }
    }

    /// The resolved backtrace of the acquisition that first made this edge, user frames first
    /// (lockcheck's, lock_api's and std's own frames skipped), one `function at file:line` each.
    /// Symbols are resolved here, not when the edge was made: the capture keeps raw instruction
    /// pointers only. When the capture hit its depth bound before the thread's entry
    /// point, the last line says so.
    pub fn backtrace(&self) -> Vec<String> {
        let Some(bt) = &self.backtrace else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut done = false;
        for &ip in bt.ips.iter() {
            // One instruction pointer can stand for several inlined functions.
            backtrace::resolve(ip as *mut std::ffi::c_void, |sym| {
                if done {
                    return;
                }
                let name = sym
                    .name()
                    .map(|n| format!("{n:#}"))
                    .unwrap_or_else(|| "?".into());
                if name.contains("__rust_begin_short_backtrace")
                    || name.starts_with("std::rt::lang_start")
                {
                    done = true;
                    return;
                }
                if is_internal(&name) || name.starts_with("__rust") {
                    return;
                }
                if out.len() >= 16 {
                    done = true;
                    return;
                }
                let at = match (sym.filename(), sym.lineno()) {
                    (Some(f), Some(l)) => format!(" at {}:{l}", f.display()),
                    _ => String::new(),
                };
                out.push(format!("{name}{at}"));
            });
            if done {
                return out;
            }
        }
        if bt.truncated {
            out.push(format!(
                "... (outer frames not captured: lockcheck keeps the innermost {TRACE_DEPTH})"
            ));
        }
        if let Some(left) = bt.short_stack {
            out.push(format!(
                "... (outer frames not captured: the thread had {} KiB of stack left, too little \
                 to unwind them safely)",
                left >> 10
            ));
        }
        out
    }
}

/// Frames a [`Trace`] keeps, innermost first (lockcheck's own few included). A bound so that a
/// new edge costs a fixed amount of unwinding whatever the depth of the user's stack; a report
/// whose capture hit it says so on its last backtrace line.
pub(crate) const TRACE_DEPTH: usize = 32;

/// A call stack captured raw where lockcheck found something (a new edge, a self-deadlock, a
/// wait): instruction pointers only, at most [`TRACE_DEPTH`], without symbol addresses or names.
/// Unwinding is the whole cost of a capture; looking up each frame's function (what
/// `Backtrace::new_unresolved` does per frame) and resolving symbols wait until a report is shown
/// ([`EdgeInfo::backtrace`]).
#[derive(Clone)]
pub(crate) struct Trace {
    ips: Box<[usize]>,
    /// The stack went deeper than [`TRACE_DEPTH`].
    truncated: bool,
    /// The capture stopped early for want of stack: the bytes the thread had left (see
    /// [`super::unwind::capture`]).
    short_stack: Option<usize>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trace({} frames)", self.ips.len())
    }
}

impl Trace {
    /// Captures the current thread's stack from the caller of this function, or `None` when
    /// backtraces are off (`LOCKCHECK_BACKTRACE=0`). One allocation, of the frames found. The
    /// frames are the system unwinder's, taken with cached unwind rules where it can
    /// ([`super::unwind`]).
    #[inline(never)]
    pub(crate) fn capture() -> Option<Trace> {
        if !crate::config::backtraces() {
            return None;
        }
        let f = super::unwind::capture(super::unwind::Method::Fast)?;
        Some(Trace {
            ips: f.as_slice().into(),
            truncated: f.truncated,
            short_stack: f.short_stack,
        })
    }

    /// The captured instruction pointers, innermost first (for the trace recorder, which
    /// symbolizes a new site's capture on its writer thread).
    pub(crate) fn ips(&self) -> &[usize] {
        &self.ips
    }
}

pub(crate) fn is_internal(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "backtrace::",
        "lockcheck::",
        "<lockcheck::",
        "tokio::",
        "<tokio::",
        "lock_api::",
        "<lock_api::",
        "parking_lot",
        "<parking_lot",
        "std::",
        "core::",
        "alloc::",
        "<core::",
        "<std::",
        "<alloc::",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// A finding of the online detector.
///
/// `{}` is the full report (as printed on stderr); `{:?}` is short and structured: the kind and
/// each edge's thread, locks and sites.
#[derive(Clone)]
pub struct Violation {
    /// What kind of finding.
    pub kind: ViolationKind,
    /// The edges of the cycle, the acquisition that found it first. A self-deadlock has one edge
    /// whose `held` and `acquired` are the same lock.
    pub edges: Vec<EdgeInfo>,
    /// The full report as printed.
    pub message: String,
}

impl std::fmt::Debug for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Violation")
            .field("kind", &self.kind)
            .field("edges", &self.edges)
            .finish_non_exhaustive()
    }
}

impl Violation {
    pub(crate) fn inversion(kind: ViolationKind, edges: Vec<EdgeInfo>) -> Violation {
        Violation {
            kind,
            edges,
            message: String::new(),
        }
    }

    /// The locks involved, in cycle order.
    pub fn locks(&self) -> Vec<&LockRef> {
        self.edges.iter().map(|e| &e.held).collect()
    }

    /// The classes involved (names or `file:line:col`), in cycle order.
    pub fn classes(&self) -> Vec<&str> {
        self.edges.iter().map(|e| e.held.class.as_str()).collect()
    }

    /// The acquisition sites (`file:line:col`) of the cycle's edges.
    pub fn sites(&self) -> Vec<&str> {
        self.edges.iter().map(|e| e.site.as_str()).collect()
    }

    /// Whether any lock of the finding has this class (name or site).
    pub fn involves(&self, class: &str) -> bool {
        self.edges
            .iter()
            .any(|e| e.held.class == class || e.acquired.class == class)
    }

    pub(crate) fn render(&self) -> String {
        let mut s = String::new();
        let e0 = &self.edges[0];
        match self.kind {
            ViolationKind::SelfDeadlock => {
                let _ = writeln!(
                    s,
                    "lockcheck: self-deadlock: {} acquires a lock it already holds",
                    who(&e0.thread)
                );
                render_self_hold(&mut s, e0);
                let _ = writeln!(s, "  this acquisition would block forever.");
                let _ = writeln!(s, "  hint: a guard kept alive by an `if let`/`match` scrutinee or a `let` lives to the end of its block; drop it first");
            }
            ViolationKind::RecursiveRead => {
                let _ = writeln!(s, "lockcheck: possible self-deadlock (recursive read lock): {} read-locks a lock it already holds", who(&e0.thread));
                render_self_hold(&mut s, e0);
                let _ = writeln!(s, "  a writer that queues between the two reads waits for the first and blocks the second: deadlock.");
                let _ = writeln!(
                    s,
                    "  hint: use `read_recursive()`, or drop the first guard before reading again"
                );
            }
            ViolationKind::Deadlock
                if self.edges.len() == 1 && e0.held_site == super::fork::GONE =>
            {
                let _ = writeln!(
                    s,
                    "lockcheck: deadlock: {} waits for {} ({}) at {}",
                    who(&e0.thread),
                    e0.acquired,
                    mode_name(e0.mode),
                    e0.site
                );
                let _ = writeln!(
                    s,
                    "      held by {}: the process was forked while another thread held it",
                    super::fork::GONE
                );
                if !e0.other_held.is_empty() {
                    let names: Vec<String> = e0.other_held.iter().map(|l| l.to_string()).collect();
                    let _ = writeln!(s, "      (this thread holds {})", names.join(", "));
                }
                let _ = writeln!(s);
                let _ = writeln!(
                    s,
                    "  fork() copies only the calling thread: this process has no other thread, and nothing can release the lock."
                );
                let _ = writeln!(
                    s,
                    "  hint: fork while holding the locks the child needs (or with no other thread running), or exec at once"
                );
            }
            ViolationKind::Deadlock => {
                let _ = writeln!(
                    s,
                    "lockcheck: deadlock: {} {} are waiting for each other",
                    self.edges.len(),
                    holders_word(&self.edges)
                );
                for e in &self.edges {
                    let _ = writeln!(
                        s,
                        "  {} waits for {} ({}) at {}",
                        who(&e.thread),
                        e.acquired,
                        mode_name(e.mode),
                        e.site
                    );
                    let _ = writeln!(
                        s,
                        "      while holding {} ({}), taken at {}",
                        e.held,
                        mode_name(e.held_mode),
                        e.held_site
                    );
                }
                let _ = writeln!(s);
                let _ = writeln!(
                    s,
                    "  every thread above holds what the next one waits for: none can go on."
                );
            }
            ViolationKind::WaitTimeout { limit } => {
                let _ = writeln!(
                    s,
                    "lockcheck: wait timeout: thread `{}` waited more than {limit:?} for {} at {}",
                    e0.thread, e0.acquired, e0.site
                );
                let _ = writeln!(
                    s,
                    "  (the per-class timeout policy of `{}`)",
                    e0.acquired.class
                );
                self.render_holders(&mut s);
            }
            ViolationKind::LongWait { waited, limit } => {
                let _ = writeln!(
                    s,
                    "lockcheck: long wait: thread `{}` has waited {waited:?} (> {limit:?}) for {} at {}",
                    e0.thread, e0.acquired, e0.site
                );
                self.render_holders(&mut s);
            }
            ViolationKind::CondvarWait { notifier_seen } => {
                let _ = writeln!(
                    s,
                    "lockcheck: warning: possible deadlock: thread `{}` waits on a condvar (mutex {}) at {} while holding {}",
                    e0.thread, e0.acquired, e0.site, e0.held
                );
                let _ = writeln!(s, "  {} was taken at {}", e0.held, e0.held_site);
                if notifier_seen {
                    let _ = writeln!(s, "  a notifier of this condvar was seen holding it: if it needs it again to notify, it blocks, and this wait never ends.");
                } else {
                    let _ = writeln!(s, "  if the thread that notifies needs that lock, it blocks on it, and this wait never ends.");
                }
                let _ = writeln!(
                    s,
                    "  hint: release other locks before waiting, or notify without taking them"
                );
            }
            ViolationKind::LostWakeup => {
                let _ = writeln!(
                    s,
                    "lockcheck: warning: possible lost wakeup: thread `{}` notifies a condvar at {} without taking {}, the mutex its waiters wait with",
                    e0.thread, e0.site, e0.acquired
                );
                let _ = writeln!(
                    s,
                    "  a waiter waits on it with {} at {}",
                    e0.acquired, e0.held_site
                );
                let _ = writeln!(s, "  the waiter checks its condition under that mutex, then waits: a notify that comes between the two is lost, and the wait may never end.");
                let _ = writeln!(
                    s,
                    "  hint: change what the waiter checks under that mutex, or take it between the change and the notify"
                );
            }
            ViolationKind::HeldAcrossAwait => render_held_across_await(&mut s, &self.edges),
            ViolationKind::LongHold { held_for, limit } => {
                let _ = writeln!(
                    s,
                    "lockcheck: long hold: thread `{}` has held {} for {held_for:?} (> {limit:?}), taken at {}",
                    e0.thread, e0.held, e0.held_site
                );
                for e in &self.edges[1..] {
                    let _ = writeln!(s, "  thread `{}` is waiting for it at {}", e.thread, e.site);
                }
            }
            ViolationKind::Incomplete { limit, bound } => {
                let what = match limit {
                    "search-steps" => format!(
                        "a cycle search stopped after {bound} steps: cycles through this \
                         dependency (and later ones that hit the limit) may be unreported"
                    ),
                    "edge-variants" => format!(
                        "an edge already keeps {bound} groups of distinct dependencies (at \
                         class level one per thread, mode, fork/join clock and held classes): \
                         new ones of it that need another group are dropped and cycles through \
                         them may be unreported"
                    ),
                    "dependencies" => format!(
                        "the lock graph keeps {bound} dependencies: new ones are dropped and \
                         cycles through them may be unreported"
                    ),
                    "kept-findings" => format!(
                        "`lockcheck::violations()` keeps {bound} findings: later ones are only \
                         printed (stderr, tracing), starting with this one"
                    ),
                    "classes" => format!(
                        "the class table keeps {bound} lock classes: locks constructed at a new \
                         site or with a new name from this one on are checked at instance level \
                         only, so class-level inversions through them may be unreported"
                    ),
                    "instances" => format!(
                        "lock instance numbers wrapped around after {bound} locks: a new lock may \
                         share its number with a live one, so findings about either may be wrong \
                         or missing"
                    ),
                    "condvar-window-locks" => format!(
                        "the condvar rule keeps the latest {bound} distinct locks a thread took, \
                         and a notify's window (the locks its thread took since its last wait on \
                         or notify of that condvar) reached past them: that condvar's waits are \
                         now checked against every lock they hold (warnings may be false)"
                    ),
                    "condvar-window-condvars" => format!(
                        "the condvar rule keeps a thread's window start on its latest {bound} \
                         condvars, and one was forgotten: a notify of it by that thread has a \
                         window since the thread's latest condvar event of any kind, which may \
                         lack a lock it took before (a hazard through it may be unreported)"
                    ),
                    "condvar-notifier-locks" => format!(
                        "the condvar rule keeps {bound} notifier locks per condvar, and a notify \
                         added more: that condvar's waits are now checked against every lock \
                         they hold (warnings may be false)"
                    ),
                    "channel-message-order" => "a `SyncSender` handle is used by a second \
                         thread after a receive took a waiting send through it as ordered before \
                         the receiver's later locks (one sender assumed): if the handle is shared \
                         (`Arc<SyncSender>`), an inversion through that earlier send may be \
                         unreported"
                        .to_string(),
                    "permit-nests" => format!(
                        "the permit-nest rule keeps {bound} holders per semaphore that requested \
                         a permit while holding some, with their fork/join order; later ones are \
                         only counted, and the holders able to run with this request fall short \
                         of the permits unless counted ones make up the difference: a deadlock \
                         through them (each waiting for a permit another holds) may be unreported"
                    ),
                    other => format!("limit `{other}` ({bound}) hit"),
                };
                let _ = writeln!(s, "lockcheck: incomplete: {what}");
                if limit.starts_with("condvar-") {
                    let _ = writeln!(s, "  thread `{}` notifying a condvar", e0.thread);
                    let _ = writeln!(s, "  (reported once)");
                } else if matches!(limit, "classes" | "instances") {
                    let _ = writeln!(
                        s,
                        "  first such lock: {} of `{}`, first used by thread `{}`",
                        e0.acquired, e0.site, e0.thread
                    );
                } else {
                    let _ = writeln!(
                        s,
                        "  thread `{}` acquiring {} at {} while holding {}",
                        e0.thread, e0.acquired, e0.site, e0.held
                    );
                }
                if !limit.starts_with("condvar-") {
                    let _ = writeln!(s, "  (reported once; run `lockcheck analyze` on a trace (LOCKCHECK_TRACE) for a full search)");
                }
            }
            ViolationKind::LockOrderInversion if self.is_permit_nest() => {
                render_permit_nest(&mut s, &self.edges)
            }
            ViolationKind::LockOrderInversion | ViolationKind::ClassInversion => {
                let what = if self.kind == ViolationKind::ClassInversion {
                    "lock order inversion between lock classes (possible deadlock with other instances)"
                } else {
                    "lock order inversion (possible deadlock)"
                };
                let _ = writeln!(
                    s,
                    "lockcheck: {what}: {} locks, {} {}",
                    self.edges.len(),
                    self.edges.len(),
                    holders_word(&self.edges)
                );
                let labels: Vec<String> = (1..=self.edges.len()).map(|i| format!("L{i}")).collect();
                for (i, e) in self.edges.iter().enumerate() {
                    let _ = writeln!(s, "  {} = {}", labels[i], e.held);
                }
                let _ = writeln!(s);
                for (i, e) in self.edges.iter().enumerate() {
                    let next = &labels[(i + 1) % labels.len()];
                    let verb = if i == 0 { "is acquiring" } else { "acquired" };
                    let who = if i == 0 { "" } else { "earlier, " };
                    let _ = writeln!(
                        s,
                        "  {who}{} {verb} {next} ({}) at {}{}",
                        self::who(&e.thread),
                        e.acquired,
                        e.site,
                        retried_note(e)
                    );
                    let _ = writeln!(
                        s,
                        "      while holding {} ({}), taken at {}",
                        labels[i],
                        mode_name(e.held_mode),
                        e.held_site
                    );
                    if !e.other_held.is_empty() {
                        let others: Vec<String> =
                            e.other_held.iter().map(|l| l.to_string()).collect();
                        let _ = writeln!(s, "      and also holding {}", others.join(", "));
                    }
                }
                let _ = writeln!(s);
                let _ = writeln!(s, "  possible unsafe locking scenario:");
                let _ = writeln!(s);
                let width = 28;
                let mut header = String::from("       ");
                let mut rule = String::from("       ");
                for e in &self.edges {
                    let label = column_label(&e.thread);
                    let _ = write!(header, "{:<width$}", label);
                    let _ = write!(
                        rule,
                        "{:<width$}",
                        "-".repeat(label.chars().count().min(width - 2))
                    );
                }
                let _ = writeln!(s, "{}", header.trim_end());
                let _ = writeln!(s, "{}", rule.trim_end());
                let n = self.edges.len();
                for (i, l) in labels.iter().enumerate() {
                    let _ = writeln!(s, "  {}{}lock({l});", " ".repeat(5), " ".repeat(i * width));
                }
                for i in 0..n {
                    let next = &labels[(i + 1) % n];
                    let _ = writeln!(
                        s,
                        "  {}{}lock({next});  <- blocks",
                        " ".repeat(5),
                        " ".repeat(i * width)
                    );
                }
                let _ = writeln!(s);
                let _ = writeln!(s, "   *** DEADLOCK ***");
            }
        }
        for e in &self.edges {
            let frames = e.backtrace();
            if frames.is_empty() {
                continue;
            }
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "  backtrace of `{}` acquiring {} at {}:",
                e.thread, e.acquired, e.site
            );
            for (i, f) in frames.iter().enumerate() {
                let _ = writeln!(s, "    {i:>2}: {f}");
            }
        }
        s
    }
}

impl Violation {
    /// Whether this is a semaphore's permits exhausted by nested requests: every edge holds and
    /// requests the one semaphore (see `graph::note_permit_nest`).
    fn is_permit_nest(&self) -> bool {
        self.edges.iter().all(|e| {
            e.held.instance == e.acquired.instance
                && e.mode == Mode::Permit
                && e.held.instance == self.edges[0].held.instance
        })
    }

    fn render_holders(&self, s: &mut String) {
        if self.edges.len() == 1 {
            let _ = writeln!(s, "  holder: not known to lockcheck (a thread that is running; set LOCKCHECK_WAIT_WARN to track every holder)");
        }
        for e in &self.edges[1..] {
            let _ = writeln!(
                s,
                "  held by thread `{}` ({}), taken at {}",
                e.thread,
                mode_name(e.held_mode),
                e.held_site
            );
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A semaphore's permits exhausted by nested requests: each edge a thread that requests a
/// permit while holding some (the last edge found it).
fn render_permit_nest(s: &mut String, edges: &[EdgeInfo]) {
    let e0 = &edges[0];
    let _ = writeln!(
        s,
        "lockcheck: lock order inversion (possible deadlock): {} {} request a permit of {} while holding some of its permits",
        edges.len(),
        holders_word(edges),
        e0.held
    );
    for e in edges.iter().rev() {
        let _ = writeln!(s, "  {} requests a permit at {}", who(&e.thread), e.site);
        let _ = writeln!(s, "      while holding a permit taken at {}", e.held_site);
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "  together they can hold every permit: if they do, each waits for a permit that only \
         another one of them gives back, and none can go on."
    );
    let _ = writeln!(
        s,
        "  hint: give the permit back before requesting another (a recursive call), or take all \
         the permits needed at once"
    );
}

/// Edge 0: the acquisition that found it; edge 1 (when another task): the guard's holder.
fn render_held_across_await(s: &mut String, edges: &[EdgeInfo]) {
    let e0 = &edges[0];
    let holder = edges.get(1).unwrap_or(e0);
    let _ = writeln!(
        s,
        "lockcheck: held across await: `{}` holds {} ({}), taken at {}, while suspended at an `.await`",
        holder.thread,
        holder.held,
        mode_name(holder.held_mode),
        holder.held_site
    );
    if edges.len() > 1 {
        let _ = writeln!(
            s,
            "  meanwhile `{}` runs on the same thread and acquires {} ({}) at {}",
            e0.thread,
            e0.acquired,
            mode_name(e0.mode),
            e0.site
        );
        if e0.acquired == holder.held {
            let _ = writeln!(s, "  the thread would block on itself: the holder can never resume to release it (deadlock).");
        } else {
            let _ = writeln!(s, "  any task on this thread that needs it blocks the thread, and the holder never resumes (deadlock).");
        }
    } else {
        let _ = writeln!(
            s,
            "  it suspends waiting for {} ({}) at {}; a task on this thread that needs the guard's lock blocks the thread.",
            e0.acquired,
            mode_name(e0.mode),
            e0.site
        );
    }
    let _ = writeln!(s, "  hint: drop the guard before the `.await`, or use an async lock (`lockcheck::tokio::Mutex`) if it must stay held");
}

/// How a report names a holder: ``thread `name` `` or, for a task (feature `tokio`), `task #N`
/// with its spawn site when known.
fn who(name: &str) -> String {
    if name.starts_with("task #") {
        name.to_owned()
    } else {
        format!("thread `{name}`")
    }
}

/// `threads`, `tasks`, or `tasks and threads`, after who the edges' holders are.
fn holders_word(edges: &[EdgeInfo]) -> &'static str {
    let tasks = edges
        .iter()
        .filter(|e| e.thread.starts_with("task #"))
        .count();
    match tasks {
        0 => "threads",
        n if n == edges.len() => "tasks",
        _ => "tasks and threads",
    }
}

/// A thread's short label for a column of the scenario table: its name without the
/// `(ThreadId(..), ...)` part, or, for an unnamed thread, its `ThreadId`.
fn column_label(thread: &str) -> &str {
    let (name, rest) = thread.split_once(" (").unwrap_or((thread, ""));
    match rest.find(')') {
        // `rest` starts with `ThreadId(4)`.
        Some(end) if name == "<unnamed>" => &rest[..=end],
        _ => name,
    }
}

/// The two lines of a self-deadlock report: the acquisition and the hold it runs into.
/// What a report says after the site of a retried try's acquisition (see
/// [`EdgeInfo::retried`]).
fn retried_note(e: &EdgeInfo) -> String {
    if e.retried {
        format!(
            " (a try retried {} times in a row: a retry loop, which waits as a blocking acquisition)",
            lockcheck_core::trace::TRY_RETRIES
        )
    } else {
        String::new()
    }
}

fn render_self_hold(s: &mut String, e: &EdgeInfo) {
    let _ = writeln!(
        s,
        "  acquiring {} ({}) at {}{}",
        e.acquired,
        mode_name(e.mode),
        e.site,
        retried_note(e)
    );
    let _ = writeln!(
        s,
        "  already held ({}) since {}",
        mode_name(e.held_mode),
        e.held_site
    );
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Exclusive => "exclusive",
        Mode::Shared => "read",
        Mode::SharedRecursive => "recursive read",
        Mode::Upgradable => "upgradable read",
        Mode::Permit => "permit",
    }
}

/// A violation the acquiring thread must panic on (under `LOCKCHECK=panic`).
///
/// The detector finds violations deep inside closures, where `#[track_caller]` does not reach;
/// a panic there would point at lockcheck's own source. So the checks return a verdict, the lock
/// is not taken, and the public entry point (every one of them `#[track_caller]`, as are
/// lock_api's) raises it: the panic's location is the user's acquisition line. A boxed `str`, so
/// that the hot path's `Result<(), Verdict>` is returned in registers.
#[must_use]
pub(crate) struct Verdict(Box<str>);

impl Verdict {
    pub(crate) fn new(message: String) -> Verdict {
        Verdict(message.into_boxed_str())
    }

    /// Panics with the message (a `String` payload, as before), at the `#[track_caller]` chain's
    /// origin: the user's call.
    #[cold]
    #[inline(never)]
    #[track_caller]
    pub(crate) fn raise(self) -> ! {
        std::panic::panic_any(String::from(self.0))
    }
}

/// Findings kept for [`violations`]; bounded so a program with a systematic bug cannot grow it.
const MAX_KEPT: usize = 10_000;
static FOUND: PlMutex<Vec<Violation>> = PlMutex::new(Vec::new());

/// Renders, stores and prints a violation; the caller then applies the action.
/// Must run with the thread marked busy (see `state::as_busy`).
pub(crate) fn publish(mut v: Violation) -> Violation {
    for e in &mut v.edges {
        crate::thread::name_spawner(&mut e.thread);
    }
    v.message = render_with_room(&v);
    // Not `eprintln!`: see `notice::write_stderr` (a thread blocked in the cycle this reports may
    // hold std's stderr lock).
    super::notice::write_stderr(&format!("{}\n", v.message));
    #[cfg(feature = "tracing")]
    tracing::error!(target: "lockcheck", kind = v.kind.name(), "{}", v.message);
    crate::checked::recorder::on_violation(&v);
    let mut found = internal(&FOUND);
    if found.len() < MAX_KEPT {
        found.push(v.clone());
    } else if !found.iter().any(|f| f.kind == KEPT_FULL) {
        // Full: one last entry says so (the reports themselves still go to stderr and tracing).
        let mut full = Violation {
            kind: KEPT_FULL,
            edges: v.edges.clone(),
            message: String::new(),
        };
        full.message = full.render();
        super::notice::write_stderr(&format!("{}\n", full.message));
        found.push(full);
    }
    v
}

/// Stack left below which a report is rendered on a thread of its own: symbolizing its
/// backtraces parses the program's debug information the first time, which takes more than
/// 64 KiB of stack in a debug build, and a thread with a small stack
/// (`thread::Builder::stack_size`) would overflow it.
const RENDER_STACK: usize = 512 << 10;

/// [`Violation::render`], on this thread if it has [`RENDER_STACK`] left (or its bounds are not
/// known), else on a thread started for it (the caller waits: reports are rare). Should no thread
/// start, the report is rendered here without its backtraces, and says so.
fn render_with_room(v: &Violation) -> String {
    let left = super::unwind::stack_left();
    let Some(left) = left.filter(|&l| l < RENDER_STACK) else {
        return v.render();
    };
    let aside = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("lockcheck-report".into())
            // Busy, as the thread it renders for is: a lock taken while rendering (a global
            // allocator's instrumented lock, say) is neither checked nor waited for in the
            // wait-for graph, whose lock the waiting caller may hold.
            .spawn_scoped(s, || {
                super::state::as_busy(|_| v.render()).unwrap_or_else(|| v.render())
            })
            .ok()
            .map(|h| h.join())
    });
    if let Some(Ok(message)) = aside {
        return message;
    }
    let mut bare = v.clone();
    for e in &mut bare.edges {
        e.backtrace = None;
    }
    let mut message = bare.render();
    let _ = write!(
        message,
        "\n(backtraces left out: the thread had {} KiB of stack left, too little to symbolize \
         them, and no thread could be started to do it)",
        left >> 10
    );
    message
}

/// The finding that says [`violations`] is full.
const KEPT_FULL: ViolationKind = ViolationKind::Incomplete {
    limit: "kept-findings",
    bound: MAX_KEPT as u64,
};

/// Every violation found so far in this process (structured), oldest first.
pub fn violations() -> Vec<Violation> {
    internal(&FOUND).clone()
}

/// Returns and forgets the violations found so far.
pub fn take_violations() -> Vec<Violation> {
    std::mem::take(&mut *internal(&FOUND))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge_with(trace: Option<Trace>) -> EdgeInfo {
        let mut e = EdgeInfo::on_lock(
            1,
            "t".into(),
            LockRef::new(1, 0),
            Mode::Exclusive,
            String::new(),
            String::new(),
        );
        e.backtrace = trace;
        e
    }

    #[inline(never)]
    fn capture_here() -> Option<Trace> {
        let t = Trace::capture();
        std::hint::black_box(t)
    }

    #[inline(never)]
    fn deep(n: usize) -> Option<Trace> {
        if n == 0 {
            return capture_here();
        }
        let t = deep(std::hint::black_box(n - 1));
        std::hint::black_box(t)
    }

    /// A capture (a never-seen edge) must not wait for another thread that holds the
    /// `backtrace` crate's lock, as symbolizing a report or a recorded site does, for
    /// milliseconds when debug information is first loaded: that would serialize threads. The
    /// other thread holds the lock until this one's capture is done, or 10 s.
    #[cfg(not(windows))]
    #[test]
    fn a_capture_does_not_wait_for_another_threads_symbolization() {
        use std::sync::mpsc;
        use std::time::Duration;
        let (holding_tx, holding_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let mut released_by_capture = false;
            // `trace` takes the crate's lock for the whole walk, as `resolve` does.
            backtrace::trace(|_| {
                holding_tx.send(()).expect("test alive");
                released_by_capture = done_rx.recv_timeout(Duration::from_secs(10)).is_ok();
                false
            });
            released_by_capture
        });
        holding_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the holder takes the lock");
        let t = capture_here();
        done_tx.send(()).expect("holder waits");
        assert!(
            holder.join().expect("holder"),
            "the capture waited for the other thread's backtrace lock"
        );
        if crate::config::backtraces() {
            assert!(t.is_some_and(|t| !t.ips.is_empty()));
        }
    }

    #[test]
    fn raw_capture_resolves_to_the_callers_frames_at_report_time() {
        let Some(t) = capture_here() else {
            return; // LOCKCHECK_BACKTRACE=0 in the environment
        };
        assert!(
            !t.truncated,
            "a shallow test stack fits in {TRACE_DEPTH} frames"
        );
        let mut names = Vec::new();
        for &ip in t.ips.iter() {
            backtrace::resolve(ip as *mut std::ffi::c_void, |s| {
                names.push(s.name().map(|n| format!("{n:#}")).unwrap_or_default());
            });
        }
        assert!(
            names.iter().any(|n| n.ends_with("tests::capture_here")),
            "the raw pointers resolve to the capturing function: {names:?}"
        );
        // lockcheck's own frames (this test's included) and backtrace's are left out.
        let frames = edge_with(Some(t)).backtrace();
        assert!(
            frames
                .iter()
                .all(|f| !f.starts_with("backtrace::") && !f.starts_with("lockcheck::")),
            "{frames:?}"
        );
    }

    #[test]
    fn a_capture_cut_at_its_depth_says_so() {
        let Some(t) = deep(2 * TRACE_DEPTH) else {
            return;
        };
        assert!(t.truncated);
        assert_eq!(t.ips.len(), TRACE_DEPTH);
        let frames = edge_with(Some(t)).backtrace();
        assert!(
            frames.last().unwrap().contains("outer frames not captured"),
            "{frames:?}"
        );
    }
}
