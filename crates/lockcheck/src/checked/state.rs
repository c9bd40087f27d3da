//! Per-thread state: the held stack, the known-dependency cache, the thread's number and vector
//! clock, and the "inside lockcheck" flag that makes lockcheck's own nested acquisitions plain.

use lockcheck_core::deps::VectorClock;
use lockcheck_core::trace::Mode;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};

/// One lock held by this thread.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Held {
    pub inst: u64,
    pub class: u32,
    pub mode: Mode,
    pub site: &'static Location<'static>,
    /// Acquisition time, when hold times are measured (recording, statistics, watchdog).
    pub since: Option<std::time::Instant>,
    /// A dependency from this lock reached the global graph: dropping the lock must remove it.
    pub source: bool,
    /// Who took it in async code (`crate::tokio::track::current_tag`: a task, a runtime's root
    /// future, or 0 outside any runtime), to tell a guard held across an `.await` by a suspended
    /// task from this thread's own holds.
    #[cfg(feature = "tokio")]
    pub task: u64,
}

const PLACEHOLDER: Held = Held {
    inst: 0,
    class: 0,
    mode: Mode::Exclusive,
    site: Location::caller(),
    since: None,
    source: false,
    #[cfg(feature = "tokio")]
    task: 0,
};

/// Locks kept inline per thread. Deeper nesting moves the whole stack to the heap (the slow
/// path); a fixed inline array keeps the thread-local free of destructors, which makes every
/// access to it a plain thread-pointer offset instead of a lazily registered slot.
pub(crate) const INLINE_HELD: usize = 32;

/// The held stack, oldest first: inline while shallow, on the heap ("spilled") while deeper than
/// [`INLINE_HELD`]. Any depth is tracked: an untracked lock would make its release look foreign,
/// hide a later self-deadlock on it and unbalance the trace.
pub(crate) struct HeldStack {
    /// The number of entries while inline (at most [`INLINE_HELD`]); [`SPILLED`] while they
    /// live in `spill`. One word, so the shallow paths test one condition.
    n: usize,
    items: [Held; INLINE_HELD],
    /// Every entry while spilled (null while inline). A raw pointer, not a `Box`, so that the
    /// thread-local keeps no destructor; freed when the stack shrinks back, or at thread exit
    /// (see [`SlowState`]'s `Drop`).
    spill: *mut Vec<Held>,
}

/// [`HeldStack::n`] while the entries live on the heap.
const SPILLED: usize = usize::MAX;

impl HeldStack {
    const fn new() -> HeldStack {
        HeldStack {
            n: 0,
            items: [PLACEHOLDER; INLINE_HELD],
            spill: std::ptr::null_mut(),
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        // A spilled stack holds more than `INLINE_HELD / 2` entries (see `remove_deep`).
        self.n == 0
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[Held] {
        if self.n <= INLINE_HELD {
            &self.items[..self.n]
        } else {
            // SAFETY: while spilled, `spill` is a live `Box<Vec<Held>>` owned by this stack.
            unsafe { (&*self.spill).as_slice() }
        }
    }

    #[inline]
    pub(crate) fn as_mut_slice(&mut self) -> &mut [Held] {
        if self.n <= INLINE_HELD {
            &mut self.items[..self.n]
        } else {
            // SAFETY: as above; `&mut self` makes the access exclusive.
            unsafe { (&mut *self.spill).as_mut_slice() }
        }
    }

    #[inline]
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Held> {
        self.as_slice().iter()
    }

    #[inline]
    pub(crate) fn iter_mut(&mut self) -> std::slice::IterMut<'_, Held> {
        self.as_mut_slice().iter_mut()
    }

    pub(crate) fn snapshot(&self) -> Vec<Held> {
        self.as_slice().to_vec()
    }

    /// Pushes (always tracked: past [`INLINE_HELD`] the stack moves to the heap).
    #[inline]
    pub(crate) fn push(&mut self, h: Held) {
        if self.n < INLINE_HELD {
            self.items[self.n] = h;
            self.n += 1;
        } else {
            self.push_deep(h);
        }
    }

    /// The fast path's push: an untimed hold that is no graph source yet, written in place.
    /// False (nothing pushed) when the inline array is full.
    #[inline(always)]
    pub(crate) fn push_plain(
        &mut self,
        inst: u64,
        class: u32,
        mode: Mode,
        site: &'static Location<'static>,
        #[cfg(feature = "tokio")] task: u64,
    ) -> bool {
        let n = self.n;
        if n >= INLINE_HELD {
            return false;
        }
        let e = &mut self.items[n];
        e.inst = inst;
        e.class = class;
        e.mode = mode;
        e.site = site;
        e.since = None;
        e.source = false;
        #[cfg(feature = "tokio")]
        {
            e.task = task;
        }
        self.n = n + 1;
        true
    }

    #[cold]
    #[inline(never)]
    fn push_deep(&mut self, h: Held) {
        if self.n != SPILLED {
            let mut v = Vec::with_capacity(2 * INLINE_HELD);
            v.extend_from_slice(&self.items[..self.n]);
            self.spill = Box::into_raw(Box::new(v));
            self.n = SPILLED;
            // The thread's slow state frees the spill area at thread exit.
            with_slow(|slow| slow.owns_spill = true);
        }
        // SAFETY: spilled from here on, owned by this stack.
        unsafe { (*self.spill).push(h) };
    }

    /// The release fast path: pops the top entry if it is `inst` held in exactly `mode` and its
    /// release needs no bookkeeping (never a graph source, not timed). False: nothing changed,
    /// take the general path ([`HeldStack::remove_last`]). No closure, no copy of the entry.
    #[inline(always)]
    pub(crate) fn pop_plain_top(&mut self, inst: u64, mode: Mode) -> bool {
        let n = self.n;
        // 1..=INLINE_HELD in one comparison (0 and SPILLED wrap past it).
        if n.wrapping_sub(1) < INLINE_HELD {
            let t = &self.items[n - 1];
            if t.inst == inst && t.mode == mode && !t.source && t.since.is_none() {
                self.n = n - 1;
                return true;
            }
        }
        false
    }

    /// Removes the newest entry matching `f` (the top one, usually: a pop).
    #[inline]
    pub(crate) fn remove_last(&mut self, f: impl Fn(&Held) -> bool) -> Option<Held> {
        if self.n > INLINE_HELD {
            return self.remove_deep(f);
        }
        let top = self.n.checked_sub(1)?;
        if f(&self.items[top]) {
            self.n = top;
            return Some(self.items[top]);
        }
        let i = self.as_slice().iter().rposition(f)?;
        let h = self.items[i];
        self.items.copy_within(i + 1..self.n, i);
        self.n -= 1;
        Some(h)
    }

    #[cold]
    #[inline(never)]
    fn remove_deep(&mut self, f: impl Fn(&Held) -> bool) -> Option<Held> {
        // SAFETY: spilled (checked by the caller), owned by this stack.
        let v = unsafe { &mut *self.spill };
        let i = v.iter().rposition(f)?;
        let h = v.remove(i);
        // Back inline once comfortably shallow (half, so that nesting around the boundary does
        // not move the stack back and forth).
        if v.len() <= INLINE_HELD / 2 {
            let n = v.len();
            self.items[..n].copy_from_slice(v);
            self.free_spill();
            self.n = n;
        }
        Some(h)
    }

    /// Frees the spill area and empties the stack (entries still needed must have been copied
    /// back by the caller, which then sets the count).
    fn free_spill(&mut self) {
        if !self.spill.is_null() {
            // SAFETY: made by `Box::into_raw` in `push_deep`, freed once (nulled right after).
            drop(unsafe { Box::from_raw(self.spill) });
            self.spill = std::ptr::null_mut();
        }
        self.n = 0;
    }
}

/// Slots in the direct-mapped cache of dependencies this thread already checked.
const CACHE_SLOTS: usize = 256;
/// Held sets up to this size are cached inline; larger ones in [`SlowState::deep_checked`].
pub(crate) const CACHE_HELD: usize = 4;
/// Entries of the exact cache of large held sets before it is emptied (a miss costs a re-check,
/// never a missed check).
const DEEP_CACHE_MAX: usize = 4096;

/// One checked dependency, stored exactly, so a hit can never stand for another dependency.
/// Aligned to a cache line, so that a probe touches one line.
#[repr(align(64))]
struct Slot {
    /// Requested instance, mode and held-set length ([`CacheKey::lock`]); 0 when empty.
    lock: Cell<u64>,
    /// The clock epoch of the check.
    epoch: Cell<u64>,
    /// The held locks (instance and mode), oldest first.
    held: [Cell<u64>; CACHE_HELD],
}

/// The exact identity of a dependency check: the requested lock and mode, the held locks with
/// their modes, and the clock epoch. Built on the fast path, so inline up to [`CACHE_HELD`].
pub(crate) struct CacheKey {
    /// Slot index (a hash of the rest).
    pub slot: usize,
    /// `inst | mode << 40 | held_len << 44 | 1 << 63`.
    pub lock: u64,
    pub epoch: u64,
    /// Packed `inst | mode << 40` of each held lock (the first [`CACHE_HELD`] only inline).
    pub held: [u64; CACHE_HELD],
    pub len: usize,
}

/// The cache key of acquiring `inst` in `mode` while holding `held`, and whether `inst` is among
/// the held locks (a possible self-conflict). The held *set* is what a dependency is about, so
/// the slot is a commutative sum of one multiply per held lock (independent, so they pipeline),
/// then one mix with the request. The slot stores the dependency itself, so a hit is exact.
#[inline(always)]
pub(crate) fn cache_key(held: &[Held], inst: u64, mode: Mode, epoch: u64) -> (CacheKey, bool) {
    let mut set = 0u64;
    let mut packed = [0u64; CACHE_HELD];
    let mut again = false;
    for (i, h) in held.iter().enumerate() {
        again |= h.inst == inst;
        let p = pack(h.inst, h.mode);
        if i < CACHE_HELD {
            packed[i] = p;
        }
        set = set.wrapping_add(p.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
    let len = held.len();
    let key = CacheKey {
        slot: mix(set ^ inst.rotate_left(29) ^ (mode as u64) ^ epoch.rotate_left(45)) as usize,
        lock: pack(inst, mode) | (((len as u64) & 0xf) << 44) | (1 << 63),
        epoch,
        held: packed,
        len,
    };
    (key, again)
}

/// Packs an instance (40 bits) and a mode (3 bits) into one word.
#[inline]
pub(crate) fn pack(inst: u64, mode: Mode) -> u64 {
    inst | ((mode as u64) << 40)
}
/// The hot per-thread state. No field has a destructor (see [`INLINE_HELD`]).
pub(crate) struct ThreadState {
    /// Set while lockcheck itself runs on this thread (reports, tracing, symbol resolution).
    pub busy: Cell<bool>,
    /// Set while a condvar wait retakes its mutex: a panic then must wait until the mutex is
    /// held again (the caller's guard would otherwise unlock a mutex another thread owns).
    pub relocking: Cell<bool>,
    pub held: RefCell<HeldStack>,
    /// (held set, lock, mode, clock epoch) already checked against the global graph, stored
    /// exactly. Direct-mapped: a collision evicts, which only costs a re-check.
    cache: [Slot; CACHE_SLOTS],
    id: Cell<u64>,
    /// Bumped whenever the vector clock changes (spawn/join), so cached keys stay exact.
    pub epoch: Cell<u64>,
}

/// The per-thread state only slow paths touch (it has destructors).
#[derive(Default)]
pub(crate) struct SlowState {
    pub clock: VectorClock,
    /// The held list mirrored for the watchdog (only with the watchdog on).
    pub published: Option<std::sync::Arc<super::watch::Published>>,
    /// Statistics of this thread (only with statistics on).
    pub stats: Option<std::sync::Arc<super::watch::ThreadStats>>,
    /// The panic a condvar relock deferred until its mutex is held again.
    pub deferred: Option<super::report::Verdict>,
    /// Checked dependencies with more than [`CACHE_HELD`] held locks, exactly (bounded).
    pub deep_checked: HashSet<(u64, u64, Vec<u64>)>,
    /// The held stack spilled to the heap: free it at thread exit.
    pub owns_spill: bool,
    /// This thread's name for dependency records (by thread number).
    pub name: Option<(u64, std::sync::Arc<str>)>,
}

impl Drop for SlowState {
    fn drop(&mut self) {
        if self.owns_spill {
            // The thread ends while deeply nested: give the entries up (a later release of one of
            // them is taken as foreign, which is harmless) and free the heap area.
            let _ = STATE.try_with(|s| {
                if let Ok(mut held) = s.held.try_borrow_mut() {
                    if held.n == SPILLED {
                        held.free_spill();
                    }
                }
            });
        }
    }
}

static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    pub(crate) static STATE: ThreadState = const {
        ThreadState {
            busy: Cell::new(false),
            relocking: Cell::new(false),
            held: RefCell::new(HeldStack::new()),
            cache: [const {
                Slot {
                    lock: Cell::new(0),
                    epoch: Cell::new(0),
                    held: [const { Cell::new(0) }; CACHE_HELD],
                }
            }; CACHE_SLOTS],
            id: Cell::new(0),
            epoch: Cell::new(0),
        }
    };
    static SLOW: RefCell<SlowState> = RefCell::new(SlowState::default());
}

/// Runs `f` on this thread's slow state (None during thread teardown or re-entry).
pub(crate) fn with_slow<R>(f: impl FnOnce(&mut SlowState) -> R) -> Option<R> {
    SLOW.try_with(|s| s.try_borrow_mut().ok().map(|mut s| f(&mut s)))
        .ok()
        .flatten()
}

impl ThreadState {
    /// This thread's number (assigned on first use).
    pub(crate) fn id(&self) -> u64 {
        let id = self.id.get();
        if id != 0 {
            return id;
        }
        let id = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
        self.id.set(id);
        with_slow(|slow| {
            if slow.clock.get(id) == 0 {
                slow.clock.set(id, 1);
            }
        });
        id
    }

    /// This thread's vector clock.
    pub(crate) fn clock(&self) -> VectorClock {
        let id = self.id();
        with_slow(|slow| slow.clock.clone()).unwrap_or_else(|| {
            let mut c = VectorClock::new();
            c.set(id, 1);
            c
        })
    }

    /// Takes the number and starting clock a parent assigned at spawn.
    pub(crate) fn adopt(&self, id: u64, mut clock: VectorClock) {
        self.id.set(id);
        clock.set(id, 1);
        with_slow(|slow| slow.clock = clock);
        self.epoch.set(self.epoch.get() + 1);
    }

    /// Whether this thread holds any tracked lock.
    #[inline]
    pub(crate) fn holds_any(&self) -> bool {
        self.held.try_borrow().is_ok_and(|h| !h.is_empty())
    }

    /// Whether the dependency `key` was checked before; marks it checked. Exact: a hit means
    /// the very same (lock, mode, held set, epoch), never a hash collision.
    #[inline]
    pub(crate) fn cache_hit(&self, key: &CacheKey) -> bool {
        if key.len > CACHE_HELD {
            return self.deep_hit(key);
        }
        let slot = &self.cache[key.slot & (CACHE_SLOTS - 1)];
        let held = &key.held[..key.len];
        // The length is part of `key.lock`: equal words mean equal lengths. Unrolled: this is the
        // hit path of every nested acquisition.
        if slot.lock.get() == key.lock && slot.epoch.get() == key.epoch {
            let (k, c) = (&key.held, &slot.held);
            let same = match key.len {
                1 => c[0].get() == k[0],
                2 => c[0].get() == k[0] && c[1].get() == k[1],
                3 => c[0].get() == k[0] && c[1].get() == k[1] && c[2].get() == k[2],
                _ => held.iter().zip(c).all(|(k, c)| *k == c.get()),
            };
            if same {
                return true;
            }
        }
        slot.lock.set(key.lock);
        slot.epoch.set(key.epoch);
        for (k, s) in held.iter().zip(&slot.held) {
            s.set(*k);
        }
        false
    }

    /// Whether the dependency `key` (at most [`CACHE_HELD`] held locks) was checked before,
    /// without marking it: the nested fast path looks, and on a miss leaves the marking to the
    /// full check, which must then run.
    #[inline(always)]
    pub(crate) fn cache_contains(&self, key: &CacheKey) -> bool {
        debug_assert!(key.len <= CACHE_HELD);
        let slot = &self.cache[key.slot & (CACHE_SLOTS - 1)];
        if slot.lock.get() != key.lock || slot.epoch.get() != key.epoch {
            return false;
        }
        let (k, c) = (&key.held, &slot.held);
        match key.len {
            1 => c[0].get() == k[0],
            2 => c[0].get() == k[0] && c[1].get() == k[1],
            _ => k[..key.len].iter().zip(c).all(|(k, c)| *k == c.get()),
        }
    }

    #[cold]
    #[inline(never)]
    fn deep_hit(&self, key: &CacheKey) -> bool {
        let Ok(held) = self.held.try_borrow() else {
            return false;
        };
        let entry = (
            key.lock,
            key.epoch,
            held.iter()
                .map(|h| pack(h.inst, h.mode))
                .collect::<Vec<u64>>(),
        );
        drop(held);
        with_slow(|slow| {
            if slow.deep_checked.contains(&entry) {
                return true;
            }
            if slow.deep_checked.len() >= DEEP_CACHE_MAX {
                slow.deep_checked.clear();
            }
            slow.deep_checked.insert(entry);
            false
        })
        .unwrap_or(false)
    }

    /// Forgets a cached key (the check it stood for was not completed).
    pub(crate) fn cache_forget(&self, key: &CacheKey) {
        if key.len > CACHE_HELD {
            with_slow(|slow| slow.deep_checked.clear());
            return;
        }
        let slot = &self.cache[key.slot & (CACHE_SLOTS - 1)];
        if slot.lock.get() == key.lock {
            slot.lock.set(0);
        }
    }
}

/// A fresh thread number (for a child about to be spawned).
pub(crate) fn new_thread_id() -> u64 {
    NEXT_THREAD.fetch_add(1, Ordering::Relaxed)
}

/// Runs `f` with this thread marked busy (lockcheck's own work): lock acquisitions inside are
/// plain. Returns `None` if the thread is already busy or its state is gone (thread exit).
pub(crate) fn as_busy<R>(f: impl FnOnce(&ThreadState) -> R) -> Option<R> {
    STATE
        .try_with(|s| {
            if s.busy.replace(true) {
                return None;
            }
            struct Reset<'a>(&'a Cell<bool>);
            impl Drop for Reset<'_> {
                fn drop(&mut self) {
                    self.0.set(false);
                }
            }
            let _reset = Reset(&s.busy);
            Some(f(s))
        })
        .ok()
        .flatten()
}

/// A cheap 64-bit mixer (splitmix64's finalizer). Written by hand: a hash crate would add a
/// dependency for four lines, and the std hasher (SipHash) is too slow for the fast path.
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The thread's name for dependency records, allocated once per thread.
pub(crate) fn shared_thread_name(id: u64) -> std::sync::Arc<str> {
    with_slow(|slow| match &slow.name {
        Some((i, n)) if *i == id => n.clone(),
        _ => {
            let n: std::sync::Arc<str> = thread_name(id).into();
            slow.name = Some((id, n.clone()));
            n
        }
    })
    .unwrap_or_else(|| thread_name(id).into())
}

/// The calling thread's name for reports (see [`crate::thread::describe_current`]); `id` is
/// lockcheck's number for it, which reports carry separately. An async task (feature `tokio`) is
/// named by its task number instead.
pub(crate) fn thread_name(id: u64) -> String {
    #[cfg(feature = "tokio")]
    if crate::tokio::track::is_task(id) {
        return crate::tokio::track::task_name(id);
    }
    let _ = id;
    crate::thread::describe_current()
}
