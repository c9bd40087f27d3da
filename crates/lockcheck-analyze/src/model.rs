//! The replayed model of one or many traces: threads, locks, classes, sites and the distinct lock
//! dependencies they made.
//!
//! Each trace is one process: its thread, lock, class and site numbers are local to it and are
//! mapped to global ids here. Classes merge across traces by `key`, sites by `loc`, so an order
//! seen in one test binary and its reverse in another meet in one graph.
//!
//! Memory grows with distinct dependencies, not with events: a dependency is identified by
//! (thread, lock, mode, how, held set with modes) and the distinct vector clocks it was made at
//! (see [`MAX_CLOCKS_PER_DEP`]).
//!
//! A `request` (a blocking acquisition about to be checked) is a dependency too: the runtime may
//! stop the thread there with a report, and the trace must then still show what it found. A
//! request of a lock the thread already holds, in a mode that waits for that hold, is a
//! [`SelfDeadlock`].

use crate::hist::Histogram;
use lockcheck_core::deps::{Dependency, VectorClock};
use lockcheck_core::trace::{ClassStats, Event, Frame, How, LockKind, Mode};
use std::collections::HashMap;

/// Global thread id (index into [`Model::threads`]).
pub type ThreadId = u32;
/// Global lock instance id (index into [`Model::locks`]).
pub type LockId = u32;
/// Global class id (index into [`Model::classes`]).
pub type ClassId = u32;
/// Global site id (index into [`Model::sites`]).
pub type SiteId = u32;

/// How many distinct vector clocks a dependency identity keeps exactly.
///
/// A thread's clock changes only at fork and join, so this is almost always 1. The clocks of one
/// identity all belong to one thread and form a chain, and which of them is concurrent with
/// another thread's dependency is an interval of that chain that can lie anywhere in it (a round
/// of spawn and join in the middle of a loop): no subset of the chain is enough for every other
/// dependency, so every distinct clock is kept, up to this bound on memory. Beyond it, the
/// further occurrences are merged into one dependency *without* ordering (an empty clock, which
/// the fork/join filter treats as concurrent with everything): a cycle through it is never
/// removed for fork/join reasons, at worst a false alarm, never a miss, and the analyzer warns
/// (see [`Approximations`]).
pub const MAX_CLOCKS_PER_DEP: usize = 256;
/// How many distinct site combinations a dependency lists for reports and the hierarchy's
/// acquisitions to change. Distinct combinations are code paths, so a program rarely comes near
/// it; those beyond it are counted in [`DepRecord::sites_dropped`] and warned about.
pub const MAX_SITES_PER_DEP: usize = 64;
/// The most locks one thread is taken to hold at once. A real program never comes near it; a
/// trace that does has lost its releases, and a held set that grows without bound would make
/// every later acquisition a dependency on thousands of locks. Beyond it the oldest held lock is
/// forgotten, counted in [`Anomalies::held_overflow`] (a warning, and an incomplete analysis).
pub const MAX_HELD: usize = 64;

/// A thread of some trace.
#[derive(Debug, Clone)]
pub struct ThreadInfo {
    /// Its name in the trace (`T<n>` when it has none).
    pub name: String,
    /// The trace it belongs to.
    pub trace: u32,
}

/// A lock instance of some trace.
#[derive(Debug, Clone)]
pub struct LockInfo {
    /// Its class.
    pub class: ClassId,
    /// The trace it belongs to.
    pub trace: u32,
    /// Its number in that trace.
    pub local: u64,
    /// Whether it was ever requested or held in exclusive mode.
    pub ever_written: bool,
    /// Semaphore permits, if known.
    pub permits: Option<u64>,
}

/// A lock class, merged across traces by key.
#[derive(Debug, Clone)]
pub struct ClassInfo {
    /// Cross-process identity: name or construction site.
    pub key: String,
    /// What kind of lock.
    pub kind: LockKind,
    /// Number of instances seen.
    pub instances: u32,
    /// Whether any instance was ever requested or held in exclusive mode.
    pub ever_written: bool,
    /// Wait times of acquisitions (every acquisition; 0 when uncontended or unmeasured).
    pub wait: Histogram,
    /// Hold times of releases (0 when unmeasured).
    pub hold: Histogram,
    /// Failed `try_*` acquisitions.
    pub try_failures: u64,
    /// Failed timed acquisitions, and the longest time waited by one of them.
    pub timed_failures: u64,
    /// Longest wait of a failed timed acquisition (about the timeout in use), in nanoseconds.
    pub timed_failure_wait_max_ns: u64,
    /// Sum of the `stats` events of this class, if any trace had them.
    pub stats: Option<ClassStats>,
}

/// An acquisition site, merged across traces by location.
#[derive(Debug, Clone)]
pub struct SiteInfo {
    /// `file:line:col` (or whatever location the trace format gives).
    pub loc: String,
    /// Backtrace of the first acquisition there, innermost first (may be empty).
    pub frames: Vec<Frame>,
}

/// The sites of one occurrence of a dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepSites {
    /// Where the lock was requested.
    pub site: Option<SiteId>,
    /// Where each held lock was acquired, in the order of [`Dependency::held`].
    pub held: Vec<Option<SiteId>>,
}

/// One distinct dependency with what reports need about it.
#[derive(Debug, Clone)]
pub struct DepRecord {
    /// The dependency (thread ids are [`ThreadId`]s, locks [`LockId`]s).
    pub dep: Dependency<LockId>,
    /// How many acquisitions made it.
    pub count: u64,
    /// Up to [`MAX_SITES_PER_DEP`] distinct site combinations, first seen first.
    pub sites: Vec<DepSites>,
    /// Occurrences whose site combination was new but not listed ([`MAX_SITES_PER_DEP`]).
    pub sites_dropped: u64,
    /// Whether it comes from a request that was never granted (the trace ended while waiting,
    /// or the runtime stopped the thread there with a report).
    pub pending: bool,
}

/// What kind of self-deadlock a [`SelfDeadlock`] is, named as the runtime names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SelfKind {
    /// The request waits for the thread's own hold: it blocks forever (`self-deadlock`).
    SelfDeadlock,
    /// A read request while the thread read-holds the lock: it deadlocks if a writer queues
    /// between the two reads (`recursive-read`).
    RecursiveRead,
}

impl SelfKind {
    /// The finding's kind: `self-deadlock` or `recursive-read` (as the runtime's report).
    pub fn name(self) -> &'static str {
        match self {
            SelfKind::SelfDeadlock => "self-deadlock",
            SelfKind::RecursiveRead => "recursive-read",
        }
    }

    /// How a blocking request of a lock of `kind` in mode `req` conflicts with the thread's own
    /// hold of it in mode `held`; the same table as the runtime's check. Semaphores are decided
    /// by their permits (holding all of them), condition variables are never held, and locks of
    /// unknown kind (foreign traces, whose Java-style locks are re-entrant) never self-deadlock.
    pub fn of(kind: LockKind, req: Mode, held: Mode) -> Option<SelfKind> {
        use Mode::*;
        match kind {
            LockKind::Semaphore | LockKind::Condvar | LockKind::Unknown => None,
            LockKind::Mutex | LockKind::Once => Some(SelfKind::SelfDeadlock),
            LockKind::Rwlock => match (req, held) {
                (Exclusive, _) | (_, Exclusive) | (Upgradable, Upgradable) => {
                    Some(SelfKind::SelfDeadlock)
                }
                (SharedRecursive, _) | (Shared, Upgradable) | (Permit, _) => None,
                (Shared | Upgradable, _) => Some(SelfKind::RecursiveRead),
            },
        }
    }
}

/// A thread requested a lock it already held, in a mode that waits for its own hold.
#[derive(Debug, Clone)]
pub struct SelfDeadlock {
    /// Which kind.
    pub kind: SelfKind,
    /// The thread (first seen).
    pub thread: ThreadId,
    /// The lock.
    pub lock: LockId,
    /// The requested mode.
    pub mode: Mode,
    /// Where it was requested.
    pub site: Option<SiteId>,
    /// The mode of the hold it runs into.
    pub held_mode: Mode,
    /// Where that hold was acquired.
    pub held_site: Option<SiteId>,
    /// How many requests did it (same lock, kind and sites).
    pub count: u64,
    /// Whether no such request was ever granted (the runtime stopped it, or the thread hung).
    pub pending: bool,
}

/// Where the model is not exact, each becomes one warning: what was kept less precisely, and
/// what that can cost (a false alarm, or a shorter list), never a missed finding.
#[derive(Debug, Clone, Default)]
pub struct Approximations {
    /// Dependency identities seen at more than [`MAX_CLOCKS_PER_DEP`] distinct clocks.
    pub unordered_deps: u64,
    /// Occurrences merged into those identities' unordered dependency.
    pub unordered_occurrences: u64,
    /// Dependencies with more than [`MAX_SITES_PER_DEP`] distinct site combinations.
    pub deps_with_dropped_sites: u64,
}

impl Approximations {
    /// One sentence per approximation made.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.unordered_deps > 0 {
            w.push(format!(
                "{} dependenc{} made at more than {MAX_CLOCKS_PER_DEP} distinct fork/join epochs: \
                 {} later occurrence(s) kept without ordering, so the fork-join filter does not \
                 apply to them (a cycle through them may be a false alarm)",
                self.unordered_deps,
                if self.unordered_deps == 1 { "y" } else { "ies" },
                self.unordered_occurrences,
            ));
        }
        if self.deps_with_dropped_sites > 0 {
            w.push(format!(
                "{} dependenc{} made at more than {MAX_SITES_PER_DEP} distinct site combinations: \
                 reports and the hierarchy's acquisitions to change list the first \
                 {MAX_SITES_PER_DEP} of each",
                self.deps_with_dropped_sites,
                if self.deps_with_dropped_sites == 1 {
                    "y"
                } else {
                    "ies"
                },
            ));
        }
        w
    }
}

/// One input trace.
#[derive(Debug, Clone, Default)]
pub struct TraceInfo {
    /// Its name (file path).
    pub name: String,
    /// Events read.
    pub events: u64,
    /// Bytes read, if known.
    pub bytes: u64,
    /// Where it was cut, if it was truncated and that was allowed.
    pub truncated: Option<String>,
}

/// Things in a trace that make no sense but are survivable; each becomes one warning.
#[derive(Debug, Clone, Default)]
pub struct Anomalies {
    /// Releases of a lock the thread (and no other) did not hold.
    pub release_not_held: u64,
    /// Releases of a lock held by another thread only.
    pub release_by_other_thread: u64,
    /// Events naming a lock without a preceding `lock` event.
    pub unknown_lock: u64,
    /// `lock` events naming a class without a preceding `class` event.
    pub unknown_class: u64,
    /// Events naming a site without a preceding `site` event.
    pub unknown_site: u64,
    /// Conversions of a lock the thread did not hold.
    pub convert_not_held: u64,
    /// Events after the first that were a second header, or events before any header.
    pub misplaced_header: u64,
    /// Acquisitions by a thread already holding [`MAX_HELD`] locks (its oldest was forgotten).
    pub held_overflow: u64,
}

impl Anomalies {
    /// One human sentence per non-zero counter.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let mut add = |n: u64, what: &str| {
            if n > 0 {
                w.push(format!("{n} {what} (ignored)"));
            }
        };
        add(
            self.release_not_held,
            "release(s) of a lock that was not held",
        );
        add(
            self.release_by_other_thread,
            "release(s) of a lock held by another thread",
        );
        add(
            self.unknown_lock,
            "event(s) naming a lock never declared by a `lock` event",
        );
        add(
            self.unknown_class,
            "`lock` event(s) naming an undeclared class",
        );
        add(self.unknown_site, "event(s) naming an undeclared site");
        add(
            self.convert_not_held,
            "mode conversion(s) of a lock that was not held",
        );
        add(self.misplaced_header, "misplaced header(s)");
        if self.held_overflow > 0 {
            w.push(format!(
                "{} acquisition(s) by a thread already holding {MAX_HELD} locks, beyond any real program (releases missing?): the oldest held lock was forgotten each time, so dependencies on it may be missing; results may be incomplete",
                self.held_overflow
            ));
        }
        w
    }
}

/// Everything the analyses need, built by [`ModelBuilder`].
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// The input traces, in order.
    pub traces: Vec<TraceInfo>,
    /// All threads.
    pub threads: Vec<ThreadInfo>,
    /// All lock instances.
    pub locks: Vec<LockInfo>,
    /// All classes.
    pub classes: Vec<ClassInfo>,
    /// All sites.
    pub sites: Vec<SiteInfo>,
    /// Distinct dependencies.
    pub deps: Vec<DepRecord>,
    /// Survivable nonsense seen.
    pub anomalies: Anomalies,
    /// Where the model is less than exact.
    pub approximations: Approximations,
    /// Requests of a lock the thread already held, distinct by (kind, lock, sites).
    pub self_deadlocks: Vec<SelfDeadlock>,
    /// Instances per (class, trace), to name locks briefly.
    pub instances_per_trace: HashMap<(ClassId, u32), u32>,
    /// Sync locks seen held across an `.await` (`held_across_await` events), distinct by
    /// (locks, sites).
    pub held_across_await: Vec<HeldAcrossAwait>,
}

/// A sync lock held by a suspended task (or a runtime's root future) while a holder on the same
/// thread requested a lock: the `held_across_await` event of the lockcheck runtime.
#[derive(Debug, Clone)]
pub struct HeldAcrossAwait {
    /// The requesting thread or task.
    pub thread: ThreadId,
    /// The lock it requested.
    pub lock: LockId,
    /// The requested mode.
    pub mode: Mode,
    /// Where it was requested.
    pub site: Option<SiteId>,
    /// The sync lock held across the `.await`.
    pub held: LockId,
    /// The suspended holder that took it (`None`: a runtime's root future).
    pub holder: Option<ThreadId>,
    /// Where it was taken.
    pub held_site: Option<SiteId>,
    /// How many times it was seen.
    pub count: u64,
}

impl Model {
    /// Total events over all traces.
    pub fn events(&self) -> u64 {
        self.traces.iter().map(|t| t.events).sum()
    }

    /// A display name for a lock: the class key, qualified by the instance number when the class
    /// has several instances (and by the trace when several traces are merged).
    pub fn lock_name(&self, l: LockId) -> String {
        let Some(lock) = self.locks.get(l as usize) else {
            return format!("?{l}");
        };
        let class = &self.classes[lock.class as usize];
        let in_trace = self
            .instances_per_trace
            .get(&(lock.class, lock.trace))
            .copied()
            .unwrap_or(1);
        let base = if in_trace <= 1 {
            class.key.clone()
        } else {
            format!("{}#{}", class.key, lock.local)
        };
        if class.instances > in_trace {
            format!("{base} [{}]", self.trace_file(lock.trace))
        } else {
            base
        }
    }

    /// The file name of a trace (without directories).
    pub fn trace_file(&self, trace: u32) -> String {
        let Some(t) = self.traces.get(trace as usize) else {
            return "?".into();
        };
        std::path::Path::new(&t.name)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| t.name.clone())
    }

    /// A display name for a thread (qualified by the trace file when several are merged).
    pub fn thread_name(&self, t: ThreadId) -> String {
        let Some(th) = self.threads.get(t as usize) else {
            return format!("?{t}");
        };
        if self.traces.len() > 1 {
            format!("{} [{}]", th.name, self.trace_file(th.trace))
        } else {
            th.name.clone()
        }
    }

    /// The location of a site.
    pub fn site_loc(&self, s: SiteId) -> &str {
        self.sites
            .get(s as usize)
            .map(|s| s.loc.as_str())
            .unwrap_or("?")
    }
}

#[derive(Debug, Clone)]
struct Held {
    lock: LockId,
    mode: Mode,
    site: Option<SiteId>,
}

/// A request not yet granted: it becomes a dependency when an `acquire` grants it, and a pending
/// one when the thread does anything else first (a panic's unwinding releases, a new request) or
/// the trace ends; a `fail` of it withdraws it.
#[derive(Debug, Clone)]
struct Pending {
    lock: LockId,
    mode: Mode,
    site: Option<SiteId>,
    /// The self-deadlock finding it made, if any.
    found: Option<u32>,
}

#[derive(Debug, Clone, Default)]
struct ThreadState {
    held: Vec<Held>,
    clock: VectorClock,
    pending: Option<Pending>,
    /// The mutex a `cond_wait` just released: the lockcheck runtime also writes the raw unlock
    /// as a `release` right after, which is the same release, not an anomaly.
    cond_released: Option<LockId>,
}

/// Looked up once or twice per event: a fast hash, not SipHash (a quarter of the replay's time).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct TraceMaps {
    threads: FastMap<u64, ThreadId>,
    locks: FastMap<u64, LockId>,
    classes: FastMap<u32, ClassId>,
    sites: FastMap<u32, SiteId>,
    header_seen: bool,
}

/// Builds a [`Model`] from events, one trace after the other.
///
/// ```
/// use lockcheck_analyze::model::ModelBuilder;
/// use lockcheck_core::trace::{Event, LockKind, Mode, How};
/// let mut b = ModelBuilder::new();
/// b.begin_trace("t.json");
/// b.event(&Event::Class { c: 1, key: "A".into(), kind: LockKind::Mutex });
/// b.event(&Event::Lock { l: 1, c: 1, permits: None });
/// b.event(&Event::Lock { l: 2, c: 1, permits: None });
/// b.event(&Event::Acquire { t: 1, l: 1, m: Mode::Exclusive, how: How::Blocking, s: None, wait_ns: 0 });
/// b.event(&Event::Acquire { t: 1, l: 2, m: Mode::Exclusive, how: How::Blocking, s: None, wait_ns: 0 });
/// let model = b.finish();
/// assert_eq!(model.deps.len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct ModelBuilder {
    model: Model,
    class_by_key: HashMap<String, ClassId>,
    site_by_loc: HashMap<String, SiteId>,
    /// Hash of a dependency identity -> the dependencies with that hash (see `add_dep`).
    dep_index: HashMap<u64, Vec<u32>, foldhash::fast::RandomState>,
    dep_hash: foldhash::fast::RandomState,
    self_index: FastMap<(SelfKind, LockId, Option<SiteId>, Option<SiteId>), u32>,
    threads: Vec<ThreadState>,
    maps: TraceMaps,
    in_trace: bool,
}

impl ModelBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a new trace (a new process: fresh thread, lock, class and site numbers).
    pub fn begin_trace(&mut self, name: &str) {
        if self.in_trace {
            self.end_trace();
        }
        self.model.traces.push(TraceInfo {
            name: name.to_string(),
            ..Default::default()
        });
        self.maps = TraceMaps::default();
        self.in_trace = true;
    }

    /// Ends the current trace: requests still waiting become dependencies (a trace cut in a
    /// deadlock ends with the threads waiting), held locks are forgotten.
    pub fn end_trace(&mut self) {
        if !self.in_trace {
            return;
        }
        self.in_trace = false;
        let tids: Vec<ThreadId> = self.maps.threads.values().copied().collect();
        for t in tids {
            self.settle(t);
            self.threads[t as usize].held.clear();
        }
    }

    /// Records that the current trace was truncated at `pos`.
    pub fn set_truncated(&mut self, pos: String) {
        if let Some(t) = self.model.traces.last_mut() {
            t.truncated = Some(pos);
        }
    }

    /// Adds `bytes` to the current trace's byte count.
    pub fn add_bytes(&mut self, bytes: u64) {
        if let Some(t) = self.model.traces.last_mut() {
            t.bytes += bytes;
        }
    }

    /// Finishes the last trace and returns the model.
    pub fn finish(mut self) -> Model {
        self.end_trace();
        self.model
    }

    fn trace_idx(&mut self) -> u32 {
        if !self.in_trace {
            self.begin_trace("<input>");
        }
        (self.model.traces.len() - 1) as u32
    }

    fn thread(&mut self, t: u64) -> ThreadId {
        if let Some(&id) = self.maps.threads.get(&t) {
            return id;
        }
        let trace = self.trace_idx();
        let id = self.model.threads.len() as ThreadId;
        self.model.threads.push(ThreadInfo {
            name: format!("T{t}"),
            trace,
        });
        let mut clock = VectorClock::new();
        clock.set(id as u64, 1);
        self.threads.push(ThreadState {
            clock,
            ..Default::default()
        });
        self.maps.threads.insert(t, id);
        id
    }

    fn class_for_key(&mut self, key: &str, kind: LockKind) -> ClassId {
        if let Some(&c) = self.class_by_key.get(key) {
            let info = &mut self.model.classes[c as usize];
            if info.kind == LockKind::Unknown {
                info.kind = kind;
            }
            return c;
        }
        let c = self.model.classes.len() as ClassId;
        self.model.classes.push(ClassInfo {
            key: key.to_string(),
            kind,
            instances: 0,
            ever_written: false,
            wait: Histogram::new(),
            hold: Histogram::new(),
            try_failures: 0,
            timed_failures: 0,
            timed_failure_wait_max_ns: 0,
            stats: None,
        });
        self.class_by_key.insert(key.to_string(), c);
        c
    }

    fn new_lock(&mut self, l: u64, class: ClassId, permits: Option<u64>) -> LockId {
        let trace = self.trace_idx();
        let id = self.model.locks.len() as LockId;
        self.model.locks.push(LockInfo {
            class,
            trace,
            local: l,
            ever_written: false,
            permits,
        });
        self.model.classes[class as usize].instances += 1;
        *self
            .model
            .instances_per_trace
            .entry((class, trace))
            .or_default() += 1;
        self.maps.locks.insert(l, id);
        id
    }

    fn lock(&mut self, l: u64) -> LockId {
        if let Some(&id) = self.maps.locks.get(&l) {
            return id;
        }
        // Undeclared lock: give it a class of its own, unique to this trace so it merges with
        // nothing across processes.
        self.model.anomalies.unknown_lock += 1;
        let trace = self.trace_idx();
        let key = format!("<undeclared lock {l} of trace {}>", trace + 1);
        let c = self.class_for_key(&key, LockKind::Unknown);
        self.new_lock(l, c, None)
    }

    fn site(&mut self, s: Option<u32>) -> Option<SiteId> {
        let s = s?;
        match self.maps.sites.get(&s) {
            Some(&id) => Some(id),
            None => {
                self.model.anomalies.unknown_site += 1;
                None
            }
        }
    }

    fn mark_written(&mut self, l: LockId, m: Mode) {
        if m == Mode::Exclusive {
            let lock = &mut self.model.locks[l as usize];
            lock.ever_written = true;
            let c = lock.class;
            self.model.classes[c as usize].ever_written = true;
        }
    }

    fn add_dep(
        &mut self,
        t: ThreadId,
        lock: LockId,
        mode: Mode,
        how: How,
        site: Option<SiteId>,
        pending: bool,
    ) {
        let state = &self.threads[t as usize];
        if state.held.is_empty() {
            return;
        }
        let held = &state.held;
        // The identity (thread, lock, mode, how, held set with modes) is hashed in place and
        // compared against the stored dependencies: no allocation per acquisition, and the held
        // set is stored once (in the dependency), not again in an index key.
        let key = {
            use std::hash::{BuildHasher, Hash, Hasher};
            let mut h = self.dep_hash.build_hasher();
            (t, lock, mode, how, held.len()).hash(&mut h);
            for x in held {
                (x.lock, x.mode).hash(&mut h);
            }
            h.finish()
        };
        let same_identity = |d: &Dependency<LockId>| {
            d.thread == t as u64
                && d.lock == lock
                && d.mode == mode
                && d.how == how
                && d.held.len() == held.len()
                && d.held
                    .iter()
                    .zip(held)
                    .all(|(a, b)| a.0 == b.lock && a.1 == b.mode)
        };
        let same_sites = |s: &DepSites| {
            s.site == site
                && s.held.len() == held.len()
                && s.held.iter().zip(held).all(|(a, b)| *a == b.site)
        };
        let new_sites = || DepSites {
            site,
            held: held.iter().map(|h| h.site).collect(),
        };
        let clock = &state.clock;
        let deps = &mut self.model.deps;
        let approx = &mut self.model.approximations;
        let slots = self.dep_index.entry(key).or_default();
        let bump = |rec: &mut DepRecord, approx: &mut Approximations| {
            rec.count += 1;
            rec.pending &= pending;
            if !rec.sites.iter().any(same_sites) {
                if rec.sites.len() < MAX_SITES_PER_DEP {
                    rec.sites.push(new_sites());
                } else {
                    if rec.sites_dropped == 0 {
                        approx.deps_with_dropped_sites += 1;
                    }
                    rec.sites_dropped += 1;
                }
            }
        };
        // The same identity with this clock, and how many clocks the identity keeps.
        let mut kept = 0usize;
        for &i in slots.iter() {
            let rec = &mut deps[i as usize];
            if !same_identity(&rec.dep) {
                continue;
            }
            if rec.dep.clock == *clock {
                bump(rec, approx);
                return;
            }
            kept += 1;
        }
        let unordered = VectorClock::new();
        let clock = if kept >= MAX_CLOCKS_PER_DEP {
            // Not exact any more: merge into the one occurrence without ordering, which no
            // fork/join argument can remove from a cycle.
            approx.unordered_occurrences += 1;
            if let Some(&i) = slots.iter().find(|&&i| {
                let d = &deps[i as usize].dep;
                same_identity(d) && d.clock == unordered
            }) {
                bump(&mut deps[i as usize], approx);
                return;
            }
            approx.unordered_deps += 1;
            unordered
        } else {
            clock.clone()
        };
        let dep = Dependency {
            thread: t as u64,
            lock,
            mode,
            how,
            held: held.iter().map(|h| (h.lock, h.mode)).collect(),
            clock,
        };
        slots.push(deps.len() as u32);
        deps.push(DepRecord {
            dep,
            count: 1,
            sites: vec![new_sites()],
            sites_dropped: 0,
            pending,
        });
    }

    /// Turns thread `t`'s request that is still waiting into a dependency that was never granted.
    fn settle(&mut self, t: ThreadId) {
        if let Some(p) = self.threads[t as usize].pending.take() {
            self.add_dep(t, p.lock, p.mode, How::Blocking, p.site, true);
        }
    }

    /// Whether thread `t`'s request of `lock` in `mode` waits for its own hold of it; records the
    /// finding and returns its index.
    fn self_check(
        &mut self,
        t: ThreadId,
        lock: LockId,
        mode: Mode,
        site: Option<SiteId>,
        pending: bool,
    ) -> Option<u32> {
        let info = &self.model.locks[lock as usize];
        let kind = self.model.classes[info.class as usize].kind;
        let held = &self.threads[t as usize].held;
        let mut own = held.iter().filter(|h| h.lock == lock);
        let (k, h) = if kind == LockKind::Semaphore {
            // Waits for a permit only when the thread holds all of them.
            let first = own.next()?;
            let count = 1 + own.count() as u64;
            if mode != Mode::Permit || count < info.permits? {
                return None;
            }
            (SelfKind::SelfDeadlock, first)
        } else {
            own.find_map(|h| SelfKind::of(kind, mode, h.mode).map(|k| (k, h)))?
        };
        let (held_mode, held_site) = (h.mode, h.site);
        let key = (k, lock, site, held_site);
        if let Some(&i) = self.self_index.get(&key) {
            let f = &mut self.model.self_deadlocks[i as usize];
            f.count += 1;
            f.pending &= pending;
            return Some(i);
        }
        let i = self.model.self_deadlocks.len() as u32;
        self.model.self_deadlocks.push(SelfDeadlock {
            kind: k,
            thread: t,
            lock,
            mode,
            site,
            held_mode,
            held_site,
            count: 1,
            pending,
        });
        self.self_index.insert(key, i);
        Some(i)
    }

    /// A `held_across_await` event: one finding per distinct (locks, sites). It changes no held
    /// set: the guard's own `acquire` and `release` are in its thread's stream.
    #[allow(clippy::too_many_arguments)]
    fn held_across_await(
        &mut self,
        t: u64,
        l: u64,
        m: Mode,
        s: Option<u32>,
        h: u64,
        ht: u64,
        hs: Option<u32>,
    ) {
        let thread = self.thread(t);
        let lock = self.lock(l);
        let site = self.site(s);
        let held = self.lock(h);
        let held_site = self.site(hs);
        let holder = (ht != 0).then(|| self.thread(ht));
        let found = self
            .model
            .held_across_await
            .iter_mut()
            .find(|f| (f.lock, f.held, f.site, f.held_site) == (lock, held, site, held_site));
        match found {
            Some(f) => f.count += 1,
            None => self.model.held_across_await.push(HeldAcrossAwait {
                thread,
                lock,
                mode: m,
                site,
                held,
                holder,
                held_site,
                count: 1,
            }),
        }
    }

    /// Feeds one event of the current trace.
    pub fn event(&mut self, e: &Event) {
        if let Some(t) = self.model.traces.last_mut() {
            t.events += 1;
        } else {
            self.begin_trace("<input>");
            self.model.traces[0].events = 1;
        }
        match e {
            Event::Header { .. } => {
                if self.maps.header_seen {
                    self.model.anomalies.misplaced_header += 1;
                }
                self.maps.header_seen = true;
            }
            Event::Thread { t, name } => {
                let id = self.thread(*t);
                if let Some(name) = name {
                    self.model.threads[id as usize].name = name.clone();
                }
            }
            Event::Class { c, key, kind } => {
                let id = self.class_for_key(key, *kind);
                self.maps.classes.insert(*c, id);
            }
            Event::Site { s, loc, frames } => {
                let id = match self.site_by_loc.get(loc.as_str()) {
                    Some(&id) => id,
                    None => {
                        let id = self.model.sites.len() as SiteId;
                        self.model.sites.push(SiteInfo {
                            loc: loc.clone(),
                            frames: Vec::new(),
                        });
                        self.site_by_loc.insert(loc.clone(), id);
                        id
                    }
                };
                let info = &mut self.model.sites[id as usize];
                if info.frames.is_empty() && !frames.is_empty() {
                    info.frames = frames.clone();
                }
                self.maps.sites.insert(*s, id);
            }
            Event::Lock { l, c, permits } => {
                let class = match self.maps.classes.get(c) {
                    Some(&id) => id,
                    None => {
                        self.model.anomalies.unknown_class += 1;
                        let trace = self.trace_idx();
                        let key = format!("<undeclared class {c} of trace {}>", trace + 1);
                        let id = self.class_for_key(&key, LockKind::Unknown);
                        self.maps.classes.insert(*c, id);
                        id
                    }
                };
                match self.maps.locks.get(l) {
                    // A repeated declaration: keep the first, but learn the permits (the
                    // runtime declares a semaphore's permits at its first blocking request).
                    Some(&id) => {
                        let lock = &mut self.model.locks[id as usize];
                        if lock.permits.is_none() {
                            lock.permits = *permits;
                        }
                    }
                    None => {
                        self.new_lock(*l, class, *permits);
                    }
                }
            }
            Event::Request { t, l, m, s } => {
                let t = self.thread(*t);
                let l = self.lock(*l);
                let site = self.site(*s);
                self.mark_written(l, *m);
                // The same request twice in a row is one (the runtime's semaphore check records
                // it before its permit check, and the acquisition again).
                let again = self.threads[t as usize]
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.lock == l && p.mode == *m);
                if again {
                    return;
                }
                self.threads[t as usize].cond_released = None;
                self.settle(t);
                let found = self.self_check(t, l, *m, site, true);
                self.threads[t as usize].pending = Some(Pending {
                    lock: l,
                    mode: *m,
                    site,
                    found,
                });
            }
            Event::Acquire {
                t,
                l,
                m,
                how,
                s,
                wait_ns,
            } => {
                let t = self.thread(*t);
                let l = self.lock(*l);
                let site = self.site(*s);
                self.mark_written(l, *m);
                self.threads[t as usize].cond_released = None;
                let granted = match self.threads[t as usize].pending.take() {
                    Some(p) if p.lock == l && p.mode == *m => Some(p),
                    other => {
                        self.threads[t as usize].pending = other;
                        None
                    }
                };
                match granted {
                    Some(p) => {
                        if let Some(i) = p.found {
                            self.model.self_deadlocks[i as usize].pending = false;
                        }
                    }
                    None => {
                        self.settle(t);
                        // A trace without requests: the acquisition itself is the request.
                        if how.blocks() {
                            self.self_check(t, l, *m, site, false);
                        }
                    }
                }
                self.add_dep(t, l, *m, *how, site, false);
                if self.threads[t as usize].held.len() >= MAX_HELD {
                    self.model.anomalies.held_overflow += 1;
                    self.threads[t as usize].held.remove(0);
                }
                self.threads[t as usize].held.push(Held {
                    lock: l,
                    mode: *m,
                    site,
                });
                let c = self.model.locks[l as usize].class;
                self.model.classes[c as usize].wait.record(*wait_ns);
            }
            Event::Fail {
                t,
                l,
                m,
                how,
                s: _,
                wait_ns,
            } => {
                let t = self.thread(*t);
                let l = self.lock(*l);
                self.mark_written(l, *m);
                // A failed try or timed acquisition withdraws its request: it did not block.
                let withdrawn = self.threads[t as usize]
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.lock == l && p.mode == *m);
                if withdrawn {
                    self.threads[t as usize].pending = None;
                } else {
                    self.settle(t);
                }
                let c = self.model.locks[l as usize].class;
                let class = &mut self.model.classes[c as usize];
                if *how == How::Timed {
                    class.timed_failures += 1;
                    class.timed_failure_wait_max_ns = class.timed_failure_wait_max_ns.max(*wait_ns);
                } else {
                    class.try_failures += 1;
                }
            }
            Event::Release { t, l, hold_ns } => {
                let t = self.thread(*t);
                let l = self.lock(*l);
                self.settle(t);
                let cond_released = self.threads[t as usize].cond_released.take();
                let held = &mut self.threads[t as usize].held;
                if let Some(i) = held.iter().rposition(|h| h.lock == l) {
                    held.remove(i);
                } else if cond_released == Some(l) {
                    // The wait's release, written twice.
                } else {
                    // Semaphore permits are legitimately released by other threads.
                    let holder = self
                        .maps
                        .threads
                        .values()
                        .copied()
                        .find(|&o| self.threads[o as usize].held.iter().any(|h| h.lock == l));
                    match holder {
                        Some(o) => {
                            let h = &mut self.threads[o as usize].held;
                            let i = h.iter().rposition(|h| h.lock == l).expect("found above");
                            h.remove(i);
                            let c = self.model.locks[l as usize].class;
                            if self.model.classes[c as usize].kind != LockKind::Semaphore {
                                self.model.anomalies.release_by_other_thread += 1;
                            }
                        }
                        None => self.model.anomalies.release_not_held += 1,
                    }
                }
                let c = self.model.locks[l as usize].class;
                self.model.classes[c as usize].hold.record(*hold_ns);
            }
            Event::Convert { t, l, m } => {
                let t = self.thread(*t);
                let l = self.lock(*l);
                self.settle(t);
                let Some(i) = self.threads[t as usize]
                    .held
                    .iter()
                    .rposition(|h| h.lock == l)
                else {
                    self.model.anomalies.convert_not_held += 1;
                    return;
                };
                let old = self.threads[t as usize].held[i].mode;
                self.mark_written(l, *m);
                // An upgrade waits for the other readers to leave while this thread holds
                // everything it holds: a dependency on the lock in its new mode.
                if *m == Mode::Exclusive && old != Mode::Exclusive {
                    let site = self.threads[t as usize].held[i].site;
                    self.add_dep(t, l, *m, How::Blocking, site, false);
                }
                self.threads[t as usize].held[i].mode = *m;
            }
            Event::CondWait { t, cv: _, l } => {
                let t = self.thread(*t);
                let l = self.lock(*l);
                self.settle(t);
                let held = &mut self.threads[t as usize].held;
                match held.iter().rposition(|h| h.lock == l) {
                    Some(i) => {
                        held.remove(i);
                        self.threads[t as usize].cond_released = Some(l);
                    }
                    None => self.model.anomalies.release_not_held += 1,
                }
            }
            Event::Fork { t, child } => {
                let p = self.thread(*t);
                let c = self.thread(*child);
                if p == c {
                    return;
                }
                self.settle(p);
                let parent_clock = self.threads[p as usize].clock.clone();
                let cs = &mut self.threads[c as usize];
                cs.clock.join(&parent_clock);
                cs.clock.tick(c as u64);
                self.threads[p as usize].clock.tick(p as u64);
            }
            Event::Join { t, child } => {
                let p = self.thread(*t);
                let c = self.thread(*child);
                if p == c {
                    return;
                }
                self.settle(p);
                let child_clock = self.threads[c as usize].clock.clone();
                self.threads[p as usize].clock.join(&child_clock);
                // Anything the child still does (a bad trace) is not before the join.
                self.threads[c as usize].clock.tick(c as u64);
            }
            Event::Drop { .. } => {}
            Event::HeldAcrossAwait {
                t,
                l,
                m,
                s,
                h,
                ht,
                hs,
            } => self.held_across_await(*t, *l, *m, *s, *h, *ht, *hs),
            Event::Stats { c, stats } => {
                let Some(&id) = self.maps.classes.get(c) else {
                    self.model.anomalies.unknown_class += 1;
                    return;
                };
                let s = self.model.classes[id as usize]
                    .stats
                    .get_or_insert_with(Default::default);
                // Saturating: the figures come from the trace, which may be hostile.
                s.acquisitions = s.acquisitions.saturating_add(stats.acquisitions);
                s.contended = s.contended.saturating_add(stats.contended);
                s.wait_total_ns = s.wait_total_ns.saturating_add(stats.wait_total_ns);
                s.wait_max_ns = s.wait_max_ns.max(stats.wait_max_ns);
                s.hold_total_ns = s.hold_total_ns.saturating_add(stats.hold_total_ns);
                s.hold_max_ns = s.hold_max_ns.max(stats.hold_max_ns);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lockcheck_core::trace::LockKind;

    /// Parses JSON lines into events (tests only; the real readers live in `read`).
    pub(crate) fn events(text: &str) -> Vec<Event> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    pub(crate) fn model_of(traces: &[(&str, &str)]) -> Model {
        let mut b = ModelBuilder::new();
        for (name, text) in traces {
            b.begin_trace(name);
            for e in events(text) {
                b.event(&e);
            }
        }
        b.finish()
    }

    fn acq(t: u64, l: u64) -> Event {
        Event::Acquire {
            t,
            l,
            m: Mode::Exclusive,
            how: How::Blocking,
            s: None,
            wait_ns: 0,
        }
    }

    #[test]
    fn repeated_nesting_makes_one_dependency() {
        let mut b = ModelBuilder::new();
        b.event(&Event::Class {
            c: 1,
            key: "A".into(),
            kind: LockKind::Mutex,
        });
        b.event(&Event::Lock {
            l: 1,
            c: 1,
            permits: None,
        });
        b.event(&Event::Lock {
            l: 2,
            c: 1,
            permits: None,
        });
        for _ in 0..1000 {
            b.event(&acq(1, 1));
            b.event(&acq(1, 2));
            b.event(&Event::Release {
                t: 1,
                l: 2,
                hold_ns: 5,
            });
            b.event(&Event::Release {
                t: 1,
                l: 1,
                hold_ns: 10,
            });
        }
        let m = b.finish();
        assert_eq!(m.deps.len(), 1);
        assert_eq!(m.deps[0].count, 1000);
        assert_eq!(m.classes[0].hold.count(), 2000);
        assert_eq!(m.anomalies.warnings(), Vec::<String>::new());
    }

    #[test]
    fn nonsense_is_counted_not_fatal() {
        let mut b = ModelBuilder::new();
        b.event(&Event::Release {
            t: u64::MAX,
            l: u64::MAX,
            hold_ns: 0,
        });
        b.event(&acq(1, 7));
        b.event(&acq(2, 8));
        b.event(&Event::Release {
            t: 2,
            l: 7,
            hold_ns: 0,
        });
        b.event(&Event::Convert {
            t: 3,
            l: 9,
            m: Mode::Shared,
        });
        b.event(&Event::Lock {
            l: 1,
            c: 99,
            permits: None,
        });
        b.event(&Event::Acquire {
            t: 1,
            l: 8,
            m: Mode::Shared,
            how: How::Try,
            s: Some(77),
            wait_ns: 0,
        });
        let m = b.finish();
        assert_eq!(m.anomalies.release_not_held, 1);
        assert_eq!(m.anomalies.release_by_other_thread, 1);
        assert_eq!(m.anomalies.unknown_class, 1);
        assert_eq!(m.anomalies.unknown_site, 1);
        assert_eq!(m.anomalies.convert_not_held, 1);
        assert!(m.anomalies.unknown_lock >= 3);
        assert!(!m.anomalies.warnings().is_empty());
    }

    /// Found by the fuzz smoke: statistics lines whose totals overflow when added up.
    #[test]
    fn huge_statistics_saturate() {
        let mut b = ModelBuilder::new();
        b.event(&Event::Class {
            c: 1,
            key: "A".into(),
            kind: LockKind::Mutex,
        });
        let stats = ClassStats {
            acquisitions: u64::MAX,
            contended: u64::MAX,
            wait_total_ns: u64::MAX,
            wait_max_ns: u64::MAX,
            hold_total_ns: u64::MAX,
            hold_max_ns: u64::MAX,
        };
        for _ in 0..2 {
            b.event(&Event::Stats {
                c: 1,
                stats: stats.clone(),
            });
        }
        let m = b.finish();
        let s = m.classes[0].stats.as_ref().expect("stats kept");
        assert_eq!(s.acquisitions, u64::MAX);
        assert_eq!(s.hold_total_ns, u64::MAX);
    }

    #[test]
    fn fork_orders_parent_before_child_and_join_child_before_parent() {
        let m = model_of(&[(
            "t",
            r#"{"e":"lock","l":1,"c":1}
{"e":"lock","l":2,"c":1}
{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"acquire","t":1,"l":2,"m":"w"}
{"e":"release","t":1,"l":2}
{"e":"release","t":1,"l":1}
{"e":"fork","t":1,"child":2}
{"e":"acquire","t":2,"l":2,"m":"w"}
{"e":"acquire","t":2,"l":1,"m":"w"}
{"e":"release","t":2,"l":1}
{"e":"release","t":2,"l":2}
{"e":"join","t":1,"child":2}
{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"acquire","t":1,"l":2,"m":"w"}
"#,
        )]);
        assert_eq!(m.deps.len(), 3);
        let (a, b, c) = (&m.deps[0].dep, &m.deps[1].dep, &m.deps[2].dep);
        assert!(a.clock.happens_before(a.thread, &b.clock));
        assert!(b.clock.happens_before(b.thread, &c.clock));
    }

    #[test]
    fn a_request_left_waiting_is_a_dependency() {
        let m = model_of(&[(
            "t",
            r#"{"e":"lock","l":1,"c":1}
{"e":"lock","l":2,"c":1}
{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"request","t":1,"l":2,"m":"w"}
"#,
        )]);
        assert_eq!(m.deps.len(), 1);
        assert!(m.deps[0].pending);
    }
}

#[cfg(test)]
mod request_tests {
    use super::tests::model_of;
    use super::*;

    const LOCKS: &str = r#"{"e":"class","c":1,"key":"m","kind":"mutex"}
{"e":"class","c":2,"key":"rw","kind":"rwlock"}
{"e":"class","c":3,"key":"sem","kind":"semaphore"}
{"e":"class","c":4,"key":"a","kind":"mutex"}
{"e":"class","c":5,"key":"b","kind":"mutex"}
{"e":"lock","l":1,"c":1}
{"e":"lock","l":2,"c":2}
{"e":"lock","l":3,"c":3}
{"e":"lock","l":4,"c":4}
{"e":"lock","l":5,"c":5}
"#;

    fn with_locks(body: &str) -> Model {
        model_of(&[("t", &format!("{LOCKS}{body}"))])
    }

    fn kinds(m: &Model) -> Vec<(&'static str, String)> {
        m.self_deadlocks
            .iter()
            .map(|f| (f.kind.name(), m.lock_name(f.lock)))
            .collect()
    }

    #[test]
    fn a_request_of_a_held_mutex_is_a_self_deadlock() {
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"request","t":1,"l":1,"m":"w"}
{"e":"release","t":1,"l":1}
"#,
        );
        assert_eq!(kinds(&m), [("self-deadlock", "m".to_string())]);
        assert!(m.self_deadlocks[0].pending);
        // Released by the unwinding, never granted: also a (pending) dependency on itself.
        assert_eq!(m.deps.len(), 1);
        assert!(m.deps[0].pending);
    }

    #[test]
    fn rwlock_self_conflicts_follow_the_runtime_table() {
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":2,"m":"r"}
{"e":"request","t":1,"l":2,"m":"w"}
{"e":"release","t":1,"l":2}
{"e":"acquire","t":2,"l":2,"m":"r"}
{"e":"request","t":2,"l":2,"m":"r"}
{"e":"acquire","t":2,"l":2,"m":"r"}
{"e":"release","t":2,"l":2}
{"e":"release","t":2,"l":2}
{"e":"acquire","t":3,"l":2,"m":"r"}
{"e":"request","t":3,"l":2,"m":"rr"}
{"e":"acquire","t":3,"l":2,"m":"rr"}
{"e":"release","t":3,"l":2}
{"e":"release","t":3,"l":2}
{"e":"acquire","t":4,"l":2,"m":"u"}
{"e":"request","t":4,"l":2,"m":"r"}
{"e":"acquire","t":4,"l":2,"m":"r"}
"#,
        );
        assert_eq!(
            kinds(&m),
            [
                ("self-deadlock", "rw".to_string()),
                ("recursive-read", "rw".to_string())
            ]
        );
        // The recursive read was granted (under `warn`): not pending.
        assert!(!m.self_deadlocks[1].pending);
    }

    #[test]
    fn a_semaphore_self_deadlocks_only_holding_every_permit() {
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":3,"m":"p"}
{"e":"lock","l":3,"c":3,"permits":2}
{"e":"request","t":1,"l":3,"m":"p"}
{"e":"acquire","t":1,"l":3,"m":"p"}
"#,
        );
        assert!(m.self_deadlocks.is_empty(), "{:?}", m.self_deadlocks);
        assert_eq!(
            m.locks[2].permits,
            Some(2),
            "a repeated `lock` adds the permits"
        );
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":3,"m":"p"}
{"e":"lock","l":3,"c":3,"permits":1}
{"e":"request","t":1,"l":3,"m":"p"}
{"e":"request","t":1,"l":3,"m":"p"}
"#,
        );
        assert_eq!(kinds(&m), [("self-deadlock", "sem".to_string())]);
        assert_eq!(m.self_deadlocks[0].count, 1, "a repeated request is one");
    }

    #[test]
    fn locks_of_unknown_kind_are_reentrant() {
        let m = model_of(&[(
            "t",
            r#"{"e":"acquire","t":1,"l":9,"m":"w"}
{"e":"request","t":1,"l":9,"m":"w"}
{"e":"acquire","t":1,"l":9,"m":"w"}
"#,
        )]);
        assert!(m.self_deadlocks.is_empty());
    }

    #[test]
    fn a_trace_without_requests_finds_a_recursive_read_at_the_acquire() {
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":2,"m":"r"}
{"e":"acquire","t":1,"l":2,"m":"r"}
{"e":"acquire","t":1,"l":2,"m":"rr","how":"try"}
"#,
        );
        assert_eq!(kinds(&m), [("recursive-read", "rw".to_string())]);
    }

    #[test]
    fn a_condvar_wait_followed_by_its_release_is_one_release() {
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"cond_wait","t":1,"cv":9,"l":1}
{"e":"release","t":1,"l":1}
{"e":"acquire","t":2,"l":1,"m":"w"}
{"e":"release","t":2,"l":1}
{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"release","t":1,"l":1}
{"e":"release","t":1,"l":1}
"#,
        );
        // Only the last release, of a lock no longer held, is an anomaly.
        assert_eq!(m.anomalies.release_not_held, 1, "{:?}", m.anomalies);
        assert_eq!(m.anomalies.release_by_other_thread, 0);
    }

    #[test]
    fn a_granted_request_is_one_dependency_and_a_failed_one_none() {
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":4,"m":"w"}
{"e":"request","t":1,"l":5,"m":"w"}
{"e":"acquire","t":1,"l":5,"m":"w"}
{"e":"release","t":1,"l":5}
{"e":"request","t":1,"l":1,"m":"w"}
{"e":"fail","t":1,"l":1,"m":"w","how":"timed"}
"#,
        );
        assert_eq!(m.deps.len(), 1, "{:?}", m.deps);
        assert_eq!(m.deps[0].count, 1);
        assert!(!m.deps[0].pending);
    }

    #[test]
    fn a_stopped_request_is_a_dependency_with_the_held_set_of_its_time() {
        // The runtime panicked at the request: the unwinding releases `a`, and the thread goes
        // on to other locks.
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":4,"m":"w"}
{"e":"request","t":1,"l":5,"m":"w"}
{"e":"release","t":1,"l":4}
{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"acquire","t":1,"l":2,"m":"w"}
"#,
        );
        let stopped: Vec<_> = m.deps.iter().filter(|d| d.pending).collect();
        assert_eq!(stopped.len(), 1, "{:?}", m.deps);
        assert_eq!(stopped[0].dep.lock, 4);
        assert_eq!(stopped[0].dep.held, [(3, Mode::Exclusive)]);
    }

    /// Rounds of spawn and join by thread 1, which nests `a -> b` in every round; in round
    /// `concurrent` (if any) the child takes `b -> a` while thread 1 is in its round, else each
    /// child takes `b -> a` and is joined before thread 1 nests.
    fn rounds(n: u64, concurrent: Option<u64>) -> String {
        let mut s = String::from(LOCKS);
        for i in 0..n {
            let c = 100 + i;
            s += &format!("{{\"e\":\"fork\",\"t\":1,\"child\":{c}}}\n");
            let child = format!(
                "{{\"e\":\"acquire\",\"t\":{c},\"l\":5,\"m\":\"w\"}}\n\
                 {{\"e\":\"acquire\",\"t\":{c},\"l\":4,\"m\":\"w\"}}\n\
                 {{\"e\":\"release\",\"t\":{c},\"l\":4}}\n\
                 {{\"e\":\"release\",\"t\":{c},\"l\":5}}\n"
            );
            let parent = "{\"e\":\"acquire\",\"t\":1,\"l\":4,\"m\":\"w\"}\n\
                 {\"e\":\"acquire\",\"t\":1,\"l\":5,\"m\":\"w\"}\n\
                 {\"e\":\"release\",\"t\":1,\"l\":5}\n\
                 {\"e\":\"release\",\"t\":1,\"l\":4}\n";
            let join = format!("{{\"e\":\"join\",\"t\":1,\"child\":{c}}}\n");
            if concurrent == Some(i) {
                s += &child;
                s += parent;
                s += &join;
            } else {
                s += &child;
                s += &join;
                s += parent;
            }
        }
        s
    }

    fn inversions(text: &str) -> (usize, Vec<String>) {
        let m = model_of(&[("t", text)]);
        let r = crate::analyze_model(&m, &crate::Options::default());
        let n = r
            .violations
            .iter()
            .filter(|v| v.kind == "lock-order-inversion")
            .count();
        (n, r.warnings)
    }

    #[test]
    fn a_concurrent_round_among_many_fork_join_rounds_is_reported() {
        // Failed with 4 clocks per dependency: the middle round's clock was overwritten.
        let (n, w) = inversions(&rounds(12, Some(6)));
        assert!(n >= 1, "{w:?}");
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn fork_join_ordered_rounds_are_silent() {
        let (n, w) = inversions(&rounds(12, None));
        assert_eq!(n, 0, "{w:?}");
    }

    #[test]
    fn beyond_the_clock_bound_ordering_is_dropped_loudly_never_a_miss() {
        let rounds_n = MAX_CLOCKS_PER_DEP as u64 + 20;
        let (n, w) = inversions(&rounds(rounds_n, Some(rounds_n - 5)));
        assert!(n >= 1, "{w:?}");
        assert!(w.iter().any(|w| w.contains("without ordering")), "{w:?}");
        // The look-alike becomes a (reported) false alarm rather than a silent approximation.
        let (_, w) = inversions(&rounds(rounds_n, None));
        assert!(w.iter().any(|w| w.contains("without ordering")), "{w:?}");
    }

    #[test]
    fn dropped_site_combinations_are_counted_and_warned() {
        let mut s = String::from(LOCKS);
        for i in 0..(MAX_SITES_PER_DEP as u32 + 3) {
            s += &format!(
                "{{\"e\":\"site\",\"s\":{i},\"loc\":\"x.rs:{i}:1\"}}\n\
                 {{\"e\":\"acquire\",\"t\":1,\"l\":4,\"m\":\"w\",\"s\":{i}}}\n\
                 {{\"e\":\"acquire\",\"t\":1,\"l\":5,\"m\":\"w\"}}\n\
                 {{\"e\":\"release\",\"t\":1,\"l\":5}}\n\
                 {{\"e\":\"release\",\"t\":1,\"l\":4}}\n"
            );
        }
        let m = model_of(&[("t", &s)]);
        assert_eq!(m.deps.len(), 1);
        assert_eq!(m.deps[0].sites.len(), MAX_SITES_PER_DEP);
        assert_eq!(m.deps[0].sites_dropped, 3);
        let w = m.approximations.warnings();
        assert!(w.len() == 1 && w[0].contains("site combinations"), "{w:?}");
    }
}
