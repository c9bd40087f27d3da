//! Cycle search over the lock graph, at instance or class level, with the iGoodLock filters applied
//! during the search.
//!
//! The graph has one node per lock (or class) and an edge `h -> l` labelled by every dependency
//! that requested `l` while holding `h` ([`LockGraph`], shared by every analysis of the level).
//! Strongly connected components (Tarjan) bound the
//! search; inside each, a Johnson-style search (each cycle is found from its smallest node only)
//! builds *dependency chains*: one dependency per edge, from pairwise distinct threads (so a chain is
//! never longer than the number of threads).
//!
//! An extension that fails a feasibility rule ([`check_pair`], [`check_blocking`], [`check_link`])
//! is not followed for violations; it is followed in a "filtered" mode, under its own step budget,
//! only to name the filter that removed the candidate. So infeasible branches cost at most that
//! budget, and the listing of filtered candidates is best-effort while the violations are complete
//! up to the main bound.
//!
//! Lock cycles whose dependencies all come from one thread are never chains; a separate small search
//! per thread lists them as `same-thread` candidates, unless the same set of locks was already a
//! candidate between distinct threads.
//!
//! Deduplication: one candidate per (set of nodes, filter), counting the dependency combinations it
//! stands for; violations are the candidates without a filter.

use crate::hierarchy::FasGraph;
use crate::model::Dep;
use crate::model::{LockId, Model};
use lockcheck_core::deps::{check_blocking, check_link, check_pair, DepView, Infeasible};
use lockcheck_core::trace::{LockKind, Mode};
use std::collections::HashMap;

/// Maps looked up in the inner loops of the root-cause search (by dependency or node index).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Which graph to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GraphLevel {
    /// Nodes are lock instances.
    Instance,
    /// Nodes are lock classes; two instances of one class nested are not an edge.
    Class,
}

impl GraphLevel {
    /// `instance` or `class`.
    pub fn name(self) -> &'static str {
        match self {
            GraphLevel::Instance => "instance",
            GraphLevel::Class => "class",
        }
    }
}

/// Bounds of the search.
#[derive(Debug, Clone, Copy)]
pub struct SearchLimits {
    /// Distinct candidates (one per set of locks and filter) per component.
    pub max_cycles: u64,
    /// Extension steps per component (enumeration), or per root-cause edge (the search for its
    /// shortest valid cycle). In the enumeration a candidate tested against a chain of 16
    /// dependencies or more counts one step more per 16 (`PAIRS_PER_STEP`).
    pub max_steps: u64,
    /// Work (extension steps and graph traversal) of all root-cause searches of one level
    /// together: on a hostile trace whose graph is nearly complete, most edges are root causes.
    pub max_total_steps: u64,
    /// Extension steps spent following infeasible branches (to name their filter), per
    /// component, counted as in `max_steps`' enumeration.
    pub max_filtered_steps: u64,
    /// Filtered candidates listed per level (the rest are not searched for).
    pub max_listed: u64,
    /// Further example cycles kept per root cause (beyond the shortest one).
    pub max_examples: u64,
    /// Extension steps spent per root cause looking for further examples from its first valid
    /// cycle on, the rest of that round included (only the count of cycles it closes depends on
    /// it).
    pub max_example_steps: u64,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            max_cycles: 10_000,
            max_steps: 5_000_000,
            max_total_steps: 50_000_000,
            max_filtered_steps: 200_000,
            max_listed: 1_000,
            max_examples: 10,
            max_example_steps: 100_000,
        }
    }
}

/// One cycle of the lock graph with a witness chain of dependencies.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The level it was found at.
    pub level: GraphLevel,
    /// Nodes (lock ids or class ids) of the cycle in order, smallest first.
    pub nodes: Vec<u32>,
    /// Witness: `deps[i]` (an index into [`Model::deps`]) requests `nodes[i + 1]` while holding
    /// `nodes[i]` (cyclically).
    pub deps: Vec<u32>,
    /// The filter that removed it (`None`: a violation).
    pub filter: Option<&'static str>,
    /// Why, in words (empty for violations).
    pub reason: String,
    /// How many dependency combinations it stands for.
    pub combinations: u64,
}

/// What the search of one level found.
#[derive(Debug, Clone, Default)]
pub struct LevelResult {
    /// Candidates, violations first, then by node set.
    pub candidates: Vec<Candidate>,
    /// Bounds that were hit (results may be incomplete).
    pub warnings: Vec<String>,
    /// Bounds that only limit the listing of filtered candidates.
    pub notes: Vec<String>,
    /// Steps spent.
    pub steps: u64,
}

fn rank(e: &Infeasible<LockId>) -> u8 {
    // "Most specific reason": a property the user chose for one acquisition first, then the
    // mode rule, then the guards, then ordering, and same-thread last.
    match e {
        Infeasible::NonBlocking { .. } => 5,
        Infeasible::ReadRead { .. } => 4,
        Infeasible::GateLock { .. } => 3,
        Infeasible::HappensBefore => 2,
        Infeasible::SameThread { .. } => 1,
    }
}

fn worse(cur: Option<Infeasible<LockId>>, e: Infeasible<LockId>) -> Option<Infeasible<LockId>> {
    match cur {
        Some(c) if rank(&c) >= rank(&e) => Some(c),
        _ => Some(e),
    }
}

/// The node of a lock at `level`.
pub fn node_of(model: &Model, level: GraphLevel, lock: LockId) -> u32 {
    match level {
        GraphLevel::Instance => lock,
        GraphLevel::Class => model.locks[lock as usize].class,
    }
}

pub use crate::graph::{EdgeWeights, LockGraph};

/// A candidate's key in the listing: its node set sorted, then its filter's code
/// ([`filter_code`]), in one vector, so that a key built in a reused buffer looks a candidate up
/// as a slice (a hit, the common case, allocates nothing).
type Key = Vec<u32>;

/// The listing's cache of [`check_pair`] answers has `2^PAIR_CACHE_BITS` slots.
const PAIR_CACHE_BITS: u32 = 13;

/// A candidate's filter in its key: 0 for none (a violation), else 1 + the filter's position in
/// [`crate::report::FILTER_ORDER`].
fn filter_code(filter: Option<&str>) -> u32 {
    filter.map_or(0, |f| {
        1 + crate::report::FILTER_ORDER
            .iter()
            .position(|&x| x == f)
            .expect("every filter is in FILTER_ORDER") as u32
    })
}

/// Whether a key ([`Key`]) is a filtered candidate's.
fn is_filtered(k: &Key) -> bool {
    k.last().is_some_and(|&c| c != 0)
}

/// Johnson-style enumeration inside one component, on the shared [`LockGraph`]: nodes are the
/// graph's own ids, and a node belongs to the component when `comp[node] == comp_id`.
struct Search<'a> {
    model: &'a Model,
    level: GraphLevel,
    graph: &'a LockGraph,
    comp: &'a [u32],
    comp_id: u32,
    start: u32,
    /// Cycle length (edges) searched in this round of the iterative deepening.
    len: usize,
    /// Shortest distance from each node to `start` (over nodes >= start), `u32::MAX` if none;
    /// indexed by node, reset only where the last search reached.
    dist: Vec<u32>,
    reached: Vec<u32>,
    /// The nodes of `reached` other than `start`, ascending: the only targets a path's edge
    /// can have before the last one (see [`Search::keep_edges`]).
    near: Vec<u32>,
    on_path: Vec<bool>,
    path: Vec<u32>,
    chain: Vec<u32>,
    /// Per depth of the path, the out-edges of the node there that the pruning keeps (see
    /// [`Search::keep_edges`]): they depend on the path alone, not on the dependencies chosen
    /// along it, so they are computed once per path and shared by every chain over it.
    edges: Vec<Vec<u32>>,
    limits: SearchLimits,
    steps: u64,
    filtered_steps: u64,
    found: u64,
    stopped: bool,
    filtered_truncated: bool,
    /// Filtered candidates listed so far at this level.
    listed: u64,
    out: &'a mut FastMap<Key, Candidate>,
    /// The key of the cycle being recorded (a buffer reused).
    key: Vec<u32>,
    /// The latest [`check_pair`] answers, direct-mapped by the pair (see [`Search::pair`]).
    pairs: Vec<(u64, Result<(), Infeasible<LockId>>)>,
    /// One slot per lock, all `None` between uses: the scratch of [`pair_by_marks`].
    modes: Vec<Option<Mode>>,
    /// Tests only: every path's edges by a scan of all its out-edges, every pair checked anew
    /// (the listing as it was before its shortcuts, to compare them against).
    reference: bool,
    /// The near nodes' edges are searched for when `near.len() * near_factor` is below the
    /// edges to scan ([`NEAR_FACTOR`]; tests vary it).
    near_factor: usize,
}

impl Search<'_> {
    fn dep(&self, i: u32) -> Dep<'_> {
        self.model.dep(i)
    }

    /// [`check_pair`] of dependencies `a` and `b`, remembered: a chain's earlier dependencies
    /// meet the dependencies of an edge again for every choice of the ones between them.
    fn pair(&mut self, a: u32, b: u32) -> Result<(), Infeasible<LockId>> {
        if self.reference {
            return check_pair(&self.dep(a), &self.dep(b));
        }
        let key = (a as u64) << 32 | b as u64;
        let slot = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - PAIR_CACHE_BITS)) as usize;
        if self.pairs[slot].0 == key {
            return self.pairs[slot].1.clone();
        }
        let r = pair_by_marks(self.model, &mut self.modes, a, b);
        self.pairs[slot] = (key, r.clone());
        r
    }

    fn link(&self, d: &Dep<'_>, next: &Dep<'_>) -> Result<(), Infeasible<LockId>> {
        link_rule(self.model, self.level, d, next)
    }

    /// The out-edges of `node`, the last node of the path, that a chain over the path may
    /// extend by: inside the component, back to `start` only at the searched length, else to
    /// a node above `start`, off the path, close enough to `start` (into `self.edges[level]`).
    fn keep_edges(&mut self, node: u32, level: usize) {
        let graph = self.graph;
        let mut kept = std::mem::take(&mut self.edges[level]);
        kept.clear();
        let depth = level + 1;
        let r = graph.out_edges(node);
        if self.reference {
            for e in r {
                let v = graph.target(e);
                let keep = self.comp[v as usize] == self.comp_id
                    && if v == self.start {
                        depth == self.len
                    } else {
                        v > self.start
                            && !self.on_path[v as usize]
                            && depth as u64 + self.dist[v as usize] as u64 <= self.len as u64
                    };
                if keep {
                    kept.push(e);
                }
            }
        } else if depth == self.len {
            // Only the edge back to `start` is short enough: any other node is at least one
            // edge away from it (most paths end here, so this is a search, not a scan).
            if let Some(e) = graph.find(node, self.start) {
                kept.push(e);
            }
            debug_assert!(r
                .filter(|&e| graph.target(e) != self.start)
                .all(|e| self.dist[graph.target(e) as usize] >= 1));
        } else {
            // The edges leave `node` by increasing target: skip those to `start` and below.
            let first_above = |mut lo: u32, v: u32| {
                let mut hi = r.end;
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if graph.target(mid) <= v {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                lo
            };
            let lo = first_above(r.start, self.start);
            if self.near.len().saturating_mul(self.near_factor) < (r.end - lo) as usize {
                // Few nodes are near `start`, many edges leave `node`: each near node's edge
                // is searched for (ascending, as a scan would find them) instead.
                let mut from = lo;
                for &v in &self.near {
                    if self.on_path[v as usize]
                        || depth as u64 + self.dist[v as usize] as u64 > self.len as u64
                    {
                        continue;
                    }
                    from = first_above(from, v - 1);
                    if from < r.end && graph.target(from) == v {
                        kept.push(from);
                    }
                }
                self.edges[level] = kept;
                return;
            }
            for e in lo..r.end {
                let v = graph.target(e);
                if self.comp[v as usize] != self.comp_id
                    || self.on_path[v as usize]
                    || depth as u64 + self.dist[v as usize] as u64 > self.len as u64
                {
                    continue;
                }
                kept.push(e);
            }
        }
        self.edges[level] = kept;
    }

    /// Extends the chain (of `level` dependencies, over the path) by every dependency of the
    /// edges in `self.edges[level]`, which [`Search::keep_edges`] filled for the path's last
    /// node.
    fn dfs(&mut self, level: usize, failure: Option<Infeasible<LockId>>) {
        let graph = self.graph;
        if self.edges.len() <= level + 1 {
            self.edges.resize_with(level + 2, Vec::new);
        }
        let edges = std::mem::take(&mut self.edges[level]);
        'edges: for &e in &edges {
            let v = graph.target(e);
            let deps = graph.deps(e);
            // The next level's edges, computed at the first dependency that extends to `v`.
            let mut next_kept = false;
            for &di in deps {
                if self.stopped {
                    break 'edges;
                }
                // A step is one candidate, and its tests against the chain below cost one
                // more per PAIRS_PER_STEP dependencies of the chain.
                let work = 1 + (self.chain.len() / PAIRS_PER_STEP) as u64;
                self.steps += work;
                if self.steps > self.limits.max_steps {
                    self.stopped = true;
                    break 'edges;
                }
                let model = self.model;
                let d = model.dep(di);
                if self
                    .chain
                    .iter()
                    .any(|&c| self.dep(c).thread() == d.thread())
                {
                    continue;
                }
                let mut f = failure.clone();
                if let Err(e) = check_blocking(&d) {
                    f = worse(f, e);
                }
                for i in 0..self.chain.len() {
                    if let Err(e) = self.pair(self.chain[i], di) {
                        f = worse(f, e);
                    }
                }
                if let Some(&last) = self.chain.last() {
                    if let Err(e) = self.link(&self.dep(last), &d) {
                        f = worse(f, e);
                    }
                }
                if v == self.start {
                    let first = self.chain[0];
                    if let Err(e) = self.link(&d, &self.dep(first)) {
                        f = worse(f, e);
                    }
                    self.record(di, f);
                    continue;
                }
                if f.is_some() {
                    self.filtered_steps += work;
                    if self.filtered_steps > self.limits.max_filtered_steps {
                        self.filtered_truncated = true;
                        continue;
                    }
                }
                self.on_path[v as usize] = true;
                self.path.push(v);
                self.chain.push(di);
                if !next_kept || self.reference {
                    self.keep_edges(v, level + 1);
                    next_kept = true;
                }
                self.dfs(level + 1, f);
                self.chain.pop();
                self.path.pop();
                self.on_path[v as usize] = false;
            }
        }
        self.edges[level] = edges;
    }

    /// Reverse BFS from `start` over nodes `> start` of the component, at most `self.len - 1`
    /// deep: a node `len` steps away is pruned like an unreached one (the path to it has an
    /// edge already), and that last level was the widest (on a dense component, every in-edge
    /// of every node one step away, for each start).
    fn distances(&mut self) {
        for &x in &self.reached {
            self.dist[x as usize] = u32::MAX;
        }
        self.reached.clear();
        self.dist[self.start as usize] = 0;
        self.reached.push(self.start);
        let mut frontier = vec![self.start];
        let mut depth = 0u32;
        while !frontier.is_empty() && (depth as usize) + 1 < self.len {
            depth += 1;
            let mut next = Vec::new();
            for &u in &frontier {
                let mut sources = self.graph.sources();
                for &e in self.graph.in_edges(u) {
                    let w = sources.of(e);
                    if w > self.start
                        && self.comp[w as usize] == self.comp_id
                        && self.dist[w as usize] == u32::MAX
                    {
                        self.dist[w as usize] = depth;
                        self.reached.push(w);
                        next.push(w);
                    }
                }
            }
            frontier = next;
        }
    }

    fn record(&mut self, last: u32, f: Option<Infeasible<LockId>>) {
        let filter = f.as_ref().map(|e| e.filter_name());
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        key.extend_from_slice(&self.path);
        key.sort_unstable();
        key.push(filter_code(filter));
        if let Some(c) = self.out.get_mut(key.as_slice()) {
            // Another dependency combination of a known candidate: counted, costs only steps.
            c.combinations += 1;
            self.key = key;
            return;
        }
        if self.found >= self.limits.max_cycles {
            self.stopped = true;
            self.key = key;
            return;
        }
        self.found += 1;
        if filter.is_some() {
            if self.listed >= self.limits.max_listed {
                self.filtered_truncated = true;
                self.key = key;
                return;
            }
            self.listed += 1;
        }
        let mut deps = self.chain.clone();
        deps.push(last);
        let reason = match &f {
            Some(e) => describe(self.model, e),
            None => String::new(),
        };
        let candidate = Candidate {
            level: self.level,
            nodes: self.path.clone(),
            deps,
            filter,
            reason,
            combinations: 1,
        };
        self.out.insert(key, candidate);
    }
}

/// [`check_pair`] of dependencies `a` and `b` of `model`, with the same answer (the same first
/// gate in `a`'s held order), in time linear in the two held sets: `b`'s holds are marked in
/// `modes` (one slot per lock, all `None` before and after: the mode of `b`'s oldest hold of
/// each lock) and `a`'s read against them, where `check_pair` walked `b`'s held set up the
/// interned tree once per lock `a` holds (`Dep::held_mode`). On the hostile random trace, where
/// held sets have about a hundred locks, the listing's 11,277 pair checks were 312M
/// instructions, 27,600 each.
fn pair_by_marks(
    model: &Model,
    modes: &mut [Option<Mode>],
    a: u32,
    b: u32,
) -> Result<(), Infeasible<LockId>> {
    let (da, db) = (model.dep(a), model.dep(b));
    if da.thread() == db.thread() {
        return Err(Infeasible::SameThread {
            thread: da.thread(),
        });
    }
    let held_b = db.rec().held;
    // Newest first: the last mode written for a lock is its oldest hold's.
    for (l, m) in model.held_sets.rev_iter(held_b) {
        modes[l as usize] = Some(m);
    }
    let gate = da.held_iter().find(|&(la, ma)| {
        modes[la as usize]
            .is_some_and(|mb| (ma.excludes(mb) || mb.excludes(ma)) && da.gates(la, ma))
    });
    for (l, _) in model.held_sets.rev_iter(held_b) {
        modes[l as usize] = None;
    }
    if let Some((gate, _)) = gate {
        return Err(Infeasible::GateLock { gate });
    }
    if da.happens_before(&db) || db.happens_before(&da) {
        return Err(Infeasible::HappensBefore);
    }
    Ok(())
}

/// Says why a candidate was removed, naming locks by their display names.
pub fn describe(model: &Model, e: &Infeasible<LockId>) -> String {
    match e {
        Infeasible::SameThread { thread } => {
            format!(
                "every edge comes from thread {}",
                model.thread_name(*thread as u32)
            )
        }
        Infeasible::GateLock { gate } => {
            format!(
                "both acquisitions are guarded by the common lock {}",
                model.lock_name(*gate)
            )
        }
        Infeasible::ReadRead { lock }
            if model.classes[model.locks[*lock as usize].class as usize].kind == LockKind::End =>
        {
            format!(
                "a scope's implicit join waits for the closure of the thread it joins ({}), \
                 not for its thread-local destructors, which took their locks after the \
                 closure returned",
                model.lock_name(*lock)
            )
        }
        Infeasible::ReadRead { lock } if model.locks[*lock as usize].ever_written => {
            format!(
                "no write of {} can come between its reads (each is by one of the readers' \
                 threads, or ordered before or after one of them by spawn/join): readers do not \
                 block readers",
                model.lock_name(*lock)
            )
        }
        Infeasible::ReadRead { lock } => {
            format!(
                "{} is only ever read-locked: readers do not block readers",
                model.lock_name(*lock)
            )
        }
        other => other.to_string(),
    }
}

/// The mode rule of the link from `d` to `next` at `level`: `next` holds (an instance of) what
/// `d` requests, in a mode the request conflicts with.
fn link_rule(
    model: &Model,
    level: GraphLevel,
    d: &Dep<'_>,
    next: &Dep<'_>,
) -> Result<(), Infeasible<LockId>> {
    match level {
        GraphLevel::Instance => check_link(d, next, model.write_between(false, d, next)),
        GraphLevel::Class => {
            // `next` holds some instance of the class `d` requests; at class level that
            // instance stands for `d.lock`, so the mode rule is the same as check_link's.
            let c = model.locks[d.lock() as usize].class;
            let ever_written = model.write_between(true, d, next);
            let conflicts = model.held_sets.rev_iter(next.rec().held).any(|(h, m)| {
                model.locks[h as usize].class == c && d.mode().conflicts_with(m, ever_written)
            });
            if conflicts {
                Ok(())
            } else {
                Err(Infeasible::ReadRead { lock: d.lock() })
            }
        }
    }
}

/// Whether [`link_rule`] from `d` to dependency `next` holds, with `next`'s mode of the lock read
/// from its flat copy at instance level (a binary search instead of a walk of its held set up the
/// interned tree). The copy leaves out the holds that are no gate ([`Model::gates`]: the permits
/// of a semaphore of several permits), so a link on such a semaphore walks the held set.
fn link_ok(
    model: &Model,
    level: GraphLevel,
    flat: Option<&FlatHeld>,
    d: &Dep<'_>,
    next: u32,
) -> bool {
    let copied = model.locks[d.lock() as usize]
        .permits
        .is_none_or(|p| p <= 1);
    if level == GraphLevel::Instance && copied {
        if let Some(held) = flat.and_then(|f| f.held_mode(next, d.lock())) {
            // check_link on the oldest hold (whether a write can come between two reads is
            // asked only of a read behind a read).
            return held.is_some_and(|m| {
                d.mode().conflicts_with(m, false)
                    || (d.mode() == Mode::Shared && model.write_between(false, d, &model.dep(next)))
            });
        }
    }
    link_rule(model, level, d, &model.dep(next)).is_ok()
}

/// Finds the candidates of one level.
pub fn find_cycles(model: &Model, level: GraphLevel, limits: &SearchLimits) -> LevelResult {
    find_cycles_on(model, &LockGraph::build(model, level), limits)
}

/// [`find_cycles`] on the level's graph built once by the caller ([`LockGraph::build`]).
pub fn find_cycles_on(model: &Model, graph: &LockGraph, limits: &SearchLimits) -> LevelResult {
    list_cycles(model, graph, limits, false, NEAR_FACTOR)
}

/// [`find_cycles_on`] in two steps: the search for cycles between threads, which reads the
/// graph's in-edges ([`LockGraph::in_edges`]), then ([`CrossListing::finish`]) the listing of
/// same-thread cycles, which does not, so that the in-edges can be released between the two
/// ([`crate::graph::release_in_edges`]) and the second step run beside the root-cause search
/// with less memory held. The same result as [`find_cycles_on`].
pub fn list_cross_threads(model: &Model, graph: &LockGraph, limits: &SearchLimits) -> CrossListing {
    list_cross(model, graph, limits, false, NEAR_FACTOR)
}

/// The listing after its search between threads ([`list_cross_threads`]).
pub struct CrossListing {
    out: FastMap<Key, Candidate>,
    result: LevelResult,
    comp: Vec<u32>,
    thread_of: Vec<u32>,
}

impl CrossListing {
    /// The same-thread cycles added, the candidates sorted: the listing's result. `graph` is the
    /// graph the search ran on, its in-edges released or not.
    pub fn finish(self, model: &Model, graph: &LockGraph, limits: &SearchLimits) -> LevelResult {
        let CrossListing {
            mut out,
            mut result,
            comp,
            thread_of,
        } = self;
        same_thread_cycles(
            model,
            graph,
            &comp,
            &thread_of,
            limits,
            &mut out,
            &mut result,
        );
        drop((comp, thread_of));
        let mut cands: Vec<Candidate> = out.into_values().collect();
        // Violations first, then by filter and node set: one key per candidate (a candidate is
        // one per node set and filter, so no two keys are equal), computed once.
        cands.sort_by_cached_key(|c| (filter_code(c.filter), sorted(&c.nodes)));
        result.candidates = cands;
        result
    }
}

/// A search for an edge costs about as much as scanning this many edges.
const NEAR_FACTOR: usize = 8;

/// The chain's dependencies whose pair tests with a candidate count as one more step of the
/// listing's search ([`Search::dfs`]): a chain of fewer costs a step per candidate, as ever,
/// and a long one its share, so that the listing's bounds bound its work. Counted one step
/// each, a ring of 500 locks taken by threads ordered by a chain of 200,000 forks spent 5.6 s
/// on 200,000 filtered steps, each testing a chain of up to 500 dependencies.
const PAIRS_PER_STEP: usize = 16;

/// [`find_cycles_on`], or with `reference` its search without shortcuts (tests compare them, and
/// vary `near_factor`, see [`Search::near_factor`]).
fn list_cycles(
    model: &Model,
    graph: &LockGraph,
    limits: &SearchLimits,
    reference: bool,
    near_factor: usize,
) -> LevelResult {
    list_cross(model, graph, limits, reference, near_factor).finish(model, graph, limits)
}

/// [`list_cycles`]' search between threads ([`list_cross_threads`]).
fn list_cross(
    model: &Model,
    graph: &LockGraph,
    limits: &SearchLimits,
    reference: bool,
    near_factor: usize,
) -> CrossListing {
    let level = graph.level().unwrap_or(GraphLevel::Instance);
    let mut out: FastMap<Key, Candidate> = FastMap::default();
    let mut result = LevelResult::default();
    let sccs = graph.sccs_by(|_| true);
    let n = graph.nodes();
    let mut comp = vec![u32::MAX; n];
    for (i, scc) in sccs.iter().enumerate() {
        for &x in scc {
            comp[x as usize] = i as u32;
        }
    }
    let mut dist = vec![u32::MAX; n];
    let mut on_path = vec![false; n];
    // No dependency pair is `u64::MAX` (the ids are below `u32::MAX`): an empty slot.
    let mut pairs = vec![(u64::MAX, Ok(())); 1 << PAIR_CACHE_BITS];
    let mut modes: Vec<Option<Mode>> = vec![None; model.locks.len()];
    let mut seen_thread = vec![false; model.threads.len()];
    // The thread of every dependency, read once per (dependency, edge) entry of a component
    // here and in the same-thread listing: a compact copy is read from cache where the
    // records' field missed it (a third of the count's time on the hostile random trace).
    let thread_of: Vec<u32> = model.deps.iter().map(|r| r.thread).collect();
    for (ci, scc) in sccs.iter().enumerate() {
        // Distinct threads of the component.
        seen_thread.iter_mut().for_each(|s| *s = false);
        let mut threads = 0usize;
        for &x in scc {
            for e in graph.out_edges(x) {
                if comp[graph.target(e) as usize] != ci as u32 {
                    continue;
                }
                for &d in graph.deps(e) {
                    let t = thread_of[d as usize] as usize;
                    if let Some(seen) = seen_thread.get_mut(t) {
                        if !*seen {
                            *seen = true;
                            threads += 1;
                        }
                    }
                }
            }
        }
        // A chain has one dependency per distinct thread: no cycle is longer than that.
        let max_len = threads.min(scc.len());
        let listed = out.keys().filter(|k| is_filtered(k)).count() as u64;
        let mut s = Search {
            model,
            level,
            graph,
            comp: &comp,
            comp_id: ci as u32,
            start: 0,
            len: 2,
            dist: std::mem::take(&mut dist),
            reached: Vec::new(),
            near: Vec::new(),
            on_path: std::mem::take(&mut on_path),
            path: Vec::new(),
            chain: Vec::new(),
            edges: vec![Vec::new(); 2],
            key: Vec::new(),
            pairs: std::mem::take(&mut pairs),
            modes: std::mem::take(&mut modes),
            reference,
            near_factor,
            limits: *limits,
            steps: 0,
            filtered_steps: 0,
            found: 0,
            stopped: false,
            filtered_truncated: false,
            listed,
            out: &mut out,
        };
        // Iterative deepening: all cycles of 2 locks first, then 3, ... so that when a bound
        // is hit, the short cycles (the common bugs) are complete.
        'lengths: for len in 2..=max_len {
            s.len = len;
            for &start in scc {
                s.start = start;
                s.distances();
                s.near.clear();
                s.near
                    .extend(s.reached.iter().copied().filter(|&x| x != start));
                s.near.sort_unstable();
                s.on_path[start as usize] = true;
                s.path.push(start);
                s.keep_edges(start, 0);
                s.dfs(0, None);
                s.path.pop();
                s.on_path[start as usize] = false;
                if s.stopped {
                    break 'lengths;
                }
            }
        }
        for &x in &s.reached {
            s.dist[x as usize] = u32::MAX;
        }
        dist = std::mem::take(&mut s.dist);
        pairs = std::mem::take(&mut s.pairs);
        modes = std::mem::take(&mut s.modes);
        on_path = std::mem::take(&mut s.on_path);
        result.steps += s.steps;
        if s.stopped {
            let complete = if s.len > 2 {
                format!("; cycles of up to {} are complete", s.len - 1)
            } else {
                String::new()
            };
            result.warnings.push(format!(
                "{} cycle search stopped after {} candidates ({} steps) in a component of {} {} while searching cycles of {} {}{complete}; results may be incomplete (raise --max-cycles)",
                level.name(),
                s.found,
                s.steps.min(limits.max_steps),
                scc.len(),
                if level == GraphLevel::Instance { "locks" } else { "classes" },
                s.len,
                if level == GraphLevel::Instance { "locks" } else { "classes" },
            ));
        }
        if s.filtered_truncated {
            result.notes.push(format!(
                "the {} listing of filtered candidates in a component of {} nodes was cut short (at most {} listed, {} steps on filtered branches): a listing bound only, the search for violations is not affected",
                level.name(),
                scc.len(),
                limits.max_listed,
                limits.max_filtered_steps
            ));
        }
    }
    CrossListing {
        out,
        result,
        comp,
        thread_of,
    }
}

fn sorted(v: &[u32]) -> Vec<u32> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v
}

/// The longest same-thread cycle listed (an inconsistent order inside one thread is almost always
/// between two or three locks; longer ones would only repeat them).
pub const MAX_SAME_THREAD_LEN: usize = 4;

/// Calls `f(edge)` for each edge inside a component of the whole graph (`comp`, by node;
/// `u32::MAX`: a node on no cycle), in edge id order (so by source, then target). Read node by
/// node, the source known, where a search for each edge's source cost 0.2G instructions on the
/// hostile random trace.
pub(crate) fn each_edge_inside(graph: &LockGraph, comp: &[u32], mut f: impl FnMut(u32)) {
    for a in 0..graph.nodes() as u32 {
        let ca = comp[a as usize];
        if ca == u32::MAX {
            continue;
        }
        for e in graph.out_edges(a) {
            if comp[graph.target(e) as usize] == ca {
                f(e);
            }
        }
    }
}

/// Calls `f(thread, edge)` once for each edge inside a component of the whole graph
/// ([`each_edge_inside`]) and each thread below `threads` among its dependencies'
/// (`thread_of`), in edge id order.
fn each_thread_edge_inside(
    graph: &LockGraph,
    comp: &[u32],
    thread_of: &[u32],
    threads: usize,
    mut f: impl FnMut(usize, u32),
) {
    // The edge each thread was last counted for: a thread with several dependencies on one edge
    // counts once.
    let mut stamp = vec![u32::MAX; threads];
    each_edge_inside(graph, comp, |e| {
        for &d in graph.deps(e) {
            let t = thread_of[d as usize] as usize;
            if t < threads && stamp[t] != e {
                stamp[t] = e;
                f(t, e);
            }
        }
    });
}

/// Each thread's edges inside a component (by [`each_thread_edge_inside`]), by edge id (so by
/// source, then target), one entry per (thread, edge).
enum ThreadEdges {
    /// A list per thread, filled by one walk of the (edge, dependency) entries. Up to
    /// [`ThreadEdges::LISTS_MAX_THREADS`] threads.
    Lists(Vec<Vec<u32>>),
    /// One array by thread (`edges[first[t]..first[t + 1]]`), counted, then placed, by two
    /// walks: 4 bytes per thread where a list takes 24 (a trace of millions of threads).
    Flat { first: Vec<u32>, edges: Vec<u32> },
}

impl ThreadEdges {
    /// The most threads given a list each: 24 bytes of list per thread, 1.5 MB at most.
    /// On the hostile random trace (64 threads, 7.4M (thread, edge) entries, 10M (edge,
    /// dependency) entries) the second walk of the flat arrays was about 0.2G instructions.
    const LISTS_MAX_THREADS: usize = 1 << 16;

    /// The edges of each of `threads` threads inside a component of `comp`.
    fn of(graph: &LockGraph, comp: &[u32], thread_of: &[u32], threads: usize) -> ThreadEdges {
        Self::with_lists_up_to(graph, comp, thread_of, threads, Self::LISTS_MAX_THREADS)
    }

    /// [`ThreadEdges::of`], with lists up to `max_lists` threads (the tests try both forms).
    fn with_lists_up_to(
        graph: &LockGraph,
        comp: &[u32],
        thread_of: &[u32],
        threads: usize,
        max_lists: usize,
    ) -> ThreadEdges {
        if threads <= max_lists {
            let mut lists: Vec<Vec<u32>> = vec![Vec::new(); threads];
            each_thread_edge_inside(graph, comp, thread_of, threads, |t, e| lists[t].push(e));
            return ThreadEdges::Lists(lists);
        }
        let mut first = vec![0u32; threads + 1];
        each_thread_edge_inside(graph, comp, thread_of, threads, |t, _| first[t + 1] += 1);
        for t in 0..threads {
            first[t + 1] += first[t];
        }
        let mut edges = vec![0u32; first[threads] as usize];
        let mut fill = first.clone();
        each_thread_edge_inside(graph, comp, thread_of, threads, |t, e| {
            edges[fill[t] as usize] = e;
            fill[t] += 1;
        });
        ThreadEdges::Flat { first, edges }
    }

    /// Thread `t`'s edges, ascending.
    fn of_thread(&self, t: usize) -> &[u32] {
        match self {
            ThreadEdges::Lists(l) => &l[t],
            ThreadEdges::Flat { first, edges } => &edges[first[t] as usize..first[t + 1] as usize],
        }
    }
}

/// Lock cycles made by one thread alone: never a chain of distinct threads, listed as
/// `same-thread` (up to [`MAX_SAME_THREAD_LEN`] locks) unless their node set is already a candidate.
///
/// Works on the shared graph's arrays: a thread's own edges are the graph's edges that one of its
/// dependencies makes (witnessed by its smallest one), and only those inside a component of the
/// whole graph (`comp`, by node) can close a cycle. Walking every dependency's held set again and
/// sorting each thread's edges cost as much as the whole replay on a 5M-event trace.
///
/// Per thread: its edges' endpoints found once (a source looked up once per run of its edges),
/// its components, then for each component its edges inside it by rank, forward and reverse,
/// so that the depth-first search (at most [`MAX_SAME_THREAD_LEN`] deep: fixed arrays) reads
/// only edges it counts. The same steps in the same order as the search over the thread's whole
/// adjacency that skipped the edges leaving the component (`same_thread_cycles_reference`, kept
/// for the test): on the hostile random trace every thread spends its budget, so what is listed
/// depends on that order, and it is unchanged.
fn same_thread_cycles(
    model: &Model,
    graph: &LockGraph,
    comp: &[u32],
    thread_of: &[u32],
    limits: &SearchLimits,
    out: &mut FastMap<Key, Candidate>,
    result: &mut LevelResult,
) {
    let level = graph.level().unwrap_or(GraphLevel::Instance);
    // Looked up once per cycle closed (millions on the hostile random trace, most of them
    // covered): hashed fast, and by a slice of a buffer reused, so a lookup allocates nothing.
    let covered: std::collections::HashSet<Vec<u32>, foldhash::fast::RandomState> =
        out.keys().map(|k| k[..k.len() - 1].to_vec()).collect();
    let same_thread_code = filter_code(Some("same-thread"));
    let mut set: Vec<u32> = Vec::with_capacity(MAX_SAME_THREAD_LEN + 1);
    let mut listed = out.keys().filter(|k| is_filtered(k)).count() as u64;
    let threads = model.threads.len();
    let by_thread = ThreadEdges::of(graph, comp, thread_of, threads);
    // The witness of a thread's edge: its smallest dependency of that thread (the graph lists
    // them ascending), looked up only for a candidate listed.
    let witness = |e: u32, t: usize| -> u32 {
        graph
            .deps(e)
            .iter()
            .copied()
            .find(|&d| thread_of[d as usize] as usize == t)
            .expect("the thread makes the edge")
    };
    let budget = limits.max_filtered_steps;
    let mut truncated = false;
    let n = graph.nodes();
    let mut local = vec![u32::MAX; n];
    let mut nodes: Vec<u32> = Vec::new();
    // The endpoints (graph nodes) of each of the thread's edges, in the order of `own`.
    let mut ends: Vec<(u32, u32)> = Vec::new();
    let mut out_start: Vec<u32> = Vec::new();
    let mut tgt: Vec<u32> = Vec::new();
    let mut comp_l: Vec<u32> = Vec::new();
    // The local node's rank in its component.
    let mut rank: Vec<u32> = Vec::new();
    // The component searched, by rank: the edges leaving rank `r` inside it are
    // `fwd[fwd_start[r]..fwd_start[r + 1]]` (target ranks ascending, as in `tgt`), each with its
    // position in `own` in `fwd_at`; those entering it `rev[rev_start[r]..rev_start[r + 1]]`.
    let mut fwd_start: Vec<u32> = Vec::new();
    let mut fwd: Vec<u32> = Vec::new();
    let mut fwd_at: Vec<u32> = Vec::new();
    let mut rev_start: Vec<u32> = Vec::new();
    let mut rev_fill: Vec<u32> = Vec::new();
    let mut rev: Vec<u32> = Vec::new();
    let mut dist: Vec<u32> = Vec::new();
    let mut frontier: Vec<u32> = Vec::new();
    let mut next: Vec<u32> = Vec::new();
    const MAX: usize = MAX_SAME_THREAD_LEN;
    // The search below is written for paths of at most four nodes.
    const _: () = assert!(MAX == 4);
    for t in 0..threads {
        let own = by_thread.of_thread(t);
        if own.len() < 2 {
            // A cycle needs two edges.
            continue;
        }
        // `own` ascends, so its edges come by source: the source is looked up once per run.
        let mut sources = graph.sources();
        let (mut a, mut a_end) = (0u32, 0u32);
        nodes.clear();
        out_start.clear();
        tgt.clear();
        if own.len() >= n / 16 {
            // Many edges for the graph's nodes: the graph's own ids serve as local ids (the
            // nodes without an edge of this thread are components of one node, never searched),
            // and the adjacency is built in one pass, in time linear in the nodes and edges.
            nodes.extend(0..n as u32);
            out_start.resize(n + 1, 0);
            for &e in own {
                if e >= a_end {
                    a = sources.of(e);
                    a_end = graph.out_edges(a).end;
                }
                out_start[a as usize + 1] += 1;
                tgt.push(graph.target(e));
            }
            for u in 0..n {
                out_start[u + 1] += out_start[u];
            }
        } else {
            ends.clear();
            for &e in own {
                if e >= a_end {
                    a = sources.of(e);
                    a_end = graph.out_edges(a).end;
                }
                ends.push((a, graph.target(e)));
            }
            for &(a, b) in &ends {
                nodes.push(a);
                nodes.push(b);
            }
            nodes.sort_unstable();
            nodes.dedup();
            for (i, &x) in nodes.iter().enumerate() {
                local[x as usize] = i as u32;
            }
            // Local adjacency in compressed arrays: the edges of local node u are
            // `own[out_start[u]..out_start[u + 1]]`, targets ascending (local ids keep the
            // order).
            out_start.resize(nodes.len() + 1, 0);
            for &(a, b) in &ends {
                out_start[local[a as usize] as usize + 1] += 1;
                tgt.push(local[b as usize]);
            }
            for u in 0..nodes.len() {
                out_start[u + 1] += out_start[u];
            }
            for &x in &nodes {
                local[x as usize] = u32::MAX;
            }
        }
        let m = nodes.len();
        let sccs = small_sccs(&out_start, &tgt);
        if sccs.is_empty() {
            continue;
        }
        let t64 = t as u64;
        let mut steps = 0u64;
        comp_l.clear();
        comp_l.resize(m, u32::MAX);
        rank.clear();
        rank.resize(m, u32::MAX);
        for (ci, scc) in sccs.iter().enumerate() {
            for (i, &x) in scc.iter().enumerate() {
                comp_l[x] = ci as u32;
                rank[x] = i as u32;
            }
        }
        'sccs: for (ci, scc) in sccs.iter().enumerate() {
            let ci = ci as u32;
            let k = scc.len();
            fwd_start.clear();
            fwd.clear();
            fwd_at.clear();
            rev_start.clear();
            rev_start.resize(k + 1, 0);
            fwd_start.push(0);
            for &u in scc {
                let r = out_start[u] as usize..out_start[u + 1] as usize;
                for (at, &v) in r.clone().zip(&tgt[r]) {
                    let v = v as usize;
                    if comp_l[v] == ci {
                        let r = rank[v];
                        fwd.push(r);
                        fwd_at.push(at as u32);
                        rev_start[r as usize + 1] += 1;
                    }
                }
                fwd_start.push(fwd.len() as u32);
            }
            for i in 0..k {
                rev_start[i + 1] += rev_start[i];
            }
            rev.clear();
            rev.resize(rev_start[k] as usize, 0);
            rev_fill.clear();
            rev_fill.extend_from_slice(&rev_start[..k]);
            for u in 0..k {
                for &v in &fwd[fwd_start[u] as usize..fwd_start[u + 1] as usize] {
                    let at = &mut rev_fill[v as usize];
                    rev[*at as usize] = u as u32;
                    *at += 1;
                }
            }
            dist.clear();
            dist.resize(k, u32::MAX);
            for start in 0..k as u32 {
                // Distances to `start` over nodes above it, for pruning.
                dist.iter_mut().for_each(|d| *d = u32::MAX);
                dist[start as usize] = 0;
                frontier.clear();
                frontier.push(start);
                for depth in 1..MAX as u32 {
                    next.clear();
                    for &u in &frontier {
                        let r = rev_start[u as usize] as usize..rev_start[u as usize + 1] as usize;
                        for &w in &rev[r] {
                            if w > start && dist[w as usize] == u32::MAX {
                                dist[w as usize] = depth;
                                next.push(w);
                            }
                        }
                    }
                    std::mem::swap(&mut frontier, &mut next);
                }
                // Depth-first, at most four nodes deep (`MAX_SAME_THREAD_LEN`), as four nested
                // loops: a step per edge read, in the order of the search over a path stack;
                // `jN` is the position in `fwd` of the edge into the path's node `N`, and the
                // nodes on the path are `start` and `v1`..: a node joins the path when it is
                // above `start`, not on it, and at most `MAX - depth` edges from `start`.
                let range =
                    |x: u32| fwd_start[x as usize] as usize..fwd_start[x as usize + 1] as usize;
                let fits = |v: u32, depth: u64| depth + dist[v as usize] as u64 <= MAX as u64;
                // A cycle closed: listed, counted, or over the listing's bound (`true`).
                let mut close = |path: &[u32], wits: &[usize]| -> bool {
                    set.clear();
                    set.extend(path.iter().map(|&p| nodes[scc[p as usize]]));
                    set.sort_unstable();
                    if covered.contains(set.as_slice()) {
                        return false;
                    }
                    set.push(same_thread_code);
                    if let Some(c) = out.get_mut(set.as_slice()) {
                        c.combinations += 1;
                        return false;
                    }
                    if listed >= limits.max_listed {
                        return true;
                    }
                    listed += 1;
                    let nodes_of: Vec<u32> = path.iter().map(|&p| nodes[scc[p as usize]]).collect();
                    let deps: Vec<u32> = wits
                        .iter()
                        .map(|&w| witness(own[fwd_at[w] as usize], t))
                        .collect();
                    let reason = describe(model, &Infeasible::SameThread { thread: t64 });
                    out.insert(
                        set.clone(),
                        Candidate {
                            level,
                            nodes: nodes_of,
                            deps,
                            filter: Some("same-thread"),
                            reason,
                            combinations: 1,
                        },
                    );
                    false
                };
                let mut over = false;
                'search: for j1 in range(start) {
                    let v1 = fwd[j1];
                    steps += 1;
                    if steps > budget {
                        over = true;
                        break 'search;
                    }
                    if v1 == start {
                        truncated |= close(&[start], &[j1]);
                        continue;
                    }
                    if !(v1 > start && fits(v1, 1)) {
                        continue;
                    }
                    for j2 in range(v1) {
                        let v2 = fwd[j2];
                        steps += 1;
                        if steps > budget {
                            over = true;
                            break 'search;
                        }
                        if v2 == start {
                            truncated |= close(&[start, v1], &[j1, j2]);
                            continue;
                        }
                        if !(v2 > start && v2 != v1 && fits(v2, 2)) {
                            continue;
                        }
                        for j3 in range(v2) {
                            let v3 = fwd[j3];
                            steps += 1;
                            if steps > budget {
                                over = true;
                                break 'search;
                            }
                            if v3 == start {
                                truncated |= close(&[start, v1, v2], &[j1, j2, j3]);
                                continue;
                            }
                            if !(v3 > start && v3 != v1 && v3 != v2 && fits(v3, 3)) {
                                continue;
                            }
                            // The last node: each of its edges is a step, and only the edge
                            // back to `start` closes (every other node is more than one edge
                            // from it). Counted at once, the edge to `start` found by a binary
                            // search of the ascending targets (`v3`, one edge from `start`, has
                            // it): the same steps, and the same close while the budget lasts,
                            // without reading every edge (nine in ten of the hostile random
                            // trace's steps are these).
                            let r = range(v3);
                            let (at, len) = (r.start, r.len() as u64);
                            if let Ok(p) = fwd[r].binary_search(&start) {
                                if steps + (p as u64) < budget {
                                    truncated |= close(&[start, v1, v2, v3], &[j1, j2, j3, at + p]);
                                }
                            }
                            if steps + len > budget {
                                over = true;
                                break 'search;
                            }
                            steps += len;
                        }
                    }
                }
                if over {
                    truncated = true;
                    break 'sccs;
                }
            }
        }
    }
    if truncated {
        result.notes.push(format!(
            "the {} listing of same-thread candidates was cut short (at most {} listed, {} steps per thread): a listing bound only, the search for violations is not affected",
            level.name(),
            limits.max_listed,
            budget
        ));
    }
}

/// [`same_thread_cycles`] as it was before its search read compact per-component arrays (session
/// 13): the reference its test compares it with.
#[cfg(test)]
fn same_thread_cycles_reference(
    model: &Model,
    graph: &LockGraph,
    comp: &[u32],
    thread_of: &[u32],
    limits: &SearchLimits,
    out: &mut FastMap<Key, Candidate>,
    result: &mut LevelResult,
) {
    let level = graph.level().unwrap_or(GraphLevel::Instance);
    // Looked up once per cycle closed (millions on the hostile random trace, most of them
    // covered): hashed fast, and by a slice of a buffer reused, so a lookup allocates nothing.
    let covered: std::collections::HashSet<Vec<u32>, foldhash::fast::RandomState> =
        out.keys().map(|k| k[..k.len() - 1].to_vec()).collect();
    let same_thread_code = filter_code(Some("same-thread"));
    let mut set: Vec<u32> = Vec::with_capacity(MAX_SAME_THREAD_LEN + 1);
    let mut listed = out.keys().filter(|k| is_filtered(k)).count() as u64;
    let threads = model.threads.len();
    // Each thread's edges inside a component, by edge id (so by source, then target), one entry
    // per (thread, edge): counted, then placed, by the same walk.
    let mut first = vec![0u32; threads + 1];
    each_thread_edge_inside(graph, comp, thread_of, threads, |t, _| first[t + 1] += 1);
    for t in 0..threads {
        first[t + 1] += first[t];
    }
    let mut by_thread = vec![0u32; first[threads] as usize];
    let mut fill = first.clone();
    each_thread_edge_inside(graph, comp, thread_of, threads, |t, e| {
        by_thread[fill[t] as usize] = e;
        fill[t] += 1;
    });
    drop(fill);
    // The witness of a thread's edge: its smallest dependency of that thread (the graph lists
    // them ascending), looked up only for a candidate listed.
    let witness = |e: u32, t: usize| -> u32 {
        graph
            .deps(e)
            .iter()
            .copied()
            .find(|&d| thread_of[d as usize] as usize == t)
            .expect("the thread makes the edge")
    };
    let budget = limits.max_filtered_steps;
    let mut truncated = false;
    let n = graph.nodes();
    let mut local = vec![u32::MAX; n];
    let mut nodes: Vec<u32> = Vec::new();
    let mut out_start: Vec<u32> = Vec::new();
    let mut tgt: Vec<u32> = Vec::new();
    let mut comp_l: Vec<u32> = Vec::new();
    // The reverse adjacency of the component searched, in compressed arrays by the node's rank
    // in the component (`rank`): `radj[radj_start[i]..radj_start[i + 1]]` are the sources of the
    // edges entering its `i`-th node, ascending (a vector per node, dropped and grown again for
    // every thread, cost as much as the search on the hostile random trace).
    let mut rank: Vec<u32> = Vec::new();
    let mut radj_start: Vec<u32> = Vec::new();
    let mut radj: Vec<u32> = Vec::new();
    let mut dist: Vec<u32> = Vec::new();
    let mut on_path: Vec<bool> = Vec::new();
    for t in 0..threads {
        let own = &by_thread[first[t] as usize..first[t + 1] as usize];
        let mut sources = graph.sources();
        if own.len() < 2 {
            // A cycle needs two edges.
            continue;
        }
        nodes.clear();
        if own.len() >= n / 16 {
            // Many edges for the graph's nodes: marked, then collected in order, in time linear
            // in the nodes (sorting twice the edges' endpoints cost more on a dense graph).
            for &e in own {
                let (a, b) = (sources.of(e), graph.target(e));
                local[a as usize] = 0;
                local[b as usize] = 0;
            }
            nodes.extend((0..n as u32).filter(|&x| local[x as usize] != u32::MAX));
        } else {
            for &e in own {
                let (a, b) = (sources.of(e), graph.target(e));
                nodes.push(a);
                nodes.push(b);
            }
            nodes.sort_unstable();
            nodes.dedup();
        }
        for (i, &x) in nodes.iter().enumerate() {
            local[x as usize] = i as u32;
        }
        let m = nodes.len();
        // Local adjacency in compressed arrays: the edges of local node u are
        // `own[out_start[u]..out_start[u + 1]]`, targets ascending (local ids keep the order).
        out_start.clear();
        out_start.resize(m + 1, 0);
        tgt.clear();
        for &e in own {
            let (a, b) = (sources.of(e), graph.target(e));
            out_start[local[a as usize] as usize + 1] += 1;
            tgt.push(local[b as usize]);
        }
        for u in 0..m {
            out_start[u + 1] += out_start[u];
        }
        for &x in &nodes {
            local[x as usize] = u32::MAX;
        }
        let sccs = small_sccs(&out_start, &tgt);
        if sccs.is_empty() {
            continue;
        }
        let t64 = t as u64;
        let mut steps = 0u64;
        comp_l.clear();
        comp_l.resize(m, u32::MAX);
        for (ci, scc) in sccs.iter().enumerate() {
            for &x in scc {
                comp_l[x] = ci as u32;
            }
        }
        rank.clear();
        rank.resize(m, u32::MAX);
        dist.clear();
        dist.resize(m, u32::MAX);
        on_path.clear();
        on_path.resize(m, false);
        'sccs: for (ci, scc) in sccs.iter().enumerate() {
            let ci = ci as u32;
            for (i, &x) in scc.iter().enumerate() {
                rank[x] = i as u32;
            }
            radj_start.clear();
            radj_start.resize(scc.len() + 1, 0);
            for &u in scc {
                for &v in &tgt[out_start[u] as usize..out_start[u + 1] as usize] {
                    if comp_l[v as usize] == ci {
                        radj_start[rank[v as usize] as usize + 1] += 1;
                    }
                }
            }
            for i in 0..scc.len() {
                radj_start[i + 1] += radj_start[i];
            }
            radj.clear();
            radj.resize(radj_start[scc.len()] as usize, 0);
            {
                let mut fill: Vec<u32> = radj_start[..scc.len()].to_vec();
                for &u in scc {
                    for &v in &tgt[out_start[u] as usize..out_start[u + 1] as usize] {
                        if comp_l[v as usize] == ci {
                            let at = &mut fill[rank[v as usize] as usize];
                            radj[*at as usize] = u as u32;
                            *at += 1;
                        }
                    }
                }
            }
            for &start in scc {
                // Distances to `start` over nodes above it, for pruning.
                for &x in scc {
                    dist[x] = u32::MAX;
                }
                dist[start] = 0;
                let mut frontier = vec![start];
                for depth in 1..MAX_SAME_THREAD_LEN as u32 {
                    let mut next = Vec::new();
                    for &u in &frontier {
                        let i = rank[u] as usize;
                        let r = radj_start[i] as usize..radj_start[i + 1] as usize;
                        for &w in &radj[r] {
                            let w = w as usize;
                            if w > start && dist[w] == u32::MAX {
                                dist[w] = depth;
                                next.push(w);
                            }
                        }
                    }
                    frontier = next;
                }
                let mut path = vec![start];
                // Positions in `own` of the path's edges.
                let mut wit: Vec<u32> = Vec::new();
                on_path[start] = true;
                // Iterative DFS: (node, next position in `own`).
                let mut stack: Vec<(usize, usize)> = vec![(start, out_start[start] as usize)];
                while let Some(&mut (u, ref mut k)) = stack.last_mut() {
                    let end = out_start[u + 1] as usize;
                    // Skip successors outside the component.
                    while *k < end && comp_l[tgt[*k] as usize] != ci {
                        *k += 1;
                    }
                    if *k >= end {
                        stack.pop();
                        path.pop();
                        wit.pop();
                        on_path[u] = false;
                        continue;
                    }
                    let at = *k;
                    let v = tgt[at] as usize;
                    *k += 1;
                    steps += 1;
                    if steps > budget {
                        truncated = true;
                        for &p in &path {
                            on_path[p] = false;
                        }
                        break 'sccs;
                    }
                    if v == start {
                        set.clear();
                        set.extend(path.iter().map(|&p| nodes[p]));
                        set.sort_unstable();
                        if covered.contains(set.as_slice()) {
                            continue;
                        }
                        set.push(same_thread_code);
                        if let Some(c) = out.get_mut(set.as_slice()) {
                            c.combinations += 1;
                            continue;
                        }
                        if listed >= limits.max_listed {
                            truncated = true;
                            continue;
                        }
                        listed += 1;
                        let nodes_of: Vec<u32> = path.iter().map(|&p| nodes[p]).collect();
                        let key = set.clone();
                        let deps: Vec<u32> = wit
                            .iter()
                            .map(|&w| w as usize)
                            .chain(std::iter::once(at))
                            .map(|w| witness(own[w], t))
                            .collect();
                        let reason = describe(model, &Infeasible::SameThread { thread: t64 });
                        out.insert(
                            key,
                            Candidate {
                                level,
                                nodes: nodes_of,
                                deps,
                                filter: Some("same-thread"),
                                reason,
                                combinations: 1,
                            },
                        );
                    } else if v > start
                        && !on_path[v]
                        && path.len() as u64 + dist[v] as u64 <= MAX_SAME_THREAD_LEN as u64
                    {
                        on_path[v] = true;
                        path.push(v);
                        wit.push(at as u32);
                        stack.push((v, out_start[v] as usize));
                    }
                }
            }
        }
    }
    if truncated {
        result.notes.push(format!(
            "the {} listing of same-thread candidates was cut short (at most {} listed, {} steps per thread): a listing bound only, the search for violations is not affected",
            level.name(),
            limits.max_listed,
            budget
        ));
    }
}

/// Strongly connected components of more than one node of a small graph given in compressed
/// adjacency arrays (node `u`'s targets are `tgt[out_start[u]..out_start[u + 1]]`), each
/// sorted, the components sorted (iterative Tarjan).
fn small_sccs(out_start: &[u32], tgt: &[u32]) -> Vec<Vec<usize>> {
    let n = out_start.len().saturating_sub(1);
    const NONE: u32 = u32::MAX;
    let mut index = vec![NONE; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut next = 0u32;
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut call: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != NONE {
            continue;
        }
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        call.push((root, out_start[root] as usize));
        while let Some(&mut (v, ref mut k)) = call.last_mut() {
            // The node's edges up to its next unvisited target, in a loop of their own (the
            // call stack's top and the node's low link read once, not once per edge).
            let end = out_start[v + 1] as usize;
            let mut lv = low[v];
            let mut descend = None;
            while *k < end {
                let w = tgt[*k] as usize;
                *k += 1;
                if index[w] == NONE {
                    descend = Some(w);
                    break;
                } else if on_stack[w] {
                    lv = lv.min(index[w]);
                }
            }
            low[v] = lv;
            if let Some(w) = descend {
                index[w] = next;
                low[w] = next;
                next += 1;
                stack.push(w);
                on_stack[w] = true;
                call.push((w, out_start[w] as usize));
                continue;
            }
            call.pop();
            if let Some(&(p, _)) = call.last() {
                low[p] = low[p].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort_unstable();
                    out.push(comp);
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::model_of;

    #[test]
    fn the_hostile_shapes_keep_the_bitsets() {
        // The random trace of 64 threads and 3000 locks (seed 4), and the one of 128 threads and
        // 6000 locks (`gen_planted --random --seed 4 --threads 128 --locks 6000`), whose counts
        // `LOCKCHECK_PHASES=1` prints: without the bitsets the second's search is slower (the
        // same answers), 10.5 s of user CPU instead of 7.5 s. Its epochs (6.7M entries) keep
        // one table, by clock (memory: see `MAX_EPOCH_TABLE`).
        assert!(flat_bits_fit(47_304, 6000usize.div_ceil(64)));
        assert!(flat_bits_fit(47_038, 3000usize.div_ceil(64)));
        assert!(!flat_bits_fit(usize::MAX, 2));
        assert!(epoch_table_fits(52_323, 128));
        const { assert!(52_323 * 128 > MAX_EPOCH_TABLE) };
        assert!(!epoch_table_fits(52_323, 256));
        assert!(!epoch_table_fits(0, 64));
        assert!(!epoch_table_fits(usize::MAX, 2));
    }

    /// Without a table (more clocks times threads than it holds), a trace whose clocks each know
    /// one thread reads them from `Epochs::single`: the same epochs as the clocks give, for
    /// every clock and thread. A fork makes a clock know two threads: no shortcut then.
    #[test]
    fn the_epochs_of_clocks_of_one_thread_each_are_the_clocks_own() {
        let threads = 3000u64;
        let trace = |fork: bool| {
            let mut t = String::from(
                "{\"e\":\"lock\",\"l\":1,\"c\":1}\n{\"e\":\"lock\",\"l\":2,\"c\":2}\n",
            );
            if fork {
                t += "{\"e\":\"fork\",\"t\":1,\"child\":2}\n";
            }
            for th in 1..=threads {
                let (a, b) = if th % 2 == 0 { (1, 2) } else { (2, 1) };
                for l in [a, b] {
                    t += &format!("{{\"e\":\"acquire\",\"t\":{th},\"l\":{l},\"m\":\"w\"}}\n");
                }
                for l in [b, a] {
                    t += &format!("{{\"e\":\"release\",\"t\":{th},\"l\":{l}}}\n");
                }
            }
            model_of(&[("t", &t)])
        };
        for fork in [false, true] {
            let m = trace(fork);
            assert!(!epoch_table_fits(m.clocks.len(), m.threads.len()));
            let e = Epochs::new(&m);
            assert!(matches!(e.table, EpochTable::Absent));
            assert_eq!(e.single.is_some(), !fork, "fork {fork}");
            for c in 0..m.clocks.len() as u32 {
                for th in [0, 1, 2, 3, 1500, threads - 1, threads, threads + 1] {
                    assert_eq!(e.get(c, th), m.clocks.get(c, th), "clock {c}, thread {th}");
                }
            }
        }
    }

    /// The fits cache answers only for the pair it was given, with its last verdict: nothing
    /// before the first verdict, the verdict of `(a, b)` not for `(b, a)`, and a slot taken
    /// by another pair forgets the first (a miss, tested again by the caller).
    #[test]
    fn the_fits_cache_answers_for_its_own_pairs_only() {
        let mut c = FitsCache::new();
        let key = |a: u32, b: u32| u64::from(a) << 32 | u64::from(b);
        assert_eq!(c.get(key(1, 2)), None);
        c.put(key(1, 2), true);
        c.put(key(2, 1), false);
        assert_eq!(c.get(key(1, 2)), Some(true));
        assert_eq!(c.get(key(2, 1)), Some(false));
        assert_eq!(c.get(key(1, 3)), None);
        c.put(key(1, 2), false);
        assert_eq!(c.get(key(1, 2)), Some(false));
        // Another pair in the same slot takes it over.
        let slot = FitsCache::slot(key(1, 2));
        let other = (0..u32::MAX)
            .map(|b| key(7, b))
            .find(|&k| FitsCache::slot(k) == slot)
            .expect("some pair shares the slot");
        c.put(other, true);
        assert_eq!(c.get(other), Some(true));
        assert_eq!(c.get(key(1, 2)), None);
        // Every slot's verdict is its own bit.
        for b in 0..5000 {
            c.put(key(9, b), b % 3 == 0);
        }
        for b in 0..5000 {
            if let Some(v) = c.get(key(9, b)) {
                assert_eq!(v, b % 3 == 0);
            }
        }
    }

    /// The change set's bits: inserting twice counts once, ids come back ascending (across
    /// words), and the edges are the graph's endpoints of those ids, sorted.
    #[test]
    fn a_change_set_is_one_bit_per_edge_id() {
        let edges: Vec<(u32, u32)> = (0..70u32).map(|i| (i / 10, 10 + i % 10)).collect();
        let g = LockGraph::from_edges(20, edges.iter().copied());
        let mut c = ChangeSet::new(g.edge_count());
        assert!(c.is_empty());
        for e in [65, 3, 64, 3, 0, 63] {
            c.insert(e);
        }
        assert_eq!(c.len(), 5);
        assert_eq!(c.ids().collect::<Vec<_>>(), vec![0, 3, 63, 64, 65]);
        assert!(c.contains(63) && c.contains(64) && !c.contains(1) && !c.contains(200));
        let want: Vec<(u32, u32)> = [0, 3, 63, 64, 65].iter().map(|&e| edges[e]).collect();
        assert_eq!(c.edges(&g).collect::<Vec<_>>(), want);
    }

    /// The flat copy of the held sets answers as the walks of the interned tree: the marks it
    /// adds, and the gate test of every pair of blocking dependencies, which is also
    /// [`check_pair`]'s gate rule. Over mutexes, RwLocks held in every mode (a read beside a
    /// read or an upgradable read: sets that hold one lock twice, whose marks are walked and
    /// whose gate reads the oldest hold) and a semaphore.
    #[test]
    fn the_flat_held_sets_answer_as_the_walks() {
        flat_held_sets_answer_as_the_walks(0);
    }

    /// [`the_flat_held_sets_answer_as_the_walks`] with lock ids beyond 2^13 (8,192 unused
    /// locks declared first): the copy's entries are 32 bits wide then, and answer the same.
    #[test]
    fn the_wide_flat_held_sets_answer_as_the_walks() {
        flat_held_sets_answer_as_the_walks(1 << 13);
    }

    /// The flat copy against the walks on a random trace whose five used locks come after
    /// `unused` declared locks (so their ids are at least `unused`).
    fn flat_held_sets_answer_as_the_walks(unused: u64) {
        let mut t = String::from(
            r#"{"e":"class","c":1,"key":"m","kind":"mutex"}
{"e":"class","c":2,"key":"rw","kind":"rwlock"}
{"e":"class","c":3,"key":"sem","kind":"semaphore"}
"#,
        );
        for i in 0..unused {
            t.push_str(&format!("{{\"e\":\"lock\",\"l\":{},\"c\":1}}\n", 100 + i));
        }
        t.push_str(
            r#"{"e":"lock","l":1,"c":1}
{"e":"lock","l":2,"c":2}
{"e":"lock","l":3,"c":3}
{"e":"lock","l":4,"c":1}
{"e":"lock","l":5,"c":2}
"#,
        );
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut held: Vec<Vec<(u64, &str)>> = vec![Vec::new(); 4];
        for _ in 0..600 {
            let th = next(4) as usize;
            let h = &mut held[th];
            if !h.is_empty() && next(3) == 0 {
                let (l, _) = h.remove(next(h.len() as u64) as usize);
                t.push_str(&format!("{{\"e\":\"release\",\"t\":{th},\"l\":{l}}}\n"));
                continue;
            }
            let l = 1 + next(5);
            let m = match l {
                2 | 5 => ["r", "rr", "u", "w"][next(4) as usize],
                3 => "p",
                _ => "w",
            };
            // A second hold only as a read beside a read or an upgradable read (then the
            // oldest hold is not the newest's mode: the gate reads the oldest).
            if let Some(&(_, old)) = h.iter().find(|x| x.0 == l) {
                if old == "w" || old == "p" || (m != "r" && m != "rr") {
                    continue;
                }
            }
            h.push((l, m));
            t.push_str(&format!(
                "{{\"e\":\"acquire\",\"t\":{th},\"l\":{l},\"m\":\"{m}\"}}\n"
            ));
        }
        let m = model_of(&[("t", &t)]);
        let flat = FlatHeld::new(&m).expect("a small model has its copy");
        let wide = matches!(flat.entries, FlatEntries::Wide(_));
        assert_eq!(wide, m.locks.len() > 1 << 13, "{} locks", m.locks.len());
        if unused > 0 {
            assert!(wide, "the 32-bit form is the one under test");
            // The used locks' codes need more than 16 bits (`lock << 3` at 2^13 and above).
            assert!(m.deps.iter().all(|r| u64::from(r.lock) >= unused));
        }
        assert!(
            flat.repeats.iter().any(|&r| r),
            "some set holds a lock twice"
        );
        let conflict = conflict_masks();
        let blocking: Vec<u32> = (0..m.deps.len() as u32)
            .filter(|&d| check_blocking(&m.dep(d)).is_ok())
            .collect();
        assert!(blocking.len() > 50, "{} dependencies", blocking.len());
        let (mut gates, mut pairs, mut merges) = (0, 0, 0);
        let mut by_bits = [0usize; 3];
        // The flat copy's modes are those of `Mode as usize`.
        assert!(ALL_MODES.iter().enumerate().all(|(i, &x)| x as usize == i));
        for &b in &blocking {
            for l in 0..m.locks.len() as u32 {
                let walked = lockcheck_core::deps::DepView::held_mode(&m.dep(b), l);
                assert_eq!(flat.held_mode(b, l), Some(walked), "{b} {l}");
            }
        }
        for &a in &blocking {
            let mut by_flat = Marks::new(m.locks.len());
            let mut by_walk = Marks::new(m.locks.len());
            by_flat.dep(&m, Some(&flat), a, true);
            by_walk.dep(&m, None, a, true);
            assert_eq!(by_flat.counts, by_walk.counts);
            assert_eq!(by_flat.modes, by_walk.modes);
            for &b in &blocking {
                let walked = meets_gate(&m, &by_walk, &conflict, &m.dep(b));
                assert_eq!(flat.gate(&by_flat, b), Some(walked), "{a} {b}");
                if m.deps[a as usize].thread != m.deps[b as usize].thread {
                    let rule = matches!(
                        check_pair(&m.dep(a), &m.dep(b)),
                        Err(Infeasible::GateLock { .. })
                    );
                    assert_eq!(rule, walked, "{a} {b}");
                    if let Some(merged) = flat.pair_gate(a, b) {
                        assert_eq!(merged, walked, "{a} {b}");
                        merges += 1;
                    }
                }
                match flat.pair_gate_bits(a, b) {
                    Some(g) => {
                        assert_eq!(g, walked, "bitsets of {a} {b}");
                        by_bits[usize::from(g)] += 1;
                    }
                    None => by_bits[2] += 1,
                }
                pairs += 1;
                gates += usize::from(walked);
            }
            by_flat.dep(&m, Some(&flat), a, false);
            assert!(by_flat.modes.iter().all(|&x| x == 0));
            assert!(by_flat.counts.iter().all(|c| c == &[0; 5]));
        }
        // Both answers occur, and the merge answered for most pairs.
        assert!(gates > 0 && gates < pairs, "{gates} gates in {pairs} pairs");
        assert!(merges > pairs / 4, "{merges} merges in {pairs} pairs");
        // The bitsets decide both ways, and leave the pairs of shared modes to the modes.
        assert!(by_bits.iter().all(|&n| n > 0), "{by_bits:?}");
    }

    /// [`sort_distinct`] sorts as `sort_unstable`, by its bitmap and by its comparison sort,
    /// and leaves its bitmap clear.
    #[test]
    fn sorting_distinct_keys_by_bitmap_sorts() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut bitmap = vec![0u64; 1 << 10];
        let mut paths = [0usize; 2];
        for round in 0..400 {
            // Dense and sparse key sets, some beyond the bitmap.
            let range = [64u64, 1000, 1 << 16, 1 << 17][round % 4];
            let n = next(300) as usize;
            let mut keys: Vec<u32> = Vec::new();
            while keys.len() < n.min(range as usize) {
                let k = next(range) as u32;
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            let mut want = keys.clone();
            want.sort_unstable();
            let fits = keys.iter().all(|&k| (k as usize) < bitmap.len() * 64);
            sort_distinct(&mut keys, &mut bitmap);
            assert_eq!(keys, want, "round {round}");
            assert!(bitmap.iter().all(|&w| w == 0), "round {round}");
            paths[usize::from(fits)] += 1;
        }
        assert!(paths.iter().all(|&p| p > 0), "{paths:?}");
    }

    const AB_BA: &str = r#"{"e":"class","c":1,"key":"A","kind":"mutex"}
{"e":"class","c":2,"key":"B","kind":"mutex"}
{"e":"lock","l":1,"c":1}
{"e":"lock","l":2,"c":2}
{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"acquire","t":1,"l":2,"m":"w"}
{"e":"release","t":1,"l":2}
{"e":"release","t":1,"l":1}
{"e":"acquire","t":2,"l":2,"m":"w"}
{"e":"acquire","t":2,"l":1,"m":"w"}
"#;

    #[test]
    fn ab_ba_is_one_violation_at_each_level() {
        let m = model_of(&[("t", AB_BA)]);
        for level in [GraphLevel::Instance, GraphLevel::Class] {
            let r = find_cycles(&m, level, &SearchLimits::default());
            assert_eq!(r.candidates.len(), 1, "{:?}", r.candidates);
            assert_eq!(r.candidates[0].filter, None);
            assert_eq!(r.candidates[0].nodes, vec![0, 1]);
            assert!(r.warnings.is_empty());
        }
    }

    #[test]
    fn one_thread_alone_is_same_thread() {
        let m = model_of(&[("t", &AB_BA.replace("\"t\":2", "\"t\":1"))]);
        let r = find_cycles(&m, GraphLevel::Instance, &SearchLimits::default());
        assert_eq!(r.candidates.len(), 1, "{:?}", r.candidates);
        assert_eq!(r.candidates[0].filter, Some("same-thread"));
    }

    /// A -> B and B -> C made often by threads 1 and 2, A -> C too, and C -> A once by thread 3:
    /// one inverted edge closing two cycles is one root cause.
    #[test]
    fn one_inverted_edge_closing_two_cycles_is_one_root_cause() {
        let mut t = String::from(
            r#"{"e":"lock","l":1,"c":1}
{"e":"lock","l":2,"c":2}
{"e":"lock","l":3,"c":3}
"#,
        );
        let nest = |t: &mut String, th: u32, a: u32, b: u32| {
            t.push_str(&format!(
                "{{\"e\":\"acquire\",\"t\":{th},\"l\":{a},\"m\":\"w\"}}\n{{\"e\":\"acquire\",\"t\":{th},\"l\":{b},\"m\":\"w\"}}\n{{\"e\":\"release\",\"t\":{th},\"l\":{b}}}\n{{\"e\":\"release\",\"t\":{th},\"l\":{a}}}\n"
            ));
        };
        for _ in 0..5 {
            nest(&mut t, 1, 1, 2);
            nest(&mut t, 2, 2, 3);
            nest(&mut t, 1, 1, 3);
        }
        nest(&mut t, 3, 3, 1);
        let m = model_of(&[("t", &t)]);
        let r = find_root_causes(&m, GraphLevel::Instance, &SearchLimits::default());
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let graph = LockGraph::build(&m, GraphLevel::Instance);
        assert_eq!(change_set(&edge_weights(&m, &graph)).edges, vec![(2, 0)]);
        assert_eq!(r.root_causes.len(), 1);
        let rc = &r.root_causes[0];
        assert_eq!(rc.edges, vec![(2, 0)]);
        assert_eq!(
            rc.representative.nodes.len(),
            2,
            "the shortest cycle is shown"
        );
        assert_eq!(rc.cycles, 2);
        assert!(rc.cycles_exhaustive);
        // Look-alike: the inverted acquisition made by thread 1, which also holds A -> C: the
        // 2-cycle is one thread's; the 3-cycle A -> B -> C -> A still has distinct threads.
    }

    /// Threads 1 and 2 each invert a pair of their own; thread 3 makes one edge of thread 1's
    /// pair. Thread 2's pair is listed as same-thread, witnessed by thread 2's dependencies only;
    /// thread 1's pair is a cycle of two threads (thread 3's edge), never same-thread.
    #[test]
    fn a_same_thread_cycle_is_one_threads_own() {
        let mut t = String::new();
        for l in 1..=4 {
            t.push_str(&format!("{{\"e\":\"lock\",\"l\":{l},\"c\":{l}}}\n"));
        }
        let nest = |t: &mut String, th: u32, a: u32, b: u32| {
            t.push_str(&format!(
                "{{\"e\":\"acquire\",\"t\":{th},\"l\":{a},\"m\":\"w\"}}\n{{\"e\":\"acquire\",\"t\":{th},\"l\":{b},\"m\":\"w\"}}\n{{\"e\":\"release\",\"t\":{th},\"l\":{b}}}\n{{\"e\":\"release\",\"t\":{th},\"l\":{a}}}\n"
            ));
        };
        nest(&mut t, 1, 1, 2);
        nest(&mut t, 1, 2, 1);
        nest(&mut t, 2, 3, 4);
        nest(&mut t, 2, 4, 3);
        nest(&mut t, 3, 1, 2);
        let m = model_of(&[("t", &t)]);
        let r = find_cycles(&m, GraphLevel::Instance, &SearchLimits::default());
        let same: Vec<&Candidate> = r
            .candidates
            .iter()
            .filter(|c| c.filter == Some("same-thread"))
            .collect();
        assert_eq!(same.len(), 1, "{:?}", r.candidates);
        assert_eq!(sorted(&same[0].nodes), vec![2, 3]);
        assert_eq!(same[0].deps.len(), 2);
        let t2 = m.deps[same[0].deps[0] as usize].thread;
        assert!(
            same[0]
                .deps
                .iter()
                .all(|&d| m.deps[d as usize].thread == t2),
            "{:?}",
            same[0]
        );
        assert!(
            r.candidates
                .iter()
                .any(|c| c.filter != Some("same-thread") && sorted(&c.nodes) == vec![0, 1]),
            "{:?}",
            r.candidates
        );
    }

    #[test]
    fn the_step_bound_of_a_root_cause_is_named() {
        let m = model_of(&[("t", AB_BA)]);
        let limits = SearchLimits {
            max_steps: 0,
            ..Default::default()
        };
        let r = find_root_causes(&m, GraphLevel::Instance, &limits);
        assert!(r.root_causes.is_empty());
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("--max-steps"), "{:?}", r.warnings);
        let r = find_root_causes(&m, GraphLevel::Instance, &SearchLimits::default());
        assert_eq!(r.root_causes.len(), 1);
        assert!(r.warnings.is_empty());
    }

    /// Every filter has its own code in a candidate's key (two filters sharing one would merge
    /// their candidates).
    #[test]
    fn every_filter_has_its_own_key_code() {
        let all: [Infeasible<LockId>; 6] = [
            Infeasible::NonBlocking { timed: false },
            Infeasible::NonBlocking { timed: true },
            Infeasible::SameThread { thread: 1 },
            Infeasible::GateLock { gate: 2 },
            Infeasible::HappensBefore,
            Infeasible::ReadRead { lock: 3 },
        ];
        let mut codes: Vec<u32> = all
            .iter()
            .map(|e| filter_code(Some(e.filter_name())))
            .collect();
        codes.push(filter_code(None));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes, (0..=6).collect::<Vec<u32>>());
    }

    /// A xorshift generator of numbers below its argument, seeded by `seed` (the random traces
    /// of these tests).
    fn seeded(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        }
    }

    /// A trace of random nested acquisitions over few locks and threads (try-locks, reads and
    /// forks among them), so that the listing meets every filter, long cycles, many
    /// dependencies per edge and, at small step bounds, its bound in the middle of a chain.
    fn random_nesting(seed: u64, threads: u64, locks: u64, rounds: usize) -> String {
        let mut next = seeded(seed);
        let mut t = String::new();
        for l in 0..locks {
            t += &format!("{{\"e\":\"lock\",\"l\":{l},\"c\":{l}}}\n");
        }
        for c in 2..=threads {
            if next(3) == 0 {
                t += &format!("{{\"e\":\"fork\",\"t\":1,\"child\":{c}}}\n");
            }
        }
        for _ in 0..rounds {
            let th = 1 + next(threads);
            let depth = 1 + next(4);
            let mut held: Vec<u64> = Vec::new();
            for _ in 0..depth {
                let l = next(locks);
                if held.contains(&l) {
                    continue;
                }
                let m = if next(5) == 0 { "r" } else { "w" };
                let how = if next(9) == 0 { ",\"how\":\"try\"" } else { "" };
                t += &format!("{{\"e\":\"acquire\",\"t\":{th},\"l\":{l},\"m\":\"{m}\"{how}}}\n");
                held.push(l);
            }
            for &l in held.iter().rev() {
                t += &format!("{{\"e\":\"release\",\"t\":{th},\"l\":{l}}}\n");
            }
        }
        t
    }

    /// The root-cause search's tables by dependency ([`ThreadDeps::with_own_and_state`]: two
    /// passes over the records, the own epochs from the epoch table) are the ones built by a
    /// clock lookup per dependency and a pass per table: random traces with forks and joins
    /// (epochs other than 1), tries (dependencies that do not block) and several threads, the
    /// epoch table present and absent.
    #[test]
    fn the_dependency_tables_of_the_root_cause_search_are_their_reference() {
        use crate::model::tests::random_events;
        for seed in 1..=24u64 {
            let mut b = crate::model::ModelBuilder::new();
            b.begin_trace("t");
            for e in random_events(seed, 2 + seed % 6, 3 + seed % 13, 600) {
                b.event(&e);
            }
            // A thread after the last with a dependency (its place in the tables is none).
            b.event(&lockcheck_core::trace::Event::Thread { t: 99, name: None });
            let m = b.finish();
            let mut epochs = Epochs::new(&m);
            for absent in [false, true] {
                if absent {
                    epochs.table = EpochTable::Absent;
                    epochs.columns = EpochTable::Absent;
                }
                let (td, own, state) = ThreadDeps::with_own_and_state(&m, &epochs, None);
                let (rd, rown, rstate) = ThreadDeps::reference(&m);
                assert_eq!(own, rown, "seed {seed}");
                assert_eq!(state, rstate, "seed {seed}");
                assert_eq!(
                    (&td.start, &td.dep, &td.own, &td.clock, &td.held, &td.at, td.narrow),
                    (&rd.start, &rd.dep, &rd.own, &rd.clock, &rd.held, &rd.at, rd.narrow),
                    "seed {seed}"
                );
            }
            assert!(
                m.deps
                    .iter()
                    .any(|r| r.how != lockcheck_core::trace::How::Blocking),
                "seed {seed}: a try among the dependencies"
            );
            assert!(own_epochs_vary(&m), "seed {seed}: epochs other than 1");
        }
        fn own_epochs_vary(m: &Model) -> bool {
            m.deps
                .iter()
                .any(|r| m.clocks.get(r.clock, r.thread as u64) > 1)
        }
    }

    /// The listing's pair check by marks ([`pair_by_marks`]) answers as [`check_pair`] (the
    /// same verdict, the same gate named first) for every pair of dependencies of random traces
    /// with forks and joins, exclusive, shared and upgradable holds, and locks held twice in
    /// one held set (the oldest hold's mode decides), and leaves its scratch clear.
    #[test]
    fn the_pair_check_by_marks_is_check_pair() {
        let (mut gates, mut other) = (0, 0);
        for seed in 1..=12u64 {
            let mut next = seeded(seed);
            let (threads, locks) = (2 + seed % 4, 3 + seed % 5);
            let mut t = String::new();
            for l in 0..locks {
                t += &format!(
                    "{{\"e\":\"class\",\"c\":{l},\"key\":\"K{l}\",\"kind\":\"rwlock\"}}\n{{\"e\":\"lock\",\"l\":{l},\"c\":{l}}}\n"
                );
            }
            for c in 2..=threads {
                if next(2) == 0 {
                    t += &format!("{{\"e\":\"fork\",\"t\":1,\"child\":{c}}}\n");
                }
            }
            for _ in 0..60 {
                let th = 1 + next(threads);
                let mut held: Vec<u64> = Vec::new();
                for _ in 0..1 + next(5) {
                    // Repeats allowed: a lock held twice, in modes that may differ.
                    let l = next(locks);
                    let m = ["r", "w", "u"][next(3) as usize];
                    t += &format!("{{\"e\":\"acquire\",\"t\":{th},\"l\":{l},\"m\":\"{m}\"}}\n");
                    held.push(l);
                }
                for &l in held.iter().rev() {
                    t += &format!("{{\"e\":\"release\",\"t\":{th},\"l\":{l}}}\n");
                }
            }
            let m = model_of(&[("t", &t)]);
            let mut modes = vec![None; m.locks.len()];
            let n = m.deps.len() as u32;
            for a in 0..n {
                for b in 0..n {
                    let want = check_pair(&m.dep(a), &m.dep(b));
                    match want {
                        Err(Infeasible::GateLock { .. }) => gates += 1,
                        Err(_) => other += 1,
                        Ok(()) => {}
                    }
                    assert_eq!(
                        pair_by_marks(&m, &mut modes, a, b),
                        want,
                        "seed {seed}, pair {a} {b}"
                    );
                    assert!(modes.iter().all(Option::is_none), "the scratch is clear");
                }
            }
        }
        assert!(gates > 100 && other > 100, "{gates} gates, {other} other");
    }

    /// The listing's shortcuts (each path's edges found once and shared by its chains, a search
    /// for the edge back to the start at the last level, searches for the edges to the nodes
    /// near the start, always, sometimes or never, the cache of pair checks) change
    /// nothing: the same candidates, witnesses, combination counts, warnings and steps as the
    /// search without them, complete or stopped by any bound.
    #[test]
    fn the_listing_lists_what_its_search_without_shortcuts_lists() {
        let mut stopped = 0;
        for seed in 1..=8u64 {
            let text = random_nesting(seed, 2 + seed % 5, 4 + seed % 9, 80);
            let m = model_of(&[("t", &text)]);
            for level in [GraphLevel::Instance, GraphLevel::Class] {
                let graph = LockGraph::build(&m, level);
                for (steps, listed) in [(20_000, 1_000), (300, 20), (40, 5)] {
                    let limits = SearchLimits {
                        max_steps: steps,
                        max_filtered_steps: steps,
                        max_listed: listed,
                        ..Default::default()
                    };
                    let slow = list_cycles(&m, &graph, &limits, true, NEAR_FACTOR);
                    let view = |r: &LevelResult| {
                        let c: Vec<_> = r
                            .candidates
                            .iter()
                            .map(|c| {
                                (
                                    c.nodes.clone(),
                                    c.deps.clone(),
                                    c.filter,
                                    c.reason.clone(),
                                    c.combinations,
                                )
                            })
                            .collect();
                        (c, r.warnings.clone(), r.notes.clone(), r.steps)
                    };
                    for near_factor in [NEAR_FACTOR, 0, usize::MAX] {
                        let fast = list_cycles(&m, &graph, &limits, false, near_factor);
                        assert_eq!(
                            view(&fast),
                            view(&slow),
                            "seed {seed}, {level:?}, {steps} steps, near factor {near_factor}"
                        );
                    }
                    stopped += usize::from(!slow.warnings.is_empty());
                }
            }
        }
        assert!(stopped > 0, "some bound is hit");
    }

    /// The root-cause search's first pass ([`EdgeSearch::relaxed_closers`]) and its bounds
    /// ([`EdgeSearch::bounds`]) are a relaxation of the full chain test: on random traces
    /// (forks, reads, tries, up to 7 threads, long cycles), every valid cycle that the listing
    /// enumerates in full ([`list_cycles`], complete) is kept by the first pass at each of its
    /// dependencies (the node it holds is among that dependency's closers), and every
    /// dependency of the cycle is within its bound of the end of the chain. Both levels. The
    /// exploration with its shortcuts ([`EdgeSearch::closers_of`], [`EdgeSearch::check_open`],
    /// [`EdgeSearch::fits_long`]) lists what it lists without them.
    #[test]
    fn the_first_pass_never_misses_a_cycle_of_the_full_search() {
        let (mut cycles, mut longest, mut left_out) = (0usize, 0usize, 0usize);
        // Nodes the pair pass leaves out of the first pass's lists, and those of the exploration.
        let (mut fewer, mut exact_fewer) = (0usize, 0usize);
        // Explorations that the shortcuts ended.
        let mut covered = 0usize;
        for seed in 1..=80u64 {
            let text = random_nesting(seed, 3 + seed % 5, 5 + seed % 8, 120);
            let m = model_of(&[("t", &text)]);
            let flat = seed > 40;
            for level in [GraphLevel::Instance, GraphLevel::Class] {
                let graph = LockGraph::build(&m, level);
                let limits = SearchLimits {
                    max_steps: 2_000_000,
                    max_filtered_steps: 2_000_000,
                    max_listed: 100_000,
                    ..Default::default()
                };
                let listed = list_cycles(&m, &graph, &limits, false, NEAR_FACTOR);
                if !listed.warnings.is_empty() {
                    continue;
                }
                let valid: Vec<&Candidate> = listed
                    .candidates
                    .iter()
                    .filter(|c| c.filter.is_none())
                    .collect();
                with_edge_search_flat(&m, &graph, flat, |s| {
                    let blocking: Vec<u32> = (0..m.deps.len() as u32)
                        .filter(|&d| check_blocking(&m.dep(d)).is_ok())
                        .collect();
                    for &d0 in &blocking {
                        let closers = s.relaxed_closers(d0).expect("within its bound");
                        // Each pass keeps part of the weaker one's list: the exploration (exact)
                        // within the pair pass's, the pair pass within the first pass's.
                        let pairs = s.pair_closers(d0).expect("within its bound");
                        assert!(pairs.iter().all(|n| closers.binary_search(n).is_ok()));
                        fewer += closers.len() - pairs.len();
                        // The exploration's shortcuts (the 2-cycles first, the end once every
                        // held node is decided, the check of the open nodes at once on half
                        // of the traces, the gate of long chains by the marks) find what
                        // following every chain finds.
                        s.open_check_after = if seed % 2 == 0 { 0 } else { OPEN_CHECK_AFTER };
                        // The gate of long chains by the marks, on chains of any length.
                        s.long_chain = if seed % 3 == 0 { 1 } else { LONG_CHAIN };
                        let covered_before = s.explore_covered;
                        let exact = s.closers_of(d0, u64::MAX / 2).expect("within its budget");
                        covered += s.explore_covered - covered_before;
                        // Against the plain exploration for a third of the dependencies (each
                        // exploration is exponential: the test's time).
                        if u64::from(d0) % 3 == seed % 3 {
                            s.shortcuts = false;
                            let plain = s.closers_of(d0, u64::MAX / 2).expect("within its budget");
                            s.shortcuts = true;
                            assert_eq!(exact, plain, "seed {seed}, {level:?}: exploration of {d0}");
                        }
                        assert!(exact.iter().all(|n| pairs.binary_search(n).is_ok()));
                        exact_fewer += pairs.len() - exact.len();
                        let held = valid.iter().any(|c| {
                            c.deps
                                .iter()
                                .zip(&c.nodes)
                                .any(|(&d, &n)| d == d0 && closers.binary_search(&n).is_ok())
                        });
                        left_out += usize::from(!held && !closers.is_empty());
                    }
                    for c in &valid {
                        let n = c.nodes.len();
                        cycles += 1;
                        longest = longest.max(n);
                        for i in 0..n {
                            let (d0, u) = (c.deps[i], c.nodes[i]);
                            let closers = s.relaxed_closers(d0).expect("within its bound");
                            assert!(
                                closers.binary_search(&u).is_ok(),
                                "seed {seed}, {level:?}: the first pass of {d0} misses {u} of {c:?}"
                            );
                            let pairs = s.pair_closers(d0).expect("within its bound");
                            assert!(
                                pairs.binary_search(&u).is_ok(),
                                "seed {seed}, {level:?}: the pair pass of {d0} misses {u} of {c:?}"
                            );
                            let exact = s.closers_of(d0, u64::MAX / 2).expect("within its budget");
                            assert!(
                                exact.binary_search(&u).is_ok(),
                                "seed {seed}, {level:?}: the exploration of {d0} misses {u} of {c:?}"
                            );
                            s.reset(u, 1);
                            assert!(s.bounds(&[d0]));
                            // The chain's dependencies but the closing one: each needs
                            // `n - 1 - j` more.
                            for j in 0..n - 1 {
                                let d = c.deps[(i + j) % n];
                                assert!(
                                    s.bound(d) as usize <= n - 1 - j,
                                    "seed {seed}, {level:?}: bound {} of {d}, {j} into {c:?} from {u}",
                                    s.bound(d)
                                );
                            }
                        }
                    }
                });
            }
        }
        assert!(
            cycles > 100 && longest >= 4,
            "{cycles} cycles, longest {longest}"
        );
        // It is a first pass, not the search: some dependencies it keeps close no valid cycle.
        assert!(left_out > 0);
        // The pair pass is stronger than the first pass, and weaker than the exploration.
        assert!(fewer > 0 && exact_fewer > 0, "{fewer} {exact_fewer}");
        assert!(covered > 0, "the shortcuts end some explorations");
    }

    /// The remembered edges to `u` ([`EdgeSearch::edge_to_u`]) are the graph's own
    /// ([`LockGraph::find`]) whatever order the nodes and the `u`s come in: `u` changing back
    /// and forth, the same node asked again under another `u`, and the generations wrapping.
    #[test]
    fn the_edges_to_u_remembered_are_the_graphs() {
        for seed in 1..=12u64 {
            let text = random_nesting(seed, 3 + seed % 4, 6 + seed % 7, 80);
            let m = model_of(&[("t", &text)]);
            let graph = LockGraph::build(&m, GraphLevel::Instance);
            let n = graph.nodes() as u32;
            if n == 0 {
                continue;
            }
            with_edge_search_flat(&m, &graph, false, |s| {
                let mut x = seed;
                for i in 0..4000u32 {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    if i % 7 == 0 {
                        s.u = ((x >> 40) % u64::from(n)) as u32;
                    }
                    if i == 2000 {
                        // The next change of `u` wraps the generations.
                        s.to_u_gen = u32::MAX - 1;
                    }
                    let y = ((x >> 20) % u64::from(n)) as u32;
                    assert_eq!(
                        s.edge_to_u(y),
                        graph.find(y, s.u),
                        "seed {seed}, {y} -> {}",
                        s.u
                    );
                }
            });
        }
    }

    /// The memo of successor lists keeps one list per dependency across its pages, the first
    /// one kept for a dependency whoever keeps it (the one list either thread reads), and
    /// within its budget of entries: past it, a list is made for its use alone and nothing is
    /// counted. A search reads each kept list, the empty ones too, from its slot.
    #[test]
    fn the_memo_keeps_each_dependencys_list() {
        let memo = Memo::new(6000);
        let list = |d: u32| -> Box<[(u32, u32)]> {
            if d % 3 == 0 {
                Box::new([])
            } else {
                Box::new([(d, d + 1)])
            }
        };
        let ds: Vec<u32> = (0..50u32).map(|i| i * 977 % 5000).collect();
        for &d in &ds {
            assert!(memo.get(d).is_none());
            assert!(matches!(memo.insert(d, list(d)), List::Kept(l) if *l == *list(d)));
        }
        assert_eq!(memo.len(), ds.len());
        let entries = |m: &Memo| m.entries.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(entries(&memo), ds.iter().filter(|&&d| d % 3 != 0).count());
        for d in 0..6000u32 {
            match memo.get(d) {
                Some(l) => {
                    assert!(ds.contains(&d));
                    assert_eq!(l, &*list(d));
                }
                None => assert!(!ds.contains(&d)),
            }
        }
        // A second list for a kept dependency (another thread's, the same): the first stays,
        // counted once.
        let first = memo.get(ds[1]).map(<[_]>::as_ptr);
        assert!(
            matches!(memo.insert(ds[1], list(ds[1])), List::Kept(l) if Some(l.as_ptr()) == first)
        );
        assert_eq!(memo.len(), ds.len());
        assert_eq!(entries(&memo), ds.iter().filter(|&&d| d % 3 != 0).count());
        // Two threads keeping the lists of the same dependencies at once.
        let shared = Memo::new(3000);
        std::thread::scope(|sc| {
            for _ in 0..2 {
                sc.spawn(|| {
                    for d in 0..3000u32 {
                        let l = shared.insert(d, list(d));
                        assert!(matches!(l, List::Kept(_)) && *l == *list(d));
                    }
                });
            }
        });
        assert_eq!(shared.len(), 3000);
        assert_eq!(entries(&shared), 2000);
        // Past the budget: made, not kept, not counted.
        let full = Memo::new(10);
        let big = vec![(0, 0); MAX_MEMO_ENTRIES].into_boxed_slice();
        assert!(matches!(full.insert(0, big), List::Kept(_)));
        assert!(matches!(full.insert(1, list(1)), List::Made(l) if *l == *list(1)));
        assert!(
            matches!(full.insert(3, list(3)), List::Kept(_)),
            "an empty list has room"
        );
        assert!(full.get(1).is_none());
        assert_eq!((full.len(), entries(&full)), (2, MAX_MEMO_ENTRIES));
        // The successor lists of a search: each kept once, read from its slot.
        let mut empties = 0;
        for seed in 1..=10u64 {
            let text = random_nesting(seed, 4, 8, 80);
            let m = model_of(&[("t", &text)]);
            let graph = LockGraph::build(&m, GraphLevel::Instance);
            with_edge_search_flat(&m, &graph, false, |s| {
                for d in 0..m.deps.len() as u32 {
                    if check_blocking(&m.dep(d)).is_err() {
                        continue;
                    }
                    let l = s.succ.of(d);
                    assert!(matches!(l, List::Kept(_)));
                    empties += usize::from(l.is_empty());
                    assert!(std::ptr::eq(&*l, &*s.succ.of(d)), "kept once");
                }
            });
        }
        assert!(empties > 0);
    }

    /// Runs `f` with an [`EdgeSearch`] of `graph` built as [`find_root_causes_on`] builds it,
    /// with the flat held sets (and their bitsets) built first if `flat`.
    fn with_edge_search_flat(
        model: &Model,
        graph: &LockGraph,
        flat: bool,
        f: impl FnOnce(&mut EdgeSearch<'_, '_>),
    ) {
        let level = graph.level().unwrap_or(GraphLevel::Instance);
        let epochs = Epochs::new(model);
        let (threads, own, _) = ThreadDeps::with_own_and_state(model, &epochs, None);
        let shared = SharedTables::new(graph, epochs, threads);
        let mut succ = Successors::new(model, level, graph, &own, &shared);
        if flat {
            assert!(shared.flat.set(FlatHeld::new(model)).is_ok());
            succ.walks = u64::MAX;
        }
        let mut s = EdgeSearch::new(model, level, graph, &mut succ, &own, 0);
        f(&mut s);
    }

    /// The same-thread listing over compact per-component arrays lists what the search over
    /// each thread's whole adjacency listed (`same_thread_cycles_reference`): the same
    /// candidates, witnesses, combination counts and notes, with the step budget and the
    /// listing bound hit anywhere (mid-thread, mid-component, after some candidates), with
    /// node sets already covered or listed by the main listing, on dense graphs (few locks,
    /// the marked node collection) and sparse ones (many locks, the sorted one).
    #[test]
    fn the_listing_in_two_steps_lists_what_one_step_lists_without_the_in_edges() {
        // `analyze_model` releases the in-edges between the two steps and runs the second
        // beside the root-cause search: it must list the same, and read no in-edge (their
        // reading panics once released). Small budgets too, so that both steps stop somewhere.
        let mut listed = 0;
        for seed in 1..=24u64 {
            let text = random_nesting(seed, 2 + seed % 5, 3 + seed % 20, 150);
            let m = model_of(&[("t", &text)]);
            for limits in [
                SearchLimits::default(),
                SearchLimits {
                    max_steps: 40,
                    max_filtered_steps: 30,
                    ..SearchLimits::default()
                },
            ] {
                let graph = LockGraph::build(&m, GraphLevel::Instance);
                let one = find_cycles_on(&m, &graph, &limits);
                let cross = list_cross_threads(&m, &graph, &limits);
                let (graph, _) = crate::graph::release_in_edges(graph, LockGraph::default());
                if graph.nodes() > 0 {
                    let read = std::panic::catch_unwind(|| graph.in_edges(0).len());
                    assert!(read.is_err(), "seed {seed}: the in-edges were released");
                }
                let two = cross.finish(&m, &graph, &limits);
                assert_eq!(
                    format!("{:?}", one.candidates),
                    format!("{:?}", two.candidates),
                    "seed {seed}"
                );
                assert_eq!(one.warnings, two.warnings, "seed {seed}");
                assert_eq!(one.notes, two.notes, "seed {seed}");
                assert_eq!(one.steps, two.steps, "seed {seed}");
                listed += two.candidates.len();
            }
        }
        assert!(listed > 50, "the traces have candidates: {listed}");
    }

    #[test]
    fn the_thread_lists_hold_what_the_flat_arrays_hold() {
        let mut entries = 0;
        for seed in 1..=20u64 {
            let text = random_nesting(seed, 2 + seed % 5, 3 + seed % 20, 150);
            let m = model_of(&[("t", &text)]);
            let graph = LockGraph::build(&m, GraphLevel::Instance);
            let mut comp = vec![u32::MAX; graph.nodes()];
            for (i, scc) in graph.sccs_by(|_| true).iter().enumerate() {
                for &x in scc {
                    comp[x as usize] = i as u32;
                }
            }
            let thread_of: Vec<u32> = m.deps.iter().map(|r| r.thread).collect();
            let threads = m.threads.len();
            let lists = ThreadEdges::with_lists_up_to(&graph, &comp, &thread_of, threads, threads);
            let flat = ThreadEdges::with_lists_up_to(&graph, &comp, &thread_of, threads, 0);
            assert!(matches!(lists, ThreadEdges::Lists(_)));
            assert!(matches!(flat, ThreadEdges::Flat { .. }));
            for t in 0..threads {
                assert_eq!(
                    lists.of_thread(t),
                    flat.of_thread(t),
                    "seed {seed}, thread {t}"
                );
                assert!(lists.of_thread(t).windows(2).all(|w| w[0] < w[1]));
                entries += lists.of_thread(t).len();
            }
        }
        assert!(
            entries > 100,
            "the traces make edges inside components: {entries}"
        );
    }

    #[test]
    fn the_same_thread_listing_lists_what_its_reference_lists() {
        type Listing = fn(
            &Model,
            &LockGraph,
            &[u32],
            &[u32],
            &SearchLimits,
            &mut FastMap<Key, Candidate>,
            &mut LevelResult,
        );
        let (mut truncated, mut listed, mut combined) = (0, 0, 0);
        for seed in 1..=40u64 {
            let locks = if seed % 3 == 0 {
                60 + seed
            } else {
                3 + seed % 8
            };
            let text = random_nesting(seed, 2 + seed % 5, locks, 150);
            let m = model_of(&[("t", &text)]);
            for level in [GraphLevel::Instance, GraphLevel::Class] {
                let graph = LockGraph::build(&m, level);
                let mut comp = vec![u32::MAX; graph.nodes()];
                let sccs = graph.sccs_by(|_| true);
                for (i, scc) in sccs.iter().enumerate() {
                    for &x in scc {
                        comp[x as usize] = i as u32;
                    }
                }
                let thread_of: Vec<u32> = m.deps.iter().map(|r| r.thread).collect();
                // Keys the main listing would have made: some node sets covered (a
                // violation's), some listed already as same-thread (their count grows).
                let mut before: FastMap<Key, Candidate> = FastMap::default();
                for (i, scc) in sccs.iter().filter(|c| c.len() > 1).enumerate() {
                    let mut key = vec![scc[0], scc[1]];
                    key.sort_unstable();
                    let code = if i % 2 == 0 {
                        filter_code(None)
                    } else {
                        filter_code(Some("same-thread"))
                    };
                    key.push(code);
                    let c = Candidate {
                        level,
                        nodes: vec![scc[0], scc[1]],
                        deps: vec![0, 0],
                        filter: (code != 0).then_some("same-thread"),
                        reason: String::new(),
                        combinations: 1,
                    };
                    before.insert(key, c);
                }
                for (steps, max_listed) in [(200_000, 1_000), (60, 1_000), (9, 3), (1, 1), (500, 0)]
                {
                    let limits = SearchLimits {
                        max_filtered_steps: steps,
                        max_listed,
                        ..Default::default()
                    };
                    let run = |f: Listing, pre: bool| {
                        let mut out = if pre {
                            before.clone()
                        } else {
                            FastMap::default()
                        };
                        let mut r = LevelResult::default();
                        f(&m, &graph, &comp, &thread_of, &limits, &mut out, &mut r);
                        let mut c: Vec<_> = out
                            .into_iter()
                            .map(|(k, c)| (k, c.nodes, c.deps, c.filter, c.reason, c.combinations))
                            .collect();
                        c.sort();
                        (c, r.notes, r.warnings, r.steps)
                    };
                    for pre in [false, true] {
                        let new = run(same_thread_cycles, pre);
                        let old = run(same_thread_cycles_reference, pre);
                        assert_eq!(
                            new, old,
                            "seed {seed}, {level:?}, {steps} steps, {max_listed} listed, {pre}"
                        );
                        truncated += usize::from(!new.1.is_empty());
                        listed += new
                            .0
                            .iter()
                            .filter(|c| c.3.is_some() && c.1.len() > 2)
                            .count();
                        combined += new.0.iter().filter(|c| c.5 > 1).count();
                    }
                }
            }
        }
        assert!(
            truncated > 0 && listed > 0 && combined > 0,
            "{truncated} {listed} {combined}"
        );
    }

    /// A random trace of many threads over few locks, so that threads share held sets: a
    /// third of them forked by thread 1 (their clocks know it), some joined by it before it
    /// takes locks again (its clock knows them), reads and writes of each lock (the writes
    /// are noted by thread), tries, lock classes of two instances at class level, and now and
    /// then a lock of the thread's own held around a round.
    fn random_crowd(seed: u64, threads: u64, locks: u64, rounds: usize) -> String {
        let mut next = seeded(seed);
        let mut t = String::new();
        for l in 0..locks {
            let kind = if l % 3 == 0 { "rwlock" } else { "mutex" };
            t += &format!(
                "{{\"e\":\"class\",\"c\":{l},\"key\":\"k{}\",\"kind\":\"{kind}\"}}\n",
                l / 2
            );
            t += &format!("{{\"e\":\"lock\",\"l\":{l},\"c\":{l}}}\n");
        }
        for c in 2..=threads {
            if next(3) == 0 {
                t += &format!("{{\"e\":\"fork\",\"t\":1,\"child\":{c}}}\n");
            }
        }
        let round = |t: &mut String, next: &mut dyn FnMut(u64) -> u64, th: u64| {
            let depth = 1 + next(3);
            let mut held: Vec<u64> = Vec::new();
            if next(4) == 0 {
                // A lock of the thread's own first (no other thread takes it).
                let own = locks + th;
                *t += &format!("{{\"e\":\"acquire\",\"t\":{th},\"l\":{own},\"m\":\"w\"}}\n");
                held.push(own);
            }
            for _ in 0..depth {
                let l = next(locks);
                if held.contains(&l) {
                    continue;
                }
                let m = if l % 3 == 0 && next(2) == 0 { "r" } else { "w" };
                let how = if next(15) == 0 {
                    ",\"how\":\"try\""
                } else {
                    ""
                };
                *t += &format!("{{\"e\":\"acquire\",\"t\":{th},\"l\":{l},\"m\":\"{m}\"{how}}}\n");
                held.push(l);
            }
            for &l in held.iter().rev() {
                *t += &format!("{{\"e\":\"release\",\"t\":{th},\"l\":{l}}}\n");
            }
        };
        for _ in 0..rounds {
            let th = 2 + next(threads - 1);
            round(&mut t, &mut next, th);
        }
        for c in 2..=threads {
            if next(4) == 0 {
                t += &format!("{{\"e\":\"join\",\"t\":1,\"child\":{c}}}\n");
            }
        }
        for _ in 0..4 {
            round(&mut t, &mut next, 1);
        }
        t
    }

    /// The root-cause search with the dependencies that differ only by thread left out beyond
    /// what a cycle can use ([`crate::twins`]) finds what the whole search finds: the same root
    /// causes with the same shortest cycles (by their locks), the same count of cycles, the
    /// same warnings and notes; its combinations are a lower bound (never more than the whole
    /// search's) and said to be one. On random crowds of threads over a few locks, where some
    /// are left out in most runs, at both levels.
    #[test]
    fn leaving_out_twins_changes_no_root_cause() {
        let (mut runs, mut with_twins, mut causes, mut cut) = (0, 0, 0, 0);
        for seed in 1..=60u64 {
            let text = random_crowd(seed, 10 + seed % 20, 3 + seed % 3, 40 + 2 * seed as usize);
            let m = model_of(&[("t", &text)]);
            for level in [GraphLevel::Instance, GraphLevel::Class] {
                let (graph, weights, change) = level_change_set(&m, level);
                let run = |twins| {
                    let plan = Plan {
                        mode: AheadMode::Off,
                        flat_first_from: AHEAD_MIN_EDGES,
                        open_check_after: OPEN_CHECK_AFTER,
                        twins,
                    };
                    // Every example kept and counted, so that the counts compare.
                    let limits = SearchLimits {
                        max_examples: 1_000,
                        max_example_steps: 200_000,
                        ..SearchLimits::default()
                    };
                    find_root_causes_ahead(&m, &graph, &weights, &change, &limits, plan)
                };
                let (whole, part) = (run(None), run(Some(0)));
                let left = crate::twins::left_out(&m, &graph, level, 0).map_or(0, |l| l.count);
                runs += 1;
                with_twins += usize::from(left > 0);
                causes += whole.root_causes.len();
                let what = format!("seed {seed} {level:?}, {left} left out");
                assert_eq!(whole.warnings, part.warnings, "{what}");
                assert_eq!(whole.notes, part.notes, "{what}");
                assert_eq!(whole.root_causes.len(), part.root_causes.len(), "{what}");
                for (a, b) in whole.root_causes.iter().zip(&part.root_causes) {
                    assert_eq!(a.edges, b.edges, "{what}");
                    let ex = |r: &RootCause| {
                        let mut v = vec![r.representative.nodes.clone()];
                        v.extend(r.examples.iter().map(|c| c.nodes.clone()));
                        v
                    };
                    // The whole search counts combinations up to a budget, which may stop it
                    // where the smaller one completes: its shortest cycles are then those of
                    // its round, at least one of them found.
                    assert!(b.cycles_exhaustive || !a.cycles_exhaustive, "{what}");
                    let len = |r: &RootCause| r.representative.nodes.len();
                    assert_eq!(len(a), len(b), "{what}");
                    if a.cycles_exhaustive {
                        assert_eq!(a.cycles, b.cycles, "{what}");
                        assert_eq!(ex(a), ex(b), "{what}");
                        assert!(b.representative.combinations <= a.representative.combinations);
                    } else {
                        cut += 1;
                    }
                    assert_eq!(
                        b.combinations_exhaustive,
                        b.cycles_exhaustive && left == 0,
                        "{what}"
                    );
                    // The shown cycle is one of distinct threads, every one of its
                    // dependencies kept.
                    let threads: std::collections::HashSet<u32> = b
                        .representative
                        .deps
                        .iter()
                        .map(|&d| m.deps[d as usize].thread)
                        .collect();
                    assert_eq!(threads.len(), b.representative.deps.len(), "{what}");
                }
            }
        }
        assert!(
            with_twins > runs / 3 && causes > runs / 2 && cut < causes / 4,
            "{runs} {with_twins} {causes} {cut}"
        );
    }

    /// The root-cause search with its explorations run ahead ([`Ahead`]) finds what the search
    /// on one thread finds: the same root causes in the same order, the same warnings, notes
    /// and steps, with its bounds hit anywhere (the total bound, which counts the explorations'
    /// steps, at every point of the search; one edge's bound; the examples' pool), whether the
    /// second thread ran every exploration before the main thread's search (which then takes
    /// each of them, where it would have run it), built the flat held sets before it (as a
    /// second thread due for them first does) or ran beside it. The explorations check their
    /// open nodes early or at [`OPEN_CHECK_AFTER`]: early, small explorations take the
    /// shortcut whose steps depend on the flat held sets ([`Plan::flat_first_from`]), and
    /// without the copy built before the search, `FlatFirst` counts other steps than one thread.
    #[test]
    fn explorations_run_ahead_leave_the_root_causes_as_one_thread_finds_them() {
        let (mut compared, mut total_hit, mut edge_hit) = (0, 0, 0);
        // Runs where building the flat held sets first changed the result on one thread.
        let mut flat_timed = 0;
        for seed in 1..=24u64 {
            let text = random_nesting(seed, 3 + seed % 5, 5 + seed % 7, 60 + 12 * seed as usize);
            let m = model_of(&[("t", &text)]);
            for level in [GraphLevel::Instance, GraphLevel::Class] {
                let (graph, weights, change) = level_change_set(&m, level);
                let run = |limits: &SearchLimits, mode, flat_first_from, open_check_after| {
                    let plan = Plan {
                        mode,
                        flat_first_from,
                        open_check_after,
                        twins: Some(crate::twins::KEPT_AT_LEAST),
                    };
                    let r = find_root_causes_ahead(&m, &graph, &weights, &change, limits, plan);
                    format!("{r:?}")
                };
                let mut bounds = vec![SearchLimits::default()];
                for total in [0, 1, 3, 10, 30, 100, 300, 1000, 3000] {
                    bounds.push(SearchLimits {
                        max_total_steps: total,
                        ..Default::default()
                    });
                }
                for steps in [1, 4, 20] {
                    bounds.push(SearchLimits {
                        max_steps: steps,
                        max_example_steps: steps,
                        ..Default::default()
                    });
                }
                for limits in &bounds {
                    for check in [1, OPEN_CHECK_AFTER] {
                        let one = run(limits, AheadMode::Off, 0, check);
                        total_hit += usize::from(one.contains("--max-total-steps"));
                        edge_hit += usize::from(one.contains("(--max-steps)"));
                        let lazy = run(limits, AheadMode::Off, usize::MAX, check);
                        flat_timed += usize::from(lazy != one);
                        for mode in [AheadMode::First, AheadMode::FlatFirst, AheadMode::Beside] {
                            assert_eq!(
                                run(limits, mode, 0, check),
                                one,
                                "seed {seed} {level:?} {limits:?} {mode:?} {check}"
                            );
                            compared += 1;
                        }
                    }
                }
            }
        }
        assert!(
            compared > 0 && total_hit > 20 && edge_hit > 5 && flat_timed > 0,
            "{total_hit} {edge_hit} {flat_timed}"
        );
    }

    #[test]
    fn the_bound_is_reported() {
        let m = model_of(&[("t", AB_BA)]);
        let limits = SearchLimits {
            max_steps: 1,
            ..Default::default()
        };
        let r = find_cycles(&m, GraphLevel::Instance, &limits);
        assert_eq!(r.warnings.len(), 1);
        assert!(
            r.warnings[0].contains("results may be incomplete"),
            "{:?}",
            r.warnings
        );
    }
}

/// One root cause: the dependency edge(s) of the lock graph that the smallest change set says to
/// change, with the shortest valid cycle they close.
#[derive(Debug, Clone)]
pub struct RootCause {
    /// The level it was found at.
    pub level: GraphLevel,
    /// The edges to change, `(held node, acquired node)`.
    pub edges: Vec<(u32, u32)>,
    /// The shortest valid cycle through the edges (a candidate without a filter).
    pub representative: Candidate,
    /// Further valid cycles through the edges, shortest first (at most
    /// [`SearchLimits::max_examples`]).
    pub examples: Vec<Candidate>,
    /// Distinct valid lock cycles found through the edges (the representative included).
    pub cycles: u64,
    /// Whether `cycles` counts every valid cycle through the edges (else it is a lower bound:
    /// the search for examples stopped at [`SearchLimits::max_example_steps`]).
    pub cycles_exhaustive: bool,
    /// Whether the representative's `combinations` counts every feasible combination of
    /// dependencies over its locks (else a lower bound: the count stopped with the search, or
    /// dependencies interchangeable with those kept but for their thread were left out of it:
    /// docs/analyze.md, "Threads that differ only by their number").
    pub combinations_exhaustive: bool,
}

/// What [`find_root_causes`] found at one level.
#[derive(Debug, Clone, Default)]
pub struct RootCauseResult {
    /// Root causes with a valid cycle, by their first edge.
    pub root_causes: Vec<RootCause>,
    /// Limits hit that may hide a violation, each naming the option that raises it.
    pub warnings: Vec<String>,
    /// Limits hit that do not change a verdict.
    pub notes: Vec<String>,
    /// Extension steps spent.
    pub steps: u64,
}

/// The edge weights used to pick the change set, by `(held node, acquired node)`: how many
/// blocking or timed acquisitions made each edge (`try_*` acquisitions cannot wait, so they need
/// no order). Edges of `try_*` acquisitions only are left out.
pub fn edge_weights(model: &Model, graph: &LockGraph) -> HashMap<(u32, u32), u64> {
    graph
        .weights(model)
        .iter()
        .enumerate()
        .filter(|&(_, w)| w > 0)
        .map(|(e, w)| (graph.endpoints(e as u32), w))
        .collect()
}

/// The smallest weighted change set of a weighted graph: per strongly connected component,
/// the backward edges of [`crate::hierarchy::min_fas_order`], with the number of components
/// where the search stopped at a bound.
pub fn change_set(weights: &HashMap<(u32, u32), u64>) -> ChangeEdges {
    change_set_ranked(weights, &|n| n as u64)
}

/// [`change_set`], breaking ties by `rank` of the nodes instead of their ids: with
/// [`canonical_ranks`], the result does not depend on the order in which the trace's events
/// interleave (ids are given in order of first appearance).
pub fn change_set_ranked(
    weights: &HashMap<(u32, u32), u64>,
    rank: &dyn Fn(u32) -> u64,
) -> ChangeEdges {
    // A graph of the weighted edges alone, in the shared representation.
    let nodes = weights
        .keys()
        .map(|&(a, b)| a.max(b) as usize + 1)
        .max()
        .unwrap_or(0);
    let mut keys: Vec<((u32, u32), u64)> = weights.iter().map(|(&e, &w)| (e, w)).collect();
    keys.sort_unstable();
    let graph = LockGraph::from_edges(nodes, keys.iter().map(|&(e, _)| e));
    let w: EdgeWeights = keys.iter().map(|&(_, w)| w).collect::<Vec<u64>>().into();
    let c = change_set_on(&graph, &w, rank);
    ChangeEdges {
        edges: c.edges(&graph).collect(),
        stopped: c.stopped,
        not_minimal: c.not_minimal,
        exchange_stopped: c.exchange_stopped,
    }
}

/// A change set spelled out as edges, for [`change_set`]'s callers that have no graph of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEdges {
    /// The edges to change, `(held, acquired)`, sorted.
    pub edges: Vec<(u32, u32)>,
    /// Components where the local search stopped before converging.
    pub stopped: u64,
    /// Components whose change set is not proven inclusion-minimal.
    pub not_minimal: u64,
    /// Components where the exchange of cut edges for lighter cuts stopped at its budget.
    pub exchange_stopped: u64,
}

/// The change set of a level: the edges to change so that an order exists.
///
/// One bit per edge id of the level's [`LockGraph`] (the graph it was computed on), not a list
/// of `(held node, acquired node)` pairs: on the hostile random trace the set holds 1.8M of
/// 4.75M edges, 15 MB as pairs and 0.6 MB as bits. Edge ids are in `(source, target)` order,
/// so [`ChangeSet::ids`] and [`ChangeSet::edges`] yield the edges sorted.
#[derive(Debug, Clone, Default)]
pub struct ChangeSet {
    /// Bit `e % 64` of word `e / 64` is set when edge `e` is to change.
    bits: Vec<u64>,
    /// How many bits are set.
    len: usize,
    /// Components where the local search stopped at
    /// [`crate::hierarchy::MAX_LOCAL_SEARCH_PASSES`] before converging.
    pub stopped: u64,
    /// Components whose change set is not proven inclusion-minimal (the pass that puts back
    /// edges closing no cycle was beyond [`crate::hierarchy::MINIMAL_PASS_MAX_BYTES`] or
    /// [`crate::hierarchy::MINIMAL_PASS_MAX_WORK`]).
    pub not_minimal: u64,
    /// Components where the exchange of a cut edge for a lighter cut stopped at
    /// [`crate::hierarchy::EXCHANGE_MAX_WORK`] (a lighter change set may exist).
    pub exchange_stopped: u64,
}

impl ChangeSet {
    /// An empty change set over the edge ids of a graph of `edges` edges.
    pub fn new(edges: usize) -> ChangeSet {
        ChangeSet {
            bits: vec![0; edges.div_ceil(64)],
            len: 0,
            stopped: 0,
            not_minimal: 0,
            exchange_stopped: 0,
        }
    }

    /// Adds edge `e` (an edge id of the graph the set belongs to).
    pub fn insert(&mut self, e: u32) {
        let (w, b) = (e as usize / 64, e % 64);
        if self.bits.len() <= w {
            self.bits.resize(w + 1, 0);
        }
        if self.bits[w] & (1 << b) == 0 {
            self.bits[w] |= 1 << b;
            self.len += 1;
        }
    }

    /// Whether edge `e` is to change.
    pub fn contains(&self, e: u32) -> bool {
        self.bits
            .get(e as usize / 64)
            .is_some_and(|w| w & (1 << (e % 64)) != 0)
    }

    /// Number of edges to change.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no edge is to change.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The edge ids to change, ascending.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.bits.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let b = w.trailing_zeros();
                    w &= w - 1;
                    i as u32 * 64 + b
                })
            })
        })
    }

    /// The edge ids to change, descending.
    fn ids_desc(&self) -> impl Iterator<Item = u32> + '_ {
        self.bits.iter().enumerate().rev().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let b = 63 - w.leading_zeros();
                    w &= !(1 << b);
                    i as u32 * 64 + b
                })
            })
        })
    }

    /// The edges to change as `(held node, acquired node)` of `graph` (the graph the set was
    /// computed on), sorted.
    pub fn edges<'g>(&'g self, graph: &'g LockGraph) -> impl Iterator<Item = (u32, u32)> + 'g {
        let mut sources = graph.sources();
        self.ids().map(move |e| (sources.of(e), graph.target(e)))
    }
}

/// The smallest weighted change set of `graph` with edge weights `weights` (by edge id; an
/// edge of weight 0 needs no order), ties broken by `rank`: per strongly connected component of
/// the weighted edges, the backward edges of [`crate::hierarchy::min_fas_order`].
pub fn change_set_on(
    graph: &LockGraph,
    weights: &EdgeWeights,
    rank: &dyn Fn(u32) -> u64,
) -> ChangeSet {
    let mut out = ChangeSet::new(graph.edge_count());
    let mut index = vec![u32::MAX; graph.nodes()];
    for mut scc in graph.sccs_by(|e| weights.get(e) > 0) {
        scc.sort_unstable_by_key(|&n| (rank(n), n));
        for (i, &c) in scc.iter().enumerate() {
            index[c as usize] = i as u32;
        }
        // The component read in place: a copy of its edges as lists would cost more than the
        // graph itself (a hostile trace's component holds millions of edges).
        let comp = Component {
            graph,
            weights,
            nodes: &scc,
            index: &index,
        };
        let fas = crate::hierarchy::min_fas_order_on(&comp);
        out.stopped += u64::from(!fas.converged);
        out.not_minimal += u64::from(!fas.minimal);
        out.exchange_stopped += u64::from(!fas.exchanged);
        let mut pos = vec![0usize; scc.len()];
        for (p, &v) in fas.order.iter().enumerate() {
            pos[v] = p;
        }
        for (a, &n) in scc.iter().enumerate() {
            for e in graph.out_edges(n) {
                let b = index[graph.target(e) as usize];
                if b != u32::MAX && weights.get(e) > 0 && pos[a] > pos[b as usize] {
                    out.insert(e);
                }
            }
        }
        for &c in &scc {
            index[c as usize] = u32::MAX;
        }
    }
    out
}

/// One strongly connected component of a [`LockGraph`] as a [`FasGraph`]: node `i` is
/// `nodes[i]`, `index` maps a graph node back (`u32::MAX` outside), and only edges of positive
/// weight inside the component count.
struct Component<'a> {
    graph: &'a LockGraph,
    weights: &'a EdgeWeights,
    nodes: &'a [u32],
    index: &'a [u32],
}

impl FasGraph for Component<'_> {
    fn n(&self) -> usize {
        self.nodes.len()
    }
    fn for_out(&self, v: usize, mut f: impl FnMut(usize, u64)) {
        for e in self.graph.out_edges(self.nodes[v]) {
            let j = self.index[self.graph.target(e) as usize];
            let w = self.weights.get(e);
            if j != u32::MAX && w > 0 {
                f(j as usize, w);
            }
        }
    }
    /// The edges leaving the component's nodes, inside it or not: a bound without reading
    /// an edge.
    fn edges_at_most(&self) -> usize {
        self.nodes
            .iter()
            .map(|&a| self.graph.out_edges(a).len())
            .sum()
    }
    fn for_in(&self, v: usize, mut f: impl FnMut(usize, u64)) {
        let mut sources = self.graph.sources();
        for &e in self.graph.in_edges(self.nodes[v]) {
            let j = self.index[sources.of(e) as usize];
            let w = self.weights.get(e);
            if j != u32::MAX && w > 0 {
                f(j as usize, w);
            }
        }
    }
}

/// Every mode, for the gate marks of [`EdgeSearch`].
const ALL_MODES: [Mode; 5] = [
    Mode::Exclusive,
    Mode::Shared,
    Mode::SharedRecursive,
    Mode::Upgradable,
    Mode::Permit,
];

/// Whether two dependencies `a` (index `ai`) and `b` (index `bi`) of one chain can wait at the
/// same time (distinct threads, not ordered by fork/join, no gate lock): [`check_pair`] with the
/// cheap tests first, as most candidates of a hostile trace fail on the clocks before their held
/// sets need comparing. The gate rule is one merge of the two sorted flat copies when there are
/// copies ([`FlatHeld::pair_gate`]), instead of a walk of `b`'s held set up the interned tree for
/// each lock `a` holds.
fn compatible(
    ep: &Epochs<'_>,
    flat: Option<&FlatHeld>,
    (a, ai): (&Dep<'_>, u32),
    (b, bi): (&Dep<'_>, u32),
) -> bool {
    if a.thread() == b.thread() || ep.happens_before(a, b) || ep.happens_before(b, a) {
        return false;
    }
    match flat.and_then(|f| f.pair_gate_bits(ai, bi).or_else(|| f.pair_gate(ai, bi))) {
        // check_pair's own clock test after its gate rule.
        Some(gate) => !gate && !a.happens_before(b) && !b.happens_before(a),
        None => check_pair(a, b).is_ok(),
    }
}

/// `table` (`rows` rows of `cols` entries) transposed.
fn transpose<T: Copy>(table: &[T], rows: usize, cols: usize) -> Vec<T> {
    let Some(&first) = table.first() else {
        return Vec::new();
    };
    let mut out = vec![first; table.len()];
    // By blocks of rows, so that the rows read stay in the cache while each column is written.
    for r0 in (0..rows).step_by(256) {
        let r1 = (r0 + 256).min(rows);
        for c in 0..cols {
            for r in r0..r1 {
                out[c * rows + r] = table[r * cols + c];
            }
        }
    }
    out
}

/// The most entries (clocks times threads) of the table of [`Epochs`]: 8 MB of 16-bit
/// epochs, 16 MB of 32-bit ones, twice (by clock and by thread). A hostile random trace of 128
/// threads (52,323 clocks, 6.7M entries) goes without it: 8M entries would take its run from
/// 7.5 s to 6.5 s of user CPU but its peak from 242 MB to 268 MB, over the 256 MB issue 11
/// sets for hostile traces (branch `scale17`). Up to [`MAX_EPOCH_TABLE_ONE`] entries the table
/// is kept once, by clock (`scale18`: that trace's 6.7M entries, 13 MB).
const MAX_EPOCH_TABLE: usize = 4 << 20;

/// The most entries of the table of [`Epochs`] kept by clock only (no copy by thread:
/// [`Epochs::known_to`] reads the table by clock then).
const MAX_EPOCH_TABLE_ONE: usize = 8 << 20;

/// Whether [`Epochs`] keeps a table for `clocks` clocks of `threads` threads.
fn epoch_table_fits(clocks: usize, threads: usize) -> bool {
    let size = clocks.saturating_mul(threads);
    size != 0 && size <= MAX_EPOCH_TABLE_ONE
}

/// The epoch of each thread in each interned clock of the model, read by the root-cause search
/// for every candidate pair (its clock tests): one load from a table of `clocks x threads`
/// where [`VectorClock::get`] is a binary search behind a pointer (about a quarter of the search's
/// time on the hostile random trace, 64 threads). Epochs in 16 bits when every epoch fits
/// (a thread's epoch counts its forks and joins). Without the table (more entries than
/// [`MAX_EPOCH_TABLE_ONE`]) the clocks themselves are read: the same answers; beyond
/// [`MAX_EPOCH_TABLE`], one copy only (by clock).
///
/// [`VectorClock::get`]: lockcheck_core::deps::VectorClock::get
struct Epochs<'a> {
    model: &'a Model,
    threads: usize,
    table: EpochTable,
    /// The same epochs by `thread * clocks + clock` ([`Epochs::known_to`]): what one thread's
    /// epoch is in many clocks, read side by side.
    columns: EpochTable,
    /// Without a table, when every clock knows one thread at most (no fork or join ever
    /// told a thread of another: most research traces, and any trace of more threads than the
    /// table holds without them): each clock's one `(thread, epoch)`, `(u32::MAX, 0)` for
    /// none. One load where [`Clocks::get`] reads the clock's entry behind two pointers: a
    /// third of the run on a ring of 20 locks taken three deep by 40,000 threads.
    ///
    /// [`Clocks::get`]: crate::clocks::Clocks::get
    single: Option<Vec<(u32, u32)>>,
}

/// The table of [`Epochs`], by `clock * threads + thread`.
enum EpochTable {
    Absent,
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl<'a> Epochs<'a> {
    fn new(model: &'a Model) -> Epochs<'a> {
        let threads = model.threads.len();
        let size = model.clocks.len().saturating_mul(threads);
        let table = if !epoch_table_fits(model.clocks.len(), threads) {
            EpochTable::Absent
        } else {
            // Each clock's row in one pass over its entries (`Clocks::row`), not one lookup
            // per thread: 3.35M trie walks on the hostile random trace.
            // Narrow until an epoch does not fit, then wide from there on.
            let mut row = vec![0u32; threads];
            let mut t = EpochTable::Narrow(Vec::with_capacity(size));
            for c in 0..model.clocks.len() as u32 {
                model.clocks.row(c, &mut row);
                if let EpochTable::Narrow(v) = &t {
                    if row.iter().any(|&e| e > u32::from(u16::MAX)) {
                        let mut w = Vec::with_capacity(size);
                        w.extend(v.iter().map(|&e| u32::from(e)));
                        t = EpochTable::Wide(w);
                    }
                }
                match &mut t {
                    EpochTable::Narrow(v) => v.extend(row.iter().map(|&e| e as u16)),
                    EpochTable::Wide(v) => v.extend_from_slice(&row),
                    EpochTable::Absent => unreachable!("the table is being built"),
                }
            }
            t
        };
        let clocks = model.clocks.len();
        let columns = match &table {
            EpochTable::Absent => EpochTable::Absent,
            _ if size > MAX_EPOCH_TABLE => EpochTable::Absent,
            EpochTable::Narrow(t) => EpochTable::Narrow(transpose(t, clocks, threads)),
            EpochTable::Wide(t) => EpochTable::Wide(transpose(t, clocks, threads)),
        };
        let single = match table {
            EpochTable::Absent => (0..clocks as u32)
                .map(|c| match model.clocks.clock(c) {
                    crate::clocks::Clock::Flat(v) if v.len() <= 1 => {
                        Some(v.first().copied().unwrap_or((u32::MAX, 0)))
                    }
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        Epochs {
            model,
            threads,
            table,
            columns,
            single,
        }
    }

    /// The epoch of `thread` known to clock `clock` of the model, as [`Epochs::get`], from the
    /// table by thread: a successor list reads one thread's epoch (the list's own thread) in
    /// the clocks of many holders, which by clock are a cache miss each (128 bytes apart on the
    /// hostile random trace's 64 threads) and by thread lie within one thread's column.
    #[inline]
    fn known_to(&self, clock: u32, thread: u64) -> u32 {
        let at = thread as usize * self.model.clocks.len() + clock as usize;
        match &self.columns {
            _ if thread as usize >= self.threads => self.model.clocks.get(clock, thread),
            EpochTable::Narrow(t) => u32::from(t[at]),
            EpochTable::Wide(t) => t[at],
            // The table by clock, if it is there (one copy only), else the clocks.
            EpochTable::Absent => self.get(clock, thread),
        }
    }

    /// The epoch of `thread` known to clock `clock` of the model.
    #[inline]
    fn get(&self, clock: u32, thread: u64) -> u32 {
        let at = clock as usize * self.threads + thread as usize;
        match &self.table {
            _ if thread as usize >= self.threads => self.model.clocks.get(clock, thread),
            EpochTable::Narrow(t) => u32::from(t[at]),
            EpochTable::Wide(t) => t[at],
            EpochTable::Absent => match &self.single {
                Some(s) => match s[clock as usize] {
                    (t, e) if u64::from(t) == thread => e,
                    _ => 0,
                },
                None => self.model.clocks.get(clock, thread),
            },
        }
    }

    /// The epoch of `thread` known to dependency `d`'s clock.
    #[inline]
    fn of(&self, d: &Dep<'_>, thread: u64) -> u32 {
        self.get(d.rec().clock, thread)
    }

    /// Whether dependencies `c` and `d`, whose own epochs (their clocks' entries for their own
    /// threads) are `own_c` and `own_d`, cannot stand in one deadlock: made by the same thread,
    /// or one ordered before the other by fork/join.
    // Always inlined: five tests of the search call it, each in a loop over a chain or a list
    // (left to the compiler it was a call of its own, 110M instructions more on the 200k trace).
    #[inline(always)]
    fn same_or_ordered(&self, c: &Dep<'_>, own_c: u32, d: &Dep<'_>, own_d: u32) -> bool {
        c.thread() == d.thread()
            || (own_c != 0 && own_c <= self.of(d, c.thread()))
            || (own_d != 0 && own_d <= self.of(c, d.thread()))
    }

    /// Whether `a` happens before `b` ([`VectorClock::happens_before`] of their clocks).
    ///
    /// [`VectorClock::happens_before`]: lockcheck_core::deps::VectorClock::happens_before
    #[inline]
    fn happens_before(&self, a: &Dep<'_>, b: &Dep<'_>) -> bool {
        let own = self.of(a, a.thread());
        own != 0 && own <= self.of(b, a.thread())
    }
}

/// The most (edge, dependency) pairs [`Successors`] keeps; beyond, lists are computed again
/// at each use (time instead of memory on a graph where everything is compatible).
const MAX_MEMO_ENTRIES: usize = 4 << 20;

/// Slots of the cache of rule verdicts by held set in [`Successors::of`].
const RULES_CACHE: usize = 256;

/// The blocking dependencies holding one node `v`, grouped by thread in the thread's own order.
///
/// A dependency of an ordered run is stored as its rank among its thread's blocking
/// dependencies ([`ThreadDeps`]), in 16 bits when every thread has at most 2^16 of them (every
/// thread of the hostile random trace: about 1,200 each), not as a copy of its 32-bit index:
/// these lists hold every blocking (dependency, held node) pair of the graph (8M on that trace,
/// 32 MB as indices, 16 MB as ranks). A rank reads the thread's own epoch, clock and index of
/// the dependency from [`ThreadDeps`]' small per-thread arrays, not from the graph's dependency
/// list and the dependency's record (three dependent cache misses per holder tested before).
struct Holders {
    /// Ranks, sorted by (thread, rank): the runs of `ordered`.
    items: Positions,
    /// `(thread, start, end)` of each thread's run in `items` whose own epochs are positive and
    /// never decrease (the thread's clock only grows, so its knowledge of others does too).
    ordered: Vec<(u64, u32, u32)>,
    /// The dependencies (indices) of the runs without that order (dependencies merged without
    /// a clock), scanned in full, by (thread, index).
    rest: Vec<u32>,
}

/// The blocking dependencies of each thread in index order (the thread's own order), with their
/// own epochs and clocks side by side: what the successor lists read of a holder before its
/// held set, in arrays of a few hundred kilobytes instead of the dependencies' records.
struct ThreadDeps {
    /// Where each thread's dependencies begin in the arrays below; one more entry at the end.
    start: Vec<u32>,
    /// Index of each dependency.
    dep: Vec<u32>,
    /// Own epoch of each dependency (`clock.get(thread)`).
    own: Vec<u32>,
    /// Clock of each dependency.
    clock: Vec<u32>,
    /// Interned held set of each dependency (the key of the rules' verdicts in
    /// [`Successors::of`]).
    held: Vec<u32>,
    /// Where each dependency is in the arrays above, by dependency index (`u32::MAX`: not
    /// blocking): sorting these sorts dependencies by (thread, index).
    at: Vec<u32>,
    /// Whether every rank fits in 16 bits.
    narrow: bool,
}

impl ThreadDeps {
    /// The blocking dependencies by thread, with the own epoch of every dependency
    /// (`clock.get(thread)`, from `epochs`' table) and, per dependency, `[0, CLOSERS_UNKNOWN]`
    /// when it blocks, `[u32::MAX, CLOSERS_UNKNOWN]` when it does not (the root-cause search's
    /// state, see [`find_root_causes_on`]).
    ///
    /// Two passes over the dependencies' records (48 bytes each: 62 MB on the planted
    /// 5M-event trace): one for the epochs, the state and the count of each thread's
    /// dependencies, one to place them. The own epochs, the state and the threads' counts were
    /// five passes, each a stream of cache misses as long as the records (4M last-level misses
    /// there), and the own epoch a clock lookup per dependency where the table holds it.
    ///
    /// The dependencies of `left_out` ([`crate::twins`]) are placed as those that do not block:
    /// the search starts from none of them and lists none as a holder.
    fn with_own_and_state(
        model: &Model,
        epochs: &Epochs<'_>,
        left_out: Option<&[bool]>,
    ) -> (ThreadDeps, Vec<u32>, Vec<[u32; 2]>) {
        let left = |i: usize| left_out.is_some_and(|l| l[i]);
        let blocking = |i: usize, how| how == lockcheck_core::trace::How::Blocking && !left(i);
        let mut own = Vec::with_capacity(model.deps.len());
        let mut state = Vec::with_capacity(model.deps.len());
        let mut start = vec![0u32; model.threads.len() + 1];
        // The threads: one more than the highest of any dependency (as many places in `start`).
        let mut threads = 0usize;
        for (i, r) in model.deps.iter().enumerate() {
            own.push(epochs.get(r.clock, r.thread as u64));
            threads = threads.max(r.thread as usize + 1);
            if blocking(i, r.how) {
                state.push([0, CLOSERS_UNKNOWN]);
                let t = r.thread as usize + 1;
                if t >= start.len() {
                    start.resize(t + 1, 0);
                }
                start[t] += 1;
            } else {
                state.push([u32::MAX, CLOSERS_UNKNOWN]);
            }
        }
        start.resize(threads + 1, 0);
        let td = ThreadDeps::place(model, start, threads, &own, &state);
        (td, own, state)
    }

    /// The second pass of [`ThreadDeps::with_own_and_state`]: `start` holds each thread's count
    /// of blocking dependencies at `t + 1` (`threads + 1` places); the counts become offsets and
    /// every blocking dependency (by `state`, `u32::MAX` for the others) is placed at its
    /// thread's next position.
    fn place(
        model: &Model,
        mut start: Vec<u32>,
        threads: usize,
        own: &[u32],
        state: &[[u32; 2]],
    ) -> ThreadDeps {
        let narrow = start.iter().all(|&n| n <= 1 << 16);
        for t in 0..threads {
            start[t + 1] += start[t];
        }
        let n = start[threads] as usize;
        let (mut dep, mut own_of, mut clock) = (vec![0; n], vec![0; n], vec![0; n]);
        let mut held = vec![0; n];
        let mut at_of = vec![u32::MAX; model.deps.len()];
        let mut next = start.clone();
        for (i, r) in model.deps.iter().enumerate() {
            if state[i][0] == u32::MAX {
                continue;
            }
            let t = r.thread as usize;
            let at = next[t] as usize;
            next[t] += 1;
            dep[at] = i as u32;
            own_of[at] = own[i];
            clock[at] = r.clock;
            held[at] = r.held;
            at_of[i] = at as u32;
        }
        ThreadDeps {
            start,
            dep,
            own: own_of,
            clock,
            held,
            at: at_of,
            narrow,
        }
    }
}

#[cfg(test)]
impl ThreadDeps {
    /// [`ThreadDeps::with_own_and_state`]'s tables as they were built before it: the own
    /// epochs by a clock lookup per dependency, the state and the threads' counts by passes
    /// of their own (to compare it against; the placement, [`ThreadDeps::place`], is shared).
    fn reference(model: &Model) -> (ThreadDeps, Vec<u32>, Vec<[u32; 2]>) {
        let blocking = |how| how == lockcheck_core::trace::How::Blocking;
        let own: Vec<u32> = model
            .deps
            .iter()
            .map(|r| model.clocks.get(r.clock, r.thread as u64))
            .collect();
        let state: Vec<[u32; 2]> = model
            .deps
            .iter()
            .map(|r| {
                if blocking(r.how) {
                    [0, CLOSERS_UNKNOWN]
                } else {
                    [u32::MAX, CLOSERS_UNKNOWN]
                }
            })
            .collect();
        let threads = model
            .deps
            .iter()
            .map(|r| r.thread as usize + 1)
            .max()
            .unwrap_or(0);
        let mut start = vec![0u32; threads + 1];
        for r in model.deps.iter().filter(|r| blocking(r.how)) {
            start[r.thread as usize + 1] += 1;
        }
        let td = ThreadDeps::place(model, start, threads, &own, &state);
        (td, own, state)
    }
}

/// What every thread of one root-cause search reads and none owns: the epochs, the blocking
/// dependencies by thread, each node's holders and the flat held sets. The last two are built
/// at their first use, by whichever thread comes first (each is a function of the model and
/// the graph alone, so it does not matter which): a second thread of the search
/// ([`find_root_causes_on`]) reads them instead of a copy of its own (about 60 MB on the
/// hostile random trace).
struct SharedTables<'a> {
    epochs: Epochs<'a>,
    threads: ThreadDeps,
    /// Per node of the graph, its holders ([`Successors::holders`]).
    holders: Vec<std::sync::OnceLock<Box<Holders>>>,
    /// The holders of a node beyond the graph's (none).
    no_holders: Holders,
    /// The flat held sets ([`Successors::flat_due`]): `Some(None)` once found too large.
    flat: std::sync::OnceLock<Option<FlatHeld>>,
    /// The successor lists ([`Successors::of`]).
    memo: Memo,
    /// By dependency, whether the search leaves it out ([`crate::twins`]; empty: none).
    left_out: Vec<bool>,
    /// How many dependencies the search does not leave out.
    searched: usize,
}

impl<'a> SharedTables<'a> {
    fn new(graph: &LockGraph, epochs: Epochs<'a>, threads: ThreadDeps) -> SharedTables<'a> {
        let deps = epochs.model.deps.len();
        SharedTables {
            left_out: Vec::new(),
            searched: deps,
            epochs,
            threads,
            holders: std::iter::repeat_with(std::sync::OnceLock::new)
                .take(graph.nodes())
                .collect(),
            no_holders: Holders {
                items: Positions::Wide(Vec::new()),
                ordered: Vec::new(),
                rest: Vec::new(),
            },
            flat: std::sync::OnceLock::new(),
            memo: Memo::new(deps),
        }
    }
}

/// Ranks of [`ThreadDeps`], in 16 bits when every thread has at most 2^16 blocking dependencies.
enum Positions {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl Positions {
    #[inline]
    fn get(&self, i: usize) -> usize {
        match self {
            Positions::Narrow(p) => usize::from(p[i]),
            Positions::Wide(p) => p[i] as usize,
        }
    }
}

/// Per dependency `d`, the dependencies that can follow it in a chain: they hold (an instance
/// of) the node `d` requests, block, come from another thread, are concurrent with `d`, share
/// no gate with it, and their hold conflicts with `d`'s request. Computed once per dependency
/// and shared by the searches of every edge it lies on; the fork/join order narrows the scan to
/// the concurrent run of each thread by binary search.
struct Successors<'a> {
    model: &'a Model,
    level: GraphLevel,
    graph: &'a LockGraph,
    /// The tables that every thread of the search reads ([`SharedTables`]).
    shared: &'a SharedTables<'a>,
    /// Own epoch of each dependency (`clock.get(thread)`), by dependency index.
    own: &'a [u32],
    /// The held locks of the dependency whose list is being computed, counted per mode.
    marks: Marks,
    /// The clocks' epochs, also read by [`EdgeSearch`] (the shared ones).
    epochs: &'a Epochs<'a>,
    /// The flat copy's state as this thread sees it: how many of its gate tests walked the
    /// interned tree so far (while the copy is not built), or `u64::MAX` once it was built
    /// (here or by another thread) or found too large.
    walks: u64,
    /// [`conflict_masks`].
    conflict: [u8; 5],
    /// One bit per blocking dependency ([`ThreadDeps`] place), all clear between uses: the
    /// scratch of [`sort_distinct`] for [`Successors::holders`].
    bitmap: Vec<u64>,
    /// Scratch of [`Successors::of`]: the candidates ([`Successors::concurrent`]) and the
    /// successors of the dependency whose list is being computed, kept between lists (on the
    /// hostile random trace, 76,000 lists grew two new vectors each: 247,000 reallocations).
    cands: Vec<(u32, u32)>,
    out: Vec<(u32, u32)>,
}

/// A successor list of [`Successors::of`]: `(edge, dependency)` pairs, kept in the [`Memo`]
/// or, once the memo is full, made for this use alone.
enum List<'a> {
    /// The list kept in the memo (by this thread or another).
    Kept(&'a [(u32, u32)]),
    /// A list the memo had no room for, dropped after its use.
    Made(Box<[(u32, u32)]>),
}

impl std::ops::Deref for List<'_> {
    type Target = [(u32, u32)];

    #[inline]
    fn deref(&self) -> &[(u32, u32)] {
        match self {
            List::Kept(l) => l,
            List::Made(l) => l,
        }
    }
}

/// Slots per page of a [`Memo`].
const MEMO_PAGE: usize = 1024;

/// A page of a [`Memo`]: one slot per dependency, each set once.
type MemoPage = Box<[std::sync::OnceLock<Box<[(u32, u32)]>>]>;

/// The successor lists kept, by dependency index, shared by the threads of one search (a list
/// is a function of its dependency alone: whichever thread makes it first keeps it): pages of
/// [`MEMO_PAGE`] slots, each allocated at its first list (a search that computes few lists, as
/// on the planted traces of a million dependencies, allocates few). Read once per extension of
/// a chain: an index where a hash table's probe was a sixth of [`Successors::of`]'s time on
/// the hostile random trace. An empty list takes no memory of its own (most lists of a hostile
/// trace: 76,000 of 77,000 entries on the random one), and its length is read from its slot.
struct Memo {
    /// One page per [`MEMO_PAGE`] dependencies, allocated at its first list.
    pages: Box<[std::sync::OnceLock<MemoPage>]>,
    /// Lists kept.
    len: std::sync::atomic::AtomicUsize,
    /// Entries of the lists kept (at most [`MAX_MEMO_ENTRIES`]).
    entries: std::sync::atomic::AtomicUsize,
}

impl Memo {
    /// An empty memo for `deps` dependencies.
    fn new(deps: usize) -> Memo {
        Memo {
            pages: std::iter::repeat_with(std::sync::OnceLock::new)
                .take(deps.div_ceil(MEMO_PAGE))
                .collect(),
            len: Default::default(),
            entries: Default::default(),
        }
    }

    /// The list kept for dependency `d`, if any.
    #[inline]
    fn get(&self, d: u32) -> Option<&[(u32, u32)]> {
        let d = d as usize;
        Some(&**self.pages.get(d / MEMO_PAGE)?.get()?[d % MEMO_PAGE].get()?)
    }

    /// Keeps `list` for dependency `d` if the memo has room for it, and returns the list kept
    /// (another thread's, the same, if it kept one first); else gives `list` back.
    fn insert(&self, d: u32, list: Box<[(u32, u32)]>) -> List<'_> {
        use std::sync::atomic::Ordering;
        let n = list.len();
        let d = d as usize;
        let Some(page) = self.pages.get(d / MEMO_PAGE) else {
            return List::Made(list);
        };
        // The entries are counted before the list is kept (given back below if another thread
        // kept one first), so the memo never holds more than its budget.
        let room = self
            .entries
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |e| {
                (e + n <= MAX_MEMO_ENTRIES).then_some(e + n)
            })
            .is_ok();
        if !room {
            return List::Made(list);
        }
        let page = page.get_or_init(|| {
            std::iter::repeat_with(std::sync::OnceLock::new)
                .take(MEMO_PAGE)
                .collect()
        });
        let mut mine = Some(list);
        let kept = page[d % MEMO_PAGE].get_or_init(|| mine.take().expect("set once"));
        if mine.is_none() {
            self.len.fetch_add(1, Ordering::Relaxed);
        } else {
            self.entries.fetch_sub(n, Ordering::Relaxed);
        }
        List::Kept(kept)
    }

    /// How many lists are kept.
    fn len(&self) -> usize {
        self.len.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Sorts `keys`, which are distinct, ascending: through `bitmap` (all clear, one bit per
/// possible key; left clear) when the keys are dense enough that a scan of its words costs less
/// than a comparison sort, else by `sort_unstable`. The holders of a node on the hostile random
/// trace are about 2,700 of 78,000 places (1,221 words): 3000 comparison sorts were an eighth of
/// the root-cause search's instructions.
fn sort_distinct(keys: &mut [u32], bitmap: &mut [u64]) {
    if !keys.iter().all(|&k| (k as usize / 64) < bitmap.len()) {
        keys.sort_unstable();
        return;
    }
    for &k in keys.iter() {
        debug_assert!(
            bitmap[k as usize / 64] & (1 << (k % 64)) == 0,
            "keys are distinct"
        );
        bitmap[k as usize / 64] |= 1 << (k % 64);
    }
    sort_marked(keys, bitmap);
}

/// Sorts `keys`, which are distinct and whose bits are set in `bitmap`, ascending, and clears
/// their bits: by a scan of the words they lie in, or by `sort_unstable` when those words are
/// many for the keys (a comparison sort costs about `n log n` steps, the scan one per word and
/// one per key).
fn sort_marked(keys: &mut [u32], bitmap: &mut [u64]) {
    let (mut lo, mut hi) = (usize::MAX, 0usize);
    for &k in keys.iter() {
        lo = lo.min(k as usize / 64);
        hi = hi.max(k as usize / 64 + 1);
    }
    let n = keys.len().max(2);
    if hi.saturating_sub(lo) > n * (usize::BITS - n.leading_zeros()) as usize * 4 {
        keys.sort_unstable();
        for &k in keys.iter() {
            bitmap[k as usize / 64] &= !(1 << (k % 64));
        }
        return;
    }
    let mut out = 0;
    for (w, word) in bitmap.iter_mut().enumerate().take(hi).skip(lo) {
        let mut bits = std::mem::take(word);
        while bits != 0 {
            keys[out] = (w * 64) as u32 + bits.trailing_zeros();
            out += 1;
            bits &= bits - 1;
        }
    }
    assert_eq!(out, keys.len(), "the keys are distinct");
}

/// The holds of the dependencies of a chain (or of the one whose successor list is being
/// computed), per lock: how many in each mode (by `Mode as usize`), and the modes with a positive
/// count as one bit each, which the gate test reads (one byte per lock instead of five counts).
#[derive(Default)]
struct Marks {
    counts: Vec<[u32; 5]>,
    modes: Vec<u8>,
}

impl Marks {
    fn new(locks: usize) -> Marks {
        Marks {
            counts: vec![[0; 5]; locks],
            modes: vec![0; locks],
        }
    }

    /// Adds (or, with `add` false, removes) every hold of dependency `d`, read from its flat
    /// copy when it has one where each lock is held once.
    fn dep(&mut self, model: &Model, flat: Option<&FlatHeld>, d: u32, add: bool) {
        match flat.and_then(|f| f.holds(d)) {
            Some(FlatSlice::Narrow(v)) => {
                for &x in v {
                    self.hold(u32::from(x), add);
                }
            }
            Some(FlatSlice::Wide(v)) => {
                for &x in v {
                    self.hold(x, add);
                }
            }
            None => {
                for (l, m) in crate::graph::dep_held_rev(model, d) {
                    if model.gates(l, m) {
                        self.hold(l << 3 | m as u32, add);
                    }
                }
            }
        }
    }

    /// Adds or removes one hold, as `lock << 3 | mode`.
    #[inline]
    fn hold(&mut self, code: u32, add: bool) {
        let (l, m) = ((code >> 3) as usize, code & 7);
        {
            let c = &mut self.counts[l][m as usize];
            if add {
                *c += 1;
            } else {
                *c -= 1;
            }
            let bit = 1u8 << m;
            if *c > 0 {
                self.modes[l] |= bit;
            } else {
                self.modes[l] &= !bit;
            }
        }
    }
}

/// Per mode `m` (bit `Mode as usize`), the modes `o` such that a hold in `o` and a hold in `m`
/// of one lock exclude each other ([`check_pair`]'s gate rule).
fn conflict_masks() -> [u8; 5] {
    let mut t = [0u8; 5];
    for m in ALL_MODES {
        for o in ALL_MODES {
            if o.excludes(m) || m.excludes(o) {
                t[m as usize] |= 1 << (o as u8);
            }
        }
    }
    t
}

/// Whether `d` holds a lock marked in `marks` in a mode that excludes, or is excluded by, a
/// marked mode: [`check_pair`]'s gate rule (it reads the first hold of each lock in `d`) in one
/// pass over `d`'s held set up the interned tree. [`FlatHeld::gate`] answers the same from a flat
/// copy; this walk is for a model without one.
fn meets_gate(model: &Model, marks: &Marks, conflict: &[u8; 5], d: &Dep<'_>) -> bool {
    // Newest first, without collecting the held set (hundreds of locks on a hostile trace): a
    // hold counts if no older hold of the same lock follows it in this order.
    let held = || model.held_sets.rev_iter(d.rec().held);
    for (i, (h, m)) in held().enumerate() {
        if marks.modes[h as usize] & conflict[m as usize] != 0
            && model.gates(h, m)
            && !held().skip(i + 1).any(|x| x.0 == h)
        {
            return true;
        }
    }
    false
}

/// The most entries of a [`FlatHeld`] copy (32 MiB at 4 bytes each, 16 MiB at 2 bytes); a model
/// with more distinct (held set, lock) pairs among its blocking dependencies is searched with walks
/// of the interned tree instead: the same answers, slower.
const MAX_FLAT_ENTRIES: usize = 8 << 20;

/// The held set of every blocking dependency as a flat list of its distinct locks, sorted, each
/// with the mode of its oldest hold (the one [`check_pair`]'s gate rule reads), less the holds
/// that are no gate ([`Model::gates`]): one copy per distinct interned set, freed with the
/// root-cause search. A gate test reads one short run of memory instead of walking up the
/// interned tree, where each step is a dependent load in a tree of millions of nodes (on the
/// hostile random trace: 47,012 distinct sets of about a hundred locks, walked 2.4M times).
struct FlatHeld {
    /// Per dependency, the index of its set, or `u32::MAX` (not a blocking dependency).
    set_of: Vec<u32>,
    /// Where each set begins in `entries`; one more entry at the end.
    starts: Vec<u32>,
    /// Whether each set holds some lock more than once (its entries keep the oldest hold only:
    /// the gate test reads them, the marks walk the interned set instead).
    repeats: Vec<bool>,
    /// `lock << 3 | mode` per lock of each set.
    entries: FlatEntries,
    /// [`conflict_masks`].
    conflict: [u8; 5],
    /// Each set's locks as a bitset of `words` words (set `k` at `k * words`), when the model
    /// has at most [`MAX_LOCK_TABLE`] locks and the bitsets at most [`MAX_FLAT_BIT_WORDS`]
    /// words: [`FlatHeld::pair_gate_bits`].
    bits: Option<Vec<u64>>,
    /// Words per set in `bits`.
    words: usize,
    /// Whether every hold of each set (repeats included) is exclusive.
    exclusive: Vec<bool>,
    /// Whether an exclusive hold conflicts with a hold of every mode ([`conflict_masks`]): then
    /// a lock that two sets share is a gate as soon as one of them holds only exclusively.
    exclusive_conflicts_all: bool,
}

/// The most locks for which [`FlatHeld::new`] finds a set's distinct locks with one bit and one
/// byte per lock of the model (and keeps [`FlatHeld`]'s bitsets); beyond, it sorts each set.
const MAX_LOCK_TABLE: usize = 1 << 22;

/// The most words of [`FlatHeld`]'s bitsets (48 MiB); beyond, the gate tests read the sorted
/// copies only: the same answers, slower. The hostile random trace: 47,012 sets of 47 words
/// (3000 locks), 2.2M words; with 128 threads and 6000 locks, 47,304 sets of 94 words, 4.4M
/// words, beyond the former bound of 3M words: its root-cause search took 8.5 s of user CPU
/// without the bitsets, 5.4 s with them (35 MB more at the peak).
const MAX_FLAT_BIT_WORDS: usize = 6 << 20;

/// Whether [`FlatHeld`] keeps bitsets of `words` words for each of `sets` sets.
fn flat_bits_fit(sets: usize, words: usize) -> bool {
    sets.saturating_mul(words) <= MAX_FLAT_BIT_WORDS
}

/// The entries of [`FlatHeld`], in 16 bits when every lock id is below 2^13.
enum FlatEntries {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

/// The entries of one set of a [`FlatHeld`].
enum FlatSlice<'a> {
    Narrow(&'a [u16]),
    Wide(&'a [u32]),
}

impl FlatHeld {
    /// The copy of `model`'s blocking dependencies' held sets, or `None` when it would exceed
    /// [`MAX_FLAT_ENTRIES`] (or a lock id does not fit beside its mode in 32 bits).
    fn new(model: &Model) -> Option<FlatHeld> {
        let locks = model.locks.len();
        if locks > 1 << 29 {
            return None;
        }
        let mut entries = if locks <= 1 << 13 {
            FlatEntries::Narrow(Vec::new())
        } else {
            FlatEntries::Wide(Vec::new())
        };
        let mut set_of = vec![u32::MAX; model.deps.len()];
        let mut index: FastMap<u32, u32> = FastMap::default();
        let mut starts = vec![0u32];
        let mut repeats = Vec::new();
        let mut buf: Vec<(LockId, Mode)> = Vec::new();
        // The distinct locks of a set and the mode of each one's oldest hold, found with one bit
        // and one byte per lock of the model (cleared after each set) instead of a stable sort
        // of the holds (7 % of the root-cause search's instructions on the hostile random
        // trace); a model of more locks than `MAX_LOCK_TABLE` sorts.
        let table = locks <= MAX_LOCK_TABLE;
        let words = locks.div_ceil(64);
        let mut exclusive: Vec<bool> = Vec::new();
        let mut bits: Vec<u64> = vec![0; if table { locks.div_ceil(64) } else { 0 }];
        let mut mode_of: Vec<Mode> = vec![Mode::Exclusive; if table { locks } else { 0 }];
        let mut distinct: Vec<LockId> = Vec::new();
        for (i, r) in model.deps.iter().enumerate() {
            if r.how != lockcheck_core::trace::How::Blocking {
                continue;
            }
            let next = starts.len() as u32 - 1;
            let k = *index.entry(r.held).or_insert(next);
            if k == next {
                buf.clear();
                if table {
                    distinct.clear();
                    let mut holds = 0usize;
                    let mut only_exclusive = true;
                    // Newest first: the last mode written for a lock is its oldest hold's.
                    for (l, m) in model.held_sets.rev_iter(r.held) {
                        holds += 1;
                        only_exclusive &= m == Mode::Exclusive;
                        let (w, b) = (l as usize / 64, l % 64);
                        if bits[w] & (1 << b) == 0 {
                            bits[w] |= 1 << b;
                            distinct.push(l);
                        }
                        mode_of[l as usize] = m;
                    }
                    exclusive.push(only_exclusive);
                    sort_marked(&mut distinct, &mut bits);
                    buf.extend(distinct.iter().map(|&l| (l, mode_of[l as usize])));
                    repeats.push(distinct.len() < holds);
                } else {
                    buf.extend(model.held_sets.rev_iter(r.held));
                    // Oldest first, then a stable sort: the first entry of each lock is its
                    // oldest hold.
                    buf.reverse();
                    buf.sort_by_key(|e| e.0);
                    let holds = buf.len();
                    buf.dedup_by_key(|e| e.0);
                    repeats.push(buf.len() < holds);
                }
                // Only gate tests read the copy: a hold that is no gate is left out.
                buf.retain(|&(l, m)| model.gates(l, m));
                let end = *starts.last().expect("starts at 0") as usize + buf.len();
                if end > MAX_FLAT_ENTRIES {
                    return None;
                }
                let code = |&(l, m): &(LockId, Mode)| l << 3 | m as u32;
                match &mut entries {
                    FlatEntries::Narrow(v) => v.extend(buf.iter().map(|e| code(e) as u16)),
                    FlatEntries::Wide(v) => v.extend(buf.iter().map(code)),
                }
                starts.push(end as u32);
            }
            set_of[i] = k;
        }
        match &mut entries {
            FlatEntries::Narrow(v) => v.shrink_to_fit(),
            FlatEntries::Wide(v) => v.shrink_to_fit(),
        }
        // The bitsets, from the copies, allocated at their size once the sets are known (grown
        // set by set, the vector's doublings and copies cost 20 MB of peak on the hostile trace).
        let sets = starts.len() - 1;
        let set_bits = (table && flat_bits_fit(sets, words)).then(|| {
            let mut b = vec![0u64; sets * words];
            for k in 0..sets {
                let (s, e) = (starts[k] as usize, starts[k + 1] as usize);
                let mut put = |code: u32| {
                    let l = (code >> 3) as usize;
                    b[k * words + l / 64] |= 1 << (l % 64);
                };
                match &entries {
                    FlatEntries::Narrow(v) => v[s..e].iter().for_each(|&x| put(u32::from(x))),
                    FlatEntries::Wide(v) => v[s..e].iter().for_each(|&x| put(x)),
                }
            }
            b
        });
        let conflict = conflict_masks();
        let x = 1u8 << (Mode::Exclusive as u8);
        Some(FlatHeld {
            set_of,
            starts,
            repeats,
            entries,
            conflict,
            bits: set_bits,
            words,
            exclusive,
            exclusive_conflicts_all: ALL_MODES.iter().all(|&m| conflict[m as usize] & x != 0),
        })
    }

    /// [`check_pair`]'s gate rule between dependencies `a` (every hold) and `b` (the oldest
    /// hold of each lock) when the bitsets decide it: no lock in common (no gate), or one in
    /// common while one side holds only exclusively (a gate). `None` otherwise (a lock in common
    /// held in other modes on both sides, or no bitsets): the caller tests the modes.
    ///
    /// The gate tests of the hostile random trace's search were a third of its instructions:
    /// about a hundred marks read per test, and the holds of the list's or the chain's
    /// dependencies marked first; the bitsets of two sets of 3000 locks are 47 words each.
    #[inline]
    fn pair_gate_bits(&self, a: u32, b: u32) -> Option<bool> {
        let bits = self.bits.as_ref()?;
        let ka = *self.set_of.get(a as usize)? as usize;
        let kb = *self.set_of.get(b as usize)? as usize;
        if ka == u32::MAX as usize || kb == u32::MAX as usize {
            return None;
        }
        let w = self.words;
        let len = |k: usize| (self.starts[k + 1] - self.starts[k]) as usize;
        let (la, lb) = (len(ka), len(kb));
        let common = if la.min(lb) * 4 < w {
            // A short set (a few locks of thousands: the balanced random traces hold about
            // three) probes its locks in the other's bitset instead of reading every word of
            // both (47 words each for 3000 locks).
            let (short, other) = if la <= lb { (ka, kb) } else { (kb, ka) };
            let row = &bits[other * w..other * w + w];
            let hit = |code: u32| {
                let l = (code >> 3) as usize;
                row[l / 64] & (1 << (l % 64)) != 0
            };
            let (s, e) = (self.starts[short] as usize, self.starts[short + 1] as usize);
            match &self.entries {
                FlatEntries::Narrow(v) => v[s..e].iter().any(|&x| hit(u32::from(x))),
                FlatEntries::Wide(v) => v[s..e].iter().any(|&x| hit(x)),
            }
        } else {
            let (x, y) = (&bits[ka * w..ka * w + w], &bits[kb * w..kb * w + w]);
            // Eight words at a time, one branch each (the common answer, no lock in common,
            // reads every word).
            let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
            let tail = xc
                .remainder()
                .iter()
                .zip(yc.remainder())
                .fold(0, |acc, (p, q)| acc | (p & q));
            tail != 0
                || xc
                    .zip(yc)
                    .any(|(p, q)| p.iter().zip(q).fold(0, |acc, (p, q)| acc | (p & q)) != 0)
        };
        if !common {
            return Some(false);
        }
        (self.exclusive_conflicts_all && (self.exclusive[ka] || self.exclusive[kb])).then_some(true)
    }

    /// The mode of `d`'s oldest hold of `lock` (`Dep::held_mode`), from its copy: `None` if `d`
    /// has no copy, `Some(None)` if it does not hold `lock`.
    #[inline]
    fn held_mode(&self, d: u32, lock: LockId) -> Option<Option<Mode>> {
        let (_, s) = self.set(d)?;
        let code = match s {
            FlatSlice::Narrow(v) => v
                .binary_search_by_key(&lock, |&x| u32::from(x) >> 3)
                .ok()
                .map(|i| u32::from(v[i])),
            FlatSlice::Wide(v) => v
                .binary_search_by_key(&lock, |&x| x >> 3)
                .ok()
                .map(|i| v[i]),
        };
        Some(code.map(|c| ALL_MODES[(c & 7) as usize]))
    }

    /// The set of dependency `d` and its entries, or `None` if it has none.
    #[inline]
    fn set(&self, d: u32) -> Option<(usize, FlatSlice<'_>)> {
        let k = *self.set_of.get(d as usize)? as usize;
        if k == u32::MAX as usize {
            return None;
        }
        let (s, e) = (self.starts[k] as usize, self.starts[k + 1] as usize);
        Some((
            k,
            match &self.entries {
                FlatEntries::Narrow(v) => FlatSlice::Narrow(&v[s..e]),
                FlatEntries::Wide(v) => FlatSlice::Wide(&v[s..e]),
            },
        ))
    }

    /// Every hold of dependency `d` (`lock << 3 | mode`), if it has a flat copy where each lock
    /// is held once.
    #[inline]
    fn holds(&self, d: u32) -> Option<FlatSlice<'_>> {
        self.set(d)
            .filter(|&(k, _)| !self.repeats[k])
            .map(|(_, s)| s)
    }

    /// [`check_pair`]'s gate rule between dependencies `a` and `b` (a lock that both hold in
    /// modes that exclude each other: every hold of `a`, the oldest of `b`) by one merge of their
    /// sorted copies, or `None` if either has no copy or `a` holds a lock twice (its copy keeps
    /// one hold per lock).
    fn pair_gate(&self, a: u32, b: u32) -> Option<bool> {
        let (ka, sa) = self.set(a)?;
        if self.repeats[ka] {
            return None;
        }
        let (_, sb) = self.set(b)?;
        let conflict = &self.conflict;
        fn merge(x: &[impl Copy + Into<u32>], y: &[impl Copy + Into<u32>], c: &[u8; 5]) -> bool {
            let (mut i, mut j) = (0, 0);
            while i < x.len() && j < y.len() {
                let (p, q): (u32, u32) = (x[i].into(), y[j].into());
                match (p >> 3).cmp(&(q >> 3)) {
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Greater => j += 1,
                    std::cmp::Ordering::Equal => {
                        if c[(q & 7) as usize] & (1 << (p & 7)) != 0 {
                            return true;
                        }
                        i += 1;
                        j += 1;
                    }
                }
            }
            false
        }
        Some(match (sa, sb) {
            (FlatSlice::Narrow(x), FlatSlice::Narrow(y)) => merge(x, y, conflict),
            (FlatSlice::Wide(x), FlatSlice::Wide(y)) => merge(x, y, conflict),
            _ => unreachable!("one copy has one width"),
        })
    }

    /// [`meets_gate`] of dependency `d` from its flat copy, or `None` if it has none.
    #[inline]
    fn gate(&self, marks: &Marks, d: u32) -> Option<bool> {
        let hit = |x: u32| marks.modes[(x >> 3) as usize] & self.conflict[(x & 7) as usize] != 0;
        Some(match self.set(d)?.1 {
            FlatSlice::Narrow(v) => v.iter().any(|&x| hit(u32::from(x))),
            FlatSlice::Wide(v) => v.iter().any(|&x| hit(x)),
        })
    }
}

/// [`meets_gate`] of dependency `di`, from the flat copy when there is one.
#[inline]
fn gate(
    model: &Model,
    flat: Option<&FlatHeld>,
    marks: &Marks,
    conflict: &[u8; 5],
    di: u32,
) -> bool {
    match flat.and_then(|f| f.gate(marks, di)) {
        Some(g) => g,
        None => meets_gate(model, marks, conflict, &model.dep(di)),
    }
}

impl<'a> Successors<'a> {
    /// The successor lists of `graph`'s dependencies, nothing computed yet (`own` from
    /// [`ThreadDeps::with_own_and_state`], `shared` built on it).
    fn new(
        model: &'a Model,
        level: GraphLevel,
        graph: &'a LockGraph,
        own: &'a [u32],
        shared: &'a SharedTables<'a>,
    ) -> Successors<'a> {
        let bitmap = vec![0; shared.threads.dep.len().div_ceil(64)];
        Successors {
            model,
            level,
            graph,
            shared,
            own,
            marks: Marks::new(model.locks.len()),
            epochs: &shared.epochs,
            walks: 0,
            conflict: conflict_masks(),
            bitmap,
            cands: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Builds the flat copy of the held sets once the gate tests have walked the interned tree
    /// as many times as a quarter of the dependencies (building the copy costs about as much
    /// as a walk per dependency: it walks each distinct set once). A search that tests few
    /// gates (a trace with a few root causes: the planted one tests about 14,000 against 1.3M
    /// dependencies) never pays for a copy it would hardly read; one that tests millions (the
    /// hostile trace) builds it early: there the walks before the copy were 78,138 (171M
    /// instructions, 1,900 each, against 285M for the copy), now a quarter of them. Either
    /// way the answers are the same (`the_flat_held_sets_answer_as_the_walks`), but not the
    /// step counts of two shortcuts ([`Plan::flat_first_from`]): a search that may run on two
    /// threads has its copy built before it begins, and never comes here with it missing.
    fn flat_due(&mut self) {
        if self.walks != u64::MAX
            && (self.walks >= self.shared.searched as u64 / 4 || self.shared.flat.get().is_some())
        {
            self.shared.flat.get_or_init(|| FlatHeld::new(self.model));
            self.walks = u64::MAX;
        }
    }

    /// The flat held sets ([`FlatHeld`]), once built ([`Successors::flat_due`]).
    #[inline]
    fn flat(&self) -> Option<&'a FlatHeld> {
        let shared: &'a SharedTables<'a> = self.shared;
        shared.flat.get().and_then(Option::as_ref)
    }

    /// The holders of node `v`, built at the first call for `v` by any thread.
    fn holders(&mut self, v: u32) -> &'a Holders {
        let shared: &'a SharedTables<'a> = self.shared;
        let Some(slot) = shared.holders.get(v as usize) else {
            // A node without edges: no dependency holds it on one.
            return &shared.no_holders;
        };
        if let Some(h) = slot.get() {
            return h;
        }
        let bitmap = &mut self.bitmap;
        slot.get_or_init(|| {
            let base = self.graph.node_deps(v);
            let td = &shared.threads;
            // Sorted by (thread, rank) as one key, a dependency's place in `ThreadDeps`: read
            // from a compact array, not from each dependency's record (a cache miss each on the
            // hostile random trace).
            let mut keyed: Vec<u32> = base
                .iter()
                .map(|&d| td.at[d as usize])
                .filter(|&k| k != u32::MAX)
                .collect();
            sort_distinct(&mut keyed, bitmap);
            let mut ordered = Vec::new();
            let mut ranks: Vec<u32> = Vec::with_capacity(keyed.len());
            let mut rest: Vec<u32> = Vec::new();
            let mut t = 0usize;
            let mut i = 0usize;
            while i < keyed.len() {
                while keyed[i] >= td.start[t + 1] {
                    t += 1;
                }
                let end = td.start[t + 1];
                let n = keyed[i..].partition_point(|&k| k < end);
                let run = &keyed[i..i + n];
                i += n;
                let own = |k: u32| td.own[k as usize];
                let monotone = run.windows(2).all(|w| own(w[0]) <= own(w[1]));
                if monotone && own(run[0]) > 0 {
                    let start = ranks.len() as u32;
                    ranks.extend(run.iter().map(|&k| k - td.start[t]));
                    ordered.push((t as u64, start, ranks.len() as u32));
                } else {
                    rest.extend(run.iter().map(|&k| td.dep[k as usize]));
                }
            }
            drop(keyed);
            let items = if td.narrow {
                Positions::Narrow(ranks.iter().map(|&p| p as u16).collect())
            } else {
                ranks.shrink_to_fit();
                Positions::Wide(ranks)
            };
            rest.shrink_to_fit();
            Box::new(Holders {
                items,
                ordered,
                rest,
            })
        })
    }

    /// The successors of `d0` as `(edge, dependency)`, by edge then dependency (the order of a
    /// scan of the graph).
    fn of(&mut self, d0: u32) -> List<'a> {
        let shared: &'a SharedTables<'a> = self.shared;
        if let Some(r) = shared.memo.get(d0) {
            return List::Kept(r);
        }
        let model = self.model;
        let level = self.level;
        let a = &model.dep(d0);
        let v = node_of(model, level, a.lock());
        self.holders(v);
        self.flat_due();
        // The holders concurrent with d0 (the tests of threads and clocks), in scan order.
        let mut cands = std::mem::take(&mut self.cands);
        self.concurrent(d0, v, &mut cands);
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        if cands.is_empty() {
            // Nothing to test against d0's held set: its holds need not be marked.
            self.cands = cands;
            let r = self.keep(d0, &mut out);
            self.out = out;
            return r;
        }
        // d0's holds are marked for the gate tests that the bitsets leave open (none on the
        // hostile random trace, where every hold is exclusive), at the first such test.
        let marked = std::cell::Cell::new(false);
        let flat = self.flat();
        let marks = std::cell::RefCell::new(&mut self.marks);
        let conflict = &self.conflict;
        let walks = std::cell::Cell::new(0u64);
        // check_pair(a, b) with its cheap tests first and the gate read from the marks.
        // Every candidate holds (an instance of) `v`, so a request that excludes every mode
        // (write, permit) links to it whatever its hold: the mode rule needs no walk of the
        // candidate's held set then.
        let links_any = matches!(a.mode(), Mode::Exclusive | Mode::Permit);
        // Both rules read the candidate's held set and nothing else of it, and a thread that
        // comes back to a held set (after releasing what it took since) makes another
        // dependency with the same interned set: their verdicts are remembered by set (the
        // hostile random trace has 47,012 distinct held sets for 78,135 dependencies).
        // But not the mode rule of a plain read: behind a read hold it asks whether a write can
        // come between the two reads (`write_between`), which reads the candidate's thread and
        // clock too. Cached by held set, the verdict of one holder served another of the same
        // set at another clock: a cycle through T1's read section made after a fork was lost
        // because T1 had made the same section before it (`tests/cli.rs`,
        // a_read_section_repeated_at_another_clock_keeps_its_own_verdict). Tested per
        // candidate then, before the cached gate rule.
        let per_holder = a.mode() == Mode::Shared;
        let seen: std::cell::RefCell<[(u32, bool); RULES_CACHE]> =
            std::cell::RefCell::new([(u32::MAX, false); RULES_CACHE]);
        let rules = |d1: u32, held: u32| {
            if per_holder && !link_ok(model, level, flat, a, d1) {
                return false;
            }
            let slot = held as usize % RULES_CACHE;
            if let Some(&(h, verdict)) = seen.borrow().get(slot) {
                if h == held {
                    return verdict;
                }
            }
            let verdict = (links_any || per_holder || link_ok(model, level, flat, a, d1)) && {
                walks.set(walks.get() + u64::from(flat.is_none()));
                match flat.and_then(|f| f.pair_gate_bits(d0, d1)) {
                    Some(g) => !g,
                    None => {
                        let mut m = marks.borrow_mut();
                        if !marked.replace(true) {
                            m.dep(model, flat, d0, true);
                        }
                        !gate(model, flat, &m, conflict, d1)
                    }
                }
            };
            seen.borrow_mut()[slot] = (held, verdict);
            verdict
        };
        let graph = self.graph;
        // The edge from `v` to what a holder requests (there is one: it is how the holder
        // came to be listed under `v`).
        let edge = |d1: u32| {
            graph
                .find(v, node_of(model, level, model.deps[d1 as usize].lock))
                .expect("a holder of v lies on an edge from v")
        };
        for &(d1, held) in &cands {
            // Another thread, concurrent both ways: the rules of the held sets remain.
            if rules(d1, held) {
                out.push((edge(d1), d1));
            }
        }
        if marked.get() {
            self.marks.dep(model, self.flat(), d0, false);
        }
        self.walks = self.walks.saturating_add(walks.get());
        self.cands = cands;
        let r = self.keep(d0, &mut out);
        self.out = out;
        r
    }

    /// The holders of `v` (built by [`Successors::holders`]) from another thread than `d0`'s
    /// and concurrent with it both ways, in the order of a scan of `v`'s holders, each with its
    /// interned held set, into `cands`: the tests of [`check_pair`] that read no held set.
    fn concurrent(&self, d0: u32, v: u32, cands: &mut Vec<(u32, u32)>) {
        let model = self.model;
        let (own, ep, td) = (&self.own, self.epochs, &self.shared.threads);
        let a = &model.dep(d0);
        let s = a.thread();
        let own0 = own[d0 as usize];
        cands.clear();
        let h = match self.shared.holders.get(v as usize) {
            Some(slot) => slot.get().expect("the holders of v are built first"),
            None => &self.shared.no_holders,
        };
        for &(t, start, end) in &h.ordered {
            if t == s {
                continue;
            }
            let off = td.start[t as usize] as usize;
            let at = |i: usize| off + h.items.get(i);
            // Those that happen before d0 (own epoch known to d0) come first...
            let known = ep.of(a, t);
            let (mut lo, mut hi) = (start as usize, end as usize);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if td.own[at(mid)] <= known {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            for k in (lo..end as usize).map(at) {
                // ...and those that d0 happens before come last.
                if own0 != 0 && own0 <= ep.known_to(td.clock[k], s) {
                    break;
                }
                cands.push((td.dep[k], td.held[k]));
            }
        }
        for &d1 in &h.rest {
            let b = &model.dep(d1);
            let own1 = own[d1 as usize];
            if b.thread() != s
                && !(own0 != 0 && own0 <= ep.of(b, s))
                && !(own1 != 0 && own1 <= ep.of(a, b.thread()))
            {
                cands.push((d1, b.rec().held));
            }
        }
    }

    /// Sorts `out`, the successors of `d0`, and remembers them while the memo has room.
    fn keep(&mut self, d0: u32, out: &mut [(u32, u32)]) -> List<'a> {
        out.sort_unstable();
        let shared: &'a SharedTables<'a> = self.shared;
        shared.memo.insert(d0, Box::from(&*out))
    }
}

/// Depth-first search for valid cycles through one edge `u -> v`: chains of dependencies from
/// pairwise distinct threads that pass every feasibility rule, of one length per round.
struct EdgeSearch<'a, 's> {
    model: &'a Model,
    level: GraphLevel,
    graph: &'a LockGraph,
    succ: &'s mut Successors<'a>,
    /// The edge's tail: the cycle closes when the path comes back here.
    u: u32,
    len: usize,
    path: Vec<u32>,
    /// Whether each node is on `path` (indexed by node; cleared after each search).
    on_path: Vec<bool>,
    chain: Vec<u32>,
    /// The holds of the dependencies of `chain`: a candidate meets a gate lock of the chain in
    /// one pass over its own held set.
    marks: Marks,
    /// Own epoch of each dependency (`clock.get(thread)`), by dependency index.
    own: &'s [u32],
    /// Whether some valid chain of `len - 1` dependencies was built in this round: if not, no
    /// chain is long enough for any longer cycle either, and the search is over.
    deep: bool,
    steps: u64,
    budget: u64,
    stopped: bool,
    /// The steps the rest of a round may take once its first cycle is found
    /// ([`EdgeSearch::record`] lowers `budget` to it; `u64::MAX`: no such bound). The edge is a
    /// root cause from then on, and what the round still does only counts cycles: a ring of
    /// 20 locks whose edges were each taken by 2,000 threads closed its first cycle in 20 steps
    /// and then counted combinations (2,000 per lock of the ring) up to `--max-steps`, 27 s.
    find_budget: u64,
    /// `steps` when the round found its first cycle.
    found_at: u64,
    /// Valid cycles found: sorted node set -> candidate.
    found: HashMap<Vec<u32>, Candidate>,
    order: Vec<Vec<u32>>,
    max_found: u64,
    /// How many of the chain's first dependencies have their holds in `marks`. The holds of a
    /// chain dependency are read only by the gate tests of [`EdgeSearch::fits_rest`], once it
    /// is no longer the last of the chain and a candidate has passed the tests of threads and
    /// clocks against it, so they are added then, not at each extension: most extensions of a
    /// hostile trace's searches never get there (the new last dependency has no successor, or
    /// none concurrent with the rest), and each dependency's holds (hundreds of locks) were added
    /// and removed for nothing (a seventh of the instructions on the 20k-event random trace).
    marked: usize,
    /// [`EdgeSearch::fits_rest`]'s verdicts by pair of dependencies ([`FitsCache`]).
    fits: FitsCache,
    /// Exploration mode ([`EdgeSearch::closers_of`]): no target and no length, every valid
    /// chain from the first dependency, collecting the nodes where one could close.
    explore: bool,
    closers: Vec<u32>,
    /// Scratch of [`EdgeSearch::closers_of`]: per node, [`OPEN`] for a node of the first
    /// dependency's held set where no chain has closed yet (0 elsewhere; cleared after each
    /// exploration), and how many such nodes are left; the exploration ends when none is (no
    /// chain can close anywhere else).
    open: Vec<u8>,
    open_left: usize,
    /// The held nodes of the exploration's first dependency (those marked in `open`), listed
    /// at its first closer (`None` before).
    open_nodes: Option<Vec<u32>>,
    /// Whether every held node of the first dependency closed a chain, or can close none
    /// ([`EdgeSearch::check_open`]): the exploration is over.
    covered: bool,
    /// Whether the exploration under way has run [`EdgeSearch::check_open`], and the step
    /// count at which it began.
    open_checked: bool,
    explore_from: u64,
    /// Whether the explorations take their shortcuts (the 2-cycles first, the end once every
    /// held node is decided, [`EdgeSearch::check_open`]); off, they follow every valid chain
    /// (the tests compare both), and the steps after which [`EdgeSearch::check_open`] runs.
    shortcuts: bool,
    open_check_after: u64,
    /// [`LONG_CHAIN`] (the tests lower it).
    long_chain: usize,
    /// Explorations ended by their shortcuts (every held node decided), for `LOCKCHECK_PHASES`.
    explore_covered: usize,
    /// The blocking dependencies by the node they request (where each node's run begins, one
    /// more entry at the end; the runs), built at the first [`EdgeSearch::check_open`].
    requests: Option<(Vec<u32>, Vec<u32>)>,
    /// Scratch of [`EdgeSearch::relaxed_closers`]: per dependency, the number of the pass that
    /// last reached it (allocated at the first pass; no clearing between passes).
    seen: Vec<u32>,
    /// The number of the current [`EdgeSearch::relaxed_closers`] pass.
    pass: u32,
    /// Scratch of [`EdgeSearch::relaxed_closers`]: the dependencies reached, not expanded yet.
    queue: Vec<u32>,
    /// Whether the rounds cut the chains by [`EdgeSearch::bound`] (until the shortest cycle is
    /// found: the further examples are searched as before).
    prune: bool,
    /// Per dependency, [`EdgeSearch::bounds`]' lower bound of the dependencies that a chain
    /// through it needs after it (the closing one included) to come back to `u`, valid where
    /// `bound_at` holds the current `bound_pass`.
    bound_of: Vec<u32>,
    bound_at: Vec<u32>,
    bound_pass: u32,
    /// The step at which a round's depth-first search unwinds (`stopped` with `interrupted`)
    /// so that [`find_root_causes_on`] runs the first passes, the bounds or a [`repass`] it
    /// waits for and searches the dependency again, cut; `u64::MAX`: never. Those run between two first
    /// dependencies of a round, and one dependency's round can be the whole search: an edge
    /// taken once, whose head is nested among hundreds of locks taken by thousands of threads,
    /// went from 5,000 steps in its round of 4 locks to `--max-steps` in the next without a
    /// first pass, bound or distance ever applied.
    interrupt_at: u64,
    /// Whether the search unwound at `interrupt_at` (not at its budget).
    interrupted: bool,
    /// Successor entries one [`EdgeSearch::reach`] may read ([`MAX_FIRST_PASS`], more when a
    /// long search runs its passes again: [`repass`]), and one [`EdgeSearch::pair_closers`]
    /// ([`MAX_PAIR_PASS`], likewise); what the last of them read, in `last_read`.
    pass_budget: usize,
    pair_budget: usize,
    last_read: usize,
    /// Successor entries read by every pass so far (a re-pass's work is the difference).
    pass_read: u64,
    /// Whether the rounds cut the chains by [`EdgeSearch::node_dist`], where
    /// [`EdgeSearch::bounds`] stopped past its bound (the graph's own distances: weaker, but
    /// always at hand).
    node_prune: bool,
    /// Per node, the fewest edges of the lock graph from it back to `u` without passing
    /// through the edge's head `v` (`u32::MAX`: none), a lower bound of the dependencies a
    /// chain reaching it still needs (the closing one included); `v`'s own entry is one more
    /// than its nearest successor's. Made by [`EdgeSearch::node_distances`] for the edge
    /// `node_dist_for`.
    node_dist: Vec<u32>,
    node_dist_for: (u32, u32),
    /// Scratch of [`EdgeSearch::pair_closers`]: the states `(a, b)` (as `a << 32 | b`) reached,
    /// and those not expanded yet.
    pairs_seen: std::collections::HashSet<u64, foldhash::fast::RandomState>,
    pairs_queue: Vec<(u32, u32)>,
    /// Scratch of [`EdgeSearch::bounds`]: the links `(to, from)` of the first pass's region.
    links: Vec<(u32, u32)>,
    /// [`EdgeSearch::edge_to_u`]'s answers for `to_u_for`: per node, the generation
    /// (`to_u_gen`) in which its edge was looked up, and that edge (`u32::MAX`: none).
    to_u_for: u32,
    to_u_gen: u32,
    to_u_stamp: Vec<u32>,
    to_u_edge: Vec<u32>,
}

impl<'a, 's> EdgeSearch<'a, 's> {
    /// A search over `graph` (of `level`) with the successor lists `succ` and the own epochs
    /// `own`, nothing searched yet, with a budget of `budget` steps.
    fn new(
        model: &'a Model,
        level: GraphLevel,
        graph: &'a LockGraph,
        succ: &'s mut Successors<'a>,
        own: &'s [u32],
        budget: u64,
    ) -> EdgeSearch<'a, 's> {
        EdgeSearch {
            model,
            level,
            graph,
            succ,
            u: 0,
            len: 2,
            path: Vec::new(),
            on_path: vec![false; graph.nodes()],
            chain: Vec::new(),
            marks: Marks::new(model.locks.len()),
            own,
            deep: false,
            steps: 0,
            budget,
            stopped: false,
            find_budget: u64::MAX,
            found_at: 0,
            found: HashMap::new(),
            order: Vec::new(),
            max_found: u64::MAX,
            marked: 0,
            fits: FitsCache::new(),
            explore: false,
            closers: Vec::new(),
            open: Vec::new(),
            open_left: 0,
            open_nodes: None,
            covered: false,
            open_checked: false,
            explore_from: 0,
            shortcuts: true,
            open_check_after: OPEN_CHECK_AFTER,
            long_chain: LONG_CHAIN,
            explore_covered: 0,
            requests: None,
            seen: Vec::new(),
            pass: 0,
            queue: Vec::new(),
            prune: false,
            bound_of: Vec::new(),
            bound_at: Vec::new(),
            bound_pass: 0,
            node_prune: false,
            interrupt_at: u64::MAX,
            interrupted: false,
            pass_budget: MAX_FIRST_PASS,
            pair_budget: MAX_PAIR_PASS,
            last_read: 0,
            pass_read: 0,
            node_dist: Vec::new(),
            node_dist_for: (u32::MAX, u32::MAX),
            pairs_seen: Default::default(),
            pairs_queue: Vec::new(),
            links: Vec::new(),
            to_u_for: u32::MAX,
            to_u_gen: 0,
            to_u_stamp: Vec::new(),
            to_u_edge: Vec::new(),
        }
    }
}

/// Slots of [`FitsCache`]: `2^FITS_CACHE_BITS` (1 MiB of keys, allocated at the first verdict
/// kept).
const FITS_CACHE_BITS: u32 = 17;

/// The verdicts of [`EdgeSearch::fits_rest`]'s test of one pair (a dependency of the chain, the
/// candidate): other threads, not ordered by fork/join either way, and no gate by
/// [`FlatHeld::pair_gate_bits`]. It depends on the two dependencies alone, and the searches of
/// the hostile random trace repeat it: 2.7M tests of 363,000 distinct pairs (the explorations of
/// the dependencies that share a successor reach the same chains again), each reading two
/// bitsets of 47 words. One slot per hash of the pair, the last verdict of that slot kept (a
/// miss computes it again: the answers are the same either way); the pairs that the bitsets
/// leave open (`None`) are not kept.
struct FitsCache {
    /// `a << 32 | b` per slot, `u64::MAX` when empty.
    keys: Vec<u64>,
    /// The verdict of each slot's pair, one bit per slot.
    fits: Vec<u64>,
}

impl FitsCache {
    fn new() -> FitsCache {
        FitsCache {
            keys: Vec::new(),
            fits: Vec::new(),
        }
    }

    #[inline]
    fn slot(key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - FITS_CACHE_BITS)) as usize
    }

    /// The verdict kept for the pair `key`, if any.
    #[inline]
    fn get(&self, key: u64) -> Option<bool> {
        let i = Self::slot(key);
        (self.keys.get(i) == Some(&key)).then(|| self.fits[i / 64] & (1 << (i % 64)) != 0)
    }

    #[inline]
    fn put(&mut self, key: u64, fits: bool) {
        if self.keys.is_empty() {
            self.keys = vec![u64::MAX; 1 << FITS_CACHE_BITS];
            self.fits = vec![0; (1 << FITS_CACHE_BITS) / 64];
        }
        let i = Self::slot(key);
        self.keys[i] = key;
        let bit = 1u64 << (i % 64);
        if fits {
            self.fits[i / 64] |= bit;
        } else {
            self.fits[i / 64] &= !bit;
        }
    }
}

impl<'a> EdgeSearch<'a, '_> {
    /// Makes the search as new for the edge from `u` with a budget of `budget` steps: what a
    /// search left behind (its found cycles, its counts) is cleared, its buffers kept. `on_path`
    /// and the marks are clear already (every search clears what it set).
    fn reset(&mut self, u: u32, budget: u64) {
        self.u = u;
        self.len = 2;
        self.path.clear();
        self.chain.clear();
        self.deep = false;
        self.steps = 0;
        self.budget = budget;
        self.stopped = false;
        self.find_budget = u64::MAX;
        self.found_at = 0;
        if !self.found.is_empty() {
            // A table cleared when empty would still write every control byte of its capacity.
            self.found.clear();
        }
        self.order.clear();
        self.max_found = u64::MAX;
        self.marked = 0;
        self.prune = false;
        self.node_prune = false;
        self.interrupt_at = u64::MAX;
        self.interrupted = false;
        self.explore = false;
        self.closers.clear();
    }

    /// The nodes `u` through which a valid cycle `u -> v -> ... -> u` starting with `d0`
    /// could close, sorted, or `None` if the exploration stopped at its budget. Every valid
    /// chain from `d0` is followed once, whatever `u`, so the searches of all the edges `d0`
    /// lies on (as many as the locks it held) share one exploration; a node missing from the
    /// result closes no valid cycle through `d0`, and its edge's search skips `d0`. Exact
    /// (it applies every test of the full search), but exponential in the worst case: where
    /// it stops, [`EdgeSearch::relaxed_closers`] (polynomial) decides instead.
    ///
    /// A chain closes only at a node that `d0` holds (the closing dependency requests a lock
    /// that `d0` holds, [`link_ok`]), so the exploration ends as soon as every such node has
    /// closed a chain: the chains closing at `d0`'s own successors (the 2-cycles) are looked at
    /// first, and the depth-first search stops once nothing is left to find. The result is
    /// the same as the full exploration's; where the full one would have stopped at its
    /// budget (`None`), the list holds every node of `d0`'s edges, which keeps `d0` in the same
    /// searches ([`first_pass_keeps`]). On a dense trace (64 threads, 300 locks, nesting
    /// up to 4) every exploration stopped at its budget: 49M of the level's 50M steps.
    fn closers_of(&mut self, d0: u32, budget: u64) -> Option<Vec<u32>> {
        let v = node_of(self.model, self.level, self.dep(d0).lock());
        self.explore = true;
        self.interrupt_at = u64::MAX;
        self.u = u32::MAX;
        self.len = usize::MAX;
        self.budget = self.steps + budget;
        self.stopped = false;
        self.covered = false;
        self.open_checked = false;
        self.explore_from = self.steps;
        self.closers.clear();
        // The 2-cycles first (no step counted: the search below counts its own as before).
        let list = if self.shortcuts {
            self.succ.of(d0)
        } else {
            List::Kept(&[])
        };
        for &(e, d1) in list.iter() {
            let y = self.graph.target(e);
            if y != v && self.link_ok(&self.dep(d1), d0) {
                self.closed_at(d0, v, y);
                if self.covered {
                    break;
                }
            }
        }
        if !self.covered {
            self.path.clear();
            self.path.push(v);
            self.on_path[v as usize] = true;
            self.chain.clear();
            self.chain.push(d0);
            self.dfs();
            self.unmark_root();
            self.on_path[v as usize] = false;
        }
        self.explore = false;
        if let Some(nodes) = self.open_nodes.take() {
            for &n in &nodes {
                self.open[n as usize] = 0;
            }
        }
        let covered = std::mem::replace(&mut self.covered, false);
        self.explore_covered += usize::from(covered);
        if self.stopped && !covered {
            return None;
        }
        self.stopped = false;
        let mut c = std::mem::take(&mut self.closers);
        c.sort_unstable();
        c.dedup();
        Some(c)
    }

    /// Notes that a chain of the exploration from `d0` (which requests `v`) closes at `y`; sets
    /// `covered` once every node `d0` holds has.
    fn closed_at(&mut self, d0: u32, v: u32, y: u32) {
        self.closers.push(y);
        if !self.shortcuts {
            return;
        }
        self.open_init(d0, v);
        if let Some(o) = self.open.get_mut(y as usize) {
            if *o == OPEN {
                *o = CLOSED;
                self.open_left -= 1;
                if self.open_left == 0 {
                    self.covered = true;
                }
            }
        }
    }

    /// Lists the nodes that the exploration from `d0` (which requests `v`) may close at, in
    /// `open` and `open_nodes`, unless they are listed.
    fn open_init(&mut self, d0: u32, v: u32) {
        if self.open_nodes.is_none() {
            // The nodes `d0` holds, but `v` (no chain of the exploration closes there).
            if self.open.is_empty() {
                self.open = vec![0; self.graph.nodes()];
            }
            let (model, level) = (self.model, self.level);
            let mut nodes = Vec::new();
            for (l, _) in model.held_sets.rev_iter(model.deps[d0 as usize].held) {
                let n = node_of(model, level, l);
                if n != v && (n as usize) < self.open.len() && self.open[n as usize] == 0 {
                    self.open[n as usize] = OPEN;
                    nodes.push(n);
                }
            }
            self.open_left = nodes.len();
            // Closers found before the list was made: none (it is made at the first).
            self.open_nodes = Some(nodes);
        }
    }

    /// For a long exploration ([`OPEN_CHECK_AFTER`] steps): drops from the open nodes those
    /// where no chain from `d0` can close, as no blocking dependency that requests the node
    /// passes the pair tests against `d0` that [`EdgeSearch::fits_root`] decides without
    /// marks (threads, fork/join order, the gate by the bitsets) and links back to `d0`
    /// (the last dependency of a valid chain does: see [`EdgeSearch::relaxed_closers`]). Sets
    /// `covered` when no open node is left.
    fn check_open(&mut self) {
        let (d0, v) = (self.chain[0], self.path[0]);
        self.open_init(d0, v);
        if self.requests.is_none() {
            let (model, level) = (self.model, self.level);
            let mut start = vec![0u32; self.graph.nodes() + 1];
            // Those left out ([`crate::twins`]) are in no successor list: they could never be
            // found to close a chain, and would leave their nodes undecided.
            let left_out = &self.succ.shared.left_out;
            let blocking = |i: usize| {
                model.deps[i].how == lockcheck_core::trace::How::Blocking
                    && !left_out.get(i).copied().unwrap_or(false)
            };
            for (i, r) in model.deps.iter().enumerate() {
                let n = node_of(model, level, r.lock) as usize;
                if blocking(i) && n < self.graph.nodes() {
                    start[n + 1] += 1;
                }
            }
            for n in 0..self.graph.nodes() {
                start[n + 1] += start[n];
            }
            let mut next = start.clone();
            let mut list = vec![0u32; start[self.graph.nodes()] as usize];
            for (i, r) in model.deps.iter().enumerate() {
                let n = node_of(model, level, r.lock) as usize;
                if blocking(i) && n < self.graph.nodes() {
                    list[next[n] as usize] = i as u32;
                    next[n] += 1;
                }
            }
            self.requests = Some((start, list));
        }
        let nodes = self.open_nodes.take().unwrap_or_default();
        for &n in &nodes {
            if self.open[n as usize] == OPEN && self.can_close(d0, v, n).is_some() {
                self.open[n as usize] = CLOSED;
                self.open_left -= 1;
            }
        }
        self.open_nodes = Some(nodes);
        if self.open_left == 0 {
            self.covered = true;
        }
    }

    /// Whether some blocking dependency that requests node `a` could close a chain from `d0`
    /// there: [`EdgeSearch::check_open`]'s test.
    ///
    /// Where some can, it looks for a chain of three that closes there (`d0`, a successor `d1`
    /// of `d0` requesting a node `x` that the closing dependency `dk` holds, `dk` a successor
    /// of `d1`), by the tests of the depth-first exploration, and marks the node closed if one
    /// does: `Some(true)`. `Some(false)`: none can close there; `None`: not known.
    fn can_close(&mut self, d0: u32, v: u32, a: u32) -> Option<bool> {
        let (start, list) = self.requests.take()?;
        let run = &list[start[a as usize] as usize..start[a as usize + 1] as usize];
        let c = self.dep(d0);
        let own_c = self.own[d0 as usize];
        let mut any = false;
        let mut closes = false;
        let first = self.succ.of(d0);
        'dk: for &dk in run {
            let d = self.dep(dk);
            let own_d = self.own[dk as usize];
            let ep = self.succ.epochs;
            let flat = self.succ.flat();
            if ep.same_or_ordered(&c, own_c, &d, own_d) {
                continue;
            }
            let gate = flat.and_then(|f| f.pair_gate_bits(d0, dk));
            if gate == Some(true) || !link_ok(self.model, self.level, flat, &d, d0) {
                continue;
            }
            any = true;
            if gate.is_none() {
                // The chain's test of `dk` against `d0` would read the marks: not tried here.
                continue;
            }
            // A chain d0, d1, dk: d1 on the edge v -> x from d0's list, dk in d1's list.
            let held: Vec<u32> = self
                .model
                .held_sets
                .rev_iter(d.rec().held)
                .map(|(l, _)| node_of(self.model, self.level, l))
                .collect();
            for x in held {
                if x == v || x == a {
                    continue;
                }
                let (Some(e1), Some(e2)) = (self.graph.find(v, x), self.graph.find(x, a)) else {
                    continue;
                };
                let lo = first.partition_point(|&(e, _)| e < e1);
                let hi = first.partition_point(|&(e, _)| e <= e1);
                for &(_, d1) in &first[lo..hi] {
                    if self.succ.of(d1).binary_search(&(e2, dk)).is_ok() {
                        closes = true;
                        break 'dk;
                    }
                }
            }
        }
        self.requests = Some((start, list));
        if closes {
            self.closers.push(a);
            return Some(true);
        }
        if any {
            None
        } else {
            Some(false)
        }
    }

    /// Whether `di` can stand in one chain with `d0` as its first dependency: the part of
    /// [`EdgeSearch::fits_rest`] that tests the pair `(d0, di)` (threads, fork/join order, then
    /// the gate by the bitsets or else by `d0`'s marks), the same tests in the same order, so
    /// that it rejects a pair only where `fits_rest` would. `self.marks` holds `d0`'s holds
    /// once `*marked` is set (and nothing else: no chain is being searched).
    fn fits_root(&mut self, d0: u32, di: u32, marked: &mut bool) -> bool {
        let bits = self.succ.flat().filter(|f| f.bits.is_some());
        let key = u64::from(d0) << 32 | u64::from(di);
        if bits.is_some() {
            if let Some(fits) = self.fits.get(key) {
                return fits;
            }
        }
        let (c, d) = (self.dep(d0), self.dep(di));
        let (own_c, own_d) = (self.own[d0 as usize], self.own[di as usize]);
        let ep = self.succ.epochs;
        if ep.same_or_ordered(&c, own_c, &d, own_d) {
            if bits.is_some() {
                self.fits.put(key, false);
            }
            return false;
        }
        if let Some(gate) = bits.and_then(|f| f.pair_gate_bits(d0, di)) {
            self.fits.put(key, !gate);
            return !gate;
        }
        if !*marked {
            *marked = true;
            self.mark(d0, true);
        }
        !gate(
            self.model,
            self.succ.flat(),
            &self.marks,
            &self.succ.conflict,
            di,
        )
    }

    /// The first pass of the search through the edges `d0` lies on, polynomial: the nodes
    /// `u` through which a cycle `u -> v -> ... -> u` starting with `d0` passes every test of
    /// a *pair* of dependencies that the full search applies, sorted. A node missing from it
    /// closes no valid cycle through `d0` (the full search would find none there), so an edge
    /// `u -> v` none of whose dependencies has `u` here needs no search at all.
    ///
    /// It is a reachability search over the successor lists ([`Successors::of`]: the pair
    /// tests of two adjacent dependencies of a chain), through the dependencies that fit `d0`
    /// ([`EdgeSearch::fits_root`]), each reached dependency expanded once: a dependency `dk`
    /// listed as a successor of a reached one (or of `d0`) whose request links back to `d0`
    /// (`link_ok(dk, d0)`) closes the cycle at the node it requests.
    ///
    /// Why it never misses a cycle that the full search ([`EdgeSearch::dfs`] and
    /// [`EdgeSearch::close`]) finds: take a valid cycle through `u -> v`, its chain `d0, d1, ...,
    /// dk`. Each `d(i+1)`, `i < k - 1`, is taken from the successor list of `d(i)` (`dfs`), the
    /// last one `dk` from the edge back to `u` by `close`, whose tests (blocking, the link
    /// from `d(k-1)`, [`compatible`]) are those of the successor list of `d(k-1)` (the holders
    /// of the node `d(k-1)` requests: `dk` holds it). Every `di`, `i >= 1`, passed `fits_rest`
    /// against a chain that holds `d0`, hence `fits_root(d0, di)`, or is a successor of `d0`
    /// (`fits_rest` tests nothing else then). By induction every `di`, `i < k`, is reached and
    /// expanded: `d1` is a successor of `d0`; `d(i+1)` is a successor of a reached `di` and
    /// fits `d0` (its first sight may come from another dependency, but the test reads the
    /// pair `(d0, d(i+1))` only, except for `d0`'s own successors, which are seen first, as
    /// `d0` is expanded first, and kept untested). `dk` is a successor of `d(k-1)`, fits `d0`
    /// and `close` tested `link_ok(dk, d0)`: `u`, the node `dk` requests, is listed. What the
    /// pass leaves out: that the nodes are distinct, that the threads are pairwise distinct
    /// and the pairs of dependencies other than `(d0, di)` and `(di, d(i+1))`. The property test
    /// `the_first_pass_never_misses_a_cycle_of_the_full_search` checks it on small random
    /// traces.
    ///
    /// Worst case: every blocking dependency reached, each of its successor lists read once
    /// with one pair test per entry: `O(S)` pair tests for `S` successor entries in all (at
    /// most the dependencies squared), per dependency searched, so `O(D * S)` for the `D`
    /// dependencies that lie on changed edges, memoized per dependency; bounded in practice by
    /// [`MAX_FIRST_PASS`] entries per dependency (beyond, `None`: the dependency is kept
    /// everywhere, as without the pass).
    fn relaxed_closers(&mut self, d0: u32) -> Option<Vec<u32>> {
        let mut closers = self.reach(d0, None)?;
        closers.sort_unstable();
        closers.dedup();
        Some(closers)
    }

    /// Whether `c` can stand in one chain with `a` by the pair tests that
    /// [`EdgeSearch::fits_rest`] applies to them and decides without marks: other threads,
    /// not ordered by fork/join either way, no gate by [`FlatHeld::pair_gate_bits`]. Where the
    /// bitsets leave the gate open, `true` (a relaxation may accept more, never less).
    fn fits_pair(&mut self, a: u32, c: u32) -> bool {
        let bits = self.succ.flat().filter(|f| f.bits.is_some());
        let key = u64::from(a) << 32 | u64::from(c);
        if bits.is_some() {
            if let Some(fits) = self.fits.get(key) {
                return fits;
            }
        }
        let (x, y) = (self.dep(a), self.dep(c));
        let (own_x, own_y) = (self.own[a as usize], self.own[c as usize]);
        let ep = self.succ.epochs;
        if ep.same_or_ordered(&x, own_x, &y, own_y) {
            if bits.is_some() {
                self.fits.put(key, false);
            }
            return false;
        }
        match bits.and_then(|f| f.pair_gate_bits(a, c)) {
            Some(gate) => {
                self.fits.put(key, !gate);
                !gate
            }
            None => true,
        }
    }

    /// The second first pass, stronger than [`EdgeSearch::relaxed_closers`] and still
    /// polynomial: the nodes where a cycle starting with `d0` closes when every dependency of
    /// the chain must also pass the pair tests against the chain's *second* dependency `d1`
    /// (not only against `d0` and its neighbours), the last one included (the cycle's pair
    /// `(dk, d1)`). Sorted; `None` past [`MAX_PAIR_PASS`] successor entries read.
    ///
    /// A reachability search over states `(f, b)`: `f` a successor of `d0` (the chain's `d1`),
    /// `b` the chain's last dependency. From `(f, b)`, every successor `c` of `b`
    /// ([`Successors::of`]) that fits `d0` ([`EdgeSearch::fits_root`]) and fits `f`
    /// ([`EdgeSearch::fits_pair`]; not tested when `b == f`: the successor list of `f` tested
    /// that pair) leads to `(f, c)`, and closes the cycle at the node `c` requests where `c`
    /// links back to `d0` (`link_ok(c, d0)`). What `(f, c)` leads to reads `f`, `c` and `d0`
    /// only, so each state is expanded once.
    ///
    /// Why it never misses a cycle that the full search finds: for a valid cycle's chain `d0,
    /// d1, ..., dk`, as in [`EdgeSearch::relaxed_closers`]' proof every `d(i+1)` is a successor
    /// of `di` (`dfs`, and `close` for `dk`). Every `di`, `i >= 2`, passed `fits_rest` against a
    /// chain that holds `d0` and `d1`, which rejects it where the thread or fork/join tests or
    /// a gate fail for either pair (the gate by the bitsets where they decide it, else by the
    /// marks of the chain, which then hold `d0`'s and `d1`'s holds): `fits_root(d0, di)` makes
    /// the same tests for `d0` (a gate the bitsets leave open decided by `d0`'s marks), and
    /// `fits_pair(d1, di)` the same tests where the bitsets decide the gate (else it accepts).
    /// By induction `(d1, di)` is reached for every `1 <= i <= k` (`(d1, d1)` is a start), and
    /// `close` tested `link_ok(dk, d0)`: the node `dk` requests, `u`, is listed. What it leaves
    /// out: distinct nodes and threads beyond `d0` and `d1`, and the pairs of two dependencies
    /// after `d1` that are not adjacent. The property test
    /// `the_first_pass_never_misses_a_cycle_of_the_full_search` checks it with the other pass.
    ///
    /// Worst case: at most one state per (successor `f` of `d0`, dependency), each expanded
    /// once with one read of a successor list: `O(F * S)` pair tests for `F` successors of
    /// `d0` and `S` successor entries, per dependency passed; bounded by [`MAX_PAIR_PASS`]
    /// entries read.
    fn pair_closers(&mut self, d0: u32) -> Option<Vec<u32>> {
        let graph = self.graph;
        let key = |f: u32, b: u32| u64::from(f) << 32 | u64::from(b);
        let mut closers = Vec::new();
        let mut marked = false;
        let mut seen = std::mem::take(&mut self.pairs_seen);
        let mut queue = std::mem::take(&mut self.pairs_queue);
        seen.clear();
        queue.clear();
        let list = self.succ.of(d0);
        let mut read = list.len();
        let budget = self.pair_budget;
        for &(e, d1) in list.iter() {
            if self.link_ok(&self.dep(d1), d0) {
                closers.push(graph.target(e));
            }
            if seen.insert(key(d1, d1)) {
                queue.push((d1, d1));
            }
        }
        while let Some((f, b)) = queue.pop() {
            let list = self.succ.of(b);
            read += list.len();
            if read > budget {
                break;
            }
            for &(e, c) in list.iter() {
                if seen.contains(&key(f, c)) {
                    // Reached before: its tests and what follows read `f`, `c` and `d0` only.
                    continue;
                }
                if !self.fits_root(d0, c, &mut marked) || (b != f && !self.fits_pair(f, c)) {
                    continue;
                }
                if self.link_ok(&self.dep(c), d0) {
                    closers.push(graph.target(e));
                }
                seen.insert(key(f, c));
                queue.push((f, c));
            }
        }
        if marked {
            self.mark(d0, false);
        }
        self.pairs_seen = seen;
        self.pairs_queue = queue;
        self.last_read = read;
        self.pass_read += read as u64;
        if read > budget {
            return None;
        }
        closers.sort_unstable();
        closers.dedup();
        Some(closers)
    }

    /// A new number for `seen`: every dependency counts as not reached by it.
    fn next_pass(&mut self) -> u32 {
        if self.seen.is_empty() {
            self.seen = vec![0; self.model.deps.len()];
        }
        if self.pass >= u32::MAX - 1 {
            self.seen.fill(0);
            self.pass = 0;
        }
        self.pass += 2;
        self.pass
    }

    /// The reachability search of [`EdgeSearch::relaxed_closers`] from `d0`: the nodes where
    /// a cycle closes, unsorted, or `None` past [`MAX_FIRST_PASS`] successor entries read. With `to` set, it also keeps in `links` every link
    /// `(dk, w)` of the region (`dk` a successor of `w`, both reached, `dk` fitting `d0`),
    /// and `(w, u32::MAX)` for every `w` with a successor that closes the cycle at `to`.
    fn reach(&mut self, d0: u32, to: Option<u32>) -> Option<Vec<u32>> {
        // `seen[d] == pass`: reached and kept; `pass + 1`: tested, does not fit `d0`.
        let pass = self.next_pass();
        let graph = self.graph;
        let mut closers = Vec::new();
        let mut marked = false;
        let mut queue = std::mem::take(&mut self.queue);
        queue.clear();
        queue.push(d0);
        self.seen[d0 as usize] = pass;
        let mut read = 0usize;
        let budget = self.pass_budget;
        while let Some(w) = queue.pop() {
            let list = self.succ.of(w);
            read += list.len();
            if read > budget {
                break;
            }
            let mut closes = false;
            for &(e, dk) in list.iter() {
                let at = self.seen[dk as usize];
                if at == pass + 1 {
                    continue;
                }
                if at == pass {
                    // Reached before: its tests are the same from here (they read `(d0, dk)`).
                    if to.is_some() && dk != d0 {
                        self.links.push((dk, w));
                        if Some(graph.target(e)) == to && self.link_ok(&self.dep(dk), d0) {
                            closes = true;
                        }
                    }
                    continue;
                }
                if w != d0 && !self.fits_root(d0, dk, &mut marked) {
                    self.seen[dk as usize] = pass + 1;
                    continue;
                }
                self.seen[dk as usize] = pass;
                let d = self.dep(dk);
                if self.link_ok(&d, d0) {
                    closers.push(graph.target(e));
                    if Some(graph.target(e)) == to {
                        closes = true;
                    }
                }
                if to.is_some() {
                    self.links.push((dk, w));
                }
                queue.push(dk);
            }
            if closes {
                self.links.push((w, u32::MAX));
            }
        }
        if marked {
            self.mark(d0, false);
        }
        self.queue = queue;
        self.last_read = read;
        self.pass_read += read as u64;
        (read <= budget).then_some(closers)
    }

    /// For the search of the edge from `self.u` with the first dependencies `d0s`: per
    /// dependency `d` of the first pass's regions, the fewest dependencies after `d` (the one
    /// that closes the cycle included) on a path of that pass from `d` back to `u`, the least
    /// over the `d0s` ([`EdgeSearch::bound`]). A chain of the full search is such a path (see
    /// [`EdgeSearch::relaxed_closers`]), so a chain of `depth` dependencies ending with `d`
    /// closes a cycle of `len` only if `depth + bound(d) <= len`: the rounds cut the others.
    /// Per first dependency a search of its region forward and one backward from where
    /// it closes (breadth-first: the fewest dependencies), `O(S log S)` for the `S` links of
    /// the region.
    fn bounds(&mut self, d0s: &[u32]) -> bool {
        if self.bound_of.is_empty() {
            self.bound_of = vec![u32::MAX; self.model.deps.len()];
            self.bound_at = vec![0; self.model.deps.len()];
        }
        if self.bound_pass == u32::MAX {
            self.bound_at.fill(0);
            self.bound_pass = 0;
        }
        self.bound_pass += 1;
        let bp = self.bound_pass;
        let to = self.u;
        for &d0 in d0s {
            self.links.clear();
            if self.reach(d0, Some(to)).is_none() {
                // Past its bound: no bounds for this edge (the rounds cut nothing).
                self.links.clear();
                return false;
            }
            let mut links = std::mem::take(&mut self.links);
            // By the later dependency of each link: the links into `x` are one run.
            links.sort_unstable();
            let pass = self.next_pass();
            let mut layer: Vec<u32> = Vec::new();
            for &(w, x) in &links {
                if x == u32::MAX && self.seen[w as usize] != pass {
                    self.seen[w as usize] = pass;
                    layer.push(w);
                }
            }
            let mut h = 1u32;
            let mut next: Vec<u32> = Vec::new();
            while !layer.is_empty() {
                for &x in &layer {
                    let i = x as usize;
                    if self.bound_at[i] != bp || self.bound_of[i] > h {
                        self.bound_at[i] = bp;
                        self.bound_of[i] = h;
                    }
                    let lo = links.partition_point(|&(a, _)| a < x);
                    for &(a, w) in &links[lo..] {
                        if a != x {
                            break;
                        }
                        if w != u32::MAX && self.seen[w as usize] != pass {
                            self.seen[w as usize] = pass;
                            next.push(w);
                        }
                    }
                }
                std::mem::swap(&mut layer, &mut next);
                next.clear();
                h = h.saturating_add(1);
            }
            links.clear();
            self.links = links;
        }
        true
    }

    /// [`EdgeSearch::node_dist`] for the edge `u -> v` of the current `u`: a breadth-first
    /// search of the lock graph backward from `u`, `O(nodes + edges)` per level, once per edge
    /// whose search is long and whose [`EdgeSearch::bounds`] stopped. Where an edge is taken by
    /// thousands of threads (a cycle of 7 locks over 10,000 threads, each taking a pair), every
    /// dependency's first pass is past its bound, and without a bound the rounds of 3 to 6 locks
    /// enumerated every chain of dependencies (thousands to the power of the round) until
    /// `--max-steps`, with no cycle found: the graph's distances cut every round that is too
    /// short at its first step.
    ///
    /// The search never passes `v` again (a cycle is simple), so the distances are those of the
    /// graph without `v`: where `u`'s only way back runs through `v` (one thread taking `u, v`
    /// and `v, u`, with `v` also nested among hundreds of other locks elsewhere), every round
    /// is cut and the search ends at once. With `v` counted, `v -> u` put every node that
    /// reaches `v` within two of `u`, nothing was cut, and the rounds enumerated the other
    /// locks' chains up to `--max-steps` (gen_shapes `--transitive --lookalikes`: 9 of 12
    /// seeds reported "search incomplete", 1.6 to 7.9 s per 200,000 events).
    fn node_distances(&mut self, v: u32) {
        let u = self.u;
        if self.node_dist_for == (u, v) && !self.node_dist.is_empty() {
            return;
        }
        // A self-loop (never searched here) would have no node to leave out.
        let skip = if v == u { u32::MAX } else { v };
        let graph = self.graph;
        self.node_dist.clear();
        self.node_dist.resize(graph.nodes(), u32::MAX);
        self.node_dist_for = (u, v);
        self.node_dist[u as usize] = 0;
        // Level by level over the edges, by their sources: the in-edges are released before
        // the search (memory), and a reversed copy made here would cost 8 bytes an edge at the
        // run's peak. A level is a pass over the edges, and the passes stop at the levels
        // `node_dist_levels` gives: a node not reached by then is at least one further (its
        // bound says so, not "never").
        let mut h = 0u32;
        let mut changed = true;
        let levels = node_dist_levels(graph.nodes(), graph.edge_count());
        while changed && h < levels {
            changed = false;
            h += 1;
            for w in 0..graph.nodes() as u32 {
                if w == skip || self.node_dist[w as usize] != u32::MAX {
                    continue;
                }
                if graph
                    .out_edges(w)
                    .any(|e| self.node_dist[graph.target(e) as usize] == h - 1)
                {
                    self.node_dist[w as usize] = h;
                    changed = true;
                }
            }
        }
        if changed {
            // Cut short: the nodes left are `levels + 1` or more away, or unreached.
            for (w, d) in self.node_dist.iter_mut().enumerate() {
                if *d == u32::MAX && w as u32 != skip {
                    *d = levels + 1;
                }
            }
        }
        if skip != u32::MAX {
            // `v` itself: one step to its nearest successor (the search starts there).
            let near = graph
                .out_edges(v)
                .map(|e| self.node_dist[graph.target(e) as usize])
                .filter(|&t| t != u32::MAX)
                .min();
            self.node_dist[v as usize] = near.map_or(u32::MAX, |t| t + 1);
        }
    }

    /// [`EdgeSearch::bounds`]' bound of `d`: `u32::MAX` where no path of the first pass
    /// comes back to `u`.
    #[inline]
    fn bound(&self, d: u32) -> u32 {
        if self.bound_at.get(d as usize) == Some(&self.bound_pass) {
            self.bound_of[d as usize]
        } else {
            u32::MAX
        }
    }

    fn dep(&self, i: u32) -> Dep<'a> {
        self.model.dep(i)
    }

    fn link_ok(&self, d: &Dep<'_>, next: u32) -> bool {
        link_ok(self.model, self.level, self.succ.flat(), d, next)
    }

    fn mark(&mut self, di: u32, add: bool) {
        self.marks.dep(self.model, self.succ.flat(), di, add);
    }

    /// Removes from `marks` the holds of the chain's dependencies beyond its first `len`.
    fn unmark_beyond(&mut self, len: usize) {
        while self.marked > len {
            self.marked -= 1;
            self.mark(self.chain[self.marked], false);
        }
    }

    /// Removes the first dependency's holds from `marks` if a gate test added them.
    fn unmark_root(&mut self) {
        self.unmark_beyond(0);
    }

    /// [`compatible`] of `d` with every dependency of the chain but the last (which the
    /// successor list checked): threads, fork/join order, then the gate locks of the marks.
    fn fits_rest(&mut self, di: u32) -> bool {
        if self.chain.len() == 1 {
            // Nothing but the last, whose marks are the only ones: the gate test below would
            // repeat the successor list's (or `close`'s) test against it. Most calls on a
            // hostile trace, where chains rarely grow: each test walks a held set of about a
            // hundred locks up the interned tree.
            return true;
        }
        // The verdict is the conjunction of one test per pair (c, di), c in the chain but its
        // last; the pairs whose verdicts are kept are not tested again.
        let bits = self.succ.flat().filter(|f| f.bits.is_some());
        let rest = &self.chain[..self.chain.len() - 1];
        if self.shortcuts && rest.len() >= self.long_chain {
            return self.fits_long(di);
        }
        if bits.is_some() {
            let mut all = true;
            for &c in rest {
                match self.fits.get(u64::from(c) << 32 | u64::from(di)) {
                    Some(true) => {}
                    Some(false) => return false,
                    None => all = false,
                }
            }
            if all {
                return true;
            }
        }
        let d = self.dep(di);
        let own_d = self.own[di as usize];
        let ep = self.succ.epochs;
        // The pairs whose gate the bitsets leave open: the marks decide them below.
        let mut open = false;
        for &c in rest {
            let key = u64::from(c) << 32 | u64::from(di);
            if bits.is_some() {
                match self.fits.get(key) {
                    Some(true) => continue,
                    Some(false) => return false,
                    None => {}
                }
            }
            let cd = self.dep(c);
            let own_c = self.own[c as usize];
            if ep.same_or_ordered(&cd, own_c, &d, own_d) {
                if bits.is_some() {
                    self.fits.put(key, false);
                }
                return false;
            }
            // A gate: a lock held by `c` and by `d` in modes that exclude each other, by the
            // bitsets when they decide it.
            match bits.and_then(|f| f.pair_gate_bits(c, di)) {
                Some(gate) => {
                    self.fits.put(key, !gate);
                    if gate {
                        return false;
                    }
                }
                None => open = true,
            }
        }
        if !open {
            return true;
        }
        // ...else by the marks (the holds of those not marked yet are added first).
        self.no_gate_with_the_marked_chain(di)
    }

    /// [`EdgeSearch::fits_rest`] on a chain of [`LONG_CHAIN`] or more dependencies before its
    /// last: the tests of threads and fork/join order pair by pair, the gate once against the
    /// marks of every hold of the chain (a gate with some dependency of the chain is a marked
    /// hold that `di`'s conflicts with: the same verdict as the pairs' by the bitsets, whose
    /// answers agree with the marks, `the_flat_held_sets_answer_as_the_walks`). On the
    /// balanced random traces (64 threads, all concurrent) the explorations' chains grow to
    /// dozens of dependencies, and a kept verdict per pair was a cache miss each.
    fn fits_long(&mut self, di: u32) -> bool {
        let rest = self.chain.len() - 1;
        let d = self.dep(di);
        let own_d = self.own[di as usize];
        let ep = self.succ.epochs;
        for &c in &self.chain[..rest] {
            let cd = self.dep(c);
            let own_c = self.own[c as usize];
            if ep.same_or_ordered(&cd, own_c, &d, own_d) {
                return false;
            }
        }
        self.no_gate_with_the_marked_chain(di)
    }

    /// Whether `di` shares no gate lock with the chain but its last dependency, by the marks:
    /// the holds of the chain's dependencies not marked yet are added first.
    fn no_gate_with_the_marked_chain(&mut self, di: u32) -> bool {
        let rest = self.chain.len() - 1;
        while self.marked < rest {
            let c = self.chain[self.marked];
            self.mark(c, true);
            self.marked += 1;
        }
        !gate(
            self.model,
            self.succ.flat(),
            &self.marks,
            &self.succ.conflict,
            di,
        )
    }

    /// The closing step of a round: the dependencies of the edge back to `u` that can follow
    /// the chain (looked up, not scanned: the last dependency needs no successor list), but
    /// those left out ([`crate::twins`], not counted as steps either).
    fn close(&mut self) {
        let graph = self.graph;
        let x = *self.path.last().expect("the path holds the edge");
        let Some(e) = self.edge_to_u(x) else {
            return;
        };
        let last = *self.chain.last().expect("a chain starts with its edge");
        let left_out = &self.succ.shared.left_out;
        for &di in graph.deps(e) {
            if left_out.get(di as usize).copied().unwrap_or(false) {
                continue;
            }
            if self.stopped {
                return;
            }
            self.steps += 1;
            if self.steps > self.budget {
                self.stopped = true;
                return;
            }
            let (l, d) = (self.dep(last), self.dep(di));
            if check_blocking(&d).is_err()
                || !self.link_ok(&l, di)
                || !compatible(self.succ.epochs, self.succ.flat(), (&l, last), (&d, di))
                || !self.fits_rest(di)
                || !self.link_ok(&d, self.chain[0])
            {
                continue;
            }
            self.record(di);
            if self.found.len() as u64 >= self.max_found {
                self.stopped = true;
                return;
            }
        }
    }

    /// The edge `x -> u` of the search's `u` ([`LockGraph::find`]), remembered per node until
    /// `u` changes: the last steps of a round test the same few nodes again and again (on the
    /// hostile random trace, a binary search over a node's 1,500 edges was half of the search's
    /// steps' time).
    #[inline]
    fn edge_to_u(&mut self, x: u32) -> Option<u32> {
        if self.to_u_for != self.u || self.to_u_stamp.is_empty() {
            self.to_u_for = self.u;
            self.to_u_gen = self.to_u_gen.wrapping_add(1);
            if self.to_u_gen == 0 || self.to_u_stamp.is_empty() {
                // Stamps of every earlier generation would read as this one's.
                self.to_u_stamp = vec![0; self.graph.nodes()];
                self.to_u_edge = vec![0; self.graph.nodes()];
                self.to_u_gen = 1;
            }
        }
        let x = x as usize;
        if self.to_u_stamp[x] == self.to_u_gen {
            let e = self.to_u_edge[x];
            return (e != u32::MAX).then_some(e);
        }
        let e = self.graph.find(x as u32, self.u);
        self.to_u_stamp[x] = self.to_u_gen;
        self.to_u_edge[x] = e.unwrap_or(u32::MAX);
        e
    }

    fn dfs(&mut self) {
        let graph = self.graph;
        let depth = self.chain.len() + 1;
        if depth == self.len {
            self.close();
            return;
        }
        let last = *self.chain.last().expect("a chain starts with its edge");
        let succ = self.succ.of(last);
        for &(e, di) in succ.iter() {
            let y = graph.target(e);
            if self.explore {
                if self.on_path[y as usize] {
                    continue;
                }
            } else if y == self.u || self.on_path[y as usize] {
                // The edge back to `u` is `close`'s, in the last round's step.
                continue;
            }
            if self.prune {
                // The first pass's bound: `di` needs at least `b` more dependencies to come
                // back to `u`, and the round has `len - depth` left.
                let b = self.bound(di);
                if b as usize > self.len - depth {
                    if b != u32::MAX {
                        // A longer round may close it.
                        self.deep = true;
                    }
                    continue;
                }
            }
            if self.node_prune {
                // The same with the graph's distance from `y` back to `u` (both hold where
                // a re-pass made the bounds after the distances).
                let b = self.node_dist[y as usize];
                if b as usize > self.len - depth {
                    if b != u32::MAX {
                        self.deep = true;
                    }
                    continue;
                }
            }
            if self.stopped {
                return;
            }
            self.steps += 1;
            if self.steps > self.budget {
                self.stopped = true;
                return;
            }
            if self.steps >= self.interrupt_at && self.found.is_empty() {
                // Searched again once cut; nothing found yet, so nothing counted twice.
                self.interrupted = true;
                self.stopped = true;
                return;
            }
            if self.explore
                && self.shortcuts
                && !self.open_checked
                && self.steps - self.explore_from >= self.open_check_after
            {
                self.open_checked = true;
                self.check_open();
                if self.covered {
                    self.stopped = true;
                    return;
                }
            }
            // The successor list checked `di` against the last dependency; the others now.
            if !self.fits_rest(di) {
                continue;
            }
            if self.explore {
                if self.link_ok(&self.dep(di), self.chain[0]) {
                    let (d0, v) = (self.chain[0], self.path[0]);
                    self.closed_at(d0, v, y);
                    if self.covered {
                        // Every node closes: nothing more to find.
                        self.stopped = true;
                        return;
                    }
                }
            } else if depth + 1 == self.len {
                self.deep = true;
                // The next step must close the cycle: only nodes with an edge to `u`.
                if self.edge_to_u(y).is_none() {
                    continue;
                }
            }
            self.on_path[y as usize] = true;
            self.path.push(y);
            self.chain.push(di);
            self.dfs();
            // The holds of `di` (and of nothing before it: a gate test marks a prefix of the
            // chain) leave the marks if a test below added them.
            self.unmark_beyond(self.chain.len() - 1);
            self.chain.pop();
            self.path.pop();
            self.on_path[y as usize] = false;
        }
    }

    fn record(&mut self, last: u32) {
        let mut set = self.path.clone();
        set.sort_unstable();
        if let Some(c) = self.found.get_mut(&set) {
            c.combinations += 1;
            return;
        }
        if self.found.is_empty() {
            self.found_at = self.steps;
            self.budget = self.budget.min(self.steps.saturating_add(self.find_budget));
        }
        let mut deps = self.chain.clone();
        deps.push(last);
        // Rotate so that the smallest node comes first, as the enumeration does.
        let k = (0..self.path.len())
            .min_by_key(|&i| self.path[i])
            .unwrap_or(0);
        let mut nodes = self.path.clone();
        nodes.rotate_left(k);
        deps.rotate_left(k);
        self.order.push(set.clone());
        self.found.insert(
            set,
            Candidate {
                level: self.level,
                nodes,
                deps,
                filter: None,
                reason: String::new(),
                combinations: 1,
            },
        );
    }
}

/// The chains (their dependencies before the last) whose test of a new dependency
/// ([`EdgeSearch::fits_rest`]) reads the marks of the whole chain for the gate
/// ([`EdgeSearch::fits_long`]) instead of a kept verdict per pair.
const LONG_CHAIN: usize = 8;

/// Steps of an exploration ([`EdgeSearch::closers_of`]) before it looks for the nodes where no
/// chain can close ([`EdgeSearch::check_open`]).
const OPEN_CHECK_AFTER: u64 = 200;

/// A node of [`EdgeSearch::open`] where no chain has closed yet.
const OPEN: u8 = 1;
/// A node of [`EdgeSearch::open`] where a chain has closed.
const CLOSED: u8 = 2;

/// The first pass of a dependency has not run yet ([`EdgeSearch::relaxed_closers`]).
const CLOSERS_UNKNOWN: u32 = u32::MAX;
/// The first pass of a dependency stopped at [`MAX_FIRST_PASS`]: every edge's search keeps it.
const CLOSERS_ALL: u32 = u32::MAX - 1;
/// The first pass of a dependency found no node where a cycle through it closes.
const CLOSERS_NONE: u32 = u32::MAX - 2;
/// The exploration of a dependency stopped at [`MAX_EXPLORE_STEPS`], its first pass has not
/// run yet: every edge's search keeps it.
const CLOSERS_STOPPED: u32 = u32::MAX - 3;

/// The most successor entries one search of the first pass reads ([`EdgeSearch::reach`]);
/// beyond, it proves nothing: the dependency is searched in full at every edge it lies on,
/// and an edge's rounds are not cut (a first pass that stops only costs time, never a
/// result). On a graph where everything is compatible (the planted trace: 16 threads nesting
/// in one order, most of them concurrent) a region is most of the graph, and a search of it
/// per dependency would cost more than the full searches it saves.
const MAX_FIRST_PASS: usize = 20_000;

/// The most successor entries one search of [`EdgeSearch::pair_closers`] reads; beyond, the
/// first pass's verdict stands.
const MAX_PAIR_PASS: usize = 50_000;

/// Steps of an edge's search before its rounds are cut by [`EdgeSearch::bounds`] (cutting is
/// safe at any point: the bounds never cut a chain that closes in its round).
const BOUNDS_AFTER: u64 = 20_000;

/// First passes of an edge's dependencies that all stop past their bound, after which the
/// edge's other dependencies are kept without one ([`find_root_causes_on`]).
const FIRST_PASS_GIVE_UP: usize = 64;

/// Steps of an edge's search, nothing found, after which the first passes that stopped at
/// their bound run again with a budget in proportion to the search ([`repass`]); then again at
/// [`REPASS_GROWTH`] times as many steps.
const REPASS_AFTER: u64 = 100_000;

/// How much later each next [`repass`] of one edge's search comes.
const REPASS_GROWTH: u64 = 4;

/// The successor entries a [`repass`] may read in all, per step the edge's search has taken:
/// its passes cost a bounded part of the search they may end. An entry of a list not in the
/// memo is computed, which costs more than a step: on a look-alike trace whose search still
/// reaches `--max-steps` (its whole analysis 3.7 s before), 8 entries per step took 6.6 s, 4
/// 5.5 s, 2 5.1 s and 1 4.0 s, while the two traces it decides end in 0.2 to 0.3 s at 2 or
/// more (0.7 s at 1). With the default `--max-steps` its three re-passes read at most 4.2M
/// entries.
const REPASS_ENTRIES_PER_STEP: usize = 2;

/// The levels of [`EdgeSearch::node_distances`] at least: a pass over the graph's edges each (a
/// cycle of more locks than its levels is still searched, its rounds cut less).
const NODE_DIST_LEVELS: u32 = 16;

/// The node and edge visits of [`EdgeSearch::node_distances`]' passes beyond
/// [`NODE_DIST_LEVELS`]: on a small graph the distances are exact for longer cycles. With 16
/// levels only, a ring of 20 locks whose edges 2,000 threads each took had every dependency of
/// its 19-lock round searched one lock deep (a node 18 away was bounded by 17): 4M steps, 27 s
/// for 200,000 events. About 4 ms of passes, paid only by a search long enough for them
/// ([`BOUNDS_AFTER`] steps).
const NODE_DIST_WORK: usize = 4_000_000;

/// How many levels [`EdgeSearch::node_distances`] computes on a graph of `nodes` nodes and
/// `edges` edges: [`NODE_DIST_LEVELS`], or as many as [`NODE_DIST_WORK`] pays for.
fn node_dist_levels(nodes: usize, edges: usize) -> u32 {
    let per_level = nodes.saturating_add(edges).max(1);
    let levels = (NODE_DIST_WORK / per_level).min(u32::MAX as usize / 2) as u32;
    levels.max(NODE_DIST_LEVELS)
}

/// Steps of the exploration of one dependency ([`EdgeSearch::closers_of`]); beyond, its first
/// passes ([`EdgeSearch::relaxed_closers`], [`EdgeSearch::pair_closers`]) decide which of its
/// edges are searched with it, once one of its edges' searches is long ([`FIRST_PASS_AFTER`]).
const MAX_EXPLORE_STEPS: u64 = 20_000;

/// Steps of an edge's search before the first pass ([`EdgeSearch::relaxed_closers`]) of its
/// dependencies runs (dropping the edge's search if none of them can close a cycle through it).
/// Its verdicts are kept: every later edge that a passed dependency lies on reads them first.
const FIRST_PASS_AFTER: u64 = 5_000;

/// The first passes' verdicts, kept for every later edge ([`first_pass`]).
struct FirstPasses {
    /// Per verdict that lists nodes, where its nodes start in `nodes` (and the next ends).
    start: Vec<u32>,
    /// The sorted node lists, one after the other.
    nodes: Vec<u32>,
    /// First passes run, of them stopped at [`MAX_FIRST_PASS`], and edges dropped by them.
    passes: usize,
    stopped: usize,
    skipped: usize,
    /// Explorations run ([`EdgeSearch::closers_of`]), of them stopped at their budget, steps.
    explored: usize,
    explore_stopped: usize,
    explore_steps: u64,
    /// Passes of [`EdgeSearch::pair_closers`] run (first passes and re-passes), of them
    /// stopped at their bound.
    pair_passes: usize,
    pair_stopped: usize,
    /// First passes run again by [`repass`], of them stopped at their larger budget.
    repasses: usize,
    repass_stopped: usize,
}

impl FirstPasses {
    /// Keeps a sorted node list and returns its verdict: [`CLOSERS_NONE`] or its index.
    fn keep(&mut self, nodes: Vec<u32>) -> u32 {
        if nodes.is_empty() {
            return CLOSERS_NONE;
        }
        self.nodes.extend_from_slice(&nodes);
        self.start.push(self.nodes.len() as u32);
        self.start.len() as u32 - 2
    }
}

/// The verdict of `d0`'s first pass ([`EdgeSearch::relaxed_closers`]), run now unless known
/// (`state[d0][1]`): [`CLOSERS_NONE`], [`CLOSERS_ALL`], or the index of its node list.
fn first_pass(
    s: &mut EdgeSearch<'_, '_>,
    state: &mut [[u32; 2]],
    fp: &mut FirstPasses,
    d0: u32,
) -> u32 {
    let known = state[d0 as usize][1];
    if known != CLOSERS_UNKNOWN && known != CLOSERS_STOPPED {
        return known;
    }
    fp.passes += 1;
    let r = passes(s, fp, d0, None);
    fp.stopped += usize::from(r == CLOSERS_ALL);
    state[d0 as usize][1] = r;
    r
}

/// The verdict of `d0`'s two first passes at the budgets of `s` ([`first_pass`], [`repass`]):
/// [`CLOSERS_ALL`] where the first stopped at its bound, else [`CLOSERS_NONE`] or the index of
/// its node list, refined by the stronger pass where that one ends within its bound (its list
/// is part of the first one's: it tests more). With `share`, the stronger pass may read what
/// the first left of it (at least [`MAX_PAIR_PASS`]).
fn passes(s: &mut EdgeSearch<'_, '_>, fp: &mut FirstPasses, d0: u32, share: Option<usize>) -> u32 {
    match s.relaxed_closers(d0) {
        None => CLOSERS_ALL,
        Some(nodes) if nodes.is_empty() => CLOSERS_NONE,
        Some(nodes) => {
            if let Some(share) = share {
                s.pair_budget = share.saturating_sub(s.last_read).max(MAX_PAIR_PASS);
            }
            fp.pair_passes += 1;
            match s.pair_closers(d0) {
                Some(fewer) => fp.keep(fewer),
                None => {
                    fp.pair_stopped += 1;
                    fp.keep(nodes)
                }
            }
        }
    }
}

/// Whether a first-pass verdict `r` ([`first_pass`]) keeps its dependency in the search of an
/// edge from `u` (an unknown verdict keeps it).
fn first_pass_keeps(fp: &FirstPasses, r: u32, u: u32) -> bool {
    match r {
        CLOSERS_NONE => false,
        CLOSERS_ALL | CLOSERS_UNKNOWN | CLOSERS_STOPPED => true,
        r => {
            let (a, b) = (fp.start[r as usize], fp.start[r as usize + 1]);
            fp.nodes[a as usize..b as usize].binary_search(&u).is_ok()
        }
    }
}

/// Whether a first-pass verdict decides nothing yet: not run, or stopped at its bound.
fn undecided(r: u32) -> bool {
    matches!(r, CLOSERS_ALL | CLOSERS_UNKNOWN | CLOSERS_STOPPED)
}

/// The first passes of the dependencies `d0s` of a long search whose verdicts are
/// [`undecided`], run again with `budget` successor entries shared among them (each at most
/// its share, and nothing run when the share is no more than the bound they stopped at,
/// `floor`); the verdicts are kept as [`first_pass`] keeps them. Returns, per dependency of
/// `d0s`, whether the search of `u` keeps it, and the share (the next re-pass's `floor`).
///
/// Why: a first pass stops at [`MAX_FIRST_PASS`] entries, and where the edge's search is
/// then long (the look-alike pair of one thread whose locks are also nested among hundreds
/// of others: every chain of the others is searched, rounds of up to 16 locks), a pass with
/// a budget in proportion to that search proves in milliseconds what the search would not
/// prove before `--max-steps` (gen_shapes `--transitive --lookalikes`, 2 of 3 such traces).
/// The passes are sound whatever their budget: only their cost grows, in proportion to the
/// search.
fn repass(
    s: &mut EdgeSearch<'_, '_>,
    state: &mut [[u32; 2]],
    fp: &mut FirstPasses,
    d0s: &[u32],
    u: u32,
    budget: usize,
    floor: usize,
) -> (Vec<bool>, usize) {
    let open = d0s
        .iter()
        .filter(|&&d0| undecided(state[d0 as usize][1]))
        .count();
    let share = budget / open.max(1);
    let mut keep = Vec::with_capacity(d0s.len());
    for &d0 in d0s {
        let r = state[d0 as usize][1];
        if !undecided(r) || share <= floor {
            keep.push(first_pass_keeps(fp, r, u));
            continue;
        }
        fp.repasses += 1;
        s.pass_budget = share;
        let r = passes(s, fp, d0, Some(share));
        fp.repass_stopped += usize::from(r == CLOSERS_ALL);
        s.pass_budget = MAX_FIRST_PASS;
        s.pair_budget = MAX_PAIR_PASS;
        state[d0 as usize][1] = r;
        keep.push(first_pass_keeps(fp, r, u));
    }
    (keep, share.max(floor))
}

/// The lock graph of `level`, its edge weights and its change set ([`change_set_on`] with the
/// ties broken by [`change_set_ranks`]), as the analysis computes them.
pub(crate) fn level_change_set(
    model: &Model,
    level: GraphLevel,
) -> (LockGraph, crate::graph::EdgeWeights, ChangeSet) {
    let graph = LockGraph::build(model, level);
    let weights = graph.weights(model);
    let ranks = change_set_ranks(model, level);
    let change = change_set_on(&graph, &weights, &|n| {
        ranks.get(n as usize).copied().unwrap_or(u64::MAX)
    });
    (graph, weights, change)
}

/// Finds the root causes of one level: the smallest weighted change set of its lock graph
/// ([`change_set`]), then for each changed edge the shortest valid cycle through it (every
/// cycle of the graph crosses a changed edge, so this decides whether any valid cycle exists).
/// Root causes whose shortest cycles are the same set of locks are one root cause naming all
/// their edges, and so is a 2-cycle whose two edges weigh the same when nothing tells them apart
/// (no path of kept edges closes the changed one too, see `told_apart_by_a_path`).
pub fn find_root_causes(
    model: &Model,
    level: GraphLevel,
    limits: &SearchLimits,
) -> RootCauseResult {
    let (graph, weights, change) = level_change_set(model, level);
    find_root_causes_on(model, &graph, &weights, &change, limits)
}

/// [`find_root_causes`] with the groups of dependencies that differ only by thread keeping at
/// least `at_least` threads ([`crate::twins`]; the tests' small traces keep fewer than the
/// program does).
#[cfg(test)]
pub(crate) fn find_root_causes_keeping(
    model: &Model,
    level: GraphLevel,
    limits: &SearchLimits,
    at_least: u32,
) -> RootCauseResult {
    let (graph, weights, change) = level_change_set(model, level);
    let plan = Plan {
        mode: AheadMode::Off,
        flat_first_from: AHEAD_MIN_EDGES,
        open_check_after: OPEN_CHECK_AFTER,
        twins: Some(at_least),
    };
    find_root_causes_ahead(model, &graph, &weights, &change, limits, plan)
}

/// [`find_root_causes`] on the level's graph, edge weights and change set computed once by the
/// caller ([`LockGraph::build`], [`LockGraph::weights`], [`change_set_on`] with
/// [`change_set_ranks`]).
pub fn find_root_causes_on(
    model: &Model,
    graph: &LockGraph,
    weights: &EdgeWeights,
    change: &ChangeSet,
    limits: &SearchLimits,
) -> RootCauseResult {
    let mode = if search_threads() > 1 && change.len() >= AHEAD_MIN_EDGES {
        AheadMode::Beside
    } else {
        AheadMode::Off
    };
    let plan = Plan {
        mode,
        flat_first_from: AHEAD_MIN_EDGES,
        open_check_after: OPEN_CHECK_AFTER,
        twins: Some(crate::twins::KEPT_AT_LEAST),
    };
    find_root_causes_ahead(model, graph, weights, change, limits, plan)
}

/// How [`find_root_causes_ahead`] runs: the thread count's part, and what the tests lower.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Whether and how the explorations run ahead; not [`AheadMode::Off`] only where the flat
    /// held sets are built first (`flat_first_from`).
    mode: AheadMode,
    /// The fewest changed edges for which the flat held sets are built before the search
    /// ([`AHEAD_MIN_EDGES`], whatever the thread count; the tests lower it), not at their
    /// due point ([`Successors::flat_due`]).
    ///
    /// Why: the answers of the searches do not depend on the copy, but two shortcuts' do:
    /// [`EdgeSearch::can_close`] decides a node only with the copy's bitsets, and
    /// [`EdgeSearch::fits_pair`] rejects a pair only with them. So an exploration's step count
    /// (and where it would pass its budget, its verdict) and a pair pass's node list depend
    /// on whether the copy exists when they run: on the hostile random trace (seed 1), 600 of
    /// the explorations' 982,064 steps, one more exploration ended by its shortcut, with the
    /// copy built first. With a second thread that builds the copy at its own due point, that
    /// moment depends on which thread gets there first, and so would the total of steps, hence
    /// where `--max-total-steps` stops the search and the count its warning gives. Built first,
    /// it is the same on one thread or two.
    flat_first_from: usize,
    /// [`OPEN_CHECK_AFTER`] (the tests lower it, so that small explorations check too).
    open_check_after: u64,
    /// Whether the dependencies that differ only by thread beyond what a cycle can use are left
    /// out ([`crate::twins`]), each group keeping at least this many threads
    /// ([`crate::twins::KEPT_AT_LEAST`]; the tests compare the search without, or keep fewer).
    twins: Option<u32>,
}

/// Whether and how [`find_root_causes_ahead`] runs explorations ahead ([`Ahead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AheadMode {
    /// On the main thread only, as each is due.
    Off,
    /// On a second thread beside the main thread's search.
    Beside,
    /// Every one of them first, before the main thread's search begins (the tests: the main
    /// thread then takes every exploration from the second thread's results).
    #[cfg(test)]
    First,
    /// As `First`, the second thread building the flat held sets before its first exploration
    /// (as a second thread that reaches its due point first does, [`Successors::flat_due`]).
    #[cfg(test)]
    FlatFirst,
}

/// How many threads the root-cause search may use: `RAYON_NUM_THREADS` if set (as the reading
/// threads, `read_threads`), else one per core.
fn search_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The fewest changed edges for which [`find_root_causes_on`] explores on a second thread
/// ([`Ahead`]): below, a thread would cost more than the explorations it could take over.
const AHEAD_MIN_EDGES: usize = 256;

/// [`Ahead::claims`]: a dependency no exploration is due for (not blocking, or on one changed
/// edge only), or one explored by neither thread yet.
const CLAIM_NONE: u8 = 0;
const CLAIM_FREE: u8 = 1;
/// [`Ahead::claims`]: a dependency the main thread explores, or the second thread.
const CLAIM_MAIN: u8 = 2;
const CLAIM_AHEAD: u8 = 3;

/// The explorations ([`EdgeSearch::closers_of`]) that a second thread runs ahead of the
/// root-cause search, from the last changed edge down, while the main thread searches the
/// edges from the first up; the two stop when they meet. An exploration is a function of its
/// dependency alone (its verdict and its step count: the caches it reads only save work), so
/// the main thread takes the second thread's result, and counts its steps, exactly where it
/// would have run it itself: in the edges' order, against the same step bounds. The report
/// does not depend on the number of threads or on which finishes first. That holds only with
/// the flat held sets built before either thread begins ([`Plan::flat_first_from`]): an
/// exploration's steps depend on whether the copy exists, and a copy built by whichever
/// thread is due first would exist at a moment that depends on the threads' timing.
struct Ahead {
    /// Per dependency, `CLAIM_*`: which thread explores it (taken once, by either).
    claims: Vec<std::sync::atomic::AtomicU8>,
    /// The explorations done by the second thread, by dependency, until the main thread takes
    /// them.
    done: std::sync::Mutex<FastMap<u32, Explored>>,
    /// How many changed edges the main thread has begun (the second thread stops below it).
    begun: std::sync::atomic::AtomicUsize,
    /// Set by the main thread when its search is over (or stopped at its bounds).
    over: std::sync::atomic::AtomicBool,
}

/// An exploration run by the second thread ([`Ahead`]): what [`EdgeSearch::closers_of`]
/// returned, the steps it took and whether its shortcuts ended it.
struct Explored {
    /// Boxed (no spare capacity): the second thread's results wait for the main thread, tens
    /// of thousands of them on the hostile random trace.
    closers: Option<Box<[u32]>>,
    steps: u64,
    covered: bool,
}

impl Ahead {
    /// Claims `d0` for the main thread's exploration: `None` if it is the main thread's to
    /// run, else the second thread's result (when the second thread is still exploring it,
    /// `None` too: the main thread runs it as well, with the same result).
    fn take(&self, d0: u32) -> Option<Explored> {
        use std::sync::atomic::Ordering;
        let c = &self.claims[d0 as usize];
        match c.compare_exchange(CLAIM_FREE, CLAIM_MAIN, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => None,
            Err(CLAIM_AHEAD) => self.done.lock().ok()?.remove(&d0),
            Err(_) => None,
        }
    }
}

/// The second thread's part of the root-cause search ([`Ahead`]): explores every dependency
/// due for an exploration on the changed edges from the last down, on its own successor lists
/// over the shared tables, until it meets the main thread or the main thread is over.
#[allow(clippy::too_many_arguments)]
fn explore_ahead(
    model: &Model,
    level: GraphLevel,
    graph: &LockGraph,
    own: &[u32],
    shared: &SharedTables<'_>,
    change: &ChangeSet,
    ahead: &Ahead,
    open_check_after: u64,
) {
    use std::sync::atomic::Ordering;
    let mut succ = Successors::new(model, level, graph, own, shared);
    let mut s = EdgeSearch::new(model, level, graph, &mut succ, own, 0);
    s.open_check_after = open_check_after;
    let mut explored = 0usize;
    'edges: for (k, e) in change.ids_desc().enumerate() {
        if change.len() - k <= ahead.begun.load(Ordering::Acquire) {
            break;
        }
        for &d0 in graph.deps(e) {
            if ahead.over.load(Ordering::Relaxed) {
                break 'edges;
            }
            let c = &ahead.claims[d0 as usize];
            if c.compare_exchange(CLAIM_FREE, CLAIM_AHEAD, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            s.reset(u32::MAX, 0);
            explored += 1;
            let before = s.explore_covered;
            let closers = s.closers_of(d0, MAX_EXPLORE_STEPS);
            let x = Explored {
                closers: closers.map(Vec::into_boxed_slice),
                steps: s.steps,
                covered: s.explore_covered > before,
            };
            if let Ok(mut done) = ahead.done.lock() {
                done.insert(d0, x);
            }
        }
    }
    if std::env::var_os("LOCKCHECK_PHASES").is_some() {
        eprintln!("lockcheck: {explored} explorations run ahead");
    }
    crate::phase("root causes, explorations ahead");
}

/// [`find_root_causes_on`], its explorations run ahead as `mode` says ([`Ahead`]): the same
/// result either way.
fn find_root_causes_ahead(
    model: &Model,
    graph: &LockGraph,
    weights: &EdgeWeights,
    change: &ChangeSet,
    limits: &SearchLimits,
    plan: Plan,
) -> RootCauseResult {
    let level = graph.level().unwrap_or(GraphLevel::Instance);
    // The change set is the caller's (`change`): not copied into the result, where it would
    // hold 15 MB more through the search on the hostile random trace (1.8M edges).
    let mut result = RootCauseResult::default();
    if change.stopped > 0 {
        result.notes.push(format!(
            "the {} change set is not proven minimal in {} component(s): the local search stopped after {} passes",
            level.name(),
            change.stopped,
            crate::hierarchy::MAX_LOCAL_SEARCH_PASSES
        ));
    }
    if change.not_minimal > 0 {
        result.notes.push(format!(
            "the {} change set is not proven minimal in {} component(s): the pass that puts back edges closing no cycle was beyond its bounds",
            level.name(),
            change.not_minimal,
        ));
    }
    if change.exchange_stopped > 0 {
        result.notes.push(format!(
            "the {} change set is not proven minimal in {} component(s): the exchange of cut edges for lighter cuts stopped at its budget",
            level.name(),
            change.exchange_stopped,
        ));
    }
    if change.is_empty() {
        return result;
    }
    // Per dependency index, `[how many changed edges it lies on, its verdict]` side by side,
    // read once per (changed edge, dependency) pair: millions of reads at random dependencies
    // on the hostile random trace. The count: one per lock it held, at most; `u32::MAX` for a
    // dependency that does not block (no search starts from it). The verdict, computed once:
    // `CLOSERS_UNKNOWN`, `CLOSERS_STOPPED` (its exploration stopped, no first pass yet),
    // `CLOSERS_ALL` (its first pass stopped too), `CLOSERS_NONE`, or the index of its sorted
    // list of nodes in `relaxed.start` / `relaxed.nodes` (from its exploration, else its first
    // passes; a node of the list is one the dependency holds, so the lists are at most as long
    // as the held sets of the dependencies searched).
    let left_out = plan
        .twins
        .and_then(|at_least| crate::twins::left_out(model, graph, level, at_least));
    let epochs = Epochs::new(model);
    let (threads, own, mut state) =
        ThreadDeps::with_own_and_state(model, &epochs, left_out.as_ref().map(|l| &*l.deps));
    let (left_out, left_out_deps) = left_out.map_or((0, Vec::new()), |l| (l.count, l.deps));
    if left_out > 0 && std::env::var_os("LOCKCHECK_PHASES").is_some() {
        eprintln!(
            "lockcheck: {} root causes: {left_out} dependencies left out, each interchangeable with one kept but for its thread (crate::twins)",
            level.name(),
        );
    }
    for e in change.ids() {
        for &d in graph.deps(e) {
            let c = &mut state[d as usize][0];
            *c = c.saturating_add(u32::from(*c != u32::MAX));
        }
    }
    let mut shared = SharedTables::new(graph, epochs, threads);
    shared.left_out = left_out_deps;
    shared.searched -= left_out;
    let flat_first = change.len() >= plan.flat_first_from;
    if flat_first {
        // Before any search, on one thread or two ([`Plan::flat_first_from`]).
        shared.flat.get_or_init(|| FlatHeld::new(model));
    }
    let mode = plan.mode;
    assert!(
        mode == AheadMode::Off || flat_first,
        "explorations run ahead only with the flat held sets built first"
    );
    crate::phase("root causes: tables");
    let ahead = (mode != AheadMode::Off).then(|| Ahead {
        claims: state
            .iter()
            .map(|&[on, _]| {
                let due = on != u32::MAX && on >= 2;
                std::sync::atomic::AtomicU8::new(if due { CLAIM_FREE } else { CLAIM_NONE })
            })
            .collect(),
        done: std::sync::Mutex::new(FastMap::default()),
        begun: std::sync::atomic::AtomicUsize::new(0),
        over: std::sync::atomic::AtomicBool::new(false),
    });
    #[cfg(test)]
    if let (AheadMode::First | AheadMode::FlatFirst, Some(a)) = (mode, &ahead) {
        if mode == AheadMode::FlatFirst {
            shared.flat.get_or_init(|| FlatHeld::new(model));
        }
        explore_ahead(
            model,
            level,
            graph,
            &own,
            &shared,
            change,
            a,
            plan.open_check_after,
        );
    }
    std::thread::scope(|sc| {
        let second = ahead
            .as_ref()
            .filter(|_| mode == AheadMode::Beside)
            .and_then(|a| {
                let (own, shared) = (&own, &shared);
                std::thread::Builder::new()
                    .name("lockcheck-analyze".into())
                    .spawn_scoped(sc, move || {
                        explore_ahead(
                            model,
                            level,
                            graph,
                            own,
                            shared,
                            change,
                            a,
                            plan.open_check_after,
                        )
                    })
                    .ok()
            });
        let mut r = search_edges(
            model,
            graph,
            weights,
            change,
            limits,
            &own,
            &shared,
            &mut state,
            ahead.as_ref(),
            plan.open_check_after,
            result,
        );
        if let Some(a) = &ahead {
            a.over.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(h) = second {
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        }
        if left_out > 0 {
            // The cycles are all found, but their combinations are counted over the threads
            // kept of each group only.
            for rc in &mut r.root_causes {
                rc.combinations_exhaustive = false;
            }
        }
        r
    })
}

/// The main thread's part of [`find_root_causes_ahead`]: every changed edge in order, its
/// result added to `result`.
#[allow(clippy::too_many_arguments)]
fn search_edges(
    model: &Model,
    graph: &LockGraph,
    weights: &EdgeWeights,
    change: &ChangeSet,
    limits: &SearchLimits,
    own: &[u32],
    shared: &SharedTables<'_>,
    state: &mut [[u32; 2]],
    ahead: Option<&Ahead>,
    open_check_after: u64,
    mut result: RootCauseResult,
) -> RootCauseResult {
    let level = graph.level().unwrap_or(GraphLevel::Instance);
    let ranks = canonical_ranks(model, level);
    let rank = |n: u32| ranks.get(n as usize).copied().unwrap_or(u64::MAX);
    let all_threads: usize = model.threads.len();
    let mut causes: Vec<RootCause> = Vec::new();
    let mut total: u64 = 0;
    let mut example_pool = limits.max_example_steps.saturating_mul(20);
    let mut succ = Successors::new(model, level, graph, own, shared);
    let max_len = all_threads.min(graph.nodes());
    // One search for every changed edge, its buffers reused (1.8M changed edges on the hostile
    // random trace: each a search of its own, with its vectors allocated for each of its first
    // dependencies and rounds, and dropped): [`EdgeSearch::reset`] before each edge.
    let mut s = EdgeSearch::new(model, level, graph, &mut succ, own, limits.max_steps);
    s.open_check_after = open_check_after;
    let mut d0s: Vec<u32> = Vec::new();
    let mut relaxed = FirstPasses {
        start: vec![0],
        nodes: Vec::new(),
        passes: 0,
        skipped: 0,
        stopped: 0,
        explored: 0,
        explore_stopped: 0,
        explore_steps: 0,
        pair_passes: 0,
        pair_stopped: 0,
        repasses: 0,
        repass_stopped: 0,
    };
    let mut firsts: Vec<u32> = Vec::new();
    // The changed edges come in ascending ids: their sources are read by a cursor, where a
    // binary search over the nodes for each (`LockGraph::endpoints`) cost 12 probes an edge.
    let mut sources = graph.sources();
    for (k, e) in change.ids().enumerate() {
        let (u, v) = (sources.of(e), graph.target(e));
        if let Some(a) = ahead {
            a.begun.store(k + 1, std::sync::atomic::Ordering::Release);
        }
        if total > limits.max_total_steps {
            result.warnings.push(format!(
                "{} root-cause search stopped after {total} steps in all (--max-total-steps) with {} of {} changed edges not searched; results may be incomplete",
                level.name(),
                change.len() - k,
                change.len()
            ));
            break;
        }
        // A dependency on several changed edges is explored once (exact, `closers_of`); an
        // edge none of whose dependencies can close a valid cycle through `u` needs no
        // search. Where that is not known (one changed edge only, or the exploration stopped),
        // the first passes run once the search of an edge the dependency lies on has taken
        // `FIRST_PASS_AFTER` steps (most edges' searches end before: on the hostile random
        // trace, running them for every dependency cost 7.6 % more instructions than they
        // saved, and after 1,000 steps still 1.4 %); the verdict, kept, serves every later
        // edge at once.
        firsts.clear();
        s.reset(u, limits.max_steps);
        for &d0 in graph.deps(e) {
            let [on, mut r] = state[d0 as usize];
            if on == u32::MAX {
                // Not blocking.
                continue;
            }
            if on < 2 {
                // On one changed edge only: nothing to share, its own search decides (and its
                // first pass, if that search is long).
                firsts.push(d0);
                continue;
            }
            if r == CLOSERS_UNKNOWN {
                relaxed.explored += 1;
                let closers = match ahead.and_then(|a| a.take(d0)) {
                    Some(x) => {
                        // Run ahead: counted here, as if run now.
                        s.steps += x.steps;
                        s.explore_covered += usize::from(x.covered);
                        x.closers.map(Vec::from)
                    }
                    None => s.closers_of(d0, MAX_EXPLORE_STEPS),
                };
                r = match closers {
                    Some(nodes) => relaxed.keep(nodes),
                    None => {
                        // Its first pass runs if one of its edges' searches is long.
                        relaxed.explore_stopped += 1;
                        CLOSERS_STOPPED
                    }
                };
                state[d0 as usize][1] = r;
            }
            if first_pass_keeps(&relaxed, r, u) {
                firsts.push(d0);
            }
        }
        // The explorations' steps count in the total, not in the edge's search or its budget
        // (they record no cycle and leave the marks and `on_path` clear).
        relaxed.explore_steps += s.steps;
        total += s.steps;
        s.steps = 0;
        s.stopped = false;
        s.budget = limits.max_steps;
        s.u = u;
        s.len = 2;
        s.find_budget = limits.max_example_steps.min(example_pool);
        if firsts.is_empty() {
            relaxed.skipped += 1;
            continue;
        }
        d0s.clear();
        d0s.extend_from_slice(&firsts);
        // The rounds cut what cannot close in them, once the edge's search has taken
        // `BOUNDS_AFTER` steps (most edges' searches end before: the bounds would cost them
        // more than they save).
        let mut bounded = false;
        let mut passed = false;
        let (mut repass_at, mut repass_floor) = (REPASS_AFTER, MAX_FIRST_PASS);
        let mut shortest: Option<usize> = None;
        let mut exhaustive = true;
        let mut steps_at_shortest = 0;
        for len in 2..=max_len {
            s.len = len;
            s.deep = false;
            let mut i = 0;
            while i < d0s.len() {
                if s.stopped {
                    break;
                }
                if !passed && s.found.is_empty() && s.steps > FIRST_PASS_AFTER {
                    // The first pass of the dependencies not passed yet; those that cannot
                    // close a cycle through `u` leave the search (the rounds they were searched
                    // in found nothing through them, and no later round would). Not once a
                    // cycle is found, in this round too (not only once a round has ended with
                    // one): the edge is a root cause, and the rest of its search only counts
                    // examples. (A 2-cycle taken by 50,000 threads each way: the round's first
                    // dependency closed 50,000 cycles, and the first passes of the 50,000
                    // others then read 20,000 successor entries each, for 80 s, to keep them.)
                    passed = true;
                    let mut kept_before = 0;
                    let mut keep = Vec::with_capacity(d0s.len());
                    let (mut undecided, mut gave_up) = (0, false);
                    for (j, &d0) in d0s.iter().enumerate() {
                        gave_up |= undecided == FIRST_PASS_GIVE_UP && undecided == j;
                        if gave_up {
                            // Every first pass so far stopped past its bound (an edge taken by
                            // thousands of threads: each pass reads thousands of successors,
                            // and the passes of all its dependencies cost their square): the
                            // rest are kept without one, as a stopped pass keeps them.
                            keep.push(true);
                            kept_before += usize::from(j < i);
                            continue;
                        }
                        let r = first_pass(&mut s, state, &mut relaxed, d0);
                        undecided += usize::from(r == CLOSERS_ALL);
                        let k = first_pass_keeps(&relaxed, r, u);
                        kept_before += usize::from(k && j < i);
                        keep.push(k);
                    }
                    let mut keep = keep.into_iter();
                    d0s.retain(|_| keep.next().unwrap_or(true));
                    i = kept_before;
                    if d0s.is_empty() {
                        relaxed.skipped += 1;
                    }
                    continue;
                }
                if passed && s.found.is_empty() && s.steps >= repass_at {
                    // A long search: the passes that stopped run again, with a budget in
                    // proportion to it, and the bounds too where they stopped. The round's
                    // search unwinds for it as for the first passes, and its dependency is
                    // searched again from its start: up to 2.1M steps of a search that
                    // reaches --max-steps are done twice (on a hostile random trace that
                    // reaches --max-total-steps either way, 6,126 violations found instead of
                    // 6,574), but a dependency whose round is the whole search is decided
                    // (sh25 of the comparison set: the third re-pass, at 1.6M steps, ends it;
                    // between two first dependencies only, it never ran).
                    let budget = (s.steps as usize).saturating_mul(REPASS_ENTRIES_PER_STEP);
                    repass_at = s.steps.saturating_mul(REPASS_GROWTH);
                    let read_before = s.pass_read;
                    let keep;
                    (keep, repass_floor) =
                        repass(&mut s, state, &mut relaxed, &d0s, u, budget, repass_floor);
                    let kept_before = keep[..i].iter().filter(|&&k| k).count();
                    let mut keep = keep.into_iter();
                    d0s.retain(|_| keep.next().unwrap_or(true));
                    i = kept_before;
                    if !d0s.is_empty() && bounded && !s.prune {
                        s.pass_budget = (budget / d0s.len()).max(MAX_FIRST_PASS);
                        s.prune = s.bounds(&d0s);
                        s.pass_budget = MAX_FIRST_PASS;
                    }
                    // Their work counts in the level's total, as steps of the same time (a
                    // hostile random trace that reaches --max-total-steps took 35 % longer
                    // with re-passes counted nowhere).
                    total += (s.pass_read - read_before) / REPASS_ENTRIES_PER_STEP as u64;
                    if d0s.is_empty() {
                        relaxed.skipped += 1;
                    }
                    continue;
                }
                let d0 = d0s[i];
                i += 1;
                if !bounded && s.steps > BOUNDS_AFTER {
                    bounded = true;
                    s.prune = s.bounds(&d0s);
                    if !s.prune && shortest.is_none() {
                        // Past the first pass's bound: the graph's distances instead (not once
                        // a cycle is found, as the bounds above).
                        s.node_distances(v);
                        s.node_prune = true;
                    }
                }
                if s.prune && s.bound(d0) as usize > len - 1 {
                    // Not in this round (a longer one may close it).
                    s.deep |= s.bound(d0) != u32::MAX;
                    continue;
                }
                if s.node_prune && s.node_dist[v as usize] as usize > len - 1 {
                    s.deep |= s.node_dist[v as usize] != u32::MAX;
                    continue;
                }
                s.path.clear();
                s.path.extend([u, v]);
                s.on_path[u as usize] = true;
                s.on_path[v as usize] = true;
                s.chain.clear();
                s.chain.push(d0);
                if len == 2 {
                    // The chain of one dependency is there: deeper rounds may follow.
                    s.deep = true;
                }
                // Unwinds where the first passes or the bounds are due, unless they ran.
                s.interrupt_at = if !passed && s.steps < FIRST_PASS_AFTER {
                    FIRST_PASS_AFTER + 1
                } else if !bounded && s.steps < BOUNDS_AFTER {
                    BOUNDS_AFTER + 1
                } else if passed && s.steps < repass_at {
                    repass_at
                } else {
                    u64::MAX
                };
                s.dfs();
                s.unmark_root();
                s.on_path[u as usize] = false;
                s.on_path[v as usize] = false;
                s.interrupt_at = u64::MAX;
                if s.interrupted {
                    // The same dependency again, after what is due (which may drop it).
                    s.interrupted = false;
                    s.stopped = false;
                    i -= 1;
                }
            }
            if d0s.is_empty() {
                // The first pass proved that no dependency of the edge closes a cycle.
                break;
            }
            if s.stopped && shortest.is_none() && !s.found.is_empty() {
                // Stopped in the round that found the edge's first cycles: the edge is a root
                // cause and these are its shortest cycles, but not all of them may be counted
                // (a 2-cycle taken by thousands of threads each way is that many squared
                // combinations, each a step). A count cut short, not a search: the round
                // stops at the examples' budget from its first cycle on (`find_budget`).
                shortest = Some(len);
                exhaustive = false;
                steps_at_shortest = s.found_at;
                break;
            }
            if s.stopped {
                if shortest.is_none() {
                    result.warnings.push(format!(
                        "{} search for a valid cycle through {} -> {} stopped after {} steps (--max-steps) while searching cycles of {len} {}; cycles of up to {} are complete; results may be incomplete",
                        level.name(),
                        node_name(model, level, u),
                        node_name(model, level, v),
                        limits.max_steps,
                        if level == GraphLevel::Instance { "locks" } else { "classes" },
                        len - 1,
                    ));
                } else {
                    exhaustive = false;
                }
                break;
            }
            if shortest.is_none() && !s.found.is_empty() {
                shortest = Some(len);
                // Further examples only count cycles: they run on their own small budget, and
                // all root causes of the level share a pool of 20 such budgets (a hostile graph
                // has thousands of root causes).
                steps_at_shortest = s.steps;
                s.budget = s.steps + limits.max_example_steps.min(example_pool);
                s.max_found = limits.max_examples + 1;
            }
            if !s.deep {
                // No valid chain of len - 1 dependencies: no longer cycle exists.
                break;
            }
        }
        for &x in &s.path {
            s.on_path[x as usize] = false;
        }
        result.steps += s.steps;
        total += s.steps + 1;
        if shortest.is_some() {
            example_pool = example_pool.saturating_sub(s.steps - steps_at_shortest);
        }
        if s.found.is_empty() {
            continue;
        }
        let mut found: Vec<Candidate> = s.order.iter().map(|k| s.found[k].clone()).collect();
        // The representative: among the shortest, the canonically smallest set of locks.
        let canon = |c: &Candidate| {
            let mut k: Vec<u64> = c.nodes.iter().map(|&n| rank(n)).collect();
            k.sort_unstable();
            (c.nodes.len(), k)
        };
        let best = (0..found.len())
            .min_by_key(|&i| canon(&found[i]))
            .expect("found is not empty");
        let representative = found.remove(best);
        let cycles = found.len() as u64 + 1;
        found.truncate(limits.max_examples as usize);
        causes.push(RootCause {
            level,
            edges: vec![(u, v)],
            representative,
            examples: found,
            cycles,
            cycles_exhaustive: exhaustive,
            combinations_exhaustive: exhaustive,
        });
    }
    let explore_covered = s.explore_covered;
    drop(s);
    // One root cause per representative cycle (grouped by its set of nodes); a symmetric
    // 2-cycle names both edges.
    let mut merged: Vec<RootCause> = Vec::new();
    let mut by_set: HashMap<Vec<u32>, usize> = HashMap::new();
    for c in causes {
        let set = sorted(&c.representative.nodes);
        match by_set.get(&set) {
            Some(&i) => {
                let m = &mut merged[i];
                m.edges.extend(c.edges);
                m.cycles = m.cycles.max(c.cycles);
                m.cycles_exhaustive &= c.cycles_exhaustive;
                m.combinations_exhaustive &= c.combinations_exhaustive;
            }
            None => {
                by_set.insert(set, merged.len());
                merged.push(c);
            }
        }
    }
    let weight = |a: u32, b: u32| graph.find(a, b).map(|e| weights.get(e)).filter(|&w| w > 0);
    let mut seen = Vec::new();
    for m in &mut merged {
        let n = &m.representative.nodes;
        if n.len() == 2 {
            let (a, b) = (n[0], n[1]);
            if weight(a, b) == weight(b, a) && !told_apart_by_a_path(graph, change, a, b, &mut seen)
            {
                for e in [(a, b), (b, a)] {
                    if !m.edges.contains(&e) {
                        m.edges.push(e);
                    }
                }
            }
        }
        m.edges.sort_unstable();
    }
    merged.sort_by_cached_key(|m| {
        let mut k: Vec<u64> = m.representative.nodes.iter().map(|&n| rank(n)).collect();
        k.sort_unstable();
        k
    });
    if std::env::var_os("LOCKCHECK_PHASES").is_some() {
        eprintln!(
            "lockcheck: {} root causes: epochs of {} clocks x {} threads ({}), flat held sets {}, successor lists of {} dependencies ({} entries), holders of {} nodes, {} explored ({} steps, {} stopped, {} ended once every held node was decided), first pass of {} dependencies ({} past its bound), pair pass of {} ({} past its bound), {} first passes run again ({} past their larger bound), {} changed edges proven without a valid cycle, {} root causes, {} steps",
            level.name(),
            model.clocks.len(),
            succ.epochs.threads,
            match &succ.epochs.table {
                EpochTable::Absent => "no table (beyond MAX_EPOCH_TABLE_ONE)",
                _ if matches!(succ.epochs.columns, EpochTable::Absent) => "one table, by clock",
                EpochTable::Narrow(_) => "16-bit table",
                EpochTable::Wide(_) => "32-bit table",
            },
            match succ.flat() {
                Some(f) => format!(
                    "{} ({} entries, {})",
                    f.starts.len() - 1,
                    f.starts.last().copied().unwrap_or(0),
                    match &f.bits {
                        Some(b) => format!("bitsets of {} words", b.len()),
                        None => "no bitsets (beyond MAX_FLAT_BIT_WORDS)".to_string(),
                    }
                ),
                None if shared.flat.get().is_some() => "none (beyond MAX_FLAT_ENTRIES)".to_string(),
                None => format!("not built ({} walks)", succ.walks),
            },
            shared.memo.len(),
            shared
                .memo
                .entries
                .load(std::sync::atomic::Ordering::Relaxed),
            shared.holders.iter().filter(|h| h.get().is_some()).count(),
            relaxed.explored,
            relaxed.explore_steps,
            relaxed.explore_stopped,
            explore_covered,
            relaxed.passes,
            relaxed.stopped,
            relaxed.pair_passes,
            relaxed.pair_stopped,
            relaxed.repasses,
            relaxed.repass_stopped,
            relaxed.skipped,
            merged.len(),
            result.steps
        );
    }
    result.root_causes = merged;
    result
}

/// Whether the rest of the graph tells the two edges of the 2-cycle `a <-> b` apart although
/// they weigh the same: the changed one of the two, `x -> y`, is also closed by a path
/// `y -> ... -> x` of edges the change set keeps (other than `y -> x` itself), so changing
/// `y -> x` instead would leave that cycle. Only then is the 2-cycle no symmetric pair: a
/// generator that takes the forward order both directly (as rarely as the inverted one) and
/// through a middle lock made one violation name both edges.
/// `seen` is scratch space, left all `false`.
fn told_apart_by_a_path(
    graph: &LockGraph,
    change: &ChangeSet,
    a: u32,
    b: u32,
    seen: &mut Vec<bool>,
) -> bool {
    let changed = |p: u32, q: u32| graph.find(p, q).is_some_and(|e| change.contains(e));
    let (x, y) = match (changed(a, b), changed(b, a)) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ => return false,
    };
    // Breadth-first from y to x over kept edges, skipping the direct edge y -> x.
    seen.resize(graph.nodes(), false);
    let mut queue = vec![y];
    seen[y as usize] = true;
    let mut found = false;
    let mut i = 0;
    'search: while let Some(&n) = queue.get(i) {
        i += 1;
        for e in graph.out_edges(n) {
            let t = graph.target(e);
            if change.contains(e) || (n == y && t == x) || seen[t as usize] {
                continue;
            }
            if t == x {
                found = true;
                break 'search;
            }
            seen[t as usize] = true;
            queue.push(t);
        }
    }
    for n in queue {
        seen[n as usize] = false;
    }
    found
}

/// The ranks by which [`change_set_on`] breaks ties at `level`: [`canonical_ranks`] of the
/// classes when every lock is its own class ([`crate::graph::classes_are_locks`]: the two levels
/// are one graph, so they get one change set, computed once), else those of `level`.
///
/// The class ranks (by key) are the ones for the shared change set: on a trace where a lock is
/// its own class (RAPID's formats, STD text) the instances are numbered in order of first sight,
/// so their ranks depend on how the threads interleave, and the keys (the locks' names) do not.
pub fn change_set_ranks(model: &Model, level: GraphLevel) -> Vec<u64> {
    if crate::graph::classes_are_locks(model) {
        canonical_ranks(model, GraphLevel::Class)
    } else {
        canonical_ranks(model, level)
    }
}

/// A rank per node of `level` (index: lock id or class id) that does not depend on the order of
/// first appearance: instances by (trace, number in the trace), classes by key.
pub fn canonical_ranks(model: &Model, level: GraphLevel) -> Vec<u64> {
    let mut order: Vec<u32> = match level {
        GraphLevel::Instance => (0..model.locks.len() as u32).collect(),
        GraphLevel::Class => (0..model.classes.len() as u32).collect(),
    };
    match level {
        GraphLevel::Instance => order.sort_by_key(|&l| {
            let i = &model.locks[l as usize];
            (i.trace, i.local, l)
        }),
        GraphLevel::Class => order.sort_by(|&a, &b| {
            (&model.classes[a as usize].key, a).cmp(&(&model.classes[b as usize].key, b))
        }),
    }
    let mut ranks = vec![0u64; order.len()];
    for (r, &n) in order.iter().enumerate() {
        ranks[n as usize] = r as u64;
    }
    ranks
}

/// A display name of a node of `level`.
pub fn node_name(model: &Model, level: GraphLevel, n: u32) -> String {
    match level {
        GraphLevel::Instance => model.lock_name(n),
        GraphLevel::Class => model
            .classes
            .get(n as usize)
            .map(|c| c.key.clone())
            .unwrap_or_else(|| format!("?{n}")),
    }
}
