//! Fuzz targets of lockcheck's analyzer, shared by the cargo-fuzz entry points
//! (`fuzz_targets/*.rs`, nightly, coverage-guided) and the stable driver (`src/bin/driver.rs`).
//!
//! Every target takes raw bytes and must return without panicking, in bounded time and memory:
//!
//! - [`json`], [`std_text`], [`rapidbin`], [`lct`]: the bytes are a trace file in that format. The reader
//!   is drained three ways (strict, `allow_truncated`, and with a tiny line limit), the three
//!   must agree on the events they accept, and the accepted events are analyzed and rendered.
//! - [`analyze`]: the bytes drive [`arbitrary`] to build a sequence of [`Op`]s, which become
//!   trace events with every anomaly a broken writer could produce (unbalanced releases, unknown
//!   locks, releases by other threads, huge ids, deep nesting, fork/join of unknown threads,
//!   several traces), fed to `ModelBuilder` and `analyze_model`.
#![warn(missing_docs, rust_2018_idioms)]

use arbitrary::{Arbitrary, Unstructured};
use lockcheck_analyze::cycles::GraphLevel;
use lockcheck_analyze::graph::OrderGraph;
use lockcheck_analyze::html::render_html;
use lockcheck_analyze::model::ModelBuilder;
use lockcheck_analyze::read::{InputFormat, TraceReader};
use lockcheck_analyze::report::{render_text, TextOptions};
use lockcheck_analyze::sarif::{to_sarif, SarifOptions};
use lockcheck_analyze::{analyze_model, Options};
use lockcheck_core::trace::{ClassStats, Event, Frame, How, LockKind, Mode, Short, FORMAT_VERSION};
use std::io::Cursor;

/// Longest op sequence the [`analyze`] target builds (bounds its running time).
pub const MAX_OPS: usize = 2_000;
/// Deepest nesting one [`Op::Nest`] makes.
pub const MAX_NEST: usize = 96;

/// The lockcheck JSON Lines reader, then the analysis of what it accepted.
pub fn json(data: &[u8]) {
    reader(data, InputFormat::Json);
}

/// The RAPID STD text reader, then the analysis of what it accepted.
pub fn std_text(data: &[u8]) {
    reader(data, InputFormat::Std);
}

/// The RAPID binary reader, then the analysis of what it accepted.
pub fn rapidbin(data: &[u8]) {
    reader(data, InputFormat::RapidBin);
}

/// lockcheck's binary `.lct` reader, then the analysis of what it accepted.
pub fn lct(data: &[u8]) {
    reader(data, InputFormat::Lct);
}

/// A fixture trace (JSON Lines) re-encoded as `.lct`, as a seed for the [`lct`] target.
pub fn lct_seed(json: &[u8]) -> Vec<u8> {
    let input = Box::new(Cursor::new(json.to_vec()));
    let r = TraceReader::from_reader("seed.json", input, InputFormat::Json).allow_truncated(true);
    let mut out = lockcheck_core::lct::MAGIC.to_vec();
    for e in r.flatten() {
        lockcheck_core::lct::encode(&e, &mut out);
    }
    out
}

/// A fixture trace (JSON Lines) re-encoded as `.lct` version 3, as a seed for the [`lct`] target:
/// the lock operations with a site become raw records (one `block` each, so the file's order is
/// kept), everything else is written as in version 2, and the file ends with `end`.
pub fn lct_seed_v3(json: &[u8]) -> Vec<u8> {
    use lockcheck_core::lct::raw;
    use lockcheck_core::trace::{How, Mode};
    let input = Box::new(Cursor::new(json.to_vec()));
    let r = TraceReader::from_reader("seed.json", input, InputFormat::Json).allow_truncated(true);
    let mut out = raw::MAGIC_V3.to_vec();
    raw::encode_clock(&mut out, 1 << 32);
    let mut class_of = std::collections::HashMap::new();
    let mode = |m: Mode| match m {
        Mode::Exclusive => 0u64,
        Mode::Shared => 1,
        Mode::SharedRecursive => 2,
        Mode::Upgradable => 3,
        Mode::Permit => 4,
    };
    let how = |h: How| match h {
        How::Blocking => 0u64,
        How::Try => 1,
        How::Timed => 2,
    };
    let word = |s: u32| 0x1000 + 8 * u64::from(s);
    // No clock readings (0): the hold times are the events' own, as in version 2.
    let ts = 0;
    for e in r.flatten() {
        let c = |l: u64| u64::from(*class_of.get(&l).unwrap_or(&0u32)) << 32;
        // (thread, head, a, b, x, ts) of the raw record standing for `e`, if one does.
        let rec = match e {
            Event::Acquire {
                t,
                l,
                m,
                how: h,
                s: Some(s),
                wait_ns,
            } => Some((
                t,
                u64::from(raw::K_ACQUIRE) | mode(m) << 8 | how(h) << 16 | c(l),
                l,
                word(s),
                wait_ns,
                ts,
            )),
            Event::Fail {
                t,
                l,
                m,
                how: h,
                s: Some(s),
                wait_ns,
                n: 1,
            } => Some((
                t,
                u64::from(raw::K_FAIL) | mode(m) << 8 | how(h) << 16 | c(l),
                l,
                word(s),
                wait_ns,
                ts,
            )),
            Event::Request {
                t,
                l,
                m,
                s: Some(s),
                n,
                short,
            } => Some((
                t,
                u64::from(raw::K_REQUEST)
                    | mode(m) << 8
                    | c(l)
                    | match short {
                        None => 0,
                        Some(Short::Held) => raw::REQUEST_SHORT_HELD,
                        Some(Short::Alone) => raw::REQUEST_SHORT_ALONE,
                    },
                l,
                word(s),
                0,
                u64::from(n),
            )),
            Event::Release { t, l, hold_ns } => {
                Some((t, u64::from(raw::K_RELEASE) | c(l), l, 0, hold_ns, ts))
            }
            Event::Fork { t, child } => Some((t, u64::from(raw::K_FORK), child, 0, 0, 0)),
            Event::Join { t, child, scope } => {
                Some((t, u64::from(raw::K_JOIN), child, u64::from(scope), 0, 0))
            }
            Event::Returned { t } => Some((t, u64::from(raw::K_RETURNED), 0, 0, 0, 0)),
            _ => None,
        };
        match rec {
            Some((t, head, a, b, x, ts)) => {
                raw::encode_block_head(&mut out, t, 1);
                for w in [head, a, b, x, ts] {
                    out.extend_from_slice(&w.to_le_bytes());
                }
            }
            None => {
                match e {
                    Event::Lock { l, c, .. } => {
                        class_of.insert(l, c);
                    }
                    Event::Site { s, .. } => raw::encode_site_word(&mut out, word(s), s),
                    _ => {}
                }
                lockcheck_core::lct::encode(&e, &mut out);
            }
        }
    }
    raw::encode_end(&mut out);
    out
}

/// Drains a reader; returns the accepted events, whether it stopped on an error, and where it
/// was truncated (when allowed).
fn drain(
    data: &[u8],
    format: InputFormat,
    allow_truncated: bool,
    max_line_len: usize,
) -> (Vec<Event>, bool, bool) {
    let input = Box::new(Cursor::new(data.to_vec()));
    let mut r = TraceReader::with_max_line_len("fuzz.trace", input, format, max_line_len)
        .allow_truncated(allow_truncated);
    let mut events = Vec::new();
    let mut failed = false;
    for ev in &mut r {
        match ev {
            Ok(e) => events.push(e),
            Err(e) => {
                let shown = e.to_string();
                assert!(
                    shown.starts_with("fuzz.trace"),
                    "error without the file: {shown}"
                );
                assert!(!e.message.is_empty(), "empty error message");
                failed = true;
                break;
            }
        }
    }
    // After the first error (or the end) the iterator stays ended.
    assert!(r.next().is_none(), "reader yielded after its end");
    (events, failed, r.truncated().is_some())
}

fn reader(data: &[u8], format: InputFormat) {
    let limit = lockcheck_analyze::read::MAX_LINE_LEN;
    let (strict, strict_failed, _) = drain(data, format, false, limit);
    let (lenient, lenient_failed, truncated) = drain(data, format, true, limit);
    // Allowing truncation changes only how the stream ends, never which events it accepts.
    assert_eq!(
        strict, lenient,
        "strict and --allow-truncated readers disagree"
    );
    if truncated {
        assert!(
            strict_failed,
            "truncated with --allow-truncated, accepted without it"
        );
        assert!(!lenient_failed);
    }
    if !strict_failed {
        assert!(!lenient_failed && !truncated);
    }
    // A tiny line limit: every long line is an error, never a panic or a big allocation.
    let (short, _, _) = drain(data, format, false, 24);
    assert!(
        short.len() <= strict.len() || matches!(format, InputFormat::RapidBin | InputFormat::Lct)
    );

    let mut b = ModelBuilder::new();
    b.begin_trace("fuzz.trace");
    for e in &lenient {
        b.event(e);
    }
    b.end_trace();
    finish(b, heavy(data));
}

/// One input in 32, by a hash of its bytes (deterministic, whatever the format's fixed bytes).
fn heavy(data: &[u8]) -> bool {
    let h = data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    h % 32 == 0
}

/// Analyzes and renders every output. `heavy`: also the HTML page and the SVG picture, whose
/// graph layout costs tens of milliseconds; chosen from the input (deterministic), for one input
/// in 32, so that the targets keep their pace.
fn finish(b: ModelBuilder, heavy: bool) {
    let model = b.finish();
    let report = analyze_model(&model, &Options::default());
    let text = render_text(&report, TextOptions::default());
    assert!(!text.is_empty());
    let verbose = render_text(
        &report,
        TextOptions {
            verbose: true,
            color: true,
        },
    );
    assert!(verbose.len() >= text.len() / 2);
    serde_json::to_string(&report).expect("the report serializes");
    // Every other output: SARIF, the order graph as DOT and SVG, the HTML page.
    let sarif = to_sarif(
        &report,
        &SarifOptions {
            repo_root: Some("/work".into()),
            with_baseline: false,
        },
    );
    serde_json::to_string(&sarif).expect("SARIF serializes");
    for level in [GraphLevel::Instance, GraphLevel::Class] {
        let graph = OrderGraph::build(&model, level, &report);
        graph.to_dot();
        let picture = graph.picture(12);
        picture.to_dot();
        if heavy {
            // The page holds the SVG picture: one layout per level.
            match level {
                GraphLevel::Instance => drop(render_html(&report, &graph)),
                GraphLevel::Class => drop(picture.to_svg()),
            }
        }
    }
}

/// A thread, lock, class or site number as a broken writer might produce it: a small number
/// (so that ops meet each other), zero, or one near the top of the type's range.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Id {
    /// 1..=8: ops on these collide often.
    Small(u8),
    /// 0, which no writer uses.
    Zero,
    /// `MAX - n`.
    Huge(u8),
}

impl Id {
    fn u64(self) -> u64 {
        match self {
            Id::Small(n) => u64::from(n % 8) + 1,
            Id::Zero => 0,
            Id::Huge(n) => u64::MAX - u64::from(n % 4),
        }
    }

    fn u32(self) -> u32 {
        match self {
            Id::Small(n) => u32::from(n % 8) + 1,
            Id::Zero => 0,
            Id::Huge(n) => u32::MAX - u32::from(n % 4),
        }
    }
}

/// One step of a generated trace.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// A header (the first is expected; later ones are anomalies).
    Header,
    /// Ends the current trace and starts another (a second process).
    NewTrace,
    /// Declares a thread.
    Thread {
        /// Thread.
        t: Id,
        /// Whether it has a name.
        named: bool,
    },
    /// Declares a class, with a key from a small set so that traces merge.
    Class {
        /// Class number.
        c: Id,
        /// Key choice.
        key: u8,
        /// Kind choice.
        kind: u8,
    },
    /// Declares a site.
    Site {
        /// Site number.
        s: Id,
        /// Location choice.
        loc: u8,
        /// Whether it has a frame.
        frame: bool,
    },
    /// Declares a lock.
    Lock {
        /// Lock.
        l: Id,
        /// Class (possibly undeclared).
        c: Id,
        /// Semaphore permits.
        permits: Option<u8>,
    },
    /// A thread is about to wait.
    Request {
        /// Thread.
        t: Id,
        /// Lock (possibly unknown).
        l: Id,
        /// Mode choice.
        m: u8,
        /// Site (possibly unknown).
        s: Option<Id>,
        /// Permits asked for (0 and 1 alike).
        n: u8,
        /// What the runtime saw of the permits (0: nothing said, 1: held, else alone).
        short: u8,
    },
    /// An acquisition.
    Acquire {
        /// Thread.
        t: Id,
        /// Lock (possibly unknown).
        l: Id,
        /// Mode choice.
        m: u8,
        /// How choice.
        how: u8,
        /// Site.
        s: Option<Id>,
        /// Wait time (any u64).
        wait_ns: u64,
    },
    /// A failed try.
    Fail {
        /// Thread.
        t: Id,
        /// Lock.
        l: Id,
        /// Mode choice.
        m: u8,
        /// Timed or try.
        timed: bool,
        /// Wait time.
        wait_ns: u64,
    },
    /// A release (possibly of a lock not held, or held by another thread).
    Release {
        /// Thread.
        t: Id,
        /// Lock.
        l: Id,
        /// Hold time (any u64).
        hold_ns: u64,
    },
    /// A mode change (possibly of a lock not held).
    Convert {
        /// Thread.
        t: Id,
        /// Lock.
        l: Id,
        /// Mode choice.
        m: u8,
    },
    /// A condition-variable wait.
    CondWait {
        /// Thread.
        t: Id,
        /// Condvar.
        cv: Id,
        /// Mutex released.
        l: Id,
    },
    /// A spawn (of a thread possibly never seen again).
    Fork {
        /// Parent.
        t: Id,
        /// Child.
        child: Id,
    },
    /// A join (of a thread possibly never seen).
    Join {
        /// Joiner.
        t: Id,
        /// Joined.
        child: Id,
        /// A scope's implicit join.
        scope: bool,
    },
    /// A thread's closure returned (possibly twice, possibly after its join).
    Returned {
        /// The thread.
        t: Id,
    },
    /// A lock dropped (possibly held, possibly unknown).
    Drop {
        /// Lock.
        l: Id,
    },
    /// Permits of a semaphore forgotten (possibly more than it has, possibly not a semaphore).
    Forget {
        /// Lock.
        l: Id,
        /// Permits.
        n: u8,
    },
    /// Class statistics (any figures).
    Stats {
        /// Class.
        c: Id,
        /// Acquisitions.
        acquisitions: u64,
        /// Max wait.
        wait_max_ns: u64,
    },
    /// Deep nesting: thread `t` acquires `depth` fresh locks in a row, numbered from `base`
    /// upwards (wrapping), then releases them in `order`.
    Nest {
        /// Thread.
        t: Id,
        /// How deep (bounded by [`MAX_NEST`]).
        depth: u8,
        /// First lock number.
        base: Id,
        /// 0: release LIFO, 1: FIFO, 2: never.
        order: u8,
    },
}

fn mode(m: u8) -> Mode {
    match m % 5 {
        0 => Mode::Exclusive,
        1 => Mode::Shared,
        2 => Mode::SharedRecursive,
        3 => Mode::Upgradable,
        _ => Mode::Permit,
    }
}

fn kind(k: u8) -> LockKind {
    match k % 5 {
        0 => LockKind::Mutex,
        1 => LockKind::Rwlock,
        2 => LockKind::Semaphore,
        3 => LockKind::Condvar,
        _ => LockKind::Unknown,
    }
}

fn how(h: u8) -> How {
    match h % 4 {
        0 | 1 => How::Blocking,
        2 => How::Try,
        _ => How::Timed,
    }
}

fn acquire(t: u64, l: u64, m: Mode) -> Event {
    Event::Acquire {
        t,
        l,
        m,
        how: How::Blocking,
        s: None,
        wait_ns: 0,
    }
}

/// Turns ops into events, grouped by trace (the builder starts a new trace at each group).
pub fn events(ops: &[Op]) -> Vec<Vec<Event>> {
    let mut traces = vec![Vec::new()];
    for op in ops.iter().take(MAX_OPS) {
        let out = traces.last_mut().expect("one trace at least");
        match *op {
            Op::Header => out.push(Event::Header {
                version: FORMAT_VERSION,
                pid: 1,
                program: "fuzz".into(),
                start_unix_ms: 0,
                // Every other trace with coarse hold times (a 4 ms step), the rest precise.
                hold_resolution_ns: if out.len() % 2 == 0 { 4_000_000 } else { 0 },
            }),
            Op::NewTrace => traces.push(Vec::new()),
            Op::Thread { t, named } => out.push(Event::Thread {
                t: t.u64(),
                name: named.then(|| format!("worker {}", t.u64())),
            }),
            Op::Class { c, key, kind: k } => out.push(Event::Class {
                c: c.u32(),
                key: format!("class{}", key % 6),
                kind: kind(k),
            }),
            Op::Site { s, loc, frame } => out.push(Event::Site {
                s: s.u32(),
                loc: format!("src/x.rs:{}:1", loc % 6),
                frames: if frame {
                    vec![Frame {
                        function: Some("f".into()),
                        file: Some("src/x.rs".into()),
                        line: Some(u32::from(loc)),
                    }]
                } else {
                    Vec::new()
                },
            }),
            Op::Lock { l, c, permits } => out.push(Event::Lock {
                l: l.u64(),
                c: c.u32(),
                permits: permits.map(u64::from),
            }),
            Op::Request {
                t,
                l,
                m,
                s,
                n,
                short,
            } => out.push(Event::Request {
                t: t.u64(),
                l: l.u64(),
                m: mode(m),
                s: s.map(Id::u32),
                n: u32::from(n),
                short: match short {
                    0 => None,
                    1 => Some(Short::Held),
                    _ => Some(Short::Alone),
                },
            }),
            Op::Acquire {
                t,
                l,
                m,
                how: h,
                s,
                wait_ns,
            } => out.push(Event::Acquire {
                t: t.u64(),
                l: l.u64(),
                m: mode(m),
                how: how(h),
                s: s.map(Id::u32),
                wait_ns,
            }),
            Op::Fail {
                t,
                l,
                m,
                timed,
                wait_ns,
            } => out.push(Event::Fail {
                t: t.u64(),
                l: l.u64(),
                m: mode(m),
                how: if timed { How::Timed } else { How::Try },
                s: None,
                wait_ns,
                n: 1,
            }),
            Op::Release { t, l, hold_ns } => out.push(Event::Release {
                t: t.u64(),
                l: l.u64(),
                hold_ns,
            }),
            Op::Convert { t, l, m } => out.push(Event::Convert {
                t: t.u64(),
                l: l.u64(),
                m: mode(m),
            }),
            Op::CondWait { t, cv, l } => out.push(Event::CondWait {
                t: t.u64(),
                cv: cv.u64(),
                l: l.u64(),
                timed: false,
            }),
            Op::Fork { t, child } => out.push(Event::Fork {
                t: t.u64(),
                child: child.u64(),
            }),
            Op::Join { t, child, scope } => out.push(Event::Join {
                t: t.u64(),
                child: child.u64(),
                scope,
            }),
            Op::Returned { t } => out.push(Event::Returned { t: t.u64() }),
            Op::Drop { l } => out.push(Event::Drop { l: l.u64() }),
            Op::Forget { l, n } => out.push(Event::Forget {
                l: l.u64(),
                n: u64::from(n),
            }),
            Op::Stats {
                c,
                acquisitions,
                wait_max_ns,
            } => out.push(Event::Stats {
                c: c.u32(),
                stats: ClassStats {
                    acquisitions,
                    contended: acquisitions,
                    wait_total_ns: wait_max_ns,
                    wait_max_ns,
                    hold_total_ns: u64::MAX,
                    hold_max_ns: u64::MAX,
                },
            }),
            Op::Nest {
                t,
                depth,
                base,
                order,
            } => {
                let depth = usize::from(depth) % (MAX_NEST + 1);
                let t = t.u64();
                let locks: Vec<u64> = (0..depth as u64)
                    .map(|i| base.u64().wrapping_add(i))
                    .collect();
                for &l in &locks {
                    out.push(acquire(t, l, Mode::Exclusive));
                }
                let release = |l: u64| Event::Release { t, l, hold_ns: 1 };
                match order % 3 {
                    0 => out.extend(locks.iter().rev().map(|&l| release(l))),
                    1 => out.extend(locks.iter().map(|&l| release(l))),
                    _ => {}
                }
            }
        }
    }
    traces
}

/// Feeds generated traces to a fresh builder and analyzes the model.
pub fn analyze_events(traces: &[Vec<Event>], heavy: bool) {
    let mut b = ModelBuilder::new();
    for (i, t) in traces.iter().enumerate() {
        b.begin_trace(&format!("trace{i}.json"));
        for e in t {
            b.event(e);
        }
        b.end_trace();
    }
    finish(b, heavy);
}

/// The analysis on an arbitrary op sequence (see [`Op`]).
pub fn analyze(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(ops) = Vec::<Op>::arbitrary(&mut u) else {
        return;
    };
    analyze_events(&events(&ops), heavy(data));
}

/// A fuzz target: any bytes in, no panic out.
pub type Target = fn(&[u8]);

/// The traces an [`analyze`] input stands for (empty if the bytes make no ops).
pub fn events_of(data: &[u8]) -> Vec<Vec<Event>> {
    let mut u = Unstructured::new(data);
    Vec::<Op>::arbitrary(&mut u)
        .map(|ops| events(&ops))
        .unwrap_or_default()
}

/// Every target by name, for the driver.
pub const TARGETS: &[(&str, Target)] = &[
    ("json", json),
    ("std", std_text),
    ("rapidbin", rapidbin),
    ("lct", lct),
    ("analyze", analyze),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The events a `.lct` file reads as, truncation allowed.
    fn lct_events(bytes: &[u8]) -> Vec<Event> {
        drain(bytes, InputFormat::Lct, true, usize::MAX).0
    }

    #[test]
    fn the_version_3_seed_reads_as_the_version_2_seed() {
        for f in ["abba.jsonl", "all-events.jsonl"] {
            let json = std::fs::read(format!(
                "{}/../fixtures/json/{f}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let (v2, v3) = (
                lct_events(&lct_seed(&json)),
                lct_events(&lct_seed_v3(&json)),
            );
            // Version 3 adds the per-class statistics at its end; otherwise the same events.
            let v3: Vec<_> = v3
                .into_iter()
                .filter(|e| !matches!(e, Event::Stats { .. }))
                .collect();
            let v2: Vec<_> = v2
                .into_iter()
                .filter(|e| !matches!(e, Event::Stats { .. }))
                .collect();
            assert!(v2.len() > 5, "{f}: {v2:?}");
            assert_eq!(v2, v3, "{f}");
        }
    }
}
