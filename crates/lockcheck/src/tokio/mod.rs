//! tokio's async locks, instrumented: [`Mutex`], [`RwLock`] and [`Semaphore`] with exactly
//! `tokio::sync`'s API (feature `tokio`).
//!
//! Swap `use tokio::sync::{Mutex, RwLock, Semaphore}` for
//! `use lockcheck::tokio::{Mutex, RwLock, Semaphore}`. A tokio guard belongs to the *task* that
//! holds it, and the task moves between worker threads, so lockcheck keeps a held set per task
//! (per thread outside tasks, e.g. in `blocking_lock`) and checks every acquisition against it:
//!
//! - **Lock-order inversions between tasks** (instance and class level, the same graph and
//!   rules as the sync locks with "task" for "thread"), reported with the task ids and the
//!   acquisition lines before the first `.await` of the acquisition, so before any hang.
//! - **Async self-deadlocks**: a task locking a `Mutex` it holds, a second `read()` of an
//!   `RwLock` in the same task (a hazard even with no writer waiting: tokio's RwLock is fair, so
//!   a writer that queues in between blocks the second read and waits for the first), a task
//!   waiting for permits of a `Semaphore` when it is the only holder of the missing ones.
//! - **Real deadlocks**: a wait-for graph over tasks (and threads in `blocking_*`), reported when
//!   a cycle closes instead of the runtime hanging silently.
//! - **Sync guards held across `.await`**: a `lockcheck::Mutex`, `RwLock` or `sync::Mutex` guard
//!   taken in a task and still held while the task is suspended, found when another task on the
//!   same thread acquires a lock (or the task itself waits for an async lock).
//!
//! Reports go where the sync locks' go ([`violations`](crate::violations), stderr, `tracing`),
//! and `LOCKCHECK=panic|warn|off` applies: under `panic` the acquiring task panics before it
//! waits (its `JoinHandle` returns the panic), so its guards drop and the others go on. An
//! acquisition is checked at its future's first poll, together with its hold when the lock is
//! free (one step, one visit of the held set), and always before any wait; a violation is raised
//! by the future's `#[track_caller]` `poll`, which the user's `.await` calls, so the panic points
//! at the user's line (a wrapper that polls the future itself, such as `tokio::time::timeout`,
//! takes its place). The `blocking_*` methods check in the `#[track_caller]` call itself; like
//! tokio's, they panic when called from within an asynchronous execution context (a task, a
//! runtime's `block_on`; `spawn_blocking` and `block_in_place` are fine), with tokio's message.
//!
//! Tasks are named `task #N` in reports (tokio's task id); start them with [`spawn`] (or
//! [`spawn_blocking`]) instead of `tokio::spawn` to get `task #N (spawned at file:line:col)`, and
//! a [`JoinHandle`] whose wait joins the wait-for graph: a task that waits (directly or through
//! other waits) for a lock held by the task awaiting its end is a deadlock, reported when the
//! cycle closes. Waits lockcheck does not see (tokio's own `JoinHandle`, channels, `Notify`,
//! `Barrier`, a `block_on` of a foreign future) are not in the graph: a deadlock through one of
//! them hangs unreported (README, "Async locks", known limits).
//!
//! **Owned guards** (`lock_owned`, `read_owned`, `write_owned`, `acquire_owned`, ...) are
//! `'static + Send`, made to move into another task, and no code runs when a value moves: an
//! owned guard belongs to the task that took it until another task uses it (dereferences, maps,
//! downgrades, splits) or drops it, and then to that task. Its acquisition is checked as usual.
//! What its holder acquires meanwhile waits for the guard's end: dropped by the same holder, it
//! was held all along, and those dependencies join the lock graph (a cycle they close is
//! reported then, without the action: it runs in a drop, after the fact); used or dropped by
//! another task, it may have left before them, and they are forgotten. In the wait-for graph an
//! owned guard counts as held by its holder, so a cycle through it is a real deadlock. A holder
//! waiting for a lock that only its own owned guard keeps (the same `Mutex` again, a write of an
//! `RwLock` it read-holds owned) may have handed the guard to a task that has not used it yet, so
//! it is not reported before the wait: it is reported as a self-deadlock when the wait lasts two
//! seconds with the guard unmoved (raised in the waiting task under `panic`), or when the wait is
//! given up (a timeout) with the guard unmoved. Owned semaphore permits are the exception:
//! handed to workers that give them back when done, without ever using them, they are how
//! concurrency is bounded, so a task waiting for more permits while its workers hold them is
//! reported only if it gives the wait up with the permits still its own (never for the wait's
//! length), and they make no wait-for edge.
//!
//! Unlike the sync locks, these are always instrumented when the feature is on, whatever the
//! build profile: the feature is the switch.

mod guard;
mod mutex;
mod rwlock;
mod semaphore;
mod task;
pub(crate) mod track;

pub use ::tokio::sync::{AcquireError, TryAcquireError, TryLockError};
pub use mutex::{MappedMutexGuard, Mutex, MutexGuard, OwnedMappedMutexGuard, OwnedMutexGuard};
pub use rwlock::{
    OwnedRwLockMappedWriteGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock,
    RwLockMappedWriteGuard, RwLockReadGuard, RwLockWriteGuard,
};
pub use semaphore::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};
pub use task::JoinHandle;

use crate::checked::report::Verdict;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};
use track::{Hold, Pre, Req};

/// `tokio::spawn`, remembering the spawn site so that reports name the task
/// `task #N (spawned at file:line:col)`, and returning a [`JoinHandle`] whose wait for the task
/// joins the wait-for graph (a task awaited by a holder of a lock it waits for is a deadlock).
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let site = Location::caller();
    let inner = ::tokio::spawn(async move {
        let _named = SpawnSite::note(site);
        future.await
    });
    JoinHandle::new(inner, site)
}

/// `tokio::task::spawn_blocking`, as [`spawn`]: the closure's task is named by its spawn site,
/// and awaiting its [`JoinHandle`] is a wait of the wait-for graph (a `blocking_lock` in the
/// closure of a lock its joiner holds is a deadlock).
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let site = Location::caller();
    let inner = ::tokio::task::spawn_blocking(move || {
        let _named = SpawnSite::note(site);
        f()
    });
    JoinHandle::new(inner, site)
}

/// Keeps a task's spawn site while the task lives.
struct SpawnSite(Option<u64>);

impl SpawnSite {
    fn note(site: &'static Location<'static>) -> SpawnSite {
        let id = ::tokio::task::try_id().map(track::holder_task_number);
        if let Some(id) = id {
            track::note_spawn(id, site);
        }
        SpawnSite(id)
    }
}

impl Drop for SpawnSite {
    fn drop(&mut self) {
        if let Some(id) = self.0 {
            track::forget_spawn(id);
        }
    }
}

/// The semaphore under every lock here, as under tokio's own.
type Sem = ::tokio::sync::Semaphore;

/// The checks of a `blocking_*` acquisition that need no wait, run in its `#[track_caller]`
/// entry point: a violation under `panic` is raised there, so the panic's location is the user's
/// line, and before any hang. Returns what the acquisition then does not check again. (The
/// async acquisitions check at their first poll instead, with the hold: see [`acquire`].)
/// First of all, tokio's own refusal to block a runtime thread ([`refuse_in_runtime`]).
#[track_caller]
fn precheck(sem: &Sem, r: &Req<'_>) -> Pre {
    refuse_in_runtime();
    let unavailable = sem.available_permits() < r.permits as usize && !sem.is_closed();
    let (pre, verdict) = track::precheck(r, unavailable);
    if let Some(v) = verdict {
        v.raise();
    }
    pre
}

/// The checked acquisition of `r.permits` permits: the fast try (then the checks, unless
/// [`precheck`] did them, and the hold, in one visit of the holder's list), else the checks, the
/// wait-for graph, the wait, then the hold. A violation to raise
/// under `panic` comes back as `Err`, for [`Checked`] to raise at the user's `.await`.
async fn acquire(sem: &Sem, r: Req<'_>, pre: Pre) -> Result<Result<Hold, AcquireError>, Verdict> {
    if let Ok(p) = sem.try_acquire_many(r.permits) {
        // Checked after the fact (it did not wait) when not checked before.
        let (hold, v) = track::acquired_now(&r, pre);
        if let Some(v) = v {
            // Given back before the panic, so that the other tasks go on.
            drop(hold);
            drop(p);
            return Err(v);
        }
        p.forget();
        return Ok(Ok(hold));
    }
    // Boxed: the waiting path's state (the semaphore's wait, the wait-for registration) would
    // otherwise make every acquisition's future several times larger, and futures are moved.
    Box::pin(acquire_slow(sem, r, pre)).await
}

/// The acquisition that must wait (its fast try failed).
async fn acquire_slow(
    sem: &Sem,
    r: Req<'_>,
    pre: Pre,
) -> Result<Result<Hold, AcquireError>, Verdict> {
    let ctx = track::before(&r, pre, !sem.is_closed())?;
    let wait = if sem.is_closed() {
        None
    } else {
        track::must_wait(&ctx, &r, pre)?
    };
    let start = std::time::Instant::now();
    let p = track::waiting(sem.acquire_many(r.permits), wait.as_ref()).await?;
    if let Some(w) = wait {
        w.done();
    }
    match p {
        Ok(p) => {
            p.forget();
            Ok(Ok(track::record(
                ctx,
                &r,
                start.elapsed().as_nanos() as u64,
            )))
        }
        Err(e) => Ok(Err(e)),
    }
}

/// The waiting part of a borrowed acquisition, boxed (see [`Acquire`]).
type SlowAcquire<'a> = std::pin::Pin<
    Box<dyn Future<Output = Result<Result<Hold, AcquireError>, Verdict>> + Send + 'a>,
>;

/// The future of a borrowed acquisition (`lock()`, `read()`, `write()`, `acquire()`), by hand:
/// its first `poll` tries the semaphore and, when the permits are free (the common case),
/// checks and holds in one step and is ready, with no `async` state machine around it; else it
/// goes on as [`acquire`]'s waiting part (boxed). `make` turns the hold into the guard. A
/// violation is raised by `poll`, which is `#[track_caller]` and called by the user's `.await`,
/// so the panic's location is the user's line (as [`Checked`]).
pub(crate) struct Acquire<'a, M> {
    sem: &'a Sem,
    r: Req<'a>,
    make: Option<M>,
    slow: Option<SlowAcquire<'a>>,
}

impl<'a, M> Acquire<'a, M> {
    pub(crate) fn new(sem: &'a Sem, r: Req<'a>, make: M) -> Self {
        Acquire {
            sem,
            r,
            make: Some(make),
            slow: None,
        }
    }
}

impl<'a, O, M> Future for Acquire<'a, M>
where
    M: FnOnce(Result<Hold, AcquireError>) -> O + Unpin,
{
    type Output = O;

    #[track_caller]
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
        let this = self.get_mut();
        let slow = match &mut this.slow {
            Some(slow) => slow,
            None => {
                if let Ok(p) = this.sem.try_acquire_many(this.r.permits) {
                    // As in `acquire`: checked after the fact (it did not wait).
                    let (hold, v) = track::acquired_now(&this.r, Pre::NONE);
                    if let Some(v) = v {
                        // Given back before the panic, so that the other tasks go on.
                        drop(hold);
                        drop(p);
                        v.raise();
                    }
                    p.forget();
                    let make = this
                        .make
                        .take()
                        .expect("an acquisition polled after it ended");
                    return Poll::Ready(make(Ok(hold)));
                }
                this.slow
                    .insert(Box::pin(acquire_slow(this.sem, this.r, Pre::NONE)))
            }
        };
        match slow.as_mut().poll(cx) {
            Poll::Ready(Ok(r)) => {
                this.slow = None;
                let make = this
                    .make
                    .take()
                    .expect("an acquisition polled after it ended");
                Poll::Ready(make(r))
            }
            Poll::Ready(Err(v)) => v.raise(),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The future of an acquisition: `F` yields the guard, or the verdict of a violation found while
/// it ran (the wait-for cycle it closed, a sync guard held across its wait, a suspect wait
/// confirmed), raised here under `panic`. `poll` is `#[track_caller]`, and the `.await` in the
/// user's code calls it, so the panic's location is the user's line.
pub(crate) struct Checked<F>(F);

impl<T, F: Future<Output = Result<T, Verdict>>> Future for Checked<F> {
    type Output = T;

    #[track_caller]
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // SAFETY: structural pinning of the only field: `F` is never moved out of `self`.
        let f = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        match f.poll(cx) {
            Poll::Ready(Ok(v)) => Poll::Ready(v),
            Poll::Ready(Err(v)) => v.raise(),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Panics, as tokio's `blocking_*` methods do, when called from within an asynchronous
/// execution context (a task, a runtime's `block_on`), where blocking would stall the tasks that
/// thread drives: with tokio's message ("Cannot block the current thread from within a
/// runtime. ..."), at the user's line. Inside `spawn_blocking`, `block_in_place` and on plain
/// threads it passes.
///
/// The check is tokio's own, not a copy: tokio makes it in its internal `block_on` (the
/// thread's runtime context must not be "entered"), which every `blocking_*` method of
/// `tokio::sync` calls first, and exposes no public equivalent (`Handle::try_current` differs:
/// a `spawn_blocking` thread has a handle and may block). So this delegates to the cheapest
/// public caller of that `block_on`, `blocking_lock` of a fresh, free `tokio::sync::Mutex`:
/// the check, then one poll of a future that is ready at once (tokio makes the check only with
/// its `rt` feature, which lockcheck's `tokio` feature enables). Every frame from here to tokio's
/// `expect` is `#[track_caller]`, so the location is the user's call. It runs before any of
/// lockcheck's bookkeeping, so the panic leaves nothing behind.
#[track_caller]
fn refuse_in_runtime() {
    drop(::tokio::sync::Mutex::const_new(()).blocking_lock());
}

/// Runs a `blocking_*` acquisition on this thread; a verdict is raised at the `#[track_caller]`
/// caller's location (the user's line).
#[track_caller]
fn block_checked<T>(f: impl Future<Output = Result<T, Verdict>>) -> T {
    match block_on(f) {
        Ok(v) => v,
        Err(v) => v.raise(),
    }
}

/// A `try_*` acquisition: never blocks, so no check; a success is held. A failure is counted: a
/// try retried [`TRY_RETRIES`](lockcheck_core::trace::TRY_RETRIES) times in a row is checked as
/// a blocking acquisition (see `track::try_failed`), and its verdict raised here.
#[track_caller]
fn try_acquire(sem: &Sem, r: Req<'_>) -> Result<Hold, TryAcquireError> {
    match sem.try_acquire_many(r.permits) {
        Ok(p) => {
            p.forget();
            Ok(track::tried(&r))
        }
        Err(e) => {
            if matches!(e, TryAcquireError::NoPermits) {
                if let Some(v) = track::try_failed(&r) {
                    v.raise();
                }
            }
            Err(e)
        }
    }
}

/// Runs a future to completion on this thread (the `blocking_*` methods), parking between polls.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// A `TryLockError` (tokio's has no public constructor): made by the real thing.
fn try_lock_error() -> TryLockError {
    let m = ::tokio::sync::Mutex::const_new(());
    let _held = m.try_lock();
    let e = m.try_lock().err();
    e.expect("a tokio mutex held cannot be locked again")
}
