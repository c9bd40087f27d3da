//! Runs async scenarios on both tokio runtime flavours, under a timeout inside the runtime and a
//! watchdog thread outside it, so that a scenario lockcheck fails to report cannot hang the run.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

/// A tokio runtime flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `new_current_thread`: every task on the test's thread.
    CurrentThread,
    /// `new_multi_thread` with two workers.
    MultiThread,
}

/// A name unique to a scenario and flavour (locks are named so that tests can find their own
/// reports among those of tests running in parallel).
pub fn name(base: &str, fl: Flavor) -> &'static str {
    Box::leak(format!("{base}.{fl:?}").into_boxed_str())
}

/// Runs `f()` to completion on a fresh runtime of flavour `fl` (timeout 100 s inside, the
/// watchdog's floor of 120 s outside: room for a loaded machine, see `WATCHDOG_FLOOR_SECS`). Returns the panic message if the scenario panicked.
pub fn run<F, Fut>(fl: Flavor, f: F) -> Result<(), String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    crate::support::watchdog(30, move || {
        let rt = match fl {
            Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            Flavor::MultiThread => {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(2);
                b
            }
        }
        .enable_time()
        .build()
        .expect("a tokio runtime");
        rt.block_on(async move {
            tokio::time::timeout(Duration::from_secs(100), f())
                .await
                .expect("the scenario must not hang");
        });
    })
}

/// A short timeout around an acquisition that lockcheck reports under `warn` and that would
/// then wait forever: `None` if it timed out.
pub async fn within<T>(ms: u64, f: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(Duration::from_millis(ms), f)
        .await
        .ok()
}

/// [`crate::support::wait_until`] for a task: polls `cond` every millisecond, yielding to the
/// runtime in between (a task on a current-thread runtime must, for the others to run), and
/// panics naming `what` if it does not hold within 60 seconds.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the scenario did not form: {what} (not within 60 s)"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
