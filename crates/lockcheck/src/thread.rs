//! `std::thread` with spawn and join made visible to lockcheck.
//!
//! Lock orders made by a thread before it spawns a child cannot overlap with the child's, nor can
//! a child's overlap with what its parent does after joining it. lockcheck can only know this for
//! threads started through [`spawn`], [`Builder`] or [`scope`] here: swap `std::thread::spawn` for
//! `lockcheck::thread::spawn` where a parent and its children take locks in opposite orders at
//! different times (a common pattern in tests), or such orders are reported as inversions.
//! Everything else of `std::thread` is re-exported unchanged.

pub use std::thread::{
    available_parallelism, current, panicking, park, park_timeout, sleep, yield_now, AccessError,
    LocalKey, Result, Thread, ThreadId,
};

use crate::checked::class::{ClassSrc, Ids, Meta};
use crate::checked::state::STATE;
use lockcheck_core::deps::VectorClock;
use lockcheck_core::trace::LockKind;
use std::cell::Cell;
use std::collections::HashMap;
use std::panic::Location;
use std::sync::Arc;

type Site = &'static Location<'static>;

thread_local! {
    /// Where this thread was spawned, for threads started through this module.
    static SPAWNED_AT: Cell<Option<Site>> = const { Cell::new(None) };
}

/// Spawn sites seen, by address: the backtrace of the first spawn there (unresolved, when
/// backtraces are on) and, once a report needed it, the spawning function's name. Bounded by the
/// number of `spawn` calls in the program's source, not by the number of threads.
struct Spawner {
    /// `end of thread spawned at file:line:col`: the class of the ends of threads spawned here.
    end_class: Option<&'static str>,
    site: Site,
    trace: Option<backtrace::Backtrace>,
    function: Option<Option<String>>,
}

static SPAWNERS: parking_lot::Mutex<Option<HashMap<usize, Spawner>>> =
    parking_lot::Mutex::new(None);

fn note_spawn_site(site: Site) {
    let key = site as *const Location<'static> as usize;
    let mut spawners = crate::checked::state::internal(&SPAWNERS);
    let map = spawners.get_or_insert_with(HashMap::new);
    map.entry(key).or_insert_with(|| Spawner {
        end_class: None,
        site,
        // Only the instruction pointers now (cheap); symbols only if a report names the thread.
        trace: crate::config::backtraces().then(backtrace::Backtrace::new_unresolved),
        function: None,
    });
}

/// The calling thread as reports name it: its std name, or for an unnamed thread `<unnamed>`
/// and where it was spawned (threads started through this module); always std's `ThreadId`.
/// E.g. `worker (ThreadId(3))`, `<unnamed> (ThreadId(4), spawned at src/pool.rs:40:9)`.
pub(crate) fn describe_current() -> String {
    let t = std::thread::current();
    let id = t.id();
    match t.name() {
        Some(n) => format!("{n} ({id:?})"),
        None => match SPAWNED_AT.try_with(Cell::get).ok().flatten() {
            Some(site) => format!("<unnamed> ({id:?}, spawned at {site})"),
            None => format!("<unnamed> ({id:?})"),
        },
    }
}

/// Adds the spawning function to a name made by [`describe_current`]:
/// `spawned at src/pool.rs:40:9` becomes `spawned by pool::start at src/pool.rs:40:9`.
/// For reports only: resolving symbols is slow the first time.
pub(crate) fn name_spawner(name: &mut String) {
    const AT: &str = ", spawned at ";
    let Some(i) = name.find(AT) else { return };
    let site = name[i + AT.len()..].trim_end_matches(')').to_owned();
    let function = {
        let mut spawners = crate::checked::state::internal(&SPAWNERS);
        let Some(sp) = spawners
            .as_mut()
            .and_then(|m| m.values_mut().find(|s| s.site.to_string() == site))
        else {
            return;
        };
        sp.function
            .get_or_insert_with(|| sp.trace.take().and_then(spawning_function))
            .clone()
    };
    if let Some(f) = function {
        name.replace_range(i..i + AT.len(), &format!(", spawned by {f} at "));
    }
}

/// The first frame of a spawn's backtrace outside lockcheck and std: the function that called
/// `spawn`.
fn spawning_function(mut bt: backtrace::Backtrace) -> Option<String> {
    bt.resolve();
    bt.frames()
        .iter()
        .flat_map(|f| f.symbols())
        .filter_map(|s| s.name().map(|n| format!("{n:#}")))
        .find(|n| !crate::checked::report::is_internal(n) && !n.starts_with("__rust"))
}

/// The child's side of a fork: its vector clock at the end, for the join; and its end as a
/// lock of the wait-for graph (`None`: checks were off at the spawn).
#[derive(Default)]
struct End {
    /// The thread's clock when its closure returned ([`Finish`]): what a scope's implicit join
    /// takes, which does not wait for the thread-local destructors.
    clock: parking_lot::Mutex<Option<VectorClock>>,
    /// The thread's clock after its thread-local destructors ([`Teardown`]), which an explicit
    /// join waits for: what it takes when there is one.
    clock_torn_down: parking_lot::Mutex<Option<VectorClock>>,
    lock: Option<Ids>,
    /// The thread's closure has returned (set by [`Finish`]).
    done: std::sync::atomic::AtomicBool,
    /// A joiner polling for the end (see [`wait_for_end`]), woken by [`Finish`].
    joiner: parking_lot::Mutex<Option<Thread>>,
    /// The recording's generation at the spawn if the end goes into the trace (recording on and
    /// `lock` set), else 0: the thread then writes its end's acquisition and release, and a join
    /// holding locks its request (see `docs/trace-format.md`, "Thread ends and joins").
    recorded: u64,
    /// Joined explicitly (a scoped thread's handle): the scope's implicit join skips it.
    joined: std::sync::atomic::AtomicBool,
    /// The thread registered its [`Teardown`] marker: `torn_down` tells when its thread-local
    /// destructors are over.
    marked: std::sync::atomic::AtomicBool,
    /// The thread's thread-local destructors have run (set by [`Teardown`], the last of them).
    torn_down: std::sync::atomic::AtomicBool,
}

/// The last thread-local destructor of a thread started through this module: registered before
/// its closure runs, so that it runs after every thread-local the closure made (destructors run
/// in the reverse order of their registration). An explicit join waits for the thread-local
/// destructors (std joins the native thread; rust-lang/rust#149482 documents it), so a joiner
/// stays registered as waiting for the end until this runs: a destructor that blocks on a lock
/// the joiner holds is a deadlock of the wait-for graph (see [`wait_for_end`]).
struct Teardown(Arc<End>);

impl Drop for Teardown {
    fn drop(&mut self) {
        // For an explicit join: the destructors (after [`Finish`]'s tick) happen before it.
        *self.0.clock_torn_down.lock() = STATE.try_with(|s| s.clock()).ok();
        // The thread's end in the trace is here, where an explicit join's wait ends: a
        // thread-local destructor that took a lock ran holding it (rust-lang/rust#116179).
        if let Some(end) = self.0.lock.filter(|_| end_in_trace()) {
            crate::checked::recorder::on_thread_finish(end);
            crate::checked::recorder::flush_thread();
        }
        self.0
            .torn_down
            .store(true, std::sync::atomic::Ordering::Release);
        if let Some(joiner) = self.0.joiner.lock().as_ref() {
            joiner.unpark();
        }
    }
}

thread_local! {
    /// This thread's [`Teardown`] marker.
    static TEARDOWN: std::cell::RefCell<Option<Teardown>> = const { std::cell::RefCell::new(None) };
}

/// Registers the calling thread's [`Teardown`] marker (before its closure runs).
fn mark_teardown(end: &Arc<End>) {
    let registered = TEARDOWN
        .try_with(|t| {
            if let Ok(mut t) = t.try_borrow_mut() {
                *t = Some(Teardown(Arc::clone(end)));
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
    end.marked
        .store(registered, std::sync::atomic::Ordering::Release);
}

thread_local! {
    /// The generation in which this thread's end went into the trace (see [`End::recorded`]).
    static END_RECORDED: Cell<u64> = const { Cell::new(0) };
}

/// Whether recording is on in generation `generation` (not 0).
fn same_recording(generation: u64) -> bool {
    generation != 0
        && crate::checked::recorder::recording_now()
        && crate::checked::recorder::generation() == generation
}

/// Whether the calling thread holds its end in the trace being recorded (it was started by this
/// module while recording): a blocking wait it makes holding no lock is still recorded as a
/// request (`watch::begin_wait`), since it holds its end.
pub(crate) fn end_in_trace() -> bool {
    END_RECORDED
        .try_with(|g| same_recording(g.get()))
        .unwrap_or(false)
}

/// Called in the parent at spawn: returns the child's number and starting clock.
fn fork() -> (u64, VectorClock) {
    STATE
        .try_with(|s| {
            let parent = s.id();
            let child = crate::checked::state::new_thread_id();
            let start = s.clock();
            s.tick_clock();
            crate::checked::recorder::on_fork(parent, child);
            (child, start)
        })
        .unwrap_or_default()
}

/// The end of a thread spawned at `site`, as a lock of the wait-for graph (and of the trace): a
/// lock of kind `End` and class `end of thread spawned at file:line:col` (one class per spawn
/// site; a task's end is named alike, see `tokio::task`), held by the thread until it finishes.
fn end_lock(site: Site) -> Option<Ids> {
    if crate::config::action() == crate::config::Action::Off {
        return None;
    }
    let key = site as *const Location<'static> as usize;
    let class = {
        let mut spawners = crate::checked::state::internal(&SPAWNERS);
        let s = spawners.as_mut()?.get_mut(&key)?;
        *s.end_class.get_or_insert_with(|| {
            Box::leak(format!("end of thread spawned at {site}").into_boxed_str())
        })
    };
    Some(Meta::new(ClassSrc::Named(class)).ids(LockKind::End))
}

/// Runs in the child before its closure.
fn start(id: u64, clock: VectorClock, site: Site, end: Option<Ids>, recorded: u64) {
    let _ = SPAWNED_AT.try_with(|s| s.set(Some(site)));
    if let Some(end) = end {
        crate::checked::watch::set_thread_end(end, site);
    }
    if id != 0 {
        let _ = STATE.try_with(|s| s.adopt(id, clock));
    }
    // After `adopt`: the record goes into this thread's stream under its own number.
    if let Some(end) = end.filter(|_| same_recording(recorded)) {
        let _ = END_RECORDED.try_with(|g| g.set(recorded));
        crate::checked::recorder::on_thread_start(end, site);
    }
}

/// Runs in the child after its closure (also when it panics).
struct Finish(Arc<End>);

impl Drop for Finish {
    fn drop(&mut self) {
        let clock = STATE.try_with(|s| s.clock()).ok();
        *self.0.clock.lock() = clock;
        // A thread whose [`Teardown`] marker is registered writes its end's release there,
        // after its thread-local destructors (an explicit join waits for them); else here.
        let marked = self.0.marked.load(std::sync::atomic::Ordering::Acquire);
        if marked {
            // What the thread-local destructors do from here on is not before a scope's
            // implicit join, which waits only for the closure (rust-lang/rust#116179): a step of
            // the thread's clock past the one that join takes, and the same point in the trace
            // (`returned`, which the analyzer steps at).
            let _ = STATE.try_with(|s| s.tick_clock());
            if end_in_trace() {
                crate::checked::recorder::on_returned();
            }
        }
        if let Some(end) = self.0.lock.filter(|_| !marked && end_in_trace()) {
            crate::checked::recorder::on_thread_finish(end);
        }
        crate::checked::recorder::flush_thread();
        self.0
            .done
            .store(true, std::sync::atomic::Ordering::Release);
        // What runs from now on (thread-local destructors) waits as a thread that cannot give
        // up its locks by panicking (a panic there aborts the process).
        crate::checked::watch::set_tearing_down();
        if let Some(joiner) = self.0.joiner.lock().as_ref() {
            joiner.unpark();
        }
    }
}

/// Before a join (explicit, or a scope's implicit one) at `site`: while the thread's end is in
/// the trace and the joiner holds locks (or its own end: it was started here), the request of
/// the end, before it waits (see
/// `docs/trace-format.md`, "Thread ends and joins"); then the watched wait ([`wait_for_end`]).
/// Returns whether the request was written, for [`after_join`].
///
/// `scoped`: the joined thread is a scoped thread, which `std::thread::scope` joins before a
/// panic of the joiner can leave the scope (and unwind a guard taken outside it): a deadlock
/// this join closes must not be broken by the joiner's panic, which would hang in std's join.
/// The joiner then waits as a condvar's relocking waiter does (`hooks::Relocking`): another
/// thread of the cycle gives up its locks, and the joiner's verdict is deferred, for
/// [`take_verdict`].
#[track_caller]
fn before_join(
    end: &End,
    site: Site,
    is_finished: impl Fn() -> bool,
    scoped: bool,
    explicit: bool,
) -> bool {
    let requested = match end.lock {
        Some(lock) if same_recording(end.recorded) => STATE
            .try_with(|s| {
                // A thread started here holds its own end (`end_in_trace`): its join is a wait
                // of the trace even when it holds no lock (a join of a thread that joins it back).
                let ask = !s.busy.get() && (s.holds_any() || end_in_trace());
                if ask {
                    crate::checked::recorder::on_join_request(lock, site, explicit);
                }
                ask
            })
            .unwrap_or(false),
        _ => false,
    };
    if scoped {
        let relocking = crate::checked::hooks::Relocking::enter();
        wait_for_end(is_finished, end, site, explicit);
        drop(relocking);
    } else {
        wait_for_end(is_finished, end, site, explicit);
    }
    requested
}

/// The verdict of a deadlock a scoped join closed (see [`before_join`]), to raise once the
/// joined thread has ended.
fn take_verdict() -> Option<crate::checked::report::Verdict> {
    crate::checked::hooks::take_deferred()
}

/// After a join that [`before_join`] prepared: the grant of the end if its request was written,
/// and the join's ordering ([`joined`]). `explicit`: as [`joined`]'s.
fn after_join(id: u64, end: &End, site: Site, requested: bool, explicit: bool) {
    if let Some(lock) = end
        .lock
        .filter(|_| requested && same_recording(end.recorded))
    {
        crate::checked::recorder::on_join_granted(lock, site, explicit);
    }
    end.joined.store(true, std::sync::atomic::Ordering::Release);
    joined(id, end, explicit);
}

/// Called in the parent after a successful join. `explicit`: a join of the thread's handle,
/// which waits for its thread-local destructors too (std joins the native thread), so what they
/// did happens before it; a scope's implicit join waits only for the closure.
fn joined(child: u64, end: &End, explicit: bool) {
    let torn_down = if explicit {
        end.clock_torn_down.lock().take()
    } else {
        None
    };
    let Some(clock) = torn_down.or_else(|| end.clock.lock().take()) else {
        return;
    };
    let _ = STATE.try_with(|s| {
        let parent = s.id();
        crate::checked::state::with_slow(|slow| {
            slow.clock.join(&clock);
            slow.clock.tick(parent);
        });
        s.bump_epoch();
        crate::checked::recorder::on_join(parent, child, !explicit);
    });
}

/// Before a join: while the thread runs, a joiner that holds locks (or its own end, started
/// through this module: two threads joining each other) is registered as waiting for
/// its end (see `watch::join_wait`) and polls for the end, so that a deadlock this wait is part
/// of, reported by the joined thread's own wait or chosen to be broken here, ends the join with
/// a panic instead of a hang (at the caller's line).
///
/// `explicit`: an explicit join, which std makes on the native thread, so it also waits for the
/// thread's thread-local destructors ([`Teardown`]); a scope's implicit join does not
/// (rust-lang/rust#116179) and waits only for the closure.
#[track_caller]
fn wait_for_end(is_finished: impl Fn() -> bool, end: &End, site: Site, explicit: bool) {
    let Some(lock) = end.lock else { return };
    let over = || {
        if explicit && end.marked.load(std::sync::atomic::Ordering::Acquire) {
            end.torn_down.load(std::sync::atomic::Ordering::Acquire)
        } else {
            end.done.load(std::sync::atomic::Ordering::Acquire) || is_finished()
        }
    };
    if over() {
        return;
    }
    let (mut token, w) = match crate::checked::watch::join_wait(lock, site, explicit) {
        None => return,
        Some(Err(v)) => v.raise(),
        Some(Ok(t)) => t,
    };
    *end.joiner.lock() = Some(std::thread::current());
    // Until the closure returns, or for an explicit join until the thread-local destructors are
    // over too.
    while !over() {
        if let Err(v) = token.register(&w) {
            v.raise();
        }
        if let Some(msg) = token.victim() {
            drop(token);
            crate::checked::report::Verdict::new(msg).raise();
        }
        let slice = if token.pending() { 1 } else { 10 };
        std::thread::park_timeout(std::time::Duration::from_millis(slice));
    }
    end.joiner.lock().take();
    // A participant of a barrier found stuck behind the joined thread's wait there (the joined
    // thread gave up): the trace shows it now, as a blocked acquisition's end does
    // (`watch::sender_in_trace`).
    let _ = STATE.try_with(|s| crate::checked::watch::sender_in_trace(s.id()));
}

#[track_caller]
fn wrap<F, T>(f: F) -> (impl FnOnce() -> T, u64, Arc<End>)
where
    F: FnOnce() -> T,
{
    let site = Location::caller();
    note_spawn_site(site);
    let (id, clock) = fork();
    let lock = end_lock(site);
    let recorded = match lock {
        Some(_) if crate::checked::recorder::recording() => crate::checked::recorder::generation(),
        _ => 0,
    };
    let end = Arc::new(End {
        lock,
        recorded,
        ..End::default()
    });
    let end2 = Arc::clone(&end);
    let body = move || {
        start(id, clock, site, lock, recorded);
        if lock.is_some() {
            mark_teardown(&end2);
        }
        let _finish = Finish(end2);
        f()
    };
    (body, id, end)
}

/// An owned permission to join a thread started by [`spawn`] or [`Builder::spawn`].
#[derive(Debug)]
pub struct JoinHandle<T> {
    inner: std::thread::JoinHandle<T>,
    id: u64,
    end: Arc<End>,
}

impl std::fmt::Debug for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("End")
    }
}

impl<T> JoinHandle<T> {
    /// Waits for the thread to finish; what it did now happens before what follows.
    ///
    /// A join made while holding locks is a wait lockcheck sees: if the thread waits (directly or
    /// through other threads) for a lock the joiner holds, the deadlock is reported and the side
    /// that closes it panics (under `LOCKCHECK=panic` and `warn` alike), at this line when it is
    /// the joiner.
    #[track_caller]
    pub fn join(self) -> Result<T> {
        let site = Location::caller();
        let requested = before_join(&self.end, site, || self.inner.is_finished(), false, true);
        let r = self.inner.join();
        after_join(self.id, &self.end, site, requested, true);
        r
    }

    /// The thread's handle.
    pub fn thread(&self) -> &Thread {
        self.inner.thread()
    }

    /// Whether the thread has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// The std handle (joining it directly loses the join's ordering).
    pub fn into_inner(self) -> std::thread::JoinHandle<T> {
        self.inner
    }
}

/// Spawns a thread, as `std::thread::spawn`, recording the fork for lockcheck.
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f).expect("failed to spawn thread")
}

/// `std::thread::Builder`, recording the fork for lockcheck.
#[derive(Debug)]
pub struct Builder {
    inner: std::thread::Builder,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// A builder with default settings.
    pub fn new() -> Builder {
        Builder {
            inner: std::thread::Builder::new(),
        }
    }

    /// Names the thread (reports use the name).
    pub fn name(self, name: String) -> Builder {
        Builder {
            inner: self.inner.name(name),
        }
    }

    /// Sets the stack size.
    pub fn stack_size(self, size: usize) -> Builder {
        Builder {
            inner: self.inner.stack_size(size),
        }
    }

    /// Spawns the thread.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> std::io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (body, id, end) = wrap(f);
        let inner = self.inner.spawn(body)?;
        Ok(JoinHandle { inner, id, end })
    }

    /// Spawns a scoped thread.
    #[track_caller]
    pub fn spawn_scoped<'scope, 'env, F, T>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        f: F,
    ) -> std::io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        // The value goes to `result`, not to std's packet (see [`ScopedResult`]): dropped by
        // the thread itself, inside its closure, when the handle is gone by then.
        let result = Arc::new(ScopedResult::default());
        let to = Arc::clone(&result);
        let (body, id, end) = wrap(move || to.deliver(f()));
        scope.register(id, &end);
        let inner = self.inner.spawn_scoped(&scope.inner, body)?;
        Ok(ScopedJoinHandle {
            inner,
            id,
            end,
            result: ResultOwner(result),
        })
    }
}

/// A scoped thread's value, kept beside std's packet.
///
/// std drops a scoped thread's value when the last of the thread and its handle lets go of the
/// packet, and a scope's implicit join waits for that drop, not for the thread-local destructors
/// (rust-lang/rust#116179). When the handle is dropped before the thread returns (the usual
/// `s.spawn(..);`), that is the thread, after its closure: a drop that takes a lock the scope's
/// owner holds across the scope's end hangs the scope. Here the thread's closure hands its value
/// over, and drops it itself if the handle is gone, before the closure's end (the point where a
/// scope's join stops waiting for it, in the trace and in the wait-for graph), so that such a
/// drop is seen as part of the closure. With the handle still there, the value waits for it
/// (taken by `join`, dropped with the handle, where std drops it).
struct ScopedResult<T> {
    /// The value, and whether the handle is gone.
    slot: parking_lot::Mutex<(Option<T>, bool)>,
}

impl<T> Default for ScopedResult<T> {
    fn default() -> Self {
        ScopedResult {
            slot: parking_lot::Mutex::new((None, false)),
        }
    }
}

impl<T> ScopedResult<T> {
    /// The thread's value: kept for the handle, or dropped here if the handle is gone (outside
    /// the slot's lock: the drop may take the program's locks).
    fn deliver(&self, v: T) {
        let mut slot = crate::checked::state::internal(&self.slot);
        if slot.1 {
            drop(slot);
            drop(v);
        } else {
            slot.0 = Some(v);
        }
    }

    fn take(&self) -> Option<T> {
        crate::checked::state::internal(&self.slot).0.take()
    }
}

/// The handle's side of a [`ScopedResult`]: dropped, it drops the value if the thread delivered
/// it, and marks the handle gone otherwise.
struct ResultOwner<T>(Arc<ScopedResult<T>>);

impl<T> Drop for ResultOwner<T> {
    fn drop(&mut self) {
        let v = {
            let mut slot = crate::checked::state::internal(&self.0.slot);
            slot.1 = true;
            slot.0.take()
        };
        drop(v);
    }
}

/// A scope for spawning scoped threads (see [`scope`]).
///
/// A transparent wrapper of `std::thread::Scope`, so that `&Scope` can be handed out for the
/// scope's whole lifetime.
#[repr(transparent)]
pub struct Scope<'scope, 'env> {
    inner: std::thread::Scope<'scope, 'env>,
}

/// The children of live scopes, by scope address, for the implicit join at the scope's end.
/// The children (number, end) of one live scope, by scope address.
type ScopeChildren = (usize, Vec<(u64, Arc<End>)>);
static SCOPES: parking_lot::Mutex<Vec<ScopeChildren>> = parking_lot::Mutex::new(Vec::new());

impl<'scope, 'env> Scope<'scope, 'env> {
    fn key(&self) -> usize {
        self as *const Self as usize
    }

    fn register(&self, id: u64, end: &Arc<End>) {
        let mut scopes = crate::checked::state::internal(&SCOPES);
        let key = self.key();
        match scopes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push((id, Arc::clone(end))),
            None => scopes.push((key, vec![(id, Arc::clone(end))])),
        }
    }

    /// Spawns a scoped thread, recording the fork.
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        Builder::new()
            .spawn_scoped(self, f)
            .expect("failed to spawn thread")
    }
}

impl std::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

/// A handle to join a scoped thread.
pub struct ScopedJoinHandle<'scope, T> {
    inner: std::thread::ScopedJoinHandle<'scope, ()>,
    id: u64,
    end: Arc<End>,
    result: ResultOwner<T>,
}

impl<T> std::fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedJoinHandle").finish_non_exhaustive()
    }
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the thread to finish; a join made while holding locks is a wait lockcheck sees
    /// (as [`JoinHandle::join`]).
    #[track_caller]
    pub fn join(self) -> Result<T> {
        let site = Location::caller();
        let ScopedJoinHandle {
            inner,
            id,
            end,
            result,
        } = self;
        let requested = before_join(&end, site, || inner.is_finished(), true, true);
        let r = inner.join();
        after_join(id, &end, site, requested, true);
        if let Some(v) = take_verdict() {
            v.raise();
        }
        // A closure that returned delivered its value before it ended.
        r.map(|()| {
            result
                .0
                .take()
                .expect("a scoped thread that returned left its value")
        })
    }

    /// The thread's handle.
    pub fn thread(&self) -> &Thread {
        self.inner.thread()
    }

    /// Whether the thread has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

/// `std::thread::scope`, recording forks and the implicit joins at the scope's end.
///
/// The implicit join of each scoped thread not joined explicitly is a wait lockcheck sees, as
/// [`JoinHandle::join`]: a scope that ends while holding a lock one of its threads waits for
/// (directly or through other threads) is a deadlock, reported instead of hanging; when the
/// scope's side closes it, the panic is raised at this call's line (after `f` returned). Also
/// when `f` panics: its panic waits until the implicit joins are watched (std makes them before
/// the panic can leave the scope), then goes on, replaced by the report if one of them closed a
/// deadlock.
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    // The implicit joins happen when `std::thread::scope` returns, also when it panics (it joins
    // every thread first): the entry must leave `SCOPES` either way, or its children would stay
    // unjoined for lockcheck (false inversions with what the parent does next) and a later scope
    // at the same address would inherit them.
    // `requested`: the children whose implicit join wrote the request of their end.
    struct Joins {
        key: usize,
        site: Site,
        requested: Vec<u64>,
        /// A deadlock an implicit join closed: raised once std's joins are over.
        verdict: Option<crate::checked::report::Verdict>,
    }
    impl Drop for Joins {
        fn drop(&mut self) {
            let children = {
                let mut scopes = crate::checked::state::internal(&SCOPES);
                match scopes.iter().position(|(k, _)| *k == self.key) {
                    Some(i) => scopes.swap_remove(i).1,
                    None => Vec::new(),
                }
            };
            for (id, end) in children {
                if !end.joined.load(std::sync::atomic::Ordering::Acquire) {
                    after_join(id, &end, self.site, self.requested.contains(&id), false);
                }
            }
        }
    }
    let mut joins = Joins {
        key: 0,
        site: Location::caller(),
        requested: Vec::new(),
        verdict: None,
    };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        std::thread::scope(|s| {
            // SAFETY: `Scope` is a `repr(transparent)` wrapper of `std::thread::Scope`.
            let s: &Scope<'_, 'env> =
                unsafe { &*(s as *const std::thread::Scope<'_, 'env> as *const Scope<'_, 'env>) };
            joins.key = s.key();
            // `f`'s panic is held back until the implicit joins are watched: std makes them
            // either way, and a lock held from outside the scope (a guard, the gate of the
            // initialization that runs the scope) is still held while they wait, so a thread
            // waiting for it would hang the unwinding unreported (a report of another thread of
            // the scope, raised in `f` by a `join().unwrap()`, would end in such a hang).
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(s)));
            // The implicit joins, watched before std makes them (it joins every thread not joined
            // yet when this closure returns).
            let unjoined: Vec<(u64, Arc<End>)> = {
                let scopes = crate::checked::state::internal(&SCOPES);
                scopes
                    .iter()
                    .find(|(k, _)| *k == joins.key)
                    .map(|(_, v)| {
                        v.iter()
                            .filter(|(_, e)| !e.joined.load(std::sync::atomic::Ordering::Acquire))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default()
            };
            for (id, end) in unjoined {
                let done = || end.done.load(std::sync::atomic::Ordering::Acquire);
                if before_join(&end, joins.site, done, true, false) {
                    joins.requested.push(id);
                }
                if let Some(v) = take_verdict() {
                    joins.verdict.get_or_insert(v);
                }
            }
            r.unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }));
    // The thread that gave up its locks for the implicit join panicked, so std's scope did too
    // (after joining every thread): the report's verdict replaces its message.
    if let Some(v) = joins.verdict.take() {
        v.raise();
    }
    r.unwrap_or_else(|p| std::panic::resume_unwind(p))
}
