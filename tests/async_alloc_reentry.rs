//! The async tracker under a global allocator that takes checked locks: an allocation made while
//! the tracker holds one of its per-shard hold tables (a task's first hold, a new dependency, a
//! list that grows) re-enters lockcheck's hooks on the same thread, in a task that holds async
//! locks, whose sync acquisitions look at that very table. It must neither spin on the table
//! forever nor lose a finding: the inversion between tasks is still reported, the consistent
//! order stays silent, on both runtime flavours. And a task waiting for the checked mutex a
//! tracking allocator keeps its statistics under comes back with it: lockcheck's wait-for
//! bookkeeping frees nothing between the acquisition and the caller getting its guard.

#[path = "support/rt.rs"]
mod rt;
mod support;

use lockcheck::tokio::Mutex;
use rt::{name, run, Flavor};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;

/// Checked locks the allocator takes, in turn.
static POOL: AtomicPtr<lockcheck::Mutex<u64>> = AtomicPtr::new(std::ptr::null_mut());
const POOL_LEN: usize = 64;
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Allocations that took a pool lock.
static TAKEN: AtomicUsize = AtomicUsize::new(0);

/// A tracking allocator's statistics, under a checked mutex.
static STATS: lockcheck::Mutex<u64> = lockcheck::Mutex::new(0);

thread_local! {
    /// The allocator takes locks on this thread (switched on by the scenario's tasks around
    /// their acquisitions, so that the harness and the runtime are left alone).
    static ON: Cell<bool> = const { Cell::new(false) };
    /// The allocator counts in `STATS` on this thread.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static IN_ALLOC: Cell<bool> = const { Cell::new(false) };
}

struct LockingAlloc;

impl LockingAlloc {
    fn enter(&self) {
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            if !IN_ALLOC.try_with(|c| c.replace(true)).unwrap_or(true) {
                *STATS.lock() += 1;
                let _ = IN_ALLOC.try_with(|c| c.set(false));
            }
            return;
        }
        if !ON.try_with(Cell::get).unwrap_or(false) {
            return;
        }
        if IN_ALLOC.try_with(|c| c.replace(true)).unwrap_or(true) {
            return;
        }
        let pool = POOL.load(Ordering::Acquire);
        if !pool.is_null() {
            let i = NEXT.fetch_add(1, Ordering::Relaxed) % POOL_LEN;
            // SAFETY: the pool is leaked (never freed) and has `POOL_LEN` locks.
            let m = unsafe { &*pool.add(i) };
            *m.lock() += 1;
            TAKEN.fetch_add(1, Ordering::Relaxed);
        }
        let _ = IN_ALLOC.try_with(|c| c.set(false));
    }
}

// SAFETY: every call is passed on to `System`; `enter` allocates nothing itself once the pool
// exists (a first use of a pool lock may, and then re-enters with `IN_ALLOC` set: a no-op).
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

fn install_pool() {
    if POOL.load(Ordering::Acquire).is_null() {
        let pool: Vec<lockcheck::Mutex<u64>> =
            (0..POOL_LEN).map(|_| lockcheck::Mutex::new(0)).collect();
        let pool = Box::leak(pool.into_boxed_slice());
        POOL.store(pool.as_mut_ptr(), Ordering::Release);
    }
}

/// The allocator takes checked locks on this thread until the returned value drops.
struct Locking;

impl Locking {
    fn on() -> Locking {
        ON.with(|c| c.set(true));
        Locking
    }
}

impl Drop for Locking {
    fn drop(&mut self) {
        ON.with(|c| c.set(false));
    }
}

/// `async fn $name(first, second)`: takes `first` then `second` in a fresh task, the allocator
/// locking around each acquisition (the hold tables allocate: the task's first hold, its
/// dependency, a list that grows). One copy per runtime flavour, at the line of its
/// invocation: an inversion is reported once per set of acquisition lines.
macro_rules! in_order_fn {
    ($name:ident) => {
        async fn $name(first: Arc<Mutex<u32>>, second: Arc<Mutex<u32>>) {
            tokio::spawn(async move {
                let f = {
                    let _l = Locking::on();
                    first.try_lock().ok()
                };
                let f = match f {
                    Some(g) => g,
                    None => first.lock().await,
                };
                let s = {
                    let _l = Locking::on();
                    // Free: its future is ready at the first poll, on this thread.
                    let mut fut = std::pin::pin!(second.lock());
                    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                    match fut.as_mut().poll(&mut cx) {
                        std::task::Poll::Ready(g) => g,
                        std::task::Poll::Pending => panic!("the second lock is free"),
                    }
                };
                drop(s);
                drop(f);
            })
            .await
            .unwrap();
        }
    };
}

in_order_fn!(in_order_ct);
in_order_fn!(in_order_mt);

use std::future::Future;

#[test]
fn a_locking_allocator_inside_the_hold_tables_neither_hangs_nor_hides_findings() {
    lockcheck::set_action(lockcheck::Action::Warn);
    install_pool();
    for fl in [Flavor::CurrentThread, Flavor::MultiThread] {
        let (na, nb, nc) = (
            name("alloc.a", fl),
            name("alloc.b", fl),
            name("alloc.c", fl),
        );
        let before = TAKEN.load(Ordering::Relaxed);
        run(fl, move || async move {
            let in_order = |x, y| async move {
                if fl == Flavor::CurrentThread {
                    in_order_ct(x, y).await
                } else {
                    in_order_mt(x, y).await
                }
            };
            let a = Arc::new(Mutex::named(na, 0));
            let b = Arc::new(Mutex::named(nb, 0));
            let c = Arc::new(Mutex::named(nc, 0));
            // Consistent: a then c, twice.
            in_order(a.clone(), c.clone()).await;
            in_order(a.clone(), c.clone()).await;
            // An inversion: a then b, then b then a.
            in_order(a.clone(), b.clone()).await;
            in_order(b, a).await;
        })
        .expect("must not hang");
        assert!(
            TAKEN.load(Ordering::Relaxed) > before,
            "{fl:?}: the allocator took locks"
        );
        let v = support::found(na);
        let inv: Vec<_> = v
            .iter()
            .filter(|v| v.kind == lockcheck::ViolationKind::LockOrderInversion)
            .collect();
        assert_eq!(inv.len(), 1, "{fl:?}: {v:#?}");
        assert!(inv[0].involves(nb), "{fl:?}: {v:#?}");
        assert!(
            !v.iter().any(|v| v.involves(nc)),
            "{fl:?}: the consistent order is silent: {v:#?}"
        );
    }
}

#[test]
fn a_task_waiting_for_the_allocators_own_lock_gets_it() {
    lockcheck::set_action(lockcheck::Action::Warn);
    for fl in [Flavor::CurrentThread, Flavor::MultiThread] {
        let n = name("alloc.stats.other", fl);
        run(fl, move || async move {
            let other = Arc::new(lockcheck::Mutex::named(n, 0));
            tokio::spawn(async move {
                for _ in 0..3 {
                    // A flag, not a channel: the holder must not allocate while it holds the
                    // allocator's lock (that would deadlock with any mutex).
                    static HELD: std::sync::atomic::AtomicBool =
                        std::sync::atomic::AtomicBool::new(false);
                    HELD.store(false, Ordering::Release);
                    let holder = std::thread::spawn(|| {
                        let g = STATS.lock();
                        HELD.store(true, Ordering::Release);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        drop(g);
                    });
                    while !HELD.load(Ordering::Acquire) {
                        std::thread::yield_now();
                    }
                    // A sync guard of the task (its wait record keeps it), then the contended
                    // statistics' lock, with the allocator counting on this thread.
                    let _o = other.lock();
                    COUNTING.with(|c| c.set(true));
                    let v = *STATS.lock();
                    COUNTING.with(|c| c.set(false));
                    let _ = v;
                    holder.join().unwrap();
                }
            })
            .await
            .unwrap();
        })
        .expect("must not hang: the wait's record was freed while the lock was held");
        assert!(support::found(n).is_empty(), "{:#?}", support::found(n));
    }
}

/// Tasks on two workers wait for the allocator's own lock at the same time, while a thread
/// keeps taking it: each wait joins the async wait-for graph, whose registration allocates under
/// the graph's mutex (counted by the allocator, so it takes the lock). A wait that ended with the
/// lock acquired must not take that mutex again: it would wait for a thread that waits for the
/// lock it holds.
#[test]
fn tasks_waiting_together_for_the_allocators_own_lock_get_it() {
    lockcheck::set_action(lockcheck::Action::Warn);
    static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    STOP.store(false, Ordering::Release);
    let holder = std::thread::spawn(|| {
        while !STOP.load(Ordering::Acquire) {
            let g = STATS.lock();
            std::thread::sleep(std::time::Duration::from_micros(200));
            drop(g);
            std::thread::yield_now();
        }
    });
    let r = run(Flavor::MultiThread, || async {
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn(async {
                    for _ in 0..300 {
                        COUNTING.with(|c| c.set(true));
                        let v = *STATS.lock();
                        COUNTING.with(|c| c.set(false));
                        let _ = v;
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    STOP.store(true, Ordering::Release);
    holder.join().unwrap();
    r.expect("must not hang: an ended wait took the wait-for graph's mutex with the lock held");
}
