//! lockcheck's offline analyzer: reads traces (lockcheck JSON Lines, RAPID STD, RAPID binary),
//! merges them, finds lock-order violations, and suggests a hierarchy and timeouts.
//!
//! The pipeline:
//!
//! ```text
//! read (TraceReader per file) -> model (ModelBuilder: per-thread held sets, vector clocks over
//! fork/join, distinct dependencies) -> cycles (per level: the smallest weighted change set, then
//! per changed edge the shortest cycle passing the iGoodLock filters = one root cause; a bounded
//! enumeration lists the filtered cycles) -> hierarchy (weighted feedback arc set: exact, or
//! Eades–Lin–Smyth plus local search) + timeouts -> report (JSON, text, SARIF, DOT, HTML)
//! ```
//!
//! - [`read`]: the trace readers.
//! - [`model`]: replays events into a [`model::Model`].
//! - [`cycles`]: finds root causes (violations) and filtered candidates.
//! - [`hierarchy`]: the suggested lock levels and the acquisitions to change.
//! - [`timeouts`]: wait/hold distributions and suggested timeouts.
//! - [`self_deadlock`]: requests of a lock the thread already holds.
//! - [`report`]: the report's JSON schema and its text renderer.
//! - [`synth`]: synthetic traces for benchmarks.
//! - [`config`]: `lockcheck.toml` (suppressions, declared hierarchy); [`baseline`]: accepted
//!   findings by id; [`rules`]: what each finding, filter and flag means.
//! - [`sarif`], [`graph`] (DOT and SVG of the lock-order graph), [`html`]: other output formats.
//!
//! ```
//! use lockcheck_analyze::{analyze_model, model::ModelBuilder, Options};
//! use lockcheck_core::trace::Event;
//! let trace = r#"{"e":"lock","l":1,"c":1}
//! {"e":"lock","l":2,"c":1}
//! {"e":"acquire","t":1,"l":1,"m":"w"}
//! {"e":"acquire","t":1,"l":2,"m":"w"}
//! {"e":"release","t":1,"l":2}
//! {"e":"release","t":1,"l":1}
//! {"e":"acquire","t":2,"l":2,"m":"w"}
//! {"e":"acquire","t":2,"l":1,"m":"w"}"#;
//! let mut b = ModelBuilder::new();
//! b.begin_trace("inline");
//! for line in trace.lines() {
//!     b.event(&serde_json::from_str::<Event>(line).unwrap());
//! }
//! let report = analyze_model(&b.finish(), &Options::default());
//! assert_eq!(report.violations.len(), 1);
//! ```
#![warn(missing_docs, rust_2018_idioms)]

pub mod baseline;
pub mod config;
pub mod cycles;
pub mod graph;
pub mod hierarchy;
pub mod hist;
pub mod html;
pub mod model;
pub mod read;
pub mod report;
pub mod rules;
pub mod sarif;
pub mod self_deadlock;
pub mod synth;
pub mod timeouts;

use cycles::{Candidate, GraphLevel, SearchLimits};
use graph::LockGraph;
use model::{ClassId, Model, ModelBuilder};
use read::{expand_inputs, InputFormat, Position, ReadError, TraceReader};
use report::{FilterCount, Report, Summary, FILTER_ORDER, REPORT_VERSION};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Which levels of the lock graph to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Levels {
    /// Lock instances only.
    Instance,
    /// Lock classes only.
    Class,
    /// Both; a class cycle that is the same bug as an instance cycle is reported once.
    #[default]
    Both,
}

/// Options of an analysis.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Levels to search.
    pub levels: Levels,
    /// Search bounds.
    pub limits: SearchLimits,
    /// Force an input format (else by extension).
    pub input_format: Option<InputFormat>,
    /// Accept traces whose last event is cut (a process killed mid-write).
    pub allow_truncated: bool,
    /// Suppressions and the declared hierarchy (`lockcheck.toml`).
    pub config: config::Config,
    /// Accepted findings: violations with these ids are reported but do not fail.
    pub baseline: Option<baseline::Baseline>,
    /// Leave [`Analysis::graph`] empty: only the DOT and HTML outputs draw it, and on a trace with
    /// a million distinct edges it costs more time and memory than the analysis.
    pub skip_graph: bool,
}

/// What [`analyze_with`] is doing, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// About to read a trace file: its index, the number of files, bytes of the files before it,
    /// bytes of all files.
    Reading {
        /// The file.
        file: &'a std::path::Path,
        /// Its index.
        index: usize,
        /// How many files.
        files: usize,
        /// Bytes of the files already read.
        bytes_done: u64,
        /// Bytes of all files.
        bytes_total: u64,
    },
    /// Every trace is read; the cycle search and the rest run now.
    Analyzing,
}

/// A report and the lock-order graph it was found on.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The report.
    pub report: Report,
    /// The lock-order graph (for `--format dot` and `html`; empty under [`Options::skip_graph`]).
    pub graph: graph::OrderGraph,
}

/// Formats a position for messages: `line 3, column 7` or `byte 120`.
pub fn fmt_position(p: &Position) -> String {
    match p {
        Position::LineCol { line, col } => format!("line {line}, column {col}"),
        Position::Byte(b) => format!("byte {b}"),
    }
}

/// Reads and analyzes the traces named by `inputs` (files, or directories of trace files).
/// Fails on the first unreadable or malformed input.
pub fn analyze(inputs: &[PathBuf], opts: &Options) -> Result<Report, ReadError> {
    analyze_with(inputs, opts, &mut |_| {}).map(|a| a.report)
}

/// [`analyze`], telling `progress` what it does, and returning the lock-order graph too.
pub fn analyze_with(
    inputs: &[PathBuf],
    opts: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Analysis, ReadError> {
    let files = expand_inputs(inputs)?;
    if files.is_empty() {
        return Err(ReadError {
            file: inputs
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            pos: None,
            message: "no trace files found".into(),
        });
    }
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .collect();
    let bytes_total = sizes.iter().sum();
    let mut bytes_done = 0;
    phase("start");
    let mut b = ModelBuilder::new();
    for (index, f) in files.iter().enumerate() {
        progress(Progress::Reading {
            file: f,
            index,
            files: files.len(),
            bytes_done,
            bytes_total,
        });
        let mut reader =
            TraceReader::open(f, opts.input_format)?.allow_truncated(opts.allow_truncated);
        b.begin_trace(reader.name());
        for ev in &mut reader {
            b.event(&ev?);
        }
        if let Some(p) = reader.truncated() {
            b.set_truncated(fmt_position(&p));
        }
        if let Ok(meta) = std::fs::metadata(f) {
            b.add_bytes(meta.len());
        }
        b.end_trace();
        bytes_done += sizes[index];
    }
    progress(Progress::Analyzing);
    let model = b.finish();
    phase("read");
    let report = analyze_model(&model, opts);
    let level = match opts.levels {
        Levels::Instance => GraphLevel::Instance,
        _ => GraphLevel::Class,
    };
    let graph = if opts.skip_graph {
        graph::OrderGraph::default()
    } else {
        graph::OrderGraph::build(&model, level, &report)
    };
    phase("graph");
    report_rss();
    Ok(Analysis { report, graph })
}

/// The peak resident set size of this process (`VmHWM` of `/proc/self/status`, e.g.
/// `"544396 kB"`), where the platform has it.
pub fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.trim_start_matches("VmHWM:").trim().to_string())
}

/// With `LOCKCHECK_PHASES` set, prints the time since the start of the process and the peak
/// resident set size at the end of each phase of the analysis to stderr (for profiling).
pub fn phase(name: &str) {
    use std::sync::OnceLock;
    static ON: OnceLock<Option<std::time::Instant>> = OnceLock::new();
    let Some(start) =
        ON.get_or_init(|| std::env::var_os("LOCKCHECK_PHASES").map(|_| std::time::Instant::now()))
    else {
        return;
    };
    eprintln!(
        "lockcheck: phase {name}: {:.3} s, peak RSS {}",
        start.elapsed().as_secs_f64(),
        peak_rss().unwrap_or_default()
    );
}

/// With `LOCKCHECK_REPORT_RSS` set, prints the peak resident set size (VmHWM) to stderr.
fn report_rss() {
    if std::env::var_os("LOCKCHECK_REPORT_RSS").is_none() {
        return;
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:")) {
            eprintln!(
                "lockcheck: peak RSS {}",
                line.trim_start_matches("VmHWM:").trim()
            );
        }
    }
}

fn class_set(model: &Model, c: &Candidate) -> Vec<ClassId> {
    let mut v: Vec<ClassId> = match c.level {
        GraphLevel::Instance => c
            .nodes
            .iter()
            .map(|&l| model.locks[l as usize].class)
            .collect(),
        GraphLevel::Class => c.nodes.clone(),
    };
    v.sort_unstable();
    v.dedup();
    v
}

/// Analyzes a model already built (the part of [`analyze`] after reading).
pub fn analyze_model(model: &Model, opts: &Options) -> Report {
    let mut warnings = model.anomalies.warnings();
    warnings.extend(model.approximations.warnings());
    // Violations: one per root cause, decided per edge of the smallest change set (every cycle
    // crosses one). The enumeration below only lists the filtered candidates, so its bounds
    // limit that listing, never a verdict.
    let listing = SearchLimits {
        max_steps: opts.limits.max_steps.min(opts.limits.max_filtered_steps),
        ..opts.limits
    };
    // Each level's graph is built once and shared by the listing, the change set, the
    // root-cause search, the reports and (at class level) the hierarchy.
    let class_graph = LockGraph::build(model, GraphLevel::Class);
    let class_weights = class_graph.weights(model);
    let class_change = hierarchy::class_change_set(model, &class_graph, &class_weights);
    phase("class graph and change set");
    let run = |graph: &LockGraph, weights: &[u64], change: &cycles::ChangeSet| {
        let r = cycles::find_cycles_on(model, graph, &listing);
        phase("listing");
        let rc = cycles::find_root_causes_on(model, graph, weights, change, &opts.limits);
        phase("root causes");
        let mut notes = r.notes;
        notes.extend(r.warnings.into_iter().map(|w| {
            w.replace(
                "; results may be incomplete (raise --max-cycles)",
                " (only the listing of filtered candidates is affected; raise --max-cycles or --max-filtered-steps)",
            )
        }));
        notes.extend(rc.notes);
        (r.candidates, rc.root_causes, rc.warnings, notes)
    };
    let inst_graph = match opts.levels {
        Levels::Class => LockGraph::default(),
        _ => LockGraph::build(model, GraphLevel::Instance),
    };
    let (inst, inst_rc, inst_w, inst_n) = match opts.levels {
        Levels::Class => Default::default(),
        _ => {
            let weights = inst_graph.weights(model);
            let ranks = cycles::canonical_ranks(model, GraphLevel::Instance);
            let change = cycles::change_set_on(&inst_graph, &weights, &|n| {
                ranks.get(n as usize).copied().unwrap_or(u64::MAX)
            });
            phase("instance graph and change set");
            run(&inst_graph, &weights, &change)
        }
    };
    // When no class has two instances, the class graph is the instance graph renamed: its
    // findings would all be instance findings again, so only their class cycle is kept.
    let one_instance_per_class = model.classes.iter().all(|c| c.instances <= 1);
    let (class, class_rc, class_w, class_n) = match opts.levels {
        Levels::Instance => Default::default(),
        Levels::Both if one_instance_per_class => Default::default(),
        _ => run(&class_graph, &class_weights, &class_change),
    };
    let complete = inst_w.is_empty() && class_w.is_empty() && model.anomalies.held_overflow == 0;
    warnings.extend(inst_w);
    warnings.extend(class_w);
    warnings.extend(inst_n);
    warnings.extend(class_n);

    // One bug, one finding: a class root cause whose edge is the class edge of an instance root
    // cause, or whose cycle is over the classes of an instance violation, is that violation
    // (mentioned there); a filtered class cycle over the classes of any instance candidate says
    // nothing new.
    let cls = |l: u32| model.locks[l as usize].class;
    let mut violations: Vec<report::Violation> = inst_rc
        .iter()
        .map(|rc| {
            let mut v = report::root_cause_violation(model, rc, &inst_graph);
            if opts.levels == Levels::Both && one_instance_per_class {
                v.class_cycle = Some(
                    rc.representative
                        .nodes
                        .iter()
                        .map(|&l| model.classes[cls(l) as usize].key.clone())
                        .collect(),
                );
            }
            v
        })
        .collect();
    let mut inst_violation_sets: HashMap<Vec<ClassId>, usize> = HashMap::new();
    let mut inst_change_edges: HashMap<(ClassId, ClassId), usize> = HashMap::new();
    for (i, rc) in inst_rc.iter().enumerate() {
        inst_violation_sets
            .entry(class_set(model, &rc.representative))
            .or_insert(i);
        for &(a, b) in &rc.edges {
            inst_change_edges.entry((cls(a), cls(b))).or_insert(i);
        }
    }
    let inst_sets: HashSet<Vec<ClassId>> = inst.iter().map(|c| class_set(model, c)).collect();
    let mut filtered: Vec<report::Filtered> = inst
        .iter()
        .filter(|c| c.filter.is_some())
        .map(|c| report::filtered(model, c))
        .collect();
    for rc in &class_rc {
        let same = rc
            .edges
            .iter()
            .find_map(|e| inst_change_edges.get(e))
            .or_else(|| inst_violation_sets.get(&class_set(model, &rc.representative)));
        match same {
            Some(&i) => {
                violations[i].class_cycle = Some(
                    rc.representative
                        .nodes
                        .iter()
                        .map(|&n| model.classes[n as usize].key.clone())
                        .collect(),
                );
            }
            None => violations.push(report::root_cause_violation(model, rc, &class_graph)),
        }
    }
    for c in class.iter().filter(|c| c.filter.is_some()) {
        if !inst_sets.contains(&class_set(model, c)) {
            filtered.push(report::filtered(model, c));
        }
    }

    // Class edges of violations, for the hierarchy.
    let mut violating: HashSet<(ClassId, ClassId)> = HashSet::new();
    for rc in inst_rc.iter().chain(&class_rc) {
        let c = &rc.representative;
        let nodes: Vec<ClassId> = match c.level {
            GraphLevel::Instance => c.nodes.iter().map(|&l| cls(l)).collect(),
            GraphLevel::Class => c.nodes.clone(),
        };
        for i in 0..nodes.len() {
            violating.insert((nodes[i], nodes[(i + 1) % nodes.len()]));
        }
        for &(a, b) in &rc.edges {
            violating.insert(match c.level {
                GraphLevel::Instance => (cls(a), cls(b)),
                GraphLevel::Class => (a, b),
            });
        }
    }
    // One bug, one finding: the same cycle in several processes (two test binaries running the
    // same code) has one id.
    let mut seen_ids: HashSet<String> = HashSet::new();
    violations.retain(|v| seen_ids.insert(v.id.clone()));
    // A request of a lock the thread already holds: no cycle needed.
    violations.extend(self_deadlock::violations(model));
    let (declared, declared_warnings) = hierarchy::check_declared(model, &opts.config.hierarchy);
    violations.extend(declared);
    warnings.extend(declared_warnings);
    let mut suppressed = Vec::new();
    violations.retain(|v| match opts.config.suppression_for(v) {
        Some((i, s)) => {
            suppressed.push(report::Suppressed {
                reason: s.reason.clone(),
                entry: i + 1,
                violation: v.clone(),
            });
            false
        }
        None => true,
    });
    if let Some(b) = &opts.baseline {
        for v in &mut violations {
            v.baselined = b.contains(&v.id);
        }
    }

    phase("violations");
    let hierarchy = hierarchy::suggest_on(
        model,
        &class_graph,
        &class_weights,
        &class_change,
        &violating,
    );
    phase("hierarchy");
    if hierarchy.local_search_stopped > 0 {
        warnings.push(format!(
            "the suggested change set is not proven minimal in {} component(s): the local search stopped after {} passes",
            hierarchy.local_search_stopped,
            hierarchy::MAX_LOCAL_SEARCH_PASSES
        ));
    }
    let timeouts = timeouts::suggest(model);

    let filtered_by: Vec<FilterCount> = FILTER_ORDER
        .iter()
        .filter_map(|&f| {
            let count = filtered.iter().filter(|x| x.filter == f).count() as u64;
            (count > 0).then(|| FilterCount {
                filter: f.into(),
                count,
            })
        })
        .collect();
    let summary = Summary {
        traces: model.traces.len() as u64,
        events: model.events(),
        bytes: model.traces.iter().map(|t| t.bytes).sum(),
        threads: model.threads.len() as u64,
        locks: model.locks.len() as u64,
        classes: model.classes.len() as u64,
        dependencies: model.deps.len() as u64,
        violations: violations.len() as u64,
        filtered: filtered.len() as u64,
        filtered_by,
        complete,
        suppressed: suppressed.len() as u64,
        baselined: violations.iter().filter(|v| v.baselined).count() as u64,
        truncated: model
            .traces
            .iter()
            .filter_map(|t| {
                t.truncated
                    .as_ref()
                    .map(|p| format!("{}: truncated at {p}", t.name))
            })
            .collect(),
    };
    for t in &summary.truncated {
        warnings.push(format!("{t}; analyzed up to the last complete event"));
    }
    Report {
        version: REPORT_VERSION,
        summary,
        violations,
        filtered,
        hierarchy,
        timeouts,
        warnings,
        suppressed,
    }
}
