//! A suggested lock hierarchy: levels of lock classes that every observed blocking acquisition
//! obeys, after removing a small weighted feedback arc set.
//!
//! The class graph (edge `A -> B`: some thread acquired a `B` while holding an `A`, blocking or
//! timed; `try_*` acquisitions need no order) is made acyclic with the Eades–Lin–Smyth heuristic,
//! run inside each strongly connected component, improved by local search, made
//! inclusion-minimal and its cut edges exchanged for lighter cuts ([`min_fas_order`]). Edges
//! are weighted by the number of distinct dependencies on them, so the side of an inversion
//! made at fewer places is the one cut: those acquisition sites are the ones to change.
//! Levels are the longest-path layering of what remains: a class's level is one more than the
//! highest level of any class held when it is acquired, so "acquire in increasing level" holds
//! for every remaining edge.

use crate::cycles::{change_set_on, change_set_ranks, ChangeSet, GraphLevel};
use crate::graph::{EdgeWeights, LockGraph};
use crate::model::{ClassId, Model};
use lockcheck_core::trace::How;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};

mod exchange;
pub use exchange::{EXCHANGE_MAX_WORK, EXCHANGE_NETWORK_MAX_EDGES};

/// How many edges to change [`Hierarchy::removed_edges`] lists, those of violations first. A
/// program's hierarchy needs a handful; the hostile random trace's change set has 1.8M edges,
/// whose listing (a few hundred bytes each, with their sites) weighed 360 MB in memory and
/// 430 MB of JSON. The rest are counted in [`Hierarchy::removed_edges_unlisted`] and warned
/// about.
pub const MAX_REMOVED_EDGES_LISTED: usize = 10_000;

/// How many acquisition sites a removed edge lists.
pub const MAX_SITES_PER_REMOVED_EDGE: usize = 10;

/// The suggested hierarchy.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Hierarchy {
    /// Every class that takes part in a nested acquisition, by level then key.
    pub levels: Vec<LevelEntry>,
    /// The edges to remove (acquisitions to change) so that an order exists.
    pub removed_edges: Vec<RemovedEdge>,
    /// The levels as a Rust module to paste into a repository.
    pub rust: String,
    /// Components where the local search for the smallest change set stopped at
    /// [`MAX_LOCAL_SEARCH_PASSES`] (`removed_edges` may then be larger than needed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub local_search_stopped: u64,
    /// Components whose change set is not proven inclusion-minimal: the pass that puts back
    /// the edges closing no cycle was beyond its bounds ([`MINIMAL_PASS_MAX_BYTES`],
    /// [`MINIMAL_PASS_MAX_WORK`]), so `removed_edges` may hold an edge that needs no change.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_minimal: u64,
    /// Components where the exchange of a cut edge for a lighter cut stopped at its bounds
    /// ([`EXCHANGE_MAX_WORK`], [`EXCHANGE_NETWORK_MAX_EDGES`]): `removed_edges` may weigh
    /// more than a change set found by more exchanges.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub exchange_stopped: u64,
    /// Edges to change beyond [`MAX_REMOVED_EDGES_LISTED`], not in `removed_edges` (a warning
    /// of the report says so): only a trace whose lock graph makes no sense comes there.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub removed_edges_unlisted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One class and its level.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LevelEntry {
    /// Level: acquire in increasing level (0 first, outermost).
    pub level: u32,
    /// Class key.
    pub class: String,
    /// Class kind.
    pub kind: String,
    /// Name of the constant in [`Hierarchy::rust`].
    pub constant: String,
}

/// An edge of the class graph that breaks the order: change its acquisition sites.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RemovedEdge {
    /// Class held.
    pub from: String,
    /// Class acquired while holding `from`.
    pub to: String,
    /// Number of distinct dependencies on the edge.
    pub dependencies: u64,
    /// How many acquisitions made the edge (its weight: the rare order is the one to change).
    #[serde(default)]
    pub occurrences: u64,
    /// `file:line` of the acquisitions of `to` that made it (at most
    /// [`MAX_SITES_PER_REMOVED_EDGE`]).
    pub sites: Vec<String>,
    /// Whether the edge is part of a reported violation (else only of a filtered cycle).
    pub in_violation: bool,
}

/// `file:line` of a `file:line:col` location (other locations unchanged).
pub fn file_line(loc: &str) -> String {
    let mut parts = loc.rsplitn(3, ':');
    let (a, b) = (parts.next(), parts.next());
    match (a, b, parts.next()) {
        (Some(col), Some(line), Some(file))
            if col.chars().all(|c| c.is_ascii_digit())
                && line.chars().all(|c| c.is_ascii_digit()) =>
        {
            format!("{file}:{line}")
        }
        _ => loc.to_string(),
    }
}

/// A Rust constant name for a class key: `SCREAMING_SNAKE`, prefixed when it starts with a digit.
pub fn constant_name(key: &str) -> String {
    let mut s = String::new();
    let mut last_us = true;
    for ch in key.chars() {
        if ch.is_ascii_alphanumeric() {
            s.push(ch.to_ascii_uppercase());
            last_us = false;
        } else if !last_us {
            s.push('_');
            last_us = true;
        }
    }
    while s.ends_with('_') {
        s.pop();
    }
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "LOCK_");
    }
    s
}

/// A weighted graph over nodes `0..n` as the feedback arc set heuristics read it: the edges
/// leaving and entering a node, with their weights (no self-loops, at most one edge from a
/// node to another). Implemented by an edge list ([`EdgeLists`]) and by a component of the
/// shared lock graph seen in place ([`crate::cycles::change_set_on`]), so that a component of
/// millions of edges is not copied into adjacency lists of its own (on the hostile random
/// trace: 3M edges, twice).
pub(crate) trait FasGraph {
    /// Number of nodes.
    fn n(&self) -> usize;
    /// Calls `f(target, weight)` for each edge leaving `v`.
    fn for_out(&self, v: usize, f: impl FnMut(usize, u64));
    /// Calls `f(source, weight)` for each edge entering `v`.
    fn for_in(&self, v: usize, f: impl FnMut(usize, u64));
    /// At least the number of edges (`for_out`'s calls over every node): what a copy reserves.
    /// Counted through `for_out` unless the graph knows a bound without that walk.
    fn edges_at_most(&self) -> usize {
        let mut m = 0usize;
        for v in 0..self.n() {
            self.for_out(v, |_, _| m += 1);
        }
        m
    }
    /// The sum of the edge weights and the largest weight (0 and 0 without edges). Summed
    /// through `for_out` unless the graph kept them.
    fn total_and_max(&self) -> (u128, u64) {
        let (mut total, mut max_w) = (0u128, 0u64);
        for v in 0..self.n() {
            self.for_out(v, |_, w| {
                total += u128::from(w);
                max_w = max_w.max(w);
            });
        }
        (total, max_w)
    }
}

/// Compressed adjacency arrays of an edge list `(from, to, weight)` (self-loops left out, the
/// edges of a pair of nodes one edge of their summed weight).
pub(crate) struct EdgeLists {
    out_start: Vec<u32>,
    out: Vec<(u32, u64)>,
    in_start: Vec<u32>,
    inc: Vec<(u32, u64)>,
}

impl EdgeLists {
    pub(crate) fn new(n: usize, edges: &[(usize, usize, u64)]) -> Self {
        let mut merged: Vec<(usize, usize, u64)> = Vec::with_capacity(edges.len());
        let mut sorted = edges.to_vec();
        sorted.sort_by_key(|&(a, b, _)| (a, b));
        for (a, b, w) in sorted {
            match merged.last_mut() {
                Some(last) if (last.0, last.1) == (a, b) => last.2 = last.2.saturating_add(w),
                _ => merged.push((a, b, w)),
            }
        }
        let edges = &merged[..];
        let mut out_start = vec![0u32; n + 1];
        let mut in_start = vec![0u32; n + 1];
        for &(a, b, _) in edges.iter().filter(|e| e.0 != e.1) {
            out_start[a + 1] += 1;
            in_start[b + 1] += 1;
        }
        for v in 0..n {
            out_start[v + 1] += out_start[v];
            in_start[v + 1] += in_start[v];
        }
        let m = out_start[n] as usize;
        let (mut out, mut inc) = (vec![(0u32, 0u64); m], vec![(0u32, 0u64); m]);
        let (mut fo, mut fi) = (out_start.clone(), in_start.clone());
        for &(a, b, w) in edges.iter().filter(|e| e.0 != e.1) {
            out[fo[a] as usize] = (b as u32, w);
            fo[a] += 1;
            inc[fi[b] as usize] = (a as u32, w);
            fi[b] += 1;
        }
        EdgeLists {
            out_start,
            out,
            in_start,
            inc,
        }
    }
}

impl FasGraph for EdgeLists {
    fn n(&self) -> usize {
        self.out_start.len() - 1
    }
    fn for_out(&self, v: usize, mut f: impl FnMut(usize, u64)) {
        let r = self.out_start[v] as usize..self.out_start[v + 1] as usize;
        for &(x, w) in &self.out[r] {
            f(x as usize, w);
        }
    }
    fn for_in(&self, v: usize, mut f: impl FnMut(usize, u64)) {
        let r = self.in_start[v] as usize..self.in_start[v + 1] as usize;
        for &(x, w) in &self.inc[r] {
            f(x as usize, w);
        }
    }
}

/// Eades–Lin–Smyth on one weighted graph: a vertex sequence whose backward edges are a small
/// feedback arc set. `edges` are `(from, to, weight)` over nodes `0..n`.
pub fn eades_lin_smyth(n: usize, edges: &[(usize, usize, u64)]) -> Vec<usize> {
    eades_lin_smyth_on(&EdgeLists::new(n, edges))
}

/// [`eades_lin_smyth`] on any [`FasGraph`].
///
/// Each round removes the sinks and sources in sweeps over the nodes by index, then the node of
/// largest out-weight minus in-weight (ties to the smallest index). The sweeps are skipped when
/// no live node is a sink or a source (`pending` counts them, kept as edges go): on a dense
/// component there is none in most rounds, and the sweeps and the maximum over the live nodes
/// recomputed from two weight arrays were 0.5G of the 3.9G instructions of the hostile random
/// trace's change set. The order is the same as with the sweeps done.
pub(crate) fn eades_lin_smyth_on(g: &impl FasGraph) -> Vec<usize> {
    let n = g.n();
    // delta[v]: out-weight minus in-weight over the live nodes.
    let mut delta = vec![0i128; n];
    let (mut outd, mut ind) = (vec![0usize; n], vec![0usize; n]);
    for a in 0..n {
        g.for_out(a, |b, w| {
            delta[a] += i128::from(w);
            delta[b] -= i128::from(w);
            outd[a] += 1;
            ind[b] += 1;
        });
    }
    let mut alive = vec![true; n];
    let mut left = n;
    // Live nodes without out-edges or without in-edges: what a sweep would remove.
    let mut pending = (0..n).filter(|&v| outd[v] == 0 || ind[v] == 0).count();
    let (mut s1, mut s2) = (Vec::new(), Vec::new());
    let remove = |v: usize,
                  alive: &mut Vec<bool>,
                  delta: &mut Vec<i128>,
                  outd: &mut Vec<usize>,
                  ind: &mut Vec<usize>,
                  pending: &mut usize| {
        alive[v] = false;
        if outd[v] == 0 || ind[v] == 0 {
            *pending -= 1;
        }
        g.for_out(v, |b, w| {
            if alive[b] {
                delta[b] += i128::from(w);
                ind[b] -= 1;
                if ind[b] == 0 && outd[b] != 0 {
                    *pending += 1;
                }
            }
        });
        g.for_in(v, |a, w| {
            if alive[a] {
                delta[a] -= i128::from(w);
                outd[a] -= 1;
                if outd[a] == 0 && ind[a] != 0 {
                    *pending += 1;
                }
            }
        });
    };
    while left > 0 {
        while pending > 0 {
            for v in 0..n {
                if pending == 0 {
                    // No node further on is a sink or a source either.
                    break;
                }
                if alive[v] && outd[v] == 0 {
                    s2.push(v);
                    remove(v, &mut alive, &mut delta, &mut outd, &mut ind, &mut pending);
                    left -= 1;
                } else if alive[v] && ind[v] == 0 {
                    s1.push(v);
                    remove(v, &mut alive, &mut delta, &mut outd, &mut ind, &mut pending);
                    left -= 1;
                }
            }
        }
        if left == 0 {
            break;
        }
        // The live node of largest delta, the smallest index among equals.
        let mut best: Option<(usize, i128)> = None;
        for (v, &d) in delta.iter().enumerate() {
            if alive[v] && best.is_none_or(|(_, b)| d > b) {
                best = Some((v, d));
            }
        }
        let (best, _) = best.expect("some vertex is alive");
        s1.push(best);
        remove(
            best,
            &mut alive,
            &mut delta,
            &mut outd,
            &mut ind,
            &mut pending,
        );
        left -= 1;
    }
    s2.reverse();
    s1.extend(s2);
    s1
}

/// Components up to this many nodes get an exact minimum feedback arc set (dynamic programming
/// over subsets: `2^n * n` work); larger ones get Eades–Lin–Smyth improved by local search.
pub const EXACT_FAS_MAX_NODES: usize = 14;

/// Passes of the local search over every node of a large component. Each pass that moves a node
/// strictly lowers the weight of the backward edges, so the search ends on its own; this only
/// bounds the time on hostile inputs, and hitting it is reported by [`min_fas_order`].
pub const MAX_LOCAL_SEARCH_PASSES: usize = 100;

/// Total weight of the edges that go backward in `order` (a permutation of `0..n`).
pub fn backward_weight(n: usize, edges: &[(usize, usize, u64)], order: &[usize]) -> u64 {
    let mut pos = vec![0usize; n];
    for (p, &v) in order.iter().enumerate() {
        pos[v] = p;
    }
    edges
        .iter()
        .filter(|&&(a, b, _)| a != b && pos[a] > pos[b])
        .map(|&(_, _, w)| w)
        .sum()
}

/// A vertex order found by [`min_fas_order`], and how far its backward edges are proven small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FasOrder {
    /// A permutation of `0..n`; its backward edges are the feedback arc set.
    pub order: Vec<usize>,
    /// False when the local search stopped at [`MAX_LOCAL_SEARCH_PASSES`] while moves still
    /// helped.
    pub converged: bool,
    /// False when the backward edges are not proven inclusion-minimal: the pass that puts back
    /// every edge closing no cycle (`make_minimal`) was beyond [`MINIMAL_PASS_MAX_BYTES`] or
    /// [`MINIMAL_PASS_MAX_WORK`] and skipped or stopped.
    pub minimal: bool,
    /// False when the exchange of cut edges for lighter cuts stopped at its bounds
    /// ([`EXCHANGE_MAX_WORK`], [`EXCHANGE_NETWORK_MAX_EDGES`]): a lighter change set may exist.
    pub exchanged: bool,
}

impl FasOrder {
    fn exact(order: Vec<usize>) -> Self {
        FasOrder {
            order,
            converged: true,
            minimal: true,
            exchanged: true,
        }
    }
}

/// A vertex order of `0..n` whose backward edges (`(from, to, weight)` with `from` after `to`)
/// have a small total weight: a weighted feedback arc set. Exact for at most
/// [`EXACT_FAS_MAX_NODES`] nodes; otherwise Eades–Lin–Smyth, then local search (take one node
/// out and re-insert it at its best position, until no move helps), then a pass that puts back
/// every backward edge that closes no cycle, heaviest first (an inclusion-minimal set), then
/// exchanges (a cut edge put back when a lighter cut breaks every cycle it closes, the
/// inclusion-minimal pass again after them).
pub fn min_fas_order(n: usize, edges: &[(usize, usize, u64)]) -> FasOrder {
    if n <= 1 {
        return FasOrder::exact((0..n).collect());
    }
    if n <= EXACT_FAS_MAX_NODES {
        return FasOrder::exact(exact_fas_order(n, edges));
    }
    min_fas_order_on(&EdgeLists::new(n, edges))
}

/// [`min_fas_order`] on any [`FasGraph`]: the same order as on the graph's edge list.
pub(crate) fn min_fas_order_on(g: &impl FasGraph) -> FasOrder {
    let n = g.n();
    if n <= 1 {
        return FasOrder::exact((0..n).collect());
    }
    if n <= EXACT_FAS_MAX_NODES {
        // A minimum feedback arc set of positive weights is inclusion-minimal: putting an edge
        // back would lower its weight.
        let mut edges = Vec::new();
        for a in 0..n {
            g.for_out(a, |b, w| edges.push((a, b, w)));
        }
        edges.sort_unstable();
        return FasOrder::exact(exact_fas_order(n, &edges));
    }
    // The heuristics read every edge of the component once per pass: read through the lock
    // graph (an index and a weight looked up per edge) that cost 1.7 s per level on the hostile
    // random trace. A compact copy: 4 bytes per edge and direction when the component has at
    // most 2^16 nodes and every weight fits in 16 bits (the hostile random trace: 3000 nodes,
    // 3M edges, 24 MB where 8-byte entries took 48 MB at the peak of the run), else 8 bytes
    // when they fit in 32 bits, as they do on any trace of fewer than 4 billion acquisitions;
    // else the graph in place. The copy is made in one walk of the graph, reserved at a bound
    // of the edge count that the graph knows without a walk (for a component of the lock
    // graph: its nodes' edges, inside it or not): a first walk to count the edges and find the
    // largest weight was 147M instructions on the hostile random trace. A weight that does not
    // fit in 16 bits stops the first copy (the 32-bit one is made instead).
    fn run(g: &impl FasGraph) -> FasOrder {
        let mut order = eades_lin_smyth_on(g);
        let converged = local_search_on(g, &mut order);
        let mut minimal = make_minimal(g, &mut order);
        let exchanged = exchange::exchange_cuts_within(g, &mut order, EXCHANGE_MAX_WORK);
        if exchanged.swaps > 0 {
            // The cut edges that an exchange left closing no cycle go back.
            minimal = make_minimal(g, &mut order);
        }
        FasOrder {
            order,
            converged,
            minimal,
            exchanged: exchanged.complete,
        }
    }
    let bound = g.edges_at_most();
    if let Some(c) = CompactLists::<u16>::of(g, bound) {
        run(&c)
    } else if let Some(c) = CompactLists::<u32>::of(g, bound) {
        run(&c)
    } else {
        run(g)
    }
}

/// An unsigned integer type that [`CompactLists`] stores nodes and weights in.
trait Narrow: Copy {
    /// The value, if it fits.
    fn narrow(x: u64) -> Option<Self>;
    /// The value widened back.
    fn wide(self) -> u64;
}

impl Narrow for u16 {
    fn narrow(x: u64) -> Option<Self> {
        u16::try_from(x).ok()
    }
    fn wide(self) -> u64 {
        u64::from(self)
    }
}

impl Narrow for u32 {
    fn narrow(x: u64) -> Option<Self> {
        u32::try_from(x).ok()
    }
    fn wide(self) -> u64 {
        u64::from(self)
    }
}

/// A [`FasGraph`] copied into adjacency arrays of `(node, weight)`, each stored in `N`, with
/// the sum of its weights and the largest (counted by the copy, so that the local search and
/// its matrix need not walk the edges for them).
struct CompactLists<N> {
    out_start: Vec<u32>,
    out: Vec<(N, N)>,
    in_start: Vec<u32>,
    inc: Vec<(N, N)>,
    total: u128,
    max_w: u64,
}

impl<N: Narrow> CompactLists<N> {
    /// The copy of `g` (at most `bound` edges), or `None` if a node number or a weight does not
    /// fit in `N` or the bound is 2^32 edges or more.
    fn of(g: &impl FasGraph, bound: usize) -> Option<Self> {
        let n = g.n();
        if (n > 0 && N::narrow(n as u64 - 1).is_none()) || bound >= u32::MAX as usize {
            return None;
        }
        // Reserved at the bound, never grown: arrays grown by doubling would peak at twice
        // their size, and the pages of the bound beyond the edges copied are never touched.
        let mut out: Vec<(N, N)> = Vec::with_capacity(bound);
        let mut out_start: Vec<u32> = Vec::with_capacity(n + 1);
        let (mut total, mut max_w, mut fits) = (0u128, 0u64, true);
        out_start.push(0);
        for v in 0..n {
            g.for_out(v, |x, w| match N::narrow(w) {
                Some(nw) if fits && out.len() < bound => {
                    out.push((N::narrow(x as u64).expect("node numbers fit"), nw));
                    total += u128::from(w);
                    max_w = max_w.max(w);
                }
                _ => fits = false,
            });
            if !fits {
                return None;
            }
            out_start.push(out.len() as u32);
        }
        let pair = |x: usize, w: u64| {
            (
                N::narrow(x as u64).expect("node numbers fit"),
                N::narrow(w).expect("weights fit"),
            )
        };
        let mut c = CompactLists {
            out_start,
            out,
            in_start: Vec::with_capacity(n + 1),
            inc: Vec::new(),
            total,
            max_w,
        };
        // The in-lists are the out-lists transposed (a counting sort by target), not read
        // through `g.for_in`: on the lock graph that finds each in-edge's source by a search
        // in the edge offsets (3M searches on the hostile random trace, more than the rest of
        // the copy). Each in-list holds the same (node, weight) pairs as `g.for_in` gives, in
        // the order of the nodes, and its readers only sum over it, so the order is free.
        c.in_start.resize(n + 1, 0);
        for &(x, _) in &c.out {
            c.in_start[x.wide() as usize + 1] += 1;
        }
        for v in 0..n {
            c.in_start[v + 1] += c.in_start[v];
        }
        let mut next: Vec<u32> = c.in_start[..n].to_vec();
        c.inc = vec![pair(0, 0); c.out.len()];
        for v in 0..n {
            let r = c.out_start[v] as usize..c.out_start[v + 1] as usize;
            for &(x, w) in &c.out[r] {
                let at = &mut next[x.wide() as usize];
                c.inc[*at as usize] = (pair(v, 0).0, w);
                *at += 1;
            }
        }
        Some(c)
    }
}

impl<N: Narrow> FasGraph for CompactLists<N> {
    fn n(&self) -> usize {
        self.out_start.len() - 1
    }
    fn for_out(&self, v: usize, mut f: impl FnMut(usize, u64)) {
        let r = self.out_start[v] as usize..self.out_start[v + 1] as usize;
        for &(x, w) in &self.out[r] {
            f(x.wide() as usize, w.wide());
        }
    }
    fn for_in(&self, v: usize, mut f: impl FnMut(usize, u64)) {
        let r = self.in_start[v] as usize..self.in_start[v + 1] as usize;
        for &(x, w) in &self.inc[r] {
            f(x.wide() as usize, w.wide());
        }
    }
    fn edges_at_most(&self) -> usize {
        self.out.len()
    }
    fn total_and_max(&self) -> (u128, u64) {
        (self.total, self.max_w)
    }
}

/// Minimum weighted feedback arc set by dynamic programming over the sets of nodes placed first.
/// Ties go to the order that places smaller node indices first.
fn exact_fas_order(n: usize, edges: &[(usize, usize, u64)]) -> Vec<usize> {
    // out[v]: (bitmask of targets, weight) per edge leaving v.
    let mut out: Vec<Vec<(u32, u64)>> = vec![Vec::new(); n];
    for &(a, b, w) in edges {
        if a != b {
            out[a].push((1u32 << b, w));
        }
    }
    let full = (1usize << n) - 1;
    let mut best = vec![u64::MAX; full + 1];
    let mut choice = vec![0u8; full + 1];
    best[0] = 0;
    for set in 0..full {
        let base = best[set];
        if base == u64::MAX {
            continue;
        }
        for (v, out_v) in out.iter().enumerate() {
            if set & (1 << v) != 0 {
                continue;
            }
            // Placing v after `set`: its edges into `set` go backward.
            let cost: u64 = out_v
                .iter()
                .filter(|&&(m, _)| set as u32 & m != 0)
                .map(|&(_, w)| w)
                .sum();
            let next = set | (1 << v);
            if base + cost < best[next] {
                best[next] = base + cost;
                choice[next] = v as u8;
            }
        }
    }
    let mut order = Vec::with_capacity(n);
    let mut set = full;
    while set != 0 {
        let v = choice[set] as usize;
        order.push(v);
        set &= !(1 << v);
    }
    order.reverse();
    order
}

/// Re-insertion local search; returns false if it stopped at [`MAX_LOCAL_SEARCH_PASSES`].
#[cfg(test)]
fn local_search(n: usize, edges: &[(usize, usize, u64)], order: &mut [usize]) -> bool {
    local_search_on(&EdgeLists::new(n, edges), order)
}

/// A signed sum of edge weights in [`local_search_on`]: `i64` when the component's total
/// weight fits (every cost and difference it adds up is within the total), else `i128`.
trait Cost: Copy + Ord + std::ops::AddAssign + std::ops::SubAssign {
    const ZERO: Self;
    fn of(w: u64) -> Self;
}

impl Cost for i32 {
    const ZERO: Self = 0;
    fn of(w: u64) -> Self {
        w as i32
    }
}

impl Cost for i64 {
    const ZERO: Self = 0;
    fn of(w: u64) -> Self {
        w as i64
    }
}

impl Cost for i128 {
    const ZERO: Self = 0;
    fn of(w: u64) -> Self {
        w as i128
    }
}

/// The re-insertion local search on any [`FasGraph`] (what the tests' `local_search` runs):
/// [`local_search_in`], or its matrix form, in the narrowest cost type that holds the weights.
fn local_search_on(g: &impl FasGraph, order: &mut [usize]) -> bool {
    let (total, _) = g.total_and_max();
    // Every sum of the search lies within the component's total weight: the narrowest type
    // that holds it (the hostile random trace fits in 32 bits, its difference array in L1).
    if total <= i32::MAX as u128 {
        if let Some(m) = WeightMatrix::of(g) {
            return local_search_matrix(&m, order);
        }
        local_search_in::<i32>(g, order)
    } else if total <= i64::MAX as u128 {
        local_search_in::<i64>(g, order)
    } else {
        local_search_in::<i128>(g, order)
    }
}

/// A move of the local search: the node at position `from` of `order` re-inserted at `to`, and
/// the positions (`pos`, by node) of the nodes between the two updated.
fn move_node(order: &mut [usize], pos: &mut [u32], from: usize, to: usize) {
    reinsert(order, from, to);
    let (lo, hi) = (from.min(to), from.max(to));
    for (p, &x) in order.iter().enumerate().take(hi + 1).skip(lo) {
        pos[x] = p as u32;
    }
}

/// The element at `from` taken out of `seq` and put back at `to` (an index of `seq` without
/// it), as `remove` then `insert` would: a rotation of the elements between the two by one,
/// where `remove` and `insert` each shifted the whole tail after them (the local search's 12,000
/// moves on the hostile random trace: 103M instructions of `memcpy`).
fn reinsert<T>(seq: &mut [T], from: usize, to: usize) {
    if from < to {
        seq[from..=to].rotate_left(1);
    } else if to < from {
        seq[to..=from].rotate_right(1);
    }
}

/// The largest weight matrix of the local search (`WeightMatrix`, `local_search_on`): 32 MiB,
/// a component of up to 4096 nodes (the hostile random trace's has 3000: 24 MB, its rows 4096
/// wide). Larger components, or weights beyond 16 bits, take the edge lists as before (the same
/// moves, more work).
pub const LOCAL_SEARCH_MATRIX_MAX_BYTES: usize = 32 << 20;

/// The row widths of a [`WeightMatrix`]: the smallest that holds the component's nodes.
const MATRIX_STRIDES: [usize; 3] = [256, 1024, 4096];

/// A component's edge weights as a square matrix by node: `w[v * stride + x]` is the weight of
/// `v -> x` minus that of `x -> v`, in 16 bits; and each node's total in-weight.
///
/// Why: each move of the local search costs the node's edges scattered into a difference array
/// by position, then a scan of the positions; on a dense component (the hostile random
/// trace: 3000 nodes, 4.75M edges, 15 passes) the scatter was half of its 3.3G instructions.
/// With the matrix, the scan reads the node's row in the order's sequence and scatters
/// nothing: the same sums, so the same moves.
///
/// Rows are [`MATRIX_STRIDES`] wide (a power of two at least `n`), so that the scan reads a row
/// as an array of that constant length by an index masked to it: no bounds check per element
/// read (the crate has no `unsafe`): 1,475M -> 1,272M instructions on the hostile random trace.
struct WeightMatrix {
    n: usize,
    stride: usize,
    w: Vec<i16>,
    in_total: Vec<i32>,
}

impl WeightMatrix {
    /// The matrix of `g`, or `None` when it would be larger than
    /// [`LOCAL_SEARCH_MATRIX_MAX_BYTES`], a difference does not fit in 16 bits, or an in-weight
    /// total not in 32 bits (the caller checked that the total weight fits).
    fn of(g: &impl FasGraph) -> Option<WeightMatrix> {
        let stride = *MATRIX_STRIDES.iter().find(|&&s| s >= g.n())?;
        Self::with_stride(g, stride)
    }

    /// [`WeightMatrix::of`] with rows `stride` wide (one of [`MATRIX_STRIDES`], at least `n`).
    fn with_stride(g: &impl FasGraph, stride: usize) -> Option<WeightMatrix> {
        let n = g.n();
        debug_assert!(MATRIX_STRIDES.contains(&stride) && stride >= n);
        if n.checked_mul(stride)?.checked_mul(2)? > LOCAL_SEARCH_MATRIX_MAX_BYTES {
            return None;
        }
        let (_, max_w) = g.total_and_max();
        if max_w > i16::MAX as u64 {
            return None;
        }
        let mut w = vec![0i16; n * stride];
        let mut fits = true;
        for a in 0..n {
            g.for_out(a, |b, x| {
                let x = x as i16;
                match (
                    w[a * stride + b].checked_add(x),
                    w[b * stride + a].checked_sub(x),
                ) {
                    (Some(ab), Some(ba)) => {
                        w[a * stride + b] = ab;
                        w[b * stride + a] = ba;
                    }
                    _ => fits = false,
                }
            });
        }
        if !fits {
            return None;
        }
        let mut in_total = vec![0i32; n];
        for (v, t) in in_total.iter_mut().enumerate() {
            let mut sum = 0i64;
            g.for_in(v, |_, x| sum += x as i64);
            *t = i32::try_from(sum).ok()?;
        }
        Some(WeightMatrix {
            n,
            stride,
            w,
            in_total,
        })
    }
}

/// [`local_search_in`] over a [`WeightMatrix`] (sums in `i32`, as the total weight fits): the
/// same passes, the same costs compared in the same sequence, so the same moves and order.
fn local_search_matrix(m: &WeightMatrix, order: &mut [usize]) -> bool {
    match m.stride {
        256 => local_search_rows::<256>(m, order),
        1024 => local_search_rows::<1024>(m, order),
        _ => local_search_rows::<4096>(m, order),
    }
}

/// [`local_search_matrix`] with rows `S` wide.
fn local_search_rows<const S: usize>(m: &WeightMatrix, order: &mut [usize]) -> bool {
    let n = m.n;
    assert_eq!(m.stride, S, "the matrix's rows are S wide");
    let mut pos = vec![0u32; n];
    // The order as `u32` (read once per position of every scan: half the cache of `usize`).
    let mut seq: Vec<u32> = order.iter().map(|&x| x as u32).collect();
    for (p, &x) in order.iter().enumerate() {
        pos[x] = p as u32;
    }
    // Each row's most negative entry (0 if none): the most a cost can fall per node passed.
    let drop: Vec<i32> = (0..n)
        .map(|v| {
            let row = &m.w[v * S..v * S + n];
            i32::from(row.iter().copied().min().unwrap_or(0).min(0))
        })
        .collect();
    for _ in 0..MAX_LOCAL_SEARCH_PASSES {
        let mut improved = false;
        for v in 0..n {
            let cur = pos[v] as usize;
            let row: &[i16; S] = m.w[v * S..(v + 1) * S].try_into().expect("a row is S wide");
            // As in local_search_in: the cost at insertion point 0 is v's in-weight; passing
            // node x adds row[x] (its slot in the difference array there).
            let mut cost = m.in_total[v];
            let mut best = (cost, 0usize);
            scan_row(row, drop[v], &seq[..cur], 1, &mut cost, &mut best);
            let cur_cost = cost;
            scan_row(row, drop[v], &seq[cur + 1..], cur + 1, &mut cost, &mut best);
            if best.0 < cur_cost {
                reinsert(&mut seq, cur, best.1);
                move_node(order, &mut pos, cur, best.1);
                improved = true;
            }
        }
        if !improved {
            return true;
        }
    }
    false
}

/// The scan of [`local_search_matrix`]: for each node `x` of `seq` in turn, adds `row[x]` to
/// `cost` and, where the sum is below `best`'s, makes it `best` at the insertion point `first`
/// plus the node's index. Eight nodes at a time: when even a fall of `drop` (the row's most
/// negative entry, at most 0) at each of the eight cannot bring the sum below `best`, none of the
/// eight sums can be, and only their total is added (on the hostile random trace most blocks
/// are these: the sum wanders tens above the lowest seen, `drop` is a few units); else four
/// at a time: the four sums, then their minimum compared once (the earliest of equal sums, as
/// one by one with a strict comparison), where one comparison per node was a third of the local
/// search's 12 instructions per node on that trace. The same sums in the same order: the same
/// answer. Every node is below `S` (a power of two), so masking it changes nothing and spares
/// the bounds check.
#[inline]
fn scan_row<const S: usize>(
    row: &[i16; S],
    drop: i32,
    seq: &[u32],
    first: usize,
    cost: &mut i32,
    best: &mut (i32, usize),
) {
    debug_assert!(drop <= 0);
    let at = |x: u32| i32::from(row[x as usize & (S - 1)]);
    let mut c = *cost;
    let fall = 8 * drop;
    let chunks = seq.chunks_exact(8);
    let tail = chunks.remainder();
    for (k, q) in chunks.enumerate() {
        if c + fall >= best.0 {
            // Each sum of the block is at least c + 8 * drop: none is below best.
            c += (at(q[0]) + at(q[1]))
                + (at(q[2]) + at(q[3]))
                + ((at(q[4]) + at(q[5])) + (at(q[6]) + at(q[7])));
            continue;
        }
        for (h, q) in q.chunks_exact(4).enumerate() {
            let s0 = c + at(q[0]);
            let s1 = s0 + at(q[1]);
            let s2 = s1 + at(q[2]);
            let s3 = s2 + at(q[3]);
            c = s3;
            let low = s0.min(s1).min(s2.min(s3));
            if low < best.0 {
                let at = if s0 == low {
                    0
                } else if s1 == low {
                    1
                } else if s2 == low {
                    2
                } else {
                    3
                };
                *best = (low, first + 8 * k + 4 * h + at);
            }
        }
    }
    let base = first + seq.len() - tail.len();
    for (i, &x) in tail.iter().enumerate() {
        c += at(x);
        if c < best.0 {
            *best = (c, base + i);
        }
    }
    *cost = c;
}

/// A node of [`local_search_in`] is scanned through its edges' positions alone
/// ([`scan_touched`]) when its edges number less than `1 / SPARSE_SCAN_SHARE` of the nodes,
/// else position by position ([`scan_all`]). Both give the same sums at the same points.
const SPARSE_SCAN_SHARE: usize = 8;

/// [`local_search_on`] summing in `C`.
///
/// Each move of a node `v` looks for the insertion point of least cost: the cost changes only
/// at the positions of `v`'s neighbours. On a large sparse component (`--locks 30000` random:
/// 17,244 nodes, 750 edges per node) a scan of every position was 16 s; the scan of the
/// positions marked in a bitset while the edges are scattered reads `n / 64` words and each
/// neighbour once ([`scan_touched`]), with the same sums compared in the same sequence (a
/// position without an edge leaves the cost as it is, so it can never be a new best).
fn local_search_in<C: Cost>(g: &impl FasGraph, order: &mut [usize]) -> bool {
    let n = g.n();
    // pos[x]: the position of node x in `order` (`u32`: half the cache of `usize`).
    let mut pos = vec![0u32; n];
    for (p, &x) in order.iter().enumerate() {
        pos[x] = p as u32;
    }
    // diff[p] = weight of v -> x minus weight of x -> v for the node x at position p, for the
    // node v being moved: moving the insertion point of v past x changes its cost by exactly
    // that. Indexed by position, so that the scan below reads it in order.
    let mut diff = vec![C::ZERO; n];
    // Bit p: diff[p] was written for this node.
    let mut touched = vec![0u64; n.div_ceil(64)];
    for _ in 0..MAX_LOCAL_SEARCH_PASSES {
        let mut improved = false;
        for v in 0..n {
            let cur = pos[v] as usize;
            let mut edges = 0usize;
            g.for_out(v, |x, w| {
                let p = pos[x] as usize;
                diff[p] += C::of(w);
                touched[p / 64] |= 1 << (p % 64);
                edges += 1;
            });
            let mut in_total = C::ZERO;
            g.for_in(v, |x, w| {
                let p = pos[x] as usize;
                diff[p] -= C::of(w);
                touched[p / 64] |= 1 << (p % 64);
                in_total += C::of(w);
                edges += 1;
            });
            let (best, cur_cost) = if edges * SPARSE_SCAN_SHARE < n {
                scan_touched(&mut diff, &mut touched, cur, in_total)
            } else {
                touched.fill(0);
                scan_all(&mut diff, cur, in_total)
            };
            if best.0 < cur_cost {
                move_node(order, &mut pos, cur, best.1);
                improved = true;
            }
        }
        if !improved {
            return true;
        }
    }
    false
}

/// The scan of one node of [`local_search_in`], position by position: the least cost and its
/// insertion point (the first of equals), and the cost where the node is (`cur`). Cost of the
/// node at insertion point p of the order without it: edges v -> x with x before p, plus edges
/// x -> v with x at or after p. Scan p from 0 up: the positions before v's are insertion points
/// 1..=cur, those after it cur+1.. (v's own slot, whose sum is 0 as its self-loop counts out and
/// in, is skipped). The scan clears what it read, for the next node: cheaper than a second pass
/// over v's edges.
fn scan_all<C: Cost>(diff: &mut [C], cur: usize, in_total: C) -> ((C, usize), C) {
    let mut cost = in_total;
    let mut best = (cost, 0usize);
    for (i, d) in diff[..cur].iter_mut().enumerate() {
        cost += *d;
        *d = C::ZERO;
        if cost < best.0 {
            best = (cost, i + 1);
        }
    }
    let cur_cost = cost;
    diff[cur] = C::ZERO;
    for (i, d) in diff[cur + 1..].iter_mut().enumerate() {
        cost += *d;
        *d = C::ZERO;
        if cost < best.0 {
            best = (cost, cur + 1 + i);
        }
    }
    (best, cur_cost)
}

/// [`scan_all`] over the positions whose bit is set in `touched` only (the others hold 0 and
/// leave the cost as it is: never below the best, which is at most the cost so far). Clears
/// the bits and the entries it read.
fn scan_touched<C: Cost>(
    diff: &mut [C],
    touched: &mut [u64],
    cur: usize,
    in_total: C,
) -> ((C, usize), C) {
    let mut cost = in_total;
    let mut best = (cost, 0usize);
    let mut cur_cost = None;
    for (i, word) in touched.iter_mut().enumerate() {
        let mut bits = std::mem::take(word);
        while bits != 0 {
            let p = i * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let d = std::mem::replace(&mut diff[p], C::ZERO);
            if p == cur {
                continue;
            }
            if p > cur && cur_cost.is_none() {
                cur_cost = Some(cost);
            }
            cost += d;
            let point = if p < cur { p + 1 } else { p };
            if cost < best.0 {
                best = (cost, point);
            }
        }
    }
    (best, cur_cost.unwrap_or(cost))
}

/// The largest reachability table of the minimality pass of [`min_fas_order`] (one bit per pair of nodes of a
/// component): 32 MiB, a component of up to 16,384 nodes. A program's lock classes number in
/// the hundreds; the hostile random trace's component has 3000 (1.1 MB).
pub const MINIMAL_PASS_MAX_BYTES: usize = 32 << 20;

/// The most work the minimality pass of [`min_fas_order`] does on one component, in 64-bit words read or written (about
/// a second on this project's machine). The hostile random trace's component is far within it:
/// its change set phase takes no measurable CPU time more (docs/benchmarks-history.md, branch `minfix`).
pub const MINIMAL_PASS_MAX_WORK: u64 = 1 << 30;

/// Row `src` of the bit matrix `reach` (`words` words a row) or-ed into row `dst` (`dst != src`).
fn or_row(reach: &mut [u64], words: usize, dst: usize, src: usize) {
    let (d, s) = if dst < src {
        let (lo, hi) = reach.split_at_mut(src * words);
        (&mut lo[dst * words..(dst + 1) * words], &hi[..words])
    } else {
        let (lo, hi) = reach.split_at_mut(dst * words);
        (&mut hi[..words], &lo[src * words..(src + 1) * words])
    };
    for (a, b) in d.iter_mut().zip(s) {
        *a |= *b;
    }
}

/// Makes the backward edges of `order` an inclusion-minimal feedback arc set: an edge is put
/// back (made forward) when it closes no cycle with the edges kept, the heaviest first, ties by
/// node index. Returns false when the pass was beyond [`MINIMAL_PASS_MAX_BYTES`] (`order` left
/// as it is) or stopped at [`MINIMAL_PASS_MAX_WORK`] (the edges put back until then are kept).
///
/// Why: the local search moves one node at a time, and stops at an order where an edge goes
/// backward although no path runs the other way in the edges kept; such an edge is a change
/// the user does not need. (Proptest found one: a consistent edge of weight 10 cut beside the
/// two planted inversions of weight 1.) Eades–Lin–Smyth and the local search only ever put a
/// node before or after others, never ask whether a cut edge is needed; this pass asks it of
/// each cut edge.
///
/// How: the edges kept are a DAG, `order` one of its topological orders. A bit matrix holds
/// its transitive closure (each node's descendants), built in one sweep from the last node to
/// the first. A backward edge `a -> b` closes a cycle exactly when `a` is a descendant of `b`:
/// one bit read. Edges that close a cycle keep closing one as edges are put back, so only the
/// others are candidates (on the traces measured, none or a handful: the cost is the sweep).
/// Putting `a -> b` back adds `b` and its descendants to `a` and each ancestor of `a`. The
/// order returned sorts the nodes by their number of descendants, largest first (ties in the
/// old order): a node has strictly more descendants than any of its descendants, so every edge
/// kept or put back goes forward, and the edges that still close a cycle go backward in any
/// topological order. When every backward edge closes a cycle, `order` is untouched.
///
/// Considered and not chosen: a depth-first search per backward edge (no table, but the
/// hostile random trace's component has 1.8M backward edges in a graph of 3M: far too slow);
/// re-adding the edges that go forward in one other topological order of the kept DAG (one
/// pass and no table, but which order finds them? not minimal in general).
fn make_minimal(g: &impl FasGraph, order: &mut [usize]) -> bool {
    make_minimal_within(g, order, MINIMAL_PASS_MAX_BYTES, MINIMAL_PASS_MAX_WORK)
}

/// [`make_minimal`] with the bounds as arguments (tests reach them on small graphs).
fn make_minimal_within(
    g: &impl FasGraph,
    order: &mut [usize],
    max_bytes: usize,
    max_work: u64,
) -> bool {
    let n = g.n();
    let words = n.div_ceil(64);
    if n.saturating_mul(words).saturating_mul(8) > max_bytes {
        return false;
    }
    let mut pos = vec![0usize; n];
    for (p, &v) in order.iter().enumerate() {
        pos[v] = p;
    }
    let bit = |reach: &[u64], row: usize, col: usize| {
        reach[row * words + col / 64] >> (col % 64) & 1 != 0
    };
    let set = |reach: &mut [u64], row: usize, col: usize| {
        reach[row * words + col / 64] |= 1 << (col % 64)
    };
    let mut reach = vec![0u64; n * words];
    let mut work = 0u64;
    // The closure of the forward edges, sinks first. A successor already known as a
    // descendant brings nothing new (its descendants are known too).
    for &v in order.iter().rev() {
        g.for_out(v, |x, _| {
            if pos[x] > pos[v] && !bit(&reach, v, x) {
                or_row(&mut reach, words, v, x);
                set(&mut reach, v, x);
                work += words as u64;
            }
        });
        work += 1;
        if work > max_work {
            return false;
        }
    }
    // Backward edges that close no cycle yet, heaviest first.
    let mut candidates: Vec<(std::cmp::Reverse<u64>, usize, usize)> = Vec::new();
    for a in 0..n {
        g.for_out(a, |b, w| {
            if pos[a] > pos[b] && !bit(&reach, b, a) {
                candidates.push((std::cmp::Reverse(w), a, b));
            }
        });
    }
    if candidates.is_empty() {
        return true;
    }
    candidates.sort_unstable();
    let mut row_b = vec![0u64; words];
    let mut minimal = true;
    for &(_, a, b) in &candidates {
        if bit(&reach, b, a) {
            continue;
        }
        if work > max_work {
            minimal = false;
            break;
        }
        // Put a -> b back: a and its ancestors reach b and its descendants. b is no ancestor of
        // a (that would close the cycle), so its row does not change meanwhile.
        row_b.copy_from_slice(&reach[b * words..(b + 1) * words]);
        for x in 0..n {
            if (x == a || bit(&reach, x, a)) && !bit(&reach, x, b) {
                for (d, s) in reach[x * words..(x + 1) * words].iter_mut().zip(&row_b) {
                    *d |= *s;
                }
                set(&mut reach, x, b);
                work += words as u64;
            }
        }
        work += n as u64 + words as u64;
    }
    let count = |v: usize| -> u32 {
        reach[v * words..(v + 1) * words]
            .iter()
            .map(|w| w.count_ones())
            .sum()
    };
    let mut keyed: Vec<(std::cmp::Reverse<u32>, usize, usize)> = order
        .iter()
        .enumerate()
        .map(|(p, &v)| (std::cmp::Reverse(count(v)), p, v))
        .collect();
    keyed.sort_unstable();
    for (slot, &(_, _, v)) in order.iter_mut().zip(&keyed) {
        *slot = v;
    }
    minimal
}

/// Computes the hierarchy. `violating` holds the class edges of reported violations. Edges are
/// weighted by how often they occur; the change set is a small weighted feedback arc set per
/// strongly connected component ([`min_fas_order`]).
pub fn suggest(model: &Model, violating: &HashSet<(ClassId, ClassId)>) -> Hierarchy {
    let graph = LockGraph::build(model, GraphLevel::Class);
    let weights = graph.weights(model);
    let change = class_change_set(model, &graph, &weights);
    suggest_on(model, &graph, &weights, &change, violating)
}

/// The change set of the class graph, ties broken by class key (not by id: ids follow the order
/// of first appearance, which the interleaving of threads decides). The class-level root-cause
/// search and [`suggest_on`] share it.
pub fn class_change_set(model: &Model, graph: &LockGraph, weights: &EdgeWeights) -> ChangeSet {
    let ranks = change_set_ranks(model, GraphLevel::Class);
    change_set_on(graph, weights, &|n| {
        ranks.get(n as usize).copied().unwrap_or(u64::MAX)
    })
}

/// [`suggest`] on the class graph, its edge weights ([`LockGraph::weights`]) and its change set
/// ([`class_change_set`]) computed once by the caller.
pub fn suggest_on(
    model: &Model,
    graph: &LockGraph,
    weights: &EdgeWeights,
    change: &ChangeSet,
    violating: &HashSet<(ClassId, ClassId)>,
) -> Hierarchy {
    suggest_listing(
        model,
        graph,
        weights,
        change,
        violating,
        MAX_REMOVED_EDGES_LISTED,
    )
}

/// [`suggest_on`] listing at most `max_listed` edges to change.
fn suggest_listing(
    model: &Model,
    graph: &LockGraph,
    weights: &EdgeWeights,
    change: &ChangeSet,
    violating: &HashSet<(ClassId, ClassId)>,
    max_listed: usize,
) -> Hierarchy {
    let n = graph.nodes();
    // Whether an edge's class pair is a violation's, looked up for every edge of the change set,
    // twice when not all are listed (1.8M edges on the hostile random trace: SipHash made these
    // lookups 0.9G instructions, a fast hash 0.15G): one bit per edge, set through the graph's
    // edge of each pair (a pair without an edge is no edge's either).
    let mut violating_edge = crate::cycles::ChangeSet::new(graph.edge_count());
    for &(a, b) in violating {
        if let Some(e) = ((a as usize) < n).then(|| graph.find(a, b)).flatten() {
            violating_edge.insert(e);
        }
    }
    let is_removed = |e: u32| change.contains(e);
    // Classes with a blocking or timed nested acquisition, by id (the edges read node by node,
    // so each one's source is known).
    let mut in_graph = vec![false; n];
    let mut indeg = vec![0usize; n];
    for a in 0..n as u32 {
        for e in graph.out_edges(a) {
            if weights.get(e) == 0 {
                continue;
            }
            let b = graph.target(e);
            in_graph[a as usize] = true;
            in_graph[b as usize] = true;
            if !is_removed(e) {
                indeg[b as usize] += 1;
            }
        }
    }
    let nodes: Vec<ClassId> = (0..n as u32).filter(|&c| in_graph[c as usize]).collect();
    // Longest-path layering of the remaining DAG (Kahn order).
    let mut level = vec![0u32; n];
    let mut queue: std::collections::VecDeque<ClassId> = nodes
        .iter()
        .copied()
        .filter(|&c| indeg[c as usize] == 0)
        .collect();
    while let Some(c) = queue.pop_front() {
        let lc = level[c as usize];
        for e in graph.out_edges(c) {
            let m = graph.target(e);
            if weights.get(e) == 0 || is_removed(e) {
                continue;
            }
            level[m as usize] = level[m as usize].max(lc + 1);
            indeg[m as usize] -= 1;
            if indeg[m as usize] == 0 {
                queue.push_back(m);
            }
        }
    }
    let mut used_names: HashMap<String, u32> = HashMap::new();
    let mut levels: Vec<LevelEntry> = nodes
        .iter()
        .map(|&c| {
            let class = &model.classes[c as usize];
            LevelEntry {
                level: level[c as usize],
                class: class.key.clone(),
                kind: format!("{:?}", class.kind).to_lowercase(),
                constant: String::new(),
            }
        })
        .collect();
    levels.sort_by(|a, b| (a.level, &a.class).cmp(&(b.level, &b.class)));
    for e in &mut levels {
        let base = constant_name(&e.class);
        let n = used_names.entry(base.clone()).or_insert(0);
        *n += 1;
        e.constant = if *n == 1 { base } else { format!("{base}_{n}") };
    }
    // Sites and dependency counts of the removed edges only, from the edges' own dependencies.
    // Those of violations first when not all are listed, each kept in the change set's order.
    let removed = || change.ids().zip(change.edges(graph));
    let listed: Vec<(u32, (ClassId, ClassId))> = if change.len() <= max_listed {
        removed().collect()
    } else {
        let in_violation = change.ids().filter(|&e| violating_edge.contains(e)).count();
        let mut others = max_listed.saturating_sub(in_violation);
        removed()
            .filter(|&(e, _)| {
                if violating_edge.contains(e) {
                    return true;
                }
                let keep = others > 0;
                others = others.saturating_sub(1);
                keep
            })
            .take(max_listed)
            .collect()
    };
    let removed_edges_unlisted = (change.len() - listed.len()) as u64;
    let removed_edges: Vec<RemovedEdge> = listed
        .iter()
        .map(|&(e, (a, b))| {
            let mut dependencies = 0u64;
            let mut sites: HashSet<crate::model::SiteId> = HashSet::new();
            for &d in graph.deps(e) {
                let rec = &model.deps[d as usize];
                if rec.how == How::Try {
                    continue;
                }
                dependencies += 1;
                sites.extend(model.sites_of(rec).filter_map(|ds| ds.site));
            }
            RemovedEdge {
                from: model.classes[a as usize].key.clone(),
                to: model.classes[b as usize].key.clone(),
                dependencies,
                occurrences: weights.get(e),
                sites: sites
                    .iter()
                    .map(|&s| file_line(model.site_loc(s)))
                    .collect::<BTreeSet<String>>()
                    .into_iter()
                    .take(MAX_SITES_PER_REMOVED_EDGE)
                    .collect(),
                in_violation: violating_edge.contains(e),
            }
        })
        .collect();
    let rust = rust_module(&levels, model.deps.len());
    Hierarchy {
        levels,
        removed_edges,
        rust,
        local_search_stopped: change.stopped,
        not_minimal: change.not_minimal,
        exchange_stopped: change.exchange_stopped,
        removed_edges_unlisted,
    }
}

fn rust_module(levels: &[LevelEntry], deps: usize) -> String {
    let mut s = String::new();
    s.push_str("/// Lock levels suggested by `lockcheck analyze` from ");
    s.push_str(&format!("{deps} observed lock dependencies.\n"));
    s.push_str("///\n/// Acquire locks in increasing level: while holding a lock of level `n`, take only locks of\n");
    s.push_str("/// levels greater than `n`.\n");
    s.push_str("pub mod lock_levels {\n");
    for e in levels {
        s.push_str(&format!(
            "    /// `{}` ({})\n",
            e.class.replace('`', "'"),
            e.kind
        ));
        s.push_str(&format!(
            "    pub const {}: u32 = {};\n",
            e.constant, e.level
        ));
    }
    s.push_str("}\n");
    s
}

/// Checks every observed nested acquisition against a declared hierarchy (class key -> level,
/// from `lockcheck.toml`): acquiring a class of level `a` while holding a class of level
/// `h >= a` is a `hierarchy-violation`, one finding per (held class, acquired class, acquisition
/// site). `try_*` acquisitions are exempt (they cannot wait, so they cannot deadlock); timed ones
/// are not. Classes without a declared level, and two locks of one class nested, are not judged.
/// Also returns a warning per declared class that the traces never mention (a typo, or code
/// that did not run).
pub fn check_declared(
    model: &Model,
    declared: &std::collections::BTreeMap<String, i64>,
) -> (Vec<crate::report::Violation>, Vec<String>) {
    use crate::report::{dependency_edge, fnv, LockRef, Violation};
    let mut warnings = Vec::new();
    if declared.is_empty() {
        return (Vec::new(), warnings);
    }
    let level_of: Vec<Option<i64>> = model
        .classes
        .iter()
        .map(|c| declared.get(&c.key).copied())
        .collect();
    for key in declared.keys() {
        if !model.classes.iter().any(|c| &c.key == key) {
            warnings.push(format!(
                "[hierarchy] declares class `{key}`, which no trace mentions"
            ));
        }
    }
    // (held class, acquired class, site) -> (first dependency, held lock, site index, count)
    type Key = (ClassId, ClassId, Option<String>);
    let mut found: std::collections::BTreeMap<Key, (u32, crate::model::LockId, usize, u64)> =
        std::collections::BTreeMap::new();
    for (d, rec) in model.deps.iter().enumerate() {
        if rec.how == How::Try {
            continue;
        }
        let to = model.locks[rec.lock as usize].class;
        let Some(la) = level_of[to as usize] else {
            continue;
        };
        for (h, _) in model.held(rec.held) {
            let from = model.locks[h as usize].class;
            if from == to {
                continue;
            }
            let Some(lh) = level_of[from as usize] else {
                continue;
            };
            if la > lh {
                continue;
            }
            let n = model.site_combinations(rec).max(1);
            for which in 0..n {
                let site = model
                    .sites_of(rec)
                    .nth(which)
                    .and_then(|s| s.site)
                    .map(|s| model.site_loc(s).to_string());
                let e = found
                    .entry((from, to, site))
                    .or_insert((d as u32, h, which, 0));
                e.3 += rec.count;
            }
        }
    }
    let lock_ref = |c: ClassId| {
        let class = &model.classes[c as usize];
        LockRef {
            name: class.key.clone(),
            class: class.key.clone(),
            kind: format!("{:?}", class.kind).to_lowercase(),
        }
    };
    let names = crate::report::Names::new(model);
    let violations = found
        .into_iter()
        .map(|((from, to, site), (d, h, which, count))| {
            let locks = vec![lock_ref(from), lock_ref(to)];
            let id = fnv(&[
                "hierarchy-violation".to_string(),
                locks[0].class.clone(),
                locks[1].class.clone(),
                "|".to_string(),
                site.clone().unwrap_or_default(),
            ]);
            let mut edge = dependency_edge(&names, d, Some(h), which);
            edge.count = count;
            Violation {
                id,
                kind: "hierarchy-violation".into(),
                rule: crate::rules::HIERARCHY_VIOLATION.into(),
                level: "class".into(),
                declared_levels: Some(vec![
                    level_of[from as usize].unwrap_or_default(),
                    level_of[to as usize].unwrap_or_default(),
                ]),
                locks,
                edges: vec![edge],
                class_cycle: None,
                combinations: count,
                baselined: false,
                root_cause: None,
            }
        })
        .collect();
    (violations, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `reinsert` moves an element as `remove` then `insert` did, for every pair of positions.
    #[test]
    fn reinsert_is_remove_then_insert() {
        for n in 1..9 {
            for from in 0..n {
                for to in 0..n {
                    let mut v: Vec<usize> = (0..n).collect();
                    let x = v.remove(from);
                    v.insert(to, x);
                    let mut r: Vec<usize> = (0..n).collect();
                    reinsert(&mut r, from, to);
                    assert_eq!(r, v, "n {n}, from {from}, to {to}");
                }
            }
        }
    }

    /// The compact copy of a component ([`CompactLists`], 16-bit or 32-bit) gives the order of
    /// the lists it copies, and a weight beyond 32 bits falls back to reading the lists in place
    /// with the same result.
    #[test]
    fn the_compact_copy_orders_as_the_lists_it_copies() {
        let mut seed = 7u64;
        let mut rnd = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for round in 0..30 {
            let n = 15 + rnd(40) as usize;
            let mut edges: Vec<(usize, usize, u64)> = Vec::new();
            for a in 0..n {
                for b in 0..n {
                    if a != b && rnd(3) == 0 {
                        // Some weights beyond 16 bits (the 32-bit copy) or 32 bits (none).
                        let big = match round % 5 {
                            0 if rnd(50) == 0 => 1 << 33,
                            1 if rnd(50) == 0 => 1 << 20,
                            _ => 0,
                        };
                        edges.push((a, b, 1 + rnd(9) + big));
                    }
                }
            }
            let lists = EdgeLists::new(n, &edges);
            let mut plain = eades_lin_smyth_on(&lists);
            let converged = local_search_on(&lists, &mut plain);
            let mut minimal = make_minimal(&lists, &mut plain);
            let ex = exchange::exchange_cuts_within(&lists, &mut plain, EXCHANGE_MAX_WORK);
            if ex.swaps > 0 {
                minimal = make_minimal(&lists, &mut plain);
            }
            assert_eq!(
                min_fas_order(n, &edges),
                FasOrder {
                    order: plain,
                    converged,
                    minimal,
                    exchanged: ex.complete,
                },
                "round {round}"
            );
        }
    }

    /// A change set larger than the listing bound lists the edges of violations first, counts
    /// the rest, and keeps the change set's order; a smaller one is listed whole.
    #[test]
    fn the_listing_of_edges_to_change_is_bounded_and_counted() {
        // Five locks, each pair nested both ways by two threads: every pair is a 2-cycle.
        let mut t = String::new();
        for l in 1..=5 {
            t.push_str(&format!(
                "{{\"e\":\"class\",\"c\":{l},\"key\":\"K{l}\",\"kind\":\"mutex\"}}\n{{\"e\":\"lock\",\"l\":{l},\"c\":{l}}}\n"
            ));
        }
        let nest = |t: &mut String, th: u32, a: u32, b: u32| {
            t.push_str(&format!(
                "{{\"e\":\"acquire\",\"t\":{th},\"l\":{a},\"m\":\"w\"}}\n{{\"e\":\"acquire\",\"t\":{th},\"l\":{b},\"m\":\"w\"}}\n{{\"e\":\"release\",\"t\":{th},\"l\":{b}}}\n{{\"e\":\"release\",\"t\":{th},\"l\":{a}}}\n"
            ));
        };
        for a in 1..=5 {
            for b in (a + 1)..=5 {
                nest(&mut t, 1, a, b);
                nest(&mut t, 2, b, a);
            }
        }
        let m = crate::model::tests::model_of(&[("t", &t)]);
        let graph = LockGraph::build(&m, GraphLevel::Class);
        let weights = graph.weights(&m);
        let change = class_change_set(&m, &graph, &weights);
        let edges: Vec<(u32, u32)> = change.edges(&graph).collect();
        assert_eq!(change.len(), 10, "{edges:?}");
        let last = *edges.last().unwrap();
        let violating: HashSet<(ClassId, ClassId)> = [last].into_iter().collect();
        let all = suggest_listing(&m, &graph, &weights, &change, &violating, 10);
        assert_eq!(all.removed_edges.len(), 10);
        assert_eq!(all.removed_edges_unlisted, 0);
        let few = suggest_listing(&m, &graph, &weights, &change, &violating, 3);
        assert_eq!(few.removed_edges.len(), 3);
        assert_eq!(few.removed_edges_unlisted, 7);
        assert_eq!(few.removed_edges[..2], all.removed_edges[..2]);
        assert_eq!(few.removed_edges[2], all.removed_edges[9]);
        assert!(few.removed_edges[2].in_violation);
        assert_eq!(few.levels, all.levels);
    }

    #[test]
    fn els_cuts_the_cheap_side() {
        // 0 -> 1 made at 5 places, 1 -> 0 at one: cut 1 -> 0.
        let order = eades_lin_smyth(2, &[(0, 1, 5), (1, 0, 1)]);
        assert_eq!(order, vec![0, 1]);
        let order = eades_lin_smyth(2, &[(0, 1, 1), (1, 0, 5)]);
        assert_eq!(order, vec![1, 0]);
    }

    fn brute_force_min(n: usize, edges: &[(usize, usize, u64)]) -> u64 {
        fn perms(rest: &mut Vec<usize>, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
            if rest.is_empty() {
                out.push(cur.clone());
                return;
            }
            for i in 0..rest.len() {
                let v = rest.remove(i);
                cur.push(v);
                perms(rest, cur, out);
                cur.pop();
                rest.insert(i, v);
            }
        }
        let mut all = Vec::new();
        perms(&mut (0..n).collect(), &mut Vec::new(), &mut all);
        all.iter()
            .map(|o| backward_weight(n, edges, o))
            .min()
            .unwrap()
    }

    #[test]
    fn exact_fas_matches_brute_force_and_local_search_never_loses() {
        let mut x: u64 = 0x1234_5678;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let n = 2 + (next() % 6) as usize;
            let m = next() % 16;
            let edges: Vec<(usize, usize, u64)> = (0..m)
                .map(|_| {
                    (
                        (next() % n as u64) as usize,
                        (next() % n as u64) as usize,
                        1 + next() % 9,
                    )
                })
                .filter(|e| e.0 != e.1)
                .collect();
            let fas = min_fas_order(n, &edges);
            assert!(fas.converged && fas.minimal);
            assert_eq!(
                backward_weight(n, &edges, &fas.order),
                brute_force_min(n, &edges),
                "{edges:?}"
            );
            // Local search from Eades–Lin–Smyth is never worse than Eades–Lin–Smyth.
            let els = eades_lin_smyth(n, &edges);
            let mut improved = els.clone();
            assert!(local_search(n, &edges, &mut improved));
            assert!(backward_weight(n, &edges, &improved) <= backward_weight(n, &edges, &els));
        }
    }

    /// A hand-made graph where Eades–Lin–Smyth and the local search stop at an order with an
    /// edge cut that closes no cycle: the minimality pass puts it back, and the change set is
    /// then the smallest one.
    #[test]
    fn the_minimality_pass_puts_back_a_cut_edge_that_closes_no_cycle() {
        // Cycles 0 -> 2 -> 0 and 1 -> 2 -> 1 (2 -> 0 weighs 2, the rest 1), and the path
        // 0 -> 3 -> 1 beside them. The smallest change set is {0 -> 2, 1 -> 2}.
        let edges = [
            (0, 2, 1),
            (0, 3, 1),
            (1, 2, 1),
            (2, 0, 2),
            (2, 1, 1),
            (3, 1, 3),
        ];
        let lists = EdgeLists::new(4, &edges);
        let mut order = eades_lin_smyth_on(&lists);
        assert!(local_search_on(&lists, &mut order));
        let cut = |order: &[usize]| {
            let mut pos = [0usize; 4];
            for (p, &v) in order.iter().enumerate() {
                pos[v] = p;
            }
            edges
                .iter()
                .filter(|e| pos[e.0] > pos[e.1])
                .map(|e| (e.0, e.1))
                .collect::<Vec<_>>()
        };
        // Local search cannot move one node to save 0 -> 3: 3 -> 1 (weight 3) holds 3 before 1.
        assert_eq!(order, vec![3, 2, 1, 0]);
        assert_eq!(cut(&order), vec![(0, 2), (0, 3), (1, 2)]);
        assert!(make_minimal(&lists, &mut order));
        assert_eq!(cut(&order), vec![(0, 2), (1, 2)]);
        assert_eq!(
            backward_weight(4, &edges, &order),
            brute_force_min(4, &edges)
        );
        // An order whose cut edges all close a cycle is left as it is.
        let before = order.clone();
        assert!(make_minimal(&lists, &mut order));
        assert_eq!(order, before);
    }

    /// The minimality pass's bounds are reported, never silent: beyond the table's size it
    /// leaves the order alone; stopped by the work bound, it keeps what it put back so far.
    #[test]
    fn the_minimality_pass_reports_its_bounds() {
        // A chain 0 -> 1 -> ... -> 19 (weight 5 each) closed by 19 -> 0 (weight 1). The order
        // 19, 18, ..., 0 cuts every chain edge, though only 19 -> 0 needs cutting.
        let mut edges: Vec<(usize, usize, u64)> = (0..19).map(|i| (i, i + 1, 5)).collect();
        edges.push((19, 0, 1));
        let reversed: Vec<usize> = (0..20).rev().collect();
        let lists = EdgeLists::new(20, &edges);
        let mut order = reversed.clone();
        assert!(!make_minimal_within(&lists, &mut order, 8, u64::MAX));
        assert_eq!(order, reversed, "beyond the table's size: untouched");
        // The table's sweep costs 21 words here, each edge put back 21 or more: the pass stops
        // after the first one.
        let mut order = reversed.clone();
        assert!(!make_minimal_within(&lists, &mut order, usize::MAX, 25));
        // 0 -> 1 put back; the order 19, 0, 18, 17, ..., 1 (by descendants) cuts the 18
        // other chain edges, and no longer 19 -> 0.
        assert_eq!(order[..3], [19, 0, 18]);
        assert_eq!(backward_weight(20, &edges, &order), 18 * 5);
        // Unbounded, the pass puts back every chain edge but the last, which closes the cycle
        // through 19 -> 0. Minimal by inclusion, not by weight: the pass only puts back, it
        // never cuts an edge kept (weighing one side against another is the local search's).
        let mut full = reversed.clone();
        assert!(make_minimal(&lists, &mut full));
        assert_eq!(full[..3], [19, 0, 1]);
        assert_eq!(backward_weight(20, &edges, &full), 5);
    }

    #[test]
    fn els_orders_a_dag_topologically() {
        let order = eades_lin_smyth(4, &[(2, 1, 1), (1, 0, 1), (3, 2, 1)]);
        assert_eq!(order, vec![3, 2, 1, 0]);
    }

    #[test]
    fn names() {
        assert_eq!(file_line("src/a.rs:10:5"), "src/a.rs:10");
        assert_eq!(file_line("loc 42"), "loc 42");
        assert_eq!(constant_name("src/bank.rs:10:5"), "SRC_BANK_RS_10_5");
        assert_eq!(constant_name("accounts"), "ACCOUNTS");
        assert_eq!(constant_name("7"), "LOCK_7");
    }

    /// Eades–Lin–Smyth as it was before hostile round 10 (a sweep over every node per round,
    /// the maximum recomputed from two weight arrays): the reference for the pending count.
    fn eades_lin_smyth_sweeping(g: &impl FasGraph) -> Vec<usize> {
        let n = g.n();
        let (mut outw, mut inw) = (vec![0u64; n], vec![0u64; n]);
        let (mut outd, mut ind) = (vec![0usize; n], vec![0usize; n]);
        for a in 0..n {
            g.for_out(a, |b, w| {
                outw[a] += w;
                inw[b] += w;
                outd[a] += 1;
                ind[b] += 1;
            });
        }
        let mut alive = vec![true; n];
        let mut left = n;
        let (mut s1, mut s2) = (Vec::new(), Vec::new());
        let remove = |v: usize,
                      alive: &mut Vec<bool>,
                      outw: &mut Vec<u64>,
                      inw: &mut Vec<u64>,
                      outd: &mut Vec<usize>,
                      ind: &mut Vec<usize>| {
            alive[v] = false;
            g.for_out(v, |b, w| {
                if alive[b] {
                    inw[b] -= w;
                    ind[b] -= 1;
                }
            });
            g.for_in(v, |a, w| {
                if alive[a] {
                    outw[a] -= w;
                    outd[a] -= 1;
                }
            });
        };
        while left > 0 {
            let mut changed = true;
            while changed {
                changed = false;
                for v in 0..n {
                    if alive[v] && outd[v] == 0 {
                        s2.push(v);
                        remove(v, &mut alive, &mut outw, &mut inw, &mut outd, &mut ind);
                        left -= 1;
                        changed = true;
                    } else if alive[v] && ind[v] == 0 {
                        s1.push(v);
                        remove(v, &mut alive, &mut outw, &mut inw, &mut outd, &mut ind);
                        left -= 1;
                        changed = true;
                    }
                }
            }
            if left == 0 {
                break;
            }
            let best = (0..n)
                .filter(|&v| alive[v])
                .max_by_key(|&v| (outw[v] as i128 - inw[v] as i128, std::cmp::Reverse(v)))
                .expect("some vertex is alive");
            s1.push(best);
            remove(best, &mut alive, &mut outw, &mut inw, &mut outd, &mut ind);
            left -= 1;
        }
        s2.reverse();
        s1.extend(s2);
        s1
    }

    /// The pending count of Eades–Lin–Smyth and the weight matrix of the local search give
    /// the orders of the sweeps and of the difference array, on random graphs from sparse
    /// (sources and sinks appear as nodes go) to dense, with ties (weights 1 to 3) and with
    /// weights that do not fit the matrix (the edge lists then, the same answer).
    #[test]
    fn the_pending_count_and_the_weight_matrix_change_no_order() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        let (mut with_matrix, mut moved) = (0, 0);
        for round in 0..200 {
            let n = 2 + rnd(60) as usize;
            let density = 1 + rnd(8);
            let mut edges: Vec<(usize, usize, u64)> = Vec::new();
            for a in 0..n {
                for b in 0..n {
                    if a != b && rnd(10) < density {
                        let big = if round % 7 == 0 && rnd(20) == 0 {
                            40_000
                        } else {
                            0
                        };
                        edges.push((a, b, 1 + rnd(3) + big));
                    }
                }
            }
            let lists = EdgeLists::new(n, &edges);
            let els = eades_lin_smyth_on(&lists);
            assert_eq!(els, eades_lin_smyth_sweeping(&lists), "round {round}");
            let mut by_lists = els.clone();
            let converged = local_search_in::<i32>(&lists, &mut by_lists);
            if let Some(m) = WeightMatrix::of(&lists) {
                with_matrix += 1;
                let mut by_matrix = els.clone();
                assert_eq!(local_search_matrix(&m, &mut by_matrix), converged);
                assert_eq!(by_matrix, by_lists, "round {round}");
                // Every row width gives the same moves.
                for stride in MATRIX_STRIDES.into_iter().filter(|&s| s > m.stride) {
                    let wide = WeightMatrix::with_stride(&lists, stride).expect("it fits");
                    let mut by_wide = els.clone();
                    assert_eq!(local_search_matrix(&wide, &mut by_wide), converged);
                    assert_eq!(by_wide, by_lists, "round {round}, stride {stride}");
                }
            }
            let mut on = els.clone();
            assert_eq!(local_search_on(&lists, &mut on), converged);
            assert_eq!(on, by_lists, "round {round}");
            moved += usize::from(by_lists != els);
        }
        // Both paths and real moves occurred.
        assert!(with_matrix > 100 && with_matrix < 200, "{with_matrix}");
        assert!(moved > 50, "{moved}");
    }

    /// The local search by its definition: for each node in turn, the cost of every insertion
    /// point counted from the edges (out-edges to nodes before it, in-edges from nodes at or
    /// after it), the first least one taken when below the cost where the node is.
    fn local_search_by_definition(
        n: usize,
        edges: &[(usize, usize, u64)],
        order: &mut Vec<usize>,
    ) -> bool {
        for _ in 0..MAX_LOCAL_SEARCH_PASSES {
            let mut improved = false;
            for v in 0..n {
                let cur = order.iter().position(|&x| x == v).expect("v is placed");
                let rest: Vec<usize> = order.iter().copied().filter(|&x| x != v).collect();
                let mut at = vec![0usize; n];
                for (p, &x) in rest.iter().enumerate() {
                    at[x] = p;
                }
                let cost = |point: usize| -> i64 {
                    edges
                        .iter()
                        .filter(|e| e.0 != e.1)
                        .map(|&(a, b, w)| match (a == v, b == v) {
                            (true, _) if at[b] < point => w as i64,
                            (_, true) if at[a] >= point => w as i64,
                            _ => 0,
                        })
                        .sum()
                };
                let mut best = (cost(0), 0);
                for point in 1..n {
                    let c = cost(point);
                    if c < best.0 {
                        best = (c, point);
                    }
                }
                if best.0 < cost(cur) {
                    let mut next = rest;
                    next.insert(best.1, v);
                    *order = next;
                    improved = true;
                }
            }
            if !improved {
                return true;
            }
        }
        false
    }

    /// The local search over edge lists, whose sparse nodes are scanned through their edges'
    /// positions only (`scan_touched`) and dense ones position by position (`scan_all`), moves
    /// as its definition says, on components where both kinds of node occur.
    #[test]
    fn local_search_in_moves_as_its_definition_on_sparse_and_dense_nodes() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let mut moved = 0;
        for round in 0..60 {
            let n = 40 + rnd(140) as usize;
            let mut edges = Vec::new();
            // A few hubs with edges to most nodes (scanned position by position), the rest
            // with two or three edges each (scanned through their positions), some of both
            // directions between the same pair and some repeated.
            for a in 0..n {
                let k = if rnd(12) == 0 {
                    n as u64 / 2
                } else {
                    1 + rnd(3)
                };
                for _ in 0..k {
                    let b = rnd(n as u64) as usize;
                    if a != b {
                        edges.push((a, b, 1 + rnd(5)));
                    }
                }
            }
            let els = eades_lin_smyth(n, &edges);
            let mut by_lists = els.clone();
            let converged = local_search_in::<i64>(&EdgeLists::new(n, &edges), &mut by_lists);
            let mut expected = els.clone();
            assert_eq!(
                local_search_by_definition(n, &edges, &mut expected),
                converged
            );
            assert_eq!(by_lists, expected, "round {round}");
            moved += usize::from(by_lists != els);
        }
        assert!(moved > 20, "{moved}");
    }
}
