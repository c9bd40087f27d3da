//! `--format html`: one self-contained page (no network, no external file) that explains the
//! findings with pictures: the lock-order graph drawn in the levels of the suggested hierarchy
//! (level 0 at the top; consistent acquisitions point down, the acquisitions to change are red and
//! point up), each violation's scenario as a timeline of its threads, then the text scenarios, the
//! suppressed findings, the hierarchy and the timeout table.
//!
//! Every lock is drawn (no cap): past [`FOLD_ABOVE`] locks, the components of the graph that hold
//! a violation are drawn first and the others are folded into a `<details>` below, with a note
//! saying how many locks that is. Edges are drawn up to [`MAX_DRAWN_EDGES`] (the violations' and
//! the edges to change first, whatever their number; the page says how many it leaves out, and
//! `--format dot` has them all); an edge spanning several levels is
//! routed around the boxes while the drawing's bend points last ([`layout::MAX_BENDS`]: a dense
//! graph in a thousand levels would otherwise take gigabytes), then drawn straight, with a
//! warning under the picture saying how many. The picture fits the page width (an SVG `viewBox`); a small
//! inline script adds wheel zoom, drag pan and double-click reset, and makes a click on a
//! violation highlight exactly its cycle in the graph and scroll to its scenario. Short labels
//! (the lock's name, or `file:line` relative to the repository), full detail on hover (`<title>`).
//!
//! The output is deterministic (same input, same bytes): the layout ([`layout`]) is, and nothing
//! here iterates a hash map into the page. A Content-Security-Policy of `default-src 'none'` (inline
//! style and script only) makes a browser refuse anything the page might try to load, so
//! "self-contained" is enforced, not just intended.

#[path = "layout.rs"]
pub mod layout;

use crate::graph::OrderGraph;
use crate::hierarchy::file_line;
use crate::report::{render_violation, summary_line, title, Report, Violation};
use crate::timeouts::fmt_ns;
use layout::{LayoutGraph, NODE_HEIGHT};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Above this many locks, the graph's components without a violation are folded below the
/// picture of those with one.
pub const FOLD_ABOVE: usize = 60;
/// The page draws at most this many edges of the lock-order graph (every violation's edge and
/// every edge to change, whatever their number; then the others in the graph's order), and says
/// how many it leaves out.
pub const MAX_DRAWN_EDGES: usize = 20_000;
/// Labels longer than this are cut (from the front: the end of a path says the most).
const LABEL_CHARS: usize = 36;
/// Approximate advance of one character of the 12 px monospace font, for box widths.
const CHAR_WIDTH: f64 = 7.3;
/// The same for the 10 px captions.
const SITE_CHAR_WIDTH: f64 = 6.2;
/// Left gutter of the graph, for the level labels.
const GUTTER: f64 = 64.0;
/// Margin around drawings.
const MARGIN: f64 = 16.0;

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 76em; padding: 0 1em; color: #1d1d1f; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.summary { font-family: ui-monospace, monospace; background: #f5f5f7; padding: 0.6em 0.8em; border-radius: 4px; }
.fail { color: #b00020; }
.pass { color: #0a7d32; }
pre { background: #f8f8f8; border: 1px solid #e2e2e2; padding: 0.8em; overflow-x: auto; font-size: 0.85em; line-height: 1.35; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.violation { border-left: 4px solid #b00020; padding-left: 0.8em; margin: 1em 0; }
.tag { display: inline-block; font-size: 0.75em; padding: 0.05em 0.5em; border-radius: 3px; background: #eee; margin-left: 0.4em; }
.tag.rule { background: #fde7ea; color: #b00020; }
.note { color: #555; font-size: 0.9em; }
.warning { color: #8a5a00; }
.graph { border: 1px solid #e2e2e2; border-radius: 4px; background: #fff; overflow: hidden; }
.graph svg { display: block; width: 100%; height: auto; max-height: 72vh; margin: 0 auto; touch-action: none; cursor: grab; }
.graph svg.dragging { cursor: grabbing; }
.timeline svg { display: block; width: 100%; height: auto; margin: 0.5em 0; }
.vlist { margin: 0.4em 0; display: flex; flex-wrap: wrap; gap: 0.4em; }
.vlink { font-size: 0.9em; padding: 0.15em 0.6em; border: 1px solid #e4a0aa; border-radius: 12px; color: #b00020; text-decoration: none; background: #fff5f6; }
.vlink.active { background: #b00020; color: #fff; }
.legend span { white-space: nowrap; margin-right: 1em; }
svg text { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
svg .lvl { fill: #888; font-size: 11px; }
svg .band { fill: #f7f7fa; }
svg .node rect { fill: #fff; stroke: #7d8590; stroke-width: 1.2; }
svg .node text { fill: #1d1d1f; text-anchor: middle; dominant-baseline: central; }
svg .node.viol rect { stroke: #d0021b; stroke-width: 2; fill: #fff5f6; }
svg .edge .line { fill: none; stroke: #9aa1ab; stroke-width: 1.4; }
svg .edge.loose .line { stroke-dasharray: 5 4; }
svg .edge .hit { fill: none; stroke: transparent; stroke-width: 10; }
svg.big .edge:not(.viol):not(.change) .line { stroke-opacity: 0.35; stroke-width: 0.8; }
svg .edge.viol .line { stroke: #4a4f57; stroke-width: 2; }
svg .edge.change .line { stroke: #d0021b; stroke-width: 2.6; }
svg .elabel { fill: #d0021b; font-size: 11px; text-anchor: middle; dominant-baseline: central; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg.focus .node:not(.hl), svg.focus .edge:not(.hl), svg.focus .elabel { opacity: 0.18; }
svg .node.hl rect { stroke: #d0021b; stroke-width: 3; fill: #ffe1e6; }
svg .lane { stroke: #c9ced6; stroke-width: 1; }
svg .thread { fill: #1d1d1f; font-weight: bold; }
svg .hold { fill: #cfe0fb; }
svg .acq rect { fill: #e8f0fe; stroke: #4a74c9; }
svg .wait rect { fill: #fff0f2; stroke: #d0021b; stroke-width: 1.6; }
svg .against rect { fill: #fff6e5; stroke: #c77700; stroke-width: 1.6; }
svg .step text { text-anchor: middle; dominant-baseline: central; }
svg .site { fill: #666; font-size: 10px; text-anchor: middle; }
svg .blocked { stroke: #d0021b; stroke-width: 1.4; stroke-dasharray: 4 3; fill: none; }
svg .deadlock { fill: #d0021b; font-weight: bold; font-size: 13px; }
"#;

/// Wheel zoom, drag pan, double-click reset on every `svg.zoom`; a click on a violation link
/// highlights its cycle (`data-nodes`, `data-edges`) and scrolls to its scenario.
const SCRIPT: &str = r#"
(function () {
  'use strict';
  function zoomable(svg) {
    var vb = svg.viewBox.baseVal;
    var home = [vb.x, vb.y, vb.width, vb.height];
    function set(a) { vb.x = a[0]; vb.y = a[1]; vb.width = a[2]; vb.height = a[3]; }
    function scale() {
      var r = svg.getBoundingClientRect();
      return Math.max(vb.width / r.width, vb.height / r.height);
    }
    function toSvg(e) {
      var p = svg.createSVGPoint();
      p.x = e.clientX; p.y = e.clientY;
      return p.matrixTransform(svg.getScreenCTM().inverse());
    }
    svg.addEventListener('wheel', function (e) {
      e.preventDefault();
      var f = e.deltaY < 0 ? 0.8 : 1.25;
      if (vb.width * f >= home[2]) { set(home); return; }
      if (vb.width * f < home[2] / 50) { return; }
      var p = toSvg(e);
      set([p.x - (p.x - vb.x) * f, p.y - (p.y - vb.y) * f, vb.width * f, vb.height * f]);
    }, { passive: false });
    var drag = null;
    svg.addEventListener('pointerdown', function (e) {
      if (e.button !== 0) { return; }
      drag = { x: e.clientX, y: e.clientY, vx: vb.x, vy: vb.y, s: scale() };
      try { svg.setPointerCapture(e.pointerId); } catch (err) { /* not an active pointer */ }
      svg.classList.add('dragging');
    });
    svg.addEventListener('pointermove', function (e) {
      if (!drag) { return; }
      vb.x = drag.vx - (e.clientX - drag.x) * drag.s;
      vb.y = drag.vy - (e.clientY - drag.y) * drag.s;
    });
    function end() { drag = null; svg.classList.remove('dragging'); }
    svg.addEventListener('pointerup', end);
    svg.addEventListener('pointercancel', end);
    svg.addEventListener('dblclick', function () { set(home); });
  }
  Array.prototype.forEach.call(document.querySelectorAll('svg.zoom'), zoomable);
  function highlight(link) {
    Array.prototype.forEach.call(document.querySelectorAll('.hl'), function (el) { el.classList.remove('hl'); });
    Array.prototype.forEach.call(document.querySelectorAll('.vlink.active'), function (el) { el.classList.remove('active'); });
    var ids = ((link.getAttribute('data-nodes') || '') + ' ' + (link.getAttribute('data-edges') || '')).split(' ');
    ids.forEach(function (id) {
      var el = id ? document.getElementById(id) : null;
      if (el) { el.classList.add('hl'); }
    });
    Array.prototype.forEach.call(document.querySelectorAll('svg.lockgraph'), function (svg) { svg.classList.add('focus'); });
    link.classList.add('active');
  }
  Array.prototype.forEach.call(document.querySelectorAll('.vlink'), function (a) {
    a.addEventListener('click', function (e) {
      e.preventDefault();
      highlight(a);
      var id = a.getAttribute('href').slice(1);
      var target = document.getElementById(id);
      if (target) {
        target.scrollIntoView({ block: 'start' });
        if (window.history && history.replaceState) { history.replaceState(null, '', '#' + id); }
      }
    });
  });
})();
"#;

/// HTML-escapes text.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Options of [`render_html_with`].
#[derive(Debug, Clone, Default)]
pub struct HtmlOptions {
    /// Source paths under this directory are shown relative to it in labels.
    pub repo_root: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------------
// What the page reads from the report. Kept to these few functions, so that a change of the
// report model touches only them.

/// One step of a violation's scenario: `thread` holds `holds` and acquires `wants`.
struct Step {
    thread: String,
    holds: String,
    holds_site: Option<String>,
    wants: String,
    wants_site: Option<String>,
}

/// A finding as the page shows it.
struct Finding {
    id: String,
    rule: String,
    title: String,
    text: String,
    /// An acquisition against the declared hierarchy (one step, no deadlock), not a cycle.
    against_declared: bool,
    /// At the violation's own level: the locks of its cycle (names), and their classes.
    names: Vec<String>,
    classes: Vec<String>,
    /// Whether `names` are lock instances (else classes).
    instance_level: bool,
    steps: Vec<Step>,
}

fn finding(v: &Violation, index: usize, total: usize) -> Finding {
    Finding {
        id: v.id.clone(),
        rule: v.rule.clone(),
        title: title(v),
        text: render_violation(v, index, total, false),
        against_declared: v.kind == "hierarchy-violation",
        names: v.locks.iter().map(|l| l.name.clone()).collect(),
        classes: v.locks.iter().map(|l| l.class.clone()).collect(),
        instance_level: v.level == "instance",
        steps: v
            .edges
            .iter()
            .map(|e| Step {
                thread: e.thread.clone(),
                holds: e.from.clone(),
                holds_site: e
                    .held
                    .iter()
                    .find(|h| *h.lock == *e.from)
                    .and_then(|h| h.site.as_deref().map(str::to_string)),
                wants: e.acquired.clone(),
                wants_site: e.site.clone(),
            })
            .collect(),
    }
}

/// The findings that fail the run, in report order.
fn findings(report: &Report) -> Vec<Finding> {
    let new: Vec<&Violation> = report.new_violations().collect();
    new.iter()
        .enumerate()
        .map(|(i, v)| finding(v, i, new.len()))
        .collect()
}

/// The suggested level of each class.
fn class_levels(report: &Report) -> HashMap<&str, u32> {
    report
        .hierarchy
        .levels
        .iter()
        .map(|l| (l.class.as_str(), l.level))
        .collect()
}

/// The class edges `(held, acquired)` the hierarchy says to change.
fn edges_to_change(report: &Report) -> HashSet<(&str, &str)> {
    report
        .hierarchy
        .removed_edges
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str()))
        .collect()
}

// ---------------------------------------------------------------------------------------------

/// `path` relative to `root` when it lies under it (at a path component boundary).
fn relative<'a>(path: &'a str, root: Option<&str>) -> &'a str {
    match root.and_then(|r| path.strip_prefix(r)) {
        Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/'),
        _ => path,
    }
}

/// A short label: a source location relative to `root` and without its column; at most
/// [`LABEL_CHARS`] characters (cut at the front).
fn short_label(name: &str, root: Option<&str>) -> String {
    let s = file_line(relative(name, root));
    let n = s.chars().count();
    if n <= LABEL_CHARS {
        s
    } else {
        let tail: String = s.chars().skip(n - (LABEL_CHARS - 1)).collect();
        format!("…{tail}")
    }
}

/// `file:line` of a site, relative to the repository.
fn short_site(site: &str, root: Option<&str>) -> String {
    file_line(relative(site, root))
}

/// A coordinate with at most one decimal: short, and the same text for the same layout.
fn fmt(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// A violation's button: `A ⇄ B` for two locks, `A → B → C → A` for a longer cycle, `A → B` for
/// an acquisition against the declared hierarchy.
fn cycle_label(names: &[String], against_declared: bool) -> String {
    match names {
        [a, b] if !against_declared => format!("{a} ⇄ {b}"),
        [first, ..] if !against_declared => format!("{} → {first}", names.join(" → ")),
        _ => names.join(" → "),
    }
}

/// Renders the page.
pub fn render_html(report: &Report, graph: &OrderGraph) -> String {
    render_html_with(report, graph, &HtmlOptions::default())
}

/// The lock-order graph alone as an SVG element, without a report: no hierarchy, so one level
/// (wrapped into rows), except a lock drawn beside its class.
pub fn graph_svg(graph: &OrderGraph) -> String {
    let all: Vec<usize> = (0..graph.nodes.len()).collect();
    let levels = fallback_levels(graph, &vec![None; graph.nodes.len()]);
    draw_graph(
        graph,
        &all,
        &levels,
        &HashSet::new(),
        &[],
        None,
        "g",
        "lockgraph",
    )
}

/// Levels for nodes without one in the hierarchy: the level of their class's node when the
/// graph has one (a lock drawn beside its class), else one more than the highest known level of
/// a node they were acquired under, else 0. (One pass, no propagation: unknown levels are rare
/// (`try_*`-only acquisitions) and must not climb around a cycle.)
fn fallback_levels(graph: &OrderGraph, known: &[Option<u32>]) -> Vec<u32> {
    let mut level: Vec<u32> = known.iter().map(|l| l.unwrap_or(0)).collect();
    if known.iter().all(Option::is_some) {
        return level;
    }
    let by_name: HashMap<&str, usize> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut above: Vec<Option<u32>> = vec![None; graph.nodes.len()];
    for e in &graph.edges {
        if e.from != e.to {
            if let Some(l) = known[e.from] {
                above[e.to] = above[e.to].max(Some(l + 1));
            }
        }
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        if known[i].is_some() {
            continue;
        }
        let class_node = by_name
            .get(node.class.as_str())
            .copied()
            .filter(|&c| c != i);
        level[i] = match class_node {
            Some(c) => known[c].unwrap_or(0),
            None => above[i].unwrap_or(0),
        };
    }
    level
}

/// The graph's nodes by name and by class, and its edges by source: what [`cycle_in_graph`]
/// looks up for every finding. (Testing every edge against every finding's pairs took most of
/// twenty seconds on a hostile trace's graph of 190,000 edges.)
struct GraphIndex<'g> {
    by_name: HashMap<&'g str, Vec<usize>>,
    by_class: HashMap<&'g str, Vec<usize>>,
    out: Vec<Vec<usize>>,
}

impl<'g> GraphIndex<'g> {
    fn new(graph: &'g OrderGraph) -> GraphIndex<'g> {
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_class: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in graph.nodes.iter().enumerate() {
            by_name.entry(n.name.as_str()).or_default().push(i);
            by_class.entry(n.class.as_str()).or_default().push(i);
        }
        let mut out = vec![Vec::new(); graph.nodes.len()];
        for (i, e) in graph.edges.iter().enumerate() {
            out[e.from].push(i);
        }
        GraphIndex {
            by_name,
            by_class,
            out,
        }
    }
}

/// Per finding, the graph nodes of its cycle and the graph edges between consecutive ones.
fn cycle_in_graph(
    graph: &OrderGraph,
    index: &GraphIndex<'_>,
    f: &Finding,
) -> (BTreeSet<usize>, BTreeSet<usize>) {
    // By lock name on an instance graph, or when the class graph shows this finding's locks
    // (see `with_same_class_instances`); else by class.
    let by_name = f.instance_level
        && (graph.level == "instance"
            || f.names
                .iter()
                .all(|n| index.by_name.contains_key(n.as_str())));
    let (keys, nodes_of): (&[String], _) = if by_name {
        (&f.names, &index.by_name)
    } else {
        (&f.classes, &index.by_class)
    };
    let key = |i: usize| -> &str {
        if by_name {
            &graph.nodes[i].name
        } else {
            &graph.nodes[i].class
        }
    };
    let n = keys.len();
    let pairs: Vec<(&str, &str)> = if f.against_declared || n < 2 {
        keys.windows(2)
            .map(|w| (w[0].as_str(), w[1].as_str()))
            .collect()
    } else {
        (0..n)
            .map(|i| (keys[i].as_str(), keys[(i + 1) % n].as_str()))
            .collect()
    };
    let with_key = |k: &str| nodes_of.get(k).into_iter().flatten().copied();
    let nodes = keys.iter().flat_map(|k| with_key(k)).collect();
    let mut edges = BTreeSet::new();
    for (a, b) in pairs {
        for from in with_key(a) {
            edges.extend(
                index.out[from]
                    .iter()
                    .copied()
                    .filter(|&e| key(graph.edges[e].to) == b),
            );
        }
    }
    (nodes, edges)
}

/// The weakly connected components of the graph, as a component index per node.
fn components(graph: &OrderGraph) -> Vec<usize> {
    let n = graph.nodes.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    for e in &graph.edges {
        let (a, b) = (find(&mut parent, e.from), find(&mut parent, e.to));
        if a != b {
            parent[a.max(b)] = a.min(b);
        }
    }
    (0..n).map(|i| find(&mut parent, i)).collect()
}

/// Draws the nodes `subset` of `graph` (and the edges between them) as an SVG element.
#[allow(clippy::too_many_arguments)]
fn draw_graph(
    graph: &OrderGraph,
    subset: &[usize],
    levels: &[u32],
    change: &HashSet<usize>,
    cycle_edges: &[BTreeSet<usize>],
    root: Option<&str>,
    prefix: &str,
    class: &str,
) -> String {
    let local: HashMap<usize, usize> = subset.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let labels: Vec<String> = subset
        .iter()
        .map(|&n| short_label(&graph.nodes[n].name, root))
        .collect();
    let widths: Vec<f64> = labels
        .iter()
        .map(|l| l.chars().count() as f64 * CHAR_WIDTH + 22.0)
        .collect();
    let edge_ids: Vec<usize> = (0..graph.edges.len())
        .filter(|&i| {
            local.contains_key(&graph.edges[i].from) && local.contains_key(&graph.edges[i].to)
        })
        .collect();
    // Wrap a layer wider than a page of about 16:9 holding every box: a graph with hundreds of
    // locks on one level stays a picture, not a thin strip.
    let area: f64 =
        widths.iter().map(|w| w + layout::NODE_GAP).sum::<f64>() * (NODE_HEIGHT + layout::ROW_GAP);
    let wrap = (area * 1.8).sqrt().max(1400.0);
    let in_cycle: HashSet<usize> = cycle_edges.iter().flatten().copied().collect();
    let lg = LayoutGraph {
        wrap,
        layer: subset.iter().map(|&n| levels[n]).collect(),
        width: widths.clone(),
        edges: edge_ids
            .iter()
            .map(|&i| (local[&graph.edges[i].from], local[&graph.edges[i].to]))
            .collect(),
        max_bends: Some(layout::MAX_BENDS),
        // The violations' edges and the edges to change keep their routes.
        first: (0..edge_ids.len())
            .filter(|&k| in_cycle.contains(&edge_ids[k]) || change.contains(&edge_ids[k]))
            .collect(),
    };
    let l = layout::layout(&lg);
    let pairs: HashSet<(usize, usize)> = lg.edges.iter().copied().collect();
    // Room above and below the layers for the arcs of edges within one layer.
    let top = MARGIN + 28.0;
    let width = GUTTER + l.width + 2.0 * MARGIN + 40.0;
    let height = l.height + 2.0 * top;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"zoom {class}{big}\" id=\"{prefix}-svg\" viewBox=\"0 0 {w} {h}\" preserveAspectRatio=\"xMidYMin meet\" style=\"max-width:{mw}px\" role=\"img\" aria-label=\"lock-order graph\">",
        w = fmt(width),
        h = fmt(height),
        mw = fmt(width * 1.3),
        // Many edges: the ordinary ones fade, so that the violations' stand out.
        big = if edge_ids.len() > 300 { " big" } else { "" },
    );
    let _ = writeln!(
        s,
        "<defs><marker id=\"{prefix}-arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#9aa1ab\"/></marker>\
<marker id=\"{prefix}-arrow-dark\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#4a4f57\"/></marker>\
<marker id=\"{prefix}-arrow-red\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"5\" markerHeight=\"5\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#d0021b\"/></marker></defs>"
    );
    // Level bands and labels.
    for (i, &(level, y0, y1)) in l.layers.iter().enumerate() {
        let band_top = top + y0 - NODE_HEIGHT / 2.0 - 8.0;
        if i % 2 == 0 {
            let _ = writeln!(
                s,
                "<rect class=\"band\" x=\"0\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
                fmt(band_top),
                fmt(width),
                fmt(y1 - y0 + NODE_HEIGHT + 16.0)
            );
        }
        let _ = writeln!(
            s,
            "<text class=\"lvl\" x=\"6\" y=\"{}\" dominant-baseline=\"central\">level {level}</text>",
            fmt(top + y0)
        );
    }
    let _ = writeln!(
        s,
        "<g transform=\"translate({} {})\">",
        fmt(GUTTER + MARGIN),
        fmt(top)
    );
    // Edges first, nodes on top.
    let half = NODE_HEIGHT / 2.0;
    for (k, &ei) in edge_ids.iter().enumerate() {
        let e = &graph.edges[ei];
        let (a, b) = lg.edges[k];
        let is_change = change.contains(&ei);
        let route = &l.routes[k];
        let (xa, ya, xb, yb) = (l.x[a], l.y[a], l.x[b], l.y[b]);
        let mut label_at = None;
        let d = if a == b {
            let r = xa + widths[a] / 2.0;
            format!(
                "M{},{} C{},{} {},{} {},{}",
                fmt(r),
                fmt(ya - 6.0),
                fmt(r + 34.0),
                fmt(ya - 26.0),
                fmt(r + 34.0),
                fmt(ya + 26.0),
                fmt(r + 2.0),
                fmt(ya + 6.0)
            )
        } else if route.is_empty() {
            // Same layer: an arc, above when it goes right, below when it goes left, so that
            // two locks taken in both orders show a loop. (No site label: arcs of neighbours
            // would overlap theirs; the tooltip has the sites.)
            let sign = if xb >= xa { -1.0 } else { 1.0 };
            let (y0, y1) = (ya + sign * half, yb + sign * (half + 2.0));
            let bulge = sign * 26.0;
            format!(
                "M{},{} C{},{} {},{} {},{}",
                fmt(xa),
                fmt(y0),
                fmt(xa),
                fmt(y0 + bulge),
                fmt(xb),
                fmt(y1 + bulge),
                fmt(xb),
                fmt(y1)
            )
        } else {
            let down = yb > ya;
            // Both directions between two locks: the two arrows side by side.
            let dx = if pairs.contains(&(b, a)) {
                if down {
                    -7.0
                } else {
                    7.0
                }
            } else {
                0.0
            };
            let mut pts: Vec<(f64, f64)> = route.clone();
            let last = pts.len() - 1;
            pts[0] = (pts[0].0 + dx, pts[0].1 + if down { half } else { -half });
            pts[last] = (
                pts[last].0 + dx,
                pts[last].1 + if down { -half - 2.0 } else { half + 2.0 },
            );
            let mid = pts.len() / 2;
            label_at = Some(if pts.len() % 2 == 0 {
                (
                    (pts[mid - 1].0 + pts[mid].0) / 2.0,
                    (pts[mid - 1].1 + pts[mid].1) / 2.0,
                )
            } else {
                pts[mid]
            });
            let mut d = format!("M{},{}", fmt(pts[0].0), fmt(pts[0].1));
            for w in pts.windows(2) {
                let my = (w[0].1 + w[1].1) / 2.0;
                let _ = write!(
                    d,
                    " C{},{} {},{} {},{}",
                    fmt(w[0].0),
                    fmt(my),
                    fmt(w[1].0),
                    fmt(my),
                    fmt(w[1].0),
                    fmt(w[1].1)
                );
            }
            d
        };
        let mut classes = String::from("edge");
        if in_cycle.contains(&ei) {
            classes.push_str(" viol");
        }
        if is_change {
            classes.push_str(" change");
        }
        // Against the levels but not an edge to change: the hierarchy does not order it (a
        // `try_*` acquisition needs no order). Drawn dashed, so that "up" keeps meaning "change".
        let loose = !is_change && a != b && levels[e.from] >= levels[e.to];
        if loose {
            classes.push_str(" loose");
        }
        let marker = if is_change {
            "arrow-red"
        } else if in_cycle.contains(&ei) {
            "arrow-dark"
        } else {
            "arrow"
        };
        let sites: Vec<String> = e.sites.iter().map(|x| short_site(x, root)).collect();
        let tip = format!(
            "{} → {}: {} acquired while holding {} ({} dependenc{}){}{}",
            graph.nodes[e.from].name,
            graph.nodes[e.to].name,
            graph.nodes[e.to].name,
            graph.nodes[e.from].name,
            e.dependencies,
            if e.dependencies == 1 { "y" } else { "ies" },
            if sites.is_empty() {
                String::new()
            } else {
                format!(" at {}", sites.join(", "))
            },
            if is_change {
                "; against the suggested hierarchy: change this acquisition"
            } else if loose {
                "; against the levels, but needs no order (not a blocking acquisition)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "<g class=\"{classes}\" id=\"{prefix}-e{ei}\"><title>{}</title><path class=\"hit\" d=\"{d}\"/><path class=\"line\" d=\"{d}\" marker-end=\"url(#{prefix}-{marker})\"/></g>",
            escape(&tip)
        );
        if is_change {
            if let (Some((lx, ly)), Some(first)) = (label_at, sites.first()) {
                let more = if sites.len() > 1 {
                    format!(" (+{})", sites.len() - 1)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "<text class=\"elabel\" x=\"{}\" y=\"{}\">{}{}</text>",
                    fmt(lx),
                    fmt(ly),
                    escape(first),
                    more
                );
            }
        }
    }
    for (i, &n) in subset.iter().enumerate() {
        let node = &graph.nodes[n];
        let w = widths[i];
        let tip = format!(
            "{} ({}, {} level {}){}",
            node.name,
            node.kind,
            if node.class != node.name {
                format!("class {}, ", node.class)
            } else {
                String::new()
            },
            levels[n],
            if node.in_violation {
                "; part of a violation"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "<g class=\"node{}\" id=\"{prefix}-n{n}\" data-name=\"{}\" transform=\"translate({} {})\"><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"5\"/><text x=\"0\" y=\"0\">{}</text></g>",
            if node.in_violation { " viol" } else { "" },
            escape(&node.name),
            fmt(l.x[i]),
            fmt(l.y[i]),
            escape(&tip),
            fmt(-w / 2.0),
            fmt(-half),
            fmt(w),
            fmt(NODE_HEIGHT),
            escape(&labels[i])
        );
    }
    let _ = writeln!(s, "</g>\n</svg>");
    if l.straight > 0 {
        let _ = writeln!(
            s,
            "<p class=\"warning\" id=\"{prefix}-straight\">{} edges spanning several levels (of the {} drawn here) are drawn straight, across the boxes: routing every edge around them would take {} bend points, and this drawing routes at most {} (the violations' edges first, then the shortest).</p>",
            l.straight,
            edge_ids.len(),
            l.bends_wanted,
            layout::MAX_BENDS
        );
    }
    s
}

/// A violation's scenario as a timeline: one lane per thread; first every thread takes the lock it
/// holds, then each requests the next lock of the cycle, held by the next lane, and none can go
/// on. An acquisition against the declared hierarchy is one lane of two steps.
fn timeline_svg(f: &Finding, root: Option<&str>) -> String {
    let n = f.steps.len();
    if n == 0 {
        return String::new();
    }
    let lane_h = 58.0;
    let box_h = 26.0;
    let label_w = f
        .steps
        .iter()
        .map(|s| s.thread.chars().count().min(28))
        .max()
        .unwrap_or(8) as f64
        * CHAR_WIDTH
        + 24.0;
    let step_text = |lock: &str| format!("lock({})", short_label(lock, root));
    let col_w = f
        .steps
        .iter()
        .flat_map(|s| [step_text(&s.holds), step_text(&s.wants)])
        .map(|t| t.chars().count())
        .max()
        .unwrap_or(8) as f64
        * CHAR_WIDTH
        + 30.0;
    let site_w = f
        .steps
        .iter()
        .flat_map(|s| [s.holds_site.as_deref(), s.wants_site.as_deref()])
        .flatten()
        .map(|x| short_site(x, root).chars().count())
        .max()
        .unwrap_or(0) as f64
        * SITE_CHAR_WIDTH
        + 16.0;
    let col_w = col_w.max(site_w).max(120.0);
    // Up to 3 threads, one step per column in the order of the text scenario; more threads in two
    // columns (all take their first lock, then all request the next), to stay readable.
    let compact = n > 3;
    let cols = if f.against_declared || compact {
        2
    } else {
        2 * n
    };
    let hold_col = |i: usize| if compact { 0 } else { i };
    let wait_col = |i: usize| if compact { 1 } else { 2 * n - 1 - i };
    let end_w = if f.against_declared { 20.0 } else { 120.0 };
    let width = label_w + cols as f64 * col_w + end_w + MARGIN;
    let height = n as f64 * lane_h + MARGIN;
    let lane_y = |i: usize| MARGIN / 2.0 + i as f64 * lane_h + box_h / 2.0 + 4.0;
    let col_x = |c: usize| label_w + c as f64 * col_w + col_w / 2.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" style=\"max-width:{}px\" role=\"img\" aria-label=\"scenario timeline\">",
        fmt(width),
        fmt(height),
        fmt(width * 1.2)
    );
    let _ = writeln!(
        s,
        "<defs><marker id=\"t-{id}-arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#d0021b\"/></marker></defs>",
        id = escape(&f.id)
    );
    let draw_step = |s: &mut String,
                     class: &str,
                     x: f64,
                     y: f64,
                     text: &str,
                     site: Option<&String>,
                     tip: &str| {
        let w = col_w - 16.0;
        let _ = writeln!(
                s,
                "<g class=\"step {class}\"><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"4\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
                escape(tip),
                fmt(x - w / 2.0),
                fmt(y - box_h / 2.0),
                fmt(w),
                fmt(box_h),
                fmt(x),
                fmt(y),
                escape(text)
            );
        if let Some(site) = site {
            let _ = writeln!(
                s,
                "<text class=\"site\" x=\"{}\" y=\"{}\">{}</text>",
                fmt(x),
                fmt(y + box_h / 2.0 + 11.0),
                escape(&short_site(site, root))
            );
        }
    };
    for (i, st) in f.steps.iter().enumerate() {
        let y = lane_y(i);
        let thread: String = if st.thread.chars().count() > 28 {
            let t: String = st.thread.chars().take(27).collect();
            format!("{t}…")
        } else {
            st.thread.clone()
        };
        let _ = writeln!(
            s,
            "<line class=\"lane\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/><text class=\"thread\" x=\"6\" y=\"{}\" dominant-baseline=\"central\"><title>{}</title>{}</text>",
            fmt(label_w - 8.0),
            fmt(y),
            fmt(width - MARGIN),
            fmt(y),
            fmt(y),
            escape(&st.thread),
            escape(&thread)
        );
        // What the thread holds, from its acquisition to the end.
        let hold_from = col_x(if f.against_declared { 0 } else { hold_col(i) }) + col_w / 2.0 - 8.0;
        let _ = writeln!(
            s,
            "<rect class=\"hold\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"6\"><title>{} holds {}</title></rect>",
            fmt(hold_from),
            fmt(y - 3.0),
            fmt((width - MARGIN - hold_from).max(0.0)),
            escape(&st.thread),
            escape(&st.holds)
        );
    }
    if f.against_declared {
        let st = &f.steps[0];
        let y = lane_y(0);
        draw_step(
            &mut s,
            "acq",
            col_x(0),
            y,
            &step_text(&st.holds),
            st.holds_site.as_ref(),
            &format!("{} acquires {}", st.thread, st.holds),
        );
        draw_step(
            &mut s,
            "against",
            col_x(1),
            y,
            &step_text(&st.wants),
            st.wants_site.as_ref(),
            &format!(
                "{} acquires {} while holding {}: against the declared hierarchy",
                st.thread, st.wants, st.holds
            ),
        );
    } else {
        for (i, st) in f.steps.iter().enumerate() {
            draw_step(
                &mut s,
                "acq",
                col_x(hold_col(i)),
                lane_y(i),
                &step_text(&st.holds),
                st.holds_site.as_ref(),
                &format!("{} acquires {}", st.thread, st.holds),
            );
        }
        // Then the requests, last thread first (as in the text scenario); each waits for the
        // next lane, which holds what it wants.
        for i in (0..n).rev() {
            let st = &f.steps[i];
            let x = col_x(wait_col(i));
            let y = lane_y(i);
            let holder = (i + 1) % n;
            draw_step(
                &mut s,
                "wait",
                x,
                y,
                &step_text(&st.wants),
                st.wants_site.as_ref(),
                &format!(
                    "{} requests {} while holding {}: blocked, {} holds it",
                    st.thread, st.wants, st.holds, f.steps[holder].thread
                ),
            );
            if holder != i {
                let hy = lane_y(holder);
                let (y1, y2) = if hy > y {
                    (y + box_h / 2.0, hy - 5.0)
                } else {
                    (y - box_h / 2.0, hy + 5.0)
                };
                // In the gap right of the box, clear of its caption; in two columns, the arrow
                // back to the first lane, which passes every lane, in the gap on the left.
                let ax = if compact && holder < i {
                    x - col_w / 2.0 + 4.0
                } else {
                    x + col_w / 2.0 - 4.0
                };
                let _ = writeln!(
                    s,
                    "<line class=\"blocked\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" marker-end=\"url(#t-{}-arrow)\"/>",
                    fmt(y1),
                    fmt(y2),
                    escape(&f.id),
                    x = fmt(ax)
                );
            }
        }
        let _ = writeln!(
            s,
            "<text class=\"deadlock\" x=\"{}\" y=\"{}\" dominant-baseline=\"central\">DEADLOCK</text>",
            fmt(label_w + cols as f64 * col_w + 8.0),
            fmt((lane_y(0) + lane_y(n - 1)) / 2.0)
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

/// The graph the page draws: `graph`, or past [`MAX_DRAWN_EDGES`] edges, the violations' edges and
/// the edges to change, then the others in the graph's order up to that many; the rest is
/// counted in `omitted_edges`, which the page states under the picture (`--format dot` has
/// them all). A page of millions of edges (one thread nesting 3,000 locks has 4.5 million) is
/// gigabytes that no browser opens.
fn drawable<'g>(graph: &'g OrderGraph, report: &Report) -> Cow<'g, OrderGraph> {
    if graph.edges.len() <= MAX_DRAWN_EDGES {
        return Cow::Borrowed(graph);
    }
    let change_pairs = edges_to_change(report);
    let first = |e: &crate::graph::GraphEdge| {
        e.in_violation
            || change_pairs.contains(&(
                graph.nodes[e.from].class.as_str(),
                graph.nodes[e.to].class.as_str(),
            ))
    };
    let mut keep: Vec<usize> = (0..graph.edges.len())
        .filter(|&i| first(&graph.edges[i]))
        .collect();
    let mut rest = (0..graph.edges.len()).filter(|&i| !first(&graph.edges[i]));
    while keep.len() < MAX_DRAWN_EDGES {
        match rest.next() {
            Some(i) => keep.push(i),
            None => break,
        }
    }
    keep.sort_unstable();
    Cow::Owned(OrderGraph {
        level: graph.level.clone(),
        nodes: graph.nodes.clone(),
        edges: keep.iter().map(|&i| graph.edges[i].clone()).collect(),
        omitted: graph.omitted,
        omitted_edges: graph.omitted_edges + graph.edges.len() - keep.len(),
    })
}

/// The class graph cannot show an inversion between two locks of one class (it is a self-loop
/// there): for each such finding, its locks are added as nodes of their own, in their class's
/// level, with the finding's edges between them. Returns the graph to draw and the indices of
/// the added edges (drawn red: no level can order them, the code must, e.g. by an id).
fn with_same_class_instances(graph: &OrderGraph, found: &[Finding]) -> (OrderGraph, Vec<usize>) {
    let mut g = graph.clone();
    let mut added = Vec::new();
    if graph.level != "class" {
        return (g, added);
    }
    for f in found {
        let same_class = f.classes.len() >= 2 && f.classes.iter().all(|c| *c == f.classes[0]);
        if !f.instance_level || f.against_declared || !same_class {
            continue;
        }
        let kind = graph
            .nodes
            .iter()
            .find(|n| n.class == f.classes[0])
            .map(|n| n.kind.clone())
            .unwrap_or_default();
        let mut index = Vec::with_capacity(f.names.len());
        for name in &f.names {
            let i = match g.nodes.iter().position(|n| n.name == *name) {
                Some(i) => i,
                None => {
                    g.nodes.push(crate::graph::GraphNode {
                        name: name.clone(),
                        class: f.classes[0].clone(),
                        kind: kind.clone(),
                        in_violation: true,
                    });
                    g.nodes.len() - 1
                }
            };
            index.push(i);
        }
        let n = index.len();
        for (k, step) in f.steps.iter().enumerate().take(n) {
            let (from, to) = (index[k], index[(k + 1) % n]);
            if g.edges.iter().any(|e| e.from == from && e.to == to) {
                continue;
            }
            g.edges.push(crate::graph::GraphEdge {
                from,
                to,
                sites: step.wants_site.iter().map(|s| file_line(s)).collect(),
                dependencies: 1,
                in_violation: true,
            });
            added.push(g.edges.len() - 1);
        }
    }
    (g, added)
}

/// Renders the page with options.
pub fn render_html_with(report: &Report, graph: &OrderGraph, opts: &HtmlOptions) -> String {
    let root_string = opts
        .repo_root
        .as_ref()
        .map(|p| p.display().to_string().trim_end_matches('/').to_string());
    let root = root_string.as_deref();
    let found = findings(report);
    let graph = drawable(graph, report);
    let (graph, same_class_edges) = with_same_class_instances(&graph, &found);
    let graph = &graph;
    let mut h = String::new();
    let failing = report.has_violations();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>lockcheck report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&short_summary(report))
    );
    let _ = writeln!(h, "<h1>lockcheck report</h1>");
    let _ = writeln!(
        h,
        "<p class=\"summary {}\" id=\"summary\">{}</p>",
        if failing { "fail" } else { "pass" },
        escape(&summary_line(report))
    );
    if !report.warnings.is_empty() {
        let _ = writeln!(h, "<ul class=\"warning\" id=\"warnings\">");
        for w in &report.warnings {
            let _ = writeln!(h, "<li>{}</li>", escape(w));
        }
        let _ = writeln!(h, "</ul>");
    }

    // The graph.
    let _ = writeln!(h, "<h2 id=\"graph\">Lock-order graph</h2>");
    let cycles: Vec<(BTreeSet<usize>, BTreeSet<usize>)> = {
        let index = GraphIndex::new(graph);
        found
            .iter()
            .map(|f| cycle_in_graph(graph, &index, f))
            .collect()
    };
    if graph.nodes.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"note\">No lock was acquired while holding another: the graph is empty.</p>"
        );
    } else {
        let levels_by_class = class_levels(report);
        let known: Vec<Option<u32>> = graph
            .nodes
            .iter()
            .map(|n| levels_by_class.get(n.class.as_str()).copied())
            .collect();
        let levels = fallback_levels(graph, &known);
        let change_pairs = edges_to_change(report);
        let change: HashSet<usize> = graph
            .edges
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                change_pairs.contains(&(
                    graph.nodes[e.from].class.as_str(),
                    graph.nodes[e.to].class.as_str(),
                ))
            })
            .map(|(i, _)| i)
            .chain(same_class_edges.iter().copied())
            .collect();
        let _ = writeln!(
            h,
            "<p class=\"note legend\"><span>{} level, drawn in the levels of the suggested hierarchy (level 0 on top).</span> \
<span>An arrow A &rarr; B: some thread acquired B while holding A.</span> <span>Grey arrows point down: they follow the hierarchy.</span> \
<span><b class=\"fail\">Red arrows point up: the acquisitions to change.</b></span>{} <span>Red boxes: locks of a violation.</span> \
<span>Hover for details; wheel to zoom, drag to pan, double-click to reset.</span></p>",
            escape(&graph.level),
            if same_class_edges.is_empty() {
                ""
            } else {
                " <span><b class=\"fail\">Red arrows within one level: locks of one class taken in both orders; no level can order them, the code must (e.g. by an id).</b></span>"
            }
        );
        if !found.is_empty() {
            let _ = writeln!(h, "<div class=\"vlist\" id=\"vlist\">");
            for (i, (f, (nodes, edges))) in found.iter().zip(&cycles).enumerate() {
                let names: Vec<String> = f.names.iter().map(|n| short_label(n, root)).collect();
                let _ = writeln!(
                    h,
                    "<a class=\"vlink\" href=\"#v-{id}\" data-nodes=\"{}\" data-edges=\"{}\" title=\"{}\">{}. {}</a>",
                    nodes
                        .iter()
                        .map(|n| format!("g-n{n}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    edges
                        .iter()
                        .map(|e| format!("g-e{e}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    escape(&f.title),
                    i + 1,
                    escape(&cycle_label(&names, f.against_declared)),
                    id = escape(&f.id),
                );
            }
            let _ = writeln!(h, "</div>");
        }
        // Past FOLD_ABOVE locks, the components holding a violation first; the rest folded.
        let comp = components(graph);
        let hot: HashSet<usize> = cycles
            .iter()
            .flat_map(|(nodes, _)| nodes.iter().map(|&n| comp[n]))
            .chain(
                graph
                    .nodes
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| n.in_violation)
                    .map(|(i, _)| comp[i]),
            )
            .collect();
        let fold = graph.nodes.len() > FOLD_ABOVE && !hot.is_empty();
        let (main, folded): (Vec<usize>, Vec<usize>) =
            (0..graph.nodes.len()).partition(|&i| !fold || hot.contains(&comp[i]));
        let cycle_edges: Vec<BTreeSet<usize>> = cycles.iter().map(|c| c.1.clone()).collect();
        let _ = writeln!(
            h,
            "<div class=\"graph\">{}</div>",
            draw_graph(
                graph,
                &main,
                &levels,
                &change,
                &cycle_edges,
                root,
                "g",
                "lockgraph"
            )
        );
        if !folded.is_empty() {
            let folded_set: HashSet<usize> = folded.iter().copied().collect();
            let folded_edges = graph
                .edges
                .iter()
                .filter(|e| folded_set.contains(&e.from))
                .count();
            let folded_comps: HashSet<usize> = folded.iter().map(|&i| comp[i]).collect();
            let _ = writeln!(
                h,
                "<p class=\"note\" id=\"folded-note\">{} of {} locks are drawn above: the parts of the graph with a violation. \
The other {} locks ({} edges, {} separate part{}, no violation) are folded below.</p>\n<details id=\"folded\"><summary>Show the other {} locks</summary>\n<div class=\"graph\">{}</div>\n</details>",
                main.len(),
                graph.nodes.len(),
                folded.len(),
                folded_edges,
                folded_comps.len(),
                if folded_comps.len() == 1 { "" } else { "s" },
                folded.len(),
                draw_graph(graph, &folded, &levels, &change, &[], root, "f", "lockgraph")
            );
        }
        if graph.omitted > 0 || graph.omitted_edges > 0 {
            let _ = writeln!(
                h,
                "<p class=\"warning\">This graph leaves out {} locks and {} edges; <code>--format dot</code> has them all.</p>",
                graph.omitted, graph.omitted_edges
            );
        }
    }

    // Findings.
    let _ = writeln!(h, "<h2 id=\"violations\">Violations ({})</h2>", found.len());
    if found.is_empty() {
        let _ = writeln!(h, "<p class=\"pass\">No violation.</p>");
    }
    for (i, f) in found.iter().enumerate() {
        let _ = writeln!(
            h,
            "<section class=\"violation\" id=\"v-{id}\">\n<h3>{n}. {t}<span class=\"tag rule\">{rule}</span><span class=\"tag\">{id}</span></h3>\n<div class=\"timeline\">{svg}</div>\n<p class=\"note\">{caption}</p>\n<pre>{text}</pre>\n</section>",
            id = escape(&f.id),
            n = i + 1,
            t = escape(&f.title),
            rule = escape(&f.rule),
            svg = timeline_svg(f, root),
            caption = if f.against_declared {
                "The thread takes a lock (blue), then, still holding it (the bar), one the \
                 declared hierarchy puts before it (orange)."
            } else {
                "One lane per thread. Blue: a thread takes a lock and holds it (the bar). \
                 Red: it then requests the next lock of the cycle, held by the lane the dashed \
                 arrow points to. Every thread waits for another: none can go on."
            },
            text = escape(&f.text)
        );
    }
    let baselined: Vec<_> = report.violations.iter().filter(|v| v.baselined).collect();
    if !baselined.is_empty() {
        let _ = writeln!(
            h,
            "<h2 id=\"baseline\">In the baseline ({}): reported, not failing</h2>\n<ul>",
            baselined.len()
        );
        for v in baselined {
            let _ = writeln!(
                h,
                "<li><code>{}</code> {}</li>",
                escape(&v.id),
                escape(&title(v))
            );
        }
        let _ = writeln!(h, "</ul>");
    }
    if !report.suppressed.is_empty() {
        let _ = writeln!(
            h,
            "<h2 id=\"suppressed\">Suppressed by lockcheck.toml ({})</h2>\n<table>\n<tr><th>id</th><th>finding</th><th>reason</th></tr>",
            report.suppressed.len()
        );
        for s in &report.suppressed {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(&s.violation.id),
                escape(&title(&s.violation)),
                escape(&s.reason)
            );
        }
        let _ = writeln!(h, "</table>");
    }
    if !report.summary.filtered_by.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"note\">Candidate cycles removed as infeasible: {}. (<code>lockcheck explain &lt;filter&gt;</code> says why each cannot deadlock.)</p>",
            report
                .summary
                .filtered_by
                .iter()
                .map(|f| format!("{} {}", escape(&f.filter), f.count))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    // Hierarchy.
    let hier = &report.hierarchy;
    if !hier.levels.is_empty() {
        let _ = writeln!(
            h,
            "<h2 id=\"hierarchy\">Suggested lock hierarchy</h2>\n<p class=\"note\">Acquire locks in increasing level.</p>\n<table>\n<tr><th>level</th><th>class</th><th>kind</th></tr>"
        );
        for l in &hier.levels {
            let _ = writeln!(
                h,
                "<tr><td class=\"num\">{}</td><td><code>{}</code></td><td>{}</td></tr>",
                l.level,
                escape(&l.class),
                escape(&l.kind)
            );
        }
        let _ = writeln!(h, "</table>");
        if !hier.removed_edges.is_empty() {
            let _ = writeln!(
                h,
                "<p>To make this order hold, change these acquisitions (the red arrows):</p>\n<table>\n<tr><th>acquired</th><th>while holding</th><th>dependencies</th><th>sites</th></tr>"
            );
            for e in &hier.removed_edges {
                let _ = writeln!(
                    h,
                    "<tr{}><td><code>{}</code></td><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td></tr>",
                    if e.in_violation { " class=\"fail\"" } else { "" },
                    escape(&e.to),
                    escape(&e.from),
                    e.dependencies,
                    escape(&e.sites.join(", "))
                );
            }
            let _ = writeln!(h, "</table>");
        }
    }

    // Timeouts.
    if !report.timeouts.is_empty() {
        let _ = writeln!(
            h,
            "<h2 id=\"timeouts\">Timeouts (per class)</h2>\n{}<table>\n<tr><th>class</th><th>acquired</th><th>wait p50</th><th>p99</th><th>max</th><th>hold p50</th><th>p99</th><th>max</th><th>suggested timeout</th><th>reasoning and flags</th></tr>",
            report
                .summary
                .hold_times
                .as_deref()
                .map_or(String::new(), |n| format!("<p>{}</p>\n", escape(n)))
        );
        for t in &report.timeouts {
            let flags: String = t
                .flags
                .iter()
                .map(|f| {
                    format!(
                        "<br><span class=\"warning\">[{}] {}</span>",
                        escape(&f.kind),
                        escape(&f.message)
                    )
                })
                .collect();
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}{}</td></tr>",
                escape(&t.class),
                t.wait.count,
                fmt_ns(t.wait.p50_ns),
                fmt_ns(t.wait.p99_ns),
                fmt_ns(t.wait.max_ns),
                fmt_ns(t.hold.p50_ns),
                fmt_ns(t.hold.p99_ns),
                fmt_ns(t.hold.max_ns),
                fmt_ns(t.suggested_timeout_ns),
                escape(&t.reasoning),
                flags
            );
        }
        let _ = writeln!(h, "</table>");
    }
    let _ = writeln!(
        h,
        "<p class=\"note\">Generated by lockcheck analyze {}.</p>\n<script>{SCRIPT}</script>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    h
}

fn short_summary(r: &Report) -> String {
    let n = r.new_violations().count();
    match n {
        0 => "no violation".into(),
        1 => "1 violation".into(),
        n => format!("{n} violations"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_and_relative() {
        assert_eq!(
            short_label("/repo/src/ledger.rs:14:20", Some("/repo")),
            "src/ledger.rs:14"
        );
        assert_eq!(short_label("accounts", Some("/repo")), "accounts");
        assert_eq!(
            short_label("/repository/a.rs:1:2", Some("/repo")),
            "/repository/a.rs:1"
        );
        let long = "a".repeat(80);
        let s = short_label(&long, None);
        assert_eq!(s.chars().count(), LABEL_CHARS);
        assert!(s.starts_with('…'));
    }

    #[test]
    fn numbers_are_printed_compactly() {
        assert_eq!(fmt(3.0), "3");
        assert_eq!(fmt(3.04), "3");
        assert_eq!(fmt(-2.25), "-2.3");
    }

    #[test]
    fn cycle_labels() {
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(cycle_label(&n(&["a", "b"]), false), "a ⇄ b");
        assert_eq!(cycle_label(&n(&["a", "b", "c"]), false), "a → b → c → a");
        assert_eq!(cycle_label(&n(&["a", "b"]), true), "a → b");
    }
}
