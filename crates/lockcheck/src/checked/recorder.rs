//! Trace recording: `LOCKCHECK_TRACE=path` (or [`crate::record::start`]) writes every lock event
//! as JSON Lines (`docs/trace-format.md`).
//!
//! Recording must not serialize the threads it observes: each thread appends compact records to
//! its own buffer (a mutex only the background writer ever contends on), and the writer formats
//! them. Definitions (threads, classes, sites with their backtraces, lock instances) are emitted
//! lazily by the writer the first time a record uses them, so they always precede their uses and a
//! restarted recording is complete on its own. Every 50 ms the writer flushes all buffers to the
//! file, so a process killed mid-run (or hung in a deadlock and killed by CI) leaves a trace that
//! analyzes up to its last complete line. Fork and join flush the parent's or the child's buffer
//! synchronously, so that the file orders a `fork` before the child's events and the child's events
//! before the `join`.
//!
//! The deciding event is never lost: a blocking acquisition made while holding a lock is recorded
//! as a `request` before the detector checks it ([`on_request`]), so an acquisition the detector
//! stops with a panic is in the trace; a report flushes every buffer, a thread's buffer is written
//! when the thread ends (also unwound by a panic), and the process's at exit (also when `main`
//! panics). `panic = "abort"` skips the exit handler: what the report's flush wrote is kept.

use super::class::{class_info, Ids};
use super::report::Violation;
use super::state::STATE;
use backtrace::Backtrace;
use lockcheck_core::trace::{ClassStats, Event, Frame, How, LockKind, Mode, FORMAT_VERSION};
use parking_lot::Mutex as PlMutex;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::panic::Location;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Site = &'static Location<'static>;

/// One event as the observed thread records it: plain data, no formatting.
#[derive(Clone, Copy)]
enum Rec {
    /// A blocking acquisition about to be checked (and maybe stopped by a report).
    Request {
        l: u64,
        c: u32,
        m: Mode,
        site: Site,
        /// A semaphore's permits (0 for other locks): a self-deadlock on a semaphore is holding
        /// all of them, which the analyzer can only see if it knows how many there are.
        permits: u64,
    },
    Acquire {
        l: u64,
        c: u32,
        m: Mode,
        how: How,
        site: Site,
        wait_ns: u64,
    },
    Fail {
        l: u64,
        c: u32,
        m: Mode,
        how: How,
        site: Site,
        wait_ns: u64,
    },
    Release {
        l: u64,
        c: u32,
        hold_ns: u64,
    },
    Convert {
        l: u64,
        c: u32,
        m: Mode,
    },
    CondWait {
        cv: u64,
        l: u64,
        c: u32,
    },
    Fork {
        child: u64,
    },
    Join {
        child: u64,
    },
    Drop {
        l: u64,
    },
    /// A sync guard held across an `.await` (feature `tokio`, see `Event::HeldAcrossAwait`).
    #[cfg(feature = "tokio")]
    HeldAcrossAwait {
        l: u64,
        c: u32,
        m: Mode,
        site: Site,
        h: u64,
        hc: u32,
        ht: u64,
        hsite: Site,
    },
}

/// A thread's buffer for one recording generation.
struct ThreadBuf {
    thread: u64,
    name: Option<String>,
    generation: u64,
    recs: PlMutex<Vec<Rec>>,
}

/// Records per buffer before the thread flushes it itself.
const FLUSH_AT: usize = 8192;

const UNINIT: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;
static STATE_FLAG: AtomicU8 = AtomicU8::new(UNINIT);
static GENERATION: AtomicU64 = AtomicU64::new(0);
static BUFFERS: PlMutex<Vec<Arc<ThreadBuf>>> = PlMutex::new(Vec::new());
static WRITER: PlMutex<Option<Writer>> = PlMutex::new(None);
/// Full buffers handed to the writer, oldest first. Lock order: `WRITER`, then `PENDING`, then a
/// thread's `recs`.
static PENDING: PlMutex<Vec<(Arc<ThreadBuf>, Vec<Rec>)>> = PlMutex::new(Vec::new());
/// Full buffers waiting before the observed thread formats them itself (bounds memory when the
/// program produces events faster than the writer can format them).
const MAX_PENDING: usize = 16;
/// Drained buffers kept for reuse: a fresh 8192-record buffer per batch costs page faults.
static SPARE: PlMutex<Vec<Vec<Rec>>> = PlMutex::new(Vec::new());

fn spare_buffer() -> Vec<Rec> {
    SPARE
        .lock()
        .pop()
        .unwrap_or_else(|| Vec::with_capacity(FLUSH_AT))
}

fn return_buffer(mut v: Vec<Rec>) {
    v.clear();
    let mut spare = SPARE.lock();
    if spare.len() < MAX_PENDING + 2 && v.capacity() >= FLUSH_AT {
        spare.push(v);
    }
}
/// Backtraces of new acquisition sites, captured by the acquiring thread, resolved by the writer.
static SITE_TRACES: PlMutex<Option<HashMap<usize, Backtrace>>> = PlMutex::new(None);
static SEEN_SITES: PlMutex<Option<HashSet<usize>>> = PlMutex::new(None);

/// A thread's buffer slot. When the thread ends, normally or unwound by a panic (a report under
/// `LOCKCHECK=panic` stops the thread at the acquisition it recorded last), its last records are
/// written at once rather than at the writer's next pass, so that a process that dies right after
/// (killed, or aborting) still has them. The main thread's are written by the exit handler.
struct Slot(RefCell<Option<Arc<ThreadBuf>>>);

impl Drop for Slot {
    fn drop(&mut self) {
        if STATE_FLAG.load(Ordering::Relaxed) != ON {
            return;
        }
        let pending = self
            .0
            .get_mut()
            .as_ref()
            .is_some_and(|b| !b.recs.lock().is_empty());
        if pending {
            flush_all();
        }
    }
}

thread_local! {
    static BUF: Slot = const { Slot(RefCell::new(None)) };
}

/// Whether events are being recorded (reads `LOCKCHECK_TRACE` on first use).
#[inline]
pub(crate) fn recording() -> bool {
    match STATE_FLAG.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => init_from_env(),
    }
}

/// Whether recording is on, without reading the environment.
pub(crate) fn recording_now() -> bool {
    STATE_FLAG.load(Ordering::Relaxed) == ON
}

#[cold]
fn init_from_env() -> bool {
    // Claim the initialization so that concurrent first uses do not start two recordings.
    if STATE_FLAG
        .compare_exchange(UNINIT, OFF, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return STATE_FLAG.load(Ordering::Relaxed) == ON;
    }
    match std::env::var_os("LOCKCHECK_TRACE") {
        Some(p) if !p.is_empty() => match start(Path::new(&p)) {
            Ok(()) => true,
            Err(e) => {
                eprintln!(
                    "lockcheck: cannot record to LOCKCHECK_TRACE={}: {e}",
                    p.to_string_lossy()
                );
                false
            }
        },
        _ => false,
    }
}

/// Whether the trace at `path` is written in lockcheck's binary `.lct` format (its extension is
/// `.lct`, or `LOCKCHECK_TRACE_FORMAT=lct`) rather than JSON Lines.
fn writes_lct(path: &Path) -> bool {
    match std::env::var("LOCKCHECK_TRACE_FORMAT") {
        Ok(f) if !f.is_empty() => f.eq_ignore_ascii_case("lct"),
        _ => path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("lct")),
    }
}

/// Expands `{pid}` in a trace path.
pub(crate) fn expand_path(path: &Path) -> PathBuf {
    let s = path.to_string_lossy();
    if s.contains("{pid}") {
        PathBuf::from(s.replace("{pid}", &std::process::id().to_string()))
    } else {
        path.to_path_buf()
    }
}

/// Starts recording to `path` (`{pid}` replaced), ending any recording in progress.
pub(crate) fn start(path: &Path) -> io::Result<()> {
    let _ = stop();
    let path = expand_path(path);
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let file = File::create(&path)?;
    let lct = writes_lct(&path);
    let mut out = BufWriter::with_capacity(1 << 16, file);
    if lct {
        out.write_all(&lockcheck_core::lct::MAGIC)?;
    }
    let mut w = Writer {
        out,
        lct,
        path,
        classes: HashSet::default(),
        sites: HashMap::default(),
        locks: HashSet::default(),
        permits_known: HashSet::default(),
        threads: HashSet::default(),
        stats: HashMap::default(),
        line: Vec::with_capacity(256),
        deferred_drops: Vec::new(),
        ready_drops: Vec::new(),
        failed: None,
    };
    let program = std::env::args().next().unwrap_or_default();
    let start_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    w.emit(&Event::Header {
        version: FORMAT_VERSION,
        pid: std::process::id(),
        program,
        start_unix_ms,
    });
    w.out.flush()?;
    let generation = GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
    *WRITER.lock() = Some(w);
    STATE_FLAG.store(ON, Ordering::Release);
    crate::config::refresh_flags();
    register_exit_flush();
    std::thread::Builder::new()
        .name("lockcheck-writer".into())
        .spawn(move || background(generation))?;
    Ok(())
}

/// Stops recording: flushes every buffer, writes the per-class statistics, closes the file.
/// Returns the path written, if a recording was in progress.
pub(crate) fn stop() -> io::Result<Option<PathBuf>> {
    if STATE_FLAG.load(Ordering::Acquire) == ON {
        STATE_FLAG.store(OFF, Ordering::Release);
        crate::config::refresh_flags();
    }
    GENERATION.fetch_add(1, Ordering::AcqRel);
    let mut guard = WRITER.lock();
    let Some(mut w) = guard.take() else {
        return Ok(None);
    };
    for (b, recs) in std::mem::take(&mut *PENDING.lock()) {
        w.drain_recs(&b, recs);
    }
    let buffers = std::mem::take(&mut *BUFFERS.lock());
    for b in &buffers {
        w.drain(b);
    }
    // Every buffer is drained and no thread records any more: write all the drops.
    w.end_pass();
    w.end_pass();
    let mut stats: Vec<_> = w.stats.drain().collect();
    stats.sort_by_key(|(c, _)| *c);
    for (c, s) in stats {
        w.emit(&Event::Stats { c, stats: s });
    }
    let r = w.out.flush();
    w.note_error(r);
    if let Some(e) = w.failed {
        return Err(io::Error::new(
            e.kind(),
            format!(
                "writing the trace {} failed ({e}): it is incomplete",
                w.path.display()
            ),
        ));
    }
    Ok(Some(w.path))
}

/// Flushes every thread's buffer to the file now.
pub(crate) fn flush_all() {
    let mut guard = WRITER.lock();
    let Some(w) = guard.as_mut() else { return };
    // Holding `PENDING` while the threads' buffers are drained keeps each thread's batches in
    // order: no full buffer can be handed over between the two steps.
    let mut pending = PENDING.lock();
    for (b, recs) in std::mem::take(&mut *pending) {
        w.drain_recs(&b, recs);
    }
    let buffers: Vec<Arc<ThreadBuf>> = {
        let mut list = BUFFERS.lock();
        // Threads that ended (only the list holds their buffer) leave once drained.
        let current = GENERATION.load(Ordering::Acquire);
        let out = list.clone();
        list.retain(|b| {
            b.generation == current && (Arc::strong_count(b) > 2 || !b.recs.lock().is_empty())
        });
        out
    };
    for b in &buffers {
        w.drain(b);
    }
    w.end_pass();
    drop(pending);
    let r = w.out.flush();
    w.note_error(r);
}

fn background(generation: u64) {
    // Everything this thread does is lockcheck's own work.
    let _ = STATE.try_with(|s| s.busy.set(true));
    while GENERATION.load(Ordering::Acquire) == generation {
        std::thread::sleep(Duration::from_millis(50));
        if GENERATION.load(Ordering::Acquire) != generation {
            break;
        }
        flush_all();
    }
}

/// Flush at normal process exit (`main` returning or `std::process::exit`).
fn register_exit_flush() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        extern "C" fn at_exit() {
            let _ = stop();
        }
        extern "C" {
            fn atexit(cb: extern "C" fn()) -> std::os::raw::c_int;
        }
        // SAFETY: registering a plain `extern "C" fn` with the C runtime's exit handlers.
        unsafe {
            atexit(at_exit);
        }
    });
}

fn push(rec: Rec) {
    let _ = BUF.try_with(|cell| {
        let Ok(mut slot) = cell.0.try_borrow_mut() else {
            return;
        };
        let generation = GENERATION.load(Ordering::Acquire);
        if slot.as_ref().is_none_or(|b| b.generation != generation) {
            let thread = STATE.try_with(|s| s.id()).unwrap_or(0);
            let b = Arc::new(ThreadBuf {
                thread,
                name: std::thread::current().name().map(str::to_owned),
                generation,
                recs: PlMutex::new(spare_buffer()),
            });
            BUFFERS.lock().push(Arc::clone(&b));
            *slot = Some(b);
        }
        let b = slot.as_ref().expect("just set");
        let full = {
            let mut recs = b.recs.lock();
            recs.push(rec);
            recs.len() >= FLUSH_AT
        };
        if full {
            // Hand the full buffer to the background writer: the observed thread does not
            // format, unless the writer is too far behind.
            let backlog = {
                let mut pending = PENDING.lock();
                let recs = std::mem::replace(&mut *b.recs.lock(), spare_buffer());
                pending.push((Arc::clone(b), recs));
                pending.len()
            };
            drop(slot);
            if backlog >= MAX_PENDING {
                flush_all();
            }
        }
    });
}

fn flush_one(_b: &ThreadBuf) {
    // The thread's earlier batches may be pending: flush everything, in order.
    flush_all();
}

/// Flushes the calling thread's buffer (at thread end, before a join can return).
pub(crate) fn flush_thread() {
    if STATE_FLAG.load(Ordering::Relaxed) != ON {
        return;
    }
    let b = BUF
        .try_with(|cell| cell.0.try_borrow().ok().and_then(|s| s.clone()))
        .ok()
        .flatten();
    if let Some(b) = b {
        flush_one(&b);
    }
}

fn note_site(site: Site) {
    let key = site as *const Location<'static> as usize;
    let new = SEEN_SITES
        .lock()
        .get_or_insert_with(HashSet::new)
        .insert(key);
    if new && crate::config::backtraces() {
        let bt = Backtrace::new_unresolved();
        SITE_TRACES
            .lock()
            .get_or_insert_with(HashMap::new)
            .insert(key, bt);
    }
}

/// Per-thread cache of sites already announced, so that the global set is touched once per site
/// and thread. Direct-mapped by address; a collision only costs a global lookup.
fn site_seen_locally(site: Site) -> bool {
    thread_local! {
        static SEEN: RefCell<[usize; 64]> = const { RefCell::new([0; 64]) };
    }
    let key = site as *const Location<'static> as usize;
    SEEN.try_with(|s| {
        let Ok(mut s) = s.try_borrow_mut() else {
            return true;
        };
        let slot = &mut s[(key >> 4) & 63];
        if *slot == key {
            true
        } else {
            *slot = key;
            false
        }
    })
    .unwrap_or(true)
}

/// A blocking acquisition is about to be checked. Called before the checks, so that an
/// acquisition the detector stops with a panic still reaches the trace (the analyzer then finds the
/// same violation); the report's flush (`on_violation`) or the thread's exit writes it out.
#[cold]
#[inline(never)]
pub(crate) fn on_request(ids: Ids, kind: LockKind, mode: Mode, site: Site, capacity: usize) {
    if !site_seen_locally(site) {
        note_site(site);
    }
    push(Rec::Request {
        l: ids.inst,
        c: ids.class,
        m: mode,
        site,
        permits: if kind == LockKind::Semaphore {
            capacity as u64
        } else {
            0
        },
    });
}

pub(crate) fn on_acquire(ids: Ids, mode: Mode, how: How, site: Site, wait_ns: u64) {
    if !site_seen_locally(site) {
        note_site(site);
    }
    push(Rec::Acquire {
        l: ids.inst,
        c: ids.class,
        m: mode,
        how,
        site,
        wait_ns,
    });
}

pub(crate) fn on_fail(ids: Ids, mode: Mode, how: How, site: Site, wait_ns: u64) {
    if !site_seen_locally(site) {
        note_site(site);
    }
    push(Rec::Fail {
        l: ids.inst,
        c: ids.class,
        m: mode,
        how,
        site,
        wait_ns,
    });
}

pub(crate) fn on_release(ids: Ids, hold_ns: u64) {
    push(Rec::Release {
        l: ids.inst,
        c: ids.class,
        hold_ns,
    });
}

pub(crate) fn on_convert(ids: Ids, to: Mode) {
    push(Rec::Convert {
        l: ids.inst,
        c: ids.class,
        m: to,
    });
}

pub(crate) fn on_drop(ids: Ids) {
    push(Rec::Drop { l: ids.inst });
}

pub(crate) fn on_cond_wait(cv: u64, mutex: Ids) {
    if recording() {
        push(Rec::CondWait {
            cv,
            l: mutex.inst,
            c: mutex.class,
        });
    }
}

pub(crate) fn on_fork(_parent: u64, child: u64) {
    if recording() {
        push(Rec::Fork { child });
        flush_thread();
    }
}

pub(crate) fn on_join(_parent: u64, child: u64) {
    if recording() {
        push(Rec::Join { child });
    }
}

pub(crate) fn on_violation(_v: &Violation) {
    // The analyzer finds the violation again from the events; flushing now makes sure a program
    // that panics on it and aborts still leaves them in the trace.
    if STATE_FLAG.load(Ordering::Relaxed) == ON {
        flush_all();
    }
}

/// A hasher for the writer's integer keys (lock numbers, class numbers, site addresses): one
/// multiply instead of SipHash, which dominated the writer's profile. The keys are not chosen by
/// an adversary. Written by hand: a hash crate for one function is not worth a dependency.
#[derive(Default, Clone, Copy)]
struct IntHasher(u64);

impl std::hash::Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type FastHash = std::hash::BuildHasherDefault<IntHasher>;

/// The formatting side: owns the file and what it has defined so far.
struct Writer {
    out: BufWriter<File>,
    /// Records in `.lct` ([`lockcheck_core::lct`]) instead of JSON Lines.
    lct: bool,
    path: PathBuf,
    classes: HashSet<u32, FastHash>,
    sites: HashMap<usize, u32, FastHash>,
    locks: HashSet<u64, FastHash>,
    /// Semaphores whose `lock` event carried their permits.
    permits_known: HashSet<u64, FastHash>,
    threads: HashSet<u64, FastHash>,
    stats: HashMap<u32, ClassStats, FastHash>,
    line: Vec<u8>,
    /// Drops seen in this pass, written at the end of the next one: other threads' earlier uses
    /// of the lock may still sit in buffers drained before they were pushed, or after the
    /// dropping thread's; one more full pass has written them all.
    deferred_drops: Vec<u64>,
    /// Drops of the previous pass, written at the end of this one.
    ready_drops: Vec<u64>,
    /// The first write error (disk full, ...): from then on events are lost, which is said on
    /// stderr at once and returned by [`stop`], never silent.
    failed: Option<io::Error>,
}

impl Writer {
    /// Ends a flush pass: the drops seen in it, now that every buffer's earlier events are out.
    fn end_pass(&mut self) {
        let ready = std::mem::replace(
            &mut self.ready_drops,
            std::mem::take(&mut self.deferred_drops),
        );
        for l in ready {
            if self.locks.remove(&l) {
                self.permits_known.remove(&l);
                self.emit(&Event::Drop { l });
            }
        }
    }

    fn emit(&mut self, e: &Event) {
        self.line.clear();
        if self.lct {
            lockcheck_core::lct::encode(e, &mut self.line);
        } else if !write_hot(e, &mut self.line) {
            e.write_line(&mut self.line);
        }
        // After an I/O error (disk full) events are dropped, said once (see `failed`); the trace
        // stays line-complete (in `.lct`, the reader stops at a cut record as at a cut line).
        if self.failed.is_none() {
            let r = self.out.write_all(&self.line);
            self.note_error(r);
        }
    }

    /// Records the first write error and says so on stderr: the trace is incomplete, so an
    /// analysis of it may miss what the run did.
    #[cold]
    fn note_error(&mut self, r: io::Result<()>) {
        if let (Err(e), None) = (r, &self.failed) {
            eprintln!(
                "lockcheck: incomplete trace: writing {} failed ({e}); later events are lost, so \
                 `lockcheck analyze` on it may miss findings",
                self.path.display()
            );
            self.failed = Some(e);
        }
    }

    fn drain(&mut self, b: &ThreadBuf) {
        let recs = {
            let mut recs = b.recs.lock();
            if recs.is_empty() {
                return;
            }
            // Swap in a spare so that the thread keeps a buffer with capacity.
            std::mem::replace(&mut *recs, spare_buffer())
        };
        self.drain_recs(b, recs);
    }

    fn drain_recs(&mut self, b: &ThreadBuf, recs: Vec<Rec>) {
        if recs.is_empty() {
            return_buffer(recs);
            return;
        }
        if self.threads.insert(b.thread) {
            self.emit(&Event::Thread {
                t: b.thread,
                name: b.name.clone(),
            });
        }
        let mut recs = recs;
        for r in recs.drain(..) {
            self.format(b.thread, r);
        }
        return_buffer(recs);
    }

    fn class(&mut self, c: u32) -> u32 {
        if self.classes.insert(c) {
            let info = class_info(c);
            self.emit(&Event::Class {
                c,
                key: info.key,
                kind: info.kind,
            });
        }
        c
    }

    fn lock(&mut self, l: u64, c: u32) -> u64 {
        if !self.locks.contains(&l) {
            self.class(c);
            self.locks.insert(l);
            self.emit(&Event::Lock {
                l,
                c,
                permits: None,
            });
        }
        l
    }

    /// Declares a semaphore with its permits: with the first use, or (the lock was declared by an
    /// earlier use that did not know them) by a repeated `lock` event, which readers accept to
    /// learn the permits.
    fn lock_permits(&mut self, l: u64, c: u32, permits: u64) -> u64 {
        if permits == 0 || self.permits_known.contains(&l) {
            return self.lock(l, c);
        }
        self.class(c);
        self.locks.insert(l);
        self.permits_known.insert(l);
        self.emit(&Event::Lock {
            l,
            c,
            permits: Some(permits),
        });
        l
    }

    fn site(&mut self, site: Site) -> u32 {
        let key = site as *const Location<'static> as usize;
        if let Some(&s) = self.sites.get(&key) {
            return s;
        }
        let s = self.sites.len() as u32 + 1;
        self.sites.insert(key, s);
        let bt = SITE_TRACES.lock().as_mut().and_then(|m| m.remove(&key));
        let frames = bt.map(frames_of).unwrap_or_default();
        self.emit(&Event::Site {
            s,
            loc: site.to_string(),
            frames,
        });
        s
    }

    fn format(&mut self, t: u64, r: Rec) {
        let e = match r {
            Rec::Request {
                l,
                c,
                m,
                site,
                permits,
            } => {
                let l = self.lock_permits(l, c, permits);
                let s = Some(self.site(site));
                Event::Request { t, l, m, s }
            }
            Rec::Acquire {
                l,
                c,
                m,
                how,
                site,
                wait_ns,
            } => {
                let l = self.lock(l, c);
                let s = Some(self.site(site));
                let st = self.stats.entry(c).or_default();
                st.acquisitions += 1;
                if wait_ns > 0 {
                    st.contended += 1;
                    st.wait_total_ns += wait_ns;
                    st.wait_max_ns = st.wait_max_ns.max(wait_ns);
                }
                Event::Acquire {
                    t,
                    l,
                    m,
                    how,
                    s,
                    wait_ns,
                }
            }
            Rec::Fail {
                l,
                c,
                m,
                how,
                site,
                wait_ns,
            } => {
                let l = self.lock(l, c);
                let s = Some(self.site(site));
                Event::Fail {
                    t,
                    l,
                    m,
                    how,
                    s,
                    wait_ns,
                }
            }
            Rec::Release { l, c, hold_ns } => {
                let l = self.lock(l, c);
                let st = self.stats.entry(c).or_default();
                st.hold_total_ns += hold_ns;
                st.hold_max_ns = st.hold_max_ns.max(hold_ns);
                Event::Release { t, l, hold_ns }
            }
            Rec::Convert { l, c, m } => {
                let l = self.lock(l, c);
                Event::Convert { t, l, m }
            }
            Rec::CondWait { cv, l, c } => {
                let l = self.lock(l, c);
                Event::CondWait { t, cv, l }
            }
            Rec::Fork { child } => Event::Fork { t, child },
            Rec::Join { child } => Event::Join { t, child },
            #[cfg(feature = "tokio")]
            Rec::HeldAcrossAwait {
                l,
                c,
                m,
                site,
                h,
                hc,
                ht,
                hsite,
            } => {
                let l = self.lock(l, c);
                let h = self.lock(h, hc);
                let s = Some(self.site(site));
                let hs = Some(self.site(hsite));
                Event::HeldAcrossAwait {
                    t,
                    l,
                    m,
                    s,
                    h,
                    ht,
                    hs,
                }
            }
            Rec::Drop { l } => {
                if self.locks.contains(&l) {
                    self.deferred_drops.push(l);
                }
                return; // written by `end_pass`
            }
        };
        self.emit(&e);
    }
}

/// The user frames of a site's backtrace (lockcheck's and std's own frames skipped).
fn frames_of(mut bt: Backtrace) -> Vec<Frame> {
    bt.resolve();
    let mut out = Vec::new();
    for frame in bt.frames() {
        for sym in frame.symbols() {
            let name = sym.name().map(|n| format!("{n:#}"));
            let n = name.as_deref().unwrap_or("?");
            if n.contains("__rust_begin_short_backtrace") || n.starts_with("std::rt::lang_start") {
                return out;
            }
            if super::report::is_internal(n) || n.starts_with("__rust") || out.len() >= 16 {
                continue;
            }
            out.push(Frame {
                function: name,
                file: sym.filename().map(|f| f.display().to_string()),
                line: sym.lineno(),
            });
        }
    }
    out
}

/// Writes the two most frequent events (`acquire`, `release`) without going through [`Event`]'s
/// general writer: they are most of a trace, and formatting them is most of the writer's work.
/// Returns false for every other event. Nothing here uses serde (the runtime does not depend on
/// it); the test below checks the bytes against serde_json's, with the analyzer's model.
pub(crate) fn write_hot(e: &Event, out: &mut Vec<u8>) -> bool {
    match *e {
        Event::Acquire {
            t,
            l,
            m,
            how,
            s,
            wait_ns,
        } => {
            out.extend_from_slice(b"{\"e\":\"acquire\",\"t\":");
            put_u64(out, t);
            out.extend_from_slice(b",\"l\":");
            put_u64(out, l);
            out.extend_from_slice(b",\"m\":\"");
            out.extend_from_slice(mode_tag(m));
            out.push(b'"');
            match how {
                How::Blocking => {}
                How::Try => out.extend_from_slice(b",\"how\":\"try\""),
                How::Timed => out.extend_from_slice(b",\"how\":\"timed\""),
            }
            if let Some(s) = s {
                out.extend_from_slice(b",\"s\":");
                put_u64(out, u64::from(s));
            }
            if wait_ns != 0 {
                out.extend_from_slice(b",\"wait_ns\":");
                put_u64(out, wait_ns);
            }
            out.extend_from_slice(b"}\n");
            true
        }
        Event::Release { t, l, hold_ns } => {
            out.extend_from_slice(b"{\"e\":\"release\",\"t\":");
            put_u64(out, t);
            out.extend_from_slice(b",\"l\":");
            put_u64(out, l);
            if hold_ns != 0 {
                out.extend_from_slice(b",\"hold_ns\":");
                put_u64(out, hold_ns);
            }
            out.extend_from_slice(b"}\n");
            true
        }
        _ => false,
    }
}

fn mode_tag(m: Mode) -> &'static [u8] {
    match m {
        Mode::Exclusive => b"w",
        Mode::Shared => b"r",
        Mode::SharedRecursive => b"rr",
        Mode::Upgradable => b"u",
        Mode::Permit => b"p",
    }
}

/// Decimal digits of `n` (what `itoa` does; four lines do not justify a dependency).
fn put_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

// ---------------------------------------------------------------------------------------------
// Async tasks (feature `tokio`): a task's lock events form its own stream, with the task's holder
// number (bit 62 set) as thread number and `task #N` as name, wherever the task runs, so that the
// analyzer treats tasks as threads. Streams of tasks that hold nothing any more leave the map (and
// the buffer list once drained): memory follows the tasks holding async locks.

#[cfg(feature = "tokio")]
static TASK_BUFS: PlMutex<Option<HashMap<u64, Arc<ThreadBuf>>>> = PlMutex::new(None);

/// Lock order: `TASK_BUFS`, then `BUFFERS`; a full buffer is handed over as in `push`.
#[cfg(feature = "tokio")]
fn push_task(holder: u64, rec: Rec, last: bool) {
    let generation = GENERATION.load(Ordering::Acquire);
    let b = {
        let mut map = TASK_BUFS.lock();
        let map = map.get_or_insert_with(HashMap::new);
        let b = match map.get(&holder) {
            Some(b) if b.generation == generation => Arc::clone(b),
            _ => {
                let b = Arc::new(ThreadBuf {
                    thread: holder,
                    name: Some(super::state::thread_name(holder)),
                    generation,
                    recs: PlMutex::new(Vec::new()),
                });
                BUFFERS.lock().push(Arc::clone(&b));
                map.insert(holder, Arc::clone(&b));
                b
            }
        };
        if last {
            map.remove(&holder);
        }
        b
    };
    let full = {
        let mut recs = b.recs.lock();
        recs.push(rec);
        recs.len() >= FLUSH_AT
    };
    if full {
        let backlog = {
            let mut pending = PENDING.lock();
            let recs = std::mem::take(&mut *b.recs.lock());
            pending.push((Arc::clone(&b), recs));
            pending.len()
        };
        if backlog >= MAX_PENDING {
            flush_all();
        }
    }
}

/// An acquisition by an async task (its own stream).
#[cfg(feature = "tokio")]
pub(crate) fn on_task_acquire(
    holder: u64,
    ids: Ids,
    mode: Mode,
    how: How,
    site: Site,
    wait_ns: u64,
) {
    if !site_seen_locally(site) {
        note_site(site);
    }
    push_task(
        holder,
        Rec::Acquire {
            l: ids.inst,
            c: ids.class,
            m: mode,
            how,
            site,
            wait_ns,
        },
        false,
    );
}

/// A blocking acquisition by an async task (or a thread in `blocking_*`: `holder` is then this
/// thread), about to be checked: the `request` event, in the holder's stream.
#[cfg(feature = "tokio")]
pub(crate) fn on_task_request(
    holder: u64,
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    site: Site,
    capacity: usize,
) {
    let here = !crate::tokio::track::is_task(holder)
        && STATE.try_with(|s| s.id()).is_ok_and(|me| me == holder);
    if here {
        return on_request(ids, kind, mode, site, capacity);
    }
    if !site_seen_locally(site) {
        note_site(site);
    }
    push_task(
        holder,
        Rec::Request {
            l: ids.inst,
            c: ids.class,
            m: mode,
            site,
            permits: if kind == LockKind::Semaphore {
                capacity as u64
            } else {
                0
            },
        },
        false,
    );
}

/// A sync guard (`held`, taken by `owner` at `held_site`) seen held across an `.await` while
/// `holder` requests `ids` at `site`: in the requester's stream.
#[cfg(feature = "tokio")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn on_held_across_await(
    holder: u64,
    ids: Ids,
    mode: Mode,
    site: Site,
    held: Ids,
    owner: u64,
    held_site: Site,
) {
    for s in [site, held_site] {
        if !site_seen_locally(s) {
            note_site(s);
        }
    }
    let rec = Rec::HeldAcrossAwait {
        l: ids.inst,
        c: ids.class,
        m: mode,
        site,
        h: held.inst,
        hc: held.class,
        ht: owner,
        hsite: held_site,
    };
    let here = !crate::tokio::track::is_task(holder)
        && STATE.try_with(|s| s.id()).is_ok_and(|me| me == holder);
    if here {
        push(rec);
    } else {
        push_task(holder, rec, false);
    }
}

/// A release by an async task; `last`: it holds nothing any more.
#[cfg(feature = "tokio")]
pub(crate) fn on_task_release(holder: u64, ids: Ids, hold_ns: u64, last: bool) {
    push_task(
        holder,
        Rec::Release {
            l: ids.inst,
            c: ids.class,
            hold_ns,
        },
        last,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_events_are_written_exactly_as_serde_writes_them() {
        let modes = [
            Mode::Exclusive,
            Mode::Shared,
            Mode::SharedRecursive,
            Mode::Upgradable,
            Mode::Permit,
        ];
        let hows = [How::Blocking, How::Try, How::Timed];
        let nums = [0u64, 1, 9, 10, 12345, u64::MAX];
        for &m in &modes {
            for &how in &hows {
                for &n in &nums {
                    for s in [None, Some(7u32), Some(u32::MAX)] {
                        let e = Event::Acquire {
                            t: n,
                            l: n ^ 5,
                            m,
                            how,
                            s,
                            wait_ns: n,
                        };
                        let mut a = Vec::new();
                        assert!(write_hot(&e, &mut a));
                        let b = serde_json::to_string(&e).unwrap() + "\n";
                        assert_eq!(String::from_utf8(a).unwrap(), b);
                    }
                }
            }
        }
        for &n in &nums {
            let e = Event::Release {
                t: n,
                l: 3,
                hold_ns: n,
            };
            let mut a = Vec::new();
            assert!(write_hot(&e, &mut a));
            let b = serde_json::to_string(&e).unwrap() + "\n";
            assert_eq!(String::from_utf8(a).unwrap(), b);
        }
        assert!(!write_hot(&Event::Drop { l: 1 }, &mut Vec::new()));
    }
}
