//! Cycle search over the lock graph, at instance or class level, with the iGoodLock filters applied
//! during the search.
//!
//! The graph has one node per lock (or class) and an edge `h -> l` labelled by every dependency
//! that requested `l` while holding `h`. Strongly connected components (Tarjan, petgraph) bound the
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

use crate::model::{Dep, LockId, Model};
use lockcheck_core::deps::{check_blocking, check_link, check_pair, DepView, Infeasible};
use petgraph::algo::tarjan_scc;
/// Maps over nodes and edges of the lock graphs, looked up in the inner loops of the searches.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A directed graph map hashed with foldhash: the lock graphs have up to millions of edges, and
/// SipHash was most of the time of building them.
pub(crate) type DiGraphMap<N, E> =
    petgraph::graphmap::GraphMap<N, E, petgraph::Directed, foldhash::fast::RandomState>;
use std::collections::HashMap;

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
    /// shortest valid cycle).
    pub max_steps: u64,
    /// Work (extension steps and graph traversal) of all root-cause searches of one level
    /// together: on a hostile trace whose graph is nearly complete, most edges are root causes.
    pub max_total_steps: u64,
    /// Extension steps spent following infeasible branches (to name their filter), per component.
    pub max_filtered_steps: u64,
    /// Filtered candidates listed per level (the rest are not searched for).
    pub max_listed: u64,
    /// Further example cycles kept per root cause (beyond the shortest one).
    pub max_examples: u64,
    /// Extension steps spent per root cause looking for further examples once its shortest
    /// valid cycle is known (only the count of cycles it closes depends on it).
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

/// The lock graph of one level: `(held node, acquired node)` -> indices of the dependencies
/// making the edge (see [`edges`]).
pub type EdgeMap = HashMap<(u32, u32), Vec<u32>, foldhash::fast::RandomState>;

/// The lock graph of one level: edges labelled by dependency indices.
pub fn edges(model: &Model, level: GraphLevel) -> EdgeMap {
    let mut edges: EdgeMap = EdgeMap::default();
    let mut froms: Vec<u32> = Vec::new();
    for (i, rec) in model.deps.iter().enumerate() {
        let to = node_of(model, level, rec.lock);
        froms.clear();
        for (h, _) in model.held(rec.held) {
            let from = node_of(model, level, h);
            if from != to && !froms.contains(&from) {
                froms.push(from);
                edges.entry((from, to)).or_default().push(i as u32);
            }
        }
    }
    edges
}

type Key = (Vec<u32>, Option<&'static str>);

struct Search<'a> {
    model: &'a Model,
    level: GraphLevel,
    nodes: Vec<u32>,
    adj: Vec<Vec<(usize, &'a [u32])>>,
    radj: Vec<Vec<usize>>,
    start: usize,
    /// Cycle length (edges) searched in this round of the iterative deepening.
    len: usize,
    /// Shortest distance from each node to `start` (over nodes >= start), `u32::MAX` if none.
    dist: Vec<u32>,
    on_path: Vec<bool>,
    path: Vec<usize>,
    chain: Vec<u32>,
    limits: SearchLimits,
    steps: u64,
    filtered_steps: u64,
    found: u64,
    stopped: bool,
    filtered_truncated: bool,
    /// Filtered candidates listed so far at this level.
    listed: u64,
    out: &'a mut HashMap<Key, Candidate>,
}

impl Search<'_> {
    fn dep(&self, i: u32) -> Dep<'_> {
        self.model.dep(i)
    }

    fn link(&self, d: &Dep<'_>, next: &Dep<'_>) -> Result<(), Infeasible<LockId>> {
        match self.level {
            GraphLevel::Instance => {
                check_link(d, next, self.model.locks[d.lock() as usize].ever_written)
            }
            GraphLevel::Class => {
                // `next` holds some instance of the class `d` requests; at class level that
                // instance stands for `d.lock`, so the mode rule is the same as check_link's.
                let c = self.model.locks[d.lock() as usize].class;
                let ever_written = self.model.classes[c as usize].ever_written;
                let conflicts = next.held().any(|(h, m)| {
                    self.model.locks[h as usize].class == c
                        && d.mode().conflicts_with(m, ever_written)
                });
                if conflicts {
                    Ok(())
                } else {
                    Err(Infeasible::ReadRead { lock: d.lock() })
                }
            }
        }
    }

    fn dfs(&mut self, node: usize, failure: Option<Infeasible<LockId>>) {
        for k in 0..self.adj[node].len() {
            let (v, deps) = self.adj[node][k];
            let depth = self.chain.len() + 1;
            if v == self.start {
                if depth != self.len {
                    continue;
                }
            } else if v < self.start
                || self.on_path[v]
                || depth as u64 + self.dist[v] as u64 > self.len as u64
            {
                continue;
            }
            for &di in deps {
                if self.stopped {
                    return;
                }
                self.steps += 1;
                if self.steps > self.limits.max_steps {
                    self.stopped = true;
                    return;
                }
                let d = self.dep(di);
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
                for &c in &self.chain {
                    if let Err(e) = check_pair(&self.dep(c), &d) {
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
                    self.filtered_steps += 1;
                    if self.filtered_steps > self.limits.max_filtered_steps {
                        self.filtered_truncated = true;
                        continue;
                    }
                }
                self.on_path[v] = true;
                self.path.push(v);
                self.chain.push(di);
                self.dfs(v, f);
                self.chain.pop();
                self.path.pop();
                self.on_path[v] = false;
            }
        }
    }

    /// Reverse BFS from `start` over nodes `>= start`, at most `self.len` deep.
    fn distances(&mut self) {
        self.dist.iter_mut().for_each(|d| *d = u32::MAX);
        self.dist[self.start] = 0;
        let mut frontier = vec![self.start];
        let mut depth = 0u32;
        while !frontier.is_empty() && (depth as usize) < self.len {
            depth += 1;
            let mut next = Vec::new();
            for &u in &frontier {
                for &w in &self.radj[u] {
                    if w > self.start && self.dist[w] == u32::MAX {
                        self.dist[w] = depth;
                        next.push(w);
                    }
                }
            }
            frontier = next;
        }
    }

    fn record(&mut self, last: u32, f: Option<Infeasible<LockId>>) {
        let mut nodes: Vec<u32> = self.path.iter().map(|&p| self.nodes[p]).collect();
        let mut set = nodes.clone();
        set.sort_unstable();
        let filter = f.as_ref().map(|e| e.filter_name());
        let key = (set, filter);
        if let Some(c) = self.out.get_mut(&key) {
            // Another dependency combination of a known candidate: counted, costs only steps.
            c.combinations += 1;
            return;
        }
        if self.found >= self.limits.max_cycles {
            self.stopped = true;
            return;
        }
        self.found += 1;
        if filter.is_some() {
            if self.listed >= self.limits.max_listed {
                self.filtered_truncated = true;
                return;
            }
            self.listed += 1;
        }
        let entry = self.out.entry(key);
        entry
            .and_modify(|c| c.combinations += 1)
            .or_insert_with(|| {
                let mut deps = self.chain.clone();
                deps.push(last);
                nodes.truncate(deps.len());
                let reason = match &f {
                    Some(e) => describe(self.model, e),
                    None => String::new(),
                };
                Candidate {
                    level: self.level,
                    nodes,
                    deps,
                    filter,
                    reason,
                    combinations: 1,
                }
            });
    }
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
        Infeasible::ReadRead { lock } => {
            format!(
                "{} is only ever read-locked: readers do not block readers",
                model.lock_name(*lock)
            )
        }
        other => other.to_string(),
    }
}

/// Finds the candidates of one level.
pub fn find_cycles(model: &Model, level: GraphLevel, limits: &SearchLimits) -> LevelResult {
    find_cycles_on(model, level, &edges(model, level), limits)
}

/// [`find_cycles`] on the level's graph computed once by the caller ([`edges`]).
pub fn find_cycles_on(
    model: &Model,
    level: GraphLevel,
    edges: &EdgeMap,
    limits: &SearchLimits,
) -> LevelResult {
    let mut graph: DiGraphMap<u32, ()> = DiGraphMap::default();
    for &(a, b) in edges.keys() {
        graph.add_edge(a, b, ());
    }
    let mut out: HashMap<Key, Candidate> = HashMap::new();
    let mut result = LevelResult::default();
    let mut sccs = tarjan_scc(&graph);
    for scc in &mut sccs {
        scc.sort_unstable();
    }
    sccs.sort();
    for scc in sccs.iter().filter(|s| s.len() > 1) {
        let index: FastMap<u32, usize> = scc.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let mut adj: Vec<Vec<(usize, &[u32])>> = vec![Vec::new(); scc.len()];
        let mut radj: Vec<Vec<usize>> = vec![Vec::new(); scc.len()];
        // Distinct threads of the component, as a bitmap over global thread ids.
        let mut seen_thread = vec![false; model.threads.len()];
        let mut threads = 0usize;
        for (i, &n) in scc.iter().enumerate() {
            let mut succ: Vec<u32> = graph
                .neighbors(n)
                .filter(|m| index.contains_key(m))
                .collect();
            succ.sort_unstable();
            for m in succ {
                let deps = edges[&(n, m)].as_slice();
                for &d in deps {
                    let t = model.deps[d as usize].thread as usize;
                    if let Some(seen) = seen_thread.get_mut(t) {
                        if !*seen {
                            *seen = true;
                            threads += 1;
                        }
                    }
                }
                adj[i].push((index[&m], deps));
                radj[index[&m]].push(i);
            }
        }
        // A chain has one dependency per distinct thread: no cycle is longer than that.
        let max_len = threads.min(scc.len());
        let mut s = Search {
            model,
            level,
            nodes: scc.clone(),
            adj,
            radj,
            start: 0,
            len: 2,
            dist: vec![u32::MAX; scc.len()],
            on_path: vec![false; scc.len()],
            path: Vec::new(),
            chain: Vec::new(),
            limits: *limits,
            steps: 0,
            filtered_steps: 0,
            found: 0,
            stopped: false,
            filtered_truncated: false,
            listed: out.keys().filter(|k| k.1.is_some()).count() as u64,
            out: &mut out,
        };
        // Iterative deepening: all cycles of 2 locks first, then 3, ... so that when a bound
        // is hit, the short cycles (the common bugs) are complete.
        'lengths: for len in 2..=max_len {
            s.len = len;
            for start in 0..scc.len() {
                s.start = start;
                s.distances();
                s.on_path[start] = true;
                s.path.push(start);
                s.dfs(start, None);
                s.path.pop();
                s.on_path[start] = false;
                if s.stopped {
                    break 'lengths;
                }
            }
        }
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
                "the {} listing of filtered candidates in a component of {} nodes is incomplete (at most {} listed, {} steps on filtered branches)",
                level.name(),
                scc.len(),
                limits.max_listed,
                limits.max_filtered_steps
            ));
        }
    }
    same_thread_cycles(model, level, edges, limits, &mut out, &mut result);
    let mut cands: Vec<Candidate> = out.into_values().collect();
    cands.sort_by(|a, b| {
        let order = |f: Option<&str>| {
            f.map_or(0, |f| {
                1 + crate::report::FILTER_ORDER
                    .iter()
                    .position(|&x| x == f)
                    .unwrap_or(9)
            })
        };
        let ka = (order(a.filter), sorted(&a.nodes));
        let kb = (order(b.filter), sorted(&b.nodes));
        ka.cmp(&kb)
    });
    result.candidates = cands;
    result
}

fn sorted(v: &[u32]) -> Vec<u32> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v
}

/// The longest same-thread cycle listed (an inconsistent order inside one thread is almost always
/// between two or three locks; longer ones would only repeat them).
pub const MAX_SAME_THREAD_LEN: usize = 4;

/// Lock cycles made by one thread alone: never a chain of distinct threads, listed as
/// `same-thread` (up to [`MAX_SAME_THREAD_LEN`] locks) unless their node set is already a candidate.
fn same_thread_cycles(
    model: &Model,
    level: GraphLevel,
    edges: &EdgeMap,
    limits: &SearchLimits,
    out: &mut HashMap<Key, Candidate>,
    result: &mut LevelResult,
) {
    let covered: std::collections::HashSet<Vec<u32>> = out.keys().map(|k| k.0.clone()).collect();
    let mut listed = out.keys().filter(|k| k.1.is_some()).count() as u64;
    // Per thread: its own edges, each with one witness dependency.
    type Fast<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
    let mut per_thread: Fast<u64, Fast<(u32, u32), u32>> = Fast::default();
    for (&(a, b), deps) in edges {
        for &d in deps {
            let t = model.deps[d as usize].thread as u64;
            per_thread.entry(t).or_default().entry((a, b)).or_insert(d);
        }
    }
    let mut threads: Vec<u64> = per_thread.keys().copied().collect();
    threads.sort_unstable();
    let budget = limits.max_filtered_steps;
    let mut truncated = false;
    'threads: for t in threads {
        let te = &per_thread[&t];
        let mut graph: DiGraphMap<u32, ()> = DiGraphMap::default();
        for &(a, b) in te.keys() {
            graph.add_edge(a, b, ());
        }
        let mut steps = 0u64;
        let mut sccs: Vec<Vec<u32>> = tarjan_scc(&graph)
            .into_iter()
            .filter(|s| s.len() > 1)
            .collect();
        for scc in &mut sccs {
            scc.sort_unstable();
        }
        sccs.sort();
        for scc in sccs {
            let index: FastMap<u32, usize> = scc.iter().enumerate().map(|(i, &n)| (n, i)).collect();
            let mut adj: Vec<Vec<usize>> = vec![Vec::new(); scc.len()];
            let mut radj: Vec<Vec<usize>> = vec![Vec::new(); scc.len()];
            for (i, &n) in scc.iter().enumerate() {
                for m in graph.neighbors(n) {
                    if let Some(&j) = index.get(&m) {
                        adj[i].push(j);
                        radj[j].push(i);
                    }
                }
                adj[i].sort_unstable();
            }
            let mut dist = vec![u32::MAX; scc.len()];
            let mut on_path = vec![false; scc.len()];
            for start in 0..scc.len() {
                // Distances to `start` over nodes above it, for pruning.
                dist.iter_mut().for_each(|d| *d = u32::MAX);
                dist[start] = 0;
                let mut frontier = vec![start];
                for depth in 1..MAX_SAME_THREAD_LEN as u32 {
                    let mut next = Vec::new();
                    for &u in &frontier {
                        for &w in &radj[u] {
                            if w > start && dist[w] == u32::MAX {
                                dist[w] = depth;
                                next.push(w);
                            }
                        }
                    }
                    frontier = next;
                }
                let mut path = vec![start];
                on_path[start] = true;
                // Iterative DFS: (node, next successor index).
                let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
                while let Some(&mut (u, ref mut k)) = stack.last_mut() {
                    if *k >= adj[u].len() {
                        stack.pop();
                        path.pop();
                        on_path[u] = false;
                        continue;
                    }
                    let v = adj[u][*k];
                    *k += 1;
                    steps += 1;
                    if steps > budget {
                        truncated = true;
                        for &p in &path {
                            on_path[p] = false;
                        }
                        continue 'threads;
                    }
                    if v == start {
                        let nodes: Vec<u32> = path.iter().map(|&p| scc[p]).collect();
                        let set = sorted(&nodes);
                        if covered.contains(&set) {
                            continue;
                        }
                        let key = (set, Some("same-thread"));
                        if let Some(c) = out.get_mut(&key) {
                            c.combinations += 1;
                            continue;
                        }
                        if listed >= limits.max_listed {
                            truncated = true;
                            continue;
                        }
                        listed += 1;
                        let deps: Vec<u32> = (0..nodes.len())
                            .map(|i| te[&(nodes[i], nodes[(i + 1) % nodes.len()])])
                            .collect();
                        let reason = describe(model, &Infeasible::SameThread { thread: t });
                        out.insert(
                            key,
                            Candidate {
                                level,
                                nodes,
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
                        stack.push((v, 0));
                    }
                }
            }
        }
    }
    if truncated {
        result.notes.push(format!(
            "the {} listing of same-thread candidates is incomplete (at most {} listed, {} steps per thread)",
            level.name(),
            limits.max_listed,
            budget
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::model_of;

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
        assert_eq!(r.change_set, vec![(2, 0)]);
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
}

/// What [`find_root_causes`] found at one level.
#[derive(Debug, Clone, Default)]
pub struct RootCauseResult {
    /// Root causes with a valid cycle, by their first edge.
    pub root_causes: Vec<RootCause>,
    /// The change set: every edge the smallest weighted feedback arc set removes.
    pub change_set: Vec<(u32, u32)>,
    /// Limits hit that may hide a violation, each naming the option that raises it.
    pub warnings: Vec<String>,
    /// Limits hit that do not change a verdict.
    pub notes: Vec<String>,
    /// Extension steps spent.
    pub steps: u64,
}

/// The edge weights used to pick the change set: how many blocking or timed acquisitions made
/// each edge (`try_*` acquisitions cannot wait, so they need no order).
pub fn edge_weights(model: &Model, edges: &EdgeMap) -> HashMap<(u32, u32), u64> {
    edges
        .iter()
        .filter_map(|(&e, deps)| {
            let w: u64 = deps
                .iter()
                .map(|&d| &model.deps[d as usize])
                .filter(|r| r.how != lockcheck_core::trace::How::Try)
                .map(|r| r.count)
                .sum();
            (w > 0).then_some((e, w))
        })
        .collect()
}

/// The smallest weighted change set of a weighted graph: per strongly connected component,
/// the backward edges of [`crate::hierarchy::min_fas_order`]. Returns the edges and the number of
/// components where the local search stopped before converging.
pub fn change_set(weights: &HashMap<(u32, u32), u64>) -> (Vec<(u32, u32)>, u64) {
    change_set_ranked(weights, &|n| n as u64)
}

/// [`change_set`], breaking ties by `rank` of the nodes instead of their ids: with
/// [`canonical_ranks`], the result does not depend on the order in which the trace's events
/// interleave (ids are given in order of first appearance).
pub fn change_set_ranked(
    weights: &HashMap<(u32, u32), u64>,
    rank: &dyn Fn(u32) -> u64,
) -> (Vec<(u32, u32)>, u64) {
    let mut graph: DiGraphMap<u32, u64> = DiGraphMap::default();
    let mut keys: Vec<_> = weights.iter().collect();
    keys.sort_unstable();
    for (&(a, b), &w) in keys {
        graph.add_edge(a, b, w);
    }
    let mut out = Vec::new();
    let mut stopped = 0;
    for mut scc in tarjan_scc(&graph).into_iter().filter(|s| s.len() > 1) {
        scc.sort_unstable_by_key(|&n| (rank(n), n));
        let index: FastMap<u32, usize> = scc.iter().enumerate().map(|(i, &c)| (c, i)).collect();
        let mut es: Vec<(usize, usize, u64)> = Vec::new();
        for &c in &scc {
            for (_, m, &w) in graph.edges(c) {
                if let Some(&j) = index.get(&m) {
                    es.push((index[&c], j, w));
                }
            }
        }
        es.sort_unstable();
        let (order, converged) = crate::hierarchy::min_fas_order(scc.len(), &es);
        if !converged {
            stopped += 1;
        }
        let mut pos = vec![0usize; scc.len()];
        for (p, &v) in order.iter().enumerate() {
            pos[v] = p;
        }
        for &(a, b, _) in &es {
            if pos[a] > pos[b] {
                out.push((scc[a], scc[b]));
            }
        }
    }
    out.sort_unstable();
    (out, stopped)
}

/// Depth-first search for valid cycles through one edge `u -> v`: chains of dependencies from
/// pairwise distinct threads that pass every feasibility rule, by increasing length.
struct EdgeSearch<'a> {
    model: &'a Model,
    level: GraphLevel,
    /// Successors with the dependencies on each edge (over the whole level graph).
    adj: &'a FastMap<u32, Vec<(u32, &'a [u32])>>,
    /// The edge's tail: the cycle closes when the path comes back here.
    u: u32,
    /// Shortest distance (edges) from each node to `u` (indexed by node, `u32::MAX`: none).
    dist: Vec<u32>,
    len: usize,
    path: Vec<u32>,
    chain: Vec<u32>,
    steps: u64,
    budget: u64,
    stopped: bool,
    /// Valid cycles found: sorted node set -> candidate.
    found: HashMap<Vec<u32>, Candidate>,
    order: Vec<Vec<u32>>,
    max_found: u64,
}

impl EdgeSearch<'_> {
    fn dep(&self, i: u32) -> Dep<'_> {
        self.model.dep(i)
    }

    fn link_ok(&self, d: &Dep<'_>, next: &Dep<'_>) -> bool {
        match self.level {
            GraphLevel::Instance => {
                check_link(d, next, self.model.locks[d.lock() as usize].ever_written).is_ok()
            }
            GraphLevel::Class => {
                let c = self.model.locks[d.lock() as usize].class;
                let ever_written = self.model.classes[c as usize].ever_written;
                next.held().any(|(h, m)| {
                    self.model.locks[h as usize].class == c
                        && d.mode().conflicts_with(m, ever_written)
                })
            }
        }
    }

    /// Whether `d` can extend the chain (everything but the closing link).
    fn fits(&self, d: &Dep<'_>) -> bool {
        if check_blocking(d).is_err() {
            return false;
        }
        for &c in &self.chain {
            let c = self.dep(c);
            if c.thread() == d.thread() || check_pair(&c, d).is_err() {
                return false;
            }
        }
        match self.chain.last() {
            Some(&last) => self.link_ok(&self.dep(last), d),
            None => true,
        }
    }

    fn dfs(&mut self, x: u32) {
        let Some(succ) = self.adj.get(&x) else {
            return;
        };
        for &(y, deps) in succ {
            let depth = self.chain.len() + 1;
            if y == self.u {
                if depth != self.len {
                    continue;
                }
            } else {
                let d = self.dist[y as usize];
                if d == u32::MAX || depth + d as usize > self.len {
                    continue;
                }
                if self.path.contains(&y) {
                    continue;
                }
            }
            for &di in deps {
                if self.stopped {
                    return;
                }
                self.steps += 1;
                if self.steps > self.budget {
                    self.stopped = true;
                    return;
                }
                let d = self.dep(di);
                if !self.fits(&d) {
                    continue;
                }
                if y == self.u {
                    if !self.link_ok(&d, &self.dep(self.chain[0])) {
                        continue;
                    }
                    self.record(di);
                    if self.found.len() as u64 >= self.max_found {
                        self.stopped = true;
                        return;
                    }
                    continue;
                }
                self.path.push(y);
                self.chain.push(di);
                self.dfs(y);
                self.chain.pop();
                self.path.pop();
            }
        }
    }

    fn record(&mut self, last: u32) {
        let mut set = self.path.clone();
        set.sort_unstable();
        if let Some(c) = self.found.get_mut(&set) {
            c.combinations += 1;
            return;
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

/// Finds the root causes of one level: the smallest weighted change set of its lock graph
/// ([`change_set`]), then for each changed edge the shortest valid cycle through it (every
/// cycle of the graph crosses a changed edge, so this decides whether any valid cycle exists).
/// Root causes whose shortest cycles are the same set of locks are one root cause naming all
/// their edges, and so is a 2-cycle whose two edges weigh the same (nothing tells them apart).
pub fn find_root_causes(
    model: &Model,
    level: GraphLevel,
    limits: &SearchLimits,
) -> RootCauseResult {
    find_root_causes_on(model, level, &edges(model, level), limits)
}

/// [`find_root_causes`] on the level's graph computed once by the caller ([`edges`]).
pub fn find_root_causes_on(
    model: &Model,
    level: GraphLevel,
    edges: &EdgeMap,
    limits: &SearchLimits,
) -> RootCauseResult {
    let weights = edge_weights(model, edges);
    let ranks = canonical_ranks(model, level);
    let rank = |n: u32| ranks.get(n as usize).copied().unwrap_or(u64::MAX);
    let (change, stopped) = change_set_ranked(&weights, &rank);
    crate::phase("change set");
    let mut result = RootCauseResult {
        change_set: change.clone(),
        ..Default::default()
    };
    if stopped > 0 {
        result.notes.push(format!(
            "the {} change set is not proven minimal in {stopped} component(s): the local search stopped after {} passes",
            level.name(),
            crate::hierarchy::MAX_LOCAL_SEARCH_PASSES
        ));
    }
    if change.is_empty() {
        return result;
    }
    let mut keys: Vec<&(u32, u32)> = edges.keys().collect();
    keys.sort_unstable();
    let mut adj: FastMap<u32, Vec<(u32, &[u32])>> = FastMap::default();
    let mut radj: FastMap<u32, Vec<u32>> = FastMap::default();
    for &&(a, b) in &keys {
        adj.entry(a)
            .or_default()
            .push((b, edges[&(a, b)].as_slice()));
        radj.entry(b).or_default().push(a);
    }
    let all_threads: usize = model.threads.len();
    let mut causes: Vec<RootCause> = Vec::new();
    let mut total: u64 = 0;
    let mut example_pool = limits.max_example_steps.saturating_mul(20);
    let nodes = match level {
        GraphLevel::Instance => model.locks.len(),
        GraphLevel::Class => model.classes.len(),
    };
    let mut dist_buf: Vec<u32> = vec![u32::MAX; nodes];
    let mut reached: Vec<u32> = Vec::new();
    for (k, &(u, v)) in change.iter().enumerate() {
        if total > limits.max_total_steps {
            result.warnings.push(format!(
                "{} root-cause search stopped after {total} steps in all (--max-total-steps) with {} of {} changed edges not searched; results may be incomplete",
                level.name(),
                change.len() - k,
                change.len()
            ));
            break;
        }
        // Distances to u over the reverse graph, in a buffer indexed by node that is reset only
        // where the previous edge's search reached (thousands of edges on a hostile trace).
        for &x in &reached {
            dist_buf[x as usize] = u32::MAX;
        }
        reached.clear();
        dist_buf[u as usize] = 0;
        reached.push(u);
        let mut frontier = vec![u];
        let mut depth = 0;
        while !frontier.is_empty() {
            depth += 1;
            let mut next = Vec::new();
            for &x in &frontier {
                let preds = radj.get(&x).map(Vec::as_slice).unwrap_or(&[]);
                total += preds.len() as u64;
                for &w in preds {
                    if dist_buf[w as usize] == u32::MAX {
                        dist_buf[w as usize] = depth;
                        reached.push(w);
                        next.push(w);
                    }
                }
            }
            frontier = next;
        }
        let back = dist_buf[v as usize];
        if back == u32::MAX {
            continue;
        }
        let max_len = all_threads.min(reached.len());
        let mut s = EdgeSearch {
            model,
            level,
            adj: &adj,
            u,
            dist: std::mem::take(&mut dist_buf),
            len: 2,
            path: Vec::new(),
            chain: Vec::new(),
            steps: 0,
            budget: limits.max_steps,
            stopped: false,
            found: HashMap::new(),
            order: Vec::new(),
            max_found: u64::MAX,
        };
        let d0s: &[u32] = edges[&(u, v)].as_slice();
        let mut shortest: Option<usize> = None;
        let mut exhaustive = true;
        let mut steps_at_shortest = 0;
        for len in (back as usize + 1).max(2)..=max_len {
            s.len = len;
            for &d0 in d0s {
                if s.stopped {
                    break;
                }
                if check_blocking(&s.dep(d0)).is_err() {
                    continue;
                }
                s.path = vec![u, v];
                s.chain = vec![d0];
                s.dfs(v);
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
        }
        dist_buf = std::mem::take(&mut s.dist);
        result.steps += s.steps;
        total += s.steps;
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
        });
    }
    // One root cause per representative cycle; a symmetric 2-cycle names both edges.
    let mut merged: Vec<RootCause> = Vec::new();
    for c in causes {
        let set = sorted(&c.representative.nodes);
        match merged
            .iter_mut()
            .find(|m| sorted(&m.representative.nodes) == set)
        {
            Some(m) => {
                m.edges.extend(c.edges);
                m.cycles = m.cycles.max(c.cycles);
                m.cycles_exhaustive &= c.cycles_exhaustive;
            }
            None => merged.push(c),
        }
    }
    for m in &mut merged {
        let n = &m.representative.nodes;
        if n.len() == 2 {
            let (a, b) = (n[0], n[1]);
            let (wab, wba) = (weights.get(&(a, b)), weights.get(&(b, a)));
            if wab == wba {
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
    result.root_causes = merged;
    result
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
