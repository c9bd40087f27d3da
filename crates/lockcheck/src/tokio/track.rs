//! Held sets per task, the checks of an async acquisition, and the wait-for graph over tasks.
//!
//! A tokio guard belongs to the task that took it, and a task moves between worker threads, so
//! its held set cannot live in the per-thread state of the sync locks: it lives here, in a map
//! keyed by *holder*: a task (`TASK_BIT | tokio task id`) or, outside any task, a thread
//! (lockcheck's thread number, always below `TASK_BIT`). Dependencies go into the same global
//! graph as the sync locks', with the holder in the thread's place, so the iGoodLock rules
//! (distinct holders, gate locks, read-read, try) apply to tasks as they do to threads.
//!
//! Everything here is slow path: a tokio lock already costs a semaphore operation and a future.

use crate::checked::class::{Ids, Meta, WRITTEN};
use crate::checked::graph;
use crate::checked::recorder;
use crate::checked::report::{publish, EdgeInfo, LockRef, Verdict, Violation, ViolationKind};
use crate::checked::state::{as_busy, internal, mix, thread_name, Held, STATE};
use crate::config::{action, flag, flags, Action};
use lockcheck_core::deps::VectorClock;
use lockcheck_core::trace::{is_peek_site, How, LockKind, Mode, Short, TRY_RETRIES};
use parking_lot::Mutex as PlMutex;
use std::cell::{Cell, UnsafeCell};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Holder ids of tasks have this bit; lockcheck's thread numbers never reach it.
const TASK_BIT: u64 = 1 << 62;

/// Whether a holder id (as found in reports' `thread_id`) is a task.
pub(crate) fn is_task(id: u64) -> bool {
    id & TASK_BIT != 0
}

/// The tokio task id as a number. `task::Id` has no accessor, but its `Hash` writes exactly the
/// number, once, with `write_u64` (it is a `NonZeroU64`).
fn task_number(id: ::tokio::task::Id) -> u64 {
    struct Grab(u64);
    impl Hasher for Grab {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = (self.0 << 8) | u64::from(b);
            }
        }
        fn write_u64(&mut self, n: u64) {
            self.0 = n;
        }
    }
    let mut g = Grab(0);
    id.hash(&mut g);
    g.0 & !TASK_BIT
}

/// The task number of a tokio task id (for spawn sites).
pub(crate) fn holder_task_number(id: ::tokio::task::Id) -> u64 {
    task_number(id)
}

/// The tag stored in a sync held entry: the current task, or 0 outside any task (the thread's
/// own code: plain thread code, or a runtime's root future in `block_on`). One call of
/// `tokio::task::try_id` (a thread-local read): whether the thread is inside a runtime at all
/// (`Handle::try_current`, three times the cost) is not asked on the acquisition path. It is
/// not needed: a guard tagged 0 is foreign only to a task that runs on this thread while the
/// guard is held, and a task runs on a thread only inside a runtime (its `block_on`, a worker),
/// so the guard's holder is the runtime's root future or the code around `block_on`, suspended
/// while the task runs.
#[inline]
pub(crate) fn current_tag() -> u64 {
    match ::tokio::task::try_id() {
        Some(id) => TASK_BIT | task_number(id),
        None => 0,
    }
}

/// Whether code whose tag is `tag` ([`current_tag`], run now) may be suspended at an `.await`
/// while other code runs on its thread: a task, or (tag 0) a runtime's root future, as opposed
/// to plain thread code. Asks whether the thread is inside a runtime, which the acquisition path
/// does not: only for waits and recording.
fn suspendable(tag: u64) -> bool {
    tag != 0 || ::tokio::runtime::Handle::try_current().is_ok()
}

/// Who holds: the current task, else the current thread.
pub(crate) fn holder() -> u64 {
    match ::tokio::task::try_id() {
        Some(id) => TASK_BIT | task_number(id),
        None => STATE.try_with(|s| s.id()).unwrap_or(0),
    }
}

// ---------------------------------------------------------------------------------------------
// Task names and spawn sites.

/// Spawn sites of live tasks started through [`crate::tokio::spawn`] (removed when they end).
static SPAWN_SITES: PlMutex<Option<HashMap<u64, &'static Location<'static>>>> = PlMutex::new(None);

pub(crate) fn note_spawn(task: u64, site: &'static Location<'static>) {
    internal(&SPAWN_SITES)
        .get_or_insert_with(HashMap::new)
        .insert(TASK_BIT | task, site);
}

pub(crate) fn forget_spawn(task: u64) {
    if let Some(m) = internal(&SPAWN_SITES).as_mut() {
        m.remove(&(TASK_BIT | task));
    }
}

/// `task #7` (with `spawned at file:line:col` when spawned through `lockcheck::tokio::spawn`).
pub(crate) fn task_name(id: u64) -> String {
    let n = id & !TASK_BIT;
    match internal(&SPAWN_SITES)
        .as_ref()
        .and_then(|m| m.get(&id).copied())
    {
        Some(site) => format!("task #{n} (spawned at {site})"),
        None => format!("task #{n}"),
    }
}

fn holder_name(holder: u64) -> String {
    // `thread_name` names tasks too (see state.rs).
    thread_name(holder)
}

// ---------------------------------------------------------------------------------------------
// Held sets per holder.

/// One async hold.
#[derive(Clone, Copy, Debug)]
struct Entry {
    token: u64,
    inst: u64,
    class: u32,
    mode: Mode,
    site: &'static Location<'static>,
    /// Permits (semaphores; for an RwLock's write, all of them; 1 otherwise).
    permits: u32,
    kind: LockKind,
    /// An owned guard (`lock_owned`, `read_owned`, `acquire_owned`, ...): `'static + Send`, made
    /// to move into another task, which lockcheck cannot see. See [`Entry::certain`].
    owned: bool,
    /// An owned guard that moved from its taker to another holder.
    moved: bool,
    /// The trace shows the hold held by its holder (always, but for owned guards: see
    /// [`rec_acquire`]), so its release goes to the trace.
    in_trace: bool,
    /// Acquisition time, when a trace is recorded (hold times).
    since: Option<Instant>,
}

impl Entry {
    /// Whether the entry certainly still belongs to its holder, for the checks made before any
    /// wait (order, self-deadlock). An owned guard may have moved into another task that has not
    /// used it yet (lockcheck sees a move only when the new holder uses or drops the guard): it
    /// makes no self-deadlock before a wait (a wait it alone keeps is watched instead, see
    /// [`must_wait`]), and its ordering edges wait for its drop ([`Pending`]) (a task that hands
    /// a guard to a worker and goes on taking locks is the common case, and would otherwise make
    /// false inversions). In the wait-for graph a guard counts as held by its holder on record
    /// (owned semaphore permits do not: see `owned_self_block`).
    fn certain(&self) -> bool {
        !self.owned
    }

    /// A sync guard, as an entry of the wait-for graph.
    fn from_held(h: &Held) -> Entry {
        Entry {
            token: 0,
            inst: h.inst,
            class: h.class,
            mode: h.mode,
            site: h.site,
            permits: 1,
            kind: LockKind::Mutex,
            owned: false,
            moved: false,
            in_trace: true,
            since: None,
        }
    }

    /// The end of a task awaited through its `JoinHandle`, as the wait-for graph sees it: held
    /// by the task from its spawn site until it finishes (see [`join_wait`]).
    fn task_end(ids: Ids, spawned: &'static Location<'static>) -> Entry {
        Entry {
            token: 0,
            inst: ids.inst,
            class: ids.class,
            mode: Mode::Exclusive,
            site: spawned,
            permits: 1,
            kind: LockKind::End,
            owned: false,
            moved: false,
            in_trace: true,
            since: None,
        }
    }

    fn held(&self) -> Held {
        Held {
            inst: self.inst,
            class: self.class,
            mode: self.mode,
            site: self.site,
            since: None,
            source: false,
            recorded: false,
            task: 0,
        }
    }
}

const SHARDS: usize = 32;
/// Empty held lists a shard keeps before sweeping them (see [`Shard`]).
const MAX_EMPTY: usize = 64;

type HoldMap = HashMap<u64, Vec<Entry>, std::hash::BuildHasherDefault<IdHasher>>;

/// A shard: holders -> what they hold. A holder whose list empties keeps it (a task that locks in
/// a loop then costs no map insertion and removal per acquisition); empty lists are swept once
/// there are more than [`MAX_EMPTY`] of them, so finished tasks do not accumulate.
struct Shard {
    by_holder: HoldMap,
    /// Lists emptied since the last sweep (an upper bound of the empty lists in the map).
    emptied: usize,
    /// Hold tokens, made unique across shards with the shard's index in their low bits (an owned
    /// guard's entry keeps its token when it moves to another holder, and so to another shard).
    next_token: u64,
    /// This shard's index in [`HOLDS`].
    idx: u64,
    /// Keys of (holder, held set, lock, mode) already checked against the graph.
    checked: HashSet<u64, std::hash::BuildHasherDefault<IdHasher>>,
    /// Dependencies from an owned guard of a holder that may still have it (by the guard's
    /// token): confirmed when the guard is dropped in that holder, dropped otherwise.
    pending: HashMap<u64, Pending, std::hash::BuildHasherDefault<IdHasher>>,
    /// Failed tries in a row, per holder that held something at its last failed try: the try's
    /// key (lock, mode, site, the hold tokens of its list and its sync held set) and the streak
    /// (see [`try_failed`]). An entry goes at the holder's next successful try, and with the
    /// holder's list at a [`Shard::sweep`]: at most one per holder with a list, or that held
    /// sync guards at its last failure.
    tries: HashMap<u64, (u64, u32), std::hash::BuildHasherDefault<IdHasher>>,
    /// The list of the holder last looked up through [`Shard::list_ptr`] (`last_list` null:
    /// none): a task that locks and unlocks in a row finds its list without hashing (the two
    /// lookups were a tenth of an async lock+unlock). The pointer is into `by_holder`'s entry, so
    /// it is valid until the map gains or loses a key: keys are added only by `list_ptr`
    /// (which sets it again) and removed only by [`Shard::sweep`] (which clears it).
    last_holder: u64,
    last_list: *mut Vec<Entry>,
}

/// What a holder acquired while it had taken an owned guard not yet dropped. The guard may have
/// moved to another task (lockcheck cannot see a move), so these dependencies wait for its drop:
/// dropped by the same holder, it was held all along (they go to the graph); dropped elsewhere,
/// it may have left before them (they are forgotten). Distinct dependencies only (lock, mode,
/// held set), so a task looping under one owned guard keeps one entry per distinct acquisition.
#[derive(Default)]
struct Pending {
    seen: HashSet<u64, std::hash::BuildHasherDefault<IdHasher>>,
    deps: Vec<PendingDep>,
}

struct PendingDep {
    inst: u64,
    class: u32,
    mode: Mode,
    site: &'static Location<'static>,
    /// The other locks held then (sync guards of the task and certain async holds).
    held: Vec<Held>,
}

static HOLDS: [ShardLock; SHARDS] = [const { ShardLock::new() }; SHARDS];

/// A shard behind a spin lock: the critical sections are a few instructions, and its unlock is a
/// plain store, where a parking mutex pays a second locked instruction (the acquisition path
/// takes one shard lock per lock and one per unlock, so this halves their cost).
struct ShardLock {
    locked: AtomicBool,
    shard: UnsafeCell<Option<Shard>>,
}

// SAFETY: `shard` is only reached through `with`, under `locked`.
unsafe impl Sync for ShardLock {}

impl ShardLock {
    const fn new() -> ShardLock {
        ShardLock {
            locked: AtomicBool::new(false),
            shard: UnsafeCell::new(None),
        }
    }

    /// Runs `f` on the shard (number `idx`), exclusively. `f` never takes a shard lock (no
    /// nesting), but it may allocate (a holder's first list, a list or a set that grows), and a
    /// global allocator may take a checked lock: the thread is marked busy meanwhile, as under
    /// lockcheck's other internal locks (`state::internal`), so that the hook entered from the
    /// allocator takes its untracked way instead of asking for this shard again (a sync
    /// acquisition in a task that holds async locks looks at its shard), which would spin
    /// forever.
    fn with<R>(&self, idx: usize, f: impl FnOnce(&mut Shard) -> R) -> R {
        let was_busy = STATE.try_with(|s| s.busy.replace(true)).unwrap_or(true);
        self.locked(idx, was_busy, f)
    }

    /// [`with`](Self::with) for an `f` that neither allocates nor frees: the thread is not
    /// marked busy (two thread-local writes less), since nothing can enter lockcheck from
    /// inside `f`.
    #[inline(always)]
    fn with_quiet<R>(&self, idx: usize, f: impl FnOnce(&mut Shard) -> R) -> R {
        self.locked(idx, true, f)
    }

    /// Runs `f` under the spin lock; unmarks the thread busy at the end unless `was_busy`.
    #[inline(always)]
    fn locked<R>(&self, idx: usize, was_busy: bool, f: impl FnOnce(&mut Shard) -> R) -> R {
        if self.locked.swap(true, Ordering::Acquire) {
            self.contended();
        }
        struct Unlock<'a>(&'a AtomicBool, bool);
        impl Drop for Unlock<'_> {
            #[inline(always)]
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
                if !self.1 {
                    let _ = STATE.try_with(|s| s.busy.set(false));
                }
            }
        }
        let _unlock = Unlock(&self.locked, was_busy);
        // SAFETY: `locked` is held until `_unlock` drops.
        let shard = unsafe { &mut *self.shard.get() };
        f(shard.get_or_insert_with(|| Shard {
            by_holder: HoldMap::default(),
            emptied: 0,
            next_token: 0,
            idx: idx as u64,
            checked: HashSet::default(),
            pending: HashMap::default(),
            tries: HashMap::default(),
            last_holder: 0,
            last_list: std::ptr::null_mut(),
        }))
    }

    /// The spin lock was taken: waits until this thread has it.
    #[cold]
    #[inline(never)]
    fn contended(&self) {
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                spins += 1;
                if spins < 100 {
                    std::hint::spin_loop();
                } else {
                    // The holder was descheduled: let it run.
                    std::thread::yield_now();
                }
            }
            if !self.locked.swap(true, Ordering::Acquire) {
                return;
            }
        }
    }
}

/// The shard of a holder. Task ids and lockcheck's thread numbers are handed out in sequence,
/// so their low bits spread them evenly without hashing.
#[inline(always)]
fn shard_of(holder: u64) -> usize {
    holder as usize % SHARDS
}

fn with_shard<R>(holder: u64, f: impl FnOnce(&mut Shard) -> R) -> R {
    let idx = shard_of(holder);
    HOLDS[idx].with(idx, f)
}

/// [`with_shard`] for an `f` that neither allocates nor frees (see [`ShardLock::with_quiet`]).
#[inline(always)]
fn with_shard_quiet<R>(holder: u64, f: impl FnOnce(&mut Shard) -> R) -> R {
    let idx = shard_of(holder);
    HOLDS[idx].with_quiet(idx, f)
}

/// Whether `holder` holds async locks now (a shard visit: slow paths only).
fn holds_async(holder: u64) -> bool {
    with_shard(holder, |s| {
        s.by_holder.get(&holder).is_some_and(|l| !l.is_empty())
    })
}

impl Shard {
    /// `holder`'s list, made empty if it has none (see `last_list`). The pointer is valid while
    /// the shard is locked and no other key is added or removed.
    #[inline]
    fn list_ptr(&mut self, holder: u64) -> *mut Vec<Entry> {
        if self.last_holder == holder && !self.last_list.is_null() {
            return self.last_list;
        }
        let list: *mut Vec<Entry> = self.by_holder.entry(holder).or_default();
        self.last_holder = holder;
        self.last_list = list;
        list
    }

    /// `holder`'s list, if it has one (see `last_list`).
    #[inline]
    fn list_get_mut(&mut self, holder: u64) -> Option<&mut Vec<Entry>> {
        if self.last_holder == holder && !self.last_list.is_null() {
            // SAFETY: as `list_mut`.
            return Some(unsafe { &mut *self.last_list });
        }
        let list: &mut Vec<Entry> = self.by_holder.get_mut(&holder)?;
        self.last_holder = holder;
        self.last_list = list;
        Some(list)
    }

    /// `holder`'s list, made empty if it has none.
    #[inline]
    fn list_mut(&mut self, holder: u64) -> &mut Vec<Entry> {
        // SAFETY: valid until the map changes its keys, which needs `&mut self` again.
        unsafe { &mut *self.list_ptr(holder) }
    }

    /// Whether to [`sweep`](Self::sweep): more than [`MAX_EMPTY`] lists emptied since the last
    /// sweep and more than [`MAX_EMPTY`] lists in all (a few tasks that lock in a loop keep
    /// their lists, instead of losing them every [`MAX_EMPTY`] releases and allocating them
    /// again).
    #[inline]
    fn must_sweep(&self) -> bool {
        self.emptied > MAX_EMPTY && self.by_holder.len() > MAX_EMPTY
    }

    /// Removes the empty lists (finished tasks), and the cached pointer with them.
    fn sweep(&mut self) {
        self.by_holder.retain(|_, l| !l.is_empty());
        let lists = &self.by_holder;
        self.tries.retain(|h, _| lists.contains_key(h));
        self.emptied = 0;
        self.last_list = std::ptr::null_mut();
    }

    /// Pushes onto `holder`'s list.
    fn push_entry(&mut self, holder: u64, e: Entry) {
        self.list_mut(holder).push(e);
    }

    /// A token unique across shards.
    fn token(&mut self) -> u64 {
        self.next_token += 1;
        (self.next_token << 5) | self.idx
    }
}

/// Integer keys: one multiply instead of SipHash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// What a release took from its holder's list.
enum Gone {
    /// No such hold (released already, or its list swept).
    Missing,
    /// A plain hold, not recorded: nothing more to do but, if `sweep`, [`sweep_shard`].
    Quiet { sweep: bool },
    /// The entry, whether it was its holder's last, the owned guard's pending dependencies.
    Entry {
        e: Entry,
        last: bool,
        pending: Option<Pending>,
        sweep: bool,
    },
}

/// Sweeps the empty lists of `holder`'s shard, if there are still too many (see [`Shard`]). A
/// visit of its own, marked busy: the lists freed may reach a locking global allocator.
#[cold]
fn sweep_shard(holder: u64) {
    with_shard(holder, |s| {
        if s.must_sweep() {
            s.sweep();
        }
    });
}

/// Every hold of a lock instance, with its holder (every shard: slow path only).
fn holders_of(inst: u64) -> Vec<(u64, Entry)> {
    let mut out = Vec::new();
    for (i, sh) in HOLDS.iter().enumerate() {
        sh.with(i, |s| {
            for (&h, list) in &s.by_holder {
                out.extend(list.iter().filter(|e| e.inst == inst).map(|e| (h, *e)));
            }
        });
    }
    out
}

/// A hold's registration, kept in the guard. Released explicitly by the guard's `Drop` (before
/// the permits go back, so that no other task sees a stale holder).
#[derive(Debug)]
pub(crate) struct Hold {
    token: u64,
    /// The holder whose list has the entry: the acquirer; for an owned guard, then whichever
    /// holder last used it (dereferenced, mapped, downgraded) or dropped it ([`Hold::touch`]).
    holder: AtomicU64,
    inst: u64,
    owned: bool,
}

impl Hold {
    /// A hold lockcheck does not track (checking off, or lockcheck busy on this thread).
    pub(crate) fn untracked() -> Hold {
        Hold {
            token: 0,
            holder: AtomicU64::new(0),
            inst: 0,
            owned: false,
        }
    }

    #[inline]
    fn holder(&self) -> u64 {
        self.holder.load(Ordering::Acquire)
    }

    /// An owned guard used by the current holder: if that is not the holder on record, the guard
    /// has moved (into another task, which now uses it), and its hold moves with it: what the
    /// old holder took under it is forgotten (it may have left before), the new holder counts as
    /// the holder from now on (its self-deadlocks, its waits, its order). One task-id read when
    /// nothing moved.
    #[inline]
    pub(crate) fn touch(&self) {
        if !self.owned || self.token == 0 {
            return;
        }
        let me = holder();
        let was = self.holder();
        if me != was && me != 0 {
            self.adopt(was, me);
        }
    }

    #[cold]
    #[inline(never)]
    fn adopt(&self, from: u64, to: u64) {
        if self
            .holder
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return; // another holder adopted it at the same moment
        }
        let token = self.token;
        let moved = with_shard(from, |s| {
            let list = s.by_holder.get_mut(&from)?;
            let i = list.iter().rposition(|e| e.token == token)?;
            let e = list.remove(i);
            s.pending.remove(&token);
            let last = list.is_empty();
            if last {
                s.emptied += 1;
            }
            Some((e, last))
        });
        let Some((e, last)) = moved else { return };
        if let Some(since) = e.since {
            rec_moved(from, e, since, last);
        }
        let mut e = e;
        e.moved = true;
        e.in_trace = false;
        if e.since.is_some() {
            e.since = Some(Instant::now());
        }
        with_shard(to, |s| s.push_entry(to, e));
    }

    /// Forgets the hold (guard dropped or permits forgotten). An owned guard dropped in another
    /// holder moves there first ([`Hold::touch`]), so the release is the dropper's.
    #[inline]
    pub(crate) fn release(&mut self) {
        // Released already (a guard's release, then the hold's own drop): no call.
        if self.token != 0 && !self.release_quiet() {
            self.release_as(true);
        }
    }

    /// The release of the common case, in a small frame: a plain guard (not owned, so its
    /// holder is the one on record), not recorded, the newest hold of its holder (guards drop in
    /// reverse order). Dropped in place: nothing allocated or freed, nothing to take out.
    /// False: not that case, nothing done ([`release_as`](Self::release_as) does it).
    #[inline]
    fn release_quiet(&mut self) -> bool {
        if self.owned || flags() & flag::RECORD != 0 {
            return false;
        }
        let (holder, token) = (self.holder(), self.token);
        let (done, sweep) = with_shard_quiet(holder, |s| {
            let Some(list) = s.list_get_mut(holder) else {
                return (false, false);
            };
            match list.last() {
                Some(top) if top.token == token && top.since.is_none() => {}
                _ => return (false, false),
            }
            list.truncate(list.len() - 1);
            if list.is_empty() {
                s.emptied += 1;
            }
            (true, s.must_sweep())
        });
        if done {
            self.token = 0;
            if sweep {
                sweep_shard(holder);
            }
        }
        done
    }

    /// [`release`](Self::release); `record`: write the release to the trace (not when the
    /// permits stay held, merged into another hold).
    fn release_as(&mut self, record: bool) {
        self.touch();
        let token = std::mem::replace(&mut self.token, 0);
        if token == 0 {
            return;
        }
        let holder = self.holder();
        // The common case (a plain guard, not recording) takes nothing from the shard: only an
        // owned guard's pending dependencies or a recorded hold need the entry afterwards. The
        // visit allocates and frees nothing (the sweep of empty lists, which frees them, is a
        // visit of its own), so the thread need not be marked busy during it.
        let gone = with_shard_quiet(holder, |s| {
            let Some(list) = s.list_get_mut(holder) else {
                return Gone::Missing;
            };
            let Some(i) = list.iter().rposition(|e| e.token == token) else {
                return Gone::Missing;
            };
            // Usually the newest hold (guards drop in reverse order): a pop.
            let e = if i + 1 == list.len() {
                list.pop()
                    .expect("a list holding its entry `i` is not empty")
            } else {
                list.remove(i)
            };
            let last = list.is_empty();
            if last {
                s.emptied += 1;
            }
            let sweep = s.must_sweep();
            if !e.owned && e.since.is_none() {
                return Gone::Quiet { sweep };
            }
            let pending = if e.owned {
                s.pending.remove(&token)
            } else {
                None
            };
            Gone::Entry {
                e,
                last,
                pending,
                sweep,
            }
        });
        match gone {
            Gone::Missing | Gone::Quiet { sweep: false } => {}
            Gone::Quiet { sweep: true } => sweep_shard(holder),
            Gone::Entry {
                mut e,
                last,
                pending,
                sweep,
            } => {
                if sweep {
                    sweep_shard(holder);
                }
                if let Some(p) = pending {
                    // Before the release in the trace: the guard was held during those requests.
                    if record && e.since.is_some() {
                        rec_confirmed(holder, &mut e, &p);
                    }
                    confirm_owned(holder, &e, p);
                }
                if let Some(since) = e.since.filter(|_| record) {
                    rec_release(holder, e, since, last);
                }
            }
        }
    }

    /// A held rwlock changes mode in place (write guard downgraded).
    pub(crate) fn convert(&self, to: Mode) {
        if self.token == 0 {
            return;
        }
        self.touch();
        let holder = self.holder();
        with_shard(holder, |s| {
            if let Some(e) = s
                .by_holder
                .get_mut(&holder)
                .and_then(|l| l.iter_mut().find(|e| e.token == self.token))
            {
                e.mode = to;
            }
        });
    }

    /// Splits `n` permits off a permit's hold into a new hold (`SemaphorePermit::split`).
    pub(crate) fn split(&self, n: u32) -> Hold {
        if self.token == 0 {
            return Hold::untracked();
        }
        self.touch();
        let holder = self.holder();
        with_shard(holder, |s| {
            let token = s.token();
            let Some(list) = s.by_holder.get_mut(&holder) else {
                return Hold::untracked();
            };
            let Some(e) = list.iter_mut().find(|e| e.token == self.token) else {
                return Hold::untracked();
            };
            e.permits = e.permits.saturating_sub(n);
            let mut new = *e;
            new.permits = n;
            new.token = token;
            list.push(new);
            Hold {
                token,
                holder: AtomicU64::new(holder),
                inst: self.inst,
                owned: self.owned,
            }
        })
    }

    /// Merges another hold of the same semaphore into this one.
    pub(crate) fn merge(&self, mut other: Hold, n: u32) {
        // Its permits stay held, by this hold: no release in the trace.
        other.release_as(false);
        if self.token == 0 {
            return;
        }
        self.touch();
        let holder = self.holder();
        with_shard(holder, |s| {
            if let Some(e) = s
                .by_holder
                .get_mut(&holder)
                .and_then(|l| l.iter_mut().find(|e| e.token == self.token))
            {
                e.permits = e.permits.saturating_add(n);
            }
        });
    }
}

impl Drop for Hold {
    /// A hold dropped without its guard (the action panicked right after the acquisition).
    /// Inlined: after a guard's release (the common case) it is a test of the token.
    #[inline(always)]
    fn drop(&mut self) {
        if self.token != 0 {
            self.release_dropped();
        }
    }
}

impl Hold {
    /// [`Hold::release`] from the hold's own drop: out of line, so that the drop after a guard's
    /// release stays a test.
    #[cold]
    #[inline(never)]
    fn release_dropped(&mut self) {
        self.release();
    }
}

// ---------------------------------------------------------------------------------------------
// An acquisition.

/// What an async acquisition is about.
#[derive(Clone, Copy)]
pub(crate) struct Req<'a> {
    pub meta: &'a Meta,
    pub kind: LockKind,
    pub mode: Mode,
    pub site: &'static Location<'static>,
    /// Permits requested (semaphores), 1 for locks.
    pub permits: u32,
    /// A semaphore's permits, free and held, as the semaphore counts them (see
    /// `Semaphore::total`); 0 for locks.
    pub capacity: usize,
    pub owned: bool,
}

/// The checked context of one acquisition (None: not tracked).
pub(crate) struct Ctx {
    holder: u64,
    tag: u64,
    ids: Ids,
    /// Checking is on (else the acquisition is only held and recorded).
    check: bool,
}

/// What an acquisition tells the graph of its lock the first time (the lock's `WRITTEN` bit): an
/// RwLock's first write (read-read links on it can block from now on), a semaphore seen with
/// several permits (its permits are no gate: two tasks can each hold one at once; a semaphore of
/// one permit is noted when it first has more, after `add_permits`). Both are noted for a
/// recording that starts later too.
#[inline]
fn first_sight(r: &Req<'_>, ids: Ids, writer: impl FnOnce() -> Option<u64>) {
    if r.mode == Mode::Exclusive && r.kind == LockKind::Rwlock && r.meta.word() & WRITTEN == 0 {
        // A task's write is ordered with nothing (its clock is unknown).
        let writer = writer();
        // The graph keeps its writes: dropping the lock must remove them.
        r.meta.mark_in_graph();
        // What the write turns into a deadlock (a read-read cycle it can come between), and the
        // limits hit, are reported as the sync first write reports them (they were dropped here;
        // `tests/async_first_write.rs`). Reported, not acted on: the acquisition goes on.
        let _ = as_busy(|_| {
            let (found, limits, done) = graph::note_written(ids.inst, ids.class, writer);
            if done {
                r.meta.mark_written();
            }
            for v in limits {
                publish(v);
            }
            let f = flags();
            if let Some(v) = found.filter(|_| f & flag::CHECK != 0 && f & flag::ORDER != 0) {
                publish(v);
            }
        });
    }
    if r.kind == LockKind::Semaphore && r.capacity > 1 {
        several_permits(r, ids);
    }
}

/// [`first_sight`] of a semaphore with several permits (out of line: the locks' path only tests
/// the kind).
#[cold]
#[inline(never)]
fn several_permits(r: &Req<'_>, ids: Ids) {
    if r.meta.mark_written() {
        graph::note_several_permits(ids.inst);
        recorder::note_permits(ids.inst, r.capacity);
    }
}

/// Who acquires what, and what this thread's sync held stack says about it; None when not
/// tracked (checking off, lockcheck busy on this thread). One thread-local access.
fn prepare(r: &Req<'_>) -> Option<(Ctx, SyncScan)> {
    let f = flags();
    if f & (flag::CHECK | flag::RECORD) == 0 {
        return None;
    }
    let check = f & flag::CHECK != 0;
    let task = ::tokio::task::try_id().map(|id| TASK_BIT | task_number(id));
    STATE
        .try_with(|s| {
            if s.busy.get() {
                return None;
            }
            let ids = r.meta.ids(r.kind);
            first_sight(r, ids, || task.is_none().then(|| s.id()));
            let (holder, tag) = match task {
                Some(h) => (h, h),
                None => (s.id(), 0),
            };
            let mut sync = SyncScan::default();
            if !check {
                // Recording only: held, recorded, not checked.
                return Some((
                    Ctx {
                        holder,
                        tag,
                        ids,
                        check,
                    },
                    sync,
                ));
            }
            // Nothing held on this thread (the common case): no snapshot to make, nor to drop.
            if s.holds_any() {
                for h in s.held_snapshot() {
                    if h.task == tag {
                        sync.set = sync.set.wrapping_add(held_hash(h.inst, h.mode));
                        sync.n += 1;
                    } else if sync.foreign.is_none() {
                        // Another task's guard, or (tag 0) the thread's own code's while this
                        // task runs on it: either way its holder is suspended.
                        sync.foreign = Some(h);
                    }
                }
            }
            Some((
                Ctx {
                    holder,
                    tag,
                    ids,
                    check,
                },
                sync,
            ))
        })
        .ok()
        .flatten()
}

/// The checks of an acquisition that do not depend on its wait, done by [`precheck`] when a
/// `blocking_*` acquisition was requested (the user's call): which holder they were done for, so
/// that the acquisition, run by that holder, does not repeat them. The async acquisitions pass
/// [`Pre::NONE`]: checked at their first poll, with the hold in the same visit of the shard.
#[derive(Clone, Copy)]
pub(crate) struct Pre {
    /// The holder checked for (None: nothing checked: checking off, lockcheck busy).
    holder: Option<u64>,
    /// Its tag and the lock's ids, as [`prepare`] found them: the future's fast path, run by
    /// the same task, takes them from here instead of preparing again.
    tag: u64,
    ids: Ids,
    /// A `blocking_*` acquisition: its wait blocks the thread and suspends no task, so a sync
    /// guard its holder keeps meanwhile is not held across an `.await` (e.g. in
    /// `spawn_blocking`, where blocking is the point).
    blocking: bool,
}

impl Pre {
    /// Nothing checked ahead: the future checks.
    pub(crate) const NONE: Pre = Pre {
        holder: None,
        tag: 0,
        ids: Ids { inst: 0, class: 0 },
        blocking: false,
    };

    /// Nothing checked ahead, for a `blocking_*` acquisition.
    const BLOCKING: Pre = Pre {
        blocking: true,
        ..Pre::NONE
    };

    fn covers(self, ctx: &Ctx) -> bool {
        self.holder == Some(ctx.holder)
    }
}

/// The checks that need no wait, run synchronously where the user asked for the lock (so that a
/// verdict is raised at the user's line, and before any hang): a sync guard of a suspended task
/// on this thread, a self-deadlock, the lock order, and, when the semaphore lacks the permits
/// now (`unavailable`), a task waiting for permits only it holds. Returns the verdict to raise
/// under `panic`. Used by the `blocking_*` acquisitions (the async ones check at their first
/// poll, see [`acquired_now`]).
pub(crate) fn precheck(r: &Req<'_>, unavailable: bool) -> (Pre, Option<Verdict>) {
    let Some((ctx, sync)) = prepare(r) else {
        return (Pre::BLOCKING, None);
    };
    rec_request(&ctx, r, unavailable);
    if !ctx.check {
        return (Pre::BLOCKING, None);
    }
    let pre = Pre {
        holder: Some(ctx.holder),
        tag: ctx.tag,
        ids: ctx.ids,
        blocking: true,
    };
    let scan = with_shard(ctx.holder, |s| scan(s, &ctx, r, &sync));
    // The permits lacking now, the thread is about to block: a certain self-deadlock found on
    // a thread already unwinding aborts (see [`verdict_waiting`]).
    let waits = if unavailable { Waits::Block } else { Waits::No };
    if let Some(v) = report(&ctx, r, sync, scan, waits) {
        return (pre, Some(v));
    }
    if unavailable && r.kind == LockKind::Semaphore {
        return (pre, semaphore_self_deadlock(&ctx, r, Waits::Block));
    }
    (pre, None)
}

/// Checks before a blocking (awaiting) acquisition whose fast try failed: runs before the first
/// poll of the inner semaphore, so that what it finds is reported before any hang. Skipped when
/// [`precheck`] did them for this holder.
/// Returns the verdict to raise under `panic` (at the user's `.await`, see `tokio::Checked`).
/// `open`: the semaphore is not closed (its fast try failed for want of permits: a semaphore's
/// request is short, see [`rec_request`]).
pub(crate) fn before(r: &Req<'_>, pre: Pre, open: bool) -> Result<Option<Ctx>, Verdict> {
    let Some((ctx, sync)) = prepare(r) else {
        return Ok(None);
    };
    if pre.covers(&ctx) {
        return Ok(Some(ctx));
    }
    rec_request(&ctx, r, open);
    if !ctx.check {
        return Ok(Some(ctx));
    }
    let scan = with_shard(ctx.holder, |s| scan(s, &ctx, r, &sync));
    // The fast try failed: the acquisition waits next.
    match report(&ctx, r, sync, scan, Waits::Await) {
        Some(v) => Err(v),
        None => Ok(Some(ctx)),
    }
}

/// An acquisition whose fast try succeeded: held and recorded (checked first unless
/// [`precheck`] did it for this holder).
/// With the verdict to raise under `panic`: the caller drops the hold and gives the permits back
/// first.
#[inline]
pub(crate) fn acquired_now(r: &Req<'_>, pre: Pre) -> (Hold, Option<Verdict>) {
    if pre.holder.is_none() {
        if let Some(hold) = acquired_quiet(r) {
            return (hold, None);
        }
    }
    acquired_full(r, pre)
}

/// [`acquired_now`] in the common case, where there is nothing to check: a task that holds
/// nothing (no async hold in its list, no sync guard on this thread, its own or a suspended
/// task's), checking on, not recording, a guard that is not owned. The full path would scan an
/// empty held set (no conflict, no dependency, no report) and push the entry: this pushes it
/// alone, into the list the task kept from its previous holds, when it has room (so that the
/// visit allocates nothing and the thread need not be marked busy). None: take the full path.
#[inline]
fn acquired_quiet(r: &Req<'_>) -> Option<Hold> {
    if flags() & (flag::CHECK | flag::RECORD) != flag::CHECK || r.owned {
        return None;
    }
    let holder = TASK_BIT | task_number(::tokio::task::try_id()?);
    let quiet = STATE
        .try_with(|s| !s.busy.get() && !s.holds_any())
        .unwrap_or(false);
    if !quiet {
        return None;
    }
    let ids = r.meta.ids(r.kind);
    // A task's write: ordered with nothing (its clock is unknown).
    first_sight(r, ids, || None);
    let token = with_shard_quiet(holder, |s| {
        let token = s.token();
        let list = s.list_get_mut(holder)?;
        if !list.is_empty() || list.len() == list.capacity() {
            return None;
        }
        list.push(Entry {
            token,
            inst: ids.inst,
            class: ids.class,
            mode: r.mode,
            site: r.site,
            permits: r.permits,
            kind: r.kind,
            owned: false,
            moved: false,
            in_trace: true,
            since: None,
        });
        Some(token)
    })?;
    let _ = ASYNC_HOLDER.try_with(|c| c.set(holder));
    Some(Hold {
        token,
        holder: AtomicU64::new(holder),
        inst: ids.inst,
        owned: false,
    })
}

/// [`acquired_now`]'s full path.
fn acquired_full(r: &Req<'_>, pre: Pre) -> (Hold, Option<Verdict>) {
    // Checked ahead for the task that runs this future (the common case): nothing to prepare or
    // check again, only the hold to record.
    if let Some(h) = pre.holder.filter(|&h| is_task(h)) {
        let me = ::tokio::task::try_id().map(|id| TASK_BIT | task_number(id));
        if me == Some(h) && flags() & flag::CHECK != 0 {
            let ctx = Ctx {
                holder: h,
                tag: pre.tag,
                ids: pre.ids,
                check: true,
            };
            let hold = with_shard(h, |s| push(s, &ctx, r));
            rec_acquire(&ctx, r, How::Blocking, 0);
            return (hold, None);
        }
    }
    let Some((ctx, sync)) = prepare(r) else {
        return (Hold::untracked(), None);
    };
    let check = ctx.check && !pre.covers(&ctx);
    if check && flags() & flag::RECORD != 0 {
        // Checked here, at the first poll (the async acquisitions): the request goes to the
        // trace as [`precheck`] would have written it (its permits were there).
        rec_request(&ctx, r, false);
    }
    let (hold, scan) = with_shard(ctx.holder, |s| {
        scan_push(s, &ctx, r, check.then_some(&sync))
    });
    rec_acquire(&ctx, r, How::Blocking, 0);
    // Nothing found (the common case): no report to build.
    let v = scan
        .filter(|scan| sync.foreign.is_some() || !scan.quiet())
        .and_then(|scan| report(&ctx, r, sync, scan, Waits::No));
    (hold, v)
}

/// What this thread's sync held stack says about an async acquisition.
#[derive(Default)]
struct SyncScan {
    /// A guard taken by another task (or the root future), now suspended.
    foreign: Option<Held>,
    /// The hash sum and count of the guards this holder took (part of its held set).
    set: u64,
    n: usize,
}

fn held_hash(inst: u64, mode: Mode) -> u64 {
    (inst ^ ((mode as u64) << 58)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// What the holder's list says, computed under its shard's lock.
struct Scan {
    /// An entry of the same lock this holder certainly holds (the oldest), its `permits` those
    /// of all the holder's certain entries of the lock (a semaphore's, for the permit-nest rule).
    conflict: Option<Entry>,
    /// Owned guards this holder took and has not dropped (they may have moved): the tokens.
    owned: Vec<u64>,
    /// The dependency is new for this holder: it goes to the graph (the key, to undo).
    new_key: Option<u64>,
}

impl Scan {
    /// Nothing to report from the holder's list: no conflict, no owned guard, no new edge.
    fn quiet(&self) -> bool {
        self.conflict.is_none() && self.owned.is_empty() && self.new_key.is_none()
    }
}

fn scan(s: &mut Shard, ctx: &Ctx, r: &Req<'_>, sync: &SyncScan) -> Scan {
    let list = s.by_holder.get(&ctx.holder).map_or(&[][..], |l| &l[..]);
    scan_list(list, &mut s.checked, ctx, r, sync)
}

/// [`scan`] of the holder's list, found by the caller (which may push onto it next).
fn scan_list(
    list: &[Entry],
    checked: &mut HashSet<u64, std::hash::BuildHasherDefault<IdHasher>>,
    ctx: &Ctx,
    r: &Req<'_>,
    sync: &SyncScan,
) -> Scan {
    if list.is_empty() && sync.n == 0 {
        // Holding nothing (the common case): no conflict, no owned guard, no dependency.
        return Scan {
            conflict: None,
            owned: Vec::new(),
            new_key: None,
        };
    }
    let mut conflict: Option<Entry> = None;
    let mut owned = Vec::new();
    let (mut set, mut n) = (sync.set, sync.n);
    {
        owned.extend(
            list.iter()
                .filter(|e| e.owned && e.inst != ctx.ids.inst)
                .map(|e| e.token),
        );
        for e in list.iter().filter(|e| e.certain()) {
            if e.inst == ctx.ids.inst {
                match &mut conflict {
                    None => conflict = Some(*e),
                    Some(c) => c.permits = c.permits.saturating_add(e.permits),
                }
            } else {
                set = set.wrapping_add(held_hash(e.inst, e.mode));
                n += 1;
            }
        }
    }
    let mut new_key = None;
    if n > 0 && flags() & flag::ORDER != 0 {
        // The held *set*, the lock and the mode, for this holder: to the graph once.
        let key = mix(set
            ^ ctx.ids.inst.rotate_left(29)
            ^ ((r.mode as u64) << 56)
            ^ ctx.holder.rotate_left(17));
        if checked.len() >= CHECKED_MAX {
            checked.clear();
        }
        if checked.insert(key) {
            new_key = Some(key);
        }
    }
    Scan {
        conflict,
        owned,
        new_key,
    }
}

/// Whether an acquisition found in a self-deadlock waits next, and how: a self-deadlock it
/// waits in is a certain hang (see [`verdict_waiting`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Waits {
    /// It does not wait (its fast try succeeded), or gave the wait up.
    No,
    /// An awaited acquisition: the future waits, but the caller may give it up (a
    /// `tokio::time::timeout`, a `select!`), which lockcheck cannot see.
    Await,
    /// A `blocking_*` acquisition: the thread blocks, nothing can give the wait up.
    Block,
}

/// The reports of one acquisition: a sync guard of a suspended task on this thread, a
/// self-deadlock, then, for a dependency new to this holder, the order graph. `waits`: whether
/// the acquisition waits next (its permits are lacking), so a self-deadlock is a certain hang.
fn report(ctx: &Ctx, r: &Req<'_>, sync: SyncScan, scan: Scan, waits: Waits) -> Option<Verdict> {
    let ids = ctx.ids;
    if let Some(h) = sync.foreign {
        if let Some(v) = held_across_await(ctx.holder, ids, r.mode, r.site, h, false) {
            return Some(v);
        }
    }
    if let Some(e) = scan.conflict {
        let kind = match (r.kind, r.mode, e.mode) {
            (LockKind::Semaphore, _, _) => None, // checked when the try fails (see `must_wait`)
            (LockKind::Rwlock, Mode::Shared, Mode::Shared) => Some(ViolationKind::RecursiveRead),
            _ => Some(ViolationKind::SelfDeadlock),
        };
        if let Some(k) = kind {
            if let Some(v) = self_violation(ctx.holder, k, ids, r.mode, r.site, &e, waits) {
                return Some(v);
            }
        }
        if r.kind == LockKind::Semaphore && flags() & flag::ORDER != 0 {
            if let Some(v) = permit_nest(ctx, r, &e, e.permits as usize) {
                return Some(v);
            }
        }
    }
    if !scan.owned.is_empty() && flags() & flag::ORDER != 0 {
        note_pending(ctx, r, &scan.owned);
    }
    let key = scan.new_key?;
    let held = held_now(ctx);
    r.meta.mark_in_graph();
    let found = as_busy(|_| {
        let found = graph::add_dependency(graph::Request {
            thread: ctx.holder,
            inst: ids.inst,
            class: ids.class,
            mode: r.mode,
            site: r.site,
            held: &held,
            clock: VectorClock::new(),
        });
        let (found, limits) = found;
        for v in limits {
            publish(v);
        }
        found.map(publish)
    });
    match found {
        Some(Some(v)) => verdict(&v, r.site),
        Some(None) => None,
        // Could not check (re-entered): do not remember the key as checked.
        None => {
            with_shard(ctx.holder, |s| {
                s.checked.remove(&key);
            });
            None
        }
    }
}

/// The held set of `ctx`'s holder (its sync guards, then its certain async holds), without the
/// requested lock.
fn held_now(ctx: &Ctx) -> Vec<Held> {
    let mut held: Vec<Held> = STATE
        .try_with(|s| {
            let mut held = s.held_snapshot();
            held.retain(|h| h.task == ctx.tag);
            held
        })
        .unwrap_or_default();
    with_shard(ctx.holder, |s| {
        if let Some(list) = s.by_holder.get(&ctx.holder) {
            held.extend(
                list.iter()
                    .filter(|e| e.certain() && e.inst != ctx.ids.inst)
                    .map(Entry::held),
            );
        }
    });
    held
}

/// An acquisition while the holder has owned guards it may still have: one pending dependency
/// per guard (see [`Pending`]).
#[cold]
fn note_pending(ctx: &Ctx, r: &Req<'_>, owned: &[u64]) {
    let held = held_now(ctx);
    let set = held
        .iter()
        .fold(0u64, |acc, h| acc.wrapping_add(held_hash(h.inst, h.mode)));
    let key = mix(set ^ ctx.ids.inst.rotate_left(29) ^ ((r.mode as u64) << 56));
    // Its node must leave the graph when the lock is dropped, if the dependency gets there.
    r.meta.mark_in_graph();
    with_shard(ctx.holder, |s| {
        for &token in owned {
            let p = s.pending.entry(token).or_default();
            if p.seen.insert(key) {
                p.deps.push(PendingDep {
                    inst: ctx.ids.inst,
                    class: ctx.ids.class,
                    mode: r.mode,
                    site: r.site,
                    held: held.clone(),
                });
            }
        }
    });
}

/// An owned guard dropped by the holder that took it: it was held all along, so what the holder
/// acquired meanwhile depended on it. Those dependencies go to the graph now; a cycle they close
/// is reported (published; no action: this runs in a guard's drop, after the fact).
#[cold]
fn confirm_owned(holder: u64, owned: &Entry, p: Pending) {
    let _ = as_busy(|_| {
        for d in p.deps {
            let mut held = Vec::with_capacity(d.held.len() + 1);
            held.push(owned.held());
            held.extend(d.held.into_iter().filter(|h| h.inst != owned.inst));
            let (found, limits) = graph::add_dependency(graph::Request {
                thread: holder,
                inst: d.inst,
                class: d.class,
                mode: d.mode,
                site: d.site,
                held: &held,
                clock: VectorClock::new(),
            });
            for v in limits {
                publish(v);
            }
            if let Some(v) = found {
                publish(v);
            }
        }
    });
}

/// The trace of a confirmed owned guard (dropped by the holder that had it all along): it shows
/// the guard held again (a `try` acquisition, no dependency of its own) and, under it, each lock
/// the holder took meanwhile as a blocking `acquire` and its `release`, under the other locks it
/// held then (`try` acquisitions): the dependencies the runtime just added, with their held sets.
/// What the holder's stream shows held now (locks it took since, still held) is released before
/// them and taken again (`try`) after: a lock still held would make a restated acquisition of it
/// a self-deadlock offline, and one taken after a dependency's lock a dependency that never was.
/// No `request`: the acquisitions were made (and granted) before; a request would be judged
/// again for permits and self-deadlock as if it waited now.
fn rec_confirmed(holder: u64, e: &mut Entry, p: &Pending) {
    if flags() & flag::RECORD == 0 || p.deps.is_empty() {
        return;
    }
    let ids = Ids {
        inst: e.inst,
        class: e.class,
    };
    if !e.in_trace {
        rec_acq(
            holder,
            ids,
            e.mode,
            How::Try,
            e.site,
            0,
            events_of(e.kind, e.permits),
        );
        e.in_trace = true;
    }
    let shown: Vec<Entry> = with_shard(holder, |s| {
        s.by_holder
            .get(&holder)
            .map(|l| l.iter().filter(|x| x.in_trace).copied().collect())
            .unwrap_or_default()
    });
    let entry_ids = |x: &Entry| Ids {
        inst: x.inst,
        class: x.class,
    };
    for x in shown.iter().rev() {
        rec_rel(holder, entry_ids(x), 0, events_of(x.kind, x.permits), false);
    }
    let held_ids = |h: &Held| Ids {
        inst: h.inst,
        class: h.class,
    };
    for d in &p.deps {
        let dep = Ids {
            inst: d.inst,
            class: d.class,
        };
        let held: Vec<&Held> = d
            .held
            .iter()
            .filter(|h| h.inst != d.inst && h.inst != e.inst)
            .collect();
        for h in &held {
            rec_acq(holder, held_ids(h), h.mode, How::Try, h.site, 0, 1);
        }
        rec_acq(holder, dep, d.mode, How::Blocking, d.site, 0, 1);
        rec_rel(holder, dep, 0, 1, false);
        for h in held.iter().rev() {
            rec_rel(holder, held_ids(h), 0, 1, false);
        }
    }
    for x in &shown {
        rec_acq(
            holder,
            entry_ids(x),
            x.mode,
            How::Try,
            x.site,
            0,
            events_of(x.kind, x.permits),
        );
    }
}

/// Dependencies a shard remembers as checked; past it the cache is emptied (re-checks only).
const CHECKED_MAX: usize = 1 << 14;

/// A `try_*` acquisition: no check and no edge (it cannot block), but a success is held, and
/// ends its holder's streak of failed tries (see [`try_failed`]).
pub(crate) fn tried(r: &Req<'_>) -> Hold {
    match prepare(r) {
        Some((ctx, _)) => {
            let hold = with_shard(ctx.holder, |s| {
                if !s.tries.is_empty() {
                    s.tries.remove(&ctx.holder);
                }
                push(s, &ctx, r)
            });
            rec_acquire(&ctx, r, How::Try, 0);
            hold
        }
        None => Hold::untracked(),
    }
}

/// A `try_*` acquisition failed (no permits): written to the trace (a `fail` event, in the
/// holder's stream) and counted, as `hooks::failed_try_retried` counts a sync lock's: the
/// failures in a row of one try (same lock, mode and site, the same holds, none given back and
/// taken again in between: an async hold is known by its token, a new one per acquisition; the
/// sync guards by the thread's `SPUN` marks). At [`TRY_RETRIES`] it is a retry loop (a task
/// spinning with `yield_now` between tries, say), which waits for the lock as a blocking
/// acquisition does: checked as one, before a hang (a self-deadlock on a lock the holder holds
/// itself, raised under `warn` too; otherwise the held locks ordered before it). A holder that
/// holds nothing is not counted (its spin waits under no lock). `Some`: the verdict to raise.
pub(crate) fn try_failed(r: &Req<'_>) -> Option<Verdict> {
    let (ctx, sync) = prepare(r)?;
    // Counted first: a semaphore's self-deadlock writes its request (with the permits) before
    // this failure, so that the analyzer knows the permits when it counts it.
    let v = retried_try(&ctx, r, sync);
    if flags() & flag::RECORD != 0 {
        rec_fail(&ctx, r);
    }
    v
}

/// [`try_failed`]'s count and, at [`TRY_RETRIES`], its check.
fn retried_try(ctx: &Ctx, r: &Req<'_>, sync: SyncScan) -> Option<Verdict> {
    if !ctx.check || action() == Action::Off || is_peek_site(r.site.file()) {
        return None;
    }
    // The sync guards of this holder, held without a break since its previous failure.
    let kept = sync.n == 0 || STATE.try_with(|s| s.mark_spun()).unwrap_or(true);
    let site = std::ptr::from_ref(r.site) as usize as u64;
    let streak = with_shard(ctx.holder, |s| {
        let (holds, n) = s.list_get_mut(ctx.holder).map_or((0, 0), |l| {
            (
                l.iter().fold(0u64, |x, e| x.wrapping_add(mix(e.token))),
                l.len(),
            )
        });
        if n == 0 && sync.n == 0 {
            s.tries.remove(&ctx.holder);
            return 0;
        }
        let key = [ctx.ids.inst, r.mode as u64, site, holds, sync.set]
            .into_iter()
            .fold(0u64, |x, part| mix(x ^ part));
        let e = s.tries.entry(ctx.holder).or_insert((key, 0));
        if e.0 != key || !kept {
            *e = (key, 0);
        }
        e.1 = e.1.saturating_add(1);
        e.1
    });
    if streak != TRY_RETRIES {
        return None;
    }
    // A spinning task is no waiter of the async wait-for graph either: said once.
    crate::checked::notice::once(crate::checked::notice::Limit::SpinnerNotWaiter, r.site);
    let scan = with_shard(ctx.holder, |s| scan(s, ctx, r, &sync));
    if let Some(v) = graph::as_retried_try(|| report(ctx, r, sync, scan, Waits::Block)) {
        return Some(v);
    }
    // A semaphore whose permits the task holds all of itself: the try never succeeds.
    if r.kind == LockKind::Semaphore {
        let v = graph::as_retried_try(|| semaphore_self_deadlock(ctx, r, Waits::Block));
        if v.is_some() {
            // The request, with the permits, for the analyzer (as `precheck` writes it): the
            // try failed for want of permits.
            rec_request(ctx, r, true);
        }
        return v;
    }
    None
}

/// A failed try in the holder's stream.
#[cold]
#[inline(never)]
fn rec_fail(ctx: &Ctx, r: &Req<'_>) {
    if on_this_thread(ctx.holder) {
        recorder::on_fail(ctx.ids, r.mode, How::Try, r.site, 0);
    } else {
        recorder::on_task_fail(ctx.holder, ctx.ids, r.mode, r.site);
    }
}

/// Records an acquired hold (after a wait).
pub(crate) fn record(ctx: Option<Ctx>, r: &Req<'_>, wait_ns: u64) -> Hold {
    match ctx {
        Some(ctx) => {
            let hold = with_shard(ctx.holder, |s| push(s, &ctx, r));
            rec_acquire(&ctx, r, How::Blocking, wait_ns);
            hold
        }
        None => Hold::untracked(),
    }
}

/// A trace event of an async acquisition (when recording): a task's events go to the task's own
/// stream (its holder id as thread number, named `task #N`), wherever it runs; a thread's to the
/// thread's. An owned guard's hold is not known to stay with its taker (see [`Entry::certain`]),
/// so the trace shows it released right away; it shows it held again where the runtime
/// establishes who has it ([`rec_establish`]).
#[inline]
fn rec_acquire(ctx: &Ctx, r: &Req<'_>, how: How, wait_ns: u64) {
    // Inlined test, out-of-line recording: most acquisitions are not recorded.
    if flags() & flag::RECORD != 0 {
        rec_acquire_now(ctx, r, how, wait_ns);
    }
}

#[cold]
#[inline(never)]
fn rec_acquire_now(ctx: &Ctx, r: &Req<'_>, how: How, wait_ns: u64) {
    let n = events_of(r.kind, r.permits);
    rec_acq(ctx.holder, ctx.ids, r.mode, how, r.site, wait_ns, n);
    if r.owned {
        rec_rel(ctx.holder, ctx.ids, 0, n, false);
    }
}

/// `n` acquisitions in `holder`'s stream.
fn rec_acq(
    holder: u64,
    ids: Ids,
    mode: Mode,
    how: How,
    site: &'static Location<'static>,
    wait_ns: u64,
    n: u32,
) {
    let here = on_this_thread(holder);
    for _ in 0..n {
        if here {
            recorder::on_acquire(ids, mode, how, site, wait_ns);
        } else {
            recorder::on_task_acquire(holder, ids, mode, how, site, wait_ns);
        }
    }
}

/// `n` releases in `holder`'s stream; `last`: the holder holds nothing after them.
fn rec_rel(holder: u64, ids: Ids, hold_ns: u64, n: u32, last: bool) {
    let here = on_this_thread(holder);
    for i in 0..n {
        if here {
            recorder::on_release(ids, hold_ns);
        } else {
            recorder::on_task_release(holder, ids, hold_ns, last && i + 1 == n);
        }
    }
}

/// Whether `holder` is the current thread (its events go to the thread's own buffer). A task,
/// or a thread other than this one (an owned guard taken on a thread and used elsewhere), has
/// its events put in a stream of its own number.
fn on_this_thread(holder: u64) -> bool {
    !is_task(holder) && STATE.try_with(|s| s.id()).is_ok_and(|me| me == holder)
}

/// The runtime established that `holder` has the owned guard `e` (a self-deadlock or a wait
/// cycle through it): the trace shows it held by `holder` again from here (a `try` acquisition:
/// no dependency of its own), and the guard's hold is then released in the trace with it.
fn rec_establish(holder: u64, e: &Entry) {
    if flags() & flag::RECORD == 0 || !e.owned {
        return;
    }
    let token = e.token;
    let first = with_shard(holder, |s| {
        let x = s
            .by_holder
            .get_mut(&holder)?
            .iter_mut()
            .find(|x| x.token == token)?;
        Some(!std::mem::replace(&mut x.in_trace, true))
    });
    if first == Some(true) {
        let ids = Ids {
            inst: e.inst,
            class: e.class,
        };
        rec_acq(
            holder,
            ids,
            e.mode,
            How::Try,
            e.site,
            0,
            events_of(e.kind, e.permits),
        );
    }
}

/// The async holds of `holder` the trace shows held ([`Entry::in_trace`]), for the start of its
/// stream in a recording (`recorder::show_held`, `recorder::push_task`): (lock, mode, site, events)
/// into `out`; their releases are then recorded. `acquiring`: a lock whose acquisition is being recorded, already in the list: its
/// newest entry is left out (its own record shows it).
pub(crate) fn held_in_trace(
    holder: u64,
    acquiring: Option<u64>,
    out: &mut Vec<(Ids, Mode, &'static Location<'static>, u32)>,
) {
    // A hold taken before any recording has no start time, and so no release in the trace
    // (see `release`): it gets one now, as the shown acquisition's.
    let now = Instant::now();
    let held: Vec<Entry> = with_shard(holder, |s| {
        let Some(l) = s.by_holder.get_mut(&holder) else {
            return Vec::new();
        };
        l.iter_mut()
            .filter(|e| e.in_trace)
            .map(|e| {
                e.since.get_or_insert(now);
                *e
            })
            .collect()
    });
    let skip = acquiring.and_then(|l| held.iter().rposition(|e| e.inst == l));
    for (i, e) in held.iter().enumerate() {
        if Some(i) != skip {
            let ids = Ids {
                inst: e.inst,
                class: e.class,
            };
            out.push((ids, e.mode, e.site, events_of(e.kind, e.permits)));
        }
    }
}

/// Trace events of one acquisition or release: one per semaphore permit (an event is one permit,
/// as the sync `Semaphore` records them, so that the analyzer counts what a holder has), one for
/// a lock.
fn events_of(kind: LockKind, permits: u32) -> u32 {
    if kind == LockKind::Semaphore {
        permits
    } else {
        1
    }
}

/// The `request` event of a blocking acquisition, before its checks (so that an acquisition the
/// runtime stops is in the trace), when the holder holds something (otherwise it can make no
/// dependency nor wait for itself). A semaphore's with its permits (`r.capacity`), for the
/// analyzer's self-deadlock and wait-cycle rules, and the permits it asks for; `short`: the
/// semaphore has fewer available permits than it asks for (the acquisition is about to wait),
/// written with whether another holder holds any of them (see [`short_seen`]).
fn rec_request(ctx: &Ctx, r: &Req<'_>, short: bool) {
    if flags() & flag::RECORD == 0 {
        return;
    }
    let tag = ctx.tag;
    // The sync guards this holder took: their events are in the thread's stream, so a task's
    // stream shows them held around the request (a `try` acquisition and a release: no
    // dependency of their own), for the analyzer's held set to be the runtime's.
    let sync: Vec<Held> = if tag != 0 && is_task(ctx.holder) {
        STATE
            .try_with(|s| {
                let mut held = s.held_snapshot();
                held.retain(|h| h.task == tag);
                held
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let holds_sync = suspendable(tag)
        && (!sync.is_empty()
            || STATE
                .try_with(|s| s.find_held(|h| h.task == tag).is_some())
                .unwrap_or(false));
    let holder = ctx.holder;
    let holds_async = with_shard(holder, |s| {
        s.by_holder.get(&holder).is_some_and(|l| !l.is_empty())
    });
    if !holds_sync && !holds_async {
        return;
    }
    let ids_of = |h: &Held| Ids {
        inst: h.inst,
        class: h.class,
    };
    for h in &sync {
        rec_acq(holder, ids_of(h), h.mode, How::Try, h.site, 0, 1);
    }
    let short = (short && r.kind == LockKind::Semaphore).then(|| short_seen(ctx));
    recorder::on_task_request(
        holder, ctx.ids, r.kind, r.mode, r.site, r.capacity, r.permits, short,
    );
    for h in sync.iter().rev() {
        rec_rel(holder, ids_of(h), 0, 1, false);
    }
}

/// What a request of a semaphore short of permits sees of its other holders, for the trace's
/// `request` (its `short`): [`Short::Alone`] when no hold of it is another holder's, nor one of
/// the requester's own that [`semaphore_self_deadlock`] does not count as its own (an owned
/// permit, which may have moved), as that check counts them; else [`Short::Held`]. The
/// analyzer applies the check's rule with it: the requester's own permits it replays from the
/// requester's stream, but not the others' (the streams reach the file in any order, and an
/// owned permit shows released at once). The slow path only: a semaphore request that waits,
/// recorded.
#[cold]
fn short_seen(ctx: &Ctx) -> Short {
    let holds = holders_of(ctx.ids.inst);
    if holds.iter().all(|(h, e)| *h == ctx.holder && e.certain()) {
        Short::Alone
    } else {
        Short::Held
    }
}

/// The release of a hold at its guard's drop: in the trace if the trace shows it held (an owned
/// guard's only where the runtime established its holder). An owned guard released by another
/// holder than its taker shows a zero-length hold in the releaser's stream: who released it.
#[cold]
fn rec_release(holder: u64, e: Entry, since: Instant, last: bool) {
    let hold_ns = since.elapsed().as_nanos() as u64;
    let ids = Ids {
        inst: e.inst,
        class: e.class,
    };
    let n = events_of(e.kind, e.permits);
    if !e.in_trace {
        if e.owned && e.moved {
            rec_acq(holder, ids, e.mode, How::Try, e.site, 0, n);
        } else {
            return;
        }
    }
    rec_rel(holder, ids, hold_ns, n, last);
}

/// An owned guard moved from `from` to `to` (the current holder): if the trace showed it held by
/// `from`, it shows it released there; in `to`'s stream it is not shown held (the guard may move
/// again) until the runtime establishes it ([`rec_establish`]) or `to` releases it.
#[cold]
fn rec_moved(from: u64, e: Entry, since: Instant, last: bool) {
    if flags() & flag::RECORD == 0 || !e.in_trace {
        return;
    }
    let ids = Ids {
        inst: e.inst,
        class: e.class,
    };
    let hold_ns = since.elapsed().as_nanos() as u64;
    rec_rel(from, ids, hold_ns, events_of(e.kind, e.permits), last);
}

fn push(s: &mut Shard, ctx: &Ctx, r: &Req<'_>) -> Hold {
    scan_push(s, ctx, r, None).0
}

/// [`push`], scanning the holder's list first when `sync` is given (an acquisition checked when
/// it is made): one lookup of the list for both.
fn scan_push(
    s: &mut Shard,
    ctx: &Ctx,
    r: &Req<'_>,
    sync: Option<&SyncScan>,
) -> (Hold, Option<Scan>) {
    if !r.owned {
        let _ = ASYNC_HOLDER.try_with(|c| c.set(ctx.holder));
    } else if ctx.check && flags() & flag::ORDER != 0 {
        // Dependencies from it may reach the graph when it is dropped (see `Pending`).
        r.meta.mark_in_graph();
    }
    let token = s.token();
    let e = Entry {
        token,
        inst: ctx.ids.inst,
        class: ctx.ids.class,
        mode: r.mode,
        site: r.site,
        permits: r.permits,
        kind: r.kind,
        owned: r.owned,
        moved: false,
        in_trace: !r.owned,
        since: (flags() & flag::RECORD != 0).then(Instant::now),
    };
    // SAFETY: the list stays valid below: no key of `by_holder` is added or removed until the
    // last use of `list` (`checked` is another field).
    let list = unsafe { &mut *s.list_ptr(ctx.holder) };
    let scan = sync.map(|sync| scan_list(list, &mut s.checked, ctx, r, sync));
    list.push(e);
    let hold = Hold {
        token,
        holder: AtomicU64::new(ctx.holder),
        inst: ctx.ids.inst,
        owned: r.owned,
    };
    (hold, scan)
}

/// The fast try failed: the acquisition is about to wait. A semaphore whose permits this task
/// itself holds, with no other holder to give any back, is a self-deadlock; then the wait joins
/// the wait-for graph (a cycle is a deadlock, reported now); and a sync guard this task holds
/// will now be held across the suspension.
///
/// A wait kept only by an owned guard that this holder has (took, or used last) is suspect: the
/// guard may have moved into another task that has not used it yet, which lockcheck cannot see.
/// It is reported as a self-deadlock when it lasts [`OWNED_GRACE`] with the guard still
/// unmoved, or when the wait is given up (future dropped, e.g. a timeout) with the guard unmoved.
/// Returns the verdict to raise under `panic`.
pub(crate) fn must_wait(
    ctx: &Option<Ctx>,
    r: &Req<'_>,
    pre: Pre,
) -> Result<Option<WaitReg>, Verdict> {
    let Some(ctx) = ctx.as_ref().filter(|c| c.check) else {
        return Ok(None);
    };
    if r.kind == LockKind::Semaphore && !pre.covers(ctx) {
        let waits = if pre.blocking {
            Waits::Block
        } else {
            Waits::Await
        };
        if let Some(v) = semaphore_self_deadlock(ctx, r, waits) {
            return Err(v);
        }
    }
    let tag = ctx.tag;
    // A `blocking_*` wait suspends nothing: the thread blocks with the guards (the wait-for
    // graph below sees them held).
    if !pre.blocking && suspendable(tag) {
        let mine = STATE
            .try_with(|s| s.find_held(|h| h.task == tag))
            .ok()
            .flatten();
        if let Some(h) = mine {
            if let Some(v) = held_across_await_self(ctx.holder, ctx.ids, r.mode, r.site, h) {
                return Err(v);
            }
        }
    }
    let suspect = owned_self_block(ctx, r)
        .map(|e| (e, None))
        .or_else(|| queued_self_block(ctx, r))
        .map(|(e, queued)| {
            Arc::new(Suspect {
                holder: ctx.holder,
                entry: e,
                ids: ctx.ids,
                kind: r.kind,
                capacity: r.capacity,
                permits: r.permits,
                mode: r.mode,
                site: r.site,
                start: Instant::now(),
                grace: r.kind != LockKind::Semaphore || queued.is_some(),
                queued,
                strikes: AtomicU8::new(0),
                state: AtomicU8::new(SUSPECT_WAITING),
                waker: PlMutex::new(None),
            })
        });
    let watch = suspect.as_ref().is_some_and(|s| s.grace);
    let want = Want {
        capacity: r.capacity,
        permits: r.permits,
    };
    let reg = register(
        ctx.holder, ctx.tag, ctx.ids, r.kind, r.mode, r.site, want, suspect, None, false,
    )?;
    if watch {
        watch_suspects();
    }
    Ok(Some(reg))
}

/// How long a wait kept only by the waiter's own owned guard may last before it is reported as a
/// self-deadlock (the guard may have moved to a task that has not used it yet: a handed-off guard
/// is normally used or dropped well within this).
pub(crate) const OWNED_GRACE: Duration = Duration::from_secs(2);

const SUSPECT_WAITING: u8 = 0;
const SUSPECT_CONFIRMED: u8 = 1;
const SUSPECT_REPORTED: u8 = 2;

/// A wait kept only by the waiter itself (see [`must_wait`]): by an owned guard of its own, or
/// by an earlier acquisition of its own still pending ([`queued_self_block`]).
pub(crate) struct Suspect {
    holder: u64,
    /// The owned guard; or the earlier pending acquisition, as a hold at its site.
    entry: Entry,
    ids: Ids,
    kind: LockKind,
    /// A semaphore's permits (see `Req::capacity`), for the trace's `request`.
    capacity: usize,
    /// The permits the wait asks for, for the trace's `request`.
    permits: u32,
    mode: Mode,
    site: &'static Location<'static>,
    start: Instant,
    /// Confirmed by lasting [`OWNED_GRACE`] (locks), or only when given up (semaphores: see
    /// [`owned_self_block`]).
    grace: bool,
    /// The `ended` flag of the earlier pending acquisition (see [`queued_self_block`]).
    queued: Option<Arc<AtomicBool>>,
    /// Consecutive checks of the watch thread that found a queued suspect still kept (see
    /// [`Suspect::kept`]).
    strikes: AtomicU8,
    state: AtomicU8,
    waker: PlMutex<Option<Waker>>,
}

impl Suspect {
    /// Whether the owned guard is still the waiter's (not moved, not dropped).
    fn unmoved(&self) -> bool {
        let (h, token) = (self.holder, self.entry.token);
        with_shard(h, |s| {
            s.by_holder
                .get(&h)
                .is_some_and(|l| l.iter().any(|e| e.token == token))
        })
    }

    /// Whether the wait is still kept by the waiter alone: its owned guard unmoved; or its
    /// earlier acquisition still pending while nobody holds the lock (tokio handed the lock to
    /// that acquisition, which its task does not poll).
    fn kept(&self) -> bool {
        match &self.queued {
            None => self.unmoved(),
            Some(ended) => !ended.load(Ordering::Acquire) && holders_of(self.ids.inst).is_empty(),
        }
    }

    /// Reports the suspect wait; `waits`: the waiter goes on waiting (its future is polled),
    /// else the wait was given up.
    fn report(&self, waits: bool) -> Option<Verdict> {
        // The trace: the guard held by the waiter (or the lock handed to its earlier
        // acquisition), and the wait for it.
        if self.queued.is_some() {
            if flags() & flag::RECORD != 0 {
                rec_acq(
                    self.holder,
                    self.ids,
                    self.entry.mode,
                    How::Try,
                    self.entry.site,
                    0,
                    events_of(self.kind, self.entry.permits),
                );
            }
        } else {
            rec_establish(self.holder, &self.entry);
        }
        if flags() & flag::RECORD != 0 {
            recorder::on_task_request(
                self.holder,
                self.ids,
                self.kind,
                self.mode,
                self.site,
                self.capacity,
                self.permits,
                None,
            );
        }
        let note = if self.queued.is_some() {
            " (by an acquisition of this task still pending there: the lock was handed to it \
             and the task no longer polls it; drop that future before locking again)"
        } else {
            ""
        };
        self_violation_noted(
            self.holder,
            ViolationKind::SelfDeadlock,
            self.ids,
            self.mode,
            self.site,
            &self.entry,
            note,
            if waits { Waits::Await } else { Waits::No },
        )
    }
}

/// The owned guard of this holder that alone keeps `r` from its lock: one that excludes the
/// request; for a semaphore, every hold is the holder's and one of them is owned (all of them
/// certain is [`semaphore_self_deadlock`]'s). A semaphore's is confirmed only when the wait is
/// given up, never by its length ([`Suspect::grace`]): owned permits handed to spawned workers,
/// which give them back when done without ever using them, are the common way to bound
/// concurrency, and a task waiting for more while its workers run is no self-deadlock however
/// long they take.
fn owned_self_block(ctx: &Ctx, r: &Req<'_>) -> Option<Entry> {
    let holds = holders_of(ctx.ids.inst);
    if r.kind == LockKind::Semaphore {
        if holds.iter().any(|(h, _)| *h != ctx.holder) {
            return None;
        }
        return holds.iter().find(|(_, e)| e.owned).map(|(_, e)| *e);
    }
    holds
        .iter()
        .find(|(h, e)| *h == ctx.holder && e.owned && kept_by(r.mode, e.mode))
        .map(|(_, e)| *e)
}

/// An earlier acquisition of the same lock by this holder, still pending (its future alive, not
/// given up) while the holder starts another wait for the lock: tokio's locks are fair, so the
/// new wait is served after the earlier one, which only its task's polls can complete. A task
/// that keeps such a future without polling it (a `select!` branch that lost, kept in a
/// variable: a "futurelock") then waits for itself once the lock is handed to the earlier one.
/// Watched, not reported now: polled concurrently (`join!` of two short critical sections), the
/// earlier one completes when handed the lock and the later one goes on; reported once the wait
/// has lasted [`OWNED_GRACE`] while the earlier acquisition is still pending and nobody holds
/// the lock (at two consecutive checks of the watch thread, see [`confirm_suspects`]).
fn queued_self_block(ctx: &Ctx, r: &Req<'_>) -> Option<(Entry, Option<Arc<AtomicBool>>)> {
    let waiting = internal(&WAITING);
    let w = waiting
        .iter()
        .filter(|w| {
            !w.ended.load(Ordering::Acquire)
                && w.holder == ctx.holder
                && w.ids.inst == ctx.ids.inst
                && w.join.is_none()
                && (r.kind == LockKind::Semaphore || kept_by(r.mode, w.mode))
        })
        .min_by_key(|w| w.seq)?;
    let e = Entry {
        token: 0,
        inst: w.ids.inst,
        class: w.ids.class,
        mode: w.mode,
        site: w.site,
        permits: 1,
        kind: w.kind,
        owned: false,
        moved: false,
        in_trace: true,
        since: None,
    };
    Some((e, Some(Arc::clone(&w.ended))))
}

/// Polls the semaphore's acquisition, and raises (returns) the report of a suspect wait (see
/// [`must_wait`]) once the helper thread has confirmed it.
pub(crate) async fn waiting<F: std::future::Future>(
    f: F,
    reg: Option<&WaitReg>,
) -> Result<F::Output, Verdict> {
    let suspect = reg.and_then(|r| r.suspect.clone());
    let mut f = std::pin::pin!(f);
    std::future::poll_fn(move |cx| {
        if let Some(s) = &suspect {
            if s.state
                .compare_exchange(
                    SUSPECT_CONFIRMED,
                    SUSPECT_REPORTED,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                if let Some(v) = s.report(true) {
                    return Poll::Ready(Err(v));
                }
            }
            if s.state.load(Ordering::Acquire) == SUSPECT_WAITING {
                *s.waker.lock() = Some(cx.waker().clone());
            }
        }
        f.as_mut().poll(cx).map(Ok)
    })
    .await
}

/// Starts (once) and wakes the thread that confirms suspect waits past [`OWNED_GRACE`]. Without
/// it (the thread could not start) a suspect wait is still reported when given up.
fn watch_suspects() {
    static HELPER: std::sync::OnceLock<Option<std::thread::Thread>> = std::sync::OnceLock::new();
    let t = HELPER.get_or_init(|| {
        std::thread::Builder::new()
            .name("lockcheck-async-watch".into())
            .spawn(|| loop {
                if confirm_suspects() {
                    std::thread::park_timeout(OWNED_GRACE / 4);
                } else {
                    std::thread::park();
                }
            })
            .ok()
            .map(|h| h.thread().clone())
    });
    if let Some(t) = t {
        t.unpark();
    }
}

/// Confirms the suspect waits that lasted [`OWNED_GRACE`] with their guard unmoved and wakes
/// them (their future reports). Returns whether any suspect wait is left to watch.
fn confirm_suspects() -> bool {
    let list: Vec<Arc<Suspect>> = internal(&WAITING)
        .iter()
        .filter(|w| !w.ended.load(Ordering::Acquire))
        .filter_map(|w| w.suspect.clone().filter(|s| s.grace))
        .collect();
    let mut left = false;
    for s in &list {
        if s.state.load(Ordering::Acquire) != SUSPECT_WAITING {
            continue;
        }
        left = true;
        if s.start.elapsed() < OWNED_GRACE {
            continue;
        }
        let confirmed = if !s.kept() {
            s.strikes.store(0, Ordering::Relaxed);
            false
        } else {
            // A lock is free for an instant between a release and the next waiter's poll: a
            // queued suspect must be found kept twice in a row.
            s.queued.is_none() || s.strikes.fetch_add(1, Ordering::Relaxed) >= 1
        };
        if confirmed {
            s.state.store(SUSPECT_CONFIRMED, Ordering::Release);
            if let Some(w) = s.waker.lock().take() {
                w.wake();
            }
        }
    }
    left
}

/// A request of `r.permits` permits of a semaphore by a holder that holds `own` of them (`e` its
/// oldest hold), awaited or not: noted as the sync `Semaphore`'s threads note theirs
/// (`graph::note_permit_nest`, spkenv/spk#805), and the finding published the first time the
/// holders seen doing so could together hold every permit (as the semaphore counts them now,
/// `r.capacity`: after a `forget_permits` or `add_permits`). A request that cannot be granted
/// from what the others give back (`own + r.permits` above the permits) is left to the
/// self-deadlock check. A task's request is ordered with nothing (its clock is unknown); a
/// thread's (`blocking_*` outside a task) by its clock.
#[cold]
#[inline(never)]
fn permit_nest(ctx: &Ctx, r: &Req<'_>, e: &Entry, own: usize) -> Option<Verdict> {
    if own == 0 || own.saturating_add(r.permits as usize) > r.capacity {
        return None;
    }
    let found = as_busy(|s| {
        let keep = graph::permit_nest_need(ctx.ids.inst, ctx.holder, own)?;
        let clock = if is_task(ctx.holder) {
            VectorClock::new()
        } else {
            s.clock()
        };
        let lock = LockRef::new(ctx.ids.inst, ctx.ids.class);
        let mut edge = EdgeInfo::on_lock(
            ctx.holder,
            holder_name(ctx.holder),
            lock,
            r.mode,
            r.site.to_string(),
            e.site.to_string(),
        );
        edge.held_mode = e.mode;
        if keep {
            edge.backtrace = crate::checked::report::Trace::capture();
        }
        let nest = graph::Nest {
            thread: ctx.holder,
            held: own,
            clock,
            edge,
        };
        let (found, limit) = graph::note_permit_nest(ctx.ids.inst, r.capacity, nest);
        if let Some(l) = limit {
            publish(l);
        }
        found.map(publish)
    })
    .flatten()?;
    verdict(&found, r.site)
}

/// A semaphore of which this holder asks for `r.permits` while it holds so many that fewer are
/// left for it, whatever the others give back: with no other holder, any wait; with others, an
/// `acquire_many` asking for more than the permits (`r.capacity`) it does not hold itself.
fn semaphore_self_deadlock(ctx: &Ctx, r: &Req<'_>, waits: Waits) -> Option<Verdict> {
    let holds = holders_of(ctx.ids.inst);
    let mine = |h: u64, e: &Entry| h == ctx.holder && e.certain();
    let own = holds.iter().find(|(h, e)| mine(*h, e)).map(|(_, e)| *e);
    let others = holds.iter().any(|(h, e)| !mine(*h, e));
    let own_permits: usize = holds
        .iter()
        .filter(|(h, e)| mine(*h, e))
        .map(|(_, e)| e.permits as usize)
        .sum();
    let starved = !others || own_permits.saturating_add(r.permits as usize) > r.capacity;
    match (own, starved) {
        // Called where the acquisition is about to wait (its permits are lacking).
        (Some(e), true) => self_violation(
            ctx.holder,
            ViolationKind::SelfDeadlock,
            ctx.ids,
            r.mode,
            r.site,
            &e,
            waits,
        ),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The wait-for graph over holders (tasks, and threads in `blocking_*`).

struct Waiter {
    seq: u64,
    holder: u64,
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
    /// What a semaphore wait asks for, for the trace's `request` when the wait is written again
    /// under an owned guard ([`Establish`]).
    want: Want,
    /// The sync guards the holder had on its thread when it started waiting (a waiting holder
    /// cannot release them): how the graph sees sync locks held inside a cycle.
    sync_held: Vec<Held>,
    /// A wait kept only by the waiter's own owned guard (see [`must_wait`]).
    suspect: Option<Arc<Suspect>>,
    /// A wait for a task's end (its `JoinHandle`, see [`join_wait`]).
    join: Option<JoinWait>,
    /// Set, without the list's mutex, when the wait ended (see [`WaitReg`]): the entry no
    /// longer counts and is removed by the next wait to register.
    ended: Arc<AtomicBool>,
    /// A wait for a sync lock ([`sync_wait`]), which the sync wait-for graph has as well.
    sync: bool,
}

/// A semaphore's permits as a wait saw them (see `Req::capacity`) and the permits it asks for
/// (see `Req::permits`): what its trace `request` says.
#[derive(Clone, Copy)]
struct Want {
    capacity: usize,
    permits: u32,
}

impl Want {
    /// A lock's wait (or a task end's): one, of no semaphore.
    const ONE: Want = Want {
        capacity: 0,
        permits: 1,
    };
}

/// A wait for a task's end: the task awaited (it holds its own end, the waiter's `ids`, a
/// lock of kind `End`, for as long as it runs) and its spawn site.
struct JoinWait {
    target: u64,
    spawned: &'static Location<'static>,
    /// The joiner's async holds (tokens) when it started waiting. A handle can stop being
    /// awaited without being dropped (`&mut handle` in a `select!` or a timeout): a joiner
    /// whose holds changed since has run meanwhile, so it no longer waits there (a stale wait
    /// counts as not stuck; the handle registers again when it is polled again).
    holds: Vec<u64>,
}

/// The tokens of `holder`'s async holds.
fn hold_tokens(holder: u64) -> Vec<u64> {
    with_shard(holder, |s| {
        s.by_holder
            .get(&holder)
            .map(|l| l.iter().map(|e| e.token).collect())
            .unwrap_or_default()
    })
}

static WAITING: PlMutex<Vec<Waiter>> = PlMutex::new(Vec::new());
static NEXT_WAIT: AtomicU64 = AtomicU64::new(1);

/// The waits registered now in this graph, but a task's (or `block_on` thread's) wait for a
/// sync lock, which the sync wait-for graph lists: the lock's class, its kind, the holder that
/// waits. For tests (`lockcheck::__private::waits`, through `watch::waits`).
pub(crate) fn waits() -> Vec<(u32, LockKind, u64)> {
    internal(&WAITING)
        .iter()
        .filter(|w| !w.ended.load(Ordering::Acquire) && !w.sync)
        .map(|w| (w.ids.class, w.kind, w.holder))
        .collect()
}

/// Unregisters a wait when it ends: acquired ([`WaitReg::done`]), or the future dropped
/// (cancelled, timed out): a suspect wait given up with its owned guard unmoved is reported then
/// (published only: this runs in a drop, after the fact).
///
/// The end of a wait takes no lock: it sets the entry's `ended` flag, as the sync wait-for graph
/// does (`watch::WaitToken`). Why: a wait usually ends because its lock was just acquired, and
/// taking the waiters' mutex there deadlocks with a thread that holds that mutex while
/// allocating, when the global allocator takes the lock just acquired.
pub(crate) struct WaitReg {
    suspect: Option<Arc<Suspect>>,
    ended: Option<Arc<AtomicBool>>,
    done: bool,
}

impl WaitReg {
    /// The wait ended with the acquisition.
    pub(crate) fn done(mut self) {
        self.done = true;
    }
}

impl Drop for WaitReg {
    fn drop(&mut self) {
        if let Some(ended) = &self.ended {
            ended.store(true, Ordering::Release);
        }
        if let Some(s) = &self.suspect {
            // A queued suspect given up is not reported: its task may poll the earlier
            // acquisition next (a stall, not a deadlock).
            if !self.done
                && s.queued.is_none()
                && s.state.swap(SUSPECT_REPORTED, Ordering::AcqRel) != SUSPECT_REPORTED
                && s.unmoved()
            {
                let _ = s.report(false);
            }
        }
        park(Parked {
            _ended: self.ended.take(),
            _suspect: self.suspect.take(),
        });
    }
}

/// What an ended wait keeps of its entry (the flag and the suspect it shares with it): the
/// entry may already be gone, and a drop here would free them with the lock just acquired held.
struct Parked {
    _ended: Option<Arc<AtomicBool>>,
    _suspect: Option<Arc<Suspect>>,
}

/// Slots for ended waits' records, per thread (see [`park`]).
const PARKED: usize = 4;

thread_local! {
    /// What this thread's ended waits kept (see [`Parked`]), freed at the start of its next
    /// wait or at its exit.
    static ENDED: Cell<[Option<Parked>; PARKED]> = const { Cell::new([None, None, None, None]) };
}

/// Keeps what an ended wait holds of its entry instead of freeing it, as the sync wait-for
/// graph does (`watch::park`): a wait usually ends because its lock was just acquired, and a
/// free there calls the global allocator with that lock held; an allocator that takes the same
/// lock (a task waiting for the sync mutex a tracking allocator keeps its statistics under)
/// would then deadlock on itself (`tests/async_alloc_reentry.rs`). With every slot taken, it is
/// freed.
fn park(ended: Parked) {
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

/// Frees the records [`park`] kept, before this thread's new wait holds anything more.
fn free_parked() {
    if let Ok(all) = ENDED.try_with(Cell::take) {
        drop(all);
    }
}

/// Hook of the sync slow path (`hooks::blocked`, a thread about to block on a sync lock): when a
/// task (or a thread holding async locks) waits for a sync lock, the wait joins this wait-for
/// graph, so that a cycle through sync and async locks is found. Pure thread cycles are left to
/// the sync wait-for graph. Semaphores are not joined (their sync holders are not all known).
/// `Err`: the verdict of a deadlock this wait closes, for the sync lock's `#[track_caller]`
/// entry point to raise (under `panic`) with the lock not taken; the wait is unregistered.
pub(crate) fn sync_wait(
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
) -> Result<Option<WaitReg>, Verdict> {
    if kind == LockKind::Semaphore || action() == Action::Off {
        return Ok(None);
    }
    let holder = match ::tokio::task::try_id() {
        Some(id) => TASK_BIT | task_number(id),
        None => {
            let me = STATE.try_with(|s| s.id()).ok();
            match me {
                Some(me) if ASYNC_HOLDER.try_with(Cell::get).ok() == Some(me) => me,
                _ => return Ok(None),
            }
        }
    };
    register(
        holder,
        current_tag(),
        ids,
        kind,
        mode,
        site,
        Want::ONE,
        None,
        None,
        true,
    )
    .map(Some)
}

/// A holder (task, or thread in `block_on`) starts waiting for the end of task `target` (the
/// `JoinHandle` of [`crate::tokio::spawn`] or [`crate::tokio::spawn_blocking`] is pending at
/// `site`): the wait joins the wait-for graph, where `target` holds its own end (`end`, a lock
/// of kind `End`, as a thread's end, whose class names its spawn site, `spawned`) until it
/// finishes. A task that waits for a lock its joiner holds (directly, or through a chain of
/// waits) is a deadlock, reported when the cycle closes: `Err` is its verdict, for the handle's
/// `#[track_caller]` `poll` to raise (under `panic`), at the user's `.await`.
pub(crate) fn join_wait(
    end: &Meta,
    target: ::tokio::task::Id,
    spawned: &'static Location<'static>,
    site: &'static Location<'static>,
) -> Result<Option<WaitReg>, Verdict> {
    if flags() & flag::CHECK == 0 || action() == Action::Off {
        return Ok(None);
    }
    if STATE.try_with(|s| s.busy.get()).unwrap_or(true) {
        return Ok(None);
    }
    let me = holder();
    let target = TASK_BIT | task_number(target);
    if me == 0 || me == target {
        return Ok(None);
    }
    let ids = end.ids(LockKind::End);
    let join = JoinWait {
        target,
        spawned,
        holds: hold_tokens(me),
    };
    register(
        me,
        current_tag(),
        ids,
        LockKind::End,
        Mode::Exclusive,
        site,
        Want::ONE,
        None,
        Some(join),
        false,
    )
    .map(Some)
}

#[allow(clippy::too_many_arguments)]
fn register(
    holder: u64,
    tag: u64,
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
    want: Want,
    suspect: Option<Arc<Suspect>>,
    join: Option<JoinWait>,
    sync: bool,
) -> Result<WaitReg, Verdict> {
    free_parked();
    let sync_held: Vec<Held> = STATE
        .try_with(|s| {
            let mut held = s.held_snapshot();
            held.retain(|h| h.task == tag);
            held
        })
        .unwrap_or_default();
    let seq = NEXT_WAIT.fetch_add(1, Ordering::Relaxed);
    let ended = Arc::new(AtomicBool::new(false));
    let edges = {
        let mut waiting = internal(&WAITING);
        // Ended waits are removed here (this thread holds no lock it is acquiring yet).
        waiting.retain(|w| !w.ended.load(Ordering::Acquire));
        waiting.push(Waiter {
            seq,
            holder,
            ids,
            kind,
            mode,
            site,
            want,
            sync_held,
            suspect: suspect.clone(),
            join,
            ended: Arc::clone(&ended),
            sync,
        });
        deadlock_cycle(&waiting, waiting.len() - 1)
    };
    let reg = WaitReg {
        suspect,
        ended: Some(ended),
        done: false,
    };
    if let Some((edges, owned)) = edges {
        if flags() & flag::RECORD != 0 {
            for o in &owned {
                if let Some((joiner, joiner_site)) = o.joiner {
                    rec_join(o, joiner, joiner_site);
                    continue;
                }
                rec_establish(o.holder, &o.entry);
                let w = o.want;
                recorder::on_task_request(
                    o.holder, o.ids, o.kind, o.mode, o.site, w.capacity, w.permits, None,
                );
            }
        }
        let v = as_busy(|_| {
            let v = Violation {
                kind: ViolationKind::Deadlock,
                edges,
                message: String::new(),
            };
            // The same cycle (same wait and hold lines, same classes) again, e.g. a retry after
            // a timeout: reported once, acted on every time. Other classes at the same lines (a
            // helper given other locks) are another cycle.
            let mut key: Vec<String> = v
                .edges
                .iter()
                .map(|e| {
                    format!(
                        "{} {} {} {}",
                        e.site, e.held_site, e.acquired.class, e.held.class
                    )
                })
                .collect();
            key.sort();
            publish_once(&DEADLOCK_REPORTED, key, v)
        });
        if let Some(v) = v {
            // This waiter closed the cycle and is about to wait in it: on a thread already
            // unwinding, nothing can break it (no verdict to raise, no other member chosen to
            // give up its locks, as the sync wait-for graph does), so the process aborts.
            if std::thread::panicking() && action() != Action::Off {
                crate::checked::hooks::abort_unwinding(&v);
            }
            // Under `warn` a closed cycle goes on, unlike the sync wait-for graph's: a member's
            // awaited wait may be given up by a timeout lockcheck cannot see.
            if action() == Action::Panic {
                // Unregistered first: the panicking task gives up its locks, the others go on.
                if let Some(v) = verdict(&v, site) {
                    reg.done();
                    return Err(v);
                }
            }
        }
    }
    Ok(reg)
}

/// Wait cycles already reported (by their wait and hold lines and the classes there).
static DEADLOCK_REPORTED: PlMutex<Option<HashSet<Vec<String>>>> = PlMutex::new(None);

/// Whether a request in `want` mode is kept from a lock held in `held` mode.
fn kept_by(want: Mode, held: Mode) -> bool {
    want.excludes(held) || held.excludes(want)
}

/// The greatest set of waiting holders none of which can go on: a wait stays in it while its
/// lock is kept from it by holders in the set (a conflicting hold; for a read, also a writer
/// queued before it, since tokio's RwLock is fair; for a semaphore, every permit held, by holders
/// in the set, and none by an owned permit that may have moved). A holder is in the set only
/// while every one of its waits is. Returns the cycle through the newest wait, as report edges.
fn deadlock_cycle(waiting: &[Waiter], new: usize) -> Option<(Vec<EdgeInfo>, Vec<Establish>)> {
    let n = waiting.len();
    let mut holds: HashMap<u64, Vec<(u64, Entry)>> = HashMap::new();
    for w in waiting {
        holds.entry(w.ids.inst).or_insert_with(|| {
            let mut list = holders_of(w.ids.inst);
            // Sync guards of waiting holders.
            for x in waiting {
                list.extend(
                    x.sync_held
                        .iter()
                        .filter(|h| h.inst == w.ids.inst)
                        .map(|h| (x.holder, Entry::from_held(h))),
                );
            }
            // A task awaited holds its own end while it runs.
            if let Some(j) = &w.join {
                list.push((j.target, Entry::task_end(w.ids, j.spawned)));
            }
            list
        });
    }
    // A join wait whose joiner has run since (see `JoinWait::holds`) is not a wait any more.
    let mut stuck: Vec<bool> = waiting
        .iter()
        .enumerate()
        .map(|(i, w)| match &w.join {
            Some(j) if i != new => hold_tokens(w.holder) == j.holds,
            _ => true,
        })
        .collect();
    let holder_stuck = |stuck: &[bool], h: u64| {
        let mut any = false;
        for (j, w) in waiting.iter().enumerate() {
            if w.holder == h {
                if !stuck[j] {
                    return false;
                }
                any = true;
            }
        }
        any
    };
    // Who keeps waiter `i` from its lock, among stuck holders and waiters.
    let blockers = |stuck: &[bool], i: usize| -> Vec<(u64, Option<Entry>)> {
        let w = &waiting[i];
        let list = &holds[&w.ids.inst];
        let mut out = Vec::new();
        if w.kind == LockKind::Semaphore {
            // Owned permits are not known to be with the task on record (see
            // `owned_self_block`): a semaphore with one is not known to be stuck.
            if list.is_empty()
                || list
                    .iter()
                    .any(|(h, e)| e.owned || !holder_stuck(stuck, *h))
            {
                return Vec::new();
            }
            out.extend(list.iter().map(|(h, e)| (*h, Some(*e))));
            return out;
        }
        for (h, e) in list {
            if *h != w.holder && kept_by(w.mode, e.mode) && holder_stuck(stuck, *h) {
                out.push((*h, Some(*e)));
            }
        }
        if w.mode != Mode::Exclusive {
            for (j, x) in waiting.iter().enumerate() {
                if j != i
                    && stuck[j]
                    && x.ids.inst == w.ids.inst
                    && x.mode == Mode::Exclusive
                    && x.seq < w.seq
                    && x.holder != w.holder
                {
                    out.push((x.holder, None));
                }
            }
        }
        out
    };
    loop {
        let mut changed = false;
        for i in 0..n {
            if stuck[i] && blockers(&stuck, i).is_empty() {
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
    // Follow "waits for what is held by" from the new wait until a holder repeats.
    let mut path: Vec<(usize, Option<Entry>)> = vec![(new, None)];
    loop {
        let (i, _) = *path.last().expect("non-empty");
        let (h, entry) = blockers(&stuck, i)
            .into_iter()
            .find(|(h, _)| *h != waiting[i].holder)?;
        let j = (0..n).find(|&j| stuck[j] && waiting[j].holder == h)?;
        if let Some(pos) = path.iter().position(|&(p, _)| waiting[p].holder == h) {
            // The first element's hold is what the last one waits for.
            let mut cycle: Vec<(usize, Option<Entry>)> = path[pos..].to_vec();
            cycle[0].1 = entry;
            let k = cycle.len();
            let owned = cycle
                .iter()
                .enumerate()
                .filter_map(|(i, &(wi, e))| {
                    let e = e.filter(|e| e.owned || e.kind == LockKind::End)?;
                    let w = &waiting[wi];
                    // Who waits for this hold: the element before, cyclically.
                    let prev = &waiting[cycle[(i + k - 1) % k].0];
                    let joiner = (e.kind == LockKind::End).then_some((prev.holder, prev.site));
                    Some(Establish {
                        holder: w.holder,
                        entry: e,
                        ids: w.ids,
                        kind: w.kind,
                        mode: w.mode,
                        site: w.site,
                        want: w.want,
                        joiner,
                    })
                })
                .collect();
            return Some((wait_edges(waiting, &cycle), owned));
        }
        path.push((j, entry));
    }
}

/// An owned guard (or a task's end, awaited by a joiner) in a wait cycle, the holder that has
/// it and what that holder waits for: the trace shows the guard held by it and the wait again
/// under it ([`rec_establish`], [`rec_join`]).
struct Establish {
    holder: u64,
    entry: Entry,
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
    /// What that wait asks for (a semaphore's permits).
    want: Want,
    /// A task's end: the holder that awaits it, and where.
    joiner: Option<(u64, &'static Location<'static>)>,
}

/// The trace of a join wait in a deadlock the runtime found: the awaited task holds its end
/// (a `try` acquisition: no dependency of its own) while it requests what it waits for, and the
/// joiner requests that end under what it holds, so that the analyzer finds the cycle the
/// runtime reports (an inversion between the lock and the task's end). Written only then: a
/// joiner that holds a lock the awaited task took earlier, or never takes, is no deadlock, and
/// the trace shows no dependency on the task's end.
fn rec_join(o: &Establish, joiner: u64, joiner_site: &'static Location<'static>) {
    let end = Ids {
        inst: o.entry.inst,
        class: o.entry.class,
    };
    rec_acq(o.holder, end, Mode::Exclusive, How::Try, o.entry.site, 0, 1);
    let w = o.want;
    recorder::on_task_request(
        o.holder, o.ids, o.kind, o.mode, o.site, w.capacity, w.permits, None,
    );
    rec_rel(o.holder, end, 0, 1, false);
    recorder::on_task_request(
        joiner,
        end,
        LockKind::End,
        Mode::Exclusive,
        joiner_site,
        0,
        1,
        None,
    );
}

/// Report edges of a wait cycle: element `k` holds (entry) what element `k - 1` waits for.
fn wait_edges(waiting: &[Waiter], cycle: &[(usize, Option<Entry>)]) -> Vec<EdgeInfo> {
    let k = cycle.len();
    (0..k)
        .map(|i| {
            let (wi, entry) = cycle[i];
            let w = &waiting[wi];
            let prev = &waiting[cycle[(i + k - 1) % k].0];
            let (held, held_mode, held_site) = match entry {
                Some(e) => (LockRef::new(e.inst, e.class), e.mode, e.site.to_string()),
                // A queued writer keeps the reader out without holding anything of the lock.
                None => (
                    LockRef::new(prev.ids.inst, prev.ids.class),
                    Mode::Exclusive,
                    format!("{} (queued writer)", w.site),
                ),
            };
            EdgeInfo {
                thread: holder_name(w.holder),
                thread_id: w.holder,
                held,
                held_mode,
                held_site,
                acquired: LockRef::new(w.ids.inst, w.ids.class),
                mode: w.mode,
                site: w.site.to_string(),
                other_held: Vec::new(),
                backtrace: None,
                retried: false,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Sync guards held across an `.await`.

/// Hook of the sync acquisition path (`hooks::check_held`): a guard on this thread's stack that a
/// different task (or the runtime's root future) took is held by a task suspended at an
/// `.await`. Reported; returns whether the request is for that very lock (the thread would
/// block on itself: the report replaces the self-deadlock one), and the verdict for the sync
/// lock's `#[track_caller]` entry point to raise under `panic` (at the user's line). On a thread
/// already unwinding, where no verdict can be raised, a request that is certain to wait forever
/// aborts the process after the report ([`blocks_on_itself`]).
#[cold]
#[inline(never)]
pub(crate) fn sync_acquire_over_suspended(
    s: &crate::checked::state::ThreadState,
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
) -> (bool, Option<Verdict>) {
    // Plain thread code tags nothing and runs no task: the common case costs one scan and one
    // task-id read.
    let tag = current_tag();
    if tag == 0 && s.find_held(|h| h.task != 0).is_none() {
        return (false, None);
    }
    let found = {
        // Another task's guard, or (tag 0) the thread's own code's while a task runs on it.
        let foreign = |h: &Held| h.task != tag;
        s.find_held(|h| foreign(h) && h.inst == ids.inst)
            .or_else(|| s.find_held(foreign))
    };
    let Some(h) = found else {
        return (false, None);
    };
    let me = holder();
    let same = h.inst == ids.inst;
    let certain = same && std::thread::panicking() && blocks_on_itself(&h, kind, mode);
    let v = held_across_await(me, ids, mode, site, h, certain);
    (same, v)
}

/// Whether a sync acquisition of the lock of `h` (a guard on this thread's stack that a
/// suspended holder took: another task, or the root future and the thread's code under it)
/// waits forever: the modes conflict, and the holder can only resume on this thread, which the
/// wait blocks. The root future of a runtime's `block_on` (and the code that called it) runs on
/// this thread only; a task, only when the runtime is a current-thread one (a multi-thread
/// runtime's other workers may steal it and release the guard). A task of a `LocalSet` on a
/// multi-thread runtime's `block_on` is pinned too, but tokio does not tell: not counted.
fn blocks_on_itself(h: &Held, kind: LockKind, mode: Mode) -> bool {
    if crate::checked::hooks::self_conflict(kind, mode, h.mode) != Some(ViolationKind::SelfDeadlock)
    {
        return false;
    }
    h.task == 0
        || ::tokio::runtime::Handle::try_current()
            .is_ok_and(|rt| rt.runtime_flavor() == ::tokio::runtime::RuntimeFlavor::CurrentThread)
}

thread_local! {
    /// The last holder that recorded an async hold on this thread (0: none known). The sync
    /// path reads it to know, for one thread-local read, whether the running task may hold
    /// async locks. A task that took them on another thread and moved here is not seen (its
    /// sync acquisitions then make no edge from its async holds).
    static ASYNC_HOLDER: Cell<u64> = const { Cell::new(0) };
}

/// Whether the running task (or thread) may hold async locks: one thread-local read. The sync
/// fast paths (`hooks::lock_fast`, ...) leave such an acquisition to the full path, which checks
/// it with [`sync_acquire_in_task`] and raises its verdict at the user's line (a verdict raised
/// from inside a fast path would point into lockcheck, and could not be deferred while a condvar
/// wait retakes its mutex).
#[inline(always)]
pub(crate) fn may_hold_async() -> bool {
    ASYNC_HOLDER.try_with(Cell::get).unwrap_or(0) != 0
}

/// Makes a dependency-cache key of the sync full path (`hooks::check_held`) the running task's
/// own: the tasks a thread runs share its cache, and a dependency one of them checked is not
/// another's (see `hooks::check_graph`). Outside a task the key is left as it is. The task is
/// hashed into the epoch word, with the top bit set, which a thread's epoch (a count) never
/// has: as exact as the async shards' hashed keys (`sync_after_async`).
#[inline]
pub(crate) fn cache_key_of_task(key: &mut crate::checked::state::CacheKey) {
    let task = current_tag();
    if task != 0 {
        key.epoch = mix(key.epoch ^ task.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15) | 1 << 63;
    }
}

/// The trace of a blocking sync acquisition made by `task` (`hooks::lock_slow`, recording): the
/// sync events are in the stream of the thread that runs the task, where a nested one is a
/// `try` (see `lock_slow`): the dependency is the task's, whatever thread runs it, so the
/// task's stream shows it. When the task holds sync locks on this thread, or async locks, its
/// stream gets its sync locks as `try` acquisitions (no dependency of their own) around a
/// `request` and a blocking `acquire` of `ids` (its async holds are in that stream already):
/// the dependency the runtime checks (`hooks::check_graph`, [`sync_after_async`]), also a
/// self-deadlock on a lock the task holds. Written before the checks, so that an acquisition the
/// runtime stops is in the trace; once per recording for each (task, held sets, lock, mode),
/// whether or not checking is on and whatever the runtime remembered from before the recording
/// started.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rec_sync_in_task(
    s: &crate::checked::state::ThreadState,
    task: u64,
    ids: Ids,
    kind: LockKind,
    mode: Mode,
    site: &'static Location<'static>,
    capacity: usize,
) {
    // Whether to show it: the task holds something, and the memo has not seen this very key
    // (built in a thread-local buffer: no allocation once warm). A memo that is gone (the
    // thread's locals torn down) or busy shows it again.
    let shown = TASK_DEPS_SHOWN.try_with(|m| match m.scratch.try_borrow_mut() {
        Ok(mut key) => {
            let (hash, holds_async) = task_dep_key(s, task, ids, mode, &mut key)?;
            m.first(hash, &key).then_some(holds_async)
        }
        Err(_) => task_dep_key(s, task, ids, mode, &mut Vec::new()).map(|(_, a)| a),
    });
    let shown =
        shown.unwrap_or_else(|_| task_dep_key(s, task, ids, mode, &mut Vec::new()).map(|(_, a)| a));
    let Some(holds_async) = shown else {
        return;
    };
    let mut sync = s.held_snapshot();
    sync.retain(|h| h.task == task);
    let ids_of = |h: &Held| Ids {
        inst: h.inst,
        class: h.class,
    };
    for h in &sync {
        rec_acq(task, ids_of(h), h.mode, How::Try, h.site, 0, 1);
    }
    recorder::on_task_request(task, ids, kind, mode, site, capacity, 1, None);
    rec_acq(task, ids, mode, How::Blocking, site, 0, 1);
    rec_rel(task, ids, 0, 1, false);
    // The last release of a task that holds nothing else lets its stream go (see
    // `recorder::push_task`).
    for (i, h) in sync.iter().enumerate().rev() {
        rec_rel(task, ids_of(h), 0, 1, i == 0 && !holds_async);
    }
}

/// The key of a task's sync acquisition for [`ShownDeps`]: written into `key` in full
/// (recording generation, task, lock, mode, the number of sync holds, then the task's sync holds
/// and its certain async holds as (lock, mode) pairs, in held order), and returned hashed, with
/// whether the task holds async locks. `None` when the task holds nothing (nothing to show).
fn task_dep_key(
    s: &crate::checked::state::ThreadState,
    task: u64,
    ids: Ids,
    mode: Mode,
    key: &mut Vec<u64>,
) -> Option<(u64, bool)> {
    key.clear();
    key.extend([recorder::generation(), task, ids.inst, mode as u64, 0]);
    let (set, n_sync) = (Cell::new(0u64), Cell::new(0u64));
    if s.holds_any() {
        let key = std::cell::RefCell::new(&mut *key);
        s.find_held(|h| {
            if h.task == task {
                set.set(set.get().wrapping_add(held_hash(h.inst, h.mode)));
                n_sync.set(n_sync.get() + 1);
                key.borrow_mut().extend([h.inst, h.mode as u64]);
            }
            false
        });
    }
    key[4] = n_sync.get();
    let (holds_async, async_set) = if may_hold_async() {
        with_shard(task, |sh| match sh.by_holder.get(&task) {
            Some(l) if !l.is_empty() => (
                true,
                l.iter().filter(|e| e.certain()).fold(0u64, |acc, e| {
                    key.extend([e.inst, e.mode as u64]);
                    acc.wrapping_add(held_hash(e.inst, e.mode))
                }),
            ),
            _ => (false, 0),
        })
    } else {
        (false, 0)
    };
    if n_sync.get() == 0 && !holds_async {
        return None;
    }
    let hash = mix(key[0].rotate_left(7)
        ^ task.rotate_left(23)
        ^ set.get()
        ^ mix(async_set ^ 0x5bd1_e995)
        ^ ids.inst.rotate_left(41)
        ^ ((mode as u64) << 56));
    Some((hash, holds_async))
}

/// The task dependencies a thread showed in tasks' streams ([`rec_sync_in_task`]), by key
/// (recording generation, task, held sets, lock, mode: [`task_dep_key`]): a direct-mapped memo,
/// so that a task taking the same locks in a loop writes them once. Exact: a slot keeps its key
/// in full and a hit is confirmed by comparing it, so two keys with one hash are two entries (the
/// second pushes the first out); a key pushed out is written again (the analyzer counts it twice:
/// the same dependency), and so is one whose held locks are listed in another order.
struct ShownDeps {
    /// Per slot: the key's hash (0: free) and the key, allocated at the thread's first use.
    slots: std::cell::RefCell<Vec<(u64, Vec<u64>)>>,
    /// The key being built ([`task_dep_key`]), kept to reuse its allocation.
    scratch: std::cell::RefCell<Vec<u64>>,
}

/// Slots of a thread's [`ShownDeps`].
const SHOWN_SLOTS: usize = 256;

impl ShownDeps {
    const fn new() -> ShownDeps {
        ShownDeps {
            slots: std::cell::RefCell::new(Vec::new()),
            scratch: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// Whether `key` (hashed: `hash`) was not in the memo (it is now).
    fn first(&self, hash: u64, key: &[u64]) -> bool {
        let Ok(mut slots) = self.slots.try_borrow_mut() else {
            return true;
        };
        if slots.is_empty() {
            slots.resize_with(SHOWN_SLOTS, Default::default);
        }
        let hash = hash | 1;
        let slot = &mut slots[(hash >> 3) as usize & (SHOWN_SLOTS - 1)];
        if slot.0 == hash && slot.1 == key {
            return false;
        }
        slot.0 = hash;
        slot.1.clear();
        slot.1.extend_from_slice(key);
        true
    }
}

thread_local! {
    static TASK_DEPS_SHOWN: ShownDeps = const { ShownDeps::new() };
}

/// Hook of the sync acquisition path (`hooks::lock_slow`): the running task holds async locks,
/// so a blocking sync acquisition makes ordering edges from them (a tokio guard held while
/// taking a `lockcheck::Mutex`). Returns the verdict of an inversion it closes, for the sync
/// lock's `#[track_caller]` entry point to raise (under `panic`), before the lock is taken.
#[inline]
pub(crate) fn sync_acquire_in_task(
    meta: &Meta,
    mode: Mode,
    site: &'static Location<'static>,
    ids: Ids,
) -> Option<Verdict> {
    if may_hold_async() {
        sync_after_async(meta, mode, site, ids)
    } else {
        None
    }
}

#[cold]
#[inline(never)]
fn sync_after_async(
    meta: &Meta,
    mode: Mode,
    site: &'static Location<'static>,
    ids: Ids,
) -> Option<Verdict> {
    let known = ASYNC_HOLDER.try_with(Cell::get).unwrap_or(0);
    let holder = match ::tokio::task::try_id() {
        Some(id) => TASK_BIT | task_number(id),
        None => STATE.try_with(|s| s.id()).unwrap_or(0),
    };
    if holder != known {
        if !holds_async(known) {
            // The last holder seen here holds nothing now (it released its async locks, or
            // ended): the sync fast paths need not leave to the full path for it any more.
            let _ = ASYNC_HOLDER.try_with(|c| c.set(0));
        }
        return None;
    }
    let (mut held, key) = with_shard(holder, |s| {
        let held: Vec<Held> = s
            .by_holder
            .get(&holder)
            .map(|l| l.iter().filter(|e| e.certain()).map(Entry::held).collect())
            .unwrap_or_default();
        if held.is_empty() {
            return (held, None);
        }
        let set = held
            .iter()
            .fold(0u64, |acc, h| acc.wrapping_add(held_hash(h.inst, h.mode)));
        let key =
            mix(set ^ ids.inst.rotate_left(29) ^ ((mode as u64) << 56) ^ holder.rotate_left(17))
                ^ 0x5bd1_e995;
        if s.checked.len() >= CHECKED_MAX {
            s.checked.clear();
        }
        let new = s.checked.insert(key);
        (held, new.then_some(key))
    });
    if held.is_empty() {
        let _ = ASYNC_HOLDER.try_with(|c| c.set(0));
        return None;
    }
    // Recorded (the task's stream shows the dependency) by `rec_sync_in_task`, before this.
    let key = key?;
    let _ = STATE.try_with(|s| {
        held.extend(
            s.held_snapshot()
                .into_iter()
                .filter(|h| h.task == holder && h.inst != ids.inst),
        );
    });
    meta.mark_in_graph();
    let found = as_busy(|_| {
        let found = graph::add_dependency(graph::Request {
            thread: holder,
            inst: ids.inst,
            class: ids.class,
            mode,
            site,
            held: &held,
            clock: VectorClock::new(),
        });
        let (found, limits) = found;
        for v in limits {
            publish(v);
        }
        found.map(publish)
    });
    match found {
        Some(Some(v)) => verdict(&v, site),
        Some(None) => None,
        None => {
            with_shard(holder, |s| {
                s.checked.remove(&key);
            });
            None
        }
    }
}

/// Reported (guard site, acquisition site, classes of both locks): each once (the action applies
/// every time); the same lines with locks of other classes are another finding.
static AWAIT_REPORTED: PlMutex<Option<HashSet<AwaitKey>>> = PlMutex::new(None);

/// A held-across-await report's key: guard site, acquisition site, the classes of both locks.
type AwaitKey = (String, String, Vec<String>);

/// Reports `me`'s request of `ids` while `h`, a sync guard another holder keeps across an
/// `.await`, is on this thread's stack; `certain`: the request waits forever (see
/// [`verdict_waiting`]).
fn held_across_await(
    me: u64,
    ids: Ids,
    mode: Mode,
    site: &'static Location<'static>,
    h: Held,
    certain: bool,
) -> Option<Verdict> {
    rec_await(me, ids, mode, site, &h);
    let owner = if h.task == 0 {
        "the runtime's root future (`block_on`, or this thread's code around it)".to_owned()
    } else {
        holder_name(h.task)
    };
    let held = LockRef::new(h.inst, h.class);
    let edges = as_busy(|_| {
        let bt = crate::checked::report::Trace::capture();
        let mut e0 = EdgeInfo::on_lock(
            me,
            holder_name(me),
            LockRef::new(ids.inst, ids.class),
            mode,
            site.to_string(),
            String::new(),
        );
        e0.held = held.clone();
        e0.held_mode = h.mode;
        e0.held_site = h.site.to_string();
        e0.backtrace = bt;
        let e1 = EdgeInfo::on_lock(
            h.task,
            owner,
            held,
            h.mode,
            h.site.to_string(),
            h.site.to_string(),
        );
        vec![e0, e1]
    });
    report_await(edges?, site, h.site, certain)
}

fn held_across_await_self(
    me: u64,
    ids: Ids,
    mode: Mode,
    site: &'static Location<'static>,
    h: Held,
) -> Option<Verdict> {
    rec_await(me, ids, mode, site, &h);
    let edges = as_busy(|_| {
        let mut e0 = EdgeInfo::on_lock(
            me,
            holder_name(me),
            LockRef::new(ids.inst, ids.class),
            mode,
            site.to_string(),
            String::new(),
        );
        e0.held = LockRef::new(h.inst, h.class);
        e0.held_mode = h.mode;
        e0.held_site = h.site.to_string();
        vec![e0]
    });
    report_await(edges?, site, h.site, false)
}

/// The trace's record of a sync guard `h` held across an `.await` while `me` requests `ids`
/// (the `held_across_await` event, in `me`'s stream), so that `lockcheck analyze` reports what
/// the runtime does.
fn rec_await(me: u64, ids: Ids, mode: Mode, site: &'static Location<'static>, h: &Held) {
    if flags() & flag::RECORD == 0 {
        return;
    }
    let owner = h.task;
    let held = Ids {
        inst: h.inst,
        class: h.class,
    };
    recorder::on_held_across_await(me, ids, mode, site, held, owner, h.site);
}

fn report_await(
    edges: Vec<EdgeInfo>,
    site: &'static Location<'static>,
    held_site: &'static Location<'static>,
    certain: bool,
) -> Option<Verdict> {
    let v = as_busy(|_| {
        // The sites and the classes of the locks (the held guard's, the requested one's).
        let mut classes: Vec<String> = edges
            .iter()
            .flat_map(|e| [e.held.class.clone(), e.acquired.class.clone()])
            .collect();
        classes.sort_unstable();
        classes.dedup();
        let key = (site.to_string(), held_site.to_string(), classes);
        let v = Violation {
            kind: ViolationKind::HeldAcrossAwait,
            edges,
            message: String::new(),
        };
        publish_once(&AWAIT_REPORTED, key, v)
    });
    if certain {
        return verdict_waiting(&v?, site, false);
    }
    verdict(&v?, site)
}

// ---------------------------------------------------------------------------------------------
// Reports.

/// Async self-deadlocks already reported, by their two sites and the lock's class (each once;
/// the action applies every time): a helper given another lock is another finding.
static SELF_REPORTED: PlMutex<Option<HashSet<(String, String, u32)>>> = PlMutex::new(None);

/// Reports `holder`'s acquisition of a lock it holds (`e`); `waits`: the acquisition waits
/// next, so a [`ViolationKind::SelfDeadlock`] is a certain hang (see [`verdict_waiting`]).
#[allow(clippy::too_many_arguments)]
fn self_violation(
    holder: u64,
    kind: ViolationKind,
    ids: Ids,
    mode: Mode,
    site: &'static Location<'static>,
    e: &Entry,
    waits: Waits,
) -> Option<Verdict> {
    self_violation_noted(holder, kind, ids, mode, site, e, "", waits)
}

/// [`self_violation`], with `note` after the held site (what "held" means there).
#[allow(clippy::too_many_arguments)]
fn self_violation_noted(
    holder: u64,
    kind: ViolationKind,
    ids: Ids,
    mode: Mode,
    site: &'static Location<'static>,
    e: &Entry,
    note: &str,
    waits: Waits,
) -> Option<Verdict> {
    let v = as_busy(|_| {
        let key = (site.to_string(), e.site.to_string(), ids.class);
        let lock = LockRef::new(ids.inst, ids.class);
        let mut edge = EdgeInfo::on_lock(
            holder,
            holder_name(holder),
            lock,
            mode,
            site.to_string(),
            format!("{}{note}", e.site),
        );
        edge.held_mode = e.mode;
        edge.retried = graph::retried_now();
        edge.backtrace = crate::checked::report::Trace::capture();
        let v = Violation {
            kind,
            edges: vec![edge],
            message: String::new(),
        };
        publish_once(&SELF_REPORTED, key, v)
    });
    let v = v?;
    if waits != Waits::No && kind == ViolationKind::SelfDeadlock {
        return verdict_waiting(&v, site, waits == Waits::Block);
    }
    verdict(&v, site)
}

/// Publishes `v` the first time `key` is seen in `reported` (the same bug again is reported once;
/// the action applies every time, so the message is rendered either way).
fn publish_once<K: Eq + Hash>(
    reported: &PlMutex<Option<HashSet<K>>>,
    key: K,
    v: Violation,
) -> Violation {
    let first = internal(reported)
        .get_or_insert_with(HashSet::new)
        .insert(key);
    if first {
        publish(v)
    } else {
        let mut v = v;
        v.message = v.render();
        v
    }
}

/// [`verdict`] of a certain hang the caller is about to wait in (a self-deadlock, a closed
/// wait-for cycle through this wait): on a thread that is already panicking (a `Drop` run by
/// the unwinding, a panic hook) no verdict can be raised and the wait would never end, so the
/// process aborts after the report, with the trace flushed (`hooks::abort_unwinding`, as the
/// sync locks do). A `blocking_*` wait (`blocks`: nothing can give it up) panics under `warn`
/// too, as the sync locks' self-deadlocks do: `warn` goes on only where going on does not hang.
/// Otherwise as [`verdict`].
fn verdict_waiting(
    v: &Violation,
    site: &'static Location<'static>,
    blocks: bool,
) -> Option<Verdict> {
    let a = action();
    if std::thread::panicking() && a != Action::Off {
        crate::checked::hooks::abort_unwinding(v);
    }
    if blocks && a == Action::Warn {
        let first = v.message.lines().next().unwrap_or("lockcheck: violation");
        return Some(Verdict::new(format!(
            "{first}, at {site} (report above; a certain hang panics under LOCKCHECK=warn too)"
        )));
    }
    verdict(v, site)
}

/// The configured action on a report: under `panic`, a verdict for the acquiring task to raise
/// before it waits (its guards drop, so the others can go on; the runtime reports the panic
/// through the task's `JoinHandle`). Always raised at the user's line: by the `#[track_caller]`
/// entry point of a `blocking_*` method ([`precheck`]) or of a sync lock (the hooks return it),
/// or by the `#[track_caller]` `poll` of the future the user awaits (`tokio::Checked`).
fn verdict(v: &Violation, site: &'static Location<'static>) -> Option<Verdict> {
    if action() == Action::Panic && !std::thread::panicking() {
        let first = v.message.lines().next().unwrap_or("lockcheck: violation");
        return Some(Verdict::new(format!(
            "{first}, at {site} (report above; LOCKCHECK=warn reports and goes on)"
        )));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::ShownDeps;

    /// Two keys with one hash (a collision, forced here) are two dependencies: the second is
    /// shown, not skipped as the first's repeat; a repeat of either is recognised by its key.
    #[test]
    fn shown_deps_confirms_a_hash_hit_by_its_key() {
        let m = ShownDeps::new();
        let (a, b) = ([1u64, 7, 42, 0, 1, 10, 0], [1u64, 7, 43, 0, 1, 10, 0]);
        assert!(m.first(0xdead_beef, &a), "a new key");
        assert!(!m.first(0xdead_beef, &a), "its repeat");
        assert!(m.first(0xdead_beef, &b), "another key with the same hash");
        assert!(!m.first(0xdead_beef, &b), "its repeat");
        // `b` pushed `a` out of their slot: `a` is shown again (a repeat in the trace, never
        // a miss).
        assert!(m.first(0xdead_beef, &a));
        // A different hash in another slot leaves that one alone.
        assert!(m.first(0xdead_beef ^ 0x100, &b));
        assert!(!m.first(0xdead_beef, &a));
    }
}
