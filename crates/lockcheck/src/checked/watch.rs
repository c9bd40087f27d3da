//! Real deadlocks and waits that are too long: the wait-for graph, the watchdog, per-class
//! timeout policies and statistics. Everything here runs on the slow path (a thread about to
//! block) or in a background thread; the uncontended fast path pays one relaxed load of
//! [`features`] and nothing else unless statistics or the watchdog are switched on.

use super::class::{class_info, Ids};
use super::notice::{self, Limit};
use super::report::{publish, EdgeInfo, LockRef, Verdict, Violation, ViolationKind};
use super::state::{
    as_busy, internal, thread_name, try_internal, with_slow, Held, ThreadState, STATE,
};
use crate::config::{action, Action};
use lockcheck_core::trace::{ClassStats, How, LockKind, Mode};
use parking_lot::Mutex as PlMutex;
use std::cell::Cell;
use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Statistics are collected.
pub(crate) const STATS: u8 = 1;
/// Held locks are published for the watchdog.
pub(crate) const WATCH: u8 = 2;
/// Condvar waits are checked against the locks their notifiers hold (opt-in, noisy elsewhere).
pub(crate) const CONDVAR: u8 = 4;
const INIT: u8 = 0x80;
static FEATURES: AtomicU8 = AtomicU8::new(0);

/// The optional features switched on (reads the environment on first use).
#[inline]
pub(crate) fn features() -> u8 {
    let f = FEATURES.load(Ordering::Relaxed);
    if f & INIT != 0 {
        f & !INIT
    } else {
        init_from_env()
    }
}

/// The features switched on, without reading the environment.
pub(crate) fn features_now() -> u8 {
    FEATURES.load(Ordering::Relaxed) & !INIT
}

#[cold]
fn init_from_env() -> u8 {
    let mut f = INIT;
    if matches!(
        std::env::var("LOCKCHECK_STATS").as_deref(),
        Ok("1") | Ok("on") | Ok("true")
    ) {
        f |= STATS;
    }
    for (var, slot) in [
        ("LOCKCHECK_WAIT_WARN", &WAIT_WARN_NS),
        ("LOCKCHECK_HOLD_WARN", &HOLD_WARN_NS),
    ] {
        if let Ok(v) = std::env::var(var) {
            match parse_duration(&v) {
                Some(d) => {
                    slot.store(d.as_nanos().max(1) as u64, Ordering::Relaxed);
                    f |= WATCH;
                }
                None => crate::checked::notice::say(format_args!(
                    "lockcheck: ignoring {var}={v:?} (expected a duration like 500ms or 2s)"
                )),
            }
        }
    }
    if matches!(
        std::env::var("LOCKCHECK_CONDVAR").as_deref(),
        Ok("1") | Ok("warn") | Ok("on")
    ) {
        f |= CONDVAR;
    }
    if let Ok(p) = std::env::var("LOCKCHECK_POLICY") {
        if let Err(e) = load_policy_file(std::path::Path::new(&p)) {
            crate::checked::notice::say(format_args!("lockcheck: LOCKCHECK_POLICY={p}: {e}"));
        }
    }
    let prev = FEATURES.fetch_or(f, Ordering::Relaxed);
    if f & WATCH != 0 && prev & WATCH == 0 {
        start_watchdog();
    }
    if prev & INIT != 0 {
        // Someone else initialized meanwhile: their flags are in place.
        crate::config::refresh_flags();
    }
    (prev | f) & !INIT
}

fn enable(bit: u8) {
    features();
    let prev = FEATURES.fetch_or(bit, Ordering::Relaxed);
    if bit == WATCH && prev & WATCH == 0 {
        start_watchdog();
    }
    crate::config::refresh_flags();
}

/// Parses `500ms`, `2s`, `1.5s`, `100us`, `1m`, or a bare number of milliseconds.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit.trim() {
        "" | "ms" => 1e-3,
        "s" => 1.0,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "m" | "min" => 60.0,
        _ => return None,
    };
    let secs = n * scale;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

// ---------------------------------------------------------------------------------------------
// The wait-for graph.

/// A thread about to block.
struct Waiter {
    thread: u64,
    name: String,
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    capacity: usize,
    site: &'static Location<'static>,
    held: Vec<Held>,
    since: Instant,
    warned: bool,
    /// Retaking a condvar's mutex: it cannot give up that mutex by panicking (see `begin_wait`).
    relocking: bool,
    /// Already unwinding: a second panic would abort.
    panicking: bool,
    /// Past its closure, in its thread-local destructors (see [`set_tearing_down`]): a panic
    /// there aborts the process.
    tearing_down: bool,
    /// The instance of this thread's own end, among `held` (see [`set_thread_end`]); 0: none.
    /// Only a joiner waits for it: reports do not list it among the other locks held.
    end: u64,
    /// Chosen to break a deadlock it is part of: the panic message it must raise.
    victim: Option<String>,
    /// Set, without the list's mutex, when the wait ended (see [`WaitToken`]): the entry no
    /// longer counts and is removed by the next wait to start.
    ended: Arc<AtomicBool>,
    /// A receive waiting for a message: it waits for any of these senders, not for the holders
    /// of a lock (see [`or_wait_stuck`]).
    senders: Option<Weak<super::channel::Senders>>,
    /// A send waiting on a bounded channel: it waits for the channel's holder *now* (not for
    /// the holds of waiters' snapshots: the receiver may have changed threads since), and for a
    /// fresh channel only past a grace (see [`gate_wait_stuck`]).
    gate: Option<Weak<super::channel::Gate>>,
    /// A wait at a barrier, in this generation: it waits for every participant that has not
    /// arrived (see [`barrier_wait_stuck`]).
    barrier: Option<(Weak<super::barrier::Shared>, u64)>,
    /// How many times a receive's (or a send's) wait was checked again: once it is
    /// [`super::channel::RECV_GRACE`] old, and once it is [`super::channel::UNPLACED_GRACE`]
    /// old.
    rechecked: u8,
    /// Part of a deadlock found and being reported (see [`first_report`]).
    reported: bool,
}

impl Waiter {
    /// Still waiting.
    fn live(&self) -> bool {
        !self.ended.load(Ordering::Acquire)
    }
}

static WAITING: PlMutex<Vec<Waiter>> = PlMutex::new(Vec::new());

/// The threads registered now as blocked in the wait-for graph, and (with the `tokio` feature)
/// the tasks and threads waiting in the async one: the key of the class of the lock each waits
/// for (its name, or its construction site), its kind, and the waiter (lockcheck's number of the
/// thread, or of the task: [`waiter_id`]). For tests, which wait until a thread is blocked where
/// the scenario needs it instead of sleeping for it (a sleep orders nothing on a loaded machine).
/// A task's (or `block_on` thread's) wait for a sync lock is in both graphs and listed once.
/// Takes `WAITING`, then the async graph's, each released before the next, then the classes'
/// table: no order between them.
pub(crate) fn waits() -> Vec<(String, LockKind, u64)> {
    #[allow(unused_mut)]
    let mut waiting: Vec<(u32, LockKind, u64)> = internal(&WAITING)
        .iter()
        .filter(|w| w.live())
        .map(|w| (w.ids.class, w.kind, w.thread))
        .collect();
    #[cfg(feature = "tokio")]
    waiting.extend(crate::tokio::track::waits());
    waiting
        .into_iter()
        .map(|(class, kind, who)| (class_info(class).key, kind, who))
        .collect()
}

/// The number this thread (or, with the `tokio` feature, the task running on it) has in
/// [`waits`].
pub(crate) fn waiter_id() -> u64 {
    #[cfg(feature = "tokio")]
    return crate::tokio::track::holder();
    #[cfg(not(feature = "tokio"))]
    STATE.try_with(|s| s.id()).unwrap_or(0)
}

/// Unregisters a waiter when its wait ends (also when it panics).
///
/// The end of a wait takes no lock and frees nothing: it sets the entry's `ended` flag and
/// keeps its own reference to that flag (see [`park`]). Why: a wait usually ends because its
/// lock was just acquired, and whatever runs then runs with that lock held. Taking the waiters'
/// mutex there deadlocked with a thread that held that mutex while allocating, when the global
/// allocator takes the lock just acquired (a tracking allocator whose statistics sit under a
/// checked mutex the program also reads elsewhere); freeing there made the allocator take the
/// same lock again on the same thread. The same program on raw parking_lot never deadlocks
/// (`tests/alloc_lock_contended.rs`).
///
/// A waiting thread never waits for the waiters' mutex either: it may hold a lock that a global
/// allocator takes (the allocator's own lock, while the allocator blocks on a second one), and
/// another thread may hold the mutex while it allocates (registering, searching for a cycle) and
/// so wait for that lock. The registration is tried (briefly) and otherwise left pending, tried
/// again after each slice of the wait ([`WaitToken::register`]); the victim test is skipped for a
/// slice while the mutex is busy.
pub(crate) struct WaitToken {
    ended: Option<Arc<AtomicBool>>,
    /// Made but not registered yet: the mutex was busy.
    pending: Option<Waiter>,
    /// A channel's wait, to check again once past its grace ([`WaitToken::recheck`]).
    recheck: bool,
}

impl WaitToken {
    /// The panic this waiter must raise if a deadlock chose it to give up its locks (`None`
    /// too while the waiters' mutex is busy: asked again after the next slice).
    pub(crate) fn victim(&self) -> Option<String> {
        let mine = self.ended.as_ref()?;
        let w = try_internal(&WAITING)?;
        w.iter()
            .find(|w| Arc::ptr_eq(&w.ended, mine))
            .and_then(|w| w.victim.clone())
    }

    /// Whether the registration is still pending (the waiters' mutex was busy).
    pub(crate) fn pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Tries the pending registration again; `Err`: the deadlock it closed, to raise (as
    /// [`begin_wait`]).
    pub(crate) fn register(&mut self, w: &WaitFor) -> Result<(), Verdict> {
        let Some(waiter) = self.pending.take() else {
            return self.recheck(w);
        };
        match try_register(waiter) {
            Ok(cycle) => match cycle {
                Some(edges) => deadlock_found(self, w, edges),
                None => Ok(()),
            },
            Err(waiter) => {
                self.pending = Some(waiter);
                Ok(())
            }
        }
    }
}

impl WaitToken {
    /// A receive that waits (holding locks) is stuck only once it is
    /// [`super::channel::RECV_GRACE`] old (see [`or_wait_stuck`]): then the graph is checked
    /// again, once, for the deadlock it may close (`Err`: to raise, as [`begin_wait`]).
    fn recheck(&mut self, w: &WaitFor) -> Result<(), Verdict> {
        if !self.recheck {
            return Ok(());
        }
        let Some(mine) = self.ended.as_ref() else {
            return Ok(());
        };
        let cycle = {
            let Some(mut waiting) = try_internal(&WAITING) else {
                return Ok(());
            };
            let Some(i) = waiting.iter().position(|x| Arc::ptr_eq(&x.ended, mine)) else {
                return Ok(());
            };
            let x = &mut waiting[i];
            if x.victim.is_some() {
                // Another thread reported the deadlock and chose this one to give up its locks
                // (its caller raises that verdict next): checked again, the same cycle would be
                // reported a second time, from this side (a scope's join of a producer blocked
                // on the joiner's channel was two `deadlock`s).
                return Ok(());
            }
            let due = match x.rechecked {
                0 => super::channel::RECV_GRACE,
                1 => super::channel::UNPLACED_GRACE,
                _ => return Ok(()),
            };
            if (x.senders.is_none() && x.gate.is_none() && x.barrier.is_none())
                || x.since.elapsed() < due
                || action() == Action::Off
            {
                return Ok(());
            }
            x.rechecked += 1;
            self.recheck = x.rechecked < 2 && (x.senders.is_some() || x.barrier.is_some());
            let cycle = deadlock_cycle(&waiting, i);
            first_report(&mut waiting, cycle)
        };
        match cycle {
            Some(edges) => deadlock_found(self, w, edges),
            None => Ok(()),
        }
    }
}

thread_local! {
    /// The `ended` flag of this thread's wait in progress (see [`wait_over`]).
    static CURRENT_WAIT: Cell<Option<Arc<AtomicBool>>> = const { Cell::new(None) };
}

/// This thread's wait in progress got what it waited for (a send's value is in the channel):
/// its entry stops counting now, before the wait's bookkeeping ends. A bounded channel's send
/// waits for the channel's holder *now* (not for a snapshot of its holds), so an entry left
/// live past the moment its value went in made a cycle of a receiver that then joined the
/// sender, or waited for it, although the sender was going on (a false `deadlock`, or the same
/// deadlock reported twice once the sender blocked again: tests/real_bugs_round9.rs).
pub(crate) fn wait_over() {
    let _ = CURRENT_WAIT.try_with(|c| {
        let e = c.take();
        if let Some(e) = &e {
            e.store(true, Ordering::Release);
        }
        c.set(e);
    });
}

impl Drop for WaitToken {
    fn drop(&mut self) {
        let _ = CURRENT_WAIT.try_with(|c| drop(c.take()));
        if let Some(ended) = self.ended.take() {
            ended.store(true, Ordering::Release);
            park(ended);
        }
        if let Some(waiter) = self.pending.take() {
            // Never registered: kept, not freed, until this thread's next wait (see `park`).
            ended_unregistered(waiter);
        }
    }
}

/// Slots for never-registered waiters, per thread (see [`ended_unregistered`]).
const UNREGISTERED_SLOTS: usize = 4;

thread_local! {
    /// Waiters that were never registered (their wait ended while the mutex was busy), freed at
    /// the start of this thread's next wait. Several: a wait can start and end inside another
    /// one (its registration allocates, and a locking allocator waits for its own lock), so the
    /// outer wait's end may find a slot taken.
    static UNREGISTERED: Cell<[Option<Waiter>; UNREGISTERED_SLOTS]> =
        const { Cell::new([None, None, None, None]) };
}

/// Keeps a never-registered waiter until this thread's next wait. Never frees here: the wait
/// ended with the lock acquired, and a free would make a locking allocator take that lock again
/// on this thread (a self-deadlock, `tests/async_alloc_reentry.rs`). With every slot taken
/// (waits nested deeper than any allocator re-entry allows) the waiter is leaked, a few hundred
/// bytes, rather than freed under the lock.
fn ended_unregistered(waiter: Waiter) {
    let _ = UNREGISTERED.try_with(|slots| {
        let mut all = slots.take();
        match all.iter_mut().find(|s| s.is_none()) {
            Some(free) => *free = Some(waiter),
            None => std::mem::forget(waiter),
        }
        slots.set(all);
    });
}

/// Slots for ended waits' flags, per thread (see [`park`]).
const PARKED: usize = 4;

thread_local! {
    /// This thread's ended waits' flags, freed at the start of its next wait or at its exit.
    static ENDED: Cell<[Option<Arc<AtomicBool>>; PARKED]> =
        const { Cell::new([None, None, None, None]) };
}

/// Keeps an ended wait's reference to its flag instead of dropping it: the entry may already be
/// gone (removed by another thread's new wait), and then this drop would free the flag with the
/// lock just acquired held (see [`WaitToken`]). Several slots: a wait can start and end inside
/// another wait's bookkeeping (the allocator's lock, taken while `begin_wait` allocates). With
/// every slot taken (waits nested deeper than any allocator re-entry guard allows), it is
/// dropped.
fn park(ended: Arc<AtomicBool>) {
    let _ = ENDED.try_with(|slots| {
        let mut all = slots.take();
        let overflow = match all.iter_mut().find(|s| s.is_none()) {
            Some(free) => {
                *free = Some(ended);
                None
            }
            None => Some(ended),
        };
        // Replaces the empty array `take` left: nothing is freed here.
        slots.set(all);
        drop(overflow);
    });
}

/// Frees the flags [`park`] kept, and removes ended entries (this thread's own older entry
/// too), before this thread's new wait holds anything more. Each entry is dropped after the
/// mutex is released: its heap parts go back to the allocator, which may take checked locks.
/// The first call also registers the slots' thread-local destructor (which may allocate), so
/// that [`park`] never does.
fn free_ended(thread: u64) {
    if let Ok(all) = ENDED.try_with(Cell::take) {
        drop(all);
    }
    if let Ok(old) = UNREGISTERED.try_with(|slots| slots.take()) {
        drop(old);
    }
    loop {
        // Not waited for (see `WaitToken`): ended entries left now are removed by a later wait.
        let gone = {
            let Some(mut w) = try_internal(&WAITING) else {
                break;
            };
            w.iter()
                .position(|x| !x.live() || x.thread == thread)
                .map(|i| w.swap_remove(i))
        };
        match gone {
            Some(entry) => drop(entry),
            None => break,
        }
    }
}

/// Tries a few times for the waiters' mutex: `Ok` with the deadlock the registration closed (if
/// any), `Err` with the waiter when the mutex stayed busy.
// The waiter goes back by value on this rare path: boxing it would cost every wait an
// allocation.
#[allow(clippy::result_large_err)]
fn try_register(waiter: Waiter) -> Result<Option<Vec<EdgeInfo>>, Waiter> {
    for attempt in 0..64 {
        if let Some(mut waiting) = try_internal(&WAITING) {
            waiting.push(waiter);
            return Ok(if action() == Action::Off {
                None
            } else {
                let cycle = deadlock_cycle(&waiting, waiting.len() - 1);
                first_report(&mut waiting, cycle)
            });
        }
        if attempt < 32 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    Err(waiter)
}

/// `cycle`, found in `waiting` (under its mutex), unless every thread of it is in a deadlock
/// already found: its finder reports it and chooses who gives up its locks, after the report is
/// rendered (which takes its backtraces' symbols: a second on a loaded machine). Another thread
/// of the cycle checking its own wait again meanwhile (a channel's wait past its grace) found the
/// same threads in the same waits, and reported them a second time: a scope's join of a producer
/// blocked on the joiner's full channel was two `deadlock`s (tests/real_bugs_round9.rs). The
/// threads of the cycle returned are marked; [`unreported`] takes the marks back when the
/// finder could not report.
fn first_report(waiting: &mut [Waiter], cycle: Option<Vec<EdgeInfo>>) -> Option<Vec<EdgeInfo>> {
    let edges = cycle?;
    let member = |w: &Waiter| w.live() && edges.iter().any(|e| e.thread_id == w.thread);
    if !waiting.iter().any(|w| member(w) && !w.reported) {
        return None;
    }
    for w in waiting.iter_mut() {
        if member(w) {
            w.reported = true;
        }
    }
    Some(edges)
}

/// The deadlock of threads `members` was found but not reported (its finder was inside
/// lockcheck's own work): another thread of it may report it (see [`first_report`]).
fn unreported(members: &[u64]) {
    let mut waiting = internal(&WAITING);
    for w in waiting.iter_mut() {
        if members.contains(&w.thread) {
            w.reported = false;
        }
    }
}

/// What a blocked acquisition needs to know about its lock.
#[derive(Clone, Copy)]
pub(crate) struct WaitFor {
    pub ids: Ids,
    pub kind: LockKind,
    pub mode: Mode,
    /// Permits of a semaphore; 1 for other locks.
    pub capacity: usize,
    pub site: &'static Location<'static>,
}

/// Registers this thread as waiting and checks the wait-for graph. A deadlock is reported and,
/// under `panic` and `warn` alike (a wait-for cycle never resolves itself), one thread of the
/// cycle gives up its locks: this one (the verdict is returned, after unregistering, for the
/// public entry point to raise), or, when this one is retaking a condvar's mutex (its caller's
/// guard must not unwind without the mutex), another thread of the cycle, which notices within a
/// wait slice; this one then raises once it holds the mutex again. When every thread of the
/// cycle is retaking a condvar's mutex, no panic can be sound: the process aborts after the
/// report.
pub(crate) fn begin_wait(s: &ThreadState, w: WaitFor) -> Result<WaitToken, Verdict> {
    let thread = s.id();
    free_ended(thread);
    super::handoff::drain_held(s);
    let mut held = s.held_snapshot();
    let mut own_end = 0;
    if let Ok(Some((end, spawned))) = THREAD_END.try_with(Cell::get) {
        own_end = end.inst;
        // Holding nothing else, the acquisition wrote no request (`hooks`), but the thread holds
        // its end: a wait the runtime stops here must be in the trace, where the end is held
        // (see `thread::end_in_trace`).
        // A join writes its own request (`thread::before_join`).
        if !s.holds_any() && crate::thread::end_in_trace() && w.kind != LockKind::End {
            super::recorder::on_request(w.ids, w.kind, w.mode, w.site, w.capacity, 1);
        }
        // A thread started through `lockcheck::thread` holds its own end until it finishes:
        // a joiner waits for it (see [`join_wait`]). Past its closure (its thread-local
        // destructors), only an explicit join still waits for it: a `read` hold.
        let past_closure = TEARING_DOWN.try_with(Cell::get).unwrap_or(false);
        held.push(Held {
            inst: end.inst,
            class: end.class,
            mode: if past_closure {
                Mode::Shared
            } else {
                Mode::Exclusive
            },
            site: spawned,
            since: None,
            source: false,
            recorded: false,
            #[cfg(feature = "tokio")]
            task: 0,
        });
    }
    let name = thread_name(thread);
    let relocking = s.relocking.get();
    let ended = Arc::new(AtomicBool::new(false));
    let _ = CURRENT_WAIT.try_with(|c| drop(c.replace(Some(Arc::clone(&ended)))));
    let waiter = Waiter {
        thread,
        name,
        ids: w.ids,
        kind: w.kind,
        mode: w.mode,
        capacity: w.capacity,
        site: w.site,
        held,
        since: Instant::now(),
        warned: false,
        relocking,
        panicking: std::thread::panicking(),
        tearing_down: TEARING_DOWN.try_with(Cell::get).unwrap_or(false),
        end: own_end,
        victim: None,
        ended: Arc::clone(&ended),
        senders: if w.kind == LockKind::Channel {
            super::channel::receiving(w.ids.inst)
        } else {
            None
        },
        gate: if w.kind == LockKind::Channel {
            super::channel::sending_on(w.ids.inst)
        } else {
            None
        },
        barrier: if w.kind == LockKind::Barrier {
            super::barrier::waiting_at(w.ids.inst)
        } else {
            None
        },
        rechecked: 0,
        reported: false,
    };
    let mut token = WaitToken {
        ended: Some(ended),
        pending: None,
        recheck: waiter.senders.is_some() || waiter.gate.is_some() || waiter.barrier.is_some(),
    };
    match try_register(waiter) {
        Ok(Some(edges)) => deadlock_found(&mut token, &w, edges)?,
        Ok(None) => {}
        Err(waiter) => token.pending = Some(waiter),
    }
    Ok(token)
}

thread_local! {
    /// This thread (started through `lockcheck::thread`) is past its closure: its thread-local
    /// destructors run (see [`set_tearing_down`]).
    static TEARING_DOWN: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as past its closure (`thread::Finish`): a deadlock its thread-local
/// destructors close is broken by another thread of the cycle (a joiner), since a panic in a
/// thread-local destructor aborts the process.
pub(crate) fn set_tearing_down() {
    let _ = TEARING_DOWN.try_with(|t| t.set(true));
}

thread_local! {
    /// This thread's end as a lock of the wait-for graph, and where the thread was spawned: set
    /// for threads started through `lockcheck::thread`, whose `join` is a wait lockcheck sees.
    static THREAD_END: Cell<Option<(Ids, &'static Location<'static>)>> = const { Cell::new(None) };
}

/// Marks the calling thread (just started by `lockcheck::thread`) as holding its end `end`
/// until it finishes.
pub(crate) fn set_thread_end(end: Ids, spawned: &'static Location<'static>) {
    let _ = THREAD_END.try_with(|e| e.set(Some((end, spawned))));
}

/// A join of the thread whose end is `end` (see [`set_thread_end`]) by a thread that holds
/// locks, or that holds its own end (started through `lockcheck::thread`): registered as a wait
/// for the end, held by the joined thread, so that a joined thread blocked on a lock its joiner
/// holds (directly or through other waits) is a deadlock, reported by whichever of the two
/// closes the cycle, and so is a joined thread that joins its joiner back (two threads joining
/// each other, rust-lang/rust#34971: a cycle of two ends and no lock). `None`: nothing to
/// register (nothing held, checks off, or inside lockcheck's own work); `Err`: the deadlock this
/// join closes, to raise.
///
/// `explicit`: a join of the thread's handle, which waits for its thread-local destructors too,
/// an exclusive wait; a scope's implicit join waits for the closure only, a `read_recursive`
/// wait, which the thread's end, held in `read` mode once its closure returned (see
/// [`begin_wait`]), does not block: a destructor that waits for a lock the scope's owner holds
/// is no deadlock (the trace says the same, `recorder::join_mode`).
pub(crate) fn join_wait(
    end: Ids,
    site: &'static Location<'static>,
    explicit: bool,
) -> Option<Result<(WaitToken, WaitFor), Verdict>> {
    if action() == Action::Off {
        return None;
    }
    let w = WaitFor {
        ids: end,
        kind: LockKind::End,
        mode: if explicit {
            Mode::Exclusive
        } else {
            Mode::SharedRecursive
        },
        capacity: 1,
        site,
    };
    let own_end = THREAD_END.try_with(|e| e.get().is_some()).unwrap_or(false);
    STATE
        .try_with(|s| {
            (!s.busy.get() && (s.held_len() > 0 || own_end))
                .then(|| begin_wait(s, w).map(|t| (t, w)))
        })
        .ok()
        .flatten()
}

/// A deadlock closed by this thread's registration: report it and decide who gives up its
/// locks (see [`begin_wait`]). `Err`: this thread, with the verdict to raise (its registration
/// is ended).
fn deadlock_found(token: &mut WaitToken, w: &WaitFor, edges: Vec<EdgeInfo>) -> Result<(), Verdict> {
    let thread = STATE.try_with(|s| s.id()).unwrap_or(0);
    let relocking = STATE.try_with(|s| s.relocking.get()).unwrap_or(false);
    let tearing_down = TEARING_DOWN.try_with(Cell::get).unwrap_or(false);
    let members: Vec<u64> = edges.iter().map(|e| e.thread_id).collect();
    {
        let v = as_busy(|_| {
            let bt = super::report::Trace::capture();
            let mut edges = edges;
            if let Some(e) = edges.iter_mut().find(|e| e.thread_id == thread) {
                e.backtrace = bt;
            }
            publish(Violation {
                kind: ViolationKind::Deadlock,
                edges,
                message: String::new(),
            })
        });
        if let Some(v) = v {
            say_guesses(&v.edges);
            let first = v
                .message
                .lines()
                .next()
                .unwrap_or("lockcheck: deadlock")
                .to_owned();
            if receive_gives_up(thread, &members, &first) {
                // This thread keeps waiting: the receive's locks free it.
                return Ok(());
            }
            if !relocking && !tearing_down && !std::thread::panicking() {
                if let Some(ended) = token.ended.take() {
                    ended.store(true, Ordering::Release);
                    park(ended);
                }
                return Err(Verdict::new(format!(
                    "{first}, at {} (report above; this thread gives up its locks so the others can go on)",
                    w.site
                )));
            }
            // A relocking wait of kind `End` is a scoped thread's join (`thread::before_join`):
            // the only `End` waits of this graph are threads' joins ([`join_wait`]). A task's end,
            // of the same kind, is awaited in the async wait-for graph (`tokio::track`), which
            // reports and breaks its own cycles and never comes here.
            let why = if tearing_down {
                "a thread's thread-local destructors (which an explicit join waits for) can end"
            } else if w.kind == LockKind::End {
                "a join of a scoped thread (which std makes before a panic can leave the scope) can end"
            } else {
                "a condvar wait of the cycle can retake its mutex"
            };
            if !choose_victim(thread, &first, w.site, why) {
                notice::write_stderr(
                    "lockcheck: every thread of the deadlock above is retaking a condvar's mutex \
                     (or joining a scoped thread, running its thread-local destructors, or \
                     already unwinding): none can give up its locks soundly; aborting\n",
                );
                std::process::abort();
            }
            // This thread keeps waiting; the victim's locks free the cycle, and the report's
            // panic comes once the mutex is held again.
            let _ = super::hooks::defer_if_relocking(Verdict::new(format!(
                "{first}, at {} (report above; another thread of the cycle gave up its locks so \
                 that {})",
                w.site,
                if w.kind == LockKind::End {
                    "this join of a scoped thread could end"
                } else {
                    "this condvar wait could retake its mutex"
                }
            )));
        } else {
            unreported(&members);
        }
    }
    Ok(())
}

/// A deadlock through a waiting receive (or a wait at a barrier), closed by another thread
/// (`me`): the receiving thread gives up its locks rather than this one, whose panic may free
/// nothing (a sender blocked on the receiver's lock usually holds none; a participant of the
/// barrier that gave up would never arrive). Whether a receive of the cycle was marked.
///
/// A wait at a barrier first, this thread's own included (then `false`: this thread raises): it
/// gives up with its arrival counted, so the barrier opens once the others arrive, where a
/// receive that gave up would leave a participant that never arrives (a receive waiting for
/// what only a barrier's waiter sends).
fn receive_gives_up(me: u64, members: &[u64], first: &str) -> bool {
    let mut waiting = internal(&WAITING);
    let can = |x: &Waiter| {
        x.thread != me && x.live() && members.contains(&x.thread) && !x.relocking && !x.panicking
    };
    let me_at_barrier = waiting
        .iter()
        .any(|x| x.thread == me && x.live() && x.barrier.is_some());
    let pick = waiting
        .iter()
        .position(|x| can(x) && x.barrier.is_some())
        .or_else(|| {
            if me_at_barrier {
                None
            } else {
                waiting.iter().position(|x| can(x) && x.senders.is_some())
            }
        });
    let Some(r) = pick.map(|i| &mut waiting[i]) else {
        return false;
    };
    r.victim = Some(format!(
        "{first}, at {} (report above; this {} gives up its locks so the others can go on)",
        r.site,
        if r.barrier.is_some() {
            "wait at a barrier"
        } else {
            "receive"
        }
    ));
    true
}

/// Picks a thread of the deadlock (not this one) that can panic soundly and marks it; returns
/// whether one was found, or the deadlock is gone meanwhile (nothing to break). Checked again
/// under the lock: a member may have been unblocked since the cycle was found. `join`: this
/// thread is joining a scoped thread (`thread::before_join`), not retaking a condvar's mutex.
fn choose_victim(me: u64, first: &str, site: &Location<'_>, why: &str) -> bool {
    let mut waiting = internal(&WAITING);
    let Some(i) = waiting.iter().position(|w| w.thread == me && w.live()) else {
        return true;
    };
    let Some(edges) = deadlock_cycle(&waiting, i) else {
        return true;
    };
    let members: Vec<u64> = edges.iter().map(|e| e.thread_id).collect();
    let Some(v) = waiting.iter_mut().find(|x| {
        x.thread != me
            && x.live()
            && members.contains(&x.thread)
            && !x.relocking
            && !x.panicking
            && !x.tearing_down
    }) else {
        return false;
    };
    v.victim = Some(format!(
        "{first} (report above, made at {site}; this thread gives up its locks so that {why})"
    ));
    true
}

/// Whether waiter `w` requests something that holder entry `h` (same lock) keeps from it.
fn blocks(w: &Waiter, h: &Held) -> bool {
    h.inst == w.ids.inst && (w.mode.excludes(h.mode) || h.mode.excludes(w.mode))
}

/// Whether waiter `x`, a writer (or an upgrade) waiting on the `RwLock` that waiter `w` reads (or
/// read-locks upgradably), keeps `w` out: writer preference (`word_rwlock`) makes a waiting writer
/// set `WRITER` and wait for the readers inside, and new plain and upgradable readers wait for
/// `WRITER` to go. It sets `WRITER` only once no upgradable reader is inside: one among the stuck
/// waiters (other than `x`) keeps it from doing so. (A recursive read enters beside the readers
/// inside; an exclusive holder keeps `w` out by itself, see [`blocks`].)
fn keeps_out(waiting: &[Waiter], stuck: &[bool], w: &Waiter, x: usize) -> bool {
    let q = &waiting[x];
    w.kind == LockKind::Rwlock
        && matches!(w.mode, Mode::Shared | Mode::Upgradable)
        && q.ids.inst == w.ids.inst
        && q.mode == Mode::Exclusive
        && !(0..waiting.len()).any(|k| {
            k != x
                && stuck[k]
                && waiting[k]
                    .held
                    .iter()
                    .any(|h| h.inst == w.ids.inst && h.mode == Mode::Upgradable)
        })
}

/// The greatest set of waiters that can never proceed: a waiter stays in the set while its lock is
/// kept from it by waiters in the set (one holder for a mutex or rwlock, or a writer queued on the
/// rwlock ahead of a reader, see [`keeps_out`]; every permit for a semaphore). Returns the cycle
/// through waiter `new` (or the one it is stuck behind), as edges.
fn deadlock_cycle(waiting: &[Waiter], new: usize) -> Option<Vec<EdgeInfo>> {
    let n = waiting.len();
    // An ended wait (its thread has the lock, or gave up) blocks nobody and waits for nothing.
    let mut stuck: Vec<bool> = waiting.iter().map(Waiter::live).collect();
    // The holder of each channel a send waits on (see `gate_wait_stuck`).
    let gates: Vec<Option<super::channel::GateHolder>> = waiting
        .iter()
        .map(|w| super::channel::gate_holder(w.gate.as_ref()?))
        .collect();
    // Where the senders of each waiting receive are (see `or_wait_stuck`).
    let placements: Vec<Option<super::channel::Placement>> = waiting
        .iter()
        .map(|w| {
            let s = w.senders.as_ref()?.upgrade()?;
            Some(s.placement(w.thread))
        })
        .collect();
    // The generation of each barrier waited at (see `barrier_wait_stuck`).
    let barriers: Vec<Option<super::barrier::View>> = waiting
        .iter()
        .map(|w| Some(w.barrier.as_ref()?.0.upgrade()?.view()))
        .collect();
    let ch = Channels {
        gates: &gates,
        placements: &placements,
    };
    loop {
        let mut changed = false;
        for i in 0..n {
            if !stuck[i] {
                continue;
            }
            let w = &waiting[i];
            let ok = if w.barrier.is_some() {
                barriers[i]
                    .as_ref()
                    .is_some_and(|v| barrier_wait_stuck(waiting, &stuck, i, v, &ch))
            } else if w.gate.is_some() {
                gates[i].is_some_and(|g| gate_wait_stuck(waiting, &stuck, i, g))
            } else if w.senders.is_some() {
                placements[i]
                    .as_ref()
                    .is_some_and(|p| or_wait_stuck(waiting, &stuck, i, p))
            } else if w.kind == LockKind::Semaphore {
                let held: usize = (0..n)
                    .filter(|&j| stuck[j])
                    .map(|j| {
                        waiting[j]
                            .held
                            .iter()
                            .filter(|h| h.inst == w.ids.inst)
                            .count()
                    })
                    .sum();
                held >= w.capacity
            } else {
                (0..n).any(|j| {
                    stuck[j]
                        && j != i
                        && (waiting[j].held.iter().any(|h| blocks(w, h))
                            || keeps_out(waiting, &stuck, w, j))
                })
            };
            if !ok {
                stuck[i] = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    if !stuck[new] {
        return None;
    }
    // Follow "waits for a lock held by" from the new waiter until a thread repeats.
    let mut path = vec![new];
    loop {
        let i = *path.last().expect("non-empty");
        let w = &waiting[i];
        let next = if let Some(v) = &barriers[i] {
            behind_barrier(waiting, &stuck, i, v, &ch)
                .first()
                .map(|&(j, _)| j)
        } else if let Some(p) = &placements[i] {
            or_wait_next(waiting, &stuck, i, p)
        } else if let Some(g) = gates[i] {
            (0..n).find(|&j| j != i && stuck[j] && waiting[j].thread == g.thread)
        } else {
            None
        };
        let next = next.or_else(|| {
            (0..n).find(|&j| {
                stuck[j]
                    && j != i
                    && (waiting[j].held.iter().any(|h| {
                        h.inst == w.ids.inst && (blocks(w, h) || w.kind == LockKind::Semaphore)
                    }) || keeps_out(waiting, &stuck, w, j))
            })
        })?;
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let cycle = &path[pos..];
            return Some(edges_of(waiting, cycle));
        }
        path.push(next);
    }
}

/// Whether waiter `w` is at the same barrier, in the same generation, as waiter `x`.
fn same_barrier(w: &Waiter, x: &Waiter) -> bool {
    match (&w.barrier, &x.barrier) {
        (Some((a, g)), Some((b, h))) => Weak::ptr_eq(a, b) && g == h,
        _ => false,
    }
}

/// What the wait-for graph knows of each waiter's channel, beside its locks: the holder of the
/// bounded channel a send waits on, where the senders of a waiting receive are (see
/// [`deadlock_cycle`]).
struct Channels<'a> {
    gates: &'a [Option<super::channel::GateHolder>],
    placements: &'a [Option<super::channel::Placement>],
}

/// The stuck waiters (not at barrier waiter `i`'s barrier) behind the waiters of its
/// generation: directly or through other stuck waiters, each waits for a lock one of those
/// holds (a join waits for the joined thread's end, which that thread holds), for a bounded
/// channel one of those holds now (a send), or for a message that only those can send (a
/// receive whose every live sender handle was last used by one of them). Each with whether its
/// thread is a known participant (it arrived at the previous generation), known ones first; a
/// thread that arrived in this generation is left out. Empty once the barrier has opened.
fn behind_barrier(
    waiting: &[Waiter],
    stuck: &[bool],
    i: usize,
    v: &super::barrier::View,
    ch: &Channels<'_>,
) -> Vec<(usize, bool)> {
    let n = waiting.len();
    let at = |k: usize| k == i || same_barrier(&waiting[k], &waiting[i]);
    if waiting[i].barrier.as_ref().is_none_or(|b| b.1 != v.number) {
        return Vec::new();
    }
    // Waiters at the barrier, then those behind them, until no more join (a receive joins once
    // every sender's thread is in).
    let mut set: Vec<usize> = (0..n).filter(|&k| stuck[k] && at(k)).collect();
    let in_set = |set: &[usize], t: u64| set.iter().any(|&k| waiting[k].thread == t);
    loop {
        let before = set.len();
        for j in 0..n {
            if !stuck[j] || set.contains(&j) || at(j) || v.arrived.contains(&waiting[j].thread) {
                continue;
            }
            let w = &waiting[j];
            let held = set.iter().any(|&k| {
                waiting[k].held.iter().any(|h| {
                    blocks(w, h) || (h.inst == w.ids.inst && w.kind == LockKind::Semaphore)
                })
            });
            let gate = ch.gates[j].is_some_and(|g| in_set(&set, g.thread));
            let message = ch.placements[j].as_ref().is_some_and(|p| {
                p.unplaced == 0
                    && !p.owners.is_empty()
                    && p.owners.iter().all(|&(t, _)| in_set(&set, t))
            });
            if held || gate || message {
                set.push(j);
            }
        }
        if set.len() == before {
            break;
        }
    }
    let mut out: Vec<(usize, bool)> = Vec::new();
    for &j in set.iter().filter(|&&j| !at(j)) {
        if out
            .iter()
            .all(|&(o, _)| waiting[o].thread != waiting[j].thread)
        {
            out.push((j, v.known.contains(&waiting[j].thread)));
        }
    }
    out.sort_by_key(|&(_, known)| !known);
    out
}

/// Whether waiter `i`, at a barrier whose generation is `v`, stays stuck given the waiters
/// still `stuck`: the participants it waits for cannot arrive (see `barrier.rs`). A known
/// participant (it arrived at the previous generation) stuck behind the waiters never arrives:
/// stuck once the wait is [`super::channel::RECV_GRACE`] old. Otherwise, when the known
/// participants not arrived yet are fewer than the missing ones (the first generation, or
/// participants that changed), the threads stuck behind the waiters are assumed to be the
/// missing participants when there are as many as are missing, once the wait is
/// [`super::channel::UNPLACED_GRACE`] old (a guess: one of them may be no participant, while a
/// participant is busy elsewhere). When the known ones are enough, none is assumed: a thread
/// that is no known participant (a joiner of a waiter, say) is not taken for one while a known
/// participant is merely late.
fn barrier_wait_stuck(
    waiting: &[Waiter],
    stuck: &[bool],
    i: usize,
    v: &super::barrier::View,
    ch: &Channels<'_>,
) -> bool {
    let waited = waiting[i].since.elapsed();
    if waited < super::channel::RECV_GRACE || v.missing == 0 {
        return false;
    }
    let behind = behind_barrier(waiting, stuck, i, v, ch);
    behind.iter().any(|&(_, known)| known)
        || (v.known.len() < v.missing
            && behind.len() >= v.missing
            && waited >= super::channel::UNPLACED_GRACE)
}

/// Whether send `i`, waiting on a bounded channel held now by thread `holder` (`fresh`: its
/// receiver unused so far), stays stuck given the waiters still `stuck`: the holder is a stuck
/// waiter. The holder is the channel's current one, not a waiter's snapshot (the receiver may
/// have changed threads since that waiter began). A fresh channel's holder is its creator, whose
/// hold is unconfirmed (the receiver may have moved to a thread that has not used it yet): it
/// counts only once the send has waited [`super::channel::GRACE`] (checked again then). A
/// holder waiting in a receive of this very channel keeps no send waiting: it takes the message
/// (a rendezvous channel's send waits until its receiver is inside `recv`; the two meet at the
/// next try of the send, however long the receive had waited before).
fn gate_wait_stuck(
    waiting: &[Waiter],
    stuck: &[bool],
    i: usize,
    g: super::channel::GateHolder,
) -> bool {
    let w = &waiting[i];
    // Room in the channel: the send is about to get in, whatever its entry still says (its
    // wait ends without the list's mutex).
    if g.thread == 0 || g.room || (g.fresh && w.since.elapsed() < super::channel::GRACE) {
        return false;
    }
    let receives_here = |j: usize| {
        waiting[j]
            .senders
            .as_ref()
            .is_some_and(|s| s.as_ptr() as usize == g.senders)
    };
    (0..waiting.len())
        .any(|j| j != i && stuck[j] && waiting[j].thread == g.thread && !receives_here(j))
}

/// Whether waiting receive `i` stays stuck given the waiters still `stuck`: it waits for any
/// sender of its channel (an OR-wait), so it is stuck only when every live handle is with a
/// stuck thread. A handle is with the thread that last sent through it (`placed`; with the
/// receiving thread itself: stuck, left out of `p`); one never used may be anywhere
/// (`unplaced`): it counts as
/// stuck only when some stuck thread, not one a placed handle is with, waits for a lock the
/// receiving thread holds (the handles assumed to be there). And only once the receive has waited
/// [`super::channel::RECV_GRACE`] (a handle may have moved since its last use with no trace, or
/// be about to send for the first time), or [`super::channel::UNPLACED_GRACE`] when an unplaced
/// handle is assumed (a guess: see there).
fn or_wait_stuck(
    waiting: &[Waiter],
    stuck: &[bool],
    i: usize,
    p: &super::channel::Placement,
) -> bool {
    let w = &waiting[i];
    if w.since.elapsed() < super::channel::RECV_GRACE
        || (p.owners.is_empty() && p.unplaced == 0)
        || (p.unplaced > 0 && w.since.elapsed() < super::channel::UNPLACED_GRACE)
    {
        return false;
    }
    let thread_stuck =
        |t: u64| (0..waiting.len()).any(|j| j != i && stuck[j] && waiting[j].thread == t);
    let placed: Vec<u64> = p.owners.iter().map(|&(t, _)| t).collect();
    placed.iter().all(|&t| thread_stuck(t))
        && (p.unplaced == 0 || blocked_on(waiting, stuck, i, &placed).is_some())
}

/// A stuck waiter (not `i`, nor of the threads `besides`) that waits for a lock waiter `i`
/// holds.
fn blocked_on(waiting: &[Waiter], stuck: &[bool], i: usize, besides: &[u64]) -> Option<usize> {
    (0..waiting.len()).find(|&j| {
        j != i
            && stuck[j]
            && !besides.contains(&waiting[j].thread)
            && waiting[i]
                .held
                .iter()
                .any(|h| h.inst != waiting[i].end && blocks(&waiting[j], h))
    })
}

/// The thread a stuck receive `i` waits for, in a report: a stuck thread that last sent through
/// one of its handles, else the one an unplaced handle is assumed to be with.
fn or_wait_next(
    waiting: &[Waiter],
    stuck: &[bool],
    i: usize,
    p: &super::channel::Placement,
) -> Option<usize> {
    let placed: Vec<u64> = p.owners.iter().map(|&(t, _)| t).collect();
    placed
        .iter()
        .find_map(|&t| (0..waiting.len()).find(|&j| j != i && stuck[j] && waiting[j].thread == t))
        .or_else(|| blocked_on(waiting, stuck, i, &placed))
}

/// A sender of a stuck receive, in a deadlock found: its thread writes, when its wait ends, what
/// the trace must show for `lockcheck analyze` to find the cycle (see [`sender_in_trace`]).
struct SenderInTrace {
    thread: u64,
    senders: Ids,
    handle: &'static Location<'static>,
    wait: WaitFor,
}

static SENDERS_IN_TRACE: PlMutex<Vec<SenderInTrace>> = PlMutex::new(Vec::new());
/// Entries in [`SENDERS_IN_TRACE`]: what the end of a wait looks at.
static SENDERS_IN_TRACE_LEN: AtomicUsize = AtomicUsize::new(0);

/// Notes that waiter `w`, in a deadlock found, holds a handle of the channel whose senders are
/// `senders` (made or last used at `handle`), while recording.
fn sender_for_trace(w: &Waiter, senders: Ids, handle: &'static Location<'static>) {
    if !super::recorder::recording() {
        return;
    }
    let mut list = internal(&SENDERS_IN_TRACE);
    if list
        .iter()
        .any(|e| e.thread == w.thread && e.senders == senders)
    {
        return;
    }
    list.push(SenderInTrace {
        thread: w.thread,
        senders,
        handle,
        wait: WaitFor {
            ids: w.ids,
            kind: w.kind,
            mode: w.mode,
            capacity: w.capacity,
            site: w.site,
        },
    });
    SENDERS_IN_TRACE_LEN.store(list.len(), Ordering::Release);
}

/// The end of this thread's wait: if a deadlock found took it for a sender of a stuck receive
/// ([`sender_for_trace`]), its stream shows it now, as the runtime saw it: the channel's senders
/// held (a `try` `acquire`, mode `r`, at the handle's site) over a `request` of what it waited
/// for, then released. No event of its own (docs/trace-format.md, "Channels"): the wait itself
/// was not in the trace when the thread held nothing, and the handle was not either before its
/// first send. The runtime writes this only for a deadlock it found, as for a task's end.
#[inline]
pub(crate) fn sender_in_trace(me: u64) {
    if SENDERS_IN_TRACE_LEN.load(Ordering::Acquire) != 0 {
        sender_in_trace_slow(me);
    }
}

#[cold]
#[inline(never)]
fn sender_in_trace_slow(me: u64) {
    let mine: Vec<SenderInTrace> = {
        let mut list = internal(&SENDERS_IN_TRACE);
        let mut mine = Vec::new();
        let mut i = 0;
        while i < list.len() {
            if list[i].thread == me {
                mine.push(list.swap_remove(i));
            } else {
                i += 1;
            }
        }
        SENDERS_IN_TRACE_LEN.store(list.len(), Ordering::Release);
        mine
    };
    if !super::recorder::recording() {
        return;
    }
    for e in mine {
        let w = e.wait;
        // Holding the senders already (the opt-in prediction): the trace has them.
        let held = STATE
            .try_with(|s| {
                s.find_held(|h| h.inst == e.senders.inst && h.mode == Mode::Shared)
                    .is_some()
            })
            .unwrap_or(false);
        if held {
            continue;
        }
        super::recorder::on_acquire(e.senders, Mode::Shared, How::Try, e.handle, 0);
        super::recorder::on_request(w.ids, w.kind, w.mode, w.site, w.capacity, 1);
        super::recorder::on_release(e.senders, 0);
    }
}

/// A barrier's "holder" in a deadlock's edge: the barrier's site, this, then whether the thread is
/// a known participant or [`ASSUMED_PARTICIPANT`].
const BARRIER_HELD: &str = " (the barrier, created there: this thread has not arrived";
/// Ends a barrier's "holder" whose thread is only assumed a participant (the first generation).
const ASSUMED_PARTICIPANT: &str = "; assumed a participant";
/// Ends a receive's "holder": a sender handle never used, assumed to be with that thread.
const ASSUMED_HANDLE: &str = " (a sender handle made there, never used yet: assumed here)";

/// The guesses a reported deadlock rests on ([`edges_of`]'s assumed participants and sender
/// handles), each said once per process (`notice.rs`): the report itself says "assumed", but
/// not that this is a limit, nor where README explains it.
fn say_guesses(edges: &[EdgeInfo]) {
    for e in edges {
        let h = e.held_site.as_str();
        if h.ends_with(&format!("{ASSUMED_PARTICIPANT})")) {
            let site = h.split(BARRIER_HELD).next().unwrap_or(h);
            notice::once(Limit::BarrierParticipantAssumed, &site);
        }
        if let Some(site) = h.strip_suffix(ASSUMED_HANDLE) {
            notice::once(Limit::SenderHandleAssumed, &site);
        }
    }
}

fn edges_of(waiting: &[Waiter], cycle: &[usize]) -> Vec<EdgeInfo> {
    let k = cycle.len();
    (0..k)
        .map(|i| {
            let w = &waiting[cycle[i]];
            let prev = &waiting[cycle[(i + k - 1) % k]];
            // A participant that has not arrived "holds" the barrier a waiter waits at.
            let at_barrier = prev.barrier.as_ref().and_then(|(b, _)| {
                let v = b.upgrade()?.view();
                sender_for_trace(w, prev.ids, v.site);
                Some(format!(
                    "{}{BARRIER_HELD}{})",
                    v.site,
                    if v.known.contains(&w.thread) {
                        ", and arrived at its previous generation"
                    } else {
                        ASSUMED_PARTICIPANT
                    }
                ))
            });
            // The thread a waiting receive waits for "holds" one of its senders' handles.
            let handle = at_barrier.or_else(|| {
                prev.senders
                    .as_ref()
                    .and_then(Weak::upgrade)
                    .map(|s| s.placement(prev.thread))
                    .and_then(|p| {
                        let placed = p.owners.iter().find(|&&(t, _)| t == w.thread);
                        let (site, text) = match placed {
                            Some(&(_, site)) => {
                                (site, format!("{site} (its sender handle's last send)"))
                            }
                            None => {
                                let site = p.unplaced_site?;
                                (site, format!("{site}{ASSUMED_HANDLE}"))
                            }
                        };
                        sender_for_trace(w, prev.ids, site);
                        Some(text)
                    })
            });
            // A writer queued ahead of `prev`'s read holds nothing of the lock: it is shown
            // holding what it requests (its `WRITER` flag), at its own request's site.
            let queued = w.ids.inst == prev.ids.inst;
            let h = w
                .held
                .iter()
                .find(|h| h.inst == prev.ids.inst)
                .copied()
                .unwrap_or(Held {
                    inst: prev.ids.inst,
                    class: prev.ids.class,
                    mode: Mode::Exclusive,
                    site: if queued { w.site } else { prev.site },
                    since: None,
                    source: false,
                    recorded: false,
                    #[cfg(feature = "tokio")]
                    task: 0,
                });
            EdgeInfo {
                thread: w.name.clone(),
                thread_id: w.thread,
                held: LockRef::new(h.inst, h.class),
                held_mode: if handle.is_some() {
                    Mode::Shared
                } else {
                    h.mode
                },
                held_site: handle.unwrap_or_else(|| h.site.to_string()),
                acquired: LockRef::new(w.ids.inst, w.ids.class),
                mode: w.mode,
                site: w.site.to_string(),
                other_held: w
                    .held
                    .iter()
                    .filter(|x| x.inst != h.inst && x.inst != w.end)
                    .map(|x| LockRef::new(x.inst, x.class))
                    .collect(),
                backtrace: None,
                retried: false,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Per-class timeout policies.

static POLICY: PlMutex<Option<Policy>> = PlMutex::new(None);

#[derive(Default)]
struct Policy {
    by_key: HashMap<String, Duration>,
    resolved: HashMap<u32, Option<Duration>>,
}

/// Sets the longest a blocking acquisition of `class` (a lock name or `file:line:col`) may wait.
pub(crate) fn set_wait_timeout(class: &str, timeout: Option<Duration>) {
    let mut p = internal(&POLICY);
    let p = p.get_or_insert_with(Policy::default);
    match timeout {
        Some(t) => p.by_key.insert(class.to_owned(), t),
        None => p.by_key.remove(class),
    };
    p.resolved.clear();
}

/// The wait timeout of a class, if a policy sets one.
pub(crate) fn wait_timeout(class: u32) -> Option<Duration> {
    let mut guard = internal(&POLICY);
    let p = guard.as_mut()?;
    if p.by_key.is_empty() {
        return None;
    }
    if let Some(t) = p.resolved.get(&class) {
        return *t;
    }
    let t = p.by_key.get(&class_info(class).key).copied();
    p.resolved.insert(class, t);
    t
}

/// Loads `[wait_timeout]` entries (`"class" = "50ms"`) from a TOML policy file, as written by
/// `lockcheck analyze --timeouts-toml` (read by [`super::policy`], not a TOML crate: the runtime
/// adds no dependency). All or nothing: a file with an error sets no timeout.
pub(crate) fn load_policy_file(path: &std::path::Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let entries = super::policy::wait_timeouts(&text)?;
    for (class, d) in &entries {
        set_wait_timeout(class, Some(*d));
    }
    Ok(entries.len())
}

/// A timed-out wait under a policy: report (kind `wait-timeout`), then act (`Some`: the verdict
/// to raise).
pub(crate) fn timed_out(s: &ThreadState, w: &WaitFor, limit: Duration) -> Option<Verdict> {
    let thread = s.id();
    let holders = holders_of(w.ids.inst, thread);
    let v = as_busy(|_| {
        let lock = LockRef::new(w.ids.inst, w.ids.class);
        let mut first = EdgeInfo::on_lock(
            thread,
            thread_name(thread),
            lock,
            w.mode,
            w.site.to_string(),
            String::new(),
        );
        first.backtrace = super::report::Trace::capture();
        let mut edges = vec![first];
        edges.extend(holders);
        publish(Violation {
            kind: ViolationKind::WaitTimeout { limit },
            edges,
            message: String::new(),
        })
    });
    if let Some(v) = v {
        if action() == Action::Panic {
            let first = v
                .message
                .lines()
                .next()
                .unwrap_or("lockcheck: wait timeout")
                .to_owned();
            return Some(Verdict::new(format!("{first}, at {}", w.site)));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Published held locks and the watchdog.

static WAIT_WARN_NS: AtomicU64 = AtomicU64::new(0);
static HOLD_WARN_NS: AtomicU64 = AtomicU64::new(0);

/// A thread's held locks, visible to the watchdog.
pub(crate) struct Published {
    thread: u64,
    name: String,
    pub(crate) held: PlMutex<Vec<Held>>,
}

static PUBLISHED: PlMutex<Vec<Weak<Published>>> = PlMutex::new(Vec::new());

/// This thread's published list (created on first use).
pub(crate) fn published(s: &ThreadState) -> Option<Arc<Published>> {
    let id = s.id();
    with_slow(|slow| {
        if slow.published.is_none() {
            let p = Arc::new(Published {
                thread: id,
                name: thread_name(id),
                held: PlMutex::new(Vec::new()),
            });
            internal(&PUBLISHED).push(Arc::downgrade(&p));
            slow.published = Some(p);
        }
        slow.published.clone()
    })
    .flatten()
}

/// Holders of a lock known to lockcheck (waiting threads and, with the watchdog on, every thread),
/// as report edges: `held` is the lock, `site` where they took it.
fn holders_of(inst: u64, except: u64) -> Vec<EdgeInfo> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let mut push = |thread: u64, name: &str, h: &Held| {
        if thread == except || seen.contains(&thread) {
            return;
        }
        seen.push(thread);
        let lock = LockRef::new(h.inst, h.class);
        out.push(EdgeInfo::on_lock(
            thread,
            name.to_owned(),
            lock,
            h.mode,
            h.site.to_string(),
            h.site.to_string(),
        ));
    };
    for p in internal(&PUBLISHED).iter().filter_map(Weak::upgrade) {
        for h in internal(&p.held).iter().filter(|h| h.inst == inst) {
            push(p.thread, &p.name, h);
        }
    }
    for w in internal(&WAITING).iter().filter(|w| w.live()) {
        for h in w.held.iter().filter(|h| h.inst == inst) {
            push(w.thread, &w.name, h);
        }
    }
    out
}

fn start_watchdog() {
    let _ = std::thread::Builder::new()
        .name("lockcheck-watchdog".into())
        .spawn(|| {
            let _ = STATE.try_with(|s| s.busy.set(true));
            let mut warned_holds: Vec<(u64, u64, Instant)> = Vec::new();
            loop {
                let wait = WAIT_WARN_NS.load(Ordering::Relaxed);
                let hold = HOLD_WARN_NS.load(Ordering::Relaxed);
                let shortest = [wait, hold]
                    .into_iter()
                    .filter(|&d| d > 0)
                    .min()
                    .unwrap_or(100_000_000);
                std::thread::sleep(Duration::from_nanos(
                    (shortest / 4).clamp(1_000_000, 100_000_000),
                ));
                if wait > 0 {
                    check_waits(Duration::from_nanos(wait));
                }
                if hold > 0 {
                    check_holds(Duration::from_nanos(hold), &mut warned_holds);
                }
            }
        });
}

fn check_waits(limit: Duration) {
    let long: Vec<(u64, String, Ids, Mode, &'static Location<'static>, Duration)> = {
        let mut waiting = internal(&WAITING);
        waiting
            .iter_mut()
            .filter(|w| w.live() && !w.warned && w.since.elapsed() > limit)
            .map(|w| {
                w.warned = true;
                (
                    w.thread,
                    w.name.clone(),
                    w.ids,
                    w.mode,
                    w.site,
                    w.since.elapsed(),
                )
            })
            .collect()
    };
    for (thread, name, ids, mode, site, waited) in long {
        let lock = LockRef::new(ids.inst, ids.class);
        let mut edges = vec![EdgeInfo::on_lock(
            thread,
            name,
            lock,
            mode,
            site.to_string(),
            String::new(),
        )];
        edges.extend(holders_of(ids.inst, thread));
        publish(Violation {
            kind: ViolationKind::LongWait { waited, limit },
            edges,
            message: String::new(),
        });
    }
}

fn check_holds(limit: Duration, warned: &mut Vec<(u64, u64, Instant)>) {
    let mut long = Vec::new();
    let live: Vec<Arc<Published>> = {
        let mut list = internal(&PUBLISHED);
        list.retain(|w| w.strong_count() > 0);
        list.iter().filter_map(Weak::upgrade).collect()
    };
    let mut still = Vec::new();
    for p in &live {
        for h in internal(&p.held).iter() {
            let Some(since) = h.since else { continue };
            // A channel's hold is the ownership of its receiver, no lock kept too long.
            if class_info(h.class).kind == LockKind::Channel {
                continue;
            }
            let key = (p.thread, h.inst, since);
            if since.elapsed() > limit {
                still.push(key);
                if !warned.contains(&key) {
                    long.push((p.thread, p.name.clone(), *h, since.elapsed()));
                }
            }
        }
    }
    *warned = still;
    for (thread, name, h, held_for) in long {
        let lock = LockRef::new(h.inst, h.class);
        let mut edges = vec![EdgeInfo::on_lock(
            thread,
            name,
            lock,
            h.mode,
            h.site.to_string(),
            h.site.to_string(),
        )];
        // Who is waiting for it.
        for w in internal(&WAITING)
            .iter()
            .filter(|w| w.live() && w.ids.inst == h.inst)
        {
            let lock = LockRef::new(w.ids.inst, w.ids.class);
            edges.push(EdgeInfo::on_lock(
                w.thread,
                w.name.clone(),
                lock,
                w.mode,
                w.site.to_string(),
                String::new(),
            ));
        }
        publish(Violation {
            kind: ViolationKind::LongHold { held_for, limit },
            edges,
            message: String::new(),
        });
    }
}

/// Sets the wait duration after which the watchdog reports (None: off).
pub(crate) fn set_wait_warn(d: Option<Duration>) {
    WAIT_WARN_NS.store(
        d.map_or(0, |d| d.as_nanos().max(1) as u64),
        Ordering::Relaxed,
    );
    if d.is_some() {
        enable(WATCH);
    }
}

/// Sets the hold duration after which the watchdog reports (None: off).
pub(crate) fn set_hold_warn(d: Option<Duration>) {
    HOLD_WARN_NS.store(
        d.map_or(0, |d| d.as_nanos().max(1) as u64),
        Ordering::Relaxed,
    );
    if d.is_some() {
        enable(WATCH);
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics.

/// A thread's statistics, by class number.
pub(crate) struct ThreadStats {
    pub(crate) classes: PlMutex<Vec<ClassStats>>,
}

/// The tables of the live threads that counted.
static STATS_REG: PlMutex<Vec<Arc<ThreadStats>>> = PlMutex::new(Vec::new());

/// The sum of the tables of threads that ended ([`stats_thread_ended`]): their tables leave
/// [`STATS_REG`], which would otherwise grow with every short-lived thread that took a lock
/// while statistics were on.
static STATS_ENDED: PlMutex<Vec<ClassStats>> = PlMutex::new(Vec::new());

pub(crate) fn enable_stats() {
    enable(STATS);
}

/// This thread's statistics table (created on first use).
pub(crate) fn thread_stats(_s: &ThreadState) -> Option<Arc<ThreadStats>> {
    with_slow(|slow| {
        if slow.stats.is_none() {
            let t = Arc::new(ThreadStats {
                classes: PlMutex::new(Vec::new()),
            });
            internal(&STATS_REG).push(Arc::clone(&t));
            slow.stats = Some(t);
        }
        slow.stats.clone()
    })
    .flatten()
}

/// Makes room for `class` in this thread's table before a lock of it is taken, so that
/// [`count_acquire`], right after the acquisition, does not allocate (see
/// `hooks::before_acquire`). Rows of no acquisition are not reported.
pub(crate) fn reserve_class(st: &ThreadStats, class: u32) {
    let mut v = internal(&st.classes);
    let i = class as usize;
    if v.len() <= i {
        v.resize(i + 1, ClassStats::default());
    }
}

pub(crate) fn count_acquire(st: &ThreadStats, class: u32, wait_ns: u64) {
    let mut v = internal(&st.classes);
    let i = class as usize;
    if v.len() <= i {
        v.resize(i + 1, ClassStats::default());
    }
    let c = &mut v[i];
    c.acquisitions += 1;
    if wait_ns > 0 {
        c.contended += 1;
        c.wait_total_ns += wait_ns;
        c.wait_max_ns = c.wait_max_ns.max(wait_ns);
    }
}

pub(crate) fn count_release(st: &ThreadStats, class: u32, hold_ns: u64) {
    let mut v = internal(&st.classes);
    if let Some(c) = v.get_mut(class as usize) {
        c.hold_total_ns += hold_ns;
        c.hold_max_ns = c.hold_max_ns.max(hold_ns);
    }
}

/// Adds a thread's table into `total`, by class number.
fn add_stats(total: &mut Vec<ClassStats>, classes: &[ClassStats]) {
    for (i, c) in classes.iter().enumerate() {
        if total.len() <= i {
            total.resize(i + 1, ClassStats::default());
        }
        let s = &mut total[i];
        s.acquisitions += c.acquisitions;
        s.contended += c.contended;
        s.wait_total_ns += c.wait_total_ns;
        s.wait_max_ns = s.wait_max_ns.max(c.wait_max_ns);
        s.hold_total_ns += c.hold_total_ns;
        s.hold_max_ns = s.hold_max_ns.max(c.hold_max_ns);
    }
}

/// Thread `t`'s table at its end (its slow state dropped): added to [`STATS_ENDED`] and taken
/// out of [`STATS_REG`], under the registry's lock (taken before the sum's, as in
/// [`collect_stats`]), so that a sum made meanwhile counts it once.
pub(crate) fn stats_thread_ended(t: &Arc<ThreadStats>) {
    let mut reg = internal(&STATS_REG);
    if let Some(i) = reg.iter().position(|x| Arc::ptr_eq(x, t)) {
        reg.swap_remove(i);
        add_stats(&mut internal(&STATS_ENDED), &internal(&t.classes));
    }
}

/// Live threads with a statistics table (for tests: it must not grow with ended threads).
#[cfg(test)]
pub(crate) fn stats_tables() -> usize {
    internal(&STATS_REG).len()
}

/// Sums every thread's statistics, by class number: the live threads' tables and those of the
/// threads that ended.
pub(crate) fn collect_stats() -> Vec<(u32, ClassStats)> {
    let reg = internal(&STATS_REG);
    let mut total: Vec<ClassStats> = internal(&STATS_ENDED).clone();
    for t in reg.iter() {
        add_stats(&mut total, &internal(&t.classes));
    }
    drop(reg);
    total
        .into_iter()
        .enumerate()
        .filter(|(_, s)| s.acquisitions > 0)
        .map(|(i, s)| (i as u32, s))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Condition variables (opt-in).

/// Switches the condvar check on or off.
pub(crate) fn set_condvar_check(on: bool) {
    features();
    if on {
        FEATURES.fetch_or(CONDVAR, Ordering::Relaxed);
    } else {
        FEATURES.fetch_and(!CONDVAR, Ordering::Relaxed);
    }
    crate::config::refresh_flags();
}

/// Locks remembered per condvar as its notifiers' (see [`note_notifier`]).
const MAX_NOTIFIER_LOCKS: usize = 32;
/// Marks a notifier list that overflowed, or that got a notify whose window was incomplete
/// ([`TAKEN_MAX`]): every lock then counts as possibly a notifier's (the check falls back to its
/// "no notify seen yet" rule instead of missing a lock it forgot). Reported once per process
/// ([`condvar_limit`]).
const OVERFLOW: u64 = u64::MAX;

/// Distinct locks a thread's window log keeps ([`Taken`]): past it, the lock taken least
/// recently is forgotten, and a notify whose window needed it is reported as incomplete.
pub(crate) const TAKEN_MAX: usize = 64;
/// Condvars whose window start a thread keeps ([`Taken::starts`]): past it, the one used least
/// recently is forgotten (reported once per process), and a later notify of it by that thread
/// has the window of a condvar it never used (since its latest condvar event of any kind).
pub(crate) const STARTS_MAX: usize = 16;

/// What the condvar rule keeps per thread, in fixed arrays (an acquisition's bookkeeping must
/// not allocate, see `hooks::before_acquire`): the distinct locks the thread took, each with the
/// number of its latest acquisition (the thread's count, `seq`), and per condvar the count at
/// the start of the thread's current window on it (its last return from a wait on it, or its
/// last notify of it). A notify's window is the locks taken since that start (see
/// [`note_notifier`]).
struct Taken {
    /// Acquisitions counted on this thread (0: none yet).
    seq: u64,
    /// (lock instance, `seq` of its latest acquisition), the first `len` entries.
    locks: [(u64, u64); TAKEN_MAX],
    len: usize,
    /// The latest `seq` of a lock forgotten to make room (0: none): a window that starts
    /// before it may lack that lock.
    lost: u64,
    /// (condvar id, `seq` at the start of this thread's window on it), the first `n_starts`.
    starts: [(u64, u64); STARTS_MAX],
    n_starts: usize,
    /// The `seq` of this thread's latest condvar event (a return from a wait, a notify) of any
    /// condvar: the start of the window on a condvar it has no start of its own for.
    last_any: u64,
}

impl Taken {
    const fn new() -> Taken {
        Taken {
            seq: 0,
            locks: [(0, 0); TAKEN_MAX],
            len: 0,
            lost: 0,
            starts: [(0, 0); STARTS_MAX],
            n_starts: 0,
            last_any: 0,
        }
    }

    /// An acquisition of `inst`.
    fn take(&mut self, inst: u64) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(e) = self.locks[..self.len].iter_mut().find(|e| e.0 == inst) {
            e.1 = seq;
            return;
        }
        if self.len < TAKEN_MAX {
            self.locks[self.len] = (inst, seq);
            self.len += 1;
            return;
        }
        let oldest = (0..TAKEN_MAX).min_by_key(|&i| self.locks[i].1).unwrap_or(0);
        self.lost = self.lost.max(self.locks[oldest].1);
        self.locks[oldest] = (inst, seq);
    }

    /// The start of this thread's window on condvar `cv`.
    fn start(&self, cv: u64) -> u64 {
        self.starts[..self.n_starts]
            .iter()
            .find(|e| e.0 == cv)
            .map_or(self.last_any, |e| e.1)
    }

    /// Starts a new window on `cv` (now). Returns whether another condvar's start was forgotten
    /// to make room.
    fn restart(&mut self, cv: u64) -> bool {
        let seq = self.seq;
        self.last_any = seq;
        if let Some(e) = self.starts[..self.n_starts].iter_mut().find(|e| e.0 == cv) {
            e.1 = seq;
            return false;
        }
        if self.n_starts < STARTS_MAX {
            self.starts[self.n_starts] = (cv, seq);
            self.n_starts += 1;
            return false;
        }
        let oldest = (0..STARTS_MAX)
            .min_by_key(|&i| self.starts[i].1)
            .unwrap_or(0);
        self.starts[oldest] = (cv, seq);
        true
    }
}

thread_local! {
    static TAKEN: std::cell::RefCell<Taken> = const { std::cell::RefCell::new(Taken::new()) };
}

/// An acquisition of lock `inst` with the condvar rule on (`hooks::after_acquire`): into this
/// thread's window log. No allocation.
pub(crate) fn note_taken(inst: u64) {
    let _ = TAKEN.try_with(|t| {
        if let Ok(mut t) = t.try_borrow_mut() {
            t.take(inst);
        }
    });
}

/// A return from a wait on condvar `cv` (its mutex held again): this thread's window on `cv`
/// starts again.
pub(crate) fn note_woken(cv: u64) {
    if features() & CONDVAR == 0 {
        return;
    }
    let forgot = TAKEN
        .try_with(|t| t.try_borrow_mut().is_ok_and(|mut t| t.restart(cv)))
        .unwrap_or(false);
    if forgot {
        condvar_limit("condvar-window-condvars", STARTS_MAX as u64);
    }
}

/// At a notify of condvar `cv`: remembers the locks the notifier needed to get there, those it
/// holds and those it took in its window on `cv` (since its last return from a wait on `cv` or
/// its last notify of it; on a condvar it has neither for among its latest [`STARTS_MAX`], since
/// its latest such event on any condvar, or its start): a waiter on `cv` that holds one of them
/// may keep the notifier from ever notifying again. (A pool's job that takes a lock, releases
/// it, then notifies a latch shared by all jobs: the lock is in the window.) At most
/// [`MAX_NOTIFIER_LOCKS`] per condvar; past it, or when the window lacks locks the thread's log
/// forgot ([`TAKEN_MAX`]), the list is marked as overflowed and the limit reported.
/// Returns the window (the locks held and taken in it) when it is complete, for the lost-wakeup
/// rule ([`lost_wakeup_at_notify`]).
pub(crate) fn note_notifier(notifiers: &PlMutex<Vec<u64>>, cv: u64) -> Option<Vec<u64>> {
    if features() & CONDVAR == 0 {
        return None;
    }
    let mut window: Vec<u64> = STATE
        .try_with(|s| s.held_snapshot().iter().map(|h| h.inst).collect())
        .unwrap_or_default();
    let (mut incomplete, mut forgot) = (None, false);
    let _ = TAKEN.try_with(|t| {
        if let Ok(mut t) = t.try_borrow_mut() {
            let start = t.start(cv);
            window.extend(t.locks[..t.len].iter().filter(|e| e.1 > start).map(|e| e.0));
            if t.lost > start {
                incomplete = Some(("condvar-window-locks", TAKEN_MAX as u64));
            }
            forgot = t.restart(cv);
        }
    });
    if forgot {
        condvar_limit("condvar-window-condvars", STARTS_MAX as u64);
    }
    let mut overflowed = None;
    {
        let mut n = internal(notifiers);
        if incomplete.is_some() && !n.contains(&OVERFLOW) {
            n.push(OVERFLOW);
        }
        for &inst in &window {
            if n.contains(&inst) || n.contains(&OVERFLOW) {
                continue;
            }
            if n.len() < MAX_NOTIFIER_LOCKS {
                n.push(inst);
            } else {
                n.push(OVERFLOW);
                overflowed = Some(("condvar-notifier-locks", MAX_NOTIFIER_LOCKS as u64));
            }
        }
    }
    let complete = incomplete.is_none();
    for (limit, bound) in incomplete.into_iter().chain(overflowed) {
        condvar_limit(limit, bound);
    }
    complete.then_some(window)
}

// ---------------------------------------------------------------------------------------------
// The lost-wakeup rule (with the condvar rule): a notifier must take the waiters' mutex.

/// An untimed wait on a condvar, in progress: the mutex it waits with.
pub(crate) struct WaitWith {
    inst: u64,
    class: u32,
    thread: u64,
    site: &'static Location<'static>,
}

/// A condvar's latest notify whose window was complete: its window, by whom, where.
pub(crate) struct LastNotify {
    window: Vec<u64>,
    thread: u64,
    site: &'static Location<'static>,
    /// The notifies before it (distinct by thread, site and window; the latest
    /// [`EARLIER_NOTIFIES`]), not compared with a wait: only to say so when one of them lacked
    /// the wait's mutex (`notice.rs`).
    earlier: Vec<(u64, &'static Location<'static>, Vec<u64>)>,
}

/// How many earlier notifies a condvar keeps for the lost-wakeup rule's notice.
const EARLIER_NOTIFIES: usize = 8;

/// Reported lost-wakeup hazards, each once: (notify site, wait site, the mutex's class).
static LOST_REPORTED: PlMutex<Vec<(String, String, u32)>> = PlMutex::new(Vec::new());

/// At a notify whose window is `window` (None: incomplete, or the rule is off; nothing is
/// checked then): each untimed wait in progress by another thread whose mutex the notifier did
/// not take in its window is a possible lost wakeup (its waiter could as well have been between
/// its check and its wait, and missed this notify). The notify is kept for the next waits
/// ([`lost_wakeup_at_wait`]).
pub(crate) fn lost_wakeup_at_notify(
    waits: &PlMutex<Vec<WaitWith>>,
    last: &PlMutex<Option<LastNotify>>,
    window: Option<Vec<u64>>,
    site: &'static Location<'static>,
) {
    let Some(window) = window else { return };
    let Ok(me) = STATE.try_with(|s| s.id()) else {
        return;
    };
    let missed: Vec<(u64, u32, &'static Location<'static>)> = internal(waits)
        .iter()
        .filter(|w| w.thread != me && !window.contains(&w.inst))
        .map(|w| (w.inst, w.class, w.site))
        .collect();
    for (inst, class, wait_site) in missed {
        report_lost_wakeup(me, site, inst, class, wait_site);
    }
    let mut last = internal(last);
    let mut earlier = Vec::new();
    if let Some(old) = last.take() {
        earlier = old.earlier;
        let prev = (old.thread, old.site, old.window);
        earlier.retain(|e| *e != prev);
        if earlier.len() == EARLIER_NOTIFIES {
            earlier.remove(0);
        }
        earlier.push(prev);
    }
    *last = Some(LastNotify {
        window,
        thread: me,
        site,
        earlier,
    });
}

/// At the start of an untimed wait with mutex `mutex`: the condvar's latest notify, by another
/// thread, had a window without that mutex (a possible lost wakeup: this very wait may be the one
/// whose notify came between its check and its wait). Registers the wait for the notifies to come
/// ([`lost_wakeup_at_notify`]); `lost_wakeup_wait_ended` removes it.
pub(crate) fn lost_wakeup_at_wait(
    mutex: &super::class::Meta,
    waits: &PlMutex<Vec<WaitWith>>,
    last: &PlMutex<Option<LastNotify>>,
    site: &'static Location<'static>,
) {
    if features() & CONDVAR == 0 {
        return;
    }
    let Some(m) = mutex.assigned() else { return };
    let Ok(me) = STATE.try_with(|s| s.id()) else {
        return;
    };
    let (missed, earlier_missed) = {
        let last = internal(last);
        let lacks = |thread: u64, window: &[u64]| thread != me && !window.contains(&m.inst);
        let missed = last
            .as_ref()
            .filter(|n| lacks(n.thread, &n.window))
            .map(|n| (n.thread, n.site));
        // The limit: only the latest notify is compared. Said once when an earlier one lacked
        // the mutex (and the latest did not).
        let earlier_missed = missed.is_none()
            && last.as_ref().is_some_and(|n| {
                n.earlier
                    .iter()
                    .any(|(thread, _, window)| lacks(*thread, window))
            });
        (missed, earlier_missed)
    };
    if let Some((notifier, notify_site)) = missed {
        report_lost_wakeup(notifier, notify_site, m.inst, m.class, site);
    } else if earlier_missed {
        notice::once(Limit::LostWakeupEarlierNotify, &format_args!("at {site}"));
    }
    internal(waits).push(WaitWith {
        inst: m.inst,
        class: m.class,
        thread: me,
        site,
    });
}

/// The end of this thread's untimed wait registered by [`lost_wakeup_at_wait`].
pub(crate) fn lost_wakeup_wait_ended(waits: &PlMutex<Vec<WaitWith>>) {
    if features() & CONDVAR == 0 {
        return;
    }
    let Ok(me) = STATE.try_with(|s| s.id()) else {
        return;
    };
    let mut w = internal(waits);
    if let Some(i) = w.iter().position(|w| w.thread == me) {
        w.swap_remove(i);
    }
}

/// Publishes a lost-wakeup warning (never a panic), once per notify site, wait site and mutex
/// class.
fn report_lost_wakeup(
    notifier: u64,
    notify_site: &'static Location<'static>,
    inst: u64,
    class: u32,
    wait_site: &'static Location<'static>,
) {
    let key = (notify_site.to_string(), wait_site.to_string(), class);
    {
        // Deduplication only: past its bound, a hazard may be reported again (never missed).
        let mut reported = internal(&LOST_REPORTED);
        if reported.contains(&key) {
            return;
        }
        if reported.len() >= 10_000 {
            reported.clear();
        }
        reported.push(key);
    }
    let _ = as_busy(|_| {
        let mutex = LockRef::new(inst, class);
        publish(Violation {
            kind: ViolationKind::LostWakeup,
            edges: vec![EdgeInfo {
                thread: thread_name(notifier),
                thread_id: notifier,
                held: mutex.clone(),
                held_mode: Mode::Exclusive,
                held_site: wait_site.to_string(),
                acquired: mutex,
                mode: Mode::Exclusive,
                site: notify_site.to_string(),
                other_held: Vec::new(),
                backtrace: None,
                retried: false,
            }],
            message: String::new(),
        })
    });
}

/// Condvar limits already reported (each once per process).
static CONDVAR_LIMITS: PlMutex<Vec<&'static str>> = PlMutex::new(Vec::new());

/// Reports, once per process, a limit of the condvar rule that a notify hit (see
/// [`note_notifier`]): an `incomplete` finding whose edge is the notifying thread's.
#[cold]
fn condvar_limit(limit: &'static str, bound: u64) {
    {
        let mut seen = internal(&CONDVAR_LIMITS);
        if seen.contains(&limit) {
            return;
        }
        seen.push(limit);
    }
    let _ = STATE.try_with(|s| {
        if s.busy.get() {
            return;
        }
        let thread = s.id();
        let _ = as_busy(|_| {
            let none = LockRef::new(0, 0);
            let edge = EdgeInfo::on_lock(
                thread,
                thread_name(thread),
                none,
                Mode::Exclusive,
                String::new(),
                String::new(),
            );
            publish(Violation {
                kind: ViolationKind::Incomplete { limit, bound },
                edges: vec![edge],
                message: String::new(),
            })
        });
    });
}

/// Reported hazards, each once: (wait site, held site, the waited mutex's class, the held
/// lock's class). The classes are part of the key so that two locks of different classes held
/// at one line (a helper that takes the lock it is given) and waited with at one line are two
/// hazards, not one hiding the other; new instances of one class are one.
static CONDVAR_REPORTED: PlMutex<Vec<(String, String, u32, u32)>> = PlMutex::new(Vec::new());

/// At a wait: a thread that keeps another lock while it waits blocks a notifier that needs that
/// lock, which then never notifies. Reported as a warning (never a panic): with a notifier seen
/// holding that lock, or, before any notify was seen, for every other lock held.
pub(crate) fn check_condvar_wait(
    mutex: &super::class::Meta,
    notifiers: &PlMutex<Vec<u64>>,
    site: &'static Location<'static>,
) {
    if features() & CONDVAR == 0 {
        return;
    }
    let Some(m) = mutex.assigned() else { return };
    let _ = STATE.try_with(|s| {
        if s.busy.get() {
            return;
        }
        let known = internal(notifiers).clone();
        let any = known.is_empty() || known.contains(&OVERFLOW);
        let mut risky: Vec<Held> = s.held_snapshot();
        risky.retain(|h| h.inst != m.inst && (any || known.contains(&h.inst)));
        let Some(h) = risky.first().copied() else {
            return;
        };
        let key = (site.to_string(), h.site.to_string(), m.class, h.class);
        {
            // Deduplication only: past its bound, a hazard may be reported again (never missed).
            let mut reported = internal(&CONDVAR_REPORTED);
            if reported.contains(&key) {
                return;
            }
            if reported.len() >= 10_000 {
                reported.clear();
            }
            reported.push(key);
        }
        let thread = s.id();
        let _ = as_busy(|_| {
            let edge = EdgeInfo {
                thread: thread_name(thread),
                thread_id: thread,
                held: LockRef::new(h.inst, h.class),
                held_mode: h.mode,
                held_site: h.site.to_string(),
                acquired: LockRef::new(m.inst, m.class),
                mode: Mode::Exclusive,
                site: site.to_string(),
                other_held: risky[1..]
                    .iter()
                    .map(|x| LockRef::new(x.inst, x.class))
                    .collect(),
                backtrace: None,
                retried: false,
            };
            publish(Violation {
                kind: ViolationKind::CondvarWait {
                    notifier_seen: !known.is_empty(),
                },
                edges: vec![edge],
                message: String::new(),
            })
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::Location;

    /// A waiter of thread `thread` on lock `inst`, holding `held`, waiting since `ago`.
    fn waiter(thread: u64, inst: u64, held: Vec<Held>, ago: Duration) -> Waiter {
        Waiter {
            thread,
            name: format!("T{thread}"),
            ids: Ids { inst, class: 1 },
            kind: LockKind::Channel,
            mode: Mode::Exclusive,
            capacity: 1,
            site: Location::caller(),
            held,
            since: Instant::now() - ago,
            warned: false,
            relocking: false,
            panicking: false,
            tearing_down: false,
            end: 0,
            victim: None,
            ended: Arc::new(AtomicBool::new(false)),
            senders: None,
            gate: None,
            barrier: None,
            rechecked: 0,
            reported: false,
        }
    }

    fn held(inst: u64) -> Held {
        Held {
            inst,
            class: 2,
            mode: Mode::Exclusive,
            site: Location::caller(),
            since: None,
            source: false,
            recorded: false,
            #[cfg(feature = "tokio")]
            task: 0,
        }
    }

    /// A receiver (thread 1) holding a lock no sender needs has waited past the grace; the
    /// channel's one sender (thread 2) missed it and waits on the rendezvous channel, whose
    /// holder is that receiver. No deadlock: the receiver takes this very message (a false
    /// `deadlock` before, seen under load). A send on *another* channel held by the receiver
    /// does make the cycle.
    #[test]
    fn a_send_waiting_on_a_channel_whose_holder_receives_from_it_is_no_deadlock() {
        let (gate, senders) = super::super::channel::test_channel(1, 2);
        let mut recv = waiter(1, 100, vec![held(7)], Duration::from_secs(2));
        recv.senders = Some(Arc::downgrade(&senders));
        let mut send = waiter(2, 200, Vec::new(), Duration::from_millis(1));
        send.gate = Some(Arc::downgrade(&gate));
        assert!(deadlock_cycle(&[recv, send], 1).is_none());

        // The same, the send on another channel the receiving thread holds: stuck both.
        let (other, _other_senders) = super::super::channel::test_channel(1, 0);
        let mut recv = waiter(1, 100, vec![held(7)], Duration::from_secs(2));
        recv.senders = Some(Arc::downgrade(&senders));
        let mut send = waiter(2, 300, Vec::new(), Duration::from_millis(1));
        send.gate = Some(Arc::downgrade(&other));
        assert!(deadlock_cycle(&[recv, send], 1).is_some());
    }
}

#[cfg(test)]
mod stats_tests {
    /// Threads that ended leave the registry of statistics tables, and their counts stay in the
    /// sum: before, every short-lived thread that took a lock while statistics were on kept its
    /// table there for the process's life.
    #[test]
    fn ended_threads_leave_the_statistics_registry_and_keep_their_counts() {
        crate::stats::enable();
        let m = std::sync::Arc::new(crate::Mutex::named("stats.ended.threads", 0u32));
        let before = super::stats_tables();
        for _ in 0..64 {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..3 {
                    *m.lock() += 1;
                }
            })
            .join()
            .unwrap();
        }
        assert!(
            super::stats_tables() <= before + 1,
            "{} tables, {before} before",
            super::stats_tables()
        );
        let ours = crate::stats::stats()
            .into_iter()
            .find(|s| s.class == "stats.ended.threads")
            .expect("the class counted");
        assert_eq!(ours.stats.acquisitions, 64 * 3);
        assert_eq!(*m.lock(), 192);
    }
}
