//! What happens on a violation: `LOCKCHECK=panic|warn|off`, or [`set_action`] from code.

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

/// What lockcheck does when it finds a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// No checking at all: acquisitions go straight to the raw lock (recording still works).
    Off,
    /// Print the report (stderr and a `tracing` event) and go on; a certain hang (a real
    /// deadlock, a thread locking a mutex it already holds) panics as under `Panic`, since going
    /// on would hang forever.
    Warn,
    /// Print the report, then panic in the acquiring thread, before it blocks. The default.
    Panic,
}

const UNSET: u8 = 0;
static ACTION: AtomicU8 = AtomicU8::new(UNSET);

fn encode(a: Action) -> u8 {
    match a {
        Action::Off => 1,
        Action::Warn => 2,
        Action::Panic => 3,
    }
}

/// Parses a `LOCKCHECK` value; unknown values fall back to the default with a warning.
fn from_env() -> Action {
    match std::env::var("LOCKCHECK") {
        Err(_) => Action::Panic,
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "" | "panic" | "1" | "on" => Action::Panic,
            "warn" => Action::Warn,
            "off" | "0" => Action::Off,
            other => {
                crate::checked::notice::say(format_args!(
                    "lockcheck: ignoring LOCKCHECK={other:?} (expected panic, warn or off)"
                ));
                Action::Panic
            }
        },
    }
}

/// The current action (reads `LOCKCHECK` on first use).
#[inline]
pub fn action() -> Action {
    match ACTION.load(Ordering::Relaxed) {
        1 => Action::Off,
        2 => Action::Warn,
        3 => Action::Panic,
        _ => {
            let a = from_env();
            // A concurrent `set_action` wins over the environment.
            let _ = ACTION.compare_exchange(UNSET, encode(a), Ordering::Relaxed, Ordering::Relaxed);
            action()
        }
    }
}

/// Sets the action for the whole process, overriding `LOCKCHECK`.
pub fn set_action(a: Action) {
    ACTION.store(encode(a), Ordering::Relaxed);
    refresh_flags();
}

/// Whether backtraces are captured for new lock-order edges (`LOCKCHECK_BACKTRACE=0` turns it off).
pub(crate) fn backtraces() -> bool {
    static FLAG: AtomicU8 = AtomicU8::new(UNSET);
    match FLAG.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let on = !matches!(
                std::env::var("LOCKCHECK_BACKTRACE").as_deref(),
                Ok("0") | Ok("off")
            );
            FLAG.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
    }
}

static ORDER: AtomicU8 = AtomicU8::new(UNSET);

/// Whether lock-order checking (the lock graph) is on: `LOCKCHECK_ORDER=off` or
/// [`set_order_checking`] leaves only self-deadlock and real-deadlock detection, like parking_lot's
/// `deadlock_detection` but with reports.
#[inline]
pub fn order_checking() -> bool {
    match ORDER.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let on = !matches!(
                std::env::var("LOCKCHECK_ORDER").as_deref(),
                Ok("off") | Ok("0")
            );
            let _ = ORDER.compare_exchange(
                UNSET,
                if on { 2 } else { 1 },
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            order_checking()
        }
    }
}

/// Turns lock-order checking on or off for the whole process (see [`order_checking`]).
pub fn set_order_checking(on: bool) {
    ORDER.store(if on { 2 } else { 1 }, Ordering::Relaxed);
    refresh_flags();
}

/// The fast path's view of every switch, in one byte so that an acquisition reads one atomic.
pub(crate) mod flag {
    /// Checking on (`LOCKCHECK` is not `off`).
    pub const CHECK: u8 = 1;
    /// The lock-order graph is on.
    pub const ORDER: u8 = 2;
    /// A trace is being recorded.
    pub const RECORD: u8 = 4;
    /// Statistics are collected.
    pub const STATS: u8 = 8;
    /// Held locks are published for the watchdog.
    pub const WATCH: u8 = 16;
    /// The opt-in condvar rule is on: acquisitions go into their thread's window log
    /// (`watch::note_taken`).
    pub const CONDVAR: u8 = 32;
    /// Any of the above: bookkeeping is needed at all.
    pub const ACTIVE: u8 = CHECK | RECORD | STATS | WATCH | CONDVAR;
    /// Acquisitions are timed with `Instant` in the hooks (hold and wait times for statistics
    /// and the watchdog). Recording is not among them: it stamps its records with its own cheaper
    /// clock (`checked::recorder`).
    pub const TIMED: u8 = STATS | WATCH;
    /// Anything that takes the full path: recording, statistics, the watchdog, the condvar rule.
    pub const SLOW: u8 = RECORD | STATS | WATCH | CONDVAR;
    pub(crate) const INIT: u8 = 128;
}

static FLAGS: AtomicU8 = AtomicU8::new(0);

/// What the acquisition fast path may do, decided once per switch change ([`refresh_flags`]) so
/// that an acquisition tests one byte: [`fast::CHECKED`], [`fast::RAW`], [`fast::RECORDING`] or
/// [`fast::FULL`] (also before the switches were first computed).
static FAST: AtomicU8 = AtomicU8::new(fast::FULL);

/// Values of [`FAST`] and of each thread's copy ([`ThreadSwitch`]).
pub(crate) mod fast {
    /// Checking on, nothing recorded, counted or watched (the order switch does not matter:
    /// the fast path checks only what it can answer without the graph, see `hooks::lock_fast`).
    /// 0: the test is one `test` of the byte.
    pub const CHECKED: u8 = 0;
    /// Every switch off (`LOCKCHECK=off` and nothing recorded, counted or watched): the raw lock.
    /// The sign bit: tested as a sign, not as a value (two values compared would become a
    /// switch, which the compiler ordered with this case first, on the checked path).
    pub const RAW: u8 = 0x80;
    /// The full path: not computed yet, statistics or the watchdog on, or recording with
    /// checking off. No value is 1, and none but [`RAW`] has the sign bit: the fast path `or`s
    /// the byte with the thread's depth byte (`state::BusyDepth`, below the sign), and reads
    /// "checked, one lock held, not busy" as 1 and "every switch off" as the sign.
    pub const FULL: u8 = 2;
    /// Checking on and a trace recorded, nothing counted or watched: the fast cases (nothing
    /// held; the exact dependency known) still take a fast way, out of line, which writes the
    /// same records as the full path (`hooks::lock_recorded`).
    pub const RECORDING: u8 = 4;
    /// A thread's copy before the thread registered it ([`super::ThreadSwitch`]): the full path,
    /// which registers it (`hooks::lock_blocking`).
    pub const UNREGISTERED: u8 = 6;
}

/// A thread's copy of the fast path's byte ([`FAST`]), in its thread-local state, so that an
/// acquisition reads its switch and its held stack through one thread-local access (the global
/// byte costs a load through the GOT in every user crate: two instructions more).
///
/// It is kept current by [`refresh_flags`], which stores the new byte into every registered
/// copy after the global one, under the registry's lock; a thread registers its copy on its
/// first full-path acquisition ([`fast::UNREGISTERED`] until then) and unregisters it at thread
/// exit (the thread's slow state's destructor). So a copy is never staler than the global byte
/// is: a refresh has stored both before it returns, and a copy registered meanwhile reads the
/// global byte under the lock, after the refresh stored it or before the refresh walks the list.
pub(crate) struct ThreadSwitch {
    fast: AtomicU8,
    /// The next registered copy (the list is only read or changed under [`THREADS`]' lock).
    next: AtomicPtr<ThreadSwitch>,
}

/// The registered copies: a list through [`ThreadSwitch::next`] (no allocation, so that a
/// locking allocator cannot re-enter while the lock is held).
static THREADS: parking_lot::Mutex<SwitchList> = parking_lot::Mutex::new(SwitchList(ptr::null()));

struct SwitchList(*const ThreadSwitch);

// SAFETY: the pointers are only followed under `THREADS`' lock, and each points to a
// `ThreadSwitch` (atomics only) that stays valid while it is on the list (see
// `ThreadSwitch::register`).
unsafe impl Send for SwitchList {}

impl ThreadSwitch {
    /// A copy not registered yet.
    pub(crate) const fn new() -> ThreadSwitch {
        ThreadSwitch {
            fast: AtomicU8::new(fast::UNREGISTERED),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The fast path's byte as this thread's copy has it (see [`FAST`]).
    #[inline(always)]
    pub(crate) fn now(&self) -> u8 {
        self.fast.load(Ordering::Relaxed)
    }

    /// Whether [`ThreadSwitch::register`] was not called yet.
    #[inline(always)]
    pub(crate) fn unregistered(&self) -> bool {
        self.now() == fast::UNREGISTERED
    }

    /// Puts this copy on the list that [`refresh_flags`] updates, and sets it from the global
    /// byte. No allocation, no call-out: the caller may hold other state.
    ///
    /// # Safety
    /// `self` stays valid (a thread-local of the calling thread, without destructor) until
    /// [`ThreadSwitch::unregister`] has returned, which the caller guarantees to call before
    /// the memory goes away (the thread's slow state's destructor, at thread exit).
    pub(crate) unsafe fn register(&self) {
        let mut list = THREADS.lock();
        if !self.unregistered() {
            return;
        }
        self.next.store(list.0.cast_mut(), Ordering::Relaxed);
        list.0 = self;
        self.fast
            .store(FAST.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Takes this copy off the list (if on it); it then sends every acquisition the full way
    /// ([`fast::FULL`]: at thread exit, after the slow state is gone).
    pub(crate) fn unregister(&self) {
        let mut list = THREADS.lock();
        let me: *const ThreadSwitch = self;
        let after = self.next.load(Ordering::Relaxed);
        if list.0 == me {
            list.0 = after;
        } else {
            let mut p = list.0;
            while !p.is_null() {
                // SAFETY: on the list, hence valid (see `register`); under the lock.
                let node = unsafe { &*p };
                let next = node.next.load(Ordering::Relaxed);
                if next.cast_const() == me {
                    node.next.store(after, Ordering::Relaxed);
                    break;
                }
                p = next;
            }
        }
        self.fast.store(fast::FULL, Ordering::Relaxed);
    }
}

/// Stores the fast byte into every registered thread's copy (under [`REFRESH`]'s lock).
fn store_fast(b: u8) {
    FAST.store(b, Ordering::Relaxed);
    let list = THREADS.lock();
    let mut p = list.0;
    while !p.is_null() {
        // SAFETY: on the list, hence valid (see `ThreadSwitch::register`); under the lock.
        let node = unsafe { &*p };
        node.fast.store(b, Ordering::Relaxed);
        p = node.next.load(Ordering::Relaxed);
    }
}

/// How many threads' copies are registered (for tests: a thread that ended is not).
pub(crate) fn registered_switches() -> usize {
    let list = THREADS.lock();
    let (mut p, mut n) = (list.0, 0);
    while !p.is_null() {
        // SAFETY: as in `store_fast`.
        p = unsafe { &*p }.next.load(Ordering::Relaxed);
        n += 1;
    }
    n
}

/// Whether every registered thread's copy agrees with the global byte (for tests).
fn copies_match(b: u8) -> bool {
    let list = THREADS.lock();
    let mut p = list.0;
    while !p.is_null() {
        // SAFETY: as in `store_fast`.
        let node = unsafe { &*p };
        if node.now() != b {
            return false;
        }
        p = node.next.load(Ordering::Relaxed);
    }
    true
}

/// The [`fast`] value of a switches byte.
fn fast_of(f: u8) -> u8 {
    let slow = f & (flag::INIT | flag::CHECK | flag::SLOW);
    if slow == flag::INIT | flag::CHECK {
        fast::CHECKED
    } else if slow == flag::INIT | flag::CHECK | flag::RECORD {
        fast::RECORDING
    } else if f & (flag::INIT | flag::ACTIVE) == flag::INIT {
        fast::RAW
    } else {
        fast::FULL
    }
}

/// The switches (reads the environment on first use).
#[inline]
pub(crate) fn flags() -> u8 {
    let f = FLAGS.load(Ordering::Relaxed);
    if f & flag::INIT != 0 {
        f
    } else {
        init_flags()
    }
}

/// The switches as they are, in one load, for the acquisition fast path: [`flag::INIT`] is
/// clear until they were first computed (the fast path then defers to [`flags`]).
/// Also used on the release path, to test a switch that is off until a refresh turns it on
/// (recording's start refreshes).
#[inline(always)]
pub(crate) fn flags_now() -> u8 {
    FLAGS.load(Ordering::Relaxed)
}

#[cold]
fn init_flags() -> u8 {
    refresh_flags()
}

/// Serializes [`refresh_flags`]: two setters racing must not let the one that computed from older
/// switches store last. Whoever stores last computed after every switch stored before its own
/// refresh began (the lock orders the loads after those stores).
static REFRESH: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Recomputes [`flags`] after a switch changed. Every switch reads its environment variable
/// first (once), so that setting one switch from code never hides another's variable.
pub(crate) fn refresh_flags() -> u8 {
    // These may initialize a switch, which refreshes too: before taking the lock.
    let _ = action();
    let _ = order_checking();
    let _ = crate::checked::recorder::recording();
    let _ = crate::checked::watch::features();
    let _serial = REFRESH.lock();
    let f = compute_flags();
    let delay = REFRESH_DELAY_NS.swap(0, Ordering::Relaxed);
    if delay != 0 {
        std::thread::sleep(std::time::Duration::from_nanos(delay));
    }
    FLAGS.store(f, Ordering::Relaxed);
    store_fast(fast_of(f));
    f
}

/// A pause between computing and storing the next refresh, for the race test (0: none).
static REFRESH_DELAY_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Makes the next [`refresh_flags`] pause between computing and storing (for tests).
#[doc(hidden)]
pub fn delay_next_refresh(d: std::time::Duration) {
    REFRESH_DELAY_NS.store(d.as_nanos().max(1) as u64, Ordering::Relaxed);
}

/// Whether the fast path's byte, and every thread's copy of it, agree with the switches (for
/// tests).
#[doc(hidden)]
pub fn flags_match_switches() -> bool {
    let _serial = REFRESH.lock();
    let f = compute_flags();
    FLAGS.load(Ordering::Relaxed) == f
        && FAST.load(Ordering::Relaxed) == fast_of(f)
        && copies_match(fast_of(f))
}

fn compute_flags() -> u8 {
    let mut f = flag::INIT;
    if ACTION.load(Ordering::Relaxed) != encode(Action::Off) {
        f |= flag::CHECK;
    }
    if ORDER.load(Ordering::Relaxed) != 1 {
        f |= flag::ORDER;
    }
    if crate::checked::recorder::recording_now() {
        f |= flag::RECORD;
    }
    let w = crate::checked::watch::features_now();
    if w & crate::checked::watch::STATS != 0 {
        f |= flag::STATS;
    }
    if w & crate::checked::watch::WATCH != 0 {
        f |= flag::WATCH;
    }
    if w & crate::checked::watch::CONDVAR != 0 {
        f |= flag::CONDVAR;
    }
    f
}
