//! The recorder's clock: one cheap read per acquisition and per release on the acquiring thread,
//! turned into hold times by the writer thread.
//!
//! Three sources, chosen by `LOCKCHECK_TRACE_HOLD_TIMES` when a recording starts:
//!
//! - **coarse** (the default, on Linux): `CLOCK_MONOTONIC_COARSE` through the vDSO, the time of the
//!   kernel's last tick: no system call, no `rdtsc`, a few loads of the vDSO page. Its step is the
//!   tick (`clock_getres`: 4 ms at `HZ=250`), declared in the trace's header
//!   (`hold_resolution_ns`), so a hold is known to within one step: a hold shorter than a step is
//!   written as 0 or one step, a long one to within a step, and the sum of many holds is right on
//!   average (a hold of H ns covers a tick with probability H / step). Hold times feed the
//!   analyzer's timeout advice, which matters for long holds, and the analyzer says the resolution
//!   and never suggests a timeout below what it supports. The kernel advances this clock from its
//!   timer interrupt whatever lockcheck's threads are doing, so it is never stale by more than a
//!   tick (a tick word advanced by lockcheck's own writer thread would be as cheap to read but
//!   stale for as long as that thread is descheduled: docs/benchmarks-history.md "Round 7: recording").
//! - **precise** (`precise`, and where there is no coarse clock): on x86_64 with an invariant TSC
//!   (constant rate, running in every power state: CPUID leaf 0x8000_0007, EDX bit 8) one `rdtsc`
//!   (`core`, no crate), else `Instant` in nanoseconds since the recording's anchor. `rdtsc` is one
//!   instruction but microcoded on AMD processors: about 9 ns quiet (17 to 22 ns under load) on
//!   this project's machine, against about 3 ns (8 to 10 ns under load) for the coarse clock, and a
//!   recorded nested pair takes four readings.
//! - **none** (`0`): no readings; releases carry `hold_ns` 0 ("unmeasured") and the per-class hold
//!   statistics stay 0.
//!
//! On Linux a reading is one call of the source's reader, chosen when the recording starts (libc's
//! `clock_gettime` itself for the coarse clock; a small function with its signature for the
//! others, so `rdtsc` is then behind a call too), with no test of the source per reading.
//!
//! Wait times do not come from here: the hooks measure them with `Instant`, and only on the
//! contended path, so they are always precise.
//!
//! The TSC's conversion is calibrated by the writer, not at start: it pairs an `Instant` with a tick
//! count when recording starts and again at each pass, and scales by the ratio over the whole
//! recording so far. Only durations (hold times) are converted, so the ratio is all it needs,
//! and its error shrinks as the recording runs (the two reads of a pair are a few nanoseconds apart,
//! over an interval of milliseconds at least once the first pass ran). The other sources read
//! nanoseconds already.

#[cfg(target_os = "linux")]
use std::sync::atomic::AtomicPtr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// 0: not decided yet, else one of the sources below.
static SOURCE: AtomicU8 = AtomicU8::new(0);
/// `CLOCK_MONOTONIC_COARSE`, in nanoseconds.
const COARSE: u8 = 1;
/// The TSC, in ticks.
const TSC: u8 = 2;
/// `Instant` since [`anchor`], in nanoseconds.
const INSTANT: u8 = 3;
/// No readings (`LOCKCHECK_TRACE_HOLD_TIMES=0`).
const NONE: u8 = 4;

/// The coarse clock's step in nanoseconds, when it is the source (0 otherwise).
static RESOLUTION_NS: AtomicU64 = AtomicU64::new(0);

/// A coarse clock whose step is above this (100 ms) is not used: hold times would say too little.
const MAX_RESOLUTION_NS: u64 = 100_000_000;

/// The origin of the `Instant` fallback's readings.
fn anchor() -> Instant {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    *ANCHOR.get_or_init(Instant::now)
}

/// What `LOCKCHECK_TRACE_HOLD_TIMES` asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wanted {
    Coarse,
    Precise,
    None,
}

fn wanted() -> Wanted {
    match std::env::var("LOCKCHECK_TRACE_HOLD_TIMES") {
        Err(_) => Wanted::Coarse,
        Ok(v) => match v.trim() {
            "" | "coarse" | "1" => Wanted::Coarse,
            "precise" => Wanted::Precise,
            "0" | "off" => Wanted::None,
            other => {
                crate::checked::notice::say(format_args!(
                    "lockcheck: LOCKCHECK_TRACE_HOLD_TIMES={other:?} is not one of coarse, precise, 0: \
                     recording hold times from the coarse clock (the default)"
                ));
                Wanted::Coarse
            }
        },
    }
}

/// Chooses the source (called when a recording starts, before any record is taken): the
/// hardware's answers are looked up once, `LOCKCHECK_TRACE_HOLD_TIMES` at every start.
pub(super) fn init() {
    static PRECISE: OnceLock<u8> = OnceLock::new();
    static COARSE_STEP: OnceLock<u64> = OnceLock::new();
    let precise = *PRECISE.get_or_init(|| {
        anchor();
        if tsc_invariant() {
            TSC
        } else {
            INSTANT
        }
    });
    let step = *COARSE_STEP.get_or_init(coarse_resolution_ns);
    let (source, resolution) = match wanted() {
        Wanted::None => (NONE, 0),
        Wanted::Coarse if step > 0 => (COARSE, step),
        Wanted::Coarse | Wanted::Precise => (precise, 0),
    };
    RESOLUTION_NS.store(resolution, Ordering::Relaxed);
    SOURCE.store(source, Ordering::Relaxed);
    #[cfg(target_os = "linux")]
    READ.store(reader_of(source), Ordering::Relaxed);
}

/// The resolution of the hold times being recorded, in nanoseconds: the coarse clock's step, or 0
/// when they are precise (or not measured). Written in the trace's header.
pub(super) fn hold_resolution_ns() -> u64 {
    RESOLUTION_NS.load(Ordering::Relaxed)
}

#[cfg(target_arch = "x86_64")]
fn tsc_invariant() -> bool {
    use core::arch::x86_64::__cpuid;
    // `cpuid` exists on every x86_64 processor; leaf 0x8000_0000 gives the highest extended
    // leaf, so 0x8000_0007 is only read where it exists.
    if __cpuid(0x8000_0000).eax < 0x8000_0007 {
        return false;
    }
    __cpuid(0x8000_0007).edx & (1 << 8) != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn tsc_invariant() -> bool {
    false
}

/// The coarse clock's step in nanoseconds, 0 where there is no usable one.
#[cfg(target_os = "linux")]
fn coarse_resolution_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_getres` writes the `timespec` it is given.
    if unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } != 0 {
        return 0;
    }
    let ns = (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64);
    // A reading must work too (it is not checked per read).
    if ns == 0 || ns > MAX_RESOLUTION_NS || coarse_now().is_none() {
        return 0;
    }
    ns
}

#[cfg(not(target_os = "linux"))]
fn coarse_resolution_ns() -> u64 {
    0
}

/// `CLOCK_MONOTONIC_COARSE` in nanoseconds.
#[cfg(target_os = "linux")]
fn coarse_now() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes the `timespec` it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } != 0 {
        return None;
    }
    Some(coarse_ns(&ts))
}

#[cfg(target_os = "linux")]
#[inline(always)]
fn coarse_ns(ts: &libc::timespec) -> u64 {
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// The reading function of the chosen source, with `clock_gettime`'s signature: libc's own
/// `clock_gettime` for the coarse clock (called with [`CLOCK_ID`]), else one of the functions
/// below, which write their ticks as nanoseconds of a zero second. Chosen by [`init`] before any
/// record is taken, so that a reading calls it without testing the source first (three
/// instructions per reading, four readings per recorded nested pair). Before the first `init`:
/// [`read_none`].
#[cfg(target_os = "linux")]
static READ: AtomicPtr<()> = AtomicPtr::new(read_none as *mut ());

/// `clock_gettime`'s signature (`libc::clock_gettime` and the readers below).
#[cfg(target_os = "linux")]
type ReadFn = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int;

/// The clock [`READ`] is called with: only `clock_gettime` looks at it.
#[cfg(target_os = "linux")]
const CLOCK_ID: libc::clockid_t = libc::CLOCK_MONOTONIC_COARSE;

/// [`READ`] of the TSC: the counter as nanoseconds of a zero second (below 2^63, so
/// `coarse_ns` gives it back unchanged).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
unsafe extern "C" fn read_tsc(_: libc::clockid_t, ts: *mut libc::timespec) -> libc::c_int {
    // SAFETY: `rdtsc` exists on every x86_64 processor and only reads the counter; `ts` is the
    // caller's `timespec` (see `now`).
    unsafe {
        (*ts).tv_nsec = core::arch::x86_64::_rdtsc() as libc::c_long;
    }
    0
}

/// [`READ`] of `Instant` since [`anchor`], as seconds and nanoseconds (a `c_long` of nanoseconds
/// alone would wrap after about 2 s where it has 32 bits).
#[cfg(target_os = "linux")]
unsafe extern "C" fn read_instant(_: libc::clockid_t, ts: *mut libc::timespec) -> libc::c_int {
    let d = anchor().elapsed();
    // SAFETY: `ts` is the caller's `timespec` (see `now`).
    unsafe {
        (*ts).tv_sec = d.as_secs() as libc::time_t;
        (*ts).tv_nsec = d.subsec_nanos() as libc::c_long;
    }
    0
}

/// [`READ`] when no readings are wanted: the `timespec` stays zero, a reading of 0.
#[cfg(target_os = "linux")]
unsafe extern "C" fn read_none(_: libc::clockid_t, _: *mut libc::timespec) -> libc::c_int {
    0
}

/// [`READ`]'s function for a source.
#[cfg(target_os = "linux")]
fn reader_of(source: u8) -> *mut () {
    let f: ReadFn = match source {
        COARSE => libc::clock_gettime,
        #[cfg(target_arch = "x86_64")]
        TSC => read_tsc,
        INSTANT => read_instant,
        _ => read_none,
    };
    f as *mut ()
}

/// A reading, in ticks of the chosen source (nanoseconds but for the TSC): one call of the
/// chosen reader, without a test of the source nor of the result: 0 when the reading fails (the
/// `timespec` starts at 0 and a failing `clock_gettime` does not write it), which
/// `clock_getres` and a first reading ruled out when the coarse clock was chosen; a hold with a
/// reading of 0 at either end is written as 0 ("unmeasured", see `Scale::ns`), never as
/// garbage.
#[cfg(target_os = "linux")]
#[inline(always)]
pub(super) fn now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `READ` only ever holds a `ReadFn` (see `reader_of`, and its initial value); each
    // writes at most the `timespec` it is given. With the coarse clock (which the kernel has:
    // checked by `clock_getres` before it is chosen) `clock_gettime` goes through the vDSO, no
    // system call.
    unsafe {
        let read: ReadFn = std::mem::transmute::<*mut (), ReadFn>(READ.load(Ordering::Relaxed));
        read(CLOCK_ID, &mut ts);
    }
    coarse_ns(&ts)
}

/// A reading, in ticks of the chosen source (nanoseconds but for the TSC).
#[cfg(not(target_os = "linux"))]
#[inline(always)]
pub(super) fn now() -> u64 {
    let source = SOURCE.load(Ordering::Relaxed);
    #[cfg(target_arch = "x86_64")]
    if source == TSC {
        // SAFETY: `rdtsc` exists on every x86_64 processor and only reads the counter.
        return unsafe { core::arch::x86_64::_rdtsc() };
    }
    now_other(source)
}

#[cfg(not(target_os = "linux"))]
#[cold]
fn now_other(source: u8) -> u64 {
    if source == INSTANT {
        anchor().elapsed().as_nanos() as u64
    } else {
        0
    }
}

/// Converts tick differences to nanoseconds: the writer's calibration.
pub(super) struct Scale {
    start_ticks: u64,
    start: Instant,
    /// Nanoseconds per tick, in 32.32 fixed point.
    ns_per_tick: u64,
}

impl Scale {
    /// Starts a calibration now (when the recording starts).
    pub(super) fn new() -> Scale {
        init();
        let tsc = SOURCE.load(Ordering::Relaxed) == TSC;
        Scale {
            start_ticks: now(),
            start: Instant::now(),
            // Until the first pass: 1 ns per tick for the sources in nanoseconds, and a 3 GHz
            // guess for the TSC (replaced as soon as any time has passed).
            ns_per_tick: if tsc { (1u64 << 32) / 3 } else { 1 << 32 },
        }
    }

    /// Refines the ratio with the time elapsed since the start (called once per writer pass).
    pub(super) fn calibrate(&mut self) {
        if SOURCE.load(Ordering::Relaxed) != TSC {
            return;
        }
        let ns = self.start.elapsed().as_nanos() as u64;
        let ticks = now().wrapping_sub(self.start_ticks);
        // Below 100 µs the two reads' own distance would weigh in the ratio.
        if ns >= 100_000 && ticks > 0 {
            self.ns_per_tick = ((u128::from(ns) << 32) / u128::from(ticks)) as u64;
        }
    }

    /// Nanoseconds per tick, in 32.32 fixed point (`.lct` version 3's `clock` record).
    pub(super) fn ns_per_tick(&self) -> u64 {
        self.ns_per_tick
    }

    /// Nanoseconds between two readings (0 if `later` is not later, or if `earlier` is 0: no
    /// reading, see [`now`]).
    pub(super) fn ns(&self, earlier: u64, later: u64) -> u64 {
        lockcheck_core::lct::raw::ticks_to_ns(self.ns_per_tick, earlier, later)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_convert_to_about_the_right_nanoseconds() {
        let mut s = Scale::new();
        let t0 = now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let t1 = now();
        s.calibrate();
        let ns = s.ns(t0, t1);
        let step = hold_resolution_ns();
        assert!(
            (15_000_000u64.saturating_sub(step)..200_000_000 + step).contains(&ns),
            "{ns} ns for a 20 ms sleep (resolution {step} ns)"
        );
        assert_eq!(s.ns(t1, t0), 0, "never negative");
        assert_eq!(
            s.ns(0, t1),
            0,
            "no reading at the start: unmeasured, not garbage"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_coarse_clock_steps_by_its_declared_resolution() {
        let step = coarse_resolution_ns();
        assert!(step > 0 && step <= MAX_RESOLUTION_NS, "{step}");
        // Two readings a sleep of 5 steps apart differ by 4 to 6 steps (the sleep may overrun:
        // bounded above loosely).
        let a = coarse_now().unwrap();
        std::thread::sleep(std::time::Duration::from_nanos(5 * step));
        let b = coarse_now().unwrap();
        assert!(
            b - a >= 4 * step && b - a < 50 * step,
            "{a} -> {b}, step {step}"
        );
    }
}
