//! Per-thread state: the held stack, the known-dependency cache, the thread's number and vector
//! clock, and the "inside lockcheck" flag that makes lockcheck's own nested acquisitions plain.

use lockcheck_core::deps::VectorClock;
use lockcheck_core::trace::Mode;
use std::cell::{Cell, RefCell};
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

/// Locks tracked per thread. Deeper nesting is not tracked (acquisitions past it are plain);
/// a fixed array keeps the thread-local free of destructors, which makes every access to it a
/// plain thread-pointer offset instead of a lazily registered slot.
pub(crate) const MAX_HELD: usize = 32;

/// The held stack: a fixed-capacity vector, oldest first.
#[derive(Clone, Copy)]
pub(crate) struct HeldStack {
    len: usize,
    items: [Held; MAX_HELD],
}

impl HeldStack {
    const fn new() -> HeldStack {
        HeldStack {
            len: 0,
            items: [PLACEHOLDER; MAX_HELD],
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[Held] {
        &self.items[..self.len]
    }

    #[inline]
    pub(crate) fn as_mut_slice(&mut self) -> &mut [Held] {
        &mut self.items[..self.len]
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

    /// Pushes; returns false (not tracked) when full.
    #[inline]
    pub(crate) fn push(&mut self, h: Held) -> bool {
        if self.len == MAX_HELD {
            return false;
        }
        self.items[self.len] = h;
        self.len += 1;
        true
    }

    /// Removes the newest entry matching `f` (the top one, usually: a pop).
    #[inline]
    pub(crate) fn remove_last(&mut self, f: impl Fn(&Held) -> bool) -> Option<Held> {
        let top = self.len.checked_sub(1)?;
        if f(&self.items[top]) {
            self.len = top;
            return Some(self.items[top]);
        }
        let i = self.as_slice().iter().rposition(f)?;
        let h = self.items[i];
        self.items.copy_within(i + 1..self.len, i);
        self.len -= 1;
        Some(h)
    }
}

/// Slots in the direct-mapped cache of dependencies this thread already checked.
const CACHE_SLOTS: usize = 512;

/// The hot per-thread state. No field has a destructor (see [`MAX_HELD`]).
pub(crate) struct ThreadState {
    /// Set while lockcheck itself runs on this thread (reports, tracing, symbol resolution).
    pub busy: Cell<bool>,
    pub held: RefCell<HeldStack>,
    /// Keys of (held set, lock, mode, clock epoch) already checked against the global graph.
    /// Direct-mapped: a collision evicts, which only costs a re-check.
    cache: [Cell<u64>; CACHE_SLOTS],
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
}

static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    pub(crate) static STATE: ThreadState = const {
        ThreadState {
            busy: Cell::new(false),
            held: RefCell::new(HeldStack::new()),
            cache: [const { Cell::new(0) }; CACHE_SLOTS],
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

    /// Whether `key` was checked before; marks it checked.
    #[inline]
    pub(crate) fn cache_hit(&self, key: u64) -> bool {
        let slot = &self.cache[(key as usize) & (CACHE_SLOTS - 1)];
        if slot.get() == key {
            true
        } else {
            slot.set(key);
            false
        }
    }

    /// Forgets a cached key (the check it stood for was not completed).
    pub(crate) fn cache_forget(&self, key: u64) {
        let slot = &self.cache[(key as usize) & (CACHE_SLOTS - 1)];
        if slot.get() == key {
            slot.set(0);
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
