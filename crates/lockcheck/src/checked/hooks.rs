//! The acquisition path: the hottest code in every user's program.
//!
//! ```text
//! lock():  `#[inline]` entry point (`raw.rs`), compiled in the user's crate, where the
//!          thread-local is one `%fs` offset; `lock_fast`, frameless:
//!            fast switch byte, this thread's copy (`config::ThreadSwitch`, in the same
//!              thread-local access as the held stack), `or` the busy flag and depth byte
//!              (`state::BusyDepth`), one load, one `or`, one branch per case:
//!            0 (checking on, nothing recorded, counted or watched; not busy, nothing held),
//!              identity assigned (the mutex: its try fails until then, `byte_mutex::FRESH`)
//!              -> raw try_lock; success: push one word (the identity word
//!              itself for an exclusive hold: `state::entry`) and the site (the identity too
//!              unless it is the word) --------------------------------------> done
//!            1 (the same, one lock held), not an RwLock's first write, and the memo says this
//!              very request was checked over this very held entry in this epoch (two
//!              compares: `ThreadState::known_top`) -> raw try_lock; success: push -> done
//!            sign (`LOCKCHECK=off`, nothing else on): the raw lock right here
//!            not registered yet: the full path, which registers it
//!          else one tail call: `lock_known` (the exact cache, up to 4 held, out of line; a hit
//!            refreshes the memo), then the full path
//!          recording and nothing else slow (`fast::RECORDING`): `lock_known`'s
//!            `lock_recorded`, the same cases, a push marked recorded and the full path's records
//!          lock_slow (out of line), the same work in full:
//!            no switch on ------------------------------------------------> raw lock
//!            thread busy inside lockcheck (reports, tracing) -------------> raw lock
//!            first write of an RwLock: re-check cycles excused as read-read
//!            recording: a `request` event before any check (the trace keeps the deciding event)
//!            already held by this thread? -------------------------------> self-deadlock verdict
//!            cache miss (cold): global graph, instance and class level; cycle? -> report once
//!            raw try_lock; success: push on the held stack (spills to the heap past 32)
//!          failed try (cold): register in the wait-for graph (deadlock?), wait in 20 ms slices
//!            (a deadlock may pick this thread to give up; a per-class timeout policy), push
//!          a verdict is returned, not raised: the `#[track_caller]` entry point panics at the
//!            user's line with the lock not taken (a condvar relock defers it until it holds
//!            the mutex again: see `defer_if_relocking`)
//!          timing, recording, statistics, watchdog: only when switched on (cold)
//! unlock(): `#[inline]`: the top entry's word is `state::entry(identity, mode)` (untimed, no
//!          graph source; for an exclusive hold, the identity word unmasked): pop,
//!          raw unlock; else one tail call: search down, the timed and graph bookkeeping, raw
//!          unlock
//! ```
//!
//! The held stack is one word per entry (`state::entry`) with the site, identity and time in a
//! parallel array, under a single-owner discipline instead of a `RefCell` (see
//! `ThreadState::held`): nothing here holds it across a call-out.

use super::class::{Ids, Meta, WRITTEN};
use super::graph;
use super::recorder;
use super::report::{publish, EdgeInfo, LockRef, Verdict, Violation, ViolationKind};
use super::state::{
    as_busy, entry, internal, pack, register_switch, with_slow, word, CacheKey, Held, ThreadState,
    STATE,
};
use super::watch;
use crate::config::{action, fast, flag, flags, flags_now, Action};
use lockcheck_core::trace::{is_peek_site, How, LockKind, Mode, TRY_RETRIES};
use std::collections::HashSet;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What the first (and usually only) thread-local access of an acquisition decided.
enum Step {
    /// Not tracked (checking off, thread busy inside lockcheck): take the raw lock.
    Plain,
    /// Acquired by the fast try and pushed on the held stack.
    Done(Ids),
    /// The fast try failed: block (slow path), then push.
    Block(Ids),
    /// A violation to panic on, before taking the lock.
    Raise(Verdict),
}

/// A blocking acquisition: checks, then `try_raw`, else register the wait (wait-for graph) and
/// `lock_raw`, or `lock_for` under a per-class timeout policy.
///
/// `Err`: the lock was not taken and the caller must raise the verdict (a panic under
/// `LOCKCHECK=panic`), from a `#[track_caller]` entry point so that the panic points at the
/// user's line.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(crate) fn lock_blocking(
    meta: &Meta,
    kind: LockKind,
    mode: Mode,
    capacity: usize,
    site: &'static Location<'static>,
    try_raw: impl FnOnce() -> bool,
    lock_raw: impl FnOnce(),
    lock_for: impl Fn(Duration) -> bool,
) -> Result<(), Verdict> {
    // The fast path reads this thread's copy of the switches' byte: registered here, on the
    // thread's first acquisition (which the copy sends here), before any switch is looked at.
    if STATE.try_with(|s| s.switch.unregistered()) == Ok(true) {
        register_switch();
    }
    let f = flags();
    if f & flag::ACTIVE == 0 {
        lock_raw();
        return Ok(());
    }
    // The fast path (see `fast_step`); everything else is the out-of-line `lock_slow`, which
    // does the same work in full.
    let mut try_raw = Some(try_raw);
    match fast_step(meta, kind, mode, site, f, &mut try_raw) {
        Fast::Done => return Ok(()),
        Fast::Block(ids) => {
            return lock_contended(ids, kind, mode, capacity, site, lock_raw, lock_for, f)
        }
        Fast::Nested | Fast::Other => {}
    }
    match try_raw {
        Some(try_raw) => lock_slow(
            meta, kind, mode, capacity, site, try_raw, lock_raw, lock_for, f,
        ),
        // Taken by the fast path only when it then returned.
        None => unreachable!(),
    }
}

/// The fast path, inlined: checking on and nothing timed (no recording, statistics or watchdog,
/// one test of the switches' byte), identity assigned, not an RwLock's first write (which may
/// decide a report), thread not busy inside lockcheck, and nothing held: there is nothing to
/// check, so the raw try and a one-word push. Holding locks, [`nested_step`] (out of line).
/// `Other`: not tried, nothing changed.
#[inline(always)]
fn fast_step(
    meta: &Meta,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
    f: u8,
    try_raw: &mut Option<impl FnOnce() -> bool>,
) -> Fast {
    if f & (flag::INIT | flag::CHECK | flag::SLOW) != flag::INIT | flag::CHECK {
        return Fast::Other;
    }
    let w = meta.word();
    // An RwLock's first write, a semaphore's first acquisition: the full path (`lock_slow`).
    if w == 0
        || (mode == Mode::Exclusive && kind == LockKind::Rwlock && w & WRITTEN == 0)
        || (kind == LockKind::Semaphore && w & WRITTEN == 0)
    {
        return Fast::Other;
    }
    let ids = Ids::from_word(w);
    STATE
        .try_with(|s| {
            if s.busy.get() {
                return Fast::Other;
            }
            if s.holds_any() {
                return nested_step(s, meta, ids, mode, site, f, try_raw);
            }
            // Async locks the running task holds (one thread-local read when it holds none):
            // the full path checks them, and raises at the user's line.
            #[cfg(feature = "tokio")]
            if f & flag::ORDER != 0 && crate::tokio::track::may_hold_async() {
                return Fast::Other;
            }
            let Some(attempt) = try_raw.take() else {
                return Fast::Other;
            };
            if !attempt() {
                return Fast::Block(ids);
            }
            #[cfg(feature = "tokio")]
            push_tagged(s, w, mode, site);
            #[cfg(not(feature = "tokio"))]
            s.push_first(entry(w, mode), w, site);
            Fast::Done
        })
        .unwrap_or(Fast::Other)
}

/// The fast path holding locks: the exact dependency (held set, lock, mode, clock epoch) is
/// already in the thread's cache, with order checking on, at most [`super::state::CACHE_HELD`]
/// held, none of them the requested lock (a possible self-conflict) nor a guard an async task
/// left. The cache is only looked at: the full check (`check_held`) marks it, so a miss here
/// always reaches the graph.
#[inline(always)]
fn nested_step(
    s: &ThreadState,
    meta: &Meta,
    ids: Ids,
    mode: Mode,
    site: &'static Location<'static>,
    f: u8,
    try_raw: &mut Option<impl FnOnce() -> bool>,
) -> Fast {
    if f & flag::ORDER == 0 || !s.known_dependency(pack(ids.inst, mode)) {
        return Fast::Other;
    }
    #[cfg(feature = "tokio")]
    if in_task_or_may_hold_async() {
        return Fast::Other;
    }
    let Some(attempt) = try_raw.take() else {
        return Fast::Other;
    };
    if !attempt() {
        return Fast::Block(ids);
    }
    let w = meta.word();
    s.push_plain(
        entry(w, mode),
        w,
        site,
        #[cfg(feature = "tokio")]
        0,
    );
    Fast::Done
}

/// Whether a nested sync acquisition must leave the fast paths: the running task may hold
/// async locks (the full path checks them), or a task runs at all. A task's own guards are
/// tagged and never in the dependency cache, but a guard tagged 0 (the thread's own code, the
/// runtime's root future) may be, and a task acquiring over it must reach the full path, which
/// reports the guard held across an `.await`. Outside any task the push's tag is 0.
#[cfg(feature = "tokio")]
#[inline(always)]
fn in_task_or_may_hold_async() -> bool {
    crate::tokio::track::may_hold_async() || crate::tokio::track::current_tag() != 0
}

/// The fast path's push onto an empty stack with async tracking: the entry is tagged with the
/// running task.
#[cfg(feature = "tokio")]
#[inline(always)]
fn push_tagged(s: &ThreadState, w: u64, mode: Mode, site: &'static Location<'static>) {
    let task = crate::tokio::track::current_tag();
    let tag = if task != 0 { word::TASK } else { 0 };
    s.push_first(entry(w, mode) ^ tag, w, site, task);
}

/// What [`lock_fast`] did.
pub(crate) enum Taken {
    /// Taken and recorded.
    Yes,
    /// Nothing done: this thread holds locks, or a trace is recorded, so [`lock_known`] may
    /// still take the fast way (out of line; it sends the rest the full way).
    Nested,
    /// Nothing done: the full path.
    No,
}

/// A blocking acquisition's fast path alone, for the hot entry points (`lock`, `read`, `write`),
/// inlined there, calling nothing, so that it needs no frame (its other outcomes are tail calls
/// of the caller). Checking on and nothing timed (one test of the switches' byte, read once),
/// identity assigned, not an RwLock's first write, the thread not busy inside lockcheck, and
/// nothing held, or one lock held with the exact dependency in the thread's cache (see
/// [`lock_known`] for the rules); then the raw try and a one-word push. A failed try goes
/// the full way ([`lock_blocking`], which tries again); with async tracking it waits right here
/// (out of line) and raises a deadlock or timeout verdict at the caller's line. A task that may
/// hold async locks takes the full path, which checks them (`tokio::track::may_hold_async`).
///
/// `TRY_NAMES`: `try_raw` fails on a lock whose identity is not assigned yet (the checked
/// mutex's `byte_mutex::FRESH`), so with nothing held the identity needs no test of its own:
/// it is read after a successful try (which synchronizes with the assignment).
///
/// `try_named`: the try with one lock held and the memo hit, which has read the identity
/// already (assigned: an unassigned one never hits), so it need not fail on an unassigned
/// identity; the checked mutex's is one `lock bts` (`ByteMutex::try_lock_named`), two
/// instructions less than `try_raw`'s exchange.
#[inline(always)]
#[track_caller]
#[allow(clippy::too_many_arguments)]
pub(crate) fn lock_fast<const TRY_NAMES: bool>(
    meta: &Meta,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
    try_raw: impl FnOnce() -> bool,
    try_named: impl FnOnce() -> bool,
    lock_raw: impl FnOnce(),
    lock_for: impl Fn(Duration) -> bool,
) -> Taken {
    // This thread's copy of the switches' byte (see `config::ThreadSwitch`) `or` its busy flag
    // and depth (`state::BusyDepth`): one test for "checked, nothing slow switched on, not busy,
    // nothing held" (0), another for the same with one lock held (1; no switch value is 1), and
    // the sign for "every switch off" (`fast::RAW`; the depth byte's sign is never set).
    let Ok(x) = STATE.try_with(|s| s.switch.now() | s.busy_depth()) else {
        return Taken::No;
    };
    if x != 0 {
        // Nothing switched on (`LOCKCHECK=off`, nothing recorded, counted or watched): the raw
        // lock, right here, for the price of the switches' test (the full path would cost a call
        // to find out the same).
        if (x as i8) < 0 {
            lock_raw();
            return Taken::Yes;
        }
        if x != 1 {
            // Deeper, busy, or another switch (recording, the full path's switches, not
            // registered): the out-of-line sequel (`lock_known`) tells them apart, takes the
            // recorded fast way and writes the records, or sends the rest the full way. An
            // RwLock's first write goes the full way, as below.
            if rwlock_first_write(meta, kind, mode) {
                return Taken::No;
            }
            return Taken::Nested;
        }
    }
    if rwlock_first_write(meta, kind, mode) {
        return Taken::No;
    }
    let step = STATE.try_with(|s| {
        if x != 0 {
            let w = meta.word();
            // One lock held, not busy, and this very dependency checked over it before (the
            // memo: two compares; an unassigned identity never matches it), here; anything else
            // out of line (`lock_known`, then the full path).
            if !s.known_top(entry(w, mode)) {
                return Fast::Nested;
            }
            #[cfg(feature = "tokio")]
            if in_task_or_may_hold_async() {
                return Fast::Other;
            }
            if !try_named() {
                return Fast::Block(Ids::from_word(w));
            }
            s.push_second(entry(w, mode), w, site);
            return Fast::Done;
        }
        // The identity is assigned on the full path (`TRY_NAMES`: the try fails without it).
        let before = if TRY_NAMES { 0 } else { meta.word() };
        if !TRY_NAMES && before == 0 {
            return Fast::Other;
        }
        // Async locks the running task holds (one thread-local read when it holds none): the
        // full path checks them, and raises at the user's line.
        #[cfg(feature = "tokio")]
        if flags_now() & flag::ORDER != 0 && crate::tokio::track::may_hold_async() {
            return Fast::Other;
        }
        if !try_raw() {
            return try_failed(meta.word());
        }
        // Read again after the try: a fresh lock's try succeeds only once the identity is
        // assigned.
        let w = if TRY_NAMES { meta.word() } else { before };
        #[cfg(feature = "tokio")]
        push_tagged(s, w, mode, site);
        #[cfg(not(feature = "tokio"))]
        s.push_first(entry(w, mode), w, site);
        Fast::Done
    });
    finish(step, kind, mode, site, lock_raw, lock_for)
}

/// The nothing-held fast try failed on a lock whose identity word is now `w`: block, or go the
/// full way when it has none yet (the full path assigns it).
#[inline(always)]
fn try_failed(w: u64) -> Fast {
    if w == 0 {
        Fast::Other
    } else {
        Fast::Block(Ids::from_word(w))
    }
}

/// Whether this is an exclusive acquisition of an RwLock never write-locked before (which may
/// decide a report: the full path). Known at compile time for everything else.
#[inline(always)]
fn rwlock_first_write(meta: &Meta, kind: LockKind, mode: Mode) -> bool {
    mode == Mode::Exclusive && kind == LockKind::Rwlock && meta.word() & WRITTEN == 0
}

/// [`lock_fast`]'s sequel when it returned [`Taken::Nested`] (the thread holds locks or is busy,
/// or a switch other than "checking on" or "off" is set), out of line: recording, the recorded
/// fast way ([`lock_recorded`]); else, with this thread's switch "checking on", the thread not
/// busy and order checking on, the exact dependency (held set, lock,
/// mode, clock epoch) is already in the thread's cache (a few compares: see
/// [`ThreadState::known_dependency`]), at most [`super::state::CACHE_HELD`] held, none of them
/// the requested lock (a possible self-conflict) nor a guard an async task left: the raw try and
/// a one-word push. `No`: nothing done, the full path (which checks, and marks the cache).
#[inline(always)]
#[track_caller]
pub(crate) fn lock_known(
    meta: &Meta,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
    try_raw: impl FnOnce() -> bool,
    lock_raw: impl FnOnce(),
    lock_for: impl Fn(Duration) -> bool,
) -> Taken {
    // `lock_fast` sent here whatever was neither its fast case nor `LOCKCHECK=off`: the switches
    // are tested again (recording: `lock_recorded` tests everything; else this thread's copy).
    let f = flags_now();
    if f & flag::RECORD != 0 {
        // `lock_fast` sent a recorded acquisition here, holding locks or not (or recording
        // started since: `lock_recorded` tests everything again).
        return lock_recorded(meta, kind, mode, site, f, try_raw);
    }
    // Recording may also have stopped since `lock_fast` sent an acquisition here without its
    // identity and first-write tests: the cache answers for those too (an unassigned identity
    // is in no dependency, and the full check that marks an RwLock's write dependency runs
    // after its first write was noted).
    let w = meta.word();
    let step = STATE.try_with(|s| {
        let req = pack(w & word::INST, mode);
        // Without order checking there is no cache to look at. `lock_fast` did not tell a busy
        // thread from a deeper stack, nor checking from the full path's switches.
        if s.switch.now() != fast::CHECKED
            || f & flag::ORDER == 0
            || s.busy.get()
            || !s.known_dependency(req)
        {
            return Fast::Other;
        }
        // Checked before: the inline memo answers next time.
        s.remember_top(w, mode);
        #[cfg(feature = "tokio")]
        if in_task_or_may_hold_async() {
            return Fast::Other;
        }
        if !try_raw() {
            return Fast::Block(Ids::from_word(w));
        }
        s.push_plain(
            entry(w, mode),
            w,
            site,
            #[cfg(feature = "tokio")]
            0,
        );
        Fast::Done
    });
    finish(step, kind, mode, site, lock_raw, lock_for)
}

/// The fast way while a trace is recorded ([`fast::RECORDING`]: checking on, nothing counted or
/// watched), in [`lock_known`] (out of line): the cases [`lock_fast`] and [`lock_known`] take without recording
/// (identity assigned, not an RwLock's first write, the thread not busy inside lockcheck;
/// nothing held, or the exact dependency in the thread's cache with order checking on, nor a
/// task that may hold async locks), then the raw try and a one-word push marked
/// [`word::RECORDED`] (so that its release records too, see [`released_rest`]), then the records
/// the full path writes for them, in its order: a `request` when locks are held (the full path
/// writes it before its checks, which find nothing here; a request carries no time), then the
/// `acquire` with no wait; with locks held, both as one record (an acquisition with the request
/// folded in, `recorder::on_acquire_reserved` with `requested`, which the writers turn into the two events). A failed try changes nothing and writes nothing: `No`, the full path
/// (which tries again, and records the request before it blocks). `f`: the switches as
/// [`lock_known`] read them.
#[inline(always)]
#[track_caller]
fn lock_recorded(
    meta: &Meta,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
    f: u8,
    try_raw: impl FnOnce() -> bool,
) -> Taken {
    if f & (flag::INIT | flag::CHECK | flag::SLOW) != flag::INIT | flag::CHECK | flag::RECORD {
        return Taken::No;
    }
    let w = meta.word();
    if w == 0 || (mode == Mode::Exclusive && kind == LockKind::Rwlock && w & WRITTEN == 0) {
        return Taken::No;
    }
    let req = pack(w & word::INST, mode);
    let step = STATE.try_with(|s| {
        if s.busy.get() {
            return None;
        }
        let nested = s.holds_any();
        // (One lock held: `known_dependency` answers from its look-up memo first, two compares,
        // and a cache hit refreshes it.)
        if nested && (f & flag::ORDER == 0 || !s.known_dependency(req)) {
            return None;
        }
        // Async locks the running task holds: the full path checks them, and shows a task's
        // acquisition under them in its stream; so it does a task's nested acquisition (see
        // `in_task_or_may_hold_async`).
        #[cfg(feature = "tokio")]
        let task = crate::tokio::track::current_tag();
        #[cfg(feature = "tokio")]
        if (nested || task != 0 || f & flag::ORDER != 0) && crate::tokio::track::may_hold_async()
            || nested && task != 0
        {
            return None;
        }
        // Room for the records written after the acquisition, before it (see
        // `before_acquire`): the request, the acquisition and the release. Without it (not
        // recording any more, or this thread's stream gone), the full path, which records the
        // tested way.
        if !recorder::reserve(site, 3) || !try_raw() {
            return None;
        }
        #[cfg(feature = "tokio")]
        {
            let tag = if task != 0 { word::TASK } else { 0 };
            s.push_plain(entry(w, mode) ^ word::RECORDED ^ tag, w, site, task);
        }
        #[cfg(not(feature = "tokio"))]
        s.push_plain(entry(w, mode) ^ word::RECORDED, w, site);
        Some(nested)
    });
    let Ok(Some(nested)) = step else {
        return Taken::No;
    };
    // One record either way (its request folded in when nested), with one clock call site.
    recorder::on_acquire_reserved(Ids::from_word(w), mode, site, nested);
    Taken::Yes
}

/// The outcome of a fast step for the entry points.
#[inline(always)]
#[track_caller]
fn finish(
    step: Result<Fast, std::thread::AccessError>,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
    lock_raw: impl FnOnce(),
    lock_for: impl Fn(Duration) -> bool,
) -> Taken {
    match step {
        Ok(Fast::Done) => Taken::Yes,
        Ok(Fast::Nested) => Taken::Nested,
        #[cfg(feature = "tokio")]
        Ok(Fast::Block(ids)) => {
            contended_or_raise(ids, kind, mode, site, lock_raw, lock_for);
            Taken::Yes
        }
        _ => {
            let _ = (kind, mode, site, lock_raw, lock_for);
            Taken::No
        }
    }
}

/// [`lock_contended`] for [`lock_fast`]: a verdict (deadlock, wait timeout) is raised here, at
/// the caller's line, with the lock not taken.
#[cfg(feature = "tokio")]
#[inline(never)]
#[track_caller]
fn contended_or_raise(
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
    lock_raw: impl FnOnce(),
    lock_for: impl Fn(Duration) -> bool,
) {
    // The switches as the fast path saw them (`fast::CHECKED`): nothing timed or recorded.
    let f = flag::INIT | flag::CHECK;
    if let Err(v) = lock_contended(ids, kind, mode, 1, site, lock_raw, lock_for, f) {
        v.raise();
    }
}

/// What an inlined fast step did.
enum Fast {
    /// Acquired and pushed.
    Done,
    /// Not tried: locks are held (see [`Taken::Nested`]).
    Nested,
    /// The raw try failed with nothing held: block.
    Block(Ids),
    /// Not the fast case: the raw lock was not tried.
    Other,
}

/// The fast path's try failed: wait (deadlock detection, timeout policy), then push.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn lock_contended(
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    capacity: usize,
    site: &'static Location<'static>,
    lock_raw: impl FnOnce(),
    lock_for: impl Fn(Duration) -> bool,
    f: u8,
) -> Result<(), Verdict> {
    blocked(ids, kind, mode, capacity, site, lock_raw, lock_for, f)?;
    let _ = STATE.try_with(|s| push(s, ids, mode, site, f));
    Ok(())
}

/// Right before a raw acquisition (a try, or a wait's slice): makes room for what follows it
/// until the caller gets its guard, so that nothing there allocates. A global allocator that
/// takes the lock being acquired (a tracking allocator whose statistics sit under a checked
/// mutex the program also takes) would otherwise take it again on this thread, a deadlock
/// lockcheck made: the held stack's push past its inline entries, the statistics' table, the
/// watchdog's published list, the recorder's block (the acquisition and its release). Shallow
/// and with nothing timed or recorded, one test and one test of the switches.
#[inline]
fn before_acquire(s: &ThreadState, ids: Ids, site: &'static Location<'static>, f: u8) {
    s.reserve_push();
    if f & flag::SLOW != 0 {
        before_acquire_slow(s, ids, site, f);
    }
}

/// [`before_acquire`] with recording, statistics or the watchdog on.
#[cold]
#[inline(never)]
fn before_acquire_slow(s: &ThreadState, ids: Ids, site: &'static Location<'static>, f: u8) {
    if f & flag::WATCH != 0 {
        if let Some(p) = watch::published(s) {
            internal(&p.held).reserve(1);
        }
    }
    if f & flag::STATS != 0 {
        if let Some(st) = watch::thread_stats(s) {
            watch::reserve_class(&st, ids.class);
        }
    }
    if f & flag::RECORD != 0 {
        // The acquisition's record and its release's (which runs before the raw unlock). The
        // full path's records go the tested way (it may record a request or a wait in between).
        let _ = recorder::reserve(site, 2);
    }
}

/// Everything but the fast path: checks against the held locks, recording, timing, async.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn lock_slow(
    meta: &Meta,
    kind: LockKind,
    mode: Mode,
    capacity: usize,
    site: &'static Location<'static>,
    try_raw: impl FnOnce() -> bool,
    lock_raw: impl FnOnce(),
    lock_for: impl Fn(Duration) -> bool,
    f: u8,
) -> Result<(), Verdict> {
    // How the thread's stream shows the acquisition (a task's nested one: `try`, see below).
    let mut rec_how = How::Blocking;
    // One thread-local access: checks, the fast try, the push.
    let step = STATE.try_with(|s| {
        if s.busy.get() {
            return Step::Plain;
        }
        // Holds other threads took over (channels' receivers; guards with `send_guard`) leave
        // first. With `send_guard` every entry point drained already (`handoff::drain`).
        #[cfg(not(feature = "send_guard"))]
        super::handoff::drain_held(s);
        let ids = meta.ids(kind);
        if mode == Mode::Exclusive && kind == LockKind::Rwlock && meta.word() & WRITTEN == 0 {
            // A write of an RwLock whose writes are still noted one by one can decide a report
            // (a read-read cycle it can come between stops being harmless): the trace must show
            // it was requested, even holding nothing.
            if f & flag::RECORD != 0 && !s.holds_any() {
                recorder::on_request(ids, kind, mode, site, capacity, 1);
            }
            // Before the lock is taken: raising here leaves nothing locked.
            if let Some(v) = first_write(meta, s, ids, f) {
                return Step::Raise(v);
            }
        }
        // A semaphore's first blocking acquisition (its `WRITTEN` bit: "seen"): one of several
        // permits is no gate (two threads can each hold one), which the graph learns now and the
        // trace too (a request declares the permits), even holding nothing.
        if kind == LockKind::Semaphore && meta.mark_written() && capacity > 1 {
            if f & flag::RECORD != 0 && !s.holds_any() {
                recorder::on_request(ids, kind, mode, site, capacity, 1);
            }
            let _ = as_busy(|_| {
                graph::note_several_permits(ids.inst);
                // A trace started later declares them too.
                recorder::note_permits(ids.inst, capacity);
            });
        }
        // In a task, a nested acquisition is the task's dependency, not the thread's: the
        // task's stream shows it (before any check), and the thread's shows the acquisition as
        // a `try` (held, no dependency of the thread's) with no request.
        #[cfg(feature = "tokio")]
        let in_task_nested = f & flag::RECORD != 0 && {
            let task = crate::tokio::track::current_tag();
            if task != 0 {
                crate::tokio::track::rec_sync_in_task(s, task, ids, kind, mode, site, capacity);
            }
            task != 0 && s.holds_any()
        };
        #[cfg(not(feature = "tokio"))]
        let in_task_nested = false;
        if in_task_nested {
            rec_how = How::Try;
        }
        // Async locks the running task holds (one thread-local read when it holds none); a
        // verdict is raised by the entry point, at the user's line, before the lock is taken.
        #[cfg(feature = "tokio")]
        if f & (flag::CHECK | flag::ORDER) == flag::CHECK | flag::ORDER {
            let v = crate::tokio::track::sync_acquire_in_task(meta, mode, site, ids);
            if let Some(v) = v.and_then(defer_if_relocking) {
                return Step::Raise(v);
            }
        }
        // One mask test, as before, on the path that holds nothing.
        if f & (flag::CHECK | flag::RECORD) != 0 && s.holds_any() {
            // Recorded before the checks: a report that stops the thread must leave its deciding
            // acquisition in the trace.
            if f & flag::RECORD != 0 && !in_task_nested {
                recorder::on_request(ids, kind, mode, site, capacity, 1);
            }
            if f & flag::CHECK != 0 {
                if let Some(v) = check_held(s, meta, kind, mode, site, ids, f) {
                    return Step::Raise(v);
                }
            }
        }
        // Nothing may allocate between the raw acquisition and the caller's guard: an allocator
        // that takes this very lock would take it again on this thread.
        before_acquire(s, ids, site, f);
        if try_raw() {
            push(s, ids, mode, site, f);
            Step::Done(ids)
        } else {
            Step::Block(ids)
        }
    });
    match step {
        Ok(Step::Done(ids)) => {
            if f & flag::SLOW != 0 {
                after_acquire(ids, mode, rec_how, site, 0, f);
            }
        }
        Ok(Step::Block(ids)) => {
            let start = Instant::now();
            blocked(ids, kind, mode, capacity, site, lock_raw, lock_for, f)?;
            let wait_ns = start.elapsed().as_nanos() as u64;
            let _ = STATE.try_with(|s| push(s, ids, mode, site, f));
            if f & flag::SLOW != 0 {
                after_acquire(ids, mode, rec_how, site, wait_ns, f);
            }
        }
        Ok(Step::Raise(v)) => return Err(v),
        Ok(Step::Plain) | Err(_) => lock_raw(),
    }
    Ok(())
}

/// How long a blocked thread waits at a time before it looks whether a deadlock chose it to give
/// up its locks (see `watch::begin_wait`): parking_lot's waits cannot be interrupted otherwise.
const SLICE: Duration = Duration::from_millis(20);
/// The slice of a wait whose registration in the wait-for graph is pending (see
/// `watch::WaitToken`).
const PENDING_SLICE: Duration = Duration::from_millis(1);

/// The slow path: the fast try failed and the thread is about to block. `Err`: a deadlock or a
/// wait timeout to panic on; the lock is not taken.
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn blocked(
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    capacity: usize,
    site: &'static Location<'static>,
    lock_raw: impl FnOnce(),
    lock_for: impl Fn(Duration) -> bool,
    f: u8,
) -> Result<(), Verdict> {
    // The lone thread of a forked child, on a lock a thread the fork left behind holds.
    match super::fork::orphaned(ids, kind, mode, site, &lock_for) {
        super::fork::Orphan::No => {}
        super::fork::Orphan::Acquired => return Ok(()),
        super::fork::Orphan::Hang(v) => return Err(v),
    }
    let w = watch::WaitFor {
        ids,
        kind,
        mode,
        capacity,
        site,
    };
    // A thread that gives up its wait (a deadlock's victim) may be the sender a stuck receive
    // waits for, or a barrier's waiter a participant is stuck behind: its stream shows that
    // first, as a wait that ends does (`watch::sender_in_trace`).
    let gives_up = |v: Verdict| {
        let _ = STATE.try_with(|s| watch::sender_in_trace(s.id()));
        Err(v)
    };
    let token = STATE.try_with(|s| (!s.busy.get()).then(|| watch::begin_wait(s, w)));
    let mut token = match token {
        Ok(Some(Ok(token))) => token,
        Ok(Some(Err(v))) => return gives_up(v),
        Ok(None) | Err(_) => {
            lock_raw();
            return Ok(());
        }
    };
    // A task (or a thread holding async locks) waiting for a sync lock: the async wait-for graph.
    // A deadlock it closes is raised by the entry point (at the user's line), with the lock not
    // taken; a condvar relock defers it and waits (its caller's guard needs the mutex).
    #[cfg(feature = "tokio")]
    let _async_wait = match crate::tokio::track::sync_wait(ids, kind, mode, site) {
        Ok(reg) => reg,
        Err(v) => match defer_if_relocking(v) {
            Some(v) => return Err(v),
            None => None,
        },
    };
    let limit = watch::wait_timeout(ids.class);
    let start = Instant::now();
    let mut timed_out = false;
    loop {
        let mut slice = match limit {
            Some(l) if !timed_out => l.saturating_sub(start.elapsed()).min(SLICE),
            _ => SLICE,
        };
        if token.pending() {
            // Not registered yet (the waiters' mutex was busy): soon again.
            slice = slice.min(PENDING_SLICE);
        }
        // Again before each slice: the bookkeeping of the wait (and an allocator's locks taken
        // inside it) may have used what an earlier reservation made room for.
        let _ = STATE.try_with(|s| before_acquire(s, ids, site, f));
        if lock_for(slice) {
            // A sender of a receive found stuck behind this wait: the trace shows it now.
            let _ = STATE.try_with(|s| watch::sender_in_trace(s.id()));
            return Ok(());
        }
        if let Err(v) = token.register(&w) {
            return gives_up(v);
        }
        if let Some(msg) = token.victim() {
            drop(token);
            return gives_up(Verdict::new(msg));
        }
        if let Some(l) = limit {
            if !timed_out && start.elapsed() >= l {
                timed_out = true;
                let w = watch::WaitFor {
                    ids,
                    kind,
                    mode,
                    capacity,
                    site,
                };
                // Raised (before the lock is held) unless this is a condvar relock, which goes
                // on waiting and panics once it holds the mutex again.
                if let Ok(Some(v)) = STATE.try_with(|s| watch::timed_out(s, &w, l)) {
                    if let Some(v) = defer_if_relocking(v) {
                        return Err(v);
                    }
                }
            }
        }
    }
}

/// A `try_*` or timed acquisition: no edge (it cannot block forever), but a success is held.
#[inline]
pub(crate) fn lock_nonblocking(
    meta: &Meta,
    kind: LockKind,
    mode: Mode,
    how: How,
    site: &'static Location<'static>,
    attempt: impl FnOnce() -> bool,
) -> bool {
    lock_nonblocking_of(meta, kind, mode, how, site, 1, attempt)
}

/// [`lock_nonblocking`] of a lock of `capacity` permits (a semaphore's; 1 for the others): a
/// retried try of a semaphore whose permits the thread holds all of is a self-deadlock.
#[inline]
pub(crate) fn lock_nonblocking_of(
    meta: &Meta,
    kind: LockKind,
    mode: Mode,
    how: How,
    site: &'static Location<'static>,
    capacity: usize,
    attempt: impl FnOnce() -> bool,
) -> bool {
    let f = flags();
    if f & flag::ACTIVE == 0 {
        return attempt();
    }
    // What follows a successful attempt must not allocate (see `before_acquire`): the identity
    // (a lock's first use takes the class table) and the room for the push and the records.
    let _ = STATE.try_with(|s| {
        if !s.busy.get() {
            before_acquire(s, meta.ids(kind), site, f);
        }
    });
    let start = (how == How::Timed).then(Instant::now);
    let ok = attempt();
    let wait_ns = start.map_or(0, |s| s.elapsed().as_nanos() as u64);
    let ids = STATE.try_with(|s| {
        if s.busy.get() {
            return None;
        }
        let ids = meta.ids(kind);
        if ok {
            // A successful try ends a streak of failed ones (see `failed_try_retried`).
            s.try_streak.set(0);
            if mode == Mode::Exclusive && kind == LockKind::Rwlock && meta.word() & WRITTEN == 0 {
                // Already locked, and no guard exists yet to unlock it while unwinding: report
                // only, never raise here.
                let _ = first_write(meta, s, ids, f);
            }
            push(s, ids, mode, site, f);
        }
        Some(ids)
    });
    if let Ok(Some(ids)) = ids {
        if ok && f & flag::SLOW != 0 {
            after_acquire(ids, mode, how, site, wait_ns, f);
        }
        if !ok {
            // Counted first: a semaphore's self-deadlock writes its request (with the permits)
            // before this failure, so that the analyzer knows the permits when it counts it.
            let v = failed_try_retried(meta, kind, ids, mode, site, capacity, f);
            if f & flag::RECORD != 0 {
                recorder::on_fail(ids, mode, how, site, wait_ns);
            }
            if let Some(v) = v {
                // Nothing was taken: no guard to unwind.
                v.raise();
            }
        }
    }
    ok
}

/// A `try_*` or timed acquisition of `ids` failed: counts the failures in a row of this try (same
/// lock, mode and site, same held set, each held lock held without a break since the previous
/// failure: [`ThreadState::mark_spun`]). At [`TRY_RETRIES`] it is a retry loop, a spin lock's,
/// which waits for the lock as a blocking acquisition does: checked as one (`check_held`), before
/// a hang. A lock this thread holds itself in a mode that excludes the request is a
/// `self-deadlock` (a try that can never succeed: a spin lock re-entered by its holder,
/// PyO3/pyo3#916), raised under `warn` too; a lock held by another thread orders the held locks
/// before it, and a cycle it closes is an inversion (two threads spinning on each other's lock,
/// or one spinning while the other blocks). A loop that gives up sooner waits for nothing and is
/// not counted as a wait. The `Debug` impls of the locks, which peek with a try, are not counted
/// ([`is_peek_site`]). The lock's identity is already assigned (`lock_nonblocking`). A semaphore
/// of `capacity` permits whose permits the thread holds all of is a self-deadlock, as for a
/// blocking `acquire` ([`check_permits`]).
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn failed_try_retried(
    meta: &Meta,
    kind: LockKind,
    ids: Ids,
    mode: Mode,
    site: &'static Location<'static>,
    capacity: usize,
    f: u8,
) -> Option<Verdict> {
    if action() == Action::Off || f & flag::CHECK == 0 || is_peek_site(site.file()) {
        return None;
    }
    STATE
        .try_with(|s| {
            if s.busy.get() {
                return None;
            }
            let key = (
                ids.inst,
                mode as u8,
                site as *const Location<'static> as usize,
                s.held_digest(),
            );
            let same = with_slow(|slow| std::mem::replace(&mut slow.try_retried, key) == key)?;
            // The same held set is not enough: every hold must have lasted since the previous
            // failure. A back-off that gives its locks back between tries (hold A, try B, on
            // failure release A and start over) never waits for B while holding A.
            let kept = s.mark_spun();
            let streak = if same && kept {
                s.try_streak.get().saturating_add(1)
            } else {
                1
            };
            s.try_streak.set(streak);
            if streak != TRY_RETRIES || !s.holds_any() {
                return None;
            }
            if kind == LockKind::Semaphore {
                let (own, first) = s.count_held(|h| h.inst == ids.inst);
                if let Some(h) = first.filter(|_| own >= capacity) {
                    // As `check_permits`: the request, with the permits, for the analyzer.
                    if f & flag::RECORD != 0 {
                        recorder::on_request(ids, kind, mode, site, capacity, 1);
                    }
                    return graph::as_retried_try(|| {
                        self_violation(s, ViolationKind::SelfDeadlock, ids, mode, site, h)
                    });
                }
            }
            // The spinner waits as a blocking acquisition does, but is no waiter of the
            // wait-for graph: a hang through it is found by the lock order only. Said once.
            super::notice::once(super::notice::Limit::SpinnerNotWaiter, site);
            graph::as_retried_try(|| check_held(s, meta, kind, mode, site, ids, f))
        })
        .ok()
        .flatten()
}

/// A write lock of an RwLock whose writes are still noted one by one (its `WRITTEN` bit clear,
/// the first [`graph::WRITE_NOTES`]): noted with the thread's fork/join clock; cycles excused as
/// read-read on it are checked again (a queued writer makes a reader wait behind a reader, if it
/// can come between the reads), and one found now is reported here. Once its writes need no
/// more noting, the bit is set: later writes take the fast path.
#[cold]
#[inline(never)]
fn first_write(meta: &Meta, s: &ThreadState, ids: Ids, f: u8) -> Option<Verdict> {
    let writer = s.id();
    // The graph keeps its writes: dropping the lock must remove them.
    meta.mark_in_graph();
    let found = as_busy(|_| {
        let (found, limits, done) = graph::note_written(ids.inst, ids.class, Some(writer));
        if done {
            meta.mark_written();
        }
        for v in limits {
            publish(v);
        }
        found
            .filter(|_| f & flag::CHECK != 0 && f & flag::ORDER != 0)
            .map(publish)
    });
    act(found??)
}

/// Pushes an acquired lock on the held stack.
#[inline]
fn push(s: &ThreadState, ids: Ids, mode: Mode, site: &'static Location<'static>, f: u8) {
    s.push(Held {
        inst: ids.inst,
        class: ids.class,
        mode,
        site,
        since: (f & flag::TIMED != 0).then(Instant::now),
        source: false,
        recorded: f & flag::RECORD != 0,
        #[cfg(feature = "tokio")]
        task: crate::tokio::track::current_tag(),
    });
}

/// Recording, statistics and the watchdog's view of an acquisition.
#[cold]
#[inline(never)]
fn after_acquire(
    ids: Ids,
    mode: Mode,
    how: How,
    site: &'static Location<'static>,
    wait_ns: u64,
    f: u8,
) {
    if f & (flag::WATCH | flag::STATS) != 0 {
        let _ = STATE.try_with(|s| {
            if f & flag::WATCH != 0 {
                let top = s.rfind_held(|h| h.inst == ids.inst);
                if let (Some(p), Some(h)) = (watch::published(s), top) {
                    internal(&p.held).push(h);
                }
            }
            if f & flag::STATS != 0 {
                if let Some(st) = watch::thread_stats(s) {
                    watch::count_acquire(&st, ids.class, wait_ns);
                }
            }
        });
    }
    if f & flag::RECORD != 0 {
        recorder::on_acquire(ids, mode, how, site, wait_ns);
    }
    if f & flag::CONDVAR != 0 {
        watch::note_taken(ids.inst);
    }
}

/// Bookkeeping of a release (before the raw unlock). `shared` releases match any read mode.
///
/// Inlined: the usual release (the lock on top of the held stack, untimed, never a graph source)
/// is one thread-local access and a pop; anything else goes out of line.
#[inline(always)]
pub(crate) fn released(meta: &Meta, mode: Mode) {
    if !release_fast(meta, mode) {
        released_rest(meta, mode);
    }
}

/// The release's fast path alone: true when its bookkeeping is done (the lock never tracked, or
/// on top of the held stack, untimed, unrecorded and no graph source: popped); false when nothing changed
/// and [`released_rest`] must run. For the hot unlocks, which then call the rest out of line
/// with the raw unlock, as a tail call.
#[inline(always)]
pub(crate) fn release_fast(meta: &Meta, mode: Mode) -> bool {
    !matches!(release_kind(meta, mode), Released::Rest)
}

/// What [`release_kind`] found.
pub(crate) enum Released {
    /// The lock has no identity: never tracked, nothing to do.
    Untracked,
    /// On top of the held stack, untimed, unrecorded and no graph source: popped.
    Popped,
    /// Nothing changed: [`released_rest`] must run.
    Rest,
}

/// [`release_fast`], telling an untracked lock from a popped hold (the checked mutex's
/// untracked holds may be of a lock still `byte_mutex::FRESH`, which its raw unlock tells).
#[inline(always)]
pub(crate) fn release_kind(meta: &Meta, mode: Mode) -> Released {
    let w = meta.word();
    // The top entry's stored word is `entry(w, mode)` exactly when it is this hold, untimed and
    // no graph source (and pushed with the identity as it is now): one comparison.
    // A recorded hold carries `word::RECORDED`, so its release takes the general path, which
    // records it: the fast path tests no switch. Before the identity's test for 0: no slot the
    // depth byte indexes holds `entry(0, mode)` (see `state::NO_ENTRY`), so an untracked lock
    // fails the comparison and is told apart after it (two instructions less per checked
    // release, three more per release under `LOCKCHECK=off`).
    if STATE.try_with(|s| s.pop_plain_top(entry(w, mode))) == Ok(true) {
        Released::Popped
    } else if w == 0 {
        Released::Untracked
    } else {
        Released::Rest
    }
}

/// The release's bookkeeping beyond [`release_fast`].
#[inline(always)]
pub(crate) fn released_rest(meta: &Meta, mode: Mode) {
    let w = meta.word();
    if w != 0 {
        // The usual recorded release: the hold on top, recorded and nothing else. One
        // comparison and the record, here in the caller's out-of-line rest, not the search of
        // `released_slow` (which expands every entry it looks at and returns a whole `Held`:
        // about 170 instructions more per release) nor two more calls.
        let recorded = entry(w, mode) ^ word::RECORDED;
        if STATE.try_with(|s| s.pop_plain_top(recorded)) == Ok(true) {
            recorder::on_release_inline(meta);
            return;
        }
        released_slow(meta, Ids::from_word(w), mode);
    }
}

/// The general release: the lock below the top, timed, a graph source, or not found (foreign).
#[inline(never)]
fn released_slow(meta: &Meta, ids: Ids, mode: Mode) {
    // The same, or a plain hold, pushed before the identity gained a flag bit (see
    // `state::entry`): one comparison of the top's logical word. Which task took it does not
    // matter to a release.
    #[cfg(feature = "tokio")]
    let ignored = word::RECORDED | word::TASK;
    #[cfg(not(feature = "tokio"))]
    let ignored = word::RECORDED;
    let key = pack(ids.inst, mode);
    if let Ok(Some(l)) = STATE.try_with(|s| s.pop_top_if(|l| l & !ignored == key)) {
        if l & word::RECORDED != 0 {
            recorder::on_release(ids, 0);
        }
        return;
    }
    let h = STATE.try_with(|s| {
        let h = s.remove_last(|h| h.inst == ids.inst && same_release_mode(h.mode, mode));
        (h, s.busy.get(), thread_key(s))
    });
    // Not held and not busy: another thread's hold, or this thread's own taken untracked while
    // checking was off (see `note_foreign_release`). Busy (lockcheck's own work, e.g. an
    // allocation under an internal mutex entering a locking allocator), the lock was taken the
    // untracked way: nothing to note, and noting would take an internal mutex again.
    let h = match h {
        Ok((None, false, me)) => {
            note_foreign_release(ids.inst, me);
            return;
        }
        Ok((h, _, _)) => h,
        Err(_) => return,
    };
    if let Some(h) = h {
        if h.source {
            meta.mark_in_graph();
        }
        if let Some(since) = h.since {
            after_release(ids, since, mode);
        } else if h.recorded {
            recorder::on_release(ids, 0);
        }
    }
}

/// A hold of this thread that another thread released (a guard sent away under `send_guard`):
/// the bookkeeping of [`released`], done by the acquiring thread (see `handoff`). Only
/// exclusive and upgradable holds come this way, and a thread has at most one of those per lock.
#[cfg(feature = "send_guard")]
pub(crate) fn released_elsewhere(ids: Ids) {
    let h = STATE.try_with(|s| {
        s.remove_last(|h| {
            h.inst == ids.inst && matches!(h.mode, Mode::Exclusive | Mode::Upgradable)
        })
    });
    match h {
        Ok(Some(Held {
            since: Some(since),
            mode,
            ..
        })) => after_release(ids, since, mode),
        Ok(Some(h)) if h.recorded => recorder::on_release(ids, 0),
        _ => {}
    }
}

#[cold]
#[inline(never)]
fn after_release(ids: Ids, since: Instant, mode: Mode) {
    let hold_ns = since.elapsed().as_nanos() as u64;
    let f = flags();
    if f & flag::RECORD != 0 {
        recorder::on_release(ids, hold_ns);
    }
    let _ = STATE.try_with(|s| {
        if f & flag::WATCH != 0 {
            if let Some(p) = watch::published(s) {
                let mut list = internal(&p.held);
                if let Some(j) = list
                    .iter()
                    .rposition(|h| h.inst == ids.inst && same_release_mode(h.mode, mode))
                {
                    list.remove(j);
                }
            }
        }
        if f & flag::STATS != 0 {
            if let Some(st) = watch::thread_stats(s) {
                watch::count_release(&st, ids.class, hold_ns);
            }
        }
    });
}

fn same_release_mode(held: Mode, released: Mode) -> bool {
    match released {
        Mode::Shared | Mode::SharedRecursive => {
            matches!(held, Mode::Shared | Mode::SharedRecursive)
        }
        m => held == m,
    }
}

/// An in-place mode change of a held lock (upgrade, downgrade).
pub(crate) fn converted(meta: &Meta, from: Mode, to: Mode) {
    let Some(ids) = meta.assigned() else { return };
    let _ = STATE.try_with(|s| s.convert(ids.inst, from, to));
    if flags() & flag::RECORD != 0 {
        recorder::on_convert(ids, to);
    }
}

/// An upgrade that did not wait (`try_upgrade*` that succeeded): [`converted`], and the write it
/// is noted as a `write()` notes it ([`first_write`]: an upgrade is a write, which a read-read
/// cycle on the lock can wait behind). `Some`: the verdict of a cycle that write closed (under
/// `panic`), for the caller to raise once it has converted the lock back to upgradable
/// (`RawRwLock::upgraded_try`): the caller's upgradable guard, not yet turned into a write
/// guard, then unwinds and releases it, as a stopped blocking upgrade's does.
pub(crate) fn upgraded_now(meta: &Meta) -> Option<Verdict> {
    converted(meta, Mode::Upgradable, Mode::Exclusive);
    let f = flags();
    if f & flag::ACTIVE == 0 || meta.word() & WRITTEN != 0 {
        return None;
    }
    let ids = meta.assigned()?;
    STATE
        .try_with(|s| {
            if s.busy.get() {
                return None;
            }
            first_write(meta, s, ids, f)
        })
        .ok()
        .flatten()
}

/// What [`before_upgrade`] decided: a verdict to raise (the upgrade is not made), and whether the
/// upgrade's `convert` is in the trace already (written before the wait).
pub(crate) struct UpgradeCheck {
    pub verdict: Option<Verdict>,
    pub recorded: bool,
}

/// Checks before an upgrade (upgradable -> exclusive), which waits for readers to leave: holding
/// a read share of the same lock makes it wait for itself. A verdict: raise it, do not upgrade
/// (then [`upgrade_withdrawn`]; else [`upgraded`] once upgraded).
///
/// The upgrade's `convert` is written to the trace before the wait, as a blocking acquisition's
/// `request` is: an upgrade that closes a cycle and then waits forever (`warn`), or is stopped
/// by a panic, is still in the trace, whose `convert` makes the same dependency and write offline
/// (a `request` of a write while the thread holds the lock upgradable would read as a
/// self-deadlock there). A stopped upgrade writes a `convert` back to upgradable.
pub(crate) fn before_upgrade(meta: &Meta, site: &'static Location<'static>) -> UpgradeCheck {
    let mut recorded = false;
    let verdict = (|| {
        if action() == Action::Off {
            return None;
        }
        let ids = meta.assigned()?;
        STATE
            .try_with(|s| {
                if s.busy.get() {
                    return None;
                }
                let other = s.find_held(|h| {
                    h.inst == ids.inst && matches!(h.mode, Mode::Shared | Mode::SharedRecursive)
                });
                let Some(h) = other else {
                    if flags() & flag::RECORD != 0 {
                        recorder::on_convert(ids, Mode::Exclusive);
                        recorded = true;
                    }
                    // An upgrade is a write: noted as a `write()` notes it, before the wait (a
                    // read-read cycle it closes is reported, and raised under `panic`, before
                    // any hang). Its lock order is checked too (a second finding, if any, is
                    // reported; the first is raised).
                    let f = flags();
                    let write = if f & flag::ACTIVE != 0 && meta.word() & WRITTEN == 0 {
                        first_write(meta, s, ids, f)
                    } else {
                        None
                    };
                    let order = upgrade_order(s, meta, ids, site);
                    return write.or(order);
                };
                if flags() & flag::RECORD != 0 {
                    recorder::on_request(ids, LockKind::Rwlock, Mode::Exclusive, site, 0, 1);
                }
                self_violation(
                    s,
                    ViolationKind::SelfDeadlock,
                    ids,
                    Mode::Exclusive,
                    site,
                    h,
                )
            })
            .ok()
            .flatten()
    })();
    UpgradeCheck { verdict, recorded }
}

/// A blocking upgrade's wait for the other readers to leave, once [`before_upgrade`] raised
/// nothing: a wait of the wait-for graph, as a write's is (`try_raw` first, which does not wait;
/// then `lock_for` in slices, each a wait the graph sees). The waiter holds the lock upgradable
/// itself, which the graph does not count against it (a waiter is never blocked by its own
/// holds); a reader inside that waits, directly or through other waits, for a lock the upgrader
/// holds is a deadlock (nimiq/core-rs-albatross#346: an upgrade waiting for the mempool's read,
/// the mempool waiting for the database transaction the upgrader holds), which was missed: the
/// upgrade waited outside the graph, so the cycle hung unreported when its lock order was not
/// reported first (order checking off, or that order already reported). `Err`: the deadlock
/// this wait closed or was stopped by (the lock is still upgradable: `lock_for` gives up its
/// `WRITER` when it times out), to raise after [`upgrade_withdrawn`].
pub(crate) fn upgrade_wait(
    meta: &Meta,
    site: &'static Location<'static>,
    try_raw: impl FnOnce() -> bool,
    lock_raw: impl FnOnce(),
    lock_for: impl Fn(Duration) -> bool,
) -> Result<(), Verdict> {
    let f = flags();
    let ids = match meta.assigned() {
        Some(ids) if f & flag::ACTIVE != 0 && action() != Action::Off => ids,
        _ => {
            lock_raw();
            return Ok(());
        }
    };
    if try_raw() {
        return Ok(());
    }
    blocked(
        ids,
        LockKind::Rwlock,
        Mode::Exclusive,
        1,
        site,
        lock_raw,
        lock_for,
        f,
    )
}

/// A blocking upgrade done ([`before_upgrade`] raised nothing): the held entry becomes
/// exclusive; the trace's `convert` is written unless it was before the wait (`recorded`).
pub(crate) fn upgraded(meta: &Meta, recorded: bool) {
    if !recorded {
        return converted(meta, Mode::Upgradable, Mode::Exclusive);
    }
    let Some(ids) = meta.assigned() else { return };
    let _ = STATE.try_with(|s| s.convert(ids.inst, Mode::Upgradable, Mode::Exclusive));
}

/// A blocking upgrade stopped by [`before_upgrade`]'s verdict: the lock stays upgradable, so the
/// `convert` written before the wait (`recorded`) is undone by one back to upgradable.
pub(crate) fn upgrade_withdrawn(meta: &Meta, recorded: bool) {
    if !recorded || flags() & flag::RECORD == 0 {
        return;
    }
    if let Some(ids) = meta.assigned() {
        recorder::on_convert(ids, Mode::Upgradable);
    }
}

/// The lock order of an upgrade: it waits for every reader to leave, as a write acquisition
/// does, so it is ordered after the other locks the thread holds (a read share of `A` held
/// while upgrading `B`, against a thread that holds a read share of `B` and writes `A`, is a
/// deadlock no upgradable acquisition shows: upgradable and read shares do not exclude each
/// other). The graph leaves out the lock's own upgradable hold. `Some`: a violation to raise.
fn upgrade_order(
    s: &ThreadState,
    meta: &Meta,
    ids: Ids,
    site: &'static Location<'static>,
) -> Option<Verdict> {
    if flags() & flag::ORDER == 0 {
        return None;
    }
    let (key, _) = dependency_key(s, ids.inst, Mode::Exclusive)?;
    if s.cache_hit(&key) {
        return None;
    }
    meta.mark_in_graph();
    check_graph(s, meta, ids, Mode::Exclusive, site, &key)
}

/// The dependency cache's key of acquiring `inst` in `mode` over the held set, and whether
/// `inst` is held already ([`ThreadState::cache_key`]). In a task the dependency is the task's
/// (see `check_graph`): the thread's cache, which the tasks it runs share, remembers it per task.
#[inline(always)]
fn dependency_key(s: &ThreadState, inst: u64, mode: Mode) -> Option<(CacheKey, bool)> {
    #[cfg_attr(not(feature = "tokio"), allow(unused_mut))]
    let (mut key, again) = s.cache_key(inst, mode)?;
    #[cfg(feature = "tokio")]
    crate::tokio::track::cache_key_of_task(&mut key);
    Some((key, again))
}

/// The checks against what this thread holds: self-deadlock, then the dependency cache, and on
/// a miss the global graph. Nothing to do when nothing is held. `Some`: a violation to raise.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn check_held(
    s: &ThreadState,
    meta: &Meta,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
    ids: Ids,
    f: u8,
) -> Option<Verdict> {
    // A guard another task left on this thread's stack while suspended at an `.await`.
    #[cfg(feature = "tokio")]
    match crate::tokio::track::sync_acquire_over_suspended(s, ids, kind, mode, site) {
        (_, Some(v)) => return Some(v),
        (true, None) => return None,
        (false, None) => {}
    }
    let (key, again) = dependency_key(s, ids.inst, mode)?;
    let conflict = if again {
        s.find_held(|h| h.inst == ids.inst)
            .and_then(|h| self_conflict(kind, mode, h.mode).map(|k| (k, h)))
    } else {
        None
    };
    if let Some((k, h)) = conflict {
        if take_foreign_release(ids.inst, thread_key(s)) {
            // Released by another thread (`force_unlock` of a forgotten guard): the entry is
            // stale, not a hold. Forget it instead of reporting.
            s.remove_last(|x| x.inst == ids.inst);
        } else if let Some(v) = self_violation(s, k, ids, mode, site, h) {
            return Some(v);
        }
    }
    if f & flag::ORDER != 0 {
        if !s.cache_hit(&key) {
            // The lock becomes a node of the instance graph: dropping it must remove the node.
            meta.mark_in_graph();
            return check_graph(s, meta, ids, mode, site, &key);
        }
        // Checked before: the fast path's memo answers next time (it refuses a held set that
        // contains the lock, so a self-conflict still comes here).
        s.remember_checked(&key, meta.word());
    }
    None
}

/// A dependency this thread has not checked before: the global graph.
#[cold]
#[inline(never)]
fn check_graph(
    s: &ThreadState,
    meta: &Meta,
    ids: Ids,
    mode: Mode,
    site: &'static Location<'static>,
    key: &CacheKey,
) -> Option<Verdict> {
    let thread = s.id();
    s.mark_sources();
    // The copy goes into this thread's buffer (taken out while in use: a re-entered check finds
    // it empty and uses its own), so that a new dependency allocates none.
    thread_local! {
        static HELD: std::cell::Cell<Vec<Held>> = const { std::cell::Cell::new(Vec::new()) };
    }
    let mut held = HELD.try_with(std::cell::Cell::take).unwrap_or_default();
    s.held_snapshot_into(&mut held);
    // Read by the graph only when the thread's clock epoch changed since its previous record.
    #[cfg_attr(not(feature = "tokio"), allow(unused_mut))]
    let mut clock = graph::ReqClock::Own;
    // In a task, its sync locks make the task's dependency, as its async locks do: two tasks
    // on one worker thread are two holders (their inversion is a deadlock once they run on two
    // workers), and one task run by two workers in turn is one.
    #[cfg(feature = "tokio")]
    let thread = match crate::tokio::track::current_tag() {
        0 => thread,
        task => {
            held.retain(|h| h.task == task);
            clock = graph::ReqClock::Given(lockcheck_core::deps::VectorClock::new());
            task
        }
    };
    // Channels this thread created whose receiver nobody used yet: their part waits.
    if super::channel::any_fresh() {
        super::channel::defer_fresh(s, thread, ids.inst, ids.class, mode, site, &mut held);
    }
    let found = as_busy(|_| {
        let req = graph::Request {
            thread,
            inst: ids.inst,
            class: ids.class,
            mode,
            site,
            held: &held,
            clock,
        };
        let (found, limits) = graph::add_dependency(req);
        for v in limits {
            publish(v);
        }
        found.map(publish)
    });
    held.clear();
    let _ = HELD.try_with(|b| b.set(held));
    match found {
        Some(Some(v)) => {
            let raised = act(v);
            if raised.is_none() {
                // Reported and going on (`warn`): checked, as the cache says.
                s.remember_checked(key, meta.word());
            }
            raised
        }
        Some(None) => {
            s.remember_checked(key, meta.word());
            None
        }
        // Could not check (re-entered): do not remember the key as checked.
        None => {
            s.cache_forget(key);
            None
        }
    }
}

/// A dependency that joins the graph late (a fresh channel's, see `channel::Gate::settle`): a
/// cycle it closes is reported, never raised (the acquisitions are over).
pub(crate) fn add_late_dependency(req: graph::Request<'_>) {
    let _ = as_busy(|_| {
        let (found, limits) = graph::add_dependency(req);
        for v in limits {
            publish(v);
        }
        found.map(publish)
    });
}

/// How an acquisition of a lock conflicts with this thread's own hold of it.
pub(crate) fn self_conflict(kind: LockKind, req: Mode, held: Mode) -> Option<ViolationKind> {
    use Mode::*;
    match kind {
        // A barrier's wait is never made by a thread that holds it (its hold ends with the wait).
        LockKind::Semaphore | LockKind::Condvar | LockKind::Barrier => None,
        // A `Once` is taken exclusively by its initializer: re-entering it waits for itself.
        // A channel's receiving thread sending into it when it is full waits for itself.
        LockKind::Mutex
        | LockKind::Once
        | LockKind::End
        | LockKind::Channel
        | LockKind::Unknown => Some(ViolationKind::SelfDeadlock),
        LockKind::Rwlock => match (req, held) {
            (Exclusive, _) | (_, Exclusive) => Some(ViolationKind::SelfDeadlock),
            (Upgradable, Upgradable) => Some(ViolationKind::SelfDeadlock),
            (SharedRecursive, _) => None,
            // An upgradable holder keeps writers from taking the writer bit, so a queued writer
            // does not block new readers (parking_lot's protocol): no hazard.
            (Shared, Upgradable) => None,
            (Shared | Upgradable, _) => Some(ViolationKind::RecursiveRead),
            (Permit, _) => None,
        },
    }
}

/// Self-deadlocks already reported, by their two sites and the lock's class (report once; still
/// act every time): a helper that locks what it is given twice is one bug per class it is given.
static SELF_REPORTED: parking_lot::Mutex<Option<HashSet<(String, String, u32)>>> =
    parking_lot::Mutex::new(None);

fn self_violation(
    s: &ThreadState,
    kind: ViolationKind,
    ids: Ids,
    mode: Mode,
    site: &'static Location<'static>,
    h: Held,
) -> Option<Verdict> {
    let thread = s.id();
    let v = as_busy(|_| {
        let key = (site.to_string(), h.site.to_string(), ids.class);
        let first = internal(&SELF_REPORTED)
            .get_or_insert_with(HashSet::new)
            .insert(key);
        let v = Violation {
            kind,
            edges: vec![own_hold_edge(thread, ids, mode, site, &h, true)],
            message: String::new(),
        };
        if first {
            publish(v)
        } else {
            let mut v = v;
            v.message = v.render();
            v
        }
    });
    // A recursive read is a hazard, not a certain hang: under `warn` it goes on.
    act(v?)
}

/// The report edge of `thread` requesting lock `ids` in `mode` at `site` while it holds the same
/// lock (`h`): a self-deadlock's, a recursive read's, a permit nest's. The backtrace is taken here
/// if `backtrace` (a permit nest past the graph's bound is only counted: none).
fn own_hold_edge(
    thread: u64,
    ids: Ids,
    mode: Mode,
    site: &'static Location<'static>,
    h: &Held,
    backtrace: bool,
) -> EdgeInfo {
    let lock = LockRef::new(ids.inst, ids.class);
    EdgeInfo {
        thread: super::state::thread_name(thread),
        thread_id: thread,
        held: lock.clone(),
        held_mode: h.mode,
        held_site: h.site.to_string(),
        acquired: lock,
        mode,
        site: site.to_string(),
        other_held: Vec::new(),
        backtrace: if backtrace {
            super::report::Trace::capture()
        } else {
            None
        },
        retried: graph::retried_now(),
    }
}

/// Applies the configured action after a report: the verdict the public entry point raises (a
/// panic here, inside closures, would point at this file, not the user's line). A self-deadlock
/// is a wait-for cycle of one thread, a certain hang: it is raised under `warn` too. A recursive
/// read (a hazard) and an inversion (a deadlock waiting for an unlucky schedule) go on under
/// `warn`.
fn act(v: Violation) -> Option<Verdict> {
    let certain = v.kind == ViolationKind::SelfDeadlock;
    let a = action();
    if certain && a != Action::Off && std::thread::panicking() {
        abort_unwinding(&v);
    }
    if (a == Action::Panic || (certain && a == Action::Warn)) && !std::thread::panicking() {
        let first = v.message.lines().next().unwrap_or("lockcheck: violation");
        let at = v.edges.first().map(|e| e.site.as_str()).unwrap_or("?");
        let then = if a == Action::Panic {
            "LOCKCHECK=warn reports and goes on"
        } else {
            "a certain hang panics under LOCKCHECK=warn too"
        };
        return defer_if_relocking(Verdict::new(format!(
            "{first}, at {at} (report above; {then})"
        )));
    }
    None
}

/// A certain self-deadlock on a thread that is already unwinding (a lock taken again by a `Drop`
/// run during a panic, or by a panic hook): no panic can be raised there, and going on would hang
/// for real. A panic while panicking aborts the process, so this does the same, after the report
/// (already printed) and with the trace flushed, so that the run's trace still holds the deciding
/// acquisition (recorded before the checks).
#[cold]
#[inline(never)]
pub(crate) fn abort_unwinding(v: &Violation) -> ! {
    let first = v
        .message
        .lines()
        .next()
        .unwrap_or("lockcheck: self-deadlock");
    let at = v.edges.first().map(|e| e.site.as_str()).unwrap_or("?");
    super::notice::write_stderr(&format!(
        "{first}, at {at}: this thread is already panicking, so it cannot unwind out of the \
         self-deadlock; lockcheck aborts the process instead of letting it hang (report above)\n"
    ));
    recorder::flush_all();
    std::process::abort()
}

/// Returns the verdict to raise now, unless this thread is retaking a condvar's mutex: then the
/// verdict waits until the mutex is held again ([`take_deferred`]), so that the caller's guard,
/// which unlocks the mutex when the panic unwinds through it, never unlocks a mutex another
/// thread owns. The acquisition goes on meanwhile.
pub(crate) fn defer_if_relocking(v: Verdict) -> Option<Verdict> {
    if std::thread::panicking() {
        return None;
    }
    if STATE.try_with(|s| s.relocking.get()).unwrap_or(false) {
        with_slow(|slow| {
            slow.deferred.get_or_insert(v);
        });
        return None;
    }
    Some(v)
}

/// The verdict deferred while retaking a condvar's mutex (see [`defer_if_relocking`]).
pub(crate) fn take_deferred() -> Option<Verdict> {
    with_slow(|slow| slow.deferred.take()).flatten()
}

/// Marks this thread as retaking a condvar's mutex until dropped.
pub(crate) struct Relocking {
    prev: bool,
}

impl Relocking {
    pub(crate) fn enter() -> Relocking {
        let prev = STATE
            .try_with(|s| s.relocking.replace(true))
            .unwrap_or(false);
        Relocking { prev }
    }
}

impl Drop for Relocking {
    fn drop(&mut self) {
        let _ = STATE.try_with(|s| s.relocking.set(self.prev));
    }
}

/// Before a blocking semaphore acquisition: holding every permit already is a self-deadlock.
/// `Some`: raise it, do not acquire.
pub(crate) fn check_permits(
    meta: &Meta,
    permits: usize,
    site: &'static Location<'static>,
) -> Option<Verdict> {
    if action() == Action::Off {
        return None;
    }
    let ids = meta.ids(LockKind::Semaphore);
    STATE
        .try_with(|s| {
            if s.busy.get() {
                return None;
            }
            let (own, first) = s.count_held(|h| h.inst == ids.inst);
            let record = || {
                if flags() & flag::RECORD != 0 {
                    recorder::on_request(ids, LockKind::Semaphore, Mode::Permit, site, permits, 1);
                }
            };
            match first {
                Some(h) if own >= permits => {
                    record();
                    self_violation(s, ViolationKind::SelfDeadlock, ids, Mode::Permit, site, h)
                }
                // Fewer than all: others can give permits back, unless they too wait holding
                // permits (the graph's rule: `graph::note_permit_nest`).
                Some(h) if flags() & flag::ORDER != 0 => {
                    let v = permit_nest(s, ids, own, permits, site, h)?;
                    record();
                    act(v)
                }
                _ => None,
            }
        })
        .ok()
        .flatten()
}

/// A blocking request of a permit of semaphore `ids` by a thread that holds `own` of its
/// `permits` (fewer than all; `h` the oldest hold): noted in the graph, and the finding
/// published if the threads seen doing so can now hold every permit together.
#[cold]
#[inline(never)]
fn permit_nest(
    s: &ThreadState,
    ids: Ids,
    own: usize,
    permits: usize,
    site: &'static Location<'static>,
    h: Held,
) -> Option<Violation> {
    let thread = s.id();
    as_busy(|_| {
        let keep = graph::permit_nest_need(ids.inst, thread, own)?;
        let nest = graph::Nest {
            thread,
            held: own,
            clock: s.clock(),
            edge: own_hold_edge(thread, ids, Mode::Permit, site, &h, keep),
        };
        let (found, limit) = graph::note_permit_nest(ids.inst, permits, nest);
        if let Some(l) = limit {
            publish(l);
        }
        found.map(publish)
    })?
}

/// Locks released by a thread that did not hold them (a guard forgotten on one thread and
/// `force_unlock`ed on another): the holder's entry is stale. Exact, with no bound: one entry per
/// instance (with the thread that released it), which leaves when the stale entry is forgotten
/// ([`take_foreign_release`]) or the lock is dropped ([`forget_foreign_release`]), so the set
/// never outgrows the live locks. Only this rare path, the self-deadlock check (rare too) and the
/// drop of a lock while the set is not empty touch the mutex.
///
/// A note is made by a release, before its raw unlock, so it must not allocate (a global
/// allocator that takes the lock being released would deadlock on it): the first
/// [`FOREIGN_SLOTS`] notes live in a fixed array; only past that many pending at once does the
/// overflow map allocate.
static FOREIGN_RELEASES: parking_lot::Mutex<Foreign> = parking_lot::Mutex::new(Foreign {
    slots: [(0, 0); FOREIGN_SLOTS],
    more: None,
});
/// The number of notes in [`FOREIGN_RELEASES`], read without its lock so that dropping a lock
/// costs one atomic load while no foreign release is pending.
static FOREIGN_PENDING: AtomicUsize = AtomicUsize::new(0);
/// Notes kept without allocating.
const FOREIGN_SLOTS: usize = 64;

/// Pending foreign releases: `(instance, releasing thread)`, instance 0 for a free slot.
struct Foreign {
    slots: [(u64, usize); FOREIGN_SLOTS],
    more: Option<std::collections::HashMap<u64, usize>>,
}

impl Foreign {
    fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.0 != 0).count() + self.more.as_ref().map_or(0, |m| m.len())
    }

    /// Notes `inst` released by `thread` (the latest releaser wins).
    fn insert(&mut self, inst: u64, thread: usize) {
        if let Some(s) = self.slots.iter_mut().find(|s| s.0 == inst) {
            s.1 = thread;
        } else if let Some(s) = self.slots.iter_mut().find(|s| s.0 == 0) {
            *s = (inst, thread);
        } else {
            self.more
                .get_or_insert_with(Default::default)
                .insert(inst, thread);
        }
    }

    /// Removes the note of `inst`; returns the releasing thread.
    fn remove(&mut self, inst: u64) -> Option<usize> {
        if let Some(s) = self.slots.iter_mut().find(|s| s.0 == inst) {
            let t = s.1;
            *s = (0, 0);
            return Some(t);
        }
        self.more.as_mut()?.remove(&inst)
    }
}

/// This thread's identity for foreign releases: the address of its state (unique among the
/// threads alive together, and read without allocating, unlike its number on first use).
fn thread_key(s: &ThreadState) -> usize {
    s as *const ThreadState as usize
}

/// A release found no entry of its lock on this thread's held stack. Either another thread's
/// hold (a forgotten guard), whose stale entry the holder forgets at its next acquisition of
/// the lock, or this thread's own hold taken while checking was off (switched on since, with
/// `set_action`: the fast path read the switches just before), which is on no stack. Both are
/// noted with this thread: a note excuses a self-conflict of *another* thread only, since a
/// thread's own forgotten guard released by itself finds its entry. So the untracked hold's
/// release never excuses a later real self-deadlock of this thread. Not told apart: this thread
/// releasing a hold taken before checking was switched on, then another thread locking that
/// lock twice (its second acquisition is taken as a stale entry's, see docs/reliability.md).
#[cold]
fn note_foreign_release(inst: u64, thread: usize) {
    if flags() & flag::CHECK == 0 {
        return;
    }
    let mut set = internal(&FOREIGN_RELEASES);
    set.insert(inst, thread);
    FOREIGN_PENDING.store(set.len(), Ordering::Relaxed);
}

/// Whether a self-conflict of thread `me` on `inst` is a stale entry left by a release on
/// another thread (the note is then consumed). A note by `me` itself stays: its own untracked
/// hold (see [`note_foreign_release`]).
fn take_foreign_release(inst: u64, me: usize) -> bool {
    if FOREIGN_PENDING.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let mut set = internal(&FOREIGN_RELEASES);
    let found = match set.remove(inst) {
        Some(t) if t == me => {
            set.insert(inst, t);
            false
        }
        Some(_) => true,
        None => false,
    };
    FOREIGN_PENDING.store(set.len(), Ordering::Relaxed);
    found
}

/// A lock instance is gone: a pending foreign release of it can no longer excuse anything (and
/// instance ids are never reused), so its entry leaves with it.
pub(crate) fn forget_foreign_release(inst: u64) {
    // A release (which notes) happens-before the drop of the lock, so a pending entry of this
    // instance is seen here.
    if FOREIGN_PENDING.load(Ordering::Relaxed) != 0 {
        let mut set = internal(&FOREIGN_RELEASES);
        set.remove(inst);
        FOREIGN_PENDING.store(set.len(), Ordering::Relaxed);
    }
}
