//! The per-thread held stack under its single-owner discipline (issue 13: an `UnsafeCell` in
//! place of a `RefCell`): nothing may be borrowed while code that can re-enter lockcheck runs.
//! This binary's global allocator takes a checked mutex on every allocation, so every
//! allocation lockcheck makes (the held stack's move to the heap past 32 locks, snapshots for
//! the graph, reports) re-enters the acquisition and release hooks on the same thread. The
//! stack must stay exact through it: findings still reported (true positives), and no phantom
//! hold or phantom report (look-alikes silent).

use lockcheck::{Mutex, ViolationKind};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// A checked mutex taken by the allocator (not while the allocator itself is running on this
/// thread, which keeps the recursion to one level).
static ALLOC_LOCK: Mutex<u64> = Mutex::new(0);
/// Allocations that went through `ALLOC_LOCK` (switched on once the lock has its identity: this
/// file is about the held stack; a first use under lockcheck's own mutexes is
/// `internal_reentry.rs`'s subject).
static ENABLED: AtomicBool = AtomicBool::new(false);
static LOCKED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static IN_ALLOC: Cell<bool> = const { Cell::new(false) };
}

struct LockingAlloc;

impl LockingAlloc {
    fn enter(&self) {
        if !ENABLED.load(Ordering::Relaxed) {
            return;
        }
        if IN_ALLOC.try_with(|c| c.replace(true)).unwrap_or(true) {
            return;
        }
        *ALLOC_LOCK.lock() += 1;
        LOCKED.fetch_add(1, Ordering::Relaxed);
        let _ = IN_ALLOC.try_with(|c| c.set(false));
    }
}

// SAFETY: forwards to the system allocator; the lock taken around it never allocates itself
// while `IN_ALLOC` is set.
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

/// Runs `f` on its own thread, failing the test instead of hanging; `Err`: its panic message.
fn watchdog(f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        });
        let _ = tx.send(r);
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("must not hang")
}

fn enable() {
    // Gives the allocator's lock its identity before it is used from inside allocations. As
    // inside the allocator, this thread does not re-enter it while it holds the lock: the other
    // test may have enabled it already, and an allocation made while this thread holds
    // `ALLOC_LOCK` (lockcheck's wait bookkeeping when the lock was contended) would otherwise
    // take `ALLOC_LOCK` again on this thread (a hang seen in CI, not a finding of lockcheck's).
    let _ = IN_ALLOC.try_with(|c| c.set(true));
    drop(ALLOC_LOCK.lock());
    let _ = IN_ALLOC.try_with(|c| c.set(false));
    ENABLED.store(true, Ordering::Relaxed);
}

/// Reports naming the lock class `name`.
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

fn deep_locks(prefix: &str, n: usize) -> Vec<Mutex<u32>> {
    (0..n)
        .map(|i| Mutex::named(Box::leak(format!("{prefix}.{i}").into_boxed_str()), 0))
        .collect()
}

#[test]
fn nesting_past_the_inline_stack_with_a_locking_allocator_stays_exact() {
    enable();
    let before = LOCKED.load(Ordering::Relaxed);
    // 100 nested locks: the stack moves to the heap at 33 (an allocation, which takes
    // `ALLOC_LOCK` through the hooks while lockcheck is in the middle of a push) and grows.
    let r = watchdog(|| {
        let locks = deep_locks("hs.deep", 100);
        let mut guards: Vec<Option<_>> = locks.iter().map(|m| Some(m.lock())).collect();
        // Still tracked at depth: taking lock 70 again is a self-deadlock, reported, not a hang.
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _g = locks[70].lock();
        }));
        let msg = again.expect_err("a self-deadlock at depth 70 panics");
        assert!(
            msg.downcast_ref::<String>()
                .is_some_and(|m| m.contains("self-deadlock")),
            "{:?}",
            msg.downcast_ref::<String>()
        );
        // Released in a scrambled order (37 is coprime with 100): the stack moves back inline
        // on the way, freeing its heap area (again through the allocator).
        for k in 0..100 {
            guards[(k * 37) % 100] = None;
        }
        // Look-alike: nothing is held any more, so each lock alone is silent.
        for m in &locks {
            *m.lock() += 1;
        }
    });
    assert!(r.is_ok(), "{r:?}");
    assert!(
        LOCKED.load(Ordering::Relaxed) > before,
        "the allocator must have taken its checked lock"
    );
    let v = found("hs.deep.70");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::SelfDeadlock);
    for i in (0..100).filter(|&i| i != 70) {
        let v = found(&format!("hs.deep.{i}"));
        assert!(
            v.iter().all(|v| v.kind != ViolationKind::SelfDeadlock),
            "phantom hold of hs.deep.{i}: {v:#?}"
        );
    }
}

#[test]
fn an_inversion_is_found_while_the_allocator_re_enters_and_the_same_order_is_silent() {
    enable();
    let a = std::sync::Arc::new(Mutex::named("hs.inv.a", 0u32));
    let b = std::sync::Arc::new(Mutex::named("hs.inv.b", 0u32));
    let c = std::sync::Arc::new(Mutex::named("hs.inv.c", 0u32));
    // Thread 1: a then b, many times (the first checks the graph and snapshots the held set,
    // allocating; then the cache's fast way), with an allocation while both are held.
    let (a1, b1, c1) = (a.clone(), b.clone(), c.clone());
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let t1 = std::thread::spawn(move || {
        for _ in 0..1000 {
            let _a = a1.lock();
            let _b = b1.lock();
            let _c = c1.lock(); // a then b then c: the same order as thread 2's look-alike
            drop(std::hint::black_box(vec![0u8; 64]));
        }
        let _ = done_tx.send(());
        // Alive until thread 2 is done: the two are concurrent for lockcheck.
        let _ = exit_rx.recv_timeout(Duration::from_secs(60));
    });
    done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("must not hang");
    // Thread 2: the same order first (silent), then b then a (the inversion, reported).
    let r = watchdog(move || {
        {
            let _a = a.lock();
            let _c = c.lock();
        }
        let _b = b.lock();
        drop(std::hint::black_box(vec![0u8; 64]));
        let _a = a.lock();
    });
    let _ = exit_tx.send(());
    t1.join().expect("thread 1");
    let msg = r.expect_err("the inversion panics under LOCKCHECK=panic");
    assert!(msg.contains("lock order inversion"), "{msg}");
    let v = found("hs.inv.a");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
    assert!(found("hs.inv.c").is_empty(), "{:#?}", found("hs.inv.c"));
    // The allocator's own lock (the one lock here classed by its construction site) is taken
    // under user locks, never the other way: no report involves it.
    let alloc_class = lockcheck::violations()
        .into_iter()
        .filter(|v| {
            v.edges.iter().any(|e| {
                e.held.class.contains("held_stack.rs") || e.acquired.class.contains("held_stack.rs")
            })
        })
        .collect::<Vec<_>>();
    assert!(alloc_class.is_empty(), "{alloc_class:#?}");
}
