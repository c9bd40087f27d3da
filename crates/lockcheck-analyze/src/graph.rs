//! The lock-order graph as a picture: Graphviz DOT (`--format dot`) and SVG (inside
//! `--format html`).
//!
//! At class level (the default) a node is a lock class and an edge `A -> B` says some thread
//! acquired a `B` while holding an `A`; two locks of one class nested make a self-loop `A -> A`
//! (the order between them is decided per instance, and an instance-level inversion between
//! them is drawn on that loop). With `--level instance` nodes are lock instances. Edges are
//! labelled with the `file:line` of the acquisitions that made them; the edges of reported
//! violations (and of acquisitions against the declared hierarchy) are red.
//!
//! The SVG (in the HTML report) is drawn by [`crate::html`] with its own layered layout
//! ([`crate::html::layout`]): the same nodes and edges as the DOT text, in the levels of the
//! suggested hierarchy.
//!
//! [`LockGraph`] is the graph the analyses work on (listing, change set, root causes,
//! hierarchy): built once per level, in adjacency arrays indexed by dense node and edge ids.

use crate::cycles::GraphLevel;
use crate::hierarchy::file_line;
use crate::model::{LockId, Model, WIDE_WEIGHT};
use crate::report::Report;
use lockcheck_core::trace::Mode;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// The locks a dependency held at its request (`model.deps[i]`), with their modes, newest first
/// and without allocating (a held set of a hostile trace has hundreds of locks; every use here
/// is indifferent to the order). Every read of a dependency's fields by the graph analyses goes
/// through these helpers, so that a change of how the model stores a dependency touches one place.
pub(crate) fn dep_held_rev(model: &Model, i: u32) -> impl Iterator<Item = (LockId, Mode)> + '_ {
    model.held_sets.rev_iter(model.dep_keys[i as usize].held)
}

/// Whether every lock is its own class and lock `i` is class `i`: then the class graph and the
/// instance graph are the same graph ([`LockGraph::as_level`]). So it is on traces without
/// classes (RAPID's formats, where a lock is its own class, declared with it).
pub fn classes_are_locks(model: &Model) -> bool {
    model.classes.len() == model.locks.len()
        && model
            .locks
            .iter()
            .enumerate()
            .all(|(i, l)| l.class as usize == i)
}

/// The lock a dependency requested.
pub(crate) fn dep_lock(model: &Model, i: u32) -> LockId {
    model.dep_keys[i as usize].lock
}

/// How many acquisitions made a dependency.
pub(crate) fn dep_count(model: &Model, i: u32) -> u64 {
    model.deps[i as usize].count
}

/// Distinct nodes of a held set in time linear in its depth: a round number per node, where a
/// `contains` over the nodes seen so far made a held set of depth `d` cost `d^2` (a thread nesting
/// 3000 locks: 4.5 billion comparisons).
pub(crate) struct NodeStamps {
    stamp: Vec<u32>,
    round: u32,
}

impl NodeStamps {
    /// Stamps for nodes `0..nodes`.
    pub(crate) fn new(nodes: usize) -> Self {
        NodeStamps {
            stamp: vec![0; nodes],
            round: 0,
        }
    }

    /// Starts a new set: every node is unseen again.
    pub(crate) fn next_round(&mut self) {
        self.round = self.round.wrapping_add(1);
        if self.round == 0 {
            // Wrapped: stamps from 2^32 rounds ago would look current.
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.round = 1;
        }
    }

    /// Whether `n` is seen for the first time in this round (and marks it seen).
    pub(crate) fn first_visit(&mut self, n: u32) -> bool {
        let s = &mut self.stamp[n as usize];
        let first = *s != self.round;
        *s = self.round;
        first
    }
}

/// The lock graph of one level in compressed adjacency arrays: node `n` (a lock id or a class
/// id) has the edges `out_start[n]..out_start[n + 1]` (edge ids, sorted by target), each edge
/// the dependency indices `dep_start[e]..dep_start[e + 1]` of `dep_list` (ascending). An edge
/// `a -> b` says some dependency requested a `b` while holding an `a` (`a != b`).
///
/// Built once per level and shared by every analysis: a few machine words per edge and one per
/// (dependency, distinct held node), where hash maps of edges cost ten times that.
///
/// The arrays are shared ([`LockGraph::as_level`]): when every lock is its own class with the
/// same id, the class graph and the instance graph are one graph, stored once.
#[derive(Debug, Clone, Default)]
pub struct LockGraph {
    level: Option<GraphLevel>,
    d: std::sync::Arc<Arrays>,
}

/// The class and the instance graph without their reverse adjacency (the in-edges), which only
/// the searches read (components, the listing's distances, the change set's heuristics): freed
/// before the report is built, where it was 19 MB of the peak on the hostile random trace.
/// Graphs that share their arrays ([`LockGraph::as_level`]) still share them; arrays shared
/// with a graph held elsewhere are left as they are. Reading the in-edges afterwards panics
/// ([`LockGraph::in_edges`]) rather than answer none.
pub fn release_in_edges(class: LockGraph, inst: LockGraph) -> (LockGraph, LockGraph) {
    let strip = |mut g: LockGraph| {
        if let Some(d) = std::sync::Arc::get_mut(&mut g.d) {
            d.in_start = Vec::new();
            d.in_edges = Vec::new();
        }
        g
    };
    if std::sync::Arc::ptr_eq(&class.d, &inst.d) {
        let level = inst.level;
        drop(inst);
        let class = strip(class);
        let inst = LockGraph {
            level,
            d: class.d.clone(),
        };
        (class, inst)
    } else {
        (strip(class), strip(inst))
    }
}

/// The sources of edge ids of a [`LockGraph`] read in ascending order ([`LockGraph::sources`]):
/// from the previous answer, the range of the same node first, then a galloping search forward;
/// an edge id below the previous one costs one binary search.
#[derive(Debug, Clone)]
pub struct Sources<'g> {
    out_start: &'g [u32],
    node: usize,
}

impl Sources<'_> {
    /// The held node of edge `e` ([`LockGraph::source`]).
    #[inline]
    pub fn of(&mut self, e: u32) -> u32 {
        let s = self.out_start;
        let n = s.len() - 1;
        if self.node < n && s[self.node] <= e {
            if e < s[self.node + 1] {
                return self.node as u32;
            }
            // s[lo] <= e < s[n]: the answer is the last index below n with s[i] <= e.
            let mut lo = self.node + 1;
            let mut step = 1;
            let mut hi = lo + 1;
            while hi < n && s[hi] <= e {
                lo = hi;
                step *= 2;
                hi = lo + step;
            }
            let hi = hi.min(n);
            self.node = lo + s[lo..hi].partition_point(|&x| x <= e) - 1;
        } else {
            self.node = s.partition_point(|&x| x <= e) - 1;
        }
        self.node as u32
    }
}

/// The weight of each edge of a [`LockGraph`], by edge id ([`LockGraph::weights`]): 32 bits
/// per edge while every weight fits (any trace of fewer than 4 billion acquisitions), 64 bits
/// otherwise. On the hostile random trace (4.75M edges) the narrow table saves 19 MB at the peak.
#[derive(Debug, Clone)]
pub enum EdgeWeights {
    /// Every weight fits in 32 bits.
    Narrow(Vec<u32>),
    /// Some weight does not.
    Wide(Vec<u64>),
}

impl Default for EdgeWeights {
    fn default() -> Self {
        EdgeWeights::Narrow(Vec::new())
    }
}

impl EdgeWeights {
    /// The weight of edge `e`.
    #[inline]
    pub fn get(&self, e: u32) -> u64 {
        match self {
            EdgeWeights::Narrow(w) => u64::from(w[e as usize]),
            EdgeWeights::Wide(w) => w[e as usize],
        }
    }

    /// Number of edges.
    pub fn len(&self) -> usize {
        match self {
            EdgeWeights::Narrow(w) => w.len(),
            EdgeWeights::Wide(w) => w.len(),
        }
    }

    /// Whether there is no edge.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The weights by edge id.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len() as u32).map(|e| self.get(e))
    }
}

impl From<Vec<u64>> for EdgeWeights {
    fn from(w: Vec<u64>) -> Self {
        if w.iter().all(|&x| x <= u64::from(u32::MAX)) {
            EdgeWeights::Narrow(w.into_iter().map(|x| x as u32).collect())
        } else {
            EdgeWeights::Wide(w)
        }
    }
}

/// A counting sort of a held node's bucket of dependencies by their target, for the buckets
/// that are large beside the number of nodes (in the planted trace, thousands of dependencies
/// per held lock over 400 locks): two linear passes and one over the nodes, where a comparison
/// sort of the bucket's keys took about 13 comparisons per entry. An entry is the key
/// `target << 32 | dependency`, and the buckets hold them in ascending order of dependency: the
/// sort is stable, so the result is the comparison sort's by key (target, then dependency).
/// Written here because it is a dozen lines over the graph's own tables and also counts the
/// distinct targets on the way (a radix sort crate would make passes over all 64 bits).
struct TargetSort {
    /// Per node: entries counted, then where the next entry of that target goes.
    at: Vec<u32>,
}

impl TargetSort {
    fn new(nodes: usize) -> Self {
        TargetSort { at: vec![0; nodes] }
    }

    /// Whether a bucket of `len` entries is worth a pass over every node.
    fn fits(&self, len: usize) -> bool {
        len >= 64 && self.at.len() <= len * 4
    }

    /// The bucket given as its entries' `targets` and `deps` (dependencies ascending), sorted
    /// into `out` (as long as they) as keys `target << 32 | dependency`; returns its distinct
    /// targets. The keys are made as they are placed: a copy of the bucket as keys, sorted in
    /// place and copied back, was two more passes over it.
    fn sort_into(&mut self, targets: &[u32], deps: &[u32], out: &mut [u64]) -> usize {
        for &t in targets {
            self.at[t as usize] += 1;
        }
        let mut sum = 0u32;
        let mut distinct = 0;
        for a in self.at.iter_mut() {
            let c = *a;
            distinct += usize::from(c != 0);
            *a = sum;
            sum += c;
        }
        // Every slot of `out` is written (the counts partition it).
        for (&t, &d) in targets.iter().zip(deps) {
            let slot = &mut self.at[t as usize];
            out[*slot as usize] = (u64::from(t) << 32) | u64::from(d);
            *slot += 1;
        }
        self.at.fill(0);
        distinct
    }
}

/// The adjacency arrays of a [`LockGraph`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Arrays {
    out_start: Vec<u32>,
    to: Vec<u32>,
    dep_start: Vec<u32>,
    dep_list: Vec<u32>,
    in_start: Vec<u32>,
    in_edges: Vec<u32>,
}

impl Arrays {
    /// The reverse adjacency, `in_edges` made in `scratch`: a vector the build no longer needs,
    /// whose pages are already mapped (a fresh one cost a page fault per 4 KiB, about 2 us on
    /// the benchmarks' host: 4,600 of them on the hostile random trace), its excess given back.
    fn index_targets(&mut self, nodes: usize, scratch: Vec<u32>) {
        let mut in_count = vec![0u32; nodes + 1];
        for &t in &self.to {
            in_count[t as usize + 1] += 1;
        }
        for n in 0..nodes {
            in_count[n + 1] += in_count[n];
        }
        let mut fill: Vec<u32> = in_count[..nodes].to_vec();
        self.in_edges = scratch;
        self.in_edges.clear();
        self.in_edges.resize(self.to.len(), 0);
        self.in_edges.shrink_to_fit();
        for (e, &t) in self.to.iter().enumerate() {
            self.in_edges[fill[t as usize] as usize] = e as u32;
            fill[t as usize] += 1;
        }
        self.in_start = in_count;
    }
}

/// Up to how many (source, target) node pairs [`LockGraph::build`] counts the entries of each
/// pair in a dense matrix (4 bytes a pair: 4 MiB at most, 640 KB for 400 locks). With the counts
/// by pair, every entry goes straight to its place in the edge arrays, where per-source buckets
/// had to be filled, sorted by target (a counting sort: three passes and a copy back), scanned
/// for their edges and copied again into the dependency list (5M-event planted trace, 400 locks:
/// the build 316M -> 228M instructions; its wall time did not move measurably, the scattered
/// writes costing first-level misses). More nodes than
/// that (the matrix would be mostly empty and larger than the cache) keep the buckets.
const DENSE_PAIRS: usize = 1 << 20;

/// Per dependency, its target node and then its distinct held nodes other than the target,
/// ended by `u32::MAX`; `note(from, to)` is called once per such entry as it is found.
///
/// Each distinct held node is counted and written as the walk finds it (a list of them per
/// dependency, then two loops over it to count and copy, was about 20 instructions per
/// dependency and 15 per held node); walking the held sets again to place the entries cost as
/// much as this pass, hence the flat list.
fn held_entries(model: &Model, level: GraphLevel, mut note: impl FnMut(u32, u32)) -> Vec<u32> {
    let nodes = match level {
        GraphLevel::Instance => model.locks.len(),
        GraphLevel::Class => model.classes.len(),
    };
    let node = |l: LockId| crate::cycles::node_of(model, level, l);
    let mut seen = NodeStamps::new(nodes);
    let mut flat: Vec<u32> = Vec::new();
    for i in 0..model.deps.len() as u32 {
        let to = node(dep_lock(model, i));
        flat.push(to);
        seen.next_round();
        for (h, _) in dep_held_rev(model, i) {
            let from = node(h);
            if from != to && seen.first_visit(from) {
                note(from, to);
                flat.push(from);
            }
        }
        flat.push(u32::MAX);
    }
    flat
}

/// Calls `f(dependency, target, source)` for each entry of [`held_entries`]'s `flat` list, in
/// dependency order.
#[inline(always)]
fn each_entry(flat: &[u32], mut f: impl FnMut(u32, u32, u32)) {
    let mut k = 0;
    let mut i = 0u32;
    while k < flat.len() {
        let to = flat[k];
        k += 1;
        while flat[k] != u32::MAX {
            f(i, to, flat[k]);
            k += 1;
        }
        k += 1;
        i += 1;
    }
}

impl Arrays {
    /// The edges and their dependency lists from [`held_entries`]'s `flat` list and `pairs`,
    /// the count of entries of each (source, target) pair, row by source. Returns `flat`,
    /// read, for the build's next array.
    fn place_dense(nodes: usize, flat: Vec<u32>, mut pairs: Vec<u32>) -> (Arrays, Vec<u32>) {
        let edges = pairs.iter().filter(|&&c| c != 0).count();
        let mut g = Arrays {
            out_start: Vec::with_capacity(nodes + 1),
            to: Vec::with_capacity(edges),
            dep_start: Vec::with_capacity(edges + 1),
            ..Arrays::default()
        };
        g.out_start.push(0);
        // Each pair's count becomes where its next entry goes: edges by source, then target.
        let mut at = 0u32;
        if nodes > 0 {
            for row in pairs.chunks_exact_mut(nodes) {
                for (to, c) in row.iter_mut().enumerate() {
                    if *c != 0 {
                        g.to.push(to as u32);
                        g.dep_start.push(at);
                        let n = *c;
                        *c = at;
                        at += n;
                    }
                }
                g.out_start.push(g.to.len() as u32);
            }
        }
        g.dep_start.push(at);
        // Dependencies in ascending order: each edge's list comes out ascending.
        let mut dep_list = vec![0u32; at as usize];
        each_entry(&flat, |i, to, from| {
            let slot = &mut pairs[from as usize * nodes + to as usize];
            dep_list[*slot as usize] = i;
            *slot += 1;
        });
        g.dep_list = dep_list;
        (g, flat)
    }

    /// The edges and their dependency lists from [`held_entries`]'s `flat` list and `count`,
    /// the entries per source node: per-source buckets of (target, dependency), each sorted by
    /// target, then dependency. Returns a vector the build no longer needs, for its next array.
    ///
    /// The buckets are two arrays of `u32`, the targets and the dependencies: the second becomes
    /// the dependency list where it was copied out of one array of 64-bit keys, the edges'
    /// targets go into `flat`'s pages once it is read, and the bucket targets' pages take the
    /// reverse adjacency ([`Arrays::index_targets`]). On the hostile random trace (7.9M
    /// entries, 4.75M edges) that is 68 MB of pages not mapped afresh (17,000 page faults, about
    /// 35 ms of system time) and the build's peak 50 MB lower. Each bucket is sorted as before, as
    /// keys `target << 32 | dependency` in a scratch vector as long as the longest bucket.
    fn place_buckets(nodes: usize, flat: Vec<u32>, count: Vec<u32>) -> (Arrays, Vec<u32>) {
        let mut start = vec![0usize; nodes + 1];
        for n in 0..nodes {
            start[n + 1] = start[n] + count[n] as usize;
        }
        let longest = count.iter().copied().max().unwrap_or(0) as usize;
        drop(count);
        let total = start[nodes];
        // The buckets are filled in dependency order, so each holds its dependencies ascending.
        // Every slot is written (the counts partition them): no zeroing needed, but `vec!`'s
        // zeroed pages cost nothing more than the writes.
        let mut b_to: Vec<u32> = vec![0; total];
        let mut b_dep: Vec<u32> = vec![0; total];
        let mut fill = start.clone();
        each_entry(&flat, |i, to, from| {
            let f = from as usize;
            b_to[fill[f]] = to;
            b_dep[fill[f]] = i;
            fill[f] += 1;
        });
        drop(fill);
        // `flat` is read: its pages take the edges' targets (at most one per entry, and `flat`
        // holds every entry).
        let mut to = flat;
        to.clear();
        // Sort each bucket by key (target, then dependency) and take its edges as it is sorted:
        // `dep_start` reserved at a bound (every entry an edge), its pages beyond the edges never
        // touched, and the excess given back at the end.
        let mut dep_start: Vec<u32> = Vec::with_capacity(total + 1);
        let mut out_start: Vec<u32> = Vec::with_capacity(nodes + 1);
        out_start.push(0);
        // As long as the longest bucket, never cleared: every slot a bucket uses is written.
        let mut scratch: Vec<u64> = vec![0; longest];
        let mut sorter = TargetSort::new(nodes);
        for n in 0..nodes {
            let r = start[n]..start[n + 1];
            let keys = &mut scratch[..r.len()];
            if sorter.fits(r.len()) {
                sorter.sort_into(&b_to[r.clone()], &b_dep[r.clone()], keys);
            } else {
                for ((k, &t), &d) in keys.iter_mut().zip(&b_to[r.clone()]).zip(&b_dep[r.clone()]) {
                    *k = (u64::from(t) << 32) | u64::from(d);
                }
                keys.sort_unstable();
            }
            let mut last = u32::MAX;
            for (k, (&x, d)) in r.clone().zip(keys.iter().zip(&mut b_dep[r])) {
                *d = x as u32;
                let t = (x >> 32) as u32;
                if t != last {
                    to.push(t);
                    dep_start.push(k as u32);
                    last = t;
                }
            }
            out_start.push(to.len() as u32);
        }
        drop((sorter, scratch));
        dep_start.push(total as u32);
        to.shrink_to_fit();
        dep_start.shrink_to_fit();
        let g = Arrays {
            out_start,
            to,
            dep_start,
            dep_list: b_dep,
            ..Arrays::default()
        };
        (g, b_to)
    }
}

impl LockGraph {
    /// The lock graph of `model` at `level`.
    pub fn build(model: &Model, level: GraphLevel) -> LockGraph {
        Self::build_with(model, level, DENSE_PAIRS)
    }

    /// [`LockGraph::build`], placing the entries by a dense matrix of (source, target) counts
    /// when the nodes' pairs are at most `dense_pairs`, else by per-source buckets sorted by
    /// target (the tests compare both).
    fn build_with(model: &Model, level: GraphLevel, dense_pairs: usize) -> LockGraph {
        let nodes = match level {
            GraphLevel::Instance => model.locks.len(),
            GraphLevel::Class => model.classes.len(),
        };
        let dense = nodes.checked_mul(nodes).is_some_and(|p| p <= dense_pairs);
        let (mut g, scratch) = if dense {
            let mut pairs = vec![0u32; nodes * nodes];
            let flat = held_entries(model, level, |from, to| {
                pairs[from as usize * nodes + to as usize] += 1;
            });
            Arrays::place_dense(nodes, flat, pairs)
        } else {
            let mut count = vec![0u32; nodes + 1];
            let flat = held_entries(model, level, |from, _| count[from as usize] += 1);
            Arrays::place_buckets(nodes, flat, count)
        };
        // Reverse adjacency: edge ids by target (then source, as edge ids are by source).
        g.index_targets(nodes, scratch);
        LockGraph {
            level: Some(level),
            d: std::sync::Arc::new(g),
        }
    }

    /// A graph of bare edges `(source, target)` over nodes `0..nodes`, given sorted and
    /// distinct, without dependencies (for weighted graphs that come from elsewhere).
    pub fn from_edges(nodes: usize, edges: impl Iterator<Item = (u32, u32)>) -> LockGraph {
        let mut g = Arrays {
            out_start: vec![0; nodes + 1],
            ..Arrays::default()
        };
        for (a, b) in edges {
            g.to.push(b);
            g.out_start[a as usize + 1] += 1;
        }
        for n in 0..nodes {
            g.out_start[n + 1] += g.out_start[n];
        }
        g.dep_start = vec![0; g.to.len() + 1];
        g.index_targets(nodes, Vec::new());
        LockGraph {
            level: None,
            d: std::sync::Arc::new(g),
        }
    }

    /// The same graph read as a graph of `level`, sharing its arrays: when every lock is its
    /// own class and lock `i` is class `i` ([`classes_are_locks`]), the class graph is
    /// the instance graph, and building it twice cost twice the time and memory (on the
    /// hostile random trace, 80 MB and 0.5 s).
    pub fn as_level(&self, level: GraphLevel) -> LockGraph {
        LockGraph {
            level: Some(level),
            d: self.d.clone(),
        }
    }

    /// The level it was built at (`None` for an empty default graph).
    pub fn level(&self) -> Option<GraphLevel> {
        self.level
    }

    /// Number of nodes (locks or classes of the model, whether or not they have edges).
    pub fn nodes(&self) -> usize {
        self.d.out_start.len().saturating_sub(1)
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.d.to.len()
    }

    /// The edge ids leaving `n`, by increasing target.
    pub fn out_edges(&self, n: u32) -> std::ops::Range<u32> {
        match self.d.out_start.get(n as usize..n as usize + 2) {
            Some(r) => r[0]..r[1],
            None => 0..0,
        }
    }

    /// The edge ids entering `n`, by increasing source.
    ///
    /// # Panics
    ///
    /// After [`release_in_edges`]: an empty answer would be a wrong one.
    pub fn in_edges(&self, n: u32) -> &[u32] {
        match self.d.in_start.get(n as usize..n as usize + 2) {
            Some(r) => &self.d.in_edges[r[0] as usize..r[1] as usize],
            None => {
                assert!(
                    !self.d.in_start.is_empty(),
                    "the in-edges of this lock graph were released"
                );
                &[]
            }
        }
    }

    /// The held node of edge `e`: the node whose range of edge ids holds `e`, found by binary
    /// search of `out_start` (an array of sources would cost 4 bytes per edge: 19 MB on the
    /// hostile random trace, at the peak of the run).
    #[inline]
    pub fn source(&self, e: u32) -> u32 {
        // The last node whose first edge id is at most `e` (empty nodes before it share its
        // start).
        (self.d.out_start.partition_point(|&s| s <= e) - 1) as u32
    }

    /// The acquired node of edge `e`.
    pub fn target(&self, e: u32) -> u32 {
        self.d.to[e as usize]
    }

    /// A reader of the sources of edge ids given in ascending order (a node's in-edges, a
    /// list of edge ids): a few steps from the previous answer instead of a binary search each.
    pub fn sources(&self) -> Sources<'_> {
        Sources {
            out_start: &self.d.out_start,
            node: 0,
        }
    }

    /// `(source, target)` of edge `e`.
    pub fn endpoints(&self, e: u32) -> (u32, u32) {
        (self.source(e), self.d.to[e as usize])
    }

    /// The dependencies making edge `e` (indices into [`Model::deps`], ascending).
    pub fn deps(&self, e: u32) -> &[u32] {
        let (a, b) = (
            self.d.dep_start[e as usize],
            self.d.dep_start[e as usize + 1],
        );
        &self.d.dep_list[a as usize..b as usize]
    }

    /// The dependencies making the edges that leave `n`, edge by edge (each edge's ascending):
    /// one slice of the graph's dependency list.
    pub fn node_deps(&self, n: u32) -> &[u32] {
        let r = self.out_edges(n);
        let (a, b) = (
            self.d.dep_start[r.start as usize],
            self.d.dep_start[r.end as usize],
        );
        &self.d.dep_list[a as usize..b as usize]
    }

    /// The edge `a -> b`, if there is one.
    pub fn find(&self, a: u32, b: u32) -> Option<u32> {
        let r = self.out_edges(a);
        let targets = &self.d.to[r.start as usize..r.end as usize];
        targets.binary_search(&b).ok().map(|i| r.start + i as u32)
    }

    /// The dependencies making the edge `a -> b` (empty if there is no such edge).
    pub fn edge_deps(&self, a: u32, b: u32) -> &[u32] {
        self.find(a, b).map(|e| self.deps(e)).unwrap_or(&[])
    }

    /// Every edge as `(source, target)`, by source then target.
    pub fn edges(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..self.nodes() as u32)
            .flat_map(move |n| self.out_edges(n).map(move |e| (n, self.target(e))))
    }

    /// The weight of each edge (by edge id): how many blocking or timed acquisitions made it
    /// (`try_*` acquisitions cannot wait, so they need no order); 0 for an edge of `try_*` only.
    pub fn weights(&self, model: &Model) -> EdgeWeights {
        // Each dependency's weight as the replay kept it beside its key (`DepKey::weight`),
        // copied in one sequential pass: an edge's dependencies are scattered over the model,
        // and a 4-byte entry per dependency stays in cache where its 48-byte record (or its
        // 12-byte key) does not. A count of `u32::MAX` or more reads its record.
        let dep_w: Vec<u32> = model.dep_keys.iter().map(|k| k.weight).collect();
        let weight = |e: u32| -> u64 {
            self.deps(e)
                .iter()
                .map(|&d| match dep_w[d as usize] {
                    WIDE_WEIGHT => dep_count(model, d),
                    w => u64::from(w),
                })
                .sum()
        };
        // Edge by edge in one sequential pass over the dependency lists (`dep_start` read as
        // windows, the array collected at its size): an edge's `deps(e)` looked up by id, its
        // sum checked and pushed one at a time, was 54 instructions per edge on the hostile
        // random trace (4.75M edges). A sum beyond 32 bits is marked and the array made again in
        // 64 bits (any trace of 4 billion acquisitions of one edge).
        let mut wide_sum = false;
        let list = &self.d.dep_list;
        let narrow: Vec<u32> = self
            .d
            .dep_start
            .windows(2)
            .map(|r| {
                let mut sum = 0u64;
                for &d in &list[r[0] as usize..r[1] as usize] {
                    sum += match dep_w[d as usize] {
                        WIDE_WEIGHT => dep_count(model, d),
                        w => u64::from(w),
                    };
                }
                u32::try_from(sum).unwrap_or_else(|_| {
                    wide_sum = true;
                    0
                })
            })
            .collect();
        if wide_sum {
            drop(narrow);
            return EdgeWeights::Wide((0..self.edge_count() as u32).map(weight).collect());
        }
        EdgeWeights::Narrow(narrow)
    }

    /// Strongly connected components of more than one node over the edges that `keep`
    /// accepts (by edge id), each sorted by node id, the components sorted.
    pub fn sccs(&self, keep: &dyn Fn(u32) -> bool) -> Vec<Vec<u32>> {
        self.sccs_by(keep)
    }

    /// [`LockGraph::sccs`] with the edge filter inlined (the searches' filters are a weight
    /// test or none).
    ///
    /// Tarjan's algorithm, iterative (an explicit stack of `(node, next edge id)`, so a chain of
    /// 100,000 locks needs no deep recursion), written by hand over the graph's own arrays: one
    /// traversal of the out-edges, where petgraph's Kosaraju on a view of the graph (used
    /// until hostile round 10, the view removed in round 11) made two and found each in-edge's source by a search in the edge
    /// offsets: 1.0G instructions per call on the hostile random trace (4.75M edges), called
    /// twice before the root-cause search. petgraph's own Tarjan recurses once per node of a path.
    pub fn sccs_by(&self, keep: impl Fn(u32) -> bool) -> Vec<Vec<u32>> {
        const NONE: u32 = u32::MAX;
        let n = self.nodes();
        let out_start = &self.d.out_start;
        let to = &self.d.to;
        // index[v]: visiting order, NONE before the visit; low[v]: the lowest index reachable
        // through the tree below v and one edge back, NONE once v's component is closed (so
        // "on the stack" is `low != NONE` among visited nodes).
        let mut index = vec![NONE; n];
        let mut low = vec![NONE; n];
        let mut stack: Vec<u32> = Vec::new();
        let mut call: Vec<(u32, u32)> = Vec::new();
        let mut next = 0u32;
        let mut out: Vec<Vec<u32>> = Vec::new();
        for root in 0..n as u32 {
            if index[root as usize] != NONE {
                continue;
            }
            index[root as usize] = next;
            low[root as usize] = next;
            next += 1;
            stack.push(root);
            call.push((root, out_start[root as usize]));
            while let Some(&mut (v, ref mut e)) = call.last_mut() {
                let end = out_start[v as usize + 1];
                let mut descended = false;
                while *e < end {
                    let edge = *e;
                    *e += 1;
                    if !keep(edge) {
                        continue;
                    }
                    let w = to[edge as usize] as usize;
                    if index[w] == NONE {
                        index[w] = next;
                        low[w] = next;
                        next += 1;
                        stack.push(w as u32);
                        call.push((w as u32, out_start[w]));
                        descended = true;
                        break;
                    }
                    // A node of a closed component has `low == NONE`: `min` leaves v's alone.
                    if low[w] != NONE && index[w] < low[v as usize] {
                        low[v as usize] = index[w];
                    }
                }
                if descended {
                    continue;
                }
                call.pop();
                let lv = low[v as usize];
                if let Some(&(p, _)) = call.last() {
                    if lv < low[p as usize] {
                        low[p as usize] = lv;
                    }
                }
                if lv == index[v as usize] {
                    let at = stack
                        .iter()
                        .rposition(|&x| x == v)
                        .expect("v is on the stack");
                    for &x in &stack[at..] {
                        low[x as usize] = NONE;
                    }
                    if stack.len() - at > 1 {
                        let mut c = stack[at..].to_vec();
                        c.sort_unstable();
                        out.push(c);
                    }
                    stack.truncate(at);
                }
            }
        }
        out.sort();
        out
    }
}

/// Sites listed on one edge label; more are counted.
pub const SITES_PER_LABEL: usize = 3;
/// Nodes kept by [`OrderGraph::picture`] in the fuzz harness' small pictures. (The HTML report
/// draws every node: see [`crate::html`].)
pub const MAX_PICTURE_NODES: usize = 30;
/// Edges kept by [`OrderGraph::picture`]: the violations' first.
pub const MAX_PICTURE_EDGES: usize = 60;

/// A node of the lock-order graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    /// Class key (class level) or lock name (instance level).
    pub name: String,
    /// Class key (the name itself at class level).
    pub class: String,
    /// Lock kind.
    pub kind: String,
    /// Part of a reported violation.
    pub in_violation: bool,
}

/// An edge: some thread acquired `to` while holding `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphEdge {
    /// Index of the held node.
    pub from: usize,
    /// Index of the acquired node.
    pub to: usize,
    /// `file:line` of the acquisitions, sorted.
    pub sites: Vec<String>,
    /// Distinct dependencies on the edge.
    pub dependencies: u64,
    /// Part of a reported violation (drawn red).
    pub in_violation: bool,
}

/// The lock-order graph of an analysis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderGraph {
    /// `class` or `instance`.
    pub level: String,
    /// Nodes, sorted by name.
    pub nodes: Vec<GraphNode>,
    /// Edges, sorted by (from, to).
    pub edges: Vec<GraphEdge>,
    /// Nodes left out of this graph (see [`OrderGraph::picture`]).
    pub omitted: usize,
    /// Edges left out of this graph, besides those of omitted nodes.
    pub omitted_edges: usize,
}

impl OrderGraph {
    /// Builds the graph of `model` at `level`, marking the edges of `report`'s violations.
    pub fn build(model: &Model, level: GraphLevel, report: &Report) -> OrderGraph {
        let name_of = |l: u32| -> String {
            match level {
                GraphLevel::Instance => model.lock_name(l),
                GraphLevel::Class => model.classes[model.locks[l as usize].class as usize]
                    .key
                    .clone(),
            }
        };
        let kind_of = |l: u32| -> String {
            let c = &model.classes[model.locks[l as usize].class as usize];
            format!("{:?}", c.kind).to_lowercase()
        };
        let class_of_lock = |l: u32| -> String {
            model.classes[model.locks[l as usize].class as usize]
                .key
                .clone()
        };
        // Aggregate by name index and site id (a few machine words per dependency): names and
        // locations are strings, built once per lock and per distinct edge, not per dependency.
        let mut name_index: HashMap<String, u32> = HashMap::new();
        let mut name_list: Vec<(String, u32)> = Vec::new();
        let lock_name_idx: Vec<u32> = (0..model.locks.len() as u32)
            .map(|l| {
                let name = name_of(l);
                *name_index.entry(name.clone()).or_insert_with(|| {
                    name_list.push((name, l));
                    name_list.len() as u32 - 1
                })
            })
            .collect();
        let mut by_id: HashMap<(u32, u32), (HashSet<u32>, u64)> = HashMap::new();
        let mut used = vec![false; name_list.len()];
        let mut seen = NodeStamps::new(name_list.len());
        for rec in &model.deps {
            let to = lock_name_idx[rec.lock as usize];
            used[to as usize] = true;
            seen.next_round();
            for (h, _) in model.held(rec.held) {
                let from = lock_name_idx[h as usize];
                if !seen.first_visit(from) {
                    continue;
                }
                used[from as usize] = true;
                let e = by_id.entry((from, to)).or_default();
                e.1 += 1;
                for ds in model.sites_of(rec) {
                    if let Some(s) = ds.site {
                        e.0.insert(s);
                    }
                }
            }
        }
        // Nodes in name order and edges in (from name, to name) order, as maps keyed by the
        // names gave them, but sorted by the names' ranks: maps keyed by cloned strings took
        // gigabytes and most of a minute on a graph of millions of edges (one thread nesting
        // 3,000 locks has 4.5 million).
        let mut by_name: Vec<u32> = (0..name_list.len() as u32)
            .filter(|&i| used[i as usize])
            .collect();
        by_name.sort_unstable_by(|&a, &b| name_list[a as usize].0.cmp(&name_list[b as usize].0));
        let mut node_of = vec![u32::MAX; name_list.len()];
        for (k, &i) in by_name.iter().enumerate() {
            node_of[i as usize] = k as u32;
        }
        let node_name = |k: u32| name_list[by_name[k as usize] as usize].0.as_str();
        let mut edge_list: Vec<((u32, u32), HashSet<u32>, u64)> = by_id
            .into_iter()
            .map(|((from, to), (sites, n))| {
                ((node_of[from as usize], node_of[to as usize]), sites, n)
            })
            .collect();
        edge_list.sort_unstable_by_key(|e| e.0);
        let node_index: HashMap<&str, u32> = (0..by_name.len() as u32)
            .map(|k| (node_name(k), k))
            .collect();
        // Edges of violations, as node pairs.
        let mut red: HashSet<(u32, u32)> = HashSet::new();
        let mut red_nodes: HashSet<u32> = HashSet::new();
        // A class-level finding on an instance graph marks every instance edge between its
        // classes: the edges by the classes of their ends (each lock name's class as the last
        // lock of that name has it), made once.
        let mut by_classes: Option<HashMap<(String, String), Vec<usize>>> = None;
        for v in &report.violations {
            let names: Vec<String> = v
                .locks
                .iter()
                .map(|l| match level {
                    GraphLevel::Instance if v.level == "instance" => l.name.clone(),
                    _ => l.class.clone(),
                })
                .collect();
            let n = names.len();
            let pairs: Vec<(String, String)> = if v.kind == "hierarchy-violation" || n < 2 {
                names
                    .windows(2)
                    .map(|w| (w[0].clone(), w[1].clone()))
                    .collect()
            } else {
                (0..n)
                    .map(|i| (names[i].clone(), names[(i + 1) % n].clone()))
                    .collect()
            };
            if level == GraphLevel::Instance && v.level != "instance" {
                let by_classes = by_classes.get_or_insert_with(|| {
                    let mut class_of: HashMap<String, String> = HashMap::new();
                    for (i, l) in model.locks.iter().enumerate() {
                        class_of.insert(
                            model.lock_name(i as u32),
                            model.classes[l.class as usize].key.clone(),
                        );
                    }
                    let mut m: HashMap<(String, String), Vec<usize>> = HashMap::new();
                    for (e, ((a, b), _, _)) in edge_list.iter().enumerate() {
                        if let (Some(ca), Some(cb)) =
                            (class_of.get(node_name(*a)), class_of.get(node_name(*b)))
                        {
                            m.entry((ca.clone(), cb.clone())).or_default().push(e);
                        }
                    }
                    m
                });
                let want: HashSet<(String, String)> = pairs.into_iter().collect();
                for pair in &want {
                    for &e in by_classes.get(pair).into_iter().flatten() {
                        let (a, b) = edge_list[e].0;
                        red.insert((a, b));
                        red_nodes.insert(a);
                        red_nodes.insert(b);
                    }
                }
            } else {
                for (a, b) in pairs {
                    let (ia, ib) = (node_index.get(a.as_str()), node_index.get(b.as_str()));
                    if let Some(&ia) = ia {
                        red_nodes.insert(ia);
                    }
                    if let Some(&ib) = ib {
                        red_nodes.insert(ib);
                    }
                    if let (Some(&ia), Some(&ib)) = (ia, ib) {
                        red.insert((ia, ib));
                    }
                }
            }
        }
        // Each site's `file:line` once; an edge's sites sorted and distinct by that text.
        let mut site_text: HashMap<u32, String> = HashMap::new();
        let graph_edges = edge_list
            .into_iter()
            .map(|((a, b), sites, deps)| {
                for &s in &sites {
                    site_text
                        .entry(s)
                        .or_insert_with(|| file_line(model.site_loc(s)));
                }
                let mut texts: Vec<&String> = sites.iter().map(|s| &site_text[s]).collect();
                texts.sort_unstable();
                texts.dedup();
                GraphEdge {
                    from: a as usize,
                    to: b as usize,
                    sites: texts.into_iter().cloned().collect(),
                    dependencies: deps,
                    in_violation: red.contains(&(a, b)),
                }
            })
            .collect();
        OrderGraph {
            level: level.name().into(),
            nodes: by_name
                .iter()
                .enumerate()
                .map(|(k, &i)| {
                    let (name, l) = &name_list[i as usize];
                    GraphNode {
                        in_violation: red_nodes.contains(&(k as u32)),
                        name: name.clone(),
                        class: class_of_lock(*l),
                        kind: kind_of(*l),
                    }
                })
                .collect(),
            edges: graph_edges,
            omitted: 0,
            omitted_edges: 0,
        }
    }

    /// At most `max` nodes for a picture: the nodes of violations and their neighbors first, then
    /// the nodes with the most edges. The rest is counted in `omitted`.
    pub fn picture(&self, max: usize) -> OrderGraph {
        let mut g = self.picture_nodes(max);
        if g.edges.len() > MAX_PICTURE_EDGES {
            let mut order: Vec<usize> = (0..g.edges.len()).collect();
            order.sort_by_key(|&i| (!g.edges[i].in_violation, i));
            let keep: HashSet<usize> = order.into_iter().take(MAX_PICTURE_EDGES).collect();
            g.omitted_edges += g.edges.len() - keep.len();
            g.edges = g
                .edges
                .iter()
                .enumerate()
                .filter(|(i, _)| keep.contains(i))
                .map(|(_, e)| e.clone())
                .collect();
        }
        g
    }

    fn picture_nodes(&self, max: usize) -> OrderGraph {
        if self.nodes.len() <= max {
            return self.clone();
        }
        let mut keep: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].in_violation)
            .collect();
        let mut kept: HashSet<usize> = keep.iter().copied().collect();
        let mut neighbors: Vec<usize> = Vec::new();
        for e in &self.edges {
            if kept.contains(&e.from) && !kept.contains(&e.to) {
                neighbors.push(e.to);
            } else if kept.contains(&e.to) && !kept.contains(&e.from) {
                neighbors.push(e.from);
            }
        }
        let mut degree = vec![0usize; self.nodes.len()];
        for e in &self.edges {
            degree[e.from] += 1;
            degree[e.to] += 1;
        }
        let mut rest: Vec<usize> = (0..self.nodes.len()).collect();
        rest.sort_by_key(|&i| (std::cmp::Reverse(degree[i]), i));
        for i in neighbors.into_iter().chain(rest) {
            if keep.len() >= max {
                break;
            }
            if kept.insert(i) {
                keep.push(i);
            }
        }
        keep.truncate(max);
        keep.sort_unstable();
        let new_index: HashMap<usize, usize> =
            keep.iter().enumerate().map(|(n, &o)| (o, n)).collect();
        OrderGraph {
            level: self.level.clone(),
            nodes: keep.iter().map(|&i| self.nodes[i].clone()).collect(),
            edges: self
                .edges
                .iter()
                .filter_map(|e| {
                    Some(GraphEdge {
                        from: *new_index.get(&e.from)?,
                        to: *new_index.get(&e.to)?,
                        ..e.clone()
                    })
                })
                .collect(),
            omitted: self.nodes.len() - keep.len() + self.omitted,
            omitted_edges: self.omitted_edges,
        }
    }

    /// Graphviz DOT text: nodes as boxes, edges labelled by site, violations in red.
    pub fn to_dot(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "digraph lockcheck {{");
        let _ = writeln!(
            s,
            "    graph [label={}, labelloc=t];",
            quote(&format!(
                "lock-order graph ({} level): an edge A -> B means B was acquired while holding A; red: violations",
                self.level
            ))
        );
        let _ = writeln!(s, "    node [shape=box, fontsize=12];");
        let _ = writeln!(s, "    edge [fontsize=10];");
        for (i, n) in self.nodes.iter().enumerate() {
            let color = if n.in_violation {
                ", color=red, fontcolor=red"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "    n{i} [label={}{color}];",
                quote(&format!("{}\n({})", n.name, n.kind))
            );
        }
        for e in &self.edges {
            let color = if e.in_violation {
                ", color=red, fontcolor=red, penwidth=2"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "    n{} -> n{} [label={}{color}];",
                e.from,
                e.to,
                quote(&edge_label(e))
            );
        }
        if self.omitted > 0 || self.omitted_edges > 0 {
            let _ = writeln!(
                s,
                "    omitted [shape=plaintext, label={}];",
                quote(&format!(
                    "... {} more locks and {} more edges not drawn",
                    self.omitted, self.omitted_edges
                ))
            );
        }
        let _ = writeln!(s, "}}");
        s
    }

    /// The graph as an SVG element (meant to be inlined in HTML), drawn as in the HTML report
    /// but without a report, so without the hierarchy's levels: one level, wrapped into rows.
    pub fn to_svg(&self) -> Result<String, String> {
        if self.nodes.is_empty() {
            return Ok(String::new());
        }
        Ok(crate::html::graph_svg(self))
    }
}

/// An edge's label: up to [`SITES_PER_LABEL`] sites, then a count.
fn edge_label(e: &GraphEdge) -> String {
    let mut parts: Vec<String> = e.sites.iter().take(SITES_PER_LABEL).cloned().collect();
    if e.sites.len() > SITES_PER_LABEL {
        parts.push(format!("(+{} more)", e.sites.len() - SITES_PER_LABEL));
    }
    if parts.is_empty() {
        parts.push(format!(
            "{} dependenc{}",
            e.dependencies,
            if e.dependencies == 1 { "y" } else { "ies" }
        ));
    }
    parts.join("\n")
}

/// A DOT double-quoted string.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => {}
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockcheck_core::trace::How;

    /// The counting sort of a bucket gives what the comparison sort of its keys gives (by
    /// target, then dependency ascending), and counts the distinct targets, on buckets of
    /// ascending dependencies with random targets (a simple xorshift), over few and many nodes.
    #[test]
    fn target_sort_orders_as_the_sort_of_the_keys() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for (nodes, len) in [(1, 64), (3, 100), (400, 100), (400, 6000), (5, 1000)] {
            let dep_to: Vec<u32> = (0..len * 2).map(|_| rand(nodes) as u32).collect();
            let mut bucket: Vec<u32> = (0..len * 2).filter(|_| rand(2) == 0).collect();
            let mut keyed: Vec<u64> = bucket
                .iter()
                .map(|&d| (u64::from(dep_to[d as usize]) << 32) | u64::from(d))
                .collect();
            keyed.sort_unstable();
            let expected: Vec<u32> = keyed.iter().map(|&k| k as u32).collect();
            let mut targets: Vec<u32> = bucket.iter().map(|&d| dep_to[d as usize]).collect();
            targets.sort_unstable();
            targets.dedup();
            let mut sorter = TargetSort::new(nodes as usize);
            let keys: Vec<u64> = bucket
                .iter()
                .map(|&d| (u64::from(dep_to[d as usize]) << 32) | u64::from(d))
                .collect();
            let (to, deps): (Vec<u32>, Vec<u32>) =
                keys.iter().map(|&k| ((k >> 32) as u32, k as u32)).unzip();
            for _ in 0..2 {
                let mut b = vec![u64::MAX; keys.len()];
                assert_eq!(sorter.sort_into(&to, &deps, &mut b), targets.len());
                assert_eq!(b, keyed, "{nodes} nodes, {} entries", bucket.len());
                let got: Vec<u32> = b.iter().map(|&k| k as u32).collect();
                assert_eq!(got, expected, "{nodes} nodes, {} entries", bucket.len());
            }
            bucket.clear();
            assert_eq!(sorter.sort_into(&[], &[], &mut []), 0);
        }
    }

    /// The dense placement by (source, target) counts builds the arrays that the per-source
    /// buckets sorted by target build, at both levels, on random traces (nesting up to 5 deep,
    /// releases out of order, tries, reads, forks and joins; locks declared in fewer classes,
    /// so that the class graph differs from the instance graph and has class self-pairs), and
    /// on an empty trace; the bound chooses the dense path up to its number of pairs only.
    #[test]
    fn the_dense_placement_builds_the_graph_of_the_buckets() {
        use crate::model::tests::random_events;
        use lockcheck_core::trace::{Event, LockKind};
        for seed in 0..24u64 {
            let (threads, locks) = (1 + seed % 6, 2 + seed * 7 % 60);
            let classes = 1 + locks as u32 / (1 + seed as u32 % 4);
            let mut events: Vec<Event> = (0..classes)
                .map(|c| Event::Class {
                    c,
                    key: format!("class {c}"),
                    kind: LockKind::Mutex,
                })
                .collect();
            events.extend((1..=locks).map(|l| Event::Lock {
                l,
                c: l as u32 % classes,
                permits: None,
            }));
            events.extend(random_events(seed, threads, locks, 40 + 60 * seed as usize));
            let mut b = crate::model::ModelBuilder::new();
            b.begin_trace("t");
            for e in &events {
                b.event(e);
            }
            let model = b.finish();
            assert!(
                !model.deps.is_empty() || seed == 0,
                "seed {seed}: no dependency"
            );
            for level in [GraphLevel::Instance, GraphLevel::Class] {
                let dense = LockGraph::build_with(&model, level, DENSE_PAIRS);
                let buckets = LockGraph::build_with(&model, level, 0);
                assert!(
                    buckets.edge_count() > 0 || model.deps.is_empty(),
                    "seed {seed}"
                );
                assert_eq!(dense.d, buckets.d, "seed {seed}, {level:?}");
                assert_eq!(LockGraph::build(&model, level).d, dense.d);
            }
        }
        let empty = crate::model::ModelBuilder::new().finish();
        for level in [GraphLevel::Instance, GraphLevel::Class] {
            let dense = LockGraph::build_with(&empty, level, DENSE_PAIRS);
            assert_eq!(dense.d, LockGraph::build_with(&empty, level, 0).d);
            assert_eq!(dense.edge_count(), 0);
        }
    }

    /// A graph with empty nodes between others (a node without out-edges shares its start with
    /// the next): `source` (a binary search) and the cursor of `sources` (read ascending, and
    /// after a jump back) name the node each edge was added under.
    #[test]
    fn sources_are_the_nodes_edges_leave() {
        let edges: Vec<(u32, u32)> = vec![(0, 3), (0, 7), (3, 0), (3, 1), (3, 9), (4, 2), (9, 0)];
        let g = LockGraph::from_edges(12, edges.iter().copied());
        let got: Vec<(u32, u32)> = g.edges().collect();
        assert_eq!(got, edges);
        for (e, &(a, b)) in edges.iter().enumerate() {
            assert_eq!(g.endpoints(e as u32), (a, b));
        }
        let mut s = g.sources();
        let ascending: Vec<u32> = (0..edges.len() as u32).map(|e| s.of(e)).collect();
        assert_eq!(ascending, vec![0, 0, 3, 3, 3, 4, 9]);
        assert_eq!([s.of(1), s.of(6), s.of(0), s.of(5)], [0, 9, 0, 4]);
        // The in-edges of a node, by source (the order the cursor is read in).
        let mut s = g.sources();
        let into_0: Vec<u32> = g.in_edges(0).iter().map(|&e| s.of(e)).collect();
        assert_eq!(into_0, vec![3, 9]);
    }

    /// Weights that fit in 32 bits are stored narrow, a larger one makes the table wide; both
    /// read back the same values.
    #[test]
    fn edge_weights_narrow_and_wide_read_the_same() {
        let narrow = EdgeWeights::from(vec![0, 5, u64::from(u32::MAX)]);
        assert!(matches!(narrow, EdgeWeights::Narrow(_)));
        assert_eq!(
            narrow.iter().collect::<Vec<_>>(),
            vec![0, 5, u64::from(u32::MAX)]
        );
        let wide = EdgeWeights::from(vec![0, 1 << 40, 7]);
        assert!(matches!(wide, EdgeWeights::Wide(_)));
        assert_eq!(wide.iter().collect::<Vec<_>>(), vec![0, 1 << 40, 7]);
        assert_eq!((wide.len(), wide.get(1)), (3, 1 << 40));
    }

    /// An edge weighs the acquisitions of its blocking dependencies (`try_*` ones weigh
    /// nothing), read from a per-dependency table, and a count beyond 32 bits, which that
    /// table does not hold, is read from the record and summed exactly.
    #[test]
    fn edge_weights_count_blocking_acquisitions_even_beyond_32_bits() {
        use lockcheck_core::trace::Event;
        let acq = |t: u64, l: u64, how: How| Event::Acquire {
            t,
            l,
            m: Mode::Exclusive,
            how,
            s: None,
            wait_ns: 0,
        };
        let rel = |t: u64, l: u64| Event::Release { t, l, hold_ns: 0 };
        let mut b = crate::model::ModelBuilder::new();
        b.begin_trace("t");
        // Locks 1 -> 2 twice by thread 1, by `try_lock` once by thread 2; 1 -> 3 once.
        for (t, second, how) in [
            (1, 2, How::Blocking),
            (1, 2, How::Blocking),
            (2, 2, How::Try),
            (3, 3, How::Blocking),
        ] {
            for e in [acq(t, 1, How::Blocking), acq(t, second, how)] {
                b.event(&e);
            }
            for e in [rel(t, second), rel(t, 1)] {
                b.event(&e);
            }
        }
        let mut model = b.finish();
        let weights_of = |model: &Model| {
            let g = LockGraph::build(model, GraphLevel::Instance);
            let w = g.weights(model);
            let named = |e: u32| {
                let (a, b) = g.endpoints(e);
                (model.locks[a as usize].local, model.locks[b as usize].local)
            };
            (0..g.edge_count() as u32)
                .map(|e| (named(e), w.get(e)))
                .collect::<Vec<_>>()
        };
        assert_eq!(weights_of(&model), vec![((1, 2), 2), ((1, 3), 1)]);
        let blocking = model
            .deps
            .iter()
            .position(|d| d.thread == 0 && d.how == How::Blocking)
            .expect("thread 1's dependency");
        // As the replay keeps the weight of a count beyond 32 bits.
        model.dep_keys[blocking].weight = WIDE_WEIGHT;
        model.deps[blocking].count = (1 << 40) + 3;
        assert_eq!(
            weights_of(&model),
            vec![((1, 2), (1 << 40) + 3), ((1, 3), 1)]
        );
        model.deps[blocking].count = u64::from(u32::MAX);
        assert_eq!(
            weights_of(&model),
            vec![((1, 2), u64::from(u32::MAX)), ((1, 3), 1)]
        );
    }

    /// No recursion per node: a chain of 100,000 locks closed into one cycle, and the same
    /// chain open (no component), on a test thread's default stack.
    #[test]
    fn sccs_of_a_100k_node_chain_do_not_overflow_the_stack() {
        let n = 100_000u32;
        let open = LockGraph::from_edges(n as usize, (0..n - 1).map(|i| (i, i + 1)));
        assert!(open.sccs(&|_| true).is_empty());
        let mut edges: Vec<(u32, u32)> = (0..n - 1).map(|i| (i, i + 1)).collect();
        edges.push((n - 1, 0));
        edges.sort_unstable();
        let closed = LockGraph::from_edges(n as usize, edges.into_iter());
        let all: Vec<u32> = (0..n).collect();
        assert_eq!(closed.sccs(&|_| true), vec![all]);
        // Without the closing edge (the last edge id: its source is the largest node).
        let last = closed.edge_count() as u32 - 1;
        assert!(closed.sccs(&|e| e != last).is_empty());
    }

    /// The hand-written Tarjan ([`LockGraph::sccs_by`]) agrees with petgraph's `tarjan_scc`
    /// (the design card's graph crate, kept as the reference) on random graphs of up to 300
    /// nodes, with and without an edge filter.
    #[test]
    fn sccs_agree_with_petgraph() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |m: u32| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % m as u64) as u32
        };
        for round in 0..200 {
            let n = 1 + rnd(if round % 4 == 0 { 300 } else { 30 });
            let mut edges: Vec<(u32, u32)> = (0..rnd(3 * n + 1))
                .map(|_| (rnd(n), rnd(n)))
                .filter(|(a, b)| a != b)
                .collect();
            edges.sort_unstable();
            edges.dedup();
            let g = LockGraph::from_edges(n as usize, edges.iter().copied());
            let skip = rnd(3);
            let keep = |e: u32| e % 3 != skip;
            for filter in [&(|_| true) as &dyn Fn(u32) -> bool, &keep] {
                let mut pg = petgraph::graph::DiGraph::<(), ()>::new();
                let ids: Vec<_> = (0..n).map(|_| pg.add_node(())).collect();
                for e in 0..g.edge_count() as u32 {
                    if filter(e) {
                        let (a, b) = g.endpoints(e);
                        pg.add_edge(ids[a as usize], ids[b as usize], ());
                    }
                }
                let mut want: Vec<Vec<u32>> = petgraph::algo::tarjan_scc(&pg)
                    .into_iter()
                    .filter(|c| c.len() > 1)
                    .map(|c| {
                        let mut c: Vec<u32> = c.iter().map(|v| v.index() as u32).collect();
                        c.sort_unstable();
                        c
                    })
                    .collect();
                want.sort();
                assert_eq!(g.sccs(filter), want, "round {round}, {n} nodes");
            }
        }
    }

    /// The components ([`LockGraph::sccs`]) are those of mutual reachability, on
    /// random graphs, with and without an edge filter.
    #[test]
    fn sccs_are_the_classes_of_mutual_reachability() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |m: u32| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % m as u64) as u32
        };
        for _ in 0..50 {
            let n = 2 + rnd(40);
            let mut edges: Vec<(u32, u32)> = (0..rnd(3 * n))
                .map(|_| (rnd(n), rnd(n)))
                .filter(|(a, b)| a != b)
                .collect();
            edges.sort_unstable();
            edges.dedup();
            let g = LockGraph::from_edges(n as usize, edges.iter().copied());
            let skip = rnd(4);
            let keep = |e: u32| e % 4 != skip;
            for filter in [&(|_| true) as &dyn Fn(u32) -> bool, &keep] {
                // Reachability by repeated relaxation over the kept edges.
                let mut reach = vec![vec![false; n as usize]; n as usize];
                for (v, r) in reach.iter_mut().enumerate() {
                    r[v] = true;
                }
                loop {
                    let mut changed = false;
                    for (e, &(a, b)) in edges.iter().enumerate() {
                        if !filter(e as u32) {
                            continue;
                        }
                        for r in reach.iter_mut() {
                            if r[a as usize] && !r[b as usize] {
                                r[b as usize] = true;
                                changed = true;
                            }
                        }
                    }
                    if !changed {
                        break;
                    }
                }
                let mut want: Vec<Vec<u32>> = Vec::new();
                for v in 0..n {
                    let c: Vec<u32> = (0..n)
                        .filter(|&w| reach[v as usize][w as usize] && reach[w as usize][v as usize])
                        .collect();
                    if c.len() > 1 && c[0] == v {
                        want.push(c);
                    }
                }
                want.sort();
                assert_eq!(g.sccs(filter), want, "{edges:?}");
            }
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }
}
