//! What happens on a violation: `LOCKCHECK=panic|warn|off`, or [`set_action`] from code.

use std::sync::atomic::{AtomicU8, Ordering};

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
                eprintln!("lockcheck: ignoring LOCKCHECK={other:?} (expected panic, warn or off)");
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
    /// Any of the above: bookkeeping is needed at all.
    pub const ACTIVE: u8 = CHECK | RECORD | STATS | WATCH;
    /// Acquisitions are timed with `Instant` in the hooks (hold and wait times for statistics
    /// and the watchdog). Recording is not among them: it stamps its records with its own cheaper
    /// clock (`checked::recorder`).
    pub const TIMED: u8 = STATS | WATCH;
    /// Anything that takes the full path: recording, statistics, the watchdog.
    pub const SLOW: u8 = RECORD | STATS | WATCH;
    pub(crate) const INIT: u8 = 128;
}

static FLAGS: AtomicU8 = AtomicU8::new(0);

/// What the acquisition fast path may do, decided once per switch change ([`refresh_flags`]) so
/// that an acquisition tests one byte: [`fast::CHECKED`], [`fast::RAW`], [`fast::RECORDING`] or
/// [`fast::FULL`] (also before the switches were first computed).
static FAST: AtomicU8 = AtomicU8::new(fast::FULL);

/// Values of [`fast_now`].
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
    /// checking off.
    pub const FULL: u8 = 1;
    /// Checking on and a trace recorded, nothing counted or watched: the fast cases (nothing
    /// held; the exact dependency known) still take a fast way, out of line, which writes the
    /// same records as the full path (`hooks::lock_recorded`).
    pub const RECORDING: u8 = 2;
}

/// The fast path's byte (see [`fast`]): one load, no initialisation test ([`fast::FULL`] until
/// the switches were first computed, which sends the acquisition the full way, where [`flags`]
/// computes them).
#[inline(always)]
pub(crate) fn fast_now() -> u8 {
    FAST.load(Ordering::Relaxed)
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
    FAST.store(fast_of(f), Ordering::Relaxed);
    f
}

/// A pause between computing and storing the next refresh, for the race test (0: none).
static REFRESH_DELAY_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Makes the next [`refresh_flags`] pause between computing and storing (for tests).
#[doc(hidden)]
pub fn delay_next_refresh(d: std::time::Duration) {
    REFRESH_DELAY_NS.store(d.as_nanos().max(1) as u64, Ordering::Relaxed);
}

/// Whether the fast path's byte agrees with the switches (for tests).
#[doc(hidden)]
pub fn flags_match_switches() -> bool {
    let _serial = REFRESH.lock();
    let f = compute_flags();
    FLAGS.load(Ordering::Relaxed) == f && FAST.load(Ordering::Relaxed) == fast_of(f)
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
    f
}
