//! The analysis report: a stable, documented JSON schema (`version` 1) and a text renderer.
//!
//! Schema (see `docs/analyze.md` for every field):
//!
//! ```text
//! { "version": 1,
//!   "summary":    { traces, events, bytes, threads, locks, classes, dependencies, violations,
//!                   filtered, filtered_by: [{filter, count}], complete, truncated: [..] },
//!   "violations": [ { id, kind: "lock-order-inversion", level: "instance"|"class", locks: [..],
//!                     edges: [..], class_cycle, combinations } ],
//!   "filtered":   [ { filter, reason, level, locks, edges, combinations } ],
//!   "hierarchy":  { levels: [..], removed_edges: [..], rust },
//!   "timeouts":   [ { class, kind, wait, hold, suggested_timeout_ns, reasoning, flags } ],
//!   "warnings":   [ "..." ] }
//! ```
//!
//! Fields are only ever added within a version; a removal or a change of meaning bumps `version`.

use crate::cycles::{Candidate, GraphLevel};
use crate::hierarchy::{file_line, Hierarchy};
use crate::model::{LockId, Model, SiteId};
use crate::timeouts::{fmt_ns, TimeoutRow};
use lockcheck_core::trace::{Frame, How};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

/// Version of the report schema.
pub const REPORT_VERSION: u32 = 1;

/// The order in which filters are listed.
pub const FILTER_ORDER: [&str; 6] = [
    "gate-lock",
    "fork-join",
    "read-read",
    "try-lock",
    "timed-lock",
    "same-thread",
];

/// The whole report.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// Counts.
    pub summary: Summary,
    /// Feasible lock-order inversions: each is one bug.
    pub violations: Vec<Violation>,
    /// Cycles removed by a filter, with the filter's name.
    pub filtered: Vec<Filtered>,
    /// The suggested lock hierarchy.
    pub hierarchy: Hierarchy,
    /// Timeout suggestions per class with timing data.
    pub timeouts: Vec<TimeoutRow>,
    /// Problems with the input or the search (bounds hit, anomalies).
    pub warnings: Vec<String>,
    /// Findings accepted by a `[[suppress]]` entry of the configuration, with its reason. They do
    /// not count as violations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<Suppressed>,
}

/// A finding accepted by a `[[suppress]]` entry of `lockcheck.toml`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Suppressed {
    /// The `reason` of the entry.
    pub reason: String,
    /// Which entry (1-based, in file order).
    pub entry: usize,
    /// The finding.
    pub violation: Violation,
}

/// Counts over the whole analysis.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Input traces.
    pub traces: u64,
    /// Events read.
    pub events: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Threads.
    pub threads: u64,
    /// Lock instances.
    pub locks: u64,
    /// Lock classes.
    pub classes: u64,
    /// Distinct lock dependencies.
    pub dependencies: u64,
    /// Number of violations.
    pub violations: u64,
    /// Number of filtered candidates.
    pub filtered: u64,
    /// Filtered candidates per filter, in [`FILTER_ORDER`].
    pub filtered_by: Vec<FilterCount>,
    /// False when a search bound was hit (see `warnings`): a violation may be missing.
    pub complete: bool,
    /// False when a listing bound (`--max-cycles`, `--max-filtered-steps`, `--max-listed`) cut
    /// the listing of filtered candidates short (a note in `warnings`): `filtered`,
    /// `filtered_by` and the `filtered` list then count only those listed. The violations do
    /// not depend on it ([`Summary::complete`] says whether they are all found). Written only
    /// when false.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub filtered_complete: bool,
    /// Traces that were cut short (with `--allow-truncated`), with where.
    pub truncated: Vec<String>,
    /// Findings removed by a `[[suppress]]` entry (not counted in `violations`).
    #[serde(default)]
    pub suppressed: u64,
    /// Violations whose id is in the baseline (counted in `violations`, but not failing).
    #[serde(default)]
    pub baselined: u64,
    /// The resolution of the traces' hold times in nanoseconds (the coarsest of them): 0 when
    /// they are precise. The runtime records hold times from a coarse clock by default.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hold_resolution_ns: u64,
    /// The same said for humans ("hold times at 4.0ms resolution"), when not precise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_times: Option<String>,
    /// The opt-in condvar rule was on (`--condvar`): its findings (`condvar-wait-holding-lock`,
    /// `condvar-lost-wakeup`) are among the violations. The key keeps the name it had when the
    /// analyzer had only the lost-wakeup part.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lost_wakeup_rule: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How many candidates one filter removed.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FilterCount {
    /// Filter name.
    pub filter: String,
    /// Candidates.
    pub count: u64,
}

/// A lock (instance level) or class (class level) of a cycle.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct LockRef {
    /// Display name (instance level: the class key, with `#n` when the class has several
    /// instances; class level: the key).
    pub name: String,
    /// Class key.
    pub class: String,
    /// Kind (`mutex`, `rwlock`, `semaphore`, `condvar`, `once`, `unknown`).
    pub kind: String,
}

/// A lock held when an edge was made.
///
/// Its strings are shared: a report lists every lock held at each edge it shows, and a hostile
/// trace's held sets run to thousands of locks (the random 200k trace at 128 threads: 270 to
/// 300 MB of reports when each was a `String` of its own). The names come from one [`Names`]
/// per report, the mode is a constant.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HeldRef {
    /// Lock display name.
    pub lock: Arc<str>,
    /// Mode held (`write`, `read`, ...).
    pub mode: Cow<'static, str>,
    /// Where it was acquired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<Arc<str>>,
}

/// The display names of one model's locks and sites, each made once and shared ([`HeldRef`]).
#[derive(Debug)]
pub struct Names<'m> {
    model: &'m Model,
    locks: std::cell::RefCell<Vec<Option<Arc<str>>>>,
    sites: std::cell::RefCell<Vec<Option<Arc<str>>>>,
}

impl<'m> Names<'m> {
    /// No name made yet.
    pub fn new(model: &'m Model) -> Self {
        Names {
            model,
            locks: Default::default(),
            sites: Default::default(),
        }
    }

    /// The model named.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// [`Model::lock_name`], shared.
    pub fn lock(&self, l: LockId) -> Arc<str> {
        shared(&self.locks, l, || self.model.lock_name(l).into())
    }

    /// [`Model::site_loc`], shared.
    pub fn site(&self, s: SiteId) -> Arc<str> {
        shared(&self.sites, s, || self.model.site_loc(s).into())
    }
}

/// Entry `i` of `cache`, made by `make` the first time.
fn shared(
    cache: &std::cell::RefCell<Vec<Option<Arc<str>>>>,
    i: u32,
    make: impl FnOnce() -> Arc<str>,
) -> Arc<str> {
    let mut cache = cache.borrow_mut();
    let i = i as usize;
    if cache.len() <= i {
        cache.resize(i + 1, None);
    }
    cache[i].get_or_insert_with(make).clone()
}

/// One edge of a cycle: a thread acquired `acquired` while holding `held`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct EdgeReport {
    /// Thread name.
    pub thread: String,
    /// The lock held at the start of the edge (a member of the cycle).
    pub from: String,
    /// The lock acquired.
    pub acquired: String,
    /// Mode requested.
    pub mode: String,
    /// `blocking`, `try` or `timed`.
    pub how: How,
    /// Acquisition site (as the trace gives it, usually `file:line:col`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// All locks held, oldest first.
    pub held: Vec<HeldRef>,
    /// Backtrace of the acquisition, innermost first, when the trace has one.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub frames: Vec<Frame>,
    /// How many acquisitions made this dependency.
    pub count: u64,
    /// The request was never granted: the thread was still waiting when the trace ended, or the
    /// runtime stopped it there with a report.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub waiting_at_end: bool,
    /// The acquisition was a `try_*` failed `TRY_RETRIES` (1000) times in a row (a retry loop,
    /// a spin lock's), checked as the blocking request it amounts to: the runtime's
    /// `EdgeInfo::retried`.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub retried_try: bool,
}

/// A finding: a feasible lock-order inversion, or an acquisition against the declared hierarchy.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Violation {
    /// Stable id: a hash of the class keys and sites involved.
    pub id: String,
    /// `lock-order-inversion`, or `hierarchy-violation` (only with a `[hierarchy]` in the
    /// configuration).
    pub kind: String,
    /// The rule id, as in SARIF and `lockcheck explain`: see [`crate::rules`].
    #[serde(default)]
    pub rule: String,
    /// `instance` or `class` (a hierarchy violation is at class level).
    pub level: String,
    /// The locks (or classes) of the cycle, in cycle order.
    pub locks: Vec<LockRef>,
    /// One edge per lock: `edges[i]` holds `locks[i]` and acquires `locks[i + 1]`.
    pub edges: Vec<EdgeReport>,
    /// For an instance-level violation, the class cycle it also forms (reported once, here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_cycle: Option<Vec<String>>,
    /// Number of feasible dependency combinations over these locks (for a hierarchy violation:
    /// the acquisitions at this site). For a root cause, a lower bound when
    /// [`RootCauseReport::cycles_exhaustive`] is false: the count stopped at the search's bound.
    pub combinations: u64,
    /// For a hierarchy violation: the declared levels of `locks` (held, acquired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_levels: Option<Vec<i64>>,
    /// The id is in the baseline given with `--baseline`: reported, but not failing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub baselined: bool,
    /// For a lock-order inversion: its root cause, the edge(s) to change. `locks` and `edges`
    /// show the shortest valid cycle they close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<RootCauseReport>,
}

/// The root cause of a lock-order inversion: the dependency edge(s) that the smallest change set
/// (the suggested hierarchy) says to change, and the cycles they close.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RootCauseReport {
    /// The edges to change: acquire `to` while holding `from` no more (or the other way round
    /// everywhere else). Two edges when nothing tells them apart (a symmetric 2-cycle).
    pub change: Vec<ChangeEdge>,
    /// Distinct valid lock cycles found through these edges (the shown one included).
    pub cycles: u64,
    /// Whether `cycles` counts every such cycle (else it is a lower bound).
    pub cycles_exhaustive: bool,
    /// Whether the violation's `combinations` counts every feasible combination of dependencies
    /// over its locks (else it is a lower bound: the count stopped with the search, or the
    /// search left out dependencies that differ from one it kept only by their thread).
    #[serde(default = "yes")]
    pub combinations_exhaustive: bool,
    /// Further valid cycles through these edges, shortest first (`--verbose` shows them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<CycleReport>,
}

/// A dependency edge to change.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ChangeEdge {
    /// The lock (or class) held.
    pub from: String,
    /// The lock (or class) acquired while holding `from`.
    pub to: String,
    /// How many acquisitions made the edge.
    pub occurrences: u64,
    /// Acquisition sites of `to` on this edge (as the trace gives them; at most
    /// [`crate::hierarchy::MAX_SITES_PER_REMOVED_EDGE`]).
    pub sites: Vec<String>,
    /// Threads that made the edge (at most [`crate::hierarchy::MAX_SITES_PER_REMOVED_EDGE`]).
    pub threads: Vec<String>,
}

/// One cycle: its locks and a witness chain.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct CycleReport {
    /// The locks of the cycle, in cycle order.
    pub locks: Vec<LockRef>,
    /// One edge per lock, as in [`Violation::edges`].
    pub edges: Vec<EdgeReport>,
}

/// A cycle removed by a filter.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Filtered {
    /// Filter name: `gate-lock`, `fork-join`, `read-read`, `try-lock`, `timed-lock`, `same-thread`.
    pub filter: String,
    /// Why, in words.
    pub reason: String,
    /// `instance` or `class`.
    pub level: String,
    /// The locks of the cycle.
    pub locks: Vec<LockRef>,
    /// A witness chain, as for violations.
    pub edges: Vec<EdgeReport>,
    /// Number of dependency combinations removed by this filter over these locks.
    pub combinations: u64,
}

/// Exit status: no violation, and the search was complete.
pub const EXIT_CLEAN: u8 = 0;
/// Exit status: a violation not in the baseline was found.
pub const EXIT_VIOLATIONS: u8 = 1;
/// Exit status: bad input or usage.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit status: no violation found, but a search limit was hit, so one may be missing.
pub const EXIT_INCOMPLETE: u8 = 3;

/// The exit status of an analysis: [`EXIT_VIOLATIONS`] when a violation not in the baseline was
/// found, else [`EXIT_INCOMPLETE`] when a limit was hit (unless `allow_incomplete`), else
/// [`EXIT_CLEAN`]. The one place where results map to exit codes.
pub fn exit_code(report: &Report, allow_incomplete: bool) -> u8 {
    if report.has_violations() {
        EXIT_VIOLATIONS
    } else if !report.summary.complete && !allow_incomplete {
        EXIT_INCOMPLETE
    } else {
        EXIT_CLEAN
    }
}

impl Violation {
    /// For a lock-order inversion, its root cause in one line: the acquisition(s) to change,
    /// with their sites, and how many cycles they close (for renderers such as the HTML page).
    pub fn root_cause_summary(&self) -> Option<String> {
        let rc = self.root_cause.as_ref()?;
        let edges: Vec<String> = rc
            .change
            .iter()
            .map(|c| {
                format!(
                    "{} acquired while holding {} ({}x at {})",
                    c.to,
                    c.from,
                    c.occurrences,
                    if c.sites.is_empty() {
                        "an unknown site".to_string()
                    } else {
                        c.sites.join(", ")
                    }
                )
            })
            .collect();
        Some(format!(
            "change {}; closes {}{} cycle(s)",
            edges.join(" or "),
            if rc.cycles_exhaustive {
                ""
            } else {
                "at least "
            },
            rc.cycles
        ))
    }
}

impl Report {
    /// Whether any violation not in the baseline was found (exit code 1).
    pub fn has_violations(&self) -> bool {
        self.violations.iter().any(|v| !v.baselined)
    }

    /// The violations not in the baseline.
    pub fn new_violations(&self) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(|v| !v.baselined)
    }
}

fn kind_name(k: lockcheck_core::trace::LockKind) -> String {
    format!("{k:?}").to_lowercase()
}

/// The lock `l` of `model` as a report names it: its display name, class and kind.
pub(crate) fn lock_ref(model: &Model, l: u32) -> LockRef {
    let class = &model.classes[model.locks[l as usize].class as usize];
    LockRef {
        name: model.lock_name(l),
        class: class.key.clone(),
        kind: format!("{:?}", class.kind).to_lowercase(),
    }
}

/// Adds `v` to `out`, or, when a finding with its id is already there (the same code in
/// several processes, or on several instances of one class), adds its combinations and its
/// edges' counts to that one's.
pub(crate) fn merge_by_id(out: &mut Vec<Violation>, v: Violation) {
    match out.iter_mut().find(|o| o.id == v.id) {
        Some(o) => {
            o.combinations += v.combinations;
            for (a, b) in o.edges.iter_mut().zip(&v.edges) {
                a.count += b.count;
            }
        }
        None => out.push(v),
    }
}

/// FNV-1a (64 bits) of `parts`, each followed by a 0xff separator, as 16 hex digits.
pub fn fnv(parts: &[String]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Converts a candidate into its report parts: locks and edges.
pub fn describe_candidate(names: &Names<'_>, c: &Candidate) -> (Vec<LockRef>, Vec<EdgeReport>) {
    let model = names.model();
    let locks = c
        .nodes
        .iter()
        .map(|&n| match c.level {
            GraphLevel::Instance => {
                let l = &model.locks[n as usize];
                let class = &model.classes[l.class as usize];
                LockRef {
                    name: model.lock_name(n),
                    class: class.key.clone(),
                    kind: kind_name(class.kind),
                }
            }
            GraphLevel::Class => {
                let class = &model.classes[n as usize];
                LockRef {
                    name: class.key.clone(),
                    class: class.key.clone(),
                    kind: kind_name(class.kind),
                }
            }
        })
        .collect();
    let edges = c
        .deps
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let rec = &model.deps[d as usize];
            let from_node = c.nodes[i];
            let from = model
                .held(rec.held)
                .find(|&(h, _)| crate::cycles::node_of(model, c.level, h) == from_node)
                .map(|(h, _)| h);
            dependency_edge(names, d, from, 0)
        })
        .collect();
    (locks, edges)
}

/// `serde_json::to_string_pretty(value)`, byte for byte: two-space indentation, `": "` after a
/// key, an empty array or object as `[]` or `{}`. Its formatter writes a line's break and
/// indentation in one piece where serde_json's `PrettyFormatter` writes the indentation one
/// level at a time: each piece is a call into the output vector's `extend_from_slice` and a
/// `memcpy`, and the hostile random trace's JSON report (55 MB, nested 8 to 10 deep) took
/// 0.9G instructions to write. serde_json has no option for this (its formatter's indentation
/// is a loop of writes), so the formatter is written here; the rest is serde_json's.
pub fn to_json_pretty<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(128);
    write_json_pretty(&mut out, value)?;
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

/// [`to_json_pretty`] written to `out` as it is made, the same bytes: a report of tens of
/// megabytes is not held in memory first (the hostile random trace's 55 MB were 13,500 page
/// faults of a vector grown for it, about 30 ms of system time). `out` should be buffered.
pub fn write_json_pretty<W: std::io::Write, T: Serialize + ?Sized>(
    out: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, PrettyJson::default());
    value.serialize(&mut ser)
}

/// The formatter of [`to_json_pretty`]: serde_json's `PrettyFormatter` with an indentation of
/// two spaces, its line breaks and indentation written in one piece.
#[derive(Default)]
struct PrettyJson {
    depth: usize,
    has_value: bool,
}

/// A comma, a line break and the spaces of [`PrettyJson::MAX_DEPTH`] levels.
const COMMA_BREAK_INDENT: &[u8; 2 + 2 * PrettyJson::MAX_DEPTH] = &{
    let mut b = [b' '; 2 + 2 * PrettyJson::MAX_DEPTH];
    b[0] = b',';
    b[1] = b'\n';
    b
};

impl PrettyJson {
    /// The deepest indentation written in one piece; deeper levels are written level by level.
    const MAX_DEPTH: usize = 32;

    /// An optional comma, a line break and the indentation of the current depth.
    fn line<W: ?Sized + std::io::Write>(&self, w: &mut W, comma: bool) -> std::io::Result<()> {
        let from = usize::from(!comma);
        let levels = self.depth.min(Self::MAX_DEPTH);
        w.write_all(&COMMA_BREAK_INDENT[from..2 + 2 * levels])?;
        for _ in levels..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for PrettyJson {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"[")
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.line(w, false)?;
        }
        w.write_all(b"]")
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.line(w, !first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"{")
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.line(w, false)?;
        }
        w.write_all(b"}")
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.line(w, !first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// The report of one dependency (`model.deps[d]`) as an edge from the held lock `from`, shown
/// with its `which`-th recorded site (clamped).
pub fn dependency_edge(
    names: &Names<'_>,
    d: u32,
    from: Option<crate::model::LockId>,
    which: usize,
) -> EdgeReport {
    let model = names.model();
    let rec = &model.deps[d as usize];
    let dep = rec;
    let sites = model
        .sites_of(rec)
        .nth(which.min(model.site_combinations(rec).saturating_sub(1)));
    let held_sites = sites.map(|s| model.held_sites_of(s.held));
    let site = sites.and_then(|s| s.site);
    EdgeReport {
        thread: model.thread_name(dep.thread),
        from: from.map(|h| model.lock_name(h)).unwrap_or_default(),
        acquired: model.lock_name(dep.lock),
        mode: dep.mode.name().to_string(),
        how: dep.how,
        site: site.map(|s| model.site_loc(s).to_string()),
        held: model
            .held(dep.held)
            .enumerate()
            .map(|(j, (h, m))| HeldRef {
                lock: names.lock(h),
                mode: Cow::Borrowed(m.name()),
                site: held_sites
                    .as_ref()
                    .and_then(|s| s.get(j).copied().flatten())
                    .map(|s| names.site(s)),
            })
            .collect(),
        frames: site
            .map(|s| model.sites[s as usize].frames.clone())
            .unwrap_or_default(),
        count: rec.count,
        waiting_at_end: rec.pending,
        retried_try: rec.retried,
    }
}

/// Builds a violation from a candidate without a filter. Its id hashes the class keys and the
/// sites of the edges shown.
pub fn violation(names: &Names<'_>, c: &Candidate) -> Violation {
    let (locks, edges) = describe_candidate(names, c);
    let sites: Vec<String> = edges.iter().filter_map(|e| e.site.clone()).collect();
    let id = inversion_id(&locks, sites);
    Violation {
        id,
        kind: "lock-order-inversion".into(),
        rule: crate::rules::rule_id("lock-order-inversion", c.level.name()).into(),
        level: c.level.name().into(),
        locks,
        edges,
        class_cycle: None,
        combinations: c.combinations,
        declared_levels: None,
        baselined: false,
        root_cause: None,
    }
}

/// The most further example cycles (`RootCauseReport::examples`) listed in one report, over all
/// of its root causes: a root cause lists all of its examples while the report stays within it,
/// the later ones none (a warning says how many). A real program's handful of root causes list
/// up to ten each (`--max-examples`); the dense random traces make tens of thousands of root
/// causes, whose examples were 20 KB of report each, gigabytes in all (`genvar.py smalllocks`
/// with 300 locks: 34,646 root causes).
pub const MAX_EXAMPLES_LISTED: usize = 10_000;

/// Builds the violation of a root cause: its shortest valid cycle (id as in
/// [`violation_on_edges`]), the edges to change and, `with_examples`, the further examples.
pub fn root_cause_violation(
    names: &Names<'_>,
    rc: &crate::cycles::RootCause,
    graph: &crate::graph::LockGraph,
    with_examples: bool,
) -> Violation {
    let model = names.model();
    let mut v = violation_on_edges(names, &rc.representative, graph);
    v.combinations = rc.representative.combinations;
    let change = rc
        .edges
        .iter()
        .map(|&(a, b)| {
            let deps = graph.edge_deps(a, b);
            let mut sites = std::collections::BTreeSet::new();
            let mut threads = std::collections::BTreeSet::new();
            let mut occurrences = 0;
            for &d in deps {
                let rec = &model.deps[d as usize];
                if rec.how == How::Try {
                    continue;
                }
                occurrences += rec.count;
                threads.insert(rec.thread as u64);
                for ds in model.sites_of(rec) {
                    if let Some(s) = ds.site {
                        sites.insert(model.site_loc(s).to_string());
                    }
                }
            }
            let max = crate::hierarchy::MAX_SITES_PER_REMOVED_EDGE;
            ChangeEdge {
                from: crate::cycles::node_name(model, rc.level, a),
                to: crate::cycles::node_name(model, rc.level, b),
                occurrences,
                sites: sites.into_iter().take(max).collect(),
                threads: threads
                    .into_iter()
                    .take(max)
                    .map(|t| model.thread_name(t as u32))
                    .collect(),
            }
        })
        .collect();
    let examples = rc
        .examples
        .iter()
        .filter(|_| with_examples)
        .map(|c| {
            let (locks, edges) = describe_candidate(names, c);
            CycleReport { locks, edges }
        })
        .collect();
    v.root_cause = Some(RootCauseReport {
        change,
        cycles: rc.cycles,
        cycles_exhaustive: rc.cycles_exhaustive,
        combinations_exhaustive: rc.combinations_exhaustive,
        examples,
    });
    v
}

/// Builds a violation from a candidate without a filter, with an id that does not depend on
/// which dependency of an edge the search happened to show: it hashes the class keys and the
/// sites of every dependency on the cycle's edges (from the level's [`crate::graph::LockGraph`]).
/// The order in which traces are read (a directory of `{pid}.json` files sorts differently on
/// every run) then cannot change the id, so baselines and SARIF fingerprints stay stable.
pub fn violation_on_edges(
    names: &Names<'_>,
    c: &Candidate,
    graph: &crate::graph::LockGraph,
) -> Violation {
    let model = names.model();
    let mut v = violation(names, c);
    let n = c.nodes.len();
    let mut sites: Vec<String> = Vec::new();
    for i in 0..n {
        // The set of sites per edge (so that how often a site was seen does not count), then
        // all edges' sets together: with one site per edge this is the id of `violation`.
        let key = (c.nodes[i], c.nodes[(i + 1) % n]);
        let mut on_edge = std::collections::BTreeSet::new();
        for &d in graph.edge_deps(key.0, key.1) {
            for ds in model.sites_of(&model.deps[d as usize]) {
                if let Some(s) = ds.site {
                    on_edge.insert(model.site_loc(s));
                }
            }
        }
        sites.extend(on_edge.into_iter().map(str::to_string));
    }
    if !sites.is_empty() {
        v.id = inversion_id(&v.locks, sites);
    }
    v
}

fn inversion_id(locks: &[LockRef], mut sites: Vec<String>) -> String {
    let mut parts: Vec<String> = locks.iter().map(|l| l.class.clone()).collect();
    parts.sort();
    sites.sort();
    parts.push("|".into());
    parts.extend(sites);
    fnv(&parts)
}

/// Builds a filtered entry from a candidate with a filter.
pub fn filtered(names: &Names<'_>, c: &Candidate) -> Filtered {
    let (locks, edges) = describe_candidate(names, c);
    Filtered {
        filter: c.filter.unwrap_or("").into(),
        reason: c.reason.clone(),
        level: c.level.name().into(),
        locks,
        edges,
        combinations: c.combinations,
    }
}

/// ANSI styles, or nothing.
#[derive(Debug, Clone, Copy)]
struct Style {
    on: bool,
}

impl Style {
    fn wrap(self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn red(self, s: &str) -> String {
        self.wrap("1;31", s)
    }
    fn bold(self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn yellow(self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn dim(self, s: &str) -> String {
        self.wrap("2", s)
    }
}

/// Options of the text renderer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// List filtered candidates and the full hierarchy table.
    pub verbose: bool,
    /// Use ANSI colors.
    pub color: bool,
}

/// How many hierarchy rows are printed without `--verbose`.
const HIERARCHY_ROWS: usize = 40;
/// How many removed edges are printed without `--verbose`.
const REMOVED_ROWS: usize = 20;

fn scenario(out: &mut String, edges: &[EdgeReport], st: Style) {
    let n = edges.len();
    if n > 4 {
        // Too many columns for a terminal: a list says the same.
        for (i, e) in edges.iter().enumerate() {
            let _ = writeln!(
                out,
                "   {}: holds {}, waits for {}",
                e.thread, e.from, e.acquired
            );
            let _ = i;
        }
        return;
    }
    let cells: Vec<(String, String)> = edges
        .iter()
        .map(|e| {
            (
                format!("lock({});", e.from),
                format!("lock({});", e.acquired),
            )
        })
        .collect();
    let width = edges
        .iter()
        .zip(&cells)
        .map(|(e, c)| {
            e.thread
                .chars()
                .count()
                .max(c.0.chars().count())
                .max(c.1.chars().count())
        })
        .max()
        .unwrap_or(8)
        + 4;
    let row = |out: &mut String, col: usize, text: &str| {
        let _ = writeln!(out, "       {}{}", " ".repeat(col * width), text);
    };
    let mut header = String::new();
    let mut rule = String::new();
    for e in edges {
        let _ = write!(header, "{:<width$}", e.thread);
        let _ = write!(rule, "{:<width$}", "----");
    }
    let _ = writeln!(out, "       {}", header.trim_end());
    let _ = writeln!(out, "       {}", rule.trim_end());
    for (i, c) in cells.iter().enumerate() {
        row(out, i, &c.0);
    }
    for i in (0..n).rev() {
        row(out, i, &cells[i].1);
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "      {}", st.red("*** DEADLOCK ***"));
}

fn edge_details(out: &mut String, edges: &[EdgeReport], st: Style) {
    for e in edges {
        let how = match e.how {
            How::Blocking => String::new(),
            How::Try => ", try".into(),
            How::Timed => ", timed".into(),
        };
        let _ = writeln!(
            out,
            "   {} acquires {} ({}{}) at {}{}",
            st.bold(&e.thread),
            e.acquired,
            e.mode,
            how,
            e.site.as_deref().unwrap_or("an unknown site"),
            if e.waiting_at_end {
                " (never granted: still waiting when the trace ended, or stopped by a report)"
            } else {
                ""
            }
        );
        if e.retried_try {
            let _ = writeln!(
                out,
                "     (a try retried {} times in a row: a retry loop, which waits as a blocking acquisition)",
                lockcheck_core::trace::TRY_RETRIES
            );
        }
        let held: Vec<String> = e
            .held
            .iter()
            .map(|h| match &h.site {
                Some(s) => format!("{} ({}, acquired at {s})", h.lock, h.mode),
                None => format!("{} ({})", h.lock, h.mode),
            })
            .collect();
        let _ = writeln!(out, "     while holding {}", held.join(", "));
        for f in e.frames.iter().take(8) {
            let func = f.function.as_deref().unwrap_or("??");
            let loc = match (&f.file, f.line) {
                (Some(file), Some(line)) => format!(" ({file}:{line})"),
                (Some(file), None) => format!(" ({file})"),
                _ => String::new(),
            };
            let _ = writeln!(out, "       {}", st.dim(&format!("at {func}{loc}")));
        }
    }
}

/// A one-line description of a finding (without its id).
pub fn title(v: &Violation) -> String {
    let names: Vec<&str> = v.locks.iter().map(|l| l.name.as_str()).collect();
    if v.kind == "hierarchy-violation" {
        let levels = v.declared_levels.clone().unwrap_or_default();
        format!(
            "hierarchy violation: {} (level {}) acquired while holding {} (level {}) at {}",
            names.get(1).copied().unwrap_or("?"),
            levels.get(1).copied().unwrap_or_default(),
            names.first().copied().unwrap_or("?"),
            levels.first().copied().unwrap_or_default(),
            v.edges
                .first()
                .and_then(|e| e.site.as_deref())
                .unwrap_or("an unknown site")
        )
    } else if v.kind == "self-deadlock" || v.kind == "recursive-read" {
        let what = if v.kind == "self-deadlock" {
            "self-deadlock"
        } else {
            "possible self-deadlock (recursive read lock)"
        };
        format!(
            "{what}: {} acquired again by the thread that holds it, at {}",
            names.first().copied().unwrap_or("?"),
            v.edges
                .first()
                .and_then(|e| e.site.as_deref())
                .unwrap_or("an unknown site")
        )
    } else if v.kind == crate::fork_hang::KIND {
        let edge = v.edges.first();
        format!(
            "deadlock: {} waits for {} ({}) at {}, held by {}: the process was forked while \
             another thread held it",
            edge.map_or("?", |e| e.thread.as_str()),
            names.first().copied().unwrap_or("?"),
            edge.map_or("?", |e| e.mode.as_str()),
            edge.and_then(|e| e.site.as_deref())
                .unwrap_or("an unknown site"),
            crate::fork_hang::GONE
        )
    } else if v.kind == crate::held_across_await::KIND {
        // The held lock first, then the one acquired (absent when it is the same lock).
        let held = names.first().copied().unwrap_or("?");
        let edge = v.edges.first();
        format!(
            "held across await: {held}, held by a suspended task, acquired{} by {} at {}",
            match names.get(1) {
                Some(other) => format!(" ({other})"),
                None => " again".to_string(),
            },
            edge.map_or("?", |e| e.thread.as_str()),
            edge.and_then(|e| e.site.as_deref())
                .unwrap_or("an unknown site")
        )
    } else if v.kind == crate::condvar_wait::KIND {
        crate::condvar_wait::title(v)
    } else if v.kind == crate::lost_wakeup::KIND {
        let edge = v.edges.first();
        format!(
            "possible lost wakeup: {} notifies a condvar at {} without taking {}, the mutex its waiters wait with (waiting at {})",
            edge.map_or("?", |e| e.thread.as_str()),
            edge.and_then(|e| e.site.as_deref())
                .unwrap_or("an unknown site"),
            names.first().copied().unwrap_or("?"),
            edge.and_then(|e| e.held.first())
                .and_then(|h| h.site.as_deref())
                .unwrap_or("an unknown site")
        )
    } else if let Some(t) = join_title(v) {
        t
    } else if let Some(t) = permit_nest_title(v) {
        t
    } else {
        format!(
            "lock-order inversion between {} ({} level)",
            names.join(", "),
            v.level
        )
    }
}

/// The title of a lock-order inversion through a thread's end (a lock of kind `end`, see
/// `docs/trace-format.md`, "Thread ends and joins"): a join deadlock, named by the join (the
/// edge that requests the end: joiner, site, the lock it holds) and the joined thread's
/// acquisition (the edge from the end). The runtime reports the same cycle as a `deadlock` when
/// it happens. `None` for any other finding.
fn join_title(v: &Violation) -> Option<String> {
    if v.kind != "lock-order-inversion" {
        return None;
    }
    let n = v.locks.len();
    let end = (0..n).find(|&i| v.locks[i].kind == "end")?;
    // `edges[i]` holds `locks[i]` and acquires `locks[i + 1]`: the join acquires the end.
    let join = v.edges.get((end + n - 1) % n)?;
    let joined = v.edges.get(end)?;
    let site = |e: &EdgeReport| e.site.clone().unwrap_or_else(|| "an unknown site".into());
    Some(format!(
        "join deadlock: {} joins {} ({}) at {} while holding {}; {} takes {} at {} ({} level)",
        join.thread,
        joined.thread,
        v.locks[end].name,
        site(join),
        join.from,
        joined.thread,
        joined.acquired,
        site(joined),
        v.level
    ))
}

/// The title of a finding through one semaphore only, which every edge holds and requests: a
/// permit nest (`self_deadlock::permit_nest_violations`: as many holders as it takes to hold
/// every permit) or a wait cycle of holders of its permits each waiting for more. Named as the
/// runtime names it, not as a cycle "between" the semaphore and itself. `None` for any other
/// finding.
fn permit_nest_title(v: &Violation) -> Option<String> {
    if !is_permit_nest(v) {
        return None;
    }
    let tasks = v
        .edges
        .iter()
        .filter(|e| e.thread.starts_with("task #"))
        .count();
    let who = match tasks {
        0 => "threads",
        n if n == v.edges.len() => "tasks",
        _ => "tasks and threads",
    };
    Some(format!(
        "lock-order inversion (permits): {} {who} each request permits of {} while holding some of its permits: each can wait for permits only the others give back ({} level)",
        v.edges.len(),
        v.locks[0].name,
        v.level
    ))
}

/// Whether `v` is a permit nest: an inversion whose every edge holds and requests its one lock,
/// a semaphore, in permit mode.
pub(crate) fn is_permit_nest(v: &Violation) -> bool {
    v.kind == "lock-order-inversion"
        && !v.locks.is_empty()
        && v.locks
            .iter()
            .all(|l| l.kind == "semaphore" && l.name == v.locks[0].name)
        && v.edges.iter().all(|e| {
            e.mode == "permit" && e.from == v.locks[0].name && e.acquired == v.locks[0].name
        })
}

/// One finding as text: its title line, the scenario (inversions) and the edges.
pub fn render_violation(v: &Violation, index: usize, total: usize, color: bool) -> String {
    let mut out = String::new();
    violation_text(&mut out, v, index, total, Style { on: color }, false);
    out
}

/// The root-cause lines of a violation: the edge(s) to change and how many cycles they close.
fn root_cause_text(out: &mut String, rc: &RootCauseReport, st: Style) {
    for (i, c) in rc.change.iter().enumerate() {
        let lead = if i == 0 { "root cause:" } else { "        or:" };
        let _ = writeln!(
            out,
            "   {} {} acquired while holding {} ({} time{}, by {}, at {})",
            st.bold(lead),
            c.to,
            c.from,
            c.occurrences,
            if c.occurrences == 1 { "" } else { "s" },
            if c.threads.is_empty() {
                "?".to_string()
            } else {
                c.threads.join(", ")
            },
            if c.sites.is_empty() {
                "an unknown site".to_string()
            } else {
                c.sites.join(", ")
            }
        );
    }
    let _ = writeln!(
        out,
        "   change {}: it closes {}{} cycle{}; the shortest is shown",
        if rc.change.len() == 1 {
            "this acquisition"
        } else {
            "one of these acquisitions"
        },
        if rc.cycles_exhaustive {
            ""
        } else {
            "at least "
        },
        rc.cycles,
        if rc.cycles == 1 { "" } else { "s" }
    );
}

fn violation_text(
    out: &mut String,
    v: &Violation,
    index: usize,
    total: usize,
    st: Style,
    verbose: bool,
) {
    let _ = writeln!(
        out,
        "{} {} of {}: {} [{}]",
        st.red("VIOLATION"),
        index + 1,
        total,
        title(v),
        v.id
    );
    if let Some(rc) = &v.root_cause {
        root_cause_text(out, rc, st);
    }
    if let Some(cc) = &v.class_cycle {
        let _ = writeln!(out, "   also a cycle of lock classes: {}", cc.join(" -> "));
    }
    if v.kind == "hierarchy-violation" {
        let _ = writeln!(
            out,
            "   lockcheck.toml's [hierarchy] says: acquire locks in increasing level\n"
        );
    } else if v.kind == crate::condvar_wait::KIND {
        crate::condvar_wait::text(out, v);
        return;
    } else if v.kind == crate::lost_wakeup::KIND {
        // No acquisition: the notify and the wait it may miss.
        for e in &v.edges {
            let _ = writeln!(
                out,
                "\n   {} notifies at {} without taking {};\n   {}, at {}.\n   The waiter checks its condition under that mutex, then waits: a notify between the two is lost,\n   and the wait may never end. Take the mutex between the change and the notify.",
                e.thread,
                e.site.as_deref().unwrap_or("an unknown site"),
                e.from,
                e.held.first().map_or("a waiter waits with it", |h| &*h.lock),
                e.held
                    .first()
                    .and_then(|h| h.site.as_deref())
                    .unwrap_or("an unknown site"),
            );
        }
        let _ = writeln!(out);
        return;
    } else {
        let _ = writeln!(out, "\n   Possible unsafe locking scenario:\n");
        scenario(out, &v.edges, st);
        let _ = writeln!(out);
    }
    edge_details(out, &v.edges, st);
    if v.combinations > 1 && v.kind != "hierarchy-violation" {
        let least = v
            .root_cause
            .as_ref()
            .is_some_and(|rc| !rc.combinations_exhaustive);
        let _ = writeln!(
            out,
            "   ({}{} feasible combinations of dependencies over these locks; one shown)",
            if least { "at least " } else { "" },
            v.combinations
        );
    }
    if let Some(rc) = v.root_cause.as_ref().filter(|_| verbose) {
        for (i, ex) in rc.examples.iter().enumerate() {
            let names: Vec<&str> = ex.locks.iter().map(|l| l.name.as_str()).collect();
            let _ = writeln!(
                out,
                "\n   Further cycle {} through the same root cause: {}\n",
                i + 1,
                names.join(" -> ")
            );
            scenario(out, &ex.edges, st);
        }
    }
    let _ = writeln!(out);
}

/// The findings that fail the run (not in the baseline), as text: what `--quiet` prints.
pub fn render_violations(r: &Report, color: bool) -> String {
    render_violations_styled(r, Style { on: color }, false)
}

/// [`render_violations`] written to `w` as it is made, the same bytes.
pub fn write_violations<W: std::io::Write + ?Sized>(
    w: &mut W,
    r: &Report,
    color: bool,
) -> std::io::Result<()> {
    let mut out = String::new();
    write_violations_styled(w, &mut out, r, Style { on: color }, false)?;
    w.write_all(out.as_bytes())
}

fn render_violations_styled(r: &Report, st: Style, verbose: bool) -> String {
    let mut w = Vec::new();
    let mut out = String::new();
    write_violations_styled(&mut w, &mut out, r, st, verbose).expect("a vector takes anything");
    w.extend_from_slice(out.as_bytes());
    String::from_utf8(w).expect("the text is UTF-8")
}

/// The violations as text into `out`, whose text is written to `w` (and `out` emptied) at
/// each violation once it holds [`TEXT_CHUNK`] bytes: the report of tens of thousands of
/// violations is tens of megabytes of text, not held whole. `out` keeps what is not written.
fn write_violations_styled<W: std::io::Write + ?Sized>(
    w: &mut W,
    out: &mut String,
    r: &Report,
    st: Style,
    verbose: bool,
) -> std::io::Result<()> {
    let total = r.new_violations().count();
    for (i, v) in r.new_violations().enumerate() {
        violation_text(out, v, i, total, st, verbose);
        if out.len() >= TEXT_CHUNK {
            w.write_all(out.as_bytes())?;
            out.clear();
        }
    }
    Ok(())
}

/// How much text [`write_text`] makes before writing it.
const TEXT_CHUNK: usize = 1 << 16;

/// The one-line summary, e.g. `lockcheck: 1 violation (2 candidates filtered: gate-lock 1,
/// fork-join 1) in 1 trace, 56 events, 6 locks`.
pub fn summary_line(r: &Report) -> String {
    let s = &r.summary;
    let plural = |n: u64, one: &str, many: &str| {
        if n == 1 {
            format!("{n} {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let new = s.violations.saturating_sub(s.baselined);
    let mut line = format!("lockcheck: {}", plural(new, "violation", "violations"));
    if s.baselined > 0 {
        let _ = write!(line, " (+{} in the baseline)", s.baselined);
    }
    if s.suppressed > 0 {
        let _ = write!(line, ", {} suppressed", s.suppressed);
    }
    if s.filtered > 0 {
        let by: Vec<String> = s
            .filtered_by
            .iter()
            .map(|f| format!("{} {}", f.filter, f.count))
            .collect();
        let _ = write!(
            line,
            " ({} filtered: {})",
            plural(s.filtered, "candidate", "candidates"),
            by.join(", ")
        );
    }
    let _ = write!(
        line,
        " in {}, {}, {}",
        plural(s.traces, "trace", "traces"),
        plural(s.events, "event", "events"),
        plural(s.locks, "lock", "locks")
    );
    if !s.complete {
        line.push_str(" (search incomplete)");
    }
    if !s.filtered_complete {
        // Not "incomplete": only the listing of filtered candidates is cut, not the verdicts.
        line.push_str(" (filtered candidates: listing cut short)");
    }
    if s.lost_wakeup_rule {
        line.push_str(" (condvar rule on)");
    }
    line
}

/// Renders the report as text: the violations as lockdep-style scenarios, then (with `verbose`)
/// the filtered candidates, the hierarchy, the timeouts, the warnings and the summary line.
pub fn render_text(r: &Report, opts: TextOptions) -> String {
    let mut out = Vec::new();
    write_text(&mut out, r, opts).expect("a vector takes anything");
    String::from_utf8(out).expect("the text is UTF-8")
}

/// [`render_text`] written to `w` as it is made, the same bytes (the violations in pieces of
/// about 64 KiB; `w` should be buffered only if it is not already).
pub fn write_text<W: std::io::Write + ?Sized>(
    w: &mut W,
    r: &Report,
    opts: TextOptions,
) -> std::io::Result<()> {
    let st = Style { on: opts.color };
    let mut out = String::new();
    write_violations_styled(w, &mut out, r, st, opts.verbose)?;
    let baselined: Vec<&Violation> = r.violations.iter().filter(|v| v.baselined).collect();
    if !baselined.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            st.bold("In the baseline (reported, not failing):")
        );
        for v in baselined {
            let _ = writeln!(out, "   [{}] {}", v.id, title(v));
        }
        let _ = writeln!(out);
    }
    if opts.verbose && !r.suppressed.is_empty() {
        let _ = writeln!(out, "{}", st.bold("Suppressed by lockcheck.toml:"));
        for s in &r.suppressed {
            let _ = writeln!(
                out,
                "   [{}] {}
     suppressed (entry {}): {}",
                s.violation.id,
                title(&s.violation),
                s.entry,
                s.reason
            );
        }
        let _ = writeln!(out);
    }
    if opts.verbose && !r.filtered.is_empty() {
        let _ = writeln!(out, "{}", st.bold("Filtered candidates (not deadlocks):"));
        for f in &r.filtered {
            let names: Vec<&str> = f.locks.iter().map(|l| l.name.as_str()).collect();
            let _ = writeln!(
                out,
                "  [{}] {} ({} level, {} combination{}): {}",
                st.yellow(&f.filter),
                names.join(" -> "),
                f.level,
                f.combinations,
                if f.combinations == 1 { "" } else { "s" },
                f.reason
            );
            edge_details(&mut out, &f.edges, st);
        }
        let _ = writeln!(out);
    }
    render_hierarchy(&mut out, &r.hierarchy, opts, st);
    render_timeouts(&mut out, &r.timeouts, r.summary.hold_times.as_deref(), st);
    if !r.warnings.is_empty() {
        for w in &r.warnings {
            let _ = writeln!(out, "{} {w}", st.yellow("warning:"));
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "{}", summary_line(r));
    w.write_all(out.as_bytes())
}

fn render_hierarchy(out: &mut String, h: &Hierarchy, opts: TextOptions, st: Style) {
    if h.levels.is_empty() {
        return;
    }
    let depth = h.levels.iter().map(|l| l.level).max().unwrap_or(0) + 1;
    let _ = writeln!(
        out,
        "{} {} classes on {} level{} (acquire in increasing level)",
        st.bold("Suggested lock hierarchy:"),
        h.levels.len(),
        depth,
        if depth == 1 { "" } else { "s" }
    );
    let shown = if opts.verbose {
        h.levels.len()
    } else {
        h.levels.len().min(HIERARCHY_ROWS)
    };
    let w = h
        .levels
        .iter()
        .take(shown)
        .map(|l| l.class.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(out, "   {:>5}  {:<w$}  kind", "level", "class");
    for l in h.levels.iter().take(shown) {
        let _ = writeln!(out, "   {:>5}  {:<w$}  {}", l.level, l.class, l.kind);
    }
    if shown < h.levels.len() {
        let _ = writeln!(
            out,
            "   ... and {} more (--verbose, --format json or --hierarchy-rust for all)",
            h.levels.len() - shown
        );
    }
    if !h.removed_edges.is_empty() {
        let _ = writeln!(
            out,
            "   To make this order hold, change these acquisitions:"
        );
        let shown = if opts.verbose {
            h.removed_edges.len()
        } else {
            h.removed_edges.len().min(REMOVED_ROWS)
        };
        for e in h.removed_edges.iter().take(shown) {
            let sites = if e.sites.is_empty() {
                "unknown site".to_string()
            } else {
                e.sites.join(", ")
            };
            let _ = writeln!(
                out,
                "   - {} acquired while holding {} ({} dependenc{}{}): {}",
                e.to,
                e.from,
                e.dependencies,
                if e.dependencies == 1 { "y" } else { "ies" },
                if e.in_violation {
                    ", part of a violation"
                } else {
                    ""
                },
                sites
            );
        }
        let more = (h.removed_edges.len() - shown) as u64 + h.removed_edges_unlisted;
        if more > 0 {
            let _ = writeln!(out, "   ... and {more} more");
        }
    }
    let _ = writeln!(out);
}

fn render_timeouts(out: &mut String, rows: &[TimeoutRow], hold_times: Option<&str>, st: Style) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", st.bold("Timeouts (per class):"));
    if let Some(h) = hold_times {
        let _ = writeln!(out, "   {}", st.dim(h));
    }
    let w = rows
        .iter()
        .map(|r| r.class.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "   {:<w$}  {:>8} {:>9} {:>9} {:>9}  {:>9} {:>9} {:>9}  {:>9}",
        "class", "acquired", "wait p50", "p99", "max", "hold p50", "p99", "max", "timeout"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "   {:<w$}  {:>8} {:>9} {:>9} {:>9}  {:>9} {:>9} {:>9}  {:>9}",
            r.class,
            r.wait.count,
            fmt_ns(r.wait.p50_ns),
            fmt_ns(r.wait.p99_ns),
            fmt_ns(r.wait.max_ns),
            fmt_ns(r.hold.p50_ns),
            fmt_ns(r.hold.p99_ns),
            fmt_ns(r.hold.max_ns),
            fmt_ns(r.suggested_timeout_ns)
        );
    }
    for r in rows {
        let _ = writeln!(out, "   {}: {}", r.class, st.dim(&r.reasoning));
        for f in &r.flags {
            let _ = writeln!(
                out,
                "   {} {}: {}",
                st.yellow(&format!("[{}]", f.kind)),
                r.class,
                f.message
            );
        }
    }
    let _ = writeln!(out);
}

/// `file:line` of an edge's site (for "change these" lists).
pub fn edge_file_line(e: &EdgeReport) -> Option<String> {
    e.site.as_deref().map(file_line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    /// The text report written in pieces as it is made ([`write_text`], [`write_violations`])
    /// is the text rendered whole: each violation's text in order, then the rest; pieces of at
    /// least [`TEXT_CHUNK`] bytes that end where a violation does.
    #[test]
    fn the_text_written_in_pieces_is_the_text_rendered_whole() {
        let mut b = crate::model::ModelBuilder::new();
        b.begin_trace("t");
        for e in crate::model::tests::random_events(3, 8, 6, 1500) {
            b.event(&e);
        }
        let mut r = crate::analyze_model(&b.finish(), &crate::Options::default());
        assert!(!r.violations.is_empty());
        let one = r.violations.clone();
        while r.violations.len() < 2000 {
            r.violations.extend(one.iter().cloned());
        }
        r.violations[1].baselined = true;
        #[derive(Default)]
        struct Pieces(Vec<Vec<u8>>);
        impl std::io::Write for Pieces {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.push(buf.to_vec());
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut plain = String::new();
        for verbose in [false, true] {
            let opts = TextOptions {
                verbose,
                color: false,
            };
            let st = Style { on: false };
            let mut whole = String::new();
            let total = r.new_violations().count();
            let mut ends = vec![0];
            for (i, v) in r.new_violations().enumerate() {
                violation_text(&mut whole, v, i, total, st, verbose);
                ends.push(whole.len());
            }
            let text = render_text(&r, opts);
            assert!(text.starts_with(&whole) && text.len() > whole.len());
            if !verbose {
                plain = whole;
            }
            let mut w = Pieces::default();
            write_text(&mut w, &r, opts).unwrap();
            assert!(w.0.len() > 2, "{}", w.0.len());
            let mut at = 0;
            for p in &w.0[..w.0.len() - 1] {
                assert!(p.len() >= TEXT_CHUNK, "{}", p.len());
                at += p.len();
                assert!(
                    ends.contains(&at),
                    "a piece ends inside a violation at {at}"
                );
            }
            assert!(
                w.0.concat() == text.as_bytes(),
                "the pieces differ from the whole"
            );
        }
        let mut w = Pieces::default();
        write_violations(&mut w, &r, false).unwrap();
        assert!(w.0.len() > 2);
        let whole = render_violations(&r, false);
        assert!(whole.len() > 4 * TEXT_CHUNK && whole == plain);
        assert!(
            w.0.concat() == whole.as_bytes(),
            "the pieces differ from the whole"
        );
    }

    /// [`to_json_pretty`] writes what serde_json's pretty printer writes: nested objects and
    /// arrays, empty ones, nesting deeper than its indentation in one piece, escaped strings,
    /// numbers, booleans and nulls.
    #[test]
    fn the_pretty_json_is_serde_jsons() {
        let mut deep = json!(1);
        for i in 0..(2 * PrettyJson::MAX_DEPTH + 5) {
            deep = if i % 2 == 0 {
                json!([deep, {}, [], 7])
            } else {
                json!({"k": deep, "e": [], "o": {}, "s": "a\"\n\u{1}\u{e9}\\"})
            };
        }
        let values = [
            json!(null),
            json!([]),
            json!({}),
            json!([[]]),
            json!([{}, {"a": []}]),
            json!({"a": {}, "b": [[], [1]]}),
            json!({"x": [1, 2.5, -3, true, false, null, "s", u64::MAX]}),
            deep,
        ];
        for v in &values {
            assert_eq!(
                to_json_pretty(v).unwrap(),
                serde_json::to_string_pretty(v).unwrap()
            );
        }
    }

    /// A report's names are the model's, and each lock's or site's is one string shared by
    /// every held lock that shows it.
    #[test]
    fn held_locks_share_the_models_names() {
        use crate::model::tests::random_events;
        let mut b = crate::model::ModelBuilder::new();
        b.begin_trace("t");
        for e in random_events(7, 6, 9, 3000) {
            b.event(&e);
        }
        let model = b.finish();
        let names = Names::new(&model);
        let (mut shown, mut shared) = (0, 0);
        let mut first: HashMap<String, Arc<str>> = HashMap::new();
        for d in 0..model.deps.len() as u32 {
            let edge = dependency_edge(&names, d, None, 0);
            let rec = &model.deps[d as usize];
            let held: Vec<_> = model.held(rec.held).collect();
            assert_eq!(edge.held.len(), held.len());
            for (h, &(l, m)) in edge.held.iter().zip(&held) {
                assert_eq!(*h.lock, model.lock_name(l));
                assert_eq!(h.mode, m.name());
                shown += 1;
                let same = first.entry(h.lock.to_string()).or_insert(h.lock.clone());
                assert!(Arc::ptr_eq(same, &h.lock), "{} made twice", h.lock);
                if let Some(site) = &h.site {
                    let again = first.entry(format!("site {site}")).or_insert(site.clone());
                    assert!(Arc::ptr_eq(again, site), "{site} made twice");
                    shared += 1;
                }
            }
        }
        assert!(shown > 100 && shared > 100, "{shown} {shared}");
        for l in 0..model.locks.len() as u32 {
            assert_eq!(*names.lock(l), model.lock_name(l));
        }
        for s in 0..model.sites.len() as u32 {
            assert_eq!(*names.site(s), *model.site_loc(s));
        }
    }
}
