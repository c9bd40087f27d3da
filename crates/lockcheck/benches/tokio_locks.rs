//! `lockcheck::tokio::Mutex` beside raw `tokio::sync::Mutex` (feature `tokio`; issue 14's target:
//! within 1.5x). Every row runs inside one spawned task of a current-thread runtime (a task is
//! where async locks are used; lockcheck keys its held sets by task), `iters` operations per
//! sample, timed inside the task.
//!
//! Run: `cargo bench -p lockcheck --features tokio --bench tokio_locks`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
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

criterion_group!(tokio_locks, benches);
criterion_main!(tokio_locks);
