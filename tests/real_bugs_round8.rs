//! Real deadlocks from public Rust projects, eighth round: condvars notified by a thread that
//! never takes the mutex their waiters wait with, so that a notify coming between a waiter's
//! check and its wait is lost and the wait never ends (salsa's `cancel_other_workers`, waiting
//! with a mutex made for the wait; parity-ethereum's verification queue, whose `Drop` set the
//! exit state under another lock). Found by a new part of the opt-in condvar rule, the
//! lost-wakeup rule (`ViolationKind::LostWakeup`): a notify whose window (the locks the notifier
//! held or took since its last wait on or notify of the condvar) lacks the mutex of a wait in
//! progress, or a wait whose mutex the condvar's latest notify lacked. And an explicit join,
//! holding a lock, of a thread whose thread-local destructor takes that lock (std's explicit join
//! waits for the destructors: rust-lang/rust#116179), which hung unreported or aborted the
//! process; the joiner now stays registered until the destructors are over. A lock held by a
//! thread a `fork` left behind is in `tests/real_bugs_round8_fork.rs` (its own binary). Kinds or projects
//! the first seven rounds (`tests/async/real_bugs.rs`, `tests/real_bugs_round2.rs`..`round7.rs`,
//! `examples/scenarios.rs`) did not cover. Each is reduced to its locking skeleton (not their
//! code), cites its source, and is paired with the look-alike the project's fix turned it into,
//! which must stay silent. Every scenario runs under a watchdog; the lost wakeups mostly in the
//! order where the notify comes after the wait (a lucky run, which ends), from which the rule
//! predicts them, and once in the order that hangs, rescued by the test once reported.

#[path = "support/real_bugs.rs"]
mod real_bugs;
mod support;

use lockcheck::{Condvar, Mutex, ViolationKind};
use std::sync::{mpsc, Arc};
use support::markers::Markers;
use support::{found, watchdog};

/// This file's marker comments.
const M: Markers = Markers::new("real_bugs_round8.rs", include_str!("real_bugs_round8.rs"));

fn setup() {
    real_bugs::setup();
    lockcheck::watchdog::set_condvar_check(true);
}

/// The lost-wakeup findings among `v`.
fn lost_wakeups(v: Vec<lockcheck::Violation>) -> Vec<lockcheck::Violation> {
    v.into_iter()
        .filter(|v| v.kind == ViolationKind::LostWakeup)
        .collect()
}

/// Tells `seen` once the thread that waits with `mutex` is inside its wait: `mutex` can be
/// taken only once the wait released it. Runs on a thread of its own, so that the notifier's
/// window (the locks it took) stays its own.
fn observe_waiting<T: Send + 'static>(
    mutex: Arc<Mutex<T>>,
    seen: mpsc::Sender<()>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        drop(mutex.lock());
        seen.send(()).unwrap();
    })
}

// ---------------------------------------------------------------------------------------------
// 1. A condvar waited on with a mutex made for the wait: salsa's `Storage::cancel_other_workers`
//    (salsa-2022) looped on "set the cancellation flag; if `Arc::get_mut(&mut self.shared)`
//    succeeds, return; else wait on `shared.cvar`", the wait with a `parking_lot::Mutex` created
//    on the spot ("the cvar api requires it, but we don't really need one"). A snapshot's drop
//    notified the condvar. A snapshot dropped between the `get_mut` check and the wait notifies
//    no one, and the writer waits forever although it now holds the only handle. Source:
//    salsa-rs/salsa#473 ("Deadlock may happen in cancel_other_workers even when there's only one
//    handle": the misuse of the condvar API), fixed by salsa-rs/salsa#474 ("fix: wrong condvar
//    usage": a `noti_lock` in the shared state, held by the check and the wait and taken by the
//    dropping handle before it notifies; salsa-rs/salsa#1039 later reverted a change that broke
//    the same link between the handle count and the mutex).
//    Look-alike: the fix, with the handle count itself under the mutex.

/// The shared state of salsa's handles: the jars (here nothing) and, beside them, the condvar
/// the writer waits on and the fix's count of handles.
struct Shared;

/// What every handle has a share of.
#[derive(Clone)]
struct Handle {
    shared: Arc<Shared>,
    cvar: Arc<Condvar>,
    /// The fix's way: the number of live handles, under the mutex the writer waits with.
    handles: Arc<Mutex<usize>>,
    /// salsa#474's way (the count under `handles`); else the count is the `Arc`'s.
    fixed: bool,
}

/// The writer's handle.
struct Storage(Handle);

/// A snapshot, held by a reader; its drop releases its share, then notifies the writer.
struct Snapshot(Option<Handle>);

impl Storage {
    fn snapshot(&self) -> Snapshot {
        *self.0.handles.lock() += 1;
        Snapshot(Some(self.0.clone()))
    }

    /// Blocks until this is the only handle. `waiting`: gets the mutex of each wait, before
    /// the wait (the test's hook, to know when the wait has begun).
    fn cancel_other_workers(&mut self, waiting: &mpsc::Sender<Arc<Mutex<usize>>>) {
        let h = &mut self.0;
        if h.fixed {
            let mut n = h.handles.lock();
            while *n > 1 {
                waiting.send(h.handles.clone()).unwrap();
                h.cvar.wait(&mut n);
            }
            return;
        }
        loop {
            if Arc::get_mut(&mut h.shared).is_some() {
                return;
            }
            // "We create a mutex here because the cvar api requires it".
            let mutex = Arc::new(Mutex::named("salsa.wait_mutex", 0)); // SALSA_LOCAL_MUTEX
            let mut guard = mutex.lock();
            waiting.send(mutex.clone()).unwrap();
            h.cvar.wait(&mut guard); // SALSA_WAIT
        }
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let h = self.0.take().expect("dropped once");
        let cvar = h.cvar.clone();
        if h.fixed {
            *h.handles.lock() -= 1; // SALSA_FIXED_COUNT
            drop(h);
            cvar.notify_all();
        } else {
            drop(h);
            cvar.notify_all(); // SALSA_NOTIFY
        }
    }
}

/// The writer waits for a snapshot held by another thread, which drops it once the writer's
/// wait has begun (seen by an observer thread taking the wait's mutex).
fn salsa(class: &'static str, fixed: bool) {
    let mut db = Storage(Handle {
        shared: Arc::new(Shared),
        cvar: Arc::new(Condvar::new()),
        handles: Arc::new(Mutex::named(class, 1)),
        fixed,
    });
    let snapshot = db.snapshot();
    let (waiting_tx, waiting_rx) = mpsc::channel::<Arc<Mutex<usize>>>();
    let (seen_tx, seen_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        // The snapshot's thread: done with its query once the writer waits.
        let mutex = waiting_rx.recv().unwrap();
        let observer = observe_waiting(mutex, seen_tx);
        seen_rx.recv().unwrap();
        observer.join().unwrap();
        drop(snapshot);
    });
    db.cancel_other_workers(&waiting_tx);
    reader.join().unwrap();
    assert_eq!(Arc::strong_count(&db.0.shared), 1);
}

#[test]
fn a_condvar_waited_with_a_mutex_made_for_the_wait_is_a_lost_wakeup() {
    setup();
    watchdog(20, || salsa("salsa.handles", false)).unwrap();
    let v = lost_wakeups(found("salsa.wait_mutex"));
    assert_eq!(v.len(), 1, "{v:#?}");
    M.assert_sites(&v[0], &["SALSA_NOTIFY", "SALSA_WAIT"]);
    assert!(v[0].message.contains("lost wakeup"), "{}", v[0].message);
}

#[test]
fn the_handle_count_under_the_mutex_the_dropping_handle_takes_is_silent() {
    setup();
    watchdog(20, || salsa("salsa.fixed.handles", true)).unwrap();
    assert!(
        found("salsa.fixed.handles").is_empty(),
        "{:#?}",
        found("salsa.fixed.handles")
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A condvar notified after a state change made under another lock: parity-ethereum's
//    `VerificationQueue`. Its verifier threads wait on the `more_to_verify` condvar with the
//    `more_to_verify` mutex while the queue is empty and the state is not `Exit`; the queue's
//    `Drop` set `State::Exit` under the *state* lock, notified `more_to_verify`, and joined the
//    verifiers. A verifier between its check (state not yet `Exit`) and its wait misses that
//    notify: it waits forever, and so does the `Drop` joining it. Source:
//    openethereum/parity-ethereum#3885, fixed by openethereum/parity-ethereum#3903 ("fix deadlock
//    in queue drop": "acquire this lock to force threads to reach the waiting point if they're
//    in-between the exit check and the more_to_verify wait", taken and released before the
//    notify). std's API (`lockcheck::sync`).
//    Look-alike: the fix.

mod parity {
    use lockcheck::sync::{Condvar, Mutex};
    use std::sync::{mpsc, Arc};

    #[derive(PartialEq)]
    enum State {
        Work,
        Exit,
    }

    pub struct VerificationQueue {
        state: Arc<Mutex<State>>,
        more_to_verify: Arc<(Mutex<()>, Condvar)>,
        verifier: Option<std::thread::JoinHandle<()>>,
        fixed: bool,
    }

    impl VerificationQueue {
        /// A queue with one verifier thread; `waiting` gets the `more_to_verify` mutex when the
        /// verifier is about to wait (the test's hook).
        pub fn new(fixed: bool, waiting: mpsc::Sender<Arc<(Mutex<()>, Condvar)>>) -> Self {
            let state = Arc::new(Mutex::new(State::Work)); // PARITY_STATE
            let more_to_verify = Arc::new((Mutex::new(()), Condvar::new())); // PARITY_MORE
            let (s, more) = (state.clone(), more_to_verify.clone());
            let verifier = std::thread::spawn(move || {
                let mut m = more.0.lock().unwrap();
                while *s.lock().unwrap() != State::Exit {
                    waiting.send(more.clone()).unwrap();
                    m = more.1.wait(m).unwrap(); // PARITY_WAIT
                }
            });
            VerificationQueue {
                state,
                more_to_verify,
                verifier: Some(verifier),
                fixed,
            }
        }
    }

    impl Drop for VerificationQueue {
        fn drop(&mut self) {
            *self.state.lock().unwrap() = State::Exit;
            if self.fixed {
                // parity#3903: "acquire this lock to force threads to reach the waiting point".
                drop(self.more_to_verify.0.lock().unwrap());
                self.more_to_verify.1.notify_all(); // PARITY_FIXED_NOTIFY
            } else {
                self.more_to_verify.1.notify_all(); // PARITY_NOTIFY
            }
            self.verifier.take().unwrap().join().unwrap();
        }
    }

    /// Runs the queue until its verifier waits (seen by an observer thread taking the mutex),
    /// then drops it.
    pub fn run(fixed: bool) {
        let (waiting_tx, waiting_rx) = mpsc::channel::<Arc<(Mutex<()>, Condvar)>>();
        let queue = VerificationQueue::new(fixed, waiting_tx);
        let more = waiting_rx.recv().unwrap();
        std::thread::spawn(move || drop(more.0.lock().unwrap()))
            .join()
            .unwrap();
        drop(queue);
    }
}

#[test]
fn a_drop_that_sets_the_exit_state_under_another_lock_and_notifies_is_a_lost_wakeup() {
    setup();
    watchdog(20, || parity::run(false)).unwrap();
    let v = lost_wakeups(M.found_at("PARITY_NOTIFY"));
    assert_eq!(v.len(), 1, "{v:#?}");
    M.assert_sites(&v[0], &["PARITY_NOTIFY", "PARITY_WAIT"]);
    assert!(v[0].edges[0].acquired.class.contains(&M.at("PARITY_MORE")));
}

#[test]
fn the_mutex_taken_between_the_state_change_and_the_notify_is_silent() {
    setup();
    watchdog(20, || parity::run(true)).unwrap();
    for marker in ["PARITY_FIXED_NOTIFY", "PARITY_MORE", "PARITY_STATE"] {
        let v: Vec<_> = M
            .found_at(marker)
            .into_iter()
            .filter(|v| {
                v.edges
                    .iter()
                    .any(|e| e.site.contains(&M.at("PARITY_FIXED_NOTIFY")))
            })
            .collect();
        assert!(v.is_empty(), "{marker}: {v:#?}");
    }
}

/// The order that hangs (parity#3885's): the verifier has checked the state (`Work`) and not yet
/// waited when the `Drop` sets `Exit` under the state lock and notifies; the notify is lost, and
/// the verifier's wait would never end. Reported at that wait: the condvar's latest notify lacked
/// its mutex. The test then wakes the verifier itself (a notify taking the mutex, from a thread
/// that sees it waiting), so that nothing hangs.
#[test]
fn the_wait_after_a_notify_that_lacked_its_mutex_is_reported_in_the_order_that_hangs() {
    use lockcheck::sync::{Condvar as StdCondvar, Mutex as StdMutex};
    setup();
    watchdog(20, || {
        let state = Arc::new(StdMutex::new(false)); // UNLUCKY_STATE: exit requested
        let more = Arc::new((StdMutex::new(()), StdCondvar::new())); // UNLUCKY_MORE
        let (checked_tx, checked_rx) = mpsc::channel();
        let (notified_tx, notified_rx) = mpsc::channel::<()>();
        let (s, m) = (state.clone(), more.clone());
        let verifier = std::thread::spawn(move || {
            let guard = m.0.lock().unwrap();
            let exit = *s.lock().unwrap();
            assert!(!exit);
            // Between the check and the wait: the `Drop` runs now.
            checked_tx.send(()).unwrap();
            notified_rx.recv().unwrap();
            drop(m.1.wait(guard).unwrap()); // UNLUCKY_WAIT
        });
        checked_rx.recv().unwrap();
        // The `Drop`: `Exit` under the state lock, then the notify, lost.
        *state.lock().unwrap() = true;
        more.1.notify_all(); // UNLUCKY_NOTIFY
        notified_tx.send(()).unwrap();
        // The rescue: once the verifier waits (its mutex free), a notify that takes the mutex.
        let m = more.clone();
        std::thread::spawn(move || {
            drop(m.0.lock().unwrap());
            m.1.notify_all();
        })
        .join()
        .unwrap();
        verifier.join().unwrap();
    })
    .unwrap();
    let v = lost_wakeups(M.found_at("UNLUCKY_WAIT"));
    assert_eq!(v.len(), 1, "{v:#?}");
    M.assert_sites(&v[0], &["UNLUCKY_NOTIFY", "UNLUCKY_WAIT"]);
}

// ---------------------------------------------------------------------------------------------
// 3. An explicit join, holding a lock, of a thread whose thread-local destructor takes that
//    lock: std's `JoinHandle::join` waits for the joined thread's thread-local destructors (the
//    native thread's exit), so the destructor blocks on the joiner's lock and the join never
//    returns. Source: rust-lang/rust#116179 (its reproduction: a `static MTX` held across a
//    scoped thread's explicit `join` while the thread's thread-local `FOO` has been touched; the
//    explicit join waits for `FOO`'s destructor, the implicit one of the scope does not),
//    documented as intended by rust-lang/rust#149482 ("explicit `join` calls ... *will* wait
//    for TLS destructors"; rust-lang/rust#127571 asks for the guarantee).
//    Look-alike: the lock released before the join.

/// A thread-local whose destructor takes the registry's lock (a per-thread cache flushed into a
/// shared registry at thread exit).
struct Flush(Arc<Mutex<u32>>);

impl Drop for Flush {
    fn drop(&mut self) {
        *self.0.lock() += 1; // TLS_JOIN_DTOR
    }
}

thread_local! {
    static CACHE: std::cell::RefCell<Option<Flush>> = const { std::cell::RefCell::new(None) };
}

/// A worker fills its thread-local cache; the owner joins it holding the registry's lock (or,
/// `fixed`, after releasing it).
fn tls_join(class: &'static str, fixed: bool) -> Result<(), String> {
    let registry = Arc::new(Mutex::named(class, 0));
    let r = registry.clone();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let worker = lockcheck::thread::spawn(move || {
        CACHE.with(|c| *c.borrow_mut() = Some(Flush(r)));
        go_rx.recv().unwrap();
    });
    let guard = registry.lock();
    go_tx.send(()).unwrap();
    if fixed {
        drop(guard);
        worker.join().map_err(|e| support::panic_message(&*e))
    } else {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            worker.join() // TLS_JOIN
        }))
        .map_err(|e| support::panic_message(&*e));
        drop(guard);
        r.map(|_| ())
    }
}

#[test]
fn an_explicit_join_holding_the_lock_a_thread_local_destructor_takes_is_a_deadlock() {
    setup();
    let r = watchdog(20, || {
        let msg = tls_join("tls_join.registry", false).expect_err("the join gives up");
        assert!(msg.contains("deadlock"), "{msg}");
    });
    r.unwrap();
    let v: Vec<_> = found("tls_join.registry")
        .into_iter()
        .filter(|v| v.kind == ViolationKind::Deadlock)
        .collect();
    assert_eq!(v.len(), 1, "{v:#?}");
    M.assert_sites(&v[0], &["TLS_JOIN_DTOR", "TLS_JOIN"]);
}

#[test]
fn the_lock_released_before_the_join_is_silent() {
    setup();
    watchdog(20, || tls_join("tls_join.fixed.registry", true).unwrap()).unwrap();
    assert!(
        found("tls_join.fixed.registry").is_empty(),
        "{:#?}",
        found("tls_join.fixed.registry")
    );
}
