//! The detector is never the bug: lockcheck must not deadlock, recurse or abort when the code it
//! calls out to (a `tracing` subscriber, a panic hook) takes lockcheck locks itself, when reports
//! overlap, when locks are used in thread-local destructors or at process exit, and when a thread
//! panics holding locks (std's poisoning kept exact for `lockcheck::sync`).
//!
//! This binary installs a global `tracing` subscriber and a panic hook that both lock lockcheck
//! mutexes. Its tests share them and lockcheck's global action, so they run one at a time.

#[path = "support/scratch.rs"]
mod scratch;
mod support;

use lockcheck::{Action, Mutex, RwLock};
use scratch::Scratch;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, OnceLock};
use std::time::Duration;
use support::{found, two_threads, watchdog};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial(action: Action) -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    install_hooks();
    lockcheck::set_action(action);
    g
}

// ---------------------------------------------------------------------------------------------
// A tracing layer and a panic hook that take lockcheck locks.

static LAYER_A: Mutex<u64> = Mutex::named("self.layer.a", 0);
static LAYER_B: Mutex<u64> = Mutex::named("self.layer.b", 0);
static LOCKCHECK_EVENTS: AtomicUsize = AtomicUsize::new(0);
static OTHER_EVENTS: AtomicUsize = AtomicUsize::new(0);
/// Milliseconds the layer sleeps in a lockcheck event, so that reports overlap.
static LAYER_SLEEP_MS: AtomicUsize = AtomicUsize::new(0);

struct LockingLayer;

impl<S: tracing::Subscriber> Layer<S> for LockingLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() == "lockcheck" {
            // Inside a report: lockcheck's own work. Both orders, so that an instrumented
            // acquisition here would be an inversion (it must be plain instead).
            let n = LOCKCHECK_EVENTS.fetch_add(1, Ordering::SeqCst);
            if n % 2 == 0 {
                let _a = LAYER_A.lock();
                let _b = LAYER_B.lock();
            } else {
                let _b = LAYER_B.lock();
                let _a = LAYER_A.lock();
            }
            let ms = LAYER_SLEEP_MS.load(Ordering::SeqCst);
            if ms > 0 {
                std::thread::sleep(Duration::from_millis(ms as u64));
            }
        } else {
            // Outside lockcheck: checked like any user code, in one consistent order.
            OTHER_EVENTS.fetch_add(1, Ordering::SeqCst);
            let mut a = LAYER_A.lock();
            let mut b = LAYER_B.lock();
            *a += 1;
            *b += 1;
        }
    }
}

static HOOK_A: Mutex<u64> = Mutex::named("self.hook.a", 0);
static HOOK_B: Mutex<u64> = Mutex::named("self.hook.b", 0);
static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

/// The panic hook takes lockcheck locks, in alternating orders: an inversion found while the
/// thread is panicking is reported but must not panic again (that would abort).
fn hook_locks() {
    let n = HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
    if n % 2 == 0 {
        let _a = HOOK_A.lock();
        hook_b_after_a();
    } else {
        let _b = HOOK_B.lock();
        let _a = HOOK_A.lock();
    }
}

fn hook_b_after_a() {
    let _b = HOOK_B.lock();
}

fn install_hooks() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(LockingLayer))
            .expect("the only global subscriber of this binary");
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            hook_locks();
            previous(info);
        }));
    });
}

/// A fresh AB-BA inversion at its own sites; returns the second thread's panic message, if any.
fn inversion(a: &'static str, b: &'static str) -> (Result<(), String>, Result<(), String>) {
    let (x, y) = (Arc::new(Mutex::named(a, 0)), Arc::new(Mutex::named(b, 0)));
    let (x2, y2) = (x.clone(), y.clone());
    two_threads(
        move || {
            let _x = x.lock();
            let _y = y.lock();
        },
        move || {
            let _y = y2.lock();
            let _x = x2.lock();
        },
    )
}

#[test]
fn a_subscriber_that_locks_lockcheck_mutexes_receives_the_report_without_deadlock() {
    let _s = serial(Action::Panic);
    let before = LOCKCHECK_EVENTS.load(Ordering::SeqCst);
    let hooks_before = HOOK_CALLS.load(Ordering::SeqCst);
    let r = watchdog(30, || {
        // An ordinary event first: the layer's own locks are checked outside reports.
        tracing::info!("hello from the test");
        let (r1, r2) = inversion("self.trace.a", "self.trace.b");
        assert!(r1.is_ok(), "{r1:?}");
        let msg = r2.expect_err("the inversion panics under LOCKCHECK=panic");
        assert!(msg.contains("lock order inversion"), "{msg}");
    });
    r.expect("no hang, no panic outside the expected one");
    assert_eq!(found("self.trace.a").len(), 1);
    assert!(
        LOCKCHECK_EVENTS.load(Ordering::SeqCst) > before,
        "the layer saw the report"
    );
    assert!(OTHER_EVENTS.load(Ordering::SeqCst) > 0);
    assert!(
        HOOK_CALLS.load(Ordering::SeqCst) > hooks_before,
        "the panic hook ran"
    );
    // The layer's inverted acquisitions inside reports are lockcheck's own work: not reported.
    assert!(
        found("self.layer.a").is_empty(),
        "{:#?}",
        found("self.layer.a")
    );
}

#[test]
fn a_panic_hook_that_locks_and_inverts_is_reported_without_a_double_panic() {
    let _s = serial(Action::Panic);
    let r = watchdog(30, || {
        // Two panics on two threads: the hook takes HOOK_A then HOOK_B, then HOOK_B then HOOK_A.
        for i in 0..2 {
            let t = std::thread::spawn(move || panic!("planned panic {i}"));
            assert!(t.join().is_err());
        }
    });
    r.expect("no hang, no abort");
    // The second hook call inverts the first one's order while panicking: reported, not acted
    // on (a panic inside a panic hook would abort the process).
    let v = found("self.hook.a");
    assert_eq!(v.len(), 1, "{v:#?}");
}

/// Four inversions at distinct sites, found at the same moment on four threads, with a layer
/// that sleeps inside each report: reports overlap, and every one arrives.
fn forward(i: usize, p: &(Mutex<u32>, Mutex<u32>)) {
    match i {
        0 => drop((p.0.lock(), p.1.lock())),
        1 => drop((p.0.lock(), p.1.lock())),
        2 => drop((p.0.lock(), p.1.lock())),
        _ => drop((p.0.lock(), p.1.lock())),
    }
}

fn backward(i: usize, p: &(Mutex<u32>, Mutex<u32>)) {
    match i {
        0 => drop((p.1.lock(), p.0.lock())),
        1 => drop((p.1.lock(), p.0.lock())),
        2 => drop((p.1.lock(), p.0.lock())),
        _ => drop((p.1.lock(), p.0.lock())),
    }
}

#[test]
fn overlapping_reports_all_arrive() {
    let _s = serial(Action::Warn);
    LAYER_SLEEP_MS.store(30, Ordering::SeqCst);
    let before = LOCKCHECK_EVENTS.load(Ordering::SeqCst);
    let r = watchdog(60, || {
        const N: usize = 4;
        let names = [
            "self.overlap0",
            "self.overlap1",
            "self.overlap2",
            "self.overlap3",
        ];
        let pairs: Vec<Arc<(Mutex<u32>, Mutex<u32>)>> = names
            .iter()
            .map(|&n| Arc::new((Mutex::named(n, 0), Mutex::named("self.overlap.other", 0))))
            .collect();
        // Make the forward edges first, on threads that stay alive.
        let (done_tx, done_rx) = mpsc::channel();
        let (exit_tx, exit_rx) = mpsc::channel::<()>();
        let exit_rx = Arc::new(std::sync::Mutex::new(exit_rx));
        let mut keep = Vec::new();
        for (i, p) in pairs.iter().enumerate() {
            let (p, done_tx, exit_rx) = (p.clone(), done_tx.clone(), exit_rx.clone());
            keep.push(std::thread::spawn(move || {
                forward(i, &p);
                done_tx.send(()).unwrap();
                let _ = exit_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(30));
            }));
        }
        for _ in 0..N {
            done_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        }
        // Then all backward edges at once.
        let barrier = Arc::new(Barrier::new(N));
        let back: Vec<_> = pairs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (p, barrier) = (p.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    backward(i, &p);
                })
            })
            .collect();
        for t in back {
            t.join().expect("backward thread");
        }
        for _ in 0..N {
            exit_tx.send(()).unwrap();
        }
        for t in keep {
            t.join().unwrap();
        }
    });
    LAYER_SLEEP_MS.store(0, Ordering::SeqCst);
    r.expect("no hang");
    for n in [
        "self.overlap0",
        "self.overlap1",
        "self.overlap2",
        "self.overlap3",
    ] {
        // A pair also inverts at class level with the other pairs (same class
        // `self.overlap.other`); the instance-level report of each pair must be there.
        let v: Vec<_> = found(n)
            .into_iter()
            .filter(|v| v.kind == lockcheck::ViolationKind::LockOrderInversion)
            .collect();
        assert_eq!(v.len(), 1, "{n}: {v:#?}");
    }
    assert!(LOCKCHECK_EVENTS.load(Ordering::SeqCst) >= before + 4);
}

// ---------------------------------------------------------------------------------------------
// Thread-local destructors and process exit, in a child process with recording on.

const CHILD_ENV: &str = "LOCKCHECK_SELF_SAFETY_CHILD";

static TLS_A: Mutex<u64> = Mutex::named("self.tls.a", 0);
static TLS_B: RwLock<u64> = RwLock::named("self.tls.b", 0);
static EXIT_A: lockcheck::sync::Mutex<u64> = lockcheck::sync::Mutex::new(0);
static EXIT_B: Mutex<u64> = Mutex::named("self.exit.b", 0);
/// Held by the exiting thread while `exit` runs its TLS destructors and atexit handlers (which
/// take the locks above, never this one: that would be a real self-deadlock).
static HELD_AT_EXIT: Mutex<u64> = Mutex::named("self.exit.held", 0);

struct LocksOnDrop;

impl Drop for LocksOnDrop {
    fn drop(&mut self) {
        // lockcheck's own thread state may already be gone: these must still just lock.
        let mut a = TLS_A.lock();
        let mut b = TLS_B.write();
        *a += 1;
        *b += 1;
    }
}

thread_local! {
    static DROPS_LOCKING: LocksOnDrop = const { LocksOnDrop };
}

extern "C" fn at_exit_locking() {
    let mut a = EXIT_A.lock().unwrap_or_else(|e| e.into_inner());
    let mut b = EXIT_B.lock();
    *a += 1;
    *b += 1;
    // The opposite order too: an inversion found during exit.
    drop((a, b));
    let _b = EXIT_B.lock();
    let _a = EXIT_A.lock();
}

extern "C" {
    fn atexit(cb: extern "C" fn()) -> std::os::raw::c_int;
}

/// The child's body: runs only in the child process (see the test below).
#[test]
fn tls_and_exit_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    lockcheck::set_action(Action::Warn);
    // SAFETY: registering a plain extern "C" function with the C runtime.
    unsafe { atexit(at_exit_locking) };
    // First the opposite order of the destructor's, on a thread that ends before the others
    // start (no real deadlock: the threads never overlap).
    std::thread::spawn(|| {
        let _b = TLS_B.read();
        let _a = TLS_A.lock();
    })
    .join()
    .unwrap();
    // Then threads whose TLS destructors take TLS_A then TLS_B: the inversion is found inside a
    // thread-local destructor, where lockcheck's own thread state may be gone already.
    let threads: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(|| DROPS_LOCKING.with(|_| {})))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    DROPS_LOCKING.with(|_| {});
    let _held_at_exit = HELD_AT_EXIT.lock();
    // SAFETY: as above; registered after recording started, so it runs before its flush.
    unsafe { atexit(at_exit_locking) };
    println!("child: exiting");
    // Exit while holding a lock, from a thread with a live TLS value: atexit handlers (ours and
    // the recorder's flush) run, then the process ends.
    std::process::exit(0);
}

/// Waits for `child`; kills it (and fails) if it runs longer than `limit`: a hung child must not
/// outlive the test.
fn wait_or_kill(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait for the child").is_some() {
            return child.wait_with_output().expect("child output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().expect("child output");
            panic!(
                "the child hung (killed after {limit:?}); stdout: {}\nstderr: {}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn locks_in_tls_destructors_and_at_exit_end_cleanly_with_recording_on() {
    let _s = serial(Action::Panic);
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = Scratch::new("self-safety");
    let trace = dir.join("child.json");
    let exe = std::env::current_exe().unwrap();
    let trace2 = trace.clone();
    let r = watchdog(60, move || {
        let child = std::process::Command::new(exe)
            .args([
                "--exact",
                "tls_and_exit_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .env("LOCKCHECK_TRACE", &trace2)
            .env("LOCKCHECK", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the child");
        let o = wait_or_kill(child, Duration::from_secs(45));
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            out.contains("child: exiting"),
            "stdout: {out}\nstderr: {err}"
        );
        assert_eq!(o.status.code(), Some(0), "stdout: {out}\nstderr: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!err.contains("abort"), "{err}");
    });
    r.expect("the child exits in time");
    // The trace was flushed at exit and is complete (no --allow-truncated needed).
    let report = lockcheck_analyze::analyze(std::slice::from_ref(&trace), &Default::default())
        .unwrap_or_else(|e| panic!("the child's trace reads: {e}"));
    assert!(report.summary.events > 0);
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(text.contains("self.tls.a"), "the trace names the TLS lock");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Guards and threads.

/// `assert_not_impl!(T: Send)` at compile time: if `T: Send`, both impls apply and the call is
/// ambiguous (the trick of the `static_assertions` crate).
macro_rules! assert_not_send {
    ($t:ty) => {
        const _: fn() = || {
            trait AmbiguousIfSend<A> {
                fn some_item() {}
            }
            impl<T: ?Sized> AmbiguousIfSend<()> for T {}
            #[allow(dead_code)]
            struct Invalid;
            impl<T: ?Sized + Send> AmbiguousIfSend<Invalid> for T {}
            let _item: fn() = <$t as AmbiguousIfSend<_>>::some_item;
        };
    };
}

// A permit of lockcheck's semaphore stays on the thread that took it: lockcheck keeps each
// thread's held locks in thread-local state, which a permit moved to another thread would make
// wrong. The locks themselves are Send + Sync. (The guards of the parking_lot and std locks are
// not Send either, unless lockcheck's `send_guard` feature makes them so: checked by
// `crates/lockcheck/tests/features.rs`, which sees lockcheck's features; this package's tests do
// not, and `--workspace --all-features` turns `send_guard` on.)
assert_not_send!(lockcheck::SemaphorePermit<'static>);

const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<lockcheck::Mutex<u32>>();
    send_sync::<lockcheck::RwLock<u32>>();
    send_sync::<lockcheck::Semaphore>();
    send_sync::<lockcheck::Condvar>();
    send_sync::<lockcheck::sync::Mutex<u32>>();
    send_sync::<lockcheck::sync::RwLock<u32>>();
    // Guards can be shared by reference (Sync when the data is).
    send_sync::<&lockcheck::MutexGuard<'static, u32>>();
};

#[test]
fn a_lock_unlocked_by_another_thread_through_force_unlock_leaves_no_phantom_hold() {
    // The only way to move a hold across threads without `send_guard`: forget the guard, and
    // `force_unlock` elsewhere. The locking thread then takes the lock again.
    let _s = serial(Action::Warn);
    let r = watchdog(30, || {
        let m = Arc::new(Mutex::named("self.force.a", 0u32));
        let m2 = m.clone();
        let (tx, rx) = mpsc::channel();
        let (back_tx, back_rx) = mpsc::channel();
        let owner = std::thread::spawn(move || {
            std::mem::forget(m.lock());
            tx.send(()).unwrap();
            back_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            let _again = m.lock();
        });
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        // SAFETY: the lock is held (by `owner`, through the forgotten guard) and nothing uses
        // the data meanwhile.
        unsafe { m2.force_unlock() };
        back_tx.send(()).unwrap();
        owner.join().unwrap();
    });
    r.expect("no hang");
    let v = found("self.force.a");
    assert!(
        v.is_empty(),
        "a false self-deadlock after a cross-thread unlock: {v:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Panics while holding locks.

/// Runs the same poisoning scenario on std's and on lockcheck::sync's types and returns what
/// was observable, so that both can be compared.
macro_rules! poison_scenario {
    ($mutex:path, $rwlock:path) => {{
        use std::sync::TryLockError;
        let mut seen = Vec::new();
        // Mutex: panic while holding.
        let m = Arc::new(<$mutex>::new(5u32));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let mut g = m2.lock().unwrap();
            *g += 1;
            panic!("poison the mutex");
        })
        .join();
        seen.push(("mutex poisoned", m.is_poisoned()));
        seen.push((
            "try_lock poisoned",
            matches!(m.try_lock(), Err(TryLockError::Poisoned(_))),
        ));
        match m.lock() {
            Err(e) => {
                let g = e.into_inner();
                seen.push(("value kept", *g == 6));
            }
            Ok(_) => seen.push(("lock ok after panic", true)),
        }
        m.clear_poison();
        seen.push(("cleared", !m.is_poisoned()));
        seen.push(("lock after clear", m.lock().is_ok()));
        // Mutex: a panic after the guard was dropped does not poison.
        let m = Arc::new(<$mutex>::new(0u32));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            drop(m2.lock().unwrap());
            panic!("not holding");
        })
        .join();
        seen.push(("no poison without a hold", !m.is_poisoned()));
        // A poisoned mutex's into_inner and get_mut report it.
        let m = Arc::new(<$mutex>::new(1u32));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("poison");
        })
        .join();
        let mut m = Arc::try_unwrap(m).unwrap_or_else(|_| panic!("one owner"));
        seen.push(("get_mut poisoned", m.get_mut().is_err()));
        seen.push(("into_inner poisoned", m.into_inner().is_err()));
        // RwLock: a writer's panic poisons, a reader's does not.
        let l = Arc::new(<$rwlock>::new(0u32));
        let l2 = l.clone();
        let _ = std::thread::spawn(move || {
            let _r = l2.read().unwrap();
            panic!("reader panics");
        })
        .join();
        seen.push(("read panic poisons", l.is_poisoned()));
        let l2 = l.clone();
        let _ = std::thread::spawn(move || {
            let _w = l2.write().unwrap();
            panic!("writer panics");
        })
        .join();
        seen.push(("write panic poisons", l.is_poisoned()));
        seen.push(("read after poison errs", l.read().is_err()));
        seen.push((
            "try_write poisoned",
            matches!(l.try_write(), Err(TryLockError::Poisoned(_))),
        ));
        l.clear_poison();
        seen.push(("rw cleared", !l.is_poisoned()));
        seen
    }};
}

#[test]
fn std_api_poisoning_is_exactly_std_s() {
    let _s = serial(Action::Panic);
    let r = watchdog(30, || {
        let std_seen = poison_scenario!(std::sync::Mutex<u32>, std::sync::RwLock<u32>);
        let ours = poison_scenario!(lockcheck::sync::Mutex<u32>, lockcheck::sync::RwLock<u32>);
        assert_eq!(ours, std_seen);
    });
    r.expect("no hang");
}

#[test]
fn parking_lot_api_locks_are_not_poisoned_and_the_held_stack_unwinds() {
    let _s = serial(Action::Panic);
    let r = watchdog(30, || {
        let m = Arc::new(Mutex::named("self.unwind.m", 1u32));
        let l = Arc::new(RwLock::named("self.unwind.l", 1u32));
        let (m2, l2) = (m.clone(), l.clone());
        let t = std::thread::spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut g = m2.lock();
                let mut w = l2.write();
                *g = 2;
                *w = 2;
                panic!("while holding both");
            }));
            assert!(r.is_err());
            // Nothing is held any more: locking again is no self-deadlock.
            let _w = l2.write();
            let _g = m2.lock();
        });
        t.join()
            .expect("the thread goes on after catching its panic");
        assert_eq!(
            *m.lock(),
            2,
            "not poisoned: the value as the panicking thread left it"
        );
        assert_eq!(*l.read(), 2);
        assert!(m.try_lock().is_some());
    });
    r.expect("no hang");
    assert!(
        found("self.unwind.m").is_empty(),
        "{:#?}",
        found("self.unwind.m")
    );
}

#[test]
fn a_violation_panic_while_holding_locks_releases_them() {
    // The report's own panic (LOCKCHECK=panic) unwinds through the guards of the inverting
    // thread: its locks are free afterwards, and its held stack empty.
    let _s = serial(Action::Panic);
    let r = watchdog(30, || {
        let a = Arc::new(Mutex::named("self.actpanic.a", 0u32));
        let b = Arc::new(Mutex::named("self.actpanic.b", 0u32));
        let (a2, b2, a3, b3) = (a.clone(), b.clone(), a.clone(), b.clone());
        let (r1, r2) = two_threads(
            move || {
                let _a = a2.lock();
                let _b = b2.lock();
            },
            move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _b = b3.lock();
                    let _a = a3.lock();
                }));
                assert!(r.is_err(), "the inversion panics");
                // Both locks free, and no stale hold: a plain lock of each is silent.
                drop(b3.lock());
                drop(a3.lock());
            },
        );
        r1.unwrap();
        r2.unwrap();
        assert!(a.try_lock().is_some() && b.try_lock().is_some());
    });
    r.expect("no hang");
    assert_eq!(found("self.actpanic.a").len(), 1);
}
