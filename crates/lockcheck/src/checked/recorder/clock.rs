//! The recorder's clock: one cheap read per record on the acquiring thread, converted to
//! nanoseconds by the writer thread.
//!
//! On x86_64 with an invariant TSC (constant rate, running in every power state: CPUID leaf
//! 0x8000_0007, EDX bit 8) a read is one `rdtsc`: no system call, no vDSO page, about 10 ns,
//! against 20 to 25 ns for `Instant::now` and twice that where the kernel's clock source is not the
//! TSC. The intrinsic is in `core`, so no crate is needed (a clock crate would add a dependency to
//! every user's build for two instructions). Elsewhere, and on a TSC that may drift, a read is
//! `Instant::now` in nanoseconds since the recording's anchor.
//!
//! `LOCKCHECK_TRACE_HOLD_TIMES=0` (read when a recording starts) turns the readings off: a read
//! is then 0, releases carry no hold time (`hold_ns` 0, "unmeasured" in the format) and the
//! per-class hold statistics stay 0. It exists because a read is not cheap in time even as one
//! instruction: `rdtsc` is microcoded, about 9 to 17 ns of CPU per read on this project's AMD
//! machine (BENCHMARKS.md, "Round 6: recording"), and a recorded nested pair takes four.
//!
//! The conversion is calibrated by the writer, not at start: it pairs an `Instant` with a tick
//! count when recording starts and again at each pass, and scales by the ratio over the whole
//! recording so far. Only durations (hold times) are converted, so the ratio is all it needs,
//! and its error shrinks as the recording runs (the two reads of a pair are a few nanoseconds apart,
//! over an interval of milliseconds at least once the first pass ran).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// 0: not decided yet, 1: the TSC, 2: `Instant`, 3: no readings (`LOCKCHECK_TRACE_HOLD_TIMES=0`).
static SOURCE: AtomicU8 = AtomicU8::new(0);
const TSC: u8 = 1;
const INSTANT: u8 = 2;
const NONE: u8 = 3;

/// The origin of the `Instant` fallback's readings.
fn anchor() -> Instant {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    *ANCHOR.get_or_init(Instant::now)
}

/// Chooses the source (called when a recording starts, before any record is taken): the
/// hardware's answer is looked up once, `LOCKCHECK_TRACE_HOLD_TIMES` at every start.
pub(super) fn init() {
    static HARDWARE: OnceLock<u8> = OnceLock::new();
    let hardware = *HARDWARE.get_or_init(|| {
        anchor();
        if tsc_invariant() {
            TSC
        } else {
            INSTANT
        }
    });
    let off = std::env::var_os("LOCKCHECK_TRACE_HOLD_TIMES").is_some_and(|v| v == "0");
    SOURCE.store(if off { NONE } else { hardware }, Ordering::Relaxed);
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

/// A reading, in ticks of the chosen source.
#[inline(always)]
pub(super) fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if SOURCE.load(Ordering::Relaxed) == TSC {
        // SAFETY: `rdtsc` exists on every x86_64 processor and only reads the counter.
        return unsafe { core::arch::x86_64::_rdtsc() };
    }
    now_other()
}

#[cold]
fn now_other() -> u64 {
    if SOURCE.load(Ordering::Relaxed) == NONE {
        return 0;
    }
    anchor().elapsed().as_nanos() as u64
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
            // Until the first pass: 1 ns per tick for `Instant`, and a 3 GHz guess for the TSC
            // (replaced as soon as any time has passed).
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

    /// Nanoseconds between two readings (0 if `later` is not later).
    pub(super) fn ns(&self, earlier: u64, later: u64) -> u64 {
        let d = later.saturating_sub(earlier);
        ((u128::from(d) * u128::from(self.ns_per_tick)) >> 32) as u64
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
        assert!(
            (15_000_000..200_000_000).contains(&ns),
            "{ns} ns for a 20 ms sleep"
        );
        assert_eq!(s.ns(t1, t0), 0, "never negative");
    }
}
