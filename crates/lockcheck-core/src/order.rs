//! An incremental topological order over a directed graph (Pearce & Kelly, "A Dynamic Topological
//! Sort Algorithm for Directed Acyclic Graphs", JEA 2006), as used by Abseil's deadlock detector.
//!
//! Adding an edge that agrees with the current order costs O(1); one that disagrees triggers a
//! search bounded to the part of the order between its endpoints, then a local reordering. An
//! edge that would close a cycle is refused and the cycle is returned, so the graph stays acyclic;
//! callers keep such edges elsewhere (they are the findings).
//!
//! Written by hand rather than taken from petgraph: petgraph has no dynamic topological order, and
//! the runtime needs node removal with index reuse (freed lock instances leave the graph).

/// A node of an [`OrderGraph`]. Indices are reused after [`OrderGraph::remove_node`].
pub type NodeId = u32;

/// A directed acyclic graph that maintains a topological order under edge insertion.
#[derive(Debug, Default, Clone)]
pub struct OrderGraph {
    ord: Vec<u32>,
    out: Vec<Vec<NodeId>>,
    inc: Vec<Vec<NodeId>>,
    alive: Vec<bool>,
    free: Vec<NodeId>,
    // Scratch space for the searches, kept to avoid allocating on every reorder.
    mark: Vec<u32>,
    epoch: u32,
}

impl OrderGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of live nodes.
    pub fn node_count(&self) -> usize {
        self.alive.len() - self.free.len()
    }

    /// Adds an isolated node (reusing a freed index and its place in the order).
    pub fn add_node(&mut self) -> NodeId {
        if let Some(n) = self.free.pop() {
            self.alive[n as usize] = true;
            return n;
        }
        let n = self.alive.len() as NodeId;
        self.ord.push(n);
        self.out.push(Vec::new());
        self.inc.push(Vec::new());
        self.alive.push(true);
        self.mark.push(0);
        n
    }

    /// Removes a node and its edges. Removing nodes never invalidates the order of the others.
    pub fn remove_node(&mut self, n: NodeId) {
        let i = n as usize;
        if !self.alive[i] {
            return;
        }
        // The lists are emptied, not freed: the index is reused by a later node, which then
        // allocates nothing for its first edges (locks created and dropped in a loop).
        let out = std::mem::take(&mut self.out[i]);
        for &m in &out {
            self.inc[m as usize].retain(|&x| x != n);
        }
        self.out[i] = out;
        self.out[i].clear();
        let inc = std::mem::take(&mut self.inc[i]);
        for &m in &inc {
            self.out[m as usize].retain(|&x| x != n);
        }
        self.inc[i] = inc;
        self.inc[i].clear();
        self.alive[i] = false;
        self.free.push(n);
    }

    /// Whether the edge `a -> b` is in the graph.
    pub fn has_edge(&self, a: NodeId, b: NodeId) -> bool {
        self.out[a as usize].contains(&b)
    }

    /// Successors of `n`.
    pub fn successors(&self, n: NodeId) -> &[NodeId] {
        &self.out[n as usize]
    }

    /// Position of `n` in the current topological order (smaller comes first).
    pub fn position(&self, n: NodeId) -> u32 {
        self.ord[n as usize]
    }

    /// Adds `a -> b`. Returns `None` if added (or already present). If the edge would close a
    /// cycle it is not added and the path `b -> ... -> a` is returned (starting at `b`, ending at
    /// `a`; `[a]` for a self-loop).
    pub fn add_edge(&mut self, a: NodeId, b: NodeId) -> Option<Vec<NodeId>> {
        if a == b {
            return Some(vec![a]);
        }
        if self.has_edge(a, b) {
            return None;
        }
        let (lb, ub) = (self.ord[b as usize], self.ord[a as usize]);
        if lb < ub {
            // Disagrees with the order: search forward from b within [lb, ub].
            self.epoch = self.epoch.wrapping_add(1);
            if self.epoch == 0 {
                self.mark.iter_mut().for_each(|m| *m = 0);
                self.epoch = 1;
            }
            let mut parent = std::collections::HashMap::new();
            let mut fwd = Vec::new();
            let mut stack = vec![b];
            self.mark[b as usize] = self.epoch;
            while let Some(w) = stack.pop() {
                fwd.push(w);
                for &x in &self.out[w as usize] {
                    if x == a {
                        parent.insert(x, w);
                        let mut path = vec![a];
                        let mut cur = a;
                        while cur != b {
                            cur = parent[&cur];
                            path.push(cur);
                        }
                        path.reverse();
                        return Some(path);
                    }
                    if self.mark[x as usize] != self.epoch && self.ord[x as usize] < ub {
                        self.mark[x as usize] = self.epoch;
                        parent.insert(x, w);
                        stack.push(x);
                    }
                }
            }
            // Search backward from a within [lb, ub].
            let fwd_epoch = self.epoch;
            self.epoch = self.epoch.wrapping_add(1).max(1);
            let mut bwd = Vec::new();
            let mut stack = vec![a];
            self.mark[a as usize] = self.epoch;
            while let Some(w) = stack.pop() {
                bwd.push(w);
                for &x in &self.inc[w as usize] {
                    if self.mark[x as usize] != self.epoch
                        && self.mark[x as usize] != fwd_epoch
                        && self.ord[x as usize] > lb
                    {
                        self.mark[x as usize] = self.epoch;
                        stack.push(x);
                    }
                }
            }
            // Reorder: everything that reaches a goes before everything b reaches, reusing the
            // same set of positions.
            bwd.sort_unstable_by_key(|&n| self.ord[n as usize]);
            fwd.sort_unstable_by_key(|&n| self.ord[n as usize]);
            let mut pool: Vec<u32> = bwd
                .iter()
                .chain(&fwd)
                .map(|&n| self.ord[n as usize])
                .collect();
            pool.sort_unstable();
            for (n, p) in bwd.iter().chain(&fwd).zip(pool) {
                self.ord[*n as usize] = p;
            }
        }
        self.out[a as usize].push(b);
        self.inc[b as usize].push(a);
        None
    }

    /// Whether the current order is a valid topological order of the graph (for tests).
    pub fn order_is_valid(&self) -> bool {
        (0..self.out.len()).filter(|&i| self.alive[i]).all(|i| {
            self.out[i]
                .iter()
                .all(|&j| self.ord[i] < self.ord[j as usize])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petgraph::algo::has_path_connecting;
    use petgraph::graph::DiGraph;
    use proptest::prelude::*;

    #[test]
    fn refuses_cycles_and_reports_the_path() {
        let mut g = OrderGraph::new();
        let n: Vec<_> = (0..4).map(|_| g.add_node()).collect();
        assert_eq!(g.add_edge(n[3], n[2]), None);
        assert_eq!(g.add_edge(n[2], n[1]), None);
        assert_eq!(g.add_edge(n[1], n[0]), None);
        assert!(g.order_is_valid());
        assert_eq!(g.add_edge(n[0], n[3]), Some(vec![n[3], n[2], n[1], n[0]]));
        assert!(!g.has_edge(n[0], n[3]));
        assert_eq!(g.add_edge(n[1], n[1]), Some(vec![n[1]]));
    }

    #[test]
    fn removed_nodes_free_their_edges() {
        let mut g = OrderGraph::new();
        let (a, b, c) = (g.add_node(), g.add_node(), g.add_node());
        g.add_edge(a, b);
        g.add_edge(b, c);
        g.remove_node(b);
        assert_eq!(g.node_count(), 2);
        assert_eq!(g.add_edge(c, a), None, "no path c -> a once b is gone");
        let d = g.add_node();
        assert_eq!(d, b, "index reused");
        assert!(g.successors(d).is_empty());
        assert!(g.order_is_valid());
    }

    proptest! {
        // The incremental detector agrees with a from-scratch reachability check (petgraph) on
        // every edge of random edge sequences, and keeps a valid order throughout.
        #[test]
        fn agrees_with_petgraph(edges in prop::collection::vec((0u32..12, 0u32..12), 0..80)) {
            let mut g = OrderGraph::new();
            let mut p = DiGraph::<(), ()>::new();
            let nodes: Vec<_> = (0..12).map(|_| (g.add_node(), p.add_node(()))).collect();
            for (a, b) in edges {
                let (ga, pa) = nodes[a as usize];
                let (gb, pb) = nodes[b as usize];
                let closes = a == b || has_path_connecting(&p, pb, pa, None);
                let got = g.add_edge(ga, gb);
                prop_assert_eq!(got.is_some(), closes);
                if let Some(path) = got {
                    prop_assert_eq!(path[0], gb);
                    prop_assert_eq!(*path.last().unwrap(), ga);
                    for w in path.windows(2) {
                        prop_assert!(g.has_edge(w[0], w[1]));
                    }
                } else if p.find_edge(pa, pb).is_none() {
                    p.add_edge(pa, pb, ());
                }
                prop_assert!(g.order_is_valid());
            }
        }
    }
}
