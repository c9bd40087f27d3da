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
    /// Acquisition time, when hold times are measured (recording on).
    pub since: Option<std::time::Instant>,
    /// A dependency from this lock reached the global graph: dropping the lock must remove it.
    pub source: bool,
}

/// Slots in the direct-mapped cache of dependencies this thread already checked.
const CACHE_SLOTS: usize = 1024;

pub(crate) struct ThreadState {
    /// Set while lockcheck itself runs on this thread (reports, tracing, symbol resolution).
    pub busy: Cell<bool>,
    pub held: RefCell<Vec<Held>>,
    /// Keys of (held set, lock, mode, clock epoch) already checked against the global graph.
    /// Direct-mapped: a collision evicts, which only costs a re-check.
    cache: RefCell<Vec<u64>>,
    id: Cell<u64>,
    /// Bumped whenever the vector clock changes (spawn/join), so cached keys stay exact.
    pub epoch: Cell<u64>,
    pub clock: RefCell<VectorClock>,
    /// The held list mirrored for the watchdog (only with the watchdog on).
    pub published: RefCell<Option<std::sync::Arc<super::watch::Published>>>,
    /// Statistics of this thread (only with statistics on).
    pub stats: RefCell<Option<std::sync::Arc<super::watch::ThreadStats>>>,
}

static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    pub(crate) static STATE: ThreadState = const {
        ThreadState {
            busy: Cell::new(false),
            held: RefCell::new(Vec::new()),
            cache: RefCell::new(Vec::new()),
            id: Cell::new(0),
            epoch: Cell::new(0),
            clock: RefCell::new(VectorClock::new()),
            published: RefCell::new(None),
            stats: RefCell::new(None),
        }
    };
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
        let mut clock = self.clock.borrow_mut();
        if clock.get(id) == 0 {
            clock.set(id, 1);
        }
        drop(clock);
        id
    }

    /// Takes the number and starting clock a parent assigned at spawn.
    pub(crate) fn adopt(&self, id: u64, mut clock: VectorClock) {
        self.id.set(id);
        clock.set(id, 1);
        *self.clock.borrow_mut() = clock;
        self.epoch.set(self.epoch.get() + 1);
    }

    /// Whether `key` was checked before; marks it checked.
    #[inline]
    pub(crate) fn cache_hit(&self, key: u64) -> bool {
        let mut cache = self.cache.borrow_mut();
        if cache.is_empty() {
            cache.resize(CACHE_SLOTS, 0);
        }
        let slot = &mut cache[(key as usize) & (CACHE_SLOTS - 1)];
        if *slot == key {
            true
        } else {
            *slot = key;
            false
        }
    }

    /// Forgets a cached key (the check it stood for was not completed).
    pub(crate) fn cache_forget(&self, key: u64) {
        let mut cache = self.cache.borrow_mut();
        if let Some(slot) = cache.get_mut((key as usize) & (CACHE_SLOTS - 1)) {
            if *slot == key {
                *slot = 0;
            }
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

/// The thread's name for reports: its std name, or `thread #N`.
pub(crate) fn thread_name(id: u64) -> String {
    match std::thread::current().name() {
        Some(n) => n.to_owned(),
        None => format!("thread #{id}"),
    }
}
