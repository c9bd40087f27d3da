//! A layered drawing of a directed graph whose layers are given: the lock-order graph in the levels
//! of the suggested hierarchy (level 0 at the top), for the HTML report.
//!
//! Hand-written on purpose. The layers are known in advance (the hierarchy's levels: that is what
//! makes the picture explain the fix), so only the two cheap steps of a Sugiyama layout remain:
//! ordering within a layer and placing along it. The crates checked do not fit: `layout-rs` (used
//! before) lays out DOT itself, slowly (seconds for 30 nodes) and not deterministically;
//! `rust-sugiyama` computes its own ranks and cannot pin given levels; `rust-igraph`'s
//! `layout_sugiyama` takes layers but is a pre-release of a large library. This module is about
//! 300 lines, deterministic (same input, same coordinates: every loop runs in index order, every
//! sort is stable with index tie-breaks), and near-linear per sweep.
//!
//! The steps: an edge spanning several layers gets one dummy vertex per layer it crosses; the
//! order within each layer starts from a depth-first walk and is improved by barycenter sweeps
//! (down, then up, a fixed number of times), keeping the order with the fewest crossings (counted
//! exactly per pair of layers by merge-sort inversion counting); then x coordinates are the least
//! squares placement, under the order and minimum gaps, of each vertex at the mean x of its
//! neighbours (pool-adjacent-violators), a few passes down and up.

use std::cmp::Ordering;

/// Height of a node box.
pub const NODE_HEIGHT: f64 = 30.0;
/// Vertical gap between two layers (room for the edges).
pub const LAYER_GAP: f64 = 64.0;
/// Horizontal gap between two boxes of one layer.
pub const NODE_GAP: f64 = 28.0;
/// Width reserved for an edge passing through a layer.
const DUMMY_WIDTH: f64 = 6.0;
/// Vertical gap between the rows of one wrapped layer.
pub const ROW_GAP: f64 = 18.0;
/// Barycenter sweeps (each one down or up over every layer).
const SWEEPS: usize = 16;
/// Placement passes.
const PLACEMENT_PASSES: usize = 8;
/// The bend points (dummy vertices) the HTML page's drawings route at most. An edge spanning `k`
/// layers takes `k - 1` of them, so a dense graph in many levels (a hostile trace's 190,000 edges
/// across a thousand levels) would take a hundred million: gigabytes and minutes for a picture
/// nobody can read. Past the budget, the remaining long edges are drawn straight from box to box
/// and the page says how many (`Layout::straight`).
pub const MAX_BENDS: usize = 200_000;

/// The input: per node its layer and box width, and the directed edges.
#[derive(Debug, Clone, Default)]
pub struct LayoutGraph {
    /// Layer of each node (any numbers: only their order matters; empty layers take no room).
    pub layer: Vec<u32>,
    /// Box width of each node.
    pub width: Vec<f64>,
    /// Edges `(from, to)` between node indices.
    pub edges: Vec<(usize, usize)>,
    /// Wrap a layer wider than this into several rows (0: never). A graph with hundreds of locks
    /// on one level is otherwise a thin strip, unreadable at any page width.
    pub wrap: f64,
    /// At most this many bend points for the edges that span several layers (`None`: no limit).
    /// When the edges need more, those listed in `first` are routed first, then the others by
    /// span, shortest first (ties by index), while they fit; the rest are drawn straight.
    pub max_bends: Option<usize>,
    /// Edges routed before any other when `max_bends` is short (the violations' edges).
    pub first: Vec<usize>,
}

/// The output: box centers, and a route per edge.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Center x of each node's box (from 0).
    pub x: Vec<f64>,
    /// Center y of each node's box (from 0).
    pub y: Vec<f64>,
    /// Per edge, the points it passes through: the centers of its endpoints with, between them,
    /// one point per layer it crosses (empty for an edge within one layer).
    pub routes: Vec<Vec<(f64, f64)>>,
    /// Per distinct layer, top to bottom: its layer number and the y of the centers of its first
    /// and last rows (the same unless the layer was wrapped).
    pub layers: Vec<(u32, f64, f64)>,
    /// Width of the drawing (every box inside `0..width`).
    pub width: f64,
    /// Height of the drawing.
    pub height: f64,
    /// Edge crossings between adjacent layers in the final order (among the routed edges).
    pub crossings: u64,
    /// Edges spanning several layers drawn straight, not routed, for `max_bends`: their route is
    /// their two ends, and the ordering within the layers does not see them.
    pub straight: usize,
    /// The bend points routing every edge would take.
    pub bends_wanted: usize,
}

/// Lays `g` out. Deterministic.
pub fn layout(g: &LayoutGraph) -> Layout {
    let n = g.layer.len();
    let mut levels: Vec<u32> = g.layer.clone();
    levels.sort_unstable();
    levels.dedup();
    let rank_of = |l: u32| levels.binary_search(&l).expect("a known layer");
    let ranks = levels.len();

    // Vertices: the nodes, then one dummy per (routed edge, crossed layer).
    let mut vrank: Vec<usize> = g.layer.iter().map(|&l| rank_of(l)).collect();
    let mut vwidth: Vec<f64> = g.width.clone();
    let bends = |&(a, b): &(usize, usize)| vrank[a].abs_diff(vrank[b]).saturating_sub(1);
    let bends_wanted: usize = g.edges.iter().map(bends).sum();
    let routed = routed_edges(g, bends_wanted, bends);
    let mut straight = 0;
    let mut chains: Vec<Vec<usize>> = Vec::with_capacity(g.edges.len());
    let mut links: Vec<(usize, usize)> = Vec::new(); // (upper vertex, lower vertex)
    for (i, &(a, b)) in g.edges.iter().enumerate() {
        let (ra, rb) = (vrank[a], vrank[b]);
        if ra == rb {
            chains.push(Vec::new());
            continue;
        }
        if !routed.as_ref().is_none_or(|r| r[i]) {
            straight += 1;
            chains.push(vec![a, b]);
            continue;
        }
        let step: isize = if ra < rb { 1 } else { -1 };
        let mut chain = vec![a];
        let mut r = ra as isize + step;
        while r != rb as isize {
            vrank.push(r as usize);
            vwidth.push(DUMMY_WIDTH);
            chain.push(vrank.len() - 1);
            r += step;
        }
        chain.push(b);
        for w in chain.windows(2) {
            let (p, q) = if vrank[w[0]] < vrank[w[1]] {
                (w[0], w[1])
            } else {
                (w[1], w[0])
            };
            links.push((p, q));
        }
        chains.push(chain);
    }
    let nv = vrank.len();
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); nv];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); nv];
    for &(p, q) in &links {
        down[p].push(q);
        up[q].push(p);
    }

    // Initial order: a depth-first walk (over links both ways) from each vertex in index order,
    // so that connected vertices start near each other.
    let mut order: Vec<Vec<usize>> = vec![Vec::new(); ranks];
    let mut seen = vec![false; nv];
    for start in 0..nv {
        if seen[start] {
            continue;
        }
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(v) = stack.pop() {
            order[vrank[v]].push(v);
            for &w in down[v].iter().chain(&up[v]).rev() {
                if !seen[w] {
                    seen[w] = true;
                    stack.push(w);
                }
            }
        }
    }
    let mut pos = vec![0usize; nv];
    let set_pos = |order: &Vec<Vec<usize>>, pos: &mut Vec<usize>| {
        for layer in order {
            for (i, &v) in layer.iter().enumerate() {
                pos[v] = i;
            }
        }
    };
    set_pos(&order, &mut pos);
    let mut best = order.clone();
    let mut best_crossings = crossings(&order, &pos, &down);
    for sweep in 0..SWEEPS {
        if best_crossings == 0 {
            break;
        }
        let downward = sweep % 2 == 0;
        let layers: Vec<usize> = if downward {
            (1..ranks).collect()
        } else {
            (0..ranks.saturating_sub(1)).rev().collect()
        };
        for r in layers {
            let bary: Vec<(f64, usize)> = order[r]
                .iter()
                .map(|&v| {
                    let nb = if downward { &up[v] } else { &down[v] };
                    let b = if nb.is_empty() {
                        pos[v] as f64
                    } else {
                        nb.iter().map(|&w| pos[w] as f64).sum::<f64>() / nb.len() as f64
                    };
                    (b, v)
                })
                .collect();
            let mut sorted = bary;
            // Stable, and ties keep the current order: deterministic.
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(pos[a.1].cmp(&pos[b.1])));
            order[r] = sorted.into_iter().map(|(_, v)| v).collect();
            for (i, &v) in order[r].iter().enumerate() {
                pos[v] = i;
            }
        }
        let c = crossings(&order, &pos, &down);
        if c < best_crossings {
            best_crossings = c;
            best = order.clone();
        }
    }
    let order = best;
    set_pos(&order, &mut pos);

    // Rows: each layer, wrapped when wider than `g.wrap`.
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut row_y: Vec<f64> = Vec::new();
    let mut layer_rows: Vec<(usize, usize)> = Vec::with_capacity(ranks); // first, last row
    let mut vrow = vec![0usize; nv];
    let mut y = NODE_HEIGHT / 2.0;
    for layer in &order {
        let first = rows.len();
        let mut row: Vec<usize> = Vec::new();
        let mut w = 0.0;
        for &v in layer {
            if g.wrap > 0.0 && !row.is_empty() && w + NODE_GAP + vwidth[v] > g.wrap {
                rows.push(std::mem::take(&mut row));
                w = 0.0;
            }
            w += vwidth[v] + if row.is_empty() { 0.0 } else { NODE_GAP };
            row.push(v);
        }
        rows.push(row);
        for (k, row) in rows.iter().enumerate().skip(first) {
            if k > 0 {
                y += NODE_HEIGHT + if k == first { LAYER_GAP } else { ROW_GAP };
            }
            row_y.push(y);
            for &v in row {
                vrow[v] = k;
            }
        }
        layer_rows.push((first, rows.len() - 1));
    }

    // x: pack, then pull each vertex toward its neighbours' mean under the order and the gaps.
    let mut x = vec![0.0f64; nv];
    for row in &rows {
        let mut left = 0.0;
        for &v in row {
            x[v] = left + vwidth[v] / 2.0;
            left += vwidth[v] + NODE_GAP;
        }
    }
    for pass in 0..PLACEMENT_PASSES {
        let order_of_rows: Vec<usize> = if pass % 2 == 0 {
            (0..rows.len()).collect()
        } else {
            (0..rows.len()).rev().collect()
        };
        for k in order_of_rows {
            let row = &rows[k];
            let want: Vec<f64> = row
                .iter()
                .map(|&v| {
                    let nb: Vec<usize> = up[v].iter().chain(&down[v]).copied().collect();
                    if nb.is_empty() {
                        x[v]
                    } else {
                        nb.iter().map(|&w| x[w]).sum::<f64>() / nb.len() as f64
                    }
                })
                .collect();
            let weights: Vec<f64> = row
                .iter()
                .map(|&v| 1.0 + (up[v].len() + down[v].len()) as f64)
                .collect();
            let gaps: Vec<f64> = row
                .windows(2)
                .map(|w| (vwidth[w[0]] + vwidth[w[1]]) / 2.0 + NODE_GAP)
                .collect();
            let placed = place(&want, &weights, &gaps);
            for (i, &v) in row.iter().enumerate() {
                x[v] = placed[i];
            }
        }
    }
    let min_left = (0..nv)
        .map(|v| x[v] - vwidth[v] / 2.0)
        .fold(f64::INFINITY, f64::min);
    let shift = if min_left.is_finite() { -min_left } else { 0.0 };
    for xv in &mut x {
        *xv += shift;
    }
    let width = (0..nv)
        .map(|v| x[v] + vwidth[v] / 2.0)
        .fold(0.0f64, f64::max);
    let height = if rows.is_empty() || ranks == 0 {
        0.0
    } else {
        y + NODE_HEIGHT / 2.0
    };
    let routes = chains
        .iter()
        .map(|c| c.iter().map(|&v| (x[v], row_y[vrow[v]])).collect())
        .collect();
    Layout {
        x: x[..n].to_vec(),
        y: (0..n).map(|v| row_y[vrow[v]]).collect(),
        routes,
        layers: levels
            .iter()
            .zip(&layer_rows)
            .map(|(&l, &(a, b))| (l, row_y[a], row_y[b]))
            .collect(),
        width,
        height,
        crossings: best_crossings,
        straight,
        bends_wanted,
    }
}

/// Which edges get their bend points when `g.max_bends` is short of `wanted` (`None`: all of
/// them): `g.first`, then by bends needed, fewest first, ties by index, while they fit.
fn routed_edges(
    g: &LayoutGraph,
    wanted: usize,
    bends: impl Fn(&(usize, usize)) -> usize,
) -> Option<Vec<bool>> {
    let budget = g.max_bends?;
    if wanted <= budget {
        return None;
    }
    let mut first = vec![false; g.edges.len()];
    for &i in &g.first {
        if let Some(f) = first.get_mut(i) {
            *f = true;
        }
    }
    let mut by: Vec<usize> = (0..g.edges.len()).collect();
    by.sort_by_key(|&i| (!first[i], bends(&g.edges[i]), i));
    let mut routed = vec![false; g.edges.len()];
    let mut left = budget;
    for i in by {
        let k = bends(&g.edges[i]);
        if k <= left {
            left -= k;
            routed[i] = true;
        }
    }
    Some(routed)
}

/// Crossings between adjacent layers: per pair, the inversions among the links sorted by their
/// upper end.
fn crossings(order: &[Vec<usize>], pos: &[usize], down: &[Vec<usize>]) -> u64 {
    let mut total = 0;
    for layer in order {
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for &v in layer {
            for &w in &down[v] {
                pairs.push((pos[v], pos[w]));
            }
        }
        pairs.sort_unstable();
        let mut lower: Vec<usize> = pairs.into_iter().map(|p| p.1).collect();
        total += inversions(&mut lower);
    }
    total
}

/// Counts the pairs `i < j` with `v[i] > v[j]`, sorting `v` (merge sort).
fn inversions(v: &mut [usize]) -> u64 {
    let n = v.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut count = inversions(&mut v[..mid]) + inversions(&mut v[mid..]);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, mid);
    while i < mid && j < n {
        if v[j] < v[i] {
            count += (mid - i) as u64;
            merged.push(v[j]);
            j += 1;
        } else {
            merged.push(v[i]);
            i += 1;
        }
    }
    merged.extend_from_slice(&v[i..mid]);
    merged.extend_from_slice(&v[j..n]);
    v.copy_from_slice(&merged);
    count
}

/// Positions closest (weighted least squares) to `want`, in the given order, with at least
/// `gaps[i]` between positions `i` and `i + 1`: isotonic regression (pool adjacent violators) on
/// the wanted positions minus the cumulative gaps.
fn place(want: &[f64], weights: &[f64], gaps: &[f64]) -> Vec<f64> {
    let n = want.len();
    let mut offset = vec![0.0; n];
    for i in 1..n {
        offset[i] = offset[i - 1] + gaps[i - 1];
    }
    // Blocks of (weighted mean, total weight, count).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(n);
    for i in 0..n {
        blocks.push((want[i] - offset[i], weights[i], 1));
        while blocks.len() > 1 {
            let (m2, w2, c2) = blocks[blocks.len() - 1];
            let (m1, w1, c1) = blocks[blocks.len() - 2];
            if m1.partial_cmp(&m2) != Some(Ordering::Greater) {
                break;
            }
            blocks.pop();
            let w = w1 + w2;
            *blocks.last_mut().expect("two blocks") = ((m1 * w1 + m2 * w2) / w, w, c1 + c2);
        }
    }
    let mut out = Vec::with_capacity(n);
    for (m, _, c) in blocks {
        for _ in 0..c {
            out.push(m + offset[out.len()]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(layer: &[u32], edges: &[(usize, usize)]) -> LayoutGraph {
        LayoutGraph {
            layer: layer.to_vec(),
            width: vec![40.0; layer.len()],
            edges: edges.to_vec(),
            wrap: 0.0,
            ..LayoutGraph::default()
        }
    }

    #[test]
    fn layers_go_down_and_boxes_do_not_overlap() {
        let g = graph(
            &[0, 1, 1, 2, 5],
            &[(0, 1), (0, 2), (1, 3), (2, 3), (3, 0), (0, 4)],
        );
        let l = layout(&g);
        assert!(l.y[0] < l.y[1] && l.y[1] == l.y[2] && l.y[2] < l.y[3] && l.y[3] < l.y[4]);
        // Layer 5 is the fourth distinct layer: no room for the missing 3 and 4.
        assert_eq!(l.layers.len(), 4);
        assert!((l.x[1] - l.x[2]).abs() >= 40.0 + NODE_GAP - 1e-9);
        for i in 0..5 {
            assert!(l.x[i] - 20.0 >= -1e-9 && l.x[i] + 20.0 <= l.width + 1e-9);
        }
        // The long edge 0 -> 4 crosses layers 1 and 2: two points between its ends.
        assert_eq!(l.routes[5].len(), 4);
        // The up edge 3 -> 0 too, from 3 to 0.
        assert_eq!(l.routes[4].first(), Some(&(l.x[3], l.y[3])));
        assert_eq!(l.routes[4].last(), Some(&(l.x[0], l.y[0])));
    }

    #[test]
    fn sweeps_remove_an_avoidable_crossing_and_the_result_is_deterministic() {
        // 0 -> 3, 1 -> 2 crosses in the initial order (0, 1 | 2, 3) unless reordered.
        let g = graph(&[0, 0, 1, 1], &[(0, 3), (1, 2)]);
        let l = layout(&g);
        assert_eq!(l.crossings, 0);
        let again = layout(&g);
        assert_eq!(l.x, again.x);
        assert_eq!(l.routes, again.routes);
    }

    #[test]
    fn inversion_count_and_placement() {
        let mut v = vec![3, 1, 2, 0];
        assert_eq!(inversions(&mut v), 5);
        assert_eq!(v, vec![0, 1, 2, 3]);
        // Two boxes wanting the same spot are pushed apart symmetrically.
        let p = place(&[10.0, 10.0], &[1.0, 1.0], &[20.0]);
        assert_eq!(p, vec![0.0, 20.0]);
        // Already apart: unchanged.
        assert_eq!(place(&[0.0, 50.0], &[1.0, 1.0], &[20.0]), vec![0.0, 50.0]);
    }

    #[test]
    fn a_wide_layer_wraps_into_rows() {
        let mut g = graph(&[0; 10], &[]);
        g.wrap = 200.0;
        let l = layout(&g);
        // 40 + 28 + 40 + 28 + 40 = 176 fits, a fourth box does not: 3 per row, 4 rows.
        let mut ys: Vec<f64> = l.y.clone();
        ys.dedup();
        assert_eq!(ys.len(), 4, "{:?}", l.y);
        assert!(l.width <= 200.0 + 1e-9);
        assert_eq!(l.layers.len(), 1);
        assert!(l.layers[0].2 > l.layers[0].1);
    }

    /// Past the bend budget, the edges listed first are routed, then the shortest; the others
    /// are drawn straight and counted, and the vertices stay within the budget.
    #[test]
    fn long_edges_past_the_bend_budget_are_drawn_straight_and_counted() {
        // Layers 0..=9; edges 0 -> 9 (8 bends), 0 -> 3 (2), 1 -> 5 (3), 9 -> 0 (8, listed first).
        let layer: Vec<u32> = (0..10).collect();
        let edges = [(0, 9), (0, 3), (1, 5), (9, 0)];
        let mut g = graph(&layer, &edges);
        let all = layout(&g);
        assert_eq!((all.straight, all.bends_wanted), (0, 21));
        assert_eq!(all.routes[0].len(), 10);
        g.max_bends = Some(12);
        g.first = vec![3];
        let l = layout(&g);
        assert_eq!((l.straight, l.bends_wanted), (2, 21));
        // 9 -> 0 first (8), then 0 -> 3 (2); 1 -> 5 (3) no longer fits, nor 0 -> 9.
        assert_eq!(l.routes[3].len(), 10);
        assert_eq!(l.routes[1].len(), 4);
        assert_eq!(l.routes[2], vec![(l.x[1], l.y[1]), (l.x[5], l.y[5])]);
        assert_eq!(l.routes[0], vec![(l.x[0], l.y[0]), (l.x[9], l.y[9])]);
        // Within the budget: the same layout as without one.
        g.max_bends = Some(21);
        let same = layout(&g);
        assert_eq!((same.x, same.routes, same.straight), (all.x, all.routes, 0));
    }

    #[test]
    fn empty_and_single() {
        let l = layout(&LayoutGraph::default());
        assert_eq!(l.width, 0.0);
        let l = layout(&graph(&[7], &[(0, 0)]));
        assert_eq!(l.layers, vec![(7, NODE_HEIGHT / 2.0, NODE_HEIGHT / 2.0)]);
        assert!(l.routes[0].is_empty());
    }
}
