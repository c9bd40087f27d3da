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

use crate::model::{LockId, Model};
use lockcheck_core::deps::{check_blocking, check_link, check_pair, Dependency, Infeasible};
use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;
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
    /// Extension steps per component.
    pub max_steps: u64,
    /// Extension steps spent following infeasible branches (to name their filter), per component.
    pub max_filtered_steps: u64,
    /// Filtered candidates listed per level (the rest are not searched for).
    pub max_listed: u64,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            max_cycles: 10_000,
            max_steps: 5_000_000,
            max_filtered_steps: 200_000,
            max_listed: 1_000,
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

/// The lock graph of one level: edges labelled by dependency indices.
pub fn edges(model: &Model, level: GraphLevel) -> HashMap<(u32, u32), Vec<u32>> {
    let mut edges: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
    let mut froms: Vec<u32> = Vec::new();
    for (i, rec) in model.deps.iter().enumerate() {
        let to = node_of(model, level, rec.dep.lock);
        froms.clear();
        for &(h, _) in &rec.dep.held {
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
    fn dep(&self, i: u32) -> &Dependency<LockId> {
        &self.model.deps[i as usize].dep
    }

    fn link(
        &self,
        d: &Dependency<LockId>,
        next: &Dependency<LockId>,
    ) -> Result<(), Infeasible<LockId>> {
        match self.level {
            GraphLevel::Instance => {
                check_link(d, next, self.model.locks[d.lock as usize].ever_written)
            }
            GraphLevel::Class => {
                // `next` holds some instance of the class `d` requests; at class level that
                // instance stands for `d.lock`, so the mode rule is the same as check_link's.
                let c = self.model.locks[d.lock as usize].class;
                let ever_written = self.model.classes[c as usize].ever_written;
                let conflicts = next.held.iter().any(|&(h, m)| {
                    self.model.locks[h as usize].class == c
                        && d.mode.conflicts_with(m, ever_written)
                });
                if conflicts {
                    Ok(())
                } else {
                    Err(Infeasible::ReadRead { lock: d.lock })
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
                if self.chain.iter().any(|&c| self.dep(c).thread == d.thread) {
                    continue;
                }
                let mut f = failure.clone();
                if let Err(e) = check_blocking(d) {
                    f = worse(f, e);
                }
                for &c in &self.chain {
                    if let Err(e) = check_pair(self.dep(c), d) {
                        f = worse(f, e);
                    }
                }
                if let Some(&last) = self.chain.last() {
                    if let Err(e) = self.link(self.dep(last), d) {
                        f = worse(f, e);
                    }
                }
                if v == self.start {
                    let first = self.chain[0];
                    if let Err(e) = self.link(d, self.dep(first)) {
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
    let edges = edges(model, level);
    let mut graph: DiGraphMap<u32, ()> = DiGraphMap::new();
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
        let index: HashMap<u32, usize> = scc.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let mut adj: Vec<Vec<(usize, &[u32])>> = vec![Vec::new(); scc.len()];
        let mut radj: Vec<Vec<usize>> = vec![Vec::new(); scc.len()];
        let mut threads: Vec<u64> = Vec::new();
        for (i, &n) in scc.iter().enumerate() {
            let mut succ: Vec<u32> = graph
                .neighbors(n)
                .filter(|m| index.contains_key(m))
                .collect();
            succ.sort_unstable();
            for m in succ {
                let deps = edges[&(n, m)].as_slice();
                threads.extend(deps.iter().map(|&d| model.deps[d as usize].dep.thread));
                adj[i].push((index[&m], deps));
                radj[index[&m]].push(i);
            }
        }
        threads.sort_unstable();
        threads.dedup();
        // A chain has one dependency per distinct thread: no cycle is longer than that.
        let max_len = threads.len().min(scc.len());
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
    same_thread_cycles(model, level, &edges, limits, &mut out, &mut result);
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
    edges: &HashMap<(u32, u32), Vec<u32>>,
    limits: &SearchLimits,
    out: &mut HashMap<Key, Candidate>,
    result: &mut LevelResult,
) {
    let covered: std::collections::HashSet<Vec<u32>> = out.keys().map(|k| k.0.clone()).collect();
    let mut listed = out.keys().filter(|k| k.1.is_some()).count() as u64;
    // Per thread: its own edges, each with one witness dependency.
    let mut per_thread: HashMap<u64, HashMap<(u32, u32), u32>> = HashMap::new();
    for (&(a, b), deps) in edges {
        for &d in deps {
            let t = model.deps[d as usize].dep.thread;
            per_thread.entry(t).or_default().entry((a, b)).or_insert(d);
        }
    }
    let mut threads: Vec<u64> = per_thread.keys().copied().collect();
    threads.sort_unstable();
    let budget = limits.max_filtered_steps;
    let mut truncated = false;
    'threads: for t in threads {
        let te = &per_thread[&t];
        let mut graph: DiGraphMap<u32, ()> = DiGraphMap::new();
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
            let index: HashMap<u32, usize> = scc.iter().enumerate().map(|(i, &n)| (n, i)).collect();
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
