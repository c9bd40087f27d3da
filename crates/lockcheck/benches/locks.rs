//! lockcheck beside its peers, per lock operation, in one run (issue 5; figures in
//! `BENCHMARKS.md`).
//!
//! Contenders, all fed the same closures through [`BenchMutex`] / [`BenchRwLock`]:
//! - `parking_lot`: raw parking_lot 0.12, the baseline every ratio is taken against;
//! - `std`: `std::sync::Mutex` / `RwLock`;
//! - `lockcheck_plain`: `lockcheck::plain`, what release builds get (instrumentation compiled out);
//! - `lockcheck_checked`: `lockcheck::checked`, full lock-order checking, action `Panic`;
//! - `tracing_mutex`: `tracing_mutex::parkinglot::tracing` (always tracing, whatever the profile);
//! - `parking_lot_dd`: parking_lot 0.11 with `deadlock_detection` (a separate semver version so
//!   that the feature does not unify into the 0.12 baseline; see the dev-dependencies);
//! - `lockcheck_recording`: `lockcheck::checked` with trace recording on (to `/dev/null`), in JSON
//!   Lines (the default format);
//! - `lockcheck_recording_lct`: the same, in the binary `.lct` format (`LOCKCHECK_TRACE_FORMAT=lct`).
//!
//! Multi-thread rows use `iter_custom`: the threads are spawned once per sample, start together
//! at a barrier, each runs `iters` operations, and the time reported per operation is the wall
//! time between the two barriers divided by the total number of operations (`iters * threads`),
//! i.e. the inverse of the throughput of the whole machine.
//!
//! `LOCKCHECK_BACKTRACE=0` in the environment turns lockcheck's backtrace capture off for new
//! dependencies; the `new_edge` and `drop_nested` rows are then named `..._nobt` so that both
//! runs sit side by side in criterion's output.

use criterion::measurement::WallTime;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// A mutex under test: construction with a class name, and a critical section.
trait BenchMutex: Send + Sync + 'static {
    /// The contender's name in benchmark ids.
    const NAME: &'static str;
    /// A new mutex; `class` names its lock class where the contender has classes.
    fn new(class: &'static str) -> Self;
    /// Locks, runs `f` on the data, unlocks.
    fn with<R>(&self, f: impl FnOnce(&mut u64) -> R) -> R;
}

/// A reader-writer lock under test: a shared critical section.
trait BenchRwLock: Send + Sync + 'static {
    /// The contender's name in benchmark ids.
    const NAME: &'static str;
    /// A new lock; `class` names its lock class where the contender has classes.
    fn new(class: &'static str) -> Self;
    /// Read-locks, runs `f` on the data, unlocks.
    fn read_with<R>(&self, f: impl FnOnce(&u64) -> R) -> R;
}

/// Implements both traits for one contender whose `lock`/`read` return guards directly.
macro_rules! contender {
    ($name:literal, $mutex:ty, $rwlock:ty, |$class:ident| $new_m:expr, $new_rw:expr) => {
        impl BenchMutex for $mutex {
            const NAME: &'static str = $name;
            fn new($class: &'static str) -> Self {
                $new_m
            }
            #[inline]
            fn with<R>(&self, f: impl FnOnce(&mut u64) -> R) -> R {
                f(&mut self.lock())
            }
        }
        impl BenchRwLock for $rwlock {
            const NAME: &'static str = $name;
            fn new($class: &'static str) -> Self {
                $new_rw
            }
            #[inline]
            fn read_with<R>(&self, f: impl FnOnce(&u64) -> R) -> R {
                f(&self.read())
            }
        }
    };
}

contender!(
    "parking_lot",
    parking_lot::Mutex<u64>,
    parking_lot::RwLock<u64>,
    |_class| parking_lot::Mutex::new(0),
    parking_lot::RwLock::new(0)
);
contender!(
    "lockcheck_plain",
    lockcheck::plain::Mutex<u64>,
    lockcheck::plain::RwLock<u64>,
    |class| lockcheck::plain::Mutex::named(class, 0),
    lockcheck::plain::RwLock::named(class, 0)
);
contender!(
    "lockcheck_checked",
    lockcheck::checked::Mutex<u64>,
    lockcheck::checked::RwLock<u64>,
    |class| lockcheck::checked::Mutex::named(class, 0),
    lockcheck::checked::RwLock::named(class, 0)
);
contender!(
    "tracing_mutex",
    tracing_mutex::parkinglot::tracing::Mutex<u64>,
    tracing_mutex::parkinglot::tracing::RwLock<u64>,
    |_class| tracing_mutex::parkinglot::tracing::Mutex::new(0),
    tracing_mutex::parkinglot::tracing::RwLock::new(0)
);
contender!(
    "parking_lot_dd",
    parking_lot_dd::Mutex<u64>,
    parking_lot_dd::RwLock<u64>,
    |_class| parking_lot_dd::Mutex::new(0),
    parking_lot_dd::RwLock::new(0)
);

/// `lockcheck::checked::Mutex` while a trace is being recorded (see [`recording`]).
struct Recorded(lockcheck::checked::Mutex<u64>);

impl BenchMutex for Recorded {
    const NAME: &'static str = "lockcheck_recording";
    fn new(class: &'static str) -> Self {
        Recorded(lockcheck::checked::Mutex::named(class, 0))
    }
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut u64) -> R) -> R {
        f(&mut self.0.lock())
    }
}

/// [`Recorded`], with the trace written in the binary `.lct` format (see [`recording_lct`]).
struct RecordedLct(lockcheck::checked::Mutex<u64>);

impl BenchMutex for RecordedLct {
    const NAME: &'static str = "lockcheck_recording_lct";
    fn new(class: &'static str) -> Self {
        RecordedLct(lockcheck::checked::Mutex::named(class, 0))
    }
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut u64) -> R) -> R {
        f(&mut self.0.lock())
    }
}

/// Runs `f` with trace recording on, in JSON Lines. The trace goes to `/dev/null`: the rows
/// measure what the locking threads pay (buffering, and the background writer's formatting
/// competing for the two cores), not the disk, and a multi-gigabyte trace per row would fill it.
fn recording(f: impl FnOnce()) {
    lockcheck::record::start("/dev/null").expect("start recording");
    f();
    lockcheck::record::stop().expect("stop recording");
}

/// [`recording`] in the binary `.lct` format: `/dev/null` has no `.lct` extension, so the format
/// is asked for by `LOCKCHECK_TRACE_FORMAT` (read when the recording starts).
fn recording_lct(f: impl FnOnce()) {
    std::env::set_var("LOCKCHECK_TRACE_FORMAT", "lct");
    let started = lockcheck::record::start("/dev/null");
    std::env::remove_var("LOCKCHECK_TRACE_FORMAT");
    started.expect("start recording");
    f();
    lockcheck::record::stop().expect("stop recording");
}

impl BenchMutex for std::sync::Mutex<u64> {
    const NAME: &'static str = "std";
    fn new(_class: &'static str) -> Self {
        std::sync::Mutex::new(0)
    }
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut u64) -> R) -> R {
        f(&mut self.lock().expect("not poisoned"))
    }
}

impl BenchRwLock for std::sync::RwLock<u64> {
    const NAME: &'static str = "std";
    fn new(_class: &'static str) -> Self {
        std::sync::RwLock::new(0)
    }
    #[inline]
    fn read_with<R>(&self, f: impl FnOnce(&u64) -> R) -> R {
        f(&self.read().expect("not poisoned"))
    }
}

/// One pair of locks, always taken A then B. Aligned to 128 bytes (two cache lines, for the
/// adjacent-line prefetcher) so that the pairs of different threads never share a line: without
/// it, consecutive `Arc`s of small pairs land in one line and the "own pair" rows measure false
/// sharing instead of the locks.
#[repr(align(128))]
struct Pair<M> {
    a: M,
    b: M,
}

/// Instrumented pairs (checked, recording) created so far, for the memory line printed at the end.
static PAIRS: AtomicU64 = AtomicU64::new(0);

impl<M: BenchMutex> Pair<M> {
    fn new() -> Self {
        Self::with_classes("bench.a", "bench.b")
    }

    /// A pair whose locks are in the classes `a` and `b` (named where the contender names them).
    fn with_classes(a: &'static str, b: &'static str) -> Self {
        if M::NAME.starts_with("lockcheck_checked") || M::NAME.starts_with("lockcheck_recording") {
            PAIRS.fetch_add(1, Ordering::Relaxed);
        }
        Pair {
            a: M::new(a),
            b: M::new(b),
        }
    }

    /// Takes A, then B while holding A.
    #[inline]
    fn nested(&self) {
        self.a.with(|_| self.b.with(|x| *x += 1));
    }

    /// Takes each lock alone once, so that a contender that assigns identities lazily has done
    /// so before the pair is nested (the `new_edge` row measures the edge, not the first use).
    fn touch(&self) {
        self.a.with(|x| *x += 1);
        self.b.with(|x| *x += 1);
    }
}

/// Runs `threads` threads, each doing `iters` times `op` on its own state from `state(i)`.
/// Returns the wall time per operation, times `iters` (what `iter_custom` wants).
fn run_threads<S: Send + 'static>(
    threads: usize,
    iters: u64,
    state: impl Fn(usize) -> S,
    op: fn(&S),
) -> Duration {
    let start = Arc::new(Barrier::new(threads + 1));
    let end = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let s = state(i);
            let (start, end) = (Arc::clone(&start), Arc::clone(&end));
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..iters {
                    op(&s);
                }
                end.wait();
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    end.wait();
    let elapsed = t0.elapsed();
    for h in handles {
        h.join().expect("bench thread");
    }
    elapsed / threads as u32
}

/// The suffix of rows whose cost depends on lockcheck's backtrace capture.
fn bt_suffix() -> &'static str {
    match std::env::var("LOCKCHECK_BACKTRACE").as_deref() {
        Ok("0") | Ok("off") => "_nobt",
        _ => "",
    }
}

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// 1 thread: lock, increment, unlock.
fn lock_unlock<M: BenchMutex>(g: &mut Group<'_>) {
    let m = M::new("bench.single");
    g.bench_function(M::NAME, |b| b.iter(|| black_box(&m).with(|x| *x += 1)));
}

/// 1 thread: A then B, the edge already known.
fn nested_known<M: BenchMutex>(g: &mut Group<'_>) {
    let p = Pair::<M>::new();
    p.nested();
    g.bench_function(M::NAME, |b| b.iter(|| black_box(&p).nested()));
}

/// `threads` threads, each nesting its own pair (nothing shared but the code).
fn nested_own_pair<M: BenchMutex>(g: &mut Group<'_>, threads: usize) {
    let pairs: Vec<Arc<Pair<M>>> = (0..threads).map(|_| Arc::new(Pair::new())).collect();
    g.bench_function(M::NAME, |b| {
        b.iter_custom(|iters| {
            run_threads(threads, iters, |i| Arc::clone(&pairs[i]), |p| p.nested())
        });
    });
}

/// `threads` threads nesting one shared pair, always A then B (contended, no inversion).
fn nested_shared_pair<M: BenchMutex>(g: &mut Group<'_>, threads: usize) {
    let shared = Arc::new(Pair::<M>::new());
    g.bench_function(M::NAME, |b| {
        b.iter_custom(|iters| run_threads(threads, iters, |_| Arc::clone(&shared), |p| p.nested()));
    });
}

/// 1 thread: a pair never nested before (fresh locks, each already used alone once).
fn new_edge<M: BenchMutex>(g: &mut Group<'_>) {
    g.bench_function(format!("{}{}", M::NAME, bt_suffix()), |b| {
        b.iter_batched(
            || {
                let p = Pair::<M>::new();
                p.touch();
                p
            },
            |p| {
                p.nested();
                p // dropped after the timing
            },
            // At most 64 pairs alive at once: the row measures one new edge, not a class edge
            // with thousands of live variants (`SmallInput` kept over 4,096 pairs alive, so each
            // new edge scanned the class edge's variants, and the edge's variant bound was hit).
            BatchSize::NumIterations(64),
        );
    });
}

/// 1 thread: like [`new_edge`], but both locks are in one class, so that the edge is new at the
/// instance level and lockcheck, which records the first acquisition of an edge that is new at
/// some level, captures a backtrace every time (in `new_edge` only the first pair's class edge
/// was new: later pairs capture none).
fn new_edge_bt<M: BenchMutex>(g: &mut Group<'_>) {
    g.bench_function(format!("{}{}", M::NAME, bt_suffix()), |b| {
        b.iter_batched(
            || {
                let p = Pair::<M>::with_classes("bench.same", "bench.same");
                p.touch();
                p
            },
            |p| {
                p.nested();
                p // dropped after the timing
            },
            BatchSize::NumIterations(64),
        );
    });
}

/// 1 thread: dropping a pair that was nested (its instances leave lockcheck's graph).
///
/// Batches of 64 pairs, as in `new_edge`: with criterion's `SmallInput` a batch is a tenth of a
/// sample's iterations, and once a nested pair cost under about 1 us that was more than 4,096
/// pairs alive at once, each its own variant of the class edge `bench.a -> bench.b`: before
/// round 9 the reported `edge-variants` bound (now one group of the class edge), and in any case
/// not the cost of a drop.
fn drop_nested<M: BenchMutex>(g: &mut Group<'_>) {
    g.bench_function(format!("{}{}", M::NAME, bt_suffix()), |b| {
        b.iter_batched(
            || {
                let p = Pair::<M>::new();
                p.nested();
                p
            },
            drop,
            BatchSize::NumIterations(64),
        );
    });
}

/// 1 thread: read-lock, read, unlock.
fn read_unlock<L: BenchRwLock>(g: &mut Group<'_>) {
    let l = L::new("bench.rw");
    g.bench_function(L::NAME, |b| {
        b.iter(|| black_box(&l).read_with(|x| black_box(*x)))
    });
}

/// A group with the suite's settings: short enough that the suite runs in a few minutes.
fn group<'a>(c: &'a mut Criterion, name: &str) -> Group<'a> {
    let mut g = c.benchmark_group(name);
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

/// Runs one row for every contender, one after the other (row-major, so that a change of load
/// on the machine hits a row's contenders alike rather than one contender's rows).
macro_rules! row {
    ($c:expr, $row:literal, $f:ident $(, $arg:expr)?) => {{
        let mut g = group($c, $row);
        $f::<parking_lot::Mutex<u64>>(&mut g $(, $arg)?);
        $f::<std::sync::Mutex<u64>>(&mut g $(, $arg)?);
        $f::<lockcheck::plain::Mutex<u64>>(&mut g $(, $arg)?);
        $f::<lockcheck::checked::Mutex<u64>>(&mut g $(, $arg)?);
        $f::<tracing_mutex::parkinglot::tracing::Mutex<u64>>(&mut g $(, $arg)?);
        $f::<parking_lot_dd::Mutex<u64>>(&mut g $(, $arg)?);
        recording(|| $f::<Recorded>(&mut g $(, $arg)?));
        recording_lct(|| $f::<RecordedLct>(&mut g $(, $arg)?));
        g.finish();
    }};
}

fn benches(c: &mut Criterion) {
    lockcheck::set_action(lockcheck::Action::Panic);
    row!(c, "lock_unlock_1t", lock_unlock);
    row!(c, "nested_known_1t", nested_known);
    row!(c, "nested_own_pair_2t", nested_own_pair, 2);
    row!(c, "nested_own_pair_8t", nested_own_pair, 8);
    row!(c, "nested_shared_pair_8t", nested_shared_pair, 8);
    row!(c, "new_edge", new_edge);
    row!(c, "new_edge_bt", new_edge_bt);
    row!(c, "drop_nested", drop_nested);

    let mut g = group(c, "read_unlock_1t");
    read_unlock::<parking_lot::RwLock<u64>>(&mut g);
    read_unlock::<std::sync::RwLock<u64>>(&mut g);
    read_unlock::<lockcheck::plain::RwLock<u64>>(&mut g);
    read_unlock::<lockcheck::checked::RwLock<u64>>(&mut g);
    read_unlock::<tracing_mutex::parkinglot::tracing::RwLock<u64>>(&mut g);
    read_unlock::<parking_lot_dd::RwLock<u64>>(&mut g);
    g.finish();

    // Dropped instances left the graph: what remains is bounded by the live locks and classes.
    let (inst, inst_edges, classes, class_edges) = lockcheck::__private::graph_sizes();
    eprintln!(
        "lockcheck graph after the run ({} instrumented lock pairs created, nested and dropped): \
         {inst} instance nodes, {inst_edges} instance edges, {classes} class nodes, \
         {class_edges} class edges",
        PAIRS.load(Ordering::Relaxed)
    );
    let violations = lockcheck::violations();
    assert!(
        violations.is_empty(),
        "no violation may happen, got {}:\n{violations:#?}",
        violations.len()
    );
}

criterion_group!(locks, benches);
criterion_main!(locks);
