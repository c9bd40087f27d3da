//! The detector must never be the bug: a global allocator that takes checked locks re-enters
//! lockcheck's hooks from inside every allocation lockcheck makes, including the ones made while
//! one of its internal mutexes (class table, graph, findings, foreign-release set, waiters) is
//! held. Nothing here is warmed up first: each allocation takes a lock never used before, so that
//! the re-entrant hook wants an identity (the class table), a check or a report right when
//! lockcheck holds its own mutex. The hooks must take their untracked way out there (the thread
//! is busy inside lockcheck), and the findings must stay exact around it.

use lockcheck::{Mutex, ViolationKind};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Locks the allocator takes, one per allocation, each a lock never taken before (until the
/// pool runs out, then round again).
static POOL: AtomicPtr<Mutex<u64>> = AtomicPtr::new(std::ptr::null_mut());
static POOL_LEN: AtomicUsize = AtomicUsize::new(0);
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Allocations that took a pool lock.
static TAKEN: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The allocator takes locks on this thread (set by the scenarios, so that the test harness's
    /// own threads are left alone).
    static ON: Cell<bool> = const { Cell::new(false) };
    static IN_ALLOC: Cell<bool> = const { Cell::new(false) };
}

struct LockingAlloc;

impl LockingAlloc {
    fn enter(&self) {
        if !ON.try_with(Cell::get).unwrap_or(false) {
            return;
        }
        if IN_ALLOC.try_with(|c| c.replace(true)).unwrap_or(true) {
            return;
        }
        let pool = POOL.load(Ordering::Acquire);
        let len = POOL_LEN.load(Ordering::Acquire);
        if !pool.is_null() && len != 0 {
            let i = NEXT.fetch_add(1, Ordering::Relaxed) % len;
            // SAFETY: the pool is leaked, `len` entries, never freed.
            let m = unsafe { &*pool.add(i) };
            *m.lock() += 1;
            TAKEN.fetch_add(1, Ordering::Relaxed);
        }
        let _ = IN_ALLOC.try_with(|c| c.set(false));
    }
}

// SAFETY: forwards to the system allocator; the lock taken around it never re-enters the
// allocator on this thread (`IN_ALLOC`).
unsafe impl GlobalAlloc for LockingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.enter();
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.enter();
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: LockingAlloc = LockingAlloc;

/// A fresh pool for the next scenario (none is running): its first allocations each take a lock
/// never used before. Small, so that the graph (every allocation under a user lock is a new
/// dependency) stays small too.
fn install_pool() {
    let pool: Vec<Mutex<u64>> = (0..1024).map(|_| Mutex::new(0)).collect();
    let pool = Box::leak(pool.into_boxed_slice());
    POOL_LEN.store(0, Ordering::Release);
    NEXT.store(0, Ordering::Relaxed);
    POOL.store(pool.as_mut_ptr(), Ordering::Release);
    POOL_LEN.store(pool.len(), Ordering::Release);
}

/// Runs `f` on its own thread with the locking allocator on, failing instead of hanging;
/// `Err`: its panic message.
fn guarded(f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        ON.with(|c| c.set(true));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        });
        // The thread's exit (its state's destructors) runs with the allocator still on.
        let _ = tx.send(r);
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("must not hang")
}

fn found(name: &str) -> Vec<lockcheck::Violation> {
    lockcheck::violations()
        .into_iter()
        .filter(|v| {
            v.edges
                .iter()
                .any(|e| e.held.class == name || e.acquired.class == name)
        })
        .collect()
}

fn named(name: String) -> Mutex<u32> {
    Mutex::named(Box::leak(name.into_boxed_str()), 0)
}

/// One test, the scenarios in sequence: they share the allocator's pool and its counter.
#[test]
fn a_locking_allocator_never_deadlocks_lockcheck_on_its_own_mutexes() {
    install_pool();

    // First use of classes and instances (the class table), nested (a new edge: the graph, the
    // held-set snapshot), over and over with fresh names.
    let before = TAKEN.load(Ordering::Relaxed);
    guarded(|| {
        for i in 0..50 {
            let a = named(format!("ir.first.{i}.a"));
            let b = named(format!("ir.first.{i}.b"));
            let _a = a.lock();
            let _b = b.lock();
            drop(std::hint::black_box(vec![0u8; 32 + i]));
        }
    })
    .expect("no violation");
    assert!(
        TAKEN.load(Ordering::Relaxed) > before,
        "the allocator must have taken its locks"
    );
    assert!(
        found("ir.first.0.a").is_empty(),
        "{:#?}",
        found("ir.first.0.a")
    );

    install_pool();
    // A report (rendering, the findings, a backtrace) with the allocator on: the inversion is
    // found; the same order twice (the look-alike) stays silent.
    let x = std::sync::Arc::new(named("ir.inv.x".into()));
    let y = std::sync::Arc::new(named("ir.inv.y".into()));
    let z = std::sync::Arc::new(named("ir.inv.z".into()));
    let (x1, y1, z1) = (x.clone(), y.clone(), z.clone());
    guarded(move || {
        let _x = x1.lock();
        let _y = y1.lock();
        let _z = z1.lock();
    })
    .expect("the first order is no violation");
    let r = guarded(move || {
        {
            let _x = x.lock();
            let _z = z.lock();
        }
        let _y = y.lock();
        let _x = x.lock();
    });
    let msg = r.expect_err("the inversion panics under LOCKCHECK=panic");
    assert!(msg.contains("lock order inversion"), "{msg}");
    let v = found("ir.inv.x");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
    assert!(found("ir.inv.z").is_empty(), "{:#?}", found("ir.inv.z"));

    install_pool();
    // Threads started and ended through lockcheck (numbers, clocks, names) with the allocator
    // on, in parent and child.
    guarded(|| {
        let m = std::sync::Arc::new(named("ir.thread.m".into()));
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let m = m.clone();
                lockcheck::thread::spawn(move || {
                    ON.with(|c| c.set(true));
                    let n = named(format!("ir.thread.{i}"));
                    let _m = m.lock();
                    let _n = n.lock();
                    drop(std::hint::black_box(format!("{i}")));
                })
            })
            .collect();
        for h in hs {
            h.join().expect("child");
        }
    })
    .expect("no violation");

    // The watchdog's and the statistics' registries (waiters, published held lists, per-thread
    // statistics), with a contended lock (the wait-for graph) and a wait policy, allocator on.
    lockcheck::watchdog::set_hold_warn(Some(Duration::from_secs(600)));
    lockcheck::watchdog::set_wait_warn(Some(Duration::from_secs(600)));
    lockcheck::watchdog::set_wait_timeout("ir.watch.other", Some(Duration::from_secs(600)));
    lockcheck::stats::enable();
    install_pool();
    guarded(|| {
        let m = std::sync::Arc::new(named("ir.watch.m".into()));
        let held = m.lock();
        let m2 = m.clone();
        let h = lockcheck::thread::spawn(move || {
            ON.with(|c| c.set(true));
            let n = named("ir.watch.n".into());
            let _n = n.lock();
            // Blocks until the parent lets go: registered as a waiter meanwhile.
            *m2.lock() += 1;
        });
        std::thread::sleep(Duration::from_millis(50));
        drop(held);
        h.join().expect("child");
        assert_eq!(*m.lock(), 1);
    })
    .expect("no violation");
    assert!(
        lockcheck::stats::stats()
            .iter()
            .any(|c| c.class == "ir.watch.m"),
        "statistics kept"
    );

    // Locks the allocator took while lockcheck was busy were untracked, not foreign releases:
    // a real self-deadlock on any of them is still raised, never excused as a stale hold.
    // With `send_guard` each self-deadlock waits a second for a guard sent away: a few only.
    let cap = if cfg!(feature = "send_guard") {
        8
    } else {
        usize::MAX
    };
    let used = NEXT
        .load(Ordering::Relaxed)
        .min(POOL_LEN.load(Ordering::Relaxed))
        .min(cap);
    let missed = guarded(move || {
        ON.with(|c| c.set(false));
        let pool = POOL.load(Ordering::Acquire);
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let mut missed = Vec::new();
        for i in 0..used {
            // SAFETY: the pool is leaked, with more than `used` entries.
            let m = unsafe { &*pool.add(i) };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _first = m.lock();
                let _again = m.lock();
            }));
            if r.is_ok() {
                missed.push(i);
            }
        }
        std::panic::set_hook(hook);
        assert!(missed.is_empty(), "self-deadlocks excused: {missed:?}");
    });
    missed.expect("every self-deadlock raised");
}
