//! `lockcheck::tokio::Mutex` beside raw `tokio::sync::Mutex` (feature `tokio`; issue 14's target:
//! within 1.5x). Every row runs inside one spawned task of a current-thread runtime (a task is
//! where async locks are used; lockcheck keys its held sets by task), `iters` operations per
//! sample, timed inside the task.
//!
//! Run: `cargo bench -p lockcheck --features tokio --bench tokio_locks`; with
//! `TOKIO_LOCKS_INTERLEAVED=15`, interleaved rounds instead of criterion (see [`interleaved`]).

use criterion::{black_box, criterion_group, Criterion};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Times `iters` runs of `op` inside a spawned task.
fn in_task<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, op: F) -> Duration
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            for _ in 0..iters {
                op().await;
            }
            start.elapsed()
        })
        .await
        .expect("the bench task")
    })
}

fn benches(c: &mut Criterion) {
    lockcheck::set_action(lockcheck::Action::Panic);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");

    let mut g = c.benchmark_group("tokio_lock_unlock_1task");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("tokio", |b| {
        let m = Arc::new(tokio::sync::Mutex::new(0u64));
        b.iter_custom(|iters| {
            let m = m.clone();
            in_task(&rt, iters, move || {
                let m = m.clone();
                async move {
                    *black_box(&m).lock().await += 1;
                }
            })
        })
    });
    g.bench_function("lockcheck", |b| {
        let m = Arc::new(lockcheck::tokio::Mutex::new(0u64));
        b.iter_custom(|iters| {
            let m = m.clone();
            in_task(&rt, iters, move || {
                let m = m.clone();
                async move {
                    *black_box(&m).lock().await += 1;
                }
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("tokio_nested_known_1task");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("tokio", |b| {
        let (x, y) = (
            Arc::new(tokio::sync::Mutex::new(0u64)),
            Arc::new(tokio::sync::Mutex::new(0u64)),
        );
        b.iter_custom(|iters| {
            let (x, y) = (x.clone(), y.clone());
            in_task(&rt, iters, move || {
                let (x, y) = (x.clone(), y.clone());
                async move {
                    let _a = x.lock().await;
                    *y.lock().await += 1;
                }
            })
        })
    });
    g.bench_function("lockcheck", |b| {
        let (x, y) = (
            Arc::new(lockcheck::tokio::Mutex::new(0u64)),
            Arc::new(lockcheck::tokio::Mutex::new(0u64)),
        );
        b.iter_custom(|iters| {
            let (x, y) = (x.clone(), y.clone());
            in_task(&rt, iters, move || {
                let (x, y) = (x.clone(), y.clone());
                async move {
                    let _a = x.lock().await;
                    *y.lock().await += 1;
                }
            })
        })
    });
    g.finish();
    assert!(
        lockcheck::violations().is_empty(),
        "no violation may happen"
    );
}

/// `TOKIO_LOCKS_INTERLEAVED=N`: instead of criterion, N rounds alternating raw tokio and
/// lockcheck on the same loops (200k operations each), printing the fastest round of each and
/// their ratio. On a loaded machine the fastest of many interleaved rounds is steadier than a
/// criterion mean: both sides see the same load.
fn interleaved(rounds: usize) {
    lockcheck::set_action(lockcheck::Action::Panic);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    const OPS: u64 = 200_000;
    let per_op = |d: Duration| d.as_nanos() as f64 / OPS as f64;
    let (tm, lm) = (
        Arc::new(tokio::sync::Mutex::new(0u64)),
        Arc::new(lockcheck::tokio::Mutex::new(0u64)),
    );
    let (tx, ty) = (
        Arc::new(tokio::sync::Mutex::new(0u64)),
        Arc::new(tokio::sync::Mutex::new(0u64)),
    );
    let (lx, ly) = (
        Arc::new(lockcheck::tokio::Mutex::new(0u64)),
        Arc::new(lockcheck::tokio::Mutex::new(0u64)),
    );
    let mut best = [f64::MAX; 4];
    // `TOKIO_LOCKS_ONLY=i`: only loop `i` (0: tokio, 1: lockcheck, 2 and 3: the same, A then
    // B), for counting its instructions (`valgrind --tool=callgrind`; this VM has no hardware
    // counters), which load does not change.
    let only: Option<usize> = std::env::var("TOKIO_LOCKS_ONLY")
        .ok()
        .and_then(|v| v.parse().ok());
    let run = |i: usize| only.is_none_or(|o| o == i);
    for _ in 0..rounds {
        if run(0) {
            let m = tm.clone();
            let t = per_op(in_task(&rt, OPS, move || {
                let m = m.clone();
                async move { *black_box(&m).lock().await += 1 }
            }));
            best[0] = best[0].min(t);
        }
        if run(1) {
            let m = lm.clone();
            let t = per_op(in_task(&rt, OPS, move || {
                let m = m.clone();
                async move { *black_box(&m).lock().await += 1 }
            }));
            best[1] = best[1].min(t);
        }
        if run(2) {
            let (x, y) = (tx.clone(), ty.clone());
            let t = per_op(in_task(&rt, OPS, move || {
                let (x, y) = (x.clone(), y.clone());
                async move {
                    let _a = x.lock().await;
                    *y.lock().await += 1;
                }
            }));
            best[2] = best[2].min(t);
        }
        if run(3) {
            let (x, y) = (lx.clone(), ly.clone());
            let t = per_op(in_task(&rt, OPS, move || {
                let (x, y) = (x.clone(), y.clone());
                async move {
                    let _a = x.lock().await;
                    *y.lock().await += 1;
                }
            }));
            best[3] = best[3].min(t);
        }
    }
    if only.is_some() {
        return;
    }
    println!(
        "lock+unlock, 1 task:  tokio {:.1} ns  lockcheck {:.1} ns  ratio {:.2}x",
        best[0],
        best[1],
        best[1] / best[0]
    );
    println!(
        "A then B (known), 1 task:  tokio {:.1} ns  lockcheck {:.1} ns  ratio {:.2}x",
        best[2],
        best[3],
        best[3] / best[2]
    );
    assert!(
        lockcheck::violations().is_empty(),
        "no violation may happen"
    );
}

criterion_group!(tokio_locks, benches);

fn main() {
    if let Some(n) = std::env::var("TOKIO_LOCKS_INTERLEAVED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        interleaved(n);
        return;
    }
    tokio_locks();
    Criterion::default().configure_from_args().final_summary();
}
