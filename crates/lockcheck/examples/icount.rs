//! The workload behind `benches/icount.sh`: one lock scenario, repeated a given number of times,
//! so that callgrind can count the instructions of one operation.
//!
//! ```text
//! icount <scenario> <iterations>
//! ```
//!
//! `benches/icount.sh` runs every scenario twice under `valgrind --tool=callgrind`, with `N` and
//! `2N` iterations, and divides the difference of the two totals by `N`: start-up, thread-local
//! set-up and the first (cold) acquisition cancel out, and what is left is the steady-state cost
//! of one operation. Instruction counts do not depend on the machine's load, unlike timings.

use std::hint::black_box;

/// The scenarios: contender and operation.
const SCENARIOS: &[&str] = &[
    "parking_lot/lock",
    "plain/lock",
    "checked/lock",
    "parking_lot/pair",
    "plain/pair",
    "checked/pair",
    "parking_lot/read",
    "checked/read",
    "checked_recording/pair",
    "checked_recording_lct/pair",
    // A `try_lock` that fails (another thread holds the lock), recorded: a spin's cost per
    // failure (a streak is one record, counted in place: recording round 15).
    "checked_recording/try_spin",
    "checked_recording_lct/try_spin",
    // Two threads, each nesting its own pair `iterations` times (the bench's
    // `nested_own_pair_2t`): one iteration is two pairs, one per thread. With
    // `ICOUNT_THREAD_CPU` set, each thread's CPU time, the process's and the wall time.
    "parking_lot/pair2t",
    "checked/pair2t",
    "checked_recording_lct/pair2t",
    "checked_off/lock",
    "checked_off/pair",
    "checked_off/read",
    // Feature `tokio` only: one task of a current-thread runtime, locking in a loop; `raw_tokio`
    // is `tokio::sync::Mutex`, `tokio` is `lockcheck::tokio::Mutex` in a task started with
    // `tokio::spawn`, `tokio_spawned` the same in a task started with `lockcheck::tokio::spawn`.
    "raw_tokio/lock",
    "tokio/lock",
    "tokio_spawned/lock",
    "raw_tokio/pair",
    "tokio/pair",
    "tokio_spawned/pair",
    // Feature `tokio` only: `checked/pair` inside one task of a current-thread runtime, recorded
    // (to /dev/null): a task's nested sync acquisition, shown in the task's stream once.
    "checked_recording_in_task/pair",
    "checked/new_edge_bt",
    "checked_nobt/new_edge_bt",
    "checked_nobt/new_class_edge",
    // The same with backtraces on (the default): the class edge is known, so none is captured.
    "checked/new_class_edge",
    // The same after the bench's earlier rows on that class edge (threads spawned per sample,
    // each nesting its own or a shared pair): what the full bench's `new_edge` row meets.
    "checked/new_class_edge_after_threads",
];

fn lock_loop<M>(new: impl Fn() -> M, lock: impl Fn(&M), iters: u64) {
    let m = new();
    for _ in 0..iters {
        lock(black_box(&m));
    }
}

fn pair_loop<M>(new: impl Fn() -> M, pair: impl Fn(&M, &M), iters: u64) {
    let (a, b) = (new(), new());
    for _ in 0..iters {
        pair(black_box(&a), black_box(&b));
    }
}

/// One never-seen edge per iteration, as the bench's `new_edge_bt` row: a fresh pair in one class
/// (so the edge is new at the instance level and a backtrace is captured every time), each lock
/// used alone once, then nested; the pair is dropped after (its instances leave the graph, so
/// the graph stays the same size). `checked_nobt/new_edge_bt` is the same with
/// `LOCKCHECK_BACKTRACE=0`: the difference of the two is the capture.
#[inline(never)]
fn new_edge_loop(iters: u64) {
    for _ in 0..iters {
        let a = lockcheck::checked::Mutex::named("icount.same", 0u64);
        let b = lockcheck::checked::Mutex::named("icount.same", 0u64);
        *a.lock() += 1;
        *b.lock() += 1;
        {
            let _a = black_box(&a).lock();
            *black_box(&b).lock() += 1;
        }
        black_box((a, b));
    }
}

/// One never-seen instance edge of a known class edge per iteration, as the bench's `new_edge`
/// row: fresh pairs of classes `icount.a` then `icount.b`, 64 alive at once (the row's batch),
/// each lock used alone once, then each pair nested once, then the 64 dropped. The class edge is
/// known after the first pair, so no backtrace is captured (run with `LOCKCHECK_BACKTRACE=0` all
/// the same); each nesting adds a variant to the class edge, compared with the variants of the
/// other live pairs. One iteration is one edge; use a multiple of 64.
#[inline(never)]
fn new_class_edge_loop(iters: u64) {
    const BATCH: u64 = 64;
    let mut done = 0;
    while done < iters {
        let n = BATCH.min(iters - done);
        let pairs: Vec<_> = (0..n)
            .map(|_| {
                let a = lockcheck::checked::Mutex::named("icount.a", 0u64);
                let b = lockcheck::checked::Mutex::named("icount.b", 0u64);
                *a.lock() += 1;
                *b.lock() += 1;
                (a, b)
            })
            .collect();
        for (a, b) in &pairs {
            let _a = black_box(a).lock();
            *black_box(b).lock() += 1;
        }
        black_box(pairs);
        done += n;
    }
}

/// What the bench's rows before `new_edge` leave on the class edge `icount.a -> icount.b`
/// (`bench.a -> bench.b` there): the main thread's pair nested in a loop, then 40 samples each of
/// 2 and 8 threads nesting their own pair and of 8 threads nesting one shared pair (criterion
/// spawns fresh threads per sample), every thread an ended variant of the edge.
fn bench_history() {
    let new = || {
        (
            lockcheck::checked::Mutex::named("icount.a", 0u64),
            lockcheck::checked::Mutex::named("icount.b", 0u64),
        )
    };
    let nest = |p: &(
        lockcheck::checked::Mutex<u64>,
        lockcheck::checked::Mutex<u64>,
    )| {
        let _a = black_box(&p.0).lock();
        *black_box(&p.1).lock() += 1;
    };
    let known = new();
    for _ in 0..100 {
        nest(&known);
    }
    drop(known);
    for (threads, shared) in [(2, false), (8, false), (8, true)] {
        let pairs: Vec<_> = (0..threads).map(|_| std::sync::Arc::new(new())).collect();
        for _sample in 0..40 {
            let handles: Vec<_> = (0..threads)
                .map(|i| {
                    let p = std::sync::Arc::clone(&pairs[if shared { 0 } else { i }]);
                    std::thread::spawn(move || {
                        for _ in 0..100 {
                            nest(&p);
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().expect("bench thread");
            }
        }
    }
    if std::env::var_os("ICOUNT_SIZES").is_some() {
        eprintln!(
            "after the history: most variants {:?}, most class groups {}",
            lockcheck::__private::most_edge_variants(),
            lockcheck::__private::most_class_edge_groups()
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(scenario), Some(iters)) = (args.next(), args.next()) else {
        eprintln!("usage: icount <scenario> <iterations>\nscenarios: {SCENARIOS:?}");
        std::process::exit(2);
    };
    let iters: u64 = iters.parse().expect("iterations: a number");
    // Warm up once outside the counted difference: identities, the dependency cache, the graph.
    let n = iters.max(1);
    // `LOCKCHECK=off` switched on at run time: the instrumented locks pay the switches' test only.
    if scenario == "checked_nobt/new_edge_bt" {
        // Read once, at the first capture: set before any lock is used.
        std::env::set_var("LOCKCHECK_BACKTRACE", "0");
        return new_edge_loop(n);
    }
    if scenario == "checked_nobt/new_class_edge" {
        std::env::set_var("LOCKCHECK_BACKTRACE", "0");
        return new_class_edge_loop(n);
    }
    let scenario = match scenario.strip_prefix("checked_off/") {
        Some(op) => {
            lockcheck::set_action(lockcheck::Action::Off);
            format!("checked/{op}")
        }
        None => scenario,
    };
    match scenario.as_str() {
        "parking_lot/lock" => lock_loop(|| parking_lot::Mutex::new(0u64), |m| *m.lock() += 1, n),
        "plain/lock" => lock_loop(|| lockcheck::plain::Mutex::new(0u64), |m| *m.lock() += 1, n),
        "checked/lock" => lock_loop(
            || lockcheck::checked::Mutex::new(0u64),
            |m| *m.lock() += 1,
            n,
        ),
        "parking_lot/pair" => pair_loop(
            || parking_lot::Mutex::new(0u64),
            |a, b| {
                let _a = a.lock();
                *b.lock() += 1;
            },
            n,
        ),
        "plain/pair" => pair_loop(
            || lockcheck::plain::Mutex::new(0u64),
            |a, b| {
                let _a = a.lock();
                *b.lock() += 1;
            },
            n,
        ),
        "checked/pair" | "checked_recording/pair" | "checked_recording_lct/pair" => {
            if scenario == "checked_recording_lct/pair"
                && std::env::var_os("LOCKCHECK_TRACE_FORMAT").is_none()
            {
                // The binary format, still to /dev/null (which has no `.lct` extension); version 2
                // with `LOCKCHECK_TRACE_FORMAT=lct2` set.
                std::env::set_var("LOCKCHECK_TRACE_FORMAT", "lct");
            }
            // `ICOUNT_TRACE=path`: to a file instead, and the stop timed (a JSON Lines
            // recording is turned into JSON Lines there).
            let trace = std::env::var_os("ICOUNT_TRACE").unwrap_or_else(|| "/dev/null".into());
            if scenario.starts_with("checked_recording") {
                lockcheck::record::start(&trace).expect("recording");
            }
            pair_loop(
                || lockcheck::checked::Mutex::new(0u64),
                |a, b| {
                    let _a = a.lock();
                    *b.lock() += 1;
                },
                n,
            );
            if std::env::var_os("ICOUNT_THREAD_CPU").is_some() {
                thread_cpu("acquiring thread");
            }
            if scenario.starts_with("checked_recording") {
                let t = std::time::Instant::now();
                let _ = lockcheck::record::stop();
                if std::env::var_os("ICOUNT_TRACE").is_some() {
                    eprintln!("stop: {:.3} s", t.elapsed().as_secs_f64());
                }
            }
        }
        "checked_recording/try_spin" | "checked_recording_lct/try_spin" => {
            if scenario == "checked_recording_lct/try_spin" {
                std::env::set_var("LOCKCHECK_TRACE_FORMAT", "lct");
            }
            lockcheck::record::start("/dev/null").expect("recording to /dev/null");
            let m = std::sync::Arc::new(lockcheck::checked::Mutex::named("icount.spun", 0u64));
            let (held_tx, held_rx) = std::sync::mpsc::channel();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let holder = {
                let m = m.clone();
                std::thread::spawn(move || {
                    let _g = m.lock();
                    held_tx.send(()).expect("main waits");
                    let _ = go_rx.recv();
                })
            };
            held_rx.recv().expect("the holder holds");
            for _ in 0..n {
                assert!(black_box(&*m).try_lock().is_none());
            }
            drop(go_tx);
            holder.join().expect("holder");
            let _ = lockcheck::record::stop();
        }
        "parking_lot/pair2t" => two_threads(move || {
            pair_loop(
                || parking_lot::Mutex::new(0u64),
                |a, b| {
                    let _a = a.lock();
                    *b.lock() += 1;
                },
                n,
            )
        }),
        "checked/pair2t" | "checked_recording_lct/pair2t" => {
            if scenario.starts_with("checked_recording") {
                if std::env::var_os("LOCKCHECK_TRACE_FORMAT").is_none() {
                    std::env::set_var("LOCKCHECK_TRACE_FORMAT", "lct");
                }
                lockcheck::record::start("/dev/null").expect("recording to /dev/null");
            }
            two_threads(move || {
                pair_loop(
                    || lockcheck::checked::Mutex::new(0u64),
                    |a, b| {
                        let _a = a.lock();
                        *b.lock() += 1;
                    },
                    n,
                )
            });
            if scenario.starts_with("checked_recording") {
                let _ = lockcheck::record::stop();
            }
        }
        "checked/new_edge_bt" => new_edge_loop(n),
        "checked/new_class_edge" => new_class_edge_loop(n),
        "checked/new_class_edge_after_threads" => {
            bench_history();
            new_class_edge_loop(n);
            if std::env::var_os("ICOUNT_SIZES").is_some() {
                eprintln!(
                    "after the loop: most variants {:?}, most class groups {}",
                    lockcheck::__private::most_edge_variants(),
                    lockcheck::__private::most_class_edge_groups()
                );
            }
        }
        "parking_lot/read" => lock_loop(
            || parking_lot::RwLock::new(0u64),
            |m| {
                black_box(*m.read());
            },
            n,
        ),
        "checked/read" => lock_loop(
            || lockcheck::checked::RwLock::new(0u64),
            |m| {
                black_box(*m.read());
            },
            n,
        ),
        #[cfg(feature = "tokio")]
        "checked_recording_in_task/pair" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime");
            lockcheck::record::start("/dev/null").expect("recording to /dev/null");
            rt.block_on(async move {
                tokio::spawn(async move {
                    pair_loop(
                        || lockcheck::checked::Mutex::new(0u64),
                        |a, b| {
                            let _a = a.lock();
                            *b.lock() += 1;
                        },
                        n,
                    )
                })
                .await
                .expect("the task");
            });
            let _ = lockcheck::record::stop();
        }
        #[cfg(feature = "tokio")]
        s if s.starts_with("raw_tokio/") || s.starts_with("tokio") => tokio_scenario(s, n),
        other => {
            eprintln!("unknown scenario {other:?}; scenarios: {SCENARIOS:?}");
            std::process::exit(2);
        }
    }
}

/// The async scenarios: one task of a current-thread runtime, `iters` operations in a loop.
#[cfg(feature = "tokio")]
fn tokio_scenario(scenario: &str, iters: u64) {
    use std::sync::Arc;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let (who, op) = scenario.split_once('/').expect("who/op");
    let pair = op == "pair";
    rt.block_on(async move {
        if who == "raw_tokio" {
            let (a, b) = (
                Arc::new(tokio::sync::Mutex::new(0u64)),
                Arc::new(tokio::sync::Mutex::new(0u64)),
            );
            tokio::spawn(async move {
                for _ in 0..iters {
                    if pair {
                        let _a = black_box(&a).lock().await;
                        *black_box(&b).lock().await += 1;
                    } else {
                        *black_box(&a).lock().await += 1;
                    }
                }
            })
            .await
            .expect("the task");
            return;
        }
        let (a, b) = (
            Arc::new(lockcheck::tokio::Mutex::new(0u64)),
            Arc::new(lockcheck::tokio::Mutex::new(0u64)),
        );
        let body = async move {
            for _ in 0..iters {
                if pair {
                    let _a = black_box(&a).lock().await;
                    *black_box(&b).lock().await += 1;
                } else {
                    *black_box(&a).lock().await += 1;
                }
            }
        };
        if who == "tokio_spawned" {
            lockcheck::tokio::spawn(body).await.expect("the task");
        } else {
            tokio::spawn(body).await.expect("the task");
        }
    });
}

/// Runs `work` on two threads started together; with `ICOUNT_THREAD_CPU` set, says each
/// thread's CPU time, then the wall time and the whole process's CPU time (user and system,
/// every thread: the trace writer's is the difference).
fn two_threads(work: impl Fn() + Send + Sync + Copy + 'static) {
    let start = std::sync::Arc::new(std::sync::Barrier::new(3));
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let start = std::sync::Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                let (t0, before) = (std::time::Instant::now(), schedstat());
                work();
                if std::env::var_os("ICOUNT_THREAD_CPU").is_some() {
                    let wall = t0.elapsed().as_nanos() as f64 / 1e6;
                    let [run, queued] = [0, 1].map(|k| (schedstat()[k] - before[k]) as f64 / 1e6);
                    // Neither running nor waiting for a core: blocked (parked, or waiting for a
                    // lock held by a thread that is not running).
                    eprintln!(
                        "thread {i}: {wall:.1} ms wall, {run:.1} ms running, {queued:.1} ms \
                         runnable but waiting for a core, {:.1} ms blocked",
                        wall - run - queued
                    );
                    thread_cpu(&format!("thread {i}"));
                }
            })
        })
        .collect();
    start.wait();
    let t0 = std::time::Instant::now();
    for h in handles {
        h.join().expect("a pair thread");
    }
    if std::env::var_os("ICOUNT_THREAD_CPU").is_some() {
        eprintln!("wall: {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
        process_cpu();
    }
}

/// The calling thread's time on a core and time runnable but waiting for one, in nanoseconds
/// (`/proc/thread-self/schedstat`; zeros where there is none).
fn schedstat() -> [u64; 2] {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut f = s.split_whitespace().map(|x| x.parse().unwrap_or(0));
    [f.next().unwrap_or(0), f.next().unwrap_or(0)]
}

/// With `ICOUNT_THREAD_CPU` set: the whole process's CPU time so far (user, system), on stderr.
fn process_cpu() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `getrusage` writes the `rusage` it is given; all-zero is a valid `rusage`.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0 {
            let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
            eprintln!(
                "process: {:.1} ms user, {:.1} ms system, {} voluntary and {} involuntary context switches",
                ms(ru.ru_utime),
                ms(ru.ru_stime),
                ru.ru_nvcsw,
                ru.ru_nivcsw
            );
        }
    }
}

/// With `ICOUNT_THREAD_CPU` set: the CPU time of the calling thread so far, on stderr (the
/// rest of `perf stat`'s task-clock is the other threads': the trace writer).
fn thread_cpu(what: &str) {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `clock_gettime` writes the `timespec` it is given.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            let ms = ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6;
            // SAFETY: `getrusage` writes the `rusage` it is given; all-zero is a valid `rusage`.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            let switches = if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } == 0 {
                format!(
                    ", {} voluntary and {} involuntary context switches",
                    ru.ru_nvcsw, ru.ru_nivcsw
                )
            } else {
                String::new()
            };
            eprintln!("{what}: {ms:.1} ms CPU{switches}");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = what;
}
