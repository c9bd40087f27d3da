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
//! - [`wait_cycle`]: wait cycles through a semaphore seen in the run.
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
pub mod clocks;
pub mod condvar_wait;
pub mod config;
pub mod cycles;
pub mod fork_hang;
pub mod graph;
pub mod held_across_await;
mod held_stack;
pub mod hierarchy;
pub mod hist;
pub mod html;
pub mod lost_wakeup;
pub mod model;
pub mod read;
pub mod report;
pub mod rules;
pub mod sarif;
pub mod self_deadlock;
pub mod synth;
pub mod timeouts;
mod twins;
pub mod wait_cycle;

use cycles::{Candidate, GraphLevel, SearchLimits};
use graph::LockGraph;
use lockcheck_core::trace::Event;
use model::{ClassId, Model, ModelBuilder};
use read::{expand_inputs, InputFormat, Position, ReadError, TraceReader};
use report::{FilterCount, Report, Summary, FILTER_ORDER, REPORT_VERSION};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Mutex;

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
    /// The opt-in lost-wakeup rule (`--condvar`, the runtime's `LOCKCHECK_CONDVAR`): a condvar
    /// notified by a thread that did not take its waiters' mutex ([`lost_wakeup`]).
    pub lost_wakeups: bool,
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
        Position::Event(n) => format!("event {n}"),
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
    let (files, duplicates) = distinct_files(expand_inputs(inputs)?);
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
    parse_only(&files, opts);
    phase("start");
    let mut b = ModelBuilder::new();
    // For tests of a trace with more locks than the analyzer numbers (2^29 otherwise), through
    // the command line too.
    if let Some(n) = std::env::var("LOCKCHECK_TEST_MAX_LOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        b.limit_locks(n);
    }
    if opts.lost_wakeups {
        b.track_lost_wakeups();
    }
    for (again, first) in &duplicates {
        b.note_duplicate_input(again, first);
    }
    read_into(
        &files,
        opts,
        &sizes,
        read_threads(files.len()),
        progress,
        &mut b,
    )?;
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

/// How long the replay waits for the first events of a FIFO input before it says on stderr that
/// it waits (a FIFO with no writer blocks in `open`, and one whose writer stalls blocks in `read`:
/// both are legitimate, a writer may come later, so they are waited for, but not silently).
const FIFO_NOTICE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether `p` is a FIFO (named pipe, or a process substitution's pipe).
fn is_fifo(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(p).is_ok_and(|m| m.file_type().is_fifo())
    }
    #[cfg(not(unix))]
    {
        let _ = p;
        false
    }
}

/// `files` with each file once, in order of first mention: the same device and inode (on
/// Unix; elsewhere the same canonical path) under a second name, or the same name twice, is read
/// once, and returned among the duplicates as (that name, the first one's), for a warning: read
/// twice, one trace would count as two processes, its findings twice.
fn distinct_files(files: Vec<PathBuf>) -> (Vec<PathBuf>, Vec<(String, String)>) {
    #[cfg(unix)]
    fn identity(p: &Path) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    fn identity(p: &Path) -> Option<PathBuf> {
        std::fs::canonicalize(p).ok()
    }
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(files.len());
    let mut duplicates = Vec::new();
    for f in files {
        // A file that cannot be identified is kept: reading it reports the error.
        let Some(id) = identity(&f) else {
            out.push(f);
            continue;
        };
        match seen.get(&id) {
            Some(&i) => {
                let first: &PathBuf = &out[i];
                duplicates.push((f.display().to_string(), first.display().to_string()));
            }
            None => {
                seen.insert(id, out.len());
                out.push(f);
            }
        }
    }
    (out, duplicates)
}

/// Events a reading thread hands to the replay at a time.
const READ_BATCH: usize = 8192;
/// Batches one file's reading thread may run ahead of the replay (bounds memory: at most this
/// many batches per reading thread wait in memory, whatever the size of the trace).
const READ_AHEAD: usize = 4;

/// What a reading thread sends about its file, in file order.
enum Chunk {
    /// The next events.
    Events(Vec<Event>),
    /// The file is read; `truncated` tells where it was cut, under `--allow-truncated`.
    Done { truncated: Option<Position> },
    /// The file could not be read; nothing follows.
    Failed(ReadError),
}

/// How many threads read trace files: `RAYON_NUM_THREADS` if set, else one per core, never more
/// than there are files.
fn read_threads(files: usize) -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(files)
        .max(1)
}

/// Reads one file on a reading thread, sending its events in batches; stops early when the
/// replay has hung up (it stopped at an earlier error).
fn read_file(
    path: &Path,
    format: Option<InputFormat>,
    allow_truncated: bool,
    tx: &SyncSender<Chunk>,
    spare: &Mutex<Vec<Vec<Event>>>,
) {
    let fresh = || {
        spare
            .lock()
            .ok()
            .and_then(|mut s| s.pop())
            .unwrap_or_else(|| Vec::with_capacity(READ_BATCH))
    };
    let mut reader = match TraceReader::open(path, format) {
        Ok(r) => r.allow_truncated(allow_truncated).printable(true),
        Err(e) => {
            let _ = tx.send(Chunk::Failed(e));
            return;
        }
    };
    loop {
        let mut batch = fresh();
        let read = reader.read_batch(&mut batch, READ_BATCH);
        match read {
            Ok(more) => {
                if !batch.is_empty() && tx.send(Chunk::Events(batch)).is_err() {
                    return;
                }
                if !more {
                    break;
                }
            }
            Err(e) => {
                let _ = tx.send(Chunk::Events(batch));
                let _ = tx.send(Chunk::Failed(e));
                return;
            }
        }
    }
    let _ = tx.send(Chunk::Done {
        truncated: reader.truncated(),
    });
}

/// Reads every file into `b`, in file order.
///
/// The files are parsed in parallel on a rayon pool of `threads` threads while this thread
/// replays them: each file's events go through a bounded channel of its own and are replayed file
/// after file, each in file order, exactly as a sequential read would: the model, and so the
/// report, do not depend on the number of threads. A reading thread takes the files in order, so
/// the file the replay waits for is always being read (or is the next one taken): no thread
/// waits for another forever. The first error in file order is the one returned, as in a
/// sequential read.
fn read_into(
    files: &[PathBuf],
    opts: &Options,
    sizes: &[u64],
    threads: usize,
    progress: &mut dyn FnMut(Progress<'_>),
    b: &mut ModelBuilder,
) -> Result<(), ReadError> {
    let threads = threads.clamp(1, files.len().max(1));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("lockcheck-read-{i}"))
        .build()
        .map_err(|e| {
            ReadError::new(
                "lockcheck",
                None,
                format!("cannot start reading threads: {e}"),
            )
        })?;
    let (format, allow_truncated) = (opts.input_format, opts.allow_truncated);
    let mut senders = Vec::with_capacity(files.len());
    let mut receivers = Vec::with_capacity(files.len());
    for _ in files {
        let (tx, rx) = sync_channel::<Chunk>(READ_AHEAD);
        senders.push(Mutex::new(Some(tx)));
        receivers.push(rx);
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let spare: Mutex<Vec<Vec<Event>>> = Mutex::new(Vec::new());
    let bytes_total = sizes.iter().sum();
    pool.in_place_scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|_| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let tx = senders[i].lock().ok().and_then(|mut s| s.take());
                if let Some(tx) = tx {
                    read_file(path, format, allow_truncated, &tx, &spare);
                }
            });
        }
        // The receivers are dropped when this returns, before the scope waits for the reading
        // threads: a thread blocked on a full channel then fails its send and ends.
        let mut bytes_done = 0;
        for (index, rx) in receivers.into_iter().enumerate() {
            let f = &files[index];
            progress(Progress::Reading {
                file: f,
                index,
                files: files.len(),
                bytes_done,
                bytes_total,
            });
            let name = f.display().to_string();
            let mut begun = false;
            // A FIFO's open waits for a writer, and its reading for the writer's events: said
            // on stderr once if nothing came for a while (never a silent hang, see
            // `FIFO_NOTICE`).
            let mut notice = is_fifo(f);
            loop {
                let got = if notice {
                    notice = false;
                    match rx.recv_timeout(FIFO_NOTICE) {
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                            eprintln!(
                                "lockcheck: waiting for `{name}`, a FIFO (named pipe): nothing \
                                 came from it in {}s; it is read until its writer closes it, \
                                 and its open waits until some process opens it for writing",
                                FIFO_NOTICE.as_secs()
                            );
                            rx.recv().map_err(|_| ())
                        }
                        r => r.map_err(|_| ()),
                    }
                } else {
                    rx.recv().map_err(|_| ())
                };
                let chunk = got.unwrap_or_else(|_| {
                    Chunk::Failed(ReadError::new(
                        &name,
                        None,
                        "the thread reading this trace stopped unexpectedly",
                    ))
                });
                if !begun && !matches!(chunk, Chunk::Failed(_)) {
                    b.begin_trace(&name);
                    begun = true;
                }
                match chunk {
                    Chunk::Events(mut events) => {
                        // Each event is dropped right after its replay, while it is in cache
                        // (a `clear` afterwards read the whole batch again: 4M cache misses
                        // of the planted 5M-event trace).
                        b.event_batch(&mut events);
                        if let Some((lock, at)) = b.take_lock_overflow() {
                            stop.store(true, Ordering::Relaxed);
                            return Err(lock_overflow(&name, b.lock_limit(), lock, at));
                        }
                        if let Ok(mut s) = spare.lock() {
                            s.push(events);
                        }
                    }
                    Chunk::Done { truncated } => {
                        if let Some(p) = truncated {
                            b.set_truncated(fmt_position(&p));
                        }
                        if let Ok(meta) = std::fs::metadata(f) {
                            b.add_bytes(meta.len());
                        }
                        b.end_trace();
                        break;
                    }
                    Chunk::Failed(e) => {
                        stop.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
            bytes_done += sizes[index];
        }
        Ok(())
    })
}

/// The error of a trace that names more lock instances than the analyzer numbers (with the
/// traces read before it): at the event that names one more, `lock` as the trace numbers it.
fn lock_overflow(name: &str, limit: usize, lock: u64, at: u64) -> ReadError {
    ReadError::new(
        name,
        Some(Position::Event(at)),
        format!(
            "lock {lock} is one lock instance more than the analyzer numbers ({limit}, over all \
             the traces read); analyze fewer traces at once, or a shorter trace"
        ),
    )
}

/// With `LOCKCHECK_PHASES=parse`, reads every file once without replaying it, on this thread,
/// and prints the events, bytes, time and throughput of that parse to stderr: the readers' own
/// speed, apart from the model's.
fn parse_only(files: &[PathBuf], opts: &Options) {
    if std::env::var_os("LOCKCHECK_PHASES").is_none_or(|v| v != "parse") {
        return;
    }
    // Regular files only: a pipe read here would be empty for the analysis.
    for f in files.iter().filter(|f| f.is_file()) {
        let start = std::time::Instant::now();
        let cpu = thread_cpu_seconds();
        let Ok(reader) = TraceReader::open(f, opts.input_format) else {
            continue;
        };
        let reader = reader.allow_truncated(opts.allow_truncated);
        let mut events = 0u64;
        for e in reader {
            if e.is_err() {
                break;
            }
            std::hint::black_box(e.ok());
            events += 1;
        }
        let wall = start.elapsed().as_secs_f64();
        let cpu = thread_cpu_seconds().zip(cpu).map(|(b, a)| b - a);
        let bytes = std::fs::metadata(f).map_or(0, |m| m.len());
        let secs = cpu.filter(|&c| c > 0.0).unwrap_or(wall);
        eprintln!(
            "lockcheck: parse only: {}: {events} events, {bytes} bytes in {wall:.3} s wall, {} s CPU: {:.2}M events/s, {:.0} MB/s of CPU",
            f.display(),
            cpu.map_or("?".into(), |c| format!("{c:.3}")),
            events as f64 / secs / 1e6,
            bytes as f64 / secs / 1e6,
        );
    }
}

/// CPU time of the calling thread (user and system), from `/proc/thread-self/stat`, where the
/// platform has it.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which may hold blanks) start after its closing `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // Clock ticks: 100 per second on every Linux configuration in use.
    Some((utime + stime) / 100.0)
}

/// The peak resident set size of this process (`VmHWM` of `/proc/self/status`, e.g.
/// `"544396 kB"`), where the platform has it.
pub fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.trim_start_matches("VmHWM:").trim().to_string())
}

/// The user and system CPU time of this process in seconds (Linux; 10 ms resolution) and its
/// minor page faults so far: on a shared machine the wall time of a phase says little, and the
/// system time is mostly the faults of pages touched for the first time (about 2 us each on
/// the benchmarks' host).
fn cpu_secs_and_faults() -> Option<(f64, f64, u64)> {
    cpu_secs_and_faults_of("/proc/self/stat")
}

/// [`cpu_secs_and_faults`] of the process (`/proc/self/stat`) or of the calling thread
/// (`/proc/thread-self/stat`).
fn cpu_secs_and_faults_of(path: &str) -> Option<(f64, f64, u64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may contain spaces, hence the last ')'): state is
    // the first, minflt the 8th, utime the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let minflt: u64 = f.nth(7)?.parse().ok()?;
    let user: f64 = f.nth(3)?.parse().ok()?;
    let sys: f64 = f.next()?.parse().ok()?;
    Some((user / 100.0, sys / 100.0, minflt))
}

/// With `LOCKCHECK_PHASES` set, prints the time since the start of the process, the user and
/// system CPU time, the minor page faults and the peak resident set size at the end of each
/// phase of the analysis to stderr (for
/// profiling). With `LOCKCHECK_PHASES=parse`, the traces are first parsed once more without
/// being replayed, and the readers' own throughput is printed per file.
pub fn phase(name: &str) {
    use std::sync::OnceLock;
    static ON: OnceLock<Option<std::time::Instant>> = OnceLock::new();
    let Some(start) =
        ON.get_or_init(|| std::env::var_os("LOCKCHECK_PHASES").map(|_| std::time::Instant::now()))
    else {
        return;
    };
    let (user, sys, faults) = cpu_secs_and_faults().unwrap_or_default();
    let (t_user, t_sys, _) = cpu_secs_and_faults_of("/proc/thread-self/stat").unwrap_or_default();
    let thread = std::thread::current();
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.trim_start_matches("VmRSS:").trim().to_string())
        })
        .unwrap_or_default();
    eprintln!(
        "lockcheck: phase {name}: {:.3} s, user CPU {user:.2} s, system {sys:.2} s, \
         {faults} minor faults, RSS {rss}, peak RSS {}; thread {} CPU {:.2} s",
        start.elapsed().as_secs_f64(),
        peak_rss().unwrap_or_default(),
        thread.name().unwrap_or("?"),
        t_user + t_sys
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

/// Work started beside the caller's ([`beside`]): on a thread of its own, or already done.
enum Beside<'scope, T> {
    Thread(std::thread::ScopedJoinHandle<'scope, T>),
    Done(T),
}

impl<T> Beside<'_, T> {
    /// The work's result (a panic of its thread goes on here).
    fn join(self) -> T {
        match self {
            Beside::Thread(h) => h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
            Beside::Done(r) => r,
        }
    }
}

/// Runs `f` on a thread of scope `s`, or here and now if no thread can be started (the
/// analysis does not fail for want of a thread: it takes longer).
fn beside<'scope, T: Send + 'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    f: impl FnOnce() -> T + Send + 'scope,
) -> Beside<'scope, T> {
    // Kept out of the thread's closure until it runs, so that a failed start leaves it here.
    let work = std::sync::Arc::new(Mutex::new(Some(f)));
    let theirs = std::sync::Arc::clone(&work);
    let started = std::thread::Builder::new()
        .name("lockcheck-analyze".into())
        .spawn_scoped(s, move || {
            let f = theirs.lock().ok().and_then(|mut w| w.take());
            f.expect("the work is taken once")()
        });
    match started {
        Ok(h) => Beside::Thread(h),
        Err(_) => {
            let f = work.lock().ok().and_then(|mut w| w.take());
            Beside::Done(f.expect("a thread that did not start took nothing")())
        }
    }
}

/// The further example cycles a report lists ([`report::MAX_EXAMPLES_LISTED`]): a root cause
/// lists all of its examples or, once the report is at the budget, none.
#[derive(Debug)]
struct ExampleBudget {
    /// The most examples listed.
    max: usize,
    /// Examples listed so far.
    listed: usize,
    /// Root causes seen.
    root_causes: usize,
    /// Root causes with examples that list none.
    unlisted: usize,
}

impl ExampleBudget {
    /// Whether root cause `rc` lists its examples (counted when it does).
    fn take(&mut self, rc: &cycles::RootCause) -> bool {
        self.root_causes += 1;
        let n = rc.examples.len();
        if n == 0 {
            return true;
        }
        if self.listed + n > self.max {
            self.unlisted += 1;
            return false;
        }
        self.listed += n;
        true
    }
}

/// Analyzes a model already built (the part of [`analyze`] after reading).
pub fn analyze_model(model: &Model, opts: &Options) -> Report {
    analyze_model_listing(model, opts, report::MAX_EXAMPLES_LISTED)
}

/// [`analyze_model`], listing at most `max_examples` further example cycles in the report
/// (tests set fewer than [`report::MAX_EXAMPLES_LISTED`]).
fn analyze_model_listing(model: &Model, opts: &Options, max_examples: usize) -> Report {
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
    //
    // The listing runs on a thread of its own (the parse's thread is idle by then), in two
    // steps: its search between threads beside the weights and the change set, then, once the
    // graph's in-edges are released (nothing after them reads them), its same-thread listing
    // beside the root-cause search. On the hostile random trace the listing is 0.2 s of a 2 s
    // run, and the in-edges 19 MB of the root-cause search's peak, where the same-thread
    // listing's 30 MB are now. Each result is a function of the model and its graph alone: the
    // report does not depend on which thread finishes first.
    let same_graph = graph::classes_are_locks(model);
    // When no class has two instances, the class graph is the instance graph renamed: its
    // findings would all be instance findings again, so only their class cycle is kept.
    let one_instance_per_class = model.classes.iter().all(|c| c.instances <= 1);
    let class_run = match opts.levels {
        Levels::Instance => false,
        Levels::Both => !one_instance_per_class,
        Levels::Class => true,
    };
    let inst_run = opts.levels != Levels::Class;
    let (class_graph, class_weights, class_change, inst_graph, inst_parts, class_parts) =
        std::thread::scope(|s| {
            let cross_beside = |g: &LockGraph| {
                let g = g.clone();
                beside(s, move || {
                    let r = cycles::list_cross_threads(model, &g, &listing);
                    phase("listing between threads, done");
                    r
                })
            };
            let class_graph = LockGraph::build(model, GraphLevel::Class);
            let class_cross = class_run.then(|| cross_beside(&class_graph));
            let mut inst_graph = LockGraph::default();
            let mut inst_cross = None;
            if inst_run && same_graph {
                inst_graph = class_graph.as_level(GraphLevel::Instance);
                inst_cross = Some(cross_beside(&inst_graph));
            }
            let class_weights = class_graph.weights(model);
            phase("class graph");
            let class_change = hierarchy::class_change_set(model, &class_graph, &class_weights);
            phase("class change set");
            // One graph, one change set: when the instance graph is the class graph, the class
            // one, whose ties are broken by the same ranks (`cycles::change_set_ranks`), is not
            // computed again.
            let mut own = None;
            if inst_run && !same_graph {
                inst_graph = LockGraph::build(model, GraphLevel::Instance);
                inst_cross = Some(cross_beside(&inst_graph));
                let weights = inst_graph.weights(model);
                let ranks = cycles::change_set_ranks(model, GraphLevel::Instance);
                let change = cycles::change_set_on(&inst_graph, &weights, &|n| {
                    ranks.get(n as usize).copied().unwrap_or(u64::MAX)
                });
                own = Some((weights, change));
            }
            phase("instance graph and change set");
            let inst_cross: Option<cycles::CrossListing> = inst_cross.map(Beside::join);
            let class_cross: Option<cycles::CrossListing> = class_cross.map(Beside::join);
            phase("listing between threads");
            // The searches that read the in-edges (the listing between threads, the change
            // sets) are over: the report reads the graphs' edges and dependencies only.
            let (class_graph, inst_graph) = graph::release_in_edges(class_graph, inst_graph);
            let level_run = |graph: &LockGraph,
                             weights: &graph::EdgeWeights,
                             change: &cycles::ChangeSet,
                             cross: cycles::CrossListing| {
                let g = graph.clone();
                let same = beside(s, move || {
                    let r = cross.finish(model, &g, &listing);
                    phase("listing");
                    r
                });
                let rc = cycles::find_root_causes_on(model, graph, weights, change, &opts.limits);
                phase("root causes");
                let r = same.join();
                // Only the listing of filtered candidates was cut (`Summary::filtered_complete`).
                let cut = !r.notes.is_empty() || !r.warnings.is_empty();
                let mut notes = r.notes;
                notes.extend(r.warnings.into_iter().map(|w| {
                    w.replace(
                        "; results may be incomplete (raise --max-cycles)",
                        " (only the listing of filtered candidates is affected; raise --max-cycles or --max-filtered-steps)",
                    )
                }));
                notes.extend(rc.notes);
                (r.candidates, rc.root_causes, rc.warnings, notes, cut)
            };
            let inst_parts = match inst_cross {
                Some(cross) => {
                    let (weights, change) = match &own {
                        Some((w, c)) => (w, c),
                        None => (&class_weights, &class_change),
                    };
                    level_run(&inst_graph, weights, change, cross)
                }
                None => Default::default(),
            };
            drop(own);
            let class_parts = match class_cross {
                Some(cross) => level_run(&class_graph, &class_weights, &class_change, cross),
                None => Default::default(),
            };
            (
                class_graph,
                class_weights,
                class_change,
                inst_graph,
                inst_parts,
                class_parts,
            )
        });
    let (inst, inst_rc, inst_w, inst_n, inst_cut) = inst_parts;
    let (class, class_rc, class_w, class_n, class_cut) = class_parts;
    let filtered_complete = !inst_cut && !class_cut;
    let complete = inst_w.is_empty()
        && class_w.is_empty()
        && model.anomalies.over_budget == 0
        && model.anomalies.over_node_budget == 0
        && model.anomalies.wait_cycles_unchecked == 0;
    warnings.extend(inst_w);
    warnings.extend(class_w);
    warnings.extend(inst_n);
    warnings.extend(class_n);

    let cls = |l: u32| model.locks[l as usize].class;
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
    // The suggested hierarchy reads the graph and the violations' class edges only: it is
    // made on a thread of its own while the violations' reports are built (0.06 s and 0.1 s on
    // the hostile random trace). Neither depends on the other's result or timing.
    let (hierarchy, violations, filtered, suppressed) = std::thread::scope(|s| {
        let hierarchy = beside(s, || {
            let h = hierarchy::suggest_on(
                model,
                &class_graph,
                &class_weights,
                &class_change,
                &violating,
            );
            phase("hierarchy");
            h
        });
        // One bug, one finding: a class root cause whose edge is the class edge of an instance root
        // cause, or whose cycle is over the classes of an instance violation, is that violation
        // (mentioned there); a filtered class cycle over the classes of any instance candidate says
        // nothing new.
        // The lock and site names of every report, made once each.
        let names = report::Names::new(model);
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
        // Further examples, up to `MAX_EXAMPLES_LISTED` in the whole report: the root causes
        // are consumed as their reports are made, so that a trace of tens of thousands of them
        // holds each once, not in both forms.
        let mut examples = ExampleBudget {
            max: max_examples,
            listed: 0,
            root_causes: 0,
            unlisted: 0,
        };
        let mut violations: Vec<report::Violation> = inst_rc
            .into_iter()
            .map(|rc| {
                let mut v =
                    report::root_cause_violation(&names, &rc, &inst_graph, examples.take(&rc));
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
        let inst_sets: HashSet<Vec<ClassId>> = inst.iter().map(|c| class_set(model, c)).collect();
        let mut filtered: Vec<report::Filtered> = inst
            .iter()
            .filter(|c| c.filter.is_some())
            .map(|c| report::filtered(&names, c))
            .collect();
        for rc in class_rc {
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
                None => violations.push(report::root_cause_violation(
                    &names,
                    &rc,
                    &class_graph,
                    examples.take(&rc),
                )),
            }
        }
        for c in class.iter().filter(|c| c.filter.is_some()) {
            if !inst_sets.contains(&class_set(model, c)) {
                filtered.push(report::filtered(&names, c));
            }
        }

        // One bug, one finding: the same cycle in several processes (two test binaries running the
        // same code) has one id, as has the same code on several instances of a class (its sites
        // are the same). Without a single site, though, an id is the class keys alone, and two
        // different cycles over instances of the same classes (locks 1, 2 and locks 2, 3 of one
        // class) had one id: the second was dropped without a word, its edges named nowhere.
        // Such a one is kept, under an id that also hashes its locks' names (when unsure, report:
        // the same siteless cycle in two processes is two findings).
        let mut seen_ids: HashSet<String> = HashSet::new();
        violations.retain_mut(|v| {
            if seen_ids.insert(v.id.clone()) {
                return true;
            }
            if v.edges.iter().any(|e| e.site.is_some()) {
                return false;
            }
            let mut parts = vec![v.id.clone()];
            let mut names: Vec<String> = v.locks.iter().map(|l| l.name.clone()).collect();
            names.sort();
            parts.extend(names);
            v.id = report::fnv(&parts);
            seen_ids.insert(v.id.clone())
        });
        // A request of a lock the thread already holds: no cycle needed.
        violations.extend(self_deadlock::violations(model));
        // A wait cycle through a semaphore the run was seen in (the runtime's `deadlock`).
        let cycles = wait_cycle::violations(model, &violations);
        violations.extend(cycles);
        // Permits of a semaphore requested holding some of them, by threads that can hold them all,
        // unless a finding of the same locks is already reported (a wait cycle through the
        // semaphore seen in the run: the same bug).
        let nests: Vec<_> = self_deadlock::permit_nest_violations(model)
            .into_iter()
            .filter(|n| {
                !violations.iter().any(|v| {
                    v.kind == n.kind && v.locks.iter().all(|l| l.class == n.locks[0].class)
                })
            })
            .collect();
        violations.extend(nests);
        // A sync guard held across an `.await` (the runtime's `held_across_await` events).
        violations.extend(held_across_await::violations(model));
        // A lock a fork left held, requested by the child's only thread (`left_held` events).
        violations.extend(fork_hang::violations(model));
        // A condvar notified without its waiters' mutex (opt-in: empty unless the rule was on).
        violations.extend(lost_wakeup::violations(model));
        violations.extend(condvar_wait::violations(model));
        let (declared, declared_warnings) =
            hierarchy::check_declared(model, &opts.config.hierarchy);
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

        if examples.unlisted > 0 {
            warnings.push(format!(
                "further example cycles are listed for {} of {} root causes ({} examples, at most {} in a report): the other {} list only their shortest cycle (the lock graph of this trace is beyond any real program). A listing bound only, the verdicts are not affected; no option raises this budget of the report, a smaller --max-examples lets more root causes list theirs",
                examples.root_causes - examples.unlisted,
                examples.root_causes,
                examples.listed,
                examples.max,
                examples.unlisted,
            ));
        }
        phase("violations");
        let hierarchy = hierarchy.join();
        (hierarchy, violations, filtered, suppressed)
    });
    if hierarchy.local_search_stopped > 0 {
        warnings.push(format!(
            "the suggested change set is not proven minimal in {} component(s): the local search stopped after {} passes",
            hierarchy.local_search_stopped,
            hierarchy::MAX_LOCAL_SEARCH_PASSES
        ));
    }
    if hierarchy.not_minimal > 0 {
        warnings.push(format!(
            "the suggested change set is not proven minimal in {} component(s): the pass that puts back edges closing no cycle was beyond its bounds ({} MiB, {} words of work)",
            hierarchy.not_minimal,
            hierarchy::MINIMAL_PASS_MAX_BYTES >> 20,
            hierarchy::MINIMAL_PASS_MAX_WORK
        ));
    }
    if hierarchy.exchange_stopped > 0 {
        warnings.push(format!(
            "the suggested change set is not proven minimal in {} component(s): the exchange of cut edges for lighter cuts stopped at its budget ({} edges read, a flow network of {} edges)",
            hierarchy.exchange_stopped,
            hierarchy::EXCHANGE_MAX_WORK,
            hierarchy::EXCHANGE_NETWORK_MAX_EDGES
        ));
    }
    if hierarchy.removed_edges_unlisted > 0 {
        warnings.push(format!(
            "the suggested hierarchy lists {} of its {} edges to change (those of violations first; at most {}): the lock graph of this trace is beyond any real program",
            hierarchy.removed_edges.len(),
            hierarchy.removed_edges.len() as u64 + hierarchy.removed_edges_unlisted,
            hierarchy::MAX_REMOVED_EDGES_LISTED
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
        filtered_complete,
        suppressed: suppressed.len() as u64,
        baselined: violations.iter().filter(|v| v.baselined).count() as u64,
        hold_resolution_ns: model.hold_resolution_ns,
        hold_times: timeouts::hold_times_note(model.hold_resolution_ns),
        lost_wakeup_rule: opts.lost_wakeups,
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
    // An empty trace (a `.lct` file of its magic alone, an empty STD file, ...) reads without
    // error and gives an empty report: said, so that a recording that caught nothing (or the
    // wrong file) does not pass for a clean run.
    for t in model.traces.iter().filter(|t| t.events == 0) {
        warnings.push(format!("{}: no events", t.name));
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

#[cfg(test)]
mod tests {
    use super::*;
    use lockcheck_core::trace::Event;

    /// A fresh directory under the system's temporary one, removed at the end.
    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Several traces of different formats and sizes (one cut off mid-line), so that reading
    /// threads run ahead and batches cross file boundaries.
    fn traces(tag: &str) -> (TempDir, Vec<PathBuf>) {
        let dir =
            std::env::temp_dir().join(format!("lockcheck-read-par-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = TempDir(dir);
        let mut files = Vec::new();
        for (i, events) in [30_000u64, 500, 20_000, 1, 9_000].into_iter().enumerate() {
            let mut bytes = Vec::new();
            for e in synth::Synth::new(synth::SynthConfig {
                events,
                seed: i as u64 + 1,
                inversion_every: 50,
                ..Default::default()
            }) {
                e.write_line(&mut bytes);
            }
            if i == 2 {
                // Cut inside the last line: read up to it under `allow_truncated`.
                bytes.truncate(bytes.len() - 5);
            }
            let path = dir.0.join(format!("t{i}.jsonl"));
            std::fs::write(&path, bytes).unwrap();
            files.push(path);
        }
        let std_path = dir.0.join("t5.std");
        let mut text = String::new();
        for k in 0..3000 {
            text.push_str(&format!(
                "T1|acq(L{a})|1\nT1|acq(L{b})|2\nT1|rel(L{b})|3\nT1|rel(L{a})|4\nT2|acq(L{b})|5\nT2|acq(L{a})|6\nT2|rel(L{a})|7\nT2|rel(L{b})|8\n",
                a = k % 7,
                b = (k % 7) + 1
            ));
        }
        std::fs::write(&std_path, text).unwrap();
        files.push(std_path);
        (dir, files)
    }

    fn report_with(files: &[PathBuf], opts: &Options, threads: usize) -> Result<String, ReadError> {
        let sizes: Vec<u64> = files
            .iter()
            .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
            .collect();
        let mut b = ModelBuilder::new();
        let mut order = Vec::new();
        read_into(
            files,
            opts,
            &sizes,
            threads,
            &mut |p| {
                if let Progress::Reading { index, .. } = p {
                    order.push(index);
                }
            },
            &mut b,
        )?;
        assert_eq!(
            order,
            (0..order.len()).collect::<Vec<_>>(),
            "files replayed out of order"
        );
        let report = analyze_model(&b.finish(), opts);
        Ok(serde_json::to_string(&report).unwrap())
    }

    /// The same files read one after the other with the plain reader: what the parallel read
    /// must reproduce.
    fn report_sequential(files: &[PathBuf], opts: &Options) -> String {
        let mut b = ModelBuilder::new();
        for f in files {
            let mut reader = TraceReader::open(f, None)
                .unwrap()
                .allow_truncated(opts.allow_truncated);
            b.begin_trace(reader.name());
            for e in &mut reader {
                let e: Event = e.unwrap();
                b.event(&e);
            }
            if let Some(p) = reader.truncated() {
                b.set_truncated(fmt_position(&p));
            }
            b.add_bytes(std::fs::metadata(f).unwrap().len());
            b.end_trace();
        }
        serde_json::to_string(&analyze_model(&b.finish(), opts)).unwrap()
    }

    #[test]
    fn the_report_does_not_depend_on_the_number_of_reading_threads() {
        let (_dir, files) = traces("same");
        let opts = Options {
            allow_truncated: true,
            ..Options::default()
        };
        let reference = report_sequential(&files, &opts);
        assert!(reference.contains("truncated at"), "{reference}");
        for threads in [1, 2, 3, 8] {
            assert_eq!(
                report_with(&files, &opts, threads).unwrap(),
                reference,
                "{threads} threads"
            );
        }
    }

    #[test]
    fn the_first_bad_file_in_order_is_the_error_whatever_the_threads() {
        let (dir, mut files) = traces("bad");
        let bad = dir.0.join("bad.std");
        std::fs::write(&bad, "T1|acq(L1)|1\nT1|oops(L1)|2\n").unwrap();
        files.insert(3, bad);
        files.insert(5, dir.0.join("missing.jsonl"));
        // Without `allow_truncated` the cut file (index 2) is the first error.
        let strict = Options::default();
        let errors: Vec<String> = [1, 2, 8]
            .iter()
            .map(|&t| report_with(&files, &strict, t).unwrap_err().to_string())
            .collect();
        assert!(
            errors[0].contains("t2.jsonl") && errors[0].contains("--allow-truncated"),
            "{errors:?}"
        );
        assert!(errors.iter().all(|e| e == &errors[0]), "{errors:?}");
        // With it, the malformed STD line.
        let lenient = Options {
            allow_truncated: true,
            ..Options::default()
        };
        let errors: Vec<String> = [1, 2, 8]
            .iter()
            .map(|&t| report_with(&files, &lenient, t).unwrap_err().to_string())
            .collect();
        assert!(errors[0].contains("bad.std:2:"), "{errors:?}");
        assert!(errors.iter().all(|e| e == &errors[0]), "{errors:?}");
    }

    /// A dense random trace's root causes and their examples, first with every example
    /// listed, then with a budget that the last root causes with examples do not fit: those
    /// list none (all or nothing each), a warning says how many, and nothing else changes.
    #[test]
    fn examples_past_the_report_budget_are_not_listed_and_said() {
        let (model, full) = (1..40)
            .map(|seed| {
                let mut b = ModelBuilder::new();
                b.begin_trace("t");
                for e in crate::model::tests::random_events(seed, 8, 6, 1500) {
                    b.event(&e);
                }
                let model = b.finish();
                let full = analyze_model(&model, &Options::default());
                (model, full)
            })
            .find(|(_, r)| {
                r.violations
                    .iter()
                    .filter(|v| {
                        v.root_cause
                            .as_ref()
                            .is_some_and(|rc| !rc.examples.is_empty())
                    })
                    .count()
                    >= 3
            })
            .expect("a seed with three root causes with examples");
        let counts: Vec<usize> = full
            .violations
            .iter()
            .map(|v| v.root_cause.as_ref().map_or(0, |rc| rc.examples.len()))
            .collect();
        let total: usize = counts.iter().sum();
        assert!(total < report::MAX_EXAMPLES_LISTED, "{total}");
        assert!(!full.warnings.iter().any(|w| w.contains("further example")));
        // The budget: all but the last root cause with examples fit.
        let last = counts.iter().rposition(|&n| n > 0).unwrap();
        let max = total - 1;
        let capped = analyze_model_listing(&model, &Options::default(), max);
        // The reference: root causes in report order, each listing all of its examples while
        // the sum stays within the budget.
        let mut listed = 0;
        let mut unlisted = 0;
        for (i, (a, b)) in full.violations.iter().zip(&capped.violations).enumerate() {
            let n = counts[i];
            let fits = listed + n <= max;
            if fits {
                listed += n;
            } else {
                unlisted += 1;
            }
            let mut a = a.clone();
            if !fits {
                a.root_cause.as_mut().unwrap().examples.clear();
            }
            assert_eq!(&a, b, "violation {i}");
        }
        assert_eq!(full.violations.len(), capped.violations.len());
        assert!(unlisted >= 1);
        assert!(capped.violations[last]
            .root_cause
            .as_ref()
            .unwrap()
            .examples
            .is_empty());
        let rcs = counts.len()
            - full
                .violations
                .iter()
                .filter(|v| v.root_cause.is_none())
                .count();
        let note = format!(
            "further example cycles are listed for {} of {rcs} root causes ({listed} examples, at most {max} in a report)",
            rcs - unlisted
        );
        assert!(
            capped.warnings.iter().any(|w| w.starts_with(&note)
                && w.contains("no option raises")
                && w.contains("--max-examples")
                && !w.contains("incomplete")),
            "{note}\n{:?}",
            capped.warnings
        );
        assert_eq!(capped.warnings.len(), full.warnings.len() + 1);
        assert_eq!(
            capped.summary, full.summary,
            "a listing bound: the search is as complete"
        );
    }
}
