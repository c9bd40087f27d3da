//! The exchange pass of the smallest change set: a cut edge traded for a lighter cut.
//!
//! The local search moves one node at a time, and [`super::make_minimal`] puts back cut edges
//! that close no cycle; neither can leave an order where a heavy edge `a -> b` is cut although
//! every path `b ~> a` of the kept edges crosses a light edge: putting `a -> b` back and cutting
//! the light one instead needs several nodes moved at once. (Proptest found it: the consistent
//! edge of an AB-BA pair, made 10 times, cut instead of the planted inversion made once, in a
//! component of 30 locks where the two locks sat apart with nodes between them.)
//!
//! The edges cut to let `a -> b` back are a cut between `b` and `a` in the kept edges (a DAG,
//! the order one of its topological orders): its lightest is a minimum cut, the value of a
//! maximum flow from `b` to `a`. When it weighs less than `a -> b`, the exchange lowers the
//! weight of the change set; each exchange lowers it, so the passes end on their own. The flow
//! is counted only up to the weight of `a -> b` (past it no exchange helps), over the nodes
//! placed between `b` and `a` (a kept path from `b` to `a` never leaves them), read in place.
//!
//! Written here, not taken from petgraph: its `dinics` and `ford_fulkerson` compute the whole
//! maximum flow of a graph of their own, with no bound on their work; this needs a flow counted
//! up to a cap, on a component read in place, within a budget of work on hostile components.

use super::FasGraph;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The most work the exchange pass does on one component, in edges read (about 0.1 s on this
/// project's machine). A program's components are far within it: their cut edges are few, and
/// each costs the edges of the nodes between its ends. The hostile random trace's component
/// (3,000 locks, 3M edges, 580,000 cut edges heavier than its lightest kept edge) is not: there
/// the exchanges made until then are kept and the change set is reported as not proven
/// minimal, where checking every cut edge would take minutes.
pub const EXCHANGE_MAX_WORK: u64 = 1 << 24;

/// What [`exchange_cuts_within`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exchanged {
    /// Exchanges made (each lowered the weight of the backward edges).
    pub swaps: usize,
    /// False when the pass stopped at its budget of work.
    pub complete: bool,
}

/// The cut between `b` and `a` that [`min_cut_below`] found.
enum Cut {
    /// The flow reached the cap: no cut weighs less.
    AtLeastCap,
    /// The kept edges from the nodes reached to the others: a cut lighter than the cap.
    Lighter(Vec<(usize, usize)>),
    /// The budget of work ran out, or the network passed [`EXCHANGE_NETWORK_MAX_EDGES`].
    Stopped,
}

/// The edges read by the pass, against its budget.
struct Work {
    done: u64,
    max: u64,
}

impl Work {
    /// Whether the budget is spent.
    fn over(&self) -> bool {
        self.done > self.max
    }
}

/// Trades cut edges for lighter cuts until none helps: for each backward edge `a -> b` of
/// `order` (heaviest first, while it is still backward), a minimum cut between `b` and `a` in
/// the forward edges; when it weighs less than `a -> b`, `a -> b` is put back, the cut's edges
/// are cut, and `order` becomes a topological order of the edges kept (each node as early as
/// it was, as far as the kept edges allow). Passes repeat until one makes no exchange, within
/// `max_work` edges read.
///
/// Run after [`super::make_minimal`]: an edge that closes no cycle is its to put back (this
/// pass skips an edge no heavier than the lightest kept edge, the least a nonempty cut weighs),
/// and the pass after the exchanges puts back what they left closing no cycle.
pub(crate) fn exchange_cuts_within(
    g: &impl FasGraph,
    order: &mut [usize],
    max_work: u64,
) -> Exchanged {
    let n = g.n();
    let mut pos = vec![0usize; n];
    for (p, &v) in order.iter().enumerate() {
        pos[v] = p;
    }
    let mut work = Work {
        done: 0,
        max: max_work,
    };
    let mut swaps = 0;
    let mut scratch = Scratch::new(n);
    loop {
        // A cut of kept edges weighs at least its lightest kept edge: a backward edge no
        // heavier than every kept edge has no lighter cut.
        let mut lightest_kept = u64::MAX;
        for a in 0..n {
            g.for_out(a, |b, w| {
                work.done += 1;
                if pos[a] < pos[b] {
                    lightest_kept = lightest_kept.min(w);
                }
            });
        }
        let mut candidates: Vec<(Reverse<u64>, usize, usize)> = Vec::new();
        for a in 0..n {
            g.for_out(a, |b, w| {
                work.done += 1;
                if pos[a] > pos[b] && w > lightest_kept {
                    candidates.push((Reverse(w), a, b));
                }
            });
        }
        candidates.sort_unstable();
        let mut bits = (!candidates.is_empty())
            .then(|| KeptBits::of(g, &pos, &mut work))
            .flatten();
        let mut swapped = false;
        for &(Reverse(w), a, b) in &candidates {
            if pos[a] < pos[b] {
                continue; // put back by an exchange of this pass
            }
            if work.over() {
                return Exchanged {
                    swaps,
                    complete: false,
                };
            }
            if bits
                .as_ref()
                .is_some_and(|k| k.middles_at_least((b, pos[b]), (a, pos[a]), w, &mut work))
            {
                continue; // at least w paths of one or two kept edges: no lighter cut
            }
            match min_cut_below(g, order, &pos, (b, a), w, &mut scratch, &mut work) {
                Cut::AtLeastCap => {}
                Cut::Stopped => {
                    return Exchanged {
                        swaps,
                        complete: false,
                    }
                }
                Cut::Lighter(cut) => {
                    reorder(g, order, &mut pos, &cut, (a, b), &mut work);
                    if bits.is_some() {
                        bits = KeptBits::of(g, &pos, &mut work);
                    }
                    swaps += 1;
                    swapped = true;
                }
            }
        }
        if !swapped {
            return Exchanged {
                swaps,
                complete: true,
            };
        }
    }
}

/// The largest pair of adjacency tables of [`KeptBits`]: 32 MiB, a component of up to about
/// 11,000 nodes (the hostile random trace's has 3,000: 2.2 MB).
const KEPT_BITS_MAX_BYTES: usize = 32 << 20;

/// The kept edges as two bit tables, a row per node: the nodes it reaches by a kept edge, and
/// those that reach it by one, each a bit at its position in the order. Every weight is at
/// least 1, so each node `x` with kept edges `s -> x -> t` is a path of its own with room for
/// 1, and the direct `s -> t` another: their count bounds the flow from below in the words of
/// the positions between `s` and `t` (a node between them is all a middle can be), where even
/// [`two_hop_flow`] reads the edges of both ends (thousands on a dense component: on the
/// hostile random trace's, 580,000 cut edges cost 1.2G edges read that way, 1M words this
/// way).
struct KeptBits {
    words: usize,
    out: Vec<u64>,
    inc: Vec<u64>,
}

impl KeptBits {
    /// The tables of the forward edges of `pos`, or `None` beyond [`KEPT_BITS_MAX_BYTES`].
    fn of(g: &impl FasGraph, pos: &[usize], work: &mut Work) -> Option<Self> {
        let n = pos.len();
        let words = n.div_ceil(64);
        if n.saturating_mul(words).saturating_mul(16) > KEPT_BITS_MAX_BYTES {
            return None;
        }
        let mut k = KeptBits {
            words,
            out: vec![0; n * words],
            inc: vec![0; n * words],
        };
        for a in 0..n {
            g.for_out(a, |b, w| {
                work.done += 1;
                let (pa, pb) = (pos[a], pos[b]);
                if pa < pb && w > 0 {
                    k.out[a * words + pb / 64] |= 1 << (pb % 64);
                    k.inc[b * words + pa / 64] |= 1 << (pa % 64);
                }
            });
        }
        work.done += 2 * (n * words) as u64;
        Some(k)
    }

    /// Whether at least `need` paths of one or two kept edges run from `s` to `t` (placed at
    /// `ps < pt`).
    fn middles_at_least(
        &self,
        (s, ps): (usize, usize),
        (t, pt): (usize, usize),
        need: u64,
        work: &mut Work,
    ) -> bool {
        let w = self.words;
        let direct = u64::from(self.out[s * w + pt / 64] >> (pt % 64) & 1 != 0);
        let span = ps / 64..pt / 64 + 1;
        let out = &self.out[s * w..(s + 1) * w][span.clone()];
        let inc = &self.inc[t * w..(t + 1) * w][span];
        work.done += out.len() as u64;
        let middles: u64 = out
            .iter()
            .zip(inc)
            .map(|(a, b)| u64::from((a & b).count_ones()))
            .sum();
        direct + middles >= need
    }
}

/// The per-node arrays of [`two_hop_flow`], reused from one call to the next: a node's `room`
/// is its call's when its stamp is the call's.
struct Scratch {
    stamp: Vec<u32>,
    now: u32,
    /// The weight of the edge from the source to the node.
    room: Vec<u64>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Scratch {
            stamp: vec![0; n],
            now: 0,
            room: vec![0; n],
        }
    }

    /// Starts a call: no node seen.
    fn clear(&mut self) {
        self.now = self.now.wrapping_add(1);
        if self.now == 0 {
            self.stamp.fill(0);
            self.now = 1;
        }
    }

    fn seen(&self, v: usize) -> bool {
        self.stamp[v] == self.now
    }
}

/// A flow from `s` to `t` over paths of one or two forward edges (`s -> t`, `s -> x -> t`), up
/// to `cap`: the paths share no edge, so their bottlenecks add up. It reads the edges of the
/// two ends only, where the flow search reads those of every node between them.
fn two_hop_flow(
    g: &impl FasGraph,
    pos: &[usize],
    s: usize,
    t: usize,
    cap: u64,
    sc: &mut Scratch,
    work: &mut Work,
) -> u64 {
    let hi = pos[t];
    sc.clear();
    g.for_out(s, |x, w| {
        work.done += 1;
        if pos[x] > pos[s] && pos[x] < hi {
            sc.stamp[x] = sc.now;
            sc.room[x] = w;
        }
    });
    let mut flow = 0u64;
    g.for_in(t, |x, w| {
        work.done += 1;
        if x == s {
            flow = flow.saturating_add(w);
        } else if sc.seen(x) {
            flow = flow.saturating_add(w.min(sc.room[x]));
        }
    });
    flow.min(cap)
}

/// An arc of [`Network`]: the forward edges at even indices, each followed by its reverse.
#[derive(Clone, Copy)]
struct Arc {
    to: u32,
    /// Room left (a forward arc: its weight less its flow; a reverse arc: the flow).
    room: u64,
    /// The next arc leaving the same node (`u32::MAX`: none).
    next: u32,
}

/// The most edges the flow network of one search copies: 2^21, 80 MB (two 16-byte arcs and a
/// weight each). The budget of work alone would let one flow search copy 16M edges (640 MB) of
/// a dense hostile component; past this, the pass stops as at its budget (reported the same
/// way).
pub const EXCHANGE_NETWORK_MAX_EDGES: usize = 1 << 21;

/// The forward edges among the nodes placed from `lo` to `hi`, copied once per flow search
/// (a node `order[lo + i]` is local node `i`): the augmenting paths then read the few nodes
/// between a cut edge's ends, not their whole adjacency in the component.
struct Network {
    first: Vec<u32>,
    arcs: Vec<Arc>,
    /// The weight of forward arc `2k`, at `k`.
    weight: Vec<u64>,
}

impl Network {
    /// The network, or `None` if copying it spends the budget or passes
    /// [`EXCHANGE_NETWORK_MAX_EDGES`].
    fn of(
        g: &impl FasGraph,
        order: &[usize],
        pos: &[usize],
        (lo, hi): (usize, usize),
        work: &mut Work,
    ) -> Option<Self> {
        let r = hi - lo + 1;
        let mut net = Network {
            first: vec![u32::MAX; r],
            arcs: Vec::new(),
            weight: Vec::new(),
        };
        for i in 0..r {
            let x = order[lo + i];
            g.for_out(x, |y, w| {
                work.done += 1;
                if pos[y] > pos[x] && pos[y] <= hi {
                    net.add(i, pos[y] - lo, w);
                }
            });
            if work.over() || net.weight.len() > EXCHANGE_NETWORK_MAX_EDGES {
                return None;
            }
        }
        Some(net)
    }

    fn add(&mut self, from: usize, to: usize, w: u64) {
        let k = self.arcs.len() as u32;
        self.arcs.push(Arc {
            to: to as u32,
            room: w,
            next: self.first[from],
        });
        self.first[from] = k;
        self.arcs.push(Arc {
            to: from as u32,
            room: 0,
            next: self.first[to],
        });
        self.first[to] = k + 1;
        self.weight.push(w);
    }
}

/// A minimum cut between `s` and `t` in the forward edges of `pos` (`pos[s] < pos[t]`), if one
/// weighs less than `cap`: after the paths of two edges ([`two_hop_flow`]), shortest
/// augmenting paths (Edmonds–Karp) in the [`Network`] of the nodes placed between them
/// (a kept path from `s` to `t` never leaves them), counted until the flow reaches `cap`.
/// The cut returned is every forward edge from a node the last search reached to one it did
/// not: its weight is the flow, below `cap`.
fn min_cut_below(
    g: &impl FasGraph,
    order: &[usize],
    pos: &[usize],
    (s, t): (usize, usize),
    cap: u64,
    sc: &mut Scratch,
    work: &mut Work,
) -> Cut {
    if two_hop_flow(g, pos, s, t, cap, sc, work) >= cap {
        return Cut::AtLeastCap;
    }
    let (lo, hi) = (pos[s], pos[t]);
    let Some(mut net) = Network::of(g, order, pos, (lo, hi), work) else {
        return Cut::Stopped;
    };
    let (src, dst) = (0usize, hi - lo);
    let r = dst + 1;
    // The arc a node was reached by (`u32::MAX`: not reached; the source: its own marker).
    let mut via = vec![u32::MAX; r];
    let mut queue = std::collections::VecDeque::new();
    let mut total = 0u64;
    loop {
        via.fill(u32::MAX);
        via[src] = u32::MAX - 1;
        queue.clear();
        queue.push_back(src);
        while let Some(x) = queue.pop_front() {
            let mut k = net.first[x];
            while k != u32::MAX {
                let arc = net.arcs[k as usize];
                work.done += 1;
                if arc.room > 0 && via[arc.to as usize] == u32::MAX {
                    via[arc.to as usize] = k;
                    queue.push_back(arc.to as usize);
                }
                k = arc.next;
            }
            if via[dst] != u32::MAX {
                break;
            }
        }
        if work.over() {
            return Cut::Stopped;
        }
        if via[dst] == u32::MAX {
            // The nodes reached and the forward arcs that leave them: a cut of weight `total`.
            let mut cut = Vec::new();
            let mut weight = 0u64;
            for (k, &w) in net.weight.iter().enumerate() {
                let (to, from) = (net.arcs[2 * k].to as usize, net.arcs[2 * k + 1].to as usize);
                if via[from] != u32::MAX && via[to] == u32::MAX {
                    cut.push((order[lo + from], order[lo + to]));
                    weight = weight.saturating_add(w);
                }
            }
            debug_assert_eq!(weight, total, "a minimum cut weighs the maximum flow");
            return if weight < cap {
                cut.sort_unstable();
                Cut::Lighter(cut)
            } else {
                Cut::AtLeastCap
            };
        }
        // The path's bottleneck, then the flow along it (an arc's reverse is `k ^ 1`).
        let mut room = cap - total;
        let mut v = dst;
        while v != src {
            let k = via[v] as usize;
            room = room.min(net.arcs[k].room);
            v = net.arcs[k ^ 1].to as usize;
        }
        let mut v = dst;
        while v != src {
            let k = via[v] as usize;
            net.arcs[k].room -= room;
            net.arcs[k ^ 1].room += room;
            v = net.arcs[k ^ 1].to as usize;
        }
        total += room;
        if total >= cap {
            return Cut::AtLeastCap;
        }
    }
}

/// `order` made a topological order of the forward edges of `pos` without `cut`, with
/// `back` (a backward edge) put back: Kahn's algorithm, the node placed earliest first among
/// those ready, so that the order moves only as far as the change asks. `pos` follows.
fn reorder(
    g: &impl FasGraph,
    order: &mut [usize],
    pos: &mut [usize],
    cut: &[(usize, usize)],
    back: (usize, usize),
    work: &mut Work,
) {
    let n = order.len();
    // The cut is a few edges: a flag on their sources, then a look at those few.
    let mut cuts_from = vec![false; n];
    for &(x, _) in cut {
        cuts_from[x] = true;
    }
    let kept = |pos: &[usize], x: usize, y: usize| {
        (x, y) == back || (pos[x] < pos[y] && !(cuts_from[x] && cut.binary_search(&(x, y)).is_ok()))
    };
    let mut indegree = vec![0u32; n];
    for x in 0..n {
        g.for_out(x, |y, _| {
            if kept(pos, x, y) {
                indegree[y] += 1;
            }
        });
    }
    let mut ready: BinaryHeap<Reverse<(usize, usize)>> = (0..n)
        .filter(|&v| indegree[v] == 0)
        .map(|v| Reverse((pos[v], v)))
        .collect();
    let mut next = Vec::with_capacity(n);
    while let Some(Reverse((_, x))) = ready.pop() {
        next.push(x);
        g.for_out(x, |y, _| {
            work.done += 1;
            if kept(pos, x, y) {
                indegree[y] -= 1;
                if indegree[y] == 0 {
                    ready.push(Reverse((pos[y], y)));
                }
            }
        });
    }
    assert_eq!(
        next.len(),
        n,
        "the edges kept after an exchange are acyclic"
    );
    order.copy_from_slice(&next);
    for (p, &v) in order.iter().enumerate() {
        pos[v] = p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hierarchy::{backward_weight, make_minimal, EdgeLists};
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn exchanged(
        n: usize,
        edges: &[(usize, usize, u64)],
        order: &[usize],
    ) -> (Vec<usize>, Exchanged) {
        let mut order = order.to_vec();
        let ex = exchange_cuts_within(&EdgeLists::new(n, edges), &mut order, EXCHANGE_MAX_WORK);
        (order, ex)
    }

    /// The passes as [`crate::hierarchy::min_fas_order`] runs them from `order`: the edges
    /// closing no cycle put back, the exchanges, those put back again.
    fn pipeline(
        n: usize,
        edges: &[(usize, usize, u64)],
        order: &[usize],
    ) -> (Vec<usize>, Exchanged) {
        let g = EdgeLists::new(n, edges);
        let mut order = order.to_vec();
        assert!(make_minimal(&g, &mut order));
        let ex = exchange_cuts_within(&g, &mut order, EXCHANGE_MAX_WORK);
        if ex.swaps > 0 {
            assert!(make_minimal(&g, &mut order));
        }
        (order, ex)
    }

    /// A ring 0 -> 1 -> 2 -> 3 -> 0 whose order cuts the heavy 2 -> 3: the light 3 -> 0 is cut
    /// instead, and the order follows the edges kept.
    #[test]
    fn a_heavy_cut_edge_bypassed_by_a_light_one_is_exchanged() {
        let edges = [(0, 1, 10), (1, 2, 10), (2, 3, 10), (3, 0, 1)];
        let (order, ex) = exchanged(4, &edges, &[3, 0, 1, 2]);
        assert_eq!(
            ex,
            Exchanged {
                swaps: 1,
                complete: true
            }
        );
        assert_eq!(order, [0, 1, 2, 3]);
        assert_eq!(backward_weight(4, &edges, &order), 1);
    }

    /// The cut of the paths around a cut edge is a set of edges, not one: two light edges on
    /// two paths replace a heavy edge, three do not replace one of weight 3.
    #[test]
    fn a_cut_of_several_edges_is_weighed_whole() {
        // 0 -> 3 cut (weight w); kept paths 3 -> 1 -> 0 and 3 -> 2 -> 0, each with a light edge.
        let ring = |w: u64| vec![(0, 3, w), (3, 1, 5), (1, 0, 1), (3, 2, 5), (2, 0, 1)];
        let (order, ex) = exchanged(4, &ring(3), &[3, 1, 2, 0]);
        assert_eq!(ex.swaps, 1);
        assert_eq!(backward_weight(4, &ring(3), &order), 2);
        let (order, ex) = exchanged(4, &ring(2), &[3, 1, 2, 0]);
        assert_eq!(ex.swaps, 0, "a cut of equal weight is no gain");
        assert_eq!(order, [3, 1, 2, 0]);
    }

    /// Out of work: the pass stops, says so, and leaves a valid order no heavier than it was.
    #[test]
    fn the_budget_stops_the_pass_and_is_reported() {
        let edges = [(0, 1, 10), (1, 2, 10), (2, 3, 10), (3, 0, 1)];
        let mut order = vec![3, 0, 1, 2];
        let ex = exchange_cuts_within(&EdgeLists::new(4, &edges), &mut order, 2);
        assert_eq!(
            ex,
            Exchanged {
                swaps: 0,
                complete: false
            }
        );
        assert_eq!(order, [3, 0, 1, 2]);
    }

    /// The maximum flow from `s` to `t` over the forward edges of `order`, by petgraph.
    fn max_flow(
        n: usize,
        edges: &[(usize, usize, u64)],
        order: &[usize],
        s: usize,
        t: usize,
    ) -> u64 {
        let mut pos = vec![0; n];
        for (p, &v) in order.iter().enumerate() {
            pos[v] = p;
        }
        let mut g = petgraph::Graph::<(), u64>::new();
        let nodes: Vec<_> = (0..n).map(|_| g.add_node(())).collect();
        for &(a, b, w) in edges {
            if pos[a] < pos[b] {
                g.add_edge(nodes[a], nodes[b], w);
            }
        }
        petgraph::algo::dinics(&g, nodes[s], nodes[t]).0
    }

    proptest! {
        /// On random graphs (parallel edges included) from a random order, with the passes
        /// around it: they end, the order stays a permutation, the cut weighs no more than
        /// before, and every edge left cut has no lighter cut around it (petgraph's maximum
        /// flow between its ends, over the edges kept, is at least its weight).
        #[test]
        fn no_cut_edge_is_left_with_a_lighter_cut(
            n in 2usize..12,
            raw in proptest::collection::vec((0usize..12, 0usize..12, 1u64..20), 1..40),
            keys in proptest::collection::vec(any::<u32>(), 12),
        ) {
            let edges: Vec<(usize, usize, u64)> = raw
                .into_iter()
                .map(|(a, b, w)| (a % n, b % n, w))
                .filter(|&(a, b, _)| a != b)
                .collect();
            let mut start: Vec<usize> = (0..n).collect();
            start.sort_by_key(|&v| (keys[v], v));
            let (order, ex) = pipeline(n, &edges, &start);
            prop_assert!(ex.complete);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            prop_assert_eq!(sorted, (0..n).collect::<Vec<_>>());
            let before = backward_weight(n, &edges, &start);
            prop_assert!(backward_weight(n, &edges, &order) <= before);
            let mut pos = vec![0; n];
            for (p, &v) in order.iter().enumerate() {
                pos[v] = p;
            }
            // Parallel edges are one edge of their summed weight (as `EdgeLists` makes them).
            let mut summed: HashMap<(usize, usize), u64> = HashMap::new();
            for &(a, b, w) in &edges {
                *summed.entry((a, b)).or_insert(0) += w;
            }
            for (&(a, b), &w) in &summed {
                if pos[a] > pos[b] {
                    let flow = max_flow(n, &edges, &order, b, a);
                    prop_assert!(flow >= w, "{a} -> {b} ({w}) in {order:?}");
                }
            }
        }
    }
}
