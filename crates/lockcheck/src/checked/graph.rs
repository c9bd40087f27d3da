//! The global lock-order graph, at instance and class level, and the constrained cycle search.
//!
//! Only cache misses of the per-thread fast path come here: a dependency (thread, lock, mode, held
//! set, vector clock) never seen before. Each level keeps a Pearce–Kelly topological order of its
//! edges; an edge that agrees with the order, while no edge ever closed a cycle, cannot be on a
//! cycle and costs O(1). Otherwise a depth-first search looks for a cycle through the new
//! dependency whose dependencies pass the iGoodLock rules pairwise (distinct threads, no common
//! gate lock, not ordered by spawn/join, conflicting modes), pruning as soon as a pair fails.

use super::class::NO_CLASS;
use super::report::{EdgeInfo, LockRef, Violation, ViolationKind};
use super::state::Held;
use backtrace::Backtrace;
use lockcheck_core::deps::{check_link, check_pair, Dependency, VectorClock};
use lockcheck_core::order::{NodeId, OrderGraph};
use lockcheck_core::trace::{How, Mode};
use parking_lot::Mutex as PlMutex;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::panic::Location;
use std::sync::Arc;

/// Dependency variants kept per edge. Variants differ by thread, held set or clock; a cycle needs
/// one variant per edge that is compatible with the others, so a few diverse ones are enough.
const MAX_VARIANTS: usize = 16;
/// Steps of one cycle search before it gives up (and says so once).
const SEARCH_BUDGET: usize = 200_000;
/// Longest cycle searched for.
const MAX_CYCLE: usize = 12;

/// One observed dependency with what a report needs.
#[derive(Debug)]
pub(crate) struct DepRecord {
    pub dep: Dependency<u64>,
    pub thread_name: String,
    pub lock_class: u32,
    pub held_classes: Vec<u32>,
    pub site: &'static Location<'static>,
    pub held_sites: Vec<&'static Location<'static>>,
    pub backtrace: Option<Backtrace>,
}

struct Level<K> {
    node_of: HashMap<K, NodeId>,
    key_of: Vec<Option<K>>,
    out: Vec<Vec<NodeId>>,
    inn: Vec<Vec<NodeId>>,
    edges: HashMap<(NodeId, NodeId), Vec<Arc<DepRecord>>>,
    order: OrderGraph,
    /// Edges refused by the order because they close a cycle.
    back: HashSet<(NodeId, NodeId)>,
}

impl<K: Copy + Eq + Hash> Level<K> {
    fn new() -> Self {
        Level {
            node_of: HashMap::new(),
            key_of: Vec::new(),
            out: Vec::new(),
            inn: Vec::new(),
            edges: HashMap::new(),
            order: OrderGraph::new(),
            back: HashSet::new(),
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
        for m in std::mem::take(&mut self.out[n as usize]) {
            self.edges.remove(&(n, m));
            self.back.remove(&(n, m));
            self.inn[m as usize].retain(|&x| x != n);
        }
        for p in std::mem::take(&mut self.inn[n as usize]) {
            self.edges.remove(&(p, n));
            self.back.remove(&(p, n));
            self.out[p as usize].retain(|&x| x != n);
        }
        self.order.remove_node(n);
        self.key_of[n as usize] = None;
    }

    /// Whether the edge between these keys exists.
    fn has_edge(&self, a: K, b: K) -> bool {
        match (self.node_of.get(&a), self.node_of.get(&b)) {
            (Some(&x), Some(&y)) => self.edges.contains_key(&(x, y)),
            _ => false,
        }
    }

    /// Adds `dep` as a variant of `a -> b`. Returns whether it is new (worth a cycle search).
    fn add(&mut self, a: NodeId, b: NodeId, dep: &Arc<DepRecord>) -> bool {
        let variants = self.edges.entry((a, b)).or_default();
        if variants.is_empty() {
            self.out[a as usize].push(b);
            self.inn[b as usize].push(a);
            if self.order.add_edge(a, b).is_some() {
                self.back.insert((a, b));
            }
        }
        if variants.len() >= MAX_VARIANTS || variants.iter().any(|v| subsumes(v, dep)) {
            return false;
        }
        variants.push(Arc::clone(dep));
        true
    }

    /// Whether `a -> b` might lie on a cycle: false only if it agrees with a topological order of
    /// a graph that never had a cycle-closing edge.
    fn maybe_cyclic(&self) -> bool {
        !self.back.is_empty()
    }
}

/// Whether an existing variant makes a new one redundant for every cycle the new one could be in.
fn subsumes(old: &DepRecord, new: &DepRecord) -> bool {
    old.dep.thread == new.dep.thread
        && old.dep.mode == new.dep.mode
        && old.dep.clock == new.dep.clock
        && old.dep.held.iter().all(|h| new.dep.held.contains(h))
}

struct Graph {
    inst: Level<u64>,
    class: Level<u32>,
    written_inst: HashSet<u64>,
    written_class: HashSet<u32>,
    reported_sites: HashSet<Vec<(usize, u32, u32)>>,
    reported_classes: HashSet<Vec<u32>>,
    budget_warned: bool,
}

static GRAPH: PlMutex<Option<Graph>> = PlMutex::new(None);

fn with_graph<R>(f: impl FnOnce(&mut Graph) -> R) -> R {
    let mut g = GRAPH.lock();
    let g = g.get_or_insert_with(|| Graph {
        inst: Level::new(),
        class: Level::new(),
        written_inst: HashSet::new(),
        written_class: HashSet::new(),
        reported_sites: HashSet::new(),
        reported_classes: HashSet::new(),
        budget_warned: false,
    });
    f(g)
}

/// What the fast path hands over on a cache miss.
pub(crate) struct Request<'a> {
    pub thread: u64,
    pub inst: u64,
    pub class: u32,
    pub mode: Mode,
    pub site: &'static Location<'static>,
    pub held: &'a [Held],
    pub clock: VectorClock,
}

/// Records a dependency and returns a violation if it closes a feasible cycle not reported before.
pub(crate) fn add_dependency(req: Request<'_>) -> Option<Violation> {
    let held: Vec<&Held> = req.held.iter().filter(|h| h.inst != req.inst).collect();
    if held.is_empty() {
        return None;
    }
    // Backtraces are what a new edge costs: capture one only if some edge of this dependency,
    // at either level, has never been seen (checked under the lock, captured outside it).
    let new_edge = crate::config::backtraces()
        && with_graph(|g| {
            held.iter().any(|h| !g.inst.has_edge(h.inst, req.inst))
                || (req.class != NO_CLASS
                    && held.iter().any(|h| {
                        h.class != req.class
                            && h.class != NO_CLASS
                            && !g.class.has_edge(h.class, req.class)
                    }))
        });
    let backtrace = new_edge.then(Backtrace::new_unresolved);
    let rec = Arc::new(DepRecord {
        dep: Dependency {
            thread: req.thread,
            lock: req.inst,
            mode: req.mode,
            how: How::Blocking,
            held: held.iter().map(|h| (h.inst, h.mode)).collect(),
            clock: req.clock,
        },
        thread_name: super::state::thread_name(req.thread),
        lock_class: req.class,
        held_classes: held.iter().map(|h| h.class).collect(),
        site: req.site,
        held_sites: held.iter().map(|h| h.site).collect(),
        backtrace,
    });
    with_graph(|g| {
        // Instance level.
        let b = g.inst.node(req.inst);
        let mut found = None;
        for h in &held {
            let a = g.inst.node(h.inst);
            if g.inst.add(a, b, &rec) && g.inst.maybe_cyclic() && found.is_none() {
                let written = &g.written_inst;
                let link = |req: &DepRecord, holder: &DepRecord| {
                    let w = req.dep.mode == Mode::Exclusive || written.contains(&req.dep.lock);
                    check_link(&req.dep, &holder.dep, w).is_ok()
                };
                let (cycle, exhausted) = search(&g.inst, a, b, &rec, &link);
                if exhausted {
                    warn_budget(&mut g.budget_warned);
                }
                if let Some(c) = cycle {
                    found = Some(c);
                }
            }
        }
        if let Some(cycle) = found {
            if let Some(v) = g.violation(cycle, false) {
                return Some(v);
            }
        }
        // Class level (same-class nesting is left to the instance level).
        if req.class == NO_CLASS {
            return None;
        }
        let b = g.class.node(req.class);
        let mut found = None;
        for h in &held {
            if h.class == req.class || h.class == NO_CLASS {
                continue;
            }
            let a = g.class.node(h.class);
            if g.class.add(a, b, &rec) && g.class.maybe_cyclic() && found.is_none() {
                let written = &g.written_class;
                let link = |req: &DepRecord, holder: &DepRecord| class_link(req, holder, written);
                let (cycle, exhausted) = search(&g.class, a, b, &rec, &link);
                if exhausted {
                    warn_budget(&mut g.budget_warned);
                }
                found = cycle;
            }
        }
        found.and_then(|cycle| g.violation(cycle, true))
    })
}

fn warn_budget(warned: &mut bool) {
    if !std::mem::replace(warned, true) {
        eprintln!(
            "lockcheck: a cycle search stopped after {SEARCH_BUDGET} steps; the lock graph is \
             very dense and some inversions may go unreported online (run `lockcheck analyze`)"
        );
    }
}

/// At class level, `req` requests some instance of its class; the link holds if `holder` holds an
/// instance of that class in a mode the request conflicts with.
fn class_link(req: &DepRecord, holder: &DepRecord, written: &HashSet<u32>) -> bool {
    let w = req.dep.mode == Mode::Exclusive || written.contains(&req.lock_class);
    holder
        .held_classes
        .iter()
        .zip(&holder.dep.held)
        .any(|(&c, &(_, m))| c == req.lock_class && req.dep.mode.conflicts_with(m, w))
}

type Link<'a> = dyn Fn(&DepRecord, &DepRecord) -> bool + 'a;

/// Looks for a feasible cycle through the new variant `first` of edge `a -> b`: a path from `b`
/// back to `a`. Returns the cycle's dependencies in order (`first` first) and whether the budget ran out.
fn search<K>(
    level: &Level<K>,
    a: NodeId,
    b: NodeId,
    first: &Arc<DepRecord>,
    link: &Link<'_>,
) -> (Option<Vec<Arc<DepRecord>>>, bool) {
    let mut chosen = vec![Arc::clone(first)];
    let mut on_path = vec![a, b];
    let mut steps = 0usize;
    let found = dfs(level, a, b, link, &mut chosen, &mut on_path, &mut steps);
    (found.then_some(chosen), steps >= SEARCH_BUDGET)
}

fn dfs<K>(
    level: &Level<K>,
    target: NodeId,
    x: NodeId,
    link: &Link<'_>,
    chosen: &mut Vec<Arc<DepRecord>>,
    on_path: &mut Vec<NodeId>,
    steps: &mut usize,
) -> bool {
    if chosen.len() >= MAX_CYCLE {
        return false;
    }
    for &y in &level.out[x as usize] {
        if y != target && on_path.contains(&y) {
            continue;
        }
        let Some(variants) = level.edges.get(&(x, y)) else {
            continue;
        };
        for v in variants {
            *steps += 1;
            if *steps >= SEARCH_BUDGET {
                return false;
            }
            let prev = chosen.last().expect("chosen starts non-empty");
            if !link(prev, v) || chosen.iter().any(|c| check_pair(&c.dep, &v.dep).is_err()) {
                continue;
            }
            if y == target {
                if link(v, &chosen[0]) {
                    chosen.push(Arc::clone(v));
                    return true;
                }
                continue;
            }
            chosen.push(Arc::clone(v));
            on_path.push(y);
            if dfs(level, target, y, link, chosen, on_path, steps) {
                return true;
            }
            on_path.pop();
            chosen.pop();
        }
    }
    false
}

impl Graph {
    /// Turns a feasible cycle into a violation, unless the same bug was reported already.
    fn violation(&mut self, cycle: Vec<Arc<DepRecord>>, class_level: bool) -> Option<Violation> {
        let mut sites: Vec<(usize, u32, u32)> = cycle
            .iter()
            .map(|d| {
                (
                    d.site.file().as_ptr() as usize,
                    d.site.line(),
                    d.site.column(),
                )
            })
            .collect();
        sites.sort_unstable();
        let mut classes: Vec<u32> = cycle.iter().map(|d| d.lock_class).collect();
        classes.sort_unstable();
        classes.dedup();
        if self.reported_sites.contains(&sites)
            || (class_level && self.reported_classes.contains(&classes))
        {
            return None;
        }
        self.reported_sites.insert(sites);
        self.reported_classes.insert(classes);
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
                    (j, d.dep.held[j].0)
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
                    thread: d.thread_name.clone(),
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
                        .map(|(j, h)| LockRef::new(h.0, d.held_classes[j]))
                        .collect(),
                    backtrace: d.backtrace.clone(),
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

/// Notes that an RwLock instance (and its class) was write-locked.
pub(crate) fn note_written(inst: u64, class: u32) {
    with_graph(|g| {
        g.written_inst.insert(inst);
        g.written_class.insert(class);
    });
}

/// Removes a dropped instance and its edges from the instance graph.
pub(crate) fn forget_instance(inst: u64) {
    with_graph(|g| {
        g.inst.remove(inst);
        g.written_inst.remove(&inst);
    });
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
