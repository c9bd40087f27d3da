//! The global lock-order graph, at instance and class level, and the constrained cycle search.
//!
//! Only cache misses of the per-thread fast path come here: a dependency (thread, lock, mode, held
//! set, vector clock) never seen before. Each level keeps a Pearce–Kelly topological order of its
//! edges; an edge that agrees with the order, while no edge ever closed a cycle, cannot be on a
//! cycle and costs O(1). Otherwise a depth-first search looks for a cycle through the new
//! dependency whose dependencies pass the iGoodLock rules pairwise (distinct threads, no common
//! gate lock, not ordered by spawn/join, conflicting modes), pruning as soon as a pair fails.

use super::class::NO_CLASS;
use super::report::{EdgeInfo, LockRef, Trace, Violation, ViolationKind};
use super::state::{internal, Held};
use super::variants::{held_sig, no_more_held, Edge, Groups, Shape, Variant, Variants};
use lockcheck_core::deps::{check_link, DepView, VectorClock};
use lockcheck_core::order::{NodeId, OrderGraph};
use lockcheck_core::trace::{How, Mode};
use parking_lot::Mutex as PlMutex;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::ops::Deref;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

/// Groups of dependency variants kept per edge, a memory bound only: a variant is dropped silently
/// only when another kept one makes it redundant for every possible cycle
/// ([`subsumes`](super::variants::subsumes)); past this bound a new variant that needs a new
/// group is dropped and the drop is reported (`ViolationKind::Incomplete`). At instance level
/// each variant is its own group; at class level a group is a shape ([`Groups`]: thread, mode,
/// fork/join clock, held classes and modes), so live instance pairs of one class edge, however
/// many, do not count towards it: only threads, epochs and held class sets do.
const VARIANT_LIMIT: usize = 4096;
/// Variants kept on all the edges of one level, a memory bound only (a record is a few hundred
/// bytes, shared by the edges of one dependency): past it, a new variant is dropped and the drop
/// is reported (`ViolationKind::Incomplete`). Variants leave with their locks, so only a program
/// with this many distinct live dependencies (thread, lock, held set, fork/join clock) gets there.
const LEVEL_LIMIT: usize = 1 << 19;
/// Steps of one cycle search before it gives up (reported as `ViolationKind::Incomplete`).
const SEARCH_BUDGET: usize = 200_000;
/// Threads kept in [`Late`]. Past it, no ended thread's variants are merged any more (exact:
/// merging only saves memory, which the variant bounds above then cap, reported), said once on
/// stderr. Each entry is a thread that took locks in a thread-local destructor after
/// lockcheck's own was gone, so only a program that starts this many such threads gets there.
const LATE_LIMIT: usize = 4096;

/// A hasher for the graph's keys (node, instance and class numbers, pairs of them): a multiply
/// per word. The keys are lockcheck's own counters, not chosen by an adversary, so SipHash's
/// protection buys nothing here; it was about 3,000 instructions of a never-seen edge. Also the
/// hasher of [`super::class`]'s table by source address (addresses in the binary).
#[derive(Default, Clone, Copy)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // The product's high bits are the well-mixed ones: fold them into the low ones too.
        self.0 ^ (self.0 >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(23) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

/// A few values, stored inline when there is one (a nested pair's held lock): a record's held
/// locks, their classes and their sites then need no allocation of their own. Written by hand
/// (two variants and a `Deref`): the runtime crate takes no new dependency for it.
#[derive(Debug, Clone)]
pub(crate) enum Few<T> {
    One([T; 1]),
    Many(Box<[T]>),
}

impl<T> Deref for Few<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Few::One(one) => one,
            Few::Many(many) => many,
        }
    }
}

impl<T: Copy> Few<T> {
    /// The `n` values of `values` (exactly `n`), inline if one.
    fn collect(n: usize, mut values: impl Iterator<Item = T>) -> Self {
        if n == 1 {
            if let Some(v) = values.next() {
                return Few::One([v]);
            }
        }
        // At its exact length: a boxed slice from a vector of spare capacity reallocates.
        let mut v = Vec::with_capacity(n);
        v.extend(values);
        Few::Many(v.into_boxed_slice())
    }

    /// A copy of `values`, inline if one.
    fn from_slice(values: &[T]) -> Self {
        Self::collect(values.len(), values.iter().copied())
    }
}

/// The dependency of a [`DepRecord`]: `lockcheck_core`'s `Dependency` (always blocking), with
/// its held set inline when it is one lock and its clock shared by the thread's records of one
/// fork/join epoch, so that a record is one allocation.
#[derive(Debug, Clone)]
pub(crate) struct Dep {
    pub thread: u64,
    pub lock: u64,
    pub mode: Mode,
    /// The locks held at the request with their modes, oldest first.
    pub held: Few<(u64, Mode)>,
    pub clock: Arc<VectorClock>,
}

impl Dep {
    /// The mode in which this dependency's thread holds `lock`, if it does.
    fn held_mode(&self, lock: u64) -> Option<Mode> {
        self.held.iter().find(|h| h.0 == lock).map(|h| h.1)
    }
}

impl DepView for Dep {
    type Lock = u64;
    fn thread(&self) -> u64 {
        self.thread
    }
    fn lock(&self) -> u64 {
        self.lock
    }
    fn mode(&self) -> Mode {
        self.mode
    }
    fn how(&self) -> How {
        How::Blocking
    }
    fn epoch(&self, thread: u64) -> u32 {
        self.clock.get(thread)
    }
    fn held_iter(&self) -> impl Iterator<Item = (u64, Mode)> + '_ {
        self.held.iter().copied()
    }
}

/// One observed dependency with what a report needs.
#[derive(Debug, Clone)]
pub(crate) struct DepRecord {
    pub dep: Dep,
    /// [`held_sig`] of `dep.held`.
    pub held_sig: u64,
    /// Shared by every record of the thread.
    pub thread_name: Arc<str>,
    pub lock_class: u32,
    pub held_classes: Few<u32>,
    pub site: &'static Location<'static>,
    pub held_sites: Few<&'static Location<'static>>,
    pub backtrace: Option<Trace>,
    /// The requesting OS thread's end, shared by its records (`None` for a task's dependency,
    /// or a thread already ending: never merged).
    pub end: Option<Arc<ThreadEnd>>,
    /// Made by a `try_*` retried `TRY_RETRIES` times in a row (see [`as_retried_try`]).
    pub retried: bool,
}

thread_local! {
    /// Set while a retried try is checked as a blocking acquisition (see [`as_retried_try`]).
    static RETRIED_TRY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a retried try is being checked on this thread (see [`as_retried_try`]).
pub(crate) fn retried_now() -> bool {
    RETRIED_TRY.try_with(std::cell::Cell::get).unwrap_or(false)
}

/// Runs `f` (the check of a `try_*` failed `TRY_RETRIES` times in a row, as a blocking
/// acquisition) so that the dependencies it records say so (reports name the acquisition a
/// retried try: [`EdgeInfo::retried`]).
pub(crate) fn as_retried_try<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            let _ = RETRIED_TRY.try_with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(RETRIED_TRY.try_with(|c| c.replace(true)).unwrap_or(false));
    f()
}

impl Variant for DepRecord {
    fn shape(&self) -> Shape<'_> {
        Shape {
            thread: self.dep.thread,
            mode: self.dep.mode,
            held: &self.dep.held,
            classes: &self.held_classes,
            sig: self.held_sig,
            clock: &self.dep.clock,
        }
    }
}

/// The end of one OS thread that recorded dependencies, as the graph sees it: shared by the
/// thread's records, so that a variant knows whether its thread can still add any.
#[derive(Debug, Default)]
pub(crate) struct ThreadEnd {
    /// Set when the thread ended while never ordered by fork/join: its clock stayed
    /// `{itself: 1}` (not started, never forking or joining, through [`crate::thread`]), so no
    /// clock ever knows it. Each of its variants is then concurrent with every dependency of
    /// another thread, past and future: two such variants differ only by their thread.
    unordered: AtomicBool,
    /// Set when the thread write-locked an RwLock whose writes were still noted one by one by
    /// their clocks ([`note_written`]): a read-read link through one of its variants leaves
    /// that write out (a write by either reader's thread is never the queued writer,
    /// [`write_between`]), where the same link through another thread's variant counts it. Its
    /// variants then stand for no other thread's ([`merge_ended`]).
    ///
    /// [`write_between`]: lockcheck_core::deps::write_between
    wrote: AtomicBool,
    /// Variants of the thread pushed on each level (instance, class), never decremented: 1 means
    /// the one variant it has on that level, so no cycle can hold it twice (see [`merge_ended`]).
    pushed: [AtomicU32; 2],
}

/// The calling thread's [`ThreadEnd`], created by its first dependency; its destructor (a thread
/// local's, run at thread exit) marks the end.
struct ThisThread(RefCell<Option<ThisThreadRecords>>);

/// What [`ThisThread`] keeps of the calling thread's records.
struct ThisThreadRecords {
    id: u64,
    end: Arc<ThreadEnd>,
    /// The clock of the thread's latest record, shared by its records while the clock stays the
    /// same (a thread's clock changes only when it forks or joins)...
    clock: Arc<VectorClock>,
    /// ... and the thread's clock epoch ([`ThreadState::clock_epoch`]) it is the clock of, if
    /// it was taken from the thread's state (then a request in that epoch reads no clock).
    ///
    /// [`ThreadState::clock_epoch`]: super::state::ThreadState::clock_epoch
    epoch: Option<u64>,
}

impl Drop for ThisThread {
    fn drop(&mut self) {
        let Some(ThisThreadRecords { id, end, .. }) = self.0.get_mut().take() else {
            return;
        };
        let mut alone = VectorClock::new();
        alone.set(id, 1);
        // The thread's clock, if its state is still there (else: not known, never merged).
        if super::state::with_slow(|slow| slow.clock == alone) == Some(true) {
            end.unordered.store(true, Ordering::Release);
        }
    }
}

thread_local! {
    static THIS_THREAD: ThisThread = const { ThisThread(RefCell::new(None)) };
}

/// The fork/join clock of a [`Request`].
pub(crate) enum ReqClock {
    /// This clock (a task's, or another thread's).
    Given(VectorClock),
    /// The requesting thread's own, the calling thread: read from its state only when its clock
    /// epoch changed since its previous record (else that record's clock is shared).
    Own,
}

impl From<VectorClock> for ReqClock {
    fn from(c: VectorClock) -> Self {
        ReqClock::Given(c)
    }
}

/// The calling thread's clock (as [`ThreadState::clock`](super::state::ThreadState::clock)).
fn own_clock(thread: u64) -> VectorClock {
    super::state::STATE
        .try_with(|s| s.clock())
        .unwrap_or_else(|_| {
            let mut c = VectorClock::new();
            c.set(thread, 1);
            c
        })
}

/// The [`ThreadEnd`] of the calling OS thread if `thread` is its number, else `None` (a task, or
/// the thread's exit already under way: a late dependency is noted, see [`Graph::late`]); and
/// the request's clock, shared: the thread's previous record's clock when equal (known equal
/// without reading it when [`ReqClock::Own`] in the same clock epoch), else a new one.
fn this_thread(thread: u64, clock: ReqClock) -> (Option<Arc<ThreadEnd>>, Arc<VectorClock>) {
    let own = super::state::STATE
        .try_with(|s| (s.id() == thread).then(|| s.clock_epoch()))
        .ok()
        .flatten();
    let given = |clock: ReqClock| match clock {
        ReqClock::Given(c) => c,
        ReqClock::Own => own_clock(thread),
    };
    let Some(epoch) = own else {
        return (None, shared_clock(given(clock)));
    };
    let mut clock = Some(clock);
    let got = THIS_THREAD.try_with(|t| {
        let mut t = t.0.borrow_mut();
        let c = clock.take().expect("taken once");
        let known =
            matches!(c, ReqClock::Own) && t.as_ref().is_some_and(|r| r.epoch == Some(epoch));
        if !known {
            let own = matches!(c, ReqClock::Own);
            let c = given(c);
            match t.as_mut() {
                Some(r) if *r.clock == c => {}
                Some(r) => r.clock = shared_clock(c),
                None => {
                    *t = Some(ThisThreadRecords {
                        id: thread,
                        end: Arc::default(),
                        clock: shared_clock(c),
                        epoch: None,
                    })
                }
            }
            if let Some(r) = t.as_mut() {
                r.epoch = own.then_some(epoch);
            }
        }
        let r = t.as_ref().expect("set above");
        (Arc::clone(&r.end), Arc::clone(&r.clock))
    });
    match got {
        Ok((end, clock)) => (Some(end), clock),
        Err(_) => {
            with_graph(|g| g.late.note(thread));
            let c = clock.take().map_or_else(|| own_clock(thread), given);
            (None, shared_clock(c))
        }
    }
}

/// `clock` in an `Arc`; the empty clock (a task's: fork/join unknown) is one shared `Arc`.
fn shared_clock(clock: VectorClock) -> Arc<VectorClock> {
    static EMPTY: std::sync::OnceLock<Arc<VectorClock>> = std::sync::OnceLock::new();
    if clock == VectorClock::new() {
        return Arc::clone(EMPTY.get_or_init(|| Arc::new(VectorClock::new())));
    }
    Arc::new(clock)
}

struct Level<K, E> {
    node_of: IdMap<K, NodeId>,
    key_of: Vec<Option<K>>,
    out: Vec<Vec<NodeId>>,
    inn: Vec<Vec<NodeId>>,
    edges: IdMap<(NodeId, NodeId), E>,
    order: OrderGraph,
    /// Edges refused by the order because they close a cycle.
    back: IdSet<(NodeId, NodeId)>,
    /// Variants kept over all edges (see [`LEVEL_LIMIT`]).
    kept: usize,
    /// 0 for the instance level, 1 for the class level (the index of [`ThreadEnd::pushed`]).
    index: usize,
    /// Emptied edges of removed nodes, kept for the next new edges (their memory reused: a
    /// dropped lock's edge gives its list to a new lock's), at most [`SPARE_EDGES`].
    spare: Vec<E>,
}

/// Emptied edges a level keeps for reuse (see [`Level::spare`]), each of a few words.
const SPARE_EDGES: usize = 256;

impl<K: Copy + Eq + Hash, E: Edge<DepRecord>> Level<K, E> {
    fn new(index: usize) -> Self {
        Level {
            node_of: IdMap::default(),
            key_of: Vec::new(),
            out: Vec::new(),
            inn: Vec::new(),
            edges: IdMap::default(),
            order: OrderGraph::new(),
            back: IdSet::default(),
            kept: 0,
            index,
            spare: Vec::new(),
        }
    }

    fn node(&mut self, k: K) -> NodeId {
        if let Some(&n) = self.node_of.get(&k) {
            return n;
        }
        let n = self.order.add_node();
        let i = n as usize;
        if self.key_of.len() <= i {
            self.key_of.resize(i + 1, None);
            self.out.resize_with(i + 1, Vec::new);
            self.inn.resize_with(i + 1, Vec::new);
        }
        self.key_of[i] = Some(k);
        self.out[i].clear();
        self.inn[i].clear();
        self.node_of.insert(k, n);
        n
    }

    fn remove(&mut self, k: K) {
        let Some(n) = self.node_of.remove(&k) else {
            return;
        };
        // Emptied, not freed: the node's index is reused (see `OrderGraph::remove_node`).
        let out = std::mem::take(&mut self.out[n as usize]);
        for &m in &out {
            self.drop_edge((n, m));
            // Usually empty (no edge ever closed a cycle): no hashing then.
            if !self.back.is_empty() {
                self.back.remove(&(n, m));
            }
            self.inn[m as usize].retain(|&x| x != n);
        }
        self.out[n as usize] = out;
        self.out[n as usize].clear();
        let inn = std::mem::take(&mut self.inn[n as usize]);
        for &p in &inn {
            self.drop_edge((p, n));
            if !self.back.is_empty() {
                self.back.remove(&(p, n));
            }
            self.out[p as usize].retain(|&x| x != n);
        }
        self.inn[n as usize] = inn;
        self.inn[n as usize].clear();
        self.order.remove_node(n);
        self.key_of[n as usize] = None;
    }

    /// Removes an edge's variants, keeping its emptied memory for a new edge if small.
    fn drop_edge(&mut self, key: (NodeId, NodeId)) {
        let Some(mut e) = self.edges.remove(&key) else {
            return;
        };
        self.kept -= e.members();
        if e.clear_small() && self.spare.len() < SPARE_EDGES {
            self.spare.push(e);
        }
    }

    /// Whether the edge between these keys exists.
    fn has_edge(&self, a: K, b: K) -> bool {
        match (self.node_of.get(&a), self.node_of.get(&b)) {
            (Some(&x), Some(&y)) => self.edges.contains_key(&(x, y)),
            _ => false,
        }
    }

    /// Adds `dep` as a variant of `a -> b`.
    fn add(&mut self, a: NodeId, b: NodeId, dep: &Arc<DepRecord>) -> Added {
        let spare = &mut self.spare;
        let mut inserted = false;
        let variants = self.edges.entry((a, b)).or_insert_with(|| {
            inserted = true;
            spare.pop().unwrap_or_default()
        });
        // Once per edge: an edge can stay with no member (its only variant dropped at a limit),
        // and its adjacency must not be pushed again then.
        if inserted {
            self.out[a as usize].push(b);
            self.inn[b as usize].push(a);
            if self.order.add_edge(a, b).is_some() {
                self.back.insert((a, b));
            }
        }
        // The new variant may be redundant, or make older ones redundant (the list stays an
        // antichain); not both, as subsumption is transitive.
        if variants.covers(dep.shape()) {
            return Added::Redundant;
        }
        self.kept -= variants.drop_covered_by(dep.shape());
        if self.kept >= LEVEL_LIMIT {
            return Added::Dropped("dependencies");
        }
        if !variants.push_within(Arc::clone(dep), VARIANT_LIMIT) {
            return Added::Dropped("edge-variants");
        }
        self.kept += 1;
        if let Some(end) = &dep.end {
            end.pushed[self.index].fetch_add(1, Ordering::Relaxed);
        }
        Added::New
    }

    /// Whether `a -> b` might lie on a cycle: false only if it agrees with a topological order of
    /// a graph that never had a cycle-closing edge.
    fn maybe_cyclic(&self) -> bool {
        !self.back.is_empty()
    }
}

/// What adding a variant to an edge did.
#[derive(PartialEq, Eq)]
enum Added {
    /// Kept: worth a cycle search.
    New,
    /// Subsumed by a kept variant: every cycle it could be on is found through that one.
    Redundant,
    /// Dropped at [`VARIANT_LIMIT`] or [`LEVEL_LIMIT`] (reported), naming the limit.
    Dropped(&'static str),
}

/// What tells two reported instance-level cycles apart: the sites of their dependencies (file
/// address, line, column, the requested lock's class) and their classes, each sorted.
type CycleKey = (Vec<(usize, u32, u32, u32)>, Vec<u32>);

struct Graph {
    inst: Level<u64, Variants<DepRecord>>,
    class: Level<u32, Groups<DepRecord>>,
    /// The writes of each RwLock instance and class (for the read-read rule).
    writes_inst: IdMap<u64, Writes>,
    writes_class: IdMap<u32, Writes>,
    /// Semaphores of more than one permit (declared at their first blocking acquisition, when
    /// the trace declares their permits too): their permits are no gate (see [`gated`]).
    several_permits: IdSet<u64>,
    /// Requests of a semaphore's permit made holding some of its permits, per semaphore
    /// instance (see [`note_permit_nest`]).
    permit_nests: IdMap<u64, Nests>,
    /// Instance-level cycles reported: their sites and their classes (two cycles at the same
    /// lines through locks of other classes, a helper called with other locks, are two bugs; new
    /// instances of the same classes at the same lines are the same one).
    reported_sites: HashSet<CycleKey>,
    reported_classes: HashSet<Vec<u32>>,
    /// Limits already reported (each once).
    limits_reported: HashSet<&'static str>,
    /// Threads that added a dependency while exiting (after their [`ThisThread`] was gone).
    late: Late,
}

/// Threads that added a dependency while exiting (after their [`ThisThread`] was gone): their
/// end mark may be set too early, so their variants are never merged. Normally empty; bounded
/// by [`LATE_LIMIT`].
#[derive(Default)]
struct Late {
    threads: HashSet<u64>,
    /// [`LATE_LIMIT`] was reached: no thread's end is trusted any more.
    full: bool,
}

impl Late {
    fn note(&mut self, thread: u64) {
        if self.full || self.threads.contains(&thread) {
            return;
        }
        if self.threads.len() >= LATE_LIMIT {
            self.full = true;
            self.threads = HashSet::new();
            crate::checked::notice::say(format_args!(
                "lockcheck: {LATE_LIMIT} threads took locks while exiting (in thread-local \
                 destructors), the most remembered: from now on the dependencies of ended threads \
                 are no longer merged (nothing is missed; the variants of an edge grow toward their \
                 bound, reported as `incomplete: edge-variants` if reached)"
            ));
            return;
        }
        self.threads.insert(thread);
    }

    /// Whether `thread`'s end mark must not be trusted.
    fn excludes(&self, thread: u64) -> bool {
        self.full || self.threads.contains(&thread)
    }
}

static GRAPH: PlMutex<Option<Graph>> = PlMutex::new(None);

fn with_graph<R>(f: impl FnOnce(&mut Graph) -> R) -> R {
    let mut g = internal(&GRAPH);
    let g = g.get_or_insert_with(|| Graph {
        inst: Level::new(0),
        class: Level::new(1),
        writes_inst: IdMap::default(),
        writes_class: IdMap::default(),
        several_permits: IdSet::default(),
        permit_nests: IdMap::default(),
        reported_sites: HashSet::new(),
        reported_classes: HashSet::new(),
        limits_reported: HashSet::new(),
        late: Late::default(),
    });
    f(g)
}

thread_local! {
    /// The class edge (held class, requested class) this thread last found in the graph when it
    /// asked whether a dependency's edges were new (see [`add_dependency`]).
    static KNOWN_CLASS_EDGE: Cell<(u32, u32)> = const { Cell::new((NO_CLASS, NO_CLASS)) };
}

/// What the fast path hands over on a cache miss.
pub(crate) struct Request<'a, C = VectorClock> {
    pub thread: u64,
    pub inst: u64,
    pub class: u32,
    pub mode: Mode,
    pub site: &'static Location<'static>,
    pub held: &'a [Held],
    /// A [`VectorClock`], or [`ReqClock::Own`].
    pub clock: C,
}

/// Records a dependency. Returns a violation if it closes a feasible cycle not reported before,
/// and the limits hit on the way (`Incomplete` violations, each limit once), both unpublished.
pub(crate) fn add_dependency<C: Into<ReqClock>>(
    req: Request<'_, C>,
) -> (Option<Violation>, Vec<Violation>) {
    // Iterated, not collected: one allocation fewer per new dependency.
    let held = || req.held.iter().filter(|h| h.inst != req.inst);
    if held().next().is_none() {
        return (None, Vec::new());
    }
    // Backtraces are what a new edge costs (unwinding, up to 256 bytes kept with the record): capture
    // one only if some edge of this dependency has never been seen: a class edge, or, between
    // locks without a distinct class (same class, anonymous), an instance edge. Locks created in a
    // loop make new instance edges all the time, but their class edges were seen once.
    let class_edge =
        |h: &Held| req.class != NO_CLASS && h.class != NO_CLASS && h.class != req.class;
    let new_edge = crate::config::backtraces() && {
        // One held lock of another class, whose class edge this thread found known last time: a
        // class edge is never removed (class nodes stay), so it still is, without the graph's
        // lock (a new instance pair of a known class edge, in a loop).
        let mut hs = held();
        let one = match (hs.next(), hs.next()) {
            (Some(h), None) if class_edge(h) => Some((h.class, req.class)),
            _ => None,
        };
        if one.is_some() && KNOWN_CLASS_EDGE.try_with(Cell::get).ok() == one {
            false
        } else {
            let new = with_graph(|g| {
                held().any(|h| {
                    if class_edge(h) {
                        !g.class.has_edge(h.class, req.class)
                    } else {
                        !g.inst.has_edge(h.inst, req.inst)
                    }
                })
            });
            if let (false, Some(e)) = (new, one) {
                let _ = KNOWN_CLASS_EDGE.try_with(|k| k.set(e));
            }
            new
        }
    };
    let backtrace = if new_edge { Trace::capture() } else { None };
    let (end, clock) = this_thread(req.thread, req.clock.into());
    // Inline when one lock is held (a nested pair): the record is then its one allocation.
    let n = held().count();
    let held_modes = Few::collect(n, held().map(|h| (h.inst, h.mode)));
    let rec = Arc::new(DepRecord {
        held_sig: held_sig(&held_modes),
        dep: Dep {
            thread: req.thread,
            lock: req.inst,
            mode: req.mode,
            held: held_modes,
            clock,
        },
        thread_name: super::state::shared_thread_name(req.thread),
        lock_class: req.class,
        held_classes: Few::collect(n, held().map(|h| h.class)),
        site: req.site,
        held_sites: Few::collect(n, held().map(|h| h.site)),
        backtrace,
        end,
        retried: RETRIED_TRY.try_with(std::cell::Cell::get).unwrap_or(false),
    });
    with_graph(|g| {
        let mut limits = Vec::new();
        // Instance level.
        let b = g.inst.node(req.inst);
        let mut found = None;
        for h in held() {
            let a = g.inst.node(h.inst);
            g.compact_due(false, (a, b));
            match g.inst.add(a, b, &rec) {
                Added::New => {
                    if g.inst.maybe_cyclic() && found.is_none() {
                        found = g.search_inst(a, b, std::slice::from_ref(&rec), &mut limits);
                    }
                }
                Added::Redundant => {}
                Added::Dropped(limit) => g.limit_hit(limit, &rec, &mut limits),
            }
        }
        if let Some(cycle) = found {
            if let Some(v) = g.violation(cycle, false) {
                return (Some(v), limits);
            }
        }
        // Class level (same-class nesting is left to the instance level).
        if req.class == NO_CLASS {
            return (None, limits);
        }
        let b = g.class.node(req.class);
        let mut found = None;
        for h in held() {
            if h.class == req.class || h.class == NO_CLASS {
                continue;
            }
            let a = g.class.node(h.class);
            g.compact_due(true, (a, b));
            match g.class.add(a, b, &rec) {
                Added::New => {
                    if g.class.maybe_cyclic() && found.is_none() {
                        found = g.search_class(a, b, std::slice::from_ref(&rec), &mut limits);
                    }
                }
                Added::Redundant => {}
                Added::Dropped(limit) => g.limit_hit(limit, &rec, &mut limits),
            }
        }
        (found.and_then(|cycle| g.violation(cycle, true)), limits)
    })
}

impl Graph {
    /// Compacts an edge (see [`compact`], then [`merge_ended`]) each time its list doubles past
    /// 32 variants.
    fn compact_due(&mut self, class_level: bool, key: (NodeId, NodeId)) {
        /// Whether the edge is due: its variants (groups' members included) reached a power of
        /// two from 32. A held lock is alive while it is a node of the instance graph (it became
        /// one when its dependency was added, and leaves when it is dropped).
        fn due<E: Edge<DepRecord>>(e: &E) -> bool {
            let n = e.members();
            n >= 32 && n.is_power_of_two()
        }
        let late = &self.late;
        if class_level {
            // The class level asks the instance graph directly (no set of dropped locks to build).
            let Some(e) = self.class.edges.get(&key).filter(|e| due(*e)) else {
                return;
            };
            let ended = e.each().any(|v| ended(v, late));
            let inst = &self.inst.node_of;
            compact(&mut self.class, key, &|h| inst.contains_key(&h));
            if ended {
                merge_ended(&mut self.class, key, late);
            }
        } else {
            let Some(e) = self.inst.edges.get(&key).filter(|e| due(*e)) else {
                return;
            };
            let inst = &self.inst.node_of;
            let dead: IdSet<u64> = e
                .each()
                .flat_map(|v| v.dep.held.iter().map(|h| h.0))
                .filter(|&h| h & DEAD == 0 && !inst.contains_key(&h))
                .collect();
            let ended = e.each().any(|v| ended(v, late));
            if !dead.is_empty() {
                compact(&mut self.inst, key, &|h| !dead.contains(&h));
            }
            if ended {
                merge_ended(&mut self.inst, key, late);
            }
        }
    }

    /// A cycle through a variant of instance edge `a -> b`, one of `firsts` (members of one
    /// group, see [`search`]), if one is feasible.
    fn search_inst(
        &mut self,
        a: NodeId,
        b: NodeId,
        firsts: &[Arc<DepRecord>],
        limits: &mut Vec<Violation>,
    ) -> Option<Vec<Arc<DepRecord>>> {
        let writes = &self.writes_inst;
        let link = |req: &DepRecord, holder: &DepRecord| {
            let w = req.dep.mode == Mode::Exclusive
                || writes
                    .get(&req.dep.lock)
                    .is_some_and(|w| w.between(&req.dep, &holder.dep));
            check_link(&req.dep, &holder.dep, w).is_ok()
        };
        let (cycle, exhausted) = search(&self.inst, a, b, firsts, &link, &self.several_permits);
        if exhausted {
            self.limit_hit("search-steps", &firsts[0], limits);
        }
        cycle
    }

    /// A cycle through a variant of class edge `a -> b`, one of `firsts` (members of one
    /// group, see [`search`]), if one is feasible.
    fn search_class(
        &mut self,
        a: NodeId,
        b: NodeId,
        firsts: &[Arc<DepRecord>],
        limits: &mut Vec<Violation>,
    ) -> Option<Vec<Arc<DepRecord>>> {
        let writes = &self.writes_class;
        let link = |req: &DepRecord, holder: &DepRecord| class_link(req, holder, writes);
        let (cycle, exhausted) = search(&self.class, a, b, firsts, &link, &self.several_permits);
        if exhausted {
            self.limit_hit("search-steps", &firsts[0], limits);
        }
        cycle
    }

    /// A limit was hit while handling `rec`: an `Incomplete` violation, the first time only.
    fn limit_hit(&mut self, limit: &'static str, rec: &DepRecord, out: &mut Vec<Violation>) {
        if !self.limits_reported.insert(limit) {
            return;
        }
        let bound = match limit {
            "search-steps" => SEARCH_BUDGET,
            "dependencies" => LEVEL_LIMIT,
            _ => VARIANT_LIMIT,
        } as u64;
        let held_idx = rec.dep.held.len().saturating_sub(1);
        let (held, held_mode, held_site) = match rec.dep.held.get(held_idx) {
            Some(&(inst, mode)) => (
                LockRef::new(inst, rec.held_classes[held_idx]),
                mode,
                rec.held_sites[held_idx].to_string(),
            ),
            None => (
                LockRef::new(rec.dep.lock, rec.lock_class),
                rec.dep.mode,
                rec.site.to_string(),
            ),
        };
        out.push(Violation::inversion(
            ViolationKind::Incomplete { limit, bound },
            vec![EdgeInfo {
                thread: rec.thread_name.to_string(),
                thread_id: rec.dep.thread,
                held,
                held_mode,
                held_site,
                acquired: LockRef::new(rec.dep.lock, rec.lock_class),
                mode: rec.dep.mode,
                site: rec.site.to_string(),
                other_held: Vec::new(),
                backtrace: None,
                retried: false,
            }],
        ));
    }
}

/// At class level, `req` requests some instance of its class; the link holds if `holder` holds an
/// instance of that class in a mode the request conflicts with.
fn class_link(req: &DepRecord, holder: &DepRecord, writes: &IdMap<u32, Writes>) -> bool {
    let w = req.dep.mode == Mode::Exclusive
        || writes
            .get(&req.lock_class)
            .is_some_and(|w| w.between(&req.dep, &holder.dep));
    holder
        .held_classes
        .iter()
        .zip(holder.dep.held.iter())
        .any(|(&c, &(_, m))| c == req.lock_class && req.dep.mode.conflicts_with(m, w))
}

type Link<'a> = dyn Fn(&DepRecord, &DepRecord) -> bool + 'a;

/// Looks for a feasible cycle through a variant of edge `a -> b`, one of `firsts` (members of
/// one group: the new variant alone, or the group a first write re-checks): a path from `b` back
/// to `a`, of any length. Returns the cycle's dependencies in order (the first one first) and
/// whether the step budget ran out. Iterative (an explicit stack), so a long path cannot
/// overflow the thread's stack.
///
/// Each edge's variants come in groups ([`Edge::group`]) whose members answer every test alike
/// except the gate test (a common held instance): the other tests (the link, distinct threads,
/// fork/join order) run once per group, on its first member, and a group that fails them is
/// skipped whole. Then members are tried in order, each against the chosen dependencies' gates.
/// A member whose subtree failed without ever failing a gate test against it ("not blamed")
/// ends its group: every test of that subtree that involved it passed, and another member of its
/// group differs from it only by gates, so it can only fail more tests, and its subtree finds no
/// more (conflict-directed backjumping: a failure is blamed on the chosen members whose gates
/// caused it, and only a blamed choice is worth changing). Exact: the search finds a cycle iff
/// trying every member of every group would, with at most as many steps.
fn search<K, E: Edge<DepRecord>>(
    level: &Level<K, E>,
    a: NodeId,
    b: NodeId,
    firsts: &[Arc<DepRecord>],
    link: &Link<'_>,
    several_permits: &IdSet<u64>,
) -> (Option<Vec<Arc<DepRecord>>>, bool) {
    // Only nodes that can reach `a` can be on a cycle through `a -> b`: a reverse walk from `a`
    // first, so that a search from a node that cannot get back costs nothing.
    let reaches = ancestors(level, a);
    if !reaches[b as usize] {
        return (None, false);
    }
    let mut steps = 0usize;
    for first in firsts {
        let (cycle, exhausted, blamed) = search_from(
            level,
            a,
            b,
            first,
            link,
            several_permits,
            &reaches,
            &mut steps,
        );
        if cycle.is_some() || exhausted || !blamed {
            return (cycle, exhausted);
        }
    }
    (None, false)
}

/// [`search`] from one first variant; also returns whether a gate test failed against it.
#[allow(clippy::too_many_arguments)]
fn search_from<K, E: Edge<DepRecord>>(
    level: &Level<K, E>,
    a: NodeId,
    b: NodeId,
    first: &Arc<DepRecord>,
    link: &Link<'_>,
    several_permits: &IdSet<u64>,
    reaches: &[bool],
    steps: &mut usize,
) -> (Option<Vec<Arc<DepRecord>>>, bool, bool) {
    // One frame per node on the path: the node, the index of its next out-edge to try, and,
    // on that edge, the group being tried and the index of its next member (0: the group's
    // shared tests not run yet; `usize::MAX`: the group is done).
    struct Frame {
        x: NodeId,
        edge: usize,
        group: usize,
        member: usize,
    }
    // `blamed[i]`: a gate test failed against `chosen[i]` since it was chosen.
    let mut chosen = vec![Arc::clone(first)];
    let mut blamed = vec![false];
    let mut on_path = vec![a, b];
    let mut stack = vec![Frame {
        x: b,
        edge: 0,
        group: 0,
        member: 0,
    }];
    while let Some(top) = stack.last_mut() {
        let x = top.x;
        let outs = &level.out[x as usize];
        let Some(&y) = outs.get(top.edge) else {
            // Every edge out of `x` tried: backtrack, and end the group of the member that led
            // here unless it was blamed.
            stack.pop();
            on_path.pop();
            if let Some(parent) = stack.last_mut() {
                chosen.pop();
                if blamed.pop() == Some(false) {
                    parent.member = usize::MAX;
                }
            }
            continue;
        };
        let group = if y != a && (!reaches[y as usize] || on_path.contains(&y)) {
            None
        } else {
            level.edges.get(&(x, y)).and_then(|e| e.group(top.group))
        };
        let Some(members) = group else {
            top.edge += 1;
            top.group = 0;
            top.member = 0;
            continue;
        };
        let next_group = |top: &mut Frame| {
            top.group += 1;
            top.member = 0;
        };
        if top.member == 0 {
            // The tests every member answers alike, on the first one.
            let rep = &members[0];
            let prev = chosen.last().expect("chosen starts non-empty");
            if !link(prev, rep)
                || chosen.iter().any(|c| !ordered_apart(&c.dep, &rep.dep))
                || (y == a && !link(rep, &chosen[0]))
            {
                *steps += 1;
                if *steps >= SEARCH_BUDGET {
                    return (None, true, false);
                }
                next_group(top);
                continue;
            }
        }
        let Some(v) = members.get(top.member) else {
            next_group(top);
            continue;
        };
        top.member += 1;
        *steps += 1;
        if *steps >= SEARCH_BUDGET {
            return (None, true, false);
        }
        if let Some(i) = chosen
            .iter()
            .position(|c| gated(&c.dep, &v.dep, several_permits))
        {
            blamed[i] = true;
            continue;
        }
        if y == a {
            chosen.push(Arc::clone(v));
            return (Some(chosen), false, false);
        }
        chosen.push(Arc::clone(v));
        blamed.push(false);
        on_path.push(y);
        stack.push(Frame {
            x: y,
            edge: 0,
            group: 0,
            member: 0,
        });
    }
    (None, false, blamed[0])
}

/// Marks a held entry whose lock was dropped: `DEAD | class`. Instance numbers have 40 bits.
const DEAD: u64 = 1 << 63;
/// A dropped lock's marker shows as instance 0 in reports.
fn shown(inst: u64) -> u64 {
    if inst & DEAD != 0 {
        0
    } else {
        inst
    }
}

/// iGoodLock's pairwise rules (`lockcheck_core::deps::check_pair`) are [`ordered_apart`] and not
/// [`gated`]. Split so that the cycle search can test the first once per group of variants.
///
/// The part that does not depend on instances: distinct threads, not ordered by fork/join.
fn ordered_apart(a: &Dep, b: &Dep) -> bool {
    a.thread != b.thread
        && !(a.clock.happens_before(a.thread, &b.clock)
            || b.clock.happens_before(b.thread, &a.clock))
}

/// The gate rule: `a` and `b` hold a common lock in modes that exclude each other, except that a
/// dropped lock is never a gate: no dependency can hold it any more, and merging every dropped
/// lock of a class into one marker (so that variants that differ only by dropped locks merge, see
/// [`forget_instance`]) must not make them gate each other. Nor is a permit of a semaphore of
/// several permits (`several_permits`): two threads can each hold one of its permits at once.
/// Never gating only risks a report, never a miss.
fn gated(a: &Dep, b: &Dep, several_permits: &IdSet<u64>) -> bool {
    a.held.iter().any(|&(la, ma)| {
        la & DEAD == 0
            && !(ma == Mode::Permit && several_permits.contains(&la))
            && b.held_mode(la)
                .is_some_and(|mb| ma.excludes(mb) || mb.excludes(ma))
    })
}

/// Rewrites the variants of edge `key` that hold dropped locks (`alive` false) with their class
/// marker in place, and merges those that become redundant, so that locks created and dropped in
/// a loop do not pile up variants on the edges that outlive them. Lazy: run when an edge's list
/// doubles (see [`Level::add`]'s callers), so its cost is amortized over the additions.
fn compact<K: Copy + Eq + Hash, E: Edge<DepRecord>>(
    level: &mut Level<K, E>,
    key: (NodeId, NodeId),
    alive: &dyn Fn(u64) -> bool,
) {
    let Some(variants) = level.edges.get_mut(&key) else {
        return;
    };
    let dead = |v: &DepRecord| v.dep.held.iter().any(|h| h.0 & DEAD == 0 && !alive(h.0));
    // Only the rewritten variants can newly subsume or be subsumed (the others did not change):
    // each is checked against the rest (through the index). A rewritten form is checked before
    // the record is cloned: in a loop, most are covered by the first one kept.
    let hold = variants.extract(|v| dead(v));
    if hold.is_empty() {
        return;
    }
    let before = variants.members() + hold.len();
    let (mut held, mut prev_held) = (Vec::new(), Vec::new());
    // The previous rewritten variant (its held set in `prev_held`): a rewrite identical to it is
    // decided alike, without asking the edge (a loop's dropped pairs all rewrite to one form).
    let mut prev: Option<Arc<DepRecord>> = None;
    for v in hold {
        held.clear();
        held.extend(
            v.dep
                .held
                .iter()
                .zip(v.held_classes.iter())
                .map(|(&h, &c)| {
                    if h.0 & DEAD == 0 && !alive(h.0) {
                        (DEAD | u64::from(c), h.1)
                    } else {
                        h
                    }
                }),
        );
        // Same thread, mode, clock and held set as the previous rewrite: that one was kept, so
        // it subsumes this one, or was covered by a variant still kept (nothing left since).
        if prev.as_ref().is_some_and(|p| {
            held == prev_held
                && p.dep.thread == v.dep.thread
                && p.dep.mode == v.dep.mode
                && p.dep.clock == v.dep.clock
        }) {
            continue;
        }
        let shape = Shape {
            held: &held,
            sig: held_sig(&held),
            ..v.shape()
        };
        if !variants.covers(shape) {
            variants.drop_covered_by(shape);
            let mut r = DepRecord::clone(&v);
            r.held_sig = shape.sig;
            r.dep.held = Few::from_slice(&held);
            // A rewrite has the shape of the variant it replaces (same classes): its group
            // exists or was just emptied, so groups never outnumber what they were.
            let kept = variants.push_within(Arc::new(r), usize::MAX);
            debug_assert!(kept);
        }
        std::mem::swap(&mut held, &mut prev_held);
        prev = Some(v);
    }
    level.kept = level.kept + variants.members() - before;
}

/// Whether `v`'s thread ended unordered (see [`ThreadEnd::unordered`]): it adds no variant any
/// more, and `v` is concurrent with every other thread's dependency, forever.
fn ended(v: &DepRecord, late: &Late) -> bool {
    v.end
        .as_ref()
        .is_some_and(|e| e.unordered.load(Ordering::Acquire))
        && !late.excludes(v.dep.thread)
}

/// Drops the variants of edge `key` whose threads ended unordered when a kept one of another such
/// thread stands for them, so that an edge that every short-lived thread repeats (each test of
/// a suite on its own thread, a pool respawned per job) keeps one variant, not one per thread.
///
/// `r` stands for `v` when both threads ended unordered (both concurrent with every dependency
/// of any other thread, forever), same mode, `r` holds a subset of `v`'s locks in the same modes
/// (no gate `v` avoids; the links of the edge are the same), `r`'s thread wrote no RwLock whose
/// write was noted by its clock ([`ThreadEnd::wrote`]: a read-read link through `r` leaves out
/// the writes of `r`'s thread, which one through `v` counts; any other write is ordered with
/// neither, so it counts through both or neither), and `r`'s thread has no other variant on
/// this level (`pushed == 1`). Then any feasible cycle through `v` stays feasible with
/// `r` in its place: the other dependencies are on other edges, so none is of `r`'s thread.
/// Exact: nothing found before is lost, and the pairwise rules are unchanged (no report added).
/// A thread with variants on several edges stays as it is (its variants are kept, up to the
/// reported bounds).
fn merge_ended<K, E: Edge<DepRecord>>(level: &mut Level<K, E>, key: (NodeId, NodeId), late: &Late) {
    let Some(variants) = level.edges.get_mut(&key) else {
        return;
    };
    let idx = level.index;
    let alone = |r: &DepRecord| {
        r.end
            .as_ref()
            .is_some_and(|e| e.pushed[idx].load(Ordering::Relaxed) == 1)
    };
    // Not a thread that wrote an RwLock: a read-read link through `v` counts a write by `r`'s
    // thread, which the same link through `r` leaves out (`write_between`).
    let wrote = |r: &DepRecord| {
        r.end
            .as_ref()
            .is_some_and(|e| e.wrote.load(Ordering::Acquire))
    };
    let stands_for = |r: &DepRecord, v: &DepRecord| {
        r.dep.thread != v.dep.thread && !wrote(r) && no_more_held(r.shape(), v.shape())
    };
    let mut reps: Vec<Arc<DepRecord>> = Vec::new();
    level.kept -= variants.retain(|v| {
        if !ended(v, late) {
            return true;
        }
        if reps.iter().any(|r| stands_for(r, v)) {
            return false;
        }
        if alone(v) {
            reps.push(Arc::clone(v));
        }
        true
    });
}

/// Which nodes have a path to `a` (`a` included), by a walk over incoming edges.
fn ancestors<K, E>(level: &Level<K, E>, a: NodeId) -> Vec<bool> {
    let mut seen = vec![false; level.inn.len()];
    let mut todo = vec![a];
    seen[a as usize] = true;
    while let Some(x) = todo.pop() {
        for &p in &level.inn[x as usize] {
            if !seen[p as usize] {
                seen[p as usize] = true;
                todo.push(p);
            }
        }
    }
    seen
}

impl Graph {
    /// Turns a feasible cycle into a violation, unless the same bug was reported already.
    fn violation(&mut self, cycle: Vec<Arc<DepRecord>>, class_level: bool) -> Option<Violation> {
        let mut sites: Vec<(usize, u32, u32, u32)> = cycle
            .iter()
            .map(|d| {
                (
                    d.site.file().as_ptr() as usize,
                    d.site.line(),
                    d.site.column(),
                    d.lock_class,
                )
            })
            .collect();
        sites.sort_unstable();
        let mut classes: Vec<u32> = cycle.iter().map(|d| d.lock_class).collect();
        classes.sort_unstable();
        classes.dedup();
        let key = (sites, classes);
        if self.reported_sites.contains(&key)
            || (class_level && self.reported_classes.contains(&key.1))
        {
            return None;
        }
        self.reported_classes.insert(key.1.clone());
        self.reported_sites.insert(key);
        // The lock each dependency holds on the cycle is the one the previous dependency requests.
        let n = cycle.len();
        let edges = (0..n)
            .map(|i| {
                let d = &cycle[i];
                let prev = &cycle[(i + n - 1) % n];
                let (held_idx, held_inst) = if class_level {
                    let j = d
                        .held_classes
                        .iter()
                        .position(|&c| c == prev.lock_class)
                        .unwrap_or(0);
                    (j, shown(d.dep.held[j].0))
                } else {
                    let j = d
                        .dep
                        .held
                        .iter()
                        .position(|h| h.0 == prev.dep.lock)
                        .unwrap_or(0);
                    (j, prev.dep.lock)
                };
                EdgeInfo {
                    thread: d.thread_name.to_string(),
                    thread_id: d.dep.thread,
                    held: LockRef::new(held_inst, d.held_classes[held_idx]),
                    held_mode: d.dep.held[held_idx].1,
                    held_site: d.held_sites[held_idx].to_string(),
                    acquired: LockRef::new(d.dep.lock, d.lock_class),
                    mode: d.dep.mode,
                    site: d.site.to_string(),
                    other_held: d
                        .dep
                        .held
                        .iter()
                        .enumerate()
                        .filter(|&(j, _)| j != held_idx)
                        .map(|(j, h)| LockRef::new(shown(h.0), d.held_classes[j]))
                        .collect(),
                    backtrace: d.backtrace.clone(),
                    retried: d.retried,
                }
            })
            .collect();
        Some(Violation::inversion(
            if class_level {
                ViolationKind::ClassInversion
            } else {
                ViolationKind::LockOrderInversion
            },
            edges,
        ))
    }
}

/// Writes of an instance noted one by one: from then on its [`WRITTEN`] bit is set, its writes
/// take the fast path unnoted, and it counts as written concurrently with every read pair
/// ([`Writes::unordered`], the rule before fork/join was looked at). A bound on the cost only (each
/// noted write takes the full path and this graph's lock), never a miss: the approximation is the
/// conservative side. The analyzer applies the same bound to the same writes
/// (`lockcheck-analyze`'s `WRITE_NOTES`), so that it reports what the runtime does.
///
/// [`WRITTEN`]: super::class::WRITTEN
pub(crate) const WRITE_NOTES: u32 = 8;
/// Distinct write clocks kept per class; past it the class counts as written concurrently with
/// every read pair (conservative; the analyzer applies the same bound, `WRITE_CLASS_CLOCKS`).
const WRITE_CLASS_CLOCKS: usize = 64;

/// The writes of an RwLock instance or class, for the read-read rule: a read-read link of a cycle
/// counts only if a write can come between the two reads ([`write_between`]).
///
/// [`write_between`]: lockcheck_core::deps::write_between
#[derive(Default)]
struct Writes {
    /// The distinct (thread, clock) of the writes noted.
    clocks: Vec<(u64, Arc<VectorClock>)>,
    /// Writes noted (instances: up to [`WRITE_NOTES`]).
    noted: u32,
    /// Some write is not known one by one (past a bound, or a task's): counted between every
    /// two reads.
    unordered: bool,
}

impl Writes {
    /// Whether a write can come between read request `a` and read hold `b`.
    fn between(&self, a: &Dep, b: &Dep) -> bool {
        self.unordered
            || self
                .clocks
                .iter()
                .any(|(t, c)| lockcheck_core::deps::write_between(*t, |x| c.get(x), a, b))
    }

    /// Notes a write (`None`: one not known by its clock). Returns whether the read-read rule's
    /// answers may have changed (a new clock, or unordered now).
    fn note(&mut self, write: Option<&(u64, Arc<VectorClock>)>, most_clocks: usize) -> bool {
        if self.unordered {
            return false;
        }
        self.noted = self.noted.saturating_add(1);
        match write {
            None => self.unordered = true,
            Some((t, c)) => {
                if self
                    .clocks
                    .iter()
                    .any(|(u, d)| u == t && (Arc::ptr_eq(d, c) || d == c))
                {
                    return false;
                }
                if self.clocks.len() >= most_clocks {
                    self.unordered = true;
                    self.clocks = Vec::new();
                } else {
                    self.clocks.push((*t, Arc::clone(c)));
                }
            }
        }
        true
    }
}

/// Notes a write lock of an RwLock instance (and its class) by the calling thread `writer`, at its
/// clock (`None`: not known by its clock, a task's: it counts between every two reads; the
/// clock is the one its dependencies share in its clock epoch, so a write repeated in one epoch
/// copies no clock), and re-checks
/// what that changes: a cycle excused because no write could come between the reads of a
/// read-read link can be a deadlock now (a queued writer blocks new readers). Every kept variant
/// of an edge into the lock (a request of it) is searched again. Returns the first new finding,
/// the limits hit, unpublished, and whether the instance's writes need no more noting (the
/// caller sets its `WRITTEN` bit: [`WRITE_NOTES`] reached, or unordered).
pub(crate) fn note_written(
    inst: u64,
    class: u32,
    writer: Option<u64>,
) -> (Option<Violation>, Vec<Violation>, bool) {
    // A trace started later must say it too.
    super::recorder::note_written(inst, class);
    let write = writer.map(|t| {
        let (end, clock) = this_thread(t, ReqClock::Own);
        if let Some(end) = end {
            end.wrote.store(true, Ordering::Release);
        }
        (t, clock)
    });
    with_graph(|g| {
        let mut limits = Vec::new();
        let w = g.writes_inst.entry(inst).or_default();
        let mut new_inst = w.note(write.as_ref(), usize::MAX);
        if w.noted >= WRITE_NOTES && !w.unordered {
            w.unordered = true;
            w.clocks = Vec::new();
            new_inst = true;
        }
        let done = w.unordered;
        // The class sees the instance's writes; once the instance's are no longer noted, the
        // class's cannot be known one by one either.
        let new_class = class != NO_CLASS && {
            let c = g.writes_class.entry(class).or_default();
            let noted = c.note(write.as_ref(), WRITE_CLASS_CLOCKS);
            let unordered = done && !c.unordered && {
                c.unordered = true;
                c.clocks = Vec::new();
                true
            };
            noted || unordered
        };
        if new_inst && g.inst.maybe_cyclic() {
            for (a, b, firsts) in shared_requests(&g.inst, inst) {
                if let Some(cycle) = g.search_inst(a, b, &firsts, &mut limits) {
                    if let Some(v) = g.violation(cycle, false) {
                        return (Some(v), limits, done);
                    }
                }
            }
        }
        if new_class && g.class.maybe_cyclic() {
            for (a, b, firsts) in shared_requests(&g.class, class) {
                if let Some(cycle) = g.search_class(a, b, &firsts, &mut limits) {
                    if let Some(v) = g.violation(cycle, true) {
                        return (Some(v), limits, done);
                    }
                }
            }
        }
        (None, limits, done)
    })
}

/// The groups of kept variants (see [`Edge::group`]) that request `key` in a plain shared mode
/// (the only requests whose links a first write changes), with their edges.
fn shared_requests<K: Copy + Eq + Hash, E: Edge<DepRecord>>(
    level: &Level<K, E>,
    key: K,
) -> Vec<(NodeId, NodeId, Vec<Arc<DepRecord>>)> {
    let Some(&b) = level.node_of.get(&key) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for &a in &level.inn[b as usize] {
        if let Some(e) = level.edges.get(&(a, b)) {
            // The mode is the group's (every member has it).
            out.extend(
                (0..)
                    .map_while(|i| e.group(i))
                    .filter(|g| g[0].dep.mode == Mode::Shared)
                    .map(|g| (a, b, g.to_vec())),
            );
        }
    }
    out
}

/// A request of a semaphore's permit by a thread that holds `held` of its permits (fewer than
/// all: holding all is a self-deadlock of its own), as [`note_permit_nest`] keeps it: the
/// thread's request that held the most, with its clock and its report's edge.
pub(crate) struct Nest {
    pub thread: u64,
    pub held: usize,
    pub clock: VectorClock,
    pub edge: EdgeInfo,
}

/// Holders of one semaphore whose nested requests are kept with their edge (a backtrace) and
/// clock, a memory bound only: a tokio semaphore of `MAX_PERMITS` permits with millions of tasks
/// that each request a second permit would otherwise keep an entry per task until a report that
/// never comes. Past it, the requests of other holders are still checked against the kept ones,
/// then only counted (see [`Nests::more_held`]); if the count could make up the missing permits,
/// the limit is reported (`ViolationKind::Incomplete`, `permit-nests`).
pub(crate) const NEST_LIMIT: usize = 256;

/// The nested requests of one semaphore: the most each thread held at one (the first
/// [`NEST_LIMIT`] threads), and whether the semaphore was reported (once).
#[derive(Default)]
struct Nests {
    threads: Vec<Nest>,
    reported: bool,
    /// Nested requests of holders not kept (past [`NEST_LIMIT`]), and the permits they held,
    /// summed: an over-approximation of what those holders could hold together (a holder that
    /// requests again is counted again, and their fork/join order is not known).
    more: usize,
    more_held: usize,
}

/// Notes a request of a permit of semaphore `inst` (of `permits` permits) made holding some of
/// its permits, and returns a finding, unpublished, the first time the threads seen doing so
/// could together hold every permit (spkenv/spk#805: a recursive call that takes a second
/// permit), and the limit hit on the way (an `Incomplete` violation, once per process), both
/// unpublished.
///
/// The rule (lockdep's recursive acquisition, counting): if threads `t1..tk`, pairwise able to
/// run at once, each requested a permit while holding `h1..hk` of them, and `h1 + ... + hk >=
/// permits`, then a schedule exists where they hold every permit and all wait: each thread's
/// holds at its request were acquired one at a time, so it can also stop at any count from 1 to
/// its `h` (a thread that holds `h` permits at a nested request made the requests holding 1..h-1
/// on the way), and counts summing to exactly `permits` can be chosen (more threads than
/// permits: one each). None of them can be given a permit back then: all wait, a deadlock.
/// "Able to run at once" is judged against the new request only (a thread ordered before or
/// after it by fork/join is left out): two earlier threads ordered with each other but not with
/// the new one can both count, which errs on the reporting side. A single thread holding fewer
/// than all the permits is silent: it cannot wait on itself, others give permits back.
///
/// At most [`NEST_LIMIT`] threads are kept per semaphore; a request of another thread is
/// checked against them, then only counted. When the kept threads able to run with the request
/// fall short but the counted ones could make up the difference, the rule cannot tell: the
/// `permit-nests` limit is reported instead of a finding (run `lockcheck analyze` on a trace,
/// which keeps them all).
pub(crate) fn note_permit_nest(
    inst: u64,
    permits: usize,
    nest: Nest,
) -> (Option<Violation>, Option<Violation>) {
    with_graph(|g| {
        let nests = g.permit_nests.entry(inst).or_default();
        if nests.reported {
            return (None, None);
        }
        // The new request: kept (its index), or, past the bound, only counted (it is still
        // checked against the kept ones).
        let (me, counted_only) = match nests.threads.iter().position(|n| n.thread == nest.thread) {
            Some(i) if nests.threads[i].held >= nest.held => (Some(i), None),
            Some(i) => {
                nests.threads[i] = nest;
                (Some(i), None)
            }
            None if nests.threads.len() < NEST_LIMIT => {
                nests.threads.push(nest);
                (Some(nests.threads.len() - 1), None)
            }
            None => {
                nests.more = nests.more.saturating_add(1);
                nests.more_held = nests.more_held.saturating_add(nest.held);
                (None, Some(nest))
            }
        };
        let nests = &*nests;
        let new = match (me, &counted_only) {
            (Some(i), _) => &nests.threads[i],
            (None, Some(n)) => n,
            (None, None) => return (None, None),
        };
        let ordered = |n: &Nest| {
            n.clock.happens_before(n.thread, &new.clock)
                || new.clock.happens_before(new.thread, &n.clock)
        };
        let counted: Vec<usize> = (0..nests.threads.len())
            .filter(|&i| Some(i) != me && !ordered(&nests.threads[i]))
            .collect();
        let others: usize = counted
            .iter()
            .fold(0, |t, &i| t.saturating_add(nests.threads[i].held));
        let total = others.saturating_add(new.held);
        if counted.is_empty() || total < permits {
            // Could the holders only counted make up the difference? (They include this request
            // when it is not kept.)
            let unkept = if me.is_none() { new.held } else { 0 };
            let possible = others
                .saturating_add(new.held)
                .saturating_add(nests.more_held - unkept);
            if nests.more == 0 || possible < permits {
                return (None, None);
            }
            let mut edge = new.edge.clone();
            edge.backtrace = None;
            if !g.limits_reported.insert("permit-nests") {
                return (None, None);
            }
            return (
                None,
                Some(Violation::inversion(
                    ViolationKind::Incomplete {
                        limit: "permit-nests",
                        bound: NEST_LIMIT as u64,
                    },
                    vec![edge],
                )),
            );
        }
        // The request that found it first, then the others.
        let mut edges = vec![new.edge.clone()];
        edges.extend(counted.iter().map(|&i| nests.threads[i].edge.clone()));
        g.permit_nests.get_mut(&inst).expect("noted above").reported = true;
        (
            Some(Violation::inversion(
                ViolationKind::LockOrderInversion,
                edges,
            )),
            None,
        )
    })
}

/// Whether [`note_permit_nest`] would learn something from a request of semaphore `inst` by
/// `thread` holding `held` of its permits (not reported yet, and the thread never requested
/// holding as many): else (`None`) the caller skips building its edge. `Some(true)`: the request
/// would be kept, with its edge's backtrace; `Some(false)`: past [`NEST_LIMIT`], only counted
/// (and checked against the kept ones), so its edge needs no backtrace (what a new holder's
/// request costs past the bound, a tokio semaphore with millions of nesting tasks).
pub(crate) fn permit_nest_need(inst: u64, thread: u64, held: usize) -> Option<bool> {
    with_graph(|g| match g.permit_nests.get(&inst) {
        None => Some(true),
        Some(n) if n.reported => None,
        Some(n) => match n.threads.iter().find(|x| x.thread == thread) {
            Some(x) if x.held >= held => None,
            Some(_) => Some(true),
            None => Some(n.threads.len() < NEST_LIMIT),
        },
    })
}

/// The holders kept with their nested requests of semaphore `inst`, and the requests only
/// counted (past [`NEST_LIMIT`]), for tests.
#[cfg(test)]
pub(crate) fn permit_nests(inst: u64) -> (usize, usize) {
    with_graph(|g| {
        g.permit_nests
            .get(&inst)
            .map_or((0, 0), |n| (n.threads.len(), n.more))
    })
}

/// Notes that semaphore instance `inst` has several permits: holders of its permits can run side
/// by side, so its permits are no gate. Called at its first blocking acquisition, when the trace
/// declares its permits too (the analyzer's gate rule reads them there).
pub(crate) fn note_several_permits(inst: u64) {
    with_graph(|g| {
        g.several_permits.insert(inst);
    });
}

/// Removes a dropped instance and its edges from the instance graph.
pub(crate) fn forget_instance(inst: u64) {
    with_graph(|g| {
        g.inst.remove(inst);
        if !g.several_permits.is_empty() {
            g.several_permits.remove(&inst);
        }
        if !g.permit_nests.is_empty() {
            g.permit_nests.remove(&inst);
        }
        if !g.writes_inst.is_empty() {
            g.writes_inst.remove(&inst);
        }
    });
}

/// The most variants kept on one edge of each level (instance, class), for tests.
pub(crate) fn most_variants() -> (usize, usize) {
    fn most<E: Edge<DepRecord>>(edges: &IdMap<(NodeId, NodeId), E>) -> usize {
        edges.values().map(Edge::members).max().unwrap_or(0)
    }
    with_graph(|g| (most(&g.inst.edges), most(&g.class.edges)))
}

/// The most groups kept on one class edge (what its bound counts, see [`Groups`]), for tests.
pub(crate) fn most_class_groups() -> usize {
    with_graph(|g| g.class.edges.values().map(Edge::groups).max().unwrap_or(0))
}

/// Threads remembered as having added a dependency while exiting, and whether [`LATE_LIMIT`]
/// was reached, for tests.
pub(crate) fn late_threads() -> (usize, bool) {
    with_graph(|g| (g.late.threads.len(), g.late.full))
}

/// Sizes of the graphs (instance nodes, instance edges, class nodes, class edges), for tests.
pub(crate) fn sizes() -> (usize, usize, usize, usize) {
    with_graph(|g| {
        (
            g.inst.node_of.len(),
            g.inst.edges.len(),
            g.class.node_of.len(),
            g.class.edges.len(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A class-level record: `thread` (at `epoch`) requests instance `lock` of class `class`
    /// holding `held` (instance, class, mode).
    fn rec(
        thread: u64,
        epoch: u32,
        lock: u64,
        class: u32,
        mode: Mode,
        held: &[(u64, u32, Mode)],
    ) -> Arc<DepRecord> {
        let mut clock = VectorClock::new();
        clock.set(thread, epoch);
        let held_modes: Vec<(u64, Mode)> = held.iter().map(|h| (h.0, h.2)).collect();
        Arc::new(DepRecord {
            held_sig: held_sig(&held_modes),
            dep: Dep {
                thread,
                lock,
                mode,
                held: Few::from_slice(&held_modes),
                clock: Arc::new(clock),
            },
            thread_name: Arc::from("t"),
            lock_class: class,
            held_classes: Few::collect(held.len(), held.iter().map(|h| h.1)),
            site: Location::caller(),
            held_sites: Few::collect(held.len(), held.iter().map(|_| Location::caller())),
            backtrace: None,
            end: None,
            retried: false,
        })
    }

    /// Adds `r` to every class edge it makes, as `add_dependency` does.
    fn add<E: Edge<DepRecord>>(level: &mut Level<u32, E>, r: &Arc<DepRecord>) {
        let b = level.node(r.lock_class);
        for &c in r.held_classes.iter() {
            if c != r.lock_class {
                let a = level.node(c);
                level.add(a, b, r);
            }
        }
    }

    /// Whether some feasible cycle goes through `r` on each of its class edges.
    fn cycles<E: Edge<DepRecord>>(level: &Level<u32, E>, r: &Arc<DepRecord>) -> Vec<bool> {
        let writes = IdMap::default();
        let link = |req: &DepRecord, holder: &DepRecord| class_link(req, holder, &writes);
        let b = level.node_of[&r.lock_class];
        r.held_classes
            .iter()
            .filter(|&&c| c != r.lock_class)
            .map(|c| {
                let a = level.node_of[c];
                let (cycle, exhausted) = search(
                    level,
                    a,
                    b,
                    std::slice::from_ref(r),
                    &link,
                    &IdSet::default(),
                );
                assert!(!exhausted);
                if let Some(cycle) = &cycle {
                    // The cycle passes every rule, pairwise and link by link.
                    for (i, x) in cycle.iter().enumerate() {
                        assert!(link(x, &cycle[(i + 1) % cycle.len()]));
                        for y in &cycle[..i] {
                            assert!(
                                ordered_apart(&x.dep, &y.dep)
                                    && !gated(&x.dep, &y.dep, &IdSet::default())
                            );
                        }
                    }
                }
                cycle.is_some()
            })
            .collect()
    }

    /// The class level's groups (members tried per group, with backjumping) keep the same
    /// variants as one flat list and find a cycle exactly when the flat search (every variant on
    /// its own, as before groups) does, on random programs with few classes and instances, so
    /// that gates are common and groups have several members.
    /// An edge whose variant was dropped at the level's limit stays with no member; the next
    /// variant of that edge must not list the edge in the adjacency again (a duplicate made every
    /// search step through it twice).
    #[test]
    fn an_edge_left_empty_at_a_limit_is_listed_once() {
        let mut level: Level<u32, Variants<DepRecord>> = Level::new(1);
        let r1 = rec(1, 1, 20, 2, Mode::Exclusive, &[(10, 1, Mode::Exclusive)]);
        let r2 = rec(2, 1, 21, 2, Mode::Exclusive, &[(11, 1, Mode::Exclusive)]);
        let (a, b) = (level.node(1), level.node(2));
        level.kept = LEVEL_LIMIT;
        assert!(level.add(a, b, &r1) == Added::Dropped("dependencies"));
        assert_eq!(level.edges[&(a, b)].members(), 0);
        level.kept = 0;
        assert!(level.add(a, b, &r2) == Added::New);
        assert_eq!(level.out[a as usize], vec![b]);
        assert_eq!(level.inn[b as usize], vec![a]);
    }

    #[test]
    fn grouped_search_agrees_with_the_flat_one() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        // Dependencies per program, how many in 4 hold a gate, and the gates (class 0): sparse
        // enough that a cycle has few ways to close, so that a wrong skip shows (ending a group
        // after any failure, or testing a group's gates on its first member only, both fail
        // this test).
        const RECS: usize = 20;
        const GATED: u64 = 3;
        const GATES: u64 = 2;
        let (mut found, mut missed, mut shared) = (0, 0, 0);
        for _ in 0..2000 {
            let mut flat: Level<u32, Variants<DepRecord>> = Level::new(1);
            let mut grouped: Level<u32, Groups<DepRecord>> = Level::new(1);
            let mut recs = Vec::new();
            for _ in 0..RECS {
                // Classes 1 to 3 of 4 instances each (instance = 10 * class + i), the gates of
                // class 0 (held first, never requested), 3 threads, 2 epochs.
                let class = 1 + next(3) as u32;
                let lock = u64::from(class) * 10 + next(4);
                let mode = if next(8) == 0 {
                    Mode::Shared
                } else {
                    Mode::Exclusive
                };
                let mut held: Vec<(u64, u32, Mode)> = Vec::new();
                if next(4) < GATED {
                    held.push((next(GATES), 0, Mode::Exclusive));
                }
                let c = 1 + next(3) as u32;
                let h = u64::from(c) * 10 + next(4);
                if c == class {
                    continue;
                }
                let m = if next(8) == 0 {
                    Mode::Shared
                } else {
                    Mode::Exclusive
                };
                held.push((h, c, m));
                let epoch = 1 + u32::from(next(6) == 0);
                let r = rec(1 + next(3), epoch, lock, class, mode, &held);
                add(&mut flat, &r);
                add(&mut grouped, &r);
                recs.push(r);
            }
            for (key, e) in &flat.edges {
                let g = &grouped.edges[key];
                let mut a: Vec<_> = e.each().map(Arc::as_ptr).collect();
                let mut b: Vec<_> = g.each().map(Arc::as_ptr).collect();
                a.sort_unstable();
                b.sort_unstable();
                assert_eq!(a, b, "the same variants kept");
                shared += g.members() - g.groups();
            }
            for r in &recs {
                let (f, g) = (cycles(&flat, r), cycles(&grouped, r));
                assert_eq!(f, g);
                found += f.iter().filter(|&&x| x).count();
                missed += f.iter().filter(|&&x| !x).count();
            }
        }
        assert!(
            found > 1000 && missed > 1000 && shared > 1000,
            "found {found}, not found {missed}, members beyond their group's first {shared}"
        );
    }

    /// A nested permit request of `thread` holding `held`, with clock `clock` (thread, epoch).
    fn nest(thread: u64, held: usize, clock: &[(u64, u32)]) -> Nest {
        let mut c = VectorClock::new();
        for &(t, e) in clock {
            c.set(t, e);
        }
        Nest {
            thread,
            held,
            clock: c,
            edge: EdgeInfo::on_lock(
                thread,
                format!("t{thread}"),
                LockRef::new(1, 0),
                Mode::Permit,
                String::new(),
                String::new(),
            ),
        }
    }

    /// A semaphore of tokio's `MAX_PERMITS` with 100,000 holders (tasks: ordered with nothing)
    /// that each request a second permit: at most [`NEST_LIMIT`] are kept, the rest counted, and
    /// nothing is reported (100,000 permits are far from all). Without the bound all 100,000
    /// entries (each with an edge) stay until the semaphore is dropped.
    #[test]
    fn permit_nests_are_bounded() {
        let inst = (1 << 62) | 1;
        let permits = usize::MAX >> 3;
        assert_eq!(permit_nest_need(inst, 1_000_000, 1), Some(true));
        for t in 0..100_000u64 {
            let (found, limit) = note_permit_nest(inst, permits, nest(1_000_000 + t, 1, &[]));
            assert!(found.is_none() && limit.is_none(), "holder {t}");
        }
        assert_eq!(
            permit_nests(inst),
            (NEST_LIMIT, 100_000usize.saturating_sub(NEST_LIMIT))
        );
        // A kept holder again, holding no more: nothing new; holding more: kept (a backtrace);
        // a holder past the bound: only counted (no backtrace to take).
        assert_eq!(permit_nest_need(inst, 1_000_000, 1), None);
        assert_eq!(permit_nest_need(inst, 1_000_000, 2), Some(true));
        assert_eq!(permit_nest_need(inst, 5_000_000, 1), Some(false));
        forget_instance(inst);
        assert_eq!(permit_nests(inst), (0, 0));
    }

    /// Past the bound, a request is still checked against the kept holders (a finding with all
    /// of them), and where only the counted ones could make up the permits the limit is reported
    /// (`permit-nests`), not a finding: a chain of threads each forked after the previous one's
    /// join is ordered, so it cannot deadlock, but the counted ones' order is forgotten.
    #[test]
    fn permit_nests_past_the_bound_are_checked_or_reported() {
        // A chain: thread k's clock has every earlier thread's epoch (each joined before it).
        let chain =
            |base: u64, k: u64| -> Vec<(u64, u32)> { (0..=k).map(|j| (base + j, 1)).collect() };
        let ordered = (1 << 62) | 2;
        let base = 2_000_000;
        for k in 0..NEST_LIMIT as u64 {
            let (found, limit) = note_permit_nest(ordered, 2, nest(base + k, 1, &chain(base, k)));
            assert!(found.is_none() && limit.is_none(), "chained thread {k}");
        }
        let k = NEST_LIMIT as u64;
        let (found, limit) = note_permit_nest(ordered, 2, nest(base + k, 1, &chain(base, k)));
        assert!(
            found.is_none() && limit.is_none(),
            "one counted: 1 permit of 2"
        );
        let (found, limit) =
            note_permit_nest(ordered, 2, nest(base + k + 1, 1, &chain(base, k + 1)));
        assert!(found.is_none(), "{found:?}");
        let limit = limit.expect("the limit is reported");
        assert_eq!(
            limit.kind,
            ViolationKind::Incomplete {
                limit: "permit-nests",
                bound: NEST_LIMIT as u64
            }
        );
        assert!(
            limit.render().contains("permit-nest rule keeps"),
            "{}",
            limit.render()
        );
        assert_eq!(permit_nests(ordered), (NEST_LIMIT, 2));
        // A thread not kept, ordered with none of them: a finding with every kept one.
        let (found, _) = note_permit_nest(ordered, 2, nest(base + 10_000, 1, &[]));
        let found = found.expect("checked against the kept holders");
        assert_eq!(found.kind, ViolationKind::LockOrderInversion);
        assert_eq!(found.edges.len(), NEST_LIMIT + 1);
        assert_eq!(found.edges[0].thread_id, base + 10_000);
        forget_instance(ordered);
    }
}
