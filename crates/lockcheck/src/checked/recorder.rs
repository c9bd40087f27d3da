//! Trace recording: `LOCKCHECK_TRACE=path` (or [`crate::record::start`]) writes every lock event
//! as `.lct` version 5 (`docs/trace-format.md`), turned into JSON Lines when the recording stops
//! unless the path asks for `.lct` ([`to_json`]).
//!
//! **The acquiring thread only stores.** Each thread appends records (five words: kind, mode and
//! class; lock; site; one extra number; a [`clock`] reading; or, for the usual acquisition and
//! release of the recorded fast path, a short record of three or two words, see [`Short`]) to a
//! preallocated block of its own, then publishes the new length with one release store: no lock, no
//! formatting, no allocation, no system call. A full block is handed to the background writer
//! (appended to the thread's chain under a lock the thread takes once per block) and a fresh
//! block comes from a pool. The writer declares threads, classes, sites (symbolizing their
//! backtraces) and locks lazily, the first time a record uses them, so that definitions always
//! precede their uses and a restarted recording is complete on its own, and copies the records
//! out as they are (the reader computes hold times from the clock readings); for `.lct` version 2
//! only (`LOCKCHECK_TRACE_FORMAT=lct2`) it turns each record into its event.
//!
//! **Bounded memory, nothing dropped.** A thread owns one block ([`BLOCK_WORDS`] words) while it
//! records; full blocks waiting for the writer are at most [`MAX_FULL`] in the whole process.
//! When a thread fills a block while that many wait (the program makes events faster than the
//! writer turns them into text, or the writer gets no core), it does the writer's work itself
//! until the backlog is down by half ([`wait_for_writer`]): the program is slowed to the
//! writer's pace, never an event lost. The writer is woken by a handoff once
//! [`WAKE_AFTER`] full blocks wait, and otherwise every 50 ms.
//!
//! **Crashes.** Every 50 ms the writer flushes all blocks (full and partial) to the file, so a
//! process killed mid-run (or hung in a deadlock and killed by CI) leaves a trace that analyzes up
//! to its last complete event. Events of one thread stay in order (a thread's blocks form one
//! chain, drained front to back); across threads the file order only has to respect fork and
//! join, which the analyzer turns into happens-before: a fork flushes the parent's records before
//! the child exists, a thread's records are flushed when it ends, before a join can return.
//!
//! The deciding event is never lost: a blocking acquisition made while holding a lock is recorded
//! as a `request` before the detector checks it ([`on_request`]), so an acquisition the detector
//! stops with a panic is in the trace; a report flushes every buffer, a thread's buffer is written
//! when the thread ends (also unwound by a panic), and the process's at exit (also when `main`
//! panics). `panic = "abort"` skips the exit handler: what the report's flush wrote is kept.
//!
//! **New sites.** The first acquisition at a source location anywhere in the process captures a
//! raw backtrace on the acquiring thread ([`Trace`]: at most 32 instruction pointers, a few
//! microseconds of unwinding, once per site); the writer symbolizes it.

mod clock;
mod forked;
mod to_json;

use super::class::{class_info, Ids, Meta};
use super::report::{Trace, Violation};
use super::state::{internal, STATE};
use lockcheck_core::lct::raw;
use lockcheck_core::trace::{
    ClassStats, Event, Frame, How, LockKind, Mode, Short as ShortPermits, FORMAT_VERSION,
    TRY_RETRIES,
};
use parking_lot::Mutex as PlMutex;
use std::cell::{Cell, UnsafeCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::panic::Location;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Site = &'static Location<'static>;

// ---------------------------------------------------------------------------------------------
// Records: what the acquiring thread stores.

/// One event as the observed thread stores it: five plain words, no formatting. `head` packs the
/// kind (bits 0-7), the mode (8-15), the how (16-23) and the class (32-63); the other words
/// depend on the kind:
///
/// | kind | `a` | `b` | `x` |
/// |---|---|---|---|
/// | request | lock | site | semaphore permits (0 for other locks); `ts`: permits requested when not 1 (else 0) |
/// | acquire, fail | lock | site | wait, ns |
///
/// An acquire record with [`REQUESTED`] in its head (`.lct` version 4's folded request) stands
/// for the request just before it too (same lock, mode and site, one permit): every writer makes
/// both events of it.
/// | release | lock | - | hold, ns, when the hooks measured it (0: from the clock readings) |
/// | convert | lock | - | - |
/// | cond_wait | lock | condvar | - |
/// | fork, join | child | - | - |
/// | drop | lock | - | 1: something was noted of the lock for later traces (see [`on_drop`]), else 0 |
///
/// In a block, a `Rec` takes [`LONG`] words; the usual records of the recorded fast path are
/// short ([`Short`]).
#[derive(Clone, Copy)]
#[repr(C)]
struct Rec {
    head: u64,
    a: u64,
    b: u64,
    x: u64,
    /// A [`clock::now`] reading (0 where no duration is derived from it).
    ts: u64,
}

/// Words of a [`Rec`] in a block.
const LONG: usize = 5;

/// One word of a block: records are runs of words, [`LONG`] for a [`Rec`], fewer for the short
/// records of `.lct` version 5 ([`Short`]), which the writer copies out as they are.
type Word = UnsafeCell<MaybeUninit<u64>>;

/// The short records (`.lct` version 5, [`raw::SHORT_ACQUIRE`] and its kin): a blocking
/// acquisition without a wait is three words (the lock's identity word with the shape in bits
/// 61-63, the site word with the mode in its low three bits, the reading), a release timed from
/// the readings two (identity and shape, the reading). The identity word is the one the lock's
/// `Meta` holds (instance in bits 0-39, class in 40-60: `Ids::word`), so the record needs no
/// packing of its own. A block tells a short record from a [`Rec`] by those bits (a `Rec`'s
/// `head` has them clear: its class is in bits 32-52).
struct Short;

impl Short {
    /// The first word of a short record of `shape` for `ids`.
    #[inline(always)]
    fn first(ids: Ids, shape: u64) -> u64 {
        debug_assert!(ids.inst >> raw::SHORT_LOCK_BITS == 0);
        debug_assert!(ids.class >> raw::SHORT_CLASS_BITS == 0);
        ids.word() | shape << raw::SHAPE_SHIFT
    }
}

// A site word has its low three bits clear, for a short acquisition's mode.
const _: () = assert!(std::mem::align_of::<Location<'static>>() >= 8);

/// The record at word `i` of `words` (a short one as the [`Rec`] it stands for), and its length
/// in words. `i` must be a record's first word, below the block's published length.
#[inline(always)]
fn rec_at(words: &[Word], i: usize) -> (Rec, usize) {
    // SAFETY: below `committed` (see `Block`), where records are whole.
    let w0 = unsafe { (*words[i].get()).assume_init() };
    if w0 >> raw::SHAPE_SHIFT == 0 {
        (*long_at(words, i), LONG)
    } else {
        short_at(words, i, w0)
    }
}

/// The [`Rec`] at word `i` of `words`, in place.
#[inline(always)]
fn long_at(words: &[Word], i: usize) -> &Rec {
    let r = &words[i..i + LONG];
    // SAFETY: as below.
    debug_assert_eq!(
        unsafe { (*r[0].get()).assume_init() } >> raw::SHAPE_SHIFT,
        0
    );
    // SAFETY: below `committed` (see `Block`); a `Rec` is five `u64` (`repr(C)`, `UnsafeCell`
    // and `MaybeUninit` transparent), aligned as they are, and the block is not written there
    // while the writer reads it.
    unsafe { &*r.as_ptr().cast::<Rec>() }
}

/// The short record at word `i` of `words`, whose first word is `w0`, as the [`Rec`] it stands
/// for, and its length in words.
#[inline(always)]
fn short_at(words: &[Word], i: usize, w0: u64) -> (Rec, usize) {
    // SAFETY: below `committed` (see `Block`), where records are whole.
    let read = |w: &Word| unsafe { (*w.get()).assume_init() };
    let ids = Ids::from_word(w0 & ((1 << raw::SHAPE_SHIFT) - 1));
    let shape = w0 >> raw::SHAPE_SHIFT;
    if shape == raw::SHORT_RELEASE {
        let r = &words[i..i + 2];
        let rec = Rec {
            head: u64::from(K_RELEASE) | u64::from(ids.class) << 32,
            a: ids.inst,
            b: 0,
            x: 0,
            ts: read(&r[1]),
        };
        return (rec, 2);
    }
    let r = &words[i..i + 3];
    let w1 = read(&r[1]);
    let requested = if shape == raw::SHORT_REQUESTED {
        REQUESTED
    } else {
        0
    };
    let rec = Rec {
        head: u64::from(K_ACQUIRE)
            | (w1 & raw::SHORT_MODE_MASK) << 8
            | u64::from(ids.class) << 32
            | requested,
        a: ids.inst,
        b: w1 & !raw::SHORT_MODE_MASK,
        x: 0,
        ts: read(&r[2]),
    };
    (rec, 3)
}

/// The mode's code in a record (`head` bits 8-15, a short acquisition's site word bits 0-2).
#[inline(always)]
fn mode_code(mode: Mode) -> u64 {
    match mode {
        Mode::Exclusive => 0u64,
        Mode::Shared => 1,
        Mode::SharedRecursive => 2,
        Mode::Upgradable => 3,
        Mode::Permit => 4,
    }
}

// The kinds are those of `.lct` version 4's raw records, which copy `Rec` as it is.
const K_REQUEST: u8 = raw::K_REQUEST;
const K_ACQUIRE: u8 = raw::K_ACQUIRE;
const K_FAIL: u8 = raw::K_FAIL;
const K_RELEASE: u8 = raw::K_RELEASE;
const K_CONVERT: u8 = raw::K_CONVERT;
const K_COND_WAIT: u8 = raw::K_COND_WAIT;
const K_FORK: u8 = raw::K_FORK;
const K_JOIN: u8 = raw::K_JOIN;
const K_RETURNED: u8 = raw::K_RETURNED;
const K_DROP: u8 = raw::K_DROP;
/// A streak of failed tries after its first (which is a [`K_FAIL`] record): `a`, `b` and the
/// mode and how of `head` as the failures', `x` the longest wait, `ts` the failures it counts.
/// The recorder's own kind, no raw record of the format: the writer writes it as a `fail` event
/// with its count `n`, in `.lct` version 4 too (as a record of version 2: one per streak, rare),
/// so that a spinning `try_lock` does not flood the trace (see [`on_fail`]).
const K_FAILS: u8 = 0x80;
/// A timed wait on a condition variable: `a` the mutex, `b` the condvar, as [`K_COND_WAIT`]'s.
/// The recorder's own kind: written as a `cond_wait` event with `timed` (in `.lct` version 4 as
/// a record of version 2, at its place among the raw records), which the lost-wakeup rule leaves
/// out (a timed wait ends by itself).
const K_COND_WAIT_TIMED: u8 = 0x81;
/// A notify of a condition variable: `a` the condvar, `b` the site. The recorder's own kind,
/// written as a `notify` event (in `.lct` version 4 as a record of version 2, at its place).
const K_NOTIFY: u8 = 0x82;
/// An acquire record's flag: the request before it folded in (see [`Rec`]).
const REQUESTED: u64 = raw::REQUESTED;
/// A sync guard held across an `.await` (feature `tokio`): `a` the requested lock, `b` the
/// request's site, `x` the index of the rest in [`HELD_ACROSS`]. Rare (each is a finding), so its
/// details live in a side table rather than widening every record.
#[cfg(feature = "tokio")]
const K_HELD_ACROSS_AWAIT: u8 = raw::K_HELD_ACROSS_AWAIT;

/// What a [`K_HELD_ACROSS_AWAIT`] record does not hold: the held guard's lock, class, holder and
/// site. The writer takes an entry when it writes the record, and its slot goes back to the
/// table's free list for the next one: the table holds at most as many entries as records wait
/// for the writer (bounded: [`MAX_FULL`] full blocks in the process), not one per event of the
/// recording (as it did, until the recording stopped). Cleared when a recording stops.
#[cfg(feature = "tokio")]
static HELD_ACROSS: PlMutex<SideTable> = PlMutex::new(SideTable::new());

/// A held guard's lock, its holder and site (see [`HELD_ACROSS`]).
#[cfg(feature = "tokio")]
type HeldAcross = (Ids, u64, Site);

/// Slots of a side table, each given back once taken: written by hand (a vector and a free
/// list), as the channel's sender slots are; the runtime crate takes no dependency for it.
#[cfg(feature = "tokio")]
struct SideTable {
    entries: Vec<Option<HeldAcross>>,
    free: Vec<usize>,
}

#[cfg(feature = "tokio")]
impl SideTable {
    const fn new() -> SideTable {
        SideTable {
            entries: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Stores `e` in a free slot (a new one only when none is free): its index.
    fn put(&mut self, e: HeldAcross) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.entries[i] = Some(e);
                i
            }
            None => {
                self.entries.push(Some(e));
                self.entries.len() - 1
            }
        }
    }

    /// Takes the entry at `i`, giving its slot back.
    fn take(&mut self, i: usize) -> Option<HeldAcross> {
        let e = self.entries.get_mut(i)?.take();
        if e.is_some() {
            self.free.push(i);
        }
        e
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.free.clear();
    }
}

#[inline(always)]
fn head(kind: u8, mode: Mode, how: How, class: u32) -> u64 {
    let m = mode_code(mode);
    let h = match how {
        How::Blocking => 0u64,
        How::Try => 1,
        How::Timed => 2,
    };
    u64::from(kind) | m << 8 | h << 16 | u64::from(class) << 32
}

fn mode_of(head: u64) -> Mode {
    match (head >> 8) as u8 {
        0 => Mode::Exclusive,
        1 => Mode::Shared,
        2 => Mode::SharedRecursive,
        3 => Mode::Upgradable,
        _ => Mode::Permit,
    }
}

fn how_of(head: u64) -> How {
    match (head >> 16) as u8 {
        0 => How::Blocking,
        1 => How::Try,
        _ => How::Timed,
    }
}

#[inline(always)]
fn site_word(site: Site) -> u64 {
    site as *const Location<'static> as usize as u64
}

/// The request folded into an acquire record with [`REQUESTED`]: its lock, mode, class and site,
/// blocking, one permit, no semaphore's capacity.
#[cfg(test)]
fn folded_request(r: &Rec) -> Rec {
    Rec {
        head: r.head & !(REQUESTED | 0xff | 0xff << 16) | u64::from(K_REQUEST),
        a: r.a,
        b: r.b,
        x: 0,
        ts: 0,
    }
}

/// The site a record's `b` word holds.
fn site_of(word: u64) -> Site {
    // SAFETY: `b` of a request, acquire or fail record was made by `site_word` from a
    // `&'static Location`, which lives for the whole program.
    unsafe { &*(word as usize as *const Location<'static>) }
}

// ---------------------------------------------------------------------------------------------
// Blocks and chains.

/// Words per block: 40 KiB, the memory a recording thread holds (1,024 [`Rec`]s, 2,560 short
/// releases), and the room between two handoffs (one lock each; see [`WAKE_AFTER`] for the
/// writer's wake-ups).
const BLOCK_WORDS: usize = 1024 * LONG;
/// Full blocks waiting for the writer, process-wide, before a thread that fills one more does
/// the writer's work itself (2.5 MiB; see [`wait_for_writer`]).
const MAX_FULL: usize = 64;
/// Drained blocks kept for reuse (a fresh one costs page faults).
const MAX_SPARE: usize = 32;
/// Full blocks waiting, process-wide, before a handoff wakes the writer. Waking it at every
/// handoff made it park and wake once per block: a context switch per 1,024 records, about 10%
/// of a recording thread's CPU time per record (measured with `perf stat`); a batch of 8 makes
/// one pass per 8 blocks (and one `write` of the output). Memory stays bounded by [`MAX_FULL`],
/// and the writer's pass every 50 ms (the crash guarantee) does not depend on it.
const WAKE_AFTER: usize = 8;

/// A preallocated run of records, in words. Words below `committed` are written once and never
/// again until the block is recycled; only the chain's producer writes, from index `committed`.
struct Block {
    committed: AtomicUsize,
    recs: Box<[Word]>,
}

// SAFETY: a record slot is written by one producer (a thread's own block, or a task's under its
// chain lock) before `committed` covers it with a release store, and read by the writer only once
// an acquire load of `committed` covers it; a block is recycled only after it left every chain.
unsafe impl Sync for Block {}

impl Block {
    fn new() -> Box<Block> {
        Box::new(Block {
            committed: AtomicUsize::new(0),
            recs: (0..BLOCK_WORDS)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
        })
    }
}

// Boxed: a block must not move while in use, the producer keeps a pointer to its `committed`.
#[allow(clippy::vec_box)]
static SPARE: PlMutex<Vec<Box<Block>>> = PlMutex::new(Vec::new());
/// Full blocks in chains, not drained yet.
static FULL: AtomicUsize = AtomicUsize::new(0);

fn take_block() -> Box<Block> {
    match SPARE.lock().pop() {
        Some(b) => {
            b.committed.store(0, Ordering::Relaxed);
            b
        }
        None => Block::new(),
    }
}

fn return_block(b: Box<Block>) {
    let mut spare = SPARE.lock();
    if spare.len() < MAX_SPARE {
        spare.push(b);
    }
}

/// One stream of events (a thread's, or an async task's) for one recording generation.
struct ThreadBuf {
    thread: u64,
    name: Option<String>,
    generation: u64,
    /// The stream's blocks in order: every block but the last is full; the producer writes only
    /// into the last. The producer locks it once per block (handoff), the writer once per block
    /// it drains; records are read outside it (see [`Block`]).
    chain: PlMutex<VecDeque<Box<Block>>>,
    /// The writer's side of the stream, used under [`WRITER`]'s lock only.
    side: PlMutex<Side>,
    /// Records of the chain's front block already written (written by the writer, read by
    /// [`ThreadBuf::pending`] without the writer's locks).
    consumed: AtomicUsize,
}

/// Blocks still in the chain go back to the pool, and the full ones stop counting as waiting
/// (a stream of an ended recording whose last handoff came after the final drain).
impl Drop for ThreadBuf {
    fn drop(&mut self) {
        let chain = self.chain.get_mut();
        if chain.len() > 1 {
            // Saturating: in a forked child the count starts again from 0 (`forked`), and the
            // forking thread's stream of the parent's recording, let go there, counted before.
            let n = chain.len() - 1;
            let _ = FULL.fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                Some(f.saturating_sub(n))
            });
        }
        for b in chain.drain(..) {
            return_block(b);
        }
    }
}

/// What the writer keeps per stream.
#[derive(Default)]
struct Side {
    /// The `thread` event was written.
    declared: bool,
    held: HeldTimes,
}

const HELD_TIMES: usize = 64;

/// Held locks with the clock reading of their acquisition, innermost last: the hold time of a
/// release. Bounded by [`HELD_TIMES`]: a lock released by another thread (a guard sent away)
/// would otherwise stay forever; beyond it the oldest entries go, and their releases show no
/// hold time (0 means unmeasured in the format; counted and said at the stop). A fixed array:
/// no capacity test per acquisition, as a `Vec`'s push has.
struct HeldTimes {
    len: usize,
    held: [(u64, u64); HELD_TIMES],
}

impl Default for HeldTimes {
    fn default() -> HeldTimes {
        HeldTimes {
            len: 0,
            held: [(0, 0); HELD_TIMES],
        }
    }
}

impl HeldTimes {
    /// Lock `l` acquired at clock reading `ts`; true when the oldest entry went to make room.
    #[inline(always)]
    fn push(&mut self, l: u64, ts: u64) -> bool {
        let full = self.len >= HELD_TIMES;
        if full {
            self.held.copy_within(1.., 0);
            self.len = HELD_TIMES - 1;
        }
        self.held[self.len] = (l, ts);
        self.len += 1;
        full
    }

    /// The clock reading of the innermost hold of `l`, taken off.
    #[inline(always)]
    fn take(&mut self, l: u64) -> Option<u64> {
        match self.len.checked_sub(1) {
            Some(top) if self.held[top].0 == l => {
                self.len = top;
                Some(self.held[top].1)
            }
            _ => self.take_below(l),
        }
    }

    #[inline(never)]
    fn take_below(&mut self, l: u64) -> Option<u64> {
        let i = self.held[..self.len].iter().rposition(|&(h, _)| h == l)?;
        let since = self.held[i].1;
        self.held.copy_within(i + 1..self.len, i);
        self.len -= 1;
        Some(since)
    }
}

impl ThreadBuf {
    fn new(thread: u64, name: Option<String>, generation: u64) -> Arc<ThreadBuf> {
        let mut chain = VecDeque::with_capacity(4);
        chain.push_back(take_block());
        Arc::new(ThreadBuf {
            thread,
            name,
            generation,
            chain: PlMutex::new(chain),
            side: PlMutex::new(Side::default()),
            consumed: AtomicUsize::new(0),
        })
    }

    /// Whether the writer has records of this stream to write.
    fn pending(&self) -> bool {
        let chain = self.chain.lock();
        chain.len() > 1
            || chain.front().is_some_and(|b| {
                b.committed.load(Ordering::Acquire) > self.consumed.load(Ordering::Acquire)
            })
    }

    /// Appends under the chain lock: for streams written by several threads (async tasks).
    /// Returns the count of full blocks waiting for the writer when it handed one over.
    #[cfg(feature = "tokio")]
    fn push_locked(&self, rec: Rec) -> Option<usize> {
        let mut chain = self.chain.lock();
        let mut full = None;
        if chain
            .back()
            .is_none_or(|b| b.committed.load(Ordering::Relaxed) + LONG > BLOCK_WORDS)
        {
            if !chain.is_empty() {
                // Counted before the writer can take it (see `hand_over`).
                full = Some(FULL.fetch_add(1, Ordering::AcqRel) + 1);
            }
            chain.push_back(take_block());
        }
        let b = chain.back().expect("just ensured");
        let n = b.committed.load(Ordering::Relaxed);
        // SAFETY: words `n..n + LONG` (in bounds, tested above) are not published yet, and the
        // chain lock makes this the only producer.
        unsafe {
            b.recs[n..n + LONG]
                .as_ptr()
                .cast::<Rec>()
                .cast_mut()
                .write(rec)
        };
        b.committed.store(n + LONG, Ordering::Release);
        full
    }
}

// ---------------------------------------------------------------------------------------------
// Global state.

const UNINIT: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;
/// `LOCKCHECK_TRACE` is being read and the recording started by one thread: the others wait
/// for the outcome (see [`init_from_env`]).
const STARTING: u8 = 3;
/// A child of `fork` made while recording (set by [`in_fork_child`]): the recording, its file and
/// its writer thread are the parent's, and the child writes nothing to them; its own trace starts
/// at its first event ([`forked`]).
const FORKED: u8 = 4;
static STATE_FLAG: AtomicU8 = AtomicU8::new(UNINIT);
static GENERATION: AtomicU64 = AtomicU64::new(0);
static BUFFERS: PlMutex<Vec<Arc<ThreadBuf>>> = PlMutex::new(Vec::new());
/// Lock order: `WRITER`, then `BUFFERS` or a stream's `side`, then its `chain`, then `SPARE`.
static WRITER: PlMutex<Option<Writer>> = PlMutex::new(None);
/// The background writer, woken when blocks are handed over (see [`WAKE_AFTER`]).
static WRITER_THREAD: PlMutex<Option<std::thread::Thread>> = PlMutex::new(None);
/// Raw backtraces of new acquisition sites, captured by the acquiring thread, symbolized by the
/// writer when it declares the site.
static SITE_TRACES: PlMutex<Option<HashMap<usize, Trace>>> = PlMutex::new(None);
static SEEN_SITES: PlMutex<Option<HashSet<usize>>> = PlMutex::new(None);

// ---------------------------------------------------------------------------------------------
// The producer: a thread's end of its stream.

/// A thread's producer state, which every push reads and writes: `Cell`s in a thread-local
/// without a destructor, reached with one `%fs` offset (a thread-local with a destructor is
/// tested for being alive at every access, a few instructions per record). The stream itself
/// (an `Arc`) is in [`STREAM`], touched in the cold paths only, which never run inside each
/// other (`cold`).
///
/// Soundness: `len < BLOCK_WORDS` only while `base` and `committed` point into the last block of
/// the stream `STREAM` holds ([`next_block`] sets them together); `STREAM`'s destructor sets
/// `len` to `BLOCK_WORDS` before it lets the stream go, so a record made after it goes cold,
/// finds the stream gone and is counted ([`lost_at_exit`]).
struct Producer {
    /// The recording generation of the stream in [`STREAM`] (0: none).
    generation: Cell<u64>,
    /// The block being filled: its words and its published length.
    base: Cell<*mut u64>,
    /// (Not a raw pointer: a raw pointer's dereference is tested for alignment and null in a
    /// build with debug assertions, four instructions per record; `NonNull::as_ref` is not.)
    committed: Cell<NonNull<AtomicUsize>>,
    /// Words in the block (`BLOCK_WORDS` when there is none, so that the next push goes cold).
    len: Cell<usize>,
    /// A cold path is running: a record made inside it (lockcheck's own locks) is not recorded.
    cold: Cell<bool>,
    /// The slot of the last failure record [`on_fail`] wrote (a [`K_FAIL`], or a [`K_FAILS`]
    /// it opened): the streak goes on while it is the block's last record (nothing of this
    /// thread's since) and is the same failure. Touched by the failure paths only.
    fail_at: Cell<*const Rec>,
    /// Failures of the streak so far, and the count at which its open record is published next.
    fail_total: Cell<u64>,
    fail_next: Cell<u64>,
}

/// The stream a thread records into, held while it records (see [`Producer`]).
struct Stream {
    buf: UnsafeCell<Option<Arc<ThreadBuf>>>,
}

/// When the thread ends, normally or unwound by a panic (a report under `LOCKCHECK=panic` stops
/// the thread at the acquisition it recorded last), its last records are written at once rather
/// than at the writer's next pass, so that a process that dies right after (killed, or aborting)
/// still has them. The main thread's are written by the exit handler.
impl Drop for Stream {
    fn drop(&mut self) {
        // From here on every record of this thread goes cold and is counted as lost.
        PRODUCER.with(|p| {
            // A streak of failures still open is written with the rest.
            publish_open(p);
            p.len.set(BLOCK_WORDS);
            p.generation.set(0);
        });
        if STATE_FLAG.load(Ordering::Relaxed) != ON {
            return;
        }
        if let Some(b) = self.buf.get_mut().take() {
            if b.generation == GENERATION.load(Ordering::Acquire) && b.pending() {
                flush_stream(&b);
            }
        }
    }
}

thread_local! {
    static PRODUCER: Producer = const {
        Producer {
            generation: Cell::new(0),
            base: Cell::new(std::ptr::null_mut()),
            committed: Cell::new(NonNull::dangling()),
            len: Cell::new(BLOCK_WORDS),
            cold: Cell::new(false),
            fail_at: Cell::new(std::ptr::null()),
            fail_total: Cell::new(0),
            fail_next: Cell::new(0),
        }
    };
    static STREAM: Stream = const { Stream { buf: UnsafeCell::new(None) } };
}

/// This thread's [`Producer`]. (`LocalKey::with` with the work in its closure was not always
/// inlined: a call per record.)
#[inline(always)]
fn producer() -> *const Producer {
    PRODUCER.with(|p| p as *const Producer)
}

/// Appends a record to the calling thread's block: a few stores and one release store.
#[inline(always)]
fn push(rec: Rec) {
    // SAFETY: `PRODUCER` has no destructor: it lives as long as this thread, which is running
    // this.
    let p = unsafe { &*producer() };
    {
        let i = p.len.get();
        if i <= BLOCK_WORDS - LONG && p.generation.get() == GENERATION.load(Ordering::Relaxed) {
            // SAFETY: `base` and `committed` point into the block this thread's stream holds
            // (see `Producer`), whose words from `i` on are not published yet: only this thread
            // writes them, and the release store publishes them to the writer.
            unsafe {
                p.base.get().add(i).cast::<Rec>().write(rec);
                p.committed
                    .get()
                    .as_ref()
                    .store(i + LONG, Ordering::Release);
            }
            p.len.set(i + LONG);
        } else {
            // The words in registers, not a `Rec` in memory: a `Rec` argument made every push
            // build the record on the stack first, taken cold or not.
            push_cold(p, rec.head, rec.a, rec.b, rec.x, rec.ts);
        }
    }
}

/// [`push`] of a short record ([`Short`]): `N` words.
///
/// The words go from registers to the block one store each ([`put_words`]), and the cold path
/// takes them by value: with the array's address passed to the cold path, the compiler kept the
/// record on the stack in every case, two 8-byte stores then read back by one 16-byte load
/// (`movups`) for the copy into the block, a load that store-to-load forwarding cannot serve
/// (it waits until the two stores have left for the cache, about a dozen cycles on this host's
/// Xeon); twice per recorded pair, it made `.lct` version 5 about 7 % slower than version 4 on
/// one thread although it ran fewer instructions (docs/benchmarks-history.md, "Recording round
/// 17").
#[inline(always)]
fn push_short<const N: usize>(words: [u64; N]) {
    // SAFETY: as in `push`.
    let p = unsafe { &*producer() };
    let i = p.len.get();
    if i <= BLOCK_WORDS - N && p.generation.get() == GENERATION.load(Ordering::Relaxed) {
        // SAFETY: as in `push`.
        unsafe {
            put_words(p.base.get().add(i), words);
            p.committed.get().as_ref().store(i + N, Ordering::Release);
        }
        p.len.set(i + N);
    } else {
        let w = |k: usize| words.get(k).copied().unwrap_or(0);
        push_short_cold(p, [w(0), w(1), w(2)], N);
    }
}

/// Writes `words` at `dst`, one 8-byte store each (see [`push_short`]).
///
/// # Safety
/// `dst..dst + N` must be words of the block this thread fills, not published yet.
#[inline(always)]
unsafe fn put_words<const N: usize>(dst: *mut u64, words: [u64; N]) {
    for (k, w) in words.into_iter().enumerate() {
        // SAFETY: the caller's.
        unsafe { dst.add(k).write(w) };
    }
}

/// [`push_short`] that goes cold: the record (its first `n` words) as the [`Rec`] it stands for
/// (a new block or stream is rare; a long record says the same).
#[cold]
#[inline(never)]
fn push_short_cold(p: &Producer, words: [u64; 3], n: usize) {
    // On the stack: nothing allocates before `next_block` marks the thread busy (an allocator
    // that takes a checked lock would come back here).
    let cells: [Word; 3] = words.map(|w| UnsafeCell::new(MaybeUninit::new(w)));
    let (r, _) = rec_at(&cells[..n], 0);
    push_cold(p, r.head, r.a, r.b, r.x, r.ts);
}

/// Records made after their thread's recording state was torn down (a lock taken in another
/// thread-local's destructor): their stream is gone, so they are counted, and said once when the
/// recording stops, rather than dropped silently.
static LOST_AT_EXIT: AtomicU64 = AtomicU64::new(0);

#[cold]
fn lost_at_exit() {
    if STATE_FLAG.load(Ordering::Relaxed) == ON {
        LOST_AT_EXIT.fetch_add(1, Ordering::Relaxed);
    }
}

/// Makes sure the next `n` records of this thread fit in its block and their site is
/// announced, before a lock is taken: the records written after the acquisition (and by its
/// release, which runs before the raw unlock) then neither allocate nor take a lock. A global
/// allocator that takes the lock being acquired would otherwise take it again on this thread
/// (a new stream or block allocates; a new site's backtrace too). A block with too little room
/// left is handed to the writer early (the writer reads a block up to its published length).
///
/// True: the room is there, in the current recording's stream; the acquisition's records may
/// then be written with [`on_acquire_reserved`], which tests nothing
/// again. False: no room (not recording any more, or the stream is gone): the caller records
/// the tested way (`hooks::lock_recorded` leaves the acquisition to the full path), which
/// counts what it cannot keep.
#[inline(always)]
pub(crate) fn reserve(site: Site, n: usize) -> bool {
    if !site_seen_locally(site) {
        note_site(site);
    }
    // SAFETY: as in `push`.
    let p = unsafe { &*producer() };
    let room = p.len.get() + n * LONG <= BLOCK_WORDS
        && p.generation.get() == GENERATION.load(Ordering::Relaxed);
    room || reserve_cold(n)
}

#[cold]
#[inline(never)]
fn reserve_cold(n: usize) -> bool {
    PRODUCER.with(|p| next_block(p, None) && p.len.get() + n * LONG <= BLOCK_WORDS)
}

/// [`push_short`] into the room [`reserve`] made (it returned true), without testing the room and
/// the generation again. The block is the one `reserve` found or installed: only this thread's
/// cold paths replace it, and none ran since. The caller makes sure that nothing between the
/// reservation and this write records, allocates or takes a lock (`hooks::lock_recorded`: the
/// raw try, the memo and cache look-ups, and the held stack's push within its inline array,
/// which the recorded fast way never leaves: at most `CACHE_HELD` locks are held there). A
/// recording stopped meanwhile (by another thread, between the reservation and the acquisition)
/// gets the records in its stream's last block, which the thread keeps (`stop` recycles the
/// others), as a record whose generation test passed just before the stop does: an acquisition
/// that raced with the stop.
#[inline(always)]
fn push_reserved<const N: usize>(words: [u64; N]) {
    // SAFETY: as in `push`; `reserve` found room for this record (and the caller wrote none
    // since).
    let p = unsafe { &*producer() };
    let i = p.len.get();
    unsafe {
        put_words(p.base.get().add(i), words);
        p.committed.get().as_ref().store(i + N, Ordering::Release);
    }
    p.len.set(i + N);
}

/// The first record of a generation (a new stream), or a full block (handoff).
#[cold]
#[inline(never)]
fn push_cold(p: &Producer, head: u64, a: u64, b: u64, x: u64, ts: u64) {
    let rec = Rec { head, a, b, x, ts };
    // An acquisition's own hold is on the held stack already: not shown held before it.
    let acquiring = (head as u8 == K_ACQUIRE).then_some(a);
    if !next_block(p, acquiring) {
        // Not recording, or lockcheck's own lock inside a cold path: nothing to record; or the
        // thread's stream is gone (a lock taken in a thread-local's destructor): counted.
        if STATE_FLAG.load(Ordering::Relaxed) == ON && !p.cold.get() {
            lost_at_exit();
        }
        return;
    }
    // SAFETY: the block `next_block` installed has room (see `next_block`).
    unsafe { put(p, rec) };
}

/// Appends `rec` to the block being filled.
///
/// # Safety
/// The block must have room (`p.len + LONG <= BLOCK_WORDS`) and be the one the thread's stream holds
/// (see [`Producer`]).
#[inline(always)]
unsafe fn put(p: &Producer, rec: Rec) {
    let i = p.len.get();
    // SAFETY: as in `push`: only this thread writes the block's unpublished words.
    unsafe {
        p.base.get().add(i).cast::<Rec>().write(rec);
        p.committed
            .get()
            .as_ref()
            .store(i + LONG, Ordering::Release);
    }
    p.len.set(i + LONG);
}

/// Gives this thread a fresh block (and its stream, on the first record of a generation),
/// handing the current one to the writer; false when not recording (or already inside). The
/// block has room for [`ROOM_AFTER_SHOWN`] records at least.
///
/// A new stream first shows the locks the thread holds already ([`show_held`]): taken before
/// the recording started (or in an earlier one), they are not in it otherwise, and neither is
/// a dependency from them. `acquiring`: the lock whose acquisition is being recorded, held
/// already, shown by its own record.
#[cold]
#[inline(never)]
fn next_block(p: &Producer, acquiring: Option<u64>) -> bool {
    // The block handed over (or left, a new stream) keeps no record unpublished.
    publish_open(p);
    if p.cold.get() || STATE_FLAG.load(Ordering::Relaxed) != ON && !forked::started_here() {
        return false;
    }
    p.cold.set(true);
    // Lockcheck's own work from here on: a lock taken inside (an allocator's, say) is neither
    // checked nor recorded, rather than checked but missing from the trace.
    let was_busy = STATE.try_with(|s| s.busy.replace(true)).unwrap_or(true);
    struct Reset<'a>(&'a Cell<bool>, bool);
    impl Drop for Reset<'_> {
        fn drop(&mut self) {
            self.0.set(false);
            if !self.1 {
                let _ = STATE.try_with(|s| s.busy.set(false));
            }
        }
    }
    let _reset = Reset(&p.cold, was_busy);
    let generation = GENERATION.load(Ordering::Acquire);
    // The stream is gone (this runs in a thread-local's destructor, after `STREAM`'s).
    let Ok(slot) = STREAM.try_with(|s| s.buf.get()) else {
        return false;
    };
    // SAFETY: `buf` is only touched here, in `flush_thread` (not inside a cold path) and in the
    // destructor, and `cold` keeps this from running inside itself; the destructor cannot run
    // while the thread runs this.
    let slot = unsafe { &mut *slot };
    let mut drain = false;
    let (stream, new) = match slot {
        Some(b) if b.generation == generation => {
            drain = hand_over(b);
            (Arc::clone(b), false)
        }
        _ => {
            // The thread's first record of this recording: its stream (the old one, of an
            // earlier recording, is let go).
            let thread = STATE.try_with(|s| s.id()).unwrap_or(0);
            let name = std::thread::current().name().map(str::to_owned);
            let b = ThreadBuf::new(thread, name, generation);
            BUFFERS.lock().push(Arc::clone(&b));
            *slot = Some(Arc::clone(&b));
            p.generation.set(generation);
            (b, true)
        }
    };
    install(p, &stream);
    if new {
        drain |= show_held(p, &stream, acquiring);
    }
    if drain {
        wait_for_writer();
    } else if !new && forked::synchronous() {
        // A forked child has no writer thread: its blocks are written as they fill.
        flush_all();
    }
    true
}

/// Room a block has at least once [`next_block`] returns, in [`Rec`]s (a [`reserve`] asks for 3
/// at most).
const ROOM_AFTER_SHOWN: usize = 8;

/// Appends a fresh block to `b`'s chain, handing the last one to the writer; whether the writer
/// is so far behind that the thread must wait for it ([`wait_for_writer`]).
fn hand_over(b: &ThreadBuf) -> bool {
    let fresh = take_block();
    // Counted before the block behind `fresh` is the writer's to take: the writer subtracts one
    // for each block it takes, and counting after let the count wrap below zero meanwhile.
    let backlog = FULL.fetch_add(1, Ordering::AcqRel) + 1;
    b.chain.lock().push_back(fresh);
    if backlog >= WAKE_AFTER {
        wake_writer();
    }
    backlog >= MAX_FULL
}

/// Makes the last block of `stream` the one this thread fills.
fn install(p: &Producer, stream: &ThreadBuf) {
    let chain = stream.chain.lock();
    let blk = chain.back().expect("a stream has a block");
    p.base.set(blk.recs.as_ptr() as *mut u64);
    p.committed.set(NonNull::from(&blk.committed));
    p.len.set(0);
    // A streak's record is in the block handed over (see `streak_goes_on`).
    p.fail_at.set(std::ptr::null());
}

/// At the start of this thread's stream in a recording: the locks it holds already, each as a
/// `try` acquisition (held, no dependency of its own) at its site, so that the analyzer's held
/// set is the runtime's and a lock taken under one of them makes its dependency offline too.
/// Their releases are then recorded (`mark_recorded`): a lock shown held must be shown released.
/// Also the async locks the thread itself holds (feature `tokio`: a runtime's root future).
/// The hold time of a release counts from here. `acquiring`: see [`next_block`]. Whether the
/// writer is far behind (see [`hand_over`]).
#[cold]
fn show_held(p: &Producer, stream: &ThreadBuf, acquiring: Option<u64>) -> bool {
    let mut shown: Vec<(Ids, Mode, Site, u32)> = Vec::new();
    let mut skip = acquiring;
    let thread = STATE
        .try_with(|s| {
            if s.holds_any() {
                let held = s.held_snapshot();
                // The newest hold of the lock being acquired is that acquisition.
                let skip_at = skip.and_then(|l| held.iter().rposition(|h| h.inst == l));
                if skip_at.is_some() {
                    skip = None;
                }
                for (i, h) in held.iter().enumerate() {
                    if Some(i) != skip_at {
                        let ids = Ids {
                            inst: h.inst,
                            class: h.class,
                        };
                        shown.push((ids, h.mode, h.site, 1));
                    }
                }
                s.mark_recorded();
            }
            s.id()
        })
        .unwrap_or(0);
    #[cfg(feature = "tokio")]
    if thread != 0 {
        crate::tokio::track::held_in_trace(thread, skip, &mut shown);
    }
    let _ = thread;
    let mut drain = false;
    for (ids, mode, site, n) in shown {
        for _ in 0..n {
            if p.len.get() + ROOM_AFTER_SHOWN * LONG >= BLOCK_WORDS {
                drain |= hand_over(stream);
                install(p, stream);
            }
            let rec = Rec {
                head: head(K_ACQUIRE, mode, How::Try, ids.class),
                a: ids.inst,
                b: site_word(site),
                x: 0,
                ts: clock::now(),
            };
            // SAFETY: the block has room (tested above) and is the stream's last (`install`).
            unsafe { put(p, rec) };
        }
    }
    drain
}

/// The writer is [`MAX_FULL`] blocks behind: this thread does the writer's work itself (a pass
/// over every stream under the writer's lock, after the pass under way if there is one) until
/// the backlog is below half of that, so that memory stays bounded and no event is dropped (the
/// program is slowed to the writer's pace, never an event lost).
///
/// It used to park in steps of 200 us until the writer had caught up (helping only after 20 ms
/// without progress). The backlog builds up when the writer gets no core (two recording threads
/// and the writer on two cores: a woken writer may wait for a time slice while the producers
/// fill 64 blocks in well under a millisecond), and the parked producers then slept their steps
/// out after the writer had caught up, a core idle meanwhile: each of two recording threads was
/// blocked for 26 to 38 ms per 190 ms on a core (docs/benchmarks-history.md, "Recording round
/// 14"). Doing the work costs the CPU time the writer would have spent, and leaves no core idle;
/// a producer that finds the writer mid-pass waits for its lock, which the writer hands over.
#[cold]
fn wait_for_writer() {
    while FULL.load(Ordering::Acquire) >= MAX_FULL / 2 && STATE_FLAG.load(Ordering::Relaxed) == ON {
        // Nothing written: what is left is not this recording's to write (blocks of an
        // ended recording's stream still held by its thread), so no pass can lower it.
        if flush_all() == 0 {
            return;
        }
    }
}

fn wake_writer() {
    if let Some(t) = WRITER_THREAD.lock().as_ref() {
        t.unpark();
    }
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

/// The `pthread_atfork` child handler's part (`checked::fork`): a child forked while recording
/// records its own trace, in a file of its own, from its first event (see [`forked`]).
pub(crate) fn in_fork_child() {
    forked::in_child();
}

/// Whether recording is on, without reading the environment.
pub(crate) fn recording_now() -> bool {
    STATE_FLAG.load(Ordering::Relaxed) == ON
}

#[cold]
fn init_from_env() -> bool {
    thread_local! {
        static STARTER: Cell<bool> = const { Cell::new(false) };
    }
    // Claim the initialization so that concurrent first uses do not start two recordings.
    let claimed = STATE_FLAG
        .compare_exchange(UNINIT, STARTING, Ordering::AcqRel, Ordering::Acquire)
        .map(|_| UNINIT)
        .or_else(|seen| {
            // A forked child's first recorder call: its own trace (`forked`).
            if seen == FORKED {
                STATE_FLAG
                    .compare_exchange(FORKED, STARTING, Ordering::AcqRel, Ordering::Acquire)
                    .map(|_| FORKED)
            } else {
                Err(seen)
            }
        });
    if let Err(seen) = claimed {
        if seen != STARTING || STARTER.try_with(Cell::get).unwrap_or(true) {
            // Decided; or this thread is the one starting (an allocation or a hook inside
            // `start` came back here): it records from when `start` is done.
            return seen == ON;
        }
        // Another thread is starting the recording: an acquisition that went on unrecorded
        // meanwhile would be missing from the trace (and its release with it), so a finding of
        // the runtime could be invisible offline. Starting takes a file creation, so wait.
        while STATE_FLAG.load(Ordering::Acquire) == STARTING {
            std::thread::yield_now();
        }
        return STATE_FLAG.load(Ordering::Relaxed) == ON;
    }
    let _ = STARTER.try_with(|s| s.set(true));
    let on = if claimed == Ok(FORKED) {
        forked::start_child()
    } else {
        match std::env::var_os("LOCKCHECK_TRACE") {
            Some(p) if !p.is_empty() => match start(Path::new(&p)) {
                Ok(()) => true,
                Err(e) => {
                    crate::checked::notice::say(format_args!(
                        "lockcheck: cannot record to LOCKCHECK_TRACE={}: {e}",
                        p.to_string_lossy()
                    ));
                    false
                }
            },
            _ => false,
        }
    };
    if !on {
        let _ = STATE_FLAG.compare_exchange(STARTING, OFF, Ordering::AcqRel, Ordering::Acquire);
    }
    let _ = STARTER.try_with(|s| s.set(false));
    on
}

/// The format a trace is written in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Json,
    /// `.lct` version 2: every record turned into its event.
    Lct2,
    /// `.lct` version 5 ([`lockcheck_core::lct::raw`]): the records copied out as they are.
    Lct5,
}

/// The format of the trace at `path`: lockcheck's binary `.lct` (its extension is `.lct`, or
/// `LOCKCHECK_TRACE_FORMAT=lct`; version 2 with `LOCKCHECK_TRACE_FORMAT=lct2`), else JSON Lines
/// (recorded as version 5 and converted when the recording stops: [`to_json`]).
fn format_of(path: &Path) -> Format {
    match std::env::var("LOCKCHECK_TRACE_FORMAT") {
        Ok(f) if f.eq_ignore_ascii_case("lct") => Format::Lct5,
        Ok(f) if f.eq_ignore_ascii_case("lct2") => Format::Lct2,
        Ok(f) if !f.is_empty() => Format::Json,
        _ if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("lct")) =>
        {
            Format::Lct5
        }
        _ => Format::Json,
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

/// Bytes of output gathered before a write to the file.
const OUT_CHUNK: usize = 1 << 16;

/// Starts recording to `path` (`{pid}` replaced), ending any recording in progress.
pub(crate) fn start(path: &Path) -> io::Result<()> {
    let forked = STATE_FLAG.load(Ordering::Acquire) == FORKED;
    if forked && forked::busy_at_fork() {
        return Err(io::Error::other(
            "this process was forked while lockcheck's trace writer was busy on another thread: \
             its locks are held by a thread that does not exist here",
        ));
    }
    let _ = stop();
    if forked {
        // A recording of its own in a forked child: the streams of the parent's threads
        // (copied, never to be written) are not its.
        BUFFERS.lock().clear();
        WRITER_THREAD.lock().take();
    }
    let format = format_of(&expand_path(path));
    forked::note_template(path, format);
    begin(expand_path(path), format, None, true)
}

/// Opens `path` and starts recording into it: the header (then, in a forked child's trace, the
/// `forked` event of `forked`: the parent's pid and the forking thread), and a background
/// writer thread when `writer_thread` (a forked child has none: see `forked`).
fn begin(
    path: PathBuf,
    format: Format,
    forked: Option<(u32, u64)>,
    writer_thread: bool,
) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let file = File::create(&path)?;
    // JSON Lines is recorded as `.lct` version 5 too, and turned into JSON Lines when the
    // recording stops (`to_json`): the producers write the same short records for every format.
    let mut w = Writer::new(file, path);
    w.raw = format != Format::Lct2;
    w.to_json = format == Format::Json;
    match format {
        Format::Lct2 => w.out.extend_from_slice(&lockcheck_core::lct::MAGIC),
        Format::Json | Format::Lct5 => w.out.extend_from_slice(&raw::MAGIC_V5),
    }
    let program = std::env::args().next().unwrap_or_default();
    let start_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    w.emit(&Event::Header {
        version: FORMAT_VERSION,
        pid: std::process::id(),
        program,
        start_unix_ms,
        // Chosen by `Writer::new` (the clock's `init`), before any record is taken.
        hold_resolution_ns: clock::hold_resolution_ns(),
    });
    if let Some((parent, t)) = forked {
        w.emit(&Event::Forked { parent, t });
    }
    w.clock_record();
    w.write_out();
    if let Some(e) = w.failed.take() {
        return Err(e);
    }
    let generation = GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
    w.generation = generation;
    *WRITER.lock() = Some(w);
    STATE_FLAG.store(ON, Ordering::Release);
    register_exit_flush();
    if !writer_thread {
        // A forked child: its flags are the parent's (recording on), and the switches' lock may
        // be held by a thread the fork left behind.
        return Ok(());
    }
    crate::config::refresh_flags();
    let t = std::thread::Builder::new()
        .name("lockcheck-writer".into())
        .spawn(move || background(generation))?;
    *WRITER_THREAD.lock() = Some(t.thread().clone());
    Ok(())
}

/// Stops recording: flushes every buffer, writes the per-class statistics, closes the file.
/// Returns the path written, if a recording was in progress.
pub(crate) fn stop() -> io::Result<Option<PathBuf>> {
    // A forked child's recording is its parent's (see `in_fork_child`): nothing to stop here,
    // and its writer lock may be held by a thread that does not exist in the child.
    if STATE_FLAG.load(Ordering::Acquire) == FORKED {
        return Ok(None);
    }
    // The calling thread's open streak of failures (`on_fail`) goes with the rest (the main
    // thread's, at exit); other threads' are published up to their last publication.
    let _ = PRODUCER.try_with(publish_open);
    if STATE_FLAG.load(Ordering::Acquire) == ON {
        STATE_FLAG.store(OFF, Ordering::Release);
        // (Not in a forked child's recording: the switches' lock may be held by a thread the
        // fork left behind; a record made after this goes cold and finds the recording off.)
        if !forked::synchronous() {
            crate::config::refresh_flags();
        }
    }
    // The writer's lock first, then the new generation: a background pass under way when the
    // generation moved on would see every stream as an ended recording's and drop it from
    // `BUFFERS`, pending records of live threads included, before this drain could reach them
    // (test `tests/record_stop_live_threads.rs`). Holding the lock, no pass runs until the
    // streams are taken; the pass that waited for it finds no writer and the thread ends.
    let mut guard = WRITER.lock();
    GENERATION.fetch_add(1, Ordering::AcqRel);
    if let Some(t) = WRITER_THREAD.lock().take() {
        t.unpark();
    }
    let Some(mut w) = guard.take() else {
        return Ok(None);
    };
    let buffers = std::mem::take(&mut *BUFFERS.lock());
    w.scale.calibrate();
    for b in &buffers {
        w.drain(b);
    }
    // Every buffer is drained and no thread records any more: write all the drops.
    w.end_pass();
    w.end_pass();
    if w.raw {
        // The reader sums the statistics up from the records.
        if w.failed.is_none() {
            raw::encode_end(&mut w.out);
        }
    }
    for (c, s) in w.stats.drain() {
        w.emit(&Event::Stats { c, stats: s });
    }
    w.write_out();
    let r = w.file.flush();
    w.note_error(r);
    #[cfg(feature = "tokio")]
    HELD_ACROSS.lock().clear();
    if w.unmeasured_holds > 0 {
        crate::checked::notice::say(format_args!(
            "lockcheck: {} hold(s) fell out of the writer's window of {HELD_TIMES} per thread (more \
             locks held at once, or guards released by another thread): their releases in {} have \
             no hold time, so the hold statistics may be low",
            w.unmeasured_holds,
            w.path.display()
        ));
    }
    let lost = LOST_AT_EXIT.swap(0, Ordering::Relaxed);
    if lost > 0 {
        crate::checked::notice::say(format_args!(
            "lockcheck: {lost} trace event(s) are missing from {}: locks used by threads after \
             their thread-local state was torn down (in other thread-locals' destructors)",
            w.path.display()
        ));
    }
    // The drained streams' blocks go back to the pool: the threads keep only their current one.
    for b in buffers {
        let mut chain = b.chain.lock();
        while chain.len() > 1 {
            if let Some(blk) = chain.pop_front() {
                let before = FULL.fetch_sub(1, Ordering::AcqRel);
                debug_assert!(before > 0, "a full block taken before it was counted");
                return_block(blk);
            }
        }
    }
    if let Some(e) = w.failed {
        return Err(io::Error::new(
            e.kind(),
            format!(
                "writing the trace {} failed ({e}): it is incomplete",
                w.path.display()
            ),
        ));
    }
    if w.to_json {
        // Closed first: the file is read back whole.
        let Writer { file, path, .. } = w;
        let kind = file.metadata().map(|m| m.file_type());
        drop(file);
        match kind {
            Ok(k) if k.is_file() => {
                if let Err(e) = to_json::convert_in_place(&path) {
                    // Also on stderr: the exit handler has no one to return it to.
                    crate::checked::notice::say(format_args!("lockcheck: {e}"));
                    return Err(e);
                }
            }
            // `/dev/null` and other devices: nothing to read back.
            Ok(k) if std::os::unix::fs::FileTypeExt::is_char_device(&k) => {}
            // A pipe (or socket) was read as it was written: it got `.lct`, which
            // `lockcheck analyze` reads as well.
            _ => crate::checked::notice::say(format_args!(
                "lockcheck: {} is not a regular file, so the trace sent there stays in lockcheck's \
                 .lct format (JSON Lines is made from a file when the recording stops); \
                 `lockcheck analyze` reads either",
                path.display()
            )),
        }
        return Ok(Some(path));
    }
    Ok(Some(w.path))
}

/// Flushes every thread's records to the file now. Returns the number of records written.
/// The calling thread's open streak of failures is published first (other threads' are
/// published by their next record, at the latest at [`TRY_RETRIES`] failures: see [`on_fail`]).
pub(crate) fn flush_all() -> usize {
    // A forked child that recorded nothing yet: nothing to write (its trace starts with its
    // first event, see `forked`).
    if STATE_FLAG.load(Ordering::Acquire) == FORKED {
        return 0;
    }
    let _ = PRODUCER.try_with(publish_open);
    let mut guard = WRITER.lock();
    let Some(w) = guard.as_mut() else { return 0 };
    let before = w.records;
    w.scale.calibrate();
    let mut streams = std::mem::take(&mut w.streams);
    streams.extend(BUFFERS.lock().iter().cloned());
    for b in &streams {
        w.drain(b);
    }
    streams.clear();
    w.streams = streams;
    #[cfg(feature = "tokio")]
    evict_idle_tasks();
    {
        // Streams of threads that ended (only the list holds them) leave once drained; so do
        // those of earlier recordings.
        let current = GENERATION.load(Ordering::Acquire);
        BUFFERS
            .lock()
            .retain(|b| b.generation == current && (Arc::strong_count(b) > 1 || b.pending()));
    }
    w.end_pass();
    w.write_out();
    let r = w.file.flush();
    w.note_error(r);
    w.records - before
}

/// Flushes one stream (a thread that ends, or forks).
fn flush_stream(b: &ThreadBuf) {
    let mut guard = WRITER.lock();
    let Some(w) = guard.as_mut() else { return };
    w.scale.calibrate();
    w.drain(b);
    w.write_out();
    let r = w.file.flush();
    w.note_error(r);
}

fn background(generation: u64) {
    // Everything this thread does is lockcheck's own work.
    let _ = STATE.try_with(|s| s.busy.set(true));
    let mut idle = true;
    while GENERATION.load(Ordering::Acquire) == generation {
        // Woken by handoffs, or every 50 ms for the partial blocks (the crash guarantee); at
        // once while full blocks wait and the last pass found work.
        if idle || FULL.load(Ordering::Acquire) == 0 {
            std::thread::park_timeout(Duration::from_millis(50));
        }
        if GENERATION.load(Ordering::Acquire) != generation {
            break;
        }
        idle = flush_all() == 0;
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

/// Flushes the calling thread's records (at thread end, before a join can return; at a fork,
/// before the child exists).
pub(crate) fn flush_thread() {
    if STATE_FLAG.load(Ordering::Relaxed) != ON {
        return;
    }
    if PRODUCER.with(|p| p.cold.get()) {
        return;
    }
    PRODUCER.with(publish_open);
    // SAFETY: not inside a cold path (checked above), which is the only other user.
    let b = STREAM
        .try_with(|s| unsafe { (*s.buf.get()).clone() })
        .ok()
        .flatten();
    if let Some(b) = b {
        if b.generation == GENERATION.load(Ordering::Acquire) {
            flush_stream(&b);
        }
    }
}

/// The first use of a site in the process: its backtrace, for the writer. Both sets are taken
/// with the thread marked busy (`state::internal`): they allocate while held, and an allocator
/// that takes a checked lock must not come back here for that lock's own new site.
#[cold]
fn note_site(site: Site) {
    let key = site as *const Location<'static> as usize;
    let new = internal(&SEEN_SITES)
        .get_or_insert_with(HashSet::new)
        .insert(key);
    if new {
        // Bounded: at most 32 frames unwound, nothing symbolized here (the writer does it).
        if let Some(bt) = Trace::capture() {
            internal(&SITE_TRACES)
                .get_or_insert_with(HashMap::new)
                .insert(key, bt);
        }
    }
}

/// Per-thread cache of sites already announced, so that the global set is touched once per site
/// and thread. Direct-mapped by address; a collision only costs a global lookup.
#[inline(always)]
fn site_seen_locally(site: Site) -> bool {
    thread_local! {
        static SEEN: [Cell<usize>; 64] = const { [const { Cell::new(0) }; 64] };
    }
    let key = site as *const Location<'static> as usize;
    SEEN.try_with(|s| {
        let slot = &s[(key >> 4) & 63];
        if slot.get() == key {
            true
        } else {
            slot.set(key);
            false
        }
    })
    .unwrap_or(true)
}

/// A blocking acquisition is about to be checked. Called before the checks, so that an
/// acquisition the detector stops with a panic still reaches the trace (the analyzer then finds the
/// same violation); the report's flush (`on_violation`) or the thread's exit writes it out.
#[inline(never)]
pub(crate) fn on_request(
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    site: Site,
    capacity: usize,
    permits: u32,
) {
    if !site_seen_locally(site) {
        note_site(site);
    }
    push(request_rec(ids, kind, mode, site, capacity, permits, None));
}

/// The record of a request: a semaphore's with its `capacity` and, when not 1, the `permits`
/// requested at once (in `ts`, which a request does not use), and what the runtime saw of its
/// permits when they were short (`short`, a bit of the head: [`raw::REQUEST_SHORT_HELD`],
/// [`raw::REQUEST_SHORT_ALONE`]).
#[inline(always)]
fn request_rec(
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    site: Site,
    capacity: usize,
    permits: u32,
    short: Option<ShortPermits>,
) -> Rec {
    let sem = kind == LockKind::Semaphore;
    let short = match short {
        None => 0,
        Some(ShortPermits::Held) => raw::REQUEST_SHORT_HELD,
        Some(ShortPermits::Alone) => raw::REQUEST_SHORT_ALONE,
    };
    Rec {
        head: head(K_REQUEST, mode, How::Blocking, ids.class) | short,
        a: ids.inst,
        b: site_word(site),
        x: if sem { capacity as u64 } else { 0 },
        ts: if sem && permits != 1 {
            u64::from(permits)
        } else {
            0
        },
    }
}

/// What a request record says of its semaphore's permits when they were short (see
/// [`request_rec`]).
#[inline(always)]
fn short_of(r: &Rec) -> Option<ShortPermits> {
    if r.head & raw::REQUEST_SHORT_ALONE != 0 {
        Some(ShortPermits::Alone)
    } else if r.head & raw::REQUEST_SHORT_HELD != 0 {
        Some(ShortPermits::Held)
    } else {
        None
    }
}

/// The permits a request record asks for (see [`request_rec`]).
#[inline(always)]
fn permits_of(r: &Rec) -> u32 {
    if r.ts == 0 {
        1
    } else {
        r.ts as u32
    }
}

/// An acquisition (the hold time of its release is measured from its clock reading).
#[inline(never)]
pub(crate) fn on_acquire(ids: Ids, mode: Mode, how: How, site: Site, wait_ns: u64) {
    if !site_seen_locally(site) {
        note_site(site);
    }
    push(Rec {
        head: head(K_ACQUIRE, mode, how, ids.class),
        a: ids.inst,
        b: site_word(site),
        x: wait_ns,
        ts: clock::now(),
    });
}

/// [`on_acquire`] of a blocking acquisition with no wait, whose site [`reserve`] announced
/// before the acquisition (`hooks::lock_recorded`). Inlined there: a call of its own cost
/// about a third of what it does.
///
/// `requested`: [`on_request`] then [`on_acquire`] as one record, what the recorded fast path
/// writes for a nested acquisition whose dependency is known: an acquisition with
/// [`REQUESTED`], which every writer turns into the full path's two events (a request, then the
/// acquisition). Not for a semaphore (whose request carries its capacity). The flag is set
/// without a branch, so that the caller has one clock call, not one per case.
///
/// A short record ([`Short`], three words): the identity word with its shape, the site word with
/// the mode, the reading.
#[inline(always)]
pub(crate) fn on_acquire_reserved(ids: Ids, mode: Mode, site: Site, requested: bool) {
    let ts = clock::now();
    let shape = raw::SHORT_ACQUIRE + u64::from(requested);
    push_reserved([
        Short::first(ids, shape),
        site_word(site) | mode_code(mode),
        ts,
    ]);
}

/// A failed `try_*` or timed acquisition.
///
/// **A streak is one record.** A `try_lock` spun until it succeeds fails thousands of times a
/// second, each an event of the trace (a stuck spin wrote 2.2 GB in 60 s). Failures in a row of
/// the same try (same lock, mode, how, site, and nothing else of this thread in between: the held
/// set the same, every hold kept, as `hooks::failed_try_retried` counts a streak) are written as
/// the first's [`K_FAIL`] record and one [`K_FAILS`] record with the count of the others, which
/// readers count as that many failures: the same events. The [`K_FAILS`] record is written into
/// the block, not published (the writer reads a block up to its published length), and counted
/// up in place while the streak lasts; the thread's next record publishes it with itself, as
/// do its end, a flush of its own (a report, `flush_thread`) and a block handed over. It is
/// also published when the streak reaches [`TRY_RETRIES`] failures (the one where the runtime's
/// retry rule fires, before its report) and each time the streak doubles since, the next
/// failure opening a new one: a process that dies in a spin (killed, or aborting on another
/// thread's report) leaves at least the failures up to the rule's in the trace, and at least
/// half of the rest; a spin of a million failures takes about a dozen records.
///
/// `wait_ns` of a [`K_FAILS`] record is the longest wait of its failures (timed acquisitions:
/// the analyzer reports their count and longest wait per class).
pub(crate) fn on_fail(ids: Ids, mode: Mode, how: How, site: Site, wait_ns: u64) {
    if !site_seen_locally(site) {
        note_site(site);
    }
    let rec = Rec {
        head: head(K_FAIL, mode, how, ids.class),
        a: ids.inst,
        b: site_word(site),
        x: wait_ns,
        ts: 0,
    };
    // SAFETY: as in `push`.
    let p = unsafe { &*producer() };
    if !streak_goes_on(p, &rec) {
        push(rec);
        p.fail_total.set(1);
        p.fail_next.set(u64::from(TRY_RETRIES));
        p.fail_at.set(last_slot(p));
    }
}

/// Where the block's last record starts if it is a [`Rec`] (null when the thread has no block of
/// the current recording). A record that is not a `Rec` is short: the place then is inside the
/// last records, where no `Rec` starts, so it is never [`Producer::fail_at`] (set where a `Rec`
/// was written in this block: `install` clears it).
fn last_slot(p: &Producer) -> *const Rec {
    let i = p.len.get();
    if !(LONG..=BLOCK_WORDS).contains(&i)
        || p.generation.get() != GENERATION.load(Ordering::Relaxed)
    {
        return std::ptr::null();
    }
    // In bounds: words `i - LONG..i` of the block (a pointer is only compared).
    p.base.get().wrapping_add(i - LONG).cast::<Rec>()
}

/// Whether `rec` (a [`K_FAIL`]) continues the streak whose record is the block's last: then it
/// is counted there (see [`on_fail`]) or in a new [`K_FAILS`] record opened after it.
fn streak_goes_on(p: &Producer, rec: &Rec) -> bool {
    let at = p.fail_at.get();
    let i = p.len.get();
    if at.is_null() || last_slot(p) != at {
        return false;
    }
    // SAFETY: `at` is the last record of the block this thread fills in the current recording
    // (`last_slot`: a full one is still the stream's last until the next record hands it over),
    // written by this thread, and read here only (the writer may read it too once published).
    let (head, a, b, x, ts) = unsafe {
        let last = &*at;
        (last.head, last.a, last.b, last.x, last.ts)
    };
    let kind = head as u8;
    if !(kind == K_FAIL || kind == K_FAILS)
        || head & !0xff != rec.head & !0xff
        || (a, b) != (rec.a, rec.b)
    {
        return false;
    }
    let total = p.fail_total.get().saturating_add(1);
    p.fail_total.set(total);
    if i < BLOCK_WORDS {
        // SAFETY: `committed` points into the block being filled (`i < BLOCK_WORDS`, see
        // `Producer`).
        let committed = unsafe { p.committed.get().as_ref() };
        if committed.load(Ordering::Relaxed) < i {
            // The open record: not published, so the writer does not read it; only this thread
            // writes it.
            // SAFETY: as above: the block's last record, this thread's, unpublished.
            unsafe {
                let open = &mut *(at as *mut Rec);
                open.ts = ts + 1;
                if rec.x > x {
                    open.x = rec.x;
                }
            }
            if total >= p.fail_next.get() || ts + 1 >= u64::from(u32::MAX) {
                p.fail_next.set(total.saturating_mul(2));
                committed.store(i, Ordering::Release);
            }
            return true;
        }
        if i + 2 * LONG <= BLOCK_WORDS {
            let open = Rec {
                head: rec.head & !0xff | u64::from(K_FAILS),
                ts: 1,
                ..*rec
            };
            // SAFETY: slot `i` of the block being filled, unpublished (`committed` is `i`):
            // this thread's; `len` covers it from now on, so the next record goes after it and
            // publishes it.
            unsafe { p.base.get().add(i).cast::<Rec>().write(open) };
            p.len.set(i + LONG);
            p.fail_at.set(last_slot(p));
            return true;
        }
    }
    // No room for an open record and the record that publishes it: the failure is written as
    // its own record, the streak going on in it (readers count failures in a row, however
    // written).
    push(*rec);
    p.fail_at.set(last_slot(p));
    true
}

/// Publishes this thread's open streak record, if any (see [`on_fail`]).
fn publish_open(p: &Producer) {
    let i = p.len.get();
    if i < BLOCK_WORDS {
        // SAFETY: `committed` points into the stream's last block while `len < BLOCK_WORDS`.
        let committed = unsafe { p.committed.get().as_ref() };
        if committed.load(Ordering::Relaxed) < i {
            committed.store(i, Ordering::Release);
        }
    }
}

/// A release; `hold_ns` 0: measured by the writer from the clock readings.
#[inline(never)]
pub(crate) fn on_release(ids: Ids, hold_ns: u64) {
    release_rec(ids, hold_ns);
}

/// [`on_release`] inline, for the usual recorded release (`hooks::released_rest`, itself out
/// of line): one call fewer per recorded release.
#[inline(always)]
pub(crate) fn on_release_inline(meta: &Meta) {
    // The reading first, the identity word read again after it: only `meta` lives across the
    // clock's call (each value that does is a register saved and restored by the caller). The
    // instance and class of a held lock's word do not change (only its flag bits may).
    // A short record ([`Short`], two words) in `.lct` version 5: the identity word with its
    // shape, the reading.
    let ts = clock::now();
    let ids = Ids::from_word(meta.word());
    push_short([Short::first(ids, raw::SHORT_RELEASE), ts]);
}

#[inline(always)]
fn release_rec(ids: Ids, hold_ns: u64) {
    push(Rec {
        head: head(K_RELEASE, Mode::Exclusive, How::Blocking, ids.class),
        a: ids.inst,
        b: 0,
        x: hold_ns,
        ts: clock::now(),
    });
}

pub(crate) fn on_convert(ids: Ids, to: Mode) {
    push(Rec {
        head: head(K_CONVERT, to, How::Blocking, ids.class),
        a: ids.inst,
        b: 0,
        x: 0,
        ts: 0,
    });
}

/// A lock's drop; `noted`: something may be noted of it for later traces ([`note_written`],
/// [`note_permits`]), which the writer forgets once it has written the lock's last use (`x` 1;
/// readers skip drop records).
pub(crate) fn on_drop(ids: Ids, noted: bool) {
    push(Rec {
        head: head(K_DROP, Mode::Exclusive, How::Blocking, ids.class),
        a: ids.inst,
        b: 0,
        x: u64::from(noted),
        ts: 0,
    });
}

/// A wait on condvar `cv` with `mutex` (released for the wait); `timed`: with a timeout.
pub(crate) fn on_cond_wait(cv: u64, mutex: Ids, timed: bool) {
    if recording() {
        let kind = if timed {
            K_COND_WAIT_TIMED
        } else {
            K_COND_WAIT
        };
        push(Rec {
            head: head(kind, Mode::Exclusive, How::Blocking, mutex.class),
            a: mutex.inst,
            b: cv,
            x: 0,
            ts: 0,
        });
    }
}

/// A notify of condvar `cv` at `site` (for the lost-wakeup rule offline: the notifier's held
/// and recent locks are its own events before this one).
pub(crate) fn on_notify(cv: u64, site: Site) {
    if recording() {
        if !site_seen_locally(site) {
            note_site(site);
        }
        push(Rec {
            head: u64::from(K_NOTIFY),
            a: cv,
            b: site_word(site),
            x: 0,
            ts: 0,
        });
    }
}

pub(crate) use forked::on_left_held;

pub(crate) fn on_fork(_parent: u64, child: u64) {
    if recording() {
        push(Rec {
            head: u64::from(K_FORK),
            a: child,
            b: 0,
            x: 0,
            ts: 0,
        });
        flush_thread();
    }
}

/// A join of `child`; `scope`: a scope's implicit join (see `Event::Join`).
pub(crate) fn on_join(_parent: u64, child: u64, scope: bool) {
    if recording() {
        push(Rec {
            head: u64::from(K_JOIN),
            a: child,
            b: u64::from(scope),
            x: 0,
            ts: 0,
        });
    }
}

/// A thread started by `lockcheck::thread` whose closure returned: what it does from here on (its
/// thread-local destructors) is not before a scope's implicit join (`Event::Returned`).
pub(crate) fn on_returned() {
    if recording() {
        push(Rec {
            head: u64::from(K_RETURNED),
            a: 0,
            b: 0,
            x: 0,
            ts: 0,
        });
    }
}

/// A thread started by `lockcheck::thread` holds its end (a lock of kind `End`) from here until
/// [`on_thread_finish`]: a `try` acquisition at the spawn site, its first record.
pub(crate) fn on_thread_start(end: Ids, spawned: Site) {
    on_acquire(end, Mode::Exclusive, How::Try, spawned, 0);
}

/// A thread started by `lockcheck::thread` finishes: the release of its end.
pub(crate) fn on_thread_finish(end: Ids) {
    release_rec(end, 0);
}

/// The mode a join requests its thread's end in: an explicit join waits for the thread's
/// thread-local destructors too (std joins the native thread), an exclusive request; a scope's
/// implicit join waits only for the closure, a `read_recursive` one, which the analyzer does not
/// see wait for the `read` the thread holds its end in after its `returned` event (the
/// destructors' acquisitions), and sees wait for the `write` it holds it in before.
fn join_mode(explicit: bool) -> Mode {
    if explicit {
        Mode::Exclusive
    } else {
        Mode::SharedRecursive
    }
}

/// A join made while holding locks is about to wait for the thread's end: its request, written
/// before it blocks (a join the runtime stops with a report stays in the trace as a request).
/// `explicit`: not a scope's implicit join ([`join_mode`]).
pub(crate) fn on_join_request(end: Ids, site: Site, explicit: bool) {
    on_request(end, LockKind::End, join_mode(explicit), site, 0, 1);
}

/// The join of [`on_join_request`] returned: the end granted, and released at once (before
/// [`on_join`]).
pub(crate) fn on_join_granted(end: Ids, site: Site, explicit: bool) {
    on_acquire(end, join_mode(explicit), How::Blocking, site, 0);
    release_rec(end, 0);
}

pub(crate) fn on_violation(_v: &Violation) {
    // The analyzer finds the violation again from the events; flushing now makes sure a program
    // that panics on it and aborts still leaves them in the trace.
    if STATE_FLAG.load(Ordering::Relaxed) == ON {
        flush_all();
    }
}

// ---------------------------------------------------------------------------------------------
// What the runtime knew of a lock before a trace saw it.

/// What the runtime learned of a lock that changes a verdict and that a recording started later
/// (`record::start` mid-run, a restart) would otherwise not say: a semaphore's permits, noted at
/// its first blocking acquisition (0: none noted), and an RwLock's first write. The writer
/// declares them with the lock's first `lock` event of each trace ([`Writer::lock_miss`]), so
/// that `analyze` applies the rules the runtime applies (the permits gate rule, read-read links).
#[derive(Clone, Copy, Default)]
struct Known {
    permits: u64,
    /// The recording generation ([`GENERATION`]) at the lock's first write noted, plus one (0:
    /// never written). A trace declares the write only if it came before the trace began: a write
    /// during the trace is in it already (a request), with its clock, and declared again it would
    /// read as one ordered with nothing.
    written: u64,
}

impl Known {
    /// Whether the lock's first write came before the recording of generation `generation`.
    fn written_before(&self, generation: u64) -> bool {
        self.written != 0 && self.written - 1 < generation
    }
}

/// [`Known`] by lock instance, filled whether or not a recording runs (a trace may start later):
/// one entry per semaphore of several permits blocking-acquired once and per RwLock written
/// once, removed with its lock ([`forget_known`]).
static KNOWN: PlMutex<Option<HashMap<u64, Known, FastHash>>> = PlMutex::new(None);
/// Entries in [`KNOWN`]: a lock's drop looks there only when some exist.
static KNOWN_LEN: AtomicUsize = AtomicUsize::new(0);

fn with_known<R>(f: impl FnOnce(&mut HashMap<u64, Known, FastHash>) -> R) -> R {
    let mut guard = KNOWN.lock();
    let map = guard.get_or_insert_with(HashMap::default);
    let r = f(map);
    KNOWN_LEN.store(map.len(), Ordering::Relaxed);
    r
}

/// Semaphore `inst` has `permits` permits, seen at its first blocking acquisition: the runtime
/// no longer takes it for a gate, so a trace that starts later declares them.
pub(crate) fn note_permits(inst: u64, permits: usize) {
    with_known(|m| m.entry(inst).or_default().permits = permits as u64);
}

/// RwLock `inst` (of class `class`) was write-locked for the first time: a trace that starts
/// later says so, of the instance and of its class.
pub(crate) fn note_written(inst: u64, class: u32) {
    let stamp = GENERATION.load(Ordering::Acquire) + 1;
    with_known(|m| {
        let k = m.entry(inst).or_default();
        if k.written == 0 {
            k.written = stamp;
        }
    });
    // The class too: its class-level read-read rule counts the writes of every instance, also
    // of those a later trace never shows (dropped before it began, or not used during it). Kept
    // with the class (never removed, as the runtime's class writes are not).
    if class != super::class::NO_CLASS {
        super::class::note_class_written(class, stamp);
    }
}

/// How many locks have notes (for tests).
pub(crate) fn noted_locks() -> usize {
    KNOWN_LEN.load(Ordering::Relaxed)
}

/// Lock `inst` is gone: what was noted of it goes too.
#[inline]
pub(crate) fn forget_known(inst: u64) {
    if KNOWN_LEN.load(Ordering::Relaxed) != 0 {
        with_known(|m| m.remove(&inst));
    }
}

/// What was noted of lock `inst` (nothing: the default).
fn known(inst: u64) -> Known {
    if KNOWN_LEN.load(Ordering::Relaxed) == 0 {
        return Known::default();
    }
    with_known(|m| m.get(&inst).copied().unwrap_or_default())
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

/// Per-class values, dense for the usual small class numbers (a vector index, no hashing: the
/// writer looks one up per event) and hashed for the rest (up to 2^22 classes).
struct ByClass<T> {
    dense: Vec<Option<T>>,
    far: HashMap<u32, T, FastHash>,
}

/// Classes below this are kept in a vector.
const DENSE_CLASSES: u32 = 1 << 14;

impl<T> ByClass<T> {
    fn new() -> ByClass<T> {
        ByClass {
            dense: Vec::new(),
            far: HashMap::default(),
        }
    }

    fn get(&self, c: u32) -> Option<&T> {
        if c < DENSE_CLASSES {
            self.dense.get(c as usize).and_then(Option::as_ref)
        } else {
            self.far.get(&c)
        }
    }

    /// The entry of class `c`, made if new. Inline only the test for a class already there
    /// (every record of the writer asks), no growth nor insertion.
    #[inline(always)]
    fn entry(&mut self, c: u32, make: impl FnOnce() -> T) -> &mut T {
        let i = c as usize;
        if self.dense.get(i).is_some_and(Option::is_some) {
            return self.dense[i].as_mut().expect("tested just above");
        }
        self.entry_slow(c, make)
    }

    #[inline(never)]
    fn entry_slow(&mut self, c: u32, make: impl FnOnce() -> T) -> &mut T {
        if c < DENSE_CLASSES {
            let i = c as usize;
            if self.dense.len() <= i {
                self.dense.resize_with(i + 1, || None);
            }
            self.dense[i].get_or_insert_with(make)
        } else {
            self.far.entry(c).or_insert_with(make)
        }
    }

    fn drain(&mut self) -> Vec<(u32, T)> {
        let mut out: Vec<(u32, T)> = std::mem::take(&mut self.dense)
            .into_iter()
            .enumerate()
            .filter_map(|(c, v)| v.map(|v| (c as u32, v)))
            .collect();
        let mut far: Vec<(u32, T)> = self.far.drain().collect();
        far.sort_by_key(|(c, _)| *c);
        out.extend(far);
        out
    }
}

/// The formatting side: owns the file and what it has defined so far.
struct Writer {
    file: File,
    /// The recording generation this writer writes ([`GENERATION`] once `start` published it):
    /// a lock's write noted before it is declared with the lock ([`Known::written_before`]).
    generation: u64,
    /// Output not yet written to the file (whole events only), written in chunks of
    /// [`OUT_CHUNK`] and at the end of every pass.
    out: Vec<u8>,
    /// `.lct` version 4: the records of lock operations written out raw ([`Writer::drain_raw`]).
    raw: bool,
    /// A JSON Lines recording: written as `.lct` version 5 ([`Writer::raw`]), turned into JSON
    /// Lines when it stops (`to_json`).
    to_json: bool,
    /// The clock scale the last `clock` record said (version 4).
    clock_written: u64,
    path: PathBuf,
    /// Classes declared.
    classes: ByClass<()>,
    sites: HashMap<usize, u32, FastHash>,
    locks: HashSet<u64, FastHash>,
    /// Semaphores whose `lock` event carried their permits, with the most permits written.
    permits_known: HashMap<u64, u64, FastHash>,
    stats: ByClass<ClassStats>,
    /// Drops seen in this pass, written at the end of the next one: other threads' earlier uses
    /// of the lock may still sit in buffers drained before they were pushed, or after the
    /// dropping thread's; one more full pass has written them all.
    deferred_drops: Vec<u64>,
    /// Drops of the previous pass, written at the end of this one.
    ready_drops: Vec<u64>,
    /// The first write error (disk full, ...): from then on events are lost, which is said on
    /// stderr at once and returned by [`stop`], never silent.
    failed: Option<io::Error>,
    /// Clock readings to nanoseconds.
    scale: clock::Scale,
    /// The streams of the pass under way (kept to reuse its allocation).
    streams: Vec<Arc<ThreadBuf>>,
    /// Runs of raw records to write from their blocks, in place, by the next
    /// [`Writer::write_out`] (see [`Writer::put_raw`]): at most [`MAX_PIECES`].
    pieces: Vec<Piece>,
    /// Drained full blocks that `pieces` may still point into: recycled by the next
    /// [`Writer::write_out`], once written (at most [`MAX_PIECES`]). Boxed: a block must not
    /// move while in use (as in [`SPARE`]).
    #[allow(clippy::vec_box)]
    recycle: Vec<Box<Block>>,
    /// `l + 1` of locks known declared, by [`cache_slot`] (0: empty).
    lock_cache: Box<[u64; LOCK_CACHE]>,
    /// Site words and their numbers, by [`cache_slot`].
    site_cache: Box<[(u64, u32); SITE_CACHE]>,
    /// Records written so far.
    records: usize,
    /// Releases written without a hold time because their acquisition fell out of a stream's
    /// [`HELD_TIMES`] window: said when the recording stops (the class statistics' hold times
    /// can be low by them).
    unmeasured_holds: u64,
}

/// The index of the first record of `recs` from `i` on that [`Writer::drain_raw`] must do
/// something for (declare a lock or site that is not among the last two, `ls` and `ss`, or
/// anything beyond), `recs.len()` if none: the usual records of a loop of lock operations change
/// nothing there (a hit in the last two changes nothing), and this loop makes no call.
#[inline(always)]
fn first_miss(recs: &[Word], mut i: usize, ls: [u64; 2], ss: [u64; 2]) -> usize {
    const LOCK: u64 = (1 << raw::SHORT_LOCK_BITS) - 1;
    while let Some(slot) = recs.get(i) {
        // SAFETY: below `committed` (see `Block`); a record's words are all below it.
        let w0 = unsafe { (*slot.get()).assume_init() };
        match w0 >> raw::SHAPE_SHIFT {
            0 => {}
            raw::SHORT_RELEASE => {
                let l = w0 & LOCK;
                if l != ls[0] && l != ls[1] {
                    return i;
                }
                i += 2;
                continue;
            }
            _ => {
                let l = w0 & LOCK;
                // SAFETY: as above.
                let site = unsafe { (*recs[i + 1].get()).assume_init() } & !raw::SHORT_MODE_MASK;
                if l != ls[0] && l != ls[1] || site != ss[0] && site != ss[1] {
                    return i;
                }
                i += 3;
                continue;
            }
        }
        let r = long_at(recs, i);
        let lock = r.a == ls[0] || r.a == ls[1];
        let site = r.b == ss[0] || r.b == ss[1];
        let nothing = match r.head as u8 {
            K_ACQUIRE | K_FAIL => lock && site,
            K_RELEASE | K_CONVERT | K_COND_WAIT => lock,
            K_REQUEST => r.x == 0 && lock && site,
            K_FORK | K_JOIN => true,
            _ => false,
        };
        if !nothing {
            return i;
        }
        i += LONG;
    }
    i
}

/// Whether `x` is neither of the two values last seen in `recent` (the writer's caches of the
/// last two locks and sites declared, see [`Writer::drain_raw`]); if so, it becomes the latest and
/// the oldest is forgotten.
#[inline(always)]
fn not_recent(recent: &mut [u64; 2], x: u64) -> bool {
    let new = x != recent[0] && x != recent[1];
    if new {
        *recent = [x, recent[0]];
    }
    new
}

impl Writer {
    fn new(file: File, path: PathBuf) -> Writer {
        Writer {
            file,
            // The generation `start` is about to publish (it sets the one it did).
            generation: GENERATION.load(Ordering::Acquire) + 1,
            out: Vec::with_capacity(OUT_CHUNK + 4096),
            raw: false,
            to_json: false,
            clock_written: 0,
            path,
            classes: ByClass::new(),
            sites: HashMap::default(),
            locks: HashSet::default(),
            permits_known: HashMap::default(),
            stats: ByClass::new(),
            deferred_drops: Vec::new(),
            ready_drops: Vec::new(),
            failed: None,
            scale: clock::Scale::new(),
            streams: Vec::new(),
            pieces: Vec::with_capacity(MAX_PIECES),
            recycle: Vec::with_capacity(MAX_PIECES),
            // Arrays, not slices: an index masked by the size needs no bounds test.
            lock_cache: boxed_array(0),
            site_cache: boxed_array((0, 0)),
            records: 0,
            unmeasured_holds: 0,
        }
    }

    /// Ends a flush pass: the drops seen in it, now that every buffer's earlier events are out.
    fn end_pass(&mut self) {
        let ready = std::mem::replace(
            &mut self.ready_drops,
            std::mem::take(&mut self.deferred_drops),
        );
        for l in ready {
            forget_known(l);
            if self.locks.contains(&l) {
                self.forget_lock(l);
                self.emit(&Event::Drop { l });
            }
        }
    }

    fn emit(&mut self, e: &Event) {
        // After an I/O error (disk full) events are dropped, said once (see `failed`); the trace
        // stays line-complete (in `.lct`, the reader stops at a cut record as at a cut line).
        if self.failed.is_some() {
            return;
        }
        lockcheck_core::lct::encode(e, &mut self.out);
        if self.out.len() >= OUT_CHUNK {
            self.write_out();
        }
    }

    /// Writes what `out` gathered and the runs of records in `pieces`, in their order, in one
    /// vectored write; then the blocks drained meanwhile go back to the pool.
    fn write_out(&mut self) {
        if self.failed.is_none() {
            let r = if !self.pieces.is_empty() {
                let mut slices = [io::IoSlice::new(&[]); 2 * MAX_PIECES + 1];
                let mut n = 0;
                let mut from = 0;
                for p in &self.pieces {
                    slices[n] = io::IoSlice::new(&self.out[from..p.at]);
                    // SAFETY: the records are initialized and stay unchanged until this write
                    // (see `Piece`).
                    slices[n + 1] = io::IoSlice::new(unsafe { p.bytes() });
                    n += 2;
                    from = p.at;
                }
                slices[n] = io::IoSlice::new(&self.out[from..]);
                write_all_slices(&mut self.file, &mut slices[..n + 1])
            } else if !self.out.is_empty() {
                self.file.write_all(&self.out)
            } else {
                Ok(())
            };
            self.note_error(r);
        }
        self.out.clear();
        self.pieces.clear();
        for b in self.recycle.drain(..) {
            return_block(b);
        }
    }

    /// Records the first write error and says so on stderr: the trace is incomplete, so an
    /// analysis of it may miss what the run did.
    #[cold]
    fn note_error(&mut self, r: io::Result<()>) {
        if let (Err(e), None) = (r, &self.failed) {
            crate::checked::notice::say(format_args!(
                "lockcheck: incomplete trace: writing {} failed ({e}); later events are lost, so \
                 `lockcheck analyze` on it may miss findings",
                self.path.display()
            ));
            self.failed = Some(e);
        }
    }

    /// Writes a stream's records, front block to back, and recycles the blocks drained.
    fn drain(&mut self, b: &ThreadBuf) {
        let mut side = b.side.lock();
        let mut consumed = b.consumed.load(Ordering::Relaxed);
        loop {
            let (blk, last) = {
                let chain = b.chain.lock();
                let Some(front) = chain.front() else { break };
                (&**front as *const Block, chain.len() == 1)
            };
            // SAFETY: only the writer (under `WRITER`'s lock, held here) removes blocks from a
            // chain, and `b` keeps the chain alive.
            let blk = unsafe { &*blk };
            let n = blk.committed.load(Ordering::Acquire);
            if n > consumed && !side.declared {
                side.declared = true;
                self.emit(&Event::Thread {
                    t: b.thread,
                    name: b.name.clone(),
                });
            }
            // One loop per format, so that neither tests the format per record.
            let recs = &blk.recs[consumed.min(n)..n];
            if self.raw {
                self.clock_record();
                self.drain_raw(b.thread, &mut side, recs);
            } else {
                // Version 2: every record turned into its event (a short one as the `Rec` it
                // stands for: the producers write short records for every format).
                let mut i = 0;
                while i < recs.len() {
                    let (r, n) = rec_at(recs, i);
                    self.format_direct(b.thread, &mut side, &r);
                    i += n;
                }
            }
            self.records += n.saturating_sub(consumed);
            consumed = n;
            if last {
                break;
            }
            // Full and written: recycle it (the producer moved on to a later block).
            let front = b.chain.lock().pop_front();
            consumed = 0;
            if let Some(front) = front {
                let before = FULL.fetch_sub(1, Ordering::AcqRel);
                debug_assert!(before > 0, "a full block taken before it was counted");
                if self.pieces.is_empty() {
                    // Nothing points into it (its records were copied, or formatted).
                    return_block(front);
                } else {
                    // Back to the pool once its records are written (`write_out`).
                    self.recycle.push(front);
                    if self.recycle.len() >= MAX_PIECES {
                        self.write_out();
                    }
                }
            }
        }
        b.consumed.store(consumed, Ordering::Release);
        // The stream's last block, which `pieces` may point into, goes back to the pool when
        // the stream is let go (a thread that ended): written before this returns.
        if !self.pieces.is_empty() || !self.recycle.is_empty() {
            self.write_out();
        }
    }

    /// Version 5: declares what the records use (locks, classes, sites, permits; drops and
    /// tasks' held-across-await findings as in version 2), then writes the records out in
    /// `block`s ([`Writer::put_raw`]). Per record a kind test and the two declaration caches, no formatting: the
    /// reader derives hold times and statistics (see [`lockcheck_core::lct::raw`]).
    ///
    /// `recs` must stay unchanged until the next [`Writer::write_out`] (as [`Writer::put_raw`]
    /// requires): records of a block of a stream being drained, which the writer recycles only
    /// in `write_out`, and which its stream holds until then ([`Writer::drain`] writes out
    /// before it returns).
    fn drain_raw(&mut self, t: u64, side: &mut Side, recs: &[Word]) {
        let mut from = 0;
        // The last two locks and sites declared: a lock's acquisition, its request and its
        // release often follow each other, and a nested pair alternates between two locks and
        // two sites, so they need no look-up after the first (nothing is forgotten during a
        // drain: drops are written at the end of a pass). Replaced first in, first out; a hit
        // changes nothing.
        if recs.is_empty() {
            return;
        }
        let first = rec_at(recs, 0).0;
        // No lock or site: instances are below 2^40, sites are user-space addresses.
        let (mut ls, mut ss) = ([!first.a; 2], [!first.b; 2]);
        let mut i = 0;
        loop {
            // The records that need nothing (their lock and site among the last two) in a loop
            // without calls, which keeps the four in registers; then the one that needs more.
            i = first_miss(recs, i, ls, ss);
            if i >= recs.len() {
                break;
            }
            let (r, k) = rec_at(recs, i);
            let r = &r;
            let c = (r.head >> 32) as u32;
            match r.head as u8 {
                K_ACQUIRE | K_FAIL => {
                    if not_recent(&mut ls, r.a) {
                        self.lock(r.a, c);
                    }
                    if not_recent(&mut ss, r.b) {
                        self.site(r.b);
                    }
                }
                K_RELEASE | K_CONVERT | K_COND_WAIT => {
                    if not_recent(&mut ls, r.a) {
                        self.lock(r.a, c);
                    }
                }
                K_REQUEST if r.x == 0 => {
                    if not_recent(&mut ls, r.a) {
                        self.lock(r.a, c);
                    }
                    if not_recent(&mut ss, r.b) {
                        self.site(r.b);
                    }
                }
                K_REQUEST => {
                    // A semaphore's permits may need a `lock` or `forget` event: at its place.
                    // SAFETY: see `drain_raw`.
                    unsafe { self.put_raw(t, &recs[from..i]) };
                    from = i;
                    self.lock_permits(r.a, c, r.x);
                    self.site(r.b);
                }
                K_FORK | K_JOIN => {}
                // Written by `end_pass`; the record itself is skipped by readers.
                K_DROP => {
                    // Noted ones too: what the runtime noted of the lock goes at the pass's end.
                    if self.locks.contains(&r.a) || r.x != 0 {
                        self.deferred_drops.push(r.a);
                    }
                }
                // Anything else is written as its event, at its place.
                _ => {
                    // SAFETY: see `drain_raw`.
                    unsafe { self.put_raw(t, &recs[from..i]) };
                    from = i + k;
                    self.format_direct(t, side, r);
                }
            }
            i += k;
        }
        // SAFETY: see `drain_raw`.
        unsafe { self.put_raw(t, &recs[from..]) };
    }

    /// A `block` record of `recs`, byte for byte (little-endian words).
    ///
    /// # Safety
    /// A run of [`DIRECT_BYTES`] or more is written in place by the next [`Writer::write_out`]:
    /// `recs` must stay alive and unchanged until then.
    unsafe fn put_raw(&mut self, t: u64, recs: &[Word]) {
        if recs.is_empty() || self.failed.is_some() {
            return;
        }
        raw::encode_block_head_bytes(&mut self.out, t, recs.len() * 8);
        #[cfg(target_endian = "little")]
        {
            // SAFETY: the words are initialized (below `committed`; `UnsafeCell` and
            // `MaybeUninit` are transparent).
            let bytes = unsafe {
                std::slice::from_raw_parts(recs.as_ptr() as *const u8, std::mem::size_of_val(recs))
            };
            if bytes.len() >= DIRECT_BYTES {
                // Written from the block itself, behind what is gathered, by the next
                // `write_out`: no copy into `out` (a full block is 40 KiB; copying it was about
                // half the writer's instructions), and one vectored write for the runs of a
                // stream's pass rather than one per run (7,816 -> 654 writes per 2 million
                // pairs recorded on two threads). The same bytes in the same order as the copy.
                self.pieces.push(Piece {
                    at: self.out.len(),
                    ptr: bytes.as_ptr(),
                    len: bytes.len(),
                });
                if self.pieces.len() >= MAX_PIECES {
                    self.write_out();
                }
                return;
            }
            self.out.extend_from_slice(bytes);
        }
        #[cfg(not(target_endian = "little"))]
        for slot in recs {
            // SAFETY: as above.
            let w = unsafe { (*slot.get()).assume_init() };
            self.out.extend_from_slice(&w.to_le_bytes());
        }
        self.chunk();
    }

    /// Version 4: a `clock` record when the scale changed since the last.
    fn clock_record(&mut self) {
        let k = self.scale.ns_per_tick();
        if self.raw && k != self.clock_written && self.failed.is_none() {
            self.clock_written = k;
            raw::encode_clock(&mut self.out, k);
        }
    }

    fn class(&mut self, c: u32) -> u32 {
        if self.classes.get(c).is_none() {
            self.classes.entry(c, || ());
            let info = class_info(c);
            self.emit(&Event::Class {
                c,
                key: info.key,
                kind: info.kind,
            });
            // Written before this trace began, perhaps through instances it never shows.
            if info.written != 0 && info.written - 1 < self.generation {
                self.emit(&Event::ClassWritten { c });
            }
        }
        c
    }

    /// Declares lock `l` (and its class) unless it was: a direct-mapped cache in front of the
    /// set, since every record asks.
    #[inline(always)]
    fn lock(&mut self, l: u64, c: u32) -> u64 {
        let slot = cache_slot(l, LOCK_CACHE);
        if self.lock_cache[slot] == l.wrapping_add(1) {
            return l;
        }
        self.lock_miss(l, c, slot)
    }

    #[inline(never)]
    fn lock_miss(&mut self, l: u64, c: u32, slot: usize) -> u64 {
        if !self.locks.contains(&l) {
            self.class(c);
            self.locks.insert(l);
            // What the runtime already knows of the lock, perhaps from before this trace began
            // (its permits, its first write), said at its first appearance.
            let k = known(l);
            if k.permits > 0 {
                self.permits_known.insert(l, k.permits);
            }
            self.emit(&Event::Lock {
                l,
                c,
                permits: (k.permits > 0).then_some(k.permits),
            });
            if k.written_before(self.generation) {
                self.emit(&Event::Written { l });
            }
        }
        self.lock_cache[slot] = l.wrapping_add(1);
        l
    }

    /// Forgets lock `l` (its drop was written).
    fn forget_lock(&mut self, l: u64) {
        self.locks.remove(&l);
        self.permits_known.remove(&l);
        let slot = cache_slot(l, LOCK_CACHE);
        if self.lock_cache[slot] == l.wrapping_add(1) {
            self.lock_cache[slot] = 0;
        }
    }

    /// Declares lock `l` for a request that saw `permits` (a semaphore's own count; 0 for other
    /// locks), and makes the trace say exactly those permits before the request, so that readers
    /// judge every request against the count its thread saw, whatever order the writer drains
    /// the streams in (a `forget_permits` or `add_permits` on one thread, a request on another):
    /// more permits than written, by a repeated `lock` event (readers take the most given);
    /// fewer, by a `forget` event of the difference. A request that saw 0 changes nothing: a
    /// semaphore with no permits has no holder, so no wait cycle goes through it, and the next
    /// request that sees some says them.
    fn lock_permits(&mut self, l: u64, c: u32, permits: u64) -> u64 {
        let known = self.permits_known.get(&l).copied().unwrap_or(0);
        if permits == known || permits == 0 {
            return self.lock(l, c);
        }
        if permits < known {
            let l = self.lock(l, c);
            self.permits_known.insert(l, permits);
            self.emit(&Event::Forget {
                l,
                n: known - permits,
            });
            return l;
        }
        self.class(c);
        self.locks.insert(l);
        self.permits_known.insert(l, permits);
        self.emit(&Event::Lock {
            l,
            c,
            permits: Some(permits),
        });
        l
    }

    /// The number of a site, declared (with its symbolized backtrace) on first use.
    #[inline(always)]
    fn site(&mut self, word: u64) -> u32 {
        let slot = cache_slot(word, SITE_CACHE);
        let (k, s) = self.site_cache[slot];
        if k == word {
            return s;
        }
        let s = self.site_slow(site_of(word));
        self.site_cache[slot] = (word, s);
        s
    }

    #[inline(never)]
    fn site_slow(&mut self, site: Site) -> u32 {
        let key = site as *const Location<'static> as usize;
        if let Some(&s) = self.sites.get(&key) {
            return s;
        }
        let s = self.sites.len() as u32 + 1;
        self.sites.insert(key, s);
        let bt = SITE_TRACES.lock().as_mut().and_then(|m| m.remove(&key));
        let frames = bt.map(|t| frames_of(&t)).unwrap_or_default();
        self.emit(&Event::Site {
            s,
            loc: site.to_string(),
            frames,
        });
        if self.raw && self.failed.is_none() {
            raw::encode_site_word(&mut self.out, key as u64, s);
        }
        s
    }

    /// Writes an `acquire` (or `fail`) straight from the record's fields, in either format.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn put_acquire(
        &mut self,
        fail: bool,
        t: u64,
        l: u64,
        m: Mode,
        how: How,
        s: Option<u32>,
        wait_ns: u64,
    ) {
        if self.failed.is_none() {
            lockcheck_core::lct::encode_acquire(&mut self.out, fail, t, l, m, how, s, wait_ns);
            self.chunk();
        }
    }

    #[inline(always)]
    fn put_request(
        &mut self,
        t: u64,
        l: u64,
        m: Mode,
        s: Option<u32>,
        n: u32,
        short: Option<ShortPermits>,
    ) {
        if self.failed.is_none() {
            lockcheck_core::lct::encode_request(&mut self.out, t, l, m, s, n, short);
            self.chunk();
        }
    }

    #[inline(always)]
    fn put_release(&mut self, t: u64, l: u64, hold_ns: u64) {
        if self.failed.is_none() {
            lockcheck_core::lct::encode_release(&mut self.out, t, l, hold_ns);
            self.chunk();
        }
    }

    /// Writes the output to the file once a chunk is gathered.
    #[inline(always)]
    fn chunk(&mut self) {
        if self.out.len() >= OUT_CHUNK {
            self.write_out();
        }
    }

    /// The statistics and the hold-time stack of an acquisition.
    #[inline(always)]
    fn acquired(&mut self, side: &mut Side, c: u32, r: &Rec) {
        let wait_ns = r.x;
        let st = self.stats.entry(c, ClassStats::default);
        st.acquisitions += 1;
        if wait_ns > 0 {
            st.contended += 1;
            st.wait_total_ns += wait_ns;
            st.wait_max_ns = st.wait_max_ns.max(wait_ns);
        }
        if side.held.push(r.a, r.ts) {
            self.unmeasured_holds += 1;
        }
    }

    /// The hold time of a release (from the hooks, or the clock readings) and its statistics.
    #[inline(always)]
    fn released(&mut self, side: &mut Side, c: u32, r: &Rec) -> u64 {
        let since = side.held.take(r.a);
        let hold_ns = match since {
            _ if r.x != 0 => r.x,
            Some(since) => self.scale.ns(since, r.ts),
            None => 0,
        };
        let st = self.stats.entry(c, ClassStats::default);
        st.hold_total_ns += hold_ns;
        st.hold_max_ns = st.hold_max_ns.max(hold_ns);
        hold_ns
    }

    /// Every record the long way: declarations, then the event's encoder.
    #[inline(always)]
    fn format_direct(&mut self, t: u64, side: &mut Side, r: &Rec) {
        let c = (r.head >> 32) as u32;
        match r.head as u8 {
            K_REQUEST => {
                let l = self.lock_permits(r.a, c, r.x);
                let s = Some(self.site(r.b));
                self.put_request(t, l, mode_of(r.head), s, permits_of(r), short_of(r));
            }
            K_ACQUIRE => {
                let l = self.lock(r.a, c);
                let s = Some(self.site(r.b));
                if r.head & REQUESTED != 0 {
                    self.put_request(t, l, mode_of(r.head), s, 1, None);
                }
                self.acquired(side, c, r);
                self.put_acquire(false, t, l, mode_of(r.head), how_of(r.head), s, r.x);
            }
            K_FAIL => {
                let l = self.lock(r.a, c);
                let s = Some(self.site(r.b));
                self.put_acquire(true, t, l, mode_of(r.head), how_of(r.head), s, r.x);
            }
            K_FAILS => {
                let l = self.lock(r.a, c);
                let s = Some(self.site(r.b));
                self.emit(&Event::Fail {
                    t,
                    l,
                    m: mode_of(r.head),
                    how: how_of(r.head),
                    s,
                    wait_ns: r.x,
                    n: u32::try_from(r.ts).unwrap_or(u32::MAX),
                });
            }
            K_RELEASE => {
                let l = self.lock(r.a, c);
                let hold_ns = self.released(side, c, r);
                self.put_release(t, l, hold_ns);
            }
            K_CONVERT => {
                let l = self.lock(r.a, c);
                self.emit(&Event::Convert {
                    t,
                    l,
                    m: mode_of(r.head),
                });
            }
            K_COND_WAIT | K_COND_WAIT_TIMED => {
                let l = self.lock(r.a, c);
                self.emit(&Event::CondWait {
                    t,
                    cv: r.b,
                    l,
                    timed: r.head as u8 == K_COND_WAIT_TIMED,
                });
            }
            K_NOTIFY => {
                let s = Some(self.site(r.b));
                self.emit(&Event::Notify { t, cv: r.a, s });
            }
            forked::K_LEFT_HELD => {
                let l = self.lock(r.a, c);
                let s = Some(self.site(r.b));
                self.emit(&Event::LeftHeld {
                    t,
                    l,
                    m: mode_of(r.head),
                    s,
                });
            }
            K_FORK => self.emit(&Event::Fork { t, child: r.a }),
            K_JOIN => self.emit(&Event::Join {
                t,
                child: r.a,
                scope: r.b != 0,
            }),
            K_RETURNED => self.emit(&Event::Returned { t }),
            #[cfg(feature = "tokio")]
            K_HELD_ACROSS_AWAIT => {
                let rest = HELD_ACROSS.lock().take(r.x as usize);
                if let Some((held, ht, hsite)) = rest {
                    let l = self.lock(r.a, c);
                    let h = self.lock(held.inst, held.class);
                    let s = Some(self.site(r.b));
                    let hs = Some(self.site(site_word(hsite)));
                    self.emit(&Event::HeldAcrossAwait {
                        t,
                        l,
                        m: mode_of(r.head),
                        s,
                        h,
                        ht,
                        hs,
                    });
                }
            }
            // Written by `end_pass`.
            K_DROP if self.locks.contains(&r.a) || r.x != 0 => self.deferred_drops.push(r.a),
            _ => {}
        }
    }
}

/// Raw records of at least this many bytes (about a hundred records) go from their block to the
/// file without a copy ([`Writer::put_raw`]); fewer are gathered with the rest of the output.
const DIRECT_BYTES: usize = 4096;

/// Writes `slices` to `file` in their order, in as few vectored writes as the file takes
/// (`Write`'s `write_all_vectored` is not stable).
fn write_all_slices(file: &mut File, slices: &mut [io::IoSlice<'_>]) -> io::Result<()> {
    let mut rest = slices;
    // Drops empty leading slices (nothing gathered), so that a write is never of empty slices
    // only.
    io::IoSlice::advance_slices(&mut rest, 0);
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Runs of raw records a [`Writer`] holds to write in place before it recycles their blocks.
const MAX_PIECES: usize = 16;

/// A run of raw records to be written from its block, behind `out[..at]` (see
/// [`Writer::put_raw`]). Its bytes are records below a block's published length, which no one
/// writes again until the writer recycles the block, and the writer recycles it only after the
/// write (`Writer::recycle`); the block of a stream's last run is held by the stream, which
/// [`Writer::drain`] writes out before it lets go.
struct Piece {
    at: usize,
    ptr: *const u8,
    len: usize,
}

impl Piece {
    /// # Safety
    /// The run must still be alive and unchanged (see [`Piece`]).
    unsafe fn bytes(&self) -> &[u8] {
        // SAFETY: as the caller promises.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

// SAFETY: a `Piece` points into a block's published records, which no thread writes while the
// writer holds the piece (see `Piece`); the writer uses it under `WRITER`'s lock only.
unsafe impl Send for Piece {}

/// Entries of the writer's direct-mapped caches (powers of two).
const LOCK_CACHE: usize = 4096;
const SITE_CACHE: usize = 1024;

/// `[x; N]` on the heap, without building it on the stack first.
fn boxed_array<T: Clone, const N: usize>(x: T) -> Box<[T; N]> {
    vec![x; N]
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!("a vector of N elements"))
}

#[inline(always)]
fn cache_slot(key: u64, size: usize) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & (size - 1)
}

/// The user frames of a site's raw backtrace, symbolized now (lockcheck's and std's own frames
/// skipped, at most 16).
fn frames_of(bt: &Trace) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut done = false;
    for &ip in bt.ips() {
        // One instruction pointer can stand for several inlined functions.
        backtrace::resolve(ip as *mut std::ffi::c_void, |sym| {
            if done {
                return;
            }
            let name = sym.name().map(|n| format!("{n:#}"));
            let n = name.as_deref().unwrap_or("?");
            if n.contains("__rust_begin_short_backtrace") || n.starts_with("std::rt::lang_start") {
                done = true;
                return;
            }
            if super::report::is_internal(n) || n.starts_with("__rust") {
                return;
            }
            if out.len() >= 16 {
                done = true;
                return;
            }
            out.push(Frame {
                function: name,
                file: sym.filename().map(|f| f.display().to_string()),
                line: sym.lineno(),
            });
        });
        if done {
            break;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Async tasks (feature `tokio`): a task's lock events form its own stream, with the task's holder
// number (bit 62 set) as thread number and `task #N` as name, wherever the task runs, so that the
// analyzer treats tasks as threads. Streams of tasks that hold nothing any more leave the map at the
// writer's next pass once drained (and then the buffer list): memory follows the tasks holding
// async locks, and a task locking in a loop keeps one stream. A task's stream
// may be appended to from several worker threads over its life, so it is appended to under its
// chain lock (`ThreadBuf::push_locked`).

/// The task streams, by holder. Each entry also says whether its task held nothing after its last record (`idle`): such a
/// stream stays in the map, so a task that takes and releases a lock in a loop keeps writing into
/// one stream, until a writer pass finds it drained and idle and lets it go
/// ([`evict_idle_tasks`]); a task that ends holding nothing thus leaves the map within a pass.
#[cfg(feature = "tokio")]
static TASK_BUFS: PlMutex<Option<HashMap<u64, TaskStream>>> = PlMutex::new(None);

/// A task's stream in [`TASK_BUFS`], and whether the task held nothing after its last record.
#[cfg(feature = "tokio")]
struct TaskStream {
    buf: Arc<ThreadBuf>,
    idle: bool,
}

/// Lets go of the task streams that are drained and whose task held nothing after its last
/// record, and of those of an earlier recording: called by the writer after a pass, before the
/// list of streams drops the drained ones. A task that comes back gets a new stream, which
/// [`BUFFERS`] lists after the old one, so the writer still reads the two in order.
///
/// Lock order: the writer's lock, then `TASK_BUFS` (nothing takes the writer's lock under it).
#[cfg(feature = "tokio")]
fn evict_idle_tasks() {
    let generation = GENERATION.load(Ordering::Acquire);
    let mut map = super::state::internal(&TASK_BUFS);
    if let Some(map) = map.as_mut() {
        // Kept: this recording's streams whose task holds something, or with records to drain.
        map.retain(|_, s| s.buf.generation == generation && (!s.idle || s.buf.pending()));
    }
}

/// Lock order: `TASK_BUFS`, then `BUFFERS`; a full block is handed over as in `push`.
#[cfg(feature = "tokio")]
fn push_task(holder: u64, rec: Rec, last: bool) {
    if STATE_FLAG.load(Ordering::Relaxed) != ON {
        return;
    }
    let generation = GENERATION.load(Ordering::Acquire);
    let (b, new) = {
        let mut map = super::state::internal(&TASK_BUFS);
        let map = map.get_or_insert_with(HashMap::new);
        let b = match map.get_mut(&holder) {
            Some(s) if s.buf.generation == generation => {
                s.idle = last;
                (Arc::clone(&s.buf), false)
            }
            _ => {
                let b = ThreadBuf::new(holder, Some(super::state::thread_name(holder)), generation);
                BUFFERS.lock().push(Arc::clone(&b));
                map.insert(
                    holder,
                    TaskStream {
                        buf: Arc::clone(&b),
                        idle: last,
                    },
                );
                (b, true)
            }
        };
        // (`b` is held until the record is in: a stream the writer lets go meanwhile stays
        // listed while this clone lives, and is drained before a newer stream of the task.)
        b
    };
    let push = |rec: Rec| {
        if let Some(backlog) = b.push_locked(rec) {
            if backlog >= WAKE_AFTER {
                wake_writer();
            }
            if backlog >= MAX_FULL {
                wait_for_writer();
            }
        }
    };
    if new {
        // The task's first record of this recording (or since its stream was let go, holding
        // nothing): the locks it holds already, as in a thread's stream (`show_held`), outside
        // `TASK_BUFS` (the holds are read under their shard's lock).
        let mut shown = Vec::new();
        let acquiring = (rec.head as u8 == K_ACQUIRE).then_some(rec.a);
        crate::tokio::track::held_in_trace(holder, acquiring, &mut shown);
        for (ids, mode, site, n) in shown {
            for _ in 0..n {
                push(Rec {
                    head: head(K_ACQUIRE, mode, How::Try, ids.class),
                    a: ids.inst,
                    b: site_word(site),
                    x: 0,
                    ts: clock::now(),
                });
            }
        }
    }
    push(rec);
}

/// The recording's generation (a new one at each start and stop): what a task's stream was
/// shown once per recording is shown again in the next (`tokio::track::rec_sync_in_task`); a
/// thread's end is in the trace if recording was on, in this generation, at its spawn
/// (`thread::end_in_trace`).
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
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
        Rec {
            head: head(K_ACQUIRE, mode, how, ids.class),
            a: ids.inst,
            b: site_word(site),
            x: wait_ns,
            ts: clock::now(),
        },
        false,
    );
}

/// A failed try by an async task (not this thread's own stream): the `fail` event, in the
/// holder's stream.
#[cfg(feature = "tokio")]
pub(crate) fn on_task_fail(holder: u64, ids: Ids, mode: Mode, site: Site) {
    if !site_seen_locally(site) {
        note_site(site);
    }
    push_task(
        holder,
        Rec {
            head: head(K_FAIL, mode, How::Try, ids.class),
            a: ids.inst,
            b: site_word(site),
            x: 0,
            ts: 0,
        },
        false,
    );
}

/// A blocking acquisition by an async task (or a thread in `blocking_*`: `holder` is then this
/// thread), about to be checked: the `request` event, in the holder's stream. `short`: what the
/// runtime saw of a semaphore lacking permits for it (the event's `short`), else `None`.
#[cfg(feature = "tokio")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn on_task_request(
    holder: u64,
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    site: Site,
    capacity: usize,
    permits: u32,
    short: Option<ShortPermits>,
) {
    let here = !crate::tokio::track::is_task(holder)
        && STATE.try_with(|s| s.id()).is_ok_and(|me| me == holder);
    if !site_seen_locally(site) {
        note_site(site);
    }
    let rec = request_rec(ids, kind, mode, site, capacity, permits, short);
    if here {
        return push(rec);
    }
    push_task(holder, rec, false);
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
    if STATE_FLAG.load(Ordering::Relaxed) != ON {
        return;
    }
    for s in [site, held_site] {
        if !site_seen_locally(s) {
            note_site(s);
        }
    }
    let index = { super::state::internal(&HELD_ACROSS).put((held, owner, held_site)) };
    let rec = Rec {
        head: head(K_HELD_ACROSS_AWAIT, mode, How::Blocking, ids.class),
        a: ids.inst,
        b: site_word(site),
        x: index as u64,
        ts: 0,
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
        Rec {
            head: head(K_RELEASE, Mode::Exclusive, How::Blocking, ids.class),
            a: ids.inst,
            b: 0,
            x: hold_ns,
            ts: clock::now(),
        },
        last,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A held-across-await entry's slot goes back once the writer takes it: ten thousand events
    /// written one after another need one slot, not ten thousand (trust16's finding: one slot
    /// per event until the recording stopped).
    #[cfg(feature = "tokio")]
    #[test]
    fn held_across_await_slots_are_given_back() {
        let mut t = SideTable::new();
        let e: HeldAcross = (Ids { inst: 1, class: 2 }, 3, Location::caller());
        for _ in 0..10_000 {
            let i = t.put(e);
            assert_eq!(t.take(i).map(|x| x.1), Some(3));
            assert!(t.take(i).is_none(), "taken once");
        }
        assert_eq!(t.entries.len(), 1);
        // Several waiting at once: as many slots as wait, reused after.
        let a: Vec<usize> = (0..5).map(|_| t.put(e)).collect();
        for &i in &a {
            assert!(t.take(i).is_some());
        }
        let b: Vec<usize> = (0..5).map(|_| t.put(e)).collect();
        assert_eq!(t.entries.len(), 5);
        for i in b {
            assert!(t.take(i).is_some());
        }
        t.clear();
        assert!(t.entries.is_empty() && t.free.is_empty());
    }

    /// The writer's hold stack: innermost first, a release below the top found, the oldest
    /// entries dropped (and said) past [`HELD_TIMES`], and their releases unmeasured.
    #[test]
    fn hold_times_pair_releases_with_their_acquisitions() {
        let mut h = HeldTimes::default();
        assert!(!h.push(1, 10));
        assert!(!h.push(2, 20));
        assert!(!h.push(1, 30)); // lock 1 again (a read lock taken twice)
        assert_eq!(h.take(2), Some(20)); // below the top
        assert_eq!(h.take(1), Some(30)); // the innermost hold of 1
        assert_eq!(h.take(1), Some(10));
        assert_eq!(h.take(1), None);
        assert_eq!(h.len, 0);
        let dropped = (0..HELD_TIMES as u64 + 3)
            .filter(|&l| h.push(100 + l, l))
            .count();
        assert_eq!(dropped, 3);
        assert_eq!(h.len, HELD_TIMES);
        for l in 0..3 {
            assert_eq!(h.take(100 + l), None, "lock {l} fell out of the window");
        }
        assert_eq!(h.take(103), Some(3)); // the oldest kept, at the bottom
        let top = 100 + HELD_TIMES as u64 + 2;
        assert_eq!(h.take(top), Some(HELD_TIMES as u64 + 2));
        assert_eq!(h.len, HELD_TIMES - 2);
    }

    /// A thread that outruns a stalled writer stops at the backlog bound (memory stays bounded)
    /// instead of dropping events, and once the writer can run again every record is written, in
    /// order.
    #[test]
    fn a_thread_that_outruns_the_writer_waits_and_loses_nothing() {
        let path =
            std::env::temp_dir().join(format!("lockcheck-unit-backlog-{}.lct", std::process::id()));
        start(&path).unwrap();
        const BASE: u64 = 1 << 40;
        let n = (MAX_FULL + 8) * (BLOCK_WORDS / LONG);
        let site = Location::caller();
        // Stall the writer (and any thread that would do its work) by holding its lock.
        let stall = WRITER.lock();
        let producer = std::thread::spawn(move || {
            for i in 0..n as u64 {
                let ids = Ids {
                    inst: BASE + i,
                    class: 0,
                };
                on_acquire(ids, Mode::Exclusive, How::Try, site, 0);
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !producer.is_finished(),
            "the producer must wait for the writer"
        );
        let backlog = FULL.load(Ordering::Acquire);
        assert!(
            (MAX_FULL..=MAX_FULL + 1).contains(&backlog),
            "{backlog} full blocks: bounded"
        );
        drop(stall);
        producer.join().unwrap();
        stop().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(lockcheck_core::lct::check_magic(&bytes), Ok(5));
        let mut next = BASE;
        for e in read_lct(&bytes) {
            if let Event::Acquire { l, .. } = e {
                if l >= BASE {
                    assert_eq!(l, next, "in order, none missing");
                    next += 1;
                }
            }
        }
        assert_eq!(next, BASE + n as u64, "every record written");
        let _ = std::fs::remove_file(&path);
    }

    /// The words of `recs` in a block: each a short record where it has one (see [`Short`]: a
    /// blocking acquisition without a wait, a release without a measured hold), else a `Rec`.
    fn words(recs: impl IntoIterator<Item = Rec>) -> Vec<Word> {
        let mut out = Vec::new();
        for r in recs {
            let kind = r.head as u8;
            let ids = Ids {
                inst: r.a,
                class: (r.head >> 32) as u32,
            };
            let plain = (r.head >> 16) & 0xff == 0 && r.x == 0 && r.a >> 40 == 0;
            let short: Vec<u64> = if kind == K_ACQUIRE && plain && r.b & 7 == 0 {
                let shape = raw::SHORT_ACQUIRE + u64::from(r.head & REQUESTED != 0);
                vec![Short::first(ids, shape), r.b | (r.head >> 8 & 0xff), r.ts]
            } else if kind == K_RELEASE && plain {
                vec![Short::first(ids, raw::SHORT_RELEASE), r.ts]
            } else {
                vec![r.head, r.a, r.b, r.x, r.ts]
            };
            out.extend(
                short
                    .into_iter()
                    .map(|w| UnsafeCell::new(MaybeUninit::new(w))),
            );
        }
        out
    }

    /// Every event of a `.lct` file of version 2 or 5.
    fn read_lct(bytes: &[u8]) -> Vec<Event> {
        let mut raw = raw::RawDecoder::for_version(5);
        let mut out = Vec::new();
        let mut pos = lockcheck_core::lct::MAGIC.len();
        loop {
            if let Some(n) = raw.decode(&bytes[pos..], &mut out).unwrap() {
                pos += n;
            } else if let Some((e, n)) = lockcheck_core::lct::decode(&bytes[pos..]).unwrap() {
                out.push(e);
                pos += n;
            } else {
                return out;
            }
        }
    }

    /// A record written the general way: declarations, then the [`Event`] through
    /// [`Writer::emit`].
    fn emit_record(w: &mut Writer, t: u64, side: &mut Side, mut r: Rec) {
        if r.head as u8 == K_ACQUIRE && r.head & REQUESTED != 0 {
            emit_record(w, t, side, folded_request(&r));
            r.head &= !REQUESTED;
        }
        let c = (r.head >> 32) as u32;
        let (m, how) = (mode_of(r.head), how_of(r.head));
        let e = match r.head as u8 {
            K_REQUEST => {
                let l = w.lock_permits(r.a, c, r.x);
                let s = Some(w.site(r.b));
                let n = permits_of(&r);
                let short = short_of(&r);
                Event::Request {
                    t,
                    l,
                    m,
                    s,
                    n,
                    short,
                }
            }
            K_ACQUIRE | K_FAIL => {
                let l = w.lock(r.a, c);
                let s = Some(w.site(r.b));
                let wait_ns = r.x;
                if r.head as u8 == K_FAIL {
                    Event::Fail {
                        t,
                        l,
                        m,
                        how,
                        s,
                        wait_ns,
                        n: 1,
                    }
                } else {
                    w.acquired(side, c, &r);
                    Event::Acquire {
                        t,
                        l,
                        m,
                        how,
                        s,
                        wait_ns,
                    }
                }
            }
            K_RELEASE => {
                let l = w.lock(r.a, c);
                let hold_ns = w.released(side, c, &r);
                Event::Release { t, l, hold_ns }
            }
            K_DROP => return w.deferred_drops.push(r.a),
            _ => unreachable!("not in the test"),
        };
        w.emit(&e);
    }

    /// What the writer writes from the records in `.lct` version 2 (the direct encoders) is byte
    /// for byte what the general encoder makes of the same events: repeated
    /// records with and without a last number, several threads (one with a task's 19-digit
    /// number), a semaphore's request, a request folded into its acquisition (every other
    /// round), and a lock dropped (whose next use must be declared again).
    #[test]
    fn direct_records_are_what_the_general_encoder_writes() {
        let site_a = Location::caller();
        let site_b = Location::caller();
        let (a, b, sem) = (11u64, 12u64, 13u64);
        let rec =
            |kind: u8, mode: Mode, how: How, l: u64, site: Option<Site>, x: u64, ts: u64| Rec {
                head: head(kind, mode, how, 0),
                a: l,
                b: site.map_or(0, site_word),
                x,
                ts,
            };
        let mut recs = Vec::new();
        for i in 0..4u64 {
            for t in [1u64, 2, 1 << 62 | 5] {
                let wait = if i == 2 { 1234 } else { 0 };
                recs.push((
                    t,
                    rec(
                        K_ACQUIRE,
                        Mode::Exclusive,
                        How::Blocking,
                        a,
                        Some(site_a),
                        wait,
                        100,
                    ),
                ));
                let mut acquire_b = rec(
                    K_ACQUIRE,
                    Mode::Shared,
                    How::Blocking,
                    b,
                    Some(site_b),
                    0,
                    150,
                );
                if i % 2 == 0 {
                    recs.push((
                        t,
                        rec(
                            K_REQUEST,
                            Mode::Shared,
                            How::Blocking,
                            b,
                            Some(site_b),
                            0,
                            0,
                        ),
                    ));
                } else {
                    acquire_b.head |= REQUESTED;
                }
                recs.push((t, acquire_b));
                recs.push((
                    t,
                    rec(
                        K_FAIL,
                        Mode::Exclusive,
                        How::Try,
                        sem,
                        Some(site_b),
                        wait,
                        0,
                    ),
                ));
                recs.push((
                    t,
                    rec(
                        K_REQUEST,
                        Mode::Permit,
                        How::Blocking,
                        sem,
                        Some(site_a),
                        3,
                        0,
                    ),
                ));
                recs.push((
                    t,
                    rec(
                        K_RELEASE,
                        Mode::Exclusive,
                        How::Blocking,
                        b,
                        None,
                        0,
                        150 + i * 1000,
                    ),
                ));
                recs.push((
                    t,
                    rec(K_RELEASE, Mode::Exclusive, How::Blocking, a, None, i, 200),
                ));
                if i == 1 {
                    recs.push((
                        t,
                        rec(K_DROP, Mode::Exclusive, How::Blocking, b, None, 0, 0),
                    ));
                }
            }
        }
        let path =
            std::env::temp_dir().join(format!("lockcheck-unit-direct-{}", std::process::id()));
        let mut direct = Writer::new(File::create(&path).unwrap(), path.clone());
        let mut long = Writer::new(File::create(&path).unwrap(), path.clone());
        let (mut side_m, mut side_l) = (Side::default(), Side::default());
        for &(t, r) in &recs {
            direct.format_direct(t, &mut side_m, &r);
            emit_record(&mut long, t, &mut side_l, r);
            if r.head as u8 == K_DROP {
                for w in [&mut direct, &mut long] {
                    w.end_pass();
                    w.end_pass();
                }
            }
            assert_eq!(direct.out, long.out, "after {t} {:#x}", r.head);
        }
        assert!(
            direct.out.len() > 1000,
            "bytes written: {}",
            direct.out.len()
        );
        let _ = std::fs::remove_file(&path);
    }

    /// What the runtime noted of a lock before a trace (an RwLock's first write, a semaphore's
    /// permits) is declared with the lock's first `lock` event (`.lct` version 2); a noted lock's
    /// drop (`x` 1) takes its note away once the writer has written it, an unnoted one's too.
    #[test]
    fn what_was_noted_of_a_lock_is_declared_with_it_and_goes_with_its_drop() {
        // Lock numbers no lock of this process gets (instances are below 2^40).
        let (rw, sem) = (1u64 << 41, (1u64 << 41) + 1);
        let site = Location::caller();
        let acquire = |l: u64| Rec {
            head: head(K_ACQUIRE, Mode::Shared, How::Blocking, 0),
            a: l,
            b: site_word(site),
            x: 0,
            ts: 1,
        };
        let drop_rec = |l: u64| Rec {
            head: head(K_DROP, Mode::Exclusive, How::Blocking, 0),
            a: l,
            b: 0,
            x: 1,
            ts: 0,
        };
        note_written(rw, super::super::class::NO_CLASS);
        note_permits(sem, 4);
        let path =
            std::env::temp_dir().join(format!("lockcheck-unit-noted-{}", std::process::id()));
        let mut w = Writer::new(File::create(&path).unwrap(), path.clone());
        let mut side = Side::default();
        let mut put = |w: &mut Writer, r: &Rec| w.format_direct(1, &mut side, r);
        for l in [rw, sem] {
            put(&mut w, &acquire(l));
        }
        let events = read_lct(&[&lockcheck_core::lct::MAGIC[..], &w.out].concat());
        assert!(events.contains(&Event::Written { l: rw }), "{events:?}");
        assert!(
            events.contains(&Event::Lock {
                l: sem,
                c: 0,
                permits: Some(4)
            }),
            "{events:?}"
        );
        assert!(!events.contains(&Event::Written { l: sem }), "{events:?}");
        for l in [rw, sem] {
            put(&mut w, &drop_rec(l));
        }
        assert!(known(rw).written != 0, "kept until the drop is written");
        w.end_pass();
        w.end_pass();
        assert!(known(rw).written == 0 && known(sem).permits == 0);
        let _ = std::fs::remove_file(&path);
    }

    /// A run of raw records long enough to go from its block to the file without a copy lands
    /// behind what was gathered before it, byte for byte what the copy would have written; a
    /// short run is gathered.
    #[test]
    fn a_long_run_of_raw_records_is_written_in_place_in_order() {
        let path =
            std::env::temp_dir().join(format!("lockcheck-unit-direct-{}", std::process::id()));
        let mut w = Writer::new(File::create(&path).unwrap(), path.clone());
        w.raw = true;
        // (Hold times measured: `Rec`s, not short releases.)
        let rec = |i: u64| Rec {
            head: head(K_RELEASE, Mode::Exclusive, How::Blocking, 3),
            a: i,
            b: 0,
            x: 1,
            ts: 1000 + i,
        };
        let cells = |n: u64| -> Vec<Word> { words((0..n).map(rec)) };
        let bytes_of = |n: u64, t: u64| {
            let mut out = Vec::new();
            raw::encode_block_head(&mut out, t, n as usize);
            for i in 0..n {
                let r = rec(i);
                for x in [r.head, r.a, r.b, r.x, r.ts] {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            out
        };
        w.out.extend_from_slice(b"before");
        let (long, short) = (DIRECT_BYTES as u64 / 40 + 1, 3);
        let (long_cells, short_cells) = (cells(long), cells(short));
        // SAFETY: the cells outlive the `write_out` calls below.
        unsafe { w.put_raw(7, &long_cells) };
        assert!(w.out.len() < 64, "the long run is not copied");
        assert_eq!(
            w.pieces.len(),
            1,
            "the long run waits to be written in place"
        );
        // SAFETY: as above.
        unsafe { w.put_raw(8, &short_cells) };
        assert!(w.out.len() > 3 * 40, "the short run is gathered");
        w.write_out();
        let mut want = b"before".to_vec();
        want.extend(bytes_of(long, 7));
        want.extend(bytes_of(short, 8));
        assert_eq!(std::fs::read(&path).unwrap(), want);
        // More long runs than a write holds, each between gathered bytes: the same order.
        for t in 0..2 * MAX_PIECES as u64 + 3 {
            w.out.extend_from_slice(&t.to_le_bytes());
            // SAFETY: as above.
            unsafe { w.put_raw(t, &long_cells) };
            want.extend(t.to_le_bytes());
            want.extend(bytes_of(long, t));
            assert!(
                w.pieces.len() < MAX_PIECES,
                "written once {MAX_PIECES} wait"
            );
        }
        w.out.extend_from_slice(b"after");
        want.extend(b"after");
        w.write_out();
        assert!(w.pieces.is_empty() && w.out.is_empty());
        assert_eq!(std::fs::read(&path).unwrap(), want);
        let _ = std::fs::remove_file(&path);
    }

    /// `.lct` version 4 says what version 2 says: the same records (those of the memo test,
    /// with hold times from the readings, a semaphore's permits, and requests folded into their
    /// acquisitions every other round) written raw and the long way
    /// read back as the same lock operations, `drop`s and `forget`s in the same order, the same
    /// declarations, and the same statistics.
    #[test]
    fn raw_blocks_read_back_as_the_events_of_version_2() {
        let site_a = Location::caller();
        let site_b = Location::caller();
        let (a, b, sem) = (31u64, 32u64, 33u64);
        let rec = |kind: u8, mode: Mode, l: u64, site: Option<Site>, x: u64, ts: u64| Rec {
            head: head(kind, mode, How::Blocking, 7),
            a: l,
            b: site.map_or(0, site_word),
            x,
            ts,
        };
        let mut recs = Vec::new();
        for i in 0..6u64 {
            for t in [1u64, 2] {
                let s = (Some(site_a), Some(site_b));
                let mut acquire_a = rec(K_ACQUIRE, Mode::Exclusive, a, s.0, i * 10, 1_000 + i);
                if i % 2 == 0 {
                    recs.push((t, rec(K_REQUEST, Mode::Exclusive, a, s.0, 0, 0)));
                } else {
                    acquire_a.head |= REQUESTED;
                }
                recs.push((t, acquire_a));
                recs.push((t, rec(K_ACQUIRE, Mode::Shared, b, s.1, 0, 2_000 + i)));
                recs.push((t, rec(K_FAIL, Mode::Exclusive, sem, s.1, 5, 0)));
                recs.push((t, rec(K_REQUEST, Mode::Permit, sem, s.0, 3 - i % 3, 2)));
                recs.push((
                    t,
                    rec(K_RELEASE, Mode::Exclusive, b, None, 0, 9_000 * i + 3_000),
                ));
                recs.push((t, rec(K_RELEASE, Mode::Exclusive, a, None, i, 20_000)));
                if i == 3 {
                    recs.push((t, rec(K_DROP, Mode::Exclusive, b, None, 0, 0)));
                }
            }
        }
        let path = std::env::temp_dir().join(format!("lockcheck-unit-raw-{}", std::process::id()));
        let mut v2 = Writer::new(File::create(&path).unwrap(), path.clone());
        let mut v3 = Writer::new(File::create(&path).unwrap(), path.clone());
        v3.raw = true;
        v3.clock_record();
        let mut sides: HashMap<u64, (Side, Side)> = HashMap::new();
        let mut i = 0;
        while i < recs.len() {
            let t = recs[i].0;
            let n = recs[i..].iter().take_while(|r| r.0 == t).count();
            let run = words(recs[i..i + n].iter().map(|r| r.1));
            let (s2, s3) = sides.entry(t).or_default();
            for (_, r) in &recs[i..i + n] {
                v2.format_direct(t, s2, r);
            }
            v3.drain_raw(t, s3, &run);
            if recs[i + n - 1].1.head as u8 == K_DROP {
                for w in [&mut v2, &mut v3] {
                    w.end_pass();
                    w.end_pass();
                }
            }
            i += n;
        }
        for (c, st) in v2.stats.drain() {
            v2.emit(&Event::Stats { c, stats: st });
        }
        raw::encode_end(&mut v3.out);
        let _ = std::fs::remove_file(&path);
        let read = |out: &[u8]| {
            let mut bytes = lockcheck_core::lct::MAGIC.to_vec();
            bytes.extend_from_slice(out);
            let ev = read_lct(&bytes);
            let declared = |e: &Event| {
                matches!(
                    e,
                    Event::Class { .. } | Event::Lock { .. } | Event::Site { .. }
                )
            };
            let mut decl: Vec<String> = ev
                .iter()
                .filter(|e| declared(e))
                .map(|e| format!("{e:?}"))
                .collect();
            decl.sort();
            let ops: Vec<Event> = ev.into_iter().filter(|e| !declared(e)).collect();
            (ops, decl)
        };
        let (ops2, decl2) = read(&v2.out);
        let (ops3, decl3) = read(&v3.out);
        assert!(ops2.len() > 80, "{}", ops2.len());
        assert!(ops2.iter().any(|e| matches!(e, Event::Forget { .. })));
        assert!(ops2.iter().any(|e| matches!(e, Event::Drop { .. })));
        assert!(ops2
            .iter()
            .any(|e| matches!(e, Event::Release { hold_ns, .. } if *hold_ns > 1000)));
        assert!(ops2.iter().any(|e| matches!(e, Event::Stats { .. })));
        assert_eq!(ops2, ops3);
        assert_eq!(decl2, decl3);
    }

    /// Requests of one semaphore as the writer may drain them from several streams, so that
    /// a `forget_permits` or `add_permits` made between them on other threads is out of their
    /// order: before each request, the trace's permits (as readers count them: the most its
    /// `lock` events gave, less what `forget` events removed since) are the ones that request
    /// saw. A request that saw none leaves them (no holder, no cycle through it).
    #[test]
    fn each_request_is_judged_against_the_permits_it_saw() {
        let site = Location::caller();
        let sem = 21u64;
        // Seen by: a request (3), one after a forget (2), one from before it drained late (3),
        // one after an add_permits (4), one of none (0), ones after forgets (1, 1), more (5).
        let caps = [3u64, 2, 3, 4, 0, 1, 1, 5];
        let want = [3u64, 2, 3, 4, 4, 1, 1, 5];
        let path =
            std::env::temp_dir().join(format!("lockcheck-unit-permits-{}", std::process::id()));
        let mut w = Writer::new(File::create(&path).unwrap(), path.clone());
        let mut side = Side::default();
        for (i, &cap) in caps.iter().enumerate() {
            let r = Rec {
                head: head(K_REQUEST, Mode::Permit, How::Blocking, 0),
                a: sem,
                b: site_word(site),
                x: cap,
                ts: if i % 3 == 0 { 2 } else { 0 },
            };
            let t = 1 + i as u64 % 3;
            w.format_direct(t, &mut side, &r);
        }
        let mut events = Vec::new();
        let mut pos = 0;
        while let Some((e, len)) = lockcheck_core::lct::decode(&w.out[pos..]).unwrap() {
            pos += len;
            events.push(e);
        }
        let mut permits: Option<u64> = None;
        let mut judged = Vec::new();
        for e in events {
            match e {
                Event::Lock { l, permits: p, .. } if l == sem => permits = permits.max(p),
                Event::Forget { l, n } if l == sem => {
                    permits = permits.map(|p| p.saturating_sub(n));
                }
                Event::Request { l, n, .. } if l == sem => {
                    judged.push(permits.unwrap_or(0));
                    assert_eq!(n, if judged.len() % 3 == 1 { 2 } else { 1 });
                }
                _ => {}
            }
        }
        assert_eq!(judged, want);
        let _ = std::fs::remove_file(&path);
    }
}
