//! Reports are emitted as `tracing` events with target `lockcheck`, even to a subscriber that
//! only exists in the reporting thread. Alone in its binary: `tracing` caches per-callsite
//! interest globally, which other tests' reports would race with.

mod support;

use lockcheck::Mutex;
use std::sync::Arc;
use support::two_threads;

fn pair(
    _prefix: &'static str,
    a: &'static str,
    b: &'static str,
) -> (Arc<Mutex<u32>>, Arc<Mutex<u32>>) {
    (Arc::new(Mutex::named(a, 0)), Arc::new(Mutex::named(b, 0)))
}

#[test]
fn tracing_events_are_emitted_with_target_lockcheck() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing_subscriber::layer::SubscriberExt;
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    struct Count;
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            if e.metadata().target() == "lockcheck" {
                SEEN.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let subscriber = tracing_subscriber::registry().with(Count);
    let (a, b) = pair("trc", "trc.a", "trc.b");
    let dispatch = tracing::Dispatch::new(subscriber);
    let (d1, d2) = (dispatch.clone(), dispatch);
    let (a2, b2) = (a.clone(), b.clone());
    let _ = two_threads(
        move || {
            tracing::dispatcher::with_default(&d1, || {
                let _a = a.lock();
                let _b = b.lock();
            })
        },
        move || {
            tracing::dispatcher::with_default(&d2, || {
                let _b = b2.lock();
                let _a = a2.lock();
            })
        },
    );
    assert_eq!(SEEN.load(Ordering::SeqCst), 1);
}
