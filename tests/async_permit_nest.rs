//! The permit-nest rule (spkenv/spk#805, `graph::note_permit_nest`) for tokio semaphores'
//! tasks, and a tokio semaphore whose permits change (`forget_permits`, `add_permits`): a task
//! that requests a permit of a `lockcheck::tokio::Semaphore` while holding one of its permits,
//! done by as many tasks as the semaphore has permits *now*, is reported (each holding one and
//! awaiting a second, none can go on); fewer tasks, or a task that gives its permit back first,
//! stay silent. The tasks run one after the other, so nothing hangs: the rule predicts it.
//!
//! And the permits gate rule after a shrink: a semaphore seen with several permits is no gate
//! for the dependencies made under it, even if `forget_permits` later leaves it one permit (the
//! runtime keeps its `several_permits` note; the analyzer counts the most permits the trace
//! gave, not what is left at its end).
//!
//! Both runtime flavours, each run recorded (JSON Lines on the current-thread runtime, `.lct` on
//! the multi-thread one) and `analyze` of its trace must agree with the runtime. Action `warn`
//! (an inversion is reported and the acquisition goes on).

#[path = "support/rt.rs"]
mod rt;
mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::tokio::{Mutex, Semaphore};
use lockcheck::{Action, ViolationKind};
use rt::{name, run, Flavor};
use std::sync::Arc;
use support::found;

const FLAVORS: [Flavor; 2] = [Flavor::CurrentThread, Flavor::MultiThread];

/// Recording is process-wide: one scenario at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `analyze` of `trace` finds an inversion involving `class`.
fn offline_inversion(trace: &std::path::Path, class: &str) -> bool {
    trace_file::findings_involving(trace, class)
        .iter()
        .any(|(k, _)| k.contains("inversion"))
}

/// Whether the runtime reported an inversion involving `class`.
fn runtime_inversion(class: &str) -> bool {
    found(class)
        .iter()
        .any(|v| v.kind == ViolationKind::LockOrderInversion)
}

/// Runs `body(sem)` recorded on flavour `fl`, with a semaphore named after `base` of `permits`
/// permits, changed first by `change` (before any task uses it); returns whether the runtime and
/// the analyzer reported an inversion involving the class `key` (the semaphore's when `None`),
/// and the runtime's messages about it.
fn recorded<F, Fut>(
    base: &str,
    fl: Flavor,
    permits: usize,
    change: fn(&Semaphore),
    key: Option<&'static str>,
    body: F,
) -> (bool, bool, String)
where
    F: FnOnce(Arc<Semaphore>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    lockcheck::set_action(Action::Warn);
    let ext = if fl == Flavor::CurrentThread {
        "json"
    } else {
        "lct"
    };
    let trace = trace_file::tmp(&format!("{base}.{fl:?}.{ext}"));
    lockcheck::record::start(&trace).unwrap();
    let s = name(base, fl);
    run(fl, move || async move {
        let sem = Arc::new(Semaphore::named(s, permits));
        change(&sem);
        body(sem).await;
    })
    .unwrap();
    lockcheck::record::stop().unwrap().expect("was recording");
    let s = key.unwrap_or(s);
    let message = found(s)
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    // What the trace says of the permits' changes (a `forget`), for the test of a shrink.
    let forgets = trace_file::events(&trace)
        .iter()
        .filter(|e| matches!(e, lockcheck_core::trace::Event::Forget { .. }))
        .count();
    let message = format!("{message}\n(forget events in the trace: {forgets})");
    (runtime_inversion(s), offline_inversion(&trace, s), message)
}

/// `tasks` tasks, one after the other, each taking a permit and then (giving it back first if
/// `give_back`) another.
async fn nested(sem: Arc<Semaphore>, tasks: usize, give_back: bool) {
    for _ in 0..tasks {
        let s = sem.clone();
        tokio::spawn(async move {
            let first = s.acquire().await.unwrap();
            if give_back {
                drop(first);
                let _second = s.acquire().await.unwrap();
            } else {
                let _second = s.acquire().await.unwrap();
                drop(first);
            }
        })
        .await
        .unwrap();
    }
}

fn unchanged(_: &Semaphore) {}

#[test]
fn as_many_tasks_as_permits_each_requesting_a_permit_holding_one_are_reported() {
    let _serial = serial();
    for fl in FLAVORS {
        let (runtime, offline, message) = recorded("async.nest", fl, 2, unchanged, None, |s| {
            nested(s, 2, false)
        });
        assert!(runtime, "{fl:?}: the runtime reports it");
        assert!(offline, "{fl:?}: offline too");
        assert!(
            message.contains("2 tasks request a permit of")
                && message.contains("while holding some of its permits"),
            "{fl:?}: {message}"
        );
    }
}

#[test]
fn a_task_that_gives_its_permit_back_first_is_silent() {
    let _serial = serial();
    for fl in FLAVORS {
        let (runtime, offline, message) =
            recorded("async.nest.back", fl, 2, unchanged, None, |s| {
                nested(s, 2, true)
            });
        assert!(!runtime, "{fl:?}: {message}");
        assert!(!offline, "{fl:?}: offline silent too");
    }
}

#[test]
fn fewer_tasks_than_permits_are_silent() {
    let _serial = serial();
    for fl in FLAVORS {
        let (runtime, offline, message) = recorded("async.nest.few", fl, 3, unchanged, None, |s| {
            nested(s, 2, false)
        });
        assert!(!runtime, "{fl:?}: {message}");
        assert!(!offline, "{fl:?}: offline silent too");
    }
}

fn forget_one(s: &Semaphore) {
    assert_eq!(s.forget_permits(1), 1);
}

fn add_one(s: &Semaphore) {
    s.add_permits(1);
}

/// Three permits, one forgotten: two tasks are as many as the permits left.
#[test]
fn a_semaphore_shrunk_by_forget_permits_is_judged_by_the_permits_left() {
    let _serial = serial();
    for fl in FLAVORS {
        let (runtime, offline, message) =
            recorded("async.nest.forget", fl, 3, forget_one, None, |s| {
                nested(s, 2, false)
            });
        assert!(runtime, "{fl:?}: the runtime reports it");
        assert!(offline, "{fl:?}: offline too");
        assert!(message.contains("2 tasks request a permit"), "{message}");
    }
}

/// Two permits, one added: two tasks are fewer than the three permits.
#[test]
fn a_semaphore_grown_by_add_permits_is_judged_by_its_new_permits() {
    let _serial = serial();
    for fl in FLAVORS {
        let (runtime, offline, message) = recorded("async.nest.add", fl, 2, add_one, None, |s| {
            nested(s, 2, false)
        });
        assert!(!runtime, "{fl:?}: {message}");
        assert!(!offline, "{fl:?}: offline silent too");
    }
}

/// Under a semaphore of four permits, a task locks `index` then `cache`; then three permits are
/// forgotten (and a request says so to the trace); then another task, under the one permit
/// left, locks `cache` then `index`. The
/// first dependency was made while the semaphore had several permits: the permit is no gate for
/// it, on both sides (before, the analyzer took the count left at the trace's end, one, and was
/// silent where the runtime reports).
#[test]
fn a_semaphore_seen_with_several_permits_stays_no_gate_after_a_shrink() {
    let _serial = serial();
    for fl in FLAVORS {
        let (a, b) = (
            name("async.shrunk.index", fl),
            name("async.shrunk.cache", fl),
        );
        let (runtime, offline, message) = recorded(
            "async.shrunk.jobs",
            fl,
            4,
            unchanged,
            Some(a),
            move |jobs| async move {
                let index = Arc::new(Mutex::named(a, 0u32));
                let cache = Arc::new(Mutex::named(b, 0u32));
                let (j1, i1, c1) = (jobs.clone(), index.clone(), cache.clone());
                tokio::spawn(async move {
                    let _p = j1.acquire().await.unwrap();
                    let _i = i1.lock().await;
                    *c1.lock().await += 1;
                })
                .await
                .unwrap();
                assert_eq!(jobs.forget_permits(3), 3);
                // A request made holding something: the trace learns the count left (1) there
                // (the runtime gives each request the permits it saw).
                let other = Mutex::named(name("async.shrunk.other", fl), 0u32);
                {
                    let _o = other.lock().await;
                    drop(jobs.acquire().await.unwrap());
                }
                tokio::spawn(async move {
                    let _p = jobs.acquire().await.unwrap();
                    let _c = cache.lock().await;
                    *index.lock().await += 1;
                })
                .await
                .unwrap();
            },
        );
        assert!(runtime, "{fl:?}: the runtime reports it: {message}");
        assert!(
            message.contains("forget events in the trace: 1"),
            "{fl:?}: the trace says the shrink: {message}"
        );
        assert!(offline, "{fl:?}: offline too");
    }
}
