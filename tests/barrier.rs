//! `lockcheck::sync::Barrier`: a wait at a barrier made while holding a lock that a participant
//! needs before it arrives is a `deadlock` (the waiter gives up its locks, its arrival counted,
//! so the others go on); the look-alikes stay silent. All of it under a watchdog.

mod support;

use lockcheck::sync::Barrier;
use lockcheck::{Action, Mutex, ViolationKind};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::watchdog;

/// The test threads of this file share the process's report list: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    lockcheck::set_action(Action::Panic);
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reports naming `lock` (a class name), made since `before` reports.
fn naming(before: usize, lock: &str) -> Vec<lockcheck::Violation> {
    lockcheck::violations()[before..]
        .iter()
        .filter(|v| {
            v.edges
                .iter()
                .any(|e| e.held.class == lock || e.acquired.class == lock)
        })
        .cloned()
        .collect()
}

/// The hang: `waiter` holds `state` at the barrier; the other participant takes `state` before
/// it arrives. `rounds` generations are passed first, holding nothing (so the other participant
/// is known from the previous generation when `rounds > 0`). Returns the report's message and
/// how long the waiter waited before it gave up.
fn hang(name: &'static str, rounds: usize) -> (String, Duration) {
    let before = lockcheck::violations().len();
    let took = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let took2 = took.clone();
    let r = watchdog(40, move || {
        let state = Arc::new(Mutex::named(name, 0u32));
        let barrier = Arc::new(Barrier::new(2));
        let (go, wait_go) = std::sync::mpsc::channel::<()>();
        let (s2, b2) = (state.clone(), barrier.clone());
        let other = std::thread::spawn(move || {
            for _ in 0..rounds {
                b2.wait();
            }
            wait_go.recv().unwrap();
            *s2.lock() += 1; // waits for the waiter's `state`
            b2.wait(); // arrives once the waiter gave up (its arrival counted)
        });
        for _ in 0..rounds {
            barrier.wait();
        }
        let start = Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _g = state.lock();
            go.send(()).unwrap();
            barrier.wait();
        }));
        *took2.lock().unwrap() = start.elapsed();
        let msg = support::panic_message(&*r.expect_err("the waiter gives up"));
        other.join().expect("the other participant goes on");
        assert!(msg.contains("deadlock"), "{msg}");
    });
    r.unwrap();
    let found = naming(before, name);
    assert_eq!(found.len(), 1, "{found:#?}");
    let v = &found[0];
    assert_eq!(v.kind, ViolationKind::Deadlock, "{v:#?}");
    // Both sites: the wait at the barrier, and the other participant's lock.
    assert!(
        v.edges.iter().any(|e| e
            .acquired
            .class
            .starts_with("barrier created at tests/barrier.rs")),
        "{v:#?}"
    );
    assert!(
        v.edges
            .iter()
            .any(|e| e.acquired.class == name && e.held.class.starts_with("barrier created at")),
        "{v:#?}"
    );
    let took = *took.lock().unwrap();
    (v.message.clone(), took)
}

/// The first generation: nothing says who the participants are, so the thread stuck behind
/// the waiter's lock is assumed to be the missing one, five seconds into the wait.
#[test]
fn a_wait_holding_the_lock_a_missing_participant_needs_is_a_deadlock() {
    let _s = serial();
    let (msg, took) = hang("barrier.first.state", 0);
    assert!(msg.contains("assumed a participant"), "{msg}");
    assert!(took >= Duration::from_secs(5), "{took:?}");
}

/// A later generation: the other thread arrived at the previous one, a known participant.
#[test]
fn a_known_participant_stuck_behind_the_waiter_is_a_deadlock() {
    let _s = serial();
    let (msg, took) = hang("barrier.known.state", 3);
    assert!(msg.contains("arrived at its previous generation"), "{msg}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// The locks are released before the wait: the participant that takes them arrives.
#[test]
fn locks_released_before_the_wait_are_silent() {
    let _s = serial();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("barrier.released.state", 0u32));
        let barrier = Arc::new(Barrier::new(2));
        let (s2, b2) = (state.clone(), barrier.clone());
        let other = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            *s2.lock() += 1;
            b2.wait();
        });
        {
            let _g = state.lock();
        }
        barrier.wait();
        other.join().unwrap();
    })
    .unwrap();
    assert!(naming(before, "barrier.released.state").is_empty());
}

/// A lock held at the barrier that no other participant takes; a thread that is no participant
/// waits for it meanwhile, while the participant is busy (for longer than the one-second grace,
/// less than the five seconds of a guess): silent, everybody goes on.
#[test]
fn a_held_lock_no_participant_takes_is_silent() {
    let _s = serial();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("barrier.bystander.state", 0u32));
        let barrier = Arc::new(Barrier::new(2));
        let b2 = barrier.clone();
        let participant = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2500));
            b2.wait();
        });
        let s3 = state.clone();
        let (go, wait_go) = std::sync::mpsc::channel::<()>();
        let bystander = std::thread::spawn(move || {
            wait_go.recv().unwrap();
            *s3.lock() += 1;
        });
        {
            let _g = state.lock();
            go.send(()).unwrap();
            barrier.wait();
        }
        participant.join().unwrap();
        bystander.join().unwrap();
    })
    .unwrap();
    assert!(naming(before, "barrier.bystander.state").is_empty());
}

/// Hold `L` and wait at the barrier, while the others wait at the barrier and then take `L`:
/// they take `L` only once the generation opened, after the holder arrived. Over many
/// generations: the holder holds `L` at every other one only (holding it at the next one too,
/// it would wait there for the others' `L`: a real hang), each thread holding its own lock at
/// every wait too: silent.
#[test]
fn hold_then_wait_against_wait_then_take_over_many_generations_is_silent() {
    let _s = serial();
    let before = lockcheck::violations().len();
    watchdog(60, || {
        let shared = Arc::new(Mutex::named("barrier.reuse.shared", 0u32));
        let barrier = Arc::new(Barrier::new(3));
        let mut threads = Vec::new();
        for t in 0..3 {
            let (shared, barrier) = (shared.clone(), barrier.clone());
            threads.push(std::thread::spawn(move || {
                let own = Mutex::named("barrier.reuse.own", 0u32);
                let mut leaders = 0;
                for round in 0..200 {
                    let _o = own.lock();
                    if round % 2 == 1 {
                        leaders += usize::from(barrier.wait().is_leader());
                    } else if t == (round / 2) % 3 {
                        let _s = shared.lock();
                        leaders += usize::from(barrier.wait().is_leader());
                    } else {
                        leaders += usize::from(barrier.wait().is_leader());
                        *shared.lock() += 1;
                    }
                }
                leaders
            }));
        }
        let leaders: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(leaders, 200, "one leader per generation");
    })
    .unwrap();
    assert!(naming(before, "barrier.reuse.shared").is_empty());
    assert!(naming(before, "barrier.reuse.own").is_empty());
}

/// The same loop holding `L` at every generation is the real hang: a thread that took `L`
/// after one generation still needs it before it arrives at the next, where the holder waits
/// with it. Reported (the others are known participants), and everybody goes on.
#[test]
fn hold_at_every_generation_against_wait_then_take_is_a_deadlock() {
    let _s = serial();
    let before = lockcheck::violations().len();
    watchdog(60, || {
        let shared = Arc::new(Mutex::named("barrier.every.shared", 0u32));
        let barrier = Arc::new(Barrier::new(2));
        let (s2, b2) = (shared.clone(), barrier.clone());
        let taker = std::thread::spawn(move || {
            for _ in 0..50 {
                b2.wait();
                std::thread::sleep(Duration::from_millis(2));
                *s2.lock() += 1;
            }
        });
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for _ in 0..50 {
                let _s = shared.lock();
                barrier.wait();
            }
        }));
        let msg = support::panic_message(&*r.expect_err("the holder gives up"));
        assert!(msg.contains("deadlock"), "{msg}");
        // The taker goes on alone: the rest of its generations have no other participant.
        drop(taker);
    })
    .unwrap();
    let found = naming(before, "barrier.every.shared");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].kind, ViolationKind::Deadlock);
}

/// The traits std's types have.
#[test]
fn the_types_have_std_s_traits() {
    fn std_like<
        T: Send + Sync + std::panic::UnwindSafe + std::panic::RefUnwindSafe + std::fmt::Debug,
    >() {
    }
    std_like::<Barrier>();
    std_like::<lockcheck::sync::BarrierWaitResult>();
    std_like::<std::sync::Barrier>();
    static _CONST: Barrier = Barrier::new(2);
}

/// A barrier of one never waits, whatever is held; `Debug` as std's.
#[test]
fn a_barrier_of_one_never_waits() {
    let _s = serial();
    let before = lockcheck::violations().len();
    let state = Mutex::named("barrier.one.state", 0u32);
    let b = Barrier::new(1);
    let _g = state.lock();
    for _ in 0..10 {
        assert!(b.wait().is_leader());
    }
    assert_eq!(format!("{b:?}"), "Barrier { .. }");
    assert_eq!(
        format!("{:?}", b.wait()),
        "BarrierWaitResult { is_leader: true }"
    );
    assert!(naming(before, "barrier.one.state").is_empty());
}
